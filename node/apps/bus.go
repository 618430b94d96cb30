package apps

import (
	"strings"
	"time"

	"github.com/picosim/picosim/node"
)

// BusPort is the UDP port of the wireless bus.
const BusPort = 5001

// Bus is the "wireless bus" of shared/seeds/000: every Interval, a board
// sends "Hello from <ip> (<role>)" straight to each peer on UDP 5001, peers
// taken from discovery. An attempt is a message sent; a success, one
// received from a peer (sum them over the cluster for a delivery rate).
type Bus struct {
	base
	Interval time.Duration
	self     node.Addr
	role     string
	peers    []node.Addr
}

// NewBus starts a bus app at now.
func NewBus(interval time.Duration, now time.Duration) *Bus {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	b := &Bus{Interval: interval}
	b.next = now + interval
	return b
}

func (b *Bus) Step(now time.Duration, in Input) {
	switch in.Kind {
	case Viewed:
		b.self, b.peers = in.View.Self, b.peers[:0]
		b.role = "WORKER"
		if in.View.Self == in.View.Master {
			b.role = "MASTER"
		}
		for _, m := range in.View.Members {
			if m.IP != in.View.Self {
				b.peers = append(b.peers, m.IP)
			}
		}
	case Datagram:
		if strings.HasPrefix(string(in.Data), "Hello from ") {
			b.stats.Received++
			b.stats.Successes++
		}
	}
}

func (b *Bus) Tick(now time.Duration) {
	if now < b.next {
		return
	}
	b.next = now + b.Interval
	msg := []byte("Hello from " + b.self.String() + " (" + b.role + ")")
	for _, p := range b.peers {
		b.send(BusPort, p, BusPort, msg)
		b.stats.Sent++
		b.stats.Attempts++
	}
}
