#!/bin/bash
# SPDX-License-Identifier: ISC
#
# kill -9 of either vchan-cat at a random point of a large transfer (local
# platform). The survivor must exit by itself within 2 s, with status 0 or 1,
# and everything it wrote to its stdout must be an exact prefix of what the
# other side was sending. Sender or receiver, listener or client, one way or
# both ways at once, killed in turn.
#
# The streams are AES-CTR keystreams (openssl), regenerated for the check,
# so nothing large is kept on disk.
#
# Environment: top_builddir (default .): where dom0/vchan-cat was built.
# KILL_ROUNDS (default 12), TEST_SEED: repeat a run's choices (printed).
# One PASS/FAIL line per round; exits non-zero when any round failed.
set -u

NAME=kill
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# openssl makes the test streams.
need_cmd openssl openssl

seed=${TEST_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
rounds=${KILL_ROUNDS:-12}
echo "kill.sh: seed $seed (TEST_SEED=$seed repeats the choices), $rounds rounds"

# Far more than moves before any kill: the transfer is always cut short.
export STREAM_BYTES=$((16 * 1024 * 1024 * 1024))
KEY_LISTENER=000102030405060708090a0b0c0d0e0f
KEY_CLIENT=f0e0d0c0b0a090807060504030201000

# gen KEY: the stream a side sends.
gen() {
    head -c "$STREAM_BYTES" /dev/zero |
        openssl enc -aes-128-ctr -K "$1" -iv 00000000000000000000000000000000 2> /dev/null
}
export -f gen

notes=0

# start NAME KEY|- OUT ARGS...: vchan-cat ARGS under a time limit, sending
# stream KEY (or nothing); its own pid (for kill -9) lands in NAME.pid, and
# $started is the pid to wait for (the time limit's).
start() {
    local name=$1 key=$2 out=$3
    shift 3
    rm -f "$tmp/$name.pid"
    # In a subshell that exits normally, its stderr (the shell's "Killed" notice:
    # timeout dies of the signal that killed its child) to /dev/null.
    if [ "$key" = - ]; then
        (
            timeout -k 2 30 bash -c 'echo $$ > "$0"; exec "$@"' "$tmp/$name.pid" "$CAT" "$@" \
                < /dev/null > "$out" 2> "$tmp/$name.err"
            exit $?
        ) 2> /dev/null &
    else
        (
            timeout -k 2 30 bash -c 'echo $$ > "$0"; k=$1; shift; exec "$@" < <(gen "$k")' \
                "$tmp/$name.pid" "$key" "$CAT" "$@" > "$out" 2> "$tmp/$name.err"
            exit $?
        ) 2> /dev/null &
    fi
    started=$!
    pids+=("$started")
}

# prefix_ok FILE KEY|-: FILE is an exact prefix of stream KEY (empty for -).
prefix_ok() {
    local size
    size=$(stat -c %s "$1")
    if [ "$2" = - ] || [ "$size" = 0 ]; then
        [ "$size" = 0 ]
        return
    fi
    cmp -s -n "$size" <(gen "$2") "$1"
}

# mode: what each side sends (key or -), and who dies.
#   0 client sends, client killed      1 client sends, listener killed
#   2 listener sends, listener killed  3 listener sends, client killed
#   4 both send, listener killed       5 both send, client killed
for round in $(seq "$rounds"); do
    mode=$(( (round - 1) % 6 ))
    port=k$round
    case $mode in
        0) lkey=-; ckey=$KEY_CLIENT; victim=client; desc="client sends" ;;
        1) lkey=-; ckey=$KEY_CLIENT; victim=listener; desc="client sends" ;;
        2) lkey=$KEY_LISTENER; ckey=-; victim=listener; desc="listener sends" ;;
        3) lkey=$KEY_LISTENER; ckey=-; victim=client; desc="listener sends" ;;
        4) lkey=$KEY_LISTENER; ckey=$KEY_CLIENT; victim=listener; desc="both send" ;;
        *) lkey=$KEY_LISTENER; ckey=$KEY_CLIENT; victim=client; desc="both send" ;;
    esac
    survivor=listener
    [ "$victim" = listener ] && survivor=client
    what="round $round: $desc, kill -9 the $victim"
    lout=$tmp/listener.out
    cout=$tmp/client.out

    start listener "$lkey" "$lout" -w 10 -l "vchan://0/$port"
    lwait=$started
    start client "$ckey" "$cout" -w 10 "vchan://0/$port"
    cwait=$started
    lpid=$(pid_of listener)
    cpid=$(pid_of client)
    if [ -z "$lpid" ] || [ -z "$cpid" ]; then
        fail "$what: a vchan-cat did not start"
        continue
    fi

    # Kill at a random point once data flows.
    t0=$(now_ms)
    while [ $(( $(stat -c %s "$lout") + $(stat -c %s "$cout") )) = 0 ] &&
        [ $(( $(now_ms) - t0 )) -lt 5000 ] && alive "$lpid" && alive "$cpid"; do
        sleep 0.01
    done
    delay=$(( RANDOM % 400 ))
    sleep "$(printf '0.%03d' "$delay")"
    if ! alive "$lpid" || ! alive "$cpid"; then
        fail "$what: a side ended before the kill (no data moved?)"
        sed 's/^/      /' "$tmp/listener.err" "$tmp/client.err"
        { wait "$lwait" "$cwait"; } 2> /dev/null
        continue
    fi
    if [ "$victim" = listener ]; then
        vpid=$lpid; swait=$cwait; vwait=$lwait
        sout=$cout; skey=$ckey; vout=$lout; vkey=$lkey
    else
        vpid=$cpid; swait=$lwait; vwait=$cwait
        sout=$lout; skey=$lkey; vout=$cout; vkey=$ckey
    fi
    kill -9 "$vpid"
    t0=$(now_ms)
    # The survivor must go by itself: watch it for up to 6 s.
    while alive "$swait" && [ $(( $(now_ms) - t0 )) -lt 6000 ]; do
        sleep 0.01
    done
    dt=$(( $(now_ms) - t0 ))
    hung=0
    if alive "$swait"; then
        hung=1
        kill -9 "$(cat "$tmp/$survivor.pid")" 2> /dev/null
    fi
    # Braces: the shell's "Killed" job notice goes to /dev/null too.
    { wait "$swait"; } 2> /dev/null
    status=$?
    { wait "$vwait"; } 2> /dev/null

    problems=()
    [ "$hung" = 1 ] && problems+=("survivor still running after 6 s")
    [ "$dt" -gt 2000 ] && problems+=("survivor took ${dt} ms (limit 2000)")
    [ "$status" = 0 ] || [ "$status" = 1 ] || problems+=("survivor exit status $status")
    got=$(stat -c %s "$sout")
    prefix_ok "$sout" "$vkey" || problems+=("survivor's $got bytes are not a prefix of what was sent")
    # What the victim wrote before it died must be a prefix too.
    prefix_ok "$vout" "$skey" || problems+=("victim's output is not a prefix of what was sent")
    info="after ${delay} ms of data; survivor ($survivor) exit $status in ${dt} ms, delivered $got bytes"
    if [ ${#problems[@]} = 0 ]; then
        pass "$what: $info"
        # Allowed, but worth seeing: the survivor's own input had not ended.
        if [ "$status" = 0 ] && [ "$skey" != - ]; then
            echo "NOTE: round $round: the survivor exited 0 although its input had not ended"
            notes=$((notes + 1))
        fi
    else
        fail "$what: $info: ${problems[*]}"
        sed 's/^/      /' "$tmp/$survivor.err"
    fi
    rm -f "$lout" "$cout"
done

if [ "$failures" -gt 0 ]; then
    echo "kill.sh: $failures of $rounds rounds FAILED (seed $seed)"
    exit 1
fi
echo "kill.sh: all $rounds rounds passed ($notes NOTE)"
exit 0
