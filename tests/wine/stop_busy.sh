#!/usr/bin/env bash
# Ctrl+C stops a busy pipehubd cleanly: run by ctest as
#   bash tests/wine/stop_busy.sh PATH/pipehubd.exe PATH/test_harden.exe
#
# Starts "pipehubd run", puts 200 clients in steady sys.echo traffic on it
# (test_harden traffic 200 PIPE: one request in flight per client, every
# reply checked), sends SIGINT to the daemon mid-traffic (Wine turns it into
# CTRL_C_EVENT), and requires that the daemon exits with status 0 within
# STOP_LIMIT_MS, and that every client sees sys.shutdown then the close, or
# a clean close (at a frame boundary), with every reply before it right,
# within CLIENTS_LIMIT_MS of the SIGINT. Uses the caller's WINEPREFIX; the
# wineserver is left alone.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 PATH/pipehubd.exe PATH/test_harden.exe" >&2
    exit 2
fi
PIPEHUBD=$1
TEST_HARDEN=$2
PIPE=ph-stopbusy-$$
CLIENTS=200
TRAFFIC_MS=1000      # traffic after every client is going, before the stop
STOP_LIMIT_MS=5000   # the daemon's exit after SIGINT, as in ctrl_c.sh
CLIENTS_LIMIT_MS=15000

work=$(mktemp -d)
server_pid=
traffic_pid=
passed=0
failed=0

# Whatever happens, no daemon or client outlives the script: a stray one
# would keep ctest's output pipe open until its timeout.
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    local pid
    for pid in $server_pid $traffic_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

pass() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# Wine writes CRLF line ends.
show() { tr -d '\r' <"$1" | tail -n 60 | sed "s/^/    $2: /"; }

finish() {
    if [ "$failed" -ne 0 ]; then
        echo "--- pipehubd log (last 60 lines)"
        show "$work/server.log" server
        echo "--- test_harden traffic stdout and stderr"
        show "$work/traffic.out" traffic
        show "$work/traffic.err" traffic
    fi
    echo "$passed passed, $failed failed"
    if [ "$failed" -ne 0 ]; then
        exit 1
    fi
    exit 0
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

alive() { kill -0 "$1" 2>/dev/null; }

# With a shell's "&" the wine process execs into the Windows process itself,
# so $! is the pid that gets the SIGINT.
wine "$PIPEHUBD" run --pipe "$PIPE" 2>"$work/server.log" &
server_pid=$!
echo "pipehubd pid $server_pid serving pipe $PIPE"

# The clients wait for the pipe themselves (up to 20 s), so they can start
# at once.
wine "$TEST_HARDEN" traffic "$CLIENTS" "$PIPE" >"$work/traffic.out" \
    2>"$work/traffic.err" &
traffic_pid=$!

ready=0
deadline=$(($(now_ms) + 90000))
while [ "$(now_ms)" -lt "$deadline" ]; do
    if tr -d '\r' <"$work/traffic.out" | grep -qx ready; then
        ready=1
        break
    fi
    if ! alive "$traffic_pid" || ! alive "$server_pid"; then
        break
    fi
    sleep 0.1
done
if [ "$ready" -eq 1 ]; then
    pass "$CLIENTS clients connected and in sys.echo traffic"
else
    fail "the $CLIENTS clients never got going (server alive: $(alive "$server_pid" && echo yes || echo no))"
    finish
fi

sleep "$((TRAFFIC_MS / 1000))"
if alive "$server_pid" && alive "$traffic_pid"; then
    pass "pipehubd is running and the traffic is on"
else
    fail "pipehubd or the clients exited before the Ctrl+C"
    finish
fi

t0=$(now_ms)
kill -INT "$server_pid"
deadline=$((t0 + 2 * STOP_LIMIT_MS))
while alive "$server_pid" && [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 0.02
done
elapsed=$(($(now_ms) - t0))
if alive "$server_pid"; then
    fail "pipehubd still running ${elapsed} ms after SIGINT"
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    finish
fi
status=0
wait "$server_pid" || status=$?
server_pid=
if [ "$elapsed" -le "$STOP_LIMIT_MS" ]; then
    pass "pipehubd stopped ${elapsed} ms after SIGINT with $CLIENTS busy clients (limit ${STOP_LIMIT_MS} ms)"
else
    fail "pipehubd took ${elapsed} ms to stop after SIGINT (limit ${STOP_LIMIT_MS} ms)"
fi
if [ "$status" -eq 0 ]; then
    pass "pipehubd exit status 0"
else
    fail "pipehubd exit status $status, expected 0"
fi

deadline=$((t0 + CLIENTS_LIMIT_MS))
while alive "$traffic_pid" && [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 0.05
done
elapsed=$(($(now_ms) - t0))
if alive "$traffic_pid"; then
    fail "the clients have not all seen their close ${elapsed} ms after SIGINT"
    finish
fi
traffic_status=0
wait "$traffic_pid" || traffic_status=$?
traffic_pid=
summary=$(tr -d '\r' <"$work/traffic.out" | grep 'clients:' || true)
if [ "$traffic_status" -eq 0 ]; then
    pass "every client saw sys.shutdown or a clean close within ${elapsed} ms of SIGINT, every reply right ($summary)"
else
    fail "clients exit status $traffic_status: ${summary:-no summary}"
fi

if tr -d '\r' <"$work/server.log" | grep -qiE 'assert|crash|exception|unhandled'; then
    fail "pipehubd's log shows a fault"
else
    pass "pipehubd logged $(wc -l <"$work/server.log") lines, no fault"
fi

finish
