// Package drivertest runs the real CYW43439 driver, github.com/soypat/cyw43439
// v0.2.0 (the one the Pico W firmware is built with), against the chip
// model of package cyw43 on the host: the driver's host build talks to any
// value with CmdRead, CmdWrite and LastStatus, which a *cyw43.Chip is.
// run.sh runs it.
package drivertest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picosim/picosim/sim/rp2040/cyw43"
	"github.com/soypat/cyw43439"
)

var mac = [6]byte{0x28, 0xcd, 0xc1, 0x0a, 0x0b, 0x0c} // a Pico W's OUI

// board is a chip with the callbacks a board gives it, recorded.
type board struct {
	t    *testing.T
	chip *cyw43.Chip
	dev  *cyw43439.Device
	log  *recorder

	mu      sync.Mutex
	joinOK  bool
	joins   []string
	leaves  int
	sent    [][]byte
	leds    []bool
	chipLog []string
}

func newBoard(t *testing.T, joinOK bool) *board {
	b := &board{t: t, joinOK: joinOK, log: &recorder{}}
	b.chip = cyw43.New(cyw43.Config{
		MAC: mac,
		Join: func(ssid string, pass []byte) bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.joins = append(b.joins, fmt.Sprintf("%s/%s", ssid, pass))
			return b.joinOK
		},
		Leave: func() { b.mu.Lock(); b.leaves++; b.mu.Unlock() },
		Send:  func(f []byte) { b.mu.Lock(); b.sent = append(b.sent, f); b.mu.Unlock() },
		LED:   func(on bool) { b.mu.Lock(); b.leds = append(b.leds, on); b.mu.Unlock() },
		Log:   func(m string) { b.mu.Lock(); b.chipLog = append(b.chipLog, m); b.mu.Unlock() },
	})
	// WL_REG_ON is the chip's power; the chip select has no state worth
	// modelling (each call is one whole transaction).
	b.dev = cyw43439.New(b.chip.Power, func(bool) {}, b.chip)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CYW43_LOG") != "" {
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Logf("chip log:\n  %s", strings.Join(b.chipLog, "\n  "))
			t.Logf("driver log:\n  %s", strings.Join(b.log.lines(), "\n  "))
		}
	})
	return b
}

// init runs the driver's Init and checks what the chip saw: the bus test
// and configuration, the backplane bring-up, the uploads (sizes equal to
// the driver's embedded blobs), the init ioctls and iovars.
func (b *board) init() {
	t := b.t
	cfg := cyw43439.DefaultWifiConfig()
	cfg.Logger = slog.New(b.log)
	start := time.Now()
	if err := b.dev.Init(cfg); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Logf("Init took %v", time.Since(start).Round(time.Millisecond))
	st := b.chip.Stats()
	if want := []string{"off", "bus", "backplane", "firmware", "up"}; !slices.Equal(st.Phases, want) {
		t.Errorf("phases after Init: %v, want %v", st.Phases, want)
	}
	if want := (len(cfg.Firmware) + 3) &^ 3; st.FirmwareBytes != want {
		t.Errorf("firmware upload: %d bytes, want %d (the driver's image of %d, aligned)", st.FirmwareBytes, want, len(cfg.Firmware))
	}
	if !strings.HasPrefix(st.FirmwareVersion, "7.95.") {
		t.Errorf("firmware version %q", st.FirmwareVersion)
	}
	if st.NVRAMWords == 0 || st.NVRAMBytes != 4*st.NVRAMWords {
		t.Errorf("NVRAM: %d bytes for a length word of %d words", st.NVRAMBytes, st.NVRAMWords)
	}
	if !strings.Contains(st.NVRAM, "boardtype=0x0887") || !strings.HasPrefix(st.NVRAM, "NVRAMRev=") {
		t.Errorf("NVRAM text %q", st.NVRAM)
	}
	if st.CLMBytes != len(cfg.CLM) || !st.CLMLoaded {
		t.Errorf("CLM: %d bytes (loaded %v), want the driver's %d", st.CLMBytes, st.CLMLoaded, len(cfg.CLM))
	}
	// initControl and set_power_management, with how often each is sent.
	want := map[string]int{
		"SET_VAR clmload": (len(cfg.CLM) + 1023) / 1024, "GET_VAR clmload_status": 1,
		"SET_VAR bus:txglom": 2, "SET_VAR apsta": 1, "GET_VAR cur_etheraddr": 1, "SET_VAR country": 1,
		"WLC_SET_ANTDIV": 1, "SET_VAR ampdu_ba_wsize": 1, "SET_VAR ampdu_mpdu": 1,
		"SET_VAR bsscfg:event_msgs": 1, "WLC_UP": 1, "WLC_SET_GMODE": 1, "WLC_SET_BAND": 1,
		"SET_VAR pm2_sleep_ret": 1, "SET_VAR bcn_li_bcn": 1, "SET_VAR bcn_li_dtim": 1,
		"SET_VAR assoc_listen": 1, "WLC_SET_PM": 1,
	}
	if !mapsEqual(st.Ioctls, want) {
		t.Errorf("init ioctls:\n got  %v\n want %v", st.Ioctls, want)
	}
	got, err := b.dev.HardwareAddr6()
	if err != nil || got != mac {
		t.Errorf("HardwareAddr6: %x, %v; want the chip's %x", got, err, mac)
	}
}

func (b *board) noDriverErrors() {
	for _, l := range b.log.lines() {
		if strings.HasPrefix(l, "ERROR") || strings.HasPrefix(l, "WARN") {
			b.t.Errorf("driver logged %s", l)
		}
	}
}

// TestDriver: Init, Join (WPA2, open, and one the radio refuses), a frame
// each way, the LED, the link lost. The cases run in parallel: each Init
// sleeps about a second in the driver (its reset and initControl's pauses).
func TestDriver(t *testing.T) {
	t.Run("wpa2", func(t *testing.T) {
		t.Parallel()
		b := newBoard(t, true)
		b.init()

		start := time.Now()
		err := b.dev.Join("picosim", cyw43439.JoinOptions{Passphrase: "picosim-lan"})
		t.Logf("Join took %v", time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("Join: %v", err)
		}
		if !b.dev.IsLinkUp() || b.chip.Phase() != "joined" {
			t.Fatalf("after Join: link up %v, phase %s", b.dev.IsLinkUp(), b.chip.Phase())
		}
		if want := []string{"picosim/picosim-lan"}; !slices.Equal(b.joins, want) {
			t.Errorf("Config.Join asked %v, want %v", b.joins, want)
		}
		st := b.chip.Stats()
		wantEv := []string{"AUTH status=0 reason=0 flags=0", "ASSOC status=0 reason=0 flags=0",
			"LINK status=0 reason=0 flags=1", "JOIN status=0 reason=0 flags=0",
			"SET_SSID status=0 reason=0 flags=0", "PSK_SUP status=6 reason=0 flags=0"}
		if !slices.Equal(st.Events, wantEv) {
			t.Errorf("join events %v, want %v", st.Events, wantEv)
		}
		for _, k := range []string{"SET_VAR ampdu_ba_wsize", "WLC_SET_WSEC", "SET_VAR bsscfg:sup_wpa",
			"SET_VAR bsscfg:sup_wpa2_eapver", "SET_VAR bsscfg:sup_wpa_tmo", "WLC_SET_WSEC_PMK",
			"WLC_SET_INFRA", "WLC_SET_AUTH", "SET_VAR mfp", "WLC_SET_WPA_AUTH", "WLC_SET_SSID"} {
			if st.Ioctls[k] == 0 {
				t.Errorf("join: the chip saw no %s (%v)", k, st.Ioctls)
			}
		}

		// A frame out: byte for byte to Config.Send.
		out := testFrame(0x0800, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac, 300)
		if err := b.dev.SendEth(out); err != nil {
			t.Fatalf("SendEth: %v", err)
		}
		if len(b.sent) != 1 || !bytes.Equal(b.sent[0], out) {
			t.Fatalf("Config.Send got %d frames, want the one sent byte for byte", len(b.sent))
		}

		// A frame in: byte for byte to the RecvEthHandle callback.
		var got [][]byte
		b.dev.RecvEthHandle(func(p []byte) { got = append(got, append([]byte(nil), p...)) })
		in := testFrame(0x0806, mac, [6]byte{2, 0, 0, 0, 0, 1}, 60)
		if !b.chip.Receive(in) {
			t.Fatal("Receive refused a frame")
		}
		if _, err := b.dev.PollOne(); err != nil {
			t.Fatalf("PollOne: %v", err)
		}
		if len(got) != 1 || !bytes.Equal(got[0], in) {
			t.Fatalf("the driver's receive callback got %d frames, want the one given byte for byte", len(got))
		}

		// Bursts: more frames out than the credit window (the chip sends
		// credit), and in up to the chip's queue (32).
		for i := range 40 {
			if err := b.dev.SendEth(testFrame(0x0800, mac, mac, 100+i)); err != nil {
				t.Fatalf("SendEth %d of a burst: %v", i, err)
			}
		}
		if len(b.sent) != 41 {
			t.Errorf("Config.Send got %d frames of a burst of 40 (and 1)", len(b.sent)-1)
		}
		got = nil
		taken := 0
		for i := range 40 {
			if b.chip.Receive(testFrame(0x0800, mac, mac, 60+i)) {
				taken++
			}
		}
		if taken != 32 {
			t.Errorf("Receive took %d frames of 40, want 32 (the queue's bound)", taken)
		}
		for range 40 {
			if _, err := b.dev.PollOne(); err != nil {
				t.Fatalf("PollOne: %v", err)
			}
		}
		if len(got) != 32 {
			t.Fatalf("the driver got %d frames of 32", len(got))
		}
		for i, p := range got {
			if len(p) != 14+60+i {
				t.Fatalf("frame %d of the burst: %d bytes, want %d (in order)", i, len(p), 14+60+i)
			}
		}

		// Multicast: filtered until the host registers the group (cywnet's
		// AcceptMulticast registers mDNS's).
		mdns := [6]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}
		got = nil
		b.chip.Receive(testFrame(0x0800, mdns, mac, 40))
		b.dev.PollOne()
		if err := b.dev.SetMulticastList([][6]byte{mdns}); err != nil {
			t.Fatalf("SetMulticastList: %v", err)
		}
		b.chip.Receive(testFrame(0x0800, mdns, mac, 41))
		b.dev.PollOne()
		if len(got) != 1 || len(got[0]) != 14+41 {
			t.Errorf("multicast: the driver got %d frames, want only the one after SetMulticastList", len(got))
		}

		// The LED on the chip's GPIO 0.
		if err := b.dev.GPIOSet(0, true); err != nil {
			t.Fatalf("GPIOSet: %v", err)
		}
		b.dev.GPIOSet(0, true)
		b.dev.GPIOSet(0, false)
		if want := []bool{true, false}; !slices.Equal(b.leds, want) {
			t.Errorf("Config.LED got %v, want %v", b.leds, want)
		}

		// The association drops: the driver's link goes down at its next poll.
		b.chip.LinkLost()
		b.dev.PollOne()
		if b.dev.IsLinkUp() || b.chip.Phase() != "up" {
			t.Errorf("after LinkLost: link up %v, phase %s", b.dev.IsLinkUp(), b.chip.Phase())
		}
		if err := b.dev.SendEth(out); err == nil {
			t.Errorf("SendEth with the link down: no error")
		}
		// And comes back when the firmware joins again.
		if err := b.dev.Join("picosim", cyw43439.JoinOptions{Passphrase: "picosim-lan"}); err != nil || !b.dev.IsLinkUp() {
			t.Errorf("second Join: %v, link up %v", err, b.dev.IsLinkUp())
		}
		// Power off: the association is left.
		b.chip.Power(false)
		if b.leaves != 1 || b.chip.Phase() != "off" {
			t.Errorf("power off: %d leaves, phase %s", b.leaves, b.chip.Phase())
		}
		b.noDriverErrors()
	})

	t.Run("open", func(t *testing.T) {
		t.Parallel()
		b := newBoard(t, true)
		b.init()
		if err := b.dev.Join("cafe", cyw43439.JoinOptions{}); err != nil || !b.dev.IsLinkUp() {
			t.Fatalf("Join of an open network: %v, link up %v", err, b.dev.IsLinkUp())
		}
		if want := []string{"cafe/"}; !slices.Equal(b.joins, want) {
			t.Errorf("Config.Join asked %v, want %v (no passphrase)", b.joins, want)
		}
		// The firmware's forced rejoin (main.go rejoin: a deaf radio whose
		// link says up): a join while joined replaces the association.
		if err := b.dev.Join("cafe", cyw43439.JoinOptions{}); err != nil || !b.dev.IsLinkUp() {
			t.Fatalf("Join while joined: %v, link up %v", err, b.dev.IsLinkUp())
		}
		if len(b.joins) != 2 || b.leaves != 1 || b.chip.Phase() != "joined" {
			t.Errorf("join while joined: %d joins, %d leaves, phase %s", len(b.joins), b.leaves, b.chip.Phase())
		}
		b.noDriverErrors()
	})

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		b := newBoard(t, false)
		b.init()
		start := time.Now()
		err := b.dev.Join("elsewhere", cyw43439.JoinOptions{Passphrase: "wrong-one"})
		t.Logf("failed Join took %v", time.Since(start).Round(time.Millisecond))
		if err == nil || b.dev.IsLinkUp() {
			t.Fatalf("Join the radio refused: err %v, link up %v", err, b.dev.IsLinkUp())
		}
		if b.chip.Phase() != "up" {
			t.Errorf("phase %s after a failed join, want up", b.chip.Phase())
		}
		if ev := b.chip.Stats().Events; !slices.Equal(ev, []string{"SET_SSID status=3 reason=0 flags=0"}) {
			t.Errorf("events of a failed join: %v", ev)
		}
		if err := b.dev.SendEth(testFrame(0x0800, mac, mac, 60)); err == nil {
			t.Errorf("SendEth after a failed join: no error")
		}
		if b.chip.Receive(testFrame(0x0800, mac, mac, 60)) {
			t.Errorf("Receive took a frame while not joined")
		}
		// The driver's log has the failure as an error of its own: fine.
	})
}

// testFrame is an Ethernet frame with a counting payload.
func testFrame(etherType uint16, dst, src [6]byte, payload int) []byte {
	f := append(append(dst[:], src[:]...), byte(etherType>>8), byte(etherType))
	for i := range payload {
		f = append(f, byte(i*7+payload))
	}
	return f
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// recorder is a slog.Handler that keeps the driver's log at Info and above
// (below Info the driver would read the chip's console through the
// backplane, which the model does not have).
type recorder struct {
	mu  sync.Mutex
	out []string
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	s := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
	r.mu.Lock()
	r.out = append(r.out, s)
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }
func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.out...)
}
