/* SPDX-License-Identifier: ISC */
/*
 * fuzz_ring: the ring core against a peer that rewrites the shared page.
 *
 * A server and a client on the loop platform (tests/unit/loop_platform.c,
 * both ends in this process). One of them is "ours", the code under test;
 * the other is the peer: a real libvchan end that behaves, plus a hostile
 * hand that rewrites any field of the control page and any ring byte
 * between operations. The input is a script:
 *
 *   byte 0   bit 0: ours is the client; bits 1-3: ring sizes; bits 4-6:
 *            where the free-running indices start (near 0, near 2^32, ...);
 *            bit 7: the client connects only when the script says so
 *   then     operations, each an opcode byte and its arguments (see `ops`)
 *
 * Every operation runs non-blocking, or blocking with a 1 ms timeout, so a
 * script never hangs. Invariants, checked after each of our calls:
 * - never more bytes than asked; counts agree with how far our private
 *   indices moved (packets: all or nothing);
 * - delivered bytes are exactly the peer's stream at that position while
 *   the hostile hand has left our read ring alone, and the peer's library
 *   reads exactly our stream while it has left our write ring alone;
 * - while our read ring is untouched, data the peer wrote is never
 *   reported as absent, and end-of-file comes only after all of it;
 * - end-of-file and EPIPE only when the peer's live byte says closed or the
 *   platform saw it go; EPROTO only after a hostile write;
 * - after EPROTO every call returns EPROTO;
 * - our calls never write a field the peer owns (its index, live byte,
 *   orders, grants) nor (small rings) a byte of the ring we read;
 * - no access outside the rings: ASan, and the loop platform's guard pages;
 * - everything is released at the end (loop_outstanding() == 0).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libvchan/core/barrier.h"
#include "fuzz.h"
#include "libvchan/core/internal.h"
#include "loop_platform.h"

#define STREAM_PEER 0x11 /* what the peer writes to us */
#define STREAM_OURS 0x22 /* what we write to the peer */
#define MAX_OPS 400
#define MAX_BLOCKING 2     /* 1 ms each: keeps executions fast */
#define SNAP_RING_MAX 4096 /* rings up to this size are snapshotted around our calls */
#define PORT "fz"

/* Server's (read, write) minimum sizes: in-page, mixed and page rings (orders 10..16). */
static const size_t sizes[8][2] = {
    {1, 1},         /* 10, 11: libxenvchan's default */
    {2048, 1024},   /* 11, 10 */
    {4096, 4096},   /* 12, 12 */
    {1024, 8192},   /* 11, 13 */
    {3000, 1},      /* 12, 11 */
    {16384, 4096},  /* 14, 12 */
    {65536, 65536}, /* 16, 16: our default */
    {1, 65536},     /* 11, 16 */
};

struct state {
    struct vchan *srv, *cli;
    struct vchan *ours, *peer; /* peer: NULL before it connects and after it closed */
    bool ours_client;
    bool peer_opened;  /* the client's open was tried (delayed connect) */
    bool peer_crashed; /* loop_crash: still to be closed, no more I/O */
    bool behaved;      /* our read ring's index and bytes untouched by the hostile hand */
    bool clean;        /* our write ring's index and bytes untouched */
    bool hostile;      /* any index or live byte rewritten: EPROTO is allowed */
    bool broken;       /* we returned EPROTO */
    bool fault;        /* a platform fault was injected: EIO is allowed */
    int blocking_left;
    uint64_t peer_sent, we_got, we_sent, peer_got;
    uint8_t *buf; /* scratch of the size each call asks for */
};

/* ------------------------------------------------------------ set-up */

static int open_server(struct state *s, struct fuzz_in *in, uint8_t cfgb)
{
    const size_t *sz = sizes[(cfgb >> 1) & 7];
    struct vchan_config cfg = VCHAN_CONFIG_INIT(.domain = 1, .port = PORT, .read_size = sz[0],
                                                .write_size = sz[1], .nonblocking = true);
    static const uint32_t starts[8] = {
        0, 0xffffffffu - 50, 0x7ffffffdu, 0xfffff000u, 0xfffffc01u, 1, 0x80000000u, 0};
    uint32_t start = starts[(cfgb >> 4) & 7];
    struct vchan__wire *w;
    int rc;

    if (((cfgb >> 4) & 7) == 7) {
        start = fuzz_u32(in);
    }
    rc = vchan__server_open(&s->srv, &loop_platform, &cfg, NULL);
    FUZZ_CHECK(rc == 0, "server open: %s", vchan_errname(rc));
    /* Indices start wherever the page says: put them near a wrap before the client attaches. */
    w = s->srv->ctrl;
    w->left.cons = w->left.prod = start;
    w->right.cons = w->right.prod = start;
    s->srv->rd.own = start;
    s->srv->wr.own = start;
    return 0;
}

/* The client connects; as a peer it may fail (the hostile hand spoilt the page first). */
static void open_client(struct state *s)
{
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = 0, .port = PORT, .nonblocking = true, .timeout_ms = 1);
    int rc;

    s->peer_opened = true;
    rc = vchan__client_open(&s->cli, &loop_platform, &cfg, NULL);
    if (s->ours_client) {
        FUZZ_CHECK(rc == 0, "client open on a clean page: %s", vchan_errname(rc));
        s->ours = s->cli;
        s->peer = s->srv;
    } else if (rc == 0) {
        s->peer = s->cli;
    } else {
        FUZZ_CHECK(rc == -VCHAN_EPROTO || (s->fault && rc == -VCHAN_EIO),
                   "a client open on a spoilt page failed with %s, not EPROTO", vchan_errname(rc));
        s->cli = NULL;
    }
}

/* ------------------------------------------------------------ the hostile hand */

/* Field f of the control page: its address and width. */
static void *field(struct vchan__wire *w, unsigned f, unsigned *width)
{
    switch (f % 14) {
    case 0:
        *width = 4;
        return &w->left.cons;
    case 1:
        *width = 4;
        return &w->left.prod;
    case 2:
        *width = 4;
        return &w->right.cons;
    case 3:
        *width = 4;
        return &w->right.prod;
    case 4:
        *width = 2;
        return &w->left_order;
    case 5:
        *width = 2;
        return &w->right_order;
    case 6:
        *width = 1;
        return &w->cli_live;
    case 7:
        *width = 1;
        return &w->srv_live;
    case 8:
        *width = 1;
        return &w->cli_notify;
    case 9:
        *width = 1;
        return &w->srv_notify;
    default:
        *width = 4;
        return &w->grants[f % 14 - 10];
    }
}

/* What a rewrite of the field at `p` spoils. */
static void spoil(struct state *s, const void *p)
{
    struct vchan *o = s->ours;
    struct vchan__wire *w = o->ctrl;

    if (p == o->rd.shr_prod || p == o->rd.shr_cons) {
        /* Our cons too: the peer trusts it and may overwrite what we have not read. */
        s->behaved = false;
    }
    if (p == o->wr.shr_prod || p == o->wr.shr_cons) {
        s->clean = false;
    }
    if ((const uint8_t *)p < (const uint8_t *)&w->left_order || p == &w->cli_live ||
        p == &w->srv_live) {
        s->hostile = true;
    }
    /*
     * Orders and grants (and indices) spoilt before the client connected:
     * it may map the rings anywhere the platform allows, the server's other
     * ring included, so neither stream can be checked.
     */
    if (!s->peer_opened) {
        s->behaved = s->clean = false;
        s->hostile = true;
    }
}

static void put_field(void *p, unsigned width, uint32_t v)
{
    if (width == 4) {
        vchan__store_release((uint32_t *)p, v);
    } else if (width == 2) {
        vchan__store_release((uint16_t *)p, (uint16_t)v);
    } else {
        vchan__store_release((uint8_t *)p, (uint8_t)v);
    }
}

static uint32_t get_field(const void *p, unsigned width)
{
    return width == 4   ? *(const uint32_t *)p
           : width == 2 ? *(const uint16_t *)p
                        : *(const uint8_t *)p;
}

/* ------------------------------------------------------------ our calls */

/* A copy of what our calls must leave alone. */
struct snap {
    struct {
        struct vchan__ring_idx left, right;
        uint16_t left_order, right_order;
        uint8_t cli_live, srv_live, cli_notify, srv_notify;
    } hdr; /* struct vchan__wire without its grants[] */
    uint32_t grants[4];
    uint32_t rd_own, wr_own;
    uint8_t ring[SNAP_RING_MAX];
};

static void take(const struct state *s, struct snap *sn)
{
    const struct vchan *o = s->ours;

    _Static_assert(sizeof(sn->hdr) == sizeof(struct vchan__wire), "the header, no padding");
    memcpy(&sn->hdr, o->ctrl, sizeof(sn->hdr));
    memcpy(sn->grants, o->ctrl->grants, sizeof(sn->grants));
    sn->rd_own = o->rd.own;
    sn->wr_own = o->wr.own;
    if (o->rd.size <= SNAP_RING_MAX) {
        memcpy(sn->ring, o->rd.buf, o->rd.size);
    }
}

/* Our call wrote only our own fields, set only notify bits in the peer's byte, cleared in ours. */
static void compare(const struct state *s, const struct snap *sn, const char *what)
{
    const struct vchan *o = s->ours;
    const struct vchan__wire *w = o->ctrl;
    uint8_t own_before = s->ours_client ? sn->hdr.cli_notify : sn->hdr.srv_notify;
    uint8_t peer_before = s->ours_client ? sn->hdr.srv_notify : sn->hdr.cli_notify;
    uint8_t peer_live_before = s->ours_client ? sn->hdr.srv_live : sn->hdr.cli_live;
    uint32_t rd_prod_before = s->ours_client ? sn->hdr.right.prod : sn->hdr.left.prod;
    uint32_t wr_cons_before = s->ours_client ? sn->hdr.left.cons : sn->hdr.right.cons;

    FUZZ_CHECK(*o->rd.shr_prod == rd_prod_before && *o->wr.shr_cons == wr_cons_before,
               "%s wrote the peer's index", what);
    FUZZ_CHECK(*o->peer_live == peer_live_before, "%s wrote the peer's live byte", what);
    FUZZ_CHECK(w->left_order == sn->hdr.left_order && w->right_order == sn->hdr.right_order &&
                   memcmp(w->grants, sn->grants, sizeof(sn->grants)) == 0,
               "%s wrote the orders or grants", what);
    FUZZ_CHECK((*o->own_notify & ~own_before) == 0, "%s set a bit in its own notify byte", what);
    FUZZ_CHECK(
        (peer_before & ~*o->peer_notify) == 0 &&
            ((*o->peer_notify & ~peer_before) & ~(VCHAN__NOTIFY_READ | VCHAN__NOTIFY_WRITE)) == 0,
        "%s cleared or set a foreign bit in the peer's notify byte (%#x -> %#x)", what, peer_before,
        *o->peer_notify);
    /* Our own indices on the page move only to our private ones. */
    FUZZ_CHECK(*o->rd.shr_cons == (s->ours_client ? sn->hdr.right.cons : sn->hdr.left.cons) ||
                   *o->rd.shr_cons == o->rd.own,
               "%s wrote a consumer index that is not its own", what);
    FUZZ_CHECK(*o->wr.shr_prod == (s->ours_client ? sn->hdr.left.prod : sn->hdr.right.prod) ||
                   *o->wr.shr_prod == o->wr.own,
               "%s wrote a producer index that is not its own", what);
    if (o->rd.size <= SNAP_RING_MAX) {
        FUZZ_CHECK(memcmp(sn->ring, o->rd.buf, o->rd.size) == 0, "%s wrote into the ring it reads",
                   what);
    }
}

static bool peer_says_closed(const struct state *s)
{
    return vchan__load_once(s->ours->peer_live) == VCHAN__LIVE_CLOSED || s->ours->peer_gone;
}

/* Codes a call may give besides 0, EAGAIN and EPROTO. */
#define ALLOW(e) (1u << (e))

/*
 * Common checks on a return code. `allowed`: the call's other codes;
 * `when_broken`: a code it may give instead of EPROTO on a broken handle
 * (argument errors decided before the state is looked at), or 0.
 */
static void check_rc(struct state *s, int rc, const char *what, unsigned allowed, int when_broken)
{
    if (s->fault) {
        allowed |= ALLOW(VCHAN_EIO);
    }
    if (s->broken) {
        FUZZ_CHECK(rc == -VCHAN_EPROTO || (rc != 0 && rc == when_broken),
                   "%s returned %s on a broken handle", what, vchan_errname(rc));
        return;
    }
    FUZZ_CHECK(rc == 0 || rc == -VCHAN_EAGAIN || rc == -VCHAN_EPROTO ||
                   (rc < 0 && rc > -32 && (allowed & ALLOW(-rc))),
               "%s returned %s", what, vchan_errname(rc));
    if (rc == -VCHAN_EPROTO) {
        FUZZ_CHECK(s->hostile, "%s: EPROTO although the peer only ever behaved", what);
        FUZZ_CHECK(s->ours->broken, "%s: EPROTO without marking the handle broken", what);
        s->broken = true;
    }
    if (rc == -VCHAN_EPIPE) {
        FUZZ_CHECK(peer_says_closed(s), "%s: EPIPE while the peer is open", what);
    }
}

/* A buffer of exactly len bytes, so ASan sees a byte written past what was asked. */
static uint8_t *scratch(struct state *s, size_t len)
{
    free(s->buf);
    s->buf = malloc(len ? len : 1);
    if (!s->buf) {
        abort();
    }
    return s->buf;
}

/* We received n bytes into s->buf: are they the peer's stream? */
static void delivered(struct state *s, size_t n, const char *what)
{
    if (s->behaved) {
        size_t bad;

        FUZZ_CHECK(s->we_got + n <= s->peer_sent, "%s: %zu bytes more than the peer sent", what,
                   (size_t)(s->we_got + n - s->peer_sent));
        bad = fuzz_stream_check(s->buf, n, STREAM_PEER, s->we_got);
        FUZZ_CHECK(bad == n, "%s: byte %llu of the stream is wrong", what,
                   (unsigned long long)(s->we_got + bad));
    }
    s->we_got += n;
}

static void our_read(struct state *s, size_t len, bool blocking)
{
    struct vchan *o = s->ours;
    struct snap sn;
    size_t n = 12345;
    int rc;

    scratch(s, len);
    take(s, &sn);
    rc = vchan_read(o, len ? s->buf : NULL, len, &n);
    compare(s, &sn, "vchan_read");
    check_rc(s, rc, "vchan_read", blocking ? ALLOW(VCHAN_ETIMEDOUT) : 0, 0);
    FUZZ_CHECK(n <= len, "vchan_read: %zu bytes for %zu asked", n, len);
    FUZZ_CHECK(n == (uint32_t)(o->rd.own - sn.rd_own),
               "vchan_read: %zu bytes returned, %u consumed", n, (uint32_t)(o->rd.own - sn.rd_own));
    FUZZ_CHECK(rc == 0 || n == 0 || (s->fault && rc == -VCHAN_EIO), "vchan_read: %s with %zu bytes",
               vchan_errname(rc), n);
    delivered(s, n, "vchan_read");
    if (rc == 0 && n == 0 && len > 0) {
        /* End-of-file: only from a closed peer, and only after all it wrote. */
        FUZZ_CHECK(peer_says_closed(s), "vchan_read: end-of-file while the peer is open");
        FUZZ_CHECK(!s->behaved || s->we_got == s->peer_sent,
                   "vchan_read: end-of-file with %llu bytes of the peer's unread",
                   (unsigned long long)(s->peer_sent - s->we_got));
    }
    if (rc == -VCHAN_EAGAIN || rc == -VCHAN_ETIMEDOUT) {
        FUZZ_CHECK(!s->behaved || s->we_got == s->peer_sent || len == 0,
                   "vchan_read: %s with %llu bytes of the peer's in the ring", vchan_errname(rc),
                   (unsigned long long)(s->peer_sent - s->we_got));
    }
}

static void our_recv(struct state *s, size_t len)
{
    struct vchan *o = s->ours;
    struct snap sn;
    uint32_t got;
    int rc;

    scratch(s, len);
    take(s, &sn);
    rc = vchan_recv(o, len ? s->buf : NULL, len);
    compare(s, &sn, "vchan_recv");
    check_rc(s, rc, "vchan_recv", ALLOW(VCHAN_EMSGSIZE) | ALLOW(VCHAN_EPIPE), 0);
    got = o->rd.own - sn.rd_own;
    if (rc == 0 || (s->fault && rc == -VCHAN_EIO && got)) {
        /* A failed notify after the copy still consumed the packet (see the report). */
        FUZZ_CHECK(got == len, "vchan_recv: %zu asked, %u consumed", len, got);
        delivered(s, len, "vchan_recv");
    } else {
        FUZZ_CHECK(got == 0, "vchan_recv failed (%s) but consumed %u bytes", vchan_errname(rc),
                   got);
    }
    if (rc == -VCHAN_EMSGSIZE) {
        FUZZ_CHECK(len > o->rd.size, "vchan_recv: EMSGSIZE for %zu bytes, ring %u", len,
                   o->rd.size);
    }
    if (rc == -VCHAN_EPIPE) {
        FUZZ_CHECK(!s->behaved || s->peer_sent - s->we_got < len,
                   "vchan_recv: EPIPE with the whole packet in the ring");
    }
    if (rc == -VCHAN_EAGAIN) {
        FUZZ_CHECK(!s->behaved || s->peer_sent - s->we_got < len,
                   "vchan_recv: EAGAIN with %zu bytes asked and %llu in the ring", len,
                   (unsigned long long)(s->peer_sent - s->we_got));
    }
}

static void our_write(struct state *s, size_t len, bool blocking)
{
    struct vchan *o = s->ours;
    struct snap sn;
    size_t n = 12345;
    int rc;

    fuzz_stream_fill(scratch(s, len), len, STREAM_OURS, s->we_sent);
    take(s, &sn);
    rc = vchan_write(o, len ? s->buf : NULL, len, &n);
    compare(s, &sn, "vchan_write");
    check_rc(s, rc, "vchan_write", ALLOW(VCHAN_EPIPE) | (blocking ? ALLOW(VCHAN_ETIMEDOUT) : 0), 0);
    FUZZ_CHECK(n <= len, "vchan_write: %zu bytes for %zu given", n, len);
    FUZZ_CHECK(n == (uint32_t)(o->wr.own - sn.wr_own), "vchan_write: %zu reported, %u produced", n,
               (uint32_t)(o->wr.own - sn.wr_own));
    s->we_sent += n;
}

static void our_send(struct state *s, size_t len)
{
    struct vchan *o = s->ours;
    struct snap sn;
    uint32_t put;
    int rc;

    fuzz_stream_fill(scratch(s, len), len, STREAM_OURS, s->we_sent);
    take(s, &sn);
    rc = vchan_send(o, len ? s->buf : NULL, len);
    compare(s, &sn, "vchan_send");
    /* A packet larger than the ring is refused before the handle's state is looked at. */
    check_rc(s, rc, "vchan_send", ALLOW(VCHAN_EPIPE) | ALLOW(VCHAN_EMSGSIZE),
             len > o->wr.size ? -VCHAN_EMSGSIZE : 0);
    put = o->wr.own - sn.wr_own;
    if (rc == 0 || (s->fault && rc == -VCHAN_EIO && put)) {
        FUZZ_CHECK(put == len, "vchan_send: %zu given, %u produced", len, put);
    } else {
        FUZZ_CHECK(put == 0, "vchan_send failed (%s) but produced %u bytes", vchan_errname(rc),
                   put);
    }
    if (rc == -VCHAN_EMSGSIZE) {
        FUZZ_CHECK(len > o->wr.size, "vchan_send: EMSGSIZE for %zu bytes, ring %u", len,
                   o->wr.size);
    }
    s->we_sent += put;
}

static void our_queries(struct state *s)
{
    struct vchan *o = s->ours;
    struct snap sn;
    size_t ready = 99, space = 99;
    int rc;

    take(s, &sn);
    rc = vchan_data_ready(o, &ready);
    check_rc(s, rc, "vchan_data_ready", 0, 0);
    FUZZ_CHECK(ready <= o->rd.size, "vchan_data_ready: %zu in a ring of %u", ready, o->rd.size);
    if (rc == 0 && s->behaved) {
        FUZZ_CHECK(ready == s->peer_sent - s->we_got, "vchan_data_ready: %zu, the peer has %llu",
                   ready, (unsigned long long)(s->peer_sent - s->we_got));
    }
    rc = vchan_buffer_space(o, &space);
    check_rc(s, rc, "vchan_buffer_space", 0, 0);
    FUZZ_CHECK(space <= o->wr.size, "vchan_buffer_space: %zu in a ring of %u", space, o->wr.size);
    compare(s, &sn, "vchan_data_ready/vchan_buffer_space");
    FUZZ_CHECK(o->rd.own == sn.rd_own && o->wr.own == sn.wr_own, "a query moved an index");
}

static void our_state(struct state *s)
{
    struct vchan *o = s->ours;
    struct snap sn;
    enum vchan_state st;
    int rc;

    take(s, &sn);
    st = vchan_is_open(o);
    if (s->broken) {
        FUZZ_CHECK(st == VCHAN_STATE_CLOSED, "vchan_is_open: %d on a broken handle", (int)st);
    }
    FUZZ_CHECK(st != VCHAN_STATE_WAITING || !s->ours_client, "a client's peer is WAITING");
    rc = vchan_wait_connected(o);
    check_rc(s, rc, "vchan_wait_connected", 0, 0);
    rc = vchan_wait(o);
    FUZZ_CHECK(s->broken ? rc == -VCHAN_EPROTO
                         : rc == 0 || rc == -VCHAN_EAGAIN || (s->fault && rc == -VCHAN_EIO),
               "vchan_wait (non-blocking): %s", vchan_errname(rc));
    compare(s, &sn, "vchan_is_open/vchan_wait_connected/vchan_wait");
}

/* ------------------------------------------------------------ the peer */

static void peer_write(struct state *s, size_t len)
{
    size_t n = 0;

    if (!s->peer || s->peer_crashed) {
        return;
    }
    fuzz_stream_fill(scratch(s, len), len, STREAM_PEER, s->peer_sent);
    (void)vchan_write(s->peer, len ? s->buf : NULL, len, &n);
    s->peer_sent += n;
}

static void peer_read(struct state *s, size_t len)
{
    size_t n = 0;

    if (!s->peer || s->peer_crashed) {
        return;
    }
    (void)vchan_read(s->peer, len ? scratch(s, len) : NULL, len, &n);
    if (s->clean) {
        size_t bad = fuzz_stream_check(s->buf, n, STREAM_OURS, s->peer_got);

        FUZZ_CHECK(s->peer_got + n <= s->we_sent, "the peer read %llu bytes more than we wrote",
                   (unsigned long long)(s->peer_got + n - s->we_sent));
        FUZZ_CHECK(bad == n, "the peer read a wrong byte %llu of our stream",
                   (unsigned long long)(s->peer_got + bad));
    }
    s->peer_got += n;
}

static void peer_close(struct state *s)
{
    if (!s->peer) {
        return;
    }
    vchan_close(s->peer);
    if (s->peer == s->srv) {
        s->srv = NULL;
    } else {
        s->cli = NULL;
    }
    s->peer = NULL;
}

/* ------------------------------------------------------------ the script */

static size_t length(struct fuzz_in *in, uint32_t ring)
{
    return fuzz_u16(in) % (2 * (size_t)ring + 17);
}

static void run(struct state *s, struct fuzz_in *in)
{
    for (int op = 0; op < MAX_OPS && fuzz_left(in) > 0; op++) {
        struct vchan *o = s->ours;
        uint8_t code = fuzz_u8(in) % 24;

        /* A delayed client connects at the first operation that needs it. */
        if (!s->peer_opened && code >= 11 && code <= 17) {
            open_client(s);
        }
        switch (code) {
        case 0:
        case 1:
            our_read(s, length(in, o->rd.size), false);
            break;
        case 2:
        case 3:
            our_write(s, length(in, o->wr.size), false);
            break;
        case 4:
            our_send(s, length(in, o->wr.size));
            break;
        case 5:
            our_recv(s, length(in, o->rd.size));
            break;
        case 6:
            our_queries(s);
            break;
        case 7:
        case 10:
            our_state(s);
            break;
        case 8:
        case 9: {
            size_t len = length(in, code == 8 ? o->rd.size : o->wr.size);

            if (s->blocking_left-- <= 0) {
                break;
            }
            vchan_set_nonblocking(o, false);
            vchan_set_timeout(o, 1);
            if (code == 8) {
                our_read(s, len, true);
            } else {
                our_write(s, len, true);
            }
            vchan_set_nonblocking(o, true);
            vchan_set_timeout(o, 0);
            break;
        }
        case 11:
        case 12:
            peer_write(s, length(in, o->rd.size));
            break;
        case 13:
        case 14:
            peer_read(s, length(in, o->wr.size));
            break;
        case 15:
            peer_close(s);
            break;
        case 16:
            if (s->peer && !s->peer_crashed) {
                loop_crash(s->peer);
                s->peer_crashed = true;
            }
            break;
        case 17:
            /* A spurious event: one channel carries everything, so any may come at any time. */
            if (s->peer && !s->peer_crashed) {
                (void)s->peer->plat->notify(s->peer->p);
            }
            break;
        case 18:
        case 19: {
            unsigned f = fuzz_u8(in), width;
            uint32_t v = fuzz_u32(in);
            void *p = field(o->ctrl, f, &width);

            put_field(p, width, code == 18 ? v : get_field(p, width) + v);
            spoil(s, p);
            break;
        }
        case 20: {
            /* The peer's index just inside or just outside the ring, relative to ours. */
            uint8_t which = fuzz_u8(in);
            uint16_t k = fuzz_u16(in);

            if (which & 1) {
                uint32_t v = o->wr.own - (uint32_t)(k % (o->wr.size + 4)) + 2;
                vchan__store_release(o->wr.shr_cons, v);
                spoil(s, o->wr.shr_cons);
            } else {
                uint32_t v = o->rd.own + (uint32_t)(k % (o->rd.size + 4)) - 2;
                vchan__store_release(o->rd.shr_prod, v);
                spoil(s, o->rd.shr_prod);
            }
            break;
        }
        case 21: {
            /* Ring bytes: the peer may scribble on either ring. */
            uint8_t which = fuzz_u8(in);
            uint16_t off = fuzz_u16(in);
            uint8_t n = fuzz_u8(in), val = fuzz_u8(in);
            struct vchan__ring *r = (which & 1) ? &o->wr : &o->rd;

            for (unsigned i = 0; i < n; i++) {
                r->buf[(off + i) & (r->size - 1)] = val;
            }
            if (n) {
                if (which & 1) {
                    s->clean = false;
                } else {
                    s->behaved = false;
                }
            }
            break;
        }
        case 22: {
            static const enum loop_op fops[4] = {LOOP_NOTIFY, LOOP_WAIT, LOOP_NOTIFY, LOOP_MAP};
            uint8_t sel = fuzz_u8(in), nth = fuzz_u8(in);

            loop_fail(fops[sel & 3], 1 + nth % 4, -VCHAN_EIO);
            s->fault = true;
            break;
        }
        default:
            if (!s->peer_opened) {
                open_client(s);
            }
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = fuzz_in(data, size);
    struct state s = {.behaved = true, .clean = true, .blocking_left = MAX_BLOCKING};
    uint8_t cfgb = fuzz_u8(&in);

    s.ours_client = cfgb & 1;
    open_server(&s, &in, cfgb);
    if (s.ours_client || !(cfgb & 0x80)) {
        open_client(&s);
    }
    if (!s.ours_client) {
        s.ours = s.srv;
    }
    run(&s, &in);

    if (s.ours == s.srv) {
        s.srv = NULL;
    } else {
        s.cli = NULL;
    }
    vchan_close(s.ours);
    vchan_close(s.srv);
    vchan_close(s.cli);
    FUZZ_CHECK(loop_outstanding() == 0, "%zu platform resources left after both closes",
               loop_outstanding());
    loop_reset();
    free(s.buf);
    return 0;
}
