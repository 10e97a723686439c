# SPDX-License-Identifier: ISC
# shellcheck shell=bash
#
# Sourced by hostile.sh and faults.sh (set NAME first): vchan-cat and
# tests/hostile/hostile-peer as processes under test. lib.sh's private
# directory, local platform and PASS/FAIL bookkeeping, and processes
# started in the background whose own pids are known (to kill -9 them, or
# read their CPU time), each under `timeout`.

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PEER=$builddir/tests/hostile/hostile-peer
if [ ! -x "$PEER" ]; then
    echo "FAIL: $PEER not found: build it first (make check builds it)" >&2
    exit 1
fi

seed=${TEST_SEED:-$(($(date +%s) % 100000))}
RANDOM=$seed

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
