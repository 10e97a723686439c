/* SPDX-License-Identifier: ISC */
/*
 * The public entry points for looking at channels from outside them
 * (vchan_list_channels, vchan_page_open: vchan.h), over each hosted
 * platform's struct vchan__platform_debug.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvchan/platform/hosted.h"

struct vchan_page {
    const struct vchan__platform_debug *dbg;
    const void *addr;
    void *handle;
};

static void say(char *errbuf, size_t errlen, const char *msg)
{
    if (errbuf && errlen) {
        snprintf(errbuf, errlen, "%s", msg);
    }
}

static int pick(const char *platform, const struct vchan__platform_debug **out, char *errbuf,
                size_t errlen)
{
    const struct vchan__platform *plat;
    int rc;

    if ((rc = vchan__hosted_pick(platform, &plat, errbuf, errlen)) < 0) {
        return rc;
    }
    *out = &vchan__local_debug;
#ifdef HAVE_XEN
    if (plat == &vchan__platform_xen) {
        *out = &vchan__xen_debug;
    }
#endif
    return 0;
}

VCHAN_EXPORT int vchan_list_channels(const char *platform, int server, vchan_channel_fn *fn,
                                     void *ctx, char *errbuf, size_t errlen)
{
    const struct vchan__platform_debug *dbg;
    char msg[VCHAN__MSG_MAX] = "";
    int rc;

    if (!fn || server < -1 || server > VCHAN_DOMID_MAX) {
        say(errbuf, errlen, "vchan_list_channels: invalid argument");
        return -VCHAN_EINVAL;
    }
    if ((rc = pick(platform, &dbg, errbuf, errlen)) < 0) {
        return rc;
    }
    rc = dbg->list(server, fn, ctx, msg);
    if (rc < 0 && msg[0]) {
        say(errbuf, errlen, msg);
    }
    return rc;
}

VCHAN_EXPORT int vchan_page_open(struct vchan_page **out, const char *platform, int server,
                                 int client, const char *port, char *errbuf, size_t errlen)
{
    const struct vchan__platform_debug *dbg;
    char msg[VCHAN__MSG_MAX] = "";
    struct vchan_page *pg;
    int rc;

    if (!out) {
        return -VCHAN_EINVAL;
    }
    *out = NULL;
    if (!port || server < 0 || server > VCHAN_DOMID_MAX || client < -1 ||
        client > VCHAN_DOMID_MAX) {
        say(errbuf, errlen, "vchan_page_open: invalid argument");
        return -VCHAN_EINVAL;
    }
    if ((rc = pick(platform, &dbg, errbuf, errlen)) < 0) {
        return rc;
    }
    if (!(pg = calloc(1, sizeof(*pg)))) {
        say(errbuf, errlen, "out of memory");
        return -VCHAN_ENOMEM;
    }
    pg->dbg = dbg;
    if ((rc = dbg->page_open(server, client, port, &pg->addr, &pg->handle, msg)) < 0) {
        say(errbuf, errlen, msg);
        free(pg);
        return rc;
    }
    *out = pg;
    return 0;
}

VCHAN_EXPORT const void *vchan_page_addr(const struct vchan_page *page)
{
    return page ? page->addr : NULL;
}

VCHAN_EXPORT void vchan_page_close(struct vchan_page *page)
{
    if (page) {
        page->dbg->page_close(page->handle);
        free(page);
    }
}
