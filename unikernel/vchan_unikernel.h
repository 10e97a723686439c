/* SPDX-License-Identifier: ISC */
/*
 * vchan_unikernel.h: what libvchan-unikernel.a adds to vchan.h.
 *
 * In a unikernel the whole of vchan.h works as on Linux, on the hooks of
 * vchan_hooks.h, with these differences:
 *  - vchan_config.platform must be NULL, "" or "unikernel" (or "xen": it
 *    is), and vchan_platform_select answers "unikernel" for those;
 *  - vchan_fd returns -VCHAN_ENOSYS: there are no file descriptors, wait
 *    with vchan_wait (blocking, with the handle's timeout);
 *  - a guest has no unmap-notify: only a clean vchan_close tells the peer
 *    we are gone (a crashed guest is destroyed by Xen, grants and all);
 *  - the library is silent unless given a logger: vchan_unikernel_log
 *    below sends its messages to vchan_hook_console_log;
 *  - opens and closes must not run concurrently, even of different
 *    channels: they share the list of pages parked because a peer still
 *    mapped them (I/O on different channels may run in parallel).
 */
#ifndef VCHAN_UNIKERNEL_H
#define VCHAN_UNIKERNEL_H

#include "vchan.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A vchan_log_fn for vchan_config.log that prints through
 * vchan_hook_console_log. It prints the library's own messages (which
 * come as "%s" and one string) in full, any other format as it stands.
 */
VCHAN_EXPORT void vchan_unikernel_log(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap);

#ifdef __cplusplus
}
#endif
#endif
