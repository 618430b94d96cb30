package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/picosim/picosim/sim/targets"
)

const inventoryHelp = `Usage: picosim inventory [--run flash|power_off|power_on|power_cycle] [--board NAME]... [--uf2 FILE] FILE

Checks a lab inventory (see hack/lab-inventory.example.yaml) and lists its
boards. With --run, runs a command of every board, or of the boards named,
in the inventory's order, with PICOSIM_BOARD, PICOSIM_ADDRESS and
PICOSIM_UF2 set; it stops at the first command that fails. hack/flash.sh and
hack/power.sh run it.

Examples:
  picosim inventory lab.yaml
  picosim inventory --run power_cycle --board pico2 lab.yaml
  picosim inventory --run flash --uf2 build/picosim-pico-w.uf2 lab.yaml

Flags:
`

func inventoryCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inventory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, inventoryHelp); fs.PrintDefaults() }
	run := fs.String("run", "", "the command to run: flash, power_off, power_on or power_cycle")
	uf2 := fs.String("uf2", "", "the firmware image, for flash (PICOSIM_UF2)")
	var boards []string
	fs.Func("board", "a board to run it for (repeatable; default every board)", func(s string) error { boards = append(boards, s); return nil })
	if code, ok := parseFlags(fs, args, true, stderr); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "picosim inventory: give one inventory file\n\n")
		fs.Usage()
		return 2
	}
	inv, err := targets.LoadInventory(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 2
	}
	for _, b := range boards {
		if _, ok := inv.Board(b); !ok {
			fmt.Fprintf(stderr, "picosim inventory: no board %q in %s\n", b, inv.File)
			return 2
		}
	}
	switch *run {
	case "":
		for _, b := range inv.Boards {
			where := b.Address
			if where == "" {
				where = "mac " + b.MAC
			}
			power := "no power commands"
			if b.PowerOff != "" {
				power = "power: " + b.PowerOff
			}
			fmt.Fprintf(stdout, "%-8s %-24s %s\n", b.Name, where, power)
		}
		return 0
	case "flash":
		if *uf2 == "" {
			fmt.Fprintln(stderr, "picosim inventory: --run flash needs --uf2 FILE")
			return 2
		}
		if _, err := os.Stat(*uf2); err != nil {
			fmt.Fprintf(stderr, "picosim inventory: --uf2: %v\n", err)
			return 2
		}
	case "power_off", "power_on", "power_cycle":
	default:
		fmt.Fprintf(stderr, "picosim inventory: --run %q: flash, power_off, power_on or power_cycle\n", *run)
		return 2
	}
	for _, b := range inv.Boards {
		if len(boards) > 0 && !slices.Contains(boards, b.Name) {
			continue
		}
		steps := map[string][]string{"flash": {b.Flash}, "power_off": {b.PowerOff}, "power_on": {b.PowerOn}, "power_cycle": {b.PowerOff, b.PowerOn}}[*run]
		for i, command := range steps {
			if command == "" {
				fmt.Fprintf(stderr, "picosim inventory: %s has no %s command\n", b.Name, *run)
				return 1
			}
			if i > 0 {
				time.Sleep(2 * time.Second) // let the board's capacitors drain before power returns
			}
			fmt.Fprintf(stdout, "%s: %s\n", b.Name, command)
			c := b.Command(command, "PICOSIM_UF2="+*uf2)
			c.Stdout, c.Stderr = stdout, stderr
			if err := c.Run(); err != nil {
				fmt.Fprintf(stderr, "picosim inventory: %s: %s: %v\n", b.Name, strings.TrimSpace(command), err)
				return 1
			}
		}
	}
	return 0
}
