/* SPDX-License-Identifier: ISC */
/*
 * The local platform seen from outside its channels (vchan-cat --list and
 * --stat): which channels exist and a read-only mapping of a control page.
 *
 * A channel is visible two ways. While its server waits for a client, its
 * socket <dir>/<server>.<client>.<port> is in the rendezvous directory
 * (accept services: <server>.accept.<port>) and listening (a killed
 * server's socket file stays behind; /proc/net/unix tells them apart). For its whole life, its server
 * holds the memfd of its pages, named "vchan:<dir>/<server>.<client>.<port>"
 * (local.c), which /proc/<pid>/fd shows to this user (to root: all users);
 * opening that link gives the page, mapped here read-only.
 *
 * Names in the directory and in /proc come from other processes: each is
 * parsed strictly (decimal domain ids in range, a valid port) and anything
 * else is skipped, never trusted.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libvchan/core/wire.h"
#include "libvchan/platform/hosted.h"
#include "libvchan/platform/local_dir.h"

#define MEMFD_PREFIX "/memfd:vchan:"
#define MAX_CHANNELS 65536

struct entry {
    int server, client;
    char port[VCHAN_PORT_MAX + 1];
    bool published, has_page, connected;
    long pid;
};

struct list {
    struct entry *e;
    size_t n, cap;
};

/* A domain id written by another process: strictly decimal, in range. */
static bool parse_domid(const char *s, size_t len, int *out)
{
    uint64_t v;

    if (!vchan__parse_dec(s, len, VCHAN_DOMID_MAX, &v)) {
        return false;
    }
    *out = (int)v;
    return true;
}

/* "<server>.<client|accept>.<port>" exactly; client -1 for accept. */
static bool parse_name(const char *name, struct entry *e)
{
    const char *d1 = strchr(name, '.'), *d2;

    memset(e, 0, sizeof(*e));
    if (!d1 || !(d2 = strchr(d1 + 1, '.'))) {
        return false;
    }
    if (!parse_domid(name, (size_t)(d1 - name), &e->server)) {
        return false;
    }
    if ((size_t)(d2 - d1 - 1) == 6 && memcmp(d1 + 1, "accept", 6) == 0) {
        e->client = -1;
    } else if (!parse_domid(d1 + 1, (size_t)(d2 - d1 - 1), &e->client)) {
        return false;
    }
    if (strlen(d2 + 1) > VCHAN_PORT_MAX || !vchan__port_valid(d2 + 1)) {
        return false;
    }
    strcpy(e->port, d2 + 1);
    return true;
}

static struct entry *find(struct list *l, const struct entry *k)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->e[i].server == k->server && l->e[i].client == k->client &&
            strcmp(l->e[i].port, k->port) == 0) {
            return &l->e[i];
        }
    }
    return NULL;
}

static struct entry *add(struct list *l, const struct entry *k)
{
    struct entry *e = find(l, k);

    if (e) {
        return e;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct entry *ne;
        if (cap > MAX_CHANNELS || !(ne = realloc(l->e, cap * sizeof(*ne)))) {
            return NULL;
        }
        l->e = ne;
        l->cap = cap;
    }
    l->e[l->n] = *k;
    return &l->e[l->n++];
}

/*
 * The memfd link target of /proc/<pid>/fd/<fd> as a channel of `dir`:
 * "/memfd:vchan:<dir>/<name> (deleted)".
 */
static bool parse_memfd(const char *target, const char *dir, struct entry *e)
{
    size_t plen = strlen(MEMFD_PREFIX), dlen = strlen(dir), tlen;
    static const char deleted[] = " (deleted)";
    char name[PATH_MAX];

    if (strncmp(target, MEMFD_PREFIX, plen) != 0 || strncmp(target + plen, dir, dlen) != 0 ||
        target[plen + dlen] != '/') {
        return false;
    }
    target += plen + dlen + 1;
    tlen = strlen(target);
    if (tlen >= sizeof(deleted) - 1 &&
        strcmp(target + tlen - (sizeof(deleted) - 1), deleted) == 0) {
        tlen -= sizeof(deleted) - 1;
    }
    if (tlen >= sizeof(name)) {
        return false;
    }
    memcpy(name, target, tlen);
    name[tlen] = '\0';
    return parse_name(name, e) && e->client >= 0;
}

/* Map a page held open by another process, read-only: 0 or -errno. */
static int map_proc_fd(long pid, const char *fdname, const void **addr)
{
    char path[64];
    struct stat st;
    void *p;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/fd/%s", pid, fdname);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        return -errno;
    }
    /* Sealed against shrinking by its server, so the mapping cannot fault later. */
    if (fstat(fd, &st) < 0 || st.st_size < (off_t)VCHAN__PAGE_SIZE) {
        close(fd);
        return -ENODATA;
    }
    p = mmap(NULL, VCHAN__PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        return -errno;
    }
    *addr = p;
    return 0;
}

/*
 * Walk /proc/<pid>/fd for our memfds. With want (a channel), stop at it and
 * map its page into *addr; without, add every channel found to l. Returns
 * 0, or -EACCES when want was found only in a process we may not open.
 */
static int scan_proc(const char *dir, struct list *l, const struct entry *want, const void **addr,
                     long *holder)
{
    DIR *proc = opendir("/proc");
    struct dirent *pd;
    int denied = 0;

    if (!proc) {
        return 0;
    }
    while ((pd = readdir(proc))) {
        char fddir[64];
        DIR *fds;
        struct dirent *fdd;
        long pid;
        char *end;

        pid = strtol(pd->d_name, &end, 10);
        if (*end || pid <= 0) {
            continue;
        }
        snprintf(fddir, sizeof(fddir), "/proc/%ld/fd", pid);
        if (!(fds = opendir(fddir))) {
            continue; /* gone, or another user's */
        }
        while ((fdd = readdir(fds))) {
            char link[64 + 256], target[PATH_MAX];
            struct entry e;
            ssize_t n;

            if (fdd->d_name[0] == '.') {
                continue;
            }
            snprintf(link, sizeof(link), "%s/%s", fddir, fdd->d_name);
            n = readlink(link, target, sizeof(target) - 1);
            if (n <= 0) {
                continue;
            }
            target[n] = '\0';
            if (!parse_memfd(target, dir, &e)) {
                continue;
            }
            if (want) {
                int rc;
                if (e.server != want->server || e.client != want->client ||
                    strcmp(e.port, want->port) != 0) {
                    continue;
                }
                *holder = pid;
                if ((rc = map_proc_fd(pid, fdd->d_name, addr)) == 0) {
                    closedir(fds);
                    closedir(proc);
                    return 0;
                }
                denied = rc;
                continue;
            }
            {
                const void *page;
                struct entry *x = add(l, &e);
                if (!x) {
                    break;
                }
                if (!x->has_page && map_proc_fd(pid, fdd->d_name, &page) == 0) {
                    const volatile struct vchan__wire *w = page;
                    x->has_page = true;
                    x->pid = pid;
                    x->connected = w->cli_live == VCHAN__LIVE_OPEN;
                    munmap((void *)page, VCHAN__PAGE_SIZE);
                } else if (!x->pid) {
                    x->pid = pid;
                }
            }
        }
        closedir(fds);
    }
    closedir(proc);
    return want ? (denied ? denied : -ENOENT) : 0;
}

/*
 * Is someone listening on the socket at `path`? A server killed with
 * SIGKILL leaves its socket file behind; /proc/net/unix lists only the
 * sockets that exist, with __SO_ACCEPTCON (0x10000) in Flags for a
 * listener. (Connecting to find out would look like a client to the server.)
 */
static bool listening(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "r");
    char line[PATH_MAX + 128];
    size_t plen = strlen(path);
    bool found = false;

    if (!f) {
        return true; /* cannot tell: show it */
    }
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned long flags;
        char *sp = strrchr(line, ' ');
        size_t n;

        if (!sp || sscanf(line, "%*s %*s %*s %lx", &flags) != 1) {
            continue;
        }
        sp++;
        n = strcspn(sp, "\n");
        found = (flags & 0x10000ul) && n == plen && memcmp(sp, path, plen) == 0;
    }
    fclose(f);
    return found;
}

static int local_list(int server, vchan_channel_fn *fn, void *ctx, char *msg)
{
    char dir[PATH_MAX];
    struct list l = {0};
    DIR *d;
    int rc;

    if ((rc = vchan__local_dir_name(dir, sizeof(dir), msg)) < 0) {
        return rc;
    }
    if ((d = opendir(dir))) {
        struct dirent *de;
        while ((de = readdir(d))) {
            struct entry e;
            struct stat st;
            char path[PATH_MAX + 256];
            if (!parse_name(de->d_name, &e)) {
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || !listening(path)) {
                continue; /* not a socket, or a dead server's */
            }
            e.published = true;
            if (!add(&l, &e)) {
                break;
            }
        }
        closedir(d);
    }
    scan_proc(dir, &l, NULL, NULL, NULL);
    rc = 0;
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const struct entry *e = &l.e[i];
        struct vchan_channel ch = {
            .size = sizeof(ch),
            .platform = "local",
            .server = e->server,
            .client = e->client,
            .port = e->port,
            .published = e->published,
            .has_page = e->has_page,
            .connected = e->connected,
            .pid = e->pid,
        };
        if (server < 0 || e->server == server) {
            rc = fn(ctx, &ch);
        }
    }
    free(l.e);
    return rc;
}

static int local_page_open(int server, int client, const char *port, const void **addr,
                           void **handle, char *msg)
{
    char dir[PATH_MAX];
    struct entry want = {.server = server, .client = client};
    long holder = 0;
    int rc;

    if (!port || !vchan__port_valid(port) || strlen(port) > VCHAN_PORT_MAX) {
        snprintf(msg, VCHAN__MSG_MAX, "invalid port name");
        return -VCHAN_EINVAL;
    }
    if ((rc = vchan__local_dir_name(dir, sizeof(dir), msg)) < 0) {
        return rc;
    }
    if (client < 0 && (rc = vchan__local_env_domid(&want.client, msg)) < 0) {
        return rc;
    }
    client = want.client;
    strcpy(want.port, port);
    rc = scan_proc(dir, NULL, &want, addr, &holder);
    if (rc == 0) {
        *handle = (void *)*addr;
        return 0;
    }
    if (rc == -EACCES || rc == -EPERM) {
        snprintf(msg, VCHAN__MSG_MAX,
                 "channel %d.%d.%s: its page is held by pid %ld, which this user may not open "
                 "(run as that user or root)",
                 server, client, port, holder);
        return -VCHAN_EPERM;
    }
    if (rc == -ENODATA) {
        snprintf(msg, VCHAN__MSG_MAX, "channel %d.%d.%s: its server has not shared a page yet",
                 server, client, port);
        return -VCHAN_ENOENT;
    }
    if (rc == -ENOENT) {
        snprintf(msg, VCHAN__MSG_MAX, "no channel %d.%d.%s in %.120s (is its server running?)", server,
                 client, port, dir);
        return -VCHAN_ENOENT;
    }
    snprintf(msg, VCHAN__MSG_MAX, "channel %d.%d.%s: cannot map its page: %s", server, client,
             port, strerror(-rc));
    return -VCHAN_EIO;
}

static void local_page_close(void *handle)
{
    if (handle) {
        munmap(handle, VCHAN__PAGE_SIZE);
    }
}

const struct vchan__platform_debug vchan__local_debug = {
    .list = local_list,
    .page_open = local_page_open,
    .page_close = local_page_close,
};
