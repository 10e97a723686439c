/* SPDX-License-Identifier: ISC */
/*
 * replay: the main() of a fuzz target when it is not linked with libFuzzer
 * (gcc, or clang without --enable-fuzzing). make check runs it with no
 * arguments: it replays the target's seed corpus, then deterministic
 * mutants of every seed, so the gcc and ASan builds exercise more than the
 * hand-made files without a fuzzing engine.
 *
 *   fuzz_X [FILE|DIR]...   replay these (a crash file from libFuzzer, say)
 *   fuzz_X                 replay the corpus: $FUZZ_CORPUS, else
 *                          $top_srcdir/tests/fuzz/corpus/fuzz_X, else
 *                          corpus/fuzz_X beside the program
 *
 * FUZZ_MUTANTS (default 200, or the target's fuzz_replay_mutants) mutants per seed, FUZZ_SEED
 * (default fixed) picks them: a failure names the seed file and mutant number, and FUZZ_SAVE=FILE
 * writes the failing input there before it runs.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* A target may define it; when it does not, the weak reference is NULL. */
extern int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
/* A target whose runs are slow (sockets, threads) may ask for fewer mutants. */
extern const long fuzz_replay_mutants __attribute__((weak));
/* Present in sanitizer builds: lets us name the input when ASan or UBSan kills us. */
extern void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

#define REPLAY_MAX_LEN 4096 /* libFuzzer's default -max_len */
#define DEFAULT_MUTANTS 200
#define DEFAULT_SEED UINT64_C(0x0f5eed5c0ffee777)

struct seed {
    char *name;
    uint8_t *data;
    size_t len;
};

static struct seed *seeds;
static size_t nseeds;
static const char *save_path;

static uint64_t rng_state;

/* What runs now, for the death notice: "seed-file mutant N". */
static char current[4200];

static void say_current(void)
{
    static const char pre[] = "\nreplay: the failing input: ";
    ssize_t w;

    /* Only async-signal-safe calls: we may be inside a SIGSEGV. */
    w = write(STDERR_FILENO, pre, sizeof(pre) - 1);
    w = write(STDERR_FILENO, current, strlen(current));
    w = write(STDERR_FILENO, "\n", 1);
    (void)w;
}

static void on_fatal(int sig)
{
    say_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

static size_t below(size_t n)
{
    return n ? (size_t)(rng() % n) : 0;
}

static void add_seed(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct seed *s;
    long size;

    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: %s: cannot size it\n", path);
        exit(1);
    }
    seeds = realloc(seeds, (nseeds + 1) * sizeof(*seeds));
    if (!seeds) {
        fprintf(stderr, "replay: out of memory\n");
        exit(1);
    }
    s = &seeds[nseeds++];
    s->name = strdup(path);
    s->len = (size_t)size;
    /* Exactly the input's size, so ASan sees a read past its end. */
    s->data = malloc(s->len ? s->len : 1);
    if (!s->name || !s->data || fread(s->data, 1, s->len, f) != s->len) {
        fprintf(stderr, "replay: %s: cannot read it\n", path);
        exit(1);
    }
    fclose(f);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* A directory's regular files, in name order (scandir order is the file system's). */
static void add_path(const char *path)
{
    struct dirent **list;
    struct stat sb;
    int n;

    if (stat(path, &sb) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    if (!S_ISDIR(sb.st_mode)) {
        add_seed(path);
        return;
    }
    n = scandir(path, &list, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        char file[4096];

        if (list[i]->d_name[0] != '.' &&
            (size_t)snprintf(file, sizeof(file), "%s/%s", path, list[i]->d_name) < sizeof(file) &&
            stat(file, &sb) == 0 && S_ISREG(sb.st_mode)) {
            add_seed(file);
        }
        free(list[i]);
    }
    free(list);
}

static void run_one(const uint8_t *data, size_t len)
{
    /* A fresh copy of exactly len bytes: the target may not write it, nor read past it. */
    uint8_t *copy = malloc(len ? len : 1);

    if (!copy) {
        fprintf(stderr, "replay: out of memory\n");
        exit(1);
    }
    memcpy(copy, data, len);
    if (save_path) {
        FILE *f = fopen(save_path, "wb");
        if (f) {
            fwrite(data, 1, len, f);
            fclose(f);
        }
    }
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
}

static const uint32_t interesting32[] = {
    0,        1,          2,          0x7f,       0x80,       0xff,       0x100,      0x3ff,
    0x400,    0x401,      0x7ff,      0x800,      0xfff,      0x1000,     0xffff,     0x10000,
    0x100000, 0x7fffffff, 0x80000000, 0xfffffbff, 0xfffffc00, 0xfffffffe, 0xffffffff,
};

/* One mutant of seed i into buf (REPLAY_MAX_LEN bytes); returns its length. */
static size_t mutate(size_t i, uint8_t *buf)
{
    const struct seed *s = &seeds[i];
    size_t len = s->len < REPLAY_MAX_LEN ? s->len : REPLAY_MAX_LEN;
    int steps = 1 + (int)below(4);

    memcpy(buf, s->data, len);
    for (int k = 0; k < steps; k++) {
        switch (below(8)) {
        case 0: /* flip a bit */
            if (len) {
                buf[below(len)] ^= (uint8_t)(1u << below(8));
            }
            break;
        case 1: /* a random byte */
            if (len) {
                buf[below(len)] = (uint8_t)rng();
            }
            break;
        case 2: { /* an interesting 32-bit value, little-endian */
            uint32_t v = interesting32[below(sizeof(interesting32) / sizeof(interesting32[0]))];
            if (len >= 4) {
                size_t at = below(len - 3);
                for (int b = 0; b < 4; b++) {
                    buf[at + (size_t)b] = (uint8_t)(v >> (8 * b));
                }
            }
            break;
        }
        case 3: /* insert a few random bytes */
            if (len < REPLAY_MAX_LEN) {
                size_t at = below(len + 1), n = 1 + below(4);
                if (n > REPLAY_MAX_LEN - len) {
                    n = REPLAY_MAX_LEN - len;
                }
                memmove(buf + at + n, buf + at, len - at);
                for (size_t b = 0; b < n; b++) {
                    buf[at + b] = (uint8_t)rng();
                }
                len += n;
            }
            break;
        case 4: /* delete a range */
            if (len) {
                size_t at = below(len), n = 1 + below(len - at < 8 ? len - at : 8);
                memmove(buf + at, buf + at + n, len - at - n);
                len -= n;
            }
            break;
        case 5: /* repeat a range (ops scripts: do it again) */
            if (len) {
                size_t at = below(len), n = 1 + below(len - at < 16 ? len - at : 16);
                if (len + n <= REPLAY_MAX_LEN) {
                    memmove(buf + at + n, buf + at, len - at);
                    len += n;
                }
            }
            break;
        case 6: { /* splice: our prefix, another seed's suffix */
            const struct seed *o = &seeds[below(nseeds)];
            size_t keep = below(len + 1), from = below(o->len + 1), n = o->len - from;
            if (keep + n > REPLAY_MAX_LEN) {
                n = REPLAY_MAX_LEN - keep;
            }
            memcpy(buf + keep, o->data + from, n);
            len = keep + n;
            break;
        }
        default: /* truncate */
            len = below(len + 1);
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    const char *env;
    long mutants = &fuzz_replay_mutants ? fuzz_replay_mutants : DEFAULT_MUTANTS;
    uint64_t seed = DEFAULT_SEED;
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    uint8_t *buf;

    /* A libtool wrapper runs "lt-NAME". */
    if (strncmp(name, "lt-", 3) == 0) {
        name += 3;
    }
    if ((env = getenv("FUZZ_MUTANTS")) && *env) {
        mutants = strtol(env, NULL, 10);
    }
    if ((env = getenv("FUZZ_SEED")) && *env) {
        seed = strtoull(env, NULL, 0);
    }
    save_path = getenv("FUZZ_SAVE");
    /* FUZZ_CHECK aborts. Faults: ASan has its own report, which our handler would hide. */
    signal(SIGABRT, on_fatal);
    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(say_current);
    } else {
        signal(SIGSEGV, on_fatal);
        signal(SIGBUS, on_fatal);
        signal(SIGFPE, on_fatal);
    }
    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }

    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            add_path(argv[i]);
        }
        mutants = 0; /* replaying given inputs: exactly those */
    } else {
        char dir[4096];
        const char *top = getenv("top_srcdir");
        struct stat sb;

        if ((env = getenv("FUZZ_CORPUS")) && *env) {
            snprintf(dir, sizeof(dir), "%s", env);
        } else if (top && *top) {
            snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", top, name);
        } else {
            int n = (int)(name - argv[0]);
            snprintf(dir, sizeof(dir), "%.*scorpus/%s", n, argv[0], name);
        }
        if (stat(dir, &sb) < 0) {
            fprintf(stderr, "replay: no corpus for %s at %s (set FUZZ_CORPUS or top_srcdir)\n",
                    name, dir);
            return 1;
        }
        add_path(dir);
    }
    if (nseeds == 0) {
        fprintf(stderr, "replay: %s: no inputs found\n", name);
        return 1;
    }

    printf("%s: replaying %zu inputs, %ld mutants each (FUZZ_SEED=0x%016llx)\n", name, nseeds,
           mutants, (unsigned long long)seed);
    fflush(stdout);
    buf = malloc(REPLAY_MAX_LEN);
    if (!buf) {
        return 1;
    }
    for (size_t i = 0; i < nseeds; i++) {
        /* Each seed its own stream of mutants, so adding a seed leaves the others' alone. */
        rng_state = seed ^ ((uint64_t)(i + 1) * UINT64_C(0x9e3779b97f4a7c15));
        if (rng_state == 0) {
            rng_state = DEFAULT_SEED;
        }
        snprintf(current, sizeof(current), "%s", seeds[i].name);
        run_one(seeds[i].data, seeds[i].len);
        for (long m = 0; m < mutants; m++) {
            size_t len = mutate(i, buf);

            snprintf(current, sizeof(current),
                     "%s mutant %ld of FUZZ_SEED=0x%016llx (%zu bytes; FUZZ_SAVE=FILE keeps it)",
                     seeds[i].name, m, (unsigned long long)seed, len);
            run_one(buf, len);
        }
    }
    printf("%s: %zu inputs and %ld mutants passed\n", name, nseeds, (long)nseeds * mutants);
    for (size_t i = 0; i < nseeds; i++) {
        free(seeds[i].name);
        free(seeds[i].data);
    }
    free(seeds);
    free(buf);
    return 0;
}
