package node_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsStayPortable keeps node/ and its packages a core that TinyGo can build: no
// network, no processes, no gVisor, no test harness. (The full list of
// packages TinyGo supports is checked with firmware in a later issue.)
func TestImportsStayPortable(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/picosim/picosim/node/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "net", strings.HasPrefix(dep, "net/") && dep != "net/netip",
			dep == "os", dep == "os/exec",
			strings.HasPrefix(dep, "gvisor.dev/"), strings.HasPrefix(dep, "github.com/onsi/"):
			t.Errorf("node depends on %s", dep)
		}
	}
}
