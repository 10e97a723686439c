/* SPDX-License-Identifier: ISC */
/*
 * The helpers every libconduit file calls back into: random bytes and
 * nonces, bounded formatting, the error sink and logging of a handle
 * (struct conduit__err), and a stack of layers' teardown. Not API.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "libconduit/internal/internal.h"

int conduit__random(void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -CONDUIT_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

bool conduit__nonce_valid(const char *s)
{
    size_t i;

    for (i = 0; i < CONDUIT__NONCE_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return s[i] == '\0';
}

int conduit__nonce_new(char nonce[CONDUIT__NONCE_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[CONDUIT__NONCE_LEN / 2];
    size_t i;

    if (conduit__random(raw, sizeof(raw)) < 0) {
        return -CONDUIT_EIO;
    }
    for (i = 0; i < sizeof(raw); i++) {
        nonce[2 * i] = hex[raw[i] >> 4];
        nonce[2 * i + 1] = hex[raw[i] & 0xf];
    }
    nonce[CONDUIT__NONCE_LEN] = '\0';
    return 0;
}

void conduit__fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static void call_log(struct conduit__err *e, enum conduit_log_level level, const char *fmt, ...)
    CONDUIT__PRINTF(3, 4);

static void call_log(struct conduit__err *e, enum conduit_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    e->log(e->log_ctx, level, fmt, ap);
    va_end(ap);
}

int conduit__errorf(struct conduit__err *e, int code, const char *fmt, ...)
{
    char body[CONDUIT__MSG_MAX];
    va_list ap;

    if (!e) {
        return -code;
    }
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (e->name[0] != '\0') {
        conduit__fmt(e->msg, sizeof(e->msg), "%s: %s", e->name, body);
    } else {
        snprintf(e->msg, sizeof(e->msg), "%s", body);
    }
    if (e->log) {
        call_log(e, CONDUIT_LOG_ERROR, "%s", e->msg);
    }
    return -code;
}

void conduit__logf(struct conduit__err *e, enum conduit_log_level level, const char *fmt, ...)
{
    char body[CONDUIT__MSG_MAX];
    va_list ap;

    if (!e || !e->log) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (e->name[0] != '\0') {
        call_log(e, level, "%s: %s", e->name, body);
    } else {
        call_log(e, level, "%s", body);
    }
}

void conduit__layer_close_all(struct conduit__layer *top)
{
    while (top) {
        struct conduit__layer *next = top->next;

        top->ops->close(top);
        top = next;
    }
}

void conduit__layer_set_err(struct conduit__layer *top, struct conduit__err *err)
{
    for (; top; top = top->next) {
        top->err = err;
    }
}

