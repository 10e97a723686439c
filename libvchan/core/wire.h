/* SPDX-License-Identifier: ISC */
/*
 * The vchan control page, byte for byte as Xen's xen/io/libxenvchan.h lays
 * it out (struct vchan_interface). Our copy has a private name so a test can
 * include Xen's header beside it and compare every offset.
 */
#ifndef VCHAN_WIRE_H
#define VCHAN_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct vchan__ring_idx {
    uint32_t cons;
    uint32_t prod;
};

struct vchan__wire {
    struct vchan__ring_idx left;  /* client writes, server reads */
    struct vchan__ring_idx right; /* server writes, client reads */
    uint16_t left_order;
    uint16_t right_order;
    uint8_t cli_live;
    uint8_t srv_live;
    uint8_t cli_notify; /* bits the client clears (and signals) on its action */
    uint8_t srv_notify; /* bits the server clears (and signals) on its action */
    uint32_t grants[];  /* left ring's pages, then the right ring's */
};

#define VCHAN__NOTIFY_WRITE 0x1 /* = VCHAN_NOTIFY_WRITE: tell me when you write */
#define VCHAN__NOTIFY_READ 0x2  /* = VCHAN_NOTIFY_READ: tell me when you consume */

#define VCHAN__LIVE_CLOSED 0
#define VCHAN__LIVE_OPEN 1
#define VCHAN__LIVE_WAITING 2

#define VCHAN__PAGE_SHIFT 12
#define VCHAN__PAGE_SIZE (1u << VCHAN__PAGE_SHIFT)
#define VCHAN__SMALL_ORDER 10 /* in the control page at offset 1024 */
#define VCHAN__LARGE_ORDER 11 /* in the control page at offset 2048 */
#define VCHAN__SMALL_OFFSET 1024
#define VCHAN__LARGE_OFFSET 2048
#define VCHAN__MIN_ORDER 10
#define VCHAN__MAX_ORDER 20

_Static_assert(sizeof(struct vchan__wire) == 24, "vchan header is 24 bytes");
_Static_assert(offsetof(struct vchan__wire, left) == 0, "left");
_Static_assert(offsetof(struct vchan__wire, right) == 8, "right");
_Static_assert(offsetof(struct vchan__wire, left_order) == 16, "left_order");
_Static_assert(offsetof(struct vchan__wire, right_order) == 18, "right_order");
_Static_assert(offsetof(struct vchan__wire, cli_live) == 20, "cli_live");
_Static_assert(offsetof(struct vchan__wire, srv_live) == 21, "srv_live");
_Static_assert(offsetof(struct vchan__wire, cli_notify) == 22, "cli_notify");
_Static_assert(offsetof(struct vchan__wire, srv_notify) == 23, "srv_notify");
_Static_assert(offsetof(struct vchan__wire, grants) == 24, "grants");

#endif
