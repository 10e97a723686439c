/* SPDX-License-Identifier: ISC */
/*
 * The local platform's rendezvous directory, shared by the platform itself
 * (libvchan/platform/local*.c, in libvchan) and by libconduit's accept
 * rendezvous (libconduit/rendezvous/local.c), which must agree with it on the
 * directory, its rules and the local domain id (DESIGN.md).
 *
 * Not part of the API: local_dir.c is compiled into both libraries and,
 * like everything else there, hidden (-fvisibility=hidden and the version
 * scripts), so neither library exports it. It knows neither library's
 * error sink: a failure returns -VCHAN_E* with a message in `msg`, which
 * the caller records in its own (and maps to its own codes).
 */
#ifndef VCHAN_LOCAL_DIR_H
#define VCHAN_LOCAL_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vchan.h"

#define VCHAN__LOCAL_MSG_MAX 256

/* The local domain id: VCHAN_DOMID, strictly decimal, 0..VCHAN_DOMID_MAX; 0 when unset or empty. */
int vchan__local_env_domid(int *domid, char msg[VCHAN__LOCAL_MSG_MAX]);

/* The directory's name: VCHAN_DIR, else $XDG_RUNTIME_DIR/vchan, else /tmp/vchan-<euid>. */
int vchan__local_dir_name(char *dir, size_t len, char msg[VCHAN__LOCAL_MSG_MAX]);

/* vchan__local_path's `client` for the accept service's socket. */
#define VCHAN__LOCAL_ACCEPT (-1)

/*
 * The one spelling of a rendezvous socket's path, which both libraries must
 * agree on: <dir>/<server>.<client>.<port> for a channel that server
 * domain publishes for client domain, or <dir>/<server>.accept.<port> for
 * the accept service (client VCHAN__LOCAL_ACCEPT). 0, or -VCHAN_EINVAL with
 * a message when it does not fit in len bytes (a sun_path).
 */
int vchan__local_path(char *buf, size_t len, const char *dir, int server, int client,
                      const char *port, char msg[VCHAN__LOCAL_MSG_MAX]);

/*
 * The directory must be ours alone (a directory, not a link, owned by our
 * euid, not group- or world-writable): anyone who could write to it could
 * put a socket of their own in place of ours. `create` makes it (0700)
 * when missing; without it, a missing directory is -VCHAN_ENOENT with no
 * message (no server has made it yet).
 */
int vchan__local_dir_check(const char *dir, bool create, char msg[VCHAN__LOCAL_MSG_MAX]);

/* A socket bound in the directory, known by its inode so that only ours is ever removed. */
struct vchan__local_sock {
    bool bound;
    bool replaced_stale; /* a dead listener's socket was removed first */
    dev_t dev;
    ino_t ino;
};

/* vchan__local_bind: someone is listening on the path. */
#define VCHAN__LOCAL_BUSY 1

/*
 * Bind fd (AF_UNIX) to path with mode 0600, replacing a stale socket
 * (nobody listening) but never a live one: 0, VCHAN__LOCAL_BUSY (no
 * message: the caller says who is there), or -VCHAN_E*. s->bound may be
 * set even on failure: vchan__local_unbind cleans up in any case.
 */
int vchan__local_bind(int fd, const char *path, struct vchan__local_sock *s,
                      char msg[VCHAN__LOCAL_MSG_MAX]);
/* Remove our socket from the directory, unless another has replaced it. */
void vchan__local_unbind(struct vchan__local_sock *s, const char *path);

/* Exactly len bytes from a non-blocking socket within timeout_ms (-1: none); -1 with errno. */
int vchan__local_recv_full(int fd, void *buf, size_t len, int timeout_ms);

#endif
