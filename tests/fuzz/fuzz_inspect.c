/* SPDX-License-Identifier: ISC */
/*
 * fuzz_inspect: vchan_page_inspect and vchan_page_verdict (libvchan/core/
 * inspect.c, vchan-cat --stat) on control pages a hostile peer wrote.
 *
 * Input: two bytes of "milliseconds between the snapshots", then the first
 * page's 24-byte header, then the second page's (zeros once used up).
 *
 * Invariants: inspect never fails on a full view; what it reports is what
 * the bytes say (indices, orders, live and notify bytes); a page it does
 * not call corrupt has valid orders, a fill no larger than its ring and
 * in-range live and notify bytes, and one it does call corrupt has a
 * NUL-terminated reason; the verdict is a known one with a reason, and is
 * CORRUPT exactly when the page is.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "libvchan/core/wire.h"
#include "vchan.h"

static void check_view(const uint8_t *bytes, const struct vchan_page_view *v)
{
    struct vchan__wire w;

    memcpy(&w, bytes, sizeof(w));
    FUZZ_CHECK(v->size == sizeof(*v), "size %zu", v->size);
    FUZZ_CHECK(v->left.prod == w.left.prod && v->left.cons == w.left.cons, "left indices");
    FUZZ_CHECK(v->right.prod == w.right.prod && v->right.cons == w.right.cons, "right indices");
    FUZZ_CHECK(v->left.order == w.left_order && v->right.order == w.right_order, "orders");
    FUZZ_CHECK(v->cli_live == w.cli_live && v->srv_live == w.srv_live, "live bytes");
    FUZZ_CHECK(v->cli_notify == w.cli_notify && v->srv_notify == w.srv_notify, "notify bytes");
    FUZZ_CHECK(v->left.fill == v->left.prod - v->left.cons, "left fill");
    FUZZ_CHECK(v->right.fill == v->right.prod - v->right.cons, "right fill");
    if (v->corrupt) {
        FUZZ_CHECK(memchr(v->problem, '\0', sizeof(v->problem)) != NULL, "reason unterminated");
        FUZZ_CHECK(v->problem[0] != '\0', "corrupt without a reason");
        return;
    }
    FUZZ_CHECK(v->left.order >= 10 && v->left.order <= 20, "left order %u", v->left.order);
    FUZZ_CHECK(v->right.order >= 10 && v->right.order <= 20, "right order %u", v->right.order);
    FUZZ_CHECK(v->left.size == 1u << v->left.order, "left size");
    FUZZ_CHECK(v->right.size == 1u << v->right.order, "right size");
    FUZZ_CHECK(v->left.fill <= v->left.size && v->right.fill <= v->right.size, "fill");
    FUZZ_CHECK(v->cli_live <= 2 && v->srv_live <= 1, "live");
    FUZZ_CHECK(((v->cli_notify | v->srv_notify) & ~3u) == 0, "notify");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = fuzz_in(data, size);
    static uint8_t page[2][VCHAN__PAGE_SIZE];
    struct vchan_page_view a = VCHAN_PAGE_VIEW_INIT, b = VCHAN_PAGE_VIEW_INIT;
    uint64_t ms = fuzz_u16(&in);
    const char *why = NULL;
    enum vchan_verdict verdict;

    memset(page, 0, sizeof(page));
    fuzz_bytes(&in, page[0], sizeof(struct vchan__wire));
    fuzz_bytes(&in, page[1], sizeof(struct vchan__wire));
    FUZZ_CHECK(vchan_page_inspect(page[0], sizeof(page[0]), &a) == 0, "inspect a");
    FUZZ_CHECK(vchan_page_inspect(page[1], sizeof(page[1]), &b) == 0, "inspect b");
    check_view(page[0], &a);
    check_view(page[1], &b);
    verdict = vchan_page_verdict(&a, &b, ms, &why);
    FUZZ_CHECK(verdict >= VCHAN_VERDICT_IDLE && verdict <= VCHAN_VERDICT_CORRUPT, "verdict %d",
               (int)verdict);
    FUZZ_CHECK(why != NULL && why[0] != '\0', "no reason");
    FUZZ_CHECK((verdict == VCHAN_VERDICT_CORRUPT) == b.corrupt, "corrupt verdict mismatch");
    FUZZ_CHECK(strcmp(vchan_verdict_name(verdict), "?") != 0, "unnamed verdict");
    verdict = vchan_page_verdict(NULL, &a, ms, NULL);
    FUZZ_CHECK(verdict != VCHAN_VERDICT_FLOWING, "flowing from one snapshot");
    FUZZ_CHECK(verdict != VCHAN_VERDICT_NOTIFY_LOST, "notify lost from one snapshot");
    return 0;
}
