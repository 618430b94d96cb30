package netsim

// Tests of which namespaces a door may delete (netns.go). They are inside
// the package to read and forge owner records. They need root, the ip
// command and /dev/net/tun.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ownerEnv makes the test binary, started as a child, a process that opens
// a door and keeps it open until its standard input ends: a picosim to kill.
const ownerEnv = "PICOSIM_TEST_DOOR_OWNER"

func init() {
	spec := os.Getenv(ownerEnv)
	if spec == "" {
		return
	}
	ns, dev, _ := strings.Cut(spec, ",")
	lan, err := New(Config{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	d, err := lan.OpenDoor(DoorConfig{Netns: ns, Device: dev})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // the test ends, or fails: clean up
	d.Close()
	lan.Close()
	os.Exit(0)
}

// needDoors skips outside CI when the machine cannot make namespaces and
// TAP devices; in CI (root, iproute2 from `make tools`) it must work.
func needDoors(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "doors need root (CAP_NET_ADMIN for namespaces and TAP devices)"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "the tests need the ip command (iproute2)"
	} else if _, err := os.Stat("/dev/net/tun"); err != nil {
		why = "doors need /dev/net/tun"
	}
	if why != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(why + ", and CI has them")
		}
		t.Skip(why)
	}
}

var testDevices atomic.Int64

// testDevice names a TAP device uniquely on this machine in 15 characters,
// not picosim up's default.
func testDevice() string { return fmt.Sprintf("pst%d.%d", os.Getpid()%100000, testDevices.Add(1)) }

// testNamespace returns a namespace name no one else uses, and removes the
// namespace and its record when the test ends, whoever made them.
func testNamespace(t *testing.T, kind string) string {
	name := fmt.Sprintf("picosim-test-%s-%d-%x", kind, os.Getpid(), rand.Uint32())
	t.Cleanup(func() { forget(name) })
	return name
}

func forget(name string) {
	exec.Command("ip", "netns", "delete", name).Run()
	os.Remove(filepath.Join(ownerDir, name))
}

func ipNetnsAdd(t *testing.T, name string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", name, err, out)
	}
}

func testLAN(t *testing.T) *LAN {
	t.Helper()
	lan, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lan.Close() })
	return lan
}

// nsOf returns the identity of the namespace of that name, failing the test
// if there is none.
func nsOf(t *testing.T, name string) nsID {
	t.Helper()
	id, err := identify(filepath.Join(netnsDir, name))
	if err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	return id
}

func exists(name string) bool {
	_, err := os.Lstat(filepath.Join(netnsDir, name))
	return err == nil
}

// startOwner starts a child process that opens a door in namespace name,
// and returns it once the door is open; the test's end kills it.
func startOwner(t *testing.T, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), ownerEnv+"="+name+","+testDevice())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s != "ready" {
			t.Fatalf("child process %d: %q", cmd.Process.Pid, s)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("child process %d opened no door in 30s", cmd.Process.Pid)
	}
	return cmd
}

// makeStale makes a namespace of netsim's as a process that is no longer
// running would have left it: its record's start time is not this
// process's, as if the PID had been reused.
func makeStale(t *testing.T, name string) owner {
	t.Helper()
	if err := CreateNamespace(name); err != nil {
		t.Fatal(err)
	}
	rec, err := readOwner(name)
	if err != nil {
		t.Fatal(err)
	}
	rec.Start++
	if err := writeOwner(name, rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestDoorLeavesANamespaceItDidNotMakeAlone(t *testing.T) {
	needDoors(t)
	name := testNamespace(t, "foreign")
	ipNetnsAdd(t, name)
	before := nsOf(t, name)

	d, err := testLAN(t).OpenDoor(DoorConfig{Netns: name, Device: testDevice()})
	if err == nil {
		d.Close()
		t.Fatalf("OpenDoor opened a door in %s, made by ip netns add", name)
	}
	var taken *NamespaceTakenError
	if !errors.As(err, &taken) || taken.PID != 0 {
		t.Fatalf("OpenDoor: %v, want a NamespaceTakenError without a process", err)
	}
	for _, want := range []string{"namespace " + name + " already exists", "ip netns delete " + name, "choose another name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("OpenDoor: %q, want it to say %q", err, want)
		}
	}
	if after := nsOf(t, name); after != before {
		t.Fatalf("namespace %s was replaced: %+v, was %+v", name, after, before)
	}
	if _, err := readOwner(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("owner record of %s: %v, want none", name, err)
	}

	// Nor does anything else in netsim delete it.
	if removed, err := SweepStaleNamespaces("picosim-test-foreign-"); err != nil || slices.Contains(removed, name) {
		t.Errorf("SweepStaleNamespaces: %v, %v", removed, err)
	}
	if err := CreateNamespace(name); !errors.As(err, &taken) {
		t.Errorf("CreateNamespace: %v, want a NamespaceTakenError", err)
	}
	if err := DeleteNamespace(name); !errors.As(err, &taken) {
		t.Errorf("DeleteNamespace: %v, want a NamespaceTakenError", err)
	}
	if after := nsOf(t, name); after != before {
		t.Fatalf("namespace %s was replaced: %+v, was %+v", name, after, before)
	}
}

func TestDoorRefusesANamespaceARunningPicosimMade(t *testing.T) {
	needDoors(t)
	name := testNamespace(t, "live")
	child := startOwner(t, name)
	pid := child.Process.Pid
	before := nsOf(t, name)
	if rec, err := readOwner(name); err != nil || rec.PID != pid {
		t.Fatalf("owner record of %s: %+v, %v; want process %d", name, rec, err, pid)
	}

	d, err := testLAN(t).OpenDoor(DoorConfig{Netns: name, Device: testDevice()})
	if err == nil {
		d.Close()
		t.Fatalf("OpenDoor opened a door in %s, in use by process %d", name, pid)
	}
	var taken *NamespaceTakenError
	if !errors.As(err, &taken) || taken.PID != pid {
		t.Fatalf("OpenDoor: %v, want a NamespaceTakenError naming process %d", err, pid)
	}
	if want := fmt.Sprintf("namespace %s is in use by picosim process %d", name, pid); !strings.Contains(err.Error(), want) {
		t.Errorf("OpenDoor: %q, want it to say %q", err, want)
	}
	if removed, err := SweepStaleNamespaces(name); err != nil || len(removed) > 0 {
		t.Errorf("SweepStaleNamespaces: %v, %v", removed, err)
	}
	if after := nsOf(t, name); after != before {
		t.Fatalf("namespace %s was replaced: %+v, was %+v", name, after, before)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
}

func TestDoorReplacesTheNamespaceOfAKilledPicosim(t *testing.T) {
	needDoors(t)
	name := testNamespace(t, "stale")
	child := startOwner(t, name)
	pid := child.Process.Pid
	before := nsOf(t, name)
	child.Process.Kill() // SIGKILL: no cleanup
	child.Wait()
	if !exists(name) {
		t.Fatalf("namespace %s went with its process: nothing stale to test", name)
	}

	var logs []string
	d, err := testLAN(t).OpenDoor(DoorConfig{Netns: name, Device: testDevice(), Log: func(s string) { logs = append(logs, s) }})
	if err != nil {
		t.Fatalf("OpenDoor: %v", err)
	}
	want := fmt.Sprintf("removed stale namespace %s left by process %d (not running)", name, pid)
	if !slices.Equal(logs, []string{want}) {
		t.Errorf("logged %q, want %q", logs, want)
	}
	if nsOf(t, name) == before {
		t.Errorf("namespace %s is the killed process's still", name)
	}
	if rec, err := readOwner(name); err != nil || rec.PID != os.Getpid() {
		t.Errorf("owner record of %s: %+v, %v; want this process, %d", name, rec, err, os.Getpid())
	}

	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if exists(name) {
		t.Errorf("namespace %s is still there after Close", name)
	}
	if _, err := readOwner(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("owner record of %s after Close: %v, want none", name, err)
	}
}

func TestDoorTellsAReusedPIDFromTheProcessThatMadeTheNamespace(t *testing.T) {
	needDoors(t)
	name := testNamespace(t, "reused")
	makeStale(t, name) // its PID is this process's, its start time not

	var logs []string
	d, err := testLAN(t).OpenDoor(DoorConfig{Netns: name, Device: testDevice(), Log: func(s string) { logs = append(logs, s) }})
	if err != nil {
		t.Fatalf("OpenDoor: %v", err)
	}
	defer d.Close()
	if want := fmt.Sprintf("removed stale namespace %s left by process %d (not running)", name, os.Getpid()); !slices.Equal(logs, []string{want}) {
		t.Errorf("logged %q, want %q", logs, want)
	}
}

func TestDoorLeavesANamespaceMadeSinceUnderTheSameNameAlone(t *testing.T) {
	needDoors(t)
	name := testNamespace(t, "replaced")
	makeStale(t, name)
	// Someone deletes picosim's namespace and makes their own of that
	// name; the record stays. The kernel may well give the new namespace
	// the old one's inode number.
	if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns delete: %v\n%s", err, out)
	}
	ipNetnsAdd(t, name)
	before := nsOf(t, name)

	d, err := testLAN(t).OpenDoor(DoorConfig{Netns: name, Device: testDevice()})
	if err == nil {
		d.Close()
		t.Fatalf("OpenDoor opened a door in %s, made by ip netns add", name)
	}
	var taken *NamespaceTakenError
	if !errors.As(err, &taken) || taken.PID != 0 {
		t.Fatalf("OpenDoor: %v, want a NamespaceTakenError without a process", err)
	}
	if after := nsOf(t, name); after != before {
		t.Fatalf("namespace %s was replaced: %+v, was %+v", name, after, before)
	}
	if _, err := readOwner(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the obsolete owner record of %s is still there: %v", name, err)
	}
}

func TestDoorThatFailsDeletesOnlyTheNamespaceItMade(t *testing.T) {
	needDoors(t)
	name := testNamespace(t, "failed")
	// A device name Linux refuses: the door fails after it made the
	// namespace.
	if _, err := testLAN(t).OpenDoor(DoorConfig{Netns: name, Device: "pst/bad"}); err == nil || !strings.Contains(err.Error(), "open TAP") {
		t.Fatalf("OpenDoor: %v, want it to fail opening the TAP device", err)
	}
	if exists(name) {
		t.Errorf("namespace %s is still there", name)
	}
	if _, err := readOwner(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("owner record of %s: %v, want none", name, err)
	}
}

func TestSweepStaleNamespacesDeletesOnlyStaleOnesOfNetsims(t *testing.T) {
	needDoors(t)
	prefix := fmt.Sprintf("picosim-test-sweep-%d-%x-", os.Getpid(), rand.Uint32())
	stale, live, foreign, gone := prefix+"stale", prefix+"live", prefix+"foreign", prefix+"gone"
	for _, n := range []string{stale, live, foreign, gone} {
		t.Cleanup(func() { forget(n) })
	}
	makeStale(t, stale)
	if err := CreateNamespace(live); err != nil {
		t.Fatal(err)
	}
	ipNetnsAdd(t, foreign)
	// A record whose namespace is gone (deleted by hand) goes too.
	rec := makeStale(t, gone)
	if err := unmount(filepath.Join(netnsDir, gone)); err != nil {
		t.Fatal(err)
	}

	removed, err := SweepStaleNamespaces(prefix)
	if err != nil || !slices.Equal(removed, []string{stale}) {
		t.Fatalf("SweepStaleNamespaces: %v, %v; want [%s]", removed, err, stale)
	}
	if exists(stale) || !exists(live) || !exists(foreign) {
		t.Errorf("namespaces after the sweep: stale %v, live %v, foreign %v; want false, true, true", exists(stale), exists(live), exists(foreign))
	}
	if _, err := readOwner(gone); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record of %s (process %d, namespace gone): %v, want none", gone, rec.PID, err)
	}
	if err := DeleteNamespace(live); err != nil {
		t.Errorf("DeleteNamespace(%s), made by this process: %v", live, err)
	}
}

func TestOwnerRecordsReadBackAndRefuseGarbage(t *testing.T) {
	o := owner{PID: 1234, Start: 5678, ns: nsID{Dev: 4, Inode: 4026532281, Cookie: 17}}
	if got, err := parseOwner([]byte(o.String())); err != nil || got != o {
		t.Errorf("parseOwner(%q) = %+v, %v", o, got, err)
	}
	for _, bad := range []string{"", "pid 1234\n", "pid x\nstart 1\ndev 1\ninode 1\n", "pid 0\nstart 1\ndev 1\ninode 1\n", "pid 1\npid 2\nstart 1\ndev 1\ninode 1\n"} {
		if _, err := parseOwner([]byte(bad)); !errors.Is(err, errBadRecord) {
			t.Errorf("parseOwner(%q): %v, want errBadRecord", bad, err)
		}
	}
	if _, err := processStart(1 << 30); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("processStart of no process: %v, want fs.ErrNotExist", err)
	}
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
	}
}

func TestProcessStartReadsField22AndTakesAZombieForEnded(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	// The command, field 2 of /proc/PID/stat, holds spaces and
	// parentheses: the fields after it must still be counted right.
	exe := filepath.Join(t.TempDir(), "pico sim) (x 1 2")
	if err := os.Symlink(sleep, exe); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	mine, err := processStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start, err := processStart(cmd.Process.Pid)
	if err != nil || start < mine {
		t.Fatalf("processStart(%d) = %d, %v; this process started at %d, before it", cmd.Process.Pid, start, err, mine)
	}
	rec := owner{PID: cmd.Process.Pid, Start: start}
	if !rec.running() {
		t.Errorf("process %d is not running, says its record", rec.PID)
	}
	// Killed and not yet collected (no Wait), it is a zombie: ended.
	cmd.Process.Kill()
	eventually(t, 10*time.Second, "the killed process still runs, says its record", func() bool { return !rec.running() })
}
