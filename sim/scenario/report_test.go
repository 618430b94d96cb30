package scenario

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportDrawsLanesFaultsAndTheFailure(t *testing.T) {
	s, err := Parse("f.yaml", []byte(`name: wrong master
seed: 3
topology:
  boards: 3
  network: {radio: ideal}
steps:
  - expect: {eventually: 5s, members_agree: true}
  - at: 8s
    power_off: pico1
  - expect: {eventually: 5s, master_is: pico3}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := Run(s, Options{})
	if r.Passed || r.FailedAt == nil {
		t.Fatalf("the scenario should fail: %+v", r)
	}
	dir := t.TempDir()
	if err := WriteReport(dir, r); err != nil {
		t.Fatal(err)
	}
	lines, _ := os.ReadFile(filepath.Join(dir, "timeline.jsonl"))
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil || e["event"] == nil || e["t"] == nil {
			t.Fatalf("line %q: %v", l, err)
		}
		n++
	}
	if n != len(r.Timeline) {
		t.Fatalf("%d lines for %d events", n, len(r.Timeline))
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "timeline.svg"))
	for _, want := range []string{"<svg", ">pico1<", ">pico3<", ">MASTER<", ">off<", "FAILED: step 3"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("the picture lacks %q", want)
		}
	}
}

// Boards with names of their own get lanes too, in natural order, and the
// picture has a legend (issue 16: a scenario of alpha, beta and gamma drew
// no rows).
func TestReportDrawsEveryBoardWhateverItsName(t *testing.T) {
	s, err := Parse("f.yaml", []byte(`name: named boards
topology:
  boards: [{name: gamma}, {name: alpha}, {name: beta10}, {name: beta2}]
  network: {radio: ideal}
steps:
  - expect: {eventually: 5s, members_agree: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := Run(s, Options{})
	if !r.Passed {
		t.Fatalf("%v", r.Failures)
	}
	svg := svg(r)
	last := -1
	for _, b := range []string{">alpha<", ">beta2<", ">beta10<", ">gamma<"} {
		i := strings.Index(svg, b)
		if i < 0 || i < last {
			t.Fatalf("lane %s missing or out of order:\n%s", b, svg)
		}
		last = i
	}
	for _, want := range []string{">MASTER</text>", ">WORKERn</text>", ">GPIO level</text>", "failed expectation", "s simulated)"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the picture lacks %q", want)
		}
	}
}

// The page links the run's other files by paths relative to it, so that
// the folders can be copied together (a CI artefact) and still work.
func TestReportLinksTheCaptureAndJUnit(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "reports", "echo")
	if err := WriteReport(dir, Result{Scenario: "echo", Passed: true, SimS: 1},
		File{Label: "capture", Path: filepath.Join(root, "caps", "echo one.pcapng")},
		File{Label: "JUnit report", Path: filepath.Join(root, "junit.xml")}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<a href="../../caps/echo%20one.pcapng">capture</a>`, `<a href="../../junit.xml">JUnit report</a>`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("index.html has no %s", want)
		}
	}
}
