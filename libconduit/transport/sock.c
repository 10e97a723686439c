/* SPDX-License-Identifier: ISC */
/*
 * The transport layer over a connected stream socket, shared by tcp.c and
 * unix.c: they differ in how the socket is made, not in how it is used.
 * The descriptor is ours; every call but one passes MSG_DONTWAIT, and
 * MSG_NOSIGNAL keeps a vanished peer an EPIPE rather than a SIGPIPE in the
 * caller's process. The one: a blocking connection's read, when this is
 * the top layer (sock_set_blocking), sleeps in recv() itself, with
 * SO_RCVTIMEO as its timeout. One system call per message, as a plain
 * blocking socket makes, instead of a failed recv, a poll() and a recv.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "libconduit/internal/internal.h"

struct sock_layer {
    struct conduit__layer base;
    int fd;
    const char *kind; /* "tcp" or "unix", for conduit_info */
    bool blocking;    /* reads sleep in recv(), up to SO_RCVTIMEO (sock_set_blocking) */
};

static int os_error(struct conduit__err *e, const char *what, int err)
{
    int code;

    switch (err) {
    case EPIPE:
        code = CONDUIT_EPIPE;
        break;
    case ECONNRESET:
        code = CONDUIT_ECONNRESET;
        break;
    case ETIMEDOUT:
        code = CONDUIT_ETIMEDOUT;
        break;
    case ENOMEM:
    case ENOBUFS:
        code = CONDUIT_ENOMEM;
        break;
    default:
        code = CONDUIT_EIO;
        break;
    }
    if (err == EPIPE) {
        return conduit__errorf(e, code, "%s: the peer closed the connection", what);
    }
    return conduit__errorf(e, code, "%s: %s", what, strerror(err));
}

static int sock_read(struct conduit__layer *l, void *buf, size_t len, size_t *nread)
{
    struct sock_layer *s = (struct sock_layer *)l;

    for (;;) {
        ssize_t n = recv(s->fd, buf, len, s->blocking ? 0 : MSG_DONTWAIT);

        if (n >= 0) {
            *nread = (size_t)n;
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* Blocking: SO_RCVTIMEO ran out (conduit.c words the message). */
            return s->blocking ? -CONDUIT_ETIMEDOUT : -CONDUIT_EAGAIN;
        }
        return os_error(l->err, "read", errno);
    }
}

static int sock_write(struct conduit__layer *l, const void *buf, size_t len, size_t *nwritten)
{
    struct sock_layer *s = (struct sock_layer *)l;

    for (;;) {
        ssize_t n = send(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n >= 0) {
            *nwritten = (size_t)n;
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return -CONDUIT_EAGAIN;
        }
        return os_error(l->err, "write", errno);
    }
}

static int sock_shutdown(struct conduit__layer *l)
{
    struct sock_layer *s = (struct sock_layer *)l;

    /* ENOTCONN: the peer reset the connection already; nothing left to end. */
    if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
        return os_error(l->err, "shutdown", errno);
    }
    return 0;
}

static int sock_poll_events(struct conduit__layer *l, unsigned want, short *events)
{
    *events = 0;
    if (want & CONDUIT_WANT_READ) {
        *events |= POLLIN;
    }
    if (want & CONDUIT_WANT_WRITE) {
        *events |= POLLOUT;
    }
    /* Nothing wakes a poller when a socket's send queue empties: report it done. */
    return (want & CONDUIT_WANT_DRAIN) ? 1 : 0;
}

static int sock_unconsumed(struct conduit__layer *l, size_t *n)
{
    struct sock_layer *s = (struct sock_layer *)l;
    int q = 0;

    if (ioctl(s->fd, SIOCOUTQ, &q) < 0) {
        return os_error(l->err, "SIOCOUTQ", errno);
    }
    *n = q > 0 ? (size_t)q : 0;
    return 0;
}

/*
 * Reads of a blocking connection sleep in recv(). Writes still pass
 * MSG_DONTWAIT: a full socket buffer gives EAGAIN and conduit.c waits in
 * poll() with the call's own deadline, so a peer that drains slowly cannot
 * stretch one write past its timeout. If the descriptor cannot be switched,
 * reads stay non-blocking and waits go through poll(), as before.
 */
static void sock_set_blocking(struct conduit__layer *l, bool blocking, int timeout_ms)
{
    struct sock_layer *s = (struct sock_layer *)l;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int fl = fcntl(s->fd, F_GETFL);

    s->blocking = false;
    if (fl < 0 || fcntl(s->fd, F_SETFL, blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK) < 0) {
        return;
    }
    if (blocking && setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0) {
        s->blocking = true;
    }
}

static int sock_fd(struct conduit__layer *l)
{
    return ((struct sock_layer *)l)->fd;
}

void conduit__sockaddr_str(const void *sap, unsigned salen, char *buf, size_t len)
{
    const struct sockaddr *sa = sap;
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = sap;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = sap;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = sap;
        size_t max = salen > offsetof(struct sockaddr_un, sun_path)
                         ? salen - offsetof(struct sockaddr_un, sun_path)
                         : 0;

        if (max == 0 || un->sun_path[0] == '\0') {
            snprintf(buf, len, "(unnamed)");
        } else {
            snprintf(buf, len, "%.*s", (int)strnlen(un->sun_path, max), un->sun_path);
        }
    } else {
        snprintf(buf, len, "(family %d)", (int)sa->sa_family);
    }
}

static void sock_info(struct conduit__layer *l, char *buf, size_t len)
{
    struct sock_layer *s = (struct sock_layer *)l;
    struct sockaddr_storage me, peer;
    socklen_t ml = sizeof(me), pl = sizeof(peer);
    char a[128] = "?", b[128] = "?";

    if (getsockname(s->fd, (struct sockaddr *)&me, &ml) == 0) {
        conduit__sockaddr_str(&me, ml, a, sizeof(a));
    }
    if (getpeername(s->fd, (struct sockaddr *)&peer, &pl) == 0) {
        conduit__sockaddr_str(&peer, pl, b, sizeof(b));
    }
    snprintf(buf, len, "%s %s -> %s", s->kind, a, b);
}

static void sock_close(struct conduit__layer *l)
{
    struct sock_layer *s = (struct sock_layer *)l;

    close(s->fd);
    free(s);
}

static const struct conduit__layer_ops sock_ops = {
    .name = "socket",
    .read = sock_read,
    .write = sock_write,
    .shutdown = sock_shutdown,
    .half_close = true,
    .poll_events = sock_poll_events,
    .unconsumed = sock_unconsumed,
    .set_blocking = sock_set_blocking,
    .fd = sock_fd,
    .info = sock_info,
    .close = sock_close,
};

int conduit__sock_layer(struct conduit__err *e, int fd, const char *kind,
                        struct conduit__layer **out)
{
    struct sock_layer *s = calloc(1, sizeof(*s));

    if (!s) {
        close(fd);
        return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
    }
    s->base.ops = &sock_ops;
    s->base.err = e;
    s->fd = fd;
    s->kind = kind;
    *out = &s->base;
    return 0;
}

int conduit__sock_connect_wait(int fd, uint64_t deadline, bool *timed_out)
{
    *timed_out = false;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int ms = vclock_left(deadline);
        int rc, err = 0;
        socklen_t len = sizeof(err);

        if (ms == 0) {
            *timed_out = true;
            return ETIMEDOUT;
        }
        rc = poll(&p, 1, ms);
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (rc == 0) {
            continue;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
            return errno;
        }
        return err;
    }
}
