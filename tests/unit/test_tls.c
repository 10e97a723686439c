/* SPDX-License-Identifier: ISC */
/*
 * libconduit/layer/tls.c as a layer over a socketpair (sock.c below it on
 * both ends), driven by hand in one thread through the layer ops: the
 * handshake, data both ways, close_notify as end-of-file, a cut without one,
 * certificate verification failing (ECERT: unknown issuer, wrong name),
 * verify=0, a peer closing mid-handshake and a peer that does not speak TLS.
 * Throwaway certificates come from the `openssl` program at run time; the
 * whole program is skipped (77) without it.
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
static bool have_certs;

static const char *errname(int rc)
{
    return conduit_errname(rc);
}

/* Once: a private directory with two unrelated self-signed certificates for "localhost". */
static bool certs(void)
{
    static bool tried;
    char cmd[600];

    if (tried) {
        return have_certs;
    }
    tried = true;
    if (system("command -v openssl > /dev/null 2>&1") != 0) {
        return false;
    }
    snprintf(dir, sizeof(dir), "/tmp/test-tls.XXXXXX");
    if (!mkdtemp(dir)) {
        return false;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                 "-keyout %s/%s.key -out %s/%s.pem -days 2 -subj /CN=localhost "
                 "-addext subjectAltName=DNS:localhost > /dev/null 2>&1",
                 dir, i ? "other" : "good", dir, i ? "other" : "good");
        if (system(cmd) != 0) {
            CU_FAIL("openssl req failed");
            return false;
        }
    }
    have_certs = true;
    return true;
}

static void cleanup_certs(void)
{
    char cmd[100];

    if (dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "cannot remove %s\n", dir);
        }
    }
}

struct pair {
    struct conduit__err ce, se;
    struct conduit_listener l;
    struct conduit__layer *c, *s; /* TLS on top of sock.c */
    int cfd, sfd;                 /* the raw socket of each end */
};

/* A client with query `copts` (after ca=good.pem unless it names its own) and a server. */
static int pair_open(struct pair *p, const char *copts)
{
    struct conduit_uri *cu = NULL, *su = NULL;
    struct conduit__connect_args a = { 0 };
    struct conduit__layer *lc = NULL, *ls = NULL;
    char text[512], err[200];
    int sv[2], rc;

    memset(p, 0, sizeof(*p));
    p->cfd = p->sfd = -1;
    snprintf(p->ce.name, sizeof(p->ce.name), "client");
    snprintf(p->se.name, sizeof(p->se.name), "server");
    snprintf(p->l.err.name, sizeof(p->l.err.name), "listener");
    snprintf(text, sizeof(text), "tls+unix://%s/s.sock?cert=%s/good.pem&key=%s/good.key", dir,
             dir, dir);
    if ((rc = conduit_uri_parse(text, CONDUIT_URI_LISTEN, &su, err, sizeof(err))) < 0) {
        fprintf(stderr, "\n  %s: %s\n", text, err);
        return rc;
    }
    snprintf(text, sizeof(text), "tls+unix://%s/s.sock?%s", dir, copts);
    if ((rc = conduit_uri_parse(text, 0, &cu, err, sizeof(err))) < 0) {
        fprintf(stderr, "\n  %s: %s\n", text, err);
        goto out;
    }
    if ((rc = conduit__tls_listen(&p->l, su, NULL)) < 0) {
        fprintf(stderr, "\n  %s\n", p->l.err.msg);
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = -CONDUIT_EIO;
        goto out;
    }
    p->cfd = sv[0];
    p->sfd = sv[1];
    if ((rc = conduit__sock_layer(&p->ce, sv[0], "unix", &lc)) < 0 ||
        (rc = conduit__sock_layer(&p->se, sv[1], "unix", &ls)) < 0) {
        goto out;
    }
    a.uri = cu;
    a.deadline = vclock_deadline(5000);
    a.timeout_ms = 5000;
    if ((rc = conduit__tls_client(&p->ce, &a, lc, &p->c)) < 0) {
        fprintf(stderr, "\n  %s\n", p->ce.msg);
        goto out;
    }
    lc = NULL;
    if ((rc = conduit__tls_server(&p->l, &p->se, ls, &p->s)) < 0) {
        goto out;
    }
    ls = NULL;
out:
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
    conduit__tls_listen_free(&p->l);
}

/* A client that trusts the server's certificate and checks its name. */
static bool pair_good(struct pair *p)
{
    char opts[200];

    snprintf(opts, sizeof(opts), "servername=localhost&ca=%s/good.pem", dir);
    if (!UNIT_EQ_NAMED(pair_open(p, opts), 0, errname)) {
        pair_close(p);
        return false;
    }
    return true;
}

/* Step both handshakes until both are done or one fails; each result in *crc, *src. */
static void handshake(struct pair *p, int *crc, int *src)
{
    *crc = *src = -CONDUIT_EAGAIN;
    for (int i = 0; i < 200 && (*crc == -CONDUIT_EAGAIN || *src == -CONDUIT_EAGAIN); i++) {
        if (*crc == -CONDUIT_EAGAIN) {
            *crc = p->c->ops->handshake(p->c);
        }
        if (*src == -CONDUIT_EAGAIN) {
            *src = p->s->ops->handshake(p->s);
        }
        if ((*crc < 0 && *crc != -CONDUIT_EAGAIN) || (*src < 0 && *src != -CONDUIT_EAGAIN)) {
            /* One side failed: let the other read the alert, if any. */
            for (int j = 0; j < 10; j++) {
                if (*crc == -CONDUIT_EAGAIN) {
                    *crc = p->c->ops->handshake(p->c);
                }
                if (*src == -CONDUIT_EAGAIN) {
                    *src = p->s->ops->handshake(p->s);
                }
            }
            return;
        }
    }
}

/* Move len bytes from `from` to `to`, pumping both (non-blocking, one thread). */
static bool transfer(struct conduit__layer *from, struct conduit__layer *to, size_t len,
                     uint64_t stream)
{
    uint8_t buf[20000];
    size_t sent = 0, got = 0, n;
    int rounds = 0, rc;

    while (got < len && rounds++ < 100000) {
        if (sent < len) {
            size_t chunk = len - sent < sizeof(buf) ? len - sent : sizeof(buf);

            unit_pattern_fill(buf, chunk, stream, sent);
            n = 0;
            rc = from->ops->write(from, buf, chunk, &n);
            if (rc < 0 && rc != -CONDUIT_EAGAIN) {
                UNIT_EQ_NAMED(rc, 0, errname);
                return false;
            }
            sent += n;
        } else {
            /* Flush what the TLS layer still buffers. */
            (void)from->ops->write(from, buf, 0, &n);
        }
        n = 0;
        rc = to->ops->read(to, buf, sizeof(buf), &n);
        if (rc < 0 && rc != -CONDUIT_EAGAIN) {
            UNIT_EQ_NAMED(rc, 0, errname);
            return false;
        }
        if (rc == 0 && n == 0) {
            CU_FAIL("unexpected end-of-file");
            return false;
        }
        if (rc == 0) {
            if (!UNIT_EQ(unit_pattern_check(buf, n, stream, got), n)) {
                return false;
            }
            got += n;
        }
    }
    return UNIT_EQ(got, len);
}

#define NEED_CERTS()                                                           \
    do {                                                                       \
        if (!certs()) {                                                        \
            UNIT_SKIP("no openssl program to make certificates");              \
        }                                                                      \
    } while (0)

static void test_tls_handshake_and_data(void)
{
    struct pair p;
    char info[256] = "";
    size_t n = 0;
    uint8_t b;
    int crc, src;

    NEED_CERTS();
    /* ca= a file that is not there: refused before any I/O, naming it. */
    CU_ASSERT(pair_open(&p, "servername=localhost&ca=/nonexistent/ca.pem") < 0);
    CU_ASSERT(strstr(p.ce.msg, "/nonexistent/ca.pem") != NULL);
    pair_close(&p);
    {
        char opts[200];

        snprintf(opts, sizeof(opts), "servername=localhost&ca=%s/good.pem", dir);
        if (!UNIT_EQ_NAMED(pair_open(&p, opts), 0, errname)) {
            pair_close(&p);
            return;
        }
    }
    handshake(&p, &crc, &src);
    UNIT_EQ_NAMED(crc, 0, errname);
    UNIT_EQ_NAMED(src, 0, errname);
    p.c->ops->info(p.c, info, sizeof(info));
    CU_ASSERT(strstr(info, "TLS") != NULL && strstr(info, "CN=localhost") != NULL);

    CU_ASSERT(transfer(p.c, p.s, 300000, 1)); /* many records, beyond the 64 KiB buffer */
    CU_ASSERT(transfer(p.s, p.c, 5000, 2));

    /* close_notify: the server reads a clean end-of-file. */
    for (int i = 0; i < 10 && (crc = p.c->ops->shutdown(p.c)) == -CONDUIT_EAGAIN; i++) {
    }
    UNIT_EQ_NAMED(crc, 0, errname);
    for (int i = 0; i < 100 && (src = p.s->ops->read(p.s, &b, 1, &n)) == -CONDUIT_EAGAIN; i++) {
    }
    UNIT_EQ_NAMED(src, 0, errname);
    UNIT_EQ(n, 0);
    pair_close(&p);
}

/* The transport ends without a close_notify: a cut, not an end-of-file. */
static void test_tls_truncation(void)
{
    struct pair p;
    size_t n = 0;
    uint8_t b;
    int crc, src, rc;

    NEED_CERTS();
    if (!pair_good(&p)) {
        return;
    }
    handshake(&p, &crc, &src);
    UNIT_EQ_NAMED(crc, 0, errname);
    UNIT_EQ_NAMED(src, 0, errname);
    CU_ASSERT(shutdown(p.cfd, SHUT_WR) == 0); /* under TLS's feet */
    for (int i = 0; i < 100 && (rc = p.s->ops->read(p.s, &b, 1, &n)) == -CONDUIT_EAGAIN; i++) {
    }
    UNIT_EQ_NAMED(rc, -CONDUIT_ECONNRESET, errname);
    CU_ASSERT(strstr(p.se.msg, "close_notify") != NULL);
    pair_close(&p);
}

static void test_tls_verify_fails(void)
{
    static const struct {
        const char *name, *ca; /* ca: a file in the directory */
        const char *msg;
    } cases[] = {
        { "localhost", "other.pem", "certificate verify failed" },
        { "wrong.example", "good.pem", "not for 'wrong.example'" },
    };

    NEED_CERTS();
    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        struct pair p;
        char opts[200];
        int crc, src;

        snprintf(opts, sizeof(opts), "servername=%s&ca=%s/%s", cases[i].name, dir, cases[i].ca);
        if (!UNIT_EQ_NAMED(pair_open(&p, opts), 0, errname)) {
            pair_close(&p);
            continue;
        }
        handshake(&p, &crc, &src);
        UNIT_EQ_NAMED(crc, -CONDUIT_ECERT, errname);
        CU_ASSERT(src < 0 && src != -CONDUIT_EAGAIN); /* the client's alert ends it */
        if (!strstr(p.ce.msg, cases[i].msg)) {
            CU_FAIL("message");
            fprintf(stderr, "\n  case %zu: '%s'\n", i, p.ce.msg);
        }
        pair_close(&p);
    }
}

/* verify=0 is explicit: the same unknown certificate is accepted. */
static void test_tls_verify_off(void)
{
    struct pair p;
    char opts[200];
    int crc, src;

    NEED_CERTS();
    snprintf(opts, sizeof(opts), "servername=wrong.example&ca=%s/other.pem&verify=0", dir);
    if (UNIT_EQ_NAMED(pair_open(&p, opts), 0, errname)) {
        handshake(&p, &crc, &src);
        UNIT_EQ_NAMED(crc, 0, errname);
        UNIT_EQ_NAMED(src, 0, errname);
        CU_ASSERT(transfer(p.c, p.s, 1000, 3));
    }
    pair_close(&p);
}

/* The server vanishes after the ClientHello: the client says the peer closed mid-handshake. */
static void test_tls_server_closes_mid_handshake(void)
{
    struct pair p;
    int rc;

    NEED_CERTS();
    if (!pair_good(&p)) {
        return;
    }
    UNIT_EQ_NAMED(p.c->ops->handshake(p.c), -CONDUIT_EAGAIN, errname); /* ClientHello out */
    CU_ASSERT(shutdown(p.sfd, SHUT_RDWR) == 0); /* an end-of-file, not a reset */
    for (int i = 0; i < 10 && (rc = p.c->ops->handshake(p.c)) == -CONDUIT_EAGAIN; i++) {
    }
    /* ETLS when OpenSSL itself reports the unexpected EOF (3.x), else ECONNRESET. */
    CU_ASSERT(rc == -CONDUIT_ETLS || rc == -CONDUIT_ECONNRESET);
    if (!strstr(p.ce.msg, "peer closed the connection")) {
        CU_FAIL("message");
        fprintf(stderr, "\n  '%s'\n", p.ce.msg);
    }
    pair_close(&p);
}

/* The client vanishes after the server's first flight: the server fails, and says so. */
static void test_tls_client_closes_mid_handshake(void)
{
    struct pair p;
    int rc;

    NEED_CERTS();
    if (!pair_good(&p)) {
        return;
    }
    UNIT_EQ_NAMED(p.c->ops->handshake(p.c), -CONDUIT_EAGAIN, errname);
    UNIT_EQ_NAMED(p.s->ops->handshake(p.s), -CONDUIT_EAGAIN, errname); /* ServerHello... out */
    CU_ASSERT(shutdown(p.cfd, SHUT_RDWR) == 0);
    for (int i = 0; i < 10 && (rc = p.s->ops->handshake(p.s)) == -CONDUIT_EAGAIN; i++) {
    }
    CU_ASSERT(rc == -CONDUIT_ECONNRESET || rc == -CONDUIT_ETLS);
    if (!strstr(p.se.msg, "closed")) {
        CU_FAIL("message");
        fprintf(stderr, "\n  '%s'\n", p.se.msg);
    }
    pair_close(&p);
}

/* The server's process dies with the ClientHello unread: the kernel resets; an error, said so. */
static void test_tls_server_resets_mid_handshake(void)
{
    struct pair p;
    int rc;

    NEED_CERTS();
    if (!pair_good(&p)) {
        return;
    }
    UNIT_EQ_NAMED(p.c->ops->handshake(p.c), -CONDUIT_EAGAIN, errname);
    conduit__layer_close_all(p.s); /* closes its socket with data unread */
    p.s = NULL;
    for (int i = 0; i < 10 && (rc = p.c->ops->handshake(p.c)) == -CONDUIT_EAGAIN; i++) {
    }
    UNIT_EQ_NAMED(rc, -CONDUIT_ECONNRESET, errname);
    CU_ASSERT(strstr(p.ce.msg, "reset") != NULL);
    pair_close(&p);
}

/* Plain text where a ClientHello belongs: a TLS error, never a hang or a crash. */
static void test_tls_not_tls(void)
{
    static const char junk[] = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    struct pair p;
    int rc;

    NEED_CERTS();
    if (!pair_good(&p)) {
        return;
    }
    CU_ASSERT(write(p.cfd, junk, sizeof(junk) - 1) == (ssize_t)(sizeof(junk) - 1));
    for (int i = 0; i < 10 && (rc = p.s->ops->handshake(p.s)) == -CONDUIT_EAGAIN; i++) {
    }
    UNIT_EQ_NAMED(rc, -CONDUIT_ETLS, errname);
    CU_ASSERT(strstr(p.se.msg, "TLS handshake failed") != NULL);
    pair_close(&p);
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_tls_handshake_and_data),
    UNIT_TEST(test_tls_truncation),
    UNIT_TEST(test_tls_verify_fails),
    UNIT_TEST(test_tls_verify_off),
    UNIT_TEST(test_tls_server_closes_mid_handshake),
    UNIT_TEST(test_tls_client_closes_mid_handshake),
    UNIT_TEST(test_tls_server_resets_mid_handshake),
    UNIT_TEST(test_tls_not_tls),
};

int main(int argc, char **argv)
{
    int rc = unit_run("tls", tests, UNIT_ARRAY_LEN(tests), argc, argv);

    cleanup_certs();
    return rc;
}
