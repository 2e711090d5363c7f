#!/usr/bin/env bash
# Soak test: one pipehubd, MINUTES of churning connections, calls,
# routed calls, events and abusive clients, watching the server's handle
# count and private bytes. Not part of the test command.
#
#   bash bench/soak.sh MINUTES [BUILD_DIR]   (default build/mingw, built first)
#
# The server runs with deadlines shortened so that abuse cycles quickly
# (first_frame_timeout_ms 1000, frame_timeout_ms 2000, send_stall_timeout_ms
# 2000, send_queue_bytes 65536, max_connections_per_user 200). The load is
# `pipehub bench` (bench/loadgen.c), in cycles of PH_SOAK_CYCLE seconds
# (default 20). In each cycle these run at once, each its own process:
#   legitimate: churn (connect, call, close), clients -c 4 (sys.echo round
#     trips), routed -c 2 (round trips through a provided route),
#     routed-async (pipelined calls to a provided route), fanout (1 publisher,
#     20 subscribers, and one more that subscribes and never reads),
#     idle-sub (40 idle connections with a subscription each)
#   abusive: connect-and-close, silent clients (never send a frame),
#     slowloris (a frame begun and fed a byte every 250 ms), non-readers
#     (requests, replies never read)
# and then, alone (under Wine every client is the same account, so it would
# refuse the legitimate ones too), a flood of connections up to
# max_connections_per_user, which must end in ERROR BUSY.
#
# The server is measured with `pipehub call sys.process` (handles,
# private_bytes) between cycles, when the cycle's clients are gone. The first
# cycles are warm-up (PH_SOAK_WARMUP seconds, default 45: buffers, spare
# pipe instances and Wine's own allocations settle); "start" is measured
# after them and "end" after the last cycle, MINUTES later. A line is printed
# at start, about every minute, and at the end, then a summary of each load
# (runs ok / failed), the limit counters from sys.stats, and
#   soak: minutes=M handles start=.. end=.. private_bytes start=.. end=.. growth=..%
# Exit status 0 when private bytes and handles grew by at most 10% from start
# to end, every legitimate run succeeded, every abusive client was dropped,
# and the server is still up; 1 otherwise; 2 on bad usage. The runs' output
# and the server's log are kept in build/soak-last/.
#
# Environment: PH_SOAK_PREFIX (Wine prefix, default build/wineprefix-soak,
# made on first use; its wineserver is started and killed here),
# PH_SOAK_WARMUP, PH_SOAK_CYCLE (seconds).
set -euo pipefail

usage() {
    echo "usage: bash bench/soak.sh MINUTES [BUILD_DIR]" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
[[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] || usage
minutes=$1
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
root=$BENCH_ROOT
bench_build_dir "${2:-}"
warmup=${PH_SOAK_WARMUP:-45}
cycle=${PH_SOAK_CYCLE:-20}
bench_wine_env "${PH_SOAK_PREFIX:-$root/build/wineprefix-soak}"
bench_need_programs
PIPE=ph-soak-$$

bench_work_dir

cat >"$work/soak.ini" <<'EOF'
; bench/soak.sh: deadlines short enough that abusive clients cycle quickly.
[limits]
first_frame_timeout_ms = 1000
frame_timeout_ms = 2000
send_stall_timeout_ms = 2000
send_queue_bytes = 65536
max_connections_per_user = 200
EOF
CONFIG=$(bench_winpath "$work/soak.ini")

bench_wine_prefix
bench_wineserver_start

ph() { wine "$PIPEHUB" --pipe "$PIPE" --timeout 30000 "$@"; }

wine "$PIPEHUBD" run --config "$CONFIG" --pipe "$PIPE" 2>"$work/pipehubd.log" &
server_pid=$!
if ! ph bench pingpong -n 1 >/dev/null 2>>"$work/errors"; then
    echo "soak.sh: pipehubd did not start" >&2
    tail -5 "$work/pipehubd.log" >&2
    exit 1
fi

# The loads of one cycle, "name|bench arguments" (D: the cycle's seconds;
# H: D less 3, how long idle-sub holds). Abusive kinds start with "abuse".
LOADS=(
    "churn|churn -d D"
    "calls|clients -c 4 -d D"
    "routed|routed -c 2 -d D"
    "routed-async|routed-async --window 128 -d D"
    "fanout|fanout -c 20 --stall 1 --pack 32 --window 256 -d D"
    "idle-sub|idle-sub -c 40 --hold H"
    "abuse-connect-close|abuse --kind connect-close -c 20 -d D"
    "abuse-silent|abuse --kind silent -c 10 -d D"
    "abuse-slowloris|abuse --kind slowloris -c 5 -d D"
    "abuse-nonreader|abuse --kind nonreader -c 5 -d D"
)
declare -A ok=() failed=()

# One cycle of d seconds: every load at once, then the flood alone.
run_cycle() {
    local d=$1 h load name args i
    local -a pids=() names=()
    h=$((d > 4 ? d - 3 : 1))
    for load in "${LOADS[@]}"; do
        name=${load%%|*} args=${load#*|}
        args=${args//-d D/-d $d}
        args=${args//--hold H/--hold $h}
        # shellcheck disable=SC2086 # args are words
        ph bench $args >>"$work/$name.out" 2>>"$work/$name.err" &
        pids+=($!)
        names+=("$name")
    done
    for i in "${!pids[@]}"; do
        if wait "${pids[$i]}"; then
            ok[${names[$i]}]=$((${ok[${names[$i]}]:-0} + 1))
        else
            failed[${names[$i]}]=$((${failed[${names[$i]}]:-0} + 1))
        fi
    done
    if ph bench abuse --kind overlimit -c 400 -n 1 >>"$work/abuse-overlimit.out" \
        2>>"$work/abuse-overlimit.err"; then
        ok[abuse-overlimit]=$((${ok[abuse-overlimit]:-0} + 1))
    else
        failed[abuse-overlimit]=$((${failed[abuse-overlimit]:-0} + 1))
    fi
}

# sample: the server's sys.process into s_handles, s_private, s_ws, once the
# clients of the cycle are gone (the server closes their connections a
# little after they exit).
json_num() { printf '%s' "$2" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
sample() {
    local json
    sleep 2
    json=$(ph call sys.process 2>>"$work/errors" | tr -d '\r') || json=
    s_handles=$(json_num handles "$json")
    s_private=$(json_num private_bytes "$json")
    s_ws=$(json_num working_set "$json")
    if [ -z "$s_handles" ] || [ -z "$s_private" ]; then
        echo "soak.sh: sys.process did not answer: '$json'" >&2
        s_handles=0 s_private=0 s_ws=0
        return 1
    fi
}
clock() { # seconds since $1 as MmSSs
    local s=$(($(date +%s) - $1))
    printf '%dm%02ds' $((s / 60)) $((s % 60))
}
line() { # label
    echo "soak: $(clock "$t_begin") $1 handles=$s_handles private_bytes=$s_private working_set=$s_ws"
}

t_begin=$(date +%s)
sample || true
line "at launch:"
echo "soak: warm-up for ${warmup}s, then $minutes minute(s) measured; $cycle s cycles"
while [ $(($(date +%s) - t_begin)) -lt "$warmup" ]; do
    run_cycle "$cycle"
done
alive=1
sample || alive=0
h_start=$s_handles p_start=$s_private
line "start (after $(clock "$t_begin") of warm-up):"
t_start=$(date +%s)
t_end=$((t_start + minutes * 60))
last=$t_start
while [ "$alive" = 1 ] && [ "$(date +%s)" -lt "$t_end" ]; do
    left=$((t_end - $(date +%s)))
    run_cycle $((left < cycle ? (left > 5 ? left : 5) : cycle))
    kill -0 "$server_pid" 2>/dev/null || { alive=0; break; }
    sample || { alive=0; break; }
    if [ $(($(date +%s) - last)) -ge 60 ] || [ "$(date +%s)" -ge "$t_end" ]; then
        line "$([ "$(date +%s)" -ge "$t_end" ] && echo "end:" || echo "minute:")"
        last=$(date +%s)
    fi
done
h_end=$s_handles p_end=$s_private

# What each load did.
echo "soak: runs (ok/failed) and their last result line:"
load_fail=0
for name in $(printf '%s\n' "${LOADS[@]%%|*}" abuse-overlimit); do
    n_ok=${ok[$name]:-0} n_bad=${failed[$name]:-0}
    [ "$n_bad" = 0 ] || load_fail=1
    last_line=$(tr -d '\r' <"$work/$name.out" 2>/dev/null | grep '^bench ' | tail -1 |
        sed 's/^bench mode=[^ ]* proto=framed //' || true)
    printf '  %-20s %3s/%-3s %s\n' "$name" "$n_ok" "$n_bad" "$last_line"
    if [ "$n_bad" != 0 ]; then
        # What the failed runs said (the load generator's lines, or
        # whatever else: Wine reports a crashed process there too).
        { tr -d '\r' <"$work/$name.err" | grep '^pipehub' ||
            tr -d '\r' <"$work/$name.err" | tail -5; } | sort | uniq -c |
            head -8 | sed 's/^/      /' || true
    fi
done
stats=$(ph call sys.stats 2>/dev/null | tr -d '\r' || true)
# Keep the logs of this run for a look afterwards.
logs=$root/build/soak-last
rm -rf "$logs" && mkdir -p "$logs" && cp "$work"/*.out "$work"/*.err \
    "$work/pipehubd.log" "$work/soak.ini" "$logs/" 2>/dev/null || true
echo "soak: logs in $logs"
echo "soak: limits fired (sys.stats): $(printf '%s' "$stats" | grep -o '"\(limit_[a-z_]*\|slow_disconnects\|connections_total\)":[0-9]*' | tr -d '"' | paste -sd' ')"
echo "soak: server log: $(grep -c ' ERROR ' "$work/pipehubd.log" || true) ERROR lines, $(grep -c ' WARN ' "$work/pipehubd.log" || true) WARN lines"

growth() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 == 0) print "inf"; else printf "%.1f\n", (b - a) * 100 / a }'; }
over() { awk -v g="$1" 'BEGIN { exit !(g == "inf" || g + 0 > 10) }'; }
g_priv=$(growth "$p_start" "$p_end")
g_handles=$(growth "$h_start" "$h_end")
rc=0
if [ "$alive" != 1 ]; then
    echo "soak: the server stopped answering" >&2
    rc=1
fi
if over "$g_priv" || over "$g_handles"; then
    echo "soak: grew by more than 10% (private bytes $g_priv%, handles $g_handles%)" >&2
    rc=1
fi
if [ "$load_fail" != 0 ]; then
    echo "soak: some runs failed (above)" >&2
    rc=1
fi
echo "soak: handles growth=${g_handles}%; start measured after ${warmup}+ s of warm-up"
echo "soak: minutes=$minutes handles start=$h_start end=$h_end private_bytes start=$p_start end=$p_end growth=${g_priv}%"
bench_stop_server
exit "$rc"
