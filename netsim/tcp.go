package netsim

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/picosim/picosim/netsim/clock"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The TCP API below runs everything on the clock's goroutine: gVisor's
// readiness callbacks only arm a zero-delay timer, and reads, writes and
// accepts happen when it fires. Servers written against it (a board's
// control server) need no goroutines, so a run stays in simulated time; the
// LAN's settle step (see LAN.settle) covers the part gVisor does on its own
// goroutines.

// service is the readiness plumbing shared by listeners and connections.
type service struct {
	host  *Host
	gen   uint64
	wq    *waiter.Queue
	entry waiter.Entry
	armed atomic.Bool
	timer clock.Timer
}

func (s *service) init(h *Host, mask waiter.EventMask, run func()) {
	h.lan.mu.Lock()
	s.host, s.gen = h, h.gen
	h.lan.mu.Unlock()
	s.timer = h.lan.clock.AfterFunc(clock.Never, func() {
		s.armed.Store(false)
		if s.alive() {
			run()
		}
	})
	s.entry = waiter.NewFunctionEntry(mask, func(waiter.EventMask) {
		if s.armed.CompareAndSwap(false, true) {
			s.timer.Reset(0)
		}
	})
	s.wq.EventRegister(&s.entry)
}

// alive reports whether the host still runs the boot the socket was made on.
func (s *service) alive() bool {
	s.host.lan.mu.Lock()
	defer s.host.lan.mu.Unlock()
	return s.host.powered && s.host.gen == s.gen
}

func (s *service) stop() {
	s.wq.EventUnregister(&s.entry)
	s.timer.Stop()
}

// TCPListener accepts connections on one port of a host.
type TCPListener struct {
	service
	port   uint16
	ep     tcpip.Endpoint // nil until the host's stack is built
	accept func(*TCPConn)
	closed bool
	// refused: a second listener on a port while there was no stack; the
	// stack, once built, opens and closes it as gVisor would have.
	refused bool
}

// ListenTCP listens on port; accept runs on the clock's goroutine for every
// new connection, which it must give an OnData (and may give an OnClose).
func (h *Host) ListenTCP(port uint16, accept func(*TCPConn)) (*TCPListener, error) {
	l := &TCPListener{port: port, accept: accept}
	l.wq = new(waiter.Queue)
	lan := h.lan
	if err := h.lockForSocket(port); err != nil {
		return nil, err
	}
	h.listens++
	if h.opened == nil {
		h.opened = map[uint16]uint64{}
	}
	h.opened[port] = h.listens
	s := h.stack
	if s == nil {
		// Opened with the stack (needStack), which a SYN for it builds.
		// The stack, once built, makes the endpoints in the order they
		// were asked for, refused and closed ones too: gVisor draws random
		// numbers for each (ephemeral ports, timers depend on them).
		h.pending = append(h.pending, func(s *stack.Stack) { l.open(s) })
		for _, o := range h.listeners {
			if o.port == port && !o.closed {
				l.refused = true // its endpoint is closed at once, whatever its bind does
				lan.mu.Unlock()
				return nil, fmt.Errorf("netsim: %s: bind TCP %d: %v", h.name, port, &tcpip.ErrPortInUse{})
			}
		}
		h.listeners = append(h.listeners, l)
		lan.mu.Unlock()
		l.init(h, waiter.ReadableEvents, l.drain)
		return l, nil
	}
	lan.mu.Unlock()
	if err := l.open(s); err != nil {
		return nil, err
	}
	l.init(h, waiter.ReadableEvents, l.drain)
	return l, nil
}

// open makes the listener's endpoint on the host's stack (a refused one is
// closed at once, as gVisor's failed bind left it).
func (l *TCPListener) open(s *stack.Stack) error {
	ep, err := s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, l.wq)
	if err != nil {
		return fmt.Errorf("netsim: TCP endpoint: %v", err)
	}
	if err := ep.Bind(tcpip.FullAddress{Port: l.port}); err != nil {
		ep.Close()
		return fmt.Errorf("netsim: bind TCP %d: %v", l.port, err)
	}
	if err := ep.Listen(16); err != nil {
		ep.Close()
		return fmt.Errorf("netsim: listen TCP %d: %v", l.port, err)
	}
	l.ep = ep
	if l.refused {
		ep.Close()
	}
	return nil
}

func (l *TCPListener) drain() {
	for {
		c := &TCPConn{}
		ep, wq, err := l.ep.Accept(nil)
		if err != nil {
			return // ErrWouldBlock: none left
		}
		c.ep = ep
		c.wq = wq
		c.attach(l.host)
		l.accept(c)
		c.serve() // data may have come with the handshake
	}
}

// Close stops listening.
func (l *TCPListener) Close() {
	l.stop()
	l.closed = true
	if l.ep != nil {
		l.ep.Close()
		return
	}
	// Not opened yet: the stack, once built, closes it in its turn.
	l.host.closeLater(func() {
		if l.ep != nil {
			l.ep.Close()
		}
	})
}

// TCPConn is one TCP connection driven from the clock's goroutine.
type TCPConn struct {
	service
	ep        tcpip.Endpoint
	out       []byte // written but not yet taken by the stack
	done      bool
	connected func(error)
	to        netip.AddrPort // the address DialTCP connects to
	buf       bytes.Buffer

	// OnData receives what arrives; the slice is valid during the call.
	OnData func([]byte)
	// OnClose runs once when the connection ends, for any reason.
	OnClose func()
	// OnWritable, if set, runs whenever the stack may have taken queued
	// data (its send buffer drained to half, or anything else woke the
	// connection): a writer waiting for Buffered to fall looks again then.
	OnWritable func()
	shut       bool // CloseWrite: FIN goes out once out is empty
	finSent    bool
	deaf       bool // StopReading: received data stays in the stack
}

// StopReading makes the connection a client that reads nothing: received
// data stays in the stack, whose receive buffer is cut to rcvbuf bytes, so
// the peer's window closes as it would against a stalled program.
func (c *TCPConn) StopReading(rcvbuf int) {
	c.deaf = true
	if !c.done {
		c.ep.SocketOptions().SetReceiveBufferSize(int64(rcvbuf), true)
	}
}

// DialTCP connects to addr; connected runs on the clock's goroutine with nil
// once connected, or the reason it failed. It returns the connection being
// made (nil when it failed at once): a caller that gives up waiting aborts
// it, as closing a socket in SYN_SENT does, so that a late answer from the
// peer is refused rather than turned into a connection nobody uses.
func (h *Host) DialTCP(to netip.AddrPort, connected func(*TCPConn, error)) *TCPConn {
	c := &TCPConn{}
	c.wq = new(waiter.Queue)
	s, err := h.needStack()
	if s == nil && err == nil {
		err = fmt.Errorf("netsim: %s is off", h.name)
	}
	if err == nil && h.Fault() == FaultStall {
		err = fmt.Errorf("connection aborted (ECONNABORTED): the radio stopped") // MicroPython v1.24's symptom
	}
	var ep tcpip.Endpoint
	if err == nil {
		var terr tcpip.Error
		if ep, terr = s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, c.wq); terr != nil {
			err = fmt.Errorf("%v", terr)
		}
	}
	if err != nil {
		h.lan.clock.AfterFunc(0, func() { connected(nil, fmt.Errorf("netsim: %s: TCP endpoint: %v", h.name, err)) })
		return nil
	}
	c.ep, c.to = ep, to
	c.connected = func(err error) { connected(c, err) }
	c.attach(h)
	switch err := ep.Connect(tcpip.FullAddress{Addr: tcpip.AddrFrom4(to.Addr().As4()), Port: to.Port()}); err.(type) {
	case nil, *tcpip.ErrConnectStarted:
	default:
		c.fail(connectError(to, err))
	}
	return c
}

// connectError says why a connect to "to" failed, in the words of the
// errno a socket would have reported.
func connectError(to netip.AddrPort, err tcpip.Error) error {
	var why string
	switch err.(type) {
	case *tcpip.ErrHostUnreachable:
		// Nobody answered ARP for the next hop (gVisor gives up 3 s after
		// the first request, as Linux does), or an ICMP error said so.
		why = "host unreachable (EHOSTUNREACH)"
	case *tcpip.ErrNetworkUnreachable:
		why = "network unreachable (ENETUNREACH)"
	case *tcpip.ErrConnectionRefused:
		why = "connection refused (ECONNREFUSED)"
	case *tcpip.ErrTimeout:
		why = "connection timed out (ETIMEDOUT)"
	default:
		return fmt.Errorf("netsim: connect to %v: %v", to, err)
	}
	return fmt.Errorf("netsim: connect to %v: %s: %v", to, why, err)
}

func (c *TCPConn) attach(h *Host) {
	c.init(h, waiter.ReadableEvents|waiter.WritableEvents|waiter.EventHUp|waiter.EventErr, c.serve)
}

// RemoteAddr returns the peer's address.
func (c *TCPConn) RemoteAddr() netip.AddrPort {
	a, err := c.ep.GetRemoteAddress()
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(a.Addr.As4()), a.Port)
}

// Write queues p and sends as much as the stack takes now; the rest follows
// as the peer acknowledges.
func (c *TCPConn) Write(p []byte) {
	if c.done || c.shut {
		return
	}
	c.out = append(c.out, p...)
	c.flush()
}

// Buffered returns how many written bytes wait here for room in the
// stack's send buffer (gVisor's TCP does not report what its own buffer
// holds: SendQueueSizeOption is not implemented for it). A writer bounds
// its memory by it: a peer that does not read fills the stack's buffer,
// and then this grows; OnWritable runs once the stack has drained to half.
func (c *TCPConn) Buffered() int {
	if c.done {
		return 0
	}
	return len(c.out)
}

// CloseWrite sends what is queued, then FIN, and keeps reading: the peer
// may still answer (a half-close).
func (c *TCPConn) CloseWrite() {
	if c.done || c.shut {
		return
	}
	c.shut = true
	c.flush()
}

// Abort drops the connection at once: what is queued is discarded and the
// peer gets RST. OnClose runs; a connect still in progress is given up
// instead, and its callback told so.
func (c *TCPConn) Abort() {
	if c.done {
		return
	}
	c.out = nil
	c.ep.Abort()
	if c.connected != nil {
		c.fail(fmt.Errorf("netsim: connect to %v: aborted", c.to))
		return
	}
	c.end()
}

// Close sends what is queued, then FIN.
func (c *TCPConn) Close() {
	if c.done {
		return
	}
	c.flush()
	c.end()
}

func (c *TCPConn) serve() {
	if c.done {
		return
	}
	if c.connected != nil {
		if c.ep.Readiness(waiter.WritableEvents|waiter.EventErr|waiter.EventHUp) == 0 {
			return // still connecting
		}
		if err := c.connectResult(); err != nil {
			c.fail(err) // fail reports it: c.connected is still set
			return
		}
		connected := c.connected
		c.connected = nil
		connected(nil)
	}
	c.flush()
	if c.OnWritable != nil && !c.done {
		c.OnWritable()
	}
	if c.deaf && c.ep.Readiness(waiter.EventHUp|waiter.EventErr) != 0 {
		c.end() // reset by the peer, say: it ends even unread
	}
	for !c.done && !c.deaf {
		c.buf.Reset()
		_, err := c.ep.Read(&c.buf, tcpip.ReadOptions{})
		if err != nil {
			if _, wait := err.(*tcpip.ErrWouldBlock); !wait {
				c.end() // closed by the peer, reset, or timed out
			}
			return
		}
		if c.OnData != nil && c.buf.Len() > 0 {
			c.OnData(c.buf.Bytes())
		}
	}
}

// connectResult is how a connect that has stopped waiting ended: nil if
// the endpoint is connected, else why not. gVisor's LastError returns (and
// clears) the endpoint's hard error first, the one a failed handshake
// leaves (tcpip.ErrorOption, SO_ERROR, is not implemented by its TCP), then
// the last soft error. An endpoint that is not connected never counts as
// one, even with no error left to say why.
func (c *TCPConn) connectResult() error {
	if err := c.ep.LastError(); err != nil {
		return connectError(c.to, err)
	}
	switch st := tcp.EndpointState(c.ep.State()); st {
	case tcp.StateEstablished, tcp.StateCloseWait, tcp.StateFinWait1, tcp.StateFinWait2,
		tcp.StateClosing, tcp.StateLastAck, tcp.StateTimeWait:
		return nil // connected, and perhaps closed by the peer since
	default:
		// A Read reports the hard error of an endpoint in StateError.
		var b bytes.Buffer
		if _, err := c.ep.Read(&b, tcpip.ReadOptions{}); err != nil {
			if _, wait := err.(*tcpip.ErrWouldBlock); !wait {
				return connectError(c.to, err)
			}
		}
		return fmt.Errorf("netsim: connect to %v: not connected (TCP state %v)", c.to, st)
	}
}

func (c *TCPConn) flush() {
	for len(c.out) > 0 && !c.done {
		var r bytes.Reader
		r.Reset(c.out)
		n, err := c.ep.Write(&r, tcpip.WriteOptions{})
		c.out = c.out[n:]
		if err != nil {
			if _, wait := err.(*tcpip.ErrWouldBlock); !wait {
				c.end()
			}
			return
		}
	}
	if c.shut && !c.finSent && len(c.out) == 0 && !c.done {
		c.finSent = true
		c.ep.Shutdown(tcpip.ShutdownWrite)
	}
}

func (c *TCPConn) fail(err error) {
	connected := c.connected
	c.connected = nil
	c.done = true
	c.stop()
	c.ep.Close()
	if connected != nil {
		connected(err)
	}
}

func (c *TCPConn) end() {
	if c.done {
		return
	}
	c.done = true
	c.stop()
	c.ep.Close()
	if c.OnClose != nil {
		c.OnClose()
	}
}
