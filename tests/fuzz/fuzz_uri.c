/* SPDX-License-Identifier: ISC */
/*
 * fuzz_uri: conduit_uri_parse and conduit_timeout_parse on arbitrary text.
 *
 * The input, up to its first NUL, is the URI (corpus files are plain text).
 * It is parsed as a connect URI and as a listen URI. Invariants:
 * - failure: a known code, *out NULL, a non-empty message; a short error
 *   buffer gets the same code and a NUL-terminated prefix of the message,
 *   never a byte more than it was given (ASan: buffers are exact-size);
 * - success: every field within the limits conduit.h promises, fields of
 *   other transports and layers empty, option bits matching the values;
 * - a valid connect URI is a valid listen URI with the same fields;
 * - printing the parsed URI back in canonical form and parsing that gives
 *   the same fields (nothing the parser accepts is lost or changed).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conduit.h"
#include "libconduit/internal/uri.h" /* the fields behind the accessors */
#include "fuzz.h"

#define ERR_LEN 512

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool port_chars_ok(const char *s, size_t max)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            return false;
        }
    }
    return n >= 1 && n <= max;
}

static void check_fields(const struct conduit_uri *u, unsigned flags, const char *text)
{
    const unsigned tls_bits = CONDUIT_URI_OPT_CA | CONDUIT_URI_OPT_CERT |
                              CONDUIT_URI_OPT_SERVERNAME | CONDUIT_URI_OPT_VERIFY;
    const unsigned sodium_bits = CONDUIT_URI_OPT_PEER | CONDUIT_URI_OPT_PEERS;
    const unsigned vchan_bits = CONDUIT_URI_OPT_READ_SIZE | CONDUIT_URI_OPT_WRITE_SIZE;
    const unsigned all_bits = tls_bits | sodium_bits | vchan_bits | CONDUIT_URI_OPT_KEY |
                              CONDUIT_URI_OPT_TIMEOUT | CONDUIT_URI_OPT_CONNECT_TIMEOUT;

    FUZZ_CHECK(u->listen == ((flags & CONDUIT_URI_LISTEN) != 0), "'%s': listen flag", text);
    FUZZ_CHECK(u->layer == CONDUIT_LAYER_NONE || u->layer == CONDUIT_LAYER_TLS ||
                   u->layer == CONDUIT_LAYER_SODIUM,
               "'%s': layer %d", text, (int)u->layer);
    FUZZ_CHECK((u->options & ~all_bits) == 0, "'%s': unknown option bits %#x", text, u->options);
    FUZZ_CHECK(u->layer == CONDUIT_LAYER_TLS || (u->options & tls_bits) == 0,
               "'%s': tls options without the tls layer", text);
    FUZZ_CHECK(u->layer == CONDUIT_LAYER_SODIUM || (u->options & sodium_bits) == 0,
               "'%s': sodium options without the sodium layer", text);
    FUZZ_CHECK(u->layer != CONDUIT_LAYER_NONE || (u->options & CONDUIT_URI_OPT_KEY) == 0,
               "'%s': key= without a layer", text);
    FUZZ_CHECK(!!u->sodium.peer == !!(u->options & CONDUIT_URI_OPT_PEER) &&
                   !!u->sodium.peers == !!(u->options & CONDUIT_URI_OPT_PEERS),
               "'%s': sodium strings and option bits disagree", text);
    FUZZ_CHECK(!u->sodium.peer || strlen(u->sodium.peer) >= 44,
               "'%s': a peer key shorter than a key", text);
    FUZZ_CHECK((u->connect_timeout_ms != 0) ==
                       ((u->options & CONDUIT_URI_OPT_CONNECT_TIMEOUT) != 0) &&
                   u->connect_timeout_ms >= 0 &&
                   u->connect_timeout_ms <= CONDUIT_TIMEOUT_MAX_S * 1000,
               "'%s': connect timeout %d ms", text, u->connect_timeout_ms);

    switch (u->transport) {
    case CONDUIT_TRANSPORT_TCP:
        FUZZ_CHECK(u->tcp.port >= 1, "'%s': tcp port 0", text);
        FUZZ_CHECK(u->tcp.host || u->listen, "'%s': any-address host in a connect URI", text);
        if (u->tcp.host) {
            FUZZ_CHECK(u->tcp.host[0] && !strpbrk(u->tcp.host, "[]/?#&"), "'%s': tcp host '%s'",
                       text, u->tcp.host);
        }
        break;
    case CONDUIT_TRANSPORT_UNIX:
        FUZZ_CHECK(u->un.path && u->un.path[0] == '/' &&
                       strlen(u->un.path) <= CONDUIT_UNIX_PATH_MAX,
                   "'%s': unix path", text);
        break;
    case CONDUIT_TRANSPORT_VCHAN:
        FUZZ_CHECK(u->vchan.port && port_chars_ok(u->vchan.port, 64), "'%s': vchan port", text);
        if (u->vchan.domid == CONDUIT_DOMID_ANY) {
            FUZZ_CHECK(u->listen, "'%s': domain '*' in a connect URI", text);
        } else if (u->vchan.domid == CONDUIT_DOMID_NAMED) {
            const char *n = u->vchan.domain_name;
            FUZZ_CHECK(n && n[0] && strlen(n) <= CONDUIT_DOMAIN_NAME_MAX &&
                           strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_.-") == strlen(n),
                       "'%s': domain name", text);
        } else {
            FUZZ_CHECK(u->vchan.domid >= 0 && u->vchan.domid <= 32751, "'%s': domid %d", text,
                       u->vchan.domid);
        }
        FUZZ_CHECK(u->vchan.domid == CONDUIT_DOMID_NAMED || !u->vchan.domain_name,
                   "'%s': a domain name beside a domid", text);
        FUZZ_CHECK((u->vchan.read_size != 0) == ((u->options & CONDUIT_URI_OPT_READ_SIZE) != 0) &&
                       u->vchan.read_size <= CONDUIT_RING_SIZE_MAX,
                   "'%s': read-size %zu", text, u->vchan.read_size);
        FUZZ_CHECK((u->vchan.write_size != 0) == ((u->options & CONDUIT_URI_OPT_WRITE_SIZE) != 0) &&
                       u->vchan.write_size <= CONDUIT_RING_SIZE_MAX,
                   "'%s': write-size %zu", text, u->vchan.write_size);
        break;
    default:
        FUZZ_CHECK(0, "'%s': transport %d", text, (int)u->transport);
    }
    /* Fields of the other transports stay empty. */
    if (u->transport != CONDUIT_TRANSPORT_TCP) {
        FUZZ_CHECK(!u->tcp.host && u->tcp.port == 0, "'%s': tcp fields set", text);
    }
    if (u->transport != CONDUIT_TRANSPORT_UNIX) {
        FUZZ_CHECK(!u->un.path, "'%s': unix path set", text);
    }
    if (u->transport != CONDUIT_TRANSPORT_VCHAN) {
        FUZZ_CHECK(!u->vchan.port && !u->vchan.domain_name && u->vchan.domid == 0 &&
                       (u->options & vchan_bits) == 0,
                   "'%s': vchan fields set", text);
    }
    FUZZ_CHECK((u->timeout_ms != 0) == ((u->options & CONDUIT_URI_OPT_TIMEOUT) != 0) &&
                   u->timeout_ms >= 0 && u->timeout_ms <= CONDUIT_TIMEOUT_MAX_S * 1000,
               "'%s': timeout %d ms", text, u->timeout_ms);
    FUZZ_CHECK(!!u->tls.ca == !!(u->options & CONDUIT_URI_OPT_CA) &&
                   !!u->tls.cert == !!(u->options & CONDUIT_URI_OPT_CERT) &&
                   !!u->tls.key == !!(u->options & CONDUIT_URI_OPT_KEY) &&
                   !!u->tls.servername == !!(u->options & CONDUIT_URI_OPT_SERVERNAME),
               "'%s': tls strings and option bits disagree", text);
    FUZZ_CHECK(u->tls.verify || (u->options & CONDUIT_URI_OPT_VERIFY),
               "'%s': verify off without verify=", text);
}

static bool same_fields(const struct conduit_uri *a, const struct conduit_uri *b)
{
    return a->layer == b->layer && a->transport == b->transport && a->listen == b->listen &&
           str_eq(a->tcp.host, b->tcp.host) && a->tcp.port == b->tcp.port &&
           str_eq(a->un.path, b->un.path) && a->vchan.domid == b->vchan.domid &&
           str_eq(a->vchan.domain_name, b->vchan.domain_name) &&
           str_eq(a->vchan.port, b->vchan.port) && a->vchan.read_size == b->vchan.read_size &&
           a->vchan.write_size == b->vchan.write_size && a->options == b->options &&
           a->timeout_ms == b->timeout_ms && str_eq(a->tls.ca, b->tls.ca) &&
           str_eq(a->tls.cert, b->tls.cert) && str_eq(a->tls.key, b->tls.key) &&
           str_eq(a->tls.servername, b->tls.servername) && a->tls.verify == b->tls.verify &&
           a->connect_timeout_ms == b->connect_timeout_ms &&
           str_eq(a->sodium.peer, b->sodium.peer) && str_eq(a->sodium.peers, b->sodium.peers);
}

/* ------------------------------------------------------------ canonical form */

struct out {
    char *buf;
    size_t len, cap;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n >= o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Percent-encode what would end or change the part: controls, '%', and `special`. */
static void put_enc(struct out *o, const char *s, const char *special)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7f || c == '%' || c == '#' || strchr(special, c)) {
            char e[4];
            snprintf(e, sizeof(e), "%%%02X", c);
            put(o, e, 3);
        } else {
            put(o, s, 1);
        }
    }
}

static void put_opt(struct out *o, bool *first, const char *name, const char *value)
{
    puts_(o, *first ? "?" : "&");
    *first = false;
    puts_(o, name);
    puts_(o, "=");
    put_enc(o, value, "&");
}

static void format_uri(const struct conduit_uri *u, struct out *o)
{
    char num[64];
    bool first = true;

    if (u->layer != CONDUIT_LAYER_NONE) {
        puts_(o, conduit_layer_name(u->layer));
        puts_(o, "+");
    }
    puts_(o, conduit_transport_name(u->transport));
    puts_(o, "://");
    switch (u->transport) {
    case CONDUIT_TRANSPORT_TCP:
        if (!u->tcp.host) {
            puts_(o, "*");
        } else if (strchr(u->tcp.host, ':')) {
            const char *zone = strchr(u->tcp.host, '%');
            puts_(o, "[");
            put(o, u->tcp.host, zone ? (size_t)(zone - u->tcp.host) : strlen(u->tcp.host));
            if (zone) {
                puts_(o, "%25");
                puts_(o, zone + 1);
            }
            puts_(o, "]");
        } else {
            puts_(o, u->tcp.host);
        }
        snprintf(num, sizeof(num), ":%u", (unsigned)u->tcp.port);
        puts_(o, num);
        break;
    case CONDUIT_TRANSPORT_UNIX:
        put_enc(o, u->un.path, "?");
        break;
    case CONDUIT_TRANSPORT_VCHAN:
        if (u->vchan.domid == CONDUIT_DOMID_ANY) {
            puts_(o, "*");
        } else if (u->vchan.domid == CONDUIT_DOMID_NAMED) {
            puts_(o, u->vchan.domain_name);
        } else {
            snprintf(num, sizeof(num), "%d", u->vchan.domid);
            puts_(o, num);
        }
        puts_(o, "/");
        puts_(o, u->vchan.port);
        break;
    }
    if (u->options & CONDUIT_URI_OPT_TIMEOUT) {
        snprintf(num, sizeof(num), "%d.%03d", u->timeout_ms / 1000, u->timeout_ms % 1000);
        put_opt(o, &first, "timeout", num);
    }
    if (u->options & CONDUIT_URI_OPT_CONNECT_TIMEOUT) {
        snprintf(num, sizeof(num), "%d.%03d", u->connect_timeout_ms / 1000,
                 u->connect_timeout_ms % 1000);
        put_opt(o, &first, "connect-timeout", num);
    }
    if (u->options & CONDUIT_URI_OPT_READ_SIZE) {
        snprintf(num, sizeof(num), "%zu", u->vchan.read_size);
        put_opt(o, &first, "read-size", num);
    }
    if (u->options & CONDUIT_URI_OPT_WRITE_SIZE) {
        snprintf(num, sizeof(num), "%zu", u->vchan.write_size);
        put_opt(o, &first, "write-size", num);
    }
    if (u->tls.ca) {
        put_opt(o, &first, "ca", u->tls.ca);
    }
    if (u->tls.cert) {
        put_opt(o, &first, "cert", u->tls.cert);
    }
    if (u->tls.key) {
        put_opt(o, &first, "key", u->tls.key);
    }
    if (u->tls.servername) {
        put_opt(o, &first, "servername", u->tls.servername);
    }
    if (u->options & CONDUIT_URI_OPT_VERIFY) {
        put_opt(o, &first, "verify", u->tls.verify ? "1" : "0");
    }
    if (u->sodium.peer) {
        put_opt(o, &first, "peer", u->sodium.peer);
    }
    if (u->sodium.peers) {
        put_opt(o, &first, "peers", u->sodium.peers);
    }
}

static void check_round_trip(const struct conduit_uri *u, unsigned flags, const char *text)
{
    struct out o = {.cap = CONDUIT_URI_MAX + 1};
    struct conduit_uri *again = NULL;
    char err[ERR_LEN];
    int rc;

    o.buf = malloc(o.cap);
    if (!o.buf) {
        return;
    }
    o.buf[0] = '\0';
    format_uri(u, &o);
    /* Escaping can make a long URI longer than the limit: nothing to compare then. */
    if (!o.overflow) {
        rc = conduit_uri_parse(o.buf, flags, &again, err, sizeof(err));
        FUZZ_CHECK(rc == 0, "'%s' parsed, but its canonical form '%s' did not: %s", text, o.buf,
                   err);
        FUZZ_CHECK(same_fields(u, again), "'%s' and its canonical form '%s' differ", text, o.buf);
        conduit_uri_free(again);
    }
    free(o.buf);
}

/* ------------------------------------------------------------ the target */

static bool known_code(int rc)
{
    return rc == -CONDUIT_ENOMEM || rc == -CONDUIT_ESYNTAX || rc == -CONDUIT_ESCHEME ||
           rc == -CONDUIT_EOPTION || rc == -CONDUIT_ERANGE || rc == -CONDUIT_EWILDCARD;
}

static int parse_checked(const char *text, unsigned flags, struct conduit_uri **out, size_t small)
{
    char *err = malloc(ERR_LEN);
    char *tiny;
    struct conduit_uri *u2 = NULL;
    int rc, rc2;

    if (!err) {
        abort();
    }
    memset(err, 'x', ERR_LEN);
    rc = conduit_uri_parse(text, flags, out, err, ERR_LEN);
    if (rc == 0) {
        FUZZ_CHECK(*out != NULL, "'%s': success without a result", text);
        check_fields(*out, flags, text);
        free(err);
        return 0;
    }
    FUZZ_CHECK(known_code(rc), "'%s': unexpected code %d (%s)", text, rc, conduit_errname(rc));
    FUZZ_CHECK(*out == NULL, "'%s': failure left a result", text);
    FUZZ_CHECK(memchr(err, '\0', ERR_LEN) != NULL && err[0] != '\0',
               "'%s': failure (%s) without a message", text, conduit_errname(rc));

    /* A short buffer: same code, a NUL-terminated prefix, nothing written past it. */
    tiny = malloc(small);
    if (!tiny) {
        abort();
    }
    memset(tiny, 'x', small);
    rc2 = conduit_uri_parse(text, flags, &u2, tiny, small);
    FUZZ_CHECK(rc2 == rc && !u2, "'%s': %d with a short buffer, %d with a long one", text, rc2, rc);
    FUZZ_CHECK(memchr(tiny, '\0', small) != NULL && strncmp(tiny, err, strlen(tiny)) == 0,
               "'%s': truncated message is not a prefix of '%s'", text, err);
    /* No buffer at all. */
    rc2 = conduit_uri_parse(text, flags, &u2, NULL, 0);
    FUZZ_CHECK(rc2 == rc && !u2, "'%s': %d without a buffer, %d with one", text, rc2, rc);
    free(tiny);
    free(err);
    return rc;
}

static void fuzz_timeout(const char *text)
{
    char err[ERR_LEN] = "";
    int ms = -1, rc;

    rc = conduit_timeout_parse(text, &ms, err, sizeof(err));
    if (rc == 0) {
        char again[32];
        int ms2 = -1;

        FUZZ_CHECK(ms >= 1 && ms <= CONDUIT_TIMEOUT_MAX_S * 1000, "timeout '%s' gave %d ms", text,
                   ms);
        snprintf(again, sizeof(again), "%d.%03d", ms / 1000, ms % 1000);
        FUZZ_CHECK(conduit_timeout_parse(again, &ms2, NULL, 0) == 0 && ms2 == ms,
                   "timeout '%s' = %d ms, but '%s' = %d ms", text, ms, again, ms2);
    } else {
        FUZZ_CHECK((rc == -CONDUIT_ESYNTAX || rc == -CONDUIT_ERANGE) && err[0] != '\0',
                   "timeout '%s': code %d, message '%s'", text, rc, err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact size plus the NUL, so a read past the text is an ASan report. */
    char *text = malloc(size + 1);
    struct conduit_uri *uc = NULL, *ul = NULL;
    size_t small = 1 + (size * 7 + (size ? data[0] : 0)) % 24;
    int rc_connect, rc_listen;

    if (!text) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';

    rc_connect = parse_checked(text, 0, &uc, small);
    rc_listen = parse_checked(text, CONDUIT_URI_LISTEN, &ul, small);
    if (rc_connect == 0) {
        FUZZ_CHECK(rc_listen == 0, "'%s' is a valid connect URI but not a valid listen URI", text);
        ul->listen = false;
        FUZZ_CHECK(same_fields(uc, ul), "'%s': connect and listen parses differ", text);
        ul->listen = true;
        check_round_trip(uc, 0, text);
    }
    if (rc_listen == 0) {
        check_round_trip(ul, CONDUIT_URI_LISTEN, text);
    }
    conduit_uri_free(uc);
    conduit_uri_free(ul);
    /* Short inputs double as -w / timeout= values. */
    if (size <= 32) {
        fuzz_timeout(text);
    }
    free(text);
    return 0;
}
