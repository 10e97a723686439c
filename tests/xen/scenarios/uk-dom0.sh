#!/bin/sh
# SPDX-License-Identifier: ISC
#
# Real-Xen scenarios of the unikernel vchan driver, dom0 half. dom0 boots
# our own PV guest kernels (unikernel/guest + examples/unikernel-echo) with
# `xl create`, talks to them with vchan-cat (ours) and xenvchan-peer (Xen's
# libxenvchan), and reads each guest's verdict from its console log, which
# xenconsoled --log=guest keeps at /var/log/xen/console/guest-NAME.log.
# uk-domu.sh is the Linux domU half (one step: libxenvchan in a Linux guest
# against a unikernel guest). Run by tests/xen/scenarios/uk-run.sh:
#   tests/xen/run --dom0 uk-dom0.sh --domu uk-domu.sh --install STAGE \
#       --add vchan-uk-echo --add vchan-uk-client --add xenvchan-peer \
#       --add xen-data [--add uk-params.sh]
#
# Steps (UK_STEPS selects, default all):
#   echo    guest echo server; dom0 clients: vchan-cat at ring orders 16
#           (UK_BIG, the 16 MiB target), 10/11 and 12, the guest closing
#           first; Xen's libxenvchan at 12/16 and a Linux domU's libxenvchan
#           (uk-domu.sh) at 16, closing first; a vchan-cat client that closes
#           while its echo is still coming. Checks the rendezvous permissions
#           and their removal on close.
#   client  guest client; dom0 servers: vchan-cat sending (order 16) and
#           receiving (orders 10/11), libxenvchan sending (10/11) and
#           receiving (16); the guest closes first when it sends, the server
#           when it does.
#   g2g     two guests, echo server and client, orders 16 and 10/11, the
#           server published for the other guest alone.
# Output: PASS:/FAIL: lines (lib.sh), PERF: STEP BYTES SECONDS MB/S from the
# guest's own clock, and TIME: STEP N s (the step's wall time in dom0; for
# a whole step, xl create included).

. /test/lib.sh

export VCHAN_PLATFORM=xen

UK_STEPS=
# Bytes per transfer. Under emulation every ring cycle costs about 20-30 ms
# of event latency (Linux to Linux as much as with our guests), so the
# smaller the ring, the shorter the stream; each is still many rings long.
UK_BIG=$((16 << 20))  # 64 KiB rings: the target, 16 MiB through the echo guest
UK_MID=$((4 << 20))   # 64 KiB rings
UK_SMALL=$((1 << 20)) # 4 KiB rings
UK_TINY=$((256 << 10)) # the in-page 1 and 2 KiB rings
[ -r /test/bin/uk-params.sh ] && . /test/bin/uk-params.sh

UK_W=30      # vchan-cat / xenvchan-peer inactivity limit (s)
UK_CMD=150   # hard limit of any one command (s)
UK_GUEST_TIMEOUT=60 # the guests' own limit of every wait (s)
LOGS=/var/log/xen/console

uk_want() {
    [ -z "$UK_STEPS" ] && return 0
    case " $UK_STEPS " in *" $1 "*) return 0 ;; esac
    return 1
}

uk_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
uk_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# uk_create NAME KERNEL CMDLINE [-p]: boot one of our guests (paused with
# -p); prints its domid (xl's complaints go to stderr, which we show).
uk_create() {
    cat >"/tmp/$1.cfg" <<EOF
name = "$1"
type = "pv"
kernel = "/test/bin/$2"
cmdline = "$3"
memory = 32
vcpus = 1
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "preserve"
EOF
    rm -f "$LOGS/guest-$1.log"
    timeout 120 xl create -q ${4:-} "/tmp/$1.cfg" >"/tmp/$1.xl" 2>&1 ||
        { sed 's/^/    /' "/tmp/$1.xl" >&2; return 1; }
    xl domid "$1"
}

# uk_log NAME: the guest's console so far.
uk_log() { cat "$LOGS/guest-$1.log" 2>/dev/null; }

# uk_result NAME WHAT PORT SECS [noperf]: wait for the guest's RESULT line
# of PORT (it may come a moment after dom0's side is done); PASS/FAIL with
# it, and a PERF line from the guest's clock unless told not to.
uk_result() {
    _i=0
    while [ "$_i" -lt $(($4 * 10)) ]; do
        _l=$(uk_log "$1" | grep "^vchan-uk RESULT $2 $3 " | head -n 1)
        [ -n "$_l" ] && break
        # A guest that crashed or powered off will not print it any more.
        xl domid "$1" >/dev/null 2>&1 || { _l=$(uk_log "$1" | grep "^vchan-uk RESULT $2 $3 "); break; }
        _i=$((_i + 1))
        sleep 0.1
    done
    case $_l in
        *" $3 PASS "*)
            vx_pass "uk-$3: guest: ${_l#vchan-uk RESULT $2 $3 PASS }"
            # PERF from the guest's clock: bytes and ms are in the line.
            _b=$(echo "$_l" | sed -nE 's/.* (echoed|bytes)=([0-9]+).*/\2/p')
            _t=$(echo "$_l" | sed -nE 's/.* ms=([0-9]+).*/\1/p')
            [ -z "${5:-}" ] && [ -n "$_b" ] && [ -n "$_t" ] && awk -v s="uk-$3" -v b="$_b" -v t="$_t" \
                'BEGIN { if (t < 1) t = 1; printf "PERF: %s %d %.3f %.2f\n", s, b, t / 1000, b / t / 1000 }'
            ;;
        '') vx_fail "uk-$3: guest printed no result" ;;
        *) vx_fail "uk-$3: guest: ${_l#vchan-uk RESULT $2 $3 }" ;;
    esac
}

# uk_wait_gone NAME SECS: until the guest has powered off; destroy it after
# SECS (a FAIL), and show its console if it crashed.
uk_wait_gone() {
    _i=0
    while xl domid "$1" >/dev/null 2>&1; do
        if xl list "$1" 2>/dev/null | awk 'NR == 2 && $5 ~ /c/ { c = 1 } END { exit !c }'; then
            vx_fail "uk-$1: guest crashed"
            uk_log "$1" | sed 's/^/    | /'
            xl destroy "$1" 2>/dev/null
            return 1
        fi
        _i=$((_i + 1))
        if [ "$_i" -gt $(($2 * 5)) ]; then
            vx_fail "uk-$1: guest still running after $2 s; destroyed"
            xl destroy "$1" 2>/dev/null
            return 1
        fi
        sleep 0.2
    done
    return 0
}

# uk_show NAME: the guest's console in our output, indented.
uk_show() {
    echo "  console of $1:"
    uk_log "$1" | sed 's/^/    | /'
}

# uk_feed STREAM BYTES FIFO: the stream into FIFO, which then stays open
# without end of input until FEEDER is killed. An echo service cannot know
# where the input ends: the client must keep reading until the guest
# closes, and vchan-cat and xenvchan-peer close as soon as their input
# ends and has been consumed (vchan has no half-close).
rm -f /tmp/uk-hold
mkfifo /tmp/uk-hold
exec 3<>/tmp/uk-hold
uk_feed() {
    rm -f "$3"
    mkfifo "$3"
    (xen-data gen "$1" "$2" && exec cat <&3) >"$3" &
    FEEDER=$!
}

# uk_feed_until STREAM BYTES FIFO OUT: the stream into FIFO; the input
# ends only once OUT holds BYTES, i.e. once the whole echo is back, so the
# client then closes first and cleanly. For xenvchan-peer, which (unlike
# vchan-cat) calls it an error when the peer closes before its input ended.
uk_feed_until() {
    rm -f "$3" "$4"
    mkfifo "$3"
    : >"$4"
    (xen-data gen "$1" "$2" && while [ "$(wc -c <"$4")" -lt "$2" ]; do sleep 0.2; done) >"$3" &
    FEEDER=$!
}

# uk_check_recv STEP RC CHECK_RC ERRFILE: dom0's side of a transfer.
uk_check_recv() {
    if [ "$2" != 0 ]; then
        vx_fail "uk-$1: dom0 peer exit status $2"
        sed -n '1,10s/^/    /p' "$4"
    elif [ "$3" != 0 ]; then
        vx_fail "uk-$1: dom0: $(tail -n 1 "/tmp/uk-chk-$1")"
        sed -n '1,10s/^/    /p' "$4"
    else
        vx_pass "uk-$1: dom0: $(tail -n 1 "/tmp/uk-chk-$1")"
    fi
}

# uk_perms STEP PATH WANT: the rendezvous key's permissions, as xenstore-ls
# shows them ("n<owner>,r<reader>"), once the key exists.
uk_perms() {
    if ! vx_wait_key "$2" 60 >/dev/null; then
        vx_fail "uk-$1: no $2 after 60 s"
        return
    fi
    _p=$(xenstore-ls -p "${2%/*}" 2>/dev/null | sed -n "s/^${2##*/} = .*(\([^)]*\)).*/\1/p")
    if [ "$_p" = "$3" ]; then
        vx_pass "uk-$1: ${2##*/} owned by the guest, readable by its peer alone ($_p)"
    else
        vx_fail "uk-$1: ${2##*/} permissions '$_p', want '$3'"
    fi
}

# uk_gone STEP PATH: the guest removed its rendezvous on close.
uk_gone() {
    _i=0
    while xenstore-exists "$2" 2>/dev/null; do
        _i=$((_i + 1))
        [ "$_i" -gt 50 ] && { vx_fail "uk-$1: $2 still there 5 s after the close"; return; }
        sleep 0.1
    done
    vx_pass "uk-$1: rendezvous removed on close"
}

# uk_echo_cat STEP DOMID BYTES: BYTES through the guest's echo service at
# port STEP with vchan-cat, checked on the way back.
uk_echo_cat() {
    uk_feed "$1" "$3" "/tmp/uk-in-$1"
    {
        timeout $UK_CMD vchan-cat -v -w $UK_W "vchan://$2/$1" <"/tmp/uk-in-$1" 2>"/tmp/uk-err-$1"
        echo $? >"/tmp/uk-rc-$1"
    } | xen-data check "$1" "$3" 2>"/tmp/uk-chk-$1"
    _chk=$?
    kill "$FEEDER" 2>/dev/null
    uk_check_recv "$1" "$(cat "/tmp/uk-rc-$1")" "$_chk" "/tmp/uk-err-$1"
}

# ------------------------------------------------------------------ echo

step_echo() {
    _t0=$(uk_ms)
    echo "---- echo: guest echo server, dom0 and domU clients"
    _cmd="peer=0 timeout=$UK_GUEST_TIMEOUT"
    _cmd="$_cmd serve=o16,64K,64K,$UK_BIG serve=o1011,1K,2K,$UK_TINY serve=o12,4K,4K,$UK_SMALL"
    _cmd="$_cmd serve=xv,4K,64K serve=lx,64K,64K,0,$DOMU_ID serve=cclose,64K,64K"
    E=$(uk_create uk-echo vchan-uk-echo "$_cmd") || { vx_fail "uk-echo: xl create failed"; return; }
    _t1=$(uk_ms)
    echo "  uk-echo is domain $E (xl create $(uk_secs "$_t0" "$_t1") s)"
    R=/local/domain/$E/data/vchan

    # The 16 MiB target: vchan-cat through the guest at 64 KiB rings.
    uk_perms o16 "$R/0/o16/ring-ref" "n$E,r0"
    _s=$(uk_ms)
    uk_echo_cat o16 "$E" "$UK_BIG"
    uk_result uk-echo echo o16 10
    uk_gone o16 "$R/0/o16"
    echo "TIME: uk-o16 $(uk_secs "$_s" "$(uk_ms)") s"

    _s=$(uk_ms)
    uk_echo_cat o1011 "$E" "$UK_TINY"
    uk_result uk-echo echo o1011 10
    echo "TIME: uk-o1011 $(uk_secs "$_s" "$(uk_ms)") s"

    _s=$(uk_ms)
    uk_echo_cat o12 "$E" "$UK_SMALL"
    uk_result uk-echo echo o12 10
    echo "TIME: uk-o12 $(uk_secs "$_s" "$(uk_ms)") s"

    # Xen's libxenvchan as the client (guest rings 4 KiB in, 64 KiB out);
    # it closes first, once its whole echo is back.
    _s=$(uk_ms)
    uk_feed_until xv "$UK_SMALL" /tmp/uk-in-xv /tmp/uk-out-xv
    timeout $UK_CMD xenvchan-peer client "$E" "$R/0/xv" --timeout $UK_W -v \
        </tmp/uk-in-xv >/tmp/uk-out-xv 2>/tmp/uk-err-xv
    _rc=$?
    kill "$FEEDER" 2>/dev/null
    xen-data check xv "$UK_SMALL" </tmp/uk-out-xv 2>/tmp/uk-chk-xv
    uk_check_recv xv "$_rc" $? /tmp/uk-err-xv
    uk_result uk-echo echo xv 10
    case $(uk_log uk-echo | grep '^vchan-uk RESULT echo xv ') in
        *closed-by=client*) vx_pass "uk-xv: the guest saw libxenvchan close first" ;;
        *) vx_fail "uk-xv: the guest did not report a client close" ;;
    esac
    echo "TIME: uk-xv $(uk_secs "$_s" "$(uk_ms)") s"

    # A Linux domU's libxenvchan as the client: uk-domu.sh does the work.
    _s=$(uk_ms)
    xenstore-write "/local/domain/$DOMU_ID/data/uk/lx" "$E"
    uk_perms lx "$R/$DOMU_ID/lx/ring-ref" "n$E,r$DOMU_ID"
    uk_result uk-echo echo lx $UK_CMD
    echo "TIME: uk-lx $(uk_secs "$_s" "$(uk_ms)") s"

    # The client closes first: vchan-cat's input ends, it waits until the
    # guest has read it all and closes; the guest must see the close (and
    # may find its last echo refused), then finish cleanly.
    _s=$(uk_ms)
    xen-data gen cclose "$UK_SMALL" >/tmp/uk-cclose
    timeout $UK_CMD vchan-cat -v -w $UK_W "vchan://$E/cclose" </tmp/uk-cclose >/dev/null \
        2>/tmp/uk-err-cclose
    _rc=$?
    if [ "$_rc" = 0 ]; then
        vx_pass "uk-cclose: dom0: vchan-cat sent $UK_SMALL bytes and closed first"
    else
        vx_fail "uk-cclose: dom0: vchan-cat exit status $_rc"
        sed -n '1,10s/^/    /p' /tmp/uk-err-cclose
    fi
    uk_result uk-echo echo cclose 10
    case $(uk_log uk-echo | grep '^vchan-uk RESULT echo cclose ') in
        *closed-by=client*) vx_pass "uk-cclose: the guest saw the client close" ;;
        *) vx_fail "uk-cclose: the guest did not report a client close" ;;
    esac
    echo "TIME: uk-cclose $(uk_secs "$_s" "$(uk_ms)") s"

    uk_wait_gone uk-echo 30 && vx_pass "uk-echo: guest powered off"
    uk_show uk-echo
    echo "TIME: uk-echo $(uk_secs "$_t0" "$(uk_ms)") s, whole step (xl create $(uk_secs "$_t0" "$_t1") s)"
}

# ---------------------------------------------------------------- client

step_client() {
    _t0=$(uk_ms)
    echo "---- client: guest client, dom0 servers"
    _cmd="peer=0 timeout=$UK_GUEST_TIMEOUT"
    _cmd="$_cmd conn=crecv,recv,$UK_MID conn=csend,send,$UK_TINY"
    _cmd="$_cmd conn=xvrecv,recv,$UK_TINY conn=xvsend,send,$UK_MID"
    C=$(uk_create uk-client vchan-uk-client "$_cmd") || { vx_fail "uk-client: xl create failed"; return; }
    _t1=$(uk_ms)
    echo "  uk-client is domain $C (xl create $(uk_secs "$_t0" "$_t1") s)"
    S=/local/domain/0/data/vchan/$C

    # vchan-cat serves (64 KiB rings) and sends; it closes first, once the
    # guest has read everything.
    _s=$(uk_ms)
    xen-data gen crecv "$UK_MID" |
        timeout $UK_CMD vchan-cat -v -w $UK_W -l "vchan://$C/crecv" >/dev/null 2>/tmp/uk-err-crecv
    _rc=$?
    vx_check_status "$_rc" "uk-crecv: dom0: vchan-cat -l sent $UK_MID bytes"
    [ "$_rc" = 0 ] || sed -n '1,10s/^/    /p' /tmp/uk-err-crecv
    uk_result uk-client client crecv 10
    echo "TIME: uk-crecv $(uk_secs "$_s" "$(uk_ms)") s"

    # vchan-cat serves with the in-page rings (orders 10/11) and receives;
    # the guest closes first.
    _s=$(uk_ms)
    {
        timeout $UK_CMD vchan-cat -v -w $UK_W -l "vchan://$C/csend?read-size=1024&write-size=2048" \
            </dev/null 2>/tmp/uk-err-csend
        echo $? >/tmp/uk-rc-csend
    } | xen-data check csend "$UK_TINY" 2>/tmp/uk-chk-csend
    uk_check_recv csend "$(cat /tmp/uk-rc-csend)" $? /tmp/uk-err-csend
    uk_result uk-client client csend 10
    echo "TIME: uk-csend $(uk_secs "$_s" "$(uk_ms)") s"

    # Xen's libxenvchan serves with its default rings (10/11) and sends.
    _s=$(uk_ms)
    xen-data gen xvrecv "$UK_TINY" |
        timeout $UK_CMD xenvchan-peer server "$C" "$S/xvrecv" --timeout $UK_W -v \
            >/dev/null 2>/tmp/uk-err-xvrecv
    _rc=$?
    vx_check_status "$_rc" "uk-xvrecv: dom0: libxenvchan server sent $UK_TINY bytes"
    [ "$_rc" = 0 ] || sed -n '1,10s/^/    /p' /tmp/uk-err-xvrecv
    uk_result uk-client client xvrecv 10
    echo "TIME: uk-xvrecv $(uk_secs "$_s" "$(uk_ms)") s"

    # libxenvchan serves with 64 KiB rings and receives.
    _s=$(uk_ms)
    {
        timeout $UK_CMD xenvchan-peer server "$C" "$S/xvsend" --read-min 64K --write-min 64K \
            --timeout $UK_W -v </dev/null 2>/tmp/uk-err-xvsend
        echo $? >/tmp/uk-rc-xvsend
    } | xen-data check xvsend "$UK_MID" 2>/tmp/uk-chk-xvsend
    uk_check_recv xvsend "$(cat /tmp/uk-rc-xvsend)" $? /tmp/uk-err-xvsend
    uk_result uk-client client xvsend 10
    echo "TIME: uk-xvsend $(uk_secs "$_s" "$(uk_ms)") s"

    uk_wait_gone uk-client 30 && vx_pass "uk-client: guest powered off"
    uk_show uk-client
    echo "TIME: uk-client $(uk_secs "$_t0" "$(uk_ms)") s, whole step (xl create $(uk_secs "$_t0" "$_t1") s)"
}

# ------------------------------------------------------------------- g2g

step_g2g() {
    _t0=$(uk_ms)
    echo "---- g2g: guest echo server, guest client"
    # Each needs the other's domid, known only once both exist: create both
    # paused, tell each its peer in xenstore, then let them run.
    A=$(uk_create uk-g2g-srv vchan-uk-echo \
        "peer=xenstore timeout=$UK_GUEST_TIMEOUT serve=g2g,64K,64K serve=g2gsmall,1K,2K" -p) ||
        { vx_fail "uk-g2g: xl create failed"; return; }
    B=$(uk_create uk-g2g-cli vchan-uk-client \
        "peer=xenstore timeout=$UK_GUEST_TIMEOUT conn=g2g,echo,$UK_MID conn=g2gsmall,echo,$UK_TINY" -p) ||
        { vx_fail "uk-g2g: xl create failed"; xl destroy uk-g2g-srv; return; }
    _t1=$(uk_ms)
    echo "  server is domain $A, client domain $B (xl create x2 $(uk_secs "$_t0" "$_t1") s)"
    xenstore-write "/local/domain/$A/data/uk-peer" "$B" "/local/domain/$B/data/uk-peer" "$A"
    # The server first, so that its rendezvous can be checked before use.
    xl unpause uk-g2g-srv
    uk_perms g2g "/local/domain/$A/data/vchan/$B/g2g/ring-ref" "n$A,r$B"
    xl unpause uk-g2g-cli
    uk_wait_gone uk-g2g-cli $UK_CMD && vx_pass "uk-g2g: client guest powered off"
    uk_wait_gone uk-g2g-srv 30 && vx_pass "uk-g2g: server guest powered off"
    uk_result uk-g2g-cli client g2g 1
    uk_result uk-g2g-srv echo g2g 1 noperf
    uk_result uk-g2g-cli client g2gsmall 1
    uk_result uk-g2g-srv echo g2gsmall 1 noperf
    uk_show uk-g2g-srv
    uk_show uk-g2g-cli
    echo "TIME: uk-g2g $(uk_secs "$_t0" "$(uk_ms)") s, whole step (2 xl creates $(uk_secs "$_t0" "$_t1") s)"
}

uk_want echo && step_echo
# Tell the domU whether to wait for the lx step.
uk_want echo || xenstore-write "/local/domain/$DOMU_ID/data/uk/lx" skip
uk_want client && step_client
uk_want g2g && step_g2g

# The domU waits for this before it ends: the harness stops one side soon
# after the other fails, and a domU failure must not cut our steps short.
xenstore-write "/local/domain/$DOMU_ID/data/uk/done" 1
vx_finish
