package bench_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim/bench"
)

// BenchmarkConverge: N boards booted together until all agree on one master.
// Reports wall seconds and live heap per board (goal: 1,000 boards in 30 s
// and 128 MiB).
//
//	go test ./sim/bench -run '^$' -bench Converge -benchtime 1x
func BenchmarkConverge(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("boards=%d", n), func(b *testing.B) {
			var c bench.Convergence
			for b.Loop() {
				var err error
				if c, err = bench.MeasureConvergence(n, 1, 100*time.Millisecond, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(c.WallS, "wall_s")
			b.ReportMetric(c.SimS, "sim_s")
			b.ReportMetric(float64(c.HeapPerBoard()), "heap_B/board")
			b.ReportMetric(float64(c.HeapBytes)/(1<<20), "heap_MiB")
			b.ReportMetric(float64(c.PeakHeap)/(1<<20), "peak_MiB")
		})
	}
}

// BenchmarkControl: control round trips through the simulated LAN and the
// timing of write_pin reverts.
//
//	go test ./sim/bench -run '^$' -bench Control -benchtime 1x
func BenchmarkControl(b *testing.B) {
	var r bench.ControlBench
	for b.Loop() {
		var err error
		if r, err = bench.MeasureControl(2000, 2000, netsim.Link{Latency: 5 * time.Millisecond, Jitter: time.Millisecond}, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.PerWallSecond, "rt/wall_s")
	b.ReportMetric(r.PerWallSecond/r.EchoPerWallSecond, "vs_echo")
	b.ReportMetric(float64(r.SimP99)/1e6, "sim_p99_ms")
	b.ReportMetric(float64(r.WallP99)/1e3, "wall_p99_us")
	b.ReportMetric(float64(r.RevertMaxError), "revert_err_ns")
}
