#!/bin/sh
# SPDX-License-Identifier: ISC
#
# Real-Xen scenarios of our vchan (dom0/platform_xen.c) and vchan-cat, for
# BOTH guests: tests/xen/run-scenarios boots once with
#   tests/xen/run --dom0 xen-scenarios.sh --domu xen-scenarios.sh \
#                 --install STAGE --add xenvchan-peer --add xen-data --add xen-params.sh
# and each step below is written once, with what dom0 and the domU do in it
# side by side. Before each step both sides meet at a barrier in xenstore
# (under the domU's data directory, which both domains may write), so a
# failed step cannot shift the rest out of step.
#
# Covered: vchan-cat both ways and in both roles at ring orders 10/11, 12,
# 16 and 20 with checked data; vchan-cat against Xen's libxenvchan
# (xenvchan-peer) in both roles and against Xen's vchan-socket-proxy; a
# client started before its server; a client with no server (-w); the
# rendezvous' xenstore permissions and its removal on close; malformed
# xenstore values; a receiver killed mid-transfer; and, last, `xl destroy`
# of the domU mid-transfer in both directions at once.
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

# Bytes per transfer: BIG for rings of a page or more, SMALL for the in-page
# 1-2 KiB rings (one event round trip per KiB is slow under emulation).
# A sender stops early after XT_SECS, so that the whole run keeps to its
# time budget however loaded the emulator is; the receiver then checks the
# shorter stream against the count the sender published.
XT_BIG=$((64 << 20))
XT_SMALL=$((1 << 20))
XT_SECS=6
# Steps to run (all when empty); overrides of the above. run-scenarios
# writes these into xen-params.sh (--add puts it in /test/bin).
XT_STEPS=
[ -r /test/bin/xen-params.sh ] && . /test/bin/xen-params.sh
echo "settings: XT_BIG=$XT_BIG XT_SMALL=$XT_SMALL XT_SECS=$XT_SECS XT_STEPS='$XT_STEPS'"

XT_W=15    # inactivity limit of every vchan-cat and peer (s)
XT_STEP=150 # hard limit of any one command, and of a barrier (s)
V="timeout $XT_STEP vchan-cat -w $XT_W"

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
xt_mark() { xenstore-write "$XT/$XT_SIDE/$1" "${2:-1}"; }
xt_await() { vx_wait_key "$XT/$XT_OTHER/$1" "${2:-$XT_STEP}"; }

# xt_want STEP: is STEP selected? Steps named xv-ref-* (references for the
# throughput figures, not checks of ours) run only when named.
xt_want() {
    case " $XT_STEPS " in *" $1 "*) return 0 ;; esac
    case $1 in setup) return 0 ;; xv-ref-*) return 1 ;; esac
    [ -z "$XT_STEPS" ]
}

# The time budget. The guests' init kills a script after VX_SCRIPT_TIMEOUT
# seconds; dom0 leads: it skips a step unless the longest step so far still
# fits before the reserve for the last step (destroy) and the reports, so
# that a slow, shared emulator costs coverage of the steps at the end of
# the list, visibly (SKIP lines), rather than the whole run.
XT_RESERVE=45
XT_LONGEST=0 XT_PREV=
XT_T0=$(awk '{ printf "%d\n", $1 }' /proc/uptime)
[ -r /etc/vchan-xen.env ] && XT_LIMIT=$(sed -n 's/^VX_SCRIPT_TIMEOUT=//p' /etc/vchan-xen.env)

xt_time_left() { # seconds, or a large number when the limit is unknown
    echo $((XT_T0 + ${XT_LIMIT:-100000} - $(awk '{ printf "%d\n", $1 }' /proc/uptime)))
}

# xt_begin STEP: false when STEP is not selected or is skipped; else both
# sides have reached STEP when it returns.
xt_begin() {
    xt_want "$1" || return 1
    echo "---- $1 (t=$(xt_ms) ms, $(xt_time_left) s left)"
    if dom0; then
        _now=$(awk '{ printf "%d\n", $1 }' /proc/uptime)
        [ -z "$XT_PREV" ] || [ $((_now - XT_PREV)) -le "$XT_LONGEST" ] ||
            XT_LONGEST=$((_now - XT_PREV))
        XT_PREV=$_now
        _go=go
        [ "$1" = destroy ] || [ "$(xt_time_left)" -ge $((XT_RESERVE + XT_LONGEST)) ] || _go=skip
        xt_mark "sync-$1" "$_go"
        xt_await "sync-$1" >/dev/null || vx_fail "$1: the domU never reached this step"
        # The first barrier waits for the domU to boot: not a step's cost.
        [ "$1" != setup ] || XT_PREV=$(awk '{ printf "%d\n", $1 }' /proc/uptime)
    else
        xt_mark "sync-$1"
        _go=$(xt_await "sync-$1") || { vx_fail "$1: dom0 never reached this step"; _go=go; }
    fi
    if [ "$_go" = skip ]; then
        dom0 && echo "SKIP: $1: out of time ($(xt_time_left) s left; the longest step took" \
            "$XT_LONGEST s, $XT_RESERVE s are kept for the end)"
        return 1
    fi
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

# The other ring orders; the server picks them.
step_orders() {
    xt_vcat_pair o12-u2d "$XT_BIG" dom0 domu 'read-size=4096&write-size=4096'
    xt_vcat_pair o12-d2u "$XT_BIG" domu dom0 'read-size=4096&write-size=4096'
    xt_vcat_pair o20-u2d "$XT_BIG" dom0 domu 'read-size=1048576&write-size=1048576'
    xt_vcat_pair o20-d2u "$XT_BIG" domu dom0 'read-size=1048576&write-size=1048576'
    # In-page rings: (read 10, write 11) and (read 11, write 10).
    xt_vcat_pair o10-u2d "$XT_SMALL" dom0 domu 'read-size=1024&write-size=2048'
    xt_vcat_pair o11-d2u "$XT_SMALL" domu dom0 'read-size=2048&write-size=1024'
    xt_vcat_pair o10-d2u-srv "$XT_SMALL" dom0 dom0 'read-size=2048&write-size=1024'
}

# Xen's own libxenvchan (tests/xen/xenvchan-peer.c) in each role and domain.
step_libxenvchan() {
    _xp="timeout $XT_STEP xenvchan-peer"
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
    _xp="timeout $XT_STEP xenvchan-peer"
    _r64="--read-min 64K --write-min 64K --timeout $XT_W"
    # libxenvchan's default rings (1 KiB read, 2 KiB write); our client sends.
    xt_transfer xv-default "$XT_SMALL" domu dom0 \
        "$_xp server 0 $SU/xv-default --timeout $XT_W" "$V 'vchan://$XT_PEER/xv-default'"
    # References for the throughput figures, run only when named: libxenvchan
    # on both ends, set up as xv-srv-dom0 and xv-default.
    xt_transfer xv-ref-srv-dom0 "$XT_BIG" dom0 domu \
        "$_xp server $XT_PEER $S0/xv-ref-srv-dom0 $_r64" \
        "$_xp client 0 $S0/xv-ref-srv-dom0 --timeout $XT_W"
    xt_transfer xv-ref-default "$XT_SMALL" domu dom0 \
        "$_xp server 0 $SU/xv-ref-default --timeout $XT_W" \
        "$_xp client $XT_PEER $SU/xv-ref-default --timeout $XT_W"
}

# Xen's vchan-socket-proxy (dom0 only) with stdin/stdout as its socket.
step_socket_proxy() {
    # As client it closes as soon as its input ends; our server must still
    # deliver what the ring holds.
    xt_transfer vsp-client "$XT_BIG" domu dom0 \
        "$V -l 'vchan://$XT_PEER/vsp-client'" \
        "timeout $XT_STEP vchan-socket-proxy $XT_PEER $SU/vsp-client -"
    # As server, its input must stay open (at end of input it closes): a
    # FIFO opened read-write never ends and never has data.
    dom0 && rm -f /tmp/xt-hold && mkfifo /tmp/xt-hold
    xt_transfer vsp-server "$XT_BIG" dom0 domu \
        "timeout $XT_STEP vchan-socket-proxy -m server $XT_PEER $S0/vsp-server - 3<>/tmp/xt-hold <&3" \
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

# Last: `xl destroy` of the domU while data flows both ways. No kernel of
# the domU is left to run unmap-notify: dom0's side learns it from
# xenstore's @releaseDomain, and both of dom0's vchan-cats (one server that
# receives, one client that sends) must end with exit status 1 within 2 s.
step_destroy() {
    xt_begin destroy || return 0
    # The domU's results so far, before it is gone.
    if ! dom0; then
        xt_mark domu-result "$VX_PASSED $VX_FAILED"
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
    for _d in u2d d2u; do
        rm -f "/tmp/xt-fifo-$_d" "/tmp/xt-end-destroy-$_d"
        mkfifo "/tmp/xt-fifo-$_d"
        xen-data stamp <"/tmp/xt-fifo-$_d" >"/tmp/xt-err-destroy-$_d" &
    done
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
    until grep -q "connected" /tmp/xt-err-destroy-u2d && grep -q "connected" /tmp/xt-err-destroy-d2u ||
        [ "$_i" -ge 100 ]; do
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
}

# Most important first: when time runs short, dom0 skips from the end of
# this list (destroy always runs).
step_setup
step_basic
step_libxenvchan
step_late_server
step_api_late_server
step_no_server
step_perms
step_kill_receiver
step_orders
step_bad_xenstore
step_socket_proxy
step_libxenvchan_more
step_destroy
vx_finish
