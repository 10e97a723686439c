#!/bin/sh
# SPDX-License-Identifier: ISC
#
# Real-Xen scenarios of the unikernel vchan driver, Linux domU half (see
# uk-dom0.sh): Xen's libxenvchan in this Linux guest as the client of a
# unikernel guest's echo service (step echo, port lx), closing first. dom0
# writes the echo guest's domid to our data/uk/lx once it exists, or
# "skip", and data/uk/done after its last step.

. /test/lib.sh

UK_MID=$((4 << 20))
[ -r /test/bin/uk-params.sh ] && . /test/bin/uk-params.sh
UK_W=30

# The harness stops one side soon after the other fails: wait for dom0's
# last step before ending, so that a failure here cannot cut dom0 short.
finish() {
    vx_wait_key "/local/domain/$DOMID/data/uk/done" 400 >/dev/null
    vx_finish
    exit $?
}

E=$(vx_wait_key "/local/domain/$DOMID/data/uk/lx" 300) || { vx_fail "uk-lx: dom0 never said where"; finish; }
if [ "$E" = skip ]; then
    echo "uk-lx: step not selected"
    vx_wait_key "/local/domain/$DOMID/data/uk/done" 400 >/dev/null
    exit 0
fi

# The input ends once the whole echo is back: xenvchan-peer then closes
# first, cleanly (see uk_feed_until in uk-dom0.sh).
mkfifo /tmp/in
: >/tmp/out
(xen-data gen lx "$UK_MID" && while [ "$(wc -c </tmp/out)" -lt "$UK_MID" ]; do sleep 0.2; done) >/tmp/in &
feeder=$!
timeout 150 xenvchan-peer client "$E" "/local/domain/$E/data/vchan/$DOMID/lx" --timeout $UK_W -v \
    </tmp/in >/tmp/out 2>/tmp/err
rc=$?
kill "$feeder" 2>/dev/null
xen-data check lx "$UK_MID" </tmp/out 2>/tmp/chk
chk=$?
if [ "$rc" != 0 ]; then
    vx_fail "uk-lx: domU: xenvchan-peer exit status $rc"
    sed -n '1,10s/^/    /p' /tmp/err
elif [ "$chk" != 0 ]; then
    vx_fail "uk-lx: domU: $(tail -n 1 /tmp/chk)"
else
    vx_pass "uk-lx: domU (Linux, libxenvchan): $(tail -n 1 /tmp/chk)"
fi
finish
