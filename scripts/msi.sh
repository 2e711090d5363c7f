#!/usr/bin/env bash
# Build the MSI alone: build/mingw/pipehub-VERSION-x64.msi, VERSION being
# project()'s in CMakeLists.txt. Installs what is missing (wixl, msitools,
# mingw-w64) from Debian's packages first.
source "$(dirname "$0")/common.sh"
ph_deps msi
ph_build_windows
cmake --build "$PH_BUILD/mingw" --target msi
