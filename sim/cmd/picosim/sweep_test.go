package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A sweep small enough to run often, and with all three kinds of run at
// these seeds: passed, failed (the kill at 6 s comes before some clusters
// settle at 30% loss) and not judged (a radio fault).
var smallSweep = []string{"sweep", "--seeds", "1-24", "--nodes", "5", "--kill-master-at", "6s", "--duration", "20s", "--loss", "0.3", "--progress", "0"}

func withArgs(base []string, more ...string) []string {
	return append(append([]string{}, base...), more...)
}

// withoutWall drops the table's "wall:" line, the one line that depends on
// how fast the machine was rather than on the runs.
func withoutWall(table string) string {
	var keep []string
	for _, l := range strings.Split(table, "\n") {
		if !strings.HasPrefix(l, "wall: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func readDoc(t *testing.T, path string) *sweepDoc {
	t.Helper()
	d, err := readSweepDoc(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSweepShardsCoverEverySeedOnce(t *testing.T) {
	for total := uint64(1); total <= 40; total++ {
		first := uint64(1000)
		last := first + total - 1
		for n := uint64(1); n <= total; n++ {
			runs := make([]int, total)
			for i := uint64(1); i <= n; i++ {
				s := shard{i, n}
				for k := range s.count(first, last) {
					seed := s.seed(first, k)
					if seed < first || seed > last || !s.has(first, seed) {
						t.Fatalf("shard %v of %d-%d: seed %d (k=%d)", s, first, last, seed, k)
					}
					runs[seed-first]++
				}
			}
			for p, r := range runs {
				if r != 1 {
					t.Fatalf("%d seeds in %d shards: seed %d ran %d times", total, n, first+uint64(p), r)
				}
			}
		}
	}
}

func TestSweepShardFlag(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == jobIndexEnv {
				return v
			}
			return ""
		}
	}
	for _, c := range []struct {
		flag, index, want, err string
	}{
		{"3/8", "", "3/8", ""},
		{"1/1", "", "1/1", ""},
		{"auto/8", "0", "1/8", ""},
		{"auto/8", "7", "8/8", ""},
		{"auto/8", "", "", "$JOB_COMPLETION_INDEX is not set"},
		{"auto/8", "8", "", `$JOB_COMPLETION_INDEX is "8", but the shards are 0 to 7`},
		{"auto/8", "x", "", `$JOB_COMPLETION_INDEX is "x"`},
		{"0/8", "", "", "I must be 1 to 8"},
		{"9/8", "", "", "I must be 1 to 8"},
		{"3", "", "", "I/N, such as 3/8"},
		{"3/0", "", "", "N must be a whole number of shards"},
		{"a/b", "", "", "N must be a whole number of shards"},
	} {
		s, err := parseShard(c.flag, env(c.index))
		switch {
		case c.err == "" && (err != nil || s.String() != c.want):
			t.Errorf("%s with index %q: %v, %v; want %s", c.flag, c.index, s, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s with index %q: error %v, want one with %q", c.flag, c.index, err, c.err)
		}
	}
	// Through the command: exit 2 and the reason.
	t.Setenv(jobIndexEnv, "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{withArgs(smallSweep, "--shard", "9/8"), "picosim sweep: --shard \"9/8\": I must be 1 to 8"},
		{withArgs(smallSweep, "--shard", "auto/8"), "$JOB_COMPLETION_INDEX is not set"},
		{withArgs(smallSweep, "--shard", "1/25"), "seeds 1-24 are 24 runs, fewer than 25 shards"},
	} {
		code, _, errOut := picosim(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args[len(c.args)-2:], code, errOut, c.want)
		}
	}
}

// The "done when": shards of 1..N merge to the table of one run,
// and to the same document but for the wall time.
func TestSweepShardsMergeToTheUnshardedTable(t *testing.T) {
	dir := t.TempDir()
	code, whole, errOut := picosim(t, withArgs(smallSweep, "--out", dir+"/whole.json")...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (seeds that fail)\n%s%s", code, whole, errOut)
	}
	for _, want := range []string{
		"picosim sweep: 24 runs of 5 boards, picow radio, loss 0.3", "; seeds 1-24\nwall: ",
		"  passed\n", "  failed: not agreed by the kill\n", "  passed, not judged: ",
		"pass rate 87.50%: 21 of 24 runs passed, 2 of them not judged\n",
		"failover (simulated s, 20 runs that failed over): p50 ",
		"\nseed 2 failed: 6.000s: the boards had not agreed",
		"  replay: picosim cluster --duration 20s --kill-master-at 6s --loss 0.3 --seed 2\n",
	} {
		if !strings.Contains(whole, want) {
			t.Errorf("the table has no %q:\n%s", want, whole)
		}
	}
	if !strings.HasSuffix(whole, "\n21 passed, 3 failed\n") {
		t.Errorf("the table does not end with its count:\n%s", whole)
	}
	wholeDoc := readDoc(t, dir+"/whole.json")

	for _, n := range []int{1, 2, 3, 5} {
		var files []string
		for i := 1; i <= n; i++ {
			f := fmt.Sprintf("%s/shard-%d-of-%d.json", dir, i, n)
			if code, out, errOut := picosim(t, withArgs(smallSweep, "--shard", fmt.Sprintf("%d/%d", i, n), "--out", f, "--exit-zero")...); code != 0 {
				t.Fatalf("shard %d/%d: exit %d\n%s%s", i, n, code, out, errOut)
			}
			files = append(files, f)
		}
		// In any order: the last shard first.
		files = append(files[n-1:], files[:n-1]...)
		code, merged, errOut := picosim(t, withArgs([]string{"sweep", "merge", "--out", dir + "/merged.json"}, files...)...)
		if code != 1 || errOut != "" {
			t.Fatalf("merge of %d shards: exit %d, want 1 (failed seeds)\n%s", n, code, errOut)
		}
		if withoutWall(merged) != withoutWall(whole) {
			t.Errorf("%d shards merge to\n%s\nnot\n%s", n, merged, whole)
		}
		m := readDoc(t, dir+"/merged.json")
		if m.Processes != n {
			t.Errorf("%d shards: processes %d", n, m.Processes)
		}
		m.WallS, m.Processes = wholeDoc.WallS, wholeDoc.Processes
		if !reflect.DeepEqual(m, wholeDoc) {
			t.Errorf("%d shards: the merged document differs from the whole run's:\n%+v\n%+v", n, m, wholeDoc)
		}
	}

	// A merge of part of the shards says so, and merges again with the rest.
	part := dir + "/part.json"
	code, out, errOut := picosim(t, "sweep", "merge", "--out", part, dir+"/shard-1-of-3.json", dir+"/shard-3-of-3.json")
	if code != 1 || !strings.Contains(errOut, "incomplete: shard 2/3 is missing: 8 of 24 seeds did not run") ||
		!strings.Contains(out, "16 runs of 5 boards") || !strings.Contains(out, "seeds 1-24, shards 1/3, 3/3") {
		t.Fatalf("a merge of 2 shards of 3: exit %d\n%s%s", code, out, errOut)
	}
	_, again, _ := picosim(t, "sweep", "merge", part, dir+"/shard-2-of-3.json")
	if withoutWall(again) != withoutWall(whole) {
		t.Errorf("a merge of a merge:\n%s\nnot\n%s", again, whole)
	}
}

func TestSweepJSONIsTheDocumentOutWrites(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := picosim(t, withArgs(smallSweep, "--json", "--out", dir+"/s.json")...)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var printed sweepDoc
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("--json printed no document: %v\n%s", err, out)
	}
	written := readDoc(t, dir+"/s.json")
	if !reflect.DeepEqual(&printed, written) {
		t.Fatalf("--json and --out differ:\n%+v\n%+v", printed, written)
	}
	if written.Runs != 24 || len(written.FailoverS) != 20 || len(written.Failed) != 3 || len(written.NotJudged) != 2 ||
		written.Config["loss"] != "0.3" || written.Config["nodes"] != "5" {
		t.Fatalf("document %+v", written)
	}
	if leftovers, _ := filepath.Glob(dir + "/.*"); len(leftovers) > 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
	// Refused before the runs, not after them.
	if code, out, errOut := picosim(t, withArgs(smallSweep, "--out", dir+"/no/such/s.json")...); code != 2 || out != "" ||
		!strings.Contains(errOut, "--out "+dir+"/no/such/s.json: no folder "+dir+"/no/such to write it in") {
		t.Fatalf("--out into a missing folder: exit %d %s%s", code, out, errOut)
	}
	// A folder where the file should be: the table is printed all the same.
	os.Mkdir(dir+"/taken", 0o755)
	if code, out, errOut := picosim(t, withArgs(smallSweep, "--out", dir+"/taken")...); code != 2 ||
		!strings.HasSuffix(out, "21 passed, 3 failed\n") || !strings.Contains(errOut, "picosim sweep: --out: ") {
		t.Fatalf("--out onto a folder: exit %d %s%s", code, out, errOut)
	}
	if leftovers, _ := filepath.Glob(dir + "/.*"); len(leftovers) > 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
}

func TestSweepMergeRefusesWhatIsNotOneSweep(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, args ...string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if code, _, errOut := picosim(t, withArgs(args, "--out", f, "--exit-zero")...); code != 0 {
			t.Fatalf("%s: exit %d %s", name, code, errOut)
		}
		return f
	}
	few := withArgs(smallSweep, "--seeds", "1-8")
	half1 := write("half1.json", withArgs(few, "--shard", "1/2")...)
	half2 := write("half2.json", withArgs(few, "--shard", "2/2")...)
	quarter := write("quarter.json", withArgs(few, "--shard", "1/4")...)
	lossy := write("lossy.json", withArgs(few, "--shard", "2/2", "--loss", "0.2")...)
	longer := write("longer.json", withArgs(smallSweep, "--seeds", "1-10", "--shard", "2/2")...)
	scen := filepath.Join(dir, "s.yaml")
	os.WriteFile(scen, []byte("name: s\nseed: 1\ntopology:\n  boards: 2\nsteps:\n  - expect: {eventually: 10s, master_is: pico1}\n"), 0o644)
	scenDoc := write("scenario.json", "sweep", scen, "--seeds", "1-8", "--shard", "2/2", "--progress", "0")

	bad := func(name, content string) string {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(content), 0o644)
		return f
	}
	good, _ := os.ReadFile(half2)
	var doc map[string]any
	json.Unmarshal(good, &doc)
	edit := func(name, key string, v any) string {
		d := map[string]any{}
		for k, x := range doc {
			d[k] = x
		}
		d[key] = v
		b, _ := json.Marshal(d)
		return bad(name, string(b))
	}
	for _, c := range []struct {
		files []string
		code  int
		want  string
	}{
		{[]string{half1, lossy}, 2, "lossy.json has --loss 0.2, but " + half1 + " has --loss 0.3: not the same sweep"},
		{[]string{half1, longer}, 2, "longer.json has seeds 1-10, but " + half1 + " has seeds 1-8: the shards of a sweep share its range"},
		{[]string{half1, scenDoc}, 2, "scenario.json is a sweep of a scenario, " + half1 + " of a cluster"},
		{[]string{half1, quarter}, 2, half1 + " and " + quarter + " both ran seed 1 (shards 1/2 and 1/4): merge each shard once"},
		{[]string{half1, half1}, 2, "both ran seed 1"},
		{[]string{half1}, 1, "incomplete: shard 2/2 is missing: 4 of 8 seeds did not run"},
		{[]string{quarter, half2}, 1, "incomplete: 2 of 8 seeds did not run (the first: seed 3)"},
		{[]string{bad("empty.json", "")}, 2, "empty.json: not a sweep document (picosim sweep --out or --json writes one): empty"},
		{[]string{bad("cut.json", string(good[:len(good)/2]))}, 2, "cut.json: not a sweep document"},
		{[]string{bad("table.json", "picosim sweep: 24 runs")}, 2, "table.json: not a sweep document"},
		{[]string{bad("two.json", string(good)+string(good))}, 2, "two.json: more after the sweep document"},
		{[]string{edit("format.json", "format", "picosim-sweep/0")}, 2, `format.json: format "picosim-sweep/0"`},
		{[]string{edit("extra.json", "sedes", 3)}, 2, `extra.json: not a sweep document (picosim sweep --out or --json writes one): json: unknown field "sedes"`},
		{[]string{edit("runs.json", "runs", 5)}, 2, "runs.json: runs 5, but shards 2/2 of seeds 1-8 hold 4"},
		{[]string{edit("shard.json", "shards", []string{"3/2"})}, 2, `shard.json: shards: "3/2": I must be 1 to 2`},
		{[]string{edit("outcomes.json", "outcomes", map[string]int{"passed": 3})}, 2, "outcomes.json: the outcomes add up to 3 runs, not 4"},
		{[]string{edit("failed.json", "failed", []map[string]any{{"seed": 3, "outcome": "failed: x", "replay": "r"}})}, 2, "failed.json: seed 3: not one of shards 2/2 of seeds 1-8"},
		{[]string{filepath.Join(dir, "absent.json")}, 2, "absent.json: no such file"},
		{nil, 2, "no sweep documents given"},
	} {
		code, _, errOut := picosim(t, withArgs([]string{"sweep", "merge"}, c.files...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("merge %v: exit %d, stderr %q; want %d and %q", c.files, code, errOut, c.code, c.want)
		}
	}
}

func TestSweepScenarioFile(t *testing.T) {
	dir := t.TempDir()
	// At 40% loss, 2.6 s are too short for most seeds, not all (as in
	// TestRepeatUntilFailAndJUnit).
	flaky := filepath.Join(dir, "flaky.yaml")
	os.WriteFile(flaky, []byte("name: flaky\nseed: 1\ntopology:\n  boards: 3\n  network: {radio: ideal, loss: 40%}\nsteps:\n  - expect: {eventually: 2600ms, members_agree: true}\n"), 0o644)
	args := []string{"sweep", flaky, "--seeds", "1-12", "--progress", "0"}
	code, whole, errOut := picosim(t, withArgs(args, "--out", dir+"/whole.json")...)
	if code != 1 || !strings.Contains(whole, `runs of scenario "flaky"`) ||
		!strings.Contains(whole, "failed: step 1: expected members agree within 2.6s\n") ||
		!strings.Contains(whole, "\nseed 2 failed: step 1 at 2.600s: expected members agree within 2.6s: ") ||
		!strings.Contains(whole, "  replay: picosim run --seed 2 "+flaky+"\n") || strings.Contains(whole, "failover") {
		t.Fatalf("exit %d\n%s%s", code, whole, errOut)
	}
	// The scenario at a seed the sweep passed passes in picosim run too:
	// both run the same thing.
	passedSeed := ""
	d := readDoc(t, dir+"/whole.json")
	failed := map[uint64]bool{}
	for _, r := range d.Failed {
		failed[r.Seed] = true
	}
	for s := uint64(1); s <= 12 && passedSeed == ""; s++ {
		if !failed[s] {
			passedSeed = fmt.Sprint(s)
		}
	}
	if passedSeed == "" {
		t.Fatalf("no seed of 1-12 passed; the test needs one:\n%s", whole)
	}
	if code, out, _ := picosim(t, "run", "--seed", passedSeed, flaky); code != 0 {
		t.Fatalf("seed %s passed the sweep but not picosim run:\n%s", passedSeed, out)
	}
	var files []string
	for i := 1; i <= 3; i++ {
		f := fmt.Sprintf("%s/s%d.json", dir, i)
		picosim(t, withArgs(args, "--shard", fmt.Sprintf("%d/3", i), "--out", f)...)
		files = append(files, f)
	}
	if _, merged, _ := picosim(t, withArgs([]string{"sweep", "merge"}, files...)...); withoutWall(merged) != withoutWall(whole) {
		t.Errorf("merged\n%s\nnot\n%s", merged, whole)
	}

	// An edited scenario is another sweep, even under the same name.
	os.WriteFile(flaky, append(mustRead(t, flaky), "# edited\n"...), 0o644)
	picosim(t, withArgs(args, "--shard", "3/3", "--out", dir+"/edited.json")...)
	code, _, errOut = picosim(t, "sweep", "merge", files[0], files[1], dir+"/edited.json")
	if code != 2 || !strings.Contains(errOut, "edited.json has a scenario file of sha256 ") || !strings.Contains(errOut, "not the same sweep") {
		t.Errorf("merge with an edited scenario: exit %d %s", code, errOut)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sweep", flaky, "--nodes", "3"}, "picosim sweep: --nodes: " + flaky + " sets its own cluster"},
		{[]string{"sweep", flaky, flaky}, "one scenario file at a time"},
		{[]string{"sweep", dir + "/none.yaml"}, "none.yaml"},
	} {
		if code, _, errOut := picosim(t, c.args...); code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q, want 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Progress lines, however many a fast sweep has time for, say how far it
// is; and the ticker stops with the sweep (TestMain checks for goroutines
// left behind).
func TestSweepProgressGoesToStderr(t *testing.T) {
	code, out, errOut := picosim(t, withArgs(smallSweep, "--progress", "1ms")...)
	if code != 1 || !strings.HasSuffix(out, "21 passed, 3 failed\n") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	line := regexp.MustCompile(`^picosim sweep: \d+ of 24 runs \(\d+%\) in \S+(, \d+ runs/s, about \S+ left)?$`)
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if l != "" && !line.MatchString(l) {
			t.Errorf("stderr line %q is not a progress line", l)
		}
	}
}

func TestSweepPercentilesAreNearestRank(t *testing.T) {
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]float64{50: 5, 90: 9, 99: 10, 100: 10, 0: 1} {
		if got := percentile(ten, p); got != want {
			t.Errorf("p%v of 1..10: %v, want %v", p, got, want)
		}
	}
	if got := percentile([]float64{3.5}, 99); got != 3.5 {
		t.Errorf("p99 of one run: %v", got)
	}
}

func TestSweepProgressLine(t *testing.T) {
	if got, want := progressLine(250, 1000, 10*time.Second), "picosim sweep: 250 of 1000 runs (25%) in 10s, 25 runs/s, about 30s left"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got, want := progressLine(0, 1000, 5*time.Second), "picosim sweep: 0 of 1000 runs (0%) in 5s"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestSweepHelpHasExamples(t *testing.T) {
	for _, args := range [][]string{{"sweep", "--help"}, {"sweep", "merge", "--help"}, {"help", "sweep"}} {
		code, _, errOut := picosim(t, args...)
		if code != 0 || !strings.Contains(errOut, "Examples:\n") || !strings.Contains(errOut, "picosim sweep merge shard-*.json") {
			t.Errorf("%v: exit %d\n%s", args, code, errOut)
		}
	}
}
