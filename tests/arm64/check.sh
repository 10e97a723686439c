#!/bin/bash
# SPDX-License-Identifier: ISC
#
# tests/arm64/check.sh BUILD_DIR: what `make check-arm64` runs. The arm64
# cross build (tests/arm64/cross-build.sh BUILD_DIR), then its own
# `make check` (the unit suite, the local-platform integration tests, the
# freestanding core checks with the cross compiler) with every arm64
# program run by qemu-user through binfmt_misc (qemu-user-static,
# binfmt-support, installed here when missing). The arm64 shared libraries
# are the :arm64 packages' in /usr/lib/aarch64-linux-gnu, which the arm64
# dynamic loader (libc6:arm64) finds.
#
# Emulation on an x86-64 host does not reorder memory like ARM hardware:
# these runs are the smoke test of the arm64 code, docs/memory-ordering.md
# is the proof of its ordering.
#
# Exit status: 0 passed, 77 qemu-user cannot run arm64 programs here (the
# reason is printed), 1 failed.
set -euo pipefail

readonly PROG=check-arm64
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
skip() { printf '%s: SKIP: %s\n' "$PROG" "$*" >&2; exit 77; }
say() { printf '[%s] %s\n' "$PROG" "$*"; }

[ $# -eq 1 ] || die "usage: $PROG BUILD_DIR"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
T0=$(date +%s)

bash "$HERE/cross-build.sh" "$1" || die "the arm64 cross build failed"
BUILD=$(cd "$1" && pwd)
readonly BUILD
say "cross build: $(($(date +%s) - T0)) s"

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
if ! installed qemu-user-static || ! installed binfmt-support; then
    [ "$(id -u)" = 0 ] || skip "qemu-user-static and binfmt-support are not installed (run as root)"
    say "installing qemu-user-static binfmt-support"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        qemu-user-static binfmt-support
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ] && [ "$(id -u)" = 0 ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && [ "$(id -u)" = 0 ]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
    skip "binfmt_misc has no qemu-aarch64 entry (no binfmt_misc in this container?)"

# The suite's programs must really be arm64 code run by qemu.
make -C "$BUILD" -s -j"${JOBS:-$(nproc 2>/dev/null || echo 2)}" check TESTS= >/dev/null
elf=$BUILD/tests/unit/test_ring
[ -f "$BUILD/tests/unit/.libs/test_ring" ] && elf=$BUILD/tests/unit/.libs/test_ring
file -L "$elf" | grep -q 'ARM aarch64' || die "$elf is not an arm64 program"
"$elf" >/dev/null 2>&1 || die "the arm64 test_ring does not run under qemu-user"

say "make check in $BUILD (arm64 under qemu-user)"
# churn's resident-memory bound (1 MiB) measures qemu's own translation
# cache too, which grows as new code paths are translated: 4 MiB here;
# descriptors and mappings stay exact.
export CHURN_RSS_KIB=${CHURN_RSS_KIB:-4096}
# The cross build's sources are a copy in BUILD/src, with no ../shared beside
# them: point test_noise at this tree's vectors (it skips without them).
if [ -z "${NOISE_VECTORS:-}" ] && [ -r "$HERE/../../../shared/noise-vectors/cacophony.txt" ]; then
    NOISE_VECTORS=$(cd "$HERE/../../../shared/noise-vectors" && pwd)/cacophony.txt
    export NOISE_VECTORS
fi
make -C "$BUILD" -j"${JOBS:-$(nproc 2>/dev/null || echo 2)}" check ||
    { cat "$BUILD/test-suite.log" >&2 || true; die "the arm64 suite failed"; }
say "passed in $(($(date +%s) - T0)) s"
