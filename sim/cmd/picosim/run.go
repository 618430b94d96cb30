package main

import (
	"encoding/json"
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

const runHelp = `Usage: picosim run [--seed N] [--json] [--pcap DIR] [--verbose] PATH...

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
	enc := json.NewEncoder(stdout)
	var results []scenario.Result
	code := 0
	for _, s := range all {
		opt := scenario.Options{}
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "seed" {
				opt.Seed = seed
			}
		})
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
		r := scenario.Run(s, opt)
		if capture != nil {
			capture.Close()
		}
		results = append(results, r)
		if !r.Passed {
			code = 1
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
	if !*asJSON {
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
