/* SPDX-License-Identifier: ISC */
/*
 * The local platform's rendezvous directory (local_dir.h): one copy of the
 * rules that the local platform (libvchan/platform/local*.c) and
 * libconduit/rendezvous/local.c both follow.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "libvchan/platform/clock.h"
#include "libvchan/platform/local_dir.h"

#define SAY(...) snprintf(msg, VCHAN__LOCAL_MSG_MAX, __VA_ARGS__)

int vchan__local_env_domid(int *domid, char msg[VCHAN__LOCAL_MSG_MAX])
{
    const char *s = getenv("VCHAN_DOMID");
    long val = 0;
    size_t i;

    *domid = 0;
    /* Unset or empty: the default, as for any other environment variable. */
    if (!s || !*s) {
        return 0;
    }
    /* Strictly decimal digits: no sign, no blanks, no hex, no trailing junk. */
    for (i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 5) {
            SAY("bad VCHAN_DOMID '%.32s' (expected 0-%d)", s, VCHAN_DOMID_MAX);
            return -VCHAN_EINVAL;
        }
        val = val * 10 + (s[i] - '0');
    }
    if (val > VCHAN_DOMID_MAX) {
        SAY("bad VCHAN_DOMID '%s' (expected 0-%d)", s, VCHAN_DOMID_MAX);
        return -VCHAN_EINVAL;
    }
    *domid = (int)val;
    return 0;
}

int vchan__local_dir_name(char *dir, size_t len, char msg[VCHAN__LOCAL_MSG_MAX])
{
    const char *env = getenv("VCHAN_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;

    if (env && *env) {
        n = snprintf(dir, len, "%s", env);
    } else if (xdg && xdg[0] == '/') {
        /* The XDG spec says to ignore a relative XDG_RUNTIME_DIR. */
        n = snprintf(dir, len, "%s/vchan", xdg);
    } else {
        n = snprintf(dir, len, "/tmp/vchan-%u", (unsigned)geteuid());
    }
    if (n < 0 || (size_t)n >= len) {
        SAY("vchan directory name too long (%d bytes)", n);
        return -VCHAN_EINVAL;
    }
    return 0;
}

int vchan__local_path(char *buf, size_t len, const char *dir, int server, int client,
                      const char *port, char msg[VCHAN__LOCAL_MSG_MAX])
{
    char middle[16];
    int n;

    if (client == VCHAN__LOCAL_ACCEPT) {
        snprintf(middle, sizeof(middle), "accept");
    } else {
        snprintf(middle, sizeof(middle), "%d", client);
    }
    n = snprintf(buf, len, "%s/%d.%s.%s", dir, server, middle, port);
    if (n < 0 || (size_t)n >= len) {
        SAY("vchan socket path %s/%d.%s.%s too long (%d bytes, at most %zu)", dir, server, middle,
            port, n, len ? len - 1 : 0);
        return -VCHAN_EINVAL;
    }
    return 0;
}

int vchan__local_dir_check(const char *dir, bool create, char msg[VCHAN__LOCAL_MSG_MAX])
{
    struct stat sb;

    if (create) {
        if (mkdir(dir, 0700) == 0) {
            /* The umask may have taken our own bits away; we just made it, so this is safe. */
            if (chmod(dir, 0700) < 0) {
                SAY("cannot set mode 0700 on %s: %s", dir, strerror(errno));
                return -VCHAN_EIO;
            }
        } else if (errno != EEXIST) {
            int err = errno;

            SAY("cannot create vchan directory %s: %s", dir, strerror(err));
            return err == EACCES ? -VCHAN_EPERM : -VCHAN_EIO;
        }
    }
    if (lstat(dir, &sb) < 0) {
        int err = errno;

        if (err == ENOENT && !create) {
            return -VCHAN_ENOENT;
        }
        SAY("cannot use vchan directory %s: %s", dir, strerror(err));
        return err == EACCES ? -VCHAN_EPERM : -VCHAN_EIO;
    }
    if (S_ISLNK(sb.st_mode)) {
        SAY("refusing vchan directory %s: it is a symbolic link", dir);
        return -VCHAN_EPERM;
    }
    if (!S_ISDIR(sb.st_mode)) {
        SAY("refusing vchan directory %s: not a directory", dir);
        return -VCHAN_EPERM;
    }
    if (sb.st_uid != geteuid()) {
        SAY("refusing vchan directory %s: owned by uid %u, not by us (uid %u)", dir,
            (unsigned)sb.st_uid, (unsigned)geteuid());
        return -VCHAN_EPERM;
    }
    if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
        SAY("refusing vchan directory %s: group- or world-writable (mode %04o)", dir,
            (unsigned)(sb.st_mode & 07777));
        return -VCHAN_EPERM;
    }
    return 0;
}

int vchan__local_bind(int fd, const char *path, struct vchan__local_sock *s,
                      char msg[VCHAN__LOCAL_MSG_MAX])
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat sb;
    int tries;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        SAY("socket path %s too long", path);
        return -VCHAN_EINVAL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    for (tries = 0; tries < 3; tries++) {
        int probe, err;

        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            if (lstat(path, &sb) < 0) {
                SAY("stat %s: %s", path, strerror(errno));
                return -VCHAN_EIO;
            }
            s->bound = true;
            s->dev = sb.st_dev;
            s->ino = sb.st_ino;
            /* bind applied the umask: connecting needs write permission, so fix the mode. */
            if (chmod(path, 0600) < 0) {
                SAY("chmod %s: %s", path, strerror(errno));
                return -VCHAN_EIO;
            }
            return 0;
        }
        if ((err = errno) != EADDRINUSE) {
            SAY("cannot bind %s: %s", path, strerror(err));
            return err == EACCES ? -VCHAN_EPERM : -VCHAN_EIO;
        }
        if (lstat(path, &sb) == 0 && !S_ISSOCK(sb.st_mode)) {
            SAY("%s exists and is not a socket", path);
            return -VCHAN_EADDRINUSE;
        }
        /* Is anyone listening there? A live one accepts (then sees us hang up at once). */
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (probe < 0) {
            SAY("socket: %s", strerror(errno));
            return -VCHAN_EIO;
        }
        err = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno;
        close(probe);
        if (err == 0 || err == EAGAIN) {
            return VCHAN__LOCAL_BUSY;
        }
        if (err == ECONNREFUSED) {
            s->replaced_stale = true;
            if (unlink(path) < 0 && errno != ENOENT) {
                SAY("cannot remove stale socket %s: %s", path, strerror(errno));
                return -VCHAN_EIO;
            }
        } else if (err != ENOENT) {
            SAY("cannot probe %s: %s", path, strerror(err));
            return -VCHAN_EIO;
        }
    }
    SAY("cannot bind %s: it keeps reappearing", path);
    return -VCHAN_EADDRINUSE;
}

void vchan__local_unbind(struct vchan__local_sock *s, const char *path)
{
    struct stat sb;

    if (s->bound && lstat(path, &sb) == 0 && sb.st_dev == s->dev && sb.st_ino == s->ino) {
        unlink(path);
    }
    s->bound = false;
}

int vchan__local_recv_full(int fd, void *buf, size_t len, int timeout_ms)
{
    uint64_t deadline = vclock_deadline(timeout_ms);
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, MSG_DONTWAIT);
        int ms;

        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        }
        if ((ms = vclock_left(deadline)) == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR) {
            return -1;
        }
    }
    return 0;
}
