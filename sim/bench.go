package sim

import (
	"fmt"
	"runtime"
	"time"
)

// Converged is a cheap form of Agreement for large clusters: every powered
// board knows as many members as there are boards that are up, follows the lowest
// powered board as master, and has a role, and no two boards hold the same
// one. It assumes no partition.
func (c *Cluster) Converged() error {
	var lowest *Board
	n := 0
	for _, b := range c.boards {
		if b.Up() {
			if lowest == nil {
				lowest = b
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no board is powered")
	}
	roles := make(map[uint16]string, n)
	for _, b := range c.boards {
		if !b.Up() {
			continue
		}
		m, ok := b.p.Node().Master()
		switch {
		case !ok:
			return fmt.Errorf("%s has not settled", b.name)
		case b.p.Node().Len() != n:
			return fmt.Errorf("%s knows %d of %d members", b.name, b.p.Node().Len(), n)
		case m.IP != [4]byte(lowest.IP().As4()):
			return fmt.Errorf("%s follows %s, not %s", b.name, c.nameOf(m.IP), lowest.name)
		}
		r := uint16(b.p.Node().Role())
		if r == 0 {
			return fmt.Errorf("%s has no role", b.name)
		}
		if other, dup := roles[r]; dup {
			return fmt.Errorf("%s and %s are both %s", other, b.name, b.p.Node().Role())
		}
		roles[r] = b.name
	}
	return nil
}

// Convergence is what MeasureConvergence found.
type Convergence struct {
	Boards     int
	SimS       float64 // simulated seconds from power-on to convergence
	WallS      float64 // wall seconds for the whole run, set-up included
	HeapBytes  uint64  // live heap after convergence, after a GC, less the heap before
	PeakHeap   uint64  // largest heap seen while converging, less the heap before
	EventsRun  uint64  // timers fired by the clock: frame deliveries, drains, ticks
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
	wall := time.Now()
	c, err := New(Config{Boards: n, Seed: seed, NoTimeline: true})
	if err != nil {
		return Convergence{}, err
	}
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
	res.EventsRun = c.clk.Fired()
	for _, b := range c.boards {
		res.FramesSent += b.host.Counters().Sent
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.HeapBytes = ms.HeapAlloc - base
	runtime.KeepAlive(c)
	return res, nil
}
