#!/bin/bash
# SPDX-License-Identifier: ISC
#
# valgrind memcheck on a vchan-cat transfer (local platform): a server and
# a client, each under memcheck, move VALGRIND_BYTES (default 2 MiB) one
# way, then the other, through 1 KiB / 4 KiB rings (many wraps) and 64 KiB
# ones. Any
# memcheck error (invalid access, uninitialised value in a system call or a
# branch, a definite leak) fails the test, as does a corrupted byte.
#
# Skipped (77) without valgrind, and on sanitizer builds (valgrind cannot
# run them; they check the same things themselves).
# Environment: top_builddir (default .), VALGRIND_BYTES.
set -u

NAME=valgrind
# shellcheck source=tests/skip.sh
. "$(dirname "$0")/../skip.sh"
builddir=${top_builddir:-.}
CAT=$builddir/dom0/vchan-cat
need_cmd valgrind valgrind
if [ ! -x "$CAT" ]; then
    echo "FAIL: $CAT not found: build it first (make)" >&2
    exit 1
fi
for lib in "$builddir"/.libs/libvchan.so "$builddir"/.libs/libconduit.so; do
    if [ -f "$lib" ] && grep -aqE '__(asan|tsan|msan)_init' "$lib"; then
        skip "$lib is built with a sanitizer; valgrind cannot run it"
    fi
done
# libtool's wrapper script would be what valgrind runs: run the program itself.
run=("$builddir/libtool" --mode=execute)
[ -x "$builddir/libtool" ] || run=()
# An arm64 build run under qemu-user (make check-arm64): no arm64 valgrind here.
"${run[@]}" valgrind -q "$CAT" --version >/dev/null 2>&1 ||
    skip "valgrind cannot run $CAT on this machine (another architecture, under qemu-user?)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vchan-valgrind.XXXXXX") || exit 1
trap 'kill -9 $(jobs -p) 2> /dev/null; wait 2> /dev/null; rm -rf "$tmp"' EXIT
export VCHAN_DIR=$tmp/run
mkdir -m 700 "$VCHAN_DIR"
export VCHAN_PLATFORM=local
unset VCHAN_DOMID

bytes=${VALGRIND_BYTES:-$((2 * 1024 * 1024))}
head -c "$bytes" /dev/urandom > "$tmp/a"
head -c "$((bytes + 7))" /dev/urandom > "$tmp/b"
VG=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite --track-fds=no --quiet)

failures=0
# transfer NAME URI FROM: FROM (server or client) sends its file, the other
# side has no input and reads until the sender closes.
transfer() {
    local name=$1 uri=$2 from=$3 status_s status_c problems=() sin=/dev/null cin=/dev/null
    local src=$tmp/a got=$tmp/client.out
    if [ "$from" = server ]; then sin=$tmp/a; else cin=$tmp/b; src=$tmp/b; got=$tmp/server.out; fi
    timeout -k 5 120 "${run[@]}" "${VG[@]}" --log-file="$tmp/vg-server.%p" \
        "$CAT" -w 30 -l "$uri" < "$sin" > "$tmp/server.out" 2> "$tmp/server.err" &
    local ws=$!
    local i
    for i in $(seq 1000); do
        [ -n "$(ls -A "$VCHAN_DIR")" ] && break
        sleep 0.02
    done
    # The client's URI is the server's without its options: ring sizes are the server's.
    local port=${uri##*/}
    timeout -k 5 120 "${run[@]}" "${VG[@]}" --log-file="$tmp/vg-client.%p" \
        "$CAT" -w 30 "vchan://0/${port%%\?*}" < "$cin" > "$tmp/client.out" 2> "$tmp/client.err"
    status_c=$?
    wait "$ws"
    status_s=$?
    [ "$status_s" = 0 ] || problems+=("server exit $status_s")
    [ "$status_c" = 0 ] || problems+=("client exit $status_c")
    cmp -s "$src" "$got" || problems+=("the data did not arrive intact")
    if grep -qs . "$tmp"/vg-*; then
        problems+=("memcheck reported errors")
    fi
    if [ ${#problems[@]} = 0 ]; then
        echo "PASS: $name, $from to the other: $(stat -c %s "$src") bytes under memcheck, no errors"
    else
        echo "FAIL: $name, $from to the other: ${problems[*]}"
        cat "$tmp"/vg-* "$tmp/server.err" "$tmp/client.err" 2> /dev/null | head -n 60 | sed 's/^/      /'
        failures=$((failures + 1))
    fi
    rm -f "$tmp"/vg-* "$tmp"/*.out
}

for from in server client; do
    transfer "small rings (1 KiB / 4 KiB)" "vchan://0/vg1$from?read-size=1024&write-size=4096" "$from"
    transfer "default rings (64 KiB)" "vchan://0/vg2$from" "$from"
done
exit $((failures > 0))
