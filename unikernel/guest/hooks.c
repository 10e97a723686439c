/* SPDX-License-Identifier: ISC */
/*
 * The vchan driver's hooks (unikernel/vchan_hooks.h) on the test guest:
 * each a thin call into the guest's own primitives. This file is what a
 * port to another unikernel base rewrites (docs/unikernel.md).
 */
#include "guest.h"
#include "vchan_hooks.h"
#include "vchan.h"
#include "xen_public.h"

/* The hooks speak Xen's errno numbers; so do our primitives. */
_Static_assert(VCHAN_HOOK_ENOENT == XEN_ENOENT, "ENOENT");
_Static_assert(VCHAN_HOOK_EAGAIN == XEN_EAGAIN, "EAGAIN");
_Static_assert(VCHAN_HOOK_ENOMEM == XEN_ENOMEM, "ENOMEM");
_Static_assert(VCHAN_HOOK_EACCES == XEN_EACCES, "EACCES");
_Static_assert(VCHAN_HOOK_EBUSY == XEN_EBUSY, "EBUSY");
_Static_assert(VCHAN_HOOK_EINVAL == XEN_EINVAL, "EINVAL");
_Static_assert(VCHAN_HOOK_ENOSPC == XEN_ENOSPC, "ENOSPC");
_Static_assert(VCHAN_HOOK_ETIMEDOUT == XEN_ETIMEDOUT, "ETIMEDOUT");

void *vchan_hook_alloc_pages(size_t npages)
{
    return pages_alloc(npages);
}

void vchan_hook_free_pages(void *addr, size_t npages)
{
    pages_free(addr, npages);
}

int vchan_hook_gnttab_grant_access(vchan_hook_domid_t domid, void *page, bool readonly,
                                   vchan_hook_grant_ref_t *ref)
{
    return gnttab_grant(domid, guest_virt_to_mfn(page), readonly, ref);
}

int vchan_hook_gnttab_end_access(vchan_hook_grant_ref_t ref)
{
    return gnttab_end(ref);
}

int vchan_hook_gntmap_map_grant_refs(vchan_hook_domid_t domid, const vchan_hook_grant_ref_t *refs,
                                     size_t n, bool writable, void **addr,
                                     vchan_hook_grant_handle_t *handles)
{
    /* The grants are mapped over pages of ours, which Xen needs mapped already. */
    void *window = pages_alloc(n);
    int rc;

    if (!window) {
        return -XEN_ENOMEM;
    }
    rc = gnttab_map(domid, refs, n, writable, window, handles);
    if (rc) {
        pages_free(window, n);
        return rc;
    }
    *addr = window;
    return 0;
}

int vchan_hook_gntmap_munmap(void *addr, size_t n, const vchan_hook_grant_handle_t *handles)
{
    int rc = gnttab_unmap(addr, n, handles);

    /* Xen leaves the PTEs empty: our own frames go back before the pages are reused. */
    if (rc == 0 && (rc = pages_remap(addr, n)) == 0) {
        pages_free(addr, n);
    }
    return rc; /* on failure the window is leaked, never reused */
}

int vchan_hook_evtchn_alloc_unbound(vchan_hook_domid_t remote, vchan_hook_evtchn_port_t *port)
{
    return evtchn_alloc_unbound_port(remote, port);
}

int vchan_hook_evtchn_bind_interdomain(vchan_hook_domid_t remote,
                                       vchan_hook_evtchn_port_t remote_port,
                                       vchan_hook_evtchn_port_t *local)
{
    return evtchn_bind_port(remote, remote_port, local);
}

int vchan_hook_notify_remote_via_evtchn(vchan_hook_evtchn_port_t port)
{
    return evtchn_send(port);
}

void vchan_hook_unbind_evtchn(vchan_hook_evtchn_port_t port)
{
    evtchn_close(port);
}

int vchan_hook_evtchn_wait(vchan_hook_evtchn_port_t port, int timeout_ms)
{
    if (timeout_ms == 0) {
        return evtchn_consume(port) ? 0 : -XEN_ETIMEDOUT;
    }
    return evtchn_wait_until(port, timeout_ms < 0 ? 0
                                                  : guest_time_ns() +
                                                        (uint64_t)timeout_ms * 1000000u);
}

int vchan_hook_xenbus_read(vchan_hook_xbt_t xbt, const char *path, char *buf, size_t len)
{
    return xs_read(xbt, path, buf, len);
}

int vchan_hook_xenbus_write(vchan_hook_xbt_t xbt, const char *path, const char *value)
{
    return xs_write(xbt, path, value);
}

int vchan_hook_xenbus_rm(vchan_hook_xbt_t xbt, const char *path)
{
    int rc = xs_rm(xbt, path);

    return rc == -XEN_ENOENT ? 0 : rc;
}

int vchan_hook_xenbus_set_perms(vchan_hook_xbt_t xbt, const char *path, vchan_hook_domid_t owner,
                                vchan_hook_domid_t reader)
{
    char own[8], read[8];
    const char *perms[2] = {own, read};

    /* The first entry names the owner and what everybody else gets: nothing. */
    guest_snprintf(own, sizeof(own), "n%u", (unsigned int)owner);
    guest_snprintf(read, sizeof(read), "r%u", (unsigned int)reader);
    return xs_set_perms(xbt, path, perms, 2);
}

int vchan_hook_xenbus_transaction_start(vchan_hook_xbt_t *xbt)
{
    return xs_transaction_start(xbt);
}

int vchan_hook_xenbus_transaction_end(vchan_hook_xbt_t xbt, bool abort)
{
    return xs_transaction_end(xbt, abort);
}

uint64_t vchan_hook_monotonic_clock(void)
{
    return guest_time_ns();
}

void vchan_hook_msleep(unsigned int ms)
{
    guest_sleep_until(guest_time_ns() + (uint64_t)ms * 1000000u);
}

void vchan_hook_console_log(int level, const char *msg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};

    guest_printf("vchan: %s: %s\n", level >= 0 && level < 4 ? names[level] : "log", msg);
}
