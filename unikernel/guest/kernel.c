/* SPDX-License-Identifier: ISC */
/*
 * Start-up of the x86-64 PV test guest: shared_info and time, the trap
 * table, the PV console ring, then the application; and the ways out
 * (power off, crash) with the console drained first, so that dom0's
 * xenconsoled logs the last line.
 */
#include "guest.h"
#include "hypercall.h"

/* Present, writable, user (a 64-bit PV kernel runs in ring 3), accessed, dirty. */
#define PTE_FLAGS 0x67u
/* How long a full console ring may stay full before we drop output, ns. */
#define CONSOLE_STALL_NS (5ull * 1000000000ull)
/* How long to wait for xenconsoled to read our last bytes, ns. */
#define CONSOLE_DRAIN_NS (2ull * 1000000000ull)

static struct start_info *start_info;
static struct shared_info *shared;
static struct xencons_interface *console;
static uint32_t console_port;
static const unsigned long *p2m; /* pfn -> mfn, from start_info */

/* A .bss page that the shared_info frame is mapped over. */
static uint8_t shared_info_page[GUEST_PAGE_SIZE] __attribute__((aligned(GUEST_PAGE_SIZE)));
extern uint8_t boot_stack_guard[];

struct shared_info *guest_shared_info(void)
{
    return shared;
}

const char *guest_cmdline(void)
{
    return (const char *)start_info->cmd_line;
}

unsigned long guest_virt_to_mfn(const void *va)
{
    return p2m[(uintptr_t)va >> GUEST_PAGE_SHIFT];
}

/* Xen maps its machine-to-phys table read-only into every PV guest. */
unsigned long guest_mfn_to_pfn(unsigned long mfn)
{
    return ((const unsigned long *)MACH2PHYS_VIRT_START)[mfn];
}

void *guest_mfn_to_virt(unsigned long mfn)
{
    return (void *)(guest_mfn_to_pfn(mfn) << GUEST_PAGE_SHIFT);
}

const struct start_info *guest_start_info(void)
{
    return start_info;
}

/* ------------------------------------------------------------------ time */

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/*
 * Xen's system time from vcpu_info[0].time (pvclock): the values are
 * consistent when version is even and the same before and after.
 */
uint64_t guest_time_ns(void)
{
    static uint64_t last;
    const struct vcpu_time_info *t = &shared->vcpu_info[0].time;
    uint32_t version;
    uint64_t ns;

    do {
        uint64_t delta;
        int8_t shift;
        uint32_t mul;

        version = __atomic_load_n(&t->version, __ATOMIC_ACQUIRE);
        delta = rdtsc() - __atomic_load_n(&t->tsc_timestamp, __ATOMIC_RELAXED);
        shift = __atomic_load_n(&t->tsc_shift, __ATOMIC_RELAXED);
        mul = __atomic_load_n(&t->tsc_to_system_mul, __ATOMIC_RELAXED);
        delta = shift >= 0 ? delta << shift : delta >> -shift;
        ns = __atomic_load_n(&t->system_time, __ATOMIC_RELAXED) +
             (uint64_t)(((unsigned __int128)delta * mul) >> 32);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
    } while ((version & 1) || version != __atomic_load_n(&t->version, __ATOMIC_RELAXED));
    /* Callers compute deadlines from it: never let it step back. */
    if (ns < last) {
        ns = last;
    }
    last = ns;
    return ns;
}

/* --------------------------------------------------------------- console */

/*
 * The PV console ring: xenconsoled reads `out` and writes what it got to
 * dom0's log (--log=guest). A domU's console_io hypercall output would be
 * invisible on a release build of Xen.
 */
void guest_console_write(const char *s, size_t n)
{
    uint64_t stalled_since = 0;

    while (n > 0) {
        XENCONS_RING_IDX cons = __atomic_load_n(&console->out_cons, __ATOMIC_ACQUIRE);
        XENCONS_RING_IDX prod = console->out_prod;
        size_t room = sizeof(console->out) - (prod - cons);
        size_t i, k;

        if (room == 0 || room > sizeof(console->out)) {
            uint64_t now = guest_time_ns();

            if (stalled_since == 0) {
                stalled_since = now;
            } else if (now - stalled_since > CONSOLE_STALL_NS) {
                return; /* nobody reads the console: drop rather than hang */
            }
            (void)evtchn_send(console_port);
            (void)evtchn_wait_until(console_port, now + 10000000u);
            continue;
        }
        stalled_since = 0;
        k = n < room ? n : room;
        for (i = 0; i < k; i++) {
            console->out[MASK_XENCONS_IDX(prod + i, console->out)] = s[i];
        }
        /* The bytes are in the ring /before/ xenconsoled sees the new index. */
        __atomic_store_n(&console->out_prod, prod + (XENCONS_RING_IDX)k, __ATOMIC_RELEASE);
        s += k;
        n -= k;
        (void)evtchn_send(console_port);
    }
}

static void console_drain(void)
{
    uint64_t give_up = guest_time_ns() + CONSOLE_DRAIN_NS;

    while (__atomic_load_n(&console->out_cons, __ATOMIC_ACQUIRE) != console->out_prod &&
           guest_time_ns() < give_up) {
        (void)evtchn_wait_until(console_port, guest_time_ns() + 10000000u);
    }
}

/* -------------------------------------------------------------- shutdown */

static GUEST_NORETURN void shutdown(unsigned int reason)
{
    struct sched_shutdown sd = {.reason = reason};

    for (;;) {
        (void)HYPERVISOR_sched_op(SCHEDOP_shutdown, &sd);
    }
}

void guest_exit(int status)
{
    console_drain();
    /* Power off either way: the application printed its verdict. */
    (void)status;
    shutdown(SHUTDOWN_poweroff);
}

void guest_panic(const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    guest_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    guest_printf("vchan-uk: PANIC: %s\n", buf);
    console_drain();
    shutdown(SHUTDOWN_crash);
}

/* ----------------------------------------------------------------- traps */

/* What head.S's trap_common leaves on the stack, lowest address first. */
struct trap_frame {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t vector, error_code, rip, cs, rflags, rsp, ss;
};

void trap_crash(const struct trap_frame *f);

#define TRAP_STUBS(X) \
    X(0, 0) X(1, 0) X(2, 0) X(3, 3) X(4, 3) X(5, 0) X(6, 0) X(7, 0) X(8, 0) X(10, 0) X(11, 0) \
    X(12, 0) X(13, 0) X(14, 0) X(16, 0) X(17, 0) X(18, 0) X(19, 0)

#define DECLARE_STUB(vec, dpl) extern char trap_entry_##vec[];
TRAP_STUBS(DECLARE_STUB)
#undef DECLARE_STUB

/*
 * flags: the privilege level allowed to raise it with int (3 for int3 and
 * into), and 4: mask events on entry, as an interrupt gate would.
 */
#define TRAP_ENTRY(vec, dpl) {vec, (dpl) | 4, FLAT_KERNEL_CS, (unsigned long)trap_entry_##vec},
static const struct trap_info trap_table[] = {TRAP_STUBS(TRAP_ENTRY){0, 0, 0, 0}};
#undef TRAP_ENTRY

static const char *const trap_names[20] = {
    "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range",
    "invalid opcode", "device not available", "double fault", "?", "invalid TSS",
    "segment not present", "stack fault", "general protection", "page fault", "?",
    "x87 error", "alignment check", "machine check", "SIMD error",
};

void trap_crash(const struct trap_frame *f)
{
    static bool crashing;

    if (crashing) {
        shutdown(SHUTDOWN_crash); /* a fault while reporting one */
    }
    crashing = true;
    guest_printf("vchan-uk: CRASH: %s (vector %lu) error %#lx at rip %#lx, rsp %#lx",
                 f->vector < 20 ? trap_names[f->vector] : "?", (unsigned long)f->vector,
                 (unsigned long)f->error_code, (unsigned long)f->rip, (unsigned long)f->rsp);
    if (f->vector == 14) {
        guest_printf(", address %#lx", (unsigned long)shared->vcpu_info[0].arch.cr2);
    }
    guest_printf("\n  rax %#lx rbx %#lx rcx %#lx rdx %#lx rsi %#lx rdi %#lx rbp %#lx\n"
                 "  r8 %#lx r9 %#lx r10 %#lx r11 %#lx r12 %#lx r13 %#lx r14 %#lx r15 %#lx\n",
                 f->rax, f->rbx, f->rcx, f->rdx, f->rsi, f->rdi, f->rbp, f->r8, f->r9, f->r10,
                 f->r11, f->r12, f->r13, f->r14, f->r15);
    console_drain();
    shutdown(SHUTDOWN_crash);
}

/* ---------------------------------------------------------------- start */

void guest_start(struct start_info *si);

void guest_start(struct start_info *si)
{
    long rc;

    start_info = si;
    p2m = (const unsigned long *)si->mfn_list;
    /* start_info gives the machine address of shared_info: map it over a page of ours. */
    if (HYPERVISOR_update_va_mapping(shared_info_page, si->shared_info | PTE_FLAGS,
                                     UVMF_INVLPG | UVMF_LOCAL)) {
        shutdown(SHUTDOWN_crash); /* no console yet to say so */
    }
    shared = (struct shared_info *)shared_info_page;
    /* SCHEDOP_poll insists on masked upcalls; we never take one. */
    shared->vcpu_info[0].evtchn_upcall_mask = 1;

    console = guest_mfn_to_virt(si->console.domU.mfn);
    console_port = si->console.domU.evtchn;

    if ((rc = HYPERVISOR_set_trap_table(trap_table))) {
        guest_panic("set_trap_table: %ld", rc);
    }
    /* The NULL page and the page under the stack fault from now on. */
    if ((rc = HYPERVISOR_update_va_mapping(NULL, 0, UVMF_INVLPG | UVMF_LOCAL)) ||
        (rc = HYPERVISOR_update_va_mapping(boot_stack_guard, 0, UVMF_INVLPG | UVMF_LOCAL))) {
        guest_panic("cannot unmap the guard pages: %ld", rc);
    }
    mm_init();
    if ((rc = gnttab_init())) {
        guest_panic("grant table set-up: %ld", rc);
    }
    if ((rc = xs_init())) {
        guest_panic("xenstore set-up: %ld", rc);
    }
    guest_printf("vchan-uk: up: %lu pages, cmdline '%s', t=%lu ms\n", si->nr_pages,
                 guest_cmdline(), (unsigned long)(guest_time_ns() / 1000000u));
    guest_exit(app_main(guest_cmdline()));
}
