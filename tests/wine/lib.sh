# shellcheck shell=bash
# What the shell tests in tests/wine share; sourced, never run:
#
#   source "$(dirname "$0")/lib.sh"
#   lib_init NAME PIPEHUBD PIPEHUB -- "$@"   # arguments, $tmp, counters, traps
#
# The caller (ctest, through scripts/test.sh) provides WINEPREFIX, WINEDEBUG
# and a running persistent wineserver; nothing here starts or stops Wine.
# Each check prints one line ("ok", "FAIL" with indented details, "SKIP"
# with the reason) and lib_summary ends the script with "N passed, M failed,
# K skipped", exiting nonzero when a check failed. Every background program
# is started through start (or start_daemon), waited for with a bound, and
# stopped by the exit trap if it is still running: a stray one would hold
# the wineserver, and ctest's output pipe, open.
set -euo pipefail

# lib_init NAME VAR... -- ARG...: the script's arguments, one for each VAR
# (usage and exit 2 otherwise), go to those variables; then a scratch folder
# ($tmp) named after the test, the counters and the traps. A script that
# has more to undo on exit defines on_exit.
lib_init() {
    local name=$1 vars=() i=0 v
    shift
    while [ "$1" != -- ]; do
        vars+=("$1")
        shift
    done
    shift
    if [ $# -ne ${#vars[@]} ]; then
        echo "usage: $0 ${vars[*]}" >&2
        exit 2
    fi
    for v in "${vars[@]}"; do
        i=$((i + 1))
        declare -g "$v=${!i}"
    done
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/ph-$name.XXXXXX")
    passed=0
    failed=0
    skipped=0
    stdin=/dev/null
    declare -gA bg_pid=()
    trap lib_cleanup EXIT
    trap 'exit 130' INT TERM
}

# shellcheck disable=SC2317 # called through the trap
lib_cleanup() {
    local name
    if declare -F on_exit >/dev/null; then
        on_exit || true
    fi
    for name in "${!bg_pid[@]}"; do
        stop_pid "${bg_pid[$name]}"
    done
    rm -rf "$tmp"
}

# ---- checks -----------------------------------------------------------------

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

# skip NAME REASON: a check Wine cannot make.
skip() {
    skipped=$((skipped + 1))
    echo "SKIP $1: $2"
}

# note TEXT: what Wine showed, for the record; not a check.
note() {
    echo "note $*"
}

# lib_summary [LOG[:LINES]...]: the closing count line; exits 1 when any
# check failed, after showing each LOG ("server.err": what the background
# program server wrote to stderr), its last LINES lines or all of it.
lib_summary() {
    local log lines
    if [ "$failed" -ne 0 ]; then
        for log in "$@"; do
            lines=
            [ "${log%%:*}" = "$log" ] || lines=${log#*:}
            show "${log%%:*}" "$lines"
        done
    fi
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ] && exit 0
    exit 1
}

# ---- time and processes -------------------------------------------------------

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# True while pid is a live process. kill -0 is not enough: it also succeeds
# on a zombie, and a program that has exited stays one until we wait for it.
alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# stop_pid PID: Ctrl+C (Wine turns SIGINT into CTRL_C_EVENT), then up to
# 5 s, then SIGKILL; reaps it.
stop_pid() {
    local pid=$1 _
    if alive "$pid"; then
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# ---- Windows programs in the foreground --------------------------------------

# clean FILE: the captured stream without Wine's CRs and without its debug
# channel lines ("0024:err:"), which depend on WINEDEBUG, not on the program.
clean() {
    tr -d '\r' <"$1" | grep -Ev '^[0-9a-f]{4}:(err|fixme|warn|trace):' || true
}

# run_exe EXE [ARGS...]: the program under Wine, stdin from $stdin, cut
# off after $run_limit_s seconds when that is set (status 124). Leaves
# its exit status in rc, its output in $tmp/out.raw and $tmp/err.raw as
# written, $tmp/out without CRs, $tmp/err cleaned, and the wall time in
# elapsed_ms. Each script defines run, the programs it runs most, on top.
run_exe() {
    local t0 t1
    t0=$(date +%s%N)
    rc=0
    if [ -n "${run_limit_s:-}" ]; then
        timeout -k 10 "$run_limit_s" wine "$@" >"$tmp/out.raw" 2>"$tmp/err.raw" <"$stdin" || rc=$?
    else
        wine "$@" >"$tmp/out.raw" 2>"$tmp/err.raw" <"$stdin" || rc=$?
    fi
    t1=$(date +%s%N)
    elapsed_ms=$(((t1 - t0) / 1000000))
    tr -d '\r' <"$tmp/out.raw" >"$tmp/out"
    clean "$tmp/err.raw" >"$tmp/err"
}

# What went wrong, for a failed check: the last run's status and output.
details() {
    echo "exit status $rc after $elapsed_ms ms"
    echo "stdout:"
    head -c 3000 "$tmp/out" | cat -v | head -n 40 | sed 's/^/  /'
    echo "stderr:"
    head -c 1200 "$tmp/err" | cat -v | head -n 12 | sed 's/^/  /'
    if ! tr -d '\r' <"$tmp/err.raw" | cmp -s - "$tmp/err"; then
        echo "raw stderr: $(head -c 600 "$tmp/err.raw" | cat -v | head -n 8)"
    fi
}

# fail_run NAME [DETAIL...]: fail with the last run's output.
fail_run() {
    local name=$1 d
    shift
    mapfile -t d < <(details)
    fail "$name" "$@" "${d[@]}"
}

# re_quote TEXT...: the text (the arguments, joined by spaces) as an
# extended regex that matches only itself.
re_quote() {
    printf '%s' "$*" | sed 's/[][\\.*^$(){}?+|]/\\&/g'
}

# check NAME STATUS STDOUT STDERR_REGEX -- ARGS...: run ARGS (the script's
# run) and require the exit status, stdout exactly (CRs dropped), and stderr
# matching the extended regex over its whole text ('' for empty stderr).
check() {
    local name=$1 want_rc=$2 want_out=$3 want_err=$4 out err
    shift 5
    run "$@"
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
    if [ "$rc" -ne "$want_rc" ]; then
        fail_run "$name" "wanted exit status $want_rc"
    elif [ "$out" != "$want_out" ]; then
        fail_run "$name" "wanted stdout '$want_out'"
    elif { [ -z "$want_err" ] && [ -n "$err" ]; } ||
         { [ -n "$want_err" ] && ! [[ $err =~ ^($want_err)$ ]]; }; then
        fail_run "$name" "wanted stderr matching '${want_err:-(empty)}'"
    else
        pass "$name"
    fi
}

# check_rc NAME STATUS -- ARGS...: the exit status only.
check_rc() {
    local name=$1 want=$2
    shift 3
    run "$@"
    if [ "$rc" -eq "$want" ]; then
        pass "$name"
    else
        fail_run "$name" "wanted exit status $want"
    fi
}

# ---- Windows programs in the background ---------------------------------------

# start NAME EXE [ARGS...]: the program under Wine in the background, stdin
# from /dev/null, output in $tmp/NAME.out and $tmp/NAME.err; its pid in
# bg_pid[NAME]. With "&" the wine process execs into the Windows process
# itself, so that pid is the one that gets a SIGINT.
start() {
    local name=$1
    shift
    wine "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null &
    bg_pid[$name]=$!
}

# wait_text NAME STREAM REGEX [SECONDS]: until the cleaned stream (out or
# err) of NAME has a line matching REGEX, at most SECONDS (20). 0 when it
# did; a program that exits first has its last word read.
wait_text() {
    local name=$1 stream=$2 re=$3 secs=${4:-20} _
    for _ in $(seq $((secs * 10))); do
        if clean "$tmp/$name.$stream" | grep -Eq -- "$re"; then
            return 0
        fi
        if ! alive "${bg_pid[$name]}"; then
            clean "$tmp/$name.$stream" | grep -Eq -- "$re"
            return
        fi
        sleep 0.1
    done
    return 1
}

# wait_exit NAME [SECONDS]: until NAME has exited, at most SECONDS (20); its
# status in bg_rc, 999 when it did not exit in time (it is then stopped).
wait_exit() {
    local name=$1 secs=${2:-20} pid=${bg_pid[$1]} _
    for _ in $(seq $((secs * 10))); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        stop_pid "$pid"
        bg_rc=999
    else
        bg_rc=0
        wait "$pid" || bg_rc=$?
    fi
    unset "bg_pid[$name]"
}

# check_exit NAME SECONDS CHECK [REGEX]: NAME must exit within SECONDS with
# status 0 and (when REGEX is given) a line of its stdout matching REGEX.
check_exit() {
    local name=$1 secs=$2 check=$3 re=${4:-}
    wait_exit "$name" "$secs"
    if [ "$bg_rc" -eq 0 ] &&
       { [ -z "$re" ] || clean "$tmp/$name.out" | grep -Eq -- "$re"; }; then
        pass "$check"
    else
        fail "$check" "exit status $bg_rc" "$(bg_details "$name")"
    fi
}

# interrupt NAME LIMIT_MS: Ctrl+C to NAME, and wait for its exit up to
# twice LIMIT_MS. The time from the signal to the exit goes to stop_ms, the
# exit status to bg_rc; 999 when it was still running (it is then killed).
interrupt() {
    local name=$1 limit=$2 pid=${bg_pid[$1]} t0 deadline
    t0=$(now_ms)
    kill -INT "$pid"
    deadline=$((t0 + 2 * limit))
    while alive "$pid" && [ "$(now_ms)" -lt "$deadline" ]; do
        sleep 0.02
    done
    stop_ms=$(($(now_ms) - t0))
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        bg_rc=999
    else
        bg_rc=0
        wait "$pid" || bg_rc=$?
    fi
    unset "bg_pid[$name]"
}

# check_stop NAME LIMIT_MS [WHAT]: Ctrl+C to NAME, a pipehubd, which must
# exit within LIMIT_MS with status 0 (WHAT goes into the first check's
# line). 1 when it did not exit at all and was killed.
check_stop() {
    local name=$1 limit=$2 what=${3:-}
    interrupt "$name" "$limit"
    if [ "$bg_rc" -eq 999 ]; then
        fail "pipehubd still running ${stop_ms} ms after SIGINT"
        return 1
    fi
    if [ "$stop_ms" -le "$limit" ]; then
        pass "pipehubd stopped ${stop_ms} ms after SIGINT$what (limit ${limit} ms)"
    else
        fail "pipehubd took ${stop_ms} ms to stop after SIGINT (limit ${limit} ms)"
    fi
    if [ "$bg_rc" -eq 0 ]; then
        pass "pipehubd exit status 0"
    else
        fail "pipehubd exit status $bg_rc, expected 0" \
            "its log: $(clean "$tmp/$name.err" | tail -n 5)"
    fi
}

# bg_details NAME: how NAME's output begins, for a failed check.
bg_details() {
    echo "$1 stdout: $(clean "$tmp/$1.out" | head -c 600 | cat -v | head -n 10)"
    echo "$1 stderr: $(clean "$tmp/$1.err" | head -c 600 | cat -v | head -n 10)"
}

# show LOG [LINES]: the last LINES (all) lines of LOG ("server.err", the
# stderr of the background program server), cleaned and indented.
show() {
    local lines=${2:-}
    echo "--- ${1%%.*} std${1#*.}${lines:+ (last $lines lines)}"
    if [ -n "$lines" ]; then
        clean "$tmp/$1" | tail -n "$lines" | sed "s/^/    ${1%%.*}: /"
    else
        clean "$tmp/$1" | sed "s/^/    ${1%%.*}: /"
    fi
}

# start_busy CLIENT SECONDS CHECK EXE [ARGS...]: pipehubd on $PIPE as
# "server", not waited for, and beside it a program of clients (as CLIENT)
# that waits for the pipe itself and prints "ready" once its connections are
# going. CHECK passes when that came within SECONDS; 1 when not.
start_busy() {
    local client=$1 secs=$2 check=$3
    shift 3
    start server "$PIPEHUBD" run --pipe "$PIPE"
    echo "pipehubd pid ${bg_pid[server]} serving pipe $PIPE"
    start "$client" "$@"
    if wait_text "$client" out '^ready$' "$secs"; then
        pass "$check"
    else
        fail "$check" "$client never said ready; the server is $(alive "${bg_pid[server]}" && echo "still running" || echo "gone")"
        return 1
    fi
}

# start_daemon NAME PIPE [ARGS...]: "pipehubd run --pipe PIPE ARGS" in the
# background ($PIPEHUBD), waited for until it answers sys.ping through
# $PIPEHUB (0), or not within 20 s (1).
start_daemon() {
    local name=$1 pipe=$2 _
    shift 2
    start "$name" "$PIPEHUBD" run --pipe "$pipe" "$@"
    for _ in $(seq 40); do
        alive "${bg_pid[$name]}" || return 1
        run_exe "$PIPEHUB" --pipe "$pipe" --timeout 1000 call sys.ping
        [ "$rc" -eq 0 ] && return 0
        sleep 0.5
    done
    return 1
}
