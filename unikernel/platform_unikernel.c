/* SPDX-License-Identifier: ISC */
/*
 * The unikernel platform: struct vchan__platform on the hooks of
 * vchan_hooks.h. Freestanding, like the ring core it serves: no libc but
 * memcpy and memset, no malloc (pages come from vchan_hook_alloc_pages).
 *
 * Rendezvous exactly as libxenvchan (and dom0's xen platform): the server
 * publishes ring-ref and event-channel under
 * /local/domain/<server>/data/vchan/<client>/<port>, in one transaction,
 * owned by itself and readable by the client only; the client polls for
 * the two keys. A guest has no gntalloc/gntdev unmap-notify, so nothing
 * clears our live byte if we crash: a clean close clears it and notifies
 * (the core's teardown does both), and a crash takes the whole domain, whose
 * grants and event channel Xen then tears down.
 */
#include <stdarg.h>
#include <string.h>

#include "libvchan/core/internal.h"
#include "platform_unikernel.h"
#include "vchan_hooks.h"

#define PAGE_SIZE VCHAN__PAGE_SIZE
/* The largest ring: 2^(20 - 12) pages; a channel shares or maps at most 1 + 2 of them. */
#define RING_PAGES_MAX (1u << (VCHAN__MAX_ORDER - VCHAN__PAGE_SHIFT))
#define IDS_MAX (1u + 2u * RING_PAGES_MAX)
/* "/local/domain/32751/data/vchan/32751/" + a 64-character port + "/event-channel". */
#define PATH_LEN 160
/* xenstore transaction conflicts before we give up publishing. */
#define PUBLISH_TRIES 16
/* A client polls for its server's keys at first quickly, then every 100 ms. */
#define LOOKUP_FIRST_MS 10
#define LOOKUP_MAX_MS 100

/* Pages we shared (ids = grant refs) or mapped (ids = map handles). */
struct region {
    void *addr;
    size_t npages;
    uint32_t *ids;
};

struct uk {
    struct vchan *v;
    bool server;
    vchan_hook_domid_t peer;
    vchan_hook_domid_t self;
    vchan_hook_evtchn_port_t port;
    bool have_port;
    bool published;
    char path[PATH_LEN]; /* the rendezvous directory */
    struct region regions[3]; /* control page, and the two rings' pages */
    uint32_t ids[IDS_MAX];
    size_t nids;
};

/* ------------------------------------------------------------------ text */

/* A bounded string builder: the platform's only formatting, no snprintf. */
struct text {
    char *buf;
    size_t cap, len;
    bool overflow;
};

static void text_init(struct text *t, char *buf, size_t cap)
{
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    t->overflow = false;
    buf[0] = '\0';
}

static void text_str(struct text *t, const char *s)
{
    for (; *s; s++) {
        if (t->len + 1 >= t->cap) {
            t->overflow = true;
            break;
        }
        t->buf[t->len++] = *s;
    }
    t->buf[t->len] = '\0';
}

static void text_uint(struct text *t, uint64_t n)
{
    char digits[21];
    size_t i = sizeof(digits);

    digits[--i] = '\0';
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    text_str(t, digits + i);
}

/* Decimal u32, nothing else (xenstore values are peer-controlled). */
static bool parse_u32(const char *s, uint32_t *out)
{
    uint64_t n = 0;

    if (*s < '0' || *s > '9') {
        return false;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
        n = n * 10 + (uint64_t)(*s - '0');
        if (n > UINT32_MAX) {
            return false;
        }
    }
    *out = (uint32_t)n;
    return true;
}

static const char *hook_errname(int err)
{
    switch (-err) {
    case VCHAN_HOOK_ENOENT:
        return "ENOENT";
    case VCHAN_HOOK_EAGAIN:
        return "EAGAIN";
    case VCHAN_HOOK_ENOMEM:
        return "ENOMEM";
    case VCHAN_HOOK_EACCES:
        return "EACCES";
    case VCHAN_HOOK_EBUSY:
        return "EBUSY";
    case VCHAN_HOOK_EINVAL:
        return "EINVAL";
    case VCHAN_HOOK_ENOSPC:
        return "ENOSPC";
    case VCHAN_HOOK_ETIMEDOUT:
        return "ETIMEDOUT";
    default:
        return NULL;
    }
}

static int hook_to_vchan(int err)
{
    switch (-err) {
    case VCHAN_HOOK_ENOENT:
        return VCHAN_ENOENT;
    case VCHAN_HOOK_EACCES:
        return VCHAN_EPERM;
    case VCHAN_HOOK_ENOMEM:
    case VCHAN_HOOK_ENOSPC:
        return VCHAN_ENOMEM;
    case VCHAN_HOOK_ETIMEDOUT:
        return VCHAN_ETIMEDOUT;
    default:
        return VCHAN_EIO;
    }
}

/*
 * Record "WHAT [PATH]: EXXX" as the handle's last error (and log it once,
 * through the core); returns the negative vchan code for hook error `err`.
 */
static int hook_failed(struct uk *u, int err, const char *what, const char *path)
{
    struct vchan *v = u->v;
    const char *name = hook_errname(err);
    struct text t;

    text_init(&t, v->errbuf, sizeof(v->errbuf));
    text_str(&t, what);
    if (path) {
        text_str(&t, " ");
        text_str(&t, path);
    }
    text_str(&t, ": ");
    if (name) {
        text_str(&t, name);
    } else {
        text_str(&t, "error ");
        text_uint(&t, err < 0 ? (uint64_t)-(int64_t)err : (uint64_t)err);
    }
    return vchan__fail(v, hook_to_vchan(err), v->errbuf);
}

/* ---------------------------------------------------------------- memory */

/* A small allocation is whole pages with its page count in front. */
struct block {
    size_t npages;
    size_t pad; /* keeps what follows 16-byte aligned */
};

static void *uk_alloc(size_t size)
{
    struct block *b;
    size_t npages;

    if (size > SIZE_MAX - sizeof(*b) - PAGE_SIZE) {
        return NULL;
    }
    npages = (size + sizeof(*b) + PAGE_SIZE - 1) / PAGE_SIZE;
    b = vchan_hook_alloc_pages(npages);
    if (!b) {
        return NULL;
    }
    b->npages = npages;
    return b + 1;
}

static void uk_free(void *ptr)
{
    if (ptr) {
        struct block *b = (struct block *)ptr - 1;

        vchan_hook_free_pages(b, b->npages);
    }
}

/*
 * Shared pages whose grants the peer still held when we closed. Xen cannot
 * take a mapping away from its holder, and the peer may still write: such
 * pages are parked here, never reused, and released once every grant could
 * be revoked (retried at each later open and close). Process-wide, like
 * the grant table it mirrors.
 */
struct parked {
    struct parked *next;
    void *addr;
    size_t npages;
    size_t nrefs; /* refs[0..nrefs) are still granted */
    vchan_hook_grant_ref_t refs[RING_PAGES_MAX];
};

static struct parked *parked_list;

/* Revoke what can be revoked of refs[0..n); returns how many remain (moved to the front). */
static size_t revoke(vchan_hook_grant_ref_t *refs, size_t n)
{
    size_t i, left = 0;

    for (i = 0; i < n; i++) {
        if (vchan_hook_gnttab_end_access(refs[i]) != 0) {
            refs[left++] = refs[i];
        }
    }
    return left;
}

static void retry_parked(void)
{
    struct parked **pp = &parked_list;

    while (*pp) {
        struct parked *pk = *pp;

        pk->nrefs = revoke(pk->refs, pk->nrefs);
        if (pk->nrefs == 0) {
            *pp = pk->next;
            vchan_hook_free_pages(pk->addr, pk->npages);
            uk_free(pk);
        } else {
            pp = &pk->next;
        }
    }
}

/* ------------------------------------------------------------- regions */

/* Room for a region of npages ids; NULL when all three are in use. */
static struct region *region_new(struct uk *u, size_t npages)
{
    size_t i;

    if (npages > IDS_MAX - u->nids) {
        return NULL;
    }
    for (i = 0; i < 3; i++) {
        struct region *r = &u->regions[i];

        if (!r->addr) {
            r->ids = u->ids + u->nids;
            r->npages = npages;
            return r;
        }
    }
    return NULL;
}

static void region_commit(struct uk *u, struct region *r, void *addr)
{
    r->addr = addr;
    u->nids += r->npages;
}

static struct region *region_find(struct uk *u, void *addr)
{
    size_t i;

    for (i = 0; i < 3; i++) {
        if (u->regions[i].addr == addr) {
            return &u->regions[i];
        }
    }
    return NULL;
}

/* A region's ids stay reserved until close: the core frees in any order. */
static void region_drop(struct region *r)
{
    r->addr = NULL;
}

/* ---------------------------------------------------------- the platform */

static int uk_open(void **pp, struct vchan *v, const struct vchan_config *cfg, bool server)
{
    char buf[16];
    uint32_t self;
    struct text t;
    struct uk *u;
    int rc;

    retry_parked();
    u = uk_alloc(sizeof(*u));
    if (!u) {
        return vchan__fail(v, VCHAN_ENOMEM, "out of memory");
    }
    memset(u, 0, sizeof(*u));
    u->v = v;
    u->server = server;
    u->peer = (vchan_hook_domid_t)cfg->domain;
    *pp = u;
    /* xenstored resolves the relative "domid" under our own directory. */
    rc = vchan_hook_xenbus_read(VCHAN_HOOK_XBT_NIL, "domid", buf, sizeof(buf));
    if (rc) {
        return hook_failed(u, rc, "xenstore read of own", "domid");
    }
    if (!parse_u32(buf, &self) || self > VCHAN_DOMID_MAX) {
        return vchan__fail(v, VCHAN_EIO, "xenstore gave a malformed own domid");
    }
    u->self = (vchan_hook_domid_t)self;
    text_init(&t, u->path, sizeof(u->path));
    text_str(&t, "/local/domain/");
    text_uint(&t, server ? u->self : u->peer);
    text_str(&t, "/data/vchan/");
    text_uint(&t, server ? u->peer : u->self);
    text_str(&t, "/");
    text_str(&t, cfg->port);
    if (t.overflow) {
        return vchan__fail(v, VCHAN_EINVAL, "xenstore path too long");
    }
    return 0;
}

static void uk_close(void *p)
{
    struct uk *u = p;

    if (u->published) {
        (void)vchan_hook_xenbus_rm(VCHAN_HOOK_XBT_NIL, u->path);
    }
    if (u->have_port) {
        vchan_hook_unbind_evtchn(u->port);
    }
    uk_free(u);
    retry_parked();
}

static int uk_evtchn_alloc_unbound(void *p, uint32_t *port)
{
    struct uk *u = p;
    int rc = vchan_hook_evtchn_alloc_unbound(u->peer, &u->port);

    if (rc) {
        return hook_failed(u, rc, "event channel allocation", NULL);
    }
    u->have_port = true;
    *port = u->port;
    return 0;
}

static int uk_share(void *p, size_t npages, uint32_t *refs, int notify_offset, void **addr)
{
    struct uk *u = p;
    struct region *r = region_new(u, npages);
    uint8_t *pages;
    size_t i;
    int rc;

    (void)notify_offset; /* no unmap-notify in a guest: see the top of this file */
    if (!r) {
        return vchan__fail(u->v, VCHAN_EINVAL, "too many shared pages");
    }
    pages = vchan_hook_alloc_pages(npages);
    if (!pages) {
        return vchan__fail(u->v, VCHAN_ENOMEM, "out of memory for the ring");
    }
    for (i = 0; i < npages; i++) {
        rc = vchan_hook_gnttab_grant_access(u->peer, pages + i * PAGE_SIZE, false, &r->ids[i]);
        if (rc) {
            /* Nobody has mapped these yet: revoking cannot fail. */
            (void)revoke(r->ids, i);
            vchan_hook_free_pages(pages, npages);
            return hook_failed(u, rc, "grant", NULL);
        }
        refs[i] = r->ids[i];
    }
    region_commit(u, r, pages);
    *addr = pages;
    return 0;
}

static void uk_unshare(void *p, void *addr, size_t npages)
{
    struct uk *u = p;
    struct region *r = region_find(u, addr);
    struct parked *pk;
    size_t left;

    if (!r || r->npages != npages) {
        return;
    }
    region_drop(r);
    left = revoke(r->ids, npages);
    if (left == 0) {
        vchan_hook_free_pages(addr, npages);
        return;
    }
    /* The peer still maps some: park the pages until it lets go. */
    pk = uk_alloc(sizeof(*pk));
    if (!pk) {
        return; /* leaked, never reused: the peer may still write there */
    }
    pk->addr = addr;
    pk->npages = npages;
    pk->nrefs = left;
    memcpy(pk->refs, r->ids, left * sizeof(pk->refs[0]));
    pk->next = parked_list;
    parked_list = pk;
}

static int uk_publish(void *p, uint32_t ring_ref, uint32_t port)
{
    static const char *const keys[2] = {"ring-ref", "event-channel"};
    struct uk *u = p;
    char key[PATH_LEN + 16], val[12];
    uint32_t vals[2] = {ring_ref, port};
    const char *what = "xenstore write";
    int tries, i, rc = 0;

    for (tries = 0; tries < PUBLISH_TRIES; tries++) {
        vchan_hook_xbt_t xbt;

        if ((rc = vchan_hook_xenbus_transaction_start(&xbt))) {
            return hook_failed(u, rc, "xenstore transaction start", NULL);
        }
        for (i = 0; i < 2 && rc == 0; i++) {
            struct text t;

            text_init(&t, key, sizeof(key));
            text_str(&t, u->path);
            text_str(&t, "/");
            text_str(&t, keys[i]);
            text_init(&t, val, sizeof(val));
            text_uint(&t, vals[i]);
            what = "xenstore write";
            if ((rc = vchan_hook_xenbus_write(xbt, key, val)) == 0) {
                /* Ours, readable by the client alone (libxenvchan's permissions). */
                what = "xenstore set-permissions";
                rc = vchan_hook_xenbus_set_perms(xbt, key, u->self, u->peer);
            }
        }
        if (rc) {
            (void)vchan_hook_xenbus_transaction_end(xbt, true);
            return hook_failed(u, rc, what, key);
        }
        rc = vchan_hook_xenbus_transaction_end(xbt, false);
        if (rc == 0) {
            u->published = true;
            return 0;
        }
        if (rc != -VCHAN_HOOK_EAGAIN) {
            break;
        }
    }
    return hook_failed(u, rc, "xenstore transaction commit for", u->path);
}

/* Read PATH/KEY as a u32: 0, the hook's error, or 1 when malformed. */
static int read_key(struct uk *u, const char *key, uint32_t *out)
{
    char path[PATH_LEN + 16], val[16];
    struct text t;
    int rc;

    text_init(&t, path, sizeof(path));
    text_str(&t, u->path);
    text_str(&t, "/");
    text_str(&t, key);
    rc = vchan_hook_xenbus_read(VCHAN_HOOK_XBT_NIL, path, val, sizeof(val));
    if (rc == -VCHAN_HOOK_ENOSPC) {
        return 1; /* longer than any u32: malformed */
    }
    if (rc) {
        return rc;
    }
    return parse_u32(val, out) ? 0 : 1; /* peer-controlled */
}

static int uk_lookup(void *p, int timeout_ms, uint32_t *ring_ref, uint32_t *port)
{
    struct uk *u = p;
    uint64_t start = vchan_hook_monotonic_clock() / 1000000u;
    unsigned int nap = LOOKUP_FIRST_MS;

    for (;;) {
        uint64_t now;
        int rc = read_key(u, "ring-ref", ring_ref);

        if (rc == 0) {
            rc = read_key(u, "event-channel", port);
        }
        if (rc == 0) {
            return 0;
        }
        if (rc == 1) {
            return vchan__fail(u->v, VCHAN_EPROTO, "server published a malformed ring-ref or event-channel");
        }
        /*
         * Not there yet, or there but not yet readable by us (permissions
         * come with the keys in one transaction, but a server without
         * transactions sets them after): wait for it.
         */
        if (rc != -VCHAN_HOOK_ENOENT && rc != -VCHAN_HOOK_EACCES) {
            return hook_failed(u, rc, "xenstore read under", u->path);
        }
        now = vchan_hook_monotonic_clock() / 1000000u;
        if (timeout_ms >= 0 && now - start >= (uint64_t)timeout_ms) {
            struct text t;

            text_init(&t, u->v->errbuf, sizeof(u->v->errbuf));
            text_str(&t, "no server at ");
            text_str(&t, u->path);
            text_str(&t, " after ");
            text_uint(&t, (uint64_t)timeout_ms);
            text_str(&t, " ms");
            return vchan__fail(u->v, VCHAN_ETIMEDOUT, u->v->errbuf);
        }
        vchan_hook_msleep(nap);
        nap = nap * 2 > LOOKUP_MAX_MS ? LOOKUP_MAX_MS : nap * 2;
    }
}

static int uk_evtchn_bind(void *p, uint32_t remote_port)
{
    struct uk *u = p;
    int rc = vchan_hook_evtchn_bind_interdomain(u->peer, remote_port, &u->port);

    if (rc) {
        return hook_failed(u, rc, "event channel bind to the port published under", u->path);
    }
    u->have_port = true;
    return 0;
}

static int uk_map(void *p, const uint32_t *refs, size_t npages, bool writable, int notify_offset,
                  void **addr)
{
    struct uk *u = p;
    struct region *r = region_new(u, npages);
    void *pages;
    int rc;

    (void)notify_offset; /* no unmap-notify in a guest */
    if (!r) {
        return vchan__fail(u->v, VCHAN_EINVAL, "too many mapped pages");
    }
    rc = vchan_hook_gntmap_map_grant_refs(u->peer, refs, npages, writable, &pages, r->ids);
    if (rc) {
        return hook_failed(u, rc, "mapping the grants published under", u->path);
    }
    region_commit(u, r, pages);
    *addr = pages;
    return 0;
}

static void uk_unmap(void *p, void *addr, size_t npages)
{
    struct uk *u = p;
    struct region *r = region_find(u, addr);

    if (r && r->npages == npages) {
        region_drop(r);
        (void)vchan_hook_gntmap_munmap(addr, npages, r->ids);
    }
}

static int uk_notify(void *p)
{
    struct uk *u = p;
    int rc = vchan_hook_notify_remote_via_evtchn(u->port);

    return rc ? hook_failed(u, rc, "event channel send", NULL) : 0;
}

static int uk_wait(void *p, int timeout_ms, bool *hangup)
{
    struct uk *u = p;
    int rc = vchan_hook_evtchn_wait(u->port, timeout_ms);

    /* Without unmap-notify we never know a peer is gone for good; its live byte says so. */
    *hangup = false;
    if (rc == -VCHAN_HOOK_ETIMEDOUT) {
        return timeout_ms == 0 ? -VCHAN_EAGAIN : -VCHAN_ETIMEDOUT;
    }
    return rc ? hook_failed(u, rc, "event channel wait", NULL) : 0;
}

static int uk_fd(void *p)
{
    (void)p;
    return -VCHAN_ENOSYS; /* no file descriptors: wait with vchan_wait */
}

static uint64_t uk_now_ms(void)
{
    return vchan_hook_monotonic_clock() / 1000000u;
}

static void call_log(struct vchan *v, enum vchan_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    v->log(v->log_ctx, level, fmt, ap);
    va_end(ap);
}

static void uk_log(struct vchan *v, enum vchan_log_level level, const char *msg)
{
    if (v && v->log) {
        call_log(v, level, "%s", msg);
    }
}

const struct vchan__platform vchan__platform_unikernel = {
    .name = "unikernel",
    .open = uk_open,
    .close = uk_close,
    .evtchn_alloc_unbound = uk_evtchn_alloc_unbound,
    .share = uk_share,
    .unshare = uk_unshare,
    .publish = uk_publish,
    .lookup = uk_lookup,
    .evtchn_bind = uk_evtchn_bind,
    .map = uk_map,
    .unmap = uk_unmap,
    .notify = uk_notify,
    .wait = uk_wait,
    .fd = uk_fd,
    .now_ms = uk_now_ms,
    .alloc = uk_alloc,
    .free = uk_free,
    .log = uk_log,
};
