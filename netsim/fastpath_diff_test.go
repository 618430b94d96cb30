package netsim

// A differential test of the UDP fast path (fastudp.go) and of lazy stacks
// (needStack, unheard): the same LAN, built twice from the same seed, once
// with GVisorOnly and once without, is fed the same hostile sequence of raw
// frames, socket sends, power cycles and clock runs, and the two runs must
// be indistinguishable: the same capture byte for byte (it holds every
// frame the hosts send in answer: ARP replies, ICMP errors, resets), the
// same datagrams read by every socket (payload and source, in order, at the
// same instants), the same readiness callbacks, the same results of every
// call, and the same counters.
//
// Flags (go test ./netsim -run FastPath -args ...):
//
//	-fastpath.seeds=N      seeds of TestFastPathIsInvisible (default 200)
//	-fastpath.seed0=S      its first seed (default 0)
//	-fastpath.avoid=a,b    steer the random scenarios (and skip fuzz inputs)
//	                       away from the divergences already reported, to
//	                       hunt for others: arpbcast, loopport, port0,
//	                       ephemeral, slowqueue, notify, poweroff,
//	                       closedlisten, alias, or all
//	-fastpath.minimize     shrink the first divergent seed to the fewest
//	                       operations that still diverge, and log them

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picosim/picosim/netsim/clock"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

var (
	diffSeeds    = flag.Int("fastpath.seeds", 200, "seeds of TestFastPathIsInvisible")
	diffSeed0    = flag.Uint64("fastpath.seed0", 0, "first seed of TestFastPathIsInvisible")
	diffAvoid    = flag.String("fastpath.avoid", "", "known divergences to steer clear of, comma-separated, or all (see diffKnown)")
	diffMinimize = flag.Bool("fastpath.minimize", false, "minimize the first divergent seed")
)

// diffKnown are the divergences -fastpath.avoid can name.
var diffKnown = []string{"arpbcast", "loopport", "port0", "ephemeral", "slowqueue", "notify", "poweroff", "closedlisten", "alias"}

func diffAvoidSet(t testing.TB) map[string]bool {
	m := map[string]bool{}
	for _, a := range strings.Split(*diffAvoid, ",") {
		switch a = strings.TrimSpace(a); {
		case a == "":
		case a == "all":
			for _, k := range diffKnown {
				m[k] = true
			}
		case slices.Contains(diffKnown, a):
			m[a] = true
		default:
			t.Fatalf("-fastpath.avoid: unknown %q (want some of %v, or all)", a, diffKnown)
		}
	}
	return m
}

// ---------------------------------------------------------------------------
// The scenario: a LAN, its hosts and what happens to them.

// diffScenario is what one run plays; two runs of the same scenario differ
// only in gvisorOnly.
type diffScenario struct {
	seed  uint64
	ops   int             // operations after setup
	keep  func(int) bool  // nil: every operation; else only those it keeps (minimizing)
	avoid map[string]bool // known divergences not to trigger
	// frames, if not nil, are the frames to inject (the fuzz target's),
	// one an injection operation, in place of generated ones; ctl says how.
	frames []fuzzFrame
	// script, if not nil, is played on a plain LAN of hosts atk, h1 and h2
	// in place of drawn operations.
	script func(r *diffRun)
}

type fuzzFrame struct {
	ctl   byte
	frame []byte
}

// diffObs is what a run observed.
type diffObs struct {
	capture  []byte
	events   []string // everything the hosts' programs saw, in order
	counters []string
	ops      []string // the operations played, for a report
	knownHit bool     // a fuzzer's frame hit a divergence that avoid names
}

type readerKind int

const (
	readDrain    readerKind = iota // reads all on a zero-delay timer after each callback
	readOne                        // reads one datagram a callback (a loop-less handler)
	readLater                      // reads all 7 ms after each callback
	readNever                      // no callback; read once at the end
	readScribble                   // like drain, and uses each payload as scratch space once read
	readKinds
)

var readerNames = [...]string{"drain", "one", "later", "never", "scribble"}

type diffSock struct {
	name string
	host *Host
	port uint16
	kind readerKind
	conn *UDPConn // nil if ListenUDP failed
	boot uint64   // the host's boot it was made in
}

// alive reports whether s's host still runs the boot s was made in. A
// socket's callback also runs as PowerOff destroys a built stack (gVisor
// wakes the endpoints it closes, in the order of a map): the harness
// ignores those, a dead board runs no code.
func (s *diffSock) alive() bool {
	l := s.host.lan
	l.mu.Lock()
	defer l.mu.Unlock()
	return s.host.powered && s.host.boots == s.boot
}

type diffRun struct {
	sc    *diffScenario
	avoid map[string]bool
	rng   *rand.Rand
	lan   *LAN
	clk   *clock.Virtual
	hosts []*Host
	socks []*diffSock
	lns   []*TCPListener
	obs   diffObs
	fuzzI int
	off   []*Host // hosts powered off by an operation, to power on again
	// stormed: the clock fired more events than a run may (see run).
	stormed  bool
	tcpPorts map[string]bool // host/boot/port of the TCP listeners made, with avoid closedlisten
}

// run runs the clock for d, unless the run has gone on for more events
// than any scenario needs: a storm of frames that never lets simulated time
// move on (then it stops and says so, which the other path must match).
func (r *diffRun) run(d time.Duration) {
	const most = 200_000
	if r.stormed {
		return
	}
	if r.clk.RunUntil(r.clk.Now()+d, func() bool { return r.clk.Fired() > most }) {
		r.stormed = true
		r.logf("storm: more than %d events", most)
	}
}

func (r *diffRun) logf(format string, args ...any) {
	r.obs.events = append(r.obs.events, fmt.Sprintf("%v ", r.clk.Now())+fmt.Sprintf(format, args...))
}

func errText(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// socketPorts are the ports sockets are made on; closedPorts never get one.
var (
	socketPorts = []uint16{9, 37020, 5000, 68}
	closedPorts = []uint16{7, 1234, 65535}
)

// runDiff plays the scenario on a LAN built with or without GVisorOnly.
func runDiff(t testing.TB, sc *diffScenario, gvisorOnly bool) *diffObs {
	r := &diffRun{sc: sc, avoid: sc.avoid, rng: rand.New(rand.NewPCG(sc.seed, 0xd1ff))}
	rng := r.rng
	plain := sc.script != nil
	cfg := Config{Seed: sc.seed, GVisorOnly: gvisorOnly, Clock: clock.NewVirtual()}
	if !plain {
		switch rng.IntN(8) {
		case 0:
			cfg.Subnet = netip.MustParsePrefix("10.0.0.0/28")
		case 1:
			cfg.Subnet = netip.MustParsePrefix("172.16.0.0/16")
		}
		if rng.IntN(10) == 0 {
			cfg.SoftAP = "h1" // h1 is the network: 192.168.4.1, the gateway
		}
		switch rng.IntN(8) {
		case 0:
			cfg.Addressing = NewEachBoot
		case 1, 2:
			cfg.Addressing = NewAtExpiry
			cfg.Lease = []time.Duration{30 * time.Millisecond, 300 * time.Millisecond, time.Second}[rng.IntN(3)]
		}
	}
	r.clk = cfg.Clock
	cfg.OnAddress = func(h *Host, old netip.Addr) { r.logf("%s renumbered %v -> %v", h.name, old, h.IP()) }
	cfg.OnAssociation = func(h *Host, joined bool) { r.logf("%s associated %v", h.name, joined) }
	lan, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.lan = lan
	defer lan.Close()
	var capture bytes.Buffer
	if _, err := lan.StartCapture(&capture); err != nil {
		t.Fatal(err)
	}
	n := 3
	if !plain {
		n += rng.IntN(3)
	}
	for i := range n {
		hc := HostConfig{Name: "atk"}
		if i > 0 {
			hc.Name = fmt.Sprintf("h%d", i)
		}
		if i > 0 && !plain {
			hc.Off = rng.IntN(10) == 0
			if rng.IntN(10) == 0 {
				hc.MTU = 576
			}
			if rng.IntN(8) == 0 {
				hc.Profile = &PicoW{JoinMin: 5 * time.Millisecond, JoinMax: 30 * time.Millisecond,
					PowerSaveOff: rng.IntN(2) == 0, AssocLossEvery: []time.Duration{-1, 400 * time.Millisecond}[rng.IntN(2)]}
			}
			if rng.IntN(6) == 0 {
				hc.Down = Link{Latency: time.Millisecond, Jitter: 500 * time.Microsecond,
					Loss: 0.05, Duplicate: 0.1, Reorder: 0.1, Corrupt: 0.1}
			}
		}
		h, err := lan.AddHost(hc)
		if err != nil {
			t.Fatal(err)
		}
		r.hosts = append(r.hosts, h)
	}

	nops := sc.ops
	if sc.frames != nil {
		nops = 1 << 30 // until the fuzzer's frames are all played
	}
	if sc.script != nil {
		nops = 0
		sc.script(r)
	}
	for i := 0; i < nops; i++ {
		if sc.frames != nil && r.fuzzI >= len(sc.frames) {
			break
		}
		desc, do := r.nextOp(i)
		if sc.keep != nil && !sc.keep(i) {
			continue
		}
		r.obs.ops = append(r.obs.ops, fmt.Sprintf("op %d: %s", i, desc))
		r.logf("op %d", i)
		do()
	}
	if sc.frames != nil {
		r.run(time.Second) // a fuzzer's run: short, it makes thousands
	} else {
		r.run(3 * time.Second)
	}
	for _, s := range r.socks {
		if s.conn != nil && (s.alive() || !r.avoid["poweroff"]) {
			r.read(s, -1, "end")
		}
	}
	for _, h := range r.hosts {
		r.obs.counters = append(r.obs.counters, fmt.Sprintf("%s %+v", h.name, h.Counters()))
	}
	if err := lan.StopCapture(); err != nil {
		t.Fatal(err)
	}
	r.obs.capture = capture.Bytes()
	return &r.obs
}

// read reads up to n datagrams (all if n < 0) from s, noting them.
func (r *diffRun) read(s *diffSock, n int, why string) {
	var got []string
	for i := 0; n < 0 || i < n; i++ {
		p, from, ok := s.conn.ReadFrom()
		if !ok {
			break
		}
		sum := fnv.New64a()
		sum.Write(p)
		head := p[:min(len(p), 16)]
		got = append(got, fmt.Sprintf("%s read (%s) from %v: %d bytes %x.. fnv %x", s.name, why, from, len(p), head, sum.Sum64()))
		if s.kind == readScribble {
			for i := range p {
				p[i] ^= 0xff // "valid until the next call": the caller's meanwhile
			}
		}
	}
	if r.avoid["slowqueue"] {
		// What one read takes, but in no particular order: the fast path
		// and gVisor queue datagrams apart, and the order of the two
		// queues is a known divergence.
		slices.Sort(got)
	}
	for _, g := range got {
		r.logf("%s", g)
	}
}

// listen makes a socket with a reader of the given kind.
func (r *diffRun) listen(h *Host, port uint16, kind readerKind) {
	h.lan.mu.Lock()
	boot := h.boots
	h.lan.mu.Unlock()
	s := &diffSock{name: fmt.Sprintf("%s:%d#%d/%s", h.name, port, len(r.socks), readerNames[kind]), host: h, port: port, kind: kind, boot: boot}
	var onReadable func()
	pending := false
	after := func(d time.Duration, n int, why string) func() {
		return func() {
			if !s.alive() {
				return
			}
			if r.avoid["notify"] {
				// A reader that tells every callback from the last is
				// blind to how many there were.
				if pending {
					return
				}
				pending = true
			} else {
				r.logf("%s readable", s.name)
			}
			r.clk.AfterFunc(d, func() {
				pending = false
				if s.alive() || !r.avoid["poweroff"] {
					r.read(s, n, why)
				}
			})
		}
	}
	switch kind {
	case readDrain:
		onReadable = after(0, -1, "drain")
	case readOne:
		onReadable = after(0, 1, "one")
	case readLater:
		onReadable = after(7*time.Millisecond, -1, "later")
	case readScribble:
		onReadable = after(0, -1, "scribble")
	}
	c, err := h.ListenUDP(port, onReadable)
	r.logf("listen %s: %s", s.name, errText(err))
	if err == nil {
		s.conn = c
	}
	r.socks = append(r.socks, s)
}

func (r *diffRun) pick(hs []*Host) *Host { return hs[r.rng.IntN(len(hs))] }

func (r *diffRun) powered() []*Host {
	var on []*Host
	for _, h := range r.hosts {
		if h.Powered() {
			on = append(on, h)
		}
	}
	return on
}

// nextOp draws operation i: it draws the same numbers whether or not the
// operation is then played, so that leaving one out (minimizing) changes
// the others as little as possible.
func (r *diffRun) nextOp(i int) (string, func()) {
	rng := r.rng
	if i < 2*len(r.hosts) && r.sc.frames == nil || i < len(r.hosts) {
		// Setup: sockets and listeners on every host.
		h := r.hosts[i%len(r.hosts)]
		return r.socketOp(h, rng.IntN(8) == 0)
	}
	if r.sc.frames != nil {
		if rng.IntN(4) != 0 {
			ff := r.sc.frames[r.fuzzI]
			r.fuzzI++
			return r.fuzzInject(ff)
		}
	}
	switch k := rng.IntN(104); {
	case k >= 100:
		return r.lanOp(k)
	case k < 55 && r.sc.frames == nil:
		inj := r.injector()
		frame := r.genFrame(inj)
		return fmt.Sprintf("inject from %s: %x", inj.name, frame), func() { r.lan.transmit(inj, frame) }
	case k < 58 && r.sc.frames == nil:
		inj := r.injector()
		a, b := r.genFragments()
		times := 1 + rng.IntN(3)
		return fmt.Sprintf("inject from %s fragments %x and %x (%d times)", inj.name, a, b, times), func() {
			for range times {
				r.lan.transmit(inj, a)
				if b != nil {
					r.lan.transmit(inj, b)
				}
			}
		}
	case k < 70:
		d := []time.Duration{0, 0, time.Microsecond, time.Millisecond, 5 * time.Millisecond}[rng.IntN(5)]
		return fmt.Sprintf("run +%v", d), func() { r.run(d) }
	case k < 74:
		d := []time.Duration{100 * time.Millisecond, time.Second, 2500 * time.Millisecond}[rng.IntN(3)]
		return fmt.Sprintf("run +%v", d), func() { r.run(d) }
	case k < 86:
		return r.writeOp()
	case k < 90:
		return r.socketOp(r.pick(r.hosts), rng.IntN(3) == 0)
	case k < 92:
		if len(r.socks) == 0 {
			return "nothing", func() {}
		}
		s := r.socks[rng.IntN(len(r.socks))]
		return "close " + s.name, func() {
			if s.conn != nil {
				s.conn.Close()
			}
		}
	case k < 94:
		if len(r.lns) == 0 {
			return "nothing", func() {}
		}
		j := rng.IntN(len(r.lns))
		if r.avoid["closedlisten"] {
			return "nothing", func() {}
		}
		return fmt.Sprintf("close TCP listener %d", j), func() {
			if l := r.lns[j]; l != nil {
				l.Close()
			}
		}
	case k < 96:
		return r.powerOp()
	case k < 98:
		return r.dialOp()
	default:
		h := r.pick(r.hosts)
		src := netip.AddrPortFrom(r.addrChoice(h), r.portChoice(true))
		dst := netip.AddrPortFrom([]netip.Addr{r.lan.bcast, limitedBroadcast, r.pick(r.hosts).IP()}[rng.IntN(3)], r.portChoice(true))
		payload := r.payload()
		if r.knownTrigger(appendUDPFrame(h.mac, header.EthernetBroadcastAddress, src, dst, 0, payload)) {
			dst = netip.AddrPortFrom(dst.Addr(), closedPorts[0])
		}
		return fmt.Sprintf("%s forges %v -> %v (%d bytes)", h.name, src, dst, len(payload)), func() {
			r.logf("forge: %s", errText(h.Forge(src, dst, payload)))
		}
	}
}

// lanOp changes who hears whom, a link, or builds a stack by asking for it.
func (r *diffRun) lanOp(k int) (string, func()) {
	rng := r.rng
	a, b := r.pick(r.hosts), r.pick(r.hosts)
	switch k {
	case 100:
		if rng.IntN(2) == 0 {
			return "heal", func() { r.lan.Heal() }
		}
		return fmt.Sprintf("partition %s from the rest", a.name), func() { r.lan.Partition([]string{a.name}) }
	case 101:
		if rng.IntN(2) == 0 {
			return fmt.Sprintf("restore %s to %s", a.name, b.name), func() { r.lan.Restore(a.name, b.name) }
		}
		return fmt.Sprintf("cut %s to %s", a.name, b.name), func() { r.lan.Cut(a.name, b.name) }
	case 102:
		link := []Link{{}, {Latency: 3 * time.Millisecond}, {Duplicate: 0.5}, {Reorder: 0.5, ReorderDelay: 2 * time.Millisecond}, {Corrupt: 0.3}, {Loss: 0.3}}[rng.IntN(6)]
		dir := []Direction{Up, Down, Both}[rng.IntN(3)]
		return fmt.Sprintf("set %s's link %v to %+v", a.name, dir, link), func() { r.lan.SetLink(a.name, dir, link) }
	}
	return fmt.Sprintf("ask for %s's stack", a.name), func() {
		if r.avoid["poweroff"] && !a.Powered() {
			return
		}
		r.logf("%s has a stack: %v", a.name, a.Stack() != nil)
	}
}

func (r *diffRun) injector() *Host {
	if on := r.powered(); len(on) > 0 && r.rng.IntN(4) == 0 {
		return r.pick(on)
	}
	return r.hosts[0] // atk is never powered off
}

// socketOp opens a UDP socket (and sometimes a TCP listener) on h.
func (r *diffRun) socketOp(h *Host, tcp bool) (string, func()) {
	rng := r.rng
	port := socketPorts[rng.IntN(len(socketPorts))]
	if rng.IntN(12) == 0 && !r.avoid["ephemeral"] {
		port = 0
	}
	kind := readerKind(rng.IntN(int(readKinds)))
	if kind == readOne && r.avoid["notify"] || kind == readScribble && r.avoid["alias"] {
		kind = readDrain
	}
	tport := []uint16{80, 23, 9}[rng.IntN(3)]
	desc := fmt.Sprintf("%s listens on UDP %d (%s)", h.name, port, readerNames[kind])
	if tcp {
		desc += fmt.Sprintf(" and TCP %d", tport)
	}
	return desc, func() {
		r.listen(h, port, kind)
		if tcp && r.avoid["closedlisten"] {
			// A refused listen draws from gVisor's random sources too.
			h.lan.mu.Lock()
			key := fmt.Sprintf("%s/%d/%d", h.name, h.boots, tport)
			h.lan.mu.Unlock()
			if r.tcpPorts[key] {
				return
			}
			if r.tcpPorts == nil {
				r.tcpPorts = map[string]bool{}
			}
			r.tcpPorts[key] = true
		}
		if tcp {
			j := len(r.lns)
			l, err := h.ListenTCP(tport, func(c *TCPConn) {
				r.logf("%s accepted TCP %d#%d from %v", h.name, tport, j, c.RemoteAddr())
				c.OnData = func(p []byte) { r.logf("%s TCP %d#%d got %q", h.name, tport, j, p); c.Write(p) }
				c.OnClose = func() { r.logf("%s TCP %d#%d closed", h.name, tport, j) }
			})
			r.logf("%s listen TCP %d#%d: %s", h.name, tport, j, errText(err))
			r.lns = append(r.lns, l)
		}
	}
}

func (r *diffRun) powerOp() (string, func()) {
	if len(r.off) > 0 && r.rng.IntN(2) == 0 {
		h := r.off[0]
		r.off = r.off[1:]
		return "power on " + h.name, func() {
			r.logf("power on %s: %s", h.name, errText(h.PowerOn()))
		}
	}
	h := r.hosts[1+r.rng.IntN(len(r.hosts)-1)]
	r.off = append(r.off, h)
	return "power off " + h.name, func() { h.PowerOff() }
}

func (r *diffRun) dialOp() (string, func()) {
	from, to := r.pick(r.hosts), r.pick(r.hosts)
	port := []uint16{80, 23, 9, 1234}[r.rng.IntN(4)]
	msg := fmt.Sprintf("hello %d", r.rng.IntN(1000))
	return fmt.Sprintf("%s dials %s TCP %d", from.name, to.name, port), func() {
		if r.avoid["poweroff"] && !from.Powered() {
			return
		}
		from.DialTCP(netip.AddrPortFrom(to.IP(), port), func(c *TCPConn, err error) {
			r.logf("%s dial %s:%d: %s", from.name, to.name, port, errText(err))
			if err != nil {
				return
			}
			c.OnData = func(p []byte) { r.logf("%s dial got %q", from.name, p) }
			c.OnClose = func() { r.logf("%s dial closed", from.name) }
			c.Write([]byte(msg))
			c.CloseWrite()
		})
	}
}

// writeOp sends a datagram from one of the sockets.
func (r *diffRun) writeOp() (string, func()) {
	rng := r.rng
	if len(r.socks) == 0 {
		return "nothing", func() {}
	}
	s := r.socks[rng.IntN(len(r.socks))]
	var to netip.Addr
	switch rng.IntN(7) {
	case 0, 1:
		to = r.lan.bcast
	case 2, 3:
		to = limitedBroadcast
	case 4:
		to = r.pick(r.hosts).IP()
	case 5:
		to = s.host.IP()
	default:
		to = lastAddr(r.lan.cfg.Subnet).Prev()
	}
	port := s.port
	switch rng.IntN(6) {
	case 0:
		port = socketPorts[rng.IntN(len(socketPorts))]
	case 1:
		port = closedPorts[rng.IntN(len(closedPorts))]
	case 2:
		port = 0
	}
	bcast := to == r.lan.bcast || to == limitedBroadcast
	if port == 0 && (r.avoid["port0"] || s.port == 0 && r.avoid["ephemeral"]) {
		port = socketPorts[0]
	}
	if bcast && port != s.port && port != 0 && r.avoid["loopport"] {
		port = s.port
		if port == 0 {
			port = socketPorts[0]
		}
	}
	payload := r.payload()
	if rng.IntN(20) == 0 && !r.avoid["slowqueue"] {
		payload = make([]byte, []int{1473, 2000, 4000}[rng.IntN(3)]) // fragmented by gVisor
		for i := range payload {
			payload[i] = byte(i)
		}
	}
	if r.avoid["slowqueue"] && len(payload) > int(s.host.mtu)-28 {
		payload = payload[:int(s.host.mtu)-28] // gVisor would fragment it
	}
	dst := netip.AddrPortFrom(to, port)
	return fmt.Sprintf("%s writes %d bytes to %v", s.name, len(payload), dst), func() {
		if s.conn == nil {
			return
		}
		r.logf("%s write to %v: %s", s.name, dst, errText(s.conn.WriteTo(payload, dst)))
	}
}

func (r *diffRun) payload() []byte {
	rng := r.rng
	n := rng.IntN(48)
	switch rng.IntN(12) {
	case 0:
		n = 0
	case 1:
		n = 1472
	case 2:
		n = 548
	}
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// ---------------------------------------------------------------------------
// Frames.

var (
	nobodyMAC = tcpip.LinkAddress("\x02\x50\x49\xff\xff\xfe") // nobody's
	multiMAC  = tcpip.LinkAddress("\x01\x00\x5e\x00\x00\x01")
)

// addrChoice draws an IPv4 source or destination, hostile ones included,
// from the point of view of host v.
func (r *diffRun) addrChoice(v *Host) netip.Addr {
	rng := r.rng
	l := r.lan
	switch rng.IntN(20) {
	case 0, 1, 2, 3, 4, 5:
		return r.pick(r.hosts).IP()
	case 6, 7:
		return v.IP()
	case 8:
		return l.bcast
	case 9:
		return limitedBroadcast
	case 10:
		return netip.AddrFrom4([4]byte{0, 0, 0, 0})
	case 11:
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case 12:
		return netip.AddrFrom4([4]byte{224, 0, 0, byte(1 + rng.IntN(255))})
	case 13:
		return l.router
	case 14:
		return l.cfg.Subnet.Addr() // the network's own address
	case 15:
		return netip.AddrFrom4([4]byte{10, 99, 1, 2})
	case 16:
		return netip.AddrFrom4([4]byte{0, 1, 2, 3})
	case 17:
		return netip.AddrFrom4([4]byte{240, 0, 0, 1})
	case 18:
		return lastAddr(l.cfg.Subnet).Prev() // nobody's, in the subnet
	default:
		return netip.AddrFrom4([4]byte{169, 254, 7, 7})
	}
}

func (r *diffRun) portChoice(sockets bool) uint16 {
	rng := r.rng
	switch k := rng.IntN(10); {
	case k < 6 && sockets:
		return socketPorts[rng.IntN(len(socketPorts))]
	case k < 8:
		return closedPorts[rng.IntN(len(closedPorts))]
	case k < 9:
		return 0
	default:
		return uint16(rng.Uint32())
	}
}

// dstMAC draws the Ethernet destination of a frame for v.
func (r *diffRun) dstMAC(v *Host, ipDst netip.Addr) tcpip.LinkAddress {
	rng := r.rng
	bc := ipDst == r.lan.bcast || ipDst == limitedBroadcast || ipDst.IsMulticast()
	switch k := rng.IntN(20); {
	case k == 0:
		return nobodyMAC
	case k == 1:
		return multiMAC
	case k < 4:
		if bc {
			return v.mac
		}
		return header.EthernetBroadcastAddress
	case bc:
		return header.EthernetBroadcastAddress
	default:
		return v.mac
	}
}

func ethFrame(dst, src tcpip.LinkAddress, etype uint16, payload []byte) []byte {
	f := make([]byte, header.EthernetMinimumSize, header.EthernetMinimumSize+len(payload))
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:], etype)
	return append(f, payload...)
}

type ipv4Spec struct {
	tos, ttl, proto uint8
	id              uint16
	flags           uint8  // the top 3 bits of the flags/offset word, as header.IPv4Flag*
	off             uint16 // in bytes, a multiple of 8
	src, dst        netip.Addr
	options         []byte // a multiple of 4 bytes
	badSum          bool
	lenDelta        int // added to the total length
	version         byte
}

func buildIPv4(s ipv4Spec, payload []byte) []byte {
	hl := header.IPv4MinimumSize + len(s.options)
	b := make([]byte, hl+len(payload))
	v := s.version
	if v == 0 {
		v = 4
	}
	b[0] = v<<4 | byte(hl/4)&0xf
	b[1] = s.tos
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)+s.lenDelta))
	binary.BigEndian.PutUint16(b[4:], s.id)
	binary.BigEndian.PutUint16(b[6:], uint16(s.flags)<<13|s.off/8)
	b[8], b[9] = s.ttl, s.proto
	src, dst := s.src.As4(), s.dst.As4()
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	copy(b[20:], s.options)
	copy(b[hl:], payload)
	sum := ^checksum.Checksum(b[:hl], 0)
	if s.badSum {
		sum ^= 0x0100
	}
	binary.BigEndian.PutUint16(b[10:], sum)
	return b
}

func l4Sum(proto uint8, src, dst netip.Addr, seg []byte, length int) uint16 {
	return ^checksum.Checksum(seg, header.PseudoHeaderChecksum(tcpip.TransportProtocolNumber(proto),
		tcpip.AddrFrom4(src.As4()), tcpip.AddrFrom4(dst.As4()), uint16(length)))
}

// buildUDP makes a UDP datagram: sum 0 computes the checksum, 1 sends
// zero (none), 2 a wrong one, 3 0xffff as it is.
func buildUDP(src, dst netip.Addr, sport, dport uint16, payload []byte, lenDelta, sum int) []byte {
	u := make([]byte, header.UDPMinimumSize+len(payload))
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)+lenDelta))
	copy(u[8:], payload)
	switch sum {
	case 0, 2:
		c := l4Sum(17, src, dst, u, len(u))
		if c == 0 {
			c = 0xffff
		}
		if sum == 2 {
			c ^= 0x0010
			if c == 0 {
				c = 1
			}
		}
		binary.BigEndian.PutUint16(u[6:], c)
	case 3:
		binary.BigEndian.PutUint16(u[6:], 0xffff)
	}
	return u
}

func buildTCP(src, dst netip.Addr, sport, dport uint16, seq, ack uint32, flags uint8, payload []byte, bad bool) []byte {
	t := make([]byte, header.TCPMinimumSize+len(payload))
	header.TCP(t).Encode(&header.TCPFields{SrcPort: sport, DstPort: dport, SeqNum: seq, AckNum: ack,
		DataOffset: header.TCPMinimumSize, Flags: header.TCPFlags(flags), WindowSize: 4096})
	copy(t[header.TCPMinimumSize:], payload)
	c := l4Sum(6, src, dst, t, len(t))
	if bad {
		c ^= 0x0020
	}
	binary.BigEndian.PutUint16(t[16:], c)
	return t
}

func buildICMP(typ, code uint8, rest []byte, bad bool) []byte {
	m := make([]byte, 4, 4+len(rest))
	m[0], m[1] = typ, code
	m = append(m, rest...)
	c := ^checksum.Checksum(m, 0)
	if bad {
		c ^= 0x0040
	}
	binary.BigEndian.PutUint16(m[2:], c)
	return m
}

func buildARP(op uint16, sha tcpip.LinkAddress, spa netip.Addr, tha tcpip.LinkAddress, tpa netip.Addr) []byte {
	a := make([]byte, header.ARPSize)
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:14], sha)
	s, t := spa.As4(), tpa.As4()
	copy(a[14:18], s[:])
	copy(a[18:24], tha)
	copy(a[24:28], t[:])
	return a
}

// genFrame draws one hostile frame sent by inj.
func (r *diffRun) genFrame(inj *Host) []byte {
	for range 20 {
		f := r.genFrameOnce(inj)
		if !r.knownTrigger(f) {
			return f
		}
	}
	return ethFrame(header.EthernetBroadcastAddress, inj.mac, 0x88b5, []byte("nothing to see"))
}

func (r *diffRun) genFrameOnce(inj *Host) []byte {
	rng := r.rng
	v := r.pick(r.hosts) // the victim
	srcMAC := inj.mac
	if rng.IntN(10) == 0 {
		srcMAC = v.mac
	}
	var f []byte
	switch k := rng.IntN(100); {
	case k < 50:
		f = r.genUDP(v, srcMAC)
	case k < 65:
		f = r.genARP(v, srcMAC)
	case k < 75:
		src := r.addrChoice(v)
		if rng.IntN(2) == 0 {
			src = inj.IP()
		}
		dst := v.IP()
		if rng.IntN(6) == 0 {
			dst = r.addrChoice(v)
		}
		flags := []uint8{0x02, 0x02, 0x02, 0x12, 0x10, 0x04, 0x11, 0x18, 0x01}[rng.IntN(9)]
		var data []byte
		if flags&0x08 != 0 {
			data = []byte("data")
		}
		seg := buildTCP(src, dst, uint16(1024+rng.IntN(60000)), []uint16{80, 23, 9, 1234}[rng.IntN(4)],
			rng.Uint32(), rng.Uint32(), flags, data, rng.IntN(10) == 0)
		ip := buildIPv4(ipv4Spec{ttl: 64, proto: 6, src: src, dst: dst, flags: header.IPv4FlagDontFragment}, seg)
		f = ethFrame(r.dstMAC(v, dst), srcMAC, 0x0800, ip)
	case k < 85:
		src := r.addrChoice(v)
		dst := v.IP()
		if rng.IntN(3) == 0 {
			dst = []netip.Addr{r.lan.bcast, limitedBroadcast, r.addrChoice(v)}[rng.IntN(3)]
		}
		var m []byte
		switch rng.IntN(4) {
		case 0, 1:
			m = buildICMP(8, 0, []byte{0, 1, 0, byte(rng.IntN(9)), 'p', 'i', 'n', 'g'}, rng.IntN(10) == 0)
		case 2:
			// A port unreachable about a datagram v sent from a socket's port.
			inner := buildIPv4(ipv4Spec{ttl: 64, proto: 17, src: v.IP(), dst: src},
				buildUDP(v.IP(), src, socketPorts[rng.IntN(len(socketPorts))], 9, []byte("x"), 0, 0))
			m = buildICMP(3, 3, append(make([]byte, 4), inner...), false)
		default:
			m = buildICMP(uint8(rng.IntN(20)), uint8(rng.IntN(4)), []byte{1, 2, 3, 4}, false)
		}
		ip := buildIPv4(ipv4Spec{ttl: 64, proto: 1, src: src, dst: dst}, m)
		f = ethFrame(r.dstMAC(v, dst), srcMAC, 0x0800, ip)
	case k < 90:
		// IP options on protocols other than UDP, IGMP, unknown protocols.
		proto := []uint8{2, 17, 47, 255, 6}[rng.IntN(5)]
		opts := []byte{1, 1, 1, 0}
		if rng.IntN(2) == 0 {
			opts = []byte{0x94, 4, 0, 0} // router alert
		}
		dst := []netip.Addr{v.IP(), r.lan.bcast, netip.AddrFrom4([4]byte{224, 0, 0, 1})}[rng.IntN(3)]
		payload := []byte{0x11, 0x64, 0xee, 0x9b, 0, 0, 0, 0}
		if proto == 17 {
			payload = buildUDP(inj.IP(), dst, 9, closedPorts[0], []byte("opt"), 0, 0)
		}
		ip := buildIPv4(ipv4Spec{ttl: 1, proto: proto, src: inj.IP(), dst: dst, options: opts}, payload)
		f = ethFrame(r.dstMAC(v, dst), srcMAC, 0x0800, ip)
	case k < 95:
		etype := []uint16{0x86dd, 0x8100, 0x88cc, 0x0800, 0x0806, uint16(rng.Uint32())}[rng.IntN(6)]
		junk := make([]byte, rng.IntN(80))
		for i := range junk {
			junk[i] = byte(rng.Uint32())
		}
		if etype == 0x0800 && len(junk) > 0 {
			junk[0] = 0x45
		}
		f = ethFrame(r.dstMAC(v, v.IP()), srcMAC, etype, junk)
	default:
		f = make([]byte, rng.IntN(40))
		for i := range f {
			f[i] = byte(rng.Uint32())
		}
		if len(f) >= 6 && rng.IntN(2) == 0 {
			copy(f, v.mac)
		}
	}
	// Ethernet padding, trailing junk, truncation, bit flips.
	switch rng.IntN(12) {
	case 0:
		if len(f) < 60 {
			f = append(f, make([]byte, 60-len(f))...)
		}
	case 1:
		f = append(f, 0xde, 0xad, 0xbe, 0xef)
	case 2:
		if len(f) > 0 {
			f = f[:rng.IntN(len(f))]
		}
	case 3:
		if len(f) > 0 {
			for range 1 + rng.IntN(2) {
				f[rng.IntN(len(f))] ^= byte(1 << rng.IntN(8))
			}
		}
	}
	return f
}

func (r *diffRun) genUDP(v *Host, srcMAC tcpip.LinkAddress) []byte {
	rng := r.rng
	src := r.addrChoice(v)
	if rng.IntN(2) == 0 {
		src = r.pick(r.hosts).IP()
	}
	var dst netip.Addr
	switch rng.IntN(8) {
	case 0, 1:
		dst = v.IP()
	case 2, 3:
		dst = r.lan.bcast
	case 4, 5:
		dst = limitedBroadcast
	default:
		dst = r.addrChoice(v)
	}
	sport, dport := r.portChoice(true), r.portChoice(true)
	spec := ipv4Spec{ttl: 64, proto: 17, src: src, dst: dst, id: uint16(rng.Uint32())}
	switch rng.IntN(10) {
	case 0:
		spec.ttl = uint8(rng.IntN(2))
	case 1:
		spec.tos = uint8(rng.Uint32())
	case 2:
		spec.flags = header.IPv4FlagDontFragment
	case 3:
		spec.flags = 4 // the reserved ("evil") bit
	}
	lenDelta, sum := 0, 0
	switch rng.IntN(16) {
	case 0:
		sum = 1
	case 1:
		sum = 2
	case 2:
		sum = 3
	case 3:
		lenDelta = -1 - rng.IntN(8)
	case 4:
		lenDelta = 1 + rng.IntN(8)
	}
	u := buildUDP(src, dst, sport, dport, r.payload(), lenDelta, sum)
	switch rng.IntN(20) {
	case 0:
		spec.badSum = true
	case 1:
		spec.lenDelta = -rng.IntN(4) // trailing bytes past the total length
	case 2:
		spec.lenDelta = 1 + rng.IntN(4)
	case 3:
		spec.options = []byte{1, 1, 1, 0} // NOPs and the end of options
	case 4:
		spec.options = []byte{0x44, 8, 5, 0, 0, 0, 0, 0} // a timestamp option, empty
	case 5:
		spec.version = 6
	}
	return ethFrame(r.dstMAC(v, dst), srcMAC, 0x0800, buildIPv4(spec, u))
}

func (r *diffRun) genARP(v *Host, srcMAC tcpip.LinkAddress) []byte {
	rng := r.rng
	op := []uint16{1, 1, 1, 2, 2, 3, 0}[rng.IntN(7)]
	spa := r.pick(r.hosts).IP()
	if rng.IntN(4) == 0 {
		spa = r.addrChoice(v)
	}
	var tpa netip.Addr
	switch rng.IntN(10) {
	case 0, 1, 2:
		tpa = v.IP()
	case 3:
		tpa = r.lan.bcast
	case 4:
		tpa = limitedBroadcast
	default:
		tpa = r.addrChoice(v)
	}
	tha := tcpip.LinkAddress("\x00\x00\x00\x00\x00\x00")
	if op == 2 {
		tha = v.mac
	}
	a := buildARP(op, srcMAC, spa, tha, tpa)
	switch rng.IntN(12) {
	case 0:
		a[1] = 6 // hardware type
	case 1:
		a[2] = 0x86 // protocol type
	case 2:
		a[4] = 8 // hardware address size
	case 3:
		a[5] = 16
	}
	dst := header.EthernetBroadcastAddress
	if op == 2 || rng.IntN(5) == 0 {
		dst = v.mac
	}
	return ethFrame(dst, srcMAC, 0x0806, a)
}

// genFragments draws a UDP datagram cut in two fragments (sometimes only
// one of them, or overlapping ones).
func (r *diffRun) genFragments() ([]byte, []byte) {
	rng := r.rng
	inj := r.hosts[0]
	v := r.pick(r.hosts)
	dst := []netip.Addr{v.IP(), r.lan.bcast, limitedBroadcast}[rng.IntN(3)]
	dport := socketPorts[rng.IntN(len(socketPorts))]
	if r.avoid["slowqueue"] {
		dport = closedPorts[0]
	}
	src := inj.IP()
	if rng.IntN(3) == 0 {
		src = r.addrChoice(v)
	}
	u := buildUDP(src, dst, 4242, dport, bytes.Repeat([]byte("fragment"), 4+rng.IntN(8)), 0, 0)
	id := uint16(rng.Uint32())
	cut := 16
	mac := r.dstMAC(v, dst)
	a := ethFrame(mac, inj.mac, 0x0800, buildIPv4(ipv4Spec{ttl: 64, proto: 17, src: src, dst: dst, id: id, flags: header.IPv4FlagMoreFragments}, u[:cut]))
	second := u[cut:]
	off := uint16(cut)
	if rng.IntN(4) == 0 {
		off -= 8 // overlapping
		second = u[8:]
	}
	b := ethFrame(mac, inj.mac, 0x0800, buildIPv4(ipv4Spec{ttl: 64, proto: 17, src: src, dst: dst, id: id, off: off}, second))
	switch rng.IntN(5) {
	case 0:
		return a, nil
	case 1:
		return b, nil
	case 2:
		return b, a
	}
	return a, b
}

// ---------------------------------------------------------------------------
// Known divergences, for -fastpath.avoid.

// knownTrigger reports whether frame would hit a divergence that avoid
// names: the random scenarios draw another, the fuzz target skips it.
func (r *diffRun) knownTrigger(frame []byte) bool {
	if len(r.avoid) == 0 || len(frame) < header.EthernetMinimumSize {
		return false
	}
	et := binary.BigEndian.Uint16(frame[12:])
	body := frame[header.EthernetMinimumSize:]
	if et == 0x0806 && r.avoid["arpbcast"] && len(body) >= header.ARPSize {
		a := header.ARP(body)
		t := netip.AddrFrom4([4]byte(a.ProtocolAddressTarget()))
		if a.IsValid() && a.Op() == header.ARPRequest && (t == r.lan.bcast || t == limitedBroadcast) {
			return true
		}
	}
	if et == 0x0800 && r.avoid["slowqueue"] && len(body) >= header.IPv4MinimumSize && body[9] == 17 {
		// Sockets may be made before the frame arrives: judge by the
		// ports sockets are made on, not by the sockets of the moment.
		ip := header.IPv4(body)
		if ip.More() || ip.FragmentOffset() != 0 {
			return true
		}
		hl := int(body[0]&0xf) * 4
		if hl < header.IPv4MinimumSize || len(body) < hl+4 {
			return false
		}
		dport := binary.BigEndian.Uint16(body[hl+2:])
		if !slices.Contains(socketPorts, dport) && dport != 0 {
			return false
		}
		var f udpFrame
		f.parse(frame)
		if !f.ok {
			return true // gVisor may hand it to the socket, into its own queue
		}
		return r.ownSource(f.src.Addr(), netip.AddrPortFrom(netip.AddrFrom4(f.dst), dport))
	}
	return false
}

// ownSource reports whether a datagram from src to dst could reach the host
// whose own address src is: gVisor takes it (the stacks do not set
// HandleLocal), the fast path leaves it to gVisor.
func (r *diffRun) ownSource(src netip.Addr, dst netip.AddrPort) bool {
	for _, h := range r.hosts {
		if h.IP() == src && (dst.Addr() == src || dst.Addr() == r.lan.bcast || dst.Addr() == limitedBroadcast) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Comparing.

type capFrame struct {
	at      time.Duration
	data    []byte
	comment string
}

// parseCapture splits a pcapng capture of Capture's into its frames.
func parseCapture(b []byte) []capFrame {
	var out []capFrame
	for off := 0; off+12 <= len(b); {
		typ, total := le.Uint32(b[off:]), int(le.Uint32(b[off+4:]))
		if total < 12 || off+total > len(b) {
			break
		}
		if typ == 6 {
			ts := uint64(le.Uint32(b[off+12:]))<<32 | uint64(le.Uint32(b[off+16:]))
			n := int(le.Uint32(b[off+20:]))
			f := capFrame{at: time.Duration(int64(ts) - epochNS), data: b[off+28 : off+28+n]}
			o := off + 28 + (n+3)&^3
			if o+4 <= off+total-4 && le.Uint16(b[o:]) == 1 {
				f.comment = string(b[o+4 : o+4+int(le.Uint16(b[o+2:]))])
			}
			out = append(out, f)
		}
		off += total
	}
	return out
}

// describeFrame says in a few words what a frame is.
func describeFrame(f []byte) string {
	if len(f) < header.EthernetMinimumSize {
		return fmt.Sprintf("runt of %d bytes", len(f))
	}
	e := header.Ethernet(f)
	s := fmt.Sprintf("%v > %v ", e.SourceAddress(), e.DestinationAddress())
	body := f[header.EthernetMinimumSize:]
	switch e.Type() {
	case header.ARPProtocolNumber:
		a := header.ARP(body)
		if !a.IsValid() {
			return s + "ARP (malformed)"
		}
		sp, tp := netip.AddrFrom4([4]byte(a.ProtocolAddressSender())), netip.AddrFrom4([4]byte(a.ProtocolAddressTarget()))
		if a.Op() == header.ARPRequest {
			return s + fmt.Sprintf("ARP who-has %v tell %v", tp, sp)
		}
		return s + fmt.Sprintf("ARP op %d: %v is-at %v (to %v)", a.Op(), sp, tcpip.LinkAddress(a.HardwareAddressSender()), tp)
	case header.IPv4ProtocolNumber:
		if len(body) < header.IPv4MinimumSize {
			return s + "IPv4 (truncated)"
		}
		ip := header.IPv4(body)
		s += fmt.Sprintf("IPv4 %v > %v proto %d len %d ttl %d id %d flags %d off %d", ip.SourceAddress(), ip.DestinationAddress(),
			ip.Protocol(), ip.TotalLength(), ip.TTL(), ip.ID(), ip.Flags(), ip.FragmentOffset())
		hl := int(ip.HeaderLength())
		if hl >= 20 && len(body) >= hl+8 && ip.FragmentOffset() == 0 {
			t := body[hl:]
			switch ip.Protocol() {
			case 17:
				s += fmt.Sprintf(" UDP %d > %d len %d", binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:]), binary.BigEndian.Uint16(t[4:]))
			case 6:
				if len(t) >= 14 {
					s += fmt.Sprintf(" TCP %d > %d flags %#x", binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:]), t[13]&0x3f)
				}
			case 1:
				s += fmt.Sprintf(" ICMP type %d code %d", t[0], t[1])
			}
		}
		return s
	}
	return s + fmt.Sprintf("type %#04x, %d bytes", uint16(e.Type()), len(f))
}

// diffObservations says how two runs differ, "" if they do not.
func diffObservations(slow, fast *diffObs) string {
	var b strings.Builder
	if !bytes.Equal(slow.capture, fast.capture) {
		sf, ff := parseCapture(slow.capture), parseCapture(fast.capture)
		i := 0
		for i < len(sf) && i < len(ff) && sf[i].at == ff[i].at && bytes.Equal(sf[i].data, ff[i].data) && sf[i].comment == ff[i].comment {
			i++
		}
		fmt.Fprintf(&b, "captures differ (%d frames through gVisor, %d with the fast path) from frame %d:\n", len(sf), len(ff), i)
		for _, side := range []struct {
			name string
			fs   []capFrame
		}{{"gVisor only", sf}, {"fast path  ", ff}} {
			for j := max(0, i-1); j < min(len(side.fs), i+2); j++ {
				f := side.fs[j]
				fmt.Fprintf(&b, "  %s #%d at %v: %s [%s]\n      %x\n", side.name, j, f.at, describeFrame(f.data), f.comment, f.data)
			}
			if i >= len(side.fs) {
				fmt.Fprintf(&b, "  %s: no frame #%d\n", side.name, i)
			}
		}
	}
	if d := diffLines(slow.events, fast.events); d != "" {
		b.WriteString("events differ: " + d)
	}
	if d := diffLines(slow.counters, fast.counters); d != "" {
		b.WriteString("counters differ: " + d)
	}
	return b.String()
}

func diffLines(a, b []string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) && i == len(b) {
		return ""
	}
	var s strings.Builder
	fmt.Fprintf(&s, "from line %d\n", i)
	for _, side := range []struct {
		name string
		ls   []string
	}{{"gVisor only", a}, {"fast path  ", b}} {
		for j := max(0, i-2); j < min(len(side.ls), i+3); j++ {
			mark := " "
			if j == i {
				mark = ">"
			}
			fmt.Fprintf(&s, "  %s%s %s\n", side.name, mark, side.ls[j])
		}
		if i >= len(side.ls) {
			fmt.Fprintf(&s, "  %s> (nothing more)\n", side.name)
		}
	}
	return s.String()
}

// diffOnce plays sc both ways; it returns how they differ and what the
// fast run played.
func diffOnce(t testing.TB, sc *diffScenario) (string, *diffObs) {
	slow := runDiff(t, sc, true)
	fast := runDiff(t, sc, false)
	return diffObservations(slow, fast), fast
}

// minimizeDiff keeps the fewest operations of sc that still make the two
// runs differ (one at a time, then pairs: good enough for a report).
func minimizeDiff(t testing.TB, sc *diffScenario) *diffObs {
	keep := make([]bool, sc.ops)
	for i := range keep {
		keep[i] = true
	}
	try := func() bool {
		s := *sc
		s.keep = func(i int) bool { return keep[i] }
		d, _ := diffOnce(t, &s)
		return d != ""
	}
	for chunk := sc.ops / 2; chunk >= 1; chunk /= 2 {
		for start := sc.ops - chunk; start >= 0; start -= chunk {
			var was []int
			for i := start; i < start+chunk; i++ {
				if keep[i] {
					was = append(was, i)
					keep[i] = false
				}
			}
			if len(was) == 0 {
				continue
			}
			if !try() {
				for _, i := range was {
					keep[i] = true
				}
			}
		}
	}
	s := *sc
	s.keep = func(i int) bool { return keep[i] }
	_, obs := diffOnce(t, &s)
	return obs
}

// TestFastPathIsInvisible plays many random hostile scenarios through
// gVisor alone and through the fast path with lazy stacks, and wants the
// same capture, reads, callbacks, results and counters from both.
func TestFastPathIsInvisible(t *testing.T) {
	avoid := diffAvoidSet(t)
	seeds := *diffSeeds
	if testing.Short() {
		seeds = 20
	}
	const ops = 250
	type failure struct {
		seed uint64
		diff string
	}
	var (
		mu       sync.Mutex
		failures []failure
		next     = make(chan uint64)
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range next {
				if d, _ := diffOnce(t, &diffScenario{seed: seed, ops: ops, avoid: avoid}); d != "" {
					mu.Lock()
					failures = append(failures, failure{seed, d})
					mu.Unlock()
				}
			}
		}()
	}
	for seed := range uint64(seeds) {
		next <- *diffSeed0 + seed
	}
	close(next)
	wg.Wait()
	t.Logf("%d seeds from %d, of %d operations, in %v, avoiding %q", seeds, *diffSeed0, ops, time.Since(start).Round(time.Millisecond), *diffAvoid)
	if len(failures) == 0 {
		return
	}
	slices.SortFunc(failures, func(a, b failure) int { return int(a.seed) - int(b.seed) })
	var seedList []uint64
	for _, f := range failures {
		seedList = append(seedList, f.seed)
	}
	t.Errorf("%d of %d seeds tell the fast path from gVisor: %v", len(failures), seeds, seedList)
	for _, f := range failures[:min(3, len(failures))] {
		t.Errorf("seed %d:\n%s", f.seed, f.diff)
	}
	if *diffMinimize {
		obs := minimizeDiff(t, &diffScenario{seed: failures[0].seed, ops: ops, avoid: avoid})
		t.Logf("seed %d minimized to:\n  %s", failures[0].seed, strings.Join(obs.ops, "\n  "))
	}
}

// TestFastPathDiffIsDeterministic checks the harness itself: each path
// played twice gives the same observations, so that a difference between
// the paths is theirs.
func TestFastPathDiffIsDeterministic(t *testing.T) {
	for seed := range uint64(6) {
		for _, g := range []bool{true, false} {
			sc := &diffScenario{seed: seed, ops: 250}
			if d := diffObservations(runDiff(t, sc, g), runDiff(t, sc, g)); d != "" {
				t.Fatalf("seed %d, GVisorOnly %v, played twice:\n%s", seed, g, d)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// The fuzz target.

// splitFuzzFrames reads the fuzzer's frames: records of a control byte, a
// big-endian 16-bit length and that many bytes (shorter at the end).
func splitFuzzFrames(data []byte) []fuzzFrame {
	var out []fuzzFrame
	for len(data) >= 3 && len(out) < 64 {
		ctl, n := data[0], int(binary.BigEndian.Uint16(data[1:]))%1600
		data = data[3:]
		n = min(n, len(data))
		out = append(out, fuzzFrame{ctl, data[:n]})
		data = data[n:]
	}
	return out
}

func joinFuzzFrames(fs []fuzzFrame) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, f.ctl, byte(len(f.frame)>>8), byte(len(f.frame)))
		b = append(b, f.frame...)
	}
	return b
}

// fixChecksums sets the IPv4 header checksum and the UDP, TCP or ICMP one
// of an unfragmented packet, so that the fuzzer gets past them.
func fixChecksums(f []byte) []byte {
	f = slices.Clone(f)
	if len(f) < header.EthernetMinimumSize+header.IPv4MinimumSize || f[12] != 8 || f[13] != 0 {
		return f
	}
	ip := f[header.EthernetMinimumSize:]
	hl := int(ip[0]&0xf) * 4
	if hl < header.IPv4MinimumSize || hl > len(ip) {
		return f
	}
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:hl], 0))
	h := header.IPv4(ip)
	if h.More() || h.FragmentOffset() != 0 {
		return f
	}
	end := min(len(ip), max(hl, int(h.TotalLength())))
	seg := ip[hl:end]
	src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	switch ip[9] {
	case 17:
		if len(seg) >= 8 {
			n := min(len(seg), int(binary.BigEndian.Uint16(seg[4:])))
			if n >= 8 && (seg[6] != 0 || seg[7] != 0) {
				seg[6], seg[7] = 0, 0
				c := l4Sum(17, src, dst, seg[:n], n)
				if c == 0 {
					c = 0xffff
				}
				binary.BigEndian.PutUint16(seg[6:], c)
			}
		}
	case 6:
		if len(seg) >= 20 {
			seg[16], seg[17] = 0, 0
			binary.BigEndian.PutUint16(seg[16:], l4Sum(6, src, dst, seg, len(seg)))
		}
	case 1:
		if len(seg) >= 4 {
			seg[2], seg[3] = 0, 0
			binary.BigEndian.PutUint16(seg[2:], ^checksum.Checksum(seg, 0))
		}
	}
	return f
}

// fuzzInject plays one of the fuzzer's frames: bit 0 of ctl fixes its
// checksums, bits 1-2 choose the sender, bits 3-5 how long the clock runs
// after it, bit 6 sends it twice.
func (r *diffRun) fuzzInject(ff fuzzFrame) (string, func()) {
	frame := ff.frame
	if ff.ctl&1 != 0 {
		frame = fixChecksums(frame)
	}
	inj := r.hosts[int(ff.ctl>>1&3)%len(r.hosts)]
	d := []time.Duration{-1, 0, 0, time.Microsecond, time.Millisecond, 10 * time.Millisecond, 200 * time.Millisecond, time.Second}[ff.ctl>>3&7]
	times := 1 + int(ff.ctl>>6&1)
	return fmt.Sprintf("inject from %s (x%d, then run %v): %x", inj.name, times, d, frame), func() {
		if r.knownTrigger(frame) {
			r.obs.knownHit = true
		}
		for range times {
			r.lan.transmit(inj, frame)
		}
		if d >= 0 {
			r.run(d)
		}
	}
}

// FuzzFastPathIsInvisible injects the fuzzer's frames into a small LAN
// (drawn from setup, with sockets, listeners, sends and clock runs between
// the frames) both ways, and wants the same observations.
func FuzzFastPathIsInvisible(f *testing.F) {
	avoid := diffAvoidSet(f)
	// Seeds: a few short sequences of the random scenarios' frames (and, in
	// testdata, what the fuzzer found).
	for seed := range uint64(6) {
		r := &diffRun{sc: &diffScenario{}, avoid: avoid, rng: rand.New(rand.NewPCG(seed, 1)), lan: &LAN{cfg: Config{Subnet: netip.MustParsePrefix("192.168.1.0/24")}}}
		r.lan.bcast = lastAddr(r.lan.cfg.Subnet)
		r.lan.router = netip.MustParseAddr("192.168.1.1")
		for i := range 4 {
			r.hosts = append(r.hosts, &Host{lan: r.lan, name: fmt.Sprint(i), mac: macFor(i), ip: netip.AddrFrom4([4]byte{192, 168, 1, byte(2 + i)})})
		}
		var fs []fuzzFrame
		for len(fs) < 4 {
			// Short inputs: the fuzzer minimizes every new one, a few
			// milliseconds a try.
			if fr := r.genFrameOnce(r.hosts[0]); len(fr) <= 100 {
				fs = append(fs, fuzzFrame{byte(r.rng.IntN(256)) &^ 1, fr})
			}
		}
		f.Add(seed, joinFuzzFrames(fs))
	}
	f.Fuzz(func(t *testing.T, setup uint64, data []byte) {
		frames := splitFuzzFrames(data)
		if len(frames) == 0 {
			return
		}
		sc := &diffScenario{seed: setup, avoid: avoid, frames: frames}
		if d, obs := diffOnce(t, sc); d != "" {
			if obs.knownHit {
				t.Skip("a frame hit a divergence -fastpath.avoid names")
			}
			t.Fatalf("the fast path is visible:\n%s\nplayed:\n  %s", d, strings.Join(obs.ops, "\n  "))
		}
	})
}

// ---------------------------------------------------------------------------
// The divergences found, each in its smallest form: these fail until the
// fast path (or the lazy stacks) are fixed.

// diffScript plays script on a plain LAN (atk 192.168.1.2, h1 .3, h2 .4)
// both ways and fails with how they differ.
func diffScript(t *testing.T, script func(r *diffRun)) {
	t.Helper()
	if d, _ := diffOnce(t, &diffScenario{seed: 1, script: script}); d != "" {
		t.Errorf("the fast path is visible:\n%s", d)
	}
}

var (
	ethBcast = header.EthernetBroadcastAddress
	zeroMAC  = tcpip.LinkAddress("\x00\x00\x00\x00\x00\x00")
)

// udpTo builds a well-formed datagram frame from src to dst, padded to pad
// bytes, with options if any.
func udpTo(srcMAC, dstMAC tcpip.LinkAddress, src, dst netip.AddrPort, payload []byte, options []byte, pad int) []byte {
	u := buildUDP(src.Addr(), dst.Addr(), src.Port(), dst.Port(), payload, 0, 0)
	f := ethFrame(dstMAC, srcMAC, 0x0800, buildIPv4(ipv4Spec{ttl: 64, proto: 17, src: src.Addr(), dst: dst.Addr(), options: options}, u))
	if len(f) < pad {
		f = append(f, make([]byte, pad-len(f))...)
	}
	return f
}

// An ARP request for the subnet's broadcast address, or for
// 255.255.255.255, is "for" every gVisor stack: arp.go HandlePacket asks
// nic.CheckLocalAddress, which (ipv4.go AcquireAssignedAddress) matches the
// subnet broadcast of the host's address and the 255.255.255.255 endpoint
// every IPv4 endpoint gets at Enable. The stack learns the sender and
// answers. unheard takes only the host's own address for a request that
// needs the stack, so a stackless host stays silent.
func TestFastPathDiffARPRequestForABroadcastAddress(t *testing.T) {
	for _, target := range []string{"192.168.1.255", "255.255.255.255"} {
		t.Run(target, func(t *testing.T) {
			diffScript(t, func(r *diffRun) {
				atk := r.hosts[0]
				r.lan.transmit(atk, ethFrame(ethBcast, atk.mac, 0x0806,
					buildARP(1, atk.mac, atk.IP(), zeroMAC, netip.MustParseAddr(target))))
				r.run(time.Second)
			})
		})
	}
}

// gVisor loops a broadcast back to the socket bound to its destination
// port (route.go makeRoute sets PacketLoop; ipv4 handleLocalPacket delivers
// it like any datagram), not to the socket that sent it: fastWrite pushes
// it onto the sender's queue whatever the port.
func TestFastPathDiffBroadcastLoopsBackToItsDestinationPort(t *testing.T) {
	diffScript(t, func(r *diffRun) {
		h1 := r.hosts[1]
		r.listen(h1, 6000, readDrain)
		r.listen(h1, 5000, readDrain)
		r.logf("write: %s", errText(r.socks[1].conn.WriteTo([]byte("to 6000"), netip.AddrPortFrom(r.lan.bcast, 6000))))
		r.logf("write: %s", errText(r.socks[1].conn.WriteTo([]byte("to 7"), netip.AddrPortFrom(limitedBroadcast, 7))))
		r.run(time.Second)
	})
}

// gVisor refuses to send to port 0 (udp endpoint.go prepareForWrite:
// "Port 0 is an invalid port to send to", ErrInvalidEndpointState);
// fastWrite sends the broadcast, and loops it back.
func TestFastPathDiffBroadcastToPortZeroIsRefused(t *testing.T) {
	diffScript(t, func(r *diffRun) {
		r.listen(r.hosts[1], 5000, readDrain)
		r.logf("write: %s", errText(r.socks[0].conn.WriteTo([]byte("zero"), netip.AddrPortFrom(r.lan.bcast, 0))))
		r.run(time.Second)
	})
}

// ListenUDP(0) lets the stack pick the port but keeps u.port 0, which the
// fast path takes for the socket's port: its broadcasts leave from port 0,
// and datagrams to port 0 are handed to it (gVisor has nothing bound to 0).
func TestFastPathDiffEphemeralSocket(t *testing.T) {
	t.Run("sends", func(t *testing.T) {
		diffScript(t, func(r *diffRun) {
			r.listen(r.hosts[1], 0, readDrain)
			r.logf("write: %s", errText(r.socks[0].conn.WriteTo([]byte("from ephemeral"), netip.AddrPortFrom(r.lan.bcast, 9))))
			r.run(time.Second)
		})
	})
	t.Run("receives", func(t *testing.T) {
		diffScript(t, func(r *diffRun) {
			atk, h1 := r.hosts[0], r.hosts[1]
			r.listen(h1, 0, readDrain)
			r.lan.transmit(atk, udpTo(atk.mac, h1.mac, netip.AddrPortFrom(atk.IP(), 9), netip.AddrPortFrom(h1.IP(), 0), []byte("to port 0"), nil, 0))
			r.run(time.Second)
		})
	})
}

// A datagram for a ListenUDP socket that the fast path leaves to gVisor
// lands in gVisor's queue, the fast path's in the socket's own: ReadFrom
// empties the second first, so the reader gets them out of order (and the
// two queues hold twice the receive buffer between them). gVisor hands
// the socket all of these: its own address as the source (netsim's stacks
// leave HandleLocal off, so ipv4.go HandlePacket does not drop it),
// Ethernet padding (trimmed), IP options, fragments (reassembled), source
// 0.0.0.0.
func TestFastPathDiffOneQueue(t *testing.T) {
	cases := map[string]func(r *diffRun) [][]byte{
		"own source": func(r *diffRun) [][]byte {
			atk, h1 := r.hosts[0], r.hosts[1]
			return [][]byte{udpTo(atk.mac, ethBcast, netip.AddrPortFrom(h1.IP(), 9), netip.AddrPortFrom(r.lan.bcast, 9), []byte("first"), nil, 0)}
		},
		"ethernet padding": func(r *diffRun) [][]byte {
			atk := r.hosts[0]
			return [][]byte{udpTo(atk.mac, ethBcast, netip.AddrPortFrom(atk.IP(), 9), netip.AddrPortFrom(r.lan.bcast, 9), []byte("first"), nil, 60)}
		},
		"ip options": func(r *diffRun) [][]byte {
			atk := r.hosts[0]
			return [][]byte{udpTo(atk.mac, ethBcast, netip.AddrPortFrom(atk.IP(), 9), netip.AddrPortFrom(r.lan.bcast, 9), []byte("first"), []byte{1, 1, 1, 0}, 0)}
		},
		"source 0.0.0.0": func(r *diffRun) [][]byte {
			atk := r.hosts[0]
			return [][]byte{udpTo(atk.mac, ethBcast, netip.MustParseAddrPort("0.0.0.0:68"), netip.AddrPortFrom(limitedBroadcast, 9), []byte("first"), nil, 0)}
		},
		"fragments": func(r *diffRun) [][]byte {
			atk := r.hosts[0]
			src, dst := atk.IP(), r.lan.bcast
			u := buildUDP(src, dst, 9, 9, []byte("first, in two fragments"), 0, 0)
			return [][]byte{
				ethFrame(ethBcast, atk.mac, 0x0800, buildIPv4(ipv4Spec{ttl: 64, proto: 17, src: src, dst: dst, id: 7, flags: header.IPv4FlagMoreFragments}, u[:16])),
				ethFrame(ethBcast, atk.mac, 0x0800, buildIPv4(ipv4Spec{ttl: 64, proto: 17, src: src, dst: dst, id: 7, off: 16}, u[16:])),
			}
		},
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range cases {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Run(name, func(t *testing.T) {
			diffScript(t, func(r *diffRun) {
				atk, h1 := r.hosts[0], r.hosts[1]
				r.listen(h1, 9, readNever)
				for _, f := range cases[name](r) {
					r.lan.transmit(atk, f)
				}
				r.lan.transmit(atk, udpTo(atk.mac, ethBcast, netip.AddrPortFrom(atk.IP(), 9), netip.AddrPortFrom(r.lan.bcast, 9), []byte("second"), nil, 0))
				r.run(time.Second)
			})
		})
	}
}

// gVisor wakes a socket's waiters when a datagram arrives at an empty
// queue (udp endpoint.go HandlePacket: "if wasEmpty { Notify }", empty
// meaning no bytes queued); the fast path calls onReadable for every
// datagram it queues. A reader that reads one datagram a callback, or
// that counts them, tells the difference.
func TestFastPathDiffReadableOnlyWhenEmpty(t *testing.T) {
	diffScript(t, func(r *diffRun) {
		atk, h1 := r.hosts[0], r.hosts[1]
		r.listen(h1, 9, readOne)
		for _, p := range []string{"one", "two", "three"} {
			r.lan.transmit(atk, udpTo(atk.mac, ethBcast, netip.AddrPortFrom(atk.IP(), 9), netip.AddrPortFrom(r.lan.bcast, 9), []byte(p), nil, 0))
		}
		r.run(time.Second)
	})
}

// PowerOff destroys the stack, which closes its endpoints and drops what
// they queued (udp endpoint.go Close); it forgets the fast path's sockets
// (h.udp = nil) but leaves their queues: a socket of the dead boot still
// reads what the fast path queued for it.
func TestFastPathDiffPowerOffEmptiesTheQueues(t *testing.T) {
	diffScript(t, func(r *diffRun) {
		atk, h1 := r.hosts[0], r.hosts[1]
		r.listen(h1, 9, readNever)
		r.lan.transmit(atk, udpTo(atk.mac, ethBcast, netip.AddrPortFrom(atk.IP(), 9), netip.AddrPortFrom(r.lan.bcast, 9), []byte("before power-off"), nil, 0))
		r.run(time.Millisecond)
		h1.PowerOff()
		r.read(r.socks[0], -1, "after power-off")
	})
}

// A TCP listener made and closed, or refused, before the stack is built
// is never opened on it; gVisor draws from the stack's random sources for
// every TCP endpoint (tcp endpoint.go: txHash from InsecureRNG) and every
// listen (accept.go newListenContext: nonces from SecureRNG), so the
// stacks' sources part ways: the next ephemeral port (ports.go
// PickEphemeralPort draws SecureRNG) and so the next SYN differ, and so
// does the random factor of the neighbour cache's reachable time
// (nud.go recomputeReachableTimeLocked draws InsecureRNG when an entry
// first becomes reachable): the ARP probes of a stale entry come at other
// times.
func TestFastPathDiffClosedListenerDrawsLikeAnOpenOne(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		diffScript(t, func(r *diffRun) {
			atk, h1 := r.hosts[0], r.hosts[1]
			l, err := atk.ListenTCP(23, func(*TCPConn) {})
			r.logf("listen: %s", errText(err))
			l.Close()
			atk.DialTCP(netip.AddrPortFrom(h1.IP(), 1234), func(_ *TCPConn, err error) { r.logf("dial: %s", errText(err)) })
			r.run(time.Second)
		})
	})
	t.Run("refused", func(t *testing.T) {
		diffScript(t, func(r *diffRun) {
			atk, h1 := r.hosts[0], r.hosts[1]
			for range 2 {
				_, err := h1.ListenTCP(9, func(*TCPConn) {})
				r.logf("listen: %s", errText(err))
			}
			// Segments h1 answers with a reset, to atk's address: the first
			// resolves it, the others find the entry reachable or stale.
			for i := range 12 {
				seg := buildTCP(atk.IP(), h1.IP(), 4000, 9, 1000, 2000, 0x11, nil, false)
				r.lan.transmit(atk, ethFrame(h1.mac, atk.mac, 0x0800, buildIPv4(ipv4Spec{ttl: 64, proto: 6, src: atk.IP(), dst: h1.IP()}, seg)))
				r.run(time.Duration(1+i*4) * time.Second)
			}
		})
	})
}

// PowerOff leaves h.stack pointing at the destroyed stack: a host that
// had one (always, with GVisorOnly) answers DialTCP at once with the
// failure of connecting on a dead stack, and Stack returns the dead stack;
// a host that never built one answers on a zero-delay timer, and Stack
// returns nil.
func TestFastPathDiffOffHost(t *testing.T) {
	diffScript(t, func(r *diffRun) {
		atk, h1 := r.hosts[0], r.hosts[1]
		h1.PowerOff()
		h1.DialTCP(netip.AddrPortFrom(atk.IP(), 80), func(_ *TCPConn, err error) { r.logf("dial: %s", errText(err)) })
		r.logf("DialTCP returned")
		r.logf("Stack() is nil: %v", h1.Stack() == nil)
		r.run(time.Second)
	})
}

// ReadFrom's payload is "valid until the next call", the caller's to use
// meanwhile: through gVisor it is the socket's own buffer (u.buf); the
// fast path hands out a slice of the frame itself, which every other
// receiver of the broadcast shares (their queued datagrams, and the copies
// still on their way, whose checksums then fail).
func TestFastPathDiffPayloadIsTheReadersOwn(t *testing.T) {
	diffScript(t, func(r *diffRun) {
		atk, h1, h2 := r.hosts[0], r.hosts[1], r.hosts[2]
		r.lan.SetLink(h2.name, Down, Link{Latency: 5 * time.Millisecond})
		r.listen(h1, 9, readScribble)
		r.listen(atk, 9, readNever)
		r.listen(h2, 9, readDrain)
		r.lan.transmit(atk, udpTo(atk.mac, ethBcast, netip.AddrPortFrom(atk.IP(), 9), netip.AddrPortFrom(r.lan.bcast, 9), []byte("mine"), nil, 0))
		r.run(time.Millisecond)
		r.lan.transmit(h2, udpTo(h2.mac, ethBcast, netip.AddrPortFrom(h2.IP(), 9), netip.AddrPortFrom(r.lan.bcast, 9), []byte("yours"), nil, 0))
		r.run(time.Second)
	})
}
