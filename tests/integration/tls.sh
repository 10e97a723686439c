#!/bin/bash
# SPDX-License-Identifier: ISC
#
# vchan-cat's TLS against OpenSSL's own tools, `openssl s_server` and
# `openssl s_client`, on loopback: both roles, TLS 1.2 and 1.3, files both
# ways; then the refusals: a certificate for another name, a self-signed
# one, an expired one, an unknown CA (exit 1, a message saying why), and
# client certificates. Certificates are made here, at run time, with
# `openssl req` and `openssl x509`: no private key is ever committed.
# Also tls+vchan and tls+unix between two vchan-cat processes, and the
# usage errors of TLS URIs (exit 2).
#
# Environment: top_builddir (default .). One PASS/FAIL line per case.
set -u
NAME=tls
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

need_cmd openssl openssl

# ---------------------------------------------------------------- certificates
C=$tmp/certs
mkdir "$C"
EC=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
# leaf NAME SAN DAYS SIGNER: $C/NAME.pem and $C/NAME.key, signed by the CA (or itself).
leaf() {
    local name=$1 san=$2 days=$3 signer=$4
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=%s\n' "$san" > "$C/$name.ext"
    if [ "$signer" = self ]; then
        openssl req -x509 "${EC[@]}" -keyout "$C/$name.key" -out "$C/$name.pem" -days "$days" \
            -subj "/CN=${san#*:}" -addext "subjectAltName=$san" \
            -addext "basicConstraints=CA:FALSE" 2>/dev/null
    else
        openssl req -new "${EC[@]}" -keyout "$C/$name.key" -out "$C/$name.csr" \
            -subj "/CN=${san#*:}" 2>/dev/null &&
        openssl x509 -req -in "$C/$name.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" \
            -CAcreateserial -days "$days" -extfile "$C/$name.ext" -out "$C/$name.pem" 2>/dev/null
    fi
}
if ! openssl req -x509 "${EC[@]}" -keyout "$C/ca.key" -out "$C/ca.pem" -days 2 \
        -subj "/CN=vchan-conduit test CA" 2>/dev/null ||
    ! leaf good "DNS:localhost,IP:127.0.0.1" 2 ca ||
    ! leaf other "DNS:other.example" 2 ca ||
    ! leaf self "DNS:localhost,IP:127.0.0.1" 2 self ||
    ! leaf expired "DNS:localhost,IP:127.0.0.1" -1 ca ||
    ! leaf client "DNS:client.example" 2 ca; then
    echo "FAIL: cannot make test certificates with openssl"
    exit 1
fi

head -c 300000 /dev/urandom > "$tmp/data"
# Text for s_server -rev, which answers each line reversed.
for i in $(seq 1 2000); do echo "line $i of the reversed echo test $RANDOM"; done > "$tmp/text"
rev "$tmp/text" > "$tmp/text.rev"

# s_server ARGS...: start it, output in $tmp/s.out; sets SPORT and SPID. Its
# input is a FIFO we hold open (fd 7), since s_server closes the connection
# when its input ends, and exits (even with -naccept 1) only then: s_end.
mkfifo "$tmp/s.in"
s_server() {
    SPORT=$(free_port)
    "${LIMIT[@]}" openssl s_server -accept "$SPORT" -naccept 1 -quiet "$@" < "$tmp/s.in" \
        > "$tmp/s.out" 2> "$tmp/s.err" &
    SPID=$!
    pids+=("$SPID")
    exec 7> "$tmp/s.in"
    wait_listen "$SPORT" "$SPID" || { echo "    s_server did not start"; show_err "$tmp/s.err"; }
}
s_end() {
    exec 7>&-
    wait "$SPID" 2>/dev/null
}

# client_ok NAME URI [vchan-cat options]: send $tmp/data to s_server; it must get it whole.
client_ok() {
    local name=$1 uri=$2 rc
    shift 2
    "${LIMIT[@]}" "$CAT" -w 5 "$@" "$uri" < "$tmp/data" > "$tmp/c.out" 2> "$tmp/c.err"
    rc=$?
    s_end
    if [ "$rc" = 0 ] && cmp -s "$tmp/data" "$tmp/s.out"; then
        pass "$name"
    else
        fail "$name: exit $rc, s_server got $(stat -c %s "$tmp/s.out") of $(stat -c %s "$tmp/data") bytes"
        show_err "$tmp/c.err" "$tmp/s.err"
    fi
}

# client_refused NAME PATTERN URI [options]: exit 1 within 5 s, with a message matching PATTERN.
client_refused() {
    local name=$1 pattern=$2 uri=$3 rc t0 dt
    shift 3
    t0=$(date +%s%N)
    "${LIMIT[@]}" "$CAT" -w 5 "$@" "$uri" < /dev/null > "$tmp/c.out" 2> "$tmp/c.err"
    rc=$?
    dt=$(( ($(date +%s%N) - t0) / 1000000 ))
    s_end
    if [ "$rc" = 1 ] && [ "$dt" -lt 5000 ] && grep -Eq -- "$pattern" "$tmp/c.err"; then
        pass "$name: exit 1 in $dt ms: $(head -n 1 "$tmp/c.err")"
    else
        fail "$name: exit $rc in $dt ms (want 1, a message matching '$pattern'):"
        show_err "$tmp/c.err"
    fi
}

# ------------------------------------------------ vchan-cat client, s_server
for v in tls1_3 tls1_2; do
    s_server "-$v" -cert "$C/good.pem" -key "$C/good.key"
    client_ok "client -> s_server -$v (ca=, host name localhost)" \
        "tls://localhost:$SPORT?ca=$C/ca.pem"
done

s_server -cert "$C/good.pem" -key "$C/good.key"
client_ok "client -> s_server, by address 127.0.0.1, --ca" "tls://127.0.0.1:$SPORT" --ca "$C/ca.pem"

# Both ways at once: s_server -rev answers every line, reversed.
s_server -rev -cert "$C/good.pem" -key "$C/good.key"
"${LIMIT[@]}" "$CAT" -w 5 "tls://localhost:$SPORT?ca=$C/ca.pem" < "$tmp/text" > "$tmp/c.out" \
    2> "$tmp/c.err"
rc=$?
s_end
if [ "$rc" = 0 ] && cmp -s "$tmp/text.rev" "$tmp/c.out"; then
    pass "client <-> s_server -rev: $(wc -l < "$tmp/text") lines both ways"
else
    fail "client <-> s_server -rev: exit $rc, $(stat -c %s "$tmp/c.out") bytes back"
    show_err "$tmp/c.err"
fi

# ------------------------------------------------ refusals
s_server -cert "$C/other.pem" -key "$C/other.key"
client_refused "certificate for another name" \
    "tls://localhost:$SPORT: certificate verify failed: hostname mismatch.*'localhost'" \
    "tls://localhost:$SPORT?ca=$C/ca.pem"

s_server -cert "$C/good.pem" -key "$C/good.key"
client_refused "servername= that the certificate does not name" \
    "certificate verify failed: hostname mismatch.*'wrong.example'" \
    "tls://127.0.0.1:$SPORT?ca=$C/ca.pem&servername=wrong.example"

s_server -cert "$C/self.pem" -key "$C/self.key"
client_refused "self-signed certificate" "certificate verify failed: self.signed certificate" \
    "tls://localhost:$SPORT?ca=$C/ca.pem"

s_server -cert "$C/expired.pem" -key "$C/expired.key"
client_refused "expired certificate" "certificate verify failed: certificate has expired" \
    "tls://localhost:$SPORT?ca=$C/ca.pem"

s_server -cert "$C/good.pem" -key "$C/good.key"
client_refused "CA unknown to the system's store" \
    "certificate verify failed: unable to get local issuer certificate" \
    "tls://localhost:$SPORT"

s_server -cert "$C/self.pem" -key "$C/self.key"
client_ok "verify=0 accepts the self-signed certificate" "tls://localhost:$SPORT?verify=0"

# ------------------------------------------------ client certificates
s_server -cert "$C/good.pem" -key "$C/good.key" -Verify 1 -CAfile "$C/ca.pem"
client_ok "client certificate (--cert, --key) to s_server -Verify" \
    "tls://localhost:$SPORT?ca=$C/ca.pem" --cert "$C/client.pem" --key "$C/client.key"

s_server -cert "$C/good.pem" -key "$C/good.key" -Verify 1 -CAfile "$C/ca.pem"
client_refused "no client certificate for s_server -Verify" "certificate required|alert" \
    "tls://localhost:$SPORT?ca=$C/ca.pem"

# ------------------------------------------------ vchan-cat -l, s_client
# listen_tls [vchan-cat options]: a TLS listener with the good certificate; sets LPORT, LPID.
listen_tls() {
    LPORT=$(free_port)
    "${LIMIT[@]}" "$CAT" -w 5 -l "$@" "tls://127.0.0.1:$LPORT?cert=$C/good.pem&key=$C/good.key" \
        > "$tmp/l.out" 2> "$tmp/l.err" &
    LPID=$!
    pids+=("$LPID")
    wait_listen "$LPORT" "$LPID" || { echo "    vchan-cat -l did not start"; show_err "$tmp/l.err"; }
}
S_CLIENT=(openssl s_client -quiet -verify_return_error -CAfile "$C/ca.pem" -verify_hostname localhost)

for v in tls1_3 tls1_2; do
    # The listener sends; s_client (its input ended: -quiet ignores that) reads until close_notify.
    LPORT=$(free_port)
    "${LIMIT[@]}" "$CAT" -w 5 -l "tls://127.0.0.1:$LPORT?cert=$C/good.pem&key=$C/good.key" \
        < "$tmp/data" > "$tmp/l.out" 2> "$tmp/l.err" &
    LPID=$!
    pids+=("$LPID")
    wait_listen "$LPORT" "$LPID"
    "${LIMIT[@]}" "${S_CLIENT[@]}" "-$v" -connect "127.0.0.1:$LPORT" < /dev/null > "$tmp/c.out" \
        2> "$tmp/c.err"
    crc=$?
    wait "$LPID"
    lrc=$?
    if [ "$lrc" = 0 ] && cmp -s "$tmp/data" "$tmp/c.out"; then
        pass "vchan-cat -l -> s_client -$v (s_client verified name and chain)"
    else
        fail "vchan-cat -l -> s_client -$v: exits $lrc/$crc, s_client got $(stat -c %s "$tmp/c.out") bytes"
        show_err "$tmp/l.err" "$tmp/c.err"
    fi
done

# s_client sends; the listener keeps its own direction open until its input ends.
LPORT=$(free_port)
(sleep 2) | "${LIMIT[@]}" "$CAT" -w 5 -l "tls://127.0.0.1:$LPORT?cert=$C/good.pem&key=$C/good.key" \
    > "$tmp/l.out" 2> "$tmp/l.err" &
LPID=$!
pids+=("$LPID")
wait_listen "$LPORT" "$LPID"
"${LIMIT[@]}" "${S_CLIENT[@]}" -connect "127.0.0.1:$LPORT" < "$tmp/data" > /dev/null 2> "$tmp/c.err"
crc=$?
wait "$LPID"
lrc=$?
if [ "$lrc" = 0 ] && cmp -s "$tmp/data" "$tmp/l.out"; then
    pass "s_client -> vchan-cat -l"
else
    fail "s_client -> vchan-cat -l: exits $lrc/$crc, listener got $(stat -c %s "$tmp/l.out") bytes"
    show_err "$tmp/l.err" "$tmp/c.err"
fi

# An s_client that rejects the listener's certificate: the listener says so, exit 1.
listen_tls
"${LIMIT[@]}" openssl s_client -quiet -verify_return_error -CAfile "$C/ca.pem" \
    -verify_hostname other.example -connect "127.0.0.1:$LPORT" < /dev/null > /dev/null 2>&1
wait "$LPID"
lrc=$?
if [ "$lrc" = 1 ] && grep -q "TLS" "$tmp/l.err"; then
    pass "s_client refuses the listener's certificate: listener exit 1: $(head -n 1 "$tmp/l.err")"
else
    fail "s_client refuses the listener's certificate: listener exit $lrc"
    show_err "$tmp/l.err"
fi

# ------------------------------------------------ TLS over vchan and UNIX, vchan-cat both ends
for t in "tls+vchan://*/tlsv|tls+vchan://0/tlsv?servername=localhost" \
         "tls+vchan://0/tlsd|tls+vchan://0/tlsd?servername=localhost" \
         "tls+unix://$tmp/tls.sock|tls+unix://$tmp/tls.sock?servername=localhost"; do
    lu=${t%%|*} cu=${t#*|}
    head -c 100000 /dev/urandom > "$tmp/back"
    "${LIMIT[@]}" "$CAT" -w 5 -l --cert "$C/good.pem" --key "$C/good.key" "$lu" \
        < "$tmp/back" > "$tmp/l.out" 2> "$tmp/l.err" &
    LPID=$!
    pids+=("$LPID")
    case $lu in tls+unix*) wait_file "$tmp/tls.sock" ;; esac
    "${LIMIT[@]}" "$CAT" -w 5 --ca "$C/ca.pem" "$cu" < "$tmp/data" > "$tmp/c.out" 2> "$tmp/c.err"
    crc=$?
    wait "$LPID"
    lrc=$?
    if [ "$lrc" = 0 ] && [ "$crc" = 0 ] && cmp -s "$tmp/data" "$tmp/l.out" &&
        cmp -s "$tmp/back" "$tmp/c.out"; then
        pass "$cu: both directions whole (half-close through close_notify)"
    else
        fail "$cu: exits $lrc/$crc"
        show_err "$tmp/l.err" "$tmp/c.err"
    fi
done

# ------------------------------------------------ usage errors
usage_error() { # NAME PATTERN ARGS...
    local name=$1 pattern=$2 rc
    shift 2
    "${LIMIT[@]}" "$CAT" "$@" < /dev/null > /dev/null 2> "$tmp/u.err"
    rc=$?
    if [ "$rc" = 2 ] && grep -q -- "$pattern" "$tmp/u.err"; then
        pass "$name: exit 2: $(head -n 1 "$tmp/u.err")"
    else
        fail "$name: exit $rc (want 2, a message with '$pattern')"
        show_err "$tmp/u.err"
    fi
}
usage_error "tls+vchan without servername" "servername=" 'tls+vchan://0/p'
usage_error "listening with TLS, no certificate" "cert=" -l 'tls://127.0.0.1:1'
usage_error "--ca with a plain tcp URI" "needs a tls URI" --ca x.pem 'tcp://localhost:1'
usage_error "ca given twice" "given twice" --ca a.pem 'tls://localhost:1?ca=b.pem'
usage_error "bad verify= value" "verify" 'tls://localhost:1?verify=maybe'

finish
