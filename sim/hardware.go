package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/picosim/picosim/node/control"
)

// PinEvent is one change of a pin (or the LED, pin control.LED) of an
// emulated board.
type PinEvent struct {
	At    time.Duration
	Pin   int
	Value int
	Cause string // setup, write, revert, reset, power (the board lost power), blink
}

// GPIO is the emulated pin bank of a board: GPIO 0..28 and the LED, with
// every change recorded.
type GPIO struct {
	levels  [control.MaxPin + 1]int
	led     int
	history []PinEvent
	blinks  []PinEvent // the LED's last changes, for pattern recognition
}

// Level returns a pin's level now.
func (g *GPIO) Level(pin int) int {
	if pin == control.LED {
		return g.led
	}
	if pin < 0 || pin > control.MaxPin {
		return 0
	}
	return g.levels[pin]
}

// History returns every pin change so far (LED blinks excluded).
func (g *GPIO) History() []PinEvent { return g.history }

// PinHistory returns the changes of one pin.
func (g *GPIO) PinHistory(pin int) []PinEvent {
	var out []PinEvent
	for _, e := range g.history {
		if e.Pin == pin {
			out = append(out, e)
		}
	}
	return out
}

const maxBlinks = 64

func (g *GPIO) set(e PinEvent) {
	if e.Pin == control.LED {
		g.led = e.Value
		g.blinks = append(g.blinks, e)
		if len(g.blinks) > maxBlinks {
			g.blinks = append(g.blinks[:0], g.blinks[len(g.blinks)-maxBlinks:]...)
		}
		return
	}
	g.levels[e.Pin] = e.Value
	g.history = append(g.history, e)
}

// powerLoss drops every pin to 0 and the LED off.
func (g *GPIO) powerLoss(at time.Duration) {
	for pin, v := range g.levels {
		if v != 0 {
			g.set(PinEvent{At: at, Pin: pin, Value: 0, Cause: "power"})
		}
	}
	if g.led != 0 {
		g.set(PinEvent{At: at, Pin: control.LED, Value: 0, Cause: "power"})
	}
}

// LEDPattern names the status pattern the LED has been blinking over its
// last full cycles ("connecting", "idle", "active"), or "" if it matches none,
// for instance because it just changed.
func (g *GPIO) LEDPattern() string {
	if len(g.blinks) < 2 {
		return ""
	}
	var durs []time.Duration
	for i := 1; i < len(g.blinks); i++ {
		durs = append(durs, g.blinks[i].At-g.blinks[i-1].At)
	}
	for _, st := range []control.Status{control.Connecting, control.Idle, control.Active} {
		p := control.Patterns[st]
		if len(durs) < len(p) {
			continue
		}
		tail := durs[len(durs)-len(p):]
		// The tail is some rotation of the pattern.
		for r := range p {
			ok := true
			for i := range p {
				if tail[i] != p[(i+r)%len(p)] {
					ok = false
					break
				}
			}
			if ok {
				return st.String()
			}
		}
	}
	return ""
}

// Flash is a board's emulated flash: files, plus the previous image kept for
// rollback after an update.
type Flash struct {
	files    map[string][]byte
	previous map[string][]byte // the image before the last update
}

func newFlash() *Flash {
	return &Flash{files: map[string][]byte{
		"config/config_wlan.json": []byte(`{"ssid": "picosim", "pwd": "picosim-lan", "port": 12345}`),
		"main.py":                 []byte("# piconetcontrol server, emulated by picosim\n"),
		"VERSION":                 []byte(control.Version),
	}}
}

// File returns a file's content.
func (f *Flash) File(name string) ([]byte, bool) {
	b, ok := f.files[name]
	return b, ok
}

// Version is the version of the running image (its VERSION file).
func (f *Flash) Version() string {
	return strings.TrimSpace(string(f.files["VERSION"]))
}

// install writes an update over the current image, keeping the old one.
func (f *Flash) install(files []control.File) {
	f.previous = map[string][]byte{}
	for k, v := range f.files {
		f.previous[k] = v
	}
	for _, file := range files {
		f.files[file.Name] = file.Content
	}
}

// rollback restores the image before the last update.
func (f *Flash) rollback() bool {
	if f.previous == nil {
		return false
	}
	f.files, f.previous = f.previous, nil
	return true
}

// CrashMarker in main.py makes the emulated firmware fail at boot, so that
// tests can ship a bad image and watch the rollback.
const CrashMarker = "# picosim: crash at boot"

// healthy is the emulated boot's health check: main.py exists, is not
// empty, and does not crash.
func (f *Flash) healthy() error {
	main, ok := f.files["main.py"]
	switch {
	case !ok || len(strings.TrimSpace(string(main))) == 0:
		return fmt.Errorf("main.py is missing or empty")
	case strings.Contains(string(main), CrashMarker):
		return fmt.Errorf("main.py crashed at boot")
	}
	return nil
}
