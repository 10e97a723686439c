/* SPDX-License-Identifier: ISC */
/*
 * The hosted clock: CLOCK_MONOTONIC and deadlines over it, for the Linux
 * platforms and libconduit (header only, so each library has it without
 * exporting it). The conventions are libvchan/core/deadline.h's.
 */
#ifndef VCHAN_PLATFORM_CLOCK_H
#define VCHAN_PLATFORM_CLOCK_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "libvchan/core/deadline.h"

static inline uint64_t vclock_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t vclock_now_ms(void)
{
    return vclock_now_ns() / 1000000u;
}

/* The deadline `timeout_ms` from now (< 0: VDEADLINE_NONE). */
static inline uint64_t vclock_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? VDEADLINE_NONE : vdeadline_at(vclock_now_ms(), timeout_ms);
}

/* Milliseconds left until `deadline`, for poll(): -1 none, 0 passed. */
static inline int vclock_left(uint64_t deadline)
{
    return deadline == VDEADLINE_NONE ? -1 : vdeadline_left(deadline, vclock_now_ms());
}

/* Sleep `ms` milliseconds, through signals. */
static inline void vclock_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

#endif
