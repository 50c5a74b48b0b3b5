/* SPDX-License-Identifier: Apache-2.0 */
#include "base/hash.h"

#include "base/util.h"

#include <openssl/evp.h>

int hash_sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
                return -EIO;
        static const char hex[] = "0123456789abcdef";
        for (unsigned i = 0; i < mdlen; i++) {
                out[2 * i] = hex[md[i] >> 4];
                out[2 * i + 1] = hex[md[i] & 15];
        }
        out[2 * mdlen] = 0;
        return 0;
}
