#!/bin/bash
# SPDX-License-Identifier: ISC
#
# tests/xen/scenarios/uk-run.sh: the unikernel driver's scenarios on real
# Xen. Boots Xen once through tests/xen/run with uk-dom0.sh in dom0 and
# uk-domu.sh in the Linux domU; dom0 boots our own PV guests (the echo
# service and the client of examples/unikernel-echo) with xl create. Prints
# the per-check summary, the guests' throughput and each step's time.
#
#   tests/xen/scenarios/uk-run.sh [STEP...]      (steps: echo client g2g)
#
# Environment:
#   STAGE (or XEN_STAGE)  a `make install DESTDIR=...` tree with vchan-cat
#                         (default: tests/xen/stage under the current directory)
#   UK_GUEST_DIR          where vchan-uk-echo and vchan-uk-client were built
#                         (default: examples/unikernel-echo under the current directory)
#   XENVCHAN_PEER         a built xenvchan-peer (default: build it with gcc)
#   UK_BIG, UK_MID, UK_SMALL, UK_TINY  bytes per transfer at 64 KiB (the 16 MiB
#                         target, and the rest), 4 KiB and 1-2 KiB rings (default
#                         16 MiB, 4 MiB, 1 MiB, 256 KiB)
#   XEN_TIMEOUT           QEMU time limit of the boot, s (default 450)
#   XEN_KEEP              keep the harness' work directory there
# Exit status: 0 all checks passed; 1 one failed; 2 the run could not be
# made (no stage, no guests, no compiler, the machine did not come up).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly XEN=$(dirname "$HERE")
readonly PROG=uk-run

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 2
}

STAGE=${STAGE:-${XEN_STAGE:-$PWD/tests/xen/stage}}
[ -d "$STAGE" ] || die "no install tree at $STAGE (make install DESTDIR=..., or set STAGE)"
find "$STAGE" -name vchan-cat -type f | grep -q . || die "$STAGE has no vchan-cat"
GUESTS=${UK_GUEST_DIR:-$PWD/examples/unikernel-echo}
for g in vchan-uk-echo vchan-uk-client; do
    [ -f "$GUESTS/$g" ] || die "no $GUESTS/$g: build with make (x86-64, libxen-dev), or set UK_GUEST_DIR"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/uk-scenarios.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

PEER=${XENVCHAN_PEER:-}
if [ -z "$PEER" ]; then
    PEER=$WORK/xenvchan-peer
    "${CC:-gcc}" -O2 -Wall -o "$PEER" "$XEN/xenvchan-peer.c" -lxenvchan ||
        die "cannot build xenvchan-peer (needs libxen-dev)"
fi
"${CC:-gcc}" -O2 -Wall -o "$WORK/xen-data" "$XEN/xen-data.c" || die "cannot build xen-data"

# Settings for both guests' scripts, sourced from /test/bin.
{
    echo "UK_STEPS='$*'"
    [ -z "${UK_BIG:-}" ] || echo "UK_BIG=$((UK_BIG))"
    [ -z "${UK_MID:-}" ] || echo "UK_MID=$((UK_MID))"
    [ -z "${UK_SMALL:-}" ] || echo "UK_SMALL=$((UK_SMALL))"
    [ -z "${UK_TINY:-}" ] || echo "UK_TINY=$((UK_TINY))"
} >"$WORK/uk-params.sh"

args=(--dom0 "$HERE/uk-dom0.sh" --domu "$HERE/uk-domu.sh" --install "$STAGE"
      --add "$GUESTS/vchan-uk-echo" --add "$GUESTS/vchan-uk-client"
      --add "$PEER" --add "$WORK/xen-data" --add "$WORK/uk-params.sh"
      --timeout "${XEN_TIMEOUT:-450}")
[ -z "${XEN_KEEP:-}" ] || args+=(--keep "$XEN_KEEP")

rc=0
"$XEN/run" "${args[@]}" 2>&1 | tee "$WORK/run.log" || rc=${PIPESTATUS[0]}

awk '
    /^==== dom0 script/ { side = "dom0"; next }
    /^==== domU script/ { side = "domU"; next }
    /^==== end of/      { side = ""; next }
    side != "" && /^(PASS|FAIL|PERF|TIME): / { print side, $0 }
' "$WORK/run.log" >"$WORK/lines"

echo
echo "==== unikernel scenarios: summary ===="
awk '
    $2 != "PASS:" && $2 != "FAIL:" { next }
    {
        step = $3; sub(/:$/, "", step)
        if (!(step in seen)) { seen[step] = 1; order[++n] = step }
        if ($2 == "PASS:") pass[step]++; else { fail[step]++; why[step] = why[step] "\n      " $0 }
    }
    END {
        for (i = 1; i <= n; i++) {
            s = order[i]
            printf "  %-4s %-16s %3d passed %3d failed%s\n", fail[s] ? "FAIL" : "ok", s,
                pass[s], fail[s], fail[s] ? why[s] : ""
            tp += pass[s]; tf += fail[s]
        }
        printf "  total: %d steps, %d checks passed, %d failed\n", n, tp, tf
    }
' "$WORK/lines"
if grep -q ' PERF: ' "$WORK/lines"; then
    echo "==== throughput (the guest's clock, under emulation) ===="
    awk '$2 == "PERF:" { printf "  %-12s %10d bytes in %7s s = %7s MB/s\n", $3, $4, $5, $6 }' "$WORK/lines"
fi
if grep -q ' TIME: ' "$WORK/lines"; then
    echo "==== time per scenario (dom0 wall clock) ===="
    awk '$2 == "TIME:" { $1 = ""; $2 = ""; sub(/^ +/, ""); printf "  %s\n", $0 }' "$WORK/lines"
fi
grep -h 'wall time' "$WORK/run.log" | tail -n 1 | sed 's/^/  harness: /' || true

if grep -q ' FAIL: ' "$WORK/lines"; then
    [ "$rc" != 0 ] || rc=1
fi
if [ "$rc" = 0 ] && ! grep -q ' PASS: ' "$WORK/lines"; then
    echo "$PROG: no check reported a result" >&2
    rc=1
fi
case $rc in
    0) echo "$PROG: PASS" ;;
    2) echo "$PROG: ERROR: the guests did not come up" ;;
    *) echo "$PROG: FAIL" ;;
esac
exit "$rc"
