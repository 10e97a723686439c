#!/bin/sh
# SPDX-License-Identifier: ISC
#
# Smoke test of the real-Xen harness, domU half: see smoke-dom0.sh.

. /test/lib.sh

D=/local/domain/$DOMID/data/smoke
S=/local/domain/0/data/vchan/$DOMID
RINGS="--read-min 64K --write-min 64K"

vx_random /tmp/big $((4 << 20))
vx_random /tmp/small $((256 << 10))
xenstore-write "$D/domu-big" "$(vx_sha256 /tmp/big)" "$D/domu-small" "$(vx_sha256 /tmp/small)"

# t1: we serve with 64 KiB rings and send.
# shellcheck disable=SC2086 # RINGS is two options
xenvchan-peer server 0 "$D/t1" $RINGS -v </tmp/big >/dev/null
vx_check_status $? "t1 domU server sends to dom0 client, 64 KiB rings"

# t2: we serve with libxenvchan's default rings and receive.
xenvchan-peer server 0 "$D/t2" -v </dev/null >/tmp/t2
vx_check_status $? "t2 domU server of dom0 client"
vx_check_file /tmp/t2 "$D/dom0-small" "t2 dom0 -> domU, 1 KiB ring"

# t3: dom0 serves with 64 KiB rings and sends.
xenvchan-peer client 0 "$S/t3" -v </dev/null >/tmp/t3
vx_check_status $? "t3 domU client of dom0 server"
vx_check_file /tmp/t3 "$D/dom0-big" "t3 dom0 -> domU, 64 KiB rings"

# t4: dom0 serves with 64 KiB rings; we send.
xenvchan-peer client 0 "$S/t4" -v </tmp/big >/dev/null
vx_check_status $? "t4 domU client sends to dom0 server, 64 KiB rings"

# t5: we serve with 64 KiB rings; dom0's vchan-socket-proxy connects and
# sends.
# shellcheck disable=SC2086
xenvchan-peer server 0 "$D/t5" $RINGS -v </dev/null >/tmp/t5
vx_check_status $? "t5 domU server of vchan-socket-proxy client"
vx_check_file /tmp/t5 "$D/dom0-big" "t5 vchan-socket-proxy -> domU, 64 KiB rings"

# t6: dom0's vchan-socket-proxy serves; we send.
xenvchan-peer client 0 "$S/t6" -v </tmp/small >/dev/null
vx_check_status $? "t6 domU client sends to vchan-socket-proxy server"

vx_finish
