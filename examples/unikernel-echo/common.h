/* SPDX-License-Identifier: ISC */
/*
 * What the two example guests share: their command line (xl's extra=),
 * the test stream, and the result lines dom0 reads from the console log.
 *
 * The guest runtime (unikernel/guest/guest.h) gives printf, time and the
 * command-line words; on another unikernel base, replace those three and
 * keep the rest: the vchan calls are the same as on Linux (vchan.h).
 */
#ifndef UK_EXAMPLE_COMMON_H
#define UK_EXAMPLE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest.h"
#include "vchan.h"
#include "vchan_hooks.h"
#include "vchan_unikernel.h"

#define MAX_ITEMS 8
#define DEFAULT_TIMEOUT_S 120
/* How long to wait for dom0 to write our peer's domid (peer=xenstore). */
#define PEER_WAIT_MS 60000u

static inline uint64_t now_ms(void)
{
    return guest_time_ns() / 1000000u;
}

/* Split "a,b,c" into at most n fields, in place. Returns how many. */
static inline size_t split(char *s, char **fields, size_t n)
{
    size_t k = 0;

    while (k < n) {
        fields[k++] = s;
        while (*s && *s != ',') {
            s++;
        }
        if (!*s) {
            break;
        }
        *s++ = '\0';
    }
    return k;
}

/* A decimal number, with an optional K or M suffix (KiB, MiB). */
static inline bool parse_size(const char *s, uint64_t *out)
{
    uint64_t n = 0;

    if (*s < '0' || *s > '9') {
        return false;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        n = n * 10 + (uint64_t)(*s - '0');
    }
    if (*s == 'K') {
        n <<= 10;
        s++;
    } else if (*s == 'M') {
        n <<= 20;
        s++;
    }
    *out = n;
    return *s == '\0';
}

/*
 * peer=N, or peer=xenstore: dom0 creates both guests of a pair paused, then
 * writes each one's peer into its data/uk-peer before unpausing them (a
 * domid is known only once the domain exists).
 */
static inline int resolve_peer(const char *val, int *peer)
{
    uint64_t n;
    uint64_t give_up = now_ms() + PEER_WAIT_MS;
    char buf[16];

    if (strcmp(val, "xenstore") != 0) {
        if (!parse_size(val, &n) || n > VCHAN_DOMID_MAX) {
            return -1;
        }
        *peer = (int)n;
        return 0;
    }
    while (vchan_hook_xenbus_read(VCHAN_HOOK_XBT_NIL, "data/uk-peer", buf, sizeof(buf)) != 0) {
        if (now_ms() > give_up) {
            return -1;
        }
        vchan_hook_msleep(50);
    }
    if (!parse_size(buf, &n) || n > VCHAN_DOMID_MAX) {
        return -1;
    }
    *peer = (int)n;
    return 0;
}

/*
 * The test stream of tests/xen/xen-data.c (so dom0 makes and checks it with
 * `xen-data gen|check NAME BYTES`): 8-byte little-endian blocks, block b of
 * stream NAME = mix(seed ^ mix(b)), seed = FNV-1a of NAME, mix = splitmix64.
 */
static inline uint64_t stream_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static inline uint64_t stream_seed(const char *name)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (; *name; name++) {
        h = (h ^ (unsigned char)*name) * 0x100000001b3u;
    }
    return h;
}

/* Bytes [off, off + len) of the stream. */
static inline void stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t len)
{
    while (len > 0) {
        unsigned int skip = (unsigned int)(off % 8), i;
        uint64_t v = stream_mix(seed ^ stream_mix(off / 8)) >> (8 * skip);
        size_t n = 8 - skip < len ? 8 - skip : len;

        for (i = 0; i < n; i++, v >>= 8) {
            *buf++ = (uint8_t)v;
        }
        off += n;
        len -= n;
    }
}

/* MB/s with two decimals, from bytes and milliseconds, without floating point. */
static inline void print_rate(uint64_t bytes, uint64_t ms)
{
    uint64_t centi = ms ? bytes * 100u / 1000u / ms : 0; /* (bytes / 1e6) / (ms / 1e3) * 100 */

    guest_printf("%lu.%02lu MB/s", (unsigned long)(centi / 100), (unsigned long)(centi % 100));
}

#endif
