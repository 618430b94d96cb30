// Command hostboard is the picosim firmware built for Linux: an emulated
// Raspberry Pi Pico W (see package firmware/host). picosim's emulated target
// starts one per board; run it by hand to poke at one:
//
//	hostboard --flash /tmp/pico1 --name pico1
package main

import (
	"os"

	"github.com/picosim/picosim/firmware/host"
)

func main() { os.Exit(host.Main(os.Args[1:], os.Stdout, os.Stderr)) }
