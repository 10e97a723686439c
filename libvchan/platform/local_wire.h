/* SPDX-License-Identifier: ISC */
/*
 * The local platform's handshake messages on its rendezvous socket
 * (<dir>/<server>.<client>.<port>, local_dir.h): the one definition, used by
 * the platform (libvchan/platform/local_handshake.c) and by the tests that
 * play a hand-made peer (tests/unit/fake_local.h). Not part of the API.
 *
 * One host, so native byte order. The exchange:
 *   client -> server  hello, right after connect;
 *   server -> client  reply; status 0 comes with VCHAN__LOCAL_NFDS
 *                     descriptors attached (SCM_RIGHTS), in the order of
 *                     the enum below;
 *   client -> server  notice, after it mapped the control page: the byte to
 *                     clear if the client vanishes (the emulated unmap-notify).
 * Then the connection stays open, silent, for the life of the channel.
 */
#ifndef VCHAN_LOCAL_WIRE_H
#define VCHAN_LOCAL_WIRE_H

#include <stdint.h>

#define VCHAN__LOCAL_MSG_VERSION 1u
#define VCHAN__LOCAL_MAGIC_HELLO 0x6c6c6568u  /* "hell" */
#define VCHAN__LOCAL_MAGIC_REPLY 0x796c7072u  /* "rply" */
#define VCHAN__LOCAL_MAGIC_NOTICE 0x6563746eu /* "ntce" */
/* notify_ref and notify_offset of a reply without an unmap-notify byte. */
#define VCHAN__LOCAL_NO_NOTIFY UINT32_MAX

/* Client -> server, right after connect. */
struct vchan__local_hello {
    uint32_t magic, version;
    uint32_t client_domid, server_domid; /* what the client believes: checked */
};

/* Server -> client: status 0 comes with the descriptors attached. */
struct vchan__local_reply {
    uint32_t magic, version;
    uint32_t status; /* 0 or a VCHAN_E* code saying why the client was refused */
    uint32_t ring_ref, evtchn, npages;
    uint32_t notify_ref, notify_offset; /* the server's live byte, or VCHAN__LOCAL_NO_NOTIFY */
};

/* Client -> server after map: the byte to clear if the client vanishes. */
struct vchan__local_notice {
    uint32_t magic, version;
    uint32_t ref, offset;
};

/* The descriptors of a reply, in order: the memfd, the server's eventfd, the client's. */
enum {
    VCHAN__LOCAL_FD_MEM,
    VCHAN__LOCAL_FD_TO_SERVER,
    VCHAN__LOCAL_FD_TO_CLIENT,
    VCHAN__LOCAL_NFDS
};

#endif
