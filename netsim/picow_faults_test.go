package netsim_test

import (
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
