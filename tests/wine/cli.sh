#!/usr/bin/env bash
# Integration test of pipehub.exe, the command-line client, against a real
# pipehubd under Wine.
#
#   bash tests/wine/cli.sh PATH/pipehubd.exe PATH/pipehub.exe
#
# The caller (ctest) provides WINEPREFIX, WINEDEBUG and a running persistent
# wineserver. The daemon runs in the console on its own pipe name, so this
# test can run beside the others. Prints one line per check and ends with
# "N passed, M failed"; exits nonzero when any check failed.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 PIPEHUBD.EXE PIPEHUB.EXE" >&2
    exit 2
fi
PIPEHUBD=$1
PIPEHUB=$2
PIPE=ph-cli-$$
PIPE_PATH='\\.\pipe\'$PIPE
UNSERVED=ph-cli-none-$$

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ph-cli.XXXXXX")
server_pid=
passed=0
failed=0

# True while pid is a live process. kill -0 is not enough: it also succeeds
# on a zombie, and a server that has exited stays one until we wait for it.
alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# Runs on every exit, also after a failed check or a signal: no daemon may
# outlive the test, or it would hold the wineserver (and the ctest run) open.
cleanup() {
    local i
    if [ -n "$server_pid" ] && alive "$server_pid"; then
        kill -INT "$server_pid" 2>/dev/null || true
        for i in $(seq 50); do
            alive "$server_pid" || break
            sleep 0.1
        done
        if alive "$server_pid"; then
            kill -KILL "$server_pid" 2>/dev/null || true
        fi
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() {
    passed=$((passed + 1))
    echo "ok   $1"
}

# fail NAME [DETAIL...]: one line for the check, then indented details.
fail() {
    local name=$1
    shift
    failed=$((failed + 1))
    echo "FAIL $name"
    if [ $# -gt 0 ]; then
        printf '       %s\n' "$@"
    fi
}

# Run pipehub.exe with the given arguments. Leaves its exit status in rc,
# its stdout and stderr (without Wine's CRs) in $tmp/out and $tmp/err, and
# the wall time in ms in elapsed_ms. Wine's debug channel lines ("0024:err:")
# are dropped from $tmp/err: they depend on WINEDEBUG, not on pipehub.
# $tmp/err.raw keeps everything for the failure details.
run() {
    local t0 t1
    t0=$(date +%s%N)
    rc=0
    wine "$PIPEHUB" "$@" >"$tmp/out.raw" 2>"$tmp/err.raw" </dev/null || rc=$?
    t1=$(date +%s%N)
    elapsed_ms=$(((t1 - t0) / 1000000))
    tr -d '\r' <"$tmp/out.raw" >"$tmp/out"
    tr -d '\r' <"$tmp/err.raw" |
        grep -Ev '^[0-9a-f]{4}:(err|fixme|warn|trace):' >"$tmp/err" ||
        true
}

# What went wrong, for a failed check: the last command's status and output.
details() {
    echo "exit status $rc after $elapsed_ms ms"
    echo "stdout: $(head -c 400 "$tmp/out" | cat -v | head -n 8)"
    echo "stderr: $(head -c 400 "$tmp/err" | cat -v | head -n 8)"
    if ! tr -d '\r' <"$tmp/err.raw" | cmp -s - "$tmp/err"; then
        echo "raw stderr: $(head -c 600 "$tmp/err.raw" | cat -v | head -n 8)"
    fi
}

# The text (the arguments, joined by spaces) as an extended regex that
# matches only itself.
re_quote() {
    printf '%s' "$*" | sed 's/[][\\.*^$(){}?+|]/\\&/g'
}

# check_call NAME STATUS STDOUT STDERR_PATTERN -- ARGS...
# Runs pipehub ARGS and requires the exit status, stdout exactly, and stderr
# to match the extended regex over its whole text ('' for empty stderr).
check_call() {
    local name=$1 want_rc=$2 want_out=$3 want_err=$4 out err
    shift 5
    run "$@"
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
    if [ "$rc" -ne "$want_rc" ]; then
        local d
        mapfile -t d < <(details)
        fail "$name" "wanted exit status $want_rc" "${d[@]}"
    elif [ "$out" != "$want_out" ]; then
        local d
        mapfile -t d < <(details)
        fail "$name" "wanted stdout '$want_out'" "${d[@]}"
    elif { [ -z "$want_err" ] && [ -n "$err" ]; } ||
         { [ -n "$want_err" ] && ! [[ $err =~ ^($want_err)$ ]]; }; then
        local d
        mapfile -t d < <(details)
        fail "$name" "wanted stderr matching '${want_err:-(empty)}'" "${d[@]}"
    else
        pass "$name"
    fi
}

# ---- start the daemon -------------------------------------------------------
wine "$PIPEHUBD" run --pipe "$PIPE" >"$tmp/server.out" 2>"$tmp/server.log" &
server_pid=$!

ready=0
for i in $(seq 40); do
    if ! alive "$server_pid"; then
        break
    fi
    run --pipe "$PIPE" --timeout 1000 call sys.ping
    if [ "$rc" -eq 0 ]; then
        ready=1
        break
    fi
    sleep 0.5
done
if [ "$ready" -eq 1 ]; then
    pass "server answers sys.ping on $PIPE_PATH"
else
    mapfile -t d < <(details)
    fail "server answers sys.ping on $PIPE_PATH" \
        "the server $(alive "$server_pid" && echo "is still running" ||
                      echo "has exited"); the last call:" "${d[@]}" \
        "server.log: $(tail -n 5 "$tmp/server.log" | tr -d '\r')"
    echo "$passed passed, $failed failed"
    exit 1
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
    mapfile -t d < <(details)
    fail "ping -n 3 prints 3 times and a min <= median <= max summary" "${d[@]}"
fi

run --pipe "$PIPE" ping
if [ "$rc" -eq 0 ] && [ "$(wc -l <"$tmp/out")" -eq 5 ] &&
   [[ $(tail -n 1 "$tmp/out") =~ ^4\ pings: ]]; then
    pass "ping sends 4 by default"
else
    mapfile -t d < <(details)
    fail "ping sends 4 by default" "${d[@]}"
fi

# ---- call ------------------------------------------------------------------
check_call "call sys.echo hello prints hello" 0 "hello" "" -- \
    --pipe "$PIPE" call sys.echo hello
check_call "call sys.echo keeps spaces in the payload" 0 "hello pipe hub" "" \
    -- \
    --pipe "$PIPE" call sys.echo "hello pipe hub"
check_call "call sys.ping prints an empty line" 0 "" "" -- \
    --pipe "$PIPE" call sys.ping
if [ "$(wc -c <"$tmp/out")" -ne 1 ]; then
    fail "empty reply is exactly one newline" "stdout: $(sed -n l "$tmp/out")"
else
    pass "empty reply is exactly one newline"
fi
check_call "a full \\\\.\\pipe\\ path works as --pipe" 0 "full" "" -- \
    --pipe "$PIPE_PATH" --timeout 3000 call sys.echo full
check_call "call no.such.route exits 1 with NO_ROUTE" 1 "" \
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
    mapfile -t d < <(details)
    fail "stats prints a JSON object with \"connections_total\"" "${d[@]}"
fi

# ---- failures --------------------------------------------------------------
# A missing server must be a quick, clear error, never a wait for the timeout.
check_call "a pipe nobody serves exits 3 with one line" 3 "" \
    "$(re_quote "pipehub: no server on \\\\.\\pipe\\$UNSERVED" \
               "(is pipehubd running?)")" -- \
    --pipe "$UNSERVED" --timeout 10000 call sys.ping
if [ "$elapsed_ms" -lt 5000 ]; then
    pass "a pipe nobody serves fails in under 5 s ($elapsed_ms ms)"
else
    fail "a pipe nobody serves fails in under 5 s" "took $elapsed_ms ms"
fi

check_call "an unknown option exits 2 with usage" 2 "" \
    "pipehub: unknown option '--bogus'.*usage: pipehub .*" -- \
    --pipe "$PIPE" --bogus call sys.ping
check_call "--timeout without a number exits 2" 2 "" \
    "pipehub: --timeout wants .*usage: pipehub .*" -- \
    --pipe "$PIPE" --timeout soon call sys.ping
check_call "ping -n 0 exits 2" 2 "" "pipehub: -n wants .*usage: pipehub .*" -- \
    --pipe "$PIPE" ping -n 0
check_call "call without a route exits 2" 2 "" \
    "pipehub: .*usage: pipehub .*" -- \
    --pipe "$PIPE" call
check_call "a bad route exits 2 before connecting" 2 "" \
    "pipehub: 'no such' is not a route.*usage: pipehub .*" -- \
    --pipe "$PIPE" call "no such"
check_call "no command exits 2" 2 "" \
    "pipehub: no command given.*usage: pipehub .*" -- \
    --pipe "$PIPE"
run --help
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] &&
   [ "$(head -n 1 "$tmp/out" | cut -c1-15)" = "usage: pipehub " ]; then
    pass "--help prints usage on stdout and exits 0"
else
    mapfile -t d < <(details)
    fail "--help prints usage on stdout and exits 0" "${d[@]}"
fi

# ---- stop ------------------------------------------------------------------
# SIGINT reaches the Windows process as CTRL_C_EVENT; the daemon must drain
# and exit 0. Give it 20 s, then count it as hung.
kill -INT "$server_pid" 2>/dev/null || true
for i in $(seq 200); do
    alive "$server_pid" || break
    sleep 0.1
done
if alive "$server_pid"; then
    fail "server exits after Ctrl+C" "still running 20 s after SIGINT"
    kill -KILL "$server_pid" 2>/dev/null || true
fi
server_rc=0
wait "$server_pid" || server_rc=$?
server_pid=
if [ "$server_rc" -eq 0 ]; then
    pass "server exits with status 0 after Ctrl+C"
else
    fail "server exits with status 0 after Ctrl+C" "exit status $server_rc" \
        "server.log: $(tail -n 5 "$tmp/server.log" | tr -d '\r')"
fi

check_call "after the stop the pipe has no server" 3 "" \
    "pipehub: no server on .*" -- --pipe "$PIPE" call sys.ping

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
