package scenario

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/picosim/picosim/sim/check"
	"github.com/picosim/picosim/sim/targets"
)

// expect checks an expectation now, eventually, or consistently, after
// every event the target reports. A window starts after the instant its
// step begins: what happened at that instant belongs to the step before.
// An expectation about the cluster (one_master, master_is, members_agree,
// roles, no_role_change, app_rate) that fails while a radio outage nobody
// scripted touches its window is not judged (see excused).
func (r *runner) expect(e *Expect) error {
	err := r.judge(e)
	if err == nil {
		return nil
	}
	if _, ok := targets.IsUnsupported(err); ok {
		return err
	}
	return r.excused(e, err)
}

// notJudged is an expectation that failed inside the window of a fault of
// a board's radio: the run stops there without a verdict.
type notJudged struct {
	step     int
	faults   []check.Outage
	from, to time.Duration // the window
	bound    time.Duration // looked at before from, too
	err      error
}

func (n *notJudged) Error() string {
	var names []string
	for _, o := range n.faults {
		names = append(names, o.String())
	}
	return fmt.Sprintf("step %d not judged: %s, within its window (%.3fs to %.3fs, and the %v before it that the cluster takes to notice a board); it failed with: %v",
		n.step, strings.Join(names, "; "), n.from.Seconds(), n.to.Seconds(), n.bound, n.err)
}

// excused turns the failure of an expectation about the cluster into
// notJudged when an unscripted radio outage touches its window, from the
// step's start (the app's start for app_rate) to now: the outage began
// before the window ended, and ended less than one failover bound (k+2
// heartbeats, the time the cluster takes to notice a board and settle)
// before the window began, or not at all.
// Reverts and counters are never excused: the fail-safe holds whatever
// the radio does. Nor are pins, but for one case: with revert_on_loss a
// board reverts its held pins when it loses its master, so a pin that is
// no longer written, or was reverted, inside an outage's window is that
// setting's documented consequence of the fault.
func (r *runner) excused(e *Expect, err error) error {
	holds := e.Pin != nil || e.NotReverted != nil
	if e.Reverted != nil || e.Counter != nil || (holds && !r.s.Topology.RevertOnLoss) {
		return err
	}
	from := r.since
	if e.AppRate != nil {
		if at, ok := r.appsFrom[e.AppRate.App]; ok {
			from = at
		}
	}
	return r.outageIn(from, r.t.Now(), err)
}

// outageIn is err, or notJudged naming the unscripted radio outages that
// touch the window from..to (see excused): of any board, or of the boards
// named (and the soft AP, whose outage is every station's).
func (r *runner) outageIn(from, to time.Duration, err error, boards ...string) error {
	var touching []check.Outage
	for _, o := range check.Outages(r.t.Timeline(), func(at time.Duration) bool { return r.stepsAt[at] }) {
		ap := r.s.Topology.Network.Mode == "softap" && o.Board == r.s.BoardNames()[0]
		if len(boards) > 0 && !slices.Contains(boards, o.Board) && !ap {
			continue
		}
		if o.Touches(from, to, r.bound) {
			touching = append(touching, o)
		}
	}
	if len(touching) == 0 {
		return err
	}
	return &notJudged{faults: touching, from: from, to: to, bound: r.bound, err: err}
}

// judge checks an expectation, now, eventually or consistently.
func (r *runner) judge(e *Expect) error {
	t := r.t
	// The window runs from now; since_step moves back only what
	// no_role_change and no_membership_change compare with.
	start := t.Now()
	since := start
	if n := e.SinceStep; n > 0 && n <= len(r.began) { // checked when loaded: an earlier step, or this one
		since = r.began[n-1]
	}
	r.since = since
	check := r.checker(e, since)
	desc := describe(e)
	now := check()
	if _, ok := targets.IsUnsupported(now); ok {
		return now // the target cannot observe it: the step is skipped
	}
	switch {
	case e.Eventually != nil:
		var last error
		d := e.Eventually.D()
		if !t.RunUntil(start+d, func() bool { last = check(); return last == nil }) {
			if last = check(); last != nil {
				return fmt.Errorf("expected %s within %v: %v", desc, d, last)
			}
		}
	case e.Consistently != nil:
		var failed error
		d := e.Consistently.D()
		t.RunUntil(start+d, func() bool { failed = check(); return failed != nil })
		if failed != nil {
			return fmt.Errorf("expected %s for %v, but at %.3fs: %v", desc, d, t.Now().Seconds(), failed)
		}
	default:
		if now != nil {
			return fmt.Errorf("expected %s: %v", desc, now)
		}
	}
	return nil
}

// checker composes the expectation's conditions; all must hold.
func (r *runner) checker(e *Expect, since time.Duration) func() error {
	t := r.t
	var checks []func() error
	if e.OneMaster {
		checks = append(checks, func() error {
			if _, ok := t.AgreedMaster(); !ok {
				return errors.New("the boards do not follow one master")
			}
			return t.Safety()
		})
	}
	if e.MasterIs != "" {
		checks = append(checks, func() error {
			m, ok := t.AgreedMaster()
			switch {
			case !ok:
				return errors.New("the boards do not follow one master")
			case m != e.MasterIs:
				return fmt.Errorf("the master is %s", m)
			}
			return nil
		})
	}
	if e.MembersAgree {
		checks = append(checks, func() error {
			for _, b := range t.Boards() {
				if t.Powered(b) && !t.Up(b) {
					return fmt.Errorf("%s is on but not on the network yet", b)
				}
			}
			return t.Agreement()
		})
	}
	for board, role := range e.Roles {
		checks = append(checks, func() error {
			if got := t.View(board).Role; got != role {
				return fmt.Errorf("%s is %s, not %s", board, orNone(got), role)
			}
			return nil
		})
	}
	if p := e.Pin; p != nil {
		checks = append(checks, func() error {
			v, err := t.Pin(p.Board, p.Pin)
			if err != nil {
				return err
			}
			if v != p.Value {
				return fmt.Errorf("%s GPIO%d is %d, not %d", p.Board, p.Pin, v, p.Value)
			}
			return nil
		})
	}
	if e.NoRoleChange {
		checks = append(checks, func() error { return t.Stability(since) })
	}
	if e.NoMembershipChange {
		checks = append(checks, func() error { return check.MembershipStable(t.Timeline(), since) })
	}
	if e.MasterWas != "" {
		then := r.rolesAt[e.AtStep-1] // checked when loaded: an earlier step, or this one
		checks = append(checks, func() error {
			want := ""
			for b, role := range then {
				if role == e.MasterWas {
					want = b
				}
			}
			m, ok := t.AgreedMaster()
			switch {
			case want == "":
				return fmt.Errorf("no board was %s when step %d began", e.MasterWas, e.AtStep)
			case !ok:
				return errors.New("the boards do not follow one master")
			case m != want:
				return fmt.Errorf("the master is %s, not %s (%s when step %d began)", m, want, e.MasterWas, e.AtStep)
			}
			return nil
		})
	}
	if e.SameRoles {
		then := r.rolesAt[e.AtStep-1]
		checks = append(checks, func() error {
			for _, b := range t.Boards() {
				if got := t.View(b).Role; got != then[b] {
					return fmt.Errorf("%s is %s, not %s as when step %d began", b, orNone(got), orNone(then[b]), e.AtStep)
				}
			}
			return nil
		})
	}
	if a := e.AppRate; a != nil {
		var on []string
		if a.Board != "" {
			on = []string{a.Board}
		}
		checks = append(checks, func() error {
			st, err := t.AppStats(a.App, on...)
			if err != nil {
				return err
			}
			rate, app := st.Rate(), a.App
			if a.Board != "" {
				app += " on " + a.Board
			}
			switch {
			case st.Attempts == 0:
				return fmt.Errorf("%s made no attempt", app)
			case a.AtLeast != nil && rate < float64(*a.AtLeast):
				return fmt.Errorf("%s succeeded %d of %d times (%.1f%%), want at least %.1f%%", app, st.Successes, st.Attempts, 100*rate, 100*float64(*a.AtLeast))
			case a.Below != nil && rate >= float64(*a.Below):
				return fmt.Errorf("%s succeeded %d of %d times (%.1f%%), want below %.1f%%", app, st.Successes, st.Attempts, 100*rate, 100*float64(*a.Below))
			}
			return nil
		})
	}
	if ct := e.Counter; ct != nil {
		checks = append(checks, func() error {
			v, err := t.Counter(ct.Board, ct.Name)
			switch {
			case err != nil:
				return err
			case ct.AtLeast != nil && v < *ct.AtLeast:
				return fmt.Errorf("%s %s is %d, want at least %d", ct.Board, ct.Name, v, *ct.AtLeast)
			case ct.AtMost != nil && v > *ct.AtMost:
				return fmt.Errorf("%s %s is %d, want at most %d", ct.Board, ct.Name, v, *ct.AtMost)
			}
			return nil
		})
	}
	if rv := e.Reverted; rv != nil {
		checks = append(checks, func() error {
			evs, err := t.PinEvents(rv.Board, rv.Pin)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if ev.Cause == "revert" && ev.At <= rv.By.D() {
					return nil
				}
			}
			return fmt.Errorf("%s GPIO%d has not been reverted by %v", rv.Board, rv.Pin, rv.By)
		})
	}
	if nr := e.NotReverted; nr != nil {
		checks = append(checks, func() error {
			evs, err := t.PinEvents(nr.Board, nr.Pin)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if ev.Cause == "revert" && (nr.By == 0 || ev.At < nr.By.D()) {
					return fmt.Errorf("%s GPIO%d was reverted at %.3fs", nr.Board, nr.Pin, ev.At.Seconds())
				}
			}
			return nil
		})
	}
	return func() error {
		for _, ch := range checks {
			if err := ch(); err != nil {
				return err
			}
		}
		return nil
	}
}

func describe(e *Expect) string {
	var parts []string
	if e.OneMaster {
		parts = append(parts, "one master")
	}
	if e.MasterIs != "" {
		parts = append(parts, "master "+e.MasterIs)
	}
	if e.MembersAgree {
		parts = append(parts, "members agree")
	}
	for _, b := range slices.Sorted(maps.Keys(e.Roles)) {
		parts = append(parts, b+" "+e.Roles[b])
	}
	if p := e.Pin; p != nil {
		parts = append(parts, fmt.Sprintf("%s GPIO%d = %d", p.Board, p.Pin, p.Value))
	}
	if e.NoRoleChange {
		parts = append(parts, "no role change")
	}
	if e.NoMembershipChange {
		parts = append(parts, "no membership change")
	}
	if a := e.AppRate; a != nil {
		if a.Board != "" {
			parts = append(parts, a.App+" success rate on "+a.Board)
		} else {
			parts = append(parts, a.App+" success rate")
		}
	}
	if e.MasterWas != "" {
		parts = append(parts, fmt.Sprintf("master the board that was %s at step %d", e.MasterWas, e.AtStep))
	}
	if e.SameRoles {
		parts = append(parts, fmt.Sprintf("roles as at step %d", e.AtStep))
	}
	if ct := e.Counter; ct != nil {
		parts = append(parts, ct.Board+" "+ct.Name)
	}
	if rv := e.Reverted; rv != nil {
		parts = append(parts, fmt.Sprintf("%s GPIO%d reverted by %v", rv.Board, rv.Pin, rv.By))
	}
	if nr := e.NotReverted; nr != nil {
		parts = append(parts, fmt.Sprintf("%s GPIO%d not reverted", nr.Board, nr.Pin))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "off"
	}
	return s
}
