/* SPDX-License-Identifier: ISC */
/*
 * unit.h: the little that every CUnit test program here shares.
 *
 *     static void test_foo_bar(void) { CU_ASSERT_EQUAL(1, 1); }
 *     static const struct unit_test tests[] = { UNIT_TEST(test_foo_bar) };
 *     UNIT_MAIN("foo", tests)
 *
 * The generated main() runs the table as one CUnit suite (verbose), prints
 * the summary and exits non-zero on any failed assertion or CUnit error.
 * Arguments, if any, pick tests by substring of their name. Each test runs
 * under an alarm (UNIT_TIMEOUT seconds, default 60): a hang fails the program
 * with the test's name instead of stalling `make check`.
 *
 * SIGPIPE is ignored, so a vanished peer shows up as EPIPE, not a death.
 *
 * Skips (tests/README.md, "Skipped tests"): a test that cannot run here
 * (not root, no IPv6, no Xen headers) calls UNIT_SKIP("why"), which
 * records it and returns from the test; one case of a table that cannot
 * run calls UNIT_SKIP_CASE("why") and goes on. CUnit 2.1 has no skip, so
 * the runner counts them itself: each is printed as "SKIPPED: ..." where
 * it happens and again in the summary, and a program whose every test
 * was skipped exits 77, automake's SKIP. Never return early as if passed.
 *
 * Also here: UNIT_EQ / UNIT_EQ_NAMED (assertions that print both values),
 * a seeded xorshift64* generator (unit_rng), and reproducible byte streams
 * (unit_pattern_fill / unit_pattern_check) whose content depends only on
 * the stream number and the byte position, so chunking never matters.
 *
 * Randomness is deterministic: unit_rng() seeds from UNIT_SEED (decimal or
 * 0x-hex) or a fixed default, and the seed is printed at start and again
 * on failure, so any run can be repeated exactly.
 *
 * CUnit assertions are not thread-safe: assert in the main thread only.
 */
#ifndef VCHAN_TESTS_UNIT_H
#define VCHAN_TESTS_UNIT_H

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

struct unit_test {
    const char *name;
    void (*fn)(void);
};

#define UNIT_TEST(fn) { #fn, fn }
#define UNIT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define UNIT_MAIN(suite, table)                                                \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        return unit_run((suite), (table), UNIT_ARRAY_LEN(table), argc, argv);  \
    }

#define UNIT_DEFAULT_SEED UINT64_C(0x5eed0f5c0ffee123)

#define UNIT__UNUSED __attribute__((unused))

static uint64_t unit_seed_value UNIT__UNUSED = UNIT_DEFAULT_SEED;
static unsigned unit_timeout_s UNIT__UNUSED = 60;

/* ----------------------------------------------------------------- skips */

#define UNIT_SKIP_KEPT 32

struct unit_skips {
    unsigned tests;  /* whole tests skipped */
    unsigned cases;  /* cases inside a test that ran */
    unsigned kept;
    char why[UNIT_SKIP_KEPT][200];
    const void *last_test; /* the CUnit test last counted as skipped */
};

static struct unit_skips unit_skips UNIT__UNUSED;

static inline void unit_skip_note(bool whole, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void unit_skip_note(bool whole, const char *fmt, ...)
{
    CU_pTest t = CU_get_current_test();
    const char *name = t && t->pName ? t->pName : "?";
    char why[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    printf("SKIPPED%s: %s ", whole ? "" : " (one case)", why);
    fflush(stdout);
    if (whole) {
        if (unit_skips.last_test != (const void *)t) {
            unit_skips.tests++;
            unit_skips.last_test = t;
        }
    } else {
        unit_skips.cases++;
    }
    if (unit_skips.kept < UNIT_SKIP_KEPT) {
        snprintf(unit_skips.why[unit_skips.kept++], sizeof(unit_skips.why[0]), "%s%s: %s",
                 name, whole ? "" : " (one case)", why);
    }
}

/* The whole test cannot run here: count it and return from the test. */
#define UNIT_SKIP(...)                                                         \
    do {                                                                       \
        unit_skip_note(true, __VA_ARGS__);                                     \
        return;                                                                \
    } while (0)

/* One case of the test cannot run here: count it, the test goes on. */
#define UNIT_SKIP_CASE(...) unit_skip_note(false, __VA_ARGS__)

/* ------------------------------------------------------------ assertions */

/*
 * Integer equality that shows both values when it fails (CU_ASSERT_EQUAL
 * only shows the expression). Evaluates to the comparison's result.
 */
#define UNIT_EQ(actual, expected)                                              \
    unit_eq((long long)(actual), (long long)(expected), #actual, #expected, __FILE__, __LINE__)

static inline bool unit_eq(long long got, long long want, const char *got_s, const char *want_s,
                           const char *file, unsigned line)
{
    char msg[512];

    if (got == want) {
        CU_assertImplementation(CU_TRUE, line, "", file, "", CU_FALSE);
        return true;
    }
    /* CUnit copies the message. */
    snprintf(msg, sizeof(msg), "%s == %s (got %lld, expected %lld)", got_s, want_s, got, want);
    CU_assertImplementation(CU_FALSE, line, msg, file, "", CU_FALSE);
    return false;
}

/*
 * Equality of two status codes, shown through `name` (e.g. vchan_errname)
 * when it fails: "vchan_read(...): got -3 (EPROTO), expected 0 (OK)".
 */
#define UNIT_EQ_NAMED(actual, expected, name)                                  \
    unit_eq_named((int)(actual), (int)(expected), (name), #actual, __FILE__, __LINE__)

static inline bool unit_eq_named(int got, int want, const char *(*name)(int), const char *got_s,
                                 const char *file, unsigned line)
{
    char msg[512];

    if (got == want) {
        CU_assertImplementation(CU_TRUE, line, "", file, "", CU_FALSE);
        return true;
    }
    snprintf(msg, sizeof(msg), "%s: got %d (%s), expected %d (%s)", got_s, got, name(got), want,
             name(want));
    CU_assertImplementation(CU_FALSE, line, msg, file, "", CU_FALSE);
    return false;
}

/* ---------------------------------------------------------------- PRNG */

/* xorshift64*: tiny, fast, good enough to pick sizes and fill buffers. */
struct unit_rng {
    uint64_t s;
};

/* A generator for one test: the suite seed mixed with a per-use salt. */
static inline struct unit_rng unit_rng(uint64_t salt)
{
    struct unit_rng r = { unit_seed_value ^ (salt * UINT64_C(0x9e3779b97f4a7c15)) };

    if (r.s == 0) {
        r.s = UNIT_DEFAULT_SEED;
    }
    return r;
}

static inline uint64_t unit_rng_next(struct unit_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * UINT64_C(0x2545f4914f6cdd1d);
}

/* Uniform-enough integer in [lo, hi]. */
static inline uint64_t unit_rng_range(struct unit_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + unit_rng_next(r) % (hi - lo + 1);
}

/* --------------------------------------------------- byte-stream patterns */

/*
 * Byte `pos` of a reproducible stream named by `stream`: writers and readers
 * agree on content from the position alone, so chunking never matters.
 */
static inline uint64_t unit_pattern_word(uint64_t stream, uint64_t word)
{
    uint64_t x = word ^ (stream * UINT64_C(0x9e3779b97f4a7c15));

    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

static inline uint8_t unit_pattern_byte(uint64_t stream, uint64_t pos)
{
    return (uint8_t)(unit_pattern_word(stream, pos >> 3) >> ((pos & 7) * 8));
}

static inline void unit_pattern_fill(void *buf, size_t len, uint64_t stream, uint64_t pos)
{
    uint8_t *p = buf;
    uint64_t w = unit_pattern_word(stream, pos >> 3);

    for (size_t i = 0; i < len; i++, pos++) {
        if ((pos & 7) == 0) {
            w = unit_pattern_word(stream, pos >> 3);
        }
        p[i] = (uint8_t)(w >> ((pos & 7) * 8));
    }
}

/* Index of the first byte of buf that differs from the stream, or len. */
static inline size_t unit_pattern_check(const void *buf, size_t len, uint64_t stream,
                                        uint64_t pos)
{
    const uint8_t *p = buf;
    uint64_t w = unit_pattern_word(stream, pos >> 3);

    for (size_t i = 0; i < len; i++, pos++) {
        if ((pos & 7) == 0) {
            w = unit_pattern_word(stream, pos >> 3);
        }
        if (p[i] != (uint8_t)(w >> ((pos & 7) * 8))) {
            return i;
        }
    }
    return len;
}

/* ---------------------------------------------------------------- runner */

static inline void unit_alarm(int sig)
{
    CU_pTest t = CU_get_current_test();
    const char *name = t && t->pName ? t->pName : "(between tests)";
    char msg[256];
    int n;

    (void)sig;
    /* Not strictly async-signal-safe, but the process is about to die anyway. */
    n = snprintf(msg, sizeof(msg), "\nFAIL: %s timed out after %u s (UNIT_TIMEOUT)\n", name,
                 unit_timeout_s);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg));
        (void)w;
    }
    _exit(1);
}

static inline void unit_test_setup(void)
{
    alarm(unit_timeout_s);
}

static inline void unit_test_teardown(void)
{
    alarm(0);
}

static inline int unit_run(const char *suite_name, const struct unit_test *tests, size_t n,
                           int argc, char **argv)
{
    const char *env;
    CU_pSuite suite;
    unsigned failed;
    int added = 0;

    if ((env = getenv("UNIT_SEED")) && *env) {
        unit_seed_value = strtoull(env, NULL, 0);
    }
    if ((env = getenv("UNIT_TIMEOUT")) && *env) {
        unit_timeout_s = (unsigned)strtoul(env, NULL, 10);
    }
    signal(SIGALRM, unit_alarm);
    /* A peer that vanished must show up as an error code, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    printf("%s: seed 0x%016" PRIx64 " (set UNIT_SEED to repeat)\n", suite_name,
           unit_seed_value);

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "%s: CUnit: %s\n", suite_name, CU_get_error_msg());
        return 1;
    }
    suite = CU_add_suite_with_setup_and_teardown(suite_name, NULL, NULL, unit_test_setup,
                                                 unit_test_teardown);
    if (!suite) {
        goto cunit_error;
    }
    for (size_t i = 0; i < n; i++) {
        bool pick = argc < 2;

        for (int a = 1; a < argc && !pick; a++) {
            pick = strstr(tests[i].name, argv[a]) != NULL;
        }
        if (pick) {
            if (!CU_add_test(suite, tests[i].name, tests[i].fn)) {
                goto cunit_error;
            }
            added++;
        }
    }
    if (added == 0) {
        fprintf(stderr, "%s: no test matches the arguments\n", suite_name);
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS) {
        goto cunit_error;
    }
    failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    if (unit_skips.tests || unit_skips.cases) {
        printf("\n%s: %u of %d test(s) SKIPPED, %u case(s) SKIPPED:\n", suite_name,
               unit_skips.tests, added, unit_skips.cases);
        for (unsigned i = 0; i < unit_skips.kept; i++) {
            printf("    %s\n", unit_skips.why[i]);
        }
    }
    if (failed) {
        printf("\n%s: FAILED (seed 0x%016" PRIx64 ": UNIT_SEED=0x%016" PRIx64
               " repeats this run)\n",
               suite_name, unit_seed_value, unit_seed_value);
    }
    CU_cleanup_registry();
    if (failed) {
        return 1;
    }
    /* Nothing ran: automake's SKIP, not a PASS. */
    return unit_skips.tests == (unsigned)added ? 77 : 0;

cunit_error:
    fprintf(stderr, "%s: CUnit: %s\n", suite_name, CU_get_error_msg());
    CU_cleanup_registry();
    return 1;
}

#endif
