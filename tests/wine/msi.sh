#!/usr/bin/env bash
# The MSI under Wine's msiexec, end to end, in a Wine prefix of its own:
#
#   bash tests/wine/msi.sh PATH/pipehub-X.Y.Z-x64.msi BUILD_DIR
#
# BUILD_DIR is the mingw build the MSI came from; packaging/msi.sh builds
# a second package from it with the next patch version, for the upgrade.
# The prefix is new (wineboot -i; wineserver -w; wineserver -p, as
# /work/shared/WINE.md says for services), so the service the MSI installs
# as "pipehub" meets nothing of the other tests, and it is killed at exit.
#
# Sequence: install /qn -> RUNNING, `pipehub call` from a new process found
# by PATH, event source, ini in ProgramData, command line and settings as
# `pipehubd install` gives, the settings folder's DACL -> the admin edits the
# ini -> a repair restores a deleted pipehub.exe and keeps the edit -> an
# upgrade to the next version (PIPE_NAME and START given, ignored): one
# product, the new version, the service restarted on the edited ini; the
# older version is refused; a rebuild of the newer one replaces it -> /x:
# service, binaries, PATH entry, event source gone, the ini kept -> a first
# install with PIPE_NAME, START=demand and the SDK: the service on that pipe,
# a caller built against the installed SDK alone talks to it; an upgrade
# keeps both choices -> a remote PIPE_NAME, or one with a comment in it,
# fails the install, which rolls back -> the next first install starts the
# choices over. Wine keeps no failure actions and no file DACLs: those two
# checks say SKIP there.
set -euo pipefail

# shellcheck source=tests/wine/lib.sh
source "$(dirname "$0")/lib.sh"
lib_init msi MSI BUILD -- "$@"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
for f in "$MSI" "$BUILD/pipehubd.exe"; do
    [ -f "$f" ] || { echo "missing $f" >&2; exit 2; }
done
version=$(basename "$MSI" | sed -n 's/^pipehub-\([0-9.]*\)-x64\.msi$/\1/p')
[ -n "$version" ] || { echo "cannot read a version from $MSI" >&2; exit 2; }
next=${version%.*}.$((${version##*.} + 1))

export WINEPREFIX=$tmp/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
mkdir -p "$WINEPREFIX"
# shellcheck disable=SC2317 # called through the trap
on_exit() {
    wineserver -k >/dev/null 2>&1 || true
}
wineboot -i >/dev/null 2>&1 || true
wineserver -w
wineserver -p

cp "$MSI" "$tmp/v1.msi"
if ! bash "$SRC/packaging/msi.sh" "$BUILD" "$next" "$tmp/v2.msi" >"$tmp/v2.log" 2>&1; then
    fail "build $next for the upgrade" "$(cat "$tmp/v2.log")"
    lib_summary
fi

DRIVE=$WINEPREFIX/drive_c
DIR=$DRIVE/Program\ Files/pipehub
INI=$DRIVE/ProgramData/pipehub/pipehub.ini
PIPEHUBD='C:\Program Files\pipehub\pipehubd.exe'
PIPE=ph-msi-$$

run() { run_exe "$@"; }

# msiexec ARGS...: /qn and a verbose log, status in rc; cut off after
# 180 s (an install here takes 1-3 s), status 124.
msiexec() {
    run_limit_s=180 run msiexec "$@" /qn /l*v "$(winepath -w "$tmp/msiexec.log")"
    cat "$tmp/msiexec.log" >>"$tmp/msiexec.all" 2>/dev/null || true
    [ -z "${PH_MSI_KEEP_LOGS:-}" ] || cp "$tmp/msiexec.all" "$PH_MSI_KEEP_LOGS"
}

# reg_has KEY [VALUE]: the key (and value) exist.
reg_has() {
    if [ $# -eq 2 ]; then
        wine reg query "$1" /v "$2" </dev/null >"$tmp/reg" 2>&1
    else
        wine reg query "$1" </dev/null >"$tmp/reg" 2>&1
    fi
}
SERVICE_KEY='HKLM\SYSTEM\CurrentControlSet\Services\pipehub'
SOURCE_KEY='HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\pipehub'
ENV_KEY='HKLM\System\CurrentControlSet\Control\Session Manager\Environment'
UNINSTALL_KEY='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall'

status_field() { # FIELD: one line of `pipehubd status`
    wine "$PIPEHUBD" status </dev/null 2>/dev/null | tr -d '\r' |
        sed -n "s/^$1: //p"
}

# Our products under Uninstall: "VERSION" lines, one per product.
products() {
    wine reg query "$UNINSTALL_KEY" /s </dev/null 2>/dev/null | tr -d '\r' |
        awk '/^HKEY/ { name = ""; ver = "" }
             /DisplayName/ { name = $NF }
             /DisplayVersion/ { ver = $NF }
             name == "pipehub" && ver != "" { print ver; name = "" }'
}

# ---- a first install -----------------------------------------------------------

msiexec /i "$(winepath -w "$tmp/v1.msi")"
if [ "$rc" -eq 0 ]; then pass "msiexec /i $version /qn"; else
    fail_run "msiexec /i $version /qn" "$(tail -20 "$tmp/msiexec.log" | tr -d '\r')"
    lib_summary
fi
state=$(status_field state)
if [ "$state" = RUNNING ]; then pass "service RUNNING"; else
    fail "service RUNNING" "state: '$state'"; fi
pid1=$(status_field pid)

run cmd /c "pipehub call sys.echo from-a-new-process"
if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = from-a-new-process ]; then
    pass "pipehub call sys.echo from a new process, found by PATH"
else fail_run "pipehub call sys.echo from a new process, found by PATH"; fi
if reg_has "$ENV_KEY" PATH && grep -q 'C:\\Program Files\\pipehub' "$tmp/reg"; then
    pass "install folder on the system PATH"
else fail "install folder on the system PATH" "$(cat "$tmp/reg")"; fi

if reg_has "$SOURCE_KEY" EventMessageFile &&
   grep -q 'REG_EXPAND_SZ.*C:\\Program Files\\pipehub\\pipehubd.exe' "$tmp/reg"; then
    pass "event source pipehub registered, messages in pipehubd.exe"
else fail "event source registered" "$(cat "$tmp/reg")"; fi

if [ -f "$INI" ] && cmp -s "$INI" "$SRC/config/pipehub.ini"; then
    pass "pipehub.ini in ProgramData"
else fail "pipehub.ini in ProgramData" "$(ls -la "$(dirname "$INI")" 2>&1)"; fi

# What `pipehubd install` would have set, but for the config path.
cmdline=$(status_field 'command line')
want='"C:\Program Files\pipehub\pipehubd.exe" service --name pipehub --config "C:\ProgramData\pipehub\pipehub.ini"'
if [ "$cmdline" = "$want" ]; then pass "service command line, program quoted"
else fail "service command line, program quoted" "got:    $cmdline" "wanted: $want"; fi
if [ "$(status_field start)" = auto ] && [ "$(status_field account)" = LocalSystem ] &&
   [ "$(status_field pipe)" = '\\.\pipe\pipehub' ]; then
    pass "start auto, LocalSystem, pipe from the installed ini"
else fail "start auto, LocalSystem, pipe from the installed ini" \
    "$(wine "$PIPEHUBD" status </dev/null 2>&1 | tr -d '\r')"; fi
# Recovery: compare with a service `pipehubd install` makes here.
msi_recovery=$(status_field 'on failure')
wine "$PIPEHUBD" install --name ph-msi-ref </dev/null >/dev/null 2>&1 || true
ref_recovery=$(wine "$PIPEHUBD" status --name ph-msi-ref </dev/null 2>/dev/null |
    tr -d '\r' | sed -n 's/^on failure: //p')
wine "$PIPEHUBD" uninstall --name ph-msi-ref </dev/null >/dev/null 2>&1 || true
if [ "$ref_recovery" = none ]; then
    skip "recovery actions as pipehubd install sets" \
        "Wine keeps no failure actions (pipehubd install's service shows none too)"
elif [ "$msi_recovery" = "$ref_recovery" ]; then
    pass "recovery actions as pipehubd install sets"
else fail "recovery actions as pipehubd install sets" \
    "msi: $msi_recovery" "install: $ref_recovery"; fi
# The settings folder is locked down (svc_msi.c): ProgramData lets every
# user create files in it. Wine may keep no file DACLs at all: a probe on a
# scratch file tells.
TEST_SERVICE=$BUILD/test_service.exe
echo probe >"$DRIVE/dacl-probe.txt"
probe=$(wine "$TEST_SERVICE" dacl 'C:\dacl-probe.txt' 'D:P(A;;FA;;;SY)(A;;FA;;;BA)' </dev/null 2>&1 | tr -d '\r')
got=$(wine "$TEST_SERVICE" dacl 'C:\ProgramData\pipehub' </dev/null 2>&1 | tr -d '\r')
if [ "$probe" != 'D:P(A;;FA;;;SY)(A;;FA;;;BA)' ]; then
    skip "ProgramData\pipehub: SYSTEM and Administrators full, Users read" \
        "this Wine keeps no file DACLs (one set on a scratch file reads back as $probe)"
elif [[ $got =~ ^D:PA?I?\(A\;OICI\;FA\;\;\;SY\)\(A\;OICI\;FA\;\;\;BA\)\(A\;OICI\;(0x1200a9|FRFX)\;\;\;BU\)$ ]]; then
    pass "ProgramData\pipehub: SYSTEM and Administrators full, Users read"
else fail "ProgramData\pipehub: SYSTEM and Administrators full, Users read" "DACL: $got"; fi
if [ ! -e "$DIR/sdk" ]; then pass "the SDK feature is not installed unless asked"
else fail "the SDK feature is not installed unless asked"; fi

# ---- the administrator's edit survives a repair and an upgrade ---------------

sed -i 's/^max_inflight_per_client = .*/max_inflight_per_client = 300/' "$INI"
printf '; edited by the administrator\n' >>"$INI"
cp "$INI" "$tmp/edited.ini"
rm -f "$DIR/pipehub.exe"
# A repair: what `msiexec /f` does on Windows. Wine's msiexec has no /f
# by product code ("not implemented yet") and takes /f PACKAGE for a
# product code; REINSTALL=ALL is the same request through the package.
msiexec /i "$(winepath -w "$tmp/v1.msi")" REINSTALL=ALL REINSTALLMODE=pecms
if [ "$rc" -eq 0 ] && [ -f "$DIR/pipehub.exe" ]; then
    pass "repair (REINSTALL=ALL REINSTALLMODE=pecms) restores a deleted pipehub.exe"
else fail_run "repair restores a deleted pipehub.exe" \
    "$(tail -20 "$tmp/msiexec.log" | tr -d '\r')"; fi
if cmp -s "$INI" "$tmp/edited.ini"; then pass "repair keeps the edited ini"
else fail "repair keeps the edited ini" "$(diff "$tmp/edited.ini" "$INI" | head)"; fi

inode1=$(stat -c %i "$DIR/pipehubd.exe")
msiexec /i "$(winepath -w "$tmp/v2.msi")" PIPE_NAME=ph-msi-ignored START=demand
if [ "$rc" -eq 0 ]; then pass "upgrade to $next"; else
    fail_run "upgrade to $next" "$(tail -20 "$tmp/msiexec.log" | tr -d '\r')"; fi
got=$(products | tr '\n' ' ')
if [ "$got" = "$next " ]; then pass "one product installed after the upgrade: $next"
else fail "one product installed after the upgrade" "products: '$got'"; fi
pid2=$(status_field pid)
if [ "$(status_field state)" = RUNNING ] && [ -n "$pid2" ] && [ "$pid2" != "$pid1" ]; then
    pass "service restarted by the upgrade (pid $pid1 -> $pid2)"
else fail "service restarted by the upgrade" "pid $pid1 -> '$pid2'"; fi
inode2=$(stat -c %i "$DIR/pipehubd.exe" 2>/dev/null || echo gone)
if [ "$inode2" != "$inode1" ] && cmp -s "$DIR/pipehubd.exe" "$BUILD/pipehubd.exe"; then
    pass "the upgrade put down pipehubd.exe anew (inode $inode1 -> $inode2)"
else fail "the upgrade put down pipehubd.exe anew" "inode $inode1 -> $inode2"; fi
if cmp -s "$INI" "$tmp/edited.ini"; then pass "upgrade keeps the edited ini"
else fail "upgrade keeps the edited ini" "$(diff "$tmp/edited.ini" "$INI" | head)"; fi
run "$DIR/pipehub.exe" call sys.config
if [ "$rc" -eq 0 ] && grep -q '"limits.max_inflight_per_client":"300"' "$tmp/out"; then
    pass "the upgraded service runs on the edited ini"
else fail_run "the upgraded service runs on the edited ini"; fi
# An older version is refused, and what is installed stays.
msiexec /i "$(winepath -w "$tmp/v1.msi")"
got=$(products | tr '\n' ' ')
if [ "$rc" -ne 0 ] && [ "$got" = "$next " ] && [ "$(status_field state)" = RUNNING ]; then
    pass "$version over $next is refused (status $rc); $next stays, RUNNING"
else fail_run "$version over $next is refused" "products: '$got'"; fi

# A rebuild of the same version (another ProductCode) replaces it too.
if bash "$SRC/packaging/msi.sh" "$BUILD" "$next" "$tmp/v2b.msi" >"$tmp/v2b.log" 2>&1; then
    msiexec /i "$(winepath -w "$tmp/v2b.msi")"
    got=$(products | tr '\n' ' ')
    if [ "$rc" -eq 0 ] && [ "$got" = "$next " ] && cmp -s "$INI" "$tmp/edited.ini" &&
       [ "$(status_field state)" = RUNNING ]; then
        pass "a rebuild of $next replaces it: one product, the ini kept, RUNNING"
    else fail_run "a rebuild of $next replaces it" "products: '$got'"; fi
else fail "build $next again" "$(cat "$tmp/v2b.log")"; fi
if [ "$(status_field start)" = auto ] && [ "$(status_field pipe)" = '\\.\pipe\pipehub' ]; then
    pass "PIPE_NAME and START ignored on an upgrade"
else fail "PIPE_NAME and START ignored on an upgrade" \
    "$(wine "$PIPEHUBD" status </dev/null 2>&1 | tr -d '\r')"; fi

# ---- removal ----------------------------------------------------------------------

msiexec /x "$(winepath -w "$tmp/v2b.msi")"
if [ "$rc" -eq 0 ]; then pass "msiexec /x"; else fail_run "msiexec /x"; fi
if ! reg_has "$SERVICE_KEY"; then pass "service removed"
else fail "service removed" "$(cat "$tmp/reg")"; fi
if [ ! -e "$DIR/pipehubd.exe" ] && [ ! -e "$DIR/pipehub.exe" ]; then
    pass "binaries removed"
else fail "binaries removed" "$(ls -la "$DIR" 2>&1)"; fi
if cmp -s "$INI" "$tmp/edited.ini"; then pass "the ini stays, as edited"
else fail "the ini stays, as edited" "$(ls -la "$(dirname "$INI")" 2>&1)"; fi
if ! reg_has "$SOURCE_KEY"; then pass "event source removed"
else fail "event source removed"; fi
if reg_has "$ENV_KEY" PATH && ! grep -q 'pipehub' "$tmp/reg"; then
    pass "install folder taken off the PATH"
else fail "install folder taken off the PATH" "$(cat "$tmp/reg")"; fi
if [ -z "$(products)" ]; then pass "no product left"
else fail "no product left" "$(products)"; fi

# ---- a first install with properties and the SDK -----------------------------

rm -f "$INI"
msiexec /i "$(winepath -w "$tmp/v1.msi")" PIPE_NAME=$PIPE START=demand ADDLOCAL=ALL
if [ "$rc" -eq 0 ]; then pass "msiexec /i PIPE_NAME=$PIPE START=demand ADDLOCAL=ALL"
else fail_run "msiexec /i PIPE_NAME=... START=demand ADDLOCAL=ALL" \
    "$(tail -20 "$tmp/msiexec.log" | tr -d '\r')"; fi
if grep -qx "pipe_name = $PIPE" "$INI" && [ "$(grep -c '^pipe_name' "$INI")" = 1 ]; then
    pass "PIPE_NAME written into the installed ini"
else fail "PIPE_NAME written into the installed ini" "$(grep -n pipe_name "$INI")"; fi
if [ "$(status_field state)" = RUNNING ] && [ "$(status_field start)" = demand ] &&
   [ "$(status_field pipe)" = "\\\\.\\pipe\\$PIPE" ]; then
    pass "service RUNNING, start demand, on $PIPE"
else fail "service RUNNING, start demand, on $PIPE" \
    "$(wine "$PIPEHUBD" status </dev/null 2>&1 | tr -d '\r')"; fi
run "$DIR/pipehub.exe" --pipe "$PIPE" call sys.echo on-the-msi-pipe
if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = on-the-msi-pipe ]; then
    pass "the service answers on $PIPE"
else fail_run "the service answers on $PIPE"; fi

# A program built against the installed SDK alone (its headers and its one
# library), run against the installed service.
SDK=$DIR/sdk
if x86_64-w64-mingw32-gcc -Wall -Wextra -Werror -I"$SDK/include" \
       "$SDK/examples/caller.c" "$SDK/lib/libpipehub.a" -ladvapi32 \
       -o "$tmp/caller.exe" 2>"$tmp/gcc.err"; then
    run "$tmp/caller.exe" "$PIPE" hi
    # No one serves example.upper: the hub's NO_ROUTE answer, exit 1.
    if [ "$rc" -eq 1 ] && grep -Eq '^error [0-9]+: no route' "$tmp/err"; then
        pass "a caller built against the installed SDK gets the hub's answer"
    else fail_run "a caller built against the installed SDK gets the hub's answer"; fi
else
    fail "build examples/caller.c against the installed SDK" "$(cat "$tmp/gcc.err")"
fi

# The choices stand through an upgrade: the service is recreated, demand.
msiexec /i "$(winepath -w "$tmp/v2.msi")"
if [ "$rc" -eq 0 ] && [ "$(status_field state)" = RUNNING ] &&
   [ "$(status_field start)" = demand ] &&
   [ "$(status_field pipe)" = "\\\\.\\pipe\\$PIPE" ]; then
    pass "an upgrade keeps START=demand and PIPE_NAME"
else fail_run "an upgrade keeps START=demand and PIPE_NAME" \
    "$(wine "$PIPEHUBD" status </dev/null 2>&1 | tr -d '\r')"; fi
msiexec /x "$(winepath -w "$tmp/v2.msi")"
if [ "$rc" -eq 0 ] && [ ! -e "$SDK" ] && ! reg_has "$SERVICE_KEY"; then
    pass "msiexec /x removes the service and the SDK"
else fail_run "msiexec /x removes the service and the SDK" "$(ls -R "$DIR" 2>&1 | head)"; fi

# ---- a bad PIPE_NAME fails the install, which rolls back ------------------------

# A remote pipe, and a name the ini would cut at its comment.
for bad in '\\otherhost\pipe\x' 'a ;b'; do
    rm -f "$INI"
    msiexec /i "$(winepath -w "$tmp/v1.msi")" "PIPE_NAME=$bad"
    if [ "$rc" -ne 0 ] && ! reg_has "$SERVICE_KEY" && [ ! -e "$DIR/pipehubd.exe" ] &&
       [ -z "$(products)" ]; then
        pass "PIPE_NAME='$bad': the install fails (status $rc) and rolls back"
    else fail_run "PIPE_NAME='$bad': the install fails and rolls back" \
        "$(ls -la "$DIR" 2>&1)"; fi
done

# ---- the next first install starts the choices over ----------------------------

rm -f "$INI"
msiexec /i "$(winepath -w "$tmp/v1.msi")"
if [ "$rc" -eq 0 ] && [ "$(status_field start)" = auto ] &&
   [ "$(status_field pipe)" = '\\.\pipe\pipehub' ]; then
    pass "a first install without START or PIPE_NAME: auto, default pipe"
else fail_run "a first install without START or PIPE_NAME: auto, default pipe" \
    "$(wine "$PIPEHUBD" status </dev/null 2>&1 | tr -d '\r')"; fi
msiexec /x "$(winepath -w "$tmp/v1.msi")"
if [ "$rc" -eq 0 ] && ! reg_has "$SERVICE_KEY"; then pass "msiexec /x"
else fail_run "msiexec /x"; fi

lib_summary
