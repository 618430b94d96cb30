package cyw43

import "encoding/binary"

// SDPCM, the framing of function 2 both ways (whd/protocol.go):
//
//	0  size (16 bits LE)       the whole frame, headers included
//	2  ^size
//	4  sequence number
//	5  channel (low 4 bits): 0 control, 1 event, 2 data
//	6  next length (0)
//	7  header length: where the channel's payload starts
//	8  wireless flow control
//	9  bus data credit: the highest sequence number the host may send, exclusive
//	10 reserved (2 bytes)
//
// Data and event frames carry 2 bytes of padding after the 12-byte header
// (header length 14) and then a 4-byte BDC header (flags with version 2 in
// bits 7:4, priority, flags2, data offset in words); control frames carry
// the 16-byte CDC header right after the SDPCM one.
const (
	sdpcmHeaderLen = 12
	bdcHeaderLen   = 4
	cdcHeaderLen   = 16
	dataPad        = 2 // between the SDPCM and BDC headers of data and event frames

	chanControl = 0
	chanEvent   = 1
	chanData    = 2

	bdcVersion2 = 2 << 4

	// creditWindow is how many frames past the last one it received the
	// chip lets the host send: each frame to the host carries the host's
	// next sequence number plus this (the driver's update_credit clamps
	// anything over 0x40).
	creditWindow = 8
)

// f2Write takes a frame from the host (the driver's sendIoctl and tx). It
// returns the status flags of the transaction.
func (c *Chip) f2Write(p []byte) uint32 {
	s := c.s
	if !s.fwRunning {
		c.logOnce("f2down", "F2 write of %d bytes before the firmware runs: dropped", len(p))
		s.irq |= irqF2F3Overflow
		return stOverflow
	}
	if len(p) < sdpcmHeaderLen {
		c.logf("F2 frame of %d bytes: shorter than an SDPCM header, dropped", len(p))
		return 0
	}
	size := binary.LittleEndian.Uint16(p[0:])
	if size != ^binary.LittleEndian.Uint16(p[2:]) {
		c.logf("F2 frame: size %d and its complement %#04x disagree, dropped", size, binary.LittleEndian.Uint16(p[2:]))
		return 0
	}
	if int(size) > len(p) || size < sdpcmHeaderLen {
		c.logf("F2 frame: size %d in a transfer of %d bytes, dropped", size, len(p))
		return 0
	}
	p = p[:size]
	seq, ch, hlen := p[4], p[5]&0x0f, int(p[7])
	if seq != s.hostNext {
		c.logf("F2 frame: sequence %d, expected %d", seq, s.hostNext)
	}
	if int8(seq-s.granted) >= 0 {
		c.logOnce("nocredit", "F2 frame: sequence %d beyond the credit %d given", seq, s.granted)
	}
	s.hostNext = seq + 1
	if hlen < sdpcmHeaderLen || hlen > len(p) {
		c.logf("F2 frame: header length %d in a frame of %d bytes, dropped", hlen, len(p))
		return 0
	}
	payload := p[hlen:]
	switch ch {
	case chanControl:
		c.control(payload)
	case chanData:
		c.hostData(payload)
	default:
		c.logf("F2 frame on channel %d from the host: dropped", ch)
	}
	c.creditUpdate()
	return 0
}

// creditUpdate: when the host has used up its credit and no frame waits to
// carry it more, the chip sends one. A real chip sends a bare 12-byte
// SDPCM header for this, but cyw43439 v0.2.0's rx refuses frames under 17
// bytes (io.ErrShortBuffer) before it reads their credit, and its tx would
// fail with that error; so the model sends the event a chip sends about its
// transmit credits, WLC_E_FIFO_CREDIT_MAP, which the driver reads the
// credit of and otherwise ignores (not in its event mask). Skipped if the
// host masked that event out.
func (c *Chip) creditUpdate() {
	s := c.s
	if s.hostNext != s.granted || len(s.rxq) > 0 {
		return
	}
	// Credits per FIFO: AC_BK, AC_BE, AC_VI, AC_VO, BC/MC, ATIM.
	c.event(evFIFO_CREDIT_MAP, 0, 0, 0, [6]byte{}, []byte{creditWindow, creditWindow, creditWindow, creditWindow, 1, 0})
	if len(s.rxq) > 0 {
		s.creditFrames++
	}
}

// hostData: a data frame from the host: BDC header, then the Ethernet frame,
// which goes to the LAN while joined.
func (c *Chip) hostData(p []byte) {
	s := c.s
	if len(p) < bdcHeaderLen {
		c.logf("data frame without a BDC header: dropped")
		return
	}
	off := bdcHeaderLen + 4*int(p[3])
	if off > len(p) {
		c.logf("data frame: BDC data offset %d past its end: dropped", p[3])
		return
	}
	frame := p[off:]
	if !s.joined {
		s.txDropped++
		c.logOnce("txdown", "data frame from the host while not joined: dropped")
		return
	}
	s.txFrames++
	if f := c.cfg.Send; f != nil {
		cp := append([]byte(nil), frame...)
		c.fx = append(c.fx, func() { f(cp) })
	}
}

// f2Read hands the host the frame at the head of the queue (the driver's
// wlan_read of the length the status word gave). A read with nothing
// queued sets "data unavailable" (the driver clears it in f2PacketAvail).
func (c *Chip) f2Read(n int) ([]byte, uint32) {
	s := c.s
	if !s.fwRunning || len(s.rxq) == 0 {
		s.irq |= irqDataUnavailable
		return s.scratch(n), stDataNotAvailable
	}
	f := s.rxq[0]
	s.rxq[0] = nil
	s.rxq = s.rxq[1:]
	if len(s.rxq) == 0 {
		s.rxq = nil
	}
	if f[5]&0x0f == chanData {
		s.nData--
	}
	// Sequence and credit are stamped as the frame leaves: the credit is
	// the freshest the chip has.
	f[4] = s.txSeq
	s.txSeq++
	s.granted = s.hostNext + creditWindow
	f[9] = s.granted
	s.hostReads++
	var flags uint32
	if n < len(f) {
		c.logf("F2 read of %d bytes of a %d-byte frame: the rest is lost", n, len(f))
	} else if n > len(f) {
		flags = stUnderflow
		s.irq |= irqF2F3Underflow
	}
	out := s.scratch(n)
	copy(out, f)
	return out, flags
}

// frame builds an SDPCM frame for the host around payload; sequence and
// credit are stamped when the host reads it.
func frame(ch byte, hlen int, payload ...[]byte) []byte {
	n := hlen
	for _, p := range payload {
		n += len(p)
	}
	f := make([]byte, hlen, n)
	binary.LittleEndian.PutUint16(f[0:], uint16(n))
	binary.LittleEndian.PutUint16(f[2:], ^uint16(n))
	f[5] = ch
	f[7] = byte(hlen)
	for _, p := range payload {
		f = append(f, p...)
	}
	return f
}

// queue adds a frame for the host.
func (c *Chip) queue(f []byte) {
	s := c.s
	if f[5]&0x0f == chanData {
		s.nData++
	}
	s.rxq = append(s.rxq, f)
}

// receive queues a frame from the LAN as a data-channel packet.
func (c *Chip) receive(eth []byte) bool {
	if !c.on || !c.s.fwRunning || !c.s.joined {
		if c.on {
			c.s.rxDropped++
		}
		return false
	}
	s := c.s
	if sdpcmHeaderLen+dataPad+bdcHeaderLen+len(eth) > maxF2Packet || len(eth) < 14 {
		s.rxDropped++
		c.logf("frame of %d bytes from the LAN: does not fit an F2 packet, dropped", len(eth))
		return false
	}
	if !s.accepts([6]byte(eth[0:6])) {
		s.rxFiltered++
		return true
	}
	if s.nData >= maxDataQueue {
		s.rxDropped++
		return false
	}
	s.rxFrames++
	bdc := []byte{bdcVersion2, 0, 0, 0}
	c.queue(frame(chanData, sdpcmHeaderLen+dataPad, bdc, eth))
	return true
}

// accepts is the chip's receive address filter: its own MAC, broadcast, and
// the multicast groups the host registered (mcast_list) or all of them
// (allmulti).
func (s *state) accepts(dst [6]byte) bool {
	switch {
	case dst == s.mac, dst == [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}:
		return true
	case dst[0]&1 == 0:
		return false
	}
	if v := s.vars["allmulti"]; len(v) >= 4 && binary.LittleEndian.Uint32(v) != 0 {
		return true
	}
	for _, m := range s.mcast {
		if m == dst {
			return true
		}
	}
	return false
}
