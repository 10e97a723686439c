/* SPDX-License-Identifier: ISC */
/*
 * The sodium layer: Noise_XX_25519_ChaChaPoly_BLAKE2b (noise.c, on
 * libsodium) over any transport, as tls.c is TLS over any. The wire format
 * (docs/protocol.md, "The sodium layer"):
 *
 *   - every message, handshake or transport, is a 2-byte big-endian length
 *     and then that many bytes;
 *   - the prologue is PROLOGUE; the three handshake messages carry empty
 *     payloads, so they are exactly 32, 96 and 64 bytes, and a peer that
 *     announces another length is not one of ours: refused at once;
 *   - a transport message is the AEAD (empty associated data) of 1 to
 *     DATA_MAX bytes of the stream, or of none: the end of stream, after
 *     which nothing more is read.
 *
 * The initiator (the connecting side) checks the responder's static key as
 * soon as message 2 brings it, before it sends its own; the responder checks
 * the initiator's after message 3. A frame is delivered only once all of it
 * has authenticated; one that does not kills the connection (the counters
 * make a replayed, reordered or dropped frame fail too).
 *
 * Like tls.c it never blocks: ciphertext waits in `out` until the layer
 * below takes it, and a read takes one frame at a time into `in`.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "libconduit/internal/internal.h"
#include "libconduit/layer/noise.h"
#include "libconduit/layer/sodium_keys.h"

#define PROTOCOL "Noise_XX_25519_ChaChaPoly_BLAKE2b"
#define PROLOGUE "vchan-conduit sodium 1"
#define FRAME_MAX CONDUIT__NOISE_MSG_MAX
#define DATA_MAX (FRAME_MAX - CONDUIT__NOISE_TAGLEN)
/* Refuse more data while this much ciphertext waits for the transport. */
#define OUT_CAP (64u * 1024u)

/* The three messages of XX with empty payloads: e; e, ee, s, es; s, se. */
static const size_t hs_len[3] = {32, 32 + 48 + 16, 48 + 16};

enum peer_policy { PIN_KEY, PIN_FILE, PIN_ANY };

/* One endpoint's keys and pinning: a client's, or a listener's for every accept. */
struct sodium_keys {
    uint8_t s[CONDUIT__KEY_LEN]; /* our private key */
    enum peer_policy policy;
    uint8_t peer[CONDUIT__KEY_LEN]; /* PIN_KEY */
    char *peers_file;               /* PIN_FILE */
};

struct sodium_layer {
    struct conduit__layer base;
    struct conduit__noise_hs hs;
    struct conduit__noise_cs tx, rx;
    struct sodium_keys keys;
    bool handshaken;
    bool eos_sent, eos_seen;
    int dead; /* a failure (negative): every later call returns it */
    uint8_t rs[CONDUIT__KEY_LEN];
    bool has_rs;
    /* The frame being read: in[0, in_len); its plaintext in[plain_off, plain_end). */
    size_t in_len, plain_off, plain_end;
    uint8_t *out; /* frames for the layer below: out[out_off, out_len) */
    size_t out_off, out_len, out_cap;
    uint8_t in[2 + FRAME_MAX];
};

/* ------------------------------------------------------------ keys */

static void keys_wipe(struct sodium_keys *k)
{
    free(k->peers_file);
    sodium_memzero(k, sizeof(*k));
}

/*
 * Our private key and the pinning policy, from the URI or else the options.
 * A client must pin; a server pins too, or says peers=any.
 */
static int keys_load(struct conduit__err *e, const struct conduit_uri *u,
                     const struct conduit_options *o, bool server, struct sodium_keys *k)
{
    const char *key = u->tls.key ? u->tls.key : o ? o->key : NULL;
    const char *peer = u->sodium.peer ? u->sodium.peer : o ? o->peer : NULL;
    const char *peers = u->sodium.peers ? u->sodium.peers : o ? o->peers : NULL;
    int rc;

    memset(k, 0, sizeof(*k));
    if (!key) {
        return conduit__errorf(e, CONDUIT_EOPTION,
                               "sodium needs this end's private key: key=FILE (vchan-cat --genkey "
                               "FILE makes one)");
    }
    if (peer && peers) {
        return conduit__errorf(e, CONDUIT_EOPTION, "peer= and peers= both given: pin one way");
    }
    if (peers && strcmp(peers, "any") == 0) {
        if (!server) {
            return conduit__errorf(e, CONDUIT_EOPTION,
                                   "a sodium client must pin its server's key (peer=KEY or "
                                   "peers=FILE); peers=any is for servers only");
        }
        k->policy = PIN_ANY;
    } else if (peers) {
        if (access(peers, R_OK) < 0) {
            return conduit__errorf(e, errno == ENOENT ? CONDUIT_ENOENT : CONDUIT_EPERM,
                                   "peers file '%s': %s", peers, strerror(errno));
        }
        if (!(k->peers_file = strdup(peers))) {
            return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
        }
        k->policy = PIN_FILE;
    } else if (peer) {
        if (conduit__key_decode(peer, strlen(peer), k->peer) < 0) {
            return conduit__errorf(e, CONDUIT_EOPTION,
                                   "peer '%.60s' is not a public key (44 characters of base64)",
                                   peer);
        }
        k->policy = PIN_KEY;
    } else {
        return conduit__errorf(e, CONDUIT_EOPTION,
                               server ? "a sodium server must pin its clients' keys (peer=KEY, "
                                        "peers=FILE) or accept any with peers=any"
                                      : "a sodium client must pin its server's key: peer=KEY or "
                                        "peers=FILE");
    }
    if ((rc = conduit__key_load_private(e, key, k->s)) < 0) {
        keys_wipe(k);
        return rc;
    }
    return 0;
}

static int keys_copy(struct conduit__err *e, const struct sodium_keys *from, struct sodium_keys *to)
{
    *to = *from;
    to->peers_file = NULL;
    if (from->peers_file && !(to->peers_file = strdup(from->peers_file))) {
        sodium_memzero(to, sizeof(*to));
        return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
    }
    return 0;
}

/* ------------------------------------------------------------ failure */

static void wipe_state(struct sodium_layer *t)
{
    conduit__noise_hs_wipe(&t->hs);
    conduit__noise_cs_wipe(&t->tx);
    conduit__noise_cs_wipe(&t->rx);
    keys_wipe(&t->keys);
    sodium_memzero(t->in, sizeof(t->in));
    t->in_len = t->plain_off = t->plain_end = 0;
}

/* The connection is dead: remember why (the message already recorded), wipe every secret. */
static int dead_rc(struct sodium_layer *t, int rc)
{
    t->dead = rc;
    wipe_state(t);
    return rc;
}

static int die(struct sodium_layer *t, int code, const char *fmt, ...) CONDUIT__PRINTF(3, 4);

static int die(struct sodium_layer *t, int code, const char *fmt, ...)
{
    char msg[CONDUIT__MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return dead_rc(t, conduit__errorf(t->base.err, code, "%s", msg));
}

/* ------------------------------------------------------------ output */

static size_t out_pending(const struct sodium_layer *t)
{
    return t->out_len - t->out_off;
}

/* Room for n more bytes at out + out_len. */
static int out_reserve(struct sodium_layer *t, size_t n)
{
    size_t cap = t->out_cap ? t->out_cap : 4096;
    uint8_t *p;

    if (t->out_off == t->out_len) {
        t->out_off = t->out_len = 0;
    } else if (t->out_off > 0 && t->out_len + n > t->out_cap) {
        memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
        t->out_len -= t->out_off;
        t->out_off = 0;
    }
    if (t->out_len + n <= t->out_cap) {
        return 0;
    }
    while (cap < t->out_len + n) {
        cap *= 2;
    }
    if (!(p = realloc(t->out, cap))) {
        return die(t, CONDUIT_ENOMEM, "out of memory");
    }
    t->out = p;
    t->out_cap = cap;
    return 0;
}

static void put_len(uint8_t *p, size_t n)
{
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
}

/* Queue one transport frame of n bytes (n == 0: the end of stream). */
static int seal(struct sodium_layer *t, const void *data, size_t n)
{
    static const uint8_t none[1];
    uint8_t *p;
    int rc;

    if ((rc = out_reserve(t, 2 + n + CONDUIT__NOISE_TAGLEN)) < 0) {
        return rc;
    }
    p = t->out + t->out_len;
    put_len(p, n + CONDUIT__NOISE_TAGLEN);
    rc = conduit__noise_encrypt(&t->tx, NULL, 0, n ? data : none, n, p + 2);
    if (rc == -CONDUIT__NOISE_ENONCE) {
        return die(t, CONDUIT_EAUTH,
                   "the send nonce counter is used up: the connection is closed before it "
                   "could wrap");
    }
    if (rc < 0) {
        return die(t, CONDUIT_EIO, "sodium: cannot encrypt: %s", conduit__noise_strerror(rc));
    }
    t->out_len += 2 + n + CONDUIT__NOISE_TAGLEN;
    return 0;
}

/* Hand queued frames to the layer below: 0 when all went, -CONDUIT_EAGAIN, or an error. */
static int flush(struct sodium_layer *t)
{
    struct conduit__layer *next = t->base.next;

    while (out_pending(t) > 0) {
        size_t n = 0;
        int rc = next->ops->write(next, t->out + t->out_off, out_pending(t), &n);

        t->out_off += n;
        if (rc == 0 && n == 0) {
            rc = -CONDUIT_EAGAIN;
        }
        if (rc < 0) {
            return rc == -CONDUIT_EAGAIN ? rc : dead_rc(t, rc);
        }
    }
    t->out_off = t->out_len = 0;
    return 0;
}

static int flush_some(struct sodium_layer *t)
{
    int rc = flush(t);

    return rc == -CONDUIT_EAGAIN ? 0 : rc;
}

/* ------------------------------------------------------------ input */

static size_t frame_len(const struct sodium_layer *t)
{
    return (size_t)t->in[0] << 8 | t->in[1];
}

/*
 * Read one whole message into in[]: 0 when in_len == 2 + its length, or
 * with *eof when the stream ended between messages; -CONDUIT_EAGAIN, or an
 * error. expect: a handshake message's exact length (0: a transport frame).
 */
static int read_frame(struct sodium_layer *t, size_t expect, bool *eof)
{
    struct conduit__layer *next = t->base.next;

    *eof = false;
    for (;;) {
        size_t want = t->in_len < 2 ? 2 : 2 + frame_len(t), n = 0;
        int rc;

        if (t->in_len == want) {
            return 0;
        }
        rc = next->ops->read(next, t->in + t->in_len, want - t->in_len, &n);
        if (rc < 0) {
            return rc == -CONDUIT_EAGAIN ? rc : dead_rc(t, rc);
        }
        if (n == 0) {
            if (t->in_len == 0) {
                *eof = true;
                return 0;
            }
            return die(t, CONDUIT_ECONNRESET,
                       "the peer closed the connection in the middle of a sodium message (%zu of "
                       "%zu bytes)",
                       t->in_len, want);
        }
        t->in_len += n;
        if (t->in_len == 2 && expect && frame_len(t) != expect) {
            return die(t, CONDUIT_EPROTO,
                       "not a sodium peer: handshake message %u announces %zu bytes, not %zu "
                       "(a different protocol or version?)",
                       t->hs.msg + 1, frame_len(t), expect);
        }
        if (t->in_len == 2 && !expect && frame_len(t) < CONDUIT__NOISE_TAGLEN) {
            return die(t, CONDUIT_EAUTH,
                       "a sodium frame of %zu bytes cannot be authentic (tampered stream): "
                       "connection closed",
                       frame_len(t));
        }
    }
}

/* ------------------------------------------------------------ handshake */

static void key_text(const uint8_t *key, char *out)
{
    conduit__key_encode(key, out);
}

/* The peer's static key is known: is it one we accept? */
static int check_peer(struct sodium_layer *t)
{
    char got[CONDUIT__KEY_B64_LEN + 1], want[CONDUIT__KEY_B64_LEN + 1];
    int rc;

    memcpy(t->rs, conduit__noise_hs_remote_static(&t->hs), sizeof(t->rs));
    t->has_rs = true;
    key_text(t->rs, got);
    switch (t->keys.policy) {
    case PIN_KEY:
        if (sodium_memcmp(t->rs, t->keys.peer, sizeof(t->rs)) != 0) {
            key_text(t->keys.peer, want);
            return die(t, CONDUIT_EAUTH, "the peer's key is %s, not the pinned %s", got, want);
        }
        return 0;
    case PIN_FILE:
        rc = conduit__key_in_file(t->base.err, t->keys.peers_file, t->rs);
        if (rc < 0) {
            return dead_rc(t, rc);
        }
        if (rc == 0) {
            return die(t, CONDUIT_EAUTH, "the peer's key %s is not in the peers file '%s'", got,
                       t->keys.peers_file);
        }
        return 0;
    case PIN_ANY:
        conduit__logf(t->base.err, CONDUIT_LOG_INFO, "sodium: peers=any: the peer's key is %s",
                      got);
        return 0;
    }
    return die(t, CONDUIT_EINVAL, "sodium: no pinning policy");
}

static int noise_fail(struct sodium_layer *t, int rc, const char *what)
{
    if (rc == -CONDUIT__NOISE_EDECRYPT || rc == -CONDUIT__NOISE_EDH) {
        return die(t, CONDUIT_EAUTH, "sodium handshake failed: %s: %s", what,
                   conduit__noise_strerror(rc));
    }
    return die(t, CONDUIT_EPROTO, "sodium handshake failed: %s: %s", what,
               conduit__noise_strerror(rc));
}

static int sodium_handshake(struct conduit__layer *l)
{
    struct sodium_layer *t = (struct sodium_layer *)l;
    uint8_t payload[1];
    size_t n;
    bool eof;
    int rc;

    for (;;) {
        if (t->dead) {
            return t->dead;
        }
        if ((rc = flush(t)) < 0) {
            return rc;
        }
        if (t->handshaken) {
            return 0;
        }
        if (!conduit__noise_hs_active(&t->hs)) {
            if ((rc = conduit__noise_hs_split(&t->hs, &t->tx, &t->rx)) < 0) {
                return noise_fail(t, rc, "split");
            }
            conduit__noise_hs_wipe(&t->hs);
            t->handshaken = true;
            continue;
        }
        if (conduit__noise_hs_my_turn(&t->hs)) {
            size_t want = hs_len[t->hs.msg];

            if ((rc = out_reserve(t, 2 + want)) < 0) {
                return rc;
            }
            rc = conduit__noise_hs_write(&t->hs, NULL, 0, t->out + t->out_len + 2, want, &n);
            if (rc < 0 || n != want) {
                return noise_fail(t, rc < 0 ? rc : -CONDUIT__NOISE_ESHORT, "writing a message");
            }
            put_len(t->out + t->out_len, n);
            t->out_len += 2 + n;
            continue;
        }
        if ((rc = read_frame(t, hs_len[t->hs.msg], &eof)) < 0) {
            return rc;
        }
        if (eof) {
            return die(t, CONDUIT_ECONNRESET,
                       "the peer closed the connection during the sodium handshake (it may have "
                       "refused our key, or it does not speak sodium)");
        }
        rc = conduit__noise_hs_read(&t->hs, t->in + 2, frame_len(t), payload, sizeof(payload), &n);
        sodium_memzero(t->in, t->in_len);
        t->in_len = 0;
        if (rc < 0) {
            return noise_fail(t, rc, "a message did not authenticate");
        }
        if (!t->has_rs && conduit__noise_hs_remote_static(&t->hs) && (rc = check_peer(t)) < 0) {
            return rc;
        }
    }
}

/* ------------------------------------------------------------ layer ops */

static int sodium_read(struct conduit__layer *l, void *buf, size_t len, size_t *nread)
{
    struct sodium_layer *t = (struct sodium_layer *)l;
    size_t flen;
    bool eof, direct;
    int rc;

    *nread = 0;
    if (!t->handshaken && (rc = sodium_handshake(l)) < 0) {
        return rc;
    }
    if (t->dead) {
        return t->dead;
    }
    if ((rc = flush_some(t)) < 0) {
        return rc;
    }
    for (;;) {
        if (t->plain_off < t->plain_end) {
            size_t n = t->plain_end - t->plain_off;

            n = n < len ? n : len;
            memcpy(buf, t->in + t->plain_off, n);
            t->plain_off += n;
            if (t->plain_off == t->plain_end) {
                sodium_memzero(t->in, t->in_len);
                t->in_len = t->plain_off = t->plain_end = 0;
            }
            *nread = n;
            return 0;
        }
        if (t->eos_seen) {
            return 0; /* end of file */
        }
        if ((rc = read_frame(t, 0, &eof)) < 0) {
            return rc;
        }
        if (eof) {
            return die(t, CONDUIT_ECONNRESET,
                       "the peer closed the connection without a sodium end of stream (data may "
                       "be cut short)");
        }
        flen = frame_len(t);
        /* A frame that fits is opened straight into the caller's buffer
         * (one pass less, and no plaintext left here to wipe); the AEAD
         * checks the tag before it writes a byte of plaintext. */
        direct = flen > CONDUIT__NOISE_TAGLEN && len >= flen - CONDUIT__NOISE_TAGLEN;
        rc = conduit__noise_decrypt(&t->rx, NULL, 0, t->in + 2, flen,
                                    direct ? (uint8_t *)buf : t->in + 2);
        if (rc == -CONDUIT__NOISE_ENONCE) {
            return die(t, CONDUIT_EAUTH,
                       "the receive nonce counter is used up: connection closed");
        }
        if (rc < 0) {
            return die(t, CONDUIT_EAUTH,
                       "a sodium frame failed authentication (tampered, replayed, reordered or "
                       "dropped): connection closed");
        }
        if (flen == CONDUIT__NOISE_TAGLEN) {
            t->eos_seen = true;
            t->in_len = 0;
            continue;
        }
        if (direct) {
            t->in_len = 0;
            *nread = flen - CONDUIT__NOISE_TAGLEN;
            return 0;
        }
        t->plain_off = 2;
        t->plain_end = 2 + flen - CONDUIT__NOISE_TAGLEN;
    }
}

static int sodium_write(struct conduit__layer *l, const void *buf, size_t len, size_t *nwritten)
{
    struct sodium_layer *t = (struct sodium_layer *)l;
    size_t n = len < DATA_MAX ? len : DATA_MAX;
    int rc;

    *nwritten = 0;
    if (!t->handshaken && (rc = sodium_handshake(l)) < 0) {
        return rc;
    }
    if (t->dead) {
        return t->dead;
    }
    rc = flush(t);
    if (rc < 0 && rc != -CONDUIT_EAGAIN) {
        return rc;
    }
    if (out_pending(t) > OUT_CAP) {
        return -CONDUIT_EAGAIN;
    }
    if (n == 0) {
        return 0;
    }
    if ((rc = seal(t, buf, n)) < 0) {
        return rc;
    }
    *nwritten = n;
    return flush_some(t);
}

static int sodium_shutdown(struct conduit__layer *l)
{
    struct sodium_layer *t = (struct sodium_layer *)l;
    struct conduit__layer *next = l->next;
    int rc;

    if (t->dead) {
        return t->dead;
    }
    if (!t->eos_sent) {
        if ((rc = seal(t, NULL, 0)) < 0) {
            return rc;
        }
        t->eos_sent = true;
    }
    if ((rc = flush(t)) < 0) {
        return rc;
    }
    /* The end of stream is the half-close; a transport without one (vchan) stays open. */
    return next->ops->half_close ? next->ops->shutdown(next) : 0;
}

static int sodium_poll_events(struct conduit__layer *l, unsigned want, short *events)
{
    struct sodium_layer *t = (struct sodium_layer *)l;
    struct conduit__layer *next = l->next;
    unsigned lower = want & CONDUIT_WANT_SPIN;

    *events = 0;
    if (t->dead) {
        return 1; /* the next call says why */
    }
    if (t->handshaken && (want & CONDUIT_WANT_READ) &&
        (t->plain_off < t->plain_end || t->eos_seen)) {
        return 1;
    }
    if (out_pending(t) > 0) {
        lower |= CONDUIT_WANT_WRITE;
    }
    if (!t->handshaken || (want & CONDUIT_WANT_READ)) {
        lower |= CONDUIT_WANT_READ;
    }
    if (t->handshaken && (want & CONDUIT_WANT_WRITE)) {
        if (out_pending(t) <= OUT_CAP) {
            return 1;
        }
        lower |= CONDUIT_WANT_WRITE;
    }
    if ((want & CONDUIT_WANT_DRAIN) && out_pending(t) == 0) {
        lower |= CONDUIT_WANT_DRAIN;
    }
    return next->ops->poll_events(next, lower, events);
}

static int sodium_unconsumed(struct conduit__layer *l, size_t *n)
{
    struct sodium_layer *t = (struct sodium_layer *)l;
    size_t below = 0;
    int rc = l->next->ops->unconsumed(l->next, &below);

    *n = out_pending(t) + below;
    return rc;
}

static int sodium_fd(struct conduit__layer *l)
{
    return l->next->ops->fd(l->next);
}

static void sodium_info(struct conduit__layer *l, char *buf, size_t len)
{
    struct sodium_layer *t = (struct sodium_layer *)l;
    char key[CONDUIT__KEY_B64_LEN + 1];

    if (!t->handshaken || !t->has_rs) {
        snprintf(buf, len, "%s (handshake not finished)", PROTOCOL);
        return;
    }
    key_text(t->rs, key);
    snprintf(buf, len, "%s, peer key %s", PROTOCOL, key);
}

static void sodium_close(struct conduit__layer *l)
{
    struct sodium_layer *t = (struct sodium_layer *)l;

    /* Say goodbye properly if nobody did, so the peer can tell a close from a cut. */
    if (t->handshaken && !t->eos_sent && !t->dead && l->next && seal(t, NULL, 0) == 0) {
        (void)flush(t);
    }
    wipe_state(t);
    free(t->out);
    sodium_memzero(t, sizeof(*t));
    free(t);
}

static const struct conduit__layer_ops sodium_ops = {
    .name = "sodium",
    .handshake = sodium_handshake,
    .read = sodium_read,
    .write = sodium_write,
    .shutdown = sodium_shutdown,
    .half_close = true,
    .poll_events = sodium_poll_events,
    .unconsumed = sodium_unconsumed,
    .fd = sodium_fd,
    .info = sodium_info,
    .close = sodium_close,
};

/* ------------------------------------------------------------ set-up */

static int new_layer(struct conduit__err *e, const struct sodium_keys *keys, bool initiator,
                     struct conduit__layer *lower, struct conduit__layer **out)
{
    struct sodium_layer *t;
    int rc;

    if (sodium_init() < 0) {
        return conduit__errorf(e, CONDUIT_EIO, "libsodium cannot start");
    }
    if (!(t = calloc(1, sizeof(*t)))) {
        return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
    }
    t->base.ops = &sodium_ops;
    t->base.err = e;
    t->base.next = lower;
    if ((rc = keys_copy(e, keys, &t->keys)) < 0) {
        free(t);
        return rc;
    }
    rc = conduit__noise_hs_init(&t->hs, PROTOCOL, initiator, (const uint8_t *)PROLOGUE,
                                strlen(PROLOGUE), t->keys.s, NULL);
    /* The responder's ephemeral key, made while the initiator makes and sends its own. */
    if (rc == 0 && !initiator) {
        rc = conduit__noise_hs_make_ephemeral(&t->hs);
    }
    if (rc < 0) {
        wipe_state(t);
        free(t);
        return conduit__errorf(e, CONDUIT_EIO, "sodium: cannot start the handshake: %s",
                               conduit__noise_strerror(rc));
    }
    *out = &t->base;
    return 0;
}

int conduit__sodium_client(struct conduit__err *e, const struct conduit__connect_args *a,
                           struct conduit__layer *lower, struct conduit__layer **out)
{
    struct sodium_keys k;
    int rc;

    if ((rc = keys_load(e, a->uri, a->opts, false, &k)) < 0) {
        return rc;
    }
    rc = new_layer(e, &k, true, lower, out);
    keys_wipe(&k);
    return rc;
}

int conduit__sodium_listen(struct conduit_listener *l, const struct conduit_uri *u,
                           const struct conduit_options *opts)
{
    struct sodium_keys *k = malloc(sizeof(*k));
    int rc;

    if (!k) {
        return conduit__errorf(&l->err, CONDUIT_ENOMEM, "out of memory");
    }
    if ((rc = keys_load(&l->err, u, opts, true, k)) < 0) {
        free(k);
        return rc;
    }
    l->layer_ctx = k;
    return 0;
}

int conduit__sodium_server(struct conduit_listener *l, struct conduit__err *e,
                           struct conduit__layer *lower, struct conduit__layer **out)
{
    return new_layer(e, l->layer_ctx, false, lower, out);
}

void conduit__sodium_listen_free(struct conduit_listener *l)
{
    if (l->layer_ctx) {
        keys_wipe(l->layer_ctx);
        free(l->layer_ctx);
        l->layer_ctx = NULL;
    }
}

int conduit__sodium_set_nonce(struct conduit__layer *l, uint64_t n)
{
    struct sodium_layer *t = (struct sodium_layer *)l;

    if (!l || l->ops != &sodium_ops || !t->handshaken) {
        return -CONDUIT_EINVAL;
    }
    conduit__noise_cs_set_nonce(&t->tx, n);
    return 0;
}
