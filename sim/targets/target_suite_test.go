package targets

import (
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim/cmd/entry"
	"github.com/picosim/picosim/sim/simtest"
)

// makeNamespaceEnv makes this test binary a process that makes the network
// namespace it names, through netsim, and waits to be killed.
const makeNamespaceEnv = "PICOSIM_TEST_MAKE_NAMESPACE"

// TestMain lets this test binary be the emulated boards' firmware, or a
// picosim to kill.
func TestMain(m *testing.M) {
	if ns := os.Getenv(makeNamespaceEnv); ns != "" {
		if err := netsim.CreateNamespace(ns); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ready")
		time.Sleep(time.Hour) // killed by the test long before
		os.Exit(0)
	}
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
