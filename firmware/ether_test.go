package firmware_test

import (
	"bytes"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/picosim/picosim/firmware"
	"github.com/picosim/picosim/node"
)

var heartbeat = firmware.UDPFrame{
	DstMAC: firmware.BroadcastMAC, SrcMAC: [6]byte{0x28, 0xcd, 0xc1, 1, 2, 3},
	Src: node.Addr{192, 168, 1, 23}, Dst: node.Addr{192, 168, 1, 255},
	SrcPort: node.Port, DstPort: node.Port, Payload: []byte{3, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 5, 'p', 'i', 'c', 'o', '1', 0},
}

// TestUDPFramesAreWhatGVisorReads checks the frames a Pico W sends around
// its stack against an independent decoder (gVisor's), checksums included:
// a wrong checksum and every other board would drop every heartbeat.
func TestUDPFramesAreWhatGVisorReads(t *testing.T) {
	for _, size := range []int{0, 1, 17, 18, 1000, firmware.MaxUDPPayload} {
		f := heartbeat
		f.Payload = bytes.Repeat([]byte{0xa5}, size)
		b := firmware.AppendUDPFrame([]byte("junk"), f)[4:]
		if len(b) < 60 {
			t.Fatalf("%d-byte payload: a %d-byte frame is shorter than Ethernet's minimum", size, len(b))
		}
		eth := header.Ethernet(b)
		if eth.Type() != header.IPv4ProtocolNumber || eth.DestinationAddress() != tcpip.LinkAddress(f.DstMAC[:]) || eth.SourceAddress() != tcpip.LinkAddress(f.SrcMAC[:]) {
			t.Fatalf("ethernet header %x", b[:14])
		}
		ip := header.IPv4(b[header.EthernetMinimumSize:])
		if !ip.IsValid(len(ip)) || !ip.IsChecksumValid() || ip.TransportProtocol() != header.UDPProtocolNumber || ip.TTL() != 64 || ip.Flags()&header.IPv4FlagDontFragment == 0 {
			t.Fatalf("%d-byte payload: IPv4 header %x", size, ip[:20])
		}
		if ip.SourceAddress() != tcpip.AddrFrom4(f.Src) || ip.DestinationAddress() != tcpip.AddrFrom4(f.Dst) {
			t.Fatalf("addresses %v -> %v", ip.SourceAddress(), ip.DestinationAddress())
		}
		udp := header.UDP(ip.Payload())
		sum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), udp.Length())
		if udp.SourcePort() != node.Port || udp.DestinationPort() != node.Port || int(udp.Length()) != 8+size ||
			!udp.IsChecksumValid(ip.SourceAddress(), ip.DestinationAddress(), checksum.Checksum(udp.Payload(), 0)) || sum == 0 {
			t.Fatalf("%d-byte payload: UDP header %x", size, udp[:8])
		}
		if !bytes.Equal(udp.Payload(), f.Payload) {
			t.Fatalf("%d-byte payload came back as %d bytes", size, len(udp.Payload()))
		}
		got, ok := firmware.ParseUDPFrame(b)
		if !ok || got.Src != f.Src || got.Dst != f.Dst || got.SrcMAC != f.SrcMAC || got.SrcPort != f.SrcPort || got.DstPort != f.DstPort || !bytes.Equal(got.Payload, f.Payload) {
			t.Fatalf("%d-byte payload: round trip %+v %v", size, got, ok)
		}
	}
	if b := firmware.AppendUDPFrame(nil, firmware.UDPFrame{Payload: make([]byte, firmware.MaxUDPPayload+1)}); len(b) != 0 {
		t.Fatal("a payload longer than one frame was framed")
	}
}

func TestParseUDPFrameTakesOnlyWholeUnfragmentedUDP(t *testing.T) {
	good := firmware.AppendUDPFrame(nil, heartbeat)
	if _, ok := firmware.ParseUDPFrame(good); !ok {
		t.Fatal("a good frame was refused")
	}
	spoil := func(name string, f func(b []byte) []byte) {
		t.Helper()
		b := f(append([]byte(nil), good...))
		if got, ok := firmware.ParseUDPFrame(b); ok {
			t.Errorf("%s: parsed as %+v", name, got)
		}
	}
	spoil("ARP", func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b })
	spoil("IPv6 version", func(b []byte) []byte { b[14] = 0x65; return b })
	spoil("TCP", func(b []byte) []byte { b[14+9] = 6; return b })
	spoil("a bad IP checksum", func(b []byte) []byte { b[14+8]--; return b })
	spoil("a bad UDP checksum", func(b []byte) []byte { b[14+20+8]++; return b })
	spoil("a fragment", func(b []byte) []byte { b[14+6] = 0x20; return b })
	spoil("cut short", func(b []byte) []byte { return b[:14+20+4] })
	spoil("a total length past the end", func(b []byte) []byte { b[14+2] = 0xff; return b })
	spoil("a UDP length past the datagram", func(b []byte) []byte { b[14+20+4] = 0xff; return b })
	// A zero UDP checksum means "none" over IPv4: still a datagram.
	b := append([]byte(nil), good...)
	b[14+20+6], b[14+20+7] = 0, 0
	if _, ok := firmware.ParseUDPFrame(b); !ok {
		t.Error("a datagram without a checksum was refused")
	}
}

func FuzzParseUDPFrame(f *testing.F) {
	f.Add(firmware.AppendUDPFrame(nil, heartbeat))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := firmware.ParseUDPFrame(b)
		if !ok {
			return
		}
		again, ok := firmware.ParseUDPFrame(firmware.AppendUDPFrame(nil, got))
		if !ok || !bytes.Equal(again.Payload, got.Payload) || again.Src != got.Src || again.DstPort != got.DstPort {
			t.Fatalf("what parsed does not survive a round trip: %+v", got)
		}
	})
}

func TestInboxKeepsDatagramsInOrderAndDropsWhatDoesNotFit(t *testing.T) {
	q := firmware.NewInbox(100)
	buf := make([]byte, 64)
	for round := range 50 { // many times round the ring
		a := bytes.Repeat([]byte{byte(round)}, 1+round%30)
		b := bytes.Repeat([]byte{byte(round + 1)}, 30-round%30)
		if !q.Put(node.Addr{10, 0, 0, 1}, 7, 5001, a) || !q.Put(node.Addr{10, 0, 0, 2}, 8, 37020, b) {
			t.Fatalf("round %d: two datagrams of %d and %d bytes do not fit in 100", round, len(a), len(b))
		}
		for i, want := range [][]byte{a, b} {
			d, ok := q.Take(buf)
			if !ok || !bytes.Equal(buf[:d.N], want) || d.From[3] != byte(i+1) || d.FromPort != uint16(7+i) || d.Port != []uint16{5001, 37020}[i] {
				t.Fatalf("round %d: took %+v %x, want %x", round, d, buf[:d.N], want)
			}
		}
	}
	if _, ok := q.Take(buf); ok || q.Len() != 0 {
		t.Fatal("an empty inbox gave a datagram")
	}
	q.Put(node.Addr{}, 1, 2, make([]byte, 45))
	if q.Put(node.Addr{}, 1, 2, make([]byte, 45)) || q.Dropped != 1 {
		t.Fatalf("a datagram that does not fit was kept (dropped %d)", q.Dropped)
	}
	d, _ := q.Take(make([]byte, 10)) // a short buffer cuts the datagram, not the ring
	if d.N != 10 || q.Len() != 0 {
		t.Fatalf("took %d bytes, %d left", d.N, q.Len())
	}
}

func TestNeighborsRememberTheLastFew(t *testing.T) {
	nb := firmware.NewNeighbors(2)
	a, b, c := node.Addr{10, 0, 0, 1}, node.Addr{10, 0, 0, 2}, node.Addr{10, 0, 0, 3}
	nb.Learn(a, [6]byte{1})
	nb.Learn(b, [6]byte{2})
	nb.Learn(a, [6]byte{9}) // a new card
	if m, ok := nb.MAC(a); !ok || m[0] != 9 {
		t.Fatalf("a is at %v %v", m, ok)
	}
	nb.Learn(c, [6]byte{3}) // the oldest entry makes room
	if _, ok := nb.MAC(c); !ok {
		t.Fatal("c was not learnt")
	}
	if _, okA := nb.MAC(a); okA {
		if _, okB := nb.MAC(b); okB {
			t.Fatal("three entries in a table of two")
		}
	}
	var zero firmware.Neighbors
	zero.Learn(a, [6]byte{1})
	if _, ok := zero.MAC(a); ok {
		t.Fatal("a table of none remembered")
	}
}
