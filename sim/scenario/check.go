package scenario

import (
	"fmt"

	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/picosim/picosim/internal/closest"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node/mac"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/targets"
)

// problem is an Error found after decoding, with the YAML path it is about.
type problem struct {
	Error
	path string
}

// Apps lists the apps a scenario can start.
var Apps = []string{"bus", "rgb-server", "rgb-client-naive", "rgb-client-robust", "echo-server", "echo-client",
	"seed000-ap", "seed000-ap-welcome", "seed000-ap-nodes", "seed000-client"}

// check finds what decoding cannot: names that do not exist, times that go
// back, steps with no action or two.
func (s *Scenario) check() []problem {
	var ps []problem
	add := func(path, format string, args ...any) {
		ps = append(ps, problem{Error: Error{Msg: fmt.Sprintf(format, args...)}, path: path})
	}
	if s.Name == "" {
		add("$", "a scenario needs a name")
	}
	s.checkTargets(add)
	t := s.Topology
	switch n := t.Boards.Count; {
	case n < 1 || n > 250:
		add("$.topology.boards", "boards: %d: need 1 to 250", n)
	case t.Network.Mode == "softap" && n > 17:
		add("$.topology.boards", "boards: %d: a soft AP LAN takes at most 16 stations (8 of them with a lease at a time, the others waiting), so at most 17 boards", n)
	}
	if p := t.NamePattern; p != "" && (strings.Count(p, "%d") != 1 || strings.Count(p, "%") != 1) {
		add("$.topology.name_pattern", "name_pattern %q: needs exactly one %%d, as in node-%%d", p)
	}
	seenName := map[string]bool{}
	for i, b := range t.Boards.List {
		path := fmt.Sprintf("$.topology.boards[%d]", i)
		if b.Name == "" || seenName[b.Name] {
			add(path, "board %d: needs a name of its own", i+1)
		}
		seenName[b.Name] = true
		for pin, mode := range b.Pins {
			if pin < 0 || pin > 28 || !slices.Contains([]string{"input", "output", "output-high"}, mode) {
				add(path+".pins", "%s GPIO%d %q: pins 0 to 28, as input, output or output-high", b.Name, pin, mode)
			}
		}
	}
	oneOf := func(path, field, v string, allowed ...string) {
		if v != "" && !slices.Contains(allowed, v) {
			add(path, "%s %q: one of %v%s", field, v, allowed, closest.Hint(v, allowed))
		}
	}
	oneOf("$.topology.network.mode", "mode", t.Network.Mode, networkModes...)
	if _, err := t.Network.key(); err != nil {
		add("$.topology.network.key", "%v", err)
	}
	if t.Network.Addressing == netsim.NewAtExpiry {
		add("$.topology.network.addressing", "addressing %q needs a lease time, which scenarios do not set: sticky or new-each-boot", t.Network.Addressing)
	}
	board := func(path, name string) {
		if !s.hasBoard(name) {
			names := s.BoardNames()
			add(path, "no board %q: boards are %s to %s%s", name, names[0], names[len(names)-1], closest.Hint(name, names))
		}
	}
	for b := range t.Network.Boards {
		board("$.topology.network.boards", b)
	}
	for b, r := range t.Network.Radios {
		board("$.topology.network.radios", b)
		if r.JoinMax != 0 && r.JoinMax < r.JoinMin {
			add("$.topology.network.radios."+b, "radio of %s: join_max %v is less than join_min %v", b, r.JoinMax, r.JoinMin)
		}
	}
	for i, p := range t.Network.Pairs {
		board(fmt.Sprintf("$.topology.network.pairs[%d].from", i), p.From)
		board(fmt.Sprintf("$.topology.network.pairs[%d].to", i), p.To)
	}
	links := []Link{t.Network.Link}
	for _, l := range t.Network.Boards {
		links = append(links, l)
	}
	for _, p := range t.Network.Pairs {
		links = append(links, p.Link)
	}
	for _, st := range s.Steps {
		if st.SetLink != nil {
			links = append(links, st.SetLink.Link)
		}
	}
	for _, l := range links {
		if _, err := l.netsim(); err != nil {
			add("$.topology.network", "%v", err)
		}
	}
	var last time.Duration
	for i, st := range s.Steps {
		p := fmt.Sprintf("$.steps[%d]", i)
		if st.At != nil && st.After != nil {
			add(p, "step %d: give at or after, not both", i+1)
		}
		if st.At != nil {
			if st.At.D() < last {
				add(p+".at", "step %d: at %v comes before the previous step's %v", i+1, st.At, last)
			}
			last = st.At.D()
		}
		if st.After != nil {
			last += st.After.D()
		}
		if n := st.actions(); n != 1 {
			add(p, "step %d: needs exactly one action (%s), has %d", i+1, strings.Join(stepActions, ", "), n)
		}
		if f := st.Forge; f != nil {
			oneOf(p+".forge.type", "forge type", f.Type, forgeTypes...)
			if f.Type == "" {
				add(p+".forge", "step %d: forge needs a type: hello, full, heartbeat, leave or garbage", i+1)
			}
			if f.From != "" {
				if a, err := netip.ParseAddr(f.From); err != nil || !a.Is4() {
					add(p+".forge.from", "step %d: from %q: an IPv4 address, such as 192.168.1.1", i+1, f.From)
				}
			}
			if f.From != "" && f.As != "" {
				add(p+".forge", "step %d: forge from an address or as a board, not both", i+1)
			}
			for _, b := range []struct{ f, v string }{{"as", f.As}, {"to", f.To}} {
				if b.v != "" {
					board(p+".forge."+b.f, b.v)
				}
			}
			if f.Count < 0 || f.Count > 100000 || f.Bytes < 0 || f.Bytes > 1472 || len(f.Name) > 32 || len(f.Members) > 255 {
				add(p+".forge", "step %d: forge: count 0 to 100000, bytes 0 to 1472, a name of up to 32 bytes, up to 255 members", i+1)
			}
		}
		if a := st.Attack; a != nil {
			board(p+".attack.board", a.Board)
			oneOf(p+".attack.kind", "attack kind", a.Kind, sim.AttackKinds...)
			if a.Kind == "" {
				add(p+".attack", "step %d: attack needs a kind: %s", i+1, strings.Join(sim.AttackKinds, ", "))
			}
			if a.Connections < 0 || a.Connections > 64 || a.Bytes < 0 || a.Bytes > 64<<20 {
				add(p+".attack", "step %d: attack: connections 0 to 64, bytes 0 to 64 MiB", i+1)
			}
		}
		for _, b := range []struct{ f, v string }{{"power_off", st.PowerOff}, {"power_on", st.PowerOn}, {"reboot", st.Reboot}} {
			if b.v != "" {
				board(p+"."+b.f, b.v)
			}
		}
		seen := map[string]bool{}
		for _, g := range st.Partition {
			for _, b := range g {
				board(p+".partition", b)
				if seen[b] {
					add(p+".partition", "step %d: %s is in two groups of the partition", i+1, b)
				}
				seen[b] = true
			}
		}
		if rf := st.RadioFault; rf != nil {
			board(p+".radio_fault.board", rf.Board)
			oneOf(p+".radio_fault.fault", "radio fault", rf.Fault, radioFaults...)
			if rf.Fault == "" {
				add(p+".radio_fault", "step %d: radio_fault needs a fault: %s", i+1, strings.Join(radioFaults, " or "))
			}
			if _, own := t.Network.Radios[rf.Board]; t.Network.Radio == netsim.IdealRadio && !own && rf.Fault != netsim.FaultNoSynAck {
				add(p+".radio_fault", "step %d: radio_fault needs a Pico W radio: network.radio is ideal (give %s one under network.radios)", i+1, rf.Board)
			}
		}
		if sl := st.SetLink; sl != nil {
			switch {
			case sl.Board != "" && (sl.From != "" || sl.To != ""):
				add(p+".set_link", "step %d: set_link: a board, or from and to, not both", i+1)
			case sl.Board != "":
				board(p+".set_link.board", sl.Board)
				if sl.BothWays {
					add(p+".set_link.both_ways", "step %d: set_link: both_ways goes with from and to", i+1)
				}
			case sl.From == "" || sl.To == "":
				add(p+".set_link", "step %d: set_link needs a board (what it receives), or from and to (a pair)", i+1)
			case sl.From == sl.To:
				add(p+".set_link", "step %d: set_link: from and to are the same board", i+1)
			default:
				board(p+".set_link.from", sl.From)
				board(p+".set_link.to", sl.To)
			}
		}
		if h := st.Hello; h != nil {
			for _, n := range h.Names {
				board(p+".hello.names", n)
			}
			if len(h.Names) > 0 && h.Members != 0 {
				add(p+".hello", "step %d: hello: members or names, not both", i+1)
			}
			if h.None && (len(h.Names) > 0 || h.Members != 0) {
				add(p+".hello.none", "step %d: hello: none says no FULL comes; members and names judge one that does", i+1)
			}
		}
		if c := st.Control; c != nil {
			board(p+".control.board", c.Board)
			if n := c.Controller; n != "" {
				switch {
				case !hostName.MatchString(n):
					add(p+".control.controller", "step %d: controller %q: a name of letters, digits and -, up to 32, such as phone", i+1, n)
				case s.hasBoard(n) || slices.Contains(reservedHosts, n):
					add(p+".control.controller", "step %d: controller %q: taken by a board or by %s", i+1, n, strings.Join(reservedHosts, ", "))
				case c.Unsigned:
					add(p+".control.controller", "step %d: an unsigned control comes from the intruder; give it no controller", i+1)
				}
			}
			if c.Unreachable && len(c.Commands) == 0 {
				add(p+".control.unreachable", "step %d: unreachable needs a command to try", i+1)
			}
			if c.Retries < 0 || c.Retries > 10 {
				add(p+".control.retries", "step %d: retries 0 to 10", i+1)
			}
			if c.Timeout.D() > 10*time.Minute {
				add(p+".control.timeout", "step %d: timeout at most 10m", i+1)
			}
			for j, cmd := range c.Commands {
				if (cmd.Send == nil) == (cmd.Raw == "") {
					add(fmt.Sprintf("%s.control.commands[%d]", p, j), "step %d: command %d needs send or raw, one of them", i+1, j+1)
				}
			}
		}
		if a := st.App; a != nil {
			board(p+".app.board", a.Board)
			name := a.Start + a.Stop
			if (a.Start == "") == (a.Stop == "") {
				add(p+".app", "step %d: app needs start or stop", i+1)
			} else if !slices.Contains(Apps, name) {
				add(p+".app", "step %d: no app %q: one of %v%s", i+1, name, Apps, closest.Hint(name, Apps))
			}
			if a.Server != "" {
				board(p+".app.server", a.Server)
			}
		}
		if e := st.Expect; e != nil {
			if e.Eventually != nil && e.Consistently != nil {
				add(p+".expect", "step %d: eventually or consistently, not both", i+1)
			}
			if e.MasterIs != "" {
				board(p+".expect.master_is", e.MasterIs)
			}
			for b := range e.Roles {
				board(p+".expect.roles", b)
			}
			if e.Pin != nil {
				board(p+".expect.pin.board", e.Pin.Board)
			}
			if e.Reverted != nil {
				board(p+".expect.reverted.board", e.Reverted.Board)
			}
			if e.NotReverted != nil {
				board(p+".expect.not_reverted.board", e.NotReverted.Board)
			}
			if c := e.Counter; c != nil {
				board(p+".expect.counter.board", c.Board)
				if !slices.Contains(targets.CounterNames, c.Name) {
					add(p+".expect.counter.name", "step %d: no counter %q: one of %v%s", i+1, c.Name, targets.CounterNames, closest.Hint(c.Name, targets.CounterNames))
				}
			}
			if n := e.SinceStep; n != 0 {
				switch {
				case n < 1 || n > i+1:
					add(p+".expect.since_step", "step %d: since_step %d: this step or an earlier one, 1 to %d", i+1, n, i+1)
				case !e.NoRoleChange && !e.NoMembershipChange:
					add(p+".expect.since_step", "step %d: since_step goes with no_role_change or no_membership_change", i+1)
				}
			}
			if e.AppRate != nil && (e.AppRate.AtLeast == nil) == (e.AppRate.Below == nil) {
				add(p+".expect.app_rate", "step %d: app_rate needs at_least or below", i+1)
			}
			if e.AppRate != nil && e.AppRate.Board != "" {
				board(p+".expect.app_rate.board", e.AppRate.Board)
			}
			if e.MasterWas != "" && !roleName.MatchString(e.MasterWas) {
				add(p+".expect.master_was", "step %d: master_was %q: a role, MASTER or WORKERn%s", i+1, e.MasterWas, closest.Hint(e.MasterWas, []string{"MASTER", "WORKER1", "WORKER2", "WORKER3"}))
			}
			switch n, refers := e.AtStep, e.MasterWas != "" || e.SameRoles; {
			case n == 0 && refers:
				add(p+".expect.at_step", "step %d: master_was and same_roles need at_step, the step whose roles they refer to", i+1)
			case n != 0 && !refers:
				add(p+".expect.at_step", "step %d: at_step goes with master_was or same_roles", i+1)
			case n < 0 || n > i+1:
				add(p+".expect.at_step", "step %d: at_step %d: this step or an earlier one, 1 to %d", i+1, n, i+1)
			}
		}
	}
	return ps
}

// key decodes network.key: nil without one.
func (n Network) key() ([]byte, error) {
	if n.Key == "" {
		return nil, nil
	}
	k, err := mac.ParseKey(n.Key)
	if err != nil {
		return nil, fmt.Errorf("key: 32 to 64 hex digits (a key of 16 to 32 bytes), such as %x", "picosim-demo-key")
	}
	return k, nil
}

func (s *Scenario) hasBoard(name string) bool { return slices.Contains(s.BoardNames(), name) }

// BoardNames lists the boards' names in address order.
func (s *Scenario) BoardNames() []string {
	t := s.Topology
	var names []string
	for i := range t.Boards.Count {
		switch {
		case i < len(t.Boards.List):
			names = append(names, t.Boards.List[i].Name)
		case t.NamePattern != "":
			names = append(names, fmt.Sprintf(t.NamePattern, i+1))
		default:
			names = append(names, fmt.Sprintf("pico%d", i+1))
		}
	}
	if len(names) == 0 {
		names = []string{"(none)"}
	}
	return names
}

// hostName is what a controller may be called; reservedHosts are the
// harness's own hosts on the LAN.
var (
	hostName      = regexp.MustCompile(`^[A-Za-z0-9-]{1,32}$`)
	reservedHosts = []string{"desktop", "rogue", "intruder", "forward"}
	roleName      = regexp.MustCompile(`^(MASTER|WORKER[1-9][0-9]*)$`)
)

// stepActions are the keys of a step's actions, of which it has one;
// forgeTypes the kinds of frame a forge step sends. The schema says both.
var (
	stepActions = []string{"power_off", "power_on", "reboot", "partition", "heal", "set_link", "control", "app", "wait", "hello", "expect", "forge", "attack", "radio_fault"}
	// radioFaults are the faults a radio_fault step injects.
	radioFaults = []string{netsim.FaultSilent, netsim.FaultStall, netsim.FaultNoSynAck}
	forgeTypes  = []string{"hello", "full", "heartbeat", "leave", "garbage"}
	// networkModes: router (the default) or softap.
	networkModes = []string{"router", "softap"}
)

func (st *Step) actions() int {
	n := 0
	for _, set := range []bool{st.PowerOff != "", st.PowerOn != "", st.Reboot != "", st.Partition != nil, st.Heal,
		st.SetLink != nil, st.Control != nil, st.App != nil, st.Wait != nil, st.Expect != nil, st.Hello != nil,
		st.Forge != nil, st.Attack != nil, st.RadioFault != nil} {
		if set {
			n++
		}
	}
	return n
}

func (s *Scenario) defaults() {
	if s.Timeout == 0 {
		s.Timeout = Duration(10 * time.Minute)
	}
	if len(s.Targets) == 0 {
		s.Targets = Targets{"sim": {}}
	}
}

// String says what a step does, in a few words: the report's label for it.
func (st *Step) String() string {
	switch {
	case st.PowerOff != "":
		return "power_off " + st.PowerOff
	case st.PowerOn != "":
		return "power_on " + st.PowerOn
	case st.Reboot != "":
		return "reboot " + st.Reboot
	case st.Partition != nil:
		var groups []string
		for _, g := range st.Partition {
			groups = append(groups, strings.Join(g, ","))
		}
		return "partition " + strings.Join(groups, " | ")
	case st.Heal:
		return "heal"
	case st.SetLink != nil:
		return "set_link " + st.SetLink.Board
	case st.Control != nil:
		return fmt.Sprintf("control %s (%d commands)", st.Control.Board, len(st.Control.Commands))
	case st.App != nil:
		if st.App.Stop != "" {
			return "stop " + st.App.Stop + " on " + st.App.Board
		}
		return "start " + st.App.Start + " on " + st.App.Board
	case st.Wait != nil:
		return "wait " + st.Wait.String()
	case st.Hello != nil:
		return "hello"
	case st.Expect != nil:
		e := st.Expect
		switch {
		case e.Eventually != nil:
			return "expect " + describe(e) + " within " + e.Eventually.String()
		case e.Consistently != nil:
			return "expect " + describe(e) + " for " + e.Consistently.String()
		}
		return "expect " + describe(e)
	case st.Forge != nil:
		return "forge " + st.Forge.Type
	case st.Attack != nil:
		return st.Attack.Kind + " attack on " + st.Attack.Board
	case st.RadioFault != nil:
		return st.RadioFault.Fault + " radio on " + st.RadioFault.Board
	}
	return "nothing"
}
