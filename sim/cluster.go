// Package sim provides virtual Pico W clusters: boards that run the
// firmware's own program (firmware.Program) on a netsim LAN, faults that come
// in pairs taking board names (PowerOff/PowerOn, Partition/Heal, Cut/Restore,
// SetLink/ResetLink), a timeline of everything that happened in simulated
// time, and the checkers of package check over what the boards report.
//
//	c, _ := sim.New(sim.Config{Boards: 5, Seed: 7})
//	c.Run(10 * time.Second)
//	c.PowerOff("pico1")
//	c.Run(10 * time.Second)
//	err := c.Agreement() // survivors agree on members and roles
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
)

// Config describes a cluster. Zero fields take the defaults shown.
type Config struct {
	// Boards is how many boards to create, named pico1..picoN in address
	// order, so pico1 has the lowest address.
	Boards int
	// Epoch is the calendar time of simulated time 0 on the boards' clocks
	// (time_received, a ping's time_responded): netsim.Epoch, 2026-01-01,
	// unless set. picosim up, which real clients talk to in real time,
	// sets the wall clock at its start, so that a client's one-way
	// estimate (time_received - time_sent) means something.
	Epoch time.Time
	// Names, if set, names the boards instead, in address order.
	Names []string
	// Seed drives every random choice of the run: the LAN, the stacks, the
	// boards' jitter and boot times. The same seed and configuration replay
	// the same run.
	Seed uint64
	// Subnet of the LAN. Default 192.168.1.0/24, or 10.42.0.0/16 for more
	// than 250 boards.
	Subnet netip.Prefix
	// Link is applied to every frame a board receives: its downlink.
	Link netsim.Link
	// Settings are written to every board's flash before its first boot
	// (config/config_node.json: heartbeat, miss limit, revert on loss, pins,
	// apps), each with its own name, as the hw target writes them to a lab's
	// boards. An update that replaces the file changes them at the next boot.
	Settings firmware.Settings
	// Pins are GPIOs a board sets up at boot, by board name, added to its
	// settings.
	Pins map[string][]firmware.PinSetup
	// BootSpread powers the boards on at random times within [0, BootSpread).
	// Default: all at time 0.
	BootSpread time.Duration
	// OnEvent, if set, sees every event as it happens (to print progress).
	OnEvent func(Event)
	// NoTimeline keeps no timeline in memory, for runs with thousands of
	// boards; OnEvent still sees every event. With neither, the boards make
	// no events at all (and GPIO histories carry no causes).
	NoTimeline bool
	// Addressing and Lease are how the router gives addresses (see
	// netsim.Addressing): a board may come back from a reboot, or from a
	// lease's end, on another address.
	Addressing netsim.Addressing
	Lease      time.Duration
	// SoftAP names the board that is the network's access point, as in
	// shared/seeds/000: it is 192.168.4.1 and the others lease 192.168.4.16
	// onward; when it dies, everyone loses the network.
	SoftAP string
	// Entropy, if set, is the boards' source of unpredictable numbers (the
	// nonces of keyed control): picosim up, which real clients use across
	// runs, passes crypto/rand's. Nil: derived from Seed, so runs replay.
	Entropy func() uint64
	// Profile, if set, makes every board a Pico W on WiFi: a join delay at
	// boot, power-save latency, now and then a lost association (see
	// netsim.PicoW). Nil: an ideal radio, for specs of protocol logic; the
	// picosim command uses the profile by default.
	Profile *netsim.PicoW
	// Radios, if set, gives boards a radio profile of their own in place of
	// Profile (their failure modes, say: see netsim.PicoW).
	Radios map[string]netsim.PicoW
	// GVisorOnly sends every frame through gVisor's own paths (see
	// netsim.Config): the same frames, slower; for the tests of the fast
	// path.
	GVisorOnly bool
}

// Cluster is a set of virtual boards on one simulated LAN.
type Cluster struct {
	cfg      Config
	clk      *clock.Virtual
	lan      *netsim.LAN
	boards   []*Board
	byName   map[string]*Board
	byIP     map[node.Addr]*Board
	timeline Timeline
	names    map[string]string // interned member names, shared by all cores
	// lastChange is when the network's shape last changed (QuietSafety).
	lastChange time.Duration
	nemesis    *Nemesis // the rogue host, once asked for
	// agreed is the last answer of Agreement and what it depended on.
	agreed struct {
		key   uint64
		err   error
		valid bool
	}
}

// New creates the cluster and schedules every board's power-on.
func New(cfg Config) (*Cluster, error) {
	if cfg.Boards < 1 {
		return nil, errors.New("sim: a cluster needs at least one board")
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = netip.MustParsePrefix("192.168.1.0/24")
		if cfg.Boards > 250 {
			cfg.Subnet = netip.MustParsePrefix("10.42.0.0/16")
		}
	}
	if err := cfg.Link.Validate(); err != nil {
		return nil, fmt.Errorf("sim: link: %w", err)
	}
	if _, err := (node.Config{Heartbeat: cfg.Settings.Heartbeat, MissLimit: cfg.Settings.MissLimit}).WithDefaults(); err != nil {
		return nil, fmt.Errorf("sim: node settings: %w", err)
	}
	clk := clock.NewVirtual()
	c := &Cluster{cfg: cfg, clk: clk, byName: map[string]*Board{}, byIP: map[node.Addr]*Board{}, names: map[string]string{}}
	lan, err := netsim.New(netsim.Config{Seed: cfg.Seed, Subnet: cfg.Subnet, Clock: clk, OnAssociation: c.associated, OnRadioFault: c.radioFault, OnUnanswered: c.unanswered,
		Addressing: cfg.Addressing, Lease: cfg.Lease, OnAddress: c.readdressed, SoftAP: cfg.SoftAP, GVisorOnly: cfg.GVisorOnly})
	if err != nil {
		return nil, err
	}
	c.lan = lan
	boot := rand.New(rand.NewPCG(cfg.Seed, 0x626f6f74)) // "boot"
	for i := range cfg.Boards {
		name := fmt.Sprintf("pico%d", i+1)
		if i < len(cfg.Names) {
			name = cfg.Names[i]
		}
		if c.byName[name] != nil {
			return nil, fmt.Errorf("sim: two boards named %q", name)
		}
		profile := cfg.Profile
		if r, ok := cfg.Radios[name]; ok {
			profile = &r
		}
		h, err := lan.AddHost(netsim.HostConfig{Name: name, Down: cfg.Link, Off: true, Profile: profile})
		if err != nil {
			return nil, err
		}
		set := cfg.Settings
		set.Name = name
		set.Pins = append(append([]firmware.PinSetup(nil), set.Pins...), cfg.Pins[name]...)
		flash := firmware.MemFlash{}
		if err := firmware.Format(flash); err != nil {
			return nil, err
		}
		flash.WriteFile(firmware.FileSettings, set.JSON())
		b := &Board{c: c, name: name, index: i, host: h, gpio: &GPIO{}, flash: flash, past: map[string]apps.Stats{}}
		c.boards = append(c.boards, b)
		c.byName[name] = b
		c.byIP[node.Addr(h.IP().As4())] = b
		var at time.Duration
		if cfg.BootSpread > 0 {
			at = time.Duration(boot.Int64N(int64(cfg.BootSpread)))
		}
		b.first = true
		clk.At(at, func() {
			if b.first { // unless a power_off came first
				b.first = false
				c.PowerOn(name)
			}
		})
	}
	return c, nil
}

// Close ends the cluster: the boards stop, their network stacks are
// destroyed (with the goroutines gVisor runs for them) and a capture is
// flushed. Call it when done with a cluster; the cluster is unusable after.
func (c *Cluster) Close() error {
	for _, b := range c.boards {
		b.first = false
		b.powerOff()
	}
	return c.lan.Close()
}

// Now returns the simulated time.
func (c *Cluster) Now() time.Duration { return c.clk.Now() }

// RunPaced runs the cluster at speed simulated seconds per wall second
// until ctx ends: the mode for clusters that programs outside talk to (a
// Forwarder, a door). Other goroutines reach the cluster only through them.
func (c *Cluster) RunPaced(ctx context.Context, speed float64) { c.clk.RunPaced(ctx, speed) }

// Later runs f on the cluster's clock d from now: how another goroutine
// acts on a cluster that RunPaced drives (powers a board on, say).
func (c *Cluster) Later(d time.Duration, f func()) { c.clk.AfterFunc(d, f) }

// Config returns the cluster's configuration.
func (c *Cluster) Config() Config { return c.cfg }

// NodeConfig returns the discovery settings the boards boot with,
// defaults filled in.
func (c *Cluster) NodeConfig() node.Config {
	cfg, _ := node.Config{Heartbeat: c.cfg.Settings.Heartbeat, MissLimit: c.cfg.Settings.MissLimit}.WithDefaults() // checked in New
	return cfg
}

// Run advances simulated time by d.
func (c *Cluster) Run(d time.Duration) { c.clk.Run(c.clk.Now() + d) }

// RunUntil advances simulated time until done returns true, checked after
// every event, or until the absolute time deadline; it reports whether done
// became true.
func (c *Cluster) RunUntil(deadline time.Duration, done func() bool) bool {
	return c.clk.RunUntil(deadline, done)
}

// Boards returns the boards in address order.
func (c *Cluster) Boards() []*Board { return c.boards }

// Board returns the named board, or nil.
func (c *Cluster) Board(name string) *Board { return c.byName[name] }

// Timeline returns the events so far.
func (c *Cluster) Timeline() Timeline { return c.timeline }

// PowerOn boots a board that is off, as a new incarnation.
func (c *Cluster) PowerOn(name string) error {
	b, err := c.board(name)
	if err != nil || b.Powered() {
		return err
	}
	b.first = false
	c.record(Event{At: c.Now(), Board: name, Kind: EvPowerOn, IP: b.IP().String(),
		Detail: fmt.Sprintf("at %s (incarnation %d)", b.IP(), b.Incarnation()+1)})
	return b.powerOn()
}

// PowerOff cuts a board's power: it stops at once, says nothing, and its
// frames in flight are lost. A board yet to be powered on for the first
// time (at 0 s, or within Config.BootSpread) stays off until PowerOn.
func (c *Cluster) PowerOff(name string) error {
	b, err := c.board(name)
	if err == nil && b.first {
		b.first = false
		c.record(Event{At: c.Now(), Board: name, Kind: EvPowerOff, Detail: "before its first boot"})
		return nil
	}
	if err != nil || !b.Powered() {
		return err
	}
	b.powerOff()
	c.record(Event{At: c.Now(), Board: name, Kind: EvPowerOff})
	return nil
}

// Shutdown turns a board off cleanly: it says LEAVE first, so the others
// drop it at once instead of after the timeout. PowerOn boots it again.
func (c *Cluster) Shutdown(name string) error {
	b, err := c.board(name)
	if err != nil || !b.Powered() {
		return err
	}
	if b.p != nil {
		b.p.Leave(c.Now())
	}
	b.powerOff()
	c.record(Event{At: c.Now(), Board: name, Kind: EvPowerOff, Detail: "after LEAVE"})
	return nil
}

// OpenDoor attaches a TAP device in a new network namespace to the LAN (see
// netsim.OpenDoor). Run the clock paced while it is open.
func (c *Cluster) OpenDoor(cfg netsim.DoorConfig) (*netsim.Door, error) {
	return c.lan.OpenDoor(cfg)
}

// StartCapture writes every frame of the LAN to w as pcapng (see
// netsim.Capture); StopCapture flushes it.
func (c *Cluster) StartCapture(w io.Writer) error {
	_, err := c.lan.StartCapture(w)
	return err
}

// StopCapture ends a capture and flushes it.
func (c *Cluster) StopCapture() error { return c.lan.StopCapture() }

// Partition splits the LAN into groups of boards; boards named in no group
// form one more group.
func (c *Cluster) Partition(groups ...[]string) error {
	if err := c.lan.Partition(groups...); err != nil {
		return err
	}
	c.record(Event{At: c.Now(), Kind: EvPartition, Detail: fmt.Sprint(groups)})
	return nil
}

// Heal ends a partition.
func (c *Cluster) Heal() {
	c.lan.Heal()
	c.record(Event{At: c.Now(), Kind: EvHeal})
}

// SetLink changes the link of the frames a board receives: from every
// other host, or only from the boards named in from. ResetLink goes back to
// the configuration's link.
func (c *Cluster) SetLink(to string, l netsim.Link, from ...string) error {
	if _, err := c.board(to); err != nil {
		return err
	}
	detail := fmt.Sprintf("loss %g latency %v jitter %v", l.Loss, l.Latency, l.Jitter)
	if len(from) == 0 {
		if err := c.lan.SetLink(to, netsim.Down, l); err != nil {
			return err
		}
	}
	for _, f := range from {
		if err := c.lan.SetPair(f, to, l); err != nil {
			return err
		}
	}
	if len(from) > 0 {
		detail += fmt.Sprintf(" from %v", from)
	}
	c.record(Event{At: c.Now(), Board: to, Kind: EvLink, Detail: detail})
	return nil
}

// ResetLink undoes SetLink: a board receives through the configuration's
// link again, from every host or from those named.
func (c *Cluster) ResetLink(to string, from ...string) error {
	if len(from) == 0 {
		return c.SetLink(to, c.cfg.Link)
	}
	for _, f := range from {
		if err := c.lan.SetPair(f, to, netsim.Link{}); err != nil {
			return err
		}
	}
	c.record(Event{At: c.Now(), Board: to, Kind: EvLink, Detail: fmt.Sprintf("reset from %v", from)})
	return nil
}

// Cut stops every frame between two boards, both ways, as if each were out
// of the other's range; Restore undoes it. The checks count them apart.
func (c *Cluster) Cut(a, b string) error { return c.cut(a, b, true) }

// Restore lets two boards hear each other again after Cut.
func (c *Cluster) Restore(a, b string) error { return c.cut(a, b, false) }

func (c *Cluster) cut(a, b string, cut bool) error {
	if _, err := c.board(a); err != nil {
		return err
	}
	if _, err := c.board(b); err != nil {
		return err
	}
	set := c.lan.Restore
	kind := "restore"
	if cut {
		set, kind = c.lan.Cut, "cut"
	}
	if err := set(a, b); err != nil {
		return err
	}
	if err := set(b, a); err != nil {
		return err
	}
	c.record(Event{At: c.Now(), Kind: kind, Detail: a + " and " + b})
	return nil
}

func (c *Cluster) board(name string) (*Board, error) {
	if b := c.byName[name]; b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("sim: no board %q", name)
}

// readdressed hears that a board's address changed: a running board starts
// discovery again on its new address, as firmware that reconnects does.
func (c *Cluster) readdressed(h *netsim.Host, old netip.Addr) {
	b := c.byName[h.Name()]
	if b == nil {
		return
	}
	delete(c.byIP, node.Addr(old.As4()))
	c.byIP[node.Addr(h.IP().As4())] = b
	c.record(Event{At: c.clk.Now(), Board: b.name, Kind: EvAddress, IP: h.IP().String(), Detail: "was " + old.String()})
	if b.p != nil && b.p.Online() {
		b.joined()
		b.after()
	}
}

// associated hears a board's radio join or lose the WiFi network.
func (c *Cluster) associated(h *netsim.Host, joined bool) {
	b := c.byName[h.Name()]
	if b == nil || b.p == nil {
		return
	}
	if joined {
		b.joined()
	} else {
		b.p.Lost(c.clk.Now())
	}
	b.after()
}

// radioFault puts a board's radio fault on the timeline.
func (c *Cluster) radioFault(h *netsim.Host, fault string) {
	c.record(Event{At: c.clk.Now(), Board: h.Name(), Kind: FaultKind(fault), Detail: fault})
}

// unanswered tells a board's program that its stack left a connection
// attempt unanswered (a wedged listener).
func (c *Cluster) unanswered(h *netsim.Host, port uint16) {
	if b := c.byName[h.Name()]; b != nil && b.p != nil {
		b.p.Unanswered(c.clk.Now(), port)
		b.after()
	}
}

// RadioFault puts a board's radio in a fault state now (netsim.FaultSilent
// or netsim.FaultStall): it says it is joined, and nothing flows until its
// firmware joins again.
func (c *Cluster) RadioFault(board, fault string) error {
	b, err := c.board(board)
	if err != nil {
		return err
	}
	return b.host.Fail(fault)
}

func (c *Cluster) intern(b []byte) string {
	if s, ok := c.names[string(b)]; ok {
		return s
	}
	s := string(b)
	c.names[s] = s
	return s
}

func (c *Cluster) nameOf(ip node.Addr) string {
	if b := c.byIP[ip]; b != nil {
		return b.name
	}
	return ip.String()
}

func (c *Cluster) record(e Event) {
	if e.Kind == firmware.EvPin {
		if b := c.byName[e.Board]; b != nil {
			var pin int
			fmt.Sscanf(e.Detail, "GPIO%d", &pin)
			b.gpio.said(pin, e.Reason)
		}
	}
	switch e.Kind {
	case EvPowerOn, EvPowerOff, EvPartition, EvHeal, EvLink, "cut", "restore", firmware.EvWiFiJoined, firmware.EvWiFiLost,
		firmware.EvReset, firmware.EvSleep, firmware.EvWake, firmware.EvUpdate, firmware.EvRollback, EvRadioFault:
		c.lastChange = e.At
	}
	if !c.cfg.NoTimeline {
		c.timeline = append(c.timeline, e)
	}
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(e)
	}
}

// epoch is the calendar time of simulated time 0 (Config.Epoch).
func (c *Cluster) epoch() time.Time {
	if c.cfg.Epoch.IsZero() {
		return netsim.Epoch
	}
	return c.cfg.Epoch
}
