/* SPDX-License-Identifier: ISC */
/*
 * Grant tables of the test guest, version 1: sharing our pages with a peer
 * (entries in our table, which Xen reads) and mapping a peer's grants over
 * pages of ours (GNTTABOP_map_grant_ref on a VA that is already mapped;
 * Xen swaps the PTE). Grant entries and update_va_mapping speak machine
 * frame numbers, not pfns.
 */
#include "guest.h"
#include "hypercall.h"

#define PTE_FLAGS 0x67u /* as kernel.c */
/* Four frames of 512 entries: two order-20 rings (512 grants) and the control page fit. */
#define GNT_FRAMES 4u
#define GNT_ENTRIES (GNT_FRAMES * GUEST_PAGE_SIZE / sizeof(grant_entry_v1_t))
/* Mapped or unmapped per hypercall. */
#define MAP_BATCH 32u

static grant_entry_v1_t *table;
static uint8_t table_pages[GNT_FRAMES][GUEST_PAGE_SIZE] __attribute__((aligned(GUEST_PAGE_SIZE)));
static bool ref_used[GNT_ENTRIES];
static uint32_t next_ref = GNTTAB_NR_RESERVED_ENTRIES;

/* GNTST_* to the errno values the hooks return. */
static int gntst_errno(int16_t st)
{
    switch (st) {
    case GNTST_okay:
        return 0;
    case GNTST_bad_domain:
        return -XEN_ESRCH;
    case GNTST_permission_denied:
        return -XEN_EACCES;
    case GNTST_no_device_space:
    case GNTST_no_space:
        return -XEN_ENOSPC;
    case GNTST_eagain:
        return -XEN_EAGAIN;
    default:
        return -XEN_EINVAL;
    }
}

int gnttab_init(void)
{
    xen_pfn_t frames[GNT_FRAMES];
    struct gnttab_setup_table setup = {.dom = DOMID_SELF, .nr_frames = GNT_FRAMES};
    unsigned int i;
    long rc;

    set_xen_guest_handle(setup.frame_list, frames);
    rc = HYPERVISOR_grant_table_op(GNTTABOP_setup_table, &setup, 1);
    if (rc || setup.status != GNTST_okay) {
        return rc ? (int)rc : gntst_errno(setup.status);
    }
    for (i = 0; i < GNT_FRAMES; i++) {
        rc = HYPERVISOR_update_va_mapping(table_pages[i],
                                          ((uint64_t)frames[i] << GUEST_PAGE_SHIFT) | PTE_FLAGS,
                                          UVMF_INVLPG | UVMF_LOCAL);
        if (rc) {
            return (int)rc;
        }
    }
    table = (grant_entry_v1_t *)table_pages;
    return 0;
}

int gnttab_grant(uint16_t domid, unsigned long mfn, bool readonly, uint32_t *ref)
{
    uint32_t n;

    /* Round robin from the last one, so a stale ref of the peer's finds no fresh grant. */
    for (n = 0; n < GNT_ENTRIES; n++) {
        uint32_t r = next_ref;

        next_ref = next_ref + 1 < GNT_ENTRIES ? next_ref + 1 : GNTTAB_NR_RESERVED_ENTRIES;
        if (!ref_used[r]) {
            grant_entry_v1_t *e = &table[r];

            ref_used[r] = true;
            e->domid = domid;
            e->frame = (uint32_t)mfn;
            /* Domain and frame are visible /before/ the grant is valid. */
            __atomic_store_n(&e->flags, (uint16_t)(GTF_permit_access | (readonly ? GTF_readonly : 0)),
                             __ATOMIC_RELEASE);
            *ref = r;
            return 0;
        }
    }
    return -XEN_ENOSPC;
}

int gnttab_end(uint32_t ref)
{
    grant_entry_v1_t *e;
    uint16_t flags;

    if (ref < GNTTAB_NR_RESERVED_ENTRIES || ref >= GNT_ENTRIES || !ref_used[ref]) {
        return -XEN_EINVAL;
    }
    e = &table[ref];
    flags = __atomic_load_n(&e->flags, __ATOMIC_RELAXED);
    /* Xen sets reading/writing while the grantee maps it; only a grant without them may go. */
    do {
        if (flags & (GTF_reading | GTF_writing)) {
            return -XEN_EBUSY;
        }
    } while (!__atomic_compare_exchange_n(&e->flags, &flags, 0, false, __ATOMIC_SEQ_CST,
                                          __ATOMIC_RELAXED));
    ref_used[ref] = false;
    return 0;
}

static int unmap_some(uint8_t *window, size_t n, const uint32_t *handles)
{
    struct gnttab_unmap_grant_ref ops[MAP_BATCH];
    size_t done, i;
    int err = 0;

    for (done = 0; done < n; done += i) {
        size_t k = n - done < MAP_BATCH ? n - done : MAP_BATCH;
        long rc;

        for (i = 0; i < k; i++) {
            ops[i].host_addr = (uintptr_t)(window + (done + i) * GUEST_PAGE_SIZE);
            ops[i].dev_bus_addr = 0;
            ops[i].handle = handles[done + i];
        }
        rc = HYPERVISOR_grant_table_op(GNTTABOP_unmap_grant_ref, ops, (unsigned int)k);
        if (rc) {
            return (int)rc;
        }
        for (i = 0; i < k; i++) {
            if (ops[i].status != GNTST_okay && !err) {
                err = gntst_errno(ops[i].status);
            }
        }
    }
    return err;
}

/*
 * Xen's PV grant mapping swaps the PTE and flushes nothing: Linux and
 * Mini-OS map grants over VAs never touched before. Our window pages were
 * in use (zeroed at least), so this vCPU's TLB may still translate them
 * to our own frames.
 */
static void flush_tlb(void)
{
    struct mmuext_op op = {.cmd = MMUEXT_TLB_FLUSH_LOCAL};

    (void)HYPERVISOR_mmuext_op(&op, 1);
}

int gnttab_map(uint16_t domid, const uint32_t *refs, size_t n, bool writable, void *window,
               uint32_t *handles)
{
    struct gnttab_map_grant_ref ops[MAP_BATCH];
    uint8_t *base = window;
    size_t done, i;

    for (done = 0; done < n; done += i) {
        size_t k = n - done < MAP_BATCH ? n - done : MAP_BATCH;
        int err = 0;
        long rc;

        for (i = 0; i < k; i++) {
            ops[i].host_addr = (uintptr_t)(base + (done + i) * GUEST_PAGE_SIZE);
            ops[i].flags = GNTMAP_host_map | (writable ? 0 : GNTMAP_readonly);
            ops[i].ref = refs[done + i];
            ops[i].dom = domid;
        }
        rc = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, ops, (unsigned int)k);
        for (i = 0; i < k; i++) {
            if (rc == 0 && ops[i].status == GNTST_okay) {
                handles[done + i] = ops[i].handle;
            } else if (!err) {
                err = rc ? (int)rc : gntst_errno(ops[i].status);
            }
        }
        if (err) {
            /* All or nothing: take back what this call mapped, then the earlier batches. */
            for (i = 0; i < k; i++) {
                if (rc == 0 && ops[i].status == GNTST_okay) {
                    (void)unmap_some(base + (done + i) * GUEST_PAGE_SIZE, 1, &handles[done + i]);
                }
            }
            (void)unmap_some(base, done, handles);
            (void)pages_remap(base, done + k);
            return err;
        }
    }
    flush_tlb();
    return 0;
}

int gnttab_unmap(void *window, size_t n, const uint32_t *handles)
{
    return unmap_some(window, n, handles);
}
