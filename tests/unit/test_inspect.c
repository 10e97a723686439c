/* SPDX-License-Identifier: ISC */
/*
 * test_inspect: libvchan/core/inspect.c, the control-page snapshot and the
 * verdicts of vchan-cat --stat, on pages written by hand as a correct peer
 * and as a hostile one would leave them.
 */
#include <string.h>

#include "libvchan/core/wire.h"
#include "unit.h"
#include "vchan.h"

static union {
    struct vchan__wire w;
    uint8_t bytes[VCHAN__PAGE_SIZE];
} page;

/* An open channel with 64 KiB rings, both empty, nobody waiting. */
static void open_page(void)
{
    memset(&page, 0, sizeof(page));
    page.w.left_order = 16;
    page.w.right_order = 16;
    page.w.cli_live = VCHAN__LIVE_OPEN;
    page.w.srv_live = VCHAN__LIVE_OPEN;
    page.w.left.prod = page.w.left.cons = 0xfffffff0u; /* about to wrap */
    page.w.right.prod = page.w.right.cons = 7;
}

static enum vchan_verdict judge(const struct vchan_page_view *before, uint64_t ms,
                                struct vchan_page_view *now, const char **why)
{
    CU_ASSERT_EQUAL_FATAL(vchan_page_inspect(&page, sizeof(page), now), 0);
    return vchan_page_verdict(before, now, ms, why);
}

static void test_inspect_fields(void)
{
    struct vchan_page_view v = VCHAN_PAGE_VIEW_INIT;

    open_page();
    page.w.left.prod += 100; /* wraps past 2^32 */
    page.w.srv_notify = VCHAN__NOTIFY_WRITE;
    CU_ASSERT_EQUAL(vchan_page_inspect(&page, sizeof(page), &v), 0);
    CU_ASSERT_FALSE(v.corrupt);
    UNIT_EQ(v.left.size, 65536u);
    UNIT_EQ(v.left.fill, 100u);
    UNIT_EQ(v.right.fill, 0u);
    UNIT_EQ(v.srv_notify, VCHAN_NOTIFY_WRITE);
    UNIT_EQ(v.size, sizeof(v));
}

static void test_inspect_refuses_bad_arguments(void)
{
    struct vchan_page_view v = VCHAN_PAGE_VIEW_INIT, unset;

    memset(&unset, 0, sizeof(unset));
    open_page();
    CU_ASSERT_EQUAL(vchan_page_inspect(NULL, sizeof(page), &v), -VCHAN_EINVAL);
    CU_ASSERT_EQUAL(vchan_page_inspect(&page, 23, &v), -VCHAN_EINVAL);
    CU_ASSERT_EQUAL(vchan_page_inspect(&page, sizeof(page), NULL), -VCHAN_EINVAL);
    CU_ASSERT_EQUAL(vchan_page_inspect(&page, sizeof(page), &unset), -VCHAN_EINVAL);
    CU_ASSERT_EQUAL(vchan_page_inspect(&page, 24, &v), 0);
}

static void test_verdict_idle_and_flowing(void)
{
    struct vchan_page_view a = VCHAN_PAGE_VIEW_INIT, b = VCHAN_PAGE_VIEW_INIT;
    const char *why = NULL;

    open_page();
    UNIT_EQ(judge(NULL, 0, &a, &why), VCHAN_VERDICT_IDLE);
    CU_ASSERT_PTR_NOT_NULL(why);
    page.w.right.prod += 4096;
    UNIT_EQ(judge(&a, 1000, &b, &why), VCHAN_VERDICT_FLOWING);
    CU_ASSERT_STRING_EQUAL(vchan_verdict_name(VCHAN_VERDICT_FLOWING), "flowing");
}

static void test_verdict_waiting(void)
{
    struct vchan_page_view a = VCHAN_PAGE_VIEW_INIT, b = VCHAN_PAGE_VIEW_INIT;
    const char *why = NULL;

    /* A stopped reader: the server's ring full. */
    open_page();
    page.w.right.prod += 65536;
    page.w.cli_notify = VCHAN__NOTIFY_READ;
    UNIT_EQ(judge(NULL, 0, &a, &why), VCHAN_VERDICT_WRITER_WAITING);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "right ring is full"));
    UNIT_EQ(judge(&a, 2000, &b, &why), VCHAN_VERDICT_WRITER_WAITING);

    /* The client asked to hear of data and there is none. */
    open_page();
    page.w.srv_notify = VCHAN__NOTIFY_WRITE;
    UNIT_EQ(judge(NULL, 0, &a, &why), VCHAN_VERDICT_READER_WAITING);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "client waits"));
}

static void test_verdict_notify_lost(void)
{
    struct vchan_page_view a = VCHAN_PAGE_VIEW_INIT, b = VCHAN_PAGE_VIEW_INIT;
    const char *why = NULL;

    /* The client waits for data that is in its ring, for two seconds. */
    open_page();
    page.w.right.prod += 10;
    page.w.srv_notify = VCHAN__NOTIFY_WRITE;
    judge(NULL, 0, &a, &why);
    UNIT_EQ(judge(&a, 2000, &b, &why), VCHAN_VERDICT_NOTIFY_LOST);
    /* Under a second it is too early to say. */
    UNIT_EQ(judge(&a, 500, &b, &why), VCHAN_VERDICT_IDLE);
}

static void test_verdict_gone_and_connecting(void)
{
    struct vchan_page_view a = VCHAN_PAGE_VIEW_INIT;
    const char *why = NULL;

    open_page();
    page.w.cli_live = VCHAN__LIVE_WAITING;
    UNIT_EQ(judge(NULL, 0, &a, &why), VCHAN_VERDICT_CONNECTING);
    page.w.cli_live = VCHAN__LIVE_CLOSED;
    UNIT_EQ(judge(NULL, 0, &a, &why), VCHAN_VERDICT_PEER_GONE);
    CU_ASSERT_STRING_EQUAL(why, "the client has closed");
    open_page();
    page.w.srv_live = VCHAN__LIVE_CLOSED;
    UNIT_EQ(judge(NULL, 0, &a, &why), VCHAN_VERDICT_PEER_GONE);
}

/* What a hostile peer can write: each is named, none is trusted. */
static void test_verdict_corrupt(void)
{
    struct vchan_page_view v = VCHAN_PAGE_VIEW_INIT;
    const char *why = NULL;

    open_page();
    page.w.left_order = 9;
    UNIT_EQ(judge(NULL, 0, &v, &why), VCHAN_VERDICT_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "left ring: order out of range (10..20): 9"));
    UNIT_EQ(v.left.size, 0u);

    open_page();
    page.w.right_order = 0xffff;
    UNIT_EQ(judge(NULL, 0, &v, &why), VCHAN_VERDICT_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "65535"));

    open_page();
    page.w.right.prod = page.w.right.cons + 65537;
    UNIT_EQ(judge(NULL, 0, &v, &why), VCHAN_VERDICT_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "right ring: prod - cons exceeds its size: 65537"));

    open_page();
    page.w.right.cons = page.w.right.prod + 1; /* consumer ahead of producer */
    UNIT_EQ(judge(NULL, 0, &v, &why), VCHAN_VERDICT_CORRUPT);

    open_page();
    page.w.left_order = page.w.right_order = VCHAN__SMALL_ORDER;
    UNIT_EQ(judge(NULL, 0, &v, &why), VCHAN_VERDICT_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "cannot go together"));

    open_page();
    page.w.srv_live = 2;
    UNIT_EQ(judge(NULL, 0, &v, &why), VCHAN_VERDICT_CORRUPT);
    open_page();
    page.w.cli_live = 200;
    UNIT_EQ(judge(NULL, 0, &v, &why), VCHAN_VERDICT_CORRUPT);
    open_page();
    page.w.cli_notify = 0x80;
    UNIT_EQ(judge(NULL, 0, &v, &why), VCHAN_VERDICT_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "client notify byte has unknown bits: 128"));

    /* The in-page pair libxenvchan uses for small rings is fine. */
    open_page();
    page.w.left_order = VCHAN__SMALL_ORDER;
    page.w.right_order = VCHAN__LARGE_ORDER;
    UNIT_EQ(judge(NULL, 0, &v, &why), VCHAN_VERDICT_IDLE);
}

/* A view from an older caller (smaller .size) is filled only that far. */
static void test_inspect_older_view(void)
{
    struct vchan_page_view v;
    size_t old = offsetof(struct vchan_page_view, problem) + sizeof(v.problem);

    memset(&v, 0xaa, sizeof(v));
    v.size = old;
    open_page();
    CU_ASSERT_EQUAL(vchan_page_inspect(&page, sizeof(page), &v), 0);
    UNIT_EQ(v.size, old);
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_inspect_fields),
    UNIT_TEST(test_inspect_refuses_bad_arguments),
    UNIT_TEST(test_verdict_idle_and_flowing),
    UNIT_TEST(test_verdict_waiting),
    UNIT_TEST(test_verdict_notify_lost),
    UNIT_TEST(test_verdict_gone_and_connecting),
    UNIT_TEST(test_verdict_corrupt),
    UNIT_TEST(test_inspect_older_view),
};

UNIT_MAIN("inspect", tests)
