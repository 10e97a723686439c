#!/bin/sh
# SPDX-License-Identifier: ISC
# libconduit on real Xen, dom0 half (accept-domu.sh is the other).
. /test/lib.sh
D=/local/domain/$DOMU_ID/data/acc   # handshakes between the two scripts (both may write)
xenstore-write "$D/start" 1

# A: the echo server in dom0 on vchan://*/svc serves three concurrent domU clients.
timeout 120 echo-server -v -n 3 'vchan://*/svc' >/tmp/a.log 2>&1 &
APID=$!
xenstore-write "$D/a-ready" 1
wait $APID
vx_check_status $? "A: dom0 echo-server vchan://*/svc served 3 concurrent domU clients"
cat /tmp/a.log

# B: vchan-cat -k -l vchan://*/cat serves three domU clients one after another.
timeout 120 vchan-cat -v -w 60 -k -l 'vchan://*/cat' </dev/null >/tmp/b.out 2>/tmp/b.err &
BPID=$!
xenstore-write "$D/b-ready" 1
vx_wait_key "$D/b-done" 100 >/dev/null
kill $BPID; wait $BPID
vx_check_file /tmp/b.out "$D/b-sum" "B: vchan-cat -k -l vchan://*/cat got the three clients' data in turn"
cat /tmp/b.err

# C: dom0 clients to domU servers on vchan://*/dsvc, by id and by name.
vx_wait_key "$D/c-ready" 100 >/dev/null
timeout 60 echo-client -v -r 3 -s 100000 "vchan://$DOMU_ID/dsvc"
vx_check_status $? "C: dom0 echo-client -> domU echo-server vchan://*/dsvc, by domain id"
timeout 60 echo-client -v -r 3 -s 100000 "vchan://domu/dsvc"
vx_check_status $? "C: dom0 echo-client -> domU echo-server, by domain name 'domu'"
vx_random /tmp/c.in 300000
timeout 60 vchan-cat -w 30 "vchan://$DOMU_ID/dcat" </tmp/c.in >/dev/null
vx_check_status $? "C: dom0 vchan-cat -> domU vchan-cat -l vchan://*/dcat"
xenstore-write "$D/c-sum" "$(vx_sha256 /tmp/c.in)"

# E: a forged request: the domU writes one in dom0's name. The listener must
# drop it (the owner is the domU) and publish nothing for domain 0.
timeout 60 vchan-cat -v -w 20 -l 'vchan://*/forge' </dev/null >/dev/null 2>/tmp/e.err &
EPID=$!
vx_wait_key /local/domain/0/data/conduit/forge/pid 30 >/dev/null
xenstore-write "$D/e-ready" 1
vx_wait_key "$D/e-done" 60 >/dev/null
if xenstore-exists /local/domain/0/data/vchan/0/accept-00000000000000aa; then
    vx_fail "E: a channel was published for the forged request"
else
    vx_pass "E: no channel published for a request forged in domain 0's name"
fi
if grep -q "written by domain $DOMU_ID" /tmp/e.err; then
    vx_pass "E: the listener says: $(grep -m1 'written by' /tmp/e.err)"
else
    vx_fail "E: the listener did not report the forgery: $(cat /tmp/e.err)"
fi
xenstore-write "$D/e-checked" 1
wait $EPID
echo "E: listener exit $?"
if xenstore-exists /local/domain/0/data/conduit/forge; then
    vx_fail "E: the listener left /local/domain/0/data/conduit/forge behind"
else
    vx_pass "E: the listener removed its xenstore entries"
fi
vx_finish; exit $?
