package sim_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/netsim"
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

// appStats are an app's counters on one board.
func appStats(c *sim.Cluster, board, app string) apps.Stats {
	GinkgoHelper()
	s, ok := c.Board(board).AppStats(app)
	Expect(ok).To(BeTrue(), "%s runs %s", board, app)
	return s
}

var _ = Describe("the apps of the source documents", func() {
	It("runs the wireless bus: every member hears every peer", func() {
		c := agreed(sim.Config{Boards: 3, Seed: 31})
		for _, b := range c.Boards() {
			Expect(c.StartApp(b.Name(), apps.Spec{App: "bus", Interval: time.Second})).To(Succeed())
		}
		c.Run(10 * time.Second)
		for _, b := range c.Boards() {
			st := appStats(c, b.Name(), "bus")
			Expect(st.Received).To(BeNumerically(">=", 18), "%s heard from both peers every second", b.Name())
		}
		Expect(c.AppStats("bus").Rate()).To(BeNumerically(">", 0.95))
	})

	It("keeps the robust RGB client at 99% or more at 20% loss, while the naive one visibly fails", func() {
		link := netsim.Link{Loss: 0.2, Latency: 10 * time.Millisecond, Jitter: 3 * time.Millisecond}
		c := agreed(sim.Config{Boards: 3, Seed: 32, Link: link})
		Expect(c.StartApp("pico1", apps.Spec{App: "rgb-server"})).To(Succeed())
		Expect(c.StartApp("pico2", apps.Spec{App: "rgb-client-robust", Server: "pico1"})).To(Succeed())
		Expect(c.StartApp("pico3", apps.Spec{App: "rgb-client-naive", Server: "pico1"})).To(Succeed())
		c.Run(5 * time.Minute)

		r, n := appStats(c, "pico2", "rgb-client-robust"), appStats(c, "pico3", "rgb-client-naive")
		GinkgoWriter.Printf("robust %+v rate %.4f\nnaive %+v rate %.4f\n", r, r.Rate(), n, n.Rate())
		Expect(r.Attempts).To(BeNumerically(">", 300))
		Expect(r.Rate()).To(BeNumerically(">=", 0.99))
		Expect(n.Crashed || n.Rate() < 0.95).To(BeTrue(), "naive: %+v, rate %.3f", n, n.Rate())
	})

	It("serves echo: every message comes back on a lossless LAN", func() {
		c := agreed(sim.Config{Boards: 2, Seed: 33, Link: netsim.Link{Latency: 5 * time.Millisecond}})
		Expect(c.StartApp("pico1", apps.Spec{App: "echo-server"})).To(Succeed())
		Expect(c.StartApp("pico2", apps.Spec{App: "echo-client", Server: "pico1", Interval: 500 * time.Millisecond})).To(Succeed())
		c.Run(30 * time.Second)
		st := appStats(c, "pico2", "echo-client")
		Expect(st.Attempts).To(BeNumerically(">=", 50))
		Expect(st.Successes).To(BeNumerically(">=", st.Attempts-1), "all but the one in flight")
	})

	It("mirrors a pin of one board on another through the master, within two hops", func() {
		link := netsim.Link{Latency: 20 * time.Millisecond}
		c := agreed(sim.Config{Boards: 3, Seed: 34, Link: link})
		for _, b := range c.Boards() {
			Expect(c.StartApp(b.Name(), apps.Spec{App: "mirror", Source: "pico2", Target: "pico3", SourcePin: 2, TargetPin: 5})).To(Succeed())
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
