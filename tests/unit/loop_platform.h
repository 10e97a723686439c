/* SPDX-License-Identifier: ISC */
/*
 * loop_platform: a test platform that puts both ends of a vchan in one
 * process, so the real set-up and ring code (vchan__server_open,
 * vchan__client_open, vchan_read, ...) runs deterministically and a test
 * can reach into the shared page to play a hostile peer.
 *
 * - share() gives each call one contiguous block of zeroed pages from
 *   mmap, between two PROT_NONE guard pages (a stray access faults at
 *   once, in any build), with consecutive grant refs starting at 8 (0..7
 *   are never valid, as on Xen). A block lives until the sharer and every
 *   mapper have let go, as a granted page does.
 * - map() hands back the very memory the sharer got (both ends see one
 *   address, which is what lets ThreadSanitizer check the data hand-over).
 *   The refs must be a consecutive run inside one block; anything else
 *   (unknown refs, gaps, repeats, two blocks) is -VCHAN_EPROTO. The
 *   read-only flag is not enforced: one mapping serves both ends.
 * - An event channel is a pair of eventfds, one per end: notify() bumps
 *   the other end's, wait() polls and drains one's own. Notify calls are
 *   counted per end.
 * - publish()/lookup() use a process-wide registry keyed by port name
 *   (domains are not checked); lookup waits for a publish up to its timeout.
 * - Faults can be injected into any operation, and loop_crash() plays a
 *   process dying without vchan_close (unmap-notify plus hang-up).
 *
 * Thread-safe: the two ends may run in different threads.
 */
#ifndef VCHAN_TESTS_LOOP_PLATFORM_H
#define VCHAN_TESTS_LOOP_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>

#include "libvchan/core/internal.h"

extern const struct vchan__platform loop_platform;

enum loop_op {
    LOOP_OPEN,
    LOOP_EVTCHN_ALLOC,
    LOOP_SHARE,
    LOOP_PUBLISH,
    LOOP_LOOKUP,
    LOOP_BIND,
    LOOP_MAP,
    LOOP_NOTIFY,
    LOOP_WAIT,
    LOOP_ALLOC,
    LOOP_OP_MAX
};

/* Make the nth call (1 = the next one) of `op` fail with `err` (negative). */
void loop_fail(enum loop_op op, unsigned nth, int err);
/* Forget all pending injected faults and zero the log counter. */
void loop_reset(void);

/*
 * Blocks, event channels and registry entries still alive, plus handles and
 * per-channel states not freed. 0 when every open was matched by a close.
 */
size_t loop_outstanding(void);

/* How many times this end has called notify(). */
unsigned loop_notify_count(const struct vchan *v);
/* Is an event waiting for this end (without consuming it)? */
bool loop_event_pending(const struct vchan *v);
/* Consume this end's pending events; returns how many notifies they were. */
unsigned loop_events_take(const struct vchan *v);
/*
 * Play the death of the process owning `v` (which must still be closed
 * with vchan_close afterwards to free memory): clear its unmap-notify byte,
 * signal the peer and report a hang-up to the peer's next wait.
 */
void loop_crash(struct vchan *v);

/*
 * Call `hook` inside every later map(), after its checks and before it
 * returns, with the map's number (1 = the first after this call) and the
 * refs it was given: a test can rewrite the page between a client's maps
 * (double-fetch checks). NULL removes it; loop_reset() too.
 */
typedef void loop_map_hook(void *ctx, unsigned nth, const uint32_t *refs, size_t npages);
void loop_set_map_hook(loop_map_hook *hook, void *ctx);

/* How many messages the core logged since loop_reset, and the last one. */
unsigned loop_log_count(void);
const char *loop_last_log(void);

#endif
