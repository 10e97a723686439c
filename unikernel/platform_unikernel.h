/* SPDX-License-Identifier: ISC */
/* The unikernel platform (platform_unikernel.c), for the entry points. */
#ifndef VCHAN_PLATFORM_UNIKERNEL_H
#define VCHAN_PLATFORM_UNIKERNEL_H

#include "libvchan/core/internal.h"

extern const struct vchan__platform vchan__platform_unikernel;

#endif
