/* SPDX-License-Identifier: ISC */
/*
 * A libxenvchan program, one side of a channel: built against Xen's
 * <libxenvchan.h> and linked against Xen's libxenvchan.so.4.17, then run
 * with vchan-conduit's drop-in (tests/integration/compat.sh). Also built
 * against our header (XV_OUR_HEADER) to prove it source-compatible.
 *
 *   xv-test server|client DOMAIN PATH conventions
 *   xv-test server|client DOMAIN PATH transfer BYTES RING nonblocking|blocking
 *
 * conventions: every function and return value, blocking and not, with the
 * in-page rings (1 KiB read, 2 KiB write on the server). transfer: BYTES
 * each way, byte-exact, over rings of RING bytes (0: in-page). victim:
 * blocking I/O against a hostile peer until a call gives -1; prints its
 * errno and exits 0 when it is EPROTO or EPIPE. Exit 0 when every check
 * held; each failure is printed.
 *
 *   xv-test server|client DOMAIN PATH victim
 *   xv-test server|client DOMAIN PATH drain: the server writes what fits and
 *   waits until the client has taken it, the client waits for the close.
 *   xv-test server|client DOMAIN PATH early: the client writes at once; the
 *   server waits for it on is_open, then select()s before reading.
 *   xv-test server DOMAIN PATH orders: the ring orders server_init picks.
 *   xv-test server DOMAIN PATH unpublish: server_init, close, then a client
 *   of the same path (DOMAIN and the path's server in one domain) must fail.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <libxenvchan.h>

#if defined(XV_OUR_HEADER) != defined(VCHAN_COMPAT_LIBXENVCHAN_H)
#error "built against the wrong libxenvchan.h"
#endif

_Static_assert(sizeof(struct libxenvchan) == 88, "4.17 layout");
_Static_assert(offsetof(struct libxenvchan, ring) == 8, "ring");
_Static_assert(offsetof(struct libxenvchan, event) == 16, "event");
_Static_assert(offsetof(struct libxenvchan, event_port) == 24, "event_port");
_Static_assert(offsetof(struct libxenvchan, read) == 32, "read");
_Static_assert(offsetof(struct libxenvchan, write) == 56, "write");
_Static_assert(offsetof(struct libxenvchan, xs_path) == 80, "xs_path");

static const char *role = "?";
static int failures;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "xv-test %s: line %d: check failed: %s (errno %s)\n", role, \
                    __LINE__, #cond, strerror(errno));                                  \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

#define EXPECT(expr, want)                                                                      \
    do {                                                                                        \
        long got_ = (long)(expr);                                                               \
        if (got_ != (long)(want)) {                                                             \
            fprintf(stderr, "xv-test %s: line %d: %s gave %ld, expected %ld (errno %s)\n", role, \
                    __LINE__, #expr, got_, (long)(want), strerror(errno));                      \
            failures++;                                                                         \
        }                                                                                       \
    } while (0)

/* Block in select() on the channel's descriptor, then consume the event. */
static void await_event(struct libxenvchan *c)
{
    int fd = libxenvchan_fd_for_select(c);
    fd_set rfds;

    CHECK(fd >= 0);
    FD_ZERO(&rfds);
    FD_SET(fd, &rfds);
    CHECK(select(fd + 1, &rfds, NULL, NULL, NULL) == 1);
    EXPECT(libxenvchan_wait(c), 0);
}

/* The stream's bytes: a function of the position and the direction. */
static uint8_t pattern(uint64_t pos, int dir)
{
    uint64_t x = (pos + 1) * 0x9e3779b97f4a7c15ull + (uint64_t)dir * 0x5851f42d4c957f2dull;
    return (uint8_t)(x >> 56);
}

static void fill(uint8_t *buf, size_t len, uint64_t pos, int dir)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = pattern(pos + i, dir);
    }
}

static size_t mismatch(const uint8_t *buf, size_t len, uint64_t pos, int dir)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != pattern(pos + i, dir)) {
            return i + 1;
        }
    }
    return 0;
}

/* Read exactly len bytes with blocking read() (short reads allowed). */
static void read_all(struct libxenvchan *c, uint8_t *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        int n = libxenvchan_read(c, buf + got, len - got);
        if (n <= 0) {
            EXPECT(n, 1);
            return;
        }
        got += (size_t)n;
    }
}

/* ---------------------------------------------------------- conventions */

static void server_conventions(struct libxenvchan *c)
{
    uint8_t buf[4096], big[8192];
    const uint8_t *page = (const uint8_t *)c->ring;

    /* In-page rings: read 1 KiB at 1024, write 2 KiB at 2048. */
    CHECK(c->is_server);
    EXPECT(c->read.order, 10);
    EXPECT(c->write.order, 11);
    EXPECT(c->ring->left_order, 10);
    EXPECT(c->ring->right_order, 11);
    CHECK((const uint8_t *)c->read.buffer == page + 1024);
    CHECK((const uint8_t *)c->write.buffer == page + 2048);
    CHECK(c->read.shr == &c->ring->left && c->write.shr == &c->ring->right);
    EXPECT(c->ring->srv_live, 1);

    /* Before the client: waiting; non-blocking I/O gives 0. */
    c->blocking = 0;
    EXPECT(libxenvchan_is_open(c), 2);
    EXPECT(libxenvchan_read(c, buf, 10), 0);
    EXPECT(libxenvchan_recv(c, buf, 10), 0);
    EXPECT(libxenvchan_data_ready(c), 0);
    EXPECT(libxenvchan_buffer_space(c), 2048);
    while (libxenvchan_is_open(c) == 2) {
        await_event(c);
    }
    EXPECT(libxenvchan_is_open(c), 1);

    /*
     * The client sends "hello" (5 bytes), then reads nothing until we have
     * consumed it: the checks of a full ring below cannot race with it.
     */
    while (libxenvchan_data_ready(c) < 5) {
        await_event(c);
    }

    /* 1: non-blocking writes: what fits, then 0; sends larger than the ring. */
    EXPECT(libxenvchan_buffer_space(c), 2048);
    EXPECT(libxenvchan_send(c, big, 4096), 0);
    c->blocking = 1;
    EXPECT(libxenvchan_send(c, big, 4096), -1);
    c->blocking = 0;
    fill(big, 3000, 0, 1);
    EXPECT(libxenvchan_write(c, big, 3000), 2048);
    EXPECT(libxenvchan_buffer_space(c), 0);
    EXPECT(libxenvchan_write(c, big + 2048, 952), 0);
    EXPECT(libxenvchan_send(c, big + 2048, 1), 0);

    /* 2: recv all or nothing; consuming "hello" lets the client read. */
    EXPECT(libxenvchan_data_ready(c), 5);
    EXPECT(libxenvchan_recv(c, buf, 6), 0); /* not all there: nothing */
    EXPECT(libxenvchan_data_ready(c), 5);
    EXPECT(libxenvchan_recv(c, buf, 5), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    EXPECT(libxenvchan_read(c, buf, 10), 0); /* non-blocking, nothing ready */
    EXPECT(libxenvchan_recv(c, big, 2048), 0); /* larger than the 1 KiB ring: never, 0 */
    c->blocking = 1;
    errno = 0;
    EXPECT(libxenvchan_recv(c, big, 2048), -1); /* blocking: -1 at once */
    c->blocking = 0;

    /* Blocking write: all of it, waiting for the client to read. */
    c->blocking = 1;
    EXPECT(libxenvchan_write(c, big + 2048, 952), 952);
    /* Blocking send of the whole ring. */
    fill(big, 2048, 3000, 1);
    EXPECT(libxenvchan_send(c, big, 2048), 2048);

    /* 3: blocking recv and read of the client's 1 KiB + 600. */
    EXPECT(libxenvchan_recv(c, buf, 1024), 1024);
    EXPECT(mismatch(buf, 1024, 0, 2), 0);
    read_all(c, buf, 600);
    EXPECT(mismatch(buf, 600, 1024, 2), 0);

    /* 4: the client writes 10 bytes and closes: they are still read, then -1. */
    while (libxenvchan_is_open(c) != 0) {
        await_event(c);
    }
    EXPECT(libxenvchan_is_open(c), 0);
    c->blocking = 0;
    EXPECT(libxenvchan_data_ready(c), 10);
    EXPECT(libxenvchan_recv(c, buf, 11), -1); /* closed, not all there */
    EXPECT(libxenvchan_read(c, buf, 4), 4);
    EXPECT(libxenvchan_recv(c, buf + 4, 6), 6);
    CHECK(memcmp(buf, "0123456789", 10) == 0);
    EXPECT(libxenvchan_read(c, buf, 10), -1);
    EXPECT(libxenvchan_recv(c, buf, 1), -1);
    EXPECT(libxenvchan_write(c, buf, 1), -1);
    EXPECT(libxenvchan_send(c, buf, 1), -1);
    c->blocking = 1;
    EXPECT(libxenvchan_read(c, buf, 10), -1);
    EXPECT(libxenvchan_recv(c, buf, 1), -1);
    EXPECT(libxenvchan_write(c, buf, 1), -1);
    EXPECT(libxenvchan_send(c, buf, 1), -1);
    /* A persistent server says open whatever the client did. */
    c->server_persist = 1;
    EXPECT(libxenvchan_is_open(c), 1);
    c->server_persist = 0;
    EXPECT(libxenvchan_is_open(c), 0);
}

static void client_conventions(struct libxenvchan *c)
{
    uint8_t buf[4096];
    int n;

    CHECK(!c->is_server);
    EXPECT(c->read.order, 11);
    EXPECT(c->write.order, 10);
    CHECK(c->read.shr == &c->ring->right && c->write.shr == &c->ring->left);
    EXPECT(libxenvchan_is_open(c), 1);
    EXPECT(c->ring->cli_live, 1);

    /* 1: "hello", then wait until the server has filled our ring and consumed it. */
    c->blocking = 1;
    EXPECT(libxenvchan_send(c, "hello", 5), 5);
    while (libxenvchan_data_ready(c) < 2048 || libxenvchan_buffer_space(c) < 1024) {
        await_event(c);
    }
    EXPECT(libxenvchan_data_ready(c), 2048);

    /* 2: read the server's 3000 + 2048 bytes: 2048 are there, wait for the rest. */
    read_all(c, buf, 2048);
    EXPECT(mismatch(buf, 2048, 0, 1), 0);
    read_all(c, buf, 952);
    EXPECT(mismatch(buf, 952, 2048, 1), 0);
    EXPECT(libxenvchan_recv(c, buf, 2048), 2048);
    EXPECT(mismatch(buf, 2048, 3000, 1), 0);

    /* 3: a whole-ring send, then a write larger than the ring (blocking: all). */
    fill(buf, 1624, 0, 2);
    EXPECT(libxenvchan_send(c, buf, 1024), 1024);
    EXPECT(libxenvchan_write(c, buf + 1024, 600), 600);

    /* 4: 10 bytes, then close (the server reads exactly 600 before them). */
    n = libxenvchan_write(c, "0123456789", 10);
    EXPECT(n, 10);
}

/* ------------------------------------------------------------- transfer */

/* Both ways at once, non-blocking, in a select() loop. */
static void transfer_nonblocking(struct libxenvchan *c, size_t total, int out_dir, int in_dir)
{
    uint8_t chunk[65536];
    uint64_t sent = 0, got = 0;

    c->blocking = 0;
    while (sent < total || got < total) {
        int progress = 0;

        if (sent < total) {
            size_t len = total - sent < sizeof(chunk) ? (size_t)(total - sent) : sizeof(chunk);
            int n;
            fill(chunk, len, sent, out_dir);
            n = libxenvchan_write(c, chunk, len);
            if (n < 0) {
                EXPECT(n, 0);
                return;
            }
            sent += (uint64_t)n;
            progress |= n > 0;
        }
        if (got < total) {
            size_t len = total - got < sizeof(chunk) ? (size_t)(total - got) : sizeof(chunk);
            int n = libxenvchan_read(c, chunk, len);
            if (n < 0) {
                EXPECT(n, 0);
                return;
            }
            if (n > 0 && mismatch(chunk, (size_t)n, got, in_dir)) {
                fprintf(stderr, "xv-test %s: byte %llu differs\n", role,
                        (unsigned long long)(got + mismatch(chunk, (size_t)n, got, in_dir) - 1));
                failures++;
                return;
            }
            got += (uint64_t)n;
            progress |= n > 0;
        }
        if (!progress) {
            await_event(c);
        }
    }
}

/* One way at a time, blocking: write()/read() one way, send()/recv() back. */
static void transfer_blocking(struct libxenvchan *c, size_t total, bool first, int out_dir,
                              int in_dir)
{
    size_t ring = (size_t)1 << (c->write.order < c->read.order ? c->write.order : c->read.order);
    size_t pkt = ring < 4096 ? ring : 4096;
    uint8_t *chunk = malloc(65536 > ring ? 65536 : ring);
    uint64_t pos;

    c->blocking = 1;
    CHECK(chunk != NULL);
    if (!chunk) {
        return;
    }
    for (int step = 0; step < 2; step++) {
        bool writing = (step == 0) == first;
        for (pos = 0; pos < total;) {
            size_t len = total - pos < 65536 ? (size_t)(total - pos) : 65536;
            int n;
            if (step == 1) {
                len = len < pkt ? len : pkt; /* packets: whole, at most one ring */
            }
            if (writing) {
                fill(chunk, len, pos, out_dir);
                n = step == 0 ? libxenvchan_write(c, chunk, len) : libxenvchan_send(c, chunk, len);
                EXPECT(n, len);
            } else {
                n = step == 0 ? libxenvchan_read(c, chunk, len) : libxenvchan_recv(c, chunk, len);
                if (step == 1) {
                    EXPECT(n, len);
                }
                if (n > 0 && mismatch(chunk, (size_t)n, pos, in_dir)) {
                    fprintf(stderr, "xv-test %s: byte %llu differs\n", role,
                            (unsigned long long)pos);
                    failures++;
                    n = -1;
                }
            }
            if (n <= 0) {
                CHECK(n > 0);
                free(chunk);
                return;
            }
            pos += (uint64_t)n;
        }
    }
    free(chunk);
}

/* One side of the channel, or NULL (reported). */
static struct libxenvchan *open_side(bool server, int domain, const char *path, size_t read_min,
                                     size_t write_min)
{
    struct libxenvchan *c = server ? libxenvchan_server_init(NULL, domain, path, read_min, write_min)
                                   : libxenvchan_client_init(NULL, domain, path);

    if (!c) {
        fprintf(stderr, "xv-test %s: init failed: %s\n", role, strerror(errno));
    }
    return c;
}

int main(int argc, char **argv)
{
    struct libxenvchan *c;
    bool server;
    int domain;

    if (argc < 5 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
        fprintf(stderr, "usage: xv-test server|client DOMAIN PATH conventions\n"
                        "       xv-test server|client DOMAIN PATH transfer BYTES RING "
                        "nonblocking|blocking\n");
        return 2;
    }
    role = argv[1];
    server = strcmp(role, "server") == 0;
    domain = atoi(argv[2]);

    if (strcmp(argv[4], "conventions") == 0) {
        if (!(c = open_side(server, domain, argv[3], 0, 0))) {
            return 1;
        }
        if (server) {
            CHECK(c->xs_path && strcmp(c->xs_path, argv[3]) == 0);
            server_conventions(c);
        } else {
            client_conventions(c);
        }
        libxenvchan_close(c);
    } else if (strcmp(argv[4], "orders") == 0 && server) {
        /* read_min, write_min -> read order, write order (libxenvchan's rules). */
        static const struct {
            size_t rd, wr;
            int ro, wo;
        } cases[] = {
            {0, 0, 10, 11},         {1024, 2048, 10, 11},   {2048, 1024, 11, 10},
            {1025, 1024, 11, 10},   {2048, 2048, 11, 12},   {100, 5000, 11, 13},
            {4096, 100, 12, 11},    {4097, 4096, 13, 12},   {65536, 65536, 16, 16},
            {1 << 20, 1, 20, 11},   {3000, 3000, 12, 12},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            c = libxenvchan_server_init(NULL, domain, argv[3], cases[i].rd, cases[i].wr);
            CHECK(c != NULL);
            if (!c) {
                continue;
            }
            EXPECT(c->read.order, cases[i].ro);
            EXPECT(c->write.order, cases[i].wo);
            EXPECT(c->ring->left_order, cases[i].ro);
            EXPECT(c->ring->right_order, cases[i].wo);
            libxenvchan_close(c);
        }
        errno = 0;
        CHECK(libxenvchan_server_init(NULL, domain, argv[3], (1 << 20) + 1, 0) == NULL);
        EXPECT(errno, EINVAL);
    } else if (strcmp(argv[4], "unpublish") == 0 && server) {
        struct libxenvchan *cli;

        c = libxenvchan_server_init(NULL, domain, argv[3], 0, 0);
        CHECK(c != NULL);
        libxenvchan_close(c);
        cli = libxenvchan_client_init(NULL, domain, argv[3]);
        CHECK(cli == NULL);
        if (cli) {
            libxenvchan_close(cli);
        }
    } else if (strcmp(argv[4], "drain") == 0) {
        /*
         * vchan-socket-proxy's end of input: write what fits, then wait for
         * the peer to take it while the peer waits for our close. The
         * wait must return, whether the peer took the data before it (the
         * first round) or after (the second).
         */
        uint8_t buf[200];

        if (!(c = open_side(server, domain, argv[3], 0, 0))) {
            return 1;
        }
        if (server) {
            while (libxenvchan_is_open(c) == 2) {
                EXPECT(libxenvchan_wait(c), 0);
            }
            fill(buf, sizeof(buf), 0, 0);
            alarm(10); /* a wait that never returns fails here, not in the harness */
            for (int round = 0; round < 2; round++) {
                EXPECT(libxenvchan_write(c, buf + round * 100, 100), 100);
                if (round == 0) {
                    usleep(200 * 1000);
                }
                do { /* at least once, as the proxy does */
                    EXPECT(libxenvchan_wait(c), 0);
                } while (libxenvchan_buffer_space(c) != 2048);
            }
            alarm(0);
        } else {
            c->blocking = 1;
            read_all(c, buf, sizeof(buf));
            CHECK(mismatch(buf, sizeof(buf), 0, 0) == 0);
            while (libxenvchan_is_open(c)) {
                EXPECT(libxenvchan_wait(c), 0);
            }
        }
        libxenvchan_close(c);
    } else if (strcmp(argv[4], "early") == 0) {
        /*
         * vchan-socket-proxy serving: wait in a loop until the client is
         * there, then select() before reading. The client writes at once
         * after connecting: the descriptor must then be readable (its data
         * may have come with the connect's event), never a sleep beside a
         * ring that holds data.
         */
        uint8_t buf[100];

        if (!(c = open_side(server, domain, argv[3], 0, 0))) {
            return 1;
        }
        fill(buf, sizeof(buf), 0, 0);
        if (server) {
            int fd = libxenvchan_fd_for_select(c);
            struct timeval tv = {.tv_sec = 10};
            fd_set rfds;

            while (libxenvchan_is_open(c) != 1) {
                EXPECT(libxenvchan_wait(c), 0);
            }
            FD_ZERO(&rfds);
            FD_SET(fd, &rfds);
            EXPECT(select(fd + 1, &rfds, NULL, NULL, &tv), 1);
            EXPECT(libxenvchan_wait(c), 0);
            c->blocking = 1;
            read_all(c, buf, sizeof(buf));
            CHECK(mismatch(buf, sizeof(buf), 0, 0) == 0);
        } else {
            EXPECT(libxenvchan_write(c, buf, sizeof(buf)), (int)sizeof(buf));
            while (libxenvchan_is_open(c)) {
                EXPECT(libxenvchan_wait(c), 0);
            }
        }
        libxenvchan_close(c);
    } else if (strcmp(argv[4], "victim") == 0) {
        uint8_t buf[4096];
        int n = 0, calls = 0;

        if (!(c = open_side(server, domain, argv[3], 4096, 4096))) {
            return 1;
        }
        c->blocking = 1;
        memset(buf, 'v', sizeof(buf));
        while (n >= 0) {
            n = calls % 2 ? libxenvchan_read(c, buf, sizeof(buf))
                          : libxenvchan_write(c, buf, 1 + (size_t)calls % sizeof(buf));
            calls++;
        }
        printf("xv-test %s: -1 after %d calls: %s\n", role, calls,
               errno == EPROTO ? "EPROTO" : errno == EPIPE ? "EPIPE" : strerror(errno));
        CHECK(errno == EPROTO || errno == EPIPE);
        if (errno == EPROTO) {
            EXPECT(libxenvchan_is_open(c), 0); /* broken reads as closed */
            EXPECT(libxenvchan_read(c, buf, 1), -1);
        }
        libxenvchan_close(c);
    } else if (strcmp(argv[4], "transfer") == 0 && argc == 8) {
        size_t total = strtoul(argv[5], NULL, 0), ring = strtoul(argv[6], NULL, 0);
        bool nonblocking = strcmp(argv[7], "nonblocking") == 0;

        if (!(c = open_side(server, domain, argv[3], ring, ring))) {
            return 1;
        }
        if (server) {
            c->blocking = 1;
            while (libxenvchan_is_open(c) == 2) {
                EXPECT(libxenvchan_wait(c), 0);
            }
        }
        if (nonblocking) {
            transfer_nonblocking(c, total, server ? 1 : 2, server ? 2 : 1);
        } else {
            transfer_blocking(c, total, server, server ? 1 : 2, server ? 2 : 1);
        }
        /*
         * Who closes first: the server after a non-blocking transfer, the
         * client after a blocking one. The other's blocking read waits for
         * it, then gives -1.
         */
        if (server == nonblocking) {
            libxenvchan_close(c);
        } else {
            c->blocking = 1;
            EXPECT(libxenvchan_read(c, &(char){0}, 1), -1);
            EXPECT(libxenvchan_is_open(c), 0);
            libxenvchan_close(c);
        }
    } else {
        fprintf(stderr, "xv-test: unknown test '%s'\n", argv[4]);
        return 2;
    }
    if (failures) {
        fprintf(stderr, "xv-test %s: %d check(s) failed\n", role, failures);
        return 1;
    }
    printf("xv-test %s: ok\n", role);
    return 0;
}
