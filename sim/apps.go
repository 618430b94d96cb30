package sim

import "github.com/picosim/picosim/node/apps"

// StartApp runs an app on a board, as the firmware's start_app command
// does: it goes into the board's settings and starts again at every boot.
// A client's server given by name (spec.Server) is found through discovery
// by the robust RGB client; the others dial its address as it is now.
func (c *Cluster) StartApp(board string, spec apps.Spec) error {
	b, err := c.board(board)
	if err != nil {
		return err
	}
	if spec.ServerIP.IsZero() && spec.Server != "" && spec.App != "rgb-client-robust" {
		if s := c.byName[spec.Server]; s != nil {
			spec.ServerIP = [4]byte(s.IP().As4())
		}
	}
	return b.StartApp(spec)
}

// StopApp ends an app on a board.
func (c *Cluster) StopApp(board, name string) error {
	b, err := c.board(board)
	if err != nil {
		return err
	}
	return b.StopApp(name)
}

// AppStats sums an app's counters over every board that runs it, over all
// their boots.
func (c *Cluster) AppStats(name string) apps.Stats {
	var s apps.Stats
	for _, b := range c.boards {
		if st, ok := b.AppStats(name); ok {
			s = s.Add(st)
		}
	}
	return s
}
