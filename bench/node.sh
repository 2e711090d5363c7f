#!/usr/bin/env bash
# The Node.js package's pipelined calls against the C library's, in one run:
#
#   bash bench/node.sh [BUILD_DIR]      (default: build/mingw, built first)
#
# One pipehubd; each round runs `pipehub bench async` (the C library, 1024
# calls in flight, 64-byte sys.echo) and the same load from Windows Node 22
# with client/node (tests/wine/node_client.js bench: 1024 in flight),
# alternating which goes first. Prints msg/s of both and the median of the
# per-round ratios; the target is a third of the C library's rate.
#
# PH_BENCH_ROUNDS (default 3), PH_BENCH_SECONDS (default 3: the C runs;
# the Node runs send as many calls as the C run of the same round managed
# in that time, so both last about as long).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
secs=${PH_BENCH_SECONDS:-3}
rounds=${PH_BENCH_ROUNDS:-3}
bench_session "${1:-}"
(source "$BENCH_ROOT/scripts/common.sh" && ph_node_win) >&2
NODE=$BENCH_ROOT/build/node-win/package/bin/node.exe
wine reg add 'HKCU\Software\Wine\AppDefaults\node.exe' /v Version /d win10 /f \
    >/dev/null 2>&1 </dev/null || true

pipe=ph-bench-node-$$
wine "$PIPEHUBD" run --pipe "$pipe" 2>>"$work/pipehubd.log" &
server_pid=$!
if ! wine "$PIPEHUB" --pipe "$pipe" --timeout 20000 bench pingpong -n 1 \
    >/dev/null 2>>"$work/errors"; then
    echo "node.sh: pipehubd did not start" >&2
    exit 1
fi

c_run() { bench_line "$work/c.async" async -d "$secs"; }
node_run() { # N: N calls
    local out=$work/node.out
    rm -f "$out"
    wine "$NODE" "$(bench_winpath "$BENCH_ROOT/tests/wine/node_client.js")" \
        "$(bench_winpath "$BENCH_ROOT/client/node")" "$pipe" \
        "$(bench_winpath "$out")" bench "$1" >>"$work/node.log" 2>&1 </dev/null || true
    line=$(tr -d '\r' <"$out" 2>/dev/null | grep '^bench ' || echo "bench failed")
    echo "  node.async: $line" >&2
    echo "$line" >>"$work/node.async"
}

for r in $(seq 1 "$rounds"); do
    echo "round $r of $rounds" >&2
    if [ $((r % 2)) -eq 1 ]; then
        c_run
        n=$(val msgs " $(tail -1 "$work/c.async")")
        node_run "${n:-100000}"
    else
        n=$(val msgs " $(tail -1 "$work/c.async")")
        node_run "${n:-100000}"
        c_run
    fi
done
bench_stop_server

echo
echo "| workload | C library (msg/s) | Node package (msg/s) | Node / C | target |"
echo "|---|---|---|---|---|"
echo "| async sys.echo, 1024 in flight, 64 B | $(median c async msgs_per_s) | $(median node async msgs_per_s) | $(pratio node async c async msgs_per_s) | >= 0.33x |"
echo
echo "$rounds rounds; ratios are medians of per-round ratios."
