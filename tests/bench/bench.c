/* SPDX-License-Identifier: ISC */
/*
 * bench: vchan beside the other ways two processes of one host can talk,
 * measured in one run so that the ratios are comparable (the machines are
 * shared and noisy: absolute figures move between runs, ratios much less).
 *
 * Every test forks two processes (A sends or pings, B receives or answers;
 * pinned to CPUs 0 and 1 unless -u) and measures:
 *   - throughput with 64 B, 4 KiB and 64 KiB writes for a fixed time (-t),
 *     the receiver reading into a 64 KiB buffer (-b; a stream consumer takes
 *     what is there) and checksumming every byte
 *     (checked against the sender's stream at the end);
 *   - round-trip latency of a 64-byte ping-pong, back to back (the peer is
 *     active: spinning waits pay off) and with an idle gap before each ping
 *     (-g; both sides have gone to sleep: the wake-up path is measured);
 *   - CPU time of each side (getrusage), as % of the wall time of the test;
 *   - for libconduit over vchan (plain, TLS, sodium): the handshake, from the
 *     call to conduit_connect to the first byte the server sends after its
 *     accept (-H connects per pass, each to a listener that is ready),
 *     median and p99, and the CPU each side spends per connection.
 * Contenders: vchan on the local platform at three ring sizes, a naive
 * shared-memory ring (below: a few dozen lines, no Xen layout) and its tuned
 * variant (cached indices: the best a ring does here), pipe, UNIX
 * socketpair, TCP over 127.0.0.1, TLS 1.3 over that TCP (OpenSSL, with a
 * self-signed certificate made at start-up), libconduit over UNIX, TCP,
 * vchan and TLS (its overhead against the raw rows), and single-core memcpy
 * as the limit. Tests are interleaved (each pass runs every contender once,
 * in a rotated order) and repeated (-r passes); the table gives medians.
 *
 * A busy machine (-c): "one" pins both sides to CPU 0 (every wait for the
 * peer is a wait for the scheduler: a spin only delays it), "hog" runs a
 * CPU hog on every CPU beside the two sides (each competes for its time
 * slice). The targets then compare vchan with the UNIX socket in the same
 * condition.
 *
 *   bench [-r passes] [-t sec] [-l sec] [-g gap_us] [-f filter[|filter...]] [-u] [-q]
 *         [-w wait_s] [-W max_%] [-n nice] [-c two|one|hog] [-H connects]
 *
 * See docs/performance.md for the method and what limits each figure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* sched_setaffinity, eventfd */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <conduit.h>
#include <vchan.h>

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)
#define PATTERN_LEN (256 * KIB) /* every write size divides it */
#define MSG 64                  /* ping-pong message */
#define MAX_PASSES 15
#define MAX_SAMPLES 200000
#define WARMUP 500
#define CHILD_ALARM_S 120 /* a child that hangs is killed, never the run */
/* The naive ring's size and spin before sleeping: the same as vchan's defaults. */
#define NRING_SIZE (64 * KIB)
#define NRING_SPIN_NS 50000
#define NRING_STEP (16 * KIB) /* tuned: publish at least this often, as vchan */

static struct {
    int passes;
    double tput_s, lat_s, idle_lat_s;
    unsigned gap_us;
    const char *only;
    bool pin, quiet;
    double quiet_wait_s, quiet_max; /* wait up to quiet_wait_s for others' CPU < quiet_max % */
    int nice;                       /* the children's nice value (negative: root only) */
    size_t read_size;               /* the receiver's buffer; 0: the write size */
    const char *cond;               /* -c: two (CPUs 0 and 1), one (both on CPU 0), hog */
    unsigned connects;              /* -H: handshakes per pass and contender; 0: none */
} opt = {3, 0.4, 0.3, 0.4, 300, NULL, true, false, 0, 25, 0, 64 * KIB, "two", 200};

/* ------------------------------------------------------------ clocks */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_self_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e-6;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/*
 * CPU used by everything but our own children, from /proc/stat, in % of one
 * CPU: the machine is shared, so each test says how disturbed it was.
 */
struct load_mark {
    unsigned long long busy, steal;
    uint64_t wall_ns;
    double child_cpu;
};

static void load_mark(struct load_mark *m)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    struct rusage ru;

    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) != 8) {
            memset(v, 0, sizeof(v));
        }
        fclose(f);
    }
    m->busy = v[0] + v[1] + v[2] + v[5] + v[6];
    m->steal = v[7];
    m->wall_ns = now_ns();
    getrusage(RUSAGE_CHILDREN, &ru);
    m->child_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                   ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e-6;
}

/* Others' CPU plus steal between two marks, % of one CPU. */
static double load_other(const struct load_mark *a, const struct load_mark *b)
{
    double hz = (double)sysconf(_SC_CLK_TCK);
    double wall = (double)(b->wall_ns - a->wall_ns) * 1e-9;
    double other = (double)(b->busy - a->busy) / hz - (b->child_cpu - a->child_cpu);
    double steal = (double)(b->steal - a->steal) / hz;

    if (wall <= 0) {
        return 0;
    }
    other = other < 0 ? 0 : other;
    return (other + steal) / wall * 100;
}

/* ------------------------------------------------------------ checksum */

/*
 * What the receiver computes over every byte: a Fletcher-style pair of sums
 * per lane over little-endian 64-bit words, four lanes interleaved so that
 * it runs at several bytes per cycle. Bytes are fed in any chunking: whole
 * 32-byte blocks of the stream are summed, a partial block waits in `part`.
 */
struct cks {
    uint64_t s[4], t[4];
    uint64_t bytes;
    uint8_t part[32];
};

typedef uint64_t __attribute__((may_alias, aligned(1))) u64_unaligned;

static void cks_blocks(struct cks *c, const uint8_t *p, size_t nblocks)
{
    uint64_t s0 = c->s[0], s1 = c->s[1], s2 = c->s[2], s3 = c->s[3];
    uint64_t t0 = c->t[0], t1 = c->t[1], t2 = c->t[2], t3 = c->t[3];

    for (size_t i = 0; i < nblocks; i++, p += 32) {
        const u64_unaligned *w = (const u64_unaligned *)p;
        s0 += w[0], s1 += w[1], s2 += w[2], s3 += w[3];
        t0 += s0, t1 += s1, t2 += s2, t3 += s3;
    }
    c->s[0] = s0, c->s[1] = s1, c->s[2] = s2, c->s[3] = s3;
    c->t[0] = t0, c->t[1] = t1, c->t[2] = t2, c->t[3] = t3;
}

static void cks_feed(struct cks *c, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    size_t have = (size_t)(c->bytes % 32);

    c->bytes += n;
    if (have) {
        size_t k = 32 - have < n ? 32 - have : n;
        memcpy(c->part + have, p, k);
        p += k;
        n -= k;
        if (have + k < 32) {
            return;
        }
        cks_blocks(c, c->part, 1);
    }
    cks_blocks(c, p, n / 32);
    memcpy(c->part, p + (n & ~(size_t)31), n % 32);
}

static bool cks_equal(const struct cks *a, const struct cks *b)
{
    return a->bytes == b->bytes && !memcmp(a->s, b->s, sizeof(a->s)) &&
           !memcmp(a->t, b->t, sizeof(a->t)) && !memcmp(a->part, b->part, a->bytes % 32);
}

/* The stream every sender sends: byte i is pattern[i % PATTERN_LEN]. */
static uint8_t *pattern;

static void cks_expected(struct cks *c, uint64_t bytes)
{
    memset(c, 0, sizeof(*c));
    while (bytes) {
        size_t k = bytes < PATTERN_LEN ? (size_t)bytes : PATTERN_LEN;
        cks_feed(c, pattern, k);
        bytes -= k;
    }
}

/* ------------------------------------------------------------ shared results */

struct results {
    int arrived; /* start barrier */
    int failed;
    char msg[256];
    uint64_t t_start, t_end;
    double cpu_a, cpu_b;
    uint64_t sent, received;
    struct cks cks;
    char cipher[64]; /* TLS: what the handshake chose */
    unsigned hs_ready; /* handshake test: connect number hs_ready - 1 may start */
    uint32_t nsamples;
    uint32_t samples[MAX_SAMPLES];
};
static struct results *R;

/* This run's private directory (vchan rendezvous, UNIX sockets, TLS files). */
static char run_dir[] = "/tmp/vchan-bench.XXXXXX";
static char cert_file[64], key_file[64];
/* sodium: each side's private key file and the other's public key (base64). */
static char sodium_key[2][80], sodium_pub[2][64];

/* Two key pairs for the sodium rows, in run_dir (0600). */
static int sodium_init_keys(void)
{
    for (int i = 0; i < 2; i++) {
        snprintf(sodium_key[i], sizeof(sodium_key[i]), "%s/sodium%d.key", run_dir, i);
        if (conduit_key_generate(sodium_key[i], sodium_pub[i]) < 0) {
            fprintf(stderr, "bench: %s\n", conduit_last_error(NULL));
            return -1;
        }
    }
    return 0;
}

/* URL-encode a base64 key's '+', '/', '=' for a URI. */
static void pct_key(char *out, size_t len, const char *key)
{
    size_t o = 0;

    for (; *key && o + 4 < len; key++) {
        if (*key == '+' || *key == '/' || *key == '=') {
            o += (size_t)snprintf(out + o, len - o, "%%%02X", (unsigned)(unsigned char)*key);
        } else {
            out[o++] = *key;
        }
    }
    out[o] = '\0';
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
    va_list ap;

    if (!__atomic_exchange_n(&R->failed, 1, __ATOMIC_ACQ_REL)) {
        va_start(ap, fmt);
        vsnprintf(R->msg, sizeof(R->msg), fmt, ap);
        va_end(ap);
    }
    _exit(1);
}

/* Both children start together (neither one's set-up is measured). */
static void start_barrier(void)
{
    __atomic_fetch_add(&R->arrived, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&R->arrived, __ATOMIC_ACQUIRE) < 2) {
        if (__atomic_load_n(&R->failed, __ATOMIC_ACQUIRE)) {
            _exit(1);
        }
        sched_yield();
    }
}

/* ------------------------------------------------------------ naive ring */

/*
 * The reference: a single-producer single-consumer byte ring as anyone
 * would write it, with none of Xen's layout. Each index, each "I sleep"
 * flag and the close flag on its own cache line; the peer's index re-read
 * on every call; a waiter spins NRING_SPIN_NS, then sleeps on an eventfd
 * after announcing it (flag, full fence, re-check); the other side kicks
 * only a sleeper.
 *
 * Tuned (the same ring, `tuned` set): each side also keeps the peer's
 * index as last seen, on a line of its own that only it touches, and reads
 * the shared one again only when that is short of what the call needs; a
 * copy publishes its index every NRING_STEP bytes. What vchan does, but
 * with every control word on its own line: the best a ring can do here,
 * and the figure Xen's one-line layout is measured against.
 */
struct nring {
    _Alignas(64) uint32_t prod;
    _Alignas(64) uint32_t cons;
    _Alignas(64) uint32_t reader_sleeps;
    _Alignas(64) uint32_t writer_sleeps;
    _Alignas(64) uint32_t closed;
    _Alignas(64) uint32_t tuned;       /* set at creation, read-only after */
    _Alignas(64) uint32_t writer_cons; /* tuned: the writer's copy of cons */
    _Alignas(64) uint32_t reader_prod; /* tuned: the reader's copy of prod */
    _Alignas(64) uint8_t data[NRING_SIZE];
};

struct nring_end {
    struct nring *r;
    int data_fd, space_fd; /* kick the reader, kick the writer */
};

static void nring_kick(uint32_t *sleeps, int fd)
{
    uint64_t one = 1;

    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* our index store before the flag load */
    if (__atomic_load_n(sleeps, __ATOMIC_RELAXED) &&
        __atomic_exchange_n(sleeps, 0, __ATOMIC_RELAXED) &&
        write(fd, &one, sizeof(one)) != sizeof(one)) {
        fail("naive ring: eventfd write: %s", strerror(errno));
    }
}

/* Wait until *idx != seen (or the ring is closed). */
static void nring_wait(struct nring *r, uint32_t *idx, uint32_t seen, uint32_t *sleeps, int fd)
{
    uint64_t t0 = now_ns(), cnt;

#define NRING_READY()                                  \
    (__atomic_load_n(idx, __ATOMIC_ACQUIRE) != seen || \
     __atomic_load_n(&r->closed, __ATOMIC_ACQUIRE))
    for (unsigned i = 1; !NRING_READY(); i++) {
        cpu_relax();
        if (i % 64 == 0 && now_ns() - t0 > NRING_SPIN_NS) {
            __atomic_store_n(sleeps, 1, __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (NRING_READY()) {
                __atomic_store_n(sleeps, 0, __ATOMIC_RELAXED);
                break;
            }
            if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EINTR) {
                fail("naive ring: eventfd read: %s", strerror(errno));
            }
            t0 = now_ns();
        }
    }
#undef NRING_READY
}

static void nring_write(struct nring_end *e, const uint8_t *p, size_t n)
{
    struct nring *r = e->r;
    uint32_t prod = __atomic_load_n(&r->prod, __ATOMIC_RELAXED);

    while (n) {
        size_t want = r->tuned && n > NRING_STEP ? NRING_STEP : n;
        uint32_t cons = r->tuned ? r->writer_cons : __atomic_load_n(&r->cons, __ATOMIC_ACQUIRE);
        size_t k = NRING_SIZE - (prod - cons), off = prod % NRING_SIZE, first;

        if (r->tuned && k < want) {
            cons = r->writer_cons = __atomic_load_n(&r->cons, __ATOMIC_ACQUIRE);
            k = NRING_SIZE - (prod - cons);
        }
        if (k == 0) {
            nring_wait(r, &r->cons, cons, &r->writer_sleeps, e->space_fd);
            continue;
        }
        k = k < want ? k : want;
        first = NRING_SIZE - off < k ? NRING_SIZE - off : k;
        memcpy(r->data + off, p, first);
        memcpy(r->data, p + first, k - first);
        prod += (uint32_t)k;
        p += k;
        n -= k;
        __atomic_store_n(&r->prod, prod, __ATOMIC_RELEASE);
        nring_kick(&r->reader_sleeps, e->data_fd);
    }
}

static size_t nring_read(struct nring_end *e, uint8_t *p, size_t n)
{
    struct nring *r = e->r;
    uint32_t cons = __atomic_load_n(&r->cons, __ATOMIC_RELAXED);
    uint32_t prod = r->tuned ? r->reader_prod : cons; /* untuned: always look */
    size_t k, done;

    while (prod == cons && (prod = __atomic_load_n(&r->prod, __ATOMIC_ACQUIRE)) == cons) {
        if (__atomic_load_n(&r->closed, __ATOMIC_ACQUIRE) &&
            __atomic_load_n(&r->prod, __ATOMIC_ACQUIRE) == cons) {
            return 0;
        }
        nring_wait(r, &r->prod, cons, &r->reader_sleeps, e->data_fd);
    }
    if (r->tuned) {
        r->reader_prod = prod;
    }
    k = prod - cons < n ? prod - cons : n;
    for (done = 0; done < k;) {
        size_t step = r->tuned && k - done > NRING_STEP ? NRING_STEP : k - done;
        size_t off = cons % NRING_SIZE;
        size_t first = NRING_SIZE - off < step ? NRING_SIZE - off : step;

        memcpy(p + done, r->data + off, first);
        memcpy(p + done + first, r->data, step - first);
        done += step;
        cons += (uint32_t)step;
        __atomic_store_n(&r->cons, cons, __ATOMIC_RELEASE);
        nring_kick(&r->writer_sleeps, e->space_fd);
    }
    return k;
}

static void nring_close(struct nring_end *e)
{
    __atomic_store_n(&e->r->closed, 1, __ATOMIC_RELEASE);
    nring_kick(&e->r->reader_sleeps, e->data_fd);
}

/* ------------------------------------------------------------ TLS */

static SSL_CTX *tls_server_ctx, *tls_client_ctx;
static char tls_cipher[64] = "?"; /* the parent's copy of R->cipher */

/* A fresh P-256 key and a self-signed certificate for "localhost", in memory. */
static int tls_init(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *crt = X509_new();
    X509_NAME *name;
    int rc = -1;

    if (!key || !crt) {
        goto out;
    }
    X509_set_version(crt, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(crt), 1);
    X509_gmtime_adj(X509_getm_notBefore(crt), -60);
    X509_gmtime_adj(X509_getm_notAfter(crt), 86400);
    X509_set_pubkey(crt, key);
    name = X509_get_subject_name(crt);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(crt, name);
    if (!X509_sign(crt, key, EVP_sha256())) {
        goto out;
    }
    tls_server_ctx = SSL_CTX_new(TLS_server_method());
    tls_client_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_server_ctx || !tls_client_ctx || SSL_CTX_use_certificate(tls_server_ctx, crt) != 1 ||
        SSL_CTX_use_PrivateKey(tls_server_ctx, key) != 1) {
        goto out;
    }
    SSL_CTX_set_min_proto_version(tls_server_ctx, TLS1_3_VERSION);
    SSL_CTX_set_min_proto_version(tls_client_ctx, TLS1_3_VERSION);
    /* The client checks the server against the very certificate, as a pinned deployment would. */
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(tls_client_ctx), crt) != 1) {
        goto out;
    }
    SSL_CTX_set_verify(tls_client_ctx, SSL_VERIFY_PEER, NULL);
    /* The same pair as files, for libconduit's cert=, key= and ca=. */
    {
        FILE *cf, *kf;

        snprintf(cert_file, sizeof(cert_file), "%s/cert.pem", run_dir);
        snprintf(key_file, sizeof(key_file), "%s/key.pem", run_dir);
        cf = fopen(cert_file, "w");
        kf = fopen(key_file, "w");
        if (!cf || !kf || PEM_write_X509(cf, crt) != 1 ||
            PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) != 1) {
            rc = -1;
        } else {
            rc = 0;
        }
        if (cf) {
            fclose(cf);
        }
        if (kf) {
            fclose(kf);
        }
    }
out:
    X509_free(crt);
    EVP_PKEY_free(key);
    return rc;
}

/* ------------------------------------------------------------ endpoints */

enum kind { K_MEMCPY, K_PIPE, K_UNIX, K_TCP, K_TLS, K_NRING, K_VCHAN, K_CONDUIT };

struct contender {
    const char *name;
    enum kind kind;
    size_t ring;        /* vchan: ring size each way */
    const char *scheme; /* libconduit: the transport ("unix", "tcp", "vchan", "tls+tcp") */
    int raw;            /* libconduit: the row of the raw transport it is compared with */
    bool tuned;         /* shm ring: the tuned variant */
};

static const struct contender contenders[] = {
    {"vchan local, 4 KiB ring", K_VCHAN, 4 * KIB, NULL, 0, false},
    {"vchan local, 64 KiB ring", K_VCHAN, 64 * KIB, NULL, 0, false},
    {"vchan local, 1 MiB ring", K_VCHAN, MIB, NULL, 0, false},
    {"naive shm ring, 64 KiB", K_NRING, NRING_SIZE, NULL, 0, false},
    {"tuned shm ring, 64 KiB", K_NRING, NRING_SIZE, NULL, 0, true},
    {"pipe", K_PIPE, 0, NULL, 0, false},
    {"UNIX socketpair", K_UNIX, 0, NULL, 0, false},
    {"TCP 127.0.0.1", K_TCP, 0, NULL, 0, false},
    {"TLS 1.3 over TCP", K_TLS, 0, NULL, 0, false},
    {"conduit vchan (64 KiB)", K_CONDUIT, 64 * KIB, "vchan", 1, false},
    {"conduit unix", K_CONDUIT, 0, "unix", 6, false},
    {"conduit tcp", K_CONDUIT, 0, "tcp", 7, false},
    {"conduit tls+tcp", K_CONDUIT, 0, "tls+tcp", 8, false},
    {"conduit tls+vchan", K_CONDUIT, 64 * KIB, "tls+vchan", 1, false},
    {"conduit sodium+tcp", K_CONDUIT, 0, "sodium+tcp", 7, false},
    {"conduit sodium+vchan", K_CONDUIT, 64 * KIB, "sodium+vchan", 1, false},
    {"memcpy (one core, limit)", K_MEMCPY, 0, NULL, 0, false},
};
#define NCONT (sizeof(contenders) / sizeof(contenders[0]))
#define REF_UNIX 6 /* the row ratios are taken against */
#define REF_NRING 3
#define REF_TRING 4
#define MAIN_VCHAN 1 /* vchan's default ring size: the row the targets are about */

/* One end of a connection, in a child. */
struct ep {
    enum kind kind;
    int fd, fd2; /* sockets, pipe ends; naive ring: eventfds */
    SSL *ssl;
    struct vchan *v;
    struct conduit *cd;
    struct nring_end nr;
};

/* What the parent prepares before forking: both ends. */
struct pair {
    const struct contender *c;
    int a[2], b[2];      /* A's and B's descriptors (pipe: a[0] writes A->B, b[0] writes B->A) */
    struct nring *nr[2]; /* [0] A->B, [1] B->A */
    char port[48];
    char listen_uri[512], connect_uri[512]; /* libconduit: B listens, A connects */
};

static int tcp_pair(int fds[2])
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int one = 1, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;

    fds[0] = fds[1] = -1;
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) < 0) {
        goto out;
    }
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        (fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
        goto out;
    }
    /* Small writes go out at once, as an RPC user would set it. */
    setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = 0;
out:
    if (l >= 0) {
        close(l);
    }
    return rc;
}

/* A loopback port nobody uses right now, for libconduit's TCP listener. */
static int free_tcp_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static struct nring *nring_new(bool tuned)
{
    struct nring *r =
        mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (r == MAP_FAILED) {
        return NULL;
    }
    r->tuned = tuned; /* the rest zeroed by the kernel */
    return r;
}

static unsigned pair_seq;

static int pair_make(struct pair *p, const struct contender *c)
{
    int x[2], y[2];

    memset(p, 0, sizeof(*p));
    p->c = c;
    p->a[0] = p->a[1] = p->b[0] = p->b[1] = -1;
    switch (c->kind) {
    case K_PIPE:
        if (pipe2(x, O_CLOEXEC) < 0 || pipe2(y, O_CLOEXEC) < 0) {
            return -1;
        }
        fcntl(x[1], F_SETPIPE_SZ,
              1 << 20); /* Linux default is 64 KiB; ask for more, as a tuner would */
        fcntl(y[1], F_SETPIPE_SZ, 1 << 20);
        p->a[0] = x[1], p->b[1] = x[0]; /* A writes x, B reads it */
        p->b[0] = y[1], p->a[1] = y[0];
        return 0;
    case K_UNIX:
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x) < 0) {
            return -1;
        }
        p->a[0] = x[0], p->b[0] = x[1];
        return 0;
    case K_TCP:
    case K_TLS:
        if (tcp_pair(x) < 0) {
            return -1;
        }
        p->a[0] = x[0], p->b[0] = x[1];
        return 0;
    case K_NRING:
        p->nr[0] = nring_new(c->tuned);
        p->nr[1] = nring_new(c->tuned);
        /* a: kicks for ring 0 (data to B, space to A); b: for ring 1. */
        p->a[0] = eventfd(0, EFD_CLOEXEC); /* ring 0 data: B sleeps on it */
        p->a[1] = eventfd(0, EFD_CLOEXEC); /* ring 0 space: A sleeps on it */
        p->b[0] = eventfd(0, EFD_CLOEXEC); /* ring 1 data: A sleeps on it */
        p->b[1] = eventfd(0, EFD_CLOEXEC); /* ring 1 space: B sleeps on it */
        return p->nr[0] && p->nr[1] && p->a[0] >= 0 && p->a[1] >= 0 && p->b[0] >= 0 && p->b[1] >= 0
                   ? 0
                   : -1;
    case K_VCHAN:
        snprintf(p->port, sizeof(p->port), "bench-%ld-%u", (long)getpid(), ++pair_seq);
        return 0;
    case K_CONDUIT: {
        const char *sc = c->scheme;
        int port;

        ++pair_seq;
        if (!strcmp(sc, "vchan") || !strcmp(sc, "tls+vchan") || !strcmp(sc, "sodium+vchan")) {
            snprintf(p->listen_uri, sizeof(p->listen_uri), "%s://0/cbench-%ld-%u", sc,
                     (long)getpid(), pair_seq);
            snprintf(p->connect_uri, sizeof(p->connect_uri), "%s://0/cbench-%ld-%u%s", sc,
                     (long)getpid(), pair_seq, strncmp(sc, "tls", 3) ? "" : "?servername=localhost");
        } else if (!strcmp(sc, "unix")) {
            snprintf(p->listen_uri, sizeof(p->listen_uri), "unix://%s/c%u.sock", run_dir, pair_seq);
            snprintf(p->connect_uri, sizeof(p->connect_uri), "%s", p->listen_uri);
        } else {
            if ((port = free_tcp_port()) < 0) {
                return -1;
            }
            snprintf(p->listen_uri, sizeof(p->listen_uri), "%s://127.0.0.1:%d", sc, port);
            snprintf(p->connect_uri, sizeof(p->connect_uri), "%s://127.0.0.1:%d%s", sc, port,
                     strncmp(sc, "tls", 3) ? "" : "?servername=localhost");
        }
        if (!strncmp(sc, "sodium", 6)) {
            char k0[128], k1[128];
            size_t n;

            /* Side 0 connects with key 0 and pins 1; side 1 listens with key 1 and pins 0. */
            pct_key(k0, sizeof(k0), sodium_pub[0]);
            pct_key(k1, sizeof(k1), sodium_pub[1]);
            n = strlen(p->listen_uri);
            snprintf(p->listen_uri + n, sizeof(p->listen_uri) - n, "?key=%s&peer=%s",
                     sodium_key[1], k0);
            n = strlen(p->connect_uri);
            snprintf(p->connect_uri + n, sizeof(p->connect_uri) - n, "?key=%s&peer=%s",
                     sodium_key[0], k1);
        }
        return 0;
    }
    default:
        return 0;
    }
}

static void pair_free(struct pair *p)
{
    for (int i = 0; i < 2; i++) {
        if (p->a[i] >= 0) {
            close(p->a[i]);
        }
        if (p->b[i] >= 0) {
            close(p->b[i]);
        }
        if (p->nr[i]) {
            munmap(p->nr[i], sizeof(*p->nr[i]));
        }
    }
}

/* libconduit's options for either side of p: TLS gets its certificate and CA. */
static void conduit_opts(const struct pair *p, struct conduit_options *o, char *err, size_t len)
{
    *o = (struct conduit_options)CONDUIT_OPTIONS_INIT(.timeout_ms = 30000, .errbuf = err,
                                                      .errbuf_len = len);
    if (!strncmp(p->c->scheme, "tls", 3)) {
        o->cert = cert_file; /* the server's own */
        o->key = key_file;
        o->ca = cert_file; /* what the client trusts */
    }
}

/* In child A (side 0) or B (side 1): make this side's endpoint. */
static void ep_open(struct ep *e, const struct pair *p, int side)
{
    memset(e, 0, sizeof(*e));
    e->kind = p->c->kind;
    e->fd = side ? p->b[0] : p->a[0];
    e->fd2 = side ? p->b[1] : p->a[1];
    if (e->kind == K_PIPE) {
        /* A pipe ends only when every copy of its write end is closed. */
        close(side ? p->a[0] : p->b[0]);
        close(side ? p->a[1] : p->b[1]);
    }
    switch (e->kind) {
    case K_TLS: {
        int rc;

        e->ssl = SSL_new(side ? tls_server_ctx : tls_client_ctx);
        if (!e->ssl || SSL_set_fd(e->ssl, e->fd) != 1) {
            fail("SSL_new failed");
        }
        if (!side) {
            SSL_set_tlsext_host_name(e->ssl, "localhost");
            SSL_set1_host(e->ssl, "localhost");
        }
        rc = side ? SSL_accept(e->ssl) : SSL_connect(e->ssl);
        if (rc != 1) {
            char buf[160];
            ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
            fail("TLS handshake: %s", buf);
        }
        if (!side) {
            snprintf(R->cipher, sizeof(R->cipher), "%s", SSL_get_cipher_name(e->ssl));
        }
        break;
    }
    case K_NRING:
        /* A writes ring 0 and reads ring 1; B the other way round. */
        if (!side) {
            e->nr.r = p->nr[0];
            e->nr.data_fd = p->a[0];
            e->nr.space_fd = p->a[1];
        } else {
            e->nr.r = p->nr[1];
            e->nr.data_fd = p->b[0];
            e->nr.space_fd = p->b[1];
        }
        break;
    case K_VCHAN: {
        char err[256] = "";
        struct vchan_config cfg =
            VCHAN_CONFIG_INIT(.domain = 0, .port = p->port, .read_size = p->c->ring,
                              .write_size = p->c->ring, .timeout_ms = 30000, .platform = "local",
                              .errbuf = err, .errbuf_len = sizeof(err));
        int rc = side ? vchan_client_open(&e->v, &cfg) : vchan_server_open(&e->v, &cfg);

        if (rc) {
            fail("vchan %s open: %s: %s", side ? "client" : "server", vchan_strerror(rc), err);
        }
        if (!side && (rc = vchan_wait_connected(e->v))) {
            fail("vchan: no client: %s", vchan_strerror(rc));
        }
        break;
    }
    case K_CONDUIT: {
        char err[256] = "";
        struct conduit_options o;
        uint64_t until = now_ns() + 10000000000ull;
        int rc;

        conduit_opts(p, &o, err, sizeof(err));
        if (side) {
            struct conduit_listener *l = NULL;

            if ((rc = conduit_listen(&l, p->listen_uri, &o)) || (rc = conduit_accept(l, &e->cd))) {
                fail("conduit %s: %s: %s", p->listen_uri, conduit_strerror(rc),
                     l ? conduit_listener_last_error(l) : err);
            }
            conduit_listener_close(l);
        } else {
            /* B may not listen yet: try again until it does. */
            while ((rc = conduit_connect(&e->cd, p->connect_uri, &o)) &&
                   (rc == -CONDUIT_ECONNREFUSED || rc == -CONDUIT_ENOENT) && now_ns() < until) {
                sleep_us(2000);
            }
            if (rc) {
                fail("conduit %s: %s: %s", p->connect_uri, conduit_strerror(rc), err);
            }
        }
        break;
    }
    default:
        break;
    }
}

/* The other direction of a naive ring: A reads ring 1, B reads ring 0. */
static struct nring_end nring_peer_end(const struct pair *p, int side)
{
    struct nring_end e;

    e.r = side ? p->nr[0] : p->nr[1];
    e.data_fd = side ? p->a[0] : p->b[0];
    e.space_fd = side ? p->a[1] : p->b[1];
    return e;
}

static void write_all(struct ep *e, const struct pair *p, int side, const uint8_t *buf, size_t n)
{
    size_t done = 0;

    (void)p;
    (void)side;
    switch (e->kind) {
    case K_NRING:
        nring_write(&e->nr, buf, n);
        return;
    case K_VCHAN: {
        int rc = vchan_write(e->v, buf, n, &done);
        if (rc || done != n) {
            fail("vchan_write: %s (%s)", vchan_strerror(rc), vchan_last_error(e->v));
        }
        return;
    }
    case K_TLS: {
        int rc = SSL_write(e->ssl, buf, (int)n);
        if (rc != (int)n) {
            fail("SSL_write: error %d", SSL_get_error(e->ssl, rc));
        }
        return;
    }
    case K_CONDUIT: {
        int rc = conduit_write(e->cd, buf, n, &done);
        if (rc || done != n) {
            fail("conduit_write: %s (%s)", conduit_strerror(rc), conduit_last_error(e->cd));
        }
        return;
    }
    default:
        while (done < n) {
            ssize_t k = write(e->fd, buf + done, n - done);
            if (k < 0) {
                if (errno == EINTR) {
                    continue;
                }
                fail("write: %s", strerror(errno));
            }
            done += (size_t)k;
        }
    }
}

/* Up to n bytes; 0 at end of stream. */
static size_t read_some(struct ep *e, const struct pair *p, int side, uint8_t *buf, size_t n)
{
    switch (e->kind) {
    case K_NRING: {
        struct nring_end in = nring_peer_end(p, side);
        return nring_read(&in, buf, n);
    }
    case K_VCHAN: {
        size_t got = 0;
        int rc = vchan_read(e->v, buf, n, &got);
        if (rc) {
            fail("vchan_read: %s (%s)", vchan_strerror(rc), vchan_last_error(e->v));
        }
        return got;
    }
    case K_CONDUIT: {
        size_t got = 0;
        int rc = conduit_read(e->cd, buf, n, &got);
        if (rc) {
            fail("conduit_read: %s (%s)", conduit_strerror(rc), conduit_last_error(e->cd));
        }
        return got;
    }
    case K_TLS: {
        int rc = SSL_read(e->ssl, buf, (int)n);
        if (rc <= 0) {
            if (SSL_get_error(e->ssl, rc) == SSL_ERROR_ZERO_RETURN) {
                return 0;
            }
            fail("SSL_read: error %d", SSL_get_error(e->ssl, rc));
        }
        return (size_t)rc;
    }
    default:
        for (;;) {
            ssize_t k = read(e->kind == K_PIPE ? e->fd2 : e->fd, buf, n);
            if (k >= 0) {
                return (size_t)k;
            }
            if (errno != EINTR) {
                fail("read: %s", strerror(errno));
            }
        }
    }
}

static bool read_exact(struct ep *e, const struct pair *p, int side, uint8_t *buf, size_t n)
{
    size_t done = 0;

    while (done < n) {
        size_t k = read_some(e, p, side, buf + done, n - done);
        if (k == 0) {
            if (done) {
                fail("stream ended inside a message");
            }
            return false;
        }
        done += k;
    }
    return true;
}

/* End of our stream: the peer reads to the end, then sees end-of-file. */
static void ep_close(struct ep *e, const struct pair *p, int side)
{
    switch (e->kind) {
    case K_NRING:
        nring_close(&e->nr);
        break;
    case K_VCHAN:
        vchan_close(e->v);
        e->v = NULL;
        break;
    case K_TLS:
        SSL_shutdown(e->ssl);
        shutdown(e->fd, SHUT_WR);
        break;
    case K_PIPE:
        close(side ? p->b[0] : p->a[0]);
        break;
    case K_CONDUIT: {
        size_t left = 1;

        /* vchan has no half-close: wait until the peer has read everything, then close. */
        if (conduit_shutdown(e->cd) == -CONDUIT_ENOTSUP) {
            for (int i = 0; i < 100000 && conduit_unconsumed(e->cd, &left) == 0 && left; i++) {
                sleep_us(100);
            }
            conduit_close(e->cd);
            e->cd = NULL;
        }
        break;
    }
    default:
        shutdown(e->fd, SHUT_WR);
        break;
    }
}

/* ------------------------------------------------------------ roles */

static void pin_to(int cpu)
{
    cpu_set_t set;

    if (opt.nice && setpriority(PRIO_PROCESS, 0, opt.nice) < 0) {
        fail("setpriority(%d): %s", opt.nice, strerror(errno));
    }
    if (!opt.pin || sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        return;
    }
    CPU_ZERO(&set);
    CPU_SET(strcmp(opt.cond, "one") == 0 ? 0 : cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
}

/* -c hog: one busy process per CPU, at the sides' nice value, until we exit. */
static void start_hogs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fail("fork (hog): %s", strerror(errno));
        }
        if (pid == 0) {
            volatile uint64_t spin = 0;
            cpu_set_t set;

            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (opt.nice) {
                setpriority(PRIO_PROCESS, 0, opt.nice);
            }
            CPU_ZERO(&set);
            CPU_SET((int)i, &set);
            sched_setaffinity(0, sizeof(set), &set);
            for (;;) {
                spin++;
            }
        }
    }
}

enum test { T_TPUT, T_RTT, T_RTT_IDLE, T_IDLE_CPU, T_HANDSHAKE };

struct job {
    enum test test;
    size_t wsize;
};

/* A sends for opt.tput_s seconds, in writes of w bytes from the pattern. */
static void role_sender(struct ep *e, const struct pair *p, size_t w)
{
    uint64_t sent = 0, stop, t;
    double c0;

    start_barrier();
    c0 = cpu_self_s();
    t = now_ns();
    R->t_start = t;
    stop = t + (uint64_t)(opt.tput_s * 1e9);
    for (unsigned i = 1;; i++) {
        write_all(e, p, 0, pattern + sent % PATTERN_LEN, w);
        sent += w;
        /* The clock is read every ~256 KiB or 64 writes: cheap against the writes. */
        if ((i % 64 == 0 || w >= 4 * KIB) && now_ns() >= stop) {
            break;
        }
    }
    R->sent = sent;
    ep_close(e, p, 0);
    R->cpu_a = cpu_self_s() - c0;
}

static void role_receiver(struct ep *e, const struct pair *p, size_t w)
{
    uint8_t *buf;
    struct cks c;
    double c0;
    size_t k;

    w = opt.read_size ? opt.read_size : w;
    buf = aligned_alloc(64, w < 64 ? 64 : (w + 63) & ~(size_t)63);

    if (!buf) {
        fail("out of memory");
    }
    memset(&c, 0, sizeof(c));
    start_barrier();
    c0 = cpu_self_s();
    while ((k = read_some(e, p, 1, buf, w)) > 0) {
        cks_feed(&c, buf, k);
    }
    R->t_end = now_ns();
    R->cpu_b = cpu_self_s() - c0;
    R->received = c.bytes;
    R->cks = c;
    free(buf);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Ping: send 64 bytes, wait for them back; idle: sleep opt.gap_us before each. */
static void role_ping(struct ep *e, const struct pair *p, bool idle)
{
    uint8_t out[MSG], in[MSG];
    double secs = idle ? opt.idle_lat_s : opt.lat_s, c0;
    uint64_t stop = 0;
    uint32_t n = 0;

    memcpy(out, pattern, MSG);
    start_barrier();
    c0 = cpu_self_s();
    R->t_start = now_ns();
    for (uint64_t i = 0; n < MAX_SAMPLES; i++) {
        uint64_t t0, t1;

        if (idle) {
            sleep_us(opt.gap_us);
        }
        memcpy(out, &i, sizeof(i)); /* a sequence number: an echo of the wrong ping fails */
        t0 = now_ns();
        write_all(e, p, 0, out, MSG);
        if (!read_exact(e, p, 0, in, MSG)) {
            fail("ping: peer closed");
        }
        t1 = now_ns();
        if (memcmp(in, out, MSG)) {
            fail("ping: echo %llu differs", (unsigned long long)i);
        }
        if (i == (idle ? 20u : WARMUP)) {
            stop = t1 + (uint64_t)(secs * 1e9);
        }
        if (i > (idle ? 20u : WARMUP)) {
            R->samples[n++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
            if (t1 >= stop) {
                break;
            }
        }
    }
    R->t_end = now_ns();
    R->nsamples = n;
    R->cpu_a = cpu_self_s() - c0;
    ep_close(e, p, 0);
}

static void role_pong(struct ep *e, const struct pair *p)
{
    uint8_t buf[MSG];
    double c0;

    start_barrier();
    c0 = cpu_self_s();
    while (read_exact(e, p, 1, buf, MSG)) {
        write_all(e, p, 1, buf, MSG);
    }
    R->cpu_b = cpu_self_s() - c0;
}

/* A keeps the channel idle for a second, then sends one byte; B waits in a blocking read. */
static void role_idle_a(struct ep *e, const struct pair *p)
{
    uint8_t b = 1;
    double c0;

    start_barrier();
    c0 = cpu_self_s();
    R->t_start = now_ns();
    sleep_us(1000000);
    write_all(e, p, 0, &b, 1);
    R->cpu_a = cpu_self_s() - c0;
    ep_close(e, p, 0);
}

static void role_idle_b(struct ep *e, const struct pair *p)
{
    uint8_t b;
    double c0;

    start_barrier();
    c0 = cpu_self_s();
    if (!read_exact(e, p, 1, &b, 1)) {
        fail("idle: no byte");
    }
    R->t_end = now_ns();
    R->cpu_b = cpu_self_s() - c0;
}

/*
 * Handshake, A's side: opt.connects times, connect, read the server's byte,
 * close. Only connect..first byte is timed, and each connect waits (untimed)
 * until B has published its listener again, so no connect ever meets an
 * empty path and backs off. CPU: what connect..close cost, summed.
 */
static void role_hs_client(const struct pair *p)
{
    char err[256] = "";
    struct conduit_options o;
    double cpu = 0;
    uint32_t n = 0;

    conduit_opts(p, &o, err, sizeof(err));
    start_barrier();
    for (unsigned i = 0; i < opt.connects && n < MAX_SAMPLES; i++) {
        struct conduit *c = NULL;
        uint64_t t0, t1;
        uint8_t b;
        size_t got = 0;
        double c0;
        int rc;

        while (__atomic_load_n(&R->hs_ready, __ATOMIC_ACQUIRE) < i + 1) {
            if (__atomic_load_n(&R->failed, __ATOMIC_ACQUIRE)) {
                _exit(1);
            }
            sleep_us(20);
        }
        c0 = cpu_self_s();
        t0 = now_ns();
        if ((rc = conduit_connect(&c, p->connect_uri, &o)) ||
            (rc = conduit_read(c, &b, 1, &got)) || got != 1) {
            fail("handshake %u: %s: %s", i, conduit_strerror(rc), c ? conduit_last_error(c) : err);
        }
        t1 = now_ns();
        conduit_close(c);
        cpu += cpu_self_s() - c0;
        R->samples[n++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
    }
    R->nsamples = n;
    R->cpu_a = cpu;
}

/* B's side: one listener; accept, send a byte, read until the client has gone, close. */
static void role_hs_server(const struct pair *p)
{
    struct conduit_listener *l = NULL;
    char err[256] = "";
    struct conduit_options o;
    double c0;
    int rc;

    conduit_opts(p, &o, err, sizeof(err));
    if ((rc = conduit_listen(&l, p->listen_uri, &o))) {
        fail("conduit %s: %s: %s", p->listen_uri, conduit_strerror(rc), err);
    }
    __atomic_store_n(&R->hs_ready, 1, __ATOMIC_RELEASE);
    start_barrier();
    c0 = cpu_self_s();
    for (unsigned i = 0; i < opt.connects; i++) {
        struct conduit *c = NULL;
        uint8_t b = 1;
        size_t n = 0;

        if ((rc = conduit_accept(l, &c)) || (rc = conduit_write(c, &b, 1, &n)) || n != 1) {
            fail("handshake %u (server): %s: %s", i, conduit_strerror(rc),
                 c ? conduit_last_error(c) : conduit_listener_last_error(l));
        }
        while (conduit_read(c, &b, 1, &n) == 0 && n > 0) {
        }
        conduit_close(c); /* a vchan://D/P listener publishes its path again here */
        __atomic_store_n(&R->hs_ready, i + 2, __ATOMIC_RELEASE);
    }
    R->cpu_b = cpu_self_s() - c0;
    conduit_listener_close(l);
}

static void run_side(const struct pair *p, int side, const struct job *j)
{
    struct ep e;

    signal(SIGPIPE, SIG_IGN);
    alarm(CHILD_ALARM_S);
    pin_to(side);
    if (j->test == T_HANDSHAKE) {
        side ? role_hs_server(p) : role_hs_client(p);
        _exit(0);
    }
    ep_open(&e, p, side);
    switch (j->test) {
    case T_TPUT:
        side ? role_receiver(&e, p, j->wsize) : role_sender(&e, p, j->wsize);
        break;
    case T_RTT:
    case T_RTT_IDLE:
        side ? role_pong(&e, p) : role_ping(&e, p, j->test == T_RTT_IDLE);
        break;
    case T_IDLE_CPU:
        side ? role_idle_b(&e, p) : role_idle_a(&e, p);
        break;
    case T_HANDSHAKE:
        break;
    }
    if (e.kind == K_VCHAN && e.v) {
        /* The receiver closes after end-of-file; close waits for nothing. */
        vchan_close(e.v);
    }
    if (e.ssl) {
        SSL_free(e.ssl);
    }
    conduit_close(e.cd);
    _exit(0);
}

/*
 * Fork both sides, wait for both. false (with R->msg) on any failure. The
 * parent lets go of the descriptors once the children have them (a pipe's
 * reader sees end-of-file only when every copy of the write end is closed).
 */
static bool run_pair(struct pair *p, const struct job *j)
{
    pid_t pid[2];
    bool ok = true;

    memset(R, 0, offsetof(struct results, samples));
    for (int side = 0; side < 2; side++) {
        pid[side] = fork();
        if (pid[side] == 0) {
            run_side(p, side, j);
        }
        if (pid[side] < 0) {
            snprintf(R->msg, sizeof(R->msg), "fork: %s", strerror(errno));
            if (side) {
                kill(pid[0], SIGKILL);
                waitpid(pid[0], NULL, 0);
            }
            return false;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (p->a[i] >= 0) {
            close(p->a[i]);
        }
        if (p->b[i] >= 0) {
            close(p->b[i]);
        }
        p->a[i] = p->b[i] = -1;
    }
    for (int side = 0; side < 2; side++) {
        int st;

        if (waitpid(pid[side], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
            if (!R->failed) {
                snprintf(R->msg, sizeof(R->msg), "side %c died (%s)", "AB"[side],
                         WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exit status");
            }
            ok = false;
            /* The other side may wait for this one forever: its alarm ends it. */
        }
    }
    return ok && !R->failed;
}

/* ------------------------------------------------------------ memcpy limit */

/* One core: w-byte copies into a 64 KiB ring-like buffer, as a sender's half of the work. */
static double memcpy_mbs(size_t w)
{
    uint8_t *ring = aligned_alloc(64, 64 * KIB);
    uint64_t bytes = 0, t0, t;
    size_t off = 0;

    if (!ring) {
        return NAN;
    }
    memset(ring, 0, 64 * KIB);
    t0 = now_ns();
    do {
        for (int i = 0; i < 256; i++) {
            memcpy(ring + off, pattern + bytes % PATTERN_LEN, w);
            off = (off + w) % (64 * KIB);
            bytes += w;
            __asm__ volatile("" : : "r"(ring) : "memory");
        }
        t = now_ns();
    } while (t - t0 < (uint64_t)(opt.tput_s * 1e9 / 2));
    free(ring);
    return (double)bytes / ((double)(t - t0) * 1e-9) / 1e6;
}

/* ------------------------------------------------------------ results table */

enum col { C_TPUT64, C_TPUT4K, C_TPUT64K, C_RTT_MED, C_RTT_P99, C_IDLE_MED, C_IDLE_P99, NCOLS };
static const size_t wsizes[3] = {64, 4 * KIB, 64 * KIB};

struct cell {
    double v[MAX_PASSES];
    int n;
};
static struct cell cells[NCONT][NCOLS], cpu_a[NCONT][3], cpu_b[NCONT][3], other[NCONT];
/* The handshake test: median and p99 (us), CPU per connection of each side (us). */
static struct cell hs_med[NCONT], hs_p99[NCONT], hs_cpu_a[NCONT], hs_cpu_b[NCONT];
static struct cell idle_cpu;
static int nfailed;

static void put(struct cell *c, double v)
{
    if (c->n < MAX_PASSES) {
        c->v[c->n++] = v;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(const struct cell *c)
{
    double v[MAX_PASSES];

    if (c->n == 0) {
        return NAN;
    }
    memcpy(v, c->v, sizeof(double) * (size_t)c->n);
    qsort(v, (size_t)c->n, sizeof(double), cmp_double);
    return c->n % 2 ? v[c->n / 2] : (v[c->n / 2 - 1] + v[c->n / 2]) / 2;
}

/* -f: a substring of the name, or several separated by '|'. */
static bool selected(const struct contender *c)
{
    const char *f = opt.only;

    while (f && *f) {
        size_t n = strcspn(f, "|");
        if (n && memmem(c->name, strlen(c->name), f, n)) {
            return true;
        }
        f += n + (f[n] == '|');
    }
    return !opt.only;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...)
{
    va_list ap;

    if (opt.quiet) {
        return;
    }
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

/* A shared machine: give others' bursts a chance to pass before a test (-w). */
static void wait_quiet(void)
{
    uint64_t until = now_ns() + (uint64_t)(opt.quiet_wait_s * 1e9);

    while (opt.quiet_wait_s > 0) {
        struct load_mark a, b;

        load_mark(&a);
        sleep_us(200000);
        load_mark(&b);
        if (load_other(&a, &b) <= opt.quiet_max || now_ns() >= until) {
            return;
        }
    }
}

static void run_tput(size_t ci, int wi)
{
    const struct contender *c = &contenders[ci];
    struct job j = {T_TPUT, wsizes[wi]};
    struct load_mark m0, m1;
    struct cks want;
    struct pair p;
    double secs, mbs;

    if (c->kind == K_MEMCPY) {
        mbs = memcpy_mbs(wsizes[wi]);
        put(&cells[ci][C_TPUT64 + wi], mbs);
        note("  %-26s %6zu B  %9.0f MB/s\n", c->name, wsizes[wi], mbs);
        return;
    }
    wait_quiet();
    if (pair_make(&p, c) < 0) {
        printf("  %-26s set-up failed: %s\n", c->name, strerror(errno));
        nfailed++;
        pair_free(&p);
        return;
    }
    load_mark(&m0);
    if (!run_pair(&p, &j)) {
        printf("  %-26s %6zu B  FAILED: %s\n", c->name, wsizes[wi], R->msg);
        nfailed++;
        pair_free(&p);
        return;
    }
    load_mark(&m1);
    pair_free(&p);
    cks_expected(&want, R->sent);
    if (R->received != R->sent || !cks_equal(&want, &R->cks)) {
        printf("  %-26s %6zu B  FAILED: received %llu of %llu bytes, checksum %s\n", c->name,
               wsizes[wi], (unsigned long long)R->received, (unsigned long long)R->sent,
               cks_equal(&want, &R->cks) ? "ok" : "WRONG");
        nfailed++;
        return;
    }
    secs = (double)(R->t_end - R->t_start) * 1e-9;
    mbs = (double)R->received / secs / 1e6;
    put(&cells[ci][C_TPUT64 + wi], mbs);
    put(&cpu_a[ci][wi], R->cpu_a / secs * 100);
    put(&cpu_b[ci][wi], R->cpu_b / secs * 100);
    put(&other[ci], load_other(&m0, &m1));
    note("  %-26s %6zu B  %9.0f MB/s  %6.0f MiB  cpu A %3.0f%% B %3.0f%%  others %3.0f%%\n",
         c->name, wsizes[wi], mbs, (double)R->received / (double)MIB, R->cpu_a / secs * 100,
         R->cpu_b / secs * 100, load_other(&m0, &m1));
}

static void run_rtt(size_t ci, bool idle)
{
    const struct contender *c = &contenders[ci];
    struct job j = {idle ? T_RTT_IDLE : T_RTT, MSG};
    struct pair p;
    double med, p99;

    if (c->kind == K_MEMCPY) {
        return;
    }
    wait_quiet();
    if (pair_make(&p, c) < 0 || !run_pair(&p, &j) || R->nsamples == 0) {
        printf("  %-26s rtt%s FAILED: %s\n", c->name, idle ? " (idle gaps)" : "", R->msg);
        nfailed++;
        pair_free(&p);
        return;
    }
    pair_free(&p);
    if (c->kind == K_TLS) {
        snprintf(tls_cipher, sizeof(tls_cipher), "%s", R->cipher);
    }
    qsort(R->samples, R->nsamples, sizeof(R->samples[0]), cmp_u32);
    med = R->samples[R->nsamples / 2] / 1e3;
    p99 = R->samples[(size_t)(R->nsamples * 0.99)] / 1e3;
    put(&cells[ci][idle ? C_IDLE_MED : C_RTT_MED], med);
    put(&cells[ci][idle ? C_IDLE_P99 : C_RTT_P99], p99);
    note("  %-26s rtt%s  median %8.2f us  p99 %8.2f us  n=%u\n", c->name,
         idle ? " after idle gap" : "               ", med, p99, R->nsamples);
}

/* The handshake is measured for libconduit over vchan: plain, TLS and sodium. */
static bool has_hs_test(const struct contender *c)
{
    return opt.connects > 0 && c->kind == K_CONDUIT && strstr(c->scheme, "vchan");
}

static void run_handshake(size_t ci)
{
    const struct contender *c = &contenders[ci];
    struct job j = {T_HANDSHAKE, 1};
    struct pair p;
    double med, p99;

    wait_quiet();
    if (pair_make(&p, c) < 0 || !run_pair(&p, &j) || R->nsamples == 0) {
        printf("  %-26s handshake FAILED: %s\n", c->name, R->msg);
        nfailed++;
        pair_free(&p);
        return;
    }
    pair_free(&p);
    qsort(R->samples, R->nsamples, sizeof(R->samples[0]), cmp_u32);
    med = R->samples[R->nsamples / 2] / 1e3;
    p99 = R->samples[(size_t)(R->nsamples * 0.99)] / 1e3;
    put(&hs_med[ci], med);
    put(&hs_p99[ci], p99);
    put(&hs_cpu_a[ci], R->cpu_a / R->nsamples * 1e6);
    put(&hs_cpu_b[ci], R->cpu_b / R->nsamples * 1e6);
    note("  %-26s handshake  median %8.1f us  p99 %8.1f us  cpu A %.0f B %.0f us  n=%u\n",
         c->name, med, p99, R->cpu_a / R->nsamples * 1e6, R->cpu_b / R->nsamples * 1e6,
         R->nsamples);
}

static void run_idle_cpu(size_t ci)
{
    struct job j = {T_IDLE_CPU, 1};
    struct pair p;
    double us;

    if (pair_make(&p, &contenders[ci]) < 0 || !run_pair(&p, &j)) {
        printf("  idle channel FAILED: %s\n", R->msg);
        nfailed++;
        pair_free(&p);
        return;
    }
    pair_free(&p);
    us = R->cpu_b * 1e6;
    put(&idle_cpu, us);
    note("  %-26s blocked reader used %.0f us of CPU in %.2f s of idle channel\n",
         contenders[ci].name, us, (double)(R->t_end - R->t_start) * 1e-9);
}

/* v with `prec` decimals, or "-" when there is no value; ratio: "(2.5x)". */
static void fmt_cell(char *buf, size_t len, double v, int prec, bool ratio)
{
    if (isnan(v) || isinf(v)) {
        snprintf(buf, len, "-");
    } else if (ratio) {
        snprintf(buf, len, "(%.*fx)", prec, v);
    } else {
        snprintf(buf, len, "%.*f", prec, v);
    }
}

static void print_table(void)
{
    double unix_tput[3], unix_rtt = median(&cells[REF_UNIX][C_RTT_MED]),
                         unix_idle = median(&cells[REF_UNIX][C_IDLE_MED]);

    for (int wi = 0; wi < 3; wi++) {
        unix_tput[wi] = median(&cells[REF_UNIX][C_TPUT64 + wi]);
    }
    printf("\nMedians of %d pass(es). Throughput in MB/s (1e6 B/s), receiver checksumming every "
           "byte;\n"
           "(x) = ratio to the UNIX socket (throughput: higher is better; round trip: its time\n"
           "divided by ours, higher is better). Round trip: 64 B ping-pong in microseconds,\n"
           "back to back, and after an idle gap of %u us before each ping (both sides asleep).\n\n",
           opt.passes, opt.gap_us);
    printf("| %-26s | %17s | %17s | %17s | %16s | %8s | %16s | %8s |\n", "contender", "64 B writes",
           "4 KiB writes", "64 KiB writes", "rtt median", "rtt p99", "rtt idle median", "idle p99");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", "----------------------------",
           "------------------:", "------------------:", "------------------:",
           "-----------------:", "---------:", "-----------------:", "---------:");
    for (size_t ci = 0; ci < NCONT; ci++) {
        char col[NCOLS][56];

        if (!selected(&contenders[ci])) {
            continue;
        }
        for (int wi = 0; wi < 3; wi++) {
            double m = median(&cells[ci][C_TPUT64 + wi]);
            char v[24], r[24];
            fmt_cell(v, sizeof(v), m, 0, false);
            fmt_cell(r, sizeof(r), m / unix_tput[wi], 1, true);
            snprintf(col[wi], sizeof(col[wi]), "%s %s", v, isnan(m) ? "" : r);
        }
        {
            double m = median(&cells[ci][C_RTT_MED]), i = median(&cells[ci][C_IDLE_MED]);
            char v[24], r[24];
            fmt_cell(v, sizeof(v), m, 2, false);
            fmt_cell(r, sizeof(r), unix_rtt / m, 1, true);
            snprintf(col[C_RTT_MED], sizeof(col[0]), "%s %s", v, isnan(m) ? "" : r);
            fmt_cell(col[C_RTT_P99], sizeof(col[0]), median(&cells[ci][C_RTT_P99]), 1, false);
            fmt_cell(v, sizeof(v), i, 1, false);
            fmt_cell(r, sizeof(r), unix_idle / i, 1, true);
            snprintf(col[C_IDLE_MED], sizeof(col[0]), "%s %s", v, isnan(i) ? "" : r);
            fmt_cell(col[C_IDLE_P99], sizeof(col[0]), median(&cells[ci][C_IDLE_P99]), 1, false);
        }
        printf("| %-26s | %17s | %17s | %17s | %16s | %8s | %16s | %8s |\n", contenders[ci].name,
               col[0], col[1], col[2], col[3], col[4], col[5], col[6]);
    }

    printf("\nCPU time of each side while streaming, %% of one CPU (A sends, B receives),"
           " and others' CPU + steal meanwhile:\n\n");
    printf("| %-26s | %12s | %12s | %12s | %8s |\n", "contender", "64 B A/B", "4 KiB A/B",
           "64 KiB A/B", "others");
    printf(
        "|----------------------------|-------------:|-------------:|-------------:|---------:|\n");
    for (size_t ci = 0; ci < NCONT; ci++) {
        char col[3][32], o[16];

        if (!selected(&contenders[ci]) || contenders[ci].kind == K_MEMCPY) {
            continue;
        }
        for (int wi = 0; wi < 3; wi++) {
            double a = median(&cpu_a[ci][wi]), b = median(&cpu_b[ci][wi]);
            if (isnan(a)) {
                snprintf(col[wi], sizeof(col[wi]), "-");
            } else {
                snprintf(col[wi], sizeof(col[wi]), "%.0f/%.0f", a, b);
            }
        }
        fmt_cell(o, sizeof(o), median(&other[ci]), 0, false);
        printf("| %-26s | %12s | %12s | %12s | %8s |\n", contenders[ci].name, col[0], col[1],
               col[2], o);
    }

    printf("\nCPU seconds per GB moved, each side (A sends, B receives), from the medians"
           " above:\n\n");
    printf("| %-26s | %13s | %13s | %13s |\n", "contender", "64 B A/B", "4 KiB A/B",
           "64 KiB A/B");
    printf("|----------------------------|--------------:|--------------:|--------------:|\n");
    for (size_t ci = 0; ci < NCONT; ci++) {
        char col[3][32];

        if (!selected(&contenders[ci]) || contenders[ci].kind == K_MEMCPY) {
            continue;
        }
        for (int wi = 0; wi < 3; wi++) {
            double a = median(&cpu_a[ci][wi]), b = median(&cpu_b[ci][wi]);
            double gbs = median(&cells[ci][C_TPUT64 + wi]) / 1000.0;
            if (isnan(a) || isnan(gbs) || gbs <= 0) {
                snprintf(col[wi], sizeof(col[wi]), "-");
            } else {
                snprintf(col[wi], sizeof(col[wi]), "%.2f/%.2f", a / 100.0 / gbs,
                         b / 100.0 / gbs);
            }
        }
        printf("| %-26s | %13s | %13s | %13s |\n", contenders[ci].name, col[0], col[1], col[2]);
    }

    if (opt.connects == 0) {
        return;
    }
    printf("\nHandshake: conduit_connect to the first byte the server sends after its accept,"
           " %u connects\nper pass (medians over the passes of each pass's median and p99), and"
           " the CPU each side\nspends per connection (A: connect to close; B: accept, send,"
           " close and listen again):\n\n",
           opt.connects);
    printf("| %-26s | %11s | %11s | %16s |\n", "contender", "median us", "p99 us",
           "CPU us A/B");
    printf("|----------------------------|------------:|------------:|-----------------:|\n");
    for (size_t ci = 0; ci < NCONT; ci++) {
        char med[24], p99[24], cpu[48];

        if (!selected(&contenders[ci]) || !has_hs_test(&contenders[ci])) {
            continue;
        }
        fmt_cell(med, sizeof(med), median(&hs_med[ci]), 0, false);
        fmt_cell(p99, sizeof(p99), median(&hs_p99[ci]), 0, false);
        snprintf(cpu, sizeof(cpu), "%.0f/%.0f", median(&hs_cpu_a[ci]), median(&hs_cpu_b[ci]));
        printf("| %-26s | %11s | %11s | %16s |\n", contenders[ci].name, med, p99,
               hs_cpu_a[ci].n ? cpu : "-");
    }
}

/* Targets met and counted. */
struct tally {
    int met, total;
};

static void target(struct tally *t, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void target(struct tally *t, bool ok, const char *fmt, ...)
{
    va_list ap;

    t->total++;
    t->met += ok;
    printf("  %-4s ", ok ? "met" : "MISS");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* The row of a contender by name; NCONT if there is none. */
static size_t row_of(const char *name)
{
    size_t ci = 0;

    while (ci < NCONT && strcmp(contenders[ci].name, name)) {
        ci++;
    }
    return ci;
}

/* The targets for vchan (default 64 KiB ring), from this run's medians. */
static void print_targets(void)
{
    const size_t v = MAIN_VCHAN;
    struct tally t = {0, 0};

    if (!selected(&contenders[v]) || !selected(&contenders[REF_UNIX])) {
        return;
    }
    printf("\nTargets (%s, this run, CPUs: %s):\n", contenders[v].name, opt.cond);
    static const double want_two[3] = {20, 8, 3}, want_busy[3] = {0, 1, 1};
    const double *want = strcmp(opt.cond, "two") == 0 ? want_two : want_busy;
    for (int wi = 0; wi < 3; wi++) {
        if (want[wi] == 0) {
            double r =
                median(&cells[v][C_TPUT64 + wi]) / median(&cells[REF_UNIX][C_TPUT64 + wi]);
            printf("  -    throughput at %zu B writes: %.1fx the UNIX socket (no target)\n",
                   wsizes[wi], r);
            continue;
        }
        double r = median(&cells[v][C_TPUT64 + wi]) / median(&cells[REF_UNIX][C_TPUT64 + wi]);
        target(&t, r >= want[wi], "throughput at %zu B writes: %.1fx the UNIX socket (want >= %.0fx)",
               wsizes[wi], r, want[wi]);
    }
    if (selected(&contenders[REF_NRING])) {
        double r = median(&cells[v][C_TPUT4K]) / median(&cells[REF_NRING][C_TPUT4K]);
        target(&t, r >= 0.8, "throughput at 4 KiB writes: %.1f%% of the naive ring (want >= 80%%)",
               r * 100);
    }
    {
        double m = median(&cells[v][C_RTT_MED]);
        if (want == want_two) {
            target(&t, m <= 2.0, "round trip, peer active: median %.2f us (want <= 2 us)", m);
        } else {
            double u = median(&cells[REF_UNIX][C_RTT_MED]);
            target(&t, m <= u, "round trip, peer active: median %.2f us, UNIX socket %.2f us (want <=)",
                   m, u);
        }
        m = median(&cells[v][C_IDLE_MED]);
        double u = median(&cells[REF_UNIX][C_IDLE_MED]);
        target(&t, m <= u, "round trip, peer asleep: median %.1f us, UNIX socket %.1f us (want <=)", m,
               u);
        m = median(&idle_cpu);
        target(&t, m < 2000, "idle channel: blocked reader used %.0f us of CPU in 1 s (want ~0)", m);
    }
    printf("  %d of %d met\n", t.met, t.total);
    if (selected(&contenders[REF_TRING])) {
        /* The ratio targets against what the best ring reaches on this machine. */
        printf("  for scale, the tuned ring (no Xen layout: each control word on its own line):");
        for (int wi = 0; wi < 3; wi++) {
            printf(" %.1fx", median(&cells[REF_TRING][C_TPUT64 + wi]) /
                                 median(&cells[REF_UNIX][C_TPUT64 + wi]));
        }
        printf(" the UNIX socket;\n  vchan reaches");
        for (int wi = 0; wi < 3; wi++) {
            printf("%s %.0f%%", wi ? " /" : "",
                   100 * median(&cells[v][C_TPUT64 + wi]) / median(&cells[REF_TRING][C_TPUT64 + wi]));
        }
        printf(" of it\n");
    }
    printf("\nlibconduit against its raw transport (throughput: conduit / raw; round trip: raw /"
           " conduit;\n1.00 = no overhead; targets: overhead under 5%%, TLS within 10%%):\n");
    for (size_t ci = 0; ci < NCONT; ci++) {
        const struct contender *c = &contenders[ci];
        double r[3], l;

        if (c->kind != K_CONDUIT || !selected(c) || !selected(&contenders[c->raw])) {
            continue;
        }
        for (int wi = 0; wi < 3; wi++) {
            r[wi] = median(&cells[ci][C_TPUT64 + wi]) / median(&cells[c->raw][C_TPUT64 + wi]);
        }
        l = median(&cells[c->raw][C_RTT_MED]) / median(&cells[ci][C_RTT_MED]);
        printf("  %-24s vs %-24s 64 B %.2f  4 KiB %.2f  64 KiB %.2f  rtt %.2f\n", c->name,
               contenders[c->raw].name, r[0], r[1], r[2], l);
    }
}

/* Issue 14's targets for the sodium layer over vchan, from this run's medians. */
static void print_sodium_targets(void)
{
    size_t sv = row_of("conduit sodium+vchan"), tv = row_of("conduit tls+vchan");
    struct tally t = {0, 0};
    double s64, t64, hs;

    if (sv == NCONT || !selected(&contenders[sv])) {
        return;
    }
    s64 = median(&cells[sv][C_TPUT64K]);
    printf("\nTargets (%s, this run):\n", contenders[sv].name);
    target(&t, s64 >= 1000, "throughput at 64 KiB writes: %.0f MB/s (want >= 1000)", s64);
    if (tv < NCONT && selected(&contenders[tv])) {
        t64 = median(&cells[tv][C_TPUT64K]);
        target(&t, s64 >= 0.8 * t64, "throughput at 64 KiB writes: %.0f%% of %s's %.0f MB/s (want >= 80%%)",
               100 * s64 / t64, contenders[tv].name, t64);
    }
    if (opt.connects > 0) {
        hs = median(&hs_med[sv]);
        target(&t, hs < 1000, "handshake, connect to first byte: median %.0f us (want < 1000 us)",
               hs);
    }
    printf("  %d of %d met\n", t.met, t.total);
}

static void print_env(int argc, char **argv)
{
    struct utsname u;
    char model[128] = "?", line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");

    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    uname(&u);
    printf("command:");
    for (int i = 0; i < argc; i++) {
        printf(" %s", argv[i]);
    }
    printf("\nhost: %s, %ld CPUs online, %s %s; %s\n", model, sysconf(_SC_NPROCESSORS_ONLN),
           u.sysname, u.release, OpenSSL_version(OPENSSL_VERSION));
    printf("config: %d passes, %.2f s per throughput test, %.2f s per round-trip test, idle gap "
           "%u us, %s, nice %d, quiet wait %.0f s for others < %.0f%%, receiver reads %zu B\n",
           opt.passes, opt.tput_s, opt.lat_s, opt.gap_us,
           !opt.pin                         ? "unpinned"
           : strcmp(opt.cond, "one") == 0 ? "both sides pinned to CPU 0"
           : strcmp(opt.cond, "hog") == 0 ? "sides pinned to CPUs 0 and 1, a CPU hog on each CPU"
                                          : "sides pinned to CPUs 0 and 1",
           opt.nice, opt.quiet_wait_s,
           opt.quiet_max, opt.read_size);
    f = fopen("/proc/loadavg", "r");
    if (f && fgets(line, sizeof(line), f)) {
        printf("load average at start: %s", line);
    }
    if (f) {
        fclose(f);
    }
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-r passes] [-t tput_sec] [-l rtt_sec] [-g idle_gap_us] [-f name_filter]"
            " [-u] [-q] [-H connects]\n"
            "  -u  do not pin the two sides to CPUs 0 and 1\n"
            "  -q  print only the tables (not every test as it runs)\n"
            "  -w  before each test, wait up to this many seconds until others use less\n"
            "      than -W %% of one CPU (default 25) (a shared machine: see 'others')\n"
            "  -n  nice value of the two sides (negative needs root)\n"
            "  -b  the receiver's read size in bytes (default 65536; 0: the write size)\n"
            "  -c  CPUs: two (default: sides on CPUs 0 and 1), one (both on CPU 0),\n"
            "      hog (CPUs 0 and 1 and a busy process on every CPU)\n"
            "  -f  run only the contenders whose name contains the string (several: a|b)\n"
            "  -H  handshakes per pass for libconduit over vchan (default 200; 0: none)\n",
            argv0);
}

int main(int argc, char **argv)
{
    int c;

    while ((c = getopt(argc, argv, "r:t:l:g:f:uqw:W:n:b:c:H:h")) != -1) {
        switch (c) {
        case 'r':
            opt.passes = (int)strtol(optarg, NULL, 10);
            break;
        case 't':
            opt.tput_s = strtod(optarg, NULL);
            break;
        case 'l':
            opt.lat_s = opt.idle_lat_s = strtod(optarg, NULL);
            break;
        case 'g':
            opt.gap_us = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'f':
            opt.only = optarg;
            break;
        case 'u':
            opt.pin = false;
            break;
        case 'q':
            opt.quiet = true;
            break;
        case 'w':
            opt.quiet_wait_s = strtod(optarg, NULL);
            break;
        case 'W':
            opt.quiet_max = strtod(optarg, NULL);
            break;
        case 'n':
            opt.nice = (int)strtol(optarg, NULL, 10);
            break;
        case 'b':
            opt.read_size = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            opt.cond = optarg;
            break;
        case 'H':
            opt.connects = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'h':
            usage(argv[0]);
            return 0;
        default:
            usage(argv[0]);
            return 2;
        }
    }
    if (opt.passes < 1 || opt.passes > MAX_PASSES || opt.tput_s <= 0 || opt.lat_s <= 0 ||
        opt.read_size > 16 * 1024 * KIB || opt.connects > MAX_SAMPLES ||
        (strcmp(opt.cond, "two") && strcmp(opt.cond, "one") && strcmp(opt.cond, "hog"))) {
        usage(argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    R = mmap(NULL, sizeof(*R), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pattern = aligned_alloc(4096, PATTERN_LEN);
    if (R == MAP_FAILED || !pattern) {
        perror("bench: set-up");
        return 1;
    }
    {
        uint64_t x = 0x243f6a8885a308d3ull;
        for (size_t i = 0; i < PATTERN_LEN; i += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(pattern + i, &x, 8);
        }
    }
    /* vchan's local rendezvous sockets go in a directory of this run's own. */
    if (!mkdtemp(run_dir) || setenv("VCHAN_DIR", run_dir, 1) < 0) {
        perror("bench: runtime directory");
        return 1;
    }
    if (tls_init() < 0) {
        fprintf(stderr, "bench: TLS set-up failed\n");
        return 1;
    }
    if (sodium_init_keys() < 0) {
        return 1;
    }
    print_env(argc, argv);
    if (strcmp(opt.cond, "hog") == 0) {
        start_hogs();
    }

    for (int pass = 0; pass < opt.passes; pass++) {
        note("\n=== pass %d of %d\n", pass + 1, opt.passes);
        /* Rotate the order each pass, so that no contender always runs after the same one. */
        for (int wi = 0; wi < 3; wi++) {
            for (size_t k = 0; k < NCONT; k++) {
                size_t ci = (k + (size_t)pass) % NCONT;
                if (selected(&contenders[ci])) {
                    run_tput(ci, wi);
                }
            }
        }
        for (int idle = 0; idle < 2; idle++) {
            for (size_t k = 0; k < NCONT; k++) {
                size_t ci = (k + (size_t)pass) % NCONT;
                if (selected(&contenders[ci])) {
                    run_rtt(ci, idle);
                }
            }
        }
        if (selected(&contenders[MAIN_VCHAN])) {
            run_idle_cpu(MAIN_VCHAN);
        }
        for (size_t k = 0; k < NCONT; k++) {
            size_t ci = (k + (size_t)pass) % NCONT;
            if (selected(&contenders[ci]) && has_hs_test(&contenders[ci])) {
                run_handshake(ci);
            }
        }
    }
    printf("\nTLS cipher: %s\n", tls_cipher);
    print_table();
    print_targets();
    print_sodium_targets();
    unlink(cert_file);
    unlink(key_file);
    unlink(sodium_key[0]);
    unlink(sodium_key[1]);
    rmdir(run_dir);
    if (nfailed) {
        printf("\n%d test(s) FAILED\n", nfailed);
    }
    return nfailed ? 1 : 0;
}
