// Package apps provides the small programs real Pico W projects run beside
// discovery, as sans-I/O state machines: the wireless bus of peer messages
// (shared/seeds/000), RGB telemetry with a naive and a robust client (001),
// echo (004), and a LED mirror between boards. The firmware hosts them
// (firmware.Program), so they run on every target.
//
// An app is small: Step hands it one input (a datagram, a TCP event, the
// cluster as its board sees it, a pin change), Tick lets its time pass, and
// Ready returns what it wants done in the shape every core of picosim uses
// (outbox.Ready: datagrams, dials, writes, closes, pin writes, the next
// deadline), acknowledged by Advance. Apps never block and never read a
// clock, so a lossy link shows in their counters, not as a hung test.
package apps

import (
	"errors"
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/outbox"
)

// ConnID names a TCP connection of one app: the app picks one when it
// dials, the driver when it accepts.
type ConnID = outbox.ConnID

// Ready is what an app wants done.
type Ready = outbox.Ready[outbox.None]

// App is what every app implements.
type App interface {
	// Step hands the app one input.
	Step(now time.Duration, in Input)
	// Tick lets time pass; call it at Ready().Deadline.
	Tick(now time.Duration)
	// Ready returns what the app wants done; Advance acknowledges it.
	Ready() Ready
	Advance()
	// Stats returns the app's counters.
	Stats() Stats
}

// InputKind says what an Input reports.
type InputKind uint8

const (
	Datagram  InputKind = iota + 1 // From sent Data to the app's UDP port
	Accepted                       // a peer (From) connected to the app's TCP port as Conn
	Connected                      // a Dial of Conn ended: Err is nil once connected
	Data                           // Data arrived on Conn
	Closed                         // Conn ended
	Viewed                         // View is the cluster as the board now sees it
	Pin                            // the board's GPIO Pin changed to Level
)

// Input is one thing that happened to an app.
type Input struct {
	Kind  InputKind
	Conn  ConnID
	From  node.Addr
	Data  []byte
	Err   error
	View  View
	Pin   int
	Level int
}

// View is the cluster as a board sees it.
type View struct {
	Self, Master node.Addr
	Members      []node.Member
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

// Add sums two apps' counters (Crashed if either crashed).
func (s Stats) Add(o Stats) Stats {
	return Stats{Attempts: s.Attempts + o.Attempts, Successes: s.Successes + o.Successes,
		Sent: s.Sent + o.Sent, Received: s.Received + o.Received, Errors: s.Errors + o.Errors,
		Crashed: s.Crashed || o.Crashed}
}

// Spec is an app and its settings, as a scenario, a board's settings file
// or the start_app command give them.
type Spec struct {
	App string // one of Kinds' names
	// Server is the board a client talks to, by name. The robust RGB client
	// finds it through discovery at every poll; the naive one and the echo
	// client dial ServerIP, or Server's address when the app starts.
	Server   string
	ServerIP node.Addr
	// Interval between a client's messages (0: the app's default).
	Interval time.Duration
	// The mirror: Target's TargetPin follows Source's SourcePin.
	Source, Target       string
	SourcePin, TargetPin int
}

// Kind is an app the firmware can run, and the ports it needs.
type Kind struct {
	Name     string
	TCP, UDP uint16 // the ports it listens on; 0: none
	Client   bool   // it needs a Server
}

// Kinds lists every app.
var Kinds = []Kind{
	{Name: "bus", UDP: BusPort},
	{Name: "rgb-server", TCP: RGBPort},
	{Name: "rgb-client-naive", Client: true},
	{Name: "rgb-client-robust", Client: true},
	{Name: "echo-server", TCP: EchoPort},
	{Name: "echo-client", Client: true},
	{Name: "mirror", UDP: MirrorPort},
	{Name: "seed000-ap", UDP: Seed000APPort},
	{Name: "seed000-ap-welcome", UDP: Seed000APPort},
	{Name: "seed000-ap-nodes", UDP: Seed000APPort},
	{Name: "seed000-client", UDP: Seed000PeerPort, Client: true},
}

// KindOf returns the app called name.
func KindOf(name string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// New starts the app of spec at now on the board called self; rnd is its
// randomness (the RGB server's colours).
func New(spec Spec, self string, now time.Duration, rnd node.Source) (App, error) {
	k, ok := KindOf(spec.App)
	if !ok {
		return nil, errors.New("no app " + spec.App)
	}
	if k.Client && spec.Server == "" && spec.ServerIP.IsZero() {
		return nil, errors.New(spec.App + " needs a server")
	}
	switch spec.App {
	case "bus":
		return NewBus(spec.Interval, now), nil
	case "rgb-server":
		return NewRGBServer(rnd), nil
	case "rgb-client-naive", "rgb-client-robust":
		c := NewRGBClient(spec.App == "rgb-client-robust", now)
		c.Server, c.ServerName = spec.ServerIP, spec.Server
		if spec.Interval > 0 {
			c.Interval = spec.Interval
		}
		return c, nil
	case "echo-server":
		return NewEchoServer(), nil
	case "echo-client":
		return NewEchoClient(spec.ServerIP, spec.Interval, now), nil
	case "seed000-ap", "seed000-ap-welcome", "seed000-ap-nodes":
		return NewSeed000AP(spec.App, now), nil
	case "seed000-client":
		return NewSeed000Client(spec.ServerIP, spec.Interval, now), nil
	case "mirror":
		if spec.Source == "" || spec.Target == "" {
			return nil, errors.New("mirror needs a source and a target board")
		}
		return NewMirror(self, spec.Source, spec.Target, spec.SourcePin, spec.TargetPin, now), nil
	}
	return nil, errors.New("no app " + spec.App)
}

// base holds the outbox, the counters and the no-op inputs apps share.
type base struct {
	rd    Ready
	next  time.Duration
	stats Stats
}

func (b *base) Ready() Ready { r := b.rd; r.Deadline = b.next; return r }
func (b *base) Advance()     { b.rd.Reset() }
func (b *base) Stats() Stats { return b.stats }

func (b *base) send(from uint16, to node.Addr, port uint16, data []byte) {
	b.rd.Datagrams = append(b.rd.Datagrams, outbox.Datagram{From: from, To: to, Port: port, Payload: data})
}
func (b *base) dial(c ConnID, to node.Addr, port uint16) {
	b.rd.Dials = append(b.rd.Dials, outbox.Dial{Conn: c, To: to, Port: port})
}
func (b *base) write(c ConnID, data []byte) {
	b.rd.Writes = append(b.rd.Writes, outbox.Write{Conn: c, Data: data})
}
func (b *base) close(c ConnID) { b.rd.Closes = append(b.rd.Closes, c) }
func (b *base) pin(now time.Duration, pin, level int) {
	b.rd.Pins = append(b.rd.Pins, outbox.PinChange{At: now, Pin: pin, Value: level, Cause: outbox.ByApp})
}

// Never is a deadline that does not come.
const Never = outbox.Never
