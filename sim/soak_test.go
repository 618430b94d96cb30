package sim_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
)

// lossyFailover is the run of the verdict's sweeps: the Pico W radio (the
// default users meet), 10% loss, the master killed at 10 s, a minute.
func lossyFailover(boards int, seed uint64) sim.FailoverRun {
	return sim.FailoverRun{
		Cluster:  sim.Config{Boards: boards, Seed: seed, Link: netsim.Link{Loss: 0.1}, Profile: &netsim.PicoW{}, NoTimeline: true},
		KillAt:   10 * time.Second,
		Duration: time.Minute,
	}
}

// explained fails a spec whose run failed, or whose unjudged checks do not
// name a radio fault of a board.
func explained(s sim.Summary, replay string) {
	GinkgoHelper()
	Expect(s.Failures).To(BeEmpty(), "replay: %s", replay)
	for _, n := range s.NotJudged {
		Expect(n).To(MatchRegexp(`^(safety|liveness|agreement|the failover) not judged at [0-9.]+s: pico[0-9]+ (lost its WiFi association|joined WiFi again) at [0-9.]+s, `),
			"an unjudged check names its fault; replay: %s", replay)
	}
}

// sweep runs many seeds at a time and returns the failures and the count
// of runs with an unjudged check.
func sweep(boards int, seeds uint64) (failed []string, unjudged int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan uint64)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range next {
				s, err := lossyFailover(boards, seed).Run()
				mu.Lock()
				if err != nil || !s.Passed() {
					failed = append(failed, fmt.Sprintf("seed %d: %v %v", seed, err, s.Failures))
				} else if len(s.NotJudged) > 0 {
					unjudged++
				}
				mu.Unlock()
			}
		}()
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		next <- seed
	}
	close(next)
	wg.Wait()
	return failed, unjudged
}

// The soak runs many seeds of a lossy failover on the Pico W radio. It is
// skipped unless the label filter asks for it: make soak (label soak), or
// the nightly workflow (label nightly, ten thousand seeds).
var _ = Describe("failover soak", func() {
	for _, c := range []struct {
		label  string
		boards int
		seeds  uint64
	}{{"soak", 7, 200}, {"soak", 20, 200}, {"nightly", 7, 10_000}, {"nightly", 20, 10_000}} {
		It(fmt.Sprintf("%d boards, %d seeds of a failover at 10%% loss on the Pico W radio: none fails, every unjudged check named", c.boards, c.seeds), Label(c.label), func() {
			if !strings.Contains(GinkgoLabelFilter(), c.label) {
				Skip(c.label + " runs only with --label-filter=" + c.label + " (make " + c.label + ")")
			}
			failed, unjudged := sweep(c.boards, c.seeds)
			AddReportEntry("unjudged", fmt.Sprintf("%d of %d runs had a check a radio fault kept from being judged", unjudged, c.seeds))
			Expect(failed).To(BeEmpty(), "replay: picosim cluster --nodes %d --loss 0.1 --kill-master-at 10s --duration 60s --seed N", c.boards)
		})
	}
})

// Seeds that once failed, each for its own reason, and what they show now.
var _ = DescribeTable("a failover on the Pico W radio, once failed, now judged exactly",
	func(seed uint64, want string) {
		s, err := lossyFailover(7, seed).Run()
		Expect(err).NotTo(HaveOccurred())
		explained(s, fmt.Sprintf("picosim cluster --nodes 7 --loss 0.1 --kill-master-at 10s --duration 60s --seed %d", seed))
		if want == "" {
			Expect(s.NotJudged).To(BeEmpty())
		} else {
			Expect(s.NotJudged).To(ContainElement(ContainSubstring(want)))
		}
	},
	// pico2, master after the kill, lost WiFi for 4 s and came back while
	// pico3 had taken over: it came back MASTER, two masters for a second.
	// Now a board that timed members out while away listens again first.
	Entry("seed 37: a master back from an outage listens before it leads", uint64(37), ""),
	// A board lost WiFi 1.7 s before the end: the others still list it.
	Entry("seed 130: a board lost WiFi just before the end", uint64(130), "agreement not judged at 60.000s: pico5 lost its WiFi association at 58.295s"),
	// pico2, the master-to-be, lost WiFi two seconds after the kill (at
	// 12.060s) and was back at 14.045s, inside the failover window.
	Entry("seed 354: the next master lost WiFi during the failover", uint64(354), "liveness not judged at 15.000s: pico2 joined WiFi again at 14.045s"),
	// pico2 was away 2.2 s, under the timeout, and pico3 timed it out
	// just as it came back: two masters until pico3 heard it.
	Entry("seed 268: a board back from a short outage, timed out as it returned", uint64(268), "safety not judged at 21.220s: pico2 joined WiFi again at 20.986s"),
)
