package netsim_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim"
)

// faultLAN is two Pico W hosts that have joined, b listening on UDP 9; send
// sends a datagram from a to it.
func faultLAN(t *testing.T, p netsim.PicoW) (*netsim.LAN, *netsim.Host, *netsim.Host, *int, func()) {
	t.Helper()
	joined := map[string]int{}
	lan, err := netsim.New(netsim.Config{Seed: 1, OnAssociation: func(h *netsim.Host, up bool) {
		if up {
			joined[h.Name()]++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lan.Close() })
	a, _ := lan.AddHost(netsim.HostConfig{Name: "a", Profile: &p})
	b, _ := lan.AddHost(netsim.HostConfig{Name: "b", Profile: &p})
	got := 0
	var in *netsim.UDPConn
	in, err = b.ListenUDP(9, func() {
		for {
			if _, _, ok := in.ReadFrom(); !ok {
				return
			}
			got++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.ListenUDP(7, nil)
	if err != nil {
		t.Fatal(err)
	}
	lan.Clock().RunUntil(10*time.Second, func() bool { return joined["a"] > 0 && joined["b"] > 0 })
	send := func() {
		out.WriteTo([]byte("x"), netip.AddrPortFrom(b.IP(), 9))
		lan.Clock().Run(lan.Clock().Now() + 100*time.Millisecond)
	}
	return lan, a, b, &got, send
}

// A silent radio says it is joined and passes nothing, either way, until
// it joins again.
func TestASilentRadioPassesNothingUntilItRejoins(t *testing.T) {
	lan, a, b, got, send := faultLAN(t, netsim.PicoW{AssocLossEvery: -1, PowerSaveOff: true})
	send()
	if *got != 1 {
		t.Fatalf("before the fault: %d datagrams", *got)
	}
	if err := b.Fail(netsim.FaultSilent); err != nil {
		t.Fatal(err)
	}
	send()
	if *got != 1 || !b.Associated() || b.Fault() != netsim.FaultSilent || b.Counters().Silent != 1 {
		t.Fatalf("silent: got %d, associated %v, fault %q, counted %d", *got, b.Associated(), b.Fault(), b.Counters().Silent)
	}
	if err := b.Rejoin(); err != nil {
		t.Fatal(err)
	}
	if b.Associated() || b.Fault() != "" {
		t.Fatalf("rejoining: associated %v, fault %q", b.Associated(), b.Fault())
	}
	lan.Clock().Run(lan.Clock().Now() + 5*time.Second) // the join delay
	send()
	if *got != 2 {
		t.Fatalf("after the rejoin: %d datagrams", *got)
	}
	if err := a.Fail("deaf"); err == nil {
		t.Error("an unknown fault was taken")
	}
}

// A stalled radio also fails outbound connects at once.
func TestAStalledRadioAbortsConnects(t *testing.T) {
	lan, a, b, _, _ := faultLAN(t, netsim.PicoW{AssocLossEvery: -1})
	if _, err := b.ListenTCP(80, func(*netsim.TCPConn) {}); err != nil {
		t.Fatal(err)
	}
	if err := a.Fail(netsim.FaultStall); err != nil {
		t.Fatal(err)
	}
	var dialErr error
	done := false
	at := lan.Clock().Now()
	a.DialTCP(netip.AddrPortFrom(b.IP(), 80), func(_ *netsim.TCPConn, err error) { dialErr, done = err, true })
	lan.Clock().RunUntil(at+time.Minute, func() bool { return done })
	if dialErr == nil || lan.Clock().Now() != at {
		t.Fatalf("dial from a stalled radio: %v at %v (asked at %v)", dialErr, lan.Clock().Now(), at)
	}
}

// DHCP that always fails leaves the host off the network, after three tries
// of 3 s; one that never fails draws no random number (runs without the
// fault replay as before).
func TestDHCPFailures(t *testing.T) {
	fails := 0
	lan, err := netsim.New(netsim.Config{Seed: 1, OnRadioFault: func(h *netsim.Host, f string) {
		if f == netsim.FaultDHCPFailed {
			fails++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer lan.Close()
	h, _ := lan.AddHost(netsim.HostConfig{Name: "a", Profile: &netsim.PicoW{DHCPFail: 1}})
	lan.Clock().Run(time.Minute)
	if h.Associated() || fails != 1 {
		t.Fatalf("DHCP failing every try: associated %v, %d failures told", h.Associated(), fails)
	}
	h.Rejoin()
	lan.Clock().Run(2 * time.Minute)
	if fails != 2 {
		t.Fatalf("a rejoin tries again: %d failures told", fails)
	}

	joinAt := func(p netsim.PicoW) time.Duration {
		lan, _ := netsim.New(netsim.Config{Seed: 9})
		defer lan.Close()
		h, _ := lan.AddHost(netsim.HostConfig{Name: "a", Profile: &p})
		lan.Clock().RunUntil(time.Minute, h.Associated)
		return lan.Clock().Now()
	}
	if a, b := joinAt(netsim.PicoW{}), joinAt(netsim.PicoW{SilentEvery: 0, DHCPFail: 0}); a != b {
		t.Errorf("the same seed joined at %v and %v", a, b)
	}
}

// A Pico W soft AP keeps its DHCP leases in RAM: after it reboots, its
// stations get addresses from .16 in the order they join again, not the
// ones they had (MicroPython's dhcpserver.c).
func TestASoftAPForgetsItsLeasesWhenItReboots(t *testing.T) {
	moved := 0
	var joined []string
	var lan *netsim.LAN
	lan, err := netsim.New(netsim.Config{Seed: 5, SoftAP: "ap",
		OnAddress: func(*netsim.Host, netip.Addr) { moved++ },
		OnAssociation: func(h *netsim.Host, up bool) {
			if up && h.Name() != "ap" {
				joined = append(joined, h.Name())
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer lan.Close()
	p := &netsim.PicoW{AssocLossEvery: -1}
	ap, _ := lan.AddHost(netsim.HostConfig{Name: "ap", Profile: p})
	var st []*netsim.Host
	for _, n := range []string{"s1", "s2", "s3"} {
		h, _ := lan.AddHost(netsim.HostConfig{Name: n, Profile: p})
		st = append(st, h)
	}
	lan.Clock().RunUntil(time.Minute, func() bool { return len(joined) == 3 })
	for i, h := range st {
		if want := netip.AddrFrom4([4]byte{192, 168, 4, byte(16 + i)}); h.IP() != want {
			t.Fatalf("first boot: %s at %v, want %v (board order)", h.Name(), h.IP(), want)
		}
	}
	changed := false
	for round := range 5 {
		joined = joined[:0]
		ap.PowerOff()
		if err := ap.PowerOn(); err != nil {
			t.Fatal(err)
		}
		lan.Clock().RunUntil(lan.Clock().Now()+time.Minute, func() bool { return len(joined) == 3 })
		if len(joined) != 3 {
			t.Fatalf("round %d: %v joined", round, joined)
		}
		for i, name := range joined {
			h := lan.Host(name)
			if want := netip.AddrFrom4([4]byte{192, 168, 4, byte(16 + i)}); h.IP() != want {
				t.Fatalf("round %d: %s joined %d-th and is at %v, want %v", round, name, i+1, h.IP(), want)
			}
		}
		changed = changed || joined[0] != "s1"
	}
	if !changed || moved == 0 {
		t.Errorf("in 5 reboots of the AP no station joined in another order (moved %d)", moved)
	}
}

// A wedged listener never sends SYN-ACK (cyw43439#82): a connect goes
// unanswered, each unanswered attempt is told, and a listener opened again
// answers.
func TestAWedgedListenerLeavesConnectsUnansweredUntilOpenedAgain(t *testing.T) {
	var unanswered []uint16
	lan, err := netsim.New(netsim.Config{Seed: 2, OnUnanswered: func(h *netsim.Host, port uint16) { unanswered = append(unanswered, port) }})
	if err != nil {
		t.Fatal(err)
	}
	defer lan.Close()
	srv, _ := lan.AddHost(netsim.HostConfig{Name: "board"})
	cli, _ := lan.AddHost(netsim.HostConfig{Name: "laptop"})
	accepted := 0
	ln, err := srv.ListenTCP(80, func(*netsim.TCPConn) { accepted++ })
	if err != nil {
		t.Fatal(err)
	}
	dial := func() error {
		var dialErr error
		done := false
		cli.DialTCP(netip.AddrPortFrom(srv.IP(), 80), func(c *netsim.TCPConn, err error) {
			dialErr, done = err, true
			if err == nil {
				c.Close()
			}
		})
		lan.Clock().RunUntil(lan.Clock().Now()+3*time.Second, func() bool { return done })
		if !done {
			return errors.New("no answer within 3 s")
		}
		lan.Clock().Run(lan.Clock().Now() + 100*time.Millisecond) // the server takes the last ACK
		return dialErr
	}
	if err := dial(); err != nil || accepted != 1 {
		t.Fatalf("before: %v, %d accepted", err, accepted)
	}
	if err := srv.Fail(netsim.FaultNoSynAck); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err == nil {
		t.Fatal("a wedged listener answered")
	}
	if len(unanswered) == 0 || unanswered[0] != 80 || srv.Counters().Wedged == 0 {
		t.Fatalf("unanswered %v, wedged %d", unanswered, srv.Counters().Wedged)
	}
	ln.Close()
	if _, err := srv.ListenTCP(80, func(*netsim.TCPConn) { accepted++ }); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err != nil || accepted != 2 {
		t.Fatalf("opened again: %v, %d accepted", err, accepted)
	}
}

// A soft AP has 8 leases: a ninth station's DHCP fails while they are
// held, and it gets the lease of a station that left once that lease has
// expired, a day after its last renewal — not before.
func TestANinthStationWaitsForALeaseToExpire(t *testing.T) {
	failed := 0
	lan, err := netsim.New(netsim.Config{Seed: 3, SoftAP: "ap", OnRadioFault: func(h *netsim.Host, f string) {
		if h.Name() == "s9" && f == netsim.FaultDHCPFailed {
			failed++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer lan.Close()
	p := &netsim.PicoW{AssocLossEvery: -1}
	lan.AddHost(netsim.HostConfig{Name: "ap", Profile: p})
	var st []*netsim.Host
	for i := 1; i <= 9; i++ {
		h, err := lan.AddHost(netsim.HostConfig{Name: fmt.Sprintf("s%d", i), Profile: p})
		if err != nil {
			t.Fatal(err)
		}
		st = append(st, h)
	}
	ninth := st[8]
	lan.Clock().Run(time.Minute)
	if ninth.Associated() || failed != 1 {
		t.Fatalf("with 8 leases held: ninth associated %v, %d DHCP failures told", ninth.Associated(), failed)
	}
	lan.Clock().Run(30 * time.Hour) // s1 renews its lease all this while
	st[0].PowerOff()
	left := lan.Clock().Now()
	// Its lease was renewed at 24 h (every 12 h): it runs out at 48 h.
	for _, at := range []time.Duration{left + time.Hour, 47*time.Hour + 59*time.Minute} {
		lan.Clock().Run(at)
		ninth.Rejoin()
		lan.Clock().Run(lan.Clock().Now() + time.Minute)
		if ninth.Associated() {
			t.Fatalf("the ninth station got a lease at %v, before s1's ran out", at)
		}
	}
	lan.Clock().Run(48*time.Hour + time.Minute)
	ninth.Rejoin()
	lan.Clock().Run(lan.Clock().Now() + time.Minute)
	if !ninth.Associated() || ninth.IP().String() != "192.168.4.16" {
		t.Fatalf("after s1's lease ran out: associated %v at %v", ninth.Associated(), ninth.IP())
	}
}

// NewEachBoot on a soft AP is a station whose MAC changes at each boot:
// MicroPython's DHCP server finds leases by MAC, so the station gets the
// next free lease and its old one stays taken until it expires, a day
// later. A board rebooting often uses up the eight; Sticky keeps its
// address; the AP's own reboot forgets the stale leases.
func TestNewEachBootOnASoftAPUsesUpItsLeases(t *testing.T) {
	for _, addressing := range []netsim.Addressing{netsim.Sticky, netsim.NewEachBoot} {
		t.Run(addressing.String(), func(t *testing.T) {
			joins := 0
			lan, err := netsim.New(netsim.Config{Seed: 3, SoftAP: "ap", Addressing: addressing,
				OnAssociation: func(h *netsim.Host, up bool) {
					if up && h.Name() == "s1" {
						joins++
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer lan.Close()
			p := &netsim.PicoW{AssocLossEvery: -1}
			ap, _ := lan.AddHost(netsim.HostConfig{Name: "ap", Profile: p})
			s1, _ := lan.AddHost(netsim.HostConfig{Name: "s1", Profile: p})
			s2, _ := lan.AddHost(netsim.HostConfig{Name: "s2", Profile: p})
			clk := lan.Clock()
			clk.RunUntil(time.Minute, func() bool { return joins == 1 && s2.Associated() })
			at := func(last byte) netip.Addr { return netip.AddrFrom4([4]byte{192, 168, 4, last}) }
			if s1.IP() != at(16) || s2.IP() != at(17) {
				t.Fatalf("first boot: s1 %v, s2 %v", s1.IP(), s2.IP())
			}
			macs := map[string]bool{string(s1.MAC()): true}
			// The station's seven reboots, a minute apart: with a new MAC
			// each time it takes .18 to .23, then finds no lease.
			want := []byte{18, 19, 20, 21, 22, 23}
			for i := range 7 {
				before := joins
				s1.PowerOff()
				clk.RunUntil(clk.Now()+time.Minute, func() bool { return false })
				if err := s1.PowerOn(); err != nil {
					t.Fatal(err)
				}
				clk.RunUntil(clk.Now()+time.Minute, func() bool { return joins > before })
				macs[string(s1.MAC())] = true
				switch {
				case addressing == netsim.Sticky:
					if joins == before || s1.IP() != at(16) || len(macs) != 1 {
						t.Fatalf("reboot %d: joined %v, at %v, %d MACs: a station keeping its MAC keeps its lease", i+1, joins > before, s1.IP(), len(macs))
					}
				case i < len(want):
					if joins == before || s1.IP() != at(want[i]) || len(macs) != i+2 {
						t.Fatalf("reboot %d: joined %v, at %v, %d MACs; want a new MAC at %v", i+1, joins > before, s1.IP(), len(macs), at(want[i]))
					}
				default:
					if joins != before || s1.Associated() {
						t.Fatalf("reboot %d: joined at %v with all eight leases taken", i+1, s1.IP())
					}
				}
				if s2.IP() != at(17) || !s2.Associated() {
					t.Fatalf("reboot %d: s2 at %v, associated %v", i+1, s2.IP(), s2.Associated())
				}
			}
			if addressing == netsim.Sticky {
				return
			}
			// An hour before .16's lease ends (a day after it was last
			// renewed, at the join) the station still finds none; after, it
			// gets .16.
			clk.RunUntil(23*time.Hour, func() bool { return false })
			if err := s1.Rejoin(); err != nil {
				t.Fatal(err)
			}
			clk.RunUntil(clk.Now()+time.Minute, func() bool { return false })
			if s1.Associated() {
				t.Fatalf("at 23 h: joined at %v before any lease expired", s1.IP())
			}
			clk.RunUntil(24*time.Hour+time.Minute, func() bool { return false })
			if err := s1.Rejoin(); err != nil {
				t.Fatal(err)
			}
			clk.RunUntil(clk.Now()+time.Minute, func() bool { return s1.Associated() })
			if !s1.Associated() || s1.IP() != at(16) {
				t.Fatalf("after a day: associated %v at %v, want .16, the first lease to expire", s1.Associated(), s1.IP())
			}
			// The AP's reboot forgets the stale leases: the station
			// rebooting again takes the lowest free one.
			ap.PowerOff()
			if err := ap.PowerOn(); err != nil {
				t.Fatal(err)
			}
			clk.RunUntil(clk.Now()+time.Minute, func() bool { return s1.Associated() && s2.Associated() })
			s1.PowerOff()
			if err := s1.PowerOn(); err != nil {
				t.Fatal(err)
			}
			clk.RunUntil(clk.Now()+time.Minute, func() bool { return s1.Associated() })
			if got := s1.IP().As4()[3]; !s1.Associated() || got > 18 {
				t.Fatalf("after the AP's reboot: associated %v at .%d, want one of .16-.18", s1.Associated(), got)
			}
		})
	}
}

// A board in light sleep whose radio does not wake it (NoWakeOnWLAN) takes
// no frame: a connect to it is not answered until the sleep ends, or until
// the board wakes by itself (Wake). With the Pico W's default the radio
// wakes it and the connect is answered at once.
func TestALightSleepWithoutWakeOnWLANHoldsFrames(t *testing.T) {
	for _, c := range []struct {
		name     string
		noWake   bool
		wakeAt   time.Duration // Wake called then; 0: never
		answered time.Duration // the connect completes then, give or take the SYN retransmit
	}{
		{"wake-on-wlan", false, 0, 0},
		{"no-wake-on-wlan", true, 0, 20 * time.Second},
		{"no-wake-woken-at-5s", true, 5 * time.Second, 5 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			lan, err := netsim.New(netsim.Config{Seed: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer lan.Close()
			clk := lan.Clock()
			srv, _ := lan.AddHost(netsim.HostConfig{Name: "board", Profile: &netsim.PicoW{AssocLossEvery: -1, NoWakeOnWLAN: c.noWake}})
			cli, _ := lan.AddHost(netsim.HostConfig{Name: "laptop"})
			clk.RunUntil(time.Minute, srv.Associated)
			if _, err := srv.ListenTCP(80, func(*netsim.TCPConn) {}); err != nil {
				t.Fatal(err)
			}
			// A first connection: the laptop knows the board's MAC, so its
			// SYNs go out (a cold ARP cache fails the connect in 3 s,
			// "no route to host", as on Linux).
			warm := false
			cli.DialTCP(netip.AddrPortFrom(srv.IP(), 80), func(conn *netsim.TCPConn, err error) {
				if err == nil {
					conn.Close()
				}
				warm = err == nil
			})
			clk.RunUntil(clk.Now()+5*time.Second, func() bool { return warm })
			clk.Run(clk.Now() + time.Second)
			if !warm {
				t.Fatal("no first connection")
			}
			start := clk.Now()
			srv.Doze(20 * time.Second)
			if c.wakeAt > 0 {
				clk.AfterFunc(c.wakeAt, srv.Wake)
			}
			var took time.Duration
			done := false
			cli.DialTCP(netip.AddrPortFrom(srv.IP(), 80), func(conn *netsim.TCPConn, err error) {
				if err != nil {
					t.Errorf("connect: %v", err)
				}
				took, done = clk.Now()-start, true
			})
			clk.RunUntil(start+time.Minute, func() bool { return done })
			if !done {
				t.Fatalf("the connect never completed: board %+v, laptop %+v", srv.Counters(), cli.Counters())
			}
			// A held SYN is answered when the board wakes: the connect
			// completes then, within the radio's wake-up latency.
			if took < c.answered || took > c.answered+time.Second {
				t.Fatalf("the connect took %v, want %v (+ under 1 s)", took, c.answered)
			}
			held := srv.Counters().Delivered
			if c.noWake && held == 0 {
				t.Fatal("nothing delivered after the wake")
			}
		})
	}
}
