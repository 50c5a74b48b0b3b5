/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the spec layer: loader, schema, variables, builds. */
#include "harness.h"

#include "spec/render.h"
#include "spec/schema.h"
#include "spec/spec.h"
#include "spec/yaml.h"

#include <stdint.h>
#include <sys/stat.h>

/* ---- helpers --------------------------------------------------------------- */

static char tmpdir[64];

static const char *tmp_path(const char *name) {
        static char buf[256];
        if (!tmpdir[0]) {
                strcpy(tmpdir, "/tmp/kiln-unit-XXXXXX");
                if (!mkdtemp(tmpdir))
                        abort();
        }
        snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
        return buf;
}

static char *write_tmp(const char *name, const char *text) {
        char *p = xstrdup(tmp_path(name));
        FILE *f = fopen(p, "w");
        if (!f)
                abort();
        fputs(text, f);
        fclose(f);
        return p;
}

struct loaded {
        struct spec *s;
        struct diag_list d;
        int r;
        char *path;
};

static struct loaded load_opts(const char *text, struct spec_options o) {
        struct loaded l = {0};
        l.path = write_tmp("spec.yaml", text);
        o.path = l.path;
        if (!o.now)
                o.now = 1700000000; /* 2023-11-14T22:13:20Z */
        l.r = spec_load(&o, &l.d, &l.s);
        diag_sort(&l.d);
        return l;
}

static struct loaded load(const char *text) { return load_opts(text, (struct spec_options){0}); }

static void unload(struct loaded *l) {
        spec_free(l->s);
        diag_list_done(&l->d);
        unlink(l->path);
        free(l->path);
}

static bool has_diag(const struct loaded *l, unsigned line, unsigned col, const char *needle) {
        for (size_t i = 0; i < l->d.n; i++)
                if (l->d.v[i].mark.line == line && l->d.v[i].mark.col == col &&
                    strstr(l->d.v[i].msg, needle))
                        return true;
        return false;
}

static const struct spec_var *var(const struct spec *s, const char *name) {
        for (size_t i = 0; i < s->nvars; i++)
                if (streq(s->vars[i].name, name))
                        return &s->vars[i];
        return NULL;
}

#define SRC "    source: {type: debian, suite: bookworm}\n"

/* ---- YAML loader -------------------------------------------------------------- */

TEST(yaml_types_follow_yaml_1_2_core) {
        const char *t = "a: yes\nb: true\nc: 0644\nd: '12'\ne: ~\nf: 1.5e3\ng: 0x1F\nh: .inf\n";
        struct source *src = source_new("x.yaml", t, strlen(t));
        struct diag_list d = {0};
        struct value *v = NULL;
        CHECK_INT(yaml_load(src, &d, &v), ==, 0);
        CHECK_INT(value_map_get(v, "a")->kind, ==, V_STRING);
        CHECK_INT(value_map_get(v, "b")->kind, ==, V_BOOL);
        CHECK(value_map_get(v, "b")->b);
        CHECK_INT(value_map_get(v, "c")->kind, ==, V_NUMBER);
        CHECK_STREQ(value_map_get(v, "c")->str, "0644");
        CHECK_INT(value_map_get(v, "d")->kind, ==, V_STRING);
        CHECK_INT(value_map_get(v, "e")->kind, ==, V_NULL);
        CHECK(value_map_get(v, "f")->num == 1500.0);
        CHECK(value_map_get(v, "g")->num == 31.0);
        CHECK_INT(value_map_get(v, "h")->kind, ==, V_NUMBER);
        CHECK_INT(value_map_get(v, "d")->mark.line, ==, 4);
        CHECK_INT(value_map_get(v, "d")->mark.col, ==, 4);
        value_free(v);
        diag_list_done(&d);
        source_free(src);
}

TEST(yaml_reads_json_with_tabs) {
        const char *t = "{\n\t\"builds\": {\"a\": [1, true, null]}\n}\n";
        struct source *src = source_new("x.json", t, strlen(t));
        struct diag_list d = {0};
        struct value *v = NULL;
        CHECK_INT(yaml_load(src, &d, &v), ==, 0);
        const struct value *a = value_map_get(value_map_get(v, "builds"), "a");
        CHECK(a && a->kind == V_LIST && a->n == 3);
        CHECK_INT(a->items[1]->kind, ==, V_BOOL);
        CHECK_INT(a->mark.line, ==, 2);
        value_free(v);
        diag_list_done(&d);
        source_free(src);
}

TEST(yaml_reports_duplicates_and_keeps_going) {
        const char *t = "a: 1\nb: 2\na: 3\n";
        struct source *src = source_new("x.yaml", t, strlen(t));
        struct diag_list d = {0};
        struct value *v = NULL;
        CHECK_INT(yaml_load(src, &d, &v), ==, 0);
        CHECK_INT(d.nerrors, ==, 1);
        CHECK_INT(d.v[0].mark.line, ==, 3);
        CHECK(strstr(d.v[0].msg, "duplicate key 'a'"));
        CHECK_STREQ(value_map_get(v, "a")->str, "1");
        value_free(v);
        diag_list_done(&d);
        source_free(src);
}

TEST(yaml_syntax_error_is_located) {
        const char *t = "a: 1\nb: [1, 2\nc: 3\n";
        struct source *src = source_new("x.yaml", t, strlen(t));
        struct diag_list d = {0};
        struct value *v = NULL;
        CHECK_INT(yaml_load(src, &d, &v), ==, -EBADMSG);
        CHECK(v == NULL);
        CHECK_INT(d.nerrors, ==, 1);
        CHECK_INT(d.v[0].mark.line, >=, 2);
        diag_list_done(&d);
        source_free(src);
}

TEST(yaml_aliases_expand_and_are_capped) {
        const char *t = "a: &x [1, 2]\nb: *x\n";
        struct source *src = source_new("x.yaml", t, strlen(t));
        struct diag_list d = {0};
        struct value *v = NULL;
        CHECK_INT(yaml_load(src, &d, &v), ==, 0);
        CHECK_INT(value_map_get(v, "b")->n, ==, 2);
        value_free(v);
        source_free(src);
        /* "billion laughs": 10 levels of 10 aliases each */
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (int i = 1; i < 10; i++)
                strbuf_addf(&sb, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                            i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        src = source_new("bomb.yaml", sb.buf, sb.len);
        v = NULL;
        CHECK_INT(yaml_load(src, &d, &v), ==, -E2BIG);
        CHECK(v == NULL);
        strbuf_free(&sb);
        diag_list_done(&d);
        source_free(src);
}

/* ---- schema scalars --------------------------------------------------------------- */

TEST(schema_parses_sizes_durations_modes) {
        uint64_t n;
        unsigned m;
        CHECK(parse_size("4G", &n) == 0 && n == 4ull << 30);
        CHECK(parse_size("100MiB", &n) == 0 && n == 100ull << 20);
        CHECK(parse_size("1.5GB", &n) == 0 && n == 1500000000ull);
        CHECK(parse_size("512", &n) == 0 && n == 512);
        CHECK(parse_size("4Q", &n) < 0);
        CHECK(parse_size("G", &n) < 0);
        CHECK(parse_duration("90s", &n) == 0 && n == 90);
        CHECK(parse_duration("1h30m", &n) == 0 && n == 5400);
        CHECK(parse_duration("45", &n) == 0 && n == 45);
        CHECK(parse_duration("soon", &n) < 0);
        CHECK(parse_duration("10x", &n) < 0);
        CHECK(parse_mode("0644", &m) == 0 && m == 0644);
        CHECK(parse_mode("755", &m) == 0 && m == 0755);
        CHECK(parse_mode("0999", &m) < 0);
}

/* ---- variables -------------------------------------------------------------------- */

TEST(vars_precedence_default_file_env_cli) {
        const char *spec = "variables:\n"
                           "  a: {default: d}\n  b: {default: d}\n  c: {default: d}\n  e: {default: d}\n"
                           "builds:\n  x:\n" SRC;
        char *f1 = write_tmp("v1.yaml", "a: f1\nb: f1\nc: f1\n");
        char *f2 = write_tmp("v2.json", "{\"b\": \"f2\", \"c\": \"f2\"}");
        const char *files[] = {f1, f2};
        const char *vars[] = {"c=cli1", "c=cli2"};
        char *env[] = {"KILN_VAR_b=env", "KILN_VAR_c=env", "PATH=/bin", NULL};
        struct loaded l = load_opts(spec, (struct spec_options){.var_files = files, .nvar_files = 2,
                                                                .vars = vars, .nvars = 2, .environ = env});
        CHECK_INT(l.r, ==, 0);
        CHECK_STREQ(var(l.s, "a")->value->str, "f1");
        CHECK_STREQ(var(l.s, "b")->value->str, "env");
        CHECK_STREQ(var(l.s, "c")->value->str, "cli2");
        CHECK_STREQ(var(l.s, "e")->value->str, "d");
        CHECK_STREQ(var(l.s, "e")->origin, "default");
        CHECK_STREQ(var(l.s, "c")->origin, "command line");
        unload(&l);
        unlink(f1);
        unlink(f2);
        free(f1);
        free(f2);
}

TEST(vars_text_values_follow_declared_type) {
        const char *spec = "variables:\n"
                           "  n: {type: number, default: 1}\n"
                           "  b: {type: bool, default: false}\n"
                           "  l: {type: list, default: []}\n"
                           "  m: {type: map, default: {}}\n"
                           "builds:\n  x:\n" SRC;
        const char *vars[] = {"n=42", "b=true", "l=[a, b, c]", "m={k: v}"};
        struct loaded l = load_opts(spec, (struct spec_options){.vars = vars, .nvars = 4});
        CHECK_INT(l.r, ==, 0);
        CHECK(var(l.s, "n")->value->kind == V_NUMBER && var(l.s, "n")->value->num == 42);
        CHECK(var(l.s, "b")->value->kind == V_BOOL && var(l.s, "b")->value->b);
        CHECK(var(l.s, "l")->value->kind == V_LIST && var(l.s, "l")->value->n == 3);
        CHECK_STREQ(value_map_get(var(l.s, "m")->value, "k")->str, "v");
        unload(&l);

        const char *bad[] = {"n=forty", "l=notalist"};
        l = load_opts(spec, (struct spec_options){.vars = bad, .nvars = 2});
        CHECK_INT(l.r, ==, -EINVAL);
        CHECK_INT(l.d.nerrors, ==, 2);
        unload(&l);
}

TEST(vars_undeclared_suggests_and_env_only_warns) {
        const char *spec = "variables:\n  kubernetes_version: '1.28'\nbuilds:\n  x:\n" SRC;
        const char *vars[] = {"kubernetes_verison=1.29"};
        char *env[] = {"KILN_VAR_other=1", NULL};
        struct loaded l = load_opts(spec, (struct spec_options){.vars = vars, .nvars = 1, .environ = env});
        CHECK_INT(l.r, ==, -EINVAL);
        CHECK_INT(l.d.nerrors, ==, 1);
        CHECK_INT(l.d.nwarnings, ==, 1);
        bool hinted = false;
        for (size_t i = 0; i < l.d.n; i++)
                if (l.d.v[i].hint && strstr(l.d.v[i].hint, "kubernetes_version"))
                        hinted = true;
        CHECK(hinted);
        unload(&l);
}

TEST(vars_validation_and_required) {
        const char *spec = "variables:\n"
                           "  suite:\n    default: bookworm\n    validation: {allowed: [bookworm, trixie]}\n"
                           "  ver:\n    default: '1.2.3'\n    validation:\n      regex: '^[0-9]+\\.[0-9]+\\.[0-9]+$'\n      message: must be X.Y.Z\n"
                           "  needed:\n"
                           "builds:\n  x:\n" SRC;
        const char *ok[] = {"needed=1"};
        struct loaded l = load_opts(spec, (struct spec_options){.vars = ok, .nvars = 1});
        CHECK_INT(l.r, ==, 0);
        unload(&l);
        const char *bad[] = {"suite=sid", "ver=1.2"};
        l = load_opts(spec, (struct spec_options){.vars = bad, .nvars = 2});
        CHECK_INT(l.r, ==, -EINVAL);
        CHECK_INT(l.d.nerrors, ==, 3); /* suite, ver, needed unset */
        bool custom = false, unset = false;
        for (size_t i = 0; i < l.d.n; i++) {
                custom |= strstr(l.d.v[i].msg, "must be X.Y.Z") != NULL;
                unset |= strstr(l.d.v[i].msg, "'needed' has no value") != NULL;
        }
        CHECK(custom && unset);
        unload(&l);
}

TEST(vars_sensitive_never_rendered) {
        const char *spec = "variables:\n"
                           "  token: {sensitive: true, default: hunter2, validation: {regex: '^x'}}\n"
                           "builds:\n  x:\n" SRC
                           "    steps:\n      - shell: \"curl -H 'auth: ${var.token}' x\"\n";
        struct loaded l = load(spec);
        /* The default fails validation: the error must not show the value. */
        CHECK_INT(l.r, ==, -EINVAL);
        struct strbuf sb = STRBUF_INIT;
        diag_render(&l.d, &sb, false);
        CHECK(strstr(sb.buf, "hunter2") == NULL);
        CHECK(strstr(sb.buf, "<sensitive>") != NULL);
        strbuf_free(&sb);
        unload(&l);

        const char *vars[] = {"token=xyzzy-secret"};
        l = load_opts(spec, (struct spec_options){.vars = vars, .nvars = 1});
        CHECK_INT(l.r, ==, 0);
        struct strbuf txt = STRBUF_INIT, json = STRBUF_INIT;
        spec_render_text(l.s, &txt, false);
        spec_render_json(l.s, &json);
        CHECK(strstr(txt.buf, "xyzzy") == NULL);
        CHECK(strstr(json.buf, "xyzzy") == NULL);
        CHECK(strstr(txt.buf, "<sensitive>") != NULL);
        CHECK(strstr(json.buf, "\"<sensitive>\"") != NULL);
        strbuf_free(&txt);
        strbuf_free(&json);
        unload(&l);
}

/* Renders l's diagnostics as text and JSON into one string (caller frees). */
static char *render_all(struct loaded *l) {
        struct strbuf sb = STRBUF_INIT;
        diag_render(&l->d, &sb, false);
        diag_render_json(&l->d, &sb);
        return strbuf_detach(&sb);
}

/* Var files, --var and the lines of a sensitive declaration are never
 * quoted, whatever the error; errors there are still located. */
TEST(vars_sources_with_secrets_are_not_quoted) {
        const char *spec = "variables:\n"
                           "  token: {sensitive: true}\n"
                           "  suite: bookworm\n"
                           "builds:\n  x:\n" SRC;
        char *vf = write_tmp("v.yaml", "suite: trixie\ntoken: SEKRIT-1 x: [\n");
        const char *files[] = {vf};
        struct loaded l = load_opts(spec, (struct spec_options){.var_files = files, .nvar_files = 1});
        CHECK_INT(l.r, <, 0);
        _cleanup_free_ char *a = render_all(&l);
        CHECK(strstr(a, "SEKRIT") == NULL);
        CHECK(strstr(a, "v.yaml:2:") != NULL);
        unload(&l);
        unlink(vf);
        free(vf);

        const char *vars[] = {"=SEKRIT-2"};
        l = load_opts(spec, (struct spec_options){.vars = vars, .nvars = 1});
        _cleanup_free_ char *b = render_all(&l);
        CHECK(strstr(b, "SEKRIT") == NULL && strstr(b, "--var:1:1: error") != NULL);
        unload(&l);

        /* a dropped duplicate default: of a sensitive variable, and a typo
         * in a flow declaration spread over two lines */
        l = load("variables:\n"
                 "  token:\n"
                 "    sensitive: true\n"
                 "    default: abc\n"
                 "    default: SEKRIT-3\n"
                 "  pw: {sensitive: true, default: SEKRIT-4,\n"
                 "    descripton: x}\n"
                 "builds:\n  x:\n" SRC);
        CHECK(has_diag(&l, 5, 5, "duplicate key 'default'"));
        CHECK(has_diag(&l, 7, 5, "unknown key 'descripton'"));
        _cleanup_free_ char *c = render_all(&l);
        CHECK(strstr(c, "SEKRIT") == NULL);
        unload(&l);
}

/* Values derived from a secret never become names (which reach file names
 * and logs); descriptions and step names derived from one are shown as
 * <sensitive>. */
TEST(builds_sensitive_names_refused_descriptions_hidden) {
        struct loaded l = load("variables:\n  pin: {sensitive: true, default: q7}\n"
                               "builds:\n  x:\n    name: \"n-${var.pin}\"\n" SRC);
        CHECK(has_diag(&l, 5, 11, "name: cannot use a sensitive variable"));
        _cleanup_free_ char *a = render_all(&l);
        CHECK(strstr(a, "q7") == NULL);
        unload(&l);

        l = load("variables:\n  pin: {sensitive: true, default: q7}\n"
                 "builds:\n  x:\n    description: \"d ${var.pin}\"\n" SRC
                 "    steps:\n      - shell: \"true\"\n        name: \"s ${var.pin}\"\n");
        CHECK_INT(l.r, ==, 0);
        struct strbuf txt = STRBUF_INIT, json = STRBUF_INIT;
        spec_render_text(l.s, &txt, false);
        spec_render_json(l.s, &json);
        CHECK(strstr(txt.buf, "q7") == NULL && strstr(json.buf, "q7") == NULL);
        strbuf_free(&txt);
        strbuf_free(&json);
        unload(&l);
}

/* kiln inspect's text shows control characters from the spec escaped. */
TEST(render_text_escapes_control_characters) {
        struct loaded l = load("description: \"t\\e]0;x\\a\"\n"
                               "builds:\n  x:\n    description: \"d\\e[2J\"\n" SRC
                               "    labels: {a: \"l\\x9b\"}\n"
                               "    steps:\n      - shell: \"echo \\e[31m\\nb\\r\"\n");
        CHECK_INT(l.r, ==, 0);
        struct strbuf txt = STRBUF_INIT;
        spec_render_text(l.s, &txt, false);
        CHECK(strchr(txt.buf, 0x1b) == NULL && strchr(txt.buf, 0x07) == NULL &&
              strchr(txt.buf, '\r') == NULL && strstr(txt.buf, "\xc2\x9b") == NULL);
        CHECK(strstr(txt.buf, "d\\x1b[2J") != NULL && strstr(txt.buf, "l\\u009b") != NULL);
        strbuf_free(&txt);
        unload(&l);
}

/* ---- builds ----------------------------------------------------------------------- */

TEST(matrix_expands_with_default_names) {
        struct loaded l = load("builds:\n  flux:\n" SRC
                               "    matrix:\n      arch: [x86_64, arm64]\n      role: [management, compute]\n");
        CHECK_INT(l.r, ==, 0);
        CHECK_INT(l.s->nbuilds, ==, 4);
        CHECK(spec_find_build(l.s, "flux-management-x86_64"));
        CHECK(spec_find_build(l.s, "flux-compute-aarch64"));
        const struct spec_build *b = spec_find_build(l.s, "flux-compute-aarch64");
        CHECK_STREQ(b->arch, "aarch64"); /* arm64 normalised */
        CHECK_STREQ(b->role, "compute");
        CHECK_STREQ(value_map_get(b->source, "suite")->str, "bookworm");
        unload(&l);
}

TEST(matrix_name_template_and_interpolation) {
        struct loaded l = load("variables:\n  v: '1.28'\n"
                               "builds:\n  node:\n" SRC
                               "    matrix: {role: [a, b]}\n"
                               "    name: \"${build.base}+kube-${var.v}-${matrix.role}\"\n"
                               "    labels: {n: \"${build.name}\", arch: \"${build.debian_arch}\"}\n");
        CHECK_INT(l.r, ==, 0);
        const struct spec_build *b = spec_find_build(l.s, "node+kube-1.28-b");
        CHECK(b != NULL);
        if (b) {
                CHECK_STREQ(value_map_get(b->labels, "n")->str, "node+kube-1.28-b");
                CHECK_STREQ(value_map_get(b->labels, "arch")->str, "amd64");
        }
        unload(&l);
}

TEST(from_picks_parent_by_shared_axes_and_inherits) {
        struct loaded l = load("builds:\n"
                               "  base:\n" SRC "    matrix: {arch: [x86_64, aarch64]}\n"
                               "    disk: {size: 4G}\n    outputs: [qcow2]\n    labels: {a: '1'}\n"
                               "  node:\n    from: base\n    matrix: {role: [login, compute], arch: [x86_64, aarch64]}\n"
                               "    labels: {b: '2'}\n");
        CHECK_INT(l.r, ==, 0);
        CHECK_INT(l.s->nbuilds, ==, 6);
        const struct spec_build *b = spec_find_build(l.s, "node-compute-aarch64");
        CHECK(b && b->parent && streq(b->parent->name, "base-aarch64"));
        if (b) {
                CHECK(b->disk && streq(b->disk_from, "base-aarch64"));
                CHECK_STREQ(value_map_get(b->labels, "a")->str, "1");
                CHECK_STREQ(value_map_get(b->labels, "b")->str, "2");
                CHECK(b->source == NULL);
        }
        /* parents come before children */
        size_t ip = 0, ic = 0;
        for (size_t i = 0; i < l.s->nbuilds; i++) {
                if (streq(l.s->builds[i]->name, "base-aarch64"))
                        ip = i;
                if (streq(l.s->builds[i]->name, "node-compute-aarch64"))
                        ic = i;
        }
        CHECK(ip < ic);
        unload(&l);
}

TEST(from_child_inherits_arch_of_single_parent) {
        struct loaded l = load("builds:\n  base:\n" SRC "    arch: aarch64\n  child:\n    from: base\n");
        CHECK_INT(l.r, ==, 0);
        CHECK_STREQ(spec_find_build(l.s, "child")->arch, "aarch64");
        unload(&l);
}

TEST(from_ambiguous_parent_is_an_error) {
        struct loaded l = load("builds:\n  base:\n" SRC "    matrix: {arch: [x86_64, aarch64]}\n"
                               "  child:\n    from: base\n");
        CHECK_INT(l.r, ==, -EINVAL);
        CHECK(has_diag(&l, 6, 11, "could layer on several builds"));
        unload(&l);
}

TEST(from_cycle_is_named) {
        struct loaded l = load("builds:\n  a:\n    from: c\n  b:\n    from: a\n  c:\n    from: b\n");
        CHECK_INT(l.r, ==, -EINVAL);
        bool named = false;
        for (size_t i = 0; i < l.d.n; i++)
                if (strstr(l.d.v[i].msg, "cycle") && strstr(l.d.v[i].msg, "a -> c -> b -> a"))
                        named = true;
        CHECK(named);
        unload(&l);
}

TEST(from_missing_parent_suggests) {
        struct loaded l = load("builds:\n  base:\n" SRC "  child:\n    from: bsae\n");
        CHECK_INT(l.r, ==, -EINVAL);
        CHECK(has_diag(&l, 5, 11, "'bsae', which is not defined"));
        CHECK(l.d.v[0].hint && strstr(l.d.v[0].hint, "'base'"));
        unload(&l);
}

TEST(only_except_select_and_pull_parents) {
        const char *spec = "builds:\n  base:\n" SRC
                           "  node:\n    from: base\n    matrix: {role: [login, compute]}\n";
        const char *only[] = {"node-login"};
        struct loaded l = load_opts(spec, (struct spec_options){.only = only, .nonly = 1});
        CHECK_INT(l.r, ==, 0);
        CHECK(spec_find_build(l.s, "node-login")->selected);
        CHECK(!spec_find_build(l.s, "node-compute")->needed);
        CHECK(!spec_find_build(l.s, "base")->selected);
        CHECK(spec_find_build(l.s, "base")->needed);
        unload(&l);

        const char *except[] = {"node-*"};
        l = load_opts(spec, (struct spec_options){.except = except, .nexcept = 1});
        CHECK_INT(l.r, ==, 0);
        CHECK(spec_find_build(l.s, "base")->selected);
        CHECK(!spec_find_build(l.s, "node-login")->needed);
        unload(&l);

        const char *none[] = {"nothing*"};
        l = load_opts(spec, (struct spec_options){.only = none, .nonly = 1});
        CHECK_INT(l.r, ==, -EINVAL);
        unload(&l);
}

TEST(steps_shorthands_and_filters) {
        struct loaded l = load("variables:\n  pkgs: [a, b]\n"
                               "builds:\n  x:\n" SRC "    matrix: {role: [login, compute]}\n"
                               "    steps:\n"
                               "      - update\n"
                               "      - packages: ${var.pkgs}\n"
                               "      - shell: echo $${HOME}\n"
                               "      - ansible: site.yml\n"
                               "      - shell: {inline: [only-login]}\n        only: ['*-login']\n"
                               "      - file: {path: /etc/motd, content: hi, mode: '0644'}\n        network: false\n");
        CHECK_INT(l.r, ==, 0);
        const struct spec_build *lg = spec_find_build(l.s, "x-login");
        const struct spec_build *cp = spec_find_build(l.s, "x-compute");
        CHECK_INT(lg->nsteps, ==, 6);
        CHECK_INT(cp->nsteps, ==, 5);
        CHECK_STREQ(lg->steps[0].kind, "update");
        CHECK_INT(value_map_get(lg->steps[1].params, "install")->n, ==, 2);
        CHECK_STREQ(value_map_get(lg->steps[2].params, "inline")->str, "echo ${HOME}");
        CHECK_STREQ(value_map_get(lg->steps[3].params, "playbook")->str, "site.yml");
        CHECK(!lg->steps[5].network);
        CHECK(lg->steps[4].network);
        CHECK_INT(cp->steps[4].index, ==, 6); /* index keeps the spec position */
        unload(&l);
}

TEST(several_errors_reported_in_one_run) {
        struct loaded l = load("builds:\n  x:\n" SRC
                               "    stesp: []\n"
                               "    steps:\n      - packages: {install: [a], recommends: yes}\n"
                               "      - shell: \"echo ${var.nope}\"\n");
        CHECK_INT(l.r, ==, -EINVAL);
        CHECK_INT(l.d.nerrors, ==, 3);
        CHECK(has_diag(&l, 4, 5, "unknown key 'stesp'"));
        CHECK(has_diag(&l, 6, 46, "recommends"));
        CHECK(has_diag(&l, 7, 28, "undefined variable 'nope'"));
        unload(&l);
}

TEST(json_render_has_stable_schema) {
        struct loaded l = load("builds:\n  x:\n" SRC "    outputs: [raw]\n");
        CHECK_INT(l.r, ==, 0);
        struct strbuf sb = STRBUF_INIT;
        spec_render_json(l.s, &sb);
        CHECK(strstr(sb.buf, "\"schema_version\": 1"));
        CHECK(strstr(sb.buf, "\"name\": \"x\""));
        CHECK(strstr(sb.buf, "\"timestamp\": \"2023-11-14T22:13:20Z\""));
        CHECK(strstr(sb.buf, "\"outputs\": [\n        \"raw\"\n      ]"));
        strbuf_free(&sb);
        unload(&l);
}
