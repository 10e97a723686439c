#!/bin/sh
# SPDX-License-Identifier: ISC
#
# Smoke test of the real-Xen harness, dom0 half; smoke-domu.sh is the domU
# half and takes the same steps in the same order. Needs xenvchan-peer:
#   tests/xen/run --dom0 smoke-dom0.sh --domu smoke-domu.sh --add xenvchan-peer
#
# Random data each way through Xen's libxenvchan, with each domain as
# server and as client: 4 MiB through 64 KiB rings, 256 KiB through
# libxenvchan's default 1 and 2 KiB rings (a wake-up per kilobyte is slow
# under emulation); then Xen's vchan-socket-proxy in dom0, sending and
# receiving. The receiver checks the SHA-256 that the sender published in
# xenstore, under the domU's data directory, which both domains may write.

. /test/lib.sh

D=/local/domain/$DOMU_ID/data/smoke # rendezvous of the domU's servers, checksums
S=/local/domain/0/data/vchan/$DOMU_ID # rendezvous of dom0's servers
RINGS="--read-min 64K --write-min 64K"

vx_random /tmp/big $((4 << 20))
vx_random /tmp/small $((256 << 10))
xenstore-write "$D/dom0-big" "$(vx_sha256 /tmp/big)" "$D/dom0-small" "$(vx_sha256 /tmp/small)"

# t1: the domU serves with 64 KiB rings and sends; it may still be booting.
xenvchan-peer client "$DOMU_ID" "$D/t1" --timeout 60 -v </dev/null >/tmp/t1
vx_check_status $? "t1 dom0 client of domU server"
vx_check_file /tmp/t1 "$D/domu-big" "t1 domU -> dom0, 64 KiB rings"

# t2: the domU serves with libxenvchan's default rings; we send through its
# 1 KiB ring.
xenvchan-peer client "$DOMU_ID" "$D/t2" -v </tmp/small >/dev/null
vx_check_status $? "t2 dom0 client sends to domU server, 1 KiB ring"

# t3: we serve with 64 KiB rings and send.
# shellcheck disable=SC2086 # RINGS is two options
xenvchan-peer server "$DOMU_ID" "$S/t3" $RINGS -v </tmp/big >/dev/null
vx_check_status $? "t3 dom0 server sends to domU client, 64 KiB rings"

# t4: we serve with 64 KiB rings and receive.
# shellcheck disable=SC2086
xenvchan-peer server "$DOMU_ID" "$S/t4" $RINGS -v </dev/null >/tmp/t4
vx_check_status $? "t4 dom0 server of domU client"
vx_check_file /tmp/t4 "$D/domu-big" "t4 domU -> dom0, 64 KiB rings"

# t5: Xen's vchan-socket-proxy as client sends to the domU's server. It
# closes as soon as its input ends; the server still reads what the ring
# holds.
timeout 60 vchan-socket-proxy "$DOMU_ID" "$D/t5" - </tmp/big >/dev/null
vx_check_status $? "t5 vchan-socket-proxy client sends to domU server"

# t6: vchan-socket-proxy as server (its rings are 1 and 2 KiB) receives
# from the domU's client. Its input must stay open, or it would close at
# once: a FIFO held open for reading and writing never ends and never has
# data.
mkfifo /tmp/hold
exec 3<>/tmp/hold
timeout 60 vchan-socket-proxy -m server "$DOMU_ID" "$S/t6" - <&3 >/tmp/t6
vx_check_status $? "t6 vchan-socket-proxy server of domU client"
exec 3>&-
vx_check_file /tmp/t6 "$D/domu-small" "t6 domU -> vchan-socket-proxy, 1 KiB ring"

vx_finish
