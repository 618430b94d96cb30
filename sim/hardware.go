package sim

import (
	"time"

	"github.com/picosim/picosim/node/control"
)

// PinEvent is one change of a pin (or the LED, pin control.LED) of an
// emulated board.
type PinEvent struct {
	At    time.Duration
	Pin   int
	Value int
	Cause string // setup, write, revert, reset, app, power (the board lost power or rebooted), blink
}

// GPIO is the emulated pin bank of a board: GPIO 0..28 and the LED, with
// every change recorded.
type GPIO struct {
	levels  [control.MaxPin + 1]int
	inputs  [control.MaxPin + 1]int // what an input pin reads
	led     int
	history []PinEvent
	blinks  []PinEvent // the LED's last changes, for pattern recognition
}

// SetInput sets the level a pin reads when it is an input.
func (g *GPIO) SetInput(pin, level int) {
	if pin >= 0 && pin <= control.MaxPin {
		g.inputs[pin] = level
	}
}

func (g *GPIO) input(pin int) int {
	if pin < 0 || pin > control.MaxPin {
		return 0
	}
	return g.inputs[pin]
}

// said fills in why the last change of a pin happened, as the program
// reports it right after driving the pin.
func (g *GPIO) said(pin int, cause string) {
	for i := len(g.history) - 1; i >= 0; i-- {
		if g.history[i].Pin == pin {
			if g.history[i].Cause == "" {
				g.history[i].Cause = cause
			}
			return
		}
	}
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
