package sim

import (
	"fmt"
	"math"

	"io"
	"time"

	"github.com/picosim/picosim/firmware"
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
	// NotJudged names the checks the run could not judge, and why: a fault
	// of the radio inside the check's window ("liveness not judged: pico3
	// lost its association during the failover"). They are not failures.
	NotJudged []string `json:"not_judged"`
}

// Passed reports whether agreement, liveness and safety held.
func (s Summary) Passed() bool { return s.Agreement && s.Liveness && s.Safety }

// Run carries out the run and judges it. A check is judged only when no
// fault of the radio (a board losing its WiFi association, or joining again
// after one) fell inside the window the boards need to notice it, one
// failover bound (k+2 heartbeats): such a run is not failed but reported,
// naming the fault (Summary.NotJudged). Precisely:
//   - safety is checked after every event once the cluster has first agreed,
//     except within one bound after the kill or after a fault;
//   - the failover is judged only if the cluster had agreed by the kill, or,
//     if it had not, no fault fell within the bound before it;
//   - liveness fails only if no fault of a survivor fell between the kill and
//     the end of the bound;
//   - the agreement at the end is judged only if no fault fell within the
//     bound before the end.
//
// Only boards that are powered and on the network (radio associated) count,
// each judged with the boards it can hear.
func (r FailoverRun) Run() (Summary, error) {
	wall := time.Now()
	events := 0
	dirty := false // views change only when a board reports something
	var faults []fault
	joined := map[string]bool{}
	var c *Cluster
	user := r.Cluster.OnEvent
	r.Cluster.OnEvent = func(e Event) {
		events++
		dirty = true
		n := len(faults)
		switch e.Kind {
		case firmware.EvWiFiLost:
			faults = append(faults, fault{e.At, e.Board, "lost its WiFi association"})
		case firmware.EvWiFiJoined:
			if joined[e.Board] {
				faults = append(faults, fault{e.At, e.Board, "joined WiFi again"})
			}
			joined[e.Board] = true
		}
		if len(faults) > n {
			// The fault's window closes later: the checks it excused must be
			// looked at again then, even if nothing happens at that moment.
			c.clk.At(e.At+c.FailoverBound()+1, func() { dirty = true })
		}
		if user != nil {
			user(e)
		}
	}
	c, err := New(r.Cluster)
	if err != nil {
		return Summary{}, err
	}
	defer c.Close() // flushes a capture too
	if r.Capture != nil {
		if err := c.StartCapture(r.Capture); err != nil {
			return Summary{}, err
		}
	}
	s := Summary{Nodes: r.Cluster.Boards, Seed: r.Cluster.Seed, Liveness: true, Safety: true, Failures: []string{}, NotJudged: []string{}}
	bound := c.FailoverBound()
	s.BoundS = bound.Seconds()
	fail := func(format string, args ...any) {
		s.Failures = append(s.Failures, fmt.Sprintf("%.3fs: ", c.Now().Seconds())+fmt.Sprintf(format, args...))
	}
	notJudged := func(check string, f fault, why string) {
		s.NotJudged = append(s.NotJudged, fmt.Sprintf("%s not judged at %.3fs: %s %s at %.3fs, %s", check, c.Now().Seconds(), f.board, f.what, f.at.Seconds(), why))
	}
	// faultIn returns the latest fault in [from, to] of a board other than
	// except: the nearest cause.
	faultIn := func(from, to time.Duration, except string) (fault, bool) {
		for i := len(faults) - 1; i >= 0; i-- {
			if f := faults[i]; f.at >= from && f.at <= to && f.board != except {
				return f, true
			}
		}
		return fault{}, false
	}

	// watch runs to the absolute time `until`, checking safety after every
	// event that changed a view, once the cluster has agreed, outside the
	// grace windows.
	agreed := false
	graceUntil := time.Duration(0)
	var excused fault // the fault whose window last excused two masters
	watch := func(until time.Duration) {
		c.RunUntil(until, func() bool {
			if !dirty {
				return false
			}
			dirty = false
			if !agreed {
				agreed = c.Agreement() == nil
			}
			if !agreed || !s.Safety || c.Now() < graceUntil {
				return false
			}
			if err := c.Safety(); err != nil {
				if f, ok := faultIn(c.Now()-bound, c.Now(), ""); ok {
					if f != excused {
						excused = f
						notJudged("safety", f, fmt.Sprintf("within the %v the boards need to notice it (%v)", bound, err))
					}
				} else {
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
		switch f, fault := faultIn(r.KillAt-bound, r.KillAt, ""); {
		case !ok && fault:
			notJudged("the failover", f, fmt.Sprintf("within the %v before the kill at %v: the boards had not agreed by then (%v)", bound, r.KillAt, c.Agreement()))
		case !ok:
			s.Liveness = false
			ready := "they settle " + c.NodeConfig().Settle.String() + " after boot"
			if p := r.Cluster.Profile; p != nil {
				ready = "they join WiFi up to " + p.Defaults().JoinMax.String() + " after boot, then settle for " + c.NodeConfig().Settle.String()
			}
			fail("the boards had not agreed on a master by the kill at %v (%s): %v", r.KillAt, ready, c.Agreement())
		default:
			s.MasterBefore = old.name
			s.KilledAtS = r.KillAt.Seconds()
			c.PowerOff(old.name)
			graceUntil = c.Now() + bound
			c.clk.At(graceUntil, func() { dirty = true }) // two masters may just sit there
			m, took, err := c.AwaitNewMaster(old.name, min(bound, r.Duration-c.Now()))
			switch f, fault := faultIn(r.KillAt, r.KillAt+bound, old.name); {
			case err == nil:
				// To the microsecond: events at one instant are a
				// nanosecond apart, which made 2.516000001.
				f := took.Round(time.Microsecond).Seconds()
				s.FailoverS = &f
				s.MasterAfter = m.name
			case fault:
				notJudged("liveness", f, fmt.Sprintf("during the failover (%v to %v)", r.KillAt, r.KillAt+bound))
			default:
				s.Liveness = false
				fail("liveness: %v", err)
			}
		}
	}
	watch(r.Duration)

	if err := c.Agreement(); err != nil {
		if f, ok := faultIn(r.Duration-bound, r.Duration, ""); ok {
			notJudged("agreement", f, fmt.Sprintf("within the %v before the end (%v)", bound, err))
			s.Agreement = true
		} else {
			fail("agreement: %v", err)
		}
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
		s.Speedup = math.Round(s.SimS/s.WallS*10) / 10 // a measure, not an exact figure
	}
	return s, nil
}

// fault is a board's radio losing or regaining the network, in a run.
type fault struct {
	at    time.Duration
	board string
	what  string
}
