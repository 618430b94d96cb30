package netsim_test

import (
	"testing"

	"github.com/picosim/picosim/netsim"
)

// BenchmarkThroughput: datagrams per wall second through an impaired LAN,
// against two bare gVisor stacks on channel endpoints in the same run (goal
// ratio >= 0.8), and an idle host's heap.
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
	b.ReportMetric(float64(r.HeapPerHost), "heap_B/host")
}
