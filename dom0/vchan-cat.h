/* SPDX-License-Identifier: ISC */
/* vchan-cat's channel debugger (dom0/vchan-cat-debug.c), called by its main. */
#ifndef VCHAN_CAT_H
#define VCHAN_CAT_H

#include <stdbool.h>

/* --list [DOMAIN]: the channels the rendezvous shows (server -1: all). Exit status. */
int vcat_list(int server, bool json);
/* --stat TARGET [--watch]: one channel's control page, once or every second. Exit status. */
int vcat_stat(const char *target, bool watch, bool json);

#endif
