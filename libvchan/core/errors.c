/* SPDX-License-Identifier: ISC */
/* Error names and texts, made from the one table in vchan.h. */
#include "internal.h"

static const char *const texts[VCHAN_ERRNO_MAX] = {
    [VCHAN_OK] = "success",
#define X(name, text) [VCHAN_##name] = text,
    VCHAN_ERRNO_MAP(X)
#undef X
};

static const char *const names[VCHAN_ERRNO_MAX] = {
    [VCHAN_OK] = "OK",
#define X(name, text) [VCHAN_##name] = #name,
    VCHAN_ERRNO_MAP(X)
#undef X
};

static int code_index(int err)
{
    /* Negate only what is in range: -INT_MIN does not exist. */
    if (err < 0 && err > -VCHAN_ERRNO_MAX) {
        err = -err;
    }
    return err > 0 && err < VCHAN_ERRNO_MAX ? err : -1;
}

const char *vchan_strerror(int err)
{
    int i = code_index(err);
    return err == 0 ? texts[0] : i < 0 ? "unknown error" : texts[i];
}

const char *vchan_errname(int err)
{
    int i = code_index(err);
    return err == 0 ? names[0] : i < 0 ? "EUNKNOWN" : names[i];
}

int vchan__fail(struct vchan *v, int err, const char *msg)
{
    if (v) {
        v->errmsg = msg;
        if (v->plat && v->plat->log) {
            v->plat->log(v, VCHAN_LOG_ERROR, msg);
        }
    }
    return -err;
}

int vchan__broken(struct vchan *v, const char *msg)
{
    /* Log only the first violation: a hostile peer must not flood the log. */
    if (!v->broken) {
        v->broken = true;
        return vchan__fail(v, VCHAN_EPROTO, msg);
    }
    return -VCHAN_EPROTO;
}

const char *vchan_last_error(const struct vchan *v)
{
    return v && v->errmsg ? v->errmsg : "";
}
