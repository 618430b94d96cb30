// Package clock provides the simulated time that every part of a picosim run
// shares: the LAN's links, every gVisor stack (through netsim's adapter to
// tcpip.Clock) and every board's core.
//
// Virtual is a discrete-event scheduler. Time stands still while callbacks
// run and jumps to the next timer when they are done, so a run takes as long
// as its work, not as long as its simulated duration. Timers due at the same
// instant fire in the order they were set, so a single-threaded run is
// replayable event for event.
package clock

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the time source handed to every component of a simulation.
type Clock interface {
	// Now is the time since the simulation began.
	Now() time.Duration
	// AfterFunc calls f once d has elapsed on this clock.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call of AfterFunc. It mirrors tcpip.Timer.
type Timer interface {
	// Stop cancels the call and reports whether it was still pending.
	Stop() bool
	// Reset reschedules the call for d from now, pending or not.
	Reset(d time.Duration)
}

// Virtual is simulated time driven by an event loop. It is safe for
// concurrent use: gVisor sets timers from its own goroutines. Callbacks run on
// the goroutine that called Run, RunUntil or Serve, never under a lock.
type Virtual struct {
	mu  sync.Mutex
	now time.Duration
	// Timers wait in one of three places. q is a heap by (time, order).
	// now holds the timers set with no delay, in the order they were set:
	// they fire after every timer of q due at the current instant (those
	// were all set earlier) and before time moves on, which is their place
	// in the (time, order) order without a heap's log n, the cost of most
	// of a large run's events (a board reads its socket, a stack wakes a
	// socket). parked counts the timers set to Never, which wait outside
	// both: every socket holds one.
	q       queue
	nowQ    []nowEntry
	nowAt   int // nowQ[nowAt:] is still to fire
	nowLive int // entries of nowQ[nowAt:] whose timer still waits there
	parked  int
	seq     uint64
	fired   uint64
	// activity counts scheduling calls, so that Serve can tell when other
	// goroutines have gone quiet.
	activity atomic.Uint64
	wake     chan struct{}
	free     []*timer // timers of Post, recycled: no one holds them
	settle   func()   // run after every event, see SetSettle
}

// SetSettle installs f to run on the loop goroutine after every event, before
// time may move on. netsim uses it to wait for work that a delivery started
// on gVisor's own goroutines (TCP segment processing).
func (v *Virtual) SetSettle(f func()) {
	v.mu.Lock()
	v.settle = f
	v.mu.Unlock()
}

// Never is a delay that does not come: a timer set to it waits there until
// Reset arms it, so that it can be made once and armed many times.
const Never = time.Duration(1 << 62)

// Event is work scheduled with Post.
type Event interface{ Fire() }

// Func makes a function an Event: clock.Post(0, clock.Func(f)).
type Func func()

// Fire calls f.
func (f Func) Fire() { f() }

var _ Clock = (*Virtual)(nil)

// NewVirtual returns a clock at time zero with nothing scheduled.
func NewVirtual() *Virtual { return &Virtual{wake: make(chan struct{}, 1)} }

// Now returns the current simulated time.
func (v *Virtual) Now() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// Fired returns how many timers have fired so far.
func (v *Virtual) Fired() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fired
}

// Pending returns how many timers are waiting.
func (v *Virtual) Pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.q) + v.nowLive + v.parked
}

// AfterFunc schedules f at Now()+d. A negative d counts as zero.
func (v *Virtual) AfterFunc(d time.Duration, f func()) Timer {
	t := &timer{v: v, f: f, index: -1}
	t.Reset(d)
	return t
}

// Post schedules e.Fire at Now()+d, like AfterFunc but without a handle to
// stop it, and without allocating: the LAN posts one event per frame and
// receiver, millions per run.
func (v *Virtual) Post(d time.Duration, e Event) {
	v.mu.Lock()
	var t *timer
	if n := len(v.free); n > 0 {
		t, v.free = v.free[n-1], v.free[:n-1]
	} else {
		t = &timer{v: v, index: -1}
	}
	t.ev, t.pooled = e, true
	v.pushLocked(t, d)
	v.mu.Unlock()
	v.poke()
}

// pushLocked queues t at Now()+d, after every timer already due then.
func (v *Virtual) pushLocked(t *timer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	t.at = v.now + d
	v.seq++
	t.seq = v.seq
	switch {
	case d == 0:
		t.where = inNow
		v.nowQ = append(v.nowQ, nowEntry{t, t.seq})
		v.nowLive++
	case d >= Never:
		t.where = isParked
		v.parked++
	default:
		t.where = inHeap
		heap.Push(&v.q, t)
	}
}

// removeLocked takes t out of wherever it waits and reports whether it
// was waiting.
func (v *Virtual) removeLocked(t *timer) bool {
	switch t.where {
	case inHeap:
		heap.Remove(&v.q, t.index)
	case inNow:
		// Left in nowQ, where nextLocked skips it: it is no longer
		// inNow, or it is again, set later (its seq tells).
		v.nowLive--
	case isParked:
		v.parked--
	default:
		return false
	}
	t.where = idle
	return true
}

// nextLocked takes the timer that fires next, if one is due by until: a
// timer of q due now or earlier, then the zero-delay ones, then the first
// of q.
func (v *Virtual) nextLocked(until time.Duration) *timer {
	if len(v.q) > 0 && v.q[0].at <= v.now {
		return v.popHeapLocked()
	}
	for v.nowLive > 0 {
		e := v.nowQ[v.nowAt]
		v.nowQ[v.nowAt] = nowEntry{}
		v.nowAt++
		if e.t.where == inNow && e.t.seq == e.seq {
			v.nowLive--
			e.t.where = idle
			v.compactNowLocked()
			return e.t
		}
	}
	v.compactNowLocked()
	if len(v.q) > 0 && v.q[0].at <= until {
		return v.popHeapLocked()
	}
	return nil
}

func (v *Virtual) popHeapLocked() *timer {
	t := heap.Pop(&v.q).(*timer)
	t.where = idle
	return t
}

// compactNowLocked empties nowQ once nothing waits in it, so that it does
// not grow.
func (v *Virtual) compactNowLocked() {
	if v.nowLive == 0 {
		clear(v.nowQ[v.nowAt:])
		v.nowQ, v.nowAt = v.nowQ[:0], 0
	}
}

// dueLocked reports whether a timer is due at or before at.
func (v *Virtual) dueLocked(at time.Duration) bool {
	return v.nowLive > 0 || len(v.q) > 0 && v.q[0].at <= at
}

// nowEntry is a timer set with no delay, and its seq then: the timer may
// have been stopped or set again since.
type nowEntry struct {
	t   *timer
	seq uint64
}

// Where a timer waits.
const (
	idle = iota
	inHeap
	inNow
	isParked
)

// poke tells Serve that a timer was set.
func (v *Virtual) poke() {
	v.activity.Add(1)
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// At schedules f at the absolute simulated time at (or now, if at is past).
func (v *Virtual) At(at time.Duration, f func()) Timer {
	return v.AfterFunc(at-v.Now(), f)
}

// Step fires the earliest timer, moving time forward to it, and reports
// whether there was one.
func (v *Virtual) Step() bool {
	v.mu.Lock()
	t := v.nextLocked(Never - 1)
	if t == nil {
		v.mu.Unlock()
		return false
	}
	v.fireLocked(t)
	return true
}

// Run fires every timer due up to and including until, then leaves the clock
// at until.
func (v *Virtual) Run(until time.Duration) { v.RunUntil(until, nil) }

// RunUntil is Run that stops early, right after the timer that makes done
// return true; it reports whether it stopped early. done is checked once
// before anything fires.
func (v *Virtual) RunUntil(until time.Duration, done func() bool) bool {
	if done != nil && done() {
		return true
	}
	for {
		v.mu.Lock()
		t := v.nextLocked(until)
		if t == nil {
			if v.now < until {
				v.now = until
			}
			v.mu.Unlock()
			return false
		}
		v.fireLocked(t)
		if done != nil && done() {
			return true
		}
	}
}

// fireLocked calls t, taken by nextLocked, with the lock released.
func (v *Virtual) fireLocked(t *timer) {
	if t.at > v.now {
		v.now = t.at
	}
	v.fired++
	settle := v.settle
	if t.pooled {
		e := t.ev
		t.ev = nil
		v.free = append(v.free, t)
		v.mu.Unlock()
		e.Fire()
	} else {
		f := t.f
		v.mu.Unlock()
		f()
	}
	if settle != nil {
		settle()
	}
}

// Serve runs the clock until ctx ends, for simulations where other
// goroutines take part (gVisor's TCP processors, a test dialling a
// connection). Timers due now fire at once; time moves to the next timer only
// after no timer has been set for quiet of wall time, so that work in flight
// on other goroutines is not overtaken by simulated time. Such runs are fast
// but not replayable event for event.
func (v *Virtual) Serve(ctx context.Context, quiet time.Duration) {
	for ctx.Err() == nil {
		v.mu.Lock()
		if v.dueLocked(v.now) {
			v.fireLocked(v.nextLocked(v.now))
			continue
		}
		empty := len(v.q) == 0
		v.mu.Unlock()
		if empty {
			select {
			case <-v.wake:
			case <-ctx.Done():
			}
			continue
		}
		before := v.activity.Load()
		select {
		case <-time.After(quiet):
		case <-ctx.Done():
			return
		}
		if v.activity.Load() != before {
			continue // someone is still busy: let them finish first
		}
		v.mu.Lock()
		if t := v.nextLocked(Never - 1); t != nil {
			v.fireLocked(t)
		} else {
			v.mu.Unlock()
		}
	}
}

// RunPaced runs the clock in step with the wall clock, speed simulated
// seconds per wall second, until ctx ends: the mode for simulations that
// programs outside talk to (picosim up). Other goroutines hand work to the
// loop with Post or AfterFunc; between events, Now follows the wall clock.
func (v *Virtual) RunPaced(ctx context.Context, speed float64) {
	if speed <= 0 {
		speed = 1
	}
	startWall, startSim := time.Now(), v.Now()
	wallNow := func() time.Duration {
		return startSim + time.Duration(float64(time.Since(startWall))*speed)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		v.mu.Lock()
		target := wallNow()
		if v.dueLocked(target) {
			v.fireLocked(v.nextLocked(target))
			continue
		}
		if v.now < target {
			v.now = target // time passes even when nothing happens
		}
		wait := time.Hour
		if len(v.q) > 0 {
			wait = time.Duration(float64(v.q[0].at-target) / speed)
		}
		v.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-v.wake:
			if !timer.Stop() {
				<-timer.C
			}
		case <-ctx.Done():
			return
		}
	}
}

type timer struct {
	v      *Virtual
	at     time.Duration
	seq    uint64
	f      func()
	ev     Event // instead of f, for Post
	pooled bool  // from Post: back to the free list once fired
	index  int   // in q, while where is inHeap
	where  uint8 // idle, inHeap, inNow or isParked
}

func (t *timer) Stop() bool {
	v := t.v
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.removeLocked(t)
}

func (t *timer) Reset(d time.Duration) {
	v := t.v
	v.mu.Lock()
	v.removeLocked(t)
	v.pushLocked(t, d)
	v.mu.Unlock()
	v.poke()
}

// queue is a min-heap of timers by (at, seq).
type queue []*timer

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *queue) Push(x any) {
	t := x.(*timer)
	t.index = len(*q)
	*q = append(*q, t)
}
func (q *queue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*q = old[:len(old)-1]
	return t
}
