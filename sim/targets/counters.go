package targets

import (
	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/netsim"
)

// lanCounters are what the simulated LAN counted of a board's frames (sim
// and emulated targets); the others are its discovery core's
// (firmware.StatNames), which every target reads.
var lanCounters = []struct {
	name string
	get  func(netsim.Counters) uint64
}{
	{"sent", func(c netsim.Counters) uint64 { return c.Sent }},
	{"delivered", func(c netsim.Counters) uint64 { return c.Delivered }},
	{"lost", func(c netsim.Counters) uint64 { return c.Lost }},
	{"overflow", func(c netsim.Counters) uint64 { return c.Overflow }},
	{"partitioned", func(c netsim.Counters) uint64 { return c.Partitioned }},
	{"down", func(c netsim.Counters) uint64 { return c.Down }},
	{"too_big", func(c netsim.Counters) uint64 { return c.TooBig }},
	{"unassociated", func(c netsim.Counters) uint64 { return c.Unassociated }},
	{"duplicated", func(c netsim.Counters) uint64 { return c.Duplicated }},
	{"reordered", func(c netsim.Counters) uint64 { return c.Reordered }},
	{"corrupted", func(c netsim.Counters) uint64 { return c.Corrupted }},
	{"silent", func(c netsim.Counters) uint64 { return c.Silent }},
	{"wedged", func(c netsim.Counters) uint64 { return c.Wedged }},
}

// CounterNames lists the counters an expectation may compare.
var CounterNames = func() []string {
	var names []string
	for _, c := range lanCounters {
		names = append(names, c.name)
	}
	return append(names, firmware.StatNames...)
}()

// lanCounter returns the LAN's counter called name, if it is one.
func lanCounter(c netsim.Counters, name string) (uint64, bool) {
	for _, lc := range lanCounters {
		if lc.name == name {
			return lc.get(c), true
		}
	}
	return 0, false
}
