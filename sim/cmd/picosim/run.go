package main

import (
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/check"
	"github.com/picosim/picosim/sim/scenario"
	"github.com/picosim/picosim/sim/targets"
)

const runHelp = `Usage: picosim run [--target sim|emulated|hw|rp2040] [--inventory FILE] [--seed N] [--repeat N] [--until-fail] [--json] [--junit FILE] [--report DIR] [--pcap DIR] [--verbose] PATH...

Runs YAML scenarios (files, or folders of *.yaml). A line per scenario as it
finishes, then a table. A failed scenario prints the step and expectation
that failed, the events before it and the command that replays it. Nothing
runs when any file is invalid.

Targets: sim (the default) runs virtual boards in simulated time, thousands
of times faster than real time. emulated runs the firmware built for Linux,
one process per board, each in a network namespace on the simulated LAN, in
wall-clock time (needs root). hw runs real boards listed in an inventory
file (see hack/lab-inventory.example.yaml). rp2040 runs the shipped Pico W
image (make firmware) on emulated RP2040s with a modelled radio, in
simulated time (make rp2040 installs what it needs). A scenario runs only on the
targets its "targets:" field names; the others are skipped with the reason,
and so is a step a target cannot carry out (set_link on real WiFi, say).

A run is "not judged" when an expectation about the cluster failed while a
board's radio lost its WiFi association, unscripted, inside the window the
expectation looks at (the fault is named; see the README's verdict rules).

Exit status: 0 all passed, skipped or not judged, 1 a scenario failed, 2
invalid input.

Examples:
  picosim run scenarios/
  sudo picosim run --target emulated scenarios/
  picosim run --target hw --inventory lab.yaml --junit hil.xml scenarios/
  picosim run --seed 11 scenarios/master-failure.yaml
  picosim run --json scenarios/ | jq .passed
  picosim run --pcap captures/ scenarios/rgb-under-loss.yaml
  picosim run --repeat 200 --until-fail scenarios/master-failure.yaml   # hunt a failing seed
  picosim run --junit report.xml scenarios/
  picosim run --report out/ scenarios/master-failure.yaml    # then open out/master-failure/index.html

Flags:
`

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, runHelp); fs.PrintDefaults() }
	seed := fs.Uint64("seed", 0, "replace every scenario's seed (0: keep the file's)")
	asJSON := fs.Bool("json", false, "one JSON object per scenario instead of the table")
	pcap := fs.String("pcap", "", "write a pcapng capture of every scenario into this folder")
	verbose := fs.Bool("verbose", false, "print every timeline event as it happens")
	repeat := fs.Int("repeat", 1, "run each scenario N times, each time with the next seed")
	untilFail := fs.Bool("until-fail", false, "stop at the first failure (with --repeat: hunt a failing seed)")
	junit := fs.String("junit", "", "also write a JUnit XML report to this file")
	report := fs.String("report", "", "write each run's report into this folder: index.html (open it in a browser: verdict, replay, timeline, events by board), timeline.jsonl, timeline.svg")
	kind := fs.String("target", "sim", "where the boards are: sim, emulated (needs root), hw (needs --inventory) or rp2040 (the shipped image, emulated)")
	inventory := fs.String("inventory", "", "with --target hw: the inventory file of the lab's boards")
	if code, ok := parseFlags(fs, args, true, stderr); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "picosim run: no scenario given\n\n%s", runHelp)
		return 2
	}
	all, err := scenario.LoadAll(fs.Args()...)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 2
	}
	open, err := opener(*kind, *inventory)
	if err != nil {
		fmt.Fprintf(stderr, "picosim run: %v\n", err)
		return 2
	}
	if *kind != "sim" {
		// Ctrl-C must not leave processes or namespaces behind.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		go func() {
			if _, ok := <-sigs; ok {
				fmt.Fprintln(stderr, "\npicosim run: interrupted; cleaning up")
				targets.CloseAll()
				os.Exit(130)
			}
		}()
	}
	if *pcap != "" && *kind == "hw" {
		fmt.Fprintln(stderr, "picosim run: --pcap: picosim captures its simulated LAN; capture real WiFi with tshark (the nightly workflow does)")
		*pcap = ""
	}
	if *pcap != "" {
		if err := os.MkdirAll(*pcap, 0o755); err != nil {
			fmt.Fprintf(stderr, "picosim run: --pcap: %v\n", err)
			return 2
		}
	}
	if *repeat < 1 {
		fmt.Fprintf(stderr, "picosim run: --repeat %d: at least 1\n", *repeat)
		return 2
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	enc := json.NewEncoder(stdout)
	var results []scenario.Result
	code := 0
	type job struct {
		s    *scenario.Scenario
		seed uint64
	}
	var jobs []job
	for _, s := range all {
		base := s.Seed
		if seedSet {
			base = *seed
		}
		for i := range *repeat {
			jobs = append(jobs, job{s, base + uint64(i)})
		}
	}
	for _, j := range jobs {
		s := j.s
		jobSeed := j.seed
		opt := scenario.Options{Seed: &jobSeed, Target: *kind, Open: open, Inventory: *inventory}
		if code != 0 && *untilFail {
			break
		}
		if *verbose && !*asJSON {
			fmt.Fprintf(stdout, "== %s\n", s.Name)
			opt.OnEvent = func(e sim.Event) { fmt.Fprintln(stdout, check.Line(e)) }
		}
		var capture *os.File
		if *pcap != "" || (s.Topology.Capture && *kind != "hw") {
			dir := *pcap
			if dir == "" {
				dir = "."
			}
			name := strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File))
			if *repeat > 1 {
				name += fmt.Sprintf("-seed%d", jobSeed) // one capture a run, as one report
			}
			if capture, err = os.Create(filepath.Join(dir, name+".pcapng")); err != nil {
				fmt.Fprintf(stderr, "picosim run: capture: %v\n", err)
				return 2
			}
			opt.Capture = capture
		}
		if !*asJSON && !*verbose && isTerminal(stderr) {
			// Overwritten by the result line, on a terminal only: in a log
			// file a carriage return glues lines together.
			fmt.Fprintf(stderr, "running %s (seed %d, %s)...\r", s.Name, jobSeed, *kind)
		}
		r := scenario.Run(s, opt)
		if capture != nil {
			capture.Close()
		}
		results = append(results, r)
		if !r.Passed {
			code = 1
		}
		if *report != "" {
			name := strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File))
			if *repeat > 1 {
				name += fmt.Sprintf("-seed%d", r.Seed)
			}
			var files []scenario.File
			if capture != nil {
				files = append(files, scenario.File{Label: "capture (pcapng, for Wireshark)", Path: capture.Name()})
			}
			if *junit != "" {
				files = append(files, scenario.File{Label: "JUnit report", Path: *junit})
			}
			if err := scenario.WriteReport(filepath.Join(*report, name), r, files...); err != nil {
				fmt.Fprintf(stderr, "picosim run: --report: %v\n", err)
				return 2
			}
		}
		if *asJSON {
			enc.Encode(r)
			continue
		}
		verdict := "ok  "
		switch {
		case !r.Passed:
			verdict = "FAIL"
		case r.NotJudged != "":
			verdict = "n/j "
		case r.Skipped != "":
			fmt.Fprintf(stdout, "skip %-40s %s\n", s.Name, r.Skipped)
			continue
		}
		clock := "simulated"
		if !simulatedTime(*kind) {
			clock = "of real time"
		}
		fmt.Fprintf(stdout, "%s %-40s %8.1fs %s in %.2fs  (seed %d)\n", verdict, s.Name, r.SimS, clock, r.WallS, r.Seed)
		for _, sk := range r.SkippedSteps {
			fmt.Fprintf(stdout, "     skipped %s\n", sk)
		}
		for _, f := range r.Failures {
			fmt.Fprintf(stdout, "     %s\n", strings.ReplaceAll(f, "\n", "\n     "))
		}
		if r.NotJudged != "" {
			fmt.Fprintf(stdout, "     %s\n     replay: %s\n", r.NotJudged, r.Replay)
		}
	}
	if *junit != "" {
		if err := writeJUnit(*junit, results); err != nil {
			fmt.Fprintf(stderr, "picosim run: --junit: %v\n", err)
			return 2
		}
	}
	if !*asJSON {
		if *untilFail && code != 0 {
			last := results[len(results)-1]
			fmt.Fprintf(stdout, "\nfailed with seed %d: %s\n", last.Seed, last.Replay)
		}
		fmt.Fprintln(stdout)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		timeCol := "simulated s"
		if !simulatedTime(*kind) {
			timeCol = "run s"
		}
		if *repeat > 1 {
			repeatTable(tw, results)
		} else {
			fmt.Fprintf(tw, "scenario\tverdict\t%s\twall s\tseed\n", timeCol)
		}
		passed, failed, notJudged, skipped := 0, 0, 0, 0
		for _, r := range results {
			v := "FAILED"
			switch {
			case r.Skipped != "":
				v, skipped = "skipped", skipped+1
			case r.NotJudged != "":
				v, notJudged = "not judged", notJudged+1
			case r.Passed:
				v, passed = "passed", passed+1
			default:
				failed++
			}
			if len(r.SkippedSteps) > 0 && r.Passed {
				v += fmt.Sprintf(" (%d steps skipped)", len(r.SkippedSteps))
			}
			if *repeat == 1 {
				fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.2f\t%d\n", r.Scenario, v, r.SimS, r.WallS, r.Seed)
			}
		}
		tw.Flush()
		fmt.Fprintf(stdout, "\n%d passed, %d failed, %d not judged, %d skipped\n", passed, failed, notJudged, skipped)
	}
	return code
}

// repeatTable writes one row per scenario of a --repeat run: its runs, how
// many passed, failed or were not judged, and the seeds that failed (each
// run's line above has its replay command).
func repeatTable(tw io.Writer, results []scenario.Result) {
	type row struct {
		name                           string
		runs, passed, failed, unjudged int
		seeds                          []string
	}
	var rows []*row
	by := map[string]*row{}
	for _, r := range results {
		w := by[r.Scenario]
		if w == nil {
			w = &row{name: r.Scenario}
			by[r.Scenario] = w
			rows = append(rows, w)
		}
		w.runs++
		switch {
		case r.Skipped != "":
		case !r.Passed:
			w.failed++
			if len(w.seeds) < 8 {
				w.seeds = append(w.seeds, fmt.Sprint(r.Seed))
			} else if len(w.seeds) == 8 {
				w.seeds = append(w.seeds, "...")
			}
		case r.NotJudged != "":
			w.unjudged++
		default:
			w.passed++
		}
	}
	fmt.Fprintf(tw, "scenario\truns\tpassed\tfailed\tnot judged\tpass rate\tfailing seeds\n")
	for _, w := range rows {
		rate := "-"
		if judged := w.passed + w.failed; judged > 0 {
			rate = fmt.Sprintf("%.1f%%", 100*float64(w.passed)/float64(judged))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", w.name, w.runs, w.passed, w.failed, w.unjudged, rate, strings.Join(w.seeds, " "))
	}
}

// simulatedTime says whether a target's clock is simulated (sim, and the
// emulated RP2040s in lockstep with it) rather than the wall clock.
func simulatedTime(kind string) bool { return kind == "sim" || kind == "rp2040" }

// opener returns how to open the boards of a target kind.
func opener(kind, inventory string) (func(targets.Spec) (targets.Target, error), error) {
	switch kind {
	case "sim":
		if inventory != "" {
			return nil, fmt.Errorf("--inventory goes with --target hw")
		}
		return nil, nil
	case "emulated":
		if err := targets.CanEmulate(); err != nil {
			return nil, fmt.Errorf("--target emulated: %v", err)
		}
		return func(spec targets.Spec) (targets.Target, error) {
			return targets.NewEmulated(spec, targets.EmulatedConfig{})
		}, nil
	case "rp2040":
		if inventory != "" {
			return nil, fmt.Errorf("--inventory goes with --target hw")
		}
		return func(spec targets.Spec) (targets.Target, error) {
			return targets.NewRP2040(spec, targets.RP2040Config{})
		}, nil
	case "hw":
		if inventory == "" {
			return nil, fmt.Errorf("--target hw needs --inventory FILE (see hack/lab-inventory.example.yaml)")
		}
		inv, err := targets.LoadInventory(inventory)
		if err != nil {
			return nil, err
		}
		return func(spec targets.Spec) (targets.Target, error) { return targets.NewHW(spec, inv) }, nil
	}
	return nil, fmt.Errorf("--target %q: one of sim, emulated, hw, rp2040", kind)
}

// writeJUnit writes the results as a JUnit XML report, one testcase per run.
func writeJUnit(path string, results []scenario.Result) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type skipped struct {
		Message string `xml:"message,attr"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      float64  `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		Skipped   *skipped `xml:"skipped,omitempty"`
	}
	type suite struct {
		XMLName   xml.Name   `xml:"testsuite"`
		Name      string     `xml:"name,attr"`
		Tests     int        `xml:"tests,attr"`
		Failures  int        `xml:"failures,attr"`
		Errors    int        `xml:"errors,attr"` // a run that could not be made: none; failures are expectations
		Skipped   int        `xml:"skipped,attr"`
		Time      float64    `xml:"time,attr"`
		Timestamp string     `xml:"timestamp,attr"`
		Cases     []testcase `xml:"testcase"`
	}
	st := suite{Name: "picosim scenarios", Tests: len(results), Timestamp: time.Now().UTC().Format(time.RFC3339)}
	for _, r := range results {
		st.Time += r.WallS
		tc := testcase{Name: fmt.Sprintf("%s (seed %d, %s)", r.Scenario, r.Seed, r.Target), Classname: r.File, Time: r.WallS}
		switch {
		case r.Skipped != "":
			st.Skipped++
			tc.Skipped = &skipped{Message: r.Skipped}
		case r.NotJudged != "":
			st.Skipped++
			tc.Skipped = &skipped{Message: r.NotJudged + " (replay: " + r.Replay + ")"}
		}
		if !r.Passed {
			st.Failures++
			// The message is what failed (a CI page shows it alone); the
			// text has every failure and the command that replays it.
			msg := "failed"
			if len(r.Failures) > 0 {
				msg, _, _ = strings.Cut(r.Failures[0], "\n")
			}
			tc.Failure = &failure{Message: msg, Text: strings.Join(r.Failures, "\n") + "\nreplay: " + r.Replay}
		}
		st.Cases = append(st.Cases, tc)
	}
	b, err := xml.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}

const validateHelp = `Usage: picosim validate PATH...

Checks scenario files without running them: unknown fields (with the field
meant), values that do not parse, boards that do not exist, steps out of
time order. Every problem is printed as file:line:column. Exit status 0
when all are valid, 2 otherwise.
`

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, validateHelp) }
	if code, ok := parseFlags(fs, args, true, stderr); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, validateHelp)
		return 2
	}
	all, err := scenario.LoadAll(fs.Args()...)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 2
	}
	for _, s := range all {
		fmt.Fprintf(stdout, "%s: ok (%s, %d steps)\n", s.File, s.Name, len(s.Steps))
	}
	return 0
}
