package sim_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/simtest"
)

// netsim hands UDP datagrams to the boards' sockets itself, and builds
// their broadcasts itself, instead of passing them through gVisor (the
// fast path: most of a run's CPU was gVisor's receive path). The promise is
// that no board can tell: the same seed gives the same frames, byte for
// byte, and the same timeline through either path, with every kind of
// traffic a run has (heartbeats under loss, duplication, reordering and
// corruption on the Pico W radio, a master's death, a reboot's HELLO and
// FULL, control over TCP, forged frames, a desktop client).
var _ = Describe("the fast path for UDP", func() {
	run := func(gvisorOnly bool, seed uint64) (capture []byte, timeline string) {
		GinkgoHelper()
		c := newCluster(sim.Config{Boards: 6, Seed: seed, GVisorOnly: gvisorOnly, Profile: &netsim.PicoW{},
			Link: netsim.Link{Loss: 0.1, Latency: 2 * time.Millisecond, Jitter: time.Millisecond,
				Duplicate: 0.02, Reorder: 0.02, Corrupt: 0.01}})
		var buf bytes.Buffer
		Expect(c.StartCapture(&buf)).To(Succeed())
		c.Run(15 * time.Second)
		d, err := c.NewDesktop("desktop")
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Send([]byte{1, 4, 'd', 'e', 's', 'k'}, netip.MustParseAddrPort("255.255.255.255:37020"))).To(Succeed())
		ct, err := c.NewController("laptop")
		Expect(err).NotTo(HaveOccurred())
		if ct.Connect("pico3") == nil { // may fail under this loss: the same way both times
			ct.Do(`{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
			ct.Do(`{"action": "write_pin", "pin": 2, "value": 1, "timeout": 2}`)
		}
		n, err := c.Nemesis()
		Expect(err).NotTo(HaveOccurred())
		Expect(n.ForgeEvery(sim.Forgery{Type: "leave", As: "pico2"}, 5, 300*time.Millisecond)).To(Succeed())
		Expect(c.PowerOff("pico1")).To(Succeed())
		c.Run(c.Now() + 6*time.Second)
		Expect(c.PowerOff("pico4")).To(Succeed())
		c.Run(c.Now() + time.Second)
		Expect(c.PowerOn("pico4")).To(Succeed())
		c.Run(c.Now() + 10*time.Second)
		Expect(c.StopCapture()).To(Succeed())
		return buf.Bytes(), fmt.Sprint(c.Timeline())
	}

	for _, seed := range []uint64{1, 2, 3} {
		It("gives the frames and the timeline of gVisor's own path", func() {
			slowCapture, slowTimeline := run(true, seed)
			fastCapture, fastTimeline := run(false, seed)
			Expect(len(slowCapture)).To(BeNumerically(">", 50_000))
			Expect(fastTimeline).To(Equal(slowTimeline))
			Expect(bytes.Equal(fastCapture, slowCapture)).To(BeTrue(), "captures of %d and %d bytes differ from byte %d",
				len(fastCapture), len(slowCapture), simtest.FirstDifference(fastCapture, slowCapture))
		})
	}
})
