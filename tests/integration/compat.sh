#!/bin/bash
# SPDX-License-Identifier: ISC
#
# The libxenvchan drop-in on the local platform (docs/compat.md): our test
# program tests/compat/xv-test, built against Xen's <libxenvchan.h> and
# linked against Debian's libxenvchan.so.4.17 (so bound to its
# name@VERS_4.17.0 symbols), runs unchanged as server and client, two
# processes, with LD_LIBRARY_PATH pointing at the drop-in and through
# dom0/vchan-compat: every function and return convention, transfers of
# several MiB both ways, blocking and not; a hostile server (EPROTO, never
# a hang). Also that our library is the
# one the loader took, and that the paths it refuses are refused. Then the
# same program built against our own header. Skipped (77) without
# libxen-dev's header and library.
set -u

NAME=compat
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

XV=$builddir/tests/compat/xv-test
XV_OURS=$builddir/tests/compat/xv-test-ours
LIBDIR=$(cd "$builddir/libvchan/compat/lib" && pwd)
WRAP=$builddir/dom0/vchan-compat
REAL=${XENVCHAN_REFERENCE:-/usr/lib/x86_64-linux-gnu/libxenvchan.so.4.17}
MIB=$((4 * 1024 * 1024))

[ -e "$LIBDIR/libxenvchan.so.4.17" ] || { echo "FAIL: the drop-in is not built" >&2; exit 1; }
if [ ! -x "$XV" ] || [ ! -e /usr/include/libxenvchan.h ] || [ ! -e "$REAL" ]; then
    skip "needs libxen-dev's libxenvchan.h and libxenvchan.so.4.17 (apt-get install libxen-dev)"
fi

# An arm64 build run under qemu-user (make check-arm64): the host's ldd
# cannot read its programs.
ldd "$XV" >/dev/null 2>&1 ||
    skip "ldd cannot read $XV (another architecture, under qemu-user?)"

# The program is bound to Xen's library: without the drop-in it would load Debian's.
if objdump -T "$XV" | grep -q 'VERS_4\.17\.0.*libxenvchan_server_init' &&
    objdump -p "$XV" | grep -q 'NEEDED.*libxenvchan\.so\.4\.17'; then
    pass "xv-test needs libxenvchan.so.4.17 and binds libxenvchan_*@VERS_4.17.0"
else
    fail "xv-test is not bound to libxenvchan.so.4.17@VERS_4.17.0"
fi

# Which libxenvchan the loader takes: ldd, and LD_DEBUG=libs of a real run.
loaded=$(LD_LIBRARY_PATH=$LIBDIR ldd "$XV" | awk '$1 == "libxenvchan.so.4.17" { print $3 }')
if [ "$(readlink -f "$loaded")" = "$(readlink -f "$LIBDIR/libxenvchan.so.4.17")" ]; then
    pass "ldd with LD_LIBRARY_PATH: $loaded"
else
    fail "ldd with LD_LIBRARY_PATH resolves libxenvchan.so.4.17 to '$loaded'"
fi
loaded=$(VCHAN_COMPAT_LIBDIR=$LIBDIR "$WRAP" ldd "$XV" | awk '$1 == "libxenvchan.so.4.17" { print $3 }')
if [ "$(readlink -f "$loaded")" = "$(readlink -f "$LIBDIR/libxenvchan.so.4.17")" ]; then
    pass "ldd through vchan-compat: $loaded"
else
    fail "ldd through vchan-compat resolves libxenvchan.so.4.17 to '$loaded'"
fi
LD_DEBUG=libs LD_LIBRARY_PATH=$LIBDIR "${LIMIT[@]}" "$XV" client 0 bad-path conventions \
    > /dev/null 2> "$tmp/ld-debug"
if grep -q "calling init: $LIBDIR/libxenvchan.so.4.17" "$tmp/ld-debug"; then
    pass "LD_DEBUG: the loader initialised $LIBDIR/libxenvchan.so.4.17"
else
    fail "LD_DEBUG shows no init of our libxenvchan.so.4.17"
    grep libxenvchan "$tmp/ld-debug" | sed 's/^/    /'
fi

# pair NAME HOW SERVER_ARGS -- CLIENT_ARGS: run both sides (HOW: env or wrap), both must exit 0.
case_n=0
pair() {
    local name=$1 how=$2 prog=$XV sargs=() cargs=() spid rs rc log
    shift 2
    while [ "$1" != -- ]; do sargs+=("$1"); shift; done
    shift
    cargs=("$@")
    [ "$how" = ours ] && prog=$XV_OURS
    run() {
        if [ "$how" = wrap ]; then
            VCHAN_COMPAT_LIBDIR=$LIBDIR "${LIMIT[@]}" "$WRAP" "$prog" "$@"
        else
            LD_LIBRARY_PATH=$LIBDIR "${LIMIT[@]}" "$prog" "$@"
        fi
    }
    case_n=$((case_n + 1))
    log=$tmp/case$case_n
    run server "${sargs[@]}" > "$log.server" 2>&1 &
    spid=$!
    pids+=("$spid")
    # libxenvchan's client does not wait for a server: start it once published.
    for _ in $(seq 200); do
        compgen -G "$VCHAN_DIR/*" > /dev/null && break
        sleep 0.02
    done
    run client "${cargs[@]}" > "$log.client" 2>&1
    rc=$?
    wait "$spid"
    rs=$?
    if [ "$rs" -eq 0 ] && [ "$rc" -eq 0 ]; then
        pass "$name"
    else
        fail "$name (server $rs, client $rc)"
        show_err "$log.server" "$log.client"
    fi
    rm -rf "${VCHAN_DIR:?}"/*
}

P=/local/domain/0/data/vchan/3/xv
# A client of domain 3: the path names it; VCHAN_DOMID, when set, must agree.
pair "conventions, every function (LD_LIBRARY_PATH)" env 3 "$P" conventions -- 0 "$P" conventions
pair "conventions, every function (vchan-compat)" wrap 3 "$P" conventions -- 0 "$P" conventions
pair "relative path data/vchan/0/rel (server and client in domain 0)" env \
    0 data/vchan/0/rel conventions -- 0 data/vchan/0/rel conventions
pair "4 MiB each way at once, non-blocking, in-page rings" env \
    3 "$P" transfer "$MIB" 0 nonblocking -- 0 "$P" transfer "$MIB" 0 nonblocking
pair "8 MiB each way at once, non-blocking, 64 KiB rings (vchan-compat)" wrap \
    3 "$P" transfer $((2 * MIB)) 65536 nonblocking -- 0 "$P" transfer $((2 * MIB)) 65536 nonblocking
pair "4 MiB each way, blocking write/read then send/recv, 16 KiB rings" env \
    3 "$P" transfer "$MIB" 16384 blocking -- 0 "$P" transfer "$MIB" 16384 blocking
pair "4 MiB each way, blocking, in-page rings" env \
    3 "$P" transfer "$MIB" 0 blocking -- 0 "$P" transfer "$MIB" 0 blocking
pair "a wait after a write that fitted returns once the peer took it (vchan-socket-proxy's end)" env \
    3 "$P" drain -- 0 "$P" drain
pair "data written at connect wakes a select() after the is_open loop (vchan-socket-proxy serving)" env \
    3 "$P" early -- 0 "$P" early
if [ -x "$XV_OURS" ]; then
    pair "built against our libxenvchan.h: conventions" ours 3 "$P" conventions -- 0 "$P" conventions
    pair "built against our libxenvchan.h: 4 MiB each way" ours \
        3 "$P" transfer "$MIB" 65536 nonblocking -- 0 "$P" transfer "$MIB" 65536 nonblocking
fi

out=$(LD_LIBRARY_PATH=$LIBDIR "${LIMIT[@]}" "$XV" server 0 data/vchan/0/orders orders 2>&1)
[ $? -eq 0 ] && pass "server_init's ring orders (in-page 1/2 KiB, granted, 1 MiB, above)" ||
    fail "server_init's ring orders: $out"
# The server removes what it published when it closes: a client then finds nothing.
out=$(LD_LIBRARY_PATH=$LIBDIR "${LIMIT[@]}" "$XV" server 0 data/vchan/0/gone unpublish 2>&1)
if [ $? -eq 0 ] && [ -z "$(ls -A "$VCHAN_DIR")" ]; then
    pass "server close removes its rendezvous entry"
else
    fail "server close left its entry: $out; $(ls -A "$VCHAN_DIR")"
fi

# A hostile server (tests/hostile/hostile-peer -a chaos) against the
# program over the drop-in: it must end with -1 (EPROTO, or EPIPE when the
# attack closed the page), never hang past its limit or crash.
HOSTILE=$builddir/tests/hostile/hostile-peer
eproto=0
for round in 1 2 3 4; do
    "${LIMIT[@]}" "$HOSTILE" -l -a chaos -t 2 -s "$round" vchan://3/hx > /dev/null 2> "$tmp/hostile$round" &
    hpid=$!
    pids+=("$hpid")
    for _ in $(seq 200); do
        compgen -G "$VCHAN_DIR/*" > /dev/null && break
        sleep 0.02
    done
    out=$(LD_LIBRARY_PATH=$LIBDIR timeout -k 2 20 "$XV" client 0 /local/domain/0/data/vchan/3/hx victim 2>&1)
    rc=$?
    wait "$hpid"
    if [ "$rc" -eq 0 ]; then
        pass "hostile server, seed $round: ${out%%$'\n'*}"
        [[ $out == *EPROTO* ]] && eproto=$((eproto + 1))
    else
        fail "hostile server, seed $round: exit $rc: $out"
        show_err "$tmp/hostile$round"
    fi
    rm -rf "${VCHAN_DIR:?}"/*
done
if [ "$eproto" -gt 0 ]; then
    pass "the drop-in reported EPROTO in $eproto of 4 hostile rounds"
else
    fail "no hostile round ended with EPROTO"
fi

# Paths that do not fit the rendezvous are refused at once with EINVAL.
for bad in "" / /local/domain/0/data/vchan/3/ /local/domain/0/data/vchan/3 \
    /local/domain/00/data/vchan/3/p /local/domain/0/data/vchan/3/p/q data/vchan/3/p.q \
    /local/domain/0/device-model/3/p data/vchan//p /local/domain/-1/data/vchan/3/p \
    /local/domain/99999/data/vchan/3/p /local/domain/0/data/vchan/4/p; do
    out=$(LD_LIBRARY_PATH=$LIBDIR "${LIMIT[@]}" "$XV" server 3 "$bad" conventions 2>&1)
    if [ $? -eq 1 ] && [[ $out == *"init failed: Invalid argument"* ]]; then
        pass "server refuses path '$bad' (EINVAL)"
    else
        fail "server path '$bad': $out"
    fi
done
# A client whose domain is not the path's server; VCHAN_DOMID disagreeing with the path.
out=$(LD_LIBRARY_PATH=$LIBDIR "${LIMIT[@]}" "$XV" client 5 "$P" conventions 2>&1)
[[ $out == *"init failed: Invalid argument"* ]] && pass "client: domain 5 is not the path's server" ||
    fail "client domain 5 for $P: $out"
out=$(VCHAN_DOMID=4 LD_LIBRARY_PATH=$LIBDIR "${LIMIT[@]}" "$XV" client 0 "$P" conventions 2>&1)
[[ $out == *"init failed: Invalid argument"* ]] && pass "client: VCHAN_DOMID=4 is not the path's client 3" ||
    fail "client VCHAN_DOMID=4 for $P: $out"
out=$(LD_LIBRARY_PATH=$LIBDIR "${LIMIT[@]}" "$XV" client 3 data/vchan/3/p conventions 2>&1)
[[ $out == *"init failed: Invalid argument"* ]] &&
    pass "client: a relative path names our own domain 0 as the server, not client 3" ||
    fail "client relative data/vchan/3/p: $out"
# No server: the client gives up (within its second) with an error, as libxenvchan's would.
out=$(LD_LIBRARY_PATH=$LIBDIR "${LIMIT[@]}" "$XV" client 0 "$P" conventions 2>&1)
[[ $out == *"init failed"* ]] && pass "client without a server fails: ${out##*: }" ||
    fail "client without a server: $out"

finish
