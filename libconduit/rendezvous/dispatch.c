/* SPDX-License-Identifier: ISC */
/*
 * The accept rendezvous of either platform (docs/accept.md), behind one set
 * of calls: the Xen one (xen.c, or none.c without Xen) or the local one
 * (local.c), by the platform libvchan selects.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "libconduit/internal/internal.h"

int conduit__self_domid(struct conduit__err *e, enum conduit__vplat plat, int *domid)
{
    return plat == CONDUIT__VPLAT_XEN ? conduit__xen_self_domid(e, domid)
                                      : conduit__local_self_domid(e, domid);
}

int conduit__rdv_client_open(struct conduit__err *e, enum conduit__vplat plat, int server,
                             const char *port, uint64_t deadline, struct conduit__rdv_client **out)
{
    return plat == CONDUIT__VPLAT_XEN
               ? conduit__xen_rdv_client_open(e, server, port, deadline, out)
               : conduit__local_rdv_client_open(e, server, port, deadline, out);
}

int conduit__rdv_client_probe(struct conduit__rdv_client *rc, const char *nonce,
                              enum conduit__probe *out)
{
    return rc->ops->probe(rc, nonce, out);
}

int conduit__rdv_client_answer(struct conduit__rdv_client *rc)
{
    return rc->ops->answer(rc);
}

void conduit__rdv_client_where(struct conduit__rdv_client *rc, char *buf, size_t len)
{
    rc->ops->where(rc, buf, len);
}

void conduit__rdv_client_close(struct conduit__rdv_client *rc)
{
    if (rc) {
        rc->ops->close(rc);
    }
}

int conduit__rdv_server_open(struct conduit__err *e, enum conduit__vplat plat, const char *port,
                             struct conduit__rdv_server **out)
{
    return plat == CONDUIT__VPLAT_XEN ? conduit__xen_rdv_server_open(e, port, out)
                                      : conduit__local_rdv_server_open(e, port, out);
}

int conduit__rdv_server_fd(struct conduit__rdv_server *rs)
{
    return rs->ops->fd(rs);
}

int conduit__rdv_server_next(struct conduit__rdv_server *rs, int *client,
                             char nonce[CONDUIT__NONCE_LEN + 1])
{
    return rs->ops->next(rs, client, nonce);
}

void conduit__rdv_server_answer(struct conduit__rdv_server *rs, int status, const char *why)
{
    rs->ops->answer(rs, status, why);
}

void conduit__rdv_server_close(struct conduit__rdv_server *rs)
{
    if (rs) {
        rs->ops->close(rs);
    }
}

