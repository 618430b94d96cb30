package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/picosim/picosim/netsim"
	"github.com/picosim/picosim/sim"
	"github.com/picosim/picosim/sim/check"
	"github.com/picosim/picosim/sim/cmd/entry"
	"github.com/picosim/picosim/sim/targets"
)

const labHelp = `Usage: picosim lab [flags]
       picosim lab power --socket PATH on|off BOARD

Keeps emulated boards running — the firmware built for Linux, one process per
board, each in a network namespace on a simulated LAN (needs root) — and
writes an inventory that lists them as a lab of real boards: their addresses
inside the LAN, the namespace the harness reaches them from, and power
commands ('picosim lab power') that kill and restart their processes. The hw
target then runs against them exactly as against a rack of Pico W boards.
The timeline prints as it happens, until Ctrl-C; everything is removed on
exit.

Examples:
  sudo picosim lab --boards 5 --inventory lab.yaml
  sudo picosim run --target hw --inventory lab.yaml scenarios/     # in another shell
  sudo picosim lab --boards 3 --loss 0.05 --latency 10ms --for 10m --quiet

Flags:
`

func labCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "power" {
		return entry.PowerMain(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, labHelp); fs.PrintDefaults() }
	boards := fs.Int("boards", 3, "number of boards, named pico1..N in address order")
	invPath := fs.String("inventory", "lab.yaml", "where to write the inventory")
	socket := fs.String("socket", filepath.Join(os.TempDir(), fmt.Sprintf("picosim-lab-%d.sock", os.Getpid())), "the power commands' Unix socket")
	heartbeat := fs.Duration("heartbeat", 0, "the boards' heartbeat until a harness configures them (default 1s)")
	radio := netsim.PicoWRadio
	fs.TextVar(&radio, "radio", netsim.PicoWRadio, "the boards' radio: picow (join delay, power saving) or ideal")
	loss := fs.Float64("loss", 0, "probability (0..1) that a board misses a frame")
	latency := fs.Duration("latency", 0, "one-way latency of every frame a board receives")
	jitter := fs.Duration("jitter", 0, "latency varies uniformly by ±jitter")
	seed := fs.Uint64("seed", 1, "seed of the LAN's random choices")
	quiet := fs.Bool("quiet", false, "print the lab's boards only, not the timeline")
	forDur := fs.Duration("for", 0, "stop after this much time (0: run until interrupted)")
	if code, ok := parseFlags(fs, args, false, stderr); !ok {
		return code
	}
	link := netsim.Link{Loss: *loss, Latency: *latency, Jitter: *jitter}
	switch err := link.Validate(); {
	case *boards < 1 || *boards > 64:
		fmt.Fprintf(stderr, "picosim lab: --boards %d: 1 to 64\n", *boards)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "picosim lab: %v\n", err)
		return 2
	}
	if err := targets.CanEmulate(); err != nil {
		fmt.Fprintf(stderr, "picosim lab: %v\n", err)
		return 1
	}
	spec := targets.Spec{Seed: *seed, Heartbeat: *heartbeat, Radio: radio, Link: link}
	for i := range *boards {
		spec.Boards = append(spec.Boards, targets.BoardSpec{Name: fmt.Sprintf("pico%d", i+1)})
	}
	if !*quiet {
		spec.OnEvent = func(e sim.Event) { fmt.Fprintln(stdout, check.Line(e)) }
	}
	lab, err := targets.NewLab(spec, targets.EmulatedConfig{Log: stderr}, *socket)
	if err != nil {
		fmt.Fprintf(stderr, "picosim lab: %v\n", err)
		return 1
	}
	defer lab.Close()
	power, err := targets.PowerCommand(*socket)
	if err != nil {
		fmt.Fprintf(stderr, "picosim lab: %v\n", err)
		return 1
	}
	inv := lab.Inventory(power)
	if err := inv.Write(*invPath); err != nil {
		fmt.Fprintf(stderr, "picosim lab: --inventory: %v\n", err)
		return 1
	}
	defer os.Remove(*invPath)
	fmt.Fprintf(stdout, "picosim lab: %d emulated boards on %v, reached from namespace %s\n", *boards, lab.LAN().Subnet(), inv.Netns)
	for _, b := range inv.Boards {
		fmt.Fprintf(stdout, "  %-8s %-15s process %d in %s\n", b.Name, b.Address, lab.PID(b.Name), lab.Netns(b.Name))
	}
	fmt.Fprintf(stdout, "inventory: %s\nrun the hw target against it:\n  picosim run --target hw --inventory %s scenarios/\nCtrl-C to stop.\n", *invPath, *invPath)
	ctx, stop := untilInterrupted(*forDur)
	defer stop()
	<-ctx.Done()
	fmt.Fprintf(stdout, "picosim lab: stopped after %v\n", lab.Now().Round(time.Millisecond))
	return 0
}
