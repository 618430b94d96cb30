package netsim

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Capture writes every frame of the LAN, as the access point sees it, to a
// pcapng file that Wireshark and tshark open. A frame that did not reach
// everyone it was sent to carries a comment saying who missed it and why
// ("lost on the uplink", "not delivered: pico3 (loss), pico4 (off)"), so the
// capture shows the drops too; tshark shows it as frame.comment.
// Timestamps are simulated time from Epoch.
type Capture struct {
	w     *bufio.Writer
	c     io.Closer
	err   error
	count int
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
func (c *Capture) packet(at time.Duration, frame []byte, comment string) {
	pad := func(n int) int { return (n + 3) &^ 3 }
	optLen := 0
	if comment != "" {
		optLen = 4 + pad(len(comment)) + 4
	}
	total := 28 + pad(len(frame)) + optLen + 4
	b := make([]byte, total)
	ts := uint64(Epoch.Add(at).UnixNano())
	le.PutUint32(b[0:], 6)
	le.PutUint32(b[4:], uint32(total))
	le.PutUint32(b[12:], uint32(ts>>32))
	le.PutUint32(b[16:], uint32(ts))
	le.PutUint32(b[20:], uint32(len(frame)))
	le.PutUint32(b[24:], uint32(len(frame)))
	copy(b[28:], frame)
	o := 28 + pad(len(frame))
	if comment != "" {
		le.PutUint16(b[o:], 1) // opt_comment
		le.PutUint16(b[o+2:], uint16(len(comment)))
		copy(b[o+4:], comment)
		o += 4 + pad(len(comment)) // then opt_endofopt: zeros
	}
	le.PutUint32(b[total-4:], uint32(total))
	c.write(b)
	c.count++
}

// missed collects who did not get one frame, for the capture's comment; a
// nil missed (no capture running) ignores everything.
type missed map[string]string

func (m missed) add(who, why string) {
	if m != nil && why != "" {
		m[who] = why
	}
}

func (m missed) comment() string {
	if len(m) == 0 {
		return ""
	}
	if why, ok := m[""]; ok {
		return "dropped: " + why
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s (%s)", n, m[n])
	}
	return "not delivered: " + strings.Join(parts, ", ")
}
