package netsim_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/picosim/picosim/netsim"
)

// A socket nobody reads fills up as gVisor's does: the fast path keeps
// what gVisor would keep and drops what it would drop, for broadcasts and
// unicasts, and both paths give the reader the same datagrams in the same
// order, each from its sender's address and port.
func TestFastPathKeepsWhatGVisorKeeps(t *testing.T) {
	received := func(gvisorOnly bool) []string {
		lan, err := netsim.New(netsim.Config{Seed: 3, GVisorOnly: gvisorOnly})
		if err != nil {
			t.Fatal(err)
		}
		defer lan.Close()
		a, _ := lan.AddHost(netsim.HostConfig{Name: "a"})
		b, _ := lan.AddHost(netsim.HostConfig{Name: "b"})
		from, err := a.ListenUDP(5000, nil)
		if err != nil {
			t.Fatal(err)
		}
		to, err := b.ListenUDP(6000, nil) // never read until the end
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3000 {
			dst := netip.AddrPortFrom(lan.Broadcast(), 6000)
			if i%3 == 0 {
				dst = netip.AddrPortFrom(b.IP(), 6000)
			}
			if err := from.WriteTo(fmt.Appendf(nil, "datagram %04d %0100d", i, 0), dst); err != nil {
				t.Fatal(err)
			}
			lan.Clock().Run(lan.Clock().Now())
		}
		lan.Clock().Run(lan.Clock().Now() + 1)
		var got []string
		for {
			p, src, ok := to.ReadFrom()
			if !ok {
				break
			}
			got = append(got, src.String()+" "+string(p[:13]))
		}
		return got
	}
	slow, fast := received(true), received(false)
	if len(slow) == 0 || len(slow) == 3000 {
		t.Fatalf("gVisor kept %d of 3000 datagrams: the test wants a buffer that fills", len(slow))
	}
	if len(fast) != len(slow) {
		t.Fatalf("the fast path kept %d datagrams, gVisor %d", len(fast), len(slow))
	}
	for i := range slow {
		if fast[i] != slow[i] {
			t.Fatalf("datagram %d: fast path %q, gVisor %q", i, fast[i], slow[i])
		}
	}
}
