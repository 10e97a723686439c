#!/bin/bash
# SPDX-License-Identifier: ISC
#
# unikernel/libvchan-unikernel.a must link into any unikernel that provides
# memcpy, memset, memmove and the hooks of unikernel/vchan_hooks.h, and
# nothing more. This lists the symbols the archive leaves undefined (after
# removing what its members define for each other) and fails on any other,
# and on a hook the archive calls that the header does not declare. It also
# reports hooks the header declares that the archive never calls (a stale
# header), and checks the x86-64 PV test guests when they were built: no
# undefined symbol at all, and the ELF notes Xen's domain builder needs.
#
# Run by make check (NM, top_srcdir, top_builddir come from
# AM_TESTS_ENVIRONMENT), or by hand: tests/check-unikernel-symbols.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(dirname "$here")}
top_builddir=${top_builddir:-$top_srcdir}
NM=${NM:-nm}
NM=${NM% -B} # libtool's NM asks for BSD output; we want POSIX (-P)

NAME=check-unikernel-symbols
# shellcheck source=tests/skip.sh
. "$here/skip.sh"

archive=$top_builddir/unikernel/libvchan-unikernel.a
header=$top_srcdir/unikernel/vchan_hooks.h
libc='memcpy memset memmove'

if [ ! -f "$archive" ]; then
    echo "FAIL: $archive not built (make first)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uk-symbols.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
status=0

# The hooks: every vchan_hook_NAME( the header declares.
grep -o 'vchan_hook_[a-z_]*(' "$header" | tr -d '(' | sort -u >"$tmp/hooks"
[ -s "$tmp/hooks" ] || { echo "FAIL: no hooks found in $header" >&2; exit 1; }

# nm -P: "name type [value size]"; U = undefined, w/v = weak undefined.
$NM -P "$archive" 2>/dev/null | awk '$2 == "U" || $2 == "w" || $2 == "v" { print $1 }' |
    sort -u >"$tmp/undef"
$NM -P -g --defined-only "$archive" 2>/dev/null | awk 'NF >= 2 { print $1 }' | sort -u >"$tmp/def"
comm -23 "$tmp/undef" "$tmp/def" >"$tmp/needs"

bad=
while read -r sym; do
    case " $libc " in *" $sym "*) continue ;; esac
    grep -qx "$sym" "$tmp/hooks" && continue
    bad="$bad $sym"
done <"$tmp/needs"

echo "libvchan-unikernel.a needs from libc: $(grep -xE 'memcpy|memset|memmove' "$tmp/needs" | paste -sd ' ' -)"
echo "libvchan-unikernel.a needs hooks ($(grep -c . <(grep -x -f "$tmp/hooks" "$tmp/needs") || true)):"
grep -x -f "$tmp/hooks" "$tmp/needs" | sed 's/^/    /' || true
if [ -n "$bad" ]; then
    echo "FAIL: libvchan-unikernel.a needs symbols a unikernel does not provide:$bad" >&2
    status=1
fi
unused=$(comm -23 "$tmp/hooks" "$tmp/needs" | paste -sd ' ' -)
if [ -n "$unused" ]; then
    echo "FAIL: vchan_hooks.h declares hooks the archive never calls: $unused" >&2
    status=1
fi
# A sanitizer or profiler reference would mean the user's CFLAGS leaked in.
if $NM -P "$archive" 2>/dev/null | grep -Eq '^(__asan|__ubsan|__tsan|__sanitizer|__gcov|__stack_chk|__.*_chk )'; then
    echo "FAIL: libvchan-unikernel.a is instrumented or fortified" >&2
    status=1
fi

# The test guests, if this configuration built them.
guests=0
for guest in "$top_builddir"/examples/unikernel-echo/vchan-uk-echo \
    "$top_builddir"/examples/unikernel-echo/vchan-uk-client; do
    [ -f "$guest" ] || continue
    guests=$((guests + 1))
    name=${guest##*/}
    undef=$($NM -P -u "$guest" 2>/dev/null | awk '{ print $1 }' | paste -sd ' ' -)
    if [ -n "$undef" ]; then
        echo "FAIL: $name leaves undefined: $undef" >&2
        status=1
    fi
    if command -v readelf >/dev/null; then
        # Types 1 (ENTRY), 2 (HYPERCALL_PAGE), 5 (XEN_VERSION), 8 (LOADER): the builder needs them.
        notes=$(readelf -nW "$guest" | awk '$1 == "Xen" { n++ } END { print n + 0 }')
        if [ "$notes" -lt 8 ]; then
            echo "FAIL: $name has $notes Xen ELF notes, want 8" >&2
            status=1
        fi
        loaded=0
        for size in $(readelf -lW "$guest" | awk '$1 == "LOAD" { print $6 }'); do
            loaded=$((loaded + size)) # MemSiz, hex: 0x...
        done
        echo "$name: $notes Xen notes, $((loaded / 1024)) KiB loaded (with .bss), no undefined symbols"
    else
        skip_case "$name: its Xen ELF notes: readelf not found (apt-get install binutils)"
    fi
done
[ "$guests" -gt 0 ] ||
    skip_case "test guests (examples/unikernel-echo): not built in this configuration"

[ "$status" = 0 ] && echo "PASS: libvchan-unikernel.a needs only $libc and the hooks of vchan_hooks.h"
skip_summary
exit "$status"
