/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pieces of the GCS publisher that can be checked without a server:
 * base64url (RFC 4648 §10's vectors, alphabet of §5), the JWT claim set and
 * its RS256 signature (verified here with OpenSSL's verifier against the
 * public half of a key made for the test), the refresh rule of cached
 * tokens, and the Content-Range arithmetic of resumable uploads.
 */
#include "harness.h"

#include "base/strbuf.h"
#include "publish/gauth.h"
#include "publish/gcs.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

static char *b64url(const char *s, size_t n) {
        struct strbuf sb = STRBUF_INIT;
        gauth_base64url(&sb, s, n);
        strbuf_str(&sb);
        return strbuf_detach(&sb);
}

TEST(base64url_rfc4648_vectors) {
        static const struct {
                const char *in, *out;
        } v[] = {
                {"", ""},         {"f", "Zg"},         {"fo", "Zm8"},         {"foo", "Zm9v"},
                {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
                _cleanup_free_ char *o = b64url(v[i].in, strlen(v[i].in));
                CHECK_STREQ(o, v[i].out);
        }
        /* the two characters that differ from base64: '+' -> '-', '/' -> '_' */
        _cleanup_free_ char *o = b64url("\xfb\xff\xbf", 3);
        CHECK_STREQ(o, "-_-_");
        _cleanup_free_ char *h = b64url("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", 27);
        CHECK_STREQ(h, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9");
}

TEST(jwt_claims) {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        gauth_jwt_claims(&sb, "kiln@p.iam.gserviceaccount.com", GAUTH_SCOPE_STORAGE_RW,
                         "https://oauth2.example/token", 1700000000);
        CHECK_STREQ(strbuf_str(&sb),
                    "{\"iss\":\"kiln@p.iam.gserviceaccount.com\","
                    "\"scope\":\"https://www.googleapis.com/auth/devstorage.read_write\","
                    "\"aud\":\"https://oauth2.example/token\",\"iat\":1700000000,\"exp\":1700003600}");
        strbuf_reset(&sb);
        gauth_jwt_claims(&sb, "a\"b", "s", "u", 0);
        CHECK_STREQ(strbuf_str(&sb), "{\"iss\":\"a\\\"b\",\"scope\":\"s\",\"aud\":\"u\",\"iat\":0,\"exp\":3600}");
}

/* base64url back to bytes (for the test's own checking). */
static size_t unb64url(const char *s, size_t n, unsigned char *out) {
        _cleanup_free_ char *t = xmalloc(n + 4);
        for (size_t i = 0; i < n; i++)
                t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
        size_t m = n;
        while (m % 4)
                t[m++] = '=';
        int k = EVP_DecodeBlock(out, (unsigned char *)t, (int)m);
        return k < 0 ? 0 : (size_t)k - (m - n);
}

TEST(jwt_sign_rs256) {
        EVP_PKEY *k = EVP_RSA_gen(2048);
        CHECK(k);
        if (!k)
                return;
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
        char *pem_data;
        long n = BIO_get_mem_data(b, &pem_data);
        _cleanup_free_ char *pem = xstrndup(pem_data, n);
        BIO_free(b);

        _cleanup_free_ char *jwt = NULL;
        CHECK_INT(gauth_jwt_sign(pem, "iss@x", "scope", "http://127.0.0.1:1/token", 1000, &jwt), ==, 0);
        CHECK(jwt);
        char *d1 = jwt ? strchr(jwt, '.') : NULL;
        char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        CHECK(d1 && d2 && !strchr(d2 + 1, '.'));
        if (d2) {
                CHECK(strncmp(jwt, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", d1 - jwt + 1) == 0);
                unsigned char claims[512], sig[512];
                size_t cl = unb64url(d1 + 1, d2 - d1 - 1, claims);
                claims[cl] = 0;
                CHECK_STREQ((char *)claims, "{\"iss\":\"iss@x\",\"scope\":\"scope\",\"aud\":"
                                            "\"http://127.0.0.1:1/token\",\"iat\":1000,\"exp\":4600}");
                size_t sl = unb64url(d2 + 1, strlen(d2 + 1), sig);
                CHECK_INT(sl, ==, 256);
                EVP_MD_CTX *ctx = EVP_MD_CTX_new();
                CHECK(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1);
                CHECK(EVP_DigestVerify(ctx, sig, sl, (unsigned char *)jwt, d2 - jwt) == 1);
                /* one bit off in the signed text: refused */
                jwt[5] ^= 1;
                EVP_MD_CTX_reset(ctx);
                CHECK(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1);
                CHECK(EVP_DigestVerify(ctx, sig, sl, (unsigned char *)jwt, d2 - jwt) != 1);
                EVP_MD_CTX_free(ctx);
        }
        EVP_PKEY_free(k);

        /* Not a private key, and not an RSA one: refused. */
        char *bad = NULL;
        CHECK_INT(gauth_jwt_sign("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                                 "i", "s", "a", 0, &bad), ==, -EBADMSG);
        EVP_PKEY *ec = EVP_EC_gen("P-256");
        CHECK(ec);
        b = BIO_new(BIO_s_mem());
        PEM_write_bio_PrivateKey(b, ec, NULL, NULL, 0, NULL, NULL);
        n = BIO_get_mem_data(b, &pem_data);
        _cleanup_free_ char *ecpem = xstrndup(pem_data, n);
        BIO_free(b);
        EVP_PKEY_free(ec);
        CHECK_INT(gauth_jwt_sign(ecpem, "i", "s", "a", 0, &bad), ==, -EBADMSG);
        CHECK(!bad);
}

TEST(token_refresh_rule) {
        /* an hour's token: refreshed 5 minutes before it expires */
        CHECK(gauth_token_fresh(0, 0, 3600));
        CHECK(gauth_token_fresh(3299, 0, 3600));
        CHECK(!gauth_token_fresh(3300, 0, 3600));
        CHECK(!gauth_token_fresh(4000, 0, 3600));
        /* a short-lived one (100 s): a quarter of its life is the margin */
        CHECK(gauth_token_fresh(1074, 1000, 1100));
        CHECK(!gauth_token_fresh(1075, 1000, 1100));
}

TEST(content_range) {
        char b[96];
        gcs_content_range(b, sizeof(b), 0, 262144, 1000000);
        CHECK_STREQ(b, "bytes 0-262143/1000000");
        gcs_content_range(b, sizeof(b), 786432, 213568, 1000000);
        CHECK_STREQ(b, "bytes 786432-999999/1000000");
        gcs_content_range(b, sizeof(b), 0, 0, 1000000);
        CHECK_STREQ(b, "bytes */1000000");
        gcs_content_range(b, sizeof(b), 0, 0, 0);
        CHECK_STREQ(b, "bytes */0");
        gcs_content_range(b, sizeof(b), 0, 1, 1);
        CHECK_STREQ(b, "bytes 0-0/1");
        gcs_content_range(b, sizeof(b), 5ull << 40, 1ull << 30, 6ull << 40);
        CHECK_STREQ(b, "bytes 5497558138880-5498631880703/6597069766656");
}

TEST(committed_offset) {
        uint64_t c = 99;
        CHECK_INT(gcs_committed(NULL, 10, &c), ==, 0);
        CHECK_INT(c, ==, 0);
        CHECK_INT(gcs_committed("bytes=0-262143", 1000000, &c), ==, 0);
        CHECK_INT(c, ==, 262144);
        CHECK_INT(gcs_committed("bytes=0-999999", 1000000, &c), ==, 0);
        CHECK_INT(c, ==, 1000000);
        c = 7;
        CHECK_INT(gcs_committed("bytes=0-1000000", 1000000, &c), ==, -EBADMSG); /* past the end */
        CHECK_INT(gcs_committed("bytes=1-5", 10, &c), ==, -EBADMSG);
        CHECK_INT(gcs_committed("bytes=0-", 10, &c), ==, -EBADMSG);
        CHECK_INT(gcs_committed("bytes=0-5x", 10, &c), ==, -EBADMSG);
        CHECK_INT(gcs_committed("bytes=0--5", 10, &c), ==, -EBADMSG);
        CHECK_INT(gcs_committed("bytes=0-18446744073709551616", UINT64_MAX, &c), ==, -EBADMSG);
        CHECK_INT(c, ==, 7); /* untouched on error */
}

/* The chunks of a file: contiguous, every one but the last a multiple of
 * 256 KiB, together the whole file. */
TEST(chunk_walk) {
        static const uint64_t sizes[] = {0, 1, 262144, 262145, 3 * 1048576 + 12345, 8388608};
        static const uint64_t chunks[] = {262144, 1048576, 8388608};
        for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
                for (size_t j = 0; j < ARRAY_SIZE(chunks); j++) {
                        uint64_t off = 0, n = 0, len;
                        while ((len = gcs_chunk_len(off, sizes[i], chunks[j])) > 0) {
                                CHECK(len <= chunks[j]);
                                if (off + len < sizes[i])
                                        CHECK_INT(len % GCS_CHUNK_UNIT, ==, 0);
                                off += len;
                                n++;
                        }
                        CHECK_INT(off, ==, sizes[i]);
                        CHECK_INT(n, ==, (sizes[i] + chunks[j] - 1) / chunks[j]);
                }
        CHECK_INT(gcs_chunk_len(786432, 1000000, 262144), ==, 213568);
        CHECK_INT(gcs_chunk_len(1000000, 1000000, 262144), ==, 0);
}

TEST(names) {
        CHECK(gcs_bucket_name_ok("kiln-e2e"));
        CHECK(gcs_bucket_name_ok("a_b.c"));
        CHECK(!gcs_bucket_name_ok("ab"));
        CHECK(!gcs_bucket_name_ok("Upper"));
        CHECK(!gcs_bucket_name_ok("-start"));
        CHECK(!gcs_bucket_name_ok("end-"));
        _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
        CHECK(gcs_object_name_ok("images/x.qcow2", &why));
        CHECK(!gcs_object_name_ok("", &why));
        CHECK(!gcs_object_name_ok("a\nb", &why));
        CHECK(!gcs_object_name_ok("..", &why));
        char big[GCS_MAX_OBJECT_NAME + 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        CHECK(!gcs_object_name_ok(big, &why));
        big[GCS_MAX_OBJECT_NAME] = 0;
        CHECK(gcs_object_name_ok(big, &why));
}
