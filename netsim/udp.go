package netsim

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

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
	buf        bytes.Buffer
	onReadable func()
	// inStack: gVisor may hold a datagram (its queue was readable since
	// the last read found it empty), so that a read of the fast path's
	// queue does not ask the stack in vain every time.
	inStack atomic.Bool

	// The fast path's queue (see fastudp.go), guarded by the LAN's mutex:
	// datagrams from head on, their payload bytes, and the limit of those,
	// the endpoint's receive buffer size.
	q         []datagram
	head      int
	queued    int
	limit     int
	overflows uint64
	closed    bool
}

// ListenUDP binds port on all of the host's addresses with broadcast on.
// onReadable, if not nil, is called whenever a datagram is queued, on the
// goroutine that delivered it and inside the stack: it must not read from or
// write to the stack itself, only arrange for that to happen (for example
// with a zero-delay timer on the LAN's clock).
func (h *Host) ListenUDP(port uint16, onReadable func()) (*UDPConn, error) {
	u := &UDPConn{host: h, port: port, onReadable: onReadable, limit: udpReceiveBuffer()}
	u.entry = waiter.NewFunctionEntry(waiter.ReadableEvents, func(waiter.EventMask) {
		u.inStack.Store(true)
		if onReadable != nil {
			onReadable()
		}
	})
	u.wq.EventRegister(&u.entry)
	l := h.lan
	if err := h.lockForSocket(port); err != nil {
		return nil, err
	}
	if port != 0 && h.udpOn(port) != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("netsim: %s: bind UDP %d: %v", h.name, port, &tcpip.ErrPortInUse{})
	}
	h.udp = append(h.udp, u)
	s := h.stack
	if s == nil {
		h.pending = append(h.pending, func(s *stack.Stack) { u.open(s) })
		l.mu.Unlock()
		return u, nil
	}
	l.mu.Unlock()
	if err := u.open(s); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}

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

// open makes the socket's endpoint on the host's stack, once there is one.
func (u *UDPConn) open(s *stack.Stack) error {
	if u.closed {
		return nil
	}
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
	u.ep = ep
	return nil
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

// ReadFrom returns the next queued datagram, if any. The payload is valid
// until the next call.
func (u *UDPConn) ReadFrom() (payload []byte, from netip.AddrPort, ok bool) {
	l := u.host.lan
	l.mu.Lock()
	if u.head < len(u.q) {
		d := u.q[u.head]
		u.q[u.head] = datagram{}
		u.head++
		u.queued -= len(d.payload)
		if u.head == len(u.q) {
			u.q, u.head = u.q[:0], 0
		}
		l.mu.Unlock()
		return d.payload, d.from, true
	}
	l.mu.Unlock()
	if !u.inStack.Load() || u.ep == nil {
		return nil, netip.AddrPort{}, false
	}
	u.buf.Reset()
	res, err := u.ep.Read(&u.buf, tcpip.ReadOptions{NeedRemoteAddr: true})
	if err != nil {
		// Cleared before a second look: a datagram queued in between
		// sets it again.
		u.inStack.Store(false)
		if res, err = u.ep.Read(&u.buf, tcpip.ReadOptions{NeedRemoteAddr: true}); err != nil {
			return nil, netip.AddrPort{}, false
		}
		u.inStack.Store(true)
	}
	a := res.RemoteAddr.Addr.As4()
	return u.buf.Bytes(), netip.AddrPortFrom(netip.AddrFrom4(a), res.RemoteAddr.Port), true
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
		if u.ep == nil {
			return fmt.Errorf("netsim: %s: UDP %d is closed, or the host is off", u.host.name, u.port)
		}
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
	}
}
