package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/picosim/picosim/sim"
)

const sweepHelp = `Usage: picosim sweep [flags]

Runs the failover of 'picosim cluster' once per seed, several seeds at a
time, and prints a table: how many runs passed, how many failed and on what,
and how many had a check the verdict could not judge because a fault of the
radio fell inside its window (named in the verdict). Every failing seed is
listed with the command that replays it. A run prints a progress line now and
then on standard error. Exit status: 0 when no run failed, 1 when one did,
2 on bad flags.

Examples:
  picosim sweep --seeds 1-1000 --nodes 7 --kill-master-at 10s --duration 60s --loss 0.1
  picosim sweep --seeds 1-10000 --nodes 20 --kill-master-at 10s --duration 60s --loss 0.1 --json
  make sweep

Flags:
`

func sweepCmd(args []string, stdout, stderr io.Writer) int {
	var f clusterFlags
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sweepHelp); fs.PrintDefaults() }
	f.register(fs)
	seeds := fs.String("seeds", "1-100", "the seeds to run: FIRST-LAST, or a count from 1")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "runs at a time")
	asJSON := fs.Bool("json", false, "one JSON line per failing or not-judged seed, then the summary")
	if code, ok := parseFlags(fs, args, false, stderr); !ok {
		return code
	}
	first, last, err := seedRange(*seeds)
	if err == nil {
		err = f.validate()
	}
	if err == nil && *workers < 1 {
		err = fmt.Errorf("--workers %d: at least 1", *workers)
	}
	if err != nil {
		fmt.Fprintf(stderr, "picosim sweep: %v\n", err)
		return 2
	}

	type result struct {
		seed uint64
		s    sim.Summary
		err  error
	}
	n := int(last - first + 1)
	results := make([]result, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	start := time.Now()
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				seed := first + uint64(i)
				s, err := f.failover(seed).Run()
				results[i] = result{seed, s, err}
				mu.Lock()
				if done++; done%500 == 0 && done < n {
					fmt.Fprintf(stderr, "picosim sweep: %d of %d runs, %.0fs\n", done, n, time.Since(start).Seconds())
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()

	// The table: one row per outcome, failures by what failed first.
	counts := map[string]int{}
	var failed, unjudged []result
	for _, r := range results {
		switch {
		case r.err != nil:
			counts["error: "+r.err.Error()]++
			failed = append(failed, r)
		case !r.s.Passed():
			counts["failed: "+failureKind(r.s.Failures)]++
			failed = append(failed, r)
		case len(r.s.NotJudged) > 0:
			counts["passed, not judged: "+noteKind(r.s.NotJudged)]++
			unjudged = append(unjudged, r)
		default:
			counts["passed"]++
		}
	}
	replay := func(seed uint64) string {
		var out []string
		skip := false
		for _, a := range args {
			switch {
			case skip:
				skip = false
			case a == "--seeds" || a == "-seeds" || a == "--workers" || a == "-workers":
				skip = true
			case strings.HasPrefix(a, "--seeds=") || strings.HasPrefix(a, "-seeds=") || strings.HasPrefix(a, "--workers=") || a == "--json" || a == "-json":
			default:
				out = append(out, a)
			}
		}
		return fmt.Sprintf("picosim cluster %s --seed %d", strings.Join(out, " "), seed)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range append(failed, unjudged...) {
			enc.Encode(map[string]any{"seed": r.seed, "passed": r.err == nil && r.s.Passed(), "failures": r.s.Failures,
				"not_judged": r.s.NotJudged, "replay": replay(r.seed)})
		}
		enc.Encode(map[string]any{"summary": map[string]any{"runs": n, "outcomes": counts, "wall_s": time.Since(start).Seconds()}})
	} else {
		fmt.Fprintf(stdout, "picosim sweep: %d runs of %d boards, seeds %d-%d, %s radio, %s, %d at a time, %.1fs\n\n",
			n, f.nodes, first, last, f.radio, f.linkString(), *workers, time.Since(start).Seconds())
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			return counts[keys[i]] > counts[keys[j]] || counts[keys[i]] == counts[keys[j]] && keys[i] < keys[j]
		})
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "runs\t  outcome\t")
		for _, k := range keys {
			fmt.Fprintf(tw, "%d\t  %s\t\n", counts[k], k)
		}
		tw.Flush()
		for _, r := range failed {
			why := ""
			if r.err != nil {
				why = r.err.Error()
			} else if len(r.s.Failures) > 0 {
				why = r.s.Failures[0]
			}
			fmt.Fprintf(stdout, "\nseed %d failed: %s\n  replay: %s\n", r.seed, why, replay(r.seed))
		}
		fmt.Fprintf(stdout, "\n%d passed, %d failed\n", n-len(failed), len(failed))
	}
	if len(failed) > 0 {
		return 1
	}
	return 0
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
	if last-first >= 10_000_000 {
		return 0, 0, fmt.Errorf("--seeds %q: at most ten million runs", s)
	}
	return first, last, nil
}

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
