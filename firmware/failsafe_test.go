package firmware_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/node/control"
)

// TestFailSafeProperty drives one board through random schedules of writes
// (with and without effect, valid and invalid timeouts), rewrites, setups,
// reads, light and deep sleeps, resets, controllers coming and going, and
// the radio losing the network (so the master), with RevertOnLoss on or off,
// and checks the fail-safe after every event and at every due time, against
// an oracle that knows only the promise (node/control's doc):
//
//	when the last unexpired timed write on a pin ends (its timeout, or with
//	RevertOnLoss a lost master or controller), the pin returns to the value
//	it had before the first of those writes, exactly once, at that instant,
//	asleep or not; nothing else moves a pin.
//
// The check is on the board's pins as the hardware sees them (Board.SetPin),
// not on the server's own account. PICOSIM_FAILSAFE_SEEDS sets the seed
// count (default 1,000; 200 with -short).
func TestFailSafeProperty(t *testing.T) {
	seeds := 1000
	if testing.Short() {
		seeds = 200
	}
	if v := os.Getenv("PICOSIM_FAILSAFE_SEEDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PICOSIM_FAILSAFE_SEEDS=%q: want a count of seeds", v)
		}
		seeds = n
	}
	events := 0
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		events += failSafeRun(t, seed, 300)
		if t.Failed() {
			t.Fatalf("seed %d failed; rerun with -run 'TestFailSafeProperty' PICOSIM_FAILSAFE_SEEDS=%d to see it again", seed, seed)
		}
	}
	t.Logf("%d seeds, %d events, the fail-safe held after each", seeds, events)
}

// heldPin is the oracle's view of one GPIO.
type heldPin struct {
	mode  control.Mode
	value int // what the hardware must show
	setup int
	held  bool
	end   time.Duration
	base  int // the value before the hold's first write
	by    control.ConnID
}

// fsRun is one schedule: the board, the oracle and the log of what happened
// (printed on failure, so that a seed explains itself).
type fsRun struct {
	t        *testing.T
	rng      *rand.Rand
	l        *lan
	f        *fake
	revert   bool // RevertOnLoss
	pins     map[int]*heldPin
	conns    map[control.ConnID]time.Duration // open connection: last command
	nextConn control.ConnID
	offUntil time.Duration // powered off (deep sleep) until then
	online   bool
	actions  []fsAction // reset and deep sleep, a second after the reply
	hw       map[int]int
	seen     int // f.sets checked so far
	log      []string
}

// fsAction is a board action a command asked for, due a second after it:
// a light sleep (nothing for the oracle to do), a deep sleep or a reset.
type fsAction struct {
	at      time.Duration
	restart bool
}

var fsPins = []int{2, 3, 4}

func failSafeRun(t *testing.T, seed uint64, steps int) int {
	r := &fsRun{t: t, rng: rand.New(rand.NewPCG(seed, 13)), pins: map[int]*heldPin{}, conns: map[control.ConnID]time.Duration{},
		hw: map[int]int{}, online: true}
	r.revert = r.rng.IntN(2) == 0
	flash := firmware.MemFlash{firmware.FileSettings: firmware.Settings{RevertOnLoss: r.revert}.JSON()}
	r.l = &lan{t: t}
	r.f = r.l.add(2, flash)
	for _, n := range fsPins {
		r.pins[n] = &heldPin{}
	}
	r.logf("seed %d, RevertOnLoss %v", seed, r.revert)
	for i := 0; i < steps && !t.Failed(); i++ {
		r.step()
	}
	if t.Failed() {
		t.Log("schedule:\n\t" + strings.Join(r.log, "\n\t"))
	}
	return steps
}

func (r *fsRun) logf(format string, args ...any) {
	r.log = append(r.log, fmt.Sprintf("%9.3fs ", r.l.now.Seconds())+fmt.Sprintf(format, args...))
}

func (r *fsRun) failf(format string, args ...any) {
	r.t.Helper()
	r.logf("FAIL: "+format, args...)
	r.t.Errorf(format, args...)
}

// step takes one random event.
func (r *fsRun) step() {
	if r.l.now < r.offUntil || r.f.p == nil {
		r.advance(r.offUntil - r.l.now)
		return
	}
	// A controller keeps talking, so that the idle timeout (a minute) never
	// closes a connection: that path is the control package's to test.
	for _, c := range r.ids() {
		if r.l.now-r.conns[c] > 30*time.Second {
			r.command(c, `{"action": "ping"}`)
		}
	}
	switch k := r.rng.IntN(100); {
	case k < 30:
		r.write()
	case k < 38:
		r.setupPin()
	case k < 45:
		pin := fsPins[r.rng.IntN(len(fsPins))]
		rep := r.command(r.conn(), fmt.Sprintf(`{"action": "read_pin", "pin": %d}`, pin))
		if p := r.pins[pin]; p.mode == control.Output && rep["value"] != float64(p.value) {
			r.failf("read_pin %d gave %v, the pin is at %d", pin, rep["value"], p.value)
		}
	case k < 52:
		r.open()
	case k < 58:
		if len(r.conns) > 0 {
			r.close(r.anyConn())
		}
	// One board action at a time, as a controller waits for the one it
	// asked: a reset asked before a light sleep begins would wait for it
	// to end, which is the control package's business, not the fail-safe's.
	case k < 62 && len(r.actions) == 0:
		r.command(r.conn(), fmt.Sprintf(`{"action": "sleep", "time_ms": %d, "deep": 0}`, r.rng.IntN(30000)))
		r.actions = append(r.actions, fsAction{at: r.l.now + control.ActionDelay})
	case k < 63 && len(r.actions) == 0:
		r.command(r.conn(), fmt.Sprintf(`{"action": "sleep", "time_ms": %d, "deep": 1}`, r.rng.IntN(10000)))
		r.actions = append(r.actions, fsAction{at: r.l.now + control.ActionDelay, restart: true})
	case k < 64 && len(r.actions) == 0:
		r.command(r.conn(), `{"action": "reset"}`)
		r.actions = append(r.actions, fsAction{at: r.l.now + control.ActionDelay, restart: true})
	case k < 67:
		r.radio()
	default:
		r.advance(time.Duration(r.rng.Int64N(int64(8 * time.Second))))
	}
	r.check("after the event")
}

var fsTimeouts = []string{"0", "0.001", "0.25", "1", "2.5", "7", "20", `"3"`, "536870.912", "536871", "1e10", "-1", `"soon"`}

func (r *fsRun) write() {
	pin, value := fsPins[r.rng.IntN(len(fsPins))], r.rng.IntN(2)
	ts := fsTimeouts[r.rng.IntN(len(fsTimeouts))]
	c := r.conn()
	rep := r.command(c, fmt.Sprintf(`{"action": "write_pin", "pin": %d, "value": %d, "timeout": %s}`, pin, value, ts))
	timeout, err := strconv.ParseFloat(strings.Trim(ts, `"`), 64)
	p := r.pins[pin]
	valid := err == nil && timeout >= 0 && timeout <= control.MaxTimeout.Seconds() && p.mode == control.Output
	if accepted := rep["error"] == nil; accepted != valid {
		r.failf("write_pin %d=%d timeout %s: accepted %v, want %v (%v)", pin, value, ts, accepted, valid, rep["error"])
		return
	}
	if !valid || p.value == value {
		return
	}
	if !p.held {
		p.base = p.value
	}
	p.value, p.held, p.end, p.by = value, true, r.l.now+time.Duration(timeout*1e9+0.5), c
}

func (r *fsRun) setupPin() {
	pin := fsPins[r.rng.IntN(len(fsPins))]
	p := r.pins[pin]
	if r.rng.IntN(4) == 0 {
		r.command(r.conn(), fmt.Sprintf(`{"action": "setup_pin", "pin": %d, "mode": "input"}`, pin))
		*p = heldPin{mode: control.Input, value: p.value, setup: p.value}
		return
	}
	v := r.rng.IntN(2)
	r.command(r.conn(), fmt.Sprintf(`{"action": "setup_pin", "pin": %d, "mode": "output", "value": %d}`, pin, v))
	*p = heldPin{mode: control.Output, value: v, setup: v}
}

func (r *fsRun) open() {
	if len(r.conns) >= 3 {
		return
	}
	r.nextConn++
	r.conns[r.nextConn] = r.l.now
	r.f.p.Opened(r.l.now, r.nextConn, control.Port)
	r.logf("open %d", r.nextConn)
}

// conn is an open connection, opening one if there is none.
func (r *fsRun) conn() control.ConnID {
	if len(r.conns) == 0 || r.rng.IntN(5) == 0 {
		r.open()
	}
	return r.anyConn()
}

func (r *fsRun) anyConn() control.ConnID {
	ids := r.ids()
	return ids[r.rng.IntN(len(ids))]
}

// ids lists the open connections in order: the same seed, the same schedule.
func (r *fsRun) ids() []control.ConnID {
	ids := make([]control.ConnID, 0, len(r.conns))
	for c := range r.conns {
		ids = append(ids, c)
	}
	slices.Sort(ids)
	return ids
}

func (r *fsRun) close(c control.ConnID) {
	delete(r.conns, c)
	r.f.p.Closed(r.l.now, c)
	r.logf("controller %d goes away", c)
	if r.revert {
		for _, n := range fsPins {
			if p := r.pins[n]; p.held && p.by == c {
				r.end(n)
			}
		}
	}
}

// radio loses or regains the network; the board loses its master with it.
func (r *fsRun) radio() {
	if r.online {
		r.online = false
		r.f.p.Lost(r.l.now)
		r.logf("radio lost")
		if r.revert {
			for _, n := range fsPins {
				if r.pins[n].held {
					r.end(n)
				}
			}
		}
		return
	}
	r.online = true
	if err := r.f.p.Joined(r.l.now, r.f.ip, bcast); err != nil {
		r.t.Fatal(err)
	}
	r.logf("radio back")
}

// end is a hold ending: the pin returns to its value from before the hold.
func (r *fsRun) end(n int) {
	p := r.pins[n]
	p.held, p.value = false, p.base
}

// command sends one command and returns its reply, which must come at once,
// whether the board sleeps or not (a command wakes it).
func (r *fsRun) command(c control.ConnID, cmd string) map[string]any {
	r.t.Helper()
	r.conns[c] = r.l.now
	rep := r.f.do(c, cmd)
	r.logf("%d> %s -> %v", c, cmd, rep["error"])
	if r.f.p.State(r.l.now).Asleep {
		r.failf("a command did not wake the board")
	}
	return rep
}

// advance lets time pass, stopping at every instant where the oracle
// expects something (a hold's end, a reset) to check just before and at it.
func (r *fsRun) advance(d time.Duration) {
	to := r.l.now + d
	for !r.t.Failed() {
		next := to
		for _, n := range fsPins {
			if p := r.pins[n]; p.held && p.end < next {
				next = max(p.end, r.l.now)
			}
		}
		for _, a := range r.actions {
			next = min(next, max(a.at, r.l.now))
		}
		r.runBoard(next)
		for _, n := range fsPins {
			if p := r.pins[n]; p.held && p.end <= r.l.now {
				r.end(n)
			}
		}
		for len(r.actions) > 0 && r.actions[0].at <= r.l.now {
			if r.actions[0].restart { // outputs at their setup values, then a boot
				for _, n := range fsPins {
					p := r.pins[n]
					if p.mode == control.Output {
						p.value = p.setup
					}
					*p = heldPin{value: p.value}
				}
				r.conns = map[control.ConnID]time.Duration{}
			}
			r.actions = r.actions[1:]
		}
		r.check(fmt.Sprintf("at %.3fs", r.l.now.Seconds()))
		if r.l.now >= to {
			return
		}
	}
}

// runBoard ticks the board at its deadlines up to to, rebooting it as an
// adapter does after a reset or a deep sleep.
func (r *fsRun) runBoard(to time.Duration) {
	for i := 0; ; i++ {
		if i > 100000 {
			r.t.Fatalf("the board's deadline does not advance (%v)", r.l.now)
		}
		r.l.queue = r.l.queue[:0] // alone on its network: its heartbeats reach nobody
		if r.f.p == nil {
			if r.offUntil > to {
				break
			}
			r.l.now = max(r.l.now, r.offUntil)
			r.f.boot()
			r.online = true
			r.logf("boot")
			continue
		}
		d := r.f.p.Deadline()
		if d > to {
			break
		}
		r.l.now = max(r.l.now, d)
		r.f.p.Tick(r.l.now)
		if h, ok := r.f.p.Halted(); ok {
			r.f.p = nil
			r.offUntil = r.l.now
			if h.Kind == control.ActDeepSleep {
				r.offUntil += h.For
			}
			r.logf("halt (%d), off for %v", h.Kind, h.For)
		}
	}
	r.l.now = to
}

// check compares the pins the hardware saw with the oracle's, and each
// change since the last check with the one the oracle expects: at most one
// per pin, to the oracle's value.
func (r *fsRun) check(when string) {
	r.t.Helper()
	changes := map[int]int{}
	for _, s := range r.f.sets[r.seen:] {
		if s.pin >= 0 && r.hw[s.pin] != s.value {
			changes[s.pin]++
			r.hw[s.pin] = s.value
		}
	}
	r.seen = len(r.f.sets)
	for _, n := range fsPins {
		p := r.pins[n]
		if p.mode == control.Input {
			p.value = r.hw[n] // an input's level is the outside world's
			continue
		}
		if r.hw[n] != p.value {
			r.failf("%s: GPIO%d is %d, want %d (held %v until %.3fs, returning to %d)", when, n, r.hw[n], p.value, p.held, p.end.Seconds(), p.base)
		}
		if changes[n] > 1 {
			r.failf("%s: GPIO%d changed %d times at one instant", when, n, changes[n])
		}
	}
}
