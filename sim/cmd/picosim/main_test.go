package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

func picosim(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

type summary struct {
	Summary struct {
		Nodes        int      `json:"nodes"`
		Seed         uint64   `json:"seed"`
		MasterBefore string   `json:"master_before"`
		MasterAfter  string   `json:"master_after"`
		FailoverS    *float64 `json:"failover_s"`
		BoundS       float64  `json:"failover_bound_s"`
		Agreement    bool     `json:"agreement"`
		SimS         float64  `json:"sim_s"`
		WallS        *float64 `json:"wall_s"`
		Failures     []string `json:"failures"`
	} `json:"summary"`
}

// The command of the "done when".
var failoverArgs = []string{"cluster", "--nodes", "5", "--kill-master-at", "10s", "--duration", "40s", "--seed", "7", "--json"}

func TestClusterJSONFailover(t *testing.T) {
	code, out, errOut := picosim(t, failoverArgs...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("last line is not the summary: %v\n%s", err, lines[len(lines)-1])
	}
	got := s.Summary
	if got.Nodes != 5 || got.Seed != 7 || !got.Agreement || got.MasterBefore != "pico1" || got.MasterAfter != "pico2" {
		t.Fatalf("summary %+v", got)
	}
	if got.FailoverS == nil || *got.FailoverS <= 0 || *got.FailoverS > got.BoundS || got.BoundS != 5 {
		t.Fatalf("failover %v, bound %v", got.FailoverS, got.BoundS)
	}
	if got.SimS != 40 || got.WallS == nil {
		t.Fatalf("sim_s %v wall_s %v", got.SimS, got.WallS)
	}
	for _, l := range lines[:len(lines)-1] {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev["t"] == nil || ev["event"] == nil {
			t.Fatalf("event line %q: %v", l, err)
		}
	}
}

func TestClusterSaysWhenTheKillCameBeforeTheBoardsWereReady(t *testing.T) {
	code, out, _ := picosim(t, "cluster", "--nodes", "3", "--kill-master-at", "3s", "--duration", "10s")
	if code != 1 || !strings.Contains(out, "join WiFi up to 4s after boot, then settle for 2s") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if code, out, _ = picosim(t, "cluster", "--nodes", "3", "--kill-master-at", "3s", "--duration", "10s", "--radio", "ideal"); code != 0 {
		t.Fatalf("with an ideal radio the boards are ready at 2 s: exit %d\n%s", code, out)
	}
}

func TestClusterReplaysEventForEvent(t *testing.T) {
	events := func(seed string) string {
		args := append([]string{}, failoverArgs...)
		args[len(args)-2] = seed
		args = append(args, "--loss", "0.1", "--latency", "20ms", "--jitter", "5ms")
		_, out, _ := picosim(t, args...)
		return out[:strings.LastIndex(strings.TrimSpace(out), "\n")]
	}
	a, b := events("7"), events("7")
	if a != b {
		t.Fatal("the same seed printed different events")
	}
	if events("8") == a {
		t.Fatal("seeds 7 and 8 printed the same events")
	}
}

func TestClusterTimelineAndVerdict(t *testing.T) {
	code, out, _ := picosim(t, "cluster", "--nodes", "3", "--kill-master-at", "10s", "--duration", "20s")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"pico1    powers on at 192.168.1.2 (incarnation 1)", "pico2    wifi_joined", "pico2    is WORKER1 (was JOINING)", "pico1    powers off", "pico2    is MASTER (was WORKER1)", "PASS: agreement ok, liveness ok, safety ok", "master pico1 killed at 10.000s; survivors agreed on pico2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestClusterFailsWhenTheRunEndsBeforeFailover(t *testing.T) {
	code, out, _ := picosim(t, "cluster", "--nodes", "3", "--kill-master-at", "10s", "--duration", "11s")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "FAIL: ") || !strings.Contains(out, "replay: picosim cluster --nodes 3 --kill-master-at 10s --duration 11s --seed 1") {
		t.Fatalf("no failure report with a replay command:\n%s", out)
	}
}

func TestBadFlagsExit2NamingTheFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "--loss", "1.5"}, "--loss"},
		{[]string{"cluster", "--nodes", "0"}, "--nodes"},
		{[]string{"cluster", "--nodes", "five"}, "-nodes"},
		{[]string{"cluster", "--latency", "fast"}, "-latency"},
		{[]string{"cluster", "--kill-master-at", "40s", "--duration", "30s"}, "--kill-master-at"},
		{[]string{"cluster", "--heartbeat", "0s"}, "--heartbeat"},
		{[]string{"cluster", "--bogus"}, "bogus"},
		{[]string{"cluster", "extra"}, "extra"},
		{[]string{"frobnicate"}, "frobnicate"},
		{[]string{"bench", "--sizes", "10,x"}, "--sizes"},
		{[]string{"bench", "--sizes", "10", "100"}, `picosim bench: unexpected argument "100"`},
		{[]string{"up", "nodes", "3"}, `picosim up: unexpected argument "nodes"`},
		{[]string{"lab", "pico1"}, `picosim lab: unexpected argument "pico1"`},
		{[]string{"sweep", "--seeds", "1-10", "7"}, `picosim sweep: unexpected argument "7"`},
	} {
		code, _, errOut := picosim(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", c.args, code, errOut, c.want)
		}
	}
}

func TestHelpShowsExamples(t *testing.T) {
	code, _, errOut := picosim(t, "help", "cluster")
	if code != 0 || !strings.Contains(errOut, "Examples:") || !strings.Contains(errOut, "--kill-master-at") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
}

// On a board's soft AP, the master is the AP, and its death takes the whole
// network down: nobody can agree on a new master (shared/seeds/000: "If
// MASTER fails though .. all collapse!"). The verdict says so: no board is
// up to agree, and liveness is not judged, each survivor having lost its
// association with the AP.
func TestSoftAPClusterCollapsesWithItsAP(t *testing.T) {
	code, out, _ := picosim(t, "cluster", "--nodes", "3", "--softap", "--kill-master-at", "20s", "--duration", "40s")
	if code != 1 || !strings.Contains(out, "pico2    wifi_lost") || !strings.Contains(out, "agreement: no board is up") ||
		!strings.Contains(out, "liveness not judged at 25.000s: pico") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if code, _, errOut := picosim(t, "cluster", "--nodes", "10", "--softap"); code != 2 || !strings.Contains(errOut, "--softap") {
		t.Fatalf("ten boards on a soft AP: exit %d %s", code, errOut)
	}
	if code, _, errOut := picosim(t, "cluster", "--addressing", "dynamic"); code != 2 || !strings.Contains(errOut, `--addressing "dynamic": addressing "dynamic": sticky or new-each-boot`) {
		t.Fatalf("exit %d %s", code, errOut)
	}
}

func TestValidateAndRun(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	os.WriteFile(bad, []byte("name: bad\ntopology:\n  boards: 3\n  network:\n    latncy: 20ms\n"), 0o644)
	code, _, errOut := picosim(t, "validate", bad)
	if code != 2 || !strings.Contains(errOut, bad+`:5:5: unknown field "latncy": did you mean "latency"?`) {
		t.Fatalf("validate: exit %d\n%s", code, errOut)
	}
	if code, _, _ := picosim(t, "run", bad); code != 2 {
		t.Fatalf("run on an invalid file: exit %d, want 2", code)
	}
	// A scenario made to fail prints a replay command that fails the same way.
	failing := dir + "/failing.yaml"
	os.WriteFile(failing, []byte("name: wrong master\nseed: 3\ntopology:\n  boards: 3\nsteps:\n  - expect: {eventually: 10s, master_is: pico2}\n"), 0o644)
	code, out, _ := picosim(t, "run", failing)
	if code != 1 || !strings.Contains(out, "replay: picosim run --seed 3 "+failing) || !strings.Contains(out, "0 passed, 1 failed") {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	first := out[strings.Index(out, "step 1"):strings.Index(out, "last events")]
	_, again, _ := picosim(t, "run", "--seed", "3", failing)
	if !strings.Contains(again, first) {
		t.Fatalf("the replay failed differently:\n%s\nthen\n%s", out, again)
	}
	good := dir + "/good.yaml"
	os.WriteFile(good, []byte("name: good\nseed: 1\ntopology:\n  boards: 2\nsteps:\n  - expect: {eventually: 10s, master_is: pico1}\n"), 0o644)
	code, out, _ = picosim(t, "run", "--json", good)
	var r struct {
		Scenario string
		Passed   bool
		Seed     uint64
	}
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || !r.Passed || r.Scenario != "good" {
		t.Fatalf("run --json: exit %d %s", code, out)
	}
}

func TestRepeatUntilFailAndJUnit(t *testing.T) {
	dir := t.TempDir()
	flaky := dir + "/flaky.yaml"
	// At 40% loss, three seconds are too short for some seeds, not all.
	os.WriteFile(flaky, []byte("name: flaky\nseed: 1\ntopology:\n  boards: 3\n  network: {radio: ideal, loss: 40%}\nsteps:\n  - expect: {eventually: 2600ms, members_agree: true}\n"), 0o644)
	code, out, _ := picosim(t, "run", "--repeat", "50", "--until-fail", "--junit", dir+"/r.xml", flaky)
	if code != 1 || !strings.Contains(out, "failed with seed ") || !strings.Contains(out, "1 failed") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	xml, err := os.ReadFile(dir + "/r.xml")
	if err != nil || !strings.Contains(string(xml), `failures="1"`) || !strings.Contains(string(xml), "replay: picosim run --seed ") ||
		!strings.Contains(string(xml), `errors="0"`) || !strings.Contains(string(xml), `<failure message="`) ||
		strings.Contains(string(xml), `message="replay:`) || !regexp.MustCompile(`<testsuite [^>]*time="[0-9.]+"`).Match(xml) {
		t.Fatalf("junit (want errors, time, and a message saying what failed): %v\n%s", err, xml)
	}
	if code, _, _ := picosim(t, "run", "--repeat", "0", flaky); code != 2 {
		t.Fatalf("--repeat 0: exit %d", code)
	}
}
