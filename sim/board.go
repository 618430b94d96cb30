package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/node/control"
)

// Board is one virtual Pico W: the firmware's program (firmware.Program,
// the one a real board runs) over a host of the simulated LAN. The
// simulator is that program's firmware.Board (adapter): its sockets are the
// host's gVisor endpoints, its pins an emulated GPIO bank, its flash files
// in memory, its clock the cluster's. It only feeds the program inputs and
// carries out its outputs, as the Linux and Pico W adapters do.
type Board struct {
	c     *Cluster
	name  string
	index int
	host  *netsim.Host
	gpio  *GPIO
	flash firmware.MemFlash

	p        *firmware.Program // nil while off, rebooting, or in deep sleep
	on       bool              // has power
	first    bool              // its first power-on is still to come (Config.BootSpread)
	gen      uint64            // bumped by every power loss and reboot: older timers die
	tick     clock.Timer
	deadline time.Duration
	udp      []*udpSock // the program's UDP ports, a handful
	tcp      map[uint16]*netsim.TCPListener
	conns    map[control.ConnID]*netsim.TCPConn
	next     control.ConnID
	past     map[string]apps.Stats
}

// udpSock is one of the program's UDP ports on the host's stack, drained by
// a timer of its own: at the instant a datagram is queued, from the event
// loop rather than from inside the stack.
type udpSock struct {
	b        *Board
	port     uint16
	conn     *netsim.UDPConn
	drainer  clock.Timer
	draining bool
}

// adapter is the Board as its program sees it: the firmware.Board over the
// host's stack, the GPIO bank and the clock. A type of its own, so that the
// Board's methods are the harness's and not the program's.
type adapter Board

var _ firmware.Board = (*adapter)(nil)

// Name returns the board's name.
func (b *Board) Name() string { return b.name }

// IP returns the board's address.
func (b *Board) IP() netip.Addr { return b.host.IP() }

// Powered reports whether the board has power (it may be rebooting or in
// deep sleep, with its network down).
func (b *Board) Powered() bool { return b.on }

// Up reports whether the board takes part in the checks: powered, booted,
// running discovery, and its radio on the network now (a board whose radio
// lost its association hears no one, and no one hears it).
func (b *Board) Up() bool { return b.p != nil && b.p.Node() != nil && b.p.Online() }

// Incarnation returns the number of the board's current (or last) boot.
func (b *Board) Incarnation() uint32 {
	if b.p != nil {
		return b.p.Incarnation()
	}
	raw, _ := b.flash.ReadFile(firmware.FileBoots)
	var n uint32
	fmt.Sscan(string(raw), &n)
	return n
}

// State is what the board reports of itself (its get_state), or the zero
// State with its name while it is off.
func (b *Board) State() firmware.State {
	if b.p == nil {
		return firmware.State{Name: b.name, Incarnation: b.Incarnation()}
	}
	return b.p.State(b.c.clk.Now())
}

// Counters returns what the LAN did with the board's frames so far.
func (b *Board) Counters() netsim.Counters { return b.host.Counters() }

// GPIO returns the board's emulated pins.
func (b *Board) GPIO() *GPIO { return b.gpio }

// File returns a file of the board's flash.
func (b *Board) File(name string) ([]byte, bool) { return b.flash.ReadFile(name) }

// ControlAddr is where the board's control server listens.
func (b *Board) ControlAddr() netip.AddrPort {
	port := uint16(control.Port)
	if w, err := firmware.ReadWLAN(b.flash); err == nil {
		port = w.Port
	}
	return netip.AddrPortFrom(b.IP(), port)
}

// StartApp runs an app on the board, as the start_app command does: it is
// kept in the board's settings and starts again at every boot.
func (b *Board) StartApp(spec apps.Spec) error {
	if b.p == nil {
		set, err := firmware.ReadSettings(b.flash)
		if err != nil {
			return err
		}
		set.Apps = append(set.Apps, spec)
		return b.flash.WriteFile(firmware.FileSettings, set.JSON())
	}
	err := b.p.StartApp(b.c.clk.Now(), spec)
	b.after()
	return err
}

// StopApp ends an app on the board.
func (b *Board) StopApp(name string) error {
	if b.p == nil {
		return fmt.Errorf("%s is off", b.name)
	}
	err := b.p.StopApp(b.c.clk.Now(), name)
	b.after()
	return err
}

// AppStats returns an app's counters on the board, over all its boots.
func (b *Board) AppStats(name string) (apps.Stats, bool) {
	s, ok := b.past[name]
	if b.p != nil {
		for _, a := range b.p.Apps() {
			if a.Spec.App == name {
				s, ok = s.Add(a.Stats), true
			}
		}
	}
	return s, ok
}

// powerOn boots a board that had no power.
func (b *Board) powerOn() error {
	b.on = true
	return b.boot()
}

// powerOff cuts the power: the program stops at once, with its sockets and
// pin levels.
func (b *Board) powerOff() {
	if !b.on {
		return
	}
	b.on = false
	b.stop()
	b.gpio.powerLoss(b.c.clk.Now())
}

// boot starts the network and the program from flash, with the boot
// loader's recovery from a crashing image.
func (b *Board) boot() error {
	if err := b.host.PowerOn(); err != nil {
		return err
	}
	c := b.c
	opt := firmware.Options{
		Name: b.name, Board: "picosim virtual Pico W", EpochNS: c.epoch().UnixNano(), Inflate: firmware.Inflate,
		Rand: rand.NewPCG(c.cfg.Seed, uint64(b.index)<<32|uint64(b.Incarnation()+1)),
		Seed: c.cfg.Seed ^ uint64(b.index), Node: node.Config{Intern: c.intern}, Quiet: true,
		Entropy: c.cfg.Entropy,
	}
	if opt.Entropy == nil { // replayable: from the seed, the board and its boot
		r := rand.New(rand.NewPCG(c.cfg.Seed^0x6e6f6e6365, uint64(b.index)<<32|uint64(b.Incarnation()+1)))
		opt.Entropy = r.Uint64
	}
	if c.cfg.OnEvent != nil || !c.cfg.NoTimeline { // else nobody keeps or watches events: skip making them
		opt.OnEvent = func(e firmware.Event) { c.record(Event(e)) }
	}
	p, retry, err := firmware.Start((*adapter)(b), b.flash, opt, c.clk.Now())
	switch {
	case err != nil:
		c.record(Event{At: c.clk.Now(), Board: b.name, Kind: "boot_error", Detail: err.Error()})
		return nil // the board stays dark, as one that needs flashing does
	case p == nil:
		gen := b.gen
		c.clk.AfterFunc(retry, func() {
			if b.gen == gen && b.on {
				b.boot()
			}
		})
		return nil
	}
	b.p, b.deadline = p, -1
	b.udp, b.tcp, b.conns = b.udp[:0], map[uint16]*netsim.TCPListener{}, map[control.ConnID]*netsim.TCPConn{}
	if b.tick == nil {
		b.tick = c.clk.AfterFunc(clock.Never, b.onTick)
	}
	if b.host.Associated() {
		b.joined()
	}
	b.after()
	return nil
}

// stop ends the program and its network, as a reset or a power cut does.
func (b *Board) stop() {
	b.gen++
	if b.p != nil {
		for _, a := range b.p.Apps() {
			b.past[a.Spec.App] = b.past[a.Spec.App].Add(a.Stats)
		}
	}
	b.p = nil
	if b.tick != nil {
		b.tick.Stop()
	}
	b.host.PowerOff() // every socket dies with the stack
	for _, u := range b.udp {
		u.drainer.Stop()
	}
	b.udp, b.tcp, b.conns = b.udp[:0], nil, nil
}

func (b *Board) joined() {
	ip := node.Addr(b.host.IP().As4())
	if err := b.p.Joined(b.c.clk.Now(), ip, node.Addr(b.c.lan.Broadcast().As4())); err != nil {
		b.c.record(Event{At: b.c.clk.Now(), Board: b.name, Kind: "boot_error", Detail: err.Error()})
	}
}

// after runs after every call into the program: a halt reboots the board;
// otherwise its timer follows the program's deadline.
func (b *Board) after() {
	p := b.p
	if p == nil {
		return
	}
	if h, ok := p.Halted(); ok {
		b.halt(h)
		return
	}
	if d := p.Deadline(); d != b.deadline {
		b.deadline = d
		b.tick.Reset(d - b.c.clk.Now())
	}
}

// halt carries out a board-wide action: the program ends with every
// socket, the pins fall, and the board boots again (after a deep sleep,
// later).
func (b *Board) halt(h firmware.Halt) {
	c := b.c
	b.stop()
	b.gpio.powerLoss(c.clk.Now())
	if h.Kind != control.ActDeepSleep {
		b.boot()
		return
	}
	gen := b.gen
	c.clk.AfterFunc(h.For, func() {
		if b.gen == gen && b.on {
			c.record(Event{At: c.clk.Now(), Board: b.name, Kind: firmware.EvWake, Detail: "deep"})
			b.boot()
		}
	})
}

func (b *Board) onTick() {
	if b.p == nil {
		return
	}
	b.deadline = -1
	b.p.Tick(b.c.clk.Now())
	b.after()
}

// Listen opens a UDP or TCP port of the program's on the host's stack.
func (b *adapter) Listen(pt firmware.Port) error {
	if b.tcp == nil {
		return errors.New("the network is down")
	}
	if pt.TCP {
		if b.tcp[pt.Num] != nil {
			return nil
		}
		ln, err := b.host.ListenTCP(pt.Num, func(conn *netsim.TCPConn) { (*Board)(b).accept(pt.Num, conn) })
		if err != nil {
			return err
		}
		b.tcp[pt.Num] = ln
		return nil
	}
	if (*Board)(b).sock(pt.Num) != nil {
		return nil
	}
	u := &udpSock{b: (*Board)(b), port: pt.Num}
	conn, err := b.host.ListenUDP(pt.Num, u.readable)
	if err != nil {
		return err
	}
	u.conn, u.drainer = conn, b.c.clk.AfterFunc(clock.Never, u.drain)
	b.udp = append(b.udp, u)
	return nil
}

func (b *Board) sock(port uint16) *udpSock {
	for _, u := range b.udp {
		if u.port == port {
			return u
		}
	}
	return nil
}

func (b *adapter) Unlisten(pt firmware.Port) error {
	if pt.TCP {
		if ln := b.tcp[pt.Num]; ln != nil {
			ln.Close()
			delete(b.tcp, pt.Num)
		}
	} else if u := (*Board)(b).sock(pt.Num); u != nil {
		u.conn.Close()
		u.drainer.Stop()
		b.udp = slices.DeleteFunc(b.udp, func(x *udpSock) bool { return x == u })
	}
	return nil
}

func (b *adapter) SendUDP(from uint16, to node.Addr, port uint16, payload []byte) error {
	u := (*Board)(b).sock(from)
	if u == nil {
		return fmt.Errorf("UDP port %d is not open", from)
	}
	return u.conn.WriteTo(payload, netip.AddrPortFrom(netip.AddrFrom4(to), port))
}

func (u *udpSock) readable() {
	if !u.draining {
		u.draining = true
		u.drainer.Reset(0)
	}
}

func (u *udpSock) drain() {
	u.draining = false
	b := u.b
	for b.p != nil {
		payload, from, ok := u.conn.ReadFrom()
		if !ok {
			break
		}
		// A datagram never halts a board, nor stops an app: the timer is
		// set once for them all.
		b.p.Datagram(b.c.clk.Now(), u.port, node.Addr(from.Addr().As4()), from.Port(), payload)
	}
	b.after()
}

func (b *Board) accept(port uint16, conn *netsim.TCPConn) {
	if b.p == nil {
		conn.Close()
		return
	}
	b.next++
	id := b.next
	b.watch(id, conn)
	b.p.Opened(b.c.clk.Now(), id, port)
	b.after()
}

// watch hands a connection's data and end to the program.
func (b *Board) watch(id control.ConnID, conn *netsim.TCPConn) {
	b.conns[id] = conn
	gen := b.gen
	conn.OnData = func(p []byte) {
		if b.gen == gen && b.p != nil {
			b.p.Received(b.c.clk.Now(), id, p)
			b.after()
		}
	}
	conn.OnClose = func() {
		if b.gen == gen && b.conns[id] == conn {
			delete(b.conns, id)
			if b.p != nil {
				b.p.Closed(b.c.clk.Now(), id)
				b.after()
			}
		}
	}
}

func (b *adapter) Dial(c control.ConnID, to node.Addr, port uint16) error {
	if b.conns == nil {
		return errors.New("the network is down")
	}
	gen := b.gen
	b.host.DialTCP(netip.AddrPortFrom(netip.AddrFrom4(to), port), func(conn *netsim.TCPConn, err error) {
		if b.gen != gen || b.p == nil {
			if conn != nil {
				conn.Close()
			}
			return
		}
		if err == nil {
			(*Board)(b).watch(c, conn)
		}
		b.p.Connected(b.c.clk.Now(), c, err)
		(*Board)(b).after()
	})
	return nil
}

func (b *adapter) Write(c control.ConnID, data []byte) error {
	if conn := b.conns[c]; conn != nil {
		if conn.Buffered()+len(data) > firmware.MaxBacklog {
			delete(b.conns, c) // the program forgets it: no Closed follows
			conn.Abort()
			return firmware.ErrCutOff
		}
		conn.Write(data)
		return nil
	}
	return errors.New("no such connection")
}

// Rejoin makes the board's radio leave and join again (netsim.Host.Rejoin):
// Lost and Joined come from the LAN afterwards.
func (b *adapter) Rejoin() error { return b.host.Rejoin() }

// Doze and Wake tell the board's radio of a light sleep (firmware.Dozer).
func (b *adapter) Doze(d time.Duration) { b.host.Doze(d) }
func (b *adapter) Wake()                { b.host.Wake() }

func (b *adapter) Peer(c control.ConnID) node.Addr {
	if conn := b.conns[c]; conn != nil {
		return node.Addr(conn.RemoteAddr().Addr().As4())
	}
	return node.Addr{}
}

func (b *adapter) Close(c control.ConnID) error {
	if conn := b.conns[c]; conn != nil {
		delete(b.conns, c)
		conn.Close()
	}
	return nil
}

// SetPin drives a pin; the program's pin event that follows says why.
func (b *adapter) SetPin(pin, value int) {
	e := PinEvent{At: b.c.clk.Now(), Pin: pin, Value: value}
	if pin == control.LED {
		e.Cause = "blink"
	}
	b.gpio.set(e)
}

func (b *adapter) ReadPin(pin int) int { return b.gpio.input(pin) }
func (b *adapter) Console([]byte)      {}
