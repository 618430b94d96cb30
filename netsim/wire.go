package netsim

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// outside is where a host without a stack here sends the frames it
// receives: a door's TAP device, or a wire host's program.
type outside interface{ write(frame []byte) }

// wire is HostConfig.Wire.
type wire func(frame []byte)

func (w wire) write(frame []byte) { w(frame) }

// Transmit sends an Ethernet frame from a wire host (HostConfig.Wire) onto
// the LAN, as its radio would: through its links, impairments and the
// capture. The LAN's router answers a DHCP request (dhcpDelay later) with
// the host's address, an ARP request for its own address (a stack that
// checks its gateway, as lneto's does), and an NTP request with the
// simulated wall clock (Epoch + the LAN's time). Call it on the clock's
// goroutine.
func (h *Host) Transmit(frame []byte) {
	if _, ok := h.door.(wire); !ok {
		return
	}
	frame = bytes.Clone(frame)
	h.lan.transmit(h, frame)
	reply := h.lan.dhcpReply(h, frame)
	if reply == nil {
		reply = h.lan.routerARP(h, frame)
	}
	if reply == nil {
		reply = h.lan.routerNTP(h, frame)
	}
	if reply != nil {
		h.lan.mu.Lock()
		gen, sent := h.gen, h.powered && (h.profile == nil || h.associated) && h.fault == "" && !h.lan.apDown()
		h.lan.mu.Unlock()
		if sent {
			h.lan.clock.AfterFunc(dhcpDelay, func() {
				var f udpFrame
				f.parse(reply)
				h.deliver(gen, reply, &f)
			})
		}
	}
}

// dhcpDelay is the router's time to answer a DHCP message.
const dhcpDelay = 2 * time.Millisecond

// DHCP (RFC 2131) as far as a client needs it: the router answers a
// DISCOVER with an OFFER and a REQUEST with an ACK, both of the address
// netsim gave the host, so that a stack outside netsim (lneto's DHCP
// client, say) gets the address the LAN already routes to it.
const (
	dhcpDiscover = 1
	dhcpOffer    = 2
	dhcpRequest  = 3
	dhcpAck      = 5
	bootpFixed   = 236 // op .. file, before the magic cookie
)

var dhcpMagic = []byte{99, 130, 83, 99}

// requestTo reads frame as an IPv4 UDP datagram to port, the router's
// services' requests (DHCP's come from 0.0.0.0, which the fast path's
// parser leaves to gVisor, so it is not that one).
func requestTo(frame []byte, port uint16) (header.IPv4, header.UDP, bool) {
	const eth = header.EthernetMinimumSize
	if len(frame) < eth+header.IPv4MinimumSize+header.UDPMinimumSize || header.Ethernet(frame).Type() != header.IPv4ProtocolNumber {
		return nil, nil, false
	}
	ip := header.IPv4(frame[eth:])
	if !ip.IsValid(len(ip)) || ip.Protocol() != uint8(header.UDPProtocolNumber) {
		return nil, nil, false
	}
	udp := header.UDP(ip.Payload())
	if len(udp) < header.UDPMinimumSize || udp.DestinationPort() != port {
		return nil, nil, false
	}
	return ip, udp, true
}

// dhcpReply is the router's answer to frame, if frame is a DHCP DISCOVER or
// REQUEST from h to the server port; nil otherwise.
func (l *LAN) dhcpReply(h *Host, frame []byte) []byte {
	_, udp, ok := requestTo(frame, 67)
	if !ok {
		return nil
	}
	m := udp.Payload()
	if len(m) < bootpFixed+len(dhcpMagic) || m[0] != 1 || !bytes.Equal(m[bootpFixed:bootpFixed+4], dhcpMagic) {
		return nil
	}
	kind := byte(0)
	for o := m[bootpFixed+4:]; len(o) > 0 && o[0] != 255; {
		if o[0] == 0 {
			o = o[1:]
			continue
		}
		if len(o) < 2 || len(o) < 2+int(o[1]) {
			return nil
		}
		if o[0] == 53 && o[1] == 1 {
			kind = o[2]
		}
		o = o[2+int(o[1]):]
	}
	var answer byte
	switch kind {
	case dhcpDiscover:
		answer = dhcpOffer
	case dhcpRequest:
		answer = dhcpAck
	default:
		return nil
	}
	l.mu.Lock()
	yours, router, bits := h.ip, l.router, l.cfg.Subnet.Bits()
	lease := uint32(24 * 3600)
	if l.cfg.Addressing == NewAtExpiry {
		lease = uint32(l.cfg.Lease / time.Second)
	}
	l.mu.Unlock()
	r := make([]byte, bootpFixed, bootpFixed+64)
	r[0], r[1], r[2] = 2, 1, 6 // BOOTREPLY, Ethernet, 6-byte addresses
	copy(r[4:8], m[4:8])       // xid
	copy(r[10:12], m[10:12])   // flags
	y, rt := yours.As4(), router.As4()
	copy(r[16:20], y[:])
	copy(r[20:24], rt[:])
	copy(r[28:44], m[28:44]) // chaddr
	r = append(r, dhcpMagic...)
	mb := maskBytes(bits)
	r = append(r, 53, 1, answer, 54, 4, rt[0], rt[1], rt[2], rt[3], 1, 4, mb[0], mb[1], mb[2], mb[3],
		3, 4, rt[0], rt[1], rt[2], rt[3], 6, 4, rt[0], rt[1], rt[2], rt[3], 51, 4)
	r = binary.BigEndian.AppendUint32(r, lease)
	r = append(r, 255)
	return appendUDPFrame(routerMAC, h.mac, netip.AddrPortFrom(router, 67), netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 68), 0, r)
}

// routerARP is the router's answer to frame, if frame is an ARP request
// for the router's address; nil otherwise.
func (l *LAN) routerARP(h *Host, frame []byte) []byte {
	const eth = header.EthernetMinimumSize
	if len(frame) < eth+header.ARPSize || header.Ethernet(frame).Type() != header.ARPProtocolNumber {
		return nil
	}
	a := header.ARP(frame[eth:])
	l.mu.Lock()
	router := l.router.As4()
	l.mu.Unlock()
	if !a.IsValid() || a.Op() != header.ARPRequest || !bytes.Equal(a.ProtocolAddressTarget(), router[:]) {
		return nil
	}
	r := make([]byte, eth+header.ARPSize)
	header.Ethernet(r).Encode(&header.EthernetFields{SrcAddr: routerMAC, DstAddr: tcpip.LinkAddress(a.HardwareAddressSender()), Type: header.ARPProtocolNumber})
	ra := header.ARP(r[eth:])
	ra.SetIPv4OverEthernet()
	ra.SetOp(header.ARPReply)
	copy(ra.HardwareAddressSender(), routerMAC)
	copy(ra.ProtocolAddressSender(), router[:])
	copy(ra.HardwareAddressTarget(), a.HardwareAddressSender())
	copy(ra.ProtocolAddressTarget(), a.ProtocolAddressSender())
	return r
}

// routerNTP is the router's NTP answer (RFC 5905, a server of stratum 1
// whose clock is Epoch plus the LAN's time) to frame, if frame is a client
// request to the router's port 123; nil otherwise.
func (l *LAN) routerNTP(h *Host, frame []byte) []byte {
	ip, udp, ok := requestTo(frame, 123)
	if !ok {
		return nil
	}
	l.mu.Lock()
	router, now := l.router, l.clock.Now()
	l.mu.Unlock()
	if ip.DestinationAddress() != tcpip.AddrFrom4(router.As4()) {
		return nil
	}
	req := udp.Payload()
	if len(req) < 48 || req[0]&7 != 3 { // mode 3: a client
		return nil
	}
	r := make([]byte, 48)
	r[0] = req[0]&0x38 | 4             // no leap warning, the client's version, mode 4: a server
	r[1], r[2], r[3] = 1, req[2], 0xec // stratum 1, the client's poll, precision 2^-20 s
	copy(r[12:16], "SIM\x00")
	t := ntpTime(Epoch.Add(now))
	copy(r[16:24], t)          // reference time
	copy(r[24:32], req[40:48]) // origin: the client's transmit time
	copy(r[32:40], t)          // received
	copy(r[40:48], t)          // transmitted
	src := ip.SourceAddress().As4()
	return appendUDPFrame(routerMAC, header.Ethernet(frame).SourceAddress(), netip.AddrPortFrom(router, 123), netip.AddrPortFrom(netip.AddrFrom4(src), udp.SourcePort()), 0, r)
}

// ntpTime is t as an NTP timestamp: seconds since 1900 and a binary
// fraction, 32 bits each, big-endian.
func ntpTime(t time.Time) []byte {
	secs := uint64(t.Unix() + 2208988800)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return binary.BigEndian.AppendUint64(nil, secs<<32|frac)
}

// routerMAC is the router's link address in the DHCP answers it sends.
var routerMAC = tcpip.LinkAddress([]byte{0x02, 0x50, 0x49, 0xff, 0xff, 0xfe})

// maskBytes is the netmask of a prefix length.
func maskBytes(bits int) [4]byte {
	m := ^uint32(0) << (32 - bits)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], m)
	return b
}
