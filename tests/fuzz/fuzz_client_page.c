/* SPDX-License-Identifier: ISC */
/*
 * fuzz_client_page: a client connecting to a hostile server's control page.
 *
 * A real server opens on the loop platform; the input then rewrites its
 * control page (orders, grant references, live and notify bytes, indices)
 * before the client opens, and again from inside the client's first three
 * page mappings (the loop platform's map hook): the first lands before the
 * client copies the orders and grants, the others after, where only a
 * double fetch (XSA-155) would see them. Platform faults can be injected
 * into the client's set-up. The input:
 *
 *   byte 0   bits 0-2: the server's ring sizes; bits 3-6: a fault (none,
 *            or which operation fails, and when)
 *   then     edits, each a kind byte and its values; kind 7 ends a phase
 *            (before open, inside map 1, map 2, map 3)
 *
 * Invariants:
 * - the open succeeds or fails with EPROTO (or the injected fault's code),
 *   and a failure comes with a message;
 * - a success has the geometry of the page as the client copied it once:
 *   valid orders, in-page rings where they belong and clear of the grant
 *   list, every ring byte inside memory the client mapped (touched here:
 *   the loop platform's guard pages and ASan catch a stray one), whatever
 *   the later rewrites say;
 * - the client writes nothing to the page but its live byte and the
 *   server's notify byte;
 * - both ends still do I/O within their rings, and everything is released.
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

#define PORT "fzpage"
#define PHASES 4
/* Grant slots that fit in the page after the header. */
#define GRANT_SLOTS ((VCHAN__PAGE_SIZE - sizeof(struct vchan__wire)) / sizeof(uint32_t))

static const size_t sizes[8][2] = {
    {1, 1},    {2048, 1024},  {4096, 4096},   {1024, 8192},
    {3000, 1}, {16384, 4096}, {65536, 65536}, {1, 1 << 20},
};

/* The loop platform, with share() wrapped to learn the control page's grant reference. */
static struct vchan__platform plat;
static uint32_t ctrl_ref;
static bool ctrl_ref_known;

static int share_spy(void *p, size_t npages, uint32_t *refs, int notify_offset, void **addr)
{
    int rc = loop_platform.share(p, npages, refs, notify_offset, addr);

    if (rc == 0 && !ctrl_ref_known) {
        ctrl_ref = refs[0];
        ctrl_ref_known = true;
    }
    return rc;
}

struct run {
    struct fuzz_in in;
    struct vchan__wire *page;         /* the server's control page */
    uint8_t expect[VCHAN__PAGE_SIZE]; /* the page as the last edit left it */
    uint16_t lo, ro;                  /* orders when the client copied them (after phase 1) */
    int phase;
};

/* Apply the input's edits up to the end of the current phase. */
static void edit(struct run *r)
{
    struct vchan__wire *w = r->page;

    while (fuzz_left(&r->in) > 0) {
        uint8_t kind = fuzz_u8(&r->in) % 8;

        if (kind == 7) {
            break;
        }
        switch (kind) {
        case 0:
            vchan__store_once(&w->left_order, fuzz_u16(&r->in));
            vchan__store_once(&w->right_order, fuzz_u16(&r->in));
            break;
        case 1: /* orders near the valid range: 8..23 */
            vchan__store_once(&w->left_order, (uint16_t)(8 + fuzz_u8(&r->in) % 16));
            vchan__store_once(&w->right_order, (uint16_t)(8 + fuzz_u8(&r->in) % 16));
            break;
        case 2: { /* a grant near the server's real ones */
            size_t k = fuzz_u16(&r->in) % GRANT_SLOTS;
            int16_t delta = (int16_t)fuzz_u16(&r->in);
            vchan__store_once(&w->grants[k], ctrl_ref + (uint32_t)(int32_t)delta);
            break;
        }
        case 3: {
            size_t k = fuzz_u16(&r->in) % GRANT_SLOTS;
            vchan__store_once(&w->grants[k], fuzz_u32(&r->in));
            break;
        }
        case 4:
            vchan__store_once(&w->cli_live, fuzz_u8(&r->in));
            vchan__store_once(&w->srv_live, fuzz_u8(&r->in));
            break;
        case 5:
            vchan__store_once(&w->cli_notify, fuzz_u8(&r->in));
            vchan__store_once(&w->srv_notify, fuzz_u8(&r->in));
            break;
        default: {
            uint32_t *idx[4] = {&w->left.cons, &w->left.prod, &w->right.cons, &w->right.prod};
            uint8_t which = fuzz_u8(&r->in);
            vchan__store_once(idx[which & 3], fuzz_u32(&r->in));
            break;
        }
        }
    }
    memcpy(r->expect, r->page, sizeof(r->expect));
}

static void map_hook(void *ctx, unsigned nth, const uint32_t *refs, size_t npages)
{
    struct run *r = ctx;

    (void)refs;
    (void)npages;
    if (nth < PHASES) {
        r->phase = (int)nth;
        edit(r);
    }
    if (nth == 1) {
        /* Map 1 is the control page: the client copies the orders right after it. */
        r->lo = vchan__load_once(&r->page->left_order);
        r->ro = vchan__load_once(&r->page->right_order);
    }
}

/* Read every byte of a ring: a byte outside the client's mappings faults here. */
static void touch(const uint8_t *buf, uint32_t size)
{
    volatile uint8_t sink = 0;

    for (uint32_t i = 0; i < size; i++) {
        sink ^= buf[i];
    }
    (void)sink;
}

static void check_ring(const struct vchan *c, const struct vchan__ring *ring, unsigned order,
                       size_t grant_end, const char *which)
{
    FUZZ_CHECK(ring->size == 1u << order, "%s ring: size %u for order %u", which, ring->size,
               order);
    if (order == VCHAN__SMALL_ORDER || order == VCHAN__LARGE_ORDER) {
        size_t off = order == VCHAN__SMALL_ORDER ? VCHAN__SMALL_OFFSET : VCHAN__LARGE_OFFSET;
        FUZZ_CHECK(ring->buf == (const uint8_t *)c->ctrl + off && ring->npages == 0,
                   "%s ring of order %u not at offset %zu of the page", which, order, off);
        FUZZ_CHECK(grant_end <= off, "%s ring at %zu overlaps the grant list (ends at %zu)", which,
                   off, grant_end);
    } else {
        FUZZ_CHECK(ring->npages == (size_t)1 << (order - VCHAN__PAGE_SHIFT),
                   "%s ring: %zu pages for order %u", which, ring->npages, order);
    }
    touch(ring->buf, ring->size);
}

/* A few calls on both ends: within the rings, with the codes the API promises. */
static void exercise(struct vchan *srv, struct vchan *cli)
{
    size_t len = cli->wr.size > cli->rd.size ? cli->wr.size : cli->rd.size;
    uint8_t *buf = malloc(len);
    size_t n;
    int rc;

    if (!buf) {
        abort();
    }
    memset(buf, 0xa5, len);
    rc = vchan_write(cli, buf, cli->wr.size, &n);
    FUZZ_CHECK((rc == 0 || rc == -VCHAN_EAGAIN || rc == -VCHAN_EPROTO || rc == -VCHAN_EPIPE) &&
                   n <= cli->wr.size,
               "client write: %s, %zu bytes", vchan_errname(rc), n);
    rc = vchan_read(cli, buf, cli->rd.size, &n);
    FUZZ_CHECK((rc == 0 || rc == -VCHAN_EAGAIN || rc == -VCHAN_EPROTO) && n <= cli->rd.size,
               "client read: %s, %zu bytes", vchan_errname(rc), n);
    rc = vchan_write(srv, buf, srv->wr.size < len ? srv->wr.size : len, &n);
    FUZZ_CHECK(rc == 0 || rc == -VCHAN_EAGAIN || rc == -VCHAN_EPROTO || rc == -VCHAN_EPIPE,
               "server write: %s", vchan_errname(rc));
    rc = vchan_read(srv, buf, srv->rd.size < len ? srv->rd.size : len, &n);
    FUZZ_CHECK(rc == 0 || rc == -VCHAN_EAGAIN || rc == -VCHAN_EPROTO, "server read: %s",
               vchan_errname(rc));
    free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    plat = loop_platform;
    plat.share = share_spy;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum loop_op fault_ops[8] = {LOOP_OP_MAX, LOOP_LOOKUP, LOOP_BIND,  LOOP_MAP,
                                              LOOP_MAP,    LOOP_NOTIFY, LOOP_ALLOC, LOOP_OPEN};
    static const int fault_codes[8] = {
        0,          -VCHAN_ETIMEDOUT, -VCHAN_EIO, -VCHAN_EIO, -VCHAN_ENOMEM,
        -VCHAN_EIO, -VCHAN_ENOMEM,    -VCHAN_EIO};
    struct run *r = calloc(1, sizeof(*r));
    struct vchan *srv = NULL, *cli = NULL;
    char errbuf[128] = "";
    struct vchan_config scfg = VCHAN_CONFIG_INIT(.domain = 1, .port = PORT, .nonblocking = true);
    struct vchan_config ccfg =
        VCHAN_CONFIG_INIT(.domain = 0, .port = PORT, .nonblocking = true, .timeout_ms = 1,
                          .errbuf = errbuf, .errbuf_len = sizeof(errbuf));
    uint8_t cfgb;
    unsigned fault;
    int rc, want_fault = 0;

    if (!r) {
        return 0;
    }
    if (!plat.share) {
        LLVMFuzzerInitialize(NULL, NULL);
    }
    r->in = fuzz_in(data, size);
    cfgb = fuzz_u8(&r->in);
    scfg.read_size = sizes[cfgb & 7][0];
    scfg.write_size = sizes[cfgb & 7][1];
    fault = (cfgb >> 3) & 15;

    ctrl_ref_known = false;
    rc = vchan__server_open(&srv, &plat, &scfg, NULL);
    FUZZ_CHECK(rc == 0, "server open: %s", vchan_errname(rc));
    r->page = srv->ctrl;
    edit(r);
    r->lo = vchan__load_once(&r->page->left_order);
    r->ro = vchan__load_once(&r->page->right_order);
    loop_set_map_hook(map_hook, r);
    if (fault & 7) {
        /* Which call of the operation fails: the 1st or 2nd (maps: control page or a ring). */
        want_fault = fault_codes[fault & 7];
        loop_fail(fault_ops[fault & 7], 1 + (fault >> 3), want_fault);
    }

    rc = vchan__client_open(&cli, &plat, &ccfg, NULL);
    /* Drop the hook and a fault that did not fire: they were for the open only. */
    loop_reset();
    if (rc == 0) {
        size_t lpages = 0, rpages = 0, grant_end;

        FUZZ_CHECK(cli != NULL, "open succeeded without a handle");
        FUZZ_CHECK(vchan__check_orders(r->lo, r->ro, &lpages, &rpages) == 0,
                   "the client accepted orders %u/%u", r->lo, r->ro);
        grant_end = sizeof(struct vchan__wire) + (lpages + rpages) * sizeof(uint32_t);
        /* The client writes the left ring and reads the right one. */
        check_ring(cli, &cli->wr, r->lo, grant_end, "left (write)");
        check_ring(cli, &cli->rd, r->ro, grant_end, "right (read)");
        /* Its only writes: cli_live = 1 and srv_notify = WRITE. */
        r->expect[offsetof(struct vchan__wire, cli_live)] = VCHAN__LIVE_OPEN;
        r->expect[offsetof(struct vchan__wire, srv_notify)] = VCHAN__NOTIFY_WRITE;
        FUZZ_CHECK(memcmp(r->expect, r->page, VCHAN__PAGE_SIZE) == 0,
                   "the client wrote to the control page beyond its live byte and srv_notify");
        exercise(srv, cli);
    } else {
        FUZZ_CHECK(cli == NULL, "failed open left a handle");
        FUZZ_CHECK(rc == -VCHAN_EPROTO || (want_fault && rc == want_fault),
                   "client open on a hostile page: %s (%s), not EPROTO", vchan_errname(rc), errbuf);
        FUZZ_CHECK(errbuf[0] != '\0', "client open failed (%s) without a message",
                   vchan_errname(rc));
        if (!want_fault || fault_ops[fault & 7] != LOOP_NOTIFY) {
            /* Failed before it said hello: the page is as the server (and we) left it. */
            FUZZ_CHECK(memcmp(r->expect, r->page, VCHAN__PAGE_SIZE) == 0,
                       "a failed client open wrote to the control page");
        }
    }
    vchan_close(cli);
    vchan_close(srv);
    FUZZ_CHECK(loop_outstanding() == 0, "%zu platform resources left after both closes",
               loop_outstanding());
    loop_reset();
    free(r);
    return 0;
}
