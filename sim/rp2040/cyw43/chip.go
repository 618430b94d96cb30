// Package cyw43 models the Infineon CYW43439 WiFi chip of the Raspberry Pi
// Pico W as its host driver sees it over gSPI, so that the real firmware
// image can run on an emulated RP2040 with its WiFi bridged to a simulated
// LAN.
//
// The model answers the driver the firmware is built with,
// github.com/soypat/cyw43439 v0.2.0, at the level of its transfers: each
// gSPI transaction is a 32-bit command word and its data words, which is
// the driver's own host-side bus interface (bus_native.go):
//
//	type cmdBus interface {
//		CmdRead(cmd uint32, buf []uint32) error
//		CmdWrite(cmd uint32, buf []uint32) error
//		LastStatus() uint32
//	}
//
// A *Chip satisfies it, so cyw43439.New(pwr, cs, chip) drives the model
// directly on the host (drivertest/), and the emulated board's runner turns
// the PIO's FIFO traffic into the same calls.
//
// What is modelled, function by function:
//
//   - gSPI (gspi.go): the command word; the 16-bit word-swapped mode the bus
//     starts in and the 32-bit mode after the host writes the bus control
//     register; the status word; function 0's registers (test patterns,
//     bus control, response delays, interrupt register and enable, status).
//   - Function 1, the backplane (backplane.go): the 32 KiB address window,
//     the chip clock CSR (ALP/HT request and available), the chip id, the
//     WLAN ARM and SOCSRAM core wrappers (reset and clock as the driver's
//     core_disable, core_reset and core_is_up expect), the firmware and
//     NVRAM uploads (counted, not kept), the chipcommon GPIO registers.
//   - Function 2, WLAN (sdpcm.go): SDPCM frames both ways (size and its
//     complement, sequence, channel, header length, credit), the control
//     channel (CDC ioctls), the event channel (BDC + Broadcom event frames)
//     and the data channel (BDC + Ethernet).
//   - The firmware's answers (ioctl.go, events.go): the ioctls and iovars
//     the driver sends at init and join, the CLM upload, the join and its
//     events, the LED (gpioout), the multicast filter.
//
// Callbacks in Config are called without the chip's lock held, in the order
// the chip raised them, before the call that raised them returns.
//
// Not modelled: Bluetooth (F3 reads give zeros, writes are ignored); the
// chip's timing (clocks, its boot, the join and F2 readiness are instant:
// the LAN's radio model decides when a join can succeed); the interrupt
// line (the driver polls); power states beyond storing their registers;
// big-endian bus mode and command/data error checks; RAM contents (the
// uploaded image is counted, not kept: reads give zeros but NVRAM's top);
// scans, the 4-way handshake and channels (a failed join is always "no
// networks", never a wrong password); AP mode (accepted, logged, the chip
// stays a station). A real chip refreshes the host's send credit with a
// bare 12-byte frame, which cyw43439 v0.2.0 rejects: the model sends the
// credit in a WLC_E_FIFO_CREDIT_MAP event instead. Unknown ioctls and
// iovars succeed with a log line.
package cyw43

import (
	"fmt"
	"sync"
)

// Config is what the board around the chip provides.
type Config struct {
	// MAC is the chip's station address (a Pico W's comes from the chip's
	// OTP): what cur_etheraddr answers and what frames are filtered on.
	MAC [6]byte
	// Join is asked when the host joins (SET_SSID / JOIN with the WPA
	// settings the driver sent); it reports whether the association
	// succeeded (the board's simulated radio decides). Called from within
	// CmdWrite; the chip then raises the events a real one does. Nil
	// joins every network.
	Join func(ssid string, passphrase []byte) bool
	// Leave: the host left (WLC_DISASSOC, WLC_DOWN, a join while joined,
	// the WLAN core stopped) or powered the chip off.
	Leave func()
	// Send gets each Ethernet frame the host transmitted while joined (a
	// copy the callee may keep).
	Send func(frame []byte)
	// LED gets the level of the chip's GPIO 0 (the Pico W's LED) when it
	// changes.
	LED func(on bool)
	// Log, optional, gets the phases, the uploads, the join and anything
	// the model does not know (a command, an iovar, a register).
	Log func(msg string)
}

// Phases, in the order a host brings the chip up.
const (
	PhaseOff       = "off"       // WL_REG_ON low
	PhaseBus       = "bus"       // powered: the host tests and configures the gSPI bus
	PhaseBackplane = "backplane" // the bus is in 32-bit mode and the host uses the backplane (clocks, cores, uploads)
	PhaseFirmware  = "firmware"  // the WLAN core runs the uploaded firmware: F2 is ready, ioctls are answered
	PhaseUp        = "up"        // the host sent WLC_UP
	PhaseJoined    = "joined"    // associated with the network
)

const (
	maxDataQueue = 32   // data frames waiting for the host (Receive's bound)
	maxHistory   = 64   // phases and events Stats keeps
	maxF2Packet  = 2047 // the status word's 11-bit packet length
)

// Chip is one CYW43439. Its methods are safe for concurrent use: the host's
// transfers come from one goroutine, Receive and LinkLost from the LAN's.
type Chip struct {
	cfg Config

	mu  sync.Mutex
	fx  []func() // callbacks raised under mu, run after it is released
	gen uint64   // power cycles: a join answered after one is void

	on    bool
	phase string
	hist  []string // phases, oldest first
	evs   []string // events raised, oldest first
	s     *state   // everything WL_REG_ON low loses; nil while off
}

// New returns a chip that is powered off.
func New(cfg Config) *Chip {
	c := &Chip{cfg: cfg}
	c.setPhase(PhaseOff)
	c.runFx(c.takeFx())
	return c
}

// Power drives WL_REG_ON. Turning it off loses all of the chip's state (the
// host then sees a bus that answers nothing); turning it on starts the chip
// afresh in the bus phase.
func (c *Chip) Power(on bool) {
	c.mu.Lock()
	if on != c.on {
		c.gen++
		if on {
			c.on = true
			c.s = newState(c.cfg.MAC)
			c.setPhase(PhaseBus)
		} else {
			if c.s.joined {
				c.addFx(c.cfg.Leave)
			}
			if c.s.led {
				c.led(false)
			}
			c.on = false
			c.s = nil
			c.setPhase(PhaseOff)
		}
	}
	fx := c.takeFx()
	c.mu.Unlock()
	c.runFx(fx)
}

// CmdRead performs one gSPI read transaction: cmd is the command word as the
// host shifted it out, buf receives the words the chip shifts back, as many
// as the host clocked in (a backplane read's first word is the response
// delay's padding, as the driver expects). The status word that follows on
// the wire is not in buf: LastStatus has it. In the 16-bit mode the bus
// starts in, cmd and the words are half-swapped as on the wire. While off,
// buf reads zeros. The error reports a command that is not a read.
func (c *Chip) CmdRead(cmd uint32, buf []uint32) error {
	c.mu.Lock()
	err := c.cmdRead(cmd, buf)
	fx := c.takeFx()
	c.mu.Unlock()
	c.runFx(fx)
	return err
}

// CmdWrite performs one gSPI write transaction of cmd and its data words
// (the command's length in bytes from the first of them, little endian;
// words past it are ignored). The error reports a command that is not a
// write or fewer words than its length.
func (c *Chip) CmdWrite(cmd uint32, buf []uint32) error {
	c.mu.Lock()
	err := c.cmdWrite(cmd, buf)
	fx := c.takeFx()
	c.mu.Unlock()
	c.runFx(fx)
	return err
}

// LastStatus is the status word the chip appended to the last transaction,
// the state after it (0 while powered off or with status disabled;
// half-swapped in 16-bit mode): bit 0 data not available, 1 underflow, 2
// overflow, 5 F2 ready for the host's packets (the firmware runs), 8 F2
// packet available, 19:9 that packet's length in bytes (cyw43439.Status).
func (c *Chip) LastStatus() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return 0
	}
	return c.s.lastStatus
}

// Receive gives the chip a frame from the LAN for the host: it is queued as a
// data-channel packet, which the host learns of from the status word (F2
// packet available, with its length) and the interrupt register. Frames
// for another station (unicast to another MAC, multicast not in the
// host's mcast_list) are dropped as a real chip's filter drops them, and
// Receive still reports true. It reports false when the frame cannot be
// taken: the queue holds 32 frames already, the chip is not joined (or
// off), or the frame is too large for an F2 packet.
func (c *Chip) Receive(frame []byte) bool {
	c.mu.Lock()
	ok := c.receive(frame)
	fx := c.takeFx()
	c.mu.Unlock()
	c.runFx(fx)
	return ok
}

// LinkLost tells the chip its association dropped (out of range, the AP
// gone): it raises the events a real chip does (WLC_E_LINK with the link
// flag clear, reason 1: beacons lost). Config.Leave is not called: the
// host did not leave.
func (c *Chip) LinkLost() {
	c.mu.Lock()
	if c.on && c.s.joined {
		c.s.joined = false
		c.setPhase(PhaseUp)
		c.logf("link lost (%s)", c.s.ssid)
		c.event(evLINK, 0, linkReasonBeaconLoss, 0, c.s.bssid, nil)
	}
	fx := c.takeFx()
	c.mu.Unlock()
	c.runFx(fx)
}

// Phase reports how far the host got: off, bus, backplane, firmware, up,
// joined.
func (c *Chip) Phase() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase
}

// Stats is what the chip counted since it was last powered on, and the
// phases and events since New.
type Stats struct {
	Phases []string // phases entered, oldest first (the last 64)
	Events []string // events raised to the host, "LINK status=0 reason=0 flags=1", oldest first (the last 64)

	FirmwareBytes   int    // bytes the host wrote to RAM below the NVRAM
	FirmwareVersion string // the "Version: " string found in those bytes
	NVRAMBytes      int    // bytes written to the NVRAM area the length word names
	NVRAMWords      int    // the NVRAM length word's count, 0 when absent or malformed
	NVRAM           string // the NVRAM's text (entries separated by NULs)
	CLMBytes        int    // CLM bytes received through clmload
	CLMLoaded       bool   // a complete CLM download (begin ... end) was received

	// Ioctls counts the ioctls the host sent, by name: "WLC_UP",
	// "SET_VAR bus:txglom", "GET_VAR cur_etheraddr".
	Ioctls map[string]int

	TxFrames    int // data frames the host sent to the LAN (Config.Send)
	TxDropped   int // data frames the host sent while not joined
	RxFrames    int // frames Receive queued for the host
	RxFiltered  int // frames the address filter dropped
	RxDropped   int // frames Receive refused
	HostRxReads int // F2 packets the host read
	// CreditFrames counts the frames the chip sent only to give the host
	// transmit credit (see creditUpdate).
	CreditFrames int
}

// Stats returns a copy of the chip's counters.
func (c *Chip) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{
		Phases: append([]string(nil), c.hist...),
		Events: append([]string(nil), c.evs...),
		Ioctls: map[string]int{},
	}
	if !c.on {
		return st
	}
	s := c.s
	fw, nv, words := s.uploads()
	st.FirmwareBytes, st.NVRAMBytes, st.NVRAMWords = fw, nv, words
	st.FirmwareVersion = s.ver.found
	st.NVRAM = s.nvramText()
	st.CLMBytes, st.CLMLoaded = s.clmBytes, s.clmDone && !s.clmErr
	for k, v := range s.ioctls {
		st.Ioctls[k] = v
	}
	st.TxFrames, st.TxDropped = s.txFrames, s.txDropped
	st.RxFrames, st.RxFiltered, st.RxDropped = s.rxFrames, s.rxFiltered, s.rxDropped
	st.HostRxReads, st.CreditFrames = s.hostReads, s.creditFrames
	return st
}

// --- internals ----------------------------------------------------------------

func (c *Chip) setPhase(p string) {
	if p == c.phase {
		return
	}
	c.phase = p
	c.hist = appendBounded(c.hist, p)
	c.logf("phase %s", p)
}

func appendBounded(l []string, s string) []string {
	if len(l) >= maxHistory {
		l = append(l[:0], l[1:]...)
	}
	return append(l, s)
}

func (c *Chip) logf(format string, args ...any) {
	if c.cfg.Log == nil {
		return
	}
	msg := "cyw43: " + fmt.Sprintf(format, args...)
	c.fx = append(c.fx, func() { c.cfg.Log(msg) })
}

func (c *Chip) addFx(f func()) {
	if f != nil {
		c.fx = append(c.fx, f)
	}
}

func (c *Chip) takeFx() []func() {
	fx := c.fx
	c.fx = nil
	return fx
}

func (c *Chip) runFx(fx []func()) {
	for _, f := range fx {
		f()
	}
}
