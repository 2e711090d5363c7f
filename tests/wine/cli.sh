#!/usr/bin/env bash
# Integration test of pipehub.exe, the command-line client, against a real
# pipehubd under Wine.
#
#   bash tests/wine/cli.sh PATH/pipehubd.exe PATH/pipehub.exe
#
# The daemon runs in the console on its own pipe name, so this test can run
# beside the others. Output and exit status as tests/wine/lib.sh says.
set -euo pipefail

# shellcheck source=tests/wine/lib.sh
source "$(dirname "$0")/lib.sh"
lib_init cli PIPEHUBD PIPEHUB -- "$@"

PIPE=ph-cli-$$
PIPE_PATH='\\.\pipe\'$PIPE
UNSERVED=ph-cli-none-$$

run() { run_exe "$PIPEHUB" "$@"; }

# ---- start the daemon -------------------------------------------------------
if start_daemon server "$PIPE"; then
    pass "server answers sys.ping on $PIPE_PATH"
else
    fail_run "server answers sys.ping on $PIPE_PATH" \
        "the server $(alive "${bg_pid[server]}" && echo "is still running" ||
                      echo "has exited"); the last call:" \
        "server.log: $(clean "$tmp/server.err" | tail -n 5)"
    lib_summary
fi

# ---- ping ------------------------------------------------------------------
run --pipe "$PIPE" ping -n 3
mapfile -t lines <"$tmp/out"
ping_ok=1
if [ "$rc" -ne 0 ] || [ -s "$tmp/err" ] || [ "${#lines[@]}" -ne 4 ]; then
    ping_ok=0
else
    for i in 0 1 2; do
        [[ ${lines[$i]} =~ ^sys\.ping\ $((i + 1)):\ [0-9]+\ us$ ]] || ping_ok=0
    done
    summary='^3 pings: min ([0-9]+) us, median ([0-9]+) us, max ([0-9]+) us$'
    if [[ ${lines[3]} =~ $summary ]]; then
        min=${BASH_REMATCH[1]} med=${BASH_REMATCH[2]} max=${BASH_REMATCH[3]}
        [ "$min" -le "$med" ] && [ "$med" -le "$max" ] || ping_ok=0
    else
        ping_ok=0
    fi
fi
if [ "$ping_ok" -eq 1 ]; then
    pass "ping -n 3 prints 3 times and a min <= median <= max summary"
else
    fail_run "ping -n 3 prints 3 times and a min <= median <= max summary"
fi

run --pipe "$PIPE" ping
if [ "$rc" -eq 0 ] && [ "$(wc -l <"$tmp/out")" -eq 5 ] &&
   [[ $(tail -n 1 "$tmp/out") =~ ^4\ pings: ]]; then
    pass "ping sends 4 by default"
else
    fail_run "ping sends 4 by default"
fi

# ---- call ------------------------------------------------------------------
check "call sys.echo hello prints hello" 0 "hello" "" -- \
    --pipe "$PIPE" call sys.echo hello
check "call sys.echo keeps spaces in the payload" 0 "hello pipe hub" "" \
    -- \
    --pipe "$PIPE" call sys.echo "hello pipe hub"
check "call sys.ping prints an empty line" 0 "" "" -- \
    --pipe "$PIPE" call sys.ping
if [ "$(wc -c <"$tmp/out")" -ne 1 ]; then
    fail "empty reply is exactly one newline" "stdout: $(sed -n l "$tmp/out")"
else
    pass "empty reply is exactly one newline"
fi
check "a full \\\\.\\pipe\\ path works as --pipe" 0 "full" "" -- \
    --pipe "$PIPE_PATH" --timeout 3000 call sys.echo full
check "call no.such.route exits 1 with NO_ROUTE" 1 "" \
    "error: NO_ROUTE: .+" -- \
    --pipe "$PIPE" call no.such.route

# ---- stats -----------------------------------------------------------------
run --pipe "$PIPE" stats
stats=$(cat "$tmp/out")
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] &&
   [[ $stats =~ ^\{.*\}$ ]] &&
   [[ $stats =~ \"connections_total\"\ *:\ *([0-9]+) ]] &&
   [ "${BASH_REMATCH[1]}" -ge 1 ]; then
    pass "stats prints a JSON object with \"connections_total\""
else
    fail_run "stats prints a JSON object with \"connections_total\""
fi

# ---- failures --------------------------------------------------------------
# A missing server must be a quick, clear error, never a wait for the timeout.
check "a pipe nobody serves exits 3 with one line" 3 "" \
    "$(re_quote "pipehub: no server on \\\\.\\pipe\\$UNSERVED" \
               "(is pipehubd running?)")" -- \
    --pipe "$UNSERVED" --timeout 10000 call sys.ping
if [ "$elapsed_ms" -lt 5000 ]; then
    pass "a pipe nobody serves fails in under 5 s ($elapsed_ms ms)"
else
    fail "a pipe nobody serves fails in under 5 s" "took $elapsed_ms ms"
fi

check "an unknown option exits 2 with usage" 2 "" \
    "pipehub: unknown option '--bogus'.*usage: pipehub .*" -- \
    --pipe "$PIPE" --bogus call sys.ping
check "--timeout without a number exits 2" 2 "" \
    "pipehub: --timeout wants .*usage: pipehub .*" -- \
    --pipe "$PIPE" --timeout soon call sys.ping
check "ping -n 0 exits 2" 2 "" "pipehub: -n wants .*usage: pipehub .*" -- \
    --pipe "$PIPE" ping -n 0
check "call without a route exits 2" 2 "" \
    "pipehub: .*usage: pipehub .*" -- \
    --pipe "$PIPE" call
check "a bad route exits 2 before connecting" 2 "" \
    "pipehub: 'no such' is not a route.*usage: pipehub .*" -- \
    --pipe "$PIPE" call "no such"
check "no command exits 2" 2 "" \
    "pipehub: no command given.*usage: pipehub .*" -- \
    --pipe "$PIPE"
run --help
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] &&
   [ "$(head -n 1 "$tmp/out" | cut -c1-15)" = "usage: pipehub " ]; then
    pass "--help prints usage on stdout and exits 0"
else
    fail_run "--help prints usage on stdout and exits 0"
fi

# ---- stop ------------------------------------------------------------------
# SIGINT reaches the Windows process as CTRL_C_EVENT; the daemon must drain
# and exit 0 within 20 s.
check_stop server 20000 || true

check "after the stop the pipe has no server" 3 "" \
    "pipehub: no server on .*" -- --pipe "$PIPE" call sys.ping

lib_summary
