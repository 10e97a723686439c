/* SPDX-License-Identifier: ISC */
/*
 * vchan.h: a vchan shared-memory channel, wire-compatible with Xen's
 * libxenvchan (xen/io/libxenvchan.h).
 *
 * One side is the server: it shares the pages and publishes them for one
 * client domain under a port name. The other side is the client: it maps
 * them. Each side reads one ring and writes the other.
 *
 * Conventions, for every function below (exceptions are named here):
 *
 *  - Errors: a function returning int returns 0 on success and a negative
 *    code -VCHAN_E* on failure, never -1 with errno. Two return more than
 *    0 on success: vchan_poll (1: go ahead) and vchan_fd (the descriptor).
 *    vchan_strerror and vchan_errname take a code of either sign.
 *  - Counts: byte counts and sizes come back through size_t out-parameters
 *    (vchan_read's *nread, vchan_write's *nwritten, vchan_data_ready,
 *    vchan_buffer_space), never in the return value; an out-parameter is
 *    set on every return where it is not NULL, 0 unless bytes moved
 *    (vchan_write counts the bytes written before a failure too); the
 *    opens set *out to NULL on failure. vchan_read_ring_size and
 *    vchan_write_ring_size return the size itself.
 *  - End of file: vchan_read returning 0 with *nread 0 for len > 0 (the
 *    peer closed and everything it wrote has been read). A write after
 *    the peer closed is -VCHAN_EPIPE.
 *  - Waiting: blocking handles wait up to the handle's timeout, then give
 *    -VCHAN_ETIMEDOUT; non-blocking handles never wait and give
 *    -VCHAN_EAGAIN where they would. A timeout or EAGAIN leaves the handle
 *    usable. Two failures are sticky, every later call on the handle
 *    returns them: -VCHAN_EPROTO (the peer broke the protocol) and the
 *    platform's error when notifying the peer failed after data moved.
 *  - Timeouts are in milliseconds: 0 means none, negative is -VCHAN_EINVAL.
 *  - Bad arguments (a NULL handle or pointer, an unknown flag) are
 *    -VCHAN_EINVAL; functions that cannot fail take NULL quietly and
 *    return a neutral value (vchan_close: nothing; vchan_is_open:
 *    VCHAN_STATE_CLOSED; the ring sizes: 0; the names and messages: "").
 *  - Messages: vchan_last_error (a handle's last failure) and
 *    vchan_config.errbuf (a failed open, where no handle exists) say why
 *    in words; the strings returned are never NULL and owned by the library.
 *
 * A handle is used by one thread at a time.
 */
#ifndef VCHAN_H
#define VCHAN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VCHAN_EXPORT __attribute__((visibility("default")))
#else
#define VCHAN_EXPORT
#endif

/* The error table: X(name, text). Codes are returned negated. */
#define VCHAN_ERRNO_MAP(X)                                                     \
    X(EAGAIN, "operation would block")                                         \
    X(EPIPE, "peer closed the channel")                                        \
    X(EPROTO, "peer violated the vchan protocol")                              \
    X(ETIMEDOUT, "timed out")                                                  \
    X(EINVAL, "invalid argument")                                              \
    X(EMSGSIZE, "message larger than the ring")                                \
    X(ENOMEM, "out of memory")                                                 \
    X(ENOENT, "no such channel")                                               \
    X(EPERM, "permission denied")                                              \
    X(EADDRINUSE, "channel already published")                                 \
    X(ENOTCONN, "peer not connected yet")                                      \
    X(ENOSYS, "platform not available")                                        \
    X(EIO, "platform I/O error")

enum vchan_errno {
    VCHAN_OK = 0,
#define VCHAN_ERRNO_ENUM(name, text) VCHAN_##name,
    VCHAN_ERRNO_MAP(VCHAN_ERRNO_ENUM)
#undef VCHAN_ERRNO_ENUM
    VCHAN_ERRNO_MAX
};

/* Text for a code, positive or negative; never NULL. */
VCHAN_EXPORT const char *vchan_strerror(int err);
/* Symbolic name ("EPIPE") for a code; never NULL. */
VCHAN_EXPORT const char *vchan_errname(int err);

enum vchan_log_level { VCHAN_LOG_ERROR, VCHAN_LOG_WARN, VCHAN_LOG_INFO, VCHAN_LOG_DEBUG };
typedef void vchan_log_fn(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap);

/* Default ring size of each direction for our own connections. */
#define VCHAN_DEFAULT_RING_SIZE (64u * 1024u)
/* Largest ring, as libxenvchan. */
#define VCHAN_MAX_RING_SIZE (1u << 20)
/* Longest port name: xenstore node-name characters [A-Za-z0-9_-]. */
#define VCHAN_PORT_MAX 64
/* Highest domain id a domU can have (DOMID_FIRST_RESERVED - 1). */
#define VCHAN_DOMID_MAX 32751

/*
 * Options for opening a channel. Start from VCHAN_CONFIG_INIT (or call
 * vchan_config_init), then set what you need:
 *
 *     struct vchan_config cfg = VCHAN_CONFIG_INIT(.domain = 3, .port = "data");
 *
 * The struct is versioned by its first member, struct_size, which the
 * initialiser sets to sizeof(struct vchan_config) as the caller's vchan.h
 * declares it. Later releases only append fields, so:
 *  - a struct_size below this release's size (0: a config that was only
 *    zeroed) is refused with -VCHAN_EINVAL and the message "struct
 *    vchan_config not initialised: use VCHAN_CONFIG_INIT";
 *  - a larger struct_size (a caller built against a newer vchan.h) is
 *    accepted when every byte past the fields this library knows is zero
 *    (the newer fields left at their defaults), else refused with
 *    -VCHAN_EINVAL: this library cannot honour a field it does not know.
 * Once a release has added fields, it accepts the sizes of every earlier
 * release and gives their missing fields the value 0.
 */
struct vchan_config {
    size_t struct_size;  /* set by VCHAN_CONFIG_INIT / vchan_config_init only */
    int domain;          /* peer domain id, 0..VCHAN_DOMID_MAX */
    const char *port;    /* port name, 1..64 of [A-Za-z0-9_-] */
    /*
     * Server only: minimum size in bytes of the ring this side reads and of
     * the ring it writes, at most VCHAN_MAX_RING_SIZE. 0 means
     * VCHAN_DEFAULT_RING_SIZE. Orders are then chosen as libxenvchan's
     * server does: (1024, 2048) or less gives the 1 KiB and 2 KiB rings
     * inside the control page, larger sizes get granted pages.
     */
    size_t read_size, write_size;
    bool nonblocking;    /* I/O returns -VCHAN_EAGAIN instead of waiting */
    int timeout_ms;      /* limit of every wait (open and I/O); 0: none */
    /* "xen" or "local"; NULL: VCHAN_PLATFORM, else detect; "": detect (vchan_platform_select). */
    const char *platform;
    vchan_log_fn *log;   /* NULL: silent */
    void *log_ctx;
    /* When open fails, a message saying why is written here (if non-NULL). */
    char *errbuf;
    size_t errbuf_len;
};

/*
 * An initialiser for struct vchan_config: every field 0 (NULL, false) but
 * struct_size, then the designated initialisers given, if any:
 * VCHAN_CONFIG_INIT() or VCHAN_CONFIG_INIT(.domain = 0, .port = "p").
 * (C++, where designators must follow the declaration order: use
 * vchan_config_init, then assign.)
 */
#define VCHAN_CONFIG_INIT(...)                                  \
    {                                                           \
        .struct_size = sizeof(struct vchan_config), __VA_ARGS__ \
    }

/* The same at run time: zero *cfg and set its struct_size. NULL is ignored. */
VCHAN_EXPORT void vchan_config_init(struct vchan_config *cfg);

struct vchan;

/*
 * Server: share a ring for client `cfg->domain` and publish it under
 * `cfg->port`. Returns as soon as the ring is published; the client may
 * connect later (vchan_is_open gives VCHAN_STATE_WAITING until then), and
 * blocking I/O waits for it. Use vchan_wait_connected to wait explicitly.
 * Errors: EINVAL (bad config), EADDRINUSE, EPERM, ENOMEM, ENOSYS, EIO;
 * ENOENT on Xen when a privileged server's client domain does not exist
 * (checked before anything is shared).
 */
VCHAN_EXPORT int vchan_server_open(struct vchan **out, const struct vchan_config *cfg);

/*
 * Client: connect to server domain `cfg->domain`, port `cfg->port`. Waits
 * for the server to appear, up to cfg->timeout_ms (0: without limit).
 * Errors: ETIMEDOUT (no server appeared), EPROTO (the server's page is
 * malformed), EPERM, ENOMEM, ENOSYS, EIO.
 */
VCHAN_EXPORT int vchan_client_open(struct vchan **out, const struct vchan_config *cfg);

/* Close: mark our side closed, notify the peer, release everything. NULL ok. */
VCHAN_EXPORT void vchan_close(struct vchan *v);

enum vchan_state {
    VCHAN_STATE_CLOSED = 0,  /* peer closed (unread data may remain) */
    VCHAN_STATE_OPEN = 1,
    VCHAN_STATE_WAITING = 2, /* server: client not connected yet */
};
/* Connection state as the peer's live byte gives it; never blocks. */
VCHAN_EXPORT enum vchan_state vchan_is_open(struct vchan *v);

/*
 * Server: wait until the client has connected (or closed again), within
 * the handle's timeout. 0, -VCHAN_ETIMEDOUT, -VCHAN_EAGAIN (non-blocking,
 * not yet), -VCHAN_EPROTO.
 */
VCHAN_EXPORT int vchan_wait_connected(struct vchan *v);

/*
 * Stream read: copy up to `len` bytes into `buf` (at least one unless
 * non-blocking). *nread = 0 with return 0 for len > 0 means end-of-file: the
 * peer closed and everything it wrote has been read. -VCHAN_EAGAIN (non-blocking, no
 * data), -VCHAN_ETIMEDOUT, -VCHAN_EPROTO.
 */
VCHAN_EXPORT int vchan_read(struct vchan *v, void *buf, size_t len, size_t *nread);

/*
 * Stream write: blocking mode writes all `len` bytes (waiting for space)
 * unless the timeout expires or the peer closes; non-blocking mode writes
 * what fits (-VCHAN_EAGAIN when nothing fits). *nwritten is set in every
 * case, also on error. -VCHAN_EPIPE: the peer closed.
 */
VCHAN_EXPORT int vchan_write(struct vchan *v, const void *buf, size_t len, size_t *nwritten);

/*
 * Packet I/O: all or nothing. send waits (blocking) until `len` bytes of
 * space exist; -VCHAN_EMSGSIZE when len exceeds the ring. recv waits until
 * `len` bytes are ready; a peer that closed with fewer ready gives
 * -VCHAN_EPIPE and leaves them unread.
 */
VCHAN_EXPORT int vchan_send(struct vchan *v, const void *buf, size_t len);
VCHAN_EXPORT int vchan_recv(struct vchan *v, void *buf, size_t len);

/* Bytes ready to read / free space to write; they also ask the peer to
 * notify us when that changes, so a poll on vchan_fd will see it. */
VCHAN_EXPORT int vchan_data_ready(struct vchan *v, size_t *ready);
VCHAN_EXPORT int vchan_buffer_space(struct vchan *v, size_t *space);

/* What vchan_poll is asked about. */
#define VCHAN_WANT_READ 0x1u  /* data (or end-of-file) to read */
#define VCHAN_WANT_WRITE 0x2u /* room to write */
#define VCHAN_WANT_DRAIN 0x4u /* the peer has consumed all we wrote */
#define VCHAN_WANT_SPIN 0x8u  /* the caller has nothing else to do: watch briefly first */

/*
 * Before sleeping in poll() on vchan_fd: can `want` progress now? 1: yes,
 * or the peer closed (a read gives what is left, then end-of-file; a write
 * -VCHAN_EPIPE); go and do it. 0: not yet; the pending event has been
 * consumed and the peer asked to signal, so vchan_fd polls readable when
 * it does. Negative: an error (-VCHAN_EPROTO). A busy channel costs no
 * system call here: events are consumed only on the way to sleep. With
 * VCHAN_WANT_SPIN it first watches the peer's indices for a bounded,
 * adaptive while (tens of microseconds at most), which saves a sleep and a
 * wake-up when the peer is active. Never blocks otherwise, whatever the
 * handle's mode. `want` 0: only consume what is pending, return 0.
 */
VCHAN_EXPORT int vchan_poll(struct vchan *v, unsigned want);

/* Ring sizes in bytes, fixed at open. */
VCHAN_EXPORT size_t vchan_read_ring_size(const struct vchan *v);
VCHAN_EXPORT size_t vchan_write_ring_size(const struct vchan *v);

/*
 * A file descriptor that polls readable when an event is pending. After it
 * does, call vchan_wait (it will not block) to consume the event before
 * polling again. Owned by the handle. Negative: -VCHAN_EINVAL (NULL
 * handle), -VCHAN_ENOSYS (a platform without descriptors: the unikernel).
 */
VCHAN_EXPORT int vchan_fd(struct vchan *v);

/*
 * Wait for an event from the peer (data, space, connect or close) and
 * consume it. Blocking: waits up to the handle's timeout (-VCHAN_ETIMEDOUT).
 * Non-blocking: consumes what is pending, -VCHAN_EAGAIN when none is.
 * Spurious wake-ups happen: re-check the state after it returns.
 */
VCHAN_EXPORT int vchan_wait(struct vchan *v);

/*
 * Change the timeout of every later wait; 0 means none. 0, or
 * -VCHAN_EINVAL (NULL handle, negative timeout: the timeout is unchanged).
 */
VCHAN_EXPORT int vchan_set_timeout(struct vchan *v, int timeout_ms);
/* Switch between blocking and non-blocking I/O. 0, or -VCHAN_EINVAL (NULL handle). */
VCHAN_EXPORT int vchan_set_nonblocking(struct vchan *v, bool nonblocking);

/* The platform in use ("xen", "local" or "unikernel"); "" for NULL. */
VCHAN_EXPORT const char *vchan_platform_name(const struct vchan *v);

/*
 * The platform an open whose vchan_config.platform is `name` would use,
 * without opening anything, so that callers (libconduit) decide as libvchan
 * does: `name` when it names one; NULL: the VCHAN_PLATFORM environment
 * variable, when set and not empty; otherwise (and for "") "xen" when Xen's
 * event channel device opens, else "local". The unikernel library has
 * only "unikernel" (and takes "xen" for it). 0 with *selected pointing to
 * the static name; -VCHAN_EINVAL for an unknown name, -VCHAN_ENOSYS for a
 * platform this build lacks, with a message in errbuf (if non-NULL).
 */
VCHAN_EXPORT int vchan_platform_select(const char *name, const char **selected, char *errbuf,
                                       size_t errbuf_len);

/* Message for the last error on this handle ("" if none); owned by it. */
VCHAN_EXPORT const char *vchan_last_error(const struct vchan *v);

/* ------------------------------------------- inspecting a control page */

/*
 * A snapshot of a channel's shared control page, as a debugger reads it
 * (vchan-cat --stat): every field read once, checked, and never trusted
 * further. Works on the live mapping or on a copy; the page stays the
 * peer's, so nothing here writes to it. Set .size = sizeof(struct
 * vchan_page_view) (VCHAN_PAGE_VIEW_INIT) so that fields appended later do
 * not break older callers; vchan_page_inspect fills what fits.
 */
struct vchan_ring_view {
    uint32_t order;      /* as the page says; valid: 10..20 */
    uint32_t size;       /* 1 << order; 0 when the order is out of range */
    uint32_t prod, cons; /* the ring's indices, free-running */
    uint32_t fill;       /* prod - cons: bytes written and not yet read */
};

struct vchan_page_view {
    size_t size;                  /* sizeof(struct vchan_page_view) */
    struct vchan_ring_view left;  /* client -> server */
    struct vchan_ring_view right; /* server -> client */
    uint8_t cli_live, srv_live;   /* 0 closed, 1 open, 2 waiting (client only) */
    uint8_t cli_notify, srv_notify; /* VCHAN_NOTIFY_* bits asked of that side */
    bool corrupt;                 /* a value no correct peer writes */
    char problem[96];             /* why, when corrupt */
};
#define VCHAN_PAGE_VIEW_INIT {.size = sizeof(struct vchan_page_view)}

/*
 * What the notify bits ask: tell me when you write / when you consume.
 * Spelled exactly as Xen's <xen/io/libxenvchan.h> does, so that a program
 * including both headers gets no redefinition.
 */
#define VCHAN_NOTIFY_WRITE 0x1
#define VCHAN_NOTIFY_READ 0x2

/*
 * Read the control page at `page` (`len` bytes, at least 24; a whole page
 * for in-page rings to be checked too). 0, or -VCHAN_EINVAL for a NULL
 * pointer, a short page or a view whose .size is unset. Corruption is not
 * an error: it is reported in the view.
 */
VCHAN_EXPORT int vchan_page_inspect(const void *page, size_t len, struct vchan_page_view *view);

enum vchan_verdict {
    VCHAN_VERDICT_IDLE,           /* open, nothing to move, nobody waiting */
    VCHAN_VERDICT_FLOWING,        /* indices moved between the snapshots */
    VCHAN_VERDICT_READER_WAITING, /* a side asked to be told of data; none */
    VCHAN_VERDICT_WRITER_WAITING, /* a ring is full */
    VCHAN_VERDICT_NOTIFY_LOST,    /* a side waits for what is already there */
    VCHAN_VERDICT_CONNECTING,     /* the server waits for its client */
    VCHAN_VERDICT_PEER_GONE,      /* a side has closed */
    VCHAN_VERDICT_CORRUPT,        /* see vchan_page_view.problem */
};

/*
 * Judge a channel from two snapshots `still_ms` apart (`before` NULL: one
 * snapshot, nothing known to move). NOTIFY_LOST needs still_ms >= 1000 with
 * no index moving. `why` (if non-NULL) gets a sentence naming the side and
 * ring; it points into static storage of the library or into `now`.
 */
VCHAN_EXPORT enum vchan_verdict vchan_page_verdict(const struct vchan_page_view *before,
                                                   const struct vchan_page_view *now,
                                                   uint64_t still_ms, const char **why);
/* "idle", "flowing", "reader waiting for data", ...; never NULL. */
VCHAN_EXPORT const char *vchan_verdict_name(enum vchan_verdict verdict);

/* ------------------------------------- finding and mapping channels */

/*
 * What a rendezvous shows of one channel (vchan-cat --list). Fields may be
 * appended: read only those of the .size the library gives.
 */
struct vchan_channel {
    size_t size;          /* of what the library filled */
    const char *platform; /* "xen" or "local" */
    int server, client;   /* domain ids; client -1: a local accept service */
    const char *server_name, *client_name; /* Xen: the domains' names; NULL if unknown */
    const char *port;
    bool published;       /* the server's rendezvous entry is there */
    bool has_page;        /* a control page was found (local: a process holds it) */
    bool connected;       /* the page says the client has connected */
    uint32_t ring_ref;    /* Xen: the control page's grant reference */
    uint32_t evtchn;      /* Xen: the server's event channel port */
    long pid;             /* local: a process that holds the page, 0 if none */
};

/* Called once a channel; a non-zero return stops the listing and is returned. */
typedef int vchan_channel_fn(void *ctx, const struct vchan_channel *ch);

/*
 * List the channels of `platform` (NULL: VCHAN_PLATFORM, else detect, as
 * opening does) whose server is domain `server` (-1: every domain this one
 * may read). On Xen, the /local/domain/<server>/data/vchan/<client>/<port>
 * entries xenstore lets us read; on the local platform, the channels of
 * the rendezvous directory: servers waiting for a client, and pages held
 * by processes of this user (all users for root). 0, fn's non-zero return,
 * or a negative VCHAN_E* with a message in errbuf.
 */
VCHAN_EXPORT int vchan_list_channels(const char *platform, int server, vchan_channel_fn *fn,
                                     void *ctx, char *errbuf, size_t errlen);

/*
 * Map the control page of channel (server, client, port) read-only (client
 * -1: this domain, VCHAN_DOMID on the local platform), where this domain may (local: a page held by a process of this user, or any for
 * root; Xen: a channel whose client is this domain, through its grant). The
 * page is the peer's: read it with vchan_page_inspect only. -VCHAN_ENOENT
 * (no such channel), -VCHAN_EPERM (not allowed: errbuf says why and what
 * the rendezvous shows instead), -VCHAN_ENOSYS, -VCHAN_EIO.
 */
struct vchan_page;
VCHAN_EXPORT int vchan_page_open(struct vchan_page **out, const char *platform, int server,
                                 int client, const char *port, char *errbuf, size_t errlen);
/* The mapped page (VCHAN_PAGE_SIZE bytes). */
VCHAN_EXPORT const void *vchan_page_addr(const struct vchan_page *page);
VCHAN_EXPORT void vchan_page_close(struct vchan_page *page);
#define VCHAN_PAGE_SIZE 4096u

#ifdef __cplusplus
}
#endif
#endif
