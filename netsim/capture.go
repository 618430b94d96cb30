package netsim

import (
	"bufio"
	"encoding/binary"
	"io"
	"slices"
	"time"
)

// Capture writes every frame of the LAN, as the access point sees it, to a
// pcapng file that Wireshark and tshark open. A frame that did not reach
// everyone it was sent to carries a comment saying who missed it and why
// ("lost on the uplink", "not delivered: pico3 (loss), pico4 (off)"), so the
// capture shows the drops too; tshark shows it as frame.comment.
// Timestamps are simulated time from Epoch.
type Capture struct {
	w       *bufio.Writer
	c       io.Closer
	err     error
	count   int
	scratch [36]byte // a block's header, padding and option header
}

// StartCapture records the LAN's frames to w from now on; Close flushes it
// (and closes w if it is an io.Closer). One capture at a time.
func (l *LAN) StartCapture(w io.Writer) (*Capture, error) {
	c := &Capture{w: bufio.NewWriterSize(w, 64<<10)}
	if cl, ok := w.(io.Closer); ok {
		c.c = cl
	}
	c.header()
	if c.err != nil {
		return nil, c.err
	}
	l.mu.Lock()
	l.capture = c
	l.mu.Unlock()
	return c, nil
}

// StopCapture ends the capture and flushes it.
func (l *LAN) StopCapture() error {
	l.mu.Lock()
	c := l.capture
	l.capture = nil
	l.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.close()
}

// Frames returns how many frames were written.
func (c *Capture) Frames() int { return c.count }

func (c *Capture) close() error {
	if err := c.w.Flush(); err != nil && c.err == nil {
		c.err = err
	}
	if c.c != nil {
		if err := c.c.Close(); err != nil && c.err == nil {
			c.err = err
		}
	}
	return c.err
}

var le = binary.LittleEndian

// epochNS is Epoch in nanoseconds since 1970, the timestamps' origin.
var epochNS = Epoch.UnixNano()

func (c *Capture) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

// header writes the Section Header and the Interface Description blocks.
func (c *Capture) header() {
	shb := make([]byte, 28)
	le.PutUint32(shb[0:], 0x0A0D0D0A)
	le.PutUint32(shb[4:], 28)
	le.PutUint32(shb[8:], 0x1A2B3C4D)
	le.PutUint16(shb[12:], 1) // version 1.0
	le.PutUint64(shb[16:], ^uint64(0))
	le.PutUint32(shb[24:], 28)
	c.write(shb)
	// Ethernet, no snap limit, nanosecond timestamps (if_tsresol = 9).
	idb := make([]byte, 32)
	le.PutUint32(idb[0:], 1)
	le.PutUint32(idb[4:], 32)
	le.PutUint16(idb[8:], 1) // LINKTYPE_ETHERNET
	le.PutUint32(idb[12:], 0)
	le.PutUint16(idb[16:], 9) // if_tsresol
	le.PutUint16(idb[18:], 1)
	idb[20] = 9
	// idb[24:28] opt_endofopt, idb[28:32] length
	le.PutUint32(idb[28:], 32)
	c.write(idb)
}

// packet writes one Enhanced Packet Block.
func (c *Capture) packet(at time.Duration, frame []byte, comment []byte) {
	// Written piece by piece into the buffered writer: a capture sees
	// every frame of a run, and building each block in a buffer of its own
	// was most of what capturing cost.
	pad := func(n int) int { return (n + 3) &^ 3 }
	optLen := 0
	if len(comment) > 0 {
		optLen = 4 + pad(len(comment)) + 4
	}
	total := 28 + pad(len(frame)) + optLen + 4
	h := c.scratch[:28] // a field: local arrays would escape through bufio
	zeros := c.scratch[28:32]
	clear(c.scratch[:])
	ts := uint64(epochNS + int64(at))
	le.PutUint32(h[0:], 6)
	le.PutUint32(h[4:], uint32(total))
	le.PutUint32(h[12:], uint32(ts>>32))
	le.PutUint32(h[16:], uint32(ts))
	le.PutUint32(h[20:], uint32(len(frame)))
	le.PutUint32(h[24:], uint32(len(frame)))
	c.write(h)
	c.write(frame)
	c.write(zeros[:pad(len(frame))-len(frame)])
	if len(comment) > 0 {
		o := c.scratch[32:36]
		le.PutUint16(o[0:], 1) // opt_comment
		le.PutUint16(o[2:], uint16(len(comment)))
		c.write(o)
		c.write(comment)
		c.write(zeros[:pad(len(comment))-len(comment)])
		c.write(zeros) // opt_endofopt
	}
	le.PutUint32(h[0:], uint32(total))
	c.write(h[:4])
	c.count++
}

// missed collects who did not get one frame, for the capture's comment; it
// ignores everything while off (no capture running). The LAN reuses one.
type missed struct {
	on  bool
	all string // why nobody got it
	who []missedBy
	buf []byte // the comment, reused
}

type missedBy struct {
	h   *Host
	why string
}

func (m *missed) reset(on bool) {
	m.on, m.all, m.who = on, "", m.who[:0]
}

// add notes why a receiver (nil: all of them) did not get the frame.
func (m *missed) add(who *Host, why string) {
	switch {
	case !m.on || why == "":
	case who == nil:
		m.all = why
	default:
		m.who = append(m.who, missedBy{who, why})
	}
}

// comment returns the capture's comment, valid until the next reset.
func (m *missed) comment() []byte {
	m.buf = m.buf[:0]
	if m.all != "" {
		m.buf = append(append(m.buf, "dropped: "...), m.all...)
		return m.buf
	}
	if len(m.who) == 0 {
		return nil
	}
	// In name order, by the rank AddHost gives each name: a capture
	// comments most frames of a lossy run, and comparing strings was most
	// of what capturing cost.
	slices.SortFunc(m.who, func(a, b missedBy) int { return a.h.nameRank - b.h.nameRank })
	b := append(m.buf, "not delivered: "...)
	for i, e := range m.who {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(append(append(append(b, e.h.name...), " ("...), e.why...), ')')
	}
	m.buf = b
	return b
}
