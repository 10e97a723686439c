/* SPDX-License-Identifier: ISC */
/*
 * vchan_hooks.h: what a unikernel provides so that libvchan-unikernel.a can
 * run in it. Nothing else is needed but memcpy, memset and memmove.
 *
 * Each hook is a Xen primitive every PV or PVH unikernel base already has;
 * the names are vchan_hook_ followed by the Mini-OS name of that primitive
 * (Unikraft's are mostly the same). The prefix is deliberate: unprefixed,
 * our gnttab_grant_access would collide with the very function a Mini-OS
 * port wraps, whose signature differs. docs/unikernel.md maps every hook to
 * Mini-OS and Unikraft; unikernel/guest/hooks.c implements them on a
 * from-scratch x86-64 PV guest.
 *
 * Rules for every hook:
 *  - Errors are negative errno values as Xen's public xen/errno.h numbers
 *    them (the Linux numbers, which Mini-OS and Unikraft use too). The
 *    driver tells apart the ones named VCHAN_HOOK_E* below; any other
 *    becomes VCHAN_EIO.
 *  - Hooks are called from one thread at a time per channel, never from an
 *    interrupt or event handler. A hook that blocks (evtchn_wait, msleep,
 *    the xenbus ones) may block only the calling thread.
 *  - Domain ids are the peer's as given in vchan_config.domain; pages are
 *    4 KiB.
 */
#ifndef VCHAN_HOOKS_H
#define VCHAN_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Xen's error numbers (xen/errno.h) that change what the driver does. */
#define VCHAN_HOOK_ENOENT 2     /* xenstore: no such node */
#define VCHAN_HOOK_EAGAIN 11    /* xenstore: transaction conflict, retry it */
#define VCHAN_HOOK_ENOMEM 12
#define VCHAN_HOOK_EACCES 13    /* xenstore or grant: not allowed */
#define VCHAN_HOOK_EBUSY 16     /* end_access: the peer still maps the page */
#define VCHAN_HOOK_EINVAL 22
#define VCHAN_HOOK_ENOSPC 28    /* out of grant references or ports */
#define VCHAN_HOOK_ETIMEDOUT 110

typedef uint16_t vchan_hook_domid_t;         /* domid_t */
typedef uint32_t vchan_hook_grant_ref_t;     /* grant_ref_t */
typedef uint32_t vchan_hook_grant_handle_t;  /* grant_handle_t */
typedef uint32_t vchan_hook_evtchn_port_t;   /* evtchn_port_t */
typedef uint32_t vchan_hook_xbt_t;           /* xenbus_transaction_t */
#define VCHAN_HOOK_XBT_NIL 0u                /* XBT_NIL: no transaction */

/* ------------------------------------------------------------- memory */

/*
 * `npages` zeroed, page-aligned pages, contiguous in the caller's address
 * space and mapped read-write; NULL when there is no memory. Also used for
 * the driver's small allocations (rounded up to a page), so the driver
 * needs no malloc. Mini-OS: alloc_pages(order); Unikraft: uk_palloc.
 */
void *vchan_hook_alloc_pages(size_t npages);
/* Give back what alloc_pages returned; same npages. */
void vchan_hook_free_pages(void *addr, size_t npages);

/* --------------------------------------------------------- grant tables */

/*
 * Grant domain `domid` access to the page at `page` (one of ours, from
 * alloc_pages; the port turns it into a frame number), read-only or
 * read-write. Sets *ref. -ENOSPC: no free grant reference.
 */
int vchan_hook_gnttab_grant_access(vchan_hook_domid_t domid, void *page, bool readonly,
                                   vchan_hook_grant_ref_t *ref);
/*
 * Revoke a grant and free its reference. -EBUSY while the peer still has
 * the page mapped: the grant stays and the page must not be reused; the
 * driver retries later (Xen cannot take a mapping away from its holder).
 */
int vchan_hook_gnttab_end_access(vchan_hook_grant_ref_t ref);
/*
 * Map `n` pages granted by `domid` (refs[i]) at one contiguous, page-
 * aligned address, read-write or read-only; sets *addr and handles[i],
 * which gntmap_munmap is given back. All or nothing: on failure nothing
 * stays mapped. Mini-OS: gntmap_map_grant_refs.
 */
int vchan_hook_gntmap_map_grant_refs(vchan_hook_domid_t domid, const vchan_hook_grant_ref_t *refs,
                                     size_t n, bool writable, void **addr,
                                     vchan_hook_grant_handle_t *handles);
/* Unmap what gntmap_map_grant_refs mapped (the same addr, n, handles). */
int vchan_hook_gntmap_munmap(void *addr, size_t n, const vchan_hook_grant_handle_t *handles);

/* ------------------------------------------------------- event channels */

/* Server: a new port that domain `remote` may bind to. */
int vchan_hook_evtchn_alloc_unbound(vchan_hook_domid_t remote, vchan_hook_evtchn_port_t *port);
/* Client: bind to port `remote_port` of domain `remote`; sets *local. */
int vchan_hook_evtchn_bind_interdomain(vchan_hook_domid_t remote,
                                       vchan_hook_evtchn_port_t remote_port,
                                       vchan_hook_evtchn_port_t *local);
/* Signal the other end of a bound port. */
int vchan_hook_notify_remote_via_evtchn(vchan_hook_evtchn_port_t port);
/* Close a port of ours (EVTCHNOP_close). Mini-OS: unbind_evtchn. */
void vchan_hook_unbind_evtchn(vchan_hook_evtchn_port_t port);
/*
 * Wait until an event is pending on `port`, and consume it (clear the
 * pending state), so that each event wakes one wait. Returns at once, 0,
 * when one was already pending; -ETIMEDOUT when none came within
 * timeout_ms (0: only look; negative: no limit). Spurious returns are
 * allowed. On a base with event handlers, the handler sets a per-port
 * flag and wakes the waiting thread; this hook tests and clears the flag.
 */
int vchan_hook_evtchn_wait(vchan_hook_evtchn_port_t port, int timeout_ms);

/* ------------------------------------------------------------ xenstore */

/*
 * Read a node into buf (NUL-terminated). A relative path is under
 * /local/domain/<own domid>, as xenstored resolves it. -ENOENT: no such
 * node; -ENOSPC: the value does not fit.
 */
int vchan_hook_xenbus_read(vchan_hook_xbt_t xbt, const char *path, char *buf, size_t len);
int vchan_hook_xenbus_write(vchan_hook_xbt_t xbt, const char *path, const char *value);
/* Remove a node and everything under it; a missing node is not an error. */
int vchan_hook_xenbus_rm(vchan_hook_xbt_t xbt, const char *path);
/*
 * Make `owner` the node's owner (full access) and give `reader` read
 * access, nobody else any (the xenstore list "n<owner>", "r<reader>").
 */
int vchan_hook_xenbus_set_perms(vchan_hook_xbt_t xbt, const char *path, vchan_hook_domid_t owner,
                                vchan_hook_domid_t reader);
int vchan_hook_xenbus_transaction_start(vchan_hook_xbt_t *xbt);
/* Commit (abort = false) or abandon. -EAGAIN: conflict, start again. */
int vchan_hook_xenbus_transaction_end(vchan_hook_xbt_t xbt, bool abort);

/* ------------------------------------------------- time, sleep, console */

/* Nanoseconds since some fixed point, never going back. Mini-OS: NOW(). */
uint64_t vchan_hook_monotonic_clock(void);
/* Sleep about `ms` milliseconds (a client polling for its server). */
void vchan_hook_msleep(unsigned int ms);
/*
 * Print one message of the driver (no newline in msg), when the caller
 * gave no logger in vchan_config. level is an enum vchan_log_level.
 */
void vchan_hook_console_log(int level, const char *msg);

#ifdef __cplusplus
}
#endif
#endif
