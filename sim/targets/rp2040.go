package targets

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/rp2040"
)

// RP2040Config says where the pieces of the rp2040 target are.
type RP2040Config struct {
	// Root is the repository (sim/rp2040/runner, build/picosim-pico-w.uf2,
	// sim/rp2040/bootrom); default ".".
	Root string
	// Dir holds the boards' flash files; default a new temporary folder,
	// removed by Close.
	Dir string
	// Log, if set, hears the chip models' and runners' complaints.
	Log func(string)
}

// RP2040 runs each board as the shipped Pico W image (make firmware) on an
// emulated RP2040 with a model of its CYW43439 (package sim/rp2040), on a
// simulated LAN, in simulated time: a run replays from its seed. The
// harness reads each board's USB console, and talks to the boards from
// hosts of its own on the LAN.
type RP2040 struct {
	*fleet
	lanFaults
	key         []byte
	lan         *netsim.LAN
	rf          *rp2040.Fleet
	boards      map[string]*rp2040.Board
	controllers map[string]*sim.Controller
	desk        *sim.Desktop
	dir         string
	tmpDir      bool
}

var _ Target = (*RP2040)(nil)

// NewRP2040 builds the spec's boards, their flash made by the factory
// (the image and the spec's settings), and powers them on at time 0.
func NewRP2040(spec Spec, cfg RP2040Config) (t *RP2040, err error) {
	switch {
	case spec.SoftAP:
		return nil, &Unsupported{Target: "rp2040", Action: "network mode softap", Why: "emulated RP2040s join the simulated router's LAN; a board as the access point is simulated only"}
	case spec.ControlTLS:
		return nil, &Unsupported{Target: "rp2040", Action: "control_tls", Why: noTLSImage}
	case spec.Addressing != netsim.Sticky:
		return nil, &Unsupported{Target: "rp2040", Action: "addressing " + spec.Addressing.String(), Why: "the router gives an emulated RP2040 the address the LAN routes to it"}
	}
	if cfg.Root == "" {
		cfg.Root = "."
	}
	paths, err := rp2040.Find(cfg.Root)
	if err != nil {
		return nil, err
	}
	t = &RP2040{key: spec.Key, boards: map[string]*rp2040.Board{}, dir: cfg.Dir}
	if t.dir == "" {
		if t.dir, err = os.MkdirTemp("", "picosim-rp2040-"); err != nil {
			return nil, err
		}
		t.tmpDir = true
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if t.lan, err = netsim.New(netsim.Config{Seed: spec.Seed}); err != nil {
		return nil, err
	}
	t.fleet = newFleet("rp2040", spec.Names(), spec.OnEvent)
	t.lanFaults = lanFaults{lan: func() *netsim.LAN { return t.lan }, note: t.record, isBoard: func(b string) bool { return t.boards[b] != nil }}
	t.fleet.virtual = t.lan.Clock()
	t.fleet.connected = func(a, b string) bool { return t.lan.Connected(t.lan.Host(a), t.lan.Host(b)) }
	t.fleet.onNet = func(b string) bool { return t.lan.Host(b).Associated() }
	t.rf = rp2040.NewFleet(t.lan, paths, t.dir)
	t.rf.Seed, t.rf.Log = spec.Seed, cfg.Log
	t.rf.OnConsole = func(b *rp2040.Board, at time.Duration, text string) {
		var l firmware.Line
		if json.Unmarshal([]byte(text), &l) == nil {
			t.line(b.Name, l, at)
		}
	}
	t.rf.OnDown = func(b *rp2040.Board, err error) {
		t.down(b.Name, sim.Event{Kind: "exit", Detail: err.Error()})
	}
	t.rf.OnReset = func(b *rp2040.Board, at time.Duration, why string) {
		// A new boot (machine.CPUReset after reset, update, deep sleep, a
		// failed join): what the board reported before is gone.
		t.down(b.Name, sim.Event{Kind: "rp2040_reset", Detail: why})
	}
	for _, b := range spec.Boards {
		profile := spec.radio(b.Name)
		bd, err := t.rf.Add(b.Name, profile, map[string][]byte{firmware.FileSettings: spec.settings(b).JSON()})
		if err != nil {
			return nil, err
		}
		t.boards[b.Name] = bd
	}
	if err := setLinks(t.lan, spec); err != nil {
		return nil, err
	}
	if spec.Capture != nil {
		if _, err := t.lan.StartCapture(spec.Capture); err != nil {
			return nil, err
		}
	}
	for _, b := range spec.Boards {
		if err := t.PowerOn(b.Name); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// LAN is the boards' LAN.
func (t *RP2040) LAN() *netsim.LAN { return t.lan }

func (t *RP2040) board(name string) (*rp2040.Board, error) {
	if b := t.boards[name]; b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("no board %q", name)
}

// PowerOn starts the board's RP2040 from its flash.
func (t *RP2040) PowerOn(board string) error {
	b, err := t.board(board)
	if err != nil {
		return err
	}
	if t.Powered(board) {
		return nil
	}
	t.setPowered(board, true)
	if err := t.rf.PowerOn(b); err != nil {
		t.setPowered(board, false)
		return err
	}
	t.record(sim.Event{Board: board, Kind: sim.EvPowerOn, IP: b.Host().IP().String(), Detail: "the shipped image on an emulated RP2040"})
	return nil
}

// PowerOff cuts the board's power: its runner ends, its flash stays.
func (t *RP2040) PowerOff(board string) error {
	b, err := t.board(board)
	if err != nil {
		return err
	}
	if !t.Powered(board) {
		return nil
	}
	t.rf.PowerOff(b)
	t.setPowered(board, false)
	t.record(sim.Event{Board: board, Kind: sim.EvPowerOff})
	return nil
}

// Counter reads the LAN's counters of a board's host, or its image's.
func (t *RP2040) Counter(board, name string) (uint64, error) {
	return t.counter(board, name, t.nodeCounter)
}

// Controller connects from a host of its own on the LAN (one per name),
// with the retries of sim.Controller.
func (t *RP2040) Controller(from, board string) (Conn, error) {
	c, err := connectNamed(&t.controllers, from, board, func(name string) (*sim.Controller, error) {
		return sim.NewLANController(t.lan, name, t.key, func(board string) (netip.AddrPort, error) {
			b, err := t.board(board)
			if err != nil {
				return netip.AddrPort{}, err
			}
			return netip.AddrPortFrom(b.Host().IP(), control.Port), nil
		})
	})
	if err != nil {
		return nil, err
	}
	return t.conn(board, c, false), nil
}

// Hello says HELLO from a desktop client host on the LAN.
func (t *RP2040) Hello(within time.Duration, unsigned bool) (Full, error) {
	if t.desk == nil {
		d, err := sim.NewLANDesktop(t.lan, "desktop")
		if err != nil {
			return Full{}, err
		}
		t.desk = d
	}
	return helloFrom(t.desk, t.lan.Clock(), within, keyUnless(t.key, unsigned))
}

func (t *RP2040) StartApp(a App) error             { return startApp(t, a) }
func (t *RP2040) StopApp(board, name string) error { return stopApp(t, board, name) }

// Close powers every board off and removes the flash files if they were
// temporary; it is safe to call twice.
func (t *RP2040) Close() error {
	var err error
	if t.rf != nil {
		err = t.rf.Close()
		t.rf = nil
	}
	if t.lan != nil {
		t.lan.Close()
	}
	if t.tmpDir {
		os.RemoveAll(t.dir)
		t.tmpDir = false
	}
	return err
}
