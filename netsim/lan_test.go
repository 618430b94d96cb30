package netsim_test

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// receiver collects what a UDP socket gets, reading it on the LAN's clock.
type receiver struct {
	conn *netsim.UDPConn
	got  []string
	at   []time.Duration
}

func listen(t *testing.T, h *netsim.Host, port uint16) *receiver {
	t.Helper()
	r := &receiver{}
	clk := h.LAN().Clock()
	var err error
	r.conn, err = h.ListenUDP(port, func() {
		clk.AfterFunc(0, func() {
			for {
				p, from, ok := r.conn.ReadFrom()
				if !ok {
					return
				}
				r.got = append(r.got, from.Addr().String()+":"+string(p))
				r.at = append(r.at, clk.Now())
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newLAN(t *testing.T, names ...string) (*netsim.LAN, []*netsim.Host) {
	t.Helper()
	lan, err := netsim.New(netsim.Config{Seed: 1})
	t.Cleanup(func() { lan.Close() })
	if err != nil {
		t.Fatal(err)
	}
	var hosts []*netsim.Host
	for _, n := range names {
		h, err := lan.AddHost(netsim.HostConfig{Name: n})
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	return lan, hosts
}

func TestBroadcastReachesEveryOtherHostAfterItsLatency(t *testing.T) {
	lan, hs := newLAN(t, "a", "b", "c")
	if hs[0].IP() != netip.MustParseAddr("192.168.1.2") || lan.Broadcast() != netip.MustParseAddr("192.168.1.255") {
		t.Fatalf("addresses: %v, broadcast %v", hs[0].IP(), lan.Broadcast())
	}
	lan.SetLink("c", netsim.Down, netsim.Link{Latency: 20 * time.Millisecond})
	rb, rc := listen(t, hs[1], 37020), listen(t, hs[2], 37020)
	sender, err := hs[0].ListenUDP(37020, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"255.255.255.255", "192.168.1.255"} {
		if err := sender.WriteTo([]byte("hi"), netip.AddrPortFrom(netip.MustParseAddr(to), 37020)); err != nil {
			t.Fatalf("to %s: %v", to, err)
		}
	}
	lan.Clock().Run(time.Second)
	if len(rb.got) != 2 || rb.got[0] != "192.168.1.2:hi" || rb.at[0] != 0 {
		t.Fatalf("b got %v at %v", rb.got, rb.at)
	}
	if len(rc.got) != 2 || rc.at[0] != 20*time.Millisecond {
		t.Fatalf("c got %v at %v", rc.got, rc.at)
	}
	if c := hs[0].Counters(); c.Sent != 2 {
		t.Fatalf("a counters %+v", c)
	}
	if c := hs[2].Counters(); c.Delivered != 2 {
		t.Fatalf("c counters %+v", c)
	}
}

func TestUnicastResolvesTheReceiverWithARP(t *testing.T) {
	lan, hs := newLAN(t, "a", "b")
	rb := listen(t, hs[1], 5001)
	sender, _ := hs[0].ListenUDP(5001, nil)
	if err := sender.WriteTo([]byte("direct"), netip.AddrPortFrom(hs[1].IP(), 5001)); err != nil {
		t.Fatal(err)
	}
	lan.Clock().Run(time.Second)
	if len(rb.got) != 1 || rb.got[0] != "192.168.1.2:direct" {
		t.Fatalf("b got %v", rb.got)
	}
	// ARP request (broadcast), ARP reply, the datagram.
	if c := hs[0].Counters(); c.Sent != 2 {
		t.Fatalf("a sent %d frames, want ARP request + datagram", c.Sent)
	}
}

func TestPartitionCutsBetweenGroupsUntilHealed(t *testing.T) {
	lan, hs := newLAN(t, "a", "b", "c")
	rb, rc := listen(t, hs[1], 9), listen(t, hs[2], 9)
	send, _ := hs[0].ListenUDP(9, nil)
	bcast := netip.AddrPortFrom(lan.Broadcast(), 9)
	if err := lan.Partition([]string{"a", "b"}, []string{"c"}); err != nil {
		t.Fatal(err)
	}
	send.WriteTo([]byte("1"), bcast)
	lan.Clock().Run(time.Second)
	if len(rb.got) != 1 || len(rc.got) != 0 {
		t.Fatalf("during partition b=%v c=%v", rb.got, rc.got)
	}
	if hs[2].Counters().Partitioned != 1 {
		t.Fatalf("c counters %+v", hs[2].Counters())
	}
	lan.Heal()
	send.WriteTo([]byte("2"), bcast)
	lan.Clock().Run(2 * time.Second)
	if len(rc.got) != 1 {
		t.Fatalf("after heal c=%v", rc.got)
	}
	if err := lan.Partition([]string{"a"}, []string{"a", "b"}); err == nil {
		t.Fatal("a host in two groups was accepted")
	}
	if err := lan.Partition([]string{"zz"}); err == nil {
		t.Fatal("an unknown host was accepted")
	}
}

func TestLossIsDrawnFromTheSeed(t *testing.T) {
	run := func(seed uint64) (uint64, uint64) {
		lan, _ := netsim.New(netsim.Config{Seed: seed})
		t.Cleanup(func() { lan.Close() })
		a, _ := lan.AddHost(netsim.HostConfig{Name: "a"})
		b, _ := lan.AddHost(netsim.HostConfig{Name: "b", Down: netsim.Link{Loss: 0.3}})
		listen(t, b, 9)
		s, _ := a.ListenUDP(9, nil)
		for range 2000 {
			s.WriteTo([]byte("x"), netip.AddrPortFrom(lan.Broadcast(), 9))
		}
		lan.Clock().Run(time.Second)
		c := b.Counters()
		return c.Delivered, c.Lost
	}
	d1, l1 := run(7)
	d2, l2 := run(7)
	if d1 != d2 || l1 != l2 {
		t.Fatalf("same seed, different outcome: %d/%d vs %d/%d", d1, l1, d2, l2)
	}
	if d1+l1 != 2000 || l1 < 500 || l1 > 700 {
		t.Fatalf("delivered %d lost %d of 2000 at 30%% loss", d1, l1)
	}
	if d3, _ := run(8); d3 == d1 {
		t.Fatalf("seeds 7 and 8 lost exactly the same number of frames (%d)", d3)
	}
}

func TestPowerOffLosesFramesInFlightAndPowerOnGivesAFreshStack(t *testing.T) {
	lan, hs := newLAN(t, "a", "b")
	lan.SetLink("b", netsim.Down, netsim.Link{Latency: 100 * time.Millisecond})
	listen(t, hs[1], 9)
	s, _ := hs[0].ListenUDP(9, nil)
	s.WriteTo([]byte("x"), netip.AddrPortFrom(lan.Broadcast(), 9))
	lan.Clock().Run(50 * time.Millisecond)
	hs[1].PowerOff()
	lan.Clock().Run(time.Second)
	if c := hs[1].Counters(); c.Down != 1 || c.Delivered != 0 {
		t.Fatalf("b counters %+v", c)
	}
	old := hs[1].Stack()
	if err := hs[1].PowerOn(); err != nil {
		t.Fatal(err)
	}
	if hs[1].Stack() == old {
		t.Fatal("power cycle kept the old stack")
	}
	rb := listen(t, hs[1], 9)
	s.WriteTo([]byte("y"), netip.AddrPortFrom(lan.Broadcast(), 9))
	lan.Clock().Run(2 * time.Second)
	if len(rb.got) != 1 {
		t.Fatalf("after power-on b got %v", rb.got)
	}
}

// TCP runs on gVisor's own goroutines, so the clock is served rather than
// stepped: simulated time moves on only when the stacks have gone quiet.
func TestTCPEchoInSimulatedTime(t *testing.T) {
	lan, hs := newLAN(t, "server", "client")
	lan.SetLink("client", netsim.Down, netsim.Link{Latency: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go lan.Clock().Serve(ctx, 200*time.Microsecond)

	ln, err := gonet.ListenTCP(hs[0].Stack(), tcpip.FullAddress{Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := gonet.DialContextTCP(ctx, hs[1].Stack(), tcpip.FullAddress{Addr: tcpip.AddrFrom4(hs[0].IP().As4()), Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := lan.Clock().Now()
	for i := range 10 {
		msg := []byte{'r', byte('0' + i)}
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 2)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != string(msg) {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
	// Ten round trips with 50 ms on the path to the client.
	if el := lan.Clock().Now() - start; el < 500*time.Millisecond {
		t.Fatalf("ten round trips took %v of simulated time", el)
	}
}

func TestAForgedDatagramArrivesFromTheAddressItClaims(t *testing.T) {
	lan, hs := newLAN(t, "victim", "bystander", "rogue")
	rv, rb := listen(t, hs[0], 37020), listen(t, hs[1], 37020)
	lan.SetLink("bystander", netsim.Down, netsim.Link{Latency: 20 * time.Millisecond})
	claimed := netip.MustParseAddrPort("192.168.1.1:37020") // the router's address
	if err := hs[2].Forge(claimed, netip.AddrPortFrom(lan.Broadcast(), 37020), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	if err := hs[2].Forge(claimed, netip.AddrPortFrom(hs[0].IP(), 37020), []byte("to you")); err != nil {
		t.Fatal(err)
	}
	lan.Clock().Run(time.Second)
	if len(rv.got) != 2 || rv.got[0] != "192.168.1.1:forged" || rv.got[1] != "192.168.1.1:to you" {
		t.Fatalf("victim got %v", rv.got)
	}
	// It took the LAN's path: the bystander's link delayed it.
	if len(rb.got) != 1 || rb.at[0] != 20*time.Millisecond {
		t.Fatalf("bystander got %v at %v", rb.got, rb.at)
	}
	if err := hs[2].Forge(claimed, netip.MustParseAddrPort("192.168.1.99:1"), nil); err == nil {
		t.Error("forging to an address nobody has succeeded")
	}
}
