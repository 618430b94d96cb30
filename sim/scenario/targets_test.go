package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim/targets"
)

// noLinks is the simulator, except that it cannot impair links: as real
// boards cannot.
type noLinks struct{ *targets.Sim }

func (noLinks) Kind() string { return "hw" }
func (noLinks) SetLink(string, netsim.Link) error {
	return &targets.Unsupported{Target: "hw", Action: "set_link", Why: "real WiFi cannot be impaired"}
}

func TestAStepATargetCannotDoIsSkippedWithItsReasonNotPassedSilently(t *testing.T) {
	s, err := Parse("f.yaml", []byte(`name: x
targets: [sim, hw]
topology:
  boards: 2
  network: {radio: ideal}
steps:
  - set_link: {board: pico2, loss: 50%}
  - expect: {eventually: 10s, members_agree: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	open := func(spec targets.Spec) (targets.Target, error) {
		sim, err := targets.NewSim(spec)
		return noLinks{sim}, err
	}
	r := Run(s, Options{Target: "hw", Open: open, Inventory: "racks/lab-2.yaml"})
	if !r.Passed || len(r.SkippedSteps) != 1 || !strings.Contains(r.SkippedSteps[0], "step 1 (set_link): real WiFi cannot be impaired") {
		t.Fatalf("passed %v, skipped steps %q, failures %q", r.Passed, r.SkippedSteps, r.Failures)
	}
	if !strings.Contains(r.Replay, "picosim run --target hw --inventory racks/lab-2.yaml --seed 0 f.yaml") {
		t.Fatalf("replay %q does not name the target", r.Replay)
	}
	if r := Run(s, Options{Target: "emulated"}); r.Skipped == "" || !strings.Contains(r.Skipped, "runs on sim, hw only") {
		t.Fatalf("a target the scenario does not name: skipped %q", r.Skipped)
	}
}

func TestTargetsTakeAListOrTimingsAndRefuseUnknownOnes(t *testing.T) {
	s, err := Parse("f.yaml", []byte("name: x\ntargets: {sim: {}, emulated: {heartbeat: 250ms, miss_limit: 4}}\ntopology:\n  boards: 2\n  heartbeat: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if spec := s.Spec("emulated", 1); spec.Heartbeat.String() != "250ms" || spec.MissLimit != 4 {
		t.Fatalf("emulated spec: heartbeat %v, miss limit %d", spec.Heartbeat, spec.MissLimit)
	}
	if spec := s.Spec("sim", 1); spec.Heartbeat.String() != "2s" {
		t.Fatalf("sim spec: heartbeat %v", spec.Heartbeat)
	}
	if _, err := Parse("f.yaml", []byte("name: x\ntargets: {emulated: {heartbeet: 1s}}\ntopology:\n  boards: 2\n")); err == nil || !strings.Contains(err.Error(), "heartbeet") {
		t.Fatalf("a misspelt timing: %v", err)
	}
	if d, err := Parse("f.yaml", []byte("name: x\ntopology:\n  boards: 2\n")); err != nil || d.Unsupported("sim") != "" || d.Unsupported("hw") == "" {
		t.Fatalf("no targets: sim only (%v)", err)
	}
}

func TestMinDurationAddsWaitsWindowsAndStepTimes(t *testing.T) {
	s, err := Parse("f.yaml", []byte("name: x\ntopology:\n  boards: 2\nsteps:\n  - wait: 5s\n  - expect: {consistently: 20s, one_master: true}\n  - at: 40s\n    power_off: pico1\n  - after: 2s\n    wait: 1m\n  - expect: {eventually: 10s, one_master: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.MinDuration(); got != 40*time.Second+2*time.Second+time.Minute {
		t.Fatalf("MinDuration = %v", got)
	}
}
