package firmware

import (
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// Options are what an adapter tells the program about its platform.
type Options struct {
	// Name is the board's name when its settings give none (a Pico W uses
	// DefaultName of its chip's unique ID). A board never goes without one:
	// with neither, it is "pico".
	Name string
	// WLAN is the network a blank flash is formatted with (a Pico W build's
	// credentials); zero keeps DefaultFiles'.
	WLAN WLAN
	// Board is the hardware's description in get_info.
	Board string
	// HeapBytes is the heap get_info reports against.
	HeapBytes int
	// EpochNS is the wall-clock time of uptime 0, for time_received.
	EpochNS int64
	// Inflate decompresses compressed updates; nil refuses them.
	Inflate func([]byte) ([]byte, error)
	// Rand, if set, drives the heartbeat jitter (node.Config.Rand).
	Rand node.Source
}

// Halt is a board-wide action the adapter must carry out: every socket
// closes and the board boots again, For later for a deep sleep. For an
// update the new image is already in flash.
type Halt struct {
	Kind control.ActionKind // ActReset, ActDeepSleep or ActUpdate
	For  time.Duration
}

// Program is the firmware of one board from one boot to the next.
type Program struct {
	b     Board
	flash Flash
	opt   Options
	set   Settings
	name  string
	inc   uint32
	wlan  WLAN

	node      *node.Node // nil until the radio joins
	ip, bcast node.Addr
	ctl       *control.Server

	asleep time.Duration // light sleep until then
	slept  []queued      // control data that came in asleep
	halt   *Halt

	pinEvents []PinEvent // the last changes, for the state
	pinSeq    uint64
	changed   bool   // a state line is due
	views     uint64 // the node's view count in the last state line
	stats     node.Stats
	stateAt   time.Duration // when the last state line went out
	line      []byte
}

type queued struct {
	c    control.ConnID
	data []byte
}

// StateEvery is how often a state line may go out when only counters
// changed; any other change prints one at once.
const StateEvery = time.Second

// maxPinEvents bounds the pin changes the state carries.
const maxPinEvents = 16

// crashed wraps the health check's finding as ErrCrashed.
type crashed struct{ why string }

func (e crashed) Error() string        { return ErrCrashed.Error() + ": " + e.why }
func (e crashed) Is(target error) bool { return target == ErrCrashed }

// Boot starts the program from flash at time now (the board's uptime): it
// formats a blank flash, checks the image, counts the boot (the
// incarnation), reads the settings, and sets the firmware's pins up. The
// LED blinks "connecting" until Joined.
func Boot(b Board, f Flash, opt Options, now time.Duration) (*Program, error) {
	if _, ok := f.ReadFile(FileBoots); !ok {
		if err := Format(f); err != nil {
			return nil, err
		}
		if opt.WLAN.SSID != "" {
			if err := f.WriteFile(FileWLAN, opt.WLAN.JSON()); err != nil {
				return nil, err
			}
		}
	}
	if err := Healthy(f); err != nil {
		return nil, crashed{err.Error()}
	}
	if err := Confirm(f); err != nil {
		return nil, err
	}
	inc, err := nextBoot(f)
	if err != nil {
		return nil, err
	}
	p := &Program{b: b, flash: f, opt: opt, inc: inc}
	set, err := ReadSettings(f)
	if err != nil {
		p.log(now, "config_error", err.Error()) // a bad file must not brick the board
	}
	p.set, p.name = set, set.Name
	if p.name == "" {
		p.name = opt.Name
	}
	if p.name == "" {
		p.name = "pico" // the radio's DHCP client and discovery both need one
	}
	if len(p.name) > node.MaxName {
		p.name = p.name[:node.MaxName]
	}
	if p.wlan, err = ReadWLAN(f); err != nil {
		p.log(now, "config_error", err.Error())
	}
	p.ctl = control.NewServer(control.Config{
		Board: opt.Board, Version: Version(f), EpochNS: opt.EpochNS, HeapBytes: opt.HeapBytes,
		RevertOnLoss: set.RevertOnLoss, Inflate: opt.Inflate,
		Extensions: []control.Extension{{Name: "get_state", Do: func(now time.Duration, _ control.Value) ([]control.Field, error) {
			e := control.Enc{B: make([]byte, 0, cap(p.line))} // the last state line's size: one allocation
			p.appendState(&e, now)
			return []control.Field{{Key: "state", Val: control.Raw(e.B)}}, nil
		}}},
	}, now)
	p.ctl.SetConnected(now, false)
	for _, ps := range set.Pins {
		mode := control.Input
		if ps.Output {
			mode = control.Output
		}
		if err := p.ctl.Setup(now, ps.Pin, mode, ps.Value); err != nil {
			p.log(now, "config_error", "GPIO"+itoa(ps.Pin)+": "+err.Error())
		}
	}
	p.log(now, "boot", "incarnation "+itoa(int(inc))+", version "+Version(f))
	p.changed = true
	p.flush(now)
	return p, nil
}

// Name returns the board's name.
func (p *Program) Name() string { return p.name }

// Incarnation returns the number of this boot.
func (p *Program) Incarnation() uint32 { return p.inc }

// WLAN returns the network settings read at boot.
func (p *Program) WLAN() WLAN { return p.wlan }

// ControlPort is the TCP port the adapter must serve control connections on.
func (p *Program) ControlPort() uint16 { return p.wlan.Port }

// Joined starts discovery: the radio has joined the network with address ip
// on a subnet whose broadcast address is broadcast (where heartbeats go).
// Joining again with another address restarts discovery there.
func (p *Program) Joined(now time.Duration, ip, broadcast node.Addr) error {
	if p.node != nil && p.ip == ip {
		return nil
	}
	cfg := node.Config{Name: p.name, IP: ip, Broadcast: broadcast, Incarnation: p.inc,
		Heartbeat: p.set.Heartbeat, MissLimit: p.set.MissLimit, Rand: p.opt.Rand}
	n, err := node.New(cfg, now)
	if err != nil {
		return err
	}
	p.node, p.ip, p.bcast, p.views = n, ip, broadcast, 0
	p.log(now, "wifi_joined", "at "+ip.String())
	p.ctl.SetConnected(now, true)
	p.changed = true
	p.flush(now)
	return nil
}

// SubnetBroadcast is the broadcast address of the subnet of ip with a
// prefix of bits: where an adapter sends heartbeats (Joined's broadcast),
// as the Pico W's stack sends 255.255.255.255 to the gateway's MAC.
func SubnetBroadcast(ip node.Addr, bits int) node.Addr {
	host := uint32(1)<<(32-bits) - 1
	for i := range ip {
		ip[i] |= byte(host >> (24 - 8*i))
	}
	return ip
}

// HeartbeatAddr is where an adapter that learnt its address from DHCP sends
// heartbeats: its subnet's broadcast address (bits is the prefix length);
// with no usable prefix, the broadcast address the network offered, and
// failing that 255.255.255.255.
func HeartbeatAddr(ip node.Addr, bits int, offered node.Addr) node.Addr {
	switch {
	case bits > 0 && bits <= 30:
		return SubnetBroadcast(ip, bits)
	case !offered.IsZero():
		return offered
	}
	return LimitedBroadcast
}

// Lost stops discovery: the radio lost the network.
func (p *Program) Lost(now time.Duration) {
	if p.node == nil {
		return
	}
	p.node = nil
	p.log(now, "wifi_lost", "")
	p.ctl.SetConnected(now, false)
	p.ctl.MasterLost(now)
	p.changed = true
	p.flush(now)
}

// Datagram hands the program a datagram of the discovery port.
func (p *Program) Datagram(now time.Duration, from node.Addr, fromPort uint16, payload []byte) {
	if p.node == nil || now < p.asleep {
		return // not on the network yet, or a sleeping CPU: it is lost
	}
	p.node.Step(now, from, fromPort, payload)
	p.flush(now)
}

// Opened reports a new control connection.
func (p *Program) Opened(now time.Duration, c control.ConnID) {
	p.ctl.Open(now, c)
	p.changed = true
	p.flush(now)
}

// Received hands the program data read from a control connection.
func (p *Program) Received(now time.Duration, c control.ConnID, data []byte) {
	if now < p.asleep {
		p.slept = append(p.slept, queued{c, append([]byte(nil), data...)})
		return
	}
	p.sampleInputs()
	p.ctl.Receive(now, c, data)
	p.flush(now)
}

// Closed reports that a control connection ended.
func (p *Program) Closed(now time.Duration, c control.ConnID) {
	p.ctl.Closed(now, c)
	p.changed = true
	p.flush(now)
}

// Tick runs what is due by now. Call it when Deadline passes.
func (p *Program) Tick(now time.Duration) {
	if now < p.asleep {
		return
	}
	if p.asleep > 0 {
		p.asleep, p.changed = 0, true
		p.log(now, "wake", "")
		q := p.slept
		p.slept = nil
		p.sampleInputs()
		for _, d := range q {
			p.ctl.Receive(now, d.c, d.data)
		}
	}
	if p.node != nil {
		p.node.Tick(now)
	}
	p.ctl.Tick(now)
	p.flush(now)
}

// Deadline is when Tick must run next, at the latest.
func (p *Program) Deadline() time.Duration {
	d := p.ctl.Ready().Deadline
	if p.node != nil {
		if nd := p.node.Ready().Deadline; d == 0 || nd < d {
			d = nd
		}
	}
	if p.asleep > 0 && d < p.asleep {
		d = p.asleep
	}
	return d
}

// Leave says LEAVE, so that the others drop this board at once: a clean
// shutdown. The adapter stops the program afterwards.
func (p *Program) Leave(now time.Duration) {
	if p.node != nil {
		p.node.Leave(now)
		p.flush(now)
	}
}

// Halted returns the board-wide action the adapter must carry out, if any.
func (p *Program) Halted() (Halt, bool) {
	if p.halt == nil {
		return Halt{}, false
	}
	return *p.halt, true
}

// sampleInputs reads the input pins before a command may read them.
func (p *Program) sampleInputs() {
	for n := 0; n <= control.MaxPin; n++ {
		if mode, _ := p.ctl.Pin(n); mode == control.Input {
			p.ctl.SetInput(n, p.b.ReadPin(n))
		}
	}
}

// flush carries out what the cores want done: the driver loop of node/doc.go
// and node/control/doc.go, once for both.
func (p *Program) flush(now time.Duration) {
	if p.node != nil {
		rd := p.node.Ready()
		for _, d := range rd.Datagrams {
			if err := p.b.SendUDP(d.To, d.Port, d.Payload); err != nil {
				p.log(now, "send_error", err.Error())
			}
		}
		for _, e := range rd.Events {
			p.nodeEvent(e)
			if e.Kind == node.MasterChanged && !e.Prev.IP.IsZero() {
				p.ctl.MasterLost(e.At) // held pins may revert
			}
		}
		if v := p.node.Views(); v != p.views {
			p.views, p.changed = v, true
		}
		p.node.Advance()
	}
	rd := p.ctl.Ready()
	for _, w := range rd.Writes {
		p.b.Write(w.Conn, w.Data)
	}
	for _, c := range rd.Closes {
		p.b.Close(c)
	}
	for _, pc := range rd.Pins {
		p.b.SetPin(pc.Pin, pc.Value)
		if pc.Pin != control.LED {
			p.pinChanged(pc)
		}
	}
	acts := append([]control.Action(nil), rd.Actions...)
	p.ctl.Advance()
	for _, a := range acts {
		p.act(now, a)
	}
	// Counters alone change with every datagram: they refresh the state
	// line at most once a second, so that a board's console keeps up.
	if p.node != nil && p.node.Stats() != p.stats && now-p.stateAt >= StateEvery {
		p.changed = true
	}
	if p.changed {
		p.changed, p.stateAt = false, now
		if p.node != nil {
			p.stats = p.node.Stats()
		}
		p.printState(now)
	}
}

func (p *Program) act(now time.Duration, a control.Action) {
	p.changed = true
	switch a.Kind {
	case control.ActLightSleep:
		p.asleep = now + a.For
		p.log(now, "sleep", "light, "+a.For.String())
		return
	case control.ActReset:
		p.log(now, "reset", "")
	case control.ActDeepSleep:
		p.log(now, "sleep", "deep, "+a.For.String())
	case control.ActUpdate:
		if err := Install(p.flash, a.Files); err != nil {
			p.log(now, "update_error", err.Error())
			return
		}
		p.log(now, "update", "version "+Version(p.flash))
	}
	p.halt = &Halt{Kind: a.Kind, For: a.For}
}

func (p *Program) pinChanged(pc control.PinChange) {
	p.pinSeq++
	e := PinEvent{Seq: p.pinSeq, MS: ms(pc.At), Pin: pc.Pin, Value: pc.Value, Cause: pc.Cause.String()}
	if len(p.pinEvents) == maxPinEvents {
		copy(p.pinEvents, p.pinEvents[1:])
		p.pinEvents = p.pinEvents[:maxPinEvents-1]
	}
	p.pinEvents = append(p.pinEvents, e)
	p.changed = true
	p.log(pc.At, "pin", "GPIO"+itoa(pc.Pin)+" = "+itoa(pc.Value)+" ("+pc.Cause.String()+")")
}

func itoa(n int) string { return control.Int(int64(n)).String() }

func ms(d time.Duration) int64 { return int64(d / time.Millisecond) }
