/* SPDX-License-Identifier: ISC */
/*
 * The local platform's rendezvous protocol (local.h): the server binds a
 * UNIX stream socket <dir>/<server>.<client>.<port> in the private runtime
 * directory (local_dir.c) and accepts one client; the client connects,
 * says hello, and receives the memfd and the two eventfds with SCM_RIGHTS
 * (the messages are local_wire.h's). The connection then stays open for
 * the life of the channel: local.c reads its hang-up as the peer's death.
 *
 * Everything the other process sends (messages, descriptors, page counts)
 * is hostile and checked before use. Credentials (SO_PEERCRED: same uid or
 * root) decide who may connect; domain ids are only labels.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* accept4, F_GET_SEALS, MSG_CMSG_CLOEXEC, struct ucred */
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "libvchan/platform/clock.h"
#include "libvchan/platform/local.h"

/* A client sends its hello right after connecting: a short wait suffices. */
#define HELLO_TIMEOUT_MS 500
/* lookup(timeout 0) tries once, but the server still needs a moment to answer. */
#define ONE_TRY_GRACE_MS 1000
/* How often a client looks for a server that is not there yet. */
#define RETRY_MS 15

/* -VCHAN_ENOENT (no message) when the directory does not exist and create is false. */
static int check_dir(struct local *st, bool create)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    int rc = vchan__local_dir_check(st->dir, create, msg);

    if (rc == -VCHAN_ENOENT && !create) {
        return rc;
    }
    return rc < 0 ? vchan__errorf(st->v, -rc, "%s", msg) : 0;
}

/* Only the same user or root may be on the other end: domain ids are mere labels. */
static int peer_uid(int fd, struct ucred *cred)
{
    socklen_t len = sizeof(*cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0 || len != sizeof(*cred)) {
        return -1;
    }
    return 0;
}

static bool uid_allowed(uid_t uid)
{
    return uid == geteuid() || uid == 0;
}

/* ---- server ---- */

/* Bind our socket, replacing a stale one (nobody listening) but never a live one. */
static int bind_socket(struct local *st, int fd)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    int rc = vchan__local_bind(fd, st->path, &st->sock, msg);

    if (st->sock.replaced_stale) {
        vchan__logf(st->v, VCHAN_LOG_INFO, "removing stale vchan socket %s", st->path);
        st->sock.replaced_stale = false;
    }
    if (rc == VCHAN__LOCAL_BUSY) {
        return vchan__errorf(st->v, VCHAN_EADDRINUSE, "vchan already published at %s", st->path);
    }
    return rc < 0 ? vchan__errorf(st->v, -rc, "%s", msg) : 0;
}

int vchan__local_listen(struct local *st)
{
    int fd = -1, rc;

    if ((rc = check_dir(st, true))) {
        goto out;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        rc = vchan__errorf(st->v, VCHAN_EIO, "socket: %s", strerror(errno));
        goto out;
    }
    if ((rc = bind_socket(st, fd))) {
        goto out;
    }
    if (listen(fd, 4) < 0) {
        rc = vchan__errorf(st->v, VCHAN_EIO, "listen on %s: %s", st->path, strerror(errno));
        goto out;
    }
    if ((rc = vchan__local_watch(st, fd, EPOLLIN, TAG_LISTEN))) {
        goto out;
    }
    st->listenfd = fd;
    fd = -1;
    vchan__logf(st->v, VCHAN_LOG_DEBUG, "vchan published at %s", st->path);
out:
    close_fd(&fd);
    if (rc) {
        vchan__local_unbind(&st->sock, st->path);
    }
    return rc;
}

static int send_reply(struct local *st, int fd, uint32_t status)
{
    struct vchan__local_reply m = {
        .magic = VCHAN__LOCAL_MAGIC_REPLY,
        .version = VCHAN__LOCAL_MSG_VERSION,
        .status = status,
    };
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    union {
        char buf[CMSG_SPACE(VCHAN__LOCAL_NFDS * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;

    if (status == 0) {
        int fds[VCHAN__LOCAL_NFDS] = {[VCHAN__LOCAL_FD_MEM] = st->memfd,
                                      [VCHAN__LOCAL_FD_TO_SERVER] = st->evt_own,
                                      [VCHAN__LOCAL_FD_TO_CLIENT] = st->evt_peer};
        struct cmsghdr *c;

        m.ring_ref = st->ring_ref;
        m.evtchn = LOCAL_EVTCHN;
        m.npages = (uint32_t)st->npages;
        m.notify_ref = st->own_notify_ref;
        m.notify_offset = st->own_notify_ref == VCHAN__LOCAL_NO_NOTIFY ? VCHAN__LOCAL_NO_NOTIFY
                                                                       : st->own_notify_off;
        memset(&u, 0, sizeof(u));
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof(u.buf);
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(c), fds, sizeof(fds));
    }
    /* A fresh socket's buffer always takes a few dozen bytes: never blocks. */
    n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n == (ssize_t)sizeof(m) ? 0 : -1;
}

int vchan__local_accept(struct local *st)
{
    struct vchan__local_hello h;
    struct ucred cred;
    uint32_t status = 0;
    int fd, rc = 0;
    bool watched = false;

    fd = accept4(st->listenfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR ||
            errno == EPROTO) {
            return 0;
        }
        /* EMFILE and the like: the connection stays pending and would spin us. */
        return vchan__errorf(st->v, errno == ENOMEM || errno == ENOBUFS ? VCHAN_ENOMEM : VCHAN_EIO,
                             "cannot accept on %s: %s", st->path, strerror(errno));
    }
    if (peer_uid(fd, &cred) < 0) {
        vchan__logf(st->v, VCHAN_LOG_WARN, "vchan %s: no peer credentials: %s", st->path,
                    strerror(errno));
        goto out;
    }
    if (!uid_allowed(cred.uid)) {
        vchan__logf(st->v, VCHAN_LOG_WARN, "vchan %s: refused client pid %d of uid %u", st->path,
                    (int)cred.pid, (unsigned)cred.uid);
        status = VCHAN_EPERM;
        goto refuse;
    }
    if (vchan__local_recv_full(fd, &h, sizeof(h), HELLO_TIMEOUT_MS) < 0) {
        /* Closing without a word is what another server's liveness probe does. */
        vchan__logf(st->v, errno == ECONNRESET ? VCHAN_LOG_DEBUG : VCHAN_LOG_WARN,
                    "vchan %s: no hello from client pid %d: %s", st->path, (int)cred.pid,
                    strerror(errno));
        goto out;
    }
    if (h.magic != VCHAN__LOCAL_MAGIC_HELLO ||
        h.version != VCHAN__LOCAL_MSG_VERSION) { /* peer-controlled */
        vchan__logf(st->v, VCHAN_LOG_WARN, "vchan %s: client pid %d sent a bad hello", st->path,
                    (int)cred.pid);
        status = VCHAN_EPROTO;
        goto refuse;
    }
    if (h.client_domid != (uint32_t)st->client_domid ||
        h.server_domid != (uint32_t)st->server_domid) {
        vchan__logf(st->v, VCHAN_LOG_WARN,
                    "vchan %s: client pid %d says it is domain %u for server %u; "
                    "this channel is for domain %d",
                    st->path, (int)cred.pid, h.client_domid, h.server_domid, st->client_domid);
        status = VCHAN_EPERM;
        goto refuse;
    }
    /* Watch it before the client learns it is connected: its hang-up must not be missed. */
    if ((rc = vchan__local_watch(st, fd, EPOLLIN | EPOLLRDHUP, TAG_CONN))) {
        goto out;
    }
    watched = true;
    if (send_reply(st, fd, 0) < 0) {
        vchan__logf(st->v, VCHAN_LOG_WARN, "vchan %s: cannot answer client pid %d: %s", st->path,
                    (int)cred.pid, strerror(errno));
        goto out;
    }
    /* One client per channel: nobody else may find the socket now. */
    close_fd(&st->listenfd);
    vchan__local_unbind(&st->sock, st->path);
    st->connfd = fd;
    fd = -1;
    vchan__logf(st->v, VCHAN_LOG_INFO, "vchan %s: client pid %d (uid %u) connected", st->path,
                (int)cred.pid, (unsigned)cred.uid);
    goto out;
refuse:
    if (send_reply(st, fd, status) < 0) {
        vchan__logf(st->v, VCHAN_LOG_DEBUG, "vchan %s: refusal not sent: %s", st->path,
                    strerror(errno));
    }
out:
    if (fd >= 0 && watched) {
        epoll_ctl(st->epfd, EPOLL_CTL_DEL, fd, NULL);
    }
    close_fd(&fd);
    return rc;
}

bool vchan__local_notice_check(struct local *st, const struct vchan__local_notice *m)
{
    /*
     * peer-controlled: every field. On Xen the byte must be in a page the
     * client maps writable; the only such page we know of is the control page.
     */
    if (m->magic != VCHAN__LOCAL_MAGIC_NOTICE || m->version != VCHAN__LOCAL_MSG_VERSION ||
        m->ref != st->ring_ref || m->offset >= PAGE) {
        /* Once: a hostile client must not flood the log. */
        if (!st->warned_junk) {
            vchan__logf(st->v, VCHAN_LOG_WARN,
                        "vchan %s: ignored a malformed notice from the client", st->path);
            st->warned_junk = true;
        }
        return false;
    }
    return true;
}

/* ---- client ---- */

static int send_hello(struct local *st, int fd)
{
    struct vchan__local_hello h = {
        .magic = VCHAN__LOCAL_MAGIC_HELLO,
        .version = VCHAN__LOCAL_MSG_VERSION,
        .client_domid = (uint32_t)st->client_domid,
        .server_domid = (uint32_t)st->server_domid,
    };
    ssize_t n = send(fd, &h, sizeof(h), MSG_NOSIGNAL | MSG_DONTWAIT);

    return n == (ssize_t)sizeof(h) ? 0 : -1;
}

/*
 * Receive the reply and its descriptors. Returns 1 when the server closed
 * without a word (it took another client or went away: try again), 0 with
 * the message complete, else an error. Descriptors land in fds[]; *nfds
 * counts them, whatever the outcome, for the caller to close.
 */
static int recv_reply(struct local *st, int fd, struct vchan__local_reply *m, int *fds,
                      size_t *nfds, uint64_t deadline, int timeout_ms)
{
    size_t got = 0;

    while (got < sizeof(*m)) {
        union {
            char buf[CMSG_SPACE(VCHAN__LOCAL_NFDS * sizeof(int))];
            struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = (uint8_t *)m + got, .iov_len = sizeof(*m) - got};
        struct msghdr msg = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = u.buf,
            .msg_controllen = sizeof(u.buf),
        };
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        struct cmsghdr *c;
        bool bad = false;
        ssize_t n;

        n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == ECONNRESET && got == 0) {
                return 1;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                return vchan__errorf(st->v, VCHAN_EIO, "vchan server at %s: %s", st->path,
                                     strerror(errno));
            }
            if (vclock_left(deadline) == 0) {
                return vchan__errorf(st->v, VCHAN_ETIMEDOUT,
                                     "vchan server at %s did not answer within %d ms", st->path,
                                     timeout_ms);
            }
            if (poll(&pfd, 1, vclock_left(deadline)) < 0 && errno != EINTR) {
                return vchan__errorf(st->v, VCHAN_EIO, "poll: %s", strerror(errno));
            }
            continue;
        }
        /* Collect every descriptor that came, even the unexpected, so none leaks. */
        for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len >= CMSG_LEN(0)) {
                size_t k, cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (k = 0; k < cnt; k++) {
                    int x;
                    memcpy(&x, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
                    if (*nfds < VCHAN__LOCAL_NFDS) {
                        fds[(*nfds)++] = x;
                    } else {
                        close(x);
                        bad = true;
                    }
                }
                /* Descriptors belong with the first byte, and in one message only. */
                if (got > 0) {
                    bad = true;
                }
            } else {
                bad = true;
            }
        }
        if (msg.msg_flags & MSG_CTRUNC) {
            bad = true;
        }
        if (bad) {
            return vchan__errorf(st->v, VCHAN_EPROTO,
                                 "vchan server at %s sent unexpected control data", st->path);
        }
        if (n == 0) {
            if (got == 0) {
                return 1;
            }
            return vchan__errorf(st->v, VCHAN_EPROTO,
                                 "vchan server at %s closed in the middle of its answer", st->path);
        }
        got += (size_t)n;
    }
    return 0;
}

/* Check what the server gave us: every value and descriptor is peer-controlled. */
static int check_reply(struct local *st, const struct vchan__local_reply *m, const int *fds,
                       size_t nfds)
{
    struct stat sb;
    int seals, fl;
    size_t i;

    if (m->magic != VCHAN__LOCAL_MAGIC_REPLY || m->version != VCHAN__LOCAL_MSG_VERSION) {
        return vchan__errorf(st->v, VCHAN_EPROTO,
                             "vchan server at %s answered with a bad magic or version", st->path);
    }
    if (m->status != 0) {
        /* peer-controlled: only a known code is looked up */
        return vchan__errorf(
            st->v, m->status == VCHAN_EPERM ? VCHAN_EPERM : VCHAN_EPROTO,
            "vchan server at %s refused us (domain %d): %s", st->path, st->client_domid,
            m->status < VCHAN_ERRNO_MAX ? vchan_strerror((int)m->status) : "unknown reason");
    }
    if (nfds != VCHAN__LOCAL_NFDS) {
        return vchan__errorf(st->v, VCHAN_EPROTO,
                             "vchan server at %s sent %zu descriptors, expected %d", st->path, nfds,
                             VCHAN__LOCAL_NFDS);
    }
    if (m->npages == 0 || m->npages > MAX_PAGES || m->ring_ref >= m->npages) {
        return vchan__errorf(st->v, VCHAN_EPROTO,
                             "vchan server at %s: ring-ref %u outside its %u pages", st->path,
                             m->ring_ref, m->npages);
    }
    if (m->notify_ref != VCHAN__LOCAL_NO_NOTIFY &&
        (m->notify_ref >= m->npages || m->notify_offset >= PAGE)) {
        return vchan__errorf(st->v, VCHAN_EPROTO, "vchan server at %s: bad notify byte %u:%u",
                             st->path, m->notify_ref, m->notify_offset);
    }
    /* Sealed against shrinking, or the server could make our accesses fault (SIGBUS). */
    seals = fcntl(fds[VCHAN__LOCAL_FD_MEM], F_GET_SEALS);
    if (seals < 0 || (seals & SEALS) != SEALS) {
        return vchan__errorf(st->v, VCHAN_EPROTO,
                             "vchan server at %s: shared memory is not a sealed memfd "
                             "(seals %#x, need %#x)",
                             st->path, seals < 0 ? 0 : seals, SEALS);
    }
    if (fstat(fds[VCHAN__LOCAL_FD_MEM], &sb) < 0 || !S_ISREG(sb.st_mode) ||
        sb.st_size != (off_t)m->npages * PAGE) {
        return vchan__errorf(st->v, VCHAN_EPROTO,
                             "vchan server at %s: shared memory is not %u pages", st->path,
                             m->npages);
    }
    fl = fcntl(fds[VCHAN__LOCAL_FD_MEM], F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) != O_RDWR) {
        return vchan__errorf(st->v, VCHAN_EPROTO,
                             "vchan server at %s: shared memory is not writable", st->path);
    }
    /* A blocking descriptor would hang our wait; the eventfds are non-blocking on both ends. */
    for (i = VCHAN__LOCAL_FD_TO_SERVER; i < VCHAN__LOCAL_NFDS; i++) {
        fl = fcntl(fds[i], F_GETFL);
        if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0) {
            return vchan__errorf(st->v, VCHAN_EPROTO, "vchan server at %s: bad event descriptor",
                                 st->path);
        }
    }
    return 0;
}

/* One connected attempt: 0 done, 1 try again, else an error. */
static int handshake(struct local *st, int fd, uint64_t deadline, int timeout_ms)
{
    struct vchan__local_reply m;
    struct ucred cred;
    int fds[VCHAN__LOCAL_NFDS];
    size_t nfds = 0, i;
    int rc;

    if (peer_uid(fd, &cred) < 0) {
        return vchan__errorf(st->v, VCHAN_EIO, "no credentials of vchan server at %s: %s", st->path,
                             strerror(errno));
    }
    if (!uid_allowed(cred.uid)) {
        return vchan__errorf(st->v, VCHAN_EPERM,
                             "vchan server at %s runs as uid %u, neither ours (%u) nor root",
                             st->path, (unsigned)cred.uid, (unsigned)geteuid());
    }
    /*
     * A server that refuses our uid answers without waiting for the hello: then
     * the send fails, but its refusal is already queued for us. Read on.
     */
    if (send_hello(st, fd) < 0 && errno != EPIPE && errno != ECONNRESET) {
        return vchan__errorf(st->v, VCHAN_EIO, "cannot greet vchan server at %s: %s", st->path,
                             strerror(errno));
    }
    memset(&m, 0, sizeof(m));
    rc = recv_reply(st, fd, &m, fds, &nfds, deadline, timeout_ms);
    if (rc == 0) {
        rc = check_reply(st, &m, fds, nfds);
    }
    if (rc == 0) {
        st->memfd = fds[VCHAN__LOCAL_FD_MEM];
        st->evt_peer = fds[VCHAN__LOCAL_FD_TO_SERVER];
        st->evt_own = fds[VCHAN__LOCAL_FD_TO_CLIENT];
        nfds = 0;
        st->npages = m.npages;
        st->ring_ref = m.ring_ref;
        st->peer_notify_ref = m.notify_ref;
        st->peer_notify_off = m.notify_offset;
    }
    for (i = 0; i < nfds; i++) {
        close(fds[i]);
    }
    return rc;
}

int vchan__local_connect(struct local *st, int timeout_ms, int *out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    /* Timeout 0 is one try, but the answer to that try may take a moment. */
    uint64_t deadline = vclock_deadline(timeout_ms);
    uint64_t answer_by = timeout_ms == 0 ? vclock_deadline(ONE_TRY_GRACE_MS) : deadline;
    int fd = -1, rc;

    *out = -1;
    memcpy(sa.sun_path, st->path, strlen(st->path) + 1);
    for (;;) {
        int ms;

        rc = check_dir(st, false);
        if (rc == 0) {
            fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (fd < 0) {
                rc = vchan__errorf(st->v, VCHAN_EIO, "socket: %s", strerror(errno));
                goto out;
            }
            /* AF_UNIX connects at once or fails: no EINPROGRESS. */
            if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                rc = handshake(st, fd, answer_by, timeout_ms == 0 ? ONE_TRY_GRACE_MS : timeout_ms);
                if (rc <= 0) {
                    goto out;
                }
            } else if (errno != ENOENT && errno != ECONNREFUSED && errno != EAGAIN) {
                rc = vchan__errorf(st->v, errno == EACCES ? VCHAN_EPERM : VCHAN_EIO,
                                   "cannot connect to %s: %s", st->path, strerror(errno));
                goto out;
            }
            close_fd(&fd);
        } else if (rc != -VCHAN_ENOENT) {
            goto out;
        }
        /* Nobody there yet (no directory, no socket, stale socket, or a lost race). */
        ms = vclock_left(deadline);
        if (ms == 0) {
            rc = vchan__errorf(st->v, VCHAN_ETIMEDOUT, "no vchan server at %s after %d ms",
                               st->path, timeout_ms);
            goto out;
        }
        vclock_sleep_ms(ms < 0 || ms > RETRY_MS ? RETRY_MS : ms);
    }
out:
    if (rc == 0) {
        *out = fd;
        fd = -1;
    }
    close_fd(&fd);
    return rc;
}

void vchan__local_notice_send(struct local *st, uint32_t ref, uint32_t offset)
{
    struct vchan__local_notice m = {
        .magic = VCHAN__LOCAL_MAGIC_NOTICE,
        .version = VCHAN__LOCAL_MSG_VERSION,
        .ref = ref,
        .offset = offset,
    };

    if (send(st->connfd, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(m)) {
        vchan__logf(st->v, VCHAN_LOG_DEBUG, "vchan %s: notice not sent: %s", st->path,
                    strerror(errno));
    }
}
