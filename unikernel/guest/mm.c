/* SPDX-License-Identifier: ISC */
/*
 * Page allocation of the test guest: a pool in .bss, which Xen's builder
 * has already mapped (at VA = pfn * 4 KiB), so no page-table code is
 * needed. Enough for one channel with two order-20 rings (513 pages
 * shared, or as many mapped) plus pages parked because a peer still maps
 * them; first fit, which is plenty for a test guest.
 */
#include "guest.h"
#include "hypercall.h"

#define POOL_PAGES 1536u /* 6 MiB */
#define PTE_FLAGS 0x67u  /* as kernel.c */

static uint8_t pool[POOL_PAGES][GUEST_PAGE_SIZE] __attribute__((aligned(GUEST_PAGE_SIZE)));
static bool used[POOL_PAGES];

void mm_init(void)
{
    memset(used, 0, sizeof(used));
}

void *pages_alloc(size_t npages)
{
    size_t start, i;

    if (npages == 0 || npages > POOL_PAGES) {
        return NULL;
    }
    for (start = 0; start + npages <= POOL_PAGES; start++) {
        for (i = 0; i < npages && !used[start + i]; i++) {
        }
        if (i == npages) {
            for (i = 0; i < npages; i++) {
                used[start + i] = true;
            }
            memset(pool[start], 0, npages * GUEST_PAGE_SIZE);
            return pool[start];
        }
        start += i; /* skip past the used page that stopped us */
    }
    return NULL;
}

void pages_free(void *addr, size_t npages)
{
    size_t first = ((uintptr_t)addr - (uintptr_t)pool) / GUEST_PAGE_SIZE, i;

    if (!addr || (uintptr_t)addr < (uintptr_t)pool || first + npages > POOL_PAGES) {
        guest_panic("pages_free(%p, %zu): not from the pool", addr, npages);
    }
    for (i = 0; i < npages; i++) {
        used[first + i] = false;
    }
}

/* After a grant unmap the PTE is empty: point it back at our own frame. */
int pages_remap(void *addr, size_t npages)
{
    uint8_t *va = addr;
    size_t i;

    for (i = 0; i < npages; i++, va += GUEST_PAGE_SIZE) {
        uint64_t pte = ((uint64_t)guest_virt_to_mfn(va) << GUEST_PAGE_SHIFT) | PTE_FLAGS;
        long rc = HYPERVISOR_update_va_mapping(va, pte, UVMF_INVLPG | UVMF_LOCAL);

        if (rc) {
            return (int)rc;
        }
    }
    return 0;
}
