/* SPDX-License-Identifier: ISC */
/*
 * vchan-cat: netcat for every libconduit URI (vchan, TCP, UNIX, TLS over
 * any of them). stdin goes to the connection, the connection goes to
 * stdout, bytes unchanged, nothing lost on close.
 *
 * End of input (DESIGN.md, "vchan-cat"): when stdin ends, conduit_shutdown
 * ends our direction and we read until the peer's end-of-file. What that
 * means per transport is libconduit's (conduit.h): TCP, UNIX and TLS
 * half-close; plain vchan has none on the wire, so its shutdown waits until
 * the peer has consumed everything and closes (a side that wrote nothing
 * changes nothing and reads until the peer closes). Where the peer's
 * end-of-file is its close (conduit_has_half_close false), we stop there,
 * and data of ours still undelivered is an error.
 *
 * The connection is non-blocking and driven by one poll() loop over stdin,
 * the connection's descriptor and a self-pipe for signals. stdin and stdout
 * are inherited and may be shared, so they stay blocking: stdin is read
 * only after poll says it is readable, stdout is written with blocking
 * writes (which is the back-pressure we want when the consumer is slow).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* pipe2 */
#endif

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

#include "conduit.h"
#include "dom0/vchan-cat.h"
#include "libvchan/platform/clock.h" /* header only */

#define EXIT_OK 0
#define EXIT_IO 1
#define EXIT_USAGE 2

/* Buffers of each direction: the default vchan ring size. */
#define BUF_SIZE (64u * 1024u)
/* Reads from the connection per loop turn before stdin gets its turn again. */
#define READS_PER_TURN 4

static const char *prog = "vchan-cat";

struct options {
    const char *uri_text;
    bool listen, keep, progress;
    int verbose;
    int flag_wait_ms; /* -w, handed to libconduit as both timeouts; 0: not given */
    int wait_ms;      /* -w or timeout=: our idle rule (nothing moved); 0: none */
    const char *ca, *cert, *key;
    const char *peer, *peers; /* sodium: --peer, --peers */
};

/* How a connection ended. */
enum outcome {
    DONE_OK,    /* both directions finished cleanly */
    DONE_PEER,  /* the connection failed (peer, protocol, timeout): -k goes on */
    DONE_FATAL, /* a local failure (stdout, stdin, open) or no client came: stop */
    DONE_USAGE, /* the library refused the configuration (VCHAN_DOMID, ...) */
    DONE_SIGNAL,
};

struct conn {
    const struct options *o;
    struct conduit *c;
    uint8_t *inbuf, *outbuf;
    size_t in_off, in_len; /* stdin data read but not yet written to the connection */
    bool use_stdin;        /* this connection reads stdin (-k: the first only) */
    bool stdin_eof;
    bool wrote;    /* at least one byte went into the connection */
    bool out_done; /* half-close: our direction is shut down */
    bool peer_eof; /* half-close: the peer's direction ended */
    uint64_t sent, received;
    uint64_t start_ms, last_progress_ms, last_move_ms;
    uint64_t drain_ms; /* when all our input was written (0: not yet) */
    uint64_t progress_bytes;
    bool half_close; /* conduit_has_half_close: the peer's EOF is not its close */
};

static volatile sig_atomic_t got_signal;
static int sig_pipe[2] = {-1, -1};

/* ------------------------------------------------------------ messages */

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void msg(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/*
 * The library logs once where an error is found; we print the final error
 * ourselves (conduit_last_error), so errors are not repeated here. Warnings
 * (a peer that went away, a stale socket removed) explain rather than
 * decide: -v shows them.
 */
static void log_cb(void *ctx, enum conduit_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void log_cb(void *ctx, enum conduit_log_level level, const char *fmt, va_list ap)
{
    const struct options *o = ctx;

    if (level == CONDUIT_LOG_ERROR || o->verbose < 1 ||
        (level == CONDUIT_LOG_DEBUG && o->verbose < 2)) {
        return;
    }
    fprintf(stderr, "%s: %s", prog, level == CONDUIT_LOG_WARN ? "warning: " : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

/* The library's message names the endpoint already ("tls://h:443: ..."). */
static const char *conn_message(struct conduit *c, int rc)
{
    const char *m = conduit_last_error(c);

    return m[0] != '\0' ? m : conduit_strerror(rc);
}

static void usage(FILE *f)
{
    /* clang-format off */
    fprintf(f,
        "Usage: %s [options] URI        connect; stdin -> connection, connection -> stdout\n"
        "       %s [options] -l URI     listen, serve one connection, exit (-k: keep serving)\n"
        "\n"
        "URI: [tls+|sodium+]TRANSPORT://ADDRESS[?OPTION=VALUE[&...]]  (tls:// is tls+tcp://)\n"
        "  vchan://DOMAIN/PORT  DOMAIN: with -l the client's domain id, or * for clients of\n"
        "                       any domain; without -l the server's domain (id, or a name on\n"
        "                       Xen). PORT: 1-64 characters of [A-Za-z0-9_-]\n"
        "  tcp://HOST:PORT      HOST: name, IPv4 or [IPv6]; with -l, * listens on all\n"
        "  unix:///PATH         a UNIX stream socket\n"
        "  options  timeout=SECS                  as -w\n"
        "           read-size=BYTES, write-size=BYTES  vchan, with -l: sizes of the rings the\n"
        "                                         server reads and writes (1-1048576,\n"
        "                                         default 65536); a client gets the server's\n"
        "           ca=FILE, cert=FILE, key=FILE  TLS: CA to verify the peer (default: the\n"
        "                                         system's), own certificate and key\n"
        "                                         (required with -l)\n"
        "           servername=NAME               TLS: name to verify and send (SNI);\n"
        "                                         required for tls+unix and tls+vchan\n"
        "           verify=0                      TLS: do not verify the peer (insecure)\n"
        "           key=FILE                      sodium: own private key (--genkey)\n"
        "           peer=KEY                      sodium: the peer's public key, pinned\n"
        "           peers=FILE|any                sodium: allowed public keys, one a line;\n"
        "                                         any (with -l only): accept every key\n"
        "\n"
        "Options:\n"
        "  -l            listen: be the server\n"
        "  -k            with -l: when a connection ends, serve the next one (stdin goes to the\n"
        "                first only)\n"
        "  -v            verbose: connection details, byte counts and the library's warnings\n"
        "                on stderr (-vv: also its debug messages)\n"
        "      --progress  a line on stderr about once a second: bytes moved and MB/s\n"
        "  -w SECS       timeout in seconds (decimals allowed, 0.001-86400) of every wait:\n"
        "                for the server to appear (default 30), for a client to connect,\n"
        "                for data to move and for the peer to consume ours (default: none).\n"
        "                A side with no input that received nothing for SECS closes and\n"
        "                exits 0 (as netcat -w); every other timeout is an error\n"
        "      --ca FILE, --cert FILE, --key FILE\n"
        "                TLS files, as ca=, cert=, key= in the URI (--key: sodium's too)\n"
        "      --peer KEY, --peers FILE|any\n"
        "                sodium: as peer=, peers= in the URI\n"
        "      --genkey FILE  write a new sodium private key to FILE (mode 0600; never\n"
        "                over an existing file) and print its public key\n"
        "      --pubkey FILE  print the public key of the private key in FILE\n"
        "      --list [DOMAIN]  the channels the rendezvous shows (served by DOMAIN)\n"
        "      --stat CHANNEL   map a channel's control page read-only: rings, indices,\n"
        "                notify bits and a verdict; CHANNEL is vchan://SERVER/PORT (this\n"
        "                domain the client) or SERVER/CLIENT/PORT. Exit 1 if corrupt\n"
        "      --watch CHANNEL  as --stat, every second, with rates, until interrupted\n"
        "      --json    --list, --stat and --watch as JSON\n"
        "  -h, --help    this help\n"
        "      --version the version of vchan-cat (vchan-conduit's)\n"
        "\n"
        "End of input: on TCP, UNIX and TLS, %s shuts its direction down (TLS:\n"
        "close_notify) and reads until the peer closes. vchan has no half-close: when\n"
        "stdin ends, %s waits until the peer has consumed everything sent, then closes;\n"
        "a side that sent nothing reads until the peer closes. So '%s -l URI > file'\n"
        "and '%s URI < file' move the file whole. On vchan, data the peer sends after\n"
        "that close is lost (and the peer exits 1); if neither side has input, only -w\n"
        "ends the wait.\n"
        "\n"
        "Environment: VCHAN_PLATFORM=xen|local (default: xen when /dev/xen/evtchn opens);\n"
        "  local platform: VCHAN_DIR (rendezvous directory), VCHAN_DOMID (own domain id, 0).\n"
        "\n"
        "Exit status: 0 both directions finished cleanly, 1 connection or I/O error,\n"
        "  2 usage error or bad URI.\n",
        prog, prog, prog, prog, prog, prog);
    /* clang-format on */
}

/* ------------------------------------------------------------ time, signals */

static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    ssize_t w;

    got_signal = sig;
    w = write(sig_pipe[1], &c, 1);
    (void)w;
    errno = saved;
}

/*
 * Catch SIGINT, SIGTERM and SIGHUP once a connection or listener exists, so
 * that it is closed (and, on Xen, unpublished from xenstore) before we die.
 * Not before: a client waiting inside conduit_connect for its server would
 * not notice the flag, and has nothing to clean up anyway. No SA_RESTART:
 * a blocked write to stdout returns and we notice.
 */
static int catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;

    if (sig_pipe[0] >= 0) {
        return 0;
    }
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        msg("pipe: %s", strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (sigaction(sigs[i], &sa, NULL) < 0) {
            msg("sigaction: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Die of the signal we caught, as if we had not caught it. */
static void reraise(void)
{
    int sig = got_signal;

    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);
}

/* ------------------------------------------------------------ stdout */

/* Write all of buf; EAGAIN (a non-blocking stdout we inherited) waits for POLLOUT. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            if (got_signal) {
                return -EINTR;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};

            if (poll(&p, 1, -1) < 0 && errno != EINTR) {
                return -errno;
            }
            if (got_signal) {
                return -EINTR;
            }
            continue;
        }
        return n < 0 ? -errno : -EIO;
    }
    return 0;
}

/* ------------------------------------------------------------ progress */

static void human(char *buf, size_t len, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;

    while (bytes >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(buf, len, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

static void show_progress(struct conn *c, uint64_t now)
{
    uint64_t total = c->sent + c->received;
    double secs = (double)(now - c->last_progress_ms) / 1000.0;
    char s[32], r[32];

    human(s, sizeof(s), (double)c->sent);
    human(r, sizeof(r), (double)c->received);
    msg("%s sent, %s received, %.1f MB/s", s, r,
        secs > 0 ? (double)(total - c->progress_bytes) / secs / 1e6 : 0.0);
    c->last_progress_ms = now;
    c->progress_bytes = total;
}

static void show_totals(struct conn *c)
{
    double secs = (double)(vclock_now_ms() - c->start_ms) / 1000.0;
    double total = (double)(c->sent + c->received);

    msg("sent %llu bytes, received %llu bytes in %.3f s (%.1f MB/s)", (unsigned long long)c->sent,
        (unsigned long long)c->received, secs, secs > 0 ? total / secs / 1e6 : 0.0);
}

/* ------------------------------------------------------------ the data path */

/* Copy what the connection has to stdout; *eof when the peer closed and all is read. */
static enum outcome pump_out(struct conn *c, bool *eof, bool *moved)
{
    *eof = false;
    for (int i = 0; i < READS_PER_TURN; i++) {
        size_t n = 0;
        int rc = conduit_read(c->c, c->outbuf, BUF_SIZE, &n);

        if (rc == -CONDUIT_EAGAIN) {
            return DONE_OK;
        }
        if (rc < 0) {
            msg("%s", conn_message(c->c, rc));
            return DONE_PEER;
        }
        if (n == 0) {
            *eof = true;
            return DONE_OK;
        }
        rc = write_all(STDOUT_FILENO, c->outbuf, n);
        if (rc == -EINTR) {
            return DONE_SIGNAL;
        }
        if (rc < 0) {
            msg("stdout: %s", strerror(-rc));
            return DONE_FATAL;
        }
        c->received += n;
        *moved = true;
    }
    return DONE_OK;
}

/* Bytes we wrote that the peer has not consumed (vchan: still in the ring). */
static size_t unconsumed(struct conn *c)
{
    size_t n = 0;

    return conduit_unconsumed(c->c, &n) < 0 ? 0 : n;
}

/*
 * The peer is gone and we have read all it wrote. Clean only if nothing of
 * ours is left behind: buffered stdin, unconsumed data (vchan), or (a
 * quick look) more input waiting on stdin.
 */
static enum outcome peer_closed(struct conn *c, bool count_ring)
{
    uint64_t lost = c->in_len + (count_ring ? unconsumed(c) : 0);
    bool more = false;

    if (c->use_stdin && !c->stdin_eof) {
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};

        if (poll(&p, 1, 0) > 0) {
            ssize_t n = read(STDIN_FILENO, c->inbuf, BUF_SIZE);

            if (n > 0) {
                lost += (uint64_t)n;
                more = true;
            } else if (n == 0) {
                c->stdin_eof = true;
            }
        }
    }
    if (lost > 0) {
        msg("%s: peer closed with %s%llu bytes not delivered", c->o->uri_text,
            more ? "at least " : "", (unsigned long long)lost);
        return DONE_PEER;
    }
    return DONE_OK;
}

static enum outcome read_stdin(struct conn *c, bool *moved)
{
    ssize_t n = read(STDIN_FILENO, c->inbuf, BUF_SIZE);

    if (n > 0) {
        c->in_off = 0;
        c->in_len = (size_t)n;
        *moved = true;
        return DONE_OK;
    }
    if (n == 0) {
        c->stdin_eof = true;
        return DONE_OK;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
        return got_signal ? DONE_SIGNAL : DONE_OK;
    }
    msg("stdin: %s", strerror(errno));
    return DONE_FATAL;
}

static int min_timeout(int a, uint64_t deadline, uint64_t now)
{
    int left;

    if (deadline == 0) {
        return a;
    }
    left = deadline <= now ? 0 : (deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now));
    return a < 0 || left < a ? left : a;
}

/* stdin -> connection: what is buffered. */
static enum outcome push_in(struct conn *c, bool *moved)
{
    size_t n = 0;
    int rc;

    if (c->in_len == 0) {
        return DONE_OK;
    }
    rc = conduit_write(c->c, c->inbuf + c->in_off, c->in_len, &n);
    c->in_off += n;
    c->in_len -= n;
    c->sent += n;
    if (n > 0) {
        c->wrote = true;
        *moved = true;
    }
    if (rc == 0 || rc == -CONDUIT_EAGAIN) {
        return DONE_OK;
    }
    /* vchan EPIPE: the peer closed; the next turn reads what it left and its end-of-file. */
    if (rc == -CONDUIT_EPIPE && !c->half_close) {
        return DONE_OK;
    }
    if (rc == -CONDUIT_EPIPE || rc == -CONDUIT_ECONNRESET) {
        msg("%s (%llu bytes not delivered)", conn_message(c->c, rc), (unsigned long long)c->in_len);
        return DONE_PEER;
    }
    msg("%s", conn_message(c->c, rc));
    return DONE_PEER;
}

/*
 * Our input has ended: end our direction (conduit_shutdown; on vchan, once
 * the peer has consumed it all, that is the close), then read until the
 * peer's end-of-file.
 */
static enum outcome input_ended(struct conn *c, bool *done)
{
    *done = false;
    if (!c->out_done) {
        int rc = conduit_shutdown(c->c);

        if (rc == -CONDUIT_EAGAIN) {
            return DONE_OK;
        }
        if (rc < 0) {
            msg("%s", conn_message(c->c, rc));
            return DONE_PEER;
        }
        c->out_done = true;
    }
    *done = c->peer_eof;
    return DONE_OK;
}

static enum outcome run(struct conn *c)
{
    const struct options *o = c->o;
    int cfd = conduit_fd(c->c);

    if (cfd < 0) {
        msg("%s", conn_message(c->c, cfd));
        return DONE_FATAL;
    }
    c->start_ms = c->last_progress_ms = c->last_move_ms = vclock_now_ms();
    if (!c->use_stdin) {
        c->stdin_eof = true;
    }

    for (;;) {
        bool eof = false, moved = false, done = false, busy;
        unsigned want = 0;
        short events = 0;
        enum outcome r;
        uint64_t now;
        int rc;

        if (got_signal) {
            return DONE_SIGNAL;
        }
        /* connection -> stdout */
        if (!c->peer_eof) {
            r = pump_out(c, &eof, &moved);
            if (r != DONE_OK) {
                return r;
            }
            if (eof) {
                if (!c->half_close) {
                    return peer_closed(c, true);
                }
                c->peer_eof = true;
                if (c->out_done) {
                    return DONE_OK;
                }
            }
        }
        /* stdin -> connection */
        if ((r = push_in(c, &moved)) != DONE_OK) {
            return r;
        }
        now = vclock_now_ms();
        if (moved) {
            c->last_move_ms = now;
        }
        if (c->stdin_eof && c->in_len == 0) {
            if (c->drain_ms == 0 && c->wrote) {
                c->drain_ms = now;
            }
            if ((r = input_ended(c, &done)) != DONE_OK || done) {
                return r;
            }
        }
        if (o->progress && now - c->last_progress_ms >= 1000) {
            show_progress(c, now);
        }

        /* Say what we wait for; this also consumes the connection's pending events. */
        if (!c->peer_eof) {
            want |= CONDUIT_WANT_READ;
        }
        if (c->in_len > 0) {
            want |= CONDUIT_WANT_WRITE;
        }
        if (c->stdin_eof && c->in_len == 0 && !c->out_done) {
            want |= CONDUIT_WANT_SHUTDOWN;
        }
        bool want_stdin = !c->stdin_eof && c->in_len == 0;

        /* Nothing but the connection to wait for: it may watch the peer briefly first. */
        rc = conduit_poll_events(c->c, want | (want && !want_stdin ? CONDUIT_WANT_SPIN : 0),
                                 &events);
        if (rc < 0) {
            msg("%s", conn_message(c->c, rc));
            return DONE_PEER;
        }
        busy = rc > 0;

        if (busy && !want_stdin) {
            continue;
        }

        /*
         * Sleep until the connection, stdin or a signal has something, or a
         * deadline. When busy, only look (timeout 0): a peer that keeps us
         * busy must not starve our stdin.
         */
        /* Waiting for nothing from the connection: leave it out (a reset peer would spin us). */
        struct pollfd pfd[3] = {
            {.fd = want ? cfd : -1, .events = events},
            {.fd = sig_pipe[0], .events = POLLIN},
            {.fd = STDIN_FILENO, .events = POLLIN},
        };
        nfds_t nfds = want_stdin ? 3 : 2;
        uint64_t deadline = 0;
        int timeout = -1;

        if (busy) {
            timeout = 0;
        } else if (o->wait_ms > 0) {
            /*
             * -w bounds every wait: for data to move at all, and once our
             * input has ended, for the peer to consume what we wrote.
             */
            deadline = c->last_move_ms + (uint64_t)o->wait_ms;
            if (c->drain_ms != 0 && c->drain_ms + (uint64_t)o->wait_ms < deadline) {
                deadline = c->drain_ms + (uint64_t)o->wait_ms;
            }
        }
        timeout = min_timeout(timeout, deadline, now);
        if (o->progress) {
            timeout = min_timeout(timeout, c->last_progress_ms + 1000, now);
        }
        rc = poll(pfd, nfds, timeout);
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            msg("poll: %s", strerror(errno));
            return DONE_FATAL;
        }
        if (rc == 0 && deadline != 0 && vclock_now_ms() >= deadline) {
            if (c->drain_ms != 0 && !c->out_done) {
                msg("%s: timed out: the peer did not consume %zu bytes within %.3f s", o->uri_text,
                    unconsumed(c), o->wait_ms / 1000.0);
                return DONE_PEER;
            }
            if (!conduit_handshake_done(c->c)) {
                msg("%s: timed out: the handshake did not finish within %.3f s", o->uri_text,
                    o->wait_ms / 1000.0);
                return DONE_PEER;
            }
            if (c->stdin_eof && !c->wrote) {
                /*
                 * Our side is complete (no input) and the peer has sent
                 * nothing for the whole timeout: as netcat's -w, an idle
                 * connection is closed, not failed. Without this, two vchan
                 * sides with empty input would wait for each other forever:
                 * nothing on the wire says that a peer's input has ended.
                 */
                if (o->verbose) {
                    msg("%s: nothing moved for %.3f s: closing", o->uri_text, o->wait_ms / 1000.0);
                }
                return DONE_OK;
            }
            msg("%s: timed out: nothing moved for %.3f s", o->uri_text, o->wait_ms / 1000.0);
            return DONE_PEER;
        }
        if (nfds > 2 && pfd[2].revents) {
            bool got = false;

            r = read_stdin(c, &got);
            if (r != DONE_OK) {
                return r;
            }
            if (got) {
                c->last_move_ms = vclock_now_ms();
            }
        }
    }
}

/* ------------------------------------------------------------ connections */

static enum outcome serve(const struct options *o, struct conduit *cd, bool use_stdin)
{
    struct conn c = {.o = o, .c = cd, .use_stdin = use_stdin,
                     .half_close = conduit_has_half_close(cd)};
    enum outcome r;

    c.inbuf = malloc(BUF_SIZE);
    c.outbuf = malloc(BUF_SIZE);
    if (c.inbuf == NULL || c.outbuf == NULL) {
        msg("out of memory");
        r = DONE_FATAL;
        goto out;
    }
    r = run(&c);
    if (o->verbose) {
        show_totals(&c);
    }
out:
    free(c.inbuf);
    free(c.outbuf);
    return r;
}

static void fill_options(const struct options *o, struct conduit_options *co)
{
    memset(co, 0, sizeof(*co));
    co->struct_size = sizeof(*co);
    /* -w bounds the connect and the wait for a client; timeout= does the same in libconduit. */
    co->connect_timeout_ms = o->flag_wait_ms;
    co->timeout_ms = o->flag_wait_ms;
    co->nonblocking = true; /* the connection; connect itself still completes */
    co->ca = o->ca;
    co->cert = o->cert;
    co->key = o->key;
    co->peer = o->peer;
    co->peers = o->peers;
    co->log = log_cb;
    co->log_ctx = (void *)o;
}

static enum outcome failed_open(int rc)
{
    msg("%s", conn_message(NULL, rc));
    /* A malformed VCHAN_DOMID, a missing servername= and the like are usage errors. */
    return conduit_err_is_usage(rc) ? DONE_USAGE : DONE_FATAL;
}

static enum outcome client(const struct options *o, const struct conduit_uri *u)
{
    struct conduit_options co;
    struct conduit *c = NULL;
    enum outcome r;
    int rc;

    fill_options(o, &co);
    rc = conduit_connect_uri(&c, u, &co);
    if (rc < 0) {
        return failed_open(rc);
    }
    if (catch_signals() < 0) {
        conduit_close(c);
        return DONE_FATAL;
    }
    if (o->verbose) {
        msg("%s: connected: %s", o->uri_text, conduit_info(c));
    }
    r = serve(o, c, true);
    conduit_close(c);
    return r;
}

/* Wait (in our own poll, so signals and -w apply) for the next connection. */
static enum outcome next_client(const struct options *o, struct conduit_listener *l,
                                struct conduit **out)
{
    int lfd = conduit_listener_fd(l);

    for (;;) {
        struct pollfd pfd[2] = {
            {.fd = lfd, .events = POLLIN},
            {.fd = sig_pipe[0], .events = POLLIN},
        };
        int rc = conduit_accept(l, out);

        if (rc == 0) {
            return DONE_OK;
        }
        if (rc == -CONDUIT_ETIMEDOUT) {
            /* The listener's connect timeout (-w or timeout=): nobody came. */
            msg("%s", conduit_listener_last_error(l));
            return DONE_FATAL;
        }
        if (rc != -CONDUIT_EAGAIN) {
            msg("%s", conduit_listener_last_error(l)[0] ? conduit_listener_last_error(l)
                                                        : conduit_strerror(rc));
            /*
             * This client failed; the listener itself only on local trouble,
             * or when nobody can ever come (ENOENT: vchan://D/P whose domain
             * D is gone, which -k would otherwise wait for until -w).
             */
            return rc == -CONDUIT_ENOMEM || rc == -CONDUIT_EIO || rc == -CONDUIT_ENOENT
                       ? DONE_FATAL
                       : DONE_PEER;
        }
        if (got_signal) {
            return DONE_SIGNAL;
        }
        /* Pending clients have deadlines of their own: look at least every second. */
        rc = poll(pfd, 2, 1000);
        if (rc < 0 && errno != EINTR) {
            msg("poll: %s", strerror(errno));
            return DONE_FATAL;
        }
    }
}

static enum outcome server(const struct options *o, const struct conduit_uri *u)
{
    struct conduit_listener *l = NULL;
    struct conduit_options co;
    bool first = true; /* stdin serves the first connection only */
    enum outcome r;
    int rc;

    fill_options(o, &co);
    rc = conduit_listen_uri(&l, u, &co);
    if (rc < 0) {
        return failed_open(rc);
    }
    if (catch_signals() < 0) {
        conduit_listener_close(l);
        return DONE_FATAL;
    }
    if (o->verbose) {
        msg("%s: listening", o->uri_text);
    }
    for (;;) {
        struct conduit *c = NULL;

        r = next_client(o, l, &c);
        if (r == DONE_OK && !o->keep) {
            /*
             * Serving one connection: stop listening now, so its close does
             * not publish a next channel (for a peer domain that may be gone,
             * which on Xen costs seconds) that nobody will accept.
             */
            conduit_listener_close(l);
            l = NULL;
        }
        if (r == DONE_OK) {
            if (o->verbose) {
                msg("client connected: %s", conduit_info(c));
            }
            r = serve(o, c, first);
            conduit_close(c);
            first = false;
        }
        if (r == DONE_SIGNAL || r == DONE_FATAL || r == DONE_USAGE || !o->keep) {
            break;
        }
    }
    conduit_listener_close(l);
    return r;
}

/* ------------------------------------------------------------ main */

/*
 * If we were started with stdin, stdout or stderr closed, the connection's
 * own descriptors could take those numbers and our data would go into
 * them. Fill the gaps: a closed stdin reads as empty, a closed stdout
 * fails every write (read-only /dev/null) rather than dropping data.
 */
static void std_fds(void)
{
    static const int modes[3] = {O_RDONLY, O_RDONLY, O_WRONLY};

    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            int n = open("/dev/null", modes[fd]);

            if (n >= 0 && n != fd) {
                dup2(n, fd);
                close(n);
            }
        }
    }
}

/* A TLS file given both ways is ambiguous. */
static int twice(const struct options *o, const struct conduit_uri *u)
{
    const char *which = o->ca && conduit_uri_option(u, "ca")       ? "ca"
                        : o->cert && conduit_uri_option(u, "cert") ? "cert"
                        : o->key && conduit_uri_option(u, "key")   ? "key"
                        : o->peer && conduit_uri_option(u, "peer") ? "peer"
                        : o->peers && conduit_uri_option(u, "peers") ? "peers"
                                                 : NULL;

    if (which) {
        msg("%s: %s given twice, by --%s and by %s=", o->uri_text, which, which, which);
        return -1;
    }
    return 0;
}

/* --list [DOMAIN] and --stat/--watch TARGET (vchan-cat-debug.c). */
static int debugger(bool list, const char *target, bool watch, bool json, int nargs, char **args)
{
    long server = -1;
    char *end;

    if (list && target) {
        msg("--list and --%s do not go together", watch ? "watch" : "stat");
        return EXIT_USAGE;
    }
    if (target) {
        if (nargs > 0) {
            msg("--%s takes one channel, got also '%s'", watch ? "watch" : "stat", args[0]);
            return EXIT_USAGE;
        }
        return vcat_stat(target, watch, json);
    }
    if (nargs > 1) {
        msg("--list takes at most one DOMAIN, got also '%s'", args[1]);
        return EXIT_USAGE;
    }
    if (nargs == 1) {
        errno = 0;
        server = strtol(args[0], &end, 10);
        if (errno || end == args[0] || *end || server < 0 || server > 32751) {
            msg("--list: '%s' is not a domain id (0-32751)", args[0]);
            return EXIT_USAGE;
        }
    }
    return vcat_list((int)server, json);
}

int main(int argc, char **argv)
{
    enum {
        OPT_PROGRESS = 256,
        OPT_CA,
        OPT_CERT,
        OPT_KEY,
        OPT_LIST,
        OPT_STAT,
        OPT_WATCH,
        OPT_JSON,
        OPT_VERSION,
        OPT_PEER,
        OPT_PEERS,
        OPT_GENKEY,
        OPT_PUBKEY,
    };
    /* clang-format off */
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"ca", required_argument, NULL, OPT_CA},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"list", no_argument, NULL, OPT_LIST},
        {"stat", required_argument, NULL, OPT_STAT},
        {"watch", required_argument, NULL, OPT_WATCH},
        {"json", no_argument, NULL, OPT_JSON},
        {"version", no_argument, NULL, OPT_VERSION},
        {"peer", required_argument, NULL, OPT_PEER},
        {"peers", required_argument, NULL, OPT_PEERS},
        {"genkey", required_argument, NULL, OPT_GENKEY},
        {"pubkey", required_argument, NULL, OPT_PUBKEY},
        {NULL, 0, NULL, 0},
    };
    /* clang-format on */
    struct options o = {0};
    struct conduit_uri *u = NULL;
    const char *stat_target = NULL;
    bool list = false, watch = false, json = false;
    enum outcome r;
    char err[512];
    int ch, rc, status = EXIT_OK;

    signal(SIGPIPE, SIG_IGN);
    std_fds();
    while ((ch = getopt_long(argc, argv, "hklvw:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            usage(stdout);
            return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_IO;
        case 'k':
            o.keep = true;
            break;
        case 'l':
            o.listen = true;
            break;
        case 'v':
            o.verbose++;
            break;
        case 'w':
            if (conduit_timeout_parse(optarg, &o.flag_wait_ms, err, sizeof(err)) < 0) {
                msg("-w: %s", err);
                return EXIT_USAGE;
            }
            break;
        case OPT_PROGRESS:
            o.progress = true;
            break;
        case OPT_CA:
            o.ca = optarg;
            break;
        case OPT_CERT:
            o.cert = optarg;
            break;
        case OPT_KEY:
            o.key = optarg;
            break;
        case OPT_LIST:
            list = true;
            break;
        case OPT_WATCH:
            watch = true;
            /* fall through */
        case OPT_STAT:
            stat_target = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_PEER:
            o.peer = optarg;
            break;
        case OPT_PEERS:
            o.peers = optarg;
            break;
        case OPT_GENKEY:
        case OPT_PUBKEY: {
            char pub[CONDUIT_KEY_TEXT_SIZE];

            if (argc - optind > 0) {
                msg("--%s takes one FILE, got also '%s'",
                    ch == OPT_GENKEY ? "genkey" : "pubkey", argv[optind]);
                return EXIT_USAGE;
            }
            rc = ch == OPT_GENKEY ? conduit_key_generate(optarg, pub)
                                  : conduit_key_public(optarg, pub);
            if (rc < 0) {
                msg("%s", conduit_last_error(NULL));
                return conduit_err_is_usage(rc) || rc == -CONDUIT_EPERM ? EXIT_USAGE : EXIT_IO;
            }
            printf("%s\n", pub);
            return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_IO;
        }
        case OPT_VERSION:
            /* The one version of the tree: configure.ac's AC_INIT. */
            printf("vchan-cat (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
            return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_IO;
        default:
            fprintf(stderr, "Try '%s --help'.\n", prog);
            return EXIT_USAGE;
        }
    }
    if (list || stat_target) {
        return debugger(list, stat_target, watch, json, argc - optind, argv + optind);
    }
    if (optind == argc) {
        msg("no URI given");
        fprintf(stderr, "Usage: %s [options] [-l] URI   (%s --help)\n", prog, prog);
        return EXIT_USAGE;
    }
    if (argc - optind > 1) {
        msg("one URI expected, got %d (first extra: '%s')", argc - optind, argv[optind + 1]);
        return EXIT_USAGE;
    }
    o.uri_text = argv[optind];
    if (o.keep && !o.listen) {
        msg("-k needs -l");
        return EXIT_USAGE;
    }

    rc = conduit_uri_parse(o.uri_text, o.listen ? CONDUIT_URI_LISTEN : 0, &u, err, sizeof(err));
    if (rc < 0) {
        msg("%s: %s", o.uri_text, err);
        return rc == -CONDUIT_ENOMEM ? EXIT_IO : EXIT_USAGE;
    }
    if ((o.ca != NULL || o.cert != NULL) && conduit_uri_layer(u) != CONDUIT_LAYER_TLS) {
        msg("%s: --%s needs a tls URI", o.uri_text, o.ca != NULL ? "ca" : "cert");
        status = EXIT_USAGE;
        goto out;
    }
    if (o.key != NULL && conduit_uri_layer(u) == CONDUIT_LAYER_NONE) {
        msg("%s: --key needs a tls or sodium URI", o.uri_text);
        status = EXIT_USAGE;
        goto out;
    }
    if ((o.peer != NULL || o.peers != NULL) && conduit_uri_layer(u) != CONDUIT_LAYER_SODIUM) {
        msg("%s: --%s needs a sodium URI", o.uri_text, o.peer != NULL ? "peer" : "peers");
        status = EXIT_USAGE;
        goto out;
    }
    if (twice(&o, u) < 0) {
        status = EXIT_USAGE;
        goto out;
    }
    /*
     * libconduit applies the URI's timeout= itself (connect, accept); we
     * only read it for the idle rule that -w also sets.
     */
    o.wait_ms = o.flag_wait_ms;
    if (conduit_uri_option(u, "timeout")) {
        if (o.flag_wait_ms > 0) {
            msg("%s: timeout given twice, by -w and by timeout=", o.uri_text);
            status = EXIT_USAGE;
            goto out;
        }
        /* The parser has checked it already: this cannot fail. */
        (void)conduit_timeout_parse(conduit_uri_option(u, "timeout"), &o.wait_ms, err, sizeof(err));
    }

    r = o.listen ? server(&o, u) : client(&o, u);
    if (r == DONE_SIGNAL) {
        conduit_uri_free(u);
        reraise();
    }
    status = r == DONE_OK ? EXIT_OK : r == DONE_USAGE ? EXIT_USAGE : EXIT_IO;
out:
    conduit_uri_free(u);
    if (fflush(stdout) != 0) {
        status = EXIT_IO;
    }
    return status;
}
