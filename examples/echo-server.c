/* SPDX-License-Identifier: ISC */
/*
 * echo-server: sends back whatever its clients send, to many clients at
 * once, over any libconduit transport. Only the URI differs:
 *
 *   echo-server 'tcp://localhost:7000'
 *   echo-server 'unix:///run/echo.sock'
 *   echo-server 'vchan://STAR/echo'
 *
 * (STAR stands for "*", which a C comment cannot hold after a slash: "*" as
 * the host or domain accepts clients from any address or domain.)
 *   echo-server 'tls://localhost:7443?cert=server.pem&key=server.key'
 *
 * One thread, one poll() loop: the listener and every connection are
 * non-blocking; conduit_poll_events says what to wait for on each
 * connection's descriptor (and consumes vchan notifications, so it is
 * called before every poll).
 *
 * When a client ends its direction (end-of-file), the server sends what is
 * still pending, ends its own direction where the transport can
 * (conduit_shutdown; vchan cannot, and the client closes first there),
 * and closes. -n N: exit after N clients have come and gone (for tests).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <conduit.h>

#define MAX_CLIENTS 64
#define BUF 16384

struct client {
    struct conduit *c;
    char buf[BUF];
    size_t off, len; /* buf[off, off + len) is still to be sent back */
    bool eof;        /* the client ended its direction */
    bool shut;       /* we ended ours */
    unsigned long long bytes;
};

static int verbose;

static void drop(struct client **slot, const char *why)
{
    struct client *cl = *slot;

    if (verbose || why) {
        fprintf(stderr, "echo-server: client done (%llu bytes)%s%s\n", cl->bytes, why ? ": " : "",
                why ? why : "");
    }
    conduit_close(cl->c);
    free(cl);
    *slot = NULL;
}

/*
 * Move what can move now. Returns true when the client is finished (or
 * failed), false to keep it.
 */
static bool service(struct client *cl, const char **why)
{
    for (;;) {
        bool moved = false;
        size_t n = 0;
        int rc;

        if (cl->len > 0) {
            rc = conduit_write(cl->c, cl->buf + cl->off, cl->len, &n);
            cl->off += n;
            cl->len -= n;
            moved = n > 0;
            if (rc < 0 && rc != -CONDUIT_EAGAIN) {
                *why = conduit_last_error(cl->c);
                return true;
            }
        }
        if (cl->len == 0) {
            cl->off = 0;
        }
        if (!cl->eof && cl->len == 0) {
            rc = conduit_read(cl->c, cl->buf, sizeof(cl->buf), &n);
            if (rc == 0 && n == 0) {
                cl->eof = true;
            } else if (rc == 0) {
                cl->len = n;
                cl->bytes += n;
                moved = true;
            } else if (rc != -CONDUIT_EAGAIN) {
                *why = conduit_last_error(cl->c);
                return true;
            }
        }
        if (cl->eof && cl->len == 0) {
            if (!cl->shut) {
                rc = conduit_shutdown(cl->c);
                if (rc == -CONDUIT_EAGAIN) {
                    return false;
                }
                /* An error here (a vchan client gone with echo unread) ends it too. */
                cl->shut = true;
            }
            return true;
        }
        if (!moved) {
            return false;
        }
    }
}

int main(int argc, char **argv)
{
    struct conduit_options opts = CONDUIT_OPTIONS_INIT(.nonblocking = true);
    struct client *clients[MAX_CLIENTS] = {0};
    struct conduit_listener *l = NULL;
    long served = 0, limit = 0;
    int ch, rc, status = 1;

    signal(SIGPIPE, SIG_IGN);
    while ((ch = getopt(argc, argv, "n:v")) != -1) {
        switch (ch) {
        case 'n':
            limit = strtol(optarg, NULL, 10);
            break;
        case 'v':
            verbose++;
            break;
        default:
            fprintf(stderr, "usage: echo-server [-v] [-n CLIENTS] URI\n");
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: echo-server [-v] [-n CLIENTS] URI\n");
        return 2;
    }
    rc = conduit_listen(&l, argv[optind], &opts);
    if (rc < 0) {
        fprintf(stderr, "echo-server: %s\n", conduit_last_error(NULL));
        return conduit_err_is_usage(rc) ? 2 : 1;
    }
    if (verbose) {
        fprintf(stderr, "echo-server: listening on %s\n", argv[optind]);
    }

    while (limit == 0 || served < limit) {
        struct pollfd pfd[MAX_CLIENTS + 1];
        int nfds = 0, timeout = 1000;

        pfd[nfds].fd = conduit_listener_fd(l);
        pfd[nfds].events = POLLIN;
        nfds++;
        for (int i = 0; i < MAX_CLIENTS; i++) {
            unsigned want;
            short events = 0;

            if (!clients[i]) {
                continue;
            }
            want = clients[i]->len > 0 ? CONDUIT_WANT_WRITE
                   : clients[i]->eof   ? CONDUIT_WANT_SHUTDOWN
                                       : CONDUIT_WANT_READ;
            rc = conduit_poll_events(clients[i]->c, want, &events);
            if (rc < 0) {
                drop(&clients[i], conduit_last_error(clients[i]->c));
                served++;
                continue;
            }
            if (rc > 0) {
                timeout = 0; /* it can move now: do not sleep */
            }
            pfd[nfds].fd = conduit_fd(clients[i]->c);
            pfd[nfds].events = events;
            nfds++;
        }
        if (poll(pfd, (nfds_t)nfds, timeout) < 0 && errno != EINTR) {
            perror("echo-server: poll");
            goto out;
        }
        /* New clients: take all that are ready. */
        for (;;) {
            struct conduit *c = NULL;
            int slot = -1;

            rc = conduit_accept(l, &c);
            if (rc == -CONDUIT_EAGAIN) {
                break;
            }
            if (rc < 0) {
                fprintf(stderr, "echo-server: %s\n", conduit_listener_last_error(l));
                continue;
            }
            for (int i = 0; i < MAX_CLIENTS && slot < 0; i++) {
                slot = clients[i] ? -1 : i;
            }
            if (slot < 0 || !(clients[slot] = calloc(1, sizeof(*clients[slot])))) {
                fprintf(stderr, "echo-server: too many clients: one refused\n");
                conduit_close(c);
                continue;
            }
            clients[slot]->c = c;
            if (verbose) {
                fprintf(stderr, "echo-server: client: %s\n", conduit_info(c));
            }
        }
        /* Everyone gets a turn; readiness is decided by the calls themselves. */
        for (int i = 0; i < MAX_CLIENTS; i++) {
            const char *why = NULL;

            if (clients[i] && service(clients[i], &why)) {
                drop(&clients[i], why);
                served++;
            }
        }
    }
    status = 0;
out:
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (clients[i]) {
            drop(&clients[i], NULL);
        }
    }
    conduit_listener_close(l);
    return status;
}
