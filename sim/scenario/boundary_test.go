package scenario

import (
	"strings"
	"testing"
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
