// Package simtest provides Gomega helpers that make Eventually and
// Consistently run against a cluster's simulated time.
//
// Each helper returns a function for Eventually or Consistently. One call of
// it runs the cluster event by event and checks after every event, so a
// window of ten simulated minutes costs milliseconds and no moment is missed
// between polls:
//
//	Eventually(simtest.Within(c, 5*time.Second, c.Agreement)).Should(Succeed())
//	Consistently(simtest.During(c, 10*time.Minute, c.Safety)).Should(Succeed())
package simtest

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
	"github.com/picosim/picosim/sim"
	"go.uber.org/goleak"
)

// Within checks that check passes within d of simulated time from now. It
// stops with the last error once d has passed.
func Within(c *sim.Cluster, d time.Duration, check func() error) func() error {
	deadline := c.Now() + d
	return func() error {
		var last error
		c.RunUntil(deadline, func() bool {
			last = check()
			return last == nil
		})
		if last == nil {
			return nil
		}
		return gomega.StopTrying(fmt.Sprintf("still failing %v of simulated time later, at %.3fs", d, c.Now().Seconds())).Wrap(last)
	}
}

// During checks that check passes after every event for d of simulated time
// from now, and reports the first moment it does not.
func During(c *sim.Cluster, d time.Duration, check func() error) func() error {
	end := c.Now() + d
	return func() error {
		var failed error
		c.RunUntil(end, func() bool {
			failed = check()
			return failed != nil
		})
		if failed != nil {
			return fmt.Errorf("at %.3fs of simulated time: %w", c.Now().Seconds(), failed)
		}
		return gomega.StopTrying(fmt.Sprintf("held for %v of simulated time", d)).Successfully()
	}
}

// Both combines checkers: the first error wins.
func Both(checks ...func() error) func() error {
	return func() error {
		for _, ch := range checks {
			if err := ch(); err != nil {
				return err
			}
		}
		return nil
	}
}

// NoteSkipped prints, for a Ginkgo suite's report, one "NOTE: " line per
// reason specs were skipped with, so that a CI log that shows no spec
// output still says what did not run and why (hack/testsum prints them).
func NoteSkipped(r types.Report) {
	why := map[string]int{}
	for _, s := range r.SpecReports {
		if s.State == types.SpecStateSkipped && s.Failure.Message != "" {
			why[s.Failure.Message]++
		}
	}
	var reasons []string
	for w := range why {
		reasons = append(reasons, w)
	}
	sort.Strings(reasons)
	for _, w := range reasons {
		fmt.Printf("\nNOTE: %s: %d specs skipped: %s\n", r.SuiteDescription, why[w], strings.TrimSpace(w))
	}
}

// NoLeaks returns a check, for DeferCleanup in a suite's BeforeSuite, that
// fails the suite if goroutines started during it are still alive at its
// end, retrying for a while since stacks and processes take a moment to
// wind down:
//
//	var _ = BeforeSuite(func() { DeferCleanup(simtest.NoLeaks()) })
func NoLeaks() func() {
	before := goleak.IgnoreCurrent()
	return func() {
		gomega.Expect(goleak.Find(before)).To(gomega.Succeed(),
			"goroutines left behind by the suite (a cluster, LAN or target not closed?)")
	}
}

// Median is the middle of d (the upper one of an even count), which it
// leaves unsorted.
func Median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// SyncBuffer is a bytes.Buffer that goroutines (a board's output, a
// process's) write to while a spec reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FirstDifference returns the first byte at which a and b differ (the
// shorter one's length when one is the start of the other), for a spec that
// compares captures.
func FirstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
