/* SPDX-License-Identifier: ISC */
/*
 * The Xen platform seen from outside its channels (vchan-cat --list and
 * --stat): the rendezvous entries xenstore lets this domain read, and a
 * read-only mapping of a control page where Xen allows one.
 *
 * A control page is granted to the client domain only, so only the client
 * domain can map it (a second mapping of a grant it already maps is fine):
 * for any other channel, dom0 included, page_open says so, with what
 * xenstore shows. Everything read from xenstore was written by the server
 * domain and is parsed strictly.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xengnttab.h>
#include <xenstore.h>

#include "libvchan/core/wire.h"
#include "libvchan/platform/hosted.h"

#define MAX_NAME 64

/* Read a key as a number (0 and false when absent or malformed). */
static bool read_num(struct xs_handle *xs, const char *path, uint64_t max, uint32_t *out)
{
    unsigned len = 0;
    char *val = xs_read(xs, XBT_NULL, path, &len);
    uint64_t n = 0;
    bool ok;

    ok = val && vchan__parse_dec(val, len, max, &n);
    free(val);
    *out = ok ? (uint32_t)n : 0;
    return ok;
}

/* A domain's name, printable ASCII only ("" when unreadable). */
static void read_name(struct xs_handle *xs, int domid, char name[MAX_NAME])
{
    char path[64];
    unsigned len = 0, n = 0;
    char *val;

    snprintf(path, sizeof(path), "/local/domain/%d/name", domid);
    val = xs_read(xs, XBT_NULL, path, &len);
    for (unsigned i = 0; val && i < len && n + 1 < MAX_NAME; i++) {
        unsigned char c = (unsigned char)val[i];
        name[n++] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    name[n] = '\0';
    free(val);
}

static bool domid_of(const char *s, int *out)
{
    uint64_t v;

    if (!vchan__parse_dec(s, strlen(s), VCHAN_DOMID_MAX, &v)) {
        return false;
    }
    *out = (int)v;
    return true;
}

static int list_server(struct xs_handle *xs, int server, vchan_channel_fn *fn, void *ctx)
{
    char base[64], sname[MAX_NAME];
    unsigned nc = 0;
    char **clients;
    int rc = 0;

    snprintf(base, sizeof(base), "/local/domain/%d/data/vchan", server);
    if (!(clients = xs_directory(xs, XBT_NULL, base, &nc))) {
        return 0; /* no channels, or not ours to read */
    }
    read_name(xs, server, sname);
    for (unsigned i = 0; i < nc && rc == 0; i++) {
        char cpath[96], cname[MAX_NAME];
        unsigned np = 0;
        char **ports;
        int client;

        if (!domid_of(clients[i], &client)) {
            continue;
        }
        snprintf(cpath, sizeof(cpath), "%s/%d", base, client);
        if (!(ports = xs_directory(xs, XBT_NULL, cpath, &np))) {
            continue;
        }
        read_name(xs, client, cname);
        for (unsigned j = 0; j < np && rc == 0; j++) {
            char kpath[192];
            struct vchan_channel ch = {
                .size = sizeof(ch),
                .platform = "xen",
                .server = server,
                .client = client,
                .server_name = sname[0] ? sname : NULL,
                .client_name = cname[0] ? cname : NULL,
                .port = ports[j],
            };
            bool ref, evt;

            if (strlen(ports[j]) > VCHAN_PORT_MAX || !vchan__port_valid(ports[j])) {
                continue;
            }
            snprintf(kpath, sizeof(kpath), "%s/%s/ring-ref", cpath, ports[j]);
            ref = read_num(xs, kpath, UINT32_MAX, &ch.ring_ref);
            snprintf(kpath, sizeof(kpath), "%s/%s/event-channel", cpath, ports[j]);
            evt = read_num(xs, kpath, UINT32_MAX, &ch.evtchn);
            ch.published = ref && evt;
            rc = fn(ctx, &ch);
        }
        free(ports);
    }
    free(clients);
    return rc;
}

static int xen_list(int server, vchan_channel_fn *fn, void *ctx, char *msg)
{
    struct xs_handle *xs = xs_open(0);
    int rc = 0;

    if (!xs) {
        snprintf(msg, VCHAN__MSG_MAX, "xs_open: %s", strerror(errno));
        return -VCHAN_EIO;
    }
    if (server >= 0) {
        rc = list_server(xs, server, fn, ctx);
    } else {
        unsigned n = 0;
        char **doms = xs_directory(xs, XBT_NULL, "/local/domain", &n);
        if (!doms) {
            /* A domU may not list /local/domain: its own channels then. */
            unsigned len = 0;
            char *self = xs_read(xs, XBT_NULL, "domid", &len);
            int id;
            if (self && domid_of(self, &id)) {
                rc = list_server(xs, id, fn, ctx);
            }
            free(self);
        }
        for (unsigned i = 0; doms && i < n && rc == 0; i++) {
            int id;
            if (domid_of(doms[i], &id)) {
                rc = list_server(xs, id, fn, ctx);
            }
        }
        free(doms);
    }
    xs_close(xs);
    return rc;
}

struct mapped {
    xengnttab_handle *gt;
    void *addr;
};

static int xen_page_open(int server, int client, const char *port, const void **addr,
                         void **handle, char *msg)
{
    struct xs_handle *xs;
    struct mapped *m;
    char path[192];
    uint32_t ref = 0, evt = 0;
    unsigned len = 0;
    char *val;
    int self = -1;
    bool have_ref;

    if (!port || strlen(port) > VCHAN_PORT_MAX || !vchan__port_valid(port)) {
        snprintf(msg, VCHAN__MSG_MAX, "invalid port name");
        return -VCHAN_EINVAL;
    }
    if (!(xs = xs_open(0))) {
        snprintf(msg, VCHAN__MSG_MAX, "xs_open: %s", strerror(errno));
        return -VCHAN_EIO;
    }
    val = xs_read(xs, XBT_NULL, "domid", &len);
    if (!val || !domid_of(val, &self)) {
        free(val);
        xs_close(xs);
        snprintf(msg, VCHAN__MSG_MAX, "xenstore: cannot read our own domid");
        return -VCHAN_EIO;
    }
    free(val);
    if (client < 0) {
        client = self;
    }
    snprintf(path, sizeof(path), "/local/domain/%d/data/vchan/%d/%s/ring-ref", server, client,
             port);
    have_ref = read_num(xs, path, UINT32_MAX, &ref) && ref != 0;
    snprintf(path, sizeof(path), "/local/domain/%d/data/vchan/%d/%s/event-channel", server,
             client, port);
    read_num(xs, path, UINT32_MAX, &evt);
    xs_close(xs);
    if (!have_ref) {
        snprintf(msg, VCHAN__MSG_MAX, "no vchan /local/domain/%d/data/vchan/%d/%s in xenstore",
                 server, client, port);
        return -VCHAN_ENOENT;
    }
    if (client != self) {
        snprintf(msg, VCHAN__MSG_MAX,
                 "the page is granted to domain %d only, and this is domain %d: xenstore shows "
                 "ring-ref %u, event-channel %u",
                 client, self, ref, evt);
        return -VCHAN_EPERM;
    }
    if (!(m = calloc(1, sizeof(*m)))) {
        snprintf(msg, VCHAN__MSG_MAX, "out of memory");
        return -VCHAN_ENOMEM;
    }
    if (!(m->gt = xengnttab_open(NULL, 0))) {
        snprintf(msg, VCHAN__MSG_MAX, "xengnttab_open: %s", strerror(errno));
        free(m);
        return -VCHAN_EIO;
    }
    m->addr = xengnttab_map_grant_ref(m->gt, (uint32_t)server, ref, PROT_READ);
    if (!m->addr) {
        snprintf(msg, VCHAN__MSG_MAX, "mapping grant %u of domain %d: %s", ref, server,
                 strerror(errno));
        xengnttab_close(m->gt);
        free(m);
        return -VCHAN_EIO;
    }
    *addr = m->addr;
    *handle = m;
    return 0;
}

static void xen_page_close(void *handle)
{
    struct mapped *m = handle;

    if (m) {
        xengnttab_unmap(m->gt, m->addr, 1);
        xengnttab_close(m->gt);
        free(m);
    }
}

const struct vchan__platform_debug vchan__xen_debug = {
    .list = xen_list,
    .page_open = xen_page_open,
    .page_close = xen_page_close,
};
