/* SPDX-License-Identifier: ISC */
/*
 * What the drop-ins share (libvchan/compat): the Qubes API
 * (libvchan-conduit.so, qubes.c) is built over the libxenvchan drop-in
 * (xenvchan.c, compiled into it hidden), as Qubes' libvchan-xen is over
 * Xen's libxenvchan, so the return conventions of read, write, send and
 * recv are one piece of code.
 */
#ifndef VCHAN_COMPAT_H
#define VCHAN_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

struct libxenvchan;
struct vchan;

/* One open of the drop-in, past the parsing of a xenstore path. */
struct vchan__xv_open {
    bool server;
    int peer;             /* the other domain */
    const char *port;     /* our port name (valid: vchan__port_valid) */
    const char *platform; /* as vchan_platform_select gave it */
    int self;             /* local platform: our own domain id; -1: VCHAN_DOMID */
    size_t read_min, write_min;
    int timeout_ms;       /* client: how long to look for the server */
    const char *xs_path;  /* server: kept in the struct, as libxenvchan does; may be NULL */
    bool own_path;        /* Xen: xs_path is the directory itself, not under data/vchan */
};

/* A struct libxenvchan over a new channel, or NULL with errno set. */
struct libxenvchan *vchan__xv_open(const struct vchan__xv_open *o);

/* The channel under a handle vchan__xv_open made. */
struct vchan *vchan__xv_chan(struct libxenvchan *ctrl);

/* Our error code (either sign) as an errno value. */
int vchan__compat_errno(int rc);

#endif
