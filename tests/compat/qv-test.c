/* SPDX-License-Identifier: ISC */
/*
 * A qrexec-shaped program on the Qubes libvchan API (libvchan-conduit), for
 * real Xen (tests/xen/scenarios/xen-scenarios.sh, the compat-qubes steps):
 *
 *   qv-test server DOMAIN PORT BYTES   wait for the client as qrexec-daemon
 *                                      does, then BYTES each way at once
 *   qv-test client DOMAIN PORT BYTES   connect with the async client as
 *                                      qrexec-client-vm does, then the same
 *   qv-test server DOMAIN PORT death   take what the client sends until it
 *                                      dies: is_open must say so
 *   qv-test client DOMAIN PORT stream  send until killed
 *
 * The stream is a function of its position and direction, checked byte for
 * byte. Exit 0 when every check held; each failure is printed.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvchan.h>

static const char *role = "?";
static int failures;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "qv-test %s: line %d: check failed: %s (errno %s)\n", role, \
                    __LINE__, #cond, strerror(errno));                                  \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

static uint8_t pattern(uint64_t pos, int dir)
{
    uint64_t x = (pos + 1) * 0x9e3779b97f4a7c15ull + (uint64_t)dir * 0x5851f42d4c957f2dull;
    return (uint8_t)(x >> 56);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep on the channel's descriptor (at most ms), then consume the event. */
static void await_event(libvchan_t *c, int ms)
{
    struct pollfd p = {.fd = libvchan_fd_for_select(c), .events = POLLIN};

    if (poll(&p, 1, ms) > 0) {
        CHECK(libvchan_wait(c) == 0);
    }
}

/*
 * BYTES each way at once, non-blocking. A peer that goes away before its
 * stream is complete is a failure.
 */
static void exchange(libvchan_t *c, uint64_t total)
{
    uint8_t buf[16384];
    uint64_t sent = 0, got = 0;
    int out_dir = strcmp(role, "server") == 0 ? 0 : 1;
    double t0 = now(), last = t0;

    libvchan_set_blocking(c, false);
    while (sent < total || got < total) {
        bool moved = false;
        int n;

        if (sent < total && (n = libvchan_buffer_space(c)) > 0) {
            size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf);
            if (len > total - sent) {
                len = (size_t)(total - sent);
            }
            for (size_t i = 0; i < len; i++) {
                buf[i] = pattern(sent + i, out_dir);
            }
            n = libvchan_write(c, buf, len);
            CHECK(n == (int)len);
            if (n <= 0) {
                return;
            }
            sent += (uint64_t)n;
            moved = true;
        }
        if (got < total && libvchan_data_ready(c) > 0) {
            n = libvchan_read(c, buf, sizeof(buf));
            CHECK(n > 0);
            if (n <= 0) {
                return;
            }
            for (int i = 0; i < n; i++) {
                if (buf[i] != pattern(got + (uint64_t)i, !out_dir)) {
                    fprintf(stderr, "qv-test %s: byte %llu differs\n", role,
                            (unsigned long long)(got + (uint64_t)i));
                    failures++;
                    return;
                }
            }
            got += (uint64_t)n;
            moved = true;
        }
        if (moved) {
            last = now();
            continue;
        }
        if (libvchan_is_open(c) != VCHAN_CONNECTED) {
            fprintf(stderr, "qv-test %s: the peer went away: sent %llu, received %llu\n", role,
                    (unsigned long long)sent, (unsigned long long)got);
            failures++;
            return;
        }
        if (now() - last > 15) {
            fprintf(stderr, "qv-test %s: no progress for 15 s\n", role);
            failures++;
            return;
        }
        await_event(c, 1000);
    }
    /* Both complete: our close leaves the peer what it has not read yet. */
    printf("qv-test %s: %llu bytes each way in %.2f s\n", role, (unsigned long long)total,
           now() - t0);
}

int main(int argc, char **argv)
{
    libvchan_t *c;
    bool server;
    int domain, port;
    const char *what;

    if (argc != 5 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
        fprintf(stderr, "usage: qv-test server|client DOMAIN PORT BYTES|death|stream\n");
        return 2;
    }
    role = argv[1];
    server = strcmp(role, "server") == 0;
    domain = atoi(argv[2]);
    port = atoi(argv[3]);
    what = argv[4];

    if (server) {
        c = libvchan_server_init(domain, port, 65536, 65536);
        if (!c) {
            fprintf(stderr, "qv-test server: server_init failed: %s\n", strerror(errno));
            return 1;
        }
        CHECK(libvchan_is_open(c) == VCHAN_WAITING);
        fprintf(stderr, "qv-test server: waiting for domain %d on port %d\n", domain, port);
        /* qrexec-daemon: the server is blocking; its first wait lasts until the client came. */
        CHECK(libvchan_wait(c) == 0);
        CHECK(libvchan_is_open(c) == VCHAN_CONNECTED);
    } else {
        EVTCHN watch = -1;
        char b;
        int rc;

        c = libvchan_client_init_async(domain, port, &watch);
        if (!c) {
            fprintf(stderr, "qv-test client: client_init_async failed: %s\n", strerror(errno));
            return 1;
        }
        CHECK(watch >= 0);
        double t0 = now();

        for (int i = 0;; i++) {
            struct pollfd p = {.fd = watch, .events = POLLIN};

            if (i == 0 && libvchan_is_open(c) == VCHAN_WAITING) {
                errno = 0;
                CHECK(libvchan_read(c, &b, 1) == -1 && errno == EAGAIN);
            }
            (void)poll(&p, 1, 1000);
            rc = libvchan_client_init_async_finish(c, true);
            if (rc != 1) {
                break;
            }
            if (now() - t0 > 60) { /* the watch is readable every few ms while we wait */
                fprintf(stderr, "qv-test client: no server after 60 s\n");
                return 1;
            }
        }
        CHECK(rc == 0);
        if (rc != 0) {
            return 1;
        }
        CHECK(libvchan_is_open(c) == VCHAN_CONNECTED);
    }

    if (strcmp(what, "stream") == 0 && !server) {
        uint8_t buf[4096];

        memset(buf, 's', sizeof(buf));
        printf("qv-test client: streaming\n");
        fflush(stdout);
        while (libvchan_write(c, buf, sizeof(buf)) > 0) {
        }
        fprintf(stderr, "qv-test client: write failed: %s\n", strerror(errno));
        return 1;
    } else if (strcmp(what, "death") == 0 && server) {
        uint8_t buf[4096];
        unsigned long long got = 0;
        double t0 = now();
        int n;

        /* Blocking reads until the peer is gone: then -1, and is_open says so. */
        while ((n = libvchan_read(c, buf, sizeof(buf))) > 0) {
            got += (unsigned long long)n;
        }
        CHECK(n == -1);
        CHECK(libvchan_is_open(c) == VCHAN_DISCONNECTED);
        printf("qv-test server: the client died after %llu bytes; read -1 (%s), is_open %d, "
               "%.1f s after the first byte\n",
               got, strerror(errno), libvchan_is_open(c), now() - t0);
        CHECK(got > 0);
    } else {
        char *end;
        unsigned long long total = strtoull(what, &end, 0);

        if (*end || !total) {
            fprintf(stderr, "qv-test: BYTES, death (server) or stream (client), not '%s'\n", what);
            return 2;
        }
        exchange(c, total);
    }
    libvchan_close(c);
    if (failures) {
        fprintf(stderr, "qv-test %s: %d check(s) failed\n", role, failures);
        return 1;
    }
    return 0;
}
