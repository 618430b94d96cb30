package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// Board is one virtual Pico W: a node core driven over a gVisor UDP socket on
// its host of the LAN. The driver is the loop of node/doc.go: feed the core
// what arrives and what time it is, then carry out its Ready.
type Board struct {
	c     *Cluster
	name  string
	index int
	host  *netsim.Host

	node        *node.Node // nil while powered off
	conn        *netsim.UDPConn
	tick        clock.Timer
	drainer     clock.Timer // fires drain; armed when a datagram is queued
	deadline    time.Duration
	incarnation uint32
	draining    bool // drainer is armed

	// The emulated hardware: it outlives reboots.
	gpio       *GPIO
	flash      *Flash
	svc        *service // the control server, nil while powered off
	apps       []*appRun
	on         bool          // has power
	netOn      bool          // its stack runs (it may still be joining WiFi)
	sleepUntil time.Duration // light sleep: the CPU does nothing until then
	wakeGen    uint64        // bumped by a power loss: pending wake-ups die
}

// Name returns the board's name.
func (b *Board) Name() string { return b.name }

// IP returns the board's address.
func (b *Board) IP() netip.Addr { return b.host.IP() }

// Host returns the board's host on the LAN.
func (b *Board) Host() *netsim.Host { return b.host }

// Powered reports whether the board has power (it may be rebooting or in
// deep sleep, with its network down).
func (b *Board) Powered() bool { return b.on }

// Up reports whether the board runs its network: powered, booted and awake
// from deep sleep. Only boards that are up take part in the checks.
func (b *Board) Up() bool { return b.node != nil }

// Incarnation returns the number of the board's current (or last) boot.
func (b *Board) Incarnation() uint32 { return b.incarnation }

// Node returns the board's core, or nil while it is off. Read it, don't drive
// it: the cluster's clock does.
func (b *Board) Node() *node.Node { return b.node }

// GPIO returns the board's emulated pins.
func (b *Board) GPIO() *GPIO { return b.gpio }

// Flash returns the board's emulated flash.
func (b *Board) Flash() *Flash { return b.flash }

// Control returns the board's control server core, or nil while it is off.
func (b *Board) Control() *control.Server {
	if b.svc == nil {
		return nil
	}
	return b.svc.core
}

// ControlAddr is where the board's control server listens.
func (b *Board) ControlAddr() netip.AddrPort {
	return netip.AddrPortFrom(b.IP(), b.c.cfg.ControlPort)
}

func (b *Board) asleep() bool { return b.c.clk.Now() < b.sleepUntil }

// powerOn boots a board that had no power.
func (b *Board) powerOn() error {
	b.on = true
	return b.netUp()
}

// powerOff cuts the power: network, core, control server and pin levels.
func (b *Board) powerOff() {
	if !b.on {
		return
	}
	b.on = false
	b.netDown()
	b.stopService()
	b.gpio.powerLoss(b.c.clk.Now())
	b.sleepUntil = 0
	b.wakeGen++
}

// netUp boots the board's network side: a fresh stack and the control
// server at once; the discovery core and the apps once the radio has joined
// the network, as the firmware waits for wlan.isconnected() before it starts
// them.
func (b *Board) netUp() error {
	if b.netOn {
		return nil
	}
	if err := b.host.PowerOn(); err != nil {
		return err
	}
	b.netOn = true
	b.incarnation++ // every boot is a new incarnation, whenever discovery starts
	if err := b.startService(); err != nil {
		return err
	}
	if b.host.Associated() {
		return b.startNode()
	}
	return nil // c.associated starts the node
}

// startNode boots the discovery core, a new incarnation, and the apps.
func (b *Board) startNode() error {
	if b.node != nil || !b.netOn {
		return nil
	}
	cfg := b.c.cfg.Node
	cfg.Name = b.name
	cfg.IP = node.Addr(b.host.IP().As4())
	cfg.Broadcast = node.Addr(b.c.lan.Broadcast().As4())
	cfg.Incarnation = b.incarnation
	cfg.Rand = rand.NewPCG(b.c.cfg.Seed, uint64(b.index)<<32|uint64(b.incarnation))
	cfg.Intern = b.c.intern
	n, err := node.New(cfg, b.c.clk.Now())
	if err != nil {
		return err
	}
	conn, err := b.host.ListenUDP(node.Port, b.readable)
	if err != nil {
		return err
	}
	b.node, b.conn = n, conn
	b.tick = b.c.clk.AfterFunc(clock.Never, b.onTick)
	if b.drainer == nil {
		b.drainer = b.c.clk.AfterFunc(clock.Never, b.drain)
	}
	b.deadline = -1
	b.apply()
	for _, r := range b.apps {
		if err := r.up(); err != nil {
			return err
		}
		r.view()
		r.apply()
	}
	return nil
}

// stopNode stops the discovery core and its socket, leaving the stack up.
func (b *Board) stopNode() {
	if b.node == nil {
		return
	}
	b.tick.Stop()
	b.drainer.Stop()
	b.conn.Close()
	b.node, b.conn, b.draining = nil, nil, false
}

// netDown stops the network side, as a reboot does; sockets die with the
// stack.
func (b *Board) netDown() {
	if !b.netOn {
		return
	}
	b.netOn = false
	b.stopNode()
	b.host.PowerOff() // closes the other sockets with the stack
	if b.svc != nil {
		b.svc.ln, b.svc.conns = nil, nil
	}
	for _, r := range b.apps {
		r.down()
	}
}

// act carries out a board-wide action of the control server.
func (b *Board) act(a control.Action) {
	c := b.c
	now := c.clk.Now()
	switch a.Kind {
	case control.ActReset:
		c.record(Event{At: now, Board: b.name, Kind: EvReset})
		b.netDown()
		b.netUp()
	case control.ActLightSleep:
		b.sleepUntil = now + a.For
		c.record(Event{At: now, Board: b.name, Kind: EvSleep, Detail: fmt.Sprintf("light, %v", a.For)})
		gen := b.wakeGen
		c.clk.At(b.sleepUntil, func() {
			if b.wakeGen == gen {
				c.record(Event{At: c.clk.Now(), Board: b.name, Kind: EvWake})
				if b.svc != nil {
					b.svc.wake()
				}
			}
		})
	case control.ActDeepSleep:
		c.record(Event{At: now, Board: b.name, Kind: EvSleep, Detail: fmt.Sprintf("deep, %v", a.For)})
		b.netDown()
		gen := b.wakeGen
		c.clk.AfterFunc(a.For, func() {
			if b.wakeGen == gen {
				c.record(Event{At: c.clk.Now(), Board: b.name, Kind: EvWake})
				b.netUp()
			}
		})
	case control.ActUpdate:
		if err := firmware.Install(b.flash.mem, a.Files); err != nil {
			c.record(Event{At: now, Board: b.name, Kind: "update_error", Detail: err.Error()})
			return
		}
		c.record(Event{At: now, Board: b.name, Kind: EvUpdate, Detail: "version " + b.flash.Version()})
		b.bootImage()
	}
}

// bootImage restarts the board into the image in flash: a new program, so
// the control server starts afresh. An image that fails its health check
// crashes; the boot loader then restores the previous image and boots that.
func (b *Board) bootImage() {
	c := b.c
	b.netDown()
	b.stopService()
	b.gpio.powerLoss(c.clk.Now())
	if err := firmware.Healthy(b.flash.mem); err != nil {
		c.record(Event{At: c.clk.Now(), Board: b.name, Kind: EvBootFail, Detail: err.Error()})
		gen := b.wakeGen
		c.clk.AfterFunc(BootFailDelay, func() {
			if b.wakeGen != gen {
				return // it lost power meanwhile
			}
			if ok, _ := firmware.Rollback(b.flash.mem); ok {
				c.record(Event{At: c.clk.Now(), Board: b.name, Kind: EvRollback, Detail: "version " + b.flash.Version()})
				b.bootImage()
			}
		})
		return
	}
	firmware.Confirm(b.flash.mem)
	b.netUp()
}

// BootFailDelay is how long a board with a crashing image stays down before
// its boot loader rolls the image back (a watchdog's reset).
const BootFailDelay = firmware.BootFailDelay

// readable runs inside the stack when a datagram is queued: drain it from the
// event loop, at the same instant, not from inside the stack.
func (b *Board) readable() {
	if !b.draining {
		b.draining = true
		b.drainer.Reset(0)
	}
}

func (b *Board) drain() {
	b.draining = false
	if b.node == nil {
		return
	}
	asleep := b.asleep()
	for {
		p, from, ok := b.conn.ReadFrom()
		if !ok {
			break
		}
		if !asleep { // a sleeping CPU reads nothing: the datagram is lost
			b.node.Step(b.c.clk.Now(), node.Addr(from.Addr().As4()), from.Port(), p)
		}
	}
	b.apply()
}

func (b *Board) onTick() {
	if b.node == nil {
		return
	}
	if b.asleep() {
		b.tick.Reset(b.sleepUntil - b.c.clk.Now())
		return
	}
	b.node.Tick(b.c.clk.Now())
	b.apply()
}

// apply carries out the core's Ready: send, report, rearm the timer.
func (b *Board) apply() {
	rd := b.node.Ready()
	for _, d := range rd.Datagrams {
		to := netip.AddrPortFrom(netip.AddrFrom4(d.To), d.Port)
		if err := b.conn.WriteTo(d.Payload, to); err != nil {
			b.c.record(Event{At: b.c.clk.Now(), Board: b.name, Kind: "send_error", Detail: err.Error()})
		}
	}
	for _, e := range rd.Events {
		b.c.report(b, e)
		if e.Kind == node.MasterChanged && !e.Prev.IP.IsZero() && b.svc != nil {
			b.svc.core.MasterLost(e.At) // its master is gone: held pins may revert
			b.svc.apply()
		}
	}
	if len(rd.Events) > 0 {
		for _, r := range b.apps {
			r.view()
			r.apply()
		}
	}
	if rd.Deadline != b.deadline {
		b.deadline = rd.Deadline
		b.tick.Reset(rd.Deadline - b.c.clk.Now())
	}
	b.node.Advance()
}

// View is what a board reports: the members it knows, in address order, with
// the role it gives each, and the master it follows ("" before it settles).
type View struct {
	Board       string
	Incarnation uint32 // of the board's current boot
	Role        string
	Master      string
	Members     []MemberView
}

// MemberView is one member as a board sees it.
type MemberView struct {
	Name        string
	IP          string
	Incarnation uint32
	Role        string
}

// Roles maps each member's name to its role.
func (v View) Roles() map[string]string {
	out := make(map[string]string, len(v.Members))
	for _, m := range v.Members {
		out[m.Name] = m.Role
	}
	return out
}

// Names lists the members' names in address order.
func (v View) Names() []string {
	out := make([]string, len(v.Members))
	for i, m := range v.Members {
		out[i] = m.Name
	}
	return out
}

// View returns the board's current view; a board that is off sees nothing.
func (b *Board) View() View {
	v := View{Board: b.name, Incarnation: b.incarnation}
	if b.node == nil {
		return v
	}
	v.Role = b.node.Role().String()
	if m, ok := b.node.Master(); ok {
		v.Master = b.c.nameOf(m.IP)
	}
	for _, m := range b.node.Members() {
		r, _ := b.node.RoleOf(m.IP)
		v.Members = append(v.Members, MemberView{Name: b.c.nameOf(m.IP), IP: m.IP.String(), Incarnation: m.Incarnation, Role: r.String()})
	}
	return v
}
