/* SPDX-License-Identifier: ISC */
/*
 * UNIX stream sockets. listen replaces a stale socket file (one nobody
 * listens on: a server that died) but never a live one or a file that is
 * not a socket, and removes only its own socket on close (identified by
 * device and inode, so a successor's is left alone).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* struct ucred */
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

#define LISTEN_BACKLOG 128
/* A full backlog (EAGAIN) is retried this often until the connect deadline. */
#define RETRY_MS 10

struct unix_listener {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;
    ino_t ino;
};

static int make_addr(struct conduit__err *e, const char *path, struct sockaddr_un *sa)
{
    size_t len = strlen(path);

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (len >= sizeof(sa->sun_path)) {
        return conduit__errorf(e, CONDUIT_ERANGE, "socket path is %zu bytes, at most %zu fit", len,
                               sizeof(sa->sun_path) - 1);
    }
    memcpy(sa->sun_path, path, len + 1);
    return 0;
}

int conduit__unix_connect(struct conduit__err *e, const struct conduit__connect_args *a,
                          struct conduit__layer **out)
{
    struct sockaddr_un sa;
    int fd, rc;

    if ((rc = make_addr(e, a->uri->un.path, &sa)) < 0) {
        return rc;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return conduit__errorf(e, CONDUIT_EIO, "socket: %s", strerror(errno));
    }
    for (;;) {
        int err;

        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            break;
        }
        err = errno;
        if (err == EINTR) {
            continue;
        }
        if (err == EAGAIN) {
            /* The server's backlog is full: it may drain within our time. */
            if (vclock_left(a->deadline) == 0) {
                close(fd);
                return conduit__errorf(e, CONDUIT_ETIMEDOUT,
                                       "cannot connect: the server's backlog stayed full for "
                                       "%.3f s",
                                       a->timeout_ms / 1000.0);
            }
            vclock_sleep_ms(RETRY_MS);
            continue;
        }
        close(fd);
        return conduit__errorf(e,
                               err == ENOENT         ? CONDUIT_ENOENT
                               : err == ECONNREFUSED ? CONDUIT_ECONNREFUSED
                               : err == EACCES       ? CONDUIT_EPERM
                                                     : CONDUIT_EIO,
                               "cannot connect: %s", strerror(err));
    }
    return conduit__sock_layer(e, fd, "unix", out);
}

/* ------------------------------------------------------------ listen */

static int unix_accept(struct conduit_listener *l, struct conduit__err *err,
                       struct conduit__layer **out, char *peer, size_t peerlen)
{
    struct unix_listener *x = l->impl;
    int fd;

    fd = accept4(x->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED ||
            errno == EPROTO) {
            return -CONDUIT_EAGAIN;
        }
        return conduit__errorf(&l->err, CONDUIT_EIO, "accept: %s", strerror(errno));
    }
    snprintf(peer, peerlen, "unix://%s", x->path);
    return conduit__sock_layer(err, fd, "unix", out);
}

static int unix_fd(struct conduit_listener *l)
{
    return ((struct unix_listener *)l->impl)->fd;
}

static void unix_close(struct conduit_listener *l)
{
    struct unix_listener *x = l->impl;
    struct stat sb;

    if (!x) {
        return;
    }
    close(x->fd);
    if (lstat(x->path, &sb) == 0 && sb.st_dev == x->dev && sb.st_ino == x->ino) {
        unlink(x->path);
    }
    free(x);
    l->impl = NULL;
}

static const struct conduit__listen_ops unix_listen_ops = {
    .accept = unix_accept,
    .fd = unix_fd,
    .close = unix_close,
};

/* Is someone listening at sa? 1 yes, 0 no (stale or gone), -1 with errno: cannot tell. */
static int live_socket(const struct sockaddr_un *sa)
{
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc;

    if (probe < 0) {
        return -1;
    }
    if (connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN) {
        rc = 1;
    } else {
        rc = errno == ECONNREFUSED || errno == ENOENT ? 0 : -1;
    }
    close(probe);
    return rc;
}

int conduit__unix_listen(struct conduit_listener *l, const struct conduit_uri *u,
                         const struct conduit_options *opts)
{
    struct unix_listener *x;
    struct sockaddr_un sa;
    struct stat sb;
    int fd = -1, rc, tries;

    (void)opts; /* nothing of a socket listener depends on them */

    if ((rc = make_addr(&l->err, u->un.path, &sa)) < 0) {
        return rc;
    }
    if (!(x = calloc(1, sizeof(*x)))) {
        return conduit__errorf(&l->err, CONDUIT_ENOMEM, "out of memory");
    }
    x->fd = -1;
    memcpy(x->path, sa.sun_path, sizeof(x->path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = conduit__errorf(&l->err, CONDUIT_EIO, "socket: %s", strerror(errno));
        goto out;
    }
    for (tries = 0;; tries++) {
        int live;

        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            break;
        }
        if (errno != EADDRINUSE || tries >= 3) {
            rc = conduit__errorf(&l->err,
                                 errno == EADDRINUSE                   ? CONDUIT_EADDRINUSE
                                 : errno == EACCES || errno == EPERM   ? CONDUIT_EPERM
                                 : errno == ENOENT || errno == ENOTDIR ? CONDUIT_ENOENT
                                                                       : CONDUIT_EIO,
                                 "cannot bind: %s", strerror(errno));
            goto out;
        }
        if (lstat(x->path, &sb) == 0 && !S_ISSOCK(sb.st_mode)) {
            rc = conduit__errorf(&l->err, CONDUIT_EADDRINUSE,
                                 "cannot bind: %s exists and is not a socket", x->path);
            goto out;
        }
        live = live_socket(&sa);
        if (live != 0) {
            rc = conduit__errorf(&l->err, CONDUIT_EADDRINUSE, "cannot bind: %s",
                                 live > 0 ? "another server is listening there" : strerror(errno));
            goto out;
        }
        conduit__logf(&l->err, CONDUIT_LOG_INFO, "removing stale socket %s", x->path);
        if (unlink(x->path) < 0 && errno != ENOENT) {
            rc = conduit__errorf(&l->err, CONDUIT_EIO, "cannot remove stale socket: %s",
                                 strerror(errno));
            goto out;
        }
    }
    if (lstat(x->path, &sb) < 0) {
        rc = conduit__errorf(&l->err, CONDUIT_EIO, "stat: %s", strerror(errno));
        goto out;
    }
    x->dev = sb.st_dev;
    x->ino = sb.st_ino;
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        rc = conduit__errorf(&l->err, CONDUIT_EIO, "listen: %s", strerror(errno));
        unlink(x->path);
        goto out;
    }
    x->fd = fd;
    fd = -1;
    l->impl = x;
    l->ops = &unix_listen_ops;
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc < 0) {
        free(x);
    }
    return rc;
}
