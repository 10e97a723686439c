/* SPDX-License-Identifier: ISC */
/*
 * The parsed URI (conduit.h keeps it opaque): what uri.c fills and the
 * rest of libconduit reads. Strings are NUL-terminated, decoded and owned;
 * fields of other transports and layers are zero / NULL.
 */
#ifndef CONDUIT_INTERNAL_URI_H
#define CONDUIT_INTERNAL_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conduit.h"

/* Bits of conduit_uri.options: which options the URI gave. */
#define CONDUIT_URI_OPT_TIMEOUT (1u << 0)
#define CONDUIT_URI_OPT_READ_SIZE (1u << 1)
#define CONDUIT_URI_OPT_WRITE_SIZE (1u << 2)
#define CONDUIT_URI_OPT_CA (1u << 3)
#define CONDUIT_URI_OPT_CERT (1u << 4)
#define CONDUIT_URI_OPT_KEY (1u << 5)
#define CONDUIT_URI_OPT_SERVERNAME (1u << 6)
#define CONDUIT_URI_OPT_VERIFY (1u << 7)
#define CONDUIT_URI_OPT_CONNECT_TIMEOUT (1u << 8)
#define CONDUIT_URI_OPT_PEER (1u << 9)
#define CONDUIT_URI_OPT_PEERS (1u << 10)

/* Options a URI can carry (each at most once). */
#define CONDUIT__URI_OPTS_MAX 16

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
    int connect_timeout_ms; /* connect-timeout=, 0 when not given */

    struct {
        char *ca, *cert;       /* file names, NULL when not given */
        char *key;             /* TLS or sodium: our private key's file */
        char *servername;      /* NULL when not given */
        bool verify;           /* true unless verify=0 */
    } tls;

    struct {
        char *peer;  /* the pinned public key, base64 (checked: a key) */
        char *peers; /* a file of allowed keys, or "any" */
    } sodium;

    /* Every option as given, decoded, for conduit_uri_option. */
    struct {
        const char *name; /* the option table's (static) */
        char *value;
    } opt[CONDUIT__URI_OPTS_MAX];
    unsigned nopt;
};

#endif
