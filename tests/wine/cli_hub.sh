#!/usr/bin/env bash
# Integration test of pipehub.exe's hub commands (pub, sub, serve, routes,
# monitor, call on provided routes, PAYLOAD from @FILE and -) and of the
# examples (examples/*.c), against a real pipehubd under Wine.
#
#   bash tests/wine/cli_hub.sh PIPEHUBD.EXE PIPEHUB.EXE EXAMPLES_DIR
#
# EXAMPLES_DIR holds example_provider.exe, example_subscriber.exe and
# example_caller.exe. The daemon runs in the console on its own pipe name,
# so this test can run beside the others. Output and exit status as
# tests/wine/lib.sh says.
set -euo pipefail

# shellcheck source=tests/wine/lib.sh
source "$(dirname "$0")/lib.sh"
lib_init clihub PIPEHUBD PIPEHUB EXAMPLES -- "$@"

PIPE=ph-clihub-$$
# The CLI as a command line for cmd.exe (serve --exec runs it).
PIPEHUB_DOS=$(winepath -w "$PIPEHUB" 2>/dev/null)

# pipehub.exe on this test's pipe, stdin from $stdin. call prints a reply's
# bytes as they are: $tmp/out.raw keeps them, CRs and all.
run() { run_exe "$PIPEHUB" --pipe "$PIPE" "$@"; }

# until the hub lists a subscription to PATTERN (sys.subscriptions).
wait_subscribed() {
    local pattern=$1 i
    for i in $(seq 100); do
        run call sys.subscriptions
        if grep -Fq "\"pattern\":\"$pattern\"" "$tmp/out"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# ---- start the daemon -------------------------------------------------------
if start_daemon server "$PIPE"; then
    pass "server answers sys.ping on $PIPE"
else
    fail_run "server answers sys.ping on $PIPE" \
        "server.log: $(clean "$tmp/server.err" | tail -n 5)"
    lib_summary
fi

# ---- help and usage ----------------------------------------------------------
run --help
if [ "$rc" -eq 0 ] &&
   grep -Eq '^  pub TOPIC \[PAYLOAD\]' "$tmp/out" &&
   grep -Eq '^  sub PATTERN \[--count N\]' "$tmp/out" &&
   grep -Eq '^  serve ROUTE \[--exclusive\] \[--describe TEXT\|@FILE\] --exec CMD' "$tmp/out" &&
   grep -Eq '^  routes \[-v\] ' "$tmp/out" &&
   grep -Eq '^  describe ROUTE ' "$tmp/out" &&
   grep -Eq '^  monitor \[PATTERN\] \[--sys\] \[--count N\]' "$tmp/out" &&
   grep -Eq '^  bench MODE' "$tmp/out"; then
    pass "--help lists pub, sub, serve, routes, describe, monitor and bench"
else
    fail_run "--help lists pub, sub, serve, routes, describe, monitor and bench"
fi
check "pub with a bad topic exits 2" 2 "" "pipehub: 'bad topic' is not a topic.*" \
    -- pub "bad topic" x
check "sub without a pattern exits 2" 2 "" "pipehub: sub needs a PATTERN.*" \
    -- sub
check "sub with a bad pattern exits 2" 2 "" "pipehub: 'a.\\*.b' is not a pattern.*" \
    -- sub 'a.*.b'
check "serve without --exec exits 2" 2 "" "pipehub: serve needs ROUTE and --exec CMD.*" \
    -- serve demo.x
check "serve '*' exits 2" 2 "" "pipehub: '\\*' is not a route.*" \
    -- serve '*' --exec 'echo x'
check "monitor with a bad pattern exits 2" 2 "" "pipehub: 'x y' is not a pattern.*" \
    -- monitor 'x y'
check "call with a missing @FILE exits 2" 2 "" "pipehub: cannot open $tmp/none: .*" \
    -- call sys.echo "@$tmp/none"

# ---- PAYLOAD from @FILE and stdin ------------------------------------------------
printf 'l1\nl2\ttab\\x' >"$tmp/payload"
run call sys.echo "@$tmp/payload"
if [ "$rc" -eq 0 ] && cmp -s "$tmp/out.raw" <(cat "$tmp/payload"; printf '\n'); then
    pass "call sys.echo @FILE prints the file's bytes exactly (and a newline)"
else
    fail_run "call sys.echo @FILE prints the file's bytes exactly"
fi
stdin=$tmp/payload
run call sys.echo -
stdin=/dev/null
if [ "$rc" -eq 0 ] && cmp -s "$tmp/out.raw" <(cat "$tmp/payload"; printf '\n'); then
    pass "call sys.echo - sends standard input"
else
    fail_run "call sys.echo - sends standard input"
fi

# ---- pub / sub ------------------------------------------------------------------
start sub "$PIPEHUB" --pipe "$PIPE" sub 'demo.*' --count 3
if wait_subscribed 'demo.*'; then
    pass "sub 'demo.*' subscribes"
else
    fail "sub 'demo.*' subscribes" "$(bg_details sub)"
fi
check "pub other.topic (nobody listening) exits 0" 0 "" "" -- pub other.topic x
check "pub demo.a hello exits 0" 0 "" "" -- pub demo.a hello
check "pub demo.b @FILE exits 0" 0 "" "" -- pub demo.b "@$tmp/payload"
printf 'from stdin' >"$tmp/stdin"
stdin=$tmp/stdin
check "pub demo.c - exits 0" 0 "" "" -- pub demo.c -
stdin=/dev/null
wait_exit sub
printf '%s\n' 'demo.a hello' 'demo.b l1\nl2\ttab\\x' 'demo.c from stdin' \
    >"$tmp/sub.want"
if [ "$bg_rc" -eq 0 ] && clean "$tmp/sub.out" | cmp -s - "$tmp/sub.want"; then
    pass "sub --count 3 printed the three events, escaped, and exited 0"
else
    fail "sub --count 3 printed the three events, escaped, and exited 0" \
        "exit status $bg_rc" "$(bg_details sub)"
fi
check "pub sys.x is refused with exit 1" 1 "" \
    "error: FORBIDDEN: topics under sys. belong to the hub" -- pub sys.x y

start sub2 "$PIPEHUB" --pipe "$PIPE" sub never.happens
if wait_subscribed never.happens; then
    kill -INT "${bg_pid[sub2]}"
    check_exit sub2 5 "sub stops on Ctrl+C with exit 0"
else
    fail "sub never.happens subscribes" "$(bg_details sub2)"
fi

# ---- serve ----------------------------------------------------------------------
start env "$PIPEHUB" --pipe "$PIPE" serve demo.env \
    --describe "$(printf '# Who called, and which route.\nmethod demo.env() -> (text)')" \
    --exec 'echo caller=%PIPEHUB_CALLER% route=%PIPEHUB_ROUTE%'
start cat "$PIPEHUB" --pipe "$PIPE" serve demo.cat \
    --exec "\"$PIPEHUB_DOS\" --pipe $PIPE call sys.echo -"
start fails "$PIPEHUB" --pipe "$PIPE" serve demo.fail \
    --exec 'echo oops 1>&2 & exit 3'
start slow "$PIPEHUB" --pipe "$PIPE" --timeout 1500 serve demo.slow \
    --exec "\"$PIPEHUB_DOS\" --pipe $PIPE sub never.answered"
all_up=1
for pair in env:env cat:cat fails:fail slow:slow; do
    name=${pair%%:*} route=demo.${pair#*:}
    if ! wait_text "$name" err "^pipehub: conn [0-9]+ serves '${route/./\\.}' \\(shared\\)$"; then
        all_up=0
        fail "serve $route registers" "$(bg_details "$name")"
    fi
done
[ "$all_up" -eq 1 ] && pass "four serve commands registered their routes"

run call demo.env
if [ "$rc" -eq 0 ] &&
   [[ $(cat "$tmp/out") =~ ^caller=[0-9]+\ route=demo\.env$ ]]; then
    pass "call demo.env: CMD's output, with PIPEHUB_CALLER and PIPEHUB_ROUTE"
else
    fail_run "call demo.env: CMD's output, with PIPEHUB_CALLER and PIPEHUB_ROUTE" \
        "$(bg_details env)"
fi
run call demo.cat "@$tmp/payload"
if [ "$rc" -eq 0 ] && cmp -s "$tmp/out.raw" <(cat "$tmp/payload"; printf '\n'); then
    pass "call demo.cat @FILE: the payload reached CMD's stdin intact"
else
    fail_run "call demo.cat @FILE: the payload reached CMD's stdin intact" \
        "$(bg_details cat)"
fi
check "a failing CMD is an ERROR 256 with its stderr, exit 1" 1 "" \
    "error: 256: exit code 3: oops" -- call demo.fail x
check "a CMD that runs past the provider's --timeout is stopped: TIMEOUT" 1 "" \
    "error: TIMEOUT: the command ran longer than 1500 ms and was stopped" \
    -- call demo.slow x
if [ "$elapsed_ms" -lt 5000 ]; then
    pass "the slow CMD was answered in $elapsed_ms ms"
else
    fail "the slow CMD was answered in under 5 s" "took $elapsed_ms ms"
fi
# The killed command was a pipehub sub: its subscription goes with it.
gone=0
for i in $(seq 50); do
    run call sys.subscriptions
    if ! grep -Fq never.answered "$tmp/out"; then
        gone=1
        break
    fi
    sleep 0.1
done
if [ "$gone" -eq 1 ]; then
    pass "the stopped command's own process is gone too"
else
    fail "the stopped command's own process is gone too" "$(cat "$tmp/out")"
fi
check "serve sys.anything is refused FORBIDDEN, exit 1" 1 "" \
    "error: FORBIDDEN: .*" -- serve sys.anything --exec 'echo x'

# ---- describe -------------------------------------------------------------------
run describe demo.env
if [ "$rc" -eq 0 ] && [ "$(clean "$tmp/out")" = "$(printf '# Who called, and which route.\nmethod demo.env() -> (text)')" ]; then
    pass "describe demo.env prints what serve --describe registered"
else
    fail_run "describe demo.env prints what serve --describe registered"
fi
run describe sys.echo
if [ "$rc" -eq 0 ] && grep -Fq 'method sys.echo(bytes) -> (bytes)' "$tmp/out"; then
    pass "describe sys.echo prints the hub's own description"
else
    fail_run "describe sys.echo prints the hub's own description"
fi
check "describe of a route nobody serves is NO_ROUTE, exit 1" 1 "" \
    "error: NO_ROUTE: no route 'no.such.route'" -- describe no.such.route
run routes -v
if [ "$rc" -eq 0 ] &&
   [[ $(head -n 1 "$tmp/out" | tr -d '\r') =~ ^ROUTE\ .*FORWARDED\ +DESCRIPTION$ ]] &&
   grep -Eq '^demo\.env +provided .*method demo\.env\(\) -> \(text\)' <(clean "$tmp/out") &&
   grep -Eq '^demo\.cat +provided .* -$' <(clean "$tmp/out") &&
   grep -Eq '^sys\.ping +builtin .*method sys\.ping\(\) -> \(\)' <(clean "$tmp/out"); then
    pass "routes -v adds each route's description's first method line"
else
    fail_run "routes -v adds each route's description's first method line"
fi

# ---- routes ---------------------------------------------------------------------
run routes
table=$(cat "$tmp/out")
if [ "$rc" -eq 0 ] &&
   [[ $(head -n 1 <<<"$table") =~ ^ROUTE\ +KIND\ +MODE\ +PROVIDERS\ +WAITING\ +FORWARDED$ ]] &&
   grep -Eq '^sys\.echo +builtin +- +- +- +-$' <<<"$table" &&
   grep -Eq '^demo\.env +provided +shared +1 +0 +[1-9][0-9]*$' <<<"$table" &&
   grep -Eq '^demo\.cat +provided +shared +1 +0 +1$' <<<"$table"; then
    pass "routes prints a table with built-in and provided routes"
else
    fail_run "routes prints a table with built-in and provided routes"
fi

# ---- exclusive serve --------------------------------------------------------------
start lock1 "$PIPEHUB" --pipe "$PIPE" serve demo.lock --exclusive --exec 'echo first'
if wait_text lock1 err "^pipehub: conn [0-9]+ serves 'demo\\.lock' \\(exclusive\\)$"; then
    start lock2 "$PIPEHUB" --pipe "$PIPE" serve demo.lock --exclusive \
        --exec 'echo second'
    if wait_text lock2 err "^pipehub: conn [0-9]+ waits for 'demo\\.lock' \\(exclusive\\), position 1$"; then
        pass "a second exclusive serve waits in line at position 1"
    else
        fail "a second exclusive serve waits in line at position 1" \
            "$(bg_details lock2)"
    fi
    check "call demo.lock goes to the holder" 0 "first" "" -- call demo.lock
    stop_pid "${bg_pid[lock1]}"
    wait_exit lock1 5
    if [ "$bg_rc" -eq 0 ] &&
        wait_text lock2 err "^pipehub: now holding 'demo\\.lock'$"; then
        pass "after the holder's Ctrl+C (exit 0) the next one holds the route"
    else
        fail "after the holder's Ctrl+C (exit 0) the next one holds the route" \
            "lock1 exit status $bg_rc" "$(bg_details lock1)" \
            "$(bg_details lock2)"
    fi
    check "call demo.lock goes to the new holder" 0 "second" "" -- call demo.lock
else
    fail "serve demo.lock --exclusive registers" "$(bg_details lock1)"
fi

# ---- monitor ------------------------------------------------------------------
ts='[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}'
start mon "$PIPEHUB" --pipe "$PIPE" monitor --count 4
for i in $(seq 40); do
    run pub demo.m hello
    run call demo.env
    [ "$(clean "$tmp/mon.out" | wc -l)" -ge 4 ] && break
    alive "${bg_pid[mon]}" || break
    sleep 0.2
done
wait_exit mon 10
mon=$(clean "$tmp/mon.out")
if [ "$bg_rc" -eq 0 ] && [ "$(wc -l <<<"$mon")" -eq 4 ] &&
   grep -Eq "^$ts [0-9]+->\\* EVENT demo\\.m id=0 len=5 hello$" <<<"$mon" &&
   grep -Eq "^$ts [0-9]+->[0-9]+ REQUEST demo\\.env id=[0-9]+ len=0 $" <<<"$mon" &&
   grep -Eq "^$ts [0-9]+->[0-9]+ REPLY - id=[0-9]+ len=[0-9]+ caller=[0-9]+ route=demo\\.env\\\\r\\\\n$" <<<"$mon"; then
    pass "monitor --count 4 printed an EVENT, a REQUEST and its REPLY, and exited 0"
else
    fail "monitor --count 4 printed an EVENT, a REQUEST and its REPLY, and exited 0" \
        "exit status $bg_rc" "$(bg_details mon)"
fi
start monsys "$PIPEHUB" --pipe "$PIPE" monitor 'sys.ping' --sys --count 2
for i in $(seq 40); do
    run call sys.ping
    [ "$(clean "$tmp/monsys.out" | wc -l)" -ge 2 ] && break
    alive "${bg_pid[monsys]}" || break
    sleep 0.2
done
check_exit monsys 10 "monitor sys.ping --sys shows the built-in route's traffic" \
    "^$ts [0-9]+->hub REQUEST sys\\.ping id=[0-9]+ len=0 $"

# ---- the examples ----------------------------------------------------------------
run_exe "$EXAMPLES/example_caller.exe" "$PIPE" "hello world"
if [ "$rc" -eq 1 ] && grep -Eq '^error 3: no route' "$tmp/err"; then
    pass "example_caller without a provider: error 3 (NO_ROUTE), exit 1"
else
    fail_run "example_caller without a provider: error 3 (NO_ROUTE), exit 1"
fi
start provider "$EXAMPLES/example_provider.exe" "$PIPE" 1
start subscriber "$EXAMPLES/example_subscriber.exe" "$PIPE" 1
if wait_text provider out '^registered: \{.*"state":"serving".*\}$' &&
   wait_text subscriber out '^subscribed to example\.\*$'; then
    run_exe "$EXAMPLES/example_caller.exe" "$PIPE" "hello world"
    if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = "HELLO WORLD" ]; then
        pass "example_caller prints the provider's answer HELLO WORLD"
    else
        fail_run "example_caller prints the provider's answer HELLO WORLD"
    fi
    check_exit provider 20 "example_provider served one request and exited 0" \
        '^example\.upper from conn [0-9]+: 11 bytes$'
    check_exit subscriber 20 \
        "example_subscriber printed the caller's event and exited 0" \
        '^example\.news hello world$'
else
    fail "example_provider and example_subscriber start" \
        "$(bg_details provider)" "$(bg_details subscriber)"
fi

# ---- stop --------------------------------------------------------------------------
# The serve commands end with the server: the connection closes (exit 3).
stop_pid "${bg_pid[server]}"
unset 'bg_pid[server]'
for name in env cat fails slow lock2; do
    [ -n "${bg_pid[$name]:-}" ] || continue
    wait_exit "$name" 10
    if [ "$bg_rc" -ne 3 ]; then
        fail "serve ($name) exits 3 when the server stops" \
            "exit status $bg_rc" "$(bg_details "$name")"
        continue
    fi
    pass "serve ($name) exits 3 when the server stops"
done

lib_summary
