package firmware

import (
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/picosim/picosim/node"
	"github.com/picosim/picosim/node/apps"
	"github.com/picosim/picosim/node/control"
	"github.com/picosim/picosim/node/mac"
)

// Settings are a board's own, from config/config_node.json in its flash:
//
//	{"name": "pico1", "heartbeat_ms": 1000, "miss_limit": 3, "revert_on_loss": false,
//	 "pins": [{"pin": 2, "mode": "output", "value": 0}],
//	 "apps": [{"app": "rgb-client-robust", "server": "pico3", "interval_ms": 200}]}
//
// The harness writes them: into an emulated board's flash before it starts,
// and to a real board with the control protocol's update action, so that a
// lab's boards take a scenario's names and timings without being flashed
// again. Zero fields keep the defaults of node.Config and control.Config.
type Settings struct {
	Name         string
	Heartbeat    time.Duration
	MissLimit    int
	RevertOnLoss bool
	// NoWatchdog turns off the WiFi watchdog (Watchdog): a board then
	// stays deaf after a radio fault, as the boards of the issues that
	// report them did ("wifi_watchdog": false in the file).
	NoWatchdog bool
	Pins       []PinSetup
	// Apps start at boot (start_app adds one, stop_app removes it).
	Apps []apps.Spec
	// Key, 16 to 32 bytes ("key": hex digits in the file), turns on keyed
	// discovery and keyed control (node/auth.go, node/control/auth.go).
	Key []byte
	// KeyError says why the file's "key" could not be used. A board whose
	// key is unusable fails closed: no discovery, and every command is
	// refused, until the file is fixed (by flashing it: over the network
	// the board takes no command).
	KeyError string
}

// PinSetup is a GPIO the program sets up at boot, before any controller.
type PinSetup struct {
	Pin    int
	Output bool
	Value  int
}

// ReadSettings reads config/config_node.json; a board without one has zero
// Settings.
func ReadSettings(f Flash) (Settings, error) {
	raw, ok := f.ReadFile(FileSettings)
	if !ok {
		return Settings{}, nil
	}
	return ParseSettings(raw)
}

// ParseSettings decodes config_node.json.
func ParseSettings(raw []byte) (Settings, error) {
	var s Settings
	v, err := control.Parse(raw)
	if err != nil || v.Kind != control.Object {
		return s, errors.New(FileSettings + ": not a JSON object")
	}
	bad := func(field string) error { return errors.New(FileSettings + ": bad " + field) }
	for _, f := range v.Fields {
		switch f.Key {
		case "name":
			if f.Val.Kind != control.String {
				return s, bad("name")
			}
			s.Name = f.Val.Str
		case "heartbeat_ms":
			if f.Val.Kind != control.Number || f.Val.Num < 0 {
				return s, bad("heartbeat_ms")
			}
			s.Heartbeat = time.Duration(f.Val.Num * float64(time.Millisecond))
		case "miss_limit":
			if f.Val.Kind != control.Number || f.Val.Num < 0 {
				return s, bad("miss_limit")
			}
			s.MissLimit = int(f.Val.Num)
		case "key":
			k, err := mac.ParseKey(f.Val.Str)
			switch {
			case f.Val.Kind != control.String || err == mac.ErrKeyHex:
				s.KeyError = `"key" must be a string of hex digits`
			case err != nil:
				s.KeyError = `"key" must be 16 to 32 bytes (32 to 64 hex digits), got ` + strconv.Itoa(len(f.Val.Str)/2)
			default:
				s.Key = k
			}
		case "revert_on_loss":
			s.RevertOnLoss = f.Val.Kind == control.Bool && f.Val.Bool
		case "wifi_watchdog":
			s.NoWatchdog = f.Val.Kind == control.Bool && !f.Val.Bool
		case "pins":
			if f.Val.Kind != control.Array {
				return s, bad("pins")
			}
			for _, p := range f.Val.Items {
				pin, ok1 := p.Get("pin")
				mode, ok2 := p.Get("mode")
				value, _ := p.Get("value")
				if !ok1 || !ok2 || pin.Kind != control.Number || (mode.Str != "input" && mode.Str != "output") {
					return s, bad("pins entry " + p.String())
				}
				s.Pins = append(s.Pins, PinSetup{Pin: int(pin.Num), Output: mode.Str == "output", Value: int(value.Num)})
			}
		case "apps":
			if f.Val.Kind != control.Array {
				return s, bad("apps")
			}
			for _, a := range f.Val.Items {
				spec, err := parseApp(a)
				if err != nil {
					return s, errors.New(FileSettings + ": " + err.Error())
				}
				s.Apps = append(s.Apps, spec)
			}
		}
	}
	return s, nil
}

// JSON encodes the settings as config_node.json.
func (s Settings) JSON() []byte {
	v := control.Obj()
	if s.Name != "" {
		v.Set("name", control.Str(s.Name))
	}
	if s.Heartbeat > 0 {
		v.Set("heartbeat_ms", control.Float(float64(s.Heartbeat)/float64(time.Millisecond)))
	}
	if s.MissLimit > 0 {
		v.Set("miss_limit", control.Int(int64(s.MissLimit)))
	}
	if s.NoWatchdog {
		v.Set("wifi_watchdog", control.Boolean(false))
	}
	if s.RevertOnLoss {
		v.Set("revert_on_loss", control.Boolean(true))
	}
	if len(s.Key) > 0 {
		v.Set("key", control.Str(hex.EncodeToString(s.Key)))
	}
	if len(s.Pins) > 0 {
		var pins []control.Value
		for _, p := range s.Pins {
			mode := "input"
			if p.Output {
				mode = "output"
			}
			pins = append(pins, control.Obj(
				control.Field{Key: "pin", Val: control.Int(int64(p.Pin))},
				control.Field{Key: "mode", Val: control.Str(mode)},
				control.Field{Key: "value", Val: control.Int(int64(p.Value))}))
		}
		v.Set("pins", control.List(pins...))
	}
	if len(s.Apps) > 0 {
		var list []control.Value
		for _, a := range s.Apps {
			list = append(list, appJSON(a))
		}
		v.Set("apps", control.List(list...))
	}
	return v.Append(nil)
}

// MinAppInterval is the shortest interval, in milliseconds, an app may be
// given over the network: a controller must not be able to make every board
// flood the LAN.
const MinAppInterval = 50

// parseApp reads an app's spec: an entry of "apps" in the settings, or a
// start_app command (whose "action" it ignores).
func parseApp(v control.Value) (apps.Spec, error) {
	var s apps.Spec
	if v.Kind != control.Object {
		return s, errors.New("an app is an object")
	}
	name, ok := v.Get("app")
	if !ok || name.Kind != control.String {
		return s, errors.New(`an app needs "app", its name`)
	}
	s.App = name.Str
	if _, ok := apps.KindOf(s.App); !ok {
		return s, errors.New("no app " + strconv.Quote(s.App))
	}
	str := func(key string, to *string) error {
		if f, ok := v.Get(key); ok {
			if f.Kind != control.String {
				return errors.New(key + " must be a string")
			}
			*to = f.Str
		}
		return nil
	}
	num := func(key string, to *int) error {
		if f, ok := v.Get(key); ok {
			if f.Kind != control.Number || f.Num < 0 || f.Num > 1e9 {
				return errors.New(key + " must be a number from 0")
			}
			*to = int(f.Num)
		}
		return nil
	}
	var ip string
	var interval int
	for _, err := range []error{str("server", &s.Server), str("server_ip", &ip), str("source", &s.Source), str("target", &s.Target),
		num("interval_ms", &interval), num("source_pin", &s.SourcePin), num("target_pin", &s.TargetPin)} {
		if err != nil {
			return s, errors.New(s.App + ": " + err.Error())
		}
	}
	if interval != 0 && interval < MinAppInterval {
		return s, errors.New(s.App + ": interval_ms " + strconv.Itoa(interval) + " is below " + strconv.Itoa(MinAppInterval) + ": an app must not flood the network")
	}
	s.Interval = time.Duration(interval) * time.Millisecond
	if ip != "" {
		a, ok := node.ParseAddr(ip)
		if !ok {
			return s, errors.New(s.App + ": server_ip " + strconv.Quote(ip) + " is not an IPv4 address")
		}
		s.ServerIP = a
	}
	if s.SourcePin > control.MaxPin || s.TargetPin > control.MaxPin {
		return s, errors.New(s.App + ": pins are 0 to 28")
	}
	return s, nil
}

func appJSON(a apps.Spec) control.Value {
	v := control.Obj(control.Field{Key: "app", Val: control.Str(a.App)})
	for _, f := range [...]struct{ k, v string }{{"server", a.Server}, {"source", a.Source}, {"target", a.Target}} {
		if f.v != "" {
			v.Set(f.k, control.Str(f.v))
		}
	}
	if !a.ServerIP.IsZero() {
		v.Set("server_ip", control.Str(a.ServerIP.String()))
	}
	if a.Interval > 0 {
		v.Set("interval_ms", control.Int(int64(a.Interval/time.Millisecond)))
	}
	if a.Source != "" {
		v.Set("source_pin", control.Int(int64(a.SourcePin)))
		v.Set("target_pin", control.Int(int64(a.TargetPin)))
	}
	return v
}

// WLAN is config/config_wlan.json, piconetcontrol's file: the network to
// join and the control port ("pwd", as the real code spells it).
type WLAN struct {
	SSID, Password string
	Port           uint16
}

// JSON encodes the settings as config_wlan.json.
func (w WLAN) JSON() []byte {
	v := control.Obj(control.Field{Key: "ssid", Val: control.Str(w.SSID)}, control.Field{Key: "pwd", Val: control.Str(w.Password)})
	port := w.Port
	if port == 0 {
		port = control.Port
	}
	v.Set("port", control.Int(int64(port)))
	return v.Append(nil)
}

// DefaultName is the name of a board whose settings give none, from its
// chip's unique ID (a Pico W's flash ID): "pico-" and the ID's last three
// bytes in hex, so that boards fresh from the factory differ.
func DefaultName(id []byte) string {
	const hex = "0123456789abcdef"
	name := []byte("pico")
	if len(id) > 0 {
		name = append(name, '-')
		for _, b := range id[max(0, len(id)-3):] {
			name = append(name, hex[b>>4], hex[b&15])
		}
	}
	return string(name)
}

// ReadWLAN reads config/config_wlan.json; the port defaults to 12345.
func ReadWLAN(f Flash) (WLAN, error) {
	w := WLAN{Port: control.Port}
	raw, ok := f.ReadFile(FileWLAN)
	if !ok {
		return w, errors.New(FileWLAN + " is missing")
	}
	v, err := control.Parse(raw)
	if err != nil || v.Kind != control.Object {
		return w, errors.New(FileWLAN + ": not a JSON object")
	}
	if s, ok := v.Get("ssid"); ok {
		w.SSID = s.Str
	}
	if s, ok := v.Get("pwd"); ok {
		w.Password = s.Str
	}
	if p, ok := v.Get("port"); ok {
		if p.Kind != control.Number || p.Num < 1 || p.Num > 65535 {
			return w, errors.New(FileWLAN + ": bad port " + p.String())
		}
		w.Port = uint16(p.Num)
	}
	return w, nil
}

// nextBoot bumps the boot counter in flash and returns it: the incarnation,
// which must grow with every boot.
func nextBoot(f Flash) (uint32, error) {
	raw, _ := f.ReadFile(FileBoots)
	n, _ := strconv.ParseUint(string(raw), 10, 32)
	n++
	return uint32(n), f.WriteFile(FileBoots, []byte(strconv.FormatUint(n, 10)))
}
