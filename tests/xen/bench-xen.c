// SPDX-License-Identifier: ISC
/*
 * bench-xen: throughput and round trip between dom0 and a domU on real Xen,
 * through our vchan (libvchan on the xen platform), Xen's own libxenvchan at
 * the same ring size, and TCP over the Xen network (netfront/netback).
 *
 *   bench-xen dom0 DOMU_ID [options]      in dom0: serves, leads, prints
 *   bench-xen domu 0 [options]            in the domU: connects, follows
 *
 * Both sides are given the same options (tests/xen/scenarios/bench-xen.sh);
 * each test begins with a header that names it, so a side that disagrees
 * stops at once. dom0 serves both vchans and listens on TCP; the domU
 * connects. The connections stay open for the whole run, so set-up is
 * never measured.
 *
 * Throughput: for -t seconds the sender writes a pseudo-random stream in
 * writes of 64 B, 4 KiB or 64 KiB (in segments, each after an 8-byte length,
 * so the receiver knows where the stream ends); the receiver reads what is
 * there, up to 64 KiB (-b: another size, 0 = the write size), as a stream
 * consumer does, checksums every byte and answers with its count and
 * checksum, which the sender checks against the stream it sent. MB/s is 10^6 bytes
 * per second over the sender's time from its first write to the receiver's
 * answer.
 * Round trip: dom0 sends 64 bytes carrying a sequence number, the domU
 * echoes them (packet calls: vchan_send/vchan_recv, libxenvchan_send/recv,
 * TCP write/read with TCP_NODELAY); median and 99th percentile over -l s.
 * TCP streams with Nagle's algorithm on (its default), so its small writes
 * are coalesced into full segments.
 *
 * After each test both sides exchange a report: bytes, checksum, wall and
 * CPU time, how many event-channel notifications the side sent and how
 * many events it waited for, and how many clock reads and polls its
 * library made. Those are counted by interposing on libxenevtchn's
 * xenevtchn_notify and xenevtchn_pending and libc's clock_gettime and poll,
 * which both vchan libraries call through the PLT: the program defines
 * them, counts, and calls the real ones. It also measures what a clock
 * read and a system call cost in each domain (dear in an emulated PV
 * guest), and the receiver's own copy and checksum alone (a ceiling).
 *
 * ours-nospin and ours-spin (-c, -S) are ours with another spin budget,
 * to see what the spin before sleeping does. A test that makes no progress
 * for -W seconds ends the run; dom0 still prints what it measured.
 *
 * Every contender runs each test once per pass, in an order rotated by one
 * each pass; dom0 prints every measurement as it comes, then one table of
 * the medians over the passes with the ratios ours/libxenvchan and
 * ours/TCP, and what each figure cost in notifications and CPU.
 *
 * Exit status: 0 every test ran and every checksum matched, 1 a failure
 * (message on stderr), 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libxenvchan.h>
#include <xenevtchn.h>

#include "vchan.h"

static const char *prog = "bench-xen";
static uint8_t iobuf[65536];
static size_t read_size = sizeof iobuf; /* -b; 0: the write size */

/* How much the receiver asks for at a time when the writes are w bytes. */
static uint32_t read_chunk(uint32_t w)
{
    return read_size ? (uint32_t)read_size : w;
}

/* ------------------------------------------------------------ counters */

/*
 * Our definitions take the place of libxenevtchn's and libc's for every
 * library of the process (the executable comes first in the lookup order),
 * so both vchan libraries are counted the same way. clock_gettime and poll
 * matter because in a PV guest under emulation each is a system call
 * through Xen costing tens of microseconds (the program measures it).
 */
static uint64_t count_notify;  /* xenevtchn_notify: events sent to the peer */
static uint64_t count_pending; /* xenevtchn_pending: events taken (wake-ups) */
static uint64_t count_clock;   /* clock_gettime calls by the libraries */
static uint64_t count_poll;    /* poll calls by the libraries */

typedef int notify_fn(xenevtchn_handle *, evtchn_port_t);
typedef xenevtchn_port_or_error_t pending_fn(xenevtchn_handle *);
typedef int clock_fn(clockid_t, struct timespec *);
typedef int poll_fn(struct pollfd *, nfds_t, int);
static clock_fn *real_clock_gettime;

static void *real_symbol(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);

    if (f == NULL) {
        fprintf(stderr, "%s: dlsym(%s): %s\n", prog, name, dlerror());
        _exit(1);
    }
    return f;
}

/* Exported whatever -fvisibility says: the libraries must find these. */
#define INTERPOSE __attribute__((visibility("default")))

INTERPOSE int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
    static notify_fn *real;

    if (real == NULL) {
        real = (notify_fn *)real_symbol("xenevtchn_notify");
    }
    count_notify++;
    return real(xce, port);
}

INTERPOSE xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
    static pending_fn *real;

    if (real == NULL) {
        real = (pending_fn *)real_symbol("xenevtchn_pending");
    }
    count_pending++;
    return real(xce);
}

INTERPOSE int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (real_clock_gettime == NULL) {
        real_clock_gettime = (clock_fn *)real_symbol("clock_gettime");
    }
    count_clock++;
    return real_clock_gettime(id, ts);
}

INTERPOSE int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    static poll_fn *real;

    if (real == NULL) {
        real = (poll_fn *)real_symbol("poll");
    }
    count_poll++;
    return real(fds, nfds, timeout);
}

/* ------------------------------------------------------------ helpers */

static void (*on_die)(void); /* dom0: print what was measured so far */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    void (*hook)(void) = on_die;

    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    on_die = NULL;
    if (hook) {
        hook();
    }
    exit(1);
}

/* Our own clock reads are not counted. */
static uint64_t now_ns(void)
{
    struct timespec ts;

    if (real_clock_gettime == NULL) {
        real_clock_gettime = (clock_fn *)real_symbol("clock_gettime");
    }
    real_clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

/*
 * The watchdog: a test that makes no progress for stall_s seconds (a peer
 * gone, a TCP link stalled in retransmission back-off on a loaded emulator)
 * ends the run; dom0 still prints what it measured until then. Progress is
 * noted once per segment or per 16 pings, not per call: alarm() is a
 * system call, dear in a PV guest.
 */
static const char *test_what = "starting";
static unsigned stall_s = 60;
static sigjmp_buf stuck_jump;
static volatile sig_atomic_t stuck_jump_set;

static void progress(void)
{
    alarm(stall_s);
}

static void on_alarm(int sig)
{
    static const char msg[] = "bench-xen: no progress for too long: ";

    (void)sig;
    /* Only async-signal-safe calls here. */
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0 ||
        write(STDERR_FILENO, test_what, strlen(test_what)) < 0 ||
        write(STDERR_FILENO, "\n", 1) < 0) {
        /* nothing left to do */
    }
    if (stuck_jump_set) {
        siglongjmp(stuck_jump, 1); /* we were blocked in I/O, not in stdio */
    }
    _exit(1);
}

/* ------------------------------------------------------------ the stream */

/*
 * Stream byte i is pattern[i % PATTERN_SIZE]: every write size divides
 * PATTERN_SIZE, so a write is one contiguous slice of it and the sender
 * spends nothing making data.
 */
#define PATTERN_SIZE (1u << 20)
static uint8_t *pattern;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static void make_pattern(void)
{
    pattern = malloc(PATTERN_SIZE);
    if (pattern == NULL) {
        die("out of memory");
    }
    for (size_t i = 0; i < PATTERN_SIZE; i += 8) {
        uint64_t v = mix(0x62656e6368u ^ mix(i / 8));
        memcpy(pattern + i, &v, 8);
    }
}

/*
 * A Fletcher-style checksum over little-endian 64-bit words, mod 2^64:
 * a sums the words, b sums the running values of a, so a word's position
 * counts as well as its value. Arbitrary read boundaries are fine: a
 * partial word waits in `part`. Stream lengths here are multiples of 8.
 */
struct csum {
    uint64_t a, b;
    uint8_t part[8];
    unsigned npart;
};

static void csum_words(struct csum *c, const uint8_t *p, size_t nwords)
{
    uint64_t a = c->a, b = c->b;

    for (size_t i = 0; i < nwords; i++) {
        uint64_t w;

        memcpy(&w, p + 8 * i, 8);
        a += w;
        b += a;
    }
    c->a = a;
    c->b = b;
}

static void csum_update(struct csum *c, const uint8_t *p, size_t n)
{
    if (c->npart > 0) {
        size_t take = 8 - c->npart < n ? 8 - c->npart : n;

        memcpy(c->part + c->npart, p, take);
        c->npart += (unsigned)take;
        p += take;
        n -= take;
        if (c->npart < 8) {
            return;
        }
        csum_words(c, c->part, 1);
        c->npart = 0;
    }
    csum_words(c, p, n / 8);
    memcpy(c->part, p + n / 8 * 8, n % 8);
    c->npart = (unsigned)(n % 8);
}

static uint64_t csum_value(const struct csum *c)
{
    return c->a ^ (c->b * 0x9e3779b97f4a7c15u);
}

/*
 * The checksum of the first n bytes of the stream (n a multiple of 8),
 * without reading them all: sums compose, (a, b) of X then Y being
 * (aX + aY, bX + bY + words(Y) * aX).
 */
static uint64_t stream_csum(uint64_t n)
{
    static struct csum whole;
    static bool have_whole;
    struct csum total = {0}, tail = {0};
    uint64_t copies = n / PATTERN_SIZE;
    size_t rest = (size_t)(n % PATTERN_SIZE);

    if (!have_whole) {
        csum_words(&whole, pattern, PATTERN_SIZE / 8);
        have_whole = true;
    }
    for (uint64_t i = 0; i < copies; i++) {
        total.b += whole.b + (uint64_t)(PATTERN_SIZE / 8) * total.a;
        total.a += whole.a;
    }
    csum_words(&tail, pattern, rest / 8);
    total.b += tail.b + (uint64_t)(rest / 8) * total.a;
    total.a += tail.a;
    return csum_value(&total);
}

/* ------------------------------------------------------------ connections */

/*
 * The contenders. ours-nospin and ours-spin are ours with another spin
 * budget before a blocking call sleeps (VCHAN_SPIN_US: 0, and -S), to see
 * what the spin buys here; they run only when named with -c.
 */
enum kind { OURS, XEN, TCP, OURS_NOSPIN, OURS_SPIN, NKINDS };
static const char *const kind_name[NKINDS] = {
    "ours", "xen", "tcp", "ours-nospin", "ours-spin",
};
static char kind_label[NKINDS][32] = {
    "ours (libvchan)", "Xen libxenvchan", "TCP netfront/netback", "ours, no spin", "ours, spin",
};
enum impl { IMPL_VCHAN, IMPL_XENVCHAN, IMPL_TCP };
static const enum impl kind_impl[NKINDS] = {
    IMPL_VCHAN, IMPL_XENVCHAN, IMPL_TCP, IMPL_VCHAN, IMPL_VCHAN,
};

struct conn {
    enum kind kind;
    enum impl impl;
    struct vchan *v;
    struct libxenvchan *x;
    int fd;
    uint64_t calls; /* read or write calls made on it (for the report) */
};

static void conn_fail(struct conn *c, const char *what, int rc)
{
    switch (c->impl) {
    case IMPL_VCHAN:
        die("%s: %s: %s (%s)", kind_name[c->kind], what, vchan_errname(rc), vchan_last_error(c->v));
    case IMPL_XENVCHAN:
        die("%s: %s failed (libxenvchan gives no reason; peer %s)", kind_name[c->kind], what,
            libxenvchan_is_open(c->x) ? "open" : "closed");
    default:
        die("%s: %s: %s", kind_name[c->kind], what, rc ? strerror(rc) : "end of stream");
    }
}

/* All of buf (blocking). */
static void conn_write(struct conn *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    c->calls++;
    switch (c->impl) {
    case IMPL_VCHAN: {
        size_t done = 0;
        int rc = vchan_write(c->v, buf, len, &done);

        if (rc < 0) {
            conn_fail(c, "vchan_write", rc);
        }
        return;
    }
    case IMPL_XENVCHAN:
        /* Blocking mode: all of it, or -1. */
        if (libxenvchan_write(c->x, buf, len) != (int)len) {
            conn_fail(c, "libxenvchan_write", 0);
        }
        return;
    default:
        while (len > 0) {
            ssize_t n = write(c->fd, p, len);

            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                conn_fail(c, "write", n < 0 ? errno : 0);
            }
            p += n;
            len -= (size_t)n;
            if (len > 0) {
                c->calls++;
            }
        }
        return;
    }
}

/* At least one byte, at most len (blocking); end of stream is an error here. */
static size_t conn_read(struct conn *c, void *buf, size_t len)
{
    c->calls++;
    switch (c->impl) {
    case IMPL_VCHAN: {
        size_t got = 0;
        int rc = vchan_read(c->v, buf, len, &got);

        if (rc < 0 || got == 0) {
            conn_fail(c, "vchan_read", rc);
        }
        return got;
    }
    case IMPL_XENVCHAN: {
        int n = libxenvchan_read(c->x, buf, len);

        if (n <= 0) {
            conn_fail(c, "libxenvchan_read", 0);
        }
        return (size_t)n;
    }
    default:
        for (;;) {
            ssize_t n = read(c->fd, buf, len);

            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                conn_fail(c, "read", n < 0 ? errno : 0);
            }
            return (size_t)n;
        }
    }
}

static void conn_read_all(struct conn *c, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        size_t n = conn_read(c, p, len);

        p += n;
        len -= n;
    }
}

/* Packet I/O for the round trip: the whole message or nothing. */
static void conn_send_pkt(struct conn *c, const void *buf, size_t len)
{
    int rc;

    switch (c->impl) {
    case IMPL_VCHAN:
        c->calls++;
        if ((rc = vchan_send(c->v, buf, len)) < 0) {
            conn_fail(c, "vchan_send", rc);
        }
        return;
    case IMPL_XENVCHAN:
        c->calls++;
        if (libxenvchan_send(c->x, buf, len) != (int)len) {
            conn_fail(c, "libxenvchan_send", 0);
        }
        return;
    default:
        conn_write(c, buf, len);
        return;
    }
}

static void conn_recv_pkt(struct conn *c, void *buf, size_t len)
{
    int rc;

    switch (c->impl) {
    case IMPL_VCHAN:
        c->calls++;
        if ((rc = vchan_recv(c->v, buf, len)) < 0) {
            conn_fail(c, "vchan_recv", rc);
        }
        return;
    case IMPL_XENVCHAN:
        c->calls++;
        if (libxenvchan_recv(c->x, buf, len) != (int)len) {
            conn_fail(c, "libxenvchan_recv", 0);
        }
        return;
    default:
        conn_read_all(c, buf, len);
        return;
    }
}

/* ------------------------------------------------------------ options */

#define NSIZES 3
static const uint32_t sizes[NSIZES] = {64, 4096, 65536};
enum dir { U2D, D2U };
static const char *const dir_name[2] = {"u2d", "d2u"};

struct options {
    bool dom0;
    int peer;
    size_t ring;
    int passes;
    double tput_s, rtt_s;
    bool want[NKINDS];
    unsigned spin_us; /* ours-spin's budget */
    bool dirs[2];
    const char *tcp_addr;
    int tcp_port;
    int connect_s;
    bool verbose;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: %s dom0|domu PEER_DOMID [options]\n"
            "  -s BYTES   ring size of each direction, both vchans (default 65536)\n"
            "  -r N       passes; tables give medians (default 5)\n"
            "  -t SECS    length of each throughput test (default 1)\n"
            "  -l SECS    length of each round-trip test (default 1)\n"
            "  -c LIST    contenders, comma-separated: ours,xen,tcp (default) and, to see\n"
            "             what the spin does, ours-nospin, ours-spin\n"
            "  -S US      spin budget of ours-spin in microseconds (default 1000)\n"
            "  -d DIRS    u2d (domU sends), d2u (dom0 sends) or both (default both)\n"
            "  -a ADDR    dom0's TCP address (default 10.0.0.1), -p PORT (default 5301)\n"
            "  -w SECS    how long to wait for the peer at connect (default 90)\n"
            "  -W SECS    give up when a test makes no progress for SECS (default 60)\n"
            "  -b BYTES   the receiver's read size (default 65536; 0: the write size)\n"
            "  -v         print every measurement on the domU side too\n"
            "Both sides must be given the same options.\n",
            prog);
    exit(2);
}

static double parse_double(const char *s, double lo, double hi, const char *what)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: %s: '%s' is not a number from %g to %g\n", prog, what, s, lo, hi);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv, struct options *o)
{
    int opt;

    *o = (struct options){
        .ring = 65536,
        .passes = 5,
        .tput_s = 1.0,
        .rtt_s = 1.0,
        .want = {true, true, true},
        .spin_us = 1000,
        .dirs = {true, true},
        .tcp_addr = "10.0.0.1",
        .tcp_port = 5301,
        .connect_s = 90,
    };
    if (argc < 3) {
        usage();
    }
    if (strcmp(argv[1], "dom0") == 0) {
        o->dom0 = true;
    } else if (strcmp(argv[1], "domu") != 0) {
        usage();
    }
    o->peer = (int)parse_double(argv[2], 0, VCHAN_DOMID_MAX, "PEER_DOMID");
    optind = 3;
    while ((opt = getopt(argc, argv, "s:r:t:l:c:S:d:a:p:w:W:b:v")) != -1) {
        switch (opt) {
        case 's':
            o->ring = (size_t)parse_double(optarg, 1024, VCHAN_MAX_RING_SIZE, "-s");
            break;
        case 'r':
            o->passes = (int)parse_double(optarg, 1, 99, "-r");
            break;
        case 't':
            o->tput_s = parse_double(optarg, 0.05, 600, "-t");
            break;
        case 'l':
            o->rtt_s = parse_double(optarg, 0.05, 600, "-l");
            break;
        case 'c':
            memset(o->want, 0, sizeof o->want);
            for (const char *w = optarg; *w != '\0';) {
                size_t len = strcspn(w, ",");
                int k;

                for (k = 0; k < NKINDS; k++) {
                    if (strlen(kind_name[k]) == len && strncmp(w, kind_name[k], len) == 0) {
                        break;
                    }
                }
                if (k == NKINDS) {
                    fprintf(stderr, "%s: -c: unknown contender '%.*s'\n", prog, (int)len, w);
                    exit(2);
                }
                o->want[k] = true;
                w += len + (w[len] == ',');
            }
            break;
        case 'S':
            o->spin_us = (unsigned)parse_double(optarg, 0, 100000, "-S");
            break;
        case 'd':
            o->dirs[U2D] = strcmp(optarg, "u2d") == 0 || strcmp(optarg, "both") == 0;
            o->dirs[D2U] = strcmp(optarg, "d2u") == 0 || strcmp(optarg, "both") == 0;
            if (!o->dirs[U2D] && !o->dirs[D2U]) {
                usage();
            }
            break;
        case 'a':
            o->tcp_addr = optarg;
            break;
        case 'p':
            o->tcp_port = (int)parse_double(optarg, 1, 65535, "-p");
            break;
        case 'w':
            o->connect_s = (int)parse_double(optarg, 1, 3600, "-w");
            break;
        case 'W':
            stall_s = (unsigned)parse_double(optarg, 5, 3600, "-W");
            break;
        case 'b':
            read_size = (size_t)parse_double(optarg, 0, sizeof iobuf, "-b");
            break;
        case 'v':
            o->verbose = true;
            break;
        default:
            usage();
        }
    }
    if (optind != argc) {
        usage();
    }
    snprintf(kind_label[OURS_SPIN], sizeof kind_label[OURS_SPIN], "ours, spin %u us", o->spin_us);
}

/* ------------------------------------------------------------ set-up */

#define XEN_PORT "bench-xen"

static void chan_log(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
{
    (void)ctx;
    if (level > VCHAN_LOG_WARN) {
        return;
    }
    fprintf(stderr, "%s: libvchan: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void open_ours(const struct options *o, struct conn *c)
{
    char err[256] = "", port[32], spin[16];
    /* BENCH_XEN_PLATFORM=local: try the program out on one host, without Xen. */
    const char *plat = getenv("BENCH_XEN_PLATFORM");
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = o->peer, .port = port, .read_size = o->ring,
                          .write_size = o->ring, .timeout_ms = o->connect_s * 1000,
                          .platform = plat ? plat : "xen", .log = chan_log, .errbuf = err,
                          .errbuf_len = sizeof err);
    int rc;

    snprintf(port, sizeof port, "bench-%s", kind_name[c->kind]);
    /* The library reads its spin budget from here at open. */
    snprintf(spin, sizeof spin, "%u", c->kind == OURS_SPIN ? o->spin_us : 0);
    if (c->kind == OURS) {
        unsetenv("VCHAN_SPIN_US");
    } else {
        setenv("VCHAN_SPIN_US", spin, 1);
    }
    rc = o->dom0 ? vchan_server_open(&c->v, &cfg) : vchan_client_open(&c->v, &cfg);
    unsetenv("VCHAN_SPIN_US");
    if (rc < 0) {
        die("%s: %s: %s: %s", kind_name[c->kind],
            o->dom0 ? "vchan_server_open" : "vchan_client_open", vchan_errname(rc), err);
    }
}

/*
 * I/O without a timeout, as libxenvchan's blocking mode (the watchdog
 * guards against a stuck peer): with one, every sleep also reads the clock.
 */
static void untimed(struct conn *c)
{
    vchan_set_timeout(c->v, 0);
}

static void xen_path(const struct options *o, char *buf, size_t len)
{
    /* dom0 serves: /local/domain/0/data/vchan/<client>/<port>, as ours. */
    snprintf(buf, len, "/local/domain/0/data/vchan/%d/%s", o->peer, XEN_PORT);
}

static void open_xen_server(const struct options *o, struct conn *c)
{
    char path[64];

    xen_path(o, path, sizeof path);
    c->x = libxenvchan_server_init(NULL, o->peer, path, o->ring, o->ring);
    if (c->x == NULL) {
        die("xen: libxenvchan_server_init(dom%d, %s): %s", o->peer, path, strerror(errno));
    }
}

static void open_xen_client(const struct options *o, struct conn *c, int self)
{
    char path[64];
    uint64_t deadline = now_ns() + (uint64_t)o->connect_s * 1000000000u;

    snprintf(path, sizeof path, "/local/domain/0/data/vchan/%d/%s", self, XEN_PORT);
    /* libxenvchan has no way to wait for a server: poll. */
    while ((c->x = libxenvchan_client_init(NULL, 0, path)) == NULL) {
        if (now_ns() > deadline) {
            die("xen: no libxenvchan server at %s after %d s", path, o->connect_s);
        }
        usleep(100 * 1000);
    }
}

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        die("tcp: socket: %s", strerror(errno));
    }
    return fd;
}

/*
 * Nagle's algorithm: on (TCP's default) for throughput, where it coalesces
 * small writes as any streaming TCP user gets; off for the round trip,
 * where each message must go at once.
 */
static void tcp_nodelay(int fd, bool on)
{
    int v = on;

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0) {
        die("tcp: TCP_NODELAY: %s", strerror(errno));
    }
}

static struct sockaddr_in tcp_sockaddr(const struct options *o)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->tcp_port)};

    if (inet_pton(AF_INET, o->tcp_addr, &sa.sin_addr) != 1) {
        die("tcp: bad address '%s'", o->tcp_addr);
    }
    return sa;
}

static int tcp_listen(const struct options *o)
{
    struct sockaddr_in sa = tcp_sockaddr(o);
    int fd = tcp_socket(), one = 1;

    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0) {
        die("tcp: listen on %s:%d: %s", o->tcp_addr, o->tcp_port, strerror(errno));
    }
    return fd;
}

static void tcp_accept(const struct options *o, int lfd, struct conn *c)
{
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};

    if (poll(&pfd, 1, o->connect_s * 1000) != 1) {
        die("tcp: no client on %s:%d after %d s", o->tcp_addr, o->tcp_port, o->connect_s);
    }
    c->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c->fd < 0) {
        die("tcp: accept: %s", strerror(errno));
    }
    close(lfd);
}

static void tcp_connect(const struct options *o, struct conn *c)
{
    struct sockaddr_in sa = tcp_sockaddr(o);
    uint64_t deadline = now_ns() + (uint64_t)o->connect_s * 1000000000u;

    for (;;) {
        c->fd = tcp_socket();
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            break;
        }
        if (now_ns() > deadline) {
            die("tcp: connect to %s:%d: %s", o->tcp_addr, o->tcp_port, strerror(errno));
        }
        close(c->fd);
        usleep(100 * 1000);
    }
}

/* dom0 publishes everything first, then waits for the domU in the order it connects. */
static void open_all(const struct options *o, struct conn *conns)
{
    int lfd = -1, self = -1;

    for (int k = 0; k < NKINDS; k++) {
        conns[k] = (struct conn){.kind = (enum kind)k, .impl = kind_impl[k], .fd = -1};
    }
    if (o->dom0) {
        for (int k = 0; k < NKINDS; k++) {
            if (o->want[k] && kind_impl[k] == IMPL_VCHAN) {
                open_ours(o, &conns[k]);
            }
        }
        if (o->want[XEN]) {
            open_xen_server(o, &conns[XEN]);
            conns[XEN].x->blocking = 1; /* libxenvchan leaves it uninitialised */
        }
        if (o->want[TCP]) {
            lfd = tcp_listen(o);
        }
        for (int k = 0; k < NKINDS; k++) {
            int rc;

            if (o->want[k] && kind_impl[k] == IMPL_VCHAN &&
                (rc = vchan_wait_connected(conns[k].v)) < 0) {
                die("%s: no client after %d s: %s", kind_name[k], o->connect_s, vchan_errname(rc));
            }
            if (o->want[k] && kind_impl[k] == IMPL_VCHAN) {
                untimed(&conns[k]);
            }
        }
        if (o->want[XEN]) {
            struct pollfd pfd = {.fd = libxenvchan_fd_for_select(conns[XEN].x), .events = POLLIN};
            uint64_t deadline = now_ns() + (uint64_t)o->connect_s * 1000000000u;

            while (libxenvchan_is_open(conns[XEN].x) == 2) {
                if (now_ns() > deadline) {
                    die("xen: no client after %d s", o->connect_s);
                }
                if (poll(&pfd, 1, 100) == 1 && libxenvchan_wait(conns[XEN].x) < 0) {
                    die("xen: libxenvchan_wait failed");
                }
            }
        }
        if (o->want[TCP]) {
            tcp_accept(o, lfd, &conns[TCP]);
        }
        return;
    }
    if (o->want[XEN]) {
        /* libxenvchan's client needs our own domid for the path. */
        const char *d = getenv("DOMID"); /* set by the harness */

        self = d ? (int)strtol(d, NULL, 10) : -1;
        if (self <= 0) {
            die("xen: DOMID (this domain's id) is not set");
        }
    }
    for (int k = 0; k < NKINDS; k++) {
        if (o->want[k] && kind_impl[k] == IMPL_VCHAN) {
            open_ours(o, &conns[k]);
            untimed(&conns[k]);
        }
    }
    if (o->want[XEN]) {
        open_xen_client(o, &conns[XEN], self);
        conns[XEN].x->blocking = 1;
    }
    if (o->want[TCP]) {
        tcp_connect(o, &conns[TCP]);
    }
}

static void close_all(struct conn *conns)
{
    for (int k = 0; k < NKINDS; k++) {
        vchan_close(conns[k].v);
        if (conns[k].x) {
            libxenvchan_close(conns[k].x);
        }
        if (conns[k].fd >= 0) {
            close(conns[k].fd);
        }
    }
}

/* ------------------------------------------------------------ tests */

#define MAGIC_HDR 0x62656e63682d7872u /* "bench-xr" */
#define MAGIC_REP 0x62656e63682d7270u

enum test_kind { T_TPUT = 1, T_RTT = 2, T_END = 3 };

/* What the active side sends first: names the test, so both agree. */
struct header {
    uint64_t magic;
    uint32_t kind, size, id, contender;
    uint64_t ns; /* how long the test lasts */
};

/* What each side tells the other after a test. */
struct report {
    uint64_t magic;
    uint64_t bytes;   /* moved by this side */
    uint64_t sum;     /* receiver: checksum of what arrived */
    uint64_t ns;      /* this side's wall time */
    uint64_t cpu_ns;  /* this side's user + system time */
    uint64_t notify;  /* event-channel notifications sent */
    uint64_t pending; /* events waited for and taken */
    uint64_t calls;   /* read/write calls made */
    uint64_t clock;   /* clock reads by the library */
    uint64_t poll;    /* polls by the library */
};

struct side {
    uint64_t t0, cpu0, notify0, pending0, calls0, clock0, poll0;
};

static void side_start(struct side *s, const struct conn *c)
{
    s->notify0 = count_notify;
    s->pending0 = count_pending;
    s->calls0 = c->calls;
    s->clock0 = count_clock;
    s->poll0 = count_poll;
    s->cpu0 = cpu_ns();
    s->t0 = now_ns();
}

static struct report side_end(const struct side *s, const struct conn *c, uint64_t bytes,
                              uint64_t sum)
{
    struct report r = {.magic = MAGIC_REP, .bytes = bytes, .sum = sum};

    r.ns = now_ns() - s->t0;
    r.cpu_ns = cpu_ns() - s->cpu0;
    r.notify = count_notify - s->notify0;
    r.pending = count_pending - s->pending0;
    r.calls = c->calls - s->calls0;
    r.clock = count_clock - s->clock0;
    r.poll = count_poll - s->poll0;
    return r;
}

struct result {
    bool done;
    struct report tx, rx; /* throughput: sender, receiver; round trip: dom0, domU */
    double mbps;
    double rtt_med_us, rtt_p99_us;
    uint64_t pings;
};

struct test {
    enum test_kind kind;
    enum dir dir;
    uint32_t size;
};

/* The passive side sends its report first, then reads the active side's. */
static void swap_reports(struct conn *c, bool active, const struct report *mine,
                         struct report *theirs)
{
    if (active) {
        conn_read_all(c, theirs, sizeof *theirs);
        conn_write(c, mine, sizeof *mine);
    } else {
        conn_write(c, mine, sizeof *mine);
        conn_read_all(c, theirs, sizeof *theirs);
    }
    if (theirs->magic != MAGIC_REP) {
        die("%s: the peer's report is garbled", kind_name[c->kind]);
    }
}

static void expect_header(struct conn *c, const struct header *want, struct header *got)
{
    conn_read_all(c, got, sizeof *got);
    if (got->magic != MAGIC_HDR || got->kind != want->kind || got->size != want->size ||
        got->id != want->id || got->contender != want->contender) {
        die("%s: the peer is running another test (kind %u size %u id %u contender %u; "
            "want %u %u %u %u): were both sides given the same options?",
            kind_name[c->kind], got->kind, got->size, got->id, got->contender, want->kind,
            want->size, want->id, want->contender);
    }
}


/*
 * Throughput for a fixed time. The stream goes in segments, each after an
 * 8-byte length (0 ends it), so that the receiver knows where it ends
 * without knowing in advance how much comes. A segment lasts about
 * SEGMENT_SECS at the rate seen so far: a few dozen length words per
 * second, next to thousands of data writes.
 */
#define SEGMENT_SECS 0.02
#define SEGMENT_MAX (64u << 20)

static void run_tput(struct conn *c, const struct test *t, uint32_t id, bool sender, double secs,
                     struct result *res)
{
    struct header h = {.magic = MAGIC_HDR,
                       .kind = T_TPUT,
                       .size = t->size,
                       .id = id,
                       .contender = c->kind,
                       .ns = (uint64_t)(secs * 1e9)};
    const uint32_t w = t->size;
    struct side s;
    struct report mine, theirs;

    if (sender) {
        uint64_t sent = 0, seg = 16 * (uint64_t)w, end, zero = 0;

        side_start(&s, c);
        end = s.t0 + (uint64_t)(secs * 1e9);
        conn_write(c, &h, sizeof h);
        for (;;) {
            uint64_t now;
            double rate, want, left;

            progress();
            conn_write(c, &seg, sizeof seg);
            for (uint64_t i = 0; i < seg; i += w, sent += w) {
                conn_write(c, pattern + sent % PATTERN_SIZE, w);
            }
            now = now_ns();
            if (now >= end) {
                break;
            }
            rate = (double)sent / ((double)(now - s.t0) / 1e9);
            left = (double)(end - now) / 1e9;
            want = rate * (left < SEGMENT_SECS ? left : SEGMENT_SECS);
            want = want < w ? w : want > SEGMENT_MAX ? SEGMENT_MAX : want;
            seg = (uint64_t)want / w * w;
        }
        conn_write(c, &zero, sizeof zero);
        conn_read_all(c, &theirs, sizeof theirs);
        mine = side_end(&s, c, sent, 0);
        conn_write(c, &mine, sizeof mine);
        if (theirs.magic != MAGIC_REP) {
            die("%s: the receiver's report is garbled", kind_name[c->kind]);
        }
        if (theirs.bytes != sent || theirs.sum != stream_csum(sent)) {
            die("%s: %s %u B writes: the receiver got %" PRIu64 " bytes with checksum %016" PRIx64
                ", sent %" PRIu64 " with %016" PRIx64,
                kind_name[c->kind], dir_name[t->dir], w, theirs.bytes, theirs.sum, sent,
                stream_csum(sent));
        }
        res->tx = mine;
        res->rx = theirs;
    } else {
        struct csum cs = {0};
        uint64_t got = 0, seg;
        struct header hh;

        expect_header(c, &h, &hh);
        side_start(&s, c);
        for (;;) {
            conn_read_all(c, &seg, sizeof seg);
            progress();
            if (seg == 0) {
                break;
            }
            if (seg % w != 0 || seg > SEGMENT_MAX) {
                die("%s: bad segment length %" PRIu64, kind_name[c->kind], seg);
            }
            while (seg > 0) {
                size_t want = read_chunk(w);
                size_t n = conn_read(c, iobuf, seg < want ? (size_t)seg : want);

                csum_update(&cs, iobuf, n);
                got += n;
                seg -= n;
            }
        }
        mine = side_end(&s, c, got, csum_value(&cs));
        swap_reports(c, false, &mine, &theirs);
        res->tx = theirs;
        res->rx = mine;
    }
    res->mbps = (double)res->tx.bytes / ((double)res->tx.ns / 1e9) / 1e6;
    res->done = true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

#define PING_SIZE 64
#define PING_WARMUP 20
#define PING_STOP UINT64_MAX

static uint64_t *rtts;
static size_t rtts_cap;

static void run_rtt(struct conn *c, uint32_t id, bool pinger, double secs, struct result *res)
{
    struct header h = {
        .magic = MAGIC_HDR, .kind = T_RTT, .size = PING_SIZE, .id = id, .contender = c->kind};
    uint8_t msg[PING_SIZE], back[PING_SIZE];
    struct side s;
    struct report mine, theirs;
    uint64_t seq = 0;

    if (pinger) {
        uint64_t end;
        size_t n = 0;

        conn_write(c, &h, sizeof h);
        memcpy(msg, pattern, sizeof msg);
        for (int i = 0; i < PING_WARMUP; i++, seq++) {
            memcpy(msg, &seq, sizeof seq);
            conn_send_pkt(c, msg, sizeof msg);
            conn_recv_pkt(c, back, sizeof back);
        }
        side_start(&s, c);
        end = s.t0 + (uint64_t)(secs * 1e9);
        for (;;) {
            uint64_t t0 = now_ns(), t1;

            memcpy(msg, &seq, sizeof seq);
            conn_send_pkt(c, msg, sizeof msg);
            conn_recv_pkt(c, back, sizeof back);
            t1 = now_ns();
            if (memcmp(msg, back, sizeof msg) != 0) {
                die("%s: round trip %" PRIu64 ": the echo differs", kind_name[c->kind], seq);
            }
            seq++;
            if (seq % 16 == 0) {
                progress();
            }
            if (n == rtts_cap) {
                rtts_cap = rtts_cap ? 2 * rtts_cap : 4096;
                rtts = realloc(rtts, rtts_cap * sizeof *rtts);
                if (rtts == NULL) {
                    die("out of memory");
                }
            }
            rtts[n++] = t1 - t0;
            if (t1 >= end) {
                break;
            }
        }
        mine = side_end(&s, c, n * PING_SIZE, 0);
        seq = PING_STOP;
        memcpy(msg, &seq, sizeof seq);
        conn_send_pkt(c, msg, sizeof msg);
        conn_recv_pkt(c, back, sizeof back);
        swap_reports(c, true, &mine, &theirs);
        qsort(rtts, n, sizeof *rtts, cmp_u64);
        res->pings = n;
        res->rtt_med_us = (double)rtts[n / 2] / 1e3;
        res->rtt_p99_us = (double)rtts[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e3;
        res->tx = mine;
        res->rx = theirs;
    } else {
        struct header hh;
        uint64_t echoed = 0;
        bool counting = false;

        expect_header(c, &h, &hh);
        for (;;) {
            conn_recv_pkt(c, msg, sizeof msg);
            memcpy(&seq, msg, sizeof seq);
            if (seq == PING_WARMUP && !counting) {
                /* The first measured ping: count from here, as the pinger does. */
                side_start(&s, c);
                counting = true;
            }
            conn_send_pkt(c, msg, sizeof msg);
            if (seq == PING_STOP) {
                break;
            }
            if (seq % 16 == 0) {
                progress();
            }
            echoed++;
        }
        if (!counting) {
            side_start(&s, c);
        }
        mine = side_end(&s, c, echoed * PING_SIZE, 0);
        swap_reports(c, false, &mine, &theirs);
        res->tx = theirs;
        res->rx = mine;
    }
    res->done = true;
}

/* ------------------------------------------------------------ tables */

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];

            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    }
    if (n == 0) {
        return -1; /* no measurement */
    }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum stat {
    S_MBPS,
    S_RTT_MED,
    S_RTT_P99,
    S_TX_NOTIFY_MB,
    S_RX_NOTIFY_MB,
    S_TX_WAKE_MB,
    S_RX_WAKE_MB,
    S_TX_CPU,
    S_RX_CPU,
    S_TX_NOTIFY_OP,
    S_RX_NOTIFY_OP,
    S_TX_WAKE_OP,
    S_RX_WAKE_OP,
    S_TX_SYS_MB,
    S_RX_SYS_MB,
    S_TX_SYS_OP,
    S_RX_SYS_OP,
};

static double stat_of(const struct result *r, enum stat s)
{
    double mb = (double)r->tx.bytes / 1e6;
    double ops = r->pings ? (double)r->pings : 1;

    switch (s) {
    case S_MBPS:
        return r->mbps;
    case S_RTT_MED:
        return r->rtt_med_us;
    case S_RTT_P99:
        return r->rtt_p99_us;
    case S_TX_NOTIFY_MB:
        return (double)r->tx.notify / mb;
    case S_RX_NOTIFY_MB:
        return (double)r->rx.notify / mb;
    case S_TX_WAKE_MB:
        return (double)r->tx.pending / mb;
    case S_RX_WAKE_MB:
        return (double)r->rx.pending / mb;
    case S_TX_CPU:
        return r->tx.ns ? 100.0 * (double)r->tx.cpu_ns / (double)r->tx.ns : 0;
    case S_RX_CPU:
        return r->rx.ns ? 100.0 * (double)r->rx.cpu_ns / (double)r->rx.ns : 0;
    case S_TX_NOTIFY_OP:
        return (double)r->tx.notify / ops;
    case S_RX_NOTIFY_OP:
        return (double)r->rx.notify / ops;
    case S_TX_WAKE_OP:
        return (double)r->tx.pending / ops;
    case S_RX_WAKE_OP:
        return (double)r->rx.pending / ops;
    case S_TX_SYS_MB:
        return (double)(r->tx.clock + r->tx.poll) / mb;
    case S_RX_SYS_MB:
        return (double)(r->rx.clock + r->rx.poll) / mb;
    case S_TX_SYS_OP:
        return (double)(r->tx.clock + r->tx.poll) / ops;
    case S_RX_SYS_OP:
        return (double)(r->rx.clock + r->rx.poll) / ops;
    }
    return 0;
}

struct bench {
    struct options o;
    struct conn conns[NKINDS];
    int kinds[NKINDS], nkinds;
    struct test tests[2 * NSIZES + 1];
    int ntests;
    struct result *res;     /* [pass][test][kind] */
    double ceiling[NSIZES]; /* dom0: copy + checksum alone, MB/s */
};

static struct result *result_at(struct bench *b, int pass, int t, int k)
{
    return &b->res[(pass * b->ntests + t) * NKINDS + k];
}

static double med_stat(struct bench *b, int t, int k, enum stat s)
{
    double v[100];
    int n = 0;

    for (int p = 0; p < b->o.passes; p++) {
        struct result *r = result_at(b, p, t, k);

        if (r->done) {
            v[n++] = stat_of(r, s);
        }
    }
    return median(v, n);
}

static const char *size_label(uint32_t size)
{
    return size == 64 ? "64 B" : size == 4096 ? "4 KiB" : "64 KiB";
}

static void describe(const struct bench *b, const struct test *t, char *buf, size_t len)
{
    (void)b;
    if (t->kind == T_TPUT) {
        snprintf(buf, len, "%s %s writes", dir_name[t->dir], size_label(t->size));
    } else {
        snprintf(buf, len, "round trip 64 B");
    }
}

static void print_result(struct bench *b, int pass, int t, int k)
{
    const struct test *te = &b->tests[t];
    struct result *r = result_at(b, pass, t, k);
    char what[64];

    describe(b, te, what, sizeof what);
    if (te->kind == T_TPUT) {
        printf("pass %d: %-4s %-20s %9.2f MB/s  %10" PRIu64 " B in %6.3f s; per MB: notify "
               "tx %.1f rx %.1f, wake tx %.1f rx %.1f, clock+poll tx %.1f rx %.1f; "
               "cpu tx %.0f%% rx %.0f%%\n",
               pass + 1, kind_name[k], what, r->mbps, r->tx.bytes, (double)r->tx.ns / 1e9,
               stat_of(r, S_TX_NOTIFY_MB), stat_of(r, S_RX_NOTIFY_MB), stat_of(r, S_TX_WAKE_MB),
               stat_of(r, S_RX_WAKE_MB), stat_of(r, S_TX_SYS_MB), stat_of(r, S_RX_SYS_MB),
               stat_of(r, S_TX_CPU), stat_of(r, S_RX_CPU));
    } else {
        printf("pass %d: %-4s %-20s median %8.1f us  p99 %8.1f us  (%" PRIu64
               " pings); per ping: notify dom0 %.2f domU %.2f, wake dom0 %.2f domU %.2f, "
               "clock+poll dom0 %.2f domU %.2f; cpu dom0 %.0f%% domU %.0f%%\n",
               pass + 1, kind_name[k], what, r->rtt_med_us, r->rtt_p99_us, r->pings,
               stat_of(r, S_TX_NOTIFY_OP), stat_of(r, S_RX_NOTIFY_OP), stat_of(r, S_TX_WAKE_OP),
               stat_of(r, S_RX_WAKE_OP), stat_of(r, S_TX_SYS_OP), stat_of(r, S_RX_SYS_OP),
               stat_of(r, S_TX_CPU), stat_of(r, S_RX_CPU));
    }
    fflush(stdout);
}

static void fmt_value(char *buf, size_t len, int decimals, double v)
{
    if (v < 0) {
        snprintf(buf, len, "-");
    } else {
        snprintf(buf, len, "%.*f", decimals, v);
    }
}

static void fmt_ratio(char *buf, size_t len, double ours, double other, bool higher_better)
{
    if (ours <= 0 || other <= 0) {
        snprintf(buf, len, "-");
    } else {
        snprintf(buf, len, "%.2fx", higher_better ? ours / other : other / ours);
    }
}

/* The worst pass beside the median: a contended pass is what users meet. */
static double worst_stat(struct bench *b, int t, int k, enum stat s, bool higher_better)
{
    double w = -1;

    for (int p = 0; p < b->o.passes; p++) {
        struct result *r = result_at(b, p, t, k);
        double v;

        if (!r->done) {
            continue;
        }
        v = stat_of(r, s);
        if (w < 0 || (higher_better ? v < w : v > w)) {
            w = v;
        }
    }
    return w;
}

/*
 * CPU-seconds per GB on each side (throughput tests), the worst pass of
 * each cell, and in how many passes ours was at least libxenvchan.
 */
static void print_worst(struct bench *b)
{
    const struct options *o = &b->o;
    char cell[64];

    printf("\nCPU-seconds per GB moved, sender / receiver (medians), and the worst pass: lowest "
           "MB/s,\nhighest round-trip p99; \"ours >= xen\": passes in which ours was at least "
           "libxenvchan\n(throughput: MB/s; round trip: p99 no higher).\n\n");
    printf("| %-11s | %-20s | %13s | %12s | %12s | %11s |\n", "", "test", "s/GB tx/rx",
           "median", "worst pass", "ours >= xen");
    printf("|-------------|----------------------|--------------:|-------------:|-------------:|"
           "------------:|\n");
    for (int i = 0; i < b->nkinds; i++) {
        int k = b->kinds[i];

        for (int t = 0; t < b->ntests; t++) {
            bool tput = b->tests[t].kind == T_TPUT;
            double med = med_stat(b, t, k, tput ? S_MBPS : S_RTT_P99);
            double worst = worst_stat(b, t, k, tput ? S_MBPS : S_RTT_P99, tput);
            char what[64], gb[32], beat[32];
            int won = 0, both = 0;

            if (med < 0) {
                continue;
            }
            describe(b, &b->tests[t], what, sizeof what);
            snprintf(gb, sizeof gb, "-");
            if (tput && med > 0) {
                double gbs = med / 1000.0;
                snprintf(gb, sizeof gb, "%.2f / %.2f", med_stat(b, t, k, S_TX_CPU) / 100 / gbs,
                         med_stat(b, t, k, S_RX_CPU) / 100 / gbs);
            }
            snprintf(beat, sizeof beat, "-");
            if (k == OURS && o->want[XEN]) {
                for (int p = 0; p < o->passes; p++) {
                    struct result *a = result_at(b, p, t, OURS), *x = result_at(b, p, t, XEN);

                    if (a->done && x->done) {
                        both++;
                        won += tput ? a->mbps >= x->mbps : a->rtt_p99_us <= x->rtt_p99_us;
                    }
                }
                snprintf(beat, sizeof beat, "%d of %d", won, both);
            }
            fmt_value(cell, sizeof cell, tput ? 2 : 1, worst);
            printf("| %-11s | %-20s | %13s | %12.*f | %12s | %11s |\n", kind_name[k],
                   tput ? what : "round trip p99 us", gb, tput ? 2 : 1, med, cell, beat);
        }
    }
}

static void print_tables(struct bench *b)
{
    const struct options *o = &b->o;
    char cell[64], r1[32], r2[32];

    printf("\nMedians of %d passes. Throughput in MB/s (1e6 B/s), sender's first write to the "
           "receiver's\nanswer, receiver checksumming every byte; round trip of 64 B in us "
           "(dom0 pings, domU echoes). The receiver reads up to %zu B at a time (0: the write size).\nRatios: ours / other for throughput, other / ours for "
           "round trip (higher is better for ours).\n\"copy+checksum\": the receiver's own "
           "work alone in dom0, no channel (a ceiling).\n\n",
           o->passes, read_size);
    printf("| %-22s |", "contender");
    for (int t = 0; t < b->ntests; t++) {
        if (b->tests[t].kind == T_TPUT) {
            snprintf(cell, sizeof cell, "%s %s", dir_name[b->tests[t].dir],
                     size_label(b->tests[t].size));
            printf(" %12s |", cell);
        } else {
            printf(" %10s | %8s |", "rtt median", "rtt p99");
        }
    }
    printf("\n|------------------------|");
    for (int t = 0; t < b->ntests; t++) {
        printf(b->tests[t].kind == T_TPUT ? "-------------:|" : "-----------:|---------:|");
    }
    printf("\n");
    for (int i = 0; i < b->nkinds; i++) {
        int k = b->kinds[i];

        printf("| %-22s |", kind_label[k]);
        for (int t = 0; t < b->ntests; t++) {
            if (b->tests[t].kind == T_TPUT) {
                fmt_value(cell, sizeof cell, 2, med_stat(b, t, k, S_MBPS));
                printf(" %12s |", cell);
            } else {
                fmt_value(cell, sizeof cell, 1, med_stat(b, t, k, S_RTT_MED));
                fmt_value(r1, sizeof r1, 1, med_stat(b, t, k, S_RTT_P99));
                printf(" %10s | %8s |", cell, r1);
            }
        }
        printf("\n");
    }
    printf("| %-22s |", "copy+checksum (limit)");
    for (int t = 0; t < b->ntests; t++) {
        if (b->tests[t].kind == T_TPUT) {
            int i = b->tests[t].size == 64 ? 0 : b->tests[t].size == 4096 ? 1 : 2;

            printf(" %12.2f |", b->ceiling[i]);
        } else {
            printf(" %10s | %8s |", "-", "-");
        }
    }
    printf("\n");
    for (int other = XEN; other <= TCP; other++) {
        if (!o->want[OURS] || !o->want[other]) {
            continue;
        }
        printf("| %-22s |", other == XEN ? "ratio ours/libxenvchan" : "ratio ours/TCP");
        for (int t = 0; t < b->ntests; t++) {
            if (b->tests[t].kind == T_TPUT) {
                fmt_ratio(r1, sizeof r1, med_stat(b, t, OURS, S_MBPS),
                          med_stat(b, t, other, S_MBPS), true);
                printf(" %12s |", r1);
            } else {
                fmt_ratio(r1, sizeof r1, med_stat(b, t, OURS, S_RTT_MED),
                          med_stat(b, t, other, S_RTT_MED), false);
                fmt_ratio(r2, sizeof r2, med_stat(b, t, OURS, S_RTT_P99),
                          med_stat(b, t, other, S_RTT_P99), false);
                printf(" %10s | %8s |", r1, r2);
            }
        }
        printf("\n");
    }

    printf("\nWhat it cost (medians): event-channel notifications sent and events waited for,\n"
           "per MB moved (round trip: per ping), sender (tx) / receiver (rx) (round trip:\n"
           "dom0 / domU); clock reads + polls the library made (each a system call here);\n"
           "and each side's CPU in %% of one vCPU. TCP's events are inside the kernels (not\n"
           "counted here).\n\n");
    printf("| %-11s | %-17s | %15s | %15s | %15s | %11s |\n", "", "test", "notify tx/rx",
           "wake tx/rx", "clock+poll tx/rx", "cpu tx/rx");
    printf("|-------------|-------------------|----------------:|----------------:|"
           "-----------------:|------------:|\n");
    for (int i = 0; i < b->nkinds; i++) {
        int k = b->kinds[i];

        for (int t = 0; t < b->ntests; t++) {
            bool tput = b->tests[t].kind == T_TPUT;
            char what[64], n[32], w[32], sys[32], cpu[32];

            describe(b, &b->tests[t], what, sizeof what);
            if (med_stat(b, t, k, S_TX_CPU) < 0) {
                continue; /* not measured (a run that stopped early) */
            }
            if (k == TCP) {
                snprintf(n, sizeof n, "-");
                snprintf(w, sizeof w, "-");
                snprintf(sys, sizeof sys, "-");
            } else {
                snprintf(sys, sizeof sys, "%.1f / %.1f",
                         med_stat(b, t, k, tput ? S_TX_SYS_MB : S_TX_SYS_OP),
                         med_stat(b, t, k, tput ? S_RX_SYS_MB : S_RX_SYS_OP));
                snprintf(n, sizeof n, "%.1f / %.1f",
                         med_stat(b, t, k, tput ? S_TX_NOTIFY_MB : S_TX_NOTIFY_OP),
                         med_stat(b, t, k, tput ? S_RX_NOTIFY_MB : S_RX_NOTIFY_OP));
                snprintf(w, sizeof w, "%.1f / %.1f",
                         med_stat(b, t, k, tput ? S_TX_WAKE_MB : S_TX_WAKE_OP),
                         med_stat(b, t, k, tput ? S_RX_WAKE_MB : S_RX_WAKE_OP));
            }
            snprintf(cpu, sizeof cpu, "%.0f / %.0f", med_stat(b, t, k, S_TX_CPU),
                     med_stat(b, t, k, S_RX_CPU));
            printf("| %-11s | %-17s | %15s | %15s | %16s | %11s |\n", kind_name[k], what, n, w, sys,
                   cpu);
        }
    }

    print_worst(b);

    if (o->want[OURS] && (o->want[XEN] || o->want[TCP])) {
        int met = 0, total = 0;

        printf("\nTargets (ours >= 1.5x libxenvchan at the same ring size, >= 3x TCP):\n");
        for (int other = XEN; other <= TCP; other++) {
            double want = other == XEN ? 1.5 : 3.0;

            if (!o->want[other]) {
                continue;
            }
            for (int t = 0; t < b->ntests; t++) {
                bool tput = b->tests[t].kind == T_TPUT;
                double ours = med_stat(b, t, OURS, tput ? S_MBPS : S_RTT_MED);
                double them = med_stat(b, t, other, tput ? S_MBPS : S_RTT_MED);
                double ratio = ours > 0 && them > 0 ? (tput ? ours / them : them / ours) : 0;
                char what[64];

                describe(b, &b->tests[t], what, sizeof what);
                if (ours < 0 || them < 0) {
                    printf("  n/a  %-22s %-20s (not measured)\n",
                           other == XEN ? "vs libxenvchan" : "vs TCP", what);
                    total++;
                    continue;
                }
                printf("  %-4s %-22s %-20s %.2fx (want >= %.1fx)\n", ratio >= want ? "met" : "MISS",
                       other == XEN ? "vs libxenvchan" : "vs TCP", what, ratio, want);
                met += ratio >= want;
                total++;
            }
        }
        printf("  %d of %d met\n", met, total);
    }
}

/* ------------------------------------------------------------ the run */

/*
 * What a clock read and a system call cost in this domain: a PV guest's
 * system calls go through Xen, and its vDSO clock may fall back to one.
 */
struct costs {
    uint64_t magic;
    uint64_t clock_ps, syscall_ps; /* picoseconds per call */
};

static uint64_t syscall_ps(int n)
{
    uint64_t t0 = now_ns();

    for (int i = 0; i < n; i++) {
        (void)getppid();
    }
    return (now_ns() - t0) * 1000 / (uint64_t)n;
}

static struct costs measure_costs(void)
{
    enum { N = 4096 };
    struct costs c = {.magic = MAGIC_REP};
    struct timespec ts;
    uint64_t t0 = now_ns();

    for (int i = 0; i < N; i++) {
        real_clock_gettime(CLOCK_MONOTONIC, &ts);
    }
    c.clock_ps = (now_ns() - t0) * 1000 / N;
    c.syscall_ps = syscall_ps(N);
    return c;
}

/*
 * The receiver's own work without any channel: copy a read's worth
 * (read_chunk) out of a buffer and checksum it, on one vCPU, for 0.2 s per
 * size. No contender can beat it; with -b 0 at 64 B it shows how much of a
 * message's cost is this program's rather than the channel's.
 */
static volatile uint64_t ceiling_sink;

static void measure_ceiling(struct bench *b)
{
    for (int i = 0; i < NSIZES; i++) {
        uint32_t w = read_chunk(sizes[i]);
        struct csum cs = {0};
        uint64_t t0 = now_ns(), t, bytes = 0;

        do {
            for (int j = 0; j < 64; j++, bytes += w) {
                memcpy(iobuf, pattern + bytes % PATTERN_SIZE, w);
                csum_update(&cs, iobuf, w);
            }
            t = now_ns() - t0;
        } while (t < 200000000u);
        ceiling_sink = csum_value(&cs); /* the checksum must really be computed */
        b->ceiling[i] = (double)bytes / ((double)t / 1e9) / 1e6;
    }
}

/* The domU tells dom0 its costs over the first connection; dom0 prints both. */
static void exchange_costs(struct bench *b)
{
    struct conn *c = &b->conns[b->kinds[0]];
    struct costs mine = measure_costs(), theirs;

    if (!b->o.dom0) {
        conn_write(c, &mine, sizeof mine);
        return;
    }
    conn_read_all(c, &theirs, sizeof theirs);
    if (theirs.magic != MAGIC_REP) {
        die("the domU's costs are garbled");
    }
    printf("clock_gettime: dom0 %.2f us, domU %.2f us per call; a system call (getppid): "
           "dom0 %.2f us, domU %.2f us\n",
           (double)mine.clock_ps / 1e6, (double)theirs.clock_ps / 1e6,
           (double)mine.syscall_ps / 1e6, (double)theirs.syscall_ps / 1e6);
}

static void run_one(struct bench *b, int pass, int t, int k, bool probe)
{
    const struct test *te = &b->tests[t];
    struct conn *c = &b->conns[k];
    struct result scratch = {0}, *r = probe ? &scratch : result_at(b, pass, t, k);
    uint32_t id = (uint32_t)(probe ? 1000 + t : (pass * b->ntests + t));
    static char what[96];
    double budget = te->kind == T_TPUT ? b->o.tput_s : b->o.rtt_s;

    snprintf(what, sizeof what, "%s, test %u (%s %u)", kind_name[k], id,
             te->kind == T_TPUT ? dir_name[te->dir] : "rtt", te->size);
    test_what = what;
    progress();
    /* The warm-up: a tenth of the time, at least 50 ms. */
    if (probe) {
        budget = budget / 10 < 0.05 ? 0.05 : budget / 10;
    }
    if (c->impl == IMPL_TCP) {
        tcp_nodelay(c->fd, te->kind == T_RTT);
    }
    if (te->kind == T_TPUT) {
        run_tput(c, te, id, (te->dir == U2D) != b->o.dom0, budget, r);
    } else {
        run_rtt(c, id, b->o.dom0, budget, r);
    }
    alarm(0);
    if (!probe && (b->o.dom0 || b->o.verbose)) {
        print_result(b, pass, t, k);
    }
}

static struct bench *the_bench; /* for partial tables */

static void print_partial(void)
{
    printf("\nPARTIAL RESULTS: the run stopped during %s (see above)\n", test_what);
    print_tables(the_bench);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static struct bench b;
    const struct options *o = &b.o;
    uint64_t t0 = now_ns();

    parse_args(argc, argv, &b.o);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    make_pattern();

    for (int k = 0; k < NKINDS; k++) {
        if (o->want[k]) {
            b.kinds[b.nkinds++] = k;
        }
    }
    for (int d = U2D; d <= D2U; d++) {
        for (int i = 0; o->dirs[d] && i < NSIZES; i++) {
            b.tests[b.ntests++] = (struct test){T_TPUT, (enum dir)d, sizes[i]};
        }
    }
    b.tests[b.ntests++] = (struct test){T_RTT, U2D, PING_SIZE};
    b.res = calloc((size_t)o->passes * (size_t)b.ntests * NKINDS, sizeof *b.res);
    if (b.res == NULL) {
        die("out of memory");
    }

    test_what = "connecting";
    alarm((unsigned)o->connect_s + 30);
    open_all(o, b.conns);
    alarm(0);
    the_bench = &b;
    if (sigsetjmp(stuck_jump, 1)) {
        if (o->dom0) {
            print_partial();
        }
        return 1;
    }
    stuck_jump_set = 1;
    if (o->dom0) {
        on_die = print_partial;
    }
    if (o->dom0) {
        printf("bench-xen: dom0 <-> domU %d; ring %zu B each way; %d passes, %.2f s per "
               "throughput test, %.2f s per round trip; contenders:",
               o->peer, o->ring, o->passes, o->tput_s, o->rtt_s);
        for (int i = 0; i < b.nkinds; i++) {
            printf(" %s", kind_name[b.kinds[i]]);
        }
        printf("\n");
        for (int k = 0; k < NKINDS; k++) {
            if (o->want[k] && kind_impl[k] == IMPL_VCHAN) {
                printf("%s: rings read %zu B, write %zu B\n", kind_name[k],
                       vchan_read_ring_size(b.conns[k].v), vchan_write_ring_size(b.conns[k].v));
            }
        }
        if (o->want[XEN]) {
            printf("xen: rings read %u B, write %u B\n", 1u << b.conns[XEN].x->read.order,
                   1u << b.conns[XEN].x->write.order);
        }
        printf("connected in %.1f s\n", (double)(now_ns() - t0) / 1e9);
    }
    exchange_costs(&b);
    if (o->dom0) {
        measure_ceiling(&b);
    }
    fflush(stdout);

    /* Each test once, unrecorded, first: faults in pages, fills caches. */
    for (int t = 0; t < b.ntests; t++) {
        for (int i = 0; i < b.nkinds; i++) {
            run_one(&b, 0, t, b.kinds[i], true);
        }
    }
    for (int p = 0; p < o->passes; p++) {
        if (o->dom0) {
            /* A loaded host shows here first: every system call slows down. */
            printf("pass %d: a system call costs %.1f us in dom0 now\n", p + 1,
                   (double)syscall_ps(256) / 1e6);
        }
        for (int t = 0; t < b.ntests; t++) {
            for (int i = 0; i < b.nkinds; i++) {
                run_one(&b, p, t, b.kinds[(i + p) % b.nkinds], false);
            }
        }
    }
    stuck_jump_set = 0;
    on_die = NULL;
    if (o->dom0) {
        print_tables(&b);
        printf("\nbench-xen: done in %.1f s\n", (double)(now_ns() - t0) / 1e9);
    } else {
        printf("bench-xen: domU side done in %.1f s\n", (double)(now_ns() - t0) / 1e9);
    }
    fflush(stdout);
    close_all(b.conns);
    free(b.res);
    free(rtts);
    free(pattern);
    return 0;
}
