#!/usr/bin/env bash
# stress.sh — the specs that run in wall-clock time (emulated boards, and the
# hw target on a lab of emulated boards) under a load of LOAD busy processes
# (default 15: about what a shared CI runner shows at its worst), RUNS times
# (default 3), then the pass rate. Needs root, as the emulated boards do.
#
#   hack/stress.sh                  # 3 runs at load 15
#   LOAD=30 RUNS=10 hack/stress.sh
#   FOCUS='master failure' hack/stress.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
LOAD=${LOAD:-15}
RUNS=${RUNS:-3}
FOCUS=${FOCUS:-}
case $LOAD$RUNS in *[!0-9]*) echo "stress.sh: LOAD and RUNS are counts" >&2; exit 2 ;; esac

pids=()
stop() { ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; }
trap stop EXIT
trap 'exit 130' INT TERM
for ((i = 0; i < LOAD; i++)); do
	(while :; do :; done) &
	pids+=($!)
done
echo "load: $LOAD busy processes on $(nproc) cores"

args=(--label-filter='emulated || hw')
[ -n "$FOCUS" ] && args+=(--focus "$FOCUS")
passed=0 failed=0
for ((run = 1; run <= RUNS; run++)); do
	log=$(mktemp)
	start=$SECONDS
	if PICOSIM_LONG=${PICOSIM_LONG:-} go tool ginkgo --no-color "${args[@]}" ./scenarios ./sim/targets >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "run $run: passed in $((SECONDS - start)) s"
	else
		failed=$((failed + 1))
		echo "run $run: FAILED in $((SECONDS - start)) s; the failures:"
		grep -E '\[FAIL\]|replay:' "$log" | sort -u | sed 's/^/    /'
	fi
	grep -E 'Ran [0-9]+ of [0-9]+ Specs' "$log" | sed 's/^/    /'
	rm -f "$log"
done
echo "pass rate at load $LOAD: $passed of $RUNS runs"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
