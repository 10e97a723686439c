/* SPDX-License-Identifier: ISC */
/*
 * libvchan/platform/xen.c over tests/unit/fake_xen.c (in-process grants,
 * event channels and xenstore): server domain 1 and client domain 2 in one
 * process. The rendezvous keys and their permissions, lookup and mapping,
 * data both ways (rings in the control page and in granted pages), close
 * unpublishing and releasing every grant and port, a missing server timing
 * out, hostile xenstore values refused with a clear message, a destroyed
 * peer domain seen through @releaseDomain.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <pthread.h>
#include <time.h>

#include "libvchan/core/internal.h"
#include "libvchan/platform/hosted.h"
#include "fake_xen.h"
#include "unit.h"

#define SRV 1
#define CLI 2
#define KEYS "/local/domain/1/data/vchan/2/"

static char errbuf[256];

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void world(void)
{
    fake_xen_reset();
    fake_xen_add_domain(SRV);
    fake_xen_add_domain(CLI);
    errbuf[0] = '\0';
}

static struct vchan_config cfg(int domain, const char *port, int timeout_ms)
{
    struct vchan_config c = VCHAN_CONFIG_INIT(.domain = domain, .port = port, .timeout_ms = timeout_ms);

    c.errbuf = errbuf;
    c.errbuf_len = sizeof(errbuf);
    return c;
}

static int server_open(struct vchan **s, const char *port, size_t rd, size_t wr)
{
    struct vchan_config c = cfg(CLI, port, 5000);

    c.read_size = rd;
    c.write_size = wr;
    fake_xen_set_domid(SRV);
    return vchan__server_open(s, &vchan__platform_xen, &c, NULL);
}

static int client_open(struct vchan **c, const char *port, int timeout_ms)
{
    struct vchan_config k = cfg(SRV, port, timeout_ms);

    fake_xen_set_domid(CLI);
    return vchan__client_open(c, &vchan__platform_xen, &k, NULL);
}

/* A decimal value > 0 at path. */
static bool key_is_number(const char *path)
{
    char *v = fake_xen_store_read(path);
    bool ok = v && v[0] >= '1' && v[0] <= '9' && strspn(v, "0123456789") == strlen(v);

    free(v);
    return ok;
}

static void all_released(void)
{
    UNIT_EQ(fake_xen_grants_live(), 0);
    UNIT_EQ(fake_xen_ports_live(), 0);
    UNIT_EQ(fake_xen_watches_live(), 0);
}

static void test_xen_platform_publish(void)
{
    struct vchan *s = NULL;

    world();
    if (!UNIT_EQ_NAMED(server_open(&s, "data", 0, 0), 0, vchan_errname)) {
        fprintf(stderr, "\n  %s\n", errbuf);
        return;
    }
    CU_ASSERT(key_is_number(KEYS "data/ring-ref"));
    CU_ASSERT(key_is_number(KEYS "data/event-channel"));
    /* Readable by the client domain only (and dom0), not by a third domain. */
    CU_ASSERT(fake_xen_store_readable(KEYS "data/ring-ref", CLI));
    CU_ASSERT(fake_xen_store_readable(KEYS "data/event-channel", CLI));
    CU_ASSERT(!fake_xen_store_readable(KEYS "data/ring-ref", 3));
    CU_ASSERT(!fake_xen_store_readable(KEYS "data/event-channel", 3));
    CU_ASSERT_EQUAL(vchan_is_open(s), VCHAN_STATE_WAITING);
    CU_ASSERT_STRING_EQUAL(vchan_platform_name(s), "xen");
    vchan_close(s);
    CU_ASSERT(!fake_xen_store_exists(KEYS "data"));
    all_released();
}

/* One message each way, then the server closes: the client reads EOF. */
static void roundtrip(size_t rd, size_t wr, size_t len)
{
    struct vchan *s = NULL, *c = NULL;
    uint8_t *out = malloc(len), *in = malloc(len);
    size_t n = 0;

    world();
    CU_ASSERT_FATAL(out && in);
    if (!UNIT_EQ_NAMED(server_open(&s, "rt", rd, wr), 0, vchan_errname) ||
        !UNIT_EQ_NAMED(client_open(&c, "rt", 2000), 0, vchan_errname)) {
        fprintf(stderr, "\n  %s\n", errbuf);
        goto out;
    }
    CU_ASSERT_EQUAL(vchan_is_open(s), VCHAN_STATE_OPEN);
    CU_ASSERT_EQUAL(vchan_is_open(c), VCHAN_STATE_OPEN);
    CU_ASSERT(vchan_read_ring_size(s) >= (rd ? rd : 1));
    CU_ASSERT_EQUAL(vchan_read_ring_size(s), vchan_write_ring_size(c));
    CU_ASSERT_EQUAL(vchan_write_ring_size(s), vchan_read_ring_size(c));

    /* Server to client: at most the ring, so one thread can do both ends. */
    if (len > vchan_write_ring_size(s)) {
        len = vchan_write_ring_size(s);
    }
    if (len > vchan_write_ring_size(c)) {
        len = vchan_write_ring_size(c);
    }
    unit_pattern_fill(out, len, 1, 0);
    UNIT_EQ_NAMED(vchan_send(s, out, len), 0, vchan_errname);
    UNIT_EQ_NAMED(vchan_recv(c, in, len), 0, vchan_errname);
    UNIT_EQ(unit_pattern_check(in, len, 1, 0), len);

    unit_pattern_fill(out, len, 2, 0);
    UNIT_EQ_NAMED(vchan_send(c, out, len), 0, vchan_errname);
    UNIT_EQ_NAMED(vchan_recv(s, in, len), 0, vchan_errname);
    UNIT_EQ(unit_pattern_check(in, len, 2, 0), len);

    /* Close removes the rendezvous; the client sees the end of the stream. */
    vchan_close(s);
    s = NULL;
    CU_ASSERT(!fake_xen_store_exists(KEYS "rt"));
    UNIT_EQ_NAMED(vchan_read(c, in, 1, &n), 0, vchan_errname);
    UNIT_EQ(n, 0);
    CU_ASSERT_EQUAL(vchan_is_open(c), VCHAN_STATE_CLOSED);
out:
    vchan_close(c);
    vchan_close(s);
    all_released();
    free(out);
    free(in);
}

static void test_xen_platform_roundtrip_in_page(void)
{
    roundtrip(1024, 2048, 1000); /* both rings inside the control page */
}

static void test_xen_platform_roundtrip_granted(void)
{
    roundtrip(65536, 1u << 20, 65536); /* 16 and 256 granted pages */
}

struct streamer {
    struct vchan *v;
    size_t len;
    int rc;
};

static void *stream_writer(void *p)
{
    struct streamer *w = p;
    uint8_t buf[7777];
    size_t pos = 0, n;

    while (pos < w->len && w->rc == 0) {
        size_t chunk = w->len - pos < sizeof(buf) ? w->len - pos : sizeof(buf);

        unit_pattern_fill(buf, chunk, 3, pos);
        w->rc = vchan_write(w->v, buf, chunk, &n);
        pos += n;
    }
    return NULL;
}

/* 8 MiB through a 64 KiB ring: the event channel wakes both sides many times. */
static void test_xen_platform_stream(void)
{
    struct vchan *s = NULL, *c = NULL;
    struct streamer w = { 0 };
    uint8_t buf[10000];
    size_t got = 0, n = 0, bad = 0;
    pthread_t t;
    int rc = 0;

    world();
    if (!UNIT_EQ_NAMED(server_open(&s, "stream", 65536, 65536), 0, vchan_errname) ||
        !UNIT_EQ_NAMED(client_open(&c, "stream", 2000), 0, vchan_errname)) {
        fprintf(stderr, "\n  %s\n", errbuf);
        goto out;
    }
    w = (struct streamer){ .v = s, .len = 8u << 20 };
    CU_ASSERT_FATAL(pthread_create(&t, NULL, stream_writer, &w) == 0);
    while (got < w.len && (rc = vchan_read(c, buf, sizeof(buf), &n)) == 0 && n > 0) {
        size_t at = unit_pattern_check(buf, n, 3, got);
        if (at != n && !bad) {
            bad = got + at + 1;
        }
        got += n;
    }
    pthread_join(t, NULL);
    UNIT_EQ_NAMED(rc, 0, vchan_errname);
    UNIT_EQ_NAMED(w.rc, 0, vchan_errname);
    UNIT_EQ(got, w.len);
    UNIT_EQ(bad, 0);
out:
    vchan_close(c);
    vchan_close(s);
    all_released();
}

static void test_xen_platform_no_server_times_out(void)
{
    struct vchan *c = NULL;
    uint64_t t0, dt;

    world();
    t0 = now_ms();
    UNIT_EQ_NAMED(client_open(&c, "nobody", 300), -VCHAN_ETIMEDOUT, vchan_errname);
    dt = now_ms() - t0;
    CU_ASSERT(c == NULL);
    CU_ASSERT(dt >= 290 && dt < 3000);
    CU_ASSERT(strstr(errbuf, KEYS "nobody") != NULL);
    all_released();
}

/* A server that appears while the client waits is found through the watch. */
static void *late_server(void *p)
{
    struct vchan **s = p;
    struct timespec ts = { 0, 150 * 1000 * 1000 };

    nanosleep(&ts, NULL);
    if (server_open(s, "late", 0, 0) != 0) {
        *s = NULL;
    }
    return NULL;
}

static void test_xen_platform_client_waits_for_server(void)
{
    struct vchan *s = NULL, *c = NULL;
    pthread_t t;
    uint64_t t0;

    world();
    CU_ASSERT_FATAL(pthread_create(&t, NULL, late_server, &s) == 0);
    t0 = now_ms();
    if (!UNIT_EQ_NAMED(client_open(&c, "late", 3000), 0, vchan_errname)) {
        fprintf(stderr, "\n  %s\n", errbuf);
    }
    /* Woken by the watch, not by the half-second recheck. */
    CU_ASSERT(now_ms() - t0 < 450);
    pthread_join(t, NULL);
    CU_ASSERT(s != NULL);
    CU_ASSERT_EQUAL(vchan_is_open(c), VCHAN_STATE_OPEN);
    vchan_close(c);
    vchan_close(s);
    all_released();
}

/* Hostile ring-ref and event-channel values: refused with EPROTO, saying which. */
static void test_xen_platform_hostile_keys(void)
{
    static const struct {
        const char *ring_ref, *evtchn;
    } cases[] = {
        { "abc", "5" },
        { "-1", "5" },
        { "99999999999", "5" },
        { "4294967296", "5" },
        { "0", "5" },
        { "", "5" },
        { " 12", "5" },
        { "12 ", "5" },
        { "0x10", "5" },
        { "+8", "5" },
        { "8", "abc" },
        { "8", "-5" },
        { "8", "99999999999" },
        { "8", "0" },
        { "8", "1e3" },
    };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(cases); i++) {
        struct vchan *c = NULL;
        int rc;

        world();
        fake_xen_store_write(KEYS "evil/ring-ref", cases[i].ring_ref);
        fake_xen_store_write(KEYS "evil/event-channel", cases[i].evtchn);
        rc = client_open(&c, "evil", 1000);
        if (!UNIT_EQ_NAMED(rc, -VCHAN_EPROTO, vchan_errname)) {
            fprintf(stderr, "\n  case %zu (%s, %s): %s\n", i, cases[i].ring_ref, cases[i].evtchn,
                    errbuf);
        }
        CU_ASSERT(c == NULL);
        CU_ASSERT(strstr(errbuf, "invalid value") != NULL);
        CU_ASSERT(strstr(errbuf, KEYS "evil/") != NULL);
        all_released();
    }
}

/* A valid-looking ring-ref that is not a grant for us: the map fails cleanly. */
static void test_xen_platform_stale_keys(void)
{
    struct vchan *c = NULL;
    int rc;

    world();
    fake_xen_store_write(KEYS "stale/ring-ref", "77");
    fake_xen_store_write(KEYS "stale/event-channel", "5");
    rc = client_open(&c, "stale", 1000);
    CU_ASSERT(rc < 0 && rc != -VCHAN_ETIMEDOUT);
    CU_ASSERT(c == NULL);
    CU_ASSERT(errbuf[0] != '\0');
    all_released();
}

static void test_xen_platform_bad_own_domid(void)
{
    static const char *values[] = { "abc", "-1", "99999999999", "32752", "" };

    for (size_t i = 0; i < UNIT_ARRAY_LEN(values); i++) {
        struct vchan *s = NULL;

        world();
        fake_xen_store_write("/local/domain/1/domid", values[i]);
        UNIT_EQ_NAMED(server_open(&s, "me", 0, 0), -VCHAN_EIO, vchan_errname);
        CU_ASSERT(strstr(errbuf, "domid") != NULL);
        CU_ASSERT(!fake_xen_store_exists(KEYS "me"));
        all_released();
    }
}

static void test_xen_platform_client_domain_missing(void)
{
    struct vchan_config c = cfg(42, "ghost", 1000);
    struct vchan *s = NULL;

    world();
    fake_xen_set_domid(SRV);
    UNIT_EQ_NAMED(vchan__server_open(&s, &vchan__platform_xen, &c, NULL), -VCHAN_ENOENT,
                  vchan_errname);
    CU_ASSERT(!fake_xen_store_exists("/local/domain/1/data/vchan/42"));
    all_released();
}

/* xenstored answers EAGAIN to a commit that raced: the publish is redone. */
static void test_xen_platform_publish_retries(void)
{
    struct vchan *s = NULL;

    world();
    fake_xen_fail_commits(2);
    UNIT_EQ_NAMED(server_open(&s, "retry", 0, 0), 0, vchan_errname);
    UNIT_EQ(fake_xen_commits(), 3);
    CU_ASSERT(key_is_number(KEYS "retry/ring-ref"));
    vchan_close(s);
    all_released();
}

/*
 * Many channels at once hit xenstored's per-domain transaction quota
 * (ENOSPC): the publish is retried with backoff, and when the quota does not
 * clear, the error names it (QubesOS/qubes-issues#11059).
 */
static void test_xen_platform_publish_quota(void)
{
    char why[512] = "";
    struct vchan *s = NULL;
    struct vchan_config k =
        VCHAN_CONFIG_INIT(.domain = CLI, .port = "quota", .errbuf = why, .errbuf_len = sizeof(why));
    uint64_t t0;

    world();
    fake_xen_fail_starts(4, ENOSPC);
    UNIT_EQ_NAMED(server_open(&s, "quota", 0, 0), 0, vchan_errname);
    CU_ASSERT(key_is_number(KEYS "quota/ring-ref"));
    vchan_close(s);
    s = NULL;

    fake_xen_fail_starts(1000000, ENOSPC);
    fake_xen_set_domid(SRV);
    t0 = now_ms();
    UNIT_EQ_NAMED(vchan__server_open(&s, &vchan__platform_xen, &k, NULL), -VCHAN_EIO, vchan_errname);
    CU_ASSERT(now_ms() - t0 >= 4000);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "quota"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "tries"));
    fake_xen_fail_starts(0, 0);
    all_released();
}

/* A domU cannot ask about other domains: no death watch, the channel still works. */
static void test_xen_platform_unprivileged(void)
{
    world();
    fake_xen_set_privileged(false);
    roundtrip(0, 0, 3000);
}

/* The client domain is destroyed mid-conversation: the server's wait ends with EPIPE. */
static void test_xen_platform_peer_domain_destroyed(void)
{
    struct vchan *s = NULL, *c = NULL;
    uint8_t b;
    size_t n = 0;
    uint64_t t0;

    world();
    if (!UNIT_EQ_NAMED(server_open(&s, "doom", 0, 0), 0, vchan_errname) ||
        !UNIT_EQ_NAMED(client_open(&c, "doom", 2000), 0, vchan_errname)) {
        goto out;
    }
    vchan_set_timeout(s, 3000);
    fake_xen_release_domain(CLI);
    t0 = now_ms();
    UNIT_EQ_NAMED(vchan_read(s, &b, 1, &n), -VCHAN_EPIPE, vchan_errname);
    CU_ASSERT(now_ms() - t0 < 2000);
    CU_ASSERT(strstr(vchan_last_error(s), "gone") != NULL);
out:
    vchan_close(c);
    vchan_close(s);
    all_released();
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_xen_platform_publish),
    UNIT_TEST(test_xen_platform_roundtrip_in_page),
    UNIT_TEST(test_xen_platform_roundtrip_granted),
    UNIT_TEST(test_xen_platform_stream),
    UNIT_TEST(test_xen_platform_no_server_times_out),
    UNIT_TEST(test_xen_platform_client_waits_for_server),
    UNIT_TEST(test_xen_platform_hostile_keys),
    UNIT_TEST(test_xen_platform_stale_keys),
    UNIT_TEST(test_xen_platform_bad_own_domid),
    UNIT_TEST(test_xen_platform_client_domain_missing),
    UNIT_TEST(test_xen_platform_publish_retries),
    UNIT_TEST(test_xen_platform_publish_quota),
    UNIT_TEST(test_xen_platform_unprivileged),
    UNIT_TEST(test_xen_platform_peer_domain_destroyed),
};

UNIT_MAIN("xen_platform", tests)
