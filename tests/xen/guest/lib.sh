# SPDX-License-Identifier: ISC
#
# Helpers for scenario scripts, installed in both guests as /test/lib.sh:
#     . /test/lib.sh
# Scenario scripts run under busybox sh. Each check prints one
# "PASS: name" or "FAIL: name: why" line; vx_finish prints the totals and
# returns the script's exit status.

VX_PASSED=0
VX_FAILED=0

vx_pass() {
    VX_PASSED=$((VX_PASSED + 1))
    echo "PASS: $*"
}

vx_fail() {
    VX_FAILED=$((VX_FAILED + 1))
    echo "FAIL: $*"
}

# vx_finish: last command of a scenario script (`vx_finish; exit $?`).
vx_finish() {
    echo "$VX_PASSED passed, $VX_FAILED failed"
    [ "$VX_FAILED" -eq 0 ] && [ "$VX_PASSED" -gt 0 ]
}

# vx_wait_key PATH SECS: print the xenstore value at PATH once it exists;
# fail after SECS.
vx_wait_key() {
    _vx_i=0
    while [ "$_vx_i" -lt $(($2 * 10)) ]; do
        xenstore-read "$1" 2>/dev/null && return 0
        _vx_i=$((_vx_i + 1))
        sleep 0.1
    done
    echo "vx_wait_key: no $1 after $2 s" >&2
    return 1
}

# vx_sha256 FILE: the hex digest alone.
vx_sha256() {
    sha256sum "$1" | cut -d' ' -f1
}

# vx_random FILE BYTES: fill FILE with BYTES of random data.
vx_random() {
    head -c "$2" /dev/urandom > "$1"
}

# vx_check_status RC NAME: PASS when RC is 0.
vx_check_status() {
    if [ "$1" -eq 0 ]; then
        vx_pass "$2"
    else
        vx_fail "$2: exit status $1"
    fi
}

# vx_check_file FILE KEY NAME: PASS when FILE's SHA-256 is the value the
# sender published at xenstore KEY (waited for up to 60 s).
vx_check_file() {
    _vx_want=$(vx_wait_key "$2" 60) || { vx_fail "$3: no checksum at $2"; return; }
    _vx_got=$(vx_sha256 "$1")
    if [ "$_vx_got" = "$_vx_want" ]; then
        vx_pass "$3 ($(wc -c <"$1") bytes, sha256 matches)"
    else
        vx_fail "$3: got $(wc -c <"$1") bytes, sha256 $_vx_got, want $_vx_want"
    fi
}
