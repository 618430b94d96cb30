// Package check provides the properties of shared/DESIGN.md as checkers
// over what boards report of themselves (firmware.State) and over a
// timeline of their events, so that the simulator, emulated boards and a
// lab of real ones are judged by the same code. Each checker returns nil
// when its property holds now, and otherwise an error that says who
// disagrees with whom; callers state "eventually" and "throughout" by
// running them after every event (sim.Cluster.RunUntil, sim/simtest).
//
// Which boards count: a checker takes the states of the boards that are up
// (powered, booted, discovery running), grouped by who can hear whom (Group),
// each group in address order.
package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/node"
)

// Group puts the items that pass keep into groups of items that hear each
// other, each group in the items' order; hear need only hold between an
// item and the first of its group, as it does on a LAN, where hearing is
// the same for every member of a partition.
func Group[T any](items []T, keep func(T) bool, hear func(a, b T) bool) [][]T {
	var groups [][]T
	for _, it := range items {
		if !keep(it) {
			continue
		}
		placed := false
		for i, g := range groups {
			if hear(g[0], it) {
				groups[i] = append(g, it)
				placed = true
				break
			}
		}
		if !placed {
			groups = append(groups, []T{it})
		}
	}
	return groups
}

// Agreement holds when, in every component, each board has taken a role,
// knows exactly the boards of its component in their current incarnation,
// and gives each of them the same role as every other board does: one
// MASTER, the lowest address, and distinct worker numbers.
func Agreement(comps [][]firmware.State) error {
	if len(comps) == 0 {
		return fmt.Errorf("no board is up")
	}
	for _, comp := range comps {
		if err := agree(comp); err != nil {
			return err
		}
	}
	return nil
}

func agree(comp []firmware.State) error {
	// The component in address order, as every board lists its members
	// (not in the order boards were made: addresses change).
	comp = slices.Clone(comp)
	slices.SortStableFunc(comp, func(a, b firmware.State) int { return compareIP(a.IP, b.IP) })
	// A cheap look first: every board settled and knows as many members as
	// its component has. Most failed checks end here, before any string is
	// built.
	for _, s := range comp {
		if s.Master == "" {
			return fmt.Errorf("%s has not settled yet", s.Name)
		}
		if len(s.Members) != len(comp) {
			return fmt.Errorf("%s sees members %v, but its component is %v", s.Name, memberNames(s), names(comp))
		}
	}
	ref := comp[0]
	if err := distinctRoles(ref); err != nil {
		return fmt.Errorf("%s: %w", ref.Name, err)
	}
	for _, s := range comp {
		for i, m := range s.Members {
			want := comp[i]
			switch {
			case m.Name != want.Name || m.Incarnation != want.Incarnation:
				return fmt.Errorf("%s sees members %v, but its component is %v", s.Name, memberNames(s), names(comp))
			case m.Role == node.Joining.String():
				return fmt.Errorf("%s sees %s without a role", s.Name, m.Name)
			case m.Role != ref.Members[i].Role:
				return fmt.Errorf("%s sees roles %v, %s sees %v", s.Name, roles(s), ref.Name, roles(ref))
			}
		}
	}
	return nil
}

func compareIP(a, b string) int {
	x, errx := netip.ParseAddr(a)
	y, erry := netip.ParseAddr(b)
	if errx != nil || erry != nil {
		return strings.Compare(a, b)
	}
	return x.Compare(y)
}

func names(comp []firmware.State) []string {
	out := make([]string, len(comp))
	for i, s := range comp {
		out[i] = fmt.Sprintf("%s#%d", s.Name, s.Incarnation)
	}
	return out
}

func memberNames(s firmware.State) []string {
	out := make([]string, len(s.Members))
	for i, m := range s.Members {
		out[i] = fmt.Sprintf("%s#%d", m.Name, m.Incarnation)
	}
	return out
}

func roles(s firmware.State) []string {
	out := make([]string, len(s.Members))
	for i, m := range s.Members {
		out[i] = m.Name + "=" + m.Role
	}
	return out
}

func distinctRoles(s firmware.State) error {
	seen := map[string]string{}
	for _, m := range s.Members {
		if other, dup := seen[m.Role]; dup {
			return fmt.Errorf("%s and %s are both %s", other, m.Name, m.Role)
		}
		seen[m.Role] = m.Name
	}
	return nil
}

// Safety holds when no component has two boards that each call themselves
// MASTER.
func Safety(comps [][]firmware.State) error {
	for _, comp := range comps {
		var masters []string
		for _, s := range comp {
			if s.Role == node.Master.String() {
				masters = append(masters, s.Name)
			}
		}
		if len(masters) > 1 {
			return fmt.Errorf("%d masters in one component: %v", len(masters), masters)
		}
	}
	return nil
}

// AgreedMaster returns the master every board that is up follows, if they
// all hear each other (one component) and follow the same one, and it is
// up itself.
func AgreedMaster(comps [][]firmware.State) (string, bool) {
	if len(comps) != 1 {
		return "", false // boards that cannot hear each other agree on nothing, whatever their views say
	}
	master := comps[0][0].Master
	up := false
	for _, s := range comps[0] {
		if s.Master == "" || s.Master != master {
			return "", false
		}
		up = up || s.Name == master
	}
	return master, up
}

// FailSafe holds when no pin of any board holds a written value past the
// end of its timeout: a revert due at uptime HeldUntilMS has happened by
// then.
func FailSafe(states []firmware.State) error {
	for _, s := range states {
		for _, p := range s.Pins {
			if p.HeldUntilMS != 0 && float64(s.UptimeMS) > p.HeldUntilMS {
				return fmt.Errorf("%s GPIO%d still holds its written value %v after its timeout", s.Name, p.Pin,
					time.Duration((float64(s.UptimeMS)-p.HeldUntilMS)*float64(time.Millisecond)))
			}
		}
	}
	return nil
}

// Stability holds when no board changed its role or its master after
// since. The window is (since, now]: a change at the instant since belongs
// to what came before it (the eventually step that it ended, in a
// scenario).
func Stability(events []firmware.Event, since time.Duration) error {
	return noneSince(events, since, "role changes", firmware.EvRole, firmware.EvMaster)
}

// MembershipStable holds when no board saw a member join or leave after
// since (the same window as Stability).
func MembershipStable(events []firmware.Event, since time.Duration) error {
	return noneSince(events, since, "membership changes", firmware.EvJoined, firmware.EvLeft)
}

func noneSince(events []firmware.Event, since time.Duration, what string, kinds ...string) error {
	var first *firmware.Event
	n := 0
	for i := range events {
		if e := &events[i]; e.At > since && slices.Contains(kinds, e.Kind) {
			if first == nil {
				first = e
			}
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("%d %s since %.3fs, the first: %s", n, what, since.Seconds(), strings.TrimSpace(Line(*first)))
	}
	return nil
}

// Line renders an event as a line of the human timeline (Event.String).
func Line(e firmware.Event) string { return e.String() }

// Outage is a board's time off the network by a fault of its radio: from
// the loss of its WiFi association (Lost) to its next join (Back; 0 while
// it lasts). Verdicts do not judge a window an outage touches, and name it.
type Outage struct {
	Board      string
	Lost, Back time.Duration
	Fault      string // the radio's fault (RadioFault's Detail), if that began it
}

// RadioFault is the timeline's kind for a board's radio failing while it
// says it is joined (sim.EvRadioFault; netsim.PicoW's failure modes).
const RadioFault = "radio_fault"

// Outages lists the radio outages in a timeline. scripted, if set, reports
// the losses a scenario's own steps caused (its soft AP powered off, say):
// those are not faults.
func Outages(events []firmware.Event, scripted func(at time.Duration) bool) []Outage {
	var out []Outage
	open := map[string]int{} // board: index of its outage still going on
	for _, e := range events {
		switch e.Kind {
		case firmware.EvWiFiLost, RadioFault:
			if _, going := open[e.Board]; going || (scripted != nil && scripted(e.At)) {
				continue
			}
			open[e.Board] = len(out)
			o := Outage{Board: e.Board, Lost: e.At}
			if e.Kind == RadioFault {
				o.Fault = e.Detail
			}
			out = append(out, o)
		case firmware.EvWiFiJoined, firmware.EvBoot:
			if i, going := open[e.Board]; going {
				out[i].Back = e.At
				delete(open, e.Board)
			}
		}
	}
	return out
}

// Touches reports whether the outage, and the bound the cluster takes to
// notice a board's coming and going after it, overlaps [from, to].
func (o Outage) Touches(from, to, bound time.Duration) bool {
	return o.Lost <= to && (o.Back == 0 || o.Back+bound >= from)
}

func (o Outage) String() string {
	what := "lost its WiFi association"
	if o.Fault != "" {
		what = "had a " + o.Fault + " radio fault"
	}
	if o.Back == 0 {
		return fmt.Sprintf("%s %s at %.3fs", o.Board, what, o.Lost.Seconds())
	}
	return fmt.Sprintf("%s %s at %.3fs (back at %.3fs)", o.Board, what, o.Lost.Seconds(), o.Back.Seconds())
}
