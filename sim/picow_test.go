package sim_test

import (
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
