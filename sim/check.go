package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// The checkers below are the properties of shared/DESIGN.md. Each returns nil
// when the property holds now and otherwise an error that says who disagrees
// with whom; combine them with RunUntil, or with sim/simtest in Ginkgo specs,
// to state "eventually" and "throughout".

// Components returns the boards that are up grouped by who can hear whom, each
// group in address order.
func (c *Cluster) Components() [][]*Board {
	return Group(c.boards, (*Board).Up, func(a, b *Board) bool { return c.lan.Connected(a.host, b.host) })
}

// Group puts the items that pass keep into groups of items that hear each
// other, each group in the items' order; hear need only hold between an
// item and the first of its group, as it does on a LAN, where hearing is
// the same for every member of a partition.
func Group[T any](items []T, keep func(T) bool, hear func(a, b T) bool) [][]T {
	var groups [][]T
	for _, it := range items {
		if !keep(it) {
			continue
		}
		placed := false
		for i, g := range groups {
			if hear(g[0], it) {
				groups[i] = append(g, it)
				placed = true
				break
			}
		}
		if !placed {
			groups = append(groups, []T{it})
		}
	}
	return groups
}

// Agreement holds when, in every connected component, each board has taken a
// role, knows exactly the boards of its component in their current
// incarnation, and gives each of them the same role as every other board
// does: one MASTER, the lowest address, and distinct worker numbers.
func (c *Cluster) Agreement() error {
	comps := c.Components()
	if len(comps) == 0 {
		return fmt.Errorf("no board is powered")
	}
	views := make([][]View, len(comps))
	for i, comp := range comps {
		for _, b := range comp {
			views[i] = append(views[i], b.View())
		}
	}
	return AgreementOf(views)
}

// AgreementOf is Agreement over what boards report, whatever runs them:
// comps holds the views of the boards that hear each other, a group per
// connected component, each in address order.
func AgreementOf(comps [][]View) error {
	for _, comp := range comps {
		want := make([]string, len(comp))
		for i, v := range comp {
			want[i] = fmt.Sprintf("%s#%d", v.Board, v.Incarnation)
		}
		var ref []string
		var refBoard string
		for _, v := range comp {
			if v.Master == "" {
				return fmt.Errorf("%s has not settled yet", v.Board)
			}
			var got, roles []string
			for _, m := range v.Members {
				got = append(got, fmt.Sprintf("%s#%d", m.Name, m.Incarnation))
				if m.Role == node.Joining.String() {
					return fmt.Errorf("%s sees %s without a role", v.Board, m.Name)
				}
				roles = append(roles, m.Name+"="+m.Role)
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s sees members %v, but its component is %v", v.Board, got, want)
			}
			if ref == nil {
				ref, refBoard = roles, v.Board
				if err := distinctRoles(roles); err != nil {
					return fmt.Errorf("%s: %w", v.Board, err)
				}
			} else if !slices.Equal(roles, ref) {
				return fmt.Errorf("%s sees roles %v, %s sees %v", v.Board, roles, refBoard, ref)
			}
		}
	}
	return nil
}

func distinctRoles(roles []string) error {
	seen := map[string]string{}
	for _, nr := range roles {
		name, role, _ := strings.Cut(nr, "=")
		if other, dup := seen[role]; dup {
			return fmt.Errorf("%s and %s are both %s", other, name, role)
		}
		seen[role] = name
	}
	return nil
}

// Safety holds when no connected component has two boards that each call
// themselves MASTER.
func (c *Cluster) Safety() error {
	return SafetyOf(c.Components(), (*Board).Name, func(b *Board) bool { return b.node.Role() == node.Master })
}

// SafetyOf is Safety over boards whatever runs them: comps groups those
// that hear each other (as Group does), name names one, and master says
// whether it calls itself MASTER.
func SafetyOf[T any](comps [][]T, name func(T) string, master func(T) bool) error {
	for _, comp := range comps {
		var masters []string
		for _, b := range comp {
			if master(b) {
				masters = append(masters, name(b))
			}
		}
		if len(masters) > 1 {
			return fmt.Errorf("%d masters in one component: %v", len(masters), masters)
		}
	}
	return nil
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
		m, ok := b.node.Master()
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
func (c *Cluster) Stability(since time.Duration) error { return StabilityOf(c.timeline, since) }

// StabilityOf is Stability over a timeline, whatever wrote it.
func StabilityOf(t Timeline, since time.Duration) error {
	changes := t.Since(since).Of(EvRole, EvMaster)
	if len(changes) > 0 {
		return fmt.Errorf("%d role changes since %.3fs, the first: %s", len(changes), since.Seconds(), strings.TrimSpace(changes[0].String()))
	}
	return nil
}

// MembershipStable holds when no board saw a member join or leave since t.
func (c *Cluster) MembershipStable(since time.Duration) error {
	changes := c.timeline.Since(since).Of(EvJoined, EvLeft)
	if len(changes) > 0 {
		return fmt.Errorf("%d membership changes since %.3fs, the first: %s", len(changes), since.Seconds(), strings.TrimSpace(changes[0].String()))
	}
	return nil
}

// FailoverBound is the liveness bound of the issue: k+2 heartbeat intervals.
func (c *Cluster) FailoverBound() time.Duration {
	cfg := c.NodeConfig()
	return time.Duration(cfg.MissLimit+2) * cfg.Heartbeat
}

// AwaitNewMaster runs the cluster until every board that is up follows the same
// master other than old, for at most bound, and returns how long it took.
// This is the liveness property when old has just died.
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

// FailSafe holds when no pin of any board holds a written value past the end
// of its timeout.
func (c *Cluster) FailSafe() error {
	now := c.Now()
	for _, b := range c.boards {
		if b.svc == nil {
			continue
		}
		for pin := 0; pin <= control.MaxPin; pin++ {
			if at, held := b.svc.core.Held(pin); held && now > at {
				return fmt.Errorf("%s GPIO%d still holds its written value %v after its timeout", b.name, pin, now-at)
			}
		}
	}
	return nil
}
