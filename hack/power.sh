#!/usr/bin/env bash
# Switches the power of Pico W boards on a USB hub (uhubctl), or as a lab inventory says.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: hack/power.sh --location HUB --port N on|off|cycle
       hack/power.sh --inventory FILE [--board NAME]... on|off|cycle

Cuts or restores a board's power: the harness's power_off and power_on steps
on real boards. A hub with per-port power switching and uhubctl
(https://github.com/mvp/uhubctl; `uhubctl` alone lists hubs and ports) does it
over USB; an inventory may name any command instead (a relay, a smart plug).
"cycle" is off, two seconds, on.

  --location HUB   the hub, as uhubctl lists it (e.g. 1-1)
  --port N         the port the board is on
  --inventory FILE run the boards' power_off/power_on commands from a lab inventory

Examples:
  hack/power.sh --location 1-1 --port 2 off
  hack/power.sh --inventory lab.yaml --board pico2 cycle
  hack/power.sh --inventory lab.yaml on             # every board of the lab
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
location="" port="" inventory="" boards=()
while [ $# -gt 0 ]; do
	case "$1" in
	--location) location="$2"; shift 2 ;;
	--port) port="$2"; shift 2 ;;
	--inventory) inventory="$2"; shift 2 ;;
	--board) boards+=(--board "$2"); shift 2 ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "power.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
	*) break ;;
	esac
done
if [ $# -ne 1 ] || ! [[ "$1" =~ ^(on|off|cycle)$ ]]; then usage >&2; exit 2; fi
action=$1

if [ -n "$inventory" ]; then
	picosim=${PICOSIM:-"go run $root/sim/cmd/picosim"}
	case "$action" in on) run=power_on ;; off) run=power_off ;; cycle) run=power_cycle ;; esac
	exec $picosim inventory --run "$run" "${boards[@]}" "$inventory"
fi
if [ -z "$location" ] || [ -z "$port" ]; then
	echo "power.sh: give --location and --port (uhubctl), or --inventory" >&2
	exit 2
fi
command -v uhubctl >/dev/null || { echo "power.sh: uhubctl is not on the PATH (apt-get install uhubctl)" >&2; exit 1; }
exec uhubctl --location "$location" --ports "$port" --action "$action"
