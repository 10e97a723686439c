/* SPDX-License-Identifier: ISC */
/*
 * The Noise state machine (libconduit/layer/noise.c) against the public
 * cacophony test vectors (../shared/noise-vectors, PROVENANCE.md there):
 * every vector whose protocol noise.c implements is replayed with its keys,
 * prologue and payloads, and every handshake and transport ciphertext and
 * the handshake hash are compared byte for byte.
 *
 * The file: $NOISE_VECTORS, else cacophony.txt (or the derived subset) in
 * noise-vectors beside the source tree (CI: $(top_srcdir)/../shared) or
 * one level higher (a worktree under wt/). Absent: the program exits 77.
 */
#include <ctype.h>
#include <sodium.h>

#include <sys/stat.h>

#include "libconduit/layer/noise.h"
#include "libconduit/layer/sodium_keys.h"
#include "unit.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

static char vectors_path[4096];

/* ------------------------------------------------------------ a small JSON reader */

enum jtype { J_STR, J_ARR, J_OBJ, J_OTHER };

struct jnode {
    enum jtype type;
    char *key;  /* member name inside an object */
    char *str;  /* J_STR */
    struct jnode *kids;
    size_t nkids;
};

struct jparse {
    const char *p, *end;
    bool bad;
};

static void skip_ws(struct jparse *j)
{
    while (j->p < j->end && isspace((unsigned char)*j->p)) {
        j->p++;
    }
}

static char *parse_string(struct jparse *j)
{
    const char *start;
    char *s;

    if (j->p >= j->end || *j->p != '"') {
        j->bad = true;
        return NULL;
    }
    start = ++j->p;
    /* The vectors hold hex and plain names: no escapes are needed. */
    while (j->p < j->end && *j->p != '"') {
        if (*j->p == '\\') {
            j->bad = true;
            return NULL;
        }
        j->p++;
    }
    if (j->p >= j->end) {
        j->bad = true;
        return NULL;
    }
    s = strndup(start, (size_t)(j->p - start));
    j->p++;
    return s;
}

static void parse_value(struct jparse *j, struct jnode *n);

static void add_kid(struct jparse *j, struct jnode *n, char *key)
{
    struct jnode *k;

    n->kids = realloc(n->kids, (n->nkids + 1) * sizeof(*n->kids));
    k = &n->kids[n->nkids++];
    memset(k, 0, sizeof(*k));
    k->key = key;
    parse_value(j, k);
}

static void parse_value(struct jparse *j, struct jnode *n)
{
    skip_ws(j);
    if (j->p >= j->end) {
        j->bad = true;
        return;
    }
    if (*j->p == '"') {
        n->type = J_STR;
        n->str = parse_string(j);
    } else if (*j->p == '[' || *j->p == '{') {
        bool obj = *j->p == '{';
        char close = obj ? '}' : ']';

        n->type = obj ? J_OBJ : J_ARR;
        j->p++;
        skip_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return;
        }
        while (!j->bad) {
            char *key = NULL;

            skip_ws(j);
            if (obj) {
                key = parse_string(j);
                skip_ws(j);
                if (j->bad || j->p >= j->end || *j->p != ':') {
                    free(key);
                    j->bad = true;
                    return;
                }
                j->p++;
            }
            add_kid(j, n, key);
            skip_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
            } else if (j->p < j->end && *j->p == close) {
                j->p++;
                return;
            } else {
                j->bad = true;
            }
        }
    } else {
        n->type = J_OTHER; /* numbers, true, false, null */
        while (j->p < j->end && (isalnum((unsigned char)*j->p) || *j->p == '-' || *j->p == '.' ||
                                 *j->p == '+')) {
            j->p++;
        }
    }
}

static void jfree(struct jnode *n)
{
    size_t i;

    for (i = 0; i < n->nkids; i++) {
        jfree(&n->kids[i]);
    }
    free(n->kids);
    free(n->key);
    free(n->str);
}

static const struct jnode *jget(const struct jnode *obj, const char *key)
{
    size_t i;

    for (i = 0; obj && obj->type == J_OBJ && i < obj->nkids; i++) {
        if (obj->kids[i].key && strcmp(obj->kids[i].key, key) == 0) {
            return &obj->kids[i];
        }
    }
    return NULL;
}

/* A hex member into buf: its length, or -1 if absent or not hex. */
static long jhex(const struct jnode *obj, const char *key, uint8_t *buf, size_t cap)
{
    const struct jnode *n = jget(obj, key);
    size_t len = 0;

    if (!n || n->type != J_STR ||
        sodium_hex2bin(buf, cap, n->str, strlen(n->str), NULL, &len, NULL) != 0) {
        return -1;
    }
    return (long)len;
}

/* ------------------------------------------------------------ replay */

struct counts {
    unsigned run, skipped, failed, xx_blake2b;
};

static bool replay(const struct jnode *v, struct counts *c)
{
    static uint8_t buf[70000], out[70000], pl[70000], ct[70000];
    const struct jnode *name = jget(v, "protocol_name"), *msgs = jget(v, "messages");
    uint8_t ipro[1024], rpro[1024], is[32], ie[32], irs[32], rs_[32], re[32], rrs[32], hh[64];
    long liprol, lrprol, lis, lie, lirs, lrs, lre, lrrs, lhh, lp, lc;
    struct conduit__noise_hs ini, res;
    struct conduit__noise_cs isend, irecv, rsend, rrecv;
    size_t i, n, m, hl;
    const uint8_t *h;
    bool ok = true;

    if (!name || name->type != J_STR || !msgs || msgs->type != J_ARR) {
        return false;
    }
    liprol = jhex(v, "init_prologue", ipro, sizeof(ipro));
    lrprol = jhex(v, "resp_prologue", rpro, sizeof(rpro));
    lis = jhex(v, "init_static", is, 32);
    lie = jhex(v, "init_ephemeral", ie, 32);
    lirs = jhex(v, "init_remote_static", irs, 32);
    lrs = jhex(v, "resp_static", rs_, 32);
    lre = jhex(v, "resp_ephemeral", re, 32);
    lrrs = jhex(v, "resp_remote_static", rrs, 32);
    lhh = jhex(v, "handshake_hash", hh, 64);
    if (jget(v, "init_psks") || jget(v, "resp_psks") || jget(v, "init_psk") ||
        conduit__noise_hs_init(&ini, name->str, true, ipro, liprol < 0 ? 0 : (size_t)liprol,
                               lis == 32 ? is : NULL, lirs == 32 ? irs : NULL) < 0) {
        c->skipped++;
        return true;
    }
    if (liprol < 0 || lrprol < 0 || lie != 32 || lhh < 0) {
        fprintf(stderr, "%s: a field is missing or malformed\n", name->str);
        conduit__noise_hs_wipe(&ini);
        return false;
    }
    if (conduit__noise_hs_init(&res, name->str, false, rpro, (size_t)lrprol,
                               lrs == 32 ? rs_ : NULL, lrrs == 32 ? rrs : NULL) < 0) {
        fprintf(stderr, "%s: responder init failed\n", name->str);
        return false;
    }
    conduit__noise_hs_set_ephemeral(&ini, ie);
    if (lre == 32) {
        conduit__noise_hs_set_ephemeral(&res, re);
    }
    c->run++;
    if (strcmp(name->str, "Noise_XX_25519_ChaChaPoly_BLAKE2b") == 0) {
        c->xx_blake2b++;
    }
    for (i = 0; ok && i < msgs->nkids; i++) {
        const struct jnode *msg = &msgs->kids[i];
        bool from_ini;
        int rc;

        lp = jhex(msg, "payload", pl, sizeof(pl));
        lc = jhex(msg, "ciphertext", ct, sizeof(ct));
        if (lp < 0 || lc < 0) {
            fprintf(stderr, "%s: message %zu malformed\n", name->str, i);
            ok = false;
            break;
        }
        if (conduit__noise_hs_active(&ini)) {
            struct conduit__noise_hs *w = conduit__noise_hs_my_turn(&ini) ? &ini : &res;
            struct conduit__noise_hs *r = w == &ini ? &res : &ini;

            rc = conduit__noise_hs_write(w, pl, (size_t)lp, out, sizeof(out), &n);
            ok = rc == 0 && n == (size_t)lc && memcmp(out, ct, n) == 0;
            ok = ok && conduit__noise_hs_read(r, out, n, buf, sizeof(buf), &m) == 0 &&
                 m == (size_t)lp && memcmp(buf, pl, m) == 0;
            if (ok && !conduit__noise_hs_active(&ini)) {
                ok = !conduit__noise_hs_active(&res) &&
                     conduit__noise_hs_split(&ini, &isend, &irecv) == 0 &&
                     conduit__noise_hs_split(&res, &rsend, &rrecv) == 0;
                if (!ok) {
                    fprintf(stderr, "%s: split failed\n", name->str);
                    break;
                }
                h = conduit__noise_hs_hash(&ini, &hl);
                ok = hl == (size_t)lhh && memcmp(h, hh, hl) == 0;
                h = conduit__noise_hs_hash(&res, &hl);
                ok = ok && hl == (size_t)lhh && memcmp(h, hh, hl) == 0;
                if (!ok) {
                    fprintf(stderr, "%s: handshake hash differs\n", name->str);
                }
                continue;
            }
            if (!ok) {
                fprintf(stderr, "%s: handshake message %zu differs\n", name->str, i);
            }
            continue;
        }
        /* Transport: alternating by index, except one-way patterns (initiator only). */
        from_ini = !rsend.has_key || i % 2 == 0;
        rc = conduit__noise_encrypt(from_ini ? &isend : &rsend, NULL, 0, pl, (size_t)lp, out);
        ok = rc == 0 && (size_t)lp + CONDUIT__NOISE_TAGLEN == (size_t)lc &&
             memcmp(out, ct, (size_t)lc) == 0;
        ok = ok && conduit__noise_decrypt(from_ini ? &rrecv : &irecv, NULL, 0, out, (size_t)lc,
                                          buf) == 0 &&
             memcmp(buf, pl, (size_t)lp) == 0;
        if (!ok) {
            fprintf(stderr, "%s: transport message %zu differs\n", name->str, i);
        }
    }
    if (conduit__noise_hs_active(&ini)) {
        fprintf(stderr, "%s: the vector ended inside the handshake\n", name->str);
        ok = false;
    }
    conduit__noise_hs_wipe(&ini);
    conduit__noise_hs_wipe(&res);
    conduit__noise_cs_wipe(&isend);
    conduit__noise_cs_wipe(&irecv);
    conduit__noise_cs_wipe(&rsend);
    conduit__noise_cs_wipe(&rrecv);
    if (!ok) {
        c->failed++;
    }
    return ok;
}

static void test_noise_vectors(void)
{
    struct jnode root = {0};
    const struct jnode *vecs;
    struct counts c = {0};
    struct jparse j;
    char *text;
    long size;
    FILE *f;
    size_t i;

    f = fopen(vectors_path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    text = malloc((size_t)size + 1);
    CU_ASSERT_FATAL(text && fread(text, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    j.p = text;
    j.end = text + size;
    j.bad = false;
    parse_value(&j, &root);
    CU_ASSERT(!j.bad);
    vecs = jget(&root, "vectors");
    CU_ASSERT_FATAL(vecs && vecs->type == J_ARR);
    for (i = 0; i < vecs->nkids; i++) {
        if (!replay(&vecs->kids[i], &c)) {
            CU_FAIL("a vector failed (see stderr)");
        }
    }
    printf("\n  %s: %u vectors replayed, %u failed, %u not implemented here (psk, deferred, "
           "other suites)\n",
           vectors_path, c.run, c.failed, c.skipped);
    CU_ASSERT_EQUAL(c.failed, 0);
    /* Both hashes of every fundamental pattern: 15 x 2 at least. */
    CU_ASSERT(c.run >= 30);
    CU_ASSERT_EQUAL(c.xx_blake2b, 1);
    jfree(&root);
    free(text);
}

/* ------------------------------------------------------------ properties */

static void xx_pair(struct conduit__noise_hs *i, struct conduit__noise_hs *r, uint8_t *ipub,
                    uint8_t *rpub)
{
    uint8_t is[32], rs[32];

    CU_ASSERT_EQUAL(conduit__noise_keypair(is, ipub), 0);
    CU_ASSERT_EQUAL(conduit__noise_keypair(rs, rpub), 0);
    CU_ASSERT_EQUAL(conduit__noise_hs_init(i, "Noise_XX_25519_ChaChaPoly_BLAKE2b", true,
                                           (const uint8_t *)"p", 1, is, NULL), 0);
    CU_ASSERT_EQUAL(conduit__noise_hs_init(r, "Noise_XX_25519_ChaChaPoly_BLAKE2b", false,
                                           (const uint8_t *)"p", 1, rs, NULL), 0);
    sodium_memzero(is, sizeof(is));
    sodium_memzero(rs, sizeof(rs));
}

/* Wipe a run's two handshake states and four cipher states. */
static void wipe_run(struct conduit__noise_hs *i, struct conduit__noise_hs *r,
                     struct conduit__noise_cs *cs[4])
{
    for (int k = 0; k < 4; k++) {
        conduit__noise_cs_wipe(cs[k]);
    }
    conduit__noise_hs_wipe(i);
    conduit__noise_hs_wipe(r);
}

/* A full XX run: each side learns the other's static key; then the nonce edge. */
static void test_noise_xx_nonce_limit(void)
{
    struct conduit__noise_hs i, r;
    struct conduit__noise_cs is, ir, rs, rr;
    uint8_t ipub[32], rpub[32], msg[256], pl[256], ct[64], pt[64];
    size_t n, m;
    int k;

    xx_pair(&i, &r, ipub, rpub);
    for (k = 0; k < 3; k++) {
        struct conduit__noise_hs *w = k % 2 == 0 ? &i : &r, *rd = k % 2 == 0 ? &r : &i;

        CU_ASSERT_EQUAL(conduit__noise_hs_write(w, NULL, 0, msg, sizeof(msg), &n), 0);
        CU_ASSERT_EQUAL(conduit__noise_hs_read(rd, msg, n, pl, sizeof(pl), &m), 0);
    }
    CU_ASSERT(memcmp(conduit__noise_hs_remote_static(&i), rpub, 32) == 0);
    CU_ASSERT(memcmp(conduit__noise_hs_remote_static(&r), ipub, 32) == 0);
    CU_ASSERT_EQUAL(conduit__noise_hs_split(&i, &is, &ir), 0);
    CU_ASSERT_EQUAL(conduit__noise_hs_split(&r, &rs, &rr), 0);
    CU_ASSERT_EQUAL(conduit__noise_hs_split(&r, &rs, &rr), -CONDUIT__NOISE_ESTATE);

    conduit__noise_cs_set_nonce(&is, UINT64_MAX - 1);
    conduit__noise_cs_set_nonce(&rr, UINT64_MAX - 1);
    CU_ASSERT_EQUAL(conduit__noise_encrypt(&is, NULL, 0, (const uint8_t *)"abc", 3, ct), 0);
    CU_ASSERT_EQUAL(conduit__noise_decrypt(&rr, NULL, 0, ct, 3 + 16, pt), 0);
    CU_ASSERT(memcmp(pt, "abc", 3) == 0);
    /* 2^64-1 is reserved: no more messages either way. */
    CU_ASSERT_EQUAL(conduit__noise_encrypt(&is, NULL, 0, (const uint8_t *)"abc", 3, ct),
                    -CONDUIT__NOISE_ENONCE);
    CU_ASSERT_EQUAL(conduit__noise_decrypt(&rr, NULL, 0, ct, 3 + 16, pt), -CONDUIT__NOISE_ENONCE);

    /* A flipped byte fails, the counter stays, the genuine message still opens. */
    CU_ASSERT_EQUAL(conduit__noise_encrypt(&rs, NULL, 0, (const uint8_t *)"xyz", 3, ct), 0);
    ct[1] ^= 1;
    CU_ASSERT_EQUAL(conduit__noise_decrypt(&ir, NULL, 0, ct, 19, pt), -CONDUIT__NOISE_EDECRYPT);
    ct[1] ^= 1;
    CU_ASSERT_EQUAL(conduit__noise_decrypt(&ir, NULL, 0, ct, 19, pt), 0);
    /* Replayed: the counter moved on, so it no longer opens. */
    CU_ASSERT_EQUAL(conduit__noise_decrypt(&ir, NULL, 0, ct, 19, pt), -CONDUIT__NOISE_EDECRYPT);
    wipe_run(&i, &r, (struct conduit__noise_cs *[]){&is, &ir, &rs, &rr});
}

/*
 * The responder's ephemeral pair made ahead (sodium.c does it at accept): the
 * same pair goes out in message 2, a second one is refused, the handshake
 * completes and its transport keys work; a fixed (test vector) key is not
 * replaced.
 */
static void test_noise_ephemeral_ahead(void)
{
    struct conduit__noise_hs i, r;
    struct conduit__noise_cs is, ir, rs, rr;
    uint8_t ipub[32], rpub[32], epub[32], msg[256], pl[256], ct[64], pt[64];
    size_t n = 0, m;
    int k;

    xx_pair(&i, &r, ipub, rpub);
    CU_ASSERT_EQUAL_FATAL(conduit__noise_hs_make_ephemeral(&r), 0);
    memcpy(epub, r.e_pub, sizeof(epub));
    CU_ASSERT_EQUAL(conduit__noise_hs_make_ephemeral(&r), -CONDUIT__NOISE_ESTATE);
    for (k = 0; k < 3; k++) {
        struct conduit__noise_hs *w = k % 2 == 0 ? &i : &r, *rd = k % 2 == 0 ? &r : &i;

        CU_ASSERT_EQUAL(conduit__noise_hs_write(w, NULL, 0, msg, sizeof(msg), &n), 0);
        if (k == 1) {
            CU_ASSERT(memcmp(msg, epub, sizeof(epub)) == 0); /* "e" comes first */
        }
        CU_ASSERT_EQUAL(conduit__noise_hs_read(rd, msg, n, pl, sizeof(pl), &m), 0);
    }
    CU_ASSERT_EQUAL(conduit__noise_hs_split(&i, &is, &ir), 0);
    CU_ASSERT_EQUAL(conduit__noise_hs_split(&r, &rs, &rr), 0);
    CU_ASSERT_EQUAL(conduit__noise_encrypt(&is, NULL, 0, (const uint8_t *)"abc", 3, ct), 0);
    CU_ASSERT_EQUAL(conduit__noise_decrypt(&rr, NULL, 0, ct, 3 + 16, pt), 0);
    CU_ASSERT(memcmp(pt, "abc", 3) == 0);
    wipe_run(&i, &r, (struct conduit__noise_cs *[]){&is, &ir, &rs, &rr});

    xx_pair(&i, &r, ipub, rpub);
    memset(epub, 7, sizeof(epub));
    conduit__noise_hs_set_ephemeral(&r, epub);
    CU_ASSERT_EQUAL(conduit__noise_hs_make_ephemeral(&r), -CONDUIT__NOISE_ESTATE);
    conduit__noise_hs_wipe(&i);
    conduit__noise_hs_wipe(&r);
}

/* A low-order ephemeral key (all zeros) from the peer: refused, state wiped. */
static void test_noise_zero_dh_refused(void)
{
    struct conduit__noise_hs i, r;
    uint8_t ipub[32], rpub[32], msg[256], pl[256];
    size_t n, m;

    xx_pair(&i, &r, ipub, rpub);
    CU_ASSERT_EQUAL(conduit__noise_hs_write(&i, NULL, 0, msg, sizeof(msg), &n), 0);
    CU_ASSERT_EQUAL(conduit__noise_hs_read(&r, msg, n, pl, sizeof(pl), &m), 0);
    CU_ASSERT_EQUAL(conduit__noise_hs_write(&r, NULL, 0, msg, sizeof(msg), &n), 0);
    memset(msg, 0, 32); /* the responder's e */
    CU_ASSERT_EQUAL(conduit__noise_hs_read(&i, msg, n, pl, sizeof(pl), &m), -CONDUIT__NOISE_EDH);
    CU_ASSERT(!conduit__noise_hs_active(&i));
    CU_ASSERT_EQUAL(conduit__noise_hs_write(&i, NULL, 0, msg, sizeof(msg), &n),
                    -CONDUIT__NOISE_ESTATE);
    /* Short and out-of-turn messages. */
    CU_ASSERT_EQUAL(conduit__noise_hs_write(&r, NULL, 0, msg, sizeof(msg), &n),
                    -CONDUIT__NOISE_ESTATE);
    CU_ASSERT_EQUAL(conduit__noise_hs_read(&r, msg, 10, pl, sizeof(pl), &m), -CONDUIT__NOISE_ESHORT);
    conduit__noise_hs_wipe(&i);
    conduit__noise_hs_wipe(&r);
    xx_pair(&i, &r, ipub, rpub);
    CU_ASSERT_EQUAL(conduit__noise_hs_read(&r, msg, 31, pl, sizeof(pl), &m), -CONDUIT__NOISE_ESHORT);
    CU_ASSERT_EQUAL(conduit__noise_hs_init(&i, "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b", true, NULL,
                                           0, NULL, NULL), -CONDUIT__NOISE_EINVAL);
    conduit__noise_hs_wipe(&i);
    conduit__noise_hs_wipe(&r);
}

/* ------------------------------------------------------------ key text and files */

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    CU_ASSERT_EQUAL(chmod(path, mode), 0);
}

static void test_noise_key_text(void)
{
    /* RFC 7748's Alice: private 77076d0a..., public 8520f009... */
    static const char priv_b64[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
    static const char pub_b64[] = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
    uint8_t priv[32], pub[32], k[32];
    char out[45];

    CU_ASSERT_EQUAL(conduit__key_decode(priv_b64, strlen(priv_b64), priv), 0);
    CU_ASSERT_EQUAL(priv[0], 0x77);
    CU_ASSERT_EQUAL(conduit__noise_pubkey(priv, pub), 0);
    conduit__key_encode(pub, out);
    CU_ASSERT_STRING_EQUAL(out, pub_b64);
    CU_ASSERT_EQUAL(conduit__key_decode(" \t" "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n", 47, k), 0);
    CU_ASSERT(memcmp(k, pub, 32) == 0);
    /* Wrong length, wrong alphabet (URL-safe), missing padding, garbage. */
    CU_ASSERT_EQUAL(conduit__key_decode(pub_b64, 43, k), -CONDUIT_EINVAL);
    CU_ASSERT_EQUAL(conduit__key_decode("hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo=", 44, k),
                    -CONDUIT_EINVAL);
    CU_ASSERT_EQUAL(conduit__key_decode("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmoA", 44, k),
                    -CONDUIT_EINVAL);
    CU_ASSERT_EQUAL(conduit__key_decode("", 0, k), -CONDUIT_EINVAL);
}

static void test_noise_key_files(void)
{
    static const char priv_b64[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n";
    struct conduit__err e = {.name = "test"};
    char dir[] = "/tmp/test_noise.XXXXXX", path[64], peers[64];
    uint8_t key[32], pub[32];

    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/key", dir);
    snprintf(peers, sizeof(peers), "%s/peers", dir);
    write_file(path, priv_b64, 0600);
    CU_ASSERT_EQUAL(conduit__key_load_private(&e, path, key), 0);
    CU_ASSERT_EQUAL(key[0], 0x77);
    CU_ASSERT_EQUAL(chmod(path, 0640), 0);
    CU_ASSERT_EQUAL(conduit__key_load_private(&e, path, key), -CONDUIT_EPERM);
    CU_ASSERT(strstr(e.msg, "group or others") != NULL);
    CU_ASSERT_EQUAL(chmod(path, 0604), 0);
    CU_ASSERT_EQUAL(conduit__key_load_private(&e, path, key), -CONDUIT_EPERM);
    write_file(path, "not a key\n", 0600);
    CU_ASSERT_EQUAL(conduit__key_load_private(&e, path, key), -CONDUIT_EOPTION);
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(conduit__key_load_private(&e, path, key), -CONDUIT_ENOENT);

    CU_ASSERT_EQUAL(conduit__key_decode("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=", 44, pub), 0);
    write_file(peers,
               "# allowed\n\n  de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f\n",
               0644);
    CU_ASSERT_EQUAL(conduit__key_in_file(&e, peers, pub), -CONDUIT_EOPTION);
    CU_ASSERT(strstr(e.msg, "line 3") != NULL);
    write_file(peers,
               "# allowed\n\n3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08= # bob\n", 0644);
    CU_ASSERT_EQUAL(conduit__key_in_file(&e, peers, pub), 0);
    write_file(peers, "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=\n"
                      "  hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=  # alice\n", 0644);
    CU_ASSERT_EQUAL(conduit__key_in_file(&e, peers, pub), 1);
    CU_ASSERT_EQUAL(unlink(peers), 0);
    CU_ASSERT_EQUAL(conduit__key_in_file(&e, peers, pub), -CONDUIT_ENOENT);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
    sodium_memzero(key, sizeof(key));
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_noise_key_text),
    UNIT_TEST(test_noise_key_files),
    UNIT_TEST(test_noise_vectors),
    UNIT_TEST(test_noise_xx_nonce_limit),
    UNIT_TEST(test_noise_ephemeral_ahead),
    UNIT_TEST(test_noise_zero_dh_refused),
};

static bool try_path(const char *dir)
{
    static const char *names[] = {"cacophony.txt", "cacophony-25519-chachapoly.json"};
    size_t k;

    for (k = 0; k < 2; k++) {
        snprintf(vectors_path, sizeof(vectors_path), "%s/%s", dir, names[k]);
        if (access(vectors_path, R_OK) == 0) {
            return true;
        }
    }
    return false;
}

int main(int argc, char **argv)
{
    const char *env = getenv("NOISE_VECTORS");

    if (env && env[0]) {
        snprintf(vectors_path, sizeof(vectors_path), "%s", env);
        if (access(vectors_path, R_OK) != 0) {
            fprintf(stderr, "test_noise: NOISE_VECTORS=%s cannot be read\n", env);
            return 1;
        }
    } else if (!try_path(TOP_SRCDIR "/../shared/noise-vectors") &&
               !try_path(TOP_SRCDIR "/../../shared/noise-vectors")) {
        fprintf(stderr, "test_noise: SKIP: no noise-vectors beside %s (set NOISE_VECTORS)\n",
                TOP_SRCDIR);
        return 77;
    }
    return unit_run("noise", tests, UNIT_ARRAY_LEN(tests), argc, argv);
}
