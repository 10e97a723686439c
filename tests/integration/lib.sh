# SPDX-License-Identifier: ISC
# shellcheck shell=bash
#
# Shared by the integration tests (transfer.sh, kill.sh, tls.sh, socat.sh,
# accept.sh; hostile.sh and faults.sh through procs.sh): a private
# directory with the local platform's rendezvous in it, PASS/FAIL
# bookkeeping, free loopback ports, waiting for a listener or a file.
# Source it after setting NAME. Every process the tests start runs under
# `timeout`; at exit, those in $pids and those whose own pid is in
# $tmp/*.pid are killed. Skips follow tests/skip.sh (sourced here).

# shellcheck source=tests/skip.sh
. "$(dirname "${BASH_SOURCE[0]}")/../skip.sh"

builddir=${top_builddir:-.}
CAT=$builddir/dom0/vchan-cat
ECHO_SERVER=$builddir/examples/echo-server
ECHO_CLIENT=$builddir/examples/echo-client
if [ ! -x "$CAT" ]; then
    echo "FAIL: $CAT not found or not executable: build it first (make)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vchan-$NAME.XXXXXX") || exit 1
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    for p in "$tmp"/*.pid; do
        [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The local vchan platform in a private rendezvous directory.
export VCHAN_DIR=$tmp/run
mkdir -m 700 "$VCHAN_DIR"
export VCHAN_PLATFORM=local
unset VCHAN_DOMID

# Every process runs under this; -w bounds each of vchan-cat's own waits.
LIMIT=(timeout -k 5 40)

failures=0
passes=0
pass() {
    echo "PASS: $*"
    passes=$((passes + 1))
}
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
alive() { kill -0 "$1" 2> /dev/null; }

# pid_of NAME: the pid a process started in the background wrote to
# $tmp/NAME.pid (its own, for kill -9), once it has; 3 s at most.
pid_of() {
    local i
    for i in $(seq 300); do
        [ -s "$tmp/$1.pid" ] && { cat "$tmp/$1.pid"; return 0; }
        sleep 0.01
    done
    return 1
}

# Show files (stderr of processes), indented, when a case fails.
show_err() {
    local f
    for f in "$@"; do
        if [ -s "$f" ]; then
            sed 's/^/      /' "$f" | head -n 20
        fi
    done
}

# Is TCP port $1 in use locally: in state $2 (hex, 0A = LISTEN), or any state without $2?
port_state() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" -v st="${2:-}" '(st == "" || $4 == st) && substr($2, length($2) - 4) == p {
        found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
listening() { port_state "$1" 0A; }

# A TCP port unused now, below the kernel's ephemeral range (so no client
# connection of ours, or its TIME_WAIT, holds it); tests race only with
# themselves here.
free_port() {
    local p lo
    lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    lo=${lo:-32768}
    while :; do
        p=$(( (RANDOM * 32768 + RANDOM) % (lo - 10000) + 10000 ))
        port_state "$p" || { echo "$p"; return; }
    done
}

# wait_listen PORT PID: until something listens on PORT (or PID died); 10 s at most.
wait_listen() {
    local i
    for i in $(seq 1 200); do
        listening "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# wait_file PATH: until it exists; 10 s at most.
wait_file() {
    local i
    for i in $(seq 1 200); do
        [ -e "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

# wait_size FILE BYTES: wait (up to 10 s) until FILE holds BYTES bytes. A client
# can exit once the listener has taken its data off the ring, before the
# listener has written it out.
wait_size() {
    local i
    for i in $(seq 1 200); do
        [ "$(stat -c %s "$1" 2> /dev/null)" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# finish: exit 1 if a case failed, 77 if every case was skipped (skip.sh), else 0.
finish() {
    if [ "$failures" -gt 0 ]; then
        skip_summary
        echo "$NAME.sh: $failures case(s) FAILED"
        exit 1
    fi
    if [ "$skipped_cases" -gt 0 ]; then
        echo "$NAME.sh: $passes case(s) passed"
    else
        echo "$NAME.sh: all $passes cases passed"
    fi
    skip_exit "$passes"
}
