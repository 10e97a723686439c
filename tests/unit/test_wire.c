/* SPDX-License-Identifier: ISC */
/*
 * The control page layout (libvchan/core/wire.h) against Xen's own public header
 * xen/io/libxenvchan.h: every field's offset and size, and the notify bits.
 * Without Xen's header this test fails (it must not pass by checking
 * nothing): install libxen-dev.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stddef.h>
#include <stdint.h>

#include "unit.h"
#include "libvchan/core/wire.h"

#if defined(__has_include)
#if __has_include(<xen/io/libxenvchan.h>)
#include <xen/io/libxenvchan.h>
#define HAVE_XEN_VCHAN_HEADER 1
#endif
#endif

#define FIELD_SIZE(type, field) sizeof(((type *)0)->field)

#ifdef HAVE_XEN_VCHAN_HEADER

/* Offset and size of one field, ours against Xen's. */
#define SAME_FIELD(ours, xens)                                                                 \
    do {                                                                                       \
        CU_ASSERT_EQUAL(offsetof(struct vchan__wire, ours), offsetof(struct vchan_interface, xens)); \
        CU_ASSERT_EQUAL(FIELD_SIZE(struct vchan__wire, ours),                                  \
                        FIELD_SIZE(struct vchan_interface, xens));                             \
    } while (0)

static void test_wire_header_size(void)
{
    CU_ASSERT_EQUAL(sizeof(struct vchan__wire), sizeof(struct vchan_interface));
    CU_ASSERT_EQUAL(sizeof(struct vchan__wire), 24);
    CU_ASSERT_EQUAL(_Alignof(struct vchan__wire), _Alignof(struct vchan_interface));
}

static void test_wire_ring_indices(void)
{
    CU_ASSERT_EQUAL(sizeof(struct vchan__ring_idx), sizeof(struct ring_shared));
    CU_ASSERT_EQUAL(offsetof(struct vchan__ring_idx, cons), offsetof(struct ring_shared, cons));
    CU_ASSERT_EQUAL(offsetof(struct vchan__ring_idx, prod), offsetof(struct ring_shared, prod));
    CU_ASSERT_EQUAL(FIELD_SIZE(struct vchan__ring_idx, cons), FIELD_SIZE(struct ring_shared, cons));
    CU_ASSERT_EQUAL(FIELD_SIZE(struct vchan__ring_idx, prod), FIELD_SIZE(struct ring_shared, prod));
    SAME_FIELD(left, left);
    SAME_FIELD(right, right);
    SAME_FIELD(left.cons, left.cons);
    SAME_FIELD(left.prod, left.prod);
    SAME_FIELD(right.cons, right.cons);
    SAME_FIELD(right.prod, right.prod);
}

static void test_wire_orders_live_notify(void)
{
    SAME_FIELD(left_order, left_order);
    SAME_FIELD(right_order, right_order);
    SAME_FIELD(cli_live, cli_live);
    SAME_FIELD(srv_live, srv_live);
    SAME_FIELD(cli_notify, cli_notify);
    SAME_FIELD(srv_notify, srv_notify);
}

static void test_wire_grants(void)
{
    CU_ASSERT_EQUAL(offsetof(struct vchan__wire, grants), offsetof(struct vchan_interface, grants));
    CU_ASSERT_EQUAL(FIELD_SIZE(struct vchan__wire, grants[0]),
                    FIELD_SIZE(struct vchan_interface, grants[0]));
}

static void test_wire_notify_bits(void)
{
    CU_ASSERT_EQUAL(VCHAN__NOTIFY_WRITE, VCHAN_NOTIFY_WRITE);
    CU_ASSERT_EQUAL(VCHAN__NOTIFY_READ, VCHAN_NOTIFY_READ);
}

/* A page written through Xen's struct reads back the same through ours. */
static void test_wire_same_bytes(void)
{
    union {
        uint8_t bytes[64];
        uint32_t align;
    } page;
    struct vchan_interface *x = (struct vchan_interface *)page.bytes;
    struct vchan__wire *w = (struct vchan__wire *)page.bytes;

    memset(&page, 0, sizeof(page));
    x->left.cons = 0x01020304u;
    x->left.prod = 0x05060708u;
    x->right.cons = 0x090a0b0cu;
    x->right.prod = 0x0d0e0f10u;
    x->left_order = 12;
    x->right_order = 20;
    x->cli_live = 2;
    x->srv_live = 1;
    x->cli_notify = VCHAN_NOTIFY_WRITE;
    x->srv_notify = VCHAN_NOTIFY_READ;
    x->grants[0] = 0xdeadbeefu;
    x->grants[1] = 42;
    CU_ASSERT_EQUAL(w->left.cons, 0x01020304u);
    CU_ASSERT_EQUAL(w->left.prod, 0x05060708u);
    CU_ASSERT_EQUAL(w->right.cons, 0x090a0b0cu);
    CU_ASSERT_EQUAL(w->right.prod, 0x0d0e0f10u);
    CU_ASSERT_EQUAL(w->left_order, 12);
    CU_ASSERT_EQUAL(w->right_order, 20);
    CU_ASSERT_EQUAL(w->cli_live, 2);
    CU_ASSERT_EQUAL(w->srv_live, 1);
    CU_ASSERT_EQUAL(w->cli_notify, VCHAN__NOTIFY_WRITE);
    CU_ASSERT_EQUAL(w->srv_notify, VCHAN__NOTIFY_READ);
    CU_ASSERT_EQUAL(w->grants[0], 0xdeadbeefu);
    CU_ASSERT_EQUAL(w->grants[1], 42);
}

#else /* no Xen header */

static void test_wire_xen_header_present(void)
{
    CU_FAIL_FATAL("xen/io/libxenvchan.h not found: the wire layout cannot be compared with "
                  "Xen's; install libxen-dev (Debian/Ubuntu) or xen-devel (Fedora)");
}

#endif

/* Our own constants, from the protocol as libxenvchan documents it. */
static void test_wire_constants(void)
{
    CU_ASSERT_EQUAL(VCHAN__LIVE_CLOSED, 0);
    CU_ASSERT_EQUAL(VCHAN__LIVE_OPEN, 1);
    CU_ASSERT_EQUAL(VCHAN__LIVE_WAITING, 2);
    CU_ASSERT_EQUAL(VCHAN__PAGE_SIZE, 4096);
    CU_ASSERT_EQUAL(VCHAN__SMALL_OFFSET, 1u << VCHAN__SMALL_ORDER);
    CU_ASSERT_EQUAL(VCHAN__LARGE_OFFSET, 1u << VCHAN__LARGE_ORDER);
    CU_ASSERT_EQUAL(VCHAN__MIN_ORDER, 10);
    CU_ASSERT_EQUAL(VCHAN__MAX_ORDER, 20);
}

static const struct unit_test tests[] = {
#ifdef HAVE_XEN_VCHAN_HEADER
    UNIT_TEST(test_wire_header_size),
    UNIT_TEST(test_wire_ring_indices),
    UNIT_TEST(test_wire_orders_live_notify),
    UNIT_TEST(test_wire_grants),
    UNIT_TEST(test_wire_notify_bits),
    UNIT_TEST(test_wire_same_bytes),
#else
    UNIT_TEST(test_wire_xen_header_present),
#endif
    UNIT_TEST(test_wire_constants),
};

UNIT_MAIN("wire", tests)
