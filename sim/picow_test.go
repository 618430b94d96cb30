package sim_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/simtest"
)

var _ = Describe("boards with the Pico W radio", func() {
	It("blink 'connecting' until the radio joins, start discovery after it, then agree", func() {
		profile := &netsim.PicoW{JoinMin: 3 * time.Second, JoinMax: 3 * time.Second, AssocLossEvery: -1}
		c := newCluster(sim.Config{Boards: 3, Seed: 61, Profile: profile})
		c.Run(2900 * time.Millisecond)
		for _, b := range c.Boards() {
			Expect(b.Up()).To(BeFalse(), "%s runs discovery before its radio joined", b.Name())
			Expect(b.GPIO().LEDPattern()).To(Equal("connecting"), b.Name())
		}
		Eventually(simtest.Within(c, 3*time.Second, c.Agreement)).Should(Succeed())
		Expect(c.Timeline().Of(firmware.EvWiFiJoined)).To(HaveLen(3))
		c.Run(4 * time.Second)
		Expect(c.Board("pico2").GPIO().LEDPattern()).To(Equal("idle"))
	})

	It("survive their radios losing the association now and then", func() {
		profile := &netsim.PicoW{AssocLossEvery: 2 * time.Minute}
		c := newCluster(sim.Config{Boards: 4, Seed: 62, Profile: profile})
		Eventually(simtest.Within(c, 10*time.Second, c.Agreement)).Should(Succeed())
		c.Run(20 * time.Minute)
		Expect(c.Timeline().Of(firmware.EvWiFiLost)).NotTo(BeEmpty())
		// After each loss the board joins again and the cluster agrees again.
		Eventually(simtest.Within(c, 2*time.Minute, c.Agreement)).Should(Succeed())
		// Two masters may meet for a moment after a board joins again; once
		// the network is quiet, never.
		Consistently(simtest.During(c, 5*time.Minute, c.QuietSafety)).Should(Succeed())
	})
})

// The Pico W's reported radio faults, drawn at random over many seeds: a
// radio goes silent or stops (it says it is joined, nothing flows) at a
// random time on a random board. Property: after every fault the cluster
// agrees again, the deaf board with it, within the recovery bound — the
// watchdog's silence bound (four failover bounds), the longest join (4 s),
// one failover bound to be heard again, and the heartbeat it last heard
// before the fault; and it is the watchdog that did it. With the watchdog
// off, the board is still out a long while after.
var _ = Describe("radio faults on the Pico W radio", func() {
	const seeds = 60
	witness := func(victim string) string { // a board that is not deaf
		if victim == "pico1" {
			return "pico2"
		}
		return "pico1"
	}
	bound := func(c *sim.Cluster) time.Duration {
		return 4*c.FailoverBound() + 4*time.Second + c.FailoverBound() + time.Second
	}
	run := func(seed uint64, watchdog bool) (*sim.Cluster, string, time.Duration) {
		r := rand.New(rand.NewPCG(seed, 17))
		boards := 3 + r.IntN(4)
		radios := map[string]netsim.PicoW{}
		for i := range boards { // no association loss of their own: it would end a fault too
			radios[fmt.Sprintf("pico%d", i+1)] = netsim.PicoW{AssocLossEvery: -1}
		}
		c := newCluster(sim.Config{Boards: boards, Seed: seed, Radios: radios,
			Settings: firmware.Settings{NoWatchdog: !watchdog}})
		Eventually(simtest.Within(c, 30*time.Second, c.Agreement)).Should(Succeed(), "seed %d", seed)
		c.Run(time.Duration(r.Int64N(int64(20 * time.Second))))
		victim := fmt.Sprintf("pico%d", 1+r.IntN(boards))
		fault := []string{netsim.FaultSilent, netsim.FaultStall}[r.IntN(2)]
		Expect(c.RadioFault(victim, fault)).To(Succeed())
		return c, victim, c.Now()
	}
	It(fmt.Sprintf("%d seeds: a deaf board is back within the recovery bound, by its watchdog", seeds), func() {
		for seed := range uint64(seeds) {
			c, victim, at := run(seed+1, true)
			Eventually(simtest.Within(c, bound(c), func() error {
				if err := c.Agreement(); err != nil {
					return err
				}
				if !slices.ContainsFunc(c.Board(witness(victim)).State().Members, func(m firmware.MemberState) bool { return m.Name == victim }) {
					return fmt.Errorf("%s is not a member yet", victim)
				}
				return nil
			})).Should(Succeed(), "seed %d: %s deaf at %v", seed+1, victim, at)
			Expect(c.Board(victim).State().Stats["rejoins"]).To(BeNumerically(">=", 1), "seed %d", seed+1)
		}
	})
	It("without the watchdog, a deaf board stays out", func() {
		for seed := range uint64(10) {
			c, victim, _ := run(seed+1, false)
			c.Run(10 * time.Minute)
			Expect(c.Board(witness(victim)).State().Members).NotTo(ContainElement(HaveField("Name", victim)), "seed %d", seed+1)
			Expect(c.Board(victim).State().Stats["rejoins"]).To(BeZero(), "seed %d", seed+1)
		}
	})
})
