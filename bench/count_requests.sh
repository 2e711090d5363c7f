#!/usr/bin/env bash
# Count the wineserver requests a server process makes per message and per
# connection: a cost figure that does not depend on timing noise.
#
#   bash bench/count_requests.sh [BUILD_DIR]       (default build/mingw)
#
# How (docs: /work/shared/WINE.md, "Counting wineserver requests"): a fresh
# persistent wineserver writes its stderr to a trace file; a first process
# with WINEDEBUG=+server turns request tracing on (wineserver then traces
# every process, one line per request and one per reply, each prefixed with
# the thread id). The server under test (pipehubd, then bench/baseline.exe)
# is started, and `pipehub bench` runs each load twice, short and long. The
# server's threads are known from the trace itself: its first thread from
# init_first_thread (matched on the Unix pid), the others from the
# new_thread replies of its own threads, so a thread id that Wine reuses
# for another process is attributed correctly. The difference between the
# two runs, divided by the difference in messages (or connections), is the
# cost per message: start-up, connect and exit cancel out. pipehubd also
# gets the hub's loads (a routed round trip, routed async calls, fan-out to
# 50 subscribers); their providers and subscribers are client threads, so
# only the hub's own requests are counted.
#
# Prints, for each server, lines like
#   pipehubd: server requests per 64-byte round trip: 7.50
# followed by the requests that make up that figure.
#
# pipehubd runs with bench/bench.ini (the defaults, except what one machine
# needs for these loads; see the file).
#
# Environment: PH_BENCH_PREFIX (Wine prefix, default build/wineprefix-bench;
# its wineserver is restarted here), PH_BENCH_PIPEHUBD_ARGS (extra options
# for `pipehubd run`, e.g. "--threads 1").
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
root=$BENCH_ROOT
bench_build_dir "${1:-$root/build/mingw}"
bench_wine_env "${PH_BENCH_PREFIX:-$root/build/wineprefix-bench}"
# pipehubd's settings for benchmarks (bench/bench.ini), as a Windows path.
CONFIG=$(bench_winpath "$root/bench/bench.ini")
bench_baseline

# The loads, each run short and long: "label|units short|units long|bench
# arguments with N where the count goes".
LOADS_ALL=(
    "64-byte round trip|200|1200|pingpong -n N"
    "connect+round trip+close|20|120|churn -n N"
    "pipelined message (32 per write)|3200|19200|pipeline --pack 32 -n N"
    "1 MiB round trip|2|10|big -n N"
)
# The hub's loads, pipehubd only (the provider and the subscribers are
# clients: only the hub's own requests count). A fan-out unit is one event
# published, i.e. delivered to 50 subscribers.
LOADS_HUB=(
    "routed round trip|200|1200|routed -n N"
    "routed async call (window 1024)|20480|122880|routed-async --window 1024 -n N"
    "fan-out event published to 50 subscribers|5120|30720|fanout -n N"
)

bench_work_dir
bench_wine_prefix
# A fresh wineserver, so that its stderr is our trace file.
wineserver -k 2>/dev/null || true
wineserver -w 2>/dev/null || true
wineserver -p 2>"$work/trace"
wine cmd /c exit >/dev/null 2>&1 || true
# Turn tracing on: from here every request of every process is traced,
# including the init_first_thread of the server under test.
WINEDEBUG=+server wine cmd /c exit >/dev/null 2>"$work/tracer.err" || true

lines() { wc -l <"$work/trace"; }

# Wait until the trace (almost) stops growing: the server has finished with
# the last client (its disconnect handling comes after the client exits).
# An idle pipehubd is not silent: its workers wake every 100 ms for the hub's
# timers (a remove_completion and a select each time), and Wine's own
# processes add a little, so "quiet" is fewer than PH_COUNT_QUIET lines
# (default 60) in 0.3 s; those stray requests are noise of well under 0.1
# per message in the figures.
settle() {
    local a b n=0
    a=$(lines)
    while :; do
        sleep 0.3
        b=$(lines)
        [ $((b - a)) -lt "${PH_COUNT_QUIET:-60}" ] && break
        a=$b
        n=$((n + 1))
        [ $n -ge 100 ] && break # 30 s: something keeps it busy; go on
    done
}

bench() { # pipe raw args...
    local pipe=$1 raw=$2
    shift 2
    wine "$PIPEHUB" --pipe "$pipe" --timeout 20000 bench "$@" ${raw:+"$raw"} \
        >>"$work/bench.out" 2>>"$work/bench.err"
}

measure() { # name
    local name=$1 pipe raw load n args upid
    pipe=ph-count-$name-$$
    LOADS=("${LOADS_ALL[@]}")
    if [ "$name" = baseline ]; then
        wine "$BASELINE" "$pipe" 2>"$work/$name.log" &
        raw=--raw
    else
        # 1 MiB payloads need frames a little over the 1 MiB default.
        # shellcheck disable=SC2086 # the extra options are words
        wine "$PIPEHUBD" run --pipe "$pipe" --max-frame 4194304 \
            --config "$CONFIG" ${PH_BENCH_PIPEHUBD_ARGS:-} \
            2>"$work/$name.log" &
        raw=
        LOADS+=("${LOADS_HUB[@]}")
    fi
    server_pid=$!
    bench "$pipe" "$raw" pingpong -n 1 # waits until served
    settle
    marks="$(lines)" units=
    for load in "${LOADS[@]}"; do
        IFS='|' read -r _ s l args <<<"$load"
        for n in "$s" "$l"; do
            # shellcheck disable=SC2086 # args are words
            bench "$pipe" "$raw" ${args//N/$n}
            settle
            marks="$marks $(lines)" units="$units $n"
        done
    done
    upid=$server_pid
    bench_stop_server
    # Segment k of the trace runs from mark k to mark k+1; segments 2i-1 and
    # 2i are the short and long run of load i. A "client" is any process
    # whose first thread started inside the segment: the bench run.
    awk -v upid="$upid" -v marks="$marks" -v units="$units" \
        -v name="$name" -v labels="$(printf '%s\n' "${LOADS[@]}" | cut -d'|' -f1 | paste -sd'|')" '
    BEGIN { nm = split(marks, m, " "); split(units, u, " "); nl = split(labels, lab, "|"); srv = "" }
    function seg(   k) { for (k = nm; k >= 1; k--) if (NR > m[k]) return k; return 0 }
    {
        tid = $1; sub(/:$/, "", tid)
        req = $2; sub(/\(.*/, "", req)
        reply = index($0, ") = ") > 0
        if (req == "init_first_thread" && !reply) {
            owner[tid] = "starting"
            if (match($0, /unix_pid=[0-9]+/))
                upid_of[tid] = substr($0, RSTART + 9, RLENGTH - 9)
        } else if (req == "init_first_thread" && reply && match($0, /pid=[0-9a-f]+/)) {
            owner[tid] = substr($0, RSTART + 4, RLENGTH - 4)
            born[owner[tid]] = seg()
            if (upid_of[tid] == upid) srv = owner[tid]
        } else if (req == "new_thread" && reply && match($0, /tid=[0-9a-f]+/)) {
            owner[substr($0, RSTART + 4, RLENGTH - 4)] = owner[tid]
        }
        if (srv == "" || reply || $2 !~ /^[a-z_0-9]+\(/)
            next
        s = seg()
        if (owner[tid] == srv) {
            n[s]++
            byname[s, req]++
            names[req] = 1
        } else if (s > 0 && born[owner[tid]] == s) {
            client[s]++
        }
    }
    END {
        if (srv == "") { print name ": server process not found in the trace" > "/dev/stderr"; exit 1 }
        for (i = 1; i <= nl; i++) {
            a = 2 * i - 1; b = 2 * i   # segments of the short and long run
            d = u[b] - u[a]
            printf "%s: server requests per %s: %.2f (client: %.2f)\n", name, lab[i],
                (n[b] - n[a]) / d, (client[b] - client[a]) / d
            if (i > 2 && lab[i] != "routed round trip") continue
            what = i == 1 ? "round trip" : i == 2 ? "connection" : lab[i]
            for (r in names) {
                x = (byname[b, r] - byname[a, r]) / d
                if (x >= 0.05 || x <= -0.05) printf "%d|%.2f|%s|%s\n", i, x, r, what > breakdown
            }
        }
    }' breakdown="$work/$name.breakdown" "$work/trace"
    # The requests behind the first two figures (and the routed round
    # trip), largest first.
    sort -t'|' -k1,1n -k2,2gr "$work/$name.breakdown" |
        awk -F'|' -v name="$name" '{ printf "%s:   per %s: %6.2f %s\n", name,
            $4, $2, $3 }'
}

measure pipehubd
measure baseline
if grep -q . "$work/bench.err" 2>/dev/null &&
    grep -q '^pipehub' "$work/bench.err"; then
    echo "bench errors:" >&2
    grep '^pipehub' "$work/bench.err" >&2
fi
