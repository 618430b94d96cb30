package cyw43

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"testing"
)

// host is a small gSPI host for the tests: the transactions the driver
// (github.com/soypat/cyw43439 v0.2.0, bus.go and ioctl.go) makes, by hand.
type host struct {
	t      *testing.T
	c      *Chip
	word32 bool
	window uint32
	seq    uint8
	id     uint16

	mu     sync.Mutex
	logs   []string
	joins  []string
	sent   [][]byte
	leds   []bool
	leaves int
	joinOK bool
}

var testMAC = [6]byte{0x28, 0xcd, 0xc1, 1, 2, 3}

func newHost(t *testing.T) *host {
	h := &host{t: t, joinOK: true}
	h.c = New(Config{
		MAC: testMAC,
		Join: func(ssid string, pass []byte) bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.joins = append(h.joins, ssid+"/"+string(pass))
			return h.joinOK
		},
		Leave: func() { h.mu.Lock(); h.leaves++; h.mu.Unlock() },
		Send:  func(f []byte) { h.mu.Lock(); h.sent = append(h.sent, f); h.mu.Unlock() },
		LED:   func(on bool) { h.mu.Lock(); h.leds = append(h.leds, on); h.mu.Unlock() },
		Log:   func(m string) { h.mu.Lock(); h.logs = append(h.logs, m); h.mu.Unlock() },
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chip log:\n  %s", strings.Join(h.logs, "\n  "))
		}
	})
	return h
}

func (h *host) logged(sub string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.ContainsFunc(h.logs, func(l string) bool { return strings.Contains(l, sub) })
}

func cmdWord(write bool, fn, addr, n uint32) uint32 {
	var w uint32
	if write {
		w = 1 << 31
	}
	return w | 1<<30 | fn<<28 | (addr&0x1ffff)<<11 | n&0x7ff
}

func (h *host) xfer(write bool, fn, addr, n uint32, buf []uint32) {
	h.t.Helper()
	cmd := cmdWord(write, fn, addr, n)
	if !h.word32 { // read32_swapped / write32_swapped
		cmd = swap16(cmd)
		for i := range buf {
			buf[i] = swap16(buf[i])
		}
	}
	var err error
	if write {
		err = h.c.CmdWrite(cmd, buf)
	} else {
		err = h.c.CmdRead(cmd, buf)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	if !h.word32 {
		for i := range buf {
			buf[i] = swap16(buf[i])
		}
	}
}

// reg reads a register of size 1, 2 or 4 (readn: F1 reads skip a padding word).
func (h *host) reg(fn, addr, size uint32) uint32 {
	h.t.Helper()
	pad := 0
	if fn == fnBackplane {
		pad = 1
	}
	buf := make([]uint32, 1+pad)
	h.xfer(false, fn, addr, size, buf)
	return buf[pad] & uint32(uint64(1)<<(8*size)-1)
}

func (h *host) setReg(fn, addr, size, v uint32) {
	h.t.Helper()
	h.xfer(true, fn, addr, size, []uint32{v})
}

func (h *host) setWindow(a uint32) {
	a &^= 0x7fff
	if a == h.window {
		return
	}
	h.setReg(fnBackplane, f1Base+f1WindowHigh, 1, a>>24)
	h.setReg(fnBackplane, f1Base+f1WindowMid, 1, a>>16&0xff)
	h.setReg(fnBackplane, f1Base+f1WindowLow, 1, a>>8&0xff)
	h.window = a
}

func (h *host) bpRead(a, size uint32) uint32 {
	h.setWindow(a)
	off := a & 0x7fff
	if size == 4 {
		off |= 0x8000
	}
	return h.reg(fnBackplane, off, size)
}

func (h *host) bpWrite(a, size, v uint32) {
	h.setWindow(a)
	off := a & 0x7fff
	if size == 4 {
		off |= 0x8000
	}
	h.setReg(fnBackplane, off, size, v)
}

// bpWriteBlock is bp_write: 64-byte pieces within a window, one extra word.
func (h *host) bpWriteBlock(a uint32, data []byte) {
	for len(data) > 0 {
		n := min(len(data), 64, int(0x8000-a&0x7fff))
		h.setWindow(a)
		buf := make([]uint32, (n+3)/4+1)
		for i := 0; i < n; i++ {
			buf[i/4] |= uint32(data[i]) << (8 * (i % 4))
		}
		h.xfer(true, fnBackplane, a&0x7fff, uint32(n), buf)
		a += uint32(n)
		data = data[n:]
	}
}

// initBus is the driver's initBus.
func (h *host) initBus() {
	h.t.Helper()
	h.c.Power(true)
	h.word32, h.window = false, 0
	if got := h.reg(fnBus, regTestRO, 4); got != testPattern {
		h.t.Fatalf("swapped test register: %#x", got)
	}
	h.setReg(fnBus, regTestRW, 4, 0x12345678)
	if got := h.reg(fnBus, regTestRW, 4); got != 0x12345678 {
		h.t.Fatalf("swapped RW test register: %#x", got)
	}
	h.setReg(fnBus, regBusControl, 4, 0x000304B1)
	h.word32 = true
	if got := h.reg(fnBus, regBusControl, 1); got != 0xB1 {
		h.t.Fatalf("bus control read back %#x", got)
	}
	h.setReg(fnBus, regRespDelayF1, 1, 4)
}

var (
	testFirmware = append(append(make([]byte, 1000), "junk Version: 1.2.3 (test) FWID 01-abc\x00"...), make([]byte, 61)...)
	testNVRAM    = []byte("NVRAMRev=$Rev$\x00boardtype=0x0887\x00\x00\x00\x00\x00") // 36 bytes, as the driver aligns it
	testCLM      = append([]byte("BLOB"), make([]byte, 1500)...)
)

// bootFirmware is the rest of Init up to F2 ready: clocks, cores, uploads.
func (h *host) bootFirmware() {
	h.t.Helper()
	h.setReg(fnBackplane, f1Base+f1ClockCSR, 1, csrALPAvailRq)
	if h.reg(fnBackplane, f1Base+f1ClockCSR, 1)&csrALPAvail == 0 {
		h.t.Fatal("no ALP")
	}
	h.setReg(fnBackplane, f1Base+f1ClockCSR, 1, 0)
	if id := h.bpRead(chipcommonBase, 2); id != 0xA9AF {
		h.t.Fatalf("chip id %#x", id)
	}
	h.coreReset(armBase, true)
	h.coreReset(socsramBase, false)
	h.bpWrite(socsramBankIdx, 4, 3)
	h.bpWrite(socsramBankPDA, 4, 0)
	h.bpWriteBlock(0, testFirmware)
	nv := len(testNVRAM)
	h.bpWriteBlock(ramSize-4-uint32(nv), testNVRAM)
	words := uint32(nv / 4)
	h.bpWrite(ramSize-4, 4, ^words<<16|words)
	h.coreReset(armBase, false)
	if !h.coreIsUp(armBase) {
		h.t.Fatal("ARM core not up")
	}
	if h.reg(fnBackplane, f1Base+f1ClockCSR, 1)&csrHTAvail == 0 {
		h.t.Fatal("no HT after the firmware started")
	}
	h.setReg(fnBus, regIntEnable, 2, irqF2PacketAvail)
	h.setReg(fnBackplane, f1Base+f1Watermark, 1, 32)
	if h.reg(fnBus, regStatus, 4)&stF2RxReady == 0 {
		h.t.Fatal("F2 not ready")
	}
}

// coreReset is core_disable then core_reset (the halt flag only for the
// "disable" half here: a core kept in reset by it is what Init does to the
// ARM before the uploads).
func (h *host) coreReset(base uint32, disableOnly bool) {
	w := base + wrapperOffset
	if h.bpRead(w+aiResetCtrl, 1)&aircReset == 0 {
		h.bpWrite(w+aiIOCtrl, 1, 0)
		h.bpWrite(w+aiResetCtrl, 1, aircReset)
		if h.bpRead(w+aiResetCtrl, 1)&aircReset == 0 {
			h.t.Fatal("core disable failed")
		}
	}
	if disableOnly {
		return
	}
	h.bpWrite(w+aiIOCtrl, 1, sicfFGC|sicfClockEn)
	h.bpWrite(w+aiResetCtrl, 1, 0)
	h.bpWrite(w+aiIOCtrl, 1, sicfClockEn)
}

func (h *host) coreIsUp(base uint32) bool {
	w := base + wrapperOffset
	return h.bpRead(w+aiIOCtrl, 1)&(sicfFGC|sicfClockEn) == sicfClockEn && h.bpRead(w+aiResetCtrl, 1)&aircReset == 0
}

// sendF2 writes an SDPCM frame (wlan_write).
func (h *host) sendF2(ch byte, hlen int, payload []byte) {
	h.t.Helper()
	n := hlen + len(payload)
	f := make([]byte, (n+3)&^3)
	binary.LittleEndian.PutUint16(f[0:], uint16(n))
	binary.LittleEndian.PutUint16(f[2:], ^uint16(n))
	f[4], f[5], f[7] = h.seq, ch, byte(hlen)
	h.seq++
	copy(f[hlen:], payload)
	buf := make([]uint32, len(f)/4)
	for i := range buf {
		buf[i] = binary.LittleEndian.Uint32(f[4*i:])
	}
	h.xfer(true, fnWLAN, 0, uint32(n), buf)
}

// recvF2 reads the packet the status word announces (f2PacketAvail and
// wlan_read), or nil.
func (h *host) recvF2() []byte {
	h.t.Helper()
	st := h.c.LastStatus()
	if st&stF2PktAvailable == 0 {
		if h.reg(fnBus, regInterrupt, 2)&irqF2PacketAvail == 0 {
			return nil
		}
		st = h.c.LastStatus()
	}
	n := int(st >> stF2PktLenShift & stF2PktLenMask)
	buf := make([]uint32, (n+3)/4)
	h.xfer(false, fnWLAN, 0, uint32(n), buf)
	out := make([]byte, 4*len(buf))
	for i, w := range buf {
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	out = out[:n]
	if got := binary.LittleEndian.Uint16(out); int(got) != n || binary.LittleEndian.Uint16(out[2:]) != ^got {
		h.t.Fatalf("F2 packet of %d bytes with size %d, complement %#x", n, got, binary.LittleEndian.Uint16(out[2:]))
	}
	return out
}

type reply struct {
	cmd, flags uint32
	status     int32
	data       []byte
}

// ioctl sends one and reads packets until its reply; events met on the way
// are kept in evs.
func (h *host) ioctl(set bool, cmd uint32, data []byte) (reply, []testEvent) {
	h.t.Helper()
	h.id++
	var hdr [cdcHeaderLen]byte
	flags := uint32(h.id) << cdcIDShift
	if set {
		flags |= cdcFlagSet
	}
	binary.LittleEndian.PutUint32(hdr[0:], cmd)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], flags)
	h.sendF2(chanControl, sdpcmHeaderLen, append(hdr[:], data...))
	var evs []testEvent
	for range 100 {
		p := h.recvF2()
		if p == nil {
			h.t.Fatalf("no reply to ioctl %d", cmd)
		}
		switch p[5] & 0xf {
		case chanControl:
			b := p[p[7]:]
			r := reply{cmd: binary.LittleEndian.Uint32(b), flags: binary.LittleEndian.Uint32(b[8:]), status: int32(binary.LittleEndian.Uint32(b[12:]))}
			r.data = b[cdcHeaderLen : cdcHeaderLen+int(binary.LittleEndian.Uint32(b[4:]))]
			if r.cmd != cmd || r.flags != flags {
				h.t.Fatalf("reply to ioctl %d id %d: cmd %d flags %#x", cmd, h.id, r.cmd, r.flags)
			}
			return r, evs
		case chanEvent:
			evs = append(evs, h.decodeEvent(p))
		}
	}
	h.t.Fatal("no reply")
	return reply{}, nil
}

func (h *host) iovar(set bool, name string, val []byte) (reply, []testEvent) {
	return h.ioctl(set, map[bool]uint32{true: wlcSetVar, false: wlcGetVar}[set], append(append([]byte(name), 0), val...))
}

func u32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}

type testEvent struct {
	typ, status, reason, authType uint32
	flags                         uint16
	addr                          [6]byte
	data                          []byte
}

// decodeEvent checks an event frame as the driver's rxEvent and
// whd.DecodeEventPacket do, and returns its message.
func (h *host) decodeEvent(p []byte) testEvent {
	h.t.Helper()
	b := p[p[7]:]
	if b[0]>>4 != 2 {
		h.t.Fatalf("event BDC flags %#x", b[0])
	}
	b = b[4+4*int(b[3]):]
	if len(b) < 72 {
		h.t.Fatalf("event of %d bytes after its BDC header", len(b))
	}
	be := binary.BigEndian
	switch {
	case be.Uint16(b[12:]) != 0x886c:
		h.t.Fatalf("event ether type %#x", be.Uint16(b[12:]))
	case be.Uint16(b[14:]) != 32769 || be.Uint16(b[22:]) != 1 || string(b[19:22]) != "\x00\x10\x18":
		h.t.Fatalf("event header % x", b[14:24])
	}
	m := b[24:]
	e := testEvent{flags: be.Uint16(m[2:]), typ: be.Uint32(m[4:]), status: be.Uint32(m[8:]), reason: be.Uint32(m[12:]), authType: be.Uint32(m[16:])}
	copy(e.addr[:], m[24:30])
	e.data = m[48 : 48+be.Uint32(m[20:])]
	return e
}

// drain reads every packet waiting; events are returned, data frames too.
func (h *host) drain() (evs []testEvent, data [][]byte) {
	h.t.Helper()
	for {
		p := h.recvF2()
		if p == nil {
			return evs, data
		}
		switch p[5] & 0xf {
		case chanEvent:
			evs = append(evs, h.decodeEvent(p))
		case chanData:
			b := p[p[7]:]
			data = append(data, b[4+4*int(b[3]):])
		}
	}
}

// up brings the chip to WLC_UP as initControl does (the part that matters).
func (h *host) up() {
	h.t.Helper()
	h.initBus()
	h.bootFirmware()
	for i := 0; i < len(testCLM); i += 1024 {
		chunk := testCLM[i:min(i+1024, len(testCLM))]
		flags := uint16(dlVersion)
		if i == 0 {
			flags |= dlBegin
		}
		if i+len(chunk) == len(testCLM) {
			flags |= dlEnd
		}
		dl := binary.LittleEndian.AppendUint16(nil, flags)
		dl = binary.LittleEndian.AppendUint16(dl, dlTypeCLM)
		dl = binary.LittleEndian.AppendUint32(dl, uint32(len(chunk)))
		dl = append(dl, 0, 0, 0, 0)
		if r, _ := h.iovar(true, "clmload", append(dl, chunk...)); r.status != 0 {
			h.t.Fatalf("clmload: status %d", r.status)
		}
	}
	if r, _ := h.iovar(false, "clmload_status", make([]byte, 4)); r.status != 0 || binary.LittleEndian.Uint32(r.data) != 0 {
		h.t.Fatalf("clmload_status: %d, % x", r.status, r.data)
	}
	if r, _ := h.ioctl(true, wlcUp, nil); r.status != 0 {
		h.t.Fatalf("WLC_UP: %d", r.status)
	}
}

// joinWPA2 is Join with a passphrase up to the SET_SSID reply.
func (h *host) joinWPA2(ssid, pass string) []testEvent {
	h.t.Helper()
	h.ioctl(true, wlcSetWSec, u32(4))
	h.iovar(true, "bsscfg:sup_wpa", u32(0, 1))
	pmk := binary.LittleEndian.AppendUint16(nil, uint16(len(pass)))
	pmk = binary.LittleEndian.AppendUint16(pmk, 1)
	pmk = append(pmk, make([]byte, 64)...)
	copy(pmk[4:], pass)
	h.ioctl(true, wlcSetWSecPMK, pmk)
	h.ioctl(true, wlcSetInfra, u32(1))
	h.ioctl(true, wlcSetAuth, u32(0))
	h.iovar(true, "mfp", u32(1))
	h.ioctl(true, wlcSetWPAAuth, u32(0x80))
	return h.setSSID(ssid)
}

func (h *host) setSSID(ssid string) []testEvent {
	h.t.Helper()
	info := u32(uint32(len(ssid)))
	info = append(info, make([]byte, 32)...)
	copy(info[4:], ssid)
	r, evs := h.ioctl(true, wlcSetSSID, info)
	if r.status != 0 {
		h.t.Fatalf("SET_SSID: status %d", r.status)
	}
	more, _ := h.drain()
	return append(evs, more...)
}

// sendEth is tx's framing of an Ethernet frame: SDPCM header, 2 bytes of
// padding, BDC header (with bdcOffsetWords words of options), the frame.
func (h *host) sendEth(eth []byte, bdcOffsetWords int) {
	h.t.Helper()
	bdc := []byte{bdcVersion2, 0, 0, byte(bdcOffsetWords)}
	bdc = append(bdc, make([]byte, 4*bdcOffsetWords)...)
	h.sendF2(chanData, sdpcmHeaderLen+dataPad, append(bdc, eth...))
}
