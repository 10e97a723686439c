#!/bin/sh
# SPDX-License-Identifier: ISC
# make bench-xen-many, domU half: N concurrent client channels to dom0's
# `many -S` (tests/bench/many -C 0), streaming MANY_SECS on all at once.
. /test/lib.sh
[ -r /test/bin/many-params.sh ] && . /test/bin/many-params.sh
export VCHAN_PLATFORM=xen
D=/local/domain/$DOMID/data/many
vx_wait_key "$D/start" 120 >/dev/null
ulimit -n 65536 2>/dev/null || true
for RING in ${MANY_RINGS:-4096 65536}; do
    echo "==== ring $RING B: domU connects, N = $MANY_N"
    many -C 0 -n "$MANY_N" -t "${MANY_SECS:-1}" 2>&1
    echo "---- ring $RING: many -C exit $?"
    vx_wait_key "$D/done-$RING" 600 >/dev/null
    xenstore-write "$D/client-done-$RING" 1
done
vx_pass "many: the client rounds ran (numbers above)"
vx_finish
