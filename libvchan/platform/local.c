/* SPDX-License-Identifier: ISC */
/*
 * The "local" platform: two processes of one Linux host, no Xen.
 *
 * Xen's primitives are emulated:
 *   grant pages   -> one memfd per channel; a grant reference is a page index
 *                    in it. The server seals it (no shrink, no grow, no more
 *                    seals) before handing it over, so neither side can be
 *                    made to fault (SIGBUS) by the other truncating it.
 *   event channel -> two eventfds, one per direction. "Ports" are labels.
 *   xenstore      -> a UNIX stream socket <dir>/<server>.<client>.<port> in a
 *                    private runtime directory. The server binds it at
 *                    publish and accepts one client inside wait(); the
 *                    client receives the memfd and the eventfds with
 *                    SCM_RIGHTS.
 *   unmap-notify  -> the accepted connection stays open for the life of the
 *                    channel. Its hang-up means the peer is gone, even after
 *                    SIGKILL: the survivor reports it and clears the dead
 *                    side's live byte in its own mapping, as Xen would have.
 *
 * Everything the other process sends (messages, descriptors, page indices)
 * is treated as hostile and checked before use. Credentials (SO_PEERCRED:
 * same uid or root) decide who may connect; domain ids are only labels.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memfd_create, accept4, F_ADD_SEALS, MSG_CMSG_CLOEXEC, struct ucred */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "libvchan/core/barrier.h"
#include "libvchan/platform/clock.h"
#include "libvchan/platform/hosted.h"
#include "libvchan/platform/local_dir.h"
#include "libvchan/platform/local_wire.h"

#define PAGE VCHAN__PAGE_SIZE
/* Control page + two 1 MiB rings is 513 pages; anything above is not ours. */
#define MAX_PAGES 1024u
/* setup.c shares or maps at most three regions per channel. */
#define MAX_REGIONS 8
/* The only event channel of a channel; any number would do. */
#define LOCAL_EVTCHN 1u
/* A client sends its hello right after connecting: a short wait suffices. */
#define HELLO_TIMEOUT_MS 500
/* lookup(timeout 0) tries once, but the server still needs a moment to answer. */
#define ONE_TRY_GRACE_MS 1000
/* How often a client looks for a server that is not there yet. */
#define RETRY_MS 15
/* A hostile peer may flood the socket: read at most this much per wait. */
#define MAX_READS 16

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

enum { TAG_LISTEN = 1, TAG_CONN, TAG_EVENT };

struct region {
    uint8_t *addr; /* NULL: free slot */
    size_t npages;
    uint32_t first; /* server: page index of addr in the memfd */
};

struct local {
    struct vchan *v;
    bool server;
    int server_domid, client_domid;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

    int epfd;
    int listenfd; /* server, until a client is accepted */
    int connfd;   /* the accepted or connected socket: its hang-up is the peer's death */
    int memfd;
    int evt_own;       /* we wait on it */
    int evt_peer;      /* we notify through it */
    bool evtchn_ready; /* server: allocated; client: bound */
    bool looked_up;    /* client: got the server's descriptors */
    bool sealed;       /* server: the memfd has its final size */

    struct vchan__local_sock sock; /* server: path is our socket, identified by dev/ino */

    size_t npages; /* pages in the memfd */
    uint32_t ring_ref;

    /* Our own unmap-notify byte (server: told to the client in the reply). */
    uint32_t own_notify_ref, own_notify_off;
    /* The peer's unmap-notify byte, as it told us. */
    uint32_t peer_notify_ref, peer_notify_off;
    uint8_t *peer_live; /* where that byte is in our mappings, once known */

    bool hangup; /* sticky: the peer is gone for good */
    bool warned_junk;
    uint8_t inbuf[sizeof(struct vchan__local_notice)];
    size_t inlen;

    struct region regions[MAX_REGIONS];
};

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* ---- local domain id and runtime directory (libvchan/platform/local_dir.c) ---- */

int vchan__local_domid(struct vchan *v, int *domid)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    int rc = vchan__local_env_domid(domid, msg);

    return rc < 0 ? vchan__errorf(v, -rc, "%s", msg) : 0;
}

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

/* ---- mapping bookkeeping ---- */

static struct region *region_slot(struct local *st)
{
    size_t i;

    for (i = 0; i < MAX_REGIONS; i++) {
        if (!st->regions[i].addr) {
            return &st->regions[i];
        }
    }
    return NULL;
}

static void region_forget(struct local *st, void *addr, size_t npages)
{
    uint8_t *a = addr;
    size_t i;

    if (st->peer_live && st->peer_live >= a && st->peer_live < a + npages * PAGE) {
        st->peer_live = NULL;
    }
    for (i = 0; i < MAX_REGIONS; i++) {
        if (st->regions[i].addr == a) {
            st->regions[i].addr = NULL;
        }
    }
}

/* Emulated unmap-notify: the dead peer's live byte now says closed, as on Xen. */
static void clear_peer_live(struct local *st)
{
    if (st->hangup && st->peer_live) {
        vchan__store_release(st->peer_live, (uint8_t)VCHAN__LIVE_CLOSED);
    }
}

static void set_hangup(struct local *st, const char *why)
{
    if (!st->hangup) {
        vchan__logf(st->v, VCHAN_LOG_INFO, "vchan peer at %s went away (%s)", st->path, why);
        st->hangup = true;
        clear_peer_live(st);
    }
}

/* ---- open and close ---- */

static int local_open(void **pp, struct vchan *v, const struct vchan_config *cfg, bool server)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    struct local *st;
    int self, rc;

    *pp = NULL;
    if (sysconf(_SC_PAGESIZE) != PAGE) {
        return vchan__errorf(v, VCHAN_ENOSYS, "local vchan platform needs 4 KiB pages, have %ld",
                             sysconf(_SC_PAGESIZE));
    }
    if (cfg->domain < 0 || cfg->domain > VCHAN_DOMID_MAX || !vchan__port_valid(cfg->port)) {
        return vchan__errorf(v, VCHAN_EINVAL, "bad vchan domain or port");
    }
    if ((rc = vchan__local_domid(v, &self))) {
        return rc;
    }
    st = vchan__hosted_alloc(sizeof(*st));
    if (!st) {
        return vchan__errorf(v, VCHAN_ENOMEM, "out of memory");
    }
    memset(st, 0, sizeof(*st));
    st->v = v;
    st->server = server;
    st->epfd = st->listenfd = st->connfd = st->memfd = st->evt_own = st->evt_peer = -1;
    st->own_notify_ref = st->peer_notify_ref = VCHAN__LOCAL_NO_NOTIFY;
    st->server_domid = server ? self : cfg->domain;
    st->client_domid = server ? cfg->domain : self;

    if ((rc = vchan__local_dir_name(st->dir, sizeof(st->dir), msg)) < 0) {
        rc = vchan__errorf(v, -rc, "%s", msg);
        goto out;
    }
    if ((rc = vchan__local_path(st->path, sizeof(st->path), st->dir, st->server_domid,
                                st->client_domid, cfg->port, msg)) < 0) {
        rc = vchan__errorf(v, -rc, "%s", msg);
        goto out;
    }
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->epfd < 0) {
        rc = vchan__errorf(v, VCHAN_EIO, "epoll_create1: %s", strerror(errno));
        goto out;
    }
    if (server) {
        st->memfd = memfd_create("vchan-local", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (st->memfd < 0) {
            rc = vchan__errorf(v, errno == ENOMEM ? VCHAN_ENOMEM : VCHAN_EIO, "memfd_create: %s",
                               strerror(errno));
            goto out;
        }
    }
    *pp = st;
    rc = 0;
out:
    if (rc) {
        close_fd(&st->epfd);
        close_fd(&st->memfd);
        vchan__hosted_free(st);
    }
    return rc;
}

static void local_close(void *p)
{
    struct local *st = p;
    size_t i;

    if (!st) {
        return;
    }
    close_fd(&st->listenfd);
    vchan__local_unbind(&st->sock, st->path);
    close_fd(&st->connfd);
    close_fd(&st->evt_own);
    close_fd(&st->evt_peer);
    close_fd(&st->memfd);
    close_fd(&st->epfd);
    /* Whatever the caller did not unshare or unmap itself. */
    for (i = 0; i < MAX_REGIONS; i++) {
        if (st->regions[i].addr) {
            munmap(st->regions[i].addr, st->regions[i].npages * PAGE);
        }
    }
    vchan__hosted_free(st);
}

static int watch(struct local *st, int fd, uint32_t events, uint32_t tag)
{
    struct epoll_event ev = {.events = events, .data.u32 = tag};

    if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        return vchan__errorf(st->v, VCHAN_EIO, "epoll_ctl: %s", strerror(errno));
    }
    return 0;
}

/* ---- server ---- */

static int local_evtchn_alloc_unbound(void *p, uint32_t *port)
{
    struct local *st = p;
    int rc;

    if (!st->server || st->evtchn_ready) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "event channel already allocated");
    }
    st->evt_own = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    st->evt_peer = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (st->evt_own < 0 || st->evt_peer < 0) {
        rc = vchan__errorf(st->v, VCHAN_EIO, "eventfd: %s", strerror(errno));
        goto out;
    }
    if ((rc = watch(st, st->evt_own, EPOLLIN, TAG_EVENT))) {
        goto out;
    }
    st->evtchn_ready = true;
    *port = LOCAL_EVTCHN;
out:
    if (rc) {
        close_fd(&st->evt_own);
        close_fd(&st->evt_peer);
    }
    return rc;
}

static int local_share(void *p, size_t npages, uint32_t *refs, int notify_offset, void **addr)
{
    struct local *st = p;
    struct region *r;
    off_t old = (off_t)st->npages * PAGE;
    void *m;
    size_t i;

    if (!st->server || st->sealed) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "cannot share pages after publishing");
    }
    if (npages == 0 || npages > MAX_PAGES - st->npages) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "cannot share %zu more pages (have %zu, max %u)",
                             npages, st->npages, MAX_PAGES);
    }
    if (notify_offset >= (int)PAGE) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "notify offset %d outside the page",
                             notify_offset);
    }
    if (!(r = region_slot(st))) {
        return vchan__errorf(st->v, VCHAN_ENOMEM, "too many shared regions");
    }
    /* Growing a memfd gives zeroed pages, as a fresh grant would be. */
    if (ftruncate(st->memfd, old + (off_t)(npages * PAGE)) < 0) {
        return vchan__errorf(st->v, errno == ENOSPC || errno == ENOMEM ? VCHAN_ENOMEM : VCHAN_EIO,
                             "cannot grow shared memory to %zu pages: %s", st->npages + npages,
                             strerror(errno));
    }
    m = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, st->memfd, old);
    if (m == MAP_FAILED) {
        int err = errno;
        /* Not sealed yet, so the size can go back to what the published pages need. */
        if (ftruncate(st->memfd, old) < 0) {
            vchan__logf(st->v, VCHAN_LOG_WARN, "ftruncate back: %s", strerror(errno));
        }
        return vchan__errorf(st->v, err == ENOMEM ? VCHAN_ENOMEM : VCHAN_EIO,
                             "cannot map %zu shared pages: %s", npages, strerror(err));
    }
    for (i = 0; i < npages; i++) {
        refs[i] = (uint32_t)(st->npages + i);
    }
    if (notify_offset >= 0) {
        st->own_notify_ref = (uint32_t)st->npages;
        st->own_notify_off = (uint32_t)notify_offset;
    }
    r->addr = m;
    r->npages = npages;
    r->first = (uint32_t)st->npages;
    st->npages += npages;
    *addr = m;
    return 0;
}

static void local_unshare(void *p, void *addr, size_t npages)
{
    struct local *st = p;

    if (addr && npages) {
        region_forget(st, addr, npages);
        munmap(addr, npages * PAGE);
    }
}

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

static int local_publish(void *p, uint32_t ring_ref, uint32_t port)
{
    struct local *st = p;
    int fd = -1, rc;

    if (!st->server || !st->evtchn_ready || port != LOCAL_EVTCHN || st->listenfd >= 0 ||
        st->sealed) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "publish: bad state or event channel %u", port);
    }
    if (ring_ref >= st->npages) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "publish: ring-ref %u not shared", ring_ref);
    }
    /* From here on the size is fixed: the client relies on it (no SIGBUS). */
    if (fcntl(st->memfd, F_ADD_SEALS, SEALS) < 0) {
        return vchan__errorf(st->v, VCHAN_EIO, "cannot seal shared memory: %s", strerror(errno));
    }
    st->sealed = true;
    st->ring_ref = ring_ref;
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
    if ((rc = watch(st, fd, EPOLLIN, TAG_LISTEN))) {
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

/*
 * One pending connection on the listening socket: check who it is, give it
 * the channel or refuse it. Returns 0 (whatever became of the client) or an
 * error of our own that will not go away by itself.
 */
static int accept_client(struct local *st)
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
    if ((rc = watch(st, fd, EPOLLIN | EPOLLRDHUP, TAG_CONN))) {
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

/* The server learns where the client's live byte is, to clear it if the client dies. */
static void take_notice(struct local *st)
{
    struct vchan__local_notice m;
    size_t i;

    memcpy(&m, st->inbuf, sizeof(m));
    /*
     * peer-controlled: every field. On Xen the byte must be in a page the
     * client maps writable; the only such page we know of is the control page.
     */
    if (m.magic != VCHAN__LOCAL_MAGIC_NOTICE || m.version != VCHAN__LOCAL_MSG_VERSION ||
        m.ref != st->ring_ref || m.offset >= PAGE) {
        /* Once: a hostile client must not flood the log. */
        if (!st->warned_junk) {
            vchan__logf(st->v, VCHAN_LOG_WARN,
                        "vchan %s: ignored a malformed notice from the client", st->path);
            st->warned_junk = true;
        }
        return;
    }
    st->peer_notify_ref = m.ref;
    st->peer_notify_off = m.offset;
    st->peer_live = NULL;
    for (i = 0; i < MAX_REGIONS; i++) {
        struct region *r = &st->regions[i];
        if (r->addr && m.ref >= r->first && m.ref - r->first < r->npages) {
            st->peer_live = r->addr + (size_t)(m.ref - r->first) * PAGE + m.offset;
            break;
        }
    }
    clear_peer_live(st);
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

static int local_lookup(void *p, int timeout_ms, uint32_t *ring_ref, uint32_t *port)
{
    struct local *st = p;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    /* Timeout 0 is one try, but the answer to that try may take a moment. */
    uint64_t deadline = vclock_deadline(timeout_ms);
    uint64_t answer_by = timeout_ms == 0 ? vclock_deadline(ONE_TRY_GRACE_MS) : deadline;
    int fd = -1, rc;

    if (st->server || st->looked_up) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "lookup: bad state");
    }
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
        /* The connection's hang-up is the server's death: watch it from now on. */
        if ((rc = watch(st, fd, EPOLLIN | EPOLLRDHUP, TAG_CONN)) ||
            (rc = watch(st, st->evt_own, EPOLLIN, TAG_EVENT))) {
            close_fd(&st->memfd);
            close_fd(&st->evt_own);
            close_fd(&st->evt_peer);
        } else {
            st->connfd = fd;
            fd = -1;
            st->looked_up = true;
            *ring_ref = st->ring_ref;
            *port = LOCAL_EVTCHN;
        }
    }
    close_fd(&fd);
    return rc;
}

static int local_evtchn_bind(void *p, uint32_t remote_port)
{
    struct local *st = p;

    if (st->server || !st->looked_up || st->evtchn_ready) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "evtchn_bind: bad state");
    }
    if (remote_port != LOCAL_EVTCHN) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "no event channel %u at %s", remote_port,
                             st->path);
    }
    st->evtchn_ready = true;
    return 0;
}

/* Map one run of consecutive pages at `at`. */
static int map_run(struct local *st, uint8_t *at, uint32_t first, size_t n, int prot)
{
    if (mmap(at, n * PAGE, prot, MAP_SHARED | MAP_FIXED, st->memfd, (off_t)first * PAGE) ==
        MAP_FAILED) {
        return vchan__errorf(st->v, errno == ENOMEM ? VCHAN_ENOMEM : VCHAN_EIO,
                             "cannot map shared pages: %s", strerror(errno));
    }
    return 0;
}

static int local_map(void *p, const uint32_t *refs, size_t npages, bool writable, int notify_offset,
                     void **addr)
{
    struct local *st = p;
    int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
    struct region *r;
    uint8_t *base;
    size_t i, run_at = 0, run_len = 0, notify_idx = SIZE_MAX;
    uint32_t run_first = 0, first = 0;
    int rc = 0;

    if (st->server || !st->looked_up) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "map: bad state");
    }
    if (npages == 0 || notify_offset >= (int)PAGE) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "map: bad page count %zu or offset %d", npages,
                             notify_offset);
    }
    /* The count comes from the server's ring orders: more than it shared is its fault. */
    if (npages > st->npages) {
        return vchan__errorf(st->v, VCHAN_EPROTO,
                             "vchan server at %s has a %zu-page ring but shared only %zu pages",
                             st->path, npages, st->npages);
    }
    if (!(r = region_slot(st))) {
        return vchan__errorf(st->v, VCHAN_ENOMEM, "too many mapped regions");
    }
    /* One contiguous range, reserved first, then each page placed in it. */
    base = mmap(NULL, npages * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        return vchan__errorf(st->v, VCHAN_ENOMEM, "cannot reserve %zu pages: %s", npages,
                             strerror(errno));
    }
    for (i = 0; i < npages; i++) {
        uint32_t ref = refs[i]; /* peer-controlled (copied from the control page) */

        if (ref >= st->npages) {
            rc = vchan__errorf(st->v, VCHAN_EPROTO,
                               "vchan server at %s granted page %u; it shared only %zu", st->path,
                               ref, st->npages);
            goto out;
        }
        if (i == 0) {
            first = ref;
        }
        if (notify_idx == SIZE_MAX && ref == st->peer_notify_ref) {
            notify_idx = i;
        }
        /* The server's grants are usually consecutive: map them in one go. */
        if (run_len > 0 && ref == run_first + run_len) {
            run_len++;
            continue;
        }
        if (run_len > 0 && (rc = map_run(st, base + run_at * PAGE, run_first, run_len, prot))) {
            goto out;
        }
        run_at = i;
        run_first = ref;
        run_len = 1;
    }
    if ((rc = map_run(st, base + run_at * PAGE, run_first, run_len, prot))) {
        goto out;
    }
    if (notify_offset >= 0) {
        struct vchan__local_notice m = {
            .magic = VCHAN__LOCAL_MAGIC_NOTICE,
            .version = VCHAN__LOCAL_MSG_VERSION,
            .ref = first,
            .offset = (uint32_t)notify_offset,
        };
        /* If the server is gone already, the hang-up will tell; nothing to clear for it then. */
        if (send(st->connfd, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(m)) {
            vchan__logf(st->v, VCHAN_LOG_DEBUG, "vchan %s: notice not sent: %s", st->path,
                        strerror(errno));
        }
    }
    if (notify_idx != SIZE_MAX && writable) {
        st->peer_live = base + notify_idx * PAGE + st->peer_notify_off;
        clear_peer_live(st);
    }
    r->addr = base;
    r->npages = npages;
    r->first = first;
    *addr = base;
out:
    if (rc) {
        /* Unmapping the reservation takes every page placed in it along. */
        munmap(base, npages * PAGE);
    }
    return rc;
}

static void local_unmap(void *p, void *addr, size_t npages)
{
    local_unshare(p, addr, npages);
}

/* ---- events ---- */

static int local_notify(void *p)
{
    struct local *st = p;
    uint64_t one = 1;

    if (st->evt_peer < 0) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "notify: no event channel");
    }
    /* EAGAIN: the counter is full, so the peer has an event pending anyway. */
    if (write(st->evt_peer, &one, sizeof(one)) < 0 && errno != EAGAIN) {
        return vchan__errorf(st->v, VCHAN_EIO, "cannot notify vchan peer: %s", strerror(errno));
    }
    return 0;
}

/* Consume our event; true when there was one. */
static bool drain_event(struct local *st)
{
    uint64_t cnt;

    return st->evt_own >= 0 && read(st->evt_own, &cnt, sizeof(cnt)) > 0;
}

/* The connection is readable or hung up: a notice (server), junk, or the peer's end. */
static void drain_conn(struct local *st, uint32_t events)
{
    int i;

    for (i = 0; i < MAX_READS && !st->hangup; i++) {
        uint8_t junk[64];
        uint8_t *buf = st->server ? st->inbuf + st->inlen : junk;
        size_t len = st->server ? sizeof(st->inbuf) - st->inlen : sizeof(junk);
        ssize_t n = recv(st->connfd, buf, len, MSG_DONTWAIT);

        if (n == 0) {
            set_hangup(st, "connection closed");
        } else if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                break;
            }
            set_hangup(st, strerror(errno));
        } else if (!st->server) {
            if (!st->warned_junk) {
                vchan__logf(st->v, VCHAN_LOG_WARN, "vchan %s: ignored unexpected data", st->path);
                st->warned_junk = true;
            }
        } else if ((st->inlen += (size_t)n) == sizeof(st->inbuf)) {
            take_notice(st);
            st->inlen = 0;
        }
    }
    /* A shut-down write side also counts: our protocol has no half-close. */
    if (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) {
        set_hangup(st, "connection hung up");
    }
}

static int local_wait(void *p, int timeout_ms, bool *hangup)
{
    struct local *st = p;
    uint64_t deadline = vclock_deadline(timeout_ms);
    int rc = 0;

    /* Sticky: a gone peer stays gone, and wait never blocks on it again. */
    if (st->hangup) {
        drain_event(st);
        goto out;
    }
    for (;;) {
        struct epoll_event evs[4];
        bool happened = false;
        int n, i;

        n = epoll_wait(st->epfd, evs, 4, vclock_left(deadline));
        if (n < 0) {
            if (errno != EINTR) {
                rc = vchan__errorf(st->v, VCHAN_EIO, "epoll_wait: %s", strerror(errno));
                goto out;
            }
            n = 0;
        }
        for (i = 0; i < n; i++) {
            switch (evs[i].data.u32) {
            case TAG_LISTEN:
                /* A rendezvous step: the caller re-checks the live bytes. */
                if (st->listenfd >= 0 && (rc = accept_client(st))) {
                    goto out;
                }
                happened = true;
                break;
            case TAG_EVENT:
                happened |= drain_event(st);
                break;
            case TAG_CONN:
                if (st->connfd >= 0) {
                    drain_conn(st, evs[i].events);
                }
                break;
            default:
                break;
            }
        }
        if (st->hangup) {
            drain_event(st);
            goto out;
        }
        if (happened) {
            goto out;
        }
        if (vclock_left(deadline) == 0) {
            rc = timeout_ms == 0 ? -VCHAN_EAGAIN : -VCHAN_ETIMEDOUT;
            goto out;
        }
    }
out:
    *hangup = st->hangup;
    return rc;
}

static int local_fd(void *p)
{
    struct local *st = p;

    return st->epfd;
}

const struct vchan__platform vchan__platform_local = {
    .name = "local",
    .open = local_open,
    .close = local_close,
    .evtchn_alloc_unbound = local_evtchn_alloc_unbound,
    .share = local_share,
    .unshare = local_unshare,
    .publish = local_publish,
    .lookup = local_lookup,
    .evtchn_bind = local_evtchn_bind,
    .map = local_map,
    .unmap = local_unmap,
    .notify = local_notify,
    .wait = local_wait,
    .fd = local_fd,
    .now_ms = vchan__hosted_now_ms,
    .now_ns = vchan__hosted_now_ns,
    .alloc = vchan__hosted_alloc,
    .free = vchan__hosted_free,
    .log = vchan__hosted_log,
};
