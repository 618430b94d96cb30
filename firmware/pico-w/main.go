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
//     connections: two listen for controllers, the others serve the apps'
//     listeners and dials. Nothing in the loop waits for a peer.
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
	used        [tcpConns]bool // the slot listens on a port or carries a dial
	nextID      control.ConnID // for accepted connections
	nextPort    uint16         // local port of the next dial
	pins        map[int]bool   // configured as outputs
	buf         [1500]byte
	frame       []byte
	tx          [cyw43439.MaxFrameSize]byte
	rejoinAsked bool // the watchdog's: join again though the link says up
}

var _ firmware.Board = (*board)(nil)

// Listen opens a port of the program's: a UDP port is one more the receive
// callback takes; a TCP port gets free slots (two for the control port).
func (b *board) Listen(pt firmware.Port) error {
	if !pt.TCP {
		b.udpPorts[pt.Num] = true
		return nil
	}
	want := 1
	if pt.Num == b.ctlPort {
		want = ctlConns
	}
	for i := range b.slots {
		if b.used[i] && !b.slots[i].Free() && b.conns[i].port == pt.Num && b.slots[i].ID < firmware.DialBase {
			want--
		}
	}
	for i := 0; i < len(b.slots) && want > 0; i++ {
		if !b.used[i] || b.slots[i].Free() {
			b.nextID++
			b.conns[i].port, b.used[i] = pt.Num, true
			b.slots[i].Listening(b.nextID, pt.Num) // its first Poll listens
			want--
		}
	}
	if want > 0 {
		return errors.New("no free TCP connection")
	}
	return nil
}

// Unlisten stops listening on a port; its connections go on.
func (b *board) Unlisten(pt firmware.Port) error {
	if !pt.TCP {
		delete(b.udpPorts, pt.Num)
		return nil
	}
	for i := range b.slots {
		if b.used[i] && b.conns[i].port == pt.Num && !b.tcp[i].State().IsSynchronized() {
			b.tcp[i].Abort()
			b.used[i] = false
		}
	}
	return nil
}

// Dial opens an outgoing connection on a free slot.
func (b *board) Dial(c control.ConnID, to node.Addr, port uint16) error {
	for i := range b.slots {
		if b.used[i] && !b.slots[i].Free() {
			continue
		}
		b.nextPort++
		if b.nextPort < 49152 {
			b.nextPort = 49152
		}
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
		b.conns[i] = lnetoConn{c: c, stack: b.stack}
		b.slots[i].Conn = &b.conns[i]
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
		for i := range b.slots {
			if !b.used[i] {
				continue
			}
			did, err := b.slots[i].Poll(now(), p, b.buf[:])
			if err != nil {
				b.log("listen: " + err.Error())
			}
			busy = busy || did
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

// lnetoConn is a firmware.SlotConn over one of lneto's TCP connections.
type lnetoConn struct {
	c     *tcp.Conn
	stack *xnet.StackAsync
	port  uint16
}

func (l *lnetoConn) Established() bool  { return l.c.State().IsSynchronized() }
func (l *lnetoConn) PeerDone() bool     { return !l.c.State().RxDataOpen() }
func (l *lnetoConn) Closed() bool       { return l.c.State().IsClosed() }
func (l *lnetoConn) Buffered() int      { return l.c.BufferedInput() }
func (l *lnetoConn) Close()             { l.c.Close() }
func (l *lnetoConn) RemoteAddr() []byte { return l.c.RemoteAddr() }
func (l *lnetoConn) HalfOpen() bool     { return l.c.State() == tcp.StateSynRcvd }
func (l *lnetoConn) Abort()             { l.c.Abort() }
func (l *lnetoConn) Listen() error      { return l.stack.ListenTCP4(l.c, l.port) }
func (l *lnetoConn) Read(p []byte) int {
	n, _ := l.c.Read(p[:min(len(p), l.c.BufferedInput())])
	return n
}
func (l *lnetoConn) Write(p []byte) int {
	n, _ := l.c.Write(p[:min(len(p), l.c.FreeOutput())])
	return n
}
