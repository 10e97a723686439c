#!/bin/bash
# SPDX-License-Identifier: ISC
#
# The sodium layer against an independent Noise implementation: Debian's
# python3-dissononce, driven by tests/integration/sodium_peer.py (the wire
# format of docs/protocol.md, no code shared with libconduit). vchan-cat as
# client and as server, over sodium+tcp and sodium+unix: 16 MiB each way,
# byte-exact; then a wrong pinned key on each side. Skipped (77) without
# python3-dissononce.
#
# Environment: top_builddir (default .). One PASS/FAIL line per case.
set -u
NAME=sodium_dissononce
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
PEER=$(dirname "$0")/sodium_peer.py
[ -x "$PY" ] || skip "no $PY"
"$PY" -c 'import dissononce' 2> /dev/null ||
    skip "python3-dissononce is not installed (apt-get install python3-dissononce)"

K=$tmp/keys
mkdir "$K"
for n in s c x; do
    "$CAT" --genkey "$K/$n.key" > "$K/$n.pub" || { fail "--genkey"; finish; }
done
S=$(cat "$K/s.pub") C=$(cat "$K/c.pub") X=$(cat "$K/x.pub")
head -c 16777216 /dev/urandom > "$tmp/data"
head -c 16777216 /dev/urandom > "$tmp/back"

# run ROLE TRANSPORT: vchan-cat in ROLE (client|server), dissononce the other.
run() {
    local role=$1 tr=$2 where uri prc crc
    rm -f "$tmp/p.sock"
    if [ "$tr" = tcp ]; then
        PORT=$(free_port) where=tcp:$PORT uri=sodium+tcp://127.0.0.1:$PORT
    else
        where=unix:$tmp/p.sock uri=sodium+unix://$tmp/p.sock
    fi
    if [ "$role" = client ]; then
        "${LIMIT[@]}" "$PY" "$PEER" server "$where" "$K/s.key" "$C" \
            < "$tmp/back" > "$tmp/p.out" 2> "$tmp/p.err" &
        PPID_=$!
        pids+=("$PPID_")
        if [ "$tr" = tcp ]; then wait_listen "$PORT" "$PPID_"; else wait_file "$tmp/p.sock"; fi
        "${LIMIT[@]}" "$CAT" -w 20 --key "$K/c.key" --peer "$S" "$uri" \
            < "$tmp/data" > "$tmp/c.out" 2> "$tmp/c.err"
        crc=$?
    else
        "${LIMIT[@]}" "$CAT" -w 20 -l --key "$K/s.key" --peer "$C" "$uri" \
            < "$tmp/back" > "$tmp/c.out" 2> "$tmp/c.err" &
        CPID=$!
        pids+=("$CPID")
        if [ "$tr" = tcp ]; then wait_listen "$PORT" "$CPID"; else wait_file "$tmp/p.sock"; fi
        "${LIMIT[@]}" "$PY" "$PEER" client "$where" "$K/c.key" "$S" \
            < "$tmp/data" > "$tmp/p.out" 2> "$tmp/p.err"
        prc=$?
        wait "$CPID"
        crc=$?
    fi
    [ "$role" = client ] && { wait "$PPID_"; prc=$?; }
    local sent=$tmp/data got=$tmp/back
    [ "$role" = server ] && sent=$tmp/back got=$tmp/data
    if [ "$crc" = 0 ] && [ "$prc" = 0 ] && cmp -s "$sent" "$tmp/p.out" && cmp -s "$got" "$tmp/c.out"; then
        pass "vchan-cat as $role over sodium+$tr against dissononce: 16 MiB each way, byte-exact"
    else
        fail "vchan-cat as $role over sodium+$tr: exits vchan-cat $crc, dissononce $prc"
        show_err "$tmp/c.err" "$tmp/p.err"
    fi
}
for tr in tcp unix; do
    run client "$tr"
    run server "$tr"
done

# Wrong keys. vchan-cat pins another key than dissononce's: EAUTH, the key named.
PORT=$(free_port)
"${LIMIT[@]}" "$PY" "$PEER" server "tcp:$PORT" "$K/s.key" "$C" < /dev/null > /dev/null \
    2> "$tmp/p.err" &
PPID_=$!
pids+=("$PPID_")
wait_listen "$PORT" "$PPID_"
"${LIMIT[@]}" "$CAT" -w 5 --key "$K/c.key" --peer "$X" "sodium+tcp://127.0.0.1:$PORT" \
    < /dev/null > /dev/null 2> "$tmp/c.err"
crc=$?
wait "$PPID_"
if [ "$crc" != 0 ] && grep -q "the peer.s key is $S, not the pinned $X" "$tmp/c.err"; then
    pass "vchan-cat refuses a dissononce server with another key"
else
    fail "vchan-cat with a wrong pin: exit $crc"
    show_err "$tmp/c.err"
fi
# dissononce pins another key than vchan-cat's: it refuses (3), vchan-cat fails too.
PORT=$(free_port)
"${LIMIT[@]}" "$CAT" -w 5 -l --key "$K/s.key" --peer "$C" "sodium+tcp://127.0.0.1:$PORT" \
    < /dev/null > "$tmp/c.out" 2> "$tmp/c.err" &
CPID=$!
pids+=("$CPID")
wait_listen "$PORT" "$CPID"
"${LIMIT[@]}" "$PY" "$PEER" client "tcp:$PORT" "$K/c.key" "$X" < "$tmp/data" > /dev/null \
    2> "$tmp/p.err"
prc=$?
wait "$CPID"
lrc=$?
if [ "$prc" = 3 ] && [ "$lrc" != 0 ] && [ ! -s "$tmp/c.out" ]; then
    pass "dissononce refuses vchan-cat's key when it pins another; nothing delivered"
else
    fail "dissononce with a wrong pin: exits $prc/$lrc"
    show_err "$tmp/p.err" "$tmp/c.err"
fi

finish
