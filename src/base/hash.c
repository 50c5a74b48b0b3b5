/* SPDX-License-Identifier: Apache-2.0 */
#include "base/hash.h"

#include "base/util.h"

#include <fcntl.h>
#include <openssl/evp.h>

#define DIGEST_READ_CHUNK (1u << 20)

int hash_sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
                return -EIO;
        hex_encode(md, mdlen, out);
        return 0;
}

static const EVP_MD *alg_md(enum digest_alg alg, unsigned *ret_len) {
        *ret_len = alg == DIGEST_SHA512 ? 64 : 32;
        return alg == DIGEST_SHA512 ? EVP_sha512() : EVP_sha256();
}

int digest_init(struct digest *d, enum digest_alg alg) {
        unsigned len;
        const EVP_MD *md = alg_md(alg, &len);
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        *d = (struct digest){.alg = alg};
        if (!c)
                return -ENOMEM;
        if (!EVP_DigestInit_ex(c, md, NULL)) {
                EVP_MD_CTX_free(c);
                return -EIO;
        }
        d->ctx = c;
        return 0;
}

int digest_update(struct digest *d, const void *data, size_t len) {
        if (!d->ctx)
                return -EIO;
        return !len || EVP_DigestUpdate(d->ctx, data, len) ? 0 : -EIO;
}

int digest_final(struct digest *d, char *out) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0, want;
        alg_md(d->alg, &want);
        int r = d->ctx && EVP_DigestFinal_ex(d->ctx, md, &mdlen) && mdlen == want ? 0 : -EIO;
        if (r == 0)
                hex_encode(md, mdlen, out);
        digest_free(d);
        return r;
}

void digest_free(struct digest *d) {
        EVP_MD_CTX_free(d->ctx);
        d->ctx = NULL;
}

int digests_init(struct digests *d, bool sha512) {
        *d = (struct digests){0};
        int r = digest_init(&d->sha256, DIGEST_SHA256);
        if (r >= 0 && sha512)
                r = digest_init(&d->sha512, DIGEST_SHA512);
        if (r < 0)
                digests_free(d);
        return r;
}

int digests_update(struct digests *d, const void *data, size_t len) {
        int r = digest_update(&d->sha256, data, len);
        if (r >= 0 && d->sha512.ctx)
                r = digest_update(&d->sha512, data, len);
        return r;
}

int digests_final(struct digests *d, char sha256[SHA256_HEX_LEN + 1], char *sha512) {
        bool want512 = d->sha512.ctx != NULL;
        int r = digest_final(&d->sha256, sha256);
        if (want512) {
                int r2 = digest_final(&d->sha512, sha512);
                if (r >= 0)
                        r = r2;
        } else if (sha512) {
                sha512[0] = 0;
        }
        return r;
}

void digests_free(struct digests *d) {
        digest_free(&d->sha256);
        digest_free(&d->sha512);
}

int digests_fd(struct digests *d, int fd, void (*progress)(void *userdata, uint64_t done),
               void *userdata, uint64_t *ret_bytes) {
        _cleanup_free_ unsigned char *buf = xmalloc(DIGEST_READ_CHUNK);
        uint64_t total = 0;
        if (progress)
                progress(userdata, 0);
        for (;;) {
                ssize_t n = read(fd, buf, DIGEST_READ_CHUNK);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                int r = digests_update(d, buf, (size_t)n);
                if (r < 0)
                        return r;
                total += (uint64_t)n;
                if (progress)
                        progress(userdata, total);
        }
        if (ret_bytes)
                *ret_bytes = total;
        return 0;
}

int hash_sha256_file(const char *path, char out[SHA256_HEX_LEN + 1]) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct digests d;
        int r = digests_init(&d, false);
        if (r < 0)
                return r;
        r = digests_fd(&d, fd, NULL, NULL, NULL);
        if (r < 0) {
                digests_free(&d);
                return r;
        }
        return digests_final(&d, out, NULL);
}
