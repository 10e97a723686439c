#!/bin/sh
# SPDX-License-Identifier: ISC
# make bench-xen-many, dom0 half (many-domu.sh is the other): dom0 serves
# N concurrent channels to the domU on one event loop (tests/bench/many -S)
# at 4 KiB and at 64 KiB rings, N from MANY_N, and prints the limits that
# can end it. A benchmark: its numbers are read, not asserted; a round that
# fails prints the error that ended it (the limit's name, where known).
. /test/lib.sh
[ -r /test/bin/many-params.sh ] && . /test/bin/many-params.sh
export VCHAN_PLATFORM=xen
D=/local/domain/$DOMU_ID/data/many
xenstore-write "$D/start" 1

# gntalloc counts the pages every process of dom0 shares, against one limit;
# a channel holds 1 + its rings' pages. MANY_GNTALLOC_LIMIT raises it.
G=/sys/module/xen_gntalloc/parameters/limit
if [ -n "${MANY_GNTALLOC_LIMIT:-}" ]; then
    echo "$MANY_GNTALLOC_LIMIT" > "$G" || echo "many: cannot write $G"
fi
echo "LIMIT: gntalloc shared-page limit (all of dom0): $(cat "$G" 2>/dev/null || echo '?')"
echo "LIMIT: xenstored: $(readlink -f "$(command -v xenstored)" 2>/dev/null)"
xl list -l 2>/dev/null | grep -E '"(max_grant_frames|max_maptrack_frames|max_event_channels)"' |
    sed 's/^ */LIMIT: domU /'
ulimit -n 65536 2>/dev/null || true
for RING in ${MANY_RINGS:-4096 65536}; do
    echo "==== ring $RING B: dom0 serves, N = $MANY_N"
    timeout "${MANY_ROUND_MAX:-600}" many -S -n "$MANY_N" -o "read-size=$RING&write-size=$RING" 2>&1
    echo "---- ring $RING: many -S exit $?"
    xenstore-write "$D/done-$RING" 1
    vx_wait_key "$D/client-done-$RING" 600 >/dev/null
done
vx_pass "many: the rounds ran (numbers above)"
vx_finish
