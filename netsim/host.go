package netsim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/picosim/picosim/netsim/clock"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// nicID is the one NIC of every host.
const nicID tcpip.NICID = 1

// Host is one machine on the LAN, with its own gVisor stack.
type Host struct {
	lan   *LAN
	name  string
	index int
	ip    netip.Addr
	// nameRank is the host's place among the LAN's hosts in name order,
	// for the comments of a capture.
	nameRank int
	mac      tcpip.LinkAddress

	// Guarded by lan.mu.
	up, down *path
	mtu      uint32
	counters Counters
	powered  bool
	gen      uint64 // bumped at every power-off: stale timers and frames die
	boots    uint64
	busyMark bool // in lan.busy

	profile    *PicoW // the radio's profile; nil for a wired host
	associated bool
	joins      uint64 // joins begun this boot: a later one voids an earlier
	fault      string // FaultSilent, FaultStall or ""
	lease      uint64 // the soft AP's boot (LAN.apBoots) whose lease the station holds
	// leasedAt: the lease was given or last renewed; leftAt: the station
	// last left the network (its lease runs out a day after its renewal).
	leasedAt, leftAt time.Duration
	// listens counts the TCP listeners opened; opened[port] is the count
	// when the port's listener opened; a listener whose count is at most
	// wedge never answers a SYN (FaultNoSynAck).
	listens, wedge uint64
	opened         map[uint16]uint64
	wedgeAll       bool // a door host: every SYN-ACK, until Unwedge
	static         bool // its address was given, not leased
	// dozing: the board sleeps until then and its radio does not wake it
	// (PicoW.NoWakeOnWLAN); held are the frames waiting in the radio.
	dozing time.Duration
	held   [][]byte

	stack *stack.Stack
	port  *port
	udp   []*UDPConn // the stack's sockets of ListenUDP, for the fast path: a handful
	// pending opens the sockets made before the stack was (needStack), in
	// the order they were made.
	pending   []func(*stack.Stack)
	listeners []*TCPListener // made before the stack, to refuse a second on a port
	stackSeed uint64
	door      outside // a door or wire host has no stack here: frames go outside
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// MAC returns the host's link address.
func (h *Host) MAC() tcpip.LinkAddress { return h.mac }

// LAN returns the LAN the host is on.
func (h *Host) LAN() *LAN { return h.lan }

// Stack returns the host's current gVisor stack, building it if need be
// (nil while the host is off); a power cycle replaces it.
func (h *Host) Stack() *stack.Stack {
	s, _ := h.needStack()
	return s
}

// Counters returns what the LAN did with the host's frames so far.
func (h *Host) Counters() Counters {
	h.lan.mu.Lock()
	defer h.lan.mu.Unlock()
	return h.counters
}

// Powered reports whether the host is on.
func (h *Host) Powered() bool {
	h.lan.mu.Lock()
	defer h.lan.mu.Unlock()
	return h.powered
}

// PowerOff cuts the host's power: its stack is destroyed with everything
// in it, its pending timers never fire, and frames in flight to it are lost.
func (h *Host) PowerOff() {
	h.lan.mu.Lock()
	if !h.powered {
		h.lan.mu.Unlock()
		return
	}
	h.powered = false
	h.leftAt = h.lan.clock.Now()
	h.lan.shape++
	h.gen++
	for _, u := range h.udp { // the sockets die with the stack, and what they held
		u.closed = true
		u.q, u.head, u.queued = nil, 0, 0
	}
	h.udp, h.pending, h.listeners = nil, nil, nil
	h.wedge, h.opened, h.wedgeAll = 0, nil, false // a new boot, a new stack
	h.dozing, h.held = 0, nil
	s := h.stack
	h.stack, h.port = nil, nil
	var notes []func()
	if h == h.lan.ap {
		notes = h.lan.apChanged(false)
	}
	h.lan.mu.Unlock()
	if s != nil {
		s.Destroy()
	}
	for _, n := range notes {
		n()
	}
}

// PowerOn boots the host with a fresh stack (built when first needed, see
// needStack): empty ARP cache, no sockets.
func (h *Host) PowerOn() error {
	h.lan.mu.Lock()
	if h.lan.closed {
		h.lan.mu.Unlock()
		return errors.New("netsim: the LAN is closed")
	}
	if h.powered {
		h.lan.mu.Unlock()
		return nil
	}
	h.boots++
	seed := h.lan.cfg.Seed ^ uint64(h.index)<<32 ^ h.boots
	if h.door != nil {
		// A door's host has no stack: the namespace behind it is the
		// machine, with the address the door gave it.
		h.powerUp(nil, nil)
		return nil
	}
	var renumbered netip.Addr
	switch {
	case h.boots == 1 || h.static || h.lan.cfg.Addressing != NewEachBoot:
	case h.lan.ap != nil:
		h.lan.newMAC(h) // its next join asks the AP for a lease anew
	default:
		if old, ok := h.lan.renumber(h); ok {
			renumbered = old
		}
	}
	h.lan.mu.Unlock()
	if renumbered.IsValid() && h.lan.cfg.OnAddress != nil {
		defer h.lan.cfg.OnAddress(h, renumbered)
	}

	h.lan.mu.Lock()
	h.stackSeed = seed
	h.powerUp(nil, nil)
	if h.lan.cfg.GVisorOnly {
		_, err := h.needStack()
		return err
	}
	return nil
}

// needStack returns the host's stack, building it first if the host is on
// and has none yet; nil for a door's host, or one that is off. A stack is
// built when something needs it (a frame the fast path does not take, a
// unicast send, a TCP connection, Stack), not at power-on: a board that
// only hears and sends broadcasts never needs one, and a stack is 70 KiB
// (gVisor sizes each neighbour cache for 512 hosts), most of the memory of
// a simulated cluster of 1,000 boards. Building it later changes nothing a
// board can observe: it is seeded by the boot, not by when it is built, it
// sets no timer of its own until used, and the sockets made before it are
// opened on it in the order they were made (the fast-path tests compare
// captures against stacks built at power-on, GVisorOnly). Call it without
// l.mu held.
func (h *Host) needStack() (*stack.Stack, error) {
	l := h.lan
	l.mu.Lock()
	if !h.powered || h.door != nil || h.stack != nil {
		s := h.stack
		l.mu.Unlock()
		return s, nil
	}
	gen, seed, ip := h.gen, h.stackSeed, h.ip
	l.mu.Unlock()

	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol, tcp.NewProtocol},
		Clock:              &stackClock{host: h, gen: gen},
		RandSource:         &lockedSource{src: rand.NewPCG(seed, 0x737461636b)}, // "stack"
		// The "secure" source makes ISNs, ephemeral ports and timestamp
		// offsets: seeded too, so that a seed gives the same frames, byte
		// for byte (crypto/rand would change them on every run).
		SecureRNG: newSeededReader(seed),
	})
	p := &port{host: h, mtu: h.mtu + header.EthernetMinimumSize, mac: h.mac}
	if err := s.CreateNIC(nicID, ethernet.New(p)); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("netsim: host %q: create NIC: %v", h.name, err)
	}
	prefix := l.cfg.Subnet
	addr := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(ip.As4()), PrefixLen: prefix.Bits()},
	}
	if err := s.AddProtocolAddress(nicID, addr, stack.AddressProperties{}); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("netsim: host %q: add address: %v", h.name, err)
	}
	subnet, err := tcpip.NewSubnet(tcpip.AddrFrom4(prefix.Addr().As4()), tcpip.MaskFromBytes(net4Mask(prefix.Bits())))
	if err != nil {
		s.Destroy()
		return nil, fmt.Errorf("netsim: host %q: %v", h.name, err)
	}
	s.SetRouteTable([]tcpip.Route{
		{Destination: subnet, NIC: nicID},
		// A default route, as DHCP gives one: without it, sending to
		// 255.255.255.255 fails with "network unreachable".
		{Destination: header.IPv4EmptySubnet, Gateway: tcpip.AddrFrom4(l.router.As4()), NIC: nicID},
	})

	l.mu.Lock()
	if !h.powered || h.gen != gen || h.stack != nil {
		l.mu.Unlock()
		s.Destroy()
		return nil, fmt.Errorf("netsim: host %q lost power", h.name)
	}
	if h.ip != ip { // renumbered meanwhile (a lease ended)
		l.renumberStack(s, ip, h.ip)
	}
	h.stack, h.port = s, p
	pending := h.pending
	h.pending, h.listeners = nil, nil
	l.mu.Unlock()
	for _, open := range pending {
		open(s)
	}
	return s, nil
}

// powerUp finishes a power-on with the host's new stack; the caller holds
// l.mu, which it releases.
func (h *Host) powerUp(s *stack.Stack, p *port) {
	h.stack, h.port, h.powered = s, p, true
	h.lan.shape++
	h.udp, h.pending, h.listeners = nil, nil, nil
	h.wedge, h.opened, h.wedgeAll = 0, nil, false // a new boot, a new stack
	if h.profile != nil {
		h.join()
	}
	h.lan.scheduleExpiry(h)
	var notes []func()
	if h == h.lan.ap && h.profile == nil {
		notes = h.lan.apChanged(true) // a Pico W AP is up once its radio is: see join
	}
	h.lan.mu.Unlock()
	for _, n := range notes {
		n()
	}
}

// deliver injects a frame scheduled for generation gen of the host; f is
// the frame parsed for the fast path.
func (h *Host) deliver(gen uint64, frame []byte, f *udpFrame) {
	h.lan.mu.Lock()
	if !h.powered || h.gen != gen {
		h.counters.Down++
		h.lan.mu.Unlock()
		return
	}
	if h.dozing > 0 {
		if len(h.held) < SleepHeldFrames {
			h.held = append(h.held, bytes.Clone(frame))
		} else {
			h.counters.Overflow++
		}
		h.lan.mu.Unlock()
		return
	}
	h.counters.Delivered++
	if door := h.door; door != nil {
		h.lan.mu.Unlock()
		door.write(frame)
		return
	}
	if u := h.fastUDP(f); u != nil {
		tell := u.push(f.payload, f.src) && u.onReadable != nil
		h.lan.mu.Unlock()
		if tell {
			u.onReadable()
		}
		return
	}
	if h.stack == nil {
		if h.unheard(frame, f) {
			h.lan.mu.Unlock()
			return
		}
		h.lan.mu.Unlock()
		if s, err := h.needStack(); s == nil || err != nil {
			return
		}
		h.lan.mu.Lock()
		if !h.powered || h.gen != gen {
			h.lan.mu.Unlock()
			return
		}
	}
	if isTCP(frame) {
		h.lan.markBusy(h)
	}
	d := h.port.dispatcher
	h.lan.mu.Unlock()
	pkt := newPacket(frame)
	d.DeliverNetworkPacket(0, pkt) // the Ethernet layer reads the type
	pkt.DecRef()
}

// synAckFrom returns the source port of an Ethernet frame that is a TCP
// SYN-ACK over IPv4.
func synAckFrom(frame []byte) (uint16, bool) {
	if !isTCP(frame) {
		return 0, false
	}
	ip := frame[header.EthernetMinimumSize:]
	ihl := int(ip[0]&0x0f) * 4
	if ihl < header.IPv4MinimumSize || len(ip) < ihl+header.TCPMinimumSize {
		return 0, false
	}
	tcp := header.TCP(ip[ihl:])
	if f := tcp.Flags(); f&header.TCPFlagSyn != 0 && f&header.TCPFlagAck != 0 {
		return tcp.SourcePort(), true
	}
	return 0, false
}

// isTCP reports whether an Ethernet frame carries IPv4 TCP.
func isTCP(frame []byte) bool {
	const ethType, ipProto = 12, header.EthernetMinimumSize + 9
	return len(frame) > ipProto && frame[ethType] == 0x08 && frame[ethType+1] == 0x00 && frame[ipProto] == 6
}

func net4Mask(bits int) []byte {
	m := ^uint32(0) << (32 - bits)
	return []byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
}

// stackClock is the LAN's clock as one boot of one host's stack sees it:
// timers set before a power-off never fire after it.
type stackClock struct {
	host *Host
	gen  uint64
}

var _ tcpip.Clock = (*stackClock)(nil)

// Epoch is the calendar date a simulation starts at, for the places that
// want one: gVisor's clock, captures, the control protocol's time_received.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *stackClock) Now() time.Time { return Epoch.Add(c.host.lan.clock.Now()) }

func (c *stackClock) NowMonotonic() tcpip.MonotonicTime {
	return tcpip.MonotonicTime{}.Add(c.host.lan.clock.Now())
}

func (c *stackClock) AfterFunc(d time.Duration, f func()) tcpip.Timer {
	return c.host.lan.clock.AfterFunc(d, func() {
		l := c.host.lan
		l.mu.Lock()
		alive := c.host.gen == c.gen
		if alive {
			l.markBusy(c.host) // a TCP timer wakes a processor goroutine
		}
		l.mu.Unlock()
		if alive {
			f()
		}
	})
}

var _ tcpip.Timer = clock.Timer(nil)

// seededReader is a deterministic io.Reader for the stack's SecureRNG,
// which several goroutines of a stack read.
type seededReader struct {
	mu  sync.Mutex
	src *rand.ChaCha8
}

func newSeededReader(seed uint64) *seededReader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "netsim secure rng")
	return &seededReader{src: rand.NewChaCha8(key)}
}

func (r *seededReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.src.Read(p)
}

// lockedSource makes a PCG a thread-safe math/rand.Source, as gVisor wants.
type lockedSource struct {
	mu  sync.Mutex
	src *rand.PCG
}

func (s *lockedSource) Int63() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.src.Uint64() >> 1)
}

func (s *lockedSource) Seed(int64) {}
