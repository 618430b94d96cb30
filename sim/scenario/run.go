package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/targets"
)

// Options change how a scenario runs.
type Options struct {
	// Seed, if set, replaces the scenario's seed.
	Seed *uint64
	// Capture, if set, receives a pcapng capture of the run.
	Capture io.Writer
	// OnEvent, if set, sees every timeline event.
	OnEvent func(sim.Event)
	// Target is the kind of target, "sim" (the default), "emulated" or
	// "hw"; Open opens one for the scenario's cluster (default: the
	// simulator).
	Target string
	Open   func(targets.Spec) (targets.Target, error)
	// Inventory is the lab's inventory file on the hw target, for the
	// replay line.
	Inventory string
}

// Result is how a run went.
type Result struct {
	Scenario string   `json:"scenario"`
	File     string   `json:"file"`
	Target   string   `json:"target"`
	Passed   bool     `json:"passed"`
	Seed     uint64   `json:"seed"`
	SimS     float64  `json:"sim_s"` // the run's time: simulated on sim, wall-clock on the others
	WallS    float64  `json:"wall_s"`
	Failures []string `json:"failures"`
	// Skipped, when set, says why the scenario did not run on this target.
	Skipped string `json:"skipped,omitempty"`
	// NotJudged, when set, says why the run stopped without a verdict: an
	// expectation failed with a fault of a board's radio inside its window,
	// named here (see the README's verdict rules). Passed is true then.
	NotJudged string `json:"not_judged,omitempty"`
	// SkippedSteps are steps the target could not carry out, with why.
	SkippedSteps []string `json:"skipped_steps,omitempty"`
	// Replay is the command that runs the scenario again, same seed.
	Replay string `json:"replay"`
	// FailedAt is the time of the failure, in seconds.
	FailedAt *float64 `json:"failed_at_s,omitempty"`
	// Steps is what each step did and how it went, in order: the report
	// draws them on the timeline.
	Steps    []StepRecord `json:"steps,omitempty"`
	Timeline sim.Timeline `json:"-"`
}

// StepRecord is one step of a run: when it began and ended, what it did,
// and its verdict: ok, failed, skipped (the target cannot do it) or not
// judged (a radio fault in its window). Steps after a failure have none.
type StepRecord struct {
	N       int     `json:"n"` // 1 for the first
	At      float64 `json:"at_s"`
	End     float64 `json:"end_s"`
	What    string  `json:"what"`
	Expect  bool    `json:"expect,omitempty"` // an expectation, not an action
	Verdict string  `json:"verdict"`
}

// Run plays the scenario and returns its verdict. It stops at the first
// expectation that fails.
func Run(s *Scenario, opt Options) Result {
	wall := time.Now()
	seed := s.Seed
	if opt.Seed != nil {
		seed = *opt.Seed
	}
	kind := opt.Target
	if kind == "" {
		kind = "sim"
	}
	res := Result{Scenario: s.Name, File: s.File, Target: kind, Seed: seed, Failures: []string{},
		Replay: replay(kind, opt.Inventory, seed, s.File)}
	if why := s.Unsupported(kind); why != "" {
		res.Skipped, res.Passed = why, true
		return res
	}
	r := &runner{s: s, seed: seed, kind: kind, inventory: opt.Inventory}
	err := r.run(opt)
	if u, ok := targets.IsUnsupported(err); ok && r.t == nil {
		res.Skipped, res.Passed = u.Error(), true // the target cannot build this cluster
		res.WallS = time.Since(wall).Seconds()
		return res
	}
	if r.t != nil {
		res.SimS = r.t.Now().Seconds()
		res.Timeline = r.t.Timeline()
		if cerr := r.t.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the %s target: %w", kind, cerr)
		}
	}
	var nj *notJudged
	if errors.As(err, &nj) {
		res.NotJudged, err = nj.Error(), nil
	}
	if err != nil {
		res.Failures = append(res.Failures, err.Error())
		if r.t != nil {
			at := res.SimS
			res.FailedAt = &at
		}
	}
	res.SkippedSteps = r.skipped
	res.Steps = r.records
	res.Passed = err == nil
	res.WallS = time.Since(wall).Seconds()
	return res
}

// replay is the command that runs a scenario again with the same seed, as
// it can be pasted (the emulated target as root): the hw target with its
// lab's inventory.
func replay(kind, inventory string, seed uint64, file string) string {
	switch {
	case kind == "sim":
		return fmt.Sprintf("picosim run --seed %d %s", seed, file)
	case kind == "hw":
		if inventory == "" {
			inventory = "LAB.yaml"
		}
		return fmt.Sprintf("picosim run --target hw --inventory %s --seed %d %s", inventory, seed, file)
	}
	return fmt.Sprintf("picosim run --target %s --seed %d %s", kind, seed, file)
}

type runner struct {
	s         *Scenario
	seed      uint64
	kind      string
	inventory string // hw: the lab's inventory file, for replay lines
	t         targets.Target
	conns     map[string]*ctlConn // by controller name
	skipped   []string            // steps the target could not carry out
	bound     time.Duration
	stepsAt   map[time.Duration]bool   // when steps acted: what happens then is scripted
	appsFrom  map[string]time.Duration // when each app was first started
	since     time.Duration            // when the current expectation began
	began     []time.Duration          // when each step began, in order
	rolesAt   []map[string]string      // each board's role when each step began, if an expectation refers to one
	records   []StepRecord
}

func (r *runner) run(opt Options) error {
	spec := r.s.Spec(r.kind, r.seed)
	spec.Capture, spec.OnEvent = opt.Capture, opt.OnEvent
	open := opt.Open
	if open == nil {
		open = func(spec targets.Spec) (targets.Target, error) { return targets.NewSim(spec) }
	}
	t, err := open(spec)
	if err != nil {
		return err
	}
	r.t = t
	cfg, _ := node.Config{Heartbeat: spec.Heartbeat, MissLimit: spec.MissLimit}.WithDefaults()
	r.bound = time.Duration(cfg.MissLimit+2) * cfg.Heartbeat
	r.stepsAt, r.appsFrom = map[time.Duration]bool{}, map[string]time.Duration{}
	if s, ok := t.(interface{ Skipped() []string }); ok {
		r.skipped = append(r.skipped, s.Skipped()...)
	}
	for _, b := range r.s.Topology.Boards.List {
		if b.Off { // before any event: it never boots
			if err := t.PowerOff(b.Name); err != nil {
				return err
			}
			r.stepsAt[t.Now()] = true
		}
	}
	keepRoles := slices.ContainsFunc(r.s.Steps, func(st Step) bool { return st.Expect != nil && st.Expect.AtStep > 0 })
	var at time.Duration
	for i, st := range r.s.Steps {
		switch {
		case st.At != nil:
			at = st.At.D()
		case st.After != nil:
			at += st.After.D()
		}
		if at > r.s.Timeout.D() {
			return r.fail(i, fmt.Errorf("the scenario's timeout %v ends before this step at %v", r.s.Timeout, at))
		}
		if at > t.Now() {
			t.RunUntil(at, nil)
		}
		if st.Expect == nil && st.Wait == nil {
			r.stepsAt[t.Now()] = true
		}
		r.began = append(r.began, t.Now())
		if keepRoles {
			roles := map[string]string{}
			for _, b := range t.Boards() {
				roles[b] = t.View(b).Role
			}
			r.rolesAt = append(r.rolesAt, roles)
		}
		rec := StepRecord{N: i + 1, At: t.Now().Seconds(), What: st.String(), Expect: st.Expect != nil}
		err := r.step(st)
		rec.End, rec.Verdict = t.Now().Seconds(), "ok"
		var nj *notJudged
		u, unsupported := targets.IsUnsupported(err)
		switch {
		case err == nil:
		case unsupported:
			rec.Verdict = "skipped"
		case errors.As(err, &nj):
			rec.Verdict = "not judged"
		default:
			rec.Verdict = "failed"
		}
		r.records = append(r.records, rec)
		switch {
		case err == nil:
		case unsupported:
			r.skipped = append(r.skipped, fmt.Sprintf("step %d (%s): %s", i+1, u.Action, u.Why))
			continue
		case nj != nil:
			nj.step = i + 1
			return nj
		default:
			return r.fail(i, err)
		}
		at = t.Now() // expectations and waits take time
	}
	return nil
}

// fail says which step failed, when, what happened just before, and how to
// replay it.
func (r *runner) fail(i int, err error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "step %d at %.3fs: %v\n  last events:\n", i+1, r.t.Now().Seconds(), err)
	for _, e := range r.t.Timeline().Last(10) {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	fmt.Fprintf(&b, "  replay: %s", replay(r.kind, r.inventory, r.seed, r.s.File))
	return errors.New(b.String())
}

func (r *runner) step(st Step) error {
	t := r.t
	switch {
	case st.PowerOff != "":
		return t.PowerOff(st.PowerOff)
	case st.PowerOn != "":
		return t.PowerOn(st.PowerOn)
	case st.Reboot != "":
		if err := t.PowerOff(st.Reboot); err != nil {
			return err
		}
		return t.PowerOn(st.Reboot)
	case st.Partition != nil:
		return t.Partition(st.Partition...)
	case st.Heal:
		return t.Heal()
	case st.SetLink != nil:
		sl := st.SetLink
		l, _ := sl.Link.netsim() // checked when loaded
		if sl.Board != "" {
			return t.SetLink(sl.Board, l)
		}
		if err := t.SetPairLink(sl.From, sl.To, l); err != nil || !sl.BothWays {
			return err
		}
		return t.SetPairLink(sl.To, sl.From, l)
	case st.Hello != nil:
		return r.hello(st.Hello)
	case st.Control != nil:
		return r.control(st.Control)
	case st.App != nil:
		if st.App.Stop != "" {
			return t.StopApp(st.App.Board, st.App.Stop)
		}
		if _, ok := r.appsFrom[st.App.Start]; !ok {
			r.appsFrom[st.App.Start] = t.Now()
		}
		return t.StartApp(targets.App{Board: st.App.Board, Spec: apps.Spec{App: st.App.Start, Server: st.App.Server, Interval: st.App.Interval.D()}})
	case st.Wait != nil:
		t.RunUntil(t.Now()+st.Wait.D(), nil)
	case st.Expect != nil:
		return r.expect(st.Expect)
	case st.Forge != nil:
		return r.forge(st.Forge)
	case st.Attack != nil:
		return r.attack(st.Attack)
	case st.RadioFault != nil:
		return t.RadioFault(st.RadioFault.Board, st.RadioFault.Fault)
	}
	return nil
}

// rogue is the target's rogue host, or why there is none.
func (r *runner) rogue(action string) (targets.Rogue, error) {
	if rg, ok := r.t.(targets.Rogue); ok {
		return rg, nil
	}
	return nil, &targets.Unsupported{Target: r.kind, Action: action, Why: "the rogue host is a simulated one; hostile steps run on the sim target"}
}

// forge starts sending Count forged frames, Every apart: the scenario goes
// on meanwhile, so an expectation can watch the cluster under them.
func (r *runner) forge(f *Forge) error {
	rg, err := r.rogue("forge")
	if err != nil {
		return err
	}
	n, every := max(f.Count, 1), f.Every.D()
	if every == 0 {
		every = time.Second
	}
	fg := sim.Forgery{Type: f.Type, As: f.As, To: f.To, Name: f.Name, Incarnation: f.Incarnation, Seq: f.Seq, Slot: f.Slot, Members: f.Members, Bytes: f.Bytes}
	if f.From != "" {
		fg.From = netip.MustParseAddr(f.From) // checked when loaded
	}
	if err := rg.Forge(fg, n, every); err != nil {
		return fmt.Errorf("forge: %w", err)
	}
	return nil
}

// attack starts a hostile control client; a half-close waits for its reply.
func (r *runner) attack(a *Attack) error {
	rg, err := r.rogue("attack")
	if err != nil {
		return err
	}
	d := a.For.D()
	if d == 0 {
		d = 30 * time.Second
	}
	at := &sim.Attack{Kind: a.Kind, Board: a.Board, Conns: a.Connections, Bytes: a.Bytes, Until: r.t.Now() + d}
	if err := rg.Attack(at); err != nil {
		return fmt.Errorf("attack: %w", err)
	}
	if a.Kind == sim.HalfClose && !r.t.RunUntil(r.t.Now()+sim.ControlTimeout, func() bool { return at.Replies > 0 }) {
		return fmt.Errorf("attack: a client that sent a ping and half-closed got no reply from %s within %v", a.Board, sim.ControlTimeout)
	}
	return nil
}

// hello broadcasts HELLO as a desktop client and checks the FULL that
// answers: by default it lists every board that is up.
func (r *runner) hello(h *Hello) error {
	within := h.Within.D()
	if within == 0 {
		within = 2 * time.Second
	}
	from := r.t.Now()
	full, err := r.t.Hello(within, h.Unsigned)
	if h.None {
		switch {
		case err == nil:
			// A radio outage changes the membership, and the registry
			// tells a desktop that said HELLO before: not judged then.
			return r.outageIn(from, r.t.Now(), fmt.Errorf("hello: FULL from %s answered (listing %d boards), want none within %v", full.From, full.Members, within))
		case errors.Is(err, targets.ErrNoFull):
			return nil
		}
		return fmt.Errorf("hello: %w", err)
	}
	// A FULL the registry pushed a moment before (to a desktop that said
	// HELLO earlier, on a change) can come first: a FULL that does not
	// match is asked again while the window lasts.
	for {
		if err != nil {
			// The registry answers only while it is on the network: a
			// radio outage in the window is the fault's, not the
			// protocol's.
			return r.outageIn(from, r.t.Now(), fmt.Errorf("hello: %w", err))
		}
		mismatch := r.fullMismatch(h, full)
		if mismatch == nil {
			return nil
		}
		// Ask again half a second on (the desktop's own pace), if the
		// window has room: always later, so that the loop ends.
		r.t.RunUntil(min(r.t.Now()+helloAgain, from+within), nil)
		left := from + within - r.t.Now()
		if left <= 0 {
			return r.outageIn(from, r.t.Now(), mismatch)
		}
		full, err = r.t.Hello(left, h.Unsigned)
	}
}

// helloAgain is how long the hello step waits before it asks again after
// a FULL that did not match.
const helloAgain = 500 * time.Millisecond

// fullMismatch says how a FULL differs from what the hello step wants.
func (r *runner) fullMismatch(h *Hello, full targets.Full) error {
	if len(h.Names) > 0 {
		got, want := slices.Sorted(slices.Values(full.Names)), slices.Sorted(slices.Values(h.Names))
		if !slices.Equal(got, want) {
			return fmt.Errorf("hello: FULL from %s lists %v, want %v", full.From, got, want)
		}
		return nil
	}
	want := h.Members
	if want == 0 {
		for _, b := range r.t.Boards() {
			if r.t.Up(b) {
				want++
			}
		}
	}
	if full.Members != want {
		return fmt.Errorf("hello: FULL from %s lists %d members, want %d", full.From, full.Members, want)
	}
	return nil
}

// control sends a step's commands from its controller, each judged by
// what its reply must hold.
func (r *runner) control(ctl *Control) error {
	if ctl.Unreachable {
		reply, err := r.send(ctl, ctl.Commands[0].line()) // checked when loaded: there is one
		if err == nil {
			return fmt.Errorf("control %s: want the board unreachable, but it answered %s", ctl.Board, reply.Raw)
		}
		return nil // send closed and forgot the connection that failed
	}
	from := r.t.Now()
	for _, cmd := range ctl.Commands {
		line := cmd.line()
		reply, err := r.send(ctl, line)
		if err != nil {
			// No reply, or no connection: the board's own radio losing its
			// association, unscripted, explains it (a wrong reply is
			// judged whatever the radio did).
			return r.outageIn(from, r.t.Now(), fmt.Errorf("control %s: %w", ctl.Board, err), ctl.Board)
		}
		if err := judgeReply(cmd, line, reply); err != nil {
			return fmt.Errorf("control %s: %w", ctl.Board, err)
		}
	}
	if ctl.Disconnect || ctl.Unsigned { // the intruder does not stay connected
		name := ctl.Controller
		if ctl.Unsigned {
			name = intruder
		}
		if c := r.conns[name]; c != nil {
			c.conn.Close()
			delete(r.conns, name)
		}
	}
	return nil
}

// retryPause is the wait before a control command's first retry; it
// doubles each time, as ctl.Options' Backoff.
const retryPause = 200 * time.Millisecond

// intruder names the controller without the key among a runner's
// connections; a scenario cannot name one so (see check).
const intruder = "(intruder)"

// ctlConn is a controller's connection and the board it goes to.
type ctlConn struct {
	conn  targets.Conn
	board string
	inc   uint32 // the board's incarnation (its boot) when connected
}

// send sends one line from the step's controller, connected to the step's
// board (again, if it was connected elsewhere or closed), and returns the
// reply: with retries, a line that gets none, or whose connection fails, is
// sent again on a new connection.
func (r *runner) send(ctl *Control, line string) (targets.Reply, error) {
	name := ctl.Controller
	open := r.t.Controller
	if ctl.Unsigned {
		rg, err := r.rogue("control unsigned")
		if err != nil {
			return targets.Reply{}, err
		}
		name, open = intruder, func(_, board string) (targets.Conn, error) { return rg.UnsignedController(board) }
	}
	if r.conns == nil {
		r.conns = map[string]*ctlConn{}
	}
	var errs []error
	pause := retryPause
	for try := 0; try <= ctl.Retries; try++ {
		if try > 0 {
			r.t.RunUntil(r.t.Now()+pause, nil)
			pause *= 2
		}
		c := r.conns[name]
		inc := r.t.View(ctl.Board).Incarnation
		// A connection does not outlive its board's boot: a board that
		// rebooted (a reset, an update) has no such connection, and not
		// every stack says so (lneto sends no RST for a segment of a
		// connection it does not know: a controller would wait in vain).
		if c == nil || c.board != ctl.Board || c.conn.Closed() || (inc != 0 && c.inc != 0 && inc != c.inc) {
			if c != nil {
				c.conn.Close()
			}
			conn, err := open(ctl.Controller, ctl.Board)
			if err != nil {
				errs = append(errs, err)
				delete(r.conns, name)
				continue
			}
			c = &ctlConn{conn: conn, board: ctl.Board, inc: r.t.View(ctl.Board).Incarnation}
			r.conns[name] = c
		}
		c.conn.SetTimeout(ctl.Timeout.D())
		reply, err := c.conn.Do(line)
		if err == nil && ctl.Retries > 0 && strings.HasPrefix(reply.Err(), control.Refused) {
			// The board had no room for the connection (older ones it has
			// not seen closed, on a lossy link): worth another try.
			err = fmt.Errorf("refused: %s", reply.Err())
		}
		if err == nil {
			return reply, nil
		}
		errs = append(errs, err)
		c.conn.Close() // a late reply must not answer the next line
		delete(r.conns, name)
	}
	if len(errs) == 1 {
		return targets.Reply{}, errs[0]
	}
	return targets.Reply{}, fmt.Errorf("%d tries failed: %w", len(errs), errors.Join(errs...))
}

// judgeReply checks a reply against what the command says it must hold.
func judgeReply(cmd Command, line string, reply targets.Reply) error {
	if cmd.Error != "" || cmd.Exception != "" {
		if !strings.Contains(reply.Err(), cmd.Error) || reply.Err() == "" {
			return fmt.Errorf("%s: want an error containing %q, got %s", truncate(line, 80), cmd.Error, reply.Raw)
		}
		if got, _ := reply.Fields["exception"].(string); cmd.Exception != "" && got != cmd.Exception {
			return fmt.Errorf("%s: want exception %s, got %s", truncate(line, 80), cmd.Exception, reply.Raw)
		}
		return nil
	}
	for _, k := range cmd.Has {
		if _, ok := reply.Fields[k]; !ok {
			return fmt.Errorf("%s: reply %s has no %s", truncate(line, 80), reply.Raw, k)
		}
	}
	if reply.Err() != "" {
		return fmt.Errorf("%s: error reply %s", line, reply.Raw)
	}
	for k, want := range cmd.Reply {
		if !sameJSON(reply.Fields[k], want) {
			return fmt.Errorf("%s: reply %s has %s=%v, want %v", line, reply.Raw, k, reply.Fields[k], want)
		}
	}
	return nil
}

// line is the command as it goes on the wire: Raw as it is, or Send as
// JSON.
func (c Command) line() string {
	if c.Raw != "" {
		return c.Raw
	}
	return commandJSON(c.Send)
}

// commandJSON writes a command with "action" first and the rest in name
// order, one line.
func commandJSON(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "action" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if _, ok := m["action"]; ok {
		keys = append([]string{"action"}, keys...)
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(m[k])
		parts[i] = string(kb) + ": " + string(vb)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func sameJSON(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	var x, y any
	json.Unmarshal(ab, &x)
	json.Unmarshal(bb, &y)
	return fmt.Sprint(x) == fmt.Sprint(y)
}
