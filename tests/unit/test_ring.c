/* SPDX-License-Identifier: ISC */
/*
 * The ring core (libvchan/core/ring.c), the order rules of setup.c and the error
 * table (errors.c), driven through the real server/client set-up on the
 * in-process loop platform: both ends live here, so every case is
 * deterministic and a test can rewrite the shared page as a hostile peer
 * would. Randomised cases take their seed from UNIT_SEED (printed).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "libvchan/core/barrier.h"
#include "libvchan/core/internal.h"
#include "loop_platform.h"
#include "unit.h"

#define RC(actual, expected) UNIT_EQ_NAMED((actual), (expected), vchan_errname)
#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/* ------------------------------------------------------------- helpers */

static unsigned port_seq;

struct pair {
    struct vchan *srv, *cli;
};

static void next_port(char *buf, size_t len)
{
    snprintf(buf, len, "ring-%u", ++port_seq);
}

static bool server_open(struct pair *p, const char *port, size_t read_size, size_t write_size,
                        bool nonblocking, int timeout_ms)
{
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = 1, .port = port, .read_size = read_size,
                          .write_size = write_size, .nonblocking = nonblocking,
                          .timeout_ms = timeout_ms);

    return RC(vchan__server_open(&p->srv, &loop_platform, &cfg, NULL), 0);
}

static bool client_open(struct pair *p, const char *port, bool nonblocking, int timeout_ms)
{
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = 0, .port = port, .nonblocking = nonblocking,
                          .timeout_ms = timeout_ms);

    return RC(vchan__client_open(&p->cli, &loop_platform, &cfg, NULL), 0);
}

/* A connected pair; sizes as the server's read_size/write_size (0: 64 KiB). */
static bool pair_open(struct pair *p, size_t read_size, size_t write_size, bool nonblocking,
                      int timeout_ms)
{
    char port[32];

    memset(p, 0, sizeof(*p));
    next_port(port, sizeof(port));
    return server_open(p, port, read_size, write_size, nonblocking, timeout_ms) &&
           client_open(p, port, nonblocking, timeout_ms);
}

/* Close both ends and check that the platform got everything back. */
static void pair_close(struct pair *p)
{
    vchan_close(p->cli);
    vchan_close(p->srv);
    p->cli = p->srv = NULL;
    UNIT_EQ(loop_outstanding(), 0);
    loop_reset();
}

/* Start both ends' shared and private indices at `start` (before the client attaches). */
static void seed_indices(struct vchan *srv, uint32_t start)
{
    struct vchan__wire *w = srv->ctrl;

    w->left.cons = w->left.prod = start;
    w->right.cons = w->right.prod = start;
    srv->rd.own = start;
    srv->wr.own = start;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/*
 * Move `total` bytes of pattern stream `stream` from w to r in one thread,
 * non-blocking, in random chunks of 1..max_chunk on each side.
 */
static bool pump(struct vchan *w, struct vchan *r, size_t total, size_t max_chunk,
                 struct unit_rng *rng, uint64_t stream)
{
    uint8_t *buf = malloc(max_chunk);
    uint64_t wpos = 0, rpos = 0;
    unsigned idle = 0;
    bool ok = true;

    vchan_set_nonblocking(w, true);
    vchan_set_nonblocking(r, true);
    while (ok && rpos < total) {
        size_t n = (size_t)unit_rng_range(rng, 1, max_chunk), done = 0;
        int rc;

        if (wpos < total) {
            n = n < total - wpos ? n : total - wpos;
            unit_pattern_fill(buf, n, stream, wpos);
            rc = vchan_write(w, buf, n, &done);
            if (rc != 0 && rc != -VCHAN_EAGAIN) {
                ok = RC(rc, 0);
                break;
            }
            wpos += done;
        }
        n = (size_t)unit_rng_range(rng, 1, max_chunk);
        rc = vchan_read(r, buf, n, &done);
        if (rc == -VCHAN_EAGAIN) {
            if (++idle > 1000) {
                CU_FAIL("pump: no progress (data lost?)");
                ok = false;
            }
            continue;
        }
        idle = 0;
        if (!RC(rc, 0)) {
            ok = false;
        } else if (done == 0 || done > n) {
            CU_FAIL("pump: read returned a bad count");
            ok = false;
        } else if (unit_pattern_check(buf, done, stream, rpos) != done) {
            CU_FAIL("pump: data differs from what was written");
            ok = false;
        }
        rpos += done;
    }
    free(buf);
    return ok;
}

/* ------------------------------------------------- order rules (setup.c) */

static unsigned ceil_log2(size_t x)
{
    return x <= 1 ? 0 : 64u - (unsigned)__builtin_clzll((unsigned long long)(x - 1));
}

/*
 * libxenvchan's server rule, restated: a ring whose minimum fits the page's
 * 1 KiB slot (offset 1024) or 2 KiB slot (offset 2048) goes there, reading
 * ring in the small slot first; any other ring gets granted pages, at least
 * one (order 12).
 */
static int ref_select(size_t rd, size_t wr, unsigned *ro, unsigned *wo)
{
    bool rd_small = rd <= 1024, rd_large = rd <= 2048;
    bool wr_small = wr <= 1024, wr_large = wr <= 2048;
    unsigned rd_paged = ceil_log2(rd) < 12 ? 12 : ceil_log2(rd);
    unsigned wr_paged = ceil_log2(wr) < 12 ? 12 : ceil_log2(wr);

    if (rd > (1u << 20) || wr > (1u << 20)) {
        return -VCHAN_EINVAL;
    }
    if (rd_small && wr_large) {
        *ro = 10, *wo = 11;
    } else if (rd_large && wr_small) {
        *ro = 11, *wo = 10;
    } else if (rd_large) {
        *ro = 11, *wo = wr_paged;
    } else if (wr_large) {
        *ro = rd_paged, *wo = 11;
    } else {
        *ro = rd_paged, *wo = wr_paged;
    }
    return 0;
}

static void test_ring_select_orders_table(void)
{
    static const struct {
        size_t rd, wr;
        int rc;
        unsigned ro, wo;
    } cases[] = {
        { 0, 0, 0, 10, 11 },              /* libxenvchan's default */
        { 1, 1, 0, 10, 11 },
        { 1024, 2048, 0, 10, 11 },
        { 2048, 1024, 0, 11, 10 },
        { 1025, 1024, 0, 11, 10 },
        { 1024, 2049, 0, 11, 12 },        /* write needs pages: read takes the 2 KiB slot */
        { 1025, 2048, 0, 11, 12 },
        { 2048, 2048, 0, 11, 12 },
        { 2049, 2048, 0, 12, 11 },
        { 4096, 1024, 0, 12, 11 },
        { 1024, 4096, 0, 11, 12 },
        { 0, 4096, 0, 11, 12 },
        { 2049, 2049, 0, 12, 12 },
        { 3000, 3000, 0, 12, 12 },
        { 4097, 0, 0, 13, 11 },
        { 8192, 8193, 0, 13, 14 },
        { 65536, 65536, 0, 16, 16 },
        { 65537, 65535, 0, 17, 16 },
        { 1 << 20, 1, 0, 20, 11 },
        { 1 << 20, 1 << 20, 0, 20, 20 },
        { (1 << 20) + 1, 0, -VCHAN_EINVAL, 0, 0 },
        { 0, (1 << 20) + 1, -VCHAN_EINVAL, 0, 0 },
        { SIZE_MAX, SIZE_MAX, -VCHAN_EINVAL, 0, 0 },
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        unsigned ro = 0, wo = 0;
        int rc = vchan__select_orders(cases[i].rd, cases[i].wr, &ro, &wo);

        if (!RC(rc, cases[i].rc)) {
            printf("  case %zu: (%zu, %zu)\n", i, cases[i].rd, cases[i].wr);
            continue;
        }
        if (rc == 0 && (!UNIT_EQ(ro, cases[i].ro) || !UNIT_EQ(wo, cases[i].wo))) {
            printf("  case %zu: (%zu, %zu) gave (%u, %u)\n", i, cases[i].rd, cases[i].wr, ro, wo);
        }
    }
}

/* Every size around every power of two, both ways, against the restated rule. */
static void test_ring_select_orders_exhaustive(void)
{
    size_t sizes[3 * 22 + 1];
    size_t n = 0;
    unsigned bad = 0;

    sizes[n++] = 0;
    for (unsigned b = 0; b <= 21; b++) {
        sizes[n++] = ((size_t)1 << b) - 1;
        sizes[n++] = (size_t)1 << b;
        sizes[n++] = ((size_t)1 << b) + 1;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            unsigned ro = 99, wo = 99, xro = 0, xwo = 0;
            int rc = vchan__select_orders(sizes[i], sizes[j], &ro, &wo);
            int xrc = ref_select(sizes[i], sizes[j], &xro, &xwo);

            if (rc != xrc || (rc == 0 && (ro != xro || wo != xwo))) {
                if (bad++ < 10) {
                    printf("  (%zu, %zu): got %d (%u, %u), expected %d (%u, %u)\n", sizes[i],
                           sizes[j], rc, ro, wo, xrc, xro, xwo);
                }
                continue;
            }
            if (rc == 0) {
                /* Whatever it picks is a layout our own client accepts, with room enough. */
                size_t lp, rp;
                if (vchan__check_orders(ro, wo, &lp, &rp) != 0 ||
                    ((size_t)1 << ro) < sizes[i] || ((size_t)1 << wo) < sizes[j]) {
                    if (bad++ < 10) {
                        printf("  (%zu, %zu) -> (%u, %u) unusable\n", sizes[i], sizes[j], ro, wo);
                    }
                }
            }
        }
    }
    UNIT_EQ(bad, 0);
}

/*
 * Orders a client may accept, from the page layout: the header and grant
 * list [0, 24 + 4 * grants), an order-10 ring [1024, 2048), an order-11 ring
 * [2048, 4096); all within the page and pairwise disjoint.
 */
static bool ref_orders_ok(unsigned l, unsigned r, size_t *lp, size_t *rp)
{
    struct {
        size_t lo, hi;
    } reg[3];
    unsigned o[2] = { l, r };
    size_t n = 0;

    if (l < 10 || l > 20 || r < 10 || r > 20) {
        return false;
    }
    *lp = l >= 12 ? (size_t)1 << (l - 12) : 0;
    *rp = r >= 12 ? (size_t)1 << (r - 12) : 0;
    reg[n].lo = 0;
    reg[n++].hi = 24 + 4 * (*lp + *rp);
    for (int i = 0; i < 2; i++) {
        if (o[i] == 10) {
            reg[n].lo = 1024;
            reg[n++].hi = 2048;
        } else if (o[i] == 11) {
            reg[n].lo = 2048;
            reg[n++].hi = 4096;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (reg[i].hi > 4096) {
            return false;
        }
        for (size_t j = i + 1; j < n; j++) {
            if (reg[i].lo < reg[j].hi && reg[j].lo < reg[i].hi) {
                return false;
            }
        }
    }
    return true;
}

static void test_ring_check_orders_table(void)
{
    static const struct {
        unsigned l, r;
        bool ok;
        size_t lp, rp;
    } cases[] = {
        { 10, 11, true, 0, 0 },   { 11, 10, true, 0, 0 },   { 10, 10, false, 0, 0 },
        { 11, 11, false, 0, 0 },  { 12, 12, true, 1, 1 },   { 10, 12, true, 0, 1 }, /* ocaml-vchan */
        { 12, 10, true, 1, 0 },   { 9, 11, false, 0, 0 },   { 11, 9, false, 0, 0 },
        { 0, 0, false, 0, 0 },    { 21, 12, false, 0, 0 },  { 12, 21, false, 0, 0 },
        { 65535, 11, false, 0, 0 },
        /* Grant list against an order-10 ring at 1024: 24 + 4 * n <= 1024, n <= 250. */
        { 10, 19, true, 0, 128 }, { 19, 10, true, 128, 0 }, { 10, 20, false, 0, 0 },
        { 20, 10, false, 0, 0 },
        /* ... against an order-11 ring at 2048: n <= 506. */
        { 11, 20, true, 0, 256 }, { 20, 11, true, 256, 0 },
        /* Both paged: 512 grants end at 2072. */
        { 20, 20, true, 256, 256 }, { 19, 20, true, 128, 256 },
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        size_t lp = 99, rp = 99;
        int rc = vchan__check_orders(cases[i].l, cases[i].r, &lp, &rp);

        if (!RC(rc, cases[i].ok ? 0 : -VCHAN_EPROTO)) {
            printf("  case (%u, %u)\n", cases[i].l, cases[i].r);
        } else if (cases[i].ok && (!UNIT_EQ(lp, cases[i].lp) || !UNIT_EQ(rp, cases[i].rp))) {
            printf("  case (%u, %u): pages (%zu, %zu)\n", cases[i].l, cases[i].r, lp, rp);
        }
    }
}

static void test_ring_check_orders_exhaustive(void)
{
    unsigned bad = 0, accepted = 0;

    for (unsigned l = 0; l <= 24; l++) {
        for (unsigned r = 0; r <= 24; r++) {
            size_t lp = 0, rp = 0, xlp = 0, xrp = 0;
            int rc = vchan__check_orders(l, r, &lp, &rp);
            bool ok = ref_orders_ok(l, r, &xlp, &xrp);

            if ((rc == 0) != ok || (rc != 0 && rc != -VCHAN_EPROTO) ||
                (ok && (lp != xlp || rp != xrp))) {
                if (bad++ < 10) {
                    printf("  (%u, %u): got %d (%zu, %zu), expected %s (%zu, %zu)\n", l, r, rc, lp,
                           rp, ok ? "ok" : "EPROTO", xlp, xrp);
                }
            }
            accepted += ok;
        }
    }
    UNIT_EQ(bad, 0);
    /* 11 x 11 orders, minus (10,10), (11,11), (10,20), (20,10). */
    UNIT_EQ(accepted, 121 - 4);
}

/* ------------------------------------------------ placement and wrap-around */

/* Where a ring of `order` must sit for the server whose page is `ctrl`. */
static bool placed_right(const struct vchan *v, const struct vchan__ring *r, unsigned order)
{
    const uint8_t *page = (const uint8_t *)v->ctrl;

    if (r->size != 1u << order) {
        return false;
    }
    if (order == 10) {
        return r->buf == page + 1024 && r->npages == 0;
    }
    if (order == 11) {
        return r->buf == page + 2048 && r->npages == 0;
    }
    return r->npages == (size_t)1 << (order - 12) && ((uintptr_t)r->buf & 4095) == 0 &&
           (r->buf + r->size <= page || r->buf >= page + 4096);
}

/*
 * Every reachable pair of orders 10..20: placement and sizes on both ends
 * agree with the page, and a stream crosses the end of each ring both ways.
 */
static void test_ring_placement_and_wrap_every_order(void)
{
    static const size_t sizes[] = { 1024,     2048,      4096,      8192,     16 * KIB, 32 * KIB,
                                    64 * KIB, 128 * KIB, 256 * KIB, 512 * KIB, MIB };
    struct unit_rng rng = unit_rng(1);
    unsigned seen[21] = { 0 };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(sizes); i++) {
        for (size_t j = 0; j < UNIT_ARRAY_LEN(sizes); j++) {
            struct pair p = { 0 };
            unsigned ro, wo;
            bool ok = true;

            if (!RC(ref_select(sizes[i], sizes[j], &ro, &wo), 0) ||
                !pair_open(&p, sizes[i], sizes[j], true, 0)) {
                pair_close(&p);
                return;
            }
            seen[ro]++;
            seen[wo]++;
            ok &= UNIT_EQ(p.srv->ctrl->left_order, ro);
            ok &= UNIT_EQ(p.srv->ctrl->right_order, wo);
            ok &= UNIT_EQ(vchan_read_ring_size(p.srv), (size_t)1 << ro);
            ok &= UNIT_EQ(vchan_write_ring_size(p.srv), (size_t)1 << wo);
            ok &= UNIT_EQ(vchan_read_ring_size(p.cli), (size_t)1 << wo);
            ok &= UNIT_EQ(vchan_write_ring_size(p.cli), (size_t)1 << ro);
            CU_ASSERT(placed_right(p.srv, &p.srv->rd, ro));
            CU_ASSERT(placed_right(p.srv, &p.srv->wr, wo));
            /* The client found the very same memory through the grants. */
            CU_ASSERT_PTR_EQUAL(p.cli->ctrl, p.srv->ctrl);
            CU_ASSERT_PTR_EQUAL(p.cli->wr.buf, p.srv->rd.buf);
            CU_ASSERT_PTR_EQUAL(p.cli->rd.buf, p.srv->wr.buf);
            UNIT_EQ(p.cli->wr.npages, p.srv->rd.npages);
            UNIT_EQ(p.cli->rd.npages, p.srv->wr.npages);
            /* Grant list: left pages then right pages, no hole. */
            for (size_t g = 0; g < p.srv->rd.npages + p.srv->wr.npages; g++) {
                if (p.srv->ctrl->grants[g] < 8) {
                    CU_FAIL("grant slot left empty");
                    ok = false;
                    break;
                }
            }
            /* Odd chunks, a ring and a half each way: every boundary gets crossed. */
            ok &= pump(p.srv, p.cli, ((size_t)3 << wo) / 2, 1000 + (1u << wo) / 7, &rng, i * 64 + j);
            ok &= pump(p.cli, p.srv, ((size_t)3 << ro) / 2, 1000 + (1u << ro) / 7, &rng, i * 64 + j);
            if (!ok) {
                printf("  sizes (%zu, %zu), orders (%u, %u)\n", sizes[i], sizes[j], ro, wo);
            }
            pair_close(&p);
        }
    }
    for (unsigned o = 10; o <= 20; o++) {
        if (!seen[o]) {
            printf("  order %u never used\n", o);
            CU_FAIL("an order was not covered");
        }
    }
}

/* Free-running indices: start just below 2^32 and cross it, in both rings. */
static void test_ring_index_wrap_u32(void)
{
    static const uint32_t starts[] = { 0xFFFFFFF0u, 0xFFFFFFFFu, 0xFFFFFC00u, 0x7FFFFFFFu,
                                       0x80000000u, 1u };
    static const size_t sizes[][2] = { { 0, 0 }, { 4096, 4096 }, { 2048, 16384 } };
    struct unit_rng rng = unit_rng(2);

    for (size_t s = 0; s < UNIT_ARRAY_LEN(starts); s++) {
        for (size_t z = 0; z < UNIT_ARRAY_LEN(sizes); z++) {
            char port[32];
            struct pair p = { 0 };
            bool ok;

            next_port(port, sizeof(port));
            if (!server_open(&p, port, sizes[z][0] ? sizes[z][0] : 1, sizes[z][1] ? sizes[z][1] : 1,
                             true, 0)) {
                pair_close(&p);
                return;
            }
            seed_indices(p.srv, starts[s]);
            if (!client_open(&p, port, true, 0)) {
                pair_close(&p);
                return;
            }
            UNIT_EQ(p.cli->rd.own, starts[s]);
            UNIT_EQ(p.cli->wr.own, starts[s]);
            ok = pump(p.srv, p.cli, 3 * p.srv->wr.size + 17, 700, &rng, s);
            ok &= pump(p.cli, p.srv, 3 * p.srv->rd.size + 17, 700, &rng, s + 100);
            /* Exactly a full ring's packet across the wrap. */
            {
                uint8_t *buf = malloc(p.srv->wr.size), *out = malloc(p.srv->wr.size);
                unit_pattern_fill(buf, p.srv->wr.size, 7, 0);
                ok &= RC(vchan_send(p.srv, buf, p.srv->wr.size), 0);
                ok &= RC(vchan_recv(p.cli, out, p.srv->wr.size), 0);
                ok &= memcmp(buf, out, p.srv->wr.size) == 0;
                free(buf);
                free(out);
            }
            /* The shared indices went round: they now sit past the start, modulo 2^32. */
            UNIT_EQ((uint32_t)(p.srv->ctrl->right.prod - starts[s]),
                    (uint32_t)(4 * p.srv->wr.size + 17));
            UNIT_EQ(p.srv->ctrl->right.cons, p.srv->ctrl->right.prod);
            UNIT_EQ((uint32_t)(p.srv->ctrl->left.prod - starts[s]), (uint32_t)(3 * p.srv->rd.size + 17));
            if (!ok) {
                printf("  start 0x%08x, sizes #%zu\n", starts[s], z);
            }
            pair_close(&p);
        }
    }
}

/* -------------------------------------------------- reference-model check */

/* The model: a plain byte queue of the ring's capacity. */
struct fifo {
    uint8_t *buf;
    size_t cap, head, len;
};

static void fifo_push(struct fifo *f, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        f->buf[(f->head + f->len++) % f->cap] = src[i];
    }
}

static bool fifo_pop_equal(struct fifo *f, const uint8_t *got, size_t n)
{
    bool same = true;

    for (size_t i = 0; i < n; i++) {
        same &= got[i] == f->buf[f->head];
        f->head = (f->head + 1) % f->cap;
        f->len--;
    }
    return same;
}

/* Random operations of random sizes on one direction, checked step by step. */
static bool model_run(struct vchan *w, struct vchan *r, struct unit_rng *rng, unsigned steps)
{
    size_t cap = vchan_write_ring_size(w);
    struct fifo f = { malloc(cap), cap, 0, 0 };
    uint8_t *buf = malloc(2 * cap + 1);
    bool ok = true;

    UNIT_EQ(vchan_read_ring_size(r), cap);
    for (unsigned step = 0; step < steps && ok; step++) {
        unsigned op = (unsigned)unit_rng_range(rng, 0, 5);
        size_t n = (size_t)unit_rng_range(rng, 0, 3 * cap / 2), done = 99, q;
        int rc, want;

        /* Small sizes matter most: skew half the picks to tiny counts. */
        if (unit_rng_next(rng) & 1) {
            n %= 17;
        }
        switch (op) {
        case 0: /* stream write: what fits */
            for (size_t i = 0; i < n; i++) {
                buf[i] = (uint8_t)unit_rng_next(rng);
            }
            q = n < cap - f.len ? n : cap - f.len;
            want = n > 0 && q == 0 ? -VCHAN_EAGAIN : 0;
            rc = vchan_write(w, buf, n, &done);
            ok &= RC(rc, want) && UNIT_EQ(done, rc ? 0 : q);
            if (ok) {
                fifo_push(&f, buf, q);
            }
            break;
        case 1: /* stream read: what is there */
            q = n < f.len ? n : f.len;
            want = n > 0 && q == 0 ? -VCHAN_EAGAIN : 0;
            rc = vchan_read(r, buf, n, &done);
            ok &= RC(rc, want) && UNIT_EQ(done, rc ? 0 : q);
            if (ok && !fifo_pop_equal(&f, buf, q)) {
                CU_FAIL("model: read data differs");
                ok = false;
            }
            break;
        case 2: /* packet send: all or nothing */
            for (size_t i = 0; i < n; i++) {
                buf[i] = (uint8_t)unit_rng_next(rng);
            }
            want = n > cap ? -VCHAN_EMSGSIZE : n <= cap - f.len ? 0 : -VCHAN_EAGAIN;
            ok &= RC(vchan_send(w, buf, n), want);
            if (ok && want == 0) {
                fifo_push(&f, buf, n);
            }
            break;
        case 3: /* packet recv: all or nothing */
            want = n > cap ? -VCHAN_EMSGSIZE : n <= f.len ? 0 : -VCHAN_EAGAIN;
            memset(buf, 0xa5, n);
            ok &= RC(vchan_recv(r, buf, n), want);
            if (ok && want == 0 && !fifo_pop_equal(&f, buf, n)) {
                CU_FAIL("model: received packet differs");
                ok = false;
            }
            break;
        case 4:
            ok &= RC(vchan_data_ready(r, &done), 0) && UNIT_EQ(done, f.len);
            break;
        default:
            ok &= RC(vchan_buffer_space(w, &done), 0) && UNIT_EQ(done, cap - f.len);
            break;
        }
        if (!ok) {
            printf("  step %u, op %u, n %zu, model holds %zu of %zu\n", step, op, n, f.len, cap);
        }
    }
    free(f.buf);
    free(buf);
    return ok;
}

static void test_ring_reference_model(void)
{
    static const size_t sizes[][2] = { { 0, 0 }, { 2048, 1024 }, { 4096, 8192 }, { 65536, 2048 } };
    struct unit_rng rng = unit_rng(3);

    for (size_t z = 0; z < UNIT_ARRAY_LEN(sizes); z++) {
        struct pair p;

        if (!pair_open(&p, sizes[z][0] ? sizes[z][0] : 1, sizes[z][1] ? sizes[z][1] : 1, true, 0)) {
            pair_close(&p);
            return;
        }
        if (!model_run(p.srv, p.cli, &rng, 20000) || !model_run(p.cli, p.srv, &rng, 20000)) {
            printf("  sizes #%zu\n", z);
        }
        pair_close(&p);
    }
}

/* ------------------------------------------------------ stream and packets */

static void test_ring_stream_partial(void)
{
    uint8_t in[4096], out[4096];
    struct pair p;
    size_t n;

    if (!pair_open(&p, 0, 0, true, 0)) {
        goto out;
    }
    unit_pattern_fill(in, sizeof(in), 1, 0);
    /* Reads return what is there, never more than asked. */
    RC(vchan_write(p.srv, in, 100, &n), 0);
    UNIT_EQ(n, 100);
    RC(vchan_read(p.cli, out, 60, &n), 0);
    UNIT_EQ(n, 60);
    RC(vchan_read(p.cli, out + 60, 1000, &n), 0);
    UNIT_EQ(n, 40);
    CU_ASSERT(memcmp(in, out, 100) == 0);
    RC(vchan_read(p.cli, out, 1000, &n), -VCHAN_EAGAIN);
    UNIT_EQ(n, 0);
    /* A non-blocking write takes what fits (64 KiB ring), then nothing. */
    size_t total = 0;
    for (int i = 0; i < 16; i++) {
        RC(vchan_write(p.cli, in, sizeof(in), &n), 0);
        total += n;
    }
    UNIT_EQ(total, 64 * KIB);
    RC(vchan_write(p.cli, in, 10, &n), -VCHAN_EAGAIN);
    UNIT_EQ(n, 0);
    RC(vchan_read(p.srv, out, 10, &n), 0);
    RC(vchan_write(p.cli, in, 4096, &n), 0);
    UNIT_EQ(n, 10);
    /* Zero-length I/O succeeds and moves nothing. */
    RC(vchan_write(p.cli, in, 0, &n), 0);
    UNIT_EQ(n, 0);
    RC(vchan_read(p.srv, out, 0, &n), 0);
    UNIT_EQ(n, 0);
    RC(vchan_write(p.cli, NULL, 0, &n), 0);
    RC(vchan_read(p.srv, NULL, 0, &n), 0);
out:
    pair_close(&p);
}

static void test_ring_packet_all_or_nothing(void)
{
    uint8_t in[2048], out[2048];
    struct pair p;
    size_t n;

    /* Server reads 1 KiB (left), writes 2 KiB (right). */
    if (!pair_open(&p, 1, 1, true, 0)) {
        goto out;
    }
    UNIT_EQ(vchan_write_ring_size(p.srv), 2048);
    UNIT_EQ(vchan_write_ring_size(p.cli), 1024);
    unit_pattern_fill(in, sizeof(in), 2, 0);
    RC(vchan_send(p.srv, in, 2049), -VCHAN_EMSGSIZE);
    CU_ASSERT(strstr(vchan_last_error(p.srv), "larger") != NULL);
    RC(vchan_recv(p.cli, out, 2049), -VCHAN_EMSGSIZE);
    RC(vchan_send(p.cli, in, 1025), -VCHAN_EMSGSIZE);
    RC(vchan_send(p.srv, in, 1500), 0);
    /* 548 free: a 600-byte packet does not go in, and nothing of it does. */
    RC(vchan_send(p.srv, in, 600), -VCHAN_EAGAIN);
    RC(vchan_data_ready(p.cli, &n), 0);
    UNIT_EQ(n, 1500);
    RC(vchan_send(p.srv, in + 1500, 548), 0);
    RC(vchan_buffer_space(p.srv, &n), 0);
    UNIT_EQ(n, 0);
    /* recv: 2048 ready; asking for more than is there takes nothing. */
    RC(vchan_recv(p.cli, out, 2048), 0);
    CU_ASSERT(memcmp(in, out, 2048) == 0);
    RC(vchan_send(p.srv, in, 10), 0);
    RC(vchan_recv(p.cli, out, 11), -VCHAN_EAGAIN);
    RC(vchan_data_ready(p.cli, &n), 0);
    UNIT_EQ(n, 10);
    RC(vchan_recv(p.cli, out, 10), 0);
    CU_ASSERT(memcmp(in, out, 10) == 0);
    /* A whole-ring packet into an empty ring, zero-length packets. */
    RC(vchan_send(p.srv, in, 2048), 0);
    RC(vchan_recv(p.cli, out, 2048), 0);
    RC(vchan_send(p.srv, in, 0), 0);
    RC(vchan_recv(p.cli, out, 0), 0);
    RC(vchan_send(p.srv, NULL, 0), 0);
    RC(vchan_recv(p.cli, NULL, 0), 0);
out:
    pair_close(&p);
}

static void test_ring_timeouts(void)
{
    uint8_t buf[3000];
    struct pair p;
    uint64_t t0, dt;
    size_t n;

    if (!pair_open(&p, 1, 1, false, 60)) {
        goto out;
    }
    memset(buf, 1, sizeof(buf));
    t0 = now_ms();
    RC(vchan_read(p.cli, buf, 10, &n), -VCHAN_ETIMEDOUT);
    dt = now_ms() - t0;
    CU_ASSERT(dt >= 55 && dt < 2000);
    UNIT_EQ(n, 0);
    CU_ASSERT(strstr(vchan_last_error(p.cli), "timed out") != NULL);
    /* A blocking write that cannot finish says how much went in. */
    RC(vchan_write(p.srv, buf, sizeof(buf), &n), -VCHAN_ETIMEDOUT);
    UNIT_EQ(n, 2048);
    RC(vchan_send(p.srv, buf, 1), -VCHAN_ETIMEDOUT);
    RC(vchan_recv(p.srv, buf, 1), -VCHAN_ETIMEDOUT);
    RC(vchan_recv(p.cli, buf, 2048), 0);
    RC(vchan_recv(p.cli, buf, 1), -VCHAN_ETIMEDOUT);
    RC(vchan_wait(p.cli), -VCHAN_ETIMEDOUT);
    /* A timeout is not a broken channel. */
    RC(vchan_send(p.srv, buf, 5), 0);
    RC(vchan_recv(p.cli, buf, 5), 0);
    /* A negative timeout is refused and changes nothing (as in vchan_config). */
    RC(vchan_set_timeout(p.cli, -5), -VCHAN_EINVAL);
    RC(vchan_set_timeout(p.cli, INT_MIN), -VCHAN_EINVAL);
    RC(vchan_recv(p.cli, buf, 1), -VCHAN_ETIMEDOUT);
    /* No timeout set: a non-blocking handle never waits. */
    loop_events_take(p.cli);
    RC(vchan_set_timeout(p.cli, 0), 0);
    RC(vchan_set_nonblocking(p.cli, true), 0);
    t0 = now_ms();
    RC(vchan_read(p.cli, buf, 10, &n), -VCHAN_EAGAIN);
    RC(vchan_wait(p.cli), -VCHAN_EAGAIN);
    CU_ASSERT(now_ms() - t0 < 1000); /* generous: loaded CI machines */
out:
    pair_close(&p);
}

struct kicker {
    struct vchan *v;
    volatile int stop; /* test-only flag, read after join */
    unsigned ms;
};

static void *kick_thread(void *arg)
{
    struct kicker *k = arg;

    while (!__atomic_load_n(&k->stop, __ATOMIC_ACQUIRE)) {
        (void)loop_platform.notify(k->v->p);
        sleep_ms(k->ms);
    }
    return NULL;
}

/* Spurious events (no data) do not restart the clock. */
static void test_ring_timeout_survives_spurious_events(void)
{
    struct kicker k = { 0 };
    pthread_t t;
    struct pair p;
    uint8_t buf[16];
    uint64_t t0, dt;
    size_t n;

    if (!pair_open(&p, 0, 0, false, 150)) {
        goto out;
    }
    k.v = p.srv;
    k.ms = 5;
    pthread_create(&t, NULL, kick_thread, &k);
    t0 = now_ms();
    RC(vchan_read(p.cli, buf, sizeof(buf), &n), -VCHAN_ETIMEDOUT);
    dt = now_ms() - t0;
    __atomic_store_n(&k.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    CU_ASSERT(dt >= 140 && dt < 1500);
    if (dt >= 1500) {
        printf("  timed out after %llu ms\n", (unsigned long long)dt);
    }
out:
    pair_close(&p);
}

struct delayed {
    struct vchan *v;
    unsigned ms;
    size_t len;
    int rc;
    bool close;
};

static void *delayed_write(void *arg)
{
    struct delayed *d = arg;
    uint8_t buf[256];
    size_t n;

    sleep_ms(d->ms);
    unit_pattern_fill(buf, sizeof(buf), 9, 0);
    d->rc = d->len ? vchan_write(d->v, buf, d->len, &n) : 0;
    if (d->close) {
        vchan_close(d->v);
    }
    return NULL;
}

/* A blocked reader is woken by data, and a blocked reader by a close. */
static void test_ring_blocking_wakeups(void)
{
    struct delayed d = { 0 };
    uint8_t buf[256];
    pthread_t t;
    struct pair p;
    size_t n;

    if (!pair_open(&p, 0, 0, false, 5000)) {
        goto out;
    }
    d.v = p.srv;
    d.ms = 30;
    d.len = 200;
    pthread_create(&t, NULL, delayed_write, &d);
    RC(vchan_read(p.cli, buf, sizeof(buf), &n), 0);
    pthread_join(t, NULL);
    RC(d.rc, 0);
    CU_ASSERT(n > 0 && n <= 200);
    CU_ASSERT(unit_pattern_check(buf, n, 9, 0) == n);
    if (n < 200) {
        size_t m;
        RC(vchan_read(p.cli, buf + n, 200 - n, &m), 0);
    }
    /* Blocked in recv, woken by a close: the packet never completes. */
    d.len = 0;
    d.close = true;
    pthread_create(&t, NULL, delayed_write, &d);
    RC(vchan_recv(p.cli, buf, 10), -VCHAN_EPIPE);
    pthread_join(t, NULL);
    p.srv = NULL;
    RC(vchan_read(p.cli, buf, 10, &n), 0);
    UNIT_EQ(n, 0);
out:
    pair_close(&p);
}

struct closer {
    struct vchan *v;
    unsigned ms;
};

static void *close_later(void *arg)
{
    struct closer *c = arg;

    sleep_ms(c->ms);
    vchan_close(c->v);
    return NULL;
}

/* A writer blocked on a full ring is released by the reader's close: EPIPE, count kept. */
static void test_ring_blocked_writer_sees_close(void)
{
    static uint8_t buf[3 * 2048];
    struct closer c = { 0 };
    pthread_t t;
    struct pair p;
    size_t n = 0;

    for (int packet = 0; packet < 2; packet++) {
        if (!pair_open(&p, 1, 1, false, 5000)) {
            pair_close(&p);
            return;
        }
        c.v = p.cli;
        c.ms = 30;
        pthread_create(&t, NULL, close_later, &c);
        if (packet) {
            RC(vchan_send(p.srv, buf, 2048), 0);
            RC(vchan_send(p.srv, buf, 1), -VCHAN_EPIPE);
        } else {
            RC(vchan_write(p.srv, buf, sizeof(buf), &n), -VCHAN_EPIPE);
            UNIT_EQ(n, 2048);
        }
        pthread_join(t, NULL);
        p.cli = NULL;
        CU_ASSERT(strstr(vchan_last_error(p.srv), "closed") != NULL);
        pair_close(&p);
    }
}

/* ------------------------------------------------------ notify protocol */

static void test_ring_notify_write_bits(void)
{
    uint8_t buf[64] = { 0 };
    struct pair p;
    struct vchan__wire *w;
    size_t n;

    if (!pair_open(&p, 0, 0, true, 0)) {
        goto out;
    }
    w = p.srv->ctrl;
    /* After connect: each side asks the other to tell it of writes. */
    UNIT_EQ(w->cli_notify, VCHAN__NOTIFY_WRITE);
    UNIT_EQ(w->srv_notify, VCHAN__NOTIFY_WRITE);
    UNIT_EQ(loop_notify_count(p.srv), 0);
    UNIT_EQ(loop_notify_count(p.cli), 1); /* the connect */
    UNIT_EQ(loop_events_take(p.srv), 1);
    /* The first write was asked for: one event, bit cleared. */
    RC(vchan_write(p.srv, buf, 10, &n), 0);
    UNIT_EQ(loop_notify_count(p.srv), 1);
    UNIT_EQ(w->srv_notify, 0);
    UNIT_EQ(loop_events_take(p.cli), 1);
    /* Nobody waits: no event. */
    RC(vchan_write(p.srv, buf, 10, &n), 0);
    RC(vchan_send(p.srv, buf, 10), 0);
    UNIT_EQ(loop_notify_count(p.srv), 1);
    CU_ASSERT(!loop_event_pending(p.cli));
    /* Reading with no one asking for READ signals nothing either. */
    RC(vchan_read(p.cli, buf, 30, &n), 0);
    UNIT_EQ(n, 30);
    UNIT_EQ(loop_notify_count(p.cli), 1);
    /* A reader finding nothing sets WRITE in the writer's byte... */
    RC(vchan_read(p.cli, buf, 30, &n), -VCHAN_EAGAIN);
    UNIT_EQ(w->srv_notify, VCHAN__NOTIFY_WRITE);
    UNIT_EQ(w->cli_notify, VCHAN__NOTIFY_WRITE); /* its own byte untouched */
    /* ...and the next write clears it and signals once. */
    RC(vchan_write(p.srv, buf, 1, &n), 0);
    UNIT_EQ(w->srv_notify, 0);
    UNIT_EQ(loop_notify_count(p.srv), 2);
    UNIT_EQ(loop_events_take(p.cli), 1);
    /* The client's first write: the server asked at open. */
    RC(vchan_write(p.cli, buf, 5, &n), 0);
    UNIT_EQ(w->cli_notify, 0);
    UNIT_EQ(loop_notify_count(p.cli), 2);
    RC(vchan_write(p.cli, buf, 5, &n), 0);
    UNIT_EQ(loop_notify_count(p.cli), 2);
    UNIT_EQ(loop_events_take(p.srv), 1);
    /* data_ready asks for WRITE, as libxenvchan_data_ready does. */
    RC(vchan_data_ready(p.srv, &n), 0);
    UNIT_EQ(n, 10);
    UNIT_EQ(w->cli_notify, VCHAN__NOTIFY_WRITE);
out:
    pair_close(&p);
}

static void test_ring_notify_read_bits(void)
{
    uint8_t buf[4096] = { 0 };
    struct pair p;
    struct vchan__wire *w;
    size_t n;

    if (!pair_open(&p, 1, 1, true, 0)) {
        goto out;
    }
    w = p.srv->ctrl;
    loop_events_take(p.srv);
    /* The server fills its 2 KiB ring; wanting more, it asks the client for READ. */
    RC(vchan_write(p.srv, buf, 3000, &n), 0);
    UNIT_EQ(n, 2048);
    UNIT_EQ(w->cli_notify, VCHAN__NOTIFY_WRITE | VCHAN__NOTIFY_READ);
    UNIT_EQ(w->srv_notify, 0);
    /* The client consumes: one event, its READ bit cleared, its WRITE bit kept. */
    RC(vchan_read(p.cli, buf, 100, &n), 0);
    UNIT_EQ(w->cli_notify, VCHAN__NOTIFY_WRITE);
    UNIT_EQ(loop_notify_count(p.cli), 2);
    UNIT_EQ(loop_events_take(p.srv), 1);
    RC(vchan_read(p.cli, buf, 100, &n), 0);
    UNIT_EQ(loop_notify_count(p.cli), 2);
    /* A packet that does not fit asks for READ too. */
    RC(vchan_send(p.srv, buf, 1000), -VCHAN_EAGAIN);
    UNIT_EQ(w->cli_notify, VCHAN__NOTIFY_WRITE | VCHAN__NOTIFY_READ);
    RC(vchan_recv(p.cli, buf, 10), 0);
    UNIT_EQ(loop_notify_count(p.cli), 3);
    /* buffer_space asks for READ, as libxenvchan_buffer_space does. */
    RC(vchan_buffer_space(p.cli, &n), 0);
    UNIT_EQ(w->srv_notify, VCHAN__NOTIFY_READ);
    /* Nobody asked for READ since the recv: draining signals nothing. */
    UNIT_EQ(w->cli_notify, VCHAN__NOTIFY_WRITE);
    RC(vchan_read(p.cli, buf, sizeof(buf), &n), 0);
    UNIT_EQ(n, 2048 - 210);
    UNIT_EQ(loop_notify_count(p.cli), 3);
    /* A write that fits whole asks for nothing. */
    w->cli_notify = 0;
    RC(vchan_write(p.srv, buf, 100, &n), 0);
    UNIT_EQ(w->cli_notify, 0);
out:
    pair_close(&p);
}

/* Events are consumed by vchan_wait; the fd polls readable while one is pending. */
static void test_ring_wait_consumes_event(void)
{
    struct pollfd pfd;
    uint8_t buf[8] = { 0 };
    struct pair p;
    size_t n;

    if (!pair_open(&p, 0, 0, true, 0)) {
        goto out;
    }
    CU_ASSERT(vchan_fd(p.cli) >= 0);
    CU_ASSERT(vchan_fd(p.srv) >= 0);
    CU_ASSERT(vchan_fd(p.cli) != vchan_fd(p.srv));
    pfd.fd = vchan_fd(p.srv);
    pfd.events = POLLIN;
    UNIT_EQ(poll(&pfd, 1, 0), 1); /* the connect */
    RC(vchan_wait(p.srv), 0);
    UNIT_EQ(poll(&pfd, 1, 0), 0);
    RC(vchan_wait(p.srv), -VCHAN_EAGAIN);
    pfd.fd = vchan_fd(p.cli);
    UNIT_EQ(poll(&pfd, 1, 0), 0);
    RC(vchan_write(p.srv, buf, sizeof(buf), &n), 0);
    UNIT_EQ(poll(&pfd, 1, 0), 1);
    RC(vchan_wait(p.cli), 0);
    RC(vchan_wait(p.cli), -VCHAN_EAGAIN);
    /* A blocking wait returns at once when an event is pending. */
    vchan_set_nonblocking(p.cli, false);
    vchan_set_timeout(p.cli, 2000);
    (void)loop_platform.notify(p.srv->p);
    RC(vchan_wait(p.cli), 0);
    UNIT_EQ(poll(&pfd, 1, 0), 0);
out:
    pair_close(&p);
}

/*
 * vchan_poll: 1 without a system call while something is ready (the event
 * stays pending), 0 only after consuming the event and asking the peer, so
 * a poll on the fd then wakes on the peer's next move; a close is ready.
 */
static void test_ring_poll(void)
{
    uint8_t buf[4096] = { 0 };
    struct pair p;
    struct vchan__wire *w;
    uint64_t t0;
    size_t n;

    if (!pair_open(&p, 1, 1, true, 0)) { /* 2 KiB each way */
        goto out;
    }
    w = p.srv->ctrl;
    RC(vchan_poll(NULL, VCHAN_WANT_READ), -VCHAN_EINVAL);
    RC(vchan_poll(p.cli, 0x10), -VCHAN_EINVAL);
    loop_events_take(p.srv);
    /* Nothing to read: consumes, asks for WRITE, says 0. */
    w->srv_notify = 0;
    RC(vchan_poll(p.cli, VCHAN_WANT_READ), 0);
    UNIT_EQ(w->srv_notify, VCHAN__NOTIFY_WRITE);
    CU_ASSERT(!loop_event_pending(p.cli));
    /* The peer writes: the fd's event is there, and poll says 1 but leaves it. */
    RC(vchan_write(p.srv, buf, 100, &n), 0);
    CU_ASSERT(loop_event_pending(p.cli));
    RC(vchan_poll(p.cli, VCHAN_WANT_READ), 1);
    RC(vchan_poll(p.cli, VCHAN_WANT_READ | VCHAN_WANT_SPIN), 1);
    CU_ASSERT(loop_event_pending(p.cli));
    RC(vchan_read(p.cli, buf, sizeof(buf), &n), 0);
    UNIT_EQ(n, 100);
    RC(vchan_poll(p.cli, VCHAN_WANT_READ), 0);
    CU_ASSERT(!loop_event_pending(p.cli));
    /* A spin on an idle peer gives up within its budget, then asks as before. */
    t0 = loop_platform.now_ns();
    RC(vchan_poll(p.cli, VCHAN_WANT_READ | VCHAN_WANT_SPIN), 0);
    CU_ASSERT(loop_platform.now_ns() - t0 < 50u * 1000 * 1000);
    UNIT_EQ(w->srv_notify, VCHAN__NOTIFY_WRITE);
    /* Room: there is some; full ring: 0 with READ asked of the client. */
    RC(vchan_poll(p.srv, VCHAN_WANT_WRITE), 1);
    RC(vchan_write(p.srv, buf, sizeof(buf), &n), 0);
    UNIT_EQ(n, 2048);
    w->cli_notify = 0;
    RC(vchan_poll(p.srv, VCHAN_WANT_WRITE), 0);
    UNIT_EQ(w->cli_notify, VCHAN__NOTIFY_READ);
    RC(vchan_poll(p.srv, VCHAN_WANT_DRAIN), 0);
    RC(vchan_read(p.cli, buf, 1000, &n), 0);
    CU_ASSERT(loop_event_pending(p.srv));
    RC(vchan_poll(p.srv, VCHAN_WANT_WRITE), 1);
    RC(vchan_poll(p.srv, VCHAN_WANT_DRAIN), 0);
    RC(vchan_read(p.cli, buf, sizeof(buf), &n), 0);
    RC(vchan_poll(p.srv, VCHAN_WANT_DRAIN), 1);
    /* A value out of range from the peer: a protocol error, not a 1. */
    w->right.prod += 4096;
    RC(vchan_poll(p.cli, VCHAN_WANT_READ), -VCHAN_EPROTO);
    w->right.prod -= 4096;
    /* The peer closes: ready at once (end-of-file for a read). */
    vchan_close(p.srv);
    p.srv = NULL;
    RC(vchan_poll(p.cli, VCHAN_WANT_READ | VCHAN_WANT_SPIN), -VCHAN_EPROTO); /* broken stays broken */
out:
    pair_close(&p);
}

static void test_ring_poll_close(void)
{
    uint8_t buf[16] = { 0 };
    struct pair p;
    size_t n;

    if (!pair_open(&p, 0, 0, true, 0)) {
        goto out;
    }
    RC(vchan_write(p.srv, buf, 5, &n), 0);
    vchan_close(p.srv);
    p.srv = NULL;
    RC(vchan_poll(p.cli, VCHAN_WANT_READ), 1);
    RC(vchan_poll(p.cli, VCHAN_WANT_WRITE | VCHAN_WANT_SPIN), 1);
    RC(vchan_read(p.cli, buf, sizeof(buf), &n), 0);
    UNIT_EQ(n, 5);
    RC(vchan_read(p.cli, buf, sizeof(buf), &n), 0);
    UNIT_EQ(n, 0);
    RC(vchan_write(p.cli, buf, 1, &n), -VCHAN_EPIPE);
out:
    pair_close(&p);
}

/*
 * A notify that fails after data moved: the move is reported done (a retry
 * would duplicate the packet, or lose the one received), and every later
 * call returns the failure. A broken handle says EPROTO before anything else.
 */
static void test_ring_notify_failure_after_move(void)
{
    uint8_t buf[64] = { 0 }, got[64];
    struct pair p;
    size_t n;

    if (!pair_open(&p, 0, 0, true, 0)) {
        goto out;
    }
    for (unsigned i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)i;
    }
    RC(vchan_recv(p.cli, got, 1), -VCHAN_EAGAIN); /* the client asks for WRITE */
    loop_fail(LOOP_NOTIFY, 1, -VCHAN_EIO);
    RC(vchan_send(p.srv, buf, 16), 0);
    RC(vchan_send(p.srv, buf, 16), -VCHAN_EIO);
    RC(vchan_write(p.srv, buf, 1, &n), -VCHAN_EIO);
    UNIT_EQ(n, 0);
    RC(vchan_wait(p.srv), -VCHAN_EIO);
    RC(vchan_poll(p.srv, VCHAN_WANT_WRITE), -VCHAN_EIO);
    /* Exactly one packet went out. */
    RC(vchan_data_ready(p.cli, &n), 0);
    UNIT_EQ(n, 16);
    pair_close(&p);
    /* The receiving side: the packet is delivered, the failure comes next. */
    if (!pair_open(&p, 0, 0, true, 0)) {
        goto out;
    }
    RC(vchan_buffer_space(p.srv, &n), 0); /* the server asks for READ */
    RC(vchan_send(p.srv, buf, 16), 0);
    loop_fail(LOOP_NOTIFY, 1, -VCHAN_EIO);
    RC(vchan_recv(p.cli, got, 16), 0);
    CU_ASSERT(memcmp(got, buf, 16) == 0);
    RC(vchan_recv(p.cli, got, 1), -VCHAN_EIO);
    RC(vchan_read(p.cli, got, 1, &n), -VCHAN_EIO);
out:
    pair_close(&p);
}

static void test_ring_broken_first(void)
{
    uint8_t buf[8192] = { 0 };
    struct pair p;
    size_t n;

    if (!pair_open(&p, 0, 0, true, 0)) {
        goto out;
    }
    p.srv->ctrl->left.prod += 1u << 20; /* the client writes the left ring */
    RC(vchan_read(p.srv, buf, 1, &n), -VCHAN_EPROTO);
    RC(vchan_send(p.srv, buf, sizeof(buf)), -VCHAN_EPROTO); /* not EMSGSIZE */
    RC(vchan_wait(p.srv), -VCHAN_EPROTO);
    RC(vchan_poll(p.srv, VCHAN_WANT_WRITE), -VCHAN_EPROTO);
    RC(vchan_write(p.srv, buf, 1, &n), -VCHAN_EPROTO);
out:
    pair_close(&p);
}

/* -------------------------------------------------------- EOF and close */

static void test_ring_eof_delivers_unread_data(void)
{
    uint8_t in[1000], out[1100];
    struct pair p;
    size_t n;

    if (!pair_open(&p, 0, 0, true, 0)) {
        goto out;
    }
    unit_pattern_fill(in, sizeof(in), 3, 0);
    RC(vchan_write(p.srv, in, 1000, &n), 0);
    UNIT_EQ(vchan_is_open(p.cli), VCHAN_STATE_OPEN);
    vchan_close(p.srv);
    p.srv = NULL;
    UNIT_EQ(p.cli->ctrl->srv_live, 0);
    UNIT_EQ(vchan_is_open(p.cli), VCHAN_STATE_CLOSED);
    /* Writing to a closed peer: EPIPE, distinct from EOF. */
    RC(vchan_write(p.cli, in, 10, &n), -VCHAN_EPIPE);
    UNIT_EQ(n, 0);
    RC(vchan_send(p.cli, in, 10), -VCHAN_EPIPE);
    CU_ASSERT(strstr(vchan_last_error(p.cli), "closed") != NULL);
    /* A packet larger than what remains: EPIPE, and the data stays. */
    RC(vchan_recv(p.cli, out, 1001), -VCHAN_EPIPE);
    RC(vchan_data_ready(p.cli, &n), 0);
    UNIT_EQ(n, 1000);
    RC(vchan_recv(p.cli, out, 400), 0);
    RC(vchan_read(p.cli, out + 400, sizeof(out), &n), 0);
    UNIT_EQ(n, 600);
    CU_ASSERT(memcmp(in, out, 1000) == 0);
    /* Then end-of-file: 0 bytes and success, non-blocking or blocking, again and again. */
    RC(vchan_read(p.cli, out, sizeof(out), &n), 0);
    UNIT_EQ(n, 0);
    RC(vchan_read(p.cli, out, sizeof(out), &n), 0);
    UNIT_EQ(n, 0);
    vchan_set_nonblocking(p.cli, false);
    RC(vchan_read(p.cli, out, sizeof(out), &n), 0);
    UNIT_EQ(n, 0);
    RC(vchan_recv(p.cli, out, 1), -VCHAN_EPIPE);
out:
    pair_close(&p);
}

/* The client closing: the server sees it the same way. */
static void test_ring_eof_client_closes(void)
{
    uint8_t in[300], out[300];
    struct pair p;
    size_t n;

    if (!pair_open(&p, 0, 0, false, 2000)) {
        goto out;
    }
    unit_pattern_fill(in, sizeof(in), 4, 0);
    RC(vchan_send(p.cli, in, 300), 0);
    vchan_close(p.cli);
    p.cli = NULL;
    UNIT_EQ(p.srv->ctrl->cli_live, 0);
    UNIT_EQ(vchan_is_open(p.srv), VCHAN_STATE_CLOSED);
    RC(vchan_wait_connected(p.srv), 0);
    RC(vchan_recv(p.srv, out, 300), 0);
    CU_ASSERT(memcmp(in, out, 300) == 0);
    RC(vchan_read(p.srv, out, 1, &n), 0);
    UNIT_EQ(n, 0);
    RC(vchan_write(p.srv, in, 1, &n), -VCHAN_EPIPE);
out:
    pair_close(&p);
}

/*
 * A peer that dies: the platform clears its live byte (unmap-notify) and
 * reports a hang-up. Also without the unmap-notify (ocaml-vchan): the
 * hang-up alone must end a blocked read, after the data.
 */
static void test_ring_peer_crash(void)
{
    uint8_t in[100], out[200];
    struct pair p;
    size_t n;

    for (int unmap_notify = 1; unmap_notify >= 0; unmap_notify--) {
        if (!pair_open(&p, 0, 0, false, 3000)) {
            goto out;
        }
        unit_pattern_fill(in, sizeof(in), 5, 0);
        RC(vchan_write(p.srv, in, sizeof(in), &n), 0);
        loop_crash(p.srv);
        UNIT_EQ(p.cli->ctrl->srv_live, 0);
        if (!unmap_notify) {
            p.cli->ctrl->srv_live = VCHAN__LIVE_OPEN;
            UNIT_EQ(vchan_is_open(p.cli), VCHAN_STATE_OPEN);
        }
        RC(vchan_read(p.cli, out, sizeof(out), &n), 0);
        UNIT_EQ(n, 100);
        CU_ASSERT(memcmp(in, out, 100) == 0);
        RC(vchan_read(p.cli, out, sizeof(out), &n), 0); /* blocks until the hang-up */
        UNIT_EQ(n, 0);
        UNIT_EQ(vchan_is_open(p.cli), VCHAN_STATE_CLOSED);
        RC(vchan_write(p.cli, in, 1, &n), -VCHAN_EPIPE);
        pair_close(&p);
    }
    return;
out:
    pair_close(&p);
}

/* Server side: I/O and state before the client connects. */
static void test_ring_server_before_client(void)
{
    uint8_t in[64], out[64];
    char port[32];
    struct pair p = { 0 };
    size_t n;

    next_port(port, sizeof(port));
    if (!server_open(&p, port, 0, 0, true, 0)) {
        goto out;
    }
    UNIT_EQ(vchan_is_open(p.srv), VCHAN_STATE_WAITING);
    RC(vchan_wait_connected(p.srv), -VCHAN_EAGAIN);
    RC(vchan_read(p.srv, out, sizeof(out), &n), -VCHAN_EAGAIN);
    /* Data written now waits in the ring for the client. */
    unit_pattern_fill(in, sizeof(in), 6, 0);
    RC(vchan_write(p.srv, in, sizeof(in), &n), 0);
    UNIT_EQ(n, sizeof(in));
    vchan_set_nonblocking(p.srv, false);
    vchan_set_timeout(p.srv, 50);
    RC(vchan_wait_connected(p.srv), -VCHAN_ETIMEDOUT);
    if (!client_open(&p, port, true, 0)) {
        goto out;
    }
    RC(vchan_wait_connected(p.srv), 0);
    UNIT_EQ(vchan_is_open(p.srv), VCHAN_STATE_OPEN);
    UNIT_EQ(vchan_is_open(p.cli), VCHAN_STATE_OPEN);
    RC(vchan_read(p.cli, out, sizeof(out), &n), 0);
    UNIT_EQ(n, sizeof(in));
    CU_ASSERT(memcmp(in, out, sizeof(in)) == 0);
out:
    pair_close(&p);
}

/* ---------------------------------------------------------- hostile peers */

/* Every I/O entry point on a broken handle: -VCHAN_EPROTO, nothing else. */
static void assert_stays_broken(struct vchan *v)
{
    uint8_t buf[16] = { 0 };
    size_t n = 99;

    RC(vchan_read(v, buf, sizeof(buf), &n), -VCHAN_EPROTO);
    UNIT_EQ(n, 0);
    n = 99;
    RC(vchan_write(v, buf, sizeof(buf), &n), -VCHAN_EPROTO);
    UNIT_EQ(n, 0);
    RC(vchan_write(v, buf, 0, &n), -VCHAN_EPROTO);
    RC(vchan_send(v, buf, 1), -VCHAN_EPROTO);
    RC(vchan_recv(v, buf, 1), -VCHAN_EPROTO);
    RC(vchan_data_ready(v, &n), -VCHAN_EPROTO);
    RC(vchan_buffer_space(v, &n), -VCHAN_EPROTO);
    RC(vchan_wait_connected(v), -VCHAN_EPROTO);
    UNIT_EQ(vchan_is_open(v), VCHAN_STATE_CLOSED);
}

enum field { F_PROD, F_CONS, F_LIVE };

struct hostile_case {
    const char *what;
    bool victim_server;  /* else the client */
    enum field field;    /* the peer's index into our read ring, our write ring, or its live byte */
    int64_t delta;       /* new value = victim's own index + delta (indices), or the value (live) */
    int first_call;      /* 0 read, 1 write, 2 data_ready, 3 buffer_space, 4 send, 5 recv */
    int rc;              /* expected from that call */
};

static const struct hostile_case hostile_cases[] = {
    /* prod: ready = prod - own must stay within 0..size. */
    { "prod one past a full ring", false, F_PROD, +1, 0, -VCHAN_EPROTO },
    { "prod far beyond", false, F_PROD, 0x40000000, 2, -VCHAN_EPROTO },
    { "prod behind cons", false, F_PROD, -1, 5, -VCHAN_EPROTO },
    { "prod behind cons (server)", true, F_PROD, -1, 0, -VCHAN_EPROTO },
    { "prod exactly a full ring", false, F_PROD, 0, 0, 0 },
    /* cons: used = own - cons must stay within 0..size. */
    { "cons beyond prod", true, F_CONS, +1, 1, -VCHAN_EPROTO },
    { "cons beyond prod (client)", false, F_CONS, +1, 3, -VCHAN_EPROTO },
    { "cons a ring and one behind", true, F_CONS, -1, 4, -VCHAN_EPROTO },
    { "cons exactly a ring behind", true, F_CONS, 0, 1, -VCHAN_EAGAIN },
    /* live bytes: 0, 1, and 2 (server side only) are the only values. */
    { "live byte 7", false, F_LIVE, 7, 0, -VCHAN_EPROTO },
    { "live byte 255", true, F_LIVE, 255, 1, -VCHAN_EPROTO },
    { "server says not connected", false, F_LIVE, 2, 1, -VCHAN_EPROTO },
    { "client says not connected", true, F_LIVE, 2, 0, -VCHAN_EAGAIN },
};

static int hostile_call(struct vchan *v, int which)
{
    uint8_t buf[64] = { 0 };
    size_t n;

    switch (which) {
    case 0:
        return vchan_read(v, buf, sizeof(buf), &n);
    case 1:
        return vchan_write(v, buf, sizeof(buf), &n);
    case 2:
        return vchan_data_ready(v, &n);
    case 3:
        return vchan_buffer_space(v, &n);
    case 4:
        return vchan_send(v, buf, sizeof(buf));
    default:
        return vchan_recv(v, buf, sizeof(buf));
    }
}

static void test_ring_hostile_values(void)
{
    for (size_t i = 0; i < UNIT_ARRAY_LEN(hostile_cases); i++) {
        const struct hostile_case *c = &hostile_cases[i];
        struct pair p;
        struct vchan *v;
        uint32_t saved;
        uint32_t *slot;
        unsigned logs;
        bool ok;

        if (!pair_open(&p, 4096, 4096, true, 0)) {
            pair_close(&p);
            return;
        }
        v = c->victim_server ? p.srv : p.cli;
        logs = loop_log_count();
        switch (c->field) {
        case F_PROD:
            slot = v->rd.shr_prod;
            saved = *slot;
            *slot = v->rd.own + v->rd.size + (uint32_t)c->delta;
            if (c->delta < 0) {
                *slot = v->rd.own + (uint32_t)c->delta;
            }
            break;
        case F_CONS:
            /* The write ring holds a full ring's worth as far as the peer is concerned. */
            slot = v->wr.shr_cons;
            saved = *slot;
            *slot = c->delta > 0 ? v->wr.own + (uint32_t)c->delta
                                 : v->wr.own - v->wr.size + (uint32_t)c->delta;
            break;
        default:
            saved = *v->peer_live;
            *v->peer_live = (uint8_t)c->delta;
            slot = NULL;
            break;
        }
        ok = RC(hostile_call(v, c->first_call), c->rc);
        if (c->rc == -VCHAN_EPROTO) {
            /* Put everything back: the handle stays broken regardless. */
            if (slot) {
                *slot = saved;
            } else {
                *v->peer_live = (uint8_t)saved;
            }
            assert_stays_broken(v);
            /* Logged once, however often it is called afterwards. */
            ok &= UNIT_EQ(loop_log_count(), logs + 1);
            CU_ASSERT(strlen(vchan_last_error(v)) > 0);
            /* The other, well-behaved end is not affected. */
            UNIT_EQ(vchan_is_open(c->victim_server ? p.cli : p.srv), VCHAN_STATE_OPEN);
        }
        if (!ok) {
            printf("  case: %s\n", c->what);
        }
        pair_close(&p);
    }
}

/* Orders, grants and notify bytes rewritten after connect change nothing we rely on. */
static void test_ring_hostile_rewrites_harmless(void)
{
    struct unit_rng rng = unit_rng(4);
    struct pair p;
    size_t rs, ws;

    if (!pair_open(&p, 8192, 16384, true, 0)) {
        goto out;
    }
    rs = vchan_read_ring_size(p.cli);
    ws = vchan_write_ring_size(p.cli);
    p.srv->ctrl->left_order = 20;
    p.srv->ctrl->right_order = 3;
    for (int g = 0; g < 6; g++) {
        p.srv->ctrl->grants[g] = 0xffffffffu;
    }
    p.srv->ctrl->cli_notify = 0xff;
    p.srv->ctrl->srv_notify = 0xff;
    UNIT_EQ(vchan_read_ring_size(p.cli), rs);
    UNIT_EQ(vchan_write_ring_size(p.cli), ws);
    CU_ASSERT(pump(p.srv, p.cli, 100000, 5000, &rng, 1));
    p.srv->ctrl->cli_notify = 0;
    p.srv->ctrl->srv_notify = 0;
    CU_ASSERT(pump(p.cli, p.srv, 100000, 5000, &rng, 2));
    /*
     * The client's own indices in the page (right.cons, left.prod) rewritten
     * by the server: the client never reads them back, and its next store
     * puts the truth there again.
     */
    {
        uint8_t in[1000], out[1000];
        size_t n;

        unit_pattern_fill(in, sizeof(in), 8, 0);
        RC(vchan_write(p.srv, in, sizeof(in), &n), 0);
        p.srv->ctrl->right.cons += 12345;
        p.srv->ctrl->left.prod -= 3;
        RC(vchan_read(p.cli, out, sizeof(out), &n), 0);
        UNIT_EQ(n, sizeof(out));
        CU_ASSERT(memcmp(in, out, sizeof(in)) == 0);
        UNIT_EQ(p.srv->ctrl->right.cons, p.cli->rd.own);
        RC(vchan_write(p.cli, in, 10, &n), 0);
        UNIT_EQ(p.srv->ctrl->left.prod, p.cli->wr.own);
        RC(vchan_read(p.srv, out, 10, &n), 0);
        UNIT_EQ(n, 10);
        CU_ASSERT(memcmp(in, out, 10) == 0);
    }
    CU_ASSERT(pump(p.srv, p.cli, 50000, 5000, &rng, 3));
    CU_ASSERT(!p.cli->broken && !p.srv->broken);
out:
    pair_close(&p);
}

struct hostile {
    struct vchan__wire *page;
    uint8_t *rd_data, *wr_data; /* the victim's rings (scribbled when not under TSan) */
    size_t rd_size, wr_size;
    bool victim_server;
    bool plausible;             /* values a racing peer could produce, or anything at all */
    uint64_t seed;
    int stop, started;
    unsigned writes;
};

static void *hostile_thread(void *arg)
{
    struct hostile *h = arg;
    struct unit_rng rng = { h->seed | 1 };
    struct vchan__wire *w = h->page;
    /* The victim's read ring is fed by peer_prod; its write ring drained by peer_cons. */
    struct vchan__ring_idx *rd = h->victim_server ? &w->left : &w->right;
    struct vchan__ring_idx *wr = h->victim_server ? &w->right : &w->left;
    uint8_t *peer_live = h->victim_server ? &w->cli_live : &w->srv_live;

    while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
        uint64_t x = unit_rng_next(&rng);
        uint32_t val = (uint32_t)(x >> 32);

        switch (x & 7) {
        case 0: /* "produce": up to a full ring past the victim's cons, or anything */
            if (h->plausible) {
                val = __atomic_load_n(&rd->cons, __ATOMIC_RELAXED) + val % (h->rd_size + 1);
            }
            __atomic_store_n(&rd->prod, val, __ATOMIC_RELEASE);
            break;
        case 1: /* "consume": up to a full ring behind the victim's prod, or anything */
            if (h->plausible) {
                val = __atomic_load_n(&wr->prod, __ATOMIC_RELAXED) - val % (h->wr_size + 1);
            }
            __atomic_store_n(&wr->cons, val, __ATOMIC_RELEASE);
            break;
        case 2: /* the victim's own indices: a peer can write those too */
            if (!h->plausible) {
                __atomic_store_n((x & 8) ? &rd->cons : &wr->prod, val, __ATOMIC_RELAXED);
            }
            break;
        case 3: /* live byte: mostly open, sometimes closed, in wild rounds anything */
            __atomic_store_n(peer_live,
                             h->plausible ? (uint8_t)(val % 64 != 0) : (uint8_t)(val % 5),
                             __ATOMIC_RELEASE);
            break;
        case 4:
            __atomic_store_n(&w->cli_notify, (uint8_t)val, __ATOMIC_RELAXED);
            __atomic_store_n(&w->srv_notify, (uint8_t)(val >> 8), __ATOMIC_RELAXED);
            break;
        case 5:
            __atomic_store_n(&w->left_order, (uint16_t)val, __ATOMIC_RELAXED);
            __atomic_store_n(&w->right_order, (uint16_t)(val >> 16), __ATOMIC_RELAXED);
            break;
        default: {
#ifndef UNDER_TSAN
            /* Scribble on ring data too: a real peer can; TSan would call it a race. */
            uint8_t *d = (x & 0x400) ? h->rd_data : h->wr_data;
            size_t sz = (x & 0x400) ? h->rd_size : h->wr_size;
            __atomic_store_n(&d[val % sz], (uint8_t)x, __ATOMIC_RELAXED);
#endif
            break;
        }
        }
        if (h->writes++ == 0) {
            __atomic_store_n(&h->started, 1, __ATOMIC_RELEASE);
        }
    }
    return NULL;
}

/*
 * A second thread rewrites the peer's indices, live byte, notify bytes,
 * orders and ring data at random while this one does I/O: only OK, EAGAIN,
 * EPIPE and EPROTO may come back, counts stay within bounds, EPROTO sticks,
 * and no access leaves the rings (guard pages; ASan in CI).
 */
static void test_ring_hostile_thread(void)
{
    struct unit_rng rng = unit_rng(5);
    uint64_t until = now_ms() + 200;
    unsigned rounds = 0, calls = 0, counts[4] = { 0 }, bad = 0;
    uint8_t buf[5000];

    while (now_ms() < until || rounds < 4) {
        static const size_t sizes[][2] = { { 0, 0 }, { 4096, 8192 }, { 2048, 1024 } };
        const size_t *sz = sizes[rounds % 3];
        struct hostile h = { 0 };
        struct pair p;
        struct vchan *v;
        pthread_t t;
        bool broken = false;

        if (!pair_open(&p, sz[0], sz[1], true, 0)) {
            pair_close(&p);
            return;
        }
        v = (rounds & 1) ? p.srv : p.cli;
        h.page = p.srv->ctrl;
        h.victim_server = v == p.srv;
        h.plausible = (rounds / 2) % 2 == 0;
        h.rd_data = v->rd.buf;
        h.rd_size = v->rd.size;
        h.wr_data = v->wr.buf;
        h.wr_size = v->wr.size;
        h.seed = unit_rng_next(&rng);
        pthread_create(&t, NULL, hostile_thread, &h);
        while (!__atomic_load_n(&h.started, __ATOMIC_ACQUIRE)) {
            sched_yield();
        }
        /* Each round: 15 ms, or until some time after the peer got caught. */
        uint64_t round_end = now_ms() + 15;
        for (int i = 0, after = 0; now_ms() < round_end && after < 200; i++, calls++) {
            size_t len = (size_t)unit_rng_range(&rng, 0, sizeof(buf)), n = SIZE_MAX;
            unsigned op = (unsigned)unit_rng_range(&rng, 0, 7);
            size_t limit = len;
            int rc;

            switch (op) {
            case 0:
                rc = vchan_read(v, buf, len, &n);
                break;
            case 1:
                rc = vchan_write(v, buf, len, &n);
                break;
            case 2:
                rc = vchan_send(v, buf, len % (v->wr.size + 1));
                n = 0;
                break;
            case 3:
                rc = vchan_recv(v, buf, len % (v->rd.size + 1));
                n = 0;
                break;
            case 4:
                rc = vchan_data_ready(v, &n);
                limit = v->rd.size;
                break;
            case 5:
                rc = vchan_buffer_space(v, &n);
                limit = v->wr.size;
                break;
            case 6:
                rc = vchan_wait(v);
                n = 0;
                break;
            default:
                rc = 0;
                n = 0;
                (void)vchan_is_open(v);
                break;
            }
            if (rc == 0) {
                counts[0]++;
            } else if (rc == -VCHAN_EAGAIN) {
                counts[1]++;
            } else if (rc == -VCHAN_EPIPE) {
                counts[2]++;
            } else if (rc == -VCHAN_EPROTO) {
                counts[3]++;
                broken = true;
            } else if (bad++ < 5) {
                printf("  op %u returned %d (%s)\n", op, rc, vchan_errname(rc));
            }
            if (n > limit && bad++ < 5) {
                printf("  op %u gave count %zu > %zu\n", op, n, limit);
            }
            if (broken && rc != -VCHAN_EPROTO && op <= 5 && bad++ < 5) {
                printf("  op %u returned %d after EPROTO\n", op, rc);
            }
            after += broken;
        }
        __atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
        pthread_join(t, NULL);
        pair_close(&p);
        rounds++;
    }
    printf("\n    hostile: %u rounds, %u calls: %u ok, %u EAGAIN, %u EPIPE, %u EPROTO\n", rounds,
           calls, counts[0], counts[1], counts[2], counts[3]);
    UNIT_EQ(bad, 0);
    CU_ASSERT(counts[3] > 0); /* the hostile peer did get caught */
}

/* ------------------------------------------------------- two-thread stress */

struct stress {
    struct vchan *v;
    bool packets;
    size_t total, max_chunk;
    uint64_t stream, seed;
    /* results */
    int rc;
    uint64_t moved;
    bool corrupt, short_eof;
};

static void *stress_writer(void *arg)
{
    struct stress *s = arg;
    struct unit_rng rng = { s->seed | 1 };
    uint8_t *buf = malloc(s->max_chunk);
    uint64_t pos = 0;

    while (pos < s->total && s->rc == 0) {
        size_t n = (size_t)unit_rng_range(&rng, 1, s->max_chunk), done = 0;

        n = n < s->total - pos ? n : s->total - pos;
        unit_pattern_fill(buf, n, s->stream, pos);
        if (s->packets) {
            s->rc = vchan_send(s->v, buf, n);
            done = s->rc ? 0 : n;
        } else {
            s->rc = vchan_write(s->v, buf, n, &done);
        }
        pos += done;
    }
    s->moved = pos;
    free(buf);
    /* Close right after the last byte: the reader must still get all of it, then EOF. */
    vchan_close(s->v);
    return NULL;
}

static void *stress_reader(void *arg)
{
    struct stress *s = arg;
    struct unit_rng rng = { s->seed | 1 }; /* same sizes as the writer, for packets */
    struct unit_rng rsz = { (s->seed ^ 0xabcdef) | 1 };
    uint8_t *buf = malloc(s->max_chunk);
    uint64_t pos = 0;

    for (;;) {
        size_t n, done = 0;

        if (s->packets) {
            if (pos == s->total) {
                break;
            }
            n = (size_t)unit_rng_range(&rng, 1, s->max_chunk);
            n = n < s->total - pos ? n : s->total - pos;
            if ((s->rc = vchan_recv(s->v, buf, n))) {
                break;
            }
            done = n;
        } else {
            n = (size_t)unit_rng_range(&rsz, 1, s->max_chunk);
            if ((s->rc = vchan_read(s->v, buf, n, &done)) || done == 0) {
                break;
            }
        }
        if (unit_pattern_check(buf, done, s->stream, pos) != done) {
            s->corrupt = true;
            break;
        }
        pos += done;
    }
    if (s->packets && s->rc == 0) {
        size_t done = 1;
        /* After the last packet: end-of-file. */
        s->rc = vchan_read(s->v, buf, 1, &done);
        s->short_eof = done != 0;
    }
    s->moved = pos;
    free(buf);
    /* Also when stopping early: the writer then fails fast with EPIPE, not a timeout. */
    vchan_close(s->v);
    return NULL;
}

static size_t stress_bytes(void)
{
    const char *env = getenv("VCHAN_TEST_STRESS_MB");
    size_t mb = env && *env ? strtoul(env, NULL, 10) : 8;

    return (mb ? mb : 1) * MIB;
}

/*
 * Two threads, both blocking: one writes a PRNG stream in random chunks and
 * closes, the other reads, checks every byte and sees end-of-file. Every
 * ring shape, both directions, stream and packets. TSan runs this.
 */
static void test_ring_stress_two_threads(void)
{
    static const struct {
        size_t rd, wr;
    } shapes[] = { { 0, 0 }, { 2048, 1024 }, { 4096, 4096 }, { 65536, 65536 }, { MIB, 8192 } };
    struct unit_rng rng = unit_rng(6);
    size_t total = stress_bytes();
    uint64_t t0 = now_ms();

    for (size_t i = 0; i < UNIT_ARRAY_LEN(shapes); i++) {
        for (int mode = 0; mode < 4; mode++) {
            bool to_client = mode & 1, packets = mode & 2;
            struct stress w = { 0 }, r = { 0 };
            pthread_t tw, tr;
            struct pair p;

            if (!pair_open(&p, shapes[i].rd ? shapes[i].rd : 1, shapes[i].wr ? shapes[i].wr : 1,
                           false, 10000)) {
                pair_close(&p);
                return;
            }
            w.v = to_client ? p.srv : p.cli;
            r.v = to_client ? p.cli : p.srv;
            w.packets = r.packets = packets;
            w.total = r.total = packets ? total / 4 : total;
            w.max_chunk = r.max_chunk = packets ? vchan_write_ring_size(w.v)
                                                : 3 * vchan_write_ring_size(w.v) / 2 + 1;
            w.stream = r.stream = i * 4 + (unsigned)mode;
            w.seed = r.seed = unit_rng_next(&rng);
            pthread_create(&tr, NULL, stress_reader, &r);
            pthread_create(&tw, NULL, stress_writer, &w);
            pthread_join(tw, NULL);
            pthread_join(tr, NULL);
            /* Each thread closed its own handle. */
            p.srv = p.cli = NULL;
            if (!RC(w.rc, 0) || !RC(r.rc, 0) || !UNIT_EQ(w.moved, w.total) ||
                !UNIT_EQ(r.moved, w.total) || r.corrupt || r.short_eof) {
                CU_ASSERT(!r.corrupt);
                CU_ASSERT(!r.short_eof);
                printf("  shape #%zu, %s, %s: wrote %llu, read %llu\n", i,
                       to_client ? "server->client" : "client->server",
                       packets ? "packets" : "stream", (unsigned long long)w.moved,
                       (unsigned long long)r.moved);
            }
            pair_close(&p);
        }
    }
    printf("\n    stress: %zu MiB per stream run in %llu ms\n", total / MIB,
           (unsigned long long)(now_ms() - t0));
}

/* ----------------------------------------------------- errors and names */

static void test_ring_strerror_every_code(void)
{
    static const char *const names[] = { "OK",     "EAGAIN",   "EPIPE",  "EPROTO",  "ETIMEDOUT",
                                         "EINVAL", "EMSGSIZE", "ENOMEM", "ENOENT",  "EPERM",
                                         "EADDRINUSE", "ENOTCONN", "ENOSYS", "EIO" };
    static const int unknown[] = { VCHAN_ERRNO_MAX, -VCHAN_ERRNO_MAX, 1000, -1000,
                                   INT_MAX,         -INT_MAX,         INT_MIN };

    UNIT_EQ(UNIT_ARRAY_LEN(names), VCHAN_ERRNO_MAX);
    for (int e = 0; e < VCHAN_ERRNO_MAX && e < (int)UNIT_ARRAY_LEN(names); e++) {
        const char *text = vchan_strerror(e);

        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        CU_ASSERT(text[0] != '\0');
        CU_ASSERT_STRING_EQUAL(vchan_strerror(-e), text);
        CU_ASSERT_STRING_EQUAL(vchan_errname(e), names[e]);
        CU_ASSERT_STRING_EQUAL(vchan_errname(-e), names[e]);
        CU_ASSERT_STRING_NOT_EQUAL(text, "unknown error");
        for (int f = 0; f < e; f++) {
            CU_ASSERT_STRING_NOT_EQUAL(vchan_strerror(f), text);
        }
    }
    CU_ASSERT_STRING_EQUAL(vchan_strerror(-VCHAN_EPIPE), "peer closed the channel");
    CU_ASSERT_STRING_EQUAL(vchan_strerror(0), "success");
    for (size_t i = 0; i < UNIT_ARRAY_LEN(unknown); i++) {
        CU_ASSERT_STRING_EQUAL(vchan_strerror(unknown[i]), "unknown error");
        CU_ASSERT_STRING_EQUAL(vchan_errname(unknown[i]), "EUNKNOWN");
    }
}

static void test_ring_port_valid(void)
{
    static const struct {
        const char *port;
        bool ok;
    } cases[] = {
        { "a", true },
        { "Z", true },
        { "0", true },
        { "_", true },
        { "-", true },
        { "data", true },
        { "vchan-cat_2", true },
        { "0123456789012345678901234567890123456789012345678901234567890123", true }, /* 64 */
        { "01234567890123456789012345678901234567890123456789012345678901234", false }, /* 65 */
        { "", false },
        { "a/b", false },
        { "a.b", false },
        { "a b", false },
        { "a\n", false },
        { "@", false },
        { "a:b", false },
        { "\xc3\xa9", false },
        { "..", false },
        { "a%20", false },
    };
    char long_port[300];

    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        if (vchan__port_valid(cases[i].port) != cases[i].ok) {
            printf("  port \"%s\": expected %s\n", cases[i].port, cases[i].ok ? "valid" : "invalid");
            CU_FAIL("vchan__port_valid");
        }
    }
    CU_ASSERT(!vchan__port_valid(NULL));
    memset(long_port, 'x', sizeof(long_port) - 1);
    long_port[sizeof(long_port) - 1] = '\0';
    CU_ASSERT(!vchan__port_valid(long_port));
}

/* NULL handles and arguments: EINVAL or a harmless default, never a crash. */
static void test_ring_null_arguments(void)
{
    uint8_t buf[4];
    struct pair p;
    size_t n;

    /* Counts are set on every return, also when the handle is missing. */
    n = 7;
    RC(vchan_read(NULL, buf, 1, &n), -VCHAN_EINVAL);
    UNIT_EQ(n, 0);
    n = 7;
    RC(vchan_write(NULL, buf, 1, &n), -VCHAN_EINVAL);
    UNIT_EQ(n, 0);
    RC(vchan_send(NULL, buf, 1), -VCHAN_EINVAL);
    RC(vchan_recv(NULL, buf, 1), -VCHAN_EINVAL);
    n = 7;
    RC(vchan_data_ready(NULL, &n), -VCHAN_EINVAL);
    UNIT_EQ(n, 0);
    n = 7;
    RC(vchan_buffer_space(NULL, &n), -VCHAN_EINVAL);
    UNIT_EQ(n, 0);
    RC(vchan_wait(NULL), -VCHAN_EINVAL);
    RC(vchan_wait_connected(NULL), -VCHAN_EINVAL);
    RC(vchan_fd(NULL), -VCHAN_EINVAL);
    UNIT_EQ(vchan_is_open(NULL), VCHAN_STATE_CLOSED);
    UNIT_EQ(vchan_read_ring_size(NULL), 0);
    UNIT_EQ(vchan_write_ring_size(NULL), 0);
    CU_ASSERT_STRING_EQUAL(vchan_platform_name(NULL), "");
    CU_ASSERT_STRING_EQUAL(vchan_last_error(NULL), "");
    vchan_close(NULL);
    RC(vchan_set_timeout(NULL, 5), -VCHAN_EINVAL);
    RC(vchan_set_nonblocking(NULL, true), -VCHAN_EINVAL);
    if (!pair_open(&p, 0, 0, true, 0)) {
        goto out;
    }
    CU_ASSERT_STRING_EQUAL(vchan_platform_name(p.cli), "loop");
    CU_ASSERT_STRING_EQUAL(vchan_last_error(p.cli), "");
    RC(vchan_read(p.cli, NULL, 1, &n), -VCHAN_EINVAL);
    RC(vchan_read(p.cli, buf, 1, NULL), -VCHAN_EINVAL);
    RC(vchan_write(p.cli, NULL, 1, &n), -VCHAN_EINVAL);
    RC(vchan_write(p.cli, buf, 1, NULL), -VCHAN_EINVAL);
    RC(vchan_send(p.cli, NULL, 1), -VCHAN_EINVAL);
    RC(vchan_recv(p.cli, NULL, 1), -VCHAN_EINVAL);
    RC(vchan_data_ready(p.cli, NULL), -VCHAN_EINVAL);
    RC(vchan_buffer_space(p.cli, NULL), -VCHAN_EINVAL);
    /* None of that hurt the channel. */
    RC(vchan_send(p.cli, buf, 4), 0);
    RC(vchan_recv(p.srv, buf, 4), 0);
out:
    pair_close(&p);
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_ring_select_orders_table),
    UNIT_TEST(test_ring_select_orders_exhaustive),
    UNIT_TEST(test_ring_check_orders_table),
    UNIT_TEST(test_ring_check_orders_exhaustive),
    UNIT_TEST(test_ring_placement_and_wrap_every_order),
    UNIT_TEST(test_ring_index_wrap_u32),
    UNIT_TEST(test_ring_reference_model),
    UNIT_TEST(test_ring_stream_partial),
    UNIT_TEST(test_ring_packet_all_or_nothing),
    UNIT_TEST(test_ring_timeouts),
    UNIT_TEST(test_ring_timeout_survives_spurious_events),
    UNIT_TEST(test_ring_blocking_wakeups),
    UNIT_TEST(test_ring_blocked_writer_sees_close),
    UNIT_TEST(test_ring_notify_write_bits),
    UNIT_TEST(test_ring_notify_read_bits),
    UNIT_TEST(test_ring_wait_consumes_event),
    UNIT_TEST(test_ring_poll),
    UNIT_TEST(test_ring_poll_close),
    UNIT_TEST(test_ring_notify_failure_after_move),
    UNIT_TEST(test_ring_broken_first),
    UNIT_TEST(test_ring_eof_delivers_unread_data),
    UNIT_TEST(test_ring_eof_client_closes),
    UNIT_TEST(test_ring_peer_crash),
    UNIT_TEST(test_ring_server_before_client),
    UNIT_TEST(test_ring_hostile_values),
    UNIT_TEST(test_ring_hostile_rewrites_harmless),
    UNIT_TEST(test_ring_hostile_thread),
    UNIT_TEST(test_ring_stress_two_threads),
    UNIT_TEST(test_ring_strerror_every_code),
    UNIT_TEST(test_ring_port_valid),
    UNIT_TEST(test_ring_null_arguments),
};

UNIT_MAIN("ring", tests)
