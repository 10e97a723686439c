#!/bin/bash
# SPDX-License-Identifier: ISC
#
# listen/accept on vchan://*/PORT on the local platform (docs/accept.md):
#  - the examples' echo server serves several concurrent echo clients of
#    different domains (VCHAN_DOMID) and of the same domain, each on a
#    fresh ring; the same two programs over tcp, unix, tls and tls+vchan,
#    only the URI changing;
#  - `vchan-cat -k -l 'vchan://*/P'` serves clients one after another, and
#    clients that arrive together wait their turn, each delivered whole;
#  - a client uses the same vchan://SERVER/P whether the server listens for
#    it alone (vchan://D/P) or for any domain, the direct path first;
#  - what a listener publishes is gone after it exits.
#
# Environment: top_builddir (default .). One PASS/FAIL line per case.
set -u
NAME=accept
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

for p in "$ECHO_SERVER" "$ECHO_CLIENT"; do
    if [ ! -x "$p" ]; then
        echo "FAIL: $p not built (make check builds the examples)"
        exit 1
    fi
done

# ------------------------------------------------ the examples, concurrent clients
# echo_case NAME SERVER_URI CLIENT_URI: one server, clients of domains 1 2 3 3 at once.
echo_case() {
    local name=$1 su=$2 cu=$3 spid rc ok=1 i cpids=()
    "${LIMIT[@]}" "$ECHO_SERVER" -n 4 "$su" 2> "$tmp/es.err" &
    spid=$!
    pids+=("$spid")
    # vchan clients wait for their server; TCP and UNIX ones do not.
    case $su in
    tcp://* | tls://*) port=${su##*:}; wait_listen "${port%%\?*}" "$spid" ;;
    unix://*) wait_file "${su#unix://}" ;;
    esac
    for i in 1 2 3 3; do
        # Several rounds with pauses: the four are in the middle of it at the same time.
        VCHAN_DOMID=$i "${LIMIT[@]}" "$ECHO_CLIENT" -r 5 -s 50000 -p 100 "$cu" \
            > "$tmp/ec.$i.${#cpids[@]}.out" 2> "$tmp/ec.$i.${#cpids[@]}.err" &
        cpids+=($!)
    done
    for i in "${cpids[@]}"; do
        wait "$i" || ok=0
    done
    wait "$spid"
    rc=$?
    if [ "$ok" = 1 ] && [ "$rc" = 0 ]; then
        pass "$name: 4 concurrent clients (domains 1, 2, 3, 3), 250000 bytes each echoed"
    else
        fail "$name: clients ok=$ok, server exit $rc"
        show_err "$tmp/es.err" "$tmp"/ec.*.err
    fi
    rm -f "$tmp"/ec.*
}

echo_case "echo example, vchan://*/echo" 'vchan://*/echo' 'vchan://0/echo'
port=$(free_port)
echo_case "echo example, tcp" "tcp://127.0.0.1:$port" "tcp://localhost:$port"
echo_case "echo example, unix" "unix://$tmp/echo.sock" "unix://$tmp/echo.sock"

if command -v openssl >/dev/null; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/k.pem" \
        -out "$tmp/c.pem" -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
        2>/dev/null
    port=$(free_port)
    echo_case "echo example, tls" "tls://127.0.0.1:$port?cert=$tmp/c.pem&key=$tmp/k.pem" \
        "tls://localhost:$port?ca=$tmp/c.pem"
    echo_case "echo example, tls+vchan" "tls+vchan://*/techo?cert=$tmp/c.pem&key=$tmp/k.pem" \
        "tls+vchan://0/techo?ca=$tmp/c.pem&servername=localhost"
else
    skip_case "echo example, tls and tls+vchan: openssl not found (apt-get install openssl)"
fi

# A server of another domain id: clients address it by its id.
VCHAN_DOMID=7 "${LIMIT[@]}" "$ECHO_SERVER" -n 2 'vchan://*/seven' 2> "$tmp/es.err" &
spid=$!
pids+=("$spid")
ok=1
for i in 0 2; do
    VCHAN_DOMID=$i "${LIMIT[@]}" "$ECHO_CLIENT" -r 2 -s 1000 'vchan://7/seven' \
        > /dev/null 2> "$tmp/ec.err" || ok=0
done
wait "$spid" || ok=0
if [ "$ok" = 1 ]; then
    pass "server in domain 7: clients of domains 0 and 2 reach vchan://7/seven"
else
    fail "server in domain 7"
    show_err "$tmp/es.err" "$tmp/ec.err"
fi

# ------------------------------------------------ vchan-cat -k -l vchan://*/P
# The clients send; the listener (no input of its own) keeps what each sent.
"${LIMIT[@]}" "$CAT" -w 5 -k -l 'vchan://*/svc' < /dev/null > "$tmp/l.out" 2> "$tmp/l.err" &
lpid=$!
pids+=("$lpid")
: > "$tmp/want"
ok=1
for i in 1 2 3; do
    head -c $((i * 77777)) /dev/urandom > "$tmp/in$i"
    cat "$tmp/in$i" >> "$tmp/want"
    VCHAN_DOMID=$i "${LIMIT[@]}" "$CAT" -w 5 'vchan://0/svc' < "$tmp/in$i" > "$tmp/c$i.out" \
        2> "$tmp/c.err" || ok=0
done
wait_size "$tmp/l.out" "$(stat -c %s "$tmp/want")"
if [ "$ok" = 1 ] && cmp -s "$tmp/want" "$tmp/l.out"; then
    pass "vchan-cat -k -l 'vchan://*/svc': three clients (domains 1, 2, 3) one after another"
else
    fail "vchan-cat -k -l 'vchan://*/svc': clients ok=$ok"
    show_err "$tmp/l.err" "$tmp/c.err"
fi

# Three at once: they queue; each one's data arrives whole and unmixed (after
# what the first three sent: the listener's output goes on).
base=$(stat -c %s "$tmp/want")
sz=123457
cpids=()
for i in 4 5 6; do
    head -c $sz /dev/urandom > "$tmp/in$i"
    VCHAN_DOMID=$i "${LIMIT[@]}" "$CAT" -w 10 'vchan://0/svc' < "$tmp/in$i" > /dev/null \
        2> "$tmp/c$i.err" &
    cpids+=($!)
done
ok=1
for p in "${cpids[@]}"; do
    wait "$p" || ok=0
done
wait_size "$tmp/l.out" $((base + 3 * sz))
kill "$lpid" 2>/dev/null
wait "$lpid" 2>/dev/null
# The listener's output, cut in three, must be the three inputs in some order.
found=0
if [ "$(stat -c %s "$tmp/l.out")" = $((base + 3 * sz)) ]; then
    for k in 0 1 2; do
        tail -c +$((base + k * sz + 1)) "$tmp/l.out" | head -c $sz > "$tmp/piece"
        for i in 4 5 6; do
            cmp -s "$tmp/piece" "$tmp/in$i" && found=$((found + 1))
        done
    done
fi
if [ "$ok" = 1 ] && [ "$found" = 3 ]; then
    pass "vchan-cat -k -l 'vchan://*/svc': three clients at once, served in turn, none mixed"
else
    fail "three clients at once: clients ok=$ok, $found of 3 found whole in $(($(stat -c %s "$tmp/l.out") - base)) bytes"
    show_err "$tmp/l.err" "$tmp"/c[456].err
fi
if ls "$VCHAN_DIR" | grep -q 'accept'; then
    fail "the listener left $(ls "$VCHAN_DIR") behind"
else
    pass "the listener's accept socket is gone after it exits"
fi

# ------------------------------------------------ direct path first
# The same URI reaches a vchan://D/P listener (for this client alone) and a STAR one.
VCHAN_DOMID=3 "${LIMIT[@]}" "$CAT" -w 5 -l 'vchan://0/both' < /dev/null > "$tmp/d.out" \
    2> "$tmp/d.err" &
dpid=$!
pids+=("$dpid")
VCHAN_DOMID=3 "${LIMIT[@]}" "$CAT" -w 5 -l 'vchan://*/both' < /dev/null > "$tmp/a.out" \
    2> "$tmp/a.err" &
apid=$!
pids+=("$apid")
sleep 0.3
echo "for the direct listener" | "${LIMIT[@]}" "$CAT" -w 5 'vchan://3/both' 2> "$tmp/c.err"
rc1=$?
echo "for the accept listener" | VCHAN_DOMID=5 "${LIMIT[@]}" "$CAT" -w 5 'vchan://3/both' \
    2> "$tmp/c.err"
rc2=$?
wait "$dpid"
d=$?
wait "$apid"
a=$?
if [ "$rc1$rc2$d$a" = 0000 ] && grep -q direct "$tmp/d.out" && grep -q accept "$tmp/a.out"; then
    pass "vchan://3/both: domain 0 (served directly) takes the direct path, domain 5 the accept one"
else
    fail "direct path first: exits $rc1 $rc2 $d $a"
    show_err "$tmp/d.err" "$tmp/a.err" "$tmp/c.err"
fi

# Two accept listeners on one port: the second is refused.
"${LIMIT[@]}" "$CAT" -w 3 -l 'vchan://*/once' < /dev/null > /dev/null 2> /dev/null &
opid=$!
pids+=("$opid")
sleep 0.3
"${LIMIT[@]}" "$CAT" -w 1 -l 'vchan://*/once' < /dev/null > /dev/null 2> "$tmp/o.err"
rc=$?
kill "$opid" 2>/dev/null
if [ "$rc" = 1 ] && grep -q "another listener" "$tmp/o.err"; then
    pass "a second listener on vchan://*/once: exit 1: $(head -n 1 "$tmp/o.err")"
else
    fail "a second listener on vchan://*/once: exit $rc"
    show_err "$tmp/o.err"
fi

finish
