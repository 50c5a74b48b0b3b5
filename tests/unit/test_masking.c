/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The streaming secret masker (strbuf_masker): whatever the pieces a
 * stream arrives in, the result is what strbuf_add_masked gives for the
 * whole stream, and no secret survives.
 */
#include "harness.h"

#include "base/strbuf.h"

/* Feeds text in pieces of `step` bytes (0: pseudo-random sizes 1..97). */
static char *mask_in_pieces(const char *text, size_t n, const char *const *secrets, size_t ns,
                            size_t step) {
        struct strbuf out = STRBUF_INIT;
        struct strbuf_masker m;
        strbuf_masker_init(&m, secrets, ns);
        unsigned seed = 12345;
        for (size_t i = 0; i < n;) {
                size_t k = step;
                if (!k) {
                        seed = seed * 1103515245u + 12345u;
                        k = 1 + (seed >> 16) % 97;
                }
                if (k > n - i)
                        k = n - i;
                strbuf_masker_feed(&m, &out, text + i, k);
                i += k;
        }
        strbuf_masker_flush(&m, &out);
        strbuf_masker_done(&m);
        return strbuf_detach(&out);
}

static char *mask_whole(const char *text, size_t n, const char *const *secrets, size_t ns) {
        struct strbuf out = STRBUF_INIT;
        strbuf_add_masked(&out, text, n, secrets, ns);
        return strbuf_detach(&out);
}

TEST(masker_secret_split_across_every_boundary) {
        static const char *const secrets[] = {"s3cr3t-t0ken-value"};
        const char *text = "before s3cr3t-t0ken-value middle s3cr3t-t0ken-values3cr3t-t0ken-value end\n";
        size_t n = strlen(text);
        _cleanup_free_ char *want = mask_whole(text, n, secrets, 1);
        CHECK_STREQ(want, "before <sensitive> middle <sensitive><sensitive> end\n");
        /* every split point of a two-piece stream, and byte by byte */
        for (size_t cut = 0; cut <= n; cut++) {
                struct strbuf out = STRBUF_INIT;
                struct strbuf_masker m;
                strbuf_masker_init(&m, secrets, 1);
                strbuf_masker_feed(&m, &out, text, cut);
                strbuf_masker_feed(&m, &out, text + cut, n - cut);
                strbuf_masker_flush(&m, &out);
                strbuf_masker_done(&m);
                CHECK_STREQ(strbuf_str(&out), want);
                strbuf_free(&out);
        }
        _cleanup_free_ char *bytes = mask_in_pieces(text, n, secrets, 1, 1);
        CHECK_STREQ(bytes, want);
}

TEST(masker_line_longer_than_any_buffer) {
        /* a 1 MiB line without a newline, the secret in the middle and at the end */
        static const char *const secrets[] = {"hunter2-password"};
        size_t n = 1u << 20;
        char *text = xmalloc(n + 1);
        memset(text, 'x', n);
        memcpy(text + (64u << 10) - 5, secrets[0], strlen(secrets[0])); /* across 64 KiB */
        memcpy(text + n - strlen(secrets[0]), secrets[0], strlen(secrets[0]));
        text[n] = 0;
        _cleanup_free_ char *got = mask_in_pieces(text, n, secrets, 1, 8192);
        CHECK(strstr(got, "hunter2") == NULL);
        CHECK(strstr(got, "<sensitive>") != NULL);
        CHECK_INT(strlen(got), ==, n - 2 * strlen(secrets[0]) + 2 * strlen("<sensitive>"));
        free(text);
}

TEST(masker_matches_whole_text_masking) {
        /* overlapping secrets, one a prefix of another, order matters */
        static const char *const secrets[] = {"abcab", "abc", "bca", "", "aaaa"};
        static const char alphabet[] = "abcx\n";
        unsigned seed = 7;
        for (int round = 0; round < 200; round++) {
                char text[300];
                size_t n = 0;
                for (; n < sizeof(text) - 1; n++) {
                        seed = seed * 1103515245u + 12345u;
                        text[n] = alphabet[(seed >> 16) % 5];
                }
                text[n] = 0;
                _cleanup_free_ char *want = mask_whole(text, n, secrets, 5);
                for (size_t step = 0; step < 8; step++) {
                        _cleanup_free_ char *got = mask_in_pieces(text, n, secrets, 5, step);
                        CHECK_STREQ(got, want);
                }
        }
}

TEST(masker_holds_back_only_a_possible_secret_start) {
        static const char *const secrets[] = {"topsecret"};
        struct strbuf out = STRBUF_INIT;
        struct strbuf_masker m;
        strbuf_masker_init(&m, secrets, 1);
        strbuf_masker_feed(&m, &out, "started\n", 8);
        CHECK_STREQ(strbuf_str(&out), "started\n"); /* nothing held: shown at once */
        strbuf_masker_feed(&m, &out, "x top", 5);
        CHECK_STREQ(strbuf_str(&out), "started\nx "); /* "top" may begin the secret */
        strbuf_masker_feed(&m, &out, "secret!", 7);
        CHECK_STREQ(strbuf_str(&out), "started\nx <sensitive>!");
        strbuf_masker_feed(&m, &out, "tops", 4);
        strbuf_masker_flush(&m, &out);
        CHECK_STREQ(strbuf_str(&out), "started\nx <sensitive>!tops");
        strbuf_masker_done(&m);
        strbuf_free(&out);
}
