package cyw43

import "encoding/binary"

// The backplane as function 1 shows it: F1 addresses below 0x8000 (with bit
// 15, whd.SBSDIO_SB_ACCESS_2_4B_FLAG, set on 4-byte accesses) reach the
// backplane through a 32 KiB window whose base the host sets in three
// registers (bus.go backplane_setwindow); F1 addresses 0x10000 and up are
// the SDIO/SPI core's own registers.
const (
	ramSize    = 512 * 1024 // the chip's RAM: Init's chipRAMSize
	ramTopSize = 8 * 1024   // the top of it kept: NVRAM and its length word

	f1Base        = 0x10000
	f1Watermark   = 0x08 // 0x10008 REG_BACKPLANE_FUNCTION2_WATERMARK
	f1WindowLow   = 0x0a // 0x1000a SDIO_BACKPLANE_ADDRESS_LOW (address bits 15:8)
	f1WindowMid   = 0x0b // 0x1000b (bits 23:16)
	f1WindowHigh  = 0x0c // 0x1000c (bits 31:24)
	f1FrameCtrl   = 0x0d // 0x1000d SPI_FRAME_CONTROL
	f1ClockCSR    = 0x0e // 0x1000e SDIO_CHIP_CLOCK_CSR
	f1PullUp      = 0x0f // 0x1000f SDIO_PULL_UP
	f1WakeupCtrl  = 0x1e // 0x1001e SDIO_WAKEUP_CTRL
	f1SleepCSR    = 0x1f // 0x1001f SDIO_SLEEP_CSR
	f1RegisterTop = 0x20

	// SDIO_CHIP_CLOCK_CSR bits.
	csrForceALP   = 0x01
	csrForceHT    = 0x02
	csrALPAvailRq = 0x08
	csrHTAvailRq  = 0x10
	csrALPAvail   = 0x40 // read only
	csrHTAvail    = 0x80 // read only

	// SDIO_SLEEP_CSR bits.
	sleepKeepSDIOOn = 0x01
	sleepDeviceOn   = 0x02

	chipcommonBase = 0x18000000
	ccChipID       = chipcommonBase + 0x00
	ccGPIOOut      = chipcommonBase + 0x64
	ccGPIOOutEn    = chipcommonBase + 0x68

	// The chip id register: 43439 (0xA9AF, what Init reads with
	// bp_read16(0x1800_0000)) in bits 15:0; revision 0 (A0), and AI
	// interconnect (type 1) in bits 31:28. The core count (27:24) is the
	// model's guess.
	chipID = 1<<28 | 6<<24 | 0<<16 | 43439

	wrapperOffset  = 0x100000
	armBase        = 0x18003000 // WLAN ARM CM3
	socsramBase    = 0x18004000
	aiIOCtrl       = 0x408
	aiResetCtrl    = 0x800
	sicfClockEn    = 0x01
	sicfFGC        = 0x02
	sicfCPUHalt    = 0x20
	aircReset      = 0x01
	coreARM        = 0
	coreSOCSRAM    = 1
	socsramBankIdx = socsramBase + 0x10
	socsramBankPDA = socsramBase + 0x44
)

var coreNames = [2]string{"WLAN ARM", "SOCSRAM"}

func (c *Chip) enterBackplane() {
	if c.phase == PhaseBus && c.s.word32() {
		c.setPhase(PhaseBackplane)
	}
}

func (s *state) windowBase() uint32 {
	return (uint32(s.f1[f1WindowHigh])<<24 | uint32(s.f1[f1WindowMid])<<16 | uint32(s.f1[f1WindowLow])<<8) &^ 0x7fff
}

// backplaneRead serves an F1 read: a register of function 1 or bytes of the
// backplane through the window (the driver's bp_read, backplane_readn).
func (c *Chip) backplaneRead(k command) []byte {
	s := c.s
	c.enterBackplane()
	if k.n > 64 {
		c.logOnce("f1long", "F1 read of %d bytes: longer than the 64 the bus takes", k.n)
	}
	data := s.scratch(k.n)
	for i := range data {
		a := k.addr + k.step(i)
		if a >= f1Base {
			data[i] = c.f1Read(a - f1Base)
		} else {
			data[i] = c.bpRead(s.windowBase() + (a & 0x7fff))
		}
	}
	return data
}

// backplaneWrite serves an F1 write.
func (c *Chip) backplaneWrite(k command, data []byte) {
	s := c.s
	c.enterBackplane()
	if k.n > 64 {
		c.logOnce("f1long", "F1 write of %d bytes: longer than the 64 the bus takes", k.n)
	}
	if k.addr >= f1Base {
		for i, b := range data {
			c.f1Write(k.addr+k.step(i)-f1Base, b)
		}
		return
	}
	start := s.windowBase() + (k.addr & 0x7fff)
	if k.inc && start+uint32(len(data)) <= ramSize {
		c.ramWrite(start, data) // firmware, NVRAM, the length word (Init's bp_write calls)
	} else {
		for i, b := range data {
			c.bpWrite(s.windowBase()+((k.addr+k.step(i))&0x7fff), b)
		}
	}
	c.afterBackplaneWrite()
}

func (c *Chip) f1Read(r uint32) byte {
	s := c.s
	if r >= f1RegisterTop {
		c.logOnce("f1reg", "F1 register %#x: not modelled (reads 0)", f1Base+r)
		return 0
	}
	v := s.f1[r]
	switch r {
	case f1ClockCSR:
		// ALP comes when asked for (Init polls for it right after its
		// request); the firmware, once it runs, holds HT (Init waits for
		// HT available after starting the core, before it asks), and HT
		// comes when asked for.
		if s.fwRunning || v&(csrALPAvailRq|csrForceALP|csrHTAvailRq|csrForceHT) != 0 {
			v |= csrALPAvail
		}
		if s.fwRunning || v&(csrHTAvailRq|csrForceHT) != 0 {
			v |= csrHTAvail
		}
	case f1SleepCSR:
		if v&sleepKeepSDIOOn != 0 {
			v |= sleepDeviceOn
		}
	}
	return v
}

func (c *Chip) f1Write(r uint32, b byte) {
	s := c.s
	if r >= f1RegisterTop {
		c.logOnce("f1reg", "F1 register %#x: not modelled (write ignored)", f1Base+r)
		return
	}
	switch r {
	case f1ClockCSR:
		b &^= csrALPAvail | csrHTAvail // read only
	case f1SleepCSR:
		b &^= sleepDeviceOn
	}
	s.f1[r] = b
}

// coreAt tells which core wrapper register a backplane address is, if any.
func coreAt(a uint32) (core int, reg uint32, ok bool) {
	for i, base := range [2]uint32{armBase + wrapperOffset, socsramBase + wrapperOffset} {
		if a == base+aiIOCtrl || a == base+aiResetCtrl {
			return i, a - base, true
		}
	}
	return 0, 0, false
}

func (c *Chip) bpRead(a uint32) byte {
	s := c.s
	switch {
	case a < ramSize:
		if a >= ramSize-ramTopSize {
			return s.ramTop[a-(ramSize-ramTopSize)]
		}
		return 0 // the uploaded image is not kept (the driver never reads it back)
	case a >= ccChipID && a < ccChipID+4:
		return byte(uint32(chipID) >> (8 * (a - ccChipID)))
	case a >= ccGPIOOut && a < ccGPIOOut+4:
		return byte(s.gpioOut >> (8 * (a - ccGPIOOut)))
	case a >= ccGPIOOutEn && a < ccGPIOOutEn+4:
		return byte(s.gpioOutEn >> (8 * (a - ccGPIOOutEn)))
	}
	if i, reg, ok := coreAt(a); ok {
		if reg == aiIOCtrl {
			return s.cores[i].ioctrl
		}
		return s.cores[i].resetctrl
	}
	return s.regs[a]
}

func (c *Chip) bpWrite(a uint32, b byte) {
	s := c.s
	switch {
	case a < ramSize:
		c.ramWrite(a, []byte{b})
		return
	case a >= ccChipID && a < ccChipID+4:
		return // read only
	case a >= ccGPIOOut && a < ccGPIOOut+4:
		sh := 8 * (a - ccGPIOOut)
		s.gpioOut = s.gpioOut&^(0xff<<sh) | uint32(b)<<sh
		return
	case a >= ccGPIOOutEn && a < ccGPIOOutEn+4:
		sh := 8 * (a - ccGPIOOutEn)
		s.gpioOutEn = s.gpioOutEn&^(0xff<<sh) | uint32(b)<<sh
		return
	}
	if i, reg, ok := coreAt(a); ok {
		if reg == aiIOCtrl {
			s.cores[i].ioctrl = b
		} else {
			s.cores[i].resetctrl = b & aircReset
		}
		return
	}
	s.regs[a] = b
}

// afterBackplaneWrite applies what a write to the backplane may have changed:
// the WLAN ARM core leaving or entering reset (Init's core_reset after the
// uploads starts the firmware), the LED.
func (c *Chip) afterBackplaneWrite() {
	s := c.s
	arm := s.cores[coreARM]
	on := arm.resetctrl&aircReset == 0 && arm.ioctrl&sicfClockEn != 0 && arm.ioctrl&sicfCPUHalt == 0
	if on != s.armOn {
		s.armOn = on
		if on {
			c.bootFirmware()
		} else {
			c.stopFirmware()
		}
	}
	c.updateLED()
}

// ramWrite counts an upload: the firmware from address 0, the NVRAM below
// the top word and the length word (Init). The bytes are not kept but for
// the top 8 KiB; the firmware's version string is noted as it goes by.
func (c *Chip) ramWrite(start uint32, data []byte) {
	s := c.s
	end := start + uint32(len(data))
	if s.fwRunning {
		c.logOnce("ramrun", "RAM written at %#x while the firmware runs", start)
	}
	if sr := s.cores[coreSOCSRAM]; sr.resetctrl&aircReset != 0 || sr.ioctrl&sicfClockEn == 0 {
		c.logOnce("ramreset", "RAM written at %#x while the SOCSRAM core is down (a real chip loses it)", start)
	}
	s.ram = s.ram.add(start, end)
	const top = ramSize - ramTopSize
	if end > top {
		from := max(start, top)
		copy(s.ramTop[from-top:], data[from-start:])
	}
	s.ver.feed(data)
}

// uploads reads the RAM the host wrote: the NVRAM length word at the top
// ((^words)<<16 | words) names the NVRAM below it; the firmware is what
// lies under that.
func (s *state) uploads() (fw, nvram, words int) {
	nvStart := uint32(ramSize - 4)
	if s.ram.covered(ramSize-4, ramSize) == 4 {
		w := binary.LittleEndian.Uint32(s.ramTop[ramTopSize-4:])
		n := w & 0xffff
		if n != 0 && w>>16 == ^n&0xffff && n*4 < ramSize-4 {
			words = int(n)
			nvStart = ramSize - 4 - n*4
			nvram = s.ram.covered(nvStart, ramSize-4)
		}
	}
	return s.ram.covered(0, nvStart), nvram, words
}

// nvramText is the NVRAM the host uploaded, up to its closing empty entry.
func (s *state) nvramText() string {
	_, _, words := s.uploads()
	if words == 0 || words*4 > ramTopSize-4 {
		return ""
	}
	b := s.ramTop[ramTopSize-4-words*4 : ramTopSize-4]
	if i := indexOf2NUL(b); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func indexOf2NUL(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 {
			return i
		}
	}
	return -1
}

// bootFirmware: the WLAN ARM core left reset. With a firmware image in RAM
// it runs: F2 becomes ready and the firmware holds the HT clock. Without
// one nothing runs and the host times out as it would on a real chip.
func (c *Chip) bootFirmware() {
	s := c.s
	fw, nv, words := s.uploads()
	if fw == 0 {
		c.logf("WLAN core out of reset with no firmware in RAM: nothing runs")
		return
	}
	if words == 0 {
		c.logf("WLAN core out of reset with no NVRAM length word at the top of RAM")
	}
	s.resetFirmware()
	s.fwRunning = true
	s.fwVersion = s.ver.found
	var board string
	for _, kv := range splitNUL(s.nvramText()) {
		if len(kv) > 10 && kv[:10] == "boardtype=" {
			board = " " + kv
		}
	}
	c.logf("firmware started: %d bytes of firmware (Version: %s), %d bytes of NVRAM (%d words%s)", fw, s.fwVersion, nv, words, board)
	c.setPhase(PhaseFirmware)
}

func splitNUL(t string) []string {
	var out []string
	for len(t) > 0 {
		i := 0
		for i < len(t) && t[i] != 0 {
			i++
		}
		out = append(out, t[:i])
		if i == len(t) {
			break
		}
		t = t[i+1:]
	}
	return out
}

// stopFirmware: the WLAN core went back into reset; the firmware's state is
// gone and the association with it.
func (c *Chip) stopFirmware() {
	s := c.s
	if !s.fwRunning {
		return
	}
	if s.joined {
		c.addFx(c.cfg.Leave)
	}
	s.resetFirmware()
	c.logf("WLAN core reset: the firmware stopped")
	c.setPhase(PhaseBackplane)
}

func (c *Chip) updateLED() {
	s := c.s
	on := s.gpioOut&s.gpioOutEn&1 != 0
	if on != s.led {
		s.led = on
		c.led(on)
	}
}

// led reports GPIO 0's level (not logged: a blinking LED would fill the log).
func (c *Chip) led(on bool) {
	if f := c.cfg.LED; f != nil {
		c.fx = append(c.fx, func() { f(on) })
	}
}
