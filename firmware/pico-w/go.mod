// The Pico W adapter of the picosim firmware: TinyGo only (package machine,
// the CYW43439 driver, the lneto stack). A module of its own so that the
// main module never requires TinyGo-only code and `go mod tidy` keeps
// working there; CI builds it with hack/tinygo-build.sh, which runs
// `go mod tidy` here first (lneto comes from the module proxy on GitHub's
// runners, not on every machine).
module github.com/picosim/picosim/firmware/pico-w

go 1.26.3

require (
	github.com/picosim/picosim v0.0.0
	github.com/soypat/cyw43439 v0.2.0
)

replace github.com/picosim/picosim => ../..
