/* SPDX-License-Identifier: ISC */
/*
 * Entry of the x86-64 PV test guest: the ELF notes Xen's domain builder
 * reads, the hypercall page it fills, the boot stack, and the exception
 * entry stubs of the trap table (kernel.c).
 *
 * Xen starts us in 64-bit mode, in ring 3 (a PV kernel), with event upcalls
 * masked, %rsi = the start_info page, and everything from VA 0 to past the
 * bootstrap page tables mapped at VA = pfn * 4 KiB (we link at 0 and ask
 * for VIRT_BASE = PADDR_OFFSET = 0).
 */
#define __XEN_INTERFACE_VERSION__ 0x00040e00
#include <xen/elfnote.h>

/* One ELF note "Xen" of type `type`; its value follows, then note_end. */
.macro note_begin type
    .p2align 2
    .long 2f - 1f
    .long 4f - 3f
    .long \type
1:  .asciz "Xen"
2:  .p2align 2
3:
.endm
.macro note_end
4:  .p2align 2
.endm
.macro note_str type, str
    note_begin \type
    .asciz "\str"
    note_end
.endm
.macro note_quad type, value
    note_begin \type
    .quad \value
    note_end
.endm

    .section .note.Xen, "a", @note
    note_str XEN_ELFNOTE_GUEST_OS, "vchan-conduit-guest"
    note_str XEN_ELFNOTE_GUEST_VERSION, "0.1"
    note_str XEN_ELFNOTE_XEN_VERSION, "xen-3.0"
    note_str XEN_ELFNOTE_LOADER, "generic"
    note_quad XEN_ELFNOTE_VIRT_BASE, 0
    note_quad XEN_ELFNOTE_PADDR_OFFSET, 0
    note_quad XEN_ELFNOTE_ENTRY, _start
    note_quad XEN_ELFNOTE_HYPERCALL_PAGE, hypercall_page

/*
 * Page 0 is unmapped once we run, so that a NULL dereference faults (and
 * the trap table prints it) instead of reading our code.
 */
    .section .text.null, "ax", @progbits
    .fill 4096, 1, 0

/* Xen writes one 32-byte stub per hypercall here: call hypercall_page + nr * 32. */
    .section .text.hypercall, "ax", @progbits
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0xcc

    .section .text.entry, "ax", @progbits
    .globl _start
_start:
    cld
    mov $boot_stack_top, %rsp
    mov %rsi, %rdi
    call guest_start
    ud2

/*
 * Exception entry. Xen bounces an exception to us with
 *     rcx, r11, [error code,] rip, cs, rflags, rsp, ss
 * on the current stack (rcx and r11 first because it may sysret to us).
 * Give every vector the same frame (a 0 error code where the CPU pushes
 * none), add the vector and the registers, and hand it to trap_crash(),
 * which prints it and crashes the domain: a test guest stops at its first
 * fault, it never resumes.
 */
.macro trap_stub vec, has_error_code
    .globl trap_entry_\vec
trap_entry_\vec:
    pop %rcx
    pop %r11
    .if !\has_error_code
    push $0
    .endif
    push $\vec
    jmp trap_common
.endm

    trap_stub 0, 0
    trap_stub 1, 0
    trap_stub 2, 0
    trap_stub 3, 0
    trap_stub 4, 0
    trap_stub 5, 0
    trap_stub 6, 0
    trap_stub 7, 0
    trap_stub 8, 1
    trap_stub 10, 1
    trap_stub 11, 1
    trap_stub 12, 1
    trap_stub 13, 1
    trap_stub 14, 1
    trap_stub 16, 0
    trap_stub 17, 1
    trap_stub 18, 0
    trap_stub 19, 0

trap_common:
    /* struct trap_frame (kernel.c), lowest address first. */
    push %r15
    push %r14
    push %r13
    push %r12
    push %r11
    push %r10
    push %r9
    push %r8
    push %rbp
    push %rdi
    push %rsi
    push %rdx
    push %rcx
    push %rbx
    push %rax
    mov %rsp, %rdi
    and $-16, %rsp
    call trap_crash
    ud2

    .section .bss.stack, "aw", @nobits
    .p2align 12
    /* Unmapped at boot: an overflow faults instead of running over .bss. */
    .globl boot_stack_guard
boot_stack_guard:
    .skip 4096
boot_stack:
    .skip 65536
boot_stack_top:

    .section .note.GNU-stack, "", @progbits
