# picosim — the two commands of a fresh clone:
#   make run    every bundled scenario in the embedded simulator
#   make test   vet and every test (what CI runs)
# Nothing beyond Go 1.26 is needed: tools are run at the versions go.mod pins.

SHELL   := bash
GO      ?= go
GINKGO  := $(GO) tool ginkgo
PICOSIM := $(GO) run ./sim/cmd/picosim

.PHONY: run demo test tools vet ginkgo soak nightly sweep bench bench-baseline fuzz build emulated stress firmware rp2040 rp2040-deps rp2040-bench

# Every bundled scenario (scenarios/*.yaml), a verdict table at the end.
run:
	$(PICOSIM) run scenarios/

# A 5-board cluster whose master loses power at 10 s, as a timeline.
demo:
	$(PICOSIM) cluster --nodes 5 --kill-master-at 10s --duration 40s --seed 7

# Ends with the line "N passed, N failed" (hack/testsum); exits non-zero on
# any failure, including a package that does not build.
# The scenario loader's fuzz target runs FUZZTIME in every test run (no
# input may crash it, issue 14), on one core beside the other tests, which
# spend most of their last minute waiting on emulated boards' wall-clock
# time; its events join the others' in testsum. make fuzz runs it longer.
# GINKGO_NO_COLOR: the log is read in CI's pages and in files, where colour
# codes are noise.
# -p 4: four packages at a time on two cores, because the longest two (the
# firmware's TinyGo builds, the scenarios' emulated boards) would otherwise
# hold both slots for a minute while the CPU idles (about 80 s in all here,
# against 116 s with -p 2).
FUZZTIME ?= 30s
test: tools vet
	set -o pipefail; fuzzlog=$$(mktemp); trap 'rm -f $$fuzzlog' EXIT; \
	export GINKGO_NO_COLOR=TRUE; \
	{ $(GO) test -json -run '^$$' -fuzz FuzzParseScenario -fuzztime $(FUZZTIME) -parallel 1 ./sim/scenario >$$fuzzlog 2>&1 & fuzz=$$!; \
	  $(GO) test -count=1 -p 4 -timeout 30m -json ./...; tests=$$?; wait $$fuzz; fuzzed=$$?; cat $$fuzzlog; \
	  [ $$tests = 0 ] && [ $$fuzzed = 0 ]; } | $(GO) run ./hack/testsum

vet:
	$(GO) vet ./...

# Tools the tests use beyond Go: tshark reads captures back, ip (iproute2)
# runs programs in the door's namespace, shellcheck checks the workflows'
# scripts (with actionlint, which go.mod pins), chromium opens the run
# report's page headless (a screenshot and its DOM), and TinyGo 0.41 builds the
# Pico W image (hack/tinygo-build.sh finds it, or installs it from
# ../shared/toolchains/tinygo: about 3 minutes, once). Debian's packages are
# installed when missing and apt-get is there (CI runs as root); a spec that
# needs a missing tool skips outside CI and fails in it.
tools:
	@hack/tinygo-build.sh --toolchain >/dev/null || echo "no TinyGo: the firmware build specs will be skipped (see hack/tinygo-build.sh --help)"
	@missing=""; command -v tshark >/dev/null 2>&1 || missing="$$missing tshark"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v shellcheck >/dev/null 2>&1 || missing="$$missing shellcheck"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing$$missing and cannot install here: the specs that need them will be skipped"; fi; fi

# The specs through the Ginkgo CLI (labels, focus, -p, reports).
ginkgo:
	$(GINKGO) -r --randomize-all

# 200 seeds each of a failover at 10% loss on the Pico W radio, 7 and 20
# boards: none may fail, and a check a radio fault kept from being judged
# must name it (about 20 s).
soak:
	$(GINKGO) --label-filter=soak ./sim

# The same over ten thousand seeds each (the nightly workflow; about 15
# minutes on two cores).
nightly:
	$(GINKGO) --label-filter=nightly --timeout 2h ./sim

# The failover of picosim cluster over a thousand seeds, as a table of
# outcomes: 7 and 20 boards, 10% loss, the Pico W radio.
sweep:
	$(PICOSIM) sweep --seeds 1-1000 --nodes 7 --kill-master-at 10s --duration 60s --loss 0.1
	$(PICOSIM) sweep --seeds 1-1000 --nodes 20 --kill-master-at 10s --duration 60s --loss 0.1

# Speed and scale, each figure beside its goal (issue 15) and beside the
# stored baseline, a regression of more than 20% in a CPU figure failing it:
# the LAN against bare gVisor stacks, 10 and 50 boards failing over, 1,000
# converging and the CPU growth, control timing, a sweep's estimate (about
# 40 s); then the Go benchmarks, emulated failover included (root).
bench:
	$(PICOSIM) bench --baseline sim/bench/baseline.json
	$(GO) test -run '^$$' -bench . -benchtime 1x ./netsim ./sim ./sim/bench ./node ./sim/targets

# Re-measure sim/bench/baseline.json, which picosim bench --baseline and
# go test -bench ./sim/bench compare with (about 40 s, on an idle machine;
# commit the file).
bench-baseline:
	$(PICOSIM) bench --save-baseline sim/bench/baseline.json --commit "$$(git describe --always --dirty 2>/dev/null || echo unknown)"

# The scenarios on emulated boards and through the hw target on a lab of
# emulated boards, and the targets' own specs (root; about ten minutes).
# make test runs them too, but for the scenarios longer than 90 s of real
# time (RGB under loss: 5 minutes), which run here (PICOSIM_LONG=1).
emulated:
	PICOSIM_LONG=1 $(GINKGO) --label-filter='emulated || hw' ./scenarios ./sim/targets

# The wall-clock specs (emulated, hw) under a load of 15 busy processes,
# three times, then their pass rate (root; LOAD=, RUNS=, FOCUS= change it;
# about half an hour on two cores). The nightly-sim workflow runs it.
stress:
	hack/stress.sh

# The Pico W firmware image, build/picosim-pico-w.uf2, and its size against
# the budgets (flash, static RAM, heap with 64 boards); fails over budget.
# TinyGo 0.41: on the PATH, or installed from ../shared/toolchains/tinygo.
firmware:
	hack/tinygo-build.sh --check

# The shipped image (make firmware) on emulated RP2040s (rp2040js, pinned in
# sim/rp2040/runner/package-lock.json; Node 20), each with a model of its
# CYW43439 on the simulated LAN: the runner's own spec, the chip model
# against the real cyw43439 driver on the host, and the images forming a
# cluster, taking controllers and replaying from a seed (about 2 minutes).
# The nightly-sim workflow runs it. The boot ROM: sim/rp2040/bootrom (BSD-3,
# Raspberry Pi), or PICOSIM_BOOTROM.
rp2040: rp2040-deps
	cd sim/rp2040/runner && node --test
	sim/rp2040/cyw43/drivertest/run.sh
	PICOSIM_RP2040=1 $(GO) test -count=1 -timeout 30m -v ./sim/rp2040
	PICOSIM_RP2040=1 $(GINKGO) --label-filter=rp2040 ./scenarios

rp2040-deps: firmware
	cd sim/rp2040/runner && npm ci --no-audit --no-fund

# Simulated seconds per wall second of 1 and 3 emulated boards, and the wall
# time to their agreement.
rp2040-bench: rp2040-deps
	PICOSIM_RP2040=1 $(GO) test -run '^$$' -bench ShippedImage -benchtime 1x -timeout 30m ./sim/rp2040

# Fuzz the frame decoder and the scenario loader beyond their committed
# corpora, a minute each on every core (make fuzz FUZZTIME=10m for longer).
fuzz: FUZZTIME = 60s
fuzz:
	$(GO) test ./node -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./sim/scenario -run '^$$' -fuzz FuzzParseScenario -fuzztime $(FUZZTIME)

build:
	$(GO) build -buildvcs=auto -o bin/picosim ./sim/cmd/picosim
