package targets

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/firmware/host"
	"github.com/picosim/picosim/internal/tail"
	"github.com/picosim/picosim/internal/tlscert"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/ctl"
)

// EmulatedConfig says how to run emulated boards.
type EmulatedConfig struct {
	// Command starts one board's firmware built for Linux; --flash, --name
	// and --iface are added. Default: this program's own hostboard
	// command, [os.Executable(), "hostboard"] (call Reexec first thing in
	// main or TestMain).
	Command []string
	// Dir holds the boards' flash folders. Default: a new temporary
	// folder, removed by Close.
	Dir string
	// Log, if set, receives the boards' standard error, each line prefixed
	// with the board's name.
	Log io.Writer
}

// Emulated runs each board as a process of the firmware built for Linux
// (firmware/host), each in a network namespace of its own whose TAP device
// is a host of a simulated LAN, so every impairment of netsim applies to
// real kernel sockets. The LAN runs paced to the wall clock. Powering a
// board off kills its process (SIGKILL: it says nothing) and takes its host
// off the LAN; powering it on starts a new process on the same flash. The
// harness reads each board's console, and talks to the boards from a
// namespace of its own on the LAN, "laptop".
type Emulated struct {
	*fleet
	lanFaults
	key     []byte // keyed discovery and control (Spec.Key)
	tls     bool   // the boards serve control over TLS (Spec.ControlTLS)
	cfg     EmulatedConfig
	lan     *netsim.LAN
	cancel  context.CancelFunc
	paced   chan struct{}
	prefix  string // of this target's namespaces
	doors   map[string]*netsim.Door
	laptop  *netsim.Door
	procsMu sync.Mutex
	procs   map[string]*proc
	tmpDir  bool

	closeOnce sync.Once
	closeErr  error
}

var _ Target = (*Emulated)(nil)

// proc is one board's running firmware.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	killed atomic.Bool
	stderr *tail.Tail
}

// NamespacePrefix starts the name of every network namespace picosim makes.
const NamespacePrefix = "picosim-"

var (
	targets atomic.Int64 // numbers this process's targets
	devices atomic.Int64 // numbers their TAP devices

	openMu sync.Mutex
	open   = map[*Emulated]struct{}{} // targets not closed yet, for CloseAll
)

// NewEmulated starts the spec's boards, each in its namespace on a new LAN.
// It needs root (CAP_NET_ADMIN) and /dev/net/tun: CanEmulate says whether
// this machine has them.
func NewEmulated(spec Spec, cfg EmulatedConfig) (t *Emulated, err error) {
	switch {
	case spec.SoftAP:
		return nil, &Unsupported{Target: "emulated", Action: "network mode softap", Why: "emulated boards join the simulated router's LAN; a board as the access point is simulated only"}
	case spec.Addressing != netsim.Sticky:
		return nil, &Unsupported{Target: "emulated", Action: "addressing " + spec.Addressing.String(), Why: "an emulated board keeps the address its namespace was given"}
	}
	if len(cfg.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfg.Command = []string{exe, "hostboard"}
	}
	SweepNamespaces()
	t = &Emulated{cfg: cfg, key: spec.Key, tls: spec.ControlTLS, doors: map[string]*netsim.Door{}, procs: map[string]*proc{}, paced: make(chan struct{}),
		prefix: fmt.Sprintf("%s%d-%d-", NamespacePrefix, os.Getpid(), targets.Add(1))}
	t.fleet = newFleet("emulated", spec.Names(), spec.OnEvent)
	t.lanFaults = lanFaults{lan: func() *netsim.LAN { return t.lan }, note: t.record, isBoard: func(b string) bool { return t.doors[b] != nil }}
	t.fleet.connected = func(a, b string) bool { return t.lan.Connected(t.lan.Host(a), t.lan.Host(b)) }
	t.fleet.onNet = func(b string) bool { return t.lan.Host(b).Associated() }
	if t.cfg.Dir == "" {
		if t.cfg.Dir, err = os.MkdirTemp("", "picosim-emulated-"); err != nil {
			return nil, err
		}
		t.tmpDir = true
	}
	openMu.Lock()
	open[t] = struct{}{}
	openMu.Unlock()
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	clk := clock.NewVirtual()
	if t.lan, err = netsim.New(netsim.Config{Seed: spec.Seed, Clock: clk}); err != nil {
		return nil, err
	}
	for _, b := range spec.Boards {
		profile := spec.radio(b.Name)
		door, err := t.lan.OpenDoor(netsim.DoorConfig{Netns: t.prefix + b.Name, Name: b.Name, Device: device(), Inner: "wlan0",
			Down: spec.Link, Profile: profile})
		if err != nil {
			return nil, err
		}
		t.doors[b.Name] = door
		door.PowerOff() // on when its process starts
		// The factory writes the board's settings into its flash, and with
		// ControlTLS a certificate and key where the real server keeps them.
		if err := host.DirFlash(t.flash(b.Name)).WriteFile(firmware.FileSettings, spec.settings(b).JSON()); err != nil {
			return nil, err
		}
		if spec.ControlTLS {
			certDER, keyDER, err := tlscert.Generate()
			if err != nil {
				return nil, err
			}
			if err := host.DirFlash(t.flash(b.Name)).WriteFile(tlscert.CertFile, certDER); err != nil {
				return nil, err
			}
			if err := host.DirFlash(t.flash(b.Name)).WriteFile(tlscert.KeyFile, keyDER); err != nil {
				return nil, err
			}
		}
	}
	if t.laptop, err = t.lan.OpenDoor(netsim.DoorConfig{Netns: t.prefix + "laptop", Name: "laptop", Device: device(), Inner: "eth0"}); err != nil {
		return nil, err
	}
	if err := setLinks(t.lan, spec); err != nil {
		return nil, err
	}
	if spec.Capture != nil {
		if _, err := t.lan.StartCapture(spec.Capture); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go func() { clk.RunPaced(ctx, 1); close(t.paced) }()
	for _, b := range spec.Boards {
		if err := t.PowerOn(b.Name); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// device names a TAP device uniquely on this machine, within the 15
// characters Linux allows; inside its namespace it is renamed.
func device() string {
	return fmt.Sprintf("psim%d.%d", os.Getpid()%100000, devices.Add(1))
}

func (t *Emulated) flash(board string) string { return filepath.Join(t.cfg.Dir, board) }

// LAN returns the simulated LAN the boards are on.
func (t *Emulated) LAN() *netsim.LAN { return t.lan }

// Netns returns the namespace a board's process runs in; "laptop" is the
// harness's own.
func (t *Emulated) Netns(board string) string { return t.prefix + board }

// PID returns the process of a board's firmware, 0 while it is off.
func (t *Emulated) PID(board string) int {
	t.procsMu.Lock()
	defer t.procsMu.Unlock()
	if p := t.procs[board]; p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// PowerOn starts a board's firmware process in its namespace.
func (t *Emulated) PowerOn(board string) error {
	door := t.doors[board]
	if door == nil {
		return fmt.Errorf("no board %q", board)
	}
	if t.Powered(board) {
		return nil
	}
	if err := door.PowerOn(); err != nil {
		return err
	}
	args := append(append([]string(nil), t.cfg.Command[1:]...), "--flash", t.flash(board), "--name", board, "--iface", "wlan0")
	cmd := exec.Command(t.cfg.Command[0], args...)
	// The firmware dies with the harness, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{}), stderr: &tail.Tail{Keep: 2048, Name: board, Log: t.cfg.Log}}
	cmd.Stderr = p.stderr
	t.setPowered(board, true)
	if err := startOnOwnThread(door, cmd, p.exited); err != nil {
		t.setPowered(board, false)
		door.PowerOff()
		return fmt.Errorf("start %s: %w", board, err)
	}
	t.procsMu.Lock()
	t.procs[board] = p
	t.procsMu.Unlock()
	t.record(sim.Event{Board: board, Kind: sim.EvPowerOn, IP: door.Host().IP().String(),
		Detail: fmt.Sprintf("at %s (process %d in %s)", door.Host().IP(), cmd.Process.Pid, t.Netns(board))})
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var l firmware.Line
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				switch l.Kind {
				case firmware.EvRejoin:
					// The board's radio is its door host: the watchdog's
					// rejoin is carried out there.
					door.Host().Rejoin()
				case firmware.EvRelisten:
					door.Host().Unwedge() // its listeners are new ones
				case firmware.EvSleep:
					// A light sleep: the door host's radio holds the board's
					// frames if it does not wake it (netsim.PicoW.NoWakeOnWLAN).
					if d, ok := strings.CutPrefix(l.Detail, "light, "); ok {
						if d, err := time.ParseDuration(d); err == nil {
							door.Host().Doze(d)
						}
					}
				case firmware.EvWake:
					door.Host().Wake()
				}
				t.line(board, l, t.Now())
			}
		}
	}()
	go func() {
		<-read
		err := cmd.Wait()
		if !p.killed.Load() {
			t.down(board, sim.Event{Kind: "exit", Detail: fmt.Sprintf("the firmware process ended: %v; %s", err, p.stderr.String())})
		}
		close(p.exited)
	}()
	return nil
}

// startOnOwnThread starts cmd in the door's namespace from a thread that
// lives until exited is closed. The kernel sends Pdeathsig when the thread
// that forked a process ends, not the process: started from a thread Go
// later ends (one that a goroutine locked and left, as entering a namespace
// does), a board was killed at once, seconds into a run, whenever several
// runs shared the process.
func startOnOwnThread(door *netsim.Door, cmd *exec.Cmd, exited <-chan struct{}) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends after the process
		err := door.Run(cmd.Start)
		started <- err
		if err == nil {
			<-exited
		}
	}()
	return <-started
}

// PowerOff cuts a board's power: its host leaves the LAN at once, then its
// process is killed.
func (t *Emulated) PowerOff(board string) error { return t.kill(board, "(process killed)") }

func (t *Emulated) kill(board, why string) error {
	door := t.doors[board]
	if door == nil {
		return fmt.Errorf("no board %q", board)
	}
	if !t.Powered(board) {
		return nil
	}
	door.PowerOff()
	t.setPowered(board, false)
	t.procsMu.Lock()
	p := t.procs[board]
	delete(t.procs, board)
	t.procsMu.Unlock()
	if p != nil {
		p.killed.Store(true)
		p.cmd.Process.Kill()
		<-p.exited
	}
	t.record(sim.Event{Board: board, Kind: sim.EvPowerOff, Detail: why})
	return nil
}

// Counter reads the LAN's counters of a board's host, or its firmware's.
func (t *Emulated) Counter(board, name string) (uint64, error) {
	return t.counter(board, name, t.nodeCounter)
}

// Controller connects from the laptop namespace, with the retries the
// boards' flaky connects call for.
func (t *Emulated) Controller(from, board string) (Conn, error) {
	door := t.doors[board]
	if door == nil {
		return nil, fmt.Errorf("no board %q", board)
	}
	c, err := dialBoard(netip.AddrPortFrom(door.Host().IP(), control.Port), t.laptop.Run, 3, 10*time.Second, t.key, t.tls)
	if err != nil {
		return nil, err
	}
	return t.conn(board, c, false), nil
}

// Hello broadcasts HELLO from the laptop namespace.
func (t *Emulated) Hello(within time.Duration, unsigned bool) (Full, error) {
	return hello(within, netip.AddrFrom4([4]byte{255, 255, 255, 255}), t.laptop.Run, keyUnless(t.key, unsigned), t.laptop.Host().IP())
}

// Close kills every board, removes the namespaces and devices, and the
// flash folders if they were temporary. It is safe to call twice.
func (t *Emulated) Close() error {
	t.closeOnce.Do(func() {
		var errs []error
		for board := range t.doors {
			if err := t.kill(board, "(the run is over)"); err != nil {
				errs = append(errs, err)
			}
		}
		if t.lan != nil {
			if err := t.lan.Close(); err != nil { // flushes a capture
				errs = append(errs, err)
			}
		}
		if t.cancel != nil {
			t.cancel()
			<-t.paced
		}
		for _, d := range t.doors {
			if err := d.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if t.laptop != nil {
			if err := t.laptop.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if t.tmpDir {
			os.RemoveAll(t.cfg.Dir)
		}
		openMu.Lock()
		delete(open, t)
		openMu.Unlock()
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// CloseAll closes every emulated target still open in this process: call it
// when interrupted, so that no process or namespace is left behind.
func CloseAll() {
	openMu.Lock()
	var all []*Emulated
	for t := range open {
		all = append(all, t)
	}
	openMu.Unlock()
	for _, t := range all {
		t.Close()
	}
}

// SweepNamespaces removes the namespaces of picosim processes that are no
// longer running (killed before they could clean up), and reports which.
// The name does not make a namespace picosim's: only those netsim recorded
// as made by a process now gone go (netsim.SweepStaleNamespaces), never one
// without its owner record. It sweeps what it can: an error here is no
// reason not to start.
func SweepNamespaces() []string {
	removed, _ := netsim.SweepStaleNamespaces(NamespacePrefix)
	return removed
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// CanEmulate says why this machine cannot run emulated boards, or nil: it
// needs root's CAP_NET_ADMIN for namespaces and /dev/net/tun for the TAP
// devices. PICOSIM_EMULATED=off says no on any machine (a quick make test
// without the specs that run in wall-clock time).
func CanEmulate() error {
	if os.Getenv("PICOSIM_EMULATED") == "off" {
		return errors.New("PICOSIM_EMULATED=off")
	}
	if os.Geteuid() != 0 {
		return errors.New("emulated boards need root (network namespaces and TAP devices need CAP_NET_ADMIN)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("emulated boards need /dev/net/tun: %v", err)
	}
	name := fmt.Sprintf("%s%d-probe", NamespacePrefix, os.Getpid())
	if err := netsim.CreateNamespace(name); err != nil {
		return fmt.Errorf("cannot create a network namespace here: %v", err)
	}
	netsim.DeleteNamespace(name)
	return nil
}

type remoteConn struct{ c *ctl.Client }

func (r remoteConn) Do(line string) (Reply, error) {
	rep, err := r.c.DoLine(context.Background(), line)
	return Reply{Raw: rep.Raw, Fields: rep.Fields}, err
}
func (r remoteConn) Closed() bool               { return r.c.Closed() }
func (r remoteConn) SetTimeout(d time.Duration) { r.c.SetTimeout(d) }
func (r remoteConn) Close()                     { r.c.Close() }

// hello plays the desktop client of shared/seeds/003 over kernel sockets:
// HELLO to UDP 37020 at bcast every half second, until a FULL answers.
// With a key, the HELLO is sealed as sent from src (the desktop's address,
// which a socket bound to the broadcast port cannot tell).
func hello(within time.Duration, bcast netip.Addr, in func(func() error) error, key []byte, src netip.Addr) (Full, error) {
	k, err := newKeyring(key)
	if err != nil {
		return Full{}, err
	}
	if k.m != nil && !src.IsValid() {
		return Full{}, &Unsupported{Target: "hw", Action: "hello", Why: "a keyed HELLO needs the desktop's own address, which only the sim and emulated targets know"}
	}
	frame := helloFrame
	if k.m != nil {
		frame = k.seal(src, helloFrame)
	}
	var pc *net.UDPConn
	if err := in(func() (err error) { pc, err = net.ListenUDP("udp4", &net.UDPAddr{Port: node.Port}); return err }); err != nil {
		return Full{}, fmt.Errorf("desktop client: %w", err)
	}
	defer pc.Close()
	deadline := time.Now().Add(within)
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(bcast, node.Port))
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		if _, err := pc.WriteToUDP(frame, to); err != nil {
			return Full{}, fmt.Errorf("desktop client: %w", err)
		}
		next := time.Now().Add(helloRetry)
		if deadline.Before(next) {
			next = deadline
		}
		pc.SetReadDeadline(next)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if f, ok := decodeFull(k.open(from.Addr(), buf[:n])); ok {
				f.From = from.Addr().Unmap().String()
				return f, nil
			}
		}
	}
	return Full{}, fmt.Errorf("%w within %v", ErrNoFull, within)
}

func (t *Emulated) StartApp(a App) error             { return startApp(t, a) }
func (t *Emulated) StopApp(board, name string) error { return stopApp(t, board, name) }

// setLinks applies a spec's per-board and per-pair links to a LAN.
func setLinks(lan *netsim.LAN, spec Spec) error {
	for b, l := range spec.Links {
		if err := lan.SetLink(b, netsim.Down, l); err != nil {
			return err
		}
	}
	for _, p := range spec.Pairs {
		if err := lan.SetPair(p.From, p.To, p.Link); err != nil {
			return err
		}
	}
	return nil
}
