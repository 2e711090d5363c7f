#!/usr/bin/env bash
# Build pipehubd and run it in this console on the built-in default settings
# (pipe \\.\pipe\pipehub). Extra arguments go to `pipehubd run`.
source "$(dirname "$0")/common.sh"
ph_deps run
ph_build_windows
ph_wine_env
cat <<MSG

pipehubd is starting on \\\\.\\pipe\\pipehub. From another terminal, talk to it:
  WINEPREFIX=$WINEPREFIX WINEDEBUG=-all wine $PH_BUILD/mingw/pipehub.exe call sys.echo hello
  WINEPREFIX=$WINEPREFIX WINEDEBUG=-all wine $PH_BUILD/mingw/pipehub.exe ping -n 5
  WINEPREFIX=$WINEPREFIX WINEDEBUG=-all wine $PH_BUILD/mingw/pipehub.exe stats
Through the hub (each in its own terminal):
  WINEPREFIX=$WINEPREFIX WINEDEBUG=-all wine $PH_BUILD/mingw/pipehub.exe sub "demo.*"
  WINEPREFIX=$WINEPREFIX WINEDEBUG=-all wine $PH_BUILD/mingw/pipehub.exe pub demo.hello hi
  WINEPREFIX=$WINEPREFIX WINEDEBUG=-all wine $PH_BUILD/mingw/pipehub.exe serve demo.time --exec "echo %TIME%"
  WINEPREFIX=$WINEPREFIX WINEDEBUG=-all wine $PH_BUILD/mingw/pipehub.exe call demo.time
  WINEPREFIX=$WINEPREFIX WINEDEBUG=-all wine $PH_BUILD/mingw/pipehub.exe routes
Press Ctrl+C here to stop it.

MSG
exec wine "$PH_BUILD/mingw/pipehubd.exe" run "$@"
