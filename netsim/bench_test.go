package netsim_test

import (
	"testing"

	"github.com/picosim/picosim/netsim"
)

// BenchmarkThroughput: datagrams per wall second and per CPU-second through
// an impaired LAN, against two bare gVisor stacks on channel endpoints in the
// same run (goals: 250,000 per CPU-second, 2x the bare pair), and an idle
// host's heap. picosim bench prints the same against its goals.
//
//	go test ./netsim -run '^$' -bench Throughput -benchtime 1x
func BenchmarkThroughput(b *testing.B) {
	var r netsim.Throughput
	for b.Loop() {
		var err error
		if r, err = netsim.MeasureThroughput(200_000, netsim.BenchLink, 200); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.LANPerSecond, "lan_frames/s")
	b.ReportMetric(r.RawPerSecond, "raw_frames/s")
	b.ReportMetric(r.Ratio(), "ratio")
	b.ReportMetric(r.LANPerCPUSecond, "lan_frames/cpu_s")
	b.ReportMetric(r.RawPerCPUSecond, "raw_frames/cpu_s")
	b.ReportMetric(r.CPURatio(), "cpu_ratio")
	b.ReportMetric(float64(r.HeapPerHost), "heap_B/host")
}
