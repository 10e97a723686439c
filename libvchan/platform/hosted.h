/* SPDX-License-Identifier: ISC */
/* Helpers shared by the hosted (Linux) platforms; not for the ring core. */
#ifndef VCHAN_HOSTED_H
#define VCHAN_HOSTED_H

#include "libvchan/core/internal.h"

extern const struct vchan__platform vchan__platform_local;
#ifdef HAVE_XEN
extern const struct vchan__platform vchan__platform_xen;
#endif

/*
 * Record an error on the handle with a formatted message (and log it once
 * through the caller's logger). Returns -err, so: return vchan__errorf(...).
 * Platforms add strerror(errno) themselves where an OS call failed.
 */
int vchan__errorf(struct vchan *v, int err, const char *fmt, ...) VCHAN__PRINTF(3, 4);
/* Log without recording an error. */
void vchan__logf(struct vchan *v, enum vchan_log_level level, const char *fmt, ...)
    VCHAN__PRINTF(3, 4);

/* Hosted implementations of the platform's now_ms, alloc, free and log. */
uint64_t vchan__hosted_now_ms(void);
uint64_t vchan__hosted_now_ns(void);
void *vchan__hosted_alloc(size_t size);
void vchan__hosted_free(void *ptr);
void vchan__hosted_log(struct vchan *v, enum vchan_log_level level, const char *msg);
/* vchan_server_open / vchan_client_open, with what vchan__open_extra adds (NULL: nothing). */
int vchan__hosted_open(struct vchan **out, const struct vchan_config *cfg, bool server,
                       const struct vchan__open_extra *extra);
/* The platform vchan_platform_select names for platform (NULL: detect). */
int vchan__hosted_pick(const char *platform, const struct vchan__platform **out, char *errbuf,
                       size_t errlen);

/*
 * Looking at channels from outside them (vchan_list_channels,
 * vchan_page_open in debug.c): one table a hosted platform. A failure
 * returns -VCHAN_E* with a message in msg (VCHAN__MSG_MAX bytes).
 */
#define VCHAN__MSG_MAX 256
struct vchan__platform_debug {
    int (*list)(int server, vchan_channel_fn *fn, void *ctx, char *msg);
    /* Map a control page read-only: *addr the page, *handle for page_close. */
    int (*page_open)(int server, int client, const char *port, const void **addr, void **handle,
                     char *msg);
    void (*page_close)(void *handle);
};
extern const struct vchan__platform_debug vchan__local_debug;
#ifdef HAVE_XEN
extern const struct vchan__platform_debug vchan__xen_debug;
#endif

/*
 * A number another process wrote (xenstore values, file names): decimal
 * digits only, 1..10 of them, at most max; no sign, blank, base prefix or
 * trailing junk (strtoul would take all of those).
 */
bool vchan__parse_dec(const char *s, size_t len, uint64_t max, uint64_t *out);

/* The local domain id (VCHAN_DOMID, default 0); -VCHAN_EINVAL when malformed. */
int vchan__local_domid(struct vchan *v, int *domid);
/*
 * This thread's own domain id for the local opens it makes while this is
 * 0..VCHAN_DOMID_MAX (instead of VCHAN_DOMID): the libxenvchan drop-in
 * (libvchan/compat) sets it around an open to the id its xenstore path names.
 */
extern _Thread_local int vchan__local_self_override;

/*
 * The Qubes API (libvchan/compat/qubes.c) asks what libxenvchan's users
 * ask libxenctrl. vchan__local_peer_gone: channel v is the local
 * platform's and the peer's process is gone (its socket hung up), seen
 * without consuming an event; false otherwise.
 */
bool vchan__local_peer_gone(struct vchan *v);

#ifdef HAVE_XEN
/*
 * The Xen platform's event channel handle, our port and our own domain id
 * of channel v (for libvchan/compat); -VCHAN_EINVAL if v is not Xen's.
 */
struct xenevtchn_handle;
int vchan__xen_event(const struct vchan *v, struct xenevtchn_handle **xce, uint32_t *port,
                     int *self);
/* Our own domain id, from xenstore; a negative VCHAN_E* when it cannot be read. */
int vchan__xen_self_domid(int *self);
/*
 * Channel v is Xen's and its peer domain is known to be gone: seen before,
 * or (a privileged caller) xenstored says so now. False otherwise.
 */
bool vchan__xen_peer_gone(struct vchan *v);
/*
 * Server: remove the published rendezvous now (and the client's directory
 * when it was the last entry), as Qubes' libvchan does at the first wait;
 * close then has nothing left to remove. No-op for other channels.
 */
void vchan__xen_unpublish(struct vchan *v);
#endif

#endif
