/* SPDX-License-Identifier: ISC */
/*
 * fake_local: what the tests that play a hand-made peer of the local
 * platform share (tests/unit/test_local.c's fake servers and hostile
 * clients, tests/fuzz/fuzz_local_handshake.c): the rendezvous messages,
 * sending them with descriptors attached, and counting our descriptors for
 * leak checks.
 *
 * The messages are libvchan/platform/local_wire.h's, the platform's own
 * definition. What a peer sees of them (sizes, offsets, magic numbers) is
 * also stated here, independently, and checked when this compiles: a change
 * to the wire format fails the tests' build instead of passing unnoticed.
 */
#ifndef VCHAN_TESTS_FAKE_LOCAL_H
#define VCHAN_TESTS_FAKE_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "libvchan/platform/local_wire.h"

/* Version 1 of the format, as on the wire: native-endian 32-bit words. */
_Static_assert(VCHAN__LOCAL_MSG_VERSION == 1, "local wire: version");
_Static_assert(VCHAN__LOCAL_MAGIC_HELLO == 0x6c6c6568u, "local wire: hello magic");
_Static_assert(VCHAN__LOCAL_MAGIC_REPLY == 0x796c7072u, "local wire: reply magic");
_Static_assert(VCHAN__LOCAL_MAGIC_NOTICE == 0x6563746eu, "local wire: notice magic");
_Static_assert(VCHAN__LOCAL_NO_NOTIFY == 0xffffffffu, "local wire: no-notify value");
_Static_assert(sizeof(struct vchan__local_hello) == 16 &&
                   offsetof(struct vchan__local_hello, client_domid) == 8 &&
                   offsetof(struct vchan__local_hello, server_domid) == 12,
               "local wire: hello is magic, version, client domid, server domid");
_Static_assert(sizeof(struct vchan__local_reply) == 32 &&
                   offsetof(struct vchan__local_reply, status) == 8 &&
                   offsetof(struct vchan__local_reply, ring_ref) == 12 &&
                   offsetof(struct vchan__local_reply, evtchn) == 16 &&
                   offsetof(struct vchan__local_reply, npages) == 20 &&
                   offsetof(struct vchan__local_reply, notify_ref) == 24 &&
                   offsetof(struct vchan__local_reply, notify_offset) == 28,
               "local wire: reply is magic, version, status, ring-ref, evtchn, npages, notify "
               "ref and offset");
_Static_assert(sizeof(struct vchan__local_notice) == 16 &&
                   offsetof(struct vchan__local_notice, ref) == 8 &&
                   offsetof(struct vchan__local_notice, offset) == 12,
               "local wire: notice is magic, version, ref, offset");
_Static_assert(VCHAN__LOCAL_FD_MEM == 0 && VCHAN__LOCAL_FD_TO_SERVER == 1 &&
                   VCHAN__LOCAL_FD_TO_CLIENT == 2 && VCHAN__LOCAL_NFDS == 3,
               "local wire: a reply carries memfd, to-server and to-client eventfds");

/* The most descriptors fake_send_fds attaches. */
#define FAKE_MAX_FDS 8

/* One sendmsg of len bytes with nfds (at most FAKE_MAX_FDS) descriptors attached: its result. */
ssize_t fake_send_fds(int sock, const void *buf, size_t len, const int *fds, size_t nfds);

/* Open descriptors of this process (/proc/self/fd), or -1. */
int fake_count_fds(void);

#endif
