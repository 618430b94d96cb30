package cyw43

import "bytes"

// state is everything the chip loses when WL_REG_ON goes low.
type state struct {
	// gSPI
	f0         [0x20]byte // function 0's registers (the read-only ones are computed)
	irq        uint16     // latched interrupt bits (write 1 to clear)
	lastStatus uint32
	buf, out   []byte // scratch for transactions

	// backplane
	f1                 [0x20]byte // function 1's own registers, 0x10000-0x1001f
	cores              [2]core    // the WLAN ARM CM3 and SOCSRAM wrappers
	regs               map[uint32]byte
	ram                extents          // what the host wrote to RAM (counted, not kept)
	ramTop             [ramTopSize]byte // the top of RAM kept: NVRAM and its length word
	ver                versionScan
	armOn              bool // the ARM core runs (ROM at power-on, the firmware after a reset)
	fwRunning          bool
	fwVersion          string
	gpioOut, gpioOutEn uint32 // chipcommon GPIO
	led                bool

	// F2 / SDPCM
	rxq          [][]byte // frames for the host, oldest first
	nData        int      // data frames among them
	txSeq        uint8    // the chip's next SDPCM sequence number
	hostNext     uint8    // the host's next sequence number
	granted      uint8    // the credit (max sequence) the host last read
	hostReads    int
	creditFrames int

	// the firmware
	up       bool // WLC_UP
	joined   bool
	ssid     string
	bssid    [6]byte
	mac      [6]byte // the station address: the OTP's, or what the host set (cur_etheraddr)
	otp      [6]byte
	vals     map[uint32]uint32 // integer ioctls (SET_INFRA, SET_AUTH, SET_WSEC ...)
	vars     map[string][]byte // iovars as last set
	pmk      []byte            // WLC_SET_WSEC_PMK's passphrase
	sae      []byte            // sae_password
	evmask   [evMaskLen]byte   // the events the host asked for (event_msgs)
	mcast    [][6]byte
	clmBytes int
	clmBusy  bool // a CLM download began and has not ended
	clmDone  bool
	clmErr   bool
	ioctls   map[string]int

	txFrames, txDropped             int
	rxFrames, rxFiltered, rxDropped int
	once                            map[string]bool
}

type core struct {
	ioctrl, resetctrl byte
}

func newState(mac [6]byte) *state {
	s := &state{
		regs:   map[uint32]byte{},
		vals:   map[uint32]uint32{},
		vars:   map[string][]byte{},
		ioctls: map[string]int{},
		once:   map[string]bool{},
		mac:    mac,
		otp:    mac,
		armOn:  true, // the ARM core runs its ROM until the host resets it
		// The host may send one frame before it has read the chip's
		// credit (the driver's sdpcmSeqMax starts at 1, as WHD's does).
		granted: 1,
	}
	resetF0(&s.f0)
	for i := range s.cores {
		s.cores[i] = core{ioctrl: sicfClockEn}
	}
	for i := range s.evmask {
		s.evmask[i] = 0xff // until the host sets event_msgs
	}
	return s
}

// extents is a sorted list of disjoint written ranges [lo, hi).
type extents []extent

type extent struct{ lo, hi uint32 }

func (e extents) add(lo, hi uint32) extents {
	if lo >= hi {
		return e
	}
	// The common case: a sequential upload extends the last range.
	if n := len(e); n > 0 && lo >= e[n-1].lo && lo <= e[n-1].hi {
		e[n-1].hi = max(e[n-1].hi, hi)
		return e
	}
	out := make(extents, 0, len(e)+1)
	placed := false
	for _, x := range e {
		switch {
		case x.hi < lo:
			out = append(out, x)
		case hi < x.lo:
			if !placed {
				out = append(out, extent{lo, hi})
				placed = true
			}
			out = append(out, x)
		default: // overlapping or adjacent: merge
			lo, hi = min(lo, x.lo), max(hi, x.hi)
		}
	}
	if !placed {
		out = append(out, extent{lo, hi})
	}
	return out
}

// covered counts the written bytes in [lo, hi).
func (e extents) covered(lo, hi uint32) int {
	n := 0
	for _, x := range e {
		a, b := max(x.lo, lo), min(x.hi, hi)
		if a < b {
			n += int(b - a)
		}
	}
	return n
}

// versionScan finds the firmware's "Version: ..." string in the upload as
// it streams past, without keeping the image (the driver's getFWVersion
// reads the same string from its copy).
type versionScan struct {
	tail      []byte // the last bytes seen, for a marker split across writes
	capturing bool
	cur       []byte
	found     string
}

const versionMarker = "Version: "

func (v *versionScan) feed(data []byte) {
	const maxLen = 160
	for len(data) > 0 {
		if v.capturing {
			i := bytes.IndexByte(data, 0)
			if i < 0 && len(v.cur)+len(data) < maxLen {
				v.cur = append(v.cur, data...)
				return
			}
			if i < 0 {
				i = len(data)
			}
			v.cur = append(v.cur, data[:i]...)
			v.found = string(v.cur[:min(len(v.cur), maxLen)])
			v.capturing, v.cur = false, nil
			data = data[i:]
			continue
		}
		buf := append(v.tail, data...)
		i := bytes.Index(buf, []byte(versionMarker))
		if i < 0 {
			keep := min(len(buf), len(versionMarker)-1)
			v.tail = append(v.tail[:0:0], buf[len(buf)-keep:]...)
			return
		}
		v.tail = nil
		v.capturing = true
		data = buf[i+len(versionMarker):]
	}
}
