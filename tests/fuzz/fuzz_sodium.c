/* SPDX-License-Identifier: ISC */
/*
 * fuzz_sodium: the sodium layer (libconduit/layer/sodium.c) reading bytes a
 * hostile network chose, over an in-memory lower layer.
 *
 * First byte even: the handshake responder. A server layer reads the rest
 * of the input as what a client sent (then end-of-file). Invariant: the
 * handshake never completes (message 3 cannot authenticate without the
 * keys) and ends in an error, never a crash.
 *
 * First byte odd: the frame reader. A real client and server complete the
 * handshake in memory; the server then writes chunks of a known stream
 * (sizes from the input) and its end of stream; the input then edits the
 * ciphertext (byte flips at chosen places, and a cut). The client reads it
 * all. Invariants: every byte delivered is the stream's byte at that
 * position (nothing of a damaged frame comes out); without edits, all of it
 * arrives and then end-of-file; with any edit, the reader ends in an error
 * (every byte of the stream is read before its end, so none goes unseen).
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conduit.h"
#include "fuzz.h"
#include "libconduit/internal/internal.h"
#include "libconduit/internal/uri.h"

static char dir[64];
static char pub_a[CONDUIT_KEY_TEXT_SIZE], pub_b[CONDUIT_KEY_TEXT_SIZE];
static struct conduit_listener listener;
static struct conduit_uri *client_uri;

/* ------------------------------------------------------------ a memory wire */

struct mem {
    struct conduit__layer base;
    uint8_t *in;   /* what this end reads */
    size_t in_len, in_off;
    bool closed;   /* after in: end-of-file (else: nothing yet) */
    uint8_t *out; /* what this end wrote */
    size_t out_len, out_cap;
};

static int mem_read(struct conduit__layer *l, void *buf, size_t len, size_t *n)
{
    struct mem *m = (struct mem *)l;
    size_t k = m->in_len - m->in_off < len ? m->in_len - m->in_off : len;

    if (k == 0 && !m->closed) {
        return -CONDUIT_EAGAIN;
    }
    memcpy(buf, m->in + m->in_off, k);
    m->in_off += k;
    *n = k; /* 0: end-of-file */
    return 0;
}

static int mem_write(struct conduit__layer *l, const void *buf, size_t len, size_t *n)
{
    struct mem *m = (struct mem *)l;

    if (m->out_len + len > m->out_cap) {
        size_t cap = (m->out_len + len) * 2;
        uint8_t *p = realloc(m->out, cap);

        FUZZ_CHECK(p != NULL, "out of memory");
        m->out = p;
        m->out_cap = cap;
    }
    memcpy(m->out + m->out_len, buf, len);
    m->out_len += len;
    *n = len;
    return 0;
}

static int mem_shutdown(struct conduit__layer *l)
{
    (void)l;
    return 0;
}

static int mem_poll(struct conduit__layer *l, unsigned want, short *events)
{
    (void)l;
    (void)want;
    *events = 0;
    return 1;
}

static int mem_unconsumed(struct conduit__layer *l, size_t *n)
{
    (void)l;
    *n = 0;
    return 0;
}

static int mem_fd(struct conduit__layer *l)
{
    (void)l;
    return -1;
}

static void mem_close(struct conduit__layer *l)
{
    struct mem *m = (struct mem *)l;

    free(m->in);
    free(m->out);
    free(m);
}

static const struct conduit__layer_ops mem_ops = {
    .name = "mem",
    .read = mem_read,
    .write = mem_write,
    .shutdown = mem_shutdown,
    .half_close = true,
    .poll_events = mem_poll,
    .unconsumed = mem_unconsumed,
    .fd = mem_fd,
    .close = mem_close,
};

static struct mem *mem_new(struct conduit__err *e)
{
    struct mem *m = calloc(1, sizeof(*m));

    FUZZ_CHECK(m != NULL, "out of memory");
    m->base.ops = &mem_ops;
    m->base.err = e;
    return m;
}

/* What `from` wrote becomes what `to` reads next (appended). */
static void pass_on(struct mem *from, struct mem *to)
{
    uint8_t *p = realloc(to->in, to->in_len + from->out_len + 1);

    FUZZ_CHECK(p != NULL, "out of memory");
    memcpy(p + to->in_len, from->out, from->out_len);
    to->in = p;
    to->in_len += from->out_len;
    from->out_len = 0;
}

/* ------------------------------------------------------------ set-up */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[128], text[512], err[200];
    struct conduit_uri *su = NULL;

    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/fuzz-sodium.XXXXXX");
    FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof(path), "%s/a.key", dir);
    FUZZ_CHECK(conduit_key_generate(path, pub_a) == 0, "%s", conduit_last_error(NULL));
    snprintf(path, sizeof(path), "%s/b.key", dir);
    FUZZ_CHECK(conduit_key_generate(path, pub_b) == 0, "%s", conduit_last_error(NULL));
    snprintf(text, sizeof(text), "sodium+unix:///x?key=%s/b.key&peers=any", dir);
    FUZZ_CHECK(conduit_uri_parse(text, CONDUIT_URI_LISTEN, &su, err, sizeof(err)) == 0, "%s", err);
    FUZZ_CHECK(conduit__sodium_listen(&listener, su, NULL) == 0, "%s", listener.err.msg);
    conduit_uri_free(su);
    snprintf(text, sizeof(text), "sodium+unix:///x?key=%s/a.key&peer=%s", dir, pub_b);
    FUZZ_CHECK(conduit_uri_parse(text, 0, &client_uri, err, sizeof(err)) == 0, "%s", err);
    return 0;
}

/* ------------------------------------------------------------ the targets */

static void responder(struct fuzz_in *in)
{
    struct conduit__err e = {.name = "server"};
    struct mem *m = mem_new(&e);
    struct conduit__layer *s = NULL;
    int rc = -CONDUIT_EAGAIN;

    m->in_len = fuzz_left(in);
    m->in = malloc(m->in_len + 1);
    FUZZ_CHECK(m->in != NULL, "out of memory");
    fuzz_bytes(in, m->in, m->in_len);
    m->closed = true;
    FUZZ_CHECK(conduit__sodium_server(&listener, &e, &m->base, &s) == 0, "%s", e.msg);
    for (int i = 0; i < 8 && rc == -CONDUIT_EAGAIN; i++) {
        rc = s->ops->handshake(s);
    }
    FUZZ_CHECK(rc < 0 && rc != -CONDUIT_EAGAIN, "handshake on forged bytes: %d", rc);
    FUZZ_CHECK(e.msg[0] != '\0', "an error without a message");
    conduit__layer_close_all(s);
}

#define STREAM 11

static void frames(struct fuzz_in *in)
{
    static uint8_t buf[70000];
    struct conduit__err ce = {.name = "client"}, se = {.name = "server"};
    struct conduit__connect_args a = {.uri = client_uri, .timeout_ms = 1000};
    struct mem *cm = mem_new(&ce), *sm = mem_new(&se);
    struct conduit__layer *c = NULL, *s = NULL;
    int crc = -CONDUIT_EAGAIN, src = -CONDUIT_EAGAIN, rc = 0, nchunks, nedits;
    size_t sent = 0, got = 0, n, cut, touched = SIZE_MAX;
    uint8_t *orig;

    FUZZ_CHECK(conduit__sodium_client(&ce, &a, &cm->base, &c) == 0, "%s", ce.msg);
    FUZZ_CHECK(conduit__sodium_server(&listener, &se, &sm->base, &s) == 0, "%s", se.msg);
    for (int i = 0; i < 8 && (crc == -CONDUIT_EAGAIN || src == -CONDUIT_EAGAIN); i++) {
        if (crc == -CONDUIT_EAGAIN) {
            crc = c->ops->handshake(c);
        }
        pass_on(cm, sm);
        if (src == -CONDUIT_EAGAIN) {
            src = s->ops->handshake(s);
        }
        pass_on(sm, cm);
    }
    FUZZ_CHECK(crc == 0 && src == 0, "handshake in memory: %d %d (%s / %s)", crc, src, ce.msg,
               se.msg);
    /* The server's stream: up to 8 writes of up to 70000 bytes, then its end of stream. */
    nchunks = fuzz_u8(in) % 9;
    for (int i = 0; i < nchunks; i++) {
        size_t len = fuzz_u16(in) % sizeof(buf) + 1;

        for (size_t k = 0; k < len; k++) {
            buf[k] = fuzz_stream_byte(STREAM, sent + k);
        }
        for (size_t off = 0; off < len; off += n) {
            n = 0;
            FUZZ_CHECK(s->ops->write(s, buf + off, len - off, &n) == 0 && n > 0, "write");
        }
        sent += len;
    }
    FUZZ_CHECK(s->ops->shutdown(s) == 0, "shutdown: %s", se.msg);
    /* The network's edits: flips (position, xor) and perhaps a cut. */
    orig = malloc(sm->out_len + 1);
    FUZZ_CHECK(orig != NULL, "out of memory");
    memcpy(orig, sm->out, sm->out_len);
    nedits = fuzz_u8(in) % 5;
    for (int i = 0; i < nedits && sm->out_len; i++) {
        size_t at = fuzz_u32(in) % sm->out_len;

        sm->out[at] ^= fuzz_u8(in);
    }
    /* Where the stream first differs from what was sent (two flips may cancel). */
    for (size_t k = 0; k < sm->out_len && touched == SIZE_MAX; k++) {
        if (sm->out[k] != orig[k]) {
            touched = k;
        }
    }
    free(orig);
    cut = fuzz_u8(in) & 1 ? fuzz_u32(in) % (sm->out_len + 1) : sm->out_len;
    if (cut < sm->out_len && cut < touched) {
        touched = cut;
    }
    sm->out_len = cut;
    pass_on(sm, cm);
    cm->closed = true;
    for (int i = 0; i < 1000; i++) {
        n = 0;
        rc = c->ops->read(c, buf, sizeof(buf), &n);
        if (rc < 0 || n == 0) {
            break;
        }
        for (size_t k = 0; k < n; k++) {
            FUZZ_CHECK(buf[k] == fuzz_stream_byte(STREAM, got + k),
                       "byte %zu delivered is not the one sent", got + k);
        }
        got += n;
    }
    FUZZ_CHECK(got <= sent, "more delivered (%zu) than sent (%zu)", got, sent);
    if (touched == SIZE_MAX) {
        FUZZ_CHECK(rc == 0 && got == sent, "an untouched stream: rc %d, %zu of %zu (%s)", rc,
                   got, sent, ce.msg);
    } else {
        /* Every byte of the stream is read before its end: an edit is always seen. */
        FUZZ_CHECK(rc < 0, "end-of-file after an edit at %zu (%zu of %zu delivered)", touched, got,
                   sent);
        FUZZ_CHECK(ce.msg[0] != '\0', "an error without a message");
    }
    conduit__layer_close_all(c);
    conduit__layer_close_all(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = fuzz_in(data, size);

    if (fuzz_u8(&in) & 1) {
        frames(&in);
    } else {
        responder(&in);
    }
    return 0;
}
