package netsim

import (
	"encoding/binary"
	"math"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// The fast path for UDP. A broadcast reaches every board, and gVisor's
// receive path (NIC, IPv4, demultiplexer, UDP endpoint) cost ~8 µs a
// receiver: with N boards that is N² work a heartbeat round, most of a run's
// CPU. A datagram that gVisor would hand unchanged to a socket of
// ListenUDP is handed to it here instead: the frame is parsed and its
// checksums verified once for all its receivers, and each receiver's check
// (its address, the socket's port, the receive buffer) is what gVisor's
// would be. Anything else (another protocol, IP options, fragments, a bad
// checksum, a martian address, a port nobody listens on, which gVisor
// answers with an ICMP error) goes to the stack as before, so that what a
// board observes does not depend on the path.

// limitedBroadcast is 255.255.255.255.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// appendUDPFrame builds an Ethernet frame of one UDP datagram, as gVisor
// does for a socket with default options: TTL 64, don't-fragment set (the
// default path-MTU discovery, "want") and so IP ID 0, and the UDP checksum
// computed, all ones in place of zero. A forged frame sets its own flags.
func appendUDPFrame(srcMAC, dstMAC tcpip.LinkAddress, src, dst netip.AddrPort, flags uint8, payload []byte) []byte {
	const ipLen, udpLen = header.IPv4MinimumSize, header.UDPMinimumSize
	frame := make([]byte, header.EthernetMinimumSize+ipLen+udpLen+len(payload))
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: srcMAC, DstAddr: dstMAC, Type: header.IPv4ProtocolNumber})
	s, d := tcpip.AddrFrom4(src.Addr().As4()), tcpip.AddrFrom4(dst.Addr().As4())
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(ipLen + udpLen + len(payload)), TTL: 64, Flags: flags,
		Protocol: uint8(header.UDPProtocolNumber), SrcAddr: s, DstAddr: d})
	ip.SetChecksum(^ip.CalculateChecksum())
	u := header.UDP(ip[ipLen:])
	u.Encode(&header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Length: uint16(udpLen + len(payload))})
	copy(u.Payload(), payload)
	xsum := checksum.Checksum(u, header.PseudoHeaderChecksum(header.UDPProtocolNumber, s, d, uint16(udpLen+len(payload))))
	if xsum != math.MaxUint16 {
		xsum = ^xsum
	}
	u.SetChecksum(xsum)
	return frame
}

// fastWrite sends a broadcast datagram without gVisor, byte for byte as
// gVisor would (the fast-path tests compare captures of both), and reports
// whether it did; other datagrams (unicast ones need ARP) take the stack.
func (u *UDPConn) fastWrite(p []byte, to netip.AddrPort) bool {
	h := u.host
	l := h.lan
	// Only to its own port (gVisor loops a broadcast back to the host's
	// socket on the destination port, and that is the sender's then) and
	// never to port 0, which gVisor refuses.
	if a := to.Addr(); l.cfg.GVisorOnly || (a != l.bcast && a != limitedBroadcast) || to.Port() != u.port || u.port == 0 {
		return false
	}
	l.mu.Lock()
	ok := h.powered && h.door == nil && !u.closed && h.udpOn(u.port) == u &&
		len(p) <= int(h.mtu)-header.IPv4MinimumSize-header.UDPMinimumSize
	src := h.ip
	l.mu.Unlock()
	if !ok {
		return false
	}
	frame := appendUDPFrame(h.mac, header.EthernetBroadcastAddress, netip.AddrPortFrom(src, u.port), to, header.IPv4FlagDontFragment, p)
	// gVisor loops a broadcast back to the sender's own socket first, then
	// sends it.
	var f udpFrame
	f.parse(frame)
	u.take(f.payload, f.src)
	l.transmit(h, frame)
	return true
}

// udpFrame is an Ethernet frame parsed as one whole IPv4/UDP datagram.
type udpFrame struct {
	frame   []byte // what was parsed, to tell whether a copy is the same frame
	ok      bool   // well-formed with valid checksums, no options or fragments
	src     netip.AddrPort
	dst     [4]byte
	port    uint16
	payload []byte
}

// parseUDP fills f from frame; f.ok is false for any frame the fast path
// leaves to gVisor.
func (f *udpFrame) parse(frame []byte) {
	*f = udpFrame{frame: frame}
	const eth = header.EthernetMinimumSize
	if len(frame) < eth+header.IPv4MinimumSize+header.UDPMinimumSize ||
		frame[12] != 0x08 || frame[13] != 0x00 {
		return
	}
	ip := header.IPv4(frame[eth:])
	if ip[0] != 0x45 || // version 4, no options
		int(ip.TotalLength()) != len(ip) || // no Ethernet padding to trim
		ip.Flags()&header.IPv4FlagMoreFragments != 0 || ip.FragmentOffset() != 0 ||
		ip.Protocol() != uint8(header.UDPProtocolNumber) ||
		!ip.IsChecksumValid() {
		return
	}
	src, dst := ip.SourceAddress().As4(), ip.DestinationAddress().As4()
	switch {
	case src[0] == 127 || dst[0] == 127, // martians: gVisor drops them
		src[0] >= 224, // multicast, broadcast
		dst[0] >= 224 && dst != [4]byte{255, 255, 255, 255},
		src == [4]byte{}: // DHCP's unspecified source: rare, leave it to gVisor
		return
	}
	u := header.UDP(ip[header.IPv4MinimumSize:])
	if int(u.Length()) != len(u) {
		return
	}
	if sum := u.Checksum(); sum != 0 {
		xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(u)))
		if checksum.Checksum(u, xsum) != 0xffff {
			return
		}
	}
	f.ok = true
	f.src = netip.AddrPortFrom(netip.AddrFrom4(src), u.SourcePort())
	f.dst = dst
	f.port = binary.BigEndian.Uint16(u[2:4])
	f.payload = u[header.UDPMinimumSize:]
}

// fastUDP returns the socket of h that f goes to, if the fast path takes
// it; the caller holds l.mu. The checks are gVisor's, for a host whose one
// address is h.ip on the LAN's subnet: the datagram is for h's address, the
// subnet's broadcast or 255.255.255.255, and does not come from the
// subnet's broadcast (which gVisor drops). One from h's own address is left
// to gVisor, which takes it (netsim's stacks do not set HandleLocal): rare,
// and the socket's one queue keeps the order either way.
func (h *Host) fastUDP(f *udpFrame) *UDPConn {
	if !f.ok || h.lan.cfg.GVisorOnly {
		return nil
	}
	u := h.udpOn(f.port)
	if u == nil {
		return nil
	}
	own, bcast := h.ip.As4(), h.lan.bcast.As4()
	src := f.src.Addr().As4()
	if src == own || src == bcast {
		return nil
	}
	if f.dst != own && f.dst != bcast && f.dst != [4]byte{255, 255, 255, 255} {
		return nil
	}
	return u
}

// datagram is one queued on the fast path.
type datagram struct {
	payload []byte // a slice of the frame (frames are never written once sent), or a copy of gVisor's
	from    netip.AddrPort
}

// push queues a datagram as gVisor's UDP endpoint does: dropped while the
// bytes already queued reach the receive buffer's size. The caller holds
// l.mu; it reports whether the socket should hear that it is readable:
// gVisor tells only when its queue was empty (of bytes) before.
func (u *UDPConn) push(payload []byte, from netip.AddrPort) bool {
	if u.closed || u.queued >= u.limit {
		return false
	}
	wasEmpty := u.queued == 0
	u.q = append(u.q, datagram{payload, from})
	u.queued += len(payload)
	return wasEmpty
}

// take queues a datagram and tells the socket's owner, if it should hear
// of it; call it without l.mu held.
func (u *UDPConn) take(payload []byte, from netip.AddrPort) {
	l := u.host.lan
	l.mu.Lock()
	tell := u.push(payload, from) && u.onReadable != nil
	l.mu.Unlock()
	if tell {
		u.onReadable()
	}
}

// unheard reports whether a frame is one that a host's stack would take
// without a trace (no reply, no state, no timer), so that a host with no
// stack yet need not build one for it: an ARP request for another address
// (gVisor learns nothing from those), an ARP reply (a stack just built has
// asked nobody, and gVisor drops confirmations it did not ask for), and a
// broadcast datagram for a port no socket has (gVisor sends no ICMP error
// for a broadcast). The caller holds l.mu.
func (h *Host) unheard(frame []byte, f *udpFrame) bool {
	const eth = header.EthernetMinimumSize
	if len(frame) >= eth+header.ARPSize && frame[12] == 0x08 && frame[13] == 0x06 {
		a := header.ARP(frame[eth:])
		if !a.IsValid() {
			return true // gVisor counts it malformed
		}
		switch a.Op() {
		case header.ARPReply:
			return true
		case header.ARPRequest:
			// gVisor answers for its address and for the broadcast
			// ones, which it holds too (and learns the asker).
			t := [4]byte(a.ProtocolAddressTarget())
			return t != h.ip.As4() && t != h.lan.bcast.As4() && t != [4]byte{255, 255, 255, 255}
		}
		return true // neither: gVisor ignores it
	}
	if !f.ok || h.udpOn(f.port) != nil {
		return false
	}
	if src := f.src.Addr().As4(); src == h.ip.As4() || src == h.lan.bcast.As4() {
		return false
	}
	return f.dst == h.lan.bcast.As4() || f.dst == [4]byte{255, 255, 255, 255}
}
