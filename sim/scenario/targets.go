package scenario

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim/targets"
)

// Unsupported says why the scenario does not run on a target, or "".
func (s *Scenario) Unsupported(kind string) string {
	if _, ok := s.Targets[kind]; ok {
		return ""
	}
	return fmt.Sprintf("the scenario runs on %s only (add %s to its targets to run it there)", strings.Join(s.TargetNames(), ", "), kind)
}

// TargetNames lists the targets the scenario supports, in the order of
// targets.Kinds.
func (s *Scenario) TargetNames() []string {
	var out []string
	for _, k := range targets.Kinds {
		if _, ok := s.Targets[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// Spec is the cluster the scenario asks of a target, with that target's
// timings.
func (s *Scenario) Spec(kind string, seed uint64) targets.Spec {
	t := s.Topology
	link, _ := t.Network.Link.netsim() // checked when loaded
	spec := targets.Spec{
		Seed:         seed,
		Heartbeat:    t.Heartbeat.D(),
		MissLimit:    t.MissLimit,
		RevertOnLoss: t.RevertOnLoss,
		SoftAP:       t.Network.Mode == "softap",
		Radio:        t.Network.Radio,
		Addressing:   t.Network.Addressing,
		Link:         link,
		NoWatchdog:   t.WiFiWatchdog != nil && !*t.WiFiWatchdog,
		ControlTLS:   t.ControlTLS,
	}
	for b, r := range t.Network.Radios {
		if spec.Radios == nil {
			spec.Radios = map[string]netsim.PicoW{}
		}
		spec.Radios[b] = r.picoW()
	}
	spec.Key, _ = t.Network.key() // checked when loaded
	if o := s.Targets[kind]; o.Heartbeat > 0 {
		spec.Heartbeat = o.Heartbeat.D()
	}
	if o := s.Targets[kind]; o.MissLimit > 0 {
		spec.MissLimit = o.MissLimit
	}
	pins := map[string]map[int]string{}
	for _, b := range t.Boards.List {
		pins[b.Name] = b.Pins
	}
	for _, name := range s.BoardNames() {
		b := targets.BoardSpec{Name: name}
		nums := make([]int, 0, len(pins[name]))
		for n := range pins[name] {
			nums = append(nums, n)
		}
		sort.Ints(nums)
		for _, n := range nums {
			mode := pins[name][n]
			b.Pins = append(b.Pins, firmware.PinSetup{Pin: n, Output: mode != "input", Value: map[bool]int{true: 1}[mode == "output-high"]})
		}
		spec.Boards = append(spec.Boards, b)
	}
	for b, l := range t.Network.Boards {
		nl, _ := l.netsim()
		if spec.Links == nil {
			spec.Links = map[string]netsim.Link{}
		}
		spec.Links[b] = nl
	}
	for _, p := range t.Network.Pairs {
		nl, _ := p.Link.netsim()
		spec.Pairs = append(spec.Pairs, targets.Pair{From: p.From, To: p.To, Link: nl})
	}
	return spec
}

// checkTargets is check's part for the targets field.
func (s *Scenario) checkTargets(add func(path, format string, args ...any)) {
	for k := range s.Targets {
		if !slices.Contains(targets.Kinds, k) {
			add("$.targets", "targets: no target %q: one of %v", k, targets.Kinds)
		}
	}
}

// MinDuration is the least time the scenario takes: its waits, the windows
// of its "consistently" expectations, and the gaps its steps' times leave.
// On a target in wall-clock time it is wall-clock time.
func (s *Scenario) MinDuration() time.Duration {
	var t time.Duration
	for _, st := range s.Steps {
		switch {
		case st.At != nil:
			t = max(t, st.At.D())
		case st.After != nil:
			t += st.After.D()
		}
		if st.Wait != nil {
			t += st.Wait.D()
		}
		if e := st.Expect; e != nil && e.Consistently != nil {
			t += e.Consistently.D()
		}
	}
	return t
}
