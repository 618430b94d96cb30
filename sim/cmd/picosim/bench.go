package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/bench"
)

const benchHelp = `Usage: picosim bench [cluster|control|netsim] [flags]

Measures the simulator and prints tables (all of them without a section):
  failover   5 boards, master killed at 10s, 60s simulated: failover time and
             simulated seconds per wall second (goal: 1000x or more)
  converge   N boards booted together until they agree on one master: wall
             seconds and live heap per board (goal: 1000 boards in 30 s, 128 MiB)
  control    read_pin round trips through the simulated LAN: per wall second
             (against a raw TCP echo in the same run), p50/p99 latency in
             simulated and wall time; write_pin reverts and their largest
             distance from the deadline (goal: 0)
  netsim     datagrams per wall second through an impaired LAN, against two
             bare gVisor stacks on channel endpoints in the same run (goal:
             ratio 0.8 or more); heap of an idle host

Examples:
  picosim bench
  picosim bench netsim
  picosim bench cluster --sizes 100,1000,2000

Flags:
`

func benchCmd(args []string, stdout, stderr io.Writer) int {
	section := "all"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		section, args = args[0], args[1:]
	}
	switch section {
	case "all", "cluster", "control", "netsim":
	default:
		fmt.Fprintf(stderr, "picosim bench: unknown section %q: cluster, control or netsim\n", section)
		return 2
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchHelp)
		fs.PrintDefaults()
	}
	sizes := fs.String("sizes", "100,1000", "comma-separated cluster sizes for the convergence runs")
	roundTrips := fs.Int("round-trips", 2000, "control round trips to time")
	reverts := fs.Int("reverts", 10000, "write_pin reverts to time")
	frames := fs.Int("frames", 200000, "datagrams to send through the LAN")
	seed := fs.Uint64("seed", 1, "seed of the runs")
	if code, ok := parseFlags(fs, args, false, stderr); !ok {
		return code
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "picosim bench: --sizes: %q is not a board count\n", s)
			return 2
		}
		ns = append(ns, n)
	}

	code := 0
	if section == "all" || section == "netsim" {
		fmt.Fprintf(stderr, "picosim bench: %d datagrams through the LAN and through a raw pair...\n", *frames)
		t, err := netsim.MeasureThroughput(*frames, netsim.BenchLink, 500)
		if err != nil {
			fmt.Fprintf(stderr, "picosim bench: netsim: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "netsim\tdatagrams\tframes/s\traw pair frames/s\tratio\theap/host\t")
		fmt.Fprintf(tw, "impaired LAN\t%d\t%.0f\t%.0f\t%.2f\t%s\t\n", t.Frames, t.LANPerSecond, t.RawPerSecond, t.Ratio(), kib(t.HeapPerHost))
		tw.Flush()
		fmt.Fprintf(stdout, "  (link: %v ±%v, loss %g, duplicate %g, reorder %g, corrupt %g)\n\n",
			netsim.BenchLink.Latency, netsim.BenchLink.Jitter, netsim.BenchLink.Loss, netsim.BenchLink.Duplicate, netsim.BenchLink.Reorder, netsim.BenchLink.Corrupt)
		if t.Ratio() < 0.8 {
			code = 1
		}
	}
	if section == "all" || section == "cluster" {
		if c := benchCluster(ns, *seed, stdout, stderr); c != 0 {
			code = c
		}
	}
	if section == "all" || section == "control" {
		if c := benchControl(*roundTrips, *reverts, *seed, stdout, stderr); c != 0 {
			code = c
		}
	}
	return code
}

func benchCluster(ns []int, seed uint64, stdout, stderr io.Writer) int {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tboards\tsim s\twall s\tsim/wall\tfailover s\theap/board\theap total\tvs bare stack\t")
	code := 0
	s, err := sim.FailoverRun{Cluster: sim.Config{Boards: 5, Seed: seed, NoTimeline: true}, KillAt: 10 * time.Second, Duration: 60 * time.Second}.Run()
	if err != nil || s.FailoverS == nil {
		fmt.Fprintf(stderr, "picosim bench: failover run: %v %v\n", err, s.Failures)
		return 1
	}
	fmt.Fprintf(tw, "failover\t%d\t%.1f\t%.4f\t%.0fx\t%.3f\t-\t-\t-\t\n", s.Nodes, s.SimS, s.WallS, s.Speedup, *s.FailoverS)
	for _, n := range ns {
		fmt.Fprintf(stderr, "picosim bench: %d boards converging...\n", n)
		c, err := bench.MeasureConvergence(n, seed, 100*time.Millisecond, 5*time.Minute)
		if err != nil {
			fmt.Fprintf(stderr, "picosim bench: %v\n", err)
			code = 1
			continue
		}
		bare, err := netsim.HeapPerHost(n)
		if err != nil {
			fmt.Fprintf(stderr, "picosim bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(tw, "converge\t%d\t%.1f\t%.2f\t%.1fx\t-\t%s\t%s\t%.2fx of %s\t\n", n, c.SimS, c.WallS, c.SimS/c.WallS,
			kib(c.HeapPerBoard()), mib(c.HeapBytes), float64(c.HeapPerBoard())/float64(bare), kib(bare))
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	return code
}

func benchControl(roundTrips, reverts int, seed uint64, stdout, stderr io.Writer) int {
	code := 0
	fmt.Fprintf(stderr, "picosim bench: %d control round trips, %d reverts...\n", roundTrips, reverts)
	link := netsim.Link{Latency: 5 * time.Millisecond, Jitter: time.Millisecond}
	cb, err := bench.MeasureControl(roundTrips, reverts, link, seed)
	if err != nil {
		fmt.Fprintf(stderr, "picosim bench: control: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "control (5±1 ms link)\tround trips\tper wall s\tvs raw TCP echo\tsim p50\tsim p99\twall p50\twall p99\t")
	fmt.Fprintf(tw, "read_pin\t%d\t%.0f\t%.2fx of %.0f\t%v\t%v\t%v\t%v\t\n", cb.RoundTrips, cb.PerWallSecond,
		cb.PerWallSecond/cb.EchoPerWallSecond, cb.EchoPerWallSecond, cb.SimP50.Round(time.Microsecond), cb.SimP99.Round(time.Microsecond),
		cb.WallP50.Round(time.Microsecond), cb.WallP99.Round(time.Microsecond))
	tw.Flush()
	fmt.Fprintf(stdout, "write_pin reverts: %d, largest distance from the deadline %v\n", cb.Reverts, cb.RevertMaxError)
	if cb.RevertMaxError > 0 {
		code = 1
	}
	return code
}

func kib(b uint64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }
func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
