package apps

import (
	"strconv"
	"strings"
	"time"

	"github.com/picosim/picosim/node"
)

// Seed 000's own protocol (shared/seeds/000), so that a cluster of its
// boards can run beside picosim's discovery and be judged the same way. A
// Pico "AP" answers text HELLOs on UDP 5000 and keeps the set of clients
// that said one (it never forgets any); clients ask it for the list, take
// roles from the list's order — "First IP in the list → MASTER, the rest
// become WORKER1, WORKER2" — and message their peers on UDP 5001. The
// seed's own verdict: "If MASTER fails though .. all collapse!": the AP
// keeps listing the dead master first, so no board ever takes over.
const (
	Seed000APPort   = 5000
	Seed000PeerPort = 5001
)

// Seed000AP is the seed's discovery server, in one of its three variants:
//   - "seed000-ap": replies to HELLO with the comma-separated list of the
//     clients in the order they first said HELLO ("Master - Clients");
//   - "seed000-ap-welcome": replies "WELCOME from AP @ <ip>" and nothing
//     else (the first sketch);
//   - "seed000-ap-nodes": replies "WELCOME, I see you: <ip>" and every 3 s
//     sends "NODES: ip, ip" to every client it registered.
//
// An attempt is a HELLO received; a success, one answered.
type Seed000AP struct {
	base
	Variant string
	self    node.Addr
	nodes   []node.Addr // in the order they first said HELLO
}

// NewSeed000AP starts an AP of one of the variants at now.
func NewSeed000AP(variant string, now time.Duration) *Seed000AP {
	a := &Seed000AP{Variant: variant}
	a.next = Never
	if variant == "seed000-ap-nodes" {
		a.next = now + 3*time.Second
	}
	return a
}

func (a *Seed000AP) Step(now time.Duration, in Input) {
	switch in.Kind {
	case Viewed:
		a.self = in.View.Self
	case Datagram:
		if !strings.HasPrefix(string(in.Data), "HELLO") {
			return
		}
		a.stats.Received++
		a.stats.Attempts++
		known := false
		for _, n := range a.nodes {
			known = known || n == in.From
		}
		if !known && a.Variant != "seed000-ap-welcome" {
			a.nodes = append(a.nodes, in.From)
		}
		var reply string
		switch a.Variant {
		case "seed000-ap-welcome":
			reply = "WELCOME from AP @ " + a.self.String()
		case "seed000-ap-nodes":
			reply = "WELCOME, I see you: " + in.From.String()
		default:
			reply = joinAddrs(a.nodes, ",")
		}
		a.send(Seed000APPort, in.From, Seed000PeerPort, []byte(reply))
		a.stats.Sent++
		a.stats.Successes++
	}
}

func (a *Seed000AP) Tick(now time.Duration) {
	if a.Variant != "seed000-ap-nodes" || now < a.next {
		return
	}
	a.next = now + 3*time.Second
	if len(a.nodes) == 0 {
		return
	}
	msg := []byte("NODES: " + joinAddrs(a.nodes, ", "))
	for _, n := range a.nodes {
		a.send(Seed000APPort, n, Seed000PeerPort, msg)
		a.stats.Sent++
	}
}

func joinAddrs(as []node.Addr, sep string) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, sep)
}

// Seed000Client is the seed's "Master - Clients" client: every Interval
// (5 s) it says HELLO to the AP, takes the list it answers with (or a
// "NODES:" list) and its roles by order, and sends "Hello from <ip>
// (<role>)" to each peer on UDP 5001. (The seed asks from a socket of its
// own; here the HELLO leaves from 5001, so the answer comes there.)
//
// An attempt is a round, for a board that is not its own master; a
// success, a round in which a message from its master came within the last
// two rounds: after the master dies, none does. Role and Master are its
// view.
type Seed000Client struct {
	base
	AP       node.Addr
	Interval time.Duration
	self     node.Addr
	Role     string
	Master   node.Addr
	peers    []node.Addr
	fromMast time.Duration // a message from the master last came; -1: never
}

// NewSeed000Client starts a client of the AP at ap, at now.
func NewSeed000Client(ap node.Addr, interval, now time.Duration) *Seed000Client {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	c := &Seed000Client{AP: ap, Interval: interval, fromMast: -1}
	c.next = now
	return c
}

func (c *Seed000Client) Step(now time.Duration, in Input) {
	switch in.Kind {
	case Viewed:
		c.self = in.View.Self
	case Datagram:
		msg := string(in.Data)
		c.stats.Received++
		switch {
		case in.From == c.AP:
			c.learn(strings.TrimPrefix(msg, "NODES: "))
		case strings.HasPrefix(msg, "Hello from ") && !c.Master.IsZero() && in.From == c.Master:
			c.fromMast = now
		}
	}
}

// learn takes the AP's list, if it is one (a WELCOME is not).
func (c *Seed000Client) learn(list string) {
	var nodes []node.Addr
	for _, f := range strings.Split(list, ",") {
		a, ok := node.ParseAddr(strings.TrimSpace(f))
		if !ok {
			return
		}
		nodes = append(nodes, a)
	}
	c.peers = c.peers[:0]
	for i, a := range nodes {
		if i == 0 {
			c.Master = a
		}
		if a == c.self {
			c.Role = "MASTER"
			if i > 0 {
				c.Role = "WORKER" + strconv.Itoa(i)
			}
			continue
		}
		c.peers = append(c.peers, a)
	}
}

func (c *Seed000Client) Tick(now time.Duration) {
	if now < c.next {
		return
	}
	c.next = now + c.Interval
	if !c.Master.IsZero() && c.Master != c.self {
		c.stats.Attempts++
		if c.fromMast >= 0 && now-c.fromMast <= 2*c.Interval {
			c.stats.Successes++
		}
	}
	c.send(Seed000PeerPort, c.AP, Seed000APPort, []byte("HELLO"))
	c.stats.Sent++
	msg := []byte("Hello from " + c.self.String() + " (" + c.Role + ")")
	for _, p := range c.peers {
		c.send(Seed000PeerPort, p, Seed000PeerPort, msg)
		c.stats.Sent++
	}
}
