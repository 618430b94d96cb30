package scenario

import (
	"os"
	"strings"
	"testing"

	"github.com/picosim/picosim/sim"
)

// runSource loads a scenario from its text and runs it on the simulator.
func runSource(t *testing.T, src string, opt Options) Result {
	t.Helper()
	s, err := Parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return Run(s, opt)
}

// failsWith checks that a run failed, and with a message that says why.
func failsWith(t *testing.T, what string, r Result, want string) {
	t.Helper()
	switch {
	case r.Passed:
		t.Errorf("%s: passed, want a failure saying %q", what, want)
	case !strings.Contains(strings.Join(r.Failures, "\n"), want):
		t.Errorf("%s: failed with %v, want %q", what, r.Failures, want)
	}
}

// Two controllers are two connections: with revert_on_loss, the laptop
// going away reverts only what it wrote. The bundled scenario passes; the
// same file with the phone's commands sent by the laptop fails, because
// the laptop's later connection ended the phone's.
func TestSecondController(t *testing.T) {
	b, err := os.ReadFile("../../scenarios/two-controllers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := runSource(t, string(b), Options{}); !r.Passed {
		t.Fatalf("two-controllers.yaml: %v", r.Failures)
	}
	one := strings.ReplaceAll(string(b), "controller: phone", "controller: laptop")
	failsWith(t, "one controller", runSource(t, one, Options{}), "pico2 GPIO3 is 0, not 1")
}

// A command's timeout bounds the wait for its reply, and retries send it
// again on a new connection.
func TestControlTimeoutAndRetries(t *testing.T) {
	src := func(control string) string {
		return "name: x\ntopology: {boards: 2, network: {radio: ideal, latency: 5ms}}\nsteps:\n" +
			"  - expect: {eventually: 10s, members_agree: true}\n" +
			"  - control: {board: pico2, " + control + ", commands: [{send: {action: ping}}]}\n"
	}
	if r := runSource(t, src("timeout: 50ms"), Options{}); !r.Passed {
		t.Errorf("a reply within 10 ms of a 50 ms timeout: %v", r.Failures)
	}
	failsWith(t, "a 1 ms timeout", runSource(t, src("timeout: 1ms"), Options{}), "no reply within 1ms")
	failsWith(t, "a 1 ms timeout, twice again", runSource(t, src("timeout: 1ms, retries: 2"), Options{}), "3 tries failed")

	// At 30% loss a 300 ms wait misses replies now and then: without
	// retries some seed fails, with them none does.
	lossy := func(retries string) string {
		s := "name: x\ntopology: {boards: 2, network: {radio: ideal, latency: 5ms, boards: {pico2: {loss: 30%}}}}\nsteps:\n" +
			"  - expect: {eventually: 20s, members_agree: true}\n" +
			"  - control: {board: pico2, timeout: 300ms, retries: " + retries + ", commands: ["
		for range 10 {
			s += "{send: {action: ping}}, "
		}
		return s + "]}\n"
	}
	failed := map[string]int{}
	for _, retries := range []string{"0", "8"} {
		for seed := range uint64(20) {
			seed := seed + 1
			if r := runSource(t, lossy(retries), Options{Seed: &seed}); !r.Passed && r.NotJudged == "" {
				failed[retries]++
				if retries != "0" {
					t.Errorf("retries %s, seed %d: %v", retries, seed, r.Failures)
				}
			}
		}
	}
	if failed["0"] == 0 {
		t.Errorf("no seed of 20 failed without retries at 30%% loss and a 300 ms timeout: the test shows nothing")
	}
}

// set_link from/to changes one direction of one pair at run time; both_ways
// the two; with no impairment it puts the pair back on the receiver's link.
func TestSetLinkOfAPair(t *testing.T) {
	src := func(link string) string {
		return "name: x\ntopology: {boards: 3, network: {radio: ideal}}\nsteps:\n" +
			"  - expect: {eventually: 10s, members_agree: true}\n" +
			"  - set_link: {" + link + "}\n" +
			"  - wait: 5s\n" +
			"  - expect: {counter: {board: pico2, name: lost, at_least: 3}}\n" +
			"  - expect: {counter: {board: pico1, name: lost, at_least: 3}}\n"
	}
	failsWith(t, "one way", runSource(t, src("from: pico1, to: pico2, loss: 100%"), Options{}), "pico1 lost is 0")
	if r := runSource(t, src("from: pico1, to: pico2, both_ways: true, loss: 100%"), Options{}); !r.Passed {
		t.Errorf("both ways: %v", r.Failures)
	}
	mended := "name: x\ntopology: {boards: 2, network: {radio: ideal}}\nsteps:\n" +
		"  - expect: {eventually: 10s, members_agree: true}\n" +
		"  - set_link: {from: pico1, to: pico2, loss: 100%}\n" +
		"  - set_link: {from: pico1, to: pico2}\n" +
		"  - wait: 5s\n" +
		"  - expect: {counter: {board: pico2, name: lost, at_most: 0}}\n"
	if r := runSource(t, mended, Options{}); !r.Passed {
		t.Errorf("a pair set back: %v", r.Failures)
	}
	for link, want := range map[string]string{
		"board: pico1, from: pico1, to: pico2": "a board, or from and to, not both",
		"from: pico1":                          "needs a board",
		"from: pico1, to: pico1":               "the same board",
		"board: pico1, both_ways: true":        "both_ways goes with from and to",
		"from: pico1, to: pico9":               "pico9",
	} {
		if _, err := Parse("f.yaml", []byte(src(link))); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("set_link {%s}: %v, want %q", link, err, want)
		}
	}
}

// master_was and same_roles compare with the roles when an earlier step
// began.
func TestRolesAsAtAnEarlierStep(t *testing.T) {
	src := func(expect string) string {
		return "name: x\ntopology: {boards: 3, network: {radio: ideal}}\nsteps:\n" +
			"  - expect: {eventually: 10s, members_agree: true}\n" +
			"  - at: 12s\n    power_off: pico1\n" +
			"  - expect: {eventually: 10s, members_agree: true, " + expect + "}\n"
	}
	failsWith(t, "the old master", runSource(t, src("master_was: MASTER, at_step: 2"), Options{}), "the master is pico2, not pico1 (MASTER when step 2 began)")
	failsWith(t, "the same roles", runSource(t, src("same_roles: true, at_step: 2"), Options{}), "not MASTER as when step 2 began")
	failsWith(t, "no board was WORKER5", runSource(t, src("master_was: WORKER5, at_step: 2"), Options{}), "no board was WORKER5")
	back := "name: x\ntopology: {boards: 3, network: {radio: ideal}}\nsteps:\n" +
		"  - expect: {eventually: 10s, members_agree: true}\n" +
		"  - at: 12s\n    power_off: pico1\n" +
		"  - expect: {eventually: 10s, members_agree: true}\n" +
		"  - power_on: pico1\n" +
		"  - expect: {eventually: 10s, members_agree: true, master_was: MASTER, same_roles: true, at_step: 2}\n"
	if r := runSource(t, back, Options{}); !r.Passed {
		t.Errorf("the old master back: %v", r.Failures)
	}
	for expect, want := range map[string]string{
		"master_was: MASTER":              "need at_step",
		"same_roles: true, at_step: 4":    "at_step 4",
		"at_step: 1":                      "at_step goes with master_was or same_roles",
		"master_was: BOSS, at_step: 1":    "a role, MASTER or WORKERn",
		"master_was: WORKER0, at_step: 1": "a role",
		"same_roles: true, at_step: -1":   "at_step -1",
		"same_roles: 1, at_step: 1":       "same_roles",
	} {
		if _, err := Parse("f.yaml", []byte(src(expect))); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("expect {%s}: %v, want %q", expect, err, want)
		}
	}
}

// hello none: no FULL may come; unsigned: the desktop has no key.
func TestHelloNone(t *testing.T) {
	plain := "name: x\ntopology: {boards: 2, network: {radio: ideal}}\nsteps:\n" +
		"  - expect: {eventually: 10s, members_agree: true}\n" +
		"  - hello: {none: true}\n"
	failsWith(t, "a registry that answers", runSource(t, plain, Options{}), "want none within 2s")
	cut := "name: x\ntopology: {boards: 2, network: {radio: ideal}}\nsteps:\n" +
		"  - power_off: pico1\n  - power_off: pico2\n" +
		"  - hello: {none: true}\n"
	if r := runSource(t, cut, Options{}); !r.Passed {
		t.Errorf("no board up: %v", r.Failures)
	}
	keyed := "name: x\ntopology: {boards: 2, network: {radio: ideal, key: 6b657965642d636c75737465722d64656d6f2d6b6579}}\nsteps:\n" +
		"  - expect: {eventually: 10s, members_agree: true}\n" +
		"  - hello: {unsigned: true}\n"
	failsWith(t, "an unsigned HELLO on a keyed network", runSource(t, keyed, Options{}), "no FULL")
	if _, err := Parse("f.yaml", []byte(plain+"  - hello: {none: true, members: 2}\n")); err == nil || !strings.Contains(err.Error(), "hello: none") {
		t.Errorf("none with members: %v", err)
	}
}

// A board with off: true never boots until a power_on step.
func TestBoardThatStartsOff(t *testing.T) {
	src := "name: x\ntopology:\n  boards: [{name: a}, {name: b}, {name: c, off: true}]\n  network: {radio: ideal}\nsteps:\n" +
		"  - expect: {eventually: 10s, members_agree: true}\n" +
		"  - hello: {names: [a, b]}\n" +
		"  - at: 20s\n    power_on: c\n" +
		"  - expect: {eventually: 10s, members_agree: true}\n" +
		"  - hello: {names: [a, b, c]}\n"
	var firstOn = map[string]float64{}
	r := runSource(t, src, Options{OnEvent: func(e sim.Event) {
		if _, ok := firstOn[e.Board]; !ok && e.Kind == sim.EvPowerOn {
			firstOn[e.Board] = e.At.Seconds()
		}
	}})
	if !r.Passed {
		t.Fatal(r.Failures)
	}
	if firstOn["c"] != 20 || firstOn["a"] != 0 {
		t.Errorf("first power-on: %v, want c at 20s and a at 0s", firstOn)
	}
}

// app_rate on one board counts that board's app only.
func TestAppRateOfOneBoard(t *testing.T) {
	src := func(board string) string {
		return "name: x\ntopology: {boards: 3, network: {radio: ideal}}\nsteps:\n" +
			"  - expect: {eventually: 10s, members_agree: true}\n" +
			"  - app: {board: pico1, start: echo-server}\n" +
			"  - app: {board: pico2, start: echo-client, server: pico1}\n" +
			"  - wait: 10s\n" +
			"  - expect: {app_rate: {app: echo-client, board: " + board + ", at_least: 90%}}\n"
	}
	if r := runSource(t, src("pico2"), Options{}); !r.Passed {
		t.Errorf("on the board that runs it: %v", r.Failures)
	}
	failsWith(t, "on a board that does not run it", runSource(t, src("pico3"), Options{}), "echo-client on pico3 made no attempt")
	if _, err := Parse("f.yaml", []byte(src("pico9"))); err == nil || !strings.Contains(err.Error(), "pico9") {
		t.Errorf("an unknown board: %v", err)
	}
}

// A controller's name is a host's: not a board's, not the harness's own.
func TestControllerNames(t *testing.T) {
	src := func(name string) string {
		return "name: x\ntopology: {boards: 2}\nsteps:\n" +
			"  - control: {board: pico1, controller: " + name + ", commands: [{send: {action: ping}}]}\n"
	}
	for name, want := range map[string]string{
		"pico2":                             "taken by a board",
		"rogue":                             "taken by a board or by",
		"'a b'":                             "letters, digits and -",
		"phone-2":                           "",
		"laptop":                            "",
		"intruder":                          "taken",
		"forward":                           "taken",
		"desktop":                           "taken",
		"x23456789012345678901234567890123": "up to 32",
	} {
		_, err := Parse("f.yaml", []byte(src(name)))
		switch {
		case want == "" && err != nil:
			t.Errorf("controller %s: %v", name, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("controller %s: %v, want %q", name, err, want)
		}
	}
}
