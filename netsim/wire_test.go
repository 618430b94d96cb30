package netsim_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/picosim/picosim/netsim"
)

// udpFrame builds an Ethernet frame of a UDP datagram.
func udpFrame(srcMAC, dstMAC tcpip.LinkAddress, src, dst netip.AddrPort, payload []byte) []byte {
	const eth, ipl, udpl = header.EthernetMinimumSize, header.IPv4MinimumSize, header.UDPMinimumSize
	f := make([]byte, eth+ipl+udpl+len(payload))
	header.Ethernet(f).Encode(&header.EthernetFields{SrcAddr: srcMAC, DstAddr: dstMAC, Type: header.IPv4ProtocolNumber})
	ip := header.IPv4(f[eth:])
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(ipl + udpl + len(payload)), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(src.Addr().As4()), DstAddr: tcpip.AddrFrom4(dst.Addr().As4())})
	ip.SetChecksum(^ip.CalculateChecksum())
	u := header.UDP(f[eth+ipl:])
	u.Encode(&header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Length: uint16(udpl + len(payload))})
	copy(u.Payload(), payload)
	x := header.PseudoHeaderChecksum(header.UDPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(udpl+len(payload)))
	u.SetChecksum(^u.CalculateChecksum(checksum.Checksum(payload, x)))
	return f
}

// A wire host's stack is outside netsim: frames for it reach its Wire,
// what it Transmits reaches the others, and the router answers its DHCP
// with the address the LAN routes to it.
func TestAWireHostExchangesFramesAndGetsItsAddressByDHCP(t *testing.T) {
	lan, err := netsim.New(netsim.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer lan.Close()
	var got [][]byte
	var w *netsim.Host
	w, err = lan.AddHost(netsim.HostConfig{Name: "emulated", Wire: func(f []byte) {
		got = append(got, append([]byte(nil), f...))
		// The outside stack answers ARP for its address, as lneto does.
		if header.Ethernet(f).Type() == header.ARPProtocolNumber {
			a := header.ARP(f[header.EthernetMinimumSize:])
			if a.Op() == header.ARPRequest && tcpip.AddrFromSlice(a.ProtocolAddressTarget()) == tcpip.AddrFrom4(w.IP().As4()) {
				reply := make([]byte, header.EthernetMinimumSize+header.ARPSize)
				header.Ethernet(reply).Encode(&header.EthernetFields{SrcAddr: w.MAC(), DstAddr: tcpip.LinkAddress(a.HardwareAddressSender()), Type: header.ARPProtocolNumber})
				r := header.ARP(reply[header.EthernetMinimumSize:])
				r.SetIPv4OverEthernet()
				r.SetOp(header.ARPReply)
				copy(r.HardwareAddressSender(), w.MAC())
				copy(r.ProtocolAddressSender(), a.ProtocolAddressTarget())
				copy(r.HardwareAddressTarget(), a.HardwareAddressSender())
				copy(r.ProtocolAddressTarget(), a.ProtocolAddressSender())
				lan.Clock().AfterFunc(0, func() { w.Transmit(reply) })
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := lan.AddHost(netsim.HostConfig{Name: "peer"})
	r := listen(t, peer, 5000)
	clk := lan.Clock()
	bcast := tcpip.LinkAddress([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})

	// DISCOVER from 0.0.0.0:68 to 255.255.255.255:67.
	m := make([]byte, 236, 300)
	m[0], m[1], m[2] = 1, 1, 6
	binary.BigEndian.PutUint32(m[4:], 0xdeadbeef)
	copy(m[28:], w.MAC())
	m = append(m, 99, 130, 83, 99, 53, 1, 1, 255)
	w.Transmit(udpFrame(w.MAC(), bcast, netip.MustParseAddrPort("0.0.0.0:68"), netip.MustParseAddrPort("255.255.255.255:67"), m))
	clk.Run(clk.Now() + 10*time.Millisecond)
	var offer []byte
	for _, f := range got {
		ip := header.IPv4(f[header.EthernetMinimumSize:])
		if ip.Protocol() == uint8(header.UDPProtocolNumber) && header.UDP(ip.Payload()).DestinationPort() == 68 {
			offer = header.UDP(ip.Payload()).Payload()
		}
	}
	if len(offer) < 240 || offer[0] != 2 || binary.BigEndian.Uint32(offer[4:]) != 0xdeadbeef {
		t.Fatalf("no OFFER for the DISCOVER (got %d frames)", len(got))
	}
	if yours := netip.AddrFrom4([4]byte(offer[16:20])); yours != w.IP() {
		t.Fatalf("OFFER of %v, the LAN routes %v to the host", yours, w.IP())
	}

	// A datagram each way.
	w.Transmit(udpFrame(w.MAC(), peer.MAC(), netip.AddrPortFrom(w.IP(), 5000), netip.AddrPortFrom(peer.IP(), 5000), []byte("hello")))
	conn, _ := peer.ListenUDP(6000, nil)
	n := len(got)
	conn.WriteTo([]byte("back"), netip.AddrPortFrom(w.IP(), 7000))
	clk.Run(clk.Now() + time.Second)
	if len(r.got) != 1 || r.got[0] != w.IP().String()+":hello" {
		t.Fatalf("the peer got %q", r.got)
	}
	back := false
	for _, f := range got[n:] {
		ip := header.IPv4(f[header.EthernetMinimumSize:])
		if ip.Protocol() == uint8(header.UDPProtocolNumber) && string(header.UDP(ip.Payload()).Payload()) == "back" {
			back = true
		}
	}
	if !back {
		t.Fatalf("the wire host never got the peer's datagram (%d frames after)", len(got)-n)
	}
}

// The router answers a wire host's NTP request with the simulated wall
// clock, Epoch plus the LAN's time, and echoes the request's transmit time.
func TestTheRouterTellsAWireHostTheTime(t *testing.T) {
	lan, err := netsim.New(netsim.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer lan.Close()
	var got [][]byte
	w, _ := lan.AddHost(netsim.HostConfig{Name: "emulated", Wire: func(f []byte) { got = append(got, append([]byte(nil), f...)) }})
	clk := lan.Clock()
	clk.Run(90 * time.Second)
	req := make([]byte, 48)
	req[0] = 4<<3 | 3 // version 4, a client
	copy(req[40:48], "origin!!")
	router := netip.MustParseAddr("192.168.1.1")
	w.Transmit(udpFrame(w.MAC(), tcpip.LinkAddress([]byte{0x02, 0x50, 0x49, 0xff, 0xff, 0xfe}), netip.AddrPortFrom(w.IP(), 40123), netip.AddrPortFrom(router, 123), req))
	clk.Run(clk.Now() + 10*time.Millisecond)
	if len(got) != 1 {
		t.Fatalf("%d frames back", len(got))
	}
	ip := header.IPv4(got[0][header.EthernetMinimumSize:])
	u := header.UDP(ip.Payload())
	r := u.Payload()
	if u.SourcePort() != 123 || u.DestinationPort() != 40123 || len(r) != 48 || r[0]&7 != 4 || r[1] != 1 || string(r[24:32]) != "origin!!" {
		t.Fatalf("reply %x from port %d to %d", r, u.SourcePort(), u.DestinationPort())
	}
	secs := int64(binary.BigEndian.Uint32(r[40:44])) - 2208988800
	if want := netsim.Epoch.Add(90 * time.Second).Unix(); secs != want {
		t.Fatalf("transmit time %d, want %d (Epoch + 90 s)", secs, want)
	}
}
