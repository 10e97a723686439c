/* SPDX-License-Identifier: ISC */
/*
 * The vchan transport's listeners (docs/accept.md). On vchan://D/P: one
 * channel at libxenvchan's path for client D, published at once; the next
 * is published when the previous connection is closed (a second server on a
 * live path would clobber its keys): the path is a "slot" shared with the
 * connection it handed out. On "*": each request through the rendezvous
 * gets its own channel at its own path; conduit_accept hands it out once the
 * client has connected, so a slow or vanished client never holds up the
 * others.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "libconduit/internal/internal.h"
#include "libconduit/transport/vchan_transport.h"

/* Connections published through the rendezvous whose client has not connected yet. */
#define MAX_PENDING 64
/* A blocking accept re-checks pending clients' deadlines this often. */
#define PENDING_TICK_MS 250

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
void conduit__vchan_slot_release(struct slot *s)
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
    p->sink = conduit__vchan_sink_new(&x->log, name);
    p->client = client;
    p->deadline = deadline;
    snprintf(p->port, sizeof(p->port), "%s", port);
    cfg.domain = client;
    cfg.port = port;
    cfg.read_size = x->rsize;
    cfg.write_size = x->wsize;
    cfg.nonblocking = true;
    cfg.log = p->sink ? conduit__vchan_sink_log : NULL;
    cfg.log_ctx = p->sink;
    cfg.errbuf = errbuf;
    cfg.errbuf_len = sizeof(errbuf);
    rc = vchan_server_open(&p->v, &cfg);
    if (rc < 0) {
        free(p->sink);
        free(p);
        return conduit__errorf(e, conduit__vchan_code(rc), "%s", errbuf[0] ? errbuf : vchan_strerror(rc));
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
    return conduit__errorf(e, conduit__vchan_code(rc), "%s", m[0] ? m : vchan_strerror(rc));
}

/* Give a connected channel to the caller as a layer. */
static int hand_out(struct conduit_listener *l, struct pending *p, struct conduit__err *err,
                    struct conduit__layer **out, char *peer, size_t peerlen)
{
    struct vlisten *x = l->impl;
    int rc;

    (void)epoll_ctl(x->epfd, EPOLL_CTL_DEL, vchan_fd(p->v), NULL);
    snprintf(peer, peerlen, "vchan://%d/%s", p->client, x->port);
    if (p->sink) {
        snprintf(p->sink->name, sizeof(p->sink->name), "%s", peer);
    }
    if (x->slot) {
        /* The caller holds the slot's lock; the layer holds a reference from now on. */
        x->slot->refs++;
        x->slot->busy = true;
    }
    rc = conduit__vchan_wrap(err, p->v, p->sink, true, p->client, p->port, x->slot, out);
    free(p);
    return rc;
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
