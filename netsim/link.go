package netsim

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Link is the impairment of one direction of a host's link: its uplink
// (frames the host sends) or its downlink (frames it receives). A frame
// between two hosts crosses the sender's uplink and then the receiver's
// downlink; a broadcast crosses the uplink once and each downlink on its own.
// The zero Link is a perfect wire.
type Link struct {
	// Loss is the probability, 0 to 1, that a frame is lost.
	Loss float64
	// Latency is the mean one-way delay.
	Latency time.Duration
	// Jitter spreads the delay uniformly over Latency±Jitter (never below 0).
	// Frames overtake each other when it exceeds their spacing, as on air.
	Jitter time.Duration
}

// Validate reports a setting that makes no sense.
func (l Link) Validate() error {
	switch {
	case l.Loss < 0 || l.Loss > 1 || l.Loss != l.Loss:
		return fmt.Errorf("loss %v is not a probability between 0 and 1", l.Loss)
	case l.Latency < 0:
		return fmt.Errorf("latency %v is negative", l.Latency)
	case l.Jitter < 0:
		return fmt.Errorf("jitter %v is negative", l.Jitter)
	}
	return nil
}

// pass draws whether a frame survives the link and, if it does, its delay.
func (l Link) pass(r *rand.Rand) (time.Duration, bool) {
	if l.Loss > 0 && r.Float64() < l.Loss {
		return 0, false
	}
	d := l.Latency
	if l.Jitter > 0 {
		d += time.Duration(r.Int64N(int64(2*l.Jitter)+1)) - l.Jitter
	}
	if d < 0 {
		d = 0
	}
	return d, true
}

// Direction names one half of a host's link.
type Direction int

const (
	// Up is the host's uplink: frames it sends.
	Up Direction = iota + 1
	// Down is the host's downlink: frames it receives.
	Down
	// Both sets Up and Down alike.
	Both
)

// Counters are what the LAN did with one host's frames.
type Counters struct {
	Sent      uint64 // frames the host transmitted
	Delivered uint64 // frames handed to the host's stack
	// Dropped counts frames that did not arrive, by cause: lost on this
	// host's uplink or downlink, cut by a partition on the way to this host,
	// or addressed to it while it was powered off.
	Lost, Partitioned, Down uint64
}

// Dropped is the total of frames dropped on this host's account.
func (c Counters) Dropped() uint64 { return c.Lost + c.Partitioned + c.Down }
