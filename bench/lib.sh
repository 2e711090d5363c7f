# Sourced by the bench scripts (run.sh, soak.sh, count_requests.sh): the
# build's programs, the Wine prefix and wineserver, a scratch directory
# that goes on exit, and stopping the server under test.
# shellcheck shell=bash

# The checkout, and the script's name for its messages.
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=$(basename "$0")

# bench_build_dir DIR: build (DIR made absolute) and the programs in it,
# PIPEHUBD, PIPEHUB and BASELINE; exit 2 when DIR is no directory. An empty
# DIR is build/mingw, built first (the README's one command: what is
# missing is installed, then the Windows build is made).
bench_build_dir() {
    local dir=${1:-$BENCH_ROOT/build/mingw}
    if [ -z "$1" ]; then
        (source "$BENCH_ROOT/scripts/common.sh" && ph_deps run && ph_build_windows) >&2
    fi
    build=$(cd "$dir" 2>/dev/null && pwd) || {
        echo "$BENCH_NAME: no build directory $dir" >&2
        exit 2
    }
    PIPEHUBD=$build/pipehubd.exe
    PIPEHUB=$build/pipehub.exe
    BASELINE=$build/baseline.exe
}

# bench_need_programs: exit 2 unless pipehubd.exe and pipehub.exe are built.
bench_need_programs() {
    local f
    for f in "$PIPEHUBD" "$PIPEHUB"; do
        [ -f "$f" ] || { echo "$BENCH_NAME: $f is missing: build first" >&2; exit 2; }
    done
}

# bench_baseline: compile bench/baseline.c into BASELINE when it is missing
# or older than its source (until CMake builds it).
bench_baseline() {
    if [ ! -f "$BASELINE" ] || [ "$BENCH_ROOT/bench/baseline.c" -nt "$BASELINE" ]; then
        x86_64-w64-mingw32-gcc -std=c11 -O2 -Wall -Wextra -Werror \
            -Wstrict-prototypes -Wshadow -static -DWIN32_LEAN_AND_MEAN \
            -D_WIN32_WINNT=0x0602 -o "$BASELINE" "$BENCH_ROOT/bench/baseline.c"
    fi
}

# bench_winpath PATH: PATH as Windows sees it under Wine (drive Z: is the
# Unix root).
bench_winpath() {
    printf 'Z:%s' "$(printf '%s' "$1" | tr / '\\')"
}

# bench_wine_env PREFIX: Wine, quiet and without the Mono and Gecko
# prompts, in PREFIX.
bench_wine_env() {
    export WINEPREFIX=$1
    export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
}

# bench_wine_prefix: make the prefix on first use.
bench_wine_prefix() {
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
        echo "$BENCH_NAME: making the Wine prefix $WINEPREFIX" >&2
        wineboot -i >/dev/null 2>&1
        wineserver -w
    fi
}

# bench_wineserver_start: a persistent wineserver. Wine's own helper
# processes start with the first program; let that happen before anything
# is timed.
bench_wineserver_start() {
    # wineserver -p fails (status 2, no message) when one already serves
    # the prefix; say so rather than end the run without a word. Going on
    # would time against it, and the exit trap would kill what it runs.
    if ! wineserver -p; then
        echo "$BENCH_NAME: a wineserver already runs for $WINEPREFIX (another" \
             "bench, test or scripts/run.sh?); stop it first:" \
             "WINEPREFIX=$WINEPREFIX wineserver -k" >&2
        exit 1
    fi
    wine cmd /c exit >/dev/null 2>&1 || true
}

# bench_work_dir: work, a scratch directory, and server_pid, the server under
# test; on exit the server is killed, the wineserver stopped and work removed.
bench_work_dir() {
    work=$(mktemp -d)
    server_pid=
    trap bench_cleanup EXIT
}

bench_cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wineserver -k 2>/dev/null || true
    rm -rf "$work"
}

# bench_stop_server: Ctrl+C to server_pid, up to 5 s to go, then killed.
bench_stop_server() {
    kill -INT "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

# bench_session [BUILD_DIR]: the usual start of a bench script in one call:
# the build's programs (built first when BUILD_DIR is empty), Wine in
# PH_BENCH_PREFIX (default build/wineprefix-bench), a scratch directory, the
# prefix made on first use, and a persistent wineserver.
bench_session() {
    bench_build_dir "${1:-}"
    bench_wine_env "${PH_BENCH_PREFIX:-$BENCH_ROOT/build/wineprefix-bench}"
    bench_need_programs
    bench_work_dir
    bench_wine_prefix
    bench_wineserver_start
}

# bench_line FILE ARGS...: one `pipehub bench ARGS` run against $pipe; its
# result line is appended to FILE (and shown on stderr), or "bench failed"
# with the errors' tail when there is none.
bench_line() {
    local file=$1 line
    shift
    if ! line=$(wine "$PIPEHUB" --pipe "$pipe" --timeout 60000 bench "$@" \
        2>>"$work/errors" | tr -d '\r' | grep '^bench ' | tail -1) ||
        [ -z "$line" ]; then
        echo "$BENCH_NAME: bench $* failed:" >&2
        tail -3 "$work/errors" >&2
        line="bench failed"
    fi
    echo "  $(basename "$file"): $line" >&2
    echo "$line" >>"$file"
}

# ---- reading the result lines (files $work/TARGET.KEY, one line a round)

# val KEY LINE: the value of KEY=... in a bench result line.
val() { printf '%s\n' "$2" | tr -d '\r' | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# median TARGET KEY FIELD: the median over the rounds of FIELD.
median() {
    local f=$work/$1.$2
    [ -f "$f" ] || { echo "-"; return; }
    while read -r line; do val "$3" " $line"; done <"$f" |
        grep -E '^[0-9.]+$' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# pratio TARGET_A KEY_A TARGET_B KEY_B FIELD: the median over the rounds of
# A / B, each round's A over the same round's B. The hub's rows use it: the
# machine's speed drifts by more between rounds (other sessions, Wine's own
# state) than between two runs of one round.
pratio() {
    paste -d'|' "$work/$1.$2" "$work/$3.$4" 2>/dev/null | while IFS='|' read -r a b; do
        x=$(val "$5" " $a") y=$(val "$5" " $b")
        [ -n "$x" ] && [ -n "$y" ] &&
            awk -v x="$x" -v y="$y" 'BEGIN { if (y + 0 > 0) printf "%.4f\n", x / y }'
    done | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2fx\n", m } }'
}
