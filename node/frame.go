package node

import "errors"

// Port is the UDP port of the discovery protocol (shared/seeds/003).
const Port = 37020

// MaxName is the longest board name a frame may carry, in bytes.
const MaxName = 32

// Type is the first byte of every discovery frame.
type Type byte

// Frame types. 1 and 2 are the wire format of the original MicroPython
// discovery helpers and must never change; the harness's own frames use new
// type bytes so that a desktop client written against 1 and 2 keeps working
// (it ignores anything that is not a FULL).
const (
	// TypeHello is [1, name_len, name...]: "who is out there?".
	TypeHello Type = 1
	// TypeFull is [2, count, (ip[4], name_len, name...)*]: the registry's
	// answer to HELLO, listing the live members.
	TypeFull Type = 2
	// TypeHeartbeat is [3, incarnation u32, seq u32, slot u16, name_len,
	// name..., count, (ip[4], incarnation u32, seq u32, age_ms u16)*], all
	// big-endian. seq counts the sender's heartbeats since boot. The trailing
	// witnesses say "heartbeat seq of this member reached me age_ms ago",
	// which lets a board that missed a member's own heartbeats keep it alive.
	TypeHeartbeat Type = 3
	// TypeLeave is [4, incarnation u32]: a board shutting down cleanly.
	TypeLeave Type = 4
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "HELLO"
	case TypeFull:
		return "FULL"
	case TypeHeartbeat:
		return "HEARTBEAT"
	case TypeLeave:
		return "LEAVE"
	}
	return "UNKNOWN"
}

// Decoding and encoding errors. Decode returns exactly one of these.
var (
	ErrEmpty       = errors.New("empty frame")
	ErrUnknownType = errors.New("unknown frame type")
	ErrTruncated   = errors.New("frame truncated: a length or count points past the end")
	ErrNameTooLong = errors.New("name longer than 32 bytes")
	ErrTrailing    = errors.New("bytes after the end of the frame")
	ErrTooMany     = errors.New("more than 255 entries")
)

// witnessSize is the bytes of one Witness on the wire.
const witnessSize = 4 + 4 + 4 + 2

// rawWitness reads the witness at the start of b, which holds one.
func rawWitness(b []byte) Witness {
	b = b[:witnessSize:witnessSize]
	return Witness{
		IP:          Addr{b[0], b[1], b[2], b[3]},
		Incarnation: uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7]),
		Seq:         uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11]),
		AgeMS:       uint16(b[12])<<8 | uint16(b[13]),
	}
}

// Entry is one member in a FULL frame.
type Entry struct {
	IP   Addr
	Name []byte
}

// Witness is one "heartbeat Seq of this member reached me AgeMS ago".
type Witness struct {
	IP          Addr
	Incarnation uint32
	Seq         uint32
	AgeMS       uint16
}

// Frame is one discovery datagram. After Decode, Name and the Name of each
// Entry alias the decoded buffer; Entries and Witnesses are reused across
// calls, so one Frame decodes a stream of datagrams without allocating.
type Frame struct {
	Type        Type
	Name        []byte    // HELLO, HEARTBEAT
	Incarnation uint32    // HEARTBEAT, LEAVE
	Seq         uint32    // HEARTBEAT: the sender's heartbeat count since boot
	Slot        uint16    // HEARTBEAT: the sender's worker number, 0 if none
	Entries     []Entry   // FULL
	Witnesses   []Witness // HEARTBEAT

	// raw holds a heartbeat's witnesses as they came, when the node
	// decoded it for itself (decode with lazy set) and left Witnesses empty.
	raw []byte
}

// Decode parses p into f. It never panics and accepts only canonical frames:
// every byte of p must belong to the frame, so Append(Decode(p)) == p.
func (f *Frame) Decode(p []byte) error { return f.decode(p, false) }

// decode is Decode; lazy leaves a heartbeat's witnesses in f.raw, for the
// node, which reads each once: every board reads every heartbeat, and
// copying sixteen witnesses out of each was a sixth of a simulation's time.
func (f *Frame) decode(p []byte, lazy bool) error {
	f.Name, f.Incarnation, f.Seq, f.Slot, f.raw = nil, 0, 0, 0, nil
	f.Entries, f.Witnesses = f.Entries[:0], f.Witnesses[:0]
	if len(p) == 0 {
		return ErrEmpty
	}
	f.Type = Type(p[0])
	r := reader{p: p, i: 1}
	switch f.Type {
	case TypeHello:
		f.Name = r.name()
	case TypeFull:
		n := int(r.byte())
		for i := 0; i < n && r.err == nil; i++ {
			var e Entry
			e.IP = r.addr()
			e.Name = r.name()
			if r.err == nil {
				f.Entries = append(f.Entries, e)
			}
		}
	case TypeHeartbeat:
		f.Incarnation = r.u32()
		f.Seq = r.u32()
		f.Slot = r.u16()
		f.Name = r.name()
		n := int(r.byte())
		// Every board reads every heartbeat: the witnesses, all of one
		// size, are checked for length once and read straight.
		ws := r.take(n * witnessSize)
		if lazy {
			f.raw = ws
			break
		}
		for i := 0; i < n && r.err == nil; i++ {
			f.Witnesses = append(f.Witnesses, rawWitness(ws[i*witnessSize:]))
		}
	case TypeLeave:
		f.Incarnation = r.u32()
	default:
		return ErrUnknownType
	}
	if r.err != nil {
		return r.err
	}
	if r.i != len(p) {
		return ErrTrailing
	}
	return nil
}

// Append encodes f after b. It fails on names over MaxName bytes and on more
// than 255 entries or witnesses, which the one-byte counts cannot express.
func (f *Frame) Append(b []byte) ([]byte, error) {
	b = append(b, byte(f.Type))
	switch f.Type {
	case TypeHello:
		return appendName(b, f.Name)
	case TypeFull:
		if len(f.Entries) > 255 {
			return b, ErrTooMany
		}
		b = append(b, byte(len(f.Entries)))
		var err error
		for _, e := range f.Entries {
			b = append(b, e.IP[:]...)
			if b, err = appendName(b, e.Name); err != nil {
				return b, err
			}
		}
		return b, nil
	case TypeHeartbeat:
		if len(f.Witnesses) > 255 {
			return b, ErrTooMany
		}
		b = appendU32(b, f.Incarnation)
		b = appendU32(b, f.Seq)
		b = append(b, byte(f.Slot>>8), byte(f.Slot))
		b, err := appendName(b, f.Name)
		if err != nil {
			return b, err
		}
		b = append(b, byte(len(f.Witnesses)))
		for _, w := range f.Witnesses {
			b = append(b, w.IP[:]...)
			b = appendU32(b, w.Incarnation)
			b = appendU32(b, w.Seq)
			b = append(b, byte(w.AgeMS>>8), byte(w.AgeMS))
		}
		return b, nil
	case TypeLeave:
		return appendU32(b, f.Incarnation), nil
	}
	return b, ErrUnknownType
}

// FullEntrySize is the number of bytes one member takes in a FULL frame.
func FullEntrySize(name []byte) int { return 4 + 1 + len(name) }

func appendName(b, name []byte) ([]byte, error) {
	if len(name) > MaxName {
		return b, ErrNameTooLong
	}
	b = append(b, byte(len(name)))
	return append(b, name...), nil
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// reader walks a frame; the first error sticks and later reads return zero.
type reader struct {
	p   []byte
	i   int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.p)-r.i {
		r.err = ErrTruncated
		return nil
	}
	s := r.p[r.i : r.i+n : r.i+n]
	r.i += n
	return s
}

func (r *reader) byte() byte {
	if s := r.take(1); s != nil {
		return s[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if s := r.take(2); s != nil {
		return uint16(s[0])<<8 | uint16(s[1])
	}
	return 0
}

func (r *reader) u32() uint32 {
	if s := r.take(4); s != nil {
		return uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3])
	}
	return 0
}

func (r *reader) addr() (a Addr) {
	copy(a[:], r.take(4))
	return a
}

func (r *reader) name() []byte {
	n := int(r.byte())
	if r.err == nil && n > MaxName {
		r.err = ErrNameTooLong
		return nil
	}
	return r.take(n)
}
