package netsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picosim/picosim/netsim/clock"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Config describes a LAN. The zero Config is a valid, perfect LAN on
// 192.168.1.0/24 with seed 0.
type Config struct {
	// Seed drives every random decision of the LAN and of its stacks.
	Seed uint64
	// Subnet is the LAN's prefix. Default 192.168.1.0/24. Its first address
	// is the router's and is never given to a host.
	Subnet netip.Prefix
	// MTU of every link, Ethernet header excluded. Default 1500.
	MTU uint32
	// Clock is the simulated time. Default: a new clock.Virtual.
	Clock *clock.Virtual
	// OnAssociation, if set, hears a PicoW host join (true) or lose (false)
	// the network, on the clock's goroutine.
	OnAssociation func(h *Host, joined bool)
	// OnRadioFault, if set, hears a PicoW host's radio fail (FaultSilent,
	// FaultStall, FaultDHCPFailed, FaultNoSynAck).
	OnRadioFault func(h *Host, fault string)
	// OnUnanswered, if set, hears a wedged listener (FaultNoSynAck) leave a
	// connection attempt to port unanswered: what a board's stack shows as
	// a handshake that never completes.
	OnUnanswered func(h *Host, port uint16)
	// Addressing is how hosts get addresses: Sticky (default), NewEachBoot,
	// or NewAtExpiry of leases of Lease.
	Addressing Addressing
	Lease      time.Duration
	// OnAddress, if set, hears that a host's address changed from old.
	OnAddress func(h *Host, old netip.Addr)
	// SoftAP names the host that is the network's access point, as a Pico W
	// in soft-AP mode: the LAN becomes 192.168.4.0/24 with the AP at
	// 192.168.4.1 (the gateway); the others lease 192.168.4.16 onward, at
	// most SoftAPLeases of them at a time (a station past them waits for a
	// lease to expire); while the AP is off nobody is on the network, and
	// radios join again when it is back, with new leases.
	SoftAP string
	// GVisorOnly sends every frame through gVisor's own paths, not the
	// fast path for UDP (fastudp.go): slower, for the tests that show the
	// two give the same frames.
	GVisorOnly bool
}

// LAN is one broadcast domain: a WiFi network where every frame goes through
// the access point.
type LAN struct {
	cfg    Config
	clock  *clock.Virtual
	router netip.Addr
	bcast  netip.Addr

	mu      sync.Mutex // guards everything below
	rng     *rand.Rand
	hosts   []*Host
	byName  map[string]*Host
	byMAC   map[tcpip.LinkAddress]*Host
	byIP    map[netip.Addr]*Host
	next    netip.Addr // next address to hand out
	groups  map[*Host]int
	pairs   map[[2]*Host]*path          // SetPair: from, to
	oneWay  map[[2]*Host]bool           // Cut: from, to
	spare   *delivery                   // recycled deliveries
	miss    missed                      // of the frame being transmitted, for the capture
	ranked  bool                        // every host's nameRank is up to date
	shape   uint64                      // counts the changes of who can hear whom (Shape)
	batch   map[time.Duration]*delivery // of the frame being transmitted, by delay
	batches []*delivery                 // the same, in the order they were made
	capture *Capture
	ap      *Host  // the soft AP, if any
	apBoots uint64 // times the soft AP came up: its DHCP server forgets its leases each time
	// orphans are soft-AP leases whose station came back with another MAC
	// (NewEachBoot): held by nobody, they are taken until they expire.
	orphans map[netip.Addr]orphanLease
	busy    []*Host     // hosts whose stacks may have work in flight, see settle
	anyBusy atomic.Bool // busy is not empty: settle reads it without the lock
	closed  bool
}

// New returns an empty LAN.
func New(cfg Config) (*LAN, error) {
	if err := cfg.validateAddressing(); err != nil {
		return nil, err
	}
	if cfg.SoftAP != "" {
		cfg.Subnet = softAPSubnet
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = netip.MustParsePrefix("192.168.1.0/24")
	}
	cfg.Subnet = cfg.Subnet.Masked()
	if !cfg.Subnet.Addr().Is4() || cfg.Subnet.Bits() > 30 {
		return nil, fmt.Errorf("netsim: subnet %v: need an IPv4 prefix of /30 or wider", cfg.Subnet)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewVirtual()
	}
	l := &LAN{
		cfg:    cfg,
		clock:  cfg.Clock,
		router: cfg.Subnet.Addr().Next(),
		bcast:  lastAddr(cfg.Subnet),
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x6e657473696d)), // "netsim"
		byName: map[string]*Host{},
		byMAC:  map[tcpip.LinkAddress]*Host{},
		byIP:   map[netip.Addr]*Host{},
		groups: map[*Host]int{},
		pairs:  map[[2]*Host]*path{},
		oneWay: map[[2]*Host]bool{},
	}
	l.next = l.router.Next()
	l.clock.SetSettle(l.settle)
	return l, nil
}

// settle runs after every clock event. gVisor hands each TCP segment, and
// each TCP timer, to processor goroutines of its own; before simulated time
// moves on, wait until the busy hosts' processors have drained their queues
// (stack.Pause returns only then), so that what they send is scheduled at the
// right instant. Hosts that only saw UDP and ARP are never busy: that path is
// synchronous and costs nothing here.
func (l *LAN) settle() {
	if !l.anyBusy.Load() {
		return // the common case, after a UDP or ARP event: no lock taken
	}
	for {
		l.mu.Lock()
		busy := l.busy
		l.busy = nil
		l.anyBusy.Store(false)
		l.mu.Unlock()
		if len(busy) == 0 {
			return
		}
		for _, h := range busy {
			h.lan.mu.Lock()
			s, on := h.stack, h.powered
			h.busyMark = false
			h.lan.mu.Unlock()
			if on && s != nil {
				s.Pause()
				s.Resume()
			}
		}
	}
}

// markBusy notes that h's stack may have work on its own goroutines; the
// caller holds l.mu.
func (l *LAN) markBusy(h *Host) {
	if !h.busyMark {
		h.busyMark = true
		l.busy = append(l.busy, h)
		l.anyBusy.Store(true)
	}
}

// Clock returns the LAN's simulated time.
func (l *LAN) Clock() *clock.Virtual { return l.clock }

// Subnet returns the LAN's prefix.
func (l *LAN) Subnet() netip.Prefix { return l.cfg.Subnet }

// Broadcast returns the subnet broadcast address, e.g. 192.168.1.255.
func (l *LAN) Broadcast() netip.Addr { return l.bcast }

// Router returns the router's address, the hosts' default gateway.
func (l *LAN) Router() netip.Addr { return l.router }

// Hosts returns the hosts in the order they were added.
func (l *LAN) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.hosts...)
}

// Host returns the host with the given name, or nil.
func (l *LAN) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byName[name]
}

// HostConfig describes a host to add.
type HostConfig struct {
	Name string
	// IP is the host's address; default: the next free one in the subnet.
	IP netip.Addr
	// Up and Down are the host's uplink and downlink.
	Up, Down Link
	// MTU of the host's interface, Ethernet header excluded; default the
	// LAN's. A frame larger than the receiver's MTU is dropped.
	MTU uint32
	// Off attaches the host powered off; PowerOn boots it.
	Off bool
	// Profile makes the host a Pico W on WiFi (join delay, power saving,
	// association loss); nil is a wired host.
	Profile *PicoW
	// Wire makes the host's network stack one outside netsim (an emulated
	// board's own, behind a model of its radio chip): frames for it go to
	// Wire, on the clock's goroutine; it sends with Host.Transmit, and
	// netsim's router answers its DHCP (see wire.go).
	Wire func(frame []byte)
}

// Close ends the LAN: every host is powered off, its stack destroyed with
// the stack's goroutines, and a capture is flushed. Nothing can be added
// afterwards. A LAN that is dropped without Close keeps its stacks' goroutines
// for the life of the process.
func (l *LAN) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	hosts := slices.Clone(l.hosts)
	l.mu.Unlock()
	for _, h := range hosts {
		h.PowerOff()
	}
	return l.StopCapture()
}

// AddHost attaches a powered-on host to the LAN.
func (l *LAN) AddHost(hc HostConfig) (*Host, error) {
	if err := hc.Up.Validate(); err != nil {
		return nil, fmt.Errorf("netsim: host %q uplink: %w", hc.Name, err)
	}
	if err := hc.Down.Validate(); err != nil {
		return nil, fmt.Errorf("netsim: host %q downlink: %w", hc.Name, err)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("netsim: the LAN is closed")
	}
	if hc.Name == "" {
		l.mu.Unlock()
		return nil, errors.New("netsim: a host needs a name")
	}
	if l.byName[hc.Name] != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("netsim: host %q already exists", hc.Name)
	}
	ip := hc.IP
	isAP := l.cfg.SoftAP != "" && hc.Name == l.cfg.SoftAP
	switch {
	case isAP:
		ip = l.router
	case ip.IsValid():
	case l.cfg.SoftAP != "":
		stations := 0
		for _, h := range l.hosts {
			if h.name != l.cfg.SoftAP {
				stations++
			}
		}
		if stations >= softAPStations {
			l.mu.Unlock()
			return nil, fmt.Errorf("netsim: host %q: a soft AP takes at most %d stations (%d of them with a lease at a time)", hc.Name, softAPStations, SoftAPLeases)
		}
		// The first eight stations are built at their first-boot leases;
		// more wait for one (see lease) at placeholder addresses after them.
		ip = softAPSubnet.Addr().Next()
		for range softAPBase - 1 {
			ip = ip.Next()
		}
		for l.byIP[ip] != nil {
			ip = ip.Next()
		}
	default:
		var ok bool
		if ip, ok = l.nextFree(); !ok {
			l.mu.Unlock()
			return nil, fmt.Errorf("netsim: host %q: subnet %v is full", hc.Name, l.cfg.Subnet)
		}
	}
	switch {
	case isAP:
	case !l.cfg.Subnet.Contains(ip) || ip == l.bcast:
		l.mu.Unlock()
		return nil, fmt.Errorf("netsim: host %q: address %v is not a host address of %v (subnet full?)", hc.Name, ip, l.cfg.Subnet)
	case ip == l.router || ip == l.cfg.Subnet.Addr():
		l.mu.Unlock()
		return nil, fmt.Errorf("netsim: host %q: address %v is reserved", hc.Name, ip)
	case l.byIP[ip] != nil:
		l.mu.Unlock()
		return nil, fmt.Errorf("netsim: host %q: address %v is taken by %q", hc.Name, ip, l.byIP[ip].name)
	}
	index := len(l.hosts)
	mtu := hc.MTU
	if mtu == 0 {
		mtu = l.cfg.MTU
	}
	h := &Host{lan: l, name: hc.Name, index: index, ip: ip, mac: macFor(index), up: newPath(hc.Up), down: newPath(hc.Down), mtu: mtu}
	if hc.Profile != nil {
		p := hc.Profile.defaults()
		h.profile = &p
	}
	h.static = hc.IP.IsValid() || isAP
	if hc.Wire != nil {
		h.door = wire(hc.Wire)
	}
	if isAP {
		l.ap = h
	}
	l.hosts = append(l.hosts, h)
	l.ranked = false
	l.byName[h.name] = h
	l.byMAC[h.mac] = h
	l.byIP[ip] = h
	l.mu.Unlock()
	if hc.Off {
		return h, nil
	}
	if err := h.PowerOn(); err != nil {
		return nil, err
	}
	return h, nil
}

// rankNames gives each host its place in name order; the caller holds
// l.mu.
func (l *LAN) rankNames() {
	byName := slices.Clone(l.hosts)
	slices.SortFunc(byName, func(a, b *Host) int { return strings.Compare(a.name, b.name) })
	for i, h := range byName {
		h.nameRank = i
	}
	l.ranked = true
}

// SetLink changes a host's uplink, downlink or both, effective for the next
// frame.
func (l *LAN) SetLink(name string, dir Direction, link Link) error {
	if err := link.Validate(); err != nil {
		return fmt.Errorf("netsim: host %q: %w", name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.byName[name]
	if h == nil {
		return fmt.Errorf("netsim: no host %q", name)
	}
	if dir == Up || dir == Both {
		h.up = newPath(link)
	}
	if dir == Down || dir == Both {
		h.down = newPath(link)
	}
	return nil
}

// SetPair sets the link of frames from one host to another, in place of the
// receiver's downlink for them (the sender's uplink still applies). A zero
// Link removes the override.
func (l *LAN) SetPair(from, to string, link Link) error {
	if err := link.Validate(); err != nil {
		return fmt.Errorf("netsim: %s to %s: %w", from, to, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a, b := l.byName[from], l.byName[to]
	if a == nil || b == nil {
		return fmt.Errorf("netsim: SetPair: no host %q", map[bool]string{true: from, false: to}[a == nil])
	}
	if link == (Link{}) {
		delete(l.pairs, [2]*Host{a, b})
	} else {
		l.pairs[[2]*Host{a, b}] = newPath(link)
	}
	return nil
}

// Cut stops frames from one host to another, one way: to still hears from.
// Restore undoes it.
func (l *LAN) Cut(from, to string) error { return l.setCut(from, to, true) }

// Restore lets frames from one host reach another again after Cut.
func (l *LAN) Restore(from, to string) error { return l.setCut(from, to, false) }

func (l *LAN) setCut(from, to string, cut bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, b := l.byName[from], l.byName[to]
	if a == nil || b == nil {
		return fmt.Errorf("netsim: no host %q", map[bool]string{true: from, false: to}[a == nil])
	}
	if cut {
		l.oneWay[[2]*Host{a, b}] = true
		l.shape++
	} else {
		delete(l.oneWay, [2]*Host{a, b})
		l.shape++
	}
	return nil
}

// Partition splits the LAN: frames flow only between hosts of the same
// group. Hosts named in no group form one more group together. A new
// partition replaces the previous one.
func (l *LAN) Partition(groups ...[]string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := map[*Host]int{}
	for i, names := range groups {
		for _, name := range names {
			h := l.byName[name]
			if h == nil {
				return fmt.Errorf("netsim: partition: no host %q", name)
			}
			if _, dup := g[h]; dup {
				return fmt.Errorf("netsim: partition: host %q is in two groups", name)
			}
			g[h] = i + 1
		}
	}
	l.groups = g
	l.shape++
	return nil
}

// Heal ends the partition.
func (l *LAN) Heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.groups = map[*Host]int{}
	l.shape++
}

// Shape counts the changes of who can hear whom: a host's power, its
// radio's association, partitions and cuts. Connected gives the same answers
// while it stays the same, so a checker can keep what it worked out.
func (l *LAN) Shape() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shape
}

// Connected reports whether frames flow between two hosts: both powered on,
// associated if they have a radio, and on the same side of any partition.
func (l *LAN) Connected(a, b *Host) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	why, _ := l.cut(a, b)
	back, _ := l.cut(b, a)
	return why == "" && back == ""
}

// cut says why frames from src cannot reach dst, whatever their size, and
// which of dst's counters a dropped frame goes to; "" when they can. forward
// and Connected share it, so that they cannot disagree. The caller holds
// l.mu.
func (l *LAN) cut(src, dst *Host) (string, *uint64) {
	switch {
	case !dst.powered:
		return "off", &dst.counters.Down
	case dst.profile != nil && !dst.associated:
		return "not associated", &dst.counters.Unassociated
	case dst.fault != "" || src.fault != "":
		c := &dst.counters.Silent
		if src.fault != "" {
			c = &src.counters.Silent
		}
		return "radio " + dst.fault + src.fault, c
	case l.apDown():
		return "the soft AP is off", &dst.counters.Unassociated
	case l.groups[src] != l.groups[dst] || l.oneWay[[2]*Host{src, dst}]:
		return "partition", &dst.counters.Partitioned
	}
	return "", nil
}

// transmit takes one Ethernet frame from src and schedules its deliveries.
func (l *LAN) transmit(src *Host, frame []byte) {
	if len(frame) < header.EthernetMinimumSize {
		return
	}
	dst := header.Ethernet(frame).DestinationAddress()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !src.powered {
		// The resets a stack sends as PowerOff destroys it: a board without
		// power sends nothing (and the order gVisor tears endpoints down in
		// is a map's, so letting them out would make runs differ).
		return
	}
	now := l.clock.Now()
	src.counters.Sent++
	miss := &l.miss
	miss.reset(l.capture != nil)
	if miss.on && !l.ranked {
		l.rankNames()
	}
	if l.apDown() || (src.profile != nil && !src.associated) {
		src.counters.Unassociated++
		if miss.on {
			miss.all = src.name + " is not associated"
			l.capture.packet(now, frame, miss.comment())
		}
		return
	}
	if src.fault != "" { // the radio says joined; nothing leaves it
		src.counters.Silent++
		return
	}
	if src.wedge != 0 || src.wedgeAll {
		if port, ok := synAckFrom(frame); ok && (src.wedgeAll || (src.opened[port] != 0 && src.opened[port] <= src.wedge)) {
			src.counters.Wedged++ // the SYN-ACK of a wedged listener is never sent
			if on := l.cfg.OnUnanswered; on != nil {
				l.clock.AfterFunc(0, func() { on(src, port) })
			}
			return
		}
	}
	frame = l.fanOut(src, dst, frame, now)
	l.post()
	if miss.on {
		l.capture.packet(now, frame, miss.comment())
	}
}

// fanOut takes a frame across the sender's uplink and schedules its copies,
// noting in l.miss who does not get one; it returns the frame as the
// uplink left it (a bit flipped, maybe), which the capture shows. The
// caller holds l.mu.
func (l *LAN) fanOut(src *Host, dst tcpip.LinkAddress, frame []byte, now time.Duration) []byte {
	miss := &l.miss
	up := src.up.pass(l.rng, now, len(frame))
	switch up.drop {
	case dropLoss:
		src.counters.Lost++
		if miss.on {
			miss.add(nil, "lost on "+src.name+"'s uplink")
		}
		return frame
	case dropQueue:
		src.counters.Overflow++
		if miss.on {
			miss.add(nil, src.name+"'s uplink queue full")
		}
		return frame
	}
	if up.corrupt {
		frame = flipBit(l.rng, frame)
		src.counters.Corrupted++
	}
	if dst == header.EthernetBroadcastAddress {
		// The sender's own stack loops broadcasts back by itself.
		for _, h := range l.hosts {
			if h != src {
				miss.add(h, l.forward(src, h, frame, now, up, true))
			}
		}
		return frame
	}
	if h := l.byMAC[dst]; h != nil && h != src {
		miss.add(h, l.forward(src, h, frame, now, up, false))
	}
	return frame
}

// forward decides one receiver's copy of a frame that crossed the sender's
// uplink with verdict up, and says why it was dropped ("" if it was not);
// the caller holds l.mu.
func (l *LAN) forward(src, dst *Host, frame []byte, now time.Duration, up verdict, broadcast bool) string {
	if why, counter := l.cut(src, dst); why != "" {
		*counter++
		return why
	}
	switch {
	case uint32(len(frame)) > dst.mtu+header.EthernetMinimumSize:
		dst.counters.TooBig++
		return "larger than its MTU"
	}
	p := dst.down
	if pair := l.pairs[[2]*Host{src, dst}]; pair != nil {
		p = pair
	}
	down := p.pass(l.rng, now+up.delay, len(frame))
	switch down.drop {
	case dropLoss:
		dst.counters.Lost++
		return "loss"
	case dropQueue:
		dst.counters.Overflow++
		return "queue full"
	}
	if down.corrupt {
		frame = flipBit(l.rng, frame)
		dst.counters.Corrupted++
	}
	if up.reordered || down.reordered {
		dst.counters.Reordered++
	}
	delay := up.delay + down.delay
	if dst.profile != nil {
		delay += dst.profile.powerSaveDelay(l.rng, now+up.delay, broadcast)
	}
	l.schedule(dst, frame, delay)
	if up.duplicate || down.duplicate {
		dst.counters.Duplicated++
		l.schedule(dst, frame, delay)
	}
	return ""
}

// schedule adds one receiver's copy of the frame being transmitted, due
// after delay, to the batch of that instant; the caller holds l.mu.
// Copies due at the same instant make one event (see post), so a broadcast
// to N boards costs one timer, not N.
func (l *LAN) schedule(dst *Host, frame []byte, delay time.Duration) {
	d := l.batch[delay]
	if d == nil {
		d = l.spare
		if d != nil {
			l.spare = d.next
			d.next = nil
		} else {
			d = &delivery{lan: l}
		}
		if l.batch == nil {
			l.batch = map[time.Duration]*delivery{}
		}
		l.batch[delay] = d
		d.delay = delay
		l.batches = append(l.batches, d)
	}
	d.to = append(d.to, copyTo{dst, dst.gen, frame})
}

// post sends the batches of the frame just transmitted to the clock, in
// the order of their first receivers: as the copies would have been one by
// one, since copies due at one instant were posted one after another with
// nothing between them. The caller holds l.mu.
func (l *LAN) post() {
	for _, d := range l.batches {
		l.clock.Post(d.delay, d)
	}
	clear(l.batch)
	clear(l.batches)
	l.batches = l.batches[:0]
}

// delivery is the copies of one frame due at one instant. Deliveries are
// recycled through LAN.spare: a run makes millions.
type delivery struct {
	lan   *LAN
	delay time.Duration
	to    []copyTo
	next  *delivery
	udp   udpFrame // the last frame parsed for the fast path
}

// copyTo is one receiver's copy of a frame: its own bytes when the link
// corrupted them.
type copyTo struct {
	dst   *Host
	gen   uint64
	frame []byte
}

func (d *delivery) Fire() {
	l := d.lan
	for i, c := range d.to {
		if i > 0 && isTCP(d.to[i-1].frame) {
			// A duplicated segment: the stack's processors take the
			// first before the second, as two events would have.
			l.settle()
		}
		if d.udp.frame == nil || &d.udp.frame[0] != &c.frame[0] || len(d.udp.frame) != len(c.frame) {
			d.udp.parse(c.frame)
		}
		c.dst.deliver(c.gen, c.frame, &d.udp)
	}
	clear(d.to)
	d.to = d.to[:0]
	d.udp = udpFrame{}
	l.mu.Lock()
	d.next, l.spare = l.spare, d
	l.mu.Unlock()
}

// macFor gives host i a locally administered unicast MAC.
func macFor(i int) tcpip.LinkAddress {
	return tcpip.LinkAddress([]byte{0x02, 0x50, 0x49, byte(i >> 16), byte(i >> 8), byte(i)})
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// newPacket wraps a received frame for injection into a stack.
func newPacket(frame []byte) *stack.PacketBuffer {
	return stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
}
