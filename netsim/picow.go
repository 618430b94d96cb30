package netsim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// PicoW is the radio of a Raspberry Pi Pico W (Infineon CYW43439) on a WiFi
// network: what makes its link worse than a wire, beyond loss and latency.
//
//   - Joining: after power-on a board is off the network while it associates
//     and gets an address, JoinMin to JoinMax (default 1.5 to 4 s). The
//     MicroPython examples of shared/seeds poll wlan.isconnected() once a
//     second and usually pass on the second to fourth poll; set your boards'
//     own figures if you have measured them.
//   - Power saving: the CYW43 driver saves power by default
//     (MicroPython's PM_PERFORMANCE); the station sleeps between beacons and
//     the access point holds its frames: a unicast frame waits up to one
//     beacon interval, broadcasts go out at the next DTIM beacon. 802.11's
//     default beacon interval is 100 TU = 102.4 ms, DTIM period 1. Set
//     PowerSaveOff as a board calling wlan.config(pm=PM_NONE) would.
//   - Association loss: now and then the station misses beacons, drops the
//     association and joins again (the join delay again): on average once
//     every AssocLossEvery (default 1 h; negative: never). Chosen, not
//     measured: flaky-connect reports describe it, none quantify it.
//
// The failure modes Pico W users report, each off unless set (Fail injects
// one at a given moment; Rejoin, the firmware's way out, ends it):
//
//   - Silent disassociation, every SilentEvery on average from each join:
//     raspberrypi/pico-sdk#2153 — under power management a board drops
//     off the network after idle periods and never notices (8 of 20 runs);
//     isconnected() stays true and nothing flows. The radio stays
//     "joined"; nothing is delivered to or from it (counter Silent) until
//     the board joins again.
//   - "WiFi stops", every StallEvery on average: MicroPython v1.24
//     reports — WiFi stops within hours; outbound requests fail with
//     ECONNABORTED while isconnected() is true. As a silent radio, and the
//     board's outbound TCP connects fail at once.
//   - A TCP server that never sends SYN-ACK, every WedgeEvery on average:
//     soypat/cyw43439#82. Every listener open when it strikes stops
//     answering connection attempts (their SYN-ACKs are never sent; counter
//     Wedged; OnUnanswered hears each) until it is closed and opened again.
//   - DHCP that fails DHCPFail of its exchanges: soypat/cyw43439#53 —
//     "DHCP works about half the time". The client's timing is the
//     firmware's (firmware/pico-w: lneto's DoDHCPv4 with a 3 s timeout, 3
//     tries): a failed exchange costs DHCPTimeout, and after DHCPTries
//     failures the board stays off the network until it joins again.
//   - No wake-on-WLAN in light sleep (NoWakeOnWLAN): frames for a board
//     whose firmware sleeps (Host.Doze) wait in the radio chip, not
//     acknowledged, until it wakes. The default is the chip waking the
//     RP2040: the CYW43439 raises its host-wake line for every frame
//     (micropython/micropython#9438, which made MicroPython's lightsleep
//     take that interrupt), and picosim's own firmware keeps polling the
//     radio in its light sleep, so commands reach a sleeping board (seed
//     002: "if in light sleep, the server wakes up upon receiving a
//     command"). Without it (MicroPython's lightsleep before #9438 hung
//     with the radio on; a dormant lightsleep() has no wake source but a
//     pin), nothing is taken until the sleep ends or the board's own alarm
//     wakes it (a fail-safe revert): a connect waits in SYN retransmits.
//     The chip holds at most SleepHeldFrames; more are dropped (Overflow).
type PicoW struct {
	JoinMin, JoinMax time.Duration
	PowerSaveOff     bool
	BeaconInterval   time.Duration
	DTIM             int
	AssocLossEvery   time.Duration

	SilentEvery, StallEvery time.Duration
	WedgeEvery              time.Duration
	DHCPFail                float64
	DHCPTimeout             time.Duration // default 3s
	DHCPTries               int           // default 3
	NoWakeOnWLAN            bool
}

// SleepHeldFrames is how many frames a radio holds for its sleeping board
// (PicoW.NoWakeOnWLAN): the CYW43439's receive buffers, of which the
// datasheet gives no count; 32 is a guess that a burst of heartbeats and a
// controller's SYN retransmits fit in.
const SleepHeldFrames = 32

// Doze tells the host's radio its board sleeps for d: with NoWakeOnWLAN,
// frames for it are held until the sleep ends or Wake (the board woke by
// itself); otherwise nothing changes. The firmware's light sleep calls it.
func (h *Host) Doze(d time.Duration) {
	l := h.lan
	l.mu.Lock()
	defer l.mu.Unlock()
	if h.profile == nil || !h.profile.NoWakeOnWLAN || !h.powered || d <= 0 {
		return
	}
	until := l.clock.Now() + d
	h.dozing = until
	gen := h.gen
	l.clock.AfterFunc(d, func() {
		l.mu.Lock()
		mine := h.gen == gen && h.dozing == until
		l.mu.Unlock()
		if mine {
			h.Wake()
		}
	})
}

// Wake ends a Doze: the frames the radio held reach the board, in order,
// as the next events (never from within the call).
func (h *Host) Wake() {
	l := h.lan
	l.mu.Lock()
	held, gen := h.held, h.gen
	h.dozing, h.held = 0, nil
	l.mu.Unlock()
	if len(held) == 0 {
		return
	}
	l.clock.AfterFunc(0, func() {
		var f udpFrame
		for i, frame := range held {
			if i > 0 && isTCP(held[i-1]) {
				l.settle() // one segment taken before the next, as when they came
			}
			f.parse(frame)
			h.deliver(gen, frame, &f)
		}
	})
}

// Radio faults, as Fail takes them and OnRadioFault reports them.
const (
	FaultSilent     = "silent"      // joined, nothing flows (pico-sdk#2153)
	FaultStall      = "stall"       // as silent, and connects fail at once (MicroPython v1.24)
	FaultDHCPFailed = "dhcp_failed" // every DHCP try of a join failed (cyw43439#53)
	FaultNoSynAck   = "no_synack"   // the open listeners never answer a SYN (cyw43439#82)
)

// Defaults returns the profile with its zero fields filled in.
func (p *PicoW) Defaults() PicoW { return p.defaults() }

func (p *PicoW) defaults() PicoW {
	d := *p
	if d.JoinMin <= 0 {
		d.JoinMin = 1500 * time.Millisecond
	}
	if d.JoinMax < d.JoinMin {
		d.JoinMax = max(4*time.Second, d.JoinMin)
	}
	if d.BeaconInterval <= 0 {
		d.BeaconInterval = 102400 * time.Microsecond
	}
	if d.DTIM <= 0 {
		d.DTIM = 1
	}
	if d.AssocLossEvery == 0 {
		d.AssocLossEvery = time.Hour
	}
	if d.DHCPTimeout <= 0 {
		d.DHCPTimeout = 3 * time.Second
	}
	if d.DHCPTries <= 0 {
		d.DHCPTries = 3
	}
	return d
}

// join takes the host off the network and schedules its association: at
// power-on, and after an association loss. The caller holds l.mu.
func (h *Host) join() {
	l := h.lan
	p := *h.profile // defaulted when the host was added
	if h.associated {
		h.leftAt = l.clock.Now()
	}
	h.associated, h.fault = false, ""
	h.joins++
	l.shape++
	gen, joins := h.gen, h.joins
	wait := p.JoinMin + time.Duration(l.rng.Int64N(int64(p.JoinMax-p.JoinMin)+1))
	// DHCP: each failed try costs its timeout; the last one's failure
	// leaves the board off the network. Drawn only when it can fail, so
	// that runs without the fault draw what they always drew.
	failed := 0
	for p.DHCPFail > 0 && failed < p.DHCPTries && l.rng.Float64() < p.DHCPFail {
		failed++
		wait += p.DHCPTimeout
	}
	l.clock.AfterFunc(wait, func() {
		l.mu.Lock()
		if h.gen != gen || h.joins != joins || !h.powered || (h != l.ap && l.apDown()) {
			l.mu.Unlock()
			return // the soft AP's return starts a new join; a rejoin, another
		}
		// DHCP fails when every try failed, or when a soft AP has no
		// lease free for the station.
		var old netip.Addr
		renumbered, leased := false, failed < p.DHCPTries
		if leased && l.ap != nil && h != l.ap {
			old, renumbered, leased = l.lease(h)
		}
		if !leased {
			note := l.cfg.OnRadioFault
			l.mu.Unlock()
			if note != nil {
				note(h, FaultDHCPFailed)
			}
			return
		}
		h.associated = true
		l.shape++
		h.scheduleLoss()
		h.scheduleFault(FaultSilent, p.SilentEvery)
		h.scheduleFault(FaultStall, p.StallEvery)
		h.scheduleFault(FaultNoSynAck, p.WedgeEvery)
		var notes []func()
		if h == l.ap {
			notes = l.apChanged(true) // the AP is up: its stations may join
		}
		on, onAddr := l.cfg.OnAssociation, l.cfg.OnAddress
		l.mu.Unlock()
		if renumbered && onAddr != nil {
			onAddr(h, old) // before the join: the board joins at its new address
		}
		if on != nil {
			on(h, true)
		}
		for _, n := range notes {
			n()
		}
	})
}

// scheduleLoss draws the next association loss; the caller holds l.mu.
func (h *Host) scheduleLoss() {
	p := h.profile
	l := h.lan
	if p.AssocLossEvery < 0 || h == l.ap { // the AP is the network: it has no association to lose
		return
	}
	gen := h.gen
	l.clock.AfterFunc(time.Duration(l.rng.ExpFloat64()*float64(p.AssocLossEvery)), func() {
		l.mu.Lock()
		if h.gen != gen || !h.powered || !h.associated {
			l.mu.Unlock()
			return
		}
		h.join()
		on := l.cfg.OnAssociation
		l.mu.Unlock()
		if on != nil {
			on(h, false)
		}
	})
}

// scheduleFault draws when a radio fault next strikes, every on average
// (0 or less: never); the caller holds l.mu.
func (h *Host) scheduleFault(fault string, every time.Duration) {
	if every <= 0 || h == h.lan.ap {
		return
	}
	l := h.lan
	gen, joins := h.gen, h.joins
	l.clock.AfterFunc(time.Duration(l.rng.ExpFloat64()*float64(every)), func() {
		l.mu.Lock()
		if h.gen != gen || h.joins != joins || !h.associated || (h.fault != "" && fault != FaultNoSynAck) {
			l.mu.Unlock()
			return
		}
		note := h.setFault(fault)
		l.mu.Unlock()
		note()
	})
}

// setFault puts the radio in a fault state and returns the note that says
// so; the caller holds l.mu.
func (h *Host) setFault(fault string) func() {
	if fault == FaultNoSynAck {
		h.wedge = h.listens // every listener opened so far
		if h.door != nil {
			h.wedgeAll = true // its listeners are the namespace's, unseen here
		}
	} else {
		h.fault = fault
		h.lan.shape++
	}
	on := h.lan.cfg.OnRadioFault
	return func() {
		if on != nil {
			on(h, fault)
		}
	}
}

// Fail puts a joined PicoW host's radio in a fault state now: FaultSilent or
// FaultStall. It holds until the host joins again (Rejoin, or a power
// cycle); the host still reports itself associated. FaultNoSynAck (any
// powered host) wedges the TCP listeners open now, until each is opened
// again.
func (h *Host) Fail(fault string) error {
	if fault != FaultSilent && fault != FaultStall && fault != FaultNoSynAck {
		return fmt.Errorf("netsim: %s: no radio fault %q: %s, %s or %s", h.name, fault, FaultSilent, FaultStall, FaultNoSynAck)
	}
	h.lan.mu.Lock()
	if !h.powered || (fault != FaultNoSynAck && (h.profile == nil || !h.associated)) {
		h.lan.mu.Unlock()
		return fmt.Errorf("netsim: %s: a radio fault needs a Pico W radio that is on the network", h.name)
	}
	note := h.setFault(fault)
	h.lan.mu.Unlock()
	note()
	return nil
}

// Rejoin leaves the network and joins it again, as a board's firmware does
// when it finds its radio deaf: whatever fault the radio was in ends, and
// the join delay (and DHCP) follow. OnAssociation hears the loss after the
// caller returns, then the join.
func (h *Host) Rejoin() error {
	l := h.lan
	l.mu.Lock()
	if h.profile == nil || !h.powered {
		l.mu.Unlock()
		return fmt.Errorf("netsim: %s: only a powered Pico W radio joins again", h.name)
	}
	was := h.associated
	h.join()
	on := l.cfg.OnAssociation
	l.mu.Unlock()
	if was && on != nil {
		l.clock.AfterFunc(0, func() { on(h, false) }) // never from inside the caller
	}
	return nil
}

// Unwedge ends FaultNoSynAck for a door host, whose listeners netsim does
// not see close and open again: its harness calls it when the board says it
// restarted them.
func (h *Host) Unwedge() {
	h.lan.mu.Lock()
	h.wedgeAll = false
	h.lan.mu.Unlock()
}

// Fault is the radio's fault state: "", FaultSilent or FaultStall.
func (h *Host) Fault() string {
	h.lan.mu.Lock()
	defer h.lan.mu.Unlock()
	return h.fault
}

// Associated reports whether the host is on the network: always for a wired
// host, after joining for one with the PicoW profile.
func (h *Host) Associated() bool {
	h.lan.mu.Lock()
	defer h.lan.mu.Unlock()
	return h.powered && (h.profile == nil || h.associated)
}

// powerSaveDelay is how long the access point holds a frame for a sleeping
// station; at is when the frame reaches the access point.
func (p *PicoW) powerSaveDelay(r *rand.Rand, at time.Duration, broadcast bool) time.Duration {
	if p.PowerSaveOff {
		return 0
	}
	if broadcast {
		period := p.BeaconInterval * time.Duration(p.DTIM)
		next := (at/period + 1) * period
		return next - at
	}
	return time.Duration(r.Int64N(int64(p.BeaconInterval)))
}
