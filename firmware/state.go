package firmware

import (
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// State is what a board reports of itself: on its console after every
// change, in reply to get_state, and to a simulator that asks (Program.State).
// The program writes it with the control package's JSON encoder (no
// reflection on a microcontroller); harnesses read it with encoding/json.
type State struct {
	Name        string `json:"name"`
	IP          string `json:"ip"` // "" until the radio first joins
	Incarnation uint32 `json:"incarnation"`
	Version     string `json:"version"`
	UptimeMS    int64  `json:"uptime_ms"`
	// Joined: discovery runs (the radio joined at least once); Online: the
	// radio is on the network now.
	Joined bool `json:"joined"`
	Online bool `json:"online"`
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
	Apps      []AppStats        `json:"apps"`
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

// PinState is a GPIO that has been set up. HeldUntilMS, when not 0, is the
// uptime at which the fail-safe reverts a written value.
type PinState struct {
	Pin         int     `json:"pin"`
	Mode        string  `json:"mode"`
	Value       int     `json:"value"`
	HeldUntilMS float64 `json:"held_until_ms,omitempty"`
}

// PinEvent is one change of a GPIO, numbered from 1 at every boot.
type PinEvent struct {
	Seq   uint64 `json:"seq"`
	MS    int64  `json:"ms"` // uptime
	Pin   int    `json:"pin"`
	Value int    `json:"value"`
	Cause string `json:"cause"` // setup, write, revert, reset, app
}

// AppStats is an app's name and counters since the board booted.
type AppStats struct {
	App       string `json:"app"`
	Attempts  uint64 `json:"attempts"`
	Successes uint64 `json:"successes"`
	Sent      uint64 `json:"sent"`
	Received  uint64 `json:"received"`
	Errors    uint64 `json:"errors"`
	Crashed   bool   `json:"crashed"`
}

// StatNames are the counters in State.Stats: node.Stats's, then the
// program's own (commands refused with AuthError, connections cut off for
// not reading).
var StatNames = []string{"received", "malformed", "ignored", "hellos_answered", "fulls_sent", "heartbeats_sent", "claims",
	"unauthenticated", "stale", "auth_failures", "cut_off", "rejoins", "listen_restarts"}

func statValues(s node.Stats) [9]uint64 {
	return [9]uint64{s.Received, s.Malformed, s.Ignored, s.HellosAnswered, s.FullsSent, s.HeartbeatsSent, s.Claims,
		s.Unauthenticated, s.Stale}
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

// Line is one console line as a harness decodes it: an event, or a state.
type Line struct {
	MS int64 `json:"ms"`
	Event
	State *State `json:"state"`
}

// State returns what the board reports of itself now.
func (p *Program) State(now time.Duration) State {
	cfg, _ := node.Config{Heartbeat: p.set.Heartbeat, MissLimit: p.set.MissLimit}.WithDefaults()
	var stats node.Stats
	s := State{Name: p.name, Incarnation: p.inc, Version: Version(p.flash), UptimeMS: ms(now),
		Joined: p.node != nil, Online: p.online, Asleep: now < p.asleep, Role: node.Joining.String(),
		LED: p.ctl.Status().String(), PinEvents: p.pinEvents}
	if n := p.node; n != nil {
		s.IP, s.Role = p.ip.String(), n.Role().String()
		if m, ok := n.Master(); ok {
			if s.Master = m.Name; s.Master == "" {
				s.Master = m.IP.String()
			}
		}
		s.Members = make([]MemberState, n.Len())
		for i := range s.Members {
			m := n.MemberAt(i)
			r, _ := n.RoleOf(m.IP)
			s.Members[i] = MemberState{Name: m.Name, IP: m.IP.String(), Incarnation: m.Incarnation, Role: r.String()}
		}
		stats, cfg = n.Stats(), n.Config()
	}
	for pin := 0; pin <= control.MaxPin; pin++ {
		if mode, val := p.ctl.Pin(pin); mode != control.Unset {
			ps := PinState{Pin: pin, Mode: mode.String(), Value: val}
			if at, held := p.ctl.Held(pin); held {
				// Not max(): LLVM cannot lower a float min/max for the
				// RP2040's soft float ("Do not know how to soften").
				if ps.HeldUntilMS = float64(at) / float64(time.Millisecond); ps.HeldUntilMS <= 0 {
					ps.HeldUntilMS = 1e-6
				}
			}
			s.Pins = append(s.Pins, ps)
		}
	}
	s.Stats = make(map[string]uint64, len(StatNames))
	for i, x := range statValues(stats) {
		s.Stats[StatNames[i]] = x
	}
	s.Stats["auth_failures"], s.Stats["cut_off"], s.Stats["rejoins"] = p.ctl.AuthFailures(), p.cutOff, uint64(p.dog.rejoins)
	s.Stats["listen_restarts"] = uint64(p.relistens)
	for _, r := range p.apps {
		st := r.app.Stats()
		s.Apps = append(s.Apps, AppStats{App: r.spec.App, Attempts: st.Attempts, Successes: st.Successes,
			Sent: st.Sent, Received: st.Received, Errors: st.Errors, Crashed: st.Crashed})
	}
	s.HeartbeatMS = float64(cfg.Heartbeat) / float64(time.Millisecond)
	s.MissLimit = cfg.MissLimit
	return s
}

// appendJSON writes the state as JSON to e: straight to bytes, since a
// control.Value tree of a 64-member state would cost a Pico W's heap about
// 100 KB at every change.
func (s *State) appendJSON(e *control.Enc) {
	e.Open('{')
	e.Key("name")
	e.Str(s.Name)
	e.Key("ip")
	e.Str(s.IP)
	e.Key("incarnation")
	e.Int(int64(s.Incarnation))
	e.Key("version")
	e.Str(s.Version)
	e.Key("uptime_ms")
	e.Int(s.UptimeMS)
	e.Key("joined")
	e.Bool(s.Joined)
	e.Key("online")
	e.Bool(s.Online)
	e.Key("asleep")
	e.Bool(s.Asleep)
	e.Key("role")
	e.Str(s.Role)
	e.Key("master")
	e.Str(s.Master)
	e.Key("members")
	e.Open('[')
	for _, m := range s.Members {
		e.Open('{')
		e.Key("name")
		e.Str(m.Name)
		e.Key("ip")
		e.Str(m.IP)
		e.Key("incarnation")
		e.Int(int64(m.Incarnation))
		e.Key("role")
		e.Str(m.Role)
		e.Close('}')
	}
	e.Close(']')
	e.Key("pins")
	e.Open('[')
	for _, p := range s.Pins {
		e.Open('{')
		e.Key("pin")
		e.Int(int64(p.Pin))
		e.Key("mode")
		e.Str(p.Mode)
		e.Key("value")
		e.Int(int64(p.Value))
		if p.HeldUntilMS != 0 {
			e.Key("held_until_ms")
			e.Float(p.HeldUntilMS)
		}
		e.Close('}')
	}
	e.Close(']')
	e.Key("pin_events")
	e.Open('[')
	for _, pe := range s.PinEvents {
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
	e.Str(s.LED)
	e.Key("stats")
	e.Open('{')
	for _, name := range StatNames {
		e.Key(name)
		e.Int(int64(s.Stats[name]))
	}
	e.Close('}')
	e.Key("apps")
	e.Open('[')
	for _, a := range s.Apps {
		e.Open('{')
		e.Key("app")
		e.Str(a.App)
		for _, f := range [...]struct {
			k string
			v uint64
		}{{"attempts", a.Attempts}, {"successes", a.Successes}, {"sent", a.Sent}, {"received", a.Received}, {"errors", a.Errors}} {
			e.Key(f.k)
			e.Int(int64(f.v))
		}
		e.Key("crashed")
		e.Bool(a.Crashed)
		e.Close('}')
	}
	e.Close(']')
	e.Key("heartbeat_ms")
	e.Float(s.HeartbeatMS)
	e.Key("miss_limit")
	e.Int(int64(s.MissLimit))
	e.Close('}')
}

// appendState writes the board's state now as JSON to e.
func (p *Program) appendState(e *control.Enc, now time.Duration) {
	s := p.State(now)
	s.appendJSON(e)
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
