package sim

import (
	"fmt"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/sim/check"
)

// The checkers of package check, over the cluster's boards as they are now.
// Combine them with RunUntil, or with sim/simtest in Ginkgo specs, to state
// "eventually" and "throughout".

// Components returns the boards that are up grouped by who can hear whom,
// each group in address order.
func (c *Cluster) Components() [][]*Board {
	return check.Group(c.boards, (*Board).Up, func(a, b *Board) bool { return c.lan.Connected(a.host, b.host) })
}

// views returns what the boards of each component report.
func views(comps [][]*Board) [][]firmware.State {
	out := make([][]firmware.State, len(comps))
	for i, comp := range comps {
		for _, b := range comp {
			out[i] = append(out[i], b.State())
		}
	}
	return out
}

// Agreement holds when, in every connected component, each board has taken
// a role, knows exactly the boards of its component in their current
// incarnation, and gives each of them the same role as every other board
// does (check.Agreement).
func (c *Cluster) Agreement() error {
	// What the check reads changes only when a board's view does (its
	// node counts those), a board boots or stops, or who hears whom
	// changes (the LAN counts those): until then the last answer stands.
	// Checked after every event of a long window, it costs a look at each
	// board, not a view of every member from every board.
	key := fnv64(c.lan.Shape())
	for _, b := range c.boards {
		key = fnv64(key ^ b.gen)
		if b.Up() {
			key = fnv64(key ^ b.p.Node().Views() ^ 1<<63)
		}
	}
	if c.agreed.valid && c.agreed.key == key {
		return c.agreed.err
	}
	err := c.agreement()
	c.agreed.key, c.agreed.err, c.agreed.valid = key, err, true
	return err
}

// fnv64 mixes x into a hash (FNV-1a over its bytes).
func fnv64(x uint64) uint64 {
	h := uint64(14695981039346656037)
	for range 8 {
		h = (h ^ x&0xff) * 1099511628211
		x >>= 8
	}
	return h
}

func (c *Cluster) agreement() error {
	comps := c.Components()
	// A cheap look first, straight at the cores: most failed checks end
	// here, before any board writes its state.
	for _, comp := range comps {
		for _, b := range comp {
			n := b.p.Node()
			if _, ok := n.Master(); !ok {
				return fmt.Errorf("%s has not settled yet", b.name)
			}
			if n.Len() != len(comp) {
				return fmt.Errorf("%s sees %d members, but its component has %d", b.name, n.Len(), len(comp))
			}
		}
	}
	return check.Agreement(views(comps))
}

// Safety holds when no connected component has two boards that each call
// themselves MASTER.
func (c *Cluster) Safety() error {
	comps := c.Components()
	roles := make([][]firmware.State, len(comps))
	for i, comp := range comps {
		for _, b := range comp {
			roles[i] = append(roles[i], firmware.State{Name: b.name, Role: b.p.Node().Role().String()})
		}
	}
	return check.Safety(roles)
}

// QuietSafety is Safety for a network that is not quiet: it holds when two
// masters coexist in a component only within one failover bound of the last
// change of the network's shape (a board powered on or off, a partition or
// heal, a link change, a radio joining or losing WiFi), the time the boards
// need to hear of the change.
func (c *Cluster) QuietSafety() error {
	if c.Now()-c.lastChange < c.FailoverBound() {
		return nil
	}
	return c.Safety()
}

// AgreedMaster returns the master that every board that is up follows, if
// they all can hear each other and follow the same one.
func (c *Cluster) AgreedMaster() (*Board, bool) {
	var master node.Addr
	first := true
	for _, b := range c.boards {
		if !b.Up() {
			continue
		}
		m, ok := b.p.Node().Master()
		if !ok || (!first && m.IP != master) {
			return nil, false
		}
		master, first = m.IP, false
	}
	b := c.byIP[master]
	if b == nil || !b.Up() {
		return nil, false
	}
	// Boards that cannot hear each other agree on nothing, whatever their
	// stale views say.
	return b, len(c.Components()) == 1
}

// Stability holds when no board changed its role or its master since t.
func (c *Cluster) Stability(since time.Duration) error { return check.Stability(c.timeline, since) }

// MembershipStable holds when no board saw a member join or leave since t.
func (c *Cluster) MembershipStable(since time.Duration) error {
	return check.MembershipStable(c.timeline, since)
}

// FailoverBound is the liveness bound: k+2 heartbeat intervals.
func (c *Cluster) FailoverBound() time.Duration {
	cfg := c.NodeConfig()
	return time.Duration(cfg.MissLimit+2) * cfg.Heartbeat
}

// AwaitNewMaster runs the cluster until every board that is up follows the
// same master other than old, for at most bound, and returns how long it
// took. This is the liveness property when old has just died.
func (c *Cluster) AwaitNewMaster(old string, bound time.Duration) (*Board, time.Duration, error) {
	start := c.Now()
	var master *Board
	ok := c.RunUntil(start+bound, func() bool {
		m, ok := c.AgreedMaster()
		if ok && m.name != old {
			master = m
			return true
		}
		return false
	})
	if !ok {
		return nil, c.Now() - start, fmt.Errorf("no agreed new master within %v after %s died", bound, old)
	}
	return master, c.Now() - start, nil
}

// FailSafe holds when no pin of any board holds a written value past the
// end of its timeout (check.FailSafe).
func (c *Cluster) FailSafe() error {
	var states []firmware.State
	for _, b := range c.boards {
		if b.p != nil {
			states = append(states, b.State())
		}
	}
	return check.FailSafe(states)
}
