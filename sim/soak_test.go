package sim_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
)

// The soak runs many seeds of a lossy failover. It is skipped unless the
// label filter asks for it: make soak, or go tool ginkgo --label-filter=soak ./sim
var _ = Describe("failover soak", Label("soak"), func() {
	BeforeEach(func() {
		if !strings.Contains(GinkgoLabelFilter(), "soak") {
			Skip("soak runs only with --label-filter=soak (make soak)")
		}
	})
	links := []netsim.Link{
		{Loss: 0.1, Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond},
		{Loss: 0.3, Latency: 50 * time.Millisecond, Jitter: 30 * time.Millisecond},
	}
	for i, link := range links {
		boards := []int{7, 20}[i]
		for seed := uint64(1); seed <= 100; seed++ {
			It(fmt.Sprintf("%d boards, seed %d, loss %g, latency %v±%v: fails over within k+2 heartbeats and keeps one master", boards, seed, link.Loss, link.Latency, link.Jitter), func() {
				s, err := sim.FailoverRun{
					Cluster:  sim.Config{Boards: boards, Seed: seed, Link: link, BootSpread: 2 * time.Second, NoTimeline: true},
					KillAt:   20 * time.Second,
					Duration: 2 * time.Minute,
				}.Run()
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Failures).To(BeEmpty(), "replay: picosim cluster --nodes %d --loss %g --latency %v --jitter %v --boot-spread 2s --kill-master-at 20s --duration 2m --seed %d",
					boards, link.Loss, link.Latency, link.Jitter, seed)
				Expect(s.Passed()).To(BeTrue())
			})
		}
	}
})
