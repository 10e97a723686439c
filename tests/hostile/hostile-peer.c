/* SPDX-License-Identifier: ISC */
/*
 * hostile-peer: a vchan peer on the local platform that misbehaves on
 * purpose, for tests/integration/hostile.sh and faults.sh. It serves a
 * vchan client (-l) or connects to a vchan server, like vchan-cat, and then:
 *
 *   -a chaos      rewrites the shared control page at random: its own and
 *                 the victim's indices (near the ring's edges and anywhere),
 *                 orders, grants, live and notify bytes, ring bytes; fills
 *                 and drains the rings; sends bursts of spurious events.
 *                 The victim must end with a protocol error or carry on.
 *   -a plausible  only what the protocol allows (indices move forward
 *                 within the ring, our live byte stays open) but with
 *                 garbage data, any notify bits, rewritten orders and
 *                 grants, and spurious events: the victim must carry on.
 *   -a ignored    rewrites only what the victim must never read back or
 *                 act on once connected: its own indices and live byte,
 *                 orders, grants, notify bits; and sends spurious events.
 *                 No data moves. The victim must carry on.
 *   -a setup      (-l) rewrites the orders and grants of its page while
 *                 the client may be mapping it, then as chaos.
 *   -a idle       connects and does nothing: a ring never drained.
 *   -a ocaml      behaves, with MirageOS ocaml-vchan's legal but different
 *                 choices: its server puts the rings at orders 10/12 (read
 *                 size 2048 and write size 2048 as ocaml-vchan rounds them),
 *                 neither side asks for unmap-notify, the client maps its
 *                 read ring writable, the server starts with srv_notify 0,
 *                 and a reader acknowledges what it read only on its next
 *                 read. Sends stdin, writes what it receives to stdout,
 *                 closes without waiting for the peer to read (as
 *                 ocaml-vchan), or reads until the peer closes when it has
 *                 nothing to send.
 *   -a die-STEP   set-up by hand and SIGKILL itself at STEP: (-l)
 *                 after-publish, after-accept; (client) after-lookup,
 *                 after-map, before-live, after-connect.
 *
 *   -t SECS   how long the attack lasts (idle, chaos, plausible, setup),
 *             or the longest an ocaml peer waits for anything (default 5)
 *   -w SECS   how long to wait for the other end to connect: a server
 *             for its client, a client for its server (default: as -t);
 *             on emulated Xen, starting the other end can take seconds
 *   -q SECS   after the attack, stay connected and silent this long
 *             (default 0), then close; -K: then die by SIGKILL instead
 *   -s SEED   the random choices (default from the clock; printed)
 *   -O LO:RO  (-a ocaml -l) publish these orders instead of the ones the
 *             rings were shared for (a page that lies about its rings)
 *   -r FILE   create FILE once connected (the attack starts)
 *   -Q FILE   create FILE when the attack ends (the quiet time starts)
 *   -v        say what happens
 *
 * The platform is the local one, or Xen's with VCHAN_PLATFORM=xen (for a
 * hostile domU in tests/xen; die-after-accept is local only).
 *
 * On stderr at the end, one line: the mode, how long it ran, how many
 * actions, and whether (and when) the victim went away. Exit status 0,
 * or 1 when set-up failed. It links libvchan's internals (the local
 * platform and the set-up code) to get at the shared page.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libvchan/core/barrier.h"
#include "libvchan/platform/hosted.h"
#include "libvchan/core/internal.h"

/* The local platform; with VCHAN_PLATFORM=xen (and Xen built), the real one, for tests/xen. */
static const struct vchan__platform *plat = &vchan__platform_local;

struct opts {
    bool listen;
    const char *mode;
    double secs, quiet;
    double wait; /* -w: for the other end to connect (0: secs) */
    bool kill_at_end;
    uint64_t seed;
    const char *ready, *quiet_file;
    int verbose;
    int domain;
    char port[VCHAN_PORT_MAX + 1];
    unsigned lie_lo, lie_ro; /* -O: orders to publish, 0: the real ones */
};

static struct opts o = {.mode = "chaos", .secs = 5};

/* ------------------------------------------------------------ helpers */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "hostile-peer: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

static uint32_t below(uint32_t n)
{
    return n ? (uint32_t)(rnd() % n) : 0;
}

static void touch(const char *file)
{
    if (file) {
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
        }
    }
}

static void mark_ready(void)
{
    touch(o.ready);
}

static void log_cb(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void log_cb(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
{
    (void)ctx;
    if (o.verbose > 1 || (o.verbose && level <= VCHAN_LOG_WARN)) {
        fprintf(stderr, "hostile-peer: libvchan: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
}

static void die_now(const char *step)
{
    say("SIGKILL at %s", step);
    fflush(stderr);
    raise(SIGKILL);
}

/* How long the other end has to connect (-w, else -t). */
static double connect_secs(void)
{
    return o.wait > 0 ? o.wait : o.secs;
}

static struct vchan_config config(char *errbuf, size_t len)
{
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = o.domain, .port = o.port, .nonblocking = true,
                          .timeout_ms = (int)(connect_secs() * 1000) + 1, .log = log_cb,
                          .errbuf = errbuf, .errbuf_len = len);
    return cfg;
}

/* ------------------------------------------------------------ attacks on an open handle */

struct attack {
    struct vchan *v;
    struct vchan__wire *w;
    bool chaos;
    bool ignored; /* only what the victim must never read back or act on */
    unsigned long actions, rewrites, fills, drains, events;
    double start, gone_at; /* gone_at: when the victim's hang-up was seen, 0: not yet */
};

/* A value near what matters for an index: the ring's edges, or anything. */
static uint32_t near(uint32_t base, uint32_t size)
{
    switch (below(10)) {
    case 0:
        return base;
    case 1:
        return base + size;
    case 2:
        return base + size + 1;
    case 3:
        return base - 1;
    case 4:
        return base + size / 2;
    case 5:
        return base - size;
    case 6:
        return 0;
    case 7:
        return 0xffffffffu;
    case 8:
        return 0x80000000u + base;
    default:
        return (uint32_t)rnd();
    }
}

static void signal_victim(struct attack *a)
{
    (void)a->v->plat->notify(a->v->p);
    a->events++;
}

/* Write n garbage bytes into the ring we write, as a producer would. */
static void fill(struct attack *a, uint32_t n)
{
    struct vchan__ring *r = &a->v->wr;

    for (uint32_t i = 0; i < n; i++) {
        r->buf[(r->own + i) & (r->size - 1)] = (uint8_t)rnd();
    }
    r->own += n;
    vchan__store_release(r->shr_prod, r->own);
    a->fills++;
}

/* Legal: produce at most what the victim's consumer index leaves free. */
static void fill_legal(struct attack *a)
{
    struct vchan__ring *r = &a->v->wr;
    uint32_t used = r->own - vchan__load_acquire(r->shr_cons); /* the victim's own index */

    if (used < r->size) {
        fill(a, 1 + below(r->size - used));
    }
}

/* Legal: consume some of what the victim produced (the data is dropped). */
static void drain_legal(struct attack *a)
{
    struct vchan__ring *r = &a->v->rd;
    uint32_t avail = vchan__load_acquire(r->shr_prod) - r->own;

    if (avail > 0 && avail <= r->size) {
        r->own += 1 + below(avail);
        vchan__store_release(r->shr_cons, r->own);
        a->drains++;
    }
}

static void rewrite_orders_grants(struct attack *a)
{
    struct vchan__wire *w = a->w;

    if (below(2)) {
        vchan__store_once(&w->left_order, (uint16_t)(below(3) ? 8 + below(16) : rnd()));
        vchan__store_once(&w->right_order, (uint16_t)(below(3) ? 8 + below(16) : rnd()));
    } else {
        uint32_t k = below(64);
        uint32_t g = vchan__load_once(&w->grants[k]);
        vchan__store_once(&w->grants[k], below(2) ? g + below(8) - 4 : (uint32_t)rnd());
    }
    a->rewrites++;
}

/*
 * Rewrite what the victim owns or must not trust after connecting: its own
 * indices and live byte (it keeps private copies and never reads them back),
 * the orders and grants (copied at connect), the notify bytes (hints), and
 * events (spurious ones are normal). No data moves.
 */
static void ignored_action(struct attack *a)
{
    struct vchan *v = a->v;

    switch (below(6)) {
    case 0:
        vchan__store_once(below(2) ? v->rd.shr_prod : v->wr.shr_cons, (uint32_t)rnd());
        break;
    case 1:
        vchan__store_once(v->peer_live, (uint8_t)rnd());
        break;
    case 2:
        rewrite_orders_grants(a);
        return;
    case 3:
        vchan__store_once(&a->w->cli_notify, (uint8_t)rnd());
        vchan__store_once(&a->w->srv_notify, (uint8_t)rnd());
        break;
    case 4:
        for (unsigned i = below(10); i > 0; i--) {
            signal_victim(a);
        }
        return;
    default:
        sleep_us(1000 + below(4000));
        return;
    }
    a->rewrites++;
}

static void one_action(struct attack *a)
{
    struct vchan *v = a->v;
    struct vchan__wire *w = a->w;
    static const uint8_t lives[] = {0, 1, 2, 3, 0xff};

    a->actions++;
    if (a->ignored) {
        ignored_action(a);
        return;
    }
    /* Chaos: one action in eight breaks the protocol, so the victim also works a while first. */
    switch (a->chaos && below(8) == 0 ? 8 + below(6) : below(8)) {
    case 0:
    case 1:
        fill_legal(a);
        if (!a->chaos || below(4)) {
            signal_victim(a);
        }
        break;
    case 2:
        drain_legal(a);
        if (!a->chaos || below(4)) {
            signal_victim(a);
        }
        break;
    case 3:
    case 4:
        rewrite_orders_grants(a);
        break;
    case 5:
        vchan__store_once(&w->cli_notify, (uint8_t)rnd());
        vchan__store_once(&w->srv_notify, (uint8_t)rnd());
        a->rewrites++;
        break;
    case 6:
        for (unsigned i = below(10); i > 0; i--) {
            signal_victim(a);
        }
        break;
    case 7:
        /* Let the victim work a while. */
        sleep_us(1000 + below(4000));
        break;
    /* chaos only from here */
    case 8:
        /* The index the victim reads in the ring it reads from us. */
        vchan__store_release(v->wr.shr_prod, near(vchan__load_once(v->wr.shr_cons), v->wr.size));
        a->rewrites++;
        signal_victim(a);
        break;
    case 9:
        vchan__store_release(v->rd.shr_cons, near(vchan__load_once(v->rd.shr_prod), v->rd.size));
        a->rewrites++;
        signal_victim(a);
        break;
    case 10:
        /* The victim's own indices: it must never read them back. */
        vchan__store_once(below(2) ? v->rd.shr_prod : v->wr.shr_cons, (uint32_t)rnd());
        a->rewrites++;
        break;
    case 11:
        vchan__store_release(below(2) ? v->own_live : v->peer_live, lives[below(sizeof(lives))]);
        a->rewrites++;
        signal_victim(a);
        break;
    case 12:
        /* Producing past the victim's consumer index. */
        fill(a, 1 + below(2 * v->wr.size));
        signal_victim(a);
        break;
    default: {
        /* Scribble on the ring bytes, anywhere in either ring we can write. */
        struct vchan__ring *r = below(2) ? &v->wr : &v->rd;
        if (r == &v->wr || v->server) {
            uint32_t at = below(r->size), n = below(64);
            for (uint32_t i = 0; i < n; i++) {
                r->buf[(at + i) & (r->size - 1)] = (uint8_t)rnd();
            }
            a->rewrites++;
        }
        break;
    }
    }
}

/* Consume our events; notes the victim's hang-up. */
static void watch_victim(struct attack *a, int timeout_ms)
{
    bool hangup = false;

    (void)a->v->plat->wait(a->v->p, timeout_ms, &hangup);
    if (hangup && !a->gone_at) {
        a->gone_at = now_s();
        if (o.verbose) {
            say("the victim went away after %.3f s", a->gone_at - a->start);
        }
    }
}

static void attack(struct attack *a, double secs)
{
    double until = now_s() + secs;

    while (now_s() < until && !a->gone_at) {
        one_action(a);
        watch_victim(a, 0);
        /* Leave the victim some CPU: this is an attack on its logic, not its scheduler. */
        sleep_us(20 + below(200));
    }
}

/* Stay connected and silent: the victim must sleep, not spin. */
static void quiet(struct attack *a, double secs)
{
    double until = now_s() + secs;

    while (!a->gone_at && now_s() < until) {
        watch_victim(a, 50);
    }
}

static void report(const struct attack *a, double attack_s)
{
    char gone[64] = "the victim was still connected";

    if (a->gone_at) {
        snprintf(gone, sizeof(gone), "the victim went away after %.3f s", a->gone_at - a->start);
    }
    say("%s %.2f s: %lu actions (%lu rewrites, %lu fills, %lu drains, %lu events); %s", o.mode,
        attack_s, a->actions, a->rewrites, a->fills, a->drains, a->events, gone);
}

static int open_handle(struct vchan **v)
{
    char errbuf[256] = "";
    struct vchan_config cfg = config(errbuf, sizeof(errbuf));
    int rc;

    rc = o.listen ? vchan__server_open(v, plat, &cfg, NULL) : vchan__client_open(v, plat, &cfg, NULL);
    if (rc) {
        say("open: %s", errbuf[0] ? errbuf : vchan_strerror(rc));
        return 1;
    }
    return 0;
}

/* Server: until the client is there. `setup`: spoil the page meanwhile. */
static int wait_client(struct attack *a, bool setup)
{
    double until = now_s() + connect_secs();

    while (vchan__load_once(&a->w->cli_live) == VCHAN__LIVE_WAITING) {
        if (now_s() > until) {
            say("no client connected within %.1f s", connect_secs());
            return 1;
        }
        if (setup) {
            rewrite_orders_grants(a);
            a->actions++;
        }
        /* The platform accepts the client inside its wait. */
        watch_victim(a, setup ? 0 : 20);
        if (setup) {
            sleep_us(below(100));
        }
    }
    return 0;
}

static int run_attack(void)
{
    struct attack a = {.chaos = strcmp(o.mode, "plausible") != 0,
                       .ignored = strcmp(o.mode, "ignored") == 0};
    bool setup = strcmp(o.mode, "setup") == 0;
    bool idle = strcmp(o.mode, "idle") == 0;
    double t0;

    if (open_handle(&a.v)) {
        return 1;
    }
    a.w = a.v->ctrl;
    a.start = now_s();
    if (o.listen && wait_client(&a, setup)) {
        vchan_close(a.v);
        return 1;
    }
    mark_ready();
    t0 = now_s();
    if (!setup) {
        /* The victim's time under attack counts from here (setup: from publishing). */
        a.start = t0;
    }
    if (idle) {
        quiet(&a, o.secs);
    } else {
        attack(&a, o.secs - (setup ? t0 - a.start : 0));
    }
    report(&a, now_s() - t0);
    touch(o.quiet_file);
    quiet(&a, o.quiet);
    if (o.kill_at_end) {
        die_now("the end of the attack");
    }
    if (o.verbose) {
        /* CLOCK_MONOTONIC, for timelines across processes (tests/xen: xen-data stamp). */
        say("closing (t=%.0f ms)", now_s() * 1000);
    }
    vchan_close(a.v);
    return 0;
}

/* ------------------------------------------------------------ set-up by hand */

/* One end set up with the platform's calls directly (die-* and ocaml). */
struct raw {
    void *p;
    struct vchan *v; /* only for the platform's messages */
    struct vchan__wire *ctrl;
    uint8_t *rd_buf, *wr_buf;
    uint32_t rd_size, wr_size;
    size_t lpages, rpages;
    void *lmap, *rmap;
    uint32_t ack_up_to; /* ocaml-vchan: what we read, acknowledged on the next read */
};

static int fail_raw(struct raw *r, const char *what, int rc)
{
    const char *m = vchan_last_error(r->v);

    say("%s: %s", what, m[0] ? m : vchan_strerror(rc));
    return 1;
}

/* ocaml-vchan's Location.of_lengths: the smallest slot that fits, clashes resolved its way. */
static unsigned ocaml_order(size_t size)
{
    if (size <= 1024) {
        return 10;
    }
    if (size <= 2048) {
        return 11;
    }
    for (unsigned n = 12; n < 20; n++) {
        if (size <= (size_t)1 << n) {
            return n;
        }
    }
    return 20;
}

static void ocaml_orders(size_t rd, size_t wr, unsigned *lo, unsigned *ro)
{
    *lo = ocaml_order(rd);
    *ro = ocaml_order(wr);
    if (*lo == 10 && *ro == 10) {
        *ro = 11;
    } else if (*lo == 11 && *ro == 11) {
        *lo = 10;
        *ro = 12;
    }
}

static uint8_t *ring_at(struct raw *r, unsigned order, void *pages)
{
    if (order == 10) {
        return (uint8_t *)r->ctrl + 1024;
    }
    if (order == 11) {
        return (uint8_t *)r->ctrl + 2048;
    }
    return pages;
}

/* A server as ocaml-vchan's (ocaml) or any server stopped at a step (die-*). */
static int raw_server(struct raw *r, bool ocaml, const char *die_at)
{
    struct vchan_config cfg = config(NULL, 0);
    unsigned lo = 16, ro = 16;
    uint32_t port, ring_ref;
    void *page;
    int rc;

    if (ocaml) {
        ocaml_orders(2048, 2048, &lo, &ro);
    }
    r->lpages = lo >= 12 ? (size_t)1 << (lo - 12) : 0;
    r->rpages = ro >= 12 ? (size_t)1 << (ro - 12) : 0;
    if ((rc = plat->open(&r->p, r->v, &cfg, true)) ||
        (rc = plat->evtchn_alloc_unbound(r->p, &port))) {
        return fail_raw(r, "open", rc);
    }
    /* ocaml-vchan shares the page without unmap-notify (-1); libxenvchan and we do not. */
    rc = plat->share(r->p, 1, &ring_ref, ocaml ? -1 : (int)offsetof(struct vchan__wire, srv_live),
                     &page);
    if (rc) {
        return fail_raw(r, "share", rc);
    }
    r->ctrl = page;
    if (r->lpages && (rc = plat->share(r->p, r->lpages, r->ctrl->grants, -1, &r->lmap))) {
        return fail_raw(r, "share", rc);
    }
    if (r->rpages &&
        (rc = plat->share(r->p, r->rpages, r->ctrl->grants + r->lpages, -1, &r->rmap))) {
        return fail_raw(r, "share", rc);
    }
    r->ctrl->left_order = (uint16_t)(o.lie_lo ? o.lie_lo : lo);
    r->ctrl->right_order = (uint16_t)(o.lie_ro ? o.lie_ro : ro);
    r->ctrl->cli_live = VCHAN__LIVE_WAITING;
    r->ctrl->cli_notify = VCHAN__NOTIFY_WRITE;
    r->ctrl->srv_notify = 0; /* ocaml-vchan's server asks for nothing at first */
    vchan__store_release(&r->ctrl->srv_live, VCHAN__LIVE_OPEN);
    /* The server reads the left ring. */
    r->rd_buf = ring_at(r, lo, r->lmap);
    r->rd_size = 1u << lo;
    r->wr_buf = ring_at(r, ro, r->rmap);
    r->wr_size = 1u << ro;
    if ((rc = plat->publish(r->p, ring_ref, port))) {
        return fail_raw(r, "publish", rc);
    }
    if (die_at && strcmp(die_at, "after-publish") == 0) {
        die_now(die_at);
    }
    mark_ready();
    /* Until the client is there: its connect is accepted inside wait. */
    for (double until = now_s() + connect_secs();;) {
        const char *dir = getenv("VCHAN_DIR");
        bool hangup = false;
        char sock[512];
        int self = 0;

        if (die_at && strcmp(die_at, "after-accept") == 0 && dir &&
            vchan__local_domid(r->v, &self) == 0) {
            /* The socket leaves the directory when a client is accepted. */
            snprintf(sock, sizeof(sock), "%s/%d.%d.%s", dir, self, o.domain, o.port);
            if (access(sock, F_OK) < 0) {
                die_now(die_at);
            }
        }
        if (vchan__load_acquire(&r->ctrl->cli_live) != VCHAN__LIVE_WAITING) {
            return 0;
        }
        if (now_s() > until) {
            say("no client within %.1f s", connect_secs());
            return 1;
        }
        (void)plat->wait(r->p, die_at ? 1 : 50, &hangup);
    }
}

/* A client as ocaml-vchan's (ocaml) or any client stopped at a step (die-*). */
static int raw_client(struct raw *r, bool ocaml, const char *die_at)
{
    struct vchan_config cfg = config(NULL, 0);
    uint32_t ring_ref, port, refs[512];
    unsigned lo, ro;
    void *page;
    int rc;

    if ((rc = plat->open(&r->p, r->v, &cfg, false)) ||
        (rc = plat->lookup(r->p, (int)(connect_secs() * 1000), &ring_ref, &port)) ||
        (rc = plat->evtchn_bind(r->p, port))) {
        return fail_raw(r, "connect", rc);
    }
    if (die_at && strcmp(die_at, "after-lookup") == 0) {
        die_now(die_at);
    }
    /* ocaml-vchan maps without unmap-notify. */
    rc = plat->map(r->p, &ring_ref, 1, true,
                   ocaml ? -1 : (int)offsetof(struct vchan__wire, cli_live), &page);
    if (rc) {
        return fail_raw(r, "map", rc);
    }
    r->ctrl = page;
    if (die_at && strcmp(die_at, "after-map") == 0) {
        die_now(die_at);
    }
    lo = vchan__load_once(&r->ctrl->left_order);
    ro = vchan__load_once(&r->ctrl->right_order);
    if (vchan__check_orders(lo, ro, &r->lpages, &r->rpages)) {
        say("the server's orders %u/%u are not valid", lo, ro);
        return 1;
    }
    for (size_t i = 0; i < r->lpages + r->rpages; i++) {
        refs[i] = vchan__load_once(&r->ctrl->grants[i]);
    }
    /* Both rings writable: ocaml-vchan maps its read ring read-write too. */
    if (r->lpages && (rc = plat->map(r->p, refs, r->lpages, true, -1, &r->lmap))) {
        return fail_raw(r, "map", rc);
    }
    if (r->rpages && (rc = plat->map(r->p, refs + r->lpages, r->rpages, true, -1, &r->rmap))) {
        return fail_raw(r, "map", rc);
    }
    /* The client writes the left ring and reads the right one. */
    r->wr_buf = ring_at(r, lo, r->lmap);
    r->wr_size = 1u << lo;
    r->rd_buf = ring_at(r, ro, r->rmap);
    r->rd_size = 1u << ro;
    if (die_at && strcmp(die_at, "before-live") == 0) {
        die_now(die_at);
    }
    vchan__store_release(&r->ctrl->cli_live, VCHAN__LIVE_OPEN);
    vchan__store_once(&r->ctrl->srv_notify, VCHAN__NOTIFY_WRITE);
    if ((rc = plat->notify(r->p))) {
        return fail_raw(r, "notify", rc);
    }
    if (die_at && strcmp(die_at, "after-connect") == 0) {
        die_now(die_at);
    }
    mark_ready();
    return 0;
}

/* ------------------------------------------------------------ ocaml-vchan's I/O */

struct oc {
    struct raw *r;
    bool server;
    uint32_t *rd_prod, *rd_cons, *wr_prod, *wr_cons;
    uint8_t *peer_live, *own_notify, *peer_notify;
};

static void oc_request(struct oc *c, uint8_t bit)
{
    vchan__fetch_or(c->peer_notify, bit);
    vchan__mb();
}

static void oc_send_notify(struct oc *c, uint8_t bit)
{
    vchan__mb();
    if (vchan__fetch_and(c->own_notify, (uint8_t)~bit) & bit) {
        (void)plat->notify(c->r->p);
    }
}

static bool oc_connected(struct oc *c)
{
    return vchan__load_acquire(c->peer_live) == VCHAN__LIVE_OPEN;
}

/* Write what fits (ocaml-vchan's _write_noblock after fast_get_buffer_space). */
static size_t oc_write(struct oc *c, const uint8_t *buf, size_t len)
{
    uint32_t size = c->r->wr_size;
    uint32_t prod = vchan__load_once(c->wr_prod);
    uint32_t space = size - (prod - vchan__load_acquire(c->wr_cons));
    uint32_t n, at, first;

    if (space < len) {
        oc_request(c, VCHAN__NOTIFY_READ);
        space = size - (prod - vchan__load_acquire(c->wr_cons));
    }
    n = len < space ? (uint32_t)len : space;
    if (n == 0 || space > size) {
        return 0;
    }
    at = prod & (size - 1);
    first = size - at < n ? size - at : n;
    memcpy(c->r->wr_buf + at, buf, first);
    memcpy(c->r->wr_buf, buf + first, n - first);
    vchan__store_release(c->wr_prod, prod + n);
    oc_send_notify(c, VCHAN__NOTIFY_WRITE);
    return n;
}

/*
 * Read (ocaml-vchan's read): first acknowledge what the last call returned,
 * then return what is contiguous in the ring, up to the wrap. 0 and *eof
 * when the peer is gone and the ring empty; 0 alone: nothing yet.
 */
static size_t oc_read(struct oc *c, const uint8_t **data, bool *eof)
{
    uint32_t size = c->r->rd_size, cons, avail, at;

    vchan__store_release(c->rd_cons, c->r->ack_up_to);
    oc_send_notify(c, VCHAN__NOTIFY_READ);
    cons = c->r->ack_up_to;
    avail = vchan__load_acquire(c->rd_prod) - cons;
    if (avail == 0) {
        oc_request(c, VCHAN__NOTIFY_WRITE);
        avail = vchan__load_acquire(c->rd_prod) - cons;
    }
    *eof = avail == 0 && !oc_connected(c);
    if (avail == 0 || avail > size) {
        return 0;
    }
    at = cons & (size - 1);
    *data = c->r->rd_buf + at;
    avail = size - at < avail ? size - at : avail;
    c->r->ack_up_to += avail;
    return avail;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int run_ocaml(void)
{
    struct raw r = {.v = calloc(1, sizeof(struct vchan))};
    struct oc c = {.r = &r, .server = o.listen};
    static uint8_t in[65536];
    size_t in_off = 0, in_len = 0;
    unsigned long long sent = 0, received = 0;
    bool in_eof = false, peer_eof = false;
    double last = now_s();

    if (!r.v || (o.listen ? raw_server(&r, true, NULL) : raw_client(&r, true, NULL))) {
        return 1;
    }
    c.rd_prod = o.listen ? &r.ctrl->left.prod : &r.ctrl->right.prod;
    c.rd_cons = o.listen ? &r.ctrl->left.cons : &r.ctrl->right.cons;
    c.wr_prod = o.listen ? &r.ctrl->right.prod : &r.ctrl->left.prod;
    c.wr_cons = o.listen ? &r.ctrl->right.cons : &r.ctrl->left.cons;
    c.peer_live = o.listen ? &r.ctrl->cli_live : &r.ctrl->srv_live;
    c.own_notify = o.listen ? &r.ctrl->srv_notify : &r.ctrl->cli_notify;
    c.peer_notify = o.listen ? &r.ctrl->cli_notify : &r.ctrl->srv_notify;
    r.ack_up_to = vchan__load_once(c.rd_cons);
    say("ocaml: %s, rings: read %u, write %u bytes (orders %u/%u)", o.listen ? "server" : "client",
        r.rd_size, r.wr_size, r.ctrl->left_order, r.ctrl->right_order);

    for (;;) {
        bool moved = false;
        const uint8_t *data = NULL;
        size_t n;

        /* stdin -> ring */
        if (in_len > 0) {
            if (!oc_connected(&c)) {
                say("ocaml: the peer closed with %zu bytes of ours unsent", in_len);
                return 1;
            }
            n = oc_write(&c, in + in_off, in_len);
            in_off += n;
            in_len -= n;
            sent += n;
            moved |= n > 0;
        }
        /* ring -> stdout */
        if (!peer_eof && (n = oc_read(&c, &data, &peer_eof)) > 0) {
            if (write_all(STDOUT_FILENO, data, n) < 0) {
                say("ocaml: stdout: %s", strerror(errno));
                return 1;
            }
            received += n;
            moved = true;
        }
        /* ocaml-vchan closes once its data is written, without waiting for the reader. */
        if (in_eof && in_len == 0 && (sent > 0 || peer_eof)) {
            break;
        }
        if (moved) {
            last = now_s();
            continue;
        }
        if (now_s() - last > o.secs) {
            say("ocaml: nothing moved for %.1f s", o.secs);
            return 1;
        }
        {
            struct pollfd pfd[2] = {{.fd = plat->fd(r.p), .events = POLLIN},
                                    {.fd = STDIN_FILENO, .events = POLLIN}};
            nfds_t nfds = (!in_eof && in_len == 0) ? 2 : 1;
            bool hangup = false;

            if (poll(pfd, nfds, 100) > 0 && pfd[0].revents) {
                (void)plat->wait(r.p, 0, &hangup);
            }
            if (nfds == 2 && pfd[1].revents) {
                ssize_t got = read(STDIN_FILENO, in, sizeof(in));
                if (got > 0) {
                    in_off = 0;
                    in_len = (size_t)got;
                } else {
                    in_eof = true;
                }
            }
        }
    }
    say("ocaml: sent %llu bytes, received %llu bytes; closing", sent, received);
    /* ocaml-vchan's close: live byte, event, unshare. */
    vchan__store_release(o.listen ? &r.ctrl->srv_live : &r.ctrl->cli_live, VCHAN__LIVE_CLOSED);
    (void)plat->notify(r.p);
    plat->close(r.p);
    free(r.v);
    return 0;
}

static int run_die(const char *step)
{
    struct raw r = {.v = calloc(1, sizeof(struct vchan))};
    static const char *const server_steps[] = {"after-publish", "after-accept", NULL};
    static const char *const client_steps[] = {"after-lookup", "after-map", "before-live",
                                               "after-connect", NULL};
    const char *const *steps = o.listen ? server_steps : client_steps;
    bool known = false;

    for (size_t i = 0; steps[i]; i++) {
        known |= strcmp(steps[i], step) == 0;
    }
    if (!known || !r.v) {
        say("unknown step '%s' for a %s", step, o.listen ? "server (-l)" : "client");
        return 2;
    }
    if (o.listen ? raw_server(&r, false, step) : raw_client(&r, false, step)) {
        return 1;
    }
    say("%s: reached the end without dying", step);
    return 1;
}

/* ------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr,
            "usage: hostile-peer [-l] [-a chaos|plausible|ignored|setup|idle|ocaml|die-STEP]\n"
            "       [-t SECS] [-w SECS] [-q SECS] [-Q FILE] [-K] [-s SEED] [-O LO:RO] [-r FILE]\n"
            "       [-v]\n"
            "       vchan://DOMAIN/PORT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int ch;
    char tail;

    signal(SIGPIPE, SIG_IGN);
    o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (getenv("VCHAN_PLATFORM") && strcmp(getenv("VCHAN_PLATFORM"), "xen") == 0) {
#ifdef HAVE_XEN
        plat = &vchan__platform_xen;
#else
        say("VCHAN_PLATFORM=xen, but built without Xen");
        return 1;
#endif
    }
    while ((ch = getopt(argc, argv, "la:t:w:q:Q:Ks:O:r:v")) != -1) {
        switch (ch) {
        case 'l':
            o.listen = true;
            break;
        case 'a':
            o.mode = optarg;
            break;
        case 't':
            o.secs = atof(optarg);
            break;
        case 'w':
            o.wait = atof(optarg);
            break;
        case 'q':
            o.quiet = atof(optarg);
            break;
        case 'K':
            o.kill_at_end = true;
            break;
        case 's':
            o.seed = strtoull(optarg, NULL, 0);
            break;
        case 'r':
            o.ready = optarg;
            break;
        case 'Q':
            o.quiet_file = optarg;
            break;
        case 'O':
            if (sscanf(optarg, "%u:%u", &o.lie_lo, &o.lie_ro) != 2) {
                usage();
            }
            break;
        case 'v':
            o.verbose++;
            break;
        default:
            usage();
        }
    }
    if (optind != argc - 1 || o.secs <= 0 ||
        sscanf(argv[optind], "vchan://%d/%64[A-Za-z0-9_-]%c", &o.domain, o.port, &tail) != 2) {
        usage();
    }
    rng_state = o.seed ? o.seed : 1;
    say("%s %s, mode %s, seed %llu", o.listen ? "serving" : "connecting to", argv[optind], o.mode,
        (unsigned long long)o.seed);

    if (strcmp(o.mode, "ocaml") == 0) {
        return run_ocaml();
    }
    if (strncmp(o.mode, "die-", 4) == 0) {
        return run_die(o.mode + 4);
    }
    if (strcmp(o.mode, "chaos") && strcmp(o.mode, "plausible") && strcmp(o.mode, "idle") &&
        strcmp(o.mode, "ignored") && !(strcmp(o.mode, "setup") == 0 && o.listen)) {
        usage();
    }
    return run_attack();
}
