package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/picosim/picosim/sim/bench"
)

const benchHelp = `Usage: picosim bench [netsim|cluster|failover|converge|control|sweep] [flags]

Measures the simulator and prints a table per section (all of them without
one), a figure per row beside its goal (issue 15) and a verdict, ok or
MISSED. Times are CPU time of the process where they can be (getrusage):
wall time moves with the machine's load, printed in the header.
  netsim    64-byte datagrams through an impaired LAN and through two bare
            gVisor stacks, per CPU-second; an idle host's heap
  failover  picosim cluster --nodes 10 and 50 --kill-master-at 10s
            --duration 60s: simulated seconds per wall and per CPU second (the
            fastest of --repeat runs); the CPU a pcap to io.Discard adds
  converge  N boards powered on together until they agree on a master: wall
            and CPU seconds, heap (--sizes); the exponent of CPU seconds
            against N (--growth-sizes)
  control   read_pin round trips through the simulated LAN and write_pin
            reverts (goal: each exactly at its deadline)
  sweep     picosim sweep --nodes 7 --kill-master-at 10s --duration 60s
            --loss 0.1 over --sweep-seeds seeds; the wall time of 10,000
            seeds is estimated from them (the goal: 5 minutes)
  cluster   failover and converge
The goal of make test (120 s) is measured by make test.

--save-baseline FILE writes the run's figures as JSON with the commit, date,
load and GOMAXPROCS; --baseline FILE prints each figure beside the file's and
their ratio, and flags REGRESSION where one is worse by more than
--regression (0.2: 20%). Figures of wall time and the peak heap are not
flagged (the load moves them); their CPU-time twins and the live heap are.

Exit status: 0; 1 when a measurement failed, a goal of correctness (no late
revert, no failed run) was missed, or a figure regressed against --baseline;
2 on bad flags or an unreadable baseline. A missed speed goal is reported,
not an error.

Examples:
  picosim bench
  picosim bench netsim
  picosim bench cluster --sizes 1000,2000 --growth-sizes 100,200,500,1000,2000
  picosim bench --baseline sim/bench/baseline.json
  picosim bench --save-baseline sim/bench/baseline.json   # make bench-baseline

Flags:
`

func benchCmd(args []string, stdout, stderr io.Writer) int {
	section := "all"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		section, args = args[0], args[1:]
	}
	var names []string
	for _, s := range bench.Sections {
		names = append(names, s.Name)
	}
	if section != "all" && section != "cluster" && !slices.Contains(names, section) {
		fmt.Fprintf(stderr, "picosim bench: unknown section %q: %s or cluster\n", section, strings.Join(names, ", "))
		return 2
	}
	o := bench.DefaultOptions()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchHelp)
		fs.PrintDefaults()
	}
	fs.Var((*boardCounts)(&o.Sizes), "sizes", "comma-separated cluster `sizes` for the convergence runs")
	fs.Var((*boardCounts)(&o.GrowthSizes), "growth-sizes", "comma-separated cluster `sizes` the CPU growth exponent is fitted over")
	fs.IntVar(&o.Repeat, "repeat", o.Repeat, "runs of each failover at least, more until they took a second of CPU; the fastest counts")
	fs.IntVar(&o.RoundTrips, "round-trips", o.RoundTrips, "control round trips to time")
	fs.IntVar(&o.Reverts, "reverts", o.Reverts, "write_pin reverts to time")
	fs.IntVar(&o.Frames, "frames", o.Frames, "datagrams to send through the LAN")
	fs.IntVar(&o.SweepSeeds, "sweep-seeds", o.SweepSeeds, "seeds of the sweep; 10000 measures the goal's sweep instead of estimating it")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the runs")
	baseline := fs.String("baseline", "", "compare with this baseline file (written by --save-baseline)")
	save := fs.String("save-baseline", "", "write the figures to this baseline file")
	threshold := fs.Float64("regression", 0.2, "with --baseline: a figure worse than the baseline's by more than this fraction is a regression")
	commit := fs.String("commit", "", "with --save-baseline: the commit to record (default: the binary's VCS stamp; go run has none)")
	if code, ok := parseFlags(fs, args, false, stderr); !ok {
		return code
	}
	if o.Repeat < 1 || o.RoundTrips < 1 || o.Reverts < 0 || o.Frames < 1 || o.SweepSeeds < 1 || *threshold < 0 {
		fmt.Fprintln(stderr, "picosim bench: --repeat, --round-trips, --frames and --sweep-seeds must be at least 1, --reverts and --regression not negative")
		return 2
	}
	var base *bench.Baseline
	if *baseline != "" {
		var err error
		if base, err = bench.LoadBaseline(*baseline); err != nil {
			fmt.Fprintf(stderr, "picosim bench: %v\n", err)
			return 2
		}
	}
	o.Progress = stderr

	load := bench.LoadAverage()
	fmt.Fprintf(stdout, "picosim bench: commit %s, %s, GOMAXPROCS %d, load %s (1, 5, 15 min)\n",
		orUnknown(firstOf(*commit, bench.Commit())), runtime.Version(), runtime.GOMAXPROCS(0), load)
	// More runnable threads than CPUs: caches are shared and wall time is
	// queueing; say so beside the figures.
	minute, _, _ := strings.Cut(load, " ")
	if l1, err := strconv.ParseFloat(minute, 64); err == nil && l1 > float64(runtime.NumCPU()) {
		fmt.Fprintf(stdout, "the load is above the machine's %d CPUs: expect CPU figures to move by 20%% or more, wall figures by more\n", runtime.NumCPU())
	}
	if base != nil {
		fmt.Fprintf(stdout, "against %s: commit %s, %s, GOMAXPROCS %d, load %s; REGRESSION: worse by more than %g%%\n",
			*baseline, orUnknown(base.Commit), base.Date, base.GOMAXPROCS, base.Load, 100**threshold)
	}
	fmt.Fprintln(stdout)

	code, regressions := 0, 0
	var all []bench.Figure
	var failed []string
	for _, s := range bench.Sections {
		if section != "all" && section != s.Name && !(section == "cluster" && (s.Name == "failover" || s.Name == "converge")) {
			continue
		}
		figs, err := s.Run(o)
		if err != nil {
			fmt.Fprintf(stderr, "picosim bench: %s: %v\n", s.Name, err)
			failed = append(failed, s.Name)
			code = 1
		}
		if len(figs) == 0 {
			continue
		}
		all = append(all, figs...)
		regressions += bench.Render(stdout, s.Title, figs, base, *threshold)
		for _, f := range figs {
			if f.MustMissed() {
				code = 1
			}
		}
	}
	fmt.Fprintf(stdout, "make test as CI runs it: goal ≤ 120 s, measured by make test. Load at the end: %s\n", bench.LoadAverage())

	if *save != "" {
		if err := bench.NewBaseline(all, *commit, load).Save(*save); err != nil {
			fmt.Fprintf(stderr, "picosim bench: --save-baseline: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "picosim bench: %d figures written to %s\n", len(all), *save)
		if len(failed) > 0 {
			fmt.Fprintf(stderr, "picosim bench: without those of %s, whose measurement failed\n", strings.Join(failed, ", "))
		}
	}
	if regressions > 0 {
		fmt.Fprintf(stderr, "picosim bench: %d figures regressed by more than %g%% against %s\n", regressions, 100**threshold, *baseline)
		code = 1
	}
	return code
}

// boardCounts is a flag of board counts: "100,200,500".
type boardCounts []int

func (b *boardCounts) String() string {
	s := make([]string, len(*b))
	for i, n := range *b {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (b *boardCounts) Set(s string) error {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a board count", f)
		}
		ns = append(ns, n)
	}
	*b = ns
	return nil
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func orUnknown(s string) string { return firstOf(s, "unknown") }
