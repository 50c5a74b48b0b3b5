/* SPDX-License-Identifier: Apache-2.0 */
#include "harness.h"

#include "base/diag.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/strbuf.h"
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
