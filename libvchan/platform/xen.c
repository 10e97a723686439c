/* SPDX-License-Identifier: ISC */
/*
 * The Xen platform: grant tables (libxengnttab: gntalloc to share, gntdev to
 * map), one event channel (libxenevtchn) and the xenstore rendezvous
 * (libxenstore), laid out exactly as Xen's libxenvchan does so either end
 * can be Xen's own tools. Built only with HAVE_XEN (picked in Makefile.am).
 *
 * Rendezvous: the server publishes `ring-ref` and `event-channel` under
 * /local/domain/<server>/data/vchan/<client>/<port>, readable by the client
 * only; the client reads them (it may not be allowed to list the directory),
 * waiting through a xenstore watch until they appear.
 *
 * Peer death: a process that dies is seen through unmap-notify (its kernel
 * clears its live byte and signals the event channel). A domain that dies
 * runs no kernel code to do that, so a privileged caller (dom0) also watches
 * @releaseDomain and asks xenstored whether the peer domain still exists. An
 * unprivileged domU cannot (the query is privileged and the watch carries no
 * events for it): there a destroyed peer domain shows only as a timeout.
 * docs/xen-platform.md says more.
 *
 * Everything read from xenstore or from the shared page is hostile: parsed
 * strictly, checked, then used.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>
#include <xentoollog.h>

#include "libvchan/core/barrier.h"
#include "libvchan/platform/clock.h"
#include "libvchan/platform/hosted.h"

/* Largest event channel port Xen can give (the FIFO ABI's limit, above the 2-level one). */
#ifdef EVTCHN_FIFO_NR_CHANNELS
#define PORT_LIMIT ((uint64_t)EVTCHN_FIFO_NR_CHANNELS)
#else
#define PORT_LIMIT ((uint64_t)1 << 17)
#endif

/* Pages of the largest ring (order 20). */
#define RING_PAGES_MAX (1u << (VCHAN__MAX_ORDER - VCHAN__PAGE_SHIFT))

/*
 * While a client waits for its server, a watch wakes it when the keys are
 * written. xenstored delivers a watch event only to connections allowed to
 * read the node, and the server sets the permissions inside the same
 * transaction as the write; rather than depend on how a given xenstored
 * orders the two, also look again this often.
 */
#define LOOKUP_RECHECK_MS 500
/* How long a server retries xenstored's quota and load errors, and its longest pause. */
#define PUBLISH_RETRY_TOTAL_MS 5000
#define PUBLISH_BACKOFF_MAX_MS 200

/* Watch tokens: one xenstore connection per channel carries both watches. */
#define TOKEN_PATH "vchan-conduit:path"
#define TOKEN_DEATH "vchan-conduit:death"

/* "/local/domain/32751/data/vchan/32751/" + 64-char port + "/event-channel" */
#define PATH_MAX_LEN 160

/* Routes the Xen libraries' own messages (they log errors) to the caller's logger. */
struct xtl_fwd {
    xentoollog_logger base; /* first: the libraries call back with its address */
    struct vchan *v;
};

struct xen_chan {
    struct vchan *v;
    struct xtl_fwd xtl;
    bool server;
    int peer;             /* the other domain */
    int self;             /* our domain, from xenstore's relative key `domid` */
    char path[PATH_MAX_LEN]; /* the rendezvous directory */
    bool own_path;        /* path is the caller's (libxenvchan's xs_path), not data/vchan's */
    xenevtchn_handle *xce;
    evtchn_port_t lport;  /* our end of the event channel */
    bool bound;
    xengntshr_handle *gs; /* server: pages we share */
    xengnttab_handle *gt; /* client: pages we map */
    struct xs_handle *xs;
    const uint8_t *ctrl;  /* the shared control page, for the peer's live byte */
    bool published;       /* server: path written, remove it on close */
    bool death_watch;     /* @releaseDomain watched (privileged callers) */
    bool death_pending;   /* a @releaseDomain event not yet checked */
    bool gone;            /* the peer domain no longer exists (sticky) */
    int epfd;             /* event channel + xenstore, when both must be polled; else -1 */
};

/* An OS errno as one of our codes. */
static int os_code(int e)
{
    switch (e) {
    case EACCES:
    case EPERM:
        return VCHAN_EPERM;
    case ENOMEM:
        return VCHAN_ENOMEM;
    default:
        return VCHAN_EIO;
    }
}

/* A device that is missing means "not on Xen" rather than an I/O failure. */
static int dev_code(int e)
{
    return e == ENOENT || e == ENODEV || e == ENXIO ? VCHAN_ENOSYS : os_code(e);
}

static void xtl_vmessage(xentoollog_logger *logger, xentoollog_level level, int errnoval,
                         const char *context, const char *format, va_list al)
    __attribute__((format(printf, 5, 0)));

static void xtl_vmessage(xentoollog_logger *logger, xentoollog_level level, int errnoval,
                         const char *context, const char *format, va_list al)
{
    struct xtl_fwd *fwd = (struct xtl_fwd *)logger;
    char msg[200];

    (void)level;
    vsnprintf(msg, sizeof(msg), format, al);
    /*
     * Debug only: when a call fails we record our own message (with errno)
     * at the failure site; the library's is background to it.
     */
    if (errnoval >= 0) {
        vchan__logf(fwd->v, VCHAN_LOG_DEBUG, "%s: %s: %s", context ? context : "xen", msg,
                    strerror(errnoval));
    } else {
        vchan__logf(fwd->v, VCHAN_LOG_DEBUG, "%s: %s", context ? context : "xen", msg);
    }
}

static void xtl_destroy(xentoollog_logger *logger)
{
    (void)logger; /* lives inside the channel state */
}

/* A peer-controlled string made safe to print: printable ASCII, at most 24 characters. */
static const char *shown(const char *s, unsigned len, char *buf, size_t buflen)
{
    size_t n = 0;
    unsigned i;

    for (i = 0; i < len && n + 4 < buflen && i < 24; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = c >= 0x20 && c < 0x7f && c != '\'' ? (char)c : '?';
    }
    if (i < len && n + 4 <= buflen) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* Our own domain id: the relative key `domid` (relative to our domain's home). */
static int read_self(struct xen_chan *x)
{
    char show[32];
    unsigned len = 0;
    uint64_t id;
    char *val;
    int rc = 0;

    val = xs_read(x->xs, XBT_NULL, "domid", &len);
    if (!val) {
        return vchan__errorf(x->v, os_code(errno), "xenstore: cannot read our own domid: %s",
                             strerror(errno));
    }
    if (!vchan__parse_dec(val, len, VCHAN_DOMID_MAX, &id)) {
        rc = vchan__errorf(x->v, VCHAN_EIO, "xenstore: our own domid is not a domain id: '%s'",
                           shown(val, len, show, sizeof(show)));
        goto out;
    }
    x->self = (int)id;
out:
    free(val);
    return rc;
}

/*
 * Closing next to a domain being destroyed can be slow (xenstored is busy
 * with it; the kernel waits for grants still in use): say which part was.
 */
static void note_slow(struct xen_chan *x, const char *what, uint64_t since_ms)
{
    uint64_t ms = vclock_now_ms() - since_ms;

    if (ms >= 50) {
        vchan__logf(x->v, VCHAN_LOG_DEBUG, "xen: %s took %llu ms", what, (unsigned long long)ms);
    }
}

/*
 * Does the peer domain still exist? Asked of xenstored, which forgets a
 * domain once it is dying (a zombie held by our own mappings counts as gone).
 * The query is privileged; an error is not taken as an answer.
 */
static void check_peer(struct xen_chan *x)
{
    bool alive;

    x->death_pending = false;
    errno = 0;
    alive = xs_is_domain_introduced(x->xs, (unsigned)x->peer);
    if (alive) {
        vchan__logf(x->v, VCHAN_LOG_DEBUG, "xen: @releaseDomain fired, domain %d is still there",
                    x->peer);
        return;
    }
    if (errno != 0) {
        vchan__logf(x->v, VCHAN_LOG_DEBUG, "xen: cannot tell whether domain %d exists: %s",
                    x->peer, strerror(errno));
        return;
    }
    vchan__logf(x->v, VCHAN_LOG_INFO, "xen: peer domain %d is gone", x->peer);
    x->gone = true;
}

/*
 * Collect queued watch events without blocking. Sets *path_fired for the
 * rendezvous watch; @releaseDomain events are only noted, and checked by
 * wait (while a client waits for its server the domain may not exist yet).
 */
static int drain_watches(struct xen_chan *x, bool *path_fired)
{
    char **ev;

    while ((ev = xs_check_watch(x->xs)) != NULL) {
        if (strcmp(ev[XS_WATCH_TOKEN], TOKEN_DEATH) == 0) {
            x->death_pending = true;
        } else if (strcmp(ev[XS_WATCH_TOKEN], TOKEN_PATH) == 0 && path_fired) {
            *path_fired = true;
        }
        free(ev);
    }
    if (errno != EAGAIN) {
        return vchan__errorf(x->v, VCHAN_EIO, "xs_check_watch: %s", strerror(errno));
    }
    return 0;
}

/*
 * A privileged caller watches @releaseDomain, so that a peer domain that is
 * destroyed (no kernel left to run its unmap-notify) still ends our waits.
 * Unprivileged callers cannot ask xenstored about other domains: skip it.
 *
 * The same question, asked once here, also stops a server for a client
 * domain that does not exist (never created, or already destroyed): before
 * anything is shared, with ENOENT. Pages and an event channel offered to a
 * domain id nobody holds can never be used (or, worse, would be found by a
 * later domain given that id), and sharing with a domain that is being torn
 * down is slow: a listener that republishes for a client domain which has
 * just been destroyed (libconduit's vchan://D/P) learns it here, at once.
 */
static int setup_death_watch(struct xen_chan *x)
{
    struct epoll_event ev;
    bool alive;
    uint64_t t;
    int xsfd;

    if (x->peer == x->self) {
        return 0; /* our own domain cannot vanish under us */
    }
    t = vclock_now_ms();
    errno = 0;
    alive = xs_is_domain_introduced(x->xs, (unsigned)x->peer);
    note_slow(x, "asking xenstored whether the peer domain exists", t);
    if (errno != 0) {
        vchan__logf(x->v, VCHAN_LOG_DEBUG,
                    "xen: no @releaseDomain watch (unprivileged: %s); a destroyed peer domain "
                    "shows only as a timeout",
                    strerror(errno));
        return 0;
    }
    if (!alive && x->server) {
        return vchan__errorf(x->v, VCHAN_ENOENT, "xen: client domain %d does not exist",
                             x->peer);
    }
    if (!xs_watch(x->xs, "@releaseDomain", TOKEN_DEATH)) {
        return vchan__errorf(x->v, os_code(errno), "xs_watch @releaseDomain: %s",
                             strerror(errno));
    }
    x->death_watch = true;
    xsfd = xs_fileno(x->xs);
    if (xsfd < 0) {
        return vchan__errorf(x->v, VCHAN_EIO, "xs_fileno: %s", strerror(errno));
    }
    /* One descriptor for vchan_fd that wakes for events and for the watch. */
    x->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (x->epfd < 0) {
        return vchan__errorf(x->v, os_code(errno), "epoll_create1: %s", strerror(errno));
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    if (epoll_ctl(x->epfd, EPOLL_CTL_ADD, xenevtchn_fd(x->xce), &ev) < 0 ||
        epoll_ctl(x->epfd, EPOLL_CTL_ADD, xsfd, &ev) < 0) {
        return vchan__errorf(x->v, os_code(errno), "epoll_ctl: %s", strerror(errno));
    }
    return 0;
}

static void xen_close(void *p)
{
    struct xen_chan *x = p;
    uint64_t t;

    if (!x) {
        return;
    }
    t = vclock_now_ms();
    if (x->published && !xs_rm(x->xs, XBT_NULL, x->path)) {
        vchan__logf(x->v, VCHAN_LOG_WARN, "xen: cannot remove %s: %s", x->path, strerror(errno));
    }
    note_slow(x, "xs_rm", t);
    if (x->epfd >= 0) {
        close(x->epfd);
    }
    t = vclock_now_ms();
    xs_close(x->xs); /* NULL is fine; also drops the watches */
    note_slow(x, "xs_close", t);
    t = vclock_now_ms();
    if (x->bound) {
        (void)xenevtchn_unbind(x->xce, x->lport);
    }
    if (x->xce) {
        xenevtchn_close(x->xce);
    }
    note_slow(x, "closing the event channel", t);
    t = vclock_now_ms();
    if (x->gs) {
        xengntshr_close(x->gs);
    }
    if (x->gt) {
        xengnttab_close(x->gt);
    }
    note_slow(x, "closing the grant device", t);
    vchan__logf(x->v, VCHAN_LOG_DEBUG, "xen: closed the %s side of %s",
                x->server ? "server" : "client", x->path[0] ? x->path : "a channel");
    vchan__hosted_free(x);
}

/* An absolute xenstore path of xenstore's characters, no empty component, room for a key. */
static bool xs_path_valid(const char *p)
{
    size_t n = strlen(p);

    if (n < 2 || n >= PATH_MAX_LEN || p[0] != '/' || p[n - 1] == '/' || strstr(p, "//")) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '@' || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

static int xen_open(void **out, struct vchan *v, const struct vchan_config *cfg, bool server)
{
    struct xen_chan *x;
    int rc = 0;
    int n;

    *out = NULL;
    x = vchan__hosted_alloc(sizeof(*x));
    if (!x) {
        return vchan__errorf(v, VCHAN_ENOMEM, "out of memory");
    }
    memset(x, 0, sizeof(*x));
    x->v = v;
    x->server = server;
    x->peer = cfg->domain;
    x->epfd = -1;
    x->xtl.base.vmessage = xtl_vmessage;
    x->xtl.base.destroy = xtl_destroy;
    x->xtl.v = v;

    x->xce = xenevtchn_open(&x->xtl.base, 0);
    if (!x->xce) {
        rc = vchan__errorf(v, dev_code(errno), "xenevtchn_open: %s", strerror(errno));
        goto out;
    }
    if (server) {
        x->gs = xengntshr_open(&x->xtl.base, 0);
        if (!x->gs) {
            rc = vchan__errorf(v, dev_code(errno), "xengntshr_open (is xen-gntalloc loaded?): %s",
                               strerror(errno));
            goto out;
        }
    } else {
        x->gt = xengnttab_open(&x->xtl.base, 0);
        if (!x->gt) {
            rc = vchan__errorf(v, dev_code(errno), "xengnttab_open (is xen-gntdev loaded?): %s",
                               strerror(errno));
            goto out;
        }
    }
    x->xs = xs_open(0);
    if (!x->xs) {
        rc = vchan__errorf(v, dev_code(errno), "xs_open: %s", strerror(errno));
        goto out;
    }
    if ((rc = read_self(x))) {
        goto out;
    }
    if (v->open_xs_path) {
        /* The caller's directory (libxenvchan's xs_path): any the server may write. */
        if (!xs_path_valid(v->open_xs_path)) {
            rc = vchan__errorf(v, VCHAN_EINVAL,
                               "not a xenstore path for a channel (absolute, at most %d "
                               "characters of [A-Za-z0-9/_@.-], no empty component): '%.64s'",
                               PATH_MAX_LEN - 1, v->open_xs_path);
            goto out;
        }
        snprintf(x->path, sizeof(x->path), "%s", v->open_xs_path);
        x->own_path = true;
    } else {
        /* The server's directory for its client, or the client's view of its server's. */
        n = snprintf(x->path, sizeof(x->path), "/local/domain/%d/data/vchan/%d/%s",
                     server ? x->self : x->peer, server ? x->peer : x->self, cfg->port);
        if (n < 0 || (size_t)n >= sizeof(x->path)) {
            rc = vchan__errorf(v, VCHAN_EINVAL, "xenstore path too long for port '%s'", cfg->port);
            goto out;
        }
    }
    if ((rc = setup_death_watch(x)) == 0) {
        vchan__logf(v, VCHAN_LOG_DEBUG, "xen: %s for domain %d at %s",
                    server ? "serving" : "client", x->peer, x->path);
    }
out:
    if (rc) {
        xen_close(x);
        return rc;
    }
    *out = x;
    return 0;
}

static int xen_evtchn_alloc_unbound(void *p, uint32_t *port)
{
    struct xen_chan *x = p;
    xenevtchn_port_or_error_t lp;

    lp = xenevtchn_bind_unbound_port(x->xce, (uint32_t)x->peer);
    if (lp < 0) {
        return vchan__errorf(x->v, os_code(errno), "xenevtchn_bind_unbound_port(dom%d): %s",
                             x->peer, strerror(errno));
    }
    x->lport = (evtchn_port_t)lp;
    x->bound = true;
    if (xenevtchn_unmask(x->xce, x->lport) < 0) {
        return vchan__errorf(x->v, VCHAN_EIO, "xenevtchn_unmask(%u): %s", x->lport,
                             strerror(errno));
    }
    *port = x->lport;
    return 0;
}

/*
 * A failed grant share. ENOSPC is gntalloc's page limit (1024 by default),
 * one count for every process of this domain together; every channel holds 1
 * control page plus its two rings' pages, so the error says where it is set.
 */
static int share_failed(struct xen_chan *x, const char *what, size_t npages)
{
    int e = errno;
    char limit[32] = "";
    FILE *f;

    if (e != ENOSPC) {
        return vchan__errorf(x->v, os_code(e), "%s(dom%d, %zu pages): %s", what, x->peer,
                             npages, strerror(e));
    }
    f = fopen("/sys/module/xen_gntalloc/parameters/limit", "r");
    if (f) {
        if (!fgets(limit, sizeof limit, f)) {
            limit[0] = '\0';
        }
        fclose(f);
    }
    limit[strcspn(limit, "\n")] = '\0';
    return vchan__errorf(x->v, os_code(e),
                         "%s(dom%d, %zu pages): %s: gntalloc's limit of %s shared pages in "
                         "this domain is reached (a channel holds 1 + its rings' pages; "
                         "raise it in /sys/module/xen_gntalloc/parameters/limit)",
                         what, x->peer, npages, strerror(e), limit[0] ? limit : "(unknown)");
}

static int xen_share(void *p, size_t npages, uint32_t *refs, int notify_offset, void **addr)
{
    struct xen_chan *x = p;
    void *pages;

    *addr = NULL;
    if (npages == 0 || npages > RING_PAGES_MAX || (notify_offset >= 0 && npages != 1) ||
        notify_offset >= (int)VCHAN__PAGE_SIZE) {
        return vchan__errorf(x->v, VCHAN_EINVAL, "xen: cannot share %zu pages (notify offset %d)",
                             npages, notify_offset);
    }
    if (notify_offset >= 0) {
        /* If we die, our kernel clears srv_live and signals the port: the peer sees us close. */
        pages = xengntshr_share_page_notify(x->gs, (uint32_t)x->peer, refs, 1,
                                            (uint32_t)notify_offset, x->lport);
        if (!pages) {
            return share_failed(x, "xengntshr_share_page_notify", 1);
        }
        x->ctrl = pages;
    } else {
        pages = xengntshr_share_pages(x->gs, (uint32_t)x->peer, (int)npages, refs, 1);
        if (!pages) {
            return share_failed(x, "xengntshr_share_pages", npages);
        }
    }
    /* gntalloc hands out zeroed pages; say so explicitly rather than rely on it. */
    memset(pages, 0, npages * VCHAN__PAGE_SIZE);
    *addr = pages;
    return 0;
}

static void xen_unshare(void *p, void *addr, size_t npages)
{
    struct xen_chan *x = p;
    uint64_t t = vclock_now_ms();

    if (addr == x->ctrl) {
        x->ctrl = NULL;
    }
    if (addr && xengntshr_unshare(x->gs, addr, (uint32_t)npages) < 0) {
        vchan__logf(x->v, VCHAN_LOG_WARN, "xengntshr_unshare: %s", strerror(errno));
    }
    note_slow(x, "xengntshr_unshare", t);
}

/* Write one key with its permissions inside transaction t. */
static bool write_key(struct xen_chan *x, xs_transaction_t t, const char *key, uint32_t value,
                      const char **failed)
{
    /* Owner: us, nobody else may do anything; then read access for the peer alone. */
    struct xs_permissions perms[2] = {
        { .id = (unsigned)x->self, .perms = XS_PERM_NONE },
        { .id = (unsigned)x->peer, .perms = XS_PERM_READ },
    };
    char path[PATH_MAX_LEN + 16];
    char val[16];
    int n;

    snprintf(path, sizeof(path), "%s/%s", x->path, key);
    n = snprintf(val, sizeof(val), "%u", value);
    if (!xs_write(x->xs, t, path, val, (unsigned)n)) {
        *failed = "xs_write";
        return false;
    }
    /* Our own domain already has every right as the owner. */
    if (!xs_set_permissions(x->xs, t, path, perms, x->peer == x->self ? 1 : 2)) {
        *failed = "xs_set_permissions";
        return false;
    }
    return true;
}

/*
 * xenstored answers ENOSPC (C xenstored) or EQUOTA-as-ENOSPC when a domain
 * has too many transactions open or too many nodes, and EBUSY when it is
 * overloaded: with many channels set up at once (a dom0 service serving
 * many guests) these pass as the others finish, so they are retried with
 * backoff; what remains is reported naming the limit
 * (QubesOS/qubes-issues#11059: the error was never shown).
 */
static bool quota_error(int err)
{
    return err == ENOSPC || err == EBUSY || err == EDQUOT;
}

static int quota_failure(struct xen_chan *x, const char *what, int err, unsigned tries)
{
    return vchan__errorf(x->v, os_code(err),
                         "%s %s: %s after %u tries over %d ms: xenstored's quota for this domain "
                         "(open transactions, or nodes) or its load; raise xenstored's "
                         "quota-max-transaction / quota-nb-entry-per-domain, or open fewer "
                         "channels at once",
                         what, x->path, strerror(err), tries, PUBLISH_RETRY_TOTAL_MS);
}

static int xen_publish(void *p, uint32_t ring_ref, uint32_t port)
{
    struct xen_chan *x = p;
    const char *failed = NULL;
    uint64_t deadline = vclock_deadline(PUBLISH_RETRY_TOTAL_MS);
    unsigned tries = 0;
    int backoff = 1;
    xs_transaction_t t;
    int err = 0;

    /* Both keys in one transaction, so a client never sees one without the other. */
    for (;; tries++) {
        if (tries > 0 && quota_error(err)) {
            if (vclock_left(deadline) == 0) {
                return quota_failure(x, failed ? failed : "xs_transaction_start", err, tries);
            }
            vclock_sleep_ms(backoff);
            backoff = backoff * 2 > PUBLISH_BACKOFF_MAX_MS ? PUBLISH_BACKOFF_MAX_MS : backoff * 2;
        }
        failed = NULL;
        t = xs_transaction_start(x->xs);
        if (t == XBT_NULL) {
            err = errno;
            if (quota_error(err)) {
                continue;
            }
            return vchan__errorf(x->v, os_code(err), "xs_transaction_start: %s", strerror(err));
        }
        if (!write_key(x, t, "ring-ref", ring_ref, &failed) ||
            !write_key(x, t, "event-channel", port, &failed)) {
            err = errno;
            (void)xs_transaction_end(x->xs, t, true);
            if (quota_error(err)) {
                continue;
            }
            return vchan__errorf(x->v, os_code(err), "%s %s: %s", failed, x->path, strerror(err));
        }
        if (xs_transaction_end(x->xs, t, false)) {
            break;
        }
        err = errno;
        if (err == EAGAIN) {
            /* Another writer raced us in xenstored; the transaction is simply redone. */
            continue;
        }
        if (quota_error(err)) {
            failed = "xs_transaction_end";
            continue;
        }
        return vchan__errorf(x->v, os_code(err), "xs_transaction_end %s: %s", x->path,
                             strerror(err));
    }
    x->published = true;
    vchan__logf(x->v, VCHAN_LOG_DEBUG, "xen: published %s (ring-ref %u, event-channel %u)",
                x->path, ring_ref, port);
    return 0;
}

/*
 * Read one rendezvous key. -VCHAN_ENOENT when it is not there (yet):
 * xenstored answers EACCES rather than ENOENT for a missing node whose
 * nearest existing ancestor we may not read, so both mean "not yet".
 */
static int read_key(struct xen_chan *x, const char *key, uint64_t max, uint32_t *out,
                    int *absent_errno)
{
    char path[PATH_MAX_LEN + 16];
    char show[32];
    unsigned len = 0;
    uint64_t n;
    char *val;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", x->path, key);
    val = xs_read(x->xs, XBT_NULL, path, &len); /* peer-controlled */
    if (!val) {
        if (errno == ENOENT || errno == EACCES) {
            *absent_errno = errno;
            return -VCHAN_ENOENT;
        }
        return vchan__errorf(x->v, os_code(errno), "xs_read %s: %s", path, strerror(errno));
    }
    if (!vchan__parse_dec(val, len, max, &n) || n == 0) {
        rc = vchan__errorf(x->v, VCHAN_EPROTO, "xenstore %s: invalid value '%s'", path,
                           shown(val, len, show, sizeof(show)));
        goto out;
    }
    *out = (uint32_t)n;
out:
    free(val);
    return rc;
}

static int read_keys(struct xen_chan *x, uint32_t *ring_ref, uint32_t *port, int *absent_errno)
{
    int rc;

    if ((rc = read_key(x, "ring-ref", UINT32_MAX, ring_ref, absent_errno))) {
        return rc;
    }
    return read_key(x, "event-channel", PORT_LIMIT - 1, port, absent_errno);
}

static int xen_lookup(void *p, int timeout_ms, uint32_t *ring_ref, uint32_t *port)
{
    struct xen_chan *x = p;
    uint64_t deadline = vclock_deadline(timeout_ms);
    bool watching = false;
    int absent_errno = ENOENT;
    int rc;

    for (;;) {
        struct pollfd pfd;
        bool fired = false;
        int ms = LOOKUP_RECHECK_MS, left;

        rc = read_keys(x, ring_ref, port, &absent_errno);
        if (rc != -VCHAN_ENOENT) {
            break; /* found, or an error already recorded */
        }
        if ((left = vclock_left(deadline)) == 0) {
            rc = vchan__errorf(x->v, VCHAN_ETIMEDOUT, "no vchan server at %s after %d ms%s",
                               x->path, timeout_ms,
                               absent_errno == EACCES ? " (not readable yet)" : "");
            break;
        }
        if (left > 0 && left < ms) {
            ms = left;
        }
        if (!watching) {
            /* Watch, then read again: a write between our read and the watch is not lost. */
            if (!xs_watch(x->xs, x->path, TOKEN_PATH)) {
                rc = vchan__errorf(x->v, os_code(errno), "xs_watch %s: %s", x->path,
                                   strerror(errno));
                break;
            }
            watching = true;
            continue;
        }
        pfd.fd = xs_fileno(x->xs);
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (pfd.fd < 0) {
            rc = vchan__errorf(x->v, VCHAN_EIO, "xs_fileno: %s", strerror(errno));
            break;
        }
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR) {
            rc = vchan__errorf(x->v, VCHAN_EIO, "poll: %s", strerror(errno));
            break;
        }
        if ((rc = drain_watches(x, &fired))) {
            break;
        }
        if (fired) {
            vchan__logf(x->v, VCHAN_LOG_DEBUG, "xen: watch fired on %s", x->path);
        }
    }
    if (watching) {
        /* Events of this watch still queued are skipped by drain_watches from now on. */
        (void)xs_unwatch(x->xs, x->path, TOKEN_PATH);
    }
    return rc;
}

static int xen_evtchn_bind(void *p, uint32_t remote_port)
{
    struct xen_chan *x = p;
    xenevtchn_port_or_error_t lp;

    lp = xenevtchn_bind_interdomain(x->xce, (uint32_t)x->peer, remote_port);
    if (lp < 0) {
        /* Most often a stale entry: its server died without removing it. */
        return vchan__errorf(x->v, os_code(errno),
                             "xenevtchn_bind_interdomain(dom%d, port %u) for %s: %s", x->peer,
                             remote_port, x->path, strerror(errno));
    }
    x->lport = (evtchn_port_t)lp;
    x->bound = true;
    if (xenevtchn_unmask(x->xce, x->lport) < 0) {
        return vchan__errorf(x->v, VCHAN_EIO, "xenevtchn_unmask(%u): %s", x->lport,
                             strerror(errno));
    }
    return 0;
}

static int xen_map(void *p, const uint32_t *refs, size_t npages, bool writable, int notify_offset,
                   void **addr)
{
    struct xen_chan *x = p;
    uint32_t copy[RING_PAGES_MAX];
    int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
    void *pages;

    *addr = NULL;
    if (npages == 0 || npages > RING_PAGES_MAX || (notify_offset >= 0 && npages != 1) ||
        notify_offset >= (int)VCHAN__PAGE_SIZE) {
        return vchan__errorf(x->v, VCHAN_EINVAL, "xen: cannot map %zu pages (notify offset %d)",
                             npages, notify_offset);
    }
    if (notify_offset >= 0) {
        /* If we die, our kernel clears cli_live and signals the port: the server sees us close. */
        pages = xengnttab_map_grant_ref_notify(x->gt, (uint32_t)x->peer, refs[0], prot,
                                               (uint32_t)notify_offset, x->lport);
        if (!pages) {
            return vchan__errorf(x->v, os_code(errno),
                                 "xengnttab_map_grant_ref_notify(dom%d, ref %u): %s", x->peer,
                                 refs[0], strerror(errno));
        }
        x->ctrl = pages;
    } else {
        /* The library wants a mutable array; refs is our private copy's, so copy again. */
        memcpy(copy, refs, npages * sizeof(copy[0]));
        pages = xengnttab_map_domain_grant_refs(x->gt, (uint32_t)npages, (uint32_t)x->peer, copy,
                                                prot);
        if (!pages) {
            return vchan__errorf(x->v, os_code(errno),
                                 "xengnttab_map_domain_grant_refs(dom%d, %zu pages): %s", x->peer,
                                 npages, strerror(errno));
        }
    }
    *addr = pages;
    return 0;
}

static void xen_unmap(void *p, void *addr, size_t npages)
{
    struct xen_chan *x = p;
    uint64_t t = vclock_now_ms();

    if (addr == x->ctrl) {
        x->ctrl = NULL;
    }
    if (addr && xengnttab_unmap(x->gt, addr, (uint32_t)npages) < 0) {
        vchan__logf(x->v, VCHAN_LOG_WARN, "xengnttab_unmap: %s", strerror(errno));
    }
    note_slow(x, "xengnttab_unmap", t);
}

static int xen_notify(void *p)
{
    struct xen_chan *x = p;

    if (xenevtchn_notify(x->xce, x->lport) < 0) {
        return vchan__errorf(x->v, VCHAN_EIO, "xenevtchn_notify(%u): %s", x->lport,
                             strerror(errno));
    }
    return 0;
}

/*
 * The peer domain is gone. If it had closed the channel first (a domU that
 * sent everything, closed and powered off), that is a hang-up like any
 * close: unread data is still delivered, then end-of-file. If its live byte
 * still says open, it died mid-conversation: an error, so that a receiver
 * cannot take a truncated stream for a whole one.
 */
static int peer_vanished(struct xen_chan *x, bool *hangup)
{
    size_t off = x->server ? offsetof(struct vchan__wire, cli_live)
                           : offsetof(struct vchan__wire, srv_live);
    uint8_t live = VCHAN__LIVE_CLOSED;

    *hangup = true;
    if (x->ctrl) {
        live = vchan__load_acquire(x->ctrl + off); /* peer-controlled: only compared */
    }
    if (live == VCHAN__LIVE_CLOSED) {
        return 0;
    }
    return vchan__errorf(x->v, VCHAN_EPIPE, "peer domain %d is gone without closing the channel",
                         x->peer);
}

static int xen_wait(void *p, int timeout_ms, bool *hangup)
{
    struct xen_chan *x = p;
    struct pollfd pfd[2];
    nfds_t nfds = 1;
    int n, rc;

    *hangup = false;
    if (x->death_pending) {
        /* An event drained while the client looked for its server: check it now. */
        check_peer(x);
    }
    if (x->gone) {
        return peer_vanished(x, hangup);
    }
    pfd[0].fd = xenevtchn_fd(x->xce);
    pfd[0].events = POLLIN;
    pfd[0].revents = 0;
    if (x->death_watch) {
        pfd[1].fd = xs_fileno(x->xs);
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;
        nfds = 2;
    }
    n = poll(pfd, nfds, timeout_ms < 0 ? -1 : timeout_ms);
    if (n < 0) {
        if (errno == EINTR) {
            return 0; /* a spurious wake-up: the caller re-checks and waits again */
        }
        return vchan__errorf(x->v, VCHAN_EIO, "poll: %s", strerror(errno));
    }
    if (n == 0) {
        return timeout_ms == 0 ? -VCHAN_EAGAIN : -VCHAN_ETIMEDOUT;
    }
    if (nfds == 2 && pfd[1].revents) {
        if ((rc = drain_watches(x, NULL))) {
            return rc;
        }
        if (x->death_pending) {
            check_peer(x);
        }
    }
    if (pfd[0].revents & (POLLERR | POLLNVAL)) {
        return vchan__errorf(x->v, VCHAN_EIO, "event channel device failed");
    }
    if (pfd[0].revents & POLLIN) {
        /* Only after poll said so: the device's read may block despite O_NONBLOCK. */
        xenevtchn_port_or_error_t got = xenevtchn_pending(x->xce);
        if (got < 0) {
            return vchan__errorf(x->v, VCHAN_EIO, "xenevtchn_pending: %s", strerror(errno));
        }
        /* Delivery masked the port; unmask so the next signal wakes us again. */
        if (xenevtchn_unmask(x->xce, (evtchn_port_t)got) < 0) {
            return vchan__errorf(x->v, VCHAN_EIO, "xenevtchn_unmask(%d): %s", (int)got,
                                 strerror(errno));
        }
    }
    if (x->gone) {
        return peer_vanished(x, hangup);
    }
    return 0;
}

static int xen_fd(void *p)
{
    struct xen_chan *x = p;

    return x->epfd >= 0 ? x->epfd : xenevtchn_fd(x->xce);
}

int vchan__xen_event(const struct vchan *v, struct xenevtchn_handle **xce, uint32_t *port,
                     int *self)
{
    const struct xen_chan *x;

    if (!v || v->plat != &vchan__platform_xen || !v->p) {
        return -VCHAN_EINVAL;
    }
    x = v->p;
    *xce = x->xce;
    *port = x->lport;
    *self = x->self;
    return 0;
}

int vchan__xen_self_domid(int *self)
{
    struct xs_handle *xs = xs_open(0);
    unsigned len = 0;
    uint64_t id;
    char *val;
    int rc = -VCHAN_EIO;

    if (!xs) {
        return -dev_code(errno);
    }
    val = xs_read(xs, XBT_NULL, "domid", &len);
    if (!val) {
        rc = -os_code(errno);
    } else if (vchan__parse_dec(val, len, VCHAN_DOMID_MAX, &id)) {
        *self = (int)id;
        rc = 0;
    }
    free(val);
    xs_close(xs);
    return rc;
}

bool vchan__xen_peer_gone(struct vchan *v)
{
    struct xen_chan *x;

    if (!v || v->plat != &vchan__platform_xen || !v->p) {
        return false;
    }
    x = v->p;
    if (!x->gone && x->death_watch) {
        check_peer(x); /* an error is not taken as an answer */
    }
    return x->gone;
}

void vchan__xen_unpublish(struct vchan *v)
{
    struct xen_chan *x;
    char dir[PATH_MAX_LEN];
    char *slash;

    if (!v || v->plat != &vchan__platform_xen || !v->p || !((struct xen_chan *)v->p)->published) {
        return;
    }
    x = v->p;
    x->published = false;
    snprintf(dir, sizeof(dir), "%s", x->path);
    slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
    }
    /* One transaction, so that a sibling published meanwhile keeps its directory. */
    for (;;) {
        xs_transaction_t t = xs_transaction_start(x->xs);
        unsigned n = 0;
        char **list;

        if (t == XBT_NULL) {
            vchan__logf(v, VCHAN_LOG_WARN, "xen: cannot remove %s: %s", x->path, strerror(errno));
            return;
        }
        (void)xs_rm(x->xs, t, x->path);
        /* Empty but for our own entry (whether or not the listing sees the rm above). */
        /* The <client> directory is ours to remove only under data/vchan. */
        list = x->own_path ? NULL : xs_directory(x->xs, t, dir, &n);
        if (list && (n == 0 || (n == 1 && slash && strcmp(list[0], slash + 1) == 0))) {
            (void)xs_rm(x->xs, t, dir);
        }
        free(list);
        if (xs_transaction_end(x->xs, t, false) || errno != EAGAIN) {
            return;
        }
    }
}

const struct vchan__platform vchan__platform_xen = {
    .name = "xen",
    .open = xen_open,
    .close = xen_close,
    .evtchn_alloc_unbound = xen_evtchn_alloc_unbound,
    .share = xen_share,
    .unshare = xen_unshare,
    .publish = xen_publish,
    .lookup = xen_lookup,
    .evtchn_bind = xen_evtchn_bind,
    .map = xen_map,
    .unmap = xen_unmap,
    .notify = xen_notify,
    .wait = xen_wait,
    .fd = xen_fd,
    .now_ms = vchan__hosted_now_ms,
    /* A fine clock lets blocking calls (and vchan_poll) spin briefly before sleeping. */
    .now_ns = vchan__hosted_now_ns,
    .alloc = vchan__hosted_alloc,
    .free = vchan__hosted_free,
    .log = vchan__hosted_log,
};
