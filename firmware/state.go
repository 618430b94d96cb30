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

// appendState writes the board's State as JSON to e: straight to bytes,
// since a Value tree of a 64-member state would cost a Pico W's heap about
// 100 KB, at every change.
func (p *Program) appendState(e *control.Enc, now time.Duration) {
	cfg, _ := node.Config{Heartbeat: p.set.Heartbeat, MissLimit: p.set.MissLimit}.WithDefaults()
	var stats node.Stats
	n := p.node
	e.Open('{')
	e.Key("name")
	e.Str(p.name)
	e.Key("ip")
	if n != nil {
		e.Str(p.ip.String())
	} else {
		e.Str("")
	}
	e.Key("incarnation")
	e.Int(int64(p.inc))
	e.Key("version")
	e.Str(Version(p.flash))
	e.Key("uptime_ms")
	e.Int(ms(now))
	e.Key("joined")
	e.Bool(n != nil)
	e.Key("asleep")
	e.Bool(now < p.asleep)
	e.Key("role")
	master := ""
	if n != nil {
		e.Str(n.Role().String())
		if m, ok := n.Master(); ok {
			if master = m.Name; master == "" {
				master = m.IP.String()
			}
		}
		stats, cfg = n.Stats(), n.Config()
	} else {
		e.Str(node.Joining.String())
	}
	e.Key("master")
	e.Str(master)
	e.Key("members")
	e.Open('[')
	for i := 0; n != nil && i < n.Len(); i++ {
		m := n.MemberAt(i)
		r, _ := n.RoleOf(m.IP)
		e.Open('{')
		e.Key("name")
		e.Str(m.Name)
		e.Key("ip")
		e.Str(m.IP.String())
		e.Key("incarnation")
		e.Int(int64(m.Incarnation))
		e.Key("role")
		e.Str(r.String())
		e.Close('}')
	}
	e.Close(']')
	e.Key("pins")
	e.Open('[')
	for pin := 0; pin <= control.MaxPin; pin++ {
		if mode, val := p.ctl.Pin(pin); mode != control.Unset {
			e.Open('{')
			e.Key("pin")
			e.Int(int64(pin))
			e.Key("mode")
			e.Str(mode.String())
			e.Key("value")
			e.Int(int64(val))
			e.Close('}')
		}
	}
	e.Close(']')
	e.Key("pin_events")
	e.Open('[')
	for _, pe := range p.pinEvents {
		e.Open('{')
		e.Key("seq")
		e.Int(int64(pe.Seq))
		e.Key("ms")
		e.Int(pe.MS)
		e.Key("pin")
		e.Int(int64(pe.Pin))
		e.Key("value")
		e.Int(int64(pe.Value))
		e.Key("cause")
		e.Str(pe.Cause)
		e.Close('}')
	}
	e.Close(']')
	e.Key("led")
	e.Str(p.ctl.Status().String())
	e.Key("stats")
	e.Open('{')
	for i, x := range statValues(stats) {
		e.Key(StatNames[i])
		e.Int(int64(x))
	}
	e.Close('}')
	e.Key("heartbeat_ms")
	e.Float(float64(cfg.Heartbeat) / float64(time.Millisecond))
	e.Key("miss_limit")
	e.Int(int64(cfg.MissLimit))
	e.Close('}')
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

// printState prints {"ms": now, "state": {...}} on the console, in the
// program's line buffer.
func (p *Program) printState(now time.Duration) {
	e := control.Enc{B: p.line[:0]}
	e.Open('{')
	e.Key("ms")
	e.Int(ms(now))
	e.Key("state")
	p.appendState(&e, now)
	e.Close('}')
	p.line = e.B
	p.b.Console(p.line)
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
