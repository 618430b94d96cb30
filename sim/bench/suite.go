package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
)

// Options size the measurements. picosim bench and the Go benchmarks both
// start from DefaultOptions, so that their figures have the keys of the
// committed baseline.
type Options struct {
	Seed        uint64
	Frames      int   // datagrams through the LAN and the bare pair
	Repeat      int   // runs of each failover at least (more until a second of CPU); the fastest counts
	Sizes       []int // convergence runs with all their figures
	GrowthSizes []int // convergence runs the CPU growth exponent is fitted over
	RoundTrips  int   // control round trips
	Reverts     int   // write_pin reverts
	SweepSeeds  int   // seeds of the sweep; fewer than 10,000 estimates it
	Workers     int   // the sweep's runs at a time
	Progress    io.Writer
}

// DefaultOptions keep all of picosim bench under about a minute on two
// cores. The growth sizes stop at 1,000 boards (issue 15 states the
// exponent from 100 to 2,000) because the 1,000-board run is made anyway
// and 2,000 boards alone take half a minute; --growth-sizes adds them.
func DefaultOptions() Options {
	return Options{Seed: 1, Frames: 200_000, Repeat: 5, Sizes: []int{1000}, GrowthSizes: []int{100, 200, 500, 1000},
		RoundTrips: 2000, Reverts: 10_000, SweepSeeds: 200, Workers: runtime.GOMAXPROCS(0)}
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "picosim bench: "+format+"\n", args...)
	}
}

// Section is one table of picosim bench.
type Section struct {
	Name  string
	Title string
	Run   func(Options) ([]Figure, error)
}

// Sections are the tables in the order picosim bench prints them.
var Sections = []Section{
	{"netsim", fmt.Sprintf("netsim: 64-byte datagrams, link %v±%v, loss/duplicate/reorder %g, corrupt %g",
		netsim.BenchLink.Latency, netsim.BenchLink.Jitter, netsim.BenchLink.Loss, netsim.BenchLink.Corrupt), Netsim},
	{"failover", "failover: picosim cluster --kill-master-at 10s --duration 60s --json", Failover},
	{"converge", "converge: N boards powered on together until one master", Converge},
	{"control", "control: 5±1 ms link", Control},
	{"sweep", "sweep: picosim sweep --nodes 7 --kill-master-at 10s --duration 60s --loss 0.1", Sweep},
}

// Netsim: datagrams through an impaired LAN against a bare gVisor pair in
// the same run, per CPU-second, and an idle host's heap.
func Netsim(o Options) ([]Figure, error) {
	o.progress("%d datagrams through the LAN and through a bare gVisor pair...", o.Frames)
	t, err := netsim.MeasureThroughput(o.Frames, netsim.BenchLink, 500)
	if err != nil {
		return nil, err
	}
	return []Figure{
		{Key: "netsim.lan_per_cpu_s", Label: "LAN deliveries per CPU-s", Value: t.LANPerCPUSecond, Unit: "/s", Goal: Goal{Op: ">=", Value: 250_000}, Better: Higher},
		{Key: "netsim.raw_per_cpu_s", Label: "bare gVisor pair deliveries per CPU-s", Value: t.RawPerCPUSecond, Unit: "/s"},
		{Key: "netsim.cpu_ratio", Label: "LAN / bare pair, per CPU-s", Value: t.CPURatio(), Unit: "x", Goal: Goal{Op: ">=", Value: 2}, Better: Higher},
		{Key: "netsim.lan_per_wall_s", Label: "LAN deliveries per wall s", Value: t.LANPerSecond, Unit: "/s"},
		{Key: "netsim.heap_per_host_kib", Label: "heap of an idle host", Value: float64(t.HeapPerHost) / 1024, Unit: " KiB", Better: Lower},
	}, nil
}

// FailoverRun is the run of picosim cluster --nodes n --kill-master-at 10s
// --duration 60s --loss loss with the command's other defaults (the Pico W
// radio, 1 s heartbeats, k=3): the runs issue 15 states its goals in.
func FailoverRun(n int, loss float64, seed uint64) sim.FailoverRun {
	return sim.FailoverRun{
		Cluster: sim.Config{Boards: n, Seed: seed, Link: netsim.Link{Loss: loss}, NoTimeline: true,
			Settings: firmware.Settings{Heartbeat: time.Second, MissLimit: 3}, Profile: netsim.PicoWRadio.Profile()},
		KillAt:   10 * time.Second,
		Duration: 60 * time.Second,
	}
}

// runFailover runs r as picosim cluster --json does, its events encoded and
// thrown away, and returns its summary and the CPU seconds it took.
func runFailover(r sim.FailoverRun) (sim.Summary, float64, error) {
	r.Cluster.OnEvent = func(e sim.Event) { io.Discard.Write(sim.JSON(e)) }
	runtime.GC() // the garbage of the run before is not this one's cost
	cpu0 := netsim.CPUTime()
	s, err := r.Run()
	cpu := (netsim.CPUTime() - cpu0).Seconds()
	if err == nil && !s.Passed() {
		err = fmt.Errorf("%d boards, seed %d: the failover failed: %v", r.Cluster.Boards, r.Cluster.Seed, s.Failures)
	}
	return s, cpu, err
}

// Failover: 10 and 50 boards, the fastest of o.Repeat runs each or of as
// many as take a second of CPU (a 10-board run takes milliseconds: one is
// all noise), and the CPU a capture to io.Discard adds to the 10-board run.
func Failover(o Options) ([]Figure, error) {
	var figs []Figure
	for _, n := range []int{10, 50} {
		o.progress("a %d-board failover, %d times or more...", n, o.Repeat)
		goal := map[int]float64{10: 5000, 50: 500}[n]
		bestWall, bestCPU := math.Inf(1), math.Inf(1)
		var s sim.Summary
		var pcap []float64            // CPU with a capture over CPU without, pair by pair
		var pcapWith, pcapOff float64 // and the CPU of all of them
		more := func(i int, spent float64) bool {
			if i >= 1000 {
				return false
			}
			return i < o.Repeat || spent < 1 || n == 10 && len(pcap) < 31
		}
		for i, spent := 0, 0.0; more(i, spent); i++ {
			var cpu float64
			var err error
			if s, cpu, err = runFailover(FailoverRun(n, 0, o.Seed)); err != nil {
				return nil, err
			}
			bestWall, bestCPU, spent = min(bestWall, s.WallS), min(bestCPU, cpu), spent+cpu
			if n == 10 {
				// Runs with a capture and runs without, alternating: each
				// pair shares the machine's load of the moment. A run takes
				// 3 ms of CPU, as little as a GC cycle: a pair is of eight
				// runs each.
				without, with := cpu, 0.0
				for k := range 8 {
					r := FailoverRun(n, 0, o.Seed)
					r.Capture = io.Discard
					_, c, err := runFailover(r)
					if err != nil {
						return nil, err
					}
					with += c
					if k < 7 {
						if _, c, err = runFailover(FailoverRun(n, 0, o.Seed)); err != nil {
							return nil, err
						}
						without += c
					}
				}
				pcap = append(pcap, with/without)
				pcapWith, pcapOff = pcapWith+with, pcapOff+without
				spent += with + without - cpu
			}
		}
		key, label := fmt.Sprintf("failover.%d.", n), fmt.Sprintf("%d boards: ", n)
		figs = append(figs,
			Figure{Key: key + "sim_per_wall", Label: label + "sim s per wall s", Value: s.SimS / bestWall, Unit: "x", Goal: Goal{Op: ">=", Value: goal}},
			Figure{Key: key + "sim_per_cpu", Label: label + "sim s per CPU-s", Value: s.SimS / bestCPU, Unit: "x", Better: Higher})
		if s.FailoverS != nil {
			figs = append(figs, Figure{Key: key + "failover_s", Label: label + "failover time (simulated)", Value: *s.FailoverS, Unit: " s"})
		}
		if n == 10 {
			// The median: a GC cycle falls on one run of a pair or the
			// other, and the fastest of each side may come from different
			// moments of the load.
			// The CPU of all runs with a capture over that of all without:
			// a pair's ratio moves by ±5% with a GC cycle or the load of the
			// moment, which the sums even out (the median of the pairs is
			// printed beside it, for a feel of the spread).
			slices.Sort(pcap)
			figs = append(figs, Figure{Key: key + "pcap_extra_cpu", Label: fmt.Sprintf("%sextra CPU of a pcap to io.Discard (%d runs each way; median pair %+.1f%%)", label, 8*len(pcap), 100*(pcap[len(pcap)/2]-1)),
				Value: 100 * (pcapWith/pcapOff - 1), Unit: "%", Goal: Goal{Op: "<", Value: 5}})
		}
	}
	return figs, nil
}

// Converge: the sizes' runs with time and heap, and the exponent of CPU
// seconds against boards over the growth sizes (a run measured once serves
// both).
func Converge(o Options) ([]Figure, error) {
	all := slices.Compact(slices.Sorted(slices.Values(slices.Concat(o.Sizes, o.GrowthSizes))))
	runs := map[int]Convergence{}
	for _, n := range all {
		o.progress("%d boards converging...", n)
		c, err := MeasureConvergence(n, o.Seed, 100*time.Millisecond, 5*time.Minute)
		if err != nil {
			return nil, err
		}
		runs[n] = c
	}
	var figs []Figure
	for _, n := range all {
		c, key, label := runs[n], fmt.Sprintf("converge.%d.", n), fmt.Sprintf("%d boards: ", n)
		if !slices.Contains(o.Sizes, n) {
			// Only for the fit, which is compared: a run of a tenth of a
			// second moves by more than the threshold with the load.
			figs = append(figs, Figure{Key: key + "cpu_s", Label: label + "CPU s", Value: c.CPUS, Unit: " s"})
			continue
		}
		var wallGoal, heapGoal Goal
		if n == 1000 {
			wallGoal, heapGoal = Goal{Op: "<=", Value: 10}, Goal{Op: "<=", Value: 128}
		}
		figs = append(figs,
			Figure{Key: key + "wall_s", Label: label + "wall s", Value: c.WallS, Unit: " s", Goal: wallGoal},
			Figure{Key: key + "cpu_s", Label: label + "CPU s", Value: c.CPUS, Unit: " s", Better: Lower},
			// The peak includes garbage, as much as the GC's pace under the
			// load leaves: not compared. The live heap after a GC is.
			Figure{Key: key + "peak_heap_mib", Label: label + "peak heap", Value: float64(c.PeakHeap) / (1 << 20), Unit: " MiB", Goal: heapGoal},
			Figure{Key: key + "heap_per_board_kib", Label: label + "live heap per board", Value: float64(c.HeapPerBoard()) / 1024, Unit: " KiB", Better: Lower})
	}
	if len(o.GrowthSizes) > 1 {
		var ns []int
		var cpu []float64
		for _, n := range o.GrowthSizes {
			ns, cpu = append(ns, n), append(cpu, runs[n].CPUS)
		}
		k, err := GrowthExponent(ns, cpu)
		if err != nil {
			return figs, err
		}
		// The sizes are in the key: an exponent over other sizes is another
		// figure, not comparable with the baseline's.
		figs = append(figs, Figure{Key: "converge.cpu_exponent." + joinInts(ns, "-"),
			Label: "CPU growth exponent, sizes " + joinInts(ns, ","), Value: k, Goal: Goal{Op: "<=", Value: 2}, Better: Lower})
	}
	return figs, nil
}

func joinInts(ns []int, sep string) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, sep)
}

// GrowthExponent fits cpu = a·n^k by least squares on log cpu against log n
// and returns k: 1 is linear growth, 2 quadratic.
func GrowthExponent(ns []int, cpu []float64) (float64, error) {
	if len(ns) != len(cpu) || len(slices.Compact(slices.Sorted(slices.Values(ns)))) < 2 {
		return 0, errors.New("growth exponent: need CPU seconds at two sizes or more")
	}
	var sx, sy, sxx, sxy float64
	for i, n := range ns {
		if n <= 0 || !(cpu[i] > 0) {
			return 0, fmt.Errorf("growth exponent: %d boards took %v CPU seconds: need positive numbers", n, cpu[i])
		}
		x, y := math.Log(float64(n)), math.Log(cpu[i])
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	m := float64(len(ns))
	return (m*sxy - sx*sy) / (m*sxx - sx*sx), nil
}

// Control: read_pin round trips through the simulated LAN against a raw TCP
// echo in the same run, their latency, and the timing of write_pin reverts.
func Control(o Options) ([]Figure, error) {
	o.progress("%d control round trips, %d reverts...", o.RoundTrips, o.Reverts)
	link := netsim.Link{Latency: 5 * time.Millisecond, Jitter: time.Millisecond}
	cb, err := MeasureControl(o.RoundTrips, o.Reverts, link, o.Seed)
	if err != nil {
		return nil, err
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return []Figure{
		{Key: "control.rt_per_cpu_s", Label: "read_pin round trips per CPU-s", Value: cb.PerCPUSecond, Unit: "/s", Better: Higher},
		{Key: "control.rt_per_wall_s", Label: "read_pin round trips per wall s", Value: cb.PerWallSecond, Unit: "/s"},
		{Key: "control.vs_echo", Label: "read_pin vs a raw TCP echo, per wall s", Value: cb.PerWallSecond / cb.EchoPerWallSecond, Unit: "x"},
		{Key: "control.sim_p50_ms", Label: "latency p50, simulated", Value: ms(cb.SimP50), Unit: " ms"},
		{Key: "control.sim_p99_ms", Label: "latency p99, simulated", Value: ms(cb.SimP99), Unit: " ms"},
		{Key: "control.wall_p50_us", Label: "latency p50, wall", Value: 1000 * ms(cb.WallP50), Unit: " µs"},
		{Key: "control.wall_p99_us", Label: "latency p99, wall", Value: 1000 * ms(cb.WallP99), Unit: " µs"},
		{Key: "control.revert_max_error_ns", Label: fmt.Sprintf("%d write_pin reverts: largest distance from the deadline", cb.Reverts),
			Value: float64(cb.RevertMaxError), Unit: " ns", Goal: Goal{Op: "==", Value: 0, Must: true}},
	}, nil
}

// sweepGoalSeeds is the size of the sweep issue 15 states its goal in.
const sweepGoalSeeds = 10_000

// Sweep: o.SweepSeeds runs of the 7-board lossy failover, o.Workers at a
// time, as picosim sweep runs them; the wall time of 10,000 is estimated
// from them when they are fewer.
func Sweep(o Options) ([]Figure, error) {
	o.progress("%d seeds of a 7-board failover at 10%% loss, %d at a time...", o.SweepSeeds, o.Workers)
	seeds := make(chan uint64)
	var failed []uint64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), netsim.CPUTime()
	for range max(o.Workers, 1) {
		wg.Go(func() {
			for seed := range seeds {
				s, err := FailoverRun(7, 0.1, seed).Run()
				if err != nil || !s.Passed() {
					mu.Lock()
					failed = append(failed, seed)
					mu.Unlock()
				}
			}
		})
	}
	for i := range o.SweepSeeds {
		seeds <- uint64(i + 1)
	}
	close(seeds)
	wg.Wait()
	wall, cpu := time.Since(start).Seconds(), (netsim.CPUTime() - cpu0).Seconds()
	how := "measured"
	if o.SweepSeeds < sweepGoalSeeds {
		how = "estimated from " + strconv.Itoa(o.SweepSeeds) + " seeds"
	}
	failedLabel := "failed runs"
	if len(failed) > 0 {
		// A failing run is a bug: name one to replay with picosim cluster.
		failedLabel += fmt.Sprintf(" (one: --seed %d)", slices.Min(failed))
	}
	return []Figure{
		{Key: "sweep.10000_seeds_wall_s", Label: fmt.Sprintf("10,000 seeds, %d at a time: wall s (%s)", o.Workers, how),
			Value: wall * sweepGoalSeeds / float64(o.SweepSeeds), Unit: " s", Goal: Goal{Op: "<=", Value: 300}},
		{Key: "sweep.cpu_ms_per_seed", Label: "CPU per seed", Value: 1000 * cpu / float64(o.SweepSeeds), Unit: " ms", Better: Lower},
		{Key: "sweep.failed", Label: failedLabel, Value: float64(len(failed)), Goal: Goal{Op: "==", Value: 0, Must: true}},
	}, nil
}
