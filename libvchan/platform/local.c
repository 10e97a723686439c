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
 *                    SCM_RIGHTS. That protocol is local_handshake.c's.
 *   unmap-notify  -> the accepted connection stays open for the life of the
 *                    channel. Its hang-up means the peer is gone, even after
 *                    SIGKILL: the survivor reports it and clears the dead
 *                    side's live byte in its own mapping, as Xen would have.
 *
 * Everything the other process sends (messages, descriptors, page indices)
 * is treated as hostile and checked before use.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memfd_create, F_ADD_SEALS */
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
#include <sys/un.h>
#include <unistd.h>

#include "libvchan/core/barrier.h"
#include "libvchan/platform/clock.h"
#include "libvchan/platform/local.h"

/* A hostile peer may flood the socket: read at most this much per wait. */
#define MAX_READS 16

/* ---- local domain id and runtime directory (libvchan/platform/local_dir.c) ---- */

_Thread_local int vchan__local_self_override = -1;

int vchan__local_domid(struct vchan *v, int *domid)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    int rc;

    if (vchan__local_self_override >= 0 && vchan__local_self_override <= VCHAN_DOMID_MAX) {
        *domid = vchan__local_self_override;
        return 0;
    }
    rc = vchan__local_env_domid(domid, msg);

    return rc < 0 ? vchan__errorf(v, -rc, "%s", msg) : 0;
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
    if (v->open_xs_path) {
        return vchan__errorf(v, VCHAN_EINVAL, "the local platform has no xenstore paths");
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
        /* Named after the channel, so that a debugger finds it (local_inspect.c). */
        char name[250];
        snprintf(name, sizeof(name), "vchan:%s", st->path);
        st->memfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
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

int vchan__local_watch(struct local *st, int fd, uint32_t events, uint32_t tag)
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
    if ((rc = vchan__local_watch(st, st->evt_own, EPOLLIN, TAG_EVENT))) {
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

static int local_publish(void *p, uint32_t ring_ref, uint32_t port)
{
    struct local *st = p;

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
    return vchan__local_listen(st);
}

/* The server learns where the client's live byte is, to clear it if the client dies. */
static void take_notice(struct local *st)
{
    struct vchan__local_notice m;
    size_t i;

    memcpy(&m, st->inbuf, sizeof(m));
    if (!vchan__local_notice_check(st, &m)) {
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

static int local_lookup(void *p, int timeout_ms, uint32_t *ring_ref, uint32_t *port)
{
    struct local *st = p;
    int fd = -1, rc;

    if (st->server || st->looked_up) {
        return vchan__errorf(st->v, VCHAN_EINVAL, "lookup: bad state");
    }
    if ((rc = vchan__local_connect(st, timeout_ms, &fd)) == 0) {
        /* The connection's hang-up is the server's death: watch it from now on. */
        if ((rc = vchan__local_watch(st, fd, EPOLLIN | EPOLLRDHUP, TAG_CONN)) ||
            (rc = vchan__local_watch(st, st->evt_own, EPOLLIN, TAG_EVENT))) {
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
        vchan__local_notice_send(st, first, (uint32_t)notify_offset);
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
                if (st->listenfd >= 0 && (rc = vchan__local_accept(st))) {
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

bool vchan__local_peer_gone(struct vchan *v)
{
    struct pollfd pfd = {.events = POLLRDHUP};
    struct local *st;

    if (!v || v->plat != &vchan__platform_local || !v->p) {
        return false;
    }
    st = v->p;
    if (st->hangup) {
        return true;
    }
    if (st->connfd < 0) {
        return false;
    }
    /* A look only: the hang-up stays pending for local_wait, which reports it. */
    pfd.fd = st->connfd;
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR));
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
