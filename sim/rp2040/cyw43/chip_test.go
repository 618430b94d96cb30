package cyw43

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestOffAnswersNothing(t *testing.T) {
	h := newHost(t)
	if p := h.c.Phase(); p != PhaseOff {
		t.Fatalf("a new chip is %q, want off", p)
	}
	buf := []uint32{0xdeadbeef}
	if err := h.c.CmdRead(swap16(cmdWord(false, fnBus, regTestRO, 4)), buf); err != nil || buf[0] != 0 {
		t.Errorf("read while off: %#x, %v", buf[0], err)
	}
	if h.c.LastStatus() != 0 {
		t.Errorf("status while off: %#x", h.c.LastStatus())
	}
	if h.c.Receive(make([]byte, 60)) {
		t.Errorf("Receive took a frame while off")
	}
}

// The bus starts in 16-bit mode: the driver's first reads are swapped, a
// plain 32-bit read sees the halves exchanged; bus control switches it.
func TestBusModes(t *testing.T) {
	h := newHost(t)
	h.c.Power(true)
	if p := h.c.Phase(); p != PhaseBus {
		t.Fatalf("phase %q after power on", p)
	}
	buf := make([]uint32, 1)
	h.c.CmdRead(cmdWord(false, fnBus, regTestRO, 4), buf) // unswapped: garbage for the host
	if buf[0] == testPattern {
		t.Errorf("an unswapped read in 16-bit mode gave the test pattern")
	}
	if got := h.reg(fnBus, regTestRO, 4); got != testPattern {
		t.Fatalf("swapped read of the test register: %#x", got)
	}
	// The status word is half-swapped too; nothing is ready yet.
	if st := swap16(h.c.LastStatus()); st&stF2RxReady != 0 {
		t.Errorf("F2 ready before any firmware: %#x", st)
	}
	h.setReg(fnBus, regTestRW, 4, 0xCAFEF00D)
	if got := h.reg(fnBus, regTestRW, 4); got != 0xCAFEF00D {
		t.Errorf("RW test register: %#x", got)
	}
	if got := h.reg(fnBus, regBusControl, 4); got&0xff != 0x30 || got>>16&0xff != statusEnable {
		t.Errorf("bus control reset value %#x", got)
	}
	h.setReg(fnBus, regBusControl, 4, 0x000304B1)
	h.word32 = true
	if got := h.reg(fnBus, regBusControl, 1); got != 0xB1 {
		t.Errorf("bus control: %#x", got)
	}
	if got := h.reg(fnBus, regTestRO, 4); got != testPattern {
		t.Errorf("32-bit read of the test register: %#x", got)
	}
	if got := h.reg(fnBus, regTestRO+2, 2); got != testPattern>>16 {
		t.Errorf("16-bit read of the test register's upper half: %#x", got)
	}
	// Read-only registers stay.
	h.setReg(fnBus, regTestRO, 4, 0)
	if got := h.reg(fnBus, regTestRO, 4); got != testPattern {
		t.Errorf("test register written: %#x", got)
	}
	// Interrupt register: write 1 to clear; an F2 read with nothing
	// queued sets "data unavailable".
	h.xfer(false, fnWLAN, 0, 64, make([]uint32, 16))
	if st := h.c.LastStatus(); st&stDataNotAvailable == 0 {
		t.Errorf("status after an empty F2 read: %#x", st)
	}
	if irq := h.reg(fnBus, regInterrupt, 2); irq&irqDataUnavailable == 0 {
		t.Errorf("interrupts after an empty F2 read: %#x", irq)
	}
	h.setReg(fnBus, regInterrupt, 2, irqDataUnavailable)
	if irq := h.reg(fnBus, regInterrupt, 2); irq != 0 {
		t.Errorf("interrupts after clearing: %#x", irq)
	}
	if p := h.c.Phase(); p != PhaseBus {
		t.Errorf("phase %q before any backplane access", p)
	}
	// Status disabled: no status word.
	h.setReg(fnBus, regStatusEnable, 1, 0)
	h.reg(fnBus, regTestRO, 4)
	if h.c.LastStatus() != 0 {
		t.Errorf("status word with status disabled: %#x", h.c.LastStatus())
	}
}

func TestCommandErrors(t *testing.T) {
	h := newHost(t)
	h.initBus()
	if err := h.c.CmdRead(cmdWord(true, fnBus, regTestRW, 4), make([]uint32, 1)); err == nil {
		t.Errorf("CmdRead took a write command")
	}
	if err := h.c.CmdWrite(cmdWord(false, fnBus, regTestRW, 4), make([]uint32, 1)); err == nil {
		t.Errorf("CmdWrite took a read command")
	}
	if err := h.c.CmdWrite(cmdWord(true, fnBackplane, 0, 64), make([]uint32, 4)); err == nil {
		t.Errorf("CmdWrite took 64 bytes in 4 words")
	}
	if d := decode(cmdWord(true, fnWLAN, 0, 0)); d.n != 2048 || d.fn != fnWLAN || !d.write || !d.inc {
		t.Errorf("decode: %+v", d)
	}
}

// F1 reads start with the response delay's padding (the driver's readn
// skips a word), 4 bytes once the host set it.
func TestResponseDelay(t *testing.T) {
	h := newHost(t)
	h.initBus()
	h.setReg(fnBackplane, f1Base+f1Watermark, 1, 0x5a)
	buf := make([]uint32, 2)
	h.xfer(false, fnBackplane, f1Base+f1Watermark, 1, buf)
	if buf[0] != 0 || buf[1] != 0x5a {
		t.Errorf("F1 read with a 4-byte delay: % x", buf)
	}
	h.setReg(fnBus, regRespDelayF1, 1, 0)
	h.xfer(false, fnBackplane, f1Base+f1Watermark, 1, buf[:1])
	if buf[0] != 0x5a {
		t.Errorf("F1 read without delay: %#x", buf[0])
	}
	// F0 reads have none unless "response delay for all" is set.
	h.setReg(fnBus, regRespDelayF0, 1, 4)
	if got := h.reg(fnBus, regTestRO, 4); got != testPattern {
		t.Errorf("F0 read with only F0's delay set: %#x", got)
	}
	h.setReg(fnBus, regStatusEnable, 1, statusEnable|statusRespAll)
	h.xfer(false, fnBus, regTestRO, 4, buf)
	if buf[0] != 0 || buf[1] != testPattern {
		t.Errorf("F0 read with delay for all: % x", buf)
	}
}

func TestBackplaneBringUp(t *testing.T) {
	h := newHost(t)
	h.initBus()
	// Clocks: ALP on request, HT not until asked or the firmware runs.
	if v := h.reg(fnBackplane, f1Base+f1ClockCSR, 1); v != 0 {
		t.Errorf("clock CSR at power on: %#x", v)
	}
	if p := h.c.Phase(); p != PhaseBackplane {
		t.Errorf("phase %q after a backplane access", p)
	}
	h.setReg(fnBackplane, f1Base+f1ClockCSR, 1, csrALPAvailRq|csrALPAvail|csrHTAvail)
	if v := h.reg(fnBackplane, f1Base+f1ClockCSR, 1); v != csrALPAvailRq|csrALPAvail {
		t.Errorf("clock CSR after the ALP request: %#x", v)
	}
	// The window and the chip id.
	if id := h.bpRead(chipcommonBase, 4); id&0xffff != 0xA9AF || id>>28 != 1 {
		t.Errorf("chip id register %#x", id)
	}
	if h.c.s.windowBase() != chipcommonBase {
		t.Errorf("window %#x", h.c.s.windowBase())
	}
	// Cores: the ARM runs its ROM at power on; disable puts it in reset.
	if !h.coreIsUp(armBase) || !h.coreIsUp(socsramBase) {
		t.Errorf("cores not up at power on")
	}
	h.coreReset(armBase, true)
	if h.coreIsUp(armBase) {
		t.Errorf("ARM up after core_disable")
	}
	// Starting the ARM without firmware runs nothing.
	h.coreReset(armBase, false)
	if h.c.s.fwRunning || !h.logged("no firmware") {
		t.Errorf("firmware running without an image")
	}
	// The upload, then the start.
	h.bootFirmware()
	if p := h.c.Phase(); p != PhaseFirmware {
		t.Errorf("phase %q after the firmware started", p)
	}
	st := h.c.Stats()
	if st.FirmwareBytes != (len(testFirmware)+3)&^3 || st.NVRAMBytes != len(testNVRAM) || st.NVRAMWords != len(testNVRAM)/4 {
		t.Errorf("uploads: %d bytes of firmware, %d of NVRAM (%d words)", st.FirmwareBytes, st.NVRAMBytes, st.NVRAMWords)
	}
	if st.FirmwareVersion != "1.2.3 (test) FWID 01-abc" {
		t.Errorf("firmware version %q", st.FirmwareVersion)
	}
	if st.NVRAM != "NVRAMRev=$Rev$\x00boardtype=0x0887" {
		t.Errorf("NVRAM %q", st.NVRAM)
	}
	// The top of RAM reads back; the image does not.
	if v := h.bpRead(ramSize-4, 4); v&0xffff != uint32(len(testNVRAM)/4) {
		t.Errorf("NVRAM length word reads %#x", v)
	}
	if h.bpRead(1000, 4) != 0 {
		t.Errorf("the firmware image reads back")
	}
	if v := h.reg(fnBackplane, f1Base+f1ClockCSR, 1); v&(csrHTAvail|csrALPAvail) != csrHTAvail|csrALPAvail {
		t.Errorf("clock CSR with the firmware running: %#x", v)
	}
	if v := h.reg(fnBus, regF2Info, 2); v&3 != 3 || v>>2 != 2048 {
		t.Errorf("F2 info %#x", v)
	}
	// Other registers keep what is written; the sleep CSR answers KSO with
	// "device on".
	h.bpWrite(sdioBaseForTest+0x24, 4, 0xf0)
	if v := h.bpRead(sdioBaseForTest+0x24, 4); v != 0xf0 {
		t.Errorf("SDIO host mask reads %#x", v)
	}
	h.setReg(fnBackplane, f1Base+f1SleepCSR, 1, sleepKeepSDIOOn)
	if v := h.reg(fnBackplane, f1Base+f1SleepCSR, 1); v != sleepKeepSDIOOn|sleepDeviceOn {
		t.Errorf("sleep CSR %#x", v)
	}
	// Putting the ARM back in reset stops the firmware.
	h.coreReset(armBase, true)
	if h.c.s.fwRunning || h.c.Phase() != PhaseBackplane {
		t.Errorf("firmware still running after the core's reset (phase %s)", h.c.Phase())
	}
}

const sdioBaseForTest = 0x18002000

// The LED through the chipcommon GPIO registers (the gpioout iovar drives
// the same pins).
func TestBackplaneGPIO(t *testing.T) {
	h := newHost(t)
	h.initBus()
	h.bpWrite(ccGPIOOut, 4, 1)
	if len(h.leds) != 0 {
		t.Errorf("LED changed with the pin not an output")
	}
	h.bpWrite(ccGPIOOutEn, 4, 1)
	h.bpWrite(ccGPIOOut, 4, 0)
	if !slices.Equal(h.leds, []bool{true, false}) {
		t.Errorf("LED %v", h.leds)
	}
}

func TestIoctls(t *testing.T) {
	h := newHost(t)
	h.up()
	st := h.c.Stats()
	if !st.CLMLoaded || st.CLMBytes != len(testCLM) || st.Ioctls["SET_VAR clmload"] != 2 {
		t.Errorf("CLM: %d bytes, loaded %v, %d chunks", st.CLMBytes, st.CLMLoaded, st.Ioctls["SET_VAR clmload"])
	}
	if p := h.c.Phase(); p != PhaseUp {
		t.Errorf("phase %q after WLC_UP", p)
	}
	// GET: the answer fills a buffer the request's length (get_iovar_n).
	r, _ := h.iovar(false, "cur_etheraddr", nil)
	if len(r.data) != len("cur_etheraddr")+1 || [6]byte(r.data[:6]) != testMAC {
		t.Errorf("cur_etheraddr: % x", r.data)
	}
	// A SET gets its data back; integer ioctls read back.
	r, _ = h.ioctl(true, wlcSetPM, u32(2))
	if r.status != 0 || !bytes.Equal(r.data, u32(2)) {
		t.Errorf("SET_PM reply: %d % x", r.status, r.data)
	}
	if r, _ = h.ioctl(false, wlcGetPM, make([]byte, 4)); binary.LittleEndian.Uint32(r.data) != 2 {
		t.Errorf("GET_PM: % x", r.data)
	}
	// bsscfg: iovars drop the BSS index.
	h.iovar(true, "bsscfg:sup_wpa_tmo", u32(0, 2500))
	if r, _ = h.iovar(false, "bsscfg:sup_wpa_tmo", u32(0)); r.status != 0 || binary.LittleEndian.Uint32(r.data) != 2500 {
		t.Errorf("bsscfg:sup_wpa_tmo: %d % x", r.status, r.data)
	}
	// Unknown ones succeed, with a log line.
	if r, _ = h.iovar(true, "frobnicate", u32(1)); r.status != 0 || !h.logged(`unknown iovar "frobnicate"`) {
		t.Errorf("unknown iovar: status %d", r.status)
	}
	if r, _ = h.ioctl(true, 999, u32(1)); r.status != 0 || !h.logged("unknown ioctl 999") {
		t.Errorf("unknown ioctl: status %d", r.status)
	}
	// Errors a chip gives: no BSSID when not associated, a short buffer.
	if r, _ = h.ioctl(false, wlcGetBSSID, make([]byte, 6)); r.status != bcmeNotAssociated {
		t.Errorf("GET_BSSID unassociated: status %d", r.status)
	}
	if r, _ = h.iovar(false, "ver", nil); r.status != bcmeBufTooShort {
		t.Errorf("ver into 4 bytes: status %d", r.status)
	}
	if r, _ = h.iovar(false, "ver", make([]byte, 100)); r.status != 0 || !strings.Contains(string(r.data), "1.2.3") {
		t.Errorf("ver: %d %q", r.status, r.data)
	}
	if r, _ = h.ioctl(false, wlcGetMagic, make([]byte, 4)); binary.LittleEndian.Uint32(r.data) != magic {
		t.Errorf("magic % x", r.data)
	}
	// The LED: gpioout's mask and value, on change only.
	h.iovar(true, "gpioout", u32(1, 1))
	h.iovar(true, "gpioout", u32(1, 1))
	h.iovar(true, "gpioout", u32(2, 0))
	h.iovar(true, "gpioout", u32(1, 0))
	if !slices.Equal(h.leds, []bool{true, false}) {
		t.Errorf("LED %v", h.leds)
	}
	// The MAC can be set.
	h.iovar(true, "cur_etheraddr", []byte{2, 2, 2, 2, 2, 2})
	if r, _ = h.iovar(false, "cur_etheraddr", nil); [6]byte(r.data[:6]) != [6]byte{2, 2, 2, 2, 2, 2} {
		t.Errorf("cur_etheraddr after set: % x", r.data)
	}
	if st := h.c.Stats(); st.Ioctls["WLC_SET_PM"] != 1 || st.Ioctls["GET_VAR cur_etheraddr"] != 2 || st.Ioctls["SET_VAR bsscfg:sup_wpa_tmo"] != 1 {
		t.Errorf("ioctl counts %v", st.Ioctls)
	}
}

func TestCLMErrors(t *testing.T) {
	h := newHost(t)
	h.initBus()
	h.bootFirmware()
	dl := func(flags uint16, chunk []byte) []byte {
		b := binary.LittleEndian.AppendUint16(nil, flags)
		b = binary.LittleEndian.AppendUint16(b, dlTypeCLM)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(chunk)))
		return append(append(b, 0, 0, 0, 0), chunk...)
	}
	status := func() uint32 {
		r, _ := h.iovar(false, "clmload_status", make([]byte, 4))
		return binary.LittleEndian.Uint32(r.data)
	}
	if r, _ := h.iovar(true, "clmload", dl(dlVersion, []byte("1234"))); r.status == 0 {
		t.Errorf("a chunk without a begun download: accepted")
	}
	h.iovar(true, "clmload", dl(dlVersion|dlBegin|dlEnd, []byte("NOPE")))
	if status() == 0 {
		t.Errorf("a blob without its magic: status 0")
	}
	h.iovar(true, "clmload", dl(dlVersion|dlBegin, []byte("BLOB")))
	if status() == 0 {
		t.Errorf("an unfinished download: status 0")
	}
	h.iovar(true, "clmload", dl(dlVersion|dlEnd, []byte("more")))
	if status() != 0 || h.c.Stats().CLMBytes != 8 {
		t.Errorf("a finished download: status %d, %d bytes", status(), h.c.Stats().CLMBytes)
	}
}

func eventNamesOf(evs []testEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s/%d/%d/%d", eventNames[e.typ], e.status, e.reason, e.flags))
	}
	return out
}

func TestJoin(t *testing.T) {
	t.Run("wpa2", func(t *testing.T) {
		h := newHost(t)
		h.up()
		evs := h.joinWPA2("picosim", "picosim-lan")
		want := []string{"AUTH/0/0/0", "ASSOC/0/0/0", "LINK/0/0/1", "JOIN/0/0/0", "SET_SSID/0/0/0", "PSK_SUP/6/0/0"}
		if got := eventNamesOf(evs); !slices.Equal(got, want) {
			t.Errorf("events %v, want %v", got, want)
		}
		if !slices.Equal(h.joins, []string{"picosim/picosim-lan"}) {
			t.Errorf("Config.Join asked %v", h.joins)
		}
		bssid := bssidFor("picosim")
		if evs[0].addr != bssid || string(evs[4].data) != "picosim" {
			t.Errorf("event address %x, SET_SSID data %q", evs[0].addr, evs[4].data)
		}
		if h.c.Phase() != PhaseJoined {
			t.Errorf("phase %q", h.c.Phase())
		}
		if r, _ := h.ioctl(false, wlcGetBSSID, make([]byte, 6)); r.status != 0 || [6]byte(r.data) != bssid {
			t.Errorf("GET_BSSID: %d % x", r.status, r.data)
		}
		if r, _ := h.ioctl(false, wlcGetSSID, make([]byte, 36)); binary.LittleEndian.Uint32(r.data) != 7 || string(r.data[4:11]) != "picosim" {
			t.Errorf("GET_SSID % x", r.data)
		}
		// Leaving: Config.Leave and the link going down.
		_, evs = h.ioctl(true, wlcDisassoc, nil)
		more, _ := h.drain()
		evs = append(evs, more...)
		if got := eventNamesOf(evs); !slices.Equal(got, []string{"DISASSOC/0/8/0", "LINK/0/2/0"}) {
			t.Errorf("leave events %v", got)
		}
		if h.leaves != 1 || h.c.Phase() != PhaseUp {
			t.Errorf("%d leaves, phase %s", h.leaves, h.c.Phase())
		}
	})
	t.Run("open", func(t *testing.T) {
		h := newHost(t)
		h.up()
		h.ioctl(true, wlcSetWSec, u32(0))
		h.ioctl(true, wlcSetWPAAuth, u32(0))
		evs := h.setSSID("cafe")
		if got := eventNamesOf(evs); !slices.Equal(got, []string{"AUTH/0/0/0", "ASSOC/0/0/0", "LINK/0/0/1", "JOIN/0/0/0", "SET_SSID/0/0/0"}) {
			t.Errorf("events %v", got)
		}
		if !slices.Equal(h.joins, []string{"cafe/"}) {
			t.Errorf("Config.Join asked %v", h.joins)
		}
	})
	t.Run("wpa3 through the join iovar", func(t *testing.T) {
		h := newHost(t)
		h.up()
		sae := binary.LittleEndian.AppendUint16(nil, 6)
		sae = append(sae, make([]byte, 128)...)
		copy(sae[2:], "s3cret")
		h.iovar(true, "sae_password", sae)
		h.ioctl(true, wlcSetAuth, u32(authSAE))
		h.ioctl(true, wlcSetWPAAuth, u32(wpaAuthSAE))
		params := append(u32(3), make([]byte, 32+60)...)
		copy(params[4:], "lab")
		r, evs := h.iovar(true, "join", params)
		more, _ := h.drain()
		evs = append(evs, more...)
		if r.status != 0 || !slices.Equal(h.joins, []string{"lab/s3cret"}) {
			t.Fatalf("join iovar: status %d, Config.Join asked %v", r.status, h.joins)
		}
		if len(evs) != 6 || evs[0].authType != authSAE || evs[5].typ != evPSK_SUP {
			t.Errorf("events %v (auth type %d)", eventNamesOf(evs), evs[0].authType)
		}
	})
	t.Run("refused", func(t *testing.T) {
		h := newHost(t)
		h.joinOK = false
		h.up()
		evs := h.joinWPA2("picosim", "nope")
		if got := eventNamesOf(evs); !slices.Equal(got, []string{"SET_SSID/3/0/0"}) {
			t.Errorf("events %v", got)
		}
		if h.c.Phase() != PhaseUp {
			t.Errorf("phase %q", h.c.Phase())
		}
	})
	t.Run("not up", func(t *testing.T) {
		h := newHost(t)
		h.initBus()
		h.bootFirmware()
		info := append(u32(3), make([]byte, 32)...)
		if r, _ := h.ioctl(true, wlcSetSSID, info); r.status != bcmeNotUp || len(h.joins) != 0 {
			t.Errorf("SET_SSID before WLC_UP: status %d, joins %v", r.status, h.joins)
		}
	})
	t.Run("masked events", func(t *testing.T) {
		h := newHost(t)
		h.up()
		mask := make([]byte, evMaskLen)
		mask[evSET_SSID/8] |= 1 << (evSET_SSID % 8)
		h.iovar(true, "bsscfg:event_msgs", append(u32(0), mask...))
		evs := h.joinWPA2("picosim", "picosim-lan")
		if got := eventNamesOf(evs); !slices.Equal(got, []string{"SET_SSID/0/0/0"}) {
			t.Errorf("events with only SET_SSID asked for: %v", got)
		}
	})
	t.Run("rejoin", func(t *testing.T) {
		h := newHost(t)
		h.up()
		h.joinWPA2("picosim", "picosim-lan")
		evs := h.setSSID("picosim")
		if got := eventNamesOf(evs); len(got) != 8 || got[0] != "DISASSOC/0/8/0" || got[1] != "LINK/0/2/0" || got[7] != "PSK_SUP/6/0/0" {
			t.Errorf("events of a join while joined: %v", got)
		}
		if h.leaves != 1 || len(h.joins) != 2 {
			t.Errorf("%d leaves, %d joins", h.leaves, len(h.joins))
		}
	})
}

func TestLinkLost(t *testing.T) {
	h := newHost(t)
	h.up()
	h.c.LinkLost() // not joined: nothing
	if evs, _ := h.drain(); len(evs) != 0 {
		t.Errorf("LinkLost while not joined raised %v", eventNamesOf(evs))
	}
	h.joinWPA2("picosim", "picosim-lan")
	h.c.LinkLost()
	evs, _ := h.drain()
	if got := eventNamesOf(evs); !slices.Equal(got, []string{"LINK/0/1/0"}) {
		t.Errorf("LinkLost events %v", got)
	}
	if h.c.Phase() != PhaseUp || h.leaves != 0 {
		t.Errorf("after LinkLost: phase %s, %d leaves", h.c.Phase(), h.leaves)
	}
	if h.c.Receive(testEth(testMAC, 60)) {
		t.Errorf("Receive took a frame after the link was lost")
	}
}

func testEth(dst [6]byte, payload int) []byte {
	f := append(dst[:], 2, 0, 0, 0, 0, 9, 0x08, 0x00)
	for i := range payload {
		f = append(f, byte(i))
	}
	return f
}

func TestFrames(t *testing.T) {
	h := newHost(t)
	h.up()
	// Not joined: the host's frames go nowhere.
	h.sendEth(testEth(testMAC, 50), 0)
	if len(h.sent) != 0 || h.c.Stats().TxDropped != 1 {
		t.Errorf("a frame sent while not joined reached the LAN")
	}
	h.joinWPA2("picosim", "picosim-lan")
	out := testEth([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 300)
	h.sendEth(out, 0)
	h.sendEth(out[:100], 2) // with BDC options the chip skips
	if len(h.sent) != 2 || !bytes.Equal(h.sent[0], out) || !bytes.Equal(h.sent[1], out[:100]) {
		t.Fatalf("Config.Send got %d frames", len(h.sent))
	}
	// In: status and interrupt announce it with its length.
	in := testEth(testMAC, 77)
	if !h.c.Receive(in) {
		t.Fatal("Receive refused")
	}
	if irq := h.reg(fnBus, regInterrupt, 2); irq&irqF2PacketAvail == 0 {
		t.Errorf("interrupts %#x with a frame waiting", irq)
	}
	st := h.c.LastStatus()
	if st&stF2PktAvailable == 0 || int(st>>stF2PktLenShift&stF2PktLenMask) != 18+len(in) {
		t.Errorf("status %#x for a frame of %d bytes", st, len(in))
	}
	_, data := h.drain()
	if len(data) != 1 || !bytes.Equal(data[0], in) {
		t.Fatalf("the host read %d frames", len(data))
	}
	if irq := h.reg(fnBus, regInterrupt, 2); irq&irqF2PacketAvail != 0 {
		t.Errorf("interrupts %#x with nothing waiting", irq)
	}
	// The address filter.
	for _, tc := range []struct {
		dst  [6]byte
		pass bool
	}{
		{testMAC, true},
		{[6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true},
		{[6]byte{0x28, 0xcd, 0xc1, 9, 9, 9}, false},
		{[6]byte{0x01, 0x00, 0x5e, 0, 0, 0xfb}, false},
	} {
		h.c.Receive(testEth(tc.dst, 40))
		_, data := h.drain()
		if (len(data) == 1) != tc.pass {
			t.Errorf("frame to %x: %d delivered", tc.dst, len(data))
		}
	}
	h.iovar(true, "mcast_list", append(u32(1), 0x01, 0x00, 0x5e, 0, 0, 0xfb))
	h.c.Receive(testEth([6]byte{0x01, 0x00, 0x5e, 0, 0, 0xfb}, 40))
	if _, data := h.drain(); len(data) != 1 {
		t.Errorf("frame to a registered group not delivered")
	}
	// The queue's bound, and frames too large for an F2 packet.
	n := 0
	for i := range 40 {
		if h.c.Receive(testEth(testMAC, i)) {
			n++
		}
	}
	if n != maxDataQueue {
		t.Errorf("Receive took %d of 40", n)
	}
	_, data = h.drain()
	if len(data) != maxDataQueue || len(data[31]) != 14+31 {
		t.Errorf("the host read %d frames", len(data))
	}
	if h.c.Receive(testEth(testMAC, 2047)) {
		t.Errorf("Receive took a frame larger than an F2 packet")
	}
	if h.c.Receive(testEth(testMAC, 2029-14)) != true {
		t.Errorf("Receive refused the largest frame an F2 packet holds")
	}
	st2 := h.c.Stats()
	if st2.RxFiltered != 2 || st2.TxFrames != 2 {
		t.Errorf("stats %+v", st2)
	}
}

// Credit: each frame to the host lets it send 8 more; a host that has used
// its credit with nothing to read gets a frame carrying more.
func TestCredit(t *testing.T) {
	h := newHost(t)
	h.up()
	h.joinWPA2("picosim", "picosim-lan")
	// The last frame read gave credit up to host seq + 8.
	granted := h.c.s.granted
	if granted != h.seq+creditWindow {
		t.Fatalf("credit %d for a host at %d", granted, h.seq)
	}
	for h.seq != granted {
		h.sendEth(testEth(testMAC, 20), 0)
	}
	if h.c.Stats().CreditFrames != 1 {
		t.Fatalf("no credit frame when the host ran out")
	}
	p := h.recvF2()
	if p == nil || p[5]&0xf != chanEvent || h.decodeEvent(p).typ != evFIFO_CREDIT_MAP || p[9] != h.seq+creditWindow {
		t.Fatalf("credit frame % x", p)
	}
	if evs := h.c.Stats().Events; slices.ContainsFunc(evs, func(e string) bool { return strings.HasPrefix(e, "FIFO") }) {
		t.Errorf("the credit frame is listed among the events: %v", evs)
	}
}

func TestPowerCycle(t *testing.T) {
	h := newHost(t)
	h.up()
	h.joinWPA2("picosim", "picosim-lan")
	h.iovar(true, "gpioout", u32(1, 1))
	h.c.Power(false)
	if h.leaves != 1 || !slices.Equal(h.leds, []bool{true, false}) || h.c.Phase() != PhaseOff {
		t.Errorf("power off: %d leaves, LED %v, phase %s", h.leaves, h.leds, h.c.Phase())
	}
	if st := h.c.Stats(); st.FirmwareBytes != 0 || st.CLMBytes != 0 {
		t.Errorf("counts survive power off: %+v", st)
	}
	// Back on: 16-bit mode, nothing uploaded, the bring-up again.
	h.up()
	if h.c.Phase() != PhaseUp {
		t.Errorf("phase %s after a second bring-up", h.c.Phase())
	}
	want := []string{"off", "bus", "backplane", "firmware", "up", "joined", "off", "bus", "backplane", "firmware", "up"}
	if got := h.c.Stats().Phases; !slices.Equal(got, want) {
		t.Errorf("phases %v", got)
	}
}

// Callbacks run without the chip's lock: one may call back into the chip
// (a LAN that loops a frame back, a radio that drops the link at once).
func TestCallbacksReenter(t *testing.T) {
	var c *Chip
	var joined bool
	c = New(Config{
		MAC:  testMAC,
		Send: func(f []byte) { c.Receive(f) },
		Join: func(string, []byte) bool { _ = c.Phase(); c.LinkLost(); joined = true; return true },
		Log: func(string) {
			if c != nil { // New logs its first phase before it returns
				_ = c.Stats()
			}
		},
	})
	h := &host{t: t, c: c}
	h.up()
	h.joinWPA2("picosim", "picosim-lan")
	if !joined || c.Phase() != PhaseJoined {
		t.Fatalf("phase %s", c.Phase())
	}
	h.sendEth(testEth(testMAC, 30), 0)
	if _, data := h.drain(); len(data) != 1 {
		t.Errorf("looped-back frame: %d", len(data))
	}
}

func TestExtents(t *testing.T) {
	var e extents
	e = e.add(0, 64)
	e = e.add(64, 128)
	e = e.add(200, 300)
	e = e.add(100, 150) // overlaps the first
	e = e.add(10, 20)
	if len(e) != 2 || e[0] != (extent{0, 150}) || e[1] != (extent{200, 300}) {
		t.Fatalf("extents %v", e)
	}
	if n := e.covered(100, 250); n != 100 {
		t.Errorf("covered %d", n)
	}
	e = e.add(150, 200)
	if len(e) != 1 || e[0] != (extent{0, 300}) {
		t.Errorf("extents %v", e)
	}
}

func TestVersionScan(t *testing.T) {
	var v versionScan
	img := []byte("xxxx version 1 Version: 7.95.62 (b03806e CY) CRC: ff\x00yyyy")
	for i := 0; i < len(img); i += 5 { // split everywhere
		v.feed(img[i:min(i+5, len(img))])
	}
	if v.found != "7.95.62 (b03806e CY) CRC: ff" {
		t.Errorf("found %q", v.found)
	}
}
