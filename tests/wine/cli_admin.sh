#!/usr/bin/env bash
# Integration test of pipehub.exe's administration commands, clients and
# doctor, against real pipehubd daemons under Wine.
#
#   bash tests/wine/cli_admin.sh PIPEHUBD.EXE PIPEHUB.EXE
#
# Each daemon runs in the console on its own pipe name, so this test can run
# beside the others. Output and exit status as tests/wine/lib.sh says ("note"
# lines record what Wine showed).
#
# What Wine 8 shows (seen here, and what the checks below rely on or record):
#   - GetNamedPipeServerProcessId, OpenProcess + QueryFullProcessImageNameW
#     and OpenProcessToken on the serving process all work: doctor names the
#     daemon's pid, its Z:\...\pipehubd.exe and the user's account.
#   - GetSecurityInfo on the client handle returns the descriptor as the
#     server gave it, generic rights unmapped (GA, not FA), so doctor reads
#     the configured DACL. Wine does not enforce pipe DACLs, but doctor's
#     reading of them can be checked. A pipe created with no security
#     attributes (bench/baseline.exe) has no owner and no DACL at all under
#     Wine, where Windows would give it a default DACL: doctor says
#     "WARN dacl no DACL".
#   - The owner Wine gives a pipe created from an SDDL without "O:" is the
#     user's primary group, S-1-5-21-0-0-0-513 (VM\None), not the user. Doctor
#     therefore flags the owner and the OWNER RIGHTS ACE of the default SDDL
#     (a group owning the pipe would let every member change its DACL); on
#     Windows the owner is the service's account and both are OK. The check
#     below accepts either outcome, but only a consistent one.
#   - A network open of \\127.0.0.1\pipe\NAME fails with error 3 (path not
#     found): Wine has no SMB redirector, so whether remote clients are
#     rejected stays "unknown" (INFO).
set -euo pipefail

# shellcheck source=tests/wine/lib.sh
source "$(dirname "$0")/lib.sh"
lib_init admin PIPEHUBD PIPEHUB -- "$@"

# bench/baseline.exe, a plain echo server, plays a program that is not
# pipehubd serving the name. Built by default beside pipehubd.exe.
BASELINE=$(dirname "$PIPEHUBD")/baseline.exe
PIPE=ph-admin-$$
LOOSE=ph-admin-loose-$$
FAKE=ph-admin-fake-$$
UNSERVED=ph-admin-none-$$
DEFAULT_SDDL='D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;OW)(A;;0x12019b;;;AU)'

run() { run_exe "$PIPEHUB" "$@"; }

# The line of doctor's output (in $tmp/out) for CHECK, without status.
doctor_line() {
    grep -E "^(OK|INFO|WARN|FAIL) +$1 " "$tmp/out" | head -n 1 || true
}

# findings_consistent: doctor's closing line counts its WARN and FAIL lines,
# and the exit status is 1 exactly when there is one. 0 when so.
findings_consistent() {
    local n
    n=$(grep -cE '^(WARN|FAIL) ' "$tmp/out" || true)
    if [ "$n" -eq 0 ]; then
        [ "$rc" -eq 0 ] && [ "$(tail -n 1 "$tmp/out")" = "doctor: no findings" ]
    else
        [ "$rc" -eq 1 ] &&
            [ "$(tail -n 1 "$tmp/out")" = "doctor: $n finding$([ "$n" -eq 1 ] || echo s) (WARN or FAIL above)" ]
    fi
}

# ---- the daemons ----------------------------------------------------------------
if start_daemon hub "$PIPE"; then
    pass "pipehubd answers on $PIPE (built-in defaults)"
else
    fail "pipehubd answers on $PIPE" "$(bg_details hub)"
    lib_summary
fi
# A deliberately loose pipe (Everyone: full control) whose sys.clients is
# only for SYSTEM, which the test's client is not.
cat >"$tmp/loose.ini" <<EOF
[security]
sddl = D:(A;;GA;;;WD)

[route.sys.clients]
call = SY
EOF
if start_daemon loose "$LOOSE" --config "$(winepath -w "$tmp/loose.ini")"; then
    pass "pipehubd answers on $LOOSE ([security] sddl = D:(A;;GA;;;WD))"
else
    fail "pipehubd answers on $LOOSE" "$(bg_details loose)"
fi

# ---- help and usage ----------------------------------------------------------------
run --help
if [ "$rc" -eq 0 ] && grep -Eq '^  clients \[--json\] ' "$tmp/out" &&
   grep -Eq '^  doctor \[--pipe NAME\] ' "$tmp/out"; then
    pass "--help lists clients and doctor"
else
    fail_run "--help lists clients and doctor"
fi
run --pipe "$PIPE" clients --bogus
if [ "$rc" -eq 2 ] && grep -q "clients takes only --json, not '--bogus'" "$tmp/err"; then
    pass "clients --bogus: usage error, exit 2"
else
    fail_run "clients --bogus: usage error, exit 2"
fi
run --pipe "$PIPE" doctor extra
if [ "$rc" -eq 2 ] && grep -q "doctor takes only --pipe NAME, not 'extra'" "$tmp/err"; then
    pass "doctor extra: usage error, exit 2"
else
    fail_run "doctor extra: usage error, exit 2"
fi
run doctor --pipe '\\host\pipe\x'
if [ "$rc" -eq 2 ] && grep -q "is not a local pipe name" "$tmp/err"; then
    pass "doctor --pipe with a remote name: usage error, exit 2"
else
    fail_run "doctor --pipe with a remote name: usage error, exit 2"
fi

# ---- clients ---------------------------------------------------------------------
start sub "$PIPEHUB" --pipe "$PIPE" sub 'demo.*'
start serve "$PIPEHUB" --pipe "$PIPE" serve demo.echo --exec 'echo hi'
if ! wait_text serve err "^pipehub: conn [0-9]+ serves 'demo\\.echo' \\(shared\\)$"; then
    fail "serve demo.echo registers" "$(bg_details serve)"
fi
for i in $(seq 100); do
    run --pipe "$PIPE" call sys.subscriptions
    grep -Fq '"pattern":"demo.*"' "$tmp/out" && break
    sleep 0.1
done
run --pipe "$PIPE" call demo.echo
[ "$rc" -eq 0 ] || fail_run "call demo.echo through the serve command"

run --pipe "$PIPE" clients --json
json=$(cat "$tmp/out")
if [ "$rc" -eq 0 ] && [[ $json =~ ^\[\{\"conn_id\":[0-9]+,.*\}\]$ ]] &&
   grep -Fq '"subscriptions":["demo.*"]' <<<"$json" &&
   grep -Fq '"routes":["demo.echo"]' <<<"$json"; then
    pass "clients --json prints sys.clients' array as it is"
else
    fail_run "clients --json prints sys.clients' array as it is"
fi
# One object per line, to pick the two background clients out.
objects=$(sed 's/},{/}\n{/g; s/^\[//; s/\]$//' <<<"$json")
field() { # field OBJECT KEY: a number or a string's raw text
    sed -E "s/.*\"$2\":(\"([^\"]*)\"|([^,}]*)).*/\\2\\3/" <<<"$1"
}
sub_obj=$(grep -F '"subscriptions":["demo.*"]' <<<"$objects" || true)
serve_obj=$(grep -F '"routes":["demo.echo"]' <<<"$objects" || true)
my_sid=$(field "$sub_obj" sid)

run --pipe "$PIPE" clients
table=$(cat "$tmp/out")
header='^ID +PID +ACCOUNT +INTEGRITY +EXE +CONNECTED +FRAMES IN/OUT +BYTES IN/OUT +QUEUED +ROUTES +SUBSCRIPTIONS +FLAGS$'
since='([0-9]{2}:[0-9]{2}:[0-9]{2}|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}) \([0-9]+s\)'
row_ok() { # row_ok OBJECT ROUTES SUBS: the table has OBJECT's row
    local obj=$1 routes=$2 subs=$3 id pid acct integ
    id=$(field "$obj" conn_id)
    pid=$(field "$obj" pid)
    acct=$(field "$obj" account | sed 's/\\\\/\\/g')
    integ=$(field "$obj" integrity)
    [ -n "$id" ] && [ -n "$pid" ] || return 1
    grep -Eq "^$id +$pid +$(re_quote "$acct") +$integ +pipehub\\.exe +$since +[1-9][0-9]*/[1-9][0-9]* +[0-9]+/[0-9]+ +0 +$routes +$subs +admin$" <<<"$table"
}
if [ "$rc" -eq 0 ] && [[ $(head -n 1 <<<"$table") =~ $header ]] &&
   row_ok "$sub_obj" '0' '1 \(demo\.\*\)' &&
   row_ok "$serve_obj" '1 \(demo\.echo\)' '0' &&
   grep -Eq "^[0-9]+\\* +[0-9]+ .* pipehub\\.exe " <<<"$table" &&
   [ "$(tail -n 1 <<<"$table")" = "3 connections (* is this command's own)" ] &&
   sed '1d;$d' <<<"$table" | awk '{ sub(/\*$/, "", $1); print $1 }' | sort -nc; then
    pass "clients: a row per connection in id order (id, pid, account, integrity, exe, since, frames, bytes, queued, routes, subscriptions, flags), this command's own marked *"
else
    fail_run "clients prints the table" "sub: $sub_obj" "serve: $serve_obj"
fi
stop_pid "${bg_pid[sub]}"
stop_pid "${bg_pid[serve]}"
unset 'bg_pid[sub]' 'bg_pid[serve]'

run --pipe "$LOOSE" clients
if [ "$rc" -eq 1 ] && [ ! -s "$tmp/out" ] &&
   grep -Eq '^error: FORBIDDEN: .*sys\.clients' "$tmp/err"; then
    pass "clients where [route.sys.clients] call = SY: error: FORBIDDEN, exit 1"
else
    fail_run "clients where [route.sys.clients] call = SY: error: FORBIDDEN, exit 1"
fi
run --pipe "$LOOSE" clients --json
if [ "$rc" -eq 1 ] && grep -Eq '^error: FORBIDDEN: ' "$tmp/err"; then
    pass "clients --json: FORBIDDEN too, exit 1"
else
    fail_run "clients --json: FORBIDDEN too, exit 1"
fi
run --pipe "$UNSERVED" clients
if [ "$rc" -eq 3 ] && grep -q "no server on" "$tmp/err"; then
    pass "clients with no server: exit 3"
else
    fail_run "clients with no server: exit 3"
fi

# ---- doctor: nothing serves the name ----------------------------------------------
run doctor --pipe "$UNSERVED"
if [ "$rc" -eq 3 ] &&
   grep -Eq "^FAIL +server +nothing serves \\\\\\\\\\.\\\\pipe\\\\$UNSERVED " "$tmp/out"; then
    pass "doctor --pipe UNSERVED: FAIL server, exit 3"
else
    fail_run "doctor --pipe UNSERVED: FAIL server, exit 3"
fi
run --pipe "$UNSERVED" doctor
if [ "$rc" -eq 3 ]; then
    pass "pipehub --pipe UNSERVED doctor: exit 3 too"
else
    fail_run "pipehub --pipe UNSERVED doctor: exit 3 too"
fi

# ---- doctor: the default SDDL ------------------------------------------------------
run --pipe "$PIPE" call sys.process
hub_pid=$(sed -nE 's/.*"pid":([0-9]+).*/\1/p' "$tmp/out")
hubd_dos=$(winepath -w "$PIPEHUBD")
run --pipe "$PIPE" doctor
doc=$(cat "$tmp/out")
echo "doctor on the default SDDL, as Wine shows it (exit status $rc):"
sed 's/^/       /' "$tmp/out"
# The version's one place: project() in CMakeLists.txt.
version=$(sed -n 's/^project(pipehub VERSION \([0-9.]*\).*/\1/p' \
    "$(dirname "$0")/../../CMakeLists.txt")
if [[ $(doctor_line server) =~ ^OK\ +server\ +pipehubd\ $(re_quote "$version")\ answers,\ protocol\ 1,\ max\ frame\ 1048576\ bytes ]]; then
    pass "doctor: OK server, pipehubd $version, protocol 1, max frame"
else
    fail_run "doctor: OK server, pipehubd $version, protocol 1, max frame"
fi
if [[ $(doctor_line 'round trip') =~ ^OK\ +round\ trip\ +sys\.ping\ [0-9]+\ us ]]; then
    pass "doctor: OK round trip with the sys.ping time"
else
    fail_run "doctor: OK round trip with the sys.ping time"
fi
if [ -n "$hub_pid" ] &&
   [[ $(doctor_line 'server pid') =~ ^OK\ +server\ pid\ +$hub_pid\ serves\ the\ pipe ]] &&
   [[ $(doctor_line 'hub pid') =~ ^OK\ +hub\ pid\ +$hub_pid\ by\ sys\.process,\ the\ same\ process ]]; then
    pass "doctor: the serving pid ($hub_pid) is the daemon's (its sys.process pid)"
else
    fail_run "doctor: the serving pid is the daemon's" "sys.process pid: '$hub_pid'"
fi
exe=$(doctor_line executable | sed -E 's/^OK +executable +//')
if [ "${exe,,}" = "${hubd_dos,,}" ] && [[ $exe == *pipehubd.exe ]]; then
    pass "doctor: OK executable $exe"
else
    fail_run "doctor: OK executable, the daemon's path" "wanted $hubd_dos"
fi
if [ -n "$my_sid" ] &&
   [[ $(doctor_line account) =~ ^OK\ +account\ +the\ server\ runs\ as\ .*\ \($my_sid\)$ ]]; then
    pass "doctor: OK account, the user's ($my_sid)"
else
    fail_run "doctor: OK account, the user's" "sid from sys.clients: '$my_sid'"
fi
if [[ $(doctor_line pipe) =~ ^OK\ +pipe\ +byte\ mode, ]]; then
    pass "doctor: OK pipe, byte mode"
else
    fail_run "doctor: OK pipe, byte mode"
fi
if [[ $(doctor_line remote) =~ ^(OK|INFO|WARN)\ +remote\ + ]]; then
    pass "doctor: a remote line"
    note "remote under Wine: $(doctor_line remote)"
else
    fail_run "doctor: a remote line"
fi
sddl=$(doctor_line sddl | sed -E 's/^INFO +sddl +//')
if [ -z "$sddl" ] || [[ $(doctor_line dacl) =~ ^WARN\ +dacl\ +cannot\ read ]]; then
    skip "doctor reads the default DACL" \
        "Wine did not report the pipe's descriptor: $(doctor_line dacl)"
else
    note "the live descriptor under Wine: $sddl"
    owner_sid=$(sed -nE 's/^O:(S-[0-9-]+).*/\1/p' <<<"$sddl")
    if [[ $sddl == *"$DEFAULT_SDDL" ]] &&
       grep -Eq '^OK +dacl +4 entries, protected:$' <<<"$doc" &&
       grep -Eq '^OK +ace 1 +NT AUTHORITY\\SYSTEM \(S-1-5-18\): full control ' <<<"$doc" &&
       grep -Eq '^OK +ace 2 +BUILTIN\\Administrators \(S-1-5-32-544\): full control ' <<<"$doc" &&
       grep -Eq '^OK +ace 4 +NT AUTHORITY\\Authenticated Users \(S-1-5-11\): may connect \(read/write\) \[0x12019b\]$' <<<"$doc"; then
        pass "doctor: the default DACL in words (SYSTEM, Administrators: full control; Authenticated Users: may connect, not create instances)"
    else
        fail_run "doctor: the default DACL in words"
    fi
    # OWNER RIGHTS is fine when the owner is the server's own account (or
    # SYSTEM / Administrators), a finding otherwise; the owner line agrees.
    if [ "$owner_sid" = "$my_sid" ] || [ "$owner_sid" = S-1-5-18 ] ||
       [ "$owner_sid" = S-1-5-32-544 ]; then
        want_owner='^OK +owner '
        want_ow='^OK +ace 3 +OWNER RIGHTS \(S-1-3-4\): full control '
    else
        want_owner="^WARN +owner +.*\\($owner_sid\\): not the server's account"
        want_ow='^WARN +ace 3 +OWNER RIGHTS \(S-1-3-4\): full control .*pipe squatting.*OWNER RIGHTS is the owner: '
    fi
    if grep -Eq -- "$want_owner" <<<"$doc" && grep -Eq -- "$want_ow" <<<"$doc"; then
        pass "doctor: owner $owner_sid and the OWNER RIGHTS ACE judged alike"
    else
        fail_run "doctor: owner $owner_sid and the OWNER RIGHTS ACE judged alike" \
            "wanted '$want_owner' and '$want_ow'"
    fi
fi
if [[ $(doctor_line load) =~ ^OK\ +load\ +[0-9]+\ clients\ now,\ [0-9]+\ since\ start,\ [0-9]+\ instances\ listening ]] &&
   [[ $(doctor_line limits) =~ ^INFO\ +limits\ +fired\ since\ start: ]]; then
    pass "doctor: OK load and the limits that fired, from sys.stats"
else
    fail_run "doctor: OK load and the limits that fired, from sys.stats"
fi
if findings_consistent && [ "$(head -n 1 "$tmp/out")" = "doctor: \\\\.\\pipe\\$PIPE" ]; then
    pass "doctor: exit status $rc agrees with its WARN/FAIL lines and closing count"
else
    fail_run "doctor: exit status agrees with its WARN/FAIL lines and closing count"
fi

# ---- doctor: a loose SDDL -----------------------------------------------------------
run --pipe "$LOOSE" doctor
echo "doctor on D:(A;;GA;;;WD), as Wine shows it (exit status $rc):"
sed 's/^/       /' "$tmp/out"
sddl=$(doctor_line sddl | sed -E 's/^INFO +sddl +//')
if [ -z "$sddl" ] || [[ $(doctor_line dacl) =~ ^WARN\ +dacl\ +cannot\ read ]]; then
    skip "doctor warns of Everyone's full control" \
        "Wine did not report the pipe's descriptor: $(doctor_line dacl)"
elif [ "$rc" -eq 1 ] && [[ $sddl == *'D:(A;;GA;;;WD)' ]] &&
     grep -Eq '^WARN +ace 1 +(.*\\)?Everyone \(S-1-1-0\): full control .*pipe squatting\), and it lets in Everyone' "$tmp/out" &&
     findings_consistent; then
    pass "doctor: WARN for Everyone's full control (may create instances, lets everyone in), exit 1"
else
    fail_run "doctor: WARN for Everyone's full control, exit 1"
fi

# ---- doctor: something else serves the name ----------------------------------------
if [ -f "$BASELINE" ]; then
    start fake "$BASELINE" "$FAKE"
    for i in $(seq 100); do
        run --pipe "$FAKE" --timeout 1000 doctor
        [ "$rc" -ne 3 ] && break
        alive "${bg_pid[fake]}" || break
        sleep 0.1
    done
    if [ "$rc" -eq 1 ] &&
       grep -Eq '^FAIL +(sys\.hello|server) ' "$tmp/out" &&
       grep -Eq '^WARN +executable +.*\\baseline\.exe: not pipehubd\.exe' "$tmp/out" &&
       findings_consistent; then
        pass "doctor on a name served by an echo program: FAIL server, WARN executable, exit 1"
    else
        fail_run "doctor on a name served by an echo program: FAIL server, WARN executable, exit 1"
    fi
    stop_pid "${bg_pid[fake]}"
    unset 'bg_pid[fake]'
else
    skip "doctor on a name served by another program" "$BASELINE is not built"
fi

lib_summary
