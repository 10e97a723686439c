/* SPDX-License-Identifier: ISC */
/*
 * Inspecting a control page from outside the channel (vchan-cat --stat):
 * a snapshot of the shared fields and a verdict on two snapshots. The page
 * is the peer's to write at any moment, so each field is read exactly once
 * through a volatile pointer and every later decision uses the copy.
 * Freestanding, like the rest of the core.
 */
#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "wire.h"

_Static_assert(VCHAN_NOTIFY_WRITE == VCHAN__NOTIFY_WRITE, "notify bits");
_Static_assert(VCHAN_NOTIFY_READ == VCHAN__NOTIFY_READ, "notify bits");

/* The view as this library knows it: fields up to here are always filled. */
#define VIEW_MIN (offsetof(struct vchan_page_view, problem) + sizeof(((struct vchan_page_view *)0)->problem))

/* Record why the page is corrupt: two texts and a number (the first problem wins). */
static void problem(struct vchan_page_view *v, const char *a, const char *b, uint32_t n)
{
    char *p = v->problem, *end = v->problem + sizeof(v->problem) - 1;
    char digits[10];
    int k = 0;

    if (v->corrupt) {
        return;
    }
    v->corrupt = true;
    for (const char *s = a; *s && p < end; s++) {
        *p++ = *s;
    }
    for (const char *s = b; *s && p < end; s++) {
        *p++ = *s;
    }
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (k > 0 && p < end) {
        *p++ = digits[--k];
    }
    *p = '\0';
}

static void ring_view(struct vchan_page_view *v, struct vchan_ring_view *r, const char *name,
                      uint32_t order, uint32_t prod, uint32_t cons)
{
    r->order = order;
    r->prod = prod;
    r->cons = cons;
    r->fill = prod - cons;
    r->size = order >= VCHAN__MIN_ORDER && order <= VCHAN__MAX_ORDER ? 1u << order : 0;
    if (!r->size) {
        problem(v, name, " ring: order out of range (10..20): ", order);
    } else if (r->fill > r->size) {
        problem(v, name, " ring: prod - cons exceeds its size: ", r->fill);
    }
}

VCHAN_EXPORT int vchan_page_inspect(const void *page, size_t len, struct vchan_page_view *view)
{
    const volatile struct vchan__wire *w = page;
    struct vchan_page_view v;

    if (!page || !view || view->size < VIEW_MIN || len < sizeof(struct vchan__wire)) {
        return -VCHAN_EINVAL;
    }
    memset(&v, 0, sizeof(v));
    /* Every shared field once. */
    ring_view(&v, &v.left, "left", w->left_order, w->left.prod, w->left.cons);
    ring_view(&v, &v.right, "right", w->right_order, w->right.prod, w->right.cons);
    v.cli_live = w->cli_live;
    v.srv_live = w->srv_live;
    v.cli_notify = w->cli_notify;
    v.srv_notify = w->srv_notify;

    if (!v.corrupt) {
        size_t lp, rp;
        if (vchan__check_orders(v.left.order, v.right.order, &lp, &rp)) {
            /* Both in-page at one offset, or a grant list running into an in-page ring. */
            problem(&v, "ring orders that cannot go together: left ", "", v.left.order);
        }
    }
    if (v.cli_live > VCHAN__LIVE_WAITING) {
        problem(&v, "client live byte out of range: ", "", v.cli_live);
    }
    if (v.srv_live > VCHAN__LIVE_OPEN) {
        problem(&v, "server live byte out of range: ", "", v.srv_live);
    }
    if (v.cli_notify & ~(VCHAN__NOTIFY_WRITE | VCHAN__NOTIFY_READ)) {
        problem(&v, "client notify byte has unknown bits: ", "", v.cli_notify);
    }
    if (v.srv_notify & ~(VCHAN__NOTIFY_WRITE | VCHAN__NOTIFY_READ)) {
        problem(&v, "server notify byte has unknown bits: ", "", v.srv_notify);
    }
    v.size = view->size < sizeof(v) ? view->size : sizeof(v);
    memcpy(view, &v, v.size);
    return 0;
}

static bool moved(const struct vchan_page_view *a, const struct vchan_page_view *b)
{
    return a->left.prod != b->left.prod || a->left.cons != b->left.cons ||
           a->right.prod != b->right.prod || a->right.cons != b->right.cons;
}

VCHAN_EXPORT enum vchan_verdict vchan_page_verdict(const struct vchan_page_view *before,
                                                   const struct vchan_page_view *now,
                                                   uint64_t still_ms, const char **why)
{
    const char *dummy;
    const struct vchan_ring_view *l, *r;

    if (!why) {
        why = &dummy;
    }
    if (!now || now->size < VIEW_MIN) {
        *why = "no view";
        return VCHAN_VERDICT_CORRUPT;
    }
    l = &now->left;
    r = &now->right;
    if (now->corrupt) {
        *why = now->problem;
        return VCHAN_VERDICT_CORRUPT;
    }
    if (now->srv_live == VCHAN__LIVE_CLOSED) {
        *why = "the server has closed";
        return VCHAN_VERDICT_PEER_GONE;
    }
    if (now->cli_live == VCHAN__LIVE_CLOSED) {
        *why = "the client has closed";
        return VCHAN_VERDICT_PEER_GONE;
    }
    if (now->cli_live == VCHAN__LIVE_WAITING) {
        *why = "the server waits for its client to connect";
        return VCHAN_VERDICT_CONNECTING;
    }
    if (before && before->size >= VIEW_MIN && moved(before, now)) {
        *why = "indices moved";
        return VCHAN_VERDICT_FLOWING;
    }
    /* A side waits for something that is already there, and nothing moves. */
    if (before && still_ms >= 1000) {
        if ((now->srv_notify & VCHAN__NOTIFY_WRITE) && r->fill > 0) {
            *why = "the client asked to be told of data, the right ring has some";
            return VCHAN_VERDICT_NOTIFY_LOST;
        }
        if ((now->cli_notify & VCHAN__NOTIFY_WRITE) && l->fill > 0) {
            *why = "the server asked to be told of data, the left ring has some";
            return VCHAN_VERDICT_NOTIFY_LOST;
        }
        if ((now->srv_notify & VCHAN__NOTIFY_READ) && l->fill == 0) {
            *why = "the client asked to be told of space, the left ring is empty";
            return VCHAN_VERDICT_NOTIFY_LOST;
        }
        if ((now->cli_notify & VCHAN__NOTIFY_READ) && r->fill == 0) {
            *why = "the server asked to be told of space, the right ring is empty";
            return VCHAN_VERDICT_NOTIFY_LOST;
        }
    }
    if (l->fill == l->size) {
        *why = "the left ring is full: the client waits for the server to read";
        return VCHAN_VERDICT_WRITER_WAITING;
    }
    if (r->fill == r->size) {
        *why = "the right ring is full: the server waits for the client to read";
        return VCHAN_VERDICT_WRITER_WAITING;
    }
    if ((now->srv_notify & VCHAN__NOTIFY_WRITE) && r->fill == 0) {
        *why = "the client waits for the server to write";
        return VCHAN_VERDICT_READER_WAITING;
    }
    if ((now->cli_notify & VCHAN__NOTIFY_WRITE) && l->fill == 0) {
        *why = "the server waits for the client to write";
        return VCHAN_VERDICT_READER_WAITING;
    }
    *why = l->fill || r->fill ? "data waits in a ring, nobody asked to be told" : "nothing to move";
    return VCHAN_VERDICT_IDLE;
}

VCHAN_EXPORT const char *vchan_verdict_name(enum vchan_verdict verdict)
{
    switch (verdict) {
    case VCHAN_VERDICT_IDLE:
        return "idle";
    case VCHAN_VERDICT_FLOWING:
        return "flowing";
    case VCHAN_VERDICT_READER_WAITING:
        return "reader waiting for data";
    case VCHAN_VERDICT_WRITER_WAITING:
        return "writer waiting for space";
    case VCHAN_VERDICT_NOTIFY_LOST:
        return "notify lost";
    case VCHAN_VERDICT_CONNECTING:
        return "waiting for the client";
    case VCHAN_VERDICT_PEER_GONE:
        return "peer gone";
    case VCHAN_VERDICT_CORRUPT:
        return "corrupt";
    }
    return "?";
}
