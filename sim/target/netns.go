package target

import (
	"os"

	"github.com/picosim/picosim/firmware/host"
)

// Reexec runs the commands a target starts in its own program, when this
// process is one: the hostboard of the emulated target and the power
// command of a lab (picosim's "hostboard" and "lab power"). Call it first
// thing in TestMain of a test binary that opens emulated targets or labs;
// it does not return when it ran one.
func Reexec() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "hostboard":
		os.Exit(host.Main(os.Args[2:], os.Stdout, os.Stderr))
	case len(os.Args) > 2 && os.Args[1] == "lab" && os.Args[2] == "power":
		os.Exit(PowerMain(os.Args[3:], os.Stdout, os.Stderr))
	}
}
