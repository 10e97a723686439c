/* SPDX-License-Identifier: ISC */
/*
 * The one deadline convention of every layer (ring core, platforms,
 * libconduit). Freestanding: the caller passes the time.
 *
 *   timeout (int ms):    < 0 no limit, 0 do not wait, > 0 wait that long
 *   deadline (uint64_t): an absolute time in ms on the monotonic clock, or
 *                        VDEADLINE_NONE
 *   time left (int ms):  what poll() and epoll_wait() take: -1 no limit,
 *                        0 passed, else the milliseconds left (<= INT_MAX)
 *
 * Public APIs keep their documented "0 means none" (vchan_config.timeout_ms,
 * conduit_options); they convert with vdeadline_timeout() at the boundary.
 */
#ifndef VCHAN_CORE_DEADLINE_H
#define VCHAN_CORE_DEADLINE_H

#include <stdint.h>

#define VDEADLINE_NONE UINT64_MAX

/* A public "0 means none" timeout as a timeout of this file. */
static inline int vdeadline_timeout(int public_ms)
{
    return public_ms > 0 ? public_ms : -1;
}

static inline uint64_t vdeadline_at(uint64_t now_ms, int timeout_ms)
{
    return timeout_ms < 0 ? VDEADLINE_NONE : now_ms + (uint64_t)timeout_ms;
}

static inline int vdeadline_left(uint64_t deadline, uint64_t now_ms)
{
    if (deadline == VDEADLINE_NONE) {
        return -1;
    }
    if (now_ms >= deadline) {
        return 0;
    }
    return deadline - now_ms > 0x7fffffffu ? 0x7fffffff : (int)(deadline - now_ms);
}

#endif
