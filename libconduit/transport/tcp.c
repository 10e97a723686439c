/* SPDX-License-Identifier: ISC */
/*
 * TCP: connect tries every address the resolver gives (IPv6 and IPv4, in
 * getaddrinfo's order), each within its share of the timeout, so one
 * black-holed address does not eat the time of the others. Listening on
 * "*" is one dual-stack IPv6 socket where the system allows, else IPv4.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libconduit/internal/internal.h"

#define LISTEN_BACKLOG 128

struct tcp_listener {
    int fd;
};

/* Interactive traffic (echo, prompts) should not wait for Nagle. */
static void no_delay(int fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Append "addr: reason" to the list of what was tried, for the final message. */
static void note(char *buf, size_t len, const char *addr, const char *why)
{
    size_t used = strlen(buf);

    snprintf(buf + used, len - used, "%s%s: %s", used ? "; " : "", addr, why);
}

int conduit__tcp_connect(struct conduit__err *e, const struct conduit__connect_args *a,
                         struct conduit__layer **out)
{
    const struct conduit_uri *u = a->uri;
    struct addrinfo *res = NULL, *ai;
    char tried[CONDUIT__MSG_MAX / 2] = "";
    bool all_refused = true, any_timeout = false;
    int fd = -1, rc, left = 0;

    if ((rc = conduit__resolve_host(e, u->tcp.host, u->tcp.port, false, &res)) < 0) {
        return rc;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        left++;
    }
    for (ai = res; ai; ai = ai->ai_next, left--) {
        char addr[128];
        uint64_t until = a->deadline;
        bool timed_out = false;
        int err, ms = vclock_left(a->deadline);

        conduit__sockaddr_str(ai->ai_addr, (unsigned)ai->ai_addrlen, addr, sizeof(addr));
        if (ms == 0) {
            note(tried, sizeof(tried), addr, "not tried (out of time)");
            any_timeout = true;
            all_refused = false;
            continue;
        }
        if (ms > 0 && left > 1) {
            until = vclock_now_ms() + (uint64_t)(ms / left > 0 ? ms / left : 1);
        }
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            note(tried, sizeof(tried), addr, strerror(errno));
            all_refused = false;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            err = 0;
        } else if (errno == EINPROGRESS || errno == EINTR) {
            err = conduit__sock_connect_wait(fd, until, &timed_out);
        } else {
            err = errno;
        }
        if (err == 0) {
            break;
        }
        if (timed_out) {
            note(tried, sizeof(tried), addr, "timed out");
            any_timeout = true;
        } else {
            note(tried, sizeof(tried), addr, strerror(err));
        }
        if (err != ECONNREFUSED) {
            all_refused = false;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        return conduit__errorf(e,
                               all_refused   ? CONDUIT_ECONNREFUSED
                               : any_timeout ? CONDUIT_ETIMEDOUT
                                             : CONDUIT_EIO,
                               "cannot connect: %s", tried);
    }
    no_delay(fd);
    return conduit__sock_layer(e, fd, "tcp", out);
}

/* ------------------------------------------------------------ listen */

static int tcp_accept(struct conduit_listener *l, struct conduit__err *err,
                      struct conduit__layer **out, char *peer, size_t peerlen)
{
    struct tcp_listener *t = l->impl;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char addr[128];
    int fd;

    fd = accept4(t->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        /* A client that gave up while queued is not the listener's failure. */
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED ||
            errno == EPROTO) {
            return -CONDUIT_EAGAIN;
        }
        return conduit__errorf(&l->err,
                               errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
                                       errno == ENOBUFS
                                   ? CONDUIT_ENOMEM
                                   : CONDUIT_EIO,
                               "accept: %s", strerror(errno));
    }
    no_delay(fd);
    conduit__sockaddr_str(&ss, len, addr, sizeof(addr));
    snprintf(peer, peerlen, "tcp://%s", addr);
    return conduit__sock_layer(err, fd, "tcp", out);
}

static int tcp_fd(struct conduit_listener *l)
{
    return ((struct tcp_listener *)l->impl)->fd;
}

static void tcp_close(struct conduit_listener *l)
{
    struct tcp_listener *t = l->impl;

    if (t) {
        close(t->fd);
        free(t);
        l->impl = NULL;
    }
}

static const struct conduit__listen_ops tcp_listen_ops = {
    .accept = tcp_accept,
    .fd = tcp_fd,
    .close = tcp_close,
};

/* Bind and listen on one address: the descriptor, or -1 with errno. */
static int listen_on(int family, const struct sockaddr *sa, socklen_t len, bool dual)
{
    int one = 1, zero = 0, fd, err;

    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    /* A restarted server must not wait out TIME_WAIT of its previous connections. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (dual) {
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (bind(fd, sa, len) == 0 && listen(fd, LISTEN_BACKLOG) == 0) {
        return fd;
    }
    err = errno;
    close(fd);
    errno = err;
    return -1;
}

static int listen_error(struct conduit__err *e, const char *addr, int err)
{
    int code = err == EADDRINUSE               ? CONDUIT_EADDRINUSE
               : err == EACCES || err == EPERM ? CONDUIT_EPERM
               : err == EADDRNOTAVAIL          ? CONDUIT_ENOENT
                                               : CONDUIT_EIO;

    return conduit__errorf(e, code, "cannot listen on %s: %s", addr, strerror(err));
}

int conduit__tcp_listen(struct conduit_listener *l, const struct conduit_uri *u,
                        const struct conduit_options *opts)
{
    struct tcp_listener *t;
    struct addrinfo *res = NULL, *ai;
    char addr[128] = "";
    int fd = -1, err = 0, rc;

    (void)opts; /* nothing of a socket listener depends on them */

    if (u->tcp.host == NULL) {
        struct sockaddr_in6 any6 = {.sin6_family = AF_INET6,
                                    .sin6_port = htons(u->tcp.port),
                                    .sin6_addr = IN6ADDR_ANY_INIT};
        struct sockaddr_in any4 = {.sin_family = AF_INET,
                                   .sin_port = htons(u->tcp.port),
                                   .sin_addr.s_addr = htonl(INADDR_ANY)};

        fd = listen_on(AF_INET6, (struct sockaddr *)&any6, sizeof(any6), true);
        if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
            /* No IPv6 on this system: IPv4 alone. */
            fd = listen_on(AF_INET, (struct sockaddr *)&any4, sizeof(any4), false);
        }
        if (fd < 0) {
            snprintf(addr, sizeof(addr), "*:%u", (unsigned)u->tcp.port);
            return listen_error(&l->err, addr, errno);
        }
    } else {
        if ((rc = conduit__resolve_host(&l->err, u->tcp.host, u->tcp.port, true, &res)) < 0) {
            return rc;
        }
        for (ai = res; ai && fd < 0; ai = ai->ai_next) {
            conduit__sockaddr_str(ai->ai_addr, (unsigned)ai->ai_addrlen, addr, sizeof(addr));
            fd = listen_on(ai->ai_family, ai->ai_addr, ai->ai_addrlen, false);
            err = errno;
        }
        freeaddrinfo(res);
        if (fd < 0) {
            return listen_error(&l->err, addr, err);
        }
    }
    if (!(t = calloc(1, sizeof(*t)))) {
        close(fd);
        return conduit__errorf(&l->err, CONDUIT_ENOMEM, "out of memory");
    }
    t->fd = fd;
    l->impl = t;
    l->ops = &tcp_listen_ops;
    return 0;
}
