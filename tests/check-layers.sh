#!/bin/bash
# SPDX-License-Identifier: ISC
#
# The include rules of docs/architecture.md: every #include of the
# production tree, resolved to the file it names, must point at the same
# layer or one below it. Layers, lowest first:
#
#   public     include/                     system headers only
#   core       libvchan/core/               public, and of the system only
#                                           <stdint.h> <stddef.h> <stdbool.h>
#                                           <string.h> (memcpy; no config.h)
#   platform   libvchan/platform/           core, public
#   unikernel  unikernel/                   core, public
#   conduit    libconduit/                  public, and libvchan's header-only
#                                           clock.h, deadline.h, local_dir.h
#   tools      dom0/                        public, clock.h, deadline.h
#   examples   examples/                    public, unikernel's public
#                                           headers and guest runtime
#
# The link-level half (the core takes no libc symbol but memcpy, memset,
# memmove) is tests/check-freestanding.sh. This script also proves that it
# catches a planted violation, so a broken check cannot pass.
#
# Run by make check (top_srcdir from AM_TESTS_ENVIRONMENT), or by hand.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(dirname "$here")}

# layer_of PATH (relative to the tree root): the layer's name, or "" if the
# file is not part of a checked layer (tests, build files).
layer_of() {
    case $1 in
    include/*) echo public ;;
    libvchan/core/*) echo core ;;
    libvchan/platform/*) echo platform ;;
    libvchan/compat/*) echo compat ;;
    unikernel/*) echo unikernel ;;
    libconduit/*) echo conduit ;;
    dom0/*) echo tools ;;
    examples/*) echo examples ;;
    *) echo "" ;;
    esac
}

# allowed FROM-LAYER TARGET-PATH: may a file of FROM include TARGET?
allowed() {
    local from=$1 target=$2 to
    to=$(layer_of "$target")
    [ "$to" = public ] && return 0
    case $from in
    public) return 1 ;;
    core) [ "$to" = core ] && return 0 ;;
    platform) [ "$to" = platform ] || [ "$to" = core ] && return 0 ;;
    compat) [ "$to" = compat ] || [ "$to" = platform ] || [ "$to" = core ] && return 0 ;;
    unikernel) [ "$to" = unikernel ] || [ "$to" = core ] && return 0 ;;
    conduit)
        case $target in
        libconduit/* | libvchan/platform/clock.h | libvchan/core/deadline.h | \
            libvchan/platform/local_dir.h) return 0 ;;
        esac
        return 1
        ;;
    tools)
        case $target in
        dom0/* | libvchan/platform/clock.h | libvchan/core/deadline.h) return 0 ;;
        esac
        return 1
        ;;
    examples)
        case $target in
        examples/* | unikernel/vchan_unikernel.h | unikernel/vchan_hooks.h | unikernel/guest/*)
            return 0
            ;;
        esac
        return 1
        ;;
    esac
    return 1
}

# resolve ROOT FILE NAME: the tree path an #include "NAME" in FILE means
# (its own folder first, then the tree root, then include/, unikernel/ and
# unikernel/guest/ as the build's -I flags give), or "" if none.
resolve() {
    local root=$1 file=$2 name=$3 dir cand
    dir=$(dirname "$file")
    for cand in "$dir/$name" "$name" "include/$name" "unikernel/$name" "unikernel/guest/$name"; do
        if [ -f "$root/$cand" ]; then
            realpath -m --relative-to="$root" "$root/$cand"
            return 0
        fi
    done
    echo ""
}

# check_tree ROOT: print every violation; return 1 if there was one.
check_tree() {
    local root=$1 bad=0 file from line kind name target
    while IFS= read -r file; do
        from=$(layer_of "$file")
        [ -n "$from" ] || continue
        while IFS= read -r line; do
            kind=${line:0:1}
            name=${line:1}
            if [ "$kind" = '<' ]; then
                case $name in
                conduit.h | vchan.h) continue ;;
                esac
                if [ "$from" = core ]; then
                    case $name in
                    stdint.h | stddef.h | stdbool.h | string.h) ;;
                    *)
                        echo "$file: the ring core includes <$name> (freestanding: no libc)"
                        bad=1
                        ;;
                    esac
                fi
                continue
            fi
            target=$(resolve "$root" "$file" "$name")
            if [ -z "$target" ]; then
                echo "$file: #include \"$name\" names no file of the tree"
                bad=1
            elif ! allowed "$from" "$target"; then
                echo "$file: $from includes $target ($(layer_of "$target")): against the layering"
                bad=1
            fi
        done < <(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*([<"])([^>"]+)[>"].*/\1\2/p' \
            "$root/$file")
    done < <(cd "$root" && find include libvchan unikernel libconduit dom0 examples \
        -name '*.[ch]' -type f 2>/dev/null | sort)
    return $bad
}

status=0
if ! check_tree "$top_srcdir"; then
    echo "FAIL: include rules broken (docs/architecture.md)" >&2
    status=1
fi

# The check must catch a violation: a core file including libconduit, and a
# platform file including a tool-level header.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/layers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/include" "$tmp/libvchan/core" "$tmp/libconduit/internal"
echo "" >"$tmp/include/vchan.h"
echo '' >"$tmp/libconduit/internal/internal.h"
printf '#include "vchan.h"\n#include <stdlib.h>\n#include "libconduit/internal/internal.h"\n' \
    >"$tmp/libvchan/core/ring.c"
if out=$(check_tree "$tmp"); then
    echo "FAIL: a planted violation was not found" >&2
    status=1
elif [ "$(printf '%s\n' "$out" | wc -l)" -ne 2 ]; then
    echo "FAIL: expected 2 violations in the planted tree, got:" >&2
    printf '%s\n' "$out" >&2
    status=1
fi

[ $status -eq 0 ] && echo "PASS: include rules hold ($(cd "$top_srcdir" && find include libvchan \
    unikernel libconduit dom0 examples -name '*.[ch]' -type f | wc -l) files)"
exit $status
