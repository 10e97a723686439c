#!/bin/bash
# SPDX-License-Identifier: ISC
#
# vchan-cat against a hostile peer (tests/hostile/hostile-peer) on the local
# platform, in both roles. Each round the peer rewrites the shared control
# page for HOSTILE_SECS (default 3), then stays connected and silent for
# 1.5 s, then closes. The victim must:
#   - never crash (no signal, no sanitizer report: run this on the ASan
#     build to also catch any access outside the rings);
#   - never spin: while the peer is silent its CPU time grows by at most
#     20% of the wall time;
#   - end with a clear error (exit 1 and a message) or a clean end-of-file
#     (exit 0) within 2 s of the attack stopping (or earlier, by itself);
#   - with a peer that only bends the rules (-a plausible: garbage data,
#     indices that move legally, any notify bits, orders and grants), or
#     that rewrites only what the victim must never read back (-a ignored:
#     its own indices and live byte), carry on to the end of the attack.
# Then the synthetic ocaml-vchan peer (legal but different choices: orders
# 10/12, no unmap-notify, writable read ring, late acknowledgements) must
# move data both ways with vchan-cat in both roles, byte for byte.
#
# Environment: top_builddir (default .), HOSTILE_SECS, HOSTILE_CHAOS_ROUNDS
# (default 4 per role), TEST_SEED (repeats a run's choices; printed).
set -u

NAME=hostile
# shellcheck source=tests/integration/procs.sh
. "$(dirname "$0")/procs.sh"

secs=${HOSTILE_SECS:-3}
quiet=1.5
chaos_rounds=${HOSTILE_CHAOS_ROUNDS:-4}
echo "hostile.sh: seed $seed (TEST_SEED=$seed repeats the choices), attacks of $secs s"
rounds=0
survived=()

# round ROLE MODE SEED INPUT: ROLE is the victim's (client or server).
round() {
    local role=$1 mode=$2 s=$3 input=$4
    local port=h$rounds what="victim $role vs $mode (seed $s, stdin ${input##*/})"
    local peer_args=(-a "$mode" -t "$secs" -q "$quiet" -s "$s" -r "$tmp/ready" -Q "$tmp/quiet")
    local vwait pwait vpid t_exit dt status problems=() cpu=-
    rounds=$((rounds + 1))
    rm -f "$tmp/ready" "$tmp/quiet"

    if [ "$role" = client ]; then
        run_bg peer /dev/null "$PEER" -l "${peer_args[@]}" "vchan://0/$port"
        pwait=$started
        wait_for "$VCHAN_DIR/0.0.$port" 300
        run_bg victim "$input" "$CAT" "vchan://0/$port"
        vwait=$started
    else
        run_bg victim "$input" "$CAT" -l "vchan://0/$port"
        vwait=$started
        wait_for "$VCHAN_DIR/0.0.$port" 300
        run_bg peer /dev/null "$PEER" "${peer_args[@]}" "vchan://0/$port"
        pwait=$started
    fi
    vpid=$(pid_of victim)
    if ! wait_for "$tmp/ready" 500; then
        fail "$what: the peer never connected"
        sed 's/^/      /' "$tmp/peer.err" "$tmp/victim.err"
        kill -9 "$vpid" "$(cat "$tmp/peer.pid" 2> /dev/null)" 2> /dev/null
        { wait "$vwait" "$pwait"; } 2> /dev/null
        return
    fi
    # The attack; then, while the peer is silent, the victim must not burn CPU.
    wait_for "$tmp/quiet" $((secs * 100 + 500))
    if alive "$vpid"; then
        cpu=$(cpu_percent "$vpid" 1.2)
        if [ -n "$cpu" ] && [ "$cpu" -gt 20 ]; then
            problems+=("it used ${cpu}% CPU while the peer was silent")
        fi
        cpu=${cpu:--}
    fi
    { wait "$pwait"; } 2> /dev/null
    # The peer has closed: the victim has 2 s.
    t_exit=$(now_ms)
    while alive "$vwait" && [ $(($(now_ms) - t_exit)) -lt 4000 ]; do
        sleep 0.01
    done
    if alive "$vwait"; then
        problems+=("still running 4 s after the peer closed")
        kill -9 "$vpid" 2> /dev/null
    fi
    { wait "$vwait"; } 2> /dev/null
    status=$?
    dt=$(($(now_ms) - t_exit))

    local ended lifetime
    ended=$(grep -m1 '^vchan-cat:' "$tmp/victim.err")
    # When did it end: before the peer closed (by itself) or after?
    if grep -q 'went away' "$tmp/peer.err" && ! grep -q 'still connected' "$tmp/peer.err"; then
        lifetime=$(sed -n 's/.*went away after \([0-9.]*\) s.*/\1/p' "$tmp/peer.err" | tail -n 1)
        lifetime="ended by itself after ${lifetime} s of attack"
        [ "$mode" != chaos ] && [ "$mode" != setup ] &&
            problems+=("it gave up under a peer that kept to the protocol: $ended")
    else
        lifetime="survived the whole ${secs} s attack, exit ${dt} ms after the peer closed"
        [ "$dt" -gt 2000 ] && problems+=("took ${dt} ms to exit after the peer closed (limit 2000)")
        survived+=("$role/$mode: ${secs} s")
    fi
    [ "$status" = 0 ] || [ "$status" = 1 ] || problems+=("exit status $status")
    [ "$status" = 1 ] && [ -z "$ended" ] && problems+=("exit 1 without a message")
    sanitizer_report "$tmp/victim.err" && problems+=("sanitizer report")
    if [ "$mode" != chaos ] && [ "$mode" != setup ] && [ "$input" = /dev/null ] &&
        [ "$status" != 0 ]; then
        problems+=("no clean end-of-file (exit $status) although the peer kept to the protocol")
    fi
    local info="$lifetime; exit $status${ended:+ ($ended)}; CPU while silent ${cpu}%"
    if [ ${#problems[@]} = 0 ]; then
        pass "$what: $info"
    else
        fail "$what: $info: ${problems[*]}"
        sed 's/^/      /' "$tmp/victim.err" | head -n 30
        sed 's/^/      peer: /' "$tmp/peer.err" | tail -n 3
    fi
}

for role in client server; do
    round "$role" plausible "$RANDOM" /dev/null
    round "$role" plausible "$RANDOM" /dev/zero
    round "$role" ignored "$RANDOM" /dev/null
    round "$role" ignored "$RANDOM" /dev/zero
    for i in $(seq "$chaos_rounds"); do
        input=/dev/null
        [ $((i % 2)) = 0 ] && input=/dev/zero
        round "$role" chaos "$RANDOM" "$input"
    done
done
# The server spoils its page while the client maps it.
for i in 1 2; do
    round client setup "$RANDOM" /dev/zero
done

# A server whose page claims a ring larger than the pages it shared (orders
# 12/14: five pages, of two): the client must refuse it as the server's fault.
rounds=$((rounds + 1))
run_bg peer /dev/null "$PEER" -l -a ocaml -O 12:14 -t 5 vchan://0/lie
pwait=$started
wait_for "$VCHAN_DIR/0.0.lie" 300
run_bg victim /dev/null "$CAT" -w 2 vchan://0/lie
finish_ms=$(now_ms)
{ wait "$started"; } 2> /dev/null
status=$?
finish_ms=$(($(now_ms) - finish_ms))
kill -9 "$(cat "$tmp/peer.pid" 2> /dev/null)" 2> /dev/null
{ wait "$pwait"; } 2> /dev/null
msg=$(grep -m1 '^vchan-cat:' "$tmp/victim.err")
if [ "$status" = 1 ] && [ "$finish_ms" -lt 2000 ] && echo "$msg" | grep -q 'shared only'; then
    pass "a server whose orders claim more pages than it shared: exit 1 in ${finish_ms} ms ($msg)"
else
    fail "a server whose orders claim more pages than it shared: exit $status in ${finish_ms} ms ($msg)"
fi

# ------------------------------------------------------------ ocaml-vchan's choices
head -c $((3 * 1024 * 1024 + 17)) /dev/urandom > "$tmp/a.bin"
head -c $((2 * 1024 * 1024 + 5)) /dev/urandom > "$tmp/b.bin"

# ocaml ROLE DIRECTION: the synthetic ocaml-vchan peer in ROLE (server/client),
# data from the peer to vchan-cat (to-cat) or back (from-cat).
ocaml() {
    local role=$1 dir=$2 port=o$rounds what="ocaml-vchan $1, data $2"
    local pin=/dev/null cin=/dev/null src status_c status_p problems=()
    rounds=$((rounds + 1))
    rm -f "$tmp/ready"
    if [ "$dir" = to-cat ]; then pin=$tmp/a.bin; src=$tmp/a.bin; else cin=$tmp/b.bin; src=$tmp/b.bin; fi
    if [ "$role" = server ]; then
        run_bg peer "$pin" "$PEER" -l -a ocaml -t 10 "vchan://0/$port"
        pwait=$started
        wait_for "$VCHAN_DIR/0.0.$port" 300
        run_bg victim "$cin" "$CAT" -w 10 "vchan://0/$port"
        vwait=$started
    else
        run_bg victim "$cin" "$CAT" -w 10 -l "vchan://0/$port"
        vwait=$started
        wait_for "$VCHAN_DIR/0.0.$port" 300
        run_bg peer "$pin" "$PEER" -a ocaml -t 10 "vchan://0/$port"
        pwait=$started
    fi
    { wait "$vwait"; } 2> /dev/null
    status_c=$?
    { wait "$pwait"; } 2> /dev/null
    status_p=$?
    if [ "$dir" = to-cat ]; then got=$tmp/victim.out; else got=$tmp/peer.out; fi
    [ "$status_c" = 0 ] || problems+=("vchan-cat exit $status_c")
    [ "$status_p" = 0 ] || problems+=("the ocaml peer exit $status_p")
    cmp -s "$src" "$got" || problems+=("$(stat -c %s "$got") of $(stat -c %s "$src") bytes arrived, or not intact")
    sanitizer_report "$tmp/victim.err" && problems+=("sanitizer report")
    if [ ${#problems[@]} = 0 ]; then
        pass "$what: $(stat -c %s "$src") bytes intact ($(grep -m1 'rings' "$tmp/peer.err" | sed 's/.*rings/rings/'))"
    else
        fail "$what: ${problems[*]}"
        sed 's/^/      /' "$tmp/victim.err" "$tmp/peer.err" | head -n 20
    fi
}

ocaml server to-cat
ocaml server from-cat
ocaml client to-cat
ocaml client from-cat

echo "hostile.sh: victims that lasted the whole attack: ${survived[*]:-none}"
if [ "$failures" -gt 0 ]; then
    echo "hostile.sh: $failures of $rounds rounds FAILED (seed $seed)"
    exit 1
fi
echo "hostile.sh: all $rounds rounds passed"
exit 0
