package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/scenario"
)

// calibrationCapture writes a capture of 4 boards with one lossy, slow pair
// (pico1 to pico2) and returns its path.
func calibrationCapture(t *testing.T, d time.Duration) string {
	t.Helper()
	c, err := sim.New(sim.Config{Boards: 4, Seed: 1, Settings: firmware.Settings{Heartbeat: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	link := netsim.Link{Burst: &netsim.Burst{P: 0.5 * 0.2 / 0.8, R: 0.5, LossBad: 1}, Latency: 10 * time.Millisecond, Jitter: 2 * time.Millisecond, Dist: netsim.Normal}
	if err := c.SetLink("pico2", link, "pico1"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.StartCapture(&buf); err != nil {
		t.Fatal(err)
	}
	c.Run(d)
	if err := c.StopCapture(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "lab.pcapng")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The profile calibrate writes is a scenario's network section: pasted
// under topology, the scenario loads, with the pairs it found.
func TestCalibrateWritesAScenarioNetwork(t *testing.T) {
	capture := calibrationCapture(t, 10*time.Minute)
	out := filepath.Join(t.TempDir(), "links.yaml")
	code, stdout, stderr := picosim(t, "calibrate", capture, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "pico1 → pico2") || !strings.Contains(stdout, "wrote "+out+": 12 of 12 pairs") {
		t.Errorf("table:\n%s", stdout)
	}
	if stderr != "" {
		t.Errorf("stderr for a short capture: %q", stderr)
	}
	profile, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", profile)
	for _, want := range []string{"# Link profile calibrated by `picosim calibrate` from lab.pcapng.", "pico1 -> pico2: ", "samples", "95%", "\nnetwork:\n  pairs:\n"} {
		if !strings.Contains(string(profile), want) {
			t.Errorf("the profile lacks %q", want)
		}
	}
	// Under a scenario's topology, indented.
	var src strings.Builder
	src.WriteString("name: calibrated links\ntopology:\n  boards: 4\n")
	for _, line := range strings.SplitAfter(string(profile), "\n") {
		if line != "" {
			src.WriteString("  " + line)
		}
	}
	src.WriteString("steps:\n  - wait: 10s\n")
	s, err := scenario.Parse("f.yaml", []byte(src.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, src.String())
	}
	pairs := s.Topology.Network.Pairs
	if len(pairs) != 12 {
		t.Fatalf("%d pairs: %+v", len(pairs), pairs)
	}
	for _, p := range pairs {
		if p.From != "pico1" || p.To != "pico2" {
			continue
		}
		// 20% in bursts of 2, 10±2 ms normal; 36,000 heartbeats in all.
		if p.Loss < 0.15 || p.Loss > 0.25 || p.BurstLength < 1.5 || p.BurstLength > 2.5 ||
			p.Latency.D() < 9*time.Millisecond || p.Latency.D() > 11*time.Millisecond || p.Distribution != netsim.Normal {
			t.Errorf("pico1 -> pico2: %+v", p)
		}
		return
	}
	t.Errorf("no pair pico1 -> pico2 in %+v", pairs)
}

// Without --out the YAML goes to standard output; --json gives every
// figure.
func TestCalibrateOutputs(t *testing.T) {
	capture := calibrationCapture(t, 2*time.Minute)
	code, stdout, stderr := picosim(t, "calibrate", capture)
	if code != 0 || !strings.HasPrefix(stdout, "# Link profile") || !strings.Contains(stdout, "\nnetwork:\n") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = picosim(t, "calibrate", "--json", capture)
	var doc struct {
		Heartbeats int `json:"heartbeats"`
		Pairs      []struct {
			From, To  string
			Samples   int     `json:"samples"`
			Loss      float64 `json:"loss"`
			Estimated bool    `json:"estimated"`
		} `json:"pairs"`
		Notes []string `json:"notes"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); code != 0 || err != nil {
		t.Fatalf("exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	if doc.Heartbeats < 4000 || len(doc.Pairs) != 12 || len(doc.Notes) == 0 || doc.Pairs[0].Samples == 0 {
		t.Errorf("JSON: %+v", doc)
	}
	// Too few samples for the minimum: exit 1, and says so.
	code, _, stderr = picosim(t, "calibrate", "--min-samples", "1000000", capture)
	if code != 1 || !strings.Contains(stderr, "no pair has 1000000 samples") {
		t.Errorf("--min-samples 1000000: exit %d\n%s", code, stderr)
	}
}

// What is not a capture, or not a whole one, is said plainly.
func TestCalibrateErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	capture := calibrationCapture(t, 2*time.Minute)
	whole, _ := os.ReadFile(capture)
	// A section header and an interface, and no packets.
	noPackets := whole[:28+32]
	for _, c := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no file", []string{"calibrate"}, 2, "give a capture file"},
		{"two files", []string{"calibrate", capture, capture}, 2, "one capture at a time"},
		{"missing", []string{"calibrate", filepath.Join(dir, "nope.pcapng")}, 2, "no such file"},
		{"empty", []string{"calibrate", file("empty.pcapng", nil)}, 2, "empty file: not a pcapng capture"},
		{"pcap", []string{"calibrate", file("old.pcap", []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0})}, 2, "editcap -F pcapng"},
		{"random", []string{"calibrate", file("random.bin", bytes.Repeat([]byte{0x5a, 0x13, 0xc7}, 1000))}, 2, "not a pcapng capture at byte 0"},
		{"no packets", []string{"calibrate", file("none.pcapng", noPackets)}, 1, "no discovery heartbeats"},
		{"truncated", []string{"calibrate", "--out", filepath.Join(dir, "t.yaml"), file("cut.pcapng", whole[:len(whole)-100])}, 0, "warning: " + filepath.Join(dir, "cut.pcapng") + ": truncated at byte"},
		{"bad flag", []string{"calibrate", "--outt", "x", capture}, 2, "did you mean --out"},
		{"bad key", []string{"calibrate", "--key", "xyz", capture}, 2, "hex digits"},
		{"unwritable out", []string{"calibrate", "--out", filepath.Join(dir, "no", "such", "dir.yaml"), capture}, 2, "--out:"},
	} {
		code, stdout, stderr := picosim(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.says) {
			t.Errorf("%s: exit %d (want %d), stderr:\n%s\nstdout:\n%s", c.name, code, c.code, stderr, stdout)
		}
	}
	// The truncated capture still gives its profile, with a word on it.
	if b, err := os.ReadFile(filepath.Join(dir, "t.yaml")); err != nil || !strings.Contains(string(b), "# The capture is cut short: truncated at byte") {
		t.Errorf("truncated capture's profile: %v\n%s", err, b)
	}
}

func TestCalibrateHelp(t *testing.T) {
	code, stdout, stderr := picosim(t, "calibrate", "--help")
	if code != 0 || !strings.Contains(stderr, "Usage: picosim calibrate") || !strings.Contains(stderr, "Examples:") || !strings.Contains(stderr, "-out") || stdout != "" {
		t.Errorf("calibrate --help: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := picosim(t, "help", "calibrate"); code != 0 || !strings.Contains(stderr, "Exit status") {
		t.Errorf("help calibrate: exit %d\n%s", code, stderr)
	}
	if _, out, _ := picosim(t, "__complete", "cal"); out != "calibrate\n" {
		t.Errorf("__complete cal: %q", out)
	}
	if _, out, _ := picosim(t, "__complete", "calibrate", "--j"); out != "--json\n" {
		t.Errorf("__complete calibrate --j: %q", out)
	}
}
