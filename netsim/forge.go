package netsim

import (
	"errors"
	"fmt"
	"net/netip"

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
	if len(payload) > 1500-header.IPv4MinimumSize-header.UDPMinimumSize {
		return fmt.Errorf("netsim: forge: %d bytes do not fit one 1500-byte frame", len(payload))
	}
	frame := appendUDPFrame(h.mac, dstMAC, src, dst, 0, payload)
	l.transmit(h, frame)
	return nil
}
