/* SPDX-License-Identifier: ISC */
/*
 * conduit.h: one connection API over vchan, TCP, UNIX sockets and TLS,
 * chosen by an endpoint URI.
 *
 * This part covers endpoint URIs; the connection API (conduit_connect,
 * conduit_listen, conduit_accept, ...) is added later and takes a parsed
 * struct conduit_uri. Grammar (DESIGN.md, "Endpoint URIs"):
 *
 *   uri       = [layer "+"] transport "://" address ["?" option *("&" option)]
 *   transport = "tcp" | "unix" | "vchan"      layer = "tls" | "sodium"
 *   "tls://" is "tls+tcp://"; scheme names are case-insensitive.
 *   tcp       host ":" port        host = DNS name | IPv4 | "[" IPv6 "]"
 *                                  ("*" = any address, listen only)
 *   unix      absolute path        unix:///run/app.sock
 *   vchan     domain "/" port      domain = domid 0-32751 | domain name |
 *                                  "*" (any domain, listen only);
 *                                  port = 1-64 of [A-Za-z0-9_-]
 *   option    name "=" value       names are lower-case and case-sensitive
 *
 * Options, each at most once:
 *   timeout=SECS      all: seconds, decimal with up to 3 decimals ("30",
 *                     "0.5"), 0.001 to 86400
 *   read-size=BYTES   vchan: minimum size of the ring the server reads,
 *   write-size=BYTES  ... and of the ring it writes; 1 to 1048576 (the
 *                     ring is rounded up to a power of two, at least 1 KiB)
 *   ca=, cert=, key=  tls: file names (PEM)
 *   servername=NAME   tls: the name to verify and send as SNI
 *   verify=BOOL       tls: 1/0, yes/no, true/false (default: verify)
 *
 * Percent-escapes (%XX) are decoded in option values and in the unix path;
 * "+" stays "+". Host names, domains and vchan ports have fixed character
 * sets and take no escapes. Control characters and a raw "#" (there are no
 * fragments) are refused anywhere.
 */
#ifndef CONDUIT_H
#define CONDUIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CONDUIT_EXPORT __attribute__((visibility("default")))
#else
#define CONDUIT_EXPORT
#endif

/*
 * The error table: X(name, text). Codes are returned negated. The URI codes
 * are usage errors (decided before any I/O); the connection API appends its
 * run-time codes after them.
 */
/* clang-format off */
#define CONDUIT_ERRNO_MAP(X)                                                   \
    X(EINVAL, "invalid argument")                                              \
    X(ENOMEM, "out of memory")                                                 \
    X(ESYNTAX, "malformed URI")                                                \
    X(ESCHEME, "unknown URI scheme")                                           \
    X(EOPTION, "bad URI option")                                               \
    X(ERANGE, "value out of range")                                            \
    X(EWILDCARD, "wildcard address in a connect URI")

enum conduit_errno {
    CONDUIT_OK = 0,
#define CONDUIT_ERRNO_ENUM(name, text) CONDUIT_##name,
    CONDUIT_ERRNO_MAP(CONDUIT_ERRNO_ENUM)
#undef CONDUIT_ERRNO_ENUM
    CONDUIT_ERRNO_MAX
};
/* clang-format on */

/* Text for a code, positive or negative; never NULL. */
CONDUIT_EXPORT const char *conduit_strerror(int err);
/* Symbolic name ("ESYNTAX") for a code; never NULL. */
CONDUIT_EXPORT const char *conduit_errname(int err);

/* ---------------------------------------------------------------- URIs */

enum conduit_layer {
    CONDUIT_LAYER_NONE = 0,
    CONDUIT_LAYER_TLS,
    CONDUIT_LAYER_SODIUM,
};

enum conduit_transport {
    CONDUIT_TRANSPORT_TCP = 1,
    CONDUIT_TRANSPORT_UNIX,
    CONDUIT_TRANSPORT_VCHAN,
};

/* Names as written in URIs ("tls", "vchan"); "" for NONE, "?" if unknown. */
CONDUIT_EXPORT const char *conduit_layer_name(enum conduit_layer layer);
CONDUIT_EXPORT const char *conduit_transport_name(enum conduit_transport transport);

/* Flags of conduit_uri_parse. */
#define CONDUIT_URI_LISTEN 0x1u /* a listen URI: "*" addresses are allowed */

/* Bits of conduit_uri.options: which options the URI gave. */
#define CONDUIT_URI_OPT_TIMEOUT (1u << 0)
#define CONDUIT_URI_OPT_READ_SIZE (1u << 1)
#define CONDUIT_URI_OPT_WRITE_SIZE (1u << 2)
#define CONDUIT_URI_OPT_CA (1u << 3)
#define CONDUIT_URI_OPT_CERT (1u << 4)
#define CONDUIT_URI_OPT_KEY (1u << 5)
#define CONDUIT_URI_OPT_SERVERNAME (1u << 6)
#define CONDUIT_URI_OPT_VERIFY (1u << 7)

/* conduit_uri.vchan.domid values that are not domain ids. */
#define CONDUIT_DOMID_ANY (-1)   /* "*": any domain (listen only) */
#define CONDUIT_DOMID_NAMED (-2) /* given by name: see vchan.domain_name */

/* Limits the parser applies. */
#define CONDUIT_URI_MAX 8192           /* bytes of URI text */
#define CONDUIT_UNIX_PATH_MAX 107      /* bytes of a unix path (sun_path less NUL) */
#define CONDUIT_DOMAIN_NAME_MAX 255    /* bytes of a vchan domain name */
#define CONDUIT_TIMEOUT_MAX_S 86400    /* timeout=, in seconds */
#define CONDUIT_RING_SIZE_MAX 1048576u /* read-size=, write-size= (= VCHAN_MAX_RING_SIZE) */

/*
 * A parsed URI. Made only by conduit_uri_parse and released with
 * conduit_uri_free; read its fields, do not change or copy the struct
 * (fields may be added at the end). Strings are NUL-terminated, decoded,
 * and owned by the struct. Fields of other transports and layers are
 * zero / NULL.
 */
struct conduit_uri {
    enum conduit_layer layer;         /* NONE, TLS or SODIUM */
    enum conduit_transport transport; /* TCP, UNIX or VCHAN */
    bool listen;                      /* parsed with CONDUIT_URI_LISTEN */

    struct {
        char *host;    /* DNS name, IPv4 or IPv6 literal (no brackets, zone
                        * as "fe80::1%eth0"); NULL for "*" (any address) */
        uint16_t port; /* 1-65535 */
    } tcp;
    struct {
        char *path; /* absolute, at most CONDUIT_UNIX_PATH_MAX bytes */
    } un;
    struct {
        int domid;         /* 0-32751, CONDUIT_DOMID_ANY or CONDUIT_DOMID_NAMED */
        char *domain_name; /* set only for CONDUIT_DOMID_NAMED: resolve
                            * through xenstore before use */
        char *port;        /* 1-64 of [A-Za-z0-9_-] */
        size_t read_size;  /* read-size=, 0 when not given */
        size_t write_size; /* write-size=, 0 when not given */
    } vchan;

    unsigned options; /* CONDUIT_URI_OPT_* bits of the options given */
    int timeout_ms;   /* timeout=, 0 when not given */

    struct {
        char *ca, *cert, *key; /* file names, NULL when not given */
        char *servername;      /* NULL when not given */
        bool verify;           /* true unless verify=0 */
    } tls;
};

/*
 * Parse `text`. `flags`: CONDUIT_URI_LISTEN or 0. On success returns 0 and
 * a new struct in *out. On failure returns a negative CONDUIT_E* code, sets
 * *out to NULL and writes a message naming the bad part to `err` (when
 * errlen > 0; truncated to fit), e.g. "port 99999 out of range (1-65535)".
 * Every failure but -CONDUIT_ENOMEM is a usage error. Does no I/O: names
 * are checked for form, not resolved. `text` is borrowed.
 */
CONDUIT_EXPORT int conduit_uri_parse(const char *text, unsigned flags, struct conduit_uri **out,
                                     char *err, size_t errlen);

/* Release a parsed URI. NULL ok. */
CONDUIT_EXPORT void conduit_uri_free(struct conduit_uri *uri);

/*
 * Parse a number of seconds as the timeout= option does (also for tools'
 * command-line timeouts): decimal with up to 3 decimals, 0.001 to
 * CONDUIT_TIMEOUT_MAX_S. 0 and the milliseconds in *ms, or -CONDUIT_ERANGE /
 * -CONDUIT_ESYNTAX with a message in `err`.
 */
CONDUIT_EXPORT int conduit_timeout_parse(const char *text, int *ms, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
