/* SPDX-License-Identifier: ISC */
/*
 * churn: many sequential connections in one process must not leak. For
 * each transport, a server thread and this thread open, exchange a
 * ping/pong, and close CHURN_COUNT connections (default 1000) one after
 * the other. After a warm-up (CHURN_WARMUP, 50) and at the end it counts
 * the open descriptors (/proc/self/fd), the mappings (/proc/self/maps) and
 * the resident memory (/proc/self/statm). Descriptors and mappings must not
 * grow at all, memory by at most CHURN_RSS_KIB (default 1024). Under ASan or
 * TSan only descriptors are compared: their runtimes map allocator regions
 * and shadow as the heap moves (a TSan run in CI grew by two mappings), and
 * ASan's quarantine holds freed memory on purpose; the plain build checks
 * mappings and memory, LeakSanitizer the heap at exit.
 *
 * Transports: libvchan's own API (vchan_server_open/vchan_client_open) on
 * the local platform, and through libconduit: vchan://0/P (one client
 * domain), vchan://STAR/P (the accept rendezvous), unix:// and tcp:// on
 * loopback. Arguments pick transports by name (vchan-api, vchan, vchan-any,
 * unix, tcp). Prints one line per transport; exit 1 on any failure.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conduit.h"
#include "vchan.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

#define TIMEOUT_MS 10000

static long count = 1000, warmup = 50, rss_limit_kib = 1024;
static char dir[64];

struct usage {
    long fds, maps, rss_kib;
};

static long count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    long n = 0;

    if (!d) {
        return -1;
    }
    while ((e = readdir(d))) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

static struct usage measure(void)
{
    struct usage u = {count_entries("/proc/self/fd"), 0, 0};
    FILE *f = fopen("/proc/self/maps", "r");
    long size, resident;
    int c;

    if (f) {
        while ((c = fgetc(f)) != EOF) {
            u.maps += c == '\n';
        }
        fclose(f);
    }
    f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) == 2) {
            u.rss_kib = resident * (sysconf(_SC_PAGESIZE) / 1024);
        }
        fclose(f);
    }
    return u;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ one transport */

struct churn {
    const char *name;
    char listen_uri[160], connect_uri[160];
    bool vchan_api;
    sem_t go;    /* the server may start the next connection */
    sem_t ready; /* the server can take the next client */
    sem_t done;  /* the server finished a connection */
    int stop;    /* atomic: the main thread gave up, the server must not start again */
    char error[512];
    struct conduit_listener *l;
};

static void failf(struct churn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void failf(struct churn *c, const char *fmt, ...)
{
    va_list ap;

    if (!c->error[0]) {
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof(c->error), fmt, ap);
        va_end(ap);
    }
}

/* The server side of one connection with libvchan's API. */
static int vchan_serve(struct churn *c, long i)
{
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = 0, .port = "churn", .timeout_ms = TIMEOUT_MS);
    struct vchan *v = NULL;
    char buf[8];
    size_t n = 0;
    int rc;

    if ((rc = vchan_server_open(&v, &cfg))) {
        failf(c, "connection %ld: vchan_server_open: %s", i, vchan_strerror(rc));
        sem_post(&c->ready);
        return -1;
    }
    sem_post(&c->ready);
    if ((rc = vchan_wait_connected(v)) || (rc = vchan_recv(v, buf, 4)) ||
        (rc = vchan_send(v, "pong", 4))) {
        failf(c, "connection %ld: server: %s (%s)", i, vchan_strerror(rc), vchan_last_error(v));
    } else if ((rc = vchan_read(v, buf, sizeof(buf), &n)) || n != 0) {
        failf(c, "connection %ld: server: no end-of-file: %s, %zu bytes", i, vchan_strerror(rc), n);
    }
    vchan_close(v);
    return rc ? -1 : 0;
}

static int vchan_client(struct churn *c, long i)
{
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = 0, .port = "churn", .timeout_ms = TIMEOUT_MS);
    struct vchan *v = NULL;
    char buf[4];
    int rc;

    if ((rc = vchan_client_open(&v, &cfg)) || (rc = vchan_send(v, "ping", 4)) ||
        (rc = vchan_recv(v, buf, 4))) {
        failf(c, "connection %ld: client: %s (%s)", i, vchan_strerror(rc), vchan_last_error(v));
    }
    vchan_close(v);
    return rc ? -1 : 0;
}

/* Exactly len bytes, or an error. */
static int conduit_read_all(struct conduit *k, char *buf, size_t len)
{
    size_t got = 0, n;
    int rc;

    while (got < len) {
        if ((rc = conduit_read(k, buf + got, len - got, &n))) {
            return rc;
        }
        if (n == 0) {
            return -CONDUIT_EIO;
        }
        got += n;
    }
    return 0;
}

static int conduit_serve(struct churn *c, long i)
{
    struct conduit *k = NULL;
    char buf[8];
    size_t n = 0;
    int rc;

    sem_post(&c->ready);
    if ((rc = conduit_accept(c->l, &k))) {
        failf(c, "connection %ld: accept: %s", i, conduit_listener_last_error(c->l));
        return -1;
    }
    if ((rc = conduit_read_all(k, buf, 4)) || (rc = conduit_write(k, "pong", 4, &n))) {
        failf(c, "connection %ld: server: %s (%s)", i, conduit_strerror(rc), conduit_last_error(k));
    } else if ((rc = conduit_read(k, buf, sizeof(buf), &n)) || n != 0) {
        failf(c, "connection %ld: server: no end-of-file: %s, %zu bytes", i, conduit_strerror(rc),
              n);
        rc = rc ? rc : -1;
    }
    conduit_close(k);
    return rc ? -1 : 0;
}

static int conduit_client(struct churn *c, long i)
{
    struct conduit_options opts = CONDUIT_OPTIONS_INIT(.timeout_ms = TIMEOUT_MS);
    struct conduit *k = NULL;
    char buf[4];
    size_t n;
    int rc;

    if ((rc = conduit_connect(&k, c->connect_uri, &opts))) {
        failf(c, "connection %ld: connect %s: %s", i, c->connect_uri, conduit_last_error(NULL));
        return -1;
    }
    if ((rc = conduit_write(k, "ping", 4, &n)) || (rc = conduit_read_all(k, buf, 4))) {
        failf(c, "connection %ld: client: %s (%s)", i, conduit_strerror(rc), conduit_last_error(k));
    }
    conduit_close(k);
    return rc ? -1 : 0;
}

static void *server_thread(void *arg)
{
    struct churn *c = arg;

    for (long i = 0; i < count; i++) {
        int rc;

        /* Still between connections while the main thread measures. */
        sem_wait(&c->go);
        if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
            break;
        }
        rc = c->vchan_api ? vchan_serve(c, i) : conduit_serve(c, i);
        sem_post(&c->done);
        if (rc) {
            break;
        }
    }
    return NULL;
}

static int run(struct churn *c)
{
    struct usage start = measure(), before = {0}, after, end;
    pthread_t t;
    double t0 = now_s();
    long i;
    int rc = 0;

    sem_init(&c->go, 0, 0);
    sem_init(&c->ready, 0, 0);
    sem_init(&c->done, 0, 0);
    if (!c->vchan_api) {
        struct conduit_options opts = CONDUIT_OPTIONS_INIT(.timeout_ms = TIMEOUT_MS);
        char errbuf[256] = "";

        opts.errbuf = errbuf;
        opts.errbuf_len = sizeof(errbuf);
        if (conduit_listen(&c->l, c->listen_uri, &opts)) {
            printf("FAIL: %s: listen %s: %s\n", c->name, c->listen_uri, errbuf);
            return 1;
        }
    }
    if (pthread_create(&t, NULL, server_thread, c)) {
        printf("FAIL: %s: pthread_create\n", c->name);
        return 1;
    }
    for (i = 0; i < count && !c->error[0]; i++) {
        if (i == warmup) {
            before = measure();
        }
        sem_post(&c->go);
        sem_wait(&c->ready);
        if (c->error[0]) {
            break;
        }
        rc = c->vchan_api ? vchan_client(c, i) : conduit_client(c, i);
        /* Sequential: the next connection starts when this one is over on both sides. */
        sem_wait(&c->done);
        if (rc) {
            break;
        }
    }
    /* Measured where `before` was: between connections, listener and thread still there. */
    after = measure();
    /* A server still waiting for its next go (we stopped early) must end. */
    __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
    sem_post(&c->go);
    pthread_join(t, NULL);
    conduit_listener_close(c->l);
    end = measure();
    sem_destroy(&c->go);
    sem_destroy(&c->ready);
    sem_destroy(&c->done);
    if (c->error[0]) {
        printf("FAIL: %s: %s\n", c->name, c->error);
        return 1;
    }
    printf("%s: %ld connections in %.2f s; from connection %ld to the end: descriptors %ld -> %ld, "
           "mappings %ld -> %ld, resident %ld -> %ld KiB; after closing the listener: "
           "descriptors %ld (%ld before it)\n",
           c->name, count, now_s() - t0, warmup, before.fds, after.fds, before.maps, after.maps,
           before.rss_kib, after.rss_kib, end.fds, start.fds);
    if (after.fds != before.fds ||
        (!UNDER_SANITIZER && (after.maps > before.maps ||
                              after.rss_kib - before.rss_kib > rss_limit_kib))) {
        printf("FAIL: %s: resources grew over %ld connections\n", c->name, count - warmup);
        return 1;
    }
    if (end.fds != start.fds) {
        printf("FAIL: %s: %ld descriptors before listening, %ld after closing\n", c->name,
               start.fds, end.fds);
        return 1;
    }
    printf("PASS: %s\n", c->name);
    return 0;
}

static bool picked(int argc, char **argv, const char *name)
{
    if (argc < 2) {
        return true;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void cleanup(void)
{
    char path[sizeof(dir) + 256 + 2];
    DIR *d;
    struct dirent *e;

    if (!dir[0] || !(d = opendir(dir))) {
        return;
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    const char *env, *tmp = getenv("TMPDIR");
    struct churn cases[5];
    int failed = 0, tcp_port;

    if ((env = getenv("CHURN_COUNT")) && *env) {
        count = strtol(env, NULL, 10);
    }
    if ((env = getenv("CHURN_WARMUP")) && *env) {
        warmup = strtol(env, NULL, 10);
    }
    if ((env = getenv("CHURN_RSS_KIB")) && *env) {
        rss_limit_kib = strtol(env, NULL, 10);
    }
    if (warmup >= count) {
        warmup = count / 2;
    }
    snprintf(dir, sizeof(dir), "%.40s/churn.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("churn: mkdtemp");
        return 1;
    }
    atexit(cleanup);
    setenv("VCHAN_DIR", dir, 1);
    setenv("VCHAN_PLATFORM", "local", 1);
    unsetenv("VCHAN_DOMID");
    srand((unsigned)getpid());
    tcp_port = 20000 + rand() % 40000;

    memset(cases, 0, sizeof(cases));
    cases[0].name = "vchan-api";
    cases[0].vchan_api = true;
    cases[1].name = "vchan";
    snprintf(cases[1].listen_uri, sizeof(cases[1].listen_uri), "vchan://0/churn1");
    snprintf(cases[1].connect_uri, sizeof(cases[1].connect_uri), "vchan://0/churn1");
    cases[2].name = "vchan-any";
    snprintf(cases[2].listen_uri, sizeof(cases[2].listen_uri), "vchan://*/churn2");
    snprintf(cases[2].connect_uri, sizeof(cases[2].connect_uri), "vchan://0/churn2");
    cases[3].name = "unix";
    snprintf(cases[3].listen_uri, sizeof(cases[3].listen_uri), "unix://%s/sock", dir);
    snprintf(cases[3].connect_uri, sizeof(cases[3].connect_uri), "unix://%s/sock", dir);
    cases[4].name = "tcp";
    snprintf(cases[4].listen_uri, sizeof(cases[4].listen_uri), "tcp://127.0.0.1:%d", tcp_port);
    snprintf(cases[4].connect_uri, sizeof(cases[4].connect_uri), "tcp://127.0.0.1:%d", tcp_port);

    printf("churn: %ld sequential connections per transport, measured after %ld (%s)\n", count,
           warmup, UNDER_SANITIZER ? "sanitizer: mappings and memory not compared"
                           : "memory limit in CHURN_RSS_KIB");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (picked(argc, argv, cases[i].name)) {
            fflush(stdout);
            failed |= run(&cases[i]);
        }
    }
    fflush(stdout);
    return failed;
}
