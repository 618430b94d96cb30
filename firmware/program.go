package firmware

import (
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/node/outbox"
)

// Options are what an adapter tells the program about its platform.
type Options struct {
	// Name is the board's name when its settings give none (a Pico W uses
	// DefaultName of its chip's unique ID). A board never goes without one:
	// with neither, it is "pico".
	Name string
	// Board is the hardware's description in get_info.
	Board string
	// HeapBytes is the heap get_info reports against.
	HeapBytes int
	// EpochNS is the wall-clock time of uptime 0, for time_received.
	EpochNS int64
	// Inflate decompresses compressed updates; nil refuses them.
	Inflate func([]byte) ([]byte, error)
	// Rand, if set, drives the heartbeat jitter (node.Config.Rand); Seed,
	// with the boot's number, the apps' randomness.
	Rand node.Source
	Seed uint64
	// Entropy, if set, gives an unpredictable number at each boot, which
	// keyed control puts in its nonces so that a nonce never comes back,
	// even where the boot counter does (a re-flashed board, a simulator
	// started again): the chip's ring oscillator on a Pico W, crypto/rand on
	// Linux. Nil: nonces rest on the boot counter alone.
	Entropy func() uint64
	// WLAN is the network a blank flash is formatted with (a Pico W build's
	// credentials); zero keeps DefaultFiles'.
	WLAN WLAN
	// Node holds the discovery core's settings that the settings file does
	// not (Jitter, Settle, Witnesses, MaxDatagram, Intern); the file's
	// heartbeat and miss limit win.
	Node node.Config
	// Quiet keeps the console silent: a simulator of thousands of boards
	// reads OnEvent and State instead of console lines.
	Quiet bool
	// OnEvent, if set, receives every event as it happens.
	OnEvent func(Event)
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
	led    control.Status // the LED's pattern, as last reported
	b      Board
	flash  Flash
	opt    Options
	rep    reporter
	set    Settings
	cutOff uint64 // connections dropped for not reading (ErrCutOff)
	name   string
	inc    uint32
	wlan   WLAN

	node      *node.Node // nil until the radio first joins
	ip, bcast node.Addr
	online    bool // the radio is on the network
	dog       watchdog
	// unanswered: when a port last had an attempt its stack left
	// unanswered (Unanswered); relistens: listeners opened again for it.
	unanswered map[uint16]time.Duration
	relistens  int
	ctl        *control.Server
	ctlDirty   bool          // the control server had input since flushControl
	ctlDL      time.Duration // its deadline then
	apps       []*appRun
	owner      map[control.ConnID]*appRun // connections of the apps; the rest are the control server's
	nextDial   control.ConnID

	asleep time.Duration // light sleep until then
	slept  []queued      // connection data that came in asleep
	halt   *Halt

	pinEvents []PinEvent // the last changes, for the state
	pinSeq    uint64
	changed   bool   // a state line is due
	views     uint64 // the node's view count when the apps and the state last saw it
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
// incarnation), reads the settings, sets the firmware's pins up and starts
// the apps the settings name. The LED blinks "connecting" until Joined.
// Adapters call Start, the boot loader, rather than Boot.
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
	p := &Program{b: b, flash: f, opt: opt, inc: inc, owner: map[control.ConnID]*appRun{}, nextDial: DialBase, ctlDirty: true,
		dog: watchdog{since: now}}
	p.rep = reporter{b: b, opt: &p.opt}
	set, err := ReadSettings(f)
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
	p.rep.name = p.name
	if err != nil {
		p.log(now, EvConfigError, err.Error()) // a bad file must not brick the board
	}
	if p.wlan, err = ReadWLAN(f); err != nil {
		p.log(now, EvConfigError, err.Error())
	}
	if set.KeyError != "" {
		p.log(now, EvConfigError, FileSettings+": "+set.KeyError+"; the board takes part in no discovery and refuses every command until the file is fixed")
	}
	p.ctl = control.NewServer(control.Config{
		Board: opt.Board, Version: Version(f), EpochNS: opt.EpochNS, HeapBytes: opt.HeapBytes,
		RevertOnLoss: set.RevertOnLoss, Inflate: opt.Inflate, Extensions: p.extensions(),
		Key: set.Key, NonceBase: nonceBase(p.name, inc, opt.Entropy), Locked: set.KeyError,
	}, now)
	p.ctl.SetConnected(now, false)
	for _, ps := range set.Pins {
		mode := control.Input
		if ps.Output {
			mode = control.Output
		}
		if err := p.ctl.Setup(now, ps.Pin, mode, ps.Value); err != nil {
			p.log(now, EvConfigError, "GPIO"+itoa(ps.Pin)+": "+err.Error())
		}
	}
	p.log(now, EvBoot, "incarnation "+itoa(int(inc))+", version "+Version(f))
	for _, spec := range set.Apps {
		if err := p.startApp(now, spec); err != nil {
			p.log(now, EvAppError, spec.App+": "+err.Error())
		}
	}
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

// SetWallClock tells the program the wall-clock time (nanoseconds since
// 1970) at uptime now, learned after boot (a Pico W has no clock of its
// own: its adapter asks the network's NTP server): time_received counts
// from it.
func (p *Program) SetWallClock(now time.Duration, wallNS int64) {
	p.ctl.SetEpoch(wallNS - int64(now))
}

// ControlPort is the TCP port of the control server.
func (p *Program) ControlPort() uint16 { return p.wlan.Port }

// Node returns the discovery core, nil until the radio first joins. Read
// it; the program drives it.
func (p *Program) Node() *node.Node { return p.node }

// Control returns the control server. Read it; the program drives it.
func (p *Program) Control() *control.Server { return p.ctl }

// Online reports whether the radio is on the network.
func (p *Program) Online() bool { return p.online }

// Joined tells the program the radio is on the network with address ip, on
// a subnet whose broadcast address is broadcast (where heartbeats go). The
// first time, discovery starts; with another address than before, it
// starts again there. The program (re)opens its ports.
func (p *Program) Joined(now time.Duration, ip, broadcast node.Addr) error {
	p.ctlDirty = true
	p.online = true
	p.dog.joined(now)
	p.ctl.SetConnected(now, true)
	p.log(now, EvWiFiJoined, "at "+ip.String())
	// The node's timings: the settings file's, else the program's options,
	// else node's defaults; the watchdog's silence bound follows them.
	hb, k := p.set.Heartbeat, p.set.MissLimit
	if hb == 0 {
		hb = p.opt.Node.Heartbeat
	}
	if k == 0 {
		k = p.opt.Node.MissLimit
	}
	if d, err := (node.Config{Heartbeat: hb, MissLimit: k}).WithDefaults(); err == nil {
		p.dog.silence = silenceBound(d)
	}
	switch {
	case p.set.KeyError != "":
		// Fails closed: a board told to use a key it cannot read must not
		// speak discovery without one.
	case p.node == nil || p.ip != ip:
		cfg := p.opt.Node
		cfg.Key = p.set.Key
		cfg.Name, cfg.IP, cfg.Broadcast, cfg.Incarnation = p.name, ip, broadcast, p.inc
		cfg.Heartbeat, cfg.MissLimit, cfg.Rand = hb, k, p.opt.Rand
		if p.node != nil {
			cfg.Seq = p.node.Seq() // a new address, the same boot: keep counting
		}
		n, err := node.New(cfg, now)
		if err != nil {
			p.flush(now)
			return err
		}
		p.node, p.ip, p.bcast, p.views = n, ip, broadcast, 0
	default:
		p.node.Online(now)
	}
	p.listen(now)
	p.changed = true
	p.flush(now)
	return nil
}

// listen opens every port the program needs.
func (p *Program) listen(now time.Duration) {
	ports := []Port{{Num: node.Port}, {TCP: true, Num: p.ControlPort()}}
	for _, r := range p.apps {
		ports = append(ports, r.ports()...)
	}
	for _, pt := range ports {
		if err := p.b.Listen(pt); err != nil {
			p.log(now, "listen_error", portName(pt)+": "+err.Error())
		}
	}
}

func portName(pt Port) string {
	if pt.TCP {
		return "TCP " + itoa(int(pt.Num))
	}
	return "UDP " + itoa(int(pt.Num))
}

// Lost tells the program the radio lost the network. Discovery keeps its
// view and timers (nothing reaches it meanwhile, and nothing it sends
// leaves; see node.Offline), the LED blinks "connecting" until Joined, and
// with RevertOnLoss held pins revert. Back on the network, a board that
// timed members out meanwhile listens again before it takes a role.
func (p *Program) Lost(now time.Duration) {
	p.ctlDirty = true
	if !p.online {
		return
	}
	p.online = false
	p.dog.since = now // the radio's own join starts again: JoinBound from here
	p.log(now, EvWiFiLost, "")
	if p.node != nil {
		p.node.Offline(now)
	}
	p.ctl.SetConnected(now, false)
	p.ctl.MasterLost(now)
	p.changed = true
	p.flush(now)
}

// SubnetBroadcast is the broadcast address of the subnet of ip with a
// prefix of bits.
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

// Datagram hands the program a datagram that arrived on its UDP port.
func (p *Program) Datagram(now time.Duration, port uint16, from node.Addr, fromPort uint16, payload []byte) {
	if now < p.asleep {
		return // a sleeping CPU reads nothing: it is lost
	}
	if port == node.Port {
		if from != p.ip {
			p.dog.heard(now)
		}
		if p.node != nil {
			p.node.Step(now, from, fromPort, payload)
		}
	} else if r := p.appOnPort(false, port); r != nil {
		r.app.Step(now, apps.Input{Kind: apps.Datagram, From: from, Data: payload})
	}
	p.flush(now)
}

// Opened reports a connection accepted on one of the program's TCP ports.
func (p *Program) Opened(now time.Duration, c control.ConnID, port uint16) {
	p.ctlDirty = true
	delete(p.unanswered, port) // the listener answers
	switch r := p.appOnPort(true, port); {
	case port == p.ControlPort():
		p.ctl.OpenFrom(now, c, p.b.Peer(c))
		p.changed = true
	case r != nil:
		r.accepted(now, c)
	default:
		p.b.Close(c)
	}
	p.flush(now)
}

// Connected reports the outcome of a Dial: err is nil once connected.
func (p *Program) Connected(now time.Duration, c control.ConnID, err error) {
	if r := p.owner[c]; r != nil {
		r.connected(now, c, err)
	}
	p.flush(now)
}

// Received hands the program data read from a connection.
func (p *Program) Received(now time.Duration, c control.ConnID, data []byte) {
	p.ctlDirty = true
	if now < p.asleep {
		if p.owner[c] != nil {
			p.slept = append(p.slept, queued{c, append([]byte(nil), data...)})
			return // an app's data waits for the wake
		}
		p.wake(now, "a command") // seed 002: a command wakes the server
	}
	p.receive(now, c, data)
	p.flush(now)
}

func (p *Program) receive(now time.Duration, c control.ConnID, data []byte) {
	if r := p.owner[c]; r != nil {
		r.app.Step(now, apps.Input{Kind: apps.Data, Conn: r.local[c], Data: data})
		return
	}
	p.sampleInputs()
	p.ctl.Receive(now, c, data)
	p.ctlDirty = true // an extension may have flushed meanwhile: its reply is still to go
}

// Closed reports that a connection ended.
func (p *Program) Closed(now time.Duration, c control.ConnID) {
	p.ctlDirty = true
	if r := p.owner[c]; r != nil {
		r.closed(now, c)
	} else {
		p.ctl.Closed(now, c)
		p.changed = true
	}
	p.flush(now)
}

// Tick runs what is due by now. Call it when Deadline passes.
func (p *Program) Tick(now time.Duration) {
	p.ctlDirty = true
	switch {
	case now < p.asleep && p.ctl.RevertDue(now):
		p.wake(now, "a revert is due") // the fail-safe does not sleep
	case now < p.asleep:
		return
	case p.asleep > 0:
		p.wake(now, "")
	}
	if why := p.dog.due(now, p.online); why != "" && !p.set.NoWatchdog {
		p.rejoin(now, why)
	}
	if p.node != nil {
		p.node.Tick(now)
	}
	p.ctl.Tick(now)
	if p.node != nil {
		for _, r := range p.apps {
			if r.app.Ready().Deadline <= now {
				r.app.Tick(now)
			}
		}
	}
	p.flush(now)
}

// Deadline is when Tick must run next, at the latest (outbox.Never if
// nothing is pending). Apps run once the radio has first joined.
func (p *Program) Deadline() time.Duration {
	d := p.ctlDL
	if p.ctlDirty {
		d = p.ctl.Deadline()
	}
	o := outbox.Never
	if p.node != nil {
		o = p.node.Deadline()
		for _, r := range p.apps {
			o = min(o, r.app.Ready().Deadline)
		}
	}
	if !p.set.NoWatchdog {
		o = min(o, p.dog.next(p.online))
	}
	// The cluster and the apps wait for the end of a light sleep; the
	// control server's deadline already does, except for a revert.
	return min(d, max(o, p.asleep))
}

// wake ends a light sleep (why, if not its end) and hands the control
// server and the apps what waited for it.
func (p *Program) wake(now time.Duration, why string) {
	p.asleep, p.changed = 0, true
	if z, ok := p.b.(Dozer); ok {
		z.Wake()
	}
	p.ctl.Wake(now)
	p.log(now, EvWake, why)
	q := p.slept
	p.slept = nil
	for _, d := range q {
		p.receive(now, d.c, d.data)
	}
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

// flush carries out what the cores want done (the driver loop of
// node/doc.go and node/control/doc.go, once for all of them) until none
// wants anything: an app may drive a pin, and the pin's change goes to the
// apps. Then it prints the state line, if one is due.
func (p *Program) flush(now time.Duration) {
	for round := 0; round < 8; round++ {
		busy := p.flushNode(now)
		busy = p.flushControl(now) || busy
		for _, r := range p.apps {
			busy = r.flush(now) || busy
		}
		if !busy {
			break
		}
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
		if !p.opt.Quiet {
			p.printState(now)
		}
	}
}

func (p *Program) flushNode(now time.Duration) bool {
	if p.node == nil {
		return false
	}
	rd := p.node.Ready()
	busy := len(rd.Datagrams)+len(rd.Events) > 0
	for _, d := range rd.Datagrams {
		if !p.online {
			break // the radio is off the network: it goes nowhere
		}
		if err := p.b.SendUDP(node.Port, d.To, d.Port, d.Payload); err != nil {
			p.log(now, EvSendError, err.Error())
		}
	}
	for _, e := range rd.Events {
		if p.rep.wanted() {
			p.rep.report(nodeEvent(e))
		}
		if e.Kind == node.MasterChanged && !e.Prev.IP.IsZero() {
			p.ctl.MasterLost(e.At) // held pins may revert
			p.ctlDirty = true
		}
	}
	p.node.Advance()
	if v := p.node.Views(); v != p.views {
		p.views, p.changed = v, true
		if len(p.apps) > 0 {
			view := p.appView()
			for _, r := range p.apps {
				r.app.Step(now, apps.Input{Kind: apps.Viewed, View: view})
			}
		}
		busy = true
	}
	return busy
}

func (p *Program) flushControl(now time.Duration) bool {
	if !p.ctlDirty {
		return false // a datagram for discovery, say: the server has nothing new
	}
	p.ctlDirty = false
	rd := p.ctl.Ready()
	p.ctlDL = rd.Deadline
	busy := len(rd.Writes)+len(rd.Closes)+len(rd.Pins)+len(rd.Events) > 0
	var cut []control.ConnID
	for _, w := range rd.Writes {
		if err := p.b.Write(w.Conn, w.Data); err == ErrCutOff {
			cut = append(cut, w.Conn)
		}
	}
	for _, c := range rd.Closes {
		p.b.Close(c)
	}
	for _, pc := range rd.Pins {
		p.b.SetPin(pc.Pin, pc.Value)
		if pc.Pin == control.LED {
			if st := p.ctl.Status(); st != p.led {
				p.led = st // a new pattern, not a blink of the same one
				p.log(pc.At, EvLED, st.String())
			}
		} else {
			p.pinChanged(pc)
			for _, r := range p.apps {
				r.app.Step(now, apps.Input{Kind: apps.Pin, Pin: pc.Pin, Level: pc.Value})
			}
		}
	}
	acts := rd.Events
	if len(acts) > 0 {
		acts = append([]control.Action(nil), acts...)
	}
	p.ctl.Advance()
	for _, c := range cut {
		// After Advance: Closed adds to the server's outbox, which the loop
		// above was reading.
		if p.ctl.Has(c) {
			p.cutOffOne(now, "control connection "+itoa(int(c))+": its controller")
			p.ctl.Closed(now, c)
		}
	}
	for _, a := range acts {
		p.act(now, a)
	}
	if busy {
		p.ctlDirty = true // what it asked may have given it more to say
	}
	return busy
}

func (p *Program) act(now time.Duration, a control.Action) {
	p.changed = true
	switch a.Kind {
	case control.ActLightSleep:
		p.asleep = now + a.For
		p.log(now, EvSleep, "light, "+a.For.String())
		if z, ok := p.b.(Dozer); ok {
			z.Doze(a.For)
		}
		return
	case control.ActReset:
		p.log(now, EvReset, "")
	case control.ActDeepSleep:
		p.log(now, EvSleep, "deep, "+a.For.String())
	case control.ActUpdate:
		if err := Install(p.flash, a.Files); err != nil {
			p.log(now, EvUpdateError, err.Error())
			return
		}
		p.log(now, EvUpdate, "version "+Version(p.flash))
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
	p.rep.report(Event{At: pc.At, Kind: EvPin, Reason: pc.Cause.String(), Detail: "GPIO" + itoa(pc.Pin) + " = " + itoa(pc.Value) + " (" + pc.Cause.String() + ")"})
}

// nonceBase starts the nonces of keyed control: the board, its boot, and
// the boot's entropy in hex.
func nonceBase(name string, inc uint32, entropy func() uint64) string {
	b := name + "-" + itoa(int(inc))
	if entropy != nil {
		b += "-" + hex.EncodeToString(binary.BigEndian.AppendUint64(nil, entropy()))
	}
	return b
}

// cutOffOne counts and reports a connection the adapter dropped with
// ErrCutOff; who names it and its reader.
func (p *Program) cutOffOne(now time.Duration, who string) {
	p.cutOff++
	p.log(now, EvCutOff, who+" read nothing while "+itoa(MaxBacklog)+" bytes waited")
}

// log reports an event of the program's own.
func (p *Program) log(now time.Duration, kind, detail string) {
	p.rep.report(Event{At: now, Kind: kind, Detail: detail})
}

func itoa(n int) string { return control.Int(int64(n)).String() }

func ms(d time.Duration) int64 { return int64(d / time.Millisecond) }
