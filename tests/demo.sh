#!/bin/bash
# SPDX-License-Identifier: ISC
#
# make demo: a real 64 MiB transfer between two vchan-cat processes on the
# local platform (no Xen needed), checked byte for byte.
#
#   vchan-cat -l vchan://0/demo > out &     # server: receives
#   vchan-cat vchan://0/demo < in           # client: sends, waits until consumed
#
# Environment: top_builddir (default .), DEMO_MIB (default 64).
set -euo pipefail

builddir=${top_builddir:-.}
cat=$builddir/dom0/vchan-cat
mib=${DEMO_MIB:-64}

if [ ! -x "$cat" ]; then
    echo "demo: $cat not found: build first (make, or ./build.sh build)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vchan-demo.XXXXXX")
server=
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A private rendezvous directory: no clash with other users or runs.
export VCHAN_DIR=$tmp/run
mkdir "$VCHAN_DIR"
chmod 700 "$VCHAN_DIR"
export VCHAN_PLATFORM=local

echo "demo: generating $mib MiB of random data"
head -c "$((mib * 1024 * 1024))" /dev/urandom > "$tmp/in"

start=$(date +%s%N)
"$cat" -l vchan://0/demo < /dev/null > "$tmp/out" &
server=$!
# The client waits for the server to appear (up to 30 s), so no sleep is needed.
if ! "$cat" vchan://0/demo < "$tmp/in"; then
    echo "demo: FAIL: the sending vchan-cat failed" >&2
    exit 1
fi
if ! wait "$server"; then
    server=
    echo "demo: FAIL: the receiving vchan-cat failed" >&2
    exit 1
fi
server=
end=$(date +%s%N)

in_size=$(stat -c %s "$tmp/in")
out_size=$(stat -c %s "$tmp/out")
in_sum=$(sha256sum < "$tmp/in" | cut -d' ' -f1)
out_sum=$(sha256sum < "$tmp/out" | cut -d' ' -f1)
ns=$((end - start))
if [ "$ns" -le 0 ]; then
    ns=1
fi
# MB/s = bytes / (ns / 1e9) / 1e6 = bytes * 1000 / ns
mbps=$((in_size * 1000 / ns))
ms=$((ns / 1000000))

echo "demo: sent     $in_size bytes  sha256 $in_sum"
echo "demo: received $out_size bytes  sha256 $out_sum"
printf 'demo: %d.%03d s, %d MB/s (local platform, 64 KiB rings)\n' $((ms / 1000)) $((ms % 1000)) "$mbps"
if [ "$in_sum" != "$out_sum" ] || [ "$in_size" != "$out_size" ]; then
    echo "demo: FAIL: the data differ" >&2
    exit 1
fi
echo "demo: OK"
