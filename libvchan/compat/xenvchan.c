/* SPDX-License-Identifier: ISC */
/*
 * libxenvchan.so.4.17: Xen 4.17's libxenvchan API and ABI over our ring
 * and platforms (docs/compat.md). Every function keeps libxenvchan's
 * return conventions; where the peer breaks the protocol, ours returns -1
 * with errno EPROTO where libxenvchan would hang or misread.
 *
 * The caller's struct libxenvchan is the first member of our handle, and
 * filled with the real things: `ring` is the shared control page, `read`
 * and `write` point at its indices and the rings' bytes, and on Xen `event`
 * and `event_port` are the platform's event channel handle and port. The
 * caller may write `blocking` (and `server_persist`) at any time: every
 * call reads them again.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvchan/core/internal.h"
#include "libvchan/platform/hosted.h"
#include "libvchan/platform/local_dir.h"
#include "libvchan/compat/compat.h"

/* Xen's wire header spells these as vchan.h does, in other tokens. */
#undef VCHAN_NOTIFY_WRITE
#undef VCHAN_NOTIFY_READ
#include "include/compat/libxenvchan.h"

#define XV_EXPORT __attribute__((visibility("default")))

/* The 4.17 layout on LP64, which callers compiled against Xen's header use. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct libxenvchan) == 88, "struct libxenvchan is 88 bytes");
_Static_assert(offsetof(struct libxenvchan, gntshr) == 0, "handle union at 0");
_Static_assert(offsetof(struct libxenvchan, ring) == 8, "ring at 8");
_Static_assert(offsetof(struct libxenvchan, event) == 16, "event at 16");
_Static_assert(offsetof(struct libxenvchan, event_port) == 24, "event_port at 24");
_Static_assert(offsetof(struct libxenvchan, read) == 32, "read at 32");
_Static_assert(offsetof(struct libxenvchan, write) == 56, "write at 56");
_Static_assert(offsetof(struct libxenvchan, xs_path) == 80, "xs_path at 80");
_Static_assert(sizeof(struct libxenvchan_ring) == 24, "struct libxenvchan_ring is 24 bytes");
#endif
_Static_assert(sizeof(struct vchan_interface) == sizeof(struct vchan__wire), "control page");
_Static_assert(offsetof(struct vchan_interface, cli_live) == offsetof(struct vchan__wire, cli_live),
               "cli_live");
_Static_assert(offsetof(struct vchan_interface, srv_live) == offsetof(struct vchan__wire, srv_live),
               "srv_live");

/* Our handle: what the caller sees first. */
struct xv {
    struct libxenvchan pub;
    struct vchan *v;
    bool unseen_write; /* wrote since wait last saw the write ring drained */
};

static struct xv *xv_of(struct libxenvchan *ctrl)
{
    return (struct xv *)ctrl;
}

int vchan__compat_errno(int rc)
{
    switch (rc < 0 ? -rc : rc) {
    case VCHAN_EAGAIN:
        return EAGAIN;
    case VCHAN_EPIPE:
        return EPIPE;
    case VCHAN_EPROTO:
        return EPROTO;
    case VCHAN_ETIMEDOUT:
        return ETIMEDOUT;
    case VCHAN_EMSGSIZE:
        return EMSGSIZE;
    case VCHAN_ENOMEM:
        return ENOMEM;
    case VCHAN_ENOENT:
        return ENOENT;
    case VCHAN_EPERM:
        return EPERM;
    case VCHAN_EADDRINUSE:
        return EADDRINUSE;
    case VCHAN_ENOTCONN:
        return ENOTCONN;
    case VCHAN_ENOSYS:
        return ENOSYS;
    case VCHAN_EIO:
        return EIO;
    default:
        return EINVAL;
    }
}

static int fail(int rc)
{
    errno = vchan__compat_errno(rc);
    return -1;
}

/* -------------------------------------------------- the xenstore path */

/* A domain id of a path: decimal, no leading zero but "0", at most VCHAN_DOMID_MAX. */
static bool parse_domid(const char *s, size_t len, int *out)
{
    uint64_t val;

    if (len > 1 && s[0] == '0') {
        return false;
    }
    if (!vchan__parse_dec(s, len, VCHAN_DOMID_MAX, &val)) {
        return false;
    }
    *out = (int)val;
    return true;
}

/* The next component of *s up to '/' or the end; false when empty. */
static bool component(const char **s, const char **start, size_t *len)
{
    const char *end = strchr(*s, '/');

    *start = *s;
    *len = end ? (size_t)(end - *s) : strlen(*s);
    *s += *len;
    return *len > 0;
}

static bool literal(const char **s, const char *want)
{
    size_t n = strlen(want);

    if (strncmp(*s, want, n) != 0) {
        return false;
    }
    *s += n;
    return true;
}

/*
 * "/local/domain/<server>/data/vchan/<client>/<port>" or the relative
 * "data/vchan/<client>/<port>" (*server -1: the caller's own domain).
 * Nothing else: no trailing slash, no empty or extra component.
 */
static bool parse_path(const char *path, int *server, int *client, char *port)
{
    const char *s = path, *c;
    size_t len;

    *server = -1;
    if (*s == '/') {
        if (!literal(&s, "/local/domain/") || !component(&s, &c, &len) ||
            !parse_domid(c, len, server) || !literal(&s, "/")) {
            return false;
        }
    }
    if (!literal(&s, "data/vchan/") || !component(&s, &c, &len) || !parse_domid(c, len, client) ||
        !literal(&s, "/") || !component(&s, &c, &len) || *s != '\0' || len > VCHAN_PORT_MAX) {
        return false;
    }
    memcpy(port, c, len);
    port[len] = '\0';
    return vchan__port_valid(port);
}

struct libxenvchan *vchan__xv_open(const struct vchan__xv_open *o)
{
    struct vchan__open_extra extra = {.xs_path = o->own_path ? o->xs_path : NULL};
    struct vchan_config cfg = VCHAN_CONFIG_INIT();
    struct xv *x;
    int rc;

    if (o->server && (o->read_min > VCHAN_MAX_RING_SIZE || o->write_min > VCHAN_MAX_RING_SIZE)) {
        errno = EINVAL;
        return NULL;
    }
    x = calloc(1, sizeof(*x));
    if (!x) {
        errno = ENOMEM;
        return NULL;
    }
    cfg.domain = o->peer;
    cfg.port = o->port;
    cfg.platform = o->platform;
    if (o->server) {
        /* 0 asks for the smallest ring: libxenvchan puts it in the control page. */
        cfg.read_size = o->read_min ? o->read_min : 1;
        cfg.write_size = o->write_min ? o->write_min : 1;
    } else {
        cfg.timeout_ms = o->timeout_ms;
    }
    vchan__local_self_override = o->self;
    rc = vchan__hosted_open(&x->v, &cfg, o->server, &extra);
    vchan__local_self_override = -1;
    if (rc == 0) {
        rc = vchan_set_timeout(x->v, 0);
    }
    if (rc == 0 && o->server && o->xs_path) {
        x->pub.xs_path = strdup(o->xs_path);
        if (!x->pub.xs_path) {
            rc = -VCHAN_ENOMEM;
        }
    }
    if (rc) {
        vchan_close(x->v);
        free(x);
        return fail(rc), NULL;
    }

    x->pub.ring = (struct vchan_interface *)x->v->ctrl;
    x->pub.is_server = o->server;
    x->pub.server_persist = 0;
    x->pub.blocking = 0; /* libxenvchan leaves it uninitialised; callers set it */
    x->pub.read.shr = (struct ring_shared *)(o->server ? &x->v->ctrl->left : &x->v->ctrl->right);
    x->pub.write.shr = (struct ring_shared *)(o->server ? &x->v->ctrl->right : &x->v->ctrl->left);
    x->pub.read.buffer = x->v->rd.buf;
    x->pub.write.buffer = x->v->wr.buf;
    x->pub.read.order = __builtin_ctz(x->v->rd.size);
    x->pub.write.order = __builtin_ctz(x->v->wr.size);
#ifdef HAVE_XEN
    {
        struct xenevtchn_handle *xce;
        uint32_t lport;
        int own;

        if (vchan__xen_event(x->v, &xce, &lport, &own) == 0) {
            x->pub.event = xce;
            x->pub.event_port = lport;
        }
    }
#endif
    return &x->pub;
}

struct vchan *vchan__xv_chan(struct libxenvchan *ctrl)
{
    return ctrl ? xv_of(ctrl)->v : NULL;
}

/*
 * Open our channel for a libxenvchan call: `peer` is the domain argument,
 * the ids and the port come from the path and must agree with it. On the
 * local platform the path also names our own domain (VCHAN_DOMID, when
 * set, must agree).
 */
static struct libxenvchan *open_channel(bool server, int peer, const char *xs_path,
                                        size_t read_min, size_t write_min)
{
    struct vchan__xv_open o = {0};
    char port[VCHAN_PORT_MAX + 1];
    const char *platform = NULL;
    int srv_dom = -1, cli_dom = -1, self = -1, rc;
    struct libxenvchan *ctrl;
    bool own = false;

    if (!xs_path || peer < 0 || peer > VCHAN_DOMID_MAX) {
        errno = EINVAL;
        return NULL;
    }
    if (!parse_path(xs_path, &srv_dom, &cli_dom, port)) {
        /* Any other path (libxl's device-model paths): on Xen, used as it is. */
        own = true;
        snprintf(port, sizeof(port), "xenvchan"); /* a name for messages only */
    } else if (server ? cli_dom != peer : (srv_dom >= 0 ? srv_dom : cli_dom) != peer) {
        errno = EINVAL; /* the path's peer is not the domain argument */
        return NULL;
    }
    if ((rc = vchan_platform_select(NULL, &platform, NULL, 0)) < 0) {
        return fail(rc), NULL;
    }
    if (own && strcmp(platform, "xen") != 0) {
        errno = EINVAL; /* the local platform knows only the data/vchan forms */
        return NULL;
    }
    if (strcmp(platform, "local") == 0) {
        char msg[VCHAN__LOCAL_MSG_MAX];
        int env = 0;
        bool env_set = getenv("VCHAN_DOMID") && *getenv("VCHAN_DOMID");

        if ((rc = vchan__local_env_domid(&env, msg)) < 0) {
            return fail(rc), NULL;
        }
        /* Our own domain: the server's of the path, or the client's; relative: ours. */
        self = server ? srv_dom : cli_dom;
        if (server && self < 0) {
            self = env;
        }
        if (!server && srv_dom < 0) {
            self = env; /* a relative path names a server in our own domain */
        }
        /* A client is the path's <client> (relative: our domain is also the server's). */
        if ((env_set && self != env) || (!server && self != cli_dom)) {
            errno = EINVAL;
            return NULL;
        }
    }

    o.server = server;
    o.peer = peer;
    o.port = port;
    o.platform = platform;
    o.self = self;
    o.read_min = read_min;
    o.write_min = write_min;
    /*
     * libxenvchan's client looks once and fails when nothing is
     * published; ours looks for up to a second (the local server
     * answers the handshake from its next wait or I/O call).
     */
    o.timeout_ms = 1000;
    o.xs_path = xs_path;
    o.own_path = own;
    ctrl = vchan__xv_open(&o);
    if (!ctrl) {
        return NULL;
    }
#ifdef HAVE_XEN
    {
        struct xenevtchn_handle *xce;
        uint32_t lport;
        int self_dom;

        /*
         * Our Xen platform published (or looked) under our own domain's
         * data/vchan: the path must have named that very place.
         */
        if (!own && vchan__xen_event(vchan__xv_chan(ctrl), &xce, &lport, &self_dom) == 0 &&
            ((server && srv_dom >= 0 && srv_dom != self_dom) || (!server && cli_dom != self_dom))) {
            libxenvchan_close(ctrl);
            errno = EINVAL;
            return NULL;
        }
    }
#endif
    return ctrl;
}

XV_EXPORT struct libxenvchan *libxenvchan_server_init(struct xentoollog_logger *logger, int domain,
                                                      const char *xs_path, size_t read_min,
                                                      size_t write_min)
{
    (void)logger;
    return open_channel(true, domain, xs_path, read_min, write_min);
}

XV_EXPORT struct libxenvchan *libxenvchan_client_init(struct xentoollog_logger *logger, int domain,
                                                      const char *xs_path)
{
    (void)logger;
    return open_channel(false, domain, xs_path, 0, 0);
}

/* libxenvchan exports this by accident (undeclared): forget the published path (freed). */
XV_EXPORT void close_xs_srv(struct libxenvchan *ctrl);
XV_EXPORT void close_xs_srv(struct libxenvchan *ctrl)
{
    if (!ctrl) {
        return;
    }
    free(ctrl->xs_path);
    ctrl->xs_path = NULL;
}

XV_EXPORT void libxenvchan_close(struct libxenvchan *ctrl)
{
    struct xv *x = xv_of(ctrl);

    if (!ctrl) {
        return;
    }
    vchan_close(x->v); /* the server's platform removes what it published */
    close_xs_srv(ctrl);
    free(x);
}

/* ----------------------------------------------------------------- I/O */

/* The caller may have changed `blocking` since the last call. */
static struct vchan *use(struct libxenvchan *ctrl)
{
    struct vchan *v = xv_of(ctrl)->v;

    (void)vchan_set_nonblocking(v, !ctrl->blocking);
    return v;
}

static int clamp(size_t size)
{
    return size > INT_MAX ? INT_MAX : (int)size;
}

XV_EXPORT int libxenvchan_is_open(struct libxenvchan *ctrl)
{
    if (!ctrl) {
        return 0;
    }
    if (ctrl->is_server && ctrl->server_persist) {
        return 1;
    }
    /* A peer that broke the protocol reads as closed, so loops on is_open end. */
    return (int)vchan_is_open(xv_of(ctrl)->v);
}

XV_EXPORT int libxenvchan_read(struct libxenvchan *ctrl, void *data, size_t size)
{
    struct vchan *v;
    size_t n = 0;
    int rc;

    if (!ctrl || (!data && size)) {
        return fail(VCHAN_EINVAL);
    }
    v = use(ctrl);
    if (size == 0) {
        size_t ready = 0;
        if ((rc = vchan_data_ready(v, &ready)) < 0) {
            return fail(rc);
        }
        return ready || libxenvchan_is_open(ctrl) ? 0 : fail(VCHAN_EPIPE);
    }
    rc = vchan_read(v, data, (size_t)clamp(size), &n);
    if (rc == 0) {
        return n ? (int)n : fail(VCHAN_EPIPE); /* 0 bytes: the peer closed */
    }
    return rc == -VCHAN_EAGAIN ? 0 : fail(rc);
}

XV_EXPORT int libxenvchan_recv(struct libxenvchan *ctrl, void *data, size_t size)
{
    struct vchan *v;
    int rc;

    if (!ctrl || (!data && size)) {
        return fail(VCHAN_EINVAL);
    }
    v = use(ctrl);
    if (size == 0) {
        return 0;
    }
    if (size > vchan_read_ring_size(v)) {
        /* It can never arrive: -1 when closed or blocking, else "not yet". */
        if (!libxenvchan_is_open(ctrl)) {
            return fail(VCHAN_EPIPE);
        }
        return ctrl->blocking ? fail(VCHAN_EMSGSIZE) : 0;
    }
    rc = vchan_recv(v, data, size);
    if (rc == 0) {
        return (int)size;
    }
    return rc == -VCHAN_EAGAIN ? 0 : fail(rc);
}

XV_EXPORT int libxenvchan_send(struct libxenvchan *ctrl, const void *data, size_t size)
{
    struct vchan *v;
    int rc;

    if (!ctrl || (!data && size)) {
        return fail(VCHAN_EINVAL);
    }
    v = use(ctrl);
    if (!libxenvchan_is_open(ctrl)) {
        return fail(VCHAN_EPIPE);
    }
    if (size > vchan_write_ring_size(v)) {
        return ctrl->blocking ? fail(VCHAN_EMSGSIZE) : 0;
    }
    rc = vchan_send(v, data, size);
    if (rc == 0) {
        xv_of(ctrl)->unseen_write = true;
        return (int)size;
    }
    return rc == -VCHAN_EAGAIN ? 0 : fail(rc);
}

XV_EXPORT int libxenvchan_write(struct libxenvchan *ctrl, const void *data, size_t size)
{
    struct vchan *v;
    size_t n = 0;
    int rc;

    if (!ctrl || (!data && size)) {
        return fail(VCHAN_EINVAL);
    }
    v = use(ctrl);
    if (!libxenvchan_is_open(ctrl)) {
        return fail(VCHAN_EPIPE);
    }
    if (size == 0) {
        return 0;
    }
    rc = vchan_write(v, data, (size_t)clamp(size), &n);
    xv_of(ctrl)->unseen_write |= n > 0;
    if (rc == 0) {
        return (int)n;
    }
    if (rc == -VCHAN_EAGAIN) {
        return (int)n; /* non-blocking: what fitted, 0 when nothing did */
    }
    return fail(rc); /* blocking: -1 when the peer closed, even after a part */
}

/*
 * A server waiting for its client: sleep on the descriptor until the client
 * has connected, and leave its event pending. A client that writes at once
 * after connecting may have its data's event merged with the connect's;
 * were that consumed here, a caller that waits in a loop on is_open and
 * then select()s on the descriptor before reading (Debian's
 * vchan-socket-proxy serving) would sleep beside a ring holding data, and
 * the client beside a full ring. What wakes us before the client is there
 * (the local platform's handshake steps, a xenstore watch) is consumed.
 */
static int await_client(struct xv *x)
{
    for (;;) {
        struct pollfd p = {.fd = vchan_fd(x->v), .events = POLLIN};
        int rc;

        if (p.fd < 0) {
            return fail(p.fd);
        }
        if (poll(&p, 1, -1) < 0 && errno != EINTR) {
            return fail(VCHAN_EIO);
        }
        if (vchan_is_open(x->v) != VCHAN_STATE_WAITING) {
            return 0; /* connected (or gone): the event stays for the caller */
        }
        /* Something else woke us (a xenstore watch): consume it, then sleep again. */
        if ((rc = vchan_poll(x->v, 0)) < 0) {
            return fail(rc);
        }
    }
}

/*
 * libxenvchan's wait blocks until the next event. Its peer signals a read
 * only when asked, and a writer asks only when its data did not fit, so a
 * caller that writes what fits and then waits for the peer to take it (as
 * vchan-socket-proxy does at the end of its input) sleeps until the peer
 * closes, and a peer that waits for our close sleeps too. We ask for that
 * signal here, and when the peer has already taken everything written
 * since the last wait, that is the event: return at once (at most once per
 * batch of writes, so a wait loop never spins).
 */
XV_EXPORT int libxenvchan_wait(struct libxenvchan *ctrl)
{
    struct xv *x = xv_of(ctrl);
    size_t space = 0;
    int rc;

    if (!ctrl) {
        return fail(VCHAN_EINVAL);
    }
    if (x->unseen_write && vchan_buffer_space(x->v, &space) == 0 &&
        space == vchan_write_ring_size(x->v)) {
        x->unseen_write = false;
        return 0;
    }
    if (ctrl->is_server && vchan_is_open(x->v) == VCHAN_STATE_WAITING) {
        return await_client(x);
    }
    /* libxenvchan's wait always blocks (it reads the event channel device). */
    (void)vchan_set_nonblocking(x->v, false);
    rc = vchan_wait(x->v);
    return rc < 0 ? fail(rc) : 0;
}

XV_EXPORT int libxenvchan_fd_for_select(struct libxenvchan *ctrl)
{
    int fd;

    if (!ctrl) {
        return fail(VCHAN_EINVAL);
    }
    fd = vchan_fd(xv_of(ctrl)->v);
    return fd < 0 ? fail(fd) : fd;
}

/* A count of vchan_data_ready or vchan_buffer_space (which also ask the peer to signal). */
static int count(struct libxenvchan *ctrl, int (*get)(struct vchan *, size_t *))
{
    size_t n = 0;
    int rc;

    if (!ctrl) {
        return fail(VCHAN_EINVAL);
    }
    rc = get(xv_of(ctrl)->v, &n);
    return rc < 0 ? fail(rc) : clamp(n);
}

XV_EXPORT int libxenvchan_data_ready(struct libxenvchan *ctrl)
{
    return count(ctrl, vchan_data_ready);
}

XV_EXPORT int libxenvchan_buffer_space(struct libxenvchan *ctrl)
{
    return count(ctrl, vchan_buffer_space);
}
