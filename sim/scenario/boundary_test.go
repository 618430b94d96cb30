package scenario

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/sim/check"
	"go.uber.org/goleak"
)

// run parses and runs an inline scenario in the simulator.
func run(t *testing.T, yaml string) Result {
	t.Helper()
	s, err := Parse("inline.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return Run(s, Options{})
}

// A window of eventually or consistently starts after the instant its step
// begins: what happened at that instant (the very change that ended the
// previous eventually step) belongs to the step before.
func TestAWindowStartsAfterTheInstantItsStepBegins(t *testing.T) {
	r := run(t, `name: boundary
topology: {boards: 3, network: {radio: ideal}}
steps:
  - expect: {eventually: 10s, roles: {pico1: MASTER}}
  - expect: {consistently: 20s, no_role_change: true}
`)
	if !r.Passed {
		t.Fatalf("the role change that ended the eventually step counted in the next window: %q", r.Failures)
	}
	r = run(t, `name: boundary
topology: {boards: 3, network: {radio: ideal}}
steps:
  - expect: {eventually: 10s, roles: {pico1: MASTER}}
  - expect: {consistently: 20s, no_role_change: true}
  - power_off: pico1
  - expect: {consistently: 10s, no_role_change: true}
`)
	if r.Passed || !strings.Contains(strings.Join(r.Failures, "\n"), "role changes since") {
		t.Fatalf("a failover inside the window went unseen: passed %v, %q", r.Passed, r.Failures)
	}
}

// members_agree compares sets: after new-each-boot renumbering, the order
// boards were created in is not their address order.
func TestMembersAgreeAfterNewEachBootRenumbering(t *testing.T) {
	for _, seed := range []string{"1", "2", "3", "4", "5"} {
		r := run(t, `name: renumbered
seed: `+seed+`
topology: {boards: 4, network: {radio: ideal, addressing: new-each-boot}}
steps:
  - expect: {eventually: 10s, members_agree: true}
  - reboot: pico1
  - reboot: pico2
  - expect: {eventually: 15s, members_agree: true}
`)
		if !r.Passed {
			t.Fatalf("seed %s: %q", seed, r.Failures)
		}
	}
}

// A power_off at 0 s keeps the board off: its first boot, also due at 0 s,
// does not run after it.
func TestPowerOffAtZeroKeepsTheBoardOff(t *testing.T) {
	r := run(t, `name: off from the start
topology: {boards: 3, network: {radio: ideal}}
steps:
  - at: 0s
    power_off: pico3
  - expect: {eventually: 10s, members_agree: true}
  - wait: 10s
  - expect: {counter: {board: pico3, name: heartbeats_sent, at_most: 0}}
  - expect: {counter: {board: pico1, name: received, at_least: 5}}
  - power_on: pico3
  - expect: {eventually: 10s, members_agree: true}
  - expect: {counter: {board: pico3, name: heartbeats_sent, at_least: 1}}
`)
	if !r.Passed {
		t.Fatalf("%q", r.Failures)
	}
}

// Forty runs of a scenario with TCP leave no goroutine behind: each run's
// target closes its cluster, whose gVisor stacks are destroyed with their
// goroutines (before that fix: about 8 more after every run).
func TestFortyRunsLeaveNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	ignore := goleak.IgnoreCurrent()
	for i := range 40 {
		r := run(t, `name: forty
seed: `+strconv.Itoa(i+1)+`
topology: {boards: 3}
steps:
  - expect: {eventually: 15s, members_agree: true}
  - control:
      board: pico2
      commands:
        - send: {action: setup_pin, pin: 2, mode: output, value: 0}
        - send: {action: write_pin, pin: 2, value: 1, timeout: 1}
  - expect: {eventually: 2s, pin: {board: pico2, pin: 2, value: 0}}
`)
		if !r.Passed {
			t.Fatalf("run %d: %q", i+1, r.Failures)
		}
	}
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("goroutines left after 40 runs (%d before):\n%v", before, err)
	}
	t.Logf("goroutines: %d before 40 runs, %d after", before, runtime.NumGoroutine())
}

// An expectation about the cluster that fails while an unscripted radio
// outage touches its window is not judged, and the outage is named; one
// that fails with no outage near, or with the outage a step caused, fails.
func TestAnOutageInTheWindowIsNamedNotFailed(t *testing.T) {
	s, err := Load("../../scenarios/node-list.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(105) // pico1's radio drops at 8.327s, inside step 4's window
	r := Run(s, Options{Seed: &seed})
	if !r.Passed || !strings.Contains(r.NotJudged, "step 4 not judged: pico1 lost its WiFi association at 8.327s") {
		t.Fatalf("passed %v, not judged %q, failures %q", r.Passed, r.NotJudged, r.Failures)
	}

	// The registry answers HELLO only while it is on the air.
	s, err = Load("../../scenarios/hostile-keyed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seed = 160 // pico1, the registry, loses WiFi at 28.195s, before the hello step
	r = Run(s, Options{Seed: &seed})
	if !r.Passed || !strings.Contains(r.NotJudged, "pico1 lost its WiFi association at 28.195s") || !strings.Contains(r.NotJudged, "hello") {
		t.Fatalf("hello in an outage: passed %v, not judged %q, failures %q", r.Passed, r.NotJudged, r.Failures)
	}

	// A control step that gets no reply while its board's radio is out,
	// unscripted, is not judged; another board's outage excuses nothing.
	s, err = Load("../../scenarios/light-sleep-without-wake.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seed = 945 // pico3 loses WiFi at 6.525s, as the controller waits for its ping
	r = Run(s, Options{Seed: &seed})
	if !r.Passed || !strings.Contains(r.NotJudged, "step 3 not judged: pico3 lost its WiFi association at 6.525s") || !strings.Contains(r.NotJudged, "control pico3") {
		t.Fatalf("control in an outage: passed %v, not judged %q, failures %q", r.Passed, r.NotJudged, r.Failures)
	}
	r = run(t, `name: another board's outage
topology:
  boards: 3
  wifi_watchdog: false
  network: {radios: {pico3: {silent_every: 1s}, pico2: {wedge_every: 1s}}}
steps:
  - at: 20s
    control: {board: pico2, timeout: 2s, commands: [{send: {action: ping}}]}
`)
	if r.Passed || r.NotJudged != "" || !strings.Contains(strings.Join(r.Failures, "\n"), "control pico2") {
		t.Fatalf("pico3's outage excused pico2's silence: passed %v, not judged %q, failures %q", r.Passed, r.NotJudged, r.Failures)
	}

	// On a soft AP, powering the AP off takes every station off the air:
	// those losses are the step's doing, and the expectation fails.
	r = run(t, `name: scripted
topology: {boards: 3, network: {mode: softap}}
steps:
  - expect: {eventually: 15s, members_agree: true}
  - power_off: pico1
  - expect: {eventually: 5s, members_agree: true}
`)
	if r.Passed || r.NotJudged != "" || !strings.Contains(strings.Join(r.Failures, "\n"), "step 3") {
		t.Fatalf("a loss the scenario caused excused the step: passed %v, not judged %q, failures %q", r.Passed, r.NotJudged, r.Failures)
	}
}

func TestOutagesTouchTheWindowsTheyReach(t *testing.T) {
	s := time.Second
	o := check.Outage{Board: "pico3", Lost: 10 * s, Back: 12 * s}
	for _, c := range []struct {
		from, to time.Duration
		want     bool
	}{
		{0, 9 * s, false},       // before it
		{11 * s, 20 * s, true},  // during it
		{15 * s, 20 * s, true},  // within the bound after its end
		{17 * s, 20 * s, true},  // at the bound's end
		{18 * s, 20 * s, false}, // past it
	} {
		if got := o.Touches(c.from, c.to, 5*s); got != c.want {
			t.Errorf("%v touches [%v, %v]: %v", o, c.from, c.to, got)
		}
	}
	if !(check.Outage{Lost: 10 * s}).Touches(time.Hour, 2*time.Hour, 5*s) {
		t.Error("an outage that has not ended touches every later window")
	}
}
