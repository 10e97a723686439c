// SPDX-License-Identifier: ISC
/*
 * xenvchan-peer: netcat over Xen's own libxenvchan.
 *
 *   xenvchan-peer server|client DOMID XSPATH [--read-min N] [--write-min N]
 *                 [--timeout SECS] [--verbose]
 *
 * The reference peer of the real-Xen tests (tests/xen): everything our vchan
 * claims about the wire is checked against this program, built on Debian's
 * libxenvchan, in either role.
 *
 * stdin goes to the vchan, the vchan goes to stdout. The vchan wire has no
 * half-close, so the end of a transfer follows the same contract as
 * vchan-cat: a side whose input ended waits until the peer has consumed
 * everything it wrote, then closes; a side that wrote nothing keeps reading
 * until the peer closes. A closed peer's unread data is still delivered.
 *
 * Exit status: 0 clean finish, 1 run-time error (including a peer that
 * closed before consuming what we had sent, and a timeout), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxenvchan.h>

#define BUF_SIZE (64 * 1024)
/* libxenvchan formats "<path>/event-channel" into a 64-byte buffer and
 * silently truncates: refuse paths that would not fit. */
#define XSPATH_MAX (63 - (int)sizeof("/event-channel") + 1)
/* libxenvchan refuses rings above 2^20 bytes. */
#define RING_MAX (1u << 20)
#define CLIENT_RETRY_MS 100
#define DEFAULT_TIMEOUT_S 30

struct options {
    bool server;
    int domid;
    const char *xs_path;
    size_t read_min;
    size_t write_min;
    unsigned timeout_s; /* 0: wait forever */
    bool verbose;
};

struct peer {
    const struct options *opt;
    struct libxenvchan *chan;
    bool connected;     /* server: the client has attached */
    bool peer_closed;
    uint64_t sent;      /* bytes written into the ring */
    uint64_t received;  /* bytes read from the ring */
    double t_connected; /* monotonic seconds */
};

static const char *prog = "xenvchan-peer";

static void msg(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s server|client DOMID XSPATH [options]\n"
            "  server: publish a vchan for client domain DOMID at XSPATH\n"
            "  client: connect to the vchan of server domain DOMID at XSPATH\n"
            "  --read-min N    server: minimum size of the ring we read (bytes, K/M suffix)\n"
            "  --write-min N   server: minimum size of the ring we write\n"
            "  --timeout SECS  give up after SECS without progress (connect, transfer,\n"
            "                  final drain); 0 waits forever; default %d\n"
            "  --verbose, -v   connection details and byte counts on stderr\n",
            prog, DEFAULT_TIMEOUT_S);
    exit(2);
}

/* Decimal number up to max; with_suffix also takes K or M (binary). */
static bool parse_number(const char *s, unsigned long long max, bool with_suffix,
                         unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9') {
        return false;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0) {
        return false;
    }
    if (with_suffix && (*end == 'K' || *end == 'k')) {
        v = v > ULLONG_MAX / 1024 ? ULLONG_MAX : v * 1024;
        end++;
    } else if (with_suffix && (*end == 'M' || *end == 'm')) {
        v = v > ULLONG_MAX / (1024 * 1024) ? ULLONG_MAX : v * 1024 * 1024;
        end++;
    }
    if (*end != '\0' || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static void parse_args(int argc, char **argv, struct options *opt)
{
    unsigned long long v;
    bool sizes_given = false;
    int i;

    if (argc < 4) {
        usage();
    }
    if (strcmp(argv[1], "server") == 0) {
        opt->server = true;
    } else if (strcmp(argv[1], "client") != 0) {
        usage();
    }
    /* Ids from DOMID_FIRST_RESERVED (0x7ff0) up are not domains. */
    if (!parse_number(argv[2], 0x7fef, false, &v)) {
        msg("bad DOMID '%s'", argv[2]);
        exit(2);
    }
    opt->domid = (int)v;
    opt->xs_path = argv[3];
    if (opt->xs_path[0] == '\0' || (int)strlen(opt->xs_path) > XSPATH_MAX) {
        msg("XSPATH must be 1 to %d characters (libxenvchan's limit)", XSPATH_MAX);
        exit(2);
    }
    opt->timeout_s = DEFAULT_TIMEOUT_S;

    for (i = 4; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            opt->verbose = true;
            continue;
        }
        if (val == NULL) {
            usage();
        }
        i++;
        if (strcmp(a, "--read-min") == 0 || strcmp(a, "--write-min") == 0) {
            if (!parse_number(val, RING_MAX, true, &v)) {
                msg("%s: '%s' is not a size up to %u bytes", a, val, RING_MAX);
                exit(2);
            }
            if (strcmp(a, "--read-min") == 0) {
                opt->read_min = (size_t)v;
            } else {
                opt->write_min = (size_t)v;
            }
            sizes_given = true;
        } else if (strcmp(a, "--timeout") == 0) {
            if (!parse_number(val, 86400, false, &v)) {
                msg("--timeout: '%s' is not a number of seconds", val);
                exit(2);
            }
            opt->timeout_s = (unsigned)v;
        } else {
            usage();
        }
    }
    if (sizes_given && !opt->server) {
        /* The server alone chooses the ring sizes. */
        msg("--read-min/--write-min apply to the server only");
        exit(2);
    }
}

static bool write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            msg("write to stdout: %s", strerror(errno));
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static bool timed_out(const struct options *opt, double deadline)
{
    return opt->timeout_s != 0 && now() >= deadline;
}

/*
 * The client cannot wait on anything before the server's xenstore keys
 * exist (libxenvchan has no watch API), so it polls.
 */
static struct libxenvchan *connect_client(const struct options *opt)
{
    double deadline = now() + opt->timeout_s;

    for (;;) {
        struct libxenvchan *chan = libxenvchan_client_init(NULL, opt->domid, opt->xs_path);

        if (chan != NULL) {
            return chan;
        }
        if (timed_out(opt, deadline)) {
            msg("no server for dom%d at %s after %u s", opt->domid, opt->xs_path,
                opt->timeout_s);
            return NULL;
        }
        usleep(CLIENT_RETRY_MS * 1000);
    }
}

/* Ring sizes as libxenvchan took them at connect time (its private copy). */
static size_t write_ring_size(const struct libxenvchan *chan)
{
    return (size_t)1 << chan->write.order;
}

static size_t read_ring_size(const struct libxenvchan *chan)
{
    return (size_t)1 << chan->read.order;
}

static void note_connected(struct peer *p)
{
    if (p->connected) {
        return;
    }
    p->connected = true;
    p->t_connected = now();
    if (p->opt->verbose) {
        msg("connected (%s, dom%d, %s): read ring %zu B, write ring %zu B",
            p->opt->server ? "server" : "client", p->opt->domid, p->opt->xs_path,
            read_ring_size(p->chan), write_ring_size(p->chan));
    }
}

/*
 * Copy everything the ring holds to stdout. Returns -1 on error, else the
 * number of bytes moved; sets peer_closed when the peer has gone.
 */
static long drain_ring(struct peer *p, char *buf)
{
    long moved = 0;

    for (;;) {
        int n = libxenvchan_read(p->chan, buf, BUF_SIZE);

        if (n > 0) {
            if (!write_all(STDOUT_FILENO, buf, (size_t)n)) {
                return -1;
            }
            p->received += (uint64_t)n;
            moved += n;
            continue;
        }
        if (n == 0) {
            return moved; /* empty; a notification has been requested */
        }
        /* -1 means closed or failed: libxenvchan does not say which. */
        if (libxenvchan_is_open(p->chan) != 0) {
            msg("libxenvchan_read failed");
            return -1;
        }
        /*
         * libxenvchan_read checks for data, then for liveness: a peer that
         * wrote and closed between the two looks closed with data still in
         * the ring. Closing is final, so what is there now is all there will
         * be: take it.
         */
        p->peer_closed = true;
        if (libxenvchan_data_ready(p->chan) <= 0) {
            return moved;
        }
    }
}

/*
 * Does stdin hold more input right now? Only asked once the peer has gone:
 * a side that never sent keeps the right to a clean exit only if it had
 * nothing to send. Reads (and drops) at most one byte.
 */
static bool input_pending(void)
{
    struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
    char c;

    if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLIN | POLLHUP))) {
        return false;
    }
    return read(STDIN_FILENO, &c, 1) == 1;
}

/* Main loop: both directions until the transfer is over. Returns exit status. */
static int pump(struct peer *p)
{
    static char in[BUF_SIZE], out[BUF_SIZE];
    size_t in_len = 0, in_off = 0;
    bool in_eof = false;
    int evfd = libxenvchan_fd_for_select(p->chan);
    double deadline = now() + p->opt->timeout_s;

    for (;;) {
        struct pollfd fds[2];
        bool progress = false;
        long moved;
        int nfds, r;

        if (!p->connected && (!p->opt->server || libxenvchan_is_open(p->chan) == 1)) {
            note_connected(p);
            progress = true;
        }

        moved = drain_ring(p, out);
        if (moved < 0) {
            return 1;
        }
        progress |= moved > 0;

        if (p->peer_closed) {
            /* Whatever we took from stdin must have reached the peer. */
            size_t unread = write_ring_size(p->chan)
                            - (size_t)libxenvchan_buffer_space(p->chan);

            if (in_off < in_len || unread != 0) {
                msg("peer closed with %zu bytes of ours unsent and %zu unread",
                    in_len - in_off, unread);
                return 1;
            }
            /* A sender cut short, even between two reads of its input. */
            if (!in_eof && (p->sent > 0 || input_pending())) {
                msg("peer closed before the end of our input (%" PRIu64 " bytes sent)",
                    p->sent);
                return 1;
            }
            return 0;
        }

        if (in_off < in_len) {
            int n = libxenvchan_write(p->chan, in + in_off, in_len - in_off);

            if (n < 0) {
                if (libxenvchan_is_open(p->chan) == 0) {
                    continue; /* peer closed: reported above after draining */
                }
                msg("libxenvchan_write failed");
                return 1;
            }
            in_off += (size_t)n;
            p->sent += (uint64_t)n;
            progress |= n > 0;
            if (in_off == in_len) {
                in_off = in_len = 0;
            }
        }

        if (in_eof && in_len == 0 && p->sent > 0) {
            /* Done once the peer has consumed it all (this also asks the
             * peer to notify us as it reads). */
            if ((size_t)libxenvchan_buffer_space(p->chan) == write_ring_size(p->chan)) {
                return 0;
            }
        }

        if (progress) {
            deadline = now() + p->opt->timeout_s;
        } else if (timed_out(p->opt, deadline)) {
            msg("no progress for %u s (%s; sent %" PRIu64 ", received %" PRIu64 ")",
                p->opt->timeout_s,
                !p->connected ? "peer never connected"
                : in_eof && p->sent > 0 ? "peer did not consume our data"
                : "peer idle",
                p->sent, p->received);
            return 1;
        }
        if (progress) {
            continue; /* more may be ready at once: look before sleeping */
        }

        fds[0] = (struct pollfd){ .fd = evfd, .events = POLLIN };
        nfds = 1;
        if (!in_eof && in_len == 0) {
            fds[1] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
            nfds = 2;
        }
        r = poll(fds, (nfds_t)nfds, p->opt->timeout_s == 0 ? -1 : 250);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            msg("poll: %s", strerror(errno));
            return 1;
        }
        if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            /* Consume and re-arm the event; only safe once it is pending. */
            if (libxenvchan_wait(p->chan) < 0) {
                msg("libxenvchan_wait failed");
                return 1;
            }
        }
        if (nfds == 2 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(STDIN_FILENO, in, sizeof in);

            if (n < 0 && errno != EINTR && errno != EAGAIN) {
                msg("read from stdin: %s", strerror(errno));
                return 1;
            }
            if (n == 0) {
                in_eof = true;
            } else if (n > 0) {
                in_len = (size_t)n;
                deadline = now() + p->opt->timeout_s;
            }
        }
    }
}

int main(int argc, char **argv)
{
    struct options opt = { 0 };
    struct peer p = { .opt = &opt };
    double t_end;
    int rc;

    parse_args(argc, argv, &opt);
    /* A closed stdout is an error to report, not a reason to die silently. */
    signal(SIGPIPE, SIG_IGN);

    if (opt.server) {
        p.chan = libxenvchan_server_init(NULL, opt.domid, opt.xs_path, opt.read_min,
                                         opt.write_min);
        if (p.chan == NULL) {
            msg("libxenvchan_server_init(dom%d, %s): %s", opt.domid, opt.xs_path,
                strerror(errno));
            return 1;
        }
        if (opt.verbose) {
            msg("serving dom%d at %s", opt.domid, opt.xs_path);
        }
    } else {
        p.chan = connect_client(&opt);
        if (p.chan == NULL) {
            return 1;
        }
    }
    /* libxenvchan leaves this field uninitialised: set it before any I/O. */
    p.chan->blocking = 0;

    rc = pump(&p);
    t_end = now();
    if (opt.verbose || rc != 0) {
        double secs = p.connected ? t_end - p.t_connected : 0.0;
        uint64_t bytes = p.sent > p.received ? p.sent : p.received;

        msg("%s: sent %" PRIu64 " B, received %" PRIu64 " B in %.3f s (%.1f MiB/s)",
            rc == 0 ? "done" : "failed", p.sent, p.received, secs,
            secs > 0 ? (double)bytes / secs / (1024.0 * 1024.0) : 0.0);
    }
    libxenvchan_close(p.chan);
    return rc;
}
