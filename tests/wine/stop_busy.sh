#!/usr/bin/env bash
# Ctrl+C stops a busy pipehubd cleanly: run by ctest as
#   bash tests/wine/stop_busy.sh PATH/pipehubd.exe PATH/test_limits.exe
#
# Starts "pipehubd run", puts 200 clients in steady sys.echo traffic on it
# (test_limits traffic 200 PIPE: one request in flight per client, every
# reply checked), sends SIGINT to the daemon mid-traffic (Wine turns it into
# CTRL_C_EVENT), and requires that the daemon exits with status 0 within
# STOP_LIMIT_MS, and that every client sees sys.shutdown then the close, or
# a clean close (at a frame boundary), with every reply before it right,
# within CLIENTS_LIMIT_MS of the SIGINT. Output and exit status as
# tests/wine/lib.sh says.
set -euo pipefail

# shellcheck source=tests/wine/lib.sh
source "$(dirname "$0")/lib.sh"
lib_init stopbusy PIPEHUBD TEST_LIMITS -- "$@"

PIPE=ph-stopbusy-$$
CLIENTS=200
TRAFFIC_MS=1000      # traffic after every client is going, before the stop
STOP_LIMIT_MS=5000   # the daemon's exit after SIGINT, as in ctrl_c.sh
CLIENTS_LIMIT_MS=15000

finish() { lib_summary server.err:60 traffic.out:60 traffic.err:60; }

# The clients wait for the pipe themselves (up to 20 s), so they start at
# once.
start_busy traffic 90 "$CLIENTS clients connected and in sys.echo traffic" \
    "$TEST_LIMITS" traffic "$CLIENTS" "$PIPE" || finish

sleep "$((TRAFFIC_MS / 1000))"
if alive "${bg_pid[server]}" && alive "${bg_pid[traffic]}"; then
    pass "pipehubd is running and the traffic is on"
else
    fail "pipehubd or the clients exited before the Ctrl+C"
    finish
fi

t0=$(now_ms)
check_stop server "$STOP_LIMIT_MS" " with $CLIENTS busy clients" || finish

deadline=$((t0 + CLIENTS_LIMIT_MS))
while alive "${bg_pid[traffic]}" && [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 0.05
done
elapsed=$(($(now_ms) - t0))
if alive "${bg_pid[traffic]}"; then
    fail "the clients have not all seen their close ${elapsed} ms after SIGINT"
    finish
fi
wait_exit traffic
summary=$(clean "$tmp/traffic.out" | grep 'clients:' || true)
if [ "$bg_rc" -eq 0 ]; then
    pass "every client saw sys.shutdown or a clean close within ${elapsed} ms of SIGINT, every reply right ($summary)"
else
    fail "clients exit status $bg_rc: ${summary:-no summary}"
fi

if clean "$tmp/server.err" | grep -qiE 'assert|crash|exception|unhandled'; then
    fail "pipehubd's log shows a fault"
else
    pass "pipehubd logged $(wc -l <"$tmp/server.err") lines, no fault"
fi

finish
