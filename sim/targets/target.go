// Package target provides the boards a scenario runs on, behind one
// interface: simulated boards in simulated time (Sim), emulated boards —
// the firmware built for Linux, one process per board, each in a network
// namespace on the simulated LAN — in wall-clock time (Emulated), and real
// Pico W boards from an inventory (HW). The scenario runner talks to boards
// only through Target, so one YAML scenario runs unchanged on all three.
//
// A target that cannot do something (partition real WiFi, start a
// simulator app on a process) returns an *Unsupported error saying why; the
// runner shows the step as skipped with that reason, never as passed.
package targets

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/sim"
)

// Kinds are the targets' names, as `picosim run --target` takes them.
var Kinds = []string{"sim", "emulated", "hw", "rp2040"}

// Target is a cluster of boards and the network between them.
type Target interface {
	// Kind is "sim", "emulated" or "hw".
	Kind() string
	// Now is the time since the run began: simulated on sim, wall-clock
	// time on the others.
	Now() time.Duration
	// RunUntil lets time pass until done returns true or until the absolute
	// time deadline, and reports whether done did. done is checked after
	// every event (sim) or whenever a board reports a change, and at least
	// every PollEvery (the others); a nil done waits out the deadline.
	RunUntil(deadline time.Duration, done func() bool) bool
	// Timeline is what happened so far: what the boards reported and the
	// faults the harness injected.
	Timeline() sim.Timeline
	// Close stops everything and removes what the target made (processes,
	// namespaces, devices); it is safe to call twice.
	Close() error

	Faults
	Observer

	// Controller opens a control-protocol connection to a board, from the
	// controller named from ("" for the default one) on the boards'
	// network: on sim each name is a host of its own, whose earlier
	// connection closes; elsewhere each call is a connection of its own.
	Controller(from, board string) (Conn, error)
	// Hello broadcasts HELLO as the desktop client of shared/seeds/003 and
	// returns the first FULL that answers within the time given; unsigned,
	// without the network's key.
	Hello(within time.Duration, unsigned bool) (Full, error)
	// StartApp and StopApp run the apps of node/apps on a board, as the
	// firmware's start_app and stop_app commands do: an app started stays in
	// the board's settings and starts again at every boot.
	StartApp(a App) error
	StopApp(board, name string) error
}

// Rogue is a target with a rogue host on its boards' network, which forges
// discovery frames and runs hostile control clients (the sim target).
type Rogue interface {
	// Forge sends count forged frames, every apart, the first now; the
	// others go while the run goes on.
	Forge(f sim.Forgery, count int, every time.Duration) error
	Attack(a *sim.Attack) error
	// UnsignedController connects an intruder's controller, which does not
	// hold the network's key.
	UnsignedController(board string) (Conn, error)
}

// Faults come in pairs that take board names.
type Faults interface {
	PowerOff(board string) error
	PowerOn(board string) error
	Partition(groups ...[]string) error
	Heal() error
	// SetLink changes what a board receives through; SetPairLink the frames
	// from one board to another (a zero Link: back to the receiver's own).
	SetLink(board string, l netsim.Link) error
	SetPairLink(from, to string, l netsim.Link) error
	// RadioFault puts a board's radio in a fault state (netsim.FaultSilent
	// or netsim.FaultStall) until the board joins WiFi again.
	RadioFault(board, fault string) error
}

// Observer is what the checks read. Each returns what holds now.
type Observer interface {
	// Boards lists the boards in address order.
	Boards() []string
	// Up reports whether a board is on the network with discovery running;
	// Powered whether it has power at all (it may be joining WiFi).
	Up(board string) bool
	Powered(board string) bool
	// View is what a board last reported of itself (its get_state); a board
	// that is not up reports only its name.
	View(board string) firmware.State
	// Agreement, Safety and AgreedMaster are the checkers of package check.
	Agreement() error
	Safety() error
	AgreedMaster() (string, bool)
	// Stability holds when no board changed role or master since t.
	Stability(since time.Duration) error
	// Pin is a GPIO's level; PinEvents its changes with their causes.
	Pin(board string, pin int) (int, error)
	PinEvents(board string, pin int) ([]sim.PinEvent, error)
	// Counter is one of CounterNames for a board.
	Counter(board, name string) (uint64, error)
	// AppStats sums an app's counters over the boards that run it (or
	// those named), over every boot.
	AppStats(name string, boards ...string) (apps.Stats, error)
}

// Spec is the cluster a scenario asks for, whatever runs it.
type Spec struct {
	Boards []BoardSpec // in address order
	Seed   uint64
	// Node timings; zero keeps the defaults (1s, 3).
	Heartbeat    time.Duration
	MissLimit    int
	RevertOnLoss bool
	// Network: the LAN's shape and impairments (sim and emulated).
	SoftAP bool         // the first board is the soft AP
	Radio  netsim.Radio // the Pico W's (the zero value: join delay, power saving) or an ideal one
	// Radios gives boards a Pico W radio of their own (failure rates, say;
	// sim only), in place of Radio's.
	Radios map[string]netsim.PicoW
	// NoWatchdog turns the boards' WiFi watchdog off (firmware.Settings).
	NoWatchdog bool
	Addressing netsim.Addressing
	Link       netsim.Link            // of every frame a board receives
	Links      map[string]netsim.Link // per board, instead of Link
	Pairs      []Pair
	// ControlTLS: the boards serve their control port over TLS with a
	// certificate and key in their flash, as piconetcontrol's server does,
	// and the harness's controllers speak TLS (emulated only: simulated
	// boards and picosim's Pico W image serve plain TCP).
	ControlTLS bool
	// Key, if set, turns on keyed discovery and control: boards hold it in
	// their settings, and the harness's controller and desktop client sign
	// with it.
	Key []byte
	// Capture, if set, receives a pcapng capture of the LAN.
	Capture io.Writer
	// OnEvent, if set, sees every timeline event as it happens.
	OnEvent func(sim.Event)
}

// BoardSpec is one board: its name and the pins its firmware sets up.
type BoardSpec struct {
	Name string
	Pins []firmware.PinSetup
}

// Pair is the link of frames from one board to another.
type Pair struct {
	From, To string
	Link     netsim.Link
}

// radio is a board's radio on a LAN the target builds: its own from Radios,
// else the Pico W's (Radio), else none (ideal).
func (s Spec) radio(board string) *netsim.PicoW {
	if r, ok := s.Radios[board]; ok {
		return &r
	}
	if s.Radio == netsim.PicoWRadio {
		return &netsim.PicoW{}
	}
	return nil
}

// settings are the firmware settings that give a board the spec's name,
// timings and pins (config/config_node.json).
func (s Spec) settings(b BoardSpec) firmware.Settings {
	return firmware.Settings{Name: b.Name, Heartbeat: s.Heartbeat, MissLimit: s.MissLimit, RevertOnLoss: s.RevertOnLoss, Pins: b.Pins, Key: s.Key, NoWatchdog: s.NoWatchdog}
}

// Names lists the boards' names.
func (s Spec) Names() []string {
	names := make([]string, len(s.Boards))
	for i, b := range s.Boards {
		names[i] = b.Name
	}
	return names
}

// App is an app of node/apps to start on a board.
type App struct {
	Board string
	apps.Spec
}

// startApp starts an app through a control connection to its board, with
// the firmware's start_app command.
func startApp(t Target, a App) error {
	cmd := map[string]any{"action": "start_app", "app": a.App}
	for k, v := range map[string]string{"server": a.Server, "source": a.Source, "target": a.Target} {
		if v != "" {
			cmd[k] = v
		}
	}
	if a.Interval > 0 {
		cmd["interval_ms"] = a.Interval.Milliseconds()
	}
	if a.Source != "" {
		cmd["source_pin"], cmd["target_pin"] = a.SourcePin, a.TargetPin
	}
	return doOn(t, a.Board, cmd)
}

// stopApp stops one with stop_app.
func stopApp(t Target, board, name string) error {
	return doOn(t, board, map[string]any{"action": "stop_app", "app": name})
}

func doOn(t Target, board string, cmd map[string]any) error {
	c, err := t.Controller("", board)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(cmd)
	r, err := c.Do(string(line))
	if err != nil {
		return err
	}
	if msg := r.Err(); msg != "" {
		return fmt.Errorf("%s on %s: %s", cmd["action"], board, msg)
	}
	return nil
}

// Conn is one control-protocol connection.
type Conn interface {
	// Do sends one command (a JSON object, without "\n") and returns its
	// reply.
	Do(line string) (Reply, error)
	// Closed reports whether the board closed the connection.
	Closed() bool
	// SetTimeout bounds the wait for each reply from now on (0: the
	// target's default, 10s).
	SetTimeout(d time.Duration)
	// Close ends it, as a controller that goes away.
	Close()
}

// Reply is one reply line.
type Reply struct {
	Raw    string
	Fields map[string]any
}

// Err returns the reply's error message, "" if it is not an error reply.
func (r Reply) Err() string {
	s, _ := r.Fields["error"].(string)
	return s
}

// ErrNoFull is Hello's error when no FULL answered in time.
var ErrNoFull = errors.New("no FULL from the registry")

// Full is a FULL frame's answer to HELLO: who sent it, how many members.
type Full struct {
	From    string
	Members int
	Names   []string // of the members listed, in the frame's order
}

// Unsupported is the error of an action a target cannot carry out.
type Unsupported struct {
	Target, Action, Why string
}

func (u *Unsupported) Error() string {
	return u.Action + " is not possible on the " + u.Target + " target: " + u.Why
}

// IsUnsupported reports whether err says that the target cannot do it.
func IsUnsupported(err error) (*Unsupported, bool) {
	var u *Unsupported
	ok := errors.As(err, &u)
	return u, ok
}

// PollEvery bounds how long a target on wall-clock time waits between two
// looks at its boards.
const PollEvery = 50 * time.Millisecond

// noTLSImage is why picosim's Pico W image, on real or emulated RP2040s,
// serves control over plain TCP only.
const noTLSImage = "picosim's Pico W image serves plain TCP: TinyGo 0.41's crypto/tls has no server (README, \"The real piconetcontrol client\"); emulated boards serve TLS"
