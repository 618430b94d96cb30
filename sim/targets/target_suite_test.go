package targets

import (
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/picosim/picosim/sim/cmd/entry"
	"github.com/picosim/picosim/sim/simtest"
)

// TestMain lets this test binary be the emulated boards' firmware.
func TestMain(m *testing.M) {
	entry.Reexec()
	os.Exit(m.Run())
}

func TestTarget(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "target")
}

var _ = BeforeSuite(func() {
	DeferCleanup(simtest.NoLeaks())
	// Emulated boards live in wall-clock time: a 250ms heartbeat settles
	// a cluster in a few seconds.
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
})

// needNamespaces skips a spec, saying why, where emulated boards cannot run.
func needNamespaces() {
	GinkgoHelper()
	if err := CanEmulate(); err != nil {
		Skip("emulated boards cannot run here: " + err.Error())
	}
}

// The reasons specs were skipped go in one line that `make test` shows
// (hack/testsum prints NOTE lines), so a machine without namespaces is seen.
var _ = ReportAfterSuite("skipped specs", func(r Report) { simtest.NoteSkipped(r) })
