/* SPDX-License-Identifier: ISC */
/*
 * conduit.h: one connection API over vchan, TCP, UNIX sockets and TLS,
 * chosen by an endpoint URI.
 *
 * Conventions of every function here:
 *  - int functions return 0 on success (conduit_poll_events: 1 for "ready
 *    now") and a negative CONDUIT_E* code on failure; counts and new handles
 *    go through out-parameters, which are set (to 0 / NULL on failure) in
 *    every case once the pointer itself is valid.
 *  - End-of-file is not an error: a read returning 0 with *nread == 0.
 *  - Non-blocking calls that would wait return -CONDUIT_EAGAIN.
 *  - After a failure, conduit_last_error(handle) (or, for a failed connect
 *    or listen, conduit_last_error(NULL), this thread's) says what went
 *    wrong and where, naming the endpoint: "tls://example.org:443:
 *    certificate verify failed: certificate has expired".
 *  - const char * results are owned by the library (static, or the
 *    handle's until it is closed); never NULL unless said.
 *  - Structs the caller fills are versioned (struct conduit_options:
 *    CONDUIT_OPTIONS_INIT); everything else is opaque.
 *
 * Two parts: endpoint URIs (conduit_uri_parse) and the connection API
 * below them (conduit_connect, conduit_listen, conduit_accept, ...), which
 * takes a URI as text or parsed. Grammar (DESIGN.md, "Endpoint URIs"):
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
 *   timeout=SECS      all: the I/O timeout (and the connect timeout when
 *                     connect-timeout= is absent), in seconds, decimal with
 *                     up to 3 decimals ("30", "0.5"), 0.001 to 86400
 *   connect-timeout=SECS  all: the connect timeout (listen: the accept
 *                     timeout), same format
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

#include <stdarg.h>
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
 * (EINVAL to EWILDCARD, but ENOMEM) and ENOTSUP are usage errors, decided
 * before any I/O (conduit_err_is_usage); the codes after them are run-time
 * errors of the connection API. End-of-file is not an error: a read that
 * returns 0 with *nread == 0.
 */
/* clang-format off */
#define CONDUIT_ERRNO_MAP(X)                                                   \
    X(EINVAL, "invalid argument")                                              \
    X(ENOMEM, "out of memory")                                                 \
    X(ESYNTAX, "malformed URI")                                                \
    X(ESCHEME, "unknown URI scheme")                                           \
    X(EOPTION, "bad URI option")                                               \
    X(ERANGE, "value out of range")                                            \
    X(EWILDCARD, "wildcard address in a connect URI")                          \
    X(ENOTSUP, "not supported")                                                \
    X(EAGAIN, "operation would block")                                         \
    X(ETIMEDOUT, "timed out")                                                  \
    X(ERESOLVE, "cannot resolve name")                                         \
    X(ENOENT, "no such endpoint")                                              \
    X(ECONNREFUSED, "connection refused")                                      \
    X(ECONNRESET, "connection reset by peer")                                  \
    X(EPIPE, "peer closed the connection")                                     \
    X(EPROTO, "peer violated the protocol")                                    \
    X(ETLS, "TLS failure")                                                     \
    X(ECERT, "certificate verification failed")                                \
    X(EADDRINUSE, "address already in use")                                    \
    X(EPERM, "permission denied")                                              \
    X(ESHUTDOWN, "write side already shut down")                               \
    X(EIO, "I/O error")                                                       \
    X(EAUTH, "peer authentication failed")

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

/* conduit_uri_domid values that are not domain ids. */
#define CONDUIT_DOMID_ANY (-1)   /* "*": any domain (listen only) */
#define CONDUIT_DOMID_NAMED (-2) /* given by name: see vchan.domain_name */

/* Limits the parser applies. */
#define CONDUIT_URI_MAX 8192           /* bytes of URI text */
#define CONDUIT_UNIX_PATH_MAX 107      /* bytes of a unix path (sun_path less NUL) */
#define CONDUIT_DOMAIN_NAME_MAX 255    /* bytes of a vchan domain name */
#define CONDUIT_TIMEOUT_MAX_S 86400    /* timeout=, in seconds */
#define CONDUIT_RING_SIZE_MAX 1048576u /* read-size=, write-size= (= VCHAN_MAX_RING_SIZE) */

/*
 * A parsed URI: opaque (as curl's CURLU), made by conduit_uri_parse, read
 * with the accessors below, released with conduit_uri_free. Opaque so that
 * options and transports can be added without changing the ABI.
 */
struct conduit_uri;

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
 * What a parsed URI says. Strings are NUL-terminated, decoded, owned by the
 * URI (valid until conduit_uri_free); NULL where the URI has none (another
 * transport's part, or "*"). A NULL uri gives NONE, 0 and NULL.
 */
CONDUIT_EXPORT enum conduit_layer conduit_uri_layer(const struct conduit_uri *uri);
CONDUIT_EXPORT enum conduit_transport conduit_uri_transport(const struct conduit_uri *uri);
/* Parsed with CONDUIT_URI_LISTEN. */
CONDUIT_EXPORT bool conduit_uri_listen(const struct conduit_uri *uri);
/* tcp: the host (IPv6 without brackets; NULL for "*") and the port, 1-65535. */
CONDUIT_EXPORT const char *conduit_uri_host(const struct conduit_uri *uri);
CONDUIT_EXPORT int conduit_uri_port(const struct conduit_uri *uri);
/* unix: the absolute path. */
CONDUIT_EXPORT const char *conduit_uri_path(const struct conduit_uri *uri);
/* vchan: the domain id (or CONDUIT_DOMID_ANY, CONDUIT_DOMID_NAMED with its
 * name, resolved at connect time), and the port name. */
CONDUIT_EXPORT int conduit_uri_domid(const struct conduit_uri *uri);
CONDUIT_EXPORT const char *conduit_uri_domain_name(const struct conduit_uri *uri);
CONDUIT_EXPORT const char *conduit_uri_vchan_port(const struct conduit_uri *uri);
/*
 * The value of option `name` as the URI gave it, percent-decoded ("30" for
 * timeout=30), or NULL when it was not given. Every option the grammar
 * above lists, and those of layers added later, read the same way.
 */
CONDUIT_EXPORT const char *conduit_uri_option(const struct conduit_uri *uri, const char *name);

/*
 * Parse a number of seconds as the timeout= option does (also for tools'
 * command-line timeouts): decimal with up to 3 decimals, 0.001 to
 * CONDUIT_TIMEOUT_MAX_S. 0 and the milliseconds in *ms, or -CONDUIT_ERANGE /
 * -CONDUIT_ESYNTAX with a message in `err`.
 */
CONDUIT_EXPORT int conduit_timeout_parse(const char *text, int *ms, char *err, size_t errlen);

/* ---------------------------------------------------------- connections */

/*
 * A connection (struct conduit) and a listening endpoint (struct
 * conduit_listener), both opaque. A handle is used by one thread at a time;
 * different handles may be used by different threads.
 *
 * Blocking and timeouts. A connection is blocking unless made non-blocking
 * (conduit_options.nonblocking, conduit_set_nonblocking). Blocking reads and
 * writes wait at most the I/O timeout (-CONDUIT_ETIMEDOUT after it; none by
 * default); non-blocking ones return -CONDUIT_EAGAIN instead of waiting.
 * Connecting always completes (or fails) before conduit_connect returns,
 * within the connect timeout. Which timeout is which, and where each comes
 * from: struct conduit_options below.
 *
 * Transports (DESIGN.md):
 *   tcp://HOST:PORT    every address getaddrinfo gives is tried in turn,
 *                      IPv4 and IPv6. Listen on "*": all addresses (one
 *                      dual-stack IPv6 socket where the system allows).
 *   unix:///PATH       a stream socket. listen removes a stale socket file
 *                      (one nobody listens on), never a live one, and
 *                      removes its own on conduit_listener_close.
 *   vchan://DOM/PORT   a Xen vchan through libvchan (platform xen or local,
 *                      as libvchan picks it). connect: DOM is the server's
 *                      domain (id or, on Xen, name); the client waits for
 *                      its server up to the connect timeout and finds it
 *                      either at libxenvchan's path for this client or
 *                      through the server's accept rendezvous (docs/
 *                      accept.md). listen on vchan://DOM/PORT serves client
 *                      domain DOM at libxenvchan's path, one connection at a
 *                      time: the next is published when the previous one is
 *                      closed. listen with domain "*" accepts clients of any
 *                      domain, concurrently, each with a fresh ring.
 *                      read-size= and write-size= set the server's rings
 *                      (default 64 KiB each); a client gets what its server
 *                      chose.
 *   tls+...://         TLS 1.2 or 1.3 (OpenSSL) over any of the above.
 *                      Clients verify the server by default: against ca=
 *                      (a PEM file) or the system's store, and its name: the
 *                      URI's host, or servername= (also sent as SNI), which
 *                      tls+unix and tls+vchan must give. verify=0 turns all
 *                      verification off, explicitly. cert= and key= give a
 *                      client certificate, or the server's own (required to
 *                      listen). A listener given ca= requires and verifies
 *                      client certificates.
 *   sodium+...://      Noise_XX_25519_ChaChaPoly_BLAKE2b (libsodium) over any
 *                      of the above: both ends have a static X25519 key pair
 *                      and pin the other's public key, with no PKI (as
 *                      WireGuard does). key=FILE: our private key (a file
 *                      `vchan-cat --genkey` wrote; refused when group or
 *                      others may read it); peer=KEY pins one public key
 *                      (44 characters of base64, raw or percent-encoded);
 *                      peers=FILE allows the keys listed there (one a line,
 *                      '#' comments). A client must pin its server; a
 *                      server pins too, or accepts any key with an explicit
 *                      peers=any (conduit_info names the key it met). A
 *                      key that is not the pinned one, a frame that fails
 *                      authentication (tampered, replayed, reordered,
 *                      dropped) and a used-up nonce counter are
 *                      -CONDUIT_EAUTH: the connection is dead and nothing
 *                      of the bad frame is delivered. conduit_shutdown
 *                      sends an authenticated end of stream (a half-close,
 *                      also over vchan); a peer that closes without one is
 *                      -CONDUIT_ECONNRESET (cut short), not end-of-file.
 *                      docs/protocol.md, "The sodium layer", is the wire
 *                      format.
 */
struct conduit;
struct conduit_listener;

enum conduit_log_level {
    CONDUIT_LOG_ERROR,
    CONDUIT_LOG_WARN,
    CONDUIT_LOG_INFO,
    CONDUIT_LOG_DEBUG,
};
typedef void conduit_log_fn(void *ctx, enum conduit_log_level level, const char *fmt, va_list ap);

/* How long a client waits for its server when no timeout is given (DESIGN.md). */
#define CONDUIT_CONNECT_TIMEOUT_MS 30000

/*
 * Options of conduit_connect and conduit_listen; a NULL pointer means all
 * defaults. Versioned, so that fields can be appended without breaking
 * binaries built against an older conduit.h: start from
 * CONDUIT_OPTIONS_INIT (which sets struct_size), then set what you need:
 *
 *     struct conduit_options o = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000);
 *
 * A struct_size of 0 (a struct only zeroed) or one smaller than this
 * library knows is -CONDUIT_EINVAL; a larger one (a newer conduit.h) is
 * accepted if the fields this library does not know are zero. Everything is
 * borrowed for the duration of the call only, except the logger, which the
 * handle keeps.
 *
 * Timeouts (milliseconds; 0: not given here), as curl's CONNECTTIMEOUT and
 * TIMEOUT. An option given here replaces the URI's; the URI's replaces the
 * default:
 *   connect  connect_timeout_ms, else connect-timeout=, else the I/O
 *            timeout, else CONDUIT_CONNECT_TIMEOUT_MS. For a listener
 *            (default: none): how long it waits for its next client. A
 *            blocking conduit_accept waits at most that; non-blocking calls
 *            return ETIMEDOUT once that long has passed since the first
 *            call that found no client.
 *   I/O      timeout_ms, else timeout=, else none: each blocking read,
 *            write or shutdown (conduit_set_timeout changes it later).
 */
struct conduit_options {
    size_t struct_size;     /* sizeof(struct conduit_options): CONDUIT_OPTIONS_INIT */
    int timeout_ms;         /* I/O timeout (and connect timeout if none is given) */
    int connect_timeout_ms; /* connect timeout; a listener's accept timeout */
    bool nonblocking;       /* the connection (accepted ones: too) does not block */
    const char *ca;         /* TLS files, used when the URI gives none */
    const char *cert;
    const char *key;
    conduit_log_fn *log; /* NULL: silent */
    void *log_ctx;
    char *errbuf; /* when the call fails, its message is copied here */
    size_t errbuf_len;
    /* Added with the sodium layer: a caller built before them (smaller struct_size) has them 0. */
    const char *peer;  /* sodium: the peer's public key, when the URI gives none */
    const char *peers; /* sodium: a file of allowed keys, or "any" (servers) */
};
#define CONDUIT_OPTIONS_INIT(...)                                  \
    {                                                              \
        .struct_size = sizeof(struct conduit_options), __VA_ARGS__ \
    }

/*
 * Connect to `uri` (text, parsed here; or a struct parsed by the caller).
 * Blocks until connected (TLS: until the handshake is done), at most the
 * connect timeout. Errors: the URI's usage errors (message naming the bad
 * part), ENOTSUP, ERESOLVE, ENOENT, ECONNREFUSED, ETIMEDOUT, ETLS, ECERT,
 * EPERM, EIO, ENOMEM. On failure *out is NULL and conduit_last_error(NULL)
 * (this thread's last failure) and opts->errbuf hold the message.
 */
CONDUIT_EXPORT int conduit_connect(struct conduit **out, const char *uri,
                                   const struct conduit_options *opts);
CONDUIT_EXPORT int conduit_connect_uri(struct conduit **out, const struct conduit_uri *uri,
                                       const struct conduit_options *opts);

/*
 * Listen on `uri` (parsed with CONDUIT_URI_LISTEN: "*" is allowed). Binds
 * or publishes before returning, so clients can connect at once. Errors as
 * conduit_connect, and EADDRINUSE.
 */
CONDUIT_EXPORT int conduit_listen(struct conduit_listener **out, const char *uri,
                                  const struct conduit_options *opts);
CONDUIT_EXPORT int conduit_listen_uri(struct conduit_listener **out, const struct conduit_uri *uri,
                                      const struct conduit_options *opts);

/*
 * Take the next connection. Blocking listeners wait (at most the listener's
 * timeout: -CONDUIT_ETIMEDOUT); non-blocking ones return -CONDUIT_EAGAIN.
 * A non-blocking listener: poll conduit_listener_fd for POLLIN, then call
 * conduit_accept until it returns -CONDUIT_EAGAIN. vchan clients are
 * answered from here (the rendezvous, and the local platform's hand-over):
 * a vchan client's conduit_connect completes only while its server is in
 * conduit_accept or polling the listener. A blocking listener
 * finishes a TLS handshake before returning (within its timeout, or
 * CONDUIT_CONNECT_TIMEOUT_MS); a non-blocking one leaves it to the first
 * read or write. A connection that failed before it was handed out gives
 * its error here (ETLS, ECERT, ...; the listener itself is still usable);
 * conduit_listener_last_error says why. A vchan://D/P listener whose client
 * domain D no longer exists (Xen) says ENOENT once, then publishes nothing
 * more: later calls wait (or EAGAIN) and its descriptor stays quiet.
 */
CONDUIT_EXPORT int conduit_accept(struct conduit_listener *l, struct conduit **out);

/* A descriptor that polls readable when conduit_accept may have work. Owned by l. */
CONDUIT_EXPORT int conduit_listener_fd(struct conduit_listener *l);

/* Message for the last error on a listener ("" if none); owned by it. */
CONDUIT_EXPORT const char *conduit_listener_last_error(const struct conduit_listener *l);

/* Stop listening and release everything (unpublish, unlink). NULL ok. */
CONDUIT_EXPORT void conduit_listener_close(struct conduit_listener *l);

/*
 * Read up to `len` (> 0) bytes. 0 with *nread > 0: data; 0 with *nread == 0:
 * end-of-file, the peer finished sending and everything it sent has been
 * read. Errors: EAGAIN (non-blocking), ETIMEDOUT, ECONNRESET, EPROTO, ETLS,
 * EIO. Blocking mode returns as soon as some data is there.
 */
CONDUIT_EXPORT int conduit_read(struct conduit *c, void *buf, size_t len, size_t *nread);

/*
 * Write `len` bytes. Blocking mode writes them all unless an error or the
 * timeout stops it; non-blocking mode writes what fits now (-CONDUIT_EAGAIN
 * when nothing did). *nwritten is set in every case, also on error. Errors:
 * EAGAIN, ETIMEDOUT, EPIPE (the peer closed), ECONNRESET, ESHUTDOWN (after
 * conduit_shutdown), EPROTO, ETLS, EIO.
 */
CONDUIT_EXPORT int conduit_write(struct conduit *c, const void *buf, size_t len, size_t *nwritten);

/*
 * End our direction: the peer reads end-of-file once it has read what we
 * wrote. Later writes fail with -CONDUIT_ESHUTDOWN. Blocking mode waits (at
 * most the I/O timeout); non-blocking mode returns -CONDUIT_EAGAIN until it
 * is done: wait with conduit_poll_events(c, CONDUIT_WANT_SHUTDOWN, ...) and
 * call it again. Per transport:
 *   tcp, unix  shutdown(SHUT_WR); we can still read.
 *   tls+...    close_notify (then the transport's own half-close where it
 *              has one); we can still read.
 *   vchan      no half-close on the wire (DESIGN.md): the end of the stream
 *              is the close. conduit_shutdown waits until the peer has
 *              consumed everything written, then closes the channel: the
 *              peer reads end-of-file, and so do we from then on (what the
 *              peer sends later is lost; conduit_fd is then -1 and
 *              conduit_poll_events says ready). -CONDUIT_EPIPE if the peer
 *              closed first with data of ours unread. A side that wrote
 *              nothing has nothing to end: shutdown changes nothing and it
 *              reads until the peer closes.
 */
CONDUIT_EXPORT int conduit_shutdown(struct conduit *c);

/*
 * Whether the peer's end-of-file leaves its reading side open (tcp, unix,
 * tls: it ended its direction only) or means it has closed altogether
 * (vchan: what we write from then on fails with -CONDUIT_EPIPE). A netcat
 * stops sending at the peer's end-of-file in the second case.
 */
CONDUIT_EXPORT bool conduit_has_half_close(const struct conduit *c);

/*
 * Whether the layer's handshake (tls, sodium) has finished; always true
 * without a layer. A non-blocking accept hands out a connection before its
 * handshake, which then runs inside the first calls and must finish within
 * the listener's connect timeout (-CONDUIT_ETIMEDOUT after it): a tool that
 * closes an idle connection as finished asks this first.
 */
CONDUIT_EXPORT bool conduit_handshake_done(const struct conduit *c);

/* Close and release everything. Unread data is dropped; NULL ok. */
CONDUIT_EXPORT void conduit_close(struct conduit *c);

/*
 * A descriptor to poll for this connection (owned by it), with the events
 * conduit_poll_events gives. Stacked layers (TLS) share their transport's.
 * Only to poll: its O_NONBLOCK flag follows the connection's mode (a
 * blocking unix:// or tcp:// connection sleeps in recv() on it).
 */
CONDUIT_EXPORT int conduit_fd(struct conduit *c);

/* What conduit_poll_events is asked to wait for. */
#define CONDUIT_WANT_READ 0x1u  /* data or end-of-file to read */
#define CONDUIT_WANT_WRITE 0x2u /* room to write */
#define CONDUIT_WANT_DRAIN 0x4u /* the peer has consumed all we wrote (vchan) */
/* With the above: the caller has nothing else to wait for, so a shared-memory
 * transport may watch the peer for a few microseconds before answering 0. */
#define CONDUIT_WANT_SPIN 0x8u
/* Whatever a conduit_shutdown that returned -CONDUIT_EAGAIN waits for (room
 * to write; on vchan, the peer consuming what we wrote). */
#define CONDUIT_WANT_SHUTDOWN 0x10u

/*
 * Before sleeping in poll() on conduit_fd: say what you are waiting for.
 * Returns 1 when it is possible now (do not sleep: read, write, ...), 0
 * when *events holds the poll(2) events to wait for on conduit_fd, or a
 * negative code. It consumes the transport's pending notifications (vchan
 * events), so call it before every poll, and only then: a descriptor that
 * polled readable stays so until this is called. CONDUIT_WANT_DRAIN is
 * ready at once on transports other than vchan.
 */
CONDUIT_EXPORT int conduit_poll_events(struct conduit *c, unsigned want, short *events);

/*
 * Bytes we wrote that the peer has not read yet, as far as this side can
 * know: vchan: what is still in the ring; TCP, UNIX: the socket's send queue
 * (SIOCOUTQ); TLS: its own buffer plus its transport's.
 */
CONDUIT_EXPORT int conduit_unconsumed(struct conduit *c, size_t *n);

/* Switch between blocking and non-blocking I/O. */
CONDUIT_EXPORT void conduit_set_nonblocking(struct conduit *c, bool nonblocking);
/* I/O timeout of blocking reads and writes in ms; 0: none. */
CONDUIT_EXPORT void conduit_set_timeout(struct conduit *c, int timeout_ms);

/*
 * Message for the last error on `c` ("" if none), owned by it. With NULL:
 * this thread's last failed conduit_connect or conduit_listen.
 */
CONDUIT_EXPORT const char *conduit_last_error(const struct conduit *c);

/*
 * One line about the connection, owned by it: transport, addresses or
 * domains, ring sizes, TLS version and cipher. For logs (vchan-cat -v).
 */
CONDUIT_EXPORT const char *conduit_info(const struct conduit *c);

/*
 * True for usage errors: decided before any I/O (bad URI, unsupported
 * layer, bad argument), as opposed to run-time failures.
 */
CONDUIT_EXPORT bool conduit_err_is_usage(int err);

/*
 * Keys of the sodium layer (X25519, as WireGuard writes them: 32 bytes in
 * base64, 44 characters and a newline). conduit_key_generate writes a new
 * private key to `path` (created with mode 0600; an existing file is never
 * replaced: -CONDUIT_EPERM) and puts its public key in `pub`;
 * conduit_key_public reads a private key file (refused if group or others
 * may read it, like ssh) and gives its public key. `pub`: at least
 * CONDUIT_KEY_TEXT_SIZE bytes, NUL-terminated. Errors: EINVAL, EPERM (the
 * file exists, or its mode is too open), ENOENT, EOPTION (not a key), EIO,
 * with the message in conduit_last_error(NULL).
 */
#define CONDUIT_KEY_TEXT_SIZE 45
CONDUIT_EXPORT int conduit_key_generate(const char *path, char *pub);
CONDUIT_EXPORT int conduit_key_public(const char *path, char *pub);

#ifdef __cplusplus
}
#endif
#endif
