/* SPDX-License-Identifier: ISC */
/*
 * TLS (OpenSSL) as a layer over any transport, as curl's SSL filter sits
 * on any connection: OpenSSL talks to a BIO of ours, and the BIO talks to
 * the layer below through its ops, so tls+vchan and tls+unix are the same
 * code as tls over TCP.
 *
 * The BIO's writes never block: ciphertext goes into a buffer of ours that
 * is flushed to the lower layer whenever it takes it. SSL_write therefore
 * never says WANT_WRITE and never has to be retried with the same
 * arguments, which a non-blocking caller of conduit_write could not
 * promise; instead conduit_write refuses more (EAGAIN) while the buffer
 * holds more than OUT_CAP bytes. Reads go straight to the lower layer.
 *
 * Policy: TLS 1.2 or 1.3, no renegotiation; clients verify the server's
 * chain (ca= or the system store) and name (host or servername=, also the
 * SNI); verify=0 turns it off, explicitly, with a warning in the log.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "libconduit/internal/internal.h"

/* Refuse more plaintext while this much ciphertext waits for the transport. */
#define OUT_CAP (64u * 1024u)
/* The most plaintext one SSL_write takes: one record. */
#define CHUNK 16384

struct tls_layer {
    struct conduit__layer base;
    SSL *ssl;
    uint8_t *out; /* ciphertext for the lower layer: out[off, len) */
    size_t out_off, out_len, out_cap;
    bool lower_eof;  /* the lower layer gave end-of-file */
    int lower_err;   /* it failed inside the BIO (negative code, message recorded) */
    bool out_of_mem; /* the BIO could not buffer */
    bool close_sent; /* close_notify queued */
    bool handshaken;
    char name[256]; /* the name verified, for messages */
};

/* ------------------------------------------------------------ the BIO */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *data, int len)
{
    struct tls_layer *t = BIO_get_data(b);
    size_t need;

    BIO_clear_retry_flags(b);
    if (len <= 0) {
        return 0;
    }
    if (t->out_off == t->out_len) {
        t->out_off = t->out_len = 0;
    }
    need = t->out_len + (size_t)len;
    if (need > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 16384;
        uint8_t *p;

        /* Move what is left to the front before growing. */
        if (t->out_off > 0) {
            memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
            t->out_len -= t->out_off;
            t->out_off = 0;
            need = t->out_len + (size_t)len;
        }
        while (cap < need) {
            cap *= 2;
        }
        if (cap > t->out_cap) {
            if (!(p = realloc(t->out, cap))) {
                t->out_of_mem = true;
                return -1;
            }
            t->out = p;
            t->out_cap = cap;
        }
    }
    memcpy(t->out + t->out_len, data, (size_t)len);
    t->out_len += (size_t)len;
    return len;
}

static int bio_read(BIO *b, char *data, int len)
{
    struct tls_layer *t = BIO_get_data(b);
    struct conduit__layer *next = t->base.next;
    size_t n = 0;
    int rc;

    BIO_clear_retry_flags(b);
    if (len <= 0) {
        return 0;
    }
    rc = next->ops->read(next, data, (size_t)len, &n);
    if (rc == -CONDUIT_EAGAIN) {
        BIO_set_retry_read(b);
        return -1;
    }
    if (rc < 0) {
        t->lower_err = rc;
        return -1;
    }
    if (n == 0) {
        t->lower_eof = true;
        return 0;
    }
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct tls_layer *t = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* our own flush runs after every SSL call */
    case BIO_CTRL_WPENDING:
        return t ? (long)(t->out_len - t->out_off) : 0;
    case BIO_CTRL_PENDING:
        return 0;
    case BIO_CTRL_EOF:
        return t && t->lower_eof;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_destroy(BIO *b)
{
    BIO_set_data(b, NULL);
    return 1;
}

static void make_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "conduit");

    if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
        BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create) &&
        BIO_meth_set_destroy(m, bio_destroy)) {
        bio_method = m;
    } else {
        BIO_meth_free(m);
    }
}

/* ------------------------------------------------------------ errors */

/* The most telling OpenSSL error on this thread's queue, for a message. */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r;

    if (e == 0) {
        snprintf(buf, len, "unknown error");
        return buf;
    }
    r = ERR_reason_error_string(e);
    if (r) {
        snprintf(buf, len, "%s", r);
    } else {
        ERR_error_string_n(e, buf, len);
    }
    return buf;
}

static int verify_failed(struct tls_layer *t, long vr)
{
    const char *why = X509_verify_cert_error_string(vr);

    if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        return conduit__errorf(t->base.err, CONDUIT_ECERT,
                               "certificate verify failed: %s (the certificate is not for '%s')",
                               why, t->name);
    }
    return conduit__errorf(t->base.err, CONDUIT_ECERT, "certificate verify failed: %s", why);
}

/* After an SSL call returned `ret` <= 0: -CONDUIT_EAGAIN or an error with its message. */
static int ssl_fail(struct tls_layer *t, int ret, const char *what)
{
    int e = SSL_get_error(t->ssl, ret);
    char reason[256];
    long vr;

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return -CONDUIT_EAGAIN;
    }
    if (t->lower_err) {
        return t->lower_err; /* the transport recorded its own message */
    }
    if (t->out_of_mem) {
        return conduit__errorf(t->base.err, CONDUIT_ENOMEM, "TLS %s: out of memory", what);
    }
    if (!t->handshaken && (vr = SSL_get_verify_result(t->ssl)) != X509_V_OK) {
        return verify_failed(t, vr);
    }
    if (t->lower_eof && ERR_peek_last_error() == 0) {
        return conduit__errorf(t->base.err, CONDUIT_ECONNRESET, "the peer closed the connection %s",
                               t->handshaken ? "without a TLS close_notify (data may be cut short)"
                                             : "during the TLS handshake");
    }
    if (t->lower_eof && !t->handshaken) {
        return conduit__errorf(t->base.err, CONDUIT_ETLS,
                               "TLS handshake failed: the peer closed the connection (%s)",
                               ssl_reason(reason, sizeof(reason)));
    }
    if (t->lower_eof) {
        return conduit__errorf(t->base.err, CONDUIT_ECONNRESET,
                               "the peer closed the connection without a TLS close_notify "
                               "(data may be cut short)");
    }
    return conduit__errorf(t->base.err, CONDUIT_ETLS, "TLS %s failed: %s", what,
                           ssl_reason(reason, sizeof(reason)));
}

/* Hand buffered ciphertext to the lower layer: 0 when all went, -CONDUIT_EAGAIN, or an error. */
static int flush(struct tls_layer *t)
{
    struct conduit__layer *next = t->base.next;

    while (t->out_off < t->out_len) {
        size_t n = 0;
        int rc = next->ops->write(next, t->out + t->out_off, t->out_len - t->out_off, &n);

        t->out_off += n;
        if (rc == 0 && n == 0) {
            rc = -CONDUIT_EAGAIN;
        }
        if (rc < 0) {
            return rc;
        }
    }
    t->out_off = t->out_len = 0;
    return 0;
}

/* Flush as far as the transport takes it now; only real failures count. */
static int flush_some(struct tls_layer *t)
{
    int rc = flush(t);

    return rc == -CONDUIT_EAGAIN ? 0 : rc;
}

static size_t out_pending(const struct tls_layer *t)
{
    return t->out_len - t->out_off;
}

/* ------------------------------------------------------------ layer ops */

static int tls_handshake(struct conduit__layer *l)
{
    struct tls_layer *t = (struct tls_layer *)l;
    int ret, rc;

    if ((rc = flush_some(t)) < 0) {
        return rc;
    }
    ERR_clear_error();
    ret = SSL_do_handshake(t->ssl);
    /* Whatever the outcome, our side's messages (or alert) should reach the peer. */
    if ((rc = flush_some(t)) < 0 && ret == 1) {
        return rc;
    }
    if (ret == 1) {
        t->handshaken = true;
        return 0;
    }
    return ssl_fail(t, ret, "handshake");
}

static int tls_read(struct conduit__layer *l, void *buf, size_t len, size_t *nread)
{
    struct tls_layer *t = (struct tls_layer *)l;
    size_t n = 0;
    int ret, rc;

    if ((rc = flush_some(t)) < 0) {
        return rc;
    }
    ERR_clear_error();
    ret = SSL_read_ex(t->ssl, buf, len, &n);
    if ((rc = flush_some(t)) < 0) {
        return rc;
    }
    if (ret == 1) {
        *nread = n;
        return 0;
    }
    if (SSL_get_error(t->ssl, ret) == SSL_ERROR_ZERO_RETURN) {
        *nread = 0; /* close_notify: a clean end-of-file */
        return 0;
    }
    return ssl_fail(t, ret, "read");
}

static int tls_write(struct conduit__layer *l, const void *buf, size_t len, size_t *nwritten)
{
    struct tls_layer *t = (struct tls_layer *)l;
    size_t n = 0;
    int ret, rc;

    rc = flush(t);
    if (rc < 0 && rc != -CONDUIT_EAGAIN) {
        return rc;
    }
    if (out_pending(t) > OUT_CAP) {
        return -CONDUIT_EAGAIN;
    }
    ERR_clear_error();
    ret = SSL_write_ex(t->ssl, buf, len < CHUNK ? len : CHUNK, &n);
    if ((rc = flush_some(t)) < 0) {
        return rc;
    }
    if (ret == 1) {
        *nwritten = n;
        return 0;
    }
    return ssl_fail(t, ret, "write");
}

static int tls_shutdown(struct conduit__layer *l)
{
    struct tls_layer *t = (struct tls_layer *)l;
    struct conduit__layer *next = l->next;
    int rc;

    if (!t->close_sent) {
        ERR_clear_error();
        if (SSL_shutdown(t->ssl) < 0) {
            return ssl_fail(t, -1, "shutdown");
        }
        t->close_sent = true;
    }
    if ((rc = flush(t)) < 0) {
        return rc;
    }
    /*
     * close_notify is the half-close. A transport that has its own gets it
     * too; one without (vchan, whose shutdown is its close) must stay open
     * for the peer's answer.
     */
    if (!next->ops->half_close) {
        return 0;
    }
    rc = next->ops->shutdown(next);
    return rc;
}

static int tls_poll_events(struct conduit__layer *l, unsigned want, short *events)
{
    struct tls_layer *t = (struct tls_layer *)l;
    struct conduit__layer *next = l->next;
    unsigned lower = want & CONDUIT_WANT_SPIN;

    *events = 0;
    if (t->handshaken && (want & CONDUIT_WANT_READ) && SSL_pending(t->ssl) > 0) {
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

static int tls_unconsumed(struct conduit__layer *l, size_t *n)
{
    struct tls_layer *t = (struct tls_layer *)l;
    size_t below = 0;
    int rc = l->next->ops->unconsumed(l->next, &below);

    *n = out_pending(t) + below;
    return rc;
}

static int tls_fd(struct conduit__layer *l)
{
    return l->next->ops->fd(l->next);
}

static void tls_info(struct conduit__layer *l, char *buf, size_t len)
{
    struct tls_layer *t = (struct tls_layer *)l;
    char subject[160] = "";
    X509 *cert;

    if (!t->handshaken) {
        snprintf(buf, len, "TLS (handshake not finished)");
        return;
    }
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    cert = SSL_get1_peer_certificate(t->ssl);
#else
    cert = SSL_get_peer_certificate(t->ssl);
#endif
    if (cert) {
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        X509_free(cert);
    }
    snprintf(buf, len, "%s %s%s%s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl),
             subject[0] ? ", peer " : "", subject);
}

static void tls_close(struct conduit__layer *l)
{
    struct tls_layer *t = (struct tls_layer *)l;

    /*
     * Say goodbye properly if nobody did, so the peer can tell a close from
     * a cut (truncation). Best effort: what the transport takes now.
     */
    if (t->handshaken && !t->close_sent && l->next && !t->lower_err) {
        ERR_clear_error();
        if (SSL_shutdown(t->ssl) >= 0) {
            (void)flush(t);
        }
        ERR_clear_error();
    }
    SSL_free(t->ssl); /* and the BIO */
    free(t->out);
    free(t);
}

static const struct conduit__layer_ops tls_ops = {
    .name = "tls",
    .handshake = tls_handshake,
    .read = tls_read,
    .write = tls_write,
    .shutdown = tls_shutdown,
    .half_close = true,
    .poll_events = tls_poll_events,
    .unconsumed = tls_unconsumed,
    .fd = tls_fd,
    .info = tls_info,
    .close = tls_close,
};

/* ------------------------------------------------------------ set-up */

static int ctx_error(struct conduit__err *e, const char *what, const char *file)
{
    char reason[256];

    if (file && access(file, R_OK) < 0) {
        return conduit__errorf(e, CONDUIT_ETLS, "cannot read %s '%s': %s", what, file,
                               strerror(errno));
    }
    return conduit__errorf(e, CONDUIT_ETLS, "cannot use %s%s%s%s: %s", what, file ? " '" : "",
                           file ? file : "", file ? "'" : "", ssl_reason(reason, sizeof(reason)));
}

static SSL_CTX *new_ctx(struct conduit__err *e, bool server)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    if (!ctx) {
        ctx_error(e, "OpenSSL", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (server) {
        /* No resumption here: tickets would only be data a client may never read. */
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    return ctx;
}

static int load_own(struct conduit__err *e, SSL_CTX *ctx, const char *cert, const char *key)
{
    if (!key) {
        key = cert; /* one PEM file with both is common */
    }
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        return ctx_error(e, "certificate", cert);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        return ctx_error(e, "private key", key);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        return conduit__errorf(e, CONDUIT_ETLS, "private key '%s' does not match certificate '%s'",
                               key, cert);
    }
    return 0;
}

static int load_ca(struct conduit__err *e, SSL_CTX *ctx, const char *ca)
{
    ERR_clear_error();
    if (ca) {
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
            return ctx_error(e, "CA file", ca);
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return ctx_error(e, "the system's CA store", NULL);
    }
    return 0;
}

static bool is_ip(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static int new_layer(struct conduit__err *e, SSL_CTX *ctx, bool server,
                     struct conduit__layer *lower, struct tls_layer **out)
{
    struct tls_layer *t;
    BIO *bio;

    pthread_once(&bio_once, make_method);
    if (!bio_method) {
        return conduit__errorf(e, CONDUIT_ENOMEM, "cannot make an OpenSSL BIO method");
    }
    if (!(t = calloc(1, sizeof(*t)))) {
        return conduit__errorf(e, CONDUIT_ENOMEM, "out of memory");
    }
    t->base.ops = &tls_ops;
    t->base.err = e;
    t->base.next = lower;
    if (!(t->ssl = SSL_new(ctx)) || !(bio = BIO_new(bio_method))) {
        SSL_free(t->ssl);
        free(t);
        return ctx_error(e, "OpenSSL", NULL);
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
    }
    *out = t;
    return 0;
}

int conduit__tls_client(struct conduit__err *e, const struct conduit__connect_args *a,
                        struct conduit__layer *lower, struct conduit__layer **out)
{
    const struct conduit_uri *u = a->uri;
    const struct conduit_options *o = a->opts;
    const char *ca = u->tls.ca ? u->tls.ca : o ? o->ca : NULL;
    const char *cert = u->tls.cert ? u->tls.cert : o ? o->cert : NULL;
    const char *key = u->tls.key ? u->tls.key : o ? o->key : NULL;
    const char *name = u->tls.servername;
    struct tls_layer *t = NULL;
    SSL_CTX *ctx;
    int rc;

    if (!name && u->transport == CONDUIT_TRANSPORT_TCP) {
        name = u->tcp.host;
    }
    if (!(ctx = new_ctx(e, false))) {
        return -CONDUIT_ETLS;
    }
    if (u->tls.verify) {
        if ((rc = load_ca(e, ctx, ca)) < 0) {
            goto out;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        conduit__logf(e, CONDUIT_LOG_WARN, "TLS certificate verification is off (verify=0)");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (cert && (rc = load_own(e, ctx, cert, key)) < 0) {
        goto out;
    }
    if ((rc = new_layer(e, ctx, false, lower, &t)) < 0) {
        goto out;
    }
    if (name) {
        snprintf(t->name, sizeof(t->name), "%s", name);
        if (is_ip(name)) {
            /* An address is checked against the certificate's IP entries, and is no SNI. */
            if (u->tls.verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) != 1) {
                rc = ctx_error(e, "the address to verify", NULL);
                goto out;
            }
        } else if (SSL_set_tlsext_host_name(t->ssl, name) != 1 ||
                   (u->tls.verify && SSL_set1_host(t->ssl, name) != 1)) {
            rc = ctx_error(e, "the server name to verify", NULL);
            goto out;
        }
    }
    *out = &t->base;
    t = NULL;
    rc = 0;
out:
    if (t) {
        t->base.next = NULL; /* the caller's, not ours */
        tls_close(&t->base);
    }
    SSL_CTX_free(ctx); /* the SSL keeps its own reference */
    return rc;
}

int conduit__tls_listen(struct conduit_listener *l, const struct conduit_uri *u,
                        const struct conduit_options *opts)
{
    const char *ca = u->tls.ca ? u->tls.ca : opts ? opts->ca : NULL;
    const char *cert = u->tls.cert ? u->tls.cert : opts ? opts->cert : NULL;
    const char *key = u->tls.key ? u->tls.key : opts ? opts->key : NULL;
    SSL_CTX *ctx;
    int rc;

    if (!cert) {
        return conduit__errorf(&l->err, CONDUIT_EOPTION,
                               "listening with TLS needs the server's certificate: cert= (and "
                               "key=, unless the key is in the same file)");
    }
    if (!(ctx = new_ctx(&l->err, true))) {
        return -CONDUIT_ETLS;
    }
    if ((rc = load_own(&l->err, ctx, cert, key)) < 0) {
        goto out;
    }
    if (ca && u->tls.verify) {
        STACK_OF(X509_NAME) * names;

        /* A CA given to a server: clients must present a certificate it signed. */
        if ((rc = load_ca(&l->err, ctx, ca)) < 0) {
            goto out;
        }
        if ((names = SSL_load_client_CA_file(ca))) {
            SSL_CTX_set_client_CA_list(ctx, names);
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    l->layer_ctx = ctx;
    return 0;
out:
    SSL_CTX_free(ctx);
    return rc;
}

int conduit__tls_server(struct conduit_listener *l, struct conduit__err *e,
                        struct conduit__layer *lower, struct conduit__layer **out)
{
    struct tls_layer *t;
    int rc;

    if ((rc = new_layer(e, l->layer_ctx, true, lower, &t)) < 0) {
        return rc;
    }
    *out = &t->base;
    return 0;
}

void conduit__tls_listen_free(struct conduit_listener *l)
{
    if (l->layer_ctx) {
        SSL_CTX_free(l->layer_ctx);
        l->layer_ctx = NULL;
    }
}
