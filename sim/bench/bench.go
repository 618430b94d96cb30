// Package bench provides the simulator's measurements that picosim bench
// and the benchmarks print: failovers (speed, capture cost), clusters
// converging (time, heap, growth), the control protocol's round trips and
// reverts, and a sweep of seeds. Each becomes Figures with the goals of
// issue 15, which a stored Baseline of an earlier commit is compared with.
package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
)

// ControlBench is what MeasureControl found.
type ControlBench struct {
	RoundTrips       int
	PerWallSecond    float64       // control round trips per wall second
	PerCPUSecond     float64       // the same per CPU-second of the process
	SimP50, SimP99   time.Duration // latency in simulated time
	WallP50, WallP99 time.Duration // latency in wall time
	// The baseline: the same number of round trips of a raw TCP echo
	// between two hosts of the same LAN, measured in the same run.
	EchoPerWallSecond float64
	// Reverts: writes with random timeouts, and the largest distance between
	// a revert and its deadline (write arrival + timeout).
	Reverts        int
	RevertMaxError time.Duration
}

// MeasureControl runs n control round trips (read_pin) from a controller to
// a board over link, and reverts writes with random timeouts.
func MeasureControl(n, reverts int, link netsim.Link, seed uint64) (ControlBench, error) {
	res := ControlBench{RoundTrips: n, Reverts: reverts}
	// An OnEvent, even one that does nothing, keeps the causes in GPIO
	// histories (a revert is told by its cause) without keeping a timeline.
	c, err := sim.New(sim.Config{Boards: 2, Seed: seed, Link: link, NoTimeline: true, OnEvent: func(sim.Event) {}})
	if err != nil {
		return res, err
	}
	defer c.Close()
	c.Run(3 * time.Second)
	ct, err := c.NewController("bench")
	if err != nil {
		return res, err
	}
	if err := ct.Connect("pico2"); err != nil {
		return res, err
	}
	if r, err := ct.Do(`{"action": "setup_pin", "pin": 2, "mode": "output", "value": 0}`); err != nil || r.Err() != "" {
		return res, fmt.Errorf("setup: %v %s", err, r.Err())
	}
	sims := make([]time.Duration, 0, n)
	walls := make([]time.Duration, 0, n)
	start, cpu0 := time.Now(), netsim.CPUTime()
	for range n {
		t0, w0 := c.Now(), time.Now()
		if _, err := ct.Do(`{"action": "read_pin", "pin": 2}`); err != nil {
			return res, err
		}
		sims = append(sims, c.Now()-t0)
		walls = append(walls, time.Since(w0))
	}
	res.PerWallSecond = float64(n) / time.Since(start).Seconds()
	res.PerCPUSecond = float64(n) / (netsim.CPUTime() - cpu0).Seconds()
	res.SimP50, res.SimP99 = percentile(sims, 50), percentile(sims, 99)
	res.WallP50, res.WallP99 = percentile(walls, 50), percentile(walls, 99)

	rng := rand.New(rand.NewPCG(seed, 7))
	b := c.Board("pico2")
	for range reverts {
		timeout := time.Duration(1+rng.IntN(2000)) * time.Millisecond
		cmd := fmt.Sprintf(`{"action": "write_pin", "pin": 2, "value": 1, "timeout": %g}`, timeout.Seconds())
		if r, err := ct.Do(cmd); err != nil || r.Err() != "" {
			return res, fmt.Errorf("write: %v %s", err, r.Err())
		}
		var due time.Duration
		for _, p := range b.State().Pins {
			if p.Pin == 2 && p.HeldUntilMS != 0 {
				// The state says it in milliseconds, to the nanosecond.
				due = time.Duration(math.Round(p.HeldUntilMS * float64(time.Millisecond)))
			}
		}
		if due == 0 {
			return res, fmt.Errorf("write_pin scheduled no revert")
		}
		c.RunUntil(due+time.Second, func() bool { return b.GPIO().Level(2) == 0 })
		h := b.GPIO().PinHistory(2)
		last := h[len(h)-1]
		if last.Cause != "revert" {
			return res, fmt.Errorf("no revert by %v", due+time.Second)
		}
		res.RevertMaxError = max(res.RevertMaxError, absDur(last.At-due))
	}

	res.EchoPerWallSecond, err = measureEcho(n, link, seed)
	return res, err
}

// measureEcho is the baseline: n round trips of a raw TCP echo between two
// netsim hosts, on the same kind of LAN.
func measureEcho(n int, link netsim.Link, seed uint64) (float64, error) {
	lan, err := netsim.New(netsim.Config{Seed: seed})
	if err != nil {
		return 0, err
	}
	defer lan.Close()
	srv, _ := lan.AddHost(netsim.HostConfig{Name: "server", Down: link})
	cli, _ := lan.AddHost(netsim.HostConfig{Name: "client"})
	if _, err := srv.ListenTCP(7, func(c *netsim.TCPConn) { c.OnData = func(p []byte) { c.Write(p) } }); err != nil {
		return 0, err
	}
	got := 0
	var dialErr error
	start := time.Now()
	cli.DialTCP(netip.AddrPortFrom(srv.IP(), 7), func(c *netsim.TCPConn, err error) {
		if dialErr = err; err != nil {
			return
		}
		req := []byte(`{"action": "read_pin", "pin": 2}` + "\n")
		c.OnData = func([]byte) {
			if got++; got < n {
				c.Write(req)
			}
		}
		c.Write(req)
	})
	lan.Clock().RunUntil(time.Hour, func() bool { return got >= n || dialErr != nil })
	if dialErr != nil {
		return 0, dialErr
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// Convergence is what MeasureConvergence found.
type Convergence struct {
	Boards     int
	SimS       float64 // simulated seconds from power-on to convergence
	WallS      float64 // wall seconds for the whole run, set-up included
	CPUS       float64 // CPU seconds of the process for the same
	HeapBytes  uint64  // live heap after convergence, after a GC, less the heap before
	PeakHeap   uint64  // largest heap seen while converging, less the heap before
	FramesSent uint64
}

// HeapPerBoard is HeapBytes divided by the number of boards.
func (c Convergence) HeapPerBoard() uint64 { return c.HeapBytes / uint64(c.Boards) }

// MeasureConvergence boots n boards at once on a perfect LAN and runs until
// they converge (see Converged), checking every step of simulated time, for
// at most limit of simulated time.
func MeasureConvergence(n int, seed uint64, step, limit time.Duration) (Convergence, error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	wall, cpu0 := time.Now(), netsim.CPUTime()
	c, err := sim.New(sim.Config{Boards: n, Seed: seed, NoTimeline: true})
	if err != nil {
		return Convergence{}, err
	}
	defer c.Close()
	res := Convergence{Boards: n}
	for c.Converged() != nil {
		if c.Now() >= limit {
			return res, fmt.Errorf("%d boards did not converge in %v: %v", n, limit, c.Converged())
		}
		c.Run(step)
		runtime.ReadMemStats(&ms)
		res.PeakHeap = max(res.PeakHeap, ms.HeapAlloc-base)
	}
	res.SimS = c.Now().Seconds()
	res.WallS = time.Since(wall).Seconds()
	res.CPUS = (netsim.CPUTime() - cpu0).Seconds()
	for _, b := range c.Boards() {
		res.FramesSent += b.Counters().Sent
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.HeapBytes = ms.HeapAlloc - base
	runtime.KeepAlive(c)
	return res, nil
}
