#!/bin/bash
# SPDX-License-Identifier: ISC
#
# Faults around vchan-cat on the local platform. In every case the survivor
# ends by itself with status 0 or 1 (never a hang, a signal or a sanitizer
# report), says why when it fails, delivers only an exact prefix of what was
# sent, and leaves no socket in VCHAN_DIR but stale ones that the next
# server on that port cleans up.
#
#  1. The server is gone before its client connects: never there, killed
#     (-9: a stale socket stays), terminated (SIGTERM), or died right after
#     publishing (hostile-peer -a die-after-publish), also while the client
#     is already waiting. The client exits 1 within its -w.
#  2. A peer dies at a chosen step of set-up (hostile-peer -a die-STEP):
#     the server after accepting, the client after its lookup, after
#     mapping the page, before saying it is live, right after connecting.
#  3. A ring never drained (hostile-peer -a idle): the writer blocks without
#     spinning; with -w it times out with exit 1; without, it ends when the
#     idle peer goes away.
#  4. SIGKILL of either vchan-cat at a random moment of set-up (FAULT_ROUNDS,
#     default 16): random start order, killed 0-60 ms after it started
#     (start-up, publishing, rendezvous, the first bytes).
#
# Environment: top_builddir (default .), FAULT_ROUNDS, TEST_SEED.
set -u

NAME=faults
# shellcheck source=tests/integration/procs.sh
. "$(dirname "$0")/procs.sh"

echo "faults.sh: seed $seed (TEST_SEED=$seed repeats the choices)"
head -c 200000 /dev/urandom > "$tmp/data"
cases=0

# finish WAITPID LIMIT_MS NAME: wait for it, at most LIMIT_MS (then kill -9
# NAME); sets $status (hung when killed) and $took (ms).
finish() {
    local t0
    t0=$(now_ms)
    while alive "$1" && [ $(($(now_ms) - t0)) -lt "$2" ]; do
        sleep 0.01
    done
    took=$(($(now_ms) - t0))
    if alive "$1"; then
        status=hung
        kill -9 "$(cat "$tmp/$3.pid" 2> /dev/null)" 2> /dev/null
        { wait "$1"; } 2> /dev/null
        return
    fi
    { wait "$1"; } 2> /dev/null
    status=$?
}

# verdict WHAT NAME ALLOWED_STATUSES...: check $status and NAME's stderr.
verdict() {
    local what=$1 name=$2 problems=() ok=0 s msg
    shift 2
    for s in "$@"; do
        [ "$status" = "$s" ] && ok=1
    done
    [ "$ok" = 1 ] || problems+=("status $status (expected $*)")
    msg=$(grep -m1 '^vchan-cat:' "$tmp/$name.err")
    [ "$status" = 1 ] && [ -z "$msg" ] && problems+=("exit 1 without a message")
    grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$tmp/$name.err" &&
        problems+=("sanitizer report")
    cases=$((cases + 1))
    if [ ${#problems[@]} = 0 ]; then
        pass "$what: exit $status after ${took} ms${msg:+: $msg}"
    else
        fail "$what: ${problems[*]}"
        sed 's/^/      /' "$tmp/$name.err" | head -n 20
    fi
}

# The directory holds no socket, or only stale ones the next server replaces.
check_dir() {
    local what=$1 s port
    for s in "$VCHAN_DIR"/*; do
        [ -e "$s" ] || continue
        port=${s##*.}
        # A new pair on that port: the server must clean the stale socket up.
        run_bg chk_s /dev/null "$CAT" -w 3 -l "vchan://0/$port"
        local ws=$started
        run_bg chk_c "$tmp/data" "$CAT" -w 3 "vchan://0/$port"
        local wc=$started
        finish "$wc" 6000 chk_c
        local sc=$status
        finish "$ws" 6000 chk_s
        cases=$((cases + 1))
        if [ "$sc" = 0 ] && [ "$status" = 0 ] && cmp -s "$tmp/data" "$tmp/chk_s.out"; then
            pass "$what: stale socket ${s##*/} was replaced by the next server"
        else
            fail "$what: a server and client on the port of ${s##*/} failed (exit $status/$sc)"
            sed 's/^/      /' "$tmp/chk_s.err" "$tmp/chk_c.err" | head -n 10
        fi
    done
    cases=$((cases + 1))
    if [ -z "$(ls -A "$VCHAN_DIR")" ]; then
        pass "$what: VCHAN_DIR is empty"
    else
        fail "$what: left in VCHAN_DIR: $(ls -A "$VCHAN_DIR" | tr '\n' ' ')"
        rm -f "$VCHAN_DIR"/*
    fi
}

# What a survivor's message says, without names and numbers.
outcome() {
    local m
    m=$(grep -m1 '^vchan-cat:' "$1")
    case $m in
        '') echo "clean end (exit 0)" ;;
        *"no vchan server"*) echo "no server appeared within -w (the server died before it published or accepted)" ;;
        *"no client connected"*) echo "no client connected within -w (the client died before connecting)" ;;
        *"not delivered"*) echo "peer closed with data undelivered" ;;
        *"timed out"*) echo "timed out: $(echo "$m" | sed 's/.*timed out: //; s/[0-9.]* s$/-w/')" ;;
        *) echo "$m" | sed 's/^vchan-cat: [^ ]*: //' ;;
    esac
}

prefix_ok() {
    local size
    size=$(stat -c %s "$1")
    [ "$size" = 0 ] || cmp -s -n "$size" "$2" "$1"
}

# ------------------------------------------------------------ 1. server gone
echo "== 1. the server is gone before its client connects"
run_bg client /dev/null "$CAT" -w 1 vchan://0/never
finish "$started" 4000 client
verdict "no server ever (client -w 1)" client 1

run_bg server /dev/null "$CAT" -l vchan://0/stale
ws=$started
wait_for "$VCHAN_DIR/0.0.stale" 300
kill -9 "$(pid_of server)"
{ wait "$ws"; } 2> /dev/null
run_bg client "$tmp/data" "$CAT" -w 1 vchan://0/stale
finish "$started" 4000 client
verdict "server killed -9 after publishing, stale socket (client -w 1)" client 1
check_dir "after a server killed -9"

run_bg server /dev/null "$CAT" -l vchan://0/term
ws=$started
wait_for "$VCHAN_DIR/0.0.term" 300
kill -TERM "$(pid_of server)"
{ wait "$ws"; } 2> /dev/null
cases=$((cases + 1))
if [ -e "$VCHAN_DIR/0.0.term" ]; then
    fail "a server stopped by SIGTERM left its socket"
else
    pass "a server stopped by SIGTERM removed its socket"
fi
run_bg client "$tmp/data" "$CAT" -w 1 vchan://0/term
finish "$started" 4000 client
verdict "server terminated (SIGTERM) before the client (client -w 1)" client 1

run_bg peer /dev/null "$PEER" -l -a die-after-publish vchan://0/dap
{ wait "$started"; } 2> /dev/null
run_bg client "$tmp/data" "$CAT" -w 1 vchan://0/dap
finish "$started" 4000 client
verdict "server died right after publishing (client -w 1)" client 1
check_dir "after a server that died after publishing"

# The client is waiting first; the server appears and dies.
run_bg client "$tmp/data" "$CAT" -w 3 vchan://0/dap2
wc=$started
sleep 0.3
run_bg peer /dev/null "$PEER" -l -a die-after-publish vchan://0/dap2
{ wait "$started"; } 2> /dev/null
finish "$wc" 6000 client
verdict "server appeared and died while the client waited (client -w 3)" client 1
check_dir "after a server that died while its client waited"

# ------------------------------------------------------------ 2. death at a set-up step
echo "== 2. a peer dies at a step of set-up"
run_bg client "$tmp/data" "$CAT" -w 3 vchan://0/daa
wc=$started
sleep 0.1
run_bg peer /dev/null "$PEER" -l -a die-after-accept vchan://0/daa
{ wait "$started"; } 2> /dev/null
finish "$wc" 6000 client
verdict "server died after accepting, client sending (-w 3)" client 1
check_dir "after a server that died after accepting"

run_bg client /dev/null "$CAT" -w 3 vchan://0/daa2
wc=$started
sleep 0.1
run_bg peer /dev/null "$PEER" -l -a die-after-accept vchan://0/daa2
{ wait "$started"; } 2> /dev/null
finish "$wc" 6000 client
verdict "server died after accepting, client with no input (-w 3)" client 0 1

for step in after-lookup after-map before-live after-connect; do
    for input in /dev/null "$tmp/data"; do
        port=c${step//-/}${input##*/}
        run_bg server "$input" "$CAT" -w 3 -l "vchan://0/$port"
        ws=$started
        wait_for "$VCHAN_DIR/0.0.$port" 300
        run_bg peer /dev/null "$PEER" -a "die-$step" "vchan://0/$port"
        { wait "$started"; } 2> /dev/null
        finish "$ws" 6000 server
        if [ "$input" = /dev/null ]; then
            verdict "client died $step, server with no input (-w 3)" server 0 1
        else
            verdict "client died $step, server sending (-w 3)" server 1
        fi
    done
done
check_dir "after clients that died during set-up"

# ------------------------------------------------------------ 3. never drained
echo "== 3. a ring never drained"
# writer ROLE WFLAG: vchan-cat writes into an idle peer.
never_drained() {
    local role=$1 w=$2 port=nd$1${2:+w} wv wp vpid cpu
    rm -f "$tmp/ready"
    if [ "$role" = client ]; then
        run_bg peer /dev/null "$PEER" -l -a idle -t 30 -r "$tmp/ready" "vchan://0/$port"
        wp=$started
        wait_for "$VCHAN_DIR/0.0.$port" 300
        run_bg victim /dev/zero "$CAT" $w "vchan://0/$port"
        wv=$started
    else
        run_bg victim /dev/zero "$CAT" $w -l "vchan://0/$port"
        wv=$started
        wait_for "$VCHAN_DIR/0.0.$port" 300
        run_bg peer /dev/null "$PEER" -a idle -t 30 -r "$tmp/ready" "vchan://0/$port"
        wp=$started
    fi
    vpid=$(pid_of victim)
    wait_for "$tmp/ready" 300
    if [ -n "$w" ]; then
        finish "$wv" 4000 victim
        verdict "writer ($role, $w) into a ring never drained" victim 1
        grep -q 'timed out' "$tmp/victim.err" ||
            fail "writer ($role, $w): its message does not say it timed out"
        kill -9 "$(pid_of peer)" 2> /dev/null
        { wait "$wp"; } 2> /dev/null
        return
    fi
    # No -w: it blocks, idle, for as long as the peer is there.
    sleep 0.5
    cpu=$(cpu_percent "$vpid" 1.5)
    cases=$((cases + 1))
    if [ -n "$cpu" ]; then
        if [ "$cpu" -le 20 ]; then
            pass "writer ($role, no -w) into a ring never drained: blocked, ${cpu}% CPU over 1.5 s"
        else
            fail "writer ($role, no -w) spins while blocked: ${cpu}% CPU"
        fi
    else
        fail "writer ($role, no -w) did not block (it ended)"
        sed 's/^/      /' "$tmp/victim.err" | head -n 5
    fi
    # The idle peer dies: the blocked writer must notice.
    kill -9 "$(pid_of peer)" 2> /dev/null
    { wait "$wp"; } 2> /dev/null
    finish "$wv" 2000 victim
    verdict "blocked writer ($role) after the idle peer died" victim 1
}
never_drained client "-w 1"
never_drained server "-w 1"
never_drained client ""
never_drained server ""
check_dir "after the never-drained rings"

# ------------------------------------------------------------ 4. SIGKILL during set-up
echo "== 4. SIGKILL of either vchan-cat at a random moment of set-up"
rounds=${FAULT_ROUNDS:-16}
outcomes=()
for r in $(seq "$rounds"); do
    port=sk$r
    victim=server
    [ $((RANDOM % 2)) = 0 ] && victim=client
    order=server-first
    [ $((RANDOM % 2)) = 0 ] && order=client-first
    delay=$((RANDOM % 60))
    if [ "$order" = server-first ]; then
        run_bg server /dev/null "$CAT" -w 2 -l "vchan://0/$port"
        ws=$started
        sleep "0.00$((RANDOM % 10))"
        run_bg client "$tmp/data" "$CAT" -w 2 "vchan://0/$port"
        wc=$started
    else
        run_bg client "$tmp/data" "$CAT" -w 2 "vchan://0/$port"
        wc=$started
        sleep "0.00$((RANDOM % 10))"
        run_bg server /dev/null "$CAT" -w 2 -l "vchan://0/$port"
        ws=$started
    fi
    vp=$(pid_of "$victim")
    sleep "$(printf '0.%03d' "$delay")"
    kill -9 "$vp" 2> /dev/null
    if [ "$victim" = server ]; then
        sw=$wc survivor=client
        { wait "$ws"; } 2> /dev/null
    else
        sw=$ws survivor=server
        { wait "$wc"; } 2> /dev/null
    fi
    # -w 2 bounds every wait of the survivor; 2 s more for a slow (sanitizer) build.
    finish "$sw" 4000 "$survivor"
    verdict "round $r: $order, SIGKILL the $victim after ${delay} ms" "$survivor" 0 1
    outcomes+=("$survivor: $(outcome "$tmp/$survivor.err")")
    if [ "$survivor" = server ] && ! prefix_ok "$tmp/server.out" "$tmp/data"; then
        fail "round $r: the server's output is not a prefix of what the client sent"
    fi
done
check_dir "after the SIGKILL rounds"
echo "faults.sh: what the survivors of the SIGKILL rounds said:"
printf '%s\n' "${outcomes[@]}" | sort | uniq -c | sed 's/^/    /'

if [ "$failures" -gt 0 ]; then
    echo "faults.sh: $failures of $cases checks FAILED (seed $seed)"
    exit 1
fi
echo "faults.sh: all $cases checks passed"
exit 0
