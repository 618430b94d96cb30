package netsim

// Named network namespaces that netsim makes, and how it knows them again.
//
// A namespace outlives the process that made it: a picosim killed with
// SIGKILL leaves its namespace behind, and the next run that asks for the
// same name finds it taken. That run may delete it only if it can show that
// netsim made it and that its maker is gone; a namespace of that name may as
// well be the user's own, made with ip netns add, and must be left alone.
//
// So whenever netsim makes a namespace it writes an owner record,
// /run/picosim/netns/NAME, naming its process (PID, and start time so that a
// reused PID is told apart) and the namespace (its inode and its cookie, so
// that a namespace made since under the same name by someone else is told
// apart). The record is on /run, a tmpfs like /run/netns, so a reboot clears
// both together. A namespace is stale, and netsim deletes it, only when its
// record names a process that is not running and the namespace is still the
// one recorded. One without a record is someone else's; one whose recorded
// process runs is in use. Checks and deletions hold a lock (flock on the
// records' directory), so two processes never both judge one stale, and
// neither sees another's namespace between its making and its record.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netns"
)

const (
	// netnsDir is where named namespaces are mounted, as by ip netns and
	// package netns (/var/run/netns is a link to it).
	netnsDir = "/run/netns"
	// ownerDir holds the owner records, one file per namespace netsim made.
	ownerDir = "/run/picosim/netns"
	// soNetnsCookie is SO_NETNS_COOKIE (Linux 5.14), which package syscall
	// does not name.
	soNetnsCookie = 71
)

// NamespaceTakenError says that a namespace name is taken by a namespace
// netsim may not delete: one it did not make (PID 0), or one that a picosim
// process still running made (PID).
type NamespaceTakenError struct {
	Name string
	PID  int
}

func (e *NamespaceTakenError) Error() string {
	if e.PID != 0 {
		return fmt.Sprintf("namespace %s is in use by picosim process %d; stop it, or choose another name", e.Name, e.PID)
	}
	return fmt.Sprintf("namespace %s already exists and picosim did not make it; if nothing uses it, remove it yourself with 'ip netns delete %s', or choose another name",
		e.Name, e.Name)
}

// owner is an owner record: which process made a namespace, and which
// namespace it made.
type owner struct {
	PID   int
	Start uint64 // the process's start time in clock ticks after boot, /proc/PID/stat field 22
	ns    nsID
}

// nsID identifies a namespace. Inode numbers are reused once a namespace
// is gone; the cookie is not (until reboot), but kernels before 5.14 have
// none (0), and then the inode is all there is.
type nsID struct {
	Dev, Inode, Cookie uint64
}

var errBadRecord = errors.New("not a picosim owner record")

func (o owner) String() string {
	return fmt.Sprintf("pid %d\nstart %d\ndev %d\ninode %d\ncookie %d\n", o.PID, o.Start, o.ns.Dev, o.ns.Inode, o.ns.Cookie)
}

func parseOwner(b []byte) (owner, error) {
	var o owner
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		key, val, ok := strings.Cut(line, " ")
		n, err := strconv.ParseUint(val, 10, 64)
		if !ok || err != nil || seen[key] {
			return owner{}, errBadRecord
		}
		seen[key] = true
		switch key {
		case "pid":
			o.PID = int(n)
		case "start":
			o.Start = n
		case "dev":
			o.ns.Dev = n
		case "inode":
			o.ns.Inode = n
		case "cookie":
			o.ns.Cookie = n
		}
	}
	if o.PID <= 0 || o.ns.Inode == 0 || !seen["start"] || !seen["dev"] {
		return owner{}, errBadRecord
	}
	return o, nil
}

// readOwner reads a namespace's owner record; fs.ErrNotExist if it has none.
func readOwner(name string) (owner, error) {
	b, err := os.ReadFile(filepath.Join(ownerDir, name))
	if err != nil {
		return owner{}, err
	}
	return parseOwner(b)
}

// writeOwner writes a record whole (into a file beside the directory, then
// renamed), so that no one reads half of one.
func writeOwner(name string, o owner) error {
	f, err := os.CreateTemp(filepath.Dir(ownerDir), "netns-owner-*")
	if err != nil {
		return err
	}
	_, err = f.WriteString(o.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(ownerDir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("record the owner of namespace %s: %w", name, err)
	}
	return nil
}

// processStart returns a process's start time, /proc/PID/stat field 22; an
// error that is fs.ErrNotExist if the process is not running (a zombie is
// not: it has ended, its parent has not yet collected it).
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Field 2, the command, is in parentheses and may hold spaces and
	// parentheses itself: count from the last ')'. f[0] is field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d has ended: %w", pid, fs.ErrNotExist)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

var selfStart = sync.OnceValues(func() (uint64, error) { return processStart(os.Getpid()) })

// self is the record this process writes, without the namespace.
func self() (owner, error) {
	start, err := selfStart()
	if err != nil {
		return owner{}, fmt.Errorf("start time of this process: %w", err)
	}
	return owner{PID: os.Getpid(), Start: start}, nil
}

// running says whether the record's process still runs: one with its PID
// and its start time. When that cannot be told, it says yes, so that
// nothing is deleted on a guess.
func (o owner) running() bool {
	start, err := processStart(o.PID)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	return err != nil || start == o.Start
}

func (o owner) sameProcess(p owner) bool { return o.PID == p.PID && o.Start == p.Start }

// lockOwners takes the lock that every look at the records and every
// making or deleting of a namespace holds; the kernel releases it with the
// process, however it ends.
func lockOwners() (unlock func(), err error) {
	if err := os.MkdirAll(ownerDir, 0o755); err != nil {
		return nil, fmt.Errorf("owner records: %w", err)
	}
	f, err := os.Open(ownerDir)
	if err != nil {
		return nil, fmt.Errorf("owner records: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", ownerDir, err)
	}
	return func() { f.Close() }, nil
}

func validNamespaceName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 255 || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("%q is not a namespace name", name)
	}
	return nil
}

// identify returns the identity of the namespace mounted at path.
func identify(path string) (nsID, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nsID{}, err
	}
	st := info.Sys().(*syscall.Stat_t)
	id := nsID{Dev: st.Dev, Inode: st.Ino}
	id.Cookie, err = cookie(path)
	return id, err
}

// is says whether the namespace at path is the one o recorded.
func (o owner) is(path string) bool {
	id, err := identify(path)
	if err != nil {
		return false // not a namespace, or one that cannot be told: not ours
	}
	return id == o.ns
}

// onNewThread calls f on a thread of its own that ends with it: f may move
// the thread to another namespace and leave it there, and no goroutine of
// the program ever runs in the wrong namespace, whatever fails.
func onNewThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: Go ends the thread with the goroutine
		errc <- f()
	}()
	return <-errc
}

// cookie returns the cookie of the namespace mounted at path, 0 if the
// kernel has no cookies.
func cookie(path string) (uint64, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	fd := -1
	err = onNewThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		// A socket belongs to the namespace it is made in, and tells its
		// cookie.
		var err error
		fd, err = syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	var v uint64
	n := uint32(unsafe.Sizeof(v))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, soNetnsCookie,
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	switch errno {
	case 0:
		return v, nil
	case syscall.ENOPROTOOPT:
		return 0, nil
	default:
		return 0, errno
	}
}

// makeNamespace makes a named namespace as ip netns add does, but fails
// with fs.ErrExist, having touched nothing, if the name is taken. Call it
// with the lock held.
func makeNamespace(name string) (netns.NsHandle, error) {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return -1, err
	}
	path := filepath.Join(netnsDir, name)
	// The mount point is made first, and only if there is none: from
	// here on, the path is ours.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return -1, err
	}
	f.Close()
	var ns netns.NsHandle = -1
	err = onNewThread(func() error {
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		thread := fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid())
		if err := syscall.Mount(thread, path, "none", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("mount on %s: %w", path, err)
		}
		var err error
		ns, err = netns.GetFromPath(path)
		return err
	})
	if err != nil {
		unmount(path)
		return -1, fmt.Errorf("create namespace %s: %w", name, err)
	}
	return ns, nil
}

// unmount deletes a named namespace: its mount, then its mount point. Call
// it only on a namespace proven ours.
func unmount(path string) error {
	// EINVAL: not mounted, a mount point left by a run that ended before
	// it mounted.
	if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
		return &fs.PathError{Op: "unmount", Path: path, Err: err}
	}
	return os.Remove(path)
}

// claimNamespace makes the named namespace and records this process as
// its owner. If the name is taken by a stale namespace of netsim's, it
// deletes that one first and tells note; any other it leaves alone and
// returns a *NamespaceTakenError.
func claimNamespace(name string, note func(string)) (netns.NsHandle, error) {
	if err := validNamespaceName(name); err != nil {
		return -1, err
	}
	me, err := self()
	if err != nil {
		return -1, err
	}
	unlock, err := lockOwners()
	if err != nil {
		return -1, err
	}
	defer unlock()
	for tries := 0; ; tries++ {
		ns, err := makeNamespace(name)
		if err == nil {
			// The namespace is recorded as soon as it is made. Should
			// this process die between the two, the namespace has no
			// record and the next run calls it someone else's: a user
			// removes it by hand rather than picosim delete a stranger's.
			rec := me
			if rec.ns, err = identify(filepath.Join(netnsDir, name)); err == nil {
				err = writeOwner(name, rec)
			}
			if err != nil {
				ns.Close()
				unmount(filepath.Join(netnsDir, name))
				return -1, err
			}
			return ns, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return -1, err
		}
		if tries > 0 { // deleted, and taken again by someone who does not lock
			return -1, &NamespaceTakenError{Name: name}
		}
		stale, err := removeLocked(name, me, true)
		switch {
		case errors.Is(err, fs.ErrNotExist): // gone meanwhile (ip netns delete): make it
		case err != nil:
			return -1, err
		case note != nil:
			note(fmt.Sprintf("removed stale namespace %s left by process %d (not running)", name, stale.PID))
		}
	}
}

// removeLocked deletes the named namespace if its record shows that netsim
// made it and that its process is not running, or is me unless onlyStale.
// It returns the record. A record whose namespace is gone, or has been
// replaced, goes; the namespace does not. With the lock held.
func removeLocked(name string, me owner, onlyStale bool) (owner, error) {
	path := filepath.Join(netnsDir, name)
	rec, err := readOwner(name)
	if err != nil {
		if _, serr := os.Lstat(path); serr != nil {
			return owner{}, serr // no namespace: nothing to refuse
		}
		return owner{}, &NamespaceTakenError{Name: name}
	}
	mine := rec.sameProcess(me)
	if (mine && onlyStale) || (!mine && rec.running()) {
		return owner{}, &NamespaceTakenError{Name: name, PID: rec.PID}
	}
	if !rec.is(path) {
		// The record outlived its namespace; what has the name now, if
		// anything, is not netsim's.
		os.Remove(filepath.Join(ownerDir, name))
		if _, err := os.Lstat(path); err != nil {
			return owner{}, err
		}
		return owner{}, &NamespaceTakenError{Name: name}
	}
	if err := unmount(path); err != nil {
		return owner{}, fmt.Errorf("delete namespace %s: %w", name, err)
	}
	// The record goes last: a process killed in between leaves a record
	// without a namespace, which the next look removes.
	if err := os.Remove(filepath.Join(ownerDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rec, err
	}
	return rec, nil
}

// SweepStaleNamespaces deletes the namespaces whose names start with prefix
// that netsim made in processes no longer running (killed before they
// could clean up), and returns their names. It touches no namespace without
// an owner record: not those made by ip netns add or by older versions of
// picosim, which are left to their owners.
func SweepStaleNamespaces(prefix string) ([]string, error) {
	me, err := self()
	if err != nil {
		return nil, err
	}
	unlock, err := lockOwners()
	if err != nil {
		return nil, err
	}
	defer unlock()
	entries, err := os.ReadDir(ownerDir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		_, err := removeLocked(name, me, true)
		var taken *NamespaceTakenError
		switch {
		case err == nil:
			removed = append(removed, name)
		case errors.Is(err, fs.ErrNotExist), errors.As(err, &taken), errors.Is(err, errBadRecord):
			// Gone already, in use, or not ours: not for a sweep.
		default:
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// CreateNamespace makes a named network namespace, as ip netns add NAME
// does, and records that this process owns it. A stale namespace of that
// name (see SweepStaleNamespaces) is deleted first; any other is left alone
// and the error is a *NamespaceTakenError.
func CreateNamespace(name string) error {
	ns, err := claimNamespace(name, nil)
	if err == nil {
		ns.Close()
	}
	return err
}

// DeleteNamespace deletes a named network namespace that netsim made, in
// this process or in one no longer running. Any other it leaves alone and
// returns a *NamespaceTakenError; fs.ErrNotExist if there is none.
func DeleteNamespace(name string) error {
	if err := validNamespaceName(name); err != nil {
		return err
	}
	me, err := self()
	if err != nil {
		return err
	}
	unlock, err := lockOwners()
	if err != nil {
		return err
	}
	defer unlock()
	_, err = removeLocked(name, me, false)
	return err
}
