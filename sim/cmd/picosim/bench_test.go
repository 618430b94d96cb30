package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchRun runs picosim bench with args and returns its exit status and
// outputs.
func benchRun(args ...string) (int, string, string) {
	var stdout, stderr strings.Builder
	code := run(append([]string{"bench"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// A quick section saved as a baseline compares with itself; made 10x faster
// on paper, the baseline flags this run as a regression and exits 1.
func TestBenchCmdBaseline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "baseline.json")
	quick := []string{"netsim", "--frames", "2000"}
	code, out, errs := benchRun(append(quick, "--save-baseline", path, "--commit", "test-commit")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"GOMAXPROCS", "load", "value", "goal", "verdict", "LAN deliveries per CPU-s", "≥ 250,000/s", "measured by make test"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var saved map[string]any
	if err := json.Unmarshal(data, &saved); err != nil || saved["commit"] != "test-commit" || saved["gomaxprocs"] == nil || saved["date"] == nil || saved["load"] == nil {
		t.Fatalf("saved %s (%v)", data, err)
	}

	// Only one figure in the baseline, so that the noise of the others
	// (two quick runs) flags nothing: 1,000 times this run's, this run
	// regressed; a 1,000th, it improved.
	compare := func(factor float64, extra ...string) (int, string, string) {
		t.Helper()
		for _, f := range saved["figures"].([]any) {
			if f := f.(map[string]any); f["key"] == "netsim.lan_per_cpu_s" {
				f["value"] = f["value"].(float64) * factor
				data, _ := json.Marshal(map[string]any{"format": saved["format"], "commit": "test-commit", "figures": []any{f}})
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				f["value"] = f["value"].(float64) / factor
			}
		}
		return benchRun(append(append(quick, "--baseline", path), extra...)...)
	}
	code, out, errs = compare(1000)
	if code != 1 || !strings.Contains(out, "x-baseline") || !strings.Contains(out, "against "+path+": commit test-commit") ||
		!strings.Contains(errs, "1 figures regressed by more than 20%") {
		t.Errorf("exit %d, want 1 and a regression\n%s%s", code, out, errs)
	}
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "LAN deliveries per CPU-s") {
			row = l
		}
	}
	if !strings.Contains(row, "0.00") || !strings.HasSuffix(strings.TrimSpace(row), "REGRESSION") {
		t.Errorf("row %q: want a ratio near 0 and REGRESSION", row)
	}
	// Better than the baseline, or worse by less than --regression: no
	// regression.
	for _, c := range []struct {
		factor float64
		flags  []string
	}{{0.001, nil}, {1000, []string{"--regression", "5000"}}} {
		if code, out, errs := compare(c.factor, c.flags...); code != 0 || strings.Contains(errs, "regressed") {
			t.Errorf("baseline x%g %v: exit %d\n%s%s", c.factor, c.flags, code, out, errs)
		}
	}
}

// A baseline that is missing or not one stops the run before it measures,
// with a message that names the file.
func TestBenchCmdBadBaseline(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.json")
	os.WriteFile(corrupt, []byte(`{"format": 1, "figures": [{"key": `), 0o644)
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.json"), "does not exist"},
		{corrupt, "is not a picosim bench baseline"},
	} {
		code, out, errs := benchRun("--baseline", c.path)
		if code != 2 || !strings.Contains(errs, c.path) || !strings.Contains(errs, c.want) || out != "" {
			t.Errorf("--baseline %s: exit %d, stdout %q, stderr %q; want 2 and %q", c.path, code, out, errs, c.want)
		}
	}
}

func TestBenchCmdFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, `unknown section "nosuch"`},
		{[]string{"--sizes", "100,x"}, `"x" is not a board count`},
		{[]string{"--growth-sizes", "0"}, `"0" is not a board count`},
		{[]string{"--repeat", "0"}, "must be at least 1"},
		{[]string{"--regression", "-1"}, "not negative"},
	} {
		if code, _, errs := benchRun(c.args...); code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
	var b boardCounts
	if err := b.Set("100, 200,500"); err != nil || b.String() != "100,200,500" {
		t.Errorf("boardCounts: %v %v", b, err)
	}
}
