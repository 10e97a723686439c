/* SPDX-License-Identifier: ISC */
/*
 * fuzz.h: what the fuzz targets share (s2n-tls style).
 *
 * Each target defines LLVMFuzzerTestOneInput and is deterministic: the same
 * input always takes the same path and gives the same verdict, so a crash
 * found by libFuzzer replays under gcc. Targets are linked twice: with
 * libFuzzer's main (clang, --enable-fuzzing, `make fuzz`) and with
 * replay.c's main (any compiler, `make check`), which replays the seed
 * corpus tests/fuzz/corpus/<target>/ plus deterministic mutants of it.
 *
 * A violated invariant prints where and why and aborts: libFuzzer saves the
 * input, and make check sees the test fail.
 *
 * The input is read through a cursor (struct fuzz_in) that hands out
 * integers and byte runs and returns zeros once the input is used up, so a
 * target never reads past it and every prefix of an input is an input.
 */
#ifndef VCHAN_TESTS_FUZZ_H
#define VCHAN_TESTS_FUZZ_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: called once before the first input (libFuzzer and replay alike). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
/* Optional: mutants per seed that make check's replay runs (default 200). */
extern const long fuzz_replay_mutants;

#define FUZZ__UNUSED __attribute__((unused))

static FUZZ__UNUSED __attribute__((noreturn, format(printf, 4, 5))) void
fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "\n%s:%d: invariant violated: %s\n    ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

/* Assert an invariant of the code under test, with a printf-style explanation. */
#define FUZZ_CHECK(cond, ...)                                  \
    do {                                                       \
        if (!(cond)) {                                         \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
        }                                                      \
    } while (0)

/* ------------------------------------------------------------ input cursor */

struct fuzz_in {
    const uint8_t *p;
    size_t len, off;
};

static inline struct fuzz_in fuzz_in(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size, 0};

    return in;
}

static inline size_t fuzz_left(const struct fuzz_in *in)
{
    return in->len - in->off;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
    return in->off < in->len ? in->p[in->off++] : 0;
}

/* Little-endian, so a corpus file reads the way the wire does. */
static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
    uint16_t lo = fuzz_u8(in);

    return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
    uint32_t lo = fuzz_u16(in);

    return lo | (uint32_t)fuzz_u16(in) << 16;
}

/* Up to n bytes into out (zero-filled past the end of the input); returns how many were real. */
static inline size_t fuzz_bytes(struct fuzz_in *in, void *out, size_t n)
{
    size_t have = fuzz_left(in) < n ? fuzz_left(in) : n;

    memcpy(out, in->p + in->off, have);
    memset((uint8_t *)out + have, 0, n - have);
    in->off += have;
    return have;
}

/* ------------------------------------------------------------ data streams */

/*
 * Byte `pos` of a reproducible stream: the writer and the checker agree on
 * content from the position alone, so however the bytes are chunked, a
 * delivered byte can be checked against what was sent at that position.
 */
static inline uint8_t fuzz_stream_byte(uint64_t stream, uint64_t pos)
{
    uint64_t x = (pos >> 3) ^ (stream * UINT64_C(0x9e3779b97f4a7c15));

    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return (uint8_t)(x >> ((pos & 7) * 8));
}

static inline void fuzz_stream_fill(uint8_t *buf, size_t len, uint64_t stream, uint64_t pos)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = fuzz_stream_byte(stream, pos + i);
    }
}

/* Index of the first byte that differs from the stream, or len. */
static inline size_t fuzz_stream_check(const uint8_t *buf, size_t len, uint64_t stream,
                                       uint64_t pos)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != fuzz_stream_byte(stream, pos + i)) {
            return i;
        }
    }
    return len;
}

#endif
