#!/usr/bin/env bash
# Runs the real CYW43439 driver (github.com/soypat/cyw43439 v0.2.0) against
# the chip model of sim/rp2040/cyw43, on the host.
#
#   sim/rp2040/cyw43/drivertest/run.sh            # go test -count=1 -parallel 3 .
#   sim/rp2040/cyw43/drivertest/run.sh -v -run 'TestDriver/wpa2'
#
# It vets the module, then tests it; arguments go to `go test` (default
# -count=1 -parallel 3: the cases mostly sleep, as the driver does). The
# module needs lneto v0.4.0, which the module proxy refuses on some
# machines: then the test runs with a copy of go.mod (-modfile) that
# replaces lneto with the source the installed TinyGo ships
# ($TINYGOROOT/lneto), as hack/tinygo-build.sh does for firmware/pico-w;
# go.mod and go.sum are never edited. Without either, the test is skipped
# (exit 0) with a message saying why.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
say() { echo "drivertest/run.sh: $*" >&2; }

# TinyGo's root: $TINYGOROOT, the tinygo on the PATH, or the one
# hack/tinygo-build.sh installs in ~/.cache/picosim.
tinygoroot=${TINYGOROOT:-}
if [ -z "$tinygoroot" ] && command -v tinygo >/dev/null 2>&1; then
	tinygoroot=$(tinygo env TINYGOROOT 2>/dev/null || true)
fi
[ -n "$tinygoroot" ] || tinygoroot="$HOME/.cache/picosim/tinygo-0.41.1"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mod="$work/test.mod"
# The main module by its absolute path: a path with ".." in it hides the
# module boundary from go (see hack/tinygo-build.sh).
sed 's#^replace github.com/picosim/picosim => \.\./\.\./\.\./\.\.$#replace github.com/picosim/picosim => '"$root"'#' "$here/go.mod" >"$mod"
cp "$here/go.sum" "$work/test.sum"

lneto=$(sed -n 's#^\s*github.com/soypat/lneto \(v[^ ]*\).*#\1#p' "$here/go.mod" | head -1)
if GOFLAGS='' go mod download "github.com/soypat/lneto@$lneto" 2>/dev/null; then
	source="lneto $lneto from the module proxy"
elif [ -f "$tinygoroot/lneto/go.mod" ]; then
	echo "replace github.com/soypat/lneto => $tinygoroot/lneto" >>"$mod"
	source="lneto from $tinygoroot/lneto (the module proxy refuses $lneto)"
else
	say "SKIP: the module proxy refuses lneto $lneto and there is no TinyGo copy at $tinygoroot/lneto"
	say "      (hack/tinygo-build.sh --toolchain installs TinyGo 0.41.1, which ships it)"
	exit 0
fi
say "$source"

[ $# -gt 0 ] || set -- -count=1 -parallel 3
cd "$here"
start=$(date +%s.%N)
status=0
GOFLAGS='' go vet -modfile="$mod" . || status=$?
[ "$status" != 0 ] || GOFLAGS='' go test -modfile="$mod" "$@" . || status=$?
say "vet and test took $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s (exit $status)"
exit $status
