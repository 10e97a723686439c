/* SPDX-License-Identifier: ISC */
/*
 * xenstore for libconduit on Xen: domain names to domain ids, our own
 * domain id, and the accept rendezvous of vchan://STAR/PORT listeners
 * (docs/accept.md). Built only with Xen support (Makefile.am picks this or
 * xen_none.c).
 *
 * Layout, for a listener in domain S on port P:
 *
 *   /local/domain/S/data/conduit/P            owner S, others may read: a
 *                                             listener is here
 *   /local/domain/S/data/conduit/P/pid        S only: the listening process
 *   /local/domain/S/data/conduit/P/requests   owner S, others may write:
 *                                             create a request, not list
 *   .../requests/C-NONCE                      written by client domain C,
 *                                             which makes itself the owner
 *                                             and gives S read and write
 *
 * xenstored makes an unprivileged domain the owner of what it creates and
 * lets no unprivileged domain change an owner, so the owner of a request
 * node is the domain that wrote it. The server serves C only if the owner
 * is C: a domain cannot ask in another's name. The answer is a channel at
 * libxenvchan's path /local/domain/S/data/vchan/C/accept-NONCE, readable
 * by C alone, which no other domain can write either. Nothing world-
 * writable decides whom a service belongs to (compare ocaml-conduit's
 * /conduit registry): the requests directory can be filled or deleted by
 * anyone (a denial of service, which xenstored's per-domain quotas bound
 * and which the listener repairs), but not taken over.
 *
 * Everything read from xenstore is hostile: parsed strictly, then used.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <xenstore.h>

#include "libconduit/internal/internal.h"
#include "vchan.h"

const bool conduit__xen_built = true;

#define PATH_MAX_LEN 256

static int os_code(int err)
{
    switch (err) {
    case EACCES:
    case EPERM:
        return CONDUIT_EPERM;
    case ENOENT:
        return CONDUIT_ENOENT;
    case ENOMEM:
        return CONDUIT_ENOMEM;
    default:
        return CONDUIT_EIO;
    }
}

static struct xs_handle *open_xs(struct conduit__err *e)
{
    struct xs_handle *xs = xs_open(0);

    if (!xs) {
        conduit__errorf(e, errno == EACCES ? CONDUIT_EPERM : CONDUIT_EIO,
                        "cannot open xenstore: %s", strerror(errno));
    }
    return xs;
}

/* A value read from xenstore as a domain id. */
static int read_domid(struct xs_handle *xs, const char *path, int *domid)
{
    unsigned len = 0;
    char *val = xs_read(xs, XBT_NULL, path, &len);

    if (!val) {
        return -1;
    }
    *domid = conduit__domid_parse(val, len);
    free(val);
    if (*domid < 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

static int self_domid(struct conduit__err *e, struct xs_handle *xs, int *domid)
{
    /* Relative to our own home, /local/domain/<self>. */
    if (read_domid(xs, "domid", domid) < 0) {
        return conduit__errorf(e, os_code(errno), "xenstore: cannot read our own domid: %s",
                               errno == EINVAL ? "not a domain id" : strerror(errno));
    }
    return 0;
}

int conduit__xen_self_domid(struct conduit__err *e, int *domid)
{
    struct xs_handle *xs = open_xs(e);
    int rc;

    if (!xs) {
        return -CONDUIT_EIO;
    }
    rc = self_domid(e, xs, domid);
    xs_close(xs);
    return rc;
}

int conduit__xen_domid_by_name(struct conduit__err *e, const char *name, int *domid)
{
    struct xs_handle *xs = open_xs(e);
    char **ids = NULL;
    unsigned n = 0, i;
    int rc;

    if (!xs) {
        return -CONDUIT_ERESOLVE;
    }
    ids = xs_directory(xs, XBT_NULL, "/local/domain", &n);
    if (!ids) {
        int err = errno;

        /* A domU may not list its neighbours, but dom0's name is fixed. */
        if (strcmp(name, "Domain-0") == 0) {
            *domid = 0;
            rc = 0;
            goto out;
        }
        rc = conduit__errorf(
            e, CONDUIT_ERESOLVE, "cannot resolve domain name '%s': cannot list /local/domain: %s%s",
            name, strerror(err), err == EACCES ? " (only dom0 may; give the domain id)" : "");
        goto out;
    }
    for (i = 0; i < n; i++) {
        char path[PATH_MAX_LEN];
        unsigned len = 0;
        char *val;
        int id = conduit__domid_parse(ids[i], strlen(ids[i])); /* peer-controlled */

        if (id < 0) {
            continue;
        }
        snprintf(path, sizeof(path), "/local/domain/%d/name", id);
        val = xs_read(xs, XBT_NULL, path, &len);
        if (val && len == strlen(name) && memcmp(val, name, len) == 0) {
            free(val);
            *domid = id;
            rc = 0;
            goto out;
        }
        free(val);
    }
    rc = conduit__errorf(e, CONDUIT_ERESOLVE, "cannot resolve domain name '%s': no such domain",
                         name);
out:
    free(ids);
    xs_close(xs);
    return rc;
}

/* ------------------------------------------------------------ client */

struct xclient {
    struct conduit__rdv_client base;
    struct conduit__err *e;
    struct xs_handle *xs;
    int server, self;
    bool requested;
    char port[VCHAN_PORT_MAX + 1];
    char nonce[CONDUIT__NONCE_LEN + 1];
    char req[PATH_MAX_LEN];
};

static bool exists(struct xs_handle *xs, const char *path)
{
    unsigned len = 0;
    char *val = xs_read(xs, XBT_NULL, path, &len);

    free(val);
    return val != NULL;
}

/* False when the listener's requests directory surely does not exist. */
static bool request_dir_may_exist(struct xclient *c, xs_transaction_t t)
{
    char dir[PATH_MAX_LEN];
    const char *slash = strrchr(c->req, '/');
    unsigned len = 0;
    char *val;

    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - c->req), c->req);
    val = xs_read(c->xs, t, dir, &len);
    if (!val) {
        return errno != ENOENT;
    }
    free(val);
    return true;
}

/* Write our request node, owned by us, readable and writable by the server alone. */
static int write_request(struct xclient *c, bool *absent)
{
    struct xs_permissions perms[2] = {
        {.id = (unsigned)c->self, .perms = XS_PERM_NONE},
        {.id = (unsigned)c->server, .perms = XS_PERM_READ | XS_PERM_WRITE},
    };

    *absent = false;
    for (;;) {
        xs_transaction_t t = xs_transaction_start(c->xs);
        int err;

        if (t == XBT_NULL) {
            return conduit__errorf(c->e, CONDUIT_EIO, "xs_transaction_start: %s", strerror(errno));
        }
        /*
         * A privileged client (dom0), or one asking a server in its own domain,
         * may write anywhere: its write would create the requests directory of
         * a listener that does not exist, and it would wait for an answer while
         * a direct server appears. ENOENT is a sure "no listener"; an
         * unprivileged client gets EACCES instead and learns it from the write.
         */
        if (!request_dir_may_exist(c, t)) {
            (void)xs_transaction_end(c->xs, t, true);
            *absent = true;
            return 0;
        }
        if (!xs_write(c->xs, t, c->req, "", 0)) {
            err = errno;
            (void)xs_transaction_end(c->xs, t, true);
            /* No requests directory we may write to: no listener (yet). */
            if (err == EACCES || err == ENOENT || err == EPERM) {
                *absent = true;
                return 0;
            }
            return conduit__errorf(c->e, os_code(err), "cannot write %s: %s", c->req,
                                   strerror(err));
        }
        if (!xs_set_permissions(c->xs, t, c->req, perms, c->self == c->server ? 1 : 2)) {
            err = errno;
            (void)xs_transaction_end(c->xs, t, true);
            return conduit__errorf(c->e, os_code(err), "cannot set permissions of %s: %s", c->req,
                                   strerror(err));
        }
        if (xs_transaction_end(c->xs, t, false)) {
            return 0;
        }
        if (errno != EAGAIN) {
            return conduit__errorf(c->e, os_code(errno), "xs_transaction_end %s: %s", c->req,
                                   strerror(errno));
        }
    }
}

static int xc_probe(struct conduit__rdv_client *rc, const char *nonce, enum conduit__probe *out)
{
    struct xclient *c = (struct xclient *)rc;
    char path[PATH_MAX_LEN];
    bool absent = false;
    int r;

    *out = CONDUIT__PROBE_NONE;
    snprintf(path, sizeof(path), "/local/domain/%d/data/vchan/%d/%s/ring-ref", c->server, c->self,
             c->port);
    if (exists(c->xs, path)) {
        *out = CONDUIT__PROBE_DIRECT;
        return 0;
    }
    /* Only where a listener is, a request (a transaction) is worth making. */
    snprintf(path, sizeof(path), "/local/domain/%d/data/conduit/%s", c->server, c->port);
    if (!exists(c->xs, path)) {
        return 0;
    }
    snprintf(c->req, sizeof(c->req), "/local/domain/%d/data/conduit/%s/requests/%d-%s", c->server,
             c->port, c->self, nonce);
    if ((r = write_request(c, &absent)) < 0) {
        return r;
    }
    if (!absent) {
        c->requested = true;
        snprintf(c->nonce, sizeof(c->nonce), "%s", nonce);
        *out = CONDUIT__PROBE_ACCEPT;
    }
    return 0;
}

static int xc_answer(struct conduit__rdv_client *rc)
{
    struct xclient *c = (struct xclient *)rc;
    char ring[PATH_MAX_LEN];
    char why[160];
    unsigned len = 0;
    char *val;

    snprintf(ring, sizeof(ring), "/local/domain/%d/data/vchan/%d/%s%s/ring-ref", c->server, c->self,
             CONDUIT__ACCEPT_PORT_PREFIX, c->nonce);
    if (exists(c->xs, ring)) {
        return 1;
    }
    val = xs_read(c->xs, XBT_NULL, c->req, &len);
    if (!val) {
        /* The server removes the request after publishing: look once more. */
        if (exists(c->xs, ring)) {
            return 1;
        }
        c->requested = false;
        return conduit__errorf(c->e, CONDUIT_ECONNREFUSED,
                               "server domain %d dropped our request (its listener went away?)",
                               c->server);
    }
    if (conduit__rdv_refusal_parse(val, len, why, sizeof(why))) {
        free(val);
        return conduit__errorf(c->e, CONDUIT_ECONNREFUSED,
                               "server domain %d refused the connection: %s", c->server, why);
    }
    free(val);
    return 0;
}

static void xc_where(struct conduit__rdv_client *rc, char *buf, size_t len)
{
    struct xclient *c = (struct xclient *)rc;

    snprintf(buf, len,
             "/local/domain/%d/data/vchan/%d/%s, nor an accept service at "
             "/local/domain/%d/data/conduit/%s",
             c->server, c->self, c->port, c->server, c->port);
}

static void xc_close(struct conduit__rdv_client *rc)
{
    struct xclient *c = (struct xclient *)rc;

    if (c->requested) {
        (void)xs_rm(c->xs, XBT_NULL, c->req); /* gone already when the server took it */
    }
    xs_close(c->xs);
    free(c);
}

static const struct conduit__rdv_client_ops xclient_ops = {
    .probe = xc_probe,
    .answer = xc_answer,
    .where = xc_where,
    .close = xc_close,
};

int conduit__xen_rdv_client_open(struct conduit__err *e, int server, const char *port,
                                 uint64_t deadline, struct conduit__rdv_client **out)
{
    struct xclient *c;
    int rc;

    (void)deadline; /* every xenstore call here is quick: the caller loops */
    if (!(c = calloc(1, sizeof(*c)))) {
        return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
    }
    c->base.ops = &xclient_ops;
    c->e = e;
    c->server = server;
    snprintf(c->port, sizeof(c->port), "%s", port);
    if (!(c->xs = open_xs(e))) {
        free(c);
        return -CONDUIT_EIO;
    }
    if ((rc = self_domid(e, c->xs, &c->self)) < 0) {
        xs_close(c->xs);
        free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

/* ------------------------------------------------------------ server */

struct xserver {
    struct conduit__rdv_server base;
    struct conduit__err *e;
    struct xs_handle *xs;
    int self;
    bool published, watching;
    char port[VCHAN_PORT_MAX + 1];
    char base_path[PATH_MAX_LEN];
    char req_dir[PATH_MAX_LEN + 16];
    char token[32];
    char cur[64]; /* the request being answered */
};

/* Make the requests directory: others may create entries, not read or list them. */
static bool make_req_dir(struct xserver *s, xs_transaction_t t)
{
    struct xs_permissions perms[1] = {{.id = (unsigned)s->self, .perms = XS_PERM_WRITE}};

    return xs_mkdir(s->xs, t, s->req_dir) && xs_set_permissions(s->xs, t, s->req_dir, perms, 1);
}

static int publish(struct xserver *s)
{
    /*
     * The directory is readable by all (it holds only the names "pid" and
     * "requests"), so that a client can see a listener with one cheap read
     * instead of a refused transaction; everything in it is ours alone.
     */
    struct xs_permissions pub[1] = {{.id = (unsigned)s->self, .perms = XS_PERM_READ}};
    struct xs_permissions own[1] = {{.id = (unsigned)s->self, .perms = XS_PERM_NONE}};
    char pid_path[PATH_MAX_LEN + 8];
    char pid[24];
    int n = snprintf(pid, sizeof(pid), "%ld", (long)getpid());

    snprintf(pid_path, sizeof(pid_path), "%s/pid", s->base_path);
    for (;;) {
        xs_transaction_t t = xs_transaction_start(s->xs);
        int err;

        if (t == XBT_NULL) {
            return conduit__errorf(s->e, CONDUIT_EIO, "xs_transaction_start: %s", strerror(errno));
        }
        if (!xs_write(s->xs, t, pid_path, pid, (unsigned)n) ||
            !xs_set_permissions(s->xs, t, s->base_path, pub, 1) ||
            !xs_set_permissions(s->xs, t, pid_path, own, 1) || !make_req_dir(s, t)) {
            err = errno;
            (void)xs_transaction_end(s->xs, t, true);
            return conduit__errorf(s->e, os_code(err), "cannot publish %s: %s", s->base_path,
                                   strerror(err));
        }
        if (xs_transaction_end(s->xs, t, false)) {
            s->published = true;
            return 0;
        }
        if (errno != EAGAIN) {
            return conduit__errorf(s->e, os_code(errno), "xs_transaction_end %s: %s", s->base_path,
                                   strerror(errno));
        }
    }
}

/* Another live listener on this port? Its pid is under our own domain's data. */
static int check_previous(struct xserver *s)
{
    char pid_path[PATH_MAX_LEN + 8];
    unsigned len = 0;
    long pid = 0;
    char *val;
    unsigned i;

    snprintf(pid_path, sizeof(pid_path), "%s/pid", s->base_path);
    val = xs_read(s->xs, XBT_NULL, pid_path, &len);
    if (!val) {
        return 0;
    }
    for (i = 0; i < len && i < 10 && val[i] >= '0' && val[i] <= '9'; i++) {
        pid = pid * 10 + (val[i] - '0');
    }
    free(val);
    if (i == len && pid > 0 && pid != (long)getpid() &&
        (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
        return conduit__errorf(s->e, CONDUIT_EADDRINUSE,
                               "another listener (pid %ld) accepts for port %s", pid, s->port);
    }
    conduit__logf(s->e, CONDUIT_LOG_INFO, "removing stale %s", s->base_path);
    (void)xs_rm(s->xs, XBT_NULL, s->base_path);
    return 0;
}

static int xs_fd(struct conduit__rdv_server *rs)
{
    return xs_fileno(((struct xserver *)rs)->xs);
}

static int xs_next(struct conduit__rdv_server *rs, int *client, char nonce[CONDUIT__NONCE_LEN + 1])
{
    struct xserver *s = (struct xserver *)rs;
    char **names, **ev;
    unsigned n = 0, i;

    s->cur[0] = '\0';
    while ((ev = xs_check_watch(s->xs))) {
        free(ev);
    }
    names = xs_directory(s->xs, XBT_NULL, s->req_dir, &n);
    if (!names) {
        if (errno == ENOENT) {
            /* Anyone may delete it (others can write it): put it back. */
            conduit__logf(s->e, CONDUIT_LOG_WARN, "%s was removed by another domain: restoring",
                          s->req_dir);
            if (!make_req_dir(s, XBT_NULL)) {
                conduit__logf(s->e, CONDUIT_LOG_WARN, "cannot restore %s: %s", s->req_dir,
                              strerror(errno));
            }
        } else {
            conduit__logf(s->e, CONDUIT_LOG_WARN, "cannot list %s: %s", s->req_dir,
                          strerror(errno));
        }
        return 0;
    }
    for (i = 0; i < n; i++) {
        char path[PATH_MAX_LEN + 80];
        struct xs_permissions *perms;
        unsigned np = 0, len = 0;
        char *val;
        int claimed;

        snprintf(path, sizeof(path), "%s/%s", s->req_dir, names[i]);
        claimed = conduit__rdv_request_name(names[i], nonce); /* peer-controlled */
        if (claimed < 0 || strlen(names[i]) >= sizeof(s->cur)) {
            conduit__logf(s->e, CONDUIT_LOG_WARN, "malformed request '%.40s': removed", names[i]);
            (void)xs_rm(s->xs, XBT_NULL, path);
            continue;
        }
        val = xs_read(s->xs, XBT_NULL, path, &len);
        if (val && conduit__rdv_refusal_parse(val, len, NULL, 0)) {
            free(val); /* answered already; its client removes it */
            continue;
        }
        free(val);
        perms = xs_get_permissions(s->xs, XBT_NULL, path, &np);
        if (!perms || np == 0) {
            free(perms);
            continue; /* removed meanwhile */
        }
        if (perms[0].id != (unsigned)claimed) {
            conduit__logf(s->e, CONDUIT_LOG_WARN,
                          "request in the name of domain %d was written by domain %u: removed",
                          claimed, perms[0].id);
            free(perms);
            (void)xs_rm(s->xs, XBT_NULL, path);
            continue;
        }
        free(perms);
        snprintf(s->cur, sizeof(s->cur), "%s", names[i]);
        *client = claimed;
        free(names);
        return 1;
    }
    free(names);
    return 0;
}

static void xs_answer(struct conduit__rdv_server *rs, int status, const char *why)
{
    struct xserver *s = (struct xserver *)rs;
    char path[PATH_MAX_LEN + 80];

    if (!s->cur[0]) {
        return;
    }
    snprintf(path, sizeof(path), "%s/%s", s->req_dir, s->cur);
    if (status == 0) {
        (void)xs_rm(s->xs, XBT_NULL, path); /* its channel is published: taken */
    } else {
        char val[200];
        size_t n =
            conduit__rdv_refusal_make(val, sizeof(val), why ? why : conduit_strerror(status));

        (void)xs_write(s->xs, XBT_NULL, path, val, (unsigned)n);
    }
    s->cur[0] = '\0';
}

static void xs_server_close(struct conduit__rdv_server *rs)
{
    struct xserver *s = (struct xserver *)rs;

    if (s->watching) {
        (void)xs_unwatch(s->xs, s->req_dir, s->token);
    }
    if (s->published) {
        (void)xs_rm(s->xs, XBT_NULL, s->base_path);
    }
    if (s->xs) {
        xs_close(s->xs);
    }
    free(s);
}

static const struct conduit__rdv_server_ops xserver_ops = {
    .fd = xs_fd,
    .next = xs_next,
    .answer = xs_answer,
    .close = xs_server_close,
};

int conduit__xen_rdv_server_open(struct conduit__err *e, const char *port,
                                 struct conduit__rdv_server **out)
{
    struct xserver *s;
    int rc;

    if (!(s = calloc(1, sizeof(*s)))) {
        return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
    }
    s->base.ops = &xserver_ops;
    s->e = e;
    snprintf(s->port, sizeof(s->port), "%s", port);
    if (!(s->xs = open_xs(e))) {
        rc = -CONDUIT_EIO;
        goto out;
    }
    if ((rc = self_domid(e, s->xs, &s->self)) < 0) {
        goto out;
    }
    snprintf(s->base_path, sizeof(s->base_path), "/local/domain/%d/data/conduit/%s", s->self, port);
    snprintf(s->req_dir, sizeof(s->req_dir), "%s/requests", s->base_path);
    snprintf(s->token, sizeof(s->token), "conduit-accept-%ld", (long)getpid());
    if ((rc = check_previous(s)) < 0 || (rc = publish(s)) < 0) {
        goto out;
    }
    if (!xs_watch(s->xs, s->req_dir, s->token)) {
        rc = conduit__errorf(e, os_code(errno), "cannot watch %s: %s", s->req_dir, strerror(errno));
        goto out;
    }
    s->watching = true;
    if (xs_fileno(s->xs) < 0) {
        rc = conduit__errorf(e, CONDUIT_EIO, "xs_fileno: %s", strerror(errno));
        goto out;
    }
    conduit__logf(e, CONDUIT_LOG_DEBUG, "accepting requests at %s", s->req_dir);
    *out = &s->base;
    return 0;
out:
    xs_server_close(&s->base);
    return rc;
}
