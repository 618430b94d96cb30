package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// sweepFormat names the JSON document of a sweep; a change that old
// readers would misread changes it.
const sweepFormat = "picosim-sweep/1"

// sweepDoc is a sweep as JSON (--out, --json): everything its table shows,
// kept so that shards merge into the table one process would have printed.
// Every run is counted by outcome; failed and not-judged runs are kept in
// full; every failover time is kept (a float per run, sorted), so that the
// percentiles of a merge are exact.
type sweepDoc struct {
	Format string `json:"format"`
	Kind   string `json:"kind"` // "cluster" (picosim cluster's failover) or "scenario"
	What   string `json:"what"` // what ran, for the table's first line
	// Config is what merge compares: the flags of picosim cluster, every
	// one by name, or the scenario's name and the sha256 of its file.
	Config    map[string]string `json:"config"`
	FirstSeed uint64            `json:"first_seed"`
	LastSeed  uint64            `json:"last_seed"`
	// Shards are the shards of FirstSeed..LastSeed this document holds:
	// ["3/8"] from one shard, ["1/1"] for every seed of the range.
	Shards    []string       `json:"shards"`
	Runs      int            `json:"runs"`
	Outcomes  map[string]int `json:"outcomes"`
	FailoverS []float64      `json:"failover_s"` // simulated seconds, sorted
	Failed    []seedResult   `json:"failed"`     // by seed
	NotJudged []seedResult   `json:"not_judged"` // by seed
	WallS     float64        `json:"wall_s"`     // summed over the processes
	Processes int            `json:"processes"`  // how many processes ran it
}

// seedResult is one run: in a document, a failed or not-judged one.
type seedResult struct {
	Seed      uint64   `json:"seed"`
	Outcome   string   `json:"outcome"`
	FailoverS *float64 `json:"failover_s,omitempty"`
	Failures  []string `json:"failures,omitempty"`
	NotJudged []string `json:"not_judged,omitempty"`
	Replay    string   `json:"replay"`
	failed    bool     // while a sweep runs; in a document, Failed says it
}

func (d *sweepDoc) sortRuns() {
	sort.Float64s(d.FailoverS)
	bySeed := func(a, b seedResult) int { return compareUint(a.Seed, b.Seed) }
	slices.SortFunc(d.Failed, bySeed)
	slices.SortFunc(d.NotJudged, bySeed)
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// shardList parses Shards.
func (d *sweepDoc) shardList() ([]shard, error) {
	var out []shard
	for _, s := range d.Shards {
		sh, err := parseShard(s, func(string) string { return "" })
		if err != nil {
			return nil, fmt.Errorf("shards: %v", strings.TrimPrefix(err.Error(), "--shard "))
		}
		out = append(out, sh)
	}
	return out, nil
}

// holds reports whether the document's shards hold seed.
func holds(shards []shard, first, seed uint64) bool {
	if seed < first {
		return false
	}
	for _, s := range shards {
		if s.has(first, seed) {
			return true
		}
	}
	return false
}

// check finds what would make a document's table wrong: a file that is not
// a whole sweep document, or whose numbers do not add up.
func (d *sweepDoc) check() error {
	switch {
	case d.Format != sweepFormat:
		return fmt.Errorf("format %q: not a %s document (picosim sweep --out writes one)", d.Format, sweepFormat)
	case d.Kind != "cluster" && d.Kind != "scenario":
		return fmt.Errorf("kind %q: cluster or scenario", d.Kind)
	case len(d.Config) == 0:
		return errors.New("no config: nothing to tell whether shards are of one sweep")
	case d.LastSeed < d.FirstSeed || d.LastSeed-d.FirstSeed >= maxSweepRuns:
		return fmt.Errorf("seeds %d-%d: not a range of at most ten million", d.FirstSeed, d.LastSeed)
	case len(d.Shards) == 0:
		return errors.New("no shards")
	case d.WallS < 0 || d.Processes < 1:
		return fmt.Errorf("wall_s %v, processes %d: not a run's", d.WallS, d.Processes)
	}
	shards, err := d.shardList()
	if err != nil {
		return err
	}
	var want uint64
	for _, s := range shards {
		if err := s.fits(d.FirstSeed, d.LastSeed); err != nil {
			return fmt.Errorf("shards: %v", strings.TrimPrefix(err.Error(), "--shard "))
		}
		want += s.count(d.FirstSeed, d.LastSeed)
	}
	if uint64(d.Runs) != want {
		return fmt.Errorf("runs %d, but shards %s of seeds %d-%d hold %d", d.Runs, strings.Join(d.Shards, ", "), d.FirstSeed, d.LastSeed, want)
	}
	sum := 0
	for k, n := range d.Outcomes {
		if n < 0 || k == "" {
			return fmt.Errorf("outcome %q: %d runs", k, n)
		}
		sum += n
	}
	if sum != d.Runs {
		return fmt.Errorf("the outcomes add up to %d runs, not %d", sum, d.Runs)
	}
	if len(d.FailoverS) > d.Runs {
		return fmt.Errorf("%d failover times for %d runs", len(d.FailoverS), d.Runs)
	}
	for _, f := range d.FailoverS {
		if f < 0 || math.IsInf(f, 0) {
			return fmt.Errorf("failover time %v: not a time", f)
		}
	}
	seen := map[uint64]bool{}
	for _, list := range [][]seedResult{d.Failed, d.NotJudged} {
		for _, r := range list {
			switch {
			case !holds(shards, d.FirstSeed, r.Seed) || r.Seed > d.LastSeed:
				return fmt.Errorf("seed %d: not one of shards %s of seeds %d-%d", r.Seed, strings.Join(d.Shards, ", "), d.FirstSeed, d.LastSeed)
			case seen[r.Seed]:
				return fmt.Errorf("seed %d: listed twice", r.Seed)
			case r.Outcome == "" || r.Replay == "":
				return fmt.Errorf("seed %d: no outcome or no replay line", r.Seed)
			}
			seen[r.Seed] = true
		}
	}
	if len(d.Failed)+len(d.NotJudged) > d.Runs {
		return fmt.Errorf("%d failed and %d not judged of %d runs", len(d.Failed), len(d.NotJudged), d.Runs)
	}
	return nil
}

// readSweepDoc reads and checks a document; its errors name the file.
func readSweepDoc(path string) (*sweepDoc, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	var d sweepDoc
	if err := dec.Decode(&d); err != nil {
		if len(bytes.TrimSpace(src)) == 0 {
			err = errors.New("empty")
		}
		return nil, fmt.Errorf("%s: not a sweep document (picosim sweep --out or --json writes one): %v", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: more after the sweep document: one document a file", path)
	}
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	d.sortRuns()
	return &d, nil
}

func writeJSON(w io.Writer, d *sweepDoc) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeSweepDoc writes the document atomically: a temporary file in the
// same folder, renamed over path, so that a merge never reads half a shard
// (a killed pod, a full disk).
func writeSweepDoc(path string, d *sweepDoc) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if err := writeJSON(tmp, d); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// percentile is the nearest-rank percentile of sorted values: a value that
// occurred, the same however the runs were split.
func percentile(sorted []float64, p float64) float64 {
	k := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// seedsString is the range and, for part of it, which shards.
func (d *sweepDoc) seedsString() string {
	s := fmt.Sprintf("seeds %d-%d", d.FirstSeed, d.LastSeed)
	if len(d.Shards) == 1 && d.Shards[0] == "1/1" {
		return s
	}
	label := "shard"
	if len(d.Shards) > 1 {
		label = "shards"
	}
	return fmt.Sprintf("%s, %s %s", s, label, strings.Join(d.Shards, ", "))
}

// printSweep prints the table. Everything but the "wall:" line depends
// only on the runs, so shards merge to the table of one process.
func printSweep(w io.Writer, d *sweepDoc, wall string) {
	fmt.Fprintf(w, "picosim sweep: %d runs of %s; %s\n", d.Runs, d.What, d.seedsString())
	fmt.Fprintf(w, "wall: %s\n\n", wall)

	keys := make([]string, 0, len(d.Outcomes))
	for k := range d.Outcomes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := d.Outcomes[keys[i]], d.Outcomes[keys[j]]
		return a > b || a == b && keys[i] < keys[j]
	})
	width := max(4, len(fmt.Sprint(d.Runs)))
	fmt.Fprintf(w, "%*s  outcome\n", width, "runs")
	for _, k := range keys {
		fmt.Fprintf(w, "%*d  %s\n", width, d.Outcomes[k], k)
	}

	passed := d.Runs - len(d.Failed)
	fmt.Fprintf(w, "\npass rate %.2f%%: %d of %d runs passed", 100*float64(passed)/float64(max(d.Runs, 1)), passed, d.Runs)
	if len(d.NotJudged) > 0 {
		fmt.Fprintf(w, ", %d of them not judged", len(d.NotJudged))
	}
	fmt.Fprintln(w)
	if d.Kind == "cluster" && d.Config["kill-master-at"] != "0s" {
		if f := d.FailoverS; len(f) == 0 {
			fmt.Fprintln(w, "failover: in no run did the survivors agree on a new master")
		} else {
			fmt.Fprintf(w, "failover (simulated s, %d runs that failed over): p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
				len(f), percentile(f, 50), percentile(f, 90), percentile(f, 99), f[len(f)-1])
		}
	}
	for _, r := range d.Failed {
		why := ""
		if len(r.Failures) > 0 {
			why, _, _ = strings.Cut(r.Failures[0], "\n")
		}
		fmt.Fprintf(w, "\nseed %d failed: %s\n  replay: %s\n", r.Seed, why, r.Replay)
	}
	fmt.Fprintf(w, "\n%d passed, %d failed\n", passed, len(d.Failed))
}
