#!/bin/bash
# SPDX-License-Identifier: ISC
#
# Whole transfers between two real vchan-cat processes on the local platform,
# checked byte for byte: sizes from 0 B to 64 MiB, the listening side
# receiving and sending, both directions at once; then the exit codes for a
# bad URI (2) and for a client whose server never comes (1).
#
# Environment: top_builddir (default .): where dom0/vchan-cat was built.
# TEST_SEED: repeat a run's random sizes (printed at the start).
# One PASS/FAIL line per case; exits non-zero when any case failed.
set -u

NAME=transfer
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

seed=${TEST_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
echo "transfer.sh: seed $seed (TEST_SEED=$seed repeats the sizes)"

# Each vchan-cat runs under $LIMIT; -w bounds each of its own waits.
WAIT=5
port_n=0

# make_file PATH SIZE: SIZE random bytes.
make_file() {
    head -c "$2" /dev/urandom > "$1"
}

# same EXPECTED GOT: byte-identical (an empty or missing EXPECTED means nothing).
same() {
    if [ "$1" = /dev/null ]; then
        [ ! -s "$2" ]
    else
        cmp -s "$1" "$2"
    fi
}

# xfer NAME SERVER_IN CLIENT_IN: the listener reads SERVER_IN into the channel,
# the client CLIENT_IN; each must print exactly what the other read, and both
# must exit 0.
xfer() {
    local name=$1 sin=$2 cin=$3
    local port=p$((++port_n))
    local sout=$tmp/$port.sout cout=$tmp/$port.cout serr=$tmp/$port.serr cerr=$tmp/$port.cerr
    local spid src crc t0 dt ok=1

    t0=$(now_ms)
    "${LIMIT[@]}" "$CAT" -w "$WAIT" -l "vchan://0/$port" < "$sin" > "$sout" 2> "$serr" &
    spid=$!
    pids+=("$spid")
    "${LIMIT[@]}" "$CAT" -w "$WAIT" "vchan://0/$port" < "$cin" > "$cout" 2> "$cerr"
    crc=$?
    wait "$spid"
    src=$?
    dt=$(( $(now_ms) - t0 ))
    if [ "$src" != 0 ] || [ "$crc" != 0 ]; then
        ok=0
    fi
    if ! same "$cin" "$sout"; then
        ok=0
        echo "    listener got $(stat -c %s "$sout") bytes, client sent $(stat -c %s "$cin")"
    fi
    if ! same "$sin" "$cout"; then
        ok=0
        echo "    client got $(stat -c %s "$cout") bytes, listener sent $(stat -c %s "$sin")"
    fi
    if [ "$ok" = 1 ]; then
        pass "$name (${dt} ms)"
    else
        fail "$name: exit listener $src, client $crc (${dt} ms)"
        show_err "$serr" "$cerr"
    fi
    rm -f "$sout" "$cout" "$serr" "$cerr"
}

# ---------------------------------------------------------------- sizes
sizes=(0 1 4095 65536 65537 $((64 * 1024 * 1024)))
for _ in 1 2 3; do
    # Random sizes up to 64 MiB, spread over the orders of magnitude.
    bits=$(( RANDOM % 26 + 1 ))
    sizes+=( $(( (RANDOM * 32768 + RANDOM) % (1 << bits) + 1 )) )
done

for size in "${sizes[@]}"; do
    f=$tmp/in.$size
    make_file "$f" "$size"
    xfer "$size B, listener receiving" /dev/null "$f"
    xfer "$size B, listener sending" "$f" /dev/null
    rm -f "$f"
done

# ---------------------------------------------------- both directions
# vchan has no half-close, so vchan-cat's rule (DESIGN.md) is: a side whose
# input ended closes once the peer has consumed all it wrote. With both sides
# sending, the first to finish may cut the other off. What must hold is that
# nothing is lost silently: each side prints an exact prefix of what the
# other sent, a side that exits 0 had all its input delivered, and a side
# whose data was cut off exits 1 and says so. (Both directions at once are
# checked losslessly through the API in test_local.)
prefix_of() { # prefix_of SENT GOT: GOT is an exact prefix of SENT
    local n
    n=$(stat -c %s "$2")
    [ "$n" -le "$(stat -c %s "$1")" ] && cmp -s -n "$n" "$1" "$2"
}

# side_ok NAME RC SENT PEER_GOT ERR: exit 0 means delivered whole, exit 1 says why.
side_ok() {
    case $2 in
    0) cmp -s "$3" "$4" || { echo "    $1 exited 0 but the peer got $(stat -c %s "$4") of $(stat -c %s "$3") bytes"; return 1; } ;;
    1) grep -q "not delivered" "$5" || { echo "    $1 exited 1 without saying what was lost"; return 1; } ;;
    *) echo "    $1 exited $2"; return 1 ;;
    esac
}

xfer_both() {
    local name=$1 sin=$2 cin=$3
    local port=p$((++port_n))
    local sout=$tmp/$port.sout cout=$tmp/$port.cout serr=$tmp/$port.serr cerr=$tmp/$port.cerr
    local spid src crc ok=1

    "${LIMIT[@]}" "$CAT" -w "$WAIT" -l "vchan://0/$port" < "$sin" > "$sout" 2> "$serr" &
    spid=$!
    pids+=("$spid")
    "${LIMIT[@]}" "$CAT" -w "$WAIT" "vchan://0/$port" < "$cin" > "$cout" 2> "$cerr"
    crc=$?
    wait "$spid"
    src=$?
    prefix_of "$cin" "$sout" || { ok=0; echo "    listener output is not a prefix of the client's input"; }
    prefix_of "$sin" "$cout" || { ok=0; echo "    client output is not a prefix of the listener's input"; }
    side_ok listener "$src" "$sin" "$cout" "$serr" || ok=0
    side_ok client "$crc" "$cin" "$sout" "$cerr" || ok=0
    if [ "$ok" = 1 ]; then
        pass "$name: exits $src/$crc, received $(stat -c %s "$sout")/$(stat -c %s "$cout") B"
    else
        fail "$name: exit listener $src, client $crc"
        show_err "$serr" "$cerr"
    fi
    rm -f "$sout" "$cout" "$serr" "$cerr"
}

for pair in "100000 100000" "70000 3000000" "5000000 1"; do
    set -- $pair
    a=$tmp/both.a b=$tmp/both.b
    make_file "$a" "$1"
    make_file "$b" "$2"
    xfer_both "both ways at once: listener sends $1 B, client sends $2 B" "$a" "$b"
    rm -f "$a" "$b"
done

# ---------------------------------------------------------- exit codes
# exit_code NAME EXPECTED MAX_MS ARGS...
exit_code() {
    local name=$1 want=$2 max_ms=$3 rc t0 dt
    shift 3
    t0=$(now_ms)
    "${LIMIT[@]}" "$CAT" "$@" < /dev/null > "$tmp/ec.out" 2> "$tmp/ec.err"
    rc=$?
    dt=$(( $(now_ms) - t0 ))
    if [ "$rc" = "$want" ] && [ "$dt" -le "$max_ms" ] && [ -s "$tmp/ec.err" ]; then
        pass "$name: exit $rc in ${dt} ms: $(head -n 1 "$tmp/ec.err")"
    else
        fail "$name: exit $rc (expected $want) in ${dt} ms (limit $max_ms), stderr:"
        show_err "$tmp/ec.err"
        [ -s "$tmp/ec.err" ] || echo "      (no message on stderr)"
    fi
}

exit_code "bad URI: unknown scheme" 2 3000 'bogus://0/p'
exit_code "bad URI: bad port characters" 2 3000 'vchan://0/a.b'
exit_code "bad URI: port too long" 2 3000 "vchan://0/$(printf 'x%.0s' {1..65})"
exit_code "bad URI: domain out of range" 2 3000 'vchan://32752/p'
exit_code "bad URI: listen URI with '*' when connecting" 2 3000 'vchan://*/p'
exit_code "bad URI: no port" 2 3000 'vchan://0'
exit_code "bad URI: unknown option" 2 3000 'vchan://0/p?colour=blue'
exit_code "listener, bad URI" 2 3000 -l 'vchan://0/p?read-size=0'
exit_code "no URI" 2 3000
exit_code "unknown option" 2 3000 --no-such-option 'vchan://0/p'
exit_code "client -w 1, no server" 1 3000 -w 1 'vchan://0/nobody-here'

if [ "$failures" -gt 0 ]; then
    echo "transfer.sh: $failures case(s) FAILED (seed $seed)"
    exit 1
fi
echo "transfer.sh: all cases passed"
exit 0
