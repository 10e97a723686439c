/* SPDX-License-Identifier: ISC */
/*
 * fuzz_local_handshake: the local platform's rendezvous messages
 * (libvchan/platform/local.c), in both directions, through real sockets in a
 * private VCHAN_DIR.
 *
 * Byte 0, bit 0 picks the side under test:
 *
 * 0: our client against a hostile server. A thread here listens on the
 *    channel's socket, takes the client's hello (which must be well
 *    formed), and answers with the input: up to four chunks, each either a
 *    reply message built from the input (any field overridden) or raw
 *    bytes, each with a set of descriptors attached (right ones, an
 *    unsealed or wrongly sized or read-only memfd, blocking eventfds,
 *    pipes, sockets, too many), then closes, half-closes or keeps the
 *    connection. A chunk is sent only once the client has read the one
 *    before, so the client sees the same byte stream every run. The client
 *    (the platform's lookup with a timeout of 0: one try) must succeed
 *    only with a usable answer, then bind, map and unmap; or fail with
 *    EPROTO, EPERM, ETIMEDOUT or EIO and a message.
 *
 * 1: our server against a hostile client: the input is the hello (built or
 *    raw), then what the client sends once connected (notices, junk).
 *    A well-formed hello must be accepted with the three descriptors, any
 *    other refused or dropped, and a refused client must not take the
 *    channel (a good client is accepted after it). A notice may only make
 *    the server clear one byte of the control page when the client hangs
 *    up, and only a valid one.
 *
 * Both: no descriptor leaks (the count in /proc/self/fd is the same after
 * each input), no socket left in the directory.
 *
 * The message layouts are mirrored from platform_local.c (fake_local.h); if
 * they change, the structured inputs here lose their meaning (the raw ones
 * do not).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memfd_create, F_ADD_SEALS */
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "libvchan/core/barrier.h"
#include "fake_local.h"
#include "fuzz.h"
#include "libvchan/platform/hosted.h"
#include "libvchan/core/internal.h"

/* The local platform's messages (libvchan/platform/local.c) are in tests/unit/fake_local.h. */
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

#define PORT "fz"
#define MAX_CHUNKS 4
#define MAX_FDS 4
#define WAIT_MS 2000 /* only reached when something is wrong */

/* Each run costs a thread, sockets and a memfd (about 2 ms): fewer mutants in make check. */
const long fuzz_replay_mutants = 60;

static char dir[64];
static char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void cleanup_dir(void)
{
    if (dir[0]) {
        unlink(path);
        rmdir(dir);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");

    (void)argc;
    (void)argv;
    /* Short: the socket path must fit a sun_path. */
    snprintf(dir, sizeof(dir), "%.40s/fuzz-local.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz_local_handshake: mkdtemp");
        exit(1);
    }
    /* Server and client are both domain 0 here. */
    snprintf(path, sizeof(path), "%s/0.0.%s", dir, PORT);
    setenv("VCHAN_DIR", dir, 1);
    unsetenv("VCHAN_DOMID");
    unsetenv("XDG_RUNTIME_DIR");
    atexit(cleanup_dir);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ side 0: a hostile server */

struct chunk {
    uint8_t bytes[64];
    size_t len;
    int fds[MAX_FDS];
    size_t nfds;
};

struct server {
    struct chunk chunks[MAX_CHUNKS];
    size_t nchunks;
    int end; /* 0 close, 1 keep open until the client is done, 2 half-close */
    int listenfd;
    int done; /* atomic: the client's lookup returned */
};

static int sealed_memfd(size_t pages, bool seal)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0) {
        abort();
    }
    if (ftruncate(fd, (off_t)(pages * VCHAN__PAGE_SIZE)) < 0 ||
        (seal && fcntl(fd, F_ADD_SEALS, SEALS) < 0)) {
        abort();
    }
    return fd;
}

/* Descriptor set `sel` for a reply claiming `pages` pages. */
static size_t make_fds(int sel, size_t pages, int *fds)
{
    int p[2];
    size_t n = 0;

    switch (sel & 7) {
    case 0:
        return 0;
    case 1: /* what a real server sends */
    case 3: /* one page more than claimed */
        fds[n++] = sealed_memfd(pages + (sel == 3), true);
        break;
    case 2: /* unsealed, or sealed against writes as well */
        fds[n++] = sealed_memfd(pages, pages % 2 == 0);
        if (pages % 2 == 0 && fcntl(fds[0], F_GET_SEALS) >= 0) {
            /* F_SEAL_SEAL is set: re-make it with F_SEAL_WRITE first. */
            close(fds[0]);
            fds[0] = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
            if (fds[0] < 0 || ftruncate(fds[0], (off_t)(pages * VCHAN__PAGE_SIZE)) < 0 ||
                fcntl(fds[0], F_ADD_SEALS, F_SEAL_WRITE | SEALS) < 0) {
                abort();
            }
        }
        break;
    case 4: { /* read-only */
        char self[64];
        int m = sealed_memfd(pages, true);
        snprintf(self, sizeof(self), "/proc/self/fd/%d", m);
        fds[n++] = open(self, O_RDONLY | O_CLOEXEC);
        close(m);
        break;
    }
    case 5: /* blocking eventfd and a pipe instead of eventfds */
        fds[n++] = sealed_memfd(pages, true);
        fds[n++] = eventfd(0, EFD_CLOEXEC);
        if (pipe2(p, O_CLOEXEC) < 0) {
            abort();
        }
        fds[n++] = p[0];
        close(p[1]);
        return n;
    case 6: /* one too many */
        fds[n++] = sealed_memfd(pages, true);
        fds[n++] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        break;
    default: /* nothing like it */
        fds[n++] = open("/dev/null", O_RDWR | O_CLOEXEC);
        fds[n++] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        fds[n++] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        return n;
    }
    fds[n++] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fds[n++] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return n;
}

static void read_chunks(struct server *s, struct fuzz_in *in)
{
    size_t total = 0;

    s->nchunks = 1 + fuzz_u8(in) % MAX_CHUNKS;
    for (size_t i = 0; i < s->nchunks; i++) {
        struct chunk *c = &s->chunks[i];
        uint8_t how = fuzz_u8(in);
        size_t pages = 1 + fuzz_u8(in) % 4;

        if ((how & 3) == 1) {
            /* Raw bytes. */
            c->len = fuzz_u8(in) % sizeof(c->bytes);
            fuzz_bytes(in, c->bytes, c->len);
        } else {
            /* A reply, fields right unless the mask overrides them; kind 2: cut short. */
            uint32_t f[8] = {VCHAN__LOCAL_MAGIC_REPLY,
                             VCHAN__LOCAL_MSG_VERSION,
                             0,
                             0,
                             1,
                             (uint32_t)pages,
                             0,
                             21};
            uint8_t mask = fuzz_u8(in);

            for (int b = 0; b < 8; b++) {
                if (mask & (1u << b)) {
                    f[b] = fuzz_u32(in);
                }
            }
            memcpy(c->bytes, f, sizeof(f));
            c->len = sizeof(f);
            if ((how & 3) == 2) {
                c->len = fuzz_u8(in) % (sizeof(f) + 1);
            }
        }
        c->nfds = make_fds((how >> 2) & 7, pages, c->fds);
        total += c->len ? c->len : c->nfds > 0;
    }
    s->end = fuzz_u8(in) % 3;
    /*
     * An answer cut short on a line kept open makes the client wait out its
     * 1 s grace: a timing path, not a parsing one, and it would slow every
     * run. Close instead.
     */
    if (s->end == 1 && total < sizeof(struct vchan__local_reply)) {
        s->end = 0;
    }
}

static void *server_thread(void *arg)
{
    struct server *s = arg;
    struct pollfd pfd = {.fd = s->listenfd, .events = POLLIN};
    struct vchan__local_hello h;
    size_t got = 0;
    int conn;

    if (poll(&pfd, 1, WAIT_MS) != 1 ||
        (conn = accept4(s->listenfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
        return NULL;
    }
    /* Nobody else gets this channel: a retry by the client finds no socket. */
    unlink(path);
    while (got < sizeof(h)) {
        struct pollfd c = {.fd = conn, .events = POLLIN};
        ssize_t n;

        if (poll(&c, 1, WAIT_MS) != 1 ||
            (n = recv(conn, (uint8_t *)&h + got, sizeof(h) - got, 0)) <= 0) {
            FUZZ_CHECK(0, "the client sent no complete hello (%zu bytes)", got);
        }
        got += (size_t)n;
    }
    FUZZ_CHECK(h.magic == VCHAN__LOCAL_MAGIC_HELLO && h.version == VCHAN__LOCAL_MSG_VERSION &&
                   h.client_domid == 0 && h.server_domid == 0,
               "the client's hello is malformed: %#x %u %u %u", h.magic, h.version, h.client_domid,
               h.server_domid);
    for (size_t i = 0; i < s->nchunks; i++) {
        struct chunk *c = &s->chunks[i];
        uint64_t until = now_ms() + WAIT_MS;
        int queued = 1;

        if (c->len == 0 && c->nfds == 0) {
            continue;
        }
        if (c->len == 0) {
            /* Descriptors need a byte to travel with. */
            c->len = 1;
        }
        if (fake_send_fds(conn, c->bytes, c->len, c->fds, c->nfds) < 0) {
            break;
        }
        /* Until the client has read it all, or stopped reading: same stream every run. */
        while (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) &&
               ioctl(conn, SIOCOUTQ, &queued) == 0 && queued > 0 && now_ms() < until) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
        if (queued > 0) {
            break;
        }
    }
    if (s->end == 1) {
        while (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    } else if (s->end == 2) {
        shutdown(conn, SHUT_WR);
        while (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    close(conn);
    return NULL;
}

static void client_side(struct fuzz_in *in)
{
    const struct vchan__platform *plat = &vchan__platform_local;
    struct vchan_config cfg = VCHAN_CONFIG_INIT(.domain = 0, .port = PORT);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct server s = {.listenfd = -1};
    struct vchan *v = calloc(1, sizeof(*v)); /* only for the platform's error messages */
    pthread_t t;
    uint32_t ref = 0, port = 0;
    void *p = NULL;
    int rc;

    if (!v) {
        abort();
    }
    read_chunks(&s, in);
    unlink(path);
    s.listenfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (s.listenfd < 0 || bind(s.listenfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(s.listenfd, 4) < 0) {
        perror("fuzz_local_handshake: listen");
        abort();
    }
    if (pthread_create(&t, NULL, server_thread, &s) != 0) {
        abort();
    }

    rc = plat->open(&p, v, &cfg, false);
    FUZZ_CHECK(rc == 0, "local open: %s", vchan_errname(rc));
    /* One try: the answer this input gives decides. */
    rc = plat->lookup(p, 0, &ref, &port);
    __atomic_store_n(&s.done, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    close(s.listenfd);
    unlink(path);

    if (rc == 0) {
        void *ctrl = NULL, *more = NULL;
        uint32_t refs[2] = {ref, fuzz_u32(in) % 8};
        size_t n = 1 + fuzz_u8(in) % 2;
        bool writable = fuzz_u8(in) & 1;
        bool hangup = false;

        FUZZ_CHECK(plat->evtchn_bind(p, port) == 0, "bind after a successful lookup");
        rc = plat->map(p, &ref, 1, true, (int)offsetof(struct vchan__wire, cli_live), &ctrl);
        /* EIO: a server that sealed its memfd against writes (it may; we cannot map it). */
        FUZZ_CHECK(rc == 0 || rc == -VCHAN_EIO, "mapping the announced control page: %s (%s)",
                   vchan_errname(rc), vchan_last_error(v));
        if (rc == 0) {
            /* Every byte of it is ours to touch. */
            memset(ctrl, 0x5a, VCHAN__PAGE_SIZE);
        }
        /* Further maps: in range or refused, never outside the memfd. */
        rc = plat->map(p, refs, n, writable, -1, &more);
        /* More pages than the server shared is the server's fault: EPROTO, not EINVAL. */
        FUZZ_CHECK(rc == 0 || rc == -VCHAN_EPROTO || rc == -VCHAN_EIO, "second map: %s",
                   vchan_errname(rc));
        if (rc == 0) {
            volatile uint8_t sink = 0;

            for (size_t i = 0; i < n * VCHAN__PAGE_SIZE; i++) {
                sink ^= ((const uint8_t *)more)[i];
                if (writable) {
                    ((uint8_t *)more)[i] = 0x33;
                }
            }
            (void)sink;
            plat->unmap(p, more, n);
        }
        rc = plat->notify(p);
        FUZZ_CHECK(rc == 0, "notify: %s", vchan_errname(rc));
        rc = plat->wait(p, 0, &hangup);
        FUZZ_CHECK(rc == 0 || rc == -VCHAN_EAGAIN, "wait: %s", vchan_errname(rc));
        if (ctrl) {
            plat->unmap(p, ctrl, 1);
        }
    } else {
        FUZZ_CHECK(rc == -VCHAN_EPROTO || rc == -VCHAN_EPERM || rc == -VCHAN_ETIMEDOUT ||
                       rc == -VCHAN_EIO,
                   "lookup against a hostile server: %s", vchan_errname(rc));
        FUZZ_CHECK(vchan_last_error(v)[0] != '\0', "lookup failed (%s) without a message",
                   vchan_errname(rc));
    }
    plat->close(p);
    for (size_t i = 0; i < s.nchunks; i++) {
        for (size_t k = 0; k < s.chunks[i].nfds; k++) {
            close(s.chunks[i].fds[k]);
        }
    }
    free(v);
}

/* ------------------------------------------------------------ side 1: a hostile client */

static int connect_to_server(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        FUZZ_CHECK(0, "cannot connect to the published server: %s", strerror(errno));
    }
    return fd;
}

/*
 * The server's answer: 1 with *status (and descriptors closed, counted in
 * *nfds), 0 when it closed without one.
 */
static int read_reply(int fd, uint32_t *status, size_t *nfds)
{
    struct vchan__local_reply m;
    size_t got = 0;

    *nfds = 0;
    while (got < sizeof(m)) {
        union {
            char buf[CMSG_SPACE(8 * sizeof(int))];
            struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = (uint8_t *)&m + got, .iov_len = sizeof(m) - got};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = u.buf,
                             .msg_controllen = sizeof(u.buf)};
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;

        FUZZ_CHECK(poll(&pfd, 1, WAIT_MS) == 1, "the server neither answered nor closed");
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (n <= 0) {
            FUZZ_CHECK(got == 0, "the server closed in the middle of its answer");
            return 0;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                    int x;
                    memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                    close(x);
                }
                *nfds += k;
            }
        }
        got += (size_t)n;
    }
    FUZZ_CHECK(m.magic == VCHAN__LOCAL_MAGIC_REPLY && m.version == VCHAN__LOCAL_MSG_VERSION,
               "the server's reply is malformed");
    *status = m.status;
    return 1;
}

/* Let the server take what is pending (its wait is where it accepts and reads). */
static void server_turn(struct vchan *v)
{
    int rc = vchan_wait(v);

    FUZZ_CHECK(rc == 0 || rc == -VCHAN_EAGAIN, "server wait: %s (%s)", vchan_errname(rc),
               vchan_last_error(v));
}

static void server_side(struct fuzz_in *in)
{
    struct vchan_config cfg = VCHAN_CONFIG_INIT(.domain = 0, .port = PORT, .read_size = 1,
                                                .write_size = 1, .nonblocking = true);
    uint8_t hello[40], before[VCHAN__PAGE_SIZE];
    struct vchan__local_notice notice;
    struct vchan *v = NULL;
    uint8_t how = fuzz_u8(in);
    size_t hlen, nfds = 0, sent_notice = 0;
    uint32_t status = 0xffffffffu;
    long cleared = -1; /* the byte the last valid notice named */
    bool hello_ok;
    int fd, rc, answered;

    rc = vchan__server_open(&v, &vchan__platform_local, &cfg, NULL);
    FUZZ_CHECK(rc == 0, "server open: %s (%s)", vchan_errname(rc), vchan_last_error(v));

    if (how & 1) {
        hlen = fuzz_u8(in) % sizeof(hello);
        fuzz_bytes(in, hello, hlen);
    } else {
        uint32_t f[4] = {VCHAN__LOCAL_MAGIC_HELLO, VCHAN__LOCAL_MSG_VERSION, 0, 0};
        uint8_t mask = fuzz_u8(in);

        for (int b = 0; b < 4; b++) {
            if (mask & (1u << b)) {
                f[b] = fuzz_u32(in);
            }
        }
        memcpy(hello, f, sizeof(f));
        hlen = sizeof(f);
    }
    {
        struct vchan__local_hello h;
        memcpy(&h, hello, sizeof(h));
        hello_ok = hlen >= sizeof(h) && h.magic == VCHAN__LOCAL_MAGIC_HELLO &&
                   h.version == VCHAN__LOCAL_MSG_VERSION && h.client_domid == 0 &&
                   h.server_domid == 0;
    }
    fd = connect_to_server();
    if (hlen && send(fd, hello, hlen, MSG_NOSIGNAL) != (ssize_t)hlen) {
        abort();
    }
    /* A short hello with the line left open would make the server wait out its 500 ms. */
    if (hlen < sizeof(struct vchan__local_hello) || (how & 2)) {
        shutdown(fd, SHUT_WR);
    }
    server_turn(v);
    answered = read_reply(fd, &status, &nfds);
    if (hello_ok) {
        FUZZ_CHECK(answered && status == 0 && nfds == 3,
                   "a well-formed hello got %s status %u with %zu descriptors",
                   answered ? "an answer," : "no answer,", status, nfds);
    } else {
        FUZZ_CHECK(!answered || (status != 0 && nfds == 0),
                   "a bad hello was accepted (status %u, %zu descriptors)", status, nfds);
        FUZZ_CHECK(vchan_is_open(v) == VCHAN_STATE_WAITING, "a refused client changed the state");
    }

    memcpy(before, v->ctrl, sizeof(before));
    if (answered && status == 0) {
        /*
         * Connected: what it sends now is notices and junk; bytes after the
         * hello count too, also when it shut its side right after them (how
         * & 2: then nothing more is sent).
         */
        int rounds = (how & 2) ? 0 : 1 + fuzz_u8(in) % 3;

        for (int r = -1; r < rounds; r++) {
            uint8_t buf[40];
            size_t len;

            if (r < 0) {
                len = hlen - sizeof(struct vchan__local_hello);
                memcpy(buf, hello + sizeof(struct vchan__local_hello), len);
                goto track;
            }
            if (fuzz_u8(in) & 1) {
                len = fuzz_u8(in) % sizeof(buf);
                fuzz_bytes(in, buf, len);
            } else {
                uint32_t f[4] = {VCHAN__LOCAL_MAGIC_NOTICE, VCHAN__LOCAL_MSG_VERSION, 0, 20};
                uint8_t mask = fuzz_u8(in);

                for (int b = 0; b < 4; b++) {
                    if (mask & (1u << b)) {
                        f[b] = fuzz_u32(in);
                    }
                }
                memcpy(buf, f, sizeof(f));
                len = sizeof(f);
            }
            if (len && send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
                abort();
            }
track:
            /* Which notices the server completes: every 16 bytes of the stream. */
            for (size_t i = 0; i < len; i++) {
                ((uint8_t *)&notice)[sent_notice % sizeof(notice)] = buf[i];
                if (++sent_notice % sizeof(notice) == 0 &&
                    notice.magic == VCHAN__LOCAL_MAGIC_NOTICE &&
                    notice.version == VCHAN__LOCAL_MSG_VERSION && notice.ref == 0 &&
                    notice.offset < VCHAN__PAGE_SIZE) {
                    cleared = (long)notice.offset;
                }
            }
            server_turn(v);
        }
    }
    close(fd);
    /* The hang-up: the server sees the client gone, and clears what a valid notice named. */
    server_turn(v);
    if (answered && status == 0) {
        FUZZ_CHECK(vchan_is_open(v) == VCHAN_STATE_CLOSED, "a hung-up client still reads as %d",
                   (int)vchan_is_open(v));
        for (size_t i = 0; i < sizeof(before); i++) {
            uint8_t now = ((uint8_t *)v->ctrl)[i];
            FUZZ_CHECK(now == before[i] || ((long)i == cleared && now == 0),
                       "byte %zu of the control page changed from %u to %u (last valid notice: "
                       "%ld)",
                       i, before[i], now, cleared);
        }
    } else {
        /* Refused: the channel is still there for a proper client. */
        uint8_t good[16];
        struct vchan__local_hello h = {VCHAN__LOCAL_MAGIC_HELLO, VCHAN__LOCAL_MSG_VERSION, 0, 0};

        memcpy(good, &h, sizeof(h));
        fd = connect_to_server();
        if (send(fd, good, sizeof(good), MSG_NOSIGNAL) != (ssize_t)sizeof(good)) {
            abort();
        }
        server_turn(v);
        FUZZ_CHECK(read_reply(fd, &status, &nfds) && status == 0 && nfds == 3,
                   "after a refused client, a good one was not accepted (status %u)", status);
        close(fd);
        server_turn(v);
    }
    vchan_close(v);
    FUZZ_CHECK(access(path, F_OK) < 0, "the server's socket is still in the directory");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = fuzz_in(data, size);
    int fds_before, fds_after;

    if (!dir[0]) {
        LLVMFuzzerInitialize(NULL, NULL);
    }
    fds_before = fake_count_fds();
    if (fuzz_u8(&in) & 1) {
        server_side(&in);
    } else {
        client_side(&in);
    }
    fds_after = fake_count_fds();
    FUZZ_CHECK(fds_after == fds_before, "%d descriptors before, %d after", fds_before, fds_after);
    return 0;
}
