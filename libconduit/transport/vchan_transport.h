/* SPDX-License-Identifier: ISC */
/*
 * What the vchan transport's two files share: the connection layer
 * (vchan.c) and the listeners (vchan_listen.c). Not API.
 */
#ifndef CONDUIT_TRANSPORT_VCHAN_TRANSPORT_H
#define CONDUIT_TRANSPORT_VCHAN_TRANSPORT_H

#include <stdbool.h>

#include "libconduit/internal/internal.h"
#include "vchan.h"

/*
 * libvchan's logger for one channel: its messages to the conduit handle's
 * logger, under a name. Heap-allocated and owned by whoever owns the
 * channel, because a channel made by a listener outlives it.
 */
struct logsink {
    conduit_log_fn *fn;
    void *ctx;
    char name[CONDUIT__NAME_MAX];
};
struct logsink *conduit__vchan_sink_new(const struct conduit__err *e, const char *name);
void conduit__vchan_sink_log(void *ctx, enum vchan_log_level level, const char *fmt, va_list ap)
    CONDUIT__PRINTF(3, 0);

/* A libvchan code as a conduit one. */
int conduit__vchan_code(int vrc);

/*
 * A vchan://D/P listener's path, shared with the connection it handed
 * out (vchan_listen.c): released when that connection closes.
 */
struct slot;
void conduit__vchan_slot_release(struct slot *s);

/* Wrap an open channel as a transport layer; takes v and sink (also on failure). */
int conduit__vchan_wrap(struct conduit__err *e, struct vchan *v, struct logsink *sink, bool server,
                        int domid, const char *port, struct slot *slot,
                        struct conduit__layer **out);

#endif
