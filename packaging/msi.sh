#!/usr/bin/env bash
# Build pipehub's MSI from a mingw build folder with Debian's wixl (msitools):
#
#   bash packaging/msi.sh BUILD_DIR VERSION OUT.msi
#
# CMake's `msi` target runs it (scripts/msi.sh builds everything first).
# wixl writes most of the package from packaging/pipehub.wxs; what it
# cannot write is then put in with msitools (see ../shared notes in
# docs/ARCHITECTURE.md, "The installer"):
#   - the config file's component gets NeverOverwrite (128) and Permanent
#     (16): wixl drops both attributes;
#   - the event source's EventMessageFile becomes REG_EXPAND_SZ, as
#     `pipehubd install` writes it: wixl ignores Type="expandable";
#   - the Environment table (the install folder at the end of the system
#     PATH, taken out again at removal): wixl has no <Environment>;
#   - AppSearch + DrLocator + Signature: INIFOUND is the config file's
#     path when it exists before the install (wixl has no <DirectorySearch>);
#   - Upgrade: a rebuild of the same version upgrades too (wixl's
#     <MajorUpgrade> has no AllowSameVersionUpgrades);
#   - InstallExecuteSequence: wixl puts custom actions after InstallFinalize,
#     where deferred actions cannot run, and removes an older version after
#     installing the new one; they are moved to where they belong.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: bash packaging/msi.sh BUILD_DIR VERSION OUT.msi" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
version=$2
out=$3
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
case $version in
[0-9]*.[0-9]*.[0-9]*) ;;
*) echo "msi.sh: version '$version' is not x.y.z" >&2; exit 2 ;;
esac
for tool in wixl msiinfo msibuild x86_64-w64-mingw32-ar; do
    command -v "$tool" >/dev/null || {
        echo "msi.sh: $tool is missing (apt-get install wixl msitools gcc-mingw-w64-x86-64)" >&2
        exit 1
    }
done
for f in pipehubd.exe pipehub.exe libpipehub_client.a libph_core.a libph_win.a; do
    [ -f "$build/$f" ] || { echo "msi.sh: $build/$f is missing: build first" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The SDK's one static library: the client library and the parts of the
# core and win/ it calls.
{
    echo "create $work/libpipehub.a"
    for lib in libpipehub_client.a libph_core.a libph_win.a; do
        echo "addlib $build/$lib"
    done
    echo save
    echo end
} | x86_64-w64-mingw32-ar -M
cp "$build/pipehubd.exe" "$build/pipehub.exe" "$work/"

# wixl takes sources relative to the folder it runs in, not absolute.
ln -s "$src" "$work/src"
cp "$here/pipehub.wxs" "$work/"
(cd "$work" && wixl -a x64 -D Version="$version" -D BinDir=. -D SrcDir=src \
    -o pipehub.msi pipehub.wxs)

# Export a table, let a filter rewrite its rows (header lines kept), import.
edit_table() { # TABLE AWK-PROGRAM
    msiinfo export "$work/pipehub.msi" "$1" >"$work/$1.idt"
    awk -F'\t' -v OFS='\t' "NR <= 3 { print; next } $2" \
        "$work/$1.idt" >"$work/$1.new"
    mv "$work/$1.new" "$work/$1.idt"
    (cd "$work" && msibuild pipehub.msi -i "$1.idt")
}
edit_table Component '$1 == "Config" { $4 = 256 + 16 + 128 } { print }'
# REG_EXPAND_SZ is "#%" before the value; wixl writes Type="expandable" as
# a plain string.
edit_table Registry '$4 == "EventMessageFile" && $5 !~ /^#%/ { $5 = "#%" $5 } { print }'
edit_table InstallExecuteSequence '
    $1 == "RemoveExistingProducts" { $3 = 1450 }   # after InstallValidate
    $1 == "ConfigureService" { $3 = 5850 }          # service made, not started
    { print }
    END {
        print "AppSearch", "", 50
        print "RemoveEnvironmentStrings", "", 3300
        print "WriteEnvironmentStrings", "", 5200
    }'
# A rebuild of the same version (a new ProductCode) replaces the installed
# one instead of landing beside it: VersionMaxInclusive (512) on the
# upgrade row. An older version is still removed, a newer one refused.
edit_table Upgrade '$7 ~ /^WIX_UPGRADE_DETECTED/ { $5 = 1 + 512 } { print }'
edit_table InstallUISequence '{ print } END { print "AppSearch", "", 50 }'
cp "$here"/tables/*.idt "$work/"
(cd "$work" && msibuild pipehub.msi -i Environment.idt -i Signature.idt \
        -i DrLocator.idt -i AppSearch.idt)

# Every row must have landed where it was put.
check() { # TABLE PATTERN
    # Exported whole first: grep -q would stop reading early, and a
    # SIGPIPE'd msiinfo fails the pipeline.
    msiinfo export "$work/pipehub.msi" "$1" >"$work/check.idt"
    grep -q "$2" "$work/check.idt" || {
        echo "msi.sh: $1 lacks $2 after the edit" >&2
        exit 1
    }
}
check Component $'^Config\t[^\t]*\tDATADIR\t400\t'
check InstallExecuteSequence $'^ConfigureService\t.*\t5850'
check InstallExecuteSequence $'^RemoveExistingProducts\t\t1450'
check Environment $'^PathEnv\t'
check Registry $'\tEventMessageFile\t#%\\[#pipehubd.exe\\]\t'
check AppSearch $'^INIFOUND\t'
check Upgrade $'\t513\t\tWIX_UPGRADE_DETECTED'

mkdir -p "$(dirname "$out")"
mv "$work/pipehub.msi" "$out"
echo "built $out"
