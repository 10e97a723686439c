/* SPDX-License-Identifier: ISC */
/*
 * many: N concurrent connections on one event loop per side (docs/
 * performance.md, "Many channels"). A server process listens (conduit_listen,
 * non-blocking) and echoes every connection it accepts, all in one epoll
 * loop over conduit_fd; the client process opens N connections one after
 * another (blocking conduit_connect, timed one by one), then streams on all
 * of them at once for -t seconds from its own epoll loop, checking every
 * echoed byte against the pattern it sent.
 *
 * Reported per transport and N: connection set-up rate and latency (p50,
 * p99), the aggregate echoed throughput, CPU seconds per GB echoed on each
 * side, and each side's memory (RSS) and descriptors per channel, measured
 * as the change from before the first connection to all N open (the
 * server's includes its 16 KiB echo buffer per channel).
 *
 * A benchmark, not a test: run by `make bench-many` (options in
 * BENCH_MANY_ARGS). Exits non-zero when a connection fails, with the error
 * and the N it happened at, or when an echoed byte is wrong.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conduit.h"
#include "libvchan/platform/clock.h"

#define BUF (16 * 1024)
#define MAX_N 100000
#define SERVER_IDLE_NS (20 * 1000000000ull)
/* The client's first connect of a round waits this long for the server:
 * in split mode (-C) the other domain's server may still be starting. */
#define FIRST_CONNECT_MS 60000

struct chan {
    struct conduit *c;
    uint64_t sent, rcvd; /* client: pattern offsets; server: bytes echoed */
    uint8_t *buf;        /* server: echo buffer */
    size_t off, len;     /* server: buf[off, off + len) still to send back */
    short events;        /* what epoll watches for it now */
    bool ready, eof, dead;
};

struct report {
    int accepted;
    long rss_kib, fds; /* deltas: all N open minus before the first */
    double cpu_s;      /* from all accepted to all closed */
    uint64_t bytes;
    char err[256];
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("many: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;

    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) {
            resident = 0;
        }
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;

    if (!d) {
        return 0;
    }
    while (readdir(d)) {
        n++;
    }
    closedir(d);
    return n - 3; /* ".", "..", the directory's own */
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void raise_nofile(int n)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n * 8 + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The byte at stream offset `at` of channel `i`. */
static uint8_t pattern(uint64_t at, int i)
{
    return (uint8_t)(at * 7 + (uint64_t)i * 13 + (at >> 12));
}

/*
 * After servicing a channel: ask conduit what to wait for, and either keep
 * it on the ready list (it can move now) or watch its descriptor for that.
 */
static void rearm(int ep, struct chan *ch, int i, unsigned want)
{
    struct epoll_event ev = {.data.u32 = (uint32_t)i};
    short events = 0;
    int rc = conduit_poll_events(ch->c, want, &events);

    if (rc < 0) {
        ch->dead = true;
        return;
    }
    ch->ready = rc > 0;
    if (rc == 0 && events != ch->events) {
        ev.events = (events & POLLIN ? EPOLLIN : 0) | (events & POLLOUT ? EPOLLOUT : 0);
        if (epoll_ctl(ep, EPOLL_CTL_MOD, conduit_fd(ch->c), &ev) < 0) {
            die("epoll_ctl: %s", strerror(errno));
        }
        ch->events = events;
    }
}

static void watch(int ep, struct chan *ch, int i)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};

    if (epoll_ctl(ep, EPOLL_CTL_ADD, conduit_fd(ch->c), &ev) < 0) {
        die("epoll_ctl add: %s", strerror(errno));
    }
    ch->events = POLLIN;
    ch->ready = true;
}

/* Wait for channels to move: the ready list first, else epoll. */
static int next_ready(int ep, struct chan *chs, int n, int *list, int ms)
{
    struct epoll_event evs[256];
    int k = 0, got;

    for (int i = 0; i < n; i++) {
        if (chs[i].c && chs[i].ready && !chs[i].dead) {
            list[k++] = i;
        }
    }
    got = epoll_wait(ep, evs, 256, k > 0 ? 0 : ms);
    for (int j = 0; j < got; j++) {
        int i = (int)evs[j].data.u32;
        if (!chs[i].ready) {
            list[k++] = i;
        }
    }
    return k;
}

/* ------------------------------------------------------------ server */

/* Echo what the channel has; true when it is finished (EOF echoed, or dead). */
static bool echo(struct chan *ch)
{
    for (;;) {
        size_t n = 0;
        int rc;

        if (ch->len > 0) {
            rc = conduit_write(ch->c, ch->buf + ch->off, ch->len, &n);
            ch->off += n;
            ch->len -= n;
            ch->sent += n;
            if (rc < 0) {
                return rc == -CONDUIT_EAGAIN ? false : (ch->dead = true);
            }
            continue;
        }
        if (ch->eof) {
            return true;
        }
        rc = conduit_read(ch->c, ch->buf, BUF, &n);
        if (rc < 0) {
            return rc == -CONDUIT_EAGAIN ? false : (ch->dead = true);
        }
        if (n == 0) {
            ch->eof = true;
            return true;
        }
        ch->off = 0;
        ch->len = n;
    }
}

static void server(const char *uri, int n, int ready_fd, int report_fd)
{
    struct conduit_options opts = CONDUIT_OPTIONS_INIT(.nonblocking = true);
    struct conduit_listener *l;
    struct chan *chs = calloc((size_t)n, sizeof(*chs));
    int *list = calloc((size_t)n + 1, sizeof(*list));
    struct report r = {0};
    long rss0 = rss_kib(), fds0;
    int ep = epoll_create1(EPOLL_CLOEXEC), open_n = 0, done = 0;
    struct epoll_event lev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    double cpu0 = 0;
    uint64_t last;

    if (!chs || !list || ep < 0) {
        die("server: out of memory");
    }
    fds0 = open_fds();
    if (conduit_listen(&l, uri, &opts) < 0) {
        snprintf(r.err, sizeof(r.err), "listen: %.200s", conduit_last_error(NULL));
        (void)!write(report_fd, &r, sizeof(r));
        (void)!write(ready_fd, "E", 1);
        exit(1);
    }
    if (epoll_ctl(ep, EPOLL_CTL_ADD, conduit_listener_fd(l), &lev) < 0) {
        die("epoll_ctl listener: %s", strerror(errno));
    }
    (void)!write(ready_fd, "R", 1);
    last = vclock_now_ns();
    while (done < n) {
        struct epoll_event evs[64];
        int k = 0, got, before = r.accepted + done;

        /* Accept whatever is pending (the listener's fd is level-triggered). */
        while (r.accepted < n) {
            struct conduit *c;
            int rc = conduit_accept(l, &c);
            if (rc == -CONDUIT_EAGAIN) {
                break;
            }
            if (rc < 0) {
                snprintf(r.err, sizeof(r.err), "accept #%d: %s", r.accepted + 1,
                         conduit_listener_last_error(l));
                goto out;
            }
            chs[r.accepted].c = c;
            if (!(chs[r.accepted].buf = malloc(BUF))) {
                die("server: out of memory");
            }
            watch(ep, &chs[r.accepted], r.accepted);
            r.accepted++;
            open_n++;
            if (r.accepted == n) {
                r.rss_kib = rss_kib() - rss0;
                r.fds = open_fds() - fds0;
                cpu0 = cpu_s();
                if (epoll_ctl(ep, EPOLL_CTL_DEL, conduit_listener_fd(l), NULL) < 0) {
                    die("epoll_ctl del: %s", strerror(errno));
                }
            }
        }
        for (int i = 0; i < r.accepted; i++) {
            if (chs[i].c && chs[i].ready) {
                list[k++] = i;
            }
        }
        got = epoll_wait(ep, evs, 64, k > 0 ? 0 : 1000);
        for (int j = 0; j < got; j++) {
            int i = (int)evs[j].data.u32;
            if (i >= 0 && i < r.accepted && chs[i].c && !chs[i].ready) {
                list[k++] = i;
            }
        }
        for (int j = 0; j < k; j++) {
            struct chan *ch = &chs[list[j]];
            if (echo(ch)) {
                r.bytes += ch->sent;
                if (ch->dead && !r.err[0]) {
                    snprintf(r.err, sizeof(r.err), "channel %d: %s", list[j],
                             conduit_last_error(ch->c));
                }
                conduit_close(ch->c);
                free(ch->buf);
                ch->c = NULL;
                ch->ready = false;
                open_n--;
                done++;
                continue;
            }
            rearm(ep, ch, list[j], ch->len > 0 ? CONDUIT_WANT_WRITE : CONDUIT_WANT_READ);
        }
        /* A client that gave up (its connect failed) leaves the server
         * short of accepts: say where it stopped rather than wait forever. */
        if (r.accepted + done != before || k > 0) {
            last = vclock_now_ns();
        } else if (vclock_now_ns() - last > SERVER_IDLE_NS) {
            snprintf(r.err, sizeof(r.err), "stalled: %d of %d accepted, %d closed, nothing moved "
                     "for %d s", r.accepted, n, done, (int)(SERVER_IDLE_NS / 1000000000ull));
            break;
        }
    }
out:
    r.cpu_s = cpu_s() - cpu0;
    (void)!write(report_fd, &r, sizeof(r));
    conduit_listener_close(l);
    exit(r.err[0] ? 1 : 0);
}

/* ------------------------------------------------------------ client */

/* Move one client channel: write ahead, read back and check. */
static void stream(struct chan *ch, int i, bool writing, uint8_t *tmp, size_t w)
{
    for (int round = 0; round < 16; round++) {
        size_t n = 0, moved = 0;
        int rc;

        if (writing) {
            size_t len = w;
            for (size_t k = 0; k < len; k++) {
                tmp[k] = pattern(ch->sent + k, i);
            }
            rc = conduit_write(ch->c, tmp, len, &n);
            ch->sent += n;
            moved += n;
            if (rc < 0 && rc != -CONDUIT_EAGAIN) {
                die("client channel %d: write: %s", i, conduit_last_error(ch->c));
            }
        }
        rc = conduit_read(ch->c, tmp, BUF, &n);
        if (rc < 0 && rc != -CONDUIT_EAGAIN) {
            die("client channel %d: read: %s", i, conduit_last_error(ch->c));
        }
        if (rc == 0 && n == 0) {
            die("client channel %d: server closed early", i);
        }
        for (size_t k = 0; k < n; k++) {
            if (tmp[k] != pattern(ch->rcvd + k, i)) {
                die("client channel %d: echoed byte %" PRIu64 " is wrong", i, ch->rcvd + k);
            }
        }
        ch->rcvd += n;
        moved += n;
        if (!moved) {
            return;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * One round of n channels. listen_uri NULL: the server is another process
 * (many -S, in another domain), and only this side's columns are printed.
 */
static int run(const char *name, const char *listen_uri, const char *connect_uri, int n,
               double secs, size_t w)
{
    int ready[2], rep[2], ep, *list;
    struct chan *chs = calloc((size_t)n, sizeof(*chs));
    uint64_t *lat = calloc((size_t)n, sizeof(*lat));
    uint8_t *tmp = malloc(BUF > w ? BUF : w);
    struct report r = {0};
    uint64_t t0, t1, end, bytes = 0;
    long rss0, fds0, rss1, fds1;
    double cpu0, cpu1;
    char c = 0;
    pid_t pid;
    int status, failed_at = 0;
    char err[512] = "";

    list = calloc((size_t)n + 1, sizeof(*list));
    if (!chs || !lat || !tmp || !list || pipe(ready) < 0 || pipe(rep) < 0) {
        die("out of memory");
    }
    fflush(stdout);
    if (!listen_uri) {
        pid = 0;
    } else if ((pid = fork()) < 0) {
        die("fork: %s", strerror(errno));
    } else if (pid == 0) {
        close(ready[0]);
        close(rep[0]);
        server(listen_uri, n, ready[1], rep[1]);
    }
    close(ready[1]);
    close(rep[1]);
    if (pid && (read(ready[0], &c, 1) != 1 || c != 'R')) {
        if (read(rep[0], &r, sizeof(r)) == (ssize_t)sizeof(r)) {
            fprintf(stderr, "many: %s\n", r.err);
        }
        waitpid(pid, &status, 0);
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    rss0 = rss_kib();
    fds0 = open_fds();
    t0 = vclock_now_ns();
    for (int i = 0; i < n; i++) {
        struct conduit_options opts =
            CONDUIT_OPTIONS_INIT(.timeout_ms = i == 0 && !pid ? FIRST_CONNECT_MS : 10000);
        uint64_t a = vclock_now_ns();
        if (conduit_connect(&chs[i].c, connect_uri, &opts) < 0) {
            snprintf(err, sizeof(err), "connect #%d: %s", i + 1, conduit_last_error(NULL));
            failed_at = i + 1;
            break;
        }
        lat[i] = vclock_now_ns() - a;
        conduit_set_nonblocking(chs[i].c, true);
        watch(ep, &chs[i], i);
    }
    t1 = vclock_now_ns();
    rss1 = rss_kib() - rss0;
    fds1 = open_fds() - fds0;
    if (failed_at) {
        fprintf(stderr, "many: %s %d: %s\n", name, n, err);
        for (int i = 0; i < failed_at - 1; i++) {
            conduit_close(chs[i].c);
        }
        if (pid) {
            kill(pid, SIGTERM);
            waitpid(pid, &status, 0);
        }
        return 1;
    }

    /* Stream on all of them for secs, then stop writing and drain. */
    cpu0 = cpu_s();
    end = vclock_now_ns() + (uint64_t)(secs * 1e9);
    for (bool writing = true;;) {
        int k = next_ready(ep, chs, n, list, 100);
        bool pending = false;

        if (writing && vclock_now_ns() >= end) {
            writing = false;
        }
        for (int j = 0; j < k; j++) {
            int i = list[j];
            stream(&chs[i], i, writing, tmp, w);
            rearm(ep, &chs[i], i, CONDUIT_WANT_READ | (writing ? CONDUIT_WANT_WRITE : 0));
            if (chs[i].dead) {
                die("client channel %d: %s", i, conduit_last_error(chs[i].c));
            }
        }
        if (writing) {
            continue;
        }
        for (int i = 0; i < n && !pending; i++) {
            pending = chs[i].rcvd < chs[i].sent;
        }
        if (!pending) {
            break;
        }
        if (vclock_now_ns() > end + 30000000000ull) {
            die("%s %d: echoes still missing 30 s after the end", name, n);
        }
    }
    cpu1 = cpu_s() - cpu0;
    {
        double stream_s = (double)(vclock_now_ns() - (end - (uint64_t)(secs * 1e9))) / 1e9;
        double setup_s = (double)(t1 - t0) / 1e9;
        for (int i = 0; i < n; i++) {
            bytes += chs[i].rcvd;
            conduit_close(chs[i].c);
        }
        if (pid && read(rep[0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
            snprintf(r.err, sizeof(r.err), "no report from the server");
        }
        if (pid) {
            waitpid(pid, &status, 0);
        }
        if (pid && (r.err[0] || !WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
            fprintf(stderr, "many: %s %d: server: %s\n", name, n, r.err[0] ? r.err : "failed");
            return 1;
        }
        qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
        if (pid) {
            printf("%-6s %5d %9.0f %8.3f %8.3f %9.1f %8.2f %8.2f %8.1f %8.1f %6.1f %6.1f\n",
                   name, n, n / setup_s, lat[n / 2] / 1e6, lat[(size_t)((n - 1) * 0.99)] / 1e6,
                   bytes / stream_s / 1e6, r.cpu_s / (bytes / 1e9), cpu1 / (bytes / 1e9),
                   (double)r.rss_kib / n, (double)rss1 / n, (double)r.fds / n,
                   (double)fds1 / n);
        } else {
            printf("%-6s %5d %9.0f %8.3f %8.3f %9.1f %8s %8.2f %8s %8.1f %6s %6.1f\n", name, n,
                   n / setup_s, lat[n / 2] / 1e6, lat[(size_t)((n - 1) * 0.99)] / 1e6,
                   bytes / stream_s / 1e6, "(-S)", cpu1 / (bytes / 1e9), "(-S)",
                   (double)rss1 / n, "(-S)", (double)fds1 / n);
        }
        fflush(stdout);
    }
    close(ready[0]);
    close(rep[0]);
    close(ep);
    free(chs);
    free(lat);
    free(tmp);
    free(list);
    return 0;
}

/*
 * many -S: this side serves one round of n channels on listen_uri for a
 * client in another domain (many -C) and prints the server's columns.
 */
static int serve_only(const char *name, const char *listen_uri, int n)
{
    struct report r = {0};
    int ready[2], rep[2], status = 0;
    char c = 0;
    pid_t pid;

    if (pipe(ready) < 0 || pipe(rep) < 0) {
        die("pipe: %s", strerror(errno));
    }
    fflush(stdout);
    if ((pid = fork()) < 0) {
        die("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(ready[0]);
        close(rep[0]);
        server(listen_uri, n, ready[1], rep[1]);
    }
    close(ready[1]);
    close(rep[1]);
    if (read(ready[0], &c, 1) == 1 && c == 'R') {
        fprintf(stderr, "many: %s %d: listening on %s\n", name, n, listen_uri);
    }
    if (read(rep[0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
        snprintf(r.err, sizeof(r.err), "no report from the server");
    }
    waitpid(pid, &status, 0);
    close(ready[0]);
    close(rep[0]);
    if (r.err[0] || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "many: %s %d: server: %s (%d accepted)\n", name, n,
                r.err[0] ? r.err : "failed", r.accepted);
        return 1;
    }
    printf("%-6s %5d %9s %8s %8s %9s %8.2f %8s %8.1f %8s %6.1f %6s\n", name, n, "(-C)", "(-C)",
           "(-C)", "(-C)", r.bytes ? r.cpu_s / (r.bytes / 1e9) : 0.0, "(-C)",
           (double)r.rss_kib / n, "(-C)", (double)r.fds / n, "(-C)");
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------ fixed rate */

struct rate_report {
    double cpu_s, wall_s;
    char err[200];
};

/* The server of the fixed-rate mode: blocking echo of one connection. */
static void rate_server(const char *uri, int ready_fd, int report_fd)
{
    struct rate_report r = {0};
    struct conduit_listener *l;
    struct conduit *c = NULL;
    uint8_t buf[256];
    double cpu0;
    uint64_t t0;

    if (conduit_listen(&l, uri, NULL) < 0) {
        snprintf(r.err, sizeof(r.err), "listen: %.150s", conduit_last_error(NULL));
    } else {
        (void)!write(ready_fd, "R", 1);
        if (conduit_accept(l, &c) < 0) {
            snprintf(r.err, sizeof(r.err), "accept: %.150s", conduit_listener_last_error(l));
        }
    }
    if (r.err[0]) {
        (void)!write(ready_fd, "E", 1);
        (void)!write(report_fd, &r, sizeof(r));
        exit(1);
    }
    cpu0 = cpu_s();
    t0 = vclock_now_ns();
    for (;;) {
        size_t n = 0, done = 0;
        if (conduit_read(c, buf, sizeof(buf), &n) < 0 || n == 0) {
            break;
        }
        while (done < n) {
            size_t k = 0;
            if (conduit_write(c, buf + done, n - done, &k) < 0) {
                break;
            }
            done += k;
        }
    }
    r.cpu_s = cpu_s() - cpu0;
    r.wall_s = (double)(vclock_now_ns() - t0) / 1e9;
    conduit_close(c);
    conduit_listener_close(l);
    (void)!write(report_fd, &r, sizeof(r));
    exit(0);
}

/*
 * 64-byte requests at a fixed rate, each answered before the next is due:
 * what a mostly idle channel costs each side (CPU % of one core), and the
 * round trip at that rate.
 */
static int run_rate(const char *name, const char *lu, const char *cu, int rate, double secs)
{
    int ready[2], rep[2], status;
    size_t max = (size_t)(rate * secs) + 1, n = 0;
    uint64_t *lat = calloc(max, sizeof(*lat)), period = 1000000000ull / (uint64_t)rate, t0;
    struct conduit_options opts = CONDUIT_OPTIONS_INIT(.timeout_ms = 10000);
    struct rate_report r = {0};
    struct conduit *c;
    uint8_t msg[64] = {1}, back[64];
    double cpu0, cpu, wall;
    char ch = 0;
    pid_t pid;

    if (!lat || pipe(ready) < 0 || pipe(rep) < 0) {
        die("out of memory");
    }
    fflush(stdout);
    if ((pid = fork()) == 0) {
        close(ready[0]);
        close(rep[0]);
        rate_server(lu, ready[1], rep[1]);
    }
    close(ready[1]);
    close(rep[1]);
    if (pid < 0 || read(ready[0], &ch, 1) != 1 || ch != 'R') {
        if (read(rep[0], &r, sizeof(r)) == (ssize_t)sizeof(r)) {
            fprintf(stderr, "many: %s\n", r.err);
        }
        return 1;
    }
    if (conduit_connect(&c, cu, &opts) < 0) {
        fprintf(stderr, "many: %s rate %d: connect: %s\n", name, rate, conduit_last_error(NULL));
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        return 1;
    }
    cpu0 = cpu_s();
    t0 = vclock_now_ns();
    for (; n < max; n++) {
        uint64_t due = t0 + n * period, a;
        struct timespec ts = {.tv_sec = (time_t)(due / 1000000000ull),
                              .tv_nsec = (long)(due % 1000000000ull)};
        size_t got = 0, k;

        if (due > t0 + (uint64_t)(secs * 1e9)) {
            break;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        a = vclock_now_ns();
        if (conduit_write(c, msg, sizeof(msg), &k) < 0 || k != sizeof(msg)) {
            die("%s rate %d: write: %s", name, rate, conduit_last_error(c));
        }
        while (got < sizeof(back)) {
            if (conduit_read(c, back + got, sizeof(back) - got, &k) < 0 || k == 0) {
                die("%s rate %d: read: %s", name, rate, conduit_last_error(c));
            }
            got += k;
        }
        if (memcmp(back, msg, sizeof(msg)) != 0) {
            die("%s rate %d: echo differs", name, rate);
        }
        lat[n] = vclock_now_ns() - a;
        msg[0]++;
    }
    cpu = cpu_s() - cpu0;
    wall = (double)(vclock_now_ns() - t0) / 1e9;
    conduit_close(c);
    if (read(rep[0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
        snprintf(r.err, sizeof(r.err), "no report from the server");
    }
    waitpid(pid, &status, 0);
    close(ready[0]);
    close(rep[0]);
    if (r.err[0] || n == 0) {
        fprintf(stderr, "many: %s rate %d: server: %s\n", name, rate, r.err);
        free(lat);
        return 1;
    }
    qsort(lat, n, sizeof(*lat), cmp_u64);
    printf("%-6s %7d %9.0f %9.1f %9.1f %8.2f %8.2f\n", name, rate, n / wall, lat[n / 2] / 1e3,
           lat[(size_t)((n - 1) * 0.99)] / 1e3, 100.0 * r.cpu_s / r.wall_s, 100.0 * cpu / wall);
    fflush(stdout);
    free(lat);
    return 0;
}

/* The URIs of transport t for a benchmark tagged `tag`; false if t is unknown. */
static bool uris(const char *t, const char *dir, const char *tag, char *lu, char *cu, size_t len)
{
    if (!strcmp(t, "vchan")) {
        snprintf(lu, len, "vchan://*/%s", tag);
        snprintf(cu, len, "vchan://0/%s", tag);
    } else if (!strcmp(t, "unix")) {
        snprintf(lu, len, "unix://%s/%s.sock", dir, tag);
        snprintf(cu, len, "unix://%s/%s.sock", dir, tag);
    } else if (!strcmp(t, "tcp")) {
        static int next;
        int port = 20000 + (int)(getpid() % 20000) + next++ % 1000;
        snprintf(lu, len, "tcp://127.0.0.1:%d", port);
        snprintf(cu, len, "tcp://127.0.0.1:%d", port);
    } else {
        return false;
    }
    return true;
}

static void usage(void)
{
    fprintf(stderr, "usage: many [-n N,N,...] [-t SECS] [-w BYTES] [-R RATE,...] "
                    "[-T vchan,unix,tcp] [-o URI-OPTIONS]\n"
                    "       many -S [-n N,...] [-o URI-OPTIONS]   serve vchan://*/manyN only\n"
                    "       many -C DOMAIN [-n N,...] [-t SECS] [-w BYTES]   connect only\n");
    exit(2);
}

int main(int argc, char **argv)
{
    char ns[256] = "1,10,100,1000", ts[64] = "vchan,unix,tcp", dir[] = "/tmp/many.XXXXXX";
    char rates[128] = "100,1000,10000", ts2[64], ropts[128] = "";
    const char *peer = NULL;
    bool serve = false;
    double secs = 2;
    size_t w = 4096;
    int ch, status = 0, maxn = 0;

    while ((ch = getopt(argc, argv, "n:t:w:R:T:o:SC:")) != -1) {
        switch (ch) {
        case 'o':
            snprintf(ropts, sizeof(ropts), "%s", optarg);
            break;
        case 'S':
            serve = true;
            break;
        case 'C':
            peer = optarg;
            break;
        case 'n':
            snprintf(ns, sizeof(ns), "%s", optarg);
            break;
        case 't':
            secs = atof(optarg);
            break;
        case 'w':
            w = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 'T':
            snprintf(ts, sizeof(ts), "%s", optarg);
            break;
        case 'R':
            snprintf(rates, sizeof(rates), "%s", optarg);
            break;
        default:
            usage();
        }
    }
    if (secs <= 0 || w == 0 || w > BUF || (serve && peer)) {
        usage();
    }
    if (serve || peer) {
        /* Split across domains: vchan only, no fixed-rate rounds. */
        snprintf(ts, sizeof(ts), "vchan");
        snprintf(rates, sizeof(rates), "0");
    }
    signal(SIGPIPE, SIG_IGN);
    for (char *p = ns; *p;) {
        int n = (int)strtol(p, &p, 10);
        if (n > maxn) {
            maxn = n;
        }
        p += *p == ',';
    }
    if (maxn < 1 || maxn > MAX_N) {
        usage();
    }
    raise_nofile(maxn);
    if (!mkdtemp(dir)) {
        die("mkdtemp: %s", strerror(errno));
    }
    setenv("VCHAN_PLATFORM", "local", 0);
    setenv("VCHAN_DIR", dir, 0);
    printf("# many channels: %g s streaming, %zu-byte writes, one epoll loop per side\n", secs, w);
    printf("%-6s %5s %9s %8s %8s %9s %8s %8s %8s %8s %6s %6s\n", "", "N", "conn/s", "p50 ms",
           "p99 ms", "MB/s", "srv s/GB", "cli s/GB", "srvKiB/c", "cliKiB/c", "srvfd", "clifd");
    snprintf(ts2, sizeof(ts2), "%s", ts);
    for (char *t = strtok(ts, ","); t; t = strtok(NULL, ",")) {
        for (char *p = ns; *p;) {
            int n = (int)strtol(p, &p, 10);
            char lu[256], cu[256], tag[32];
            p += *p == ',';
            snprintf(tag, sizeof(tag), "many%d", n);
            if (!uris(t, dir, tag, lu, cu, sizeof(lu))) {
                usage();
            }
            if (peer) {
                snprintf(cu, sizeof(cu), "vchan://%s/%s", peer, tag);
            }
            if (ropts[0] && !strcmp(t, "vchan")) {
                size_t l = strlen(lu);
                snprintf(lu + l, sizeof(lu) - l, "%c%s", strchr(lu, '?') ? '&' : '?', ropts);
            }
            if (serve ? serve_only(t, lu, n) : run(t, peer ? NULL : lu, cu, n, secs, w)) {
                status = 1;
            }
        }
    }
    if (strcmp(rates, "0") != 0) {
        printf("\n# one channel, 64 B request and answer at a fixed rate, %g s: CPU %% of one "
               "core per side\n",
               secs);
        printf("%-6s %7s %9s %9s %9s %8s %8s\n", "", "rate/s", "got/s", "p50 us", "p99 us",
               "srv CPU%", "cli CPU%");
        for (char *t = strtok(ts2, ","); t; t = strtok(NULL, ",")) {
            for (char *p = rates; *p;) {
                int rate = (int)strtol(p, &p, 10);
                char lu[256], cu[256], tag[32];
                p += *p == ',';
                snprintf(tag, sizeof(tag), "rate%d", rate);
                if (rate < 1 || rate > 1000000 || !uris(t, dir, tag, lu, cu, sizeof(lu))) {
                    usage();
                }
                if (run_rate(t, lu, cu, rate, secs)) {
                    status = 1;
                }
            }
        }
    }
    rmdir(dir);
    return status;
}
