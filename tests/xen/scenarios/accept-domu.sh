#!/bin/sh
# SPDX-License-Identifier: ISC
# libconduit on real Xen, domU half.
. /test/lib.sh
D=/local/domain/$DOMID/data/acc
vx_wait_key "$D/start" 100 >/dev/null

# A: three concurrent echo clients to dom0.
vx_wait_key "$D/a-ready" 100 >/dev/null
for i in 1 2 3; do
    timeout 120 echo-client -r 5 -s 50000 -p 200 'vchan://0/svc' >/tmp/a$i.out 2>&1 &
    eval "P$i=\$!"
done
ok=0
for i in 1 2 3; do
    eval "wait \$P$i" || ok=1
    cat /tmp/a$i.out
done
vx_check_status $ok "A: three concurrent domU echo-clients to dom0's vchan://*/svc"

# B: three vchan-cat clients one after another.
vx_wait_key "$D/b-ready" 100 >/dev/null
: >/tmp/b.all
ok=0
for i in 1 2 3; do
    vx_random /tmp/b$i $((i * 100000))
    cat /tmp/b$i >>/tmp/b.all
    timeout 60 vchan-cat -w 30 'vchan://0/cat' </tmp/b$i >/dev/null || ok=1
done
vx_check_status $ok "B: three domU vchan-cat clients to vchan://0/cat in turn"
xenstore-write "$D/b-sum" "$(vx_sha256 /tmp/b.all)" "$D/b-done" 1

# C: servers in the domU for dom0's clients.
timeout 120 echo-server -n 2 'vchan://*/dsvc' >/tmp/c.log 2>&1 &
CPID=$!
timeout 120 vchan-cat -w 60 -l 'vchan://*/dcat' </dev/null >/tmp/c.out 2>/tmp/c.err &
CCPID=$!
xenstore-write "$D/c-ready" 1
wait $CPID
vx_check_status $? "C: domU echo-server vchan://*/dsvc served dom0 twice"
wait $CCPID
vx_check_status $? "C: domU vchan-cat -l vchan://*/dcat served dom0"
vx_check_file /tmp/c.out "$D/c-sum" "C: dom0 -> domU data whole"

# E: forge a request in dom0's name; try to take the listener over.
vx_wait_key "$D/e-ready" 100 >/dev/null
R=/local/domain/0/data/conduit/forge
if xenstore-write "$R/requests/0-00000000000000aa" "" 2>/dev/null; then
    vx_pass "E: a domU may write a request (in any name)"
else
    vx_fail "E: the domU cannot write a request at all"
fi
if xenstore-ls "$R/requests" >/dev/null 2>&1; then
    vx_fail "E: the domU can list other domains' requests"
else
    vx_pass "E: the domU cannot list the requests directory"
fi
if xenstore-write "$R/pid" 1 2>/dev/null; then
    vx_fail "E: the domU could overwrite the listener's pid"
else
    vx_pass "E: the domU cannot write the listener's own entries"
fi
if xenstore-write /local/domain/0/data/vchan/0/accept-00000000000000aa/ring-ref 1 2>/dev/null; then
    vx_fail "E: the domU could write into dom0's vchan rendezvous"
else
    vx_pass "E: the domU cannot write a channel of its own in dom0's rendezvous"
fi
sleep 2
xenstore-write "$D/e-done" 1
vx_wait_key "$D/e-checked" 60 >/dev/null
vx_finish; exit $?
