#!/usr/bin/env bash
# Ctrl+C stops a console pipehubd cleanly: run by ctest as
#   bash tests/wine/ctrl_c.sh PATH/pipehubd.exe PATH/test_transport.exe
#
# Starts "pipehubd run", holds 32 connections open on it (test_transport
# hold), sends SIGINT to the daemon (Wine turns it into CTRL_C_EVENT), and
# requires that it exits with status 0 within 5 s and that every held
# connection sees the close. Output and exit status as tests/wine/lib.sh
# says.
set -euo pipefail

# shellcheck source=tests/wine/lib.sh
source "$(dirname "$0")/lib.sh"
lib_init ctrlc PIPEHUBD TEST_TRANSPORT -- "$@"

PIPE=ph-ctrlc-$$
HOLD_N=32
STOP_LIMIT_MS=5000

finish() { lib_summary server.err hold.err; }

# The holder waits for the pipe itself (up to 20 s), so it starts at once.
start_busy hold 30 "$HOLD_N connections open and answering sys.ping" \
    "$TEST_TRANSPORT" hold "$HOLD_N" "$PIPE" || finish
if alive "${bg_pid[server]}"; then
    pass "pipehubd is running"
else
    fail "pipehubd exited before the Ctrl+C"
    finish
fi

check_stop server "$STOP_LIMIT_MS" || finish

# The holder gives the closes up to 30 s; allow a little more here.
wait_exit hold 35
if [ "$bg_rc" -eq 999 ]; then
    fail "the holder is still waiting for closes after 35 s"
    finish
fi
summary=$(clean "$tmp/hold.out" | grep 'connections closed' || true)
if [ "$bg_rc" -eq 0 ]; then
    pass "all $HOLD_N held connections were told sys.shutdown and saw the close ($summary)"
else
    fail "holder exit status $bg_rc: ${summary:-no summary}"
fi

# The log went to stderr and ends with the shutdown, not a crash report.
if [ -s "$tmp/server.err" ]; then
    pass "pipehubd logged to stderr ($(wc -l <"$tmp/server.err") lines)"
else
    fail "pipehubd wrote nothing to stderr"
fi

finish
