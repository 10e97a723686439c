/* SPDX-License-Identifier: ISC */
/*
 * libvchan-conduit.so.0: Qubes OS's libvchan API (include/vchan-conduit/
 * libvchan.h) over the libxenvchan drop-in (xenvchan.c, linked in and
 * hidden), as Qubes' own libvchan-xen is over Xen's libxenvchan: read,
 * write, send and recv keep libxenvchan's conventions because they are
 * its functions. What Qubes adds is here: integer ports at
 * data/vchan/<peer>/<port>, a blocking server, the async client, the
 * peer's liveness, removing the server's entry at the first wait, and
 * refusing loopback and reserved domain ids. docs/compat.md lists where
 * we differ on purpose.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "libvchan/core/internal.h"
#include "libvchan/platform/hosted.h"
#include "libvchan/platform/local_dir.h"
#include "libvchan/compat/compat.h"

#undef VCHAN_NOTIFY_WRITE
#undef VCHAN_NOTIFY_READ
#include "include/compat/libxenvchan.h"
#include "include/vchan-conduit/libvchan.h"

#define QV_EXPORT __attribute__((visibility("default")))

/* The async client looks for its server this often, and this long each time. */
#define ASYNC_PERIOD_MS 10
#define ASYNC_LOOK_MS 20

struct libvchan {
    struct libxenvchan *xv; /* NULL: an async client not connected yet */
    bool server;
    bool unpublished;       /* server: the first wait removed the entry */
    int remote;             /* the peer domain */
    int self;               /* our domain */
    int watch;              /* async client: the timer it polls; else -1 */
    const char *platform;
    char port[16];          /* the port as a name: decimal */
    char xs_path[48];       /* server: data/vchan/<client>/<port>, as Qubes keeps it */
};

/*
 * The arguments every init checks: a peer domain that is neither ours
 * (loopback) nor reserved (DOMID_FIRST_RESERVED and above), a port >= 0.
 * Fills the platform, our own domain id and the port name.
 */
static int check_init(struct libvchan *c, int domain, int port)
{
    char msg[VCHAN__LOCAL_MSG_MAX];
    int rc;

    if (domain < 0 || domain > VCHAN_DOMID_MAX || port < 0) {
        return -VCHAN_EINVAL;
    }
    if ((rc = vchan_platform_select(NULL, &c->platform, NULL, 0)) < 0) {
        return rc;
    }
    if (strcmp(c->platform, "local") == 0) {
        rc = vchan__local_env_domid(&c->self, msg);
    } else {
#ifdef HAVE_XEN
        rc = vchan__xen_self_domid(&c->self);
#else
        rc = -VCHAN_ENOSYS;
#endif
    }
    if (rc < 0) {
        return rc;
    }
    if (c->self == domain) {
        return -VCHAN_EINVAL; /* Qubes: "Loopback vchan connection not supported" */
    }
    c->remote = domain;
    c->watch = -1;
    snprintf(c->port, sizeof(c->port), "%d", port);
    return 0;
}

static void free_handle(struct libvchan *c)
{
    if (c->watch >= 0) {
        close(c->watch);
    }
    free(c);
}

static struct libvchan *new_handle(int domain, int port)
{
    struct libvchan *c = calloc(1, sizeof(*c));
    int rc;

    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    if ((rc = check_init(c, domain, port)) < 0) {
        free(c);
        errno = vchan__compat_errno(rc);
        return NULL;
    }
    return c;
}

QV_EXPORT libvchan_t *libvchan_server_init(int domain, int port, size_t read_min, size_t write_min)
{
    struct vchan__xv_open o = {0};
    struct libvchan *c = new_handle(domain, port);

    if (!c) {
        return NULL;
    }
    c->server = true;
    snprintf(c->xs_path, sizeof(c->xs_path), "data/vchan/%d/%s", domain, c->port);
    o.server = true;
    o.peer = domain;
    o.port = c->port;
    o.platform = c->platform;
    o.self = -1;
    o.read_min = read_min;
    o.write_min = write_min;
    o.xs_path = c->xs_path;
    c->xv = vchan__xv_open(&o);
    if (!c->xv) {
        int e = errno;
        free_handle(c);
        errno = e;
        return NULL;
    }
    c->xv->blocking = 1; /* Qubes' server blocks until told otherwise */
    return c;
}

QV_EXPORT libvchan_t *libvchan_client_init_async(int domain, int port, EVTCHN *watch_fd)
{
    /* Readable at once, then every ASYNC_PERIOD_MS: each time, finish looks again. */
    struct itimerspec its = {
        .it_value = {.tv_nsec = 1},
        .it_interval = {.tv_nsec = ASYNC_PERIOD_MS * 1000000L},
    };
    struct libvchan *c;

    if (!watch_fd) {
        errno = EINVAL;
        return NULL;
    }
    c = new_handle(domain, port);
    if (!c) {
        return NULL;
    }
    c->watch = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (c->watch < 0 || timerfd_settime(c->watch, 0, &its, NULL) < 0) {
        int e = errno;
        free_handle(c);
        errno = e;
        return NULL;
    }
    *watch_fd = c->watch;
    return c;
}

QV_EXPORT int libvchan_client_init_async_finish(libvchan_t *ctrl, bool blocking)
{
    struct vchan__xv_open o = {0};
    uint64_t ticks;

    if (!ctrl || ctrl->server) {
        errno = EINVAL;
        return -1;
    }
    if (ctrl->xv) {
        return 0;
    }
    while (read(ctrl->watch, &ticks, sizeof(ticks)) > 0) {
        /* drained: the timer is readable again after the next period */
    }
    o.server = false;
    o.peer = ctrl->remote;
    o.port = ctrl->port;
    o.platform = ctrl->platform;
    o.self = -1;
    o.timeout_ms = ASYNC_LOOK_MS;
    ctrl->xv = vchan__xv_open(&o);
    if (!ctrl->xv) {
        /* Not published yet (local: nobody answered in time either): wait more. */
        return errno == ETIMEDOUT || errno == ENOENT ? 1 : -1;
    }
    ctrl->xv->blocking = blocking;
    close(ctrl->watch); /* as Qubes closes its xenstore watch: done with it */
    ctrl->watch = -1;
    return 0;
}

QV_EXPORT libvchan_t *libvchan_client_init(int domain, int port)
{
    struct pollfd pfd = {.events = POLLIN};
    libvchan_t *ctrl = libvchan_client_init_async(domain, port, &pfd.fd);
    int rc = 1;

    if (!ctrl) {
        return NULL;
    }
    while (rc > 0) {
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            break;
        }
        if (pfd.revents & POLLIN) {
            rc = libvchan_client_init_async_finish(ctrl, true);
        }
    }
    if (rc != 0) {
        int e = errno;
        libvchan_close(ctrl);
        errno = e;
        return NULL;
    }
    return ctrl;
}

QV_EXPORT void libvchan_close(libvchan_t *ctrl)
{
    if (!ctrl) {
        return;
    }
    libxenvchan_close(ctrl->xv); /* removes what the server still has published */
    free_handle(ctrl);
}

/* ----------------------------------------------------------------- I/O */

/* Not connected yet (an async client): every I/O is -1 with EAGAIN, as Qubes'. */
static int not_yet(void)
{
    errno = EAGAIN;
    return -1;
}

QV_EXPORT int libvchan_write(libvchan_t *ctrl, const void *data, size_t size)
{
    if (!ctrl) {
        errno = EINVAL;
        return -1;
    }
    return ctrl->xv ? libxenvchan_write(ctrl->xv, data, size) : not_yet();
}

QV_EXPORT int libvchan_send(libvchan_t *ctrl, const void *data, size_t size)
{
    if (!ctrl) {
        errno = EINVAL;
        return -1;
    }
    return ctrl->xv ? libxenvchan_send(ctrl->xv, data, size) : not_yet();
}

QV_EXPORT int libvchan_read(libvchan_t *ctrl, void *data, size_t size)
{
    if (!ctrl) {
        errno = EINVAL;
        return -1;
    }
    return ctrl->xv ? libxenvchan_read(ctrl->xv, data, size) : not_yet();
}

QV_EXPORT int libvchan_recv(libvchan_t *ctrl, void *data, size_t size)
{
    if (!ctrl) {
        errno = EINVAL;
        return -1;
    }
    return ctrl->xv ? libxenvchan_recv(ctrl->xv, data, size) : not_yet();
}

QV_EXPORT void libvchan_set_blocking(libvchan_t *ctrl, bool blocking)
{
    /* Qubes aborts on a handle not connected yet; ours ignores the call. */
    if (ctrl && ctrl->xv) {
        ctrl->xv->blocking = blocking;
    }
}

QV_EXPORT EVTCHN libvchan_fd_for_select(libvchan_t *ctrl)
{
    if (!ctrl) {
        errno = EINVAL;
        return -1;
    }
    return ctrl->xv ? libxenvchan_fd_for_select(ctrl->xv) : not_yet();
}

/* The peer's domain (local: process) is gone, though nothing said so yet. */
static bool peer_gone(libvchan_t *ctrl)
{
    struct vchan *v = vchan__xv_chan(ctrl->xv);

#ifdef HAVE_XEN
    if (vchan__xen_peer_gone(v)) {
        return true;
    }
#endif
    return vchan__local_peer_gone(v);
}

QV_EXPORT int libvchan_is_open(libvchan_t *ctrl)
{
    if (!ctrl) {
        return VCHAN_DISCONNECTED;
    }
    if (!ctrl->xv) {
        return VCHAN_WAITING;
    }
    switch (libxenvchan_is_open(ctrl->xv)) {
    case 1:
        return peer_gone(ctrl) ? VCHAN_DISCONNECTED : VCHAN_CONNECTED;
    case 2:
        return peer_gone(ctrl) ? VCHAN_DISCONNECTED : VCHAN_WAITING;
    default:
        return VCHAN_DISCONNECTED; /* closed, or the peer broke the protocol */
    }
}

QV_EXPORT int libvchan_wait(libvchan_t *ctrl)
{
    int rc;

    if (!ctrl) {
        errno = EINVAL;
        return -1;
    }
    if (!ctrl->xv) {
        return 0;
    }
    rc = libxenvchan_wait(ctrl->xv);
    /* A waiting server sleeps until its client comes (or the peer is gone). */
    while (rc == 0 && ctrl->server && libvchan_is_open(ctrl) == VCHAN_WAITING) {
        rc = libxenvchan_wait(ctrl->xv);
    }
    if (ctrl->server && !ctrl->unpublished) {
        /* Qubes removes the server's entry at its first wait; local: accept did. */
        ctrl->unpublished = true;
#ifdef HAVE_XEN
        vchan__xen_unpublish(vchan__xv_chan(ctrl->xv));
#endif
    }
    return rc;
}

/* A count, never negative: callers loop on `while (libvchan_data_ready(c))`. */
static int count(libvchan_t *ctrl, int (*get)(struct libxenvchan *))
{
    int n;

    if (!ctrl || !ctrl->xv) {
        return 0;
    }
    n = get(ctrl->xv);
    return n < 0 ? 0 : n;
}

QV_EXPORT int libvchan_data_ready(libvchan_t *ctrl)
{
    return count(ctrl, libxenvchan_data_ready);
}

QV_EXPORT int libvchan_buffer_space(libvchan_t *ctrl)
{
    return count(ctrl, libxenvchan_buffer_space);
}
