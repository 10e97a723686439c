/* SPDX-License-Identifier: ISC */
/*
 * Built instead of xen.c when Xen support is not (Makefile.am picks one):
 * every Xen-only request says so plainly.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "libconduit/internal/internal.h"

const bool conduit__xen_built = false;

static int no_xen(struct conduit__err *e)
{
    return conduit__errorf(e, CONDUIT_ENOTSUP,
                           "this build has no Xen support (libxen-dev was "
                           "not found at configure time)");
}

int conduit__xen_domid_by_name(struct conduit__err *e, const char *name, int *domid)
{
    (void)domid;
    return conduit__errorf(e, CONDUIT_ERESOLVE,
                           "cannot resolve domain name '%s': this build has no Xen support", name);
}

int conduit__xen_self_domid(struct conduit__err *e, int *domid)
{
    *domid = 0;
    return no_xen(e);
}

int conduit__xen_rdv_client_open(struct conduit__err *e, int server, const char *port,
                                 uint64_t deadline, struct conduit__rdv_client **out)
{
    (void)server;
    (void)port;
    (void)deadline;
    *out = NULL;
    return no_xen(e);
}

int conduit__xen_rdv_server_open(struct conduit__err *e, const char *port,
                                 struct conduit__rdv_server **out)
{
    (void)port;
    *out = NULL;
    return no_xen(e);
}
