package apps

import (
	"testing"
	"time"

	"github.com/picosim/picosim/node"
)

// The seed's three servers answer HELLO as its scripts do, byte for byte.
func TestSeed000APsAnswerAsTheSeedsScripts(t *testing.T) {
	ap := node.Addr{192, 168, 4, 1}
	b, c := node.Addr{192, 168, 4, 16}, node.Addr{192, 168, 4, 17}
	hello := func(a App, from node.Addr) string {
		a.Step(0, Input{Kind: Datagram, From: from, Data: []byte("HELLO from client")})
		rd := take(a)
		if len(rd.Datagrams) != 1 || rd.Datagrams[0].To != from || rd.Datagrams[0].Port != Seed000PeerPort {
			t.Fatalf("reply %+v", rd.Datagrams)
		}
		return string(rd.Datagrams[0].Payload)
	}
	list := NewSeed000AP("seed000-ap", 0)
	list.Step(0, Input{Kind: Viewed, View: View{Self: ap}})
	if got := hello(list, c); got != "192.168.4.17" {
		t.Errorf("first HELLO: %q", got)
	}
	if got := hello(list, b); got != "192.168.4.17,192.168.4.16" {
		t.Errorf("in the order they first said HELLO: %q", got)
	}
	if got := hello(list, c); got != "192.168.4.17,192.168.4.16" {
		t.Errorf("a second HELLO changes nothing: %q", got)
	}
	welcome := NewSeed000AP("seed000-ap-welcome", 0)
	welcome.Step(0, Input{Kind: Viewed, View: View{Self: ap}})
	if got := hello(welcome, b); got != "WELCOME from AP @ 192.168.4.1" {
		t.Errorf("welcome: %q", got)
	}
	nodes := NewSeed000AP("seed000-ap-nodes", 0)
	if got := hello(nodes, b); got != "WELCOME, I see you: 192.168.4.16" {
		t.Errorf("nodes: %q", got)
	}
	hello(nodes, c)
	nodes.Tick(3 * time.Second)
	rd := take(nodes)
	if len(rd.Datagrams) != 2 || string(rd.Datagrams[0].Payload) != "NODES: 192.168.4.16, 192.168.4.17" {
		t.Errorf("every 3 s, NODES to every client: %+v", rd.Datagrams)
	}
	// Not a HELLO: nothing.
	list.Step(0, Input{Kind: Datagram, From: b, Data: []byte("hi")})
	if rd := take(list); len(rd.Datagrams) != 0 {
		t.Errorf("answered %q", rd.Datagrams[0].Payload)
	}
}

// A client takes roles from the list's order, messages its peers, and
// counts the rounds in which its master was heard: none once it is dead,
// since the server keeps listing it.
func TestSeed000ClientTakesRolesFromTheListAndMissesADeadMaster(t *testing.T) {
	ap, m, self, other := node.Addr{10, 0, 0, 9}, node.Addr{10, 0, 0, 1}, node.Addr{10, 0, 0, 2}, node.Addr{10, 0, 0, 3}
	c := NewSeed000Client(ap, 5*time.Second, 0)
	c.Step(0, Input{Kind: Viewed, View: View{Self: self}})
	c.Tick(0)
	if rd := take(c); len(rd.Datagrams) != 1 || rd.Datagrams[0].To != ap || string(rd.Datagrams[0].Payload) != "HELLO" {
		t.Fatalf("first round: %+v", rd.Datagrams)
	}
	c.Step(time.Second, Input{Kind: Datagram, From: ap, Data: []byte("10.0.0.1,10.0.0.2,10.0.0.3")})
	if c.Role != "WORKER1" || c.Master != m {
		t.Fatalf("role %s, master %v", c.Role, c.Master)
	}
	for i := 1; i <= 4; i++ {
		now := time.Duration(i) * 5 * time.Second
		c.Step(now-time.Second, Input{Kind: Datagram, From: m, Data: []byte("Hello from 10.0.0.1 (MASTER)")})
		c.Tick(now)
		rd := take(c)
		if len(rd.Datagrams) != 3 || rd.Datagrams[2].To != other || string(rd.Datagrams[2].Payload) != "Hello from 10.0.0.2 (WORKER1)" {
			t.Fatalf("round %d: %+v", i, rd.Datagrams)
		}
	}
	if s := c.Stats(); s.Attempts != 4 || s.Successes != 4 {
		t.Fatalf("with a live master: %+v", s)
	}
	for i := 5; i <= 20; i++ { // the master is dead; the list still names it
		c.Step(time.Duration(i)*5*time.Second-time.Second, Input{Kind: Datagram, From: ap, Data: []byte("10.0.0.1,10.0.0.2,10.0.0.3")})
		c.Tick(time.Duration(i) * 5 * time.Second)
		take(c)
	}
	if s := c.Stats(); s.Successes != 5 || s.Attempts != 20 {
		t.Fatalf("after the master died: %+v (one round still within two rounds of its last message)", s)
	}
	c.Step(0, Input{Kind: Datagram, From: ap, Data: []byte("WELCOME from AP @ 10.0.0.9")})
	if c.Master != m {
		t.Errorf("a WELCOME is not a list: master %v", c.Master)
	}
}
