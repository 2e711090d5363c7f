#!/usr/bin/env bash
# The Node.js package's pipelined calls against the C library's, in one run:
#
#   bash bench/node.sh [BUILD_DIR]      (default: build/mingw, built first)
#
# One pipehubd (bench/bench.ini: one client may have 1024 calls forwarded
# to providers, as in bench/run.sh) and two workloads, each the C library
# (`pipehub bench async`, 1024 calls in flight, 64-byte payloads) against
# the same load from Windows Node 22 with client/node
# (tests/wine/node_client.js bench: 1024 in flight, the same 64 bytes,
# every reply checked as the C side checks it), alternating which goes
# first:
#   - sys.echo, answered by the hub itself;
#   - through the hub: a route served by one C provider process
#     (`pipehub bench provide`, the library's provider as in the routed
#     modes), which both callers call in turn.
# Prints msg/s of both and the median of the per-round ratios; the target
# is a third of the C library's rate.
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
wine "$PIPEHUBD" run --pipe "$pipe" --config "$(bench_winpath "$BENCH_ROOT/bench/bench.ini")" \
    2>>"$work/pipehubd.log" &
server_pid=$!
if ! wine "$PIPEHUB" --pipe "$pipe" --timeout 20000 bench pingpong -n 1 \
    >/dev/null 2>>"$work/errors"; then
    echo "node.sh: pipehubd did not start" >&2
    exit 1
fi

# The provider of the routed workload: a process of its own, up for the
# whole run (killed at the end).
route=bench.node.echo
wine "$PIPEHUB" --pipe "$pipe" --timeout 20000 bench provide --route "$route" \
    -d 3600 >"$work/provider.out" 2>>"$work/errors" &
provider_pid=$!
for _ in $(seq 200); do
    grep -q 'state=serving' "$work/provider.out" 2>/dev/null && break
    sleep 0.1
done
if ! grep -q 'state=serving' "$work/provider.out"; then
    echo "node.sh: the provider did not register" >&2
    tail -3 "$work/errors" >&2
    exit 1
fi

c_run() { # KEY [ARGS...]
    local key=$1
    shift
    bench_line "$work/c.$key" async -d "$secs" "$@"
}
node_run() { # KEY N [ROUTE]: N calls
    local out=$work/node.out key=$1
    shift
    rm -f "$out"
    wine "$NODE" "$(bench_winpath "$BENCH_ROOT/tests/wine/node_client.js")" \
        "$(bench_winpath "$BENCH_ROOT/client/node")" "$pipe" \
        "$(bench_winpath "$out")" bench "$@" >>"$work/node.log" 2>&1 </dev/null || true
    line=$(tr -d '\r' <"$out" 2>/dev/null | grep '^bench ' || echo "bench failed")
    echo "  node.$key: $line" >&2
    echo "$line" >>"$work/node.$key"
}
pair() { # ROUND KEY [ROUTE]: the C run and the Node run, alternated by round
    local r=$1 key=$2 n
    shift 2
    local copt=()
    [ $# -gt 0 ] && copt=(--route "$1")
    if [ $((r % 2)) -eq 1 ]; then
        c_run "$key" "${copt[@]}"
        n=$(val msgs " $(tail -1 "$work/c.$key")")
        node_run "$key" "${n:-100000}" "$@"
    else
        n=$(val msgs " $(tail -1 "$work/c.$key" 2>/dev/null)")
        node_run "$key" "${n:-100000}" "$@"
        c_run "$key" "${copt[@]}"
    fi
}

for r in $(seq 1 "$rounds"); do
    echo "round $r of $rounds" >&2
    pair "$r" async
    pair "$r" routed "$route"
done
# (bash would report the kill on stderr.)
{
    kill -KILL "$provider_pid" || true
    wait "$provider_pid" || true
} 2>/dev/null
bench_stop_server

echo
echo "| workload | C library (msg/s) | Node package (msg/s) | Node / C | target |"
echo "|---|---|---|---|---|"
echo "| async sys.echo, 1024 in flight, 64 B | $(median c async msgs_per_s) | $(median node async msgs_per_s) | $(pratio node async c async msgs_per_s) | >= 0.33x |"
echo "| async through the hub (a C provider), 1024 in flight, 64 B | $(median c routed msgs_per_s) | $(median node routed msgs_per_s) | $(pratio node routed c routed msgs_per_s) | >= 0.33x |"
echo
echo "$rounds rounds; ratios are medians of per-round ratios."
