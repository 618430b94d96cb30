#!/usr/bin/env bash
# Builds the picosim firmware for the Raspberry Pi Pico W with TinyGo, and
# checks it against its budgets.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: hack/tinygo-build.sh [options]

Builds firmware/pico-w (discovery, election and the piconetcontrol server over
the CYW43439 radio) into a UF2 image with
  tinygo build -target=pico-w -scheduler=tasks
prints its size against the budgets, and fails when one is broken or the
module files are not tidy.

TinyGo 0.41 or later (the first that accepts Go 1.26): the one on the PATH, else
the one ../shared/toolchains/tinygo/install.sh built (in ~/.cache/picosim), else
that installer is run (root; about 3 minutes once). Elsewhere, install TinyGo
0.41.1 from https://tinygo.org/getting-started/install/.

lneto: firmware/pico-w/go.mod asks for v0.4.0. Where the module proxy refuses it,
the build uses the lneto shipped with that TinyGo ($TINYGOROOT/lneto) through a
copy of go.mod (-modfile); go.mod and go.sum are never edited.

Options:
  -o OUT.uf2          where the image goes (default build/picosim-pico-w.uf2)
  --ssid NAME         the WiFi a blank flash joins (default picosim)
  --password PASS     its password (default picosim-lan)
  --max-flash BYTES   flash budget (default 1048576: 1 MiB of the RP2040's 2 MiB)
  --max-ram BYTES     static RAM budget (default 32768: 32 KiB of its 264 KiB)
  --no-heap           skip the heap figure (go test ./firmware -run HeapBudget)
  --dir DIR           the module to build (default firmware/pico-w; for tests)
  --tidy              rewrite go.mod and go.sum of the module as go mod tidy would
  --toolchain         only find (or install) TinyGo and print where it is
  --no-install        never run the installer: fail when no TinyGo is found
  --check             also print TinyGo's version (what CI logs)
  -h, --help          this help

Exit status: 0 built within budget; 1 a compile error, a broken budget or
untidy module files; 2 bad arguments.

Examples:
  hack/tinygo-build.sh                                 # make firmware
  hack/tinygo-build.sh --ssid lab --password s3cret -o /tmp/lab.uf2
  hack/tinygo-build.sh -o /tmp/fw.uf2 && hack/flash.sh /tmp/fw.uf2
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/picosim-pico-w.uf2"
dir="$root/firmware/pico-w"
ssid="" password="" check=0 tidy=0 heap=1 toolchain=0 install=1
max_flash=$((1 << 20)) max_ram=$((32 << 10))
while [ $# -gt 0 ]; do
	case "$1" in
	-o) out=$(realpath -m "${2:?-o needs a file}"); shift 2 ;;
	--ssid) ssid=${2?--ssid needs a name}; shift 2 ;;
	--password) password=${2?--password needs a value}; shift 2 ;;
	--max-flash) max_flash=${2:?--max-flash needs bytes}; shift 2 ;;
	--max-ram) max_ram=${2:?--max-ram needs bytes}; shift 2 ;;
	--dir) dir=$(realpath "${2:?--dir needs a folder}"); shift 2 ;;
	--no-heap) heap=0; shift ;;
	--tidy) tidy=1; shift ;;
	--check) check=1; shift ;;
	--toolchain) toolchain=1; shift ;;
	--no-install) install=0; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "tinygo-build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
if [ -n "$password" ] && [ -z "$ssid" ]; then echo "tinygo-build.sh: --password needs --ssid" >&2; exit 2; fi
case "$max_flash$max_ram" in *[!0-9]*) echo "tinygo-build.sh: budgets are whole numbers of bytes" >&2; exit 2 ;; esac
say() { echo "tinygo-build.sh: $*" >&2; }

# --- TinyGo -------------------------------------------------------------------
version_ok() { # tinygo version 0.41.1 linux/amd64 (...)
	local v minor
	v=$("$1" version 2>/dev/null | awk '{print $3}') || return 1
	minor=${v#0.}; minor=${minor%%.*}
	[[ $v == 0.* && $minor =~ ^[0-9]+$ && $minor -ge 41 ]]
}
shared="$root/../shared/toolchains/tinygo/install.sh"
cached="$HOME/.cache/picosim/tinygo-0.41.1"
tinygo=""
if command -v tinygo >/dev/null && version_ok tinygo; then
	tinygo=$(command -v tinygo)
elif [ -x "$cached/build/tinygo" ] && version_ok "$cached/build/tinygo"; then
	tinygo="$cached/build/tinygo"
	export TINYGOROOT=$cached
elif [ -x "$shared" ] && [ "$install" = 1 ]; then
	command -v tinygo >/dev/null && say "$(tinygo version) is too old for Go 1.26: installing 0.41.1"
	eval "$("$shared" "$cached")"
	tinygo="$cached/build/tinygo"
else
	say "no TinyGo 0.41 or later: install TinyGo 0.41.1 (https://tinygo.org/getting-started/install/)"
	exit 1
fi
[ -n "${TINYGOROOT:-}" ] || TINYGOROOT=$("$tinygo" env TINYGOROOT)
export TINYGOROOT
if [ "$toolchain" = 1 ]; then
	echo "$tinygo"
	exit 0
fi
[ "$check" = 1 ] && "$tinygo" version

# --- modules ------------------------------------------------------------------
# The build's own copy of go.mod: the main module by an absolute, clean path
# (a path with ".." in it hides the module boundary from go and makes the
# import of firmware/pico-w ambiguous), and lneto from TinyGo when the proxy
# refuses v0.4.0.
cd "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mod="$work/build.mod"
sed 's#^replace github.com/picosim/picosim => \.\./\.\.$#replace github.com/picosim/picosim => '"$root"'#' go.mod >"$mod"
cp go.sum "$work/build.sum" 2>/dev/null || : >"$work/build.sum"
# The lneto the module graph asks for (go.mod files only: no download of lneto itself).
lneto=$(GOFLAGS= go list -modfile="$mod" -mod=mod -m -f '{{.Version}}' github.com/soypat/lneto 2>/dev/null || true)
if [ -z "$lneto" ]; then
	source="no lneto"
elif GOFLAGS= go mod download "github.com/soypat/lneto@$lneto" 2>/dev/null; then
	source="lneto $lneto from the module proxy"
elif [ -d "$TINYGOROOT/lneto" ]; then
	echo "replace github.com/soypat/lneto => $TINYGOROOT/lneto" >>"$mod"
	source="lneto from $TINYGOROOT/lneto (the module proxy refuses $lneto here)"
else
	say "the module proxy refuses lneto $lneto and $TINYGOROOT/lneto is missing (../shared/toolchains/tinygo/install.sh ships it)"
	exit 1
fi

# go.mod and go.sum must be what go mod tidy makes of them, lneto's own lines
# aside, so that machines with the real proxy build the committed files.
tidy_mod="$work/tidy.mod"
cp "$mod" "$tidy_mod"
cp "$work/build.sum" "$work/tidy.sum"
GOFLAGS= go mod tidy -e -modfile="$tidy_mod" >/dev/null 2>&1 || true
# Compared without replace lines (the build's copy has its own), and go.sum
# without lneto's lines (a replaced lneto has none).
strip() { grep -v '^replace ' "$1" | sed '/^$/d'; }
sums() { grep -v 'soypat/lneto' "$1" | sed '/^$/d'; }
if [ "$tidy" = 1 ]; then
	{ grep -v '^replace ' "$tidy_mod"; echo "replace github.com/picosim/picosim => ../.."; } | cat -s >go.mod
	lneto=$(sed -n 's#^\s*github.com/soypat/lneto \(v[^ ]*\).*#\1#p' go.mod | head -1)
	[ -z "$lneto" ] || sums=$(curl -fsS "https://proxy.golang.org/sumdb/sum.golang.org/lookup/github.com/soypat/lneto@$lneto" | grep '^github.com/soypat/lneto ') ||
		{ say "cannot read lneto $lneto's checksums from sum.golang.org (through the proxy)"; exit 1; }
	{ grep -v soypat/lneto "$work/tidy.sum"; [ -z "$lneto" ] || echo "$sums"; } | sed '/^$/d' | sort -u >go.sum
	say "go.mod and go.sum rewritten (lneto $lneto's checksums from sum.golang.org)"
elif ! diff -q <(strip go.mod) <(strip "$tidy_mod") >/dev/null || ! diff -q <(sums "$work/build.sum") <(sums "$work/tidy.sum") >/dev/null; then
	say "$(basename "$dir")/go.mod or go.sum is not what go mod tidy makes of it (hack/tinygo-build.sh --tidy rewrites them):"
	diff <(strip go.mod) <(strip "$tidy_mod") >&2 || true
	diff <(sums "$work/build.sum") <(sums "$work/tidy.sum") >&2 || true
	exit 1
fi
if [ -n "$lneto" ] && ! grep -q "^github.com/soypat/lneto $lneto h1:" "$work/build.sum"; then
	say "go.sum has no checksum for lneto $lneto: machines with the real proxy could not build it"
	exit 1
fi

# --- build --------------------------------------------------------------------
ldflags=""
for kv in "ssid=$ssid" "password=$password"; do
	[ -n "${kv#*=}" ] || continue
	case "$kv" in *"'"*) say "--${kv%%=*} cannot hold a single quote"; exit 2 ;; esac
	ldflags+=" -X 'main.$kv'"
done
mkdir -p "$(dirname "$out")"
log="$work/build.log"
start=$(date +%s)
if ! GOFLAGS="-modfile=$mod -mod=mod" "$tinygo" build -target=pico-w -scheduler=tasks -size=short \
	${ldflags:+-ldflags "$ldflags"} -o "$out" . >"$log" 2>&1; then
	cat "$log" >&2
	say "the build failed ($source)"
	exit 1
fi
secs=$(($(date +%s) - start))
# -size=short ends with: "   code    data     bss |   flash     ram" and the figures.
read -r _ _ _ _ flash ram < <(tail -1 "$log")
case "$flash$ram" in *[!0-9]*|"") cat "$log" >&2; say "cannot read the size table"; exit 1 ;; esac

pct() { echo $(($1 * 100 / $2)); }
fmt() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
broken=0
row() { # name, used, budget, capacity
	local mark=ok
	[ "$2" -le "$3" ] || { mark="OVER BUDGET"; broken=1; }
	printf "  %-12s %10s bytes   budget %10s (%3d%%)   RP2040 %10s   %s\n" "$1" "$(fmt "$2")" "$(fmt "$3")" "$(pct "$2" "$3")" "$(fmt "$4")" "$mark"
}
echo "built $out in ${secs}s ($("$tinygo" version | awk '{print "TinyGo", $3}'), $source)"
echo "$(fmt "$(wc -c <"$out")") bytes of UF2"
row "flash" "$flash" "$max_flash" $((2 << 20))
row "static RAM" "$ram" "$max_ram" $((264 << 10))
if [ "$heap" = 1 ]; then
	# The heap a board's program needs in a cluster of 64, measured on the
	# host build (firmware's TestHeapBudget, which fails on its own when over).
	heaplog=$(cd "$root" && go test ./firmware -run '^TestHeapBudget$' -count=1 -v 2>&1) || true
	if read -r used budget detail < <(echo "$heaplog" | sed -n 's/.*heap budget: //p' | head -1) && [ -n "$detail" ]; then
		row "heap (64)" "$used" "$budget" $((264 << 10))
		echo "               ($detail)"
	else
		echo "$heaplog" >&2
		say "the heap budget test failed: go test ./firmware -run TestHeapBudget -v"
		broken=1
	fi
fi
if [ "$broken" = 1 ]; then
	say "a budget is broken"
	exit 1
fi
