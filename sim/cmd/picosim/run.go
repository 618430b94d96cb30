package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/scenario"
)

const runHelp = `Usage: picosim run [--seed N] [--repeat N] [--until-fail] [--json] [--junit FILE] [--report DIR] [--pcap DIR] [--verbose] PATH...

Runs YAML scenarios (files, or folders of *.yaml) on simulated clusters, in
simulated time. A line per scenario as it finishes, then a table. A failed
scenario prints the step and expectation that failed, the events before it
and the command that replays it. Nothing runs when any file is invalid.
Exit status: 0 all passed, 1 a scenario failed, 2 invalid input.

Examples:
  picosim run scenarios/
  picosim run --seed 11 scenarios/master-failure.yaml
  picosim run --json scenarios/ | jq .passed
  picosim run --pcap captures/ scenarios/rgb-under-loss.yaml
  picosim run --repeat 200 --until-fail scenarios/master-failure.yaml   # hunt a failing seed
  picosim run --junit report.xml scenarios/
  picosim run --report out/ scenarios/master-failure.yaml    # then open out/master-failure/timeline.svg

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
	report := fs.String("report", "", "write each run's timeline.jsonl and timeline.svg (open it in a browser) into this folder")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
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
		opt := scenario.Options{Seed: &jobSeed}
		if code != 0 && *untilFail {
			break
		}
		if *verbose && !*asJSON {
			fmt.Fprintf(stdout, "== %s\n", s.Name)
			opt.OnEvent = func(e sim.Event) { fmt.Fprintln(stdout, e) }
		}
		var capture *os.File
		if *pcap != "" || s.Topology.Capture {
			dir := *pcap
			if dir == "" {
				dir = "."
			}
			name := strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File)) + ".pcapng"
			if capture, err = os.Create(filepath.Join(dir, name)); err != nil {
				fmt.Fprintf(stderr, "picosim run: capture: %v\n", err)
				return 2
			}
			opt.Capture = capture
		}
		if !*asJSON {
			fmt.Fprintf(stderr, "running %s (seed %d)...\r", s.Name, jobSeed) // overwritten by the result line
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
			if err := scenario.WriteReport(filepath.Join(*report, name), r); err != nil {
				fmt.Fprintf(stderr, "picosim run: --report: %v\n", err)
				return 2
			}
		}
		if *asJSON {
			enc.Encode(r)
			continue
		}
		verdict := "ok  "
		if !r.Passed {
			verdict = "FAIL"
		}
		fmt.Fprintf(stdout, "%s %-40s %8.1fs simulated in %.2fs  (seed %d)\n", verdict, s.Name, r.SimS, r.WallS, r.Seed)
		for _, f := range r.Failures {
			fmt.Fprintf(stdout, "     %s\n", strings.ReplaceAll(f, "\n", "\n     "))
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
		fmt.Fprintln(tw, "scenario\tverdict\tsimulated s\twall s\tseed")
		passed := 0
		for _, r := range results {
			v := "FAILED"
			if r.Passed {
				v, passed = "passed", passed+1
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.2f\t%d\n", r.Scenario, v, r.SimS, r.WallS, r.Seed)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "\n%d passed, %d failed\n", passed, len(results)-passed)
	}
	return code
}

// writeJUnit writes the results as a JUnit XML report, one testcase per run.
func writeJUnit(path string, results []scenario.Result) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      float64  `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
	}
	type suite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	st := suite{Name: "picosim scenarios", Tests: len(results)}
	for _, r := range results {
		tc := testcase{Name: fmt.Sprintf("%s (seed %d)", r.Scenario, r.Seed), Classname: r.File, Time: r.WallS}
		if !r.Passed {
			st.Failures++
			tc.Failure = &failure{Message: "replay: " + r.Replay, Text: strings.Join(r.Failures, "\n")}
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
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, validateHelp)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	all, err := scenario.LoadAll(args...)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 2
	}
	for _, s := range all {
		fmt.Fprintf(stdout, "%s: ok (%s, %d steps)\n", s.File, s.Name, len(s.Steps))
	}
	return 0
}
