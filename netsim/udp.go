package netsim

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// UDPConn is a UDP socket on a host's stack that may send to and receive
// from broadcast addresses. It never blocks: reads return ok=false when
// nothing is queued, and a callback tells when something is.
type UDPConn struct {
	host       *Host
	port       uint16
	ep         tcpip.Endpoint
	wq         waiter.Queue
	entry      waiter.Entry
	buf        bytes.Buffer // a datagram read from gVisor
	read       []byte       // the payload ReadFrom returns
	onReadable func()
	refused    bool // see ListenUDP

	// The socket's queue (see fastudp.go), guarded by the LAN's mutex:
	// datagrams from head on, their payload bytes, and the limit of those,
	// the endpoint's receive buffer size.
	q      []datagram
	head   int
	queued int
	limit  int
	closed bool
}

// ListenUDP binds port on all of the host's addresses with broadcast on.
// onReadable, if not nil, is called whenever a datagram is queued, on the
// goroutine that delivered it and inside the stack: it must not read from or
// write to the stack itself, only arrange for that to happen (for example
// with a zero-delay timer on the LAN's clock).
func (h *Host) ListenUDP(port uint16, onReadable func()) (*UDPConn, error) {
	u := &UDPConn{host: h, port: port, onReadable: onReadable, limit: udpReceiveBuffer()}
	// What gVisor queues for the socket moves to the socket's own queue
	// the moment gVisor says so (it tells after releasing the endpoint's
	// lock, on the goroutine that delivered): one queue, in the order
	// datagrams came, whichever path they took, and the socket hears of a
	// broadcast it loops back before the broadcast leaves, as with gVisor.
	u.entry = waiter.NewFunctionEntry(waiter.ReadableEvents, func(waiter.EventMask) { u.takeFromStack() })
	u.wq.EventRegister(&u.entry)
	l := h.lan
	if err := h.lockForSocket(port); err != nil {
		return nil, err
	}
	if s := h.stack; s != nil {
		l.mu.Unlock()
		if err := u.open(s); err != nil {
			return nil, err
		}
		l.mu.Lock()
		h.udp = append(h.udp, u)
		l.mu.Unlock()
		return u, nil
	}
	// No stack yet (and port is not 0: lockForSocket built one for that).
	// The stack, once built, makes the endpoints in the order they were
	// asked for, a refused one too: gVisor draws random numbers for them.
	if h.udpOn(port) != nil {
		u.closed, u.refused = true, true // its endpoint is closed at once, whatever its bind does
		h.pending = append(h.pending, func(s *stack.Stack) { u.open(s) })
		l.mu.Unlock()
		return nil, fmt.Errorf("netsim: %s: bind UDP %d: %v", h.name, port, &tcpip.ErrPortInUse{})
	}
	h.udp = append(h.udp, u)
	h.pending = append(h.pending, func(s *stack.Stack) { u.open(s) })
	l.mu.Unlock()
	return u, nil
}

// open makes the socket's endpoint on the host's stack, once there is one
// (a refused one is closed at once, as gVisor's failed bind left it).
func (u *UDPConn) open(s *stack.Stack) error {
	h := u.host
	ep, err := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &u.wq)
	if err != nil {
		return fmt.Errorf("netsim: %s: UDP endpoint: %v", h.name, err)
	}
	ep.SocketOptions().SetBroadcast(true)
	if err := ep.Bind(tcpip.FullAddress{Port: u.port}); err != nil {
		ep.Close()
		return fmt.Errorf("netsim: %s: bind UDP %d: %v", h.name, u.port, err)
	}
	if u.port == 0 { // the stack picked it: the fast path must know it
		a, _ := ep.GetLocalAddress()
		u.port = a.Port
	}
	u.ep = ep
	if u.refused {
		ep.Close()
	}
	return nil
}

// takeFromStack moves what gVisor queued for the socket to its own queue;
// call it without l.mu held.
func (u *UDPConn) takeFromStack() {
	for u.ep != nil {
		u.buf.Reset()
		res, err := u.ep.Read(&u.buf, tcpip.ReadOptions{NeedRemoteAddr: true})
		if err != nil {
			return // empty
		}
		u.take(bytes.Clone(u.buf.Bytes()), netip.AddrPortFrom(netip.AddrFrom4(res.RemoteAddr.Addr.As4()), res.RemoteAddr.Port))
	}
}

// ReadFrom returns the next queued datagram, if any. The payload is valid
// until the next call; the reader may write on it.
func (u *UDPConn) ReadFrom() (payload []byte, from netip.AddrPort, ok bool) {
	l := u.host.lan
	l.mu.Lock()
	defer l.mu.Unlock()
	if u.head == len(u.q) {
		return nil, netip.AddrPort{}, false
	}
	d := u.q[u.head]
	u.q[u.head] = datagram{}
	u.head++
	u.queued -= len(d.payload)
	if u.head == len(u.q) {
		u.q, u.head = u.q[:0], 0
	}
	// A copy: a fast-path payload is a slice of the frame every receiver
	// shares.
	u.read = append(u.read[:0], d.payload...)
	return u.read, d.from, true
}

// WriteTo sends one datagram.
func (u *UDPConn) WriteTo(p []byte, to netip.AddrPort) error {
	if !to.Addr().Is4() {
		return errors.New("netsim: only IPv4 is simulated")
	}
	if u.fastWrite(p, to) {
		return nil
	}
	if u.ep == nil {
		if _, err := u.host.needStack(); err != nil {
			return err
		}
	}
	if u.ep == nil || u.closed { // the host is off, or the socket closed
		return fmt.Errorf("netsim: send to %v: %v", to, &tcpip.ErrInvalidEndpointState{})
	}
	var r bytes.Reader
	r.Reset(p)
	dst := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(to.Addr().As4()), Port: to.Port()}
	if _, err := u.ep.Write(&r, tcpip.WriteOptions{To: &dst}); err != nil {
		return fmt.Errorf("netsim: send to %v: %v", to, err)
	}
	return nil
}

// udpOn returns h's socket of ListenUDP on port, if any; the caller holds
// l.mu.
func (h *Host) udpOn(port uint16) *UDPConn {
	for _, u := range h.udp {
		if u.port == port {
			return u
		}
	}
	return nil
}

// Close releases the socket.
func (u *UDPConn) Close() {
	h := u.host
	h.lan.mu.Lock()
	u.closed = true
	u.q, u.head, u.queued = nil, 0, 0
	h.udp = slices.DeleteFunc(h.udp, func(x *UDPConn) bool { return x == u })
	h.lan.mu.Unlock()
	u.wq.EventUnregister(&u.entry)
	if u.ep != nil {
		u.ep.Close()
		return
	}
	// Not opened yet: the stack, once built, closes it in its turn.
	h.closeLater(func() {
		if u.ep != nil {
			u.ep.Close()
		}
	})
}

// closeLater queues the closing of a socket made before the stack, after
// its opening, so that the stack, once built, sees the two in the order
// they came.
func (h *Host) closeLater(close func()) {
	h.lan.mu.Lock()
	defer h.lan.mu.Unlock()
	if h.powered && h.stack == nil {
		h.pending = append(h.pending, func(*stack.Stack) { close() })
	}
}

// udpReceiveBuffer is the receive buffer of a UDP endpoint of gVisor's,
// which the fast path's queue mimics before and after the stack is built.
var udpReceiveBuffer = sync.OnceValue(func() int {
	s := stack.New(stack.Options{NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol}})
	defer s.Destroy()
	var wq waiter.Queue
	ep, err := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if err != nil {
		panic("netsim: gVisor makes no UDP endpoint: " + err.String())
	}
	defer ep.Close()
	return int(ep.SocketOptions().GetReceiveBufferSize())
})

// lockForSocket readies h for a socket on port: its stack first when the
// port is 0 (the stack picks one), then l.mu held, on a host that is on.
func (h *Host) lockForSocket(port uint16) error {
	if port == 0 {
		if _, err := h.needStack(); err != nil {
			return err
		}
	}
	h.lan.mu.Lock()
	if !h.powered || h.door != nil {
		h.lan.mu.Unlock()
		return fmt.Errorf("netsim: %s: no stack: the host is off", h.name)
	}
	return nil
}
