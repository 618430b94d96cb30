package firmware

import (
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// State is what a board reports of itself: on its console after every
// change, and in reply to get_state. The program writes it with the
// control package's JSON codec (no reflection on a microcontroller); the
// harness reads it with encoding/json into this type.
type State struct {
	Name        string `json:"name"`
	IP          string `json:"ip"` // "" until the radio joins
	Incarnation uint32 `json:"incarnation"`
	Version     string `json:"version"`
	UptimeMS    int64  `json:"uptime_ms"`
	// Joined: on the network, with discovery running.
	Joined bool `json:"joined"`
	Asleep bool `json:"asleep"`
	// Role is JOINING, MASTER or WORKERn; Master the name of the master it
	// follows ("" before it settles).
	Role      string            `json:"role"`
	Master    string            `json:"master"`
	Members   []MemberState     `json:"members"`
	Pins      []PinState        `json:"pins"`
	PinEvents []PinEvent        `json:"pin_events"` // the last changes, oldest first
	LED       string            `json:"led"`        // connecting, idle or active
	Stats     map[string]uint64 `json:"stats"`      // node.Stats, by the names of StatNames
	// The timings it runs with, defaults filled in.
	HeartbeatMS float64 `json:"heartbeat_ms"`
	MissLimit   int     `json:"miss_limit"`
}

// MemberState is one member as the board sees it.
type MemberState struct {
	Name        string `json:"name"`
	IP          string `json:"ip"`
	Incarnation uint32 `json:"incarnation"`
	Role        string `json:"role"`
}

// PinState is a GPIO that has been set up.
type PinState struct {
	Pin   int    `json:"pin"`
	Mode  string `json:"mode"`
	Value int    `json:"value"`
}

// PinEvent is one change of a GPIO, numbered from 1 at every boot.
type PinEvent struct {
	Seq   uint64 `json:"seq"`
	MS    int64  `json:"ms"` // uptime
	Pin   int    `json:"pin"`
	Value int    `json:"value"`
	Cause string `json:"cause"` // setup, write, revert, reset
}

// StatNames are the counters of node.Stats in State.Stats.
var StatNames = []string{"received", "malformed", "ignored", "hellos_answered", "fulls_sent", "heartbeats_sent", "claims"}

func statValues(s node.Stats) []uint64 {
	return []uint64{s.Received, s.Malformed, s.Ignored, s.HellosAnswered, s.FullsSent, s.HeartbeatsSent, s.Claims}
}

// Stat returns the counter of s called name (one of StatNames).
func Stat(s node.Stats, name string) (uint64, bool) {
	for i, v := range statValues(s) {
		if StatNames[i] == name {
			return v, true
		}
	}
	return 0, false
}

// Line is one console line as the harness decodes it: an event, or a state.
type Line struct {
	MS     int64  `json:"ms"`
	Event  string `json:"event"`
	Member string `json:"member"`
	IP     string `json:"ip"`
	Role   string `json:"role"`
	Old    string `json:"old"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
	State  *State `json:"state"`
}

func (p *Program) state(now time.Duration) control.Value {
	f := func(k string, v control.Value) control.Field { return control.Field{Key: k, Val: v} }
	v := control.Obj(
		f("name", control.Str(p.name)),
		f("ip", control.Str("")),
		f("incarnation", control.Int(int64(p.inc))),
		f("version", control.Str(Version(p.flash))),
		f("uptime_ms", control.Int(ms(now))),
		f("joined", control.Boolean(p.node != nil)),
		f("asleep", control.Boolean(now < p.asleep)),
		f("role", control.Str(node.Joining.String())),
		f("master", control.Str("")),
	)
	var members []control.Value
	var stats node.Stats
	cfg, _ := node.Config{Heartbeat: p.set.Heartbeat, MissLimit: p.set.MissLimit}.WithDefaults()
	if n := p.node; n != nil {
		v.Set("ip", control.Str(p.ip.String()))
		v.Set("role", control.Str(n.Role().String()))
		ms := n.Members()
		if m, ok := n.Master(); ok {
			v.Set("master", control.Str(nameIn(ms, m.IP)))
		}
		for _, m := range ms {
			r, _ := n.RoleOf(m.IP)
			members = append(members, control.Obj(
				f("name", control.Str(m.Name)), f("ip", control.Str(m.IP.String())),
				f("incarnation", control.Int(int64(m.Incarnation))), f("role", control.Str(r.String()))))
		}
		stats = n.Stats()
		cfg = n.Config()
	}
	v.Set("members", control.List(members...))
	var pins []control.Value
	for n := 0; n <= control.MaxPin; n++ {
		if mode, val := p.ctl.Pin(n); mode != control.Unset {
			pins = append(pins, control.Obj(f("pin", control.Int(int64(n))), f("mode", control.Str(mode.String())), f("value", control.Int(int64(val)))))
		}
	}
	v.Set("pins", control.List(pins...))
	var evs []control.Value
	for _, e := range p.pinEvents {
		evs = append(evs, control.Obj(f("seq", control.Int(int64(e.Seq))), f("ms", control.Int(e.MS)),
			f("pin", control.Int(int64(e.Pin))), f("value", control.Int(int64(e.Value))), f("cause", control.Str(e.Cause))))
	}
	v.Set("pin_events", control.List(evs...))
	v.Set("led", control.Str(p.ctl.Status().String()))
	st := control.Obj()
	for i, x := range statValues(stats) {
		st.Set(StatNames[i], control.Int(int64(x)))
	}
	v.Set("stats", st)
	v.Set("heartbeat_ms", control.Float(float64(cfg.Heartbeat)/float64(time.Millisecond)))
	v.Set("miss_limit", control.Int(int64(cfg.MissLimit)))
	return v
}

func nameIn(ms []node.Member, ip node.Addr) string {
	for _, m := range ms {
		if m.IP == ip {
			return m.Name
		}
	}
	return ip.String()
}

// nodeEvent prints an event of the discovery core.
func (p *Program) nodeEvent(e node.Event) {
	v := control.Obj(control.Field{Key: "event", Val: control.Str(e.Kind.String())})
	switch e.Kind {
	case node.MemberJoined, node.MemberLeft:
		v.Set("member", control.Str(e.Member.Name))
		v.Set("ip", control.Str(e.Member.IP.String()))
		if e.Kind == node.MemberLeft {
			v.Set("reason", control.Str(e.Reason.String()))
		}
	case node.MasterChanged:
		if !e.Member.IP.IsZero() {
			v.Set("member", control.Str(e.Member.Name))
			v.Set("ip", control.Str(e.Member.IP.String()))
		}
	case node.RoleChanged:
		v.Set("role", control.Str(e.Role.String()))
		v.Set("old", control.Str(e.Old.String()))
	}
	p.emit(e.At, v)
}

// log prints an event of the program's own.
func (p *Program) log(now time.Duration, event, detail string) {
	p.emit(now, eventValue(event, detail))
}

func eventValue(event, detail string) control.Value {
	v := control.Obj(control.Field{Key: "event", Val: control.Str(event)})
	if detail != "" {
		v.Set("detail", control.Str(detail))
	}
	return v
}

func (p *Program) print(now time.Duration, key string, val control.Value) {
	p.emit(now, control.Obj(control.Field{Key: key, Val: val}))
}

func (p *Program) emit(now time.Duration, v control.Value) { p.line = emit(p.b, p.line, now, v) }

// emit writes {"ms": now, ...fields of v} as one console line, in buf.
func emit(b Board, buf []byte, now time.Duration, v control.Value) []byte {
	line := control.Obj(control.Field{Key: "ms", Val: control.Int(ms(now))})
	line.Fields = append(line.Fields, v.Fields...)
	buf = line.Append(buf[:0])
	b.Console(buf)
	return buf
}
