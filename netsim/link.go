package netsim

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Link is the impairment of one direction of a path: a host's uplink (frames
// it sends), its downlink (frames it receives), or the path from one host to
// another (SetPair). A frame crosses the sender's uplink, then the
// receiver's downlink or the pair's link; a broadcast crosses the uplink once
// and each receiver's side on its own. The zero Link is a perfect wire.
type Link struct {
	// Loss is the probability, 0 to 1, that a frame is lost, each frame on
	// its own (Bernoulli). Burst, when set, replaces it.
	Loss float64
	// Burst is Gilbert–Elliott loss: bursts of loss, as a fading radio gives.
	Burst *Burst

	// Latency is the base one-way delay.
	Latency time.Duration
	// Jitter spreads the delay around Latency, with the shape of Dist.
	Jitter time.Duration
	// Dist is the shape of the jitter: Uniform (the default, Latency±Jitter)
	// or Normal (Jitter is the standard deviation). Delays never go below 0.
	Dist Dist
	// Tail adds, with probability TailProb, an extra delay drawn from an
	// exponential distribution of mean TailMean: the rare slow frame of a
	// sleeping radio.
	TailProb float64
	TailMean time.Duration

	// Duplicate is the probability that a frame arrives twice.
	Duplicate float64
	// Reorder is the probability that a frame is held back by ReorderDelay
	// (default 10 ms), so that frames sent after it overtake it.
	Reorder      float64
	ReorderDelay time.Duration
	// Corrupt is the probability that one bit of the frame's IP packet is
	// flipped; the receiving stack's checksums must catch it.
	Corrupt float64

	// Rate limits the link to that many bytes per second (0: no limit).
	// Frames wait in a queue of Queue frames (default 64) and are dropped
	// when it is full (tail drop).
	Rate  int64
	Queue int
}

// Burst is the Gilbert–Elliott model: a Good and a Bad state, each with its
// own loss probability, and per-frame chances of moving between them. The
// mean burst of Bad frames is 1/R frames long.
type Burst struct {
	P        float64 // Good -> Bad, per frame
	R        float64 // Bad -> Good, per frame
	LossGood float64 // loss probability in Good (usually 0)
	LossBad  float64 // loss probability in Bad (usually 1)
}

// LossRate is the long-run loss probability of the model.
func (b Burst) LossRate() float64 {
	if b.P+b.R == 0 {
		return b.LossGood
	}
	bad := b.P / (b.P + b.R)
	return bad*b.LossBad + (1-bad)*b.LossGood
}

// Dist names the shape of the jitter.
type Dist uint8

const (
	Uniform Dist = iota
	Normal
)

// Validate reports a setting that makes no sense, naming it.
func (l Link) Validate() error {
	type named struct {
		name string
		p    float64
	}
	probs := []named{{"loss", l.Loss}, {"tail probability", l.TailProb}, {"duplicate", l.Duplicate}, {"reorder", l.Reorder}, {"corrupt", l.Corrupt}}
	if b := l.Burst; b != nil {
		probs = append(probs, named{"burst p", b.P}, named{"burst r", b.R}, named{"burst loss in good", b.LossGood}, named{"burst loss in bad", b.LossBad})
	}
	for _, c := range probs {
		if c.p < 0 || c.p > 1 || c.p != c.p {
			return fmt.Errorf("%s %v is not a probability between 0 and 1", c.name, c.p)
		}
	}
	switch {
	case l.Latency < 0:
		return fmt.Errorf("latency %v is negative", l.Latency)
	case l.Jitter < 0:
		return fmt.Errorf("jitter %v is negative", l.Jitter)
	case l.TailMean < 0:
		return fmt.Errorf("tail mean %v is negative", l.TailMean)
	case l.ReorderDelay < 0:
		return fmt.Errorf("reorder delay %v is negative", l.ReorderDelay)
	case l.Rate < 0:
		return fmt.Errorf("rate %d is negative", l.Rate)
	case l.Queue < 0:
		return fmt.Errorf("queue %d is negative", l.Queue)
	case l.Dist > Normal:
		return fmt.Errorf("unknown jitter distribution %d", l.Dist)
	}
	return nil
}

// path is a Link in use: its configuration and the state its models keep
// (the Gilbert–Elliott state, the rate limiter's queue).
type path struct {
	Link
	bad       bool            // Gilbert–Elliott state
	busyUntil time.Duration   // rate limiter: when the wire is free
	inQueue   []time.Duration // rate limiter: departure times of queued frames
}

func newPath(l Link) *path { return &path{Link: l} }

// verdict is what one path does to one frame.
type verdict struct {
	drop      dropCause
	delay     time.Duration
	duplicate bool
	reordered bool
	corrupt   bool
}

type dropCause uint8

const (
	kept dropCause = iota
	dropLoss
	dropQueue
)

// pass decides a frame of size bytes that reaches the path at now.
func (p *path) pass(r *rand.Rand, now time.Duration, size int) verdict {
	var v verdict
	if p.lost(r) {
		v.drop = dropLoss
		return v
	}
	if p.Rate > 0 {
		queue := p.Queue
		if queue == 0 {
			queue = 64
		}
		for len(p.inQueue) > 0 && p.inQueue[0] <= now {
			p.inQueue = p.inQueue[1:]
		}
		if len(p.inQueue) >= queue {
			v.drop = dropQueue
			return v
		}
		start := max(now, p.busyUntil)
		p.busyUntil = start + time.Duration(float64(size)*float64(time.Second)/float64(p.Rate))
		p.inQueue = append(p.inQueue, p.busyUntil)
		v.delay = p.busyUntil - now
	}
	v.delay += p.latency(r)
	if p.Reorder > 0 && r.Float64() < p.Reorder {
		v.reordered = true
		d := p.ReorderDelay
		if d == 0 {
			d = 10 * time.Millisecond
		}
		v.delay += d
	}
	v.duplicate = p.Duplicate > 0 && r.Float64() < p.Duplicate
	v.corrupt = p.Corrupt > 0 && r.Float64() < p.Corrupt
	return v
}

func (p *path) lost(r *rand.Rand) bool {
	b := p.Burst
	if b == nil {
		return p.Loss > 0 && r.Float64() < p.Loss
	}
	// Move between states, then lose with the state's probability.
	if p.bad {
		if r.Float64() < b.R {
			p.bad = false
		}
	} else if r.Float64() < b.P {
		p.bad = true
	}
	loss := b.LossGood
	if p.bad {
		loss = b.LossBad
	}
	return loss > 0 && r.Float64() < loss
}

func (p *path) latency(r *rand.Rand) time.Duration {
	d := p.Latency
	if p.Jitter > 0 {
		switch p.Dist {
		case Normal:
			d += time.Duration(r.NormFloat64() * float64(p.Jitter))
		default:
			d += time.Duration(r.Int64N(int64(2*p.Jitter)+1)) - p.Jitter
		}
	}
	if p.TailProb > 0 && r.Float64() < p.TailProb {
		d += time.Duration(r.ExpFloat64() * float64(p.TailMean))
	}
	return max(d, 0)
}

// flipBit flips one random bit of frame's IP packet (after the Ethernet
// header, so the frame still reaches its receiver).
func flipBit(r *rand.Rand, frame []byte) []byte {
	const eth = 14
	out := append([]byte(nil), frame...)
	if len(out) > eth {
		i := eth + r.IntN(len(out)-eth)
		out[i] ^= 1 << r.IntN(8)
	}
	return out
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
	Delivered uint64 // frames handed to the host's stack (duplicates included)
	// Frames that did not arrive, by cause: lost on this host's uplink or on
	// the way to it, dropped by a full rate-limit queue, cut by a partition
	// on the way to this host, addressed to it while it was off, larger than
	// an MTU on the way, or sent or addressed while it was not associated.
	// Overflow also counts frames past SleepHeldFrames for a sleeping board
	// whose radio does not wake it (PicoW.NoWakeOnWLAN).
	Lost, Overflow, Partitioned, Down, TooBig, Unassociated uint64
	// Silent counts frames a faulty radio (Fail) kept from leaving it or
	// reaching it, though it reported itself joined.
	Silent uint64
	// Wedged counts the SYN-ACKs a wedged listener never sent.
	Wedged uint64
	// Frames that arrived damaged: duplicated, held back, bit-flipped.
	Duplicated, Reordered, Corrupted uint64
}

// Dropped is the total of frames dropped on this host's account.
func (c Counters) Dropped() uint64 {
	return c.Lost + c.Overflow + c.Partitioned + c.Down + c.TooBig + c.Unassociated + c.Silent + c.Wedged
}
