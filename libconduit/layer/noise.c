/* SPDX-License-Identifier: ISC */
/*
 * The Noise state machine (noise.h): the spec's section 5 objects, in its
 * order, each step on libsodium. Patterns are token lists so that every
 * fundamental pattern runs through the same two functions.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <string.h>

#include <sodium.h>

#include "libconduit/layer/noise.h"

/* ------------------------------------------------------------ patterns */

enum token { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS };

#define MSG_MAX 3
#define TOK_MAX 8

struct conduit__noise_pattern {
    const char *name;
    bool one_way;
    enum token pre_i[2], pre_r[2]; /* pre-messages: T_S or nothing */
    unsigned nmsgs;                /* message 0 is the initiator's, then alternating */
    enum token msgs[MSG_MAX][TOK_MAX];
};

static const struct conduit__noise_pattern patterns[] = {
    {"N", true, {T_END}, {T_S}, 1, {{T_E, T_ES}}},
    {"K", true, {T_S}, {T_S}, 1, {{T_E, T_ES, T_SS}}},
    {"X", true, {T_END}, {T_S}, 1, {{T_E, T_ES, T_S, T_SS}}},
    {"NN", false, {T_END}, {T_END}, 2, {{T_E}, {T_E, T_EE}}},
    {"NK", false, {T_END}, {T_S}, 2, {{T_E, T_ES}, {T_E, T_EE}}},
    {"NX", false, {T_END}, {T_END}, 2, {{T_E}, {T_E, T_EE, T_S, T_ES}}},
    {"KN", false, {T_S}, {T_END}, 2, {{T_E}, {T_E, T_EE, T_SE}}},
    {"KK", false, {T_S}, {T_S}, 2, {{T_E, T_ES, T_SS}, {T_E, T_EE, T_SE}}},
    {"KX", false, {T_S}, {T_END}, 2, {{T_E}, {T_E, T_EE, T_SE, T_S, T_ES}}},
    {"XN", false, {T_END}, {T_END}, 3, {{T_E}, {T_E, T_EE}, {T_S, T_SE}}},
    {"XK", false, {T_END}, {T_S}, 3, {{T_E, T_ES}, {T_E, T_EE}, {T_S, T_SE}}},
    {"XX", false, {T_END}, {T_END}, 3, {{T_E}, {T_E, T_EE, T_S, T_ES}, {T_S, T_SE}}},
    {"IN", false, {T_END}, {T_END}, 2, {{T_E, T_S}, {T_E, T_EE, T_SE}}},
    {"IK", false, {T_END}, {T_S}, 2, {{T_E, T_ES, T_S, T_SS}, {T_E, T_EE, T_SE}}},
    {"IX", false, {T_END}, {T_END}, 2, {{T_E, T_S}, {T_E, T_EE, T_SE, T_S, T_ES}}},
};

const char *conduit__noise_strerror(int err)
{
    switch (err < 0 ? -err : err) {
    case CONDUIT__NOISE_OK:
        return "success";
    case CONDUIT__NOISE_EINVAL:
        return "invalid argument or unsupported protocol";
    case CONDUIT__NOISE_ESTATE:
        return "message out of turn";
    case CONDUIT__NOISE_ESHORT:
        return "message of a wrong length";
    case CONDUIT__NOISE_EDECRYPT:
        return "authentication failed";
    case CONDUIT__NOISE_EDH:
        return "the peer's key gives an all-zero shared secret";
    case CONDUIT__NOISE_ENONCE:
        return "nonce counter exhausted";
    case CONDUIT__NOISE_ECRYPTO:
        return "libsodium could not be initialised";
    default:
        return "unknown Noise error";
    }
}

/* ------------------------------------------------------------ HASH, HMAC, HKDF */

struct hash_ctx {
    enum conduit__noise_hash kind;
    union {
        crypto_generichash_blake2b_state b2;
        crypto_hash_sha256_state sha;
    } u;
};

static size_t hash_len(enum conduit__noise_hash kind)
{
    return kind == CONDUIT__NOISE_BLAKE2B ? 64 : 32;
}

static size_t block_len(enum conduit__noise_hash kind)
{
    return kind == CONDUIT__NOISE_BLAKE2B ? 128 : 64;
}

static void hash_init(struct hash_ctx *c, enum conduit__noise_hash kind)
{
    c->kind = kind;
    if (kind == CONDUIT__NOISE_BLAKE2B) {
        crypto_generichash_blake2b_init(&c->u.b2, NULL, 0, 64);
    } else {
        crypto_hash_sha256_init(&c->u.sha);
    }
}

static void hash_update(struct hash_ctx *c, const uint8_t *p, size_t len)
{
    if (c->kind == CONDUIT__NOISE_BLAKE2B) {
        crypto_generichash_blake2b_update(&c->u.b2, p, len);
    } else {
        crypto_hash_sha256_update(&c->u.sha, p, len);
    }
}

static void hash_final(struct hash_ctx *c, uint8_t *out)
{
    if (c->kind == CONDUIT__NOISE_BLAKE2B) {
        crypto_generichash_blake2b_final(&c->u.b2, out, 64);
    } else {
        crypto_hash_sha256_final(&c->u.sha, out);
    }
    sodium_memzero(&c->u, sizeof(c->u));
}

/* HMAC-HASH(key, d1 || d2) (RFC 2104 with the hash's own block length). */
static void hmac(enum conduit__noise_hash kind, const uint8_t *key, size_t keylen,
                 const uint8_t *d1, size_t l1, const uint8_t *d2, size_t l2, uint8_t *out)
{
    size_t bl = block_len(kind), hl = hash_len(kind), i;
    uint8_t k[128], pad[128], inner[64];
    struct hash_ctx c;

    memset(k, 0, sizeof(k));
    if (keylen > bl) {
        hash_init(&c, kind);
        hash_update(&c, key, keylen);
        hash_final(&c, k);
    } else if (keylen > 0) {
        memcpy(k, key, keylen);
    }
    for (i = 0; i < bl; i++) {
        pad[i] = k[i] ^ 0x36;
    }
    hash_init(&c, kind);
    hash_update(&c, pad, bl);
    if (l1) {
        hash_update(&c, d1, l1);
    }
    if (l2) {
        hash_update(&c, d2, l2);
    }
    hash_final(&c, inner);
    for (i = 0; i < bl; i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    hash_init(&c, kind);
    hash_update(&c, pad, bl);
    hash_update(&c, inner, hl);
    hash_final(&c, out);
    sodium_memzero(k, sizeof(k));
    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
}

/* HKDF(ck, ikm, 2 or 3): each output hashlen bytes. */
static void hkdf(enum conduit__noise_hash kind, const uint8_t *ck, const uint8_t *ikm,
                 size_t ikmlen, uint8_t *o1, uint8_t *o2, uint8_t *o3)
{
    size_t hl = hash_len(kind);
    uint8_t temp[64];
    uint8_t b;

    hmac(kind, ck, hl, ikm, ikmlen, NULL, 0, temp);
    b = 1;
    hmac(kind, temp, hl, &b, 1, NULL, 0, o1);
    b = 2;
    hmac(kind, temp, hl, o1, hl, &b, 1, o2);
    if (o3) {
        b = 3;
        hmac(kind, temp, hl, o2, hl, &b, 1, o3);
    }
    sodium_memzero(temp, sizeof(temp));
}

/* ------------------------------------------------------------ CipherState */

static void nonce_bytes(uint64_t n, uint8_t out[12])
{
    unsigned i;

    memset(out, 0, 4);
    for (i = 0; i < 8; i++) {
        out[4 + i] = (uint8_t)(n >> (8 * i));
    }
}

static void cs_init_key(struct conduit__noise_cs *cs, const uint8_t *k)
{
    if (k) {
        memcpy(cs->k, k, CONDUIT__NOISE_KEYLEN);
        cs->has_key = true;
    } else {
        sodium_memzero(cs->k, sizeof(cs->k));
        cs->has_key = false;
    }
    cs->n = 0;
}

void conduit__noise_cs_set_nonce(struct conduit__noise_cs *cs, uint64_t n)
{
    cs->n = n;
}

void conduit__noise_cs_wipe(struct conduit__noise_cs *cs)
{
    sodium_memzero(cs, sizeof(*cs));
}

/* EncryptWithAd: without a key the plaintext goes as it is (handshake only). */
int conduit__noise_encrypt(struct conduit__noise_cs *cs, const uint8_t *ad, size_t adlen,
                           const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long clen = 0;

    if (!cs->has_key) {
        if (len) {
            memmove(out, in, len);
        }
        return 0;
    }
    if (cs->n == UINT64_MAX) {
        return -CONDUIT__NOISE_ENONCE;
    }
    nonce_bytes(cs->n, nonce);
    if (crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, in, len, ad, adlen, NULL, nonce,
                                                  cs->k) != 0) {
        return -CONDUIT__NOISE_ECRYPTO;
    }
    cs->n++;
    return 0;
}

int conduit__noise_decrypt(struct conduit__noise_cs *cs, const uint8_t *ad, size_t adlen,
                           const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long plen = 0;

    if (!cs->has_key) {
        if (len) {
            memmove(out, in, len);
        }
        return 0;
    }
    if (len < CONDUIT__NOISE_TAGLEN) {
        return -CONDUIT__NOISE_ESHORT;
    }
    if (cs->n == UINT64_MAX) {
        return -CONDUIT__NOISE_ENONCE;
    }
    nonce_bytes(cs->n, nonce);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, NULL, in, len, ad, adlen, nonce,
                                                  cs->k) != 0) {
        if (out != in) {
            memset(out, 0, len - CONDUIT__NOISE_TAGLEN);
        }
        return -CONDUIT__NOISE_EDECRYPT;
    }
    cs->n++;
    return 0;
}

/* ------------------------------------------------------------ SymmetricState */

static void mix_hash(struct conduit__noise_ss *ss, const uint8_t *data, size_t len)
{
    struct hash_ctx c;

    hash_init(&c, ss->hash);
    hash_update(&c, ss->h, ss->hashlen);
    if (len) {
        hash_update(&c, data, len);
    }
    hash_final(&c, ss->h);
}

static void mix_key(struct conduit__noise_ss *ss, const uint8_t *ikm, size_t len)
{
    uint8_t ck[64], k[64];

    hkdf(ss->hash, ss->ck, ikm, len, ck, k, NULL);
    memcpy(ss->ck, ck, ss->hashlen);
    cs_init_key(&ss->cs, k); /* the first 32 bytes when HASHLEN is 64 */
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(k, sizeof(k));
}

static int encrypt_and_hash(struct conduit__noise_ss *ss, const uint8_t *in, size_t len,
                            uint8_t *out, size_t *outlen)
{
    int rc = conduit__noise_encrypt(&ss->cs, ss->h, ss->hashlen, in, len, out);

    if (rc < 0) {
        return rc;
    }
    *outlen = len + (ss->cs.has_key ? CONDUIT__NOISE_TAGLEN : 0);
    mix_hash(ss, out, *outlen);
    return 0;
}

/* in and out must not overlap: h is mixed with the ciphertext afterwards. */
static int decrypt_and_hash(struct conduit__noise_ss *ss, const uint8_t *in, size_t len,
                            uint8_t *out, size_t *outlen)
{
    int rc = conduit__noise_decrypt(&ss->cs, ss->h, ss->hashlen, in, len, out);

    if (rc < 0) {
        return rc;
    }
    *outlen = len - (ss->cs.has_key ? CONDUIT__NOISE_TAGLEN : 0);
    mix_hash(ss, in, len);
    return 0;
}

/* ------------------------------------------------------------ DH */

int conduit__noise_pubkey(const uint8_t priv[CONDUIT__NOISE_DHLEN],
                          uint8_t pub[CONDUIT__NOISE_DHLEN])
{
    if (sodium_init() < 0) {
        return -CONDUIT__NOISE_ECRYPTO;
    }
    return crypto_scalarmult_base(pub, priv) == 0 ? 0 : -CONDUIT__NOISE_EINVAL;
}

int conduit__noise_keypair(uint8_t priv[CONDUIT__NOISE_DHLEN], uint8_t pub[CONDUIT__NOISE_DHLEN])
{
    if (sodium_init() < 0) {
        return -CONDUIT__NOISE_ECRYPTO;
    }
    randombytes_buf(priv, CONDUIT__NOISE_DHLEN);
    return conduit__noise_pubkey(priv, pub);
}

static int mix_dh(struct conduit__noise_ss *ss, const uint8_t *priv, const uint8_t *pub)
{
    static const uint8_t zero[CONDUIT__NOISE_DHLEN];
    uint8_t shared[CONDUIT__NOISE_DHLEN];
    int rc = 0;

    /* libsodium refuses an all-zero result itself; checked here too, in constant time. */
    if (crypto_scalarmult(shared, priv, pub) != 0 ||
        sodium_memcmp(shared, zero, sizeof(shared)) == 0) {
        rc = -CONDUIT__NOISE_EDH;
    } else {
        mix_key(ss, shared, sizeof(shared));
    }
    sodium_memzero(shared, sizeof(shared));
    return rc;
}

/* ------------------------------------------------------------ HandshakeState */

static const struct conduit__noise_pattern *find_pattern(const char *protocol,
                                                          enum conduit__noise_hash *hash)
{
    static const char prefix[] = "Noise_";
    static const char mid[] = "_25519_ChaChaPoly_";
    const char *p, *u;
    size_t i, n;

    if (strncmp(protocol, prefix, sizeof(prefix) - 1) != 0) {
        return NULL;
    }
    p = protocol + sizeof(prefix) - 1;
    if (!(u = strchr(p, '_'))) {
        return NULL;
    }
    n = (size_t)(u - p);
    if (strncmp(u, mid, sizeof(mid) - 1) != 0) {
        return NULL;
    }
    u += sizeof(mid) - 1;
    if (strcmp(u, "BLAKE2b") == 0) {
        *hash = CONDUIT__NOISE_BLAKE2B;
    } else if (strcmp(u, "SHA256") == 0) {
        *hash = CONDUIT__NOISE_SHA256;
    } else {
        return NULL;
    }
    for (i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        if (strlen(patterns[i].name) == n && strncmp(patterns[i].name, p, n) == 0) {
            return &patterns[i];
        }
    }
    return NULL;
}

int conduit__noise_hs_init(struct conduit__noise_hs *hs, const char *protocol, bool initiator,
                           const uint8_t *prologue, size_t prologue_len,
                           const uint8_t s[CONDUIT__NOISE_DHLEN],
                           const uint8_t rs[CONDUIT__NOISE_DHLEN])
{
    const struct conduit__noise_pattern *pat;
    struct conduit__noise_ss *ss = &hs->ss;
    enum conduit__noise_hash hash = CONDUIT__NOISE_BLAKE2B;
    size_t len;
    const enum token *pre_mine, *pre_theirs;

    memset(hs, 0, sizeof(*hs));
    if (sodium_init() < 0) {
        return -CONDUIT__NOISE_ECRYPTO;
    }
    if (!protocol || !(pat = find_pattern(protocol, &hash))) {
        return -CONDUIT__NOISE_EINVAL;
    }
    hs->pattern = pat;
    hs->initiator = initiator;
    /* InitializeSymmetric */
    ss->hash = hash;
    ss->hashlen = hash_len(hash);
    len = strlen(protocol);
    if (len <= ss->hashlen) {
        memcpy(ss->h, protocol, len);
    } else {
        struct hash_ctx c;

        hash_init(&c, hash);
        hash_update(&c, (const uint8_t *)protocol, len);
        hash_final(&c, ss->h);
    }
    memcpy(ss->ck, ss->h, ss->hashlen);
    cs_init_key(&ss->cs, NULL);
    mix_hash(ss, prologue, prologue_len);
    if (s) {
        memcpy(hs->s, s, CONDUIT__NOISE_DHLEN);
        hs->has_s = true;
        if (conduit__noise_pubkey(hs->s, hs->s_pub) < 0) {
            conduit__noise_hs_wipe(hs);
            return -CONDUIT__NOISE_EINVAL;
        }
    }
    if (rs) {
        memcpy(hs->rs, rs, CONDUIT__NOISE_DHLEN);
        hs->has_rs = true;
    }
    /* Pre-messages, the initiator's first; each key must be there. */
    pre_mine = initiator ? pat->pre_i : pat->pre_r;
    pre_theirs = initiator ? pat->pre_r : pat->pre_i;
    if ((pre_mine[0] == T_S && !hs->has_s) || (pre_theirs[0] == T_S && !hs->has_rs)) {
        conduit__noise_hs_wipe(hs);
        return -CONDUIT__NOISE_EINVAL;
    }
    if (pat->pre_i[0] == T_S) {
        mix_hash(ss, initiator ? hs->s_pub : hs->rs, CONDUIT__NOISE_DHLEN);
    }
    if (pat->pre_r[0] == T_S) {
        mix_hash(ss, initiator ? hs->rs : hs->s_pub, CONDUIT__NOISE_DHLEN);
    }
    return 0;
}

void conduit__noise_hs_set_ephemeral(struct conduit__noise_hs *hs,
                                     const uint8_t e[CONDUIT__NOISE_DHLEN])
{
    memcpy(hs->e, e, CONDUIT__NOISE_DHLEN);
    hs->fixed_e = true;
}

bool conduit__noise_hs_active(const struct conduit__noise_hs *hs)
{
    return hs->pattern && !hs->failed && hs->msg < hs->pattern->nmsgs;
}

bool conduit__noise_hs_my_turn(const struct conduit__noise_hs *hs)
{
    return conduit__noise_hs_active(hs) && ((hs->msg % 2 == 0) == hs->initiator);
}

static int fail(struct conduit__noise_hs *hs, int rc)
{
    const struct conduit__noise_pattern *pat = hs->pattern;

    conduit__noise_hs_wipe(hs);
    hs->pattern = pat;
    hs->failed = true;
    return rc;
}

int conduit__noise_hs_make_ephemeral(struct conduit__noise_hs *hs)
{
    int rc;

    /* Once per handshake: a second pair would not be the one the first call's caller expects. */
    if (!hs->pattern || hs->failed || hs->has_e || hs->fixed_e || hs->ready_e) {
        return -CONDUIT__NOISE_ESTATE;
    }
    if ((rc = conduit__noise_keypair(hs->e, hs->e_pub)) < 0) {
        return fail(hs, rc);
    }
    hs->ready_e = true;
    return 0;
}

/* The DH of a token, from this side's point of view. */
static int token_dh(struct conduit__noise_hs *hs, enum token t)
{
    const uint8_t *priv, *pub;
    bool mine_e, theirs_e;

    /* The first letter is the initiator's key, the second the responder's. */
    switch (t) {
    case T_EE:
        mine_e = theirs_e = true;
        break;
    case T_SS:
        mine_e = theirs_e = false;
        break;
    case T_ES:
        mine_e = hs->initiator;
        theirs_e = !hs->initiator;
        break;
    case T_SE:
        mine_e = !hs->initiator;
        theirs_e = hs->initiator;
        break;
    default:
        return -CONDUIT__NOISE_EINVAL;
    }
    if ((mine_e ? !hs->has_e : !hs->has_s) || (theirs_e ? !hs->has_re : !hs->has_rs)) {
        return -CONDUIT__NOISE_EINVAL;
    }
    priv = mine_e ? hs->e : hs->s;
    pub = theirs_e ? hs->re : hs->rs;
    return mix_dh(&hs->ss, priv, pub);
}

int conduit__noise_hs_write(struct conduit__noise_hs *hs, const uint8_t *payload, size_t plen,
                            uint8_t *out, size_t outcap, size_t *outlen)
{
    const enum token *t;
    size_t used = 0, n;
    int rc;

    *outlen = 0;
    if (!conduit__noise_hs_my_turn(hs)) {
        return -CONDUIT__NOISE_ESTATE;
    }
    if (outcap > CONDUIT__NOISE_MSG_MAX) {
        outcap = CONDUIT__NOISE_MSG_MAX;
    }
    for (t = hs->pattern->msgs[hs->msg]; *t != T_END; t++) {
        switch (*t) {
        case T_E:
            if (used + CONDUIT__NOISE_DHLEN > outcap) {
                return fail(hs, -CONDUIT__NOISE_ESHORT);
            }
            if (hs->ready_e) {
                rc = 0;
            } else if (hs->fixed_e) {
                rc = conduit__noise_pubkey(hs->e, hs->e_pub);
            } else {
                rc = conduit__noise_keypair(hs->e, hs->e_pub);
            }
            if (rc < 0) {
                return fail(hs, rc);
            }
            hs->has_e = true;
            memcpy(out + used, hs->e_pub, CONDUIT__NOISE_DHLEN);
            mix_hash(&hs->ss, hs->e_pub, CONDUIT__NOISE_DHLEN);
            used += CONDUIT__NOISE_DHLEN;
            break;
        case T_S:
            if (!hs->has_s) {
                return fail(hs, -CONDUIT__NOISE_EINVAL);
            }
            if (used + CONDUIT__NOISE_DHLEN + CONDUIT__NOISE_TAGLEN > outcap) {
                return fail(hs, -CONDUIT__NOISE_ESHORT);
            }
            if ((rc = encrypt_and_hash(&hs->ss, hs->s_pub, CONDUIT__NOISE_DHLEN, out + used,
                                       &n)) < 0) {
                return fail(hs, rc);
            }
            used += n;
            break;
        default:
            if ((rc = token_dh(hs, *t)) < 0) {
                return fail(hs, rc);
            }
            break;
        }
    }
    if (plen > outcap - used ||
        (hs->ss.cs.has_key && plen + CONDUIT__NOISE_TAGLEN > outcap - used)) {
        return fail(hs, -CONDUIT__NOISE_ESHORT);
    }
    if ((rc = encrypt_and_hash(&hs->ss, payload, plen, out + used, &n)) < 0) {
        return fail(hs, rc);
    }
    *outlen = used + n;
    hs->msg++;
    return 0;
}

int conduit__noise_hs_read(struct conduit__noise_hs *hs, const uint8_t *msg, size_t len,
                           uint8_t *payload, size_t cap, size_t *plen)
{
    const enum token *t;
    size_t used = 0, n, need;
    int rc;

    *plen = 0;
    if (!conduit__noise_hs_active(hs) || conduit__noise_hs_my_turn(hs)) {
        return -CONDUIT__NOISE_ESTATE;
    }
    if (len > CONDUIT__NOISE_MSG_MAX) {
        return fail(hs, -CONDUIT__NOISE_ESHORT);
    }
    for (t = hs->pattern->msgs[hs->msg]; *t != T_END; t++) {
        switch (*t) {
        case T_E:
            if (len - used < CONDUIT__NOISE_DHLEN) {
                return fail(hs, -CONDUIT__NOISE_ESHORT);
            }
            memcpy(hs->re, msg + used, CONDUIT__NOISE_DHLEN); /* peer-controlled */
            hs->has_re = true;
            mix_hash(&hs->ss, hs->re, CONDUIT__NOISE_DHLEN);
            used += CONDUIT__NOISE_DHLEN;
            break;
        case T_S:
            need = CONDUIT__NOISE_DHLEN + (hs->ss.cs.has_key ? CONDUIT__NOISE_TAGLEN : 0);
            if (len - used < need) {
                return fail(hs, -CONDUIT__NOISE_ESHORT);
            }
            if ((rc = decrypt_and_hash(&hs->ss, msg + used, need, hs->rs, &n)) < 0) {
                return fail(hs, rc);
            }
            hs->has_rs = true;
            used += need;
            break;
        default:
            if ((rc = token_dh(hs, *t)) < 0) {
                return fail(hs, rc);
            }
            break;
        }
    }
    n = len - used;
    need = hs->ss.cs.has_key ? CONDUIT__NOISE_TAGLEN : 0;
    if (n < need || n - need > cap) {
        return fail(hs, -CONDUIT__NOISE_ESHORT);
    }
    if ((rc = decrypt_and_hash(&hs->ss, msg + used, n, payload, plen)) < 0) {
        return fail(hs, rc);
    }
    hs->msg++;
    return 0;
}

int conduit__noise_hs_split(struct conduit__noise_hs *hs, struct conduit__noise_cs *send,
                            struct conduit__noise_cs *recv)
{
    uint8_t k1[64], k2[64];
    struct conduit__noise_cs *c1, *c2;

    if (!hs->pattern || hs->failed || hs->msg != hs->pattern->nmsgs) {
        return -CONDUIT__NOISE_ESTATE;
    }
    hkdf(hs->ss.hash, hs->ss.ck, NULL, 0, k1, k2, NULL);
    /* c1 carries initiator -> responder, c2 the other way. */
    c1 = hs->initiator ? send : recv;
    c2 = hs->initiator ? recv : send;
    cs_init_key(c1, k1);
    if (hs->pattern->one_way) {
        cs_init_key(c2, NULL);
    } else {
        cs_init_key(c2, k2);
    }
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
    sodium_memzero(hs->ss.ck, sizeof(hs->ss.ck));
    conduit__noise_cs_wipe(&hs->ss.cs);
    sodium_memzero(hs->s, sizeof(hs->s));
    sodium_memzero(hs->e, sizeof(hs->e));
    hs->msg++; /* over: nothing more to write or read */
    return 0;
}

const uint8_t *conduit__noise_hs_hash(const struct conduit__noise_hs *hs, size_t *len)
{
    *len = hs->ss.hashlen;
    return hs->ss.h;
}

const uint8_t *conduit__noise_hs_remote_static(const struct conduit__noise_hs *hs)
{
    return hs->has_rs ? hs->rs : NULL;
}

void conduit__noise_hs_wipe(struct conduit__noise_hs *hs)
{
    sodium_memzero(hs, sizeof(*hs));
}
