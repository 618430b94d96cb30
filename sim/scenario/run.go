package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/sim"
)

// Options change how a scenario runs.
type Options struct {
	// Seed, if set, replaces the scenario's seed.
	Seed *uint64
	// Capture, if set, receives a pcapng capture of the run.
	Capture io.Writer
	// OnEvent, if set, sees every timeline event.
	OnEvent func(sim.Event)
}

// Result is how a run went.
type Result struct {
	Scenario string   `json:"scenario"`
	File     string   `json:"file"`
	Passed   bool     `json:"passed"`
	Seed     uint64   `json:"seed"`
	SimS     float64  `json:"sim_s"`
	WallS    float64  `json:"wall_s"`
	Failures []string `json:"failures"`
	// Replay is the command that runs the scenario again, same seed.
	Replay string `json:"replay"`
	// FailedAt is the simulated time of the failure, in seconds.
	FailedAt *float64     `json:"failed_at_s,omitempty"`
	Timeline sim.Timeline `json:"-"`
}

// Run plays the scenario and returns its verdict. It stops at the first
// expectation that fails.
func Run(s *Scenario, opt Options) Result {
	wall := time.Now()
	seed := s.Seed
	if opt.Seed != nil {
		seed = *opt.Seed
	}
	res := Result{Scenario: s.Name, File: s.File, Seed: seed, Failures: []string{},
		Replay: fmt.Sprintf("picosim run --seed %d %s", seed, s.File)}
	r := &runner{s: s, seed: seed}
	err := r.run(opt)
	if r.c != nil {
		res.SimS = r.c.Now().Seconds()
		res.Timeline = r.c.Timeline()
	}
	if err != nil {
		res.Failures = append(res.Failures, err.Error())
		if r.c != nil {
			at := r.c.Now().Seconds()
			res.FailedAt = &at
		}
	}
	res.Passed = err == nil
	res.WallS = time.Since(wall).Seconds()
	return res
}

type runner struct {
	s    *Scenario
	seed uint64
	c    *sim.Cluster
	ct   *sim.Controller
	ctTo string // the board the controller is connected to
}

func (r *runner) config() sim.Config {
	t := r.s.Topology
	link, _ := t.Network.Link.netsim() // checked when loaded
	cfg := sim.Config{
		Boards:  t.Boards.Count,
		Names:   r.s.BoardNames(),
		Seed:    r.seed,
		Link:    link,
		Node:    node.Config{Heartbeat: t.Heartbeat.D(), MissLimit: t.MissLimit},
		Control: control.Config{RevertOnLoss: t.RevertOnLoss},
	}
	if t.Network.Radio != "ideal" {
		cfg.Profile = &netsim.PicoW{}
	}
	if t.Network.Mode == "softap" {
		cfg.SoftAP = cfg.Names[0]
	}
	for _, b := range t.Boards.List {
		for pin, mode := range b.Pins {
			if cfg.Pins == nil {
				cfg.Pins = map[string][]sim.PinSetup{}
			}
			cfg.Pins[b.Name] = append(cfg.Pins[b.Name], sim.PinSetup{Pin: pin, Output: mode != "input", Value: map[bool]int{true: 1}[mode == "output-high"]})
		}
	}
	if t.Network.Addressing == "new-each-boot" {
		cfg.Addressing = netsim.NewEachBoot
	}
	return cfg
}

func (r *runner) run(opt Options) error {
	cfg := r.config()
	cfg.OnEvent = opt.OnEvent
	c, err := sim.New(cfg)
	if err != nil {
		return err
	}
	r.c = c
	for b, l := range r.s.Topology.Network.Boards {
		nl, _ := l.netsim()
		if err := c.LAN().SetLink(b, netsim.Down, nl); err != nil {
			return err
		}
	}
	for _, p := range r.s.Topology.Network.Pairs {
		nl, _ := p.Link.netsim()
		if err := c.LAN().SetPair(p.From, p.To, nl); err != nil {
			return err
		}
	}
	if opt.Capture != nil {
		if err := c.StartCapture(opt.Capture); err != nil {
			return err
		}
		defer c.StopCapture()
	}
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
		if at > c.Now() {
			c.Run(at - c.Now())
		}
		if err := r.step(st); err != nil {
			return r.fail(i, err)
		}
		at = c.Now() // expectations and waits take time
	}
	return nil
}

// fail says which step failed, when, what happened just before, and how to
// replay it.
func (r *runner) fail(i int, err error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "step %d at %.3fs: %v\n  last events:\n", i+1, r.c.Now().Seconds(), err)
	for _, e := range r.c.Timeline().Last(10) {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	fmt.Fprintf(&b, "  replay: picosim run --seed %d %s", r.seed, r.s.File)
	return errors.New(b.String())
}

func (r *runner) step(st Step) error {
	c := r.c
	switch {
	case st.PowerOff != "":
		return c.PowerOff(st.PowerOff)
	case st.PowerOn != "":
		return c.PowerOn(st.PowerOn)
	case st.Reboot != "":
		if err := c.PowerOff(st.Reboot); err != nil {
			return err
		}
		return c.PowerOn(st.Reboot)
	case st.Partition != nil:
		return c.Partition(st.Partition...)
	case st.Heal:
		c.Heal()
	case st.SetLink != nil:
		l, _ := st.SetLink.Link.netsim() // checked when loaded
		return c.SetLink(st.SetLink.Board, l)
	case st.Hello != nil:
		return r.hello(st.Hello)
	case st.Control != nil:
		return r.control(st.Control)
	case st.App != nil:
		return r.app(st.App)
	case st.Wait != nil:
		c.Run(st.Wait.D())
	case st.Expect != nil:
		return r.expect(st.Expect)
	}
	return nil
}

func (r *runner) control(ctl *Control) error {
	c := r.c
	if r.ct == nil {
		ct, err := c.NewController("laptop")
		if err != nil {
			return err
		}
		r.ct = ct
	}
	if r.ctTo != ctl.Board || r.ct.Closed() {
		if err := r.ct.Connect(ctl.Board); err != nil {
			return fmt.Errorf("control %s: %w", ctl.Board, err)
		}
		r.ctTo = ctl.Board
	}
	for _, cmd := range ctl.Commands {
		line := commandJSON(cmd.Send)
		reply, err := r.ct.Do(line)
		if err != nil {
			return fmt.Errorf("control %s: %w", ctl.Board, err)
		}
		if cmd.Error != "" {
			if !strings.Contains(reply.Err(), cmd.Error) {
				return fmt.Errorf("control %s: %s: want an error containing %q, got %s", ctl.Board, line, cmd.Error, reply.Raw)
			}
			continue
		}
		if reply.Err() != "" {
			return fmt.Errorf("control %s: %s: error reply %s", ctl.Board, line, reply.Raw)
		}
		for k, want := range cmd.Reply {
			if !sameJSON(reply.Fields[k], want) {
				return fmt.Errorf("control %s: %s: reply %s has %s=%v, want %v", ctl.Board, line, reply.Raw, k, reply.Fields[k], want)
			}
		}
	}
	if ctl.Disconnect {
		r.ct.Close()
		r.ctTo = ""
	}
	return nil
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

func (r *runner) app(a *App) error {
	c := r.c
	if a.Stop != "" {
		c.StopApp(a.Board, a.Stop)
		return nil
	}
	now := c.Now()
	server := func() node.Addr {
		if b := c.Board(a.Server); b != nil {
			return node.Addr(b.IP().As4())
		}
		return node.Addr{}
	}
	interval := a.Interval.D()
	var app apps.App
	switch a.Start {
	case "bus":
		app = apps.NewBus(interval, now)
	case "rgb-server":
		app = apps.NewRGBServer(rand.NewPCG(r.seed, uint64(len(a.Board))))
	case "rgb-client-naive", "rgb-client-robust":
		cl := apps.NewRGBClient(a.Start == "rgb-client-robust", now)
		cl.Server, cl.ServerName = server(), a.Server
		if interval > 0 {
			cl.Interval = interval
		}
		app = cl
	case "echo-server":
		app = apps.NewEchoServer()
	case "echo-client":
		app = apps.NewEchoClient(server(), interval, now)
	}
	return c.StartApp(a.Board, app)
}
