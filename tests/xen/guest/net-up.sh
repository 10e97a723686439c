#!/bin/sh
# SPDX-License-Identifier: ISC
#
# /test/net-up.sh in the domU (tests/xen/run --net): bring up the link to
# dom0 that netfront gives (the domU's init has loaded xen-netfront): wait
# for eth0, give it 10.0.0.2/24, and wait until dom0 (10.0.0.1) answers.
#
#   /test/net-up.sh [SECS]     exit 0 when dom0 answers within SECS (30)

limit=${1:-30}
i=0
until [ -e /sys/class/net/eth0 ]; do
    i=$((i + 1))
    if [ "$i" -gt $((limit * 10)) ]; then
        echo "net-up: no eth0 after $limit s (is xen-netfront loaded? --net given?)" >&2
        exit 1
    fi
    sleep 0.1
done
ip addr add 10.0.0.2/24 dev eth0 2>/dev/null
ip link set eth0 up || exit 1
# The first packets may go before netback has connected: retry.
i=0
until ping -c 1 -W 1 10.0.0.1 >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge "$limit" ]; then
        echo "net-up: dom0 (10.0.0.1) does not answer after $limit tries" >&2
        exit 1
    fi
done
exit 0
