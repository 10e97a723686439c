/* SPDX-License-Identifier: ISC */
/*
 * The guest's libc: the memory and string functions the vchan driver and
 * the guest use, a printf for the console, and command-line words.
 * Built with -fno-tree-loop-distribute-patterns so that gcc does not turn
 * these loops back into calls to themselves.
 */
#include "guest.h"

/* Bulk in 8-byte moves, the tail in bytes: rep movsq costs TCG an eighth of rep movsb. */
void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;
    size_t q = n / 8, r = n % 8;

    __asm__ volatile("rep movsq\n\t"
                     "mov %[r], %%rcx\n\t"
                     "rep movsb"
                     : "+D"(d), "+S"(src), "+c"(q)
                     : [r] "r"(r)
                     : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    if ((uintptr_t)dst - (uintptr_t)src >= n) {
        return memcpy(dst, src, n); /* dst is below src, or after its end */
    }
    /* dst overlaps the end of src: copy backwards, bytes only (rare). */
    {
        uint8_t *d = (uint8_t *)dst + n - 1;
        const uint8_t *s = (const uint8_t *)src + n - 1;

        __asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;

    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;

    for (; n > 0; n--, x++, y++) {
        if (*x != *y) {
            return *x < *y ? -1 : 1;
        }
    }
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n]) {
        n++;
    }
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n > 0; n--, a++, b++) {
        if (*a != *b || !*a) {
            return (unsigned char)*a - (unsigned char)*b;
        }
    }
    return 0;
}

int strcmp(const char *a, const char *b)
{
    return strncmp(a, b, (size_t)-1);
}

/* ---------------------------------------------------------------- printf */

struct out {
    char *buf;
    size_t len, pos; /* pos counts what would have been written */
};

static void put(struct out *o, char c)
{
    if (o->pos + 1 < o->len) {
        o->buf[o->pos] = c;
    }
    o->pos++;
}

static void put_padded(struct out *o, const char *s, size_t n, int width, bool left, char pad)
{
    size_t i;

    for (; !left && width > (int)n; width--) {
        put(o, pad);
    }
    for (i = 0; i < n; i++) {
        put(o, s[i]);
    }
    for (; left && width > (int)n; width--) {
        put(o, ' ');
    }
}

static void put_number(struct out *o, uint64_t v, bool negative, unsigned base, const char *prefix,
                       int width, bool left, bool zero)
{
    char digits[24], all[32];
    size_t n = 0, m = 0, i;

    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (negative) {
        all[m++] = '-';
    }
    for (; prefix && *prefix; prefix++) {
        all[m++] = *prefix;
    }
    if (zero && !left) {
        /* Zeros go between the sign or prefix and the digits. */
        for (; width > (int)(m + n) && m + n < sizeof(all); width--) {
            all[m++] = '0';
        }
    }
    for (i = 0; i < n; i++) {
        all[m++] = digits[n - 1 - i];
    }
    put_padded(o, all, m, width, left, ' ');
}

int guest_vsnprintf(char *buf, size_t len, const char *fmt, va_list ap)
{
    struct out o = {buf, len, 0};

    for (; *fmt; fmt++) {
        bool left = false, zero = false, alt = false;
        int width = 0, longs = 0;
        uint64_t u;
        int64_t d;

        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        for (fmt++;; fmt++) {
            if (*fmt == '-') {
                left = true;
            } else if (*fmt == '0') {
                zero = true;
            } else if (*fmt == '#') {
                alt = true;
            } else {
                break;
            }
        }
        for (; *fmt >= '0' && *fmt <= '9'; fmt++) {
            width = width * 10 + (*fmt - '0');
        }
        for (; *fmt == 'l' || *fmt == 'z'; fmt++) {
            longs = *fmt == 'z' ? 2 : longs + 1;
        }
        switch (*fmt) {
        case 'd':
        case 'i':
            d = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_number(&o, d < 0 ? 0 - (uint64_t)d : (uint64_t)d, d < 0, 10, NULL, width, left,
                       zero);
            break;
        case 'u':
        case 'x':
            u = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
            put_number(&o, u, false, *fmt == 'u' ? 10 : 16, alt && *fmt == 'x' ? "0x" : NULL,
                       width, left, zero);
            break;
        case 'p':
            put_number(&o, (uintptr_t)va_arg(ap, void *), false, 16, "0x", width, left, zero);
            break;
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);

            s = s ? s : "(null)";
            put_padded(&o, s, strlen(s), width, left, ' ');
            break;
        }
        case '%':
            put(&o, '%');
            break;
        default: /* unknown: show it, so the mistake is seen */
            put(&o, '%');
            if (!*fmt) {
                fmt--;
                break;
            }
            put(&o, *fmt);
            break;
        }
    }
    if (len > 0) {
        buf[o.pos < len ? o.pos : len - 1] = '\0';
    }
    return (int)o.pos;
}

int guest_snprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = guest_vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

int guest_printf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = guest_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    guest_console_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    return n;
}

/* ---------------------------------------------------------- command line */

static void copy_cut(char *dst, size_t len, const char *src, size_t n)
{
    if (len == 0) {
        return;
    }
    n = n < len - 1 ? n : len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

bool guest_next_arg(const char **pos, char *key, size_t key_len, char *val, size_t val_len)
{
    const char *p = *pos, *word, *eq;

    while (*p == ' ') {
        p++;
    }
    if (!*p) {
        *pos = p;
        return false;
    }
    word = p;
    while (*p && *p != ' ') {
        p++;
    }
    for (eq = word; eq < p && *eq != '='; eq++) {
    }
    copy_cut(key, key_len, word, (size_t)(eq - word));
    copy_cut(val, val_len, eq < p ? eq + 1 : p, eq < p ? (size_t)(p - eq - 1) : 0);
    *pos = p;
    return true;
}
