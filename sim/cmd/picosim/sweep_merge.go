package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

const sweepMergeHelp = `Usage: picosim sweep merge [--json] [--out FILE] SWEEP.json...

Merges the JSON documents of sweeps (picosim sweep --out, or --json) and
prints the table one process running all their seeds would have printed,
but for its "wall:" line, which sums the processes' wall time.

The documents must be of one sweep: the same flags of picosim cluster (or
the same scenario file, by content) and the same range of seeds; merge names
the setting that differs. Their shards must not overlap: two documents that
ran the same seed are refused. Shards missing from the range are named, and
the merge exits 1: a sweep that did not run every seed has not shown that
they pass. A merged document merges again.

Exit status: 0 when every seed of the range ran and none failed, 1 when a
run failed or shards are missing, 2 on bad input (a file that is not a sweep
document, documents of different sweeps, overlapping shards).

Examples:
  picosim sweep merge shard-*.json
  picosim sweep merge --out sweep.json shards/*.json
  picosim sweep merge --json shard-1.json shard-2.json | jq .outcomes

Flags:
`

func sweepMergeCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sweep merge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sweepMergeHelp); fs.PrintDefaults() }
	asJSON := fs.Bool("json", false, "print the merged document instead of the table")
	out := fs.String("out", "", "also write the merged document to this file")
	files, code, ok := parseInterleaved(fs, args, stderr)
	if !ok {
		return code
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "picosim sweep merge: no sweep documents given (see picosim sweep merge --help)")
		return 2
	}
	docs := make([]*sweepDoc, len(files))
	for i, f := range files {
		d, err := readSweepDoc(f)
		if err != nil {
			fmt.Fprintf(stderr, "picosim sweep merge: %v\n", err)
			return 2
		}
		docs[i] = d
	}
	d, missing, err := mergeSweeps(docs, files)
	if err != nil {
		fmt.Fprintf(stderr, "picosim sweep merge: %v\n", err)
		return 2
	}
	if *out != "" {
		if err := writeSweepDoc(*out, d); err != nil {
			fmt.Fprintf(stderr, "picosim sweep merge: --out: %v\n", err)
			return 2
		}
	}
	if *asJSON {
		writeJSON(stdout, d)
	} else {
		procs := "processes"
		if d.Processes == 1 {
			procs = "process"
		}
		printSweep(stdout, d, fmt.Sprintf("%.1fs summed over %d %s: %s runs per wall second each", d.WallS, d.Processes, procs, perSecond(d.Runs, d.WallS)))
	}
	if missing != "" {
		fmt.Fprintf(stderr, "picosim sweep merge: incomplete: %s\n", missing)
		return 1
	}
	if len(d.Failed) > 0 {
		return 1
	}
	return 0
}

// mergeSweeps merges checked documents of one sweep (names are their
// files, for errors). missing, when not empty, says which seeds of the
// range none of them ran.
func mergeSweeps(docs []*sweepDoc, names []string) (merged *sweepDoc, missing string, err error) {
	first := docs[0]
	for i, d := range docs[1:] {
		if err := sameSweep(first, d, names[0], names[i+1]); err != nil {
			return nil, "", err
		}
	}
	// Which seeds ran, by position in the range: two documents that ran one
	// seed would count it twice.
	total := first.LastSeed - first.FirstSeed + 1
	ran := make([]bool, total)
	count := uint64(0)
	for i, d := range docs {
		shards, _ := d.shardList() // checked when read
		for _, s := range shards {
			for k := range s.count(first.FirstSeed, first.LastSeed) {
				seed := s.seed(first.FirstSeed, k)
				if p := seed - first.FirstSeed; !ran[p] {
					ran[p] = true
					count++
					continue
				}
				for j, other := range docs[:i] {
					if held, _ := other.shardList(); holds(held, first.FirstSeed, seed) {
						return nil, "", fmt.Errorf("%s and %s both ran seed %d (shards %s and %s): merge each shard once",
							names[j], names[i], seed, strings.Join(other.Shards, ", "), strings.Join(d.Shards, ", "))
					}
				}
				return nil, "", fmt.Errorf("%s: its shards %s overlap at seed %d", names[i], strings.Join(d.Shards, ", "), seed)
			}
		}
	}

	m := &sweepDoc{Format: sweepFormat, Kind: first.Kind, What: first.What, Config: first.Config,
		FirstSeed: first.FirstSeed, LastSeed: first.LastSeed, Shards: []string{"1/1"}, Outcomes: map[string]int{}}
	for _, d := range docs {
		m.Runs += d.Runs
		for k, n := range d.Outcomes {
			m.Outcomes[k] += n
		}
		m.FailoverS = append(m.FailoverS, d.FailoverS...)
		m.Failed = append(m.Failed, d.Failed...)
		m.NotJudged = append(m.NotJudged, d.NotJudged...)
		m.WallS += d.WallS
		m.Processes += d.Processes
	}
	m.FailoverS = append([]float64{}, m.FailoverS...) // [] rather than null in JSON
	m.Failed = append([]seedResult{}, m.Failed...)
	m.NotJudged = append([]seedResult{}, m.NotJudged...)
	m.sortRuns()
	if count < total {
		m.Shards = nil
		for _, d := range docs {
			m.Shards = append(m.Shards, d.Shards...)
		}
		shards, _ := m.shardList()
		slices.SortFunc(shards, func(a, b shard) int { return cmp.Or(cmp.Compare(a.n, b.n), cmp.Compare(a.i, b.i)) })
		m.Shards = m.Shards[:0]
		for _, s := range shards {
			m.Shards = append(m.Shards, s.String())
		}
		missing = missingShards(shards, total-count, total, ran, first.FirstSeed)
	}
	return m, missing, nil
}

// missingShards says which seeds did not run: by shard when every shard
// is one of N, else by count and the first of them.
func missingShards(have []shard, missing, total uint64, ran []bool, first uint64) string {
	n := have[0].n
	present := map[uint64]bool{}
	for _, s := range have {
		if s.n != n {
			n = 0
			break
		}
		present[s.i] = true
	}
	what := fmt.Sprintf("%d of %d seeds did not run", missing, total)
	if n == 0 {
		p := slices.Index(ran, false)
		return fmt.Sprintf("%s (the first: seed %d)", what, first+uint64(p))
	}
	var absent []string
	for i := uint64(1); i <= n; i++ {
		if !present[i] {
			absent = append(absent, shard{i, n}.String())
		}
	}
	verb := "is"
	if len(absent) > 1 {
		verb = "are"
	}
	return fmt.Sprintf("shard %s %s missing: %s", strings.Join(absent, ", "), verb, what)
}

// sameSweep refuses documents of different sweeps, naming what differs.
func sameSweep(a, b *sweepDoc, an, bn string) error {
	if a.Kind != b.Kind {
		return fmt.Errorf("%s is a sweep of a %s, %s of a %s: not the same sweep", bn, b.Kind, an, a.Kind)
	}
	keys := map[string]bool{}
	for k := range a.Config {
		keys[k] = true
	}
	for k := range b.Config {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		av, aok := a.Config[k]
		bv, bok := b.Config[k]
		if av != bv || aok != bok {
			return fmt.Errorf("%s has %s, but %s has %s: not the same sweep", bn, setting(b, k), an, setting(a, k))
		}
	}
	if a.FirstSeed != b.FirstSeed || a.LastSeed != b.LastSeed {
		return fmt.Errorf("%s has seeds %d-%d, but %s has seeds %d-%d: the shards of a sweep share its range",
			bn, b.FirstSeed, b.LastSeed, an, a.FirstSeed, a.LastSeed)
	}
	return nil
}

// setting is one of a document's settings as a user would write it.
func setting(d *sweepDoc, key string) string {
	v, ok := d.Config[key]
	if !ok {
		v = "(none)"
	}
	switch {
	case d.Kind == "cluster":
		return "--" + key + " " + v
	case key == "sha256":
		return "a scenario file of sha256 " + v
	}
	return key + " " + v
}
