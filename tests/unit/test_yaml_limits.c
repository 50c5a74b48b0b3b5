/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the YAML loader's safety: anchors into dropped entries,
 * limits counted after alias expansion, input that costs quadratic time if
 * handled naively, and bytes that are not UTF-8. Pathological inputs are
 * generated with fixed, bounded sizes; no test asserts a time.
 */
#include "harness.h"

#include "spec/yaml.h"

struct loaded {
        struct source *src;
        struct diag_list d;
        struct value *v;
        int r;
};

static struct loaded load_n(const char *text, size_t len) {
        struct loaded l = {0};
        l.src = source_new("x.yaml", text, len);
        l.r = yaml_load(l.src, &l.d, &l.v);
        return l;
}

static struct loaded load(const char *text) { return load_n(text, strlen(text)); }

static void unload(struct loaded *l) {
        value_free(l->v);
        diag_list_done(&l->d);
        source_free(l->src);
}

/* The first error's message contains want and is at line:col. */
static bool first_error(const struct loaded *l, const char *want, unsigned line, unsigned col) {
        if (!l->d.n || !strstr(l->d.v[0].msg, want)) {
                fprintf(stderr, "    first error: %s\n", l->d.n ? l->d.v[0].msg : "(none)");
                return false;
        }
        if (l->d.v[0].mark.line != line || l->d.v[0].mark.col != col) {
                fprintf(stderr, "    at %u:%u, expected %u:%u\n", l->d.v[0].mark.line,
                        l->d.v[0].mark.col, line, col);
                return false;
        }
        return true;
}

/* ---- anchors never point at freed nodes -------------------------------------- */

TEST(yaml_alias_of_anchor_in_dropped_entries) {
        /* Each entry that the loader drops after reporting it carries an
         * anchor (on a map, a list, a scalar, or nested inside), which is
         * aliased afterwards. */
        static const struct {
                const char *text, *want;
                unsigned errors;
        } cases[] = {
                {"a: 1\na: &m {k: v}\nb: *m\n", "{k: v}", 1},
                {"a: 1\na: &m [1, 2]\nb: *m\n", "[1, 2]", 1},
                {"a: 1\na: &m text\nb: *m\n", "text", 1},
                {"a: {x: 1}\na: {x: {y: &m [deep]}}\nb: *m\n", "[deep]", 1},
                {"a: [1]\na: [[&m {k: [v]}]]\nb: *m\n", "{k: [v]}", 1},
                {"a: 1\n&k a: 2\nb: *k\n", "a", 1},
                {"<<: &m {k: v}\nb: *m\n", "{k: v}", 1},
                {"? &m [1, 2]\n: v\nb: *m\n", "[1, 2]", 1},
                {"? [1]\n: &m {k: v}\nb: *m\n", "{k: v}", 1},
                {"x: {a: 1, a: &m [1], b: *m, b: &n {c: *m}}\ny: *n\n", "{c: [1]}", 2},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct loaded l = load(cases[i].text);
                CHECK_INT(l.r, ==, 0);
                CHECK_INT(l.d.nerrors, ==, cases[i].errors);
                const struct value *b = value_map_get(l.v, l.v && value_map_get(l.v, "y") ? "y" : "b");
                CHECK(b != NULL);
                if (b) {
                        struct strbuf sb = STRBUF_INIT;
                        value_format(b, &sb);
                        CHECK_STREQ(sb.buf, cases[i].want);
                        strbuf_free(&sb);
                }
                unload(&l);
        }
}

TEST(yaml_anchored_key_keeps_its_type_for_aliases) {
        struct loaded l = load("? &n 5\n: five\nb: *n\n");
        CHECK_INT(l.r, ==, 0);
        CHECK_INT(l.d.nerrors, ==, 0);
        CHECK_INT(l.v->keys[0]->kind, ==, V_STRING);
        CHECK_INT(value_map_get(l.v, "b")->kind, ==, V_NUMBER);
        unload(&l);
}

/* ---- limits count what aliases expand to ------------------------------------ */

TEST(yaml_alias_text_is_capped_in_bytes) {
        /* x:
         *   - &s "<1 MiB>"
         *   - *s          (line 3 onwards) */
        const size_t big = 1u << 20;
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "x:\n- &s \"");
        strbuf_addch_n(&sb, 'A', big);
        strbuf_adds(&sb, "\"\n");
        for (unsigned i = 0; i < 64; i++)
                strbuf_adds(&sb, "- *s\n");
        struct loaded l = load_n(sb.buf, sb.len);
        CHECK_INT(l.r, ==, -E2BIG);
        CHECK(l.v == NULL);
        /* "x" plus the scalar plus k copies cross the limit at copy k: */
        unsigned k = (unsigned)((YAML_MAX_EXPANDED_BYTES - 1 - big) / big) + 1;
        CHECK(first_error(&l, "MiB of text", 2 + k, 3));
        unload(&l);
        strbuf_free(&sb);
}

TEST(yaml_alias_text_cap_counts_nested_copies) {
        /* 4 KiB, copied 8 times per level: 4 KiB * 8^5 > the limit, with a
         * file of a few KiB and a few thousand values. */
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "l0: &l0 \"");
        strbuf_addch_n(&sb, 'B', 4096);
        strbuf_adds(&sb, "\"\n");
        for (unsigned lvl = 1; lvl <= 6; lvl++) {
                strbuf_addf(&sb, "l%u: &l%u [", lvl, lvl);
                for (unsigned i = 0; i < 8; i++)
                        strbuf_addf(&sb, "%s*l%u", i ? ", " : "", lvl - 1);
                strbuf_adds(&sb, "]\n");
        }
        struct loaded l = load_n(sb.buf, sb.len);
        CHECK_INT(l.r, ==, -E2BIG);
        CHECK(l.d.nerrors == 1 && strstr(l.d.v[0].msg, "MiB of text"));
        CHECK(l.d.nerrors == 1 && l.d.v[0].mark.line == 6);
        unload(&l);
        strbuf_free(&sb);
}

TEST(yaml_alias_nesting_is_capped) {
        /* A 40-level list, aliased 30 levels deep: 70 levels. */
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "a: &deep ");
        strbuf_addch_n(&sb, '[', 40);
        strbuf_addch_n(&sb, ']', 40);
        strbuf_adds(&sb, "\nb: ");
        strbuf_addch_n(&sb, '[', 29);
        strbuf_adds(&sb, "*deep");
        strbuf_addch_n(&sb, ']', 29);
        strbuf_adds(&sb, "\n");
        struct loaded l = load_n(sb.buf, sb.len);
        CHECK_INT(l.r, ==, -E2BIG);
        CHECK(first_error(&l, "nesting deeper than", 2, 4 + 29));
        unload(&l);
        strbuf_free(&sb);
}

/* ---- no quadratic work --------------------------------------------------------- */

#define MANY 150000

TEST(yaml_many_anchors_and_aliases_load) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "x:\n");
        for (unsigned i = 0; i < MANY; i++)
                strbuf_addf(&sb, "- &a%u v%u\n", i, i);
        for (unsigned i = 0; i < MANY; i++)
                strbuf_addf(&sb, "- *a%u\n", i);
        /* An anchor defined again means the newer node from there on. */
        strbuf_adds(&sb, "- &a7 again\n- *a7\n");
        struct loaded l = load_n(sb.buf, sb.len);
        CHECK_INT(l.r, ==, 0);
        CHECK_INT(l.d.nerrors, ==, 0);
        const struct value *x = value_map_get(l.v, "x");
        CHECK(x && x->n == 2 * MANY + 2);
        if (x && x->n == 2 * MANY + 2) {
                CHECK_STREQ(x->items[MANY + 12345]->str, "v12345");
                CHECK_STREQ(x->items[2 * MANY + 1]->str, "again");
        }
        unload(&l);
        strbuf_free(&sb);
}

TEST(yaml_many_keys_in_one_map_load_and_duplicates_are_found) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "x:\n");
        for (unsigned i = 0; i < MANY; i++)
                strbuf_addf(&sb, "  k%u: v\n", i);
        strbuf_adds(&sb, "  k4321: again\n");
        struct loaded l = load_n(sb.buf, sb.len);
        CHECK_INT(l.r, ==, 0);
        CHECK_INT(l.d.nerrors, ==, 1);
        CHECK(first_error(&l, "duplicate key 'k4321'", MANY + 2, 3));
        CHECK(l.d.n && l.d.v[0].hint && strstr(l.d.v[0].hint, "line 4323"));
        CHECK(value_map_get(l.v, "x") && value_map_get(l.v, "x")->n == MANY);
        unload(&l);
        strbuf_free(&sb);
}

TEST(yaml_directives_are_capped) {
        /* libyaml compares each %TAG with every earlier one. Lines may end
         * in CR alone, which libyaml counts as line breaks too. */
        static const char *const ends[] = {"\n", "\r", "\r\n"};
        for (size_t e = 0; e < ARRAY_SIZE(ends); e++) {
                struct strbuf sb = STRBUF_INIT;
                for (unsigned i = 0; i < 30000; i++)
                        strbuf_addf(&sb, "%%TAG !t%u! tag:example.org,2024:%u%s", i, i, ends[e]);
                strbuf_addf(&sb, "---%sa: 1%s", ends[e], ends[e]);
                struct loaded l = load_n(sb.buf, sb.len);
                CHECK_INT(l.r, ==, -E2BIG);
                CHECK(first_error(&l, "YAML directives", YAML_MAX_DIRECTIVES + 1, 1));
                unload(&l);
                strbuf_free(&sb);
        }
        struct loaded l = load("%YAML 1.1\n---\na: 1\n");
        CHECK_INT(l.r, ==, 0);
        unload(&l);
}

/* ---- text that is not UTF-8 ---------------------------------------------------- */

TEST(yaml_bad_bytes_are_located) {
        static const struct {
                const char *text;
                size_t len;
                const char *want;
                unsigned line, col;
        } cases[] = {
#define C(t, w, l, c) {t, sizeof(t) - 1, w, l, c}
                C("a: 1\nb:\n  desc\xff: x\n", "byte 0xff", 3, 7),
                C("a: 1\r\nb: \xc3\x28\r\n", "byte 0xc3", 2, 4),
                C("a: 1\nb: x\xf0\x9f\x98z\n", "byte 0xf0", 2, 5),
                C("a: 1\rb: 2\rc: \x80\r", "byte 0x80", 3, 4),
                C("a: \xe2\x82\xac\xe2\x82\xac \xc0\xaf\n", "UTF-8", 1, 7),
                C("a: 1\nb: x\xe2\x82", "ends inside a character (byte 0xe2)", 2, 5),
                C("a: 1\nb: \"\xed\xa0\x80\"\n", "UTF-8", 2, 5),
                C("a: 1\nbb: x\0y\n", "NUL", 2, 6),
                C("a: \xc2\x85" "b: \x1b[31m\n", "U+001B", 2, 4),
                C("\xef\xbb\xbf" "a: \xff\n", "byte 0xff", 1, 4),
#undef C
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct loaded l = load_n(cases[i].text, cases[i].len);
                CHECK_INT(l.r, ==, -EBADMSG);
                CHECK_INT(l.d.nerrors, ==, 1);
                CHECK(first_error(&l, cases[i].want, cases[i].line, cases[i].col));
                unload(&l);
        }
}

TEST(yaml_utf8_bom_is_read) {
        struct loaded l = load("\xef\xbb\xbf" "a: 1\nb: \xc3\xa9t\xc3\xa9\n");
        CHECK_INT(l.r, ==, 0);
        CHECK_INT(l.d.nerrors, ==, 0);
        CHECK_STREQ(value_map_get(l.v, "b")->str, "\xc3\xa9t\xc3\xa9");
        unload(&l);
}

TEST(yaml_utf16_and_utf32_are_refused_clearly) {
        static const struct {
                const char *text;
                size_t len;
                const char *want;
        } cases[] = {
#define C(t, w) {t, sizeof(t) - 1, w}
                C("\xff\xfe" "a\0:\0 \0" "1\0\n\0", "UTF-16 (little-endian)"),
                C("\xfe\xff" "\0a\0:\0 \0" "1\0\n", "UTF-16 (big-endian)"),
                C("a\0:\0 \0" "1\0\n\0", "UTF-16 (little-endian)"),
                C("\0a\0:\0 \0" "1\0\n", "UTF-16 (big-endian)"),
                C("\xff\xfe\0\0" "a\0\0\0:\0\0\0", "UTF-32 (little-endian)"),
                C("\0\0\xfe\xff" "\0\0\0a\0\0\0:", "UTF-32 (big-endian)"),
                C("a\0\0\0:\0\0\0", "UTF-32 (little-endian)"),
                C("\0\0\0a\0\0\0:", "UTF-32 (big-endian)"),
#undef C
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct loaded l = load_n(cases[i].text, cases[i].len);
                CHECK_INT(l.r, ==, -EBADMSG);
                CHECK_INT(l.d.nerrors, ==, 1);
                CHECK(first_error(&l, cases[i].want, 1, 1));
                CHECK(l.d.n && strstr(l.d.v[0].msg, "kiln reads UTF-8"));
                unload(&l);
        }
}
