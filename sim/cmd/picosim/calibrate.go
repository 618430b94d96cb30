package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/picosim/picosim/sim/calibrate"
)

// calibrate is one of picosim's commands (the usage's list does not name it
// yet).
const calibrateHelp = `Usage: picosim calibrate [flags] CAPTURE.pcapng

Reads a capture of a cluster's discovery traffic (UDP port 37020) taken on
real boards, and estimates for every ordered pair of boards the link their
heartbeats crossed: the loss, the mean length of loss bursts (Gilbert
model), and the one-way latency's distribution (mean, p50, p90, p99, jitter,
and whether a normal or a uniform jitter fits it better). Heartbeats carry
what makes this possible: their send times (the capture's timestamps), and
each board's report of the newest heartbeat it holds from every other one,
and how long ago it got it.

It writes the network section of a scenario, one line per pair, for a
scenario to include (network: {include: FILE}) or to paste under its
topology:

  network:
    pairs:
      - {from: pico1, to: pico2, loss: 9.8%, burst_length: 2.9, latency: 21ms, jitter: 6ms, distribution: normal}

with a comment that names the capture, its size and span, each pair's
sample count and 95% intervals, and what a capture cannot tell (see 'go doc
github.com/picosim/picosim/sim/calibrate' for the estimator). Pairs with too
few samples are left out. How much capture: a pair's figures come from
the sender's heartbeats, 25,000 of which (7 hours at the default 1 s
heartbeat, 42 minutes at 100 ms) give a loss of 10% in bursts of 3 within
about ±1 percentage point, and the burst within about 15%.

The capture must be pcapng (tshark and dumpcap write it; tcpdump writes
pcap: convert with editcap -F pcapng). Ethernet, Linux cooked, raw IP and
unencrypted 802.11 frames are read. Keyed discovery: frames are read without
their tags checked, unless --key is given.

Standard output gets the YAML, or with --out the table (the YAML goes to the
file), or with --json the whole profile as JSON (every count and standard
error). A long capture's progress goes to standard error.

Exit status: 0 when a profile was written (a truncated capture is warned
about and calibrated from what it holds); 1 when the capture has nothing to
calibrate (no heartbeats, one board, no pair with enough samples); 2 on bad
flags, a file that is not a pcapng capture, or an --out that cannot be
written.

Examples:
  tshark -i wlan0 -f 'udp port 37020' -w lab.pcapng     # while the boards run
  picosim calibrate lab.pcapng > lab-links.yaml
  picosim calibrate --out lab-links.yaml lab.pcapng
  picosim calibrate --json lab.pcapng | jq '.pairs[] | {from, to, loss}'
  picosim cluster --nodes 4 --heartbeat 100ms --duration 10m --radio ideal --pcap sim.pcapng
  picosim calibrate sim.pcapng

Flags:
`

func calibrateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, calibrateHelp); fs.PrintDefaults() }
	out := fs.String("out", "", "write the YAML to this file (and print the table)")
	asJSON := fs.Bool("json", false, "print the profile as JSON instead of YAML")
	minSamples := fs.Int("min-samples", 100, "the fewest samples a pair needs to be calibrated")
	var key keyFlag
	fs.Var(&key, "key", "check keyed discovery frames' tags with this key (32 to 64 hex digits); frames that fail are dropped")
	files, code, ok := parseInterleaved(fs, args, stderr)
	if !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "picosim calibrate: "+format+"\n", a...)
		return code
	}
	switch {
	case len(files) == 0:
		return fail(2, "give a capture file (picosim help calibrate)")
	case len(files) > 1:
		return fail(2, "one capture at a time, not %d", len(files))
	case *minSamples < 1:
		return fail(2, "--min-samples %d: want 1 or more", *minSamples)
	}
	path := files[0]
	f, err := os.Open(path)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer f.Close()
	var size int64
	if info, err := f.Stat(); err == nil {
		size = info.Size()
	}

	// Progress for captures that take a while: a line every 2 s.
	start := time.Now()
	last := start
	progress := func(bytes int64, packets int) {
		if time.Since(last) < 2*time.Second {
			return
		}
		last = time.Now()
		pct := ""
		if size > 0 {
			pct = fmt.Sprintf(" (%d%%)", 100*bytes/size)
		}
		fmt.Fprintf(stderr, "picosim calibrate: read %s of %s%s, %d packets\n", calibrateMiB(bytes), calibrateMiB(size), pct, packets)
	}
	c, err := calibrate.ReadWith(f, calibrate.ReadOptions{Key: key, Progress: progress})
	var fe *calibrate.FormatError
	switch {
	case errors.As(err, &fe) && c != nil && c.Packets > 0:
		fmt.Fprintf(stderr, "picosim calibrate: warning: %s: %v; calibrating from the %d packets before it\n", path, err, c.Packets)
	case err != nil:
		return fail(2, "%s: %v", path, err)
	}
	pairs := func(done, total int) {
		if time.Since(last) < 2*time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(stderr, "picosim calibrate: %d heartbeats read; estimated %d of %d pairs\n", len(c.Heartbeats), done, total)
	}
	p, err := calibrate.Estimate(c, calibrate.Options{Source: filepath.Base(path), MinSamples: *minSamples, Progress: pairs})
	if err != nil {
		return fail(1, "%s: %v%s", path, err, calibrateSummary(c))
	}
	estimated := 0
	for _, pr := range p.Pairs {
		if pr.Estimated {
			estimated++
		}
	}

	if *out != "" {
		if err := calibrateWriteFile(*out, []byte(p.YAML())); err != nil {
			return fail(2, "--out: %v", err)
		}
	}
	switch {
	case *asJSON:
		b, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			return fail(1, "%v", err)
		}
		stdout.Write(append(b, '\n'))
	case *out != "":
		p.Table(stdout)
		fmt.Fprintf(stdout, "wrote %s: %d of %d pairs\n", *out, estimated, len(p.Pairs))
	default:
		io.WriteString(stdout, p.YAML())
	}
	if estimated == 0 {
		fmt.Fprintf(stderr, "picosim calibrate: %s: no pair has %d samples: capture longer (every pair needs its receiver's reports)\n", path, *minSamples)
		return 1
	}
	return 0
}

// calibrateSummary says what Read found besides heartbeats, for an error.
func calibrateSummary(c *calibrate.Capture) string {
	if c == nil {
		return ""
	}
	s := fmt.Sprintf(" (%d packets read: %d heartbeats, %d other discovery frames, %d not discovery",
		c.Packets, len(c.Heartbeats), c.Hellos+c.Fulls+c.Leaves, c.Other)
	if c.Encrypted > 0 {
		s += fmt.Sprintf(", %d encrypted 802.11 frames", c.Encrypted)
	}
	if c.Unauthenticated+c.Unkeyed > 0 {
		s += fmt.Sprintf(", %d dropped by --key", c.Unauthenticated+c.Unkeyed)
	}
	for lt, n := range c.LinkTypes {
		s += fmt.Sprintf(", %d of link type %d, which is not read", n, lt)
	}
	return s + ")"
}

func calibrateMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// calibrateWriteFile writes a file whole or not at all, as writeSweepDoc
// does: a temporary file in the same folder, renamed over path.
func calibrateWriteFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
