package node

import "github.com/picosim/picosim/node/mac"

// Keyed discovery (Config.Key). Every frame ends with a 16-byte tag,
// BLAKE2s-128 under the shared key over 'D', the sender's IPv4 address and
// the frame's bytes:
//
//	frame || mac.Sum('D' || src[4] || frame)
//
// Binding the source address means a frame copied from one board and sent
// from another address does not verify. Replays from the right address are
// caught by what the frames already carry: a HEARTBEAT counts for its
// sender only if its (incarnation, seq) is newer than any known here, also
// for a sender that was recently dropped (a ring of the last GoneMemory
// departures); a LEAVE names the sender's current incarnation, which a
// board uses once; a replayed HELLO only makes the registry send its FULL to
// that HELLO's sender again. Frames without a valid tag are dropped and
// counted (Stats.Unauthenticated); authenticated ones that are not newer are
// dropped and counted too (Stats.Stale: replays, or duplicates the radio
// made).
//
// Without a key the wire is that of shared/seeds/003, byte for byte.

// GoneMemory is how many departed members a keyed node remembers, so that
// their old heartbeats, replayed, do not bring them back.
const GoneMemory = 16

// Seal appends the tag of frame, sent from src, to frame.
func Seal(m *mac.MAC, src Addr, frame []byte) []byte {
	var t [mac.Size]byte
	return append(frame, tag(m, src, frame, t[:0])...)
}

func tag(m *mac.MAC, src Addr, frame, dst []byte) []byte {
	m.Reset()
	m.Write(discoveryDomain[:])
	m.Write(src[:])
	m.Write(frame)
	return m.Sum(dst)
}

// Open checks the tag at the end of p, received from src, and returns the
// frame before it.
func Open(m *mac.MAC, src Addr, p []byte) ([]byte, bool) {
	if len(p) <= mac.Size {
		return nil, false
	}
	body, got := p[:len(p)-mac.Size], p[len(p)-mac.Size:]
	var want [mac.Size]byte
	return body, mac.Equal(tag(m, src, body, want[:0]), got)
}

// discoveryDomain keeps discovery tags apart from control tags, which begin
// with "C\n".
var discoveryDomain = [1]byte{'D'}

// gone is a departed member's newest heartbeat known here.
type gone struct {
	ip          Addr
	incarnation uint32
	seq         uint32
}

// stale reports whether a keyed heartbeat is not newer than what this board
// knows of its sender (members[i] if ok, as find says): a replay, or a
// duplicate.
func (n *Node) stale(i int, ok bool, from Addr, f *Frame) bool {
	if ok {
		m := &n.members[i]
		return f.Incarnation < m.Incarnation || f.Incarnation == m.Incarnation && f.Seq <= m.seq
	}
	for _, g := range n.gone {
		if g.ip == from && (f.Incarnation < g.incarnation || f.Incarnation == g.incarnation && f.Seq <= g.seq) {
			return true
		}
	}
	return false
}

// forget remembers a departed member, when keyed.
func (n *Node) forget(m *member) {
	if n.mac == nil {
		return
	}
	n.gone[n.goneNext] = gone{ip: m.IP, incarnation: m.Incarnation, seq: m.seq}
	n.goneNext = (n.goneNext + 1) % GoneMemory
}
