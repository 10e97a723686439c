#!/bin/sh
# SPDX-License-Identifier: ISC
#
# make bench-xen-compat (tests/xen/run-compat-bench), for BOTH guests: Xen's
# libxenvchan programs, unchanged, over Debian's libxenvchan and over our
# drop-in (vchan-compat), in one boot, interleaved pass by pass:
#   proxy      vchan-socket-proxy -m server in dom0 receives CB_BYTES from
#              xenvchan-peer, the domU's client: the proxy's own rings
#              (libxenvchan's in-page 1 KiB and 2 KiB)
#   proxy-64k  xenvchan-peer serving in dom0 with 64 KiB rings sends
#              CB_BYTES_64K to vchan-socket-proxy, the domU's client
# Both programs of a row run over the same library. Each side is timed by
# busybox time: throughput from the domU client's wall time (connection
# included: a few ms; the server waits for it), CPU as each process's
# user+sys. dom0 prints one line
# per row and pass, "CB: ROW LIB PASS BYTES WALL CPU_DOMU CPU_DOM0";
# tests/xen/run-compat-bench makes the table.

. /test/lib.sh

export VCHAN_PLATFORM=xen

CB_BYTES=$((4 << 20))
CB_BYTES_64K=$((16 << 20))
CB_PASSES=3
# shellcheck source=/dev/null
[ -r /test/bin/compat-bench-params.sh ] && . /test/bin/compat-bench-params.sh

if [ "${VCHAN_XEN_ROLE:-}" = dom0 ]; then
    SIDE=dom0 PEER=$DOMU_ID X=/local/domain/$DOMU_ID/data/cb
else
    SIDE=domu PEER=0 X=/local/domain/$DOMID/data/cb
fi
S0=/local/domain/0/data/vchan/${DOMU_ID:-$DOMID}

mark() { xenstore-write -- "$X/$1" "${2:-1}"; } # --: a value may start with -
await() { vx_wait_key "$X/$1" "${2:-180}"; }

# cpu_of FILE: user+sys seconds from busybox time's report; wall_of FILE: real.
cpu_of() { awk '$1 == "user" || $1 == "sys" { sub(/m/, "", $2); sub(/s/, "", $3); t += $2 * 60 + $3 } END { printf "%.2f", t }' "$1"; }
wall_of() { awk '$1 == "real" { sub(/m/, "", $2); sub(/s/, "", $3); printf "%.2f", $2 * 60 + $3 }' "$1"; }

# over LIB: the word that runs a program over ours ("vchan-compat"), or
# nothing for Debian's library (busybox time runs programs, not functions).
over() { [ "$1" = ours ] && echo vchan-compat; }

rm -f /tmp/cb-hold && mkfifo /tmp/cb-hold
# The senders' data: the domU sends the proxy row (its 128 MiB hold no more), dom0 the other.
if [ "$SIDE" = dom0 ]; then
    head -c "$CB_BYTES_64K" /dev/urandom >"/tmp/cb-data-$CB_BYTES_64K"
else
    head -c "$CB_BYTES" /dev/urandom >"/tmp/cb-data-$CB_BYTES"
fi

# one ROW LIB PASS: the row's pair once; the domU is the client. The proxy
# receives in both rows: as a sender it ends its input by writing what fits
# and waiting for an event, which Xen's libxenvchan on the other side never
# sends (it signals a read only when the writer asked): Debian's library on
# both ends then sleeps until a time limit (docs/compat.md). Each side
# publishes "BYTES WALL CPU" (BYTES: what it received, - when it sent).
one() {
    _row=$1 _lib=$2 _n=$3 _id=$1-$2-$3
    _bytes=$CB_BYTES
    [ "$_row" = proxy ] || _bytes=$CB_BYTES_64K
    _hold='3<>/tmp/cb-hold <&3'
    # shellcheck disable=SC2016 # expanded by eval below
    if [ "$_row" = proxy ]; then
        _srv='vchan-socket-proxy -m server $PEER $S0/$_id - '$_hold' | wc -c'
        _cli='xenvchan-peer client 0 $S0/$_id --timeout 30 </tmp/cb-data-$_bytes >/dev/null'
    else
        _srv='xenvchan-peer server $PEER $S0/$_id --read-min 64K --write-min 64K --timeout 30 </tmp/cb-data-$_bytes >/dev/null'
        _cli='vchan-socket-proxy 0 $S0/$_id - '$_hold' | wc -c'
    fi
    rm -f "/tmp/cb-n-$_id"
    if [ "$SIDE" = dom0 ]; then
        (eval "time $(over "$_lib") $_srv" >"/tmp/cb-n-$_id") 2>"/tmp/cb-t-$_id" &
        _job=$!
        vx_wait_key "$S0/$_id/ring-ref" 30 >/dev/null && mark "ready-$_id"
        wait "$_job"
        _got=$(tr -d ' ' <"/tmp/cb-n-$_id" 2>/dev/null)
        _mine="${_got:--} $(wall_of "/tmp/cb-t-$_id") $(cpu_of "/tmp/cb-t-$_id")"
        _theirs=$(await "done-$_id") || _theirs="none none none"
        # CB: ROW LIB PASS BYTES(received) WALL(domU) CPU(domU) CPU(dom0)
        # shellcheck disable=SC2086 # fields
        set -- $_mine $_theirs
        _got=$1
        [ "$_got" != - ] || _got=$4
        echo "CB: $_row $_lib $_n $_got $5 $6 $3"
    else
        await "ready-$_id" >/dev/null
        (eval "time $(over "$_lib") $_cli" >"/tmp/cb-n-$_id") 2>"/tmp/cb-t-$_id"
        _got=$(tr -d ' ' <"/tmp/cb-n-$_id")
        mark "done-$_id" "${_got:--} $(wall_of "/tmp/cb-t-$_id") $(cpu_of "/tmp/cb-t-$_id")"
    fi
}

if [ "$SIDE" = dom0 ]; then
    await domu-up >/dev/null || { echo "compat-bench: no word from the domU"; exit 1; }
else
    mark domu-up
fi

_p=1
while [ "$_p" -le "$CB_PASSES" ]; do
    for _row in proxy proxy-64k; do
        # Alternate which library goes first, so neither always meets a warmer host.
        if [ $((_p % 2)) = 1 ]; then _libs='xen ours'; else _libs='ours xen'; fi
        for _lib in $_libs; do
            one "$_row" "$_lib" "$_p"
        done
    done
    _p=$((_p + 1))
done

exit 0
