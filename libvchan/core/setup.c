/* SPDX-License-Identifier: ISC */
/*
 * Server and client set-up of a vchan, as libxenvchan does it, on any
 * platform. Freestanding: memory and everything else come from the platform.
 */
#include <string.h>

#include "barrier.h"
#include "deadline.h"
#include "internal.h"

/* Two rings of the largest order: 2 * 2^(20 - 12) grants. */
#define GRANTS_MAX (2u << (VCHAN__MAX_ORDER - VCHAN__PAGE_SHIFT))

bool vchan__port_valid(const char *port)
{
    size_t n = 0;

    if (!port) {
        return false;
    }
    for (; port[n]; n++) {
        char c = port[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok || n >= VCHAN_PORT_MAX) {
            return false;
        }
    }
    return n > 0;
}

static unsigned page_order(size_t size)
{
    unsigned order = VCHAN__PAGE_SHIFT;

    while (size > ((size_t)1 << order)) {
        order++;
    }
    return order;
}

int vchan__select_orders(size_t read_min, size_t write_min, unsigned *read_order,
                         unsigned *write_order)
{
    if (read_min > VCHAN_MAX_RING_SIZE || write_min > VCHAN_MAX_RING_SIZE) {
        return -VCHAN_EINVAL;
    }
    *read_order = page_order(read_min);
    *write_order = page_order(write_min);
    /* Rings that fit in the control page go there, saving grants (libxenvchan's rule). */
    if (read_min <= VCHAN__SMALL_OFFSET && write_min <= VCHAN__LARGE_OFFSET) {
        *read_order = VCHAN__SMALL_ORDER;
        *write_order = VCHAN__LARGE_ORDER;
    } else if (read_min <= VCHAN__LARGE_OFFSET && write_min <= VCHAN__SMALL_OFFSET) {
        *read_order = VCHAN__LARGE_ORDER;
        *write_order = VCHAN__SMALL_ORDER;
    } else if (read_min <= VCHAN__LARGE_OFFSET) {
        *read_order = VCHAN__LARGE_ORDER;
    } else if (write_min <= VCHAN__LARGE_OFFSET) {
        *write_order = VCHAN__LARGE_ORDER;
    }
    return 0;
}

static size_t ring_pages(unsigned order)
{
    return order >= VCHAN__PAGE_SHIFT ? (size_t)1 << (order - VCHAN__PAGE_SHIFT) : 0;
}

int vchan__check_orders(unsigned left_order, unsigned right_order, size_t *left_pages,
                        size_t *right_pages)
{
    size_t limit = VCHAN__PAGE_SIZE;

    if (left_order < VCHAN__MIN_ORDER || left_order > VCHAN__MAX_ORDER ||
        right_order < VCHAN__MIN_ORDER || right_order > VCHAN__MAX_ORDER) {
        return -VCHAN_EPROTO;
    }
    /* Two in-page rings of one order would overlap. */
    if (left_order == right_order && left_order < VCHAN__PAGE_SHIFT) {
        return -VCHAN_EPROTO;
    }
    if (left_order == VCHAN__SMALL_ORDER || right_order == VCHAN__SMALL_ORDER) {
        limit = VCHAN__SMALL_OFFSET;
    } else if (left_order == VCHAN__LARGE_ORDER || right_order == VCHAN__LARGE_ORDER) {
        limit = VCHAN__LARGE_OFFSET;
    }
    *left_pages = ring_pages(left_order);
    *right_pages = ring_pages(right_order);
    /* The grant list must end before any in-page ring (libxenvchan does not check this). */
    if (sizeof(struct vchan__wire) + (*left_pages + *right_pages) * sizeof(uint32_t) > limit) {
        return -VCHAN_EPROTO;
    }
    return 0;
}

/* Point a ring at its data: in the control page for orders 10 and 11, else its pages. */
static void ring_place(struct vchan *v, struct vchan__ring *r, unsigned order, void *pages,
                       size_t npages)
{
    r->size = 1u << order;
    r->npages = npages;
    if (order == VCHAN__SMALL_ORDER) {
        r->buf = (uint8_t *)v->ctrl + VCHAN__SMALL_OFFSET;
    } else if (order == VCHAN__LARGE_ORDER) {
        r->buf = (uint8_t *)v->ctrl + VCHAN__LARGE_OFFSET;
    } else {
        r->buf = pages;
    }
}

static int check_config(const struct vchan_config *cfg, const char **why)
{
    if (!cfg) {
        *why = "no configuration given";
    } else if (cfg->domain < 0 || cfg->domain > VCHAN_DOMID_MAX) {
        *why = "domain id out of range (0-32751)";
    } else if (!vchan__port_valid(cfg->port)) {
        *why = "port must be 1-64 characters of [A-Za-z0-9_-]";
    } else if (cfg->read_size > VCHAN_MAX_RING_SIZE || cfg->write_size > VCHAN_MAX_RING_SIZE) {
        *why = "ring size above 1 MiB";
    } else if (cfg->timeout_ms < 0) {
        *why = "negative timeout";
    } else {
        return 0;
    }
    return -VCHAN_EINVAL;
}

static void report(const struct vchan_config *cfg, const char *msg)
{
    size_t n;

    if (!cfg || !cfg->errbuf || cfg->errbuf_len == 0) {
        return;
    }
    for (n = 0; msg[n] && n + 1 < cfg->errbuf_len; n++) {
    }
    memcpy(cfg->errbuf, msg, n);
    cfg->errbuf[n] = '\0';
}

/* A struct_size beyond this is garbage, not a newer vchan.h. */
#define CONFIG_SIZE_MAX 4096u

void vchan_config_init(struct vchan_config *cfg)
{
    if (cfg) {
        memset(cfg, 0, sizeof(*cfg));
        cfg->struct_size = sizeof(*cfg);
    }
}

int vchan__config_load(struct vchan_config *dst, const struct vchan_config *src)
{
    const unsigned char *extra, *end;
    size_t n;

    memset(dst, 0, sizeof(*dst));
    if (!src) {
        return -VCHAN_EINVAL;
    }
    n = src->struct_size;
    if (n < sizeof(*dst) || n > CONFIG_SIZE_MAX) {
        /* Zero: a zeroed config whose other fields are sound. Else they may be garbage too. */
        if (n == 0) {
            report(src, "struct vchan_config not initialised: use VCHAN_CONFIG_INIT");
        }
        return -VCHAN_EINVAL;
    }
    /* A newer vchan.h: its fields past ours must be left at their defaults (zero). */
    end = (const unsigned char *)src + n;
    for (extra = (const unsigned char *)src + sizeof(*dst); extra < end; extra++) {
        if (*extra) {
            report(src, "struct vchan_config sets fields this libvchan does not know "
                        "(built against a newer vchan.h)");
            return -VCHAN_EINVAL;
        }
    }
    memcpy(dst, src, sizeof(*dst));
    return 0;
}

/* Undo whatever part of an open got done, closing our side as libxenvchan does. */
static void teardown(struct vchan *v)
{
    const struct vchan__platform *plat = v->plat;
    void (*release)(void *p, void *addr, size_t npages);

    if (v->own_live) {
        /* Everything we wrote is visible /before/ the peer sees us closed. */
        vchan__store_release(v->own_live, VCHAN__LIVE_CLOSED);
        (void)plat->notify(v->p);
    }
    /* The server shared the pages, the client mapped them: the same order either way. */
    release = v->server ? plat->unshare : plat->unmap;
    if (v->rd.npages) {
        release(v->p, v->rd.buf, v->rd.npages);
    }
    if (v->wr.npages) {
        release(v->p, v->wr.buf, v->wr.npages);
    }
    if (v->ctrl) {
        release(v->p, v->ctrl, 1);
    }
    if (v->p) {
        plat->close(v->p);
    }
    plat->free(v);
}

void vchan_close(struct vchan *v)
{
    if (v) {
        teardown(v);
    }
}

static int new_handle(struct vchan **out, const struct vchan__platform *plat,
                      const struct vchan_config *cfg, bool server)
{
    struct vchan *v = plat->alloc(sizeof(*v));

    if (!v) {
        report(cfg, "out of memory");
        return -VCHAN_ENOMEM;
    }
    memset(v, 0, sizeof(*v));
    v->plat = plat;
    v->server = server;
    v->nonblocking = cfg->nonblocking;
    v->timeout_ms = cfg->timeout_ms;
    v->log = cfg->log;
    v->log_ctx = cfg->log_ctx;
    *out = v;
    return 0;
}

/* Fail an open: hand the message to the caller, release the handle. */
static int open_failed(struct vchan *v, const struct vchan_config *cfg, int rc, const char *msg)
{
    if (msg) {
        rc = vchan__fail(v, -rc, msg);
    }
    report(cfg, vchan_last_error(v)[0] ? vchan_last_error(v) : vchan_strerror(rc));
    teardown(v);
    return rc;
}

/* What both opens do first: *out cleared, the config loaded into *c and checked. */
static int open_begin(struct vchan **out, const struct vchan_config *cfg, struct vchan_config *c)
{
    const char *why;
    int rc;

    if (!out) {
        return -VCHAN_EINVAL;
    }
    *out = NULL;
    if ((rc = vchan__config_load(c, cfg))) {
        return rc;
    }
    if ((rc = check_config(c, &why))) {
        report(c, why);
    }
    return rc;
}

/*
 * Share (server) or map (client) one data ring's npages and place it; an
 * in-page ring (npages 0) needs neither. refs: where the server writes the
 * grants, or the client's validated copy of them.
 */
static int ring_setup(struct vchan *v, struct vchan__ring *r, unsigned order, size_t npages,
                      uint32_t *refs, bool writable)
{
    void *pages = NULL;
    int rc;

    if (npages) {
        rc = v->server ? v->plat->share(v->p, npages, refs, -1, &pages)
                       : v->plat->map(v->p, refs, npages, writable, -1, &pages);
        if (rc) {
            return rc;
        }
    }
    ring_place(v, r, order, pages, npages);
    return 0;
}

int vchan__server_open(struct vchan **out, const struct vchan__platform *plat,
                       const struct vchan_config *cfg, const struct vchan__open_extra *extra)
{
    struct vchan_config c;
    struct vchan *v;
    unsigned rorder, worder;
    size_t rpages, wpages;
    uint32_t ring_ref, port;
    void *pages;
    int rc;

    if ((rc = open_begin(out, cfg, &c))) {
        return rc;
    }
    cfg = &c;
    rc = vchan__select_orders(cfg->read_size ? cfg->read_size : VCHAN_DEFAULT_RING_SIZE,
                              cfg->write_size ? cfg->write_size : VCHAN_DEFAULT_RING_SIZE,
                              &rorder, &worder);
    if (rc) {
        report(cfg, "ring size above 1 MiB");
        return rc;
    }
    rpages = ring_pages(rorder);
    wpages = ring_pages(worder);
    if ((rc = new_handle(&v, plat, cfg, true))) {
        return rc;
    }
    v->open_xs_path = extra ? extra->xs_path : NULL;
    rc = plat->open(&v->p, v, cfg, true);
    v->open_xs_path = NULL;
    if (rc || (rc = plat->evtchn_alloc_unbound(v->p, &port))) {
        return open_failed(v, cfg, rc, NULL);
    }
    /* The control page, cleared and signalled by the platform if we vanish. */
    rc = plat->share(v->p, 1, &ring_ref, (int)offsetof(struct vchan__wire, srv_live), &pages);
    if (rc) {
        return open_failed(v, cfg, rc, NULL);
    }
    v->ctrl = pages;
    memset(v->ctrl, 0, VCHAN__PAGE_SIZE);
    /* The server reads the left ring and writes the right one: grants left first. */
    if ((rc = ring_setup(v, &v->rd, rorder, rpages, v->ctrl->grants, true)) ||
        (rc = ring_setup(v, &v->wr, worder, wpages, v->ctrl->grants + rpages, true))) {
        return open_failed(v, cfg, rc, NULL);
    }
    v->ctrl->left_order = (uint16_t)rorder;
    v->ctrl->right_order = (uint16_t)worder;
    v->ctrl->cli_live = VCHAN__LIVE_WAITING;
    v->ctrl->cli_notify = VCHAN__NOTIFY_WRITE;
    vchan__ring_attach(v, true);
    /* The page is complete /before/ it is published. */
    vchan__store_release(v->own_live, VCHAN__LIVE_OPEN);
    if ((rc = plat->publish(v->p, ring_ref, port))) {
        return open_failed(v, cfg, rc, NULL);
    }
    *out = v;
    return 0;
}

int vchan__client_open(struct vchan **out, const struct vchan__platform *plat,
                       const struct vchan_config *cfg, const struct vchan__open_extra *extra)
{
    struct vchan_config c;
    uint32_t refs[GRANTS_MAX];
    struct vchan *v;
    unsigned lorder, rorder;
    size_t lpages, rpages, i;
    uint32_t ring_ref, port;
    void *pages;
    int rc;

    if ((rc = open_begin(out, cfg, &c))) {
        return rc;
    }
    cfg = &c;
    if ((rc = new_handle(&v, plat, cfg, false))) {
        return rc;
    }
    v->open_xs_path = extra ? extra->xs_path : NULL;
    rc = plat->open(&v->p, v, cfg, false);
    v->open_xs_path = NULL;
    if (rc || (rc = plat->lookup(v->p, vdeadline_timeout(cfg->timeout_ms), &ring_ref, &port)) ||
        (rc = plat->evtchn_bind(v->p, port))) {
        return open_failed(v, cfg, rc, NULL);
    }
    /* Bound first: the unmap-notify on cli_live needs the event channel. */
    rc = plat->map(v->p, &ring_ref, 1, true, (int)offsetof(struct vchan__wire, cli_live), &pages);
    if (rc) {
        return open_failed(v, cfg, rc, NULL);
    }
    v->ctrl = pages;
    /* Orders and grants are peer-controlled: copy once, check, never re-read. */
    lorder = vchan__load_once(&v->ctrl->left_order);
    rorder = vchan__load_once(&v->ctrl->right_order);
    if (vchan__check_orders(lorder, rorder, &lpages, &rpages)) {
        return open_failed(v, cfg, -VCHAN_EPROTO, "server published invalid ring orders");
    }
    for (i = 0; i < lpages + rpages; i++) {
        refs[i] = vchan__load_once(&v->ctrl->grants[i]);
    }
    /* The client writes the left ring and reads the right one, which it maps read-only. */
    if ((rc = ring_setup(v, &v->wr, lorder, lpages, refs, true)) ||
        (rc = ring_setup(v, &v->rd, rorder, rpages, refs + lpages, false))) {
        return open_failed(v, cfg, rc, NULL);
    }
    vchan__ring_attach(v, false);
    vchan__store_once(v->peer_notify, VCHAN__NOTIFY_WRITE);
    /* Our page set-up is visible /before/ the server sees us connected. */
    vchan__store_release(v->own_live, VCHAN__LIVE_OPEN);
    if ((rc = plat->notify(v->p))) {
        return open_failed(v, cfg, rc, NULL);
    }
    *out = v;
    return 0;
}
