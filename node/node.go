package node

import (
	"errors"
	"time"

	"github.com/picosim/picosim/node/mac"
)

// member is a Member plus the latest evidence that it is alive: the newest
// of its heartbeats known here (heard or witnessed) and when it was sent, as
// well as this board can tell. It is split in two. member holds what every
// heartbeat reads, for the sender and each witness, in address order; the
// name and the time last seen, which a heartbeat rarely changes, wait in
// coldMember. A simulator holds a million of these for 1,000 boards, one
// table a board, and reads sixteen of them for every heartbeat a board
// hears: sixteen bytes a member keep those reads within the cache.
type member struct {
	IP          Addr
	Incarnation uint32
	seq         uint32
	Slot        uint16
	cold        uint16 // index in Node.cold
}

type coldMember struct {
	Name string
	seen time.Duration
	// heardMS, heardSeq: the member's last heartbeat heard from it directly.
	// A witness that claims a count it cannot have reached since then is
	// about another board that had its address (see heartbeat).
	heardMS  uint32 // milliseconds since the node started (49 days)
	heardSeq uint32
}

// Node is the discovery and election state machine of one board. It is not
// safe for concurrent use: one driver loop owns it.
type Node struct {
	cfg     Config
	timeout time.Duration

	members []member     // live members, this board included, sorted by IP
	cold    []coldMember // theirs, in no order (member.cold)
	selfAt  int          // this board's index in members
	booted  time.Duration
	settled bool
	// existing: while settling, this board heard a worker with a number, so
	// it joins a cluster that was there before it.
	existing bool
	// offline: the radio is off the network (Offline); dropped: members
	// timed out meanwhile, so the others have most likely dropped this
	// board too.
	offline, dropped bool
	role             Role
	master           Member // as last reported in a MasterChanged event

	seq       uint32 // heartbeats sent
	nextBeat  time.Duration
	nextSweep time.Duration // no member can expire before this
	cursor    int           // rotates witnesses over the members

	// Desktop clients that said HELLO lately: the registry sends them
	// FULL again when the membership changes (pushDue), at most once a
	// PushEvery. Every board keeps them, so that a new registry after a
	// failover knows whom to tell.
	subs     [Subscribers]subscriber
	pushDue  bool
	nextPush time.Duration

	frame Frame // decode scratch
	beat  Frame // heartbeat scratch

	// Keyed discovery (auth.go): nil without a key.
	mac      *mac.MAC
	gone     [GoneMemory]gone
	goneNext int

	rd Ready // reused by Ready
	// Outbox, cleared by Advance.
	events []Event
	dgrams []dgram
	out    []byte

	stats Stats
	views uint64 // bumped whenever the membership or a role may have changed
}

type dgram struct {
	to         Addr
	port       uint16
	start, end int
}

// New boots a node at time now. Its first heartbeat goes out within Jitter,
// and it takes a role once it has listened for Settle.
func New(cfg Config, now time.Duration) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, timeout: cfg.Timeout(), booted: now, seq: cfg.Seq}
	if len(cfg.Key) > 0 {
		m, err := mac.New(cfg.Key)
		if err != nil {
			return nil, errors.New("node: " + err.Error())
		}
		n.mac = m
	}
	n.members = []member{{IP: cfg.IP, Incarnation: cfg.Incarnation}}
	n.cold = []coldMember{{Name: cfg.Name, seen: now}}
	n.nextBeat = now + n.draw(cfg.Jitter)
	n.nextSweep = now + n.timeout
	return n, nil
}

// Config returns the node's configuration with defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// Stats returns the node's counters.
func (n *Node) Stats() Stats { return n.stats }

// Role returns this board's role.
func (n *Node) Role() Role { return n.role }

// Master returns the master this board sees, once it has settled.
func (n *Node) Master() (Member, bool) { return n.master, !n.master.IP.IsZero() }

// Len returns the number of live members, this board included.
func (n *Node) Len() int { return len(n.members) }

// Views counts the changes of this board's view: it grows whenever a member
// joins or leaves, or a role or worker number changes. A driver that reports
// the view compares it with the count it last reported.
func (n *Node) Views() uint64 { return n.views }

// MemberAt returns the i-th live member in address order (0 <= i < Len()),
// for a caller that walks them without a copy of the list.
func (n *Node) MemberAt(i int) Member { return n.public(&n.members[i]) }

// Members returns the live members in address order, this board included.
func (n *Node) Members() []Member {
	out := make([]Member, len(n.members))
	for i, m := range n.members {
		out[i] = n.public(&m)
	}
	return out
}

// RoleOf returns the role this board gives the member at ip, by the rule every
// board applies: the lowest address is MASTER, any other member is WORKERn by
// the number it claimed, or JOINING before it claims one. A board that has
// not settled yet calls itself JOINING.
func (n *Node) RoleOf(ip Addr) (Role, bool) {
	i, ok := n.find(ip)
	switch {
	case !ok:
		return Joining, false
	case ip == n.cfg.IP:
		return n.role, true
	case i == 0:
		return Master, true
	}
	return Role(n.members[i].Slot), true
}

// Step hands the node one datagram received on Port from the given address.
func (n *Node) Step(now time.Duration, from Addr, fromPort uint16, payload []byte) {
	n.stats.Received++
	if n.mac != nil {
		body, ok := Open(n.mac, from, payload)
		if !ok {
			n.stats.Unauthenticated++
			return
		}
		payload = body
	}
	f := &n.frame
	if err := f.decode(payload, true); err != nil {
		n.stats.Malformed++
		return
	}
	if from == n.cfg.IP {
		n.stats.Ignored++ // our own broadcast, looped back
		return
	}
	switch f.Type {
	case TypeHello:
		n.subscribe(now, from, fromPort)
		n.answerHello(from, fromPort)
	case TypeHeartbeat:
		n.heartbeat(now, from, f)
	case TypeLeave:
		if i, ok := n.find(from); ok && n.members[i].Incarnation == f.Incarnation {
			n.remove(now, i, Left)
			n.update(now)
		} else {
			n.stats.Ignored++
		}
	default:
		n.stats.Ignored++ // FULL is for desktop clients; boards learn from heartbeats
	}
}

// Tick advances the node's clock: it expires silent members, takes a role
// once settled, and sends a heartbeat when one is due. Call it at Deadline.
func (n *Node) Tick(now time.Duration) {
	changed := false
	if now >= n.nextSweep {
		changed = n.sweep(now)
	}
	if !n.settled && now-n.booted >= n.cfg.Settle {
		n.settled = true
		changed = true
		if n.existing {
			// Joining a cluster that was there before: ask the registry
			// for the members, as the original helpers do. (Boards that
			// boot together skip it: a thousand would flood the LAN.)
			hello := Frame{Type: TypeHello, Name: []byte(n.cfg.Name)}
			n.emit(n.cfg.Broadcast, Port, &hello)
		}
	}
	if changed {
		n.update(now)
	}
	if now >= n.nextBeat {
		n.sendHeartbeat(now)
		n.nextBeat = now + n.cfg.Heartbeat + n.draw(2*n.cfg.Jitter) - n.cfg.Jitter
	}
	if n.pushDue && now >= n.nextPush {
		n.push(now)
	}
}

// Offline tells the node its radio lost the network: it hears nothing, and
// nothing it sends leaves. Its view ages as usual.
func (n *Node) Offline(now time.Duration) { n.offline, n.dropped = true, false }

// Online tells the node its radio is back on the network. A board that
// timed members out while it was away was most likely timed out by them,
// and a new master may have been elected without it: it comes back as
// after a boot, JOINING until it has listened for Settle, so that it does
// not return as a second MASTER before it has heard the cluster.
func (n *Node) Online(now time.Duration) {
	if !n.offline {
		return
	}
	n.offline = false
	if !n.dropped {
		return // a short outage: nobody noticed
	}
	n.settled, n.existing, n.booted = false, false, now
	if !n.master.IP.IsZero() {
		n.event(now, Event{Kind: MasterChanged, Prev: n.master})
		n.master = Member{}
	}
	if n.role != Joining {
		n.event(now, Event{Kind: RoleChanged, Member: n.public(n.self()), Role: Joining, Old: n.role})
		n.role = Joining
	}
	n.views++
}

// Leave broadcasts LEAVE so that the others drop this board at once; the
// driver stops the node afterwards.
func (n *Node) Leave(now time.Duration) {
	f := Frame{Type: TypeLeave, Incarnation: n.cfg.Incarnation}
	n.emit(n.cfg.Broadcast, Port, &f)
}

// Ready returns what the node wants done since the last Advance.
func (n *Node) Ready() Ready {
	n.rd.Datagrams = n.rd.Datagrams[:0]
	for _, d := range n.dgrams {
		n.rd.Datagrams = append(n.rd.Datagrams, Datagram{To: d.to, Port: d.port, Payload: n.out[d.start:d.end:d.end]})
	}
	n.rd.Events, n.rd.Deadline = n.events, n.deadline()
	return n.rd
}

// Advance acknowledges the last Ready; its slices may be reused.
func (n *Node) Advance() {
	n.events = n.events[:0]
	n.dgrams = n.dgrams[:0]
	n.out = n.out[:0]
}

// Deadline is Ready().Deadline, without the rest: when Tick is due.
func (n *Node) Deadline() time.Duration { return n.deadline() }

func (n *Node) deadline() time.Duration {
	d := n.nextBeat
	if n.nextSweep < d {
		d = n.nextSweep
	}
	if !n.settled && n.booted+n.cfg.Settle < d {
		d = n.booted + n.cfg.Settle
	}
	if n.pushDue && n.nextPush < d {
		d = n.nextPush
	}
	return d
}

// draw returns a uniform duration in [0, max].
func (n *Node) draw(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(n.cfg.Rand.Uint64() % uint64(max+1))
}

// find returns where ip is, or would be, in the member table. It runs for
// every witness of every heartbeat. Boards of one cluster mostly hold
// consecutive addresses, so the first guess is the place ip would have if
// the table's addresses were consecutive from its first: one look instead
// of log2(N). Otherwise a binary search.
func (n *Node) find(ip Addr) (int, bool) { return n.findKey(ip.Uint32()) }

// findKey is find of the address as a number.
func (n *Node) findKey(k uint32) (int, bool) {
	ms := n.members
	if d := k - ms[0].IP.Uint32(); d < uint32(len(ms)) && ms[d].IP.Uint32() == k {
		return int(d), true
	}
	lo, hi := 0, len(ms)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if ms[mid].IP.Uint32() < k {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(ms) && ms[lo].IP.Uint32() == k
}

func (n *Node) self() *member { return &n.members[n.selfAt] }

func (n *Node) heartbeat(now time.Duration, from Addr, f *Frame) {
	i, ok := n.find(from)
	if n.mac != nil && n.stale(i, ok, from, f) {
		n.stats.Stale++
		return
	}
	if !n.settled && f.Slot != 0 {
		n.existing = true
	}
	n.unsubscribe(from) // a board that said HELLO at boot is no desktop client
	changed := false
	switch {
	case !ok:
		n.admit(now, i, from, f)
		changed = true
	case string(f.Name) != n.cold[n.members[i].cold].Name, f.Incarnation > n.members[i].Incarnation:
		// Another board has the address now (its incarnation and count
		// say nothing about the one that had it), or the member rebooted.
		why := Rebooted
		if string(f.Name) != n.cold[n.members[i].cold].Name {
			why = Replaced
		}
		n.remove(now, i, why)
		n.admit(now, i, from, f)
		changed = true
	case f.Incarnation < n.members[i].Incarnation:
		n.stats.Ignored++ // a late frame from before the member rebooted
		return
	default:
		m := &n.members[i]
		if f.Seq > m.seq { // not a duplicate, nor overtaken by a newer one
			m.seq = f.Seq
			c := &n.cold[m.cold]
			c.seen, c.heardMS, c.heardSeq = now, n.ms(now), f.Seq
		} else if c := &n.cold[m.cold]; f.Seq > c.heardSeq {
			// A witness raised the count past this one: if the board
			// could not have reached it, the witness was about another
			// board at this address, and this heartbeat is the truth.
			if m.seq > c.heardSeq+n.reachable(now, c) {
				m.seq = f.Seq
				c.seen = now
			}
			c.heardMS, c.heardSeq = n.ms(now), f.Seq
		}
		if m.Slot != f.Slot {
			m.Slot = f.Slot
			changed = true
		}
	}
	// A witness counts only for a heartbeat newer than any known here. Ages
	// leave out the time in flight, so each relay makes "last seen" a little
	// fresher; were the same heartbeat accepted again and again, boards
	// relaying it to each other would keep a dead member alive.
	// Read field by field, not as a Witness: every board reads sixteen of
	// these in every heartbeat, and the copy of a struct made on the stack
	// stalled the processor on each (a third of a 50-board run).
	raw := f.raw
	for k := 0; k+witnessSize <= len(raw); k += witnessSize {
		b := raw[k : k+witnessSize : k+witnessSize]
		key := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		j, ok := n.findKey(key)
		if !ok || j == n.selfAt {
			continue
		}
		m := &n.members[j]
		inc := uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7])
		seq := uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11])
		if m.Incarnation != inc || seq <= m.seq {
			continue
		}
		c := &n.cold[m.cold]
		if seq > c.heardSeq+n.reachable(now, c) {
			continue // more heartbeats than the board could send since: another board's
		}
		m.seq = seq
		age := time.Duration(uint16(b[12])<<8|uint16(b[13])) * time.Millisecond
		if t := now - age; t > c.seen {
			c.seen = t
		}
	}
	if s := n.self(); s.Slot != 0 && f.Slot == s.Slot && from.Less(n.cfg.IP) {
		s.Slot = 0 // the lower address keeps a contested number
		changed = true
	}
	if changed {
		n.update(now)
	}
}

// admit puts the sender of heartbeat f at place i of the members, heard
// now, and says it joined.
func (n *Node) admit(now time.Duration, i int, from Addr, f *Frame) {
	n.insert(i, member{IP: from, Incarnation: f.Incarnation, Slot: f.Slot, seq: f.Seq},
		coldMember{Name: n.cfg.Intern(f.Name), seen: now, heardMS: n.ms(now), heardSeq: f.Seq})
	n.event(now, Event{Kind: MemberJoined, Member: n.public(&n.members[i])})
}

// reachable bounds how many heartbeats a member can have sent since the one
// last heard from it directly: one an interval, with room for the
// interval's jitter, and a few more.
func (n *Node) reachable(now time.Duration, c *coldMember) uint32 {
	d := time.Duration(n.ms(now)-c.heardMS) * time.Millisecond
	return uint32(d/(n.cfg.Heartbeat/2)) + 4
}

// ms is now as milliseconds since the node started.
func (n *Node) ms(now time.Duration) uint32 { return uint32((now - n.booted) / time.Millisecond) }

// Seq is the count of heartbeats this node has sent (from Config.Seq).
func (n *Node) Seq() uint32 { return n.seq }

// sweep drops members silent for longer than the timeout and returns whether
// any left. It also moves nextSweep to the earliest possible next expiry, so
// that receiving a heartbeat never costs a scan of the table.
func (n *Node) sweep(now time.Duration) bool {
	left := false
	oldest := now
	for i := 0; i < len(n.members); {
		m := &n.members[i]
		seen := n.cold[m.cold].seen
		if m.IP != n.cfg.IP && now-seen > n.timeout {
			n.remove(now, i, Timeout)
			left = true
			n.dropped = n.dropped || n.offline
			continue
		}
		if m.IP != n.cfg.IP && seen < oldest {
			oldest = seen
		}
		i++
	}
	// +1: a member is gone strictly after the timeout.
	n.nextSweep = oldest + n.timeout + 1
	return left
}

// insert adds m, whose cold part is c, at index i.
func (n *Node) insert(i int, m member, c coldMember) {
	m.cold = uint16(len(n.cold))
	n.cold = append(grow(n.cold), c)
	n.members = append(grow(n.members), member{})
	copy(n.members[i+1:], n.members[i:])
	n.members[i] = m
	if i <= n.selfAt {
		n.selfAt++
	}
}

// grow makes room for one more element. It grows by an eighth, not
// append's quarter or more: a simulator holds one table per board, each as
// long as the cluster.
func grow[T any](s []T) []T {
	if len(s) < cap(s) {
		return s
	}
	grown := make([]T, len(s), len(s)+len(s)/8+4)
	copy(grown, s)
	return grown
}

// remove drops the member at index i. The last cold part takes the place
// of its own.
func (n *Node) remove(now time.Duration, i int, why LeaveReason) {
	n.forget(&n.members[i])
	m := n.public(&n.members[i])
	if c, last := n.members[i].cold, uint16(len(n.cold)-1); c != last {
		n.cold[c] = n.cold[last]
		for j := range n.members {
			if n.members[j].cold == last {
				n.members[j].cold = c
				break
			}
		}
	}
	n.cold = n.cold[:len(n.cold)-1]
	n.members = append(n.members[:i], n.members[i+1:]...)
	if i < n.selfAt {
		n.selfAt--
	}
	n.event(now, Event{Kind: MemberLeft, Member: m, Reason: why})
}

// public returns m as the API gives it.
func (n *Node) public(m *member) Member {
	return Member{IP: m.IP, Name: n.cold[m.cold].Name, Incarnation: m.Incarnation, Slot: m.Slot}
}

// update recomputes this board's role and its view of the master after the
// membership changed, and claims a worker number when it needs one.
func (n *Node) update(now time.Duration) {
	n.views++
	n.pushDue = n.pushDue || n.subscribed(now)
	if !n.settled {
		return
	}
	master := n.public(&n.members[0])
	if master.IP != n.master.IP || master.Incarnation != n.master.Incarnation {
		n.event(now, Event{Kind: MasterChanged, Member: master, Prev: n.master})
		n.master = master
	}
	role := Master
	if master.IP != n.cfg.IP {
		s := n.self()
		if s.Slot == 0 {
			s.Slot = n.claim()
			n.stats.Claims++
		}
		role = Role(s.Slot)
	}
	if role != n.role {
		n.event(now, Event{Kind: RoleChanged, Member: n.public(n.self()), Role: role, Old: n.role})
		n.role = role
	}
}

// claim picks this board's worker number: the numbers no live member holds,
// given out in address order to the members that hold none (the master
// excluded). Boards with the same view pick distinct numbers without talking;
// different views collide at worst, and the lower address keeps the number.
// A number is kept until the board reboots, so workers keep their numbers
// when others come and go, and a master that steps down gets its old one back.
func (n *Node) claim() uint16 {
	rank := 0
	taken := make(map[uint16]bool, len(n.members))
	for i, m := range n.members {
		if m.Slot != 0 {
			taken[m.Slot] = true
		} else if i > 0 && m.IP.Less(n.cfg.IP) {
			rank++
		}
	}
	for s := uint16(1); ; s++ {
		if taken[s] {
			continue
		}
		if rank == 0 {
			return s
		}
		rank--
	}
}

func (n *Node) sendHeartbeat(now time.Duration) {
	s := n.self()
	n.seq++
	f := &n.beat
	*f = Frame{Type: TypeHeartbeat, Incarnation: n.cfg.Incarnation, Seq: n.seq, Slot: s.Slot, Name: f.Name[:0], Witnesses: f.Witnesses[:0]}
	f.Name = append(f.Name, n.cfg.Name...)
	// Witnesses: the master first, since a false failover costs most, then
	// the others in turn.
	w := n.cfg.Witnesses
	add := func(m *member) {
		age := (now - n.cold[m.cold].seen) / time.Millisecond
		if age > 0xFFFF {
			age = 0xFFFF
		}
		f.Witnesses = append(f.Witnesses, Witness{IP: m.IP, Incarnation: m.Incarnation, Seq: m.seq, AgeMS: uint16(age)})
	}
	if w > 0 && n.members[0].IP != n.cfg.IP {
		add(&n.members[0])
	}
	// Indices 1..len-1 in turn, from where the last heartbeat stopped,
	// shifted by this board's own place: boards whose cursors move in step
	// (they all start at boot and send at the same rate) then vouch for
	// different members in the same round, so each member is witnessed by
	// w-1 boards a round rather than all boards vouching for the same w-1
	// members while the rest wait their turn.
	if others := len(n.members) - 1; others > 0 {
		for k := 0; k < others && len(f.Witnesses) < w; k++ {
			n.cursor = n.cursor%others + 1
			if m := &n.members[(n.cursor-1+n.selfAt)%others+1]; m.IP != n.cfg.IP {
				add(m)
			}
		}
	}
	n.stats.HeartbeatsSent++
	n.emit(n.cfg.Broadcast, Port, f)
}

// Subscribers is how many desktop clients a board remembers; SubscribeFor
// how long after its last HELLO; PushEvery how often at most the registry
// sends them FULL again. The seed's desktop script (shared/seeds/003) says
// HELLO once and then, hearing heartbeats all the time, never again: it
// learns of a board that joins later only if the registry tells it.
const (
	Subscribers  = 4
	SubscribeFor = 10 * time.Minute
	PushEvery    = time.Second
)

type subscriber struct {
	ip   Addr
	port uint16
	at   time.Duration // of its last HELLO; 0: the slot is free
}

// subscribe remembers a HELLO's sender, in place of the one heard from
// longest ago when all slots are taken.
func (n *Node) subscribe(now time.Duration, ip Addr, port uint16) {
	oldest := 0
	for i := range n.subs {
		s := &n.subs[i]
		if s.at != 0 && s.ip == ip && s.port == port {
			s.at = max(now, 1)
			return
		}
		if s.at < n.subs[oldest].at {
			oldest = i
		}
	}
	n.subs[oldest] = subscriber{ip: ip, port: port, at: max(now, 1)}
}

// unsubscribe forgets a remembered client at ip: a board of the cluster,
// whose heartbeat was heard. Without this a board that said HELLO when it
// joined and later left would be sent FULL at every change.
func (n *Node) unsubscribe(ip Addr) {
	if n.subs == ([Subscribers]subscriber{}) {
		return // the usual case: no desktop client at all
	}
	for i := range n.subs {
		if n.subs[i].ip == ip {
			n.subs[i] = subscriber{}
		}
	}
}

// subscribed reports whether this board is the registry and a desktop
// client (not a board of the cluster) said HELLO lately.
func (n *Node) subscribed(now time.Duration) bool {
	if !n.settled || n.members[0].IP != n.cfg.IP {
		return false
	}
	for _, s := range n.subs {
		if n.listening(now, s) {
			return true
		}
	}
	return false
}

// listening reports whether a remembered client said HELLO lately and is
// not a board of the cluster.
func (n *Node) listening(now time.Duration, s subscriber) bool {
	_, member := n.find(s.ip)
	return s.at != 0 && now-s.at < SubscribeFor && !member
}

// push sends FULL to the desktop clients that said HELLO lately.
func (n *Node) push(now time.Duration) {
	n.pushDue = false
	if !n.subscribed(now) {
		return
	}
	n.nextPush = now + PushEvery
	for _, s := range n.subs {
		if n.listening(now, s) {
			n.sendFull(s.ip, s.port)
		}
	}
}

// answerHello sends FULL to a HELLO's sender if this board is the registry,
// split over as many frames as the member list needs.
func (n *Node) answerHello(to Addr, port uint16) {
	if n.members[0].IP != n.cfg.IP {
		n.stats.Ignored++
		return
	}
	n.stats.HellosAnswered++
	n.sendFull(to, port)
}

// sendFull sends the member list in as many FULL frames as it needs.
func (n *Node) sendFull(to Addr, port uint16) {
	f := &Frame{Type: TypeFull}
	size := 2
	for i := range n.members {
		e := Entry{IP: n.members[i].IP, Name: []byte(n.cold[n.members[i].cold].Name)}
		if len(f.Entries) == 255 || size+FullEntrySize(e.Name) > n.cfg.MaxDatagram-n.cfg.trailer() {
			n.emit(to, port, f)
			n.stats.FullsSent++
			f.Entries, size = f.Entries[:0], 2
		}
		f.Entries = append(f.Entries, e)
		size += FullEntrySize(e.Name)
	}
	n.emit(to, port, f)
	n.stats.FullsSent++
}

func (n *Node) emit(to Addr, port uint16, f *Frame) {
	start := len(n.out)
	out, err := f.Append(n.out)
	if err != nil {
		n.out = n.out[:start] // names are checked on the way in: unreachable
		return
	}
	if n.mac != nil {
		var t [mac.Size]byte
		out = append(out, tag(n.mac, n.cfg.IP, out[start:], t[:0])...)
	}
	n.out = out
	n.dgrams = append(n.dgrams, dgram{to: to, port: port, start: start, end: len(out)})
}

func (n *Node) event(now time.Duration, e Event) {
	e.At = now
	n.events = append(n.events, e)
}
