/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash.h — content hashes (SHA-256, SHA-512), via OpenSSL's libcrypto
 * (EVP). The one place kiln computes them: callers never touch EVP.
 *
 * Three shapes, all giving lowercase hex:
 *   - hash_sha256_hex / hash_sha256_file: one call over a buffer or a file;
 *   - struct digest: one streaming hash of a chosen algorithm, fed in pieces
 *     (a writer thread per algorithm, a tree walk);
 *   - struct digests: SHA-256 and optionally SHA-512 of the same bytes in one
 *     pass (artifacts: checksums files and manifests record both), with
 *     digests_fd to hash what an open file holds.
 *
 * Ownership: an initialised digest owns an EVP context; *_final releases it
 * (also on error), *_free releases an unfinished one (both are no-ops on a
 * zeroed or finished struct, so `= {0}` plus a free on every path is safe).
 * A digest is not thread-safe; two threads use two digests.
 *
 * Errors: -ENOMEM (no context), -EIO (libcrypto refused: should not happen
 * with a working libcrypto), and digests_fd's read errors as -errno.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64
#define SHA512_HEX_LEN 128

/* Writes the lowercase hex SHA-256 of data into out (65 bytes with NUL).
 * Returns 0, or -EIO if libcrypto fails. */
int hash_sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

/* SHA-256 of a file's contents, read in chunks (any size). -errno on error. */
int hash_sha256_file(const char *path, char out[SHA256_HEX_LEN + 1]);

enum digest_alg { DIGEST_SHA256, DIGEST_SHA512 };

struct digest {
        void *ctx; /* EVP_MD_CTX, NULL when not started or finished */
        enum digest_alg alg;
};

/* Starts a digest. 0, -ENOMEM or -EIO (then nothing to free). */
int digest_init(struct digest *d, enum digest_alg alg);
/* Hashes data[0..len). 0, or -EIO (libcrypto failed, or d is not started). */
int digest_update(struct digest *d, const void *data, size_t len);
/* Writes the hex digest into out (SHA256_HEX_LEN or SHA512_HEX_LEN + 1
 * bytes, by d's algorithm) and frees the context, also on error. 0 or -EIO. */
int digest_final(struct digest *d, char *out);
void digest_free(struct digest *d);

/* SHA-256, and SHA-512 when asked for, of the same bytes. */
struct digests {
        struct digest sha256, sha512; /* sha512.ctx is NULL when not wanted */
};

/* 0, -ENOMEM or -EIO (then nothing to free). */
int digests_init(struct digests *d, bool sha512);
/* 0 or -EIO. */
int digests_update(struct digests *d, const void *data, size_t len);
/* Writes SHA-256 into sha256 and SHA-512 into sha512, or "" there when it
 * was not asked for (sha512 may be NULL then); frees both contexts, also on
 * error. 0 or -EIO. */
int digests_final(struct digests *d, char sha256[SHA256_HEX_LEN + 1], char *sha512);
void digests_free(struct digests *d);

/* Hashes everything fd yields from its current offset to its end, in 1 MiB
 * reads, calling progress (when not NULL) with the bytes read so far before
 * the first read and after each one. *ret_bytes (may be NULL) gets the total.
 * 0 or -errno (a read error); the digests are not finished. */
int digests_fd(struct digests *d, int fd, void (*progress)(void *userdata, uint64_t done),
               void *userdata, uint64_t *ret_bytes);
