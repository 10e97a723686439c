#!/bin/bash
# SPDX-License-Identifier: ISC
#
# vchan-cat as the channel debugger on the local platform: --list (table and
# JSON, parsed here), --stat and --watch on real channels in known states:
#  - a server waiting for its client: listed as such, --stat "waiting for
#    the client";
#  - a flowing pair: --watch shows "flowing" with a non-zero rate;
#  - a stopped reader: "writer waiting for space" with a full ring;
#  - a dead client (kill -9) seen by --watch: "peer gone";
#  - a hostile server's page with an impossible ring order: "corrupt",
#    and --stat exits 1 without crashing;
#  - --list finds exactly the channels that exist, and none once closed;
#  - bad targets are usage errors (exit 2), a missing channel exit 1.
#
# Environment: top_builddir (default .).
set -u

NAME=debug
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
HOSTILE=$builddir/tests/hostile/hostile-peer
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# Stdin that never ends and stdout that is never read, without extra
# processes: two FIFOs this shell holds open at both ends.
mkfifo "$tmp/in" "$tmp/out"
exec 3<> "$tmp/in" 4<> "$tmp/out"

# json_count FILE EXPR: how many listed channels satisfy a Python expression on `c`.
json_count() {
    "$PY" -c '
import json, sys
chans = json.load(open(sys.argv[1]))
print(sum(1 for c in chans if eval(sys.argv[2])))' "$1" "$2"
}

# wait_listed PORT: until --list shows a channel with that port; 5 s at most.
wait_listed() {
    local i
    for i in $(seq 100); do
        "$CAT" --list 2>/dev/null | grep -q " $1 " && return 0
        sleep 0.05
    done
    return 1
}

# --- a server waiting for its client
"${LIMIT[@]}" "$CAT" -l 'vchan://0/waiting' <&3 > /dev/null 2> "$tmp/w.err" &
pids+=($!)
if wait_listed waiting; then
    "$CAT" --list --json > "$tmp/l1.json"
    if [ "$(json_count "$tmp/l1.json" 'c["port"] == "waiting" and c["state"] == "waiting for client" and c["server"] == 0 and c["client"] == 0 and c["pid"] > 0')" = 1 ]; then
        pass "--list --json: a server waiting for its client"
    else
        fail "--list --json: waiting server not found as such"
        show_err "$tmp/l1.json"
    fi
    if "$CAT" --stat 'vchan://0/waiting' > "$tmp/s1.out" && grep -q 'verdict: waiting for the client' "$tmp/s1.out"; then
        pass "--stat: waiting for the client"
    else
        fail "--stat of a waiting server"
        show_err "$tmp/s1.out"
    fi
else
    fail "--list never showed the waiting server"
    show_err "$tmp/w.err"
fi

# --- a flowing pair
"${LIMIT[@]}" "$CAT" -l 'vchan://0/flow' > /dev/null 2> "$tmp/f1.err" < /dev/null &
pids+=($!)
wait_listed flow
"${LIMIT[@]}" "$CAT" 'vchan://0/flow' < /dev/zero > /dev/null 2> "$tmp/f2.err" &
pids+=($!)
sleep 0.3
timeout -s INT 3.5 "$CAT" --watch 0/0/flow --json > "$tmp/f.json" 2> "$tmp/f.err"
if "$PY" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
flowing = [r for r in rows[1:] if r["verdict"] == "flowing" and r["left"]["bytes_per_s"] > 0]
sys.exit(0 if len(rows) >= 3 and flowing else 1)' "$tmp/f.json"; then
    pass "--watch: a flowing pair is flowing, with its rate"
else
    fail "--watch of a flowing pair"
    show_err "$tmp/f.json" "$tmp/f.err"
fi

# --- a stopped reader: the server's output goes to a FIFO nobody reads
"${LIMIT[@]}" "$CAT" -l 'vchan://0/stuck' <&3 >&4 2> "$tmp/st1.err" &
pids+=($!)
wait_listed stuck
"${LIMIT[@]}" "$CAT" 'vchan://0/stuck' < /dev/zero > /dev/null 2> "$tmp/st2.err" &
pids+=($!)
sleep 1
"$CAT" --stat 0/0/stuck --json > "$tmp/st.json"
if "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if r["verdict"] == "writer waiting for space" and r["left"]["fill"] == r["left"]["size"] else 1)' "$tmp/st.json"; then
    pass "--stat: a stopped reader leaves its writer waiting for space, ring full"
else
    fail "--stat of a stopped reader"
    show_err "$tmp/st.json"
fi

# --- a client killed while --watch looks on
"${LIMIT[@]}" "$CAT" -l 'vchan://0/dying' <&3 > /dev/null 2> "$tmp/d1.err" &
pids+=($!)
wait_listed dying
# Not under timeout: $! must be vchan-cat itself (cleanup kills it in any case).
"$CAT" -w 30 'vchan://0/dying' <&3 > /dev/null 2> "$tmp/d2.err" &
client=$!
pids+=($client)
sleep 0.5
timeout -s INT 4 "$CAT" --watch 0/0/dying > "$tmp/d.out" 2> "$tmp/d.err" &
watcher=$!
sleep 1.2
kill -9 "$client"
wait "$watcher"
if grep -q 'verdict: peer gone' "$tmp/d.out"; then
    pass "--watch: a killed client shows as peer gone"
else
    fail "--watch did not see the client die"
    show_err "$tmp/d.out" "$tmp/d.err"
fi

# --- a hostile server whose page lies about its ring orders
if [ -x "$HOSTILE" ]; then
    "${LIMIT[@]}" "$HOSTILE" -l -a ocaml -O 9:16 -w 10 -t 10 'vchan://0/liar' > /dev/null 2> "$tmp/h.err" &
    pids+=($!)
    wait_listed liar
    "$CAT" --stat vchan://0/liar > "$tmp/h.out" 2>&1
    rc=$?
    if [ "$rc" = 1 ] && grep -q 'verdict: corrupt (left ring: order out of range (10..20): 9)' "$tmp/h.out"; then
        pass "--stat: a page with an impossible order is corrupt, exit 1"
    else
        fail "--stat of a lying page (exit $rc)"
        show_err "$tmp/h.out" "$tmp/h.err"
    fi
else
    fail "$HOSTILE not built"
fi

# --- exactly what exists, and nothing once it is gone
"$CAT" --list --json > "$tmp/l2.json"
n=$(json_count "$tmp/l2.json" 'True')
ports=$("$PY" -c 'import json,sys; print(" ".join(sorted(c["port"] for c in json.load(open(sys.argv[1])))))' "$tmp/l2.json")
if [ "$ports" = "dying flow liar stuck waiting" ] || [ "$ports" = "flow liar stuck waiting" ]; then
    pass "--list: exactly the channels that exist ($n: $ports)"
else
    fail "--list shows '$ports'"
fi
for p in "${pids[@]}"; do
    kill -9 "$p" 2> /dev/null
done
pkill -9 -f "vchan-cat .*vchan://0/(waiting|flow|stuck|dying)" 2> /dev/null
pkill -9 -f "hostile-peer .*vchan://0/liar" 2> /dev/null
wait 2> /dev/null
for i in $(seq 100); do
    [ "$("$CAT" --list)" = "no channels" ] && break
    sleep 0.05
done
if [ "$("$CAT" --list)" = "no channels" ] && [ "$("$CAT" --list --json)" = "[]" ]; then
    pass "--list: no channels once they are closed"
else
    fail "--list after closing: $("$CAT" --list)"
fi

# --- usage and missing channels
"$CAT" --stat 'vchan://x/p' > /dev/null 2>&1
rc1=$?
"$CAT" --stat 0/0/nothing > /dev/null 2> "$tmp/m.err"
rc2=$?
"$CAT" --list abc > /dev/null 2>&1
rc3=$?
if [ "$rc1" = 2 ] && [ "$rc2" = 1 ] && [ "$rc3" = 2 ] && grep -q 'no channel 0.0.nothing' "$tmp/m.err"; then
    pass "bad targets are usage errors, a missing channel says so"
else
    fail "usage/missing: exits $rc1 $rc2 $rc3"
    show_err "$tmp/m.err"
fi

finish
