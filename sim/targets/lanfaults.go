package targets

import (
	"fmt"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
)

// lanFaults are the faults of a target whose boards are hosts of a netsim
// LAN named as the boards are (emulated boards' doors, emulated RP2040s'
// wire hosts): partitions, links and radio faults are injected there, and
// each is recorded on the timeline.
type lanFaults struct {
	lan     func() *netsim.LAN
	note    func(sim.Event)
	isBoard func(name string) bool
}

func (f lanFaults) host(board string) (*netsim.Host, error) {
	if !f.isBoard(board) {
		return nil, fmt.Errorf("no board %q", board)
	}
	return f.lan().Host(board), nil
}

func (f lanFaults) Partition(groups ...[]string) error {
	if err := f.lan().Partition(groups...); err != nil {
		return err
	}
	f.note(sim.Event{Kind: sim.EvPartition, Detail: fmt.Sprint(groups)})
	return nil
}

func (f lanFaults) Heal() error {
	f.lan().Heal()
	f.note(sim.Event{Kind: sim.EvHeal})
	return nil
}

// RadioFault puts a board's radio in a fault state; the board's own
// watchdog has to notice.
func (f lanFaults) RadioFault(board, fault string) error {
	h, err := f.host(board)
	if err != nil {
		return err
	}
	if err := h.Fail(fault); err != nil {
		return err
	}
	f.note(sim.Event{Board: board, Kind: sim.FaultKind(fault), Detail: fault})
	return nil
}

func (f lanFaults) SetPairLink(from, to string, l netsim.Link) error {
	for _, b := range []string{from, to} {
		if _, err := f.host(b); err != nil {
			return err
		}
	}
	if err := f.lan().SetPair(from, to, l); err != nil {
		return err
	}
	f.note(sim.Event{Board: to, Kind: sim.EvLink, Detail: fmt.Sprintf("loss %g latency %v jitter %v from [%s]", l.Loss, l.Latency, l.Jitter, from)})
	return nil
}

func (f lanFaults) SetLink(board string, l netsim.Link) error {
	if _, err := f.host(board); err != nil {
		return err
	}
	if err := f.lan().SetLink(board, netsim.Down, l); err != nil {
		return err
	}
	f.note(sim.Event{Board: board, Kind: sim.EvLink, Detail: fmt.Sprintf("loss %g latency %v jitter %v", l.Loss, l.Latency, l.Jitter)})
	return nil
}

// counter reads the LAN's counters of a board's host, else node's.
func (f lanFaults) counter(board, name string, node func(board, name string) (uint64, error)) (uint64, error) {
	if h := f.lan().Host(board); h != nil {
		if v, ok := lanCounter(h.Counters(), name); ok {
			return v, nil
		}
	}
	return node(board, name)
}
