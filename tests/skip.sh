# SPDX-License-Identifier: ISC
# shellcheck shell=bash
#
# The skip policy of the shell tests (tests/README.md, "Skipped tests"), in
# one place. A test that cannot run here (a missing program, not root, no
# IPv6, no Xen) says why and is counted as SKIP by `make check` (automake's
# exit status 77), never as PASS; a case of a test that cannot run says so
# with skip_case and is counted in the test's last line.
#
#     NAME=foo; . "$top_srcdir/tests/skip.sh"   (or through integration/lib.sh)
#     need_cmd socat socat                      # skips the whole test
#     skip_case "IPv6 cases: no IPv6 here"      # one case; the test goes on
#     skip_summary                              # "foo: 1 case(s) SKIPPED: ..."

skipped_cases=0
skipped_why=()

# skip REASON: the whole test cannot run here.
skip() {
    echo "SKIP: ${NAME:-${0##*/}}: $*"
    exit 77
}

# need_cmd COMMAND [PACKAGE]: skip unless COMMAND is on PATH.
need_cmd() {
    command -v "$1" > /dev/null && return 0
    skip "$1 not found${2:+ (apt-get install $2)}"
}

# need_root: skip unless running as root.
need_root() {
    [ "$(id -u)" = 0 ] || skip "needs root"
}

# skip_case REASON: one case cannot run; counted and listed by skip_summary.
skip_case() {
    echo "SKIP: $*"
    skipped_cases=$((skipped_cases + 1))
    skipped_why+=("$*")
}

# skip_summary: a line naming the skipped cases, if any.
skip_summary() {
    local w
    [ "$skipped_cases" -gt 0 ] || return 0
    echo "${NAME:-${0##*/}}: $skipped_cases case(s) SKIPPED:"
    for w in "${skipped_why[@]}"; do
        echo "    $w"
    done
}

# skip_exit RAN: the end of a test that counted the cases it ran: 77 when it
# ran none (all skipped), else 0. Failures are the caller's to report first.
skip_exit() {
    skip_summary
    if [ "$1" -eq 0 ] && [ "$skipped_cases" -gt 0 ]; then
        echo "SKIP: ${NAME:-${0##*/}}: every case was skipped"
        exit 77
    fi
    exit 0
}
