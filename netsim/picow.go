package netsim

import (
	"math/rand/v2"
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
type PicoW struct {
	JoinMin, JoinMax time.Duration
	PowerSaveOff     bool
	BeaconInterval   time.Duration
	DTIM             int
	AssocLossEvery   time.Duration
}

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
	return d
}

// join takes the host off the network and schedules its association: at
// power-on, and after an association loss. The caller holds l.mu.
func (h *Host) join() {
	l := h.lan
	p := *h.profile
	h.associated = false
	l.shape++
	gen := h.gen
	wait := p.JoinMin + time.Duration(l.rng.Int64N(int64(p.JoinMax-p.JoinMin)+1))
	l.clock.AfterFunc(wait, func() {
		l.mu.Lock()
		if h.gen != gen || !h.powered || (h != l.ap && l.apDown()) {
			l.mu.Unlock()
			return // the soft AP's return starts a new join
		}
		h.associated = true
		l.shape++
		h.scheduleLoss()
		var notes []func()
		if h == l.ap {
			notes = l.apChanged(true) // the AP is up: its stations may join
		}
		on := l.cfg.OnAssociation
		l.mu.Unlock()
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
