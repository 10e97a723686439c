/* SPDX-License-Identifier: ISC */
/*
 * libconduit's error codes (the X-macro table of conduit.h): their texts,
 * symbolic names and classes.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdbool.h>

#include "conduit.h"

/* clang-format off */
static const char *const err_text[] = {
    [CONDUIT_OK] = "success",
#define ERR_TEXT(name, text) [CONDUIT_##name] = text,
    CONDUIT_ERRNO_MAP(ERR_TEXT)
#undef ERR_TEXT
};

static const char *const err_name[] = {
    [CONDUIT_OK] = "OK",
#define ERR_NAME(name, text) [CONDUIT_##name] = #name,
    CONDUIT_ERRNO_MAP(ERR_NAME)
#undef ERR_NAME
};
/* clang-format on */

CONDUIT_EXPORT const char *conduit_strerror(int err)
{
    unsigned e = err < 0 ? 0u - (unsigned)err : (unsigned)err;

    return e < CONDUIT_ERRNO_MAX ? err_text[e] : "unknown error";
}

CONDUIT_EXPORT const char *conduit_errname(int err)
{
    unsigned e = err < 0 ? 0u - (unsigned)err : (unsigned)err;

    return e < CONDUIT_ERRNO_MAX ? err_name[e] : "EUNKNOWN";
}

/* Decided before any I/O: the URI's codes and ENOTSUP (conduit.h). */
CONDUIT_EXPORT bool conduit_err_is_usage(int err)
{
    switch (err < 0 ? -err : err) {
    case CONDUIT_EINVAL:
    case CONDUIT_ESYNTAX:
    case CONDUIT_ESCHEME:
    case CONDUIT_EOPTION:
    case CONDUIT_ERANGE:
    case CONDUIT_EWILDCARD:
    case CONDUIT_ENOTSUP:
        return true;
    default:
        return false;
    }
}
