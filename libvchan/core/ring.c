/* SPDX-License-Identifier: ISC */
/*
 * The vchan ring protocol: stream and packet I/O over the two rings of a
 * control page, with libxenvchan's notify bits. Freestanding: no libc but
 * memcpy; the platform gives events and time.
 *
 * The peer can rewrite any shared field at any moment. Each is read once
 * into a local (marked peer-controlled), checked, then used. Our own indices
 * are kept privately and only ever written to the shared page.
 *
 * Speed. Xen's layout puts all four indices, both live bytes and both notify
 * bytes in one cache line, so every store either side makes takes that line
 * away from the other. The hot path therefore touches it as little as the
 * protocol allows:
 *  - the peer's index is cached as a count (vchan__ring.known) and read
 *    again only when the count is short of what the call needs;
 *  - a read served from that count needs neither the peer's index nor its
 *    live byte (data is delivered before end-of-file anyway);
 *  - a notify byte is loaded before any read-modify-write: the locked
 *    operation happens only when the bit is there to set or clear;
 *  - a long copy publishes its index in steps, so the peer works in
 *    parallel instead of waiting for the whole copy;
 *  - a blocking call spins briefly (bounded, adaptive) on the peer's index
 *    before it asks for an event and sleeps: while the peer is active no
 *    event, no system call and no wake-up is needed on either side.
 */
#include <string.h>

#include "barrier.h"
#include "deadline.h"
#include "internal.h"

/*
 * Longest spin before sleeping. Waking a sleeping process costs tens of
 * microseconds on the VMs we measure (docs/performance.md): a peer that
 * answers within this is caught without a sleep on either side, and a peer
 * that was itself woken a moment ago is still caught, so two busy sides do
 * not fall into taking turns at sleeping.
 *
 * Adaptive: a spin that pays off restores the whole budget; a spin that
 * ran out and was followed by a long sleep (more than SPIN_LONG_WAITS
 * budgets: the peer was idle, not slow) halves it, down to a sixteenth.
 * A short sleep after a spin that ran out leaves it as it is: the peer is
 * busy or waking, and the next spin may well catch it. So a channel with
 * sparse traffic spins a few microseconds per message, a busy one up to the
 * whole budget, and an idle one spins once and sleeps.
 */
#define SPIN_MAX_NS 50000u
#define SPIN_LONG_WAITS 4u
/*
 * The clock is a vDSO call on most hosts (tens of nanoseconds) but a system
 * call in Xen PV guests (tens of microseconds, measured in tests/xen's
 * guests), where a wake-up costs hundreds. So the budget is at least
 * SPIN_CLOCKS clock reads, at most SPIN_CEIL_NS, and the spin reads the
 * clock only every clock_stride rounds: reading it takes at most about
 * 1/SPIN_CLOCKS of a spin.
 */
#define SPIN_CLOCKS 8u
#define SPIN_CEIL_NS 1000000u
#define SPIN_CALIBRATE_ROUNDS 256u
/* How often a long copy publishes its index (at most half the ring). */
#define PUBLISH_STEP 16384u

/* Measure the clock's cost and a spin round's; set the budget and the stride. */
static void spin_calibrate(struct vchan *v)
{
    uint64_t t0, t1, t2, clock_ns, round_ns, budget;

    v->spin_max_ns = 0;
    v->clock_stride = SPIN_CLOCKS;
    if (!v->plat->now_ns) {
        return;
    }
    /* The least of three samples: a preemption inflates one, never deflates it. */
    clock_ns = round_ns = UINT64_MAX;
    for (unsigned k = 0; k < 3; k++) {
        t0 = v->plat->now_ns();
        t1 = v->plat->now_ns();
        for (unsigned i = 0; i < SPIN_CALIBRATE_ROUNDS; i++) {
            vchan__cpu_relax();
        }
        t2 = v->plat->now_ns();
        clock_ns = t1 - t0 < clock_ns ? t1 - t0 : clock_ns;
        round_ns = t2 - t1 < round_ns ? t2 - t1 : round_ns;
    }
    round_ns = round_ns > clock_ns ? (round_ns - clock_ns) / SPIN_CALIBRATE_ROUNDS : 0;
    budget = (uint64_t)SPIN_CLOCKS * clock_ns;
    budget = budget < SPIN_MAX_NS ? SPIN_MAX_NS : budget > SPIN_CEIL_NS ? SPIN_CEIL_NS : budget;
    v->spin_max_ns = (uint32_t)budget;
    if (clock_ns * SPIN_CLOCKS > SPIN_CLOCKS * (round_ns ? round_ns : 1)) {
        uint64_t stride = clock_ns * SPIN_CLOCKS / (round_ns ? round_ns : 1);
        v->clock_stride = stride > (1u << 24) ? (1u << 24) : (uint32_t)stride;
    }
}

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
    /* Nothing known ready or free yet: the first call reads the peer's index. */
    v->rd.known = 0;
    v->wr.known = 0;
    spin_calibrate(v);
    v->spin_ns = v->spin_max_ns;
    v->gave_up_at = 0;
}

/* Bytes the peer has produced and we have not consumed; refreshes rd.known. */
static int ready(struct vchan *v, uint32_t *n)
{
    uint32_t prod = vchan__load_acquire(v->rd.shr_prod); /* peer-controlled */
    uint32_t avail = prod - v->rd.own;

    *n = 0; /* defined on every path (gcc -O2 -Wmaybe-uninitialized) */
    v->rd.known = 0;
    if (avail > v->rd.size) {
        return vchan__broken(v, "peer moved its producer index outside the ring");
    }
    v->rd.known = avail;
    *n = avail;
    return 0;
}

/* Bytes free in the ring we write; refreshes wr.known. */
static int space(struct vchan *v, uint32_t *n)
{
    /* Acquire: the peer has finished copying out what it consumed. */
    uint32_t cons = vchan__load_acquire(v->wr.shr_cons); /* peer-controlled */
    uint32_t used = v->wr.own - cons;

    *n = 0; /* defined on every path (gcc -O2 -Wmaybe-uninitialized) */
    v->wr.known = 0;
    if (used > v->wr.size) {
        return vchan__broken(v, "peer moved its consumer index outside the ring");
    }
    v->wr.known = v->wr.size - used;
    *n = v->wr.known;
    return 0;
}

/*
 * Ask the peer to signal us on its next action of kind `bit`.
 *
 * The bit is loaded first and the atomic OR skipped when it is already set
 * (we set it on an earlier wait that ended without the peer acting). That
 * is safe: the fence below still follows our earlier OR, so the pairing
 * with signal_peer holds as if we had set it now, and if the peer has
 * cleared it meanwhile, that clear saw the bit set and sent us an event:
 * the wait ends at once and the next request sets the bit afresh.
 */
static void request_notify(struct vchan *v, uint8_t bit)
{
    if (!(vchan__load_once(v->peer_notify) & bit)) { /* peer-controlled: a hint, see above */
        vchan__fetch_or(v->peer_notify, bit);
    }
    /* The request is visible /before/ we re-read the indices (pairs with signal_peer). */
    vchan__mb();
}

/*
 * Tell the peer about our action `bit`, if it asked.
 *
 * The byte is loaded after the fence and cleared with an atomic AND only
 * when the load shows the bit. A plain load is enough to decide "nobody
 * asked": the fence orders our index store before it, and the waiter
 * orders its OR before its re-read of our index (request_notify). So if our
 * load misses the waiter's bit, its re-read sees our index and it does not
 * sleep; if it shows the bit, the AND clears it and tells us whether it was
 * still set (a hostile peer may have cleared it; then nobody is told). This
 * saves a locked read-modify-write of the shared line on every call while
 * the peer is not sleeping.
 */
static int signal_peer(struct vchan *v, uint8_t bit)
{
    uint8_t prev;

    /* Our index update is visible /before/ we read the peer's request. */
    vchan__mb();
    if (!(vchan__load_once(v->own_notify) & bit)) { /* peer-controlled: only decides the AND */
        return 0;
    }
    prev = vchan__fetch_and(v->own_notify, (uint8_t)~bit); /* peer-controlled */
    if (!(prev & bit)) {
        return 0;
    }
    return v->plat->notify(v->p);
}

/*
 * Signal after data has moved. The move stands: the call reports it as
 * done (a caller retrying a packet would send it twice, or lose one it
 * received), and a failed notify is returned by every later call instead.
 */
static void signal_moved(struct vchan *v, uint8_t bit)
{
    int rc = signal_peer(v, bit);

    if (rc && !v->notify_err) {
        v->notify_err = rc;
    }
}

/* A handle that must not be used for I/O any more: its error, else 0. */
static int unusable(const struct vchan *v)
{
    return v->broken ? -VCHAN_EPROTO : v->notify_err;
}

static int peer_state(struct vchan *v, enum vchan_state *st)
{
    uint8_t live;

    *st = VCHAN_STATE_CLOSED; /* defined on every path, as above */
    if (unusable(v)) {
        return unusable(v);
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

/* How much one copy moves before it publishes its index (see PUBLISH_STEP). */
static uint32_t publish_step(uint32_t size)
{
    return size >= 2 * PUBLISH_STEP ? PUBLISH_STEP : size / 2;
}

static void copy_out(struct vchan *v, void *dst, uint32_t n)
{
    uint32_t step = publish_step(v->rd.size);
    uint8_t *d = dst;

    while (n > 0) {
        uint32_t k = n < step ? n : step;
        uint32_t off = v->rd.own & (v->rd.size - 1);
        uint32_t first = v->rd.size - off < k ? v->rd.size - off : k;

        memcpy(d, v->rd.buf + off, first);
        memcpy(d + first, v->rd.buf, k - first);
        v->rd.own += k;
        v->rd.known -= k;
        d += k;
        n -= k;
        /* The copy is finished /before/ the peer sees the space free (its acquire in space()). */
        vchan__store_release(v->rd.shr_cons, v->rd.own);
        /* A writer waiting for space wakes now, not after the whole copy: it overlaps ours. */
        signal_moved(v, VCHAN__NOTIFY_READ);
    }
}

static void copy_in(struct vchan *v, const void *src, uint32_t n)
{
    uint32_t step = publish_step(v->wr.size);
    const uint8_t *s = src;

    while (n > 0) {
        uint32_t k = n < step ? n : step;
        uint32_t off = v->wr.own & (v->wr.size - 1);
        uint32_t first = v->wr.size - off < k ? v->wr.size - off : k;

        memcpy(v->wr.buf + off, s, first);
        memcpy(v->wr.buf, s + first, k - first);
        v->wr.own += k;
        v->wr.known -= k;
        s += k;
        n -= k;
        /* The data is written /before/ the peer sees the new producer index (its ready()). */
        vchan__store_release(v->wr.shr_prod, v->wr.own);
        signal_moved(v, VCHAN__NOTIFY_WRITE); /* as in copy_out */
    }
}

/*
 * Spin until a peer's index at `a` or `b` (NULL: none) is no longer the
 * value seen (`sa`, `sb`) or its live byte leaves OPEN, for at most the
 * current budget. true: something changed and the caller looks again
 * (reading and checking the fields properly); false: the budget ran out and
 * the caller asks for an event and sleeps. The values read here are
 * peer-controlled but only compared, never used. Nothing is written to the
 * shared page while spinning.
 */
static bool spin2(struct vchan *v, const uint32_t *a, uint32_t sa, const uint32_t *b, uint32_t sb)
{
    uint64_t start;

    if (v->spin_ns == 0) {
        return false;
    }
    start = v->plat->now_ns();
    v->gave_up_at = 0;
    for (unsigned i = 1;; i++) {
        if ((a && vchan__load_once(a) != sa) || (b && vchan__load_once(b) != sb) ||
            vchan__load_once(v->peer_live) != VCHAN__LIVE_OPEN) {
            v->spin_ns = v->spin_max_ns;
            v->spin_misses = 0;
            return true;
        }
        vchan__cpu_relax();
        /* Read the clock only every clock_stride rounds (spin_calibrate). */
        if (i % v->clock_stride == 0 && v->plat->now_ns() - start >= v->spin_ns) {
            v->gave_up_at = start;
            return false;
        }
    }
}

static bool spin(struct vchan *v, const uint32_t *idx, uint32_t seen)
{
    return spin2(v, idx, seen, NULL, 0);
}

/* After the sleep that followed a spin that ran out: was the peer idle? */
static void spin_adapt(struct vchan *v)
{
    uint32_t floor = v->spin_max_ns / 16;

    if (v->gave_up_at) {
        /*
         * Halve after a long sleep (the peer was idle), and after every
         * second spin in a row that ran out: a peer that only moves once we
         * sleep shares our CPU, and spinning just delays it.
         */
        if (++v->spin_misses >= 2 ||
            v->plat->now_ns() - v->gave_up_at > (uint64_t)SPIN_LONG_WAITS * v->spin_max_ns) {
            v->spin_ns = v->spin_ns / 2 > floor ? v->spin_ns / 2 : floor;
            v->spin_misses = 0;
        }
    }
    v->gave_up_at = 0;
}

/*
 * Wait up to `ms` (0: only look, -1: no limit) for an event and consume
 * it; a hang-up the platform reports marks the peer gone.
 */
static int wait_event(struct vchan *v, int ms)
{
    bool hangup = false;
    int rc = v->plat->wait(v->p, ms, &hangup);

    if (hangup) {
        v->peer_gone = true;
    }
    return rc;
}

/*
 * Sleep until the platform reports an event or the deadline passes. The
 * deadline is taken on the first sleep of a call (*deadline == 0: not yet),
 * so a call that never sleeps never reads the clock.
 */
static int block(struct vchan *v, uint64_t *deadline)
{
    int ms = -1;
    int rc;

    if (!*deadline) {
        int timeout = vdeadline_timeout(v->timeout_ms);
        *deadline = timeout < 0 ? VDEADLINE_NONE : vdeadline_at(v->plat->now_ms(), timeout);
    }
    if (*deadline != VDEADLINE_NONE) {
        ms = vdeadline_left(*deadline, v->plat->now_ms());
        if (ms == 0) {
            return vchan__fail(v, VCHAN_ETIMEDOUT, "timed out waiting for the peer");
        }
    }
    rc = wait_event(v, ms);
    spin_adapt(v);
    if (rc == -VCHAN_ETIMEDOUT) {
        return vchan__fail(v, VCHAN_ETIMEDOUT, "timed out waiting for the peer");
    }
    return rc;
}

static uint32_t min_u32(uint32_t a, size_t b)
{
    return b < a ? (uint32_t)b : a;
}

/*
 * Make at least `need` bytes known ready, looking at the peer's index again
 * when fewer than `want` are known (want >= need >= 1). 0: they are; 1: the
 * peer has closed with fewer (the caller decides: end-of-file, or a packet
 * cut short); else an error (-VCHAN_EAGAIN when non-blocking). Spins, then
 * sleeps, while the peer is open and fewer are there.
 */
static int await_data(struct vchan *v, uint32_t want, uint32_t need, uint64_t *deadline)
{
    for (;;) {
        enum vchan_state st = VCHAN_STATE_CLOSED;
        uint32_t n = 0;
        int rc;

        if (v->rd.known >= want) {
            return 0;
        }
        /* Liveness first: data written before a close is then seen below. */
        if ((rc = peer_state(v, &st)) || (rc = ready(v, &n))) {
            return rc;
        }
        if (n < need && st == VCHAN_STATE_OPEN && !v->nonblocking &&
            spin(v, v->rd.shr_prod, v->rd.own + n)) {
            continue;
        }
        if (n < need) {
            request_notify(v, VCHAN__NOTIFY_WRITE);
            if ((rc = ready(v, &n))) {
                return rc;
            }
        }
        if (n >= need) {
            return 0;
        }
        if (st == VCHAN_STATE_CLOSED) {
            return 1;
        }
        if (v->nonblocking) {
            return -VCHAN_EAGAIN;
        }
        if ((rc = block(v, deadline))) {
            return rc;
        }
    }
}

/* What stream read and write check first; *count is 0 from here on whatever happens. */
static int io_begin(struct vchan *v, const void *buf, size_t len, size_t *count)
{
    if (count) {
        *count = 0;
    }
    if (!v || !count || (!buf && len)) {
        return -VCHAN_EINVAL;
    }
    return unusable(v);
}

int vchan_read(struct vchan *v, void *buf, size_t len, size_t *nread)
{
    uint64_t deadline = 0;
    uint32_t n;
    int rc;

    if ((rc = io_begin(v, buf, len, nread))) {
        return rc;
    }
    if (len == 0) {
        return 0;
    }
    /* Whatever is there, up to len: look again only when fewer are known. */
    rc = await_data(v, min_u32(v->rd.size, len), 1, &deadline);
    if (rc != 0) {
        return rc == 1 ? 0 : rc; /* closed with nothing left: end-of-file */
    }
    n = min_u32(v->rd.known, len);
    copy_out(v, buf, n);
    *nread = n;
    return 0;
}

/* The peer's state for a write: -VCHAN_EPIPE once it has closed. */
static int write_state(struct vchan *v, enum vchan_state *st)
{
    int rc = peer_state(v, st);

    if (rc == 0 && *st == VCHAN_STATE_CLOSED) {
        rc = vchan__fail(v, VCHAN_EPIPE, "peer closed the channel");
    }
    return rc;
}

int vchan_write(struct vchan *v, const void *buf, size_t len, size_t *nwritten)
{
    uint64_t deadline = 0;
    size_t done = 0;
    int rc;

    if ((rc = io_begin(v, buf, len, nwritten))) {
        return rc;
    }
    for (;;) {
        enum vchan_state st = VCHAN_STATE_CLOSED;
        uint32_t n = 0;

        if ((rc = write_state(v, &st))) {
            return rc;
        }
        if (done == len) {
            return 0;
        }
        /* Less space known than this call could use: look at the peer's index again. */
        if (v->wr.known < min_u32(v->wr.size, len - done) && (rc = space(v, &n))) {
            return rc;
        }
        n = v->wr.known;
        /*
         * Non-blocking: ask for READ whenever not all fits, so that a poll on
         * the fd hears of new space (as libxenvchan does). Blocking: only
         * when nothing fits and a spin did not bring space.
         */
        if (n < len - done && v->nonblocking) {
            request_notify(v, VCHAN__NOTIFY_READ);
            if ((rc = space(v, &n))) {
                return rc;
            }
        } else if (n == 0) {
            if (st == VCHAN_STATE_OPEN && spin(v, v->wr.shr_cons, v->wr.own - v->wr.size)) {
                continue;
            }
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
            if (v->notify_err) {
                return 0; /* these bytes are written; the next call reports the failure */
            }
            if (done == len || v->nonblocking) {
                return 0;
            }
            continue;
        }
        if (v->nonblocking) {
            return -VCHAN_EAGAIN;
        }
        if ((rc = block(v, &deadline))) {
            return rc;
        }
    }
}

int vchan_send(struct vchan *v, const void *buf, size_t len)
{
    uint64_t deadline = 0;

    if (!v || (!buf && len)) {
        return -VCHAN_EINVAL;
    }
    if (unusable(v)) {
        return unusable(v);
    }
    if (len > v->wr.size) {
        return vchan__fail(v, VCHAN_EMSGSIZE, "packet larger than the write ring");
    }
    for (;;) {
        enum vchan_state st = VCHAN_STATE_CLOSED;
        uint32_t n = 0;
        int rc;

        if ((rc = write_state(v, &st))) {
            return rc;
        }
        if (v->wr.known < len && (rc = space(v, &n))) {
            return rc;
        }
        n = v->wr.known;
        if (n < len) {
            if (st == VCHAN_STATE_OPEN && !v->nonblocking &&
                spin(v, v->wr.shr_cons, v->wr.own - v->wr.size + n)) {
                continue;
            }
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
            return 0;
        }
        if (v->nonblocking) {
            return -VCHAN_EAGAIN;
        }
        if ((rc = block(v, &deadline))) {
            return rc;
        }
    }
}

int vchan_recv(struct vchan *v, void *buf, size_t len)
{
    uint64_t deadline = 0;
    int rc;

    if (!v || (!buf && len)) {
        return -VCHAN_EINVAL;
    }
    if (unusable(v)) {
        return unusable(v);
    }
    if (len > v->rd.size) {
        return vchan__fail(v, VCHAN_EMSGSIZE, "packet larger than the read ring");
    }
    if (len == 0) {
        return 0;
    }
    rc = await_data(v, (uint32_t)len, (uint32_t)len, &deadline);
    if (rc == 1) {
        return vchan__fail(v, VCHAN_EPIPE, "peer closed before the whole packet arrived");
    }
    if (rc == 0) {
        copy_out(v, buf, (uint32_t)len);
    }
    return rc;
}

/*
 * data_ready and buffer_space: the caller will act on the count outside the
 * library, so ask the peer to tell us of changes (as libxenvchan does).
 */
static int count_asking(struct vchan *v, size_t *out, uint8_t bit,
                        int (*count)(struct vchan *, uint32_t *))
{
    uint32_t n = 0;
    int rc;

    if (out) {
        *out = 0;
    }
    if (!v || !out) {
        return -VCHAN_EINVAL;
    }
    if (unusable(v)) {
        return unusable(v);
    }
    request_notify(v, bit);
    if ((rc = count(v, &n))) {
        return rc;
    }
    *out = n;
    return 0;
}

int vchan_data_ready(struct vchan *v, size_t *out)
{
    return count_asking(v, out, VCHAN__NOTIFY_WRITE, ready);
}

int vchan_buffer_space(struct vchan *v, size_t *out)
{
    return count_asking(v, out, VCHAN__NOTIFY_READ, space);
}

/* Can `want` progress now? Refreshes the known counts; no notify request. */
static int poll_check(struct vchan *v, unsigned want, bool *yes)
{
    uint32_t n = 0;
    int rc;

    *yes = false;
    if ((want & VCHAN_WANT_READ) && (v->rd.known > 0 || ((rc = ready(v, &n)) == 0 && n > 0))) {
        *yes = true;
        return 0;
    }
    if (unusable(v)) {
        return unusable(v);
    }
    if (want & (VCHAN_WANT_WRITE | VCHAN_WANT_DRAIN)) {
        if ((rc = space(v, &n))) {
            return rc;
        }
        *yes = ((want & VCHAN_WANT_WRITE) && n > 0) || ((want & VCHAN_WANT_DRAIN) && n == v->wr.size);
    }
    return 0;
}

int vchan_poll(struct vchan *v, unsigned want)
{
    enum vchan_state st = VCHAN_STATE_CLOSED;
    bool yes = false, spun = false;
    int rc;

    if (!v || (want & ~(VCHAN_WANT_READ | VCHAN_WANT_WRITE | VCHAN_WANT_DRAIN | VCHAN_WANT_SPIN))) {
        return -VCHAN_EINVAL;
    }
    if (unusable(v)) {
        return unusable(v);
    }
    if (!want) { /* only consume what is pending */
        rc = wait_event(v, 0);
        return rc < 0 && rc != -VCHAN_EAGAIN ? rc : 0;
    }
    spin_adapt(v); /* the caller slept outside since our last spin ran out */
    for (;;) {
        if ((rc = peer_state(v, &st))) {
            return rc;
        }
        if (st == VCHAN_STATE_CLOSED) {
            return 1; /* a read gives what is left, then end-of-file; a write EPIPE */
        }
        if (st == VCHAN_STATE_OPEN) {
            if ((rc = poll_check(v, want, &yes))) {
                return rc;
            }
            if (yes) {
                return 1;
            }
        }
        /* Nothing else to do for the caller: watch the peer's indices for a moment. */
        if (spun || !(want & VCHAN_WANT_SPIN) || st != VCHAN_STATE_OPEN ||
            !spin2(v, (want & VCHAN_WANT_READ) ? v->rd.shr_prod : NULL, v->rd.own + v->rd.known,
                   (want & (VCHAN_WANT_WRITE | VCHAN_WANT_DRAIN)) ? v->wr.shr_cons : NULL,
                   v->wr.own - v->wr.size + v->wr.known)) {
            break;
        }
        spun = true;
    }
    /*
     * The caller is about to sleep on the fd: consume what is pending (the
     * platform may accept our client here), ask the peer to signal, then
     * look again, so that a change after this look is sure to wake it.
     */
    rc = wait_event(v, 0);
    if (rc < 0 && rc != -VCHAN_EAGAIN) {
        return rc;
    }
    if (want & VCHAN_WANT_READ) {
        request_notify(v, VCHAN__NOTIFY_WRITE);
    }
    if (want & (VCHAN_WANT_WRITE | VCHAN_WANT_DRAIN)) {
        request_notify(v, VCHAN__NOTIFY_READ);
    }
    if ((rc = peer_state(v, &st))) {
        return rc;
    }
    if (st != VCHAN_STATE_OPEN) {
        return st == VCHAN_STATE_CLOSED ? 1 : 0;
    }
    if ((rc = poll_check(v, want, &yes))) {
        return rc;
    }
    return yes ? 1 : 0;
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
    if (!v) {
        return -VCHAN_EINVAL;
    }
    if (unusable(v)) {
        return unusable(v);
    }
    if (!v->nonblocking) {
        uint64_t deadline = 0;
        return block(v, &deadline);
    }
    return wait_event(v, 0);
}

int vchan_wait_connected(struct vchan *v)
{
    uint64_t deadline = 0;

    if (!v) {
        return -VCHAN_EINVAL;
    }
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
        if ((rc = block(v, &deadline))) {
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

int vchan_set_timeout(struct vchan *v, int timeout_ms)
{
    /* As vchan_config.timeout_ms: 0 is none, a negative one a mistake. */
    if (!v || timeout_ms < 0) {
        return -VCHAN_EINVAL;
    }
    v->timeout_ms = timeout_ms;
    return 0;
}

int vchan_set_nonblocking(struct vchan *v, bool nonblocking)
{
    if (!v) {
        return -VCHAN_EINVAL;
    }
    v->nonblocking = nonblocking;
    return 0;
}

const char *vchan_platform_name(const struct vchan *v)
{
    return v ? v->plat->name : "";
}
