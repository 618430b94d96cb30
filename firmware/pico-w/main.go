//go:build tinygo && rp2040

// Command pico-w is the picosim firmware for the Raspberry Pi Pico W: the
// program of package firmware (discovery, election, the piconetcontrol
// server) over the board's CYW43439 radio (github.com/soypat/cyw43439), the
// lneto network stack, and GPIO from package machine.
//
//	hack/tinygo-build.sh    # tinygo build -target=pico-w -scheduler=tasks
//
// Everything the board does lives in package firmware, which the simulator's
// virtual boards and the emulated boards run too and the host's tests cover; this file is the loop that
// feeds it (firmware/doc.go) and the few lines that touch the hardware.
// What it does, and why here:
//
//   - UDP goes around lneto (see firmware/ether.go): the radio's receive
//     callback takes the frames of the program's UDP ports (discovery, the
//     apps') into a firmware.Inbox, and datagrams leave as whole Ethernet
//     frames, heartbeats broadcast to the subnet. lneto keeps DHCP, ARP and
//     TCP.
//   - Each TCP connection is a firmware.Slot over one of lneto's fixed
//     connections: two wait for controllers, the others serve the apps'
//     ports and dials. Nothing in the loop waits for a peer.
//   - lneto holds one node per (port, protocol), so a port's slots do not
//     each listen on it: the port has one lneto tcp.Listener (a listener
//     here), whose pool is the port's waiting slots. A peer's SYN takes one
//     of their tcp.Conns, the loop accepts it once its handshake is done,
//     and the listener hands it back when it is over. A dial is a
//     tcp.Conn of its own port.
//   - The flash is a firmware.FlashStore at the end of machine.Flash.
//   - A board's default name is firmware.DefaultName of its flash chip's
//     unique ID, so a fresh board joins WiFi (the DHCP client needs a name).
//
// The lines here run only on a board (or, one day, an emulated RP2040):
// machine, the radio driver and lneto do not build for the host.
package main

import (
	"errors"
	"machine"
	"strconv"
	"time"

	"github.com/soypat/cyw43439"
	"github.com/soypat/cyw43439/examples/cywnet"
	"github.com/soypat/lneto/tcp"
	"github.com/soypat/lneto/x/xnet"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// The network a blank flash is formatted with (config/config_wlan.json
// afterwards), set by hack/tinygo-build.sh --ssid and --password through
// -ldflags -X; unset, firmware.DefaultFiles' (picosim, picosim-lan). TinyGo
// applies -X only to string variables without an initializer: these have none.
var ssid, password string

const (
	tcpConns  = 4         // lneto's TCP connections: controllers, apps' listeners and dials
	ctlConns  = 2         // of them, listening for controllers
	heapBytes = 200 << 10 // what get_info reports the heap against
	inboxSize = 8 << 10   // datagrams waiting for the loop
	neighbors = 16        // MACs remembered for unicast replies
)

var start = time.Now()

func now() time.Duration { return time.Since(start) }

func main() {
	time.Sleep(time.Second) // a moment for a USB serial monitor to attach
	b := &board{pins: map[int]bool{}, udpPorts: map[uint16]bool{}, inbox: firmware.NewInbox(inboxSize), peers: firmware.NewNeighbors(neighbors)}
	flash, err := firmware.OpenFlashStore(machine.Flash)
	if err != nil {
		b.fail("flash: " + err.Error())
	}
	opt := firmware.Options{
		Name:      firmware.DefaultName(machine.DeviceID()),
		Board:     "Raspberry Pi Pico W with RP2040",
		HeapBytes: heapBytes,
		WLAN:      firmware.WLAN{SSID: ssid, Password: password},
		Inflate:   firmware.Inflate,
		// Nonces need a number that never comes back, not a secret (the
		// key is the secret): the ring oscillator's bits serve, which
		// TinyGo warns are not for keys.
		Entropy: func() uint64 {
			hi, _ := machine.GetRNG()
			lo, _ := machine.GetRNG()
			return uint64(hi)<<32 | uint64(lo)
		},
	}
	p, retry, err := firmware.Start(b, flash, opt, now())
	for p == nil && err == nil { // the image crashed: the watchdog resets the board
		time.Sleep(retry)
		p, retry, err = firmware.Start(b, flash, opt, now())
	}
	if err != nil {
		b.fail("firmware: " + err.Error())
	}
	stop := tickWhile(p) // the LED blinks "connecting" while the radio joins
	err = b.join(p)
	stop()
	if err != nil {
		b.log("wifi: " + err.Error())
		time.Sleep(5 * time.Second)
		machine.CPUReset() // try again from a clean radio
	}
	h := b.run(p)
	if h.Kind == control.ActDeepSleep {
		b.dev.GPIOSet(0, false)
		time.Sleep(h.For) // the RP2040's dormant mode would lose the radio's state anyway
	}
	machine.CPUReset() // reset, update and the end of a deep sleep all boot afresh
}

// board is the firmware.Board of a Pico W.
type board struct {
	dev         *cyw43439.Device
	stack       *xnet.StackAsync
	mac         [6]byte
	ip          node.Addr
	bcast       node.Addr
	ctlPort     uint16
	udpPorts    map[uint16]bool // the program's UDP ports, taken around lneto
	inbox       *firmware.Inbox
	peers       *firmware.Neighbors
	tcp         [tcpConns]tcp.Conn
	conns       [tcpConns]lnetoConn
	slots       [tcpConns]firmware.Slot
	used        [tcpConns]bool          // the slot serves a port or carries a dial
	lis         [tcpConns]listener      // one a TCP port: each has a slot at least
	listenLog   [tcpConns]listenFailure // the loop's "listen:" lines, a port's a minute
	nextID      control.ConnID          // for accepted connections
	nextPort    uint16                  // local port of the next dial
	iss         uint32                  // xorshift: accepted connections' initial sequence numbers
	pins        map[int]bool            // configured as outputs
	buf         [1500]byte
	frame       []byte
	tx          [cyw43439.MaxFrameSize]byte
	rejoinAsked bool // the watchdog's: join again though the link says up
	// wall is the wall-clock time (ns since 1970) NTP gave at uptime wallAt;
	// 0 when no NTP server answered.
	wall   int64
	wallAt time.Duration
}

var _ firmware.Board = (*board)(nil)

// Listen opens a port of the program's: a UDP port is one more the receive
// callback takes; a TCP port gets its listener, registered with lneto, and
// free slots to hand out (two for the control port), counting those still
// carrying its connections.
func (b *board) Listen(pt firmware.Port) error {
	if !pt.TCP {
		b.udpPorts[pt.Num] = true
		return nil
	}
	l, err := b.listener(pt.Num)
	if err != nil {
		return err
	}
	l.closing = false
	want := 1
	if pt.Num == b.ctlPort {
		want = ctlConns
	}
	for i := range b.slots {
		if b.used[i] && b.conns[i].lis == l {
			want--
		}
	}
	for i := 0; i < len(b.slots) && want > 0; i++ {
		if !b.used[i] || b.slots[i].Free() {
			b.nextID++
			b.used[i] = true
			b.conns[i] = lnetoConn{c: &b.tcp[i], lis: l, taker: b.conns[i].taker}
			b.slots[i].Listening(b.nextID, pt.Num) // its first Poll offers it to l
			want--
		}
	}
	if want > 0 {
		return errors.New("no free TCP connection")
	}
	return nil
}

// Unlisten stops listening on a port: its listener takes no new connection
// (a SYN gets a reset), its waiting and half-open slots are freed, and it
// closes once the connections it carries are over; they go on meanwhile.
// Unlisten and Listen in a row (the watchdog's restart) register a fresh
// listener when none is left, else keep the one that carries them.
func (b *board) Unlisten(pt firmware.Port) error {
	if !pt.TCP {
		delete(b.udpPorts, pt.Num)
		return nil
	}
	l := b.listenerOn(pt.Num)
	if l == nil {
		return nil
	}
	l.closing = true
	for i := range b.slots {
		c := &b.conns[i]
		if b.used[i] && c.lis == l && !c.accepted && !b.tcp[i].State().IsSynchronized() {
			c.Abort() // waiting, or half-open: nothing the program knows
			b.release(i)
		}
	}
	if !l.busy() {
		l.stop()
	}
	return nil
}

// release frees slot i for another port or a dial.
func (b *board) release(i int) {
	b.used[i] = false
	b.conns[i] = lnetoConn{c: &b.tcp[i], taker: b.conns[i].taker}
}

// Dial opens an outgoing connection on a free slot whose tcp.Conn no
// listener holds.
func (b *board) Dial(c control.ConnID, to node.Addr, port uint16) error {
	for i := range b.slots {
		if (b.used[i] && !b.slots[i].Free()) || b.conns[i].taker != nil {
			continue
		}
		b.nextPort++
		if b.nextPort < 49152 {
			b.nextPort = 49152
		}
		b.release(i)
		b.tcp[i].Abort()
		if err := b.stack.DialTCP4(&b.tcp[i], b.nextPort, to, port); err != nil {
			return err
		}
		b.used[i] = true
		b.slots[i].Dialed(c)
		return nil
	}
	return errors.New("no free TCP connection")
}

// listener returns port's listener, registered with lneto, taking a free
// one for a port that has none.
func (b *board) listener(port uint16) (*listener, error) {
	l := b.listenerOn(port)
	if l == nil {
		for i := range b.lis {
			if b.lis[i].port == 0 {
				l = &b.lis[i]
				break
			}
		}
		if l == nil {
			return nil, errors.New("no free TCP listener")
		}
		l.b, l.port = b, port
	}
	if err := l.start(); err != nil {
		l.stop()
		return nil, err
	}
	return l, nil
}

// listenerOn returns port's listener, or nil.
func (b *board) listenerOn(port uint16) *listener {
	for i := range b.lis {
		if b.lis[i].port == port && port != 0 {
			return &b.lis[i]
		}
	}
	return nil
}

// accept takes the connections whose handshake is done from the
// listeners, at once: lneto's listener sends nothing on a connection it
// has not handed out, and drops it if it goes past ESTABLISHED before.
func (b *board) accept() {
	for i := range b.lis {
		l := &b.lis[i]
		for l.open && l.l.NumberOfReadyToAccept() > 0 {
			conn, _, err := l.l.TryAccept()
			if err != nil {
				break
			}
			for j := range b.conns {
				if b.conns[j].c == conn && b.conns[j].taker == l {
					b.conns[j].accepted = true
				}
			}
		}
	}
}

// listenFailed logs a slot's failure to wait on its port, once a port a
// minute: the loop meets it every round.
func (b *board) listenFailed(port uint16, err error) {
	var e *listenFailure
	for i := range b.listenLog {
		if b.listenLog[i].port == port {
			e = &b.listenLog[i]
			break
		}
	}
	if e == nil { // the port logged longest ago makes room
		e = &b.listenLog[0]
		for i := range b.listenLog {
			if b.listenLog[i].at < e.at {
				e = &b.listenLog[i]
			}
		}
		*e = listenFailure{port: port, at: -time.Minute}
	}
	t := now()
	if t-e.at < time.Minute {
		e.held++
		return
	}
	msg := "listen: TCP " + strconv.Itoa(int(port)) + ": " + err.Error()
	if e.held > 0 {
		msg += " (and " + strconv.Itoa(e.held) + " times in the last minute)"
	}
	e.at, e.held = t, 0
	b.log(msg)
}

// listenFailure is when a port's "listen:" line was last logged, and how
// many were held back since.
type listenFailure struct {
	port uint16
	at   time.Duration
	held int
}

// nextISS is the initial sequence number of the next accepted connection
// (the stack's own generator is locked while the listener asks for one).
func (b *board) nextISS() uint32 {
	x := b.iss
	if x == 0 {
		hi, _ := machine.GetRNG()
		x = hi | 1
	}
	x ^= x << 13
	x ^= x >> 17
	x ^= x << 5
	b.iss = x
	return x
}

// slot returns the slot that carries connection c.
func (b *board) slot(c control.ConnID) *firmware.Slot {
	for i := range b.slots {
		if b.used[i] && b.slots[i].ID == c {
			return &b.slots[i]
		}
	}
	return nil
}

// SendUDP sends a datagram as a whole frame: broadcast for the subnet's or
// the limited broadcast address, else to the MAC the peer was last heard
// from (broadcast when it never was: every other station drops it at its
// IP layer).
func (b *board) SendUDP(from uint16, to node.Addr, port uint16, payload []byte) error {
	mac := firmware.BroadcastMAC
	if to != b.bcast && to != firmware.LimitedBroadcast {
		if m, ok := b.peers.MAC(to); ok {
			mac = m
		}
	}
	b.frame = firmware.AppendUDPFrame(b.frame[:0], firmware.UDPFrame{
		DstMAC: mac, SrcMAC: b.mac, Src: b.ip, Dst: to, SrcPort: from, DstPort: port, Payload: payload})
	return b.dev.SendEth(b.frame)
}

// receive is the radio's callback for every frame, inside the driver: the
// datagrams of the program's UDP ports wait in the inbox, the rest go to
// lneto.
func (b *board) receive(pkt []byte) {
	f, ok := firmware.ParseUDPFrame(pkt)
	if ok && b.udpPorts[f.DstPort] && (f.Dst == b.ip || f.Dst == b.bcast || f.Dst == firmware.LimitedBroadcast) {
		b.peers.Learn(f.Src, f.SrcMAC)
		b.inbox.Put(f.Src, f.SrcPort, f.DstPort, f.Payload)
		return
	}
	b.stack.IngressEthernet(pkt)
	b.accept() // before a following segment takes it past ESTABLISHED
}

func (b *board) Write(c control.ConnID, data []byte) error {
	if s := b.slot(c); s != nil {
		return s.Write(data)
	}
	return errors.New("no such connection")
}

func (b *board) Peer(c control.ConnID) node.Addr {
	if s := b.slot(c); s != nil {
		return s.Peer()
	}
	return node.Addr{}
}

func (b *board) Close(c control.ConnID) error {
	if s := b.slot(c); s != nil {
		return s.Close()
	}
	return nil
}

func (b *board) SetPin(pin, value int) {
	if pin == control.LED {
		if b.dev != nil {
			b.dev.GPIOSet(0, value != 0) // the LED hangs off the radio's GPIO 0
		}
		return
	}
	p := machine.Pin(pin)
	if !b.pins[pin] {
		p.Configure(machine.PinConfig{Mode: machine.PinOutput})
		b.pins[pin] = true
	}
	p.Set(value != 0)
}

func (b *board) ReadPin(pin int) int {
	p := machine.Pin(pin)
	delete(b.pins, pin)
	p.Configure(machine.PinConfig{Mode: machine.PinInputPulldown})
	if p.Get() {
		return 1
	}
	return 0
}

// Console writes a line in pieces of 256 bytes: TinyGo's USB serial loses
// longer writes (tinygo-org/tinygo#5188, as cywnet works around it).
func (b *board) Console(line []byte) {
	for len(line) > 0 {
		n := min(len(line), 256)
		machine.Serial.Write(line[:n])
		line = line[n:]
		if len(line) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	machine.Serial.Write([]byte{'\n'})
}

func (b *board) log(msg string) { b.Console([]byte(`{"event": "log", "detail": "` + msg + `"}`)) }

// fail logs why the board cannot run and blinks fast forever.
func (b *board) fail(msg string) {
	for {
		b.log(msg)
		for i := 0; i < 50; i++ {
			if b.dev != nil {
				b.dev.GPIOSet(0, i%2 == 0)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// tickWhile ticks the program from a goroutine of its own until the
// returned function is called, for the blocking join: the program drives
// its LED from its ticks. Nothing else touches the program meanwhile.
func tickWhile(p *firmware.Program) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(10 * time.Millisecond):
				if now() >= p.Deadline() {
					p.Tick(now())
				}
			}
		}
	}()
	return func() { close(quit); <-done }
}

// join brings the radio up, joins the network of config_wlan.json, takes an
// address with DHCP, resolves the gateway, opens the control port and
// starts discovery.
func (b *board) join(p *firmware.Program) error {
	w := p.WLAN()
	cy, err := cywnet.NewConfiguredPicoWithStack(w.SSID, w.Password, cyw43439.DefaultWifiConfig(), cywnet.StackConfig{
		Hostname:          p.Name(),
		MaxActiveTCPPorts: tcpConns,
		// UDP needs no port of lneto's (it goes around it), so the three
		// lneto keeps for itself (DHCP, DNS, NTP) are all there is.
		MaxActiveUDPPorts: 0,
		RandSeed:          int64(p.Incarnation()),
	})
	if err != nil {
		return err
	}
	b.dev, b.stack = cy.Device(), cy.StackAsync()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() { // the radio must be polled while DHCP and ARP wait
		defer close(done)
		for {
			select {
			case <-quit:
				return
			default:
			}
			if !b.pump() {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	err = b.lease()
	close(quit)
	<-done // from here on only the loop polls the radio
	if err != nil {
		return err
	}
	b.mac = b.stack.HardwareAddr()
	b.dev.RecvEthHandle(b.receive)
	b.ctlPort = p.ControlPort()
	for i := range b.slots {
		c := &b.tcp[i]
		err := c.Configure(tcp.ConnConfig{
			RxBuf: make([]byte, 2048), TxBuf: make([]byte, 2048), TxPacketQueueSize: 3,
			RWBackoff:    func(uint) time.Duration { return time.Millisecond }, // yields: never spins under -scheduler=tasks
			LossRecovery: &tcp.RTO{}, Nanotime: func() int64 { return int64(now()) },
		})
		if err != nil {
			return err
		}
		b.conns[i] = lnetoConn{c: c}
		b.slots[i].Conn = &b.conns[i]
	}
	if b.wall != 0 {
		p.SetWallClock(b.wallAt, b.wall)
	}
	return p.Joined(now(), b.ip, b.bcast) // the program listens on its ports
}

// lease takes an address with DHCP and the gateway's MAC with ARP, without
// cywnet's SetupWithDHCP, which panics when either fails.
func (b *board) lease() error {
	retry := b.stack.StackRetrying(cywnet.DefaultStackBackoff)
	res, err := retry.DoDHCPv4([4]byte{}, 3*time.Second, 3)
	if err != nil {
		return err
	}
	if err := b.stack.AssimilateDHCPResults(res); err != nil {
		return err
	}
	gw, err := retry.DoResolveHardwareAddress6(res.Router, 500*time.Millisecond, 4)
	if err != nil {
		return err
	}
	b.stack.SetGatewayHardwareAddr(gw)
	b.ip = node.Addr(res.AssignedAddr4)
	var offered node.Addr
	if res.BroadcastAddr.Is4() {
		offered = node.Addr(res.BroadcastAddr.As4())
	}
	b.bcast = firmware.HeartbeatAddr(b.ip, res.Subnet.Bits(), offered)
	// The time, from the router's NTP server if it has one (one try of a
	// second): a Pico W has no clock, and time_received is the wall clock
	// where it can be (piconetcontrol's client subtracts its own from it);
	// without an answer it stays the uptime.
	if off, err := retry.DoNTP(res.Router, time.Second, 1); err == nil {
		b.wallAt, b.wall = now(), time.Now().Add(off).UnixNano()
	}
	return nil
}

// pump moves one frame each way between the radio and lneto; it reports
// whether there was one.
func (b *board) pump() bool {
	got, _ := b.dev.PollOne()
	n, _ := b.stack.EgressEthernet(b.tx[:])
	if n > 0 {
		b.dev.SendEth(b.tx[:n])
	}
	return got || n > 0
}

// run feeds the program until it halts: the loop of firmware/doc.go.
func (b *board) run(p *firmware.Program) firmware.Halt {
	var linkAt time.Duration
	for {
		if h, ok := p.Halted(); ok {
			return h
		}
		busy := false
		for i := 0; i < 8 && b.pump(); i++ {
			busy = true
		}
		for {
			d, ok := b.inbox.Take(b.buf[:])
			if !ok {
				break
			}
			busy = true
			p.Datagram(now(), d.Port, d.From, d.FromPort, b.buf[:d.N])
		}
		b.accept()
		for i := range b.slots {
			if !b.used[i] {
				continue
			}
			did, err := b.slots[i].Poll(now(), p, b.buf[:])
			if err != nil {
				b.listenFailed(b.slots[i].Port, err)
			}
			if b.conns[i].parked { // its port closed meanwhile
				b.release(i)
			}
			busy = busy || did
		}
		for i := range b.lis {
			if l := &b.lis[i]; l.closing && !l.busy() {
				l.stop()
			}
		}
		if now() >= p.Deadline() {
			p.Tick(now())
		}
		if now()-linkAt >= time.Second || b.rejoinAsked {
			linkAt = now()
			if !b.dev.IsLinkUp() || b.rejoinAsked {
				b.rejoinAsked = false
				b.rejoin(p)
			}
		}
		if !busy {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// rejoin tells the program the network is gone and joins it again, keeping
// the address (its lease still runs) and the program's state.
// Rejoin asks the loop to join again (see rejoin): the watchdog found the
// radio deaf though its link says up (pico-sdk#2153).
func (b *board) Rejoin() error {
	b.rejoinAsked = true
	return nil
}

func (b *board) rejoin(p *firmware.Program) {
	p.Lost(now())
	w := p.WLAN()
	forced := b.dev.IsLinkUp() // a deaf radio: a new join replaces the association
	for forced || !b.dev.IsLinkUp() {
		forced = false
		if err := b.dev.Join(w.SSID, cyw43439.JoinOptions{Passphrase: w.Password}); err != nil {
			end := now() + 5*time.Second
			for now() < end { // the LED blinks "connecting" meanwhile
				if now() >= p.Deadline() {
					p.Tick(now())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	p.Joined(now(), b.ip, b.bcast)
}

// listener is a TCP port's lneto tcp.Listener, the port's one node in the
// stack, and its pool (GetTCP, PutTCP): the tcp.Conns of the port's slots
// that wait for a connection (lnetoConn.offered). A peer's SYN takes one
// (its slot sees SYN-RECEIVED, then ESTABLISHED), and the listener hands it
// back when its handshake fails or, once accepted, when it is over or
// aborted; until then no other listener and no dial may use it.
type listener struct {
	l       tcp.Listener
	b       *board
	port    uint16 // 0: free
	open    bool   // registered with the stack
	closing bool   // Unlisten: no new connection; stops when none is left
}

// start registers l with the stack, a fresh lneto listener, if it is not.
func (l *listener) start() error {
	if l.open {
		return nil
	}
	if err := l.l.Reset(l.port, l); err != nil {
		return err
	}
	if err := l.b.stack.RegisterListenerTCP(&l.l); err != nil {
		l.l.Close()
		return err
	}
	l.open = true
	return nil
}

// stop closes l: the stack forgets it (its node's connection ID changes),
// the tcp.Conns it held are free again, and a slot still on its port parks
// at its next Listen.
func (l *listener) stop() {
	if l.open {
		l.l.Close()
		l.open = false
	}
	for i := range l.b.conns {
		c := &l.b.conns[i]
		if c.taker == l {
			c.taker = nil
			c.c.Abort()
		}
		if c.lis == l {
			c.lis = nil
		}
	}
	l.port, l.closing = 0, false
}

// busy: a connection through l is not over for its slot yet.
func (l *listener) busy() bool {
	for i := range l.b.conns {
		if c := &l.b.conns[i]; c.taker == l && (c.accepted || c.c.State().IsSynchronized()) {
			return true
		}
	}
	return false
}

// GetTCP is the listener's call for a peer's SYN: a waiting slot's
// tcp.Conn, or none (the peer gets a reset).
func (l *listener) GetTCP() (*tcp.Conn, any, tcp.Value) {
	if l.closing {
		return nil, nil, 0
	}
	for i := range l.b.conns {
		if c := &l.b.conns[i]; c.lis == l && c.offered && c.taker == nil {
			c.offered, c.taker = false, l
			return c.c, nil, tcp.Value(l.b.nextISS())
		}
	}
	return nil, nil, 0
}

// PutTCP is the listener handing a tcp.Conn back: a failed handshake (its
// slot then sees it closed, and waits again), or a connection that is
// over or that its slot aborted.
func (l *listener) PutTCP(conn *tcp.Conn) {
	for i := range l.b.conns {
		if c := &l.b.conns[i]; c.c == conn && c.taker == l {
			c.taker = nil
			if !conn.State().IsClosed() { // a handshake that failed: LISTEN again, or past ESTABLISHED unaccepted
				conn.Abort()
			}
			return
		}
	}
}

// lnetoConn is a firmware.SlotConn over one of lneto's TCP connections: an
// accepting slot's, offered to its port's listener while it waits, or a
// dial's (lis nil), a node of the stack's of its own.
type lnetoConn struct {
	c        *tcp.Conn
	lis      *listener // the port of an accepting slot
	taker    *listener // the listener that holds c, from its GetTCP to its PutTCP
	offered  bool      // waiting: lis may take c for the next SYN
	accepted bool      // lis accepted c: a connection of the program's
	parked   bool      // Listen found the port closed: the loop frees the slot
}

func (l *lnetoConn) Established() bool {
	return (l.lis == nil || l.accepted) && l.c.State().IsSynchronized()
}
func (l *lnetoConn) PeerDone() bool     { return !l.c.State().RxDataOpen() }
func (l *lnetoConn) Closed() bool       { return !l.offered && l.c.State().IsClosed() }
func (l *lnetoConn) Buffered() int      { return l.c.BufferedInput() }
func (l *lnetoConn) Close()             { l.c.Close() }
func (l *lnetoConn) RemoteAddr() []byte { return l.c.RemoteAddr() }
func (l *lnetoConn) HalfOpen() bool     { return l.c.State() == tcp.StateSynRcvd }

// Abort drops the connection; the listener holding c hands it back when it
// next looks (its connection ID changed).
func (l *lnetoConn) Abort() {
	l.c.Abort()
	l.offered = false
}

// Listen offers c to the port's listener for the next connection, or parks
// the slot when the port is no longer listened on.
func (l *lnetoConn) Listen() error {
	l.accepted = false
	if l.lis == nil || l.lis.closing {
		l.parked = true
		return nil
	}
	if err := l.lis.start(); err != nil {
		return err
	}
	l.offered = true
	return nil
}

func (l *lnetoConn) Read(p []byte) int {
	n, _ := l.c.Read(p[:min(len(p), l.c.BufferedInput())])
	return n
}
func (l *lnetoConn) Write(p []byte) int {
	n, _ := l.c.Write(p[:min(len(p), l.c.FreeOutput())])
	return n
}
