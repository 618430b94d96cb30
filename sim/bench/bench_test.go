package bench_test

import (
	"flag"
	"math"
	"testing"

	"github.com/picosim/picosim/sim/bench"
)

var regression = flag.Float64("regression", 0.2, "a figure worse than the baseline's by more than this fraction fails its benchmark")

// benchSection measures a section of picosim bench with its default options
// and reports every figure under its key, and beside it the figure over the
// committed baseline's (KEY_x-baseline): one run of
//
//	go test ./sim/bench -run '^$' -bench . -benchtime 1x
//
// shows this commit against the baseline, and fails a benchmark whose figure
// is worse by more than -regression (go test ... -args -regression 0.3).
func benchSection(b *testing.B, name string) {
	base, err := bench.LoadBaseline(bench.BaselineFile)
	if err != nil {
		b.Error(err) // and measure all the same, compared with nothing
		base = &bench.Baseline{}
	}
	var sec bench.Section
	for _, s := range bench.Sections {
		if s.Name == name {
			sec = s
		}
	}
	var figs []bench.Figure
	for b.Loop() {
		if figs, err = sec.Run(bench.DefaultOptions()); err != nil {
			b.Fatal(err)
		}
	}
	for _, f := range figs {
		b.ReportMetric(f.Value, f.Key)
		if f.MustMissed() {
			b.Errorf("%s: %v, goal %s %v", f.Label, f.Value, f.Goal.Op, f.Goal.Value)
		}
		v, ok := base.Value(f.Key)
		if !ok {
			continue
		}
		ratio, regressed := bench.Compare(f, v, *regression)
		if !math.IsNaN(ratio) {
			b.ReportMetric(ratio, f.Key+"_x-baseline")
		}
		if regressed {
			b.Errorf("REGRESSION %s: %.4g%s against %.4g%s in %s (commit %s)", f.Label, f.Value, f.Unit, v, f.Unit, bench.BaselineFile, base.Commit)
		}
	}
}

// BenchmarkNetsim: datagrams through an impaired LAN against a bare gVisor
// pair, per CPU-second (goals: 250,000, and 2x the pair).
func BenchmarkNetsim(b *testing.B) { benchSection(b, "netsim") }

// BenchmarkFailover: 10 and 50 boards, master killed at 10 s, 60 s simulated
// (goals: 5,000 and 500 simulated seconds per wall second); a pcap's cost
// (goal: under 5%).
func BenchmarkFailover(b *testing.B) { benchSection(b, "failover") }

// BenchmarkConverge: 1,000 boards booted together until one master (goals:
// 10 s, 128 MiB peak heap), and how CPU grows with boards (goal: n²).
func BenchmarkConverge(b *testing.B) { benchSection(b, "converge") }

// BenchmarkControl: control round trips through the simulated LAN and the
// timing of write_pin reverts (goal: on the deadline).
func BenchmarkControl(b *testing.B) { benchSection(b, "control") }

// BenchmarkSweep: 200 seeds of a 7-board failover at 10% loss, and the wall
// time of 10,000 estimated from them (goal: 5 minutes on two cores).
func BenchmarkSweep(b *testing.B) { benchSection(b, "sweep") }
