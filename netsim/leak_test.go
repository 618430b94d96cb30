package netsim_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: a LAN that
// is closed destroys its stacks and everything they run.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
