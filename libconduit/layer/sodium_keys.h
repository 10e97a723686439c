/* SPDX-License-Identifier: ISC */
/*
 * Keys of the sodium layer: X25519 keys as WireGuard writes them, 32 bytes
 * in standard base64 (44 characters, "=" padded), one per line. A private
 * key file must not be readable by group or others (as ssh insists); a
 * peers file lists allowed public keys, one a line, "#" starting a comment.
 */
#ifndef CONDUIT_LAYER_SODIUM_KEYS_H
#define CONDUIT_LAYER_SODIUM_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libconduit/internal/internal.h"

#define CONDUIT__KEY_LEN 32
#define CONDUIT__KEY_B64_LEN 44 /* without the NUL */

/* Decode a key (surrounding blanks allowed): 0, or -CONDUIT_EINVAL. */
int conduit__key_decode(const char *text, size_t len, uint8_t key[CONDUIT__KEY_LEN]);
/* Encode a key: 44 characters and a NUL. */
void conduit__key_encode(const uint8_t key[CONDUIT__KEY_LEN], char out[CONDUIT__KEY_B64_LEN + 1]);
/*
 * Load our private key from `path`: 0, or EPERM (group/world access), ENOENT,
 * EIO, EOPTION (not a key), each with a message naming the file.
 */
int conduit__key_load_private(struct conduit__err *e, const char *path,
                              uint8_t key[CONDUIT__KEY_LEN]);
/*
 * Is `key` listed in the peers file at `path`? 1 yes, 0 no, or an error
 * (ENOENT, EIO, EOPTION naming the line that is not a key).
 */
int conduit__key_in_file(struct conduit__err *e, const char *path,
                         const uint8_t key[CONDUIT__KEY_LEN]);

/*
 * Write a new private key to `path` (mode 0600, never over an existing
 * file: EPERM) and give its public key's text; or give the public key of
 * the private key file at `path`. 0, or an error with a message.
 */
int conduit__key_generate(struct conduit__err *e, const char *path,
                          char pub[CONDUIT__KEY_B64_LEN + 1]);
int conduit__key_public_of(struct conduit__err *e, const char *path,
                           char pub[CONDUIT__KEY_B64_LEN + 1]);

#endif
