#!/bin/bash
# SPDX-License-Identifier: ISC
#
# vchan-cat against socat over a UNIX socket: the same random file through
# each, both directions (the connecting side sends, then the listening one),
# interleaved rounds, every copy compared with cmp. Prints MB/s per transfer
# and the median of each row. A benchmark, not a test.
#
#   tests/bench/cat-vs-socat.sh [ROUNDS [MIB [DIR]]]     (3 rounds, 1024 MiB, /dev/shm)
#
# BENCH_CPU: two (default: as the scheduler likes), one (every process pinned
# to CPU 0 with taskset), hog (a busy loop on every CPU for the whole run).
# VCHAN_CAT: the vchan-cat to run (default: the build tree's). Each transfer
# is timed from the connecting side's start to both sides' exit; the listener
# is up (its socket exists) before that.
set -euo pipefail

rounds=${1:-3} mib=${2:-1024} base=${3:-/dev/shm}
here=$(cd "$(dirname "$0")/../.." && pwd)
VC=${VCHAN_CAT:-$here/dom0/vchan-cat}
command -v socat >/dev/null || { echo "cat-vs-socat: needs socat" >&2; exit 2; }
[ -x "$VC" ] || { echo "cat-vs-socat: no vchan-cat at $VC (build first)" >&2; exit 2; }

cpu=${BENCH_CPU:-two} hogs=''
case $cpu in
two) ;;
one) exec taskset -c 0 env BENCH_CPU=one-pinned "$0" "$@" ;;
one-pinned) cpu=one ;;
hog) ;;
*) echo "cat-vs-socat: BENCH_CPU must be two, one or hog" >&2; exit 2 ;;
esac

work=$(mktemp -d "$base/cat-vs-socat.XXXXXX")
trap 'kill $hogs $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
if [ "$cpu" = hog ]; then
    for i in $(seq 0 $(($(nproc) - 1))); do
        taskset -c "$i" sh -c 'while :; do :; done' & hogs="$hogs $!"
    done
fi
export VCHAN_DIR=$work/rdv
mkdir -p "$VCHAN_DIR"
cd "$work"
head -c "$((mib * 1024 * 1024))" /dev/urandom >in
size=$(stat -c %s in)

up() { # wait until the listener's socket exists
    for _ in $(seq 400); do
        if [ "$1" = vchan ] && [ -n "$(ls "$VCHAN_DIR")" ]; then return 0; fi
        if [ "$1" = unix ] && [ -S s ]; then return 0; fi
        sleep 0.025
    done
    echo "cat-vs-socat: the $1 listener did not come up" >&2
    exit 1
}

one() {
    local t0 t1
    rm -f s out
    case $1 in
    vchan-cat,connect-sends)
        "$VC" -l vchan://0/b </dev/null >out & up vchan
        t0=$(date +%s%N); "$VC" vchan://0/b <in ;;
    vchan-cat,listen-sends)
        "$VC" -l vchan://0/b <in & up vchan
        t0=$(date +%s%N); "$VC" vchan://0/b </dev/null >out ;;
    socat,connect-sends)
        socat -b 65536 -u UNIX-LISTEN:s STDOUT >out & up unix
        t0=$(date +%s%N); socat -b 65536 -u STDIN UNIX-CONNECT:s <in ;;
    socat,listen-sends)
        socat -b 65536 -u STDIN UNIX-LISTEN:s <in & up unix
        t0=$(date +%s%N); socat -b 65536 -u UNIX-CONNECT:s STDOUT >out ;;
    esac
    wait $(jobs -p | grep -vxF -f <(printf '%s\n' $hogs) || true)
    t1=$(date +%s%N)
    cmp -s in out || { echo "cat-vs-socat: $1: output differs from input" >&2; exit 1; }
    echo "$1 $((size * 1000 / (t1 - t0)))"
}

echo "# $mib MiB, $rounds rounds, MB/s, CPUs: $cpu; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$rounds"); do
    for k in vchan-cat,connect-sends socat,connect-sends vchan-cat,listen-sends socat,listen-sends; do
        one "$k"
    done
done | tee "$work/results"
echo "# medians"
for k in vchan-cat,connect-sends socat,connect-sends vchan-cat,listen-sends socat,listen-sends; do
    printf '%-24s %s\n' "$k" "$(awk -v k="$k" '$1 == k {print $2}' "$work/results" | sort -n |
        awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')"
done
