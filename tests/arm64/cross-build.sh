#!/bin/bash
# SPDX-License-Identifier: ISC
#
# tests/arm64/cross-build.sh BUILD_DIR [DESTDIR]
#
# Cross-builds this source tree for arm64 (aarch64-linux-gnu) in BUILD_DIR,
# with the Xen platform, from a Debian 12 amd64 machine (issue 17):
#   - installs what is missing (as root, with apt-get): the arm64 foreign
#     architecture, crossbuild-essential-arm64, the :arm64 development
#     packages that are Multi-Arch (libssl-dev, libsodium-dev, libcunit1-dev)
#     and the arm64 Xen runtime libraries (libxenmisc4.17 holds libxenvchan);
#   - libxen-dev is not Multi-Arch: its arm64 package is downloaded and
#     unpacked (dpkg -x) into BUILD_DIR/sysroot, its pkg-config files are
#     rewritten to point into the sysroot and its .so links to the runtime
#     libraries of /usr/lib/aarch64-linux-gnu;
#   - the sources: the tracked files of the git work tree (their working
#     copies) are copied to BUILD_DIR/src and autoreconf'ed there (the
#     source tree is usually configured in place, and automake refuses a
#     VPATH build of it); a tree without git that is not configured in place
#     is used as the VPATH source directly; otherwise its `make dist`
#     tarball is unpacked;
#   - configure --host=aarch64-linux-gnu in BUILD_DIR, make, and with
#     DESTDIR `make install DESTDIR=DESTDIR`.
# A second run only redoes what changed (make's own rules).
#
# Afterwards BUILD_DIR/Makefile names CC, HAVE_XEN_VALUE (yes), XEN_CFLAGS,
# XEN_LIBS, XENVCHAN_CFLAGS, XENVCHAN_LIBS, CFLAGS, CPPFLAGS, LDFLAGS: what
# tests/xen/run-arm64 reads to build its arm64 peers.
#
# Environment: JOBS (make -j, default nproc).
# Exit status: 0 built, 1 failed.

set -euo pipefail

readonly PROG=cross-build.sh
readonly HOST=aarch64-linux-gnu
readonly MA_LIBDIR=/usr/lib/$HOST

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}
say() { printf '[%s] %s\n' "$PROG" "$*"; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $PROG BUILD_DIR [DESTDIR]"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
readonly HERE TOP
mkdir -p "$1"
BUILD=$(cd "$1" && pwd)
readonly BUILD
DESTDIR=
if [ $# -eq 2 ]; then
    mkdir -p "$2"
    DESTDIR=$(cd "$2" && pwd)
fi
readonly DESTDIR
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
readonly SYSROOT=$BUILD/sysroot

# ---- packages
# Host tools, the cross compiler, the arm64 development packages that
# install beside their amd64 twins, and the arm64 Xen runtime libraries.
PKGS=(
    autoconf automake libtool pkg-config make
    crossbuild-essential-arm64
    libssl-dev:arm64 libsodium-dev:arm64 libcunit1-dev:arm64
    libxenmisc4.17:arm64 libxengnttab1:arm64 libxenevtchn1:arm64
    libxenstore4:arm64 libxentoollog1:arm64 libxentoolcore1:arm64
    libxencall1:arm64 libxenforeignmemory1:arm64
)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

install_packages() {
    local missing=() p
    for p in "${PKGS[@]}"; do
        installed "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        say "dpkg --add-architecture arm64"
        as_root dpkg --add-architecture arm64
    fi
    say "installing: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
}

# libxen-dev:arm64 into the sysroot, once per package version.
make_sysroot() {
    local ver deb stamp f target pcdir
    ver=$(dpkg-query -W -f='${Version}' libxenmisc4.17:arm64)
    stamp=$SYSROOT/.libxen-dev-$ver
    [ -f "$stamp" ] && return 0
    say "libxen-dev:arm64 $ver into $SYSROOT"
    rm -rf "$SYSROOT" "$BUILD/debs"
    mkdir -p "$BUILD/debs"
    # apt-get download writes into the current directory; _apt may not be
    # able to, hence the warning it prints as root: harmless.
    (cd "$BUILD/debs" && apt-get download "libxen-dev:arm64=$ver") ||
        die "cannot download libxen-dev:arm64=$ver"
    deb=$(ls "$BUILD"/debs/libxen-dev_*_arm64.deb)
    dpkg -x "$deb" "$SYSROOT"
    # The .so development links name the runtime libraries, which the
    # :arm64 runtime packages installed in the multiarch directory.
    for f in "$SYSROOT$MA_LIBDIR"/*.so; do
        [ -L "$f" ] || continue
        target=$(readlink "$f")
        case $target in /*) target=${target##*/} ;; esac
        [ -e "$MA_LIBDIR/$target" ] || continue
        ln -sfn "$MA_LIBDIR/$target" "$f"
    done
    pcdir=$SYSROOT$MA_LIBDIR/pkgconfig
    for f in "$pcdir"/*.pc; do
        sed -i -e "s|^prefix=/usr\$|prefix=$SYSROOT/usr|" \
            -e "s|^includedir=/usr/include\$|includedir=$SYSROOT/usr/include|" \
            -e "s|^libdir=$MA_LIBDIR\$|libdir=$SYSROOT$MA_LIBDIR|" "$f"
    done
    touch "$stamp"
}

# ---- sources: prints the source directory to configure from.
prepare_sources() {
    local src=$BUILD/src tarball
    if git -C "$TOP" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        mkdir -p "$src"
        # Only files whose content changed get a new mtime (tar keeps the
        # work tree's), so a second run rebuilds only what changed.
        (cd "$TOP" && git ls-files -z | while IFS= read -r -d '' f; do
            [ -e "$f" ] && printf '%s\0' "$f"
        done | tar --null -T - -cf -) | tar -xf - -C "$src"
        if [ ! -x "$src/configure" ] || [ "$src/configure.ac" -nt "$src/configure" ] ||
            [ "$src/Makefile.am" -nt "$src/Makefile.in" ]; then
            say "autoreconf -fi in $src" >&2
            (cd "$src" && autoreconf -fi) >&2
        fi
        printf '%s\n' "$src"
    elif [ ! -f "$TOP/config.status" ] && [ -x "$TOP/configure" ]; then
        printf '%s\n' "$TOP"
    else
        [ -f "$TOP/Makefile" ] || die "cannot make the sources: no git, no configure"
        say "make dist-gzip in $TOP" >&2
        make -C "$TOP" -s dist-gzip >&2
        tarball=$TOP/vchan-conduit-$(sed -n 's/^PACKAGE_VERSION = //p' "$TOP/Makefile").tar.gz
        rm -rf "$BUILD/dist" && mkdir -p "$BUILD/dist"
        tar -xzf "$tarball" -C "$BUILD/dist"
        ls -d "$BUILD"/dist/vchan-conduit-*/ | head -n 1 | sed 's|/$||'
    fi
}

install_packages
command -v "$HOST-gcc" >/dev/null || die "no $HOST-gcc after installing crossbuild-essential-arm64"
make_sysroot
SRC=$(prepare_sources)
readonly SRC

# Only arm64 pkg-config files: the sysroot's (libxen-dev) and the
# multiarch ones of the :arm64 development packages.
export PKG_CONFIG_LIBDIR=$SYSROOT$MA_LIBDIR/pkgconfig:$MA_LIBDIR/pkgconfig:/usr/share/pkgconfig
export PKG_CONFIG_PATH=
# The Xen libraries' own dependencies are found at link time through the
# multiarch directory.
LDFLAGS_X="-L$SYSROOT$MA_LIBDIR -Wl,-rpath-link=$MA_LIBDIR"
CPPFLAGS_X="-I$SYSROOT/usr/include"

cd "$BUILD"
# Configure once, or again when the source's configure changed.
if [ ! -f config.status ] || [ "$SRC/configure" -nt config.status ] ||
    ! grep -q -- "--host=$HOST" config.status; then
    # New configure results (flags) do not rebuild objects by themselves.
    [ ! -f Makefile ] || make -s clean >/dev/null 2>&1 || true
    say "configure --host=$HOST (sources $SRC)"
    "$SRC/configure" --host="$HOST" --prefix=/usr --with-xen \
        PKG_CONFIG="$(command -v pkg-config)" \
        CPPFLAGS="$CPPFLAGS_X" LDFLAGS="$LDFLAGS_X" >configure.out 2>&1 ||
        { tail -n 40 configure.out >&2; tail -n 60 config.log >&2; die "configure failed"; }
fi
grep -q '^HAVE_XEN_VALUE = yes' Makefile || die "configured without the Xen platform"
say "make -j$JOBS"
make -j"$JOBS" -s
prog=dom0/vchan-cat
[ -f dom0/.libs/vchan-cat ] && prog=dom0/.libs/vchan-cat
head -c 20 "$prog" | od -An -tx1 | tr -d ' \n' | grep -q '^7f454c46020101.*b700$' ||
    die "$prog is not an arm64 ELF program"
if [ -n "$DESTDIR" ]; then
    say "make install DESTDIR=$DESTDIR"
    make -s install DESTDIR="$DESTDIR"
fi
say "done: $(sed -n 's/^CC = //p' Makefile), Xen platform yes"
