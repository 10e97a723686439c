#!/bin/bash
# SPDX-License-Identifier: ISC
#
# The sodium layer between two vchan-cat processes: keys made with
# --genkey, 16 MiB each way over sodium+unix, sodium+tcp and sodium+vchan
# (the local platform), checksummed; a request and its reply over
# sodium+vchan (the end of stream is the half-close vchan lacks); a server
# with peers=any and one with a peers file; keys that are not the pinned
# ones, refused on either side with the key in the message; a peer that is
# not sodium (plain TCP, and `openssl s_client` when there is one) refused
# within the timeout; key files that are too open or already exist; the
# usage errors (exit 2). Tampering frame by frame is tests/unit/test_sodium.
#
# Environment: top_builddir (default .). One PASS/FAIL line per case.
set -u
NAME=sodium
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

K=$tmp/keys
mkdir -m 700 "$K"
A=$("$CAT" --genkey "$K/a.key") && B=$("$CAT" --genkey "$K/b.key") &&
    C=$("$CAT" --genkey "$K/c.key") || { echo "FAIL: vchan-cat --genkey"; exit 1; }
[ "$("$CAT" --pubkey "$K/a.key")" = "$A" ] && [ ${#A} = 44 ] &&
    [ "$(stat -c %a "$K/a.key")" = 600 ] && pass "--genkey: a 0600 file, --pubkey gives its key" ||
    fail "--genkey/--pubkey: '$A', mode $(stat -c %a "$K/a.key")"

head -c $((16 << 20)) /dev/urandom > "$tmp/up"
head -c $((16 << 20)) /dev/urandom > "$tmp/down"

# both NAME SERVER-URI CLIENT-URI: 16 MiB each way at once, byte-exact.
both() {
    local name=$1 suri=$2 curi=$3 spid rc src
    rm -f "$tmp/s.out" "$tmp/c.out"
    "${LIMIT[@]}" "$CAT" -w 10 -l "$suri" < "$tmp/down" > "$tmp/s.out" 2> "$tmp/s.err" &
    spid=$!
    pids+=("$spid")
    wait_ready "$suri" "$spid"
    "${LIMIT[@]}" "$CAT" -w 10 "$curi" < "$tmp/up" > "$tmp/c.out" 2> "$tmp/c.err"
    rc=$?
    wait "$spid"
    src=$?
    if [ "$rc" = 0 ] && [ "$src" = 0 ] && cmp -s "$tmp/up" "$tmp/s.out" &&
        cmp -s "$tmp/down" "$tmp/c.out"; then
        pass "$name: 16 MiB each way, byte-exact"
    else
        fail "$name: client exit $rc, server exit $src, server got $(stat -c %s "$tmp/s.out") B," \
            "client got $(stat -c %s "$tmp/c.out") B"
        show_err "$tmp/c.err" "$tmp/s.err"
    fi
}

# wait_ready URI PID: the listener of URI is up.
wait_ready() {
    case $1 in
    *tcp://*) local p=${1##*:}; wait_listen "${p%%\?*}" "$2" ;;
    *unix://*) local f=${1#*unix://}; wait_file "${f%%\?*}" ;;
    *) sleep 0.3 ;; # vchan: a client waits for its server anyway
    esac
}

P=$(free_port)
both "sodium+tcp, pinned both ways" \
    "sodium+tcp://127.0.0.1:$P?key=$K/b.key&peer=$A" "sodium+tcp://127.0.0.1:$P?key=$K/a.key&peer=$B"
both "sodium+unix, keys by --key/--peer" \
    "sodium+unix://$tmp/s.sock?key=$K/b.key&peer=$A" "sodium+unix://$tmp/s.sock?key=$K/a.key&peer=$B"
rm -f "$tmp/s.sock"
both "sodium+vchan (local platform)" \
    "sodium+vchan://0/sec?key=$K/b.key&peers=any" "sodium+vchan://0/sec?key=$K/a.key&peer=$B"
printf '# the clients\n%s\n%s  # c\n' "$A" "$C" > "$K/peers"
P=$(free_port)
both "sodium+tcp, a peers file, percent-encoded key" \
    "sodium+tcp://127.0.0.1:$P?key=$K/b.key&peers=$K/peers" \
    "sodium+tcp://127.0.0.1:$P?key=$K/c.key&peer=$(printf %s "$B" | sed 's|/|%2F|g; s|+|%2B|g; s|=|%3D|g')"

# A request and its reply over vchan: echo-server answers what it read once
# the client's end of stream has come.
if [ -x "$ECHO_SERVER" ]; then
    "${LIMIT[@]}" "$ECHO_SERVER" "sodium+vchan://*/echo?key=$K/b.key&peers=any" \
        > /dev/null 2> "$tmp/es.err" &
    pids+=("$!")
    sleep 0.3
    got=$(echo "request 42" | "${LIMIT[@]}" "$CAT" -w 10 "sodium+vchan://0/echo?key=$K/a.key&peer=$B" \
        2> "$tmp/c.err")
    [ "$got" = "request 42" ] && pass "request and reply over sodium+vchan (end of stream)" ||
        { fail "request and reply over sodium+vchan: got '$got'"; show_err "$tmp/c.err" "$tmp/es.err"; }
else
    skip_case "request and reply over sodium+vchan" "no examples/echo-server built"
fi

# refused NAME PATTERN-CLIENT PATTERN-SERVER SERVER-URI CLIENT-URI: both exit 1, with messages.
refused() {
    local name=$1 cpat=$2 spat=$3 suri=$4 curi=$5 spid rc src
    "${LIMIT[@]}" "$CAT" -w 5 -l "$suri" < /dev/null > /dev/null 2> "$tmp/s.err" &
    spid=$!
    pids+=("$spid")
    wait_ready "$suri" "$spid"
    "${LIMIT[@]}" "$CAT" -w 5 "$curi" < "$tmp/up" > "$tmp/c.out" 2> "$tmp/c.err"
    rc=$?
    wait "$spid"
    src=$?
    if [ "$rc" = 1 ] && [ "$src" = 1 ] && grep -q -- "$cpat" "$tmp/c.err" &&
        grep -q -- "$spat" "$tmp/s.err" && [ ! -s "$tmp/c.out" ]; then
        pass "$name: $(head -n 1 "$tmp/c.err" | cut -c1-150) / $(head -n 1 "$tmp/s.err" | cut -c1-100)"
    else
        fail "$name: client exit $rc, server exit $src (want 1, 1)"
        show_err "$tmp/c.err" "$tmp/s.err"
    fi
}
P=$(free_port)
refused "client pins another key" "the peer's key is $B, not the pinned $C" "during the sodium handshake" \
    "sodium+tcp://127.0.0.1:$P?key=$K/b.key&peers=any" "sodium+tcp://127.0.0.1:$P?key=$K/a.key&peer=$C"
P=$(free_port)
refused "server pins another key" "sodium" "the peer's key is $A, not the pinned $C" \
    "sodium+tcp://127.0.0.1:$P?key=$K/b.key&peer=$C" "sodium+tcp://127.0.0.1:$P?key=$K/a.key&peer=$B"
P=$(free_port)
refused "client key not in the peers file" "sodium" "is not in the peers file" \
    "sodium+tcp://127.0.0.1:$P?key=$K/b.key&peers=$K/peers" \
    "sodium+tcp://127.0.0.1:$P?key=$K/b.key&peer=$B"

# not_sodium NAME PATTERN COMMAND...: a sodium listener meets COMMAND's bytes; exit 1 in time.
not_sodium() {
    local name=$1 pattern=$2 spid src t0 dt
    shift 2
    P=$(free_port)
    t0=$(now_ms)
    "${LIMIT[@]}" "$CAT" -w 3 -l "sodium+tcp://127.0.0.1:$P?key=$K/b.key&peers=any" \
        < /dev/null > "$tmp/s.out" 2> "$tmp/s.err" &
    spid=$!
    pids+=("$spid")
    wait_listen "$P" "$spid"
    "$@" > /dev/null 2>&1
    wait "$spid"
    src=$?
    dt=$(($(now_ms) - t0))
    if [ "$src" = 1 ] && [ "$dt" -lt 5000 ] && grep -q -- "$pattern" "$tmp/s.err" && [ ! -s "$tmp/s.out" ]; then
        pass "$name: exit 1 in $dt ms: $(head -n 1 "$tmp/s.err" | cut -c1-140)"
    else
        fail "$name: server exit $src in $dt ms (want 1, '$pattern')"
        show_err "$tmp/s.err"
    fi
}
plain() { timeout 5 "$CAT" -w 2 "tcp://127.0.0.1:$P" < "$tmp/up"; }
not_sodium "plain TCP at a sodium listener" "not a sodium peer" plain
if command -v openssl > /dev/null; then
    not_sodium_tls() { timeout 5 openssl s_client -connect "127.0.0.1:$P" < /dev/null; }
    not_sodium "TLS ClientHello at a sodium listener" "not a sodium peer" not_sodium_tls
else
    skip_case "TLS ClientHello at a sodium listener" "no openssl program"
fi
# A peer that connects and says nothing: the handshake times out (-w 3), it does not hang.
silent() { (exec 9<> "/dev/tcp/127.0.0.1/$P" && sleep 4); }
not_sodium "a silent TCP peer" "timed out" silent

# Key files.
chmod 644 "$K/c.key"
"${LIMIT[@]}" "$CAT" -w 2 "sodium+tcp://127.0.0.1:1?key=$K/c.key&peer=$B" < /dev/null 2> "$tmp/e" &&
    fail "a world-readable key file was used" ||
    { grep -q "accessible by group or others" "$tmp/e" && pass "a world-readable key file is refused" ||
        { fail "world-readable key: wrong message"; show_err "$tmp/e"; }; }
chmod 600 "$K/c.key"
"$CAT" --genkey "$K/c.key" > /dev/null 2> "$tmp/e"
[ $? = 2 ] && grep -q "exists" "$tmp/e" && [ "$("$CAT" --pubkey "$K/c.key")" = "$C" ] &&
    pass "--genkey never replaces a key file" || { fail "--genkey over an existing file"; show_err "$tmp/e"; }

# usage_error NAME PATTERN ARGS...: exit 2, a message with PATTERN.
usage_error() {
    local name=$1 pattern=$2 rc
    shift 2
    "${LIMIT[@]}" "$CAT" -w 2 "$@" < /dev/null > /dev/null 2> "$tmp/u.err"
    rc=$?
    if [ "$rc" = 2 ] && grep -q -- "$pattern" "$tmp/u.err"; then
        pass "$name: exit 2: $(head -n 1 "$tmp/u.err" | cut -c1-140)"
    else
        fail "$name: exit $rc (want 2, a message with '$pattern')"
        show_err "$tmp/u.err"
    fi
}
usage_error "no key" "key=FILE" "sodium+tcp://127.0.0.1:1?peer=$B"
usage_error "a client that pins nothing" "must pin" "sodium+tcp://127.0.0.1:1?key=$K/a.key"
usage_error "peers=any on a client" "for servers only" "sodium+tcp://127.0.0.1:1?key=$K/a.key&peers=any"
usage_error "a server that pins nothing" "peers=any" -l "sodium+tcp://127.0.0.1:1?key=$K/a.key"
usage_error "a bad peer key" "not a public key" "sodium+tcp://127.0.0.1:1?key=$K/a.key&peer=abc"
usage_error "--peer on a tls URI" "needs a sodium URI" --peer "$B" "tls://localhost:1"
usage_error "peer given twice" "given twice" --peer "$B" "sodium+tcp://127.0.0.1:1?key=$K/a.key&peer=$B"

finish
