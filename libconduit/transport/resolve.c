/* SPDX-License-Identifier: ISC */
/*
 * Names to addresses: DNS (getaddrinfo) for tcp and tls hosts, IPv4 and
 * IPv6; vchan domain names to domain ids through xenstore on Xen (xen.c).
 * Also which vchan platform this process is on, as libvchan decides it
 * (vchan_platform_select), since domain names and the accept rendezvous
 * depend on it.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "libconduit/internal/internal.h"
#include "vchan.h"

int conduit__resolve_host(struct conduit__err *e, const char *host, uint16_t port, bool passive,
                          struct addrinfo **out)
{
    /*
     * No AI_ADDRCONFIG: it hides ::1 and even 127.0.0.1 on hosts whose only
     * interface is loopback, which is exactly where tests and containers run.
     */
    struct addrinfo hints = {
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
    };
    char serv[8];
    int rc;

    *out = NULL;
    snprintf(serv, sizeof(serv), "%u", (unsigned)port);
    rc = getaddrinfo(host, serv, &hints, out);
    if (rc == 0 && *out == NULL) {
        rc = EAI_NONAME;
    }
    if (rc != 0) {
        return conduit__errorf(e, CONDUIT_ERESOLVE, "cannot resolve host '%s': %s",
                               host ? host : "*",
                               rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    }
    return 0;
}

int conduit__vchan_platform(struct conduit__err *e, enum conduit__vplat *out)
{
    char msg[160];
    const char *name;
    int rc;

    *out = CONDUIT__VPLAT_LOCAL;
    /* libvchan decides (VCHAN_PLATFORM, else detection): we never disagree with it. */
    if ((rc = vchan_platform_select(NULL, &name, msg, sizeof(msg))) < 0) {
        return conduit__errorf(e, rc == -VCHAN_ENOSYS ? CONDUIT_ENOTSUP : CONDUIT_EINVAL, "%s",
                               msg);
    }
    if (strcmp(name, "xen") == 0) {
        if (!conduit__xen_built) {
            return conduit__errorf(e, CONDUIT_ENOTSUP,
                                   "libvchan chose the xen platform, but this libconduit was "
                                   "built without Xen support");
        }
        *out = CONDUIT__VPLAT_XEN;
    }
    return 0;
}

int conduit__resolve_domain(struct conduit__err *e, const struct conduit_uri *u, int *domid)
{
    enum conduit__vplat plat;
    int rc;

    if (u->vchan.domid != CONDUIT_DOMID_NAMED) {
        *domid = u->vchan.domid;
        return 0;
    }
    if ((rc = conduit__vchan_platform(e, &plat)) < 0) {
        return rc;
    }
    if (plat != CONDUIT__VPLAT_XEN) {
        return conduit__errorf(e, CONDUIT_ERESOLVE,
                               "cannot resolve domain name '%s': not on Xen (the local platform "
                               "has domain ids only)",
                               u->vchan.domain_name);
    }
    return conduit__xen_domid_by_name(e, u->vchan.domain_name, domid);
}
