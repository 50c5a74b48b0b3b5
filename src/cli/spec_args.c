/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Options shared by every verb that reads a spec (validate, inspect, and
 * later build). -on-error and -force are accepted and checked here too, so
 * that the same flags can be passed to `kiln validate` and `kiln build`, as
 * CI scripts written for Packer do.
 */
#include "cli/cli.h"

#include "pipeline/pipeline.h"

#include <unistd.h>

extern char **environ;

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

/* The SPEC, or kiln shell's BUILD after it. */
static int take_path(const struct cli_opt *o, const char *verb, const char *arg, int argi) {
        struct spec_args *a = o->value;
        if (a->path && a->want_extra_arg && !a->extra_arg) {
                a->extra_arg = arg;
                return 0;
        }
        if (a->path)
                return cli_usage_error(verb, "one spec at a time (got '%s' and '%s')", a->path, arg);
        a->path = arg;
        return 0;
}

static int take_var(const struct cli_opt *o, const char *verb, const char *arg, int argi) {
        struct spec_args *a = o->value;
        /* The argument is never echoed: "--var NAME VALUE" or "--var VALUE"
         * puts a possible secret here. */
        if (!strchr(arg, '='))
                return cli_usage_error(verb,
                                       "--var expects NAME=VALUE as one argument; "
                                       "argument %d has no '=' (not shown: it may be a secret)",
                                       argi);
        a->vars = xreallocarray(a->vars, a->nvars + 1, sizeof(char *));
        a->vars[a->nvars++] = arg;
        return 0;
}

static int take_var_file(const struct cli_opt *o, const char *verb, const char *arg, int argi) {
        struct spec_args *a = o->value;
        a->var_files = xreallocarray(a->var_files, a->nvar_files + 1, sizeof(char *));
        a->var_files[a->nvar_files++] = arg;
        return 0;
}

static int take_only(const struct cli_opt *o, const char *verb, const char *arg, int argi) {
        struct spec_args *a = o->value;
        add_globs(&a->only, &a->nonly, arg);
        return 0;
}

static int take_except(const struct cli_opt *o, const char *verb, const char *arg, int argi) {
        struct spec_args *a = o->value;
        add_globs(&a->except, &a->nexcept, arg);
        return 0;
}

static int take_on_error(const struct cli_opt *o, const char *verb, const char *arg, int argi) {
        for (const char *const *e = on_error_values; *e; e++)
                if (streq(*e, arg)) {
                        *(const char **)o->value = arg;
                        return 0;
                }
        return cli_usage_error(verb, "--on-error must be cleanup, abort, ask or run-cleanup-provisioner, not '%s'",
                               arg);
}

int spec_args_parse(struct spec_args *a, const struct verb *v, int argc, char **argv) {
        /* One table for every verb that reads a spec; what a verb does not
         * take is still known, so that the error names the verb it is for. */
        const char *build = a->build_opts ? NULL : "kiln build";
        const char *build_not_check = a->build_opts && !a->check_opts ? NULL : "kiln build";
        const char *check = a->check_opts ? NULL : "kiln check";
        const char *work_dir = a->build_opts || a->check_opts ? NULL : "kiln build";
        const char *degraded = a->build_opts || a->check_opts ? NULL : "kiln build and kiln check";
        const struct cli_opt opts[] = {
                CLI_OPT_HELP(),
                CLI_OPT_CALLBACK("var", 0, a, true, take_var),
                CLI_OPT_CALLBACK("var-file", 0, a, true, take_var_file),
                CLI_OPT_CALLBACK("only", 0, a, true, take_only),
                CLI_OPT_CALLBACK("except", 0, a, true, take_except),
                CLI_OPT_FLAG("json", 0, &a->json),
                CLI_OPT_CALLBACK("on-error", 0, &a->on_error, true, take_on_error),
                CLI_OPT_FLAG("force", 0, &a->force),
                CLI_OPT_FLAG("explain", 0, &a->explain, .only_for = build),
                CLI_OPT_FLAG("debug", 0, &a->debug, .only_for = build),
                CLI_OPT_UINT("parallel", 'j', &a->parallel, 1, 64, "--parallel needs a number from 1 to 64",
                             .only_for = build),
                CLI_OPT_UINT("parallel-builds", 0, &a->parallel, 1, 64, "--parallel needs a number from 1 to 64",
                             .only_for = build),
                CLI_OPT_STRING("cache-dir", 0, &a->cache_dir, .only_for = build),
                CLI_OPT_STRING("work-dir", 0, &a->work_dir, .only_for = work_dir),
                CLI_OPT_FLAG("failed", 0, &a->failed, .only_for = build),
                CLI_OPT_STRING("output-dir", 'o', &a->output_dir, .only_for = build),
                CLI_OPT_FLAG("trees-only", 0, &a->trees_only, .only_for = build),
                CLI_OPT_FLAG("no-checks", 0, &a->no_checks, .only_for = build_not_check),
                CLI_OPT_FLAG("boot-check", 0, &a->boot_check, .only_for = build_not_check),
                CLI_OPT_FLAG("allow-degraded", 0, &a->allow_degraded, .only_for = degraded),
                CLI_OPT_STRING("checks", 0, &a->checks_file, .only_for = check),
                CLI_OPT_STRING("image", 0, &a->image, .only_for = check),
                CLI_OPT_FLAG("tree", 0, &a->tree, .only_for = check),
                CLI_OPT_STRING("junit", 0, &a->junit, .only_for = check),
                CLI_OPT_STRING("store", 0, &a->store_dir, .only_for = build_not_check),
                CLI_OPT_FLAG("no-store", 0, &a->no_store, .only_for = build_not_check),
                CLI_OPT_FLAG("no-publish", 0, &a->no_publish, .only_for = build_not_check),
                CLI_OPT_STRING("events", 0, &a->events, .only_for = build_not_check),
                CLI_OPT_ARGS(a, take_path),
                CLI_OPT_END(),
        };
        int r = cli_parse_options(v, opts, argc, argv);
        if (r != 0)
                return r;
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
        };
        /* Every section is parsed by its engine (checks:, publish: too: a
         * mistake there is a spec error for validate as much as for
         * build). The spec stays on success: the diagnostics point into
         * its sources. */
        int r = pipeline_load(&o, diags, ret);
        if (!a->json)
                cli_print_diags(cli, diags);
        return r;
}
