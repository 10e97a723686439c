/* SPDX-License-Identifier: ISC */
/*
 * fake_xen.h: an in-process stand-in for libxengnttab (gntalloc and gntdev),
 * libxenevtchn and libxenstore, so libvchan/platform/xen.c and
 * libconduit/rendezvous/xen.c can be unit tested without Xen
 * (tests/unit/test_xen_platform, test_rendezvous_xen). fake_xen.c defines the
 * library functions xen.c calls; a test program links it instead of the
 * real libraries. One fake "hypervisor" per process, shared by all threads:
 *
 *  - grants: each shared page is a page of a memfd; mapping a grant maps
 *    that page again (MAP_SHARED), so server and client see the same bytes
 *    at different addresses, as two domains would. Unmap-notify is honoured
 *    on unshare/unmap: the byte is cleared and the event channel signalled.
 *  - event channels: a table of ports; each handle has a pipe that carries
 *    the numbers of its pending ports, with Xen's mask-on-delivery.
 *  - xenstore: an in-memory list of nodes with xenstored's permissions
 *    (owner, then per-domain and default rights; creating a node needs
 *    write access to its parent, it inherits the parent's rights and is
 *    owned by its creator; dom0 may do anything), directories,
 *    buffered transactions, watches (fired on registration, on writes and
 *    removals at or under the path) and @releaseDomain.
 *
 * Every handle takes the domain id its thread last set with
 * fake_xen_set_domid() when it is opened, so two handles (or two threads)
 * of one process can be two domains.
 */
#ifndef VCHAN_TESTS_FAKE_XEN_H
#define VCHAN_TESTS_FAKE_XEN_H

#include <stdbool.h>
#include <stddef.h>

/* The domain that handles this thread opens from now on belong to (default 0). */
void fake_xen_set_domid(int domid);
/* Domains xenstored knows (xs_is_domain_introduced); domain 0 always. */
void fake_xen_add_domain(int domid);
/* Forget a domain and fire every @releaseDomain watch. */
void fake_xen_release_domain(int domid);
/* false: xs_is_domain_introduced fails with EACCES, as for a domU. */
void fake_xen_set_privileged(bool privileged);
/* The next n transaction commits fail with EAGAIN (a racing writer). */
void fake_xen_fail_commits(int n);
/* The next n transaction starts fail with err (xenstored's quota: ENOSPC). */
void fake_xen_fail_starts(int n, int err);
/* How many commits were attempted so far. */
int fake_xen_commits(void);

/* Direct access to the store, as a hostile or absent peer would have it. */
void fake_xen_store_write(const char *path, const char *value);
/* The value at path, malloc'd (free it), or NULL when there is no node. */
char *fake_xen_store_read(const char *path);
/* Does any node exist at or under path? */
bool fake_xen_store_exists(const char *path);
/* The read permission of `domid` on path (owner, listed, or dom0). */
bool fake_xen_store_readable(const char *path, int domid);

/* Live objects, to check that close released everything. */
size_t fake_xen_grants_live(void);
size_t fake_xen_ports_live(void);
size_t fake_xen_watches_live(void);

/* Drop every node, grant, port and domain (between tests). */
void fake_xen_reset(void);

#endif
