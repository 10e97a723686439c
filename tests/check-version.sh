#!/bin/bash
# SPDX-License-Identifier: ISC
#
# The version lives in one place, configure.ac's AC_INIT (RELEASING.md).
# Everything else that shows it must agree:
#   debian/changelog   the first entry's upstream version (before the last "-")
#   NEWS               the first "vchan-conduit X.Y.Z" heading
#   docs/*.1, *.3      the .TH line's "vchan-conduit X.Y.Z"
#   vchan-cat --version  when built (top_builddir/dom0/vchan-cat): it prints
#                      config.h's PACKAGE_VERSION, so this proves the build
#                      was configured from this configure.ac
# Run by make check, or by hand.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(dirname "$here")}
top_builddir=${top_builddir:-$top_srcdir}

version=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")
if [ -z "$version" ]; then
    echo "check-version: no version in configure.ac's AC_INIT" >&2
    exit 1
fi

status=0
bad() {
    echo "check-version: $*"
    status=1
}

# debian/changelog: "vchan-conduit (0.1.0-1) unstable; urgency=medium"
first=$(head -n 1 "$top_srcdir/debian/changelog")
deb=$(sed -n '1s/^vchan-conduit (\([^)]*\)).*/\1/p' "$top_srcdir/debian/changelog")
if [ -z "$deb" ]; then
    bad "debian/changelog: first line '$first' is not 'vchan-conduit (VERSION-REVISION) ...'"
else
    upstream=${deb#*:}
    upstream=${upstream%-*}
    if [ "$upstream" != "$version" ]; then
        bad "debian/changelog says $deb (upstream $upstream), configure.ac $version: add a changelog entry (RELEASING.md)"
    fi
fi

news=$(grep -m1 -E '^vchan-conduit [0-9]' "$top_srcdir/NEWS" || true)
if [ "${news#vchan-conduit }" = "$news" ] || [ "$(awk '{print $2}' <<< "$news")" != "$version" ]; then
    bad "NEWS: first heading is '${news:-none}', not 'vchan-conduit $version ...'"
fi

for page in "$top_srcdir"/docs/*.[13]; do
    th=$(grep -m1 '^\.TH' "$page")
    if [[ $th != *"\"vchan-conduit $version\""* ]]; then
        bad "${page#"$top_srcdir"/}: .TH says '$th', not \"vchan-conduit $version\""
    fi
done

cat=$top_builddir/dom0/vchan-cat
if [ -x "$cat" ]; then
    got=$("$cat" --version)
    if [ "$got" != "vchan-cat (vchan-conduit) $version" ]; then
        bad "vchan-cat --version says '$got', configure.ac $version (re-run configure)"
    fi
fi

if [ "$status" -ne 0 ]; then
    echo "check-version: FAIL"
    exit 1
fi
echo "check-version: $version in configure.ac, debian/changelog ($deb), NEWS, the manual pages${got:+ and vchan-cat --version}"
