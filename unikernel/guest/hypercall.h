/* SPDX-License-Identifier: ISC */
/*
 * Hypercalls of the x86-64 PV test guest: a call into the page Xen filled
 * (head.S), number * 32 bytes in; arguments in rdi, rsi, rdx, r10, r8,
 * result in rax. Xen clobbers rcx and r11 (it returns with sysret) and may
 * change the argument registers.
 */
#ifndef GUEST_HYPERCALL_H
#define GUEST_HYPERCALL_H

#include "xen_public.h"

extern char hypercall_page[];

static inline long hypercall5(unsigned int nr, unsigned long a1, unsigned long a2,
                              unsigned long a3, unsigned long a4, unsigned long a5)
{
    register unsigned long r10 __asm__("r10") = a4;
    register unsigned long r8 __asm__("r8") = a5;
    long ret;

    __asm__ volatile("call *%%rax"
                     : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
                     : "0"(hypercall_page + nr * 32)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline long hypercall3(unsigned int nr, unsigned long a1, unsigned long a2,
                              unsigned long a3)
{
    return hypercall5(nr, a1, a2, a3, 0, 0);
}

static inline long HYPERVISOR_set_trap_table(const struct trap_info *traps)
{
    return hypercall3(__HYPERVISOR_set_trap_table, (unsigned long)traps, 0, 0);
}

/* Point the PTE of `va` at `pte` (a machine address | flags; 0 unmaps). */
static inline long HYPERVISOR_update_va_mapping(const void *va, uint64_t pte, unsigned long flags)
{
    return hypercall3(__HYPERVISOR_update_va_mapping, (unsigned long)va, pte, flags);
}

static inline long HYPERVISOR_mmuext_op(struct mmuext_op *ops, unsigned int count)
{
    return hypercall5(__HYPERVISOR_mmuext_op, (unsigned long)ops, count, 0, DOMID_SELF, 0);
}

static inline long HYPERVISOR_grant_table_op(unsigned int cmd, void *uop, unsigned int count)
{
    return hypercall3(__HYPERVISOR_grant_table_op, cmd, (unsigned long)uop, count);
}

static inline long HYPERVISOR_sched_op(int cmd, void *arg)
{
    return hypercall3(__HYPERVISOR_sched_op, (unsigned long)cmd, (unsigned long)arg, 0);
}

static inline long HYPERVISOR_event_channel_op(int cmd, void *arg)
{
    return hypercall3(__HYPERVISOR_event_channel_op, (unsigned long)cmd, (unsigned long)arg, 0);
}

#endif
