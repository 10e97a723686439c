#!/bin/bash
# SPDX-License-Identifier: ISC
#
# The section 3 manual pages against the public headers they document:
#
#   include/vchan.h                 docs/vchan.3         vchan_  VCHAN_
#   include/conduit.h               docs/conduit.3       conduit_ CONDUIT_
#   include/compat/libxenvchan.h    docs/vchan-compat.3  libxenvchan_
#   include/vchan-conduit/libvchan.h docs/libvchan-conduit.3 libvchan_
#   unikernel/vchan_unikernel.h and unikernel/vchan_hooks.h
#                                   docs/vchan_unikernel.3
#                                   vchan_unikernel_ vchan_hook_  VCHAN_HOOK_
#
# Both ways:
#  - every exported function and every error code of the header (its
#    *_ERRNO_MAP, or its #define PREFIX_E... for the hooks), and for conduit.h every URI option of its "Options"
#    block (name=), is named in the page;
#  - every identifier with the header's prefix that the page names exists in
#    the header's code (comments aside), every error code the page names
#    (PREFIX_E...) is one of the map's, and every name= the page names is
#    an option the header mentions.
# A new function, error code or URI option (the sodium layer's key=/peer=,
# CONDUIT_EAUTH) fails here until its page says it, and so does a page that
# keeps a name the header dropped. (The version in the pages' .TH lines:
# tests/check-version.sh.) And vchan-cat(1)'s OPTIONS against the options
# vchan-cat --help lists, when vchan-cat is built.
#
# Also proves that it catches a planted omission and a planted extra name,
# so a broken check cannot pass. Run by make check, or by hand.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(dirname "$here")}
NAME=check-man
# shellcheck source=tests/skip.sh
. "$top_srcdir/tests/skip.sh"
need_cmd perl perl-base

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# code_of HEADER: the header without its comments.
code_of() {
    perl -0777 -pe 's{/\*.*?\*/}{ }gs; s{//[^\n]*}{}g' "$1"
}

# funcs_of HEADER FUNCPREFIX: the functions it declares (one a line);
# FUNCPREFIX may be alternatives (a_|b_).
funcs_of() {
    code_of "$1" | perl -0777 -ne 's{^\s*#.*$}{}mg;
        while (/\b((?:'"$2"')\w+)\s*\(/g) { print "$1\n" }' | sort -u
}

# codes_of HEADER MACROPREFIX: PREFIX_NAME for every X(NAME, ...) of its
# map, and every #define PREFIX_E... (not _EXPORT, _ERRNO_*).
codes_of() {
    code_of "$1" | perl -0777 -ne 'if (/_ERRNO_MAP\(X\)(.*?)\n\s*\n/s) {
        my $m = $1; while ($m =~ /\bX\((\w+),/g) { print "'"$2"'$1\n" } }
        while (/^#define\s+('"$2"'E[A-Z0-9]+)\b/mg) {
            print "$1\n" unless $1 =~ /_(EXPORT|ERRNO_\w*)$/ }' | sort -u
}

# options_of HEADER: the name= of the "Options" block of the leading comment.
options_of() {
    perl -ne 'if (/^ \* Options\b/) { $in = 1; next }
        if ($in && /^ \*\s*$/) { exit }
        if ($in) { while (/(?<![\w-])([a-z][a-z-]*)=/g) { print "$1=\n" } }' "$1" | sort -u
}

# text_of PAGE: the page's text without its roff comments and its
# ENVIRONMENT section (variables are not the header's), roff escapes
# undone, file names (x.h) and wildcards (VCHAN_E*) dropped.
text_of() {
    sed -e '/^\.\\"/d' -e '/^\.SH ENVIRONMENT/,/^\.SH/{/^\.SH ENVIRONMENT/d;/^\.SH/!d}' "$1" |
        sed -e 's/\\-/-/g; s/\\f[BIRP]//g; s/\\f(..//g; s/\\e/\\/g' |
        sed -E 's/[A-Za-z0-9_.-]+\.h\b//g; s/\b[A-Z]+_E\*//g'
}

# check HEADER PAGE FUNCPREFIX MACROPREFIX: print every mismatch; status 1 if any.
check() {
    local header=$1 page=$2 fp=$3 mp=$4 bad=0 name text words codes funcs
    text=$(text_of "$page")
    words=$(grep -oE '\b[A-Za-z_][A-Za-z0-9_]*\b' "$header" | sort -u)
    funcs=$(funcs_of "$header" "$fp")
    codes=$(if [ -n "$mp" ]; then codes_of "$header" "$mp"; fi)
    has() { grep -qE "(^|[^A-Za-z0-9_])$1([^A-Za-z0-9_]|\$)" <<< "$text"; }
    for name in $funcs $codes; do
        if ! has "$name"; then
            echo "$page: does not name $name (in $header)"
            bad=1
        fi
    done
    for name in $(grep -oE "\\b(${fp}${mp:+|$mp})[A-Za-z0-9_]*" <<< "$text" | sort -u); do
        if [ -n "$mp" ] && [[ $name =~ ^${mp}E[A-Z0-9]+$ ]] && [[ ! $name =~ ^${mp}(ERRNO_|EXPORT) ]]; then
            if ! grep -qx "$name" <<< "$codes"; then
                echo "$page: names error code $name, which $header does not have"
                bad=1
            fi
        elif [[ $name =~ ^($fp) ]] && grep -qE "(^|[^A-Za-z0-9_])$name ?\\(" <<< "$text"; then
            if ! grep -qx "$name" <<< "$funcs"; then
                echo "$page: names function $name(), which $header does not declare"
                bad=1
            fi
        elif ! grep -qx "$name" <<< "$words"; then
            echo "$page: names $name, which $header does not have"
            bad=1
        fi
    done
    if [ "$fp" = conduit_ ]; then
        local opts all
        opts=$(options_of "$header")
        all=$(grep -oE '(^|[^A-Za-z0-9_-])[a-z][a-z-]*=' "$header" | sed -E 's/^[^a-z]//' | sort -u)
        for name in $opts; do
            if ! grep -qF -- "$name" <<< "$text"; then
                echo "$page: does not name the URI option $name (in $header)"
                bad=1
            fi
        done
        for name in $(grep -oE '(^|[^A-Za-z0-9_-])[a-z][a-z-]*=' <<< "$text" | sed -E 's/^[^a-z]//' | sort -u); do
            if ! grep -qxF -- "$name" <<< "$all"; then
                echo "$page: names the URI option $name, which $header does not have"
                bad=1
            fi
        done
    fi
    return $bad
}

status=0
pairs=(
    "include/vchan.h docs/vchan.3 vchan_ VCHAN_"
    "include/conduit.h docs/conduit.3 conduit_ CONDUIT_"
    "include/compat/libxenvchan.h docs/vchan-compat.3 libxenvchan_ "
    "include/vchan-conduit/libvchan.h docs/libvchan-conduit.3 libvchan_ "
    "unikernel/vchan_unikernel.h+unikernel/vchan_hooks.h docs/vchan_unikernel.3 vchan_unikernel_|vchan_hook_ VCHAN_HOOK_"
)
for pair in "${pairs[@]}"; do
    read -r headers page fp mp <<< "$pair"
    # Several headers for one page: checked as one.
    header=$top_srcdir/${headers%%+*}
    if [ "$headers" != "${headers%%+*}" ]; then
        header=$tmp/${page##*/}.h
        for h in ${headers//+/ }; do cat "$top_srcdir/$h"; done > "$header"
    fi
    n=$(funcs_of "$header" "$fp" | wc -l)
    if [ "$n" -lt 5 ]; then
        echo "check-man: found only $n functions in $headers: the extraction is broken" >&2
        exit 1
    fi
    if ! check "$header" "$top_srcdir/$page" "$fp" "${mp:-}"; then
        status=1
    fi
done

# vchan-cat(1) against the program: the options of vchan-cat --help and
# those of the page's OPTIONS section are the same.
top_builddir=${top_builddir:-$top_srcdir}
if [ -x "$top_builddir/dom0/vchan-cat" ]; then
    help_opts=$("$top_builddir/dom0/vchan-cat" --help | grep -oE '(^|[ ,])--?[a-z][a-z-]*' |
        sed 's/^[ ,]//' | sort -u)
    page_opts=$(sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$top_srcdir/docs/vchan-cat.1" |
        grep -oE '\\-(\\-)?[a-z][a-z-]*' | sed 's/\\//g' | sort -u)
    [ "$(wc -l <<< "$help_opts")" -ge 10 ] || { echo "check-man: vchan-cat --help gave no options" >&2; exit 1; }
    for o in $(comm -23 <(echo "$help_opts") <(echo "$page_opts")); do
        echo "docs/vchan-cat.1: OPTIONS does not describe $o (in vchan-cat --help)"
        status=1
    done
    for o in $(comm -13 <(echo "$help_opts") <(echo "$page_opts")); do
        echo "docs/vchan-cat.1: OPTIONS describes $o, which vchan-cat --help does not list"
        status=1
    done
else
    skip_case "vchan-cat's options against vchan-cat(1): $top_builddir/dom0/vchan-cat not built"
fi

# The check itself: a page that lost a function, and one that names
# something the header lacks, must both fail.
sed '/vchan_page_close/d' "$top_srcdir/docs/vchan.3" > "$tmp/missing.3"
if check "$top_srcdir/include/vchan.h" "$tmp/missing.3" vchan_ VCHAN_ > /dev/null; then
    echo "check-man: a page without vchan_page_close passed: the check is broken" >&2
    exit 1
fi
{ cat "$top_srcdir/docs/conduit.3"; printf '.B CONDUIT_EBOGUS\n.BR conduit_bogus ()\n.B bogus=\n'; } \
    > "$tmp/extra.3"
base=$(check "$top_srcdir/include/conduit.h" "$top_srcdir/docs/conduit.3" conduit_ CONDUIT_ | wc -l || true)
extra=$(check "$top_srcdir/include/conduit.h" "$tmp/extra.3" conduit_ CONDUIT_ | wc -l || true)
if [ $((extra - base)) -ne 3 ]; then
    echo "check-man: a page naming CONDUIT_EBOGUS, conduit_bogus and bogus= did not fail three times" >&2
    exit 1
fi

if [ "$status" -ne 0 ]; then
    echo "check-man: FAIL: the pages in docs/ and the headers disagree (see above)"
    exit 1
fi
echo "check-man: docs/vchan.3, conduit.3, vchan-compat.3, libvchan-conduit.3, vchan_unikernel.3 agree with their headers"
skip_summary
