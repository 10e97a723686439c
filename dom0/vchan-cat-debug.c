/* SPDX-License-Identifier: ISC */
/*
 * vchan-cat as the channel debugger: --list, --stat and --watch
 * (docs/vchan-cat.1, README "Debugging a channel"). Everything comes from
 * libvchan's public API: vchan_list_channels for the rendezvous,
 * vchan_page_open for a read-only mapping of a control page, and
 * vchan_page_inspect / vchan_page_verdict to read it without trusting it.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dom0/vchan-cat.h"
#include "libvchan/platform/clock.h" /* header only */
#include "vchan.h"

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* A string for JSON: only what the libraries validated gets here, but escape anyway. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c < 0x20 || c >= 0x7f) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

/* ------------------------------------------------------------ --list */

struct list_ctx {
    bool json;
    int n;
};

static const char *state_of(const struct vchan_channel *ch)
{
    if (ch->client < 0) {
        return "accept service";
    }
    if (ch->connected) {
        return "connected";
    }
    if (ch->published) {
        return "waiting for client";
    }
    return ch->has_page ? "not connected" : "advertised";
}

static int list_one(void *p, const struct vchan_channel *ch)
{
    struct list_ctx *c = p;

    if (c->json) {
        printf("%s\n  {\"platform\": ", c->n ? "," : "");
        json_str(stdout, ch->platform);
        printf(", \"server\": %d, \"server_name\": ", ch->server);
        if (ch->server_name) {
            json_str(stdout, ch->server_name);
        } else {
            fputs("null", stdout);
        }
        printf(", \"client\": %d, \"client_name\": ", ch->client);
        if (ch->client_name) {
            json_str(stdout, ch->client_name);
        } else {
            fputs("null", stdout);
        }
        fputs(", \"port\": ", stdout);
        json_str(stdout, ch->port);
        printf(", \"published\": %s, \"connected\": %s, \"state\": ",
               ch->published ? "true" : "false", ch->connected ? "true" : "false");
        json_str(stdout, state_of(ch));
        if (!strcmp(ch->platform, "xen")) {
            printf(", \"ring_ref\": %u, \"event_channel\": %u", ch->ring_ref, ch->evtchn);
        } else {
            printf(", \"pid\": %ld", ch->pid);
        }
        fputc('}', stdout);
    } else {
        char server[48], client[48], detail[48];
        if (c->n == 0) {
            printf("%-8s %-20s %-20s %-20s %-20s %s\n", "PLATFORM", "SERVER", "CLIENT", "PORT",
                   "STATE", "DETAIL");
        }
        snprintf(server, sizeof(server), ch->server_name ? "%d (%.30s)" : "%d", ch->server,
                 ch->server_name);
        if (ch->client < 0) {
            snprintf(client, sizeof(client), "*");
        } else {
            snprintf(client, sizeof(client), ch->client_name ? "%d (%.30s)" : "%d", ch->client,
                     ch->client_name);
        }
        if (!strcmp(ch->platform, "xen")) {
            snprintf(detail, sizeof(detail), "ring-ref %u evtchn %u", ch->ring_ref, ch->evtchn);
        } else if (ch->pid) {
            snprintf(detail, sizeof(detail), "pid %ld", ch->pid);
        } else {
            detail[0] = '\0';
        }
        printf("%-8s %-20s %-20s %-20s %-20s %s\n", ch->platform, server, client, ch->port,
               state_of(ch), detail);
    }
    c->n++;
    return 0;
}

int vcat_list(int server, bool json)
{
    struct list_ctx c = {.json = json};
    char err[256] = "";
    int rc;

    if (json) {
        fputs("[", stdout);
    }
    rc = vchan_list_channels(NULL, server, list_one, &c, err, sizeof(err));
    if (json) {
        fputs(c.n ? "\n]\n" : "]\n", stdout);
    } else if (rc == 0 && c.n == 0) {
        printf("no channels\n");
    }
    if (rc < 0) {
        fprintf(stderr, "vchan-cat: --list: %s\n", err[0] ? err : vchan_strerror(rc));
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ --stat, --watch */

/* "vchan://SERVER/PORT" (client: this domain) or "SERVER/CLIENT/PORT", ids in decimal. */
static bool parse_target(const char *t, int *server, int *client, char *port, size_t plen)
{
    long ids[2];
    int nids = 0, want;
    char *end;

    *client = -1;
    want = strncmp(t, "vchan://", 8) == 0 ? 1 : 2;
    if (want == 1) {
        t += 8;
    }
    while (nids < want) {
        if (*t < '0' || *t > '9') {
            return false;
        }
        errno = 0;
        ids[nids] = strtol(t, &end, 10);
        if (errno || *end != '/' || ids[nids] > VCHAN_DOMID_MAX) {
            return false;
        }
        t = end + 1;
        nids++;
    }
    *server = (int)ids[0];
    if (want == 2) {
        *client = (int)ids[1];
    }
    if (!*t || strlen(t) >= plen || strchr(t, '/') || strchr(t, '?')) {
        return false;
    }
    strcpy(port, t);
    return true;
}

static const char *live_name(uint8_t live)
{
    return live == 0 ? "closed" : live == 1 ? "open" : live == 2 ? "waiting" : "invalid";
}

static const char *notify_name(uint8_t bits)
{
    static const char *names[4] = {"-", "write", "read", "write+read"};

    return bits < 4 ? names[bits] : "invalid";
}

static void print_ring_text(const char *name, const struct vchan_ring_view *r, double rate,
                            bool rates)
{
    printf("  %-24s order %u, %u bytes, prod %u, cons %u, fill %u", name, r->order, r->size,
           r->prod, r->cons, r->fill);
    if (r->size && r->fill <= r->size) {
        printf(" (%u%%)", (unsigned)((uint64_t)r->fill * 100 / r->size));
    }
    if (rates) {
        printf(", %.0f B/s", rate);
    }
    putchar('\n');
}

static void print_ring_json(const char *name, const struct vchan_ring_view *r, double rate,
                            bool rates)
{
    printf("\"%s\": {\"order\": %u, \"size\": %u, \"prod\": %u, \"cons\": %u, \"fill\": %u", name,
           r->order, r->size, r->prod, r->cons, r->fill);
    if (rates) {
        printf(", \"bytes_per_s\": %.0f", rate);
    }
    fputs("}, ", stdout);
}

static void print_view(const char *id, const struct vchan_page_view *v, enum vchan_verdict verdict,
                       const char *why, const double *rates, bool json)
{
    if (json) {
        fputs("{\"channel\": ", stdout);
        json_str(stdout, id);
        fputs(", ", stdout);
        print_ring_json("left", &v->left, rates ? rates[0] : 0, rates != NULL);
        print_ring_json("right", &v->right, rates ? rates[1] : 0, rates != NULL);
        printf("\"cli_live\": %u, \"srv_live\": %u, \"cli_notify\": %u, \"srv_notify\": %u, "
               "\"verdict\": ",
               v->cli_live, v->srv_live, v->cli_notify, v->srv_notify);
        json_str(stdout, vchan_verdict_name(verdict));
        fputs(", \"why\": ", stdout);
        json_str(stdout, why);
        fputs("}\n", stdout);
    } else {
        printf("channel %s\n", id);
        print_ring_text("left (client -> server):", &v->left, rates ? rates[0] : 0, rates != NULL);
        print_ring_text("right (server -> client):", &v->right, rates ? rates[1] : 0,
                        rates != NULL);
        printf("  live: client %s, server %s; asked to notify: client %s, server %s\n",
               live_name(v->cli_live), live_name(v->srv_live), notify_name(v->cli_notify),
               notify_name(v->srv_notify));
        printf("  verdict: %s (%s)\n", vchan_verdict_name(verdict), why);
    }
    fflush(stdout);
}

int vcat_stat(const char *target, bool watch, bool json)
{
    struct vchan_page_view before = VCHAN_PAGE_VIEW_INIT, now = VCHAN_PAGE_VIEW_INIT;
    char port[VCHAN_PORT_MAX + 1], err[256] = "", id[128];
    enum vchan_verdict verdict;
    struct vchan_page *pg;
    uint64_t t_prev, still_since;
    bool corrupt_seen;
    const char *why;
    int server, client, rc;

    if (!parse_target(target, &server, &client, port, sizeof(port))) {
        fprintf(stderr,
                "vchan-cat: --stat: '%s' is not vchan://SERVER/PORT or SERVER/CLIENT/PORT "
                "(domain ids in decimal)\n",
                target);
        return 2;
    }
    if ((rc = vchan_page_open(&pg, NULL, server, client, port, err, sizeof(err))) < 0) {
        fprintf(stderr, "vchan-cat: --stat %s: %s\n", target, err[0] ? err : vchan_strerror(rc));
        return 1;
    }
    if (client < 0) {
        snprintf(id, sizeof(id), "%d/this domain/%s", server, port);
    } else {
        snprintf(id, sizeof(id), "%d/%d/%s", server, client, port);
    }
    vchan_page_inspect(vchan_page_addr(pg), VCHAN_PAGE_SIZE, &now);
    verdict = vchan_page_verdict(NULL, &now, 0, &why);
    print_view(id, &now, verdict, why, NULL, json);
    corrupt_seen = now.corrupt;
    if (watch) {
        struct sigaction sa = {.sa_handler = on_interrupt};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        t_prev = still_since = vclock_now_ms();
        while (!interrupted) {
            double rates[2], dt;
            uint64_t t;

            vclock_sleep_ms(1000);
            if (interrupted) {
                break;
            }
            before = now;
            vchan_page_inspect(vchan_page_addr(pg), VCHAN_PAGE_SIZE, &now);
            t = vclock_now_ms();
            dt = (double)(t - t_prev) / 1000.0;
            t_prev = t;
            /* Bytes consumed each way: what the reader has taken off the ring. */
            rates[0] = (double)(uint32_t)(now.left.cons - before.left.cons) / dt;
            rates[1] = (double)(uint32_t)(now.right.cons - before.right.cons) / dt;
            if (now.left.prod != before.left.prod || now.left.cons != before.left.cons ||
                now.right.prod != before.right.prod || now.right.cons != before.right.cons) {
                still_since = t;
            }
            verdict = vchan_page_verdict(&before, &now, t - still_since, &why);
            corrupt_seen |= now.corrupt;
            print_view(id, &now, verdict, why, rates, json);
        }
    }
    vchan_page_close(pg);
    return corrupt_seen ? 1 : 0;
}
