/* SPDX-License-Identifier: ISC */
/*
 * Xen's public headers (libxen-dev's /usr/include/xen), as the test guest
 * uses them: the current interface version, and nothing from libc.
 */
#ifndef GUEST_XEN_PUBLIC_H
#define GUEST_XEN_PUBLIC_H

#define __XEN_INTERFACE_VERSION__ 0x00040e00

#include <stddef.h>
#include <stdint.h>

#include <xen/xen.h>

#include <xen/errno.h>
#include <xen/event_channel.h>
#include <xen/grant_table.h>
#include <xen/io/console.h>
#include <xen/io/xs_wire.h>
#include <xen/sched.h>

#endif
