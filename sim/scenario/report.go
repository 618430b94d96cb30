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
// network: the verdict, what failed, the replay command, the picture, the
// steps with their verdicts and the event log filtered by board),
// timeline.jsonl (one event a line) and timeline.svg, the picture alone:
// the steps and expectations coloured by verdict, one lane per board with
// its role over time and its pin levels, faults marked on a shared time
// axis, and the failure, if any, where it happened.
//
// files are other files of the run the page links to (its capture, the
// JUnit report), by a path relative to dir where one exists.
func WriteReport(dir string, r Result, files ...File) error {
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
	for i, f := range files {
		if rel, err := relative(dir, f.Path); err == nil {
			files[i].Path = rel
		}
	}
	return os.WriteFile(filepath.Join(dir, "index.html"), []byte(page(r, files...)), 0o644)
}

// File is a file of a run that its report links to.
type File struct {
	Label string // what it is: "capture (pcapng)"
	Path  string
}

// relative is path as seen from dir, so that a report folder copied with
// its run's other files still finds them.
func relative(dir, path string) (string, error) {
	ad, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	ap, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(ad, ap)
	return filepath.ToSlash(rel), err
}

var pinDetail = regexp.MustCompile(`^GPIO(\d+) = (\d)`)

// The picture's geometry. Text widths are estimates (no font metrics in
// Go's standard library): about 6 px a character at font-size 10.
const (
	axisLeft     = 90.0  // where the time axis starts
	axisWidth    = 880.0 // its length
	svgWidth     = axisLeft + axisWidth + 30
	charW        = 6.0  // a character at font-size 10
	roleCharW    = 6.5  // a character of a role label, font-size 11
	labelGap     = 4.0  // the least room between two labels in a row
	stepRowH     = 16.0 // a row of the steps band: marks and their labels
	faultRowH    = 11.0 // a row of fault labels above a lane's bar
	maxFaultRows = 3    // more would crowd a lane: the rest keep only their title
	laneBody     = 44.0 // a lane's bar, LED strip and first pin, under its fault labels
	pinRowH      = 14.0 // each further pin: a row of its own, so labels never overlap
)

type span struct {
	from, to float64
	role     string
}

type pinStep struct {
	at    float64
	level int
}

// svg draws a run: its steps and expectations with their verdicts, one
// lane per board (roles over time, pin levels, faults), the LAN's faults,
// the failure, a time axis and a legend. Every label is laid out so that
// none overlaps another or a bar.
func svg(r Result) string {
	end := r.SimS
	if end <= 0 {
		end = 1
	}
	x := func(t float64) float64 { return axisLeft + axisWidth*t/end }
	boards := boardsOf(r)
	spans, pins := rolesAndPins(r, end)
	leds := ledSpans(r, end)
	lan, lanes := faultMarks(r, boards, x)
	steps, stepRows := layoutSteps(r.Steps, x)

	// Top to bottom: the title, the failure's label, the steps band, the
	// LAN's fault labels, a lane per board, the axis, the legend.
	y := 26.0
	failY := y + 10
	if r.FailedAt != nil {
		y += 16
	}
	stepsTop := y
	if len(steps) > 0 {
		y += float64(stepRows)*stepRowH + 8
	}
	lanTop := y
	y += stripHeight(lan.rows)
	laneTops := make([]float64, len(boards))
	for i, b := range boards {
		laneTops[i] = y
		y += stripHeight(lanes[b].rows) + laneHeight(pins[b])
	}
	axisY := y + 8
	height := axisY + 36 + 20 + 14 // the axis's labels, then two rows of legend

	var w strings.Builder
	fmt.Fprintf(&w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", int(svgWidth), int(height))
	drawTitle(&w, r)
	drawAxis(&w, end, x, stepsTop-4, axisY)
	if len(steps) > 0 {
		drawSteps(&w, steps, stepsTop, float64(stepRows)*stepRowH+4)
	}
	if lan.rows > 0 {
		fmt.Fprintf(&w, `<text x="10" y="%.1f" fill="#555" font-size="10">LAN</text>`+"\n", lanTop+9)
	}
	for i, b := range boards {
		top := laneTops[i]
		barTop := top + stripHeight(lanes[b].rows) + 2
		fmt.Fprintf(&w, `<text class="lane" x="10" y="%.1f" font-weight="bold">%s</text>`+"\n", barTop+13, esc(b))
		drawRoles(&w, spans[b], x, barTop, obstacles(lanes[b], lan))
		drawLED(&w, leds[b], x, barTop+19)
		drawPins(&w, b, pins[b], x, end, barTop+32)
		drawMarks(&w, lanes[b], top, barTop-2, barTop+laneHeight(pins[b])-6)
	}
	drawMarks(&w, lan, lanTop, lanTop+stripHeight(lan.rows), axisY) // over the lanes' bars
	if r.FailedAt != nil {
		drawFailure(&w, r, x(*r.FailedAt), failY, axisY)
	}
	drawLegend(&w, axisY+36)
	w.WriteString("</svg>\n")
	return w.String()
}

func drawTitle(w *strings.Builder, r Result) {
	verdict := "passed"
	if !r.Passed {
		verdict = "FAILED"
	}
	clock := "simulated"
	if r.Target != "" && r.Target != "sim" {
		clock = "of wall-clock time, " + r.Target
	}
	fmt.Fprintf(w, `<text x="10" y="18" font-size="14" font-weight="bold">%s — %s (seed %d, %.1fs %s)</text>`+"\n", esc(r.Scenario), verdict, r.Seed, r.SimS, clock)
}

// drawAxis draws the time axis with its grid, behind everything else.
func drawAxis(w *strings.Builder, end float64, x func(float64) float64, top, axisY float64) {
	step := niceStep(end)
	for t := 0.0; t <= end+1e-9; t += step {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, x(t), top, x(t), axisY)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%gs</text>`+"\n", x(t), axisY+14, t)
	}
}

// spanner builds each board's spans of one state over time (a role, an LED
// pattern): set starts the next ("" for none), finish ends the last ones.
type spanner struct {
	spans   map[string][]span
	current map[string]*span
}

func newSpanner() *spanner {
	return &spanner{spans: map[string][]span{}, current: map[string]*span{}}
}

func (s *spanner) set(board string, at float64, state string) {
	if c := s.current[board]; c != nil {
		c.to = at
		s.spans[board] = append(s.spans[board], *c)
	}
	s.current[board] = nil
	if state != "" {
		s.current[board] = &span{from: at, role: state}
	}
}

func (s *spanner) finish(end float64) map[string][]span {
	for b := range s.current {
		s.set(b, end, "")
	}
	return s.spans
}

// rolesAndPins reads each board's roles over time and its pin levels from
// the timeline.
func rolesAndPins(r Result, end float64) (map[string][]span, map[string]map[int][]pinStep) {
	roles := newSpanner()
	pins := map[string]map[int][]pinStep{}
	for _, e := range r.Timeline {
		at := e.At.Seconds()
		switch e.Kind {
		case sim.EvPowerOn:
			roles.set(e.Board, at, "JOINING")
		case sim.EvPowerOff:
			roles.set(e.Board, at, "")
		case firmware.EvRole:
			roles.set(e.Board, at, e.Role)
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
	return roles.finish(end), pins
}

// ledSpans reads each board's status LED pattern over time: connecting
// from power-on until the board says otherwise (firmware.EvLED).
func ledSpans(r Result, end float64) map[string][]span {
	leds := newSpanner()
	for _, e := range r.Timeline {
		switch e.Kind {
		case sim.EvPowerOn:
			leds.set(e.Board, e.At.Seconds(), "connecting")
		case sim.EvPowerOff:
			leds.set(e.Board, e.At.Seconds(), "")
		case firmware.EvLED:
			leds.set(e.Board, e.At.Seconds(), e.Detail)
		}
	}
	return leds.finish(end)
}

// ledColour is the strip's colour for an LED pattern.
func ledColour(pattern string) string {
	switch pattern {
	case "connecting":
		return "#f0ad4e"
	case "active":
		return "#8e44ad"
	}
	return "#999" // idle
}

// drawLED draws a lane's LED patterns as a thin strip under its role bar.
func drawLED(w *strings.Builder, spans []span, x func(float64) float64, top float64) {
	for _, s := range spans {
		fmt.Fprintf(w, `<rect class="led" x="%.1f" y="%.1f" width="%.1f" height="3" fill="%s"><title>LED %s %.3fs–%.3fs</title></rect>`+"\n",
			x(s.from), top, math.Max(x(s.to)-x(s.from), 2), ledColour(s.role), s.role, s.from, s.to)
	}
}

func roleColour(role string) string {
	switch {
	case role == "MASTER":
		return "#d9534f"
	case strings.HasPrefix(role, "WORKER"):
		return "#428bca"
	}
	return "#bbb"
}

// drawRoles draws a lane's roles as bars, each named inside its bar where
// the name fits between the fault lines that cross it (blocked: their x).
func drawRoles(w *strings.Builder, spans []span, x func(float64) float64, barTop float64, blocked []float64) {
	for _, s := range spans {
		x0, x1 := x(s.from), x(s.to)
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="18" fill="%s"><title>%s %.3fs–%.3fs</title></rect>`,
			x0, barTop, math.Max(x1-x0, 3), roleColour(s.role), esc(s.role), s.from, s.to) // a short role stays visible
		if lx, ok := fitBetween(x0+3, x1-2, float64(len(s.role))*roleCharW, blocked); ok {
			fmt.Fprintf(w, `<text class="role" x="%.1f" y="%.1f" fill="white">%s</text>`, lx, barTop+13, esc(s.role))
		}
		w.WriteString("\n")
	}
}

// fitBetween finds where a label of width wd starts in [from, to] so that no
// line of blocked crosses it: past each line in its way, in order. False
// if it does not fit.
func fitBetween(from, to, wd float64, blocked []float64) (float64, bool) {
	lx := from
	for _, b := range blocked {
		if b >= lx-2 && b <= lx+wd+2 {
			lx = b + 3
		}
	}
	return lx, lx+wd <= to
}

// drawPins draws a board's GPIO levels as steps, one path a pin, stacked
// a little so that pins at the same level stay apart.
// laneHeight is a lane's height under its fault labels: one row more for
// each pin past the first.
func laneHeight(pins map[int][]pinStep) float64 {
	return laneBody + pinRowH*float64(max(len(pins)-1, 0))
}

func drawPins(w *strings.Builder, board string, pins map[int][]pinStep, x func(float64) float64, end, base0 float64) {
	var nums []int
	for p := range pins {
		nums = append(nums, p)
	}
	sort.Ints(nums)
	for k, p := range nums {
		base := base0 + float64(k)*pinRowH
		var path strings.Builder
		level := 0
		fmt.Fprintf(&path, "M%.1f,%.1f", x(0), base)
		for _, st := range pins[p] {
			fmt.Fprintf(&path, " L%.1f,%.1f L%.1f,%.1f", x(st.at), base-float64(level)*7, x(st.at), base-float64(st.level)*7)
			level = st.level
		}
		fmt.Fprintf(&path, " L%.1f,%.1f", x(end), base-float64(level)*7)
		fmt.Fprintf(w, `<path d="%s" fill="none" stroke="#5cb85c" stroke-width="1.5"><title>%s GPIO%d</title></path>`+"\n", path.String(), esc(board), p)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" fill="#5cb85c" font-size="10">GPIO%d</text>`+"\n", axisLeft-40, base, p)
	}
}

// mark is a fault on the timeline: a dashed line, its title, and a short
// label in a row of its strip (row -1: no room, the line and title only).
type mark struct {
	x            float64
	label, title string
	row          int
	lx           float64 // where the label starts
}

// marks are the faults of a lane, or of the whole LAN, with the rows of
// labels they take.
type marks struct {
	list []mark
	rows int
}

// faultMarks gathers the faults of the timeline: those of the LAN
// (partition, heal), and those of each board, their labels laid out.
func faultMarks(r Result, boards []string, x func(float64) float64) (*marks, map[string]*marks) {
	lan, lanes := &marks{}, map[string]*marks{}
	for _, b := range boards {
		lanes[b] = &marks{}
	}
	for _, e := range r.Timeline {
		label := faultLabel(e.Kind)
		if label == "" || e.At.Seconds() == 0 {
			continue
		}
		m := mark{x: x(e.At.Seconds()), label: label, title: strings.TrimSpace(check.Line(e)), row: -1}
		to := lan
		if l := lanes[e.Board]; l != nil {
			to = l
		}
		to.list = append(to.list, m)
	}
	lan.layout(nil)
	through := obstacles(lan, &marks{}) // the LAN's lines cross every lane's labels
	for _, l := range lanes {
		l.layout(through)
	}
	return lan, lanes
}

func faultLabel(kind string) string {
	switch kind {
	case sim.EvPowerOff:
		return "off"
	case sim.EvPowerOn:
		return "on"
	case firmware.EvReset, firmware.EvUpdate, firmware.EvRollback, firmware.EvWiFiLost, sim.EvLink, sim.EvPartition, sim.EvHeal:
		return kind
	}
	return ""
}

// layout gives each label the first row where it overlaps no other label
// and no line crosses it: the lines of through cross every row, a mark's
// own runs from its label's row down. A label with no room in
// maxFaultRows rows is left out: its line, then, starts under the labels
// and keeps its title.
func (ms *marks) layout(through []float64) {
	var rs rows
	for i := range ms.list {
		m := &ms.list[i]
		wd := float64(len(m.label)) * charW
		m.lx = m.x + 2
		if m.lx+wd > svgWidth-2 {
			m.lx = m.x - 2 - wd // the last ones stay on the page, left of their line
		}
		for k := 0; k <= len(rs) && k < maxFaultRows; k++ {
			if ms.fits(i, k, rs, through) {
				m.row = k
				rs.take(k, m.lx, m.lx+wd)
				break
			}
		}
	}
	ms.rows = len(rs)
}

// fits says whether mark i's label can go in row k of rs: free there, no
// line across it (through, or of an earlier mark labelled in a row above
// or in this one), and its own line, from row k down, across no label
// below.
func (ms *marks) fits(i, k int, rs rows, through []float64) bool {
	m := ms.list[i]
	lo, hi := m.lx, m.lx+float64(len(m.label))*charW
	if k < len(rs) && !free(rs[k], lo, hi) {
		return false
	}
	crosses := func(x, lo, hi float64) bool { return x > lo-2 && x < hi+2 }
	for _, x := range through {
		if crosses(x, lo, hi) {
			return false
		}
	}
	for _, p := range ms.list[:i] {
		if p.row < 0 {
			continue
		}
		plo, phi := p.lx, p.lx+float64(len(p.label))*charW
		if p.row <= k && crosses(p.x, lo, hi) || p.row > k && crosses(m.x, plo, phi) {
			return false
		}
	}
	return true
}

// obstacles are the x of the fault lines that cross a lane's bar.
func obstacles(lane, lan *marks) []float64 {
	var xs []float64
	for _, m := range append(append([]mark(nil), lane.list...), lan.list...) {
		xs = append(xs, m.x)
	}
	sort.Float64s(xs)
	return xs
}

// stripHeight is the room n rows of fault labels take above a lane.
func stripHeight(n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(n)*faultRowH + 2
}

// drawMarks draws faults as dashed lines down to y2, their labels in rows
// from top, each line from its label's row (from under the labels,
// below, for one without a label).
func drawMarks(w *strings.Builder, ms *marks, top, below, y2 float64) {
	for _, m := range ms.list {
		y1 := below
		if m.row >= 0 {
			y1 = top + float64(m.row)*faultRowH
		}
		fmt.Fprintf(w, `<line class="fault" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-dasharray="3,2"><title>%s</title></line>`,
			m.x, y1, m.x, y2, esc(m.title))
		if m.row >= 0 {
			fmt.Fprintf(w, `<text class="fault-label" x="%.1f" y="%.1f" font-size="10">%s<title>%s</title></text>`, m.lx, y1+9, esc(m.label), esc(m.title))
		}
		w.WriteString("\n")
	}
}

// rows lays labels out greedily, each in the first row where its extent
// meets no other's (with labelGap between): so none overlaps another.
type rows [][][2]float64

// find returns the first row where [lo, hi] is free, or -1.
func (rs rows) find(lo, hi float64) int {
	for i, row := range rs {
		if free(row, lo, hi) {
			return i
		}
	}
	return -1
}

func (rs *rows) take(i int, lo, hi float64) {
	if i == len(*rs) {
		*rs = append(*rs, nil)
	}
	(*rs)[i] = append((*rs)[i], [2]float64{lo, hi})
}

func free(row [][2]float64, lo, hi float64) bool {
	for _, iv := range row {
		if lo < iv[1]+labelGap && hi > iv[0]-labelGap {
			return false
		}
	}
	return true
}

// placedStep is a step of the run as drawn: its mark from x0 to x1 (an
// action, or an expectation that took no time, is a marker at x0), in a
// row of the steps band, its label starting at lx, inside its bar or
// beside its mark.
type placedStep struct {
	StepRecord
	x0, x1 float64
	row    int
	label  string
	lx     float64
	inside bool
}

// bar says whether the step is drawn as a bar: an expectation that took
// time enough to show.
func (p placedStep) bar() bool { return p.Expect && p.x1-p.x0 >= 2 }

// layoutSteps puts each step in the first row of the band where its mark
// and label meet no other's: with its number and what it does if that
// fits in a row already open, else with its number alone; when neither
// fits, a new row opens (with the number alone once the band has three).
// It returns the steps and the rows they take.
func layoutSteps(steps []StepRecord, x func(float64) float64) ([]placedStep, int) {
	var rs rows
	out := make([]placedStep, 0, len(steps))
	for _, s := range steps {
		p := placedStep{StepRecord: s, x0: x(s.At), x1: x(s.At), row: -1}
		if s.Expect {
			p.x1 = math.Max(x(s.End), p.x0)
		}
		long := fmt.Sprintf("%d %s", s.N, truncate(s.What, 32))
		short := strconv.Itoa(s.N)
		for _, text := range []string{long, short} {
			if i := rs.find(p.extent(text)); i >= 0 {
				p.place(&rs, i, text)
				break
			}
		}
		if p.row < 0 {
			text := long
			if len(rs) >= 3 {
				text = short // the band grows enough: numbers alone from here on
			}
			p.place(&rs, len(rs), text)
		}
		out = append(out, p)
	}
	return out, len(rs)
}

func (p *placedStep) place(rs *rows, row int, text string) {
	lo, hi := p.extent(text)
	p.row, p.label = row, text
	p.lx, p.inside = p.labelAt(text)
	rs.take(row, lo, hi)
}

// labelAt is where a label starts: inside the step's bar if it fits there,
// else after its mark, or before it when after would run off the page.
func (p placedStep) labelAt(text string) (lx float64, inside bool) {
	wd := float64(len([]rune(text))) * charW
	after, pad := p.x0+7, 7.0 // past a marker
	if p.bar() {
		if wd <= p.x1-p.x0-6 {
			return p.x0 + 3, true
		}
		after, pad = p.x1+5, 5
	}
	if after+wd <= svgWidth-2 {
		return after, false
	}
	return math.Max(p.x0-pad-wd, 2), false
}

// extent is the room a step takes in its row with a label text: its mark
// and its label.
func (p placedStep) extent(text string) (lo, hi float64) {
	lx, _ := p.labelAt(text)
	wd := float64(len([]rune(text))) * charW
	lo, hi = p.x0-6, p.x1+6 // a marker's half width, and a little
	if p.bar() {
		lo, hi = p.x0-1, p.x1+1
	}
	return math.Min(lo, lx), math.Max(hi, lx+wd)
}

// stepClass is the class of a step's verdict, in the picture and the page.
func stepClass(verdict string) string {
	switch verdict {
	case "ok", "failed", "skipped":
		return "step-" + verdict
	case "not judged":
		return "step-notjudged"
	}
	return "step-none"
}

// stepColour is the colour of a step's verdict.
func stepColour(verdict string) string {
	switch verdict {
	case "ok":
		return "#2e9e44"
	case "failed":
		return "#c9302c"
	case "skipped":
		return "#999"
	case "not judged":
		return "#e6a100"
	}
	return "#ccc"
}

// stepTitle is what hovering over a step shows.
func stepTitle(s StepRecord) string {
	return fmt.Sprintf("step %d: %s — %s (%.3f–%.3f s)", s.N, s.What, orDefault(s.Verdict, "not run"), s.At, s.End)
}

// drawSteps draws the steps band, on a pale ground that sets it apart
// from the lanes: in each row, marks coloured by verdict and their labels.
func drawSteps(w *strings.Builder, steps []placedStep, top, height float64) {
	fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f7f7f7"/>`+"\n", axisLeft-8, top-2, axisWidth+16, height)
	fmt.Fprintf(w, `<text class="band" x="10" y="%.1f" font-weight="bold" fill="#555">steps</text>`+"\n", top+11.5)
	for _, s := range steps {
		row := top + float64(s.row)*stepRowH
		colour := stepColour(s.Verdict)
		fmt.Fprintf(w, `<g class="step %s" data-step="%d"><title>%s</title>`, stepClass(s.Verdict), s.N, esc(stepTitle(s.StepRecord)))
		switch {
		case s.bar():
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="13" rx="2" fill="%s"/>`, s.x0, row+1.5, s.x1-s.x0, colour)
		case s.Expect: // it took no time: a dot
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s"/>`, s.x0, row+8, colour)
		default: // an action: a diamond
			fmt.Fprintf(w, `<path d="M%.1f,%.1f l6,6 l-6,6 l-6,-6 z" fill="%s"/>`, s.x0, row+2, colour)
		}
		fmt.Fprintf(w, `<text class="step-label" x="%.1f" y="%.1f" font-size="10" fill="%s">%s</text></g>`+"\n", s.lx, row+11.5, labelColour(s), esc(s.label))
	}
}

// labelColour reads on the bar the label is in (white on the dark ones),
// or says a failure beside its mark.
func labelColour(s placedStep) string {
	switch {
	case s.inside && (s.Verdict == "ok" || s.Verdict == "failed"):
		return "white"
	case !s.inside && s.Verdict == "failed":
		return stepColour(s.Verdict)
	}
	return "#222"
}

// drawFailure draws the failure as a red line, its message above it all.
func drawFailure(w *strings.Builder, r Result, fx, labelY, axisY float64) {
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="red" stroke-width="2"/>`, fx, labelY+2, fx, axisY)
	msg := strings.SplitN(strings.Join(r.Failures, " "), "\n", 2)[0]
	anchor, tx := "start", fx+4
	if fx > axisLeft+axisWidth/2 {
		anchor, tx = "end", fx-4 // keep the label on the page
	}
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" fill="red" font-weight="bold" text-anchor="%s">FAILED: %s</text>`+"\n", tx, labelY, anchor, esc(truncate(msg, 110)))
}

// drawLegend draws two rows under the axis: the lanes' marks, then the
// steps' and their verdicts' colours.
func drawLegend(w *strings.Builder, ly float64) {
	lx := axisLeft
	for _, item := range []struct{ color, label string }{{"#d9534f", "MASTER"}, {"#428bca", "WORKERn"}, {"#bbb", "JOINING"}} {
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="14" height="10" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n", lx, ly-9, item.color, lx+18, ly, item.label)
		lx += 95
	}
	fmt.Fprintf(w, `<path d="M%.1f,%.1f h16" stroke="#5cb85c" stroke-width="1.5"/><text x="%.1f" y="%.1f">GPIO level</text>`+"\n", lx, ly-4, lx+20, ly)
	lx += 95
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-dasharray="3,2"/><text x="%.1f" y="%.1f">fault (hover: what)</text>`+"\n", lx+6, ly-10, lx+6, ly+2, lx+12, ly)
	lx += 140
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="red" stroke-width="2"/><text x="%.1f" y="%.1f">failed expectation</text>`+"\n", lx+6, ly-10, lx+6, ly+2, lx+12, ly)

	ly += 20
	lx = axisLeft
	fmt.Fprintf(w, `<path d="M%.1f,%.1f l5,5 l-5,5 l-5,-5 z" fill="#555"/><text x="%.1f" y="%.1f">action</text>`+"\n", lx+5, ly-10, lx+14, ly)
	lx += 70
	fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="20" height="8" rx="2" fill="#555"/><text x="%.1f" y="%.1f">expectation (hover: what)</text>`+"\n", lx, ly-8, lx+24, ly)
	lx += 175
	for _, v := range []string{"ok", "failed", "skipped", "not judged"} {
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="14" height="10" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n", lx, ly-9, stepColour(v), lx+18, ly, v)
		lx += 80
	}
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f">LED:</text>`+"\n", lx, ly)
	lx += 30
	for _, p := range []string{"connecting", "idle", "active"} {
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="14" height="3" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n", lx, ly-5, ledColour(p), lx+18, ly, p)
		lx += 12*8 - 8
	}
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
