package firmware

import (
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/outbox"
)

// watchdog notices a radio that says it is joined and delivers nothing —
// the silent disassociation of raspberrypi/pico-sdk#2153, MicroPython
// v1.24's "WiFi stops" (netsim.PicoW's silent and stall faults) — and a
// join that never completes (DHCP failing: soypat/cyw43439#53), and makes
// the radio join again (Board.Rejoin).
//
// Deaf: a board that has heard another board since it booted, and then
// hears none for the silence bound (from the last one heard, or from its
// latest join if later). A board that never heard one is alone, not deaf
// (a cluster of one): it is left alone. Each rejoin that does not bring a
// peer back doubles the bound, up to MaxWatchBound, so a board cut off by
// a partition, or left by every other, rather than by its radio, leaves
// the network a few times, ever more rarely.
type watchdog struct {
	since   time.Duration // the current join began (the boot, a loss, a rejoin)
	heardAt time.Duration // another board's discovery frame last came
	peers   bool          // one came since the boot
	tries   int           // rejoins since one last came
	rejoins int           // this boot's
	silence time.Duration // silenceBound of the node's settings, from the first join
}

// JoinBound is how long a join may take before the watchdog starts it
// again: the Pico W's association (up to 4 s) and DHCP (firmware/pico-w:
// three tries of 3 s) with room to spare. MaxWatchBound caps the bounds
// as they double.
const (
	JoinBound     = 30 * time.Second
	MaxWatchBound = 10 * time.Minute
)

// silenceBound is the silence the watchdog allows a joined board: four
// times the failover bound ((k+2) heartbeats) of the node's own settings,
// so that the cluster has long noticed a board before the board suspects
// its radio.
func silenceBound(cfg node.Config) time.Duration {
	return 4 * time.Duration(cfg.MissLimit+2) * cfg.Heartbeat
}

func (w *watchdog) joined(now time.Duration) { w.since = now }

func (w *watchdog) heard(now time.Duration) {
	w.heardAt, w.peers, w.tries = now, true, 0
}

// bound is b doubled for each rejoin that did not help, capped.
func (w *watchdog) bound(b time.Duration) time.Duration {
	for range w.tries {
		if b >= MaxWatchBound/2 {
			return MaxWatchBound
		}
		b *= 2
	}
	return min(b, MaxWatchBound)
}

// next is when the watchdog must look again (outbox.Never: not before
// something changes).
func (w *watchdog) next(online bool) time.Duration {
	switch {
	case !online:
		return w.since + w.bound(JoinBound)
	case w.peers:
		return max(w.heardAt, w.since) + w.bound(w.silence)
	}
	return outbox.Never
}

// due says why the radio must join again now, or "".
func (w *watchdog) due(now time.Duration, online bool) string {
	if now < w.next(online) {
		return ""
	}
	if !online {
		return "not on the network " + (now - w.since).Round(time.Millisecond).String() + " after its join began"
	}
	return "heard no board for " + (now - max(w.heardAt, w.since)).Round(time.Millisecond).String() + " while joined"
}

// rejoin makes the radio join again, saying why.
func (p *Program) rejoin(now time.Duration, why string) {
	p.dog.tries++
	p.dog.rejoins++
	p.dog.joined(now)
	p.log(now, EvRejoin, why)
	if err := p.b.Rejoin(); err != nil {
		p.log(now, EvRejoin, "failed: "+err.Error())
	}
}

// UnansweredWindow: two connection attempts to a port that the board's own
// stack left unanswered within it, and nothing accepted on the port between
// them, and the program opens the port's listener again.
const UnansweredWindow = 10 * time.Second

// Unanswered tells the program that its stack left a connection attempt to
// one of its TCP ports unanswered: a listener that never sends SYN-ACK
// (soypat/cyw43439#82). The adapter sees it as a handshake that does not
// complete. A second one within UnansweredWindow, with nothing accepted on
// the port meanwhile, and the program closes the port's listener and opens
// it again (listen_restart), as a board's own watchdog would; with the
// watchdog off it does nothing.
func (p *Program) Unanswered(now time.Duration, port uint16) {
	if p.set.NoWatchdog || !p.online {
		return
	}
	if p.unanswered == nil {
		p.unanswered = map[uint16]time.Duration{}
	}
	last, seen := p.unanswered[port]
	p.unanswered[port] = now
	if !seen || now-last > UnansweredWindow {
		return
	}
	delete(p.unanswered, port)
	pt := Port{TCP: true, Num: port}
	p.b.Unlisten(pt)
	if err := p.b.Listen(pt); err != nil {
		p.log(now, "listen_error", portName(pt)+": "+err.Error())
		return
	}
	p.relistens++
	p.log(now, EvRelisten, portName(pt)+": connection attempts went unanswered")
	p.flush(now)
}
