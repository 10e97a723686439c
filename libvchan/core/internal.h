/* SPDX-License-Identifier: ISC */
/*
 * Internal interface of libvchan: the handle, and the platform under the
 * ring. The ring core (ring.c, setup.c, errors.c) is freestanding: it
 * reaches memory, events, time and logging only through a platform.
 */
#ifndef VCHAN_INTERNAL_H
#define VCHAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vchan.h"
#include "wire.h"

#if defined(__GNUC__)
#define VCHAN__MUST_CHECK __attribute__((warn_unused_result))
#define VCHAN__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VCHAN__MUST_CHECK
#define VCHAN__PRINTF(a, b)
#endif

/*
 * A platform: Xen primitives (grant sharing and mapping, one event channel,
 * a rendezvous directory), implemented for real Xen, for two processes of
 * one host (local), or for a unikernel's hypervisor hooks.
 *
 * Every function returns 0 or a negative VCHAN_E* code. `p` is the
 * per-channel state made by open. Timeouts are in milliseconds, -1 means
 * without limit, 0 means do not wait.
 */
struct vchan__platform {
    const char *name;

    /* Per-channel state: `server` says which role; cfg is borrowed. */
    int (*open)(void **p, struct vchan *v, const struct vchan_config *cfg, bool server);
    /* Release everything open and later calls made (unpublish, unbind). */
    void (*close)(void *p);

    /*
     * Server: allocate an unbound event channel for the peer domain, share
     * `npages` zeroed pages with it (one contiguous mapping at *addr, grant
     * references in refs[]). With notify_offset >= 0 the platform clears the
     * byte at that offset of the first page and signals the event channel
     * when this process goes away without closing (unmap-notify).
     */
    int (*evtchn_alloc_unbound)(void *p, uint32_t *port);
    int (*share)(void *p, size_t npages, uint32_t *refs, int notify_offset, void **addr);
    void (*unshare)(void *p, void *addr, size_t npages);
    /* Server: publish ring-ref and event-channel for the client to find. */
    int (*publish)(void *p, uint32_t ring_ref, uint32_t port);

    /*
     * Client: find the server's ring-ref and event-channel, waiting for it
     * up to timeout_ms; bind the event channel; map the granted pages.
     */
    int (*lookup)(void *p, int timeout_ms, uint32_t *ring_ref, uint32_t *port);
    int (*evtchn_bind)(void *p, uint32_t remote_port);
    int (*map)(void *p, const uint32_t *refs, size_t npages, bool writable, int notify_offset,
               void **addr);
    void (*unmap)(void *p, void *addr, size_t npages);

    /* Signal the peer. */
    int (*notify)(void *p);
    /*
     * Wait for and consume pending events, up to timeout_ms. Returns 0 when
     * something happened (an event, or a rendezvous step the platform did),
     * -VCHAN_ETIMEDOUT (-VCHAN_EAGAIN when timeout_ms is 0) when nothing did.
     * Sets *hangup when the platform knows the peer is gone for good.
     */
    int (*wait)(void *p, int timeout_ms, bool *hangup);
    /* A descriptor that polls readable when wait would not block. */
    int (*fd)(void *p);

    /* Monotonic milliseconds, for timeouts. */
    uint64_t (*now_ms)(void);
    /*
     * Optional: monotonic nanoseconds, cheap enough to read every few
     * iterations of a spin (a vDSO clock). With it, a blocking call spins
     * briefly before it asks the peer for an event and sleeps (ring.c);
     * without it (NULL), it sleeps at once.
     */
    uint64_t (*now_ns)(void);
    /* Memory for handles and private copies. */
    void *(*alloc)(size_t size);
    void (*free)(void *ptr);
    /* Log a finished message (the caller's logger), may be NULL. */
    void (*log)(struct vchan *v, enum vchan_log_level level, const char *msg);
};

/* One direction of the channel; everything here is private to us. */
struct vchan__ring {
    uint8_t *buf;       /* ring data (in the control page or granted pages) */
    uint32_t size;      /* 1 << order, copied at connect time */
    uint32_t *shr_cons; /* shared consumer index */
    uint32_t *shr_prod; /* shared producer index */
    uint32_t own;       /* our index: cons of the read ring, prod of the write ring */
    /*
     * Bytes the peer's index last showed us ready (read ring) or free
     * (write ring), less what we have used since: checked when read, so
     * never more than size. Only when it runs short is the peer's index
     * read again (ring.c).
     */
    uint32_t known;
    size_t npages;      /* granted pages, 0 for an in-page ring */
};

struct vchan {
    const struct vchan__platform *plat;
    void *p;                   /* platform state */
    struct vchan__wire *ctrl;  /* the shared control page */
    struct vchan__ring rd, wr;
    uint8_t *own_live, *peer_live;
    uint8_t *own_notify;       /* bits we clear and signal on our action */
    uint8_t *peer_notify;      /* bits we set to ask the peer to signal */
    bool server;
    bool nonblocking;
    bool broken;               /* the peer misbehaved: -VCHAN_EPROTO from now on */
    bool peer_gone;            /* the platform saw the peer vanish */
    int notify_err;            /* a notify failed after data moved: every later call returns it */
    int timeout_ms;            /* 0: none */
    /*
     * Bounded spin before sleeping (ring.c): at most spin_max_ns (0: never
     * spin), currently spin_ns, which adapts to how long the peer takes;
     * gave_up_at: when the last spin that ran out started (0: none since).
     */
    uint32_t spin_max_ns, spin_ns;
    uint32_t clock_stride; /* spin rounds between two clock reads (calibrated at attach) */
    uint32_t spin_misses;  /* spins in a row that ran out */
    uint64_t gave_up_at;
    vchan_log_fn *log;
    void *log_ctx;
    const char *errmsg;        /* last error, points at errbuf or a constant */
    char errbuf[256];
    const char *open_xs_path;  /* vchan__open_extra's, while the platform's open runs; else NULL */
};

/*
 * setup.c: copy the caller's config into *dst (this library's layout, the
 * fields it does not have zeroed) after checking its struct_size, as
 * vchan.h states the rule. 0, or -VCHAN_EINVAL with the message in the
 * caller's errbuf when it can be trusted. The opens below call it
 * themselves; the hosted and unikernel glue call it first to read the
 * platform field.
 */
VCHAN__MUST_CHECK int vchan__config_load(struct vchan_config *dst, const struct vchan_config *src);

/*
 * What an open may carry beyond struct vchan_config, for callers inside the
 * project (the libxenvchan drop-in); NULL: nothing. Read only while the
 * open runs.
 */
struct vchan__open_extra {
    /* Xen: the xenstore directory to publish in or look at, as libxenvchan
     * takes it, instead of /local/domain/<server>/data/vchan/<client>/<port>. */
    const char *xs_path;
};

/* setup.c: open a channel on a platform (the hosted and unikernel glue call these). */
VCHAN__MUST_CHECK int vchan__server_open(struct vchan **out, const struct vchan__platform *plat,
                                         const struct vchan_config *cfg,
                                         const struct vchan__open_extra *extra);
VCHAN__MUST_CHECK int vchan__client_open(struct vchan **out, const struct vchan__platform *plat,
                                         const struct vchan_config *cfg,
                                         const struct vchan__open_extra *extra);
/* The orders libxenvchan's server picks for minimum ring sizes; EINVAL above 1 MiB. */
VCHAN__MUST_CHECK int vchan__select_orders(size_t read_min, size_t write_min, unsigned *read_order,
                                           unsigned *write_order);
/*
 * Check a control page's orders as a client meets them (peer-controlled):
 * each 10..20, not both in-page at the same offset, and the grant list
 * ending before any in-page ring. Gives the page counts of each ring.
 */
VCHAN__MUST_CHECK int vchan__check_orders(unsigned left_order, unsigned right_order,
                                          size_t *left_pages, size_t *right_pages);
/* Validate a port name: 1..VCHAN_PORT_MAX of [A-Za-z0-9_-]. */
bool vchan__port_valid(const char *port);

/*
 * ring.c: attach a handle to an initialised control page. Reads and
 * writes the indices through the private rings set up by setup.c.
 */
void vchan__ring_attach(struct vchan *v, bool server);

/* Record the last error with a constant message; returns -err. */
int vchan__fail(struct vchan *v, int err, const char *msg);
/* Mark the handle broken (peer misbehaved); returns -VCHAN_EPROTO. */
int vchan__broken(struct vchan *v, const char *msg);

#endif
