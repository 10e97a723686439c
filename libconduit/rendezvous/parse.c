/* SPDX-License-Identifier: ISC */
/*
 * The values a peer writes during the accept rendezvous (docs/accept.md),
 * parsed and checked without I/O, so that tests/fuzz/fuzz_accept.c can
 * reach them without Xen or sockets: on Xen the request names a listener
 * lists and the refusals a client reads (xen.c), on the local platform the
 * request and answer messages (rdv_local.c). Each writer is here beside its
 * parser, so the fuzz target can check that what we write we also accept.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdio.h>
#include <string.h>

#include "libconduit/internal/internal.h"
#include "vchan.h"

_Static_assert(CONDUIT__RDV_PORT_LEN == VCHAN_PORT_MAX, "a request holds any port");
_Static_assert(sizeof(struct conduit__rdv_request) == 96, "request layout");
_Static_assert(sizeof(struct conduit__rdv_reply) == 212, "reply layout");

#define REFUSED_LEN (sizeof(CONDUIT__RDV_REFUSED) - 1)

int conduit__domid_parse(const char *s, size_t len)
{
    int v = 0;
    size_t i;

    if (len == 0 || len > 5) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v <= VCHAN_DOMID_MAX ? v : -1;
}

int conduit__rdv_request_name(const char *name, char nonce[CONDUIT__NONCE_LEN + 1])
{
    const char *dash = strchr(name, '-');
    int domid;

    if (!dash || strlen(dash + 1) != CONDUIT__NONCE_LEN) {
        return -1;
    }
    domid = conduit__domid_parse(name, (size_t)(dash - name));
    memcpy(nonce, dash + 1, CONDUIT__NONCE_LEN + 1);
    if (domid < 0 || !conduit__nonce_valid(nonce)) {
        return -1;
    }
    return domid;
}

/* The peer's words, shown to a user: printable ASCII only, at most outlen - 1 of them. */
static void printable(char *out, size_t outlen, const char *in, size_t inlen)
{
    size_t i;

    if (outlen == 0) {
        return;
    }
    if (inlen >= outlen) {
        inlen = outlen - 1;
    }
    for (i = 0; i < inlen; i++) {
        char ch = in[i]; /* peer-controlled */

        out[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
    }
    out[inlen] = '\0';
}

size_t conduit__rdv_refusal_make(char *val, size_t len, const char *why)
{
    int n = snprintf(val, len, CONDUIT__RDV_REFUSED "%s", why);

    return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

bool conduit__rdv_refusal_parse(const char *val, size_t len, char *why, size_t whylen)
{
    if (len < REFUSED_LEN || memcmp(val, CONDUIT__RDV_REFUSED, REFUSED_LEN) != 0) {
        return false;
    }
    if (why) {
        printable(why, whylen, val + REFUSED_LEN, len - REFUSED_LEN);
    }
    return true;
}

void conduit__rdv_request_make(struct conduit__rdv_request *req, int client, int server,
                               const char *nonce, const char *port)
{
    size_t n = strlen(port);

    memset(req, 0, sizeof(*req));
    req->magic = CONDUIT__RDV_REQ_MAGIC;
    req->version = CONDUIT__RDV_VERSION;
    req->client_domid = (uint32_t)client;
    req->server_domid = (uint32_t)server;
    memcpy(req->nonce, nonce, CONDUIT__NONCE_LEN);
    memcpy(req->port, port, n < sizeof(req->port) ? n : sizeof(req->port));
}

int conduit__rdv_request_parse(const struct conduit__rdv_request *req, int self, const char *port,
                               int *client, char nonce[CONDUIT__NONCE_LEN + 1], char *why,
                               size_t whylen)
{
    size_t plen = strlen(port);

    /* Everything in req is peer-controlled. */
    if (req->magic != CONDUIT__RDV_REQ_MAGIC || req->version != CONDUIT__RDV_VERSION) {
        snprintf(why, whylen, "malformed request");
    } else if (req->server_domid != (uint32_t)self) {
        snprintf(why, whylen, "this is domain %d, not %u", self, req->server_domid);
    } else if (req->client_domid > VCHAN_DOMID_MAX) {
        snprintf(why, whylen, "client domain %u out of range", req->client_domid);
    } else if (strnlen(req->port, sizeof(req->port)) != plen ||
               memcmp(req->port, port, plen) != 0) {
        snprintf(why, whylen, "request for another port");
    } else {
        memcpy(nonce, req->nonce, CONDUIT__NONCE_LEN);
        nonce[CONDUIT__NONCE_LEN] = '\0';
        if (conduit__nonce_valid(nonce)) {
            *client = (int)req->client_domid;
            return 0;
        }
        snprintf(why, whylen, "malformed nonce");
    }
    return -CONDUIT_EPROTO;
}

void conduit__rdv_reply_make(struct conduit__rdv_reply *rep, int status, const char *why)
{
    memset(rep, 0, sizeof(*rep));
    rep->magic = CONDUIT__RDV_REP_MAGIC;
    rep->version = CONDUIT__RDV_VERSION;
    rep->status = status;
    if (why) {
        snprintf(rep->why, sizeof(rep->why), "%s", why);
    }
}

int conduit__rdv_reply_parse(const struct conduit__rdv_reply *rep, int *refusal, char *why,
                             size_t whylen)
{
    int32_t status = rep->status; /* peer-controlled: read once */
    int code;

    *refusal = 0;
    if (rep->magic != CONDUIT__RDV_REP_MAGIC || rep->version != CONDUIT__RDV_VERSION) {
        return -CONDUIT_EPROTO;
    }
    if (status == 0) {
        return 0;
    }
    code = status > 0 && status < CONDUIT_ERRNO_MAX ? status : CONDUIT_EIO;
    *refusal = code == CONDUIT_EAGAIN ? CONDUIT_EIO : code;
    printable(why, whylen, rep->why, strnlen(rep->why, sizeof(rep->why)));
    if (!why[0]) {
        snprintf(why, whylen, "%s", conduit_strerror(code));
    }
    return 0;
}
