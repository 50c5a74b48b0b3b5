/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for spec/interp.c. Inputs go through yaml_load so that values
 * carry real marks and errors can be checked for line and column.
 */
#include "harness.h"

#include "base/diag.h"
#include "base/hash.h"
#include "spec/interp.h"
#include "spec/yaml.h"

#define TS "2026-11-21T20:28:48Z"

static struct value *str_sensitive(const char *s) {
        struct value *v = value_new_string(s, NULL);
        v->sensitive = true;
        return v;
}

/* var: {suite, packages, secret (sensitive), num}, build: {...}, timestamp. */
static struct value *make_scope(bool with_build) {
        struct value *scope = value_new(V_MAP, NULL);
        struct value *var = value_new(V_MAP, NULL);
        value_map_set(var, "suite", value_new_string("bookworm", NULL));
        struct value *pk = value_new(V_LIST, NULL);
        value_list_append(pk, value_new_string("a", NULL));
        value_list_append(pk, value_new_string("b", NULL));
        value_map_set(var, "packages", pk);
        value_map_set(var, "secret", str_sensitive("hunter2"));
        value_map_set(var, "num", value_new_number(3, NULL));
        value_map_set(scope, "var", var);
        if (with_build) {
                struct value *b = value_new(V_MAP, NULL);
                value_map_set(b, "name", value_new_string("c-x86_64", NULL));
                value_map_set(b, "arch", value_new_string("x86_64", NULL));
                value_map_set(b, "role", value_new_string("compute", NULL));
                value_map_set(scope, "build", b);
        }
        value_map_set(scope, "timestamp", value_new_string(TS, NULL));
        return scope;
}

struct run {
        struct source *src;
        struct value *scope, *doc, *out;
        struct diag_list d;
        char **files;
        size_t nfiles;
        int r;
};

static void run_full(struct run *t, const char *yaml, bool with_build, const char *base_dir) {
        *t = (struct run){0};
        t->scope = make_scope(with_build);
        t->src = source_new("t.yaml", yaml, strlen(yaml));
        if (yaml_load(t->src, &t->d, &t->doc) < 0) {
                test_fail(__FILE__, __LINE__, "YAML did not load: %s", yaml);
                t->r = -EBADMSG;
                return;
        }
        struct interp_env env = {t->scope, base_dir, &t->files, &t->nfiles, NULL};
        t->r = interp_value(t->doc, &env, &t->d, &t->out);
}

static void run(struct run *t, const char *yaml) {
        run_full(t, yaml, true, "/tmp");
}

static void run_done(struct run *t) {
        value_free(t->scope);
        value_free(t->doc);
        value_free(t->out);
        diag_list_done(&t->d);
        source_free(t->src);
        for (size_t i = 0; i < t->nfiles; i++)
                free(t->files[i]);
        free(t->files);
}

static const struct value *get(const struct run *t, const char *key) {
        return value_map_get(t->out, key);
}

/* Evaluates `a: SCALAR`; returns the resulting text, or "ERROR: msg" when
 * evaluation failed, or "KIND: ..." when the result is not a string. */
static char *eval_str(const char *scalar) {
        struct run t;
        _cleanup_free_ char *yaml = xasprintf("a: %s\n", scalar);
        run(&t, yaml);
        char *res;
        const struct value *a = get(&t, "a");
        if (t.r < 0 || t.d.nerrors)
                res = xasprintf("ERROR: %s", t.d.n ? t.d.v[0].msg : "?");
        else if (!a)
                res = xstrdup("MISSING");
        else if (a->kind != V_STRING)
                res = xasprintf("%s: %s", value_kind_name(a->kind), a->str ? a->str : "");
        else
                res = xstrdup(a->str);
        run_done(&t);
        return res;
}

/* The first diagnostic, or NULL. */
static const struct diag *first(const struct run *t) {
        return t->d.n ? &t->d.v[0] : NULL;
}

static const char *msg0(const struct run *t) {
        return t->d.n ? t->d.v[0].msg : NULL;
}

static const char *hint0(const struct run *t) {
        return t->d.n ? t->d.v[0].hint : NULL;
}

TEST(interp_has_expr_rules) {
        CHECK(interp_has_expr("${var.x}"));
        CHECK(interp_has_expr("a ${b} c"));
        CHECK(interp_has_expr("$${a} ${b}"));
        CHECK(!interp_has_expr("plain"));
        CHECK(!interp_has_expr("$HOME and $"));
        CHECK(!interp_has_expr("$${HOME}"));
        CHECK(!interp_has_expr("{x}"));
}

TEST(interp_plain_values_unchanged) {
        struct run t;
        run(&t, "s: plain text\nmode: 0644\nflag: true\nnothing: ~\n\"${k}\": v\nl: [x, 1]\n");
        CHECK_INT(t.r, ==, 0);
        CHECK_INT(t.d.nerrors, ==, 0);
        const struct value *mode = get(&t, "mode");
        CHECK(mode && mode->kind == V_NUMBER && streq(mode->str, "0644"));
        CHECK(get(&t, "flag") && get(&t, "flag")->kind == V_BOOL && get(&t, "flag")->b);
        CHECK(get(&t, "nothing") && get(&t, "nothing")->kind == V_NULL);
        CHECK(get(&t, "s") && get(&t, "s")->style == STYLE_PLAIN);
        /* keys are not interpolated */
        CHECK(get(&t, "${k}") && streq(get(&t, "${k}")->str, "v"));
        CHECK(get(&t, "l") && get(&t, "l")->n == 2);
        run_done(&t);
}

TEST(interp_concatenates_text_and_values) {
        _cleanup_free_ char *a = eval_str("x-${var.suite}-y");
        CHECK_STREQ(a, "x-bookworm-y");
        _cleanup_free_ char *b = eval_str("n=${var.num} ${ build . arch }");
        CHECK_STREQ(b, "n=3 x86_64");
        _cleanup_free_ char *c = eval_str("${var.suite}${build.role}");
        CHECK_STREQ(c, "bookwormcompute");
        _cleanup_free_ char *d = eval_str("'[${null}]'");
        CHECK_STREQ(d, "[]");
}

TEST(interp_dollar_dollar_is_literal) {
        _cleanup_free_ char *a = eval_str("'echo $${HOME} $PATH $ ${var.suite}'");
        CHECK_STREQ(a, "echo ${HOME} $PATH $ bookworm");
        /* a string holding only the escape is still unescaped */
        _cleanup_free_ char *b = eval_str("'$${HOME}/bin'");
        CHECK_STREQ(b, "${HOME}/bin");
        _cleanup_free_ char *c = eval_str("'cost: 5$'");
        CHECK_STREQ(c, "cost: 5$");
}

TEST(interp_whole_string_keeps_type) {
        struct run t;
        run(&t, "x: 1\na: ${var.packages}\nn: ${var.num}\nb: '${true}'\n");
        CHECK_INT(t.r, ==, 0);
        const struct value *a = get(&t, "a");
        CHECK(a && a->kind == V_LIST && a->n == 2);
        if (a && a->kind == V_LIST && a->n == 2) {
                CHECK_STREQ(a->items[0]->str, "a");
                CHECK_STREQ(a->items[1]->str, "b");
                /* the result points at where it was written */
                CHECK(a->mark.src == t.src);
                CHECK_INT(a->mark.line, ==, 2);
                CHECK_INT(a->mark.col, ==, 4);
                CHECK(!a->sensitive);
        }
        const struct value *n = get(&t, "n");
        CHECK(n && n->kind == V_NUMBER && n->num == 3);
        CHECK(get(&t, "b") && get(&t, "b")->kind == V_BOOL);
        run_done(&t);
}

TEST(interp_result_keeps_mark) {
        struct run t;
        run(&t, "a: 1\nb:\n  c: 'pre ${var.suite}'\n");
        const struct value *b = get(&t, "b");
        const struct value *c = value_map_get(b, "c");
        CHECK(c && streq(c->str, "pre bookworm"));
        CHECK(c && c->mark.line == 3 && c->mark.col == 6);
        CHECK(c && !c->invalid);
        run_done(&t);
}

TEST(interp_list_in_string_is_an_error) {
        struct run t;
        run(&t, "a: 'pkgs: ${var.packages}'\n");
        CHECK_INT(t.r, ==, -EINVAL);
        CHECK_INT(t.d.nerrors, ==, 1);
        CHECK_STREQ(msg0(&t), "cannot insert a list into a string");
        CHECK(hint0(&t) && strstr(hint0(&t), "join(\",\", var.packages)"));
        const struct value *a = get(&t, "a");
        /* kept as written, marked invalid */
        CHECK(a && a->invalid && streq(a->str, "pkgs: ${var.packages}"));
        /* located at the ${ (col 4 is the quote, text starts at 5) */
        CHECK(first(&t) && first(&t)->mark.col == 11);
        run_done(&t);
}

TEST(interp_undefined_variable_suggests) {
        struct run t;
        run(&t, "a: ${var.suit}\n");
        CHECK_INT(t.r, ==, -EINVAL);
        CHECK_STREQ(msg0(&t), "undefined variable 'suit'");
        CHECK_STREQ(hint0(&t), "did you mean 'suite'?");
        CHECK(first(&t) && first(&t)->mark.line == 1 && first(&t)->mark.col == 10);
        CHECK(first(&t) && first(&t)->span == 4);
        run_done(&t);

        run(&t, "a: ${var.zzzzzzzz}\n");
        CHECK_STREQ(msg0(&t), "undefined variable 'zzzzzzzz'");
        CHECK_STREQ(hint0(&t), "declare it under variables:");
        run_done(&t);

        /* the index form is a variable lookup too */
        run(&t, "a: '${var[\"suit\"]}'\n");
        CHECK_STREQ(msg0(&t), "undefined variable 'suit'");
        run_done(&t);
}

TEST(interp_unknown_field_located) {
        struct run t;
        run(&t, "a: \"${build.nmae}\"\n");
        CHECK_INT(t.r, ==, -EINVAL);
        CHECK_STREQ(msg0(&t), "'build' has no field 'nmae'");
        CHECK_STREQ(hint0(&t), "did you mean 'name'?");
        const struct diag *dg = first(&t);
        CHECK(dg && dg->mark.src == t.src);
        CHECK(dg && dg->mark.line == 1);
        CHECK(dg && dg->mark.col == 13); /* a: "${build.nmae}" — the n of nmae */
        CHECK(dg && dg->span == 4);
        run_done(&t);

        run(&t, "a: ${build.qqqqqqqq}\n");
        CHECK(hint0(&t) && strstr(hint0(&t), "name, arch, role"));
        run_done(&t);
}

TEST(interp_unknown_root_hints_escape) {
        struct run t;
        run(&t, "a: echo ${HOME}/x\n");
        CHECK_STREQ(msg0(&t), "unknown reference 'HOME'");
        CHECK(hint0(&t) && strstr(hint0(&t), "write $${HOME}"));
        CHECK(first(&t) && first(&t)->mark.col == 11 && first(&t)->span == 4);
        run_done(&t);

        run(&t, "a: ${vars.suite}\n");
        CHECK_STREQ(msg0(&t), "unknown reference 'vars'");
        CHECK_STREQ(hint0(&t), "did you mean 'var'?");
        run_done(&t);

        run(&t, "a: ${upper}\n");
        CHECK(hint0(&t) && strstr(hint0(&t), "upper(...)"));
        run_done(&t);
}

TEST(interp_build_not_available) {
        struct run t;
        run_full(&t, "a: ${build.name}\nb: ${matrix.x}\nc: ${var.suite}\n", false, "/tmp");
        CHECK_INT(t.r, ==, -EINVAL);
        CHECK_INT(t.d.nerrors, ==, 2);
        CHECK_STREQ(msg0(&t), "'build' is not available here");
        CHECK(hint0(&t) && strstr(hint0(&t), "matrix:"));
        CHECK(t.d.n == 2 && streq(t.d.v[1].msg, "'matrix' is not available here"));
        /* the rest of the tree is still evaluated */
        CHECK(get(&t, "c") && streq(get(&t, "c")->str, "bookworm"));
        CHECK(get(&t, "a") && get(&t, "a")->invalid);
        run_done(&t);
}

TEST(interp_timestamp_root_and_function) {
        _cleanup_free_ char *a = eval_str("${timestamp}");
        CHECK_STREQ(a, TS);
        _cleanup_free_ char *b = eval_str("'t=${timestamp()}'");
        CHECK_STREQ(b, "t=" TS);
        _cleanup_free_ char *c = eval_str("'${timestamp(1)}'");
        CHECK_STREQ(c, "ERROR: timestamp() takes 0 arguments, not 1");
}

TEST(interp_case_and_trim_functions) {
        _cleanup_free_ char *a = eval_str("'${lower(\"AbC-Ü\")}'");
        CHECK_STREQ(a, "abc-Ü");
        _cleanup_free_ char *b = eval_str("${upper(build.arch)}");
        CHECK_STREQ(b, "X86_64");
        _cleanup_free_ char *c = eval_str("'[${trimspace(\"  \\t x y \\n\")}]'");
        CHECK_STREQ(c, "[x y]");
        /* numbers and booleans are accepted as strings */
        _cleanup_free_ char *d = eval_str("'${upper(true)}${lower(42)}'");
        CHECK_STREQ(d, "TRUE42");
}

TEST(interp_replace_all_occurrences) {
        _cleanup_free_ char *a = eval_str("'${replace(\"a-b-c\", \"-\", \"::\")}'");
        CHECK_STREQ(a, "a::b::c");
        _cleanup_free_ char *b = eval_str("'${replace(var.suite, \"o\", \"\")}'");
        CHECK_STREQ(b, "bkwrm");
        _cleanup_free_ char *c = eval_str("'${replace(\"abc\", \"\", \"x\")}'");
        CHECK_STREQ(c, "ERROR: replace(): the text to replace must not be empty");
        _cleanup_free_ char *d = eval_str("'${replace(\"abc\", \"b\")}'");
        CHECK_STREQ(d, "ERROR: replace(s, old, new) takes 3 arguments, not 2");
}

TEST(interp_join_and_split) {
        _cleanup_free_ char *a = eval_str("'${join(\"-\", var.packages)}'");
        CHECK_STREQ(a, "a-b");
        _cleanup_free_ char *b = eval_str("'${join(\",\", var.suite)}'");
        CHECK_STREQ(b, "ERROR: join(): argument 2 must be a list, not a string");

        struct run t;
        run(&t, "a: '${split(\",\", \"x,y,,z\")}'\n");
        const struct value *a2 = get(&t, "a");
        CHECK(a2 && a2->kind == V_LIST && a2->n == 4);
        if (a2 && a2->kind == V_LIST && a2->n == 4) {
                CHECK_STREQ(a2->items[0]->str, "x");
                CHECK_STREQ(a2->items[2]->str, "");
                CHECK_STREQ(a2->items[3]->str, "z");
        }
        run_done(&t);

        _cleanup_free_ char *c = eval_str("'${split(\",\", \"p,q\")[1]}'");
        CHECK_STREQ(c, "q");
}

TEST(interp_sha256_hex) {
        _cleanup_free_ char *a = eval_str("'${sha256(\"abc\")}'");
        CHECK_STREQ(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        _cleanup_free_ char *b = eval_str("'${sha256(var.packages)}'");
        CHECK_STREQ(b, "ERROR: sha256(): argument 1 must be a string, not a list");
}

TEST(interp_sensitive_propagates) {
        struct run t;
        run(&t, "a: 'pw=${var.secret}'\nb: '${sha256(var.secret)}'\nc: '${var.suite}'\n"
                "d: '${var.secret}'\ne: 'h=${upper(sha256(var.secret))}'\nf: ${var}\n");
        CHECK_INT(t.r, ==, 0);
        const struct value *a = get(&t, "a"), *b = get(&t, "b"), *c = get(&t, "c");
        CHECK(a && a->sensitive && streq(a->str, "pw=hunter2"));
        char hex[SHA256_HEX_LEN + 1];
        CHECK_INT(hash_sha256_hex("hunter2", 7, hex), ==, 0);
        CHECK(b && b->sensitive && streq(b->str, hex));
        /* var holds a secret, but var.suite is not one */
        CHECK(c && !c->sensitive);
        CHECK(get(&t, "d") && get(&t, "d")->sensitive);
        CHECK(get(&t, "e") && get(&t, "e")->sensitive);
        CHECK(get(&t, "f") && get(&t, "f")->kind == V_MAP && get(&t, "f")->sensitive);
        run_done(&t);
}

TEST(interp_formatdate_formats) {
        _cleanup_free_ char *a = eval_str("'${formatdate(\"YYYY-MM-DD\", timestamp)}'");
        CHECK_STREQ(a, "2026-11-21");
        _cleanup_free_ char *b =
                eval_str("'${formatdate(\"EEEE, D MMMM YY hh:mm:ss ZZZ\", timestamp)}'");
        CHECK_STREQ(b, "Saturday, 21 November 26 20:28:48 UTC");
        _cleanup_free_ char *c = eval_str("'${formatdate(\"YYYYMMDD''T''hhmmssZ\", timestamp)}'");
        CHECK_STREQ(c, "20261121T202848Z");
        _cleanup_free_ char *d =
                eval_str("'${formatdate(\"EEE MMM M/D h:m:s HH:mm AA aa ZZZZ ZZZZZ\", "
                         "\"2024-02-09T05:07:03Z\")}'");
        CHECK_STREQ(d, "Fri Feb 2/9 5:7:3 05:07 AM am +0000 +00:00");
        _cleanup_free_ char *e =
                eval_str("'${formatdate(\"''at'' h''''\", \"2000-02-29T12:00:00.5Z\")}'");
        CHECK_STREQ(e, "at 12'");
        _cleanup_free_ char *f = eval_str("'${formatdate(\"H HH AA aa\", timestamp)}'");
        CHECK_STREQ(f, "8 08 PM pm");
}

/* A sensitive argument of formatdate() is never quoted, not one character
 * of it, also when derived (upper(var.secret)); the error is located. */
TEST(interp_formatdate_keeps_sensitive_arguments) {
        const char *cases[] = {
                "a: '${formatdate(var.secret, timestamp)}'\n",
                "a: '${formatdate(upper(var.secret), timestamp)}'\n",
                "a: '${formatdate(\"YYYY\", var.secret)}'\n",
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct run t;
                run(&t, cases[i]);
                CHECK(t.d.nerrors == 1 && first(&t) && first(&t)->mark.line == 1);
                struct strbuf sb = STRBUF_INIT;
                diag_render(&t.d, &sb, false);
                CHECK(strstr(sb.buf, "formatdate()") != NULL);
                /* 'h' is the first letter formatdate rejects in "hunter2";
                 * no quote of any part of it may appear */
                CHECK(strstr(sb.buf, "'h") == NULL && strstr(sb.buf, "'H") == NULL &&
                      strstr(sb.buf, "hunter") == NULL && strstr(sb.buf, "HUNTER") == NULL);
                strbuf_free(&sb);
                run_done(&t);
        }
}

TEST(interp_formatdate_errors) {
        struct run t;
        run(&t, "a: '${formatdate(\"YYYY-QQ\", timestamp)}'\n");
        CHECK_STREQ(msg0(&t), "formatdate(): unsupported sequence 'QQ' in the format");
        /* located at the format argument */
        CHECK(first(&t) && first(&t)->mark.col == 18);
        run_done(&t);

        _cleanup_free_ char *b = eval_str("'${formatdate(\"YYYY\", \"2026-13-01T00:00:00Z\")}'");
        CHECK_STREQ(b, "ERROR: formatdate(): '2026-13-01T00:00:00Z' is not an RFC 3339 UTC "
                       "timestamp");
        _cleanup_free_ char *c = eval_str("'${formatdate(\"YYYY\", \"2026-11-21 20:28:48\")}'");
        CHECK(c && startswith(c, "ERROR: formatdate(): '2026-11-21 20:28:48' is not"));
        _cleanup_free_ char *d = eval_str("'${formatdate(\"YYY\", timestamp)}'");
        CHECK(d && startswith(d, "ERROR: formatdate(): unsupported sequence 'YYY'"));
        _cleanup_free_ char *e = eval_str("'${formatdate(\"''open\", timestamp)}'");
        CHECK_STREQ(e, "ERROR: formatdate(): unterminated quote in the format");
}

TEST(interp_file_reads_relative_to_base_dir) {
        char path[] = "/tmp/kiln-test-interp-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        if (fd < 0)
                return;
        CHECK(write(fd, "hello\n", 6) == 6);
        close(fd);
        const char *name = path + strlen("/tmp/");

        struct run t;
        _cleanup_free_ char *yaml =
                xasprintf("a: '${file(\"%s\")}'\nb: '[${trimspace(file(\"%s\"))}]'\n", name, path);
        run_full(&t, yaml, true, "/tmp");
        CHECK_INT(t.r, ==, 0);
        CHECK(get(&t, "a") && streq(get(&t, "a")->str, "hello\n"));
        CHECK(get(&t, "b") && streq(get(&t, "b")->str, "[hello]"));
        /* recorded once, resolved against base_dir */
        CHECK_INT(t.nfiles, ==, 1);
        if (t.nfiles == 1)
                CHECK_STREQ(t.files[0], path);
        run_done(&t);
        unlink(path);
}

TEST(interp_file_missing_names_resolved_path) {
        struct run t;
        run_full(&t, "a: '${file(\"no-such-kiln-file\")}'\n", true, "/nonexistent-kiln-dir");
        CHECK_INT(t.r, ==, -EINVAL);
        CHECK(msg0(&t) && strstr(msg0(&t), "'/nonexistent-kiln-dir/no-such-kiln-file'"));
        CHECK(msg0(&t) && strstr(msg0(&t), strerror(ENOENT)));
        CHECK_INT(t.nfiles, ==, 0);
        /* located at the argument */
        CHECK(first(&t) && first(&t)->mark.col == 12);
        run_done(&t);
}

TEST(interp_coalesce) {
        _cleanup_free_ char *a = eval_str("'${coalesce(null, \"\", \"x\", \"y\")}'");
        CHECK_STREQ(a, "x");
        _cleanup_free_ char *b = eval_str("'v${coalesce(var.num, \"z\")}'");
        CHECK_STREQ(b, "v3");
        _cleanup_free_ char *c = eval_str("'${coalesce(\"\", null)}'");
        CHECK_STREQ(c, "ERROR: coalesce(): every argument is null or empty");
        _cleanup_free_ char *d = eval_str("'${coalesce()}'");
        CHECK_STREQ(d, "ERROR: coalesce(a, b, ...) takes at least 1 argument, not 0");

        struct run t;
        run(&t, "a: '${coalesce(null, var.packages)}'\n");
        CHECK(get(&t, "a") && get(&t, "a")->kind == V_LIST && get(&t, "a")->n == 2);
        run_done(&t);
}

TEST(interp_nested_calls) {
        _cleanup_free_ char *a =
                eval_str("'${upper(replace(lower(build.name), \"-\", \"_\"))}.img'");
        CHECK_STREQ(a, "C_X86_64.img");
        _cleanup_free_ char *b = eval_str("'${join(\"+\", split(\"-\", (build.name)))}'");
        CHECK_STREQ(b, "c+x86_64");
        _cleanup_free_ char *c = eval_str("'${substr(\"x\")}'");
        CHECK_STREQ(c, "ERROR: unknown function 'substr'");
}

TEST(interp_function_errors) {
        struct run t;
        run(&t, "a: ${lowr(var.suite)}\n");
        CHECK_STREQ(msg0(&t), "unknown function 'lowr'");
        CHECK_STREQ(hint0(&t), "did you mean 'lower'?");
        CHECK(first(&t) && first(&t)->mark.col == 6 && first(&t)->span == 4);
        run_done(&t);

        run(&t, "a: ${lower(var.packages)}\n");
        CHECK_STREQ(msg0(&t), "lower(): argument 1 must be a string, not a list");
        CHECK(first(&t) && first(&t)->mark.col == 12 && first(&t)->span == 12);
        run_done(&t);

        _cleanup_free_ char *c = eval_str("${lower()}");
        CHECK_STREQ(c, "ERROR: lower(s) takes 1 argument, not 0");
        _cleanup_free_ char *d = eval_str("'${split(\"\", \"abc\")}'");
        CHECK_STREQ(d, "ERROR: split(): the separator must not be empty");
}

TEST(interp_indexing) {
        _cleanup_free_ char *a = eval_str("'${var.packages[1]}'");
        CHECK_STREQ(a, "b");
        _cleanup_free_ char *b = eval_str("'${var[\"suite\"]}/${build[\"arch\"]}'");
        CHECK_STREQ(b, "bookworm/x86_64");
        _cleanup_free_ char *c = eval_str("'${var.packages[var.num]}'");
        CHECK_STREQ(c, "ERROR: index 3 is out of range for 'var.packages'");
        _cleanup_free_ char *d = eval_str("'${var.suite[0]}'");
        CHECK_STREQ(d, "ERROR: cannot index 'var.suite': it is a string, not a list or map");
        _cleanup_free_ char *e = eval_str("'${var.packages[\"x\"]}'");
        CHECK_STREQ(e, "ERROR: a list index must be a number, not a string");
        _cleanup_free_ char *f = eval_str("'${var.packages[0.5]}'");
        CHECK_STREQ(f, "ERROR: list index 0.5 is not a whole number");
        _cleanup_free_ char *g = eval_str("'${var.suite.x}'");
        CHECK_STREQ(g, "ERROR: cannot read field 'x' of 'var.suite': it is a string, not a map");
}

TEST(interp_syntax_errors_located) {
        struct run t;
        run(&t, "a: 'x ${var.suite'\n");
        CHECK_STREQ(msg0(&t), "unterminated ${");
        CHECK(first(&t) && first(&t)->mark.col == 7 && first(&t)->span == 2);
        run_done(&t);

        run(&t, "a: '${lower(var.suite}'\n");
        CHECK_STREQ(msg0(&t), "unexpected character '}'");
        CHECK(first(&t) && first(&t)->mark.col == 22);
        run_done(&t);

        run(&t, "a: '${(var.suite ]}'\n");
        CHECK_STREQ(msg0(&t), "expected ')'");
        CHECK(first(&t) && first(&t)->mark.col == 18);
        run_done(&t);

        run(&t, "a: '${var.suite + 1}'\n");
        CHECK_STREQ(msg0(&t), "unexpected character '+'");
        CHECK(first(&t) && first(&t)->mark.col == 17);
        run_done(&t);

        run(&t, "a: '${}'\n");
        CHECK_STREQ(msg0(&t), "expected an expression");
        CHECK(first(&t) && first(&t)->mark.col == 7);
        run_done(&t);

        run(&t, "a: '${lower(\"abc)}'\n");
        CHECK_STREQ(msg0(&t), "unterminated string");
        CHECK(first(&t) && first(&t)->mark.col == 13);
        run_done(&t);

        run(&t, "a: '${lower(\"a\\qb\")}'\n");
        CHECK_STREQ(msg0(&t), "unknown escape sequence");
        CHECK(first(&t) && first(&t)->mark.col == 15 && first(&t)->span == 2);
        run_done(&t);

        run(&t, "a: '${var.}'\n");
        CHECK_STREQ(msg0(&t), "unexpected character '}'");
        run_done(&t);
}

TEST(interp_block_scalar_error_line) {
        struct run t;
        run(&t, "steps:\n  - shell: |\n      echo one\n      echo ${var.nope} two\n");
        CHECK_INT(t.r, ==, -EINVAL);
        CHECK_STREQ(msg0(&t), "undefined variable 'nope'");
        const struct diag *dg = first(&t);
        CHECK(dg && dg->mark.line == 4);
        CHECK(dg && dg->mark.col == 18);
        run_done(&t);
}

TEST(interp_reports_every_error) {
        struct run t;
        run(&t, "a: '${foo} and ${var.nope} and ${var.suite}'\nb: [ok, '${bar}']\n");
        CHECK_INT(t.r, ==, -EINVAL);
        CHECK_INT(t.d.nerrors, ==, 3);
        const struct value *b = get(&t, "b");
        CHECK(b && b->kind == V_LIST && b->n == 2);
        if (b && b->n == 2) {
                CHECK(!b->items[0]->invalid && streq(b->items[0]->str, "ok"));
                CHECK(b->items[1]->invalid && streq(b->items[1]->str, "${bar}"));
        }
        run_done(&t);
}

TEST(interp_depth_is_capped) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "a: '${");
        strbuf_addch_n(&sb, '(', INTERP_MAX_DEPTH + 5);
        strbuf_adds(&sb, "1");
        strbuf_addch_n(&sb, ')', INTERP_MAX_DEPTH + 5);
        strbuf_adds(&sb, "}'\n");
        struct run t;
        run(&t, sb.buf);
        CHECK_INT(t.r, ==, -EINVAL);
        CHECK(msg0(&t) && strstr(msg0(&t), "nested more than"));
        run_done(&t);
        strbuf_free(&sb);

        /* within the cap it works */
        _cleanup_free_ char *a = eval_str("'${((((var.suite))))}'");
        CHECK_STREQ(a, "bookworm");
}

TEST(interp_literals_and_escapes) {
        _cleanup_free_ char *a = eval_str("'${\"a\\\"b\\\\c\"}'");
        CHECK_STREQ(a, "a\"b\\c");
        _cleanup_free_ char *b = eval_str("'x${replace(\"a b\", \" \", \"\\t\")}'");
        CHECK_STREQ(b, "xa\tb");
        _cleanup_free_ char *c = eval_str("${12.5}");
        CHECK_STREQ(c, "number: 12.5");
        _cleanup_free_ char *d = eval_str("${null}");
        CHECK_STREQ(d, "null: null");
}

TEST(interp_string_non_string_input) {
        struct value *n = value_new_number(7, NULL);
        struct value *out = NULL;
        struct diag_list d = {0};
        struct value *scope = make_scope(true);
        struct interp_env env = {scope, NULL, NULL, NULL, NULL};
        CHECK_INT(interp_string(n, &env, &d, &out), ==, 0);
        CHECK(out && out != n && out->kind == V_NUMBER && out->num == 7);
        value_free(out);
        value_free(n);

        /* files_read may be NULL; a scalar without a source still works */
        struct value *s = value_new_string("${var.suite}!", NULL);
        CHECK_INT(interp_string(s, &env, &d, &out), ==, 0);
        CHECK(out && streq(out->str, "bookworm!"));
        CHECK_INT(d.nerrors, ==, 0);
        value_free(out);
        value_free(s);
        value_free(scope);
        diag_list_done(&d);
}
