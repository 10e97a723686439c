#!/bin/sh
# SPDX-License-Identifier: ISC
#
# Real-Xen scenarios of our vchan (libvchan/platform/xen.c) and vchan-cat, for
# BOTH guests: tests/xen/run-scenarios boots once with
#   tests/xen/run --dom0 xen-scenarios.sh --domu xen-scenarios.sh \
#                 --install STAGE --add xenvchan-peer --add xen-data --add xen-params.sh \
#                 --add hostile-peer
# and each step below is written once, with what dom0 and the domU do in it
# side by side. Before each step both sides meet at a barrier in xenstore
# (under the domU's data directory, which both domains may write), so a
# failed step cannot shift the rest out of step.
#
# Covered: vchan-cat both ways and in both roles at ring orders 10/11, 12,
# 16 and 20 (64, 16 or 4 MiB of checked data each, see XT_BIG); vchan-cat against Xen's libxenvchan
# (xenvchan-peer) in both roles and against Xen's vchan-socket-proxy; a
# client started before its server; a client with no server (-w); the
# rendezvous' xenstore permissions and its removal on close; malformed
# xenstore values; a receiver killed mid-transfer; vchan-cat --list, --stat
# and --watch on a stopped reader (debug); a hostile domU peer
# (tests/hostile/hostile-peer) against dom0's vchan-cat in both roles; and,
# last, `xl destroy` of the domU mid-transfer in both directions at once,
# with a `-k` listener that must not publish again for the dead domain.
#
# Test data is made and checked by xen-data (tests/xen/xen-data.c, --add):
# a stream without period, compared byte for byte, the first bad offset
# reported.
#
# Output lines collected by run-scenarios:
#   PASS: STEP: details | FAIL: STEP: why           (lib.sh)
#   PERF: STEP BYTES SECONDS MB/S                  one transfer, timed by the receiver
# Throughput is measured inside the emulated guests by the receiver's
# xen-data check, from the first byte to the end of the stream: connection
# set-up is left out, the pipes from and to vchan-cat are not.

. /test/lib.sh

export VCHAN_PLATFORM=xen

# Bytes per transfer, all fixed: BIG for the vchan-cat pairs at orders 16
# and 20 and for libxenvchan with 64 KiB rings; MID for order 12 (4 KiB
# rings: 4096 ring-fulls, 2-3 MB/s under emulation), for vchan-socket-proxy
# as client, which writes its stdout a few KiB at a time, and for sodium;
# INPAGE for the in-page 1-2 KiB rings (2048-4096 ring-fulls, each of which
# the receiver must take before the sender goes on: 0.5-1.5 MB/s under
# emulation; 64 MiB there took 50-120 s a transfer and pushed every later
# step out of the time budget); SMALL where the transfer proves a
# connection (late servers); TINY for Xen's own peers on libxenvchan's
# default 1-2 KiB rings, which wake up per KiB on their side (0.05-0.1
# MB/s under emulation).
# XT_SECS (0: none, the default): a sender's time limit, for runs by hand
# on a crowded host; a receiver then checks the shorter stream against the
# count the sender published, and says so. check-xen moves every byte.
XT_BIG=$((64 << 20))
XT_MID=$((16 << 20))
XT_INPAGE=$((4 << 20))
XT_SMALL=$((1 << 20))
XT_TINY=$((256 << 10))
XT_SECS=0
# Steps to run (all when empty); overrides of the above. run-scenarios
# writes these into xen-params.sh (--add puts it in /test/bin).
XT_STEPS=
[ -r /test/bin/xen-params.sh ] && . /test/bin/xen-params.sh
echo "settings: XT_BIG=$XT_BIG XT_MID=$XT_MID XT_INPAGE=$XT_INPAGE XT_SMALL=$XT_SMALL XT_TINY=$XT_TINY XT_SECS=$XT_SECS" \
    "XT_STEPS='$XT_STEPS'"

XT_W=15    # inactivity limit of every vchan-cat and peer (s)
XT_STEP_MAX=150 # hard limit of any one command, and of a barrier (s)
XT_STEP=$XT_STEP_MAX # this step's: xt_begin lowers it to what the budget has left
# Command strings are eval'd when they run (xt_bg_send, xt_bg_recv): the
# literal $XT_STEP then takes the step's value.
# shellcheck disable=SC2016
V='timeout $XT_STEP vchan-cat -w '$XT_W

if [ "${VCHAN_XEN_ROLE:-}" = dom0 ]; then
    XT_SIDE=dom0 XT_OTHER=domu XT_DOMU=$DOMU_ID XT_PEER=$DOMU_ID
else
    XT_SIDE=domu XT_OTHER=dom0 XT_DOMU=$DOMID XT_PEER=0
fi
XT=/local/domain/$XT_DOMU/data/xt
# Rendezvous directories as vchan-cat lays them out: dom0's servers for the
# domU at $S0/PORT, the domU's servers for dom0 at $SU/PORT.
S0=/local/domain/0/data/vchan/$XT_DOMU
SU=/local/domain/$XT_DOMU/data/vchan/0

dom0() { [ "$XT_SIDE" = dom0 ]; }
xt_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# ---------------------------------------------------------------- barriers

# xt_mark NAME [VALUE] / xt_await NAME [SECS]: signal the other side / wait
# for its signal (its value on stdout).
xt_mark() { xenstore-write -- "$XT/$XT_SIDE/$1" "${2:-1}"; } # --: a value may start with -
xt_await() { vx_wait_key "$XT/$XT_OTHER/$1" "${2:-$XT_STEP_MAX}"; }

# xt_want STEP: is STEP selected? Steps named xv-ref-* (references for the
# throughput figures, not checks of ours) and accept (make check-xen-accept's
# scenario, which has its own target on x86-64) run only when named.
xt_want() {
    case " $XT_STEPS " in *" $1 "*) return 0 ;; esac
    case $1 in
        setup) return 0 ;;
        xv-ref-* | accept) return 1 ;;
        # make check-xen-compat's boot: all of them with the name "compat".
        compat-*) case " $XT_STEPS " in *" compat "*) return 0 ;; esac; return 1 ;;
    esac
    [ -z "$XT_STEPS" ]
}

# The time budget. The guests' init kills a script after VX_SCRIPT_TIMEOUT
# seconds; dom0 leads: it skips a step unless the longest of the last three
# steps would still fit before the reserve for the last step (destroy) and
# the reports, so that a slow, shared emulator costs coverage of the steps
# at the end of the list, visibly (SKIP lines), rather than the whole run.
# A step that starts gets what is left before the reserve as the hard
# limit of its commands (XT_STEP, at most XT_STEP_MAX): a transfer that
# cannot finish in it fails; it never eats the destroy step's time. Once
# a step is skipped, so is every later one but destroy, without meeting at
# a barrier (a barrier costs a second on a loaded emulator).
XT_RESERVE=45
XT_D1=0 XT_D2=0 XT_D3=0 XT_PREV= XT_SKIPPING=
XT_T0=$(awk '{ printf "%d\n", $1 }' /proc/uptime)
[ -r /etc/vchan-xen.env ] && XT_LIMIT=$(sed -n 's/^VX_SCRIPT_TIMEOUT=//p' /etc/vchan-xen.env)

xt_time_left() { # seconds, or a large number when the limit is unknown
    echo $((XT_T0 + ${XT_LIMIT:-100000} - $(awk '{ printf "%d\n", $1 }' /proc/uptime)))
}

# xt_begin STEP: false when STEP is not selected or is skipped; else both
# sides have reached STEP when it returns.
xt_begin() {
    xt_want "$1" || return 1
    if [ -n "$XT_SKIPPING" ] && [ "$1" != destroy ]; then
        dom0 && echo "SKIP: $1: out of time (as every step after $XT_SKIPPING)"
        return 1
    fi
    echo "---- $1 (t=$(xt_ms) ms, $(xt_time_left) s left)"
    if dom0; then
        _now=$(awk '{ printf "%d\n", $1 }' /proc/uptime)
        [ -z "$XT_PREV" ] || { XT_D3=$XT_D2 XT_D2=$XT_D1 XT_D1=$((_now - XT_PREV)); }
        XT_PREV=$_now
        XT_LONGEST=$XT_D1
        [ "$XT_D2" -le "$XT_LONGEST" ] || XT_LONGEST=$XT_D2
        [ "$XT_D3" -le "$XT_LONGEST" ] || XT_LONGEST=$XT_D3
        _left=$(($(xt_time_left) - XT_RESERVE))
        [ "$1" != destroy ] || _left=$((_left + XT_RESERVE - 15))
        [ "$_left" -le "$XT_STEP_MAX" ] || _left=$XT_STEP_MAX
        _go=go:$_left
        [ "$1" = destroy ] || [ "$_left" -ge "$XT_LONGEST" ] || _go=skip
        xt_mark "sync-$1" "$_go"
        xt_await "sync-$1" >/dev/null || vx_fail "$1: the domU never reached this step"
        # The first barrier waits for the domU to boot: not a step's cost.
        [ "$1" != setup ] || XT_PREV=$(awk '{ printf "%d\n", $1 }' /proc/uptime)
    else
        xt_mark "sync-$1"
        _go=$(xt_await "sync-$1") || { vx_fail "$1: dom0 never reached this step"; _go=go; }
    fi
    if [ "$_go" = skip ]; then
        dom0 && echo "SKIP: $1: out of time ($(xt_time_left) s left; the longest of the last" \
            "three steps took $XT_LONGEST s, $XT_RESERVE s are kept for the end)"
        XT_SKIPPING=$1
        return 1
    fi
    XT_STEP=${_go#go:}
    case $XT_STEP in '' | *[!0-9]*) XT_STEP=$XT_STEP_MAX ;; esac
    [ "$XT_STEP" -ge 10 ] || XT_STEP=10
}

# ---------------------------------------------------------------- helpers

# xt_count FILE WHAT: the byte count in a xen-data report ("gen: N bytes",
# "check: N bytes OK").
xt_count() { sed -n "s/^xen-data: $2: \([0-9]*\) bytes.*/\1/p" "$1" 2>/dev/null; }

# xt_perf STEP BYTES: from xen-data check's report in /tmp/xt-chk-STEP.
xt_perf() {
    _s=$(sed -n 's/.*first to last byte in \([0-9.]*\) s.*/\1/p' "/tmp/xt-chk-$1")
    [ -n "$_s" ] || return 0
    echo "PERF: $1 $2 $_s $(awk -v b="$2" -v s="$_s" \
        'BEGIN { if (s < 0.001) s = 0.001; printf "%.2f", b / s / 1e6 }')"
}

xt_show_err() { # STEP: the failed command's stderr, indented
    sed -n '1,15s/^/    /p' "/tmp/xt-err-$1" 2>/dev/null
}

# xt_check_recv STEP BYTES RC CHECK_RC: the receiver's verdict: the stream
# is intact and as long as the sender says it sent (at most BYTES).
xt_check_recv() {
    _sent=$(xt_await "count-$1") || _sent="unknown"
    _got=$(xt_count "/tmp/xt-chk-$1" check)
    if [ "$3" != 0 ]; then
        vx_fail "$1: receiver exit status $3"
        xt_show_err "$1"
    elif [ "$4" != 0 ]; then
        vx_fail "$1: $(tail -n1 "/tmp/xt-chk-$1")"
        xt_show_err "$1"
    elif [ "$_got" != "$_sent" ]; then
        vx_fail "$1: received ${_got:-?} bytes, the sender sent $_sent"
    elif [ "$_got" != "$2" ] && [ "$XT_SECS" = 0 ]; then
        vx_fail "$1: received $_got of $2 bytes"
    else
        vx_pass "$1: $_got bytes arrived intact$([ "$_got" = "$2" ] || echo " (sender's time limit: $XT_SECS s)")"
        xt_perf "$1" "$_got"
    fi
}

# xt_check_send STEP RC: the sender's verdict; publishes its byte count.
xt_check_send() {
    _sent=$(xt_count "/tmp/xt-gen-$1" gen)
    xt_mark "count-$1" "${_sent:-none}"
    if [ "$2" != 0 ]; then
        vx_fail "$1: sender exit status $2"
        xt_show_err "$1"
    else
        vx_pass "$1: sender finished (${_sent:-?} bytes)"
    fi
}

# xt_bg_recv STEP BYTES CMD / xt_bg_send STEP BYTES CMD: start CMD (eval'd)
# in the background, receiving or sending STEP's stream of BYTES. Its exit
# status lands in /tmp/xt-rc-STEP, its stderr in /tmp/xt-err-STEP, the
# receiver's check (status, report) in /tmp/xt-chkrc-STEP, /tmp/xt-chk-STEP.
# XT_BG: the job's pid.
xt_bg_recv() {
    rm -f "/tmp/xt-rc-$1" "/tmp/xt-chkrc-$1"
    ( (eval "$3" 2>"/tmp/xt-err-$1"; echo $? >"/tmp/xt-rc-$1") |
        xen-data check "$1" "$2" 2>"/tmp/xt-chk-$1"
        echo $? >"/tmp/xt-chkrc-$1") &
    XT_BG=$!
}
xt_bg_send() {
    rm -f "/tmp/xt-rc-$1"
    ( xen-data gen "$1" "$2" "$XT_SECS" 2>"/tmp/xt-gen-$1" | eval "$3" 2>"/tmp/xt-err-$1"
        echo $? >"/tmp/xt-rc-$1") &
    XT_BG=$!
}

# xt_rc STEP [KIND]: an exit status left by the above ("lost" if none).
xt_rc() { cat "/tmp/xt-${2:-rc}-$1" 2>/dev/null || echo lost; }

# xt_transfer STEP BYTES SERVER SENDER SERVER_CMD CLIENT_CMD [XSDIR]
# One checked transfer of BYTES from SENDER (dom0|domu) to the other side,
# SERVER (dom0|domu) being the side that runs SERVER_CMD; the other runs
# CLIENT_CMD once the server has published at XSDIR (default: vchan-cat's
# directory for port STEP). Commands are eval'd: $XT_PEER and the like
# inside single quotes take this side's values.
xt_transfer() {
    _step=$1 _bytes=$2 _server=$3 _sender=$4 _scmd=$5 _ccmd=$6
    if [ "$_server" = dom0 ]; then _dir=${7:-$S0/$_step}; else _dir=${7:-$SU/$_step}; fi
    xt_begin "$_step" || return 0
    if [ "$XT_SIDE" = "$_server" ]; then
        _cmd=$_scmd
    else
        _cmd=$_ccmd
        xt_await "ready-$_step" >/dev/null || { vx_fail "$_step: the server never published"; return; }
    fi
    if [ "$XT_SIDE" = "$_sender" ]; then
        xt_bg_send "$_step" "$_bytes" "$_cmd"
    else
        xt_bg_recv "$_step" "$_bytes" "$_cmd"
    fi
    _job=$XT_BG
    if [ "$XT_SIDE" = "$_server" ]; then
        if vx_wait_key "$_dir/ring-ref" 30 >/dev/null; then
            xt_mark "ready-$_step"
        else
            vx_fail "$_step: no server published at $_dir"
        fi
    fi
    wait "$_job"
    _rc=$(xt_rc "$_step")
    if [ "$XT_SIDE" = "$_sender" ]; then
        xt_check_send "$_step" "$_rc"
    else
        xt_check_recv "$_step" "$_bytes" "$_rc" "$(xt_rc "$_step" chkrc)"
    fi
    if [ "$XT_SIDE" = "$_server" ] && [ "$_rc" = 0 ] && xenstore-exists "$_dir" 2>/dev/null; then
        # vchan-cat and libxenvchan remove their directory on close.
        case $_scmd in
            *vchan-cat*) vx_fail "$_step: $_dir still exists after the server closed" ;;
        esac
    fi
}

# xt_vcat_pair STEP BYTES SERVER SENDER [URI-OPTIONS]: xt_transfer between
# two vchan-cats, the server choosing the rings with URI-OPTIONS.
xt_vcat_pair() {
    xt_transfer "$1" "$2" "$3" "$4" \
        "$V -l 'vchan://$XT_PEER/$1${5:+?$5}'" "$V 'vchan://$XT_PEER/$1'"
}

# ---------------------------------------------------------------- steps

step_setup() {
    xt_begin setup || return 0
    xen-data gen setup $((16 << 20)) 2>/dev/null | xen-data check setup $((16 << 20)) 2>/tmp/xt-chk-setup
    echo "setup: $XT_SIDE, domU $XT_DOMU, vchan-cat $(command -v vchan-cat);" \
        "xen-data through a pipe alone: $(tail -n1 /tmp/xt-chk-setup)"
}

# Our default rings (64 KiB, order 16) both ways; "u2d" is domU -> dom0,
# and the receiver serves. (Servers that send: xv-cli-*, late-*, perms-*.)
step_basic() {
    xt_vcat_pair o16-u2d "$XT_BIG" dom0 domu
    xt_vcat_pair o16-d2u "$XT_BIG" domu dom0
}

# The sodium layer on real grants: each side makes a key pair, the two
# public keys cross in xenstore, and each pins the other's: 16 MiB each way
# between vchan-cats over sodium+vchan (the end of stream is the layer's).
step_sodium() {
    xt_want sodium-u2d || xt_want sodium-d2u || return 0
    [ -n "$XT_SKIPPING" ] && return 0
    rm -f /tmp/xt-sodium.key
    if ! vchan-cat --genkey /tmp/xt-sodium.key >/tmp/xt-sodium.pub 2>/tmp/xt-err-sodium; then
        vx_fail "sodium: vchan-cat --genkey failed"
        xt_show_err sodium
        return 0
    fi
    xt_mark sodium-pub "$(cat /tmp/xt-sodium.pub)"
    _peer=$(xt_await sodium-pub) || { vx_fail "sodium: no public key from $XT_OTHER"; return 0; }
    _q="key=/tmp/xt-sodium.key&peer=$_peer"
    xt_transfer sodium-u2d "$XT_MID" dom0 domu \
        "$V -l 'sodium+vchan://$XT_PEER/sodium-u2d?$_q'" "$V 'sodium+vchan://$XT_PEER/sodium-u2d?$_q'"
    xt_transfer sodium-d2u "$XT_MID" domu dom0 \
        "$V -l 'sodium+vchan://$XT_PEER/sodium-d2u?$_q'" "$V 'sodium+vchan://$XT_PEER/sodium-d2u?$_q'"
}

# The other ring orders; the server picks them. The in-page rings hold 1 or
# 2 KiB: XT_INPAGE through them is 2048-4096 ring-fulls, each of which the
# receiver must take before the sender can go on.
step_orders() {
    xt_vcat_pair o12-u2d "$XT_MID" dom0 domu 'read-size=4096&write-size=4096'
    xt_vcat_pair o12-d2u "$XT_MID" domu dom0 'read-size=4096&write-size=4096'
    xt_vcat_pair o20-u2d "$XT_BIG" dom0 domu 'read-size=1048576&write-size=1048576'
    xt_vcat_pair o20-d2u "$XT_BIG" domu dom0 'read-size=1048576&write-size=1048576'
    # In-page rings: (read 10, write 11) and (read 11, write 10).
    xt_vcat_pair o10-u2d "$XT_INPAGE" dom0 domu 'read-size=1024&write-size=2048'
    xt_vcat_pair o11-d2u "$XT_INPAGE" domu dom0 'read-size=2048&write-size=1024'
    xt_vcat_pair o10-d2u-srv "$XT_INPAGE" dom0 dom0 'read-size=2048&write-size=1024'
}

# Xen's own libxenvchan (tests/xen/xenvchan-peer.c) in each role and domain.
step_libxenvchan() {
    _xp='timeout $XT_STEP xenvchan-peer'
    _r64="--read-min 64K --write-min 64K --timeout $XT_W"
    # A libxenvchan server in the domU sends to our client in dom0.
    xt_transfer xv-srv-domu "$XT_BIG" domu domu \
        "$_xp server 0 $SU/xv-srv-domu $_r64" "$V 'vchan://$XT_PEER/xv-srv-domu'"
    # A libxenvchan server in dom0 receives from our client in the domU.
    xt_transfer xv-srv-dom0 "$XT_BIG" dom0 domu \
        "$_xp server $XT_PEER $S0/xv-srv-dom0 $_r64" "$V 'vchan://$XT_PEER/xv-srv-dom0'"
    # A libxenvchan client in the domU receives from our server in dom0.
    xt_transfer xv-cli-domu "$XT_BIG" dom0 dom0 \
        "$V -l 'vchan://$XT_PEER/xv-cli-domu'" "$_xp client 0 $S0/xv-cli-domu --timeout $XT_W"
    # A libxenvchan client in dom0 sends to our server in the domU.
    xt_transfer xv-cli-dom0 "$XT_BIG" domu dom0 \
        "$V -l 'vchan://$XT_PEER/xv-cli-dom0'" \
        "$_xp client $XT_PEER $SU/xv-cli-dom0 --timeout $XT_W"
}

step_libxenvchan_more() {
    _xp='timeout $XT_STEP xenvchan-peer'
    _r64="--read-min 64K --write-min 64K --timeout $XT_W"
    # libxenvchan's default rings (1 KiB read, 2 KiB write); our client sends.
    xt_transfer xv-default "$XT_TINY" domu dom0 \
        "$_xp server 0 $SU/xv-default --timeout $XT_W" "$V 'vchan://$XT_PEER/xv-default'"
    # References for the throughput figures, run only when named: libxenvchan
    # on both ends, set up as xv-srv-dom0 and xv-default.
    xt_transfer xv-ref-srv-dom0 "$XT_BIG" dom0 domu \
        "$_xp server $XT_PEER $S0/xv-ref-srv-dom0 $_r64" \
        "$_xp client 0 $S0/xv-ref-srv-dom0 --timeout $XT_W"
    xt_transfer xv-ref-default "$XT_TINY" domu dom0 \
        "$_xp server 0 $SU/xv-ref-default --timeout $XT_W" \
        "$_xp client $XT_PEER $SU/xv-ref-default --timeout $XT_W"
}

# Xen's vchan-socket-proxy (dom0 only) with stdin/stdout as its socket.
step_socket_proxy() {
    # As client it closes as soon as its input ends; our server must still
    # deliver what the ring holds.
    xt_transfer vsp-client "$XT_MID" domu dom0 \
        "$V -l 'vchan://$XT_PEER/vsp-client'" \
        "timeout \$XT_STEP vchan-socket-proxy $XT_PEER $SU/vsp-client -"
    # As server, its input must stay open (at end of input it closes): a
    # FIFO opened read-write never ends and never has data.
    dom0 && rm -f /tmp/xt-hold && mkfifo /tmp/xt-hold
    xt_transfer vsp-server "$XT_TINY" dom0 domu \
        "timeout \$XT_STEP vchan-socket-proxy -m server $XT_PEER $S0/vsp-server - 3<>/tmp/xt-hold <&3" \
        "$V 'vchan://$XT_PEER/vsp-server'"
}

# A client started before its server connects once the server appears.
step_late_server() {
    for _srv in dom0 domu; do
        _step=late-$_srv
        xt_begin "$_step" || continue
        if [ "$XT_SIDE" = "$_srv" ]; then
            xt_await "started-$_step" >/dev/null
            sleep 2
            xt_bg_send "$_step" "$XT_SMALL" "$V -l 'vchan://$XT_PEER/$_step'"
            wait "$XT_BG"
            xt_check_send "$_step" "$(xt_rc "$_step")"
        else
            _t0=$(xt_ms)
            xt_bg_recv "$_step" "$XT_SMALL" "$V 'vchan://$XT_PEER/$_step'"
            _job=$XT_BG
            xt_mark "started-$_step"
            wait "$_job"
            xt_check_recv "$_step" "$XT_SMALL" "$(xt_rc "$_step")" "$(xt_rc "$_step" chkrc)"
            echo "$_step: the client waited and finished in $(($(xt_ms) - _t0)) ms (server 2 s late)"
        fi
    done
}

# The same through libvchan's API alone (xen-data vchan-recv: a blocking
# vchan_client_open, no libconduit): the platform's lookup waits for the
# keys through a xenstore watch, which must wake it in either domain.
step_api_late_server() {
    for _srv in dom0 domu; do
        _step=api-late-$_srv
        xt_begin "$_step" || continue
        if [ "$XT_SIDE" = "$_srv" ]; then
            xt_await "started-$_step" >/dev/null
            sleep 2
            xt_bg_send "$_step" "$XT_SMALL" "$V -l 'vchan://$XT_PEER/$_step'"
            wait "$XT_BG"
            xt_check_send "$_step" "$(xt_rc "$_step")"
        else
            ( xen-data vchan-recv "$_step" "$XT_SMALL" "$XT_PEER" "$_step" $((XT_W * 1000)) \
                2>"/tmp/xt-chk-$_step"; echo $? >"/tmp/xt-chkrc-$_step") &
            _job=$!
            xt_mark "started-$_step"
            wait "$_job"
            echo 0 >"/tmp/xt-rc-$_step"
            xt_check_recv "$_step" "$XT_SMALL" 0 "$(xt_rc "$_step" chkrc)"
            xt_grep "$_step" "connected to domain" "/tmp/xt-chk-$_step"
            xt_grep "$_step" "watch fired on /local/domain/$XT_PEER/data/vchan/" "/tmp/xt-chk-$_step"
        fi
    done
    xt_begin api-no-server || return 0
    _t0=$(xt_ms)
    xen-data vchan-recv api-no-server 1 "$XT_PEER" "api-no-server-$XT_SIDE" 2000 \
        2>/tmp/xt-err-api-no-server
    _rc=$? _ms=$(($(xt_ms) - _t0))
    if [ "$_rc" = 1 ]; then vx_pass "api-no-server: failed as it should"; else
        vx_fail "api-no-server: exit status $_rc, want 1"; fi
    xt_elapsed_ok "api-no-server: gave up" "$_ms" 2000 6000
    xt_grep api-no-server "ETIMEDOUT: no vchan server at /local/domain/$XT_PEER/data/vchan/$(
        dom0 && echo 0 || echo "$XT_DOMU")/api-no-server-$XT_SIDE after 2000 ms" \
        /tmp/xt-err-api-no-server
}

# A client with no server gives up after -w with exit status 1.
step_no_server() {
    xt_begin no-server || return 0
    _t0=$(xt_ms)
    timeout 30 vchan-cat -w 2 "vchan://$XT_PEER/no-server-$XT_SIDE" </dev/null \
        >/dev/null 2>/tmp/xt-err-no-server
    _rc=$? _ms=$(($(xt_ms) - _t0))
    if [ "$_rc" = 1 ]; then vx_pass "no-server: exit status 1"; else
        vx_fail "no-server: exit status $_rc, want 1"; fi
    xt_elapsed_ok "no-server: gave up" "$_ms" 2000 6000
    xt_grep no-server "no vchan server at /local/domain/$XT_PEER/data/vchan/" /tmp/xt-err-no-server
}

xt_elapsed_ok() { # WHAT MS LO HI
    if [ "$2" -ge "$3" ] && [ "$2" -lt "$4" ]; then vx_pass "$1 after $2 ms"; else
        vx_fail "$1 after $2 ms, want $3..$4 ms"; fi
}

xt_grep() { # STEP PATTERN FILE
    if grep -q -- "$2" "$3"; then vx_pass "$1: says: $(grep -m1 -- "$2" "$3")"; else
        vx_fail "$1: no message matching '$2'; stderr: $(head -c 300 "$3")"; fi
}

# The rendezvous keys: owned by the server, readable by the client only
# (xenstore-ls -p shows "(n<owner>,r<client>)"); removed on close.
step_perms() {
    for _srv in dom0 domu; do
        _step=perms-$_srv
        xt_begin "$_step" || continue
        if [ "$_srv" = dom0 ]; then _dir=$S0/$_step _own=0 _cli=$XT_DOMU; else
            _dir=$SU/$_step _own=$XT_DOMU _cli=0; fi
        if [ "$XT_SIDE" = "$_srv" ]; then
            xt_bg_send "$_step" 4096 "$V -l 'vchan://$XT_PEER/$_step'"
            _job=$XT_BG
            vx_wait_key "$_dir/ring-ref" 30 >/dev/null
            xenstore-ls -p "$_dir" >/tmp/xt-perms 2>&1
            sed 's/^/    /' /tmp/xt-perms
            for _k in ring-ref event-channel; do
                if grep -q "^$_k = \"[1-9][0-9]*\".*(n$_own,r$_cli)\$" /tmp/xt-perms; then
                    vx_pass "$_step: $_k is (n$_own,r$_cli)"
                else
                    vx_fail "$_step: $_k is not a number with permissions (n$_own,r$_cli)"
                fi
            done
            xt_mark "ready-$_step"
            wait "$_job"
            xt_check_send "$_step" "$(xt_rc "$_step")"
            if xenstore-exists "$_dir" 2>/dev/null; then
                vx_fail "$_step: $_dir left behind after close"
            else
                vx_pass "$_step: $_dir removed on close"
            fi
        else
            xt_await "ready-$_step" >/dev/null
            # The client may read the keys without listing the directory.
            if xenstore-read "$_dir/ring-ref" >/dev/null 2>&1; then
                vx_pass "$_step: the client can read ring-ref"
            else
                vx_fail "$_step: the client cannot read $_dir/ring-ref"
            fi
            timeout $XT_STEP vchan-cat -w $XT_W "vchan://$XT_PEER/$_step" </dev/null \
                >/tmp/xt-out 2>/tmp/xt-err-$_step
            _rc=$? _n=$(wc -c </tmp/xt-out)
            if [ "$_rc" = 0 ] && [ "$_n" = 4096 ]; then vx_pass "$_step: client got 4096 bytes"; else
                vx_fail "$_step: client exit $_rc with $_n bytes"; xt_show_err "$_step"; fi
        fi
    done
}

# Malformed rendezvous values: the client refuses them at once, naming the
# key and the value (EPROTO, exit 1), and never maps anything.
# "|"-separated; EMPTY stands for the empty string, evtchn-V for an
# event-channel of V beside a good ring-ref.
# A handful, one of each kind: junk, sign, base prefix, trailing blank,
# out of range, zero, empty, an event channel past the limit.
XT_BAD_VALUES='12abc|-5|0x10|7 |4294967296|0|EMPTY|evtchn-2147483648'
step_bad_xenstore() {
    for _srv in dom0 domu; do
        _step=bad-$_srv
        xt_begin "$_step" || continue
        if [ "$_srv" = dom0 ]; then _dir=$S0; _cli=$XT_DOMU; else _dir=$SU; _cli=0; fi
        _old_ifs=$IFS
        IFS='|'
        # shellcheck disable=SC2086 # split on IFS=| on purpose
        set -- $XT_BAD_VALUES
        IFS=$_old_ifs
        # All entries are published at once, then tried one by one.
        _i=0
        for _val in "$@"; do
            _i=$((_i + 1))
            _p=$_dir/$_step-$_i _rr=$_val _ec=5
            case $_val in
                EMPTY) _rr= ;;
                evtchn-*) _rr=8 _ec=${_val#evtchn-} ;;
            esac
            if [ "$XT_SIDE" = "$_srv" ]; then
                # "--": values such as -5 are not options.
                xenstore-write -- "$_p/ring-ref" "$_rr" "$_p/event-channel" "$_ec"
                xenstore-chmod "$_p/ring-ref" "n$(xenstore-read domid)" "r$_cli"
                xenstore-chmod "$_p/event-channel" "n$(xenstore-read domid)" "r$_cli"
            fi
        done
        if [ "$XT_SIDE" = "$_srv" ]; then
            xt_mark "ready-$_step"
            xt_await "done-$_step" >/dev/null
            _i=0
            for _val in "$@"; do
                _i=$((_i + 1))
                xenstore-rm "$_dir/$_step-$_i"
            done
            continue
        fi
        xt_await "ready-$_step" >/dev/null
        _i=0
        for _val in "$@"; do
            _i=$((_i + 1)) _key=ring-ref
            case $_val in
                EMPTY) _val= ;;
                evtchn-*) _key=event-channel _val=${_val#evtchn-} ;;
            esac
            _t0=$(xt_ms)
            timeout 30 vchan-cat -w 10 "vchan://$XT_PEER/$_step-$_i" </dev/null >/dev/null \
                2>/tmp/xt-err-bad
            _rc=$? _ms=$(($(xt_ms) - _t0))
            if [ "$_rc" = 1 ] && [ "$_ms" -lt 5000 ] &&
                grep -q "$_key: invalid value '$_val'" /tmp/xt-err-bad; then
                vx_pass "$_step: #$_i $_key='$_val' refused in $_ms ms: $(head -n1 /tmp/xt-err-bad)"
            else
                vx_fail "$_step: #$_i $_key='$_val': exit $_rc after $_ms ms: $(head -c 200 /tmp/xt-err-bad)"
            fi
        done
        xt_mark "done-$_step"
    done
}

# A receiver killed mid-transfer: its kernel's unmap-notify closes its side,
# so the sender, with data unconsumed, ends with exit status 1 within 2 s.
step_kill_receiver() {
    for _rcv in domu dom0; do
        _step=kill-$_rcv
        xt_begin "$_step" || continue
        if [ "$XT_SIDE" = "$_rcv" ]; then
            # No timeout(1) around it: kill must hit vchan-cat itself (-w bounds it).
            vchan-cat -w $XT_W -l "vchan://$XT_PEER/$_step" >/dev/null 2>/tmp/xt-err-$_step \
                </dev/null &
            _job=$!
            vx_wait_key "$( [ "$_rcv" = dom0 ] && echo "$S0" || echo "$SU")/$_step/ring-ref" 30 \
                >/dev/null
            xt_mark "ready-$_step"
            sleep 2
            kill -9 "$_job"
            xt_mark "killed-$_step"
            wait "$_job" 2>/dev/null
            # A process killed with SIGKILL cannot remove its rendezvous
            # entry; its supervisor must, as here (else debug-list finds it).
            xenstore-rm "$( [ "$_rcv" = dom0 ] && echo "$S0" || echo "$SU")/$_step" 2>/dev/null
        else
            xt_await "ready-$_step" >/dev/null
            (timeout $XT_STEP cat /dev/zero | vchan-cat -w $XT_W "vchan://$XT_PEER/$_step" \
                2>/tmp/xt-err-$_step; echo $? >/tmp/xt-rc-$_step) &
            _job=$!
            xt_await "killed-$_step" >/dev/null
            _t0=$(xt_ms)
            while kill -0 "$_job" 2>/dev/null && [ $(($(xt_ms) - _t0)) -lt 10000 ]; do
                sleep 0.05
            done
            _ms=$(($(xt_ms) - _t0))
            wait "$_job"
            _rc=$(cat /tmp/xt-rc-$_step)
            if [ "$_rc" = 1 ] && [ "$_ms" -lt 2000 ]; then
                vx_pass "$_step: sender ended with exit 1 $_ms ms after the kill: $(tail -n1 /tmp/xt-err-$_step)"
            else
                vx_fail "$_step: sender exit $_rc $_ms ms after the kill: $(tail -c 200 /tmp/xt-err-$_step)"
            fi
        fi
    done
}

# Hostile peers (tests/hostile/hostile-peer, built with Xen): a domU
# process that, once connected, rewrites the shared control page at random
# (chaos: indices, orders, grants, live and notify bytes, ring bytes,
# bursts of events), or keeps to the rules with garbage data and rewritten
# orders and grants (plausible), or spoils its page's orders and grants
# while dom0's client maps it (setup); then stays connected and silent,
# then closes. The victim is dom0's vchan-cat, as server (srv) and as
# client (cli). It must not crash (exit 0 or 1, with a message when 1;
# never a signal or a timeout), must not spin while the peer is silent (at
# most 20% CPU), must end (a protocol error or a clean end-of-file) within
# 2 s of the peer's close, or earlier by itself, and must last the whole
# attack of a peer that keeps to the protocol.
# The 2 s are measured on the domU's clock from the peer's exit to the
# arrival of dom0's "victim exited" key (a xenstore watch): the delivery of
# the key counts against the victim, never for it.
# Rounds: VICTIM-ROLE:MODE:VICTIM-STDIN (null or zero).
XT_HOSTILE='srv:plausible:null srv:chaos:zero cli:plausible:zero cli:chaos:null cli:setup:null'
XT_HOSTILE_SECS=2
XT_HOSTILE_QUIET=1.5
step_hostile() {
    _n=0
    for _round in $XT_HOSTILE; do
        _n=$((_n + 1))
        _role=${_round%%:*} _mode=${_round#*:}
        _in=${_mode#*:} _mode=${_mode%%:*}
        _step=hostile-$_role-$_mode
        xt_begin "$_step" || continue
        if dom0; then
            xt_hostile_victim "$_step" "$_role" "$_mode" "/dev/$_in"
        else
            xt_hostile_attacker "$_step" "$_role" "$_mode" "$_n"
        fi
    done
}

# The domU: run the hostile peer, publish when its attack ended and how
# long after its close dom0's vchan-cat was seen to exit.
xt_hostile_attacker() {
    _step=$1 _role=$2 _mode=$3
    _seed=$(( ($4 * 7919 + $(xt_ms)) % 1000000 + 1 ))
    _hp="hostile-peer -a $_mode -t $XT_HOSTILE_SECS -q $XT_HOSTILE_QUIET -w 30 -s $_seed -v"
    _hp="$_hp -Q /tmp/xt-quiet-$_step vchan://0/$_step"
    rm -f "/tmp/xt-quiet-$_step" "/tmp/xt-hpend-$_step" "/tmp/xt-seen-$_step"
    # Watch for the victim's exit first: it may be quick.
    (timeout 60 xenstore-watch -n 2 "$XT/dom0/exited-$_step" | xen-data stamp \
        >"/tmp/xt-seen-$_step") &
    _watch=$!
    if [ "$_role" = srv ]; then
        xt_await "ready-$_step" >/dev/null || vx_fail "$_step: dom0's vchan-cat never published"
    else
        _hp="hostile-peer -l ${_hp#hostile-peer }"
    fi
    # Its exit stamped on the clock that stamps the watch (xen-data stamp).
    (timeout $XT_STEP $_hp 2>"/tmp/xt-hp-$_step"; echo end | xen-data stamp >"/tmp/xt-hpend-$_step") &
    _job=$!
    if [ "$_role" = cli ]; then
        vx_wait_key "$SU/$_step/ring-ref" 30 >/dev/null || vx_fail "$_step: the hostile server never published"
        xt_mark "ready-$_step"
    fi
    _i=0
    while [ ! -e "/tmp/xt-quiet-$_step" ] && kill -0 "$_job" 2>/dev/null && [ "$_i" -lt 600 ]; do
        sleep 0.05
        _i=$((_i + 1))
    done
    xt_mark "quiet-$_step"
    wait "$_job"
    _i=0
    while [ "$(wc -l <"/tmp/xt-seen-$_step")" -lt 2 ] && [ "$_i" -lt 100 ]; do
        sleep 0.05
        _i=$((_i + 1))
    done
    kill "$_watch" 2>/dev/null
    # The peer's close: its own clock reading just before vchan_close (else its exit).
    _end=$(sed -n 's/.*closing (t=\([0-9]*\) ms).*/\1/p' "/tmp/xt-hp-$_step")
    [ -n "$_end" ] || _end=$(sed -n '1s/ .*//p' "/tmp/xt-hpend-$_step" 2>/dev/null)
    _seen=$(sed -n '2s/ .*//p' "/tmp/xt-seen-$_step")
    if [ -n "$_end" ] && [ -n "$_seen" ]; then _late=$((_seen - _end)); else _late=none; fi
    sed 's/^/    /' "/tmp/xt-hp-$_step"
    # The peer's verdict line: how long it ran, what it did, whether the victim went away.
    xt_mark "verdict-$_step" "$_late $(grep -v -e ' libvchan: ' -e 'closing (t=' "/tmp/xt-hp-$_step" | tail -n 1 |
        tr -cd 'A-Za-z0-9 .,;:()/_-')"
}

# dom0: run vchan-cat against the hostile peer and judge it.
xt_hostile_victim() {
    _step=$1 _role=$2 _mode=$3 _in=$4
    rm -f "/tmp/xt-rc-$_step" "/tmp/xt-pid-$_step"
    if [ "$_role" = srv ]; then
        _cmd="vchan-cat -l vchan://$XT_PEER/$_step"
    else
        xt_await "ready-$_step" >/dev/null || vx_fail "$_step: the hostile server never published"
        _cmd="vchan-cat vchan://$XT_PEER/$_step"
    fi
    # No timeout(1) between us and vchan-cat: its pid is the one to watch.
    ( $_cmd <"$_in" >/dev/null 2>"/tmp/xt-err-$_step" &
        echo $! >"/tmp/xt-pid-$_step"
        wait $!
        _r=$?
        echo "$_r" >"/tmp/xt-rc-$_step"
        xt_mark "exited-$_step" "$_r") &
    _job=$!
    [ "$_role" = cli ] || { vx_wait_key "$S0/$_step/ring-ref" 30 >/dev/null && xt_mark "ready-$_step"; }
    xt_await "quiet-$_step" 40 >/dev/null
    # While the peer is silent, the victim sleeps (if it is still there).
    _pid=$(cat "/tmp/xt-pid-$_step" 2>/dev/null)
    _cpu=-
    if [ -n "$_pid" ] && [ -r "/proc/$_pid/stat" ]; then
        _c0=$(awk '{ print $14 + $15 }' "/proc/$_pid/stat" 2>/dev/null) _t0=$(xt_ms)
        sleep 1
        _c1=$(awk '{ print $14 + $15 }' "/proc/$_pid/stat" 2>/dev/null) _t1=$(xt_ms)
        # Clock ticks are 10 ms.
        [ -z "$_c0" ] || [ -z "$_c1" ] || _cpu=$(( (_c1 - _c0) * 10 * 100 / (_t1 - _t0) ))
    fi
    _v=$(xt_await "verdict-$_step" 30) || _v="none (no verdict from the domU)"
    _late=${_v%% *} _peer=${_v#* } _how='?'
    # Bounded: the victim has had the attack, the quiet time and more to end.
    _i=0
    while [ ! -e "/tmp/xt-rc-$_step" ] && [ "$_i" -lt 100 ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
    _rc=$(cat "/tmp/xt-rc-$_step" 2>/dev/null) || {
        _rc=hung
        kill -9 "$_pid" 2>/dev/null
    }
    wait "$_job" 2>/dev/null
    _msg=$(grep -m1 '^vchan-cat:' "/tmp/xt-err-$_step")
    _probs=
    case $_rc in
        0) ;;
        1) [ -n "$_msg" ] || _probs="$_probs; exit 1 without a message" ;;
        *) _probs="$_probs; exit status $_rc (a crash, a signal or a hang)" ;;
    esac
    [ "$_cpu" = - ] || [ "$_cpu" -le 20 ] || _probs="$_probs; ${_cpu}% CPU while the peer was silent"
    case $_late in
        none | "") _probs="$_probs; no timing from the domU ($_v)" ;;
        -*) _how="ended by itself, $((-_late)) ms before the peer closed"
            case $_mode in chaos | setup) ;; *) _probs="$_probs; gave up under a peer that kept to the protocol" ;; esac ;;
        *) _how="ended $_late ms after the peer closed (as seen from the domU)"
            [ "$_late" -le 2000 ] || _probs="$_probs; more than 2000 ms after the peer closed" ;;
    esac
    if [ "$_mode" = plausible ] && [ "$_in" = /dev/null ] && [ "$_rc" != 0 ]; then
        _probs="$_probs; no clean end-of-file although the peer kept to the protocol"
    fi
    _info="$_how; exit $_rc${_msg:+ ($_msg)}; CPU while silent ${_cpu}%; peer: $_peer"
    if [ -z "$_probs" ]; then
        vx_pass "$_step: $_info"
    else
        vx_fail "$_step: $_info: ${_probs#; }"
        sed -n '1,20s/^/    /p' "/tmp/xt-err-$_step"
    fi
}

# Last: `xl destroy` of the domU while data flows both ways. No kernel of
# the domU is left to run unmap-notify: dom0's side learns it from
# xenstore's @releaseDomain, and both of dom0's vchan-cats (one server that
# receives, one client that sends) must end with exit status 1 within 2 s.
# A third, `vchan-cat -k -l` (a listener that serves one connection after
# another: libconduit publishes the next channel when one closes), also
# receives: its connection must end within 2 s as well, no channel may be
# published again for the dead domain (which once cost seconds per close,
# sharing grants with a domain being torn down), and the listener must say
# so once and exit with status 1: nobody can connect any more.
step_destroy() {
    xt_begin destroy || return 0
    # The domU's results so far, before it is gone.
    if ! dom0; then
        xt_mark domu-result "$VX_PASSED $VX_FAILED"
        xt_await ready-destroy-k >/dev/null
        (timeout $XT_STEP cat /dev/zero | vchan-cat -w $XT_W vchan://0/destroy-k 2>/dev/null) &
        timeout $XT_STEP vchan-cat -w $XT_W -l "vchan://0/destroy-d2u" >/dev/null \
            2>/dev/null </dev/null &
        vx_wait_key "$SU/destroy-d2u/ring-ref" 30 >/dev/null
        xt_mark ready-destroy-d2u
        xt_await ready-destroy-u2d >/dev/null
        timeout $XT_STEP cat /dev/zero | vchan-cat -w $XT_W vchan://0/destroy-u2d 2>/dev/null
        echo "destroy: still alive after the transfer ended: dom0 did not destroy us"
        return
    fi
    _r=$(xt_await domu-result 60)
    # shellcheck disable=SC2086 # "PASSED FAILED": two words on purpose
    set -- $_r
    if [ "${2:-x}" = 0 ]; then
        vx_pass "destroy: the domU's steps before it: ${1} passed, 0 failed"
    else
        vx_fail "destroy: the domU's steps before it: ${1:-?} passed, ${2:-?} failed (see the domU's output)"
    fi
    # Each vchan-cat's wrapper notes its exit status and the time it ended
    # (polling with kill -0 would see a zombie that the shell has not
    # reaped yet). -vv: the library's messages, stamped (ms) as they
    # arrive, through a FIFO.
    for _d in u2d d2u k; do
        rm -f "/tmp/xt-fifo-$_d" "/tmp/xt-end-destroy-$_d" "/tmp/xt-rc-destroy-$_d"
        mkfifo "/tmp/xt-fifo-$_d"
        xen-data stamp <"/tmp/xt-fifo-$_d" >"/tmp/xt-err-destroy-$_d" &
    done
    (vchan-cat -vv -k -w $XT_W -l "vchan://$XT_PEER/destroy-k" </dev/null >/dev/null \
        2>/tmp/xt-fifo-k &
        echo $! >/tmp/xt-pid-destroy-k
        wait $!
        echo $? >/tmp/xt-rc-destroy-k
        xt_ms >/tmp/xt-end-destroy-k) &
    _keep=$!
    vx_wait_key "$S0/destroy-k/ring-ref" 30 >/dev/null
    xt_mark ready-destroy-k
    ( timeout $XT_STEP vchan-cat -vv -w $XT_W -l "vchan://$XT_PEER/destroy-u2d" </dev/null \
        >/dev/null 2>/tmp/xt-fifo-u2d
        echo $? >/tmp/xt-rc-destroy-u2d
        xt_ms >/tmp/xt-end-destroy-u2d) &
    _recv=$!
    vx_wait_key "$S0/destroy-u2d/ring-ref" 30 >/dev/null
    xt_mark ready-destroy-u2d
    xt_await ready-destroy-d2u >/dev/null
    ( timeout $XT_STEP cat /dev/zero |
        vchan-cat -vv -w $XT_W "vchan://$XT_PEER/destroy-d2u" 2>/tmp/xt-fifo-d2u
        echo $? >/tmp/xt-rc-destroy-d2u
        xt_ms >/tmp/xt-end-destroy-d2u) &
    _send=$!
    # When xenstored tells watchers that a domain went (for the log).
    xenstore-watch @releaseDomain | while read -r _l; do xt_ms; done >/tmp/xt-released &
    _watch=$!
    # Both transfers must be under way: a loaded emulator can take seconds
    # just to start a process.
    _i=0
    until grep -q "connected" /tmp/xt-err-destroy-u2d && grep -q "connected" /tmp/xt-err-destroy-d2u &&
        grep -q "connected" /tmp/xt-err-destroy-k || [ "$_i" -ge 100 ]; do
        sleep 0.2
        _i=$((_i + 1))
    done
    sleep 1
    for _d in u2d d2u; do
        [ ! -e "/tmp/xt-end-destroy-$_d" ] || vx_fail "destroy: $_d ended before the destroy"
    done
    _t0=$(xt_ms)
    xl destroy "$XT_PEER"
    _td=$(xt_ms)
    wait "$_recv" "$_send" # bounded by timeout(1) and -w
    _end_recv='' _end_send=''
    _e=$(cat /tmp/xt-end-destroy-u2d 2>/dev/null) && _end_recv=$((_e - _t0))
    _e=$(cat /tmp/xt-end-destroy-d2u 2>/dev/null) && _end_send=$((_e - _t0))
    kill "$_watch" 2>/dev/null
    sleep 0.5 # the stampers' last lines
    for _d in u2d d2u; do
        echo "destroy: dom0's vchan-cat ($_d) said (ms after xl destroy began):"
        awk -v t0="$_t0" '{ $1 = "    " ($1 - t0); print }' /tmp/xt-err-destroy-$_d
    done
    echo "destroy: xl destroy returned after $((_td - _t0)) ms; @releaseDomain at" \
        "$(awk -v t0="$_t0" '{ printf "%d ", $1 - t0 }' /tmp/xt-released)ms;" \
        "the receiver ended after ${_end_recv:-?} ms, the sender after ${_end_send:-?} ms"
    # Within 2 s of the domain being gone, i.e. of xl destroy returning
    # (which itself takes 0.5-4 s under emulation).
    for _d in u2d d2u; do
        _rc=$(cat /tmp/xt-rc-destroy-$_d 2>/dev/null || echo lost)
        _why=$( (grep -m1 "gone" /tmp/xt-err-destroy-$_d || tail -n1 /tmp/xt-err-destroy-$_d) |
            cut -d' ' -f2-)
        if [ "$_d" = u2d ]; then _end=${_end_recv:-99999}; else _end=${_end_send:-99999}; fi
        _late=$((_end - (_td - _t0)))
        if [ "$_rc" = 1 ] && [ "$_late" -le 2000 ]; then
            vx_pass "destroy: $_d: exit 1, $_late ms after xl destroy returned: $_why"
        else
            vx_fail "destroy: $_d: exit $_rc, $_late ms after xl destroy returned: $_why"
        fi
    done
    # The -k listener: its connection ended as fast, and what its close did
    # about the next channel. Given up to 3 s to exit (it should have).
    _i=0
    while [ ! -e /tmp/xt-end-destroy-k ] && [ "$_i" -lt 30 ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
    if xenstore-exists "$S0/destroy-k" 2>/dev/null; then _pub=yes; else _pub=no; fi
    _kpid=$(cat /tmp/xt-pid-destroy-k 2>/dev/null)
    if [ ! -e /tmp/xt-end-destroy-k ] && [ -n "$_kpid" ]; then
        kill -9 "$_kpid" 2>/dev/null
    fi
    wait "$_keep" 2>/dev/null
    sleep 0.3
    echo "destroy: dom0's vchan-cat -k said (ms after xl destroy began; up to its first accept error):"
    awk -v t0="$_t0" '{ $1 = "    " ($1 - t0); print } / left to serve/ { exit }' /tmp/xt-err-destroy-k
    _kend=$(awk -v t0="$_t0" '/gone/ { print $1 - t0; exit }' /tmp/xt-err-destroy-k)
    _knext=$(awk -v t0="$_t0" '/no next channel/ { print $1 - t0; exit }' /tmp/xt-err-destroy-k)
    _late=$(( ${_kend:-99999} - (_td - _t0) ))
    if [ "$_late" -le 2000 ]; then
        vx_pass "destroy: k: the -k listener's connection ended $_late ms after xl destroy returned"
    else
        vx_fail "destroy: k: the -k listener's connection did not end within 2000 ms of xl destroy" \
            "returning (${_kend:-never}, ms after it began)"
    fi
    if [ "$_pub" = no ] && [ -n "$_knext" ]; then
        vx_pass "destroy: k: no channel published again for the dead domain (decided" \
            "$((_knext - ${_kend:-0})) ms after the connection ended)"
    else
        vx_fail "destroy: k: after the close: $S0/destroy-k published again: $_pub;" \
            "'no next channel' said at: ${_knext:-never}"
    fi
    # It said so once (conduit_accept's ENOENT) and exited: no client can come.
    _n=$(grep -c 'no one left to serve' /tmp/xt-err-destroy-k)
    _krc=$(cat /tmp/xt-rc-destroy-k 2>/dev/null || echo "none (still running, killed)")
    _e=$(cat /tmp/xt-end-destroy-k 2>/dev/null) && _kexit=$((_e - _td)) || _kexit=?
    if [ "$_n" = 1 ] && [ "$_krc" = 1 ]; then
        vx_pass "destroy: k: the -k listener said once that domain $XT_PEER is gone and exited" \
            "with status 1, $_kexit ms after xl destroy returned"
    else
        vx_fail "destroy: k: the -k listener said $_n times that domain $XT_PEER is gone;" \
            "exit status $_krc"
    fi
}

# vchan-cat as the debugger (--list, --stat) on a stopped reader: dom0
# serves and never reads; the domU's client fills the ring. The domU, the
# grantee, maps the page and sees "writer waiting for space"; dom0 lists the
# channel with its ring-ref and, not being the grantee, is told so by --stat.
step_debug() {
    xt_begin debug || return 0
    if dom0; then
        rm -f /tmp/xt-dbg-in /tmp/xt-dbg-out
        mkfifo /tmp/xt-dbg-in /tmp/xt-dbg-out
        exec 7<>/tmp/xt-dbg-in 8<>/tmp/xt-dbg-out
        timeout "$XT_STEP" vchan-cat -l "vchan://$XT_PEER/debug" <&7 >&8 2>/tmp/xt-err-debug &
        _srv=$!
        vx_wait_key "$S0/debug/ring-ref" 30 >/dev/null
        xt_mark ready-debug
        xt_await filled-debug >/dev/null
        vchan-cat --list --json >/tmp/xt-dbg-list 2>&1
        if grep -q "\"server\": 0, .*\"client\": $XT_DOMU, .*\"port\": \"debug\", .*\"ring_ref\": [1-9]" \
            /tmp/xt-dbg-list; then
            vx_pass "debug: dom0's --list shows the channel with its ring-ref"
        else
            vx_fail "debug: dom0's --list: $(head -c 400 /tmp/xt-dbg-list)"
        fi
        vchan-cat --stat "0/$XT_DOMU/debug" >/tmp/xt-dbg-stat 2>&1
        _rc=$?
        if [ "$_rc" = 1 ] && grep -q "granted to domain $XT_DOMU only" /tmp/xt-dbg-stat; then
            vx_pass "debug: dom0's --stat says the page is the client's: $(head -c 200 /tmp/xt-dbg-stat)"
        else
            vx_fail "debug: dom0's --stat exit $_rc: $(head -c 300 /tmp/xt-dbg-stat)"
        fi
        xt_mark checked-debug
        xt_await done-debug >/dev/null
        kill "$_srv" 2>/dev/null
        wait "$_srv" 2>/dev/null
        exec 7>&- 8>&-
    else
        xt_await ready-debug >/dev/null
        timeout "$XT_STEP" vchan-cat -w "$XT_W" vchan://0/debug </dev/zero >/dev/null \
            2>/tmp/xt-err-debugc &
        _cli=$!
        sleep 3
        vchan-cat --stat vchan://0/debug >/tmp/xt-dbg-stat 2>&1
        _rc=$?
        sed 's/^/    /' /tmp/xt-dbg-stat
        if [ "$_rc" = 0 ] && grep -q "verdict: writer waiting for space" /tmp/xt-dbg-stat &&
            grep -q "left (client -> server): .* (100%)" /tmp/xt-dbg-stat; then
            vx_pass "debug: the client's --stat: ring full, writer waiting for space"
        else
            vx_fail "debug: the client's --stat exit $_rc: $(head -c 400 /tmp/xt-dbg-stat)"
        fi
        timeout 5 vchan-cat --watch vchan://0/debug --json >/tmp/xt-dbg-watch 2>&1
        if [ "$(grep -c '"verdict": "writer waiting for space"' /tmp/xt-dbg-watch)" -ge 2 ]; then
            vx_pass "debug: --watch repeats the snapshot"
        else
            vx_fail "debug: --watch: $(head -c 300 /tmp/xt-dbg-watch)"
        fi
        xt_mark filled-debug
        xt_await checked-debug >/dev/null
        kill "$_cli" 2>/dev/null
        wait "$_cli" 2>/dev/null
        xt_mark done-debug
    fi
}

# The debugger on real grants, one case per step (issue 16). A control page
# is granted to the client's domain only: each --stat runs there, and the
# other side's --stat must say so and show what xenstore shows.
# xt_dbg_ok STEP FILE PATTERN WHAT: pass when FILE has PATTERN, else fail
# with its first bytes.
xt_dbg_ok() {
    if grep -q -e "$3" "$2"; then
        vx_pass "$1: $4"
    else
        vx_fail "$1: $4: not seen: $(head -c 400 "$2" | tr '\n' ' ')"
    fi
}

# debug-flow: the domU's client sends to dom0's server, which reads; the
# domU's --watch sees "flowing" with a non-zero rate client -> server.
# debug-gone: the same, then the domU's client is killed (-9) while the
# domU's --watch looks on: "peer gone".
step_debug_flow() {
    for _st in debug-flow debug-gone; do
        xt_begin "$_st" || continue
        if dom0; then
            timeout "$XT_STEP" vchan-cat -w "$XT_W" -l "vchan://$XT_PEER/$_st" </dev/null \
                >/dev/null 2>"/tmp/xt-err-$_st" &
            _srv=$!
            vx_wait_key "$S0/$_st/ring-ref" 30 >/dev/null
            xt_mark "ready-$_st"
            xt_await "done-$_st" >/dev/null
            kill "$_srv" 2>/dev/null
            wait "$_srv" 2>/dev/null
            continue
        fi
        xt_await "ready-$_st" >/dev/null
        vchan-cat -w "$XT_W" "vchan://0/$_st" </dev/zero >/dev/null 2>"/tmp/xt-err-$_st" &
        _cli=$!
        sleep 1
        if [ "$_st" = debug-flow ]; then
            timeout -s INT 4 vchan-cat --watch "vchan://0/$_st" --json >/tmp/xt-dbg-$_st 2>&1
            sed 's/^/    /' "/tmp/xt-dbg-$_st"
            xt_dbg_ok "$_st" "/tmp/xt-dbg-$_st" \
                '"left": {[^}]*"bytes_per_s": [1-9][^}]*}.*"verdict": "flowing"' \
                "--watch on the client's grant: flowing, client -> server at a non-zero rate"
            vchan-cat --stat "vchan://0/$_st" >"/tmp/xt-dbg-$_st" 2>&1
            xt_dbg_ok "$_st" "/tmp/xt-dbg-$_st" 'left (client -> server):' \
                "--stat on the client's grant shows the rings"
        else
            timeout -s INT 5 vchan-cat --watch "vchan://0/$_st" >"/tmp/xt-dbg-$_st" 2>&1 &
            _w=$!
            sleep 2
            kill -9 "$_cli" 2>/dev/null
            wait "$_w"
            sed 's/^/    /' "/tmp/xt-dbg-$_st"
            xt_dbg_ok "$_st" "/tmp/xt-dbg-$_st" 'verdict: peer gone' \
                "--watch: the killed client shows as peer gone"
        fi
        kill "$_cli" 2>/dev/null
        wait "$_cli" 2>/dev/null
        xt_mark "done-$_st"
    done
}

# debug-corrupt: the hostile peer serves in the domU with a page that says
# its left ring has order 9. dom0, the grantee, maps it: --stat says
# "corrupt" and exits 1 (not a signal); the domU's own --stat is refused
# (granted to dom0 only) with what xenstore shows.
step_debug_corrupt() {
    xt_begin debug-corrupt || return 0
    if ! dom0; then
        timeout 40 hostile-peer -l -a ocaml -O 9:16 -w 30 -t 30 vchan://0/debug-corrupt \
            >/dev/null 2>/tmp/xt-err-debug-corrupt &
        _hp=$!
        vx_wait_key "$SU/debug-corrupt/ring-ref" 30 >/dev/null
        xt_mark ready-debug-corrupt
        vchan-cat --stat "$XT_DOMU/0/debug-corrupt" >/tmp/xt-dbg-corrupt 2>&1
        _rc=$?
        if [ "$_rc" = 1 ] && grep -q "granted to domain 0 only" /tmp/xt-dbg-corrupt; then
            vx_pass "debug-corrupt: the server's own --stat: $(head -c 200 /tmp/xt-dbg-corrupt)"
        else
            vx_fail "debug-corrupt: the server's own --stat exit $_rc: $(head -c 300 /tmp/xt-dbg-corrupt)"
        fi
        xt_await done-debug-corrupt >/dev/null
        kill "$_hp" 2>/dev/null
        wait "$_hp" 2>/dev/null
        # Killed, the hostile peer leaves its rendezvous behind (debug-list
        # counts every channel).
        xenstore-rm "$SU/debug-corrupt" 2>/dev/null
        return
    fi
    xt_await ready-debug-corrupt >/dev/null
    vchan-cat --stat "vchan://$XT_PEER/debug-corrupt" >/tmp/xt-dbg-corrupt 2>&1
    _rc=$?
    sed 's/^/    /' /tmp/xt-dbg-corrupt
    if [ "$_rc" = 1 ] && grep -q 'verdict: corrupt (left ring: order out of range (10..20): 9)' \
        /tmp/xt-dbg-corrupt; then
        vx_pass "debug-corrupt: dom0's --stat of the hostile page: corrupt, exit 1"
    else
        vx_fail "debug-corrupt: dom0's --stat exit $_rc (1 and corrupt wanted)"
    fi
    xt_mark done-debug-corrupt
}

# xt_dbg_ports FILE: the ports in a --list --json, sorted, space-separated.
xt_dbg_ports() {
    awk '{ while (match($0, /"port": "[^"]*"/)) {
               print substr($0, RSTART + 9, RLENGTH - 10); $0 = substr($0, RSTART + RLENGTH) } }' \
        "$1" | sort | tr '\n' ' '
}

# debug-list: one channel served by each side; dom0's --list --json (dom0
# reads every domain's rendezvous) has exactly those two, then none.
step_debug_list() {
    xt_begin debug-list || return 0
    if ! dom0; then
        timeout "$XT_STEP" vchan-cat -w "$XT_W" -l vchan://0/debug-list-u </dev/null >/dev/null \
            2>/dev/null &
        _srv=$!
        vx_wait_key "$SU/debug-list-u/ring-ref" 30 >/dev/null
        xt_mark ready-debug-list
        xt_await listed-debug-list >/dev/null
        kill "$_srv" 2>/dev/null
        wait "$_srv" 2>/dev/null
        xt_mark closed-debug-list
        return
    fi
    timeout "$XT_STEP" vchan-cat -w "$XT_W" -l "vchan://$XT_PEER/debug-list-d" </dev/null \
        >/dev/null 2>/dev/null &
    _srv=$!
    vx_wait_key "$S0/debug-list-d/ring-ref" 30 >/dev/null
    xt_await ready-debug-list >/dev/null
    vchan-cat --list --json >/tmp/xt-dbg-list 2>&1
    _p=$(xt_dbg_ports /tmp/xt-dbg-list)
    if [ "$_p" = "debug-list-d debug-list-u " ] &&
        grep -q "\"server\": 0, .*\"client\": $XT_DOMU, .*\"port\": \"debug-list-d\"" /tmp/xt-dbg-list &&
        grep -q "\"server\": $XT_DOMU, .*\"client\": 0, .*\"port\": \"debug-list-u\"" /tmp/xt-dbg-list; then
        vx_pass "debug-list: --list --json: exactly the two channels ($_p)"
    else
        vx_fail "debug-list: --list --json has '$_p': $(head -c 400 /tmp/xt-dbg-list)"
    fi
    kill "$_srv" 2>/dev/null
    wait "$_srv" 2>/dev/null
    xt_mark listed-debug-list
    xt_await closed-debug-list >/dev/null
    _i=0
    while [ "$_i" -lt 20 ]; do
        vchan-cat --list --json >/tmp/xt-dbg-list 2>&1
        [ -n "$(xt_dbg_ports /tmp/xt-dbg-list)" ] || break
        sleep 0.25
        _i=$((_i + 1))
    done
    if [ "$(cat /tmp/xt-dbg-list)" = "[]" ]; then
        vx_pass "debug-list: --list --json: none once both closed"
    else
        vx_fail "debug-list: after closing: $(head -c 400 /tmp/xt-dbg-list)"
    fi
}

# libconduit's accept rendezvous: the scenario of make check-xen-accept
# (accept-dom0.sh and accept-domu.sh, unchanged, with echo-server and
# echo-client), inside this boot; run-scenarios adds them with XEN_ACCEPT_DIR.
# Its checks count as this step's.
step_accept() {
    xt_begin accept || return 0
    _s=/test/bin/accept-$XT_SIDE.sh
    if [ ! -r "$_s" ]; then
        vx_fail "accept: no $_s (run-scenarios adds it when XEN_ACCEPT_DIR is set)"
        return
    fi
    timeout "$XT_STEP" sh "$_s" </dev/null >/tmp/xt-accept 2>&1
    _rc=$?
    sed -e 's/^PASS: /PASS: accept: /' -e 's/^FAIL: /FAIL: accept: /' /tmp/xt-accept
    _p=$(grep -c '^PASS: ' /tmp/xt-accept) _f=$(grep -c '^FAIL: ' /tmp/xt-accept)
    VX_PASSED=$((VX_PASSED + _p)) VX_FAILED=$((VX_FAILED + _f))
    if [ "$_rc" != 0 ] && [ "$_f" = 0 ]; then
        vx_fail "accept: $_s exit status $_rc"
    fi
}

# ---------------------------------------------------------------- compat
# Existing vchan programs over our libxenvchan drop-in (docs/compat.md),
# make check-xen-compat's boot: Debian's own vchan-socket-proxy, run
# unchanged through vchan-compat, in dom0 as server and in the domU as
# client, against vchan-cat and against Xen's libxenvchan (xenvchan-peer)
# on the other side; the hostile peer against the proxy; xv-test (built
# against Debian's libxenvchan.h and library) over ours against itself on
# Debian's library; and the Qubes API (qv-test over libvchan-conduit).
# Every transfer moves XT_MID (16 MiB) one way; each pair runs both ways.

XT_PROXY='timeout $XT_STEP vchan-compat vchan-socket-proxy'
# Its input while it receives: a FIFO opened read-write (never data, never
# an end), since the proxy closes the channel at the end of its input.
XT_HOLD='3<>/tmp/xt-hold <&3'
XT_XP='timeout $XT_STEP xenvchan-peer'

# xt_both STEP SERVER SERVER_CMD CLIENT_CMD: a pair that checks itself
# (exit 0 on both sides), the client started once the server published at
# vchan-cat's directory for port STEP.
xt_both() {
    _step=$1 _server=$2
    if [ "$_server" = dom0 ]; then _dir=$S0/$_step; else _dir=$SU/$_step; fi
    xt_begin "$_step" || return 0
    if [ "$XT_SIDE" = "$_server" ]; then
        (eval "$3" >"/tmp/xt-out-$_step" 2>"/tmp/xt-err-$_step"; echo $? >"/tmp/xt-rc-$_step") &
        _job=$!
        if vx_wait_key "$_dir/ring-ref" 30 >/dev/null; then
            xt_mark "ready-$_step"
        else
            vx_fail "$_step: no server published at $_dir"
        fi
        wait "$_job"
    else
        xt_await "ready-$_step" >/dev/null || { vx_fail "$_step: the server never published"; return; }
        (eval "$4" >"/tmp/xt-out-$_step" 2>"/tmp/xt-err-$_step"; echo $? >"/tmp/xt-rc-$_step")
    fi
    xt_verdict "$_step"
}

# xt_verdict STEP: this side's command of STEP exited 0 (its last line told).
xt_verdict() {
    _rc=$(xt_rc "$1")
    if [ "$_rc" = 0 ]; then
        vx_pass "$1: $XT_SIDE's side: $(tail -n 1 "/tmp/xt-out-$1" 2>/dev/null | tr -cd ' -~')"
    else
        vx_fail "$1: $XT_SIDE's side exit status $_rc"
        xt_show_err "$1"
    fi
}

step_compat_proxy() {
    rm -f /tmp/xt-hold && mkfifo /tmp/xt-hold
    # The proxy serves in dom0 (its rings: 1 KiB read, 2 KiB write).
    xt_transfer compat-ps-srv-u2d "$XT_MID" dom0 domu \
        "$XT_PROXY -m server $XT_PEER $S0/compat-ps-srv-u2d - $XT_HOLD" \
        "$V 'vchan://$XT_PEER/compat-ps-srv-u2d'"
    xt_transfer compat-ps-srv-d2u "$XT_MID" dom0 dom0 \
        "$XT_PROXY -m server $XT_PEER $S0/compat-ps-srv-d2u -" \
        "$V 'vchan://$XT_PEER/compat-ps-srv-d2u'"
    # The proxy is the domU's client of dom0's servers (64 KiB rings).
    xt_transfer compat-ps-cli-u2d "$XT_MID" dom0 domu \
        "$V -l 'vchan://$XT_PEER/compat-ps-cli-u2d'" \
        "$XT_PROXY 0 $S0/compat-ps-cli-u2d -"
    xt_transfer compat-ps-cli-d2u "$XT_MID" dom0 dom0 \
        "$V -l 'vchan://$XT_PEER/compat-ps-cli-d2u'" \
        "$XT_PROXY 0 $S0/compat-ps-cli-d2u - $XT_HOLD"
    _r64="--read-min 64K --write-min 64K --timeout $XT_W"
    xt_transfer compat-ps-cli-xv-u2d "$XT_MID" dom0 domu \
        "$XT_XP server $XT_PEER $S0/compat-ps-cli-xv-u2d $_r64" \
        "$XT_PROXY 0 $S0/compat-ps-cli-xv-u2d -"
    xt_transfer compat-ps-cli-xv-d2u "$XT_MID" dom0 dom0 \
        "$XT_XP server $XT_PEER $S0/compat-ps-cli-xv-d2u $_r64" \
        "$XT_PROXY 0 $S0/compat-ps-cli-xv-d2u - $XT_HOLD"
}

# The proxy serving in dom0, Xen's own libxenvchan the domU's client: the
# slowest pair (libxenvchan sleeps for every ring-full of the proxy's 1-2
# KiB rings: 0.2 MB/s under emulation), so last of the compat steps.
step_compat_proxy_xv() {
    xt_transfer compat-ps-srv-xv-u2d "$XT_MID" dom0 domu \
        "$XT_PROXY -m server $XT_PEER $S0/compat-ps-srv-xv-u2d - $XT_HOLD" \
        "$XT_XP client 0 $S0/compat-ps-srv-xv-u2d --timeout $XT_W"
    xt_transfer compat-ps-srv-xv-d2u "$XT_MID" dom0 dom0 \
        "$XT_PROXY -m server $XT_PEER $S0/compat-ps-srv-xv-d2u -" \
        "$XT_XP client 0 $S0/compat-ps-srv-xv-d2u --timeout $XT_W"
}

# A path outside data/vchan, as libxl gives vchan-socket-proxy for a
# stubdomain's QMP server (/local/domain/<dm>/device-model/<guest>/
# qmp-vchan): dom0 makes the device-model directory the domU's, as libxl
# makes it the stubdomain's; a server in the domU publishes there and
# dom0's proxy (libxl runs it so: client, domain, path) receives 16 MiB.
# Ours serving, Xen's libxenvchan serving to our proxy, and ours serving
# Xen's proxy.
step_compat_dm_path() {
    _dm=/local/domain/$XT_DOMU/device-model/0
    _r64="--read-min 64K --write-min 64K --timeout $XT_W"
    if dom0; then
        xenstore-write "$_dm/state" running && xenstore-chmod "$_dm" "n$XT_DOMU" ||
            vx_fail "compat-dm: cannot make $_dm the domU's"
    fi
    xt_transfer compat-dm-ours "$XT_MID" domu domu \
        "timeout \$XT_STEP vchan-compat xenvchan-peer server 0 $_dm/qmp-ours $_r64" \
        "$XT_PROXY $XT_PEER $_dm/qmp-ours - $XT_HOLD" "$_dm/qmp-ours"
    xt_transfer compat-dm-xen-srv "$XT_MID" domu domu \
        "$XT_XP server 0 $_dm/qmp-xen $_r64" \
        "$XT_PROXY $XT_PEER $_dm/qmp-xen - $XT_HOLD" "$_dm/qmp-xen"
    xt_transfer compat-dm-xen-cli "$XT_MID" domu domu \
        "timeout \$XT_STEP vchan-compat xenvchan-peer server 0 $_dm/qmp-xcli $_r64" \
        "timeout \$XT_STEP vchan-socket-proxy $XT_PEER $_dm/qmp-xcli - $XT_HOLD" "$_dm/qmp-xcli"
    if dom0 && xt_want compat-dm-ours; then
        if xenstore-exists "$_dm/qmp-ours" || ! xenstore-exists "$_dm/state"; then
            vx_fail "compat-dm: after the servers closed, $_dm holds $(xenstore-ls "$_dm" 2>&1 | tr '\n' ' ')"
        else
            vx_pass "compat-dm: the servers removed their paths and left the directory"
        fi
    fi
}

# The hostile peer (a domU client rewriting the shared page at random)
# against the proxy serving in dom0 over the drop-in: the proxy must end
# (any exit status but a signal or its time limit) within 5 s of the
# peer's end, and never write to its output what nobody sent (the peer
# sends garbage: only its count is known, so the check is "ended").
step_compat_hostile() {
    _step=compat-ps-hostile
    xt_begin "$_step" || return 0
    if dom0; then
        (eval "$XT_PROXY -m server $XT_PEER $S0/$_step - $XT_HOLD" >/dev/null 2>"/tmp/xt-err-$_step"
            _r=$?
            echo "$_r" >"/tmp/xt-rc-$_step"
            xt_mark "exited-$_step" "$_r") &
        _job=$!
        vx_wait_key "$S0/$_step/ring-ref" 30 >/dev/null && xt_mark "ready-$_step"
        _end=$(xt_await "hp-end-$_step" 60) || _end=none
        _i=0
        while [ ! -e "/tmp/xt-rc-$_step" ] && [ "$_i" -lt 50 ]; do
            sleep 0.1
            _i=$((_i + 1))
        done
        _rc=$(cat "/tmp/xt-rc-$_step" 2>/dev/null) || _rc=hung
        [ "$_rc" != hung ] || kill "$_job" 2>/dev/null
        wait "$_job" 2>/dev/null
        case $_rc in
            0 | 1) vx_pass "$_step: the proxy ended (exit $_rc) by 5 s after the peer's end ($_end)" ;;
            *) vx_fail "$_step: the proxy: exit $_rc (a signal, its time limit, or still running 5 s after the peer's end: $_end)"
                xt_show_err "$_step" ;;
        esac
    else
        xt_await "ready-$_step" >/dev/null || { vx_fail "$_step: the proxy never published"; return; }
        timeout "$XT_STEP" hostile-peer -a chaos -t 3 -q 1 -w 30 -s "$(xt_ms)" -v "vchan://0/$_step" \
            2>"/tmp/xt-hp-$_step"
        _hrc=$?
        xt_mark "hp-end-$_step" "exit-$_hrc"
        sed -n '1,8s/^/    /p' "/tmp/xt-hp-$_step"
        _prc=$(xt_await "exited-$_step" 20) || _prc=none
        vx_pass "$_step: hostile peer exit $_hrc; the proxy's exit: $_prc"
    fi
}

# xv-test, built against Debian's <libxenvchan.h> and linked against
# Debian's libxenvchan.so.4.17: over ours on both sides (every function and
# convention, then 4 MiB each way), then ours against Debian's own library.
step_compat_xv() {
    _xv='timeout $XT_STEP vchan-compat xv-test' _xr='timeout $XT_STEP xv-test'
    _p0=$S0 _pu=$SU
    xt_both compat-xv-conv dom0 "$_xv server $XT_PEER $_p0/compat-xv-conv conventions" \
        "$_xv client 0 $_p0/compat-xv-conv conventions"
    xt_both compat-xv-ours dom0 \
        "$_xv server $XT_PEER $_p0/compat-xv-ours transfer $((4 << 20)) 65536 nonblocking" \
        "$_xv client 0 $_p0/compat-xv-ours transfer $((4 << 20)) 65536 nonblocking"
    xt_both compat-xv-drain dom0 "$_xv server $XT_PEER $_p0/compat-xv-drain drain" \
        "$_xr client 0 $_p0/compat-xv-drain drain"
    xt_both compat-xv-early dom0 "$_xv server $XT_PEER $_p0/compat-xv-early early" \
        "$_xr client 0 $_p0/compat-xv-early early"
    xt_both compat-xv-srv-ours dom0 \
        "$_xv server $XT_PEER $_p0/compat-xv-srv-ours transfer $((4 << 20)) 65536 nonblocking" \
        "$_xr client 0 $_p0/compat-xv-srv-ours transfer $((4 << 20)) 65536 nonblocking"
    xt_both compat-xv-cli-ours domu \
        "$_xr server 0 $_pu/compat-xv-cli-ours transfer $((4 << 20)) 65536 blocking" \
        "$_xv client $XT_PEER $_pu/compat-xv-cli-ours transfer $((4 << 20)) 65536 blocking"
    xt_both compat-xv-inpage domu \
        "$_xv server 0 $_pu/compat-xv-inpage transfer $XT_SMALL 0 nonblocking" \
        "$_xr client $XT_PEER $_pu/compat-xv-inpage transfer $XT_SMALL 0 nonblocking"
}

# The Qubes API on real Xen, as qrexec uses it: the agent's server waits in
# the domU, dom0 connects with the async client; 16 MiB each way at once.
# Then a dom0 server whose domU client dies mid-stream (kill -9): the
# server's blocking read gives -1 and is_open VCHAN_DISCONNECTED.
step_compat_qubes() {
    _step=compat-qubes
    if xt_begin "$_step"; then
        if dom0; then
            # Started first: the async client waits for the server to appear.
            (timeout "$XT_STEP" qv-test client "$XT_PEER" 42 "$XT_MID" >"/tmp/xt-out-$_step" \
                2>"/tmp/xt-err-$_step"; echo $? >"/tmp/xt-rc-$_step") &
            _job=$!
            xt_mark "started-$_step"
            wait "$_job"
        else
            xt_await "started-$_step" >/dev/null
            sleep 2
            timeout "$XT_STEP" qv-test server 0 42 "$XT_MID" >"/tmp/xt-out-$_step" 2>"/tmp/xt-err-$_step"
            echo $? >"/tmp/xt-rc-$_step"
        fi
        xt_verdict "$_step"
    fi
    _step=compat-qubes-death
    xt_begin "$_step" || return 0
    if dom0; then
        (timeout "$XT_STEP" qv-test server "$XT_PEER" 43 death >"/tmp/xt-out-$_step" \
            2>"/tmp/xt-err-$_step"; echo $? >"/tmp/xt-rc-$_step") &
        _job=$!
        vx_wait_key "$S0/43/ring-ref" 30 >/dev/null && xt_mark "ready-$_step"
        wait "$_job"
    else
        xt_await "ready-$_step" >/dev/null || { vx_fail "$_step: the server never published"; return; }
        # No timeout(1) in between: the kill must reach qv-test itself.
        qv-test client 0 43 stream >"/tmp/xt-out-$_step" 2>"/tmp/xt-err-$_step" &
        _pid=$!
        sleep 3
        kill -9 "$_pid"
        wait "$_pid" 2>/dev/null
        echo 0 >"/tmp/xt-rc-$_step"
    fi
    xt_verdict "$_step"
}

# Most important first: when time runs short, dom0 skips from the end of
# this list (destroy always runs).
step_setup
step_basic
step_hostile
step_orders
step_libxenvchan
step_accept
step_late_server
step_api_late_server
step_no_server
step_perms
step_kill_receiver
step_bad_xenstore
step_debug
step_debug_flow
step_debug_corrupt
step_debug_list
step_compat_proxy
step_compat_dm_path
step_compat_hostile
step_compat_xv
step_compat_qubes
step_compat_proxy_xv
step_socket_proxy
step_libxenvchan_more
step_sodium
step_destroy
vx_finish
