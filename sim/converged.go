package sim

import (
	"fmt"
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
