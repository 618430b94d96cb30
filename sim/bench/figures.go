package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Figure is one measured number: what picosim bench prints in a row, the Go
// benchmarks report, and a Baseline stores.
type Figure struct {
	// Key names the figure in a baseline file and as a benchmark metric: no
	// spaces, and the same from run to run for the same measurement (sizes
	// that change the measurement are part of it).
	Key   string
	Label string // what the row says
	Value float64
	Unit  string // printed after the value: "x", " s", " MiB", "/s", "%"
	Goal  Goal
	// Better is the direction of an improvement, for comparisons with a
	// baseline. Figures of wall time are Neither: they move with the load of
	// the machine, so their CPU-time twins are the ones compared.
	Better Better
}

// Better says which way a figure improves.
type Better int

const (
	Neither Better = iota // printed beside the baseline, never flagged
	Higher
	Lower
)

// Goal is a figure's target from issue 15; the zero Goal is none.
type Goal struct {
	Op    string // ">=", "<=", "<" or "=="
	Value float64
	// Must marks a goal of correctness (no late revert, no failed run): a
	// missed one fails picosim bench. The speed goals are where the work is
	// heading; missing one is reported, not an error.
	Must bool
}

// Met reports whether v meets the goal.
func (g Goal) Met(v float64) bool {
	switch g.Op {
	case ">=":
		return v >= g.Value
	case "<=":
		return v <= g.Value
	case "<":
		return v < g.Value
	case "==":
		return v == g.Value
	}
	return true
}

// Verdict is "ok" or "MISSED" for a figure with a goal, "" without.
func (f Figure) Verdict() string {
	switch {
	case f.Goal.Op == "":
		return ""
	case f.Goal.Met(f.Value):
		return "ok"
	}
	return "MISSED"
}

// MustMissed reports whether a figure missed a goal of correctness.
func (f Figure) MustMissed() bool { return f.Goal.Must && !f.Goal.Met(f.Value) }

func (f Figure) goalString() string {
	if f.Goal.Op == "" {
		return ""
	}
	op := map[string]string{">=": "≥", "<=": "≤", "<": "<", "==": "="}[f.Goal.Op]
	return op + " " + num(f.Goal.Value) + f.Unit
}

// Compare returns the figure over the baseline's value, and whether it is
// worse than the baseline by more than threshold (0.2: 20%): for a figure
// where higher is better, baseline/value > 1.2; where lower is, value/baseline.
func Compare(f Figure, base, threshold float64) (ratio float64, regressed bool) {
	if base == 0 || f.Value == 0 {
		return math.NaN(), false // no ratio; a zero is a goal's business
	}
	ratio = f.Value / base
	switch f.Better {
	case Higher:
		return ratio, 1/ratio > 1+threshold
	case Lower:
		return ratio, ratio > 1+threshold
	}
	return ratio, false
}

// Render writes a title and figures as a table with a goal and a verdict
// column and,
// given a baseline, its figure, the ratio and REGRESSION where a figure is
// worse by more than threshold. It returns the number of regressions.
func Render(w io.Writer, title string, figs []Figure, base *Baseline, threshold float64) (regressions int) {
	fmt.Fprintln(w, title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "\tvalue\tgoal\tverdict\t"
	if base != nil {
		head += "baseline\tx-baseline\t"
	}
	fmt.Fprintln(tw, head)
	for _, f := range figs {
		row := fmt.Sprintf("  %s\t%s\t%s\t%s\t", f.Label, num(f.Value)+f.Unit, f.goalString(), f.Verdict())
		if base != nil {
			b, ok := base.Value(f.Key)
			ratio, bad := Compare(f, b, threshold)
			switch {
			case !ok:
				row += "-\t-\t"
			case math.IsNaN(ratio):
				row += num(b) + f.Unit + "\t-\t"
			default:
				row += num(b) + f.Unit + "\t" + strconv.FormatFloat(ratio, 'f', 2, 64) + "x\t"
			}
			if bad {
				row += "REGRESSION"
				regressions++
			}
		}
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
	fmt.Fprintln(w)
	return regressions
}

// num prints a figure with three significant digits or as a whole number,
// with thousands separated, so columns stay short: 5234x, 0.0123 s, 312,345/s.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100 || v == math.Trunc(v) && a < 1e15:
		s := strconv.FormatFloat(math.Round(a), 'f', 0, 64)
		for i := len(s) - 3; i > 0 && a >= 10000; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		if v < 0 {
			s = "-" + s
		}
		return s
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'g', 3, 64), ".0")
}
