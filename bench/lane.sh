#!/usr/bin/env bash
# The shared-memory lane against the pipe, and against memcpy, in one run:
#
#   bash bench/lane.sh [BUILD_DIR]     (default: build/mingw, built first)
#
# One pipehubd with max_frame_bytes raised to 17 MiB (so the pipe side can
# carry 16 MiB too) and send_queue_bytes at 64 MiB. Each round runs, back to
# back: sys.echo ping-pong with the library's lane, the same with --no-lane
# (the pipe), and a plain memcpy of the same bytes (the floor), for 1 MiB and
# 16 MiB; a routed 16 MiB call (caller -> hub -> provider -> hub -> caller)
# with and without lanes; and 64-byte ping-pong both ways (small frames never
# use the lane: the two should agree within noise). Ratios are medians of
# per-round ratios, so drift between rounds cancels.
#
# PH_BENCH_SECONDS (default 3) per run, PH_BENCH_ROUNDS (default 3).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
secs=${PH_BENCH_SECONDS:-3}
rounds=${PH_BENCH_ROUNDS:-3}
bench_session "${1:-}"

pipe=ph-bench-lane-$$
cat >"$work/lane.ini" <<'EOF'
[server]
max_frame_bytes = 17825792
[limits]
send_queue_bytes = 67108864
EOF

wine "$PIPEHUBD" run --pipe "$pipe" --config "$(bench_winpath "$work/lane.ini")" \
    2>>"$work/pipehubd.log" &
server_pid=$!
if ! wine "$PIPEHUB" --pipe "$pipe" --timeout 20000 bench pingpong -n 1 \
    >/dev/null 2>>"$work/errors"; then
    echo "lane.sh: pipehubd did not start" >&2
    tail -5 "$work/pipehubd.log" >&2
    exit 1
fi

# run KEY ARGS...: one bench run; its line goes to $work/KEY.
run() { bench_line "$work/$1" "${@:2}"; }

for r in $(seq 1 "$rounds"); do
    echo "round $r of $rounds" >&2
    for s in 1048576 16777216; do
        run "lane.$s" big -s "$s" -d "$secs"
        run "pipe.$s" big -s "$s" -d "$secs" --no-lane
        run "memcpy.$s" memcpy -s "$s" -d "$secs"
    done
    run routed.lane routed -s 16777216 -d "$secs"
    run routed.pipe routed -s 16777216 -d "$secs" --no-lane
    # Small frames never use a lane; which runs first alternates, since the
    # first of two back-to-back runs is often a little faster here.
    if [ $((r % 2)) -eq 1 ]; then
        run small.lane pingpong -s 64 -d "$secs"
        run small.pipe pingpong -s 64 -d "$secs" --no-lane
    else
        run small.pipe pingpong -s 64 -d "$secs" --no-lane
        run small.lane pingpong -s 64 -d "$secs"
    fi
done
bench_stop_server

us() { # round trips/s -> microseconds per round trip
    awk -v r="$1" 'BEGIN { if (r == "-" || r + 0 == 0) print "-"; else printf "%.0f\n", 1e6 / r }'
}

echo
echo "| workload | lane (round trips/s) | pipe (round trips/s) | lane / pipe | target | lane us per round trip | memcpy us per copy |"
echo "|---|---|---|---|---|---|---|"
for s in 1048576 16777216; do
    l=$(median lane "$s" msgs_per_s) p=$(median pipe "$s" msgs_per_s)
    target=5
    [ "$s" = 16777216 ] && target=10
    echo "| sys.echo $((s / 1048576)) MiB | $l | $p | $(pratio lane "$s" pipe "$s" msgs_per_s) | ${target}x | $(us "$l") | $(median memcpy "$s" us_per_msg) |"
done
l=$(median routed lane msgs_per_s) p=$(median routed pipe msgs_per_s)
echo "| routed 16 MiB call | $l | $p | $(pratio routed lane routed pipe msgs_per_s) | 5x | $(us "$l") | $(median memcpy 16777216 us_per_msg) (one copy) |"
l=$(median small lane msgs_per_s) p=$(median small pipe msgs_per_s)
echo "| 64 B ping-pong | $l | $p | $(pratio small lane small pipe msgs_per_s) | 1x within noise | $(us "$l") | - |"
echo
echo "$rounds rounds of ${secs} s runs; ratios are medians of per-round ratios."
