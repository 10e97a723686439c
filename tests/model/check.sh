#!/bin/bash
# SPDX-License-Identifier: ISC
#
# Model-check tests/model/notify.pml with spin: every variant of the notify
# protocol that libvchan uses (with and without ring.c's load-before-RMW
# fast path, several ring sizes) must be free of lost wake-ups; the variant
# without fences must not be, which shows the model can see one.
#
# Run by make check (skipped without spin: apt-get install spin) and by
# make check-model. Environment: CC (default cc), top_srcdir.
set -u

here=$(cd "$(dirname "$0")" && pwd)
model=${top_srcdir:+$top_srcdir/tests/model}
model=${model:-$here}/notify.pml
CC=${CC:-cc}
CC=${CC%% *} # the compiler alone: no instrumentation for pan

NAME=model
# shellcheck source=tests/skip.sh
. "$here/../skip.sh"
need_cmd spin spin
tmp=$(mktemp -d "${TMPDIR:-/tmp}/notify-model.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cp "$model" "$tmp/notify.pml"
cd "$tmp" || exit 1

failures=0
# check EXPECT DEFINES...: EXPECT is ok (no error) or lost (an invalid end state).
check() {
    local expect=$1 got
    shift
    rm -f pan pan.* ./*.trail
    if ! spin "${@/#/-D}" -a notify.pml > spin.log 2>&1 ||
        ! "$CC" -O2 -DSAFETY -o pan pan.c > cc.log 2>&1; then
        echo "FAIL: $*: could not build the verifier"
        cat spin.log cc.log | head -n 20
        failures=$((failures + 1))
        return
    fi
    ./pan -m1000000 > pan.log 2>&1
    if grep -q 'errors: 0' pan.log; then
        got=ok
    elif grep -q 'invalid end state' pan.log; then
        got=lost
    else
        got=error
    fi
    local states
    states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' pan.log)
    if [ "$got" = "$expect" ]; then
        echo "PASS: $*: $([ "$got" = ok ] && echo "no lost wake-up" || echo "lost wake-up found, as expected") ($states states)"
    else
        echo "FAIL: $*: expected $expect, got $got"
        if [ -f notify.pml.trail ]; then
            spin "${@/#/-D}" -t -p notify.pml | head -n 80
        else
            cat pan.log
        fi
        failures=$((failures + 1))
    fi
}

for skip in 0 1; do
    for size in "N=3 SIZE=1" "N=5 SIZE=2" "N=6 SIZE=3"; do
        # shellcheck disable=SC2086
        check ok SKIP_RMW=$skip FENCE=1 $size
    done
done
# Without fences, the fast path lets a load pass the buffered index store.
check lost SKIP_RMW=1 FENCE=0 N=3 SIZE=1
# A locked read-modify-write is itself a full barrier on x86.
check ok SKIP_RMW=0 FENCE=0 N=3 SIZE=1
exit $((failures > 0))
