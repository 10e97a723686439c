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
 * socket in place of ours. The directory rules and VCHAN_DOMID parsing must
 * agree with dom0/platform_local.c, which libvchan does not export.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* struct ucred, accept4 */
#endif

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "libconduit/internal.h"
#include "vchan.h"

#define PATH_LEN sizeof(((struct sockaddr_un *)0)->sun_path)
/* A client sends its request right after connecting. */
#define REQUEST_TIMEOUT_MS 500
#define LISTEN_BACKLOG 64

/* Same host, so native byte order. */
#define REQ_MAGIC 0x71657263u /* "creq" */
#define REP_MAGIC 0x70657263u /* "crep" */
#define RDV_VERSION 1u

struct rdv_request {
    uint32_t magic, version;
    uint32_t client_domid, server_domid; /* what the client believes: checked */
    char nonce[CONDUIT__NONCE_LEN];      /* hex, no NUL */
    char port[VCHAN_PORT_MAX];           /* NUL-padded */
};

struct rdv_reply {
    uint32_t magic, version;
    int32_t status; /* 0, or the CONDUIT_E* code of a refusal */
    char why[200];  /* NUL-terminated */
};

/* ------------------------------------------------------------ shared */

int conduit__local_self_domid(struct conduit__err *e, int *domid)
{
    const char *s = getenv("VCHAN_DOMID");
    long val = 0;
    size_t i;

    *domid = 0;
    if (!s || !*s) {
        return 0;
    }
    for (i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 5) {
            return conduit__errorf(e, CONDUIT_EINVAL, "bad VCHAN_DOMID '%.32s' (expected 0-%d)", s,
                                   VCHAN_DOMID_MAX);
        }
        val = val * 10 + (s[i] - '0');
    }
    if (val > VCHAN_DOMID_MAX) {
        return conduit__errorf(e, CONDUIT_EINVAL, "bad VCHAN_DOMID '%s' (expected 0-%d)", s,
                               VCHAN_DOMID_MAX);
    }
    *domid = (int)val;
    return 0;
}

static int runtime_dir(struct conduit__err *e, char *dir, size_t len)
{
    const char *env = getenv("VCHAN_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;

    if (env && *env) {
        n = snprintf(dir, len, "%s", env);
    } else if (xdg && xdg[0] == '/') {
        n = snprintf(dir, len, "%s/vchan", xdg);
    } else {
        n = snprintf(dir, len, "/tmp/vchan-%u", (unsigned)geteuid());
    }
    if (n < 0 || (size_t)n >= len) {
        return conduit__errorf(e, CONDUIT_EINVAL, "vchan directory name too long (%d bytes)", n);
    }
    return 0;
}

/* As the platform: ours alone, or refused. -CONDUIT_ENOENT (no message) when absent. */
static int check_dir(struct conduit__err *e, const char *dir, bool create)
{
    struct stat sb;

    if (create && mkdir(dir, 0700) == 0) {
        if (chmod(dir, 0700) < 0) {
            return conduit__errorf(e, CONDUIT_EIO, "cannot set mode 0700 on %s: %s", dir,
                                   strerror(errno));
        }
    } else if (create && errno != EEXIST) {
        return conduit__errorf(e, errno == EACCES ? CONDUIT_EPERM : CONDUIT_EIO,
                               "cannot create vchan directory %s: %s", dir, strerror(errno));
    }
    if (lstat(dir, &sb) < 0) {
        if (errno == ENOENT && !create) {
            return -CONDUIT_ENOENT;
        }
        return conduit__errorf(e, errno == EACCES ? CONDUIT_EPERM : CONDUIT_EIO,
                               "cannot use vchan directory %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) {
        return conduit__errorf(e, CONDUIT_EPERM, "refusing vchan directory %s: not a directory",
                               dir);
    }
    if (sb.st_uid != geteuid()) {
        return conduit__errorf(e, CONDUIT_EPERM,
                               "refusing vchan directory %s: owned by uid %u, not by us (uid %u)",
                               dir, (unsigned)sb.st_uid, (unsigned)geteuid());
    }
    if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
        return conduit__errorf(e, CONDUIT_EPERM,
                               "refusing vchan directory %s: group- or world-writable (mode %04o)",
                               dir, (unsigned)(sb.st_mode & 07777));
    }
    return 0;
}

static int make_path(struct conduit__err *e, char *buf, const char *dir, int server,
                     const char *middle, const char *port)
{
    int n = snprintf(buf, PATH_LEN, "%s/%d.%s.%s", dir, server, middle, port);

    if (n < 0 || (size_t)n >= PATH_LEN) {
        return conduit__errorf(e, CONDUIT_EINVAL, "socket path %s/%d.%s.%s too long (%d bytes)",
                               dir, server, middle, port, n);
    }
    return 0;
}

/* Exactly len bytes within timeout_ms, from a non-blocking socket; -1 with errno. */
static int recv_full(int fd, void *buf, size_t len, int timeout_ms)
{
    uint64_t deadline = conduit__deadline(timeout_ms > 0 ? timeout_ms : 1);
    size_t got = 0;

    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);

        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        }
        if (conduit__remaining(deadline) == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (poll(&p, 1, conduit__remaining(deadline)) < 0 && errno != EINTR) {
            return -1;
        }
    }
    return 0;
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
    struct rdv_request req = {.magic = REQ_MAGIC, .version = RDV_VERSION};
    struct rdv_reply rep;
    char path[PATH_LEN];
    char self[16];
    struct stat sb;
    int fd = -1, rc2, err;

    *out = CONDUIT__PROBE_NONE;
    rc2 = check_dir(c->e, c->dir, false);
    if (rc2 == -CONDUIT_ENOENT) {
        return 0;
    }
    if (rc2 < 0) {
        return rc2;
    }
    /* A channel published for us alone comes first (DESIGN.md). */
    snprintf(self, sizeof(self), "%d", c->self);
    if ((rc2 = make_path(c->e, path, c->dir, c->server, self, c->port)) < 0) {
        return rc2;
    }
    if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
        *out = CONDUIT__PROBE_DIRECT;
        return 0;
    }
    if ((rc2 = make_path(c->e, sa.sun_path, c->dir, c->server, "accept", c->port)) < 0) {
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
    req.client_domid = (uint32_t)c->self;
    req.server_domid = (uint32_t)c->server;
    memcpy(req.nonce, nonce, CONDUIT__NONCE_LEN);
    memcpy(req.port, c->port, strlen(c->port));
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
    if (recv_full(fd, &rep, sizeof(rep), conduit__remaining(c->deadline)) < 0) {
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
    if (rep.magic != REP_MAGIC || rep.version != RDV_VERSION) { /* peer-controlled */
        return conduit__errorf(c->e, CONDUIT_EPROTO, "malformed answer from %s", sa.sun_path);
    }
    if (rep.status != 0) {
        int code = rep.status > 0 && rep.status < CONDUIT_ERRNO_MAX ? rep.status : CONDUIT_EIO;

        rep.why[sizeof(rep.why) - 1] = '\0';
        return conduit__errorf(c->e, code == CONDUIT_EAGAIN ? CONDUIT_EIO : code,
                               "server domain %d refused the connection: %s", c->server,
                               rep.why[0] ? rep.why : conduit_strerror(code));
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

    snprintf(buf, len, "%s/%d.%d.%s, nor an accept service at %s/%d.accept.%s", c->dir, c->server,
             c->self, c->port, c->dir, c->server, c->port);
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
    bool bound;
    dev_t dev;
    ino_t ino;
};

static int ls_fd(struct conduit__rdv_server *rs)
{
    return ((struct lserver *)rs)->fd;
}

static void reply(int fd, int status, const char *why)
{
    struct rdv_reply rep = {.magic = REP_MAGIC, .version = RDV_VERSION, .status = status};
    ssize_t n;

    if (why) {
        snprintf(rep.why, sizeof(rep.why), "%s", why);
    }
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
        struct rdv_request req;
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
        if (recv_full(fd, &req, sizeof(req), REQUEST_TIMEOUT_MS) < 0) {
            conduit__logf(s->e, CONDUIT_LOG_WARN, "no request from pid %d: %s", (int)cred.pid,
                          strerror(errno));
            close(fd);
            continue;
        }
        /* Everything below is peer-controlled. */
        why[0] = '\0';
        if (req.magic != REQ_MAGIC || req.version != RDV_VERSION) {
            snprintf(why, sizeof(why), "malformed request");
        } else if (req.server_domid != (uint32_t)s->self) {
            snprintf(why, sizeof(why), "this is domain %d, not %u", s->self, req.server_domid);
        } else if (req.client_domid > VCHAN_DOMID_MAX) {
            snprintf(why, sizeof(why), "client domain %u out of range", req.client_domid);
        } else if (strnlen(req.port, sizeof(req.port)) != strlen(s->port) ||
                   memcmp(req.port, s->port, strlen(s->port)) != 0) {
            snprintf(why, sizeof(why), "request for another port");
        } else {
            memcpy(nonce, req.nonce, CONDUIT__NONCE_LEN);
            nonce[CONDUIT__NONCE_LEN] = '\0';
            if (!conduit__nonce_valid(nonce)) {
                snprintf(why, sizeof(why), "malformed nonce");
            }
        }
        if (why[0]) {
            conduit__logf(s->e, CONDUIT_LOG_WARN, "refused pid %d: %s", (int)cred.pid, why);
            reply(fd, CONDUIT_EPROTO, why);
            close(fd);
            continue;
        }
        conduit__logf(s->e, CONDUIT_LOG_DEBUG, "request from pid %d (uid %u) as domain %u",
                      (int)cred.pid, (unsigned)cred.uid, req.client_domid);
        *client = (int)req.client_domid;
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
    struct stat sb;

    if (s->cur >= 0) {
        close(s->cur);
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    /* Only our own socket: a successor's has another inode. */
    if (s->bound && lstat(s->path, &sb) == 0 && sb.st_dev == s->dev && sb.st_ino == s->ino) {
        unlink(s->path);
    }
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
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat sb;
    int tries;

    memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
    for (tries = 0; tries < 3; tries++) {
        int probe, err;

        if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            if (lstat(s->path, &sb) < 0) {
                return conduit__errorf(s->e, CONDUIT_EIO, "stat %s: %s", s->path, strerror(errno));
            }
            s->bound = true;
            s->dev = sb.st_dev;
            s->ino = sb.st_ino;
            /* bind applied the umask; connecting needs write permission for us. */
            if (chmod(s->path, 0600) < 0) {
                return conduit__errorf(s->e, CONDUIT_EIO, "chmod %s: %s", s->path, strerror(errno));
            }
            return 0;
        }
        if (errno != EADDRINUSE) {
            return conduit__errorf(s->e, errno == EACCES ? CONDUIT_EPERM : CONDUIT_EIO,
                                   "cannot bind %s: %s", s->path, strerror(errno));
        }
        if (lstat(s->path, &sb) == 0 && !S_ISSOCK(sb.st_mode)) {
            return conduit__errorf(s->e, CONDUIT_EADDRINUSE, "%s exists and is not a socket",
                                   s->path);
        }
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (probe < 0) {
            return conduit__errorf(s->e, CONDUIT_EIO, "socket: %s", strerror(errno));
        }
        err = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno;
        close(probe);
        if (err == 0 || err == EAGAIN) {
            return conduit__errorf(s->e, CONDUIT_EADDRINUSE,
                                   "another listener accepts for port %s (%s)", s->port, s->path);
        }
        if (err != ECONNREFUSED && err != ENOENT) {
            return conduit__errorf(s->e, CONDUIT_EIO, "cannot probe %s: %s", s->path,
                                   strerror(err));
        }
        conduit__logf(s->e, CONDUIT_LOG_INFO, "removing stale socket %s", s->path);
        if (unlink(s->path) < 0 && errno != ENOENT) {
            return conduit__errorf(s->e, CONDUIT_EIO, "cannot remove stale socket %s: %s", s->path,
                                   strerror(errno));
        }
    }
    return conduit__errorf(s->e, CONDUIT_EADDRINUSE, "cannot bind %s: it keeps reappearing",
                           s->path);
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
        (rc = make_path(e, s->path, dir, s->self, "accept", port)) < 0) {
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
