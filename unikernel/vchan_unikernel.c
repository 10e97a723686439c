/* SPDX-License-Identifier: ISC */
/*
 * The unikernel entry points: vchan_server_open and vchan_client_open on
 * the unikernel platform. Everything else of vchan.h is the ring core's,
 * the same source files the Linux libvchan is built from.
 */
#include <stdarg.h>
#include <string.h>

#include "libvchan/core/internal.h"
#include "platform_unikernel.h"
#include "vchan_hooks.h"
#include "vchan_unikernel.h"

static bool same(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* This build has one platform; naming another is a mistake worth a message. */
int vchan_platform_select(const char *name, const char **selected, char *errbuf, size_t errbuf_len)
{
    static const char msg[] = "only the unikernel platform is built into libvchan-unikernel";
    size_t n;

    if (!selected) {
        return -VCHAN_EINVAL;
    }
    *selected = NULL;
    if (!name || !*name || same(name, "unikernel") || same(name, "xen")) {
        *selected = vchan__platform_unikernel.name;
        return 0;
    }
    if (errbuf && errbuf_len) {
        n = sizeof(msg) < errbuf_len ? sizeof(msg) : errbuf_len;
        memcpy(errbuf, msg, n);
        errbuf[n - 1] = '\0';
    }
    return -VCHAN_ENOSYS;
}

static int check_platform(const struct vchan_config *cfg)
{
    const char *name;

    return vchan_platform_select(cfg->platform, &name, cfg->errbuf, cfg->errbuf_len);
}

static int unikernel_open(struct vchan **out, const struct vchan_config *cfg, bool server)
{
    struct vchan_config c;
    int rc;

    if ((rc = vchan__config_load(&c, cfg)) || (rc = check_platform(&c))) {
        if (out) {
            *out = NULL;
        }
        return rc;
    }
    return server ? vchan__server_open(out, &vchan__platform_unikernel, &c, NULL)
                  : vchan__client_open(out, &vchan__platform_unikernel, &c, NULL);
}

int vchan_server_open(struct vchan **out, const struct vchan_config *cfg)
{
    return unikernel_open(out, cfg, true);
}

int vchan_client_open(struct vchan **out, const struct vchan_config *cfg)
{
    return unikernel_open(out, cfg, false);
}

void vchan_unikernel_log(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
{
    (void)ctx;
    /* The library formats its messages itself and logs them as ("%s", msg). */
    if (same(fmt, "%s")) {
        vchan_hook_console_log((int)level, va_arg(ap, const char *));
    } else {
        vchan_hook_console_log((int)level, fmt);
    }
}
