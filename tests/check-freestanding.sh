#!/bin/bash
# SPDX-License-Identifier: ISC
#
# The ring core (libvchan/core/: ring.c setup.c errors.c inspect.c) must link into a
# unikernel: the only symbols it may take from outside are memcpy, memset
# and memmove. This compiles the core freestanding at -O0 and -O2 (with $CC
# but none of the build's CFLAGS, so sanitizer or coverage builds do not
# matter) and lists what the objects leave undefined, after removing what
# they define for each other. It also inspects the built convenience
# archive when that is not instrumented.
#
# Run by make check (CC, NM, top_srcdir, top_builddir come from
# AM_TESTS_ENVIRONMENT), or by hand: tests/check-freestanding.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(dirname "$here")}
top_builddir=${top_builddir:-$top_srcdir}
CC=${CC:-cc}
NM=${NM:-nm}
NM=${NM% -B} # libtool's NM asks for BSD output; we want POSIX (-P)

allowed='memcpy memset memmove'
sources='ring.c setup.c errors.c inspect.c'

NAME=check-freestanding
# shellcheck source=tests/skip.sh
. "$here/skip.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/freestanding.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

status=0

# check LABEL OBJECT...: print the undefined symbols left after linking the
# objects together; fail on any not in $allowed.
check() {
    local label=$1
    shift
    # nm -P: "name type [value size]"; U = undefined, w/v = weak undefined.
    $NM -P "$@" 2>/dev/null | awk '$2 == "U" || $2 == "w" || $2 == "v" { print $1 }' \
        | sort -u >"$tmp/undef"
    $NM -P -g --defined-only "$@" 2>/dev/null | awk 'NF >= 2 { print $1 }' | sort -u >"$tmp/def"
    local undef
    undef=$(comm -23 "$tmp/undef" "$tmp/def" | paste -sd " " -)
    echo "$label: undefined: ${undef:-(none)}"
    local sym bad=
    for sym in $undef; do
        case " $allowed " in
        *" $sym "*) ;;
        *) bad="$bad $sym" ;;
        esac
    done
    if [ -n "$bad" ]; then
        echo "FAIL: $label: the ring core references symbols a unikernel does not have:$bad" >&2
        status=1
    fi
}

# aarch64 GCC's outline atomics call into libgcc (configure adds this too).
march=()
if $CC -mno-outline-atomics -E -x c /dev/null >/dev/null 2>&1; then
    march=(-mno-outline-atomics)
fi

for opt in -O0 -O2; do
    objs=()
    for src in $sources; do
        obj="$tmp/${src%.c}$opt.o"
        # No config.h, no -DHAVE_*: the core must build as the unikernel builds it.
        $CC -std=gnu11 $opt -ffreestanding -fno-stack-protector -fvisibility=hidden "${march[@]}" \
            -I"$top_srcdir/include" -I"$top_srcdir" \
            -c "$top_srcdir/libvchan/core/$src" -o "$obj"
        objs+=("$obj")
    done
    check "core ($CC $opt -ffreestanding)" "${objs[@]}"
done

# The objects the build made, unless instrumented (sanitizers and coverage
# add their own runtime references, which is expected there).
archive="$top_builddir/libvchan/.libs/libvchan_core.a"
if [ -f "$archive" ]; then
    $NM -P "$archive" >"$tmp/built" 2>/dev/null || true
    if grep -Eq '^(__asan|__ubsan|__tsan|__msan|__sanitizer|__sancov|__gcov|__llvm_gcov|__llvm_profile)' "$tmp/built"; then
        skip_case "built core ($archive): instrumented build, not inspected"
    else
        check "built core ($archive)" "$archive"
    fi
else
    skip_case "built core: $archive not found, not inspected"
fi

if [ "$status" = 0 ]; then
    echo "PASS: the ring core needs only: $allowed"
fi
skip_summary
exit "$status"
