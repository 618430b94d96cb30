package targets

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim/clock"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/check"
)

// fleet is what the targets on wall-clock time share: boards that report
// their firmware.State (on their console, or to get_state), a timeline in
// wall-clock time since the run began, and the checks over what they
// reported. Board processes and pollers feed it from their goroutines.
type fleet struct {
	kind  string
	start time.Time
	// virtual, if set, is the clock of a fleet in simulated time (emulated
	// RP2040s): Now and RunUntil are its.
	virtual *clock.Virtual
	onEvent func(sim.Event)
	// connected says whether two boards hear each other; nil: all do.
	connected func(a, b string) bool
	// onNet says whether a board's radio is on the network; nil: it is
	// once it reports so. (An emulated board sees its interface at once;
	// the LAN decides when its radio has joined.)
	onNet func(board string) bool

	mu       sync.Mutex
	boards   []*remote // in address order
	byName   map[string]*remote
	timeline sim.Timeline
	changed  chan struct{} // poked whenever something is reported
}

// remote is one board as the harness knows it from its reports.
type remote struct {
	name    string
	powered bool
	state   *firmware.State // the last report of the current boot; nil while down
	bootAt  time.Duration   // run time of the current boot's uptime 0
	inc     uint32          // incarnation of the last report
	pinSeq  uint64          // last pin event seen in that incarnation
	pins    []sim.PinEvent  // every pin change seen
	// apps: the counters of earlier boots, and the last seen of this one.
	pastApps, lastApps map[string]apps.Stats
}

func newFleet(kind string, names []string, onEvent func(sim.Event)) *fleet {
	f := &fleet{kind: kind, start: time.Now(), onEvent: onEvent, byName: map[string]*remote{}, changed: make(chan struct{}, 1)}
	for _, n := range names {
		r := &remote{name: n, pastApps: map[string]apps.Stats{}, lastApps: map[string]apps.Stats{}}
		f.boards = append(f.boards, r)
		f.byName[n] = r
	}
	return f
}

func (f *fleet) Kind() string { return f.kind }
func (f *fleet) Now() time.Duration {
	if f.virtual != nil {
		return f.virtual.Now()
	}
	return time.Since(f.start)
}

func (f *fleet) Timeline() sim.Timeline {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append(sim.Timeline(nil), f.timeline...)
}

// RunUntil waits, looking at the boards whenever one reports and at least
// every PollEvery.
func (f *fleet) RunUntil(deadline time.Duration, done func() bool) bool {
	if f.virtual != nil {
		return f.virtual.RunUntil(deadline, done)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if done != nil && done() {
			return true
		}
		now := f.Now()
		if now >= deadline {
			return false
		}
		wait := deadline - now
		if done != nil {
			wait = min(wait, PollEvery)
		}
		timer.Reset(wait)
		select {
		case <-f.changed:
		case <-timer.C:
		}
	}
}

func (f *fleet) poke() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// record adds an event of the harness's own (a fault it injected) now.
func (f *fleet) record(e sim.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e.At = f.Now()
	f.add(e)
}

// add puts an event on the timeline in time order (boards report a little
// after the fact, each on its own clock); the caller holds f.mu.
func (f *fleet) add(e sim.Event) {
	i := len(f.timeline)
	for i > 0 && f.timeline[i-1].At > e.At {
		i--
	}
	f.timeline = slices.Insert(f.timeline, i, e)
	if f.onEvent != nil {
		f.onEvent(e)
	}
}

// setPowered notes a board's power; one that loses it reports nothing more.
func (f *fleet) setPowered(board string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.byName[board]; r != nil {
		r.powered = on
		if !on {
			r.state = nil
		}
	}
	f.poke()
}

// down forgets a board's state: it stopped reporting (its process died,
// or it no longer answers).
func (f *fleet) down(board string, e sim.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.byName[board]; r != nil {
		r.state = nil
	}
	e.At, e.Board = f.Now(), board
	f.add(e)
	f.poke()
}

// line takes one console line of a board, read at run time at. Events go on
// the timeline at the board's own time; states replace the last one.
func (f *fleet) line(board string, l firmware.Line, at time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.byName[board]
	if r == nil || !r.powered {
		return
	}
	// When the board booted, by our clock: a line is read some time after
	// the board wrote it (pipes, a busy machine), never before, so the
	// earliest estimate is the best. Taken from the boot line alone, a boot
	// line read late put every later event late, after states the board
	// reported after them: a role change seemed to follow the check that
	// had already seen the new role.
	if est := at - time.Duration(l.MS)*time.Millisecond; l.Kind == firmware.EvBoot || est < r.bootAt {
		r.bootAt = est
	}
	if l.State != nil {
		f.observe(r, l.State, at, false)
		return
	}
	if l.Kind == "" {
		return
	}
	e := l.Event
	e.At, e.Board = r.bootAt+time.Duration(l.MS)*time.Millisecond, board
	f.add(e)
	f.poke()
}

// report takes a state polled over the network (get_state) at run time at;
// with no console to read, the timeline's events are told from the
// difference with the last state.
func (f *fleet) report(board string, s *firmware.State, at time.Duration) { f.take(board, s, at, true) }

// take takes a board's state read at run time at, if it has power; tell:
// put what changed on the timeline, for a board whose console is not read.
func (f *fleet) take(board string, s *firmware.State, at time.Duration, tell bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.byName[board]; r != nil && r.powered {
		f.observe(r, s, at, tell)
	}
}

// observe takes a board's new state; the caller holds f.mu.
func (f *fleet) observe(r *remote, s *firmware.State, at time.Duration, tell bool) {
	if r.state != nil && s.Incarnation == r.inc && s.UptimeMS < r.state.UptimeMS {
		return // an older report that arrived late: the console and get_state race
	}
	prev := r.state
	if s.Incarnation != r.inc {
		for name, st := range r.lastApps {
			r.pastApps[name] = r.pastApps[name].Add(st)
		}
		r.lastApps = map[string]apps.Stats{}
		r.inc, r.pinSeq = s.Incarnation, 0
		r.bootAt = at - time.Duration(s.UptimeMS)*time.Millisecond
		if tell {
			f.add(sim.Event{At: r.bootAt, Board: r.name, Kind: firmware.EvBoot, Detail: fmt.Sprintf("incarnation %d, version %s", s.Incarnation, s.Version)})
		}
		prev = nil
	}
	for _, pe := range s.PinEvents {
		if pe.Seq <= r.pinSeq {
			continue
		}
		r.pinSeq = pe.Seq
		e := sim.PinEvent{At: r.bootAt + time.Duration(pe.MS)*time.Millisecond, Pin: pe.Pin, Value: pe.Value, Cause: pe.Cause}
		r.pins = append(r.pins, e)
		if tell {
			f.add(sim.Event{At: e.At, Board: r.name, Kind: firmware.EvPin, Reason: pe.Cause, Detail: fmt.Sprintf("GPIO%d = %d (%s)", pe.Pin, pe.Value, pe.Cause)})
		}
	}
	for _, a := range s.Apps {
		r.lastApps[a.App] = apps.Stats{Attempts: a.Attempts, Successes: a.Successes, Sent: a.Sent, Received: a.Received, Errors: a.Errors, Crashed: a.Crashed}
	}
	if tell {
		f.tellDifference(r.name, prev, s, at)
	}
	r.state = s
	f.poke()
}

// tellDifference puts on the timeline what changed between two states of a
// board; the caller holds f.mu.
func (f *fleet) tellDifference(board string, prev, s *firmware.State, at time.Duration) {
	if prev == nil {
		prev = &firmware.State{Role: node.Joining.String(), LED: control.Connecting.String()}
	}
	ips := func(st *firmware.State) map[string]firmware.MemberState {
		m := map[string]firmware.MemberState{}
		for _, x := range st.Members {
			if x.Name != board {
				m[x.IP+"#"+fmt.Sprint(x.Incarnation)] = x
			}
		}
		return m
	}
	before, after := ips(prev), ips(s)
	for k, m := range after {
		if _, ok := before[k]; !ok {
			f.add(sim.Event{At: at, Board: board, Kind: firmware.EvJoined, Member: m.Name, IP: m.IP})
		}
	}
	for k, m := range before {
		if _, ok := after[k]; !ok {
			f.add(sim.Event{At: at, Board: board, Kind: firmware.EvLeft, Member: m.Name, IP: m.IP, Reason: "gone"})
		}
	}
	if s.Master != prev.Master {
		f.add(sim.Event{At: at, Board: board, Kind: firmware.EvMaster, Member: s.Master})
	}
	if s.Role != prev.Role {
		f.add(sim.Event{At: at, Board: board, Kind: firmware.EvRole, Role: s.Role, Old: prev.Role})
	}
	if s.LED != prev.LED && s.LED != "" { // a state that does not say, says nothing
		f.add(sim.Event{At: at, Board: board, Kind: firmware.EvLED, Detail: s.LED})
	}
}

// conn wraps a control connection to a board so that after each command
// the board's state is read back on the same connection and reported:
// the board answers in order, so that state includes what the command did,
// and no check judges by a report older than the harness's own last action.
func (f *fleet) conn(board string, c Conn, tell bool) Conn {
	return &watchedConn{Conn: c, f: f, board: board, tell: tell}
}

type watchedConn struct {
	Conn
	f     *fleet
	board string
	tell  bool
}

func (w *watchedConn) Do(line string) (Reply, error) {
	r, err := w.Conn.Do(line)
	if err != nil {
		return r, err
	}
	if s, serr := askState(w.Conn); serr == nil {
		w.f.take(w.board, s, w.f.Now(), w.tell)
	}
	return r, nil
}

// The Observer, over the last reports.

func (f *fleet) Boards() []string {
	names := make([]string, len(f.boards))
	for i, r := range f.boards {
		names[i] = r.name
	}
	return names
}

func (f *fleet) get(board string) (*remote, error) {
	if r := f.byName[board]; r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("no board %q", board)
}

func (f *fleet) Powered(board string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.byName[board]
	return r != nil && r.powered
}

func (f *fleet) Up(board string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.byName[board]
	return r != nil && f.up(r)
}

// up: on the network with discovery running; the caller holds f.mu.
func (f *fleet) up(r *remote) bool {
	return r.powered && r.state != nil && r.state.Joined && (f.onNet == nil || f.onNet(r.name))
}

func (f *fleet) View(board string) firmware.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.byName[board]; r != nil && f.up(r) {
		return *r.state
	}
	return firmware.State{Name: board}
}

// components groups what the boards that are up report by who hears whom,
// each group in address order; the caller holds f.mu.
func (f *fleet) components() [][]firmware.State {
	comps := check.Group(f.boards, f.up, func(a, b *remote) bool { return f.connected == nil || f.connected(a.name, b.name) })
	out := make([][]firmware.State, len(comps))
	for i, comp := range comps {
		for _, r := range comp {
			out[i] = append(out[i], *r.state)
		}
	}
	return out
}

func (f *fleet) Agreement() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return check.Agreement(f.components())
}

func (f *fleet) Safety() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return check.Safety(f.components())
}

func (f *fleet) AgreedMaster() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return check.AgreedMaster(f.components())
}

func (f *fleet) Stability(since time.Duration) error { return check.Stability(f.Timeline(), since) }

func (f *fleet) Pin(board string, pin int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.get(board)
	if err != nil || r.state == nil {
		return 0, err // a board without power holds every pin low
	}
	for _, p := range r.state.Pins {
		if p.Pin == pin {
			return p.Value, nil
		}
	}
	return 0, nil
}

func (f *fleet) PinEvents(board string, pin int) ([]sim.PinEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.get(board)
	if err != nil {
		return nil, err
	}
	var out []sim.PinEvent
	for _, e := range r.pins {
		if e.Pin == pin {
			out = append(out, e)
		}
	}
	return out, nil
}

// nodeCounter is a counter of a board's discovery core, as last reported.
func (f *fleet) nodeCounter(board, name string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.get(board)
	if err != nil {
		return 0, err
	}
	if !slices.Contains(firmware.StatNames, name) {
		return 0, fmt.Errorf("no counter %q", name)
	}
	if r.state == nil {
		return 0, nil // a board that is down counts nothing
	}
	return r.state.Stats[name], nil
}

func (f *fleet) AppStats(name string, boards ...string) (apps.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sum apps.Stats
	for _, r := range f.boards {
		if len(boards) == 0 || slices.Contains(boards, r.name) {
			sum = sum.Add(r.pastApps[name]).Add(r.lastApps[name])
		}
	}
	for _, b := range boards {
		if f.byName[b] == nil {
			return sum, fmt.Errorf("no board %q", b)
		}
	}
	return sum, nil
}
