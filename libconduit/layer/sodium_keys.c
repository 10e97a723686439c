/* SPDX-License-Identifier: ISC */
/* Key text and key files of the sodium layer (sodium_keys.h). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "libconduit/layer/noise.h"
#include "libconduit/layer/sodium_keys.h"

/* A key file is one line; a peers file is read in lines of at most this. */
#define LINE_MAX_LEN 512

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int conduit__key_decode(const char *text, size_t len, uint8_t key[CONDUIT__KEY_LEN])
{
    size_t got = 0;

    while (len > 0 && blank(text[0])) {
        text++;
        len--;
    }
    while (len > 0 && blank(text[len - 1])) {
        len--;
    }
    if (len != CONDUIT__KEY_B64_LEN || sodium_init() < 0 ||
        sodium_base642bin(key, CONDUIT__KEY_LEN, text, len, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != CONDUIT__KEY_LEN) {
        sodium_memzero(key, CONDUIT__KEY_LEN);
        return -CONDUIT_EINVAL;
    }
    return 0;
}

void conduit__key_encode(const uint8_t key[CONDUIT__KEY_LEN], char out[CONDUIT__KEY_B64_LEN + 1])
{
    sodium_bin2base64(out, CONDUIT__KEY_B64_LEN + 1, key, CONDUIT__KEY_LEN,
                      sodium_base64_VARIANT_ORIGINAL);
}

static int open_error(struct conduit__err *e, const char *what, const char *path)
{
    int code = errno == ENOENT ? CONDUIT_ENOENT : errno == EACCES ? CONDUIT_EPERM : CONDUIT_EIO;

    return conduit__errorf(e, code, "cannot open %s '%s': %s", what, path, strerror(errno));
}

int conduit__key_load_private(struct conduit__err *e, const char *path,
                              uint8_t key[CONDUIT__KEY_LEN])
{
    char buf[LINE_MAX_LEN];
    struct stat st;
    ssize_t n;
    size_t len = 0;
    int fd, rc = 0;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        return open_error(e, "key file", path);
    }
    if (fstat(fd, &st) < 0) {
        rc = conduit__errorf(e, CONDUIT_EIO, "key file '%s': %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = conduit__errorf(e, CONDUIT_EOPTION, "key file '%s' is not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        rc = conduit__errorf(e, CONDUIT_EPERM,
                             "key file '%s' is accessible by group or others (mode %03o): "
                             "chmod 600 it",
                             path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    while (len < sizeof(buf)) {
        n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = conduit__errorf(e, CONDUIT_EIO, "cannot read key file '%s': %s", path,
                                 strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    if (len == sizeof(buf) || conduit__key_decode(buf, len, key) < 0) {
        rc = conduit__errorf(e, CONDUIT_EOPTION,
                             "key file '%s' does not hold one base64 X25519 key (44 characters)",
                             path);
    }
out:
    sodium_memzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

int conduit__key_in_file(struct conduit__err *e, const char *path,
                         const uint8_t key[CONDUIT__KEY_LEN])
{
    char line[LINE_MAX_LEN];
    uint8_t k[CONDUIT__KEY_LEN];
    unsigned lineno = 0;
    int found = 0;
    FILE *f;

    if (!(f = fopen(path, "re"))) {
        return open_error(e, "peers file", path);
    }
    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        char *hash;

        lineno++;
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            fclose(f);
            return conduit__errorf(e, CONDUIT_EOPTION, "peers file '%s' line %u is too long",
                                   path, lineno);
        }
        if ((hash = strchr(line, '#'))) {
            *hash = '\0';
            len = (size_t)(hash - line);
        }
        while (len > 0 && blank(line[len - 1])) {
            len--;
        }
        if (strspn(line, " \t") == len) {
            continue;
        }
        if (conduit__key_decode(line, len, k) < 0) {
            fclose(f);
            return conduit__errorf(e, CONDUIT_EOPTION,
                                   "peers file '%s' line %u is not a base64 X25519 key", path,
                                   lineno);
        }
        /* Every line is looked at, so a bad line is reported whatever matched before it. */
        if (sodium_memcmp(k, key, CONDUIT__KEY_LEN) == 0) {
            found = 1;
        }
    }
    if (ferror(f)) {
        fclose(f);
        return conduit__errorf(e, CONDUIT_EIO, "cannot read peers file '%s'", path);
    }
    fclose(f);
    return found;
}

int conduit__key_generate(struct conduit__err *e, const char *path,
                          char pub[CONDUIT__KEY_B64_LEN + 1])
{
    uint8_t priv[CONDUIT__KEY_LEN], pubkey[CONDUIT__KEY_LEN];
    char text[CONDUIT__KEY_B64_LEN + 2];
    size_t off = 0;
    int fd, rc = 0;

    if (conduit__noise_keypair(priv, pubkey) != 0) {
        return conduit__errorf(e, CONDUIT_EIO, "cannot make a key pair (libsodium)");
    }
    conduit__key_encode(priv, text);
    sodium_memzero(priv, sizeof(priv));
    text[CONDUIT__KEY_B64_LEN] = '\n';
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        rc = errno == EEXIST
                 ? conduit__errorf(e, CONDUIT_EPERM, "key file '%s' exists: not replacing it", path)
                 : open_error(e, "key file", path);
        goto out;
    }
    while (off < CONDUIT__KEY_B64_LEN + 1) {
        ssize_t n = write(fd, text + off, CONDUIT__KEY_B64_LEN + 1 - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = conduit__errorf(e, CONDUIT_EIO, "cannot write key file '%s': %s", path,
                                 n < 0 ? strerror(errno) : "short write");
            break;
        }
        off += (size_t)n;
    }
    if (rc == 0 && (fchmod(fd, 0600) < 0 || fsync(fd) < 0)) {
        rc = conduit__errorf(e, CONDUIT_EIO, "cannot write key file '%s': %s", path,
                             strerror(errno));
    }
    close(fd);
    if (rc < 0) {
        unlink(path);
        goto out;
    }
    conduit__key_encode(pubkey, pub);
out:
    sodium_memzero(text, sizeof(text));
    return rc;
}

int conduit__key_public_of(struct conduit__err *e, const char *path,
                           char pub[CONDUIT__KEY_B64_LEN + 1])
{
    uint8_t priv[CONDUIT__KEY_LEN], pubkey[CONDUIT__KEY_LEN];
    int rc = conduit__key_load_private(e, path, priv);

    if (rc == 0 && conduit__noise_pubkey(priv, pubkey) != 0) {
        rc = conduit__errorf(e, CONDUIT_EOPTION, "key file '%s': not a usable X25519 key", path);
    }
    sodium_memzero(priv, sizeof(priv));
    if (rc == 0) {
        conduit__key_encode(pubkey, pub);
    }
    return rc;
}
