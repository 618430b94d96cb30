package netsim

import (
	"errors"
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Forge sends one UDP datagram from h with a source address and port of the
// caller's choosing, as a rogue host on the same WiFi can: the nemesis of
// hostile scenarios. Only the IP source is a lie (the Ethernet source is h's
// own MAC, as a station's must be on a WiFi network); the frame takes the
// path of every other frame, through h's uplink, the receivers' links,
// partitions and the capture. dst is a host's address, the subnet's
// broadcast or 255.255.255.255. Call it on the clock's goroutine.
func (h *Host) Forge(src, dst netip.AddrPort, payload []byte) error {
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		return errors.New("netsim: forge: IPv4 addresses only")
	}
	l := h.lan
	dstMAC := header.EthernetBroadcastAddress
	if a := dst.Addr(); a != l.bcast && a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		l.mu.Lock()
		to := l.byIP[a]
		l.mu.Unlock()
		if to == nil {
			return fmt.Errorf("netsim: forge: no host has address %v", a)
		}
		dstMAC = to.mac
	}
	const ipLen, udpLen = header.IPv4MinimumSize, header.UDPMinimumSize
	if len(payload) > 1500-ipLen-udpLen {
		return fmt.Errorf("netsim: forge: %d bytes do not fit one 1500-byte frame", len(payload))
	}
	frame := make([]byte, header.EthernetMinimumSize+ipLen+udpLen+len(payload))
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: h.mac, DstAddr: dstMAC, Type: header.IPv4ProtocolNumber})
	s, d := tcpip.AddrFrom4(src.Addr().As4()), tcpip.AddrFrom4(dst.Addr().As4())
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(ipLen + udpLen + len(payload)), TTL: 64,
		Protocol: uint8(header.UDPProtocolNumber), SrcAddr: s, DstAddr: d})
	ip.SetChecksum(^ip.CalculateChecksum())
	u := header.UDP(ip[ipLen:])
	u.Encode(&header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Length: uint16(udpLen + len(payload))})
	copy(u.Payload(), payload)
	sum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, s, d, uint16(udpLen+len(payload)))
	u.SetChecksum(^checksum.Checksum(u, sum))
	l.transmit(h, frame)
	return nil
}
