package apps

import (
	"time"

	"github.com/picosim/picosim/node"
)

// MirrorPort is the UDP port of the LED mirror.
const MirrorPort = 5002

// Mirror makes a pin of one board follow a pin of another, through the
// master, as the seeds' "LED mirrored between boards" asks. Every board of
// the mirror runs the app:
//   - the source board sends the level of SourcePin to the master at every
//     change and again every Refresh (so a lost message heals);
//   - the master relays each message to the target board (when it is the
//     source or the target itself, the hop is skipped);
//   - the target board drives TargetPin to the level.
//
// Messages are [ 'M', seq u32, target ip[4], level ]; the target ignores a
// seq it has seen newer than. An attempt is a level sent by the source, a
// success a level applied by the target.
type Mirror struct {
	base
	Source, Target       string // board names
	SourcePin, TargetPin int
	Refresh              time.Duration

	self, master, target node.Addr
	selfName             string
	seq, applied         uint32
	level                int
}

// NewMirror starts the mirror app of one board (self) at now.
func NewMirror(self, source, target string, sourcePin, targetPin int, now time.Duration) *Mirror {
	m := &Mirror{Source: source, Target: target, SourcePin: sourcePin, TargetPin: targetPin, Refresh: time.Second, selfName: self}
	m.next = now + m.Refresh
	return m
}

func (m *Mirror) Step(now time.Duration, in Input) {
	switch in.Kind {
	case Viewed:
		m.self, m.master = in.View.Self, in.View.Master
		for _, mem := range in.View.Members {
			if mem.Name == m.Target {
				m.target = mem.IP
			}
		}
	case Pin:
		if m.selfName == m.Source && in.Pin == m.SourcePin && in.Level != m.level {
			m.level = in.Level
			m.publish(now)
		}
	case Datagram:
		if len(in.Data) != 10 || in.Data[0] != 'M' {
			m.stats.Errors++
			return
		}
		m.stats.Received++
		m.forward(now, in.Data)
	}
}

func (m *Mirror) Tick(now time.Duration) {
	if now < m.next {
		return
	}
	m.next = now + m.Refresh
	if m.selfName == m.Source {
		m.publish(now)
	}
}

func (m *Mirror) publish(now time.Duration) {
	if m.target.IsZero() || m.master.IsZero() {
		return
	}
	m.seq++
	m.stats.Attempts++
	msg := []byte{'M', byte(m.seq >> 24), byte(m.seq >> 16), byte(m.seq >> 8), byte(m.seq), m.target[0], m.target[1], m.target[2], m.target[3], byte(m.level)}
	m.forward(now, msg)
}

// forward sends a message one hop on: to the master, or from the master (or
// a source that is the master) to the target.
func (m *Mirror) forward(now time.Duration, msg []byte) {
	target := node.Addr(msg[5:9])
	msg = append([]byte(nil), msg...) // the input's bytes are the driver's
	switch {
	case target == m.self:
		m.apply(now, msg)
	case m.self == m.master:
		m.stats.Sent++
		m.send(MirrorPort, target, MirrorPort, msg)
	default:
		m.stats.Sent++
		m.send(MirrorPort, m.master, MirrorPort, msg)
	}
}

func (m *Mirror) apply(now time.Duration, msg []byte) {
	seq := uint32(msg[1])<<24 | uint32(msg[2])<<16 | uint32(msg[3])<<8 | uint32(msg[4])
	if seq <= m.applied {
		return // older than what is shown
	}
	m.applied = seq
	m.stats.Successes++
	m.pin(now, m.TargetPin, int(msg[9]))
}
