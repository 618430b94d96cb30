package rp2040

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim/rp2040/cyw43"
)

// Quantum is how far a board runs ahead of the LAN (see the package doc):
// the most a frame waits, beyond its link's delay, for a board to see it.
const Quantum = time.Millisecond

// Fleet is the emulated boards of one LAN, run in lockstep with its clock.
type Fleet struct {
	// OnConsole hears each console line of a board (the image's JSON
	// events and its driver's log), at its LAN time.
	OnConsole func(b *Board, at time.Duration, line string)
	// OnPin hears a GPIO output change (not the radio's pins), and the LED
	// (pin LED) that hangs off the radio chip.
	OnPin func(b *Board, at time.Duration, pin, value int)
	// OnReset hears a reset of a board's RP2040 (why: aircr, watchdog).
	OnReset func(b *Board, at time.Duration, why string)
	// OnDown hears that a board's runner failed (it crashed, was killed,
	// or broke the protocol): the board is dark from then on.
	OnDown func(b *Board, err error)
	// Log hears what went wrong that is not a board's doing.
	Log func(string)
	// Seed and each board's name make the board's flash unique ID (which
	// seeds its random numbers): one seed, one run.
	Seed uint64

	lan     *netsim.LAN
	paths   Paths
	dir     string
	boards  []*Board
	at      time.Duration // the board time of the line being handled, on the LAN clock
	ticking bool
	err     error
}

// LED is the pin number OnPin reports the radio chip's GPIO 0 under.
const LED = -1

// NewFleet makes a fleet on lan; dir holds the boards' flash files (a
// board's flash persists there across power cycles and runs).
func NewFleet(lan *netsim.LAN, paths Paths, dir string) *Fleet {
	return &Fleet{lan: lan, paths: paths, dir: dir}
}

// Add attaches a board, powered off, as a wire host on the LAN; profile is
// its radio (nil: ideal). Its flash file is dir/NAME.flash; a new one gets
// the image and files (firmware.FileSettings, say) at the first power-on
// (Factory).
func (f *Fleet) Add(name string, profile *netsim.PicoW, files map[string][]byte) (*Board, error) {
	b := &Board{Name: name, Flash: filepath.Join(f.dir, name+".flash"), fleet: f, files: files}
	h, err := f.lan.AddHost(netsim.HostConfig{Name: name, Off: true, Profile: profile, Wire: func(frame []byte) {
		b.chip.Receive(frame)
	}})
	if err != nil {
		return nil, err
	}
	b.host = h
	var mac [6]byte
	copy(mac[:], h.MAC())
	b.chip = cyw43.New(cyw43.Config{
		MAC: mac,
		// The association is the netsim radio's: a join succeeds when the
		// board's host is on the air (a Pico W radio joins by itself after
		// its join delay; an ideal one at once).
		Join: func(string, []byte) bool { return h.Associated() },
		Send: func(frame []byte) {
			frame = append([]byte(nil), frame...)
			clk := f.lan.Clock()
			clk.AfterFunc(max(f.at-clk.Now(), 0), func() { h.Transmit(frame) })
		},
		LED: func(on bool) {
			if f.OnPin != nil {
				v := 0
				if on {
					v = 1
				}
				f.OnPin(b, f.at, LED, v)
			}
		},
		Log: func(msg string) {
			if f.Log != nil {
				f.Log(name + ": cyw43: " + msg)
			}
		},
	})
	f.boards = append(f.boards, b)
	return b, nil
}

// PowerOn boots a board: its host joins the LAN and its runner starts the
// image from the board's flash (the UF2 on a blank one).
func (f *Fleet) PowerOn(b *Board) error {
	if b.proc != nil {
		return nil
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	if err := Factory(f.paths.UF2, b.Flash, b.files); err != nil {
		return fmt.Errorf("rp2040: %s: %w", b.Name, err)
	}
	if err := b.host.PowerOn(); err != nil {
		return err
	}
	if err := b.start(); err != nil {
		b.dead = err
		return err
	}
	b.dead = nil
	f.tick()
	return nil
}

// PowerOff cuts a board's power: its runner ends (the flash file is kept)
// and its host leaves the LAN.
func (f *Fleet) PowerOff(b *Board) {
	b.stop()
	b.host.PowerOff()
}

// Close powers every board off.
func (f *Fleet) Close() error {
	for _, b := range f.boards {
		f.PowerOff(b)
	}
	return f.err
}

// Err is the first runner failure, if any: the board is dark from then.
func (f *Fleet) Err() error { return f.err }

// tick starts the lockstep if it is not running: every Quantum of LAN
// time each running board's CPU runs to the end of the next quantum.
func (f *Fleet) tick() {
	if f.ticking {
		return
	}
	f.ticking = true
	var step func()
	step = func() {
		clk := f.lan.Clock()
		until := clk.Now() + Quantum
		running := 0
		for _, b := range f.boards {
			if b.proc == nil || b.dead != nil {
				continue
			}
			running++
			if b.idleUntil >= until {
				continue // asleep past this quantum: runTo later covers it exactly
			}
			if err := b.runTo(until); err != nil {
				b.dead = err
				f.err = errors.Join(f.err, err)
				if f.Log != nil {
					f.Log(fmt.Sprint(err))
				}
				b.stop()
				if f.OnDown != nil {
					f.OnDown(b, err)
				}
				running--
			}
		}
		if running == 0 {
			f.ticking = false
			return
		}
		clk.AfterFunc(Quantum, step)
	}
	f.lan.Clock().AfterFunc(0, step)
}
