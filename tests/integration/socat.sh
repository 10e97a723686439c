#!/bin/bash
# SPDX-License-Identifier: ISC
#
# vchan-cat over TCP (IPv4 and IPv6 loopback) and UNIX sockets against
# socat, in both roles: files one way, and both ways through socat running
# `cat` (an echo), which only finishes if vchan-cat half-closes when its
# input ends and keeps reading until the peer closes. Also the run-time
# errors of these transports (exit 1, a message naming what failed).
#
# Environment: top_builddir (default .). One PASS/FAIL line per case.
set -u
NAME=socat
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

need_cmd socat socat

head -c 2000000 /dev/urandom > "$tmp/data"
head -c 700000 /dev/urandom > "$tmp/back"

# check NAME RC... -- EXPECTED GOT [EXPECTED GOT]...: all exit codes 0 and files equal.
check() {
    local name=$1 ok=1 rc
    shift
    while [ "$1" != -- ]; do
        rc=$1
        shift
        [ "$rc" = 0 ] || ok=0
    done
    shift
    while [ $# -ge 2 ]; do
        cmp -s "$1" "$2" || { ok=0; echo "    $2: $(stat -c %s "$2") bytes, want $(stat -c %s "$1")"; }
        shift 2
    done
    if [ "$ok" = 1 ]; then
        pass "$name"
    else
        fail "$name"
        show_err "$tmp/v.err" "$tmp/s.err"
    fi
}

# ------------------------------------------------ vchan-cat -l, socat connects
# serve URI SOCAT_ADDRESS_WITH_PORT_PLACEHOLDER
for fam in 4 6; do
    if [ "$fam" = 6 ] && ! grep -q . /proc/net/if_inet6 2>/dev/null; then
        skip_case "vchan-cat -l tcp://[::1], socat connects: no IPv6 here"
        continue
    fi
    host=127.0.0.1 shost=127.0.0.1 sfam=TCP4
    [ "$fam" = 6 ] && host='[::1]' shost='[::1]' sfam=TCP6

    # socat sends a file, then half-closes; vchan-cat -l sends its own back.
    port=$(free_port)
    "${LIMIT[@]}" "$CAT" -w 5 -l "tcp://$host:$port" < "$tmp/back" > "$tmp/l.out" 2> "$tmp/v.err" &
    lpid=$!
    pids+=("$lpid")
    wait_listen "$port" "$lpid"
    "${LIMIT[@]}" socat -t 5 "$sfam:$shost:$port" STDIO < "$tmp/data" > "$tmp/s.out" 2> "$tmp/s.err"
    src=$?
    wait "$lpid"
    check "IPv$fam: socat <-> vchan-cat -l, both ways" "$?" "$src" -- \
        "$tmp/data" "$tmp/l.out" "$tmp/back" "$tmp/s.out"

    # vchan-cat connects to socat serving `cat`: the echo ends only after our half-close.
    port=$(free_port)
    "${LIMIT[@]}" socat "$sfam-LISTEN:$port,bind=$shost,reuseaddr" EXEC:cat 2> "$tmp/s.err" &
    spid=$!
    pids+=("$spid")
    wait_listen "$port" "$spid"
    "${LIMIT[@]}" "$CAT" -w 5 "tcp://$host:$port" < "$tmp/data" > "$tmp/c.out" 2> "$tmp/v.err"
    crc=$?
    wait "$spid"
    check "IPv$fam: vchan-cat -> socat EXEC:cat -> back" "$crc" "$?" -- "$tmp/data" "$tmp/c.out"
done

# By name: localhost may resolve to ::1 first and 127.0.0.1 second; every address is tried.
port=$(free_port)
"${LIMIT[@]}" socat -u "TCP4-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$tmp/s.out,creat,trunc" \
    2> "$tmp/s.err" &
spid=$!
pids+=("$spid")
wait_listen "$port" "$spid"
"${LIMIT[@]}" "$CAT" -w 5 "tcp://localhost:$port" < "$tmp/data" > /dev/null 2> "$tmp/v.err"
crc=$?
wait "$spid"
check "tcp://localhost (IPv4-only server): vchan-cat -> socat" "$crc" "$?" -- "$tmp/data" "$tmp/s.out"

# Listening on "*": socat reaches it over IPv4 (and IPv6 where there is one).
port=$(free_port)
"${LIMIT[@]}" "$CAT" -w 5 -l "tcp://*:$port" < /dev/null > "$tmp/l.out" 2> "$tmp/v.err" &
lpid=$!
pids+=("$lpid")
wait_listen "$port" "$lpid"
"${LIMIT[@]}" socat -u "FILE:$tmp/data" "TCP4:127.0.0.1:$port" 2> "$tmp/s.err"
src=$?
wait "$lpid"
check "tcp://*:PORT: socat over IPv4 -> vchan-cat -l" "$?" "$src" -- "$tmp/data" "$tmp/l.out"

# ------------------------------------------------ UNIX
sock=$tmp/u.sock
"${LIMIT[@]}" "$CAT" -w 5 -l "unix://$sock" < "$tmp/back" > "$tmp/l.out" 2> "$tmp/v.err" &
lpid=$!
pids+=("$lpid")
wait_file "$sock"
"${LIMIT[@]}" socat -t 5 "UNIX-CONNECT:$sock" STDIO < "$tmp/data" > "$tmp/s.out" 2> "$tmp/s.err"
src=$?
wait "$lpid"
check "unix: socat <-> vchan-cat -l, both ways" "$?" "$src" -- \
    "$tmp/data" "$tmp/l.out" "$tmp/back" "$tmp/s.out"
if [ -e "$sock" ]; then
    fail "unix: vchan-cat -l left its socket $sock behind"
else
    pass "unix: vchan-cat -l removed its socket"
fi

sock=$tmp/e.sock
"${LIMIT[@]}" socat "UNIX-LISTEN:$sock" EXEC:cat 2> "$tmp/s.err" &
spid=$!
pids+=("$spid")
wait_file "$sock"
"${LIMIT[@]}" "$CAT" -w 5 "unix://$sock" < "$tmp/data" > "$tmp/c.out" 2> "$tmp/v.err"
crc=$?
wait "$spid"
check "unix: vchan-cat -> socat EXEC:cat -> back" "$crc" "$?" -- "$tmp/data" "$tmp/c.out"

# -k: three socat clients one after another; the first gets our stdin.
sock=$tmp/k.sock
"${LIMIT[@]}" "$CAT" -w 5 -k -l "unix://$sock" < "$tmp/back" > "$tmp/l.out" 2> "$tmp/v.err" &
lpid=$!
pids+=("$lpid")
wait_file "$sock"
: > "$tmp/want"
ok=1
for i in 1 2 3; do
    head -c $((i * 1000)) "$tmp/data" > "$tmp/part$i"
    cat "$tmp/part$i" >> "$tmp/want"
    "${LIMIT[@]}" socat -t 5 "UNIX-CONNECT:$sock" STDIO < "$tmp/part$i" > "$tmp/s$i.out" \
        2> "$tmp/s.err" || ok=0
done
wait_size "$tmp/l.out" "$(stat -c %s "$tmp/want")"
kill "$lpid" 2>/dev/null
wait "$lpid" 2>/dev/null
if [ "$ok" = 1 ] && cmp -s "$tmp/want" "$tmp/l.out" && cmp -s "$tmp/back" "$tmp/s1.out" &&
    [ ! -s "$tmp/s2.out" ]; then
    pass "unix -k: three clients in turn, stdin to the first"
else
    fail "unix -k: three clients in turn (socat ok=$ok)"
    show_err "$tmp/v.err" "$tmp/s.err"
fi

# ------------------------------------------------ run-time errors
runtime_error() { # NAME PATTERN URI
    local rc
    "${LIMIT[@]}" "$CAT" -w 2 "$3" < /dev/null > /dev/null 2> "$tmp/r.err"
    rc=$?
    if [ "$rc" = 1 ] && grep -q -- "$2" "$tmp/r.err"; then
        pass "$1: exit 1: $(head -n 1 "$tmp/r.err")"
    else
        fail "$1: exit $rc (want 1, a message with '$2')"
        show_err "$tmp/r.err"
    fi
}
runtime_error "tcp, nobody listening" "Connection refused" "tcp://127.0.0.1:$(free_port)"
runtime_error "unix, no socket" "No such file" "unix://$tmp/none.sock"
runtime_error "tcp, unknown host" "cannot resolve host 'no-such-host.invalid'" \
    "tcp://no-such-host.invalid:80"

finish
