/* SPDX-License-Identifier: ISC */
/*
 * libconduit/rendezvous/: parse.c's parsers of what an accept-rendezvous
 * peer writes (hostile input, table-driven), and local.c's client and
 * server of the local platform's accept rendezvous through their internal
 * functions, with a hand-made hostile client beside them. (xen.c:
 * test_rendezvous_xen over the fake xenstore; none.c is what is built
 * without Xen, checked here when it is.)
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "libconduit/internal/internal.h"
#include "unit.h"
#include "vchan.h"

#define NONCE "0123456789abcdef"

static const char *errname(int rc)
{
    return conduit_errname(rc);
}

/* ------------------------------------------------------------- parse.c */

static void test_rendezvous_domid_parse(void)
{
    static const struct {
        const char *s;
        int len; /* -1: strlen */
        int want;
    } cases[] = {
        { "0", -1, 0 },          { "7", -1, 7 },         { "32751", -1, 32751 },
        { "00007", -1, 7 },      { "32752", -1, -1 },    { "99999", -1, -1 },
        { "000001", -1, -1 },    { "", -1, -1 },         { "-1", -1, -1 },
        { "+1", -1, -1 },        { " 1", -1, -1 },       { "1 ", -1, -1 },
        { "1a", -1, -1 },        { "0x1", -1, -1 },      { "12x", 2, 12 },
        { "4294967297", -1, -1 }, { "1\0002", 3, -1 },
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        size_t len = cases[i].len < 0 ? strlen(cases[i].s) : (size_t)cases[i].len;

        if (!UNIT_EQ(conduit__domid_parse(cases[i].s, len), cases[i].want)) {
            fprintf(stderr, "\n  case %zu: '%s'\n", i, cases[i].s);
        }
    }
}

static void test_rendezvous_request_name(void)
{
    static const struct {
        const char *name;
        int want;
    } cases[] = {
        { "5-" NONCE, 5 },
        { "0-" NONCE, 0 },
        { "32751-" NONCE, 32751 },
        { "32752-" NONCE, -1 },
        { "-" NONCE, -1 },
        { "5" NONCE, -1 },
        { "5-0123456789ABCDEF", -1 },
        { "5-0123456789abcde", -1 },
        { "5-0123456789abcdef0", -1 },
        { "5--123456789abcdef", -1 },
        { "5-0123456789abcdeg", -1 },
        { "a-" NONCE, -1 },
        { "5 -" NONCE, -1 },
        { "", -1 },
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        char nonce[CONDUIT__NONCE_LEN + 1] = "";
        int got = conduit__rdv_request_name(cases[i].name, nonce);

        if (!UNIT_EQ(got, cases[i].want)) {
            fprintf(stderr, "\n  case %zu: '%s'\n", i, cases[i].name);
        }
        if (got >= 0) {
            CU_ASSERT_STRING_EQUAL(nonce, NONCE);
        }
    }
}

static void test_rendezvous_refusal(void)
{
    char val[64], why[32];
    size_t n;

    n = conduit__rdv_refusal_make(val, sizeof(val), "busy");
    UNIT_EQ(n, strlen("refused: busy"));
    CU_ASSERT(conduit__rdv_refusal_parse(val, n, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "busy");
    /* Cut to the buffer, NUL-terminated, and still a refusal. */
    n = conduit__rdv_refusal_make(val, 12, "a very long reason");
    UNIT_EQ(n, 11);
    UNIT_EQ(strlen(val), 11);
    CU_ASSERT(conduit__rdv_refusal_parse(val, n, NULL, 0));
    /* Control characters from the peer are not shown; long reasons are cut. */
    CU_ASSERT(conduit__rdv_refusal_parse("refused: a\x1b[2Jb\n", 16, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "a?[2Jb?");
    CU_ASSERT(conduit__rdv_refusal_parse("refused: 0123456789012345678901234567890123456789", 49,
                                         why, 8));
    CU_ASSERT_STRING_EQUAL(why, "0123456");
    CU_ASSERT(conduit__rdv_refusal_parse("refused: ", 9, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "");
    /* Not refusals. */
    CU_ASSERT(!conduit__rdv_refusal_parse("refused:", 8, why, sizeof(why)));
    CU_ASSERT(!conduit__rdv_refusal_parse("Refused: x", 10, why, sizeof(why)));
    CU_ASSERT(!conduit__rdv_refusal_parse("12", 2, why, sizeof(why)));
    CU_ASSERT(!conduit__rdv_refusal_parse("", 0, why, sizeof(why)));
    /* len, not the NUL, bounds what is read. */
    CU_ASSERT(!conduit__rdv_refusal_parse("refused: x", 5, why, sizeof(why)));
}

enum req_fault {
    R_GOOD, R_MAGIC, R_VERSION, R_SERVER, R_CLIENT_RANGE, R_PORT, R_PORT_PREFIX, R_PORT_LONGER,
    R_NONCE_UPPER, R_NONCE_NUL
};

static void test_rendezvous_request_parse(void)
{
    static const struct {
        enum req_fault f;
        const char *why; /* substring of the reason; NULL: accepted */
    } cases[] = {
        { R_GOOD, NULL },
        { R_MAGIC, "malformed request" },
        { R_VERSION, "malformed request" },
        { R_SERVER, "not 9" },
        { R_CLIENT_RANGE, "out of range" },
        { R_PORT, "another port" },
        { R_PORT_PREFIX, "another port" },
        { R_PORT_LONGER, "another port" },
        { R_NONCE_UPPER, "malformed nonce" },
        { R_NONCE_NUL, "malformed nonce" },
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        struct conduit__rdv_request req;
        char nonce[CONDUIT__NONCE_LEN + 1] = "", why[160] = "";
        int client = -1, rc;

        conduit__rdv_request_make(&req, 7, 0, NONCE, "svc");
        switch (cases[i].f) {
        case R_MAGIC:
            req.magic ^= 1;
            break;
        case R_VERSION:
            req.version = 2;
            break;
        case R_SERVER:
            req.server_domid = 9;
            break;
        case R_CLIENT_RANGE:
            req.client_domid = VCHAN_DOMID_MAX + 1;
            break;
        case R_PORT:
            memcpy(req.port, "svd", 3);
            break;
        case R_PORT_PREFIX:
            req.port[2] = '\0';
            break;
        case R_PORT_LONGER:
            req.port[3] = 'x';
            break;
        case R_NONCE_UPPER:
            req.nonce[3] = 'A';
            break;
        case R_NONCE_NUL:
            req.nonce[15] = '\0';
            break;
        default:
            break;
        }
        rc = conduit__rdv_request_parse(&req, 0, "svc", &client, nonce, why, sizeof(why));
        if (!cases[i].why) {
            UNIT_EQ_NAMED(rc, 0, errname);
            UNIT_EQ(client, 7);
            CU_ASSERT_STRING_EQUAL(nonce, NONCE);
        } else {
            UNIT_EQ_NAMED(rc, -CONDUIT_EPROTO, errname);
            if (!strstr(why, cases[i].why)) {
                CU_FAIL("reason");
                fprintf(stderr, "\n  case %zu: '%s', want '%s'\n", i, why, cases[i].why);
            }
        }
    }

    /* A 64-character port fills the field with no NUL: still parsed exactly. */
    {
        struct conduit__rdv_request req;
        char port[VCHAN_PORT_MAX + 1], nonce[CONDUIT__NONCE_LEN + 1], why[160];
        int client = -1;

        memset(port, 'p', VCHAN_PORT_MAX);
        port[VCHAN_PORT_MAX] = '\0';
        conduit__rdv_request_make(&req, 3, 0, NONCE, port);
        UNIT_EQ_NAMED(conduit__rdv_request_parse(&req, 0, port, &client, nonce, why, sizeof(why)),
                      0, errname);
        UNIT_EQ(client, 3);
        port[VCHAN_PORT_MAX - 1] = '\0';
        UNIT_EQ_NAMED(conduit__rdv_request_parse(&req, 0, port, &client, nonce, why, sizeof(why)),
                      -CONDUIT_EPROTO, errname);
    }
}

static void test_rendezvous_reply_parse(void)
{
    struct conduit__rdv_reply rep;
    char why[CONDUIT__RDV_WHY_LEN + 8];
    int refusal = -1;

    conduit__rdv_reply_make(&rep, 0, NULL);
    UNIT_EQ_NAMED(conduit__rdv_reply_parse(&rep, &refusal, why, sizeof(why)), 0, errname);
    UNIT_EQ(refusal, 0);

    conduit__rdv_reply_make(&rep, CONDUIT_EPERM, "not you");
    UNIT_EQ_NAMED(conduit__rdv_reply_parse(&rep, &refusal, why, sizeof(why)), 0, errname);
    UNIT_EQ_NAMED(refusal, CONDUIT_EPERM, errname);
    CU_ASSERT_STRING_EQUAL(why, "not you");

    /* A refusal is final: EAGAIN from the peer becomes EIO; codes out of the table too. */
    {
        static const int32_t statuses[] = { CONDUIT_EAGAIN, -1, INT32_MIN, INT32_MAX,
                                            CONDUIT_ERRNO_MAX };
        for (size_t i = 0; i < UNIT_ARRAY_LEN(statuses); i++) {
            conduit__rdv_reply_make(&rep, 0, "x");
            rep.status = statuses[i];
            UNIT_EQ_NAMED(conduit__rdv_reply_parse(&rep, &refusal, why, sizeof(why)), 0, errname);
            UNIT_EQ_NAMED(refusal, CONDUIT_EIO, errname);
        }
    }

    /* No reason given: the code's text. */
    conduit__rdv_reply_make(&rep, CONDUIT_EPERM, NULL);
    UNIT_EQ_NAMED(conduit__rdv_reply_parse(&rep, &refusal, why, sizeof(why)), 0, errname);
    CU_ASSERT_STRING_EQUAL(why, conduit_strerror(CONDUIT_EPERM));

    /* An unterminated reason full of control characters: bounded and printable. */
    conduit__rdv_reply_make(&rep, CONDUIT_EPERM, NULL);
    memset(rep.why, '\a', sizeof(rep.why));
    UNIT_EQ_NAMED(conduit__rdv_reply_parse(&rep, &refusal, why, sizeof(why)), 0, errname);
    UNIT_EQ(strlen(why), CONDUIT__RDV_WHY_LEN);
    UNIT_EQ(strspn(why, "?"), CONDUIT__RDV_WHY_LEN);

    /* Malformed: magic, version. */
    conduit__rdv_reply_make(&rep, 0, NULL);
    rep.magic = CONDUIT__RDV_REQ_MAGIC; /* a request's magic is not an answer's */
    UNIT_EQ_NAMED(conduit__rdv_reply_parse(&rep, &refusal, why, sizeof(why)), -CONDUIT_EPROTO,
                  errname);
    conduit__rdv_reply_make(&rep, 0, NULL);
    rep.version = 0;
    UNIT_EQ_NAMED(conduit__rdv_reply_parse(&rep, &refusal, why, sizeof(why)), -CONDUIT_EPROTO,
                  errname);
}

/* ------------------------------------------------------------- local.c */

static char top[32], dir[48];

static void env_setup(const char *domid)
{
    snprintf(top, sizeof(top), "/tmp/test-rdv.XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(top) != NULL);
    snprintf(dir, sizeof(dir), "%s/run", top);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    setenv("VCHAN_DIR", dir, 1);
    setenv("VCHAN_DOMID", domid, 1);
}

static void env_teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    if (system(cmd) != 0) {
        fprintf(stderr, "\n  cannot remove %s\n", top);
    }
    unsetenv("VCHAN_DIR");
    unsetenv("VCHAN_DOMID");
}

struct answerer {
    struct conduit__rdv_server *rs;
    int status;      /* what to answer */
    const char *why;
    int got;         /* what next() gave */
    int client;
    char nonce[CONDUIT__NONCE_LEN + 1];
};

/* Wait for one request (up to 3 s) and answer it. */
static void *answer_one(void *p)
{
    struct answerer *a = p;
    struct pollfd pfd = { .fd = conduit__rdv_server_fd(a->rs), .events = POLLIN };

    a->got = 0;
    for (int i = 0; i < 300 && a->got == 0; i++) {
        if (poll(&pfd, 1, 10) > 0) {
            a->got = conduit__rdv_server_next(a->rs, &a->client, a->nonce);
        }
    }
    if (a->got == 1) {
        conduit__rdv_server_answer(a->rs, a->status, a->why);
    }
    return NULL;
}

static void test_rendezvous_local_accept(void)
{
    struct conduit__err se = { .name = "server" }, ce = { .name = "client" };
    struct conduit__rdv_server *rs = NULL;
    struct conduit__rdv_client *rc = NULL;
    enum conduit__probe probe = CONDUIT__PROBE_NONE;
    struct answerer a = { .status = 0 };
    char path[256], where[600];
    struct stat sb;
    pthread_t t;

    env_setup("0");
    if (!UNIT_EQ_NAMED(conduit__local_rdv_server_open(&se, "svc", &rs), 0, errname)) {
        fprintf(stderr, "\n  %s\n", se.msg);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/0.accept.svc", dir);
    CU_ASSERT(lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode));

    setenv("VCHAN_DOMID", "3", 1);
    UNIT_EQ_NAMED(conduit__local_rdv_client_open(&ce, 0, "svc", vclock_deadline(3000), &rc), 0,
                  errname);
    a.rs = rs;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, answer_one, &a) == 0);
    UNIT_EQ_NAMED(conduit__rdv_client_probe(rc, NONCE, &probe), 0, errname);
    pthread_join(t, NULL);
    UNIT_EQ(probe, CONDUIT__PROBE_ACCEPT);
    UNIT_EQ(a.got, 1);
    UNIT_EQ(a.client, 3);
    CU_ASSERT_STRING_EQUAL(a.nonce, NONCE);
    UNIT_EQ(conduit__rdv_client_answer(rc), 1);
    conduit__rdv_client_where(rc, where, sizeof(where));
    CU_ASSERT(strstr(where, "0.3.svc") != NULL && strstr(where, "0.accept.svc") != NULL);

    /* A refusal reaches the client with the server's code and reason. */
    a = (struct answerer){ .rs = rs, .status = CONDUIT_EPERM, .why = "not you" };
    CU_ASSERT_FATAL(pthread_create(&t, NULL, answer_one, &a) == 0);
    UNIT_EQ_NAMED(conduit__rdv_client_probe(rc, NONCE, &probe), -CONDUIT_EPERM, errname);
    pthread_join(t, NULL);
    CU_ASSERT(strstr(ce.msg, "refused") && strstr(ce.msg, "not you"));

    /* A second listener for the same port is refused; closing removes the socket. */
    {
        struct conduit__rdv_server *rs2 = NULL;

        setenv("VCHAN_DOMID", "0", 1);
        UNIT_EQ_NAMED(conduit__local_rdv_server_open(&se, "svc", &rs2), -CONDUIT_EADDRINUSE,
                      errname);
        CU_ASSERT(rs2 == NULL);
    }
    conduit__rdv_server_close(rs);
    rs = NULL;
    CU_ASSERT(lstat(path, &sb) < 0 && errno == ENOENT);

    /* Nobody listening: nothing there (yet), not an error. */
    UNIT_EQ_NAMED(conduit__rdv_client_probe(rc, NONCE, &probe), 0, errname);
    UNIT_EQ(probe, CONDUIT__PROBE_NONE);
out:
    conduit__rdv_client_close(rc);
    conduit__rdv_server_close(rs);
    env_teardown();
}

/* A channel published for the client alone (<dir>/0.3.svc) comes before the accept service. */
static void test_rendezvous_local_direct_first(void)
{
    struct conduit__err ce = { .name = "client" };
    struct conduit__rdv_client *rc = NULL;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    enum conduit__probe probe = CONDUIT__PROBE_NONE;
    int fd;

    env_setup("3");
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/0.3.svc", dir);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    UNIT_EQ_NAMED(conduit__local_rdv_client_open(&ce, 0, "svc", vclock_deadline(1000), &rc), 0,
                  errname);
    UNIT_EQ_NAMED(conduit__rdv_client_probe(rc, NONCE, &probe), 0, errname);
    UNIT_EQ(probe, CONDUIT__PROBE_DIRECT);
    conduit__rdv_client_close(rc);
    close(fd);
    env_teardown();
}

/* A bad VCHAN_DOMID or an unsafe directory: refused with a message, nothing opened. */
static void test_rendezvous_local_bad_env(void)
{
    static const char *domids[] = { "abc", "-1", "32752", "99999999999", "1 ", "0x1" };
    struct conduit__err e = { .name = "x" };
    struct conduit__rdv_server *rs = NULL;
    struct conduit__rdv_client *rc = NULL;

    env_setup("0");
    for (size_t i = 0; i < UNIT_ARRAY_LEN(domids); i++) {
        setenv("VCHAN_DOMID", domids[i], 1);
        e.msg[0] = '\0';
        UNIT_EQ_NAMED(conduit__local_rdv_server_open(&e, "svc", &rs), -CONDUIT_EINVAL, errname);
        CU_ASSERT(rs == NULL && e.msg[0] != '\0');
        UNIT_EQ_NAMED(conduit__local_rdv_client_open(&e, 0, "svc", vclock_deadline(100), &rc),
                      -CONDUIT_EINVAL, errname);
        CU_ASSERT(rc == NULL);
    }
    /* A group-writable directory is not ours alone. */
    setenv("VCHAN_DOMID", "0", 1);
    CU_ASSERT(chmod(dir, 0770) == 0);
    e.msg[0] = '\0';
    UNIT_EQ_NAMED(conduit__local_rdv_server_open(&e, "svc", &rs), -CONDUIT_EPERM, errname);
    CU_ASSERT(rs == NULL && e.msg[0] != '\0');
    env_teardown();
}

/* Connect to the accept socket, send `len` bytes of req, read the answer (if any). */
static ssize_t hostile(const void *req, size_t len, struct conduit__rdv_reply *rep)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { 2, 0 };
    size_t got = 0;
    ssize_t n;
    int fd;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/0.accept.svc", dir);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (len && send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    if (len < sizeof(struct conduit__rdv_request)) {
        shutdown(fd, SHUT_WR); /* a short request, then nothing */
    }
    while (got < sizeof(*rep) && (n = recv(fd, (char *)rep + got, sizeof(*rep) - got, 0)) > 0) {
        got += (size_t)n;
    }
    close(fd);
    return (ssize_t)got;
}

struct hostile_run {
    const void *req;
    size_t len;
    struct conduit__rdv_reply rep;
    ssize_t got;
};

static void *hostile_thread(void *p)
{
    struct hostile_run *h = p;

    h->got = hostile(h->req, h->len, &h->rep);
    return NULL;
}

/* Malformed requests are dropped (answered EPROTO where there was a request); the server goes on. */
static void test_rendezvous_local_hostile_requests(void)
{
    struct conduit__err se = { .name = "server" };
    struct conduit__rdv_server *rs = NULL;
    struct conduit__rdv_request good, bad_magic, wrong_server, wrong_port, bad_nonce;

    env_setup("0");
    if (!UNIT_EQ_NAMED(conduit__local_rdv_server_open(&se, "svc", &rs), 0, errname)) {
        goto out;
    }
    conduit__rdv_request_make(&good, 4, 0, NONCE, "svc");
    bad_magic = good;
    bad_magic.magic = 0;
    wrong_server = good;
    wrong_server.server_domid = 5;
    wrong_port = good;
    memcpy(wrong_port.port, "svd", 3);
    bad_nonce = good;
    memcpy(bad_nonce.nonce, "not-hex-at-all!!", CONDUIT__NONCE_LEN);
    {
        const struct {
            const void *req;
            size_t len;
            bool answered; /* EPROTO sent back */
        } cases[] = {
            { &bad_magic, sizeof(bad_magic), true },
            { &wrong_server, sizeof(wrong_server), true },
            { &wrong_port, sizeof(wrong_port), true },
            { &bad_nonce, sizeof(bad_nonce), true },
            { &good, 10, false },
            { &good, 0, false },
        };

        for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
            struct hostile_run h = { .req = cases[i].req, .len = cases[i].len };
            struct pollfd pfd = { .fd = conduit__rdv_server_fd(rs), .events = POLLIN };
            char nonce[CONDUIT__NONCE_LEN + 1];
            int client = -1, got = 0;
            pthread_t t;

            CU_ASSERT_FATAL(pthread_create(&t, NULL, hostile_thread, &h) == 0);
            /* next() reads the request (up to its own short limit) and drops it. */
            CU_ASSERT(poll(&pfd, 1, 2000) == 1);
            got = conduit__rdv_server_next(rs, &client, nonce);
            pthread_join(t, NULL);
            if (!UNIT_EQ(got, 0)) {
                fprintf(stderr, "\n  case %zu taken as a request\n", i);
            }
            if (cases[i].answered) {
                UNIT_EQ(h.got, sizeof(h.rep));
                UNIT_EQ(h.rep.magic, CONDUIT__RDV_REP_MAGIC);
                UNIT_EQ_NAMED(h.rep.status, CONDUIT_EPROTO, errname);
            } else {
                UNIT_EQ(h.got, 0);
            }
        }
    }
    /* After all that, a good request is still served. */
    {
        struct hostile_run h = { .req = &good, .len = sizeof(good) };
        struct pollfd pfd = { .fd = conduit__rdv_server_fd(rs), .events = POLLIN };
        char nonce[CONDUIT__NONCE_LEN + 1];
        int client = -1;
        pthread_t t;

        CU_ASSERT_FATAL(pthread_create(&t, NULL, hostile_thread, &h) == 0);
        CU_ASSERT(poll(&pfd, 1, 2000) == 1);
        UNIT_EQ(conduit__rdv_server_next(rs, &client, nonce), 1);
        UNIT_EQ(client, 4);
        conduit__rdv_server_answer(rs, 0, NULL);
        pthread_join(t, NULL);
        UNIT_EQ(h.got, sizeof(h.rep));
        UNIT_EQ(h.rep.status, 0);
    }
out:
    conduit__rdv_server_close(rs);
    env_teardown();
}

/* Without Xen (rendezvous/none.c): every Xen entry point says so, nothing else. */
static void test_rendezvous_xen_not_built(void)
{
    struct conduit__err e = { .name = "x" };
    struct conduit__rdv_client *rc = NULL;
    struct conduit__rdv_server *rs = NULL;
    int d = -1;

    if (conduit__xen_built) {
        UNIT_SKIP("built with Xen: rendezvous/xen.c is in, none.c is not");
    }
    CU_ASSERT(conduit__xen_self_domid(&e, &d) < 0);
    CU_ASSERT(conduit__xen_domid_by_name(&e, "dom", &d) < 0);
    CU_ASSERT(conduit__xen_rdv_client_open(&e, 0, "p", vclock_deadline(10), &rc) < 0);
    CU_ASSERT(conduit__xen_rdv_server_open(&e, "p", &rs) < 0);
    CU_ASSERT(rc == NULL && rs == NULL && e.msg[0] != '\0');
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_rendezvous_domid_parse),
    UNIT_TEST(test_rendezvous_request_name),
    UNIT_TEST(test_rendezvous_refusal),
    UNIT_TEST(test_rendezvous_request_parse),
    UNIT_TEST(test_rendezvous_reply_parse),
    UNIT_TEST(test_rendezvous_local_accept),
    UNIT_TEST(test_rendezvous_local_direct_first),
    UNIT_TEST(test_rendezvous_local_bad_env),
    UNIT_TEST(test_rendezvous_local_hostile_requests),
    UNIT_TEST(test_rendezvous_xen_not_built),
};

UNIT_MAIN("rendezvous", tests)
