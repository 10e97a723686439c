// SPDX-License-Identifier: ISC
/*
 * xen-data: the test stream of the real-Xen scenarios (scenarios/
 * xen-scenarios.sh), made and checked at C speed: the guests run under
 * emulation, where a shell pipeline with md5sum would be slower than the
 * vchan it is meant to measure.
 *
 *   xen-data gen NAME BYTES [SECS]  write BYTES of stream NAME to stdout,
 *                                   or stop early once SECS have passed;
 *                                   say how many were written on stderr
 *   xen-data check NAME BYTES       read stdin; exit 0 iff it is a prefix of
 *                                   at most BYTES of the stream; say how
 *                                   many bytes, and the receive rate, on stderr
 *
 * The time limit keeps a run of many transfers within its budget on a
 * loaded emulator: the receiver then compares its count with the one the
 * sender published, so a short transfer is still checked whole.
 *
 * Built with -DXEN_DATA_VCHAN and -lvchan (run-scenarios does, against the
 * tree under test), it also receives through libvchan's own API, without
 * libconduit in between:
 *   xen-data vchan-recv NAME BYTES DOMID PORT TIMEOUT_MS
 * connects as a blocking client to server DOMID, PORT (waiting for the
 * server up to TIMEOUT_MS), and checks what it reads as `check` does. The
 * library's messages, debug ones included, go to stderr.
 *
 * NAME is any string (the scenarios use the step's name, so a stream from
 * another step never passes). The stream is splitmix64 of (FNV-1a of NAME,
 * 8-byte block index): no period, so a ring's worth of bytes lost, repeated
 * or reordered shows at its offset.
 * check reports the first differing offset, or how short or long the input
 * was, and the time from the first byte to the end of input ("first to
 * last byte"), which leaves out connection set-up.
 *
 *   xen-data stamp                  copy stdin's lines to stdout, each after
 *                                   the CLOCK_MONOTONIC milliseconds at
 *                                   which it was read (for timelines: one
 *                                   process, where a shell loop would start
 *                                   one per line)
 *
 * Exit status: 0 match, 1 mismatch, too much data or I/O error, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024) /* a multiple of 8: blocks never straddle chunks */

static const char *prog = "xen-data";

#ifdef XEN_DATA_VCHAN
#include <stdarg.h>

#include "vchan.h"

static struct vchan *chan; /* vchan-recv: read from it instead of stdin */

static void chan_log(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
{
    (void)ctx;
    (void)level;
    fprintf(stderr, "%s: vchan: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}
#endif

/* Read from stdin, or from the channel; -1 (message printed) on error, 0 at the end. */
static ssize_t read_in(void *buf, size_t len, uint64_t off)
{
    ssize_t r;

#ifdef XEN_DATA_VCHAN
    if (chan) {
        size_t n = 0;
        int rc = vchan_read(chan, buf, len, &n);

        if (rc < 0) {
            fprintf(stderr, "%s: check: vchan_read at %" PRIu64 ": %s: %s\n", prog, off,
                    vchan_errname(rc), vchan_last_error(chan));
            return -1;
        }
        return (ssize_t)n;
    }
#endif
    do {
        r = read(STDIN_FILENO, buf, len);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        fprintf(stderr, "%s: check: read at %" PRIu64 ": %s\n", prog, off, strerror(errno));
    }
    return r;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* Bytes [off, off + len) of stream `seed`; off is a multiple of 8. */
static void fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t len)
{
    uint64_t block = off / 8;
    size_t i;

    for (i = 0; i < len; i += 8, block++) {
        uint64_t v = mix(seed ^ mix(block));
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(buf + i, &v, n); /* little-endian on x86: the same bytes in both guests */
    }
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t name_seed(const char *name)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (; *name; name++) {
        h = (h ^ (unsigned char)*name) * 0x100000001b3u;
    }
    return h;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0';
}

static int gen(uint64_t seed, uint64_t total, double secs)
{
    static uint8_t buf[CHUNK];
    double t0 = now();
    uint64_t off = 0;

    while (off < total && (secs <= 0 || now() - t0 < secs)) {
        size_t n = total - off < CHUNK ? (size_t)(total - off) : CHUNK;
        size_t done = 0;

        fill(seed, off, buf, n);
        while (done < n) {
            ssize_t w = write(STDOUT_FILENO, buf + done, n - done);
            if (w < 0) {
                if (errno == EINTR) {
                    continue;
                }
                fprintf(stderr, "%s: gen: write at %" PRIu64 ": %s\n", prog, off + done,
                        strerror(errno));
                return 1;
            }
            done += (size_t)w;
        }
        off += n;
    }
    fprintf(stderr, "%s: gen: %" PRIu64 " bytes\n", prog, off);
    return 0;
}

static int check(uint64_t seed, uint64_t total)
{
    static uint8_t want[CHUNK], got[CHUNK];
    uint64_t off = 0;
    double t0 = 0, t1;

    for (;;) {
        size_t have = 0;
        size_t i;
        ssize_t r;

        /* Fill a whole chunk (or reach end of input) so chunks stay 8-aligned. */
        while (have < CHUNK) {
            r = read_in(got + have, CHUNK - have, off + have);
            if (r < 0) {
                return 1;
            }
            if (r == 0) {
                break;
            }
            if (t0 == 0) {
                t0 = now();
            }
            have += (size_t)r;
        }
        if (have == 0) {
            break;
        }
        if (off + have > total) {
            fprintf(stderr, "%s: check: FAIL: more than the %" PRIu64 " bytes expected\n", prog,
                    total);
            return 1;
        }
        fill(seed, off, want, have);
        if (memcmp(want, got, have) != 0) {
            for (i = 0; want[i] == got[i]; i++) {
            }
            fprintf(stderr, "%s: check: FAIL: byte %" PRIu64 " differs (0x%02x, want 0x%02x)\n",
                    prog, off + i, got[i], want[i]);
            return 1;
        }
        off += have;
    }
    t1 = now();
    fprintf(stderr, "%s: check: %" PRIu64 " bytes OK, first to last byte in %.3f s\n", prog, off,
            t0 > 0 ? t1 - t0 : 0.0);
    return 0;
}

#ifdef XEN_DATA_VCHAN
static int api_recv(uint64_t seed, uint64_t total, char **argv)
{
    char err[256] = "";
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.port = argv[1], .timeout_ms = atoi(argv[2]), .log = chan_log,
                          .errbuf = err, .errbuf_len = sizeof(err));
    double t0 = now();
    int rc;

    cfg.domain = atoi(argv[0]);
    rc = vchan_client_open(&chan, &cfg);
    if (rc < 0) {
        fprintf(stderr, "%s: vchan_client_open(%d, %s): %s: %s\n", prog, cfg.domain, cfg.port,
                vchan_errname(rc), err);
        return 1;
    }
    fprintf(stderr, "%s: connected to domain %d port %s after %.3f s (platform %s, rings %zu/%zu)\n",
            prog, cfg.domain, cfg.port, now() - t0, vchan_platform_name(chan),
            vchan_read_ring_size(chan), vchan_write_ring_size(chan));
    rc = check(seed, total);
    vchan_close(chan);
    return rc;
}
#endif

static int stamp(void)
{
    char line[4096];

    while (fgets(line, sizeof(line), stdin)) {
        printf("%.0f %s", now() * 1000, line);
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t seed, bytes, secs = 0;
    bool is_gen = argc >= 2 && strcmp(argv[1], "gen") == 0;

    if (argc == 2 && strcmp(argv[1], "stamp") == 0) {
        return stamp();
    }
#ifdef XEN_DATA_VCHAN
    if (argc == 7 && strcmp(argv[1], "vchan-recv") == 0 && parse_u64(argv[3], &bytes)) {
        return api_recv(name_seed(argv[2]), bytes, argv + 4);
    }
#endif
    if (argc < 4 || argc > (is_gen ? 5 : 4) || !parse_u64(argv[3], &bytes) ||
        (argc == 5 && !parse_u64(argv[4], &secs)) ||
        (!is_gen && strcmp(argv[1], "check") != 0)) {
        fprintf(stderr, "usage: %s gen NAME BYTES [SECS] | check NAME BYTES | stamp\n", prog);
        return 2;
    }
    seed = name_seed(argv[2]);
    return is_gen ? gen(seed, bytes, (double)secs) : check(seed, bytes);
}
