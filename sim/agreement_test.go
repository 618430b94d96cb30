package sim_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
)

// Agreement keeps its last answer until a board's view, a board's power or
// who hears whom changes; after every event of random schedules (power
// cuts, reboots, partitions, one-way cuts, loss, the Pico W radio losing
// and regaining WiFi) it must say what working it out afresh says.
var _ = Describe("the agreement check", func() {
	for seed := uint64(1); seed <= 12; seed++ {
		It(fmt.Sprintf("answers as a fresh check does after every event (seed %d)", seed), func() {
			rng := rand.New(rand.NewPCG(seed, 99))
			c := newCluster(sim.Config{Boards: 6, Seed: seed, Link: netsim.Link{Loss: 0.05},
				Profile: &netsim.PicoW{AssocLossEvery: 20 * time.Second}})
			names := []string{"pico1", "pico2", "pico3", "pico4", "pico5", "pico6"}
			checks, agreed := 0, 0
			for step := range 30 {
				switch rng.IntN(6) {
				case 0:
					Expect(c.PowerOff(names[rng.IntN(6)])).To(Succeed())
				case 1:
					Expect(c.PowerOn(names[rng.IntN(6)])).To(Succeed())
				case 2:
					k := 1 + rng.IntN(5)
					Expect(c.Partition(names[:k], names[k:])).To(Succeed())
				case 3:
					c.Heal()
				case 4:
					Expect(c.Cut(names[rng.IntN(6)], names[rng.IntN(6)])).To(Succeed())
				}
				c.RunUntil(c.Now()+time.Duration(1+rng.IntN(8))*time.Second, func() bool {
					got, want := c.Agreement(), c.AgreementWorkedOut()
					Expect(fmt.Sprint(got)).To(Equal(fmt.Sprint(want)), "step %d at %v", step, c.Now())
					checks++
					if want == nil {
						agreed++
					}
					return false
				})
			}
			Expect(checks).To(BeNumerically(">", 1000))
			Expect(agreed).To(BeNumerically(">", 0), "the schedule never let the boards agree")
		})
	}
})
