/* SPDX-License-Identifier: ISC */
/*
 * A vchan client as a guest unikernel: sends a test stream to a server,
 * receives one from it, or both at once through an echo service. The
 * template to copy for a guest that connects to a vchan server.
 *
 * Command line (xl's extra=), words separated by spaces:
 *   peer=DOMID|xenstore       the server's domain (xenstore: see common.h)
 *   timeout=SECS              limit of every wait, the server's appearance
 *                             included (default 120)
 *   conn=PORT,MODE,BYTES[,STREAM]
 *                             one connection to port PORT; MODE send: write
 *                             BYTES of the stream, wait until the server has
 *                             read them, close (we close first); recv: read
 *                             until the server closes, expect exactly BYTES
 *                             of the stream; echo: write BYTES and read them
 *                             back at the same time, then close. STREAM
 *                             names the stream (default PORT), as
 *                             `xen-data gen|check STREAM BYTES` in dom0.
 *                             Repeat for several connections, in order.
 * Prints one line per connection for dom0:
 *   vchan-uk RESULT client PORT PASS|FAIL mode=M bytes=N ms=T ...
 */
#include "common.h"

enum mode { MODE_SEND, MODE_RECV, MODE_ECHO };

struct conn {
    char port[VCHAN_PORT_MAX + 1];
    char stream[VCHAN_PORT_MAX + 1];
    enum mode mode;
    uint64_t bytes;
};

struct run {
    const struct conn *c;
    struct vchan *v;
    uint64_t seed;
    uint64_t sent, received;
    char why[128]; /* set on failure */
};

static uint8_t txbuf[64 * 1024], rxbuf[64 * 1024], want[64 * 1024];

static bool failed(struct run *r, const char *what, int rc)
{
    guest_snprintf(r->why, sizeof(r->why), "%s: %s (%s)", what, vchan_strerror(rc),
                   vchan_last_error(r->v));
    return false;
}

/* Check what arrived against the stream; sets why at the first wrong byte. */
static bool check(struct run *r, const uint8_t *got, size_t n)
{
    size_t i;

    if (r->received + n > r->c->bytes) {
        guest_snprintf(r->why, sizeof(r->why), "more than the %lu bytes expected",
                       (unsigned long)r->c->bytes);
        return false;
    }
    stream_fill(r->seed, r->received, want, n);
    if (memcmp(want, got, n) != 0) {
        for (i = 0; want[i] == got[i]; i++) {
        }
        guest_snprintf(r->why, sizeof(r->why), "byte %lu differs (0x%02x, want 0x%02x)",
                       (unsigned long)(r->received + i), got[i], want[i]);
        return false;
    }
    r->received += n;
    return true;
}

static bool do_send(struct run *r)
{
    size_t ring = vchan_write_ring_size(r->v);
    int rc;

    while (r->sent < r->c->bytes) {
        size_t n = r->c->bytes - r->sent < sizeof(txbuf) ? (size_t)(r->c->bytes - r->sent)
                                                          : sizeof(txbuf);
        size_t w = 0;

        stream_fill(r->seed, r->sent, txbuf, n);
        rc = vchan_write(r->v, txbuf, n, &w);
        r->sent += w;
        if (rc != 0) {
            return failed(r, "write", rc);
        }
    }
    /* No half-close on vchan: our close must not come before the server has read it all. */
    for (;;) {
        size_t space = 0;

        if ((rc = vchan_buffer_space(r->v, &space)) != 0) {
            return failed(r, "buffer_space", rc);
        }
        if (space == ring) {
            return true;
        }
        if (vchan_is_open(r->v) != VCHAN_STATE_OPEN) {
            guest_snprintf(r->why, sizeof(r->why), "server closed with %zu bytes unread",
                           ring - space);
            return false;
        }
        if ((rc = vchan_wait(r->v)) != 0) {
            return failed(r, "waiting for the server to read", rc);
        }
    }
}

static bool do_recv(struct run *r)
{
    for (;;) {
        size_t n = 0;
        int rc = vchan_read(r->v, rxbuf, sizeof(rxbuf), &n);

        if (rc != 0) {
            return failed(r, "read", rc);
        }
        if (n == 0) {
            break; /* the server closed and all it wrote is read */
        }
        if (!check(r, rxbuf, n)) {
            return false;
        }
    }
    if (r->received != r->c->bytes) {
        guest_snprintf(r->why, sizeof(r->why), "server closed after %lu of %lu bytes",
                       (unsigned long)r->received, (unsigned long)r->c->bytes);
        return false;
    }
    return true;
}

/*
 * Both directions at once on a non-blocking handle: write what fits, read
 * what is there, and sleep in vchan_wait only when neither moved (both
 * calls have then asked the server to notify us).
 */
static bool do_echo(struct run *r)
{
    size_t tx_off = 0, tx_len = 0;
    int rc;

    vchan_set_nonblocking(r->v, true);
    while (r->received < r->c->bytes) {
        bool moved = false;
        size_t n = 0;

        if (tx_len == 0 && r->sent < r->c->bytes) {
            tx_len = r->c->bytes - r->sent < sizeof(txbuf) ? (size_t)(r->c->bytes - r->sent)
                                                           : sizeof(txbuf);
            tx_off = 0;
            stream_fill(r->seed, r->sent, txbuf, tx_len);
        }
        if (tx_len > 0) {
            rc = vchan_write(r->v, txbuf + tx_off, tx_len, &n);
            if (rc != 0 && rc != -VCHAN_EAGAIN) {
                return failed(r, "write", rc);
            }
            tx_off += n;
            tx_len -= n;
            r->sent += n;
            moved = n > 0;
        }
        rc = vchan_read(r->v, rxbuf, sizeof(rxbuf), &n);
        if (rc == 0 && n == 0) {
            guest_snprintf(r->why, sizeof(r->why), "server closed after echoing %lu of %lu bytes",
                           (unsigned long)r->received, (unsigned long)r->c->bytes);
            return false;
        }
        if (rc != 0 && rc != -VCHAN_EAGAIN) {
            return failed(r, "read", rc);
        }
        if (rc == 0) {
            if (!check(r, rxbuf, n)) {
                return false;
            }
            moved = true;
        }
        if (!moved) {
            /* A blocking wait, bounded by the handle's timeout. */
            vchan_set_nonblocking(r->v, false);
            rc = vchan_wait(r->v);
            vchan_set_nonblocking(r->v, true);
            if (rc != 0) {
                return failed(r, "waiting for the echo", rc);
            }
        }
    }
    return true;
}

static bool run_one(const struct conn *c, int peer, int timeout_ms)
{
    static const char *const modes[] = {"send", "recv", "echo"};
    char errbuf[160] = "";
    struct vchan_config cfg =
        VCHAN_CONFIG_INIT(.domain = peer, .port = c->port, .timeout_ms = timeout_ms,
                          .log = vchan_unikernel_log, .errbuf = errbuf,
                          .errbuf_len = sizeof(errbuf));
    struct run r = {.c = c, .seed = stream_seed(c->stream)};
    uint64_t t0 = now_ms(), t1;
    bool ok;
    int rc;

    if ((rc = vchan_client_open(&r.v, &cfg)) != 0) {
        guest_printf("vchan-uk RESULT client %s FAIL mode=%s open: %s\n", c->port, modes[c->mode],
                     errbuf);
        return false;
    }
    guest_printf("vchan-uk: client %s: connected to domain %d after %lu ms, rings read %zu write %zu\n",
                 c->port, peer, (unsigned long)(now_ms() - t0), vchan_read_ring_size(r.v),
                 vchan_write_ring_size(r.v));
    t0 = now_ms();
    ok = c->mode == MODE_SEND ? do_send(&r) : c->mode == MODE_RECV ? do_recv(&r) : do_echo(&r);
    t1 = now_ms();
    vchan_close(r.v);
    guest_printf("vchan-uk RESULT client %s %s mode=%s bytes=%lu ms=%lu ", c->port,
                 ok ? "PASS" : "FAIL", modes[c->mode],
                 (unsigned long)(c->mode == MODE_SEND ? r.sent : r.received),
                 (unsigned long)(t1 - t0));
    print_rate(c->mode == MODE_SEND ? r.sent : r.received, t1 - t0);
    guest_printf("%s%s\n", ok ? "" : " error: ", ok ? "" : r.why);
    return ok;
}

int app_main(const char *cmdline)
{
    struct conn items[MAX_ITEMS];
    size_t nitems = 0, i, passed = 0;
    int peer = -1, timeout_s = DEFAULT_TIMEOUT_S;
    char key[16], val[160];
    const char *pos = cmdline;

    while (guest_next_arg(&pos, key, sizeof(key), val, sizeof(val))) {
        struct conn *c = &items[nitems];
        char *f[4];
        uint64_t n;
        size_t k;

        if (strcmp(key, "peer") == 0) {
            if (resolve_peer(val, &peer) != 0) {
                guest_printf("vchan-uk RESULT client - FAIL bad or missing peer '%s'\n", val);
                return 1;
            }
        } else if (strcmp(key, "timeout") == 0 && parse_size(val, &n) && n > 0 && n < 86400) {
            timeout_s = (int)n;
        } else if (strcmp(key, "conn") == 0 && nitems < MAX_ITEMS && (k = split(val, f, 4)) >= 3 &&
                   strlen(f[0]) <= VCHAN_PORT_MAX && (k < 4 || strlen(f[3]) <= VCHAN_PORT_MAX) &&
                   (strcmp(f[1], "send") == 0 || strcmp(f[1], "recv") == 0 ||
                    strcmp(f[1], "echo") == 0) &&
                   parse_size(f[2], &c->bytes)) {
            memcpy(c->port, f[0], strlen(f[0]) + 1);
            memcpy(c->stream, k == 4 ? f[3] : f[0], strlen(k == 4 ? f[3] : f[0]) + 1);
            c->mode = f[1][0] == 's' ? MODE_SEND : f[1][0] == 'r' ? MODE_RECV : MODE_ECHO;
            nitems++;
        } else {
            guest_printf("vchan-uk: client: ignoring '%s=%s'\n", key, val);
        }
    }
    if (peer < 0 || nitems == 0) {
        guest_printf("vchan-uk RESULT client - FAIL usage: peer=DOMID conn=PORT,MODE,BYTES[,STREAM]\n");
        return 1;
    }
    for (i = 0; i < nitems; i++) {
        passed += run_one(&items[i], peer, timeout_s * 1000);
    }
    guest_printf("vchan-uk DONE client passed=%zu failed=%zu\n", passed, nitems - passed);
    return passed == nitems ? 0 : 1;
}
