/* SPDX-License-Identifier: Apache-2.0 */
#include "harness.h"

#include "base/diag.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/strbuf.h"
#include "base/strv.h"
#include "base/suggest.h"

TEST(strbuf_grows_and_detaches) {
        struct strbuf sb = STRBUF_INIT;
        CHECK_STREQ(strbuf_str(&sb), "");
        for (int i = 0; i < 1000; i++)
                strbuf_addf(&sb, "%d,", i);
        CHECK(sb.len > 3000);
        CHECK(strncmp(sb.buf, "0,1,2,", 6) == 0);
        char *s = strbuf_detach(&sb);
        CHECK(sb.buf == NULL && sb.len == 0);
        free(s);
}

TEST(suggest_finds_typos) {
        static const char *const keys[] = {"packages", "update", "file", "shell", "ansible"};
        CHECK_STREQ(suggest_closest("packges", keys, 5), "packages");
        CHECK_STREQ(suggest_closest("shlel", keys, 5), "shell");
        CHECK_STREQ(suggest_closest("Shell", keys, 5), "shell");
        CHECK(suggest_closest("zzzzzz", keys, 5) == NULL);
        CHECK_INT(suggest_distance("abc", "acb"), ==, 1);
        CHECK_INT(suggest_distance("", "abc"), ==, 3);
}

TEST(sha256_matches_known_vector) {
        char hex[SHA256_HEX_LEN + 1];
        CHECK_INT(hash_sha256_hex("abc", 3, hex), ==, 0);
        CHECK_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void count_progress(void *userdata, uint64_t done) {
        uint64_t *calls = userdata;
        calls[0]++;
        calls[1] = done;
}

TEST(digests_stream_in_pieces_and_from_a_file) {
        static const char sha256_abc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        static const char sha512_abc[] =
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
        /* fed in pieces, both algorithms */
        struct digests d;
        CHECK_INT(digests_init(&d, true), ==, 0);
        CHECK_INT(digests_update(&d, "a", 1), ==, 0);
        CHECK_INT(digests_update(&d, "", 0), ==, 0);
        CHECK_INT(digests_update(&d, "bc", 2), ==, 0);
        char h256[SHA256_HEX_LEN + 1], h512[SHA512_HEX_LEN + 1];
        CHECK_INT(digests_final(&d, h256, h512), ==, 0);
        CHECK_STREQ(h256, sha256_abc);
        CHECK_STREQ(h512, sha512_abc);
        CHECK(d.sha256.ctx == NULL && d.sha512.ctx == NULL);
        digests_free(&d); /* after final: a no-op */

        /* one algorithm alone */
        struct digest one;
        CHECK_INT(digest_init(&one, DIGEST_SHA512), ==, 0);
        CHECK_INT(digest_update(&one, "abc", 3), ==, 0);
        CHECK_INT(digest_final(&one, h512), ==, 0);
        CHECK_STREQ(h512, sha512_abc);
        CHECK_INT(digest_update(&one, "abc", 3), ==, -EIO); /* finished */

        /* from a file: the same digests, progress seen, sha512 "" when not asked */
        char path[] = "/tmp/kiln-test-digests.XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        CHECK_INT(write_all(fd, "abc", 3), ==, 0);
        CHECK_INT(lseek(fd, 0, SEEK_SET), ==, 0);
        CHECK_INT(digests_init(&d, false), ==, 0);
        uint64_t calls[2] = {0, 0}, total = 0;
        CHECK_INT(digests_fd(&d, fd, count_progress, calls, &total), ==, 0);
        CHECK_INT(total, ==, 3);
        CHECK_INT(calls[0], ==, 2); /* before the first read, after it */
        CHECK_INT(calls[1], ==, 3);
        strcpy(h512, "untouched");
        CHECK_INT(digests_final(&d, h256, h512), ==, 0);
        CHECK_STREQ(h256, sha256_abc);
        CHECK_STREQ(h512, "");
        close(fd);
        CHECK_INT(hash_sha256_file(path, h256), ==, 0);
        CHECK_STREQ(h256, sha256_abc);
        unlink(path);
        CHECK_INT(hash_sha256_file(path, h256), ==, -ENOENT);
}

TEST(strv_is_null_terminated_and_owns_its_strings) {
        _cleanup_strv_ struct strv s = STRV_INIT;
        CHECK(s.v == NULL);
        char word[] = "first";
        strv_add(&s, word);
        word[0] = 'X'; /* a copy was kept */
        strv_addf(&s, "%s=%d", "N", 42);
        strv_add_take(&s, xstrdup("third"));
        for (int i = 0; i < 40; i++) /* grow past the first capacity */
                strv_addf(&s, "%d", i);
        CHECK_INT(s.n, ==, 43);
        CHECK(s.v[43] == NULL);
        CHECK_STREQ(s.v[0], "first");
        CHECK_STREQ(s.v[1], "N=42");
        CHECK_STREQ(s.v[2], "third");
        strv_remove(&s, 0); /* the last one moves in */
        CHECK_INT(s.n, ==, 42);
        CHECK_STREQ(s.v[0], "39");
        CHECK(s.v[42] == NULL);
        char **v = strv_detach(&s);
        CHECK(s.v == NULL && s.n == 0);
        CHECK_STREQ(v[1], "N=42");
        strv_free_array(v);
        struct strv empty = STRV_INIT;
        v = strv_detach(&empty);
        CHECK(v != NULL && v[0] == NULL);
        strv_free_array(v);
}

TEST(json_writer_escapes_and_nests) {
        struct strbuf sb = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &sb, false);
        json_begin_object(&w);
        json_key(&w, "a");
        json_string(&w, "x\"y\n\x01");
        json_key(&w, "b");
        json_begin_array(&w);
        json_int(&w, 1);
        json_bool(&w, true);
        json_null(&w);
        json_end_array(&w);
        json_key(&w, "c");
        json_begin_object(&w);
        json_end_object(&w);
        json_end_object(&w);
        CHECK_STREQ(sb.buf, "{\"a\":\"x\\\"y\\n\\u0001\",\"b\":[1,true,null],\"c\":{}}");
        strbuf_free(&sb);
}

TEST(diag_renders_caret_and_hint) {
        struct source *src = source_new("f.yaml", "a: 1\nbuilds:\n  bad: x\n", 21);
        struct diag_list d = {0};
        struct diag *dg = diag_error(&d, &(struct mark){src, 3, 3}, 3, "unknown key '%s'", "bad");
        diag_hint(dg, "did you mean 'bar'?");
        /* identical diagnostics are stored once */
        CHECK(diag_error(&d, &(struct mark){src, 3, 3}, 3, "unknown key '%s'", "bad") == NULL);
        diag_error(&d, &(struct mark){src, 1, 1}, 1, "first");
        diag_sort(&d);
        CHECK_INT(d.nerrors, ==, 2);
        CHECK_STREQ(d.v[0].msg, "first");
        struct strbuf sb = STRBUF_INIT;
        diag_render(&d, &sb, false);
        CHECK_STREQ(sb.buf, "f.yaml:1:1: error: first\n"
                            "    1 | a: 1\n"
                            "      | ^\n"
                            "f.yaml:3:3: error: unknown key 'bad'\n"
                            "    3 |   bad: x\n"
                            "      |   ^~~\n"
                            "hint: did you mean 'bar'?\n");
        strbuf_free(&sb);
        diag_list_done(&d);
        source_free(src);
}

/* Renders d to a string (caller frees). */
static char *render(struct diag_list *d) {
        struct strbuf sb = STRBUF_INIT;
        diag_render(d, &sb, false);
        return strbuf_detach(&sb);
}

TEST(source_line_counts_every_yaml_line_break) {
        /* libyaml counts \r, \r\n, U+0085, U+2028 and U+2029 as line breaks;
         * the quoted line must be the one its line numbers mean. */
        const char *text = "a\rb\r\nc\xc2\x85" "d\xe2\x80\xa8" "e\xe2\x80\xa9" "f\n";
        struct source *src = source_new("x", text, strlen(text));
        const char *want[] = {"a", "b", "c", "d", "e", "f"};
        for (unsigned i = 0; i < 6; i++) {
                size_t n = 99;
                const char *l = source_line(src, i + 1, &n);
                CHECK(l && n == 1 && l[0] == want[i][0]);
        }
        size_t n;
        CHECK(source_line(src, 7, &n) == NULL);
        CHECK_INT(source_break_len("\r\n", "\r\n" + 2), ==, 2);
        CHECK_INT(source_break_len("\xe2\x80\xa8", "\xe2\x80\xa8" + 3), ==, 3);
        CHECK_INT(source_break_len("\xe2\x80", "\xe2\x80" + 2), ==, 0);
        source_free(src);
}

TEST(diag_quotes_empty_line_after_cr_with_secrets) {
        /* An empty quoted line while secrets are registered: was memcmp on
         * NULL (undefined behaviour). */
        const char *text = "k: 1\r\rz: 2\n";
        struct source *src = source_new("f", text, strlen(text));
        struct diag_list d = {0};
        diag_add_secret(&d, "hunter22", 8);
        diag_error(&d, &(struct mark){src, 2, 1}, 1, "here");
        diag_error(&d, &(struct mark){src, 3, 1}, 1, "there");
        _cleanup_free_ char *out = render(&d);
        CHECK_STREQ(out, "f:2:1: error: here\n"
                         "    2 | \n"
                         "      | ^\n"
                         "f:3:1: error: there\n"
                         "    3 | z: 2\n"
                         "      | ^\n");
        diag_list_done(&d);
        source_free(src);
}

TEST(diag_escapes_control_characters) {
        const char *text = "t: \"a\x1b[2J\"\x07 \xc2\x9b x\xe2\x80\xae" "y\x7f\xff\n";
        struct source *src = source_new("p\x1bq", text, strlen(text));
        struct diag_list d = {0};
        struct diag *dg = diag_error(&d, &(struct mark){src, 1, 13}, 2, "bad \x1b]0;t\x07 \r\n %s",
                                     "\xc2\x85");
        diag_hint(dg, "h\x1b");
        _cleanup_free_ char *out = render(&d);
        CHECK(strchr(out, 0x1b) == NULL && strchr(out, 0x07) == NULL && strchr(out, '\r') == NULL &&
              strchr(out, 0x7f) == NULL && strstr(out, "\xc2\x9b") == NULL &&
              strstr(out, "\xe2\x80\xae") == NULL && strstr(out, "\xff") == NULL);
        CHECK_STREQ(out, "p\\x1bq:1:13: error: bad \\x1b]0;t\\x07 \\r\\n \\u0085\n"
                         "    1 | t: \"a\\x1b[2J\"\\x07 \\u009b x\\u202ey\\x7f\\xff\n"
                         "      |                   ^~~~~~~\n"
                         "hint: h\\x1b\n");
        struct strbuf js = STRBUF_INIT;
        diag_render_json(&d, &js);
        CHECK(strstr(js.buf, "\"message\": \"bad \\\\x1b]0;t\\\\x07 \\\\r\\\\n \\\\u0085\"") != NULL);
        CHECK(strchr(js.buf, 0x1b) == NULL && strstr(js.buf, "\xff") == NULL);
        strbuf_free(&js);
        diag_list_done(&d);
        source_free(src);
}

TEST(diag_caps_long_lines_and_messages) {
        size_t n = 3u << 20; /* a 3 MiB line */
        char *text = xmalloc(n + 1);
        memset(text, 'x', n);
        memcpy(text + n / 2, "HERE", 4);
        text[n] = 0;
        struct source *src = source_new("f", text, n);
        struct diag_list d = {0};
        struct diag *dg = diag_error(&d, &(struct mark){src, 1, (unsigned)(n / 2 + 1)}, 4, "v=%s", text);
        diag_hint(dg, "%s", text);
        _cleanup_free_ char *out = render(&d);
        CHECK(strlen(out) < 4 * DIAG_MSG_MAX);
        /* the caret stays under the text it points at */
        char *l1 = strchr(out, '\n') + 1, *l2 = strchr(l1, '\n') + 1;
        char *here = strstr(l1, "HERE");
        CHECK(here && here < l2);
        CHECK_INT((long)(strchr(l2, '^') - l2), ==, (long)(here - l1));
        CHECK(strncmp(strchr(l2, '^'), "^~~~\n", 5) == 0);
        CHECK(strstr(l1, " | ...x") != NULL && strstr(l1, "x...\n") != NULL);
        CHECK_INT((long)(l2 - l1), <=, DIAG_EXCERPT_COLS + 16);
        free(text);
        diag_list_done(&d);
        source_free(src);
}

TEST(diag_masks_secret_cut_by_the_storage_cap) {
        size_t n = DIAG_MSG_STORE_MAX + 5000;
        char *secret = xmalloc(n + 1);
        memset(secret, 'S', n);
        secret[n] = 0;
        struct diag_list d = {0};
        diag_add_secret(&d, secret, n);
        /* the message is stored cut inside the secret */
        diag_error(&d, NULL, 0, "v=%s", secret);
        _cleanup_free_ char *out = render(&d);
        CHECK(strstr(out, "SSSS") == NULL);
        CHECK(strstr(out, "v=<sensitive>...") != NULL);
        free(secret);
        diag_list_done(&d);
}

TEST(diag_redacts_sources_and_line_ranges) {
        const char *text = "a: 1\npw: s3cr\nb: 2\n";
        struct source *src = source_new("f", text, strlen(text));
        struct source *vf = source_new("vars", "pw: s3cr\n", 9);
        vf->redact = true;
        struct diag_list d = {0};
        diag_error(&d, &(struct mark){src, 2, 1}, 2, "in range");
        diag_error(&d, &(struct mark){vf, 1, 1}, 2, "var file");
        diag_error(&d, &(struct mark){src, 3, 1}, 1, "outside");
        /* registered after the diagnostics: still holds */
        diag_redact_lines(&d, src, 2, 2);
        _cleanup_free_ char *out = render(&d);
        CHECK(strstr(out, "s3cr") == NULL);
        CHECK(strstr(out, "f:2:1: error: in range\n") != NULL);
        CHECK(strstr(out, "vars:1:1: error: var file\n") != NULL);
        CHECK(strstr(out, "    3 | b: 2\n") != NULL);
        diag_list_done(&d);
        source_free(vf);
        source_free(src);
}

TEST(source_line_handles_edges) {
        const char *text = "one\ntwo\r\n\nlast";
        struct source *src = source_new("x", text, strlen(text));
        size_t n;
        const char *l = source_line(src, 2, &n);
        CHECK(l && n == 3 && strncmp(l, "two", 3) == 0);
        l = source_line(src, 3, &n);
        CHECK(l && n == 0);
        l = source_line(src, 4, &n);
        CHECK(l && n == 4);
        CHECK(source_line(src, 5, &n) == NULL);
        source_free(src);
}
