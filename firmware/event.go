package firmware

import (
	"strconv"
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// Event is something a board reports: its discovery core's view changing
// (joined, left, role, master) and what the program itself does (boot,
// wifi_joined, pin, sleep, update, ...). It goes to Options.OnEvent as it is,
// and to the console as one JSON line ({"ms": 1234, "event": "role", ...}),
// which harnesses decode into this type.
type Event struct {
	At     time.Duration `json:"-"`
	Board  string        `json:"board,omitempty"` // the board's name (OnEvent only)
	Kind   string        `json:"event"`
	Member string        `json:"member,omitempty"` // joined, left, master: the member's name
	IP     string        `json:"ip,omitempty"`
	Role   string        `json:"role,omitempty"` // role: the new role
	Old    string        `json:"old,omitempty"`  // role: the previous role
	Reason string        `json:"reason,omitempty"`
	Detail string        `json:"detail,omitempty"`
}

// Event kinds: the discovery core's, then the program's own.
const (
	EvJoined = "joined" // a member appeared (or came back as a new incarnation)
	EvLeft   = "left"   // a member is gone: Reason says why
	EvRole   = "role"   // this board's role changed from Old to Role
	EvMaster = "master" // this board follows Member as master ("" for none)

	EvBoot        = "boot"
	EvBootFail    = "boot_fail"      // the image failed its health check
	EvRollback    = "rollback"       // the previous image is back
	EvWiFiJoined  = "wifi_joined"    // the radio joined the network
	EvWiFiLost    = "wifi_lost"      // it lost the association
	EvRejoin      = "wifi_rejoin"    // the watchdog makes the radio join again: Detail says why
	EvRelisten    = "listen_restart" // a listener that left attempts unanswered is opened again
	EvPin         = "pin"            // a GPIO changed: Detail says which, to what, why
	EvLED         = "led"            // the status LED's pattern changed: Detail is connecting, idle or active
	EvReset       = "reset"          // the board reboots on a reset command
	EvSleep       = "sleep"          // light or deep sleep begins
	EvWake        = "wake"           // a light sleep ended
	EvUpdate      = "update"         // a new image is installed; the board reboots
	EvUpdateError = "update_error"
	EvConfigError = "config_error" // a settings file the board could not use
	EvSendError   = "send_error"
	EvAppError    = "app_error"
	EvCutOff      = "cut_off" // a connection was dropped: its peer read nothing while more than MaxBacklog waited
)

// String renders the event as a line of a human timeline: the time in
// seconds, the board that reports it ("LAN" for the whole network), and
// what it saw.
func (ev Event) String() string {
	b := strconv.AppendFloat(nil, ev.At.Seconds(), 'f', 3, 64)
	line := make([]byte, 0, 64)
	for i := len(b); i < 10; i++ {
		line = append(line, ' ')
	}
	line = append(append(line, b...), "s  "...)
	who := ev.Board
	if who == "" {
		who = "LAN"
	}
	line = append(line, who...)
	for i := len(who); i < 8; i++ {
		line = append(line, ' ')
	}
	line = append(line, ' ')
	switch ev.Kind {
	case EvJoined:
		line = append(line, "sees "+ev.Member+" ("+ev.IP+") join"...)
	case EvLeft:
		line = append(line, "sees "+ev.Member+" leave ("+ev.Reason+")"...)
	case EvRole:
		line = append(line, "is "+ev.Role+" (was "+ev.Old+")"...)
	case EvMaster:
		if ev.Member == "" {
			line = append(line, "sees no master"...)
		} else {
			line = append(line, "follows master "+ev.Member...)
		}
	case "power_on":
		line = append(line, "powers on "+ev.Detail...)
	case "power_off":
		line = append(line, "powers off "+ev.Detail...)
	default:
		line = append(line, ev.Kind...)
		if ev.Detail != "" {
			line = append(append(line, ' '), ev.Detail...)
		}
	}
	for len(line) > 0 && line[len(line)-1] == ' ' {
		line = line[:len(line)-1]
	}
	return string(line)
}

// nodeEvent turns an event of the discovery core into the program's.
func nodeEvent(e node.Event) Event {
	ev := Event{At: e.At, Kind: e.Kind.String()}
	switch e.Kind {
	case node.MemberJoined, node.MemberLeft:
		ev.Member, ev.IP = e.Member.Name, e.Member.IP.String()
		if e.Kind == node.MemberLeft {
			ev.Reason = e.Reason.String()
		}
	case node.MasterChanged:
		if !e.Member.IP.IsZero() {
			ev.Member, ev.IP = e.Member.Name, e.Member.IP.String()
		}
	case node.RoleChanged:
		ev.Role, ev.Old = e.Role.String(), e.Old.String()
	}
	return ev
}

// appendLine writes the event as a console line: {"ms": ..., "event": ...}
// and the fields that are set, Board aside.
func (ev Event) appendLine(b []byte) []byte {
	e := control.Enc{B: b}
	e.Open('{')
	e.Key("ms")
	e.Int(ms(ev.At))
	e.Key("event")
	e.Str(ev.Kind)
	for _, f := range [...]struct{ k, v string }{{"member", ev.Member}, {"ip", ev.IP}, {"role", ev.Role}, {"old", ev.Old}, {"reason", ev.Reason}, {"detail", ev.Detail}} {
		if f.v != "" {
			e.Key(f.k)
			e.Str(f.v)
		}
	}
	e.Close('}')
	return e.B
}

// reporter sends events where the options say: OnEvent, the console.
type reporter struct {
	b    Board
	opt  *Options
	name string
	line []byte
}

// wanted says whether anyone takes events: a simulator of thousands of
// boards that keeps no timeline lets the program skip building them.
func (r *reporter) wanted() bool { return r.opt.OnEvent != nil || !r.opt.Quiet }

func (r *reporter) report(ev Event) {
	ev.Board = r.name
	if r.opt.OnEvent != nil {
		r.opt.OnEvent(ev)
	}
	if !r.opt.Quiet {
		r.line = ev.appendLine(r.line[:0])
		r.b.Console(r.line)
	}
}
