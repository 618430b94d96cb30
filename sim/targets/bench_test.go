package targets

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim/simtest"
)

// measureFailover boots t's boards until they agree, then kills the master
// kills times, each time timing how long the survivors take to agree on a
// new one, and bringing the old one back before the next. It runs on any
// target: simulated time on sim, wall-clock time on the others.
func measureFailover(t Target, kills int) (boot time.Duration, took []time.Duration, err error) {
	const limit = 30 * time.Second
	agreed := func() bool { return t.Agreement() == nil }
	if !t.RunUntil(t.Now()+limit, agreed) {
		return 0, nil, fmt.Errorf("no agreement within %v: %v", limit, t.Agreement())
	}
	boot = t.Now()
	for range kills {
		old, _ := t.AgreedMaster()
		if err := t.PowerOff(old); err != nil {
			return boot, took, err
		}
		at := t.Now()
		if !t.RunUntil(at+limit, func() bool { m, ok := t.AgreedMaster(); return ok && m != old && agreed() }) {
			return boot, took, fmt.Errorf("no new master within %v of killing %s", limit, old)
		}
		took = append(took, t.Now()-at)
		if err := t.PowerOn(old); err != nil {
			return boot, took, err
		}
		if !t.RunUntil(t.Now()+limit, func() bool { m, _ := t.AgreedMaster(); return m == old && agreed() }) {
			return boot, took, fmt.Errorf("%s did not take over again within %v", old, limit)
		}
	}
	return boot, took, nil
}

// BenchmarkEmulatedFailover times failovers of 5 emulated boards at the
// 250ms heartbeat the bundled scenarios use on real time, against the
// liveness bound (k+2 heartbeats) and against the simulator with the same
// settings in the same run.
//
//	go test ./sim/targets -run '^$' -bench EmulatedFailover -benchtime 1x
func BenchmarkEmulatedFailover(b *testing.B) {
	if err := CanEmulate(); err != nil {
		b.Skip("emulated boards cannot run here: " + err.Error())
	}
	const kills = 5
	heartbeat := 250 * time.Millisecond
	spec := Spec{Seed: 1, Heartbeat: heartbeat, Radio: netsim.IdealRadio}
	for _, n := range []string{"pico1", "pico2", "pico3", "pico4", "pico5"} {
		spec.Boards = append(spec.Boards, BoardSpec{Name: n})
	}
	for range b.N {
		simT, err := NewSim(spec)
		if err != nil {
			b.Fatal(err)
		}
		simBoot, simTook, err := measureFailover(simT, kills)
		if err != nil {
			b.Fatal("sim: ", err)
		}
		emu, err := NewEmulated(spec, EmulatedConfig{})
		if err != nil {
			b.Fatal(err)
		}
		wall := time.Now()
		boot, took, err := measureFailover(emu, kills)
		emu.Close()
		if err != nil {
			b.Fatal("emulated: ", err)
		}
		bound := 5 * heartbeat // (k+2) heartbeats, k = 3
		b.ReportMetric(simtest.Median(took).Seconds(), "emulated-failover-s")
		b.ReportMetric(slices.Max(took).Seconds(), "emulated-failover-max-s")
		b.ReportMetric(simtest.Median(simTook).Seconds(), "sim-failover-s")
		b.ReportMetric(simtest.Median(took).Seconds()/simtest.Median(simTook).Seconds(), "emulated/sim")
		b.ReportMetric(bound.Seconds(), "bound-s")
		b.ReportMetric(boot.Seconds(), "emulated-boot-to-agreement-s")
		b.ReportMetric(simBoot.Seconds(), "sim-boot-to-agreement-s")
		b.Logf("%d kills: emulated failovers %v (median %v), simulator %v; bound %v; %v of wall time",
			kills, took, simtest.Median(took), simTook, bound, time.Since(wall).Round(time.Millisecond))
	}
}
