#!/usr/bin/env bash
# Writes the picosim firmware image to Pico W boards.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: hack/flash.sh [--inventory FILE [--board NAME]...] IMAGE.uf2
       hack/flash.sh --uf2-copy MOUNT IMAGE.uf2

Writes a UF2 image (hack/tinygo-build.sh makes one) to Pico W boards:
  (default)          picotool load -x -f IMAGE on the one board attached over USB:
                     -f reboots a running board into BOOTSEL, -x runs the image after
  --inventory FILE   runs each board's "flash" command from a lab inventory
                     (PICOSIM_UF2 is the image), every board or those of --board
  --uf2-copy MOUNT   copies the image to a board's BOOTSEL drive mounted at MOUNT
                     (hold BOOTSEL while plugging it in) and waits for the board to
                     reboot into it (the drive goes away)

Examples:
  hack/flash.sh build/picosim-pico-w.uf2
  hack/flash.sh --inventory lab.yaml build/picosim-pico-w.uf2
  hack/flash.sh --inventory lab.yaml --board pico3 build/picosim-pico-w.uf2
  hack/flash.sh --uf2-copy /media/$USER/RPI-RP2 build/picosim-pico-w.uf2
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
inventory="" mount="" boards=()
while [ $# -gt 0 ]; do
	case "$1" in
	--inventory) inventory="$2"; shift 2 ;;
	--board) boards+=(--board "$2"); shift 2 ;;
	--uf2-copy) mount="$2"; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "flash.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
	*) break ;;
	esac
done
if [ $# -ne 1 ]; then usage >&2; exit 2; fi
image=$(realpath "$1")
[ -f "$image" ] || { echo "flash.sh: no image $1 (hack/tinygo-build.sh makes one)" >&2; exit 2; }

if [ -n "$inventory" ]; then
	picosim=${PICOSIM:-"go run $root/sim/cmd/picosim"}
	exec $picosim inventory --run flash --uf2 "$image" "${boards[@]}" "$inventory"
fi
if [ -n "$mount" ]; then
	[ -f "$mount/INFO_UF2.TXT" ] || { echo "flash.sh: $mount is not a board's BOOTSEL drive (no INFO_UF2.TXT)" >&2; exit 1; }
	cp "$image" "$mount/" && sync
	for _ in $(seq 100); do [ -e "$mount/INFO_UF2.TXT" ] || { echo "flashed $image"; exit 0; }; sleep 0.1; done
	echo "flash.sh: the board did not reboot after the copy (is the drive still mounted at $mount?)" >&2
	exit 1
fi
command -v picotool >/dev/null || { echo "flash.sh: picotool is not on the PATH (https://github.com/raspberrypi/picotool)" >&2; exit 1; }
exec picotool load -x -f "$image"
