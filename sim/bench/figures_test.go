package bench_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picosim/picosim/sim/bench"
)

func TestBenchGrowthExponent(t *testing.T) {
	ns := []int{100, 200, 500, 1000, 2000}
	for _, k := range []float64{1, 1.5, 2, 2.7} {
		var cpu []float64
		for _, n := range ns {
			cpu = append(cpu, 0.003*math.Pow(float64(n), k))
		}
		got, err := bench.GrowthExponent(ns, cpu)
		if err != nil || math.Abs(got-k) > 1e-9 {
			t.Errorf("cpu = 0.003·n^%g: exponent %v, %v", k, got, err)
		}
	}
	// Noise the fit averages out: ×1.1 and ×0.9 alternately around n².
	got, _ := bench.GrowthExponent([]int{100, 200, 400, 800}, []float64{1.1e4, 0.9 * 4e4, 1.1 * 16e4, 0.9 * 64e4})
	if math.Abs(got-2) > 0.1 {
		t.Errorf("noisy n²: exponent %v, want about 2", got)
	}
	for _, bad := range []struct {
		ns  []int
		cpu []float64
	}{
		{[]int{100}, []float64{1}},
		{[]int{100, 100}, []float64{1, 2}},
		{[]int{100, 200}, []float64{1}},
		{[]int{100, 200}, []float64{1, 0}},
		{[]int{100, 200}, []float64{1, math.NaN()}},
	} {
		if k, err := bench.GrowthExponent(bad.ns, bad.cpu); err == nil {
			t.Errorf("GrowthExponent(%v, %v) = %v, want an error", bad.ns, bad.cpu, k)
		}
	}
}

func TestBenchCompare(t *testing.T) {
	for _, c := range []struct {
		better      bench.Better
		value, base float64
		ratio       float64
		regressed   bool
	}{
		{bench.Higher, 100, 100, 1, false},
		{bench.Higher, 84, 100, 0.84, false}, // 100/84 = 1.19
		{bench.Higher, 80, 100, 0.8, true},   // 100/80 = 1.25
		{bench.Higher, 500, 100, 5, false},
		{bench.Lower, 119, 100, 1.19, false},
		{bench.Lower, 121, 100, 1.21, true},
		{bench.Lower, 10, 100, 0.1, false},
		{bench.Neither, 1, 100, 0.01, false}, // wall time: never flagged
		{bench.Neither, 100, 1, 100, false},
	} {
		ratio, bad := bench.Compare(bench.Figure{Value: c.value, Better: c.better}, c.base, 0.2)
		if math.Abs(ratio-c.ratio) > 1e-9 || bad != c.regressed {
			t.Errorf("better %d, %v against %v: ratio %v regressed %v, want %v %v", c.better, c.value, c.base, ratio, bad, c.ratio, c.regressed)
		}
	}
	// A zero has no ratio: a revert late by 1 ns against 0 is the goal's
	// business, not the baseline's.
	if ratio, bad := bench.Compare(bench.Figure{Value: 1, Better: bench.Lower}, 0, 0.2); !math.IsNaN(ratio) || bad {
		t.Errorf("against 0: %v %v, want NaN false", ratio, bad)
	}
}

var figs = []bench.Figure{
	{Key: "failover.10.sim_per_wall", Label: "10 boards: sim s per wall s", Value: 1965.4, Unit: "x", Goal: bench.Goal{Op: ">=", Value: 5000}},
	{Key: "failover.10.sim_per_cpu", Label: "10 boards: sim s per CPU-s", Value: 2100, Unit: "x", Better: bench.Higher},
	{Key: "converge.1000.peak_heap_mib", Label: "1000 boards: peak heap", Value: 120.5, Unit: " MiB", Goal: bench.Goal{Op: "<=", Value: 128}, Better: bench.Lower},
	{Key: "netsim.lan_per_cpu_s", Label: "LAN deliveries per CPU-s", Value: 312345, Unit: "/s"},
	{Key: "control.revert_max_error_ns", Label: "reverts", Value: 0, Unit: " ns", Goal: bench.Goal{Op: "==", Value: 0, Must: true}},
}

// lines are the table's lines, spaces squeezed.
func lines(out string) map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		m[strings.Join(strings.Fields(l), " ")] = true
	}
	return m
}

func TestBenchRender(t *testing.T) {
	check := func(out string, want ...string) {
		t.Helper()
		got := lines(out)
		for _, w := range want {
			if !got[w] {
				t.Errorf("no line %q in\n%s", w, out)
			}
		}
	}
	var out strings.Builder
	if n := bench.Render(&out, "failover", figs, nil, 0.2); n != 0 {
		t.Errorf("%d regressions without a baseline", n)
	}
	check(out.String(),
		"failover",
		"value goal verdict",
		"10 boards: sim s per wall s 1965x ≥ 5000x MISSED",
		"10 boards: sim s per CPU-s 2100x",
		"1000 boards: peak heap 121 MiB ≤ 128 MiB ok",
		"LAN deliveries per CPU-s 312,345/s",
		"reverts 0 ns = 0 ns ok")

	// Against a baseline: its figure, the ratio, REGRESSION where worse.
	base := bench.NewBaseline([]bench.Figure{
		{Key: "failover.10.sim_per_wall", Value: 4000},   // wall: never flagged
		{Key: "failover.10.sim_per_cpu", Value: 4200},    // 2x faster then: flagged
		{Key: "converge.1000.peak_heap_mib", Value: 125}, // lower now: fine
		{Key: "control.revert_max_error_ns", Value: 0},   // no ratio
		{Key: "netsim.heap_per_host_kib", Value: 64},     // not measured now
	}, "abc", "0.5 0.5 0.5")
	out.Reset()
	if n := bench.Render(&out, "failover", figs, base, 0.2); n != 1 {
		t.Errorf("%d regressions, want 1", n)
	}
	check(out.String(),
		"value goal verdict baseline x-baseline",
		"10 boards: sim s per wall s 1965x ≥ 5000x MISSED 4000x 0.49x",
		"10 boards: sim s per CPU-s 2100x 4200x 0.50x REGRESSION",
		"1000 boards: peak heap 121 MiB ≤ 128 MiB ok 125 MiB 0.96x",
		"LAN deliveries per CPU-s 312,345/s - -",
		"reverts 0 ns = 0 ns ok 0 ns -")
}

func TestBenchVerdict(t *testing.T) {
	for _, c := range []struct {
		f    bench.Figure
		want string
		must bool
	}{
		{bench.Figure{Value: 3}, "", false},
		{bench.Figure{Value: 5, Goal: bench.Goal{Op: "<", Value: 5}}, "MISSED", false},
		{bench.Figure{Value: 4.9, Goal: bench.Goal{Op: "<", Value: 5}}, "ok", false},
		{bench.Figure{Value: 2, Goal: bench.Goal{Op: "<=", Value: 2}}, "ok", false},
		{bench.Figure{Value: 1, Goal: bench.Goal{Op: "==", Value: 0, Must: true}}, "MISSED", true},
		{bench.Figure{Value: 0, Goal: bench.Goal{Op: "==", Value: 0, Must: true}}, "ok", false},
	} {
		if got := c.f.Verdict(); got != c.want || c.f.MustMissed() != c.must {
			t.Errorf("%+v: verdict %q must-missed %v, want %q %v", c.f, got, c.f.MustMissed(), c.want, c.must)
		}
	}
}

func TestBenchBaselineRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "baseline.json")
	saved := bench.NewBaseline(figs, "v1.2.3-4-gabcdef", "1.50 0.80 0.40")
	if err := saved.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := bench.LoadBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit != "v1.2.3-4-gabcdef" || got.Load != "1.50 0.80 0.40" || got.Date != saved.Date || got.GOMAXPROCS < 1 || got.Go == "" {
		t.Errorf("loaded %+v, saved %+v", got, saved)
	}
	for _, f := range figs {
		// Saved to four significant digits.
		if v, ok := got.Value(f.Key); !ok || math.Abs(v-f.Value) > 5e-4*math.Abs(f.Value) {
			t.Errorf("%s: loaded %v %v, saved %v", f.Key, v, ok, f.Value)
		}
	}
	if _, ok := got.Value("no.such.figure"); ok {
		t.Error("a figure the baseline does not have was found")
	}
}

func TestBenchBaselineErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for path, want := range map[string]string{
		filepath.Join(dir, "missing.json"):                                               "does not exist: write one with picosim bench --save-baseline",
		write("truncated.json", `{"format": 1, "figures": [`):                            "is not a picosim bench baseline",
		write("text.json", "goos: linux\nBenchmarkX 1 2 ns/op\n"):                        "is not a picosim bench baseline",
		write("types.json", `{"format": 1, "figures": [{"key": "a", "value": "fast"}]}`): "is not a picosim bench baseline",
		write("format.json", `{"format": 7, "figures": [{"key": "a", "value": 1}]}`):     "has format 7",
		write("empty.json", `{"format": 1, "figures": []}`):                              "has no figures",
		write("nokey.json", `{"format": 1, "figures": [{"value": 1}]}`):                  "figure 1 has no key",
		dir: "baseline",
	} {
		b, err := bench.LoadBaseline(path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) && path != dir {
			t.Errorf("LoadBaseline(%s) = %v, %v; want an error naming it and saying %q", filepath.Base(path), b, err, want)
		}
	}
}

// The committed baseline must stay readable: go test -bench compares with it.
func TestBenchCommittedBaseline(t *testing.T) {
	b, err := bench.LoadBaseline(bench.BaselineFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"failover.10.sim_per_wall", "failover.50.sim_per_wall", "converge.1000.wall_s", "netsim.cpu_ratio"} {
		if _, ok := b.Value(key); !ok {
			t.Errorf("%s has no %s", bench.BaselineFile, key)
		}
	}
}
