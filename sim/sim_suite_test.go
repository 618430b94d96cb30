package sim_test

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/simtest"
)

func TestSim(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "sim")
}

var _ = BeforeSuite(func() {
	DeferCleanup(simtest.NoLeaks())
	// Eventually and Consistently are driven by simulated time (simtest):
	// these wall-clock limits only guard against a hung simulation.
	SetDefaultEventuallyTimeout(time.Minute)
	SetDefaultConsistentlyDuration(time.Minute)
	SetDefaultEventuallyPollingInterval(time.Millisecond)
	SetDefaultConsistentlyPollingInterval(time.Millisecond)
})

// newCluster boots a cluster for one spec. When the spec fails, the seed, a
// replay hint and the end of the timeline go to the report.
func newCluster(cfg sim.Config) *sim.Cluster {
	GinkgoHelper()
	c, err := sim.New(cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	AddReportEntry("seed", cfg.Seed, ReportEntryVisibilityFailureOrVerbose)
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			AddReportEntry("timeline (last 40 events)", fmt.Sprintf(
				"seed %d; replay this spec with: go test ./sim -run TestSim -ginkgo.focus %q\n%s",
				cfg.Seed, CurrentSpecReport().FullText(), c.Timeline().Last(40)))
		}
	})
	return c
}
