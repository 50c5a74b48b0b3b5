/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Options shared by every verb that reads a spec (validate, inspect, and
 * later build). -on-error and -force are accepted and checked here too, so
 * that the same flags can be passed to `kiln validate` and `kiln build`, as
 * CI scripts written for Packer do.
 */
#include "cli/cli.h"

#include "check/check.h"
#include "publish/publish.h"

#include <unistd.h>

extern char **environ;

const struct cli_option spec_cli_options[] = {
        {"help", 'h', false, OPT_HELP},
        {"var", 0, true, OPT_VAR},
        {"var-file", 0, true, OPT_VAR_FILE},
        {"only", 0, true, OPT_ONLY},
        {"except", 0, true, OPT_EXCEPT},
        {"json", 0, false, OPT_JSON},
        {"on-error", 0, true, OPT_ON_ERROR},
        {"force", 0, false, OPT_FORCE},
        {"explain", 0, false, OPT_EXPLAIN},
        {"debug", 0, false, OPT_DEBUG},
        {"parallel", 'j', true, OPT_PARALLEL},
        {"parallel-builds", 0, true, OPT_PARALLEL},
        {"cache-dir", 0, true, OPT_CACHE_DIR},
        {"work-dir", 0, true, OPT_WORK_DIR},
        {"failed", 0, false, OPT_FAILED},
        {"output-dir", 'o', true, OPT_OUTPUT_DIR},
        {"trees-only", 0, false, OPT_TREES_ONLY},
        {"no-checks", 0, false, OPT_NO_CHECKS},
        {"boot-check", 0, false, OPT_BOOT_CHECK},
        {"allow-degraded", 0, false, OPT_ALLOW_DEGRADED},
        {"checks", 0, true, OPT_CHECKS},
        {"image", 0, true, OPT_IMAGE},
        {"tree", 0, false, OPT_TREE},
        {"junit", 0, true, OPT_JUNIT},
        {"store", 0, true, OPT_STORE},
        {"no-store", 0, false, OPT_NO_STORE},
        {"no-publish", 0, false, OPT_NO_PUBLISH},
        {"events", 0, true, OPT_EVENTS},
        {NULL, 0, false, 0},
};

static const char *const on_error_values[] = {"cleanup", "abort", "ask", "retry",
                                              "run-cleanup-provisioner", NULL};

/* Appends the comma-separated globs of arg (Packer's -only=a,b form). */
static void add_globs(char ***list, size_t *n, const char *arg) {
        const char *p = arg;
        for (;;) {
                const char *c = strchrnul(p, ',');
                if (c > p) {
                        *list = xreallocarray(*list, *n + 1, sizeof(char *));
                        (*list)[(*n)++] = xstrndup(p, (size_t)(c - p));
                }
                if (!*c)
                        break;
                p = c + 1;
        }
}

int spec_args_parse(struct spec_args *a, const struct verb *v, int argc, char **argv) {
        struct cli_parser p = {.opts = spec_cli_options, .argc = argc, .argv = argv, .i = 1,
                               .verb = v->name};
        const char *arg;
        int id;
        while ((id = cli_next(&p, &arg)) != -1) {
                switch (id) {
                case -2:
                        return -EINVAL;
                case 0:
                        if (a->path && a->want_extra_arg && !a->extra_arg) {
                                a->extra_arg = arg;
                                break;
                        }
                        if (a->path)
                                return cli_usage_error(v->name, "one spec at a time (got '%s' and '%s')",
                                                       a->path, arg);
                        a->path = arg;
                        break;
                case OPT_EXPLAIN:
                case OPT_DEBUG:
                case OPT_PARALLEL:
                case OPT_CACHE_DIR:
                case OPT_WORK_DIR:
                case OPT_FAILED:
                case OPT_OUTPUT_DIR:
                case OPT_TREES_ONLY:
                        if (!a->build_opts &&
                            !(a->check_opts && id == OPT_WORK_DIR)) {
                                const char *name = "?";
                                for (const struct cli_option *op = spec_cli_options; op->name; op++)
                                        if (op->id == id)
                                                name = op->name;
                                return cli_usage_error(v->name, "option '--%s' is for kiln build", name);
                        }
                        if (id == OPT_EXPLAIN)
                                a->explain = true;
                        else if (id == OPT_DEBUG)
                                a->debug = true;
                        else if (id == OPT_FAILED)
                                a->failed = true;
                        else if (id == OPT_CACHE_DIR)
                                a->cache_dir = arg;
                        else if (id == OPT_WORK_DIR)
                                a->work_dir = arg;
                        else if (id == OPT_OUTPUT_DIR)
                                a->output_dir = arg;
                        else if (id == OPT_TREES_ONLY)
                                a->trees_only = true;
                        else {
                                char *end;
                                unsigned long n = strtoul(arg, &end, 10);
                                if (*end || n < 1 || n > 64)
                                        return cli_usage_error(v->name, "--parallel needs a number from 1 to 64, not '%s'", arg);
                                a->parallel = (unsigned)n;
                        }
                        break;
                case OPT_NO_CHECKS:
                case OPT_BOOT_CHECK:
                        if (!a->build_opts || a->check_opts)
                                return cli_usage_error(v->name, "option '--%s' is for kiln build",
                                                       id == OPT_NO_CHECKS ? "no-checks" : "boot-check");
                        if (id == OPT_NO_CHECKS)
                                a->no_checks = true;
                        else
                                a->boot_check = true;
                        break;
                case OPT_ALLOW_DEGRADED:
                        if (!a->build_opts && !a->check_opts)
                                return cli_usage_error(v->name, "option '--allow-degraded' is for kiln build "
                                                                "and kiln check");
                        a->allow_degraded = true;
                        break;
                case OPT_STORE:
                case OPT_NO_STORE:
                case OPT_NO_PUBLISH:
                        if (!a->build_opts || a->check_opts)
                                return cli_usage_error(v->name, "option '--%s' is for kiln build",
                                                       id == OPT_STORE      ? "store"
                                                       : id == OPT_NO_STORE ? "no-store"
                                                                            : "no-publish");
                        if (id == OPT_STORE)
                                a->store_dir = arg;
                        else if (id == OPT_NO_STORE)
                                a->no_store = true;
                        else
                                a->no_publish = true;
                        break;
                case OPT_CHECKS:
                case OPT_IMAGE:
                case OPT_TREE:
                case OPT_JUNIT:
                        if (!a->check_opts) {
                                const char *name = "?";
                                for (const struct cli_option *op = spec_cli_options; op->name; op++)
                                        if (op->id == id)
                                                name = op->name;
                                return cli_usage_error(v->name, "option '--%s' is for kiln check", name);
                        }
                        if (id == OPT_CHECKS)
                                a->checks_file = arg;
                        else if (id == OPT_IMAGE)
                                a->image = arg;
                        else if (id == OPT_TREE)
                                a->tree = true;
                        else
                                a->junit = arg;
                        break;
                case OPT_HELP:
                        cli_print_verb_help(v, stdout);
                        return 1;
                case OPT_VAR:
                        /* The argument is never echoed: "--var NAME VALUE"
                         * or "--var VALUE" puts a possible secret here. */
                        if (!strchr(arg, '='))
                                return cli_usage_error(v->name,
                                                       "--var expects NAME=VALUE as one argument; "
                                                       "argument %d has no '=' (not shown: it may be a secret)",
                                                       p.i - 1);
                        a->vars = xreallocarray(a->vars, a->nvars + 1, sizeof(char *));
                        a->vars[a->nvars++] = arg;
                        break;
                case OPT_VAR_FILE:
                        a->var_files = xreallocarray(a->var_files, a->nvar_files + 1, sizeof(char *));
                        a->var_files[a->nvar_files++] = arg;
                        break;
                case OPT_ONLY:
                        add_globs(&a->only, &a->nonly, arg);
                        break;
                case OPT_EXCEPT:
                        add_globs(&a->except, &a->nexcept, arg);
                        break;
                case OPT_JSON:
                        a->json = true;
                        break;
                case OPT_EVENTS:
                        if (!a->build_opts || a->check_opts)
                                return cli_usage_error(v->name, "option '--events' is for kiln build");
                        a->events = arg;
                        break;
                case OPT_FORCE:
                        a->force = true;
                        break;
                case OPT_ON_ERROR: {
                        bool ok = false;
                        for (const char *const *e = on_error_values; *e; e++)
                                ok = ok || streq(*e, arg);
                        if (!ok)
                                return cli_usage_error(v->name,
                                                       "--on-error must be cleanup, abort, ask or run-cleanup-provisioner, not '%s'",
                                                       arg);
                        a->on_error = arg;
                        break;
                }
                default:
                        return cli_usage_error(v->name, "option not supported here");
                }
        }
        if (!a->path)
                return cli_usage_error(v->name, "missing SPEC (e.g. kiln %s examples/minimal/kiln.yaml)",
                                       v->name);
        if (a->nonly && a->nexcept)
                return cli_usage_error(v->name, "use --only or --except, not both");
        return 0;
}

/* Absolute: the engines hand these paths to tools running in other
 * directories (sandboxes chdir into the tree). */
static char *absolute(const char *path) {
        if (path[0] == '/')
                return xstrdup(path);
        char cwd[4096];
        if (!getcwd(cwd, sizeof(cwd)))
                return xstrdup(path);
        return xasprintf("%s/%s", cwd, path);
}

char *cli_work_dir(const struct spec_args *a) {
        if (a->work_dir)
                return absolute(a->work_dir);
        const char *e = getenv("KILN_WORK_DIR");
        return absolute(e && *e ? e : ".kiln/build");
}

char *cli_cache_dir(const struct spec_args *a) {
        if (a->cache_dir)
                return absolute(a->cache_dir);
        const char *e = getenv("KILN_CACHE_DIR");
        if (e && *e)
                return absolute(e);
        e = getenv("XDG_CACHE_HOME");
        if (e && *e)
                return xasprintf("%s/kiln", e);
        e = getenv("HOME");
        return xasprintf("%s/.cache/kiln", e && *e ? e : "/var/cache");
}

void spec_args_done(struct spec_args *a) {
        free(a->vars);
        free(a->var_files);
        for (size_t i = 0; i < a->nonly; i++)
                free(a->only[i]);
        free(a->only);
        for (size_t i = 0; i < a->nexcept; i++)
                free(a->except[i]);
        free(a->except);
}

void cli_print_diags(struct cli *cli, struct diag_list *d) {
        if (d->n == 0)
                return;
        diag_sort(d);
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        diag_render(d, &sb, cli->color_err);
        fflush(stdout);
        fputs(strbuf_str(&sb), stderr);
}

static bool mark_same(const struct mark *a, const struct mark *b) {
        return a->src == b->src && a->line == b->line && a->col == b->col;
}

/* The spec layer keeps checks: opaque (the check engine sits above it), so
 * every verb that loads a spec has them parsed here: a mistake in a check
 * is a spec error for validate as much as for build. */
static int cli_check_checks(const struct spec *s, struct diag_list *d) {
        int ret = 0;
        _cleanup_free_ char *base = check_base_dir(s);
        for (size_t i = 0; i < s->nbuilds; i++) {
                const struct spec_build *b = s->builds[i];
                /* boot_check: options, where written (an inherited copy is
                 * checked in its parent). Matrix cells share one source
                 * node: check it once. */
                if (b->needed && b->boot_check_set && b->boot_check_opts) {
                        bool dup = false;
                        for (size_t k = 0; k < i && !dup; k++)
                                dup = s->builds[k]->needed && s->builds[k]->boot_check_set &&
                                      s->builds[k]->boot_check_opts &&
                                      mark_same(&s->builds[k]->boot_check_opts->mark,
                                                &b->boot_check_opts->mark);
                        struct check_boot_policy p;
                        _cleanup_free_ char *what = xasprintf("build '%s'", b->base ? b->base : b->name);
                        if (!dup && check_boot_policy_parse(b->boot_check_opts, what, d, &p) < 0)
                                ret = -EINVAL;
                        if (!dup)
                                check_boot_policy_done(&p);
                }
                if (!b->needed || !b->checks)
                        continue;
                /* A checks file is read once, however many builds name it
                 * (its diagnostics would otherwise repeat per build). */
                bool seen = false;
                for (size_t k = 0; k < i && b->checks->kind == V_STRING; k++) {
                        const struct value *o = s->builds[k]->checks;
                        seen = seen || (s->builds[k]->needed && o && o->kind == V_STRING &&
                                        streq(o->str, b->checks->str));
                }
                if (seen)
                        continue;
                struct check_list l;
                if (check_list_parse(b->checks, base, d, &l) < 0)
                        ret = -EINVAL;
                check_list_done(&l);
        }
        return ret;
}

/* spec_options.check_sections: checks: and publish: of the builds that
 * loaded, also when other parts of the spec have errors. */
static void cli_check_sections(const struct spec *s, struct diag_list *d, void *arg) {
        (void)arg;
        cli_check_checks(s, d);
        /* publish: targets are checked by their publisher (same reasoning:
         * the spec layer does not know the publishers). */
        publish_validate_spec(s, d);
}

int cli_load_spec(struct cli *cli, const struct spec_args *a, struct diag_list *diags,
                  struct spec **ret) {
        struct spec_options o = {
                .path = a->path,
                .var_files = a->var_files,
                .nvar_files = a->nvar_files,
                .vars = a->vars,
                .nvars = a->nvars,
                .only = (const char *const *)a->only,
                .nonly = a->nonly,
                .except = (const char *const *)a->except,
                .nexcept = a->nexcept,
                .environ = environ,
                .now = spec_now(),
                .check_sections = cli_check_sections,
        };
        /* The spec stays on success: the diagnostics point into its sources. */
        int r = spec_load(&o, diags, ret);
        if (!a->json)
                cli_print_diags(cli, diags);
        return r;
}
