/* SPDX-License-Identifier: ISC */
/*
 * test_qubes: Qubes OS's libvchan API (libvchan-conduit.so.0, through its
 * header include/vchan-conduit/libvchan.h only) on the local platform,
 * between this process and forked peers that play another domain
 * (VCHAN_DOMID). Every semantic Qubes components rely on: both roles,
 * blocking and not, the async client, is_open's three values,
 * data_ready/buffer_space, send/recv packets, wait, the server's entry
 * removed at the first wait, a peer dying mid-stream (a disconnect, not
 * a hang), loopback and reserved domain ids refused.
 *
 * The parent is domain 0, each child domain 5. A child reports through
 * its exit status (0: every check held; else the line that failed).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw */
#endif

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "vchan.h" /* vchan_list_channels: is the server's entry there? */
#include "vchan-conduit/libvchan.h"
#include "unit.h"

#define PEER 5
#define STREAM (256u * 1024u) /* bytes moved by the stream tests */

static char base[64];
static char dir[128];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void env_setup(void)
{
    snprintf(base, sizeof(base), "/tmp/vchan-qubes-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(dir, sizeof(dir), "%s/d", base);
    setenv("VCHAN_DIR", dir, 1);
    setenv("VCHAN_PLATFORM", "local", 1);
    unsetenv("VCHAN_DOMID");
}

static void env_teardown(void)
{
    nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    unsetenv("VCHAN_DIR");
    unsetenv("VCHAN_PLATFORM");
}

/* In a child: fail with the line number as the exit status. */
#define CHILD_CHECK(cond)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "child: %s:%d: %s (errno %d)\n", __FILE__, __LINE__, #cond,     \
                    errno);                                                                 \
            _exit(__LINE__ % 250 + 1);                                                      \
        }                                                                                   \
    } while (0)

/* Run fn(arg) in a child that is domain PEER; its pid. */
static pid_t spawn(void (*fn)(int), int arg)
{
    pid_t pid = fork();

    if (pid == 0) {
        setenv("VCHAN_DOMID", "5", 1);
        alarm(30);
        fn(arg);
        _exit(0);
    }
    CU_ASSERT_FATAL(pid > 0);
    return pid;
}

/* The child's exit status (0: all its checks held); -1 if it died of a signal. */
static int reap(pid_t pid)
{
    int st = 0;

    if (waitpid(pid, &st, 0) != pid) {
        return -2;
    }
    if (WIFSIGNALED(st)) {
        return -WTERMSIG(st);
    }
    return WEXITSTATUS(st);
}

/* How many channels of server `server` the local rendezvous shows published. */
static int count_fn(void *ctx, const struct vchan_channel *ch)
{
    if (ch->published) {
        ++*(int *)ctx;
    }
    return 0;
}

static int published(int server)
{
    int n = 0;

    if (vchan_list_channels("local", server, count_fn, &n, NULL, 0) < 0) {
        return -1;
    }
    return n;
}

/* Blocking: all of len, or -1. */
static int read_all(libvchan_t *c, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        int n = libvchan_read(c, (char *)buf + got, len - got);
        if (n <= 0) {
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------ refused domids */

static void test_refused_domains(void)
{
    static const int bad[] = {-1, 32752, 32767, 0x7ff4, 65535, 1 << 20};
    int fd = -1;
    size_t i;

    env_setup();
    for (i = 0; i < UNIT_ARRAY_LEN(bad); i++) {
        errno = 0;
        CU_ASSERT_PTR_NULL(libvchan_server_init(bad[i], 1, 0, 0));
        CU_ASSERT_EQUAL(errno, EINVAL);
        errno = 0;
        CU_ASSERT_PTR_NULL(libvchan_client_init(bad[i], 1));
        CU_ASSERT_EQUAL(errno, EINVAL);
        CU_ASSERT_PTR_NULL(libvchan_client_init_async(bad[i], 1, &fd));
    }
    /* Loopback: we are domain 0 (no VCHAN_DOMID). */
    errno = 0;
    CU_ASSERT_PTR_NULL(libvchan_server_init(0, 1, 0, 0));
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_PTR_NULL(libvchan_client_init(0, 1));
    CU_ASSERT_EQUAL(errno, EINVAL);
    setenv("VCHAN_DOMID", "7", 1);
    CU_ASSERT_PTR_NULL(libvchan_server_init(7, 1, 0, 0));
    CU_ASSERT_PTR_NULL(libvchan_client_init_async(7, 1, &fd));
    unsetenv("VCHAN_DOMID");
    /* Negative ports, a missing watch fd, rings over the limit. */
    CU_ASSERT_PTR_NULL(libvchan_server_init(PEER, -1, 0, 0));
    CU_ASSERT_PTR_NULL(libvchan_client_init_async(PEER, -5, &fd));
    CU_ASSERT_PTR_NULL(libvchan_client_init_async(PEER, 1, NULL));
    CU_ASSERT_PTR_NULL(libvchan_server_init(PEER, 1, (size_t)1 << 30, 0));
    CU_ASSERT_EQUAL(published(0), 0);
    /* NULL handles: errors, never a crash. */
    CU_ASSERT_EQUAL(libvchan_is_open(NULL), VCHAN_DISCONNECTED);
    CU_ASSERT_EQUAL(libvchan_read(NULL, &fd, 1), -1);
    CU_ASSERT_EQUAL(libvchan_write(NULL, &fd, 1), -1);
    CU_ASSERT_EQUAL(libvchan_wait(NULL), -1);
    CU_ASSERT_EQUAL(libvchan_client_init_async_finish(NULL, true), -1);
    CU_ASSERT_EQUAL(libvchan_data_ready(NULL), 0);
    libvchan_set_blocking(NULL, true);
    libvchan_close(NULL);
    env_teardown();
}

/* --------------------------------------- blocking server, stream, wait */

/* Client in domain 5: read STREAM bytes, check them, answer with a 4-byte packet. */
static void stream_client(int port)
{
    static uint8_t buf[STREAM];
    libvchan_t *c = libvchan_client_init(0, port);
    uint32_t ack = 0xac4ac4ac;

    CHILD_CHECK(c != NULL);
    CHILD_CHECK(libvchan_is_open(c) == VCHAN_CONNECTED);
    CHILD_CHECK(libvchan_fd_for_select(c) >= 0);
    CHILD_CHECK(read_all(c, buf, sizeof(buf)) == 0);
    CHILD_CHECK(unit_pattern_check(buf, sizeof(buf), 1, 0) == sizeof(buf));
    CHILD_CHECK(libvchan_send(c, &ack, sizeof(ack)) == (int)sizeof(ack));
    /* Stay until the server has read it, so the close is seen after the data. */
    CHILD_CHECK(libvchan_recv(c, &ack, 1) == 1);
    libvchan_close(c);
}

static void test_server_blocking_stream(void)
{
    static uint8_t buf[STREAM];
    libvchan_t *s;
    uint32_t ack = 0;
    pid_t pid;
    char one = 'x';

    env_setup();
    s = libvchan_server_init(PEER, 111, 4096, 4096);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(libvchan_is_open(s), VCHAN_WAITING);
    CU_ASSERT_EQUAL(published(0), 1); /* data/vchan/5/111 */
    CU_ASSERT(libvchan_fd_for_select(s) >= 0);
    CU_ASSERT_EQUAL(libvchan_data_ready(s), 0);

    pid = spawn(stream_client, 111);
    /* The first wait lasts until the client is there, then the entry is gone. */
    CU_ASSERT_EQUAL(libvchan_wait(s), 0);
    CU_ASSERT_EQUAL(libvchan_is_open(s), VCHAN_CONNECTED);
    CU_ASSERT_EQUAL(published(0), 0);
    CU_ASSERT_EQUAL(libvchan_buffer_space(s), 4096);

    /* Blocking (the server's default): the whole STREAM in one call. */
    unit_pattern_fill(buf, sizeof(buf), 1, 0);
    CU_ASSERT_EQUAL(libvchan_write(s, buf, sizeof(buf)), (int)sizeof(buf));
    CU_ASSERT_EQUAL(libvchan_recv(s, &ack, sizeof(ack)), (int)sizeof(ack));
    CU_ASSERT_EQUAL(ack, 0xac4ac4ac);
    CU_ASSERT_EQUAL(libvchan_send(s, &one, 1), 1);
    CU_ASSERT_EQUAL(reap(pid), 0);
    /* The client closed: disconnected, reads end with -1. */
    while (libvchan_is_open(s) != VCHAN_DISCONNECTED) {
        CU_ASSERT_EQUAL_FATAL(libvchan_wait(s) >= -1, 1);
    }
    CU_ASSERT_EQUAL(libvchan_read(s, buf, 1), -1);
    CU_ASSERT_EQUAL(libvchan_write(s, buf, 1), -1);
    libvchan_close(s);
    env_teardown();
}

/* The entry also goes when the server closes with no client ever. */
static void test_close_removes_entry(void)
{
    libvchan_t *s;

    env_setup();
    s = libvchan_server_init(PEER, 112, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(published(0), 1);
    /* One port, one server: a second one is refused. */
    CU_ASSERT_PTR_NULL(libvchan_server_init(PEER, 112, 0, 0));
    libvchan_close(s);
    CU_ASSERT_EQUAL(published(0), 0);
    env_teardown();
}

/* ---------------------------------------- async client, packets, non-blocking */

/* Server in domain 5 for client 0, small in-page rings (1 KiB read, 2 KiB write). */
static void packet_server(int port)
{
    uint8_t pkt[16], reply[8];
    libvchan_t *s;

    /* Let the client find nothing for a while first. */
    usleep(100 * 1000);
    s = libvchan_server_init(0, port, 1024, 2048);
    CHILD_CHECK(s != NULL);
    while (libvchan_is_open(s) == VCHAN_WAITING) {
        CHILD_CHECK(libvchan_wait(s) == 0);
    }
    CHILD_CHECK(libvchan_is_open(s) == VCHAN_CONNECTED);
    CHILD_CHECK(libvchan_buffer_space(s) == 2048);
    unit_pattern_fill(pkt, sizeof(pkt), 2, 0);
    CHILD_CHECK(libvchan_send(s, pkt, sizeof(pkt)) == (int)sizeof(pkt));
    /* Larger than the ring: never fits (blocking: -1). */
    CHILD_CHECK(libvchan_send(s, pkt, 4096) == -1);
    CHILD_CHECK(libvchan_recv(s, reply, sizeof(reply)) == (int)sizeof(reply));
    CHILD_CHECK(unit_pattern_check(reply, sizeof(reply), 3, 0) == sizeof(reply));
    libvchan_close(s);
}

static void test_async_client_packets(void)
{
    uint8_t pkt[16], reply[8];
    struct pollfd pfd = {.events = POLLIN};
    libvchan_t *c;
    int rc = 1, rounds = 0;
    pid_t pid;

    env_setup();
    c = libvchan_client_init_async(PEER, 222, &pfd.fd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(pfd.fd >= 0);
    /* Not connected: waiting, and every I/O is -1 with EAGAIN. */
    CU_ASSERT_EQUAL(libvchan_is_open(c), VCHAN_WAITING);
    errno = 0;
    CU_ASSERT_EQUAL(libvchan_read(c, pkt, 1), -1);
    CU_ASSERT_EQUAL(errno, EAGAIN);
    errno = 0;
    CU_ASSERT_EQUAL(libvchan_write(c, pkt, 1), -1);
    CU_ASSERT_EQUAL(errno, EAGAIN);
    errno = 0;
    CU_ASSERT_EQUAL(libvchan_send(c, pkt, 1), -1);
    CU_ASSERT_EQUAL(errno, EAGAIN);
    errno = 0;
    CU_ASSERT_EQUAL(libvchan_recv(c, pkt, 1), -1);
    CU_ASSERT_EQUAL(errno, EAGAIN);
    errno = 0;
    CU_ASSERT_EQUAL(libvchan_fd_for_select(c), -1);
    CU_ASSERT_EQUAL(errno, EAGAIN);
    CU_ASSERT_EQUAL(libvchan_data_ready(c), 0);
    CU_ASSERT_EQUAL(libvchan_buffer_space(c), 0);
    CU_ASSERT_EQUAL(libvchan_wait(c), 0);
    libvchan_set_blocking(c, true); /* ignored, never an abort */
    /* No server yet: the watch fd fires and finish says "not yet". */
    CU_ASSERT_EQUAL(poll(&pfd, 1, 5000), 1);
    CU_ASSERT_EQUAL(libvchan_client_init_async_finish(c, false), 1);

    pid = spawn(packet_server, 222);
    while (rc == 1 && rounds++ < 2000) {
        CU_ASSERT_EQUAL_FATAL(poll(&pfd, 1, 5000), 1);
        rc = libvchan_client_init_async_finish(c, false);
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(rounds > 1); /* it did wait for the server */
    CU_ASSERT_EQUAL(libvchan_client_init_async_finish(c, false), 0); /* idempotent */
    CU_ASSERT_EQUAL(libvchan_is_open(c), VCHAN_CONNECTED);

    /* Non-blocking as asked: packets wait in poll(), not in recv. */
    for (;;) {
        int n = libvchan_recv(c, pkt, sizeof(pkt));
        CU_ASSERT_FATAL(n == 0 || n == (int)sizeof(pkt));
        if (n) {
            break;
        }
        pfd.fd = libvchan_fd_for_select(c);
        CU_ASSERT_FATAL(pfd.fd >= 0);
        CU_ASSERT_EQUAL_FATAL(poll(&pfd, 1, 5000), 1);
        CU_ASSERT_EQUAL(libvchan_wait(c), 0);
    }
    CU_ASSERT_EQUAL(unit_pattern_check(pkt, sizeof(pkt), 2, 0), sizeof(pkt));
    CU_ASSERT_EQUAL(libvchan_data_ready(c), 0);
    CU_ASSERT_EQUAL(libvchan_buffer_space(c), 1024);
    /* Non-blocking recv of more than is there: 0, nothing consumed. */
    CU_ASSERT_EQUAL(libvchan_recv(c, pkt, 4), 0);
    unit_pattern_fill(reply, sizeof(reply), 3, 0);
    libvchan_set_blocking(c, true);
    CU_ASSERT_EQUAL(libvchan_send(c, reply, sizeof(reply)), (int)sizeof(reply));
    CU_ASSERT_EQUAL(reap(pid), 0);
    libvchan_close(c);
    env_teardown();
}

/* Client in domain 5 that writes `n` bytes, no more. */
static void writer_client(int n)
{
    uint8_t buf[64];
    libvchan_t *c = libvchan_client_init(0, 333);

    CHILD_CHECK(c != NULL);
    unit_pattern_fill(buf, sizeof(buf), 4, 0);
    CHILD_CHECK(libvchan_write(c, buf, (size_t)n) == n);
    /* Hold the channel until the parent says it has looked. */
    CHILD_CHECK(libvchan_recv(c, buf, 1) == 1);
    libvchan_close(c);
}

static void test_nonblocking_server_counts(void)
{
    uint8_t buf[64];
    libvchan_t *s;
    pid_t pid;
    int spins = 0;

    env_setup();
    s = libvchan_server_init(PEER, 333, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    libvchan_set_blocking(s, false);
    /* Non-blocking before a client: nothing to read, 0. */
    CU_ASSERT_EQUAL(libvchan_read(s, buf, sizeof(buf)), 0);
    pid = spawn(writer_client, 40);
    CU_ASSERT_EQUAL(libvchan_wait(s), 0);
    CU_ASSERT_EQUAL(libvchan_is_open(s), VCHAN_CONNECTED);
    while (libvchan_data_ready(s) < 40 && spins++ < 500) {
        struct pollfd pfd = {.fd = libvchan_fd_for_select(s), .events = POLLIN};
        (void)poll(&pfd, 1, 20);
        (void)libvchan_wait(s);
    }
    CU_ASSERT_EQUAL(libvchan_data_ready(s), 40);
    /* recv is all or nothing: 41 is not there. */
    CU_ASSERT_EQUAL(libvchan_recv(s, buf, 41), 0);
    CU_ASSERT_EQUAL(libvchan_read(s, buf, 10), 10);
    CU_ASSERT_EQUAL(libvchan_data_ready(s), 30);
    CU_ASSERT_EQUAL(libvchan_recv(s, buf + 10, 30), 30);
    CU_ASSERT_EQUAL(unit_pattern_check(buf, 40, 4, 0), 40);
    CU_ASSERT_EQUAL(libvchan_data_ready(s), 0);
    CU_ASSERT_EQUAL(libvchan_read(s, buf, sizeof(buf)), 0); /* non-blocking, empty */
    CU_ASSERT_EQUAL(libvchan_send(s, buf, 1), 1);
    CU_ASSERT_EQUAL(reap(pid), 0);
    libvchan_close(s);
    env_teardown();
}

/* ------------------------------------------------------------ peer death */

/* Client in domain 5 that writes 10 bytes, then dies without closing. */
static void dying_client(int port)
{
    uint8_t buf[10];
    libvchan_t *c = libvchan_client_init(0, port);

    CHILD_CHECK(c != NULL);
    unit_pattern_fill(buf, sizeof(buf), 5, 0);
    CHILD_CHECK(libvchan_write(c, buf, sizeof(buf)) == (int)sizeof(buf));
    raise(SIGKILL);
}

/* Blocking reads on the survivor: the data, then -1, never a hang. */
static void test_peer_death_mid_stream(void)
{
    uint8_t buf[64];
    libvchan_t *s;
    pid_t pid;
    int n, got = 0;

    env_setup();
    s = libvchan_server_init(PEER, 444, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    pid = spawn(dying_client, 444);
    CU_ASSERT_EQUAL(libvchan_wait(s), 0);
    while ((n = libvchan_read(s, buf + got, sizeof(buf) - (size_t)got)) > 0) {
        got += n;
    }
    CU_ASSERT_EQUAL(n, -1);
    CU_ASSERT_EQUAL(got, 10);
    CU_ASSERT_EQUAL(unit_pattern_check(buf, 10, 5, 0), 10);
    CU_ASSERT_EQUAL(libvchan_is_open(s), VCHAN_DISCONNECTED);
    CU_ASSERT_EQUAL(libvchan_write(s, buf, 1), -1);
    CU_ASSERT_EQUAL(reap(pid), -SIGKILL);
    libvchan_close(s);
    env_teardown();
}

/* is_open alone (no wait, no I/O) sees a peer process that is gone. */
static void test_peer_death_is_open(void)
{
    uint8_t buf[10];
    libvchan_t *s;
    pid_t pid;

    env_setup();
    s = libvchan_server_init(PEER, 555, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    pid = spawn(dying_client, 555);
    CU_ASSERT_EQUAL(libvchan_wait(s), 0);
    CU_ASSERT_EQUAL(reap(pid), -SIGKILL);
    CU_ASSERT_EQUAL(libvchan_is_open(s), VCHAN_DISCONNECTED);
    /* What it wrote before dying is still there to read. */
    CU_ASSERT_EQUAL(libvchan_data_ready(s), 10);
    CU_ASSERT_EQUAL(libvchan_recv(s, buf, sizeof(buf)), (int)sizeof(buf));
    CU_ASSERT_EQUAL(libvchan_read(s, buf, 1), -1);
    libvchan_close(s);
    env_teardown();
}

/* A blocking client whose server dies while it waits in recv. */
static void dying_server(int port)
{
    libvchan_t *s = libvchan_server_init(0, port, 0, 0);

    CHILD_CHECK(s != NULL);
    CHILD_CHECK(libvchan_wait(s) == 0);
    raise(SIGKILL);
}

static void test_server_death_blocking_client(void)
{
    uint8_t buf[4];
    libvchan_t *c;
    pid_t pid;

    env_setup();
    pid = spawn(dying_server, 666);
    c = libvchan_client_init(PEER, 666);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(libvchan_recv(c, buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(libvchan_is_open(c), VCHAN_DISCONNECTED);
    CU_ASSERT_EQUAL(reap(pid), -SIGKILL);
    libvchan_close(c);
    env_teardown();
}

/* -------------------------------------------- the qrexec agent's pattern */

/*
 * qrexec-agent: server_init(0, 512, 4096, 4096), then
 * `while (!libvchan_is_open(c)) libvchan_wait(c);` (WAITING is true), then
 * blocking packets. The daemon: a blocking client_init.
 */
static void agent(int port)
{
    uint32_t hello = 0;
    libvchan_t *s = libvchan_server_init(0, port, 4096, 4096);

    CHILD_CHECK(s != NULL);
    while (!libvchan_is_open(s)) {
        libvchan_wait(s);
    }
    CHILD_CHECK(libvchan_recv(s, &hello, sizeof(hello)) == (int)sizeof(hello));
    CHILD_CHECK(hello == 0x5155424d);
    CHILD_CHECK(libvchan_send(s, &hello, sizeof(hello)) == (int)sizeof(hello));
    while (libvchan_is_open(s) == VCHAN_CONNECTED) {
        CHILD_CHECK(libvchan_wait(s) == 0 || libvchan_is_open(s) == VCHAN_DISCONNECTED);
    }
    libvchan_close(s);
}

static void test_qrexec_shape(void)
{
    uint32_t hello = 0x5155424d, back = 0;
    libvchan_t *c;
    pid_t pid;

    env_setup();
    pid = spawn(agent, 512);
    c = libvchan_client_init(PEER, 512);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(libvchan_send(c, &hello, sizeof(hello)), (int)sizeof(hello));
    CU_ASSERT_EQUAL(libvchan_recv(c, &back, sizeof(back)), (int)sizeof(back));
    CU_ASSERT_EQUAL(back, hello);
    libvchan_close(c);
    CU_ASSERT_EQUAL(reap(pid), 0);
    env_teardown();
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_refused_domains),
    UNIT_TEST(test_server_blocking_stream),
    UNIT_TEST(test_close_removes_entry),
    UNIT_TEST(test_async_client_packets),
    UNIT_TEST(test_nonblocking_server_counts),
    UNIT_TEST(test_peer_death_mid_stream),
    UNIT_TEST(test_peer_death_is_open),
    UNIT_TEST(test_server_death_blocking_client),
    UNIT_TEST(test_qrexec_shape),
};

UNIT_MAIN("qubes", tests)
