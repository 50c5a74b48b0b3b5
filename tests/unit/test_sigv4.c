/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SigV4 against AWS's published Signature Version 4 test suite: the
 * requests and expected signatures below are the facts stated in
 * "aws-sig-v4-test-suite" (as kept in github.com/awslabs/aws-c-auth,
 * tests/aws-signing-test-suite/v4/<name>/header-signed-request.txt and
 * header-canonical-request.txt). Every vector uses access key AKIDEXAMPLE,
 * secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, the date
 * 20150830T123600Z and the scope 20150830/us-east-1/service/aws4_request.
 */
#include "harness.h"

#include "base/hash.h"
#include "base/strbuf.h"
#include "publish/sigv4.h"

static const struct sigv4_key suite_key = {
        .access_key = "AKIDEXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        .region = "us-east-1",
        .service = "service",
        .amz_date = "20150830T123600Z",
};

#define HOST {"Host", "example.amazonaws.com"}
#define DATE {"X-Amz-Date", "20150830T123600Z"}

/* Signs a GET with an empty body and checks the Authorization header. */
static void check_sig(const char *method, const char *path, const struct sigv4_param *q, size_t nq,
                      const struct sigv4_param *h, size_t nh, const char *payload,
                      const char *signed_headers, const char *want_sig) {
        struct sigv4_request req = {
                .method = method, .path = path, .query = q, .nquery = nq,
                .headers = h, .nheaders = nh, .payload_hash = payload,
        };
        struct sigv4_signature s = {0};
        CHECK_INT(sigv4_sign(&req, &suite_key, &s), ==, 0);
        CHECK_STREQ(s.signed_headers, signed_headers);
        CHECK_STREQ(s.signature, want_sig);
        _cleanup_free_ char *auth = xasprintf(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                "SignedHeaders=%s, Signature=%s", signed_headers, want_sig);
        CHECK_STREQ(s.authorization, auth);
        sigv4_signature_done(&s);
}

static const struct sigv4_param base_headers[] = {HOST, DATE};

TEST(sigv4_get_vanilla) {
        check_sig("GET", "/", NULL, 0, base_headers, 2, SIGV4_EMPTY_SHA256, "host;x-amz-date",
                  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(sigv4_get_vanilla_canonical_forms) {
        /* The intermediate strings of get-vanilla, from the suite's
         * .creq/.sts: if the signature matched by accident these would not. */
        struct sigv4_request req = {.method = "GET", .path = "/", .headers = base_headers,
                                    .nheaders = 2, .payload_hash = SIGV4_EMPTY_SHA256};
        struct sigv4_signature s = {0};
        CHECK_INT(sigv4_sign(&req, &suite_key, &s), ==, 0);
        CHECK_STREQ(s.canonical_request,
                    "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                    "host;x-amz-date\n" SIGV4_EMPTY_SHA256);
        CHECK_STREQ(s.string_to_sign,
                    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
                    "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
        sigv4_signature_done(&s);
}

TEST(sigv4_get_vanilla_query_order_key_case) {
        const struct sigv4_param q[] = {{"Param2", "value2"}, {"Param1", "value1"}};
        check_sig("GET", "/", q, 2, base_headers, 2, SIGV4_EMPTY_SHA256, "host;x-amz-date",
                  "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(sigv4_get_vanilla_empty_query_key) {
        const struct sigv4_param q[] = {{"Param1", "value1"}};
        check_sig("GET", "/", q, 1, base_headers, 2, SIGV4_EMPTY_SHA256, "host;x-amz-date",
                  "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
}

TEST(sigv4_get_vanilla_query_unreserved) {
        const char *u = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        const struct sigv4_param q[] = {{u, u}};
        check_sig("GET", "/", q, 1, base_headers, 2, SIGV4_EMPTY_SHA256, "host;x-amz-date",
                  "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

TEST(sigv4_get_vanilla_utf8_query) {
        const struct sigv4_param q[] = {{"\xe1\x88\xb4", "bar"}};
        check_sig("GET", "/", q, 1, base_headers, 2, SIGV4_EMPTY_SHA256, "host;x-amz-date",
                  "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}

TEST(sigv4_get_unreserved_path) {
        check_sig("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", NULL, 0,
                  base_headers, 2, SIGV4_EMPTY_SHA256, "host;x-amz-date",
                  "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

TEST(sigv4_get_utf8_path) {
        check_sig("GET", "/\xe1\x88\xb4", NULL, 0, base_headers, 2, SIGV4_EMPTY_SHA256,
                  "host;x-amz-date",
                  "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

TEST(sigv4_get_space) {
        check_sig("GET", "/example space/", NULL, 0, base_headers, 2, SIGV4_EMPTY_SHA256,
                  "host;x-amz-date",
                  "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741");
}

TEST(sigv4_get_header_value_trim) {
        const struct sigv4_param h[] = {
                HOST, {"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}, DATE};
        check_sig("GET", "/", NULL, 0, h, 4, SIGV4_EMPTY_SHA256, "host;my-header1;my-header2;x-amz-date",
                  "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

TEST(sigv4_get_header_key_duplicate) {
        const struct sigv4_param h[] = {HOST, {"My-Header1", "value2"}, {"My-Header1", "value2"},
                                        {"My-Header1", "value1"}, DATE};
        check_sig("GET", "/", NULL, 0, h, 5, SIGV4_EMPTY_SHA256, "host;my-header1;x-amz-date",
                  "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}

TEST(sigv4_get_header_value_order) {
        const struct sigv4_param h[] = {HOST, {"My-Header1", "value4"}, {"My-Header1", "value1"},
                                        {"My-Header1", "value3"}, {"My-Header1", "value2"}, DATE};
        check_sig("GET", "/", NULL, 0, h, 6, SIGV4_EMPTY_SHA256, "host;my-header1;x-amz-date",
                  "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01");
}

TEST(sigv4_get_vanilla_with_session_token) {
        const struct sigv4_param h[] = {
                HOST, DATE,
                {"X-Amz-Security-Token", "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"}};
        check_sig("GET", "/", NULL, 0, h, 3, SIGV4_EMPTY_SHA256, "host;x-amz-date;x-amz-security-token",
                  "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
}

TEST(sigv4_post_vanilla) {
        check_sig("POST", "/", NULL, 0, base_headers, 2, SIGV4_EMPTY_SHA256, "host;x-amz-date",
                  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(sigv4_post_x_www_form_urlencoded) {
        /* The body is hashed, and the hash is also a signed header. */
        char body_hash[SHA256_HEX_LEN + 1];
        CHECK_INT(hash_sha256_hex("Param1=value1", 13, body_hash), ==, 0);
        CHECK_STREQ(body_hash, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
        const struct sigv4_param h[] = {
                {"Content-Type", "application/x-www-form-urlencoded"}, HOST, {"Content-Length", "13"},
                {"x-amz-content-sha256", body_hash}, DATE};
        check_sig("POST", "/", NULL, 0, h, 5, body_hash,
                  "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
                  "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b");
}

TEST(sigv4_unsigned_payload_changes_signature) {
        /* UNSIGNED-PAYLOAD is the last line of the canonical request. */
        struct sigv4_request req = {.method = "PUT", .path = "/b/k", .headers = base_headers,
                                    .nheaders = 2, .payload_hash = SIGV4_UNSIGNED_PAYLOAD};
        struct sigv4_signature s = {0};
        CHECK_INT(sigv4_sign(&req, &suite_key, &s), ==, 0);
        CHECK(endswith(s.canonical_request, "\nhost;x-amz-date\nUNSIGNED-PAYLOAD"));
        CHECK(strcmp(s.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31") != 0);
        sigv4_signature_done(&s);
}

TEST(sigv4_encoding_for_urls) {
        struct strbuf sb = STRBUF_INIT;
        sigv4_encode_path(&sb, "/bucket/ci/1.30 x/a+b=c&d.qcow2");
        CHECK_STREQ(strbuf_str(&sb), "/bucket/ci/1.30%20x/a%2Bb%3Dc%26d.qcow2");
        strbuf_reset(&sb);
        /* S3 subresources without a value ("uploads") and values with '/' */
        const struct sigv4_param q[] = {{"uploads", NULL}, {"prefix", "ci/a b"}, {"max-uploads", "1000"}};
        sigv4_canonical_query(&sb, q, 3);
        CHECK_STREQ(strbuf_str(&sb), "max-uploads=1000&prefix=ci%2Fa%20b&uploads=");
        strbuf_free(&sb);
        char d[17];
        sigv4_amz_date(1440938160, d);
        CHECK_STREQ(d, "20150830T123600Z");
}

TEST(sigv4_rejects_malformed) {
        struct sigv4_signature s = {0};
        const struct sigv4_param only_date[] = {DATE};
        struct sigv4_request no_host = {.method = "GET", .path = "/", .headers = only_date,
                                        .nheaders = 1, .payload_hash = SIGV4_EMPTY_SHA256};
        CHECK_INT(sigv4_sign(&no_host, &suite_key, &s), ==, -EINVAL);
        struct sigv4_request rel = {.method = "GET", .path = "x", .headers = base_headers,
                                    .nheaders = 2, .payload_hash = SIGV4_EMPTY_SHA256};
        CHECK_INT(sigv4_sign(&rel, &suite_key, &s), ==, -EINVAL);
}
