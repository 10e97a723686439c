/* SPDX-License-Identifier: ISC */
/*
 * The connection API: connect, listen, accept, read, write, shutdown,
 * close. Layers (internal.h) never block; this file alone waits, through
 * poll_events and poll() on the connection's descriptor, so that blocking
 * mode and every timeout behave the same on all transports.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libconduit/internal/internal.h"
#include "libconduit/layer/sodium_keys.h"

/* A blocking accept looks at its pending work at least this often. */
#define ACCEPT_TICK_MS 250

/* This thread's last failed connect or listen: conduit_last_error(NULL). */
static _Thread_local char last_failure[CONDUIT__MSG_MAX];

/* "tls://host:443", "unix:///run/x", "vchan://3/svc": the URI without its options. */
static void endpoint_name(const struct conduit_uri *u, char *buf, size_t len)
{
    const char *transport = conduit_transport_name(u->transport);
    char scheme[32];

    if (u->layer == CONDUIT_LAYER_NONE) {
        snprintf(scheme, sizeof(scheme), "%s", transport);
    } else if (u->layer == CONDUIT_LAYER_TLS && u->transport == CONDUIT_TRANSPORT_TCP) {
        snprintf(scheme, sizeof(scheme), "tls");
    } else {
        snprintf(scheme, sizeof(scheme), "%s+%s", conduit_layer_name(u->layer), transport);
    }
    /* Truncation below only shortens a message. */
    switch (u->transport) {
    case CONDUIT_TRANSPORT_TCP:
        if (u->tcp.host == NULL) {
            snprintf(buf, len, "%s://*:%u", scheme, (unsigned)u->tcp.port);
        } else if (strchr(u->tcp.host, ':') != NULL) {
            snprintf(buf, len, "%s://[%s]:%u", scheme, u->tcp.host, (unsigned)u->tcp.port);
        } else {
            snprintf(buf, len, "%s://%s:%u", scheme, u->tcp.host, (unsigned)u->tcp.port);
        }
        break;
    case CONDUIT_TRANSPORT_UNIX:
        snprintf(buf, len, "%s://%s", scheme, u->un.path);
        break;
    case CONDUIT_TRANSPORT_VCHAN:
        if (u->vchan.domid == CONDUIT_DOMID_ANY) {
            snprintf(buf, len, "%s://*/%s", scheme, u->vchan.port);
        } else if (u->vchan.domid == CONDUIT_DOMID_NAMED) {
            snprintf(buf, len, "%s://%s/%s", scheme, u->vchan.domain_name, u->vchan.port);
        } else {
            snprintf(buf, len, "%s://%d/%s", scheme, u->vchan.domid, u->vchan.port);
        }
        break;
    }
}

static void copy_out(char *dst, size_t len, const char *msg)
{
    if (dst && len > 0) {
        snprintf(dst, len, "%s", msg);
    }
}

/* Remember why a constructor failed: this thread's slot and the caller's buffer. */
static int failed(const struct conduit__err *e, const struct conduit_options *opts, int rc)
{
    const char *msg = e->msg[0] != '\0' ? e->msg : conduit_strerror(rc);

    snprintf(last_failure, sizeof(last_failure), "%s", msg);
    if (opts) {
        copy_out(opts->errbuf, opts->errbuf_len, msg);
    }
    return rc;
}

/* The I/O timeout (0: none): the options', else the URI's (conduit.h). */
static int io_timeout(const struct conduit_uri *u, const struct conduit_options *opts)
{
    if (opts->timeout_ms > 0) {
        return opts->timeout_ms;
    }
    return (u->options & CONDUIT_URI_OPT_TIMEOUT) ? u->timeout_ms : 0;
}

/* The connect (listener: accept) timeout, 0 when none was given anywhere. */
static int connect_timeout(const struct conduit_uri *u, const struct conduit_options *opts)
{
    if (opts->connect_timeout_ms > 0) {
        return opts->connect_timeout_ms;
    }
    if (u->options & CONDUIT_URI_OPT_CONNECT_TIMEOUT) {
        return u->connect_timeout_ms;
    }
    return io_timeout(u, opts);
}

/* struct conduit_options before the sodium fields: a caller built with it is still served. */
#define OPTIONS_SIZE_V0 offsetof(struct conduit_options, peer)
/* Upper bound of struct_size accepted from a newer conduit.h (anything more is garbage). */
#define OPTIONS_SIZE_MAX 4096

/*
 * The caller's options as this library knows them (conduit.h: versioned by
 * struct_size); NULL is all defaults. -CONDUIT_EINVAL with the reason in
 * this thread's last failure (and, for a zeroed struct, its errbuf).
 */
static int options_load(struct conduit_options *dst, const struct conduit_options *src)
{
    const unsigned char *extra, *end;
    const char *why = NULL;

    memset(dst, 0, sizeof(*dst));
    dst->struct_size = sizeof(*dst);
    if (!src) {
        return 0;
    }
    if (src->struct_size == 0) {
        why = "struct conduit_options not initialised: use CONDUIT_OPTIONS_INIT";
        if (src->errbuf && src->errbuf_len) {
            snprintf(src->errbuf, src->errbuf_len, "%s", why);
        }
    } else if (src->struct_size < OPTIONS_SIZE_V0 || src->struct_size > OPTIONS_SIZE_MAX) {
        why = "struct conduit_options has a struct_size this libconduit does not know";
    } else {
        end = (const unsigned char *)src + src->struct_size;
        for (extra = (const unsigned char *)src + sizeof(*dst); extra < end && !why; extra++) {
            if (*extra) {
                why = "struct conduit_options sets fields this libconduit does not know (built "
                      "against a newer conduit.h)";
            }
        }
    }
    if (why) {
        snprintf(last_failure, sizeof(last_failure), "%s", why);
        return -CONDUIT_EINVAL;
    }
    /* An older caller's struct ends early: the fields it does not have stay zero. */
    memcpy(dst, src, src->struct_size < sizeof(*dst) ? src->struct_size : sizeof(*dst));
    dst->struct_size = sizeof(*dst);
    return 0;
}

/* Checks of a URI that need no I/O: usage errors. */
static int check_uri(struct conduit__err *e, const struct conduit_uri *u, bool listen,
                     const struct conduit_options *opts)
{
    if (!listen &&
        ((u->transport == CONDUIT_TRANSPORT_TCP && u->tcp.host == NULL) ||
         (u->transport == CONDUIT_TRANSPORT_VCHAN && u->vchan.domid == CONDUIT_DOMID_ANY))) {
        return conduit__errorf(e, CONDUIT_EWILDCARD,
                               "'*' (any address) can only be listened on, not connected to");
    }
    /* The server chooses both rings; a client's wish would be silently dropped. */
    if (!listen && (u->options & (CONDUIT_URI_OPT_READ_SIZE | CONDUIT_URI_OPT_WRITE_SIZE))) {
        return conduit__errorf(e, CONDUIT_EOPTION,
                               "%s is chosen by the server: give it on the listen URI (a client "
                               "gets the rings its server shared)",
                               (u->options & CONDUIT_URI_OPT_READ_SIZE) ? "read-size" : "write-size");
    }
    if (u->layer != CONDUIT_LAYER_TLS && opts &&
        (opts->ca != NULL || opts->cert != NULL ||
         (opts->key != NULL && u->layer != CONDUIT_LAYER_SODIUM))) {
        return conduit__errorf(e, CONDUIT_EOPTION,
                               "TLS files (ca, cert, key) given for a URI "
                               "without TLS");
    }
    if (u->layer != CONDUIT_LAYER_SODIUM && opts && (opts->peer != NULL || opts->peers != NULL)) {
        return conduit__errorf(e, CONDUIT_EOPTION,
                               "sodium keys (peer, peers) given for a URI without sodium");
    }
    /* Only a TCP host is a name a certificate can be checked against. */
    if (!listen && u->layer == CONDUIT_LAYER_TLS && u->tls.verify && !u->tls.servername &&
        u->transport != CONDUIT_TRANSPORT_TCP) {
        return conduit__errorf(e, CONDUIT_EOPTION,
                               "tls+%s needs servername= to verify the server's certificate (or "
                               "verify=0 to turn verification off)",
                               conduit_transport_name(u->transport));
    }
    return 0;
}

/* ------------------------------------------------------------ waiting */

/* CONDUIT_WANT_SHUTDOWN as what the top layer's shutdown waits for. */
static unsigned shutdown_want(const struct conduit *c, unsigned want)
{
    if (want & CONDUIT_WANT_SHUTDOWN) {
        want &= ~CONDUIT_WANT_SHUTDOWN;
        want |= c->top->ops->shutdown_want ? c->top->ops->shutdown_want : CONDUIT_WANT_WRITE;
    }
    return want;
}

static const char *want_text(unsigned want, bool handshake)
{
    if (handshake) {
        return "waiting for the TLS handshake";
    }
    if (want & CONDUIT_WANT_DRAIN) {
        return "waiting for the peer to consume our data";
    }
    return want & CONDUIT_WANT_WRITE ? "waiting for room to write" : "waiting for data";
}

static int timed_out(struct conduit *c, unsigned want, int timeout_ms)
{
    return conduit__errorf(&c->err, CONDUIT_ETIMEDOUT, "timed out after %.3f s %s",
                           timeout_ms / 1000.0, want_text(want, !c->handshaken));
}

/* The handle's mode, to a top layer that waits by itself. */
static void apply_mode(struct conduit *c)
{
    if (c->top->ops->set_blocking) {
        c->top->ops->set_blocking(c->top, !c->nonblocking, c->timeout_ms);
    }
}

/*
 * Sleep until the top layer says `want` can progress, or the deadline (0:
 * none). *deadline 0 is taken from timeout_ms now, on the first wait: a
 * call that never waits never reads the clock.
 */
static int wait_ready(struct conduit *c, unsigned want, uint64_t *deadline, int timeout_ms)
{
    if (*deadline == 0) {
        *deadline = vclock_deadline(vdeadline_timeout(timeout_ms));
    }
    want = shutdown_want(c, want);
    for (;;) {
        struct pollfd p = {.fd = -1};
        short events = 0;
        int rc, ms;

        rc = c->top->ops->poll_events(c->top, want | CONDUIT_WANT_SPIN, &events);
        if (rc < 0) {
            return rc;
        }
        if (rc > 0) {
            return 0;
        }
        ms = vclock_left(*deadline);
        if (ms == 0) {
            return timed_out(c, want, timeout_ms);
        }
        p.fd = c->top->ops->fd(c->top);
        p.events = events;
        if (p.fd < 0) {
            return conduit__errorf(&c->err, CONDUIT_EIO, "connection has no descriptor to wait on");
        }
        rc = poll(&p, 1, ms);
        if (rc < 0 && errno != EINTR) {
            return conduit__errorf(&c->err, CONDUIT_EIO, "poll: %s", strerror(errno));
        }
        if (rc > 0 && (p.revents & POLLNVAL)) {
            return conduit__errorf(&c->err, CONDUIT_EIO, "poll: descriptor %d is not open", p.fd);
        }
        if (rc > 0) {
            return 0; /* something happened: the caller tries again */
        }
    }
}

/* One non-blocking step of the handshake, if the stack has one. */
static void describe(struct conduit__layer *l, char *buf, size_t len);

/* conduit_info's text, made again whenever what it describes changes. */
static void refresh_info(struct conduit *c)
{
    c->info[0] = '\0';
    describe(c->top, c->info, sizeof(c->info));
}

static int handshake_step(struct conduit *c)
{
    int rc;

    if (c->handshaken) {
        return 0;
    }
    rc = c->top->ops->handshake ? c->top->ops->handshake(c->top) : 0;
    if (rc == 0) {
        c->handshaken = true;
        refresh_info(c); /* the TLS version and cipher are known now */
    } else if (rc == -CONDUIT_EAGAIN && c->handshake_deadline &&
               c->handshake_deadline != VDEADLINE_NONE &&
               vclock_now_ms() >= c->handshake_deadline) {
        rc = conduit__errorf(&c->err, CONDUIT_ETIMEDOUT,
                             "timed out: the %s handshake did not finish in time",
                             c->top->ops->name);
    }
    return rc;
}

/* The whole handshake, blocking, by `deadline`. */
static int handshake_all(struct conduit *c, uint64_t deadline, int timeout_ms)
{
    for (;;) {
        int rc = handshake_step(c);

        if (rc != -CONDUIT_EAGAIN) {
            return rc;
        }
        if ((rc = wait_ready(c, CONDUIT_WANT_READ, &deadline, timeout_ms)) < 0) {
            return rc;
        }
    }
}

/*
 * What conduit_connect_uri and conduit_listen_uri start with: a zeroed
 * handle of `size` bytes whose error sink, `err_off` bytes in, is named
 * after the URI and logs through the caller's logger. NULL without a URI
 * or memory, with *rc and this thread's last failure saying which.
 */
static void *handle_new(const struct conduit_uri *u, const struct conduit_options *opts,
                        size_t size, size_t err_off, int *rc)
{
    struct conduit__err *e;
    char *h;

    if (!u) {
        snprintf(last_failure, sizeof(last_failure), "no URI given");
        *rc = -CONDUIT_EINVAL;
        return NULL;
    }
    if (!(h = calloc(1, size))) {
        snprintf(last_failure, sizeof(last_failure), "out of memory");
        *rc = -CONDUIT_ENOMEM;
        return NULL;
    }
    e = (struct conduit__err *)(h + err_off);
    endpoint_name(u, e->name, sizeof(e->name));
    if (opts) {
        e->log = opts->log;
        e->log_ctx = opts->log_ctx;
    }
    return h;
}

/* conduit_connect's and conduit_listen's URI text, parsed; a failure is the constructor's. */
static int parse_arg(const char *uri, unsigned flags, const struct conduit_options *opts,
                     struct conduit_uri **u)
{
    char err[CONDUIT__MSG_MAX];
    int rc = conduit_uri_parse(uri ? uri : "", flags, u, err, sizeof(err));

    if (rc < 0) {
        struct conduit__err e = {.msg = ""};

        conduit__fmt(e.msg, sizeof(e.msg), "%s: %s", uri ? uri : "(null)", err);
        return failed(&e, opts, rc);
    }
    return 0;
}

/* ------------------------------------------------------------ the tables */

/*
 * One open path for every URI: its transport from this table, then each
 * layer above it from the next. Connect, listen and accept read the same
 * entries, so a transport or layer is added in one place.
 */
struct transport_def {
    enum conduit_transport id;
    int (*connect)(struct conduit__err *e, const struct conduit__connect_args *a,
                   struct conduit__layer **out);
    int (*listen)(struct conduit_listener *l, const struct conduit_uri *u,
                  const struct conduit_options *opts);
};

static const struct transport_def transports[] = {
    {CONDUIT_TRANSPORT_TCP, conduit__tcp_connect, conduit__tcp_listen},
    {CONDUIT_TRANSPORT_UNIX, conduit__unix_connect, conduit__unix_listen},
    {CONDUIT_TRANSPORT_VCHAN, conduit__vchan_connect, conduit__vchan_listen},
};

/*
 * A layer stacked on a transport. client: made before the transport is
 * connected (so a bad file is reported before anything goes on the wire),
 * given its lower layer afterwards. listen: its part of a listener (freed by
 * listen_free); server: wraps each accepted connection. `missing`: the
 * message of a layer this build cannot open.
 */
struct layer_def {
    enum conduit_layer id;
    const char *missing;
    int (*client)(struct conduit__err *e, const struct conduit__connect_args *a,
                  struct conduit__layer *lower, struct conduit__layer **out);
    int (*listen)(struct conduit_listener *l, const struct conduit_uri *u,
                  const struct conduit_options *opts);
    int (*server)(struct conduit_listener *l, struct conduit__err *e, struct conduit__layer *lower,
                  struct conduit__layer **out);
    void (*listen_free)(struct conduit_listener *l);
};

static const struct layer_def layers[] = {
    {CONDUIT_LAYER_TLS, NULL, conduit__tls_client, conduit__tls_listen, conduit__tls_server,
     conduit__tls_listen_free},
    {CONDUIT_LAYER_SODIUM, NULL, conduit__sodium_client, conduit__sodium_listen,
     conduit__sodium_server, conduit__sodium_listen_free},
};

static const struct transport_def *transport_of(enum conduit_transport id)
{
    for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++) {
        if (transports[i].id == id) {
            return &transports[i];
        }
    }
    return NULL;
}

/* The URI's layer (NULL: none), or an error naming why it cannot be used. */
static int layer_of(struct conduit__err *e, enum conduit_layer id, const struct layer_def **out)
{
    *out = NULL;
    if (id == CONDUIT_LAYER_NONE) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(layers) / sizeof(layers[0]); i++) {
        if (layers[i].id == id) {
            if (layers[i].missing) {
                return conduit__errorf(e, CONDUIT_ENOTSUP, "%s", layers[i].missing);
            }
            *out = &layers[i];
            return 0;
        }
    }
    return conduit__errorf(e, CONDUIT_ESCHEME, "unknown layer");
}

/* ------------------------------------------------------------ connect */

CONDUIT_EXPORT int conduit_connect_uri(struct conduit **out, const struct conduit_uri *u,
                                       const struct conduit_options *opts)
{
    struct conduit_options o;
    struct conduit__connect_args a = {.uri = u, .opts = &o};
    struct conduit__layer *lower = NULL, *upper = NULL;
    const struct transport_def *t;
    const struct layer_def *ly;
    struct conduit *c;
    int rc;

    if (!out) {
        return -CONDUIT_EINVAL;
    }
    *out = NULL;
    if ((rc = options_load(&o, opts)) < 0) {
        return rc;
    }
    if (!(c = handle_new(u, &o, sizeof(*c), offsetof(struct conduit, err), &rc))) {
        return rc;
    }
    if ((rc = layer_of(&c->err, u->layer, &ly)) < 0 || (rc = check_uri(&c->err, u, false, &o)) < 0) {
        goto out;
    }
    if (!(t = transport_of(u->transport))) {
        rc = conduit__errorf(&c->err, CONDUIT_ESCHEME, "unknown transport");
        goto out;
    }
    a.timeout_ms = connect_timeout(u, &o);
    if (a.timeout_ms == 0) {
        a.timeout_ms = CONDUIT_CONNECT_TIMEOUT_MS;
    }
    a.deadline = vclock_deadline(vdeadline_timeout(a.timeout_ms));
    if (ly && (rc = ly->client(&c->err, &a, NULL, &upper)) < 0) {
        goto out;
    }
    if ((rc = t->connect(&c->err, &a, &lower)) < 0) {
        goto out;
    }
    if (upper) {
        upper->next = lower;
        c->top = upper;
    } else {
        c->top = lower;
    }
    upper = lower = NULL;
    refresh_info(c);
    if ((rc = handshake_all(c, a.deadline, a.timeout_ms)) < 0) {
        goto out;
    }
    c->timeout_ms = io_timeout(u, &o);
    c->nonblocking = o.nonblocking;
    apply_mode(c);
    c->err.msg[0] = '\0';
    *out = c;
    return 0;
out:
    failed(&c->err, &o, rc);
    conduit__layer_close_all(c->top);
    conduit__layer_close_all(upper);
    conduit__layer_close_all(lower);
    free(c);
    return rc;
}

CONDUIT_EXPORT int conduit_connect(struct conduit **out, const char *uri,
                                   const struct conduit_options *opts)
{
    struct conduit_uri *u = NULL;
    int rc;

    if (!out) {
        return -CONDUIT_EINVAL;
    }
    *out = NULL;
    if ((rc = parse_arg(uri, 0, opts, &u)) < 0) {
        return rc;
    }
    rc = conduit_connect_uri(out, u, opts);
    conduit_uri_free(u);
    return rc;
}

/* ------------------------------------------------------------ I/O */

CONDUIT_EXPORT int conduit_read(struct conduit *c, void *buf, size_t len, size_t *nread)
{
    uint64_t deadline;
    int rc;

    if (nread) {
        *nread = 0;
    }
    if (!c || !buf || !len || !nread) {
        return -CONDUIT_EINVAL;
    }
    deadline = 0; /* taken at the first wait */
    for (;;) {
        rc = handshake_step(c);
        if (rc == 0) {
            rc = c->top->ops->read(c->top, buf, len, nread);
        }
        if (rc == -CONDUIT_ETIMEDOUT && c->top->ops->set_blocking) {
            return timed_out(c, CONDUIT_WANT_READ, c->timeout_ms);
        }
        if (rc != -CONDUIT_EAGAIN || c->nonblocking) {
            return rc;
        }
        if ((rc = wait_ready(c, CONDUIT_WANT_READ, &deadline, c->timeout_ms)) < 0) {
            return rc;
        }
    }
}

CONDUIT_EXPORT int conduit_write(struct conduit *c, const void *buf, size_t len, size_t *nwritten)
{
    uint64_t deadline;
    size_t done = 0;
    int rc;

    if (nwritten) {
        *nwritten = 0;
    }
    if (!c || (!buf && len) || !nwritten) {
        return -CONDUIT_EINVAL;
    }
    if (c->shut || c->shutting) {
        return conduit__errorf(&c->err, CONDUIT_ESHUTDOWN,
                               "cannot write: the write side was shut down");
    }
    deadline = 0; /* taken at the first wait */
    while (done < len) {
        size_t n = 0;

        rc = handshake_step(c);
        if (rc == 0) {
            rc = c->top->ops->write(c->top, (const uint8_t *)buf + done, len - done, &n);
            done += n;
            *nwritten = done;
            if (rc == 0 && n == 0) {
                rc = -CONDUIT_EAGAIN; /* no progress is the same as would-block */
            }
        }
        if (rc == 0) {
            if (c->nonblocking) {
                return 0;
            }
            continue;
        }
        if (rc == -CONDUIT_ETIMEDOUT && c->top->ops->set_blocking) {
            return timed_out(c, CONDUIT_WANT_WRITE, c->timeout_ms);
        }
        if (rc != -CONDUIT_EAGAIN) {
            return rc;
        }
        if (c->nonblocking) {
            return done > 0 ? 0 : -CONDUIT_EAGAIN;
        }
        if ((rc = wait_ready(c, CONDUIT_WANT_WRITE, &deadline, c->timeout_ms)) < 0) {
            return rc;
        }
    }
    return 0;
}

CONDUIT_EXPORT int conduit_shutdown(struct conduit *c)
{
    uint64_t deadline;
    int rc;

    if (!c) {
        return -CONDUIT_EINVAL;
    }
    if (c->shut) {
        return 0;
    }
    deadline = 0; /* taken at the first wait */
    for (;;) {
        rc = handshake_step(c);
        if (rc == 0) {
            rc = c->top->ops->shutdown(c->top);
        }
        if (rc == 0) {
            c->shut = true;
            refresh_info(c);
            c->shutting = false;
            return 0;
        }
        if (rc != -CONDUIT_EAGAIN) {
            return rc;
        }
        c->shutting = c->handshaken;
        if (c->nonblocking) {
            return rc;
        }
        if ((rc = wait_ready(c, c->handshaken ? CONDUIT_WANT_SHUTDOWN : CONDUIT_WANT_READ,
                             &deadline, c->timeout_ms)) < 0) {
            return rc;
        }
    }
}

CONDUIT_EXPORT void conduit_close(struct conduit *c)
{
    if (c) {
        conduit__layer_close_all(c->top);
        free(c);
    }
}

CONDUIT_EXPORT int conduit_fd(struct conduit *c)
{
    if (!c) {
        return -CONDUIT_EINVAL;
    }
    return c->top->ops->fd(c->top);
}

CONDUIT_EXPORT int conduit_poll_events(struct conduit *c, unsigned want, short *events)
{
    if (events) {
        *events = 0;
    }
    if (!c || !events) {
        return -CONDUIT_EINVAL;
    }
    return c->top->ops->poll_events(c->top, shutdown_want(c, want), events);
}

CONDUIT_EXPORT bool conduit_has_half_close(const struct conduit *c)
{
    return c && c->top->ops->half_close;
}

CONDUIT_EXPORT bool conduit_handshake_done(const struct conduit *c)
{
    return c && (c->handshaken || !c->top->ops->handshake);
}

CONDUIT_EXPORT int conduit_unconsumed(struct conduit *c, size_t *n)
{
    if (n) {
        *n = 0;
    }
    if (!c || !n) {
        return -CONDUIT_EINVAL;
    }
    return c->top->ops->unconsumed(c->top, n);
}

CONDUIT_EXPORT void conduit_set_nonblocking(struct conduit *c, bool nonblocking)
{
    if (c) {
        c->nonblocking = nonblocking;
        apply_mode(c);
    }
}

CONDUIT_EXPORT void conduit_set_timeout(struct conduit *c, int timeout_ms)
{
    if (c) {
        c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
        apply_mode(c);
    }
}

CONDUIT_EXPORT const char *conduit_last_error(const struct conduit *c)
{
    return c ? c->err.msg : last_failure;
}

/* Layers describe themselves bottom first: "tcp ... ; TLSv1.3 ...". */
static void describe(struct conduit__layer *l, char *buf, size_t len)
{
    size_t used;

    if (!l) {
        return;
    }
    describe(l->next, buf, len);
    used = strlen(buf);
    if (used > 0 && used + 2 < len) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    if (l->ops->info && used < len) {
        l->ops->info(l, buf + used, len - used);
    }
}

CONDUIT_EXPORT const char *conduit_info(const struct conduit *c)
{
    return c ? c->info : "";
}

/* ------------------------------------------------------------ listen */

CONDUIT_EXPORT int conduit_listen_uri(struct conduit_listener **out, const struct conduit_uri *u,
                                      const struct conduit_options *opts)
{
    struct conduit_options o;
    const struct transport_def *t;
    struct conduit_listener *l;
    int rc;

    if (!out) {
        return -CONDUIT_EINVAL;
    }
    *out = NULL;
    if ((rc = options_load(&o, opts)) < 0) {
        return rc;
    }
    if (!(l = handle_new(u, &o, sizeof(*l), offsetof(struct conduit_listener, err), &rc))) {
        return rc;
    }
    l->layer = u->layer;
    l->transport = u->transport;
    l->nonblocking = o.nonblocking;
    l->timeout_ms = connect_timeout(u, &o);
    l->io_timeout_ms = io_timeout(u, &o);
    if ((rc = layer_of(&l->err, u->layer, &l->layer_def)) < 0 ||
        (rc = check_uri(&l->err, u, true, &o)) < 0) {
        goto out;
    }
    if (!(t = transport_of(u->transport))) {
        rc = conduit__errorf(&l->err, CONDUIT_ESCHEME, "unknown transport");
        goto out;
    }
    if (l->layer_def && (rc = l->layer_def->listen(l, u, &o)) < 0) {
        goto out;
    }
    if ((rc = t->listen(l, u, &o)) < 0) {
        goto out;
    }
    l->err.msg[0] = '\0';
    *out = l;
    return 0;
out:
    failed(&l->err, &o, rc);
    if (l->layer_def) {
        l->layer_def->listen_free(l);
    }
    free(l);
    return rc;
}

CONDUIT_EXPORT int conduit_listen(struct conduit_listener **out, const char *uri,
                                  const struct conduit_options *opts)
{
    struct conduit_uri *u = NULL;
    int rc;

    if (!out) {
        return -CONDUIT_EINVAL;
    }
    *out = NULL;
    if ((rc = parse_arg(uri, CONDUIT_URI_LISTEN, opts, &u)) < 0) {
        return rc;
    }
    rc = conduit_listen_uri(out, u, opts);
    conduit_uri_free(u);
    return rc;
}

/* Wait for the listener's descriptor, at most `ms` (-1: no limit). */
static int wait_listener(struct conduit_listener *l, int ms)
{
    struct pollfd p = {.fd = l->ops->fd(l), .events = POLLIN};

    if (poll(&p, 1, ms) < 0 && errno != EINTR) {
        return conduit__errorf(&l->err, CONDUIT_EIO, "poll: %s", strerror(errno));
    }
    return 0;
}

CONDUIT_EXPORT int conduit_accept(struct conduit_listener *l, struct conduit **out)
{
    struct conduit__layer *lower = NULL, *top = NULL;
    char peer[CONDUIT__NAME_MAX] = "";
    uint64_t deadline;
    struct conduit *c;
    int rc;

    if (!out) {
        return -CONDUIT_EINVAL;
    }
    *out = NULL;
    if (!l) {
        return -CONDUIT_EINVAL;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        return conduit__errorf(&l->err, CONDUIT_ENOMEM, "out of memory");
    }
    c->err.log = l->err.log;
    c->err.log_ctx = l->err.log_ctx;
    /*
     * The accept timeout runs from the first call that found no client: a
     * blocking call waits that long at most, and non-blocking calls say
     * ETIMEDOUT once it has passed, so a caller that polls the listener
     * beside other work (signals, -k) keeps one deadline, conduit's.
     */
    deadline = vclock_deadline(vdeadline_timeout(l->timeout_ms));
    for (;;) {
        int ms, tick;

        rc = l->ops->accept(l, &c->err, &lower, peer, sizeof(peer));
        if (rc != -CONDUIT_EAGAIN) {
            break;
        }
        if (l->nonblocking && l->timeout_ms > 0) {
            if (l->waiting_since == 0) {
                l->waiting_since = vclock_now_ms();
            }
            deadline = l->waiting_since + (uint64_t)l->timeout_ms;
        }
        ms = vclock_left(deadline);
        if (l->nonblocking && ms != 0) {
            break;
        }
        if (ms == 0) {
            rc = conduit__errorf(&l->err, CONDUIT_ETIMEDOUT,
                                 "timed out: no client connected within %.3f s",
                                 l->timeout_ms / 1000.0);
            break;
        }
        tick = l->ops->tick_ms ? l->ops->tick_ms(l) : -1;
        if (tick < 0) {
            tick = ACCEPT_TICK_MS * 4;
        }
        if (ms < 0 || tick < ms) {
            ms = tick;
        }
        if ((rc = wait_listener(l, ms)) < 0) {
            break;
        }
    }
    if (rc < 0) {
        free(c);
        return rc;
    }
    l->waiting_since = 0;
    if (l->layer_def) {
        /* "tcp://..." becomes "tls://...", "vchan://..." "tls+vchan://...". */
        const char *name = conduit_layer_name(l->layer);
        bool tcp = l->transport == CONDUIT_TRANSPORT_TCP && l->layer == CONDUIT_LAYER_TLS;

        conduit__fmt(c->err.name, sizeof(c->err.name), "%s%s%s", name, tcp ? "" : "+",
                     tcp ? peer + 3 : peer);
        if ((rc = l->layer_def->server(l, &c->err, lower, &top)) < 0) {
            conduit__layer_close_all(lower);
            goto fail;
        }
    } else {
        snprintf(c->err.name, sizeof(c->err.name), "%s", peer);
        top = lower;
    }
    c->top = top;
    c->nonblocking = l->nonblocking;
    c->timeout_ms = l->io_timeout_ms;
    refresh_info(c);
    apply_mode(c);
    {
        int t = l->timeout_ms > 0 ? l->timeout_ms : CONDUIT_CONNECT_TIMEOUT_MS;

        if (!l->nonblocking && (rc = handshake_all(c, vclock_deadline(vdeadline_timeout(t)), t)) < 0) {
            conduit__layer_close_all(top);
            goto fail;
        }
        /* Non-blocking: the handshake runs in the first calls, by the same deadline. */
        c->handshake_deadline = vclock_deadline(vdeadline_timeout(t));
    }
    *out = c;
    return 0;
fail:
    /* The listener goes on; its last error says what became of this connection. */
    snprintf(l->err.msg, sizeof(l->err.msg), "%s", c->err.msg);
    free(c);
    return rc;
}

CONDUIT_EXPORT int conduit_listener_fd(struct conduit_listener *l)
{
    return l ? l->ops->fd(l) : -CONDUIT_EINVAL;
}

CONDUIT_EXPORT const char *conduit_listener_last_error(const struct conduit_listener *l)
{
    return l ? l->err.msg : "";
}

CONDUIT_EXPORT void conduit_listener_close(struct conduit_listener *l)
{
    if (l) {
        if (l->ops) {
            l->ops->close(l);
        }
        if (l->layer_def) {
            l->layer_def->listen_free(l);
        }
        free(l);
    }
}

/* ------------------------------------------------------------ sodium keys */

CONDUIT_EXPORT int conduit_key_generate(const char *path, char *pub)
{
    struct conduit__err e = {.name = "sodium"};
    int rc;

    if (!path || !pub) {
        snprintf(last_failure, sizeof(last_failure), "conduit_key_generate: invalid argument");
        return -CONDUIT_EINVAL;
    }
    if ((rc = conduit__key_generate(&e, path, pub)) < 0) {
        failed(&e, NULL, rc);
    }
    return rc;
}

CONDUIT_EXPORT int conduit_key_public(const char *path, char *pub)
{
    struct conduit__err e = {.name = "sodium"};
    int rc;

    if (!path || !pub) {
        snprintf(last_failure, sizeof(last_failure), "conduit_key_public: invalid argument");
        return -CONDUIT_EINVAL;
    }
    if ((rc = conduit__key_public_of(&e, path, pub)) < 0) {
        failed(&e, NULL, rc);
    }
    return rc;
}
