package sim

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node"
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
}

// Name returns the board's name.
func (b *Board) Name() string { return b.name }

// IP returns the board's address.
func (b *Board) IP() netip.Addr { return b.host.IP() }

// Host returns the board's host on the LAN.
func (b *Board) Host() *netsim.Host { return b.host }

// Powered reports whether the board is on.
func (b *Board) Powered() bool { return b.node != nil }

// Incarnation returns the number of the board's current (or last) boot.
func (b *Board) Incarnation() uint32 { return b.incarnation }

// Node returns the board's core, or nil while it is off. Read it, don't drive
// it: the cluster's clock does.
func (b *Board) Node() *node.Node { return b.node }

func (b *Board) powerOn() error {
	if b.node != nil {
		return nil
	}
	if err := b.host.PowerOn(); err != nil {
		return err
	}
	b.incarnation++
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
	b.tick = b.c.clk.AfterFunc(never, b.onTick)
	if b.drainer == nil {
		b.drainer = b.c.clk.AfterFunc(never, b.drain)
	}
	b.deadline = -1
	b.apply()
	return nil
}

func (b *Board) powerOff() {
	if b.node == nil {
		return
	}
	b.tick.Stop()
	b.drainer.Stop()
	b.host.PowerOff() // closes the socket with the stack
	b.node, b.conn, b.draining = nil, nil, false
}

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
	for {
		p, from, ok := b.conn.ReadFrom()
		if !ok {
			break
		}
		b.node.Step(b.c.clk.Now(), node.Addr(from.Addr().As4()), from.Port(), p)
	}
	b.apply()
}

// never is a deadline that does not come: timers wait there until armed.
const never = time.Duration(1 << 62)

func (b *Board) onTick() {
	if b.node == nil {
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
	Board   string
	Role    string
	Master  string
	Members []MemberView
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
	v := View{Board: b.name}
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
