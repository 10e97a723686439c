/* SPDX-License-Identifier: ISC */
/*
 * libvchan.h: Qubes OS's libvchan API (as QubesOS/qubes-core-vchan-xen
 * declares it) over vchan-conduit's ring: libvchan-conduit.so.0,
 * `pkg-config vchan-conduit`, so Qubes programs build with
 * BACKEND_VMM=conduit. Written for vchan-conduit; the names, types and
 * values are the API's. Semantics: vchan-compat(3), docs/compat.md.
 */
#ifndef LIBVCHAN_H
#define LIBVCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A descriptor to poll (libvchan_fd_for_select, the async client's watch). */
typedef int EVTCHN;

/* libvchan_is_open */
#define VCHAN_DISCONNECTED 0 /* the peer closed, or its domain (process) is gone */
#define VCHAN_CONNECTED 1
#define VCHAN_WAITING 2 /* server: no client yet; async client: no server yet */

struct libvchan;
typedef struct libvchan libvchan_t;

/*
 * Server for client domain `domain` on integer port `port`, published at
 * data/vchan/<domain>/<port> of our domain. Blocking. NULL with errno set.
 */
libvchan_t *libvchan_server_init(int domain, int port, size_t read_min, size_t write_min);

/* Client of server domain `domain`, port `port`: waits for the server. Blocking. */
libvchan_t *libvchan_client_init(int domain, int port);

/*
 * The same without waiting: poll *watch_fd for POLLIN and call
 * libvchan_client_init_async_finish each time it is readable, until it
 * returns 0 (connected, `blocking` as given) or a negative value (failed:
 * libvchan_close the handle). 1: not yet.
 */
libvchan_t *libvchan_client_init_async(int domain, int port, EVTCHN *watch_fd);
int libvchan_client_init_async_finish(libvchan_t *ctrl, bool blocking);

/* libxenvchan's conventions: bytes moved, 0 (non-blocking: none), -1 with errno. */
int libvchan_write(libvchan_t *ctrl, const void *data, size_t size);
int libvchan_send(libvchan_t *ctrl, const void *data, size_t size);
int libvchan_read(libvchan_t *ctrl, void *data, size_t size);
int libvchan_recv(libvchan_t *ctrl, void *data, size_t size);
int libvchan_wait(libvchan_t *ctrl);
void libvchan_close(libvchan_t *ctrl);
EVTCHN libvchan_fd_for_select(libvchan_t *ctrl);
int libvchan_is_open(libvchan_t *ctrl);

int libvchan_data_ready(libvchan_t *ctrl);
int libvchan_buffer_space(libvchan_t *ctrl);
/* After a successful init (an async client: prefer finish's `blocking`). */
void libvchan_set_blocking(libvchan_t *ctrl, bool blocking);

#ifdef __cplusplus
}
#endif

#endif
