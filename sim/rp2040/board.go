// Package rp2040 runs the shipped Pico W image (the UF2 of `make firmware`)
// on emulated RP2040s, one rp2040js process per board (runner/), each with
// a model of its CYW43439 (cyw43/) whose WiFi is a wire host on a netsim LAN:
// impairments, captures and the Pico W radio apply to its frames as to any
// board's.
//
// Time is the LAN's virtual clock. A Fleet advances its boards in lockstep:
// every Quantum of LAN time it runs each powered board's CPU up to the end
// of the next quantum (the runner executes instructions until its cycle
// count reaches it, skipping idle time), so a board runs at most one quantum
// ahead of the LAN. What the board sends during that quantum enters the LAN
// at the instant the CPU sent it; a frame the LAN delivers reaches the chip
// model at once and the CPU sees it when it next polls. A run is a function
// of the seed, the image and the flash files: two runs give identical
// timelines.
//
// Why the chip model is Go and the runner thin: frames, faults and time
// stay in netsim (one path for a packet, one clock), the model is tested
// against the real driver on the host (cyw43/drivertest), and the runner
// only turns PIO FIFO traffic into the driver's own bus calls.
package rp2040

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/picosim/picosim/internal/tail"
	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim/rp2040/cyw43"
)

// Paths says where the pieces are; Find fills them from the repository.
type Paths struct {
	Runner string // the folder of runner.mjs, with node_modules (npm ci)
	ROM    string // the RP2040 boot ROM (16 KiB)
	UF2    string // the image: build/picosim-pico-w.uf2
	Node   string // the node binary; default "node" on the PATH
}

// Find returns the paths under the repository root: the runner in
// sim/rp2040/runner, the image of `make firmware`, the boot ROM of
// $PICOSIM_BOOTROM or sim/rp2040/bootrom. It says what is missing and how
// to get it.
func Find(root string) (Paths, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return Paths{}, err
	}
	p := Paths{
		Runner: filepath.Join(root, "sim", "rp2040", "runner"),
		UF2:    filepath.Join(root, "build", "picosim-pico-w.uf2"),
		ROM:    os.Getenv("PICOSIM_BOOTROM"),
		Node:   "node",
	}
	if p.ROM == "" {
		p.ROM = filepath.Join(root, "sim", "rp2040", "bootrom", "bootrom-b1.bin")
	}
	var missing []string
	if _, err := os.Stat(filepath.Join(p.Runner, "node_modules", "rp2040js")); err != nil {
		missing = append(missing, "rp2040js (make rp2040 runs npm ci in "+p.Runner+")")
	}
	if _, err := os.Stat(p.UF2); err != nil {
		missing = append(missing, "the image "+p.UF2+" (make firmware)")
	}
	if _, err := os.Stat(p.ROM); err != nil {
		missing = append(missing, "the boot ROM "+p.ROM+" (set PICOSIM_BOOTROM to an RP2040 B1 boot ROM)")
	}
	if _, err := exec.LookPath(p.Node); err != nil {
		missing = append(missing, "node (Node.js 20)")
	}
	if len(missing) > 0 {
		return p, errors.New("rp2040: missing " + strings.Join(missing, "; "))
	}
	return p, nil
}

// Board is one emulated Pico W: an rp2040js process running the image, its
// chip model, and its wire host on the LAN.
type Board struct {
	Name  string
	Flash string            // the board's flash file: settings and updates persist in it
	files map[string][]byte // written into a new flash file (Factory)
	host  *netsim.Host
	chip  *cyw43.Chip
	fleet *Fleet

	proc   *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr *tail.Tail
	base   time.Duration // LAN time of the process's start: board time 0
	dead   error         // the runner failed: the board is dark
	// idleUntil: the CPU sleeps (WFI) until its next alarm then; nothing
	// from outside wakes it (the driver polls the chip), so the lockstep
	// leaves it alone until then: an idle board costs nothing.
	idleUntil time.Duration
}

// Host is the board's host on the LAN.
func (b *Board) Host() *netsim.Host { return b.host }

// Chip is the board's radio chip model.
func (b *Board) Chip() *cyw43.Chip { return b.chip }

// PID is the board's runner process, 0 while the board is off.
func (b *Board) PID() int {
	if b.proc == nil {
		return 0
	}
	return b.proc.Process.Pid
}

// Err is why the board's runner stopped, if it did.
func (b *Board) Err() error { return b.dead }

// line is one protocol line, either way.
type line struct {
	T     string   `json:"t"`
	At    int64    `json:"at,omitempty"`
	Until int64    `json:"until,omitempty"`
	Line  string   `json:"line,omitempty"`
	Pin   int      `json:"pin"`
	Value int      `json:"value"`
	Cmd   uint32   `json:"cmd"`
	Write bool     `json:"write"`
	Words []uint32 `json:"words"`
	N     int      `json:"n"`
	Why   string   `json:"why,omitempty"`
	Idle  int64    `json:"idle,omitempty"` // stopped idle: nothing runs before then
}

// reply is the answer to a cmd line.
type reply struct {
	T      string   `json:"t"`
	Words  []uint32 `json:"words"`
	Status uint32   `json:"status"`
}

// start launches the runner: board time 0 is now on the LAN.
func (b *Board) start() error {
	f := b.fleet
	flash, err := filepath.Abs(b.Flash)
	if err != nil {
		return err
	}
	// The flash chip's unique ID (machine.DeviceID, the RNG's seed): from
	// the fleet's seed and the board's name, so that a run replays.
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", f.Seed, b.Name)
	uid := fmt.Sprintf("%016x", h.Sum64())
	cmd := exec.Command(f.paths.Node, "runner.mjs", "--rom", f.paths.ROM, "--uf2", f.paths.UF2, "--flash", flash, "--uid", uid)
	cmd.Dir = f.paths.Runner
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	b.stderr = &tail.Tail{Keep: 4096}
	cmd.Stderr = b.stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("rp2040: %s: start the runner: %w", b.Name, err)
	}
	b.proc, b.in = cmd, in
	b.out = bufio.NewScanner(out)
	b.out.Buffer(make([]byte, 64<<10), 4<<20)
	b.base, b.idleUntil = f.lan.Clock().Now(), 0
	first, err := b.read()
	if err != nil {
		return err
	}
	if first.T != "ready" {
		return fmt.Errorf("rp2040: %s: the runner said %q first, not ready", b.Name, first.T)
	}
	return nil
}

// stop ends the runner (it saves the flash file) and powers the chip off.
func (b *Board) stop() {
	if b.proc == nil {
		return
	}
	b.send(line{T: "quit"})
	b.in.Close()
	done := make(chan struct{})
	go func() { b.proc.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		b.proc.Process.Kill()
		<-done
	}
	b.proc = nil
	b.chip.Power(false)
}

func (b *Board) send(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = b.in.Write(append(data, '\n'))
	return err
}

func (b *Board) read() (line, error) {
	if !b.out.Scan() {
		err := b.out.Err()
		if err == nil {
			err = io.EOF
		}
		return line{}, fmt.Errorf("rp2040: %s: the runner stopped (%v): %s", b.Name, err, b.stderr.Text())
	}
	var l line
	if err := json.Unmarshal(b.out.Bytes(), &l); err != nil {
		return line{}, fmt.Errorf("rp2040: %s: a line that is not the protocol's: %q", b.Name, b.out.Text())
	}
	return l, nil
}

// runTo runs the board's CPU until LAN time until, carrying out what it
// does: console lines, pins, gSPI transfers to the chip model (whose frames
// enter the LAN at their instants), resets.
func (b *Board) runTo(until time.Duration) error {
	if err := b.send(line{T: "run", Until: int64(until - b.base)}); err != nil {
		return fmt.Errorf("rp2040: %s: %w: %s", b.Name, err, b.stderr.Text())
	}
	f := b.fleet
	for {
		l, err := b.read()
		if err != nil {
			return err
		}
		at := b.base + time.Duration(l.At)
		f.at = at
		switch l.T {
		case "stopped":
			b.idleUntil = 0
			if l.Idle > 0 {
				b.idleUntil = b.base + time.Duration(l.Idle)
			}
			return nil
		case "console":
			if f.OnConsole != nil {
				f.OnConsole(b, at, strings.TrimSuffix(l.Line, "\r"))
			}
		case "gpio":
			switch l.Pin {
			case 23: // WL_REG_ON
				b.chip.Power(l.Value != 0)
			case 25: // the gSPI's chip select
			default:
				if f.OnPin != nil {
					f.OnPin(b, at, l.Pin, l.Value)
				}
			}
		case "cmd":
			r := reply{T: "cmd"}
			if l.Write {
				err = b.chip.CmdWrite(l.Cmd, l.Words)
			} else {
				r.Words = make([]uint32, l.N)
				err = b.chip.CmdRead(l.Cmd, r.Words)
			}
			if err != nil && f.Log != nil {
				f.Log(fmt.Sprintf("%s: gSPI %#08x: %v", b.Name, l.Cmd, err))
			}
			r.Status = b.chip.LastStatus()
			if err := b.send(r); err != nil {
				return fmt.Errorf("rp2040: %s: %w: %s", b.Name, err, b.stderr.Text())
			}
		case "reset":
			// The RP2040 reset: WL_REG_ON is an input again (pulled
			// down), so the chip loses power until the image drives it.
			b.chip.Power(false)
			if f.OnReset != nil {
				f.OnReset(b, at, l.Why)
			}
		}
	}
}
