#!/usr/bin/env bash
# Ctrl+C stops a console pipehubd cleanly: run by ctest as
#   bash tests/wine/ctrl_c.sh PATH/pipehubd.exe PATH/test_server.exe
#
# Starts "pipehubd run", holds 32 connections open on it (test_server hold),
# sends SIGINT to the daemon (Wine turns it into CTRL_C_EVENT), and requires
# that it exits with status 0 within 5 s and that every held connection sees
# the close. Uses the caller's WINEPREFIX; the wineserver is left alone.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 PATH/pipehubd.exe PATH/test_server.exe" >&2
    exit 2
fi
PIPEHUBD=$1
TEST_SERVER=$2
PIPE=ph-ctrlc-$$
HOLD_N=32
STOP_LIMIT_MS=5000

work=$(mktemp -d)
server_pid=
hold_pid=
passed=0
failed=0

# Whatever happens, no daemon or holder outlives the script: a stray one
# would keep ctest's output pipe open until its timeout.
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    local pid
    for pid in $server_pid $hold_pid; do
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
show() { tr -d '\r' <"$1" | sed "s/^/    $2: /"; }

finish() {
    if [ "$failed" -ne 0 ]; then
        echo "--- pipehubd log"
        show "$work/server.log" server
        echo "--- test_server hold stderr"
        show "$work/hold.err" hold
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

# The holder waits for the pipe itself (up to 20 s), so it can start at once.
wine "$TEST_SERVER" hold "$HOLD_N" "$PIPE" >"$work/hold.out" 2>"$work/hold.err" &
hold_pid=$!

ready=0
deadline=$(($(now_ms) + 30000))
while [ "$(now_ms)" -lt "$deadline" ]; do
    if tr -d '\r' <"$work/hold.out" | grep -qx ready; then
        ready=1
        break
    fi
    if ! alive "$hold_pid" || ! alive "$server_pid"; then
        break
    fi
    sleep 0.1
done
if [ "$ready" -eq 1 ]; then
    pass "$HOLD_N connections open and answering sys.ping"
else
    fail "the holder never got $HOLD_N connections ready (server alive: $(alive "$server_pid" && echo yes || echo no))"
    finish
fi

if alive "$server_pid"; then
    pass "pipehubd is running"
else
    fail "pipehubd exited before the Ctrl+C"
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
    pass "pipehubd stopped ${elapsed} ms after SIGINT (limit ${STOP_LIMIT_MS} ms)"
else
    fail "pipehubd took ${elapsed} ms to stop after SIGINT (limit ${STOP_LIMIT_MS} ms)"
fi
if [ "$status" -eq 0 ]; then
    pass "pipehubd exit status 0"
else
    fail "pipehubd exit status $status, expected 0"
fi

# The holder gives the closes up to 30 s; allow a little more here.
deadline=$(($(now_ms) + 35000))
while alive "$hold_pid" && [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 0.1
done
if alive "$hold_pid"; then
    fail "the holder is still waiting for closes after 35 s"
    finish
fi
hold_status=0
wait "$hold_pid" || hold_status=$?
hold_pid=
summary=$(tr -d '\r' <"$work/hold.out" | grep 'connections closed' || true)
if [ "$hold_status" -eq 0 ]; then
    pass "all $HOLD_N held connections were told sys.shutdown and saw the close ($summary)"
else
    fail "holder exit status $hold_status: ${summary:-no summary}"
fi

# The log went to stderr and ends with the shutdown, not a crash report.
if [ -s "$work/server.log" ]; then
    pass "pipehubd logged to stderr ($(wc -l <"$work/server.log") lines)"
else
    fail "pipehubd wrote nothing to stderr"
fi

finish
