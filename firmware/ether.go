package firmware

import (
	"encoding/binary"

	"github.com/picosim/picosim/node"
)

// Discovery on a Pico W goes around the board's network stack. lneto, the
// stack the CYW43439 driver pairs with, drops every IPv4 packet whose
// destination is not the board's own address (a subnet broadcast always,
// 255.255.255.255 unless its StackConfig says otherwise, and cywnet's does
// not), and gives every datagram of a socket without a resolved peer the
// gateway's MAC: a heartbeat sent through it reaches the router alone, and
// one sent by another board never reaches the program. So the Pico W adapter
// reads and writes the discovery port's datagrams as whole Ethernet frames
// with the codec below, and leaves DHCP, ARP and the control port's TCP to
// the stack. The codec is here rather than in the adapter so that the host's
// tests cover it.

// BroadcastMAC is the Ethernet broadcast address.
var BroadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// LimitedBroadcast is 255.255.255.255.
var LimitedBroadcast = node.Addr{255, 255, 255, 255}

// UDPFrame is one UDP datagram in an Ethernet II frame over IPv4.
type UDPFrame struct {
	DstMAC, SrcMAC   [6]byte
	Src, Dst         node.Addr
	SrcPort, DstPort uint16
	Payload          []byte // aliases the parsed frame
}

const (
	etherHeader = 14
	ipv4Header  = 20 // without options, as this codec writes them
	udpHeader   = 8
	// MaxUDPPayload is the largest payload one unfragmented frame carries
	// at the usual MTU of 1500.
	MaxUDPPayload = 1500 - ipv4Header - udpHeader
)

// ParseUDPFrame decodes an Ethernet frame that carries an unfragmented IPv4
// UDP datagram with good checksums. Anything else, or anything truncated,
// is not ok: the adapter hands such frames to the network stack.
func ParseUDPFrame(b []byte) (f UDPFrame, ok bool) {
	if len(b) < etherHeader+ipv4Header+udpHeader || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return f, false
	}
	copy(f.DstMAC[:], b[0:6])
	copy(f.SrcMAC[:], b[6:12])
	ip := b[etherHeader:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	switch {
	case ip[0]>>4 != 4, ihl < ipv4Header, total < ihl+udpHeader, total > len(ip), ip[9] != 17:
		return f, false
	case binary.BigEndian.Uint16(ip[6:])&0x3fff != 0: // more fragments, or an offset
		return f, false
	case checksum(0, ip[:ihl]) != 0xffff:
		return f, false
	}
	copy(f.Src[:], ip[12:16])
	copy(f.Dst[:], ip[16:20])
	udp := ip[ihl:total]
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < udpHeader || ulen > len(udp) {
		return f, false
	}
	udp = udp[:ulen]
	if binary.BigEndian.Uint16(udp[6:]) != 0 && udpChecksum(f.Src, f.Dst, udp) != 0xffff {
		return f, false
	}
	f.SrcPort = binary.BigEndian.Uint16(udp[0:])
	f.DstPort = binary.BigEndian.Uint16(udp[2:])
	f.Payload = udp[udpHeader:]
	return f, true
}

// AppendUDPFrame appends f as an Ethernet frame to dst: IPv4 without
// options, TTL 64, "don't fragment", both checksums set. Payloads longer
// than MaxUDPPayload are the caller's mistake: it returns dst unchanged.
func AppendUDPFrame(dst []byte, f UDPFrame) []byte {
	if len(f.Payload) > MaxUDPPayload {
		return dst
	}
	start := len(dst)
	dst = append(dst, f.DstMAC[:]...)
	dst = append(dst, f.SrcMAC[:]...)
	dst = append(dst, 0x08, 0x00)
	total := ipv4Header + udpHeader + len(f.Payload)
	ip := len(dst)
	dst = append(dst, 0x45, 0, byte(total>>8), byte(total), 0, 0, 0x40, 0, 64, 17, 0, 0)
	dst = append(dst, f.Src[:]...)
	dst = append(dst, f.Dst[:]...)
	binary.BigEndian.PutUint16(dst[ip+10:], ^checksum(0, dst[ip:ip+ipv4Header]))
	udp := len(dst)
	ulen := udpHeader + len(f.Payload)
	dst = binary.BigEndian.AppendUint16(dst, f.SrcPort)
	dst = binary.BigEndian.AppendUint16(dst, f.DstPort)
	dst = append(dst, byte(ulen>>8), byte(ulen), 0, 0)
	dst = append(dst, f.Payload...)
	sum := ^udpChecksum(f.Src, f.Dst, dst[udp:])
	if sum == 0 {
		sum = 0xffff // 0 means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(dst[udp+6:], sum)
	for len(dst)-start < 60 { // Ethernet's minimum frame, without its CRC
		dst = append(dst, 0)
	}
	return dst
}

// checksum adds b to sum in ones' complement (RFC 1071), folded to 16 bits.
func checksum(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// udpChecksum sums the IPv4 pseudo-header and the datagram.
func udpChecksum(src, dst node.Addr, udp []byte) uint16 {
	sum := uint32(checksum(0, src[:])) + uint32(checksum(0, dst[:])) + 17 + uint32(len(udp))
	return checksum(sum, udp)
}

// Neighbors remembers the MAC address of the last few hosts heard from, so
// that a reply to one of them is a unicast frame. Bounded: the oldest entry
// makes room for a new one. The zero value holds nothing; NewNeighbors sets
// the size.
type Neighbors struct {
	ips  []node.Addr
	macs [][6]byte
	next int
}

// NewNeighbors returns a table of n entries.
func NewNeighbors(n int) *Neighbors {
	return &Neighbors{ips: make([]node.Addr, 0, n), macs: make([][6]byte, 0, n)}
}

// Learn records that ip is at mac.
func (t *Neighbors) Learn(ip node.Addr, mac [6]byte) {
	for i, a := range t.ips {
		if a == ip {
			t.macs[i] = mac
			return
		}
	}
	if len(t.ips) < cap(t.ips) {
		t.ips, t.macs = append(t.ips, ip), append(t.macs, mac)
		return
	}
	if cap(t.ips) == 0 {
		return
	}
	t.ips[t.next], t.macs[t.next] = ip, mac
	t.next = (t.next + 1) % cap(t.ips)
}

// MAC returns where ip is, if it was heard from.
func (t *Neighbors) MAC(ip node.Addr) ([6]byte, bool) {
	for i, a := range t.ips {
		if a == ip {
			return t.macs[i], true
		}
	}
	return [6]byte{}, false
}

// Inbox holds discovery datagrams between the radio's receive callback,
// which runs inside the driver and must not send, and the adapter's loop,
// which hands them to the program. Bounded by its byte size: a datagram
// that does not fit is dropped and counted, as a full socket buffer would.
type Inbox struct {
	buf     []byte // records: from ip[4], from port u16, to port u16, len u16, payload
	head, n int    // ring: first byte and bytes used
	Dropped uint64
}

// NewInbox returns an inbox of size bytes.
func NewInbox(size int) *Inbox { return &Inbox{buf: make([]byte, size)} }

const inboxHeader = 10

// Queued is a datagram as Take returns it: who sent it from which port, to
// which of the board's ports, and how many bytes went into Take's buffer.
type Queued struct {
	From     node.Addr
	FromPort uint16
	Port     uint16
	N        int
}

// Put copies one datagram in; false when it does not fit.
func (q *Inbox) Put(from node.Addr, fromPort, port uint16, payload []byte) bool {
	need := inboxHeader + len(payload)
	if need > len(q.buf)-q.n || len(payload) > 0xffff {
		q.Dropped++
		return false
	}
	var h [inboxHeader]byte
	copy(h[:], from[:])
	binary.BigEndian.PutUint16(h[4:], fromPort)
	binary.BigEndian.PutUint16(h[6:], port)
	binary.BigEndian.PutUint16(h[8:], uint16(len(payload)))
	q.write(h[:])
	q.write(payload)
	return true
}

// Take copies the oldest datagram into p (cut to len(p)) and reports it;
// ok is false when the inbox is empty.
func (q *Inbox) Take(p []byte) (d Queued, ok bool) {
	if q.n == 0 {
		return d, false
	}
	var h [inboxHeader]byte
	q.read(h[:])
	copy(d.From[:], h[:4])
	d.FromPort = binary.BigEndian.Uint16(h[4:])
	d.Port = binary.BigEndian.Uint16(h[6:])
	size := int(binary.BigEndian.Uint16(h[8:]))
	d.N = min(size, len(p))
	q.read(p[:d.N])
	q.skip(size - d.N)
	return d, true
}

// Len is how many bytes are queued, headers included.
func (q *Inbox) Len() int { return q.n }

func (q *Inbox) write(p []byte) {
	at := (q.head + q.n) % len(q.buf)
	k := copy(q.buf[at:], p)
	copy(q.buf, p[k:])
	q.n += len(p)
}

func (q *Inbox) read(p []byte) {
	k := copy(p, q.buf[q.head:])
	copy(p[k:], q.buf)
	q.skip(len(p))
}

func (q *Inbox) skip(n int) {
	q.head = (q.head + n) % len(q.buf)
	q.n -= n
}
