/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bounded JSON reader (base/json_read.h): well-formed documents come
 * back as a tree with offsets; hostile ones (deep nesting, huge strings,
 * many elements, truncation, bad UTF-8 and escapes) fail with the
 * documented error and offset, and json_validate agrees with json_parse.
 */
#include "harness.h"

#include "base/json_read.h"
#include "base/strbuf.h"

/* Parses and validates text with o; both must return the same code and
 * offset. Returns the code; the tree is freed. */
static int both(const char *text, size_t len, const struct json_read_opts *o, size_t *ret_off) {
        struct json_value *v = NULL;
        size_t off1 = 99999, off2 = 77777;
        int r1 = json_parse(text, len, o, &v, &off1);
        int r2 = json_validate(text, len, o, &off2);
        CHECK_INT(r1, ==, r2);
        CHECK_INT(off1, ==, off2);
        CHECK((r1 == 0) == (v != NULL));
        json_value_free(v);
        if (ret_off)
                *ret_off = off1;
        return r1;
}

TEST(json_read_builds_a_tree_with_offsets) {
        const char *text = " {\"name\": \"caf\\u00e9 \\ud83d\\ude00\", \"size\": 1234,\n"
                           "  \"files\": [1, -2.5e3, true, false, null, {}], \"neg\": -9,"
                           " \"name\": \"second\"} ";
        struct json_value *doc = NULL;
        size_t off = 1;
        CHECK_INT(json_parse(text, strlen(text), NULL, &doc, &off), ==, 0);
        CHECK_INT(off, ==, 0);
        CHECK(doc && doc->type == JSON_OBJECT);
        CHECK_INT(doc->offset, ==, 1);
        CHECK_INT(doc->n, ==, 5);
        CHECK_STREQ(json_str(json_get(doc, "name")), "caf\xc3\xa9 \xf0\x9f\x98\x80"); /* first wins */
        uint64_t u = 0;
        CHECK_INT(json_u64(json_get(doc, "size"), &u), ==, 0);
        CHECK_INT(u, ==, 1234);
        const struct json_value *files = json_get(doc, "files");
        CHECK(files && files->type == JSON_ARRAY && files->n == 6);
        CHECK_INT(files->items[0]->offset, ==, (size_t)(strstr(text, "[1") + 1 - text));
        CHECK_STREQ(files->items[1]->str, "-2.5e3");
        CHECK_INT(json_u64(files->items[1], &u), ==, -EBADMSG); /* not an integer */
        CHECK_INT(files->items[2]->type, ==, JSON_TRUE);
        CHECK_INT(files->items[3]->type, ==, JSON_FALSE);
        CHECK_INT(files->items[4]->type, ==, JSON_NULL);
        CHECK(files->items[5]->type == JSON_OBJECT && files->items[5]->n == 0);
        int64_t i = 0;
        CHECK_INT(json_i64(json_get(doc, "neg"), &i), ==, 0);
        CHECK_INT(i, ==, -9);
        CHECK_INT(json_u64(json_get(doc, "neg"), &u), ==, -EBADMSG);
        CHECK(json_get(doc, "missing") == NULL);
        CHECK(json_get(files, "name") == NULL); /* not an object */
        CHECK(json_str(json_get(doc, "size")) == NULL); /* not a string */
        json_value_free(doc);
        CHECK(json_value_free(NULL) == NULL);
}

TEST(json_read_integers_at_their_limits) {
        static const struct {
                const char *text;
                int r64, ru64;
        } cases[] = {
                {"9223372036854775807", 0, 0},       {"9223372036854775808", -ERANGE, 0},
                {"-9223372036854775808", 0, -EBADMSG}, {"-9223372036854775809", -ERANGE, -EBADMSG},
                {"18446744073709551615", -ERANGE, 0}, {"18446744073709551616", -ERANGE, -ERANGE},
                {"-0", 0, 0},                        {"1e2", -EBADMSG, -EBADMSG},
        };
        for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
                struct json_value *v = NULL;
                CHECK_INT(json_parse(cases[k].text, strlen(cases[k].text), NULL, &v, NULL), ==, 0);
                int64_t i = 42;
                uint64_t u = 42;
                CHECK_INT(json_i64(v, &i), ==, cases[k].r64);
                CHECK_INT(json_u64(v, &u), ==, cases[k].ru64);
                if (cases[k].r64 < 0)
                        CHECK_INT(i, ==, 42); /* untouched on error */
                json_value_free(v);
        }
        struct json_value *v = NULL;
        CHECK_INT(json_parse("-9223372036854775808", 20, NULL, &v, NULL), ==, 0);
        int64_t i = 0;
        CHECK_INT(json_i64(v, &i), ==, 0);
        CHECK(i == INT64_MIN);
        json_value_free(v);
}

TEST(json_read_refuses_malformed_text) {
        static const char *const bad[] = {
                "",        " ",          "{",          "[1,]",       "[,1]",       "{\"a\":1,}",
                "{\"a\" 1}", "{a:1}",    "{1:2}",      "'x'",        "01",         "1.",
                ".5",      "1e",         "-",          "+1",         "NaN",        "tru",
                "nulll",   "[1 2]",      "{} {}",      "1 x",        "\"a",        "\"\\x\"",
                "\"\\u12\"", "\"\\u12g4\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
                "\"tab\there\"", "\"nl\nx\"", "[1]]",   "// c\n1",    "[\"a\"\"b\"]",
        };
        for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
                size_t off = 0;
                int r = both(bad[k], strlen(bad[k]), NULL, &off);
                if (r != -EBADMSG)
                        test_fail(__FILE__, __LINE__, "'%s': %d, not -EBADMSG", bad[k], r);
                CHECK(off <= strlen(bad[k]));
        }
        /* the offset points at the problem */
        size_t off = 0;
        CHECK_INT(both("[1, 2, x]", 9, NULL, &off), ==, -EBADMSG);
        CHECK_INT(off, ==, 7);
        CHECK_INT(both("{\"a\": 1} trailing", 17, NULL, &off), ==, -EBADMSG);
        CHECK_INT(off, ==, 9);
        /* NUL inside the text is not white space */
        CHECK_INT(both("1\0", 2, NULL, &off), ==, -EBADMSG);
        CHECK_INT(off, ==, 1);
        CHECK_INT(json_parse(NULL, 3, NULL, &(struct json_value *){NULL}, NULL), ==, -EINVAL);
        CHECK_INT(json_parse("1", 1, NULL, NULL, NULL), ==, -EINVAL);
}

TEST(json_read_every_truncation_of_a_document_fails) {
        const char *text = "{\"a\": [1, 2.5e-3, \"x\\u00e9\\ud83d\\ude00\", {\"b\": null}], \"c\": true}";
        size_t n = strlen(text);
        CHECK_INT(both(text, n, NULL, NULL), ==, 0);
        for (size_t cut = 0; cut < n; cut++) {
                int r = both(text, cut, NULL, NULL);
                if (r != -EBADMSG)
                        test_fail(__FILE__, __LINE__, "cut at %zu: %d", cut, r);
        }
}

TEST(json_read_bounds_nesting_depth) {
        struct strbuf sb = STRBUF_INIT;
        for (unsigned k = 0; k < JSON_READ_MAX_DEPTH; k++)
                strbuf_adds(&sb, k % 2 ? "{\"k\":" : "[");
        strbuf_adds(&sb, "1");
        for (unsigned k = JSON_READ_MAX_DEPTH; k-- > 0;)
                strbuf_adds(&sb, k % 2 ? "}" : "]");
        CHECK_INT(both(sb.buf, sb.len, NULL, NULL), ==, 0); /* exactly the limit */
        strbuf_reset(&sb);
        /* hostile: a million opening brackets, never closed */
        strbuf_addch_n(&sb, '[', 1000000);
        size_t off = 0;
        CHECK_INT(both(sb.buf, sb.len, NULL, &off), ==, -E2BIG);
        CHECK_INT(off, ==, JSON_READ_MAX_DEPTH);
        /* a smaller limit from the caller */
        struct json_read_opts o = {.max_depth = 2};
        CHECK_INT(both("[[1]]", 5, &o, NULL), ==, 0);
        CHECK_INT(both("[[[1]]]", 7, &o, NULL), ==, -E2BIG);
        strbuf_free(&sb);
}

TEST(json_read_bounds_sizes_strings_and_elements) {
        /* a huge string: over the limit by one decoded byte */
        size_t n = JSON_READ_MAX_STRING + 1;
        char *big = xmalloc(n + 3);
        big[0] = '"';
        memset(big + 1, 'a', n);
        big[n + 1] = '"';
        big[n + 2] = 0;
        size_t off = 5;
        CHECK_INT(both(big, n + 2, NULL, &off), ==, -E2BIG);
        CHECK_INT(off, ==, 0);
        CHECK_INT(both(big + 1, n - 1, NULL, NULL), ==, -EBADMSG); /* not a value */
        big[n] = '"'; /* exactly the limit */
        CHECK_INT(both(big, n + 1, NULL, NULL), ==, 0);
        free(big);
        /* escapes count decoded: six \u00e9 are 12 bytes */
        struct json_read_opts o = {.max_string = 11};
        const char *esc = "\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"";
        CHECK_INT(both(esc, strlen(esc), &o, NULL), ==, -E2BIG);
        o.max_string = 12;
        CHECK_INT(both(esc, strlen(esc), &o, NULL), ==, 0);
        /* keys are strings too */
        o.max_string = 3;
        CHECK_INT(both("{\"abcd\": 1}", 11, &o, NULL), ==, -E2BIG);
        /* the text's size */
        o = (struct json_read_opts){.max_bytes = 4};
        CHECK_INT(both("[1,2]", 5, &o, &off), ==, -E2BIG);
        CHECK_INT(off, ==, 4);
        CHECK_INT(both("[12]", 4, &o, NULL), ==, 0);
        /* elements: an array of 4 holds 5 values */
        o = (struct json_read_opts){.max_elements = 4};
        CHECK_INT(both("[1,2,3]", 7, &o, NULL), ==, 0);
        CHECK_INT(both("[1,2,3,4]", 9, &o, &off), ==, -E2BIG);
        CHECK_INT(off, ==, 7);
        CHECK_INT(both("{\"a\":1,\"b\":2,\"c\":3}", 19, &o, NULL), ==, 0); /* members count once */
}

TEST(json_read_checks_utf8_and_escapes) {
        static const char *const invalid[] = {
                "\"\xc0\x80\"",         /* overlong NUL */
                "\"\xe0\x80\xaf\"",     /* overlong '/' */
                "\"\xed\xa0\x80\"",     /* a surrogate, encoded */
                "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
                "\"\xf5\x80\x80\x80\"", "\"\xff\"", "\"\x80\"",
                "\"\xe2\x82\"",         /* cut short */
                "\"\xe2\x28\xa1\"",     /* a bad continuation byte */
        };
        for (size_t k = 0; k < ARRAY_SIZE(invalid); k++) {
                size_t off = 0;
                if (both(invalid[k], strlen(invalid[k]), NULL, &off) != -EBADMSG)
                        test_fail(__FILE__, __LINE__, "invalid UTF-8 #%zu accepted", k);
                CHECK_INT(off, ==, 1);
                /* raw_bytes keeps them as they are */
                struct json_read_opts raw = {.raw_bytes = true};
                struct json_value *v = NULL;
                CHECK_INT(json_parse(invalid[k], strlen(invalid[k]), &raw, &v, NULL), ==, 0);
                CHECK(v && v->len == strlen(invalid[k]) - 2 &&
                      memcmp(v->str, invalid[k] + 1, v->len) == 0);
                json_value_free(v);
        }
        /* valid multi-byte text, and every escape */
        const char *ok = "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041\\uD83D\\uDE00\"";
        struct json_value *v = NULL;
        CHECK_INT(json_parse(ok, strlen(ok), NULL, &v, NULL), ==, 0);
        CHECK_STREQ(json_str(v), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \" \\ / \b \f \n \r \t A\xf0\x9f\x98\x80");
        json_value_free(v);
        /* \u0000 decodes, but json_str never hands out a cut C string */
        CHECK_INT(json_parse("\"a\\u0000b\"", 10, NULL, &v, NULL), ==, 0);
        CHECK_INT(v->len, ==, 3);
        CHECK(json_str(v) == NULL);
        json_value_free(v);
        CHECK_INT(json_parse("{\"a\\u0000b\": 1}", 15, NULL, &v, NULL), ==, 0);
        CHECK(json_get(v, "a") == NULL); /* the key is "a\0b", not "a" */
        json_value_free(v);
}
