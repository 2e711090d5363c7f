#!/usr/bin/env bash
# The transport benchmark: bench/baseline.exe (thread-per-client echo) and
# pipehubd under the same load, in one Wine session, one markdown table.
#
#   bash bench/run.sh [BUILD_DIR]          (default: build/mingw, built first)
#
# The load generator is `pipehub bench` (bench/loadgen.c): --raw runs for the
# baseline, framed sys.echo runs for pipehubd; both sides use the same calls
# in the same order. Every timed workload runs PH_BENCH_ROUNDS times
# (default 3), alternating the two servers, and the table shows medians.
# The hub's workloads run against pipehubd only, in the same
# rounds: a routed round trip (caller -> hub -> provider -> hub -> caller,
# the provider a thread of the bench process, both through the client
# library; also with a provider on a raw pipe handle) against the baseline's direct
# ping-pong, routed async calls against the sys.echo async rate, fan-out to
# 50 subscribers with and without a 51st that never reads, and 1000 idle
# connections each holding a subscription.
# The last rows come from bench/count_requests.sh (wineserver requests made
# by the server process), run after the timed part in a fresh wineserver.
# pipehubd runs with bench/bench.ini (the defaults, but for two limits these
# loads need on one machine; see the file) and --max-frame 4194304.
#
# Environment: PH_BENCH_PREFIX (the Wine prefix; default build/wineprefix-bench,
# made on first use; its wineserver is started and killed here, so do not
# point it at a prefix something else is using), PH_BENCH_SECONDS (per run,
# default 2), PH_BENCH_ROUNDS (default 3), PH_BENCH_IDLE (idle connections,
# default 1000), PH_BENCH_COUNT=0 skips the request counts,
# PH_BENCH_PIPEHUBD_ARGS (extra options for `pipehubd run`, e.g.
# "--threads 1"; also passed to count_requests.sh).
# Takes about 4 minutes on a 2-core machine (3 rounds of 2 s runs; 5 rounds
# about 6).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
root=$BENCH_ROOT
bench_build_dir "${1:-}"
secs=${PH_BENCH_SECONDS:-2}
rounds=${PH_BENCH_ROUNDS:-3}
idle_n=${PH_BENCH_IDLE:-1000}
bench_wine_env "${PH_BENCH_PREFIX:-$root/build/wineprefix-bench}"

# pipehubd's settings for benchmarks, as a Windows path.
CONFIG=$(bench_winpath "$root/bench/bench.ini")
bench_need_programs
# Until CMake builds it, the baseline is compiled here.
bench_baseline
bench_work_dir
bench_wine_prefix
bench_wineserver_start

PIPE_BL=ph-bench-baseline-$$
PIPE_PH=ph-bench-pipehubd-$$


start_server() { # target
    if [ "$1" = baseline ]; then
        wine "$BASELINE" "$PIPE_BL" 2>>"$work/baseline.log" &
        server_pid=$!
        pipe=$PIPE_BL raw=--raw
    else
        # 1 MiB payloads need frames a little over the 1 MiB default.
        # shellcheck disable=SC2086 # the extra options are words
        wine "$PIPEHUBD" run --pipe "$PIPE_PH" --max-frame 4194304 \
            --config "$CONFIG" ${PH_BENCH_PIPEHUBD_ARGS:-} \
            2>>"$work/pipehubd.log" &
        server_pid=$!
        pipe=$PIPE_PH raw=
    fi
    # One round trip, retried by the client while the name is not served.
    if ! wine "$PIPEHUB" --pipe "$pipe" --timeout 20000 bench pingpong -n 1 \
        ${raw:+"$raw"} >/dev/null 2>>"$work/errors"; then
        echo "run.sh: $1 did not start" >&2
        tail -5 "$work/$1.log" >&2
        exit 1
    fi
}

# run TARGET KEY ARGS...: one bench run; appends its line to $work/TARGET.KEY
run() {
    local target=$1 key=$2 line
    shift 2
    if ! line=$(wine "$PIPEHUB" --pipe "$pipe" bench "$@" ${raw:+"$raw"} \
        2>>"$work/errors" | tr -d '\r' | grep '^bench ' | tail -1) ||
        [ -z "$line" ]; then
        echo "run.sh: $target: bench $* failed:" >&2
        tail -3 "$work/errors" >&2
        line="bench failed"
    fi
    echo "  $target $key: $line" >&2
    echo "$line" >>"$work/$target.$key"
}

# run_baseline KEY ARGS...: one bench run against the second baseline server
# started for the hub's rows (waits until it answers); the line goes to
# $work/pipehubd.KEY, next to the pipehubd runs it is compared with.
run_baseline() {
    local pipe=$PIPE_BL raw=--raw
    wine "$PIPEHUB" --pipe "$pipe" --timeout 20000 bench pingpong -n 1 --raw \
        >/dev/null 2>>"$work/errors" || true
    run pipehubd "$@"
}

workloads() { # target
    run "$1" pingpong pingpong -d "$secs"
    run "$1" c16 clients -c 16 -d "$secs"
    run "$1" c64 clients -c 64 -d "$secs"
    run "$1" pipe1 pipeline --pack 1 -d "$secs"
    run "$1" pack32 pipeline --pack 32 -d "$secs"
    if [ "$1" = pipehubd ]; then
        run "$1" async async -d "$secs"
    fi
    # The pipe against the pipe: pipehubd's library client would otherwise
    # take a lane for 1 MiB (bench/lane.sh compares the two).
    if [ "$1" = pipehubd ]; then
        run "$1" big big -d "$secs" --no-lane
    else
        run "$1" big big -d "$secs"
    fi
    run "$1" churn churn -d "$secs"
    if [ "$1" = pipehubd ]; then
        # The hub. The runs compared with each other run back to
        # back, in the other order every other round. The routed round trip
        # is compared with the baseline's ping-pong run right next to it: a
        # second baseline server runs (idle, it costs nothing) meanwhile.
        wine "$BASELINE" "$PIPE_BL" 2>>"$work/baseline.log" &
        bl_pid=$!
        if [ $((r % 2)) = 1 ]; then
            run_baseline blpp pingpong -d "$secs"
            run "$1" routed routed -d "$secs"
        else
            run "$1" routed routed -d "$secs"
            run_baseline blpp pingpong -d "$secs"
        fi
        kill -KILL "$bl_pid" 2>/dev/null || true
        wait "$bl_pid" 2>/dev/null || true
        run "$1" routedraw routed --provider raw -d "$secs"
        if [ $((r % 2)) = 1 ]; then
            run "$1" async2 async -d "$secs"
            run "$1" rasync routed-async --window 1024 -d "$secs"
        else
            run "$1" rasync routed-async --window 1024 -d "$secs"
            run "$1" async2 async -d "$secs"
        fi
        run "$1" rasync256 routed-async --window 256 -d "$secs"
        if [ $((r % 2)) = 1 ]; then
            run "$1" fan fanout -c 50 -d "$secs"
            run "$1" fanstall fanout -c 50 --stall 1 -d "$secs"
        else
            run "$1" fanstall fanout -c 50 --stall 1 -d "$secs"
            run "$1" fan fanout -c 50 -d "$secs"
        fi
        # Interference: round trips while a fan-out runs in another process
        # (sys.echo never takes the hub's lock; a routed call does).
        for k in ppfan:pingpong routedfan:routed; do
            wine "$PIPEHUB" --pipe "$pipe" bench fanout -c 50 -d $((secs + 1)) \
                >/dev/null 2>>"$work/errors" &
            fan_pid=$!
            sleep 0.5
            run "$1" "${k%%:*}" "${k#*:}" -d "$secs"
            wait "$fan_pid" || true
        done
    fi
}

t_start=$(date +%s)
for r in $(seq 1 "$rounds"); do
    for target in baseline pipehubd; do
        echo "round $r/$rounds: $target" >&2
        start_server "$target"
        workloads "$target"
        bench_stop_server
    done
done

# Idle connections: open, hold, read the server's resident memory while they
# are held, then each must answer once more. For pipehubd also with one
# subscription each (idle-sub: the hub's tables), and its own view of its
# memory (sys.process) next to the resident size.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
idle_run() { # target key mode
    local target=$1 key=$2 mode=$3 rss=0 bench_pid
    echo "idle: $target $mode, $idle_n connections" >&2
    wine "$PIPEHUB" --pipe "$pipe" --timeout 30000 bench "$mode" -c "$idle_n" \
        --hold 3 ${raw:+"$raw"} >"$work/$target.$key.out" 2>>"$work/errors" &
    bench_pid=$!
    for _ in $(seq 1 1200); do
        if tr -d '\r' <"$work/$target.$key.out" | grep -q 'phase=held'; then
            sleep 1
            rss=$(rss_kb "$server_pid")
            if [ "$target" = pipehubd ]; then
                wine "$PIPEHUB" --pipe "$pipe" --timeout 30000 call sys.process \
                    2>>"$work/errors" | tr -d '\r' >"$work/$target.$key.process" || true
            fi
            break
        fi
        kill -0 "$bench_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$rss" >"$work/$target.$key.rss"
    wait "$bench_pid" || true
    tr -d '\r' <"$work/$target.$key.out" | grep 'phase=checked' \
        >"$work/$target.$key" || echo "bench failed" >"$work/$target.$key"
    echo "  $target $key: $(cat "$work/$target.$key") rss_kb=$rss" >&2
}
for target in baseline pipehubd; do
    start_server "$target"
    sleep 0.5
    rss_kb "$server_pid" >"$work/$target.rss0"
    idle_run "$target" idle idle
    if [ "$target" = pipehubd ]; then
        # A fresh server for the subscriptions, so that neither run's
        # leftovers count in the other's figure.
        bench_stop_server
        start_server "$target"
        sleep 0.5
        idle_run "$target" idlesub idle-sub
    fi
    bench_stop_server
done
t_timed=$(($(date +%s) - t_start))
wineserver -k
wineserver -w 2>/dev/null || sleep 2

counts=
if [ "${PH_BENCH_COUNT:-1}" != 0 ]; then
    echo "counting wineserver requests (bench/count_requests.sh)" >&2
    counts=$(PH_BENCH_PREFIX=$WINEPREFIX bash "$root/bench/count_requests.sh" \
        "$build" 2>>"$work/errors" || true)
fi

ratio() { # a b: a / b to two places
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2fx\n", a / b }'
}

check() { # ratio-or-value op target -> yes/no
    awk -v v="${1%x}" -v op="$2" -v t="$3" 'BEGIN {
        if (v == "-" || v == "") { print "-"; exit }
        ok = (op == "<=") ? (v + 0 <= t + 0) : (v + 0 >= t + 0)
        print ok ? "yes" : "**no**" }'
}

row() { # label baseline pipehubd ratio target met
    printf '| %s | %s | %s | %s | %s | %s |\n' "$@"
}

count_of() { # server what
    printf '%s\n' "$counts" | sed -n "s/^$1: server requests per $2: \([0-9.]*\).*/\1/p" | head -1
}

mb() { awk -v k="$(cat "$1" 2>/dev/null || echo 0)" 'BEGIN { printf "%.1f\n", k / 1024 }'; }

fmt() { awk -v v="$1" 'BEGIN { if (v == "-") print "-"; else if (v + 0 >= 100) printf "%.0f\n", v; else printf "%.2f\n", v }'; }

{
    echo
    echo "pipehub bench: baseline (thread-per-client echo) vs pipehubd, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "host: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(wine --version 2>/dev/null), $secs s per run, median of $rounds"
    echo
    row "workload" "baseline" "pipehubd" "pipehubd / baseline" "target" "met"
    row "---" "---:" "---:" "---:" "---" "---"

    b=$(median baseline pingpong median_us) p=$(median pipehubd pingpong median_us)
    r=$(ratio "$p" "$b")
    row "ping-pong, 1 client, median round trip (us)" "$b" "$p" "$r" "<= 1.0x" "$(check "$r" "<=" 1.0)"
    b=$(median baseline pingpong p99_us) p=$(median pipehubd pingpong p99_us)
    row "ping-pong, 1 client, p99 round trip (us)" "$b" "$p" "$(ratio "$p" "$b")" "" ""
    for k in c16:16 c64:64; do
        b=$(median baseline "${k%%:*}" msgs_per_s) p=$(median pipehubd "${k%%:*}" msgs_per_s)
        r=$(ratio "$p" "$b")
        row "${k#*:} clients, total round trips/s" "$b" "$p" "$r" ">= 1.0x" "$(check "$r" ">=" 1.0)"
    done
    b=$(median baseline pipe1 msgs_per_s) p1=$(median pipehubd pipe1 msgs_per_s)
    row "pipelined, 1 frame per WriteFile (msg/s)" "$b" "$p1" "$(ratio "$p1" "$b")" "" ""
    b=$(median baseline pack32 msgs_per_s) p=$(median pipehubd pack32 msgs_per_s)
    r=$(ratio "$p" "$b")
    row "pipelined, 32 frames per WriteFile (msg/s)" "$b" "$p" "$r" ">= 1.0x and >= 250k" \
        "$( [ "$(check "$r" ">=" 1.0)" = yes ] && [ "$(check "$p" ">=" 250000)" = yes ] && echo yes || echo "**no**")"
    p=$(median pipehubd async msgs_per_s)
    r=$(ratio "$p" "$p1")
    row "pipelined, library async calls (msg/s); ratio vs pipehubd 1 per write" "n/a" "$p" "$r" ">= 25x" "$(check "$r" ">=" 25)"
    b=$(median baseline big mb_per_s) p=$(median pipehubd big mb_per_s)
    r=$(ratio "$p" "$b")
    row "1 MiB ping-pong (MB/s, payload one way)" "$b" "$p" "$r" ">= 1.0x" "$(check "$r" ">=" 1.0)"
    b=$(median baseline churn conns_per_s) p=$(median pipehubd churn conns_per_s)
    r=$(ratio "$p" "$b")
    row "connect + 1 round trip + close (conn/s)" "$b" "$p" "$r" ">= 5x" "$(check "$r" ">=" 5)"
    ba=$(val answered " $(cat "$work/baseline.idle")") pa=$(val answered " $(cat "$work/pipehubd.idle")")
    row "$idle_n idle clients held, answering afterwards" "${ba:-0}/$idle_n" "${pa:-0}/$idle_n" "" "all" \
        "$( [ "${pa:-0}" = "$idle_n" ] && echo yes || echo "**no**")"
    b=$(mb "$work/baseline.idle.rss") p=$(mb "$work/pipehubd.idle.rss")
    b0=$(mb "$work/baseline.rss0") p0=$(mb "$work/pipehubd.rss0")
    row "$idle_n idle clients, server resident memory (MB; before: $b0 / $p0)" "$b" "$p" "$(ratio "$p" "$b")" "<= 15 MB" "$(check "$p" "<=" 15)"

    # The hub.
    # Ratios here: the median of the per-round ratios (pratio).
    b=$(median pipehubd blpp median_us) p=$(median pipehubd routed median_us)
    r=$(pratio pipehubd routed pipehubd blpp median_us)
    row "routed round trip (caller -> hub -> provider -> hub -> caller), median (us); baseline: its direct ping-pong, run next to it" "$b" "$p" "$r" "<= 2.2x" "$(check "$r" "<=" 2.2)"
    b=$(median pipehubd blpp p99_us) p=$(median pipehubd routed p99_us)
    row "routed round trip, p99 (us)" "$b" "$p" "$(pratio pipehubd routed pipehubd blpp p99_us)" "" ""
    b=$(median pipehubd blpp median_us) p=$(median pipehubd routedraw median_us)
    row "routed round trip, provider on a raw pipe handle, median (us)" "$b" "$p" "$(pratio pipehubd routedraw pipehubd blpp median_us)" "" ""
    a=$(median pipehubd async2 msgs_per_s) p=$(median pipehubd rasync msgs_per_s)
    r=$(pratio pipehubd rasync pipehubd async2 msgs_per_s)
    row "routed async calls, 1024 in flight (msg/s); ratio vs sys.echo async, 1024 in flight ($a msg/s)" "n/a" "$p" "$r" ">= 0.40x" "$(check "$r" ">=" 0.40)"
    p=$(median pipehubd rasync256 msgs_per_s)
    row "routed async calls, 256 in flight (the default max_inflight_per_client); ratio vs the same sys.echo async" "n/a" "$p" "$(pratio pipehubd rasync256 pipehubd async2 msgs_per_s)" "" ""
    f=$(median pipehubd fan events_per_s)
    row "fan-out, 1 publisher -> 50 subscribers, 64-byte events delivered/s" "n/a" "$f" "" ">= 300k" "$(check "$f" ">=" 300000)"
    p=$(median pipehubd fanstall events_per_s)
    r=$(pratio pipehubd fanstall pipehubd fan events_per_s)
    d=$(cat "$work/pipehubd.fanstall" 2>/dev/null | while read -r line; do val stalled_dropped " $line"; done | paste -sd+ | bc 2>/dev/null)
    row "fan-out with a 51st subscriber that never reads (delivered/s to the 50; it was dropped in ${d:-?} of $rounds runs); ratio vs without" "n/a" "$p" "$r" ">= 0.9x" "$(check "$r" ">=" 0.9)"
    p=$(median pipehubd ppfan p99_us)
    row "sys.echo ping-pong while a 1 -> 50 fan-out runs alongside, p99 (us); ratio vs alone" "n/a" "$p" "$(pratio pipehubd ppfan pipehubd pingpong p99_us)" "" ""
    p=$(median pipehubd routedfan p99_us)
    row "routed round trip while a 1 -> 50 fan-out runs alongside, p99 (us); ratio vs alone" "n/a" "$p" "$(pratio pipehubd routedfan pipehubd routed p99_us)" "" ""
    pa=$(val answered " $(cat "$work/pipehubd.idlesub")")
    row "$idle_n idle clients with one subscription each, held, each getting an event afterwards" "n/a" "${pa:-0}/$idle_n" "" "all" \
        "$( [ "${pa:-0}" = "$idle_n" ] && echo yes || echo "**no**")"
    # One run each: a ratio of the two.
    p=$(mb "$work/pipehubd.idlesub.rss") a=$(mb "$work/pipehubd.idle.rss")
    row "$idle_n idle clients with one subscription each, server resident memory (MB); ratio vs without ($a MB)" "n/a" "$p" "$(ratio "$p" "$a")" "<= 16.8 MB (14 + 20%)" "$(check "$p" "<=" 16.8)"
    if [ -n "$counts" ]; then
        b=$(count_of baseline "64-byte round trip") p=$(count_of pipehubd "64-byte round trip")
        row "wineserver requests by the server per 64-byte round trip" "$(fmt "${b:--}")" "$(fmt "${p:--}")" "$(ratio "${p:--}" "${b:--}")" "<= 7" "$(check "${p:--}" "<=" 7)"
        b=$(count_of baseline "connect+round trip+close") p=$(count_of pipehubd "connect+round trip+close")
        row "wineserver requests by the server per connect + round trip + close" "$(fmt "${b:--}")" "$(fmt "${p:--}")" "$(ratio "${p:--}" "${b:--}")" "<= 17" "$(check "${p:--}" "<=" 17)"
        b=$(count_of baseline "pipelined message (32 per write)") p=$(count_of pipehubd "pipelined message (32 per write)")
        row "wineserver requests by the server per pipelined message (32 per write)" "$(fmt "${b:--}")" "$(fmt "${p:--}")" "$(ratio "${p:--}" "${b:--}")" "" ""
        b=$(count_of baseline "1 MiB round trip") p=$(count_of pipehubd "1 MiB round trip")
        row "wineserver requests by the server per 1 MiB round trip" "$(fmt "${b:--}")" "$(fmt "${p:--}")" "$(ratio "${p:--}" "${b:--}")" "" ""
        b=$(count_of baseline "64-byte round trip") p=$(count_of pipehubd "routed round trip")
        row "wineserver requests by the server per routed round trip; baseline: per direct round trip" "$(fmt "${b:--}")" "$(fmt "${p:--}")" "$(ratio "${p:--}" "${b:--}")" "" ""
        p=$(count_of pipehubd "routed async call (window 1024)")
        row "wineserver requests by the server per routed async call (1024 in flight)" "n/a" "$(fmt "${p:--}")" "" "" ""
        p=$(count_of pipehubd "fan-out event published to 50 subscribers")
        row "wineserver requests by the server per event published to 50 subscribers" "n/a" "$(fmt "${p:--}")" "" "" ""
    fi
    echo
    echo "pipehubd runs with --max-frame 4194304 ${PH_BENCH_PIPEHUBD_ARGS:+$PH_BENCH_PIPEHUBD_ARGS }(a 1 MiB payload needs a frame a little over the 1 MiB default) and bench/bench.ini (max_connections_per_user 4096: under Wine all 1000 idle clients are one account; max_inflight_per_client 1024: the routed async run's window); other settings default."
    for k in idle idlesub; do
        [ -s "$work/pipehubd.$k.process" ] &&
            echo "pipehubd's sys.process with the $idle_n $k clients held: $(cat "$work/pipehubd.$k.process")"
    done
    echo "timed part: ${t_timed} s; total: $(($(date +%s) - t_start)) s"
    # Only the load generator's own complaints (Wine adds noise of its own).
    if tr -d '\r' <"$work/errors" | grep -q '^pipehub'; then
        echo
        echo "errors reported by the runs:"
        tr -d '\r' <"$work/errors" | grep '^pipehub' | sort | uniq -c | head -20
    fi
}
