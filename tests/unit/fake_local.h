/* SPDX-License-Identifier: ISC */
/*
 * fake_local: what the tests that play a hand-made peer of the local
 * platform share (tests/unit/test_local.c's fake servers and hostile
 * clients, tests/fuzz/fuzz_local_handshake.c): the rendezvous messages,
 * sending them with descriptors attached, and counting our descriptors for
 * leak checks.
 *
 * The message layouts mirror libvchan/platform/local.c's on purpose, as an
 * independent statement of the format: keep them in step with it.
 */
#ifndef VCHAN_TESTS_FAKE_LOCAL_H
#define VCHAN_TESTS_FAKE_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MSG_VERSION 1u
#define MAGIC_HELLO 0x6c6c6568u  /* "hell" */
#define MAGIC_REPLY 0x796c7072u  /* "rply" */
#define MAGIC_NOTICE 0x6563746eu /* "ntce" */
#define NO_NOTIFY UINT32_MAX

/* Client -> server, right after connect. */
struct msg_hello {
    uint32_t magic, version, client_domid, server_domid;
};
/* Server -> client: status 0 comes with [memfd, to-server, to-client] attached. */
struct msg_reply {
    uint32_t magic, version, status, ring_ref, evtchn, npages, notify_ref, notify_offset;
};
/* Client -> server after map: the byte to clear if the client vanishes. */
struct msg_notice {
    uint32_t magic, version, ref, offset;
};

/* The most descriptors fake_send_fds attaches. */
#define FAKE_MAX_FDS 8

/* One sendmsg of len bytes with nfds (at most FAKE_MAX_FDS) descriptors attached: its result. */
ssize_t fake_send_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds);

/* Open descriptors of this process (/proc/self/fd), or -1. */
int fake_count_fds(void);

#endif
