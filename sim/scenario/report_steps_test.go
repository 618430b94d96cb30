package scenario

import (
	"html"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/sim"
)

// crowdedRun is a run made up to crowd the picture: steps close in time
// (actions at the same instant, an expectation that took no time), a
// skipped step, a failed expectation, and a burst of faults on one board.
func crowdedRun() Result {
	at := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	var tl sim.Timeline
	for _, b := range []string{"pico1", "pico2", "pico3"} {
		tl = append(tl, sim.Event{At: 0, Board: b, Kind: sim.EvPowerOn})
	}
	tl = append(tl,
		sim.Event{At: at(2), Board: "pico1", Kind: firmware.EvRole, Role: "MASTER"},
		sim.Event{At: at(2), Board: "pico2", Kind: firmware.EvRole, Role: "WORKER1"},
		sim.Event{At: at(2), Board: "pico3", Kind: firmware.EvRole, Role: "WORKER2"},
		sim.Event{At: at(3), Board: "pico2", Kind: firmware.EvPin, Detail: "GPIO15 = 1 (write)"},
		sim.Event{At: at(4.4), Board: "pico2", Kind: sim.EvLink, Detail: "loss 0.5"},
		sim.Event{At: at(5), Kind: sim.EvPartition, Detail: "[[pico1] [pico2 pico3]]"},
		sim.Event{At: at(5), Board: "pico1", Kind: sim.EvPowerOff},
		sim.Event{At: at(5.05), Board: "pico1", Kind: sim.EvPowerOn},
		sim.Event{At: at(5.1), Board: "pico1", Kind: sim.EvLink, Detail: "loss 0.25"},
		sim.Event{At: at(5.15), Board: "pico1", Kind: firmware.EvReset},
		sim.Event{At: at(5.2), Board: "pico1", Kind: firmware.EvWiFiLost},
		sim.Event{At: at(5.25), Board: "pico1", Kind: firmware.EvUpdate},
		sim.Event{At: at(5.3), Kind: sim.EvHeal},
		sim.Event{At: at(7), Board: "pico1", Kind: firmware.EvRole, Role: "WORKER3"},
		sim.Event{At: at(7), Board: "pico2", Kind: firmware.EvRole, Role: "MASTER"},
		sim.Event{At: at(11.9), Board: "pico3", Kind: sim.EvPowerOff},
	)
	failed := 12.0
	return Result{Scenario: "crowded", Target: "sim", Seed: 7, SimS: 12, Timeline: tl, FailedAt: &failed,
		Failures: []string{"step 10 at 12.000s: expected master pico3 within 4s: the master is pico2"},
		Replay:   "picosim run --seed 7 crowded.yaml",
		Steps: []StepRecord{
			{N: 1, At: 0, End: 2.2, What: "expect members agree within 5s", Expect: true, Verdict: "ok"},
			{N: 2, At: 4.4, End: 4.4, What: "set_link pico2", Verdict: "ok"},
			{N: 3, At: 5, End: 5, What: "partition pico1 | pico2,pico3", Verdict: "ok"},
			{N: 4, At: 5, End: 5, What: "power_off pico1", Verdict: "ok"},
			{N: 5, At: 5.05, End: 5.05, What: "power_on pico1", Verdict: "ok"},
			{N: 6, At: 5.05, End: 5.05, What: "forge HELLO", Verdict: "skipped"},
			{N: 7, At: 5.3, End: 5.3, What: "heal", Verdict: "ok"},
			{N: 8, At: 5.3, End: 5.3, What: "expect members agree", Expect: true, Verdict: "ok"},
			{N: 9, At: 5.3, End: 8, What: "wait 2.7s", Verdict: "ok"},
			{N: 10, At: 8, End: 12, What: "expect master pico3 within 4s", Expect: true, Verdict: "failed"},
		}}
}

// box is a label's estimated extent: 6 px a character at font-size 10.
type box struct{ x0, x1, y0, y1 float64 }

func (a box) overlaps(b box) bool { return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1 }

// labels finds the <text> elements of a class and estimates their boxes.
func labels(t *testing.T, svg, class string, charWidth, size float64) ([]box, []string) {
	t.Helper()
	re := regexp.MustCompile(`<text class="` + class + `" x="([-\d.]+)" y="([-\d.]+)"[^>]*>([^<]*)<`)
	var boxes []box
	var texts []string
	for _, m := range re.FindAllStringSubmatch(svg, -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		y, _ := strconv.ParseFloat(m[2], 64)
		text := html.UnescapeString(m[3])
		boxes = append(boxes, box{x, x + charWidth*float64(len([]rune(text))), y - size, y})
		texts = append(texts, text)
	}
	return boxes, texts
}

func noOverlaps(t *testing.T, what string, boxes []box, texts []string) {
	t.Helper()
	for i := range boxes {
		for j := i + 1; j < len(boxes); j++ {
			if boxes[i].overlaps(boxes[j]) {
				t.Errorf("%s %q %v and %q %v overlap", what, texts[i], boxes[i], texts[j], boxes[j])
			}
		}
	}
}

// Every step is drawn once, coloured and classed by its verdict, with a
// title that says what it was; no two step labels overlap.
func TestReportDrawsStepsWithVerdicts(t *testing.T) {
	r := crowdedRun()
	out := svg(r)
	if n := strings.Count(out, `<g class="step `); n != len(r.Steps) {
		t.Errorf("%d step elements, want %d", n, len(r.Steps))
	}
	group := regexp.MustCompile(`<g class="step ([\w-]+)" data-step="(\d+)"><title>([^<]*)</title><(?:path|circle|rect) [^>]*fill="([^"]+)"`)
	found := map[int]bool{}
	for _, m := range group.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		s := r.Steps[n-1]
		found[n] = true
		if m[1] != stepClass(s.Verdict) || m[4] != stepColour(s.Verdict) {
			t.Errorf("step %d (%s) drawn as %s in %s", n, s.Verdict, m[1], m[4])
		}
		want := "step " + m[2] + ": " + s.What + " — " + s.Verdict + " ("
		if title := html.UnescapeString(m[3]); !strings.HasPrefix(title, want) || !strings.HasSuffix(title, " s)") {
			t.Errorf("step %d's title is %q, want %q…", n, title, want)
		}
	}
	for _, s := range r.Steps {
		if !found[s.N] {
			t.Errorf("step %d is not drawn", s.N)
		}
	}
	for _, want := range []string{`class="step step-failed" data-step="10"`, `class="step step-skipped" data-step="6"`,
		`fill="#c9302c"`, `fill="#999"`, ">not judged</text>", ">skipped</text>"} {
		if !strings.Contains(out, want) {
			t.Errorf("the picture lacks %s", want)
		}
	}
	boxes, texts := labels(t, out, "step-label", charW, 10)
	if len(boxes) != len(r.Steps) {
		t.Fatalf("%d step labels, want %d", len(boxes), len(r.Steps))
	}
	noOverlaps(t, "step labels", boxes, texts)
	for i, b := range boxes {
		if b.x0 < 0 || b.x1 > svgWidth {
			t.Errorf("step label %q runs off the picture: %v", texts[i], b)
		}
	}
}

// A burst of faults on one board: their labels do not overlap (those with
// no room are left out, their lines keep their titles), and no role label
// is drawn across a fault line.
func TestReportFaultLabelsDoNotOverlap(t *testing.T) {
	r := crowdedRun()
	out := svg(r)
	boxes, texts := labels(t, out, "fault-label", charW, 10)
	if len(boxes) < 4 {
		t.Fatalf("only %d fault labels: %q", len(boxes), texts)
	}
	noOverlaps(t, "fault labels", boxes, texts)
	lines := regexp.MustCompile(`<line class="fault" x1="([\d.]+)" y1="([\d.]+)" x2="[\d.]+" y2="([\d.]+)"[^>]*><title>[^<]+</title>`).FindAllStringSubmatch(out, -1)
	if len(lines) != 10 { // every fault after 0s, each with its title
		t.Errorf("%d fault lines with a title, want 10", len(lines))
	}
	roles, names := labels(t, out, "role", roleCharW, 11)
	if len(roles) == 0 {
		t.Fatal("no role labels")
	}
	for i, b := range roles {
		for _, l := range lines {
			x, _ := strconv.ParseFloat(l[1], 64)
			y1, _ := strconv.ParseFloat(l[2], 64)
			y2, _ := strconv.ParseFloat(l[3], 64)
			if x > b.x0 && x < b.x1 && b.y1 > y1 && b.y0 < y2 {
				t.Errorf("role label %q %v is crossed by the fault line at x=%.1f", names[i], b, x)
			}
		}
		for j, f := range boxes {
			if b.overlaps(f) {
				t.Errorf("role label %q overlaps fault label %q", names[i], texts[j])
			}
		}
	}
}

// The page lists the steps: a row each, coloured by its verdict, the
// failed one marked.
func TestPageListsTheSteps(t *testing.T) {
	r := crowdedRun()
	p := page(r)
	rows := regexp.MustCompile(`<tr class="([\w -]+)" data-step="(\d+)">`).FindAllStringSubmatch(p, -1)
	if len(rows) != len(r.Steps) {
		t.Fatalf("%d step rows, want %d", len(rows), len(r.Steps))
	}
	for i, m := range rows {
		s := r.Steps[i]
		want := stepClass(s.Verdict)
		if s.Verdict == "failed" {
			want += " failed"
		}
		if m[1] != want || m[2] != strconv.Itoa(s.N) {
			t.Errorf("row %d: class %q step %s, want %q step %d", i, m[1], m[2], want, s.N)
		}
	}
	if !strings.Contains(p, `<td>8.000s–12.000s</td><td>expect master pico3 within 4s</td><td class="verdict">failed</td>`) {
		t.Error("the failed step's row is not as expected")
	}
}
