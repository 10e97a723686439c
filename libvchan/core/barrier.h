/* SPDX-License-Identifier: ISC */
/*
 * The only place that touches shared-memory atomics. Built on the __atomic
 * builtins: they work freestanding and ThreadSanitizer understands them.
 */
#ifndef VCHAN_BARRIER_H
#define VCHAN_BARRIER_H

/* Read a peer-written word once; later reads of data it guards see the data. */
#define vchan__load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
/* Publish a word; data written before it is seen first. */
#define vchan__store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
/* A single read or write of a shared word with no ordering. */
#define vchan__load_once(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define vchan__store_once(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* Full fence: stores before it are visible before loads after it. */
#define vchan__mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
/* Atomic read-modify-write of a notify byte, full fence implied. */
#define vchan__fetch_or(p, v) __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
#define vchan__fetch_and(p, v) __atomic_fetch_and((p), (v), __ATOMIC_SEQ_CST)

/* In a spin on a shared word: let the sibling hyperthread run, save power. */
static inline void vchan__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

#endif
