package netsim_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim"
)

// picoLAN has a wired sender and a Pico W receiver listening on port 9.
func picoLAN(t *testing.T, p netsim.PicoW, on func(*netsim.Host, bool)) (*netsim.LAN, *netsim.UDPConn, *netsim.Host, *receiver) {
	t.Helper()
	lan, err := netsim.New(netsim.Config{Seed: 3, OnAssociation: on})
	t.Cleanup(func() { lan.Close() })
	if err != nil {
		t.Fatal(err)
	}
	a, _ := lan.AddHost(netsim.HostConfig{Name: "wired"})
	pico, _ := lan.AddHost(netsim.HostConfig{Name: "pico", Profile: &p})
	r := listen(t, pico, 9)
	s, _ := a.ListenUDP(9, nil)
	return lan, s, pico, r
}

func TestAPicoWIsOffTheNetworkUntilItHasJoined(t *testing.T) {
	var joined time.Duration
	lan, s, pico, r := picoLAN(t, netsim.PicoW{JoinMin: 2 * time.Second, JoinMax: 3 * time.Second, PowerSaveOff: true, AssocLossEvery: -1},
		func(h *netsim.Host, up bool) { joined = h.LAN().Clock().Now() })
	bcast := netip.AddrPortFrom(lan.Broadcast(), 9)
	for i := range 40 {
		lan.Clock().At(time.Duration(i)*100*time.Millisecond, func() { s.WriteTo([]byte("x"), bcast) })
	}
	lan.Clock().Run(5 * time.Second)
	if joined < 2*time.Second || joined > 3*time.Second || !pico.Associated() {
		t.Fatalf("joined at %v", joined)
	}
	for _, at := range r.at {
		if at < joined {
			t.Fatalf("a frame arrived at %v, before the join at %v", at, joined)
		}
	}
	if c := pico.Counters(); c.Unassociated == 0 || int(c.Unassociated)+len(r.got) != 40 {
		t.Fatalf("counters %+v, received %d", c, len(r.got))
	}
}

func TestPowerSavingHoldsBroadcastsForTheDTIMBeacon(t *testing.T) {
	lan, s, _, r := picoLAN(t, netsim.PicoW{JoinMin: time.Millisecond, JoinMax: time.Millisecond, AssocLossEvery: -1}, nil)
	bcast := netip.AddrPortFrom(lan.Broadcast(), 9)
	for i := range 50 {
		lan.Clock().At(time.Second+time.Duration(i)*37*time.Millisecond, func() { s.WriteTo([]byte("x"), bcast) })
	}
	lan.Clock().Run(5 * time.Second)
	beacon := 102400 * time.Microsecond
	for _, at := range r.at {
		if at%beacon != 0 {
			t.Fatalf("a broadcast arrived at %v, between beacons", at)
		}
	}
	if len(r.at) != 50 {
		t.Fatalf("%d of 50 arrived", len(r.at))
	}
}

func TestPowerSavingDelaysUnicastByUpToABeaconInterval(t *testing.T) {
	for _, off := range []bool{false, true} {
		lan, s, pico, r := picoLAN(t, netsim.PicoW{JoinMin: time.Millisecond, JoinMax: time.Millisecond, PowerSaveOff: off, AssocLossEvery: -1}, nil)
		to := netip.AddrPortFrom(pico.IP(), 9)
		sent := map[int]time.Duration{}
		for i := range 2000 {
			at := time.Second + time.Duration(i)*10*time.Millisecond
			sent[i] = at
			lan.Clock().At(at, func() { s.WriteTo([]byte("x"), to) })
		}
		lan.Clock().Run(time.Minute)
		var maxDelay, sum time.Duration
		for i, at := range r.at {
			d := at - sent[i]
			if i > 0 && d < 0 { // reordering across sends would break the pairing
				t.Fatalf("frame %d arrived before it was sent", i)
			}
			maxDelay = max(maxDelay, d)
			sum += d
		}
		mean := sum / time.Duration(len(r.at))
		if off && maxDelay != 0 {
			t.Fatalf("power saving off: delay up to %v", maxDelay)
		}
		if !off && (maxDelay > 102400*time.Microsecond || mean < 40*time.Millisecond || mean > 62*time.Millisecond) {
			t.Fatalf("power saving: mean %v, max %v; want uniform up to 102.4 ms", mean, maxDelay)
		}
	}
}

func TestAPicoWLosesItsAssociationNowAndThenAndJoinsAgain(t *testing.T) {
	var events []bool
	lan, _, _, _ := picoLAN(t, netsim.PicoW{AssocLossEvery: time.Minute},
		func(h *netsim.Host, up bool) { events = append(events, up) })
	lan.Clock().Run(time.Hour)
	losses := 0
	for i, up := range events {
		if up != (i%2 == 0) {
			t.Fatalf("events do not alternate join, loss: %v", events)
		}
		if !up {
			losses++
		}
	}
	// About one loss a minute, less the time spent joining again.
	if losses < 40 || losses > 80 {
		t.Fatalf("%d association losses in an hour at one a minute", losses)
	}
}
