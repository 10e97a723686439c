/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of libconduit's connection API (conduit.c and the transports):
 * round trips over tcp (IPv4, IPv6, "*"), unix, vchan (direct and through
 * the accept rendezvous, in threads and across fork), tls over tcp, unix
 * and vchan; certificate checks (wrong name, unknown CA, self-signed,
 * expired, client certificates) with certificates made here at run time;
 * the error table and messages; blocking, non-blocking and timeouts.
 *
 * Everything runs on the local vchan platform in a private VCHAN_DIR, on
 * loopback addresses only. Servers run in threads (CUnit asserts in the
 * main thread only) or in forked children.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "conduit.h"
#include "unit.h"

#define UNIT_EQ_ERR(actual, expected) UNIT_EQ_NAMED(actual, expected, conduit_errname)

/* Assert that a message holds a piece, showing the message when not. */
#define ASSERT_HAS(msg, piece)                                                              \
    do {                                                                                    \
        const char *m_ = (msg);                                                             \
        bool ok_ = m_ != NULL && strstr(m_, (piece)) != NULL;                               \
        if (!ok_) {                                                                         \
            fprintf(stderr, "\n  %s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, \
                    m_ ? m_ : "(null)", (piece));                                           \
        }                                                                                   \
        CU_ASSERT(ok_);                                                                     \
    } while (0)

static char tmpdir[64];
static char path_buf[8][256];

/* ------------------------------------------------------------ set-up */

static void cleanup_dir(void)
{
    char cmd[128];

    if (tmpdir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) {
            fprintf(stderr, "cannot remove %s\n", tmpdir);
        }
    }
}

static const char *tmp_path(int slot, const char *name)
{
    snprintf(path_buf[slot], sizeof(path_buf[slot]), "%s/%s", tmpdir, name);
    return path_buf[slot];
}

/* Certificates: a CA, and leaves signed by it or by themselves. */
static EVP_PKEY *new_key(void)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    EVP_PKEY *key = NULL;

    if (ctx && EVP_PKEY_keygen_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) == 1) {
        if (EVP_PKEY_keygen(ctx, &key) != 1) {
            key = NULL;
        }
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

    if (ext) {
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
}

/* A certificate for `key` named cn (+ SAN), valid from..to seconds from now, signed by ca. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, const char *san, long from, long to, X509 *ca,
                      EVP_PKEY *ca_key, bool is_ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX v3;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name);
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, ca ? ca : x, x, NULL, NULL, 0);
    add_ext(x, &v3, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (is_ca) {
        add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    if (san) {
        add_ext(x, &v3, NID_subject_alt_name, san);
    }
    X509_sign(x, ca_key ? ca_key : key, EVP_sha256());
    return x;
}

static void write_pem(const char *file, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(file, "w");

    if (!f) {
        perror(file);
        exit(1);
    }
    if (cert) {
        PEM_write_X509(f, cert);
    }
    if (key) {
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    }
    fclose(f);
}

/* ca.pem; good.pem (localhost, 127.0.0.1, ::1; key inside); expired.pem; self.pem; client.pem. */
static void make_certs(void)
{
    EVP_PKEY *ca_key = new_key(), *k1 = new_key(), *k2 = new_key(), *k3 = new_key(),
             *k4 = new_key();
    X509 *ca = new_cert(ca_key, "conduit test CA", NULL, -60, 86400, NULL, NULL, true);
    X509 *good = new_cert(k1, "localhost", "DNS:localhost,IP:127.0.0.1,IP:::1", -60, 86400, ca,
                          ca_key, false);
    X509 *expired = new_cert(k2, "localhost", "DNS:localhost,IP:127.0.0.1", -2 * 86400, -86400, ca,
                             ca_key, false);
    X509 *self =
        new_cert(k3, "localhost", "DNS:localhost,IP:127.0.0.1", -60, 86400, NULL, NULL, false);
    X509 *client = new_cert(k4, "conduit client", NULL, -60, 86400, ca, ca_key, false);

    write_pem(tmp_path(0, "ca.pem"), ca, NULL);
    write_pem(tmp_path(0, "good.pem"), good, k1);
    write_pem(tmp_path(0, "expired.pem"), expired, k2);
    write_pem(tmp_path(0, "self.pem"), self, k3);
    write_pem(tmp_path(0, "client.pem"), client, k4);
    X509_free(ca);
    X509_free(good);
    X509_free(expired);
    X509_free(self);
    X509_free(client);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
    EVP_PKEY_free(k4);
}

/* Once per process: a private directory for sockets, certificates and the local platform. */
static void setup(void)
{
    char run[128];

    if (tmpdir[0]) {
        return;
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_conduit.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(cleanup_dir);
    snprintf(run, sizeof(run), "%s/run", tmpdir);
    if (mkdir(run, 0700) < 0) {
        perror(run);
        exit(1);
    }
    setenv("VCHAN_DIR", run, 1);
    setenv("VCHAN_PLATFORM", "local", 1);
    unsetenv("VCHAN_DOMID");
    make_certs();
}

/* A TCP port that was free a moment ago (bind to 0, then release it). */
static unsigned free_port(int family)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    unsigned port = 0;
    int fd = socket(family, SOCK_STREAM, 0);

    if (fd < 0) {
        return 0;
    }
    ss.ss_family = (sa_family_t)family;
    if (family == AF_INET6) {
        ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
    } else {
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) == 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        port = family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    close(fd);
    return port;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ an echo server */

struct echo {
    struct conduit_listener *l;
    int clients; /* how many to serve, one after another */
    int rc;      /* first failure, 0 if none */
    char err[512];
    uint64_t bytes; /* echoed in all */
    pthread_t thread;
};

/* Echo until end-of-file, then end our direction where the transport can. */
static int echo_one(struct conduit *c, uint64_t *bytes, char *err, size_t errlen)
{
    static __thread uint8_t buf[32768];
    int rc;

    for (;;) {
        size_t n = 0, w = 0;

        rc = conduit_read(c, buf, sizeof(buf), &n);
        if (rc < 0) {
            break;
        }
        if (n == 0) {
            rc = conduit_shutdown(c);
            if (rc == -CONDUIT_EPIPE) {
                rc = 0; /* vchan: its client may close first */
            }
            break;
        }
        rc = conduit_write(c, buf, n, &w);
        *bytes += w;
        if (rc < 0) {
            break;
        }
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s", conduit_last_error(c));
    }
    return rc;
}

static void *echo_thread(void *p)
{
    struct echo *e = p;

    for (int i = 0; i < e->clients; i++) {
        struct conduit *c = NULL;
        int rc = conduit_accept(e->l, &c);

        if (rc < 0) {
            snprintf(e->err, sizeof(e->err), "accept: %s", conduit_listener_last_error(e->l));
        } else {
            rc = echo_one(c, &e->bytes, e->err, sizeof(e->err));
            conduit_close(c);
        }
        if (rc < 0 && e->rc == 0) {
            e->rc = rc;
        }
    }
    return NULL;
}

/* Listen on `uri` and serve `clients` connections in a thread. */
static bool echo_start(struct echo *e, const char *uri, int clients)
{
    struct conduit_options o = CONDUIT_OPTIONS_INIT(.timeout_ms = 20000);
    int rc;

    memset(e, 0, sizeof(*e));
    e->clients = clients;
    rc = conduit_listen(&e->l, uri, &o);
    if (!UNIT_EQ_ERR(rc, 0)) {
        fprintf(stderr, "\n  listen %s: %s\n", uri, conduit_last_error(NULL));
        return false;
    }
    pthread_create(&e->thread, NULL, echo_thread, e);
    return true;
}

static void echo_stop(struct echo *e)
{
    pthread_join(e->thread, NULL);
    if (e->rc != 0) {
        fprintf(stderr, "\n  echo server: %s\n", e->err);
    }
    UNIT_EQ_ERR(e->rc, 0);
    conduit_listener_close(e->l);
}

/*
 * One client round trip: send `len` pattern bytes while reading the echo,
 * then end (half-close, or on vchan just close once all came back), and
 * check every byte. Blocking I/O with a timeout.
 */
static void roundtrip(const char *uri, size_t len, uint64_t stream, size_t chunk_max)
{
    struct conduit_options o = CONDUIT_OPTIONS_INIT(.timeout_ms = 10000);
    uint8_t out[8192], in[8192];
    uint64_t sent = 0, got = 0;
    struct conduit *c = NULL;
    size_t n;
    int rc;

    rc = conduit_connect(&c, uri, &o);
    if (!UNIT_EQ_ERR(rc, 0)) {
        fprintf(stderr, "\n  connect %s: %s\n", uri, conduit_last_error(NULL));
        return;
    }
    CU_ASSERT(conduit_fd(c) >= 0);
    CU_ASSERT(conduit_info(c)[0] != '\0');
    while (got < len) {
        if (sent < len) {
            /*
             * Blocking writes of whole chunks: a chunk larger than both
             * directions' buffers together would deadlock any echo.
             */
            size_t chunk = len - sent < chunk_max ? (size_t)(len - sent) : chunk_max;

            unit_pattern_fill(out, chunk, stream, sent);
            rc = conduit_write(c, out, chunk, &n);
            if (!UNIT_EQ_ERR(rc, 0) || !UNIT_EQ(n, chunk)) {
                fprintf(stderr, "\n  write: %s\n", conduit_last_error(c));
                break;
            }
            sent += n;
        }
        /* Read what the echo has: at most what we sent, so this never waits for more. */
        while (got < sent) {
            rc = conduit_read(c, in, sent - got < sizeof(in) ? (size_t)(sent - got) : sizeof(in),
                              &n);
            if (!UNIT_EQ_ERR(rc, 0) || n == 0) {
                fprintf(stderr, "\n  read: %s (n=%zu)\n", conduit_last_error(c), n);
                goto out;
            }
            if (!UNIT_EQ(unit_pattern_check(in, n, stream, got), n)) {
                goto out;
            }
            got += n;
            if (sent < len) {
                break; /* keep both directions moving */
            }
        }
    }
    UNIT_EQ(got, len);
    /*
     * Every transport ends its stream: a half-close, or on vchan the close
     * once the echo has consumed it all. We read end-of-file either way.
     */
    UNIT_EQ_ERR(conduit_shutdown(c), 0);
    rc = conduit_read(c, in, sizeof(in), &n);
    UNIT_EQ_ERR(rc, 0);
    UNIT_EQ(n, 0);
    /* Writing after shutdown is refused. */
    UNIT_EQ_ERR(conduit_write(c, "x", 1, &n), -CONDUIT_ESHUTDOWN);
out:
    conduit_close(c);
}

static void echo_test_chunked(const char *listen_uri, const char *connect_uri, int clients,
                              size_t len, size_t chunk)
{
    struct echo e;

    setup();
    if (!echo_start(&e, listen_uri, clients)) {
        return;
    }
    for (int i = 0; i < clients; i++) {
        roundtrip(connect_uri, len, (uint64_t)i + 1, chunk);
    }
    echo_stop(&e);
    UNIT_EQ(e.bytes, (uint64_t)clients * len);
}

static void echo_test(const char *listen_uri, const char *connect_uri, int clients, size_t len)
{
    echo_test_chunked(listen_uri, connect_uri, clients, len, 8192);
}

/* ------------------------------------------------------------ tests: tables */

static void test_conduit_error_table(void)
{
    static const struct {
        int code;
        const char *name;
        bool usage;
    } rows[] = {
        {CONDUIT_EINVAL, "EINVAL", true},
        {CONDUIT_ENOMEM, "ENOMEM", false},
        {CONDUIT_ESYNTAX, "ESYNTAX", true},
        {CONDUIT_ESCHEME, "ESCHEME", true},
        {CONDUIT_EOPTION, "EOPTION", true},
        {CONDUIT_ERANGE, "ERANGE", true},
        {CONDUIT_EWILDCARD, "EWILDCARD", true},
        {CONDUIT_ENOTSUP, "ENOTSUP", true},
        {CONDUIT_EAGAIN, "EAGAIN", false},
        {CONDUIT_ETIMEDOUT, "ETIMEDOUT", false},
        {CONDUIT_ERESOLVE, "ERESOLVE", false},
        {CONDUIT_ENOENT, "ENOENT", false},
        {CONDUIT_ECONNREFUSED, "ECONNREFUSED", false},
        {CONDUIT_ECONNRESET, "ECONNRESET", false},
        {CONDUIT_EPIPE, "EPIPE", false},
        {CONDUIT_EPROTO, "EPROTO", false},
        {CONDUIT_ETLS, "ETLS", false},
        {CONDUIT_ECERT, "ECERT", false},
        {CONDUIT_EADDRINUSE, "EADDRINUSE", false},
        {CONDUIT_EPERM, "EPERM", false},
        {CONDUIT_ESHUTDOWN, "ESHUTDOWN", false},
        {CONDUIT_EIO, "EIO", false},
        {CONDUIT_EAUTH, "EAUTH", false},
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(rows); i++) {
        CU_ASSERT_STRING_EQUAL(conduit_errname(-rows[i].code), rows[i].name);
        CU_ASSERT(conduit_strerror(-rows[i].code)[0] != '\0');
        CU_ASSERT(strcmp(conduit_strerror(-rows[i].code), "unknown error") != 0);
        CU_ASSERT_EQUAL(conduit_err_is_usage(-rows[i].code), rows[i].usage);
    }
    UNIT_EQ(CONDUIT_ERRNO_MAX, UNIT_ARRAY_LEN(rows) + 1);
    CU_ASSERT_STRING_EQUAL(conduit_strerror(-CONDUIT_ERRNO_MAX), "unknown error");
}

/* Failures decided before or at connect/listen, each with its code and the piece it names. */
static void test_conduit_open_errors(void)
{
    char refused[64], unix_missing[300];
    static char long_host[300];
    struct {
        const char *uri;
        bool listen;
        int code;
        const char *piece;
    } rows[] = {
        {"bogus://x", false, CONDUIT_ESCHEME, "bogus"},
        {"tcp://h:99999", false, CONDUIT_ERANGE, "99999"},
        {"vchan://0/a b", false, CONDUIT_ESYNTAX, "a b"},
        {"tcp://*:80", false, CONDUIT_EWILDCARD, "'*'"},
        {"vchan://*/p", false, CONDUIT_EWILDCARD, "'*'"},
        {"sodium+tcp://localhost:1", false, CONDUIT_EOPTION, "key=FILE"},
        {"sodium+tcp://localhost:1?key=/nonexistent.key", false, CONDUIT_EOPTION, "must pin"},
        {"sodium+tcp://localhost:1?key=/nonexistent.key&peers=any", false, CONDUIT_EOPTION,
         "peers=any is for servers"},
        {"sodium+tcp://localhost:1?key=/nonexistent.key&peers=/nonexistent", false,
         CONDUIT_ENOENT, "peers file '/nonexistent'"},
        {"sodium+tcp://localhost:1?key=/nonexistent.key&peer="
         "xp5u1ibagT3BJes74qZgUh6RFzUHKUYgz6lihUU/3FU=", false, CONDUIT_ENOENT,
         "/nonexistent.key"},
        {"sodium+tcp://127.0.0.1:1?key=/nonexistent.key", true, CONDUIT_EOPTION, "peers=any"},
        {"tls+unix:///tmp/x.sock", false, CONDUIT_EOPTION, "servername="},
        {"tls+vchan://0/p", false, CONDUIT_EOPTION, "servername="},
        {"vchan://0/p?write-size=4096", false, CONDUIT_EOPTION,
         "write-size is chosen by the server"},
        {"tls+vchan://0/p?read-size=4096&verify=0", false, CONDUIT_EOPTION,
         "read-size is chosen by the server"},
        {"tls://127.0.0.1:1", true, CONDUIT_EOPTION, "cert="},
        {"vchan://guest7/p?timeout=1", false, CONDUIT_ERESOLVE,
         "cannot resolve domain name 'guest7': not on Xen"},
        {"tcp://no-such-host.invalid:80", false, CONDUIT_ERESOLVE, "no-such-host.invalid"},
        {refused, false, CONDUIT_ECONNREFUSED, "Connection refused"},
        {unix_missing, false, CONDUIT_ENOENT, "No such file"},
        {"tls://127.0.0.1:1?cert=/nonexistent.pem", true, CONDUIT_ETLS, "/nonexistent.pem"},
        {"tls://localhost:1?ca=/nonexistent-ca.pem", false, CONDUIT_ETLS, "/nonexistent-ca.pem"},
        {long_host, false, CONDUIT_ESYNTAX, "longer than"},
    };

    setup();
    memset(long_host, 0, sizeof(long_host));
    memcpy(long_host, "tcp://", 6);
    memset(long_host + 6, 'a', 260);
    memcpy(long_host + 266, ":80", 3);
    snprintf(refused, sizeof(refused), "tcp://127.0.0.1:%u", free_port(AF_INET));
    snprintf(unix_missing, sizeof(unix_missing), "unix://%s", tmp_path(1, "missing.sock"));
    for (size_t i = 0; i < UNIT_ARRAY_LEN(rows); i++) {
        char errbuf[512] = "";
        struct conduit_options o = CONDUIT_OPTIONS_INIT(.errbuf = errbuf, .errbuf_len = sizeof(errbuf), .timeout_ms = 2000);
        int rc;

        if (rows[i].listen) {
            struct conduit_listener *l = NULL;

            rc = conduit_listen(&l, rows[i].uri, &o);
            CU_ASSERT_PTR_NULL(l);
            conduit_listener_close(l);
        } else {
            struct conduit *c = NULL;

            rc = conduit_connect(&c, rows[i].uri, &o);
            CU_ASSERT_PTR_NULL(c);
            conduit_close(c);
        }
        if (rc != -rows[i].code) {
            fprintf(stderr, "\n  row %zu %.60s: %s\n", i, rows[i].uri, errbuf);
        }
        UNIT_EQ_ERR(rc, -rows[i].code);
        ASSERT_HAS(errbuf, rows[i].piece);
        /* The same message is this thread's last failure. */
        CU_ASSERT_STRING_EQUAL(conduit_last_error(NULL), errbuf);
    }
}

static void test_conduit_bad_platform(void)
{
    struct conduit *c = NULL;
    int rc;

    setup();
    setenv("VCHAN_PLATFORM", "bogus", 1);
    rc = conduit_connect(&c, "vchan://0/p?timeout=1", NULL);
    setenv("VCHAN_PLATFORM", "local", 1);
    UNIT_EQ_ERR(rc, -CONDUIT_EINVAL);
    ASSERT_HAS(conduit_last_error(NULL), "VCHAN_PLATFORM");
    setenv("VCHAN_DOMID", "x1", 1);
    rc = conduit_connect(&c, "vchan://0/p?timeout=1", NULL);
    unsetenv("VCHAN_DOMID");
    UNIT_EQ_ERR(rc, -CONDUIT_EINVAL);
    ASSERT_HAS(conduit_last_error(NULL), "VCHAN_DOMID");
    CU_ASSERT(conduit_err_is_usage(rc));
}

/* ------------------------------------------------------------ tests: round trips */

static void test_conduit_tcp_roundtrip(void)
{
    char l[64], c[64];
    unsigned port = free_port(AF_INET);

    snprintf(l, sizeof(l), "tcp://127.0.0.1:%u", port);
    snprintf(c, sizeof(c), "tcp://127.0.0.1:%u", port);
    echo_test(l, c, 2, 300000);
}

static void test_conduit_tcp_any_localhost(void)
{
    char l[64], c[64];
    unsigned port = free_port(AF_INET);

    /* "*" listens on every address; "localhost" may try ::1 first: both must work. */
    snprintf(l, sizeof(l), "tcp://*:%u", port);
    snprintf(c, sizeof(c), "tcp://localhost:%u", port);
    echo_test(l, c, 2, 10000);
}

static void test_conduit_tcp6_roundtrip(void)
{
    char l[64];
    unsigned port = free_port(AF_INET6);

    if (port == 0) {
        UNIT_SKIP("no IPv6 loopback here");
    }
    snprintf(l, sizeof(l), "tcp://[::1]:%u", port);
    echo_test(l, l, 1, 100000);
}

static void test_conduit_unix_roundtrip(void)
{
    char uri[300];

    setup();
    snprintf(uri, sizeof(uri), "unix://%s", tmp_path(1, "echo.sock"));
    echo_test(uri, uri, 2, 200000);
}

static void test_conduit_vchan_direct(void)
{
    /* vchan://D/P: one connection at a time; the next is published after the close. */
    echo_test("vchan://0/direct", "vchan://0/direct", 3, 300000);
}

static void test_conduit_vchan_accept(void)
{
    /* vchan://STAR/P: every client asks for, and gets, a fresh channel. */
    echo_test("vchan://*/anyone", "vchan://0/anyone", 3, 300000);
}

static void test_conduit_vchan_ring_sizes(void)
{
    /* The 1 KiB and 2 KiB rings inside the control page (libxenvchan's default). */
    echo_test_chunked("vchan://*/small?read-size=1024&write-size=2048", "vchan://0/small", 1,
                      100000, 1000);
}

static void test_conduit_tls_roundtrip(void)
{
    char l[1024], c[1024];
    unsigned port = free_port(AF_INET);

    setup();
    snprintf(l, sizeof(l), "tls://127.0.0.1:%u?cert=%s", port, tmp_path(1, "good.pem"));
    snprintf(c, sizeof(c), "tls://localhost:%u?ca=%s", port, tmp_path(2, "ca.pem"));
    echo_test(l, c, 2, 300000);
    /* By address: checked against the certificate's IP entries. */
    port = free_port(AF_INET);
    snprintf(l, sizeof(l), "tls://127.0.0.1:%u?cert=%s", port, tmp_path(1, "good.pem"));
    snprintf(c, sizeof(c), "tls://127.0.0.1:%u?ca=%s", port, tmp_path(2, "ca.pem"));
    echo_test(l, c, 1, 1000);
}

static void test_conduit_tls_unix(void)
{
    char l[1024], c[1024];

    setup();
    snprintf(l, sizeof(l), "tls+unix://%s?cert=%s", tmp_path(1, "tls.sock"),
             tmp_path(2, "good.pem"));
    snprintf(c, sizeof(c), "tls+unix://%s?ca=%s&servername=localhost", tmp_path(1, "tls.sock"),
             tmp_path(3, "ca.pem"));
    echo_test(l, c, 1, 200000);
}

static void test_conduit_tls_vchan(void)
{
    char l[1024], c[1024];

    setup();
    snprintf(l, sizeof(l), "tls+vchan://*/tlsany?cert=%s", tmp_path(1, "good.pem"));
    snprintf(c, sizeof(c), "tls+vchan://0/tlsany?ca=%s&servername=localhost",
             tmp_path(2, "ca.pem"));
    echo_test(l, c, 2, 300000);
    snprintf(l, sizeof(l), "tls+vchan://0/tlsdirect?cert=%s", tmp_path(1, "good.pem"));
    snprintf(c, sizeof(c), "tls+vchan://0/tlsdirect?ca=%s&servername=localhost",
             tmp_path(2, "ca.pem"));
    echo_test(l, c, 1, 100000);
}

/* A forked server (another process, as in real use) serving vchan://STAR/P to clients in threads.
 */
struct client_arg {
    const char *uri;
    int rc;
    char err[256];
    pthread_t t;
};

static void *client_thread(void *p)
{
    struct client_arg *a = p;
    struct conduit_options o = CONDUIT_OPTIONS_INIT(.timeout_ms = 10000);
    struct conduit *c = NULL;
    uint8_t out[4096], in[4096];
    size_t n, got;

    a->rc = conduit_connect(&c, a->uri, &o);
    if (a->rc < 0) {
        snprintf(a->err, sizeof(a->err), "%s", conduit_last_error(NULL));
        return NULL;
    }
    for (int round = 0; round < 20 && a->rc == 0; round++) {
        unit_pattern_fill(out, sizeof(out), (uint64_t)(uintptr_t)a, (uint64_t)round * 4096);
        a->rc = conduit_write(c, out, sizeof(out), &n);
        for (got = 0; a->rc == 0 && got < sizeof(out); got += n) {
            a->rc = conduit_read(c, in + got, sizeof(in) - got, &n);
            if (a->rc == 0 && n == 0) {
                a->rc = -CONDUIT_EPIPE;
            }
        }
        if (a->rc == 0 && memcmp(in, out, sizeof(out)) != 0) {
            a->rc = -CONDUIT_EPROTO;
        }
    }
    if (a->rc < 0) {
        snprintf(a->err, sizeof(a->err), "%s", conduit_last_error(c));
    }
    conduit_close(c);
    return NULL;
}

static void test_conduit_vchan_accept_forked(void)
{
    struct client_arg a[4];
    int status = 0;
    pid_t pid;

    setup();
    pid = fork();
    if (pid == 0) {
        struct echo e;

        alarm(30);
        if (!echo_start(&e, "vchan://*/forked", 4)) {
            _exit(3);
        }
        pthread_join(e.thread, NULL);
        conduit_listener_close(e.l);
        _exit(e.rc == 0 ? 0 : 1);
    }
    /* Concurrent clients: each gets its own ring, whatever order they come in. */
    for (size_t i = 0; i < UNIT_ARRAY_LEN(a); i++) {
        memset(&a[i], 0, sizeof(a[i]));
        a[i].uri = "vchan://0/forked";
        pthread_create(&a[i].t, NULL, client_thread, &a[i]);
    }
    for (size_t i = 0; i < UNIT_ARRAY_LEN(a); i++) {
        pthread_join(a[i].t, NULL);
        if (a[i].rc != 0) {
            fprintf(stderr, "\n  client %zu: %s\n", i, a[i].err);
        }
        UNIT_EQ_ERR(a[i].rc, 0);
    }
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ------------------------------------------------------------ tests: TLS verification */

static void tls_refused(const char *server_cert, const char *client_opts, int want,
                        const char *piece)
{
    struct conduit_options lo = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000), co = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000);
    struct conduit_listener *l = NULL;
    struct conduit *c = NULL;
    char lu[1024], cu[1024];
    unsigned port = free_port(AF_INET);
    struct echo e;
    int rc;

    setup();
    snprintf(lu, sizeof(lu), "tls://127.0.0.1:%u?cert=%s", port, server_cert);
    snprintf(cu, sizeof(cu), "tls://localhost:%u%s", port, client_opts);
    rc = conduit_listen(&l, lu, &lo);
    if (!UNIT_EQ_ERR(rc, 0)) {
        return;
    }
    memset(&e, 0, sizeof(e));
    e.l = l;
    e.clients = 1;
    pthread_create(&e.thread, NULL, echo_thread, &e);
    rc = conduit_connect(&c, cu, &co);
    if (rc == 0) {
        /* Refused after the handshake (TLS 1.3 client certificates): the first read says so. */
        size_t n = 0;
        uint8_t b[16];

        rc = conduit_read(c, b, sizeof(b), &n);
        CU_ASSERT(rc < 0);
        ASSERT_HAS(conduit_last_error(c), piece);
        conduit_close(c);
    } else {
        UNIT_EQ_ERR(rc, want);
        ASSERT_HAS(conduit_last_error(NULL), piece);
        ASSERT_HAS(conduit_last_error(NULL), "tls://localhost:");
    }
    pthread_join(e.thread, NULL);
    conduit_listener_close(l);
}

static void test_conduit_tls_wrong_name(void)
{
    char opts[512];

    setup();
    snprintf(opts, sizeof(opts), "?ca=%s&servername=wrong.example", tmp_path(2, "ca.pem"));
    tls_refused(tmp_path(1, "good.pem"), opts, -CONDUIT_ECERT, "hostname mismatch");
    ASSERT_HAS(conduit_last_error(NULL), "'wrong.example'");
}

static void test_conduit_tls_unknown_ca(void)
{
    /* The system's store does not know our test CA. */
    setup();
    tls_refused(tmp_path(1, "good.pem"), "", -CONDUIT_ECERT, "certificate verify failed");
}

static void test_conduit_tls_self_signed(void)
{
    char opts[512];

    setup();
    snprintf(opts, sizeof(opts), "?ca=%s", tmp_path(2, "ca.pem"));
    tls_refused(tmp_path(1, "self.pem"), opts, -CONDUIT_ECERT, "self-signed");
}

static void test_conduit_tls_expired(void)
{
    char opts[512];

    setup();
    snprintf(opts, sizeof(opts), "?ca=%s", tmp_path(2, "ca.pem"));
    tls_refused(tmp_path(1, "expired.pem"), opts, -CONDUIT_ECERT, "expired");
}

static void test_conduit_tls_verify_off(void)
{
    char l[1024], c[1024];
    unsigned port = free_port(AF_INET);

    setup();
    snprintf(l, sizeof(l), "tls://127.0.0.1:%u?cert=%s", port, tmp_path(1, "self.pem"));
    snprintf(c, sizeof(c), "tls://127.0.0.1:%u?verify=0", port);
    echo_test(l, c, 1, 1000);
}

static void test_conduit_tls_client_cert(void)
{
    char l[1024], c[1024], opts[512];
    unsigned port = free_port(AF_INET);

    setup();
    /* A listener given ca= wants a client certificate signed by it. */
    snprintf(l, sizeof(l), "tls://127.0.0.1:%u?cert=%s&ca=%s", port, tmp_path(1, "good.pem"),
             tmp_path(2, "ca.pem"));
    snprintf(c, sizeof(c), "tls://localhost:%u?ca=%s&cert=%s", port, tmp_path(2, "ca.pem"),
             tmp_path(3, "client.pem"));
    echo_test(l, c, 1, 1000);
    /* Without one it is refused. */
    snprintf(opts, sizeof(opts), "?ca=%s", tmp_path(2, "ca.pem"));
    {
        struct conduit_options lo = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000), co = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000);
        struct conduit_listener *ls = NULL;
        struct conduit *cc = NULL;
        struct echo e;
        char cu[1024];
        uint8_t b[8];
        size_t n = 0;
        int rc;

        port = free_port(AF_INET);
        snprintf(l, sizeof(l), "tls://127.0.0.1:%u?cert=%s&ca=%s", port, tmp_path(1, "good.pem"),
                 tmp_path(2, "ca.pem"));
        snprintf(cu, sizeof(cu), "tls://localhost:%u%s", port, opts);
        if (!UNIT_EQ_ERR(conduit_listen(&ls, l, &lo), 0)) {
            return;
        }
        memset(&e, 0, sizeof(e));
        e.l = ls;
        e.clients = 1;
        pthread_create(&e.thread, NULL, echo_thread, &e);
        rc = conduit_connect(&cc, cu, &co);
        if (rc == 0) {
            rc = conduit_read(cc, b, sizeof(b), &n);
        }
        CU_ASSERT(rc < 0);
        conduit_close(cc);
        pthread_join(e.thread, NULL);
        CU_ASSERT(e.rc < 0);
        ASSERT_HAS(e.err, "certificate");
        conduit_listener_close(ls);
    }
}

/* ------------------------------------------------------------ tests: I/O behaviour */

/* A connected pair: the client connects in a thread while the listener accepts here. */
struct connector {
    const char *uri;
    const struct conduit_options *opts;
    struct conduit *c;
    int rc;
    char err[512];
};

static void *connect_thread(void *p)
{
    struct connector *k = p;

    k->rc = conduit_connect(&k->c, k->uri, k->opts);
    if (k->rc < 0) {
        snprintf(k->err, sizeof(k->err), "%s", conduit_last_error(NULL));
    }
    return NULL;
}

static bool pair(const char *listen_uri, const char *connect_uri, struct conduit_listener **l,
                 struct conduit **srv, struct conduit **cli, const struct conduit_options *co)
{
    struct conduit_options lo = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000);
    struct connector k = {.uri = connect_uri, .opts = co};
    pthread_t t;
    int rc;

    *srv = *cli = NULL;
    if (!UNIT_EQ_ERR(conduit_listen(l, listen_uri, &lo), 0)) {
        return false;
    }
    /* A vchan client needs its server at work (accepting) to connect at all. */
    pthread_create(&t, NULL, connect_thread, &k);
    rc = conduit_accept(*l, srv);
    pthread_join(t, NULL);
    *cli = k.c;
    if (!UNIT_EQ_ERR(k.rc, 0)) {
        fprintf(stderr, "\n  %s\n", k.err);
        return false;
    }
    return UNIT_EQ_ERR(rc, 0);
}

static void nonblocking_on(const char *listen_uri, const char *connect_uri)
{
    struct conduit_options co = CONDUIT_OPTIONS_INIT(.nonblocking = true, .timeout_ms = 5000);
    struct conduit_listener *l = NULL;
    struct conduit *s = NULL, *c = NULL;
    uint8_t buf[4096];
    uint64_t total = 0;
    size_t n = 0;
    short ev = 0;
    int rc;

    setup();
    if (!pair(listen_uri, connect_uri, &l, &s, &c, &co)) {
        goto out;
    }
    /* Nothing to read: would block, and is not end-of-file. */
    UNIT_EQ_ERR(conduit_read(c, buf, sizeof(buf), &n), -CONDUIT_EAGAIN);
    UNIT_EQ(n, 0);
    UNIT_EQ(conduit_poll_events(c, CONDUIT_WANT_READ, &ev), 0);
    CU_ASSERT(ev & POLLIN);
    /* Fill until it would block: everything written is counted. */
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < 100000; i++) {
        rc = conduit_write(c, buf, sizeof(buf), &n);
        total += n;
        if (rc == -CONDUIT_EAGAIN) {
            break;
        }
        if (!UNIT_EQ_ERR(rc, 0)) {
            break;
        }
    }
    UNIT_EQ_ERR(rc, -CONDUIT_EAGAIN);
    CU_ASSERT(total > 0);
    UNIT_EQ(conduit_poll_events(c, CONDUIT_WANT_WRITE, &ev), 0);
    /* The server drains it (blocking), then the client can write again. */
    {
        uint64_t got = 0;

        conduit_set_timeout(s, 5000);
        while (got < total) {
            rc = conduit_read(s, buf, sizeof(buf), &n);
            if (!UNIT_EQ_ERR(rc, 0) || n == 0) {
                break;
            }
            got += n;
        }
        UNIT_EQ(got, total);
    }
    /* Room again: poll says so (sockets) or poll_events does (vchan), and a write goes in. */
    {
        struct pollfd p = {.fd = conduit_fd(c)};

        rc = -CONDUIT_EAGAIN;
        for (int i = 0; i < 100 && rc == -CONDUIT_EAGAIN; i++) {
            if (conduit_poll_events(c, CONDUIT_WANT_WRITE, &p.events) == 0) {
                poll(&p, 1, 100);
            }
            rc = conduit_write(c, buf, sizeof(buf), &n);
        }
        UNIT_EQ_ERR(rc, 0);
        CU_ASSERT(n > 0);
    }
out:
    conduit_close(c);
    conduit_close(s);
    conduit_listener_close(l);
}

static void test_conduit_nonblocking_tcp(void)
{
    char u[64];

    snprintf(u, sizeof(u), "tcp://127.0.0.1:%u", free_port(AF_INET));
    nonblocking_on(u, u);
}

static void test_conduit_nonblocking_vchan(void)
{
    nonblocking_on("vchan://*/nb", "vchan://0/nb");
}

/*
 * Blocking reads give up after the timeout, with a message saying so; a
 * later read still gets what the peer sends, and a non-blocking one says
 * EAGAIN at once. Each transport waits its own way (vchan in libvchan, a
 * socket in recv() with SO_RCVTIMEO): all must keep these rules.
 */
static void read_timeout_on(const char *uri)
{
    struct conduit_listener *l = NULL;
    struct conduit *s = NULL, *c = NULL;
    struct conduit_options co = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000);
    uint8_t b[8];
    uint64_t t0;
    size_t n;
    int rc;

    setup();
    if (pair(uri, uri, &l, &s, &c, &co)) {
        conduit_set_timeout(c, 200);
        t0 = now_ms();
        rc = conduit_read(c, b, sizeof(b), &n);
        UNIT_EQ_ERR(rc, -CONDUIT_ETIMEDOUT);
        CU_ASSERT(now_ms() - t0 >= 190 && now_ms() - t0 < 3000);
        ASSERT_HAS(conduit_last_error(c), "timed out after 0.200 s waiting for data");
        ASSERT_HAS(conduit_last_error(c), uri);
        /* Still usable: data sent now arrives. */
        UNIT_EQ_ERR(conduit_write(s, "ping", 4, &n), 0);
        UNIT_EQ_ERR(conduit_read(c, b, sizeof(b), &n), 0);
        CU_ASSERT(n >= 1 && n <= 4 && memcmp(b, "ping", n) == 0);
        /* Non-blocking, nothing there: EAGAIN, without waiting. */
        conduit_set_nonblocking(c, true);
        while (conduit_read(c, b, sizeof(b), &n) == 0 && n > 0) {
            /* the rest of "ping", if it came in pieces */
        }
        t0 = now_ms();
        UNIT_EQ_ERR(conduit_read(c, b, sizeof(b), &n), -CONDUIT_EAGAIN);
        CU_ASSERT(now_ms() - t0 < 100);
        /* Blocking again, no limit: a read waits for the data that comes. */
        conduit_set_nonblocking(c, false);
        conduit_set_timeout(c, 0);
        UNIT_EQ_ERR(conduit_write(s, "x", 1, &n), 0);
        UNIT_EQ_ERR(conduit_read(c, b, sizeof(b), &n), 0);
        UNIT_EQ(n, 1);
    }
    conduit_close(c);
    conduit_close(s);
    conduit_listener_close(l);
}

static void test_conduit_read_timeout(void)
{
    char u[300];

    read_timeout_on("vchan://0/slow");
    snprintf(u, sizeof(u), "unix://%s", tmp_path(0, "slow.sock"));
    read_timeout_on(u);
    snprintf(u, sizeof(u), "tcp://127.0.0.1:%u", free_port(AF_INET));
    read_timeout_on(u);
}

/* A client waits for its server up to the timeout, then names where it looked. */
static void test_conduit_connect_timeout(void)
{
    struct conduit *c = NULL;
    uint64_t t0;
    int rc;

    setup();
    t0 = now_ms();
    rc = conduit_connect(&c, "vchan://0/nobody?timeout=0.3", NULL);
    UNIT_EQ_ERR(rc, -CONDUIT_ETIMEDOUT);
    CU_ASSERT(now_ms() - t0 >= 290 && now_ms() - t0 < 3000);
    ASSERT_HAS(conduit_last_error(NULL), "no vchan server at ");
    ASSERT_HAS(conduit_last_error(NULL), "0.accept.nobody");
}

/* A blocking accept with a timeout, then a listener that is still fine afterwards. */
static void test_conduit_accept_timeout(void)
{
    struct conduit_options o = CONDUIT_OPTIONS_INIT(.timeout_ms = 200);
    struct conduit_listener *l = NULL;
    struct conduit *c = NULL;
    uint64_t t0;

    setup();
    if (!UNIT_EQ_ERR(conduit_listen(&l, "vchan://*/lonely", &o), 0)) {
        return;
    }
    t0 = now_ms();
    UNIT_EQ_ERR(conduit_accept(l, &c), -CONDUIT_ETIMEDOUT);
    CU_ASSERT(now_ms() - t0 >= 190);
    ASSERT_HAS(conduit_listener_last_error(l), "no client connected within 0.200 s");
    CU_ASSERT(conduit_listener_fd(l) >= 0);
    conduit_listener_close(l);
}

/*
 * Connect and I/O timeouts are separate (curl's CONNECTTIMEOUT and
 * TIMEOUT): connect-timeout= bounds the wait for a server even when
 * timeout= is long; the options replace the URI's.
 */
static void test_conduit_connect_timeout_separate(void)
{
    struct conduit_options o = CONDUIT_OPTIONS_INIT(.connect_timeout_ms = 250);
    struct conduit *c = NULL;
    uint64_t t0;

    setup();
    t0 = now_ms();
    UNIT_EQ_ERR(conduit_connect(&c, "vchan://0/absent?timeout=60&connect-timeout=0.2", NULL),
                -CONDUIT_ETIMEDOUT);
    CU_ASSERT(now_ms() - t0 >= 190 && now_ms() - t0 < 3000);
    t0 = now_ms();
    UNIT_EQ_ERR(conduit_connect(&c, "vchan://0/absent?connect-timeout=60", &o), -CONDUIT_ETIMEDOUT);
    CU_ASSERT(now_ms() - t0 >= 240 && now_ms() - t0 < 3000);
    CU_ASSERT_PTR_NULL(c);
}

/* A listener's connect-timeout bounds its blocking accept; timeout= stays the I/O one. */
static void test_conduit_accept_connect_timeout(void)
{
    struct conduit_listener *l = NULL;
    struct conduit *c = NULL;
    uint64_t t0;

    setup();
    if (!UNIT_EQ_ERR(conduit_listen(&l, "vchan://*/wait?connect-timeout=0.2&timeout=60", NULL),
                     0)) {
        return;
    }
    t0 = now_ms();
    UNIT_EQ_ERR(conduit_accept(l, &c), -CONDUIT_ETIMEDOUT);
    CU_ASSERT(now_ms() - t0 >= 190 && now_ms() - t0 < 3000);
    conduit_listener_close(l);
}

/* A non-blocking listener keeps the accept deadline too: EAGAIN, then ETIMEDOUT. */
static void test_conduit_accept_timeout_nonblocking(void)
{
    struct conduit_options o = CONDUIT_OPTIONS_INIT(.nonblocking = true, .connect_timeout_ms = 200);
    struct conduit_listener *l = NULL;
    struct conduit *c = NULL;

    setup();
    if (!UNIT_EQ_ERR(conduit_listen(&l, "vchan://*/nbwait", &o), 0)) {
        return;
    }
    UNIT_EQ_ERR(conduit_accept(l, &c), -CONDUIT_EAGAIN);
    usleep(100 * 1000);
    UNIT_EQ_ERR(conduit_accept(l, &c), -CONDUIT_EAGAIN);
    usleep(150 * 1000);
    UNIT_EQ_ERR(conduit_accept(l, &c), -CONDUIT_ETIMEDOUT);
    ASSERT_HAS(conduit_listener_last_error(l), "no client connected within 0.200 s");
    conduit_listener_close(l);
}

/* struct conduit_options is versioned: an uninitialised or foreign size is refused, clearly. */
static void test_conduit_options_versioned(void)
{
    char errbuf[256] = "";
    struct conduit_options zero;
    struct {
        struct conduit_options o;
        int newer_field;
    } newer = {CONDUIT_OPTIONS_INIT(.timeout_ms = 1000), 0};
    struct conduit *c = NULL;
    char u[300];

    setup();
    memset(&zero, 0, sizeof(zero));
    zero.errbuf = errbuf;
    zero.errbuf_len = sizeof(errbuf);
    snprintf(u, sizeof(u), "unix://%s", tmp_path(1, "nobody.sock"));
    UNIT_EQ_ERR(conduit_connect(&c, u, &zero), -CONDUIT_EINVAL);
    ASSERT_HAS(errbuf, "use CONDUIT_OPTIONS_INIT");
    ASSERT_HAS(conduit_last_error(NULL), "use CONDUIT_OPTIONS_INIT");
    /* A newer caller whose extra fields are left at zero is fine (here: ENOENT, no server). */
    newer.o.struct_size = sizeof(newer);
    UNIT_EQ_ERR(conduit_connect(&c, u, &newer.o), -CONDUIT_ENOENT);
    newer.newer_field = 1;
    UNIT_EQ_ERR(conduit_connect(&c, u, &newer.o), -CONDUIT_EINVAL);
    ASSERT_HAS(conduit_last_error(NULL), "does not know");
    CU_ASSERT_PTR_NULL(c);
}

/* End-of-file is not an error; after it, writes say the peer closed. */
static void test_conduit_eof_then_epipe(void)
{
    const char *uris[][2] = {{"vchan://0/eof", "vchan://0/eof"}, {NULL, NULL}};
    char tcp[64];

    setup();
    snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%u", free_port(AF_INET));
    uris[1][0] = uris[1][1] = tcp;
    for (size_t i = 0; i < UNIT_ARRAY_LEN(uris); i++) {
        struct conduit_options co = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000);
        struct conduit_listener *l = NULL;
        struct conduit *s = NULL, *c = NULL;
        uint8_t b[8];
        size_t n = 99;
        int rc = 0;

        if (pair(uris[i][0], uris[i][1], &l, &s, &c, &co)) {
            UNIT_EQ_ERR(conduit_write(s, "bye", 3, &n), 0);
            conduit_close(s);
            s = NULL;
            /* Data written before the close still arrives, then end-of-file. */
            UNIT_EQ_ERR(conduit_read(c, b, sizeof(b), &n), 0);
            UNIT_EQ(n, 3);
            UNIT_EQ_ERR(conduit_read(c, b, sizeof(b), &n), 0);
            UNIT_EQ(n, 0);
            /* TCP may accept a first write before the reset arrives. */
            for (int k = 0; k < 50 && rc == 0; k++) {
                rc = conduit_write(c, "x", 1, &n);
                if (rc == 0) {
                    usleep(10000);
                }
            }
            CU_ASSERT(rc == -CONDUIT_EPIPE || rc == -CONDUIT_ECONNRESET);
        }
        conduit_close(c);
        conduit_close(s);
        conduit_listener_close(l);
    }
}

/*
 * vchan's end of stream: no half-close on the wire, so conduit_shutdown
 * waits until the peer has consumed everything and then closes. Not
 * blocking: EAGAIN until drained (CONDUIT_WANT_SHUTDOWN says when); the
 * peer then reads end-of-file; what it had sent us before is still read
 * here, then end-of-file.
 */
static void test_conduit_vchan_shutdown(void)
{
    struct conduit_options co = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000);
    struct conduit_listener *l = NULL;
    struct conduit *s = NULL, *c = NULL;
    uint8_t b[1000];
    size_t n = 0;
    short ev;

    setup();
    if (pair("vchan://0/drain", "vchan://0/drain", &l, &s, &c, &co)) {
        CU_ASSERT_FALSE(conduit_has_half_close(c));
        memset(b, 7, sizeof(b));
        UNIT_EQ_ERR(conduit_write(c, b, sizeof(b), &n), 0);
        UNIT_EQ_ERR(conduit_write(s, "answer", 6, &n), 0);
        UNIT_EQ_ERR(conduit_unconsumed(c, &n), 0);
        UNIT_EQ(n, sizeof(b));
        conduit_set_nonblocking(c, true);
        UNIT_EQ(conduit_poll_events(c, CONDUIT_WANT_SHUTDOWN, &ev), 0);
        UNIT_EQ_ERR(conduit_shutdown(c), -CONDUIT_EAGAIN);
        UNIT_EQ_ERR(conduit_read(s, b, sizeof(b), &n), 0);
        UNIT_EQ(n, sizeof(b));
        UNIT_EQ(conduit_poll_events(c, CONDUIT_WANT_SHUTDOWN, &ev), 1);
        UNIT_EQ_ERR(conduit_shutdown(c), 0);
        ASSERT_HAS(conduit_info(c), "end of stream");
        UNIT_EQ(conduit_fd(c), -1);
        /* The server reads end-of-file; we still read what it had sent, then end-of-file. */
        UNIT_EQ_ERR(conduit_read(s, b, sizeof(b), &n), 0);
        UNIT_EQ(n, 0);
        UNIT_EQ_ERR(conduit_read(c, b, sizeof(b), &n), 0);
        UNIT_EQ(n, 6);
        CU_ASSERT_EQUAL(memcmp(b, "answer", 6), 0);
        UNIT_EQ_ERR(conduit_read(c, b, sizeof(b), &n), 0);
        UNIT_EQ(n, 0);
        UNIT_EQ_ERR(conduit_write(c, "x", 1, &n), -CONDUIT_ESHUTDOWN);
        /* The server's write now fails: its peer is gone. */
        UNIT_EQ_ERR(conduit_write(s, "late", 4, &n), -CONDUIT_EPIPE);
    }
    conduit_close(c);
    conduit_close(s);
    conduit_listener_close(l);
}

/* A vchan side that wrote nothing has nothing to end: it keeps reading. */
static void test_conduit_vchan_shutdown_silent(void)
{
    struct conduit_options co = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000);
    struct conduit_listener *l = NULL;
    struct conduit *s = NULL, *c = NULL;
    uint8_t b[16];
    size_t n = 0;

    setup();
    if (pair("vchan://0/silent", "vchan://0/silent", &l, &s, &c, &co)) {
        UNIT_EQ_ERR(conduit_shutdown(s), 0);
        UNIT_EQ_ERR(conduit_write(c, "later", 5, &n), 0);
        UNIT_EQ_ERR(conduit_read(s, b, sizeof(b), &n), 0);
        UNIT_EQ(n, 5);
        /* The peer closing without data of ours unread is a clean end. */
        conduit_close(c);
        c = NULL;
        UNIT_EQ_ERR(conduit_read(s, b, sizeof(b), &n), 0);
        UNIT_EQ(n, 0);
    }
    conduit_close(c);
    conduit_close(s);
    conduit_listener_close(l);
}

/* A vchan peer that closes with data of ours unread: shutdown says so. */
static void test_conduit_vchan_shutdown_peer_gone(void)
{
    struct conduit_options co = CONDUIT_OPTIONS_INIT(.timeout_ms = 5000);
    struct conduit_listener *l = NULL;
    struct conduit *s = NULL, *c = NULL;
    size_t n = 0;

    setup();
    if (pair("vchan://0/gone", "vchan://0/gone", &l, &s, &c, &co)) {
        UNIT_EQ_ERR(conduit_write(c, "unread", 6, &n), 0);
        conduit_close(s);
        s = NULL;
        UNIT_EQ_ERR(conduit_shutdown(c), -CONDUIT_EPIPE);
        ASSERT_HAS(conduit_last_error(c), "6 bytes of ours not consumed");
    }
    conduit_close(c);
    conduit_close(s);
    conduit_listener_close(l);
}

/* Half-close is a property the caller can ask for, not a transport to test. */
static void test_conduit_has_half_close(void)
{
    struct conduit_listener *l = NULL;
    struct conduit *s = NULL, *c = NULL;
    char u[300];

    setup();
    snprintf(u, sizeof(u), "unix://%s", tmp_path(1, "hc.sock"));
    if (pair(u, u, &l, &s, &c, NULL)) {
        CU_ASSERT_TRUE(conduit_has_half_close(c));
        CU_ASSERT_TRUE(conduit_has_half_close(s));
    }
    CU_ASSERT_FALSE(conduit_has_half_close(NULL));
    conduit_close(c);
    conduit_close(s);
    conduit_listener_close(l);
}

/* Two listeners on one place: the second is refused, naming the first. */
static void test_conduit_listen_in_use(void)
{
    struct conduit_listener *a = NULL, *b = NULL;
    char tcp[64], un[300];

    setup();
    snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%u", free_port(AF_INET));
    snprintf(un, sizeof(un), "unix://%s", tmp_path(1, "busy.sock"));
    const char *uris[] = {"vchan://*/busy", "vchan://0/busy", tcp, un};
    for (size_t i = 0; i < UNIT_ARRAY_LEN(uris); i++) {
        if (!UNIT_EQ_ERR(conduit_listen(&a, uris[i], NULL), 0)) {
            continue;
        }
        UNIT_EQ_ERR(conduit_listen(&b, uris[i], NULL), -CONDUIT_EADDRINUSE);
        CU_ASSERT_PTR_NULL(b);
        conduit_listener_close(a);
        /* ... and free again once closed. */
        if (UNIT_EQ_ERR(conduit_listen(&b, uris[i], NULL), 0)) {
            conduit_listener_close(b);
        }
        a = b = NULL;
    }
}

/* A UNIX socket left behind by a dead server is replaced; a file that is no socket is not. */
static void test_conduit_unix_stale(void)
{
    struct conduit_listener *l = NULL;
    char uri[300];
    FILE *f;
    pid_t pid;
    int status;

    setup();
    snprintf(uri, sizeof(uri), "unix://%s", tmp_path(1, "stale.sock"));
    pid = fork();
    if (pid == 0) {
        struct conduit_listener *dead = NULL;

        _exit(conduit_listen(&dead, uri, NULL) == 0 ? 0 : 1); /* dies without closing */
    }
    waitpid(pid, &status, 0);
    if (UNIT_EQ_ERR(conduit_listen(&l, uri, NULL), 0)) {
        conduit_listener_close(l);
    }
    f = fopen(tmp_path(1, "plain-file"), "w");
    if (f) {
        fclose(f);
    }
    snprintf(uri, sizeof(uri), "unix://%s", tmp_path(1, "plain-file"));
    UNIT_EQ_ERR(conduit_listen(&l, uri, NULL), -CONDUIT_EADDRINUSE);
    ASSERT_HAS(conduit_last_error(NULL), "not a socket");
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_conduit_error_table),
    UNIT_TEST(test_conduit_open_errors),
    UNIT_TEST(test_conduit_bad_platform),
    UNIT_TEST(test_conduit_tcp_roundtrip),
    UNIT_TEST(test_conduit_tcp_any_localhost),
    UNIT_TEST(test_conduit_tcp6_roundtrip),
    UNIT_TEST(test_conduit_unix_roundtrip),
    UNIT_TEST(test_conduit_vchan_direct),
    UNIT_TEST(test_conduit_vchan_accept),
    UNIT_TEST(test_conduit_vchan_ring_sizes),
    UNIT_TEST(test_conduit_vchan_accept_forked),
    UNIT_TEST(test_conduit_tls_roundtrip),
    UNIT_TEST(test_conduit_tls_unix),
    UNIT_TEST(test_conduit_tls_vchan),
    UNIT_TEST(test_conduit_tls_wrong_name),
    UNIT_TEST(test_conduit_tls_unknown_ca),
    UNIT_TEST(test_conduit_tls_self_signed),
    UNIT_TEST(test_conduit_tls_expired),
    UNIT_TEST(test_conduit_tls_verify_off),
    UNIT_TEST(test_conduit_tls_client_cert),
    UNIT_TEST(test_conduit_nonblocking_tcp),
    UNIT_TEST(test_conduit_nonblocking_vchan),
    UNIT_TEST(test_conduit_read_timeout),
    UNIT_TEST(test_conduit_connect_timeout),
    UNIT_TEST(test_conduit_accept_timeout),
    UNIT_TEST(test_conduit_eof_then_epipe),
    UNIT_TEST(test_conduit_vchan_shutdown),
    UNIT_TEST(test_conduit_vchan_shutdown_silent),
    UNIT_TEST(test_conduit_vchan_shutdown_peer_gone),
    UNIT_TEST(test_conduit_has_half_close),
    UNIT_TEST(test_conduit_connect_timeout_separate),
    UNIT_TEST(test_conduit_accept_connect_timeout),
    UNIT_TEST(test_conduit_accept_timeout_nonblocking),
    UNIT_TEST(test_conduit_options_versioned),
    UNIT_TEST(test_conduit_listen_in_use),
    UNIT_TEST(test_conduit_unix_stale),
};

UNIT_MAIN("conduit", tests)
