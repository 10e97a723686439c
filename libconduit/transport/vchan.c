/* SPDX-License-Identifier: ISC */
/*
 * The vchan transport, through libvchan's public API only.
 *
 * Connect: a client looks for its server in two places (docs/accept.md):
 * first libxenvchan's own path, a channel published for this client alone
 * (vchan://D/P listeners, Xen's tools), then the server's accept rendezvous
 * (vchan://STAR/P listeners), where it asks for a fresh channel of its own.
 * It keeps looking until the connect timeout, so the server may start later.
 *
 * Listen on vchan://D/P: one channel at libxenvchan's path for client D,
 * published at once; the next is published when the previous connection
 * is closed (a second server on a live path would clobber its keys). Listen
 * on "*": each request through the rendezvous gets its own channel at its
 * own path; conduit_accept hands it out once the client has connected, so
 * a slow or vanished client never blocks the others.
 *
 * End of stream: vchan has no half-close on the wire, so conduit_shutdown
 * waits until the peer has consumed what was written and then closes the
 * channel (the peer reads end-of-file; so do we from then on). A side that
 * wrote nothing has nothing to end: its shutdown changes nothing, and it
 * reads until the peer closes. A blocking connection blocks in libvchan
 * (which spins briefly on the ring before it sleeps); a non-blocking one
 * returns EAGAIN and conduit.c or the caller waits in poll().
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "libconduit/internal/internal.h"
#include "vchan.h"

/*
 * How often a client looks again for a server that is not there yet: soon
 * at first (a server starting beside it), then less often, since on Xen
 * every look is a few xenstore requests.
 */
#define RETRY_MS 20
#define RETRY_MAX_MS 200
/* Connections published through the rendezvous whose client has not connected yet. */
#define MAX_PENDING 64
/* A blocking accept re-checks pending clients' deadlines this often. */
#define PENDING_TICK_MS 250

_Static_assert(VCHAN_PORT_MAX >= CONDUIT__ACCEPT_PORT_LEN, "accepted ports are valid ports");

/* ------------------------------------------------------------ logging */

/*
 * libvchan's logger for one channel. Heap-allocated and owned by whoever
 * owns the channel, because a channel made by a listener outlives it.
 */
struct logsink {
    conduit_log_fn *fn;
    void *ctx;
    char name[CONDUIT__NAME_MAX];
};

static void sink_call(struct logsink *s, enum conduit_log_level level, const char *fmt, ...)
    CONDUIT__PRINTF(3, 4);

static void sink_call(struct logsink *s, enum conduit_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    s->fn(s->ctx, level, fmt, ap);
    va_end(ap);
}

static void sink_log(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
    CONDUIT__PRINTF(3, 0);

static void sink_log(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
{
    struct logsink *s = ctx;
    enum conduit_log_level lvl;
    char body[CONDUIT__MSG_MAX];

    if (!s || !s->fn) {
        return;
    }
    vsnprintf(body, sizeof(body), fmt, ap);
    switch (level) {
    case VCHAN_LOG_ERROR:
        /* It comes back to the caller in conduit's own message: logged there, once. */
        lvl = CONDUIT_LOG_DEBUG;
        break;
    case VCHAN_LOG_WARN:
        lvl = CONDUIT_LOG_WARN;
        break;
    case VCHAN_LOG_INFO:
        lvl = CONDUIT_LOG_INFO;
        break;
    default:
        lvl = CONDUIT_LOG_DEBUG;
        break;
    }
    sink_call(s, lvl, "%s: %s", s->name, body);
}

static struct logsink *sink_new(const struct conduit__err *e, const char *name)
{
    struct logsink *s;

    if (!e->log) {
        return NULL;
    }
    if ((s = calloc(1, sizeof(*s)))) {
        s->fn = e->log;
        s->ctx = e->log_ctx;
        snprintf(s->name, sizeof(s->name), "%s", name);
    }
    return s;
}

/* ------------------------------------------------------------ errors */

static int code_of(int vrc)
{
    switch (vrc < 0 ? -vrc : vrc) {
    case VCHAN_EAGAIN:
    case VCHAN_ENOTCONN:
        return CONDUIT_EAGAIN;
    case VCHAN_EPIPE:
        return CONDUIT_EPIPE;
    case VCHAN_EPROTO:
        return CONDUIT_EPROTO;
    case VCHAN_ETIMEDOUT:
        return CONDUIT_ETIMEDOUT;
    case VCHAN_EINVAL:
    case VCHAN_EMSGSIZE:
        /*
         * Everything the caller gave was checked before libvchan saw it (the
         * URI, VCHAN_DOMID, VCHAN_PLATFORM, the paths), so what is left is
         * run-time: a value the peer published, say. Not a usage error.
         */
        return CONDUIT_EIO;
    case VCHAN_ENOMEM:
        return CONDUIT_ENOMEM;
    case VCHAN_ENOENT:
        return CONDUIT_ENOENT;
    case VCHAN_EPERM:
        return CONDUIT_EPERM;
    case VCHAN_EADDRINUSE:
        return CONDUIT_EADDRINUSE;
    case VCHAN_ENOSYS:
        return CONDUIT_ENOTSUP;
    default:
        return CONDUIT_EIO;
    }
}

/* ------------------------------------------------------------ direct listener slot */

struct vlisten;
static void republish(struct vlisten *x);

/*
 * Shared by a vchan://D/P listener and the connection it handed out. The
 * path is free again once that connection is closed: the close publishes
 * the next channel at once (so a waiting client finds it, and the
 * listener's resources are the same between any two connections), and
 * wakes the listener. The connection may be closed in another thread than
 * the listener's: the lock guards the slot and the listener's channel.
 */
struct slot {
    pthread_mutex_t lock;
    int refs;              /* the listener's and its connection's */
    bool busy;             /* a connection from this path is open */
    struct vlisten *owner; /* NULL once the listener is closed */
    int evfd;              /* written when the connection closes */
};

static struct slot *slot_new(struct vlisten *owner)
{
    struct slot *s = calloc(1, sizeof(*s));

    if (!s) {
        return NULL;
    }
    s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->evfd < 0 || pthread_mutex_init(&s->lock, NULL) != 0) {
        if (s->evfd >= 0) {
            close(s->evfd);
        }
        free(s);
        return NULL;
    }
    s->refs = 1;
    s->owner = owner;
    return s;
}

static void slot_unref(struct slot *s)
{
    bool last;

    if (!s) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) {
        pthread_mutex_destroy(&s->lock);
        close(s->evfd);
        free(s);
    }
}

/* The connection from this path is closed (called after its channel is). */
static void slot_release(struct slot *s)
{
    uint64_t one = 1;
    ssize_t n;

    pthread_mutex_lock(&s->lock);
    s->busy = false;
    if (s->owner) {
        republish(s->owner);
    }
    pthread_mutex_unlock(&s->lock);
    n = write(s->evfd, &one, sizeof(one));
    (void)n; /* a full counter already wakes the listener */
    slot_unref(s);
}

/* ------------------------------------------------------------ the layer */

struct vlayer {
    struct conduit__layer base;
    struct vchan *v;   /* NULL once shutdown has closed the channel */
    struct logsink *sink;
    struct slot *slot; /* a vchan://D/P listener's path, freed on close */
    bool server;
    bool wrote; /* something was written: shutdown has a stream to end */
    uint8_t *tail;      /* what the peer had sent when shutdown closed the channel */
    size_t tail_off, tail_len;
    int domid;  /* the peer's */
    char port[VCHAN_PORT_MAX + 1];
    size_t rsize, wsize;
    const char *platform;
};

static int fail_io(struct conduit__layer *l, int vrc)
{
    struct vlayer *x = (struct vlayer *)l;
    const char *m;

    if (vrc == -VCHAN_EAGAIN || vrc == -VCHAN_ENOTCONN) {
        return -CONDUIT_EAGAIN;
    }
    m = vchan_last_error(x->v);
    return conduit__errorf(l->err, code_of(vrc), "%s", m[0] ? m : vchan_strerror(vrc));
}

static int vl_read(struct conduit__layer *l, void *buf, size_t len, size_t *nread)
{
    struct vlayer *x = (struct vlayer *)l;
    int rc;

    if (!x->v) {
        /* Closed by our shutdown: what was left in the ring, then end-of-file. */
        *nread = len < x->tail_len - x->tail_off ? len : x->tail_len - x->tail_off;
        memcpy(buf, x->tail + x->tail_off, *nread);
        x->tail_off += *nread;
        return 0;
    }
    rc = vchan_read(x->v, buf, len, nread);
    return rc < 0 ? fail_io(l, rc) : 0;
}

static int vl_write(struct conduit__layer *l, const void *buf, size_t len, size_t *nwritten)
{
    struct vlayer *x = (struct vlayer *)l;
    int rc;

    if (!x->v) {
        *nwritten = 0;
        return conduit__errorf(l->err, CONDUIT_ESHUTDOWN, "write after shutdown");
    }
    rc = vchan_write(x->v, buf, len, nwritten);
    x->wrote |= *nwritten > 0;
    if (rc == -VCHAN_EAGAIN && *nwritten > 0) {
        return 0;
    }
    return rc < 0 ? fail_io(l, rc) : 0;
}

static int vl_unconsumed(struct conduit__layer *l, size_t *n)
{
    struct vlayer *x = (struct vlayer *)l;
    size_t space = 0;
    int rc;

    *n = 0;
    if (!x->v) {
        return 0;
    }
    if ((rc = vchan_buffer_space(x->v, &space)) < 0) {
        return fail_io(l, rc);
    }
    *n = space < x->wsize ? x->wsize - space : 0;
    return 0;
}

/* The end of our stream is the close, once the peer has consumed it all. */
static int vl_shutdown(struct conduit__layer *l)
{
    struct vlayer *x = (struct vlayer *)l;
    size_t left = 0;
    int rc;

    if (!x->v || !x->wrote) {
        return 0; /* nothing to end, and no way to tell the peer: reads go on */
    }
    if ((rc = vl_unconsumed(l, &left)) < 0) {
        return rc;
    }
    if (left > 0) {
        if (vchan_is_open(x->v) == VCHAN_STATE_CLOSED) {
            return conduit__errorf(l->err, CONDUIT_EPIPE,
                                   "peer closed with %zu bytes of ours not consumed", left);
        }
        return -CONDUIT_EAGAIN; /* conduit.c waits for CONDUIT_WANT_DRAIN */
    }
    /* What the peer sent and we have not read yet would go with the mapping: keep it. */
    if ((rc = vchan_data_ready(x->v, &left)) < 0) {
        return fail_io(l, rc);
    }
    if (left > 0) {
        size_t n = 0;
        if (!(x->tail = malloc(left))) {
            return conduit__errorf(l->err, CONDUIT_ENOMEM, "out of memory");
        }
        if ((rc = vchan_read(x->v, x->tail, left, &n)) < 0) {
            return fail_io(l, rc);
        }
        x->tail_len = n;
    }
    vchan_close(x->v);
    x->v = NULL;
    return 0;
}

static int vl_poll_events(struct conduit__layer *l, unsigned want, short *events)
{
    struct vlayer *x = (struct vlayer *)l;
    unsigned vw = ((want & CONDUIT_WANT_READ) ? VCHAN_WANT_READ : 0) |
                  ((want & CONDUIT_WANT_WRITE) ? VCHAN_WANT_WRITE : 0) |
                  ((want & CONDUIT_WANT_DRAIN) ? VCHAN_WANT_DRAIN : 0);
    int rc;

    if (!x->v) {
        *events = 0;
        return 1; /* closed by our shutdown: reads give end-of-file at once */
    }
    *events = vw ? POLLIN : 0;
    /* vw 0: waiting for nothing, only consume what is pending (then no spin). */
    rc = vchan_poll(x->v, vw | ((vw && (want & CONDUIT_WANT_SPIN)) ? VCHAN_WANT_SPIN : 0));
    return rc < 0 ? fail_io(l, rc) : rc;
}

/*
 * A blocking connection blocks in libvchan, which spins on the ring before
 * it sleeps: a wait through poll() would cost a system call and a wake-up
 * each time the peer is merely a little behind.
 */
static void vl_set_blocking(struct conduit__layer *l, bool blocking, int timeout_ms)
{
    struct vlayer *x = (struct vlayer *)l;

    if (x->v) {
        (void)vchan_set_nonblocking(x->v, !blocking);
        (void)vchan_set_timeout(x->v, blocking && timeout_ms > 0 ? timeout_ms : 0);
    }
}

static int vl_fd(struct conduit__layer *l)
{
    struct vlayer *x = (struct vlayer *)l;

    return x->v ? vchan_fd(x->v) : -1; /* -1 once closed: poll_events says ready */
}

static void vl_info(struct conduit__layer *l, char *buf, size_t len)
{
    struct vlayer *x = (struct vlayer *)l;

    snprintf(buf, len, "vchan (%s) %s domain %d, port %s, rings: read %zu, write %zu bytes%s",
             x->platform, x->server ? "serving client" : "connected to server", x->domid, x->port,
             x->rsize, x->wsize, x->v ? "" : " (closed: end of stream)");
}

static void vl_close(struct conduit__layer *l)
{
    struct vlayer *x = (struct vlayer *)l;

    vchan_close(x->v); /* NULL ok */
    free(x->tail);
    free(x->sink);
    if (x->slot) {
        slot_release(x->slot);
    }
    free(x);
}

static const struct conduit__layer_ops vchan_ops = {
    .name = "vchan",
    .read = vl_read,
    .write = vl_write,
    .shutdown = vl_shutdown,
    .shutdown_want = CONDUIT_WANT_DRAIN,
    .half_close = false, /* its shutdown is its close */
    .poll_events = vl_poll_events,
    .unconsumed = vl_unconsumed,
    .set_blocking = vl_set_blocking,
    .fd = vl_fd,
    .info = vl_info,
    .close = vl_close,
};

/* Wrap an open channel; takes v and sink (also on failure). */
static int wrap(struct conduit__err *e, struct vchan *v, struct logsink *sink, bool server,
                int domid, const char *port, struct conduit__layer **out)
{
    struct vlayer *x = calloc(1, sizeof(*x));

    if (!x) {
        vchan_close(v);
        free(sink);
        return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
    }
    x->base.ops = &vchan_ops;
    x->base.err = e;
    x->v = v;
    x->sink = sink;
    x->server = server;
    x->domid = domid;
    snprintf(x->port, sizeof(x->port), "%s", port);
    x->rsize = vchan_read_ring_size(v);
    x->wsize = vchan_write_ring_size(v);
    x->platform = vchan_platform_name(v); /* a constant string: outlives the handle */
    *out = &x->base;
    return 0;
}

/* ------------------------------------------------------------ rendezvous dispatch */

int conduit__self_domid(struct conduit__err *e, enum conduit__vplat plat, int *domid)
{
    return plat == CONDUIT__VPLAT_XEN ? conduit__xen_self_domid(e, domid)
                                      : conduit__local_self_domid(e, domid);
}

int conduit__rdv_client_open(struct conduit__err *e, enum conduit__vplat plat, int server,
                             const char *port, uint64_t deadline, struct conduit__rdv_client **out)
{
    return plat == CONDUIT__VPLAT_XEN
               ? conduit__xen_rdv_client_open(e, server, port, deadline, out)
               : conduit__local_rdv_client_open(e, server, port, deadline, out);
}

int conduit__rdv_client_probe(struct conduit__rdv_client *rc, const char *nonce,
                              enum conduit__probe *out)
{
    return rc->ops->probe(rc, nonce, out);
}

int conduit__rdv_client_answer(struct conduit__rdv_client *rc)
{
    return rc->ops->answer(rc);
}

void conduit__rdv_client_where(struct conduit__rdv_client *rc, char *buf, size_t len)
{
    rc->ops->where(rc, buf, len);
}

void conduit__rdv_client_close(struct conduit__rdv_client *rc)
{
    if (rc) {
        rc->ops->close(rc);
    }
}

int conduit__rdv_server_open(struct conduit__err *e, enum conduit__vplat plat, const char *port,
                             struct conduit__rdv_server **out)
{
    return plat == CONDUIT__VPLAT_XEN ? conduit__xen_rdv_server_open(e, port, out)
                                      : conduit__local_rdv_server_open(e, port, out);
}

int conduit__rdv_server_fd(struct conduit__rdv_server *rs)
{
    return rs->ops->fd(rs);
}

int conduit__rdv_server_next(struct conduit__rdv_server *rs, int *client,
                             char nonce[CONDUIT__NONCE_LEN + 1])
{
    return rs->ops->next(rs, client, nonce);
}

void conduit__rdv_server_answer(struct conduit__rdv_server *rs, int status, const char *why)
{
    rs->ops->answer(rs, status, why);
}

void conduit__rdv_server_close(struct conduit__rdv_server *rs)
{
    if (rs) {
        rs->ops->close(rs);
    }
}

/* ------------------------------------------------------------ connect */

int conduit__vchan_connect(struct conduit__err *e, const struct conduit__connect_args *a,
                           struct conduit__layer **out)
{
    const struct conduit_uri *u = a->uri;
    struct conduit__rdv_client *rdv = NULL;
    char nonce[CONDUIT__NONCE_LEN + 1];
    char port[VCHAN_PORT_MAX + 1];
    char errbuf[CONDUIT__MSG_MAX] = "";
    struct vchan_config cfg = VCHAN_CONFIG_INIT();
    enum conduit__probe probe = CONDUIT__PROBE_NONE;
    enum conduit__vplat plat;
    struct logsink *sink = NULL;
    struct vchan *v = NULL;
    int server, ms, rc;

    if ((rc = conduit__resolve_domain(e, u, &server)) < 0 ||
        (rc = conduit__vchan_platform(e, &plat)) < 0) {
        return rc;
    }
    if (conduit__nonce_new(nonce) < 0) {
        return conduit__errorf(e, CONDUIT_EIO, "getrandom: %s", strerror(errno));
    }
    if ((rc = conduit__rdv_client_open(e, plat, server, u->vchan.port, a->deadline, &rdv)) < 0) {
        return rc;
    }
    /* Direct path first, then the accept rendezvous; until one is there or time is up. */
    for (int retry = RETRY_MS;; retry = retry * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry * 2) {
        if ((rc = conduit__rdv_client_probe(rdv, nonce, &probe)) < 0) {
            goto out;
        }
        if (probe != CONDUIT__PROBE_NONE) {
            break;
        }
        ms = vclock_left(a->deadline);
        if (ms == 0) {
            char where[CONDUIT__MSG_MAX / 2];

            conduit__rdv_client_where(rdv, where, sizeof(where));
            rc = conduit__errorf(e, CONDUIT_ETIMEDOUT, "no vchan server at %s after %.3f s", where,
                                 a->timeout_ms / 1000.0);
            goto out;
        }
        vclock_sleep_ms(ms > 0 && ms < retry ? ms : retry);
    }
    if (probe == CONDUIT__PROBE_DIRECT) {
        snprintf(port, sizeof(port), "%s", u->vchan.port);
    } else {
        while ((rc = conduit__rdv_client_answer(rdv)) == 0) {
            if (vclock_left(a->deadline) == 0) {
                rc = conduit__errorf(e, CONDUIT_ETIMEDOUT,
                                     "server domain %d took the request for port %s but "
                                     "published no channel within %.3f s",
                                     server, u->vchan.port, a->timeout_ms / 1000.0);
                goto out;
            }
            vclock_sleep_ms(RETRY_MS);
        }
        if (rc < 0) {
            goto out;
        }
        snprintf(port, sizeof(port), "%s%s", CONDUIT__ACCEPT_PORT_PREFIX, nonce);
    }
    sink = sink_new(e, e->name);
    ms = vclock_left(a->deadline);
    cfg.domain = server;
    cfg.port = port;
    cfg.nonblocking = true;
    cfg.timeout_ms = ms > 0 ? ms : 1;
    cfg.log = sink ? sink_log : NULL;
    cfg.log_ctx = sink;
    cfg.errbuf = errbuf;
    cfg.errbuf_len = sizeof(errbuf);
    rc = vchan_client_open(&v, &cfg);
    if (rc < 0) {
        free(sink);
        rc = conduit__errorf(e, code_of(rc), "%s", errbuf[0] ? errbuf : vchan_strerror(rc));
        goto out;
    }
    rc = wrap(e, v, sink, false, server, port, out);
out:
    conduit__rdv_client_close(rdv);
    return rc;
}

/* ------------------------------------------------------------ listen */

struct pending {
    struct vchan *v;
    struct logsink *sink;
    int client;
    char port[VCHAN_PORT_MAX + 1];
    uint64_t deadline; /* for its client to connect (a direct listener's: none) */
};

struct vlisten {
    struct conduit__err log; /* the listener's name and logger, for work done off its calls */
    int epfd;                /* the rendezvous or slot descriptor and every pending channel's */
    bool any;
    int client; /* direct: the client's domain */
    char port[VCHAN_PORT_MAX + 1];
    size_t rsize, wsize;
    int connect_ms; /* how long an accepted client has to connect */
    /* vchan://D/P */
    struct slot *slot;
    struct pending *direct;
    bool client_gone; /* the platform says domain D no longer exists: publish no more */
    bool gone_told;   /* ... and conduit_accept has said so once */
    /* vchan://STAR/P */
    struct conduit__rdv_server *rdv;
    struct pending *pend[MAX_PENDING];
    size_t npend;
};

static int watch(struct conduit__err *e, int epfd, int fd, int op)
{
    struct epoll_event ev = {.events = EPOLLIN};

    if (epoll_ctl(epfd, op, fd, &ev) < 0 && !(op == EPOLL_CTL_DEL && errno == ENOENT)) {
        return conduit__errorf(e, CONDUIT_EIO, "epoll_ctl: %s", strerror(errno));
    }
    return 0;
}

static void pending_free(struct vlisten *x, struct pending *p)
{
    if (p) {
        (void)epoll_ctl(x->epfd, EPOLL_CTL_DEL, vchan_fd(p->v), NULL);
        vchan_close(p->v);
        free(p->sink);
        free(p);
    }
}

/* Publish a channel for `client` at `port`. Errors are recorded on e. */
static int open_server(struct vlisten *x, struct conduit__err *e, int client, const char *port,
                       uint64_t deadline, struct pending **out)
{
    char errbuf[CONDUIT__MSG_MAX] = "";
    char name[CONDUIT__NAME_MAX];
    struct vchan_config cfg = VCHAN_CONFIG_INIT();
    struct pending *p;
    int rc;

    if (!(p = calloc(1, sizeof(*p)))) {
        return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
    }
    snprintf(name, sizeof(name), "vchan://%d/%s", client, port);
    /* The listener's logger, also when e's is off (an error logged by the caller, not here). */
    p->sink = sink_new(&x->log, name);
    p->client = client;
    p->deadline = deadline;
    snprintf(p->port, sizeof(p->port), "%s", port);
    cfg.domain = client;
    cfg.port = port;
    cfg.read_size = x->rsize;
    cfg.write_size = x->wsize;
    cfg.nonblocking = true;
    cfg.log = p->sink ? sink_log : NULL;
    cfg.log_ctx = p->sink;
    cfg.errbuf = errbuf;
    cfg.errbuf_len = sizeof(errbuf);
    rc = vchan_server_open(&p->v, &cfg);
    if (rc < 0) {
        free(p->sink);
        free(p);
        return conduit__errorf(e, code_of(rc), "%s", errbuf[0] ? errbuf : vchan_strerror(rc));
    }
    if ((rc = watch(e, x->epfd, vchan_fd(p->v), EPOLL_CTL_ADD)) < 0) {
        pending_free(x, p);
        return rc;
    }
    *out = p;
    return 0;
}

/* 1: its client connected (or came and went: it reads end-of-file); 0: not yet. */
static int connected(struct conduit__err *e, struct pending *p)
{
    int rc = vchan_wait_connected(p->v);
    const char *m;

    if (rc == 0) {
        return 1;
    }
    if (rc == -VCHAN_EAGAIN) {
        return 0;
    }
    m = vchan_last_error(p->v);
    return conduit__errorf(e, code_of(rc), "%s", m[0] ? m : vchan_strerror(rc));
}

/* Give a connected channel to the caller as a layer. */
static int hand_out(struct conduit_listener *l, struct pending *p, struct conduit__err *err,
                    struct conduit__layer **out, char *peer, size_t peerlen)
{
    struct vlisten *x = l->impl;
    struct vlayer *vl;
    int rc;

    (void)epoll_ctl(x->epfd, EPOLL_CTL_DEL, vchan_fd(p->v), NULL);
    snprintf(peer, peerlen, "vchan://%d/%s", p->client, x->port);
    if (p->sink) {
        snprintf(p->sink->name, sizeof(p->sink->name), "%s", peer);
    }
    rc = wrap(err, p->v, p->sink, true, p->client, p->port, out);
    free(p);
    if (rc < 0) {
        return rc;
    }
    vl = (struct vlayer *)*out;
    if (x->slot) {
        /* The caller holds the slot's lock. */
        x->slot->refs++;
        x->slot->busy = true;
        vl->slot = x->slot;
    }
    return 0;
}

/* With the slot locked: publish the next channel of a vchan://D/P listener if the path is free. */
static void republish(struct vlisten *x)
{
    struct conduit__err e = x->log;
    int rc;

    if (x->direct || x->slot->busy || x->client_gone) {
        return;
    }
    e.log = NULL; /* logged below, as a warning: nobody is waiting for this error */
    rc = open_server(x, &e, x->client, x->port, VDEADLINE_NONE, &x->direct);
    if (rc == -CONDUIT_ENOENT) {
        /*
         * The client domain no longer exists (Xen, privileged: the platform
         * asked xenstored before sharing anything). Domain ids are not
         * given again soon, so nobody can ever connect here: stop, rather
         * than offer grants to a dead domain at every close and accept.
         */
        x->client_gone = true;
        conduit__logf(&x->log, CONDUIT_LOG_INFO, "no next channel: %s", e.msg);
    } else if (rc < 0) {
        conduit__logf(&x->log, CONDUIT_LOG_WARN, "cannot publish the next channel yet: %s", e.msg);
    }
}

static int accept_direct(struct conduit_listener *l, struct conduit__err *err,
                         struct conduit__layer **out, char *peer, size_t peerlen)
{
    struct vlisten *x = l->impl;
    uint64_t count;
    ssize_t n;
    int rc;

    n = read(x->slot->evfd, &count, sizeof(count));
    (void)n; /* only wakes us; the slot says what happened */
    pthread_mutex_lock(&x->slot->lock);
    if (!x->direct) {
        if (x->slot->busy) {
            rc = -CONDUIT_EAGAIN;
            goto out;
        }
        if (x->client_gone) {
            /*
             * Said once, as this accept's error; from then on nobody can
             * come (EAGAIN, and the descriptor stays quiet): a caller that
             * accepts again after an error (vchan-cat -k) waits, not spins.
             */
            rc = x->gone_told ? -CONDUIT_EAGAIN
                              : conduit__errorf(&l->err, CONDUIT_ENOENT,
                                                "client domain %d no longer exists: vchan://%d/%s "
                                                "has no one left to serve",
                                                x->client, x->client, x->port);
            x->gone_told = true;
            goto out;
        }
        /* A publication that failed at close time is retried here, with its error. */
        if ((rc = open_server(x, &l->err, x->client, x->port, VDEADLINE_NONE, &x->direct)) < 0) {
            x->client_gone = x->gone_told = rc == -CONDUIT_ENOENT;
            goto out;
        }
    }
    rc = connected(&l->err, x->direct);
    if (rc == 0) {
        rc = -CONDUIT_EAGAIN;
    } else if (rc < 0) {
        pending_free(x, x->direct);
        x->direct = NULL;
    } else {
        rc = hand_out(l, x->direct, err, out, peer, peerlen);
        x->direct = NULL;
    }
out:
    pthread_mutex_unlock(&x->slot->lock);
    return rc;
}

/* Take the requests that came in through the rendezvous: a fresh channel for each. */
static void take_requests(struct conduit_listener *l)
{
    struct vlisten *x = l->impl;

    while (x->npend < MAX_PENDING) {
        char nonce[CONDUIT__NONCE_LEN + 1];
        char port[VCHAN_PORT_MAX + 1];
        struct conduit__err e = l->err;
        struct pending *p = NULL;
        int client = 0, rc;

        rc = conduit__rdv_server_next(x->rdv, &client, nonce);
        if (rc <= 0) {
            break; /* nothing more, or the rendezvous failed: it logged why */
        }
        snprintf(port, sizeof(port), "%s%s", CONDUIT__ACCEPT_PORT_PREFIX, nonce);
        /* A failure here is this client's, not the listener's: log it, refuse it, go on. */
        e.log = NULL;
        rc = open_server(x, &e, client, port, vclock_deadline(vdeadline_timeout(x->connect_ms)), &p);
        if (rc < 0) {
            conduit__logf(&l->err, CONDUIT_LOG_WARN, "refused client domain %d: %s", client, e.msg);
            conduit__rdv_server_answer(x->rdv, -rc, e.msg);
            continue;
        }
        conduit__rdv_server_answer(x->rdv, 0, NULL);
        conduit__logf(&l->err, CONDUIT_LOG_DEBUG, "client domain %d: channel %s published", client,
                      port);
        x->pend[x->npend++] = p;
    }
}

static void drop_pending(struct vlisten *x, size_t i)
{
    pending_free(x, x->pend[i]);
    x->pend[i] = x->pend[--x->npend];
}

static int accept_any(struct conduit_listener *l, struct conduit__err *err,
                      struct conduit__layer **out, char *peer, size_t peerlen)
{
    struct vlisten *x = l->impl;
    size_t i;

    take_requests(l);
    for (i = 0; i < x->npend;) {
        struct pending *p = x->pend[i];
        struct conduit__err e = l->err;
        int rc;

        e.log = NULL;
        rc = connected(&e, p);
        if (rc > 0) {
            x->pend[i] = x->pend[--x->npend];
            return hand_out(l, p, err, out, peer, peerlen);
        }
        if (rc < 0) {
            conduit__logf(&l->err, CONDUIT_LOG_WARN, "client domain %d: %s", p->client, e.msg);
            drop_pending(x, i);
            continue;
        }
        if (vclock_left(p->deadline) == 0) {
            conduit__logf(&l->err, CONDUIT_LOG_WARN,
                          "client domain %d asked for a channel but did not connect within "
                          "%.3f s: dropped",
                          p->client, x->connect_ms / 1000.0);
            drop_pending(x, i);
            continue;
        }
        i++;
    }
    return -CONDUIT_EAGAIN;
}

static int vl_accept(struct conduit_listener *l, struct conduit__err *err,
                     struct conduit__layer **out, char *peer, size_t peerlen)
{
    struct vlisten *x = l->impl;

    return x->any ? accept_any(l, err, out, peer, peerlen)
                  : accept_direct(l, err, out, peer, peerlen);
}

static int vl_listen_fd(struct conduit_listener *l)
{
    return ((struct vlisten *)l->impl)->epfd;
}

static int vl_tick(struct conduit_listener *l)
{
    struct vlisten *x = l->impl;

    return x->any && x->npend > 0 ? PENDING_TICK_MS : -1;
}

static void vl_listen_close(struct conduit_listener *l)
{
    struct vlisten *x = l->impl;

    if (!x) {
        return;
    }
    while (x->npend > 0) {
        drop_pending(x, 0);
    }
    if (x->slot) {
        /* A connection closing now in another thread must not republish for us. */
        pthread_mutex_lock(&x->slot->lock);
        x->slot->owner = NULL;
        pending_free(x, x->direct);
        x->direct = NULL;
        pthread_mutex_unlock(&x->slot->lock);
        slot_unref(x->slot);
    }
    conduit__rdv_server_close(x->rdv);
    if (x->epfd >= 0) {
        close(x->epfd);
    }
    free(x);
    l->impl = NULL;
}

static const struct conduit__listen_ops vchan_listen_ops = {
    .accept = vl_accept,
    .fd = vl_listen_fd,
    .tick_ms = vl_tick,
    .close = vl_listen_close,
};

int conduit__vchan_listen(struct conduit_listener *l, const struct conduit_uri *u,
                          const struct conduit_options *opts)
{
    enum conduit__vplat plat;
    struct vlisten *x;
    int self, rc;

    (void)opts;
    if ((rc = conduit__vchan_platform(&l->err, &plat)) < 0) {
        return rc;
    }
    /* A malformed VCHAN_DOMID is the caller's mistake: say so here, as a usage error. */
    if (plat == CONDUIT__VPLAT_LOCAL && (rc = conduit__local_self_domid(&l->err, &self)) < 0) {
        return rc;
    }
    if (!(x = calloc(1, sizeof(*x)))) {
        return conduit__errorf(&l->err, CONDUIT_ENOMEM, "out of memory");
    }
    l->impl = x;
    l->ops = &vchan_listen_ops;
    x->log = l->err;
    x->rsize = u->vchan.read_size;
    x->wsize = u->vchan.write_size;
    x->connect_ms = l->timeout_ms > 0 ? l->timeout_ms : CONDUIT_CONNECT_TIMEOUT_MS;
    snprintf(x->port, sizeof(x->port), "%s", u->vchan.port);
    x->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (x->epfd < 0) {
        rc = conduit__errorf(&l->err, CONDUIT_EIO, "epoll_create1: %s", strerror(errno));
        goto out;
    }
    if (u->vchan.domid == CONDUIT_DOMID_ANY) {
        x->any = true;
        if ((rc = conduit__rdv_server_open(&l->err, plat, x->port, &x->rdv)) < 0 ||
            (rc = watch(&l->err, x->epfd, conduit__rdv_server_fd(x->rdv), EPOLL_CTL_ADD)) < 0) {
            goto out;
        }
    } else {
        if ((rc = conduit__resolve_domain(&l->err, u, &x->client)) < 0) {
            goto out;
        }
        if (!(x->slot = slot_new(x))) {
            rc = conduit__errorf(&l->err, CONDUIT_EIO, "eventfd: %s", strerror(errno));
            goto out;
        }
        if ((rc = watch(&l->err, x->epfd, x->slot->evfd, EPOLL_CTL_ADD)) < 0) {
            goto out;
        }
        /* Published now, so that clients find it and a bad path fails here. */
        if ((rc = open_server(x, &l->err, x->client, x->port, VDEADLINE_NONE, &x->direct)) < 0) {
            goto out;
        }
    }
    rc = 0;
out:
    if (rc < 0) {
        vl_listen_close(l);
        l->ops = NULL;
    }
    return rc;
}
