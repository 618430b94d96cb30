package main

import (
	"strings"
	"testing"
)

// The command line as a new user meets it (issue 16): help never loops,
// flags may follow the arguments, a typo gets one line naming what was
// meant, a duration without a unit says it wants one.
func TestHelpOfEveryKindEnds(t *testing.T) {
	for _, args := range [][]string{{"help", "help"}, {"-h", "-h"}, {"--help", "--help"}, {"help"}, {"help", "--help"}} {
		code, out, _ := picosim(t, args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("picosim %v: exit %d\n%s", args, code, out)
		}
	}
	code, out, errOut := picosim(t, "help", "schema")
	if code != 0 || out != "" || !strings.Contains(errOut, "Usage: picosim schema") {
		t.Errorf("help schema: exit %d, stdout %d bytes (the schema itself?), stderr %q", code, len(out), errOut)
	}
	if code, _, errOut := picosim(t, "help", "clustr"); code != 2 || !strings.Contains(errOut, `did you mean "cluster"`) {
		t.Errorf("help clustr: exit %d %q", code, errOut)
	}
}

func TestFlagsMayFollowTheArguments(t *testing.T) {
	code, out, errOut := picosim(t, "run", "../../../scenarios/write-pin-reverts.yaml", "--seed", "7", "--json")
	if code != 0 || !strings.Contains(out, `"seed":7`) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	// "--" still ends the flags.
	if code, _, errOut := picosim(t, "validate", "--", "--seed"); code != 2 || !strings.Contains(errOut, "--seed") {
		t.Fatalf("validate -- --seed: exit %d %q", code, errOut)
	}
}

func TestABadFlagGetsOneLineThatSaysWhatToDo(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "--nodse", "3"}, "unknown flag --nodse; did you mean --nodes?"},
		{[]string{"sweep", "--seeds", "1-3", "--kil-master-at", "1s"}, "did you mean --kill-master-at?"},
		{[]string{"cluster", "--duration", "10"}, `--duration "10": a duration wants a unit, as in 10s`},
		{[]string{"cluster", "--loss", "lots"}, `--loss "lots": parse error: probability`},
		{[]string{"run", "--zzz", "x.yaml"}, "unknown flag --zzz ("},
	} {
		code, out, errOut := picosim(t, c.args...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("picosim %v: exit %d, stderr %q; want one line with %q", c.args, code, errOut, c.want)
		}
	}
	if code, _, errOut := picosim(t, "clustr"); code != 2 || !strings.Contains(errOut, `unknown command "clustr"; did you mean "cluster"?`) {
		t.Errorf("clustr: exit %d %q", code, errOut)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if code, out, _ := picosim(t, args...); code != 0 || !strings.HasPrefix(out, "picosim ") || !strings.Contains(out, "go1.") {
			t.Errorf("%v: exit %d %q", args, code, out)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if code, out, _ := picosim(t, "completion", shell); code != 0 || !strings.Contains(out, "picosim __complete") {
			t.Errorf("completion %s: exit %d\n%s", shell, code, out)
		}
	}
	if code, _, _ := picosim(t, "completion", "tcsh"); code != 2 {
		t.Errorf("completion tcsh: exit %d", code)
	}
	// What the scripts ask: commands, then a command's own flags.
	if _, out, _ := picosim(t, "__complete", "sw"); out != "sweep\n" {
		t.Errorf("__complete sw: %q", out)
	}
	if _, out, _ := picosim(t, "__complete", "cluster", "--kill"); out != "--kill-master-at\n" {
		t.Errorf("__complete cluster --kill: %q", out)
	}
	if _, out, _ := picosim(t, "__complete", "run", "--"); !strings.Contains(out, "--seed\n") || !strings.Contains(out, "--target\n") {
		t.Errorf("__complete run --: %q", out)
	}
}

// --repeat ends with one row per scenario, not one per run.
func TestRepeatSummarizesEachScenario(t *testing.T) {
	code, out, errOut := picosim(t, "run", "--repeat", "4", "../../../scenarios/write-pin-reverts.yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	table := out[strings.Index(out, "scenario "):]
	if rows := strings.Count(strings.TrimSpace(table), "\n"); rows != 3 || !strings.Contains(table, "runs  passed") ||
		!strings.Contains(table, "4     4       0") || !strings.Contains(table, "100.0%") {
		t.Fatalf("table:\n%s", table)
	}
}

// Numbers and words for people: no "latency 0s±0s" when only loss is set,
// no "agreed on none after none", no 2.516000001 (issue 16).
func TestClusterOutputReadsAsItShould(t *testing.T) {
	_, out, _ := picosim(t, "cluster", "--nodes", "3", "--loss", "0.1", "--duration", "5s", "--quiet")
	if strings.Contains(out, "±") || strings.Contains(out, "latency") {
		t.Errorf("a latency nobody set:\n%s", out)
	}
	_, out, _ = picosim(t, "cluster", "--nodes", "3", "--softap", "--kill-master-at", "20s", "--duration", "40s", "--quiet")
	if strings.Contains(out, "none after none") || !strings.Contains(out, "did not agree on a new master") {
		t.Errorf("a failover that did not happen:\n%s", out)
	}
	_, out, _ = picosim(t, "cluster", "--nodes", "5", "--kill-master-at", "10s", "--json", "--quiet")
	if !strings.Contains(out, `"failover_s":2.516,`) {
		t.Errorf("failover_s not to the microsecond: %s", out)
	}
}
