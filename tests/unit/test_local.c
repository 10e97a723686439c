/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the local platform (libvchan/platform/local.c): real peers in
 * forked processes, through the public API and through the ops table.
 *
 * Every test gets a private runtime directory (VCHAN_DIR under a fresh
 * mkdtemp base) and removes it. Children report through their exit status
 * (CUnit asserts only in the parent) and die by alarm() if they hang.
 * Tests that change uid (foreign peers) run only as root.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "libvchan/platform/hosted.h"
#include "libvchan/platform/local_dir.h"
#include "tests/unit/fake_local.h"
#include "tests/unit/unit.h"

#define CHILD_ALARM 15

/* ------------------------------------------------------------ fixtures */

static char base[64];    /* mkdtemp'd, removed after each test */
static char dir[128];    /* VCHAN_DIR of the test */
static char errbuf[256]; /* open failures of the parent */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void env_setup(void)
{
    snprintf(base, sizeof(base), "/tmp/vchan-test-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(dir, sizeof(dir), "%s/d", base);
    setenv("VCHAN_DIR", dir, 1);
    unsetenv("VCHAN_DOMID");
    errbuf[0] = '\0';
}

static void env_teardown(void)
{
    nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    unsetenv("VCHAN_DIR");
    unsetenv("VCHAN_DOMID");
}

static struct vchan_config config(const char *port, int domain, int timeout_ms)
{
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = domain, .port = port, .platform = "local",
                          .timeout_ms = timeout_ms, .errbuf = errbuf, .errbuf_len = sizeof(errbuf));
    return cfg;
}

/* A logger that keeps everything said, for checking what was reported. */
static char logged[4096];

static void capture_log(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
    VCHAN__PRINTF(3, 0);

static void capture_log(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
{
    size_t n = strlen(logged);

    (void)ctx;
    (void)level;
    if (n + 2 < sizeof(logged)) {
        vsnprintf(logged + n, sizeof(logged) - n - 1, fmt, ap);
        n = strlen(logged);
        logged[n] = '\n';
        logged[n + 1] = '\0';
    }
}

static void sock_path(char *out, size_t len, int server, int client, const char *port)
{
    snprintf(out, len, "%s/%d.%d.%s", dir, server, client, port);
}

static bool exists(const char *path)
{
    struct stat sb;

    return lstat(path, &sb) == 0;
}

/* ------------------------------------------------------------ children */

#define CHILD_CHECK(x)                                                                      \
    do {                                                                                    \
        if (!(x)) {                                                                         \
            fprintf(stderr, "child %d: %s:%d: check failed: %s\n", (int)getpid(), __FILE__, \
                    __LINE__, #x);                                                          \
            _exit(1);                                                                       \
        }                                                                                   \
    } while (0)

/* Run fn(arg) in a child process; its return value is the exit status. */
static pid_t spawn(int (*fn)(const void *), const void *arg)
{
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        alarm(CHILD_ALARM);
        _exit(fn(arg));
    }
    return pid;
}

/* Exit status of a child, or -signal. */
static int reap(pid_t pid)
{
    int st;

    if (pid <= 0 || waitpid(pid, &st, 0) != pid) {
        return -1000;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static int read_all(struct vchan *v, void *buf, size_t len)
{
    size_t got = 0, n;
    int rc;

    while (got < len) {
        if ((rc = vchan_read(v, (uint8_t *)buf + got, len - got, &n))) {
            return rc;
        }
        if (n == 0) {
            return -VCHAN_EPIPE;
        }
        got += n;
    }
    return 0;
}

struct xfer {
    const char *port;
    size_t len;
    uint64_t stream;
};

/* Client: read len bytes, check them, send them back, close. */
static int echo_client(const void *arg)
{
    const struct xfer *x = arg;
    struct vchan_config cfg = config(x->port, 0, 5000);
    struct vchan *c;
    uint8_t *buf = malloc(x->len);
    size_t n;

    CHILD_CHECK(buf);
    CHILD_CHECK(vchan_client_open(&c, &cfg) == 0);
    CHILD_CHECK(read_all(c, buf, x->len) == 0);
    CHILD_CHECK(unit_pattern_check(buf, x->len, x->stream, 0) == x->len);
    CHILD_CHECK(vchan_write(c, buf, x->len, &n) == 0 && n == x->len);
    vchan_close(c);
    free(buf);
    return 0;
}

/* Client: connect, write three bytes, then wait to be killed. */
static int idle_client(const void *arg)
{
    struct vchan_config cfg = config(arg, 0, 5000);
    struct vchan *c;
    size_t n;

    CHILD_CHECK(vchan_client_open(&c, &cfg) == 0);
    CHILD_CHECK(vchan_write(c, "abc", 3, &n) == 0 && n == 3);
    pause();
    return 0;
}

/* Client: connect, then read until end-of-file. */
static int eof_client(const void *arg)
{
    struct vchan_config cfg = config(arg, 0, 5000);
    struct vchan *c;
    char b[16];
    size_t n;

    CHILD_CHECK(vchan_client_open(&c, &cfg) == 0);
    do {
        CHILD_CHECK(vchan_read(c, b, sizeof(b), &n) == 0);
    } while (n > 0);
    vchan_close(c);
    return 0;
}

/* Client whose open must fail with the code given in the port's config. */
struct failing {
    const char *port;
    int domain, timeout_ms, want;
    const char *domid;
    const char *msg;
};

static int failing_client(const void *arg)
{
    const struct failing *f = arg;
    char eb[256] = "";
    struct vchan_config cfg = config(f->port, f->domain, f->timeout_ms);
    struct vchan *c = NULL;
    int rc;

    cfg.errbuf = eb;
    if (f->domid) {
        setenv("VCHAN_DOMID", f->domid, 1);
    }
    rc = vchan_client_open(&c, &cfg);
    vchan_close(c);
    if (rc != f->want || (f->msg && !strstr(eb, f->msg))) {
        fprintf(stderr, "child: client open gave %d (%s), wanted %d with '%s'\n", rc, eb, f->want,
                f->msg ? f->msg : "");
        return 1;
    }
    return 0;
}

/* Server: publish, then write "xyz" once connected and wait to be killed. */
static int idle_server(const void *arg)
{
    struct vchan_config cfg = config(arg, 0, 5000);
    struct vchan *s;
    size_t n;

    CHILD_CHECK(vchan_server_open(&s, &cfg) == 0);
    CHILD_CHECK(vchan_wait_connected(s) == 0);
    CHILD_CHECK(vchan_write(s, "xyz", 3, &n) == 0 && n == 3);
    pause();
    return 0;
}

/* ------------------------------------------------- the handshake, raw */

/* Read a reply, closing any descriptors that come with it; returns their count or -1. */
static int recv_reply_raw(int fd, struct vchan__local_reply *r)
{
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {.iov_base = r, .iov_len = sizeof(*r)};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
    struct cmsghdr *c;
    int n = 0;

    if (recvmsg(fd, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC) != (ssize_t)sizeof(*r)) {
        return -1;
    }
    for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k, cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (k = 0; k < cnt; k++, n++) {
                int x;
                memcpy(&x, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
                close(x);
            }
        }
    }
    return n;
}

static int listen_at(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* Connect, retrying while the socket is not there (yet). */
static int connect_to(const char *path, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int waited;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    for (waited = 0; waited <= timeout_ms; waited += 10) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            return fd;
        }
        if (fd >= 0) {
            close(fd);
        }
        usleep(10000);
    }
    return -1;
}

enum fake_kind {
    FAKE_GOOD,      /* a correct server: proves the fake itself is right */
    FAKE_UNSEALED,  /* memfd that can still shrink */
    FAKE_NOT_MEMFD, /* a pipe instead of shared memory */
    FAKE_SHORT,     /* claims more pages than the memfd has */
    FAKE_ONE_FD,    /* too few descriptors */
    FAKE_FOUR_FDS,  /* too many */
    FAKE_BAD_MAGIC,
    FAKE_TRUNCATED, /* half a reply, then gone */
    FAKE_RING_REF,  /* ring-ref outside the pages */
    FAKE_BAD_GRANT, /* control page grants a page that does not exist */
    FAKE_REFUSE,    /* says no */
    FAKE_SILENT,    /* closes without a word */
};

struct fake {
    const char *port;
    enum fake_kind kind;
};

/* A hand-made server speaking the handshake, wrong in one chosen way. */
static int fake_server(const void *arg)
{
    const struct fake *f = arg;
    char path[160];
    struct vchan__local_hello h;
    struct vchan__local_reply r = {
        VCHAN__LOCAL_MAGIC_REPLY, VCHAN__LOCAL_MSG_VERSION, 0, 0, 1, 2, UINT32_MAX, UINT32_MAX};
    int ls, c, fds[4], nfds = 3, mem;
    uint8_t *page;
    char drain[16];

    sock_path(path, sizeof(path), 0, 0, f->port);
    CHILD_CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
    CHILD_CHECK((ls = listen_at(path)) >= 0);
    CHILD_CHECK((c = accept(ls, NULL, NULL)) >= 0);
    CHILD_CHECK(recv(c, &h, sizeof(h), MSG_WAITALL) == sizeof(h));
    CHILD_CHECK(h.magic == VCHAN__LOCAL_MAGIC_HELLO && h.version == VCHAN__LOCAL_MSG_VERSION);

    mem = memfd_create("fake", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHILD_CHECK(mem >= 0 && ftruncate(mem, 2 * 4096) == 0);
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mem, 0);
    CHILD_CHECK(page != MAP_FAILED);
    /* A valid page: left order 12 (granted page 1), right order 11 (in the page). */
    *(uint16_t *)(page + 16) = 12;
    *(uint16_t *)(page + 18) = 11;
    page[20] = 2; /* cli_live: waiting */
    page[21] = 1; /* srv_live */
    *(uint32_t *)(page + 24) = f->kind == FAKE_BAD_GRANT ? 999 : 1;
    if (f->kind != FAKE_UNSEALED) {
        CHILD_CHECK(fcntl(mem, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    }
    fds[0] = mem;
    fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fds[2] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fds[3] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CHILD_CHECK(fds[1] >= 0 && fds[2] >= 0 && fds[3] >= 0);

    switch (f->kind) {
    case FAKE_NOT_MEMFD: {
        int p[2];
        CHILD_CHECK(pipe(p) == 0);
        fds[0] = p[0];
        break;
    }
    case FAKE_SHORT:
        r.npages = 3;
        break;
    case FAKE_ONE_FD:
        nfds = 1;
        break;
    case FAKE_FOUR_FDS:
        nfds = 4;
        break;
    case FAKE_BAD_MAGIC:
        r.magic ^= 1;
        break;
    case FAKE_RING_REF:
        r.ring_ref = 2;
        break;
    case FAKE_REFUSE:
        r.status = VCHAN_EPERM;
        nfds = 0;
        break;
    default:
        break;
    }
    if (f->kind == FAKE_SILENT) {
        close(c);
    } else if (f->kind == FAKE_TRUNCATED) {
        CHILD_CHECK(fake_send_fds(c, &r, sizeof(r) / 2, fds, (size_t)nfds) ==
                    (ssize_t)sizeof(r) / 2);
        close(c);
    } else {
        CHILD_CHECK(fake_send_fds(c, &r, sizeof(r), fds, (size_t)nfds) == (ssize_t)sizeof(r));
        /* Stay until the client is done with us. */
        while (recv(c, drain, sizeof(drain), 0) > 0) {
        }
        close(c);
    }
    close(ls);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_local_domid_parse(void)
{
    static const struct {
        const char *val; /* NULL: unset */
        int rc, domid;
    } cases[] = {
        {NULL, 0, 0},
        {"", 0, 0},
        {"0", 0, 0},
        {"7", 0, 7},
        {"32751", 0, 32751},
        {"00012", 0, 12},
        {"32752", -VCHAN_EINVAL, 0},
        {"99999", -VCHAN_EINVAL, 0},
        {"123456", -VCHAN_EINVAL, 0},
        {"-1", -VCHAN_EINVAL, 0},
        {"+1", -VCHAN_EINVAL, 0},
        {" 1", -VCHAN_EINVAL, 0},
        {"1 ", -VCHAN_EINVAL, 0},
        {"0x10", -VCHAN_EINVAL, 0},
        {"abc", -VCHAN_EINVAL, 0},
        {"1e3", -VCHAN_EINVAL, 0},
    };
    struct vchan *v = calloc(1, sizeof(*v));

    CU_ASSERT_FATAL(v != NULL);
    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        int domid = -1, rc;

        if (cases[i].val) {
            setenv("VCHAN_DOMID", cases[i].val, 1);
        } else {
            unsetenv("VCHAN_DOMID");
        }
        v->errmsg = NULL;
        rc = vchan__local_domid(v, &domid);
        CU_ASSERT_EQUAL(rc, cases[i].rc);
        if (rc == 0) {
            CU_ASSERT_EQUAL(domid, cases[i].domid);
        } else {
            CU_ASSERT_PTR_NOT_NULL_FATAL(v->errmsg);
            CU_ASSERT_PTR_NOT_NULL(strstr(v->errmsg, "bad VCHAN_DOMID"));
        }
    }
    unsetenv("VCHAN_DOMID");
    free(v);
}

static void test_local_bad_domid_is_usage_error(void)
{
    struct vchan_config cfg = config("p", 0, 100);
    struct vchan *v = NULL;

    env_setup();
    setenv("VCHAN_DOMID", "dom0", 1);
    CU_ASSERT_EQUAL(vchan_server_open(&v, &cfg), -VCHAN_EINVAL);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "bad VCHAN_DOMID 'dom0'"));
    CU_ASSERT_EQUAL(vchan_client_open(&v, &cfg), -VCHAN_EINVAL);
    CU_ASSERT_FALSE(exists(dir));
    env_teardown();
}

static void test_local_transfer(void)
{
    static const struct {
        size_t rd, wr, len;
    } cases[] = {
        {0, 0, 300000},       /* default 64 KiB each way */
        {1024, 2048, 100000}, /* both rings inside the control page */
        {2048, 1024, 100000},
        {4096, 65536, 200000}, /* one page, sixteen pages */
        {1u << 20, 1u << 20, 4u << 20},
    };

    env_setup();
    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        struct xfer x = {"xfer", cases[i].len, 1000 + i};
        struct vchan_config cfg = config("xfer", 0, 5000);
        struct vchan *s;
        uint8_t *buf = malloc(x.len);
        size_t n;
        pid_t pid;

        CU_ASSERT_FATAL(buf != NULL);
        cfg.read_size = cases[i].rd;
        cfg.write_size = cases[i].wr;
        CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
        CU_ASSERT_STRING_EQUAL(vchan_platform_name(s), "local");
        CU_ASSERT_EQUAL(vchan_is_open(s), VCHAN_STATE_WAITING);
        pid = spawn(echo_client, &x);
        unit_pattern_fill(buf, x.len, x.stream, 0);
        CU_ASSERT_EQUAL(vchan_write(s, buf, x.len, &n), 0);
        CU_ASSERT_EQUAL(n, x.len);
        memset(buf, 0, x.len);
        CU_ASSERT_EQUAL(read_all(s, buf, x.len), 0);
        CU_ASSERT_EQUAL(unit_pattern_check(buf, x.len, x.stream, 0), x.len);
        /* The client closed: end-of-file, then the peer is gone for writes. */
        CU_ASSERT_EQUAL(vchan_read(s, buf, 1, &n), 0);
        CU_ASSERT_EQUAL(n, 0);
        CU_ASSERT_EQUAL(vchan_write(s, buf, 1, &n), -VCHAN_EPIPE);
        CU_ASSERT_EQUAL(reap(pid), 0);
        vchan_close(s);
        free(buf);
    }
    env_teardown();
}

static void test_local_domids_address_the_socket(void)
{
    struct vchan_config cfg = config("ids", 7, 5000);
    struct failing ok = {"ids", 3, 5000, 0, "7", NULL};
    char path[160];
    struct vchan *s;
    pid_t pid;

    env_setup();
    setenv("VCHAN_DOMID", "3", 1);
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
    unsetenv("VCHAN_DOMID");
    sock_path(path, sizeof(path), 3, 7, "ids");
    CU_ASSERT_TRUE(exists(path));
    pid = spawn(failing_client, &ok); /* want 0: connects as domain 7 to server 3 */
    CU_ASSERT_EQUAL(vchan_wait_connected(s), 0);
    CU_ASSERT_EQUAL(reap(pid), 0);
    vchan_close(s);
    env_teardown();
}

static void test_local_wrong_client_domid_refused(void)
{
    struct vchan_config cfg = config("dom", 5, 1500);
    /* A client of domain 6 reaching domain 5's socket through a link. */
    struct failing f = {"dom", 0, 3000, -VCHAN_EPERM, "6", "refused us"};
    char path5[160], path6[160];
    struct vchan *s;
    pid_t pid;

    env_setup();
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
    sock_path(path5, sizeof(path5), 0, 5, "dom");
    sock_path(path6, sizeof(path6), 0, 6, "dom");
    CU_ASSERT_EQUAL(symlink(path5, path6), 0);
    pid = spawn(failing_client, &f);
    /* The server keeps waiting for its own client. */
    CU_ASSERT_EQUAL(vchan_wait_connected(s), -VCHAN_ETIMEDOUT);
    CU_ASSERT_EQUAL(vchan_is_open(s), VCHAN_STATE_WAITING);
    CU_ASSERT_EQUAL(reap(pid), 0);
    CU_ASSERT_TRUE(exists(path5));
    vchan_close(s);
    CU_ASSERT_FALSE(exists(path5));
    env_teardown();
}

static void test_local_server_sees_client_killed(void)
{
    struct vchan_config cfg = config("kill", 0, 5000);
    struct vchan *s;
    char b[8];
    size_t n;
    pid_t pid;
    uint64_t t0;

    env_setup();
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
    pid = spawn(idle_client, "kill");
    CU_ASSERT_EQUAL(read_all(s, b, 3), 0);
    CU_ASSERT_EQUAL(memcmp(b, "abc", 3), 0);
    CU_ASSERT_EQUAL(vchan_is_open(s), VCHAN_STATE_OPEN);
    kill(pid, SIGKILL);
    CU_ASSERT_EQUAL(reap(pid), -SIGKILL);
    t0 = vchan__hosted_now_ms();
    CU_ASSERT_EQUAL(vchan_read(s, b, sizeof(b), &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT(vchan__hosted_now_ms() - t0 < 1000);
    CU_ASSERT_EQUAL(vchan_is_open(s), VCHAN_STATE_CLOSED);
    CU_ASSERT_EQUAL(vchan_write(s, "x", 1, &n), -VCHAN_EPIPE);
    /* Sticky: waiting again never blocks. */
    vchan_set_timeout(s, 0);
    CU_ASSERT_EQUAL(vchan_wait(s), 0);
    CU_ASSERT_EQUAL(vchan_wait(s), 0);
    vchan_close(s);
    env_teardown();
}

static void test_local_client_sees_server_killed(void)
{
    struct vchan_config cfg = config("skill", 0, 5000);
    struct vchan *c;
    char b[8];
    size_t n;
    pid_t pid;

    env_setup();
    pid = spawn(idle_server, "skill");
    CU_ASSERT_EQUAL_FATAL(vchan_client_open(&c, &cfg), 0);
    CU_ASSERT_EQUAL(read_all(c, b, 3), 0);
    CU_ASSERT_EQUAL(memcmp(b, "xyz", 3), 0);
    kill(pid, SIGKILL);
    CU_ASSERT_EQUAL(reap(pid), -SIGKILL);
    CU_ASSERT_EQUAL(vchan_read(c, b, sizeof(b), &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(vchan_is_open(c), VCHAN_STATE_CLOSED);
    CU_ASSERT_EQUAL(vchan_write(c, "x", 1, &n), -VCHAN_EPIPE);
    vchan_close(c);
    /* The killed server's socket is left behind: the next server replaces it. */
    env_teardown();
}

static void test_local_poll_fd(void)
{
    struct vchan_config cfg = config("poll", 0, 5000);
    struct xfer x = {"poll", 5000, 77};
    uint8_t buf[5000];
    struct pollfd pfd;
    struct vchan *s;
    size_t ready = 0, n, got = 0;
    pid_t pid;
    int fd, guard, rc;

    env_setup();
    cfg.nonblocking = true;
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
    fd = vchan_fd(s);
    CU_ASSERT(fd >= 0);
    CU_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    pfd = (struct pollfd){.fd = fd, .events = POLLIN};
    CU_ASSERT_EQUAL(poll(&pfd, 1, 0), 0);
    CU_ASSERT_EQUAL(vchan_wait(s), -VCHAN_EAGAIN);
    CU_ASSERT_EQUAL(vchan_wait_connected(s), -VCHAN_EAGAIN);
    pid = spawn(echo_client, &x);
    /* Connect, then data: each is a readable fd followed by a non-blocking wait. */
    for (guard = 0; vchan_is_open(s) != VCHAN_STATE_OPEN && guard < 100; guard++) {
        CU_ASSERT_EQUAL(poll(&pfd, 1, 5000), 1);
        /* EAGAIN too: readiness may have been platform traffic, not an event. */
        rc = vchan_wait(s);
        CU_ASSERT(rc == 0 || rc == -VCHAN_EAGAIN);
    }
    CU_ASSERT_EQUAL(vchan_is_open(s), VCHAN_STATE_OPEN);
    unit_pattern_fill(buf, sizeof(buf), x.stream, 0);
    CU_ASSERT_EQUAL(vchan_write(s, buf, sizeof(buf), &n), 0);
    CU_ASSERT_EQUAL(n, sizeof(buf));
    memset(buf, 0, sizeof(buf));
    for (guard = 0; got < sizeof(buf) && guard < 1000; guard++) {
        CU_ASSERT_EQUAL(vchan_data_ready(s, &ready), 0);
        if (ready == 0) {
            CU_ASSERT_EQUAL(poll(&pfd, 1, 5000), 1);
            (void)vchan_wait(s);
            continue;
        }
        CU_ASSERT_EQUAL(vchan_read(s, buf + got, sizeof(buf) - got, &n), 0);
        got += n;
    }
    CU_ASSERT_EQUAL(got, sizeof(buf));
    CU_ASSERT_EQUAL(unit_pattern_check(buf, sizeof(buf), x.stream, 0), sizeof(buf));
    CU_ASSERT_EQUAL(reap(pid), 0);
    /* The client is gone: the fd stays readable and wait does not block. */
    CU_ASSERT_EQUAL(poll(&pfd, 1, 5000), 1);
    CU_ASSERT_EQUAL(vchan_wait(s), 0); /* the hang-up: sticky, always ready */
    CU_ASSERT_EQUAL(vchan_wait(s), 0);
    CU_ASSERT_EQUAL(poll(&pfd, 1, 0), 1);
    CU_ASSERT_EQUAL(vchan_is_open(s), VCHAN_STATE_CLOSED);
    vchan_close(s);
    env_teardown();
}

static void test_local_lookup_timeout(void)
{
    struct vchan_config cfg = config("nobody", 0, 200);
    struct vchan *c = NULL;
    uint64_t t0, dt;
    char want[200];

    env_setup();
    t0 = vchan__hosted_now_ms();
    CU_ASSERT_EQUAL(vchan_client_open(&c, &cfg), -VCHAN_ETIMEDOUT);
    dt = vchan__hosted_now_ms() - t0;
    CU_ASSERT(dt >= 190 && dt < 1500);
    CU_ASSERT_PTR_NULL(c);
    snprintf(want, sizeof(want), "no vchan server at %s/0.0.nobody after 200 ms", dir);
    CU_ASSERT_STRING_EQUAL(errbuf, want);
    /* The client does not create the directory; the server will. */
    CU_ASSERT_FALSE(exists(dir));
    env_teardown();
}

static void test_local_lookup_waits_for_server(void)
{
    struct failing ok = {"late", 0, 5000, 0, NULL, NULL};
    struct vchan_config cfg = config("late", 0, 5000);
    struct vchan *s;
    pid_t pid;

    env_setup();
    pid = spawn(failing_client, &ok);
    usleep(200000);
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
    CU_ASSERT_EQUAL(vchan_wait_connected(s), 0);
    CU_ASSERT_EQUAL(reap(pid), 0);
    vchan_close(s);
    env_teardown();
}

static void test_local_dir_created_private(void)
{
    struct vchan_config cfg = config("mk", 0, 100);
    char path[160];
    struct vchan *s;
    struct stat sb;
    mode_t old;
    int rc;

    env_setup();
    old = umask(0277); /* would leave the owner without write or search */
    rc = vchan_server_open(&s, &cfg);
    umask(old);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(lstat(dir, &sb), 0);
    CU_ASSERT(S_ISDIR(sb.st_mode));
    CU_ASSERT_EQUAL(sb.st_mode & 07777, 0700);
    CU_ASSERT_EQUAL(sb.st_uid, geteuid());
    sock_path(path, sizeof(path), 0, 0, "mk");
    CU_ASSERT_EQUAL(lstat(path, &sb), 0);
    CU_ASSERT(S_ISSOCK(sb.st_mode));
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
    vchan_close(s);
    /* Unpublished on close. */
    CU_ASSERT_FALSE(exists(path));
    env_teardown();
}

static void test_local_dir_resolution(void)
{
    static const struct {
        const char *vchan_dir, *xdg; /* NULL: unset; "@" prefix: under base */
        const char *want;            /* "@": under base; "tmp": /tmp/vchan-<uid> */
    } cases[] = {
        {"@/v", NULL, "@/v"},     {"@/v", "@/x", "@/v"},         {NULL, "@/x", "@/x/vchan"},
        {"", "@/x", "@/x/vchan"}, {NULL, "relative/xdg", "tmp"}, {NULL, NULL, "tmp"},
    };
    const char *old_xdg = getenv("XDG_RUNTIME_DIR");
    char *saved = old_xdg ? strdup(old_xdg) : NULL;

    env_setup();
    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        char port[32], vd[128], xd[128], want[192];
        struct vchan_config cfg;
        struct vchan *s;

        snprintf(port, sizeof(port), "res%d-%zu", (int)getpid(), i);
        cfg = config(port, 0, 100);
        snprintf(vd, sizeof(vd), "%s%s",
                 cases[i].vchan_dir && cases[i].vchan_dir[0] == '@' ? base : "",
                 cases[i].vchan_dir ? cases[i].vchan_dir + (cases[i].vchan_dir[0] == '@') : "");
        snprintf(xd, sizeof(xd), "%s%s", cases[i].xdg && cases[i].xdg[0] == '@' ? base : "",
                 cases[i].xdg ? cases[i].xdg + (cases[i].xdg[0] == '@') : "");
        if (strcmp(cases[i].want, "tmp") == 0) {
            snprintf(want, sizeof(want), "/tmp/vchan-%u/0.0.%s", (unsigned)geteuid(), port);
        } else {
            snprintf(want, sizeof(want), "%s%s/0.0.%s", base, cases[i].want + 1, port);
        }
        if (cases[i].vchan_dir) {
            setenv("VCHAN_DIR", vd, 1);
        } else {
            unsetenv("VCHAN_DIR");
        }
        if (cases[i].xdg) {
            setenv("XDG_RUNTIME_DIR", xd, 1);
            if (xd[0] == '/') {
                mkdir(xd, 0700);
            }
        } else {
            unsetenv("XDG_RUNTIME_DIR");
        }
        CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
        CU_ASSERT_TRUE(exists(want));
        vchan_close(s);
        CU_ASSERT_FALSE(exists(want));
    }
    if (saved) {
        setenv("XDG_RUNTIME_DIR", saved, 1);
        free(saved);
    } else {
        unsetenv("XDG_RUNTIME_DIR");
    }
    env_teardown();
}

static void test_local_dir_insecure_refused(void)
{
    enum { D_MODE, D_SYMLINK, D_FILE, D_OWNER, D_NOPARENT };
    static const struct {
        int kind;
        mode_t mode;
        int want;
        const char *msg;
    } cases[] = {
        {D_MODE, 0777, -VCHAN_EPERM, "group- or world-writable"},
        {D_MODE, 0730, -VCHAN_EPERM, "group- or world-writable"},
        {D_MODE, 0702, -VCHAN_EPERM, "group- or world-writable"},
        {D_MODE, 0755, 0, NULL}, /* readable by others is fine */
        {D_SYMLINK, 0700, -VCHAN_EPERM, "symbolic link"},
        {D_FILE, 0600, -VCHAN_EPERM, "not a directory"},
        {D_OWNER, 0700, -VCHAN_EPERM, "owned by uid 4242"},
        {D_NOPARENT, 0, -VCHAN_EIO, "cannot create vchan directory"},
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        struct vchan_config cfg = config("perm", 0, 100);
        struct vchan *v = NULL;
        char real[160];
        int rc;

        env_setup();
        snprintf(real, sizeof(real), "%s/real", base);
        switch (cases[i].kind) {
        case D_MODE:
            CU_ASSERT_EQUAL(mkdir(dir, 0700), 0);
            CU_ASSERT_EQUAL(chmod(dir, cases[i].mode), 0);
            break;
        case D_SYMLINK:
            CU_ASSERT_EQUAL(mkdir(real, 0700), 0);
            CU_ASSERT_EQUAL(symlink(real, dir), 0);
            break;
        case D_FILE:
            CU_ASSERT(close(open(dir, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)) == 0);
            break;
        case D_OWNER:
            if (geteuid() != 0) {
                UNIT_SKIP_CASE("a directory of another owner: needs root");
                env_teardown();
                continue;
            }
            CU_ASSERT_EQUAL(mkdir(dir, 0700), 0);
            CU_ASSERT_EQUAL(chown(dir, 4242, 4242), 0);
            break;
        case D_NOPARENT:
            snprintf(dir, sizeof(dir), "%s/missing/d", base);
            setenv("VCHAN_DIR", dir, 1);
            break;
        default:
            break;
        }
        rc = vchan_server_open(&v, &cfg);
        CU_ASSERT_EQUAL(rc, cases[i].want);
        if (cases[i].msg) {
            CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, cases[i].msg));
            CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, dir));
        }
        if (rc == 0) {
            vchan_close(v);
        } else if (cases[i].kind != D_NOPARENT) {
            /* A client refuses the same directory at once, without waiting. */
            cfg.timeout_ms = 5000;
            CU_ASSERT_EQUAL(vchan_client_open(&v, &cfg), cases[i].want);
        }
        env_teardown();
    }
}

/* vchan_platform_select: the decision libvchan's opens and libconduit share. */
/* The hosted opens: no config is EINVAL, and *out is NULL on every failure. */
static void test_local_open_without_config(void)
{
    struct vchan *v = (struct vchan *)&v;

    UNIT_EQ(vchan_server_open(&v, NULL), -VCHAN_EINVAL);
    CU_ASSERT_PTR_NULL(v);
    v = (struct vchan *)&v;
    UNIT_EQ(vchan_client_open(&v, NULL), -VCHAN_EINVAL);
    CU_ASSERT_PTR_NULL(v);
    UNIT_EQ(vchan_client_open(NULL, NULL), -VCHAN_EINVAL);
}

/* vchan__local_path: the one spelling of a socket's name, for both libraries. */
static void test_local_socket_path(void)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)], msg[VCHAN__LOCAL_MSG_MAX];

    UNIT_EQ(vchan__local_path(path, sizeof(path), "/run/v", 0, 7, "data", msg), 0);
    CU_ASSERT_STRING_EQUAL(path, "/run/v/0.7.data");
    UNIT_EQ(vchan__local_path(path, sizeof(path), "/run/v", 32751, VCHAN__LOCAL_ACCEPT, "p-1", msg),
            0);
    CU_ASSERT_STRING_EQUAL(path, "/run/v/32751.accept.p-1");
    /* 16 bytes hold 15 characters: "/d/12.3.abcdefg" fits, one more does not. */
    UNIT_EQ(vchan__local_path(path, 16, "/d", 12, 3, "abcdefg", msg), 0);
    UNIT_EQ(vchan__local_path(path, 16, "/d", 12, 3, "abcdefgh", msg), -VCHAN_EINVAL);
    CU_ASSERT_STRING_EQUAL(msg,
                           "vchan socket path /d/12.3.abcdefgh too long (16 bytes, at most 15)");
}

static void test_local_platform_select(void)
{
    const char *saved = getenv("VCHAN_PLATFORM");
    char copy[64] = "", err[160];
    const char *name = "x";
    int fd = open("/dev/xen/evtchn", O_RDWR | O_CLOEXEC);
#ifdef HAVE_XEN
    const char *detected = fd >= 0 ? "xen" : "local";
#else
    const char *detected = "local";
#endif

    if (fd >= 0) {
        close(fd);
    }
    if (saved) {
        snprintf(copy, sizeof(copy), "%s", saved);
    }
    UNIT_EQ(vchan_platform_select("local", NULL, NULL, 0), -VCHAN_EINVAL);
    UNIT_EQ(vchan_platform_select("local", &name, NULL, 0), 0);
    CU_ASSERT_STRING_EQUAL(name, "local");
    setenv("VCHAN_PLATFORM", "local", 1);
    UNIT_EQ(vchan_platform_select(NULL, &name, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(name, "local");
    /* An explicit name wins over the environment; "" is detection, ignoring it. */
    setenv("VCHAN_PLATFORM", "bogus", 1);
    UNIT_EQ(vchan_platform_select("local", &name, err, sizeof(err)), 0);
    UNIT_EQ(vchan_platform_select("", &name, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(name, detected);
    err[0] = '\0';
    UNIT_EQ(vchan_platform_select(NULL, &name, err, sizeof(err)), -VCHAN_EINVAL);
    CU_ASSERT_PTR_NULL(name);
    CU_ASSERT_STRING_EQUAL(err,
                           "unknown platform 'bogus' in VCHAN_PLATFORM (expected xen or local)");
    UNIT_EQ(vchan_platform_select("qubes", &name, err, sizeof(err)), -VCHAN_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "unknown platform 'qubes' (expected xen or local)");
#ifdef HAVE_XEN
    UNIT_EQ(vchan_platform_select("xen", &name, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(name, "xen");
#else
    UNIT_EQ(vchan_platform_select("xen", &name, err, sizeof(err)), -VCHAN_ENOSYS);
#endif
    unsetenv("VCHAN_PLATFORM");
    UNIT_EQ(vchan_platform_select(NULL, &name, NULL, 0), 0);
    CU_ASSERT_STRING_EQUAL(name, detected);
    if (saved) {
        setenv("VCHAN_PLATFORM", copy, 1);
    }
}

static void test_local_path_too_long(void)
{
    char port[VCHAN_PORT_MAX + 1];
    struct vchan_config cfg;
    struct vchan *v = NULL;

    env_setup();
    snprintf(dir, sizeof(dir), "%s/%s", base, "a-directory-name-of-some-length");
    setenv("VCHAN_DIR", dir, 1);
    memset(port, 'p', VCHAN_PORT_MAX);
    port[VCHAN_PORT_MAX] = '\0';
    cfg = config(port, 32751, 100);
    setenv("VCHAN_DOMID", "32751", 1);
    /* 64-byte port, two 5-digit ids, and a 50-odd byte directory: over 108. */
    CU_ASSERT_EQUAL(vchan_server_open(&v, &cfg), -VCHAN_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "too long"));
    CU_ASSERT_EQUAL(vchan_client_open(&v, &cfg), -VCHAN_EINVAL);
    CU_ASSERT_FALSE(exists(dir));
    env_teardown();
}

static void test_local_already_published(void)
{
    struct vchan_config cfg = config("dup", 0, 100);
    struct vchan *s1, *s2 = NULL;

    env_setup();
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s1, &cfg), 0);
    CU_ASSERT_EQUAL(vchan_server_open(&s2, &cfg), -VCHAN_EADDRINUSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "already published"));
    CU_ASSERT_PTR_NULL(s2);
    /* The loser's probe left the first server intact and still published. */
    CU_ASSERT_EQUAL(vchan_wait(s1), 0); /* accepts and drops the probe */
    vchan_close(s1);
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s2, &cfg), 0);
    vchan_close(s2);
    env_teardown();
}

static void test_local_stale_socket_replaced(void)
{
    struct vchan_config cfg = config("stale", 0, 5000);
    struct failing ok = {"stale", 0, 5000, 0, NULL, NULL};
    char path[160];
    struct vchan *s = NULL;
    struct stat after;
    int fd;
    pid_t pid;

    env_setup();
    logged[0] = '\0';
    cfg.log = capture_log;
    CU_ASSERT_EQUAL(mkdir(dir, 0700), 0);
    sock_path(path, sizeof(path), 0, 0, "stale");
    /* A server that died without unlinking: the socket file, nobody listening. */
    fd = listen_at(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    CU_ASSERT_TRUE(exists(path));
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "removing stale vchan socket"));
    CU_ASSERT_TRUE(exists(path));
    pid = spawn(failing_client, &ok);
    CU_ASSERT_EQUAL(vchan_wait_connected(s), 0);
    CU_ASSERT_EQUAL(reap(pid), 0);
    /* One client per channel: the socket is gone once it is accepted. */
    CU_ASSERT_FALSE(exists(path));
    vchan_close(s);

    /* Something that is not a socket is never removed. */
    CU_ASSERT(close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)) == 0);
    cfg.timeout_ms = 100;
    CU_ASSERT_EQUAL(vchan_server_open(&s, &cfg), -VCHAN_EADDRINUSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "not a socket"));
    CU_ASSERT_EQUAL(lstat(path, &after), 0);
    CU_ASSERT(S_ISREG(after.st_mode));
    env_teardown();
}

static void test_local_close_keeps_foreign_socket(void)
{
    struct vchan_config cfg = config("mine", 0, 100);
    char path[160], moved[160];
    struct vchan *s;
    int fd;

    env_setup();
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
    sock_path(path, sizeof(path), 0, 0, "mine");
    snprintf(moved, sizeof(moved), "%s/moved", dir);
    /* Someone replaced our socket with theirs: close must not remove it. */
    CU_ASSERT_EQUAL(rename(path, moved), 0);
    fd = listen_at(path);
    CU_ASSERT(fd >= 0);
    vchan_close(s);
    CU_ASSERT_TRUE(exists(path));
    close(fd);
    env_teardown();
}

static void test_local_one_client_only(void)
{
    struct vchan_config cfg = config("one", 0, 5000);
    struct failing second = {"one", 0, 300, -VCHAN_ETIMEDOUT, NULL, "no vchan server"};
    struct vchan *s;
    pid_t first, pid2;

    env_setup();
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
    first = spawn(eof_client, "one");
    CU_ASSERT_EQUAL(vchan_wait_connected(s), 0);
    pid2 = spawn(failing_client, &second);
    CU_ASSERT_EQUAL(reap(pid2), 0);
    vchan_close(s);
    CU_ASSERT_EQUAL(reap(first), 0);
    env_teardown();
}

static void test_local_hostile_server(void)
{
    static const struct {
        enum fake_kind kind;
        int want;
        const char *msg;
    } cases[] = {
        {FAKE_GOOD, 0, NULL},
        {FAKE_UNSEALED, -VCHAN_EPROTO, "not a sealed memfd"},
        {FAKE_NOT_MEMFD, -VCHAN_EPROTO, "not a sealed memfd"},
        {FAKE_SHORT, -VCHAN_EPROTO, "not 3 pages"},
        {FAKE_ONE_FD, -VCHAN_EPROTO, "sent 1 descriptors"},
        {FAKE_FOUR_FDS, -VCHAN_EPROTO, "unexpected control data"},
        {FAKE_BAD_MAGIC, -VCHAN_EPROTO, "bad magic"},
        {FAKE_TRUNCATED, -VCHAN_EPROTO, "closed in the middle"},
        {FAKE_RING_REF, -VCHAN_EPROTO, "ring-ref 2 outside"},
        {FAKE_BAD_GRANT, -VCHAN_EPROTO, "granted page 999"},
        {FAKE_REFUSE, -VCHAN_EPERM, "refused us"},
        {FAKE_SILENT, -VCHAN_ETIMEDOUT, "no vchan server"},
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        struct fake f = {"fake", cases[i].kind};
        struct vchan_config cfg = config("fake", 0, cases[i].kind == FAKE_SILENT ? 500 : 5000);
        struct vchan *c = NULL;
        int fds_before, rc;
        pid_t pid;

        env_setup();
        fds_before = fake_count_fds();
        pid = spawn(fake_server, &f);
        rc = vchan_client_open(&c, &cfg);
        CU_ASSERT_EQUAL(rc, cases[i].want);
        if (rc != cases[i].want) {
            printf("\n  case %zu: got %d (%s)\n", i, rc, errbuf);
        }
        if (cases[i].msg) {
            CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, cases[i].msg));
        }
        vchan_close(c);
        CU_ASSERT_EQUAL(reap(pid), 0);
        /* Whatever the server sent, nothing of it stays open here. */
        CU_ASSERT_EQUAL(fake_count_fds(), fds_before);
        env_teardown();
    }
}

static void test_local_fds_cloexec_and_released(void)
{
    struct vchan_config cfg = config("fds", 0, 5000);
    struct vchan *s, *c;
    char b[3];
    int before, fd, n = 0;
    bool old[1024] = {false};
    DIR *d;
    struct dirent *e;
    pid_t pid;

    env_setup();
    before = fake_count_fds();
    /* Only what the channel opens counts: make or a shell may pass us their own. */
    d = opendir("/proc/self/fd");
    CU_ASSERT_FATAL(d != NULL);
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.' && (fd = (int)strtol(e->d_name, NULL, 10)) >= 0 && fd < 1024 &&
            fd != dirfd(d)) {
            old[fd] = true;
        }
    }
    closedir(d);
    /* Server and client in this process: the handshake needs the server's wait. */
    CU_ASSERT_EQUAL_FATAL(vchan_server_open(&s, &cfg), 0);
    pid = spawn(eof_client, "fds");
    CU_ASSERT_EQUAL(vchan_wait_connected(s), 0);
    d = opendir("/proc/self/fd");
    CU_ASSERT_FATAL(d != NULL);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || (fd = (int)strtol(e->d_name, NULL, 10)) < 0 || fd >= 1024 ||
            old[fd] || fd == dirfd(d)) {
            continue;
        }
        CU_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        n++;
    }
    closedir(d);
    CU_ASSERT(n >= 5); /* epoll, connection, memfd, two eventfds */
    vchan_close(s);
    CU_ASSERT_EQUAL(reap(pid), 0);
    CU_ASSERT_EQUAL(fake_count_fds(), before);

    /* And the client side, against a server in a child. The client reads
     * the server's "xyz" before closing: closing first raced the server's
     * write (-VCHAN_EPIPE, the child exited 1 instead of being killed). */
    pid = spawn(idle_server, "fds");
    CU_ASSERT_EQUAL_FATAL(vchan_client_open(&c, &cfg), 0);
    CU_ASSERT_EQUAL(read_all(c, b, 3), 0);
    CU_ASSERT_EQUAL(memcmp(b, "xyz", 3), 0);
    vchan_close(c);
    kill(pid, SIGKILL);
    CU_ASSERT_EQUAL(reap(pid), -SIGKILL);
    CU_ASSERT_EQUAL(fake_count_fds(), before);
    env_teardown();
}

/* ------------------------------------------------- the ops table itself */

static const struct vchan__platform *P = &vchan__platform_local;

struct ops_client {
    const char *port;
    uint32_t ref;
};

/* Client through the ops: map the control page, check a mark, answer, wait to die. */
static int ops_client(const void *arg)
{
    const struct ops_client *oc = arg;
    struct vchan_config cfg = config(oc->port, 0, 5000);
    struct vchan *v = calloc(1, sizeof(*v));
    uint32_t ref, port, bad;
    void *p, *page, *x;
    bool hup = false;

    CHILD_CHECK(v);
    CHILD_CHECK(P->open(&p, v, &cfg, false) == 0);
    CHILD_CHECK(P->lookup(p, 5000, &ref, &port) == 0);
    CHILD_CHECK(ref == oc->ref);
    CHILD_CHECK(P->evtchn_bind(p, port + 1) == -VCHAN_EINVAL);
    CHILD_CHECK(P->evtchn_bind(p, port) == 0);
    CHILD_CHECK(P->map(p, &ref, 1, true, 20, &page) == 0);
    CHILD_CHECK(strcmp((char *)page + 100, "server mark") == 0);
    /* Peer-controlled refs are checked against the memfd's pages. */
    bad = 5;
    CHILD_CHECK(P->map(p, &bad, 1, false, -1, &x) == -VCHAN_EPROTO);
    bad = UINT32_MAX;
    CHILD_CHECK(P->map(p, &bad, 1, false, -1, &x) == -VCHAN_EPROTO);
    ((uint8_t *)page)[20] = 1; /* our live byte */
    memcpy((char *)page + 200, "client mark", 12);
    CHILD_CHECK(P->notify(p) == 0);
    CHILD_CHECK(P->wait(p, 5000, &hup) == 0 && !hup);
    CHILD_CHECK(strcmp((char *)page + 300, "answer") == 0);
    CHILD_CHECK(P->notify(p) == 0);
    pause();
    return 0;
}

/* Three hostile clients in a row: silent, bad hello, and one that lies in its notice. */
static int hostile_clients(const void *arg)
{
    char path[160];
    struct vchan__local_hello bad = {VCHAN__LOCAL_MAGIC_HELLO ^ 1, VCHAN__LOCAL_MSG_VERSION, 0, 0};
    struct vchan__local_hello good = {VCHAN__LOCAL_MAGIC_HELLO, VCHAN__LOCAL_MSG_VERSION, 0, 0};
    struct vchan__local_notice lie = {VCHAN__LOCAL_MAGIC_NOTICE, VCHAN__LOCAL_MSG_VERSION, 1,
                                      0}; /* a ring page, not ours */
    struct vchan__local_reply r;
    char junk[100];
    int fd;

    sock_path(path, sizeof(path), 0, 0, arg);
    /* Silent: the server gives up on the hello and keeps listening. */
    CHILD_CHECK((fd = connect_to(path, 3000)) >= 0);
    usleep(800000);
    close(fd);
    /* A bad hello is refused, without descriptors. */
    CHILD_CHECK((fd = connect_to(path, 3000)) >= 0);
    CHILD_CHECK(send(fd, &bad, sizeof(bad), MSG_NOSIGNAL) == sizeof(bad));
    CHILD_CHECK(recv_reply_raw(fd, &r) == 0 && r.status == VCHAN_EPROTO);
    close(fd);
    /* A good hello gets the channel; then lies and garbage, then gone. */
    CHILD_CHECK((fd = connect_to(path, 3000)) >= 0);
    CHILD_CHECK(send(fd, &good, sizeof(good), MSG_NOSIGNAL) == sizeof(good));
    CHILD_CHECK(recv_reply_raw(fd, &r) == 3 && r.status == 0 && r.npages == 2);
    CHILD_CHECK(send(fd, &lie, sizeof(lie), MSG_NOSIGNAL) == sizeof(lie));
    memset(junk, 0xee, sizeof(junk));
    CHILD_CHECK(send(fd, junk, sizeof(junk), MSG_NOSIGNAL) == sizeof(junk));
    close(fd);
    return 0;
}

static void test_local_ops_hostile_client(void)
{
    struct vchan_config cfg = config("hc", 0, 5000);
    struct vchan *v = calloc(1, sizeof(*v));
    uint32_t port, ref, rref;
    void *p, *ctrl, *ring;
    bool hup = false;
    int guard, rc;
    pid_t pid;

    env_setup();
    CU_ASSERT_FATAL(v != NULL);
    CU_ASSERT_EQUAL_FATAL(P->open(&p, v, &cfg, true), 0);
    CU_ASSERT_EQUAL(P->evtchn_alloc_unbound(p, &port), 0);
    CU_ASSERT_EQUAL(P->share(p, 1, &ref, 21, &ctrl), 0);
    CU_ASSERT_EQUAL(P->share(p, 1, &rref, -1, &ring), 0);
    ((uint8_t *)ctrl)[20] = 2;
    ((uint8_t *)ring)[0] = 0xaa;
    CU_ASSERT_EQUAL(P->publish(p, ref, port), 0);
    pid = spawn(hostile_clients, "hc");
    for (guard = 0; !hup && guard < 100; guard++) {
        rc = P->wait(p, 5000, &hup);
        CU_ASSERT(rc == 0);
        if (rc) {
            break;
        }
    }
    CU_ASSERT_TRUE(hup);
    CU_ASSERT_EQUAL(reap(pid), 0);
    /* The lie was ignored: nothing of ours was cleared on its behalf. */
    CU_ASSERT_EQUAL(((uint8_t *)ring)[0], 0xaa);
    CU_ASSERT_EQUAL(((uint8_t *)ctrl)[20], 2);
    P->unshare(p, ring, 1);
    P->unshare(p, ctrl, 1);
    P->close(p);
    free(v);
    env_teardown();
}

static void test_local_ops_unmap_notify_emulated(void)
{
    struct vchan_config cfg = config("ops", 0, 5000);
    struct vchan *v = calloc(1, sizeof(*v));
    struct ops_client oc = {"ops", 0};
    uint32_t port, ref, refs[3];
    void *p, *ctrl, *ring;
    uint8_t *c;
    bool hup = false;
    int rc, guard;
    pid_t pid;

    env_setup();
    CU_ASSERT_FATAL(v != NULL);
    CU_ASSERT_EQUAL_FATAL(P->open(&p, v, &cfg, true), 0);
    CU_ASSERT_EQUAL(P->evtchn_alloc_unbound(p, &port), 0);
    CU_ASSERT_EQUAL(P->share(p, 1, &ref, 21, &ctrl), 0);
    CU_ASSERT_EQUAL(P->share(p, 3, refs, -1, &ring), 0);
    CU_ASSERT_EQUAL(ref, 0);
    CU_ASSERT_EQUAL(refs[0], 1);
    CU_ASSERT_EQUAL(refs[2], 3);
    c = ctrl;
    /* Fresh pages are zeroed, as a new grant is. */
    CU_ASSERT_EQUAL(c[0] | c[4095] | ((uint8_t *)ring)[3 * 4096 - 1], 0);
    c[21] = 1;
    memcpy(c + 100, "server mark", 12);
    CU_ASSERT_EQUAL(P->publish(p, ref, port), 0);
    /* Published: the size is final. */
    CU_ASSERT_EQUAL(P->share(p, 1, refs, -1, &ring), -VCHAN_EINVAL);
    CU_ASSERT_EQUAL(P->wait(p, 0, &hup), -VCHAN_EAGAIN);
    CU_ASSERT_EQUAL(P->wait(p, 50, &hup), -VCHAN_ETIMEDOUT);
    CU_ASSERT_FALSE(hup);
    oc.ref = ref;
    pid = spawn(ops_client, &oc);
    for (guard = 0; c[20] != 1 && guard < 100; guard++) {
        rc = P->wait(p, 5000, &hup);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_FALSE(hup);
    }
    CU_ASSERT_EQUAL(c[20], 1);
    CU_ASSERT_STRING_EQUAL((char *)c + 200, "client mark");
    memcpy(c + 300, "answer", 7);
    CU_ASSERT_EQUAL(P->notify(p), 0);
    CU_ASSERT_EQUAL(P->wait(p, 5000, &hup), 0);
    /* SIGKILL: no chance to close, yet the hang-up is seen and cli_live cleared. */
    kill(pid, SIGKILL);
    for (guard = 0; !hup && guard < 100; guard++) {
        CU_ASSERT_EQUAL(P->wait(p, 5000, &hup), 0);
    }
    CU_ASSERT_TRUE(hup);
    CU_ASSERT_EQUAL(c[20], 0);
    hup = false;
    CU_ASSERT_EQUAL(P->wait(p, -1, &hup), 0); /* sticky, does not block */
    CU_ASSERT_TRUE(hup);
    CU_ASSERT_EQUAL(reap(pid), -SIGKILL);
    P->unshare(p, ring, 3);
    P->unshare(p, ctrl, 1);
    P->close(p);
    free(v);
    env_teardown();
}

/* ------------------------------------------------ foreign users (root) */

struct as_user {
    uid_t uid;
    const char *vchan_dir;
    const char *port;
    const char *link_from; /* client: make this link to link_to first */
    const char *link_to;
    const char *msg; /* client: how its open must fail (EPERM) */
};

/* Server of another user: publish, open the socket to all, wait for nobody. */
static int foreign_server(const void *arg)
{
    const struct as_user *u = arg;
    struct vchan_config cfg = config(u->port, 0, 1500);
    char path[160];
    struct vchan *s;

    CHILD_CHECK(setgid(u->uid) == 0 && setuid(u->uid) == 0);
    setenv("VCHAN_DIR", u->vchan_dir, 1);
    CHILD_CHECK(vchan_server_open(&s, &cfg) == 0);
    snprintf(path, sizeof(path), "%s/0.0.%s", u->vchan_dir, u->port);
    /* A careless owner: anyone may connect, so credentials must decide. */
    CHILD_CHECK(chmod(path, 0666) == 0);
    CHILD_CHECK(vchan_wait_connected(s) == -VCHAN_ETIMEDOUT);
    CHILD_CHECK(vchan_is_open(s) == VCHAN_STATE_WAITING);
    vchan_close(s);
    return 0;
}

/* Wait until the foreign server has opened its socket to everyone. */
static bool socket_opened(const char *path)
{
    struct stat sb;
    int i;

    for (i = 0; i < 300; i++) {
        if (stat(path, &sb) == 0 && (sb.st_mode & 0666) == 0666) {
            return true;
        }
        usleep(10000);
    }
    return false;
}

/* Raw client of yet another user: the server must answer with a refusal and no fds. */
static int foreign_raw_client(const void *arg)
{
    const struct as_user *u = arg;
    struct vchan__local_hello h = {VCHAN__LOCAL_MAGIC_HELLO, VCHAN__LOCAL_MSG_VERSION, 0, 0};
    struct vchan__local_reply r;
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {.iov_base = &r, .iov_len = sizeof(r)};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
    char path[160];
    int fd;

    CHILD_CHECK(setgid(u->uid) == 0 && setuid(u->uid) == 0);
    snprintf(path, sizeof(path), "%s/0.0.%s", u->vchan_dir, u->port);
    CHILD_CHECK(socket_opened(path));
    CHILD_CHECK((fd = connect_to(path, 3000)) >= 0);
    /* The refusal may come before the hello is even sent: then the send fails. */
    (void)send(fd, &h, sizeof(h), MSG_NOSIGNAL);
    CHILD_CHECK(recvmsg(fd, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC) == sizeof(r));
    CHILD_CHECK(r.magic == VCHAN__LOCAL_MAGIC_REPLY && r.status == VCHAN_EPERM);
    CHILD_CHECK(CMSG_FIRSTHDR(&msg) == NULL);
    close(fd);
    return 0;
}

/* Client of another user, led to the foreign server's socket by a link in its own dir. */
static int foreign_client(const void *arg)
{
    const struct as_user *u = arg;
    struct failing f = {u->port, 0, 3000, -VCHAN_EPERM, NULL, u->msg};

    CHILD_CHECK(setgid(u->uid) == 0 && setuid(u->uid) == 0);
    setenv("VCHAN_DIR", u->vchan_dir, 1);
    CHILD_CHECK(mkdir(u->vchan_dir, 0700) == 0 || errno == EEXIST);
    CHILD_CHECK(symlink(u->link_to, u->link_from) == 0);
    CHILD_CHECK(socket_opened(u->link_to));
    return failing_client(&f);
}

static void test_local_foreign_uid_refused(void)
{
    char d0[128], d1[128], d2[128], from[192], to[192], from0[192], to0[192];
    struct as_user srv = {4242, d1, "uid", NULL, NULL, NULL};
    struct as_user raw = {4243, d1, "uid", NULL, NULL, NULL};
    struct as_user cli = {4243, d2, "uid", from, to, "neither ours"};
    struct as_user root_srv = {0, d0, "uid0", NULL, NULL, NULL};
    struct as_user user_cli = {4243, d2, "uid0", from0, to0, "refused us"};
    pid_t ps, pc;

    if (geteuid() != 0) {
        UNIT_SKIP("needs root (runs servers and clients as other uids)");
    }
    env_setup();
    CU_ASSERT_EQUAL(chmod(base, 0755), 0);
    snprintf(d0, sizeof(d0), "%s/u0", base);
    CU_ASSERT_EQUAL(mkdir(d0, 0755), 0);
    snprintf(d1, sizeof(d1), "%s/u4242", base);
    snprintf(d2, sizeof(d2), "%s/u4243", base);
    CU_ASSERT_EQUAL(mkdir(d1, 0755), 0);
    CU_ASSERT_EQUAL(chown(d1, 4242, 4242), 0);
    CU_ASSERT_EQUAL(chmod(base, 0777), 0); /* let uid 4243 make its own dir */
    snprintf(to, sizeof(to), "%s/0.0.uid", d1);
    snprintf(from, sizeof(from), "%s/0.0.uid", d2);
    snprintf(to0, sizeof(to0), "%s/0.0.uid0", d0);
    snprintf(from0, sizeof(from0), "%s/0.0.uid0", d2);

    /* The server refuses a client of another uid (SO_PEERCRED). */
    ps = spawn(foreign_server, &srv);
    pc = spawn(foreign_raw_client, &raw);
    CU_ASSERT_EQUAL(reap(pc), 0);
    CU_ASSERT_EQUAL(reap(ps), 0);

    /* The client refuses a server of another uid. */
    ps = spawn(foreign_server, &srv);
    pc = spawn(foreign_client, &cli);
    CU_ASSERT_EQUAL(reap(pc), 0);
    CU_ASSERT_EQUAL(reap(ps), 0);

    /* A root server accepts only root: a user's client gets a clear refusal, not a timeout. */
    ps = spawn(foreign_server, &root_srv);
    pc = spawn(foreign_client, &user_cli);
    CU_ASSERT_EQUAL(reap(pc), 0);
    CU_ASSERT_EQUAL(reap(ps), 0);
    CU_ASSERT_EQUAL(chmod(base, 0700), 0);
    env_teardown();
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_local_domid_parse),
    UNIT_TEST(test_local_bad_domid_is_usage_error),
    UNIT_TEST(test_local_transfer),
    UNIT_TEST(test_local_domids_address_the_socket),
    UNIT_TEST(test_local_wrong_client_domid_refused),
    UNIT_TEST(test_local_server_sees_client_killed),
    UNIT_TEST(test_local_client_sees_server_killed),
    UNIT_TEST(test_local_poll_fd),
    UNIT_TEST(test_local_lookup_timeout),
    UNIT_TEST(test_local_lookup_waits_for_server),
    UNIT_TEST(test_local_dir_created_private),
    UNIT_TEST(test_local_dir_resolution),
    UNIT_TEST(test_local_dir_insecure_refused),
    UNIT_TEST(test_local_open_without_config),
    UNIT_TEST(test_local_socket_path),
    UNIT_TEST(test_local_platform_select),
    UNIT_TEST(test_local_path_too_long),
    UNIT_TEST(test_local_already_published),
    UNIT_TEST(test_local_stale_socket_replaced),
    UNIT_TEST(test_local_close_keeps_foreign_socket),
    UNIT_TEST(test_local_one_client_only),
    UNIT_TEST(test_local_hostile_server),
    UNIT_TEST(test_local_fds_cloexec_and_released),
    UNIT_TEST(test_local_ops_unmap_notify_emulated),
    UNIT_TEST(test_local_ops_hostile_client),
    UNIT_TEST(test_local_foreign_uid_refused),
};

UNIT_MAIN("local", tests)
