package scenario

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The report's page opened in a real browser (headless Chromium, which
// make tools installs): it renders to a screenshot, its script runs (the
// event filter counts what it shows), a lane per board, the failing
// expectation's row marked (issue 16), a row and a mark per step.
func TestReportPageInARealBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if browser, err = exec.LookPath("chromium-browser"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("chromium is not installed: `make tools` installs it")
			}
			t.Skip("chromium is not installed: run `make tools`")
		}
	}
	s, err := Parse("f.yaml", []byte(`name: wrong master
seed: 3
topology:
  boards: [{name: alpha}, {name: beta}, {name: gamma}]
  network: {radio: ideal}
steps:
  - expect: {eventually: 5s, members_agree: true}
  - at: 8s
    power_off: alpha
  - expect: {eventually: 5s, master_is: gamma}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := Run(s, Options{})
	if r.Passed {
		t.Fatal("the scenario should fail")
	}
	dir := t.TempDir()
	if err := WriteReport(dir, r); err != nil {
		t.Fatal(err)
	}
	page := "file://" + filepath.Join(dir, "index.html")
	chrome := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, browser, append([]string{"--headless", "--no-sandbox", "--disable-gpu",
			"--no-first-run", "--user-data-dir=" + filepath.Join(dir, "profile")}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return out
	}
	dom := string(chrome("--dump-dom", page))
	if n := strings.Count(dom, `class="lane"`); n != 3 {
		t.Errorf("%d lanes in the picture, want 3 (alpha, beta, gamma)", n)
	}
	if !strings.Contains(dom, `<tr data-board="`) || !regexp.MustCompile(`<tr data-board="[^"]*" class="failed">`).MatchString(dom) {
		t.Error("no event row marked as the failure")
	}
	if m := regexp.MustCompile(`<span id="shown">(\d+) events</span>`).FindStringSubmatch(dom); m == nil || m[1] == "0" {
		t.Errorf("the page's script did not run (the filter counts the events it shows): %v", m)
	}
	// The steps: a row each in the table, the failed one marked, and a
	// mark each in the picture.
	if len(r.Steps) != 3 {
		t.Fatalf("%d steps recorded, want 3: %+v", len(r.Steps), r.Steps)
	}
	rows := regexp.MustCompile(`<tr class="([^"]*)" data-step="(\d+)">`).FindAllStringSubmatch(dom, -1)
	if len(rows) != len(r.Steps) {
		t.Errorf("%d rows in the steps table, want %d", len(rows), len(r.Steps))
	}
	for i, m := range rows {
		if failed := strings.Contains(" "+m[1]+" ", " failed "); failed != (i == 2) {
			t.Errorf("step %s's row has class %q: only step 3's should be marked failed", m[2], m[1])
		}
	}
	if n := strings.Count(dom, `<g class="step step-`); n != len(r.Steps) {
		t.Errorf("%d steps in the picture, want %d", n, len(r.Steps))
	}
	if !strings.Contains(dom, `id="verdict">FAILED<`) || !strings.Contains(dom, "picosim run --seed 3") {
		t.Error("the verdict or the replay command is missing")
	}
	shot := filepath.Join(dir, "report.png")
	chrome("--screenshot="+shot, "--window-size=1280,1000", page)
	if info, err := os.Stat(shot); err != nil || info.Size() < 20_000 {
		t.Fatalf("no screenshot worth the name: %v", err)
	}
	if keep := os.Getenv("PICOSIM_KEEP_SCREENSHOT"); keep != "" {
		b, _ := os.ReadFile(shot)
		os.WriteFile(keep, b, 0o644)
	}
}
