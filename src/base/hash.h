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
