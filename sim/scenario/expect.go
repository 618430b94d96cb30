package scenario

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node"
)

// expect checks an expectation now, eventually, or consistently, after
// every simulated event.
func (r *runner) expect(e *Expect) error {
	c := r.c
	since := c.Now()
	check := r.checker(e, since)
	desc := describe(e)
	switch {
	case e.Eventually != nil:
		var last error
		d := e.Eventually.D()
		if !c.RunUntil(since+d, func() bool { last = check(); return last == nil }) {
			if last = check(); last != nil {
				return fmt.Errorf("expected %s within %v: %v", desc, d, last)
			}
		}
	case e.Consistently != nil:
		var failed error
		d := e.Consistently.D()
		c.RunUntil(since+d, func() bool { failed = check(); return failed != nil })
		if failed != nil {
			return fmt.Errorf("expected %s for %v, but at %.3fs: %v", desc, d, c.Now().Seconds(), failed)
		}
	default:
		if err := check(); err != nil {
			return fmt.Errorf("expected %s: %v", desc, err)
		}
	}
	return nil
}

// checker composes the expectation's conditions; all must hold.
func (r *runner) checker(e *Expect, since time.Duration) func() error {
	c := r.c
	var checks []func() error
	if e.OneMaster {
		checks = append(checks, func() error {
			if _, ok := c.AgreedMaster(); !ok {
				return errors.New("the boards do not follow one master")
			}
			return c.Safety()
		})
	}
	if e.MasterIs != "" {
		checks = append(checks, func() error {
			m, ok := c.AgreedMaster()
			switch {
			case !ok:
				return errors.New("the boards do not follow one master")
			case m.Name() != e.MasterIs:
				return fmt.Errorf("the master is %s", m.Name())
			}
			return nil
		})
	}
	if e.MembersAgree {
		checks = append(checks, func() error {
			for _, b := range c.Boards() {
				if b.Powered() && !b.Up() {
					return fmt.Errorf("%s is on but not on the network yet", b.Name())
				}
			}
			return c.Agreement()
		})
	}
	for board, role := range e.Roles {
		checks = append(checks, func() error {
			if got := c.Board(board).View().Role; got != role {
				return fmt.Errorf("%s is %s, not %s", board, orNone(got), role)
			}
			return nil
		})
	}
	if p := e.Pin; p != nil {
		checks = append(checks, func() error {
			if v := c.Board(p.Board).GPIO().Level(p.Pin); v != p.Value {
				return fmt.Errorf("%s GPIO%d is %d, not %d", p.Board, p.Pin, v, p.Value)
			}
			return nil
		})
	}
	if e.NoRoleChange {
		checks = append(checks, func() error { return c.Stability(since) })
	}
	if a := e.AppRate; a != nil {
		checks = append(checks, func() error {
			st := c.AppStats(a.App)
			rate := st.Rate()
			switch {
			case st.Attempts == 0:
				return fmt.Errorf("%s made no attempt", a.App)
			case a.AtLeast != nil && rate < float64(*a.AtLeast):
				return fmt.Errorf("%s succeeded %d of %d times (%.1f%%), want at least %.1f%%", a.App, st.Successes, st.Attempts, 100*rate, 100*float64(*a.AtLeast))
			case a.Below != nil && rate >= float64(*a.Below):
				return fmt.Errorf("%s succeeded %d of %d times (%.1f%%), want below %.1f%%", a.App, st.Successes, st.Attempts, 100*rate, 100*float64(*a.Below))
			}
			return nil
		})
	}
	if ct := e.Counter; ct != nil {
		checks = append(checks, func() error {
			v := r.counter(ct.Board, ct.Name)
			switch {
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
			for _, ev := range c.Board(rv.Board).GPIO().PinHistory(rv.Pin) {
				if ev.Cause == "revert" && ev.At <= rv.By.D() {
					return nil
				}
			}
			return fmt.Errorf("%s GPIO%d has not been reverted by %v", rv.Board, rv.Pin, rv.By)
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
	for b, role := range e.Roles {
		parts = append(parts, b+" "+role)
	}
	if p := e.Pin; p != nil {
		parts = append(parts, fmt.Sprintf("%s GPIO%d = %d", p.Board, p.Pin, p.Value))
	}
	if e.NoRoleChange {
		parts = append(parts, "no role change")
	}
	if a := e.AppRate; a != nil {
		parts = append(parts, a.App+" success rate")
	}
	if ct := e.Counter; ct != nil {
		parts = append(parts, ct.Board+" "+ct.Name)
	}
	if rv := e.Reverted; rv != nil {
		parts = append(parts, fmt.Sprintf("%s GPIO%d reverted by %v", rv.Board, rv.Pin, rv.By))
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

// counters are what an expectation may compare, by name: the LAN's for the
// board's host, or its discovery core's (0 while the board is down).
var counters = []struct {
	name string
	lan  func(netsim.Counters) uint64
	node func(node.Stats) uint64
}{
	{name: "sent", lan: func(c netsim.Counters) uint64 { return c.Sent }},
	{name: "delivered", lan: func(c netsim.Counters) uint64 { return c.Delivered }},
	{name: "lost", lan: func(c netsim.Counters) uint64 { return c.Lost }},
	{name: "overflow", lan: func(c netsim.Counters) uint64 { return c.Overflow }},
	{name: "partitioned", lan: func(c netsim.Counters) uint64 { return c.Partitioned }},
	{name: "down", lan: func(c netsim.Counters) uint64 { return c.Down }},
	{name: "too_big", lan: func(c netsim.Counters) uint64 { return c.TooBig }},
	{name: "unassociated", lan: func(c netsim.Counters) uint64 { return c.Unassociated }},
	{name: "duplicated", lan: func(c netsim.Counters) uint64 { return c.Duplicated }},
	{name: "reordered", lan: func(c netsim.Counters) uint64 { return c.Reordered }},
	{name: "corrupted", lan: func(c netsim.Counters) uint64 { return c.Corrupted }},
	{name: "received", node: func(s node.Stats) uint64 { return s.Received }},
	{name: "malformed", node: func(s node.Stats) uint64 { return s.Malformed }},
	{name: "ignored", node: func(s node.Stats) uint64 { return s.Ignored }},
	{name: "hellos_answered", node: func(s node.Stats) uint64 { return s.HellosAnswered }},
	{name: "fulls_sent", node: func(s node.Stats) uint64 { return s.FullsSent }},
	{name: "heartbeats_sent", node: func(s node.Stats) uint64 { return s.HeartbeatsSent }},
}

// CounterNames lists the counters an expectation may compare.
var CounterNames = func() []string {
	names := make([]string, len(counters))
	for i, c := range counters {
		names[i] = c.name
	}
	return names
}()

func (r *runner) counter(board, name string) uint64 {
	b := r.c.Board(board)
	for _, c := range counters {
		switch {
		case c.name != name:
		case c.lan != nil:
			return c.lan(b.Host().Counters())
		case b.Node() != nil:
			return c.node(b.Node().Stats())
		}
	}
	return 0
}
