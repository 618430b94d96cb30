package scenario

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/check"
)

// WriteReport writes a run's report into dir: index.html (one page, no
// network: the verdict, what failed, the replay command, the picture and
// the event log filtered by board), timeline.jsonl (one event a line) and
// timeline.svg, the picture alone: one lane per board with its role over
// time and its pin levels, faults marked on a shared time axis, and the
// failure, if any, where it happened.
func WriteReport(dir string, r Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var lines strings.Builder
	for _, e := range r.Timeline {
		lines.Write(sim.JSON(e))
		lines.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "timeline.jsonl"), []byte(lines.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "timeline.svg"), []byte(svg(r)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.html"), []byte(page(r)), 0o644)
}

var pinDetail = regexp.MustCompile(`^GPIO(\d+) = (\d)`)

type span struct {
	from, to float64
	role     string
}

type pinStep struct {
	at    float64
	level int
}

func svg(r Result) string {
	end := r.SimS
	if end <= 0 {
		end = 1
	}
	boards := boardsOf(r)
	// Roles and pins per board, from the timeline.
	spans := map[string][]span{}
	pins := map[string]map[int][]pinStep{}
	current := map[string]*span{}
	open := func(b string, at float64, role string) {
		if s := current[b]; s != nil {
			s.to = at
			spans[b] = append(spans[b], *s)
		}
		current[b] = nil
		if role != "" {
			current[b] = &span{from: at, role: role}
		}
	}
	for _, e := range r.Timeline {
		at := e.At.Seconds()
		switch e.Kind {
		case sim.EvPowerOn:
			open(e.Board, at, "JOINING")
		case sim.EvPowerOff:
			open(e.Board, at, "")
		case firmware.EvRole:
			open(e.Board, at, e.Role)
		case firmware.EvPin:
			if m := pinDetail.FindStringSubmatch(e.Detail); m != nil {
				pin, _ := strconv.Atoi(m[1])
				lvl, _ := strconv.Atoi(m[2])
				if pins[e.Board] == nil {
					pins[e.Board] = map[int][]pinStep{}
				}
				pins[e.Board][pin] = append(pins[e.Board][pin], pinStep{at, lvl})
			}
		}
	}
	for b := range current {
		open(b, end, "")
	}

	const left, width, lane, top = 90.0, 880.0, 44.0, 40.0
	x := func(t float64) float64 { return left + width*t/end }
	height := top + lane*float64(len(boards)) + 64 // the axis, then the legend
	var w strings.Builder
	fmt.Fprintf(&w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", int(left+width+30), int(height))
	verdict := "passed"
	if !r.Passed {
		verdict = "FAILED"
	}
	clock := "simulated"
	if r.Target != "" && r.Target != "sim" {
		clock = "of wall-clock time, " + r.Target
	}
	fmt.Fprintf(&w, `<text x="10" y="18" font-size="14" font-weight="bold">%s — %s (seed %d, %.1fs %s)</text>`+"\n", esc(r.Scenario), verdict, r.Seed, r.SimS, clock)
	// Time axis.
	step := niceStep(end)
	axisY := top + lane*float64(len(boards)) + 8
	for t := 0.0; t <= end+1e-9; t += step {
		fmt.Fprintf(&w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, x(t), top-4, x(t), axisY)
		fmt.Fprintf(&w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%gs</text>`+"\n", x(t), axisY+14, t)
	}
	colors := func(role string) string {
		switch {
		case role == "MASTER":
			return "#d9534f"
		case strings.HasPrefix(role, "WORKER"):
			return "#428bca"
		}
		return "#bbb"
	}
	for i, b := range boards {
		y := top + lane*float64(i)
		fmt.Fprintf(&w, `<text class="lane" x="10" y="%.1f" font-weight="bold">%s</text>`+"\n", y+15, esc(b))
		for _, s := range spans[b] {
			fmt.Fprintf(&w, `<rect x="%.1f" y="%.1f" width="%.1f" height="18" fill="%s"><title>%s %.3fs–%.3fs</title></rect>`,
				x(s.from), y+2, math.Max(x(s.to)-x(s.from), 3), colors(s.role), s.role, s.from, s.to) // a short role stays visible
			if x(s.to)-x(s.from) > 50 {
				fmt.Fprintf(&w, `<text x="%.1f" y="%.1f" fill="white">%s</text>`, x(s.from)+3, y+15, s.role)
			}
			w.WriteString("\n")
		}
		var pinNums []int
		for p := range pins[b] {
			pinNums = append(pinNums, p)
		}
		sort.Ints(pinNums)
		for k, p := range pinNums {
			base := y + 34 - float64(k)*3
			var path strings.Builder
			level := 0
			fmt.Fprintf(&path, "M%.1f,%.1f", x(0), base)
			for _, st := range pins[b][p] {
				fmt.Fprintf(&path, " L%.1f,%.1f L%.1f,%.1f", x(st.at), base-float64(level)*8, x(st.at), base-float64(st.level)*8)
				level = st.level
			}
			fmt.Fprintf(&path, " L%.1f,%.1f", x(end), base-float64(level)*8)
			fmt.Fprintf(&w, `<path d="%s" fill="none" stroke="#5cb85c" stroke-width="1.5"><title>%s GPIO%d</title></path>`+"\n", path.String(), b, p)
			fmt.Fprintf(&w, `<text x="%.1f" y="%.1f" fill="#5cb85c" font-size="10">GPIO%d</text>`+"\n", left-40, base, p)
		}
	}
	// Faults: a mark on the board's lane, or across all lanes for the LAN.
	for _, e := range r.Timeline {
		label := ""
		switch e.Kind {
		case sim.EvPowerOff:
			label = "off"
		case sim.EvPowerOn:
			label = "on"
		case firmware.EvReset, firmware.EvUpdate, firmware.EvRollback, firmware.EvWiFiLost, sim.EvLink, sim.EvPartition, sim.EvHeal:
			label = e.Kind
		}
		if label == "" || e.At.Seconds() == 0 {
			continue
		}
		y1, y2 := top-4, axisY
		if i := indexOf(boards, e.Board); i >= 0 {
			y1, y2 = top+lane*float64(i), top+lane*float64(i)+lane-4
		}
		fmt.Fprintf(&w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-dasharray="3,2"><title>%s</title></line>`,
			x(e.At.Seconds()), y1, x(e.At.Seconds()), y2, esc(strings.TrimSpace(check.Line(e))))
		fmt.Fprintf(&w, `<text x="%.1f" y="%.1f" font-size="10">%s</text>`+"\n", x(e.At.Seconds())+2, y1+10, label)
	}
	if r.FailedAt != nil {
		fx := x(*r.FailedAt)
		fmt.Fprintf(&w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="red" stroke-width="2"/>`, fx, top-10, fx, axisY)
		msg := strings.SplitN(strings.Join(r.Failures, " "), "\n", 2)[0]
		anchor, tx := "start", fx+4
		if fx > left+width/2 {
			anchor, tx = "end", fx-4 // keep the label on the page
		}
		fmt.Fprintf(&w, `<text x="%.1f" y="%.1f" fill="red" font-weight="bold" text-anchor="%s">FAILED: %s</text>`+"\n", tx, top-12, anchor, esc(truncate(msg, 110)))
	}
	// The legend, under the axis.
	ly := axisY + 36
	lx := left
	for _, item := range []struct{ color, label string }{{"#d9534f", "MASTER"}, {"#428bca", "WORKERn"}, {"#bbb", "JOINING"}} {
		fmt.Fprintf(&w, `<rect x="%.1f" y="%.1f" width="14" height="10" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n", lx, ly-9, item.color, lx+18, ly, item.label)
		lx += 95
	}
	fmt.Fprintf(&w, `<path d="M%.1f,%.1f h16" stroke="#5cb85c" stroke-width="1.5"/><text x="%.1f" y="%.1f">GPIO level</text>`+"\n", lx, ly-4, lx+20, ly)
	lx += 95
	fmt.Fprintf(&w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-dasharray="3,2"/><text x="%.1f" y="%.1f">fault (hover: what)</text>`+"\n", lx+6, ly-10, lx+6, ly+2, lx+12, ly)
	lx += 140
	fmt.Fprintf(&w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="red" stroke-width="2"/><text x="%.1f" y="%.1f">failed expectation</text>`+"\n", lx+6, ly-10, lx+6, ly+2, lx+12, ly)
	w.WriteString("</svg>\n")
	return w.String()
}

// boardsOf returns every board of a run's timeline, whatever its name
// (alpha, beta: a lane each too), in natural order: pico2 before pico10.
func boardsOf(r Result) []string {
	var boards []string
	seen := map[string]bool{}
	for _, e := range r.Timeline {
		if e.Board != "" && !seen[e.Board] {
			seen[e.Board] = true
			boards = append(boards, e.Board)
		}
	}
	sort.SliceStable(boards, func(i, j int) bool { return naturalLess(boards[i], boards[j]) })
	return boards
}

// naturalLess orders names with their numbers as numbers: pico2 < pico10.
func naturalLess(a, b string) bool {
	pa, na := splitNumber(a)
	pb, nb := splitNumber(b)
	if pa != pb {
		return pa < pb
	}
	return na < nb
}

// splitNumber cuts a name into its text and its trailing number (-1: none).
func splitNumber(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(s[i:])
	if err != nil {
		return s, -1
	}
	return s[:i], n
}

func niceStep(end float64) float64 {
	raw := end / 10
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func esc(s string) string { return html.EscapeString(s) }
