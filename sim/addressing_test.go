package sim_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/simtest"
)

var steadyRadio = &netsim.PicoW{AssocLossEvery: -1}

// allTogether holds when every board is up, in one component, in agreement.
func allTogether(c *sim.Cluster) func() error {
	return func() error {
		for _, b := range c.Boards() {
			if !b.Up() {
				return fmt.Errorf("%s is not up", b.Name())
			}
		}
		if n := len(c.Components()); n != 1 {
			return fmt.Errorf("%d components", n)
		}
		return c.Agreement()
	}
}

var _ = Describe("a cluster on a board's soft AP", func() {
	It("has the stations lose the network with the AP board and regain it when it is back", func() {
		c := newCluster(sim.Config{Boards: 4, Seed: 71, SoftAP: "pico1", Profile: steadyRadio})
		Eventually(simtest.Within(c, 15*time.Second, allTogether(c))).Should(Succeed())
		Expect(c.Board("pico1").IP().String()).To(Equal("192.168.4.1"))
		Expect(c.Board("pico2").IP().String()).To(Equal("192.168.4.16"))
		Expect(c.Board("pico2").State().Master).To(Equal("pico1"))

		Expect(c.PowerOff("pico1")).To(Succeed())
		lost := c.Timeline().Since(c.Now()).Of(firmware.EvWiFiLost)
		Expect(lost).To(HaveLen(3), "every station loses the network at once")
		Expect(c.Components()).To(BeEmpty(), "and, off the network, none of them counts in the checks")
		c.Run(20 * time.Second)

		since := c.Now()
		Expect(c.PowerOn("pico1")).To(Succeed())
		Eventually(simtest.Within(c, 15*time.Second, allTogether(c))).Should(Succeed())
		Expect(c.Timeline().Since(since).Of(firmware.EvWiFiJoined)).To(HaveLen(4), "the AP and its three stations")
		Expect(c.Board("pico3").State().Master).To(Equal("pico1"))
	})
})

var _ = Describe("a router that gives a rebooted board a new address", func() {
	It("leaves the naive RGB client on the old address while the robust one finds the server by name", func() {
		c := newCluster(sim.Config{Boards: 3, Seed: 72, Addressing: netsim.NewEachBoot})
		Eventually(simtest.Within(c, c.FailoverBound(), c.Agreement)).Should(Succeed())
		Expect(c.StartApp("pico3", apps.Spec{App: "rgb-server"})).To(Succeed())
		Expect(c.StartApp("pico1", apps.Spec{App: "rgb-client-robust", Server: "pico3"})).To(Succeed())
		Expect(c.StartApp("pico2", apps.Spec{App: "rgb-client-naive", Server: "pico3"})).To(Succeed())
		robust := func() apps.Stats { s, _ := c.Board("pico1").AppStats("rgb-client-robust"); return s }
		naive := func() apps.Stats { s, _ := c.Board("pico2").AppStats("rgb-client-naive"); return s }
		c.Run(30 * time.Second)
		before := c.Board("pico3").IP()

		Expect(c.PowerOff("pico3")).To(Succeed())
		Expect(c.PowerOn("pico3")).To(Succeed()) // its apps start again with it, as main.py does
		Expect(c.Board("pico3").IP()).NotTo(Equal(before))
		Expect(c.Timeline().Of(sim.EvAddress)).To(HaveLen(1))

		r0, n0 := robust(), naive()
		c.Run(2 * time.Minute)
		r, n := robust(), naive()
		GinkgoWriter.Printf("after the move: robust %d/%d, naive %d/%d crashed=%v\n",
			r.Successes-r0.Successes, r.Attempts-r0.Attempts, n.Successes-n0.Successes, n.Attempts-n0.Attempts, n.Crashed)
		Expect(r.Successes-r0.Successes).To(BeNumerically(">", 100), "the robust client keeps reading")
		Expect(n.Successes-n0.Successes).To(BeNumerically("<=", 1), "the naive one reads nothing more")
	})
})
