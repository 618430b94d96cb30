package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// network.include takes the pairs, boards and radios of a profile file
// beside the scenario (what picosim calibrate writes); the scenario's own
// come after and win.
func TestNetworkInclude(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("lab-links.yaml", "# Link profile calibrated by `picosim calibrate`\nnetwork:\n  pairs:\n    - {from: pico1, to: pico2, loss: 9.8%, burst_length: 2.9, latency: 21ms, jitter: 6ms, distribution: normal}\n    - {from: pico2, to: pico1, loss: 1%, latency: 5ms}\n  boards:\n    pico3: {latency: 30ms}\n")
	scen := write("s.yaml", "name: x\ntopology:\n  boards: 3\n  network:\n    include: lab-links.yaml\n    pairs:\n      - {from: pico2, to: pico1, loss: 50%}\nsteps:\n  - expect: {eventually: 10s, members_agree: true}\n")
	s, err := Load(scen)
	if err != nil {
		t.Fatal(err)
	}
	n := s.Topology.Network
	if len(n.Pairs) != 3 || n.Pairs[0].From != "pico1" || n.Pairs[2].Loss != 0.5 || n.Boards["pico3"].Latency.D().Milliseconds() != 30 {
		t.Fatalf("merged: %+v", n)
	}
	if r := Run(s, Options{}); !r.Passed {
		t.Errorf("a scenario with a profile: %v", r.Failures)
	}

	for name, want := range map[string]string{
		"missing.yaml": "include missing.yaml",
		write("wide.yaml", "network: {loss: 10%}\n"):                                     "gives pairs, boards and radios",
		write("typo.yaml", "network:\n  piars: []\n"):                                    "piars",
		write("nested.yaml", "network: {include: other.yaml}\n"):                         "gives pairs, boards and radios",
		write("ghost.yaml", "network:\n  pairs: [{from: pico1, to: pico9, loss: 1%}]\n"): "pico9",
	} {
		src := "name: x\ntopology:\n  boards: 3\n  network:\n    include: " + filepath.Base(name) + "\n"
		if _, err := Parse(scen, []byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("include %s: %v, want %q", filepath.Base(name), err, want)
		}
	}
}
