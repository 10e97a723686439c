/* SPDX-License-Identifier: ISC */
/*
 * fake_xen.c: the functions of libxengnttab, libxenevtchn and libxenstore
 * that libvchan/platform/xen.c and libconduit/rendezvous/xen.c call, over
 * process memory (fake_xen.h says how each is modelled). Test-only: linked
 * into tests/unit/test_xen_platform and test_rendezvous_xen in place of the
 * real libraries. Written from the libraries' public headers; no code of
 * theirs.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memfd_create, pipe2 */
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#include "fake_xen.h"

#define PAGE 4096u
#define NGRANTS 4096u
#define FIRST_GRANT 8u /* Xen reserves the first few references */
#define NPORTS 512u
#define MAX_DOMS 64u
#define MAX_PERMS 8u

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Per thread, so a server thread and a client thread can be two domains. */
static _Thread_local int cur_domid;
static bool privileged = true;
static int fail_commits, commits, fail_starts, fail_starts_errno;
static int doms[MAX_DOMS];
static unsigned ndoms;

/* ---------------------------------------------------------------- grants */

struct grant {
    bool used;
    int owner, peer; /* the sharing domain and the one allowed to map */
    int fd;          /* the share's memfd (owned by the share) */
    off_t off;
};

/* One contiguous range shared or mapped through a handle. */
struct range {
    void *addr;
    size_t npages;
    uint32_t *refs; /* shares only */
    int fd;         /* shares only */
    int notify_off; /* -1: none */
    evtchn_port_t notify_port;
    struct range *next;
};

/* xengntshr_handle and xengnttab_handle are both struct xengntdev_handle. */
struct xengntdev_handle {
    int dom;
    struct range *ranges;
};

static struct grant grants[NGRANTS];

/* ---------------------------------------------------------- event channels */

struct port {
    bool used;
    struct xenevtchn_handle *h;
    int dom, remote_dom;
    evtchn_port_t remote; /* 0: unbound */
    bool masked, pending;
};

struct xenevtchn_handle {
    int dom;
    int rfd, wfd; /* pending port numbers, 4 bytes each */
};

static struct port ports[NPORTS]; /* port 0 is never used */

/* ---------------------------------------------------------------- xenstore */

struct node {
    char *path, *val;
    unsigned len;
    struct xs_permissions perms[MAX_PERMS]; /* [0]: owner and everyone's default */
    unsigned nperms;
    struct node *next;
};

struct watch {
    struct xs_handle *h;
    char *path, *token;
    struct watch *next;
};

struct event {
    char *path, *token;
    struct event *next;
};

enum txkind { TX_WRITE, TX_PERMS, TX_RM, TX_MKDIR };

struct txop {
    enum txkind kind;
    char *path, *val;
    unsigned len;
    struct xs_permissions perms[MAX_PERMS];
    unsigned nperms;
    struct txop *next;
};

struct xs_handle {
    int dom;
    int rfd, wfd; /* one byte per queued watch event */
    struct event *events;
    xs_transaction_t tx;
    struct txop *ops;
};

static struct node *nodes;
static struct watch *watches;
static xs_transaction_t next_tx = 1;

/* ------------------------------------------------------------------ helpers */

static int set_errno(int e)
{
    errno = e;
    return -1;
}

static bool dom_known(int d)
{
    if (d == 0) {
        return true;
    }
    for (unsigned i = 0; i < ndoms; i++) {
        if (doms[i] == d) {
            return true;
        }
    }
    return false;
}

static int make_pipe(int *rfd, int *wfd)
{
    int p[2];

    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        return -1;
    }
    *rfd = p[0];
    *wfd = p[1];
    return 0;
}

/* --------------------------------------------------------- event channels */

static void deliver(evtchn_port_t n)
{
    struct port *p = &ports[n];
    ssize_t w;

    if (n == 0 || n >= NPORTS || !p->used) {
        return;
    }
    if (p->masked) {
        p->pending = true;
        return;
    }
    p->masked = true; /* as Linux's evtchn device does on delivery */
    w = write(p->h->wfd, &n, sizeof(n));
    (void)w;
}

static void port_free(evtchn_port_t n)
{
    struct port *p = &ports[n];

    if (p->remote && ports[p->remote].used) {
        ports[p->remote].remote = 0; /* the other end becomes unbound */
    }
    memset(p, 0, sizeof(*p));
}

static struct port *own_port(xenevtchn_handle *h, evtchn_port_t n)
{
    if (n == 0 || n >= NPORTS || !ports[n].used || ports[n].h != h) {
        return NULL;
    }
    return &ports[n];
}

static xenevtchn_port_or_error_t port_alloc(xenevtchn_handle *h, int remote_dom)
{
    for (evtchn_port_t n = 1; n < NPORTS; n++) {
        if (!ports[n].used) {
            ports[n] = (struct port){ .used = true, .h = h, .dom = h->dom,
                                      .remote_dom = remote_dom };
            return (xenevtchn_port_or_error_t)n;
        }
    }
    return set_errno(ENOSPC);
}

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned int flags)
{
    xenevtchn_handle *h = calloc(1, sizeof(*h));

    (void)logger;
    (void)flags;
    if (!h) {
        return NULL;
    }
    if (make_pipe(&h->rfd, &h->wfd) < 0) {
        free(h);
        return NULL;
    }
    h->dom = cur_domid;
    return h;
}

int xenevtchn_close(xenevtchn_handle *h)
{
    if (!h) {
        return 0;
    }
    pthread_mutex_lock(&lock);
    for (evtchn_port_t n = 1; n < NPORTS; n++) {
        if (ports[n].used && ports[n].h == h) {
            port_free(n);
        }
    }
    pthread_mutex_unlock(&lock);
    close(h->rfd);
    close(h->wfd);
    free(h);
    return 0;
}

int xenevtchn_fd(xenevtchn_handle *h)
{
    return h->rfd;
}

int xenevtchn_notify(xenevtchn_handle *h, evtchn_port_t port)
{
    struct port *p;
    int rc = 0;

    pthread_mutex_lock(&lock);
    if (!(p = own_port(h, port))) {
        rc = set_errno(EINVAL);
    } else if (p->remote) {
        deliver(p->remote);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

xenevtchn_port_or_error_t xenevtchn_bind_unbound_port(xenevtchn_handle *h, uint32_t domid)
{
    xenevtchn_port_or_error_t n;

    pthread_mutex_lock(&lock);
    n = port_alloc(h, (int)domid);
    pthread_mutex_unlock(&lock);
    return n;
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *h, uint32_t domid,
                                                     evtchn_port_t remote_port)
{
    xenevtchn_port_or_error_t n = -1;
    struct port *r;

    pthread_mutex_lock(&lock);
    r = remote_port > 0 && remote_port < NPORTS ? &ports[remote_port] : NULL;
    if (!r || !r->used || r->dom != (int)domid || r->remote_dom != h->dom || r->remote) {
        errno = EINVAL;
    } else if ((n = port_alloc(h, (int)domid)) > 0) {
        ports[n].remote = remote_port;
        r->remote = (evtchn_port_t)n;
    }
    pthread_mutex_unlock(&lock);
    return n;
}

int xenevtchn_unbind(xenevtchn_handle *h, evtchn_port_t port)
{
    int rc = 0;

    pthread_mutex_lock(&lock);
    if (!own_port(h, port)) {
        rc = set_errno(EINVAL);
    } else {
        port_free(port);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *h)
{
    evtchn_port_t n;
    ssize_t r = read(h->rfd, &n, sizeof(n));

    if (r != (ssize_t)sizeof(n)) {
        return set_errno(r < 0 ? errno : EIO);
    }
    return (xenevtchn_port_or_error_t)n;
}

int xenevtchn_unmask(xenevtchn_handle *h, evtchn_port_t port)
{
    struct port *p;
    int rc = 0;

    pthread_mutex_lock(&lock);
    if (!(p = own_port(h, port))) {
        rc = set_errno(EINVAL);
    } else {
        p->masked = false;
        if (p->pending) {
            p->pending = false;
            deliver(port);
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

/* ----------------------------------------------------------------- grants */

static struct xengntdev_handle *gnt_open(void)
{
    struct xengntdev_handle *h = calloc(1, sizeof(*h));

    if (h) {
        h->dom = cur_domid;
    }
    return h;
}

/* Unmap-notify: clear the byte, signal the port (lock held). */
static void range_notify(struct range *r)
{
    if (r->notify_off >= 0) {
        ((volatile uint8_t *)r->addr)[r->notify_off] = 0;
        if (r->notify_port && r->notify_port < NPORTS && ports[r->notify_port].used &&
            ports[r->notify_port].remote) {
            deliver(ports[r->notify_port].remote);
        }
    }
}

/* Remove the range starting at addr from h (lock held); NULL if none. */
static struct range *range_take(struct xengntdev_handle *h, void *addr, uint32_t count)
{
    for (struct range **pp = &h->ranges; *pp; pp = &(*pp)->next) {
        struct range *r = *pp;
        if (r->addr == addr && r->npages == count) {
            *pp = r->next;
            return r;
        }
    }
    return NULL;
}

static void range_release(struct range *r)
{
    range_notify(r);
    munmap(r->addr, r->npages * PAGE);
    if (r->refs) {
        for (size_t i = 0; i < r->npages; i++) {
            memset(&grants[r->refs[i]], 0, sizeof(grants[0]));
        }
        free(r->refs);
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    free(r);
}

static void gnt_close(struct xengntdev_handle *h)
{
    if (!h) {
        return;
    }
    pthread_mutex_lock(&lock);
    while (h->ranges) {
        struct range *r = h->ranges;
        h->ranges = r->next;
        range_release(r);
    }
    pthread_mutex_unlock(&lock);
    free(h);
}

static int gnt_unmap(struct xengntdev_handle *h, void *addr, uint32_t count)
{
    struct range *r;

    pthread_mutex_lock(&lock);
    r = range_take(h, addr, count);
    if (r) {
        range_release(r);
    }
    pthread_mutex_unlock(&lock);
    return r ? 0 : set_errno(EINVAL);
}

xengntshr_handle *xengntshr_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger;
    (void)open_flags;
    return gnt_open();
}

int xengntshr_close(xengntshr_handle *h)
{
    gnt_close(h);
    return 0;
}

static void *share(xengntshr_handle *h, uint32_t domid, int count, uint32_t *refs, int notify_off,
                   evtchn_port_t notify_port)
{
    struct range *r = NULL;
    size_t got = 0;
    void *addr = MAP_FAILED;
    int fd = -1;

    if (count <= 0 || count > 1024) {
        errno = EINVAL;
        return NULL;
    }
    fd = memfd_create("fake-xen-grant", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)count * PAGE) < 0) {
        goto fail;
    }
    addr = mmap(NULL, (size_t)count * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED || !(r = calloc(1, sizeof(*r))) ||
        !(r->refs = calloc((size_t)count, sizeof(r->refs[0])))) {
        goto fail;
    }
    pthread_mutex_lock(&lock);
    for (uint32_t g = FIRST_GRANT; g < NGRANTS && got < (size_t)count; g++) {
        if (!grants[g].used) {
            grants[g] = (struct grant){ .used = true, .owner = h->dom, .peer = (int)domid,
                                        .fd = fd, .off = (off_t)got * PAGE };
            r->refs[got++] = g;
        }
    }
    if (got < (size_t)count) {
        for (size_t i = 0; i < got; i++) {
            memset(&grants[r->refs[i]], 0, sizeof(grants[0]));
        }
        pthread_mutex_unlock(&lock);
        errno = ENOSPC;
        goto fail;
    }
    r->addr = addr;
    r->npages = (size_t)count;
    r->fd = fd;
    r->notify_off = notify_off;
    r->notify_port = notify_port;
    r->next = h->ranges;
    h->ranges = r;
    pthread_mutex_unlock(&lock);
    memcpy(refs, r->refs, (size_t)count * sizeof(refs[0]));
    return addr;

fail:
    if (r) {
        free(r->refs);
        free(r);
    }
    if (addr != MAP_FAILED) {
        munmap(addr, (size_t)count * PAGE);
    }
    if (fd >= 0) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return NULL;
}

void *xengntshr_share_pages(xengntshr_handle *h, uint32_t domid, int count, uint32_t *refs,
                            int writable)
{
    (void)writable;
    return share(h, domid, count, refs, -1, 0);
}

void *xengntshr_share_page_notify(xengntshr_handle *h, uint32_t domid, uint32_t *ref,
                                  int writable, uint32_t notify_offset,
                                  evtchn_port_t notify_port)
{
    (void)writable;
    if (notify_offset >= PAGE) {
        errno = EINVAL;
        return NULL;
    }
    return share(h, domid, 1, ref, (int)notify_offset, notify_port);
}

int xengntshr_unshare(xengntshr_handle *h, void *start_address, uint32_t count)
{
    return gnt_unmap(h, start_address, count);
}

xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger;
    (void)open_flags;
    return gnt_open();
}

int xengnttab_close(xengnttab_handle *h)
{
    gnt_close(h);
    return 0;
}

static void *map(xengnttab_handle *h, uint32_t count, uint32_t domid, const uint32_t *refs,
                 int prot, int notify_off, evtchn_port_t notify_port)
{
    struct range *r;
    uint8_t *addr;

    if (count == 0 || count > 1024) {
        errno = EINVAL;
        return NULL;
    }
    addr = mmap(NULL, (size_t)count * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (addr == MAP_FAILED || !(r = calloc(1, sizeof(*r)))) {
        if (addr != MAP_FAILED) {
            munmap(addr, (size_t)count * PAGE);
        }
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&lock);
    for (uint32_t i = 0; i < count; i++) {
        const struct grant *g = refs[i] < NGRANTS ? &grants[refs[i]] : NULL;

        /* Only the domain the grant names may map it, and only from its owner. */
        if (!g || !g->used || g->owner != (int)domid || g->peer != h->dom ||
            mmap(addr + (size_t)i * PAGE, PAGE, prot, MAP_SHARED | MAP_FIXED, g->fd, g->off) ==
                MAP_FAILED) {
            pthread_mutex_unlock(&lock);
            munmap(addr, (size_t)count * PAGE);
            free(r);
            errno = EINVAL;
            return NULL;
        }
    }
    r->addr = addr;
    r->npages = count;
    r->fd = -1;
    r->notify_off = (prot & PROT_WRITE) ? notify_off : -1;
    r->notify_port = notify_port;
    r->next = h->ranges;
    h->ranges = r;
    pthread_mutex_unlock(&lock);
    return addr;
}

void *xengnttab_map_domain_grant_refs(xengnttab_handle *h, uint32_t count, uint32_t domid,
                                      uint32_t *refs, int prot)
{
    return map(h, count, domid, refs, prot, -1, 0);
}

void *xengnttab_map_grant_ref_notify(xengnttab_handle *h, uint32_t domid, uint32_t ref, int prot,
                                     uint32_t notify_offset, evtchn_port_t notify_port)
{
    if (notify_offset >= PAGE) {
        errno = EINVAL;
        return NULL;
    }
    return map(h, 1, domid, &ref, prot, (int)notify_offset, notify_port);
}

int xengnttab_unmap(xengnttab_handle *h, void *start_address, uint32_t count)
{
    return gnt_unmap(h, start_address, count);
}

/* ---------------------------------------------------------------- xenstore */

/* Is `path` equal to `top` or below it (by whole components)? */
static bool under(const char *path, const char *top)
{
    size_t n = strlen(top);

    return strncmp(path, top, n) == 0 && (path[n] == '\0' || path[n] == '/' || top[n - 1] == '/');
}

/* A path as xenstored sees it: relative ones are under the caller's home. */
static char *full_path(int dom, const char *path)
{
    char *p;

    if (path[0] == '/' || path[0] == '@') {
        return strdup(path);
    }
    if (asprintf(&p, "/local/domain/%d/%s", dom, path) < 0) {
        return NULL;
    }
    return p;
}

static struct node *node_find(const char *path)
{
    for (struct node *n = nodes; n; n = n->next) {
        if (strcmp(n->path, path) == 0) {
            return n;
        }
    }
    return NULL;
}

static bool may(const struct node *n, int dom, unsigned want)
{
    if (dom == 0 || (int)n->perms[0].id == dom) {
        return true;
    }
    for (unsigned i = 1; i < n->nperms; i++) {
        if ((int)n->perms[i].id == dom) {
            return (n->perms[i].perms & want) == want;
        }
    }
    return (n->perms[0].perms & want) == want;
}

static void queue_event(struct xs_handle *h, const char *path, const char *token)
{
    struct event *e = calloc(1, sizeof(*e)), **pp;
    ssize_t w;

    if (!e || !(e->path = strdup(path)) || !(e->token = strdup(token))) {
        if (e) {
            free(e->path);
            free(e);
        }
        return;
    }
    for (pp = &h->events; *pp; pp = &(*pp)->next) {
    }
    *pp = e;
    w = write(h->wfd, "", 1);
    (void)w;
}

/* Fire the watches a change at `path` concerns (removed: also those below it). */
static void fire(const char *path, bool removed)
{
    for (struct watch *w = watches; w; w = w->next) {
        if (w->path[0] == '@') {
            continue;
        }
        if (under(path, w->path) || (removed && under(w->path, path))) {
            queue_event(w->h, path, w->token);
        }
    }
}

static void node_free(struct node *n)
{
    free(n->path);
    free(n->val);
    free(n);
}

/*
 * A node and its missing ancestors, as xenstored makes them (lock held):
 * creating one needs write access to its parent; it takes the parent's
 * permissions, owned by its creator (dom0 creates for the parent's owner).
 */
static struct node *node_make(int dom, const char *path)
{
    struct node *n = node_find(path), *parent = NULL;
    const char *slash = strrchr(path, '/');

    if (n) {
        return n;
    }
    if (slash && slash != path) {
        char *up = strndup(path, (size_t)(slash - path));

        parent = up ? node_make(dom, up) : NULL;
        free(up);
        if (!parent) {
            return NULL;
        }
        if (!may(parent, dom, XS_PERM_WRITE)) {
            errno = EACCES;
            return NULL;
        }
    } else if (dom != 0) {
        errno = EACCES; /* only dom0 makes top-level nodes */
        return NULL;
    }
    if (!(n = calloc(1, sizeof(*n))) || !(n->path = strdup(path)) || !(n->val = strdup(""))) {
        if (n) {
            free(n->path);
            free(n);
        }
        errno = ENOMEM;
        return NULL;
    }
    if (parent) {
        memcpy(n->perms, parent->perms, sizeof(n->perms));
        n->nperms = parent->nperms;
    } else {
        n->nperms = 1;
    }
    if (dom != 0) {
        n->perms[0].id = (unsigned)dom;
    }
    n->next = nodes;
    nodes = n;
    return n;
}

/* Write a node (lock held), making it and its ancestors when missing. */
static bool node_write(int dom, const char *path, const char *val, unsigned len)
{
    struct node *n = node_find(path);
    char *copy = malloc((size_t)len + 1);

    if (!copy) {
        errno = ENOMEM;
        return false;
    }
    memcpy(copy, val, len);
    copy[len] = '\0';
    if (n && !may(n, dom, XS_PERM_WRITE)) {
        free(copy);
        errno = EACCES;
        return false;
    }
    if (!n && !(n = node_make(dom, path))) {
        free(copy);
        return false;
    }
    free(n->val);
    n->val = copy;
    n->len = len;
    fire(path, false);
    return true;
}

static bool node_perms(int dom, const char *path, const struct xs_permissions *perms,
                       unsigned num)
{
    struct node *n = node_find(path);

    if (!n) {
        errno = ENOENT;
        return false;
    }
    if (dom != 0 && (int)n->perms[0].id != dom) {
        errno = EACCES;
        return false;
    }
    if (num == 0 || num > MAX_PERMS) {
        errno = EINVAL;
        return false;
    }
    memcpy(n->perms, perms, num * sizeof(perms[0]));
    n->nperms = num;
    fire(path, false);
    return true;
}

static bool node_rm(int dom, const char *path)
{
    bool found = false;

    for (struct node *n = nodes; n; n = n->next) {
        if (under(n->path, path)) {
            if (!may(n, dom, XS_PERM_WRITE)) {
                errno = EACCES;
                return false;
            }
            found = true;
        }
    }
    if (!found) {
        errno = ENOENT;
        return false;
    }
    for (struct node **pp = &nodes; *pp;) {
        struct node *n = *pp;
        if (under(n->path, path)) {
            *pp = n->next;
            node_free(n);
        } else {
            pp = &n->next;
        }
    }
    fire(path, true);
    return true;
}

static bool node_mkdir(int dom, const char *path)
{
    if (node_find(path)) {
        return true;
    }
    if (!node_make(dom, path)) {
        return false;
    }
    fire(path, false);
    return true;
}

static void txops_free(struct txop *o)
{
    while (o) {
        struct txop *next = o->next;
        free(o->path);
        free(o->val);
        free(o);
        o = next;
    }
}

/* Buffer an operation of transaction t (lock held). */
static bool tx_add(struct xs_handle *h, xs_transaction_t t, struct txop *op)
{
    struct txop **pp;

    if (t != h->tx) {
        txops_free(op);
        errno = EINVAL;
        return false;
    }
    for (pp = &h->ops; *pp; pp = &(*pp)->next) {
    }
    *pp = op;
    return true;
}

struct xs_handle *xs_open(unsigned long flags)
{
    struct xs_handle *h = calloc(1, sizeof(*h));

    (void)flags;
    if (!h) {
        return NULL;
    }
    if (make_pipe(&h->rfd, &h->wfd) < 0) {
        free(h);
        return NULL;
    }
    h->dom = cur_domid;
    return h;
}

void xs_close(struct xs_handle *h)
{
    if (!h) {
        return;
    }
    pthread_mutex_lock(&lock);
    for (struct watch **pp = &watches; *pp;) {
        struct watch *w = *pp;
        if (w->h == h) {
            *pp = w->next;
            free(w->path);
            free(w->token);
            free(w);
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&lock);
    while (h->events) {
        struct event *e = h->events;
        h->events = e->next;
        free(e->path);
        free(e->token);
        free(e);
    }
    txops_free(h->ops);
    close(h->rfd);
    close(h->wfd);
    free(h);
}

void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *len)
{
    char *p = full_path(h->dom, path), *val = NULL;
    struct node *n;

    (void)t;
    if (!p) {
        return NULL;
    }
    pthread_mutex_lock(&lock);
    n = node_find(p);
    if (!n) {
        errno = ENOENT;
    } else if (!may(n, h->dom, XS_PERM_READ)) {
        errno = EACCES;
    } else if ((val = malloc((size_t)n->len + 1))) {
        memcpy(val, n->val, (size_t)n->len + 1);
        if (len) {
            *len = n->len;
        }
    }
    pthread_mutex_unlock(&lock);
    free(p);
    return val;
}

bool xs_write(struct xs_handle *h, xs_transaction_t t, const char *path, const void *data,
              unsigned int len)
{
    char *p = full_path(h->dom, path);
    struct txop *op;
    bool ok = false;

    if (!p) {
        return false;
    }
    pthread_mutex_lock(&lock);
    if (t == XBT_NULL) {
        ok = node_write(h->dom, p, data, len);
        free(p);
    } else if ((op = calloc(1, sizeof(*op))) && (op->val = malloc(len + 1u))) {
        op->kind = TX_WRITE;
        op->path = p;
        memcpy(op->val, data, len);
        op->len = len;
        ok = tx_add(h, t, op);
    } else {
        free(op);
        free(p);
        errno = ENOMEM;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

/* xs_rm and xs_mkdir: now, or at the end of transaction t. */
static bool path_op(struct xs_handle *h, xs_transaction_t t, const char *path, enum txkind kind)
{
    char *p = full_path(h->dom, path);
    struct txop *op;
    bool ok = false;

    if (!p) {
        return false;
    }
    pthread_mutex_lock(&lock);
    if (t == XBT_NULL) {
        ok = kind == TX_RM ? node_rm(h->dom, p) : node_mkdir(h->dom, p);
        free(p);
    } else if ((op = calloc(1, sizeof(*op)))) {
        op->kind = kind;
        op->path = p;
        ok = tx_add(h, t, op);
    } else {
        free(p);
        errno = ENOMEM;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

bool xs_rm(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    return path_op(h, t, path, TX_RM);
}

bool xs_mkdir(struct xs_handle *h, xs_transaction_t t, const char *path)
{
    return path_op(h, t, path, TX_MKDIR);
}

/* The names of the children of path, in one block freed with free(). */
char **xs_directory(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *num)
{
    char *p = full_path(h->dom, path), **names = NULL, *at;
    size_t plen, count = 0, bytes = 0;
    struct node *dirn;

    (void)t;
    if (!p) {
        return NULL;
    }
    plen = strlen(p);
    pthread_mutex_lock(&lock);
    dirn = node_find(p);
    if (!dirn || !may(dirn, h->dom, XS_PERM_READ)) {
        errno = dirn ? EACCES : ENOENT;
        goto out;
    }
    for (struct node *n = nodes; n; n = n->next) {
        if (strncmp(n->path, p, plen) == 0 && n->path[plen] == '/' &&
            !strchr(n->path + plen + 1, '/')) {
            count++;
            bytes += strlen(n->path + plen + 1) + 1;
        }
    }
    if (!(names = malloc(count * sizeof(char *) + bytes + 1))) {
        errno = ENOMEM;
        goto out;
    }
    at = (char *)(names + count);
    count = 0;
    for (struct node *n = nodes; n; n = n->next) {
        if (strncmp(n->path, p, plen) == 0 && n->path[plen] == '/' &&
            !strchr(n->path + plen + 1, '/')) {
            size_t l = strlen(n->path + plen + 1) + 1;

            names[count++] = memcpy(at, n->path + plen + 1, l);
            at += l;
        }
    }
    *num = (unsigned)count;
out:
    pthread_mutex_unlock(&lock);
    free(p);
    return names;
}

struct xs_permissions *xs_get_permissions(struct xs_handle *h, xs_transaction_t t,
                                          const char *path, unsigned int *num)
{
    char *p = full_path(h->dom, path);
    struct xs_permissions *perms = NULL;
    struct node *n;

    (void)t;
    if (!p) {
        return NULL;
    }
    pthread_mutex_lock(&lock);
    n = node_find(p);
    if (!n || !may(n, h->dom, XS_PERM_READ)) {
        errno = n ? EACCES : ENOENT;
    } else if ((perms = malloc(n->nperms * sizeof(*perms)))) {
        memcpy(perms, n->perms, n->nperms * sizeof(*perms));
        *num = n->nperms;
    }
    pthread_mutex_unlock(&lock);
    free(p);
    return perms;
}

bool xs_set_permissions(struct xs_handle *h, xs_transaction_t t, const char *path,
                        struct xs_permissions *perms, unsigned int num_perms)
{
    char *p = full_path(h->dom, path);
    struct txop *op;
    bool ok = false;

    if (!p) {
        return false;
    }
    pthread_mutex_lock(&lock);
    if (num_perms == 0 || num_perms > MAX_PERMS) {
        free(p);
        errno = EINVAL;
    } else if (t == XBT_NULL) {
        ok = node_perms(h->dom, p, perms, num_perms);
        free(p);
    } else if ((op = calloc(1, sizeof(*op)))) {
        op->kind = TX_PERMS;
        op->path = p;
        memcpy(op->perms, perms, num_perms * sizeof(perms[0]));
        op->nperms = num_perms;
        ok = tx_add(h, t, op);
    } else {
        free(p);
        errno = ENOMEM;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

xs_transaction_t xs_transaction_start(struct xs_handle *h)
{
    xs_transaction_t t = XBT_NULL;

    pthread_mutex_lock(&lock);
    if (fail_starts > 0) {
        fail_starts--;
        errno = fail_starts_errno;
    } else if (h->tx != XBT_NULL) {
        errno = EBUSY;
    } else {
        t = h->tx = next_tx++;
    }
    pthread_mutex_unlock(&lock);
    return t;
}

bool xs_transaction_end(struct xs_handle *h, xs_transaction_t t, bool abort)
{
    struct txop *ops;
    bool ok = true;

    pthread_mutex_lock(&lock);
    if (t == XBT_NULL || t != h->tx) {
        pthread_mutex_unlock(&lock);
        errno = EINVAL;
        return false;
    }
    ops = h->ops;
    h->ops = NULL;
    h->tx = XBT_NULL;
    if (!abort) {
        commits++;
        if (fail_commits > 0) {
            fail_commits--;
            errno = EAGAIN;
            ok = false;
        } else {
            /* All at once under the lock: nobody sees half a transaction. */
            for (struct txop *o = ops; o && ok; o = o->next) {
                switch (o->kind) {
                case TX_WRITE:
                    ok = node_write(h->dom, o->path, o->val, o->len);
                    break;
                case TX_PERMS:
                    ok = node_perms(h->dom, o->path, o->perms, o->nperms);
                    break;
                case TX_RM:
                    ok = node_rm(h->dom, o->path);
                    break;
                case TX_MKDIR:
                    ok = node_mkdir(h->dom, o->path);
                    break;
                }
            }
        }
    }
    pthread_mutex_unlock(&lock);
    txops_free(ops);
    return ok;
}

bool xs_watch(struct xs_handle *h, const char *path, const char *token)
{
    struct watch *w = calloc(1, sizeof(*w));

    if (!w || !(w->path = full_path(h->dom, path)) || !(w->token = strdup(token))) {
        if (w) {
            free(w->path);
            free(w);
        }
        errno = ENOMEM;
        return false;
    }
    w->h = h;
    pthread_mutex_lock(&lock);
    w->next = watches;
    watches = w;
    queue_event(h, w->path, token); /* xenstored fires every new watch once */
    pthread_mutex_unlock(&lock);
    return true;
}

bool xs_unwatch(struct xs_handle *h, const char *path, const char *token)
{
    char *p = full_path(h->dom, path);
    bool found = false;

    if (!p) {
        return false;
    }
    pthread_mutex_lock(&lock);
    for (struct watch **pp = &watches; *pp; pp = &(*pp)->next) {
        struct watch *w = *pp;
        if (w->h == h && strcmp(w->path, p) == 0 && strcmp(w->token, token) == 0) {
            *pp = w->next;
            free(w->path);
            free(w->token);
            free(w);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    free(p);
    if (!found) {
        errno = ENOENT;
    }
    return found;
}

int xs_fileno(struct xs_handle *h)
{
    return h->rfd;
}

char **xs_check_watch(struct xs_handle *h)
{
    struct event *e;
    char **ev = NULL;
    size_t lp, lt;
    char c;

    pthread_mutex_lock(&lock);
    e = h->events;
    if (e) {
        h->events = e->next;
    }
    pthread_mutex_unlock(&lock);
    if (!e) {
        errno = EAGAIN;
        return NULL;
    }
    if (read(h->rfd, &c, 1) != 1) {
        c = 0; /* the byte is only a wake-up */
    }
    lp = strlen(e->path) + 1;
    lt = strlen(e->token) + 1;
    /* One block, freed with free() as the library's is. */
    ev = malloc(2 * sizeof(char *) + lp + lt);
    if (ev) {
        ev[XS_WATCH_PATH] = (char *)(ev + 2);
        ev[XS_WATCH_TOKEN] = ev[XS_WATCH_PATH] + lp;
        memcpy(ev[XS_WATCH_PATH], e->path, lp);
        memcpy(ev[XS_WATCH_TOKEN], e->token, lt);
    } else {
        errno = ENOMEM;
    }
    free(e->path);
    free(e->token);
    free(e);
    return ev;
}

bool xs_is_domain_introduced(struct xs_handle *h, unsigned int domid)
{
    bool known;

    (void)h;
    pthread_mutex_lock(&lock);
    if (!privileged) {
        pthread_mutex_unlock(&lock);
        errno = EACCES;
        return false;
    }
    known = dom_known((int)domid);
    pthread_mutex_unlock(&lock);
    return known;
}

/* ------------------------------------------------------------ test control */

void fake_xen_set_domid(int domid)
{
    cur_domid = domid;
}

/* As a toolstack does: /local/domain/N owned by N, its `domid` and `name` dom0's, N may read. */
void fake_xen_add_domain(int domid)
{
    char home[48], path[64], val[32];
    struct node *n;

    snprintf(home, sizeof(home), "/local/domain/%d", domid);
    pthread_mutex_lock(&lock);
    if (!dom_known(domid) && ndoms < MAX_DOMS) {
        doms[ndoms++] = domid;
    }
    if ((n = node_make(0, home))) {
        n->perms[0] = (struct xs_permissions){ .id = (unsigned)domid, .perms = XS_PERM_NONE };
        n->nperms = 1;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", home, i ? "name" : "domid");
        if (i) {
            snprintf(val, sizeof(val), "guest%d", domid);
        } else {
            snprintf(val, sizeof(val), "%d", domid);
        }
        if (node_write(0, path, val, (unsigned)strlen(val)) && (n = node_find(path))) {
            n->perms[0] = (struct xs_permissions){ .id = 0, .perms = XS_PERM_NONE };
            n->perms[1] = (struct xs_permissions){ .id = (unsigned)domid, .perms = XS_PERM_READ };
            n->nperms = 2;
        }
    }
    pthread_mutex_unlock(&lock);
}

void fake_xen_release_domain(int domid)
{
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < ndoms; i++) {
        if (doms[i] == domid) {
            doms[i] = doms[--ndoms];
            break;
        }
    }
    for (struct watch *w = watches; w; w = w->next) {
        if (strcmp(w->path, "@releaseDomain") == 0) {
            queue_event(w->h, w->path, w->token);
        }
    }
    pthread_mutex_unlock(&lock);
}

void fake_xen_set_privileged(bool p)
{
    pthread_mutex_lock(&lock);
    privileged = p;
    pthread_mutex_unlock(&lock);
}

void fake_xen_fail_commits(int n)
{
    pthread_mutex_lock(&lock);
    fail_commits = n;
    pthread_mutex_unlock(&lock);
}

void fake_xen_fail_starts(int n, int err)
{
    pthread_mutex_lock(&lock);
    fail_starts = n;
    fail_starts_errno = err;
    pthread_mutex_unlock(&lock);
}

int fake_xen_commits(void)
{
    int n;

    pthread_mutex_lock(&lock);
    n = commits;
    pthread_mutex_unlock(&lock);
    return n;
}

void fake_xen_store_write(const char *path, const char *value)
{
    struct node *n;

    pthread_mutex_lock(&lock);
    if (node_write(0, path, value, (unsigned)strlen(value)) && (n = node_find(path))) {
        n->perms[0] = (struct xs_permissions){ .id = 0, .perms = XS_PERM_READ };
        n->nperms = 1;
    }
    pthread_mutex_unlock(&lock);
}

char *fake_xen_store_read(const char *path)
{
    struct node *n;
    char *v = NULL;

    pthread_mutex_lock(&lock);
    if ((n = node_find(path))) {
        v = strdup(n->val);
    }
    pthread_mutex_unlock(&lock);
    return v;
}

bool fake_xen_store_exists(const char *path)
{
    bool found = false;

    pthread_mutex_lock(&lock);
    for (struct node *n = nodes; n && !found; n = n->next) {
        found = under(n->path, path);
    }
    pthread_mutex_unlock(&lock);
    return found;
}

bool fake_xen_store_readable(const char *path, int domid)
{
    struct node *n;
    bool ok = false;

    pthread_mutex_lock(&lock);
    if ((n = node_find(path))) {
        ok = may(n, domid, XS_PERM_READ);
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

size_t fake_xen_grants_live(void)
{
    size_t n = 0;

    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < NGRANTS; i++) {
        n += grants[i].used;
    }
    pthread_mutex_unlock(&lock);
    return n;
}

size_t fake_xen_ports_live(void)
{
    size_t n = 0;

    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < NPORTS; i++) {
        n += ports[i].used;
    }
    pthread_mutex_unlock(&lock);
    return n;
}

size_t fake_xen_watches_live(void)
{
    size_t n = 0;

    pthread_mutex_lock(&lock);
    for (struct watch *w = watches; w; w = w->next) {
        n++;
    }
    pthread_mutex_unlock(&lock);
    return n;
}

void fake_xen_reset(void)
{
    pthread_mutex_lock(&lock);
    while (nodes) {
        struct node *n = nodes;
        nodes = n->next;
        node_free(n);
    }
    ndoms = 0;
    cur_domid = 0;
    privileged = true;
    fail_commits = 0;
    fail_starts = 0;
    commits = 0;
    pthread_mutex_unlock(&lock);
}
