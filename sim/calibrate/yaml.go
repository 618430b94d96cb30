package calibrate

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// YAML returns the profile as the network section of a scenario's
// topology, with a comment that says where it came from and how sure each
// pair is:
//
//	network:
//	  pairs:
//	    - {from: pico1, to: pico2, loss: 9.8%, burst_length: 2.9, latency: 21ms, jitter: 6ms, distribution: normal}
//
// Pairs with too few samples are left out (the comment lists them).
func (p *Profile) YAML() string {
	var b strings.Builder
	src := p.Source
	if src == "" {
		src = "a capture"
	}
	fmt.Fprintf(&b, "# Link profile calibrated by `picosim calibrate` from %s.\n", src)
	fmt.Fprintf(&b, "# %d heartbeats in %d packets over %v, from %s UTC.\n",
		p.Heartbeats, p.Packets, p.Duration.Round(time.Millisecond), p.Start.UTC().Format("2006-01-02 15:04:05"))
	if p.Truncated != "" {
		fmt.Fprintf(&b, "# The capture is cut short: %s.\n", p.Truncated)
	}
	fmt.Fprintf(&b, "# %d boards:\n", len(p.Boards))
	for _, bd := range p.Boards {
		fmt.Fprintf(&b, "#   %s (%s): %d heartbeats, every %v, %s, %d not captured\n",
			bd.Name, bd.IP, bd.Heartbeats, bd.Period.Round(time.Millisecond), plural(bd.Boots, "boot"), bd.NotCaptured)
	}
	b.WriteString("# Per pair: samples, then estimates with 95% intervals (±1.96 standard errors).\n")
	for _, pr := range p.Pairs {
		fmt.Fprintf(&b, "#   %s\n", pr.summary())
		if pr.Warning != "" {
			for _, line := range wrap("warning: "+pr.Warning, 72) {
				fmt.Fprintf(&b, "#       %s\n", line)
			}
		}
	}
	b.WriteString("# What a capture cannot tell:\n")
	for _, n := range p.Notes {
		for i, line := range wrap(n, 76) {
			lead := "#   - "
			if i > 0 {
				lead = "#     "
			}
			b.WriteString(lead + line + "\n")
		}
	}
	b.WriteString("network:\n  pairs:\n")
	n := 0
	for _, pr := range p.Pairs {
		if !pr.Estimated {
			continue
		}
		n++
		fmt.Fprintf(&b, "    - {%s}\n", pr.fields())
	}
	if n == 0 {
		b.WriteString("    []\n")
	}
	return b.String()
}

// fields is the pair in the scenario format, without braces.
func (pr Pair) fields() string {
	f := []string{"from: " + yamlString(pr.From), "to: " + yamlString(pr.To), "loss: " + num(100*pr.Loss, 2) + "%"}
	if pr.Bursty && pr.Loss > 0 && pr.Loss < 1 && pr.BurstLength >= 1 {
		f = append(f, "burst_length: "+num(pr.BurstLength, 2))
	}
	l := pr.Latency
	f = append(f, "latency: "+num(max(l.Mean, 0), 1)+"ms")
	if j := num(l.Jitter, 1); j != "0" {
		f = append(f, "jitter: "+j+"ms")
		if l.Dist != "" {
			f = append(f, "distribution: "+l.Dist)
		}
	}
	return strings.Join(f, ", ")
}

// summary is the pair's line in the YAML's comment.
func (pr Pair) summary() string {
	head := fmt.Sprintf("%s -> %s: %d samples", pr.From, pr.To, pr.Samples)
	if !pr.Estimated {
		return head + ": too few, left out"
	}
	s := fmt.Sprintf("%s, loss %s%% ±%s pp", head, num(100*pr.Loss, 2), se(196*pr.LossSE))
	if pr.Bursty {
		s += fmt.Sprintf(", bursts of %s ±%s (P %.4f, R %.4f)", num(pr.BurstLength, 2), se(1.96*pr.BurstSE), pr.P, pr.R)
	} else if pr.Loss > 0 {
		s += ", no bursts"
	}
	l := pr.Latency
	s += fmt.Sprintf(", latency p50 %s p90 %s p99 %s ms (%d heard)", num(l.P50, 1), num(l.P90, 1), num(l.P99, 1), l.Samples)
	if l.Dist != "" {
		s += ", " + l.Dist
	}
	return s
}

// Table writes the pairs as a table for people.
func (p *Profile) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pair\tsamples\tloss\t±95%\tburst\t±95%\tmin\tp50\tp90\tp99\tjitter\tshape\tguard\t")
	for _, pr := range p.Pairs {
		name := pr.From + " → " + pr.To
		if !pr.Estimated {
			fmt.Fprintf(tw, "%s\t%d\ttoo few\t\t\t\t\t\t\t\t\t\t\t\n", name, pr.Samples)
			continue
		}
		burst, burstCI := "-", ""
		if pr.Bursty {
			burst, burstCI = num(pr.BurstLength, 2), se(1.96*pr.BurstSE)
		}
		l := pr.Latency
		shape := l.Dist
		if shape == "" {
			shape = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s%%\t%spp\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\t\n", name, pr.Samples,
			num(100*pr.Loss, 2), se(196*pr.LossSE), burst, burstCI,
			num(l.Min, 1), num(l.P50, 1), num(l.P90, 1), num(l.P99, 1), num(l.Jitter, 1), shape, pr.Guard.Round(time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, pr := range p.Pairs {
		if pr.Warning != "" {
			fmt.Fprintf(w, "%s → %s: warning: %s\n", pr.From, pr.To, pr.Warning)
		}
	}
	_, err := fmt.Fprintln(w, "latencies in ms; burst: mean burst length in frames, - when losses look independent")
	return err
}

// num writes x with at most prec decimals and no trailing zeros.
func num(x float64, prec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "?"
	}
	s := strconv.FormatFloat(x, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// se writes a standard error (or an interval's half-width): "?" when
// unknown (negative).
func se(x float64) string {
	if x < 0 {
		return "?"
	}
	return num(x, 2)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// yamlString quotes a board name when YAML would read it as something
// else than the plain string.
func yamlString(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
		}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		plain = false
	}
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~":
		plain = false
	}
	if plain && s[0] != '-' && s[0] != '.' {
		return s
	}
	return strconv.Quote(s)
}

// wrap splits text into lines of at most width bytes, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
