// The Pico W adapter of the picosim firmware: TinyGo only (package machine,
// the CYW43439 driver, the lneto stack). A module of its own, so that the
// main module never requires TinyGo-only code.
//
// go.mod and go.sum are complete for the module proxy as it serves
// everyone (lneto v0.4.0, as cyw43439 v0.2.0 asks). Where the proxy refuses
// lneto v0.4.0 (these machines), hack/tinygo-build.sh builds with a copy of
// this file that replaces lneto with TinyGo's shipped source (-modfile), and
// never edits these two files. `go mod tidy -e` here, with such a copy,
// refreshes them (hack/tinygo-build.sh --tidy).
module github.com/picosim/picosim/firmware/pico-w

go 1.26.3

require (
	github.com/picosim/picosim v0.0.0
	github.com/soypat/cyw43439 v0.2.0
	github.com/soypat/lneto v0.4.0
)

require (
	github.com/soypat/seqs v0.0.0-20250124201400-0d65bc7c1710 // indirect
	github.com/tinygo-org/pio v0.2.0 // indirect
	golang.org/x/exp v0.0.0-20250711185948-6ae5c78190dc // indirect
)

replace github.com/picosim/picosim => ../..
