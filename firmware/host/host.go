// Package host provides the Linux adapter of the firmware: the program of
// package firmware over kernel sockets, with its pins and LED in memory and
// its flash in a folder. It is an emulated Pico W: picosim's emulated target
// runs one per board, each in a network namespace of its own whose TAP
// device is on the simulated LAN, and reads its console (standard output).
//
// The adapter is the loop of firmware/doc.go: wait for an address (the
// radio joining), then feed the program datagrams, control connections and
// ticks from one goroutine; reader goroutines only hand what they read to it.
package host

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/internal/tlscert"
	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/control"
)

// Config describes one emulated board.
type Config struct {
	// Flash is the folder that holds the board's flash; a new folder is a
	// board fresh from the factory.
	Flash string
	// Name is the board's name when its settings (config/config_node.json)
	// give none. Default: the host name.
	Name string
	// Iface is the network interface whose IPv4 address the board takes:
	// the "radio". Default: the first interface but loopback that is up
	// and has one (lo only when named). With the real server's certificate
	// and key in the flash (config/ec_cert.der, config/ec_key.der), the
	// control port serves TLS, as piconetcontrol's server does.
	Iface string
	// Inputs are the levels of input pins, by GPIO number.
	Inputs map[int]int
	// Console receives the program's console lines. Default os.Stdout.
	Console io.Writer
	// AddrPoll is how often the address is looked at (joining, and noticing
	// a change or loss). Default 100ms.
	AddrPoll time.Duration
}

// Run runs the board until ctx ends, booting again after every reset,
// update and deep sleep. When ctx ends it says LEAVE, as a clean shutdown;
// killing the process instead is a power cut.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Flash == "" {
		return errors.New("host: no flash folder")
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	if cfg.Console == nil {
		cfg.Console = os.Stdout
	}
	if cfg.AddrPoll <= 0 {
		cfg.AddrPoll = 100 * time.Millisecond
	}
	if err := os.MkdirAll(cfg.Flash, 0o755); err != nil {
		return err
	}
	start := time.Now()
	now := func() time.Duration { return time.Since(start) }
	sleep := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	b := &board{cfg: cfg, now: now, console: &lockedWriter{w: cfg.Console}, pins: map[int]int{}}
	flash := DirFlash(cfg.Flash)
	opt := firmware.Options{Name: cfg.Name, Board: "picosim hostboard (emulated Raspberry Pi Pico W)",
		EpochNS: start.UnixNano(), Inflate: firmware.Inflate,
		Entropy: func() uint64 {
			var b [8]byte
			rand.Read(b[:])
			return binary.BigEndian.Uint64(b[:])
		}}
	for ctx.Err() == nil {
		p, retry, err := firmware.Start(b, flash, opt, now())
		if err != nil {
			return err
		}
		if p == nil { // the image crashed: the watchdog resets the board after a while
			sleep(retry)
			continue
		}
		halt, err := b.run(ctx, p, flash)
		if err != nil {
			return err
		}
		if halt.Kind == control.ActDeepSleep {
			sleep(halt.For)
		}
	}
	return nil
}

// board is the firmware.Board of one boot: its sockets die with it.
type board struct {
	cfg      Config
	now      func() time.Duration
	console  *lockedWriter
	pins     map[int]int   // emulated GPIO levels, control.LED included
	synCheck time.Duration // half-open connections were last looked for

	online bool // it has an address
	// tls, when the flash holds the real server's certificate and key
	// (config/ec_cert.der, config/ec_key.der), is served on ctlPort, as
	// piconetcontrol's server does with them; plain TCP otherwise.
	tls     *tls.Config
	ctlPort uint16
	udp     map[uint16]*net.UDPConn
	tcp     map[uint16]net.Listener
	conns   map[control.ConnID]*tcpConn
	next    control.ConnID
	inbox   chan input
	done    chan struct{} // closed when the boot ends: readers stop handing in
}

// input is what a reader goroutine hands the loop.
type input struct {
	kind    int // datagram, accepted, dialed, data, closed
	port    uint16
	from    netip.AddrPort
	conn    net.Conn
	id      control.ConnID
	err     error
	payload []byte
}

const (
	datagram = iota
	accepted
	dialed
	data
	closed
)

var _ firmware.Board = (*board)(nil)

// Listen opens a port of the program's on every address, so that both the
// subnet's and the limited broadcast arrive (Go turns SO_BROADCAST on).
func (b *board) Listen(pt firmware.Port) error {
	if !b.online {
		return errors.New("not on the network")
	}
	hand := b.hand()
	if !pt.TCP {
		if b.udp[pt.Num] != nil {
			return nil
		}
		udp, err := net.ListenUDP("udp4", &net.UDPAddr{Port: int(pt.Num)})
		if err != nil {
			return err
		}
		b.udp[pt.Num] = udp
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := udp.ReadFromUDPAddrPort(buf)
				if err != nil || !hand(input{kind: datagram, port: pt.Num, from: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), payload: append([]byte(nil), buf[:n]...)}) {
					return
				}
			}
		}()
		return nil
	}
	if b.tcp[pt.Num] != nil {
		return nil
	}
	ln, err := net.Listen("tcp4", fmt.Sprintf(":%d", pt.Num))
	if err != nil {
		return err
	}
	if b.tls != nil && pt.Num == b.ctlPort {
		ln = tls.NewListener(ln, b.tls)
	}
	b.tcp[pt.Num] = ln
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if !hand(input{kind: accepted, port: pt.Num, conn: conn}) {
				conn.Close()
				return
			}
		}
	}()
	return nil
}

func (b *board) Unlisten(pt firmware.Port) error {
	if pt.TCP {
		if ln := b.tcp[pt.Num]; ln != nil {
			delete(b.tcp, pt.Num)
			return ln.Close()
		}
	} else if c := b.udp[pt.Num]; c != nil {
		delete(b.udp, pt.Num)
		return c.Close()
	}
	return nil
}

func (b *board) SendUDP(from uint16, to node.Addr, port uint16, payload []byte) error {
	c := b.udp[from]
	if c == nil {
		return fmt.Errorf("UDP port %d is not open", from)
	}
	_, err := c.WriteToUDPAddrPort(payload, netip.AddrPortFrom(netip.AddrFrom4(to), port))
	return err
}

// Dial connects from a goroutine of its own; the loop hears how it went.
func (b *board) Dial(c control.ConnID, to node.Addr, port uint16) error {
	hand := b.hand()
	go func() {
		conn, err := net.DialTimeout("tcp4", netip.AddrPortFrom(netip.AddrFrom4(to), port).String(), 10*time.Second)
		if !hand(input{kind: dialed, id: c, conn: conn, err: err}) && conn != nil {
			conn.Close()
		}
	}()
	return nil
}

func (b *board) Write(c control.ConnID, p []byte) error {
	conn := b.conns[c]
	if conn == nil {
		return net.ErrClosed
	}
	if !conn.write(p) {
		delete(b.conns, c) // the program forgets it: no Closed follows
		conn.abort()
		return firmware.ErrCutOff
	}
	return nil
}

func (b *board) Peer(c control.ConnID) node.Addr {
	if conn := b.conns[c]; conn != nil {
		if a, err := netip.ParseAddrPort(conn.conn.RemoteAddr().String()); err == nil && a.Addr().Unmap().Is4() {
			return node.Addr(a.Addr().Unmap().As4())
		}
	}
	return node.Addr{}
}

func (b *board) Close(c control.ConnID) error {
	conn := b.conns[c]
	if conn == nil {
		return nil
	}
	delete(b.conns, c)
	conn.close()
	return nil
}

// tcpConn is one connection of a boot. Writes go through a queue and a
// goroutine of its own, so a peer that reads nothing stalls only that
// goroutine, never the board's loop; the queue is bounded by MaxBacklog,
// as on every target.
type tcpConn struct {
	conn   net.Conn
	q      chan []byte
	queued atomic.Int64 // bytes in q
	ended  bool         // q is closed (the loop's goroutine only)
}

func newTCPConn(c net.Conn) *tcpConn {
	t := &tcpConn{conn: c, q: make(chan []byte, 256)}
	go t.send()
	return t
}

func (t *tcpConn) send() {
	failed := false
	for p := range t.q {
		if !failed {
			_, err := t.conn.Write(p)
			failed = err != nil
		}
		t.queued.Add(-int64(len(p)))
	}
	t.conn.Close()
}

// write queues p; false when the peer already owes MaxBacklog bytes.
func (t *tcpConn) write(p []byte) bool {
	if t.ended || t.queued.Load()+int64(len(p)) > firmware.MaxBacklog {
		return false
	}
	select {
	case t.q <- append([]byte(nil), p...):
		t.queued.Add(int64(len(p)))
		return true
	default:
		return false
	}
}

// close ends the connection after what is queued, waiting at most a few
// seconds for a slow peer.
func (t *tcpConn) close() {
	if !t.ended {
		t.ended = true
		t.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		close(t.q)
	}
}

// abort drops the connection now, queued data and all (RST).
func (t *tcpConn) abort() {
	raw := t.conn
	if tc, ok := raw.(interface{ NetConn() net.Conn }); ok {
		raw = tc.NetConn() // TLS: the TCP connection under it
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	t.conn.Close()
	if !t.ended {
		t.ended = true
		close(t.q)
	}
}

func (b *board) SetPin(pin, value int) { b.pins[pin] = value }
func (b *board) ReadPin(pin int) int   { return b.cfg.Inputs[pin] }
func (b *board) Console(line []byte)   { b.console.writeLine(line) }

// lookForUnanswered tells the program of connection attempts to its TCP
// ports that the kernel holds half-open (SYN_RECV in /proc/net/tcp: its
// SYN-ACK got no answer), as a Pico W's stack shows a listener that never
// answers (soypat/cyw43439#82).
func (b *board) lookForUnanswered(p *firmware.Program, now time.Duration) {
	raw, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "03" { // 03: TCP_SYN_RECV
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if ok && err == nil && b.tcp[uint16(port)] != nil {
			p.Unanswered(now, uint16(port))
		}
	}
}

// Rejoin has nothing to do on Linux: the board's radio is the harness's
// (picosim's emulated target joins the board's door host again when it
// reads the program's wifi_rejoin event on the console).
func (b *board) Rejoin() error { return nil }

// run drives one boot of the program until it halts or ctx ends.
func (b *board) run(ctx context.Context, p *firmware.Program, flash firmware.Flash) (firmware.Halt, error) {
	b.conns, b.inbox, b.done = map[control.ConnID]*tcpConn{}, make(chan input, 256), make(chan struct{})
	b.ctlPort, b.tls = p.ControlPort(), controlTLS(flash, b.console)
	b.udp, b.tcp = map[uint16]*net.UDPConn{}, map[uint16]net.Listener{}
	defer b.shutdown()
	timer := time.NewTimer(0)
	defer timer.Stop()
	poll := time.NewTicker(b.cfg.AddrPoll)
	defer poll.Stop()
	var ip netip.Prefix
	b.lookAtAddress(p, &ip)
	for {
		if h, ok := p.Halted(); ok {
			return h, nil
		}
		wait := p.Deadline() - b.now()
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			p.Leave(b.now())
			return firmware.Halt{}, nil
		case <-poll.C:
			b.lookAtAddress(p, &ip)
			if now := b.now(); now-b.synCheck >= time.Second {
				b.synCheck = now
				b.lookForUnanswered(p, now)
			}
		case <-timer.C:
			p.Tick(b.now())
		case in := <-b.inbox:
			now := b.now()
			switch in.kind {
			case datagram:
				if in.from.Addr().Is4() {
					p.Datagram(now, in.port, node.Addr(in.from.Addr().As4()), in.from.Port(), in.payload)
				}
			case accepted:
				b.next++
				b.conns[b.next] = newTCPConn(in.conn)
				go b.read(b.next, in.conn)
				p.Opened(now, b.next, in.port)
			case dialed:
				if in.err == nil {
					b.conns[in.id] = newTCPConn(in.conn)
					go b.read(in.id, in.conn)
				}
				p.Connected(now, in.id, in.err)
			case data:
				if b.conns[in.id] != nil {
					p.Received(now, in.id, in.payload)
				}
			case closed:
				if c := b.conns[in.id]; c != nil {
					delete(b.conns, in.id)
					c.close() // after what was written: a half-closed peer gets its replies
					p.Closed(now, in.id)
				}
			}
		}
	}
}

// lookAtAddress notices the radio joining (an address appears), losing the
// network (it goes) or being given another address.
func (b *board) lookAtAddress(p *firmware.Program, cur *netip.Prefix) {
	got, err := address(b.cfg.Iface)
	if err != nil || got == *cur {
		return
	}
	now := b.now()
	if cur.IsValid() {
		p.Lost(now)
		b.closeSockets(p)
	}
	*cur = got
	if !got.IsValid() {
		return
	}
	b.online = true
	ip := node.Addr(got.Addr().As4())
	if err := p.Joined(now, ip, firmware.SubnetBroadcast(ip, got.Bits())); err != nil {
		line, _ := json.Marshal(map[string]string{"event": "boot_error", "detail": err.Error()})
		b.Console(line)
	}
}

// hand returns how a reader goroutine hands input to this boot's loop; it
// reports false once the boot is over.
func (b *board) hand() func(input) bool {
	inbox, done := b.inbox, b.done
	return func(in input) bool {
		select {
		case inbox <- in:
			return true
		case <-done:
			return false
		}
	}
}

func (b *board) read(id control.ConnID, conn net.Conn) {
	hand := b.hand()
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if n > 0 && !hand(input{kind: data, id: id, payload: append([]byte(nil), buf[:n]...)}) {
			return
		}
		if err != nil {
			hand(input{kind: closed, id: id, conn: conn})
			return
		}
	}
}

// closeSockets drops every socket, as the loss of the address does; the
// program hears of each connection that ends (p may be nil at shutdown).
func (b *board) closeSockets(p *firmware.Program) {
	b.online = false
	for port, c := range b.udp {
		c.Close()
		delete(b.udp, port)
	}
	for port, ln := range b.tcp {
		ln.Close()
		delete(b.tcp, port)
	}
	for id, c := range b.conns {
		c.abort()
		delete(b.conns, id)
		if p != nil {
			p.Closed(b.now(), id)
		}
	}
}

// shutdown ends a boot: sockets close, and the readers stop.
func (b *board) shutdown() {
	b.closeSockets(nil)
	close(b.done)
}

// address returns the IPv4 address and prefix of iface, or of the first
// interface that is up and has one; invalid when there is none yet.
func address(iface string) (netip.Prefix, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, ifc := range ifs {
		// Loopback only when named (a test's board on lo): never by default.
		if (iface != "" && ifc.Name != iface) || ifc.Flags&net.FlagUp == 0 || (iface == "" && ifc.Flags&net.FlagLoopback != 0) {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				ones, _ := ipn.Mask.Size()
				return netip.PrefixFrom(netip.AddrFrom4([4]byte(ipn.IP.To4())), ones), nil
			}
		}
	}
	return netip.Prefix{}, nil
}

// lockedWriter writes whole lines: the console may be shared.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) writeLine(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bw := bufio.NewWriterSize(l.w, len(p)+1)
	bw.Write(p)
	bw.WriteByte('\n')
	bw.Flush()
}

// DirFlash is a firmware.Flash in a folder: one file per flash file.
type DirFlash string

var _ firmware.Flash = DirFlash("")

func (d DirFlash) ReadFile(name string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(string(d), filepath.FromSlash(name)))
	return b, err == nil
}

// WriteFile replaces a file at once (write, then rename), as a power cut
// must not leave half a file.
func (d DirFlash) WriteFile(name string, data []byte) error {
	path := filepath.Join(string(d), filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (d DirFlash) Remove(name string) error {
	err := os.Remove(filepath.Join(string(d), filepath.FromSlash(name)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// controlTLS is the control port's TLS configuration from the pair in
// flash, or nil (plain TCP) when there is none; a pair that does not load
// is said on the console, and the port stays plain.
func controlTLS(flash firmware.Flash, console *lockedWriter) *tls.Config {
	certDER, ok1 := flash.ReadFile(tlscert.CertFile)
	keyDER, ok2 := flash.ReadFile(tlscert.KeyFile)
	if !ok1 || !ok2 {
		return nil
	}
	cert, err := tlscert.Load(certDER, keyDER)
	if err != nil {
		line, _ := json.Marshal(map[string]string{"event": firmware.EvConfigError, "detail": err.Error() + ": the control port serves plain TCP"})
		console.writeLine(line)
		return nil
	}
	return tlscert.ServerConfig(cert)
}
