/* SPDX-License-Identifier: ISC */
/*
 * Server and client set-up (libvchan/core/setup.c) on the in-process loop
 * platform: what each side writes into the control page and when, what a
 * client refuses, configuration checks and their messages, clean-up after
 * every failure, close from either side, and a synthetic ocaml-vchan-style
 * server page that our client must accept.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <limits.h>
#include <pthread.h>
#include <time.h>

#include "libvchan/core/barrier.h"
#include "libvchan/core/internal.h"
#include "loop_platform.h"
#include "unit.h"

#define RC(actual, expected) UNIT_EQ_NAMED((actual), (expected), vchan_errname)
#define MIB ((size_t)1024 * 1024)

static unsigned port_seq;

static void next_port(char *buf, size_t len)
{
    snprintf(buf, len, "setup-%u", ++port_seq);
}

static struct vchan_config server_cfg(const char *port, size_t rd, size_t wr)
{
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = 1, .port = port, .read_size = rd, .write_size = wr);

    cfg.nonblocking = true;
    return cfg;
}

static struct vchan_config client_cfg(const char *port)
{
    struct vchan_config cfg = VCHAN_CONFIG_INIT(.domain = 0, .port = port, .nonblocking = true);

    return cfg;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Everything given back, and the platform's fault table cleared. */
static void all_released(void)
{
    UNIT_EQ(loop_outstanding(), 0);
    loop_reset();
}

/* Bytes [from, to) of the page are all zero. */
static bool zero_range(const void *page, size_t from, size_t to)
{
    const uint8_t *b = page;

    for (size_t i = from; i < to; i++) {
        if (b[i]) {
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------- page fields */

static void test_setup_server_page_fields(void)
{
    static const struct {
        size_t rd, wr;
        unsigned lo, ro;
    } cases[] = {
        { 1, 1, 10, 11 }, { 2048, 1024, 11, 10 }, { 0, 0, 16, 16 }, { 4096, 65536, 12, 16 },
        { MIB, 2048, 20, 11 },
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        char port[32];
        struct vchan_config cfg;
        struct vchan *srv = NULL;
        struct vchan__wire *w;
        size_t lp = cases[i].lo >= 12 ? (size_t)1 << (cases[i].lo - 12) : 0;
        size_t rp = cases[i].ro >= 12 ? (size_t)1 << (cases[i].ro - 12) : 0;

        next_port(port, sizeof(port));
        cfg = server_cfg(port, cases[i].rd, cases[i].wr);
        if (!RC(vchan__server_open(&srv, &loop_platform, &cfg, NULL), 0)) {
            continue;
        }
        w = srv->ctrl;
        UNIT_EQ(w->left_order, cases[i].lo);
        UNIT_EQ(w->right_order, cases[i].ro);
        UNIT_EQ(w->cli_live, VCHAN__LIVE_WAITING);
        UNIT_EQ(w->srv_live, VCHAN__LIVE_OPEN);
        UNIT_EQ(w->cli_notify, VCHAN__NOTIFY_WRITE);
        UNIT_EQ(w->srv_notify, 0);
        UNIT_EQ(w->left.cons, 0);
        UNIT_EQ(w->left.prod, 0);
        UNIT_EQ(w->right.cons, 0);
        UNIT_EQ(w->right.prod, 0);
        UNIT_EQ(vchan_read_ring_size(srv), (size_t)1 << cases[i].lo);
        UNIT_EQ(vchan_write_ring_size(srv), (size_t)1 << cases[i].ro);
        UNIT_EQ(vchan_is_open(srv), VCHAN_STATE_WAITING);
        /* Exactly lp + rp grants (never ref 0), and nothing else after the header. */
        for (size_t g = 0; g < lp + rp; g++) {
            CU_ASSERT(w->grants[g] != 0);
        }
        CU_ASSERT(zero_range(w, 24 + 4 * (lp + rp),
                             cases[i].lo == 10 || cases[i].ro == 10   ? 1024
                             : cases[i].lo == 11 || cases[i].ro == 11 ? 2048
                                                                      : 4096));
        /* The server wrote nothing into the client's half of the header. */
        UNIT_EQ(loop_notify_count(srv), 0);
        vchan_close(srv);
        all_released();
    }
}

static void test_setup_client_connect_fields(void)
{
    char port[32];
    struct vchan_config scfg, ccfg;
    struct vchan *srv = NULL, *cli = NULL;
    struct vchan__wire *w;

    next_port(port, sizeof(port));
    scfg = server_cfg(port, 8192, 4096);
    ccfg = client_cfg(port);
    if (!RC(vchan__server_open(&srv, &loop_platform, &scfg, NULL), 0) ||
        !RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), 0)) {
        goto out;
    }
    w = srv->ctrl;
    UNIT_EQ(w->cli_live, VCHAN__LIVE_OPEN);
    UNIT_EQ(w->srv_live, VCHAN__LIVE_OPEN);
    UNIT_EQ(w->srv_notify, VCHAN__NOTIFY_WRITE);
    UNIT_EQ(w->cli_notify, VCHAN__NOTIFY_WRITE);
    /* The server was woken exactly once. */
    UNIT_EQ(loop_notify_count(cli), 1);
    UNIT_EQ(loop_events_take(srv), 1);
    UNIT_EQ(vchan_is_open(srv), VCHAN_STATE_OPEN);
    UNIT_EQ(vchan_is_open(cli), VCHAN_STATE_OPEN);
    RC(vchan_wait_connected(srv), 0);
    /* The client sees the rings from the other side. */
    UNIT_EQ(vchan_read_ring_size(cli), 4096);
    UNIT_EQ(vchan_write_ring_size(cli), 8192);
    CU_ASSERT_STRING_EQUAL(vchan_platform_name(cli), "loop");
out:
    vchan_close(cli);
    vchan_close(srv);
    all_released();
}

/* ---------------------------------------------- what a client refuses */

static void test_setup_client_rejects_bad_orders(void)
{
    static const unsigned bad[][2] = {
        { 9, 11 }, { 11, 9 }, { 10, 10 }, { 11, 11 }, { 21, 12 }, { 12, 21 },
        { 0, 0 },  { 10, 20 }, { 20, 10 }, { 65535, 12 },
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(bad); i++) {
        char port[32], err[128] = "untouched";
        struct vchan_config scfg, ccfg;
        struct vchan *srv = NULL, *cli = (struct vchan *)&scfg;
        size_t baseline;

        next_port(port, sizeof(port));
        scfg = server_cfg(port, 4096, 4096);
        ccfg = client_cfg(port);
        ccfg.errbuf = err;
        ccfg.errbuf_len = sizeof(err);
        if (!RC(vchan__server_open(&srv, &loop_platform, &scfg, NULL), 0)) {
            continue;
        }
        baseline = loop_outstanding();
        srv->ctrl->left_order = (uint16_t)bad[i][0];
        srv->ctrl->right_order = (uint16_t)bad[i][1];
        if (!RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), -VCHAN_EPROTO)) {
            printf("  orders (%u, %u)\n", bad[i][0], bad[i][1]);
            vchan_close(cli);
        } else {
            CU_ASSERT_PTR_NULL(cli);
            CU_ASSERT(strstr(err, "invalid ring orders") != NULL);
            /* The client backed out without marking itself connected. */
            UNIT_EQ(srv->ctrl->cli_live, VCHAN__LIVE_WAITING);
            UNIT_EQ(loop_outstanding(), baseline);
        }
        vchan_close(srv);
        all_released();
    }
}

/*
 * Valid orders but grants that do not map as claimed: a larger order than
 * the server shared, unknown refs, refs out of order. The client fails
 * cleanly with the platform's error and a message.
 */
static void test_setup_client_rejects_unmappable_grants(void)
{
    for (int kind = 0; kind < 4; kind++) {
        char port[32], err[128] = "";
        struct vchan_config scfg, ccfg;
        struct vchan *srv = NULL, *cli = NULL;
        size_t baseline;
        int rc;

        next_port(port, sizeof(port));
        scfg = server_cfg(port, 8192, 8192); /* (13, 13): grants 0-1 left, 2-3 right */
        ccfg = client_cfg(port);
        ccfg.errbuf = err;
        ccfg.errbuf_len = sizeof(err);
        if (!RC(vchan__server_open(&srv, &loop_platform, &scfg, NULL), 0)) {
            continue;
        }
        baseline = loop_outstanding();
        switch (kind) {
        case 0: /* claims 4 pages on the left: runs past the left block */
            srv->ctrl->left_order = 14;
            break;
        case 1:
            srv->ctrl->grants[3] = 0;
            break;
        case 2:
            srv->ctrl->grants[0] = 0xfffffff0u;
            break;
        default: {
            uint32_t t = srv->ctrl->grants[2];
            srv->ctrl->grants[2] = srv->ctrl->grants[3];
            srv->ctrl->grants[3] = t;
            break;
        }
        }
        rc = vchan__client_open(&cli, &loop_platform, &ccfg, NULL);
        CU_ASSERT(rc < 0);
        CU_ASSERT_PTR_NULL(cli);
        CU_ASSERT(err[0] != '\0');
        UNIT_EQ(srv->ctrl->cli_live, VCHAN__LIVE_WAITING);
        UNIT_EQ(loop_outstanding(), baseline);
        vchan_close(cli);
        vchan_close(srv);
        all_released();
    }
}

struct refetch {
    struct vchan__wire *page;
    uint32_t grants[8];
    uint32_t mapped[8];
    size_t mapped_n;
};

/* After the client's first ring map, rewrite orders and grants; record the second map. */
static void refetch_hook(void *ctx, unsigned nth, const uint32_t *refs, size_t npages)
{
    struct refetch *r = ctx;

    if (nth == 2) {
        r->page->left_order = 20;
        r->page->right_order = 20;
        for (int g = 0; g < 8; g++) {
            r->page->grants[g] = 0xdead0000u + (uint32_t)g;
        }
    } else if (nth == 3) {
        r->mapped_n = npages < 8 ? npages : 8;
        memcpy(r->mapped, refs, r->mapped_n * sizeof(*refs));
    }
}

/* Orders and grants are read once, at connect, into private copies (XSA-155). */
static void test_setup_orders_and_grants_fetched_once(void)
{
    char port[32];
    struct refetch r = { 0 };
    struct vchan_config scfg, ccfg;
    struct vchan *srv = NULL, *cli = NULL;
    uint8_t buf[100];
    size_t n;

    next_port(port, sizeof(port));
    scfg = server_cfg(port, 8192, 16384); /* left 2 pages, right 4 */
    ccfg = client_cfg(port);
    if (!RC(vchan__server_open(&srv, &loop_platform, &scfg, NULL), 0)) {
        goto out;
    }
    r.page = srv->ctrl;
    memcpy(r.grants, srv->ctrl->grants, 6 * sizeof(uint32_t));
    loop_set_map_hook(refetch_hook, &r);
    if (!RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), 0)) {
        goto out;
    }
    loop_set_map_hook(NULL, NULL);
    UNIT_EQ(r.mapped_n, 4);
    CU_ASSERT(memcmp(r.mapped, r.grants + 2, 4 * sizeof(uint32_t)) == 0);
    UNIT_EQ(vchan_write_ring_size(cli), 8192);
    UNIT_EQ(vchan_read_ring_size(cli), 16384);
    CU_ASSERT_PTR_EQUAL(cli->rd.buf, srv->wr.buf);
    /* Grants rewritten after connect change nothing either. */
    for (int g = 0; g < 6; g++) {
        srv->ctrl->grants[g] = 0;
    }
    memset(buf, 7, sizeof(buf));
    RC(vchan_write(srv, buf, sizeof(buf), &n), 0);
    RC(vchan_recv(cli, buf, sizeof(buf)), 0);
    RC(vchan_send(cli, buf, sizeof(buf)), 0);
    RC(vchan_recv(srv, buf, sizeof(buf)), 0);
out:
    loop_set_map_hook(NULL, NULL);
    vchan_close(cli);
    vchan_close(srv);
    all_released();
}

/* ------------------------------------------- an ocaml-vchan-style server */

/*
 * A server built by hand on the platform, laid out as MirageOS' ocaml-vchan
 * does: left ring in the page at 1024 (order 10), right ring one granted
 * page (order 12), no unmap-notify. libxenvchan never makes this pair.
 */
struct synth {
    void *p;
    struct vchan__wire *page;
    uint8_t *left, *right;
    size_t lpages, rpages, lsize, rsize;
};

static uint8_t *synth_ring(struct synth *s, unsigned order, uint32_t *grants, size_t *npages)
{
    void *pages = NULL;

    *npages = order >= 12 ? (size_t)1 << (order - 12) : 0;
    if (order == 10) {
        return (uint8_t *)s->page + 1024;
    }
    if (order == 11) {
        return (uint8_t *)s->page + 2048;
    }
    if (!RC(loop_platform.share(s->p, *npages, grants, -1, &pages), 0)) {
        *npages = 0;
        return NULL;
    }
    return pages;
}

static bool synth_open(struct synth *s, const char *port, unsigned lorder, unsigned rorder)
{
    struct vchan_config cfg = VCHAN_CONFIG_INIT(.domain = 1, .port = port);
    uint32_t evtchn, ring_ref;
    void *page;

    memset(s, 0, sizeof(*s));
    if (!RC(loop_platform.open(&s->p, NULL, &cfg, true), 0) ||
        !RC(loop_platform.evtchn_alloc_unbound(s->p, &evtchn), 0) ||
        !RC(loop_platform.share(s->p, 1, &ring_ref, -1, &page), 0)) {
        return false;
    }
    s->page = page;
    s->left = synth_ring(s, lorder, s->page->grants, &s->lpages);
    s->right = synth_ring(s, rorder, s->page->grants + s->lpages, &s->rpages);
    s->lsize = (size_t)1 << lorder;
    s->rsize = (size_t)1 << rorder;
    s->page->left_order = (uint16_t)lorder;
    s->page->right_order = (uint16_t)rorder;
    s->page->cli_live = VCHAN__LIVE_WAITING;
    s->page->srv_live = VCHAN__LIVE_OPEN;
    s->page->cli_notify = VCHAN__NOTIFY_WRITE;
    return s->left && s->right && RC(loop_platform.publish(s->p, ring_ref, evtchn), 0);
}

static void synth_close(struct synth *s)
{
    if (s->page) {
        __atomic_store_n(&s->page->srv_live, 0, __ATOMIC_RELEASE);
        (void)loop_platform.notify(s->p);
    }
    if (s->lpages) {
        loop_platform.unshare(s->p, s->left, s->lpages);
    }
    if (s->rpages) {
        loop_platform.unshare(s->p, s->right, s->rpages);
    }
    if (s->page) {
        loop_platform.unshare(s->p, s->page, 1);
    }
    if (s->p) {
        loop_platform.close(s->p);
    }
}

/* The synthetic server writes n bytes into the right ring, as any peer would. */
static void synth_write(struct synth *s, const uint8_t *data, size_t n)
{
    uint32_t prod = s->page->right.prod;

    for (size_t i = 0; i < n; i++) {
        s->right[(prod + i) & (s->rsize - 1)] = data[i];
    }
    __atomic_store_n(&s->page->right.prod, prod + (uint32_t)n, __ATOMIC_RELEASE);
    if (__atomic_fetch_and(&s->page->srv_notify, (uint8_t)~VCHAN__NOTIFY_WRITE, __ATOMIC_SEQ_CST) &
        VCHAN__NOTIFY_WRITE) {
        (void)loop_platform.notify(s->p);
    }
}

static size_t synth_read(struct synth *s, uint8_t *out, size_t max)
{
    uint32_t cons = s->page->left.cons;
    uint32_t n = __atomic_load_n(&s->page->left.prod, __ATOMIC_ACQUIRE) - cons;

    n = n < max ? n : (uint32_t)max;
    for (uint32_t i = 0; i < n; i++) {
        out[i] = s->left[(cons + i) & (s->lsize - 1)];
    }
    __atomic_store_n(&s->page->left.cons, cons + n, __ATOMIC_RELEASE);
    return n;
}

static void test_setup_ocaml_vchan_server_page(void)
{
    static const unsigned layouts[][2] = { { 10, 12 }, { 12, 10 }, { 10, 13 }, { 11, 12 } };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(layouts); i++) {
        unsigned lo = layouts[i][0], ro = layouts[i][1];
        char port[32], err[128] = "";
        struct vchan_config ccfg;
        struct vchan *cli = NULL;
        struct synth s;
        uint8_t in[9000], out[9000];
        size_t n;

        next_port(port, sizeof(port));
        ccfg = client_cfg(port);
        ccfg.errbuf = err;
        ccfg.errbuf_len = sizeof(err);
        if (!synth_open(&s, port, lo, ro) ||
            !RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), 0)) {
            printf("  layout (%u, %u): %s\n", lo, ro, err);
            goto next;
        }
        UNIT_EQ(vchan_write_ring_size(cli), (size_t)1 << lo);
        UNIT_EQ(vchan_read_ring_size(cli), (size_t)1 << ro);
        CU_ASSERT_PTR_EQUAL(cli->wr.buf, s.left);
        CU_ASSERT_PTR_EQUAL(cli->rd.buf, s.right);
        UNIT_EQ(s.page->cli_live, VCHAN__LIVE_OPEN);
        UNIT_EQ(s.page->srv_notify, VCHAN__NOTIFY_WRITE);
        /* Server to client: more than the ring, in two goes, crossing its end. */
        unit_pattern_fill(in, sizeof(in), i, 0);
        synth_write(&s, in, s.rsize - 100);
        RC(vchan_read(cli, out, sizeof(out), &n), 0);
        UNIT_EQ(n, s.rsize - 100);
        CU_ASSERT(memcmp(in, out, n) == 0);
        synth_write(&s, in + 7, 300);
        RC(vchan_recv(cli, out, 300), 0);
        CU_ASSERT(memcmp(in + 7, out, 300) == 0);
        /* Client to server, likewise. */
        RC(vchan_write(cli, in, s.lsize - 10, &n), 0);
        UNIT_EQ(n, s.lsize - 10);
        UNIT_EQ(synth_read(&s, out, sizeof(out)), s.lsize - 10);
        CU_ASSERT(memcmp(in, out, s.lsize - 10) == 0);
        RC(vchan_send(cli, in + 1, 50), 0);
        UNIT_EQ(synth_read(&s, out, sizeof(out)), 50);
        CU_ASSERT(memcmp(in + 1, out, 50) == 0);
        /* Its close: end-of-file after the data. */
        synth_write(&s, in, 10);
        synth_close(&s);
        s.page = NULL;
        s.p = NULL;
        s.lpages = s.rpages = 0;
        RC(vchan_read(cli, out, sizeof(out), &n), 0);
        UNIT_EQ(n, 10);
        RC(vchan_read(cli, out, sizeof(out), &n), 0);
        UNIT_EQ(n, 0);
    next:
        vchan_close(cli);
        synth_close(&s);
        all_released();
    }
}

/* ------------------------------------------------- configuration checks */

static void test_setup_config_validation(void)
{
    static const char port65[] =
        "01234567890123456789012345678901234567890123456789012345678901234";
    static const struct {
        int domain;
        const char *port;
        size_t rd, wr;
        int timeout;
        const char *msg;
    } cases[] = {
        { -1, "p", 0, 0, 0, "domain" },
        { 32752, "p", 0, 0, 0, "domain" },
        { INT_MAX, "p", 0, 0, 0, "domain" },
        { INT_MIN, "p", 0, 0, 0, "domain" },
        { 0, NULL, 0, 0, 0, "port" },
        { 0, "", 0, 0, 0, "port" },
        { 0, "a/b", 0, 0, 0, "port" },
        { 0, "a b", 0, 0, 0, "port" },
        { 0, port65, 0, 0, 0, "port" },
        { 0, "p", MIB + 1, 0, 0, "1 MiB" },
        { 0, "p", 0, MIB + 1, 0, "1 MiB" },
        { 0, "p", SIZE_MAX, SIZE_MAX, 0, "1 MiB" },
        { 0, "p", 0, 0, -1, "timeout" },
        { 0, "p", 0, 0, INT_MIN, "timeout" },
    };
    /* A server on "p": a client that wrongly accepted a bad config would connect, not hang. */
    struct vchan_config pcfg = server_cfg("p", 0, 0);
    struct vchan *pserver = NULL;

    RC(vchan__server_open(&pserver, &loop_platform, &pcfg, NULL), 0);
    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        for (int server = 0; server < 2; server++) {
            char err[128] = "untouched";
            struct vchan_config cfg =
                VCHAN_CONFIG_INIT(.domain = cases[i].domain, .port = cases[i].port,
                                  .read_size = cases[i].rd, .write_size = cases[i].wr,
                                  .timeout_ms = cases[i].timeout, .errbuf = err,
                                  .errbuf_len = sizeof(err));
            struct vchan *v = (struct vchan *)&cfg;
            int rc = server ? vchan__server_open(&v, &loop_platform, &cfg, NULL)
                            : vchan__client_open(&v, &loop_platform, &cfg, NULL);

            if (!RC(rc, -VCHAN_EINVAL) || strstr(err, cases[i].msg) == NULL) {
                printf("  case %zu (%s): \"%s\"\n", i, server ? "server" : "client", err);
                CU_ASSERT(strstr(err, cases[i].msg) != NULL);
            }
            CU_ASSERT_PTR_NULL(v);
            if (rc == 0) {
                vchan_close(v);
            }
        }
    }
    /* Limits that are fine: the 64-character port, domain 32751, exactly 1 MiB. */
    {
        struct vchan_config cfg = server_cfg(port65 + 1, MIB, MIB);
        struct vchan *v = NULL;

        cfg.domain = 32751;
        RC(vchan__server_open(&v, &loop_platform, &cfg, NULL), 0);
        vchan_close(v);
    }
    /* No configuration, nowhere to put the handle. */
    {
        struct vchan_config cfg = server_cfg("p", 0, 0);
        struct vchan *v = (struct vchan *)&cfg;

        RC(vchan__server_open(&v, &loop_platform, NULL, NULL), -VCHAN_EINVAL);
        CU_ASSERT_PTR_NULL(v);
        v = (struct vchan *)&cfg;
        RC(vchan__client_open(&v, &loop_platform, NULL, NULL), -VCHAN_EINVAL);
        CU_ASSERT_PTR_NULL(v);
        RC(vchan__server_open(NULL, &loop_platform, &cfg, NULL), -VCHAN_EINVAL);
        RC(vchan__client_open(NULL, &loop_platform, &cfg, NULL), -VCHAN_EINVAL);
    }
    vchan_close(pserver);
    all_released();
}

/* The error buffer: always terminated, truncated to fit, optional. */
static void test_setup_errbuf_truncation(void)
{
    struct vchan_config cfg = VCHAN_CONFIG_INIT(.domain = -1, .port = "p");
    struct vchan *v;
    char err[8];

    memset(err, 'x', sizeof(err));
    cfg.errbuf = err;
    cfg.errbuf_len = 5;
    RC(vchan__server_open(&v, &loop_platform, &cfg, NULL), -VCHAN_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "doma");
    UNIT_EQ(err[5], 'x');
    cfg.errbuf_len = 1;
    RC(vchan__client_open(&v, &loop_platform, &cfg, NULL), -VCHAN_EINVAL);
    UNIT_EQ(err[0], '\0');
    UNIT_EQ(err[1], 'o');
    err[0] = 'x';
    cfg.errbuf_len = 0;
    RC(vchan__client_open(&v, &loop_platform, &cfg, NULL), -VCHAN_EINVAL);
    UNIT_EQ(err[0], 'x');
    cfg.errbuf = NULL;
    cfg.errbuf_len = 100;
    RC(vchan__server_open(&v, &loop_platform, &cfg, NULL), -VCHAN_EINVAL);
    all_released();
}

static void test_setup_config_flags_applied(void)
{
    char port[32];
    struct vchan_config scfg, ccfg;
    struct vchan *srv = NULL, *cli = NULL;
    uint8_t buf[4];
    uint64_t t0;
    size_t n;

    next_port(port, sizeof(port));
    scfg = server_cfg(port, 0, 0);
    scfg.nonblocking = false;
    scfg.timeout_ms = 40;
    ccfg = client_cfg(port);
    if (!RC(vchan__server_open(&srv, &loop_platform, &scfg, NULL), 0) ||
        !RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), 0)) {
        goto out;
    }
    t0 = now_ms();
    RC(vchan_read(cli, buf, sizeof(buf), &n), -VCHAN_EAGAIN);
    RC(vchan_read(srv, buf, sizeof(buf), &n), -VCHAN_ETIMEDOUT);
    CU_ASSERT(now_ms() - t0 >= 35);
    /* The defaults: 64 KiB each way. */
    UNIT_EQ(vchan_read_ring_size(srv), 64 * 1024);
    UNIT_EQ(vchan_write_ring_size(srv), 64 * 1024);
out:
    vchan_close(cli);
    vchan_close(srv);
    all_released();
}

/* ----------------------------------------------- failures and clean-up */

struct fault {
    enum loop_op op;
    unsigned nth;
    int err;
};

static void test_setup_server_failures_clean_up(void)
{
    static const struct fault faults[] = {
        { LOOP_ALLOC, 1, -VCHAN_ENOMEM },
        { LOOP_OPEN, 1, -VCHAN_EIO },
        { LOOP_EVTCHN_ALLOC, 1, -VCHAN_EPERM },
        { LOOP_SHARE, 1, -VCHAN_ENOMEM }, /* control page */
        { LOOP_SHARE, 2, -VCHAN_ENOMEM }, /* left ring */
        { LOOP_SHARE, 3, -VCHAN_ENOMEM }, /* right ring */
        { LOOP_PUBLISH, 1, -VCHAN_EPERM },
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(faults); i++) {
        char port[32], err[128] = "";
        struct vchan_config cfg, ccfg;
        struct vchan *srv = (struct vchan *)&cfg, *cli = NULL;
        int want = faults[i].err;

        next_port(port, sizeof(port));
        cfg = server_cfg(port, 8192, 8192);
        cfg.errbuf = err;
        cfg.errbuf_len = sizeof(err);
        loop_fail(faults[i].op, faults[i].nth, faults[i].err);
        if (!RC(vchan__server_open(&srv, &loop_platform, &cfg, NULL), want)) {
            printf("  fault #%zu\n", i);
            vchan_close(srv);
        }
        CU_ASSERT_PTR_NULL(srv);
        CU_ASSERT(err[0] != '\0');
        UNIT_EQ(loop_outstanding(), 0);
        /* Nothing was left published. */
        ccfg = client_cfg(port);
        ccfg.timeout_ms = 1;
        RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), -VCHAN_ETIMEDOUT);
        all_released();
    }
}

static void test_setup_client_failures_clean_up(void)
{
    static const struct fault faults[] = {
        { LOOP_ALLOC, 1, -VCHAN_ENOMEM },
        { LOOP_OPEN, 1, -VCHAN_EIO },
        { LOOP_LOOKUP, 1, -VCHAN_EPERM },
        { LOOP_BIND, 1, -VCHAN_EIO },
        { LOOP_MAP, 1, -VCHAN_EIO }, /* control page */
        { LOOP_MAP, 2, -VCHAN_EIO }, /* left ring */
        { LOOP_MAP, 3, -VCHAN_EIO }, /* right ring */
        { LOOP_NOTIFY, 1, -VCHAN_EIO },
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(faults); i++) {
        char port[32], err[128] = "";
        struct vchan_config scfg, ccfg;
        struct vchan *srv = NULL, *cli = (struct vchan *)&scfg;
        int want = faults[i].err;
        size_t baseline;

        next_port(port, sizeof(port));
        scfg = server_cfg(port, 8192, 8192);
        ccfg = client_cfg(port);
        ccfg.errbuf = err;
        ccfg.errbuf_len = sizeof(err);
        if (!RC(vchan__server_open(&srv, &loop_platform, &scfg, NULL), 0)) {
            continue;
        }
        baseline = loop_outstanding();
        loop_fail(faults[i].op, faults[i].nth, faults[i].err);
        if (!RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), want)) {
            printf("  fault #%zu\n", i);
            vchan_close(cli);
        }
        CU_ASSERT_PTR_NULL(cli);
        CU_ASSERT(err[0] != '\0');
        UNIT_EQ(loop_outstanding(), baseline);
        loop_reset();
        if (faults[i].op == LOOP_NOTIFY) {
            /* It had marked itself connected: it leaves closed, as a close would. */
            UNIT_EQ(srv->ctrl->cli_live, VCHAN__LIVE_CLOSED);
        } else {
            /* It never touched the page: the next client gets in. */
            UNIT_EQ(srv->ctrl->cli_live, VCHAN__LIVE_WAITING);
            ccfg.errbuf = NULL;
            RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), 0);
            RC(vchan_send(cli, "x", 1), 0);
            vchan_close(cli);
        }
        vchan_close(srv);
        all_released();
    }
}

static void test_setup_port_in_use(void)
{
    char port[32], err[128] = "";
    struct vchan_config cfg;
    struct vchan *a = NULL, *b = (struct vchan *)&cfg;
    size_t baseline;

    next_port(port, sizeof(port));
    cfg = server_cfg(port, 0, 0);
    cfg.errbuf = err;
    cfg.errbuf_len = sizeof(err);
    if (!RC(vchan__server_open(&a, &loop_platform, &cfg, NULL), 0)) {
        goto out;
    }
    baseline = loop_outstanding();
    RC(vchan__server_open(&b, &loop_platform, &cfg, NULL), -VCHAN_EADDRINUSE);
    CU_ASSERT_PTR_NULL(b);
    CU_ASSERT(err[0] != '\0');
    UNIT_EQ(loop_outstanding(), baseline);
    UNIT_EQ(vchan_is_open(a), VCHAN_STATE_WAITING);
    UNIT_EQ(a->ctrl->srv_live, VCHAN__LIVE_OPEN);
out:
    vchan_close(a);
    all_released();
}

/* ------------------------------------------------------------ lookup */

struct late_client {
    const char *port;
    int rc;
    struct vchan *v;
};

static void *late_client_thread(void *arg)
{
    struct late_client *c = arg;
    struct vchan_config cfg = client_cfg(c->port);

    cfg.timeout_ms = 5000;
    c->rc = vchan__client_open(&c->v, &loop_platform, &cfg, NULL);
    return NULL;
}

/* A client started first waits for its server. */
static void test_setup_client_waits_for_server(void)
{
    char port[32];
    struct late_client c = { port, 1, NULL };
    struct vchan_config scfg;
    struct vchan *srv = NULL;
    struct timespec pause = { 0, 50 * 1000000L };
    pthread_t t;

    next_port(port, sizeof(port));
    pthread_create(&t, NULL, late_client_thread, &c);
    nanosleep(&pause, NULL);
    scfg = server_cfg(port, 0, 0);
    RC(vchan__server_open(&srv, &loop_platform, &scfg, NULL), 0);
    pthread_join(t, NULL);
    if (RC(c.rc, 0)) {
        uint8_t b = 0;
        RC(vchan_send(c.v, "y", 1), 0);
        RC(vchan_recv(srv, &b, 1), 0);
        UNIT_EQ(b, 'y');
    }
    vchan_close(c.v);
    vchan_close(srv);
    all_released();
}

static void test_setup_client_lookup_timeout(void)
{
    char port[32], err[128] = "";
    struct vchan_config cfg;
    struct vchan *cli = (struct vchan *)&cfg;
    uint64_t t0, dt;

    next_port(port, sizeof(port));
    cfg = client_cfg(port);
    cfg.timeout_ms = 60;
    cfg.errbuf = err;
    cfg.errbuf_len = sizeof(err);
    t0 = now_ms();
    RC(vchan__client_open(&cli, &loop_platform, &cfg, NULL), -VCHAN_ETIMEDOUT);
    dt = now_ms() - t0;
    CU_ASSERT(dt >= 55 && dt < 2000);
    CU_ASSERT_PTR_NULL(cli);
    CU_ASSERT(strstr(err, "timed out") != NULL);
    all_released();
}

/* --------------------------------------------------------------- close */

static void test_setup_close_server_side(void)
{
    char port[32];
    struct vchan_config scfg, ccfg;
    struct vchan *srv = NULL, *cli = NULL, *again = NULL;

    next_port(port, sizeof(port));
    scfg = server_cfg(port, 4096, 4096);
    ccfg = client_cfg(port);
    if (!RC(vchan__server_open(&srv, &loop_platform, &scfg, NULL), 0) ||
        !RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), 0)) {
        goto out;
    }
    loop_events_take(cli);
    vchan_close(srv);
    srv = NULL;
    /* Live byte cleared, one event, and the channel no longer published. */
    UNIT_EQ(cli->ctrl->srv_live, VCHAN__LIVE_CLOSED);
    UNIT_EQ(cli->ctrl->cli_live, VCHAN__LIVE_OPEN);
    UNIT_EQ(loop_events_take(cli), 1);
    UNIT_EQ(vchan_is_open(cli), VCHAN_STATE_CLOSED);
    ccfg.timeout_ms = 1;
    RC(vchan__client_open(&again, &loop_platform, &ccfg, NULL), -VCHAN_ETIMEDOUT);
out:
    vchan_close(cli);
    vchan_close(srv);
    all_released();
}

static void test_setup_close_client_side(void)
{
    char port[32];
    struct vchan_config scfg, ccfg;
    struct vchan *srv = NULL, *cli = NULL;

    next_port(port, sizeof(port));
    scfg = server_cfg(port, 1, 1);
    ccfg = client_cfg(port);
    if (!RC(vchan__server_open(&srv, &loop_platform, &scfg, NULL), 0) ||
        !RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), 0)) {
        goto out;
    }
    loop_events_take(srv);
    vchan_close(cli);
    cli = NULL;
    UNIT_EQ(srv->ctrl->cli_live, VCHAN__LIVE_CLOSED);
    UNIT_EQ(srv->ctrl->srv_live, VCHAN__LIVE_OPEN);
    UNIT_EQ(loop_events_take(srv), 1);
    UNIT_EQ(vchan_is_open(srv), VCHAN_STATE_CLOSED);
    RC(vchan_wait_connected(srv), 0);
out:
    vchan_close(cli);
    vchan_close(srv);
    all_released();
}

/* A server closed before any client came: nothing left behind. */
static void test_setup_close_unconnected_server(void)
{
    char port[32];
    struct vchan_config cfg;
    struct vchan *srv = NULL;

    next_port(port, sizeof(port));
    cfg = server_cfg(port, MIB, MIB);
    RC(vchan__server_open(&srv, &loop_platform, &cfg, NULL), 0);
    vchan_close(srv);
    all_released();
}

/* Each side registers unmap-notify on its own live byte: a crash reads as closed. */
static void test_setup_unmap_notify_on_own_live_byte(void)
{
    for (int crash_server = 0; crash_server < 2; crash_server++) {
        char port[32];
        struct vchan_config scfg, ccfg;
        struct vchan *srv = NULL, *cli = NULL;

        next_port(port, sizeof(port));
        scfg = server_cfg(port, 0, 0);
        ccfg = client_cfg(port);
        if (RC(vchan__server_open(&srv, &loop_platform, &scfg, NULL), 0) &&
            RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), 0)) {
            loop_events_take(crash_server ? cli : srv);
            loop_crash(crash_server ? srv : cli);
            UNIT_EQ(srv->ctrl->srv_live, crash_server ? 0 : 1);
            UNIT_EQ(srv->ctrl->cli_live, crash_server ? 1 : 0);
            UNIT_EQ(vchan_is_open(crash_server ? cli : srv), VCHAN_STATE_CLOSED);
            CU_ASSERT(loop_event_pending(crash_server ? cli : srv));
        }
        vchan_close(cli);
        vchan_close(srv);
        all_released();
    }
}

/* struct_size: unset is refused with a message, a newer caller's zero tail is fine, a set one not. */
static void test_setup_config_versioned(void)
{
    struct {
        struct vchan_config cfg;
        unsigned char newer[16]; /* fields a newer vchan.h would have appended */
    } big;
    struct vchan_config cfg, ccfg;
    struct vchan *srv = NULL, *cli = NULL;
    char port[32], err[128];

    next_port(port, sizeof(port));
    /* Zeroed only: refused, saying what to do. */
    memset(&cfg, 0, sizeof(cfg));
    cfg.port = port;
    cfg.errbuf = err;
    cfg.errbuf_len = sizeof(err);
    err[0] = '\0';
    RC(vchan__server_open(&srv, &loop_platform, &cfg, NULL), -VCHAN_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "struct vchan_config not initialised: use VCHAN_CONFIG_INIT");
    CU_ASSERT_PTR_NULL(srv);
    err[0] = '\0';
    RC(vchan__client_open(&cli, &loop_platform, &cfg, NULL), -VCHAN_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "VCHAN_CONFIG_INIT"));
    /* Too small, or garbage: refused, and the rest of the struct is not trusted. */
    strcpy(err, "untouched");
    cfg.struct_size = sizeof(cfg) - 1;
    RC(vchan__server_open(&srv, &loop_platform, &cfg, NULL), -VCHAN_EINVAL);
    cfg.struct_size = (size_t)-1;
    RC(vchan__server_open(&srv, &loop_platform, &cfg, NULL), -VCHAN_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "untouched");
    /* vchan_config_init: the same as VCHAN_CONFIG_INIT(). */
    memset(&cfg, 0xa5, sizeof(cfg));
    vchan_config_init(&cfg);
    vchan_config_init(NULL);
    {
        struct vchan_config want = VCHAN_CONFIG_INIT();
        CU_ASSERT_EQUAL(memcmp(&cfg, &want, sizeof(cfg)), 0);
        UNIT_EQ(cfg.struct_size, sizeof(cfg));
    }
    /* A newer caller with its new fields left zero: accepted. */
    memset(&big, 0, sizeof(big));
    big.cfg = server_cfg(port, 0, 0);
    big.cfg.struct_size = sizeof(big);
    big.cfg.errbuf = err;
    big.cfg.errbuf_len = sizeof(err);
    ccfg = client_cfg(port);
    if (RC(vchan__server_open(&srv, &loop_platform, &big.cfg, NULL), 0)) {
        RC(vchan__client_open(&cli, &loop_platform, &ccfg, NULL), 0);
    }
    vchan_close(cli);
    vchan_close(srv);
    cli = srv = NULL;
    /* ... but one it set cannot be honoured: refused. */
    big.newer[sizeof(big.newer) - 1] = 1;
    err[0] = '\0';
    RC(vchan__server_open(&srv, &loop_platform, &big.cfg, NULL), -VCHAN_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "newer vchan.h"));
    CU_ASSERT_PTR_NULL(srv);
    all_released();
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_setup_server_page_fields),
    UNIT_TEST(test_setup_client_connect_fields),
    UNIT_TEST(test_setup_client_rejects_bad_orders),
    UNIT_TEST(test_setup_client_rejects_unmappable_grants),
    UNIT_TEST(test_setup_orders_and_grants_fetched_once),
    UNIT_TEST(test_setup_ocaml_vchan_server_page),
    UNIT_TEST(test_setup_config_validation),
    UNIT_TEST(test_setup_errbuf_truncation),
    UNIT_TEST(test_setup_config_versioned),
    UNIT_TEST(test_setup_config_flags_applied),
    UNIT_TEST(test_setup_server_failures_clean_up),
    UNIT_TEST(test_setup_client_failures_clean_up),
    UNIT_TEST(test_setup_port_in_use),
    UNIT_TEST(test_setup_client_waits_for_server),
    UNIT_TEST(test_setup_client_lookup_timeout),
    UNIT_TEST(test_setup_close_server_side),
    UNIT_TEST(test_setup_close_client_side),
    UNIT_TEST(test_setup_close_unconnected_server),
    UNIT_TEST(test_setup_unmap_notify_on_own_live_byte),
};

UNIT_MAIN("setup", tests)
