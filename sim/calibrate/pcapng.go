package calibrate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/mac"
)

// Heartbeat is one discovery HEARTBEAT as the capture saw it.
type Heartbeat struct {
	// At is the capture's timestamp: when the frame was on the air
	// (netsim's capture: when it was sent).
	At          time.Time
	From        node.Addr // the IPv4 source address
	Name        string
	Incarnation uint32
	Seq         uint32
	Witnesses   []node.Witness
	// Keyed: the frame carried a keyed-discovery tag (verified only when
	// ReadOptions.Key was given).
	Keyed bool
}

// Capture is what Read found in a pcapng file: the heartbeats, in file
// order, and counts of everything else.
type Capture struct {
	Start      time.Time // timestamp of the first packet
	End        time.Time // of the last
	Bytes      int64     // bytes read
	Packets    int       // packet blocks read
	Heartbeats []Heartbeat

	// Discovery frames (UDP to node.Port) by type; Heartbeats are the
	// HEARTBEATs.
	Hellos, Fulls, Leaves int
	// Keyed frames among the discovery frames, and those whose tag did
	// not verify under ReadOptions.Key (dropped), and unkeyed ones dropped
	// because a key was given.
	Keyed, Unauthenticated, Unkeyed int
	// Packets on node.Port that are not discovery frames, or whose UDP
	// checksum is wrong (dropped).
	Undecodable, BadChecksum int
	// Packets cut short by the capture's snap length, IP fragments,
	// 802.11 frames that are encrypted, and blocks without timestamps
	// (Simple Packet Blocks): none of them can be read.
	Snapped, Fragments, Encrypted, NoTimestamp int
	// Other counts the packets that are not discovery traffic.
	Other int
	// LinkTypes lists unsupported link types met, with their packet counts.
	LinkTypes map[uint16]int
	// Problem says why reading stopped before the end of the file, if it
	// did (Read's error): the capture holds what came before.
	Problem string
}

// Duration is the time between the first packet and the last.
func (c *Capture) Duration() time.Duration { return c.End.Sub(c.Start) }

// ReadOptions tunes Read.
type ReadOptions struct {
	// Key, if set, verifies the tags of keyed discovery frames (dropping
	// frames that fail) and drops unkeyed ones. Without it, keyed frames
	// are read without checking their tags.
	Key []byte
	// Progress, if set, is called every 65536 packets with the bytes and
	// packets read so far.
	Progress func(bytes int64, packets int)
}

// Errors of Read. A *FormatError wraps ErrNotPcapng or ErrTruncated, and
// says where and how much was read before it.
var (
	ErrEmpty     = errors.New("empty file: not a pcapng capture")
	ErrPcap      = errors.New("a classic pcap file, not pcapng: convert it with `editcap -F pcapng IN.pcap OUT.pcapng` (Wireshark's editcap)")
	ErrNotPcapng = errors.New("not a pcapng capture")
	ErrTruncated = errors.New("truncated")
	ErrCorrupt   = errors.New("corrupt")
)

// FormatError is a problem at a place in the file. Read returns it along
// with what it read before it.
type FormatError struct {
	Offset  int64 // of the block at fault
	Packets int   // packet blocks read before it
	Err     error // ErrTruncated, ErrCorrupt, ErrNotPcapng
	Detail  string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%v at byte %d, after %d packets: %s", e.Err, e.Offset, e.Packets, e.Detail)
}

func (e *FormatError) Unwrap() error { return e.Err }

// Block types of pcapng (draft-ietf-opsawg-pcapng).
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 1
	blockPB  = 2 // obsolete Packet Block
	blockSPB = 3
	blockEPB = 6
)

// maxBlock bounds a block's length: a corrupt length field must not make
// Read allocate gigabytes.
const maxBlock = 16 << 20

type iface struct {
	link     uint16
	unitsSec uint64 // timestamp units per second
	offset   int64  // if_tsoffset, seconds
}

// Read reads a pcapng capture and returns its discovery heartbeats. On a
// truncated or corrupt file it returns what it read before the problem
// with a *FormatError; on a file that is not pcapng, ErrEmpty, ErrPcap or a
// *FormatError wrapping ErrNotPcapng, and no Capture. It never panics.
func Read(r io.Reader) (*Capture, error) { return ReadWith(r, ReadOptions{}) }

// ReadWith is Read with options.
func ReadWith(r io.Reader, opt ReadOptions) (*Capture, error) {
	var m *mac.MAC
	if len(opt.Key) > 0 {
		var err error
		if m, err = mac.New(opt.Key); err != nil {
			return nil, fmt.Errorf("calibrate: key: %w", err)
		}
	}
	rd := &reader{br: bufio.NewReaderSize(r, 256<<10), opt: opt, mac: m, c: &Capture{}}
	err := rd.run()
	if errors.Is(err, ErrEmpty) || errors.Is(err, ErrPcap) || errors.Is(err, ErrNotPcapng) {
		return nil, err
	}
	if err != nil {
		rd.c.Problem = err.Error()
	}
	return rd.c, err
}

type reader struct {
	br     *bufio.Reader
	opt    ReadOptions
	mac    *mac.MAC
	c      *Capture
	order  binary.ByteOrder
	ifaces []iface
	buf    []byte
	frame  node.Frame
	first  bool // a packet's time was seen
}

func (rd *reader) fail(at int64, err error, format string, a ...any) error {
	return &FormatError{Offset: at, Packets: rd.c.Packets, Err: err, Detail: fmt.Sprintf(format, a...)}
}

func (rd *reader) run() error {
	c := rd.c
	var head [8]byte
	for {
		at := c.Bytes
		n, err := io.ReadFull(rd.br, head[:])
		c.Bytes += int64(n)
		switch {
		case err == io.EOF && at == 0:
			return ErrEmpty
		case err == io.EOF:
			return nil
		case err != nil && at == 0:
			return rd.fail(at, ErrNotPcapng, "%d bytes, too short for a pcapng header", n)
		case err != nil:
			return rd.fail(at, ErrTruncated, "the file ends inside a block header (%d of 8 bytes)", n)
		}
		if at == 0 {
			switch binary.LittleEndian.Uint32(head[:]) {
			case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
				return ErrPcap
			case blockSHB:
			default:
				return rd.fail(0, ErrNotPcapng, "it starts with % x, not a Section Header Block", head[:4])
			}
		}
		typ := binary.LittleEndian.Uint32(head[:]) // the SHB's type reads the same both ways
		if typ == blockSHB {
			// The byte order is in the body: read it before the length.
			var bom [4]byte
			n, err := io.ReadFull(rd.br, bom[:])
			c.Bytes += int64(n)
			if err != nil {
				return rd.fail(at, ErrTruncated, "the file ends inside a Section Header Block")
			}
			switch {
			case binary.LittleEndian.Uint32(bom[:]) == 0x1A2B3C4D:
				rd.order = binary.LittleEndian
			case binary.BigEndian.Uint32(bom[:]) == 0x1A2B3C4D:
				rd.order = binary.BigEndian
			default:
				if at == 0 {
					return rd.fail(at, ErrNotPcapng, "no byte-order magic in its Section Header Block")
				}
				return rd.fail(at, ErrCorrupt, "a Section Header Block without its byte-order magic")
			}
			length := rd.order.Uint32(head[4:])
			if length < 28 || length%4 != 0 || length > maxBlock {
				return rd.fail(at, ErrCorrupt, "a Section Header Block of %d bytes", length)
			}
			if err := rd.body(at, int(length)-12); err != nil {
				return err
			}
			rd.ifaces = rd.ifaces[:0] // interfaces are per section
			continue
		}
		if rd.order == nil {
			return rd.fail(at, ErrCorrupt, "a block before the Section Header Block")
		}
		length := rd.order.Uint32(head[4:])
		if length < 12 || length%4 != 0 || length > maxBlock {
			return rd.fail(at, ErrCorrupt, "a block (type %d) of %d bytes", typ, length)
		}
		if err := rd.body(at, int(length)-8); err != nil {
			return err
		}
		body := rd.buf[:len(rd.buf)-4]
		if rd.order.Uint32(rd.buf[len(rd.buf)-4:]) != length {
			return rd.fail(at, ErrCorrupt, "a block (type %d) whose two lengths differ", typ)
		}
		if err := rd.block(at, typ, body); err != nil {
			return err
		}
	}
}

// body reads the rest of a block, n bytes, into rd.buf.
func (rd *reader) body(at int64, n int) error {
	if cap(rd.buf) < n {
		rd.buf = make([]byte, n)
	}
	rd.buf = rd.buf[:n]
	got, err := io.ReadFull(rd.br, rd.buf)
	rd.c.Bytes += int64(got)
	if err != nil {
		return rd.fail(at, ErrTruncated, "the file ends inside a block (%d of its %d bytes)", got+8, n+8)
	}
	return nil
}

func (rd *reader) block(at int64, typ uint32, b []byte) error {
	o := rd.order
	switch typ {
	case blockIDB:
		if len(b) < 8 {
			return rd.fail(at, ErrCorrupt, "an Interface Description Block of %d bytes", len(b)+12)
		}
		f := iface{link: o.Uint16(b[0:]), unitsSec: 1e6}
		for opts := b[8:]; len(opts) >= 4; {
			code, n := o.Uint16(opts[0:]), int(o.Uint16(opts[2:]))
			if code == 0 || 4+n > len(opts) {
				break
			}
			v := opts[4 : 4+n]
			switch {
			case code == 9 && n == 1: // if_tsresol
				exp := uint64(v[0] & 0x7f)
				if v[0]&0x80 != 0 {
					if exp > 63 {
						return rd.fail(at, ErrCorrupt, "a timestamp resolution of 2^-%d s", exp)
					}
					f.unitsSec = 1 << exp
				} else {
					if exp > 19 {
						return rd.fail(at, ErrCorrupt, "a timestamp resolution of 10^-%d s", exp)
					}
					f.unitsSec = 1
					for range exp {
						f.unitsSec *= 10
					}
				}
			case code == 14 && n == 8: // if_tsoffset
				f.offset = int64(o.Uint64(v))
			}
			opts = opts[4+(n+3)&^3:]
		}
		rd.ifaces = append(rd.ifaces, f)
	case blockEPB, blockPB:
		var id uint32
		var hi, lo, capLen, origLen uint32
		if len(b) < 20 {
			return rd.fail(at, ErrCorrupt, "a packet block of %d bytes", len(b)+12)
		}
		if typ == blockEPB {
			id = o.Uint32(b[0:])
		} else {
			id = uint32(o.Uint16(b[0:]))
		}
		hi, lo, capLen, origLen = o.Uint32(b[4:]), o.Uint32(b[8:]), o.Uint32(b[12:]), o.Uint32(b[16:])
		if uint64(capLen) > uint64(len(b)-20) {
			return rd.fail(at, ErrCorrupt, "a packet of %d bytes in a block of %d", capLen, len(b)+12)
		}
		if int(id) >= len(rd.ifaces) {
			return rd.fail(at, ErrCorrupt, "a packet of interface %d, which was never described", id)
		}
		f := rd.ifaces[id]
		rd.packet(f, f.time(uint64(hi)<<32|uint64(lo)), b[20:20+capLen], capLen < origLen)
	case blockSPB:
		rd.c.Packets++
		rd.c.NoTimestamp++
	}
	return nil
}

// time converts a timestamp in the interface's units.
func (f iface) time(ts uint64) time.Time {
	sec := ts / f.unitsSec
	rem := ts % f.unitsSec
	h, l := bits.Mul64(rem, 1e9)
	ns, _ := bits.Div64(h, l, f.unitsSec) // rem < unitsSec: no overflow
	if sec > 1<<62 {
		sec = 1 << 62
	}
	return time.Unix(int64(sec)+f.offset, int64(ns))
}

func (rd *reader) packet(f iface, at time.Time, p []byte, snapped bool) {
	c := rd.c
	c.Packets++
	if rd.opt.Progress != nil && c.Packets%65536 == 0 {
		rd.opt.Progress(c.Bytes, c.Packets)
	}
	switch {
	case !rd.first:
		c.Start, c.End, rd.first = at, at, true
	case at.Before(c.Start):
		c.Start = at
	case at.After(c.End):
		c.End = at
	}
	ip, ok := rd.network(f.link, p)
	if !ok {
		return
	}
	src, payload, ok := rd.udp(ip, snapped)
	if !ok {
		return
	}
	fr := &rd.frame
	keyed := false
	if err := fr.Decode(payload); err != nil {
		if len(payload) <= mac.Size || fr.Decode(payload[:len(payload)-mac.Size]) != nil {
			c.Undecodable++
			return
		}
		keyed = true
		c.Keyed++
		if rd.mac != nil {
			if _, ok := node.Open(rd.mac, src, payload); !ok {
				c.Unauthenticated++
				return
			}
		}
	} else if rd.mac != nil {
		c.Unkeyed++
		return
	}
	switch fr.Type {
	case node.TypeHello:
		c.Hellos++
	case node.TypeFull:
		c.Fulls++
	case node.TypeLeave:
		c.Leaves++
	case node.TypeHeartbeat:
		c.Heartbeats = append(c.Heartbeats, Heartbeat{
			At: at, From: src, Name: string(fr.Name), Incarnation: fr.Incarnation, Seq: fr.Seq,
			Witnesses: append([]node.Witness(nil), fr.Witnesses...), Keyed: keyed,
		})
	}
}

// network finds the IPv4 packet in a frame of the given link type.
func (rd *reader) network(link uint16, p []byte) ([]byte, bool) {
	c := rd.c
	etherType := func(p []byte, at int) ([]byte, bool) {
		for at+2 <= len(p) {
			switch binary.BigEndian.Uint16(p[at:]) {
			case 0x0800:
				return p[at+2:], true
			case 0x8100, 0x88a8: // VLAN tags
				at += 4
				continue
			}
			break
		}
		c.Other++
		return nil, false
	}
	switch link {
	case 1: // Ethernet
		return etherType(p, 12)
	case 0: // BSD loopback: the address family in host order
		if len(p) >= 4 && (binary.LittleEndian.Uint32(p) == 2 || binary.BigEndian.Uint32(p) == 2) {
			return p[4:], true
		}
	case 101, 228, 12, 14: // raw IP, raw IPv4
		return p, true
	case 113: // Linux cooked
		return etherType(p, 14)
	case 276: // Linux cooked v2
		if len(p) >= 20 && binary.BigEndian.Uint16(p) == 0x0800 {
			return p[20:], true
		}
	case 127: // radiotap, then 802.11
		if len(p) < 4 {
			break
		}
		n := int(binary.LittleEndian.Uint16(p[2:]))
		if n > len(p) {
			break
		}
		return rd.wifi(p[n:])
	case 105: // 802.11
		return rd.wifi(p)
	default:
		if c.LinkTypes == nil {
			c.LinkTypes = map[uint16]int{}
		}
		c.LinkTypes[link]++
		return nil, false
	}
	c.Other++
	return nil, false
}

// wifi finds the IPv4 packet in an 802.11 data frame with LLC/SNAP.
func (rd *reader) wifi(p []byte) ([]byte, bool) {
	if len(p) < 24 || (p[0]>>2)&3 != 2 {
		rd.c.Other++
		return nil, false
	}
	if p[1]&0x40 != 0 {
		rd.c.Encrypted++
		return nil, false
	}
	n := 24
	if p[1]&3 == 3 {
		n += 6 // four addresses
	}
	if (p[0]>>4)&8 != 0 {
		n += 2 // QoS
		if p[1]&0x80 != 0 {
			n += 4 // HT control
		}
	}
	if len(p) < n+8 || p[n] != 0xAA || p[n+1] != 0xAA || p[n+2] != 3 || binary.BigEndian.Uint16(p[n+6:]) != 0x0800 {
		rd.c.Other++
		return nil, false
	}
	return p[n+8:], true
}

// udp finds a discovery datagram in an IPv4 packet: its source and payload.
func (rd *reader) udp(ip []byte, snapped bool) (node.Addr, []byte, bool) {
	c := rd.c
	var src node.Addr
	if len(ip) < 20 || ip[0]>>4 != 4 {
		c.Other++
		return src, nil, false
	}
	ihl := int(ip[0]&15) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ihl < 20 || total < ihl {
		c.Other++
		return src, nil, false
	}
	if total > len(ip) {
		// A discovery frame cut short (by the snap length, or damaged) is
		// lost to us.
		if len(ip) >= ihl+4 && ip[9] == 17 && binary.BigEndian.Uint16(ip[ihl+2:]) == node.Port {
			if snapped {
				c.Snapped++
			} else {
				c.Undecodable++
			}
		} else {
			c.Other++
		}
		return src, nil, false
	}
	ip = ip[:total]
	if ip[9] != 17 {
		c.Other++
		return src, nil, false
	}
	if frag := binary.BigEndian.Uint16(ip[6:]); frag&0x3fff != 0 {
		if len(ip) >= ihl+4 && frag&0x1fff == 0 && binary.BigEndian.Uint16(ip[ihl+2:]) == node.Port {
			c.Fragments++
		} else {
			c.Other++
		}
		return src, nil, false
	}
	u := ip[ihl:]
	if len(u) < 8 || binary.BigEndian.Uint16(u[2:]) != node.Port {
		c.Other++
		return src, nil, false
	}
	n := int(binary.BigEndian.Uint16(u[4:]))
	if n < 8 || n > len(u) {
		c.Undecodable++
		return src, nil, false
	}
	u = u[:n]
	copy(src[:], ip[12:16])
	if sum := binary.BigEndian.Uint16(u[6:]); sum != 0 && !udpChecksumOK(ip[12:20], u) {
		c.BadChecksum++
		return src, nil, false
	}
	return src, u[8:], true
}

// udpChecksumOK checks a UDP datagram's checksum over the IPv4 pseudo
// header (addrs: source and destination, 8 bytes).
func udpChecksumOK(addrs, u []byte) bool {
	var s uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			s += uint32(b[0])<<8 | uint32(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			s += uint32(b[0]) << 8
		}
	}
	add(addrs)
	s += 17 + uint32(len(u))
	add(u)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return s == 0xffff
}
