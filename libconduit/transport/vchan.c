/* SPDX-License-Identifier: ISC */
/*
 * The vchan transport's connection (a layer over a libvchan handle) and
 * its connect, through libvchan's public API only; the listeners are
 * vchan_listen.c, the accept rendezvous rendezvous/.
 *
 * Connect: a client looks for its server in two places (docs/accept.md):
 * first libxenvchan's own path, a channel published for this client alone
 * (vchan://D/P listeners, Xen's tools), then the server's accept rendezvous
 * (vchan://STAR/P listeners), where it asks for a fresh channel of its own.
 * It keeps looking until the connect timeout, so the server may start later.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libconduit/internal/internal.h"
#include "libconduit/transport/vchan_transport.h"

/*
 * How often a client looks again for a server that is not there yet: soon
 * at first (a server starting beside it), then less often, since on Xen
 * every look is a few xenstore requests.
 */
#define RETRY_MS 20
#define RETRY_MAX_MS 200

_Static_assert(VCHAN_PORT_MAX >= CONDUIT__ACCEPT_PORT_LEN, "accepted ports are valid ports");

/* ------------------------------------------------------------ logging */

/*
 * libvchan's logger for one channel. Heap-allocated and owned by whoever
 * owns the channel, because a channel made by a listener outlives it.
 */
static void sink_call(struct logsink *s, enum conduit_log_level level, const char *fmt, ...)
    CONDUIT__PRINTF(3, 4);

static void sink_call(struct logsink *s, enum conduit_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    s->fn(s->ctx, level, fmt, ap);
    va_end(ap);
}

void conduit__vchan_sink_log(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
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

struct logsink *conduit__vchan_sink_new(const struct conduit__err *e, const char *name)
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

int conduit__vchan_code(int vrc)
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
    return conduit__errorf(l->err, conduit__vchan_code(vrc), "%s", m[0] ? m : vchan_strerror(vrc));
}

static int vl_read(struct conduit__layer *l, void *buf, size_t len, size_t *nread)
{
    struct vlayer *x = (struct vlayer *)l;
    int rc;

    if (!x->v) {
        /* Closed by our shutdown: what was left in the ring, then end-of-file. */
        *nread = len < x->tail_len - x->tail_off ? len : x->tail_len - x->tail_off;
        if (*nread > 0) {
            memcpy(buf, x->tail + x->tail_off, *nread);
            x->tail_off += *nread;
        }
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
        conduit__vchan_slot_release(x->slot);
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

int conduit__vchan_wrap(struct conduit__err *e, struct vchan *v, struct logsink *sink, bool server,
                        int domid, const char *port, struct slot *slot,
                        struct conduit__layer **out)
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
    x->slot = slot;
    *out = &x->base;
    return 0;
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
    sink = conduit__vchan_sink_new(e, e->name);
    ms = vclock_left(a->deadline);
    cfg.domain = server;
    cfg.port = port;
    cfg.nonblocking = true;
    cfg.timeout_ms = ms > 0 ? ms : 1;
    cfg.log = sink ? conduit__vchan_sink_log : NULL;
    cfg.log_ctx = sink;
    cfg.errbuf = errbuf;
    cfg.errbuf_len = sizeof(errbuf);
    rc = vchan_client_open(&v, &cfg);
    if (rc < 0) {
        free(sink);
        rc = conduit__errorf(e, conduit__vchan_code(rc), "%s", errbuf[0] ? errbuf : vchan_strerror(rc));
        goto out;
    }
    rc = conduit__vchan_wrap(e, v, sink, false, server, port, NULL, out);
out:
    conduit__rdv_client_close(rdv);
    return rc;
}

