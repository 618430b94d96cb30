package sim_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/simtest"
)

func agreed(cfg sim.Config) *sim.Cluster {
	GinkgoHelper()
	c := newCluster(cfg)
	Eventually(simtest.Within(c, 2*c.FailoverBound(), c.Agreement)).Should(Succeed())
	return c
}

func ipOf(c *sim.Cluster, board string) node.Addr { return node.Addr(c.Board(board).IP().As4()) }

var _ = Describe("the apps of the source documents", func() {
	It("runs the wireless bus: every member hears every peer", func() {
		c := agreed(sim.Config{Boards: 3, Seed: 31})
		for _, b := range c.Boards() {
			Expect(c.StartApp(b.Name(), apps.NewBus(time.Second, c.Now()))).To(Succeed())
		}
		c.Run(10 * time.Second)
		for _, b := range c.Boards() {
			st := c.App(b.Name(), "bus").Stats()
			Expect(st.Received).To(BeNumerically(">=", 18), "%s heard from both peers every second", b.Name())
		}
		Expect(c.AppStats("bus").Rate()).To(BeNumerically(">", 0.95))
	})

	It("keeps the robust RGB client at 99% or more at 20% loss, while the naive one visibly fails", func() {
		link := netsim.Link{Loss: 0.2, Latency: 10 * time.Millisecond, Jitter: 3 * time.Millisecond}
		c := agreed(sim.Config{Boards: 3, Seed: 32, Link: link})
		Expect(c.StartApp("pico1", apps.NewRGBServer(rand.NewPCG(1, 2)))).To(Succeed())
		robust := apps.NewRGBClient(true, c.Now())
		robust.ServerName = "pico1"
		naive := apps.NewRGBClient(false, c.Now())
		naive.Server = ipOf(c, "pico1")
		Expect(c.StartApp("pico2", robust)).To(Succeed())
		Expect(c.StartApp("pico3", naive)).To(Succeed())
		c.Run(5 * time.Minute)

		r, n := robust.Stats(), naive.Stats()
		GinkgoWriter.Printf("robust %+v rate %.4f\nnaive %+v rate %.4f\n", r, r.Rate(), n, n.Rate())
		Expect(r.Attempts).To(BeNumerically(">", 300))
		Expect(r.Rate()).To(BeNumerically(">=", 0.99))
		Expect(n.Crashed || n.Rate() < 0.95).To(BeTrue(), "naive: %+v, rate %.3f", n, n.Rate())
	})

	It("serves echo: every message comes back on a lossless LAN", func() {
		c := agreed(sim.Config{Boards: 2, Seed: 33, Link: netsim.Link{Latency: 5 * time.Millisecond}})
		Expect(c.StartApp("pico1", apps.NewEchoServer())).To(Succeed())
		client := apps.NewEchoClient(ipOf(c, "pico1"), 500*time.Millisecond, c.Now())
		Expect(c.StartApp("pico2", client)).To(Succeed())
		c.Run(30 * time.Second)
		st := client.Stats()
		Expect(st.Attempts).To(BeNumerically(">=", 50))
		Expect(st.Successes).To(BeNumerically(">=", st.Attempts-1), "all but the one in flight")
	})

	It("mirrors a pin of one board on another through the master, within two hops", func() {
		link := netsim.Link{Latency: 20 * time.Millisecond}
		c := agreed(sim.Config{Boards: 3, Seed: 34, Link: link})
		for _, b := range c.Boards() {
			Expect(c.StartApp(b.Name(), apps.NewMirror(b.Name(), "pico2", "pico3", 2, 5, c.Now()))).To(Succeed())
		}
		ct, err := c.NewController("laptop")
		Expect(err).NotTo(HaveOccurred())
		Expect(ct.Connect("pico2")).To(Succeed())
		do(ct, `{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`)
		c.Run(2 * time.Second)
		written := do(ct, `{"action": "write_pin", "pin": 2, "value": 1, "timeout": 3}`)
		// pico2 → master pico1 → pico3: two frames of 20 ms.
		bound := 2*link.Latency + time.Millisecond
		Eventually(simtest.Within(c, bound, func() error {
			if v := c.Board("pico3").GPIO().Level(5); v != 1 {
				return fmt.Errorf("pico3 GPIO5 is %d", v)
			}
			return nil
		})).Should(Succeed())
		Expect(c.Now() - written.At).To(BeNumerically("<=", bound))
		// The revert of the source is mirrored too.
		Eventually(simtest.Within(c, 3*time.Second+bound, func() error {
			if v := c.Board("pico3").GPIO().Level(5); v != 0 {
				return fmt.Errorf("pico3 GPIO5 is %d", v)
			}
			return nil
		})).Should(Succeed())
	})
})
