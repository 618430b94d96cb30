package sim

import (
	"fmt"
	"io"
	"time"
)

// FailoverRun describes the run of `picosim cluster`: boot a cluster, let it
// settle, power off whichever board is master at KillAt, and watch the
// survivors agree on a new one.
type FailoverRun struct {
	Cluster Config
	// KillAt is when the master loses power; 0 kills nobody.
	KillAt time.Duration
	// Duration is the simulated length of the run.
	Duration time.Duration
	// Capture, if set, receives a pcapng capture of the whole run.
	Capture io.Writer
}

// Summary is the verdict of a FailoverRun. Times are simulated seconds but
// WallS.
type Summary struct {
	Nodes        int      `json:"nodes"`
	Seed         uint64   `json:"seed"`
	MasterBefore string   `json:"master_before"`
	MasterAfter  string   `json:"master_after"`
	KilledAtS    float64  `json:"killed_at_s,omitempty"`
	FailoverS    *float64 `json:"failover_s"` // null when nobody was killed or no new master came
	BoundS       float64  `json:"failover_bound_s"`
	Agreement    bool     `json:"agreement"`
	Liveness     bool     `json:"liveness"`
	Safety       bool     `json:"safety"`
	SimS         float64  `json:"sim_s"`
	WallS        float64  `json:"wall_s"`
	Speedup      float64  `json:"sim_per_wall"`
	Events       int      `json:"events"`
	Frames       uint64   `json:"frames_sent"`
	Dropped      uint64   `json:"frames_dropped"`
	Failures     []string `json:"failures"`
}

// Passed reports whether agreement, liveness and safety held.
func (s Summary) Passed() bool { return s.Agreement && s.Liveness && s.Safety }

// Run carries out the run. Safety is checked after every event once the
// cluster has first agreed, except within one failover bound after the kill.
func (r FailoverRun) Run() (Summary, error) {
	wall := time.Now()
	events := 0
	dirty := false // views change only when a board reports something
	user := r.Cluster.OnEvent
	r.Cluster.OnEvent = func(e Event) {
		events++
		dirty = true
		if user != nil {
			user(e)
		}
	}
	c, err := New(r.Cluster)
	if err != nil {
		return Summary{}, err
	}
	if r.Capture != nil {
		if err := c.StartCapture(r.Capture); err != nil {
			return Summary{}, err
		}
		defer c.StopCapture()
	}
	s := Summary{Nodes: r.Cluster.Boards, Seed: r.Cluster.Seed, Liveness: true, Safety: true, Failures: []string{}}
	bound := c.FailoverBound()
	s.BoundS = bound.Seconds()
	fail := func(format string, args ...any) {
		s.Failures = append(s.Failures, fmt.Sprintf("%.3fs: ", c.Now().Seconds())+fmt.Sprintf(format, args...))
	}

	// watch runs to the absolute time `until`, checking safety after every
	// event that changed a view, once the cluster has agreed, outside the
	// grace window.
	agreed := false
	graceUntil := time.Duration(0)
	watch := func(until time.Duration) {
		c.RunUntil(until, func() bool {
			if !dirty {
				return false
			}
			dirty = false
			if !agreed {
				agreed = c.Agreement() == nil
			}
			if agreed && s.Safety && c.Now() >= graceUntil {
				if err := c.Safety(); err != nil {
					s.Safety = false
					fail("safety: %v", err)
				}
			}
			return false
		})
	}

	if r.KillAt > 0 && r.KillAt < r.Duration {
		watch(r.KillAt)
		old, ok := c.AgreedMaster()
		if !ok {
			s.Liveness = false
			ready := "they settle " + c.NodeConfig().Settle.String() + " after boot"
			if p := r.Cluster.Profile; p != nil {
				ready = "they join WiFi up to " + p.Defaults().JoinMax.String() + " after boot, then settle for " + c.NodeConfig().Settle.String()
			}
			fail("the boards had not agreed on a master by the kill at %v (%s): %v", r.KillAt, ready, c.Agreement())
		} else {
			s.MasterBefore = old.name
			s.KilledAtS = r.KillAt.Seconds()
			c.PowerOff(old.name)
			graceUntil = c.Now() + bound
			c.clk.At(graceUntil, func() { dirty = true }) // two masters may just sit there
			m, took, err := c.AwaitNewMaster(old.name, min(bound, r.Duration-c.Now()))
			if err != nil {
				s.Liveness = false
				fail("liveness: %v", err)
			} else {
				f := took.Seconds()
				s.FailoverS = &f
				s.MasterAfter = m.name
			}
		}
	}
	watch(r.Duration)

	if err := c.Agreement(); err != nil {
		fail("agreement: %v", err)
	} else {
		s.Agreement = true
		if m, ok := c.AgreedMaster(); ok {
			if s.MasterBefore == "" {
				s.MasterBefore = m.name
			}
			s.MasterAfter = m.name
		}
	}
	for _, b := range c.boards {
		cnt := b.host.Counters()
		s.Frames += cnt.Sent
		s.Dropped += cnt.Dropped()
	}
	s.Events = events
	s.SimS = c.Now().Seconds()
	s.WallS = time.Since(wall).Seconds()
	if s.WallS > 0 {
		s.Speedup = s.SimS / s.WallS
	}
	return s, nil
}
