package sim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim/check"
)

// Event is one line of a run's timeline: something a board's program
// reported (firmware's kinds), or what the harness did to a board or to
// the network (the kinds below). Board is empty for events of the whole
// LAN.
type Event = firmware.Event

// The harness's event kinds.
const (
	EvPowerOn   = "power_on"
	EvPowerOff  = "power_off"
	EvPartition = "partition"
	EvHeal      = "heal"
	EvLink      = "link"
	EvAddress   = "address" // the board's address changed
	// EvRadioFault: the board's radio failed (Detail: silent, stall,
	// dhcp_failed; see netsim.PicoW), injected or drawn from its rates.
	EvRadioFault = check.RadioFault
	// EvListenerFault: the board's TCP listeners stopped answering
	// (netsim.FaultNoSynAck); its radio is fine.
	EvListenerFault = "listener_fault"
)

// FaultKind is the timeline's kind for a netsim fault: EvListenerFault for
// a wedged listener (the radio is fine: no outage), EvRadioFault for the
// others.
func FaultKind(fault string) string {
	if fault == netsim.FaultNoSynAck {
		return EvListenerFault
	}
	return EvRadioFault
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

// String renders the timeline a line an event (check.Line).
func (tl Timeline) String() string {
	var b strings.Builder
	for _, e := range tl {
		b.WriteString(check.Line(e))
		b.WriteByte('\n')
	}
	return b.String()
}

// JSON writes an event with its time in seconds first, as `picosim
// cluster --json` and the scenario reports print them:
// {"t": 12.547, "board": "pico2", "event": "role", ...}.
func JSON(e Event) []byte {
	b, _ := json.Marshal(struct {
		T Seconds `json:"t"`
		Event
	}{Seconds(e.At), e})
	return b
}

// Seconds is a time written in JSON as exact seconds, 3.362709618, from its
// whole nanoseconds: not as the float64 of them, 3.3627096180000002.
type Seconds time.Duration

func (s Seconds) MarshalJSON() ([]byte, error) {
	ns := int64(s)
	sign := ""
	if ns < 0 {
		sign, ns = "-", -ns
	}
	frac := strings.TrimRight(fmt.Sprintf("%09d", ns%1e9), "0")
	if frac == "" {
		return fmt.Appendf(nil, "%s%d", sign, ns/1e9), nil
	}
	return fmt.Appendf(nil, "%s%d.%s", sign, ns/1e9, frac), nil
}
