#!/bin/sh
# SPDX-License-Identifier: ISC
#
# The real-Xen benchmark (`make bench-xen`, tests/xen/run-bench), for BOTH
# guests: tests/xen/run boots once with
#   tests/xen/run --net --dom0 bench-xen.sh --domu bench-xen.sh \
#                 --add bench-xen --add bench-params.sh
# dom0 runs `bench-xen dom0` (it serves and prints the tables), the domU
# `bench-xen domu` (it connects), with the same options: our vchan, Xen's
# libxenvchan and, when the network came up, TCP between the two domains
# (tests/xen/bench-xen.c says how each is measured).
#
# The domU brings its network link up first (/test/net-up.sh, from run's
# --net) and tells dom0 in xenstore whether it works; without it the run
# goes on with the two vchans alone and says so.

# shellcheck source=/dev/null
. /test/lib.sh

export VCHAN_PLATFORM=xen

# Settings, written by run-bench into /test/bin/bench-params.sh:
# BX_ARGS (options for bench-xen), BX_CONTENDERS, BX_NET (0: no TCP),
# BX_OVERCOMMIT (pin, cap or empty: run-bench's BENCH_XEN_OVERCOMMIT).
BX_ARGS=
BX_CONTENDERS=ours,xen,tcp
BX_NET=1
BX_OVERCOMMIT=
# shellcheck source=/dev/null
[ -r /test/bin/bench-params.sh ] && . /test/bin/bench-params.sh

if [ "${VCHAN_XEN_ROLE:-}" = dom0 ]; then
    BX_XS=/local/domain/$DOMU_ID/data/bench
else
    BX_XS=/local/domain/$DOMID/data/bench
fi

# contenders NET: BX_CONTENDERS, less tcp unless the network works.
contenders() {
    _out=
    _ifs=$IFS
    IFS=,
    for _c in $BX_CONTENDERS; do
        [ "$_c" = tcp ] && [ "$1" != ok ] && continue
        _out=${_out:+$_out,}$_c
    done
    IFS=$_ifs
    echo "$_out"
}

if [ "${VCHAN_XEN_ROLE:-}" = dom0 ]; then
    # The domU's verdict on its network; it boots meanwhile.
    net=$(vx_wait_key "$BX_XS/net" 150) || { echo "bench: no word from the domU"; exit 1; }
    [ "$net" = ok ] || echo "bench: network: $net: TCP left out"
    # An overcommitted host on purpose: both domains' vCPUs on one physical
    # CPU, or dom0 capped, so each side's spin costs the other its time.
    case $BX_OVERCOMMIT in
    pin)
        xl vcpu-pin Domain-0 all 0 && xl vcpu-pin "$DOMU_ID" all 0 ||
            { echo "bench: xl vcpu-pin failed"; exit 1; }
        echo "bench: overcommitted: every vCPU of dom0 and the domU pinned to physical CPU 0"
        xl vcpu-list ;;
    cap)
        xl sched-credit -d Domain-0 -c 50 || { echo "bench: xl sched-credit failed"; exit 1; }
        echo "bench: overcommitted: dom0 capped at 50% of one CPU"
        xl sched-credit ;;
    esac
    # shellcheck disable=SC2086 # BX_ARGS: several options on purpose
    bench-xen dom0 "$DOMU_ID" -c "$(contenders "$net")" $BX_ARGS
    exit $?
fi

net=off
if [ "$BX_NET" = 1 ]; then
    case ",$BX_CONTENDERS," in
        *,tcp,*)
            if [ -x /test/net-up.sh ] && /test/net-up.sh 60; then net=ok; else net=failed; fi ;;
    esac
fi
xenstore-write "$BX_XS/net" "$net"
# shellcheck disable=SC2086
bench-xen domu 0 -c "$(contenders "$net")" $BX_ARGS
