/* SPDX-License-Identifier: ISC */
/*
 * The hosted (Linux) entry points: pick a platform (vchan_platform_select,
 * which libconduit asks too), format messages, call the caller's logger. The ring core stays free
 * of libc; this file is not.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libvchan/platform/clock.h"
#include "libvchan/platform/hosted.h"

uint64_t vchan__hosted_now_ms(void)
{
    return vclock_now_ms();
}

uint64_t vchan__hosted_now_ns(void)
{
    return vclock_now_ns();
}

void *vchan__hosted_alloc(size_t size)
{
    return calloc(1, size);
}

void vchan__hosted_free(void *ptr)
{
    free(ptr);
}

static void call_log(struct vchan *v, enum vchan_log_level level, const char *fmt, ...)
    VCHAN__PRINTF(3, 4);

static void call_log(struct vchan *v, enum vchan_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    v->log(v->log_ctx, level, fmt, ap);
    va_end(ap);
}

void vchan__hosted_log(struct vchan *v, enum vchan_log_level level, const char *msg)
{
    if (v && v->log) {
        call_log(v, level, "%s", msg);
    }
}

int vchan__errorf(struct vchan *v, int err, const char *fmt, ...)
{
    va_list ap;

    if (!v) {
        return -err;
    }
    va_start(ap, fmt);
    vsnprintf(v->errbuf, sizeof(v->errbuf), fmt, ap);
    va_end(ap);
    v->errmsg = v->errbuf;
    vchan__hosted_log(v, VCHAN_LOG_ERROR, v->errbuf);
    return -err;
}

void vchan__logf(struct vchan *v, enum vchan_log_level level, const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    if (!v || !v->log) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    vchan__hosted_log(v, level, buf);
}

static void say(char *errbuf, size_t errbuf_len, const char *fmt, ...) VCHAN__PRINTF(3, 4);

static void say(char *errbuf, size_t errbuf_len, const char *fmt, ...)
{
    va_list ap;

    if (errbuf && errbuf_len) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errbuf_len, fmt, ap);
        va_end(ap);
    }
}

/* The one place that decides: `name`, else VCHAN_PLATFORM, else Xen when its event device opens. */
int vchan_platform_select(const char *name, const char **selected, char *errbuf, size_t errbuf_len)
{
    const char *from = "";

    if (!selected) {
        return -VCHAN_EINVAL;
    }
    *selected = NULL;
    if (!name) {
        name = getenv("VCHAN_PLATFORM");
        from = " in VCHAN_PLATFORM";
    }
    if (name && *name) {
        if (strcmp(name, "local") == 0) {
            *selected = vchan__platform_local.name;
            return 0;
        }
        if (strcmp(name, "xen") == 0) {
#ifdef HAVE_XEN
            *selected = vchan__platform_xen.name;
            return 0;
#else
            say(errbuf, errbuf_len, "platform 'xen'%s not available: built without libxen", from);
            return -VCHAN_ENOSYS;
#endif
        }
        say(errbuf, errbuf_len, "unknown platform '%.32s'%s (expected xen or local)", name, from);
        return -VCHAN_EINVAL;
    }
#ifdef HAVE_XEN
    {
        int fd = open("/dev/xen/evtchn", O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            *selected = vchan__platform_xen.name;
            return 0;
        }
    }
#endif
    *selected = vchan__platform_local.name;
    return 0;
}

int vchan__hosted_pick(const char *platform, const struct vchan__platform **out, char *errbuf,
                       size_t errlen)
{
    const char *name;
    int rc = vchan_platform_select(platform, &name, errbuf, errlen);

    if (rc < 0) {
        return rc;
    }
#ifdef HAVE_XEN
    if (strcmp(name, vchan__platform_xen.name) == 0) {
        *out = &vchan__platform_xen;
        return 0;
    }
#endif
    *out = &vchan__platform_local;
    return 0;
}

/*
 * VCHAN_SPIN_US: the longest spin before a blocking call sleeps, in
 * microseconds (0: sleep at once; default: the ring's own, 50). For
 * measuring (tests/bench) and for hosts where a spinning CPU is dearer than
 * a wake-up. Malformed or out-of-range values are ignored.
 */
static void apply_spin_env(struct vchan *v)
{
    const char *s = getenv("VCHAN_SPIN_US");
    unsigned long us = 0;
    size_t i;

    if (!v || !s || !*s || v->spin_max_ns == 0) {
        return; /* unset, or a platform without a fine clock: no spin either way */
    }
    for (i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 6) {
            return;
        }
        us = us * 10 + (unsigned long)(s[i] - '0');
    }
    if (us > 100000) {
        return;
    }
    v->spin_max_ns = v->spin_ns = (uint32_t)(us * 1000u);
}

int vchan__hosted_open(struct vchan **out, const struct vchan_config *cfg, bool server,
                       const struct vchan__open_extra *extra)
{
    const struct vchan__platform *plat;
    struct vchan_config c;
    int rc;

    if (out) {
        *out = NULL;
    }
    if (!out || !cfg) {
        return -VCHAN_EINVAL;
    }
    if ((rc = vchan__config_load(&c, cfg)) || (rc = vchan__hosted_pick(c.platform, &plat, c.errbuf, c.errbuf_len))) {
        return rc;
    }
    rc = server ? vchan__server_open(out, plat, &c, extra) : vchan__client_open(out, plat, &c, extra);
    if (rc == 0) {
        apply_spin_env(*out);
    }
    return rc;
}

int vchan_server_open(struct vchan **out, const struct vchan_config *cfg)
{
    return vchan__hosted_open(out, cfg, true, NULL);
}

int vchan_client_open(struct vchan **out, const struct vchan_config *cfg)
{
    return vchan__hosted_open(out, cfg, false, NULL);
}

bool vchan__parse_dec(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;

    if (len == 0 || len > 10) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    if (n > max) {
        return false;
    }
    *out = n;
    return true;
}
