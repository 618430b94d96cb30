package scenario

import (
	"strings"
	"testing"

	"github.com/picosim/picosim/netsim"
)

func TestErrorsNameTheirPlaceAndSuggestTheFieldMeant(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"misspelt field", "name: x\ntopology:\n  boards: 3\n  network:\n    latncy: 20ms\n",
			[]string{`f.yaml:5:5: unknown field "latncy": did you mean "latency"?`}},
		{"field in the wrong place", "name: x\ntopology:\n  boards: 3\nnetwork:\n  loss: 10%\n",
			[]string{`f.yaml:4:1: unknown field "network" here: it belongs under topology`}},
		{"field from nowhere", "name: x\ntopology:\n  boards: 3\nsteps:\n  - explode: now\n",
			[]string{`f.yaml:5:5: unknown field "explode"`}},
		{"bad duration", "name: x\ntopology:\n  boards: 2\nsteps:\n  - wait: soon\n",
			[]string{`f.yaml:5:11: "soon" is not a duration`}},
		{"bad rate", "name: x\ntopology:\n  boards: 2\n  network:\n    loss: 120%\n",
			[]string{`f.yaml:5:11: "120%" is not a rate`}},
		{"semantics", "name: x\ntopology:\n  boards: 3\nsteps:\n  - at: 5s\n    power_off: pico7\n  - at: 2s\n    heal: true\n  - partition: [[pico1, pico2], [pico2]]\n",
			[]string{`f.yaml:6:16: no board "pico7": boards are pico1 to pico3`,
				`f.yaml:7:9: step 2: at 2s comes before the previous step's 5s`,
				`step 3: pico2 is in two groups`}},
		{"two actions", "name: x\ntopology:\n  boards: 2\nsteps:\n  - power_on: pico1\n    heal: true\n",
			[]string{"step 1: needs exactly one action", "has 2"}},
		{"no boards", "name: x\n", []string{"boards: 0: need 1 to 250"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(c.src))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestDurationsAndRatesInTheirUsualForms(t *testing.T) {
	s, err := Parse("f.yaml", []byte("name: x\ntopology:\n  boards: 2\n  heartbeat: 1.5s\n  network: {loss: 10%, latency: 200ms}\nsteps:\n  - set_link: {board: pico2, loss: 0.25}\n"))
	if err != nil {
		t.Fatal(err)
	}
	n := s.Topology.Network
	if s.Topology.Heartbeat.String() != "1.5s" || n.Loss != 0.1 || n.Latency.String() != "200ms" || s.Steps[0].SetLink.Loss != 0.25 {
		t.Fatalf("%+v", s.Topology)
	}
	if s.Timeout.String() != "10m0s" || n.Radio != netsim.PicoWRadio {
		t.Fatalf("defaults: timeout %v, radio %v", s.Timeout, n.Radio)
	}
	// The words of the LAN's settings are netsim's own, parsed once.
	s, err = Parse("g.yaml", []byte("name: x\ntopology:\n  boards: 2\n  network: {radio: ideal, addressing: new-each-boot, distribution: normal, jitter: 5ms}\n"))
	if n := s.Topology.Network; err != nil || n.Radio != netsim.IdealRadio || n.Addressing != netsim.NewEachBoot || n.Distribution != netsim.Normal {
		t.Fatalf("%v %+v", err, s.Topology.Network)
	}
	for _, bad := range []string{"radio: pcow", "addressing: new-eachboot", "distribution: gauss"} {
		_, err := Parse("h.yaml", []byte("name: x\ntopology:\n  boards: 2\n  network: {"+bad+"}\n"))
		if err == nil || !strings.Contains(err.Error(), " or ") {
			t.Errorf("%s: %v, want an error that lists the words", bad, err)
		}
	}
}

func TestCommandsKeepActionFirst(t *testing.T) {
	got := commandJSON(map[string]any{"value": 1, "action": "write_pin", "pin": 2, "timeout": 5})
	if got != `{"action": "write_pin", "pin": 2, "timeout": 5, "value": 1}` {
		t.Fatal(got)
	}
}

func TestBoardsAsACountWithAPatternOrAsAList(t *testing.T) {
	s, err := Parse("f.yaml", []byte("name: x\ntopology:\n  boards: 3\n  name_pattern: node-%d\nsteps:\n  - power_off: node-2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.BoardNames(); len(got) != 3 || got[0] != "node-1" || got[2] != "node-3" {
		t.Fatal(got)
	}
	s, err = Parse("f.yaml", []byte("name: x\ntopology:\n  boards:\n    - name: ap\n    - name: relay\n      pins: {2: output-high, 5: input}\nsteps:\n  - expect: {eventually: 10s, members_agree: true, pin: {board: relay, pin: 2, value: 1}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := Run(s, Options{}); !r.Passed {
		t.Fatalf("%v", r.Failures)
	}
	_, err = Parse("f.yaml", []byte("name: x\ntopology:\n  boards:\n    - name: ap\n    - name: ap\n      pins: {40: output}\nsteps:\n  - power_off: pico1\n"))
	for _, want := range []string{"board 2: needs a name of its own", "GPIO40", `no board "pico1": boards are ap to ap`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// A file with five mistakes gets five errors in one go, in file order,
// each at its place and naming the key (issue 16: fixing one file took six
// runs, one error at a time, out of order).
func TestEveryMistakeOfAFileAtOnceInOrder(t *testing.T) {
	src := "name: x\ntopology:\n  boards: 3\n  netwrk: {}\nsteps:\n  - wait: soon\n  - expect:\n      eventually: 10s\n      membrs_agree: true\n      one_master: yes\n  - power_of: pico1\n"
	_, err := Parse("f.yaml", []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		`f.yaml:4:3: unknown field "netwrk": did you mean "network"?`,
		`f.yaml:6:11: "soon" is not a duration`,
		`f.yaml:9:7: unknown field "membrs_agree": did you mean "members_agree"?`,
		`f.yaml:10:19: one_master: want true or false, not "yes"`,
		`f.yaml:11:5: unknown field "power_of": did you mean "power_off"?`,
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d: %q, want %q", i+1, got[i], want[i])
		}
	}
}

// no_membership_change holds while nobody joins or leaves, and fails when
// a board falls silent (issue 16: "no membership change" could not be
// written).
func TestNoMembershipChange(t *testing.T) {
	run := func(silence bool) Result {
		src := "name: x\ntopology: {boards: 3, network: {radio: ideal}}\nsteps:\n  - expect: {eventually: 10s, members_agree: true}\n"
		if silence {
			src += "  - set_link: {board: pico3, loss: 100%}\n"
		}
		src += "  - expect: {consistently: 10s, no_membership_change: true}\n"
		s, err := Parse("f.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return Run(s, Options{})
	}
	if r := run(false); !r.Passed {
		t.Fatalf("a quiet cluster: %v", r.Failures)
	}
	if r := run(true); r.Passed || !strings.Contains(strings.Join(r.Failures, "\n"), "membership") {
		t.Fatalf("pico3 fell silent, yet: passed %v, %v", r.Passed, r.Failures)
	}
}

// hello: names checks the boards FULL lists, not only how many.
func TestHelloNames(t *testing.T) {
	run := func(names string) Result {
		s, err := Parse("f.yaml", []byte("name: x\ntopology: {boards: 3, network: {radio: ideal}}\nsteps:\n  - expect: {eventually: 10s, members_agree: true}\n  - hello: {names: "+names+"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		return Run(s, Options{})
	}
	if r := run("[pico3, pico1, pico2]"); !r.Passed {
		t.Fatalf("%v", r.Failures)
	}
	if r := run("[pico1, pico2]"); r.Passed || !strings.Contains(strings.Join(r.Failures, " "), "lists [pico1 pico2 pico3], want [pico1 pico2]") {
		t.Fatalf("passed %v %v", r.Passed, r.Failures)
	}
	if _, err := Parse("f.yaml", []byte("name: x\ntopology: {boards: 3}\nsteps:\n  - hello: {names: [pico9]}\n")); err == nil || !strings.Contains(err.Error(), "pico9") {
		t.Fatalf("an unknown board in names: %v", err)
	}
}

// since_step starts a no_role_change window at an earlier step: a role
// change between that step and this one fails it.
func TestSinceStep(t *testing.T) {
	src := func(since string) string {
		return "name: x\ntopology: {boards: 3, network: {radio: ideal}}\nsteps:\n" +
			"  - expect: {eventually: 10s, members_agree: true}\n" +
			"  - at: 12s\n    power_off: pico1\n" +
			"  - expect: {eventually: 10s, members_agree: true}\n" +
			"  - expect: {consistently: 5s, no_role_change: true" + since + "}\n"
	}
	for _, c := range []struct {
		since string
		pass  bool
	}{{"", true}, {", since_step: 4", true}, {", since_step: 2", false}} {
		s, err := Parse("f.yaml", []byte(src(c.since)))
		if err != nil {
			t.Fatal(err)
		}
		if r := Run(s, Options{}); r.Passed != c.pass {
			t.Errorf("since %q: passed %v, want %v: %v", c.since, r.Passed, c.pass, r.Failures)
		}
	}
	if _, err := Parse("f.yaml", []byte(src(", since_step: 5"))); err == nil || !strings.Contains(err.Error(), "since_step 5") {
		t.Errorf("a later step: %v", err)
	}
}

// not_reverted fails once the fail-safe reverted the pin.
func TestNotReverted(t *testing.T) {
	src := func(timeout string) string {
		return "name: x\ntopology: {boards: 2, network: {radio: ideal}}\nsteps:\n" +
			"  - expect: {eventually: 10s, members_agree: true}\n" +
			"  - control: {board: pico2, commands: [{send: {action: setup_pin, pin: 2, mode: output, value: 0}}, {send: {action: write_pin, pin: 2, value: 1, timeout: " + timeout + "}}]}\n" +
			"  - wait: 3s\n" +
			"  - expect: {not_reverted: {board: pico2, pin: 2}}\n"
	}
	for timeout, pass := range map[string]bool{"10": true, "1": false} {
		s, err := Parse("f.yaml", []byte(src(timeout)))
		if err != nil {
			t.Fatal(err)
		}
		if r := Run(s, Options{}); r.Passed != pass {
			t.Errorf("timeout %s: passed %v, want %v: %v", timeout, r.Passed, pass, r.Failures)
		}
	}
}

// A misspelt fixed word gets "did you mean", as a misspelt key does: in
// the words netsim parses (radio, addressing) and in those the checks hold
// (mode, apps, counters, forge types, roles, boards).
func TestTyposOfWordsGetSuggestions(t *testing.T) {
	for src, want := range map[string]string{
		"name: x\ntopology: {boards: 2, network: {radio: pciow}}\n":                                  "did you mean picow?",
		"name: x\ntopology: {boards: 2, network: {addressing: stiky}}\n":                             "did you mean sticky?",
		"name: x\ntopology: {boards: 2, network: {mode: sofap}}\n":                                   "did you mean softap?",
		"name: x\ntopology: {boards: 2}\nsteps: [{app: {board: pico1, start: echo-servr}}]\n":        "did you mean echo-server?",
		"name: x\ntopology: {boards: 2}\nsteps: [{forge: {type: heartbeet}}]\n":                      "did you mean heartbeat?",
		"name: x\ntopology: {boards: 2}\nsteps: [{expect: {counter: {board: pico1, name: lsot}}}]\n": "did you mean lost?",
		"name: x\ntopology: {boards: 2}\nsteps: [{expect: {master_was: WORKR1, at_step: 1}}]\n":      "did you mean WORKER1?",
		"name: x\ntopology: {boards: 2}\nsteps: [{power_off: pcio2}]\n":                              "did you mean pico2?",
	} {
		_, err := Parse("f.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}
