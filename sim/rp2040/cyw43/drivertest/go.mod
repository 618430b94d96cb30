// The real CYW43439 driver (github.com/soypat/cyw43439 v0.2.0, what the
// Pico W firmware is built with) against the chip model of package cyw43,
// on the host. A module of its own, so that the main module never requires
// the driver; `go test ./...` at the repository's root does not enter it.
//
// go.mod and go.sum are complete for the module proxy as it serves everyone
// (lneto v0.4.0, as cyw43439 v0.2.0 asks). Where the proxy refuses lneto
// (these machines), run.sh tests with a copy of this file that replaces
// lneto with the source TinyGo ships (-modfile), as hack/tinygo-build.sh
// does for firmware/pico-w; these two files are never edited by it.
module github.com/picosim/picosim/sim/rp2040/cyw43/drivertest

go 1.26.3

require (
	github.com/picosim/picosim v0.0.0
	github.com/soypat/cyw43439 v0.2.0
)

require (
	github.com/soypat/lneto v0.4.0 // indirect
	github.com/soypat/seqs v0.0.0-20250124201400-0d65bc7c1710 // indirect
	github.com/tinygo-org/pio v0.2.0 // indirect
	golang.org/x/exp v0.0.0-20250711185948-6ae5c78190dc // indirect
)

replace github.com/picosim/picosim => ../../../..
