/* SPDX-License-Identifier: ISC */
/*
 * Internal interface of libconduit: the connection and listener handles and
 * the layers they are built from.
 *
 * A connection is a stack of layers, as curl's connection filters: the top
 * one is what conduit_read/conduit_write call, each reaches the one below
 * through `next`, and the bottom one is a transport (a socket, a vchan). TLS
 * is a layer with a `next`, so it sits on any transport. Every layer
 * operation is non-blocking; conduit.c alone turns -CONDUIT_EAGAIN into a
 * wait (poll_events + poll on the fd), so timeouts live in one place.
 */
#ifndef CONDUIT_INTERNAL_H
#define CONDUIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conduit.h"
#include "libconduit/internal/uri.h"
#include "libvchan/platform/clock.h"

#if defined(__GNUC__)
#define CONDUIT__PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CONDUIT__MUST_CHECK __attribute__((warn_unused_result))
#else
#define CONDUIT__PRINTF(a, b)
#define CONDUIT__MUST_CHECK
#endif

#define CONDUIT__MSG_MAX 512
#define CONDUIT__NAME_MAX 192
#define CONDUIT__INFO_MAX 256

/*
 * Where errors and log lines go: the handle's message buffer, prefixed with
 * the endpoint's name, and the caller's logger.
 */
struct conduit__err {
    char name[CONDUIT__NAME_MAX]; /* "tls://host:443": prefix of every message */
    char msg[CONDUIT__MSG_MAX];
    conduit_log_fn *log;
    void *log_ctx;
};

/*
 * Record an error as "<name>: <message>" and log it once (ERROR). Returns
 * -code, so: return conduit__errorf(e, CONDUIT_EIO, "...: %s", strerror(errno)).
 */
int conduit__errorf(struct conduit__err *e, int code, const char *fmt, ...) CONDUIT__PRINTF(3, 4);
/* Log without recording (the caller's logger; silent without one). */
void conduit__logf(struct conduit__err *e, enum conduit_log_level level, const char *fmt, ...)
    CONDUIT__PRINTF(3, 4);

/*
 * snprintf for messages and names, where cutting a long text short is
 * intended: a message is shortened, never overrun. (Plain snprintf keeps
 * gcc's -Wformat-truncation for the cases where truncation would be a bug.)
 */
void conduit__fmt(char *buf, size_t len, const char *fmt, ...) CONDUIT__PRINTF(3, 4);

/* Fill buf with random bytes (getrandom); 0 or -CONDUIT_EIO. */
int conduit__random(void *buf, size_t len);

struct conduit__layer;

struct conduit__layer_ops {
    const char *name;
    /*
     * Each returns -CONDUIT_EAGAIN rather than wait, unless set_blocking
     * (below) asked it to wait itself. read: 0 with *nread == 0 is
     * end-of-file. handshake (NULL: none): 0 when done, -CONDUIT_EAGAIN to
     * call again. shutdown: end our direction (conduit_shutdown);
     * -CONDUIT_EAGAIN until it can, and then what to wait for is
     * shutdown_want (0: CONDUIT_WANT_WRITE). poll_events: as
     * conduit_poll_events.
     */
    int (*handshake)(struct conduit__layer *l);
    int (*read)(struct conduit__layer *l, void *buf, size_t len, size_t *nread);
    int (*write)(struct conduit__layer *l, const void *buf, size_t len, size_t *nwritten);
    int (*shutdown)(struct conduit__layer *l);
    unsigned shutdown_want;
    bool half_close; /* shutdown ends our direction only (not vchan's: it closes) */
    int (*poll_events)(struct conduit__layer *l, unsigned want, short *events);
    int (*unconsumed)(struct conduit__layer *l, size_t *n);
    /*
     * NULL for most layers. Otherwise, while `blocking` is set, the layer's
     * read (and write, where it says so) waits itself (up to timeout_ms each
     * call, 0: none; -CONDUIT_ETIMEDOUT), which a transport can do better
     * than poll(): vchan spins on the ring first, a socket sleeps in recv().
     * An -CONDUIT_EAGAIN still makes conduit.c wait in poll(). conduit.c
     * calls it on the top layer whenever the handle's mode or timeout changes.
     */
    void (*set_blocking)(struct conduit__layer *l, bool blocking, int timeout_ms);
    int (*fd)(struct conduit__layer *l);
    /* Append a description to buf (conduit_info). */
    void (*info)(struct conduit__layer *l, char *buf, size_t len);
    /* Release this layer only; the caller closes `next`. */
    void (*close)(struct conduit__layer *l);
};

struct conduit__layer {
    const struct conduit__layer_ops *ops;
    struct conduit__layer *next; /* the layer below; NULL for a transport */
    struct conduit__err *err;    /* the owning handle's; re-pointed when handed over */
};

struct conduit {
    struct conduit__layer *top;
    struct conduit__err err;
    char info[CONDUIT__INFO_MAX];
    bool nonblocking;
    bool handshaken; /* top->ops->handshake has finished */
    uint64_t handshake_deadline; /* a non-blocking accept's: the handshake by then; 0: none */
    bool shut;       /* conduit_shutdown finished: writes fail */
    bool shutting;   /* conduit_shutdown started (TLS: close_notify not yet out) */
    int timeout_ms;  /* I/O; 0: none */
};

/* Close a whole stack, top first. NULL ok. */
void conduit__layer_close_all(struct conduit__layer *top);
/* Point every layer of a stack at a new error sink (a connection handed out by accept). */
void conduit__layer_set_err(struct conduit__layer *top, struct conduit__err *err);

/*
 * A listener's transport part. accept is non-blocking: 0 with a new
 * transport layer in *out (its err pointing at `err`, the new connection's),
 * -CONDUIT_EAGAIN when nothing is ready, or an error. *peer gets a name for
 * the new connection ("tcp://127.0.0.1:40000", "vchan://3/svc").
 */
struct conduit_listener;
struct conduit__listen_ops {
    int (*accept)(struct conduit_listener *l, struct conduit__err *err, struct conduit__layer **out,
                  char *peer, size_t peerlen);
    int (*fd)(struct conduit_listener *l);
    /* Bound the wait of a blocking accept (ms, -1: none): pending work with a deadline. */
    int (*tick_ms)(struct conduit_listener *l);
    void (*close)(struct conduit_listener *l);
};

struct conduit_listener {
    const struct conduit__listen_ops *ops;
    void *impl;
    struct conduit__err err;
    enum conduit_layer layer;
    enum conduit_transport transport;
    const struct layer_def *layer_def; /* conduit.c's entry for the layer; NULL: none */
    void *layer_ctx; /* the layer's listener state (TLS: its SSL_CTX) */
    bool nonblocking;
    int timeout_ms;    /* of accept (the connect timeout); 0: none */
    uint64_t waiting_since; /* non-blocking: first accept that found nobody (ms); 0: none */
    int io_timeout_ms; /* given to accepted connections */
};

/* What a transport needs from the connect call. */
struct conduit__connect_args {
    const struct conduit_uri *uri;
    const struct conduit_options *opts;
    uint64_t deadline; /* of the whole connect (libvchan/platform/clock.h) */
    int timeout_ms;    /* the same, as given, for messages */
};

/* tcp.c, unix.c */
int conduit__tcp_connect(struct conduit__err *e, const struct conduit__connect_args *a,
                         struct conduit__layer **out);
int conduit__tcp_listen(struct conduit_listener *l, const struct conduit_uri *u,
                        const struct conduit_options *opts);
int conduit__unix_connect(struct conduit__err *e, const struct conduit__connect_args *a,
                          struct conduit__layer **out);
int conduit__unix_listen(struct conduit_listener *l, const struct conduit_uri *u,
                         const struct conduit_options *opts);

/* sock.c: a transport layer over a connected, non-blocking stream socket (taken over). */
int conduit__sock_layer(struct conduit__err *e, int fd, const char *kind,
                        struct conduit__layer **out);
/* Wait until a non-blocking connect on fd finishes: 0 or the socket error (errno value). */
int conduit__sock_connect_wait(int fd, uint64_t deadline, bool *timed_out);
/* Describe a socket address ("127.0.0.1:80", "[::1]:80", "/run/x.sock"). */
void conduit__sockaddr_str(const void *sa, unsigned salen, char *buf, size_t len);

/* vchan.c */
int conduit__vchan_connect(struct conduit__err *e, const struct conduit__connect_args *a,
                           struct conduit__layer **out);
int conduit__vchan_listen(struct conduit_listener *l, const struct conduit_uri *u,
                          const struct conduit_options *opts);

/* tls.c */
int conduit__tls_client(struct conduit__err *e, const struct conduit__connect_args *a,
                        struct conduit__layer *lower, struct conduit__layer **out);
int conduit__tls_listen(struct conduit_listener *l, const struct conduit_uri *u,
                        const struct conduit_options *opts);
int conduit__tls_server(struct conduit_listener *l, struct conduit__err *e,
                        struct conduit__layer *lower, struct conduit__layer **out);
void conduit__tls_listen_free(struct conduit_listener *l);

/* The sodium layer (layer/sodium.c): as TLS, with keys instead of certificates. */
int conduit__sodium_client(struct conduit__err *e, const struct conduit__connect_args *a,
                           struct conduit__layer *lower, struct conduit__layer **out);
int conduit__sodium_listen(struct conduit_listener *l, const struct conduit_uri *u,
                           const struct conduit_options *opts);
int conduit__sodium_server(struct conduit_listener *l, struct conduit__err *e,
                           struct conduit__layer *lower, struct conduit__layer **out);
void conduit__sodium_listen_free(struct conduit_listener *l);
/* Test hook: start the send nonce counter of a sodium layer at n. */
int conduit__sodium_set_nonce(struct conduit__layer *l, uint64_t n);

/* resolve.c */
/* getaddrinfo with a message naming the host: ERESOLVE. */
struct addrinfo;
int conduit__resolve_host(struct conduit__err *e, const char *host, uint16_t port, bool passive,
                          struct addrinfo **out);
/* A vchan domain of a URI as a domid: ids pass, names go through xenstore (Xen only). */
int conduit__resolve_domain(struct conduit__err *e, const struct conduit_uri *u, int *domid);

/*
 * The vchan platform this process uses, decided as libvchan decides it
 * (VCHAN_PLATFORM, else xen when /dev/xen/evtchn opens and Xen support is
 * built in, else local).
 */
enum conduit__vplat { CONDUIT__VPLAT_LOCAL, CONDUIT__VPLAT_XEN };
int conduit__vchan_platform(struct conduit__err *e, enum conduit__vplat *out);

/*
 * The accept rendezvous (docs/accept.md), one implementation per platform:
 * rdv_local.c and xen.c (or xen_none.c without Xen). Port of an accepted
 * connection's fresh channel: CONDUIT__ACCEPT_PORT_PREFIX + 16 hex digits of
 * the client's nonce.
 */
#define CONDUIT__ACCEPT_PORT_PREFIX "accept-"
#define CONDUIT__NONCE_LEN 16
#define CONDUIT__ACCEPT_PORT_LEN (sizeof(CONDUIT__ACCEPT_PORT_PREFIX) - 1 + CONDUIT__NONCE_LEN)

/* Our own domain id on a platform (local: VCHAN_DOMID; Xen: xenstore's `domid`). */
int conduit__self_domid(struct conduit__err *e, enum conduit__vplat plat, int *domid);

/* Client side. */
enum conduit__probe {
    CONDUIT__PROBE_NONE,   /* nothing there (yet) */
    CONDUIT__PROBE_DIRECT, /* a channel published for us at libxenvchan's path */
    CONDUIT__PROBE_ACCEPT, /* the request went in: wait for the answer */
};
struct conduit__rdv_client;
int conduit__rdv_client_open(struct conduit__err *e, enum conduit__vplat plat, int server,
                             const char *port, uint64_t deadline, struct conduit__rdv_client **out);
/*
 * One look: is a direct channel published for us, or does the server
 * accept requests (and then the request has been made, with `nonce`)? Does
 * not wait for a server to appear; may wait (until the deadline given at
 * open) for an answer from one that is there.
 */
int conduit__rdv_client_probe(struct conduit__rdv_client *rc, const char *nonce,
                              enum conduit__probe *out);
/* After PROBE_ACCEPT: 1 when the server has published our channel, 0 not yet, or an error. */
int conduit__rdv_client_answer(struct conduit__rdv_client *rc);
/* Where the client looked, for a message: "<direct path>, nor an accept service at <...>". */
void conduit__rdv_client_where(struct conduit__rdv_client *rc, char *buf, size_t len);
void conduit__rdv_client_close(struct conduit__rdv_client *rc);

/* Server side. */
struct conduit__rdv_server;
int conduit__rdv_server_open(struct conduit__err *e, enum conduit__vplat plat, const char *port,
                             struct conduit__rdv_server **out);
int conduit__rdv_server_fd(struct conduit__rdv_server *rs);
/*
 * Take the next request, non-blocking: 1 with the client's domain and nonce
 * (checked: the client is who it says), 0 when none is waiting. Requests
 * that fail the checks are dropped with a warning.
 */
int conduit__rdv_server_next(struct conduit__rdv_server *rs, int *client,
                             char nonce[CONDUIT__NONCE_LEN + 1]);
/* Answer the request last taken: 0 (its channel is published) or a refusal. */
void conduit__rdv_server_answer(struct conduit__rdv_server *rs, int status, const char *why);
void conduit__rdv_server_close(struct conduit__rdv_server *rs);

/* Xen-only helpers (xen.c; xen_none.c says "not built with Xen"). */
extern const bool conduit__xen_built;
int conduit__xen_domid_by_name(struct conduit__err *e, const char *name, int *domid);
int conduit__xen_self_domid(struct conduit__err *e, int *domid);
int conduit__xen_rdv_client_open(struct conduit__err *e, int server, const char *port,
                                 uint64_t deadline, struct conduit__rdv_client **out);
int conduit__xen_rdv_server_open(struct conduit__err *e, const char *port,
                                 struct conduit__rdv_server **out);
/* Local platform (rdv_local.c). */
int conduit__local_self_domid(struct conduit__err *e, int *domid);
int conduit__local_rdv_client_open(struct conduit__err *e, int server, const char *port,
                                   uint64_t deadline, struct conduit__rdv_client **out);
int conduit__local_rdv_server_open(struct conduit__err *e, const char *port,
                                   struct conduit__rdv_server **out);

/*
 * Both platforms' rendezvous objects start with these ops, so the generic
 * functions above dispatch without knowing the platform.
 */
struct conduit__rdv_client_ops {
    int (*probe)(struct conduit__rdv_client *rc, const char *nonce, enum conduit__probe *out);
    int (*answer)(struct conduit__rdv_client *rc);
    void (*where)(struct conduit__rdv_client *rc, char *buf, size_t len);
    void (*close)(struct conduit__rdv_client *rc);
};
struct conduit__rdv_client {
    const struct conduit__rdv_client_ops *ops;
};
struct conduit__rdv_server_ops {
    int (*fd)(struct conduit__rdv_server *rs);
    int (*next)(struct conduit__rdv_server *rs, int *client, char nonce[CONDUIT__NONCE_LEN + 1]);
    void (*answer)(struct conduit__rdv_server *rs, int status, const char *why);
    void (*close)(struct conduit__rdv_server *rs);
};
struct conduit__rdv_server {
    const struct conduit__rdv_server_ops *ops;
};

/* A nonce is CONDUIT__NONCE_LEN lower-case hex digits. */
bool conduit__nonce_valid(const char *s);
int conduit__nonce_new(char nonce[CONDUIT__NONCE_LEN + 1]);

/*
 * What the peer of an accept rendezvous writes, parsed without any I/O
 * (rdv_parse.c; tests/fuzz/fuzz_accept.c). Everything here is hostile
 * input: a client's request, a server's answer, names listed in xenstore.
 */

/* A decimal domain id of 1 to 5 digits, 0..VCHAN_DOMID_MAX; -1 otherwise. */
int conduit__domid_parse(const char *s, size_t len);

/* Xen: a request's node name "<domid>-<nonce>": the claimed domain id (nonce set), or -1. */
int conduit__rdv_request_name(const char *name, char nonce[CONDUIT__NONCE_LEN + 1]);
/*
 * Xen: a refusal written into a request node is "refused: <why>". make
 * writes one (cut to len - 1 bytes, NUL-terminated) and returns its length
 * without the NUL; parse says whether val (len bytes, no NUL needed) is one,
 * and puts its reason, printable characters only, in why (NULL: not wanted).
 */
#define CONDUIT__RDV_REFUSED "refused: "
size_t conduit__rdv_refusal_make(char *val, size_t len, const char *why);
bool conduit__rdv_refusal_parse(const char *val, size_t len, char *why, size_t whylen);

/* Local platform: a client's request and the server's answer (same host: native byte order). */
#define CONDUIT__RDV_REQ_MAGIC 0x71657263u /* "creq" */
#define CONDUIT__RDV_REP_MAGIC 0x70657263u /* "crep" */
#define CONDUIT__RDV_VERSION 1u
#define CONDUIT__RDV_PORT_LEN 64 /* VCHAN_PORT_MAX */
#define CONDUIT__RDV_WHY_LEN 200

struct conduit__rdv_request {
    uint32_t magic, version;
    uint32_t client_domid, server_domid; /* what the client believes: checked */
    char nonce[CONDUIT__NONCE_LEN];      /* hex, no NUL */
    char port[CONDUIT__RDV_PORT_LEN];    /* NUL-padded */
};

struct conduit__rdv_reply {
    uint32_t magic, version;
    int32_t status;                 /* 0, or the CONDUIT_E* code of a refusal */
    char why[CONDUIT__RDV_WHY_LEN]; /* NUL-terminated */
};

void conduit__rdv_request_make(struct conduit__rdv_request *req, int client, int server,
                               const char *nonce, const char *port);
/*
 * A request to the listener of `port` in domain `self`: 0 with the client's
 * domain id and nonce, or -CONDUIT_EPROTO with the reason in why.
 */
int conduit__rdv_request_parse(const struct conduit__rdv_request *req, int self, const char *port,
                               int *client, char nonce[CONDUIT__NONCE_LEN + 1], char *why,
                               size_t whylen) CONDUIT__MUST_CHECK;
void conduit__rdv_reply_make(struct conduit__rdv_reply *rep, int status, const char *why);
/*
 * An answer: -CONDUIT_EPROTO when malformed; else 0 with *refusal 0 (the
 * channel is published) or the code to report a refusal with (never
 * EAGAIN: a refusal is final), and its reason in why (printable; the
 * code's text when the server gave none).
 */
int conduit__rdv_reply_parse(const struct conduit__rdv_reply *rep, int *refusal, char *why,
                             size_t whylen) CONDUIT__MUST_CHECK;

#endif
