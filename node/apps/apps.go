// Package apps provides the small programs real Pico W projects run beside
// discovery, as sans-I/O state machines: the wireless bus of peer messages
// (shared/seeds/000), RGB telemetry with a naive and a robust client (001),
// echo (004), and a LED mirror between boards.
//
// Every app speaks one vocabulary with its driver. Inputs: Tick, what the
// network did (Accepted, Connected, Data, Closed for TCP; Datagram for UDP),
// the cluster as the board sees it (View) and its pins (PinChanged).
// Outputs, from Ready: Ops to carry out (dial, write, close, send a datagram,
// set a pin) and when to Tick next. Apps never block and never read a clock,
// so a lossy link shows in their counters, not as a hung test.
package apps

import (
	"time"

	"github.com/picosim/picosim/node"
)

// ConnID names a TCP connection of one app: the app picks one when it dials,
// the driver when it accepts.
type ConnID uint32

// OpKind says what an Op asks.
type OpKind uint8

const (
	Dial   OpKind = iota + 1 // connect Conn to To:Port
	Write                    // send Data on Conn
	Close                    // close Conn
	Send                     // send the datagram Data to To:Port from the app's UDP port
	SetPin                   // drive GPIO Pin to Level
)

// Op is one thing an app wants done.
type Op struct {
	Kind  OpKind
	Conn  ConnID
	To    node.Addr
	Port  uint16
	Data  []byte
	Pin   int
	Level int
}

// App is what every app implements.
type App interface {
	// Name says which app it is; Ports, the TCP port it listens on and the
	// UDP port it binds (0 for none).
	Name() string
	Ports() (tcp, udp uint16)
	Tick(now time.Duration)
	Accepted(now time.Duration, c ConnID, from node.Addr)
	// Connected reports the end of a Dial: err is nil once connected.
	Connected(now time.Duration, c ConnID, err error)
	Data(now time.Duration, c ConnID, p []byte)
	Closed(now time.Duration, c ConnID)
	Datagram(now time.Duration, from node.Addr, p []byte)
	// View tells the app the cluster as its board sees it.
	View(now time.Duration, self, master node.Addr, members []node.Member)
	// PinChanged tells the app that a GPIO of its board changed.
	PinChanged(now time.Duration, pin, level int)
	// Ready returns the ops to carry out and when to Tick next; Advance
	// acknowledges them.
	Ready() ([]Op, time.Duration)
	Advance()
	Stats() Stats
}

// Stats are an app's counters. Attempts and Successes make its success rate;
// each app says what one attempt is.
type Stats struct {
	Attempts, Successes uint64
	Sent, Received      uint64 // messages
	Errors              uint64
	Crashed             bool // the app stopped on an error, as a script without try/except does
}

// Rate is Successes/Attempts, or 1 before any attempt.
func (s Stats) Rate() float64 {
	if s.Attempts == 0 {
		return 1
	}
	return float64(s.Successes) / float64(s.Attempts)
}

// base holds the outbox and no-op inputs that apps share.
type base struct {
	ops   []Op
	next  time.Duration
	stats Stats
}

func (b *base) Ready() ([]Op, time.Duration)                            { return b.ops, b.next }
func (b *base) Advance()                                                { b.ops = b.ops[:0] }
func (b *base) Stats() Stats                                            { return b.stats }
func (b *base) Accepted(time.Duration, ConnID, node.Addr)               {}
func (b *base) Connected(time.Duration, ConnID, error)                  {}
func (b *base) Data(time.Duration, ConnID, []byte)                      {}
func (b *base) Closed(time.Duration, ConnID)                            {}
func (b *base) Datagram(time.Duration, node.Addr, []byte)               {}
func (b *base) View(time.Duration, node.Addr, node.Addr, []node.Member) {}
func (b *base) PinChanged(time.Duration, int, int)                      {}
func (b *base) op(o Op)                                                 { b.ops = append(b.ops, o) }

// Never is a deadline that does not come.
const Never = time.Duration(1 << 62)
