/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash.h — content hashes, via OpenSSL's libcrypto.
 */
#pragma once

#include <stddef.h>

#define SHA256_HEX_LEN 64

/* Writes the lowercase hex SHA-256 of data into out (65 bytes with NUL).
 * Returns 0, or -EIO if libcrypto fails. */
int hash_sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

/* Incremental SHA-256. init returns 0 or -ENOMEM; final writes hex and
 * frees the context (also on error); free releases an unfinished one. */
struct sha256 {
        void *ctx; /* EVP_MD_CTX */
};
int sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
int sha256_final(struct sha256 *h, char out[SHA256_HEX_LEN + 1]);
void sha256_free(struct sha256 *h);

/* SHA-256 of a file's contents, read in chunks (any size). -errno on error. */
int hash_sha256_file(const char *path, char out[SHA256_HEX_LEN + 1]);
