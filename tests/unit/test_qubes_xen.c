/* SPDX-License-Identifier: ISC */
/*
 * test_qubes_xen: the Qubes API's Xen paths (libvchan/compat/qubes.c over
 * xenvchan.c and libvchan/platform/xen.c) over tests/unit/fake_xen.c, the
 * in-process grants, event channels and xenstore: server domain 1, client
 * domain 2, one thread switching domains (each handle keeps the domain it
 * was opened in). Our own domain id read from xenstore (loopback refused),
 * the keys at /local/domain/1/data/vchan/2/<port>, the async client, the
 * first wait removing the keys (and the client directory once empty), packets
 * both ways, and a destroyed peer domain seen by is_open (privileged).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <poll.h>

#include "vchan-conduit/libvchan.h"
#include "fake_xen.h"
#include "unit.h"

#define SRV 1
#define CLI 2
#define DIR_2 "/local/domain/1/data/vchan/2"

static void world(void)
{
    fake_xen_reset();
    fake_xen_add_domain(SRV);
    fake_xen_add_domain(CLI);
    setenv("VCHAN_PLATFORM", "xen", 1);
}

static void test_xen_refused(void)
{
    int fd = -1;

    world();
    fake_xen_set_domid(SRV);
    errno = 0;
    CU_ASSERT_PTR_NULL(libvchan_server_init(SRV, 512, 0, 0)); /* loopback */
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_PTR_NULL(libvchan_server_init(32752, 512, 0, 0));
    fake_xen_set_domid(CLI);
    CU_ASSERT_PTR_NULL(libvchan_client_init_async(CLI, 512, &fd));
    CU_ASSERT_PTR_NULL(libvchan_client_init_async(-3, 512, &fd));
    CU_ASSERT_FALSE(fake_xen_store_exists(DIR_2));
    CU_ASSERT_EQUAL(fake_xen_grants_live(), 0);
}

static void test_xen_async_wait_unpublish(void)
{
    struct pollfd pfd = {.events = POLLIN};
    libvchan_t *s, *s2, *c;
    uint32_t v = 0x12345678, got = 0;
    int rc = 1, rounds = 0;

    world();
    fake_xen_set_domid(SRV);
    s = libvchan_server_init(CLI, 512, 4096, 4096);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    s2 = libvchan_server_init(CLI, 513, 0, 0); /* a sibling in the same directory */
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    CU_ASSERT(fake_xen_store_exists(DIR_2 "/512/ring-ref"));
    CU_ASSERT(fake_xen_store_exists(DIR_2 "/512/event-channel"));
    CU_ASSERT_EQUAL(libvchan_is_open(s), VCHAN_WAITING);

    fake_xen_set_domid(CLI);
    c = libvchan_client_init_async(SRV, 512, &pfd.fd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(libvchan_is_open(c), VCHAN_WAITING);
    while (rc == 1 && rounds++ < 100) {
        CU_ASSERT_EQUAL_FATAL(poll(&pfd, 1, 5000), 1);
        rc = libvchan_client_init_async_finish(c, true);
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(libvchan_is_open(c), VCHAN_CONNECTED);
    CU_ASSERT_EQUAL(libvchan_send(c, &v, sizeof(v)), (int)sizeof(v));

    /* The server's first wait: the client is there, the entry goes, the sibling stays. */
    CU_ASSERT_EQUAL(libvchan_wait(s), 0);
    CU_ASSERT_EQUAL(libvchan_is_open(s), VCHAN_CONNECTED);
    CU_ASSERT_FALSE(fake_xen_store_exists(DIR_2 "/512"));
    CU_ASSERT(fake_xen_store_exists(DIR_2 "/513/ring-ref"));
    CU_ASSERT_EQUAL(libvchan_recv(s, &got, sizeof(got)), (int)sizeof(got));
    CU_ASSERT_EQUAL(got, v);
    CU_ASSERT_EQUAL(libvchan_send(s, &got, sizeof(got)), (int)sizeof(got));
    CU_ASSERT_EQUAL(libvchan_recv(c, &v, sizeof(v)), (int)sizeof(v));
    CU_ASSERT_EQUAL(v, got);

    /* Closing the sibling without a client removes its entry (the directory stays, as upstream). */
    libvchan_close(s2);
    CU_ASSERT_FALSE(fake_xen_store_exists(DIR_2 "/513"));

    /* The client's domain is destroyed: is_open says so, with no event consumed. */
    fake_xen_release_domain(CLI);
    CU_ASSERT_EQUAL(libvchan_is_open(s), VCHAN_DISCONNECTED);
    libvchan_close(c);
    libvchan_close(s);
    CU_ASSERT_EQUAL(fake_xen_grants_live(), 0);
    CU_ASSERT_EQUAL(fake_xen_ports_live(), 0);
}

/* The last entry of the client's directory: the first wait removes the directory too. */
static void test_xen_wait_removes_dir(void)
{
    libvchan_t *s, *c;

    world();
    fake_xen_set_domid(SRV);
    s = libvchan_server_init(CLI, 600, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT(fake_xen_store_exists(DIR_2 "/600/ring-ref"));
    fake_xen_set_domid(CLI);
    c = libvchan_client_init(SRV, 600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(libvchan_wait(s), 0);
    CU_ASSERT_FALSE(fake_xen_store_exists(DIR_2));
    CU_ASSERT_EQUAL(libvchan_is_open(s), VCHAN_CONNECTED);
    libvchan_close(c);
    CU_ASSERT_EQUAL(libvchan_is_open(s), VCHAN_DISCONNECTED);
    libvchan_close(s);
    CU_ASSERT_EQUAL(fake_xen_grants_live(), 0);
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_xen_refused),
    UNIT_TEST(test_xen_async_wait_unpublish),
    UNIT_TEST(test_xen_wait_removes_dir),
};

UNIT_MAIN("qubes_xen", tests)
