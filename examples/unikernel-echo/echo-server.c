/* SPDX-License-Identifier: ISC */
/*
 * A vchan echo service as a guest unikernel: whatever a client writes comes
 * back to it. The template to copy for a guest that serves vchan.
 *
 * Command line (xl's extra=), words separated by spaces:
 *   peer=DOMID|xenstore       the client's domain (xenstore: see common.h)
 *   timeout=SECS              limit of every wait (default 120)
 *   serve=PORT,READ,WRITE[,BYTES[,PEER]]
 *                             one connection at port PORT, rings of READ and
 *                             WRITE bytes (K, M suffixes); with BYTES (not 0),
 *                             close after echoing that many (server closes
 *                             first), else echo until the client closes; PEER
 *                             overrides peer= for this one. Repeat to serve
 *                             several connections, one after another.
 * Prints one line per connection, which dom0 reads from the console log:
 *   vchan-uk RESULT echo PORT PASS|FAIL echoed=N closed-by=server|client ms=T ...
 */
#include "common.h"

struct serve {
    char port[VCHAN_PORT_MAX + 1];
    uint64_t read_size, write_size, bytes; /* bytes 0: until the client closes */
    int peer;                              /* -1: the global peer= */
};

static uint8_t buf[64 * 1024];

/* Once we stop, let the client have everything we wrote before we close (vchan has no half-close). */
static void drain(struct vchan *v)
{
    for (;;) {
        size_t space = 0;

        if (vchan_buffer_space(v, &space) != 0 || space == vchan_write_ring_size(v) ||
            vchan_is_open(v) != VCHAN_STATE_OPEN || vchan_wait(v) != 0) {
            return;
        }
    }
}

static bool serve_one(const struct serve *s, int peer, int timeout_ms)
{
    char errbuf[160] = "";
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = peer, .port = s->port, .read_size = s->read_size,
                          .write_size = s->write_size, .timeout_ms = timeout_ms,
                          .log = vchan_unikernel_log, .errbuf = errbuf,
                          .errbuf_len = sizeof(errbuf));
    const char *closer = "client", *why = NULL;
    struct vchan *v = NULL;
    uint64_t echoed = 0, t0;
    int rc;

    if ((rc = vchan_server_open(&v, &cfg)) != 0) {
        guest_printf("vchan-uk RESULT echo %s FAIL open: %s\n", s->port, errbuf);
        return false;
    }
    guest_printf("vchan-uk: echo %s: serving domain %d, rings read %zu write %zu\n", s->port, peer,
                 vchan_read_ring_size(v), vchan_write_ring_size(v));
    if ((rc = vchan_wait_connected(v)) != 0) {
        guest_printf("vchan-uk RESULT echo %s FAIL no client: %s\n", s->port, vchan_strerror(rc));
        vchan_close(v);
        return false;
    }
    t0 = now_ms();
    for (;;) {
        size_t want = sizeof(buf), n = 0, w = 0;

        if (s->bytes && s->bytes - echoed < want) {
            want = (size_t)(s->bytes - echoed);
        }
        if ((rc = vchan_read(v, buf, want, &n)) != 0) {
            why = vchan_strerror(rc);
            break;
        }
        if (n == 0) {
            break; /* end-of-file: the client closed and we have read all it wrote */
        }
        rc = vchan_write(v, buf, n, &w);
        echoed += w;
        if (rc == -VCHAN_EPIPE) {
            break; /* the client closed without waiting for its echo: its choice */
        }
        if (rc != 0) {
            why = vchan_strerror(rc);
            break;
        }
        if (s->bytes && echoed == s->bytes) {
            closer = "server";
            drain(v);
            break;
        }
    }
    guest_printf("vchan-uk RESULT echo %s %s echoed=%lu closed-by=%s ms=%lu", s->port,
                 why ? "FAIL" : "PASS", (unsigned long)echoed, why ? "error" : closer,
                 (unsigned long)(now_ms() - t0));
    if (why) {
        guest_printf(" error: %s\n", why);
    } else {
        guest_printf(" ");
        print_rate(echoed, now_ms() - t0);
        guest_printf("\n");
    }
    vchan_close(v);
    return why == NULL;
}

int app_main(const char *cmdline)
{
    struct serve items[MAX_ITEMS];
    size_t nitems = 0, i, passed = 0;
    int peer = -1, timeout_s = DEFAULT_TIMEOUT_S;
    char key[16], val[128];
    const char *pos = cmdline;

    while (guest_next_arg(&pos, key, sizeof(key), val, sizeof(val))) {
        struct serve *s = &items[nitems];
        char *f[5];
        uint64_t n;
        size_t k;

        if (strcmp(key, "peer") == 0) {
            if (resolve_peer(val, &peer) != 0) {
                guest_printf("vchan-uk RESULT echo - FAIL bad or missing peer '%s'\n", val);
                return 1;
            }
        } else if (strcmp(key, "timeout") == 0 && parse_size(val, &n) && n > 0 && n < 86400) {
            timeout_s = (int)n;
        } else if (strcmp(key, "serve") == 0 && nitems < MAX_ITEMS &&
                   (k = split(val, f, 5)) >= 3 && strlen(f[0]) <= VCHAN_PORT_MAX &&
                   parse_size(f[1], &s->read_size) && parse_size(f[2], &s->write_size) &&
                   (k < 4 || parse_size(f[3], &s->bytes)) &&
                   (k < 5 || (parse_size(f[4], &n) && n <= VCHAN_DOMID_MAX))) {
            memcpy(s->port, f[0], strlen(f[0]) + 1);
            s->bytes = k < 4 ? 0 : s->bytes;
            s->peer = k < 5 ? -1 : (int)n;
            nitems++;
        } else {
            guest_printf("vchan-uk: echo: ignoring '%s=%s'\n", key, val);
        }
    }
    for (i = 0; i < nitems && peer < 0; i++) {
        if (items[i].peer < 0) {
            break; /* one without its own peer needs peer= */
        }
    }
    if ((peer < 0 && i < nitems) || nitems == 0) {
        guest_printf("vchan-uk RESULT echo - FAIL usage: peer=DOMID serve=PORT,READ,WRITE[,BYTES[,PEER]]\n");
        return 1;
    }
    for (i = 0; i < nitems; i++) {
        passed += serve_one(&items[i], items[i].peer >= 0 ? items[i].peer : peer,
                            timeout_s * 1000);
    }
    guest_printf("vchan-uk DONE echo passed=%zu failed=%zu\n", passed, nitems - passed);
    return passed == nitems ? 0 : 1;
}
