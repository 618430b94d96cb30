package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picosim/picosim/sim/scenario"
)

const sweepHelp = `Usage: picosim sweep [flags]                  the failover of 'picosim cluster'
       picosim sweep [flags] FILE.yaml        a scenario
       picosim sweep merge [flags] SWEEP.json...

Runs the failover of 'picosim cluster', or a scenario, once per seed, several
seeds at a time, and prints a table: how many runs passed and the pass rate,
the failover time's percentiles (simulated seconds, over the runs whose
survivors agreed on a new master), how many failed and on what, and how many
had a check the verdict could not judge because a fault of the radio fell
inside its window. Every failing seed is listed with the command that
replays it. The wall time has a line of its own ("wall: ..."); the last line
is "N passed, N failed". Every 5 s a progress line goes to standard error.

Past one machine: --shard I/N runs every N-th seed of the range starting
from its I-th (the seeds at positions p = I-1, I-1+N, ...), so shards 1/N to
N/N run every seed once. --shard auto/N takes I from $JOB_COMPLETION_INDEX+1
(what Kubernetes sets in an Indexed Job). --out writes the sweep as a JSON
document, --json prints it instead of the table, and 'picosim sweep merge'
turns shards' documents into the table one process would have printed.

Exit status: 0 when no run failed, 1 when one did (0 with --exit-zero), 2 on
bad flags.

Examples:
  picosim sweep --seeds 1-1000 --nodes 7 --kill-master-at 10s --duration 60s --loss 0.1
  picosim sweep scenarios/master-failure.yaml --seeds 1-200
  picosim sweep --seeds 1-10000 --nodes 20 --kill-master-at 10s --duration 60s --loss 0.1 --shard 3/8 --out shard-3.json
  picosim sweep merge shard-*.json
  make sweep

Flags:
`

// sweep is what one sweep process runs: the cluster's failover or a
// scenario, over its shard of a range of seeds.
type sweep struct {
	cluster     clusterFlags
	scen        *scenario.Scenario // nil: the cluster's failover
	file        string
	first, last uint64
	shard       shard
	workers     int
	progress    time.Duration
	json        bool
	out         string
	exitZero    bool
	config      map[string]string // what merge compares
	what        string            // the table's first line names it
	replay      string            // picosim cluster and its flags, for the replay lines
}

func sweepCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "merge" {
		return sweepMergeCmd(args[1:], stdout, stderr)
	}
	sw, code, ok := parseSweep(args, stderr)
	if !ok {
		return code
	}
	start := time.Now()
	d := sw.run(stderr)
	d.WallS, d.Processes = time.Since(start).Seconds(), 1
	// The table (or document) first: a sweep that ran is not lost to a
	// file that could not be written.
	if sw.json {
		writeJSON(stdout, d)
	} else {
		printSweep(stdout, d, fmt.Sprintf("%.1fs, %d at a time: %s runs per wall second", d.WallS, sw.workers, perSecond(d.Runs, d.WallS)))
	}
	if sw.out != "" {
		if err := writeSweepDoc(sw.out, d); err != nil {
			fmt.Fprintf(stderr, "picosim sweep: --out: %v\n", err)
			return 2
		}
	}
	if len(d.Failed) > 0 && !sw.exitZero {
		return 1
	}
	return 0
}

// parseSweep reads sweep's flags and its scenario file, if any. When it
// reports !ok, the command returns code (0 after --help, 2 on bad input).
func parseSweep(args []string, stderr io.Writer) (sw sweep, code int, ok bool) {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sweepHelp); fs.PrintDefaults() }
	sw.cluster.register(fs)
	seeds := fs.String("seeds", "1-100", "the seeds to run: FIRST-LAST, or a count from 1")
	shardFlag := fs.String("shard", "1/1", "run shard I of N: every N-th seed of the range from its I-th; auto/N: I is $JOB_COMPLETION_INDEX+1")
	fs.IntVar(&sw.workers, "workers", runtime.GOMAXPROCS(0), "runs at a time")
	fs.DurationVar(&sw.progress, "progress", 5*time.Second, "how often to print progress on standard error (0: never)")
	fs.BoolVar(&sw.json, "json", false, "print the sweep as a JSON document (what --out writes) instead of the table")
	fs.StringVar(&sw.out, "out", "", "also write the sweep as a JSON document to this file, for 'picosim sweep merge'")
	fs.BoolVar(&sw.exitZero, "exit-zero", false, "exit 0 even when a run failed: for a shard whose verdict is its merge's")
	files, code, ok := parseInterleaved(fs, args, stderr)
	if !ok {
		return sw, code, false
	}
	fail := func(format string, a ...any) (sweep, int, bool) {
		fmt.Fprintf(stderr, "picosim sweep: "+format+"\n", a...)
		return sw, 2, false
	}
	for _, f := range files {
		if !strings.HasSuffix(f, ".yaml") && !strings.HasSuffix(f, ".yml") {
			return fail("unexpected argument %q (flags start with --; a scenario file ends in .yaml)", f)
		}
	}
	if len(files) > 1 {
		return fail("one scenario file at a time, not %d", len(files))
	}
	var err error
	if sw.first, sw.last, err = seedRange(*seeds); err != nil {
		return fail("%v", err)
	}
	if sw.shard, err = parseShard(*shardFlag, os.Getenv); err == nil {
		err = sw.shard.fits(sw.first, sw.last)
	}
	if err != nil {
		return fail("%v", err)
	}
	if sw.workers < 1 {
		return fail("--workers %d: at least 1", sw.workers)
	}
	if dir := filepath.Dir(sw.out); sw.out != "" {
		// Before the runs, not after them.
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return fail("--out %s: no folder %s to write it in", sw.out, dir)
		}
	}
	if sw.progress < 0 {
		return fail("--progress %v: must not be negative (0: no progress lines)", sw.progress)
	}
	if len(files) == 0 {
		if err := sw.cluster.validate(); err != nil {
			return fail("%v", err)
		}
		var flags []string
		sw.config, flags = clusterConfig(fs)
		sw.replay = strings.Join(append([]string{"picosim cluster"}, flags...), " ")
		c := &sw.cluster
		sw.what = fmt.Sprintf("%d boards, %s radio, %s, %v simulated", c.nodes, c.radio, c.linkString(), c.duration)
		if c.killAt > 0 {
			sw.what += fmt.Sprintf(", master killed at %v", c.killAt)
		}
		return sw, 0, true
	}

	// A scenario file: it sets its own cluster, so a cluster flag is a
	// mistake, not something to ignore.
	var clash string
	fs.Visit(func(f *flag.Flag) {
		if _, ok := clusterFlagNames()[f.Name]; ok && clash == "" {
			clash = f.Name
		}
	})
	if clash != "" {
		return fail("--%s: %s sets its own cluster; give cluster flags or a scenario file, not both", clash, files[0])
	}
	sw.file = files[0]
	src, err := os.ReadFile(sw.file)
	if err != nil {
		return fail("%v", err)
	}
	if sw.scen, err = scenario.Parse(sw.file, src); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return sw, 2, false
	}
	if why := sw.scen.Unsupported("sim"); why != "" {
		return fail("%s: %s", sw.file, why)
	}
	// The name and the content, not the path: shards may name the file
	// differently, and an edited file is a different sweep.
	sum := sha256.Sum256(src)
	sw.config = map[string]string{"scenario": sw.scen.Name, "sha256": hex.EncodeToString(sum[:])}
	sw.what = fmt.Sprintf("scenario %q (%s)", sw.scen.Name, sw.file)
	return sw, 0, true
}

// parseInterleaved parses flags that may come after the arguments as well
// as before them (picosim sweep FILE.yaml --seeds 1-100), which package flag
// alone does not: it stops at the first argument.
func parseInterleaved(fs *flag.FlagSet, args []string, stderr io.Writer) (positional []string, code int, ok bool) {
	for {
		if code, ok := parseFlags(fs, args, true, stderr); !ok {
			return nil, code, false
		}
		if fs.NArg() == 0 {
			return positional, 0, true
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// clusterFlagNames are the flags of clusterFlags.register.
func clusterFlagNames() map[string]*flag.Flag {
	var f clusterFlags
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	f.register(fs)
	names := map[string]*flag.Flag{}
	fs.VisitAll(func(fl *flag.Flag) { names[fl.Name] = fl })
	return names
}

// clusterConfig is the cluster a sweep runs, every flag of
// clusterFlags.register with its value (what merge compares), and the
// flags of its replay line: those not at their defaults, in name order, so
// that every shard writes the same line however its flags were spelled.
func clusterConfig(fs *flag.FlagSet) (config map[string]string, flags []string) {
	config = map[string]string{}
	defaults := clusterFlagNames()
	fs.VisitAll(func(fl *flag.Flag) {
		def, ok := defaults[fl.Name]
		if !ok {
			return
		}
		v := fl.Value.String()
		config[fl.Name] = v
		if v == def.DefValue {
			return
		}
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			flags = append(flags, "--"+fl.Name+"="+v)
			if v == "true" {
				flags[len(flags)-1] = "--" + fl.Name
			}
			return
		}
		flags = append(flags, "--"+fl.Name, v)
	})
	return config, flags
}

// run runs the shard's seeds, sw.workers at a time, and returns them as a
// sweep document (without its wall time).
func (sw *sweep) run(stderr io.Writer) *sweepDoc {
	n := sw.shard.count(sw.first, sw.last)
	results := make([]seedResult, n)
	var done atomic.Int64
	stop := startProgress(stderr, sw.progress, n, &done)
	next := make(chan uint64)
	var wg sync.WaitGroup
	for range sw.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				results[k] = sw.runSeed(sw.shard.seed(sw.first, k))
				done.Add(1)
			}
		}()
	}
	for k := range n {
		next <- k
	}
	close(next)
	wg.Wait()
	stop()

	d := &sweepDoc{Format: sweepFormat, Kind: "cluster", What: sw.what, Config: sw.config,
		FirstSeed: sw.first, LastSeed: sw.last, Shards: []string{sw.shard.String()},
		Runs: int(n), Outcomes: map[string]int{}, FailoverS: []float64{}, Failed: []seedResult{}, NotJudged: []seedResult{}}
	if sw.scen != nil {
		d.Kind = "scenario"
	}
	for _, r := range results {
		d.Outcomes[r.Outcome]++
		if r.FailoverS != nil {
			d.FailoverS = append(d.FailoverS, *r.FailoverS)
		}
		switch {
		case r.failed:
			d.Failed = append(d.Failed, r)
		case len(r.NotJudged) > 0:
			d.NotJudged = append(d.NotJudged, r)
		}
	}
	d.sortRuns()
	return d
}

// runSeed runs one seed and judges it. Only failed and not-judged runs
// keep more than their outcome and failover time.
func (sw *sweep) runSeed(seed uint64) seedResult {
	r := seedResult{Seed: seed}
	if sw.scen != nil {
		res := scenario.Run(sw.scen, scenario.Options{Seed: &seed})
		r.Replay = res.Replay
		switch {
		case !res.Passed:
			r.Outcome, r.Failures, r.failed = "failed: "+scenarioFailureKind(res.Failures), res.Failures, true
		case res.NotJudged != "":
			r.Outcome, r.NotJudged = "passed, not judged: "+noteKind([]string{res.NotJudged}), []string{res.NotJudged}
		case res.Skipped != "":
			// The targets were checked before the sweep: the simulator
			// refused the scenario's cluster, which no seed changes.
			r.Outcome, r.Failures, r.failed = "failed: the simulator cannot run it", []string{res.Skipped}, true
		default:
			r.Outcome = "passed"
		}
		return r
	}
	r.Replay = fmt.Sprintf("%s --seed %d", sw.replay, seed)
	s, err := sw.cluster.failover(seed).Run()
	r.FailoverS = s.FailoverS
	switch {
	case err != nil:
		r.Outcome, r.Failures, r.failed = "error: "+err.Error(), []string{err.Error()}, true
	case !s.Passed():
		r.Outcome, r.Failures, r.failed = "failed: "+failureKind(s.Failures), s.Failures, true
	case len(s.NotJudged) > 0:
		r.Outcome, r.NotJudged = "passed, not judged: "+noteKind(s.NotJudged), s.NotJudged
	default:
		r.Outcome = "passed"
	}
	return r
}

// startProgress prints a progress line every `every` until stop is called:
// time-based, so a slow sweep is not silent and a fast one not noisy.
func startProgress(w io.Writer, every time.Duration, total uint64, done *atomic.Int64) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	start := time.Now()
	tick := time.NewTicker(every)
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				fmt.Fprintln(w, progressLine(uint64(done.Load()), total, time.Since(start)))
			}
		}
	}()
	return func() { tick.Stop(); close(quit); <-finished }
}

func progressLine(done, total uint64, elapsed time.Duration) string {
	line := fmt.Sprintf("picosim sweep: %d of %d runs (%.0f%%) in %v", done, total, 100*float64(done)/float64(max(total, 1)), elapsed.Round(time.Second))
	if done == 0 {
		return line
	}
	left := time.Duration(float64(elapsed) / float64(done) * float64(total-done))
	return line + fmt.Sprintf(", %s runs/s, about %v left", perSecond(int(done), elapsed.Seconds()), left.Round(time.Second))
}

func perSecond(runs int, seconds float64) string {
	if seconds <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(runs)/seconds)
}

// seedRange reads "A-B" or a count "N" (1-N).
func seedRange(s string) (first, last uint64, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return 0, 0, fmt.Errorf("--seeds %q: FIRST-LAST (1-1000) or a count", s)
		}
		return 1, n, nil
	}
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || last < first {
		return 0, 0, fmt.Errorf("--seeds %q: FIRST-LAST with FIRST <= LAST (1-1000)", s)
	}
	if last-first >= maxSweepRuns {
		return 0, 0, fmt.Errorf("--seeds %q: at most ten million runs", s)
	}
	return first, last, nil
}

const maxSweepRuns = 10_000_000

// failureKind names what failed first: the words before the first colon
// of a failure ("12.3s: safety: ..." is "safety").
func failureKind(failures []string) string {
	if len(failures) == 0 {
		return "unknown"
	}
	f := failures[0]
	if _, rest, ok := strings.Cut(f, ": "); ok {
		f = rest
	}
	if k, _, ok := strings.Cut(f, ":"); ok && len(k) < 40 {
		return k
	}
	if strings.HasPrefix(f, "the boards had not agreed") {
		return "not agreed by the kill"
	}
	return f
}

// scenarioFailureKind names a scenario's failed step and expectation:
// "step 1 at 10.000s: expected master pico2 within 10s: the master is
// pico1" is "step 1: expected master pico2 within 10s".
func scenarioFailureKind(failures []string) string {
	if len(failures) == 0 {
		return "unknown"
	}
	line, _, _ := strings.Cut(failures[0], "\n")
	step, rest, ok := strings.Cut(line, " at ")
	if !ok || !strings.HasPrefix(step, "step ") {
		return line
	}
	if _, rest, ok = strings.Cut(rest, ": "); !ok {
		return line
	}
	what, _, _ := strings.Cut(rest, ":")
	return step + ": " + what
}

// noteKind names the check a run could not judge ("agreement"), and the
// kind of fault.
func noteKind(notes []string) string {
	check, _, _ := strings.Cut(notes[0], " not judged")
	what := "a radio fault in its window"
	if strings.Contains(notes[0], "lost its WiFi association") {
		what = "a board lost WiFi in its window"
	} else if strings.Contains(notes[0], "joined WiFi again") {
		what = "a board rejoined WiFi in its window"
	}
	return check + " (" + what + ")"
}
