/* SPDX-License-Identifier: ISC */
/*
 * Endpoint URI parser. Strict on purpose: everything that can be decided
 * without I/O is decided here, so a typo is a usage error with a message
 * naming the bad part rather than a connection that fails later.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conduit.h"
#include "libconduit/internal/uri.h"
#include "libconduit/layer/sodium_keys.h"
#include "vchan.h"

_Static_assert(CONDUIT_RING_SIZE_MAX == VCHAN_MAX_RING_SIZE, "ring size limits agree");
_Static_assert(CONDUIT_TIMEOUT_MAX_S <= 2147483, "timeout in ms fits an int");

CONDUIT_EXPORT const char *conduit_layer_name(enum conduit_layer layer)
{
    switch (layer) {
    case CONDUIT_LAYER_NONE:
        return "";
    case CONDUIT_LAYER_TLS:
        return "tls";
    case CONDUIT_LAYER_SODIUM:
        return "sodium";
    }
    return "?";
}

CONDUIT_EXPORT const char *conduit_transport_name(enum conduit_transport transport)
{
    switch (transport) {
    case CONDUIT_TRANSPORT_TCP:
        return "tcp";
    case CONDUIT_TRANSPORT_UNIX:
        return "unix";
    case CONDUIT_TRANSPORT_VCHAN:
        return "vchan";
    }
    return "?";
}

/* ------------------------------------------------------------ helpers */

struct parser {
    char *err;
    size_t errlen;
    struct conduit_uri *u;
};

#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))

static int fail(struct parser *p, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);

static int fail(struct parser *p, int code, const char *fmt, ...)
{
    if (p->errlen > 0) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
    }
    return -code;
}

/*
 * Quote a piece of user text for a message: the text is the user's own, but
 * a terminal should not receive its control bytes, and a 4 KiB path should
 * not drown the message. Always NUL-terminates `out`.
 */
#define QUOTE_MAX 80
#define QUOTE_BUF (QUOTE_MAX * 4 + 8)

static const char *quote(char out[QUOTE_BUF], const char *s, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (i == QUOTE_MAX) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c == 0x7f || c == '\\') {
            o += (size_t)snprintf(out + o, QUOTE_BUF - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return out;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
    return is_digit(c) || is_alpha(c);
}

static int hex_value(char c)
{
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool all_digits(const char *s, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i])) {
            return false;
        }
    }
    return true;
}

/* ASCII-only, so the locale cannot change what a scheme means. */
static bool token_equal(const char *s, size_t len, const char *lower)
{
    size_t i;

    for (i = 0; i < len; i++) {
        char c = s[i];

        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (lower[i] == '\0' || c != lower[i]) {
            return false;
        }
    }
    return lower[i] == '\0';
}

/*
 * Parse len decimal digits into *value, refusing anything above max. The
 * caller has checked they are all digits; strtoul would accept a sign or
 * leading blanks, so it only ever sees checked text, with errno checked too.
 */
static bool parse_decimal(const char *s, size_t len, unsigned long max, unsigned long *value)
{
    char buf[32];
    char *end;
    unsigned long v;

    if (!all_digits(s, len)) {
        return false;
    }
    /* Leading zeros carry no value; skip them so long runs still fit. */
    while (len > 1 && s[0] == '0') {
        s++;
        len--;
    }
    if (len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtoul(buf, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return false;
    }
    *value = v;
    return true;
}

static char *dup_range(const char *s, size_t len)
{
    char *d = malloc(len + 1);

    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/*
 * Percent-decode s[0..len) into a new string. `what` names the part for
 * messages ("option 'ca'", "unix path").
 */
static int decode(struct parser *p, const char *s, size_t len, const char *what, char **out)
{
    char q[QUOTE_BUF];
    char *d = malloc(len + 1);
    size_t o = 0;

    *out = NULL;
    if (d == NULL) {
        return fail(p, CONDUIT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            d[o++] = s[i];
            continue;
        }
        int hi = i + 1 < len ? hex_value(s[i + 1]) : -1;
        int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;

        if (hi < 0 || lo < 0) {
            size_t n = len - i < 3 ? len - i : 3;

            free(d);
            return fail(p, CONDUIT_ESYNTAX, "malformed percent-escape '%s' in %s",
                        quote(q, s + i, n), what);
        }
        if (hi == 0 && lo == 0) {
            free(d);
            return fail(p, CONDUIT_ESYNTAX, "%s contains an encoded NUL byte (%%00)", what);
        }
        d[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    d[o] = '\0';
    *out = d;
    return 0;
}

/*
 * A DNS name as a host or TLS server name: labels of [A-Za-z0-9_-] (the
 * underscore appears in real service names), 1-63 bytes, not starting or
 * ending with '-', at most 253 bytes, one trailing dot allowed. A name made
 * only of digits and dots is taken as an IPv4 address and must be one: no
 * top-level domain is numeric, and "10.1" meaning 10.0.0.1 is a trap.
 */
static int check_host_name(struct parser *p, const char *s, size_t len, const char *what)
{
    char q[QUOTE_BUF];
    size_t label = 0;
    bool numeric = true;

    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]) && s[i] != '.') {
            numeric = false;
        }
    }
    if (numeric) {
        char buf[INET_ADDRSTRLEN];
        struct in_addr a;

        if (len >= sizeof(buf)) {
            return fail(p, CONDUIT_ESYNTAX, "bad IPv4 address '%s' in %s", quote(q, s, len), what);
        }
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (inet_pton(AF_INET, buf, &a) != 1) {
            return fail(p, CONDUIT_ESYNTAX, "bad IPv4 address '%s' in %s", quote(q, s, len), what);
        }
        return 0;
    }
    if (len > 253 + 1 || (len == 254 && s[253] != '.')) {
        return fail(p, CONDUIT_ESYNTAX, "%s '%s' is longer than 253 bytes", what, quote(q, s, len));
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (c == '.') {
            if (label == 0) {
                return fail(p, CONDUIT_ESYNTAX, "%s '%s' has an empty label", what,
                            quote(q, s, len));
            }
            if (s[i - 1] == '-') {
                return fail(p, CONDUIT_ESYNTAX, "%s '%s' has a label ending in '-'", what,
                            quote(q, s, len));
            }
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-' && c != '_') {
            return fail(p, CONDUIT_ESYNTAX, "%s '%s' has a character outside [A-Za-z0-9._-]", what,
                        quote(q, s, len));
        }
        if (label == 0 && c == '-') {
            return fail(p, CONDUIT_ESYNTAX, "%s '%s' has a label starting with '-'", what,
                        quote(q, s, len));
        }
        if (++label > 63) {
            return fail(p, CONDUIT_ESYNTAX, "%s '%s' has a label longer than 63 bytes", what,
                        quote(q, s, len));
        }
    }
    if (label > 0 && s[len - 1] == '-') {
        return fail(p, CONDUIT_ESYNTAX, "%s '%s' has a label ending in '-'", what,
                    quote(q, s, len));
    }
    return 0;
}

/* ------------------------------------------------------------ addresses */

static int parse_port(struct parser *p, const char *s, size_t len)
{
    char q[QUOTE_BUF];
    unsigned long v;

    if (len == 0) {
        return fail(p, CONDUIT_ESYNTAX, "empty port in tcp address (host:port)");
    }
    if (!all_digits(s, len)) {
        return fail(p, CONDUIT_ESYNTAX, "port '%s' is not a number", quote(q, s, len));
    }
    if (!parse_decimal(s, len, 65535, &v) || v == 0) {
        return fail(p, CONDUIT_ERANGE, "port %s out of range (1-65535)", quote(q, s, len));
    }
    p->u->tcp.port = (uint16_t)v;
    return 0;
}

/* "[v6addr]" or "[v6addr%25zone]" (RFC 6874), without the brackets. */
static int parse_ipv6(struct parser *p, const char *s, size_t len)
{
    char q[QUOTE_BUF];
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;
    size_t alen = len;
    const char *zone = NULL;
    size_t zlen = 0;
    char *host;

    if (len == 0) {
        return fail(p, CONDUIT_ESYNTAX, "empty IPv6 address in '[]'");
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (len - i < 3 || s[i + 1] != '2' || s[i + 2] != '5') {
                return fail(p, CONDUIT_ESYNTAX,
                            "IPv6 zone in '[%s]' must be written %%25ZONE (RFC 6874)",
                            quote(q, s, len));
            }
            alen = i;
            zone = s + i + 3;
            zlen = len - i - 3;
            break;
        }
    }
    if (alen >= sizeof(buf)) {
        return fail(p, CONDUIT_ESYNTAX, "bad IPv6 address '[%s]'", quote(q, s, len));
    }
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET6, buf, &a) != 1) {
        return fail(p, CONDUIT_ESYNTAX, "bad IPv6 address '[%s]'", quote(q, s, len));
    }
    if (zone != NULL) {
        if (zlen == 0) {
            return fail(p, CONDUIT_ESYNTAX, "empty IPv6 zone in '[%s]'", quote(q, s, len));
        }
        for (size_t i = 0; i < zlen; i++) {
            if (!is_alnum(zone[i]) && zone[i] != '.' && zone[i] != '_' && zone[i] != '-') {
                return fail(p, CONDUIT_ESYNTAX,
                            "IPv6 zone in '[%s]' has a character outside [A-Za-z0-9._-]",
                            quote(q, s, len));
            }
        }
    }
    /* Keep the form getaddrinfo takes: "addr%zone". */
    host = malloc(alen + (zone != NULL ? 1 + zlen : 0) + 1);
    if (host == NULL) {
        return fail(p, CONDUIT_ENOMEM, "out of memory");
    }
    memcpy(host, s, alen);
    if (zone != NULL) {
        host[alen] = '%';
        memcpy(host + alen + 1, zone, zlen);
        alen += 1 + zlen;
    }
    host[alen] = '\0';
    p->u->tcp.host = host;
    return 0;
}

static int parse_tcp(struct parser *p, const char *s, size_t len)
{
    char q[QUOTE_BUF];
    const char *colon;
    int r;

    if (len == 0) {
        return fail(p, CONDUIT_ESYNTAX, "empty tcp address (host:port)");
    }
    if (memchr(s, '/', len) != NULL) {
        return fail(p, CONDUIT_ESYNTAX, "tcp address '%s' has a path; tcp takes host:port",
                    quote(q, s, len));
    }
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        size_t after;

        if (close == NULL) {
            return fail(p, CONDUIT_ESYNTAX, "unterminated '[' in tcp address '%s'",
                        quote(q, s, len));
        }
        r = parse_ipv6(p, s + 1, (size_t)(close - s - 1));
        if (r < 0) {
            return r;
        }
        after = (size_t)(close - s) + 1;
        if (after == len) {
            return fail(p, CONDUIT_ESYNTAX, "missing port in tcp address '%s' (host:port)",
                        quote(q, s, len));
        }
        if (s[after] != ':') {
            return fail(p, CONDUIT_ESYNTAX, "expected ':' after ']' in tcp address '%s'",
                        quote(q, s, len));
        }
        return parse_port(p, s + after + 1, len - after - 1);
    }

    colon = memchr(s, ':', len);
    if (colon == NULL) {
        return fail(p, CONDUIT_ESYNTAX, "missing port in tcp address '%s' (host:port)",
                    quote(q, s, len));
    }
    if (memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) != NULL) {
        return fail(p, CONDUIT_ESYNTAX,
                    "tcp address '%s' has several ':'; an IPv6 address goes in brackets: "
                    "[ADDR]:PORT",
                    quote(q, s, len));
    }
    size_t hlen = (size_t)(colon - s);

    if (hlen == 0) {
        return fail(p, CONDUIT_ESYNTAX, "empty host in tcp address '%s'", quote(q, s, len));
    }
    if (hlen == 1 && s[0] == '*') {
        if (!p->u->listen) {
            return fail(p, CONDUIT_EWILDCARD, "host '*' (any address) is only valid for listen");
        }
        p->u->tcp.host = NULL;
    } else {
        r = check_host_name(p, s, hlen, "host");
        if (r < 0) {
            return r;
        }
        p->u->tcp.host = dup_range(s, hlen);
        if (p->u->tcp.host == NULL) {
            return fail(p, CONDUIT_ENOMEM, "out of memory");
        }
    }
    return parse_port(p, colon + 1, len - hlen - 1);
}

static int parse_unix(struct parser *p, const char *s, size_t len)
{
    char q[QUOTE_BUF];
    char *path;
    size_t plen;
    int r;

    if (len == 0) {
        return fail(p, CONDUIT_ESYNTAX, "empty unix path (unix:///PATH)");
    }
    r = decode(p, s, len, "unix path", &path);
    if (r < 0) {
        return r;
    }
    plen = strlen(path);
    if (path[0] != '/') {
        fail(p, CONDUIT_ESYNTAX, "unix path '%s' is not absolute (unix:///PATH)",
             quote(q, path, plen));
        free(path);
        return -CONDUIT_ESYNTAX;
    }
    if (plen > CONDUIT_UNIX_PATH_MAX) {
        fail(p, CONDUIT_ERANGE, "unix path '%s' is %zu bytes, longer than %d", quote(q, path, plen),
             plen, CONDUIT_UNIX_PATH_MAX);
        free(path);
        return -CONDUIT_ERANGE;
    }
    p->u->un.path = path;
    return 0;
}

static int parse_vchan_domain(struct parser *p, const char *s, size_t len)
{
    char q[QUOTE_BUF];
    unsigned long v;

    if (len == 1 && s[0] == '*') {
        if (!p->u->listen) {
            return fail(p, CONDUIT_EWILDCARD, "domain '*' (any domain) is only valid for listen");
        }
        p->u->vchan.domid = CONDUIT_DOMID_ANY;
        return 0;
    }
    if (all_digits(s, len)) {
        if (!parse_decimal(s, len, VCHAN_DOMID_MAX, &v)) {
            return fail(p, CONDUIT_ERANGE, "domain %s out of range (0-%d)", quote(q, s, len),
                        VCHAN_DOMID_MAX);
        }
        p->u->vchan.domid = (int)v;
        return 0;
    }
    /*
     * A domain name, resolved later through xenstore. Xen itself allows
     * almost any name; we take the characters names are made of in
     * practice, which keeps '/', '?' and '%' out and needs no escapes.
     */
    if (!is_alnum(s[0])) {
        return fail(p, CONDUIT_ESYNTAX,
                    "domain '%s' is neither a domid (0-%d) nor a domain name "
                    "(starting with a letter or digit)",
                    quote(q, s, len), VCHAN_DOMID_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.') {
            return fail(p, CONDUIT_ESYNTAX,
                        "domain name '%s' has a character outside [A-Za-z0-9_.-]",
                        quote(q, s, len));
        }
    }
    if (len > CONDUIT_DOMAIN_NAME_MAX) {
        return fail(p, CONDUIT_ERANGE, "domain name '%s' is longer than %d bytes", quote(q, s, len),
                    CONDUIT_DOMAIN_NAME_MAX);
    }
    p->u->vchan.domid = CONDUIT_DOMID_NAMED;
    p->u->vchan.domain_name = dup_range(s, len);
    if (p->u->vchan.domain_name == NULL) {
        return fail(p, CONDUIT_ENOMEM, "out of memory");
    }
    return 0;
}

static int parse_vchan(struct parser *p, const char *s, size_t len)
{
    char q[QUOTE_BUF];
    const char *slash = memchr(s, '/', len);
    const char *port;
    size_t dlen, plen;
    int r;

    if (len == 0) {
        return fail(p, CONDUIT_ESYNTAX, "empty vchan address (DOMAIN/PORT)");
    }
    if (slash == NULL) {
        return fail(p, CONDUIT_ESYNTAX, "vchan address '%s' has no '/' (DOMAIN/PORT)",
                    quote(q, s, len));
    }
    dlen = (size_t)(slash - s);
    port = slash + 1;
    plen = len - dlen - 1;
    if (dlen == 0) {
        return fail(p, CONDUIT_ESYNTAX, "empty domain in vchan address '%s' (DOMAIN/PORT)",
                    quote(q, s, len));
    }
    if (plen == 0) {
        return fail(p, CONDUIT_ESYNTAX, "empty vchan port in vchan address '%s' (DOMAIN/PORT)",
                    quote(q, s, len));
    }
    r = parse_vchan_domain(p, s, dlen);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < plen; i++) {
        if (!is_alnum(port[i]) && port[i] != '_' && port[i] != '-') {
            return fail(p, CONDUIT_ESYNTAX, "vchan port '%s' has a character outside [A-Za-z0-9_-]",
                        quote(q, port, plen));
        }
    }
    if (plen > VCHAN_PORT_MAX) {
        return fail(p, CONDUIT_ERANGE, "vchan port '%s' is longer than %d characters",
                    quote(q, port, plen), VCHAN_PORT_MAX);
    }
    p->u->vchan.port = dup_range(port, plen);
    if (p->u->vchan.port == NULL) {
        return fail(p, CONDUIT_ENOMEM, "out of memory");
    }
    return 0;
}

/* ------------------------------------------------------------ options */

/* Seconds: digits, optionally '.' and 1-3 more digits. */
static int parse_seconds(struct parser *p, const char *name, const char *s, int *ms)
{
    char q[QUOTE_BUF];
    size_t len = strlen(s);
    const char *dot = strchr(s, '.');
    size_t ilen = dot != NULL ? (size_t)(dot - s) : len;
    size_t flen = dot != NULL ? len - ilen - 1 : 0;
    unsigned long whole, frac = 0;

    if (!all_digits(s, ilen) || (dot != NULL && !all_digits(dot + 1, flen))) {
        return fail(p, CONDUIT_ESYNTAX, "%s '%s' is not a number of seconds (like 30 or 0.5)", name,
                    quote(q, s, len));
    }
    if (flen > 3) {
        return fail(p, CONDUIT_ESYNTAX, "%s '%s' has more than 3 decimals (milliseconds)", name,
                    quote(q, s, len));
    }
    if (!parse_decimal(s, ilen, CONDUIT_TIMEOUT_MAX_S, &whole)) {
        goto range;
    }
    if (flen > 0) {
        (void)parse_decimal(dot + 1, flen, 999, &frac);
        for (size_t i = flen; i < 3; i++) {
            frac *= 10;
        }
    }
    if ((whole == 0 && frac == 0) || (whole == CONDUIT_TIMEOUT_MAX_S && frac > 0)) {
        goto range;
    }
    *ms = (int)(whole * 1000 + frac);
    return 0;
range:
    return fail(p, CONDUIT_ERANGE, "%s %s out of range (0.001-%d seconds)", name, quote(q, s, len),
                CONDUIT_TIMEOUT_MAX_S);
}

static int opt_timeout(struct parser *p, const char *v)
{
    return parse_seconds(p, "timeout", v, &p->u->timeout_ms);
}

static int opt_connect_timeout(struct parser *p, const char *v)
{
    return parse_seconds(p, "connect-timeout", v, &p->u->connect_timeout_ms);
}

static int parse_size(struct parser *p, const char *name, const char *s, size_t *out)
{
    char q[QUOTE_BUF];
    size_t len = strlen(s);
    unsigned long v;

    if (!all_digits(s, len)) {
        return fail(p, CONDUIT_ESYNTAX, "%s '%s' is not a number of bytes", name, quote(q, s, len));
    }
    if (!parse_decimal(s, len, CONDUIT_RING_SIZE_MAX, &v) || v == 0) {
        return fail(p, CONDUIT_ERANGE, "%s %s out of range (1-%u)", name, quote(q, s, len),
                    CONDUIT_RING_SIZE_MAX);
    }
    *out = v;
    return 0;
}

static int opt_read_size(struct parser *p, const char *v)
{
    return parse_size(p, "read-size", v, &p->u->vchan.read_size);
}

static int opt_write_size(struct parser *p, const char *v)
{
    return parse_size(p, "write-size", v, &p->u->vchan.write_size);
}

/* The value is already a decoded copy: keep it. */
static int opt_keep(char **field, char **v)
{
    *field = *v;
    *v = NULL;
    return 0;
}

static int opt_servername(struct parser *p, const char *v)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;
    size_t len = strlen(v);

    /* An IPv6 literal is verified against the certificate's IP entries. */
    if (strchr(v, ':') != NULL && len < sizeof(buf)) {
        memcpy(buf, v, len + 1);
        if (inet_pton(AF_INET6, buf, &a) == 1) {
            return 0;
        }
    }
    return check_host_name(p, v, len, "servername");
}

static int opt_verify(struct parser *p, const char *v)
{
    char q[QUOTE_BUF];

    if (strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0) {
        p->u->tls.verify = true;
        return 0;
    }
    if (strcmp(v, "0") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0) {
        p->u->tls.verify = false;
        return 0;
    }
    return fail(p, CONDUIT_EOPTION, "verify '%s' must be 1/0, yes/no or true/false",
                quote(q, v, strlen(v)));
}

enum opt_scope { SCOPE_ALL, SCOPE_TLS, SCOPE_KEY, SCOPE_SODIUM, SCOPE_VCHAN };

enum opt_id {
    OPT_TIMEOUT,
    OPT_CONNECT_TIMEOUT,
    OPT_READ_SIZE,
    OPT_WRITE_SIZE,
    OPT_CA,
    OPT_CERT,
    OPT_KEY,
    OPT_SERVERNAME,
    OPT_VERIFY,
    OPT_PEER,
    OPT_PEERS
};

static const struct opt_def {
    const char *name;
    enum opt_id id;
    unsigned bit;
    enum opt_scope scope;
} opt_defs[] = {
    {"timeout", OPT_TIMEOUT, CONDUIT_URI_OPT_TIMEOUT, SCOPE_ALL},
    {"connect-timeout", OPT_CONNECT_TIMEOUT, CONDUIT_URI_OPT_CONNECT_TIMEOUT, SCOPE_ALL},
    {"read-size", OPT_READ_SIZE, CONDUIT_URI_OPT_READ_SIZE, SCOPE_VCHAN},
    {"write-size", OPT_WRITE_SIZE, CONDUIT_URI_OPT_WRITE_SIZE, SCOPE_VCHAN},
    {"ca", OPT_CA, CONDUIT_URI_OPT_CA, SCOPE_TLS},
    {"cert", OPT_CERT, CONDUIT_URI_OPT_CERT, SCOPE_TLS},
    {"key", OPT_KEY, CONDUIT_URI_OPT_KEY, SCOPE_KEY},
    {"servername", OPT_SERVERNAME, CONDUIT_URI_OPT_SERVERNAME, SCOPE_TLS},
    {"verify", OPT_VERIFY, CONDUIT_URI_OPT_VERIFY, SCOPE_TLS},
    {"peer", OPT_PEER, CONDUIT_URI_OPT_PEER, SCOPE_SODIUM},
    {"peers", OPT_PEERS, CONDUIT_URI_OPT_PEERS, SCOPE_SODIUM},
};

static int parse_option(struct parser *p, const char *s, size_t len)
{
    char q[QUOTE_BUF], what[QUOTE_BUF + 16];
    const char *eq = memchr(s, '=', len);
    size_t nlen = eq != NULL ? (size_t)(eq - s) : len;
    const struct opt_def *def = NULL;
    char *value = NULL;
    int r;

    if (len == 0) {
        return fail(p, CONDUIT_ESYNTAX, "empty option (stray '&' or '?')");
    }
    if (nlen == 0) {
        return fail(p, CONDUIT_ESYNTAX, "option '%s' has no name", quote(q, s, len));
    }
    for (size_t i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++) {
        if (strlen(opt_defs[i].name) == nlen && memcmp(opt_defs[i].name, s, nlen) == 0) {
            def = &opt_defs[i];
            break;
        }
    }
    if (def == NULL) {
        return fail(p, CONDUIT_EOPTION, "unknown option '%s'", quote(q, s, nlen));
    }
    switch (def->scope) {
    case SCOPE_ALL:
        break;
    case SCOPE_TLS:
        if (p->u->layer != CONDUIT_LAYER_TLS) {
            return fail(p, CONDUIT_EOPTION, "option '%s' needs the tls layer (tls://, tls+%s://)",
                        def->name, conduit_transport_name(p->u->transport));
        }
        break;
    case SCOPE_KEY:
        if (p->u->layer == CONDUIT_LAYER_NONE) {
            return fail(p, CONDUIT_EOPTION,
                        "option 'key' needs the tls or sodium layer (tls+%s://, sodium+%s://)",
                        conduit_transport_name(p->u->transport),
                        conduit_transport_name(p->u->transport));
        }
        break;
    case SCOPE_SODIUM:
        if (p->u->layer != CONDUIT_LAYER_SODIUM) {
            return fail(p, CONDUIT_EOPTION, "option '%s' needs the sodium layer (sodium+%s://)",
                        def->name, conduit_transport_name(p->u->transport));
        }
        break;
    case SCOPE_VCHAN:
        if (p->u->transport != CONDUIT_TRANSPORT_VCHAN) {
            return fail(p, CONDUIT_EOPTION, "option '%s' is only valid for vchan, not %s",
                        def->name, conduit_transport_name(p->u->transport));
        }
        break;
    }
    if (p->u->options & def->bit) {
        return fail(p, CONDUIT_EOPTION, "duplicate option '%s'", def->name);
    }
    p->u->options |= def->bit;
    if (eq == NULL) {
        return fail(p, CONDUIT_EOPTION, "option '%s' has no value (%s=VALUE)", def->name,
                    def->name);
    }
    if (len - nlen - 1 == 0) {
        return fail(p, CONDUIT_EOPTION, "option '%s' has an empty value", def->name);
    }
    snprintf(what, sizeof(what), "option '%s'", def->name);
    r = decode(p, eq + 1, len - nlen - 1, what, &value);
    if (r < 0) {
        return r;
    }
    /* As given, for conduit_uri_option (each option at most once: the table bounds it). */
    _Static_assert(sizeof(opt_defs) / sizeof(opt_defs[0]) <= CONDUIT__URI_OPTS_MAX, "opt room");
    if (!(p->u->opt[p->u->nopt].value = strdup(value))) {
        free(value);
        return fail(p, CONDUIT_ENOMEM, "out of memory");
    }
    p->u->opt[p->u->nopt++].name = def->name;
    switch (def->id) {
    case OPT_TIMEOUT:
        r = opt_timeout(p, value);
        break;
    case OPT_CONNECT_TIMEOUT:
        r = opt_connect_timeout(p, value);
        break;
    case OPT_READ_SIZE:
        r = opt_read_size(p, value);
        break;
    case OPT_WRITE_SIZE:
        r = opt_write_size(p, value);
        break;
    case OPT_CA:
        r = opt_keep(&p->u->tls.ca, &value);
        break;
    case OPT_CERT:
        r = opt_keep(&p->u->tls.cert, &value);
        break;
    case OPT_KEY:
        r = opt_keep(&p->u->tls.key, &value);
        break;
    case OPT_SERVERNAME:
        r = opt_servername(p, value);
        if (r == 0) {
            r = opt_keep(&p->u->tls.servername, &value);
        }
        break;
    case OPT_VERIFY:
        r = opt_verify(p, value);
        break;
    case OPT_PEER: {
        uint8_t k[CONDUIT__KEY_LEN];

        if (conduit__key_decode(value, strlen(value), k) < 0) {
            r = fail(p, CONDUIT_EOPTION,
                     "peer '%s' is not a public key (44 characters of base64, as vchan-cat "
                     "--genkey prints it)",
                     quote(q, value, strlen(value)));
        } else {
            r = opt_keep(&p->u->sodium.peer, &value);
        }
        break;
    }
    case OPT_PEERS:
        r = opt_keep(&p->u->sodium.peers, &value);
        break;
    }
    free(value);
    return r;
}

/* ------------------------------------------------------------ the URI */

static int parse_scheme(struct parser *p, const char *s, size_t len)
{
    char q[QUOTE_BUF], q2[QUOTE_BUF];
    const char *plus = memchr(s, '+', len);
    const char *t = s;
    size_t tlen = len;

    if (len == 0) {
        return fail(p, CONDUIT_ESYNTAX, "empty scheme before '://'");
    }
    if (plus != NULL) {
        size_t llen = (size_t)(plus - s);

        if (token_equal(s, llen, "tls")) {
            p->u->layer = CONDUIT_LAYER_TLS;
        } else if (token_equal(s, llen, "sodium")) {
            p->u->layer = CONDUIT_LAYER_SODIUM;
        } else {
            return fail(p, CONDUIT_ESCHEME, "unknown layer '%s' in scheme '%s' (tls, sodium)",
                        quote(q, s, llen), quote(q2, s, len));
        }
        t = plus + 1;
        tlen = len - llen - 1;
    } else if (token_equal(s, len, "tls")) {
        p->u->layer = CONDUIT_LAYER_TLS;
        p->u->transport = CONDUIT_TRANSPORT_TCP;
        return 0;
    } else if (token_equal(s, len, "sodium")) {
        return fail(p, CONDUIT_ESCHEME,
                    "scheme 'sodium' needs a transport: sodium+tcp, sodium+unix or sodium+vchan");
    }

    if (token_equal(t, tlen, "tcp")) {
        p->u->transport = CONDUIT_TRANSPORT_TCP;
    } else if (token_equal(t, tlen, "unix")) {
        p->u->transport = CONDUIT_TRANSPORT_UNIX;
    } else if (token_equal(t, tlen, "vchan")) {
        p->u->transport = CONDUIT_TRANSPORT_VCHAN;
    } else if (plus != NULL) {
        return fail(p, CONDUIT_ESCHEME, "unknown transport '%s' in scheme '%s' (tcp, unix, vchan)",
                    quote(q, t, tlen), quote(q2, s, len));
    } else {
        return fail(p, CONDUIT_ESCHEME, "unknown scheme '%s'", quote(q, s, len));
    }
    return 0;
}

CONDUIT_EXPORT void conduit_uri_free(struct conduit_uri *u)
{
    if (u == NULL) {
        return;
    }
    free(u->tcp.host);
    free(u->un.path);
    free(u->vchan.domain_name);
    free(u->vchan.port);
    free(u->tls.ca);
    free(u->tls.cert);
    free(u->tls.key);
    free(u->tls.servername);
    free(u->sodium.peer);
    free(u->sodium.peers);
    for (unsigned i = 0; i < u->nopt; i++) {
        free(u->opt[i].value);
    }
    free(u);
}

CONDUIT_EXPORT enum conduit_layer conduit_uri_layer(const struct conduit_uri *u)
{
    return u ? u->layer : CONDUIT_LAYER_NONE;
}

CONDUIT_EXPORT enum conduit_transport conduit_uri_transport(const struct conduit_uri *u)
{
    return u ? u->transport : (enum conduit_transport)0;
}

CONDUIT_EXPORT bool conduit_uri_listen(const struct conduit_uri *u)
{
    return u && u->listen;
}

CONDUIT_EXPORT const char *conduit_uri_host(const struct conduit_uri *u)
{
    return u ? u->tcp.host : NULL;
}

CONDUIT_EXPORT int conduit_uri_port(const struct conduit_uri *u)
{
    return u ? u->tcp.port : 0;
}

CONDUIT_EXPORT const char *conduit_uri_path(const struct conduit_uri *u)
{
    return u ? u->un.path : NULL;
}

CONDUIT_EXPORT int conduit_uri_domid(const struct conduit_uri *u)
{
    return u && u->transport == CONDUIT_TRANSPORT_VCHAN ? u->vchan.domid : 0;
}

CONDUIT_EXPORT const char *conduit_uri_domain_name(const struct conduit_uri *u)
{
    return u ? u->vchan.domain_name : NULL;
}

CONDUIT_EXPORT const char *conduit_uri_vchan_port(const struct conduit_uri *u)
{
    return u ? u->vchan.port : NULL;
}

CONDUIT_EXPORT const char *conduit_uri_option(const struct conduit_uri *u, const char *name)
{
    for (unsigned i = 0; u && name && i < u->nopt; i++) {
        if (strcmp(u->opt[i].name, name) == 0) {
            return u->opt[i].value;
        }
    }
    return NULL;
}

CONDUIT_EXPORT int conduit_uri_parse(const char *text, unsigned flags, struct conduit_uri **out,
                                     char *err, size_t errlen)
{
    struct parser p = {.err = err, .errlen = errlen};
    char q[QUOTE_BUF];
    const char *sep, *addr, *query, *end;
    size_t len;
    int r;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    } else {
        p.errlen = 0;
    }
    if (out == NULL) {
        return fail(&p, CONDUIT_EINVAL, "no place for the result");
    }
    *out = NULL;
    if (text == NULL) {
        return fail(&p, CONDUIT_EINVAL, "no URI");
    }
    if ((flags & ~CONDUIT_URI_LISTEN) != 0) {
        return fail(&p, CONDUIT_EINVAL, "unknown flags 0x%x", flags & ~CONDUIT_URI_LISTEN);
    }
    len = strnlen(text, CONDUIT_URI_MAX + 1);
    if (len == 0) {
        return fail(&p, CONDUIT_ESYNTAX, "empty URI");
    }
    if (len > CONDUIT_URI_MAX) {
        return fail(&p, CONDUIT_ERANGE, "URI longer than %d bytes", CONDUIT_URI_MAX);
    }
    /* Checked once here so no later part can be fooled by them. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c < 0x20 || c == 0x7f) {
            return fail(&p, CONDUIT_ESYNTAX, "control character 0x%02x at offset %zu in URI", c, i);
        }
        if (c == '#') {
            return fail(&p, CONDUIT_ESYNTAX,
                        "'#' at offset %zu in URI: fragments are not allowed (write %%23)", i);
        }
    }

    p.u = calloc(1, sizeof(*p.u));
    if (p.u == NULL) {
        return fail(&p, CONDUIT_ENOMEM, "out of memory");
    }
    p.u->listen = (flags & CONDUIT_URI_LISTEN) != 0;
    p.u->tls.verify = true;

    sep = strstr(text, "://");
    if (sep == NULL) {
        r = fail(&p, CONDUIT_ESYNTAX, "URI '%s' has no '://' (like vchan://0/port)",
                 quote(q, text, len));
        goto out;
    }
    r = parse_scheme(&p, text, (size_t)(sep - text));
    if (r < 0) {
        goto out;
    }

    addr = sep + 3;
    end = text + len;
    query = memchr(addr, '?', (size_t)(end - addr));
    switch (p.u->transport) {
    case CONDUIT_TRANSPORT_TCP:
        r = parse_tcp(&p, addr, (size_t)((query ? query : end) - addr));
        break;
    case CONDUIT_TRANSPORT_UNIX:
        r = parse_unix(&p, addr, (size_t)((query ? query : end) - addr));
        break;
    case CONDUIT_TRANSPORT_VCHAN:
        r = parse_vchan(&p, addr, (size_t)((query ? query : end) - addr));
        break;
    }
    if (r < 0) {
        goto out;
    }

    if (query != NULL) {
        const char *o = query + 1;

        if (o == end) {
            r = fail(&p, CONDUIT_ESYNTAX, "empty query after '?'");
            goto out;
        }
        for (;;) {
            const char *amp = memchr(o, '&', (size_t)(end - o));
            const char *oend = amp != NULL ? amp : end;

            r = parse_option(&p, o, (size_t)(oend - o));
            if (r < 0) {
                goto out;
            }
            if (amp == NULL) {
                break;
            }
            o = amp + 1;
        }
    }
    *out = p.u;
    p.u = NULL;
    r = 0;
out:
    conduit_uri_free(p.u);
    return r;
}

CONDUIT_EXPORT int conduit_timeout_parse(const char *text, int *ms, char *err, size_t errlen)
{
    struct parser p = {.err = err, .errlen = err != NULL ? errlen : 0};

    if (p.errlen > 0) {
        err[0] = '\0';
    }
    if (text == NULL || ms == NULL) {
        return fail(&p, CONDUIT_EINVAL, "no timeout");
    }
    return parse_seconds(&p, "timeout", text, ms);
}
