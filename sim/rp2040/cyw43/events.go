package cyw43

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
)

// Event types (whd/asyncevent.go, Broadcom's WLC_E_*).
const (
	evSET_SSID        = 0
	evJOIN            = 1
	evAUTH            = 3
	evDEAUTH          = 5
	evASSOC           = 7
	evDISASSOC        = 11
	evLINK            = 16
	evPSK_SUP         = 46
	evFIFO_CREDIT_MAP = 74

	evMaskLen = 24 // the driver's eventMask.events: 192 event types

	// Event status values (whd.EStatus*).
	statusSuccess    = 0
	statusFail       = 1
	statusNoNetworks = 3
	supKeyed         = 6 // PSK_SUP: the 4-way handshake completed (WLC_SUP_KEYED)

	// Event flags and reasons.
	flagLinkUp             = 1 // WLC_EVENT_MSG_LINK
	linkReasonBeaconLoss   = 1 // WLC_E_LINK_BCN_LOSS
	linkReasonDisassoc     = 2 // WLC_E_LINK_DISASSOC: the host left
	dot11ReasonLeaving     = 8 // DOT11_RC_DISASSOC_LEAVING
	authOpenSystem         = 0
	authSAE                = 3
	etherTypeBroadcomEvent = 0x886c
)

var eventNames = map[uint32]string{
	evSET_SSID: "SET_SSID", evJOIN: "JOIN", evAUTH: "AUTH", evDEAUTH: "DEAUTH",
	evASSOC: "ASSOC", evDISASSOC: "DISASSOC", evLINK: "LINK", evPSK_SUP: "PSK_SUP",
	evFIFO_CREDIT_MAP: "FIFO_CREDIT_MAP",
}

// ev is one event message (whd.EventMessage).
type ev struct {
	typ, status, reason, authType uint32
	flags                         uint16
	addr                          [6]byte
	data                          []byte
}

// event raises an event the simple way.
func (c *Chip) event(typ, status, reason uint32, flags uint16, addr [6]byte, data []byte) {
	c.raise(ev{typ: typ, status: status, reason: reason, flags: flags, addr: addr, data: data})
}

// raise queues an event frame for the host, if the host asked for the event
// (event_msgs). The frame (the driver's rxEvent, whd.DecodeEventPacket):
//
//	SDPCM header (channel 1, header length 14) and 2 bytes of padding
//	BDC header (version 2, data offset 0)
//	Ethernet header: to and from the chip's MAC, type 0x886c
//	Broadcom header (big endian): subtype 0x8001, length, version 0,
//	  OUI 00:10:18, user subtype 1 (event)
//	event message (48 bytes, big endian): version 2, flags, type, status,
//	  reason, auth type, data length, address, interface name, indices
//	event data
func (c *Chip) raise(e ev) {
	s := c.s
	name := eventNames[e.typ]
	if name == "" {
		name = fmt.Sprint(e.typ)
	}
	if e.typ >= 8*evMaskLen || s.evmask[e.typ/8]&(1<<(e.typ%8)) == 0 {
		c.logf("event %s masked by the host", name)
		return
	}
	if e.typ != evFIFO_CREDIT_MAP {
		c.evs = appendBounded(c.evs, fmt.Sprintf("%s status=%d reason=%d flags=%d", name, e.status, e.reason, e.flags))
		c.logf("event %s status=%d reason=%d flags=%d", name, e.status, e.reason, e.flags)
	}
	msg := make([]byte, 14+10+48, 14+10+48+len(e.data))
	copy(msg[0:6], s.mac[:])
	copy(msg[6:12], s.mac[:])
	be := binary.BigEndian
	be.PutUint16(msg[12:], etherTypeBroadcomEvent)
	h := msg[14:24]
	be.PutUint16(h[0:], 0x8001)                   // BCMILCP_SUBTYPE_VENDOR_LONG
	be.PutUint16(h[2:], uint16(8+48+len(e.data))) // BCMILCP_BCM_SUBTYPEHDR_MINLENGTH + message + data
	h[4] = 0
	copy(h[5:8], []byte{0x00, 0x10, 0x18}) // Broadcom's OUI
	be.PutUint16(h[8:], 1)                 // BCMILCP_BCM_SUBTYPE_EVENT
	m := msg[24:72]
	be.PutUint16(m[0:], 2)
	be.PutUint16(m[2:], e.flags)
	be.PutUint32(m[4:], e.typ)
	be.PutUint32(m[8:], e.status)
	be.PutUint32(m[12:], e.reason)
	be.PutUint32(m[16:], e.authType)
	be.PutUint32(m[20:], uint32(len(e.data)))
	copy(m[24:30], e.addr[:])
	copy(m[30:46], "wl0")
	msg = append(msg, e.data...)
	c.queue(frame(chanEvent, sdpcmHeaderLen+dataPad, []byte{bdcVersion2, 0, 0, 0}, msg))
}

// startJoin begins an association with ssid (WLC_SET_SSID, the join
// iovar), with the security the host set before: WLC_SET_WPA_AUTH non-zero
// is WPA (its passphrase from WLC_SET_WSEC_PMK, or sae_password for
// WPA3-SAE), zero an open network. Config.Join is asked after the ioctl's
// reply is queued, still within CmdWrite, and its answer raises the events.
// A chip that is not up refuses (BCME_NOTUP).
func (c *Chip) startJoin(ssid string) int32 {
	s := c.s
	if !s.up {
		c.logf("join %q before WLC_UP: refused (not up)", ssid)
		return bcmeNotUp
	}
	if s.joined {
		c.leave("joining again")
	}
	if ssid == "" {
		return 0
	}
	wpaAuth := s.vals[wlcSetWPAAuth]
	secure := wpaAuth != 0
	var pass []byte
	switch {
	case wpaAuth&wpaAuthSAE != 0 && s.sae != nil:
		pass = s.sae
	case secure:
		pass = s.pmk
	}
	auth := uint32(authOpenSystem)
	if s.vals[wlcSetAuth] == authSAE {
		auth = authSAE
	}
	pass = append([]byte(nil), pass...)
	gen := c.gen
	c.logf("join %q (wpa_auth %#x, wsec %#x, passphrase of %d bytes)", ssid, wpaAuth, s.vals[wlcSetWSec], len(pass))
	c.fx = append(c.fx, func() { c.finishJoin(gen, ssid, pass, secure, auth) })
	return 0
}

// finishJoin asks the board's radio and raises the join's events, in a real
// chip's order:
//
//	success: AUTH (success), ASSOC (success), LINK (success, flags 1: up),
//	  JOIN (success), SET_SSID (success), and for WPA PSK_SUP (status 6,
//	  keyed; reason 0, flags 0)
//	failure: SET_SSID (status 3: no networks)
//
// What the driver makes of them (wifi.go wait_for_join, ioctl.go rxEvent):
// AUTH success sets authOK; JOIN success sets joinOK, which brings the
// link up for an open network; for WPA the link comes up at PSK_SUP keyed
// after a successful AUTH. SET_SSID success alone brings an open network
// up; SET_SSID with no networks fails the join (errJoinSetSSID) at once,
// where any other silence would cost the driver its 10 s deadline.
func (c *Chip) finishJoin(gen uint64, ssid string, pass []byte, secure bool, auth uint32) {
	ok := true
	if f := c.cfg.Join; f != nil {
		ok = f(ssid, pass)
	}
	c.mu.Lock()
	if c.gen == gen && c.on && c.s.fwRunning && c.s.up && !c.s.joined {
		s := c.s
		if ok {
			s.joined, s.ssid, s.bssid = true, ssid, bssidFor(ssid)
			c.logf("joined %q (BSSID %x)", ssid, s.bssid)
			c.raise(ev{typ: evAUTH, status: statusSuccess, authType: auth, addr: s.bssid})
			c.raise(ev{typ: evASSOC, status: statusSuccess, authType: auth, addr: s.bssid})
			c.raise(ev{typ: evLINK, status: statusSuccess, flags: flagLinkUp, addr: s.bssid})
			c.raise(ev{typ: evJOIN, status: statusSuccess, addr: s.bssid})
			c.raise(ev{typ: evSET_SSID, status: statusSuccess, addr: s.bssid, data: []byte(ssid)})
			if secure {
				c.raise(ev{typ: evPSK_SUP, status: supKeyed, addr: s.bssid})
			}
			c.setPhase(PhaseJoined)
		} else {
			c.logf("join %q failed: the radio found no network to associate with", ssid)
			c.raise(ev{typ: evSET_SSID, status: statusNoNetworks, data: []byte(ssid)})
		}
	}
	fx := c.takeFx()
	c.mu.Unlock()
	c.runFx(fx)
}

// leave ends the association at the host's request: Config.Leave, and the
// events a chip raises (DISASSOC success, reason 8: leaving; LINK down,
// reason 2), which the driver takes for the link going down.
func (c *Chip) leave(why string) {
	s := c.s
	if !s.joined {
		return
	}
	s.joined = false
	c.logf("left %q (%s)", s.ssid, why)
	c.addFx(c.cfg.Leave)
	c.raise(ev{typ: evDISASSOC, status: statusSuccess, reason: dot11ReasonLeaving, addr: s.bssid})
	c.raise(ev{typ: evLINK, status: statusSuccess, reason: linkReasonDisassoc, addr: s.bssid})
	if s.up {
		c.setPhase(PhaseUp)
	}
}

// bssidFor makes up the access point's address for a network: locally
// administered, stable per SSID (the simulated LAN has no access point of
// its own).
func bssidFor(ssid string) [6]byte {
	h := fnv.New64a()
	h.Write([]byte(ssid))
	sum := h.Sum64()
	var b [6]byte
	for i := range b {
		b[i] = byte(sum >> (8 * i))
	}
	b[0] = b[0]&^1 | 2
	return b
}
