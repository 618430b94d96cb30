package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node"
)

// Nemesis is a rogue host on a cluster's LAN, as any machine on the same
// WiFi can be: it forges discovery frames from any address and runs hostile
// control clients. Hostile scenarios and the probe suite use it; what it
// does is a fault of the network's, injected through netsim like the others
// (Host.Forge), so every frame it sends is in the capture.
type Nemesis struct {
	c    *Cluster
	host *netsim.Host
}

// Nemesis returns the cluster's rogue host, adding it to the LAN the first
// time (named "rogue").
func (c *Cluster) Nemesis() (*Nemesis, error) {
	if c.nemesis != nil {
		return c.nemesis, nil
	}
	h, err := c.lan.AddHost(netsim.HostConfig{Name: "rogue"})
	if err != nil {
		return nil, err
	}
	c.nemesis = &Nemesis{c: c, host: h}
	return c.nemesis, nil
}

// Host is the rogue's host on the LAN.
func (n *Nemesis) Host() *netsim.Host { return n.host }

// Forgery is one discovery frame a rogue sends.
type Forgery struct {
	// Type: hello, full, heartbeat, leave or garbage.
	Type string
	// From is the address it claims (default: the rogue's own); As, a
	// board's name, claims that board's address and, for heartbeat and
	// leave, its incarnation.
	From netip.Addr
	As   string
	// To is a board's name; default the broadcast.
	To string
	// Heartbeat fields (Incarnation and Seq default to As's, and 1).
	Name        string
	Incarnation uint32
	Seq         uint32
	Slot        uint16
	// Members for full: names, each at the address of the board of that
	// name, or 192.0.2.x for a name that is no board's.
	Members []string
	// Bytes of garbage (default 32).
	Bytes int
}

// Forge sends one forged frame, unauthenticated: the rogue has no key.
func (n *Nemesis) Forge(f Forgery) error {
	from := f.From
	var as *Board
	if f.As != "" {
		b, err := n.c.board(f.As)
		if err != nil {
			return err
		}
		as, from = b, b.IP()
	}
	if !from.IsValid() {
		from = n.host.IP()
	}
	to := n.c.lan.Broadcast()
	if f.To != "" {
		b, err := n.c.board(f.To)
		if err != nil {
			return err
		}
		to = b.IP()
	}
	var fr node.Frame
	switch f.Type {
	case "hello":
		fr = node.Frame{Type: node.TypeHello, Name: []byte(f.Name)}
	case "heartbeat":
		fr = node.Frame{Type: node.TypeHeartbeat, Name: []byte(f.Name), Incarnation: f.Incarnation, Seq: f.Seq, Slot: f.Slot}
		if as != nil && fr.Incarnation == 0 {
			fr.Incarnation = as.Incarnation()
		}
		if fr.Seq == 0 {
			fr.Seq = 1
		}
		if len(fr.Name) == 0 {
			fr.Name = []byte("rogue")
			if as != nil {
				fr.Name = []byte(as.Name())
			}
		}
	case "leave":
		fr = node.Frame{Type: node.TypeLeave, Incarnation: f.Incarnation}
		if as != nil && fr.Incarnation == 0 {
			fr.Incarnation = as.Incarnation()
		}
	case "full":
		fr = node.Frame{Type: node.TypeFull}
		for i, name := range f.Members {
			ip := node.Addr{192, 0, 2, byte(i + 1)}
			if b, err := n.c.board(name); err == nil {
				ip = node.Addr(b.IP().As4())
			}
			fr.Entries = append(fr.Entries, node.Entry{IP: ip, Name: []byte(name)})
		}
	case "garbage":
		size := f.Bytes
		if size <= 0 {
			size = 32
		}
		// Garbage from the seed: a run replays byte for byte.
		rng := rand.New(rand.NewPCG(n.c.cfg.Seed, uint64(n.c.clk.Now())))
		p := make([]byte, size)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return n.send(from, to, p)
	default:
		return fmt.Errorf("forge: no frame type %q (hello, full, heartbeat, leave, garbage)", f.Type)
	}
	p, err := fr.Append(nil)
	if err != nil {
		return fmt.Errorf("forge %s: %w", f.Type, err)
	}
	return n.send(from, to, p)
}

// ForgeEvery sends count forged frames, the first now and the others every
// apart, in the cluster's time; a heartbeat's seq counts up from f.Seq, as
// a real board's do. It checks the first frame at once.
func (n *Nemesis) ForgeEvery(f Forgery, count int, every time.Duration) error {
	if err := n.Forge(f); err != nil {
		return err
	}
	var t clock.Timer
	left := count - 1
	t = n.c.clk.AfterFunc(every, func() {
		if left <= 0 {
			return
		}
		left--
		if f.Type == "heartbeat" {
			f.Seq = max(f.Seq, 1) + 1
		}
		n.Forge(f)
		t.Reset(every)
	})
	if left <= 0 {
		t.Stop()
	}
	return nil
}

func (n *Nemesis) send(from, to netip.Addr, p []byte) error {
	err := n.host.Forge(netip.AddrPortFrom(from, node.Port), netip.AddrPortFrom(to, node.Port), p)
	n.c.record(Event{At: n.c.clk.Now(), Board: "rogue", Kind: "forged", Detail: fmt.Sprintf("%d bytes claiming %v", len(p), from)})
	return err
}

// Attack kinds: hostile control clients.
const (
	NonReader = "non-reader" // pipelines commands and reads no reply
	Slowloris = "slowloris"  // holds connections, a byte at a time, never a whole line
	Oversized = "oversized"  // sends a line of Bytes (default 1 MiB), then a ping
	HalfClose = "half-close" // sends a ping and shuts its sending side at once
)

// AttackKinds lists them.
var AttackKinds = []string{NonReader, Slowloris, Oversized, HalfClose}

// Attack is a hostile control client (or several) at work until Until.
type Attack struct {
	Kind    string
	Board   string
	Conns   int           // connections at once (slowloris; 1 for the others)
	Bytes   int           // oversized: the line's length
	Until   time.Duration // when it stops (absolute simulated time)
	Opened  int           // connections the board accepted
	Closed  int           // of them, closed by the board (cut off, evicted, timed out)
	Replies int           // reply lines received (non-readers receive none)
	Sent    int64         // bytes sent
	Errors  []string      // reply lines with an error, first ones
	n       *Nemesis
	conns   map[*netsim.TCPConn]bool
}

// Attack starts a hostile client against a board's control server; it runs
// in the cluster's time until a.Until.
func (n *Nemesis) Attack(a *Attack) error {
	b, err := n.c.board(a.Board)
	if err != nil {
		return err
	}
	switch a.Kind {
	case NonReader, Oversized, HalfClose:
		a.Conns = 1
	case Slowloris:
		if a.Conns <= 0 {
			a.Conns = 4
		}
	default:
		return fmt.Errorf("attack: no kind %q (%s)", a.Kind, strings.Join(AttackKinds, ", "))
	}
	if a.Kind == Oversized && a.Bytes <= 0 {
		a.Bytes = 1 << 20
	}
	a.n, a.conns = n, map[*netsim.TCPConn]bool{}
	for i := 0; i < a.Conns; i++ {
		a.dial(b)
	}
	return nil
}

func (a *Attack) over() bool { return a.n.c.clk.Now() >= a.Until }

// dial opens one connection; a slowloris opens another when one closes.
func (a *Attack) dial(b *Board) {
	a.n.host.DialTCP(b.ControlAddr(), func(tc *netsim.TCPConn, err error) {
		if err != nil {
			if !a.over() && a.Kind == Slowloris {
				a.n.c.clk.AfterFunc(100*time.Millisecond, func() { a.dial(b) })
			}
			return
		}
		a.Opened++
		a.conns[tc] = true
		var buf []byte
		tc.OnData = func(p []byte) {
			buf = append(buf, p...)
			for {
				i := strings.IndexByte(string(buf), '\n')
				if i < 0 {
					return
				}
				a.Replies++
				if line := string(buf[:i]); strings.Contains(line, `"error"`) && len(a.Errors) < 8 {
					a.Errors = append(a.Errors, line)
				}
				buf = buf[i+1:]
			}
		}
		tc.OnClose = func() {
			if a.conns[tc] {
				delete(a.conns, tc)
				a.Closed++
				if a.Kind == Slowloris && !a.over() {
					// Back in after 100 ms: at once, on an ideal radio
					// (no latency), a refused reconnect would loop
					// within one simulated instant.
					a.n.c.clk.AfterFunc(100*time.Millisecond, func() { a.dial(b) })
				}
			}
		}
		a.run(tc)
	})
}

// run drives one connection with a timer of its own.
func (a *Attack) run(tc *netsim.TCPConn) {
	clk := a.n.c.clk
	send := func(p []byte) {
		tc.Write(p)
		a.Sent += int64(len(p))
	}
	switch a.Kind {
	case HalfClose:
		send([]byte(`{"action": "ping"}` + "\n"))
		tc.CloseWrite()
		return
	case NonReader:
		tc.StopReading(4096)
	}
	pings := []byte(strings.Repeat(`{"action": "ping"}`+"\n", 50))
	left := a.Bytes
	var t clock.Timer
	t = clk.AfterFunc(0, func() {
		if !a.conns[tc] {
			return // closed
		}
		if a.over() {
			delete(a.conns, tc)
			tc.Close()
			return
		}
		switch a.Kind {
		case NonReader:
			send(pings)
			t.Reset(10 * time.Millisecond)
		case Slowloris:
			send([]byte("{"))
			t.Reset(500 * time.Millisecond)
		case Oversized:
			if left <= 0 {
				send([]byte("\n" + `{"action": "ping"}` + "\n"))
				return
			}
			n := min(left, 64<<10)
			if tc.Buffered() < 256<<10 { // as fast as the board takes it, no faster
				send([]byte(strings.Repeat("x", n)))
				left -= n
			}
			t.Reset(10 * time.Millisecond)
		}
	})
}

// Stop ends the attack now.
func (a *Attack) Stop() {
	a.Until = a.n.c.clk.Now()
	for tc := range a.conns {
		delete(a.conns, tc)
		tc.Close()
	}
}
