package sim_test

import (
	"testing"
	"time"

	"github.com/picosim/picosim/sim"
)

// BenchmarkFailover: 5 boards on an ideal radio, master killed at 10 s, 60 s
// simulated. Reports the failover time and simulated seconds per wall
// second. The goals of issue 15 (10 and 50 boards on the Pico W radio) are
// measured by picosim bench and go test -bench ./sim/bench.
//
//	go test ./sim -run '^$' -bench Failover
func BenchmarkFailover(b *testing.B) {
	var s sim.Summary
	var simS, wallS float64
	for b.Loop() {
		var err error
		s, err = sim.FailoverRun{Cluster: sim.Config{Boards: 5, Seed: 7, NoTimeline: true}, KillAt: 10 * time.Second, Duration: time.Minute}.Run()
		if err != nil || !s.Passed() {
			b.Fatalf("%v %v", err, s.Failures)
		}
		simS += s.SimS
		wallS += s.WallS
	}
	b.ReportMetric(*s.FailoverS, "failover_s")
	b.ReportMetric(simS/wallS, "sim_s/wall_s")
}
