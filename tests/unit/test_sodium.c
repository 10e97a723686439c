/* SPDX-License-Identifier: ISC */
/*
 * libconduit/layer/sodium.c over two socketpairs (sock.c below it on both
 * ends), driven by hand in one thread. Between the two ends the test relays
 * the bytes itself, frame by frame, so that it can flip a byte, drop,
 * repeat or cut a frame, or hold back the end of stream: each must give its
 * own error and deliver nothing of the bad frame. Also: the handshake and
 * data both ways, half-close, keys that are not the pinned ones (on either
 * side), a peers file, peers=any, a peer that does not speak sodium, and
 * the send counter started near its end through the test hook.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "libconduit/internal/internal.h"
#include "unit.h"

static char dir[64];
static char key_a[CONDUIT_KEY_TEXT_SIZE], key_b[CONDUIT_KEY_TEXT_SIZE],
    key_c[CONDUIT_KEY_TEXT_SIZE];

static const char *errname(int rc)
{
    return conduit_errname(rc);
}

static const char *path(const char *name)
{
    static char buf[4][128];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

/* Once: three key pairs a, b, c in a private directory. */
static bool keys(void)
{
    static int state; /* 0 not tried, 1 ok, -1 failed */

    if (state == 0) {
        snprintf(dir, sizeof(dir), "/tmp/test-sodium.XXXXXX");
        state = mkdtemp(dir) && conduit_key_generate(path("a.key"), key_a) == 0 &&
                        conduit_key_generate(path("b.key"), key_b) == 0 &&
                        conduit_key_generate(path("c.key"), key_c) == 0
                    ? 1
                    : -1;
    }
    return state == 1;
}

struct pair {
    struct conduit__err ce, se;
    struct conduit_listener l;
    struct conduit__layer *c, *s; /* sodium on top of sock.c */
    int cfd, sfd;                 /* the test's ends: client's wire, server's wire */
    uint8_t buf[2][2 + 65535 + 16]; /* per direction: bytes read, not yet passed on */
    size_t len[2];
};

/* Client URI query `cq`, server query `sq` (the rest: unix, keys a (client), b (server)). */
static int pair_open(struct pair *p, const char *cq, const char *sq)
{
    struct conduit_uri *cu = NULL, *su = NULL;
    struct conduit__connect_args a = {0};
    struct conduit__layer *lc = NULL, *ls = NULL;
    char text[512], err[200];
    int c[2] = {-1, -1}, s[2] = {-1, -1}, rc;

    memset(p, 0, sizeof(*p));
    p->cfd = p->sfd = -1;
    snprintf(p->ce.name, sizeof(p->ce.name), "client");
    snprintf(p->se.name, sizeof(p->se.name), "server");
    snprintf(p->l.err.name, sizeof(p->l.err.name), "listener");
    snprintf(text, sizeof(text), "sodium+unix://%s/s.sock?%s", dir, sq);
    if ((rc = conduit_uri_parse(text, CONDUIT_URI_LISTEN, &su, err, sizeof(err))) < 0) {
        fprintf(stderr, "\n  %s: %s\n", text, err);
        return rc;
    }
    snprintf(text, sizeof(text), "sodium+unix://%s/s.sock?%s", dir, cq);
    if ((rc = conduit_uri_parse(text, 0, &cu, err, sizeof(err))) < 0) {
        fprintf(stderr, "\n  %s: %s\n", text, err);
        goto out;
    }
    if ((rc = conduit__sodium_listen(&p->l, su, NULL)) < 0) {
        fprintf(stderr, "\n  %s\n", p->l.err.msg);
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) < 0) {
        rc = -CONDUIT_EIO;
        goto out;
    }
    p->cfd = c[1];
    p->sfd = s[1];
    if ((rc = conduit__sock_layer(&p->ce, c[0], "unix", &lc)) < 0) {
        goto out;
    }
    c[0] = -1;
    if ((rc = conduit__sock_layer(&p->se, s[0], "unix", &ls)) < 0) {
        goto out;
    }
    s[0] = -1;
    a.uri = cu;
    a.deadline = vclock_deadline(5000);
    a.timeout_ms = 5000;
    if ((rc = conduit__sodium_client(&p->ce, &a, lc, &p->c)) < 0) {
        fprintf(stderr, "\n  %s\n", p->ce.msg);
        goto out;
    }
    lc = NULL;
    if ((rc = conduit__sodium_server(&p->l, &p->se, ls, &p->s)) < 0) {
        goto out;
    }
    ls = NULL;
out:
    if (c[0] >= 0) {
        close(c[0]);
    }
    if (s[0] >= 0) {
        close(s[0]);
    }
    conduit__layer_close_all(lc);
    conduit__layer_close_all(ls);
    conduit_uri_free(cu);
    conduit_uri_free(su);
    return rc;
}

static void pair_close(struct pair *p)
{
    conduit__layer_close_all(p->c);
    conduit__layer_close_all(p->s);
    conduit__sodium_listen_free(&p->l);
    if (p->cfd >= 0) {
        close(p->cfd);
    }
    if (p->sfd >= 0) {
        close(p->sfd);
    }
}

/* What the relay does to one frame of the server-to-client direction. */
enum tamper { PASS, FLIP, DROP, REPEAT, CUT, HOLD };

/*
 * Move whole frames from one wire to the other: dir 0 client -> server,
 * 1 server -> client. `mode` applies to frame number `nth` of direction 1
 * (counting from 0: the handshake's message 2 is frame 0). Returns the
 * frames passed on so far in that direction.
 */
static int relay(struct pair *p, int d, enum tamper mode, int nth, int *count)
{
    int from = d ? p->sfd : p->cfd, to = d ? p->cfd : p->sfd;
    uint8_t *b = p->buf[d];
    ssize_t n;

    for (;;) {
        size_t want = p->len[d] < 2 ? 2 : 2 + ((size_t)b[0] << 8 | b[1]);

        if (p->len[d] < want) {
            n = read(from, b + p->len[d], want - p->len[d]);
            if (n <= 0) {
                return n == 0 ? 1 : 0; /* 1: the sender closed */
            }
            p->len[d] += (size_t)n;
            continue;
        }
        /* A whole frame. */
        if (d == 1 && *count == nth && mode != PASS) {
            switch (mode) {
            case FLIP:
                b[2 + (want - 2) / 2] ^= 0x20;
                break;
            case DROP:
            case HOLD:
                p->len[d] = 0;
                (*count)++;
                continue;
            case REPEAT:
                CU_ASSERT(write(to, b, want) == (ssize_t)want);
                break;
            case CUT:
                CU_ASSERT(write(to, b, want / 2) == (ssize_t)(want / 2));
                shutdown(to, SHUT_WR);
                p->len[d] = 0;
                (*count)++;
                return 2;
            case PASS:
                break;
            }
        }
        CU_ASSERT(write(to, b, want) == (ssize_t)want);
        p->len[d] = 0;
        if (d == 1) {
            (*count)++;
        }
    }
}

/* Run both handshakes through the relay; each result in *crc, *src. */
static void handshake(struct pair *p, int *crc, int *src)
{
    int count = 0;

    *crc = *src = -CONDUIT_EAGAIN;
    for (int i = 0; i < 200 && (*crc == -CONDUIT_EAGAIN || *src == -CONDUIT_EAGAIN); i++) {
        if (*crc == -CONDUIT_EAGAIN) {
            *crc = p->c->ops->handshake(p->c);
        }
        relay(p, 0, PASS, 0, &count);
        if (*src == -CONDUIT_EAGAIN) {
            *src = p->s->ops->handshake(p->s);
        }
        if (relay(p, 1, PASS, 0, &count) == 1) {
            shutdown(p->cfd, SHUT_WR);
        }
        if ((*crc < 0 && *crc != -CONDUIT_EAGAIN) || (*src < 0 && *src != -CONDUIT_EAGAIN)) {
            /* One side failed: it closed its end; pass that on and let the other see it. */
            if (*src < 0 && *src != -CONDUIT_EAGAIN) {
                conduit__layer_close_all(p->s);
                p->s = NULL;
                shutdown(p->cfd, SHUT_WR);
            } else {
                conduit__layer_close_all(p->c);
                p->c = NULL;
                shutdown(p->sfd, SHUT_WR);
            }
            for (int j = 0; j < 10; j++) {
                if (*crc == -CONDUIT_EAGAIN && p->c) {
                    *crc = p->c->ops->handshake(p->c);
                }
                if (*src == -CONDUIT_EAGAIN && p->s) {
                    *src = p->s->ops->handshake(p->s);
                }
            }
            return;
        }
    }
}

static bool pair_up(struct pair *p, const char *cq, const char *sq)
{
    int crc, src;

    if (!UNIT_EQ_NAMED(pair_open(p, cq, sq), 0, errname)) {
        pair_close(p);
        return false;
    }
    handshake(p, &crc, &src);
    if (!UNIT_EQ_NAMED(crc, 0, errname) || !UNIT_EQ_NAMED(src, 0, errname)) {
        fprintf(stderr, "\n  client: %s\n  server: %s\n", p->ce.msg, p->se.msg);
        pair_close(p);
        return false;
    }
    return true;
}

#define NEED_KEYS()                                                          \
    do {                                                                     \
        if (!keys()) {                                                       \
            CU_FAIL("cannot make test keys");                                \
            return;                                                          \
        }                                                                    \
    } while (0)

/* The default pinning: the client pins b, the server pins a. */
static char cq_ok[256], sq_ok[256];

static void default_queries(void)
{
    snprintf(cq_ok, sizeof(cq_ok), "key=%s&peer=%s", path("a.key"), key_b);
    snprintf(sq_ok, sizeof(sq_ok), "key=%s&peer=%s", path("b.key"), key_a);
}

/*
 * The server writes `frames` writes of `size` bytes, ends its stream
 * (conduit_shutdown's end of stream) and closes; the relay passes it on with
 * `mode` applied to transport frame `nth` (1: the first after the
 * handshake); the client reads. Returns the client's last read result;
 * *got: bytes it received, every one checked against the pattern.
 */
/* The client's read size in stream(): a whole frame fits (opened straight
 * into the caller's buffer) or not (opened in the layer, read in pieces). */
static size_t read_size = 131072;

static int stream(struct pair *p, int frames, size_t size, enum tamper mode, int nth,
                  size_t *got)
{
    static uint8_t buf[131072];
    size_t total = (size_t)frames * size, sent = 0, n;
    int count = 1, rc = 0, closed = 0;

    *got = 0;
    for (int round = 0; round < 100000; round++) {
        if (p->s && sent < total) {
            size_t chunk = total - sent < size ? total - sent : size;

            unit_pattern_fill(buf, chunk, 7, sent);
            n = 0;
            rc = p->s->ops->write(p->s, buf, chunk, &n);
            if (rc < 0 && rc != -CONDUIT_EAGAIN) {
                UNIT_EQ_NAMED(rc, 0, errname);
                return rc;
            }
            sent += n;
        } else if (p->s) {
            rc = p->s->ops->shutdown(p->s);
            if (rc == 0) {
                conduit__layer_close_all(p->s); /* and its socket: the relay sees the end */
                p->s = NULL;
            } else if (rc != -CONDUIT_EAGAIN) {
                UNIT_EQ_NAMED(rc, 0, errname);
                return rc;
            }
        }
        if (!closed && (closed = relay(p, 1, mode, nth, &count)) != 0) {
            shutdown(p->cfd, SHUT_WR);
        }
        /* The client reads all there is, so that the relay's socket drains. */
        for (;;) {
            n = 0;
            rc = p->c->ops->read(p->c, buf, read_size < sizeof(buf) ? read_size : sizeof(buf),
                                 &n);
            if (rc == -CONDUIT_EAGAIN) {
                break;
            }
            if (rc < 0 || n == 0) {
                return rc;
            }
            UNIT_EQ(unit_pattern_check(buf, n, 7, *got), n);
            *got += n;
        }
    }
    CU_FAIL("the stream did not end");
    return rc;
}

static void test_sodium_data_and_eos(void)
{
    struct pair p;
    size_t got;

    NEED_KEYS();
    default_queries();
    if (!pair_up(&p, cq_ok, sq_ok)) {
        return;
    }
    /* Writes of 100000 bytes: each is split into frames of at most 65519. */
    UNIT_EQ_NAMED(stream(&p, 5, 100000, PASS, 0, &got), 0, errname);
    UNIT_EQ(got, 500000);
    CU_ASSERT(strstr(conduit_layer_name(CONDUIT_LAYER_SODIUM), "sodium") != NULL);
    pair_close(&p);
    /* The same in reads of 1000 bytes: every frame is taken in pieces. */
    if (!pair_up(&p, cq_ok, sq_ok)) {
        return;
    }
    read_size = 1000;
    UNIT_EQ_NAMED(stream(&p, 5, 100000, PASS, 0, &got), 0, errname);
    read_size = 131072;
    UNIT_EQ(got, 500000);
    pair_close(&p);
}

/* Each tamper mode: its error, and only the frames before the bad one delivered. */
static void test_sodium_tamper(void)
{
    static const struct {
        enum tamper mode;
        int code;
        const char *piece;
    } rows[] = {
        {FLIP, CONDUIT_EAUTH, "failed authentication"},
        {DROP, CONDUIT_EAUTH, "failed authentication"},
        {REPEAT, CONDUIT_EAUTH, "failed authentication"},
        {CUT, CONDUIT_ECONNRESET, "in the middle of a sodium message"},
    };

    NEED_KEYS();
    default_queries();
    /* Each row twice: frames read whole (into the caller's buffer), and in
     * reads of 300 bytes (through the layer's). */
    for (size_t i = 0; i < 2 * UNIT_ARRAY_LEN(rows); i++) {
        struct pair p;
        size_t got;
        int rc;

        if (!pair_up(&p, cq_ok, sq_ok)) {
            return;
        }
        read_size = i & 1 ? 300 : 131072;
        /* Frames 1 and 2 pass, frame 3 is the bad one (REPEAT: frame 3 twice). */
        rc = stream(&p, 5, 1000, rows[i / 2].mode, 3, &got);
        read_size = 131072;
        UNIT_EQ_NAMED(rc, -rows[i / 2].code, errname);
        CU_ASSERT(strstr(p.ce.msg, rows[i / 2].piece) != NULL);
        UNIT_EQ(got, (size_t)(rows[i / 2].mode == REPEAT ? 3000 : 2000));
        /* The error stays. */
        {
            uint8_t b[16];
            size_t n;
            UNIT_EQ_NAMED(p.c->ops->read(p.c, b, sizeof(b), &n), -rows[i / 2].code, errname);
        }
        pair_close(&p);
    }
}

/* A peer that vanishes without an end of stream: a truncated stream, not end-of-file. */
static void test_sodium_close_without_eos(void)
{
    struct pair p;
    size_t got;

    NEED_KEYS();
    default_queries();
    if (!pair_up(&p, cq_ok, sq_ok)) {
        return;
    }
    /* The relay holds back the last frame (the end of stream the close sends). */
    UNIT_EQ_NAMED(stream(&p, 2, 500, HOLD, 3, &got), -CONDUIT_ECONNRESET, errname);
    CU_ASSERT(strstr(p.ce.msg, "without a sodium end of stream") != NULL);
    UNIT_EQ(got, 1000);
    pair_close(&p);
}

static void test_sodium_wrong_keys(void)
{
    char cq[256], sq[256], peers[200];
    struct pair p;
    int crc, src;
    FILE *f;

    NEED_KEYS();
    /* The client pins c, the server is b: the client refuses, naming both keys. */
    snprintf(cq, sizeof(cq), "key=%s&peer=%s", path("a.key"), key_c);
    snprintf(sq, sizeof(sq), "key=%s&peers=any", path("b.key"));
    if (UNIT_EQ_NAMED(pair_open(&p, cq, sq), 0, errname)) {
        handshake(&p, &crc, &src);
        UNIT_EQ_NAMED(crc, -CONDUIT_EAUTH, errname);
        CU_ASSERT(strstr(p.ce.msg, key_b) != NULL && strstr(p.ce.msg, key_c) != NULL);
        UNIT_EQ_NAMED(src, -CONDUIT_ECONNRESET, errname);
    }
    pair_close(&p);
    /* The server pins c, the client is a: the server refuses. */
    snprintf(cq, sizeof(cq), "key=%s&peer=%s", path("a.key"), key_b);
    snprintf(sq, sizeof(sq), "key=%s&peer=%s", path("b.key"), key_c);
    if (UNIT_EQ_NAMED(pair_open(&p, cq, sq), 0, errname)) {
        handshake(&p, &crc, &src);
        UNIT_EQ_NAMED(src, -CONDUIT_EAUTH, errname);
        CU_ASSERT(strstr(p.se.msg, key_a) != NULL);
    }
    pair_close(&p);
    /* A peers file: c and a comment allowed, a not; then a allowed. */
    snprintf(peers, sizeof(peers), "%s", path("peers"));
    f = fopen(peers, "w");
    if (!f) {
        CU_FAIL("cannot write the peers file");
        return;
    }
    fprintf(f, "# allowed clients\n%s\n", key_c);
    fclose(f);
    snprintf(sq, sizeof(sq), "key=%s&peers=%s", path("b.key"), peers);
    if (UNIT_EQ_NAMED(pair_open(&p, cq, sq), 0, errname)) {
        handshake(&p, &crc, &src);
        UNIT_EQ_NAMED(src, -CONDUIT_EAUTH, errname);
        CU_ASSERT(strstr(p.se.msg, "not in the peers file") != NULL);
    }
    pair_close(&p);
    f = fopen(peers, "a");
    if (f) {
        fprintf(f, "  %s  # the client\n", key_a);
        fclose(f);
    }
    if (pair_up(&p, cq, sq)) {
        pair_close(&p);
    }
}

/* Bytes that are not a sodium handshake: refused at once, never waited on. */
static void test_sodium_not_sodium(void)
{
    static const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    struct pair p;
    int rc = -CONDUIT_EAGAIN;

    NEED_KEYS();
    default_queries();
    if (!UNIT_EQ_NAMED(pair_open(&p, cq_ok, sq_ok), 0, errname)) {
        pair_close(&p);
        return;
    }
    /* A TLS ClientHello's first bytes, straight into the server. */
    CU_ASSERT(write(p.sfd, hello, sizeof(hello) - 1) == (ssize_t)(sizeof(hello) - 1));
    for (int i = 0; i < 10 && rc == -CONDUIT_EAGAIN; i++) {
        rc = p.s->ops->handshake(p.s);
    }
    UNIT_EQ_NAMED(rc, -CONDUIT_EPROTO, errname);
    CU_ASSERT(strstr(p.se.msg, "not a sodium peer") != NULL);
    pair_close(&p);
}

/* The send counter near its end: the connection ends with EAUTH before it wraps. */
static void test_sodium_nonce_exhausted(void)
{
    uint8_t buf[10] = {0};
    struct pair p;
    size_t n;
    int rc = 0, i;

    NEED_KEYS();
    default_queries();
    if (!pair_up(&p, cq_ok, sq_ok)) {
        return;
    }
    UNIT_EQ_NAMED(conduit__sodium_set_nonce(p.s, UINT64_MAX - 3), 0, errname);
    for (i = 0; i < 5 && rc == 0; i++) {
        rc = p.s->ops->write(p.s, buf, sizeof(buf), &n);
    }
    UNIT_EQ_NAMED(rc, -CONDUIT_EAUTH, errname);
    UNIT_EQ(i, 4); /* counters 2^64-4 .. 2^64-2 were used; 2^64-1 is never */
    CU_ASSERT(strstr(p.se.msg, "nonce") != NULL);
    UNIT_EQ_NAMED(p.s->ops->write(p.s, buf, sizeof(buf), &n), -CONDUIT_EAUTH, errname);
    UNIT_EQ_NAMED(conduit__sodium_set_nonce(p.c->next, 0), -CONDUIT_EINVAL, errname);
    pair_close(&p);
}

/* Key files: never replaced, refused when others may read them. */
static void test_sodium_key_files(void)
{
    char pub[CONDUIT_KEY_TEXT_SIZE];

    NEED_KEYS();
    UNIT_EQ_NAMED(conduit_key_generate(path("a.key"), pub), -CONDUIT_EPERM, errname);
    CU_ASSERT(strstr(conduit_last_error(NULL), "exists") != NULL);
    UNIT_EQ_NAMED(conduit_key_public(path("a.key"), pub), 0, errname);
    CU_ASSERT_STRING_EQUAL(pub, key_a);
    CU_ASSERT(chmod(path("a.key"), 0640) == 0);
    UNIT_EQ_NAMED(conduit_key_public(path("a.key"), pub), -CONDUIT_EPERM, errname);
    CU_ASSERT(strstr(conduit_last_error(NULL), "chmod 600") != NULL);
    CU_ASSERT(chmod(path("a.key"), 0600) == 0);
    UNIT_EQ_NAMED(conduit_key_public(path("missing.key"), pub), -CONDUIT_ENOENT, errname);
    UNIT_EQ_NAMED(conduit_key_public(NULL, pub), -CONDUIT_EINVAL, errname);
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_sodium_data_and_eos),
    UNIT_TEST(test_sodium_tamper),
    UNIT_TEST(test_sodium_close_without_eos),
    UNIT_TEST(test_sodium_wrong_keys),
    UNIT_TEST(test_sodium_not_sodium),
    UNIT_TEST(test_sodium_nonce_exhausted),
    UNIT_TEST(test_sodium_key_files),
};

int main(int argc, char **argv)
{
    int rc = unit_run("sodium", tests, UNIT_ARRAY_LEN(tests), argc, argv);
    char cmd[100];

    if (dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "cannot remove %s\n", dir);
        }
    }
    return rc;
}
