// Package outbox provides the one shape in which every sans-I/O core of
// picosim — discovery (node), the control server (node/control) and the
// apps (node/apps) — hands its driver what it wants done: datagrams to send,
// TCP connections to dial, stream writes and closes, pin writes, events of
// its own, and when to be ticked next. As with etcd raft's Ready and Advance,
// the driver reads Ready after each input, carries it out, and calls
// Advance, after which the core reuses the slices.
package outbox

import (
	"math"
	"time"
)

// Never is the deadline of a core with nothing pending: a time that does
// not come.
const Never = time.Duration(math.MaxInt64)

// ConnID names a TCP connection between a core and its driver.
type ConnID uint32

// Datagram is a UDP datagram to send from the core's port From (0: the
// core's only port) to To:Port.
type Datagram struct {
	From    uint16
	To      [4]byte
	Port    uint16
	Payload []byte
}

// Dial asks for a TCP connection Conn to To:Port; the driver reports the
// outcome to the core.
type Dial struct {
	Conn ConnID
	To   [4]byte
	Port uint16
}

// Write is data to send on a connection.
type Write struct {
	Conn ConnID
	Data []byte
}

// Cause says why a pin changed.
type Cause uint8

const (
	BySetup  Cause = iota + 1 // setup_pin, or the settings at boot
	ByWrite                   // write_pin
	ByRevert                  // the fail-safe: a timeout ended, or its writer went
	ByReset                   // reset, update or deep sleep: back to the setup value
	ByBlink                   // the status LED's pattern
	ByApp                     // an app drove it (the LED mirror)
)

func (c Cause) String() string {
	switch c {
	case BySetup:
		return "setup"
	case ByWrite:
		return "write"
	case ByRevert:
		return "revert"
	case ByReset:
		return "reset"
	case ByBlink:
		return "blink"
	case ByApp:
		return "app"
	}
	return "unknown"
}

// PinChange is a level to drive a GPIO to; the LED is pin -1 (control.LED).
type PinChange struct {
	At    time.Duration
	Pin   int
	Value int
	Cause Cause
}

// Ready is what a core wants done since the last Advance; E is the kind of
// its own events (node.Event, control.Action, nothing for apps). Its slices
// are the core's: carry them out, or copy them, before Advance.
type Ready[E any] struct {
	Datagrams []Datagram
	Dials     []Dial
	Writes    []Write
	Closes    []ConnID // after the writes before them
	Pins      []PinChange
	Events    []E
	// Deadline is when the core must be ticked next, at the latest; Never
	// when nothing is pending.
	Deadline time.Duration
}

// None is the event type of a core without events of its own.
type None struct{}

// Reset empties r for reuse, keeping its slices' room and its deadline.
func (r *Ready[E]) Reset() {
	r.Datagrams, r.Dials, r.Writes = r.Datagrams[:0], r.Dials[:0], r.Writes[:0]
	r.Closes, r.Pins, r.Events = r.Closes[:0], r.Pins[:0], r.Events[:0]
}
