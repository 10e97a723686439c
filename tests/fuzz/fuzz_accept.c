/* SPDX-License-Identifier: ISC */
/*
 * fuzz_accept: what the other side of an accept rendezvous writes
 * (docs/accept.md), through the parsers of libconduit/rendezvous/parse.c that
 * xen.c and rdv_local.c use.
 *
 * Byte 0 picks the value (a letter for readable seeds, any other byte
 * modulo 5); the rest of the input is that value:
 *
 *   d  a domain id as xenstore gives it (`domid`, /local/domain/<id>)
 *   n  a request node's name as a Xen listener lists it, "<domid>-<nonce>"
 *   r  a request node's value as a Xen client reads it: "refused: <why>"
 *      (one more byte first: the size of the caller's buffer for why)
 *   q  a local client's request: the listener's own domain id (u16) and
 *      port (a length byte, then that many characters), then the message
 *   a  a local server's answer (first a byte: the size of the buffer for why)
 *
 * Invariants: each parser agrees with an independent reference of the
 * format; what it accepts is in range (domain ids 0..32751, nonces of 16
 * lower-case hex digits, refusal codes that are CONDUIT_E* codes but
 * EAGAIN); reasons shown to a user are NUL-terminated within the buffer and
 * printable; and what our own writers make of the accepted values parses
 * back to the same values (round trips).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "libconduit/internal/internal.h"
#include "vchan.h"

#define TEXT_MAX 256

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

static bool printable_z(const char *s, size_t size)
{
    size_t n = strnlen(s, size);

    if (n == size) {
        return false; /* not NUL-terminated within its buffer */
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* The reference: 1 to 5 decimal digits, at most VCHAN_DOMID_MAX; -1 otherwise. */
static long ref_domid(const char *s, size_t len)
{
    long v = 0;

    if (len < 1 || len > 5) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i])) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v <= VCHAN_DOMID_MAX ? v : -1;
}

static void check_domid(struct fuzz_in *in)
{
    char s[TEXT_MAX], canon[16];
    size_t len = fuzz_bytes(in, s, sizeof(s));
    int got = conduit__domid_parse(s, len);
    long want = ref_domid(s, len);

    FUZZ_CHECK(got == want, "'%.*s': parsed as %d, reference %ld", (int)len, s, got, want);
    if (got < 0) {
        return;
    }
    FUZZ_CHECK(got <= VCHAN_DOMID_MAX, "domid %d out of range", got);
    /* Printed back it is the same id, and the same text but for leading zeros. */
    snprintf(canon, sizeof(canon), "%d", got);
    FUZZ_CHECK(conduit__domid_parse(canon, strlen(canon)) == got, "'%s' does not parse back",
               canon);
    while (len > 1 && s[0] == '0') {
        memmove(s, s + 1, --len);
    }
    FUZZ_CHECK(len == strlen(canon) && memcmp(s, canon, len) == 0, "'%s' is not '%.*s'", canon,
               (int)len, s);
}

static void check_request_name(struct fuzz_in *in)
{
    char name[TEXT_MAX + 1], nonce[CONDUIT__NONCE_LEN + 1], again[CONDUIT__NONCE_LEN + 1];
    char made[64];
    size_t len, dash;
    long want = -1;
    int got;

    fuzz_bytes(in, name, TEXT_MAX);
    name[TEXT_MAX] = '\0';
    len = strlen(name); /* a node name ends at its NUL */
    memset(nonce, 'X', sizeof(nonce));
    got = conduit__rdv_request_name(name, nonce);

    /* The reference: ^[0-9]{1,5}-[0-9a-f]{16}$ naming a domain id in range. */
    for (dash = 0; dash < len && is_digit(name[dash]); dash++) {
    }
    if (dash < len && name[dash] == '-' && len - dash - 1 == CONDUIT__NONCE_LEN) {
        bool hex = true;

        for (size_t i = dash + 1; i < len; i++) {
            hex = hex && is_hex(name[i]);
        }
        want = hex ? ref_domid(name, dash) : -1;
    }
    FUZZ_CHECK(got == want, "'%s': claimed domain %d, reference %ld", name, got, want);
    if (got < 0) {
        return;
    }
    FUZZ_CHECK(conduit__nonce_valid(nonce) && strcmp(nonce, name + dash + 1) == 0,
               "'%s': nonce '%.17s'", name, nonce);
    /* What a client writes for that domain and nonce is accepted as the same. */
    snprintf(made, sizeof(made), "%d-%s", got, nonce);
    FUZZ_CHECK(conduit__rdv_request_name(made, again) == got && strcmp(again, nonce) == 0,
               "'%s' does not parse back", made);
}

static void check_refusal(struct fuzz_in *in)
{
    size_t whylen = 1 + fuzz_u8(in) % 200;
    char val[TEXT_MAX], *why = malloc(whylen), again[200], made[200];
    size_t len = fuzz_bytes(in, val, sizeof(val)), pre = sizeof(CONDUIT__RDV_REFUSED) - 1;
    bool want = len >= pre && memcmp(val, CONDUIT__RDV_REFUSED, pre) == 0;
    bool got;
    size_t n, m;

    if (!why) {
        abort();
    }
    memset(why, 'X', whylen);
    got = conduit__rdv_refusal_parse(val, len, why, whylen);
    FUZZ_CHECK(got == want, "'%.*s': refusal %d, reference %d", (int)len, val, got, want);
    FUZZ_CHECK(conduit__rdv_refusal_parse(val, len, NULL, 0) == got, "verdict depends on why");
    if (got) {
        n = len - pre < whylen - 1 ? len - pre : whylen - 1;
        FUZZ_CHECK(printable_z(why, whylen), "reason not printable or not terminated");
        FUZZ_CHECK(strlen(why) == n, "reason of %zu bytes, expected %zu", strlen(why), n);
        for (size_t i = 0; i < n; i++) {
            char c = val[pre + i];

            FUZZ_CHECK(why[i] == (c >= 0x20 && c < 0x7f ? c : '?'), "reason byte %zu", i);
        }
        /* Written back by a server, it reads the same. */
        m = conduit__rdv_refusal_make(made, sizeof(made), why);
        FUZZ_CHECK(m < sizeof(made) && made[m] == '\0', "made %zu bytes", m);
        FUZZ_CHECK(conduit__rdv_refusal_parse(made, m, again, sizeof(again)),
                   "our own refusal is not one");
        FUZZ_CHECK(m == sizeof(made) - 1 || strcmp(again, why) == 0, "'%s' read back as '%s'", why,
                   again);
    }
    free(why);
}

/* A port as a listen URI allows it: 1 to 64 of [A-Za-z0-9_-]. */
static void take_port(struct fuzz_in *in, char port[VCHAN_PORT_MAX + 1])
{
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    size_t n = 1 + fuzz_u8(in) % VCHAN_PORT_MAX;

    for (size_t i = 0; i < n; i++) {
        port[i] = alphabet[fuzz_u8(in) % (sizeof(alphabet) - 1)];
    }
    port[n] = '\0';
}

static void check_request(struct fuzz_in *in)
{
    int self = fuzz_u16(in) % (VCHAN_DOMID_MAX + 1), client = -1, again_client = -1;
    char port[VCHAN_PORT_MAX + 1], nonce[CONDUIT__NONCE_LEN + 1], again[CONDUIT__NONCE_LEN + 1];
    char why[160];
    struct conduit__rdv_request req, made;
    bool want;
    int rc;

    take_port(in, port);
    fuzz_bytes(in, &req, sizeof(req));
    memset(why, 0, sizeof(why));
    rc = conduit__rdv_request_parse(&req, self, port, &client, nonce, why, sizeof(why));

    want = req.magic == CONDUIT__RDV_REQ_MAGIC && req.version == CONDUIT__RDV_VERSION &&
           req.server_domid == (uint32_t)self && req.client_domid <= VCHAN_DOMID_MAX &&
           strnlen(req.port, sizeof(req.port)) == strlen(port) &&
           memcmp(req.port, port, strlen(port)) == 0;
    for (size_t i = 0; i < CONDUIT__NONCE_LEN; i++) {
        want = want && is_hex(req.nonce[i]);
    }
    FUZZ_CHECK(rc == 0 || rc == -CONDUIT_EPROTO, "rc %d", rc);
    FUZZ_CHECK((rc == 0) == want, "request %s, reference %s (why: %s)", rc ? "refused" : "taken",
               want ? "takes it" : "refuses it", why);
    if (rc < 0) {
        FUZZ_CHECK(why[0] && printable_z(why, sizeof(why)), "a refusal without a reason");
        return;
    }
    FUZZ_CHECK(client >= 0 && client <= VCHAN_DOMID_MAX && (uint32_t)client == req.client_domid,
               "client %d", client);
    FUZZ_CHECK(conduit__nonce_valid(nonce) && memcmp(nonce, req.nonce, CONDUIT__NONCE_LEN) == 0,
               "nonce '%.17s'", nonce);
    /* What our client sends for the same values is taken as the same, byte for byte. */
    conduit__rdv_request_make(&made, client, self, nonce, port);
    FUZZ_CHECK(conduit__rdv_request_parse(&made, self, port, &again_client, again, why,
                                          sizeof(why)) == 0 &&
                   again_client == client && strcmp(again, nonce) == 0,
               "our own request is refused or changed: %s", why);
    FUZZ_CHECK(memcmp(&made, &req, offsetof(struct conduit__rdv_request, port)) == 0 &&
                   memcmp(made.port, req.port, strlen(port)) == 0,
               "our own request differs from the one taken");
}

static void check_reply(struct fuzz_in *in)
{
    size_t whylen = 1 + fuzz_u8(in) % CONDUIT__RDV_WHY_LEN;
    char *why = malloc(whylen), again[CONDUIT__RDV_WHY_LEN];
    struct conduit__rdv_reply rep, made;
    int refusal = -1, again_refusal = -1, rc;

    if (!why) {
        abort();
    }
    fuzz_bytes(in, &rep, sizeof(rep));
    memset(why, 'X', whylen);
    rc = conduit__rdv_reply_parse(&rep, &refusal, why, whylen);
    if (rep.magic != CONDUIT__RDV_REP_MAGIC || rep.version != CONDUIT__RDV_VERSION) {
        FUZZ_CHECK(rc == -CONDUIT_EPROTO, "malformed answer taken (rc %d)", rc);
        free(why);
        return;
    }
    FUZZ_CHECK(rc == 0, "well-formed answer: rc %d", rc);
    FUZZ_CHECK((refusal == 0) == (rep.status == 0), "status %d: refusal %d", (int)rep.status,
               refusal);
    if (refusal) {
        size_t n = strnlen(rep.why, sizeof(rep.why));

        FUZZ_CHECK(refusal > 0 && refusal < CONDUIT_ERRNO_MAX && refusal != CONDUIT_EAGAIN,
                   "status %d reported as %d", (int)rep.status, refusal);
        FUZZ_CHECK(rep.status == refusal || refusal == CONDUIT_EIO, "status %d reported as %d",
                   (int)rep.status, refusal);
        FUZZ_CHECK(printable_z(why, whylen), "reason not printable or not terminated");
        FUZZ_CHECK(why[0] || whylen == 1, "a refusal without a reason");
        FUZZ_CHECK(n == 0 || strlen(why) == (n < whylen - 1 ? n : whylen - 1),
                   "reason of %zu bytes from %zu", strlen(why), n);
        /* Our server's answer with that code and reason reads the same. */
        conduit__rdv_reply_make(&made, refusal, why);
        FUZZ_CHECK(conduit__rdv_reply_parse(&made, &again_refusal, again, sizeof(again)) == 0 &&
                       again_refusal == refusal && (!why[0] || strcmp(again, why) == 0),
                   "our own refusal %d '%s' read back as %d '%s'", refusal, why, again_refusal,
                   again);
    }
    free(why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char tags[] = "dnrqa";
    struct fuzz_in in = fuzz_in(data, size);
    uint8_t tag = fuzz_u8(&in);
    const char *t = tag ? memchr(tags, tag, sizeof(tags) - 1) : NULL;

    switch (t ? t - tags : tag % 5) {
    case 0:
        check_domid(&in);
        break;
    case 1:
        check_request_name(&in);
        break;
    case 2:
        check_refusal(&in);
        break;
    case 3:
        check_request(&in);
        break;
    default:
        check_reply(&in);
        break;
    }
    return 0;
}
