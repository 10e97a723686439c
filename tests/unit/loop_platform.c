/* SPDX-License-Identifier: ISC */
/* loop_platform: both ends of a vchan in one process (see loop_platform.h). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "loop_platform.h"

#define PAGE ((size_t)VCHAN__PAGE_SIZE)
#define FIRST_REF 8u

/* One share() call: npages between two guard pages. */
struct block {
    struct block *next;
    uint8_t *base;      /* the mmap, guards included */
    uint8_t *addr;      /* first usable page */
    size_t npages;
    uint32_t first_ref;
    int users;          /* the sharer and each mapping */
};

/* An event channel: one eventfd per end, [0] server, [1] client. */
struct evtchn {
    struct evtchn *next;
    uint32_t port;
    int efd[2];
    bool hangup[2];     /* the other end died: report on this end's next wait */
    bool bound[2];
    int users;
};

/* A published channel. */
struct entry {
    struct entry *next;
    char port[VCHAN_PORT_MAX + 1];
    uint32_t ring_ref, evtchn;
    const void *owner;
};

/* Per-channel state (the `p` of the platform interface). */
struct end {
    bool server;
    char port[VCHAN_PORT_MAX + 1];
    struct evtchn *ev;
    bool published;
    uint8_t *unmap_notify; /* the live byte cleared if we "die" */
    unsigned notifies;     /* atomic */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t published_cond = PTHREAD_COND_INITIALIZER;
static struct block *blocks;
static struct evtchn *evtchns;
static struct entry *registry;
static uint32_t next_ref = FIRST_REF;
static uint32_t next_evtchn = 1;
static size_t live_ends, live_allocs;
static unsigned fail_at[LOOP_OP_MAX];
static int fail_err[LOOP_OP_MAX];
static unsigned log_count;
static loop_map_hook *map_hook;
static void *map_hook_ctx;
static unsigned map_calls;
static char last_log[256];

/* Should this call of `op` fail? Returns the error or 0. */
static int injected(enum loop_op op)
{
    int err = 0;

    pthread_mutex_lock(&lock);
    if (fail_at[op] && --fail_at[op] == 0) {
        err = fail_err[op];
    }
    pthread_mutex_unlock(&lock);
    return err;
}

void loop_fail(enum loop_op op, unsigned nth, int err)
{
    pthread_mutex_lock(&lock);
    fail_at[op] = nth;
    fail_err[op] = err;
    pthread_mutex_unlock(&lock);
}

void loop_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(fail_at, 0, sizeof(fail_at));
    map_hook = NULL;
    map_hook_ctx = NULL;
    log_count = 0;
    last_log[0] = '\0';
    pthread_mutex_unlock(&lock);
}

void loop_set_map_hook(loop_map_hook *hook, void *ctx)
{
    pthread_mutex_lock(&lock);
    map_hook = hook;
    map_hook_ctx = ctx;
    map_calls = 0;
    pthread_mutex_unlock(&lock);
}

size_t loop_outstanding(void)
{
    size_t n = 0;

    pthread_mutex_lock(&lock);
    for (struct block *b = blocks; b; b = b->next) {
        n++;
    }
    for (struct evtchn *e = evtchns; e; e = e->next) {
        n++;
    }
    for (struct entry *r = registry; r; r = r->next) {
        n++;
    }
    n += live_ends + live_allocs;
    pthread_mutex_unlock(&lock);
    return n;
}

static int side(const struct end *e)
{
    return e->server ? 0 : 1;
}

static void kick(int efd)
{
    uint64_t one = 1;
    ssize_t w = write(efd, &one, sizeof(one));

    (void)w; /* EAGAIN only at a counter of 2^64-2: an event is pending anyway */
}

/* ------------------------------------------------------------ lifetime */

static int loop_open(void **p, struct vchan *v, const struct vchan_config *cfg, bool server)
{
    struct end *e;
    int rc;

    (void)v;
    if ((rc = injected(LOOP_OPEN))) {
        return rc;
    }
    if (!(e = calloc(1, sizeof(*e)))) {
        return -VCHAN_ENOMEM;
    }
    e->server = server;
    snprintf(e->port, sizeof(e->port), "%s", cfg->port);
    pthread_mutex_lock(&lock);
    live_ends++;
    pthread_mutex_unlock(&lock);
    *p = e;
    return 0;
}

/* Called with the lock held. */
static void evtchn_release(struct evtchn *ev)
{
    if (--ev->users > 0) {
        return;
    }
    for (struct evtchn **pp = &evtchns; *pp; pp = &(*pp)->next) {
        if (*pp == ev) {
            *pp = ev->next;
            break;
        }
    }
    close(ev->efd[0]);
    close(ev->efd[1]);
    free(ev);
}

static void loop_close(void *p)
{
    struct end *e = p;

    pthread_mutex_lock(&lock);
    if (e->published) {
        for (struct entry **pp = &registry; *pp; pp = &(*pp)->next) {
            if ((*pp)->owner == e) {
                struct entry *dead = *pp;
                *pp = dead->next;
                free(dead);
                break;
            }
        }
    }
    if (e->ev) {
        e->ev->bound[side(e)] = false;
        evtchn_release(e->ev);
    }
    live_ends--;
    pthread_mutex_unlock(&lock);
    free(e);
}

/* -------------------------------------------------------------- memory */

static int loop_evtchn_alloc_unbound(void *p, uint32_t *port)
{
    struct end *e = p;
    struct evtchn *ev;
    int rc;

    if ((rc = injected(LOOP_EVTCHN_ALLOC))) {
        return rc;
    }
    if (!(ev = calloc(1, sizeof(*ev)))) {
        return -VCHAN_ENOMEM;
    }
    ev->efd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ev->efd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ev->efd[0] < 0 || ev->efd[1] < 0) {
        if (ev->efd[0] >= 0) {
            close(ev->efd[0]);
        }
        if (ev->efd[1] >= 0) {
            close(ev->efd[1]);
        }
        free(ev);
        return -VCHAN_EIO;
    }
    pthread_mutex_lock(&lock);
    ev->port = next_evtchn++;
    ev->users = 1;
    ev->bound[0] = true;
    ev->next = evtchns;
    evtchns = ev;
    pthread_mutex_unlock(&lock);
    e->ev = ev;
    *port = ev->port;
    return 0;
}

static int loop_share(void *p, size_t npages, uint32_t *refs, int notify_offset, void **addr)
{
    struct end *e = p;
    struct block *b;
    int rc;

    if ((rc = injected(LOOP_SHARE))) {
        return rc;
    }
    if (npages == 0 || !(b = calloc(1, sizeof(*b)))) {
        return npages ? -VCHAN_ENOMEM : -VCHAN_EINVAL;
    }
    b->base = mmap(NULL, (npages + 2) * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->base == MAP_FAILED) {
        free(b);
        return -VCHAN_ENOMEM;
    }
    b->addr = b->base + PAGE;
    if (mprotect(b->addr, npages * PAGE, PROT_READ | PROT_WRITE)) {
        munmap(b->base, (npages + 2) * PAGE);
        free(b);
        return -VCHAN_ENOMEM;
    }
    b->npages = npages;
    b->users = 1;
    pthread_mutex_lock(&lock);
    b->first_ref = next_ref;
    next_ref += (uint32_t)npages;
    b->next = blocks;
    blocks = b;
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < npages; i++) {
        refs[i] = b->first_ref + (uint32_t)i;
    }
    if (notify_offset >= 0) {
        e->unmap_notify = b->addr + notify_offset;
    }
    *addr = b->addr;
    return 0;
}

/* Drop one user of the block holding `addr`; free it with the last. */
static void block_put(const void *addr, size_t npages)
{
    const uint8_t *a = addr;

    pthread_mutex_lock(&lock);
    for (struct block **pp = &blocks; *pp; pp = &(*pp)->next) {
        struct block *b = *pp;
        if (a >= b->addr && a + npages * PAGE <= b->addr + b->npages * PAGE) {
            if (--b->users == 0) {
                *pp = b->next;
                munmap(b->base, (b->npages + 2) * PAGE);
                free(b);
            }
            pthread_mutex_unlock(&lock);
            return;
        }
    }
    pthread_mutex_unlock(&lock);
    fprintf(stderr, "loop_platform: release of unknown memory %p (%zu pages)\n", addr, npages);
    abort();
}

static void loop_unshare(void *p, void *addr, size_t npages)
{
    (void)p;
    block_put(addr, npages);
}

static int loop_publish(void *p, uint32_t ring_ref, uint32_t port)
{
    struct end *e = p;
    struct entry *r;
    int rc;

    if ((rc = injected(LOOP_PUBLISH))) {
        return rc;
    }
    pthread_mutex_lock(&lock);
    for (r = registry; r; r = r->next) {
        if (strcmp(r->port, e->port) == 0) {
            pthread_mutex_unlock(&lock);
            return -VCHAN_EADDRINUSE;
        }
    }
    if (!(r = calloc(1, sizeof(*r)))) {
        pthread_mutex_unlock(&lock);
        return -VCHAN_ENOMEM;
    }
    memcpy(r->port, e->port, sizeof(r->port));
    r->ring_ref = ring_ref;
    r->evtchn = port;
    r->owner = e;
    r->next = registry;
    registry = r;
    e->published = true;
    pthread_cond_broadcast(&published_cond);
    pthread_mutex_unlock(&lock);
    return 0;
}

static int loop_lookup(void *p, int timeout_ms, uint32_t *ring_ref, uint32_t *port)
{
    struct end *e = p;
    struct timespec until;
    int rc;

    if ((rc = injected(LOOP_LOOKUP))) {
        return rc;
    }
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&lock);
    for (;;) {
        for (struct entry *r = registry; r; r = r->next) {
            if (strcmp(r->port, e->port) == 0) {
                *ring_ref = r->ring_ref;
                *port = r->evtchn;
                pthread_mutex_unlock(&lock);
                return 0;
            }
        }
        if (timeout_ms == 0) {
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&published_cond, &lock);
        } else if (pthread_cond_timedwait(&published_cond, &lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return -VCHAN_ETIMEDOUT;
}

static int loop_evtchn_bind(void *p, uint32_t remote_port)
{
    struct end *e = p;
    int rc;

    if ((rc = injected(LOOP_BIND))) {
        return rc;
    }
    pthread_mutex_lock(&lock);
    for (struct evtchn *ev = evtchns; ev; ev = ev->next) {
        if (ev->port == remote_port && !ev->bound[1]) {
            ev->bound[1] = true;
            ev->users++;
            e->ev = ev;
            pthread_mutex_unlock(&lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&lock);
    return -VCHAN_EIO;
}

static int loop_map(void *p, const uint32_t *refs, size_t npages, bool writable, int notify_offset,
                    void **addr)
{
    struct end *e = p;
    int rc;

    (void)writable;
    if ((rc = injected(LOOP_MAP))) {
        return rc;
    }
    if (npages == 0) {
        return -VCHAN_EINVAL;
    }
    for (size_t i = 1; i < npages; i++) {
        if (refs[i] != refs[0] + (uint32_t)i) {
            return -VCHAN_EPROTO;
        }
    }
    pthread_mutex_lock(&lock);
    for (struct block *b = blocks; b; b = b->next) {
        if (refs[0] >= b->first_ref && refs[0] - b->first_ref < b->npages &&
            refs[0] - b->first_ref + npages <= b->npages) {
            loop_map_hook *hook = map_hook;
            void *ctx = map_hook_ctx;
            unsigned nth = ++map_calls;

            b->users++;
            *addr = b->addr + (refs[0] - b->first_ref) * PAGE;
            if (notify_offset >= 0) {
                e->unmap_notify = (uint8_t *)*addr + notify_offset;
            }
            pthread_mutex_unlock(&lock);
            if (hook) {
                hook(ctx, nth, refs, npages);
            }
            return 0;
        }
    }
    pthread_mutex_unlock(&lock);
    return -VCHAN_EPROTO;
}

static void loop_unmap(void *p, void *addr, size_t npages)
{
    (void)p;
    block_put(addr, npages);
}

/* -------------------------------------------------------------- events */

static int loop_notify(void *p)
{
    struct end *e = p;
    int rc;

    __atomic_fetch_add(&e->notifies, 1, __ATOMIC_RELAXED);
    if ((rc = injected(LOOP_NOTIFY))) {
        return rc;
    }
    if (!e->ev) {
        return -VCHAN_EIO;
    }
    kick(e->ev->efd[!side(e)]);
    return 0;
}

static int loop_wait(void *p, int timeout_ms, bool *hangup)
{
    struct end *e = p;
    struct pollfd pfd;
    uint64_t count;
    int rc;

    if ((rc = injected(LOOP_WAIT))) {
        return rc;
    }
    if (!e->ev) {
        /* A server before its event channel: nothing can arrive. */
        return timeout_ms == 0 ? -VCHAN_EAGAIN : -VCHAN_ETIMEDOUT;
    }
    pfd.fd = e->ev->efd[side(e)];
    pfd.events = POLLIN;
    do {
        rc = poll(&pfd, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        return -VCHAN_EIO;
    }
    pthread_mutex_lock(&lock);
    if (e->ev->hangup[side(e)]) {
        *hangup = true;
    }
    pthread_mutex_unlock(&lock);
    if (rc == 0) {
        return timeout_ms == 0 ? -VCHAN_EAGAIN : -VCHAN_ETIMEDOUT;
    }
    if (read(pfd.fd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
        return -VCHAN_EIO;
    }
    return 0;
}

static int loop_fd(void *p)
{
    struct end *e = p;

    return e->ev ? e->ev->efd[side(e)] : -VCHAN_EIO;
}

unsigned loop_notify_count(const struct vchan *v)
{
    const struct end *e = v->p;

    return __atomic_load_n(&e->notifies, __ATOMIC_RELAXED);
}

bool loop_event_pending(const struct vchan *v)
{
    const struct end *e = v->p;
    struct pollfd pfd = { .fd = e->ev ? e->ev->efd[side(e)] : -1, .events = POLLIN };

    return pfd.fd >= 0 && poll(&pfd, 1, 0) == 1;
}

unsigned loop_events_take(const struct vchan *v)
{
    const struct end *e = v->p;
    uint64_t count = 0;

    if (!e->ev || read(e->ev->efd[side(e)], &count, sizeof(count)) != (ssize_t)sizeof(count)) {
        return 0;
    }
    return (unsigned)count;
}

void loop_crash(struct vchan *v)
{
    struct end *e = v->p;

    if (e->unmap_notify) {
        __atomic_store_n(e->unmap_notify, 0, __ATOMIC_RELEASE);
    }
    if (e->ev) {
        pthread_mutex_lock(&lock);
        e->ev->hangup[!side(e)] = true;
        pthread_mutex_unlock(&lock);
        kick(e->ev->efd[!side(e)]);
    }
}

/* --------------------------------------------------- time, memory, log */

static uint64_t loop_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Lets the ring spin before it sleeps, as on the hosted platforms (TSan sees the spin too). */
static uint64_t loop_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *loop_alloc(size_t size)
{
    void *ptr;

    if (injected(LOOP_ALLOC)) {
        return NULL;
    }
    if ((ptr = calloc(1, size))) {
        pthread_mutex_lock(&lock);
        live_allocs++;
        pthread_mutex_unlock(&lock);
    }
    return ptr;
}

static void loop_free(void *ptr)
{
    if (ptr) {
        pthread_mutex_lock(&lock);
        live_allocs--;
        pthread_mutex_unlock(&lock);
        free(ptr);
    }
}

static void loop_log(struct vchan *v, enum vchan_log_level level, const char *msg)
{
    (void)v;
    (void)level;
    pthread_mutex_lock(&lock);
    log_count++;
    snprintf(last_log, sizeof(last_log), "%s", msg);
    pthread_mutex_unlock(&lock);
}

unsigned loop_log_count(void)
{
    unsigned n;

    pthread_mutex_lock(&lock);
    n = log_count;
    pthread_mutex_unlock(&lock);
    return n;
}

const char *loop_last_log(void)
{
    return last_log;
}

const struct vchan__platform loop_platform = {
    .name = "loop",
    .open = loop_open,
    .close = loop_close,
    .evtchn_alloc_unbound = loop_evtchn_alloc_unbound,
    .share = loop_share,
    .unshare = loop_unshare,
    .publish = loop_publish,
    .lookup = loop_lookup,
    .evtchn_bind = loop_evtchn_bind,
    .map = loop_map,
    .unmap = loop_unmap,
    .notify = loop_notify,
    .wait = loop_wait,
    .fd = loop_fd,
    .now_ms = loop_now_ms,
    .now_ns = loop_now_ns,
    .alloc = loop_alloc,
    .free = loop_free,
    .log = loop_log,
};
