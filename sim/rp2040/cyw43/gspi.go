package cyw43

import (
	"encoding/binary"
	"fmt"
)

// The gSPI command word (bus.go cmd_word):
//
//	bit 31     write (1) or read (0)
//	bit 30     increment the address after each byte
//	bits 29:28 function: 0 bus registers, 1 backplane, 2 WLAN (F2), 3 BT (F3)
//	bits 27:11 address (17 bits)
//	bits 10:0  length in bytes (0 means 2048)
type command struct {
	write, inc bool
	fn         uint32
	addr       uint32
	n          int
}

func decode(cmd uint32) command {
	n := int(cmd & 0x7ff)
	if n == 0 {
		n = 2048
	}
	return command{
		write: cmd>>31&1 != 0,
		inc:   cmd>>30&1 != 0,
		fn:    cmd >> 28 & 3,
		addr:  cmd >> 11 & 0x1ffff,
		n:     n,
	}
}

func (k command) String() string {
	dir := "read"
	if k.write {
		dir = "write"
	}
	return fmt.Sprintf("F%d %s %#05x len %d", k.fn, dir, k.addr, k.n)
}

// swap16 exchanges a word's 16-bit halves: in 16-bit mode each 32-bit word
// on the wire is two 16-bit words, which the host's 32-bit shifts see
// swapped. The driver's read32_swapped/write32_swapped apply it to the
// command and the data of its first transactions (initBus).
func swap16(v uint32) uint32 { return v>>16 | v<<16 }

const (
	fnBus       = 0
	fnBackplane = 1
	fnWLAN      = 2
	fnBT        = 3
)

// Function 0 (bus) registers (whd.SPI_*).
const (
	regBusControl   = 0x00 // 8 bits
	regRespDelay    = 0x01 // 8 bits: the backplane's read response delay (an alias of 0x1d here)
	regStatusEnable = 0x02 // 8 bits
	regResetBP      = 0x03 // 8 bits
	regInterrupt    = 0x04 // 16 bits, write 1 to clear
	regIntEnable    = 0x06 // 16 bits
	regStatus       = 0x08 // 32 bits, read only
	regF1Info       = 0x0c // 16 bits, read only
	regF2Info       = 0x0e // 16 bits, read only
	regF3Info       = 0x10 // 16 bits, read only
	regTestRO       = 0x14 // 32 bits: 0xFEEDBEAD
	regTestRW       = 0x18 // 32 bits
	regRespDelayF0  = 0x1c // 8 bits each, F0..F3
	regRespDelayF1  = 0x1d
	regRespDelayF2  = 0x1e
	regRespDelayF3  = 0x1f

	testPattern = 0xFEEDBEAD
)

// Bus control bits (register 0x00).
const (
	busWord32    = 0x01 // 32-bit words (else 16-bit)
	busBigEndian = 0x02
)

// Status enable bits (register 0x02).
const (
	statusEnable    = 0x01 // the status word follows each transaction
	statusRespAll   = 0x04 // the response delays apply to every function's reads (else to F1 only)
	statusDwordPLen = 0x08 // the packet length in the status word counts 32-bit words
)

// Interrupt register bits (0x04; whd.DATA_UNAVAILABLE ...).
const (
	irqDataUnavailable = 0x0001 // an F2 read found no packet; write 1 to clear
	irqF2F3Underflow   = 0x0002
	irqF2F3Overflow    = 0x0004
	irqCommandError    = 0x0008
	irqDataError       = 0x0010
	irqF2PacketAvail   = 0x0020 // a packet waits in the F2 FIFO (level: follows the queue)
	irqF1Overflow      = 0x0080
)

// Status word bits (whd.STATUS_*, cyw43439.Status).
const (
	stDataNotAvailable = 0x00000001
	stUnderflow        = 0x00000002
	stOverflow         = 0x00000004
	stF2RxReady        = 0x00000020 // F2 can take a packet from the host (the firmware runs)
	stF2PktAvailable   = 0x00000100
	stF2PktLenShift    = 9 // bits 19:9
	stF2PktLenMask     = 0x7ff
)

// Reset values of function 0's registers: 16-bit little-endian words,
// high-speed mode and interrupt polarity high, status enabled, a 4-byte
// response delay. These are the model's reading of the datasheet, not
// checked against a chip; the driver writes everything it relies on
// (initBus: bus control, status enable, response delays) before it depends
// on it, so none of them is load-bearing for it.
func resetF0(r *[0x20]byte) {
	r[regBusControl] = 0x30
	r[regRespDelay] = 4
	r[regStatusEnable] = statusEnable
}

// cmdRead: a read transaction. In 16-bit mode the command word and every
// data word arrive and leave half-swapped (the driver's read32_swapped).
func (c *Chip) cmdRead(cmd uint32, buf []uint32) error {
	if !c.on {
		clear(buf)
		return nil
	}
	s := c.s
	if !s.word32() {
		cmd = swap16(cmd)
	}
	k := decode(cmd)
	if k.write {
		clear(buf)
		return fmt.Errorf("cyw43: CmdRead of a write command %#08x (%v)", cmd, k)
	}
	var flags uint32
	var data []byte
	switch k.fn {
	case fnBus:
		data = s.scratch(k.n)
		for i := range data {
			data[i] = c.busRead(k.addr + k.step(i))
		}
	case fnBackplane:
		data = c.backplaneRead(k)
	case fnWLAN:
		data, flags = c.f2Read(k.n)
	default:
		data = s.scratch(k.n) // F3 (Bluetooth) is not modelled: zeros
		c.logOnce("f3", "F3 (Bluetooth) read: not modelled")
	}
	// The response delay: padding bytes before the data, which the driver
	// skips (readn's padding word and bp_read's first word on F1).
	pad := s.respDelay(k.fn)
	out := s.out[:0]
	for range pad {
		out = append(out, 0)
	}
	out = append(out, data...)
	s.out = out
	for i := range buf {
		var w [4]byte
		if 4*i < len(out) {
			copy(w[:], out[4*i:])
		}
		v := binary.LittleEndian.Uint32(w[:])
		if !s.word32() {
			v = swap16(v)
		}
		buf[i] = v
	}
	c.latchStatus(flags)
	return nil
}

// cmdWrite: a write transaction. The data is the first k.n bytes of buf's
// words (little endian); the driver's bp_write sends one word more than its
// length, which is ignored as a chip ignores clocks past the length.
func (c *Chip) cmdWrite(cmd uint32, buf []uint32) error {
	if !c.on {
		return nil
	}
	s := c.s
	if !s.word32() {
		cmd = swap16(cmd)
	}
	k := decode(cmd)
	if !k.write {
		return fmt.Errorf("cyw43: CmdWrite of a read command %#08x (%v)", cmd, k)
	}
	if 4*len(buf) < k.n {
		return fmt.Errorf("cyw43: %v with %d data words", k, len(buf))
	}
	data := s.scratch(k.n)
	for i := 0; i < k.n; i += 4 {
		v := buf[i/4]
		if !s.word32() {
			v = swap16(v)
		}
		var w [4]byte
		binary.LittleEndian.PutUint32(w[:], v)
		copy(data[i:], w[:])
	}
	var flags uint32
	switch k.fn {
	case fnBus:
		for i, b := range data {
			c.busWrite(k.addr+k.step(i), b)
		}
	case fnBackplane:
		c.backplaneWrite(k, data)
	case fnWLAN:
		flags = c.f2Write(data)
	default:
		c.logOnce("f3", "F3 (Bluetooth) write: not modelled")
	}
	c.latchStatus(flags)
	return nil
}

func (k command) step(i int) uint32 {
	if k.inc {
		return uint32(i)
	}
	return 0
}

// busRead reads one byte of function 0's register space.
func (c *Chip) busRead(addr uint32) byte {
	s := c.s
	var w [8]byte
	switch {
	case addr == regInterrupt || addr == regInterrupt+1:
		binary.LittleEndian.PutUint16(w[:], c.interrupts())
		return w[addr-regInterrupt]
	case addr >= regStatus && addr < regStatus+4:
		binary.LittleEndian.PutUint32(w[:], c.status(0))
		return w[addr-regStatus]
	case addr >= regF1Info && addr < regF3Info+2:
		// Function info: bit 0 enabled, bit 1 ready, bits 14:2 the
		// function's largest packet (F1 64 bytes, F2 2048).
		var f1, f2 uint16 = 64<<2 | 3, 2048<<2 | 1
		if s.fwRunning {
			f2 |= 2
		}
		binary.LittleEndian.PutUint16(w[0:], f1)
		binary.LittleEndian.PutUint16(w[2:], f2)
		return w[addr-regF1Info] // F3 (4, 5) is zero
	case addr >= regTestRO && addr < regTestRO+4:
		binary.LittleEndian.PutUint32(w[:], testPattern)
		return w[addr-regTestRO]
	case addr < uint32(len(s.f0)):
		return s.f0[addr]
	}
	return 0
}

// busWrite writes one byte of function 0's register space.
func (c *Chip) busWrite(addr uint32, b byte) {
	s := c.s
	switch {
	case addr == regBusControl:
		if b&busBigEndian != 0 {
			c.logOnce("bigendian", "bus control: big-endian words are not modelled (little endian kept)")
		}
		s.f0[addr] = b
	case addr == regRespDelay:
		s.f0[addr] = b
		s.f0[regRespDelayF1] = b
	case addr == regInterrupt || addr == regInterrupt+1:
		s.irq &^= uint16(b) << (8 * (addr - regInterrupt)) // write 1 to clear
	case addr >= regStatus && addr < regTestRW:
		// read only
	case addr < uint32(len(s.f0)):
		s.f0[addr] = b
	}
}

// interrupts is the interrupt register: the latched bits and F2 packet
// available, which follows the queue (the driver's getInterrupts,
// f2PacketAvail and handle_irq read it).
func (c *Chip) interrupts() uint16 {
	s := c.s
	v := s.irq
	if s.fwRunning && len(s.rxq) > 0 {
		v |= irqF2PacketAvail
	}
	return v
}

// status is the status word: F2 ready for the host's packets once the
// firmware runs (Init's "wait for F2 to be ready"), F2 packet available and
// the length of the packet at the head of the queue (tryPoll reads exactly
// that many bytes), and the transaction's own flags.
func (c *Chip) status(flags uint32) uint32 {
	s := c.s
	v := flags
	if s.irq&irqDataUnavailable != 0 {
		v |= stDataNotAvailable
	}
	if s.fwRunning {
		v |= stF2RxReady
		if len(s.rxq) > 0 {
			n := uint32(len(s.rxq[0]))
			if s.f0[regStatusEnable]&statusDwordPLen != 0 {
				n = (n + 3) / 4
			}
			v |= stF2PktAvailable | (n&stF2PktLenMask)<<stF2PktLenShift
		}
	}
	return v
}

// latchStatus records the status word sent at the end of a transaction:
// the state after it (LastStatus). It is sent half-swapped in 16-bit mode
// and not at all with status disabled.
func (c *Chip) latchStatus(flags uint32) {
	s := c.s
	if s.f0[regStatusEnable]&statusEnable == 0 {
		s.lastStatus = 0
		return
	}
	v := c.status(flags)
	if !s.word32() {
		v = swap16(v)
	}
	s.lastStatus = v
}

// respDelay is the number of padding bytes before a read's data: F1's
// always (the backplane is slow: the driver sets 4 and skips a word), the
// others' only with "response delay for all" set.
func (s *state) respDelay(fn uint32) int {
	if fn == fnBackplane || s.f0[regStatusEnable]&statusRespAll != 0 {
		return int(s.f0[regRespDelayF0+fn])
	}
	return 0
}

func (s *state) word32() bool { return s.f0[regBusControl]&busWord32 != 0 }

// scratch returns a zeroed buffer of n bytes, reused between transactions.
func (s *state) scratch(n int) []byte {
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	b := s.buf[:n]
	clear(b)
	return b
}

func (c *Chip) logOnce(key, format string, args ...any) {
	if c.s.once[key] {
		return
	}
	c.s.once[key] = true
	c.logf(format, args...)
}
