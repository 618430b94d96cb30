package netsim

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// UDPConn is a UDP socket on a host's stack that may send to and receive
// from broadcast addresses. It never blocks: reads return ok=false when
// nothing is queued, and a callback tells when something is.
type UDPConn struct {
	ep    tcpip.Endpoint
	wq    waiter.Queue
	entry waiter.Entry
	watch bool // entry is registered
	buf   bytes.Buffer
}

// ListenUDP binds port on all of the host's addresses with broadcast on.
// onReadable, if not nil, is called whenever a datagram is queued, on the
// goroutine that delivered it and inside the stack: it must not read from or
// write to the stack itself, only arrange for that to happen (for example
// with a zero-delay timer on the LAN's clock).
func (h *Host) ListenUDP(port uint16, onReadable func()) (*UDPConn, error) {
	u := &UDPConn{}
	ep, err := h.stack.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &u.wq)
	if err != nil {
		return nil, fmt.Errorf("netsim: %s: UDP endpoint: %v", h.name, err)
	}
	ep.SocketOptions().SetBroadcast(true)
	if err := ep.Bind(tcpip.FullAddress{Port: port}); err != nil {
		ep.Close()
		return nil, fmt.Errorf("netsim: %s: bind UDP %d: %v", h.name, port, err)
	}
	u.ep = ep
	if onReadable != nil {
		u.entry = waiter.NewFunctionEntry(waiter.ReadableEvents, func(waiter.EventMask) { onReadable() })
		u.wq.EventRegister(&u.entry)
		u.watch = true
	}
	return u, nil
}

// ReadFrom returns the next queued datagram, if any. The payload is valid
// until the next call.
func (u *UDPConn) ReadFrom() (payload []byte, from netip.AddrPort, ok bool) {
	u.buf.Reset()
	res, err := u.ep.Read(&u.buf, tcpip.ReadOptions{NeedRemoteAddr: true})
	if err != nil {
		return nil, netip.AddrPort{}, false
	}
	a := res.RemoteAddr.Addr.As4()
	return u.buf.Bytes(), netip.AddrPortFrom(netip.AddrFrom4(a), res.RemoteAddr.Port), true
}

// WriteTo sends one datagram.
func (u *UDPConn) WriteTo(p []byte, to netip.AddrPort) error {
	if !to.Addr().Is4() {
		return errors.New("netsim: only IPv4 is simulated")
	}
	var r bytes.Reader
	r.Reset(p)
	dst := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(to.Addr().As4()), Port: to.Port()}
	if _, err := u.ep.Write(&r, tcpip.WriteOptions{To: &dst}); err != nil {
		return fmt.Errorf("netsim: send to %v: %v", to, err)
	}
	return nil
}

// Close releases the socket.
func (u *UDPConn) Close() {
	if u.watch {
		u.wq.EventUnregister(&u.entry)
	}
	u.ep.Close()
}
