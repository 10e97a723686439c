/* SPDX-License-Identifier: ISC */
/*
 * The vchan ring protocol: stream and packet I/O over the two rings of a
 * control page, with libxenvchan's notify bits. Freestanding: no libc but
 * memcpy; the platform gives events and time.
 *
 * The peer can rewrite any shared field at any moment. Each is read once
 * into a local (marked peer-controlled), checked, then used. Our own indices
 * are kept privately and only ever written to the shared page.
 */
#include <string.h>

#include "barrier.h"
#include "internal.h"

void vchan__ring_attach(struct vchan *v, bool server)
{
    struct vchan__wire *c = v->ctrl;
    struct vchan__ring_idx *rd = server ? &c->left : &c->right;
    struct vchan__ring_idx *wr = server ? &c->right : &c->left;

    v->server = server;
    v->rd.shr_cons = &rd->cons;
    v->rd.shr_prod = &rd->prod;
    v->wr.shr_cons = &wr->cons;
    v->wr.shr_prod = &wr->prod;
    v->own_live = server ? &c->srv_live : &c->cli_live;
    v->peer_live = server ? &c->cli_live : &c->srv_live;
    v->own_notify = server ? &c->srv_notify : &c->cli_notify;
    v->peer_notify = server ? &c->cli_notify : &c->srv_notify;
    /*
     * Our indices start wherever the page says (a fresh server page says 0);
     * only differences matter, so any starting value is safe.
     */
    v->rd.own = vchan__load_once(v->rd.shr_cons);
    v->wr.own = vchan__load_once(v->wr.shr_prod);
}

/* Bytes the peer has produced and we have not consumed. */
static int ready(struct vchan *v, uint32_t *n)
{
    uint32_t prod = vchan__load_acquire(v->rd.shr_prod); /* peer-controlled */
    uint32_t avail = prod - v->rd.own;

    *n = 0; /* defined on every path (gcc -O2 -Wmaybe-uninitialized) */
    if (avail > v->rd.size) {
        return vchan__broken(v, "peer moved its producer index outside the ring");
    }
    *n = avail;
    return 0;
}

/* Bytes free in the ring we write. */
static int space(struct vchan *v, uint32_t *n)
{
    /* Acquire: the peer has finished copying out what it consumed. */
    uint32_t cons = vchan__load_acquire(v->wr.shr_cons); /* peer-controlled */
    uint32_t used = v->wr.own - cons;

    *n = 0; /* defined on every path (gcc -O2 -Wmaybe-uninitialized) */
    if (used > v->wr.size) {
        return vchan__broken(v, "peer moved its consumer index outside the ring");
    }
    *n = v->wr.size - used;
    return 0;
}

/* Ask the peer to signal us on its next action of kind `bit`. */
static void request_notify(struct vchan *v, uint8_t bit)
{
    vchan__fetch_or(v->peer_notify, bit);
    /* The request is visible /before/ we re-read the indices (pairs with signal_peer). */
    vchan__mb();
}

/* Tell the peer about our action `bit`, if it asked. */
static int signal_peer(struct vchan *v, uint8_t bit)
{
    uint8_t prev;

    /* Our index update is visible /before/ we read the peer's request. */
    vchan__mb();
    prev = vchan__fetch_and(v->own_notify, (uint8_t)~bit); /* peer-controlled */
    if (!(prev & bit)) {
        return 0;
    }
    return v->plat->notify(v->p);
}

static int peer_state(struct vchan *v, enum vchan_state *st)
{
    uint8_t live;

    *st = VCHAN_STATE_CLOSED; /* defined on every path, as above */
    if (v->broken) {
        return -VCHAN_EPROTO;
    }
    if (v->peer_gone) {
        *st = VCHAN_STATE_CLOSED;
        return 0;
    }
    /* Acquire: what the peer wrote before closing is seen once its close is. */
    live = vchan__load_acquire(v->peer_live); /* peer-controlled */
    switch (live) {
    case VCHAN__LIVE_CLOSED:
        *st = VCHAN_STATE_CLOSED;
        return 0;
    case VCHAN__LIVE_OPEN:
        *st = VCHAN_STATE_OPEN;
        return 0;
    case VCHAN__LIVE_WAITING:
        if (v->server) {
            *st = VCHAN_STATE_WAITING;
            return 0;
        }
        break;
    default:
        break;
    }
    return vchan__broken(v, "peer wrote an invalid live byte");
}

static void copy_out(struct vchan *v, void *dst, uint32_t n)
{
    uint32_t off = v->rd.own & (v->rd.size - 1);
    uint32_t first = v->rd.size - off < n ? v->rd.size - off : n;

    memcpy(dst, v->rd.buf + off, first);
    memcpy((uint8_t *)dst + first, v->rd.buf, n - first);
    v->rd.own += n;
    /* The copy is finished /before/ the peer sees the space free (its acquire in space()). */
    vchan__store_release(v->rd.shr_cons, v->rd.own);
}

static void copy_in(struct vchan *v, const void *src, uint32_t n)
{
    uint32_t off = v->wr.own & (v->wr.size - 1);
    uint32_t first = v->wr.size - off < n ? v->wr.size - off : n;

    memcpy(v->wr.buf + off, src, first);
    memcpy(v->wr.buf, (const uint8_t *)src + first, n - first);
    v->wr.own += n;
    /* The data is written /before/ the peer sees the new producer index (its acquire in ready()). */
    vchan__store_release(v->wr.shr_prod, v->wr.own);
}

static uint64_t deadline_of(const struct vchan *v)
{
    return v->timeout_ms > 0 ? v->plat->now_ms() + (uint64_t)v->timeout_ms : 0;
}

/* Sleep until the platform reports an event or the deadline (0: none) passes. */
static int block(struct vchan *v, uint64_t deadline)
{
    int ms = -1;
    bool hangup = false;
    int rc;

    if (deadline) {
        uint64_t now = v->plat->now_ms();
        if (now >= deadline) {
            return vchan__fail(v, VCHAN_ETIMEDOUT, "timed out waiting for the peer");
        }
        ms = deadline - now > 0x7fffffff ? 0x7fffffff : (int)(deadline - now);
    }
    rc = v->plat->wait(v->p, ms, &hangup);
    if (hangup) {
        v->peer_gone = true;
    }
    if (rc == -VCHAN_ETIMEDOUT) {
        return vchan__fail(v, VCHAN_ETIMEDOUT, "timed out waiting for the peer");
    }
    return rc;
}

static uint32_t min_u32(uint32_t a, size_t b)
{
    return b < a ? (uint32_t)b : a;
}

int vchan_read(struct vchan *v, void *buf, size_t len, size_t *nread)
{
    uint64_t deadline;

    if (!v || !nread || (!buf && len)) {
        return -VCHAN_EINVAL;
    }
    *nread = 0;
    if (v->broken) {
        return -VCHAN_EPROTO;
    }
    if (len == 0) {
        return 0;
    }
    deadline = deadline_of(v);
    for (;;) {
        enum vchan_state st = VCHAN_STATE_CLOSED;
        uint32_t n = 0;
        int rc;

        /* Liveness first: data written before a close is then seen below. */
        if ((rc = peer_state(v, &st)) || (rc = ready(v, &n))) {
            return rc;
        }
        if (n == 0) {
            request_notify(v, VCHAN__NOTIFY_WRITE);
            if ((rc = ready(v, &n))) {
                return rc;
            }
        }
        if (n > 0) {
            n = min_u32(n, len);
            copy_out(v, buf, n);
            *nread = n;
            return signal_peer(v, VCHAN__NOTIFY_READ);
        }
        if (st == VCHAN_STATE_CLOSED) {
            return 0; /* end-of-file */
        }
        if (v->nonblocking) {
            return -VCHAN_EAGAIN;
        }
        if ((rc = block(v, deadline))) {
            return rc;
        }
    }
}

int vchan_write(struct vchan *v, const void *buf, size_t len, size_t *nwritten)
{
    uint64_t deadline;
    size_t done = 0;

    if (!v || !nwritten || (!buf && len)) {
        return -VCHAN_EINVAL;
    }
    *nwritten = 0;
    deadline = deadline_of(v);
    for (;;) {
        enum vchan_state st = VCHAN_STATE_CLOSED;
        uint32_t n = 0;
        int rc;

        if ((rc = peer_state(v, &st))) {
            return rc;
        }
        if (st == VCHAN_STATE_CLOSED) {
            return vchan__fail(v, VCHAN_EPIPE, "peer closed the channel");
        }
        if (done == len) {
            return 0;
        }
        if ((rc = space(v, &n))) {
            return rc;
        }
        if (n < len - done) {
            request_notify(v, VCHAN__NOTIFY_READ);
            if ((rc = space(v, &n))) {
                return rc;
            }
        }
        if (n > 0) {
            n = min_u32(n, len - done);
            copy_in(v, (const uint8_t *)buf + done, n);
            done += n;
            *nwritten = done;
            if ((rc = signal_peer(v, VCHAN__NOTIFY_WRITE))) {
                return rc;
            }
            if (done == len || v->nonblocking) {
                return 0;
            }
            continue;
        }
        if (v->nonblocking) {
            return -VCHAN_EAGAIN;
        }
        if ((rc = block(v, deadline))) {
            return rc;
        }
    }
}

int vchan_send(struct vchan *v, const void *buf, size_t len)
{
    uint64_t deadline;

    if (!v || (!buf && len)) {
        return -VCHAN_EINVAL;
    }
    if (len > v->wr.size) {
        return vchan__fail(v, VCHAN_EMSGSIZE, "packet larger than the write ring");
    }
    deadline = deadline_of(v);
    for (;;) {
        enum vchan_state st = VCHAN_STATE_CLOSED;
        uint32_t n = 0;
        int rc;

        if ((rc = peer_state(v, &st))) {
            return rc;
        }
        if (st == VCHAN_STATE_CLOSED) {
            return vchan__fail(v, VCHAN_EPIPE, "peer closed the channel");
        }
        if ((rc = space(v, &n))) {
            return rc;
        }
        if (n < len) {
            request_notify(v, VCHAN__NOTIFY_READ);
            if ((rc = space(v, &n))) {
                return rc;
            }
        }
        if (n >= len) {
            if (len == 0) {
                return 0;
            }
            copy_in(v, buf, (uint32_t)len);
            return signal_peer(v, VCHAN__NOTIFY_WRITE);
        }
        if (v->nonblocking) {
            return -VCHAN_EAGAIN;
        }
        if ((rc = block(v, deadline))) {
            return rc;
        }
    }
}

int vchan_recv(struct vchan *v, void *buf, size_t len)
{
    uint64_t deadline;

    if (!v || (!buf && len)) {
        return -VCHAN_EINVAL;
    }
    if (v->broken) {
        return -VCHAN_EPROTO;
    }
    if (len > v->rd.size) {
        return vchan__fail(v, VCHAN_EMSGSIZE, "packet larger than the read ring");
    }
    if (len == 0) {
        return 0;
    }
    deadline = deadline_of(v);
    for (;;) {
        enum vchan_state st = VCHAN_STATE_CLOSED;
        uint32_t n = 0;
        int rc;

        if ((rc = peer_state(v, &st)) || (rc = ready(v, &n))) {
            return rc;
        }
        if (n < len) {
            request_notify(v, VCHAN__NOTIFY_WRITE);
            if ((rc = ready(v, &n))) {
                return rc;
            }
        }
        if (n >= len) {
            copy_out(v, buf, (uint32_t)len);
            return signal_peer(v, VCHAN__NOTIFY_READ);
        }
        if (st == VCHAN_STATE_CLOSED) {
            return vchan__fail(v, VCHAN_EPIPE, "peer closed before the whole packet arrived");
        }
        if (v->nonblocking) {
            return -VCHAN_EAGAIN;
        }
        if ((rc = block(v, deadline))) {
            return rc;
        }
    }
}

int vchan_data_ready(struct vchan *v, size_t *out)
{
    uint32_t n = 0;
    int rc;

    if (!v || !out) {
        return -VCHAN_EINVAL;
    }
    *out = 0;
    if (v->broken) {
        return -VCHAN_EPROTO;
    }
    /* The caller will act on this outside the library: ask to hear of changes. */
    request_notify(v, VCHAN__NOTIFY_WRITE);
    if ((rc = ready(v, &n))) {
        return rc;
    }
    *out = n;
    return 0;
}

int vchan_buffer_space(struct vchan *v, size_t *out)
{
    uint32_t n = 0;
    int rc;

    if (!v || !out) {
        return -VCHAN_EINVAL;
    }
    *out = 0;
    if (v->broken) {
        return -VCHAN_EPROTO;
    }
    request_notify(v, VCHAN__NOTIFY_READ);
    if ((rc = space(v, &n))) {
        return rc;
    }
    *out = n;
    return 0;
}

enum vchan_state vchan_is_open(struct vchan *v)
{
    enum vchan_state st = VCHAN_STATE_CLOSED;

    if (!v || peer_state(v, &st)) {
        return VCHAN_STATE_CLOSED;
    }
    return st;
}

int vchan_wait(struct vchan *v)
{
    bool hangup = false;
    int rc;

    if (!v) {
        return -VCHAN_EINVAL;
    }
    if (!v->nonblocking) {
        return block(v, deadline_of(v));
    }
    rc = v->plat->wait(v->p, 0, &hangup);
    if (hangup) {
        v->peer_gone = true;
    }
    return rc;
}

int vchan_wait_connected(struct vchan *v)
{
    uint64_t deadline;

    if (!v) {
        return -VCHAN_EINVAL;
    }
    deadline = deadline_of(v);
    for (;;) {
        enum vchan_state st = VCHAN_STATE_CLOSED;
        int rc;

        if ((rc = peer_state(v, &st))) {
            return rc;
        }
        if (st != VCHAN_STATE_WAITING) {
            return 0;
        }
        if (v->nonblocking) {
            /* One look: consume what is pending (the platform may accept), then decide. */
            rc = vchan_wait(v);
            if (rc && rc != -VCHAN_EAGAIN) {
                return rc;
            }
            if ((rc = peer_state(v, &st))) {
                return rc;
            }
            return st == VCHAN_STATE_WAITING ? -VCHAN_EAGAIN : 0;
        }
        if ((rc = block(v, deadline))) {
            return rc;
        }
    }
}

size_t vchan_read_ring_size(const struct vchan *v)
{
    return v ? v->rd.size : 0;
}

size_t vchan_write_ring_size(const struct vchan *v)
{
    return v ? v->wr.size : 0;
}

int vchan_fd(struct vchan *v)
{
    return v ? v->plat->fd(v->p) : -VCHAN_EINVAL;
}

void vchan_set_timeout(struct vchan *v, int timeout_ms)
{
    if (v) {
        v->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    }
}

void vchan_set_nonblocking(struct vchan *v, bool nonblocking)
{
    if (v) {
        v->nonblocking = nonblocking;
    }
}

const char *vchan_platform_name(const struct vchan *v)
{
    return v ? v->plat->name : "";
}
