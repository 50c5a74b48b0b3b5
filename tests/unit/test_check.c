/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the check engine: the parser (every kind, the short and
 * goss forms, errors with positions), the runner (with the kinds' real
 * snippets run by the host's /bin/sh against files this test makes), and
 * the report writers (JSON and JUnit escaping). */
#include "harness.h"

#include "base/json.h"
#include "check/check.h"
#include "spec/yaml.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- helpers --------------------------------------------------------------------------------- */

struct parsed {
        struct source *src;
        struct value *doc;
        struct diag_list d;
        struct check_list l;
        int r;
};

static struct parsed parse(const char *text) {
        struct parsed p = {0};
        p.src = source_new("checks.yaml", text, strlen(text));
        if (yaml_load(p.src, &p.d, &p.doc) < 0)
                abort();
        p.r = check_list_parse(p.doc, NULL, &p.d, &p.l);
        diag_sort(&p.d);
        return p;
}

static void unparse(struct parsed *p) {
        check_list_done(&p->l);
        value_free(p->doc);
        diag_list_done(&p->d);
        source_free(p->src);
}

static const struct diag *diag_at(const struct parsed *p, unsigned line, unsigned col, const char *needle) {
        for (size_t i = 0; i < p->d.n; i++)
                if (p->d.v[i].mark.line == line && p->d.v[i].mark.col == col &&
                    strstr(p->d.v[i].msg, needle))
                        return &p->d.v[i];
        return NULL;
}

static const char *param(const struct check *c, const char *key) {
        const struct value *v = value_map_get(c->params, key);
        return v ? v->str : NULL;
}

/* ---- parser ---------------------------------------------------------------------------------- */

TEST(check_short_forms_of_every_kind) {
        struct parsed p = parse("- file: /etc/hostname\n"
                                "- package: openssh-server\n"
                                "- service: ssh\n"
                                "- user: root\n"
                                "- group: root\n"
                                "- command: sshd -t\n"
                                "- kernel_param: vm.swappiness\n"
                                "  value: 60\n"
                                "- port: 22\n"
                                "- mount: /\n");
        CHECK_INT(p.r, ==, 0);
        CHECK_INT(p.d.nerrors, ==, 0);
        CHECK_INT(p.l.n, ==, 9);
        static const char *const kinds[] = {"file", "package", "service", "user", "group",
                                            "command", "kernel_param", "port", "mount"};
        static const char *const targets[] = {"/etc/hostname", "openssh-server", "ssh", "root", "root",
                                              "sshd -t", "vm.swappiness", "22", "/"};
        for (size_t i = 0; i < p.l.n && i < 9; i++) {
                CHECK_STREQ(p.l.v[i].kind->name, kinds[i]);
                CHECK_STREQ(p.l.v[i].target, targets[i]);
                CHECK_INT(p.l.v[i].index, ==, i + 1);
                CHECK_INT(p.l.v[i].mark.line, ==, i < 7 ? i + 1 : i + 2);
                CHECK_INT(p.l.v[i].mark.col, ==, 3);
        }
        /* boot-only by kind */
        CHECK(!p.l.v[0].boot_only && !p.l.v[2].boot_only && !p.l.v[5].boot_only);
        CHECK(p.l.v[6].boot_only && p.l.v[7].boot_only && p.l.v[8].boot_only);
        CHECK_STREQ(param(&p.l.v[6], "value"), "60");
        unparse(&p);
}

TEST(check_map_form_and_sibling_options_are_the_same) {
        struct parsed p = parse("- file: {path: /etc/x, mode: \"0644\", owner: root}\n"
                                "- file: /etc/x\n"
                                "  mode: \"0644\"\n"
                                "  owner: root\n"
                                "  group: adm\n"
                                "  name: the x file\n"
                                "- package: {name: vim, installed: false}\n"
                                "- command: \"true\"\n"
                                "  boot_only: true\n");
        CHECK_INT(p.d.nerrors, ==, 0);
        CHECK_INT(p.l.n, ==, 4);
        CHECK_STREQ(param(&p.l.v[0], "mode"), "0644");
        CHECK_STREQ(param(&p.l.v[1], "mode"), "0644");
        CHECK_STREQ(param(&p.l.v[1], "owner"), "root");
        /* group: after a file is the file's option, not a second kind */
        CHECK_STREQ(p.l.v[1].kind->name, "file");
        CHECK_STREQ(param(&p.l.v[1], "group"), "adm");
        CHECK_STREQ(p.l.v[1].name, "the x file");
        _cleanup_free_ char *what = check_describe(&p.l.v[1]);
        CHECK_STREQ(what, "/etc/x (the x file)");
        /* a multi-line command is described on one line */
        struct parsed m = parse("- command: |\n    set -e\n    test -x /usr/sbin/sshd\n");
        CHECK_INT(m.l.n, ==, 1);
        _cleanup_free_ char *cmd = check_describe(&m.l.v[0]);
        CHECK_STREQ(cmd, "set -e test -x /usr/sbin/sshd ");
        unparse(&m);
        /* name: inside a package map is the package */
        CHECK_STREQ(p.l.v[2].target, "vim");
        CHECK(p.l.v[2].name == NULL);
        CHECK(p.l.v[3].boot_only);
        unparse(&p);
}

TEST(check_goss_map_form_and_spellings) {
        struct parsed p = parse("file:\n"
                                "  /etc/passwd: {filetype: file, mode: \"0644\"}\n"
                                "  /etc/hostname:\n"
                                "package: [vim, curl]\n"
                                "command:\n"
                                "  \"echo hi\": {exit-status: 0, stdout: [hi]}\n"
                                "mount:\n"
                                "  /boot: {opts: [ro]}\n"
                                "kernel-param:\n"
                                "  net.ipv4.ip_forward: {value: \"1\"}\n");
        CHECK_INT(p.d.nerrors, ==, 0);
        CHECK_INT(p.l.n, ==, 7);
        CHECK_STREQ(p.l.v[0].target, "/etc/passwd");
        CHECK_STREQ(param(&p.l.v[0], "type"), "file"); /* filetype -> type */
        CHECK(value_map_get(p.l.v[0].params, "filetype") == NULL);
        CHECK_INT(p.l.v[0].mark.line, ==, 2);
        CHECK_STREQ(p.l.v[1].target, "/etc/hostname");
        CHECK_STREQ(p.l.v[3].target, "curl");
        CHECK_STREQ(param(&p.l.v[4], "exit_status"), "0");
        CHECK(value_map_get(p.l.v[5].params, "options") != NULL);
        CHECK_STREQ(p.l.v[6].kind->name, "kernel_param");
        unparse(&p);
}

TEST(check_unknown_kind_suggests_with_position) {
        struct parsed p = parse("- file: /x\n- pakage: vim\n- frobnicate: 1\n");
        CHECK_INT(p.r, ==, -EINVAL);
        CHECK_INT(p.d.nerrors, ==, 2);
        const struct diag *dg = diag_at(&p, 2, 3, "check 2: unknown check kind 'pakage'");
        CHECK(dg && dg->hint && strstr(dg->hint, "did you mean 'package'?"));
        dg = diag_at(&p, 3, 3, "unknown check kind 'frobnicate'");
        CHECK(dg && dg->hint && strstr(dg->hint, "check kinds: file, package"));
        CHECK_INT(p.l.n, ==, 1); /* the good check is kept */
        unparse(&p);
}

TEST(check_unknown_option_and_wrong_types_are_located) {
        struct parsed p = parse("- file: /x\n"
                                "  mdoe: \"0644\"\n"
                                "- file: {path: /y, exists: yes}\n"
                                "- user: root\n"
                                "  uid: zero\n"
                                "- file: /z\n"
                                "  mode: 644\n"
                                "- service: [ssh]\n");
        CHECK_INT(p.d.nerrors, ==, 5);
        const struct diag *dg = diag_at(&p, 2, 3, "unknown key 'mdoe' in check 1 (file)");
        CHECK(dg && dg->hint && strstr(dg->hint, "did you mean 'mode'?"));
        dg = diag_at(&p, 3, 28, "check 2 (file): exists: expected a boolean");
        CHECK(dg && dg->hint && strstr(dg->hint, "YAML 1.2"));
        CHECK(diag_at(&p, 5, 8, "check 3 (user): uid: expected a whole number"));
        CHECK(diag_at(&p, 7, 9, "check 4 (file): mode: expected an octal file mode"));
        CHECK(diag_at(&p, 8, 12, "check 5 (service): expected name or a map of options, got a list"));
        CHECK_INT(p.l.n, ==, 0);
        unparse(&p);
}

TEST(check_values_are_validated) {
        struct parsed p = parse("- package: vim\n"
                                "  version: \"~> 1\"\n"
                                "- package: vim\n"
                                "  version: [\">= 1:2.3~rc1\", \"<< 3\", \"2.0\"]\n"
                                "- port: tcp:0\n"
                                "- port: sctp:22\n"
                                "- port: udp6:53\n"
                                "- kernel_param: ../../etc/shadow\n"
                                "  value: x\n"
                                "- file: /x\n"
                                "  matches: \"(unclosed\"\n"
                                "- file: /x\n"
                                "  contains: \"/[a-/\"\n"
                                "- file: /x\n"
                                "  contains: \"/plain slashes are a regex only at both ends\"\n"
                                "- command: x\n"
                                "  exit_status: 256\n"
                                "- file: /x\n"
                                "  sha256: ABC\n"
                                "- file: relative\n"
                                "- user: {name: \"bad name\"}\n"
                                "- kernel_param: a.b\n");
        CHECK(diag_at(&p, 2, 12, "version: '~> 1' is not a version constraint"));
        CHECK(diag_at(&p, 5, 9, "port: 'tcp:0' is not a port"));
        CHECK(diag_at(&p, 6, 9, "port: 'sctp:22' is not a port"));
        CHECK(diag_at(&p, 8, 17, "is not a sysctl name"));
        CHECK(diag_at(&p, 11, 12, "matches: invalid regular expression"));
        CHECK(diag_at(&p, 13, 13, "contains: invalid regular expression"));
        CHECK(diag_at(&p, 17, 16, "exit_status: 256 must be a whole number from 0 to 255"));
        CHECK(diag_at(&p, 19, 11, "sha256: expected 64 lower-case hex digits"));
        CHECK(diag_at(&p, 20, 9, "must be an absolute path"));
        CHECK(diag_at(&p, 21, 16, "is not a user or group name"));
        CHECK(diag_at(&p, 22, 3, "missing required key 'value'"));
        CHECK_INT(p.d.nerrors, ==, 11);
        /* the valid ones parsed: the version list, udp6, the literal with slashes */
        CHECK_INT(p.l.n, ==, 3);
        unparse(&p);
}

TEST(check_structure_errors) {
        struct parsed p = parse("- file: /x\n"
                                "  package: vim\n"
                                "- vim\n"
                                "- package\n"
                                "- name: lonely\n"
                                "- file: {path: /x, name: inner}\n"
                                "- file: /x\n"
                                "  path: /y\n");
        CHECK(diag_at(&p, 2, 3, "check 1 has two kinds, 'file' and 'package'"));
        CHECK(diag_at(&p, 3, 3, "check 2: expected a map"));
        const struct diag *dg = diag_at(&p, 4, 3, "check 3: expected a map");
        CHECK(dg && dg->hint && strstr(dg->hint, "a package check needs its target"));
        CHECK(diag_at(&p, 5, 3, "check 4 has no kind"));
        CHECK(diag_at(&p, 6, 20, "'name' belongs to the check, not to 'file:'"));
        CHECK(diag_at(&p, 8, 3, "'path' is given twice"));
        CHECK_INT(p.d.nerrors, ==, 6);
        unparse(&p);
}

TEST(check_top_level_must_be_list_or_map) {
        struct parsed p = parse("42\n");
        CHECK(diag_at(&p, 1, 1, "expected a list of checks or a map of kinds"));
        unparse(&p);
}

TEST(check_file_is_read_relative_to_base_dir) {
        char dir[] = "/tmp/kiln-unit-check-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *path = xasprintf("%s/c.yaml", dir);
        const char *text = "- file: /etc/hostname\n- pakage: x\n";
        CHECK_INT(write_file(path, text, strlen(text), 0644, 0), ==, 0);
        struct value *name = value_new_string("c.yaml", NULL);
        struct diag_list d = {0};
        struct check_list l;
        CHECK_INT(check_list_parse(name, dir, &d, &l), ==, -EINVAL);
        CHECK_INT(l.n, ==, 1);
        CHECK_INT(d.nerrors, ==, 1);
        /* the diagnostic names the file and quotes its line (its source was adopted) */
        CHECK(d.n == 1 && d.v[0].mark.src && streq(d.v[0].mark.src->path, path));
        CHECK_INT(d.v[0].mark.line, ==, 2);
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        diag_render(&d, &sb, false);
        CHECK(strstr(strbuf_str(&sb), "- pakage: x"));
        check_list_done(&l);
        diag_list_done(&d);
        /* a missing file */
        struct value *missing = value_new_string("nope.yaml", NULL);
        CHECK_INT(check_list_parse(missing, dir, &d, &l), ==, -ENOENT);
        CHECK(d.n == 1 && strstr(d.v[0].msg, "cannot read"));
        check_list_done(&l);
        diag_list_done(&d);
        /* check_list_load: a good file */
        text = "- file: /etc/hostname\n";
        CHECK_INT(write_file(path, text, strlen(text), 0644, 0), ==, 0);
        CHECK_INT(check_list_load(path, &d, &l), ==, 0);
        CHECK_INT(l.n, ==, 1);
        CHECK(l.v[0].mark.src && streq(l.v[0].mark.src->path, path));
        check_list_done(&l);
        diag_list_done(&d);
        value_free(name);
        value_free(missing);
        unlink(path);
        rmdir(dir);
}

/* ---- the runner, with the host's /bin/sh as the target -------------------------------------- */

/* Runs the script with the host's /bin/sh: a real shell running the real
 * snippets, against files this test creates. `max` is honoured by
 * truncating, as the tree and guest targets do. */
static int host_run(void *userdata, const char *script, uint64_t timeout_ms, size_t max,
                    char **ret_output, int *ret_status) {
        (void)userdata;
        (void)timeout_ms;
        int in[2], out[2];
        if (pipe(in) < 0 || pipe(out) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                dup2(in[0], 0);
                dup2(out[1], 1);
                dup2(out[1], 2);
                close(in[1]);
                close(out[0]);
                execl("/bin/sh", "sh", "-s", (char *)NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        write_all(in[1], script, strlen(script));
        close(in[1]);
        struct strbuf sb = STRBUF_INIT;
        char buf[4096];
        ssize_t n;
        while ((n = read(out[0], buf, sizeof(buf))) > 0)
                strbuf_add(&sb, buf, (size_t)n);
        close(out[0]);
        int st;
        waitpid(pid, &st, 0);
        if (sb.len > max) {
                sb.len = max;
                sb.buf[max] = 0;
        }
        *ret_output = strbuf_detach(&sb);
        *ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return 0;
}

static size_t host_max = CHECK_OUTPUT_MAX;

static int host_run_capped(void *userdata, const char *script, uint64_t timeout_ms, size_t max,
                           char **ret_output, int *ret_status) {
        (void)max;
        return host_run(userdata, script, timeout_ms, host_max, ret_output, ret_status);
}

static const struct check_result *result(const struct check_report *r, size_t i) {
        return i < r->n ? &r->v[i] : NULL;
}

TEST(check_runner_real_snippets_on_the_host) {
        char dir[] = "/tmp/kiln-unit-check-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *f = xasprintf("%s/it's a file", dir); /* a quote in the path */
        const char *text = "PermitRootLogin no\nPort 22\n";
        CHECK_INT(write_file(f, text, strlen(text), 0640, 0), ==, 0);
        _cleanup_free_ char *spec = xasprintf(
                "- file: \"%s\"\n"                                    /* 1 pass */
                "  mode: \"0640\"\n"
                "  type: file\n"
                "  contains: [PermitRootLogin, \"/^Port [0-9]+$/\"]\n"
                "- file: \"%s\"\n"                                    /* 2 fail: mode, contains */
                "  mode: \"0644\"\n"
                "  contains: \"PasswordAuthentication\"\n"
                "- file: {path: \"%s/none\", exists: false}\n"       /* 3 pass */
                "- file: \"%s/none\"\n"                               /* 4 fail */
                "- file: \"%s\"\n"                                    /* 5 pass */
                "  type: directory\n"
                "- command: \"echo \\\"it's\\\"; echo oops >&2; exit 3\"\n" /* 6 pass */
                "  exit_status: 3\n"
                "  stdout: \"it's\"\n"
                "  stderr: [/^oo+ps$/]\n"
                "- command: \"printf '<&>\\\"'\"\n"                   /* 7 fail: stdout */
                "  stdout: nothing\n"
                "- user: root\n"                                      /* 8 pass */
                "  uid: 0\n"
                "- group: {name: kiln-no-such-group, exists: false}\n" /* 9 pass */
                "- port: 22\n"                                        /* 10 skipped offline */
                "- command: \"true\"\n"                               /* 11 skipped: boot_only */
                "  boot_only: true\n",
                f, f, dir, dir, dir);
        struct parsed p = parse(spec);
        CHECK_INT(p.d.nerrors, ==, 0);
        CHECK_INT(p.l.n, ==, 11);
        struct check_exec x = {.where = "host", .booted = false, .run = host_run};
        struct check_report r = {0};
        CHECK_INT(check_run(&p.l, &x, "unit", &r), ==, 0);
        CHECK_INT(r.n, ==, 11);
        CHECK_INT(r.passed, ==, 6);
        CHECK_INT(r.failed, ==, 3);
        CHECK_INT(r.skipped, ==, 2);
        CHECK_INT(result(&r, 0)->status, ==, CHECK_PASSED);
        CHECK(strstr(result(&r, 0)->detail, "mode 0640"));
        CHECK_INT(result(&r, 1)->status, ==, CHECK_FAILED);
        CHECK(strstr(result(&r, 1)->detail, "mode is 0640, expected 0644"));
        CHECK(strstr(result(&r, 1)->detail, "does not contain PasswordAuthentication"));
        CHECK_INT(result(&r, 2)->status, ==, CHECK_PASSED);
        CHECK_INT(result(&r, 3)->status, ==, CHECK_FAILED);
        CHECK_STREQ(result(&r, 3)->detail, "does not exist");
        CHECK_INT(result(&r, 4)->status, ==, CHECK_PASSED);
        CHECK_INT(result(&r, 5)->status, ==, CHECK_PASSED);
        CHECK_INT(result(&r, 6)->status, ==, CHECK_FAILED);
        CHECK(strstr(result(&r, 6)->detail, "stdout: <&>\""));
        CHECK_INT(result(&r, 7)->status, ==, CHECK_PASSED);
        CHECK_INT(result(&r, 8)->status, ==, CHECK_PASSED);
        CHECK_INT(result(&r, 9)->status, ==, CHECK_SKIPPED);
        CHECK_STREQ(result(&r, 9)->detail, "needs a booted guest");
        CHECK_INT(result(&r, 10)->status, ==, CHECK_SKIPPED);

        /* booted: the boot-only command runs */
        x.booted = true;
        struct check_report rb = {0};
        CHECK_INT(check_run(&p.l, &x, "unit", &rb), ==, 0);
        CHECK_INT(result(&rb, 10)->status, ==, CHECK_PASSED);

        /* output cut short: the checks whose end was lost fail, not pass */
        host_max = 200;
        x.run = host_run_capped;
        struct check_report rc = {0};
        CHECK_INT(check_run(&p.l, &x, "unit", &rc), ==, 0);
        CHECK_INT(result(&rc, 8)->status, ==, CHECK_FAILED);
        CHECK(strstr(result(&rc, 8)->detail, "did not finish"));
        CHECK_INT(rc.passed, <, r.passed);
        host_max = CHECK_OUTPUT_MAX;

        check_report_done(&r);
        check_report_done(&rb);
        check_report_done(&rc);
        unparse(&p);
        unlink(f);
        rmdir(dir);
}

TEST(check_sh_quote_survives_the_shell) {
        static const char *const nasty[] = {"plain", "it's", "'", "''", "$(touch /tmp/x) `id` \\ \"",
                                            "new\nline", ""};
        for (size_t i = 0; i < ARRAY_SIZE(nasty); i++) {
                struct strbuf sb = STRBUF_INIT;
                strbuf_adds(&sb, "printf %s ");
                check_sh_quote(&sb, nasty[i]);
                char *out = NULL;
                int st = -1;
                CHECK_INT(host_run(NULL, sb.buf, 0, 1 << 20, &out, &st), ==, 0);
                CHECK_INT(st, ==, 0);
                CHECK_STREQ(out, nasty[i]);
                free(out);
                strbuf_free(&sb);
        }
}

/* ---- reports --------------------------------------------------------------------------------- */

/* A report over a parsed list, with details that need escaping. */
static void fake_report(const struct check_list *l, struct check_report *r) {
        *r = (struct check_report){.build = xstrdup("b<1>"), .where = xstrdup("tree"),
                                   .v = xcalloc(l->n, sizeof(struct check_result)), .n = l->n};
        static const char *const details[] = {"ok", "has \"quotes\" & <tags>\nand a\tnewline \x01 ctl",
                                              "needs a booted guest"};
        for (size_t i = 0; i < l->n; i++) {
                r->v[i].check = &l->v[i];
                r->v[i].status = (enum check_status)(i % 3);
                r->v[i].detail = xstrdup(details[i % 3]);
        }
        r->passed = r->failed = r->skipped = 1;
}

TEST(check_report_json_escapes) {
        struct parsed p = parse("- file: /a\n- command: \"echo \\\"x\\\"\"\n- port: 22\n");
        CHECK_INT(p.l.n, ==, 3);
        struct check_report r;
        fake_report(&p.l, &r);
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &out, false);
        check_report_json(&r, &w);
        const char *s = strbuf_str(&out);
        CHECK(strstr(s, "\"build\":\"b<1>\""));
        CHECK(strstr(s, "\"target\":\"echo \\\"x\\\"\""));
        CHECK(strstr(s, "\"detail\":\"has \\\"quotes\\\" & <tags>\\nand a\\tnewline \\u0001 ctl\""));
        CHECK(strstr(s, "\"status\":\"failed\""));
        CHECK(strstr(s, "\"file\":\"checks.yaml\",\"line\":2,\"column\":3"));
        CHECK(strstr(s, "\"passed\":1,\"failed\":1,\"skipped\":1"));
        /* it reads back as JSON (the YAML loader reads JSON) */
        struct source *src = source_new("r.json", s, strlen(s));
        struct diag_list d = {0};
        struct value *v = NULL;
        CHECK_INT(yaml_load(src, &d, &v), ==, 0);
        const struct value *checks = value_map_get(v, "checks");
        CHECK(checks && checks->n == 3);
        CHECK_STREQ(value_map_get(checks->items[1], "detail")->str,
                    "has \"quotes\" & <tags>\nand a\tnewline \x01 ctl");
        value_free(v);
        diag_list_done(&d);
        source_free(src);
        check_report_done(&r);
        unparse(&p);
}

TEST(check_report_junit_escapes) {
        struct parsed p = parse("- file: /a\n- command: \"test '<x>' = \\\"&\\\"\"\n- port: 22\n");
        struct check_report r;
        fake_report(&p.l, &r);
        const struct check_report *one = &r;
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        check_report_junit(&one, 1, &out);
        const char *s = strbuf_str(&out);
        CHECK(startswith(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
        CHECK(strstr(s, "tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""));
        CHECK(strstr(s, "<testsuite name=\"kiln checks: b&lt;1&gt; (tree)\""));
        CHECK(strstr(s, "name=\"command test &apos;&lt;x&gt;&apos; = &quot;&amp;&quot;\""));
        CHECK(strstr(s, "<failure message=\"has &quot;quotes&quot; &amp; &lt;tags&gt;&#10;and a&#9;newline ? ctl\""));
        CHECK(strstr(s, "<skipped message=\"needs a booted guest\"/>"));
        CHECK(strstr(s, "checks.yaml:2:3: has"));
        CHECK(strstr(s, "</testsuites>\n"));
        /* nothing unescaped: every '<' opens a tag we wrote, every '&' an entity */
        for (const char *c = s; (c = strchr(c, '&')); c++)
                CHECK(startswith(c, "&amp;") || startswith(c, "&lt;") || startswith(c, "&gt;") ||
                      startswith(c, "&quot;") || startswith(c, "&apos;") || startswith(c, "&#"));
        for (const unsigned char *c = (const unsigned char *)s; *c; c++)
                CHECK(*c >= 0x20 || *c == '\n');
        check_report_done(&r);
        unparse(&p);
}

TEST(check_report_table_counts) {
        struct parsed p = parse("- file: /a\n- file: /b\n- port: 22\n");
        struct check_report r;
        fake_report(&p.l, &r);
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        check_report_table(&r, &out, false);
        const char *s = strbuf_str(&out);
        CHECK(startswith(s, "STATUS   KIND  WHAT  DETAIL\n"));
        CHECK(strstr(s, "FAILED   file  /b    has"));
        CHECK(strstr(s, "(checks.yaml:2:3)"));
        CHECK(strstr(s, "skipped  port  22    needs a booted guest"));
        CHECK(strstr(s, "1 passed, 1 failed, 1 skipped"));
        check_report_done(&r);
        unparse(&p);
}
