/* SPDX-License-Identifier: ISC */
/*
 * The local platform's state, shared by its two halves: local.c emulates
 * Xen's grants and event channel (memfd, eventfds, epoll) and is the
 * platform table; local_handshake.c is the rendezvous protocol on the UNIX
 * socket (listen, accept, connect, the messages of local_wire.h). Private
 * to libvchan/platform.
 */
#ifndef VCHAN_LOCAL_H
#define VCHAN_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>
#include <unistd.h>

#include "libvchan/platform/hosted.h"
#include "libvchan/platform/local_dir.h"
#include "libvchan/platform/local_wire.h"

#define PAGE VCHAN__PAGE_SIZE
/* Control page + two 1 MiB rings is 513 pages; anything above is not ours. */
#define MAX_PAGES 1024u
/* setup.c shares or maps at most three regions per channel. */
#define MAX_REGIONS 8
/* The only event channel of a channel; any number would do. */
#define LOCAL_EVTCHN 1u

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

enum { TAG_LISTEN = 1, TAG_CONN, TAG_EVENT };

struct region {
    uint8_t *addr; /* NULL: free slot */
    size_t npages;
    uint32_t first; /* server: page index of addr in the memfd */
};

struct local {
    struct vchan *v;
    bool server;
    int server_domid, client_domid;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

    int epfd;
    int listenfd; /* server, until a client is accepted */
    int connfd;   /* the accepted or connected socket: its hang-up is the peer's death */
    int memfd;
    int evt_own;       /* we wait on it */
    int evt_peer;      /* we notify through it */
    bool evtchn_ready; /* server: allocated; client: bound */
    bool looked_up;    /* client: got the server's descriptors */
    bool sealed;       /* server: the memfd has its final size */

    struct vchan__local_sock sock; /* server: path is our socket, identified by dev/ino */

    size_t npages; /* pages in the memfd */
    uint32_t ring_ref;

    /* Our own unmap-notify byte (server: told to the client in the reply). */
    uint32_t own_notify_ref, own_notify_off;
    /* The peer's unmap-notify byte, as it told us. */
    uint32_t peer_notify_ref, peer_notify_off;
    uint8_t *peer_live; /* where that byte is in our mappings, once known */

    bool hangup; /* sticky: the peer is gone for good */
    bool warned_junk;
    uint8_t inbuf[sizeof(struct vchan__local_notice)];
    size_t inlen;

    struct region regions[MAX_REGIONS];
};


static inline void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* local.c: add fd to the channel's epoll set, tagged; -VCHAN_EIO recorded on failure. */
int vchan__local_watch(struct local *st, int fd, uint32_t events, uint32_t tag);

/*
 * local_handshake.c, server: bind and listen on st->path (making the
 * directory), watched as TAG_LISTEN. 0 or -VCHAN_E*; nothing left bound on
 * failure.
 */
int vchan__local_listen(struct local *st);
/*
 * Server: one pending connection on the listening socket: check who it is,
 * give it the channel (st->connfd, and the socket leaves the directory) or
 * refuse it. 0 whatever became of the client, or an error of our own that
 * will not go away by itself.
 */
int vchan__local_accept(struct local *st);
/* Server: whether a notice the client sent is well-formed for this channel (warns once if not). */
bool vchan__local_notice_check(struct local *st, const struct vchan__local_notice *m);

/*
 * Client: connect to st->path and take the server's descriptors and page
 * count into st, retrying while nobody is there, up to timeout_ms (-1:
 * none; 0: one try). 0 with *fd the connected socket, or -VCHAN_E*.
 */
int vchan__local_connect(struct local *st, int timeout_ms, int *fd);
/* Client: tell the server where our live byte is; a gone server is seen by its hang-up. */
void vchan__local_notice_send(struct local *st, uint32_t ref, uint32_t offset);

#endif
