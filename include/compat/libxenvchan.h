/* SPDX-License-Identifier: ISC */
/*
 * libxenvchan.h: the API of Xen 4.17's libxenvchan, as vchan-conduit's
 * drop-in (libxenvchan.so.4.17, docs/compat.md) provides it. Written for
 * vchan-conduit; source-compatible with Xen's <libxenvchan.h>: the same
 * functions, the same struct libxenvchan (callers read and write its
 * fields), the same wire structs.
 *
 * Return conventions (as libxenvchan's):
 *  - read/write return the bytes moved, 0 when a non-blocking call could
 *    move nothing, -1 when the peer has closed (or on an error);
 *  - recv/send move all `size` bytes or none: `size`, 0 (non-blocking, not
 *    yet), -1 (closed, larger than the ring while blocking, an error);
 *  - is_open: 0 closed, 1 open, 2 server waiting for its client.
 * vchan-conduit sets errno on every -1 (EPIPE: closed; EPROTO: the peer broke
 * the protocol; EINVAL, ENOMEM, ...).
 */
#ifndef VCHAN_COMPAT_LIBXENVCHAN_H
#define VCHAN_COMPAT_LIBXENVCHAN_H

#include <stddef.h>
#include <stdint.h>

/* The shared page's layout: Xen's public header when it is installed, else our own. */
#if defined(__has_include)
#if __has_include(<xen/io/libxenvchan.h>)
#define VCHAN_COMPAT_HAVE_XEN_IO 1
#endif
#endif

#ifdef VCHAN_COMPAT_HAVE_XEN_IO
#include <xen/io/libxenvchan.h>
#else
#ifndef VCHAN_NOTIFY_WRITE
#define VCHAN_NOTIFY_WRITE 0x1 /* tell me when you write */
#endif
#ifndef VCHAN_NOTIFY_READ
#define VCHAN_NOTIFY_READ 0x2 /* tell me when you consume */
#endif
/* One ring's indices, free-running, in the control page. */
struct ring_shared {
    uint32_t cons, prod;
};
/* The control page, as the peer sees it (xen/io/libxenvchan.h). */
struct vchan_interface {
    struct ring_shared left, right; /* left: client -> server; right: server -> client */
    uint16_t left_order, right_order; /* 10, 11: in this page; 12..20: granted pages */
    uint8_t cli_live, srv_live;       /* 0 closed, 1 open, 2 client not yet connected */
    uint8_t cli_notify, srv_notify;   /* VCHAN_NOTIFY_* bits asked of that side */
    uint32_t grants[];                /* left ring's pages, then the right ring's */
};
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque handles of Xen's libraries (the same typedefs as theirs). */
typedef struct xenevtchn_handle xenevtchn_handle;
typedef struct xengntdev_handle xengnttab_handle;
typedef struct xengntdev_handle xengntshr_handle;
struct xentoollog_logger;

/* One direction, as this side uses it. */
struct libxenvchan_ring {
    struct ring_shared *shr; /* the indices, in the control page */
    void *buffer;            /* the ring's bytes */
    int order;               /* size is 1 << order, fixed at connect */
};

struct libxenvchan {
    union {
        xengntshr_handle *gntshr; /* server */
        xengnttab_handle *gnttab; /* client */
    };
    struct vchan_interface *ring; /* the shared control page */
    xenevtchn_handle *event;      /* Xen: the event channel handle; NULL on the local platform */
    uint32_t event_port;          /* our end of the event channel */
    int is_server : 1;            /* test for nonzero only (a signed 1-bit field) */
    int server_persist : 1;       /* server: is_open says 1 even after the client left */
    int blocking : 1;             /* I/O waits instead of returning 0; read on every call */
    struct libxenvchan_ring read, write;
    char *xs_path; /* server: the xenstore path it published */
};

/*
 * Server: share rings for client `domain` and publish them at `xs_path`
 * (vchan-conduit's local platform: "/local/domain/<server>/data/vchan/<client>/<port>"
 * or "data/vchan/<client>/<port>"). Minimum ring sizes: 1024/2048 or less
 * use the control page itself. Returns at once; NULL on failure.
 */
struct libxenvchan *libxenvchan_server_init(struct xentoollog_logger *logger, int domain,
                                            const char *xs_path, size_t read_min,
                                            size_t write_min);
/* Client: connect to server domain `domain` at `xs_path`. NULL on failure. */
struct libxenvchan *libxenvchan_client_init(struct xentoollog_logger *logger, int domain,
                                            const char *xs_path);
/* Close and free; the server also removes what it published. NULL is ignored. */
void libxenvchan_close(struct libxenvchan *ctrl);

int libxenvchan_recv(struct libxenvchan *ctrl, void *data, size_t size);
int libxenvchan_read(struct libxenvchan *ctrl, void *data, size_t size);
int libxenvchan_send(struct libxenvchan *ctrl, const void *data, size_t size);
int libxenvchan_write(struct libxenvchan *ctrl, const void *data, size_t size);
/* Wait for an event from the peer and consume it (blocks whatever `blocking` says). 0 or -1. */
int libxenvchan_wait(struct libxenvchan *ctrl);
/* A descriptor that polls readable when libxenvchan_wait would not block. */
int libxenvchan_fd_for_select(struct libxenvchan *ctrl);
int libxenvchan_is_open(struct libxenvchan *ctrl);
/* Bytes ready to read; free bytes to write (both ask the peer to signal changes). */
int libxenvchan_data_ready(struct libxenvchan *ctrl);
int libxenvchan_buffer_space(struct libxenvchan *ctrl);

#ifdef __cplusplus
}
#endif
#endif
