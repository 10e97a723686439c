#!/bin/bash
# SPDX-License-Identifier: ISC
#
# ./build.sh deps     install the Debian build dependencies that are missing
# ./build.sh build    deps, autoreconf (when needed), configure (once), make
# ./build.sh demo     build, then a 64 MiB transfer between two vchan-cat processes
# ./build.sh check    build, then the test suite (make check)
# ./build.sh deb-deps install what dpkg-buildpackage needs (debian/control's
#                     Build-Depends, debhelper, lintian)
#
# Arguments after the subcommand go to ./configure (and re-run it).
set -euo pipefail

cd "$(dirname "$0")"

# Debian packages: the build, the test suite and its real peers (socat,
# openssl), valgrind and clang for the checking builds.
DEPS=(
    build-essential autoconf automake libtool pkg-config make
    libxen-dev libssl-dev libsodium-dev libcunit1-dev
    socat openssl valgrind clang libclang-rt-14-dev spin coreutils
    python3-dissononce
)

JOBS=$(nproc 2>/dev/null || echo 2)

say() { printf '==> %s\n' "$*"; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '4,11s/^# \{0,1\}//p' "$0"
    exit 2
}

deps() {
    local missing=() pkg
    for pkg in "${DEPS[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: install them by hand"
    local sudo=
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "missing packages (${missing[*]}): run as root or install sudo"
        sudo=sudo
    fi
    say "installing: ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
}

build() {
    deps
    if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ] \
        || [ Makefile.am -nt Makefile.in ]; then
        say "autoreconf -fi"
        autoreconf -fi
    fi
    if [ $# -gt 0 ] || [ ! -f config.status ]; then
        say "./configure $*"
        ./configure "$@"
    fi
    say "make -j$JOBS"
    make -j"$JOBS"
}

# Print the log of every failed test (test-suite.log gathers them).
show_failures() {
    if [ -f test-suite.log ]; then
        printf '\n==> test-suite.log\n' >&2
        cat test-suite.log >&2
    fi
}

# ---- Debian packages (issue 17): the Build-Depends of debian/control,
# read by apt itself (apt-get build-dep on the source directory), and the
# tools of a package build (debhelper, lintian; man-db for tests/deb/run).
deb_deps() {
    local as_root=()
    command -v apt-get >/dev/null || die "deb-deps needs apt-get (Debian)"
    [ "$(id -u)" = 0 ] || as_root=(sudo)
    say "installing debhelper, lintian, man-db and the Build-Depends of debian/control"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends dpkg-dev debhelper lintian man-db
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q ./
}
# ---- end of Debian packages

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
deps)
    deps
    ;;
build)
    build "$@"
    ;;
demo)
    build "$@"
    make demo
    ;;
deb-deps)
    deb_deps
    ;;
check)
    build "$@"
    say "make -j$JOBS check"
    if ! make -j"$JOBS" check; then
        show_failures
        die "make check failed"
    fi
    ;;
*)
    usage
    ;;
esac
