#!/usr/bin/env bash
# Builds the picosim firmware for the Raspberry Pi Pico W with TinyGo.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: hack/tinygo-build.sh [-o OUT.uf2] [--check]

Builds firmware/pico-w (the picosim firmware: discovery, election and the
piconetcontrol server over the CYW43439 radio) into a UF2 image with
  tinygo build -target=pico-w -scheduler=tasks
It needs TinyGo 0.39 or later on the PATH (https://tinygo.org/getting-started/install/);
Go modules come from the module proxy, as firmware/pico-w/go.mod pins them.

  -o OUT.uf2   where the image goes (default build/picosim-pico-w.uf2)
  --check      print TinyGo's version and the image's size, for CI logs
  -h, --help   this help

Examples:
  hack/tinygo-build.sh
  hack/tinygo-build.sh -o /tmp/fw.uf2 && hack/flash.sh /tmp/fw.uf2
  hack/tinygo-build.sh --check        # what the CI workflow runs
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/picosim-pico-w.uf2"
check=0
while [ $# -gt 0 ]; do
	case "$1" in
	-o) out=$(realpath -m "$2"); shift 2 ;;
	--check) check=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "tinygo-build.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done
if ! command -v tinygo >/dev/null; then
	echo "tinygo-build.sh: tinygo is not on the PATH: install it from https://tinygo.org/getting-started/install/" >&2
	exit 1
fi
mkdir -p "$(dirname "$out")"
cd "$root/firmware/pico-w"
[ "$check" = 1 ] && tinygo version
tinygo build -target=pico-w -scheduler=tasks -size=short -o "$out" .
echo "built $out ($(wc -c <"$out") bytes)"
