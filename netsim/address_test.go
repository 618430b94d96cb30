package netsim_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim"
)

func TestStickyAddressesSurviveAReboot(t *testing.T) {
	_, hs := newLAN(t, "a", "b")
	ip := hs[1].IP()
	hs[1].PowerOff()
	hs[1].PowerOn()
	if hs[1].IP() != ip {
		t.Fatalf("address moved from %v to %v", ip, hs[1].IP())
	}
}

func TestNewEachBootGivesARebootedHostANewAddressThatWorks(t *testing.T) {
	var moved []string
	lan, _ := netsim.New(netsim.Config{Addressing: netsim.NewEachBoot,
		OnAddress: func(h *netsim.Host, old netip.Addr) { moved = append(moved, old.String()+">"+h.IP().String()) }})
	t.Cleanup(func() { lan.Close() })
	a, _ := lan.AddHost(netsim.HostConfig{Name: "a"})
	b, _ := lan.AddHost(netsim.HostConfig{Name: "b"})
	old := b.IP()
	b.PowerOff()
	if err := b.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if b.IP() == old || len(moved) != 1 || moved[0] != old.String()+">"+b.IP().String() {
		t.Fatalf("after the reboot: %v, events %v", b.IP(), moved)
	}
	rb := listen(t, b, 9)
	s, _ := a.ListenUDP(9, nil)
	s.WriteTo([]byte("to the new address"), netip.AddrPortFrom(b.IP(), 9))
	s.WriteTo([]byte("to the old address"), netip.AddrPortFrom(old, 9))
	lan.Clock().Run(5 * time.Second)
	if len(rb.got) != 1 || !strings.HasSuffix(rb.got[0], "to the new address") {
		t.Fatalf("b got %v", rb.got)
	}
}

func TestNewAtExpiryMovesARunningHost(t *testing.T) {
	lan, err := netsim.New(netsim.Config{Addressing: netsim.NewAtExpiry, Lease: time.Minute})
	t.Cleanup(func() { lan.Close() })
	if err != nil {
		t.Fatal(err)
	}
	b, _ := lan.AddHost(netsim.HostConfig{Name: "b"})
	first := b.IP()
	lan.Clock().Run(59 * time.Second)
	if b.IP() != first {
		t.Fatal("moved before the lease ended")
	}
	lan.Clock().Run(61 * time.Second)
	if b.IP() == first {
		t.Fatal("still on its first address after the lease")
	}
	if _, err := netsim.New(netsim.Config{Addressing: netsim.NewAtExpiry}); err == nil {
		t.Fatal("new-at-expiry without a lease time was accepted")
	}
}

func TestSoftAPStationsLoseTheNetworkWithTheAPAndJoinAgain(t *testing.T) {
	var events []string
	lan, err := netsim.New(netsim.Config{SoftAP: "ap", OnAssociation: func(h *netsim.Host, up bool) {
		events = append(events, h.Name()+map[bool]string{true: "+", false: "-"}[up])
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lan.Close() })
	radio := &netsim.PicoW{JoinMin: time.Second, JoinMax: time.Second, PowerSaveOff: true, AssocLossEvery: -1}
	ap, _ := lan.AddHost(netsim.HostConfig{Name: "ap"})
	var stations []*netsim.Host
	for i := range netsim.SoftAPLeases {
		h, err := lan.AddHost(netsim.HostConfig{Name: "s" + string(rune('0'+i)), Profile: radio})
		if err != nil {
			t.Fatal(err)
		}
		stations = append(stations, h)
	}
	if ap.IP().String() != "192.168.4.1" || stations[0].IP().String() != "192.168.4.16" || stations[7].IP().String() != "192.168.4.23" {
		t.Fatalf("addresses: ap %v, stations %v..%v", ap.IP(), stations[0].IP(), stations[7].IP())
	}
	ninth, err := lan.AddHost(netsim.HostConfig{Name: "ninth", Profile: radio})
	if err != nil {
		t.Fatalf("a ninth station: %v", err)
	}
	lan.Clock().Run(2 * time.Second)
	if ninth.Associated() {
		t.Fatal("a ninth station got one of the 8 leases")
	}
	if !stations[0].Associated() || !lan.Connected(stations[0], stations[1]) {
		t.Fatal("stations did not join")
	}
	ap.PowerOff()
	if stations[0].Associated() || lan.Connected(stations[0], stations[1]) {
		t.Fatal("stations are still on the network without their AP")
	}
	r := listen(t, stations[1], 9)
	s, _ := stations[0].ListenUDP(9, nil)
	s.WriteTo([]byte("x"), netip.AddrPortFrom(lan.Broadcast(), 9))
	lan.Clock().Run(3 * time.Second)
	if len(r.got) != 0 {
		t.Fatalf("a frame crossed a network without its AP: %v", r.got)
	}
	ap.PowerOn()
	lan.Clock().Run(lan.Clock().Now() + 500*time.Millisecond)
	if stations[0].Associated() {
		t.Fatal("joined again before its join delay")
	}
	lan.Clock().Run(lan.Clock().Now() + time.Second)
	if !stations[0].Associated() || !lan.Connected(stations[0], stations[1]) {
		t.Fatal("stations did not join again after the AP came back")
	}
	joined, lost := 0, 0
	for _, e := range events {
		if strings.HasSuffix(e, "+") {
			joined++
		} else {
			lost++
		}
	}
	if joined != 16 || lost != 8 {
		t.Fatalf("events %v", events)
	}
}

func TestAddressesAreGivenInOrderUntilTheSubnetIsFull(t *testing.T) {
	lan, _ := netsim.New(netsim.Config{Subnet: netip.MustParsePrefix("10.0.0.0/29")})
	t.Cleanup(func() { lan.Close() })
	var ips []string
	for i := range 5 { // .1 is the router, .7 the broadcast
		h, err := lan.AddHost(netsim.HostConfig{Name: string(rune('a' + i)), Off: true})
		if err != nil {
			t.Fatal(err)
		}
		ips = append(ips, h.IP().String())
	}
	if got := strings.Join(ips, " "); got != "10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6" {
		t.Fatal(got)
	}
	if _, err := lan.AddHost(netsim.HostConfig{Name: "f", Off: true}); err == nil || !strings.Contains(err.Error(), "subnet 10.0.0.0/29 is full") {
		t.Fatalf("a sixth host: %v", err)
	}
}
