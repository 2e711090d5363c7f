#!/usr/bin/env bash
# pipehubd as a Windows service, end to end, under Wine:
#
#   bash tests/wine/service.sh PATH/pipehubd.exe PATH/pipehub.exe
#
# test_service.exe and test_transport.exe are taken from pipehubd.exe's
# directory (the build directory). Services need the persistent wineserver
# with Wine's own processes started (scripts/common.sh; see
# /work/shared/WINE.md). The SCM is driven through pipehubd's own verbs,
# never `sc start`.
#
# Sequence: check-config on good and bad files; `run` refuses a bad file;
# `service` outside the SCM prints usage; install -> event source registered
# -> start -> status RUNNING -> a client round trip -> a connection held
# across an INI edit + reload: generation 2 and the new max_frame_bytes
# applies to it -> a broken INI + reload changes nothing (generation stays
# 2, the service serves on, the errors are logged) -> stop with 32 clients
# connected: STOP_PENDING, then STOPPED within 10 s -> a start on the broken
# INI fails with the reason -> a second instance side by side on its own pipe
# -> install with a taken name fails -> uninstall (while running) removes
# the service and its event source. Output and exit status as
# tests/wine/lib.sh says. The service names and pipes carry this shell's
# pid, and an exit trap uninstalls whatever is still installed.
set -euo pipefail

# shellcheck source=tests/wine/lib.sh
source "$(dirname "$0")/lib.sh"
lib_init svc PIPEHUBD PIPEHUB -- "$@"

BIN=$(dirname "$PIPEHUBD")
TEST_SERVICE=$BIN/test_service.exe
TEST_TRANSPORT=$BIN/test_transport.exe
NAME=ph-svc-$$
NAME_B=ph-svc-b-$$
PIPE=ph-svc-$$
PIPE_B=ph-svc-b-$$
HOLD_N=32
STOP_LIMIT_MS=10000

for f in "$PIPEHUBD" "$PIPEHUB" "$TEST_SERVICE" "$TEST_TRANSPORT"; do
    if [ ! -f "$f" ]; then
        echo "missing $f" >&2
        exit 2
    fi
done

WTMP=$(winepath -w "$tmp")
INI=$tmp/a.ini
WINI=$WTMP\\a.ini
WLOG=$WTMP\\a.log
installed=()

# On any exit, before lib.sh ends the helpers: uninstall what this run
# installed (uninstall stops it first), so no service outlives the test.
# shellcheck disable=SC2317 # called through the trap
on_exit() {
    local n
    for n in "${installed[@]}"; do
        wine "$PIPEHUBD" uninstall --name "$n" </dev/null >/dev/null 2>&1 || true
    done
}

run() { run_exe "$@"; }

# has FILE ERE: a line of FILE matches.
has() { grep -Eq -- "$2" "$1"; }

# The value of "key":N in `pipehub stats` on pipe $1, or "" on failure.
stat_of() {
    run "$PIPEHUB" --pipe "$1" --timeout 5000 stats
    grep -o "\"$2\":[0-9]*" "$tmp/out" | cut -d: -f2 || true
}

log_tail() {
    echo "service log ($WLOG):"
    tr -d '\r' <"$tmp/a.log" 2>/dev/null | tail -n 15 | sed 's/^/  /' || true
}

write_ini() { # PATH PIPE MAX_FRAME LOG
    cat >"$1" <<EOF
; written by tests/wine/service.sh
[server]
pipe_name = $2
max_frame_bytes = $3

[log]
level = info
file = $4
EOF
}

# ---- check-config and refusals, no service yet ------------------------------
write_ini "$INI" "$PIPE" 1048576 "$WLOG"
run "$PIPEHUBD" check-config "$WINI"
if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = "$WINI: ok" ]; then
    pass "check-config on a good file: exit 0, '$WINI: ok'"
else
    fail_run "check-config on a good file"
fi

cat >"$tmp/bad.ini" <<EOF
[server]
pipe_name = $PIPE
max_conections = 10
max_frame_bytes = 12
EOF
run "$PIPEHUBD" check-config "$WTMP\\bad.ini"
if [ "$rc" -eq 2 ] &&
   has "$tmp/err" 'bad\.ini:3: .*max_conections.*did you mean .max_connections' &&
   has "$tmp/err" 'bad\.ini:4: .*max_frame_bytes'; then
    pass "check-config on a bad file: exit 2, every problem as file:line"
else
    fail_run "check-config on a bad file: exit 2, every problem as file:line"
fi

# An activate_service that names no installed service, and a send queue
# smaller than max_frame_bytes: warnings with their lines, and the file is
# still good.
cat >"$tmp/warn.ini" <<EOF
[server]
pipe_name = $PIPE
max_frame_bytes = 17825792
[route.later.*]
activate_service = ph-not-installed-$$
EOF
run "$PIPEHUBD" check-config "$WTMP\\warn.ini"
if [ "$rc" -eq 0 ] &&
   has "$tmp/err" 'warn\.ini:3: warning: send_queue_bytes \(4194304\) is smaller than max_frame_bytes' &&
   has "$tmp/err" "warn\\.ini:5: warning: \\[route\\.later\\.\\*\\] activate_service: no service 'ph-not-installed-$$' is installed" &&
   grep -q ': ok$' "$tmp/out"; then
    pass "check-config warns, with the line, of a missing activate_service and a small send queue: exit 0"
else
    fail_run "check-config warns of a missing activate_service and a small send queue"
fi

check_rc "check-config on a missing file: exit 2" 2 -- \
    "$PIPEHUBD" check-config "$WTMP\\none.ini"

run "$PIPEHUBD" run --config "$WTMP\\bad.ini"
if [ "$rc" -ne 0 ] && has "$tmp/err" 'bad\.ini:3: ' &&
   has "$tmp/err" 'not starting'; then
    pass "run on a bad file refuses to start and says why (exit $rc)"
else
    fail_run "run on a bad file refuses to start and says why"
fi

run "$PIPEHUBD" run --config "$WTMP\\none.ini"
if [ "$rc" -ne 0 ]; then
    pass "run with an explicit --config that does not exist fails (exit $rc)"
else
    fail "run with an explicit --config that does not exist fails"
fi

# Bounded by timeout(1): a dispatcher waiting for an SCM that never calls
# would hang here. Windows fails the dispatcher at once; Wine 8 first waits
# up to 10 s for its control pipe ("failed to create control pipe error
# 121" on the service debug channel), so allow 30 s.
t0=$(now_ms)
rc=0
timeout 30 wine "$PIPEHUBD" service --name "$NAME" </dev/null \
    >"$tmp/out.raw" 2>"$tmp/err.raw" || rc=$?
elapsed_ms=$(($(now_ms) - t0))
tr -d '\r' <"$tmp/err.raw" >"$tmp/err"
: >"$tmp/out"
if [ "$rc" -eq 2 ] && has "$tmp/err" '^usage: pipehubd'; then
    pass "'service' outside the SCM prints usage and exits 2 (${elapsed_ms} ms)"
else
    fail_run "'service' outside the SCM prints usage and exits 2"
fi

# ---- install ----------------------------------------------------------------
run "$PIPEHUBD" install --name "$NAME" --config "$WINI" --start demand
if [ "$rc" -eq 0 ] && has "$tmp/out" "^installed service $NAME "; then
    installed+=("$NAME")
    pass "install --name $NAME --config $WINI --start demand"
else
    fail_run "install"
    lib_summary
fi

EVKEY="HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\$NAME"
run reg query "$EVKEY"
if [ "$rc" -eq 0 ] && has "$tmp/out" 'EventMessageFile +REG_EXPAND_SZ +.*pipehubd\.exe' &&
   has "$tmp/out" 'TypesSupported +REG_DWORD +0x7'; then
    pass "the event source $NAME is registered (EventMessageFile, TypesSupported)"
else
    fail_run "the event source $NAME is registered"
fi

run "$PIPEHUBD" status --name "$NAME"
if [ "$rc" -eq 0 ] && has "$tmp/out" '^state: STOPPED$' &&
   has "$tmp/out" "^command line: \".*pipehubd\\.exe\" service --name $NAME --config \"" &&
   has "$tmp/out" '^start: demand$'; then
    pass "status after install: STOPPED, demand start, the service command line"
else
    fail_run "status after install"
fi

# ---- start, status, a round trip ---------------------------------------------
run "$PIPEHUBD" start --name "$NAME"
if [ "$rc" -eq 0 ] && has "$tmp/out" "^$NAME: RUNNING \\(pid [0-9]+\\)"; then
    pass "start: RUNNING ($(head -n 1 "$tmp/out"))"
else
    fail_run "start" "$(log_tail)"
fi

run "$PIPEHUBD" status --name "$NAME"
if [ "$rc" -eq 0 ] && has "$tmp/out" '^state: RUNNING$' &&
   has "$tmp/out" '^pid: [1-9][0-9]*$' &&
   has "$tmp/out" "^pipe: \\\\\\\\\\.\\\\pipe\\\\$PIPE\$"; then
    pass "status: RUNNING, a pid, pipe \\\\.\\pipe\\$PIPE"
else
    fail_run "status: RUNNING, a pid and the pipe"
fi

run "$PIPEHUB" --pipe "$PIPE" --timeout 5000 call sys.echo hello
if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = hello ]; then
    pass "a client round trip through the service (sys.echo hello)"
else
    fail_run "a client round trip through the service"
fi

gen=$(stat_of "$PIPE" config_generation)
if [ "$gen" = 1 ]; then
    pass "sys.stats: config_generation 1 after start"
else
    fail "sys.stats: config_generation 1 after start" "got '$gen'" "$(cat "$tmp/out")"
fi

# ---- reload: a live limit, for a client that stays connected -----------------
SIGNAL=$tmp/reloaded
start hold-reload "$TEST_SERVICE" hold-reload "$PIPE" "$WTMP\\reloaded"
if wait_text hold-reload out '^ready$' 30; then
    pass "a connection is held open (8000 bytes echoed before the reload)"
else
    fail "a connection is held open" "$(bg_details hold-reload)"
fi

sed -i 's/^max_frame_bytes = 1048576$/max_frame_bytes = 4096/' "$INI"
run "$PIPEHUBD" reload --name "$NAME"
if [ "$rc" -eq 0 ] && has "$tmp/out" "^$NAME: reload sent"; then
    pass "reload --name $NAME after max_frame_bytes 1048576 -> 4096"
else
    fail_run "reload after editing the INI"
fi

gen=
deadline=$(($(now_ms) + 10000))
while [ "$(now_ms)" -lt "$deadline" ]; do
    gen=$(stat_of "$PIPE" config_generation)
    [ "$gen" = 2 ] && break
    sleep 0.2
done
if [ "$gen" = 2 ]; then
    pass "sys.stats: config_generation 2 after the reload"
else
    fail "sys.stats: config_generation 2 after the reload" "got '$gen'" "$(log_tail)"
fi

touch "$SIGNAL"
wait_exit hold-reload 30
clean "$tmp/hold-reload.out" | grep -E '^(ok|FAIL) ' | sed 's/^/     test_service: /'
if [ "$bg_rc" -eq 0 ]; then
    pass "the new limit applies to the connection that stayed open (TOO_LARGE for 8000 bytes)"
else
    fail "the new limit applies to the connection that stayed open" \
        "test_service exit status $bg_rc" "$(clean "$tmp/hold-reload.err")"
fi

# ---- a broken INI + reload changes nothing -----------------------------------
cp "$INI" "$tmp/a.good"
printf 'max_conections = 10\n' >>"$INI"
bad_line=$(wc -l <"$INI")
run "$PIPEHUBD" reload --name "$NAME"
if [ "$rc" -eq 2 ] && has "$tmp/err" "a\\.ini:$bad_line: .*max_conections"; then
    pass "reload of a broken INI: the console names a.ini:$bad_line, exit 2"
else
    fail_run "reload of a broken INI reports the problem"
fi
deadline=$(($(now_ms) + 10000))
while [ "$(now_ms)" -lt "$deadline" ] &&
      ! tr -d '\r' <"$tmp/a.log" | grep -q "a\\.ini:$bad_line: "; do
    sleep 0.1
done
if tr -d '\r' <"$tmp/a.log" | grep -q "ERROR.*a\\.ini:$bad_line: .*max_conections"; then
    pass "the service logged the error (a.ini:$bad_line) to its file log"
else
    fail "the service logged the error to its file log" "$(log_tail)"
fi
gen=$(stat_of "$PIPE" config_generation)
if [ "$gen" = 2 ]; then
    pass "config_generation stays 2 after the broken reload"
else
    fail "config_generation stays 2 after the broken reload" "got '$gen'"
fi
run "$PIPEHUB" --pipe "$PIPE" --timeout 5000 call sys.echo still-here
if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = still-here ]; then
    pass "the service keeps serving after the broken reload"
else
    fail_run "the service keeps serving after the broken reload"
fi

# ---- stop with 32 clients connected ------------------------------------------
start hold "$TEST_TRANSPORT" hold "$HOLD_N" "$PIPE"
if wait_text hold out '^ready$' 30; then
    pass "$HOLD_N clients connected and answered"
else
    fail "$HOLD_N clients connected" "$(clean "$tmp/hold.err" | tail -n 3)"
fi
run "$TEST_SERVICE" stop-watch "$NAME" "$STOP_LIMIT_MS"
sed 's/^/     test_service: /' "$tmp/out"
if [ "$rc" -eq 0 ]; then
    pass "stop with $HOLD_N clients: STOP_PENDING, then STOPPED within $STOP_LIMIT_MS ms"
else
    fail_run "stop with $HOLD_N clients reaches STOPPED within $STOP_LIMIT_MS ms" "$(log_tail)"
fi
wait_exit hold 35
if [ "$bg_rc" -eq 0 ]; then
    pass "every held client saw its connection closed ($(clean "$tmp/hold.out" | grep closed))"
else
    fail "every held client saw its connection closed" "exit status $bg_rc" \
        "$(clean "$tmp/hold.out" | tail -n 2)"
fi
if tr -d '\r' <"$tmp/a.log" | grep -q "service $NAME stopped"; then
    pass "the service logged its stop"
else
    fail "the service logged its stop" "$(log_tail)"
fi
run "$PIPEHUBD" status --name "$NAME"
if has "$tmp/out" '^state: STOPPED$' && ! has "$tmp/out" '^last exit:'; then
    pass "status: STOPPED, no error"
else
    fail_run "status: STOPPED, no error"
fi

# ---- a start on the broken INI fails, and says why --------------------------
run "$PIPEHUBD" start --name "$NAME"
if [ "$rc" -eq 1 ] && has "$tmp/err" 'service-specific error 1: the config file has problems' &&
   has "$tmp/err" "a\\.ini:$bad_line: .*max_conections"; then
    pass "start on the broken INI: refused with service-specific error 1 and a.ini:$bad_line"
else
    fail_run "start on the broken INI is refused with the reason"
fi
run "$PIPEHUBD" status --name "$NAME"
if has "$tmp/out" '^state: STOPPED$' && has "$tmp/out" '^last exit: service-specific error 1'; then
    pass "status shows the failed start's exit code"
else
    fail_run "status shows the failed start's exit code"
fi
cp "$tmp/a.good" "$INI"

# ---- a second instance, side by side ------------------------------------------
write_ini "$tmp/b.ini" "$PIPE_B" 1048576 "$WTMP\\b.log"
run "$PIPEHUBD" install --name "$NAME_B" --config "$WTMP\\b.ini" --start delayed
if [ "$rc" -eq 0 ]; then
    installed+=("$NAME_B")
    pass "install a second instance $NAME_B (--start delayed)"
else
    fail_run "install a second instance"
fi
delayed_note=$(cat "$tmp/err")
run "$PIPEHUBD" status --name "$NAME_B"
if has "$tmp/out" '^start: delayed$'; then
    pass "the second instance has delayed auto-start"
elif has "$tmp/out" '^start: auto$' &&
     [[ $delayed_note == *"no delayed auto-start"* ]]; then
    skip "delayed auto-start" "Wine 8 has no SERVICE_CONFIG_DELAYED_AUTO_START_INFO (installed as auto, with a warning)"
else
    fail_run "the second instance has delayed auto-start" "install said: $delayed_note"
fi
check_rc "start the first instance again" 0 -- "$PIPEHUBD" start --name "$NAME"
check_rc "start the second instance" 0 -- "$PIPEHUBD" start --name "$NAME_B"
run "$PIPEHUB" --pipe "$PIPE" --timeout 5000 call sys.echo from-a
out_a=$(cat "$tmp/out")
run "$PIPEHUB" --pipe "$PIPE_B" --timeout 5000 call sys.echo from-b
out_b=$(cat "$tmp/out")
if [ "$out_a" = from-a ] && [ "$out_b" = from-b ]; then
    pass "both instances serve, each on its own pipe"
else
    fail "both instances serve, each on its own pipe" "a: '$out_a'" "b: '$out_b'"
fi
run "$PIPEHUBD" stop --name "$NAME_B"
if [ "$rc" -eq 0 ] && has "$tmp/out" "^$NAME_B: STOPPED after [0-9]+ ms"; then
    pass "stop --name $NAME_B ($(head -n 1 "$tmp/out"))"
else
    fail_run "stop the second instance"
fi
run "$PIPEHUBD" uninstall --name "$NAME_B"
if [ "$rc" -eq 0 ]; then
    installed=("$NAME")
    pass "uninstall the second instance"
else
    fail_run "uninstall the second instance"
fi
run "$PIPEHUB" --pipe "$PIPE" --timeout 5000 call sys.echo a-still
if [ "$(cat "$tmp/out")" = a-still ]; then
    pass "the first instance serves on after the second is gone"
else
    fail_run "the first instance serves on after the second is gone"
fi

# ---- refusals ----------------------------------------------------------------
run "$PIPEHUBD" install --name "$NAME" --config "$WINI"
if [ "$rc" -ne 0 ] && has "$tmp/err" "a service named $NAME already exists"; then
    pass "install with a taken name fails: '$(head -n 1 "$tmp/err")'"
else
    fail_run "install with a taken name fails clearly"
fi

# ---- uninstall, while it runs -------------------------------------------------
run "$PIPEHUBD" uninstall --name "$NAME"
if [ "$rc" -eq 0 ] && has "$tmp/out" "^removed service $NAME and its event source"; then
    installed=()
    pass "uninstall stops the running service and removes it"
else
    fail_run "uninstall"
fi
run "$PIPEHUBD" status --name "$NAME"
if [ "$rc" -eq 1 ] && has "$tmp/err" "no service named $NAME is installed"; then
    pass "status after uninstall: no service named $NAME is installed"
else
    fail_run "status after uninstall says it does not exist"
fi
run reg query "$EVKEY"
if [ "$rc" -ne 0 ]; then
    pass "the event source key is gone"
else
    fail_run "the event source key is gone"
fi
run "$PIPEHUB" --pipe "$PIPE" --timeout 3000 call sys.ping
if [ "$rc" -eq 3 ]; then
    pass "nothing serves $PIPE any more"
else
    fail_run "nothing serves $PIPE any more"
fi

# ---- Event Viewer's view of a record -------------------------------------------
run "$TEST_SERVICE" msgtable "$(winepath -w "$PIPEHUBD")"
if [ "$rc" -eq 0 ]; then
    pass "pipehubd.exe's message table shows a record's text as logged"
else
    fail_run "pipehubd.exe's message table"
fi

lib_summary
