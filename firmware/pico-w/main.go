//go:build tinygo && rp2040

// Command pico-w is the picosim firmware for the Raspberry Pi Pico W: the
// program of package firmware (discovery, election, the piconetcontrol
// server) over the board's CYW43439 radio (github.com/soypat/cyw43439) and
// the lneto network stack, with GPIO from package machine and the on-board
// LED driven through the radio chip.
//
//	tinygo build -target=pico-w -scheduler=tasks -o picosim.uf2 .
//
// Everything the cluster does lives in the firmware package, which the
// simulator and the emulated boards run too; this file is only the loop
// that feeds it, as firmware/doc.go describes. Known risks of the platform
// are handled here: lneto sends 255.255.255.255 to the gateway's MAC, so
// heartbeats go to the subnet broadcast address (the firmware's default on
// every board) and the stack accepts limited broadcast too; TCP connects to
// the board are flaky, so controllers retry (sim/ctl does).
//
// Written against cyw43439 v0.2.0 and the lneto it requires; TinyGo is not
// on every machine, so the CI workflow builds it (hack/tinygo-build.sh).
package main

import (
	"machine"
	"net/netip"
	"time"

	"github.com/soypat/cyw43439"
	"github.com/soypat/cyw43439/examples/cywnet"
	"github.com/soypat/lneto/tcp"
	"github.com/soypat/lneto/udp"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// Credentials for a board's first boot, before config/config_wlan.json is
// in its flash: hack/tinygo-build.sh --ssid/--password sets them.
var ssid, password = "picosim", "picosim-lan"

// conns is how many controllers may be connected at once.
const conns = 2

var start = time.Now()

func now() time.Duration { return time.Since(start) }

func main() {
	time.Sleep(time.Second) // a moment for a USB serial monitor to attach
	flash := loadStore()
	if _, ok := flash.ReadFile(firmware.FileWLAN); !ok {
		flash.WriteFile(firmware.FileWLAN, []byte(`{"ssid": "`+ssid+`", "pwd": "`+password+`", "port": 12345}`))
	}
	b := &board{pins: map[int]bool{}}
	for {
		p, err := firmware.Start(b, flash, firmware.Options{Board: "Raspberry Pi Pico W with RP2040", HeapBytes: 192 << 10}, now, time.Sleep)
		if err != nil {
			b.log("firmware: " + err.Error() + ": reflash the board")
			for {
				b.blink(100 * time.Millisecond) // an SOS of sorts: the image is gone
			}
		}
		stop := tickWhile(p) // the LED blinks "connecting" while the radio joins
		ip, bcast, err := b.join(p)
		stop()
		if err != nil {
			b.log("wifi: " + err.Error())
			time.Sleep(5 * time.Second)
			machine.CPUReset() // try again from a clean radio
		}
		p.Joined(now(), ip, bcast)
		h := b.run(p)
		if h.Kind == control.ActDeepSleep {
			b.dev.GPIOSet(0, false)
			time.Sleep(h.For) // the RP2040's dormant mode would lose the radio's state anyway
		}
		machine.CPUReset() // reset, update and the end of a deep sleep all boot afresh
	}
}

// board is the firmware.Board of a Pico W.
type board struct {
	dev   *cyw43439.Device
	stack *cywnet.Stack
	udp   udp.PacketConn
	tcp   [conns]tcp.Conn
	open  [conns]bool // tcp[i] is an established connection the program knows
	port  uint16
	pins  map[int]bool // configured as outputs
	buf   [1500]byte
}

var _ firmware.Board = (*board)(nil)

func (b *board) SendUDP(to node.Addr, port uint16, payload []byte) error {
	_, err := b.udp.WriteTo(payload, netip.AddrPortFrom(netip.AddrFrom4(to), port))
	return err
}

func (b *board) Write(c control.ConnID, data []byte) error {
	_, err := b.tcp[c].Write(data)
	return err
}

func (b *board) Close(c control.ConnID) error {
	b.open[c] = false
	return b.tcp[c].Close()
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
	if b.pins[pin] {
		delete(b.pins, pin)
	}
	p.Configure(machine.PinConfig{Mode: machine.PinInputPulldown})
	if p.Get() {
		return 1
	}
	return 0
}

func (b *board) Console(line []byte) {
	machine.Serial.Write(line)
	machine.Serial.Write([]byte{'\n'})
}

func (b *board) log(msg string) { b.Console([]byte(`{"event": "log", "detail": "` + msg + `"}`)) }

func (b *board) blink(d time.Duration) {
	if b.dev != nil {
		b.dev.GPIOSet(0, true)
		time.Sleep(d)
		b.dev.GPIOSet(0, false)
	}
	time.Sleep(d)
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
// address with DHCP and opens the discovery and control sockets; it returns
// the address and the subnet's broadcast address.
func (b *board) join(p *firmware.Program) (ip, bcast node.Addr, err error) {
	w := p.WLAN()
	cfg := cyw43439.DefaultWifiConfig()
	stack, err := cywnet.NewConfiguredPicoWithStack(w.SSID, w.Password, cfg, cywnet.StackConfig{
		Hostname:    p.Name(),
		MaxTCPPorts: conns,
		RandSeed:    int64(p.Incarnation()),
	})
	if err != nil {
		return ip, bcast, err
	}
	b.stack, b.dev = stack, stack.Device()
	go func() { // the stack needs its radio polled while DHCP waits
		for b.stack != nil {
			b.stack.RecvAndSend()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	dhcp, err := stack.SetupWithDHCP(cywnet.DHCPConfig{RequestedAddr: netip.AddrFrom4([4]byte{192, 168, 1, 99})})
	if err != nil {
		return ip, bcast, err
	}
	ls := stack.LnetoStack()
	if err := b.udp.Configure(udp.PacketConnConfig{RxBuf: make([]byte, 4096), TxBuf: make([]byte, 2048), RxQueueSize: 8, TxQueueSize: 4, RWBackoff: noWait{}}); err != nil {
		return ip, bcast, err
	}
	if err := b.udp.Open(netip.AddrPortFrom(dhcp.AssignedAddr, node.Port)); err != nil {
		return ip, bcast, err
	}
	if err := ls.RegisterListenerUDP(&b.udp); err != nil {
		return ip, bcast, err
	}
	b.port = w.Port
	for i := range b.tcp {
		if err := b.tcp[i].Configure(tcp.ConnConfig{RxBuf: make([]byte, 2048), TxBuf: make([]byte, 2048), TxPacketQueueSize: 3}); err != nil {
			return ip, bcast, err
		}
		if err := ls.ListenTCP(&b.tcp[i], b.port); err != nil {
			return ip, bcast, err
		}
	}
	ip = node.Addr(dhcp.AssignedAddr.As4())
	if dhcp.BroadcastAddr.IsValid() {
		return ip, node.Addr(dhcp.BroadcastAddr.As4()), nil
	}
	// A router that gives no broadcast option: compute it.
	return ip, firmware.SubnetBroadcast(ip, dhcp.Subnet.Bits()), nil
}

// run feeds the program until it halts: the loop of firmware/doc.go.
func (b *board) run(p *firmware.Program) firmware.Halt {
	ls := b.stack.LnetoStack()
	for {
		if h, ok := p.Halted(); ok {
			b.stack = nil
			return h
		}
		busy := false
		b.udp.SetReadDeadline(time.Now()) // read what is there, do not wait
		for {
			n, from, err := b.udp.ReadFrom(b.buf[:])
			if err != nil || n == 0 {
				break
			}
			busy = true
			if from.Addr().Is4() {
				p.Datagram(now(), node.Addr(from.Addr().As4()), from.Port(), b.buf[:n])
			}
		}
		for i := range b.tcp {
			c := &b.tcp[i]
			id := control.ConnID(i)
			st := c.State()
			switch {
			case !b.open[i] && st == tcp.StateEstablished:
				b.open[i] = true
				p.Opened(now(), id)
			case b.open[i] && st != tcp.StateEstablished && c.BufferedInput() == 0:
				b.open[i] = false
				p.Closed(now(), id)
			}
			if b.open[i] && c.BufferedInput() > 0 {
				n, _ := c.Read(b.buf[:])
				if n > 0 {
					busy = true
					p.Received(now(), id, b.buf[:n])
				}
			}
			if !b.open[i] && st.IsClosed() {
				c.Abort()
				if err := ls.ListenTCP(c, b.port); err != nil {
					b.log("listen: " + err.Error())
				}
			}
		}
		if now() >= p.Deadline() {
			p.Tick(now())
		}
		if !busy {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// noWait makes reads and writes give up at once instead of backing off:
// the loop comes back to them.
type noWait struct{}

func (noWait) Do(uint) {}
