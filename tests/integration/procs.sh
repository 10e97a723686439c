# SPDX-License-Identifier: ISC
# shellcheck shell=bash
#
# Sourced by hostile.sh and faults.sh (set NAME first): vchan-cat and
# tests/hostile/hostile-peer as processes under test. A private directory
# ($tmp) and VCHAN_DIR on the local platform, PASS/FAIL bookkeeping, and
# processes started in the background whose own pids are known (to kill -9
# them, or read their CPU time), each under `timeout`.

builddir=${top_builddir:-.}
CAT=$builddir/dom0/vchan-cat
PEER=$builddir/tests/hostile/hostile-peer
for bin in "$CAT" "$PEER"; do
    if [ ! -x "$bin" ]; then
        echo "FAIL: $bin not found: build it first (make check builds both)" >&2
        exit 1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vchan-$NAME.XXXXXX") || exit 1
cleanup() {
    local p
    for p in "$tmp"/*.pid; do
        [ -f "$p" ] && kill -9 "$(cat "$p")" 2> /dev/null
    done
    wait 2> /dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export VCHAN_DIR=$tmp/run
mkdir -m 700 "$VCHAN_DIR"
export VCHAN_PLATFORM=local
unset VCHAN_DOMID

seed=${TEST_SEED:-$(($(date +%s) % 100000))}
RANDOM=$seed

failures=0
pass() { echo "PASS: $*"; }
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
alive() { kill -0 "$1" 2> /dev/null; }

# run_bg NAME STDIN ARGS...: run ARGS with STDIN, output to $tmp/NAME.out and
# .err, its own pid in $tmp/NAME.pid (pid_of NAME), under a time limit;
# $started is the pid to wait for (the time limit's).
run_bg() {
    local name=$1 input=$2
    shift 2
    rm -f "$tmp/$name.pid"
    # The subshell exits normally: the shell's "Killed" notice goes to /dev/null.
    (
        timeout -k 2 60 bash -c 'echo $$ > "$0"; i=$1; shift; exec "$@" < "$i"' \
            "$tmp/$name.pid" "$input" "$@" > "$tmp/$name.out" 2> "$tmp/$name.err"
        exit $?
    ) 2> /dev/null &
    started=$!
}

pid_of() {
    local i
    for i in $(seq 300); do
        [ -s "$tmp/$1.pid" ] && { cat "$tmp/$1.pid"; return 0; }
        sleep 0.01
    done
    return 1
}

# wait_for PATH HUNDREDTHS: until PATH exists, at most HUNDREDTHS/100 s.
wait_for() {
    local i
    for i in $(seq "$2"); do
        [ -e "$1" ] && return 0
        sleep 0.01
    done
    return 1
}

# cpu_percent PID SECS: the share of one CPU that PID used over SECS (user +
# system, from /proc/PID/stat); empty when it ended meanwhile.
cpu_percent() {
    local c0 c1 t0 t1 hz
    hz=$(getconf CLK_TCK)
    c0=$(awk '{ print $14 + $15 }' "/proc/$1/stat" 2> /dev/null)
    t0=$(now_ms)
    sleep "$2"
    c1=$(awk '{ print $14 + $15 }' "/proc/$1/stat" 2> /dev/null)
    t1=$(now_ms)
    if [ -n "$c0" ] && [ -n "$c1" ] && alive "$1"; then
        echo $(((c1 - c0) * 1000 * 100 / hz / (t1 - t0)))
    fi
}

sanitizer_report() {
    grep -Eq 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$1"
}
