package scenario

import (
	"fmt"
	"html"
	"net/url"
	"strings"

	"github.com/picosim/picosim/sim/check"
)

// page is index.html of a run's report: one self-contained page (no
// network: the styles, the script and the picture are inside it) with the
// verdict, what failed and the command that replays it, the timeline
// picture, the steps with their verdicts, and the event log, which a
// select filters by board.
func page(r Result, files ...File) string {
	var w strings.Builder
	esc := html.EscapeString
	verdict, cls := "passed", "passed"
	switch {
	case !r.Passed:
		verdict, cls = "FAILED", "failed"
	case r.NotJudged != "":
		verdict, cls = "not judged", "notjudged"
	}
	clock := "simulated"
	if r.Target != "" && r.Target != "sim" {
		clock = "of wall-clock time"
	}
	fmt.Fprintf(&w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s — %s</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
.passed{color:#2a7a2a}.failed{color:#c9302c}.notjudged{color:#b07800}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eee}
tr.failed td{background:#fde8e8;font-weight:bold}
tr.step-ok td.verdict{color:#2e9e44}tr.step-skipped td{color:#777;background:#f4f4f4}
tr.step-notjudged td{background:#fff4d6}tr.step-notjudged td.verdict{color:#b07800}
.picture{overflow-x:auto;border:1px solid #ddd;margin:1em 0}
</style></head><body>
<h1>%s <span class="%s" id="verdict">%s</span></h1>
<p>Target %s, seed %d, %.1fs %s, %.2fs of wall time. File: %s.</p>
`, esc(r.Scenario), verdict, esc(r.Scenario), cls, verdict, esc(orDefault(r.Target, "sim")), r.Seed, r.SimS, clock, r.WallS, esc(r.File))
	if len(r.Failures) > 0 {
		w.WriteString(`<h2>What failed</h2><pre class="failed" id="failures">`)
		w.WriteString(esc(strings.Join(r.Failures, "\n")))
		w.WriteString("</pre>\n")
	}
	if r.NotJudged != "" {
		fmt.Fprintf(&w, `<p class="notjudged">%s</p>`+"\n", esc(r.NotJudged))
	}
	fmt.Fprintf(&w, "<h2>Replay</h2><pre id=\"replay\">%s</pre>\n", esc(r.Replay))
	w.WriteString(`<h2>Timeline</h2><div class="picture">` + svg(r) + "</div>\n")
	w.WriteString(`<p id="files">Also here: <a href="timeline.jsonl">timeline.jsonl</a> (one event a line), <a href="timeline.svg">timeline.svg</a>`)
	for _, f := range files {
		fmt.Fprintf(&w, `, <a href="%s">%s</a>`, esc((&url.URL{Path: f.Path}).String()), esc(f.Label))
	}
	w.WriteString(".</p>\n")
	stepsTable(&w, r.Steps)

	// The event log; the row of the failure is marked.
	boards := boardsOf(r)
	w.WriteString(`<h2>Events</h2><p><label>Board: <select id="board"><option value="">all</option>`)
	for _, b := range boards {
		fmt.Fprintf(&w, `<option>%s</option>`, esc(b))
	}
	w.WriteString("</select></label> <span id=\"shown\"></span></p>\n<table id=\"events\"><tr><th>time</th><th>board</th><th>event</th></tr>\n")
	failedAt := -1.0
	if r.FailedAt != nil {
		failedAt = *r.FailedAt
	}
	// The failure is a row of its own, in its place in time, marked.
	failure := func() {
		msg, _, _ := strings.Cut(strings.Join(r.Failures, " "), "\n")
		fmt.Fprintf(&w, `<tr data-board="" class="failed"><td>%.3fs</td><td></td><td>FAILED: %s</td></tr>`+"\n", failedAt, esc(msg))
		failedAt = -1
	}
	for _, e := range r.Timeline {
		if failedAt >= 0 && e.At.Seconds() > failedAt {
			failure()
		}
		// check.Line starts with the time and the board: columns here.
		line := strings.TrimSpace(check.Line(e))
		line = strings.TrimSpace(strings.TrimPrefix(line, fmt.Sprintf("%.3fs", e.At.Seconds())))
		line = strings.TrimSpace(strings.TrimPrefix(line, e.Board))
		fmt.Fprintf(&w, `<tr data-board="%s"><td>%.3fs</td><td>%s</td><td>%s</td></tr>`+"\n",
			esc(e.Board), e.At.Seconds(), esc(e.Board), esc(line))
	}
	if failedAt >= 0 {
		failure()
	}
	w.WriteString(`</table>
<script>
const sel = document.getElementById("board"), shown = document.getElementById("shown");
function filter() {
  let n = 0;
  for (const tr of document.querySelectorAll("#events tr[data-board]")) {
    const on = sel.value === "" || tr.dataset.board === sel.value || tr.classList.contains("failed");
    tr.style.display = on ? "" : "none";
    if (on) n++;
  }
  shown.textContent = n + " events";
}
sel.addEventListener("change", filter);
filter();
</script>
</body></html>
`)
	return w.String()
}

// stepsTable lists the steps of the run, each with its verdict: its row
// coloured by it, the failed one marked as the failure's row is below.
func stepsTable(w *strings.Builder, steps []StepRecord) {
	if len(steps) == 0 {
		return
	}
	w.WriteString("<h2>Steps</h2><table id=\"steps\"><tr><th>step</th><th>time</th><th>what</th><th>verdict</th></tr>\n")
	for _, s := range steps {
		cls := stepClass(s.Verdict)
		if s.Verdict == "failed" {
			cls += " failed"
		}
		when := fmt.Sprintf("%.3fs", s.At)
		if s.End > s.At {
			when = fmt.Sprintf("%.3fs–%.3fs", s.At, s.End)
		}
		fmt.Fprintf(w, `<tr class="%s" data-step="%d"><td>%d</td><td>%s</td><td>%s</td><td class="verdict">%s</td></tr>`+"\n",
			cls, s.N, s.N, when, html.EscapeString(s.What), html.EscapeString(orDefault(s.Verdict, "not run")))
	}
	w.WriteString("</table>\n")
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
