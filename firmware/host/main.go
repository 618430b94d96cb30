package host

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/picosim/picosim/node/control"
)

const help = `Usage: hostboard --flash DIR [--name NAME] [--iface IFACE] [--input PIN=LEVEL]...

Runs the picosim firmware as a Linux process: an emulated Raspberry Pi Pico W.
It takes the IPv4 address of a network interface (its "radio"), discovers the
other boards on UDP 37020, takes a role, and serves the control protocol
(piconetcontrol, TCP 12345 or the port of config/config_wlan.json). Its pins
and LED are emulated; its flash is a folder. Every event and, after each
change, the board's state print on standard output, one JSON object a line.

Interrupt or SIGTERM: the board says LEAVE and exits (a clean shutdown).
SIGKILL: a power cut. A reset, an update or a deep sleep boots it again in
the same process, as a new incarnation.

picosim's emulated target runs one per board, each in a network namespace of
its own whose TAP device is on the simulated LAN.

Examples:
  hostboard --flash /tmp/pico1 --name pico1
  ip netns exec lab1 hostboard --flash /var/lib/picosim/pico1 --iface wlan0
  hostboard --flash /tmp/pico2 --input 5=1 | jq -c 'select(.event == "role")'

Flags:
`

// Main is the hostboard command: it returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hostboard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, help); fs.PrintDefaults() }
	var cfg Config
	fs.StringVar(&cfg.Flash, "flash", "", "folder holding the board's flash (created if missing)")
	fs.StringVar(&cfg.Name, "name", "", "the board's name when config/config_node.json gives none (default: the host name)")
	fs.StringVar(&cfg.Iface, "iface", "", "interface to take the address from (default: the first one up with IPv4)")
	fs.Func("input", "level of an input pin, as PIN=0 or PIN=1 (repeatable)", func(s string) error {
		pin, level, ok := strings.Cut(s, "=")
		p, err1 := strconv.Atoi(pin)
		l, err2 := strconv.Atoi(level)
		if !ok || err1 != nil || err2 != nil || p < 0 || p > control.MaxPin || (l != 0 && l != 1) {
			return fmt.Errorf("%q: want PIN=LEVEL, a GPIO of 0 to %d and a level of 0 or 1", s, control.MaxPin)
		}
		if cfg.Inputs == nil {
			cfg.Inputs = map[int]int{}
		}
		cfg.Inputs[p] = l
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.Flash == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hostboard: --flash is required and no arguments are taken\n\n")
		fs.Usage()
		return 2
	}
	cfg.Console = stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "hostboard: %v\n", err)
		return 1
	}
	return 0
}
