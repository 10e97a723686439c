/* SPDX-License-Identifier: ISC */
/*
 * The accept rendezvous on libvchan's local platform (docs/accept.md).
 *
 * The local platform's rendezvous directory holds one socket per published
 * channel, <dir>/<server>.<client>.<port>. A vchan://STAR/P listener adds one
 * more, <dir>/<server>.accept.<P> ("accept" is no domain id, so it never
 * names a channel). A client connects there, sends a request naming itself
 * and a nonce, and the server answers once it has published a fresh channel
 * for that client at port "accept-<nonce>"; the client then connects to
 * that channel as to any other.
 *
 * As on the platform itself, domain ids are labels: the credential is the
 * peer's uid (SO_PEERCRED: ours or root), and the directory must be ours
 * alone (0700, not group- or world-writable), so nobody else can put a
 * socket in place of ours. The directory, its rules and VCHAN_DOMID are
 * the platform's own (libvchan/platform/local_dir.c, compiled into both libraries);
 * the messages are parsed in rdv_parse.c.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* struct ucred, accept4 */
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "libconduit/internal/internal.h"
#include "libvchan/platform/local_dir.h"
#include "vchan.h"

#define PATH_LEN sizeof(((struct sockaddr_un *)0)->sun_path)
/* A client sends its request right after connecting. */
#define REQUEST_TIMEOUT_MS 500
#define LISTEN_BACKLOG 64

/* ------------------------------------------------------------ shared */

/* A failure of libvchan/platform/local_dir.c as ours: its message, the nearest code. */
static int dir_error(struct conduit__err *e, int vrc, const char *msg)
{
    switch (vrc) {
    case -VCHAN_EINVAL:
        return conduit__errorf(e, CONDUIT_EINVAL, "%s", msg);
    case -VCHAN_EPERM:
        return conduit__errorf(e, CONDUIT_EPERM, "%s", msg);
    case -VCHAN_EADDRINUSE:
        return conduit__errorf(e, CONDUIT_EADDRINUSE, "%s", msg);
    default:
        return conduit__errorf(e, CONDUIT_EIO, "%s", msg);
    }
}

int conduit__local_self_domid(struct conduit__err *e, int *domid)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    int rc = vchan__local_env_domid(domid, msg);

    return rc < 0 ? dir_error(e, rc, msg) : 0;
}

static int runtime_dir(struct conduit__err *e, char *dir, size_t len)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    int rc = vchan__local_dir_name(dir, len, msg);

    return rc < 0 ? dir_error(e, rc, msg) : 0;
}

/* As the platform: ours alone, or refused. -CONDUIT_ENOENT (no message) when absent. */
static int check_dir(struct conduit__err *e, const char *dir, bool create)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    int rc = vchan__local_dir_check(dir, create, msg);

    if (rc == -VCHAN_ENOENT && !create) {
        return -CONDUIT_ENOENT;
    }
    return rc < 0 ? dir_error(e, rc, msg) : 0;
}

/* The socket of libvchan's spelling (local_dir.c): client VCHAN__LOCAL_ACCEPT for the accept
 * service. */
static int make_path(struct conduit__err *e, char *buf, const char *dir, int server, int client,
                     const char *port)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    int rc = vchan__local_path(buf, PATH_LEN, dir, server, client, port, msg);

    return rc < 0 ? dir_error(e, rc, msg) : 0;
}

/* ------------------------------------------------------------ client */

struct lclient {
    struct conduit__rdv_client base;
    struct conduit__err *e;
    int server, self;
    uint64_t deadline; /* of the whole connect */
    char port[VCHAN_PORT_MAX + 1];
    char dir[PATH_LEN];
};

static int lc_probe(struct conduit__rdv_client *rc, const char *nonce, enum conduit__probe *out)
{
    struct lclient *c = (struct lclient *)rc;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct conduit__rdv_request req;
    struct conduit__rdv_reply rep;
    char why[CONDUIT__RDV_WHY_LEN];
    char path[PATH_LEN];
    struct stat sb;
    int fd = -1, rc2, err, refusal, ms;

    *out = CONDUIT__PROBE_NONE;
    rc2 = check_dir(c->e, c->dir, false);
    if (rc2 == -CONDUIT_ENOENT) {
        return 0;
    }
    if (rc2 < 0) {
        return rc2;
    }
    /* A channel published for us alone comes first (DESIGN.md). */
    if ((rc2 = make_path(c->e, path, c->dir, c->server, c->self, c->port)) < 0) {
        return rc2;
    }
    if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
        *out = CONDUIT__PROBE_DIRECT;
        return 0;
    }
    if ((rc2 = make_path(c->e, sa.sun_path, c->dir, c->server, VCHAN__LOCAL_ACCEPT, c->port)) < 0) {
        return rc2;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return conduit__errorf(c->e, CONDUIT_EIO, "socket: %s", strerror(errno));
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        err = errno;
        close(fd);
        if (err == ENOENT || err == ECONNREFUSED || err == EAGAIN) {
            return 0; /* no listener (yet), a stale socket, or a full backlog: look again */
        }
        return conduit__errorf(c->e, err == EACCES ? CONDUIT_EPERM : CONDUIT_EIO,
                               "cannot connect to %s: %s", sa.sun_path, strerror(err));
    }
    conduit__rdv_request_make(&req, c->self, c->server, nonce, c->port);
    /* A fresh socket's buffer takes a hundred bytes: this never blocks. */
    if (send(fd, &req, sizeof(req), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(req)) {
        err = errno;
        close(fd);
        return conduit__errorf(c->e, CONDUIT_EIO, "cannot send a request to %s: %s", sa.sun_path,
                               strerror(err));
    }
    /*
     * The server answers when it next accepts, which may be after it has
     * finished with an earlier client (vchan-cat -k): wait as long as the
     * connect timeout allows.
     */
    ms = vclock_left(c->deadline);
    if (vchan__local_recv_full(fd, &rep, sizeof(rep), ms > 0 ? ms : 1) < 0) {
        err = errno;
        close(fd);
        if (err == ECONNRESET) {
            return 0; /* the listener went away (or was being replaced): look again */
        }
        if (err == ETIMEDOUT) {
            return conduit__errorf(c->e, CONDUIT_ETIMEDOUT,
                                   "server domain %d did not answer our request in time",
                                   c->server);
        }
        return conduit__errorf(c->e, CONDUIT_EIO, "no answer from %s: %s", sa.sun_path,
                               strerror(err));
    }
    close(fd);
    if (conduit__rdv_reply_parse(&rep, &refusal, why, sizeof(why)) < 0) {
        return conduit__errorf(c->e, CONDUIT_EPROTO, "malformed answer from %s", sa.sun_path);
    }
    if (refusal) {
        return conduit__errorf(c->e, refusal, "server domain %d refused the connection: %s",
                               c->server, why);
    }
    *out = CONDUIT__PROBE_ACCEPT;
    return 0;
}

static int lc_answer(struct conduit__rdv_client *rc)
{
    (void)rc;
    return 1; /* the server answered only once the channel was published */
}

static void lc_where(struct conduit__rdv_client *rc, char *buf, size_t len)
{
    struct lclient *c = (struct lclient *)rc;

    char direct[PATH_LEN], accept[PATH_LEN], msg[VCHAN__LOCAL_MSG_MAX];

    /* probe has refused a path too long already; should one get here, say so. */
    if (vchan__local_path(direct, sizeof(direct), c->dir, c->server, c->self, c->port, msg) < 0 ||
        vchan__local_path(accept, sizeof(accept), c->dir, c->server, VCHAN__LOCAL_ACCEPT, c->port,
                          msg) < 0) {
        snprintf(buf, len, "%s", msg);
        return;
    }
    snprintf(buf, len, "%s, nor an accept service at %s", direct, accept);
}

static void lc_close(struct conduit__rdv_client *rc)
{
    free(rc);
}

static const struct conduit__rdv_client_ops lclient_ops = {
    .probe = lc_probe,
    .answer = lc_answer,
    .where = lc_where,
    .close = lc_close,
};

int conduit__local_rdv_client_open(struct conduit__err *e, int server, const char *port,
                                   uint64_t deadline, struct conduit__rdv_client **out)
{
    struct lclient *c;
    int rc;

    if (!(c = calloc(1, sizeof(*c)))) {
        return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
    }
    c->base.ops = &lclient_ops;
    c->e = e;
    c->server = server;
    c->deadline = deadline;
    snprintf(c->port, sizeof(c->port), "%s", port);
    if ((rc = conduit__local_self_domid(e, &c->self)) < 0 ||
        (rc = runtime_dir(e, c->dir, sizeof(c->dir))) < 0) {
        free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

/* ------------------------------------------------------------ server */

struct lserver {
    struct conduit__rdv_server base;
    struct conduit__err *e;
    int fd;
    int cur; /* the request being answered */
    int self;
    char port[VCHAN_PORT_MAX + 1];
    char path[PATH_LEN];
    struct vchan__local_sock sock;
};

static int ls_fd(struct conduit__rdv_server *rs)
{
    return ((struct lserver *)rs)->fd;
}

static void reply(int fd, int status, const char *why)
{
    struct conduit__rdv_reply rep;
    ssize_t n;

    conduit__rdv_reply_make(&rep, status, why);
    /* A fresh socket's buffer takes it whole; a client that left does not matter. */
    n = send(fd, &rep, sizeof(rep), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
}

static int ls_next(struct conduit__rdv_server *rs, int *client, char nonce[CONDUIT__NONCE_LEN + 1])
{
    struct lserver *s = (struct lserver *)rs;

    if (s->cur >= 0) {
        close(s->cur);
        s->cur = -1;
    }
    for (;;) {
        struct conduit__rdv_request req;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        char why[160];
        int fd;

        fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == ECONNABORTED || errno == EINTR || errno == EPROTO) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                conduit__logf(s->e, CONDUIT_LOG_WARN, "accept on %s: %s", s->path, strerror(errno));
            }
            return 0;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
            conduit__logf(s->e, CONDUIT_LOG_WARN, "%s: no peer credentials: %s", s->path,
                          strerror(errno));
            close(fd);
            continue;
        }
        if (cred.uid != geteuid() && cred.uid != 0) {
            conduit__logf(s->e, CONDUIT_LOG_WARN, "refused pid %d of uid %u", (int)cred.pid,
                          (unsigned)cred.uid);
            reply(fd, CONDUIT_EPERM, "only the same user or root may connect");
            close(fd);
            continue;
        }
        if (vchan__local_recv_full(fd, &req, sizeof(req), REQUEST_TIMEOUT_MS) < 0) {
            conduit__logf(s->e, CONDUIT_LOG_WARN, "no request from pid %d: %s", (int)cred.pid,
                          strerror(errno));
            close(fd);
            continue;
        }
        if (conduit__rdv_request_parse(&req, s->self, s->port, client, nonce, why, sizeof(why)) <
            0) {
            conduit__logf(s->e, CONDUIT_LOG_WARN, "refused pid %d: %s", (int)cred.pid, why);
            reply(fd, CONDUIT_EPROTO, why);
            close(fd);
            continue;
        }
        conduit__logf(s->e, CONDUIT_LOG_DEBUG, "request from pid %d (uid %u) as domain %d",
                      (int)cred.pid, (unsigned)cred.uid, *client);
        s->cur = fd;
        return 1;
    }
}

static void ls_answer(struct conduit__rdv_server *rs, int status, const char *why)
{
    struct lserver *s = (struct lserver *)rs;

    if (s->cur >= 0) {
        reply(s->cur, status, why);
        close(s->cur);
        s->cur = -1;
    }
}

static void ls_close(struct conduit__rdv_server *rs)
{
    struct lserver *s = (struct lserver *)rs;

    if (s->cur >= 0) {
        close(s->cur);
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    /* Only our own socket: a successor's has another inode. */
    vchan__local_unbind(&s->sock, s->path);
    free(s);
}

static const struct conduit__rdv_server_ops lserver_ops = {
    .fd = ls_fd,
    .next = ls_next,
    .answer = ls_answer,
    .close = ls_close,
};

/* Bind s->path, replacing a stale socket but never a live one. */
static int bind_accept_socket(struct lserver *s)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    int rc = vchan__local_bind(s->fd, s->path, &s->sock, msg);

    if (s->sock.replaced_stale) {
        conduit__logf(s->e, CONDUIT_LOG_INFO, "removing stale socket %s", s->path);
        s->sock.replaced_stale = false;
    }
    if (rc == VCHAN__LOCAL_BUSY) {
        return conduit__errorf(s->e, CONDUIT_EADDRINUSE,
                               "another listener accepts for port %s (%s)", s->port, s->path);
    }
    return rc < 0 ? dir_error(s->e, rc, msg) : 0;
}

int conduit__local_rdv_server_open(struct conduit__err *e, const char *port,
                                   struct conduit__rdv_server **out)
{
    char dir[PATH_LEN];
    struct lserver *s;
    int rc;

    if (!(s = calloc(1, sizeof(*s)))) {
        return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
    }
    s->base.ops = &lserver_ops;
    s->e = e;
    s->fd = s->cur = -1;
    snprintf(s->port, sizeof(s->port), "%s", port);
    if ((rc = conduit__local_self_domid(e, &s->self)) < 0 ||
        (rc = runtime_dir(e, dir, sizeof(dir))) < 0 || (rc = check_dir(e, dir, true)) < 0 ||
        (rc = make_path(e, s->path, dir, s->self, VCHAN__LOCAL_ACCEPT, port)) < 0) {
        goto out;
    }
    s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        rc = conduit__errorf(e, CONDUIT_EIO, "socket: %s", strerror(errno));
        goto out;
    }
    if ((rc = bind_accept_socket(s)) < 0) {
        goto out;
    }
    if (listen(s->fd, LISTEN_BACKLOG) < 0) {
        rc = conduit__errorf(e, CONDUIT_EIO, "listen on %s: %s", s->path, strerror(errno));
        goto out;
    }
    conduit__logf(e, CONDUIT_LOG_DEBUG, "accepting at %s", s->path);
    *out = &s->base;
    return 0;
out:
    ls_close(&s->base);
    return rc;
}
