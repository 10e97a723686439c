#!/bin/bash
# SPDX-License-Identifier: ISC
#
# The drop-in's ABI against Debian's libxenvchan.so.4.17 (libxenmisc4.17):
# the same soname, the same exported symbols, each in the same version
# node. Skipped (77) where Debian's library is not installed.
set -euo pipefail

: "${top_builddir:=.}"
ours=$top_builddir/libvchan/compat/lib/libxenvchan.so.4.17
theirs=${XENVCHAN_REFERENCE:-/usr/lib/x86_64-linux-gnu/libxenvchan.so.4.17}

if ! command -v objdump > /dev/null; then
    echo "SKIP: no objdump" >&2
    exit 77
fi
if [ ! -e "$theirs" ]; then
    echo "SKIP: no reference $theirs (Debian's libxenmisc4.17)" >&2
    exit 77
fi
[ -e "$ours" ] || { echo "FAIL: $ours not built" >&2; exit 1; }

soname() { objdump -p "$1" | awk '$1 == "SONAME" { print $2 }'; }
# Defined dynamic symbols as "version name", sorted.
symbols() {
    objdump -T "$1" | awk '$2 == "g" && $4 != "*UND*" { print $(NF - 1), $NF }' | sort
}

fail=0
if [ "$(soname "$ours")" != libxenvchan.so.4.17 ]; then
    echo "FAIL: our soname is '$(soname "$ours")', not libxenvchan.so.4.17" >&2
    fail=1
fi
if [ "$(soname "$ours")" != "$(soname "$theirs")" ]; then
    echo "FAIL: soname $(soname "$ours") differs from $(soname "$theirs")" >&2
    fail=1
fi
if ! diff -u <(symbols "$theirs") <(symbols "$ours"); then
    echo "FAIL: exported symbols differ (- Debian's, + ours)" >&2
    fail=1
fi
n=$(symbols "$ours" | grep -c '^VERS_4\.17\.0 libxenvchan_\|^VERS_4\.17\.0 close_xs_srv$' || true)
if [ "$n" -ne 13 ]; then
    echo "FAIL: $n of the 13 functions in VERS_4.17.0" >&2
    fail=1
fi
# Nothing of ours leaks: no vchan_* or vchan__* in the dynamic table.
if objdump -T "$ours" | awk '$4 != "*UND*"' | grep -q ' vchan_'; then
    echo "FAIL: libvchan symbols exported" >&2
    fail=1
fi
[ "$fail" -eq 0 ] && echo "PASS: soname and $n symbols @VERS_4.17.0 as Debian's"
exit "$fail"
