//go:build tinygo && rp2040

// Command pico-w is the picosim firmware for the Raspberry Pi Pico W: the
// program of package firmware (discovery, election, the piconetcontrol
// server) over the board's CYW43439 radio (github.com/soypat/cyw43439), the
// lneto network stack, and GPIO from package machine.
//
//	hack/tinygo-build.sh    # tinygo build -target=pico-w -scheduler=tasks
//
// Everything the board does lives in package firmware, which the emulated
// boards run too and the host's tests cover; this file is the loop that
// feeds it (firmware/doc.go) and the few lines that touch the hardware.
// What it does, and why here:
//
//   - Discovery frames go around lneto (see firmware/ether.go): the radio's
//     receive callback takes UDP frames of the discovery port into a
//     firmware.Inbox, and heartbeats leave as whole Ethernet frames, broadcast
//     to the subnet. lneto keeps DHCP, ARP and the control port's TCP.
//   - Each control connection is a firmware.Slot over one of lneto's fixed
//     TCP connections: nothing in the loop waits for a controller.
//   - The flash is a firmware.FlashStore at the end of machine.Flash.
//   - A board's default name is firmware.DefaultName of its flash chip's
//     unique ID, so a fresh board joins WiFi (the DHCP client needs a name).
//
// The lines here run only on a board (or, one day, an emulated RP2040):
// machine, the radio driver and lneto do not build for the host.
package main

import (
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
	conns     = 2         // control connections at once: lneto's TCP ports
	heapBytes = 200 << 10 // what get_info reports the heap against
	inboxSize = 8 << 10   // discovery frames waiting for the loop
	neighbors = 16        // MACs remembered for unicast replies
)

var start = time.Now()

func now() time.Duration { return time.Since(start) }

func main() {
	time.Sleep(time.Second) // a moment for a USB serial monitor to attach
	b := &board{pins: map[int]bool{}, inbox: firmware.NewInbox(inboxSize), peers: firmware.NewNeighbors(neighbors)}
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
	}
	p, err := firmware.Start(b, flash, opt, now, time.Sleep)
	if err != nil {
		b.fail("firmware: " + err.Error() + ": reflash the board")
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
	dev   *cyw43439.Device
	stack *xnet.StackAsync
	mac   [6]byte
	ip    node.Addr
	bcast node.Addr
	inbox *firmware.Inbox
	peers *firmware.Neighbors
	tcp   [conns]tcp.Conn
	slots [conns]firmware.Slot
	pins  map[int]bool // configured as outputs
	buf   [1500]byte
	frame []byte
	tx    [cyw43439.MaxFrameSize]byte
}

var _ firmware.Board = (*board)(nil)

// SendUDP sends a discovery datagram as a whole frame: broadcast for the
// subnet's or the limited broadcast address, else to the MAC the peer was
// last heard from (broadcast when it never was: every other station drops
// it at its IP layer).
func (b *board) SendUDP(to node.Addr, port uint16, payload []byte) error {
	mac := firmware.BroadcastMAC
	if to != b.bcast && to != firmware.LimitedBroadcast {
		if m, ok := b.peers.MAC(to); ok {
			mac = m
		}
	}
	b.frame = firmware.AppendUDPFrame(b.frame[:0], firmware.UDPFrame{
		DstMAC: mac, SrcMAC: b.mac, Src: b.ip, Dst: to, SrcPort: node.Port, DstPort: port, Payload: payload})
	return b.dev.SendEth(b.frame)
}

// receive is the radio's callback for every frame, inside the driver: the
// discovery port's datagrams wait in the inbox, the rest go to lneto.
func (b *board) receive(pkt []byte) {
	f, ok := firmware.ParseUDPFrame(pkt)
	if ok && f.DstPort == node.Port && (f.Dst == b.ip || f.Dst == b.bcast || f.Dst == firmware.LimitedBroadcast) {
		b.peers.Learn(f.Src, f.SrcMAC)
		b.inbox.Put(f.Src, f.SrcPort, f.Payload)
		return
	}
	b.stack.IngressEthernet(pkt)
}

func (b *board) Write(c control.ConnID, data []byte) error { return b.slots[c].Write(data) }
func (b *board) Close(c control.ConnID) error              { return b.slots[c].Close() }

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
		MaxActiveTCPPorts: conns,
		// Discovery needs no UDP port of lneto's (it goes around it), so the
		// three lneto keeps for itself (DHCP, DNS, NTP) are all there is.
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
		b.slots[i] = firmware.Slot{ID: control.ConnID(i), Conn: &lnetoConn{c: c, stack: b.stack, port: p.ControlPort()}}
	}
	return p.Joined(now(), b.ip, b.bcast)
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
			from, port, n, ok := b.inbox.Take(b.buf[:])
			if !ok {
				break
			}
			busy = true
			p.Datagram(now(), from, port, b.buf[:n])
		}
		for i := range b.slots {
			did, err := b.slots[i].Poll(now(), p, b.buf[:])
			if err != nil {
				b.log("listen: " + err.Error())
			}
			busy = busy || did
		}
		if now() >= p.Deadline() {
			p.Tick(now())
		}
		if now()-linkAt >= time.Second {
			linkAt = now()
			if !b.dev.IsLinkUp() {
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
func (b *board) rejoin(p *firmware.Program) {
	p.Lost(now())
	w := p.WLAN()
	for !b.dev.IsLinkUp() {
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

func (l *lnetoConn) Established() bool { return l.c.State().IsSynchronized() }
func (l *lnetoConn) PeerDone() bool    { return !l.c.State().RxDataOpen() }
func (l *lnetoConn) Closed() bool      { return l.c.State().IsClosed() }
func (l *lnetoConn) Buffered() int     { return l.c.BufferedInput() }
func (l *lnetoConn) Close()            { l.c.Close() }
func (l *lnetoConn) Abort()            { l.c.Abort() }
func (l *lnetoConn) Listen() error     { return l.stack.ListenTCP4(l.c, l.port) }
func (l *lnetoConn) Read(p []byte) int {
	n, _ := l.c.Read(p[:min(len(p), l.c.BufferedInput())])
	return n
}
func (l *lnetoConn) Write(p []byte) int {
	n, _ := l.c.Write(p[:min(len(p), l.c.FreeOutput())])
	return n
}
