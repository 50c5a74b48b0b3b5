/* SPDX-License-Identifier: Apache-2.0 */
#include "base/hash.h"

#include "base/util.h"

#include <fcntl.h>
#include <openssl/evp.h>

int hash_sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
                return -EIO;
        hex_encode(md, mdlen, out);
        return 0;
}

int sha256_init(struct sha256 *h) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        if (!c)
                return -ENOMEM;
        if (!EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
                EVP_MD_CTX_free(c);
                return -EIO;
        }
        h->ctx = c;
        return 0;
}

void sha256_update(struct sha256 *h, const void *data, size_t len) {
        if (h->ctx && len)
                EVP_DigestUpdate(h->ctx, data, len);
}

int sha256_final(struct sha256 *h, char out[SHA256_HEX_LEN + 1]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        int r = h->ctx && EVP_DigestFinal_ex(h->ctx, md, &mdlen) && mdlen == 32 ? 0 : -EIO;
        if (r == 0)
                hex_encode(md, mdlen, out);
        sha256_free(h);
        return r;
}

void sha256_free(struct sha256 *h) {
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
}

int hash_sha256_file(const char *path, char out[SHA256_HEX_LEN + 1]) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct sha256 h;
        int r = sha256_init(&h);
        if (r < 0)
                return r;
        char buf[1 << 16];
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        sha256_free(&h);
                        return r;
                }
                if (n == 0)
                        break;
                sha256_update(&h, buf, (size_t)n);
        }
        return sha256_final(&h, out);
}
