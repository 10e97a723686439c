/* SPDX-License-Identifier: ISC */
/*
 * test_xenvchan_xen: the libxenvchan drop-in's Xen paths
 * (libvchan/compat/xenvchan.c over libvchan/platform/xen.c) over
 * tests/unit/fake_xen.c: server domain 1, client domain 2, one thread
 * switching domains. A xenstore path outside data/vchan, as libxl gives
 * vchan-socket-proxy for a stubdomain's QMP
 * (/local/domain/<dm>/device-model/<guest>/qmp-vchan), is used as it is:
 * keys published there, readable by the client alone, a stream through it,
 * the path removed on close and its parent left; malformed paths refused.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <string.h>

#include "include/compat/libxenvchan.h"
#include "fake_xen.h"
#include "unit.h"

#define SRV 1
#define CLI 2
#define DM_DIR "/local/domain/1/device-model/7"
#define QMP DM_DIR "/qmp-vchan"

static void world(void)
{
    fake_xen_reset();
    fake_xen_add_domain(SRV);
    fake_xen_add_domain(CLI);
    setenv("VCHAN_PLATFORM", "xen", 1);
}

static void test_own_path_stream(void)
{
    struct libxenvchan *s, *c;
    char buf[64];
    int n;

    world();
    fake_xen_store_write(DM_DIR "/state", "running"); /* libxl's directory, not ours */
    fake_xen_set_domid(SRV);
    s = libxenvchan_server_init(NULL, CLI, QMP, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s->xs_path, QMP);
    CU_ASSERT(fake_xen_store_exists(QMP "/ring-ref"));
    CU_ASSERT(fake_xen_store_exists(QMP "/event-channel"));
    CU_ASSERT(fake_xen_store_readable(QMP "/ring-ref", CLI));
    CU_ASSERT_FALSE(fake_xen_store_readable(QMP "/ring-ref", 3));
    CU_ASSERT_FALSE(fake_xen_store_exists("/local/domain/1/data/vchan/2/xenvchan"));

    fake_xen_set_domid(CLI);
    c = libxenvchan_client_init(NULL, SRV, QMP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(libxenvchan_write(c, "{\"execute\":\"qmp_capabilities\"}", 30), 30);

    fake_xen_set_domid(SRV);
    CU_ASSERT_EQUAL(libxenvchan_is_open(s), 1);
    memset(buf, 0, sizeof(buf));
    n = libxenvchan_read(s, buf, sizeof(buf));
    CU_ASSERT_EQUAL(n, 30);
    CU_ASSERT_STRING_EQUAL(buf, "{\"execute\":\"qmp_capabilities\"}");
    CU_ASSERT_EQUAL(libxenvchan_write(s, "{\"return\":{}}", 13), 13);

    fake_xen_set_domid(CLI);
    memset(buf, 0, sizeof(buf));
    CU_ASSERT_EQUAL(libxenvchan_read(c, buf, sizeof(buf)), 13);
    CU_ASSERT_STRING_EQUAL(buf, "{\"return\":{}}");
    libxenvchan_close(c);

    fake_xen_set_domid(SRV);
    libxenvchan_close(s);
    CU_ASSERT_FALSE(fake_xen_store_exists(QMP));
    CU_ASSERT(fake_xen_store_exists(DM_DIR "/state")); /* the parent is libxl's: left */
    CU_ASSERT_EQUAL(fake_xen_grants_live(), 0);
}

static void test_own_path_refused(void)
{
    static const char *bad[] = {
        "relative/qmp-vchan",
        "/local/domain/1//qmp-vchan",
        "/local/domain/1/qmp-vchan/",
        "/local/domain/1/qmp vchan",
        "/",
        "/local/domain/1/device-model/7/"
        "a-path-component-that-is-far-too-long-to-leave-room-for-a-key-below-it-"
        "within-the-limit-of-the-xen-platform-which-is-one-hundred-and-sixty",
    };

    world();
    fake_xen_set_domid(SRV);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        CU_ASSERT_PTR_NULL(libxenvchan_server_init(NULL, CLI, bad[i], 0, 0));
        CU_ASSERT_EQUAL(errno, EINVAL);
    }
    fake_xen_set_domid(CLI);
    errno = 0;
    CU_ASSERT_PTR_NULL(libxenvchan_client_init(NULL, SRV, "/local/domain/1//x"));
    CU_ASSERT_EQUAL(errno, EINVAL);
    /* Nothing published anywhere, nothing granted. */
    CU_ASSERT_FALSE(fake_xen_store_exists("/local/domain/1/qmp-vchan"));
    CU_ASSERT_EQUAL(fake_xen_grants_live(), 0);
}

/* A client of a path nobody published: NULL after its look, as libxenvchan's. */
static void test_own_path_no_server(void)
{
    world();
    fake_xen_set_domid(CLI);
    CU_ASSERT_PTR_NULL(libxenvchan_client_init(NULL, SRV, QMP));
    CU_ASSERT_EQUAL(fake_xen_grants_live(), 0);
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_own_path_stream),
    UNIT_TEST(test_own_path_refused),
    UNIT_TEST(test_own_path_no_server),
};

UNIT_MAIN("xenvchan_xen", tests)
