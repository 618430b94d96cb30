package sim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Event is one line of a run's timeline: something a board reported, or a
// fault the harness injected. Board is empty for events of the whole LAN.
type Event struct {
	At     time.Duration `json:"-"`
	Board  string        `json:"board,omitempty"`
	Kind   string        `json:"event"`
	Member string        `json:"member,omitempty"` // joined, left, master: the member's name
	IP     string        `json:"ip,omitempty"`
	Role   string        `json:"role,omitempty"` // role: the new role
	Old    string        `json:"old,omitempty"`  // role: the previous role
	Reason string        `json:"reason,omitempty"`
	Detail string        `json:"detail,omitempty"`
}

// Event kinds.
const (
	EvPowerOn    = "power_on"
	EvPowerOff   = "power_off"
	EvJoined     = "joined"
	EvLeft       = "left"
	EvRole       = "role"
	EvMaster     = "master"
	EvPartition  = "partition"
	EvHeal       = "heal"
	EvLink       = "link"
	EvPin        = "pin"         // a GPIO changed: Detail says which, to what, why
	EvReset      = "reset"       // the board rebooted on a reset command
	EvSleep      = "sleep"       // light or deep sleep began
	EvWake       = "wake"        // it ended
	EvUpdate     = "update"      // a new image was installed; the board reboots
	EvBootFail   = "boot_fail"   // the new image failed its health check
	EvRollback   = "rollback"    // the previous image is back
	EvWiFiJoined = "wifi_joined" // the board's radio joined the network
	EvWiFiLost   = "wifi_lost"   // it lost the association
	EvAddress    = "address"     // the board's address changed
)

// MarshalJSON writes the event with its simulated time in seconds first:
// {"t": 12.547, "board": "pico2", "event": "role", ...}.
func (e Event) MarshalJSON() ([]byte, error) {
	type fields Event // without this method
	return json.Marshal(struct {
		T float64 `json:"t"`
		fields
	}{e.At.Seconds(), fields(e)})
}

// String renders the event as a line of the human timeline.
func (e Event) String() string {
	who := e.Board
	if who == "" {
		who = "LAN"
	}
	var what string
	switch e.Kind {
	case EvJoined:
		what = fmt.Sprintf("sees %s (%s) join", e.Member, e.IP)
	case EvLeft:
		what = fmt.Sprintf("sees %s leave (%s)", e.Member, e.Reason)
	case EvRole:
		what = fmt.Sprintf("is %s (was %s)", e.Role, e.Old)
	case EvMaster:
		if e.Member == "" {
			what = "sees no master"
		} else {
			what = fmt.Sprintf("follows master %s", e.Member)
		}
	case EvPowerOn:
		what = "powers on " + e.Detail
	case EvPowerOff:
		what = "powers off " + e.Detail
	default:
		what = strings.TrimSpace(e.Kind + " " + e.Detail)
	}
	return fmt.Sprintf("%10.3fs  %-8s %s", e.At.Seconds(), who, what)
}

// Timeline is the events of a run in the order they happened.
type Timeline []Event

// Since returns the events at or after t.
func (tl Timeline) Since(t time.Duration) Timeline {
	for i, e := range tl {
		if e.At >= t {
			return tl[i:]
		}
	}
	return nil
}

// Of returns the events of the given kinds.
func (tl Timeline) Of(kinds ...string) Timeline {
	var out Timeline
	for _, e := range tl {
		for _, k := range kinds {
			if e.Kind == k {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// Last returns the last n events.
func (tl Timeline) Last(n int) Timeline {
	if len(tl) <= n {
		return tl
	}
	return tl[len(tl)-n:]
}

func (tl Timeline) String() string {
	var b strings.Builder
	for _, e := range tl {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}
