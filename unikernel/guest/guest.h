/* SPDX-License-Identifier: ISC */
/*
 * The x86-64 PV test guest: what its parts give each other and the
 * application (an app_main, e.g. examples/unikernel-echo/).
 *
 * One vCPU, event upcalls masked for good, no interrupts, no threads:
 * every wait is a SCHEDOP_poll on the event channel waited for.
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_PAGE_SIZE 4096u
#define GUEST_PAGE_SHIFT 12

#if defined(__GNUC__)
#define GUEST_NORETURN __attribute__((noreturn))
#define GUEST_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GUEST_NORETURN
#define GUEST_PRINTF(a, b)
#endif

/* The application: the guest's command line (xl's extra=) in, exit status out. */
int app_main(const char *cmdline);

/* kernel.c: start-up, time, console, shutdown. */
uint64_t guest_time_ns(void);            /* Xen system time: ns since boot */
void guest_console_write(const char *s, size_t n);
GUEST_NORETURN void guest_exit(int status); /* drain the console, power off (crash if non-zero) */
GUEST_NORETURN void guest_panic(const char *fmt, ...) GUEST_PRINTF(1, 2);
const char *guest_cmdline(void);
/* Page frame numbers: the pseudo-physical pfn of a VA in our image, and its machine frame. */
unsigned long guest_virt_to_mfn(const void *va);
unsigned long guest_mfn_to_pfn(unsigned long mfn);
void *guest_mfn_to_virt(unsigned long mfn); /* for a frame in our initial mapping */
struct shared_info *guest_shared_info(void);
const struct start_info *guest_start_info(void);

/* runtime.c: the small libc of the guest. */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
/* %s %c %d %i %u %x %p %%, flags '-' '0' '#', width, and l, ll, z sizes. */
int guest_vsnprintf(char *buf, size_t len, const char *fmt, va_list ap);
int guest_snprintf(char *buf, size_t len, const char *fmt, ...) GUEST_PRINTF(3, 4);
int guest_printf(const char *fmt, ...) GUEST_PRINTF(1, 2);
/*
 * The command line's next "key=value" word after *pos (words are separated
 * by spaces; a word without '=' has an empty value). Returns false at the
 * end; a key or value too long for its buffer is cut.
 */
bool guest_next_arg(const char **pos, char *key, size_t key_len, char *val, size_t val_len);

/* mm.c: pages of the .bss pool, contiguous, zeroed. */
void mm_init(void);
void *pages_alloc(size_t npages);
void pages_free(void *addr, size_t npages);
/* Re-establish the normal mapping of a pool page (after a grant mapping over it). */
int pages_remap(void *addr, size_t npages);

/* events.c: event channels, waited on with SCHEDOP_poll. Errors: -XEN_E*. */
int evtchn_alloc_unbound_port(uint16_t remote, uint32_t *port);
int evtchn_bind_port(uint16_t remote, uint32_t remote_port, uint32_t *local);
int evtchn_send(uint32_t port);
void evtchn_close(uint32_t port);
bool evtchn_consume(uint32_t port); /* test and clear the pending bit */
/* Until an event is pending on `port` (consumed), or the system time `deadline_ns` (0: none). */
int evtchn_wait_until(uint32_t port, uint64_t deadline_ns);
/* Sleep until system time deadline_ns. */
void guest_sleep_until(uint64_t deadline_ns);

/* gnttab.c: grant table v1. Errors: -XEN_E*. */
int gnttab_init(void);
int gnttab_grant(uint16_t domid, unsigned long mfn, bool readonly, uint32_t *ref);
int gnttab_end(uint32_t ref); /* -XEN_EBUSY while mapped by the grantee */
int gnttab_map(uint16_t domid, const uint32_t *refs, size_t n, bool writable, void *window,
               uint32_t *handles);
int gnttab_unmap(void *window, size_t n, const uint32_t *handles);

/* xenstore.c: the xenstore ring client. tx 0: none. Errors: -XEN_E*. */
int xs_init(void);
int xs_read(uint32_t tx, const char *path, char *buf, size_t len);
int xs_write(uint32_t tx, const char *path, const char *value);
int xs_rm(uint32_t tx, const char *path);
int xs_set_perms(uint32_t tx, const char *path, const char *const *perms, size_t n);
int xs_transaction_start(uint32_t *tx);
int xs_transaction_end(uint32_t tx, bool abort);
const char *xs_errname(int err);

#endif
