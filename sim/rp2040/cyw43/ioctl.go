package cyw43

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// Ioctl numbers (whd.WLC_*, Broadcom's wlioctl.h). For most settings the
// GET is the SET's number less one.
const (
	wlcGetMagic     = 0
	wlcUp           = 2
	wlcDown         = 3
	wlcGetInfra     = 19
	wlcSetInfra     = 20
	wlcGetAuth      = 21
	wlcSetAuth      = 22
	wlcGetBSSID     = 23
	wlcGetSSID      = 25
	wlcSetSSID      = 26
	wlcGetChannel   = 29
	wlcSetChannel   = 30
	wlcDisassoc     = 52
	wlcGetAntDiv    = 63
	wlcSetAntDiv    = 64
	wlcGetDTIMPrd   = 77
	wlcSetDTIMPrd   = 78
	wlcGetPM        = 85
	wlcSetPM        = 86
	wlcGetGMode     = 109
	wlcSetGMode     = 110
	wlcGetAP        = 117
	wlcSetAP        = 118
	wlcGetWSec      = 133
	wlcSetWSec      = 134
	wlcGetBand      = 141
	wlcSetBand      = 142
	wlcGetAssocList = 159
	wlcGetWPAAuth   = 164
	wlcSetWPAAuth   = 165
	wlcGetVar       = 262
	wlcSetVar       = 263
	wlcSetWSecPMK   = 268

	wpaAuthSAE = 0x40000 // WPA3_AUTH_SAE_PSK

	magic = 0x14e46c77 // WLC_GET_MAGIC's answer

	// Broadcom error codes, the CDC status of a failed ioctl.
	bcmeBadArg          = -2
	bcmeNotUp           = -4
	bcmeBufTooShort     = -14
	bcmeNotAssociated   = -17
	cdcFlagSet          = 0x2 // CDC flags bit 1: set (else get)
	cdcIfShift          = 12
	cdcIDShift          = 16
	maxControlReplyData = maxF2Packet - sdpcmHeaderLen - cdcHeaderLen

	// The CLM download header (whd.DownloadHeader).
	dlHeaderLen  = 12
	dlBegin      = 0x0002
	dlEnd        = 0x0004
	dlVersion    = 0x1000
	dlTypeCLM    = 2
	clmBlobMagic = "BLOB"
)

var ioctlNames = map[uint32]string{
	wlcGetMagic: "WLC_GET_MAGIC", wlcUp: "WLC_UP", wlcDown: "WLC_DOWN",
	wlcGetInfra: "WLC_GET_INFRA", wlcSetInfra: "WLC_SET_INFRA", wlcGetAuth: "WLC_GET_AUTH", wlcSetAuth: "WLC_SET_AUTH",
	wlcGetBSSID: "WLC_GET_BSSID", wlcGetSSID: "WLC_GET_SSID", wlcSetSSID: "WLC_SET_SSID",
	wlcGetChannel: "WLC_GET_CHANNEL", wlcSetChannel: "WLC_SET_CHANNEL", wlcDisassoc: "WLC_DISASSOC",
	wlcGetAntDiv: "WLC_GET_ANTDIV", wlcSetAntDiv: "WLC_SET_ANTDIV", wlcGetDTIMPrd: "WLC_GET_DTIMPRD", wlcSetDTIMPrd: "WLC_SET_DTIMPRD",
	wlcGetPM: "WLC_GET_PM", wlcSetPM: "WLC_SET_PM", wlcGetGMode: "WLC_GET_GMODE", wlcSetGMode: "WLC_SET_GMODE",
	wlcGetAP: "WLC_GET_AP", wlcSetAP: "WLC_SET_AP", wlcGetWSec: "WLC_GET_WSEC", wlcSetWSec: "WLC_SET_WSEC",
	wlcGetBand: "WLC_GET_BAND", wlcSetBand: "WLC_SET_BAND", wlcGetAssocList: "WLC_GET_ASSOCLIST",
	wlcGetWPAAuth: "WLC_GET_WPA_AUTH", wlcSetWPAAuth: "WLC_SET_WPA_AUTH",
	wlcGetVar: "GET_VAR", wlcSetVar: "SET_VAR", wlcSetWSecPMK: "WLC_SET_WSEC_PMK",
}

// intSets are the ioctls that set one 32-bit value, which their GET (the
// number less one) reads back.
var intSets = map[uint32]bool{
	wlcSetInfra: true, wlcSetAuth: true, wlcSetChannel: true, wlcSetAntDiv: true, wlcSetDTIMPrd: true,
	wlcSetPM: true, wlcSetGMode: true, wlcSetAP: true, wlcSetWSec: true, wlcSetBand: true, wlcSetWPAAuth: true,
}

// Iovars the model knows; what is set is kept and read back. Those with
// an effect are handled in setVar/getVar.
var knownVars = map[string]bool{
	// initControl
	"clmload": true, "clmload_status": true, "bus:txglom": true, "apsta": true, "cur_etheraddr": true,
	"country": true, "ampdu_ba_wsize": true, "ampdu_mpdu": true, "ampdu_rx_factor": true, "event_msgs": true,
	// set_power_management
	"pm2_sleep_ret": true, "bcn_li_bcn": true, "bcn_li_dtim": true, "assoc_listen": true,
	// Join
	"sup_wpa": true, "sup_wpa2_eapver": true, "sup_wpa_tmo": true, "mfp": true, "sae_password": true,
	"wsec": true, "wpa_auth": true, "join": true,
	// GPIOSet, SetMulticastList, StartAP
	"gpioout": true, "mcast_list": true, "allmulti": true, "ssid": true, "bss": true, "2g_mrate": true,
	// read-only
	"ver": true, "clmver": true,
}

// control answers an ioctl (the driver's sendIoctl): the CDC header
//
//	0  command
//	4  length of the data
//	8  flags: bit 1 set (else get), bits 15:12 interface, bits 31:16 request id
//	12 status
//
// and its data. The reply (rxControl, pollForIoctl) echoes command, flags
// and id with the status (0, or a negative Broadcom error); a GET's data is
// the answer in a buffer the length of the request's, a SET's the request's
// own data back, as a dongle returns its ioctl buffer.
func (c *Chip) control(p []byte) {
	if len(p) < cdcHeaderLen {
		c.logf("control frame of %d bytes: shorter than a CDC header, dropped", len(p))
		return
	}
	le := binary.LittleEndian
	cmd, n, flags := le.Uint32(p[0:]), le.Uint32(p[4:]), le.Uint32(p[8:])
	data := p[cdcHeaderLen:]
	if int(n) < len(data) {
		data = data[:n]
	} else if int(n) > len(data) {
		c.logf("ioctl %s: CDC length %d, %d bytes sent", ioctlName(cmd), n, len(data))
	}
	set := flags&cdcFlagSet != 0
	iface := flags >> cdcIfShift & 0xf
	if iface != 0 {
		c.logOnce("iface", "ioctl on interface %d: handled as the station's", iface)
	}
	val, status := c.ioctl(cmd, set, data)
	var out []byte
	switch {
	case status != 0:
	case set:
		out = data
	case len(val) > len(data) && len(data) > 0:
		status = bcmeBufTooShort
	default:
		out = make([]byte, max(len(data), len(val)))
		copy(out, val)
	}
	if len(out) > maxControlReplyData {
		out = out[:maxControlReplyData]
	}
	hdr := make([]byte, cdcHeaderLen)
	le.PutUint32(hdr[0:], cmd)
	le.PutUint32(hdr[4:], uint32(len(out)))
	le.PutUint32(hdr[8:], flags)
	le.PutUint32(hdr[12:], uint32(status))
	c.queue(frame(chanControl, sdpcmHeaderLen, hdr, out))
}

func ioctlName(cmd uint32) string {
	if n, ok := ioctlNames[cmd]; ok {
		return n
	}
	return fmt.Sprintf("WLC_%d", cmd)
}

// ioctl runs one ioctl; for a GET it returns the answer.
func (c *Chip) ioctl(cmd uint32, set bool, data []byte) ([]byte, int32) {
	s := c.s
	if cmd == wlcGetVar || cmd == wlcSetVar {
		return c.iovar(cmd == wlcSetVar, data)
	}
	name := ioctlName(cmd)
	s.ioctls[name]++
	le := binary.LittleEndian
	switch cmd {
	case wlcUp: // initControl
		s.up = true
		if c.phase == PhaseFirmware {
			c.setPhase(PhaseUp)
		}
		return nil, 0
	case wlcDown:
		c.leave("WLC_DOWN")
		s.up = false
		c.setPhase(PhaseFirmware)
		return nil, 0
	case wlcSetSSID: // wait_for_join's setSSID: wlc_ssid_t, a 32-bit length and 32 bytes
		if len(data) < 4 {
			return nil, bcmeBadArg
		}
		n := min(int(le.Uint32(data)), 32, len(data)-4)
		return nil, c.startJoin(string(data[4 : 4+n]))
	case wlcDisassoc:
		c.leave("WLC_DISASSOC")
		return nil, 0
	case wlcGetBSSID:
		if !s.joined {
			return nil, bcmeNotAssociated
		}
		return s.bssid[:], 0
	case wlcGetSSID:
		out := make([]byte, 36)
		if s.joined {
			le.PutUint32(out, uint32(len(s.ssid)))
			copy(out[4:], s.ssid)
		}
		return out, 0
	case wlcSetWSecPMK: // setPassphrase: wsec_pmk_t, 16-bit length, 16-bit flags, 64 bytes
		if len(data) < 4 {
			return nil, bcmeBadArg
		}
		n := min(int(le.Uint16(data)), 64, len(data)-4)
		s.pmk = append(s.pmk[:0:0], data[4:4+n]...)
		return nil, 0
	case wlcGetAssocList: // a station has no associated stations
		return make([]byte, 4), 0
	case wlcGetMagic:
		return le.AppendUint32(nil, magic), 0
	}
	if set && intSets[cmd] {
		if len(data) < 4 {
			return nil, bcmeBadArg
		}
		s.vals[cmd] = le.Uint32(data)
		if cmd == wlcSetAP && s.vals[cmd] != 0 {
			c.logOnce("ap", "access point mode (WLC_SET_AP 1): not modelled, the chip stays a station")
		}
		return nil, 0
	}
	if !set && intSets[cmd+1] {
		return le.AppendUint32(nil, s.vals[cmd+1]), 0
	}
	c.logf("unknown ioctl %d (%s): answered with success", cmd, map[bool]string{true: "set", false: "get"}[set])
	return nil, 0
}

// iovar runs WLC_GET_VAR/WLC_SET_VAR: the data is the variable's name, a
// NUL, and its value (a SET) or room for it (a GET, whose answer replaces
// the name in the buffer). A "bsscfg:" name carries the BSS index as a
// 32-bit word before the value.
func (c *Chip) iovar(set bool, data []byte) ([]byte, int32) {
	s := c.s
	i := bytes.IndexByte(data, 0)
	if i < 0 {
		c.logf("iovar without a NUL-terminated name: refused")
		return nil, bcmeBadArg
	}
	name, val := string(data[:i]), data[i+1:]
	key := name
	if strings.HasPrefix(name, "bsscfg:") {
		key = name[len("bsscfg:"):]
		if len(val) >= 4 {
			if idx := binary.LittleEndian.Uint32(val); idx != 0 {
				c.logOnce("bsscfg", "iovar %s for BSS %d: handled as BSS 0's", name, idx)
			}
			val = val[4:]
		}
	}
	op := "GET_VAR "
	if set {
		op = "SET_VAR "
	}
	s.ioctls[op+name]++
	if !knownVars[key] {
		c.logf("unknown iovar %q (%s): answered with success", name, strings.TrimSpace(op))
	}
	if set {
		return nil, c.setVar(key, val)
	}
	return c.getVar(key), 0
}

func (c *Chip) setVar(key string, v []byte) int32 {
	s := c.s
	le := binary.LittleEndian
	u32 := func(i int) uint32 {
		if len(v) >= 4*i+4 {
			return le.Uint32(v[4*i:])
		}
		return 0
	}
	switch key {
	case "clmload":
		return c.clmLoad(v)
	case "cur_etheraddr":
		if len(v) < 6 {
			return bcmeBadArg
		}
		s.mac = [6]byte(v[:6])
	case "event_msgs": // initControl's bsscfg:event_msgs: one bit per event type
		copy(s.evmask[:], v)
	case "mcast_list": // SetMulticastList: a 32-bit count and the MACs
		n := int(u32(0))
		s.mcast = s.mcast[:0]
		for i := 0; i < n && 4+6*i+6 <= len(v); i++ {
			s.mcast = append(s.mcast, [6]byte(v[4+6*i:]))
		}
	case "gpioout": // GPIOSet: mask and value; the masked pins become outputs
		mask, val := u32(0), u32(1)
		s.gpioOut = s.gpioOut&^mask | val&mask
		s.gpioOutEn |= mask
		c.updateLED()
	case "join": // wl_extjoin_params_t begins with a wlc_ssid_t
		if len(v) < 4 {
			return bcmeBadArg
		}
		n := min(int(u32(0)), 32, len(v)-4)
		s.vars[key] = append([]byte(nil), v...)
		return c.startJoin(string(v[4 : 4+n]))
	case "wsec":
		s.vals[wlcSetWSec] = u32(0)
	case "wpa_auth":
		s.vals[wlcSetWPAAuth] = u32(0)
	case "sae_password": // 16-bit length and 128 bytes
		if len(v) < 2 {
			return bcmeBadArg
		}
		n := min(int(le.Uint16(v)), 128, len(v)-2)
		s.sae = append(s.sae[:0:0], v[2:2+n]...)
	case "bss":
		if u32(1) != 0 {
			c.logOnce("ap", "access point mode (bss up): not modelled, the chip stays a station")
		}
	}
	s.vars[key] = append([]byte(nil), v...)
	return 0
}

func (c *Chip) getVar(key string) []byte {
	s := c.s
	le := binary.LittleEndian
	switch key {
	case "clmload_status": // clmLoad reads it after the download: 0 is success
		var st uint32
		if s.clmErr || s.clmBusy {
			st = 1
		}
		return le.AppendUint32(nil, st)
	case "cur_etheraddr": // initControl reads the MAC with it
		return s.mac[:]
	case "event_msgs":
		return s.evmask[:]
	case "mcast_list":
		out := le.AppendUint32(nil, uint32(len(s.mcast)))
		for _, m := range s.mcast {
			out = append(out, m[:]...)
		}
		return out
	case "gpioout":
		return le.AppendUint32(nil, s.gpioOut)
	case "ver":
		v := s.fwVersion
		if v == "" {
			v = "unknown"
		}
		return []byte("wl0: version " + v + " (picosim model)\n\x00")
	case "clmver":
		return []byte(fmt.Sprintf("CLM blob of %d bytes (picosim model)\x00", s.clmBytes))
	case "country":
		if v, ok := s.vars[key]; ok {
			return v
		}
		return []byte("XX\x00\x00\x00\x00\x00\x00XX\x00\x00")
	}
	return s.vars[key]
}

// clmLoad takes one chunk of the CLM download (the driver's clmLoad): after
// "clmload\0", a download header (flags with version 0x1000, begin 0x2 and
// end 0x4; type 2, CLM; length; CRC) and the chunk. The bytes are counted,
// the blob's "BLOB" magic checked; clmload_status then reads 0.
func (c *Chip) clmLoad(v []byte) int32 {
	s := c.s
	if len(v) < dlHeaderLen {
		s.clmErr = true
		c.logf("clmload: %d bytes, shorter than a download header", len(v))
		return bcmeBadArg
	}
	le := binary.LittleEndian
	flags, typ, n := le.Uint16(v[0:]), le.Uint16(v[2:]), le.Uint32(v[4:])
	chunk := v[dlHeaderLen:]
	switch {
	case flags&0xf000 != dlVersion:
		c.logf("clmload: download handler version %#x, expected 0x1000", flags&0xf000)
		s.clmErr = true
		return bcmeBadArg
	case typ != dlTypeCLM:
		c.logf("clmload: download type %d, not CLM (2)", typ)
		s.clmErr = true
		return bcmeBadArg
	case int(n) != len(chunk):
		c.logf("clmload: header says %d bytes, %d sent", n, len(chunk))
		s.clmErr = true
		return bcmeBadArg
	}
	if flags&dlBegin != 0 {
		s.clmBytes, s.clmBusy, s.clmDone, s.clmErr = 0, true, false, false
		if !bytes.HasPrefix(chunk, []byte(clmBlobMagic)) {
			c.logf("clmload: the blob does not begin with %q", clmBlobMagic)
			s.clmErr = true
		}
	} else if !s.clmBusy {
		c.logf("clmload: a chunk without a download begun")
		s.clmErr = true
		return bcmeBadArg
	}
	s.clmBytes += len(chunk)
	if flags&dlEnd != 0 {
		s.clmBusy, s.clmDone = false, true
		c.logf("CLM loaded: %d bytes", s.clmBytes)
	}
	return 0
}

// resetFirmware forgets what the firmware knew: it starts afresh when the
// WLAN core leaves reset.
func (s *state) resetFirmware() {
	s.fwRunning, s.up, s.joined = false, false, false
	s.ssid, s.bssid = "", [6]byte{}
	s.rxq, s.nData = nil, 0
	s.txSeq, s.hostNext, s.granted = 0, 0, 1
	s.vals = map[uint32]uint32{}
	s.vars = map[string][]byte{}
	s.pmk, s.sae, s.mcast = nil, nil, nil
	s.mac = s.otp
	for i := range s.evmask {
		s.evmask[i] = 0xff
	}
	s.clmBytes, s.clmBusy, s.clmDone, s.clmErr = 0, false, false, false
}
