// Package entry provides the commands that picosim's targets start as
// processes of their own program, so that a test binary can be them too:
// the emulated board (picosim hostboard) and a lab's power switch
// (picosim lab power).
package entry

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/picosim/picosim/firmware/host"
)

// Reexec runs the command this process was started as, when it is one of
// them ("hostboard", "lab power"), and exits; otherwise it returns. Call it
// first thing in main, or in TestMain of a test binary that opens emulated
// targets or labs.
func Reexec() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "hostboard":
		os.Exit(host.Main(os.Args[2:], os.Stdout, os.Stderr))
	case len(os.Args) > 2 && os.Args[1] == "lab" && os.Args[2] == "power":
		os.Exit(PowerMain(os.Args[3:], os.Stdout, os.Stderr))
	}
}

const powerHelp = `Usage: picosim lab power --socket PATH on|off BOARD

Powers a board of a running 'picosim lab' on or off: the power command the
lab's inventory gives each board, in place of uhubctl or a relay. It returns
once the board's process has been started or killed.

Example:
  picosim lab power --socket /tmp/picosim-lab.sock off pico1

Flags:
`

// PowerMain is the "lab power" command; it returns the exit status.
func PowerMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lab power", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, powerHelp); fs.PrintDefaults() }
	socket := fs.String("socket", "", "the lab's power socket")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *socket == "" || fs.NArg() != 2 || (fs.Arg(0) != "on" && fs.Arg(0) != "off") {
		fs.Usage()
		return 2
	}
	c, err := net.Dial("unix", *socket)
	if err != nil {
		fmt.Fprintf(stderr, "lab power: is the lab running? %v\n", err)
		return 1
	}
	defer c.Close()
	fmt.Fprintf(c, "%s %s\n", fs.Arg(0), fs.Arg(1))
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Fprintf(stderr, "lab power: no answer: %v\n", err)
		return 1
	}
	if reply = strings.TrimSpace(reply); reply != "ok" {
		fmt.Fprintf(stderr, "lab power: %s\n", reply)
		return 1
	}
	return 0
}
