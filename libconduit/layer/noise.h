/* SPDX-License-Identifier: ISC */
/*
 * The Noise Protocol Framework (revision 34, section 5): CipherState,
 * SymmetricState and HandshakeState on libsodium primitives only.
 *
 *   DH     X25519 (crypto_scalarmult); an all-zero shared secret is refused
 *   CIPHER ChaCha20-Poly1305 IETF, nonce = 4 zero bytes || 64-bit LE counter
 *   HASH   BLAKE2b-512 or SHA-256; HMAC over it with its block (128 / 64
 *          bytes), never BLAKE2b's keyed mode; HKDF as the spec defines it
 *
 * Handshake patterns are token lists (fundamental interactive ones: NN NK
 * NX KN KK KX XN XK XX IN IK IX; one-way: N K X), driven by one state
 * machine; the sodium layer uses Noise_XX_25519_ChaChaPoly_BLAKE2b. No PSK,
 * no deferred patterns, no rekey.
 *
 * Everything here is pure computation (no I/O, no allocation) and wipes its
 * secrets with sodium_memzero in the *_wipe functions and on every error.
 */
#ifndef CONDUIT_LAYER_NOISE_H
#define CONDUIT_LAYER_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONDUIT__NOISE_DHLEN 32
#define CONDUIT__NOISE_KEYLEN 32
#define CONDUIT__NOISE_TAGLEN 16
#define CONDUIT__NOISE_HASHLEN_MAX 64
#define CONDUIT__NOISE_MSG_MAX 65535 /* bytes of one Noise message */

enum conduit__noise_err {
    CONDUIT__NOISE_OK = 0,
    CONDUIT__NOISE_EINVAL,   /* bad argument or unknown protocol name */
    CONDUIT__NOISE_ESTATE,   /* not this side's turn, or the handshake is over */
    CONDUIT__NOISE_ESHORT,   /* a message too short, or too long for the buffer */
    CONDUIT__NOISE_EDECRYPT, /* authentication failed */
    CONDUIT__NOISE_EDH,      /* a DH result of all zeros (a low-order key) */
    CONDUIT__NOISE_ENONCE,   /* the nonce counter is used up */
    CONDUIT__NOISE_ECRYPTO,  /* libsodium could not start */
};

/* Text for one of the codes above (positive or negative). */
const char *conduit__noise_strerror(int err);

enum conduit__noise_hash { CONDUIT__NOISE_BLAKE2B, CONDUIT__NOISE_SHA256 };

struct conduit__noise_cs {
    uint8_t k[CONDUIT__NOISE_KEYLEN];
    bool has_key;
    uint64_t n;
};

struct conduit__noise_ss {
    enum conduit__noise_hash hash;
    size_t hashlen;
    struct conduit__noise_cs cs;
    uint8_t ck[CONDUIT__NOISE_HASHLEN_MAX];
    uint8_t h[CONDUIT__NOISE_HASHLEN_MAX];
};

struct conduit__noise_pattern;

struct conduit__noise_hs {
    struct conduit__noise_ss ss;
    const struct conduit__noise_pattern *pattern;
    bool initiator;
    unsigned msg;  /* index of the next handshake message */
    uint8_t s[CONDUIT__NOISE_DHLEN], s_pub[CONDUIT__NOISE_DHLEN];
    uint8_t e[CONDUIT__NOISE_DHLEN], e_pub[CONDUIT__NOISE_DHLEN];
    uint8_t rs[CONDUIT__NOISE_DHLEN], re[CONDUIT__NOISE_DHLEN];
    bool has_s, has_e, has_rs, has_re;
    bool fixed_e; /* e was given (test vectors), not generated */
    bool ready_e; /* e and e_pub were made ahead of their token */
    bool failed;  /* an error wiped the state: every later call fails */
};

/*
 * Start a handshake. `protocol` is a full name ("Noise_XX_25519_ChaChaPoly_
 * BLAKE2b"); s: our static private key (NULL if the pattern has none); rs:
 * the peer's static public key known beforehand (NULL unless the pattern
 * says so). Inputs are copied.
 */
int conduit__noise_hs_init(struct conduit__noise_hs *hs, const char *protocol, bool initiator,
                           const uint8_t *prologue, size_t prologue_len,
                           const uint8_t s[CONDUIT__NOISE_DHLEN],
                           const uint8_t rs[CONDUIT__NOISE_DHLEN]);
/* Use this ephemeral private key instead of a random one (test vectors only). */
void conduit__noise_hs_set_ephemeral(struct conduit__noise_hs *hs,
                                     const uint8_t e[CONDUIT__NOISE_DHLEN]);
/*
 * Make the ephemeral key pair now instead of when the "e" token is written:
 * a responder does it while the initiator's first message is on its way, so
 * the X25519 base multiplication is off the handshake's critical path. The
 * pair is as fresh as one made later (one per handshake); an error wipes.
 */
int conduit__noise_hs_make_ephemeral(struct conduit__noise_hs *hs);

/* True while handshake messages remain; my_turn: the next one is ours to write. */
bool conduit__noise_hs_active(const struct conduit__noise_hs *hs);
bool conduit__noise_hs_my_turn(const struct conduit__noise_hs *hs);

/*
 * Write the next handshake message with `payload` into out (at most
 * CONDUIT__NOISE_MSG_MAX bytes and outcap): 0 and *outlen. Read one: 0 and
 * its payload in `payload` (*plen). Any error wipes the state.
 */
int conduit__noise_hs_write(struct conduit__noise_hs *hs, const uint8_t *payload, size_t plen,
                            uint8_t *out, size_t outcap, size_t *outlen);
int conduit__noise_hs_read(struct conduit__noise_hs *hs, const uint8_t *msg, size_t len,
                           uint8_t *payload, size_t cap, size_t *plen);

/*
 * After the last message: the two transport ciphers, ours to send and to
 * receive (one-way patterns: the responder's send and the initiator's
 * receive have no key). Wipes the chaining key; the hash stays readable.
 */
int conduit__noise_hs_split(struct conduit__noise_hs *hs, struct conduit__noise_cs *send,
                            struct conduit__noise_cs *recv);
/* The handshake hash (h): hashlen bytes. */
const uint8_t *conduit__noise_hs_hash(const struct conduit__noise_hs *hs, size_t *len);
/* The peer's static public key, NULL before it is known. */
const uint8_t *conduit__noise_hs_remote_static(const struct conduit__noise_hs *hs);
void conduit__noise_hs_wipe(struct conduit__noise_hs *hs);

/*
 * Transport messages: out gets len + CONDUIT__NOISE_TAGLEN bytes (encrypt)
 * or len - CONDUIT__NOISE_TAGLEN (decrypt; out may be `in`). A failed
 * decryption leaves the counter as it was and writes nothing to out... of
 * use: the caller must drop the connection. ENONCE once the counter would
 * reach 2^64-1, the value the spec reserves.
 */
int conduit__noise_encrypt(struct conduit__noise_cs *cs, const uint8_t *ad, size_t adlen,
                           const uint8_t *in, size_t len, uint8_t *out);
int conduit__noise_decrypt(struct conduit__noise_cs *cs, const uint8_t *ad, size_t adlen,
                           const uint8_t *in, size_t len, uint8_t *out);
/* Test hook: start the counter at n (the nonce-exhaustion test). */
void conduit__noise_cs_set_nonce(struct conduit__noise_cs *cs, uint64_t n);
void conduit__noise_cs_wipe(struct conduit__noise_cs *cs);

/* X25519: a new key pair (pub from priv), or the public key of a private one. */
int conduit__noise_keypair(uint8_t priv[CONDUIT__NOISE_DHLEN], uint8_t pub[CONDUIT__NOISE_DHLEN]);
int conduit__noise_pubkey(const uint8_t priv[CONDUIT__NOISE_DHLEN],
                          uint8_t pub[CONDUIT__NOISE_DHLEN]);

#endif
