/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line parsing. Hand-written rather than getopt_long_only because
 * kiln accepts both GNU spellings and Packer's single-dash long options, and
 * getopt's prefix matching would make "-v" ambiguous with "-var" and
 * "-var-file". Here long names must match exactly; unknown options get a
 * "did you mean".
 */
#include "cli/cli.h"

#include "base/suggest.h"

#include <stdarg.h>

int cli_usage_error(const char *verb, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("kiln: ", stderr);
        if (verb)
                fprintf(stderr, "%s: ", verb);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        fprintf(stderr, "Run 'kiln help%s%s' for usage.\n", verb ? " " : "", verb ? verb : "");
        return -EINVAL;
}

static const struct cli_option *find_long(const struct cli_option *opts, const char *name,
                                          size_t len) {
        for (const struct cli_option *o = opts; o->name; o++)
                if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                        return o;
        return NULL;
}

static int unknown(struct cli_parser *p, const char *arg, const char *name, size_t len) {
        const char *names[64];
        size_t n = 0;
        for (const struct cli_option *o = p->opts; o->name && n < ARRAY_SIZE(names); o++)
                names[n++] = o->name;
        _cleanup_free_ char *nm = xstrndup(name, len);
        const char *sug = suggest_closest(nm, names, n);
        if (sug)
                cli_usage_error(p->verb, "unknown option '%s' (did you mean '--%s'?)", arg, sug);
        else
                cli_usage_error(p->verb, "unknown option '%s'", arg);
        return -2;
}

int cli_next(struct cli_parser *p, const char **ret_arg) {
        *ret_arg = NULL;
        if (p->i >= p->argc)
                return -1;
        char *arg = p->argv[p->i++];
        if (p->only_args || arg[0] != '-' || arg[1] == 0) {
                *ret_arg = arg;
                return 0;
        }
        if (streq(arg, "--")) {
                p->only_args = true;
                return cli_next(p, ret_arg);
        }
        const char *name = arg + 1 + (arg[1] == '-');
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct cli_option *o = NULL;
        if (arg[1] == '-' || len > 1) {
                o = find_long(p->opts, name, len);
                /* "-v" style short option given with one dash. */
                if (!o && arg[1] != '-' && len > 1) {
                        for (const struct cli_option *s = p->opts; s->name; s++)
                                if (s->short_name && s->short_name == name[0] && !s->has_arg && len == 1)
                                        o = s;
                }
                if (!o)
                        return unknown(p, arg, name, len);
        } else {
                for (const struct cli_option *s = p->opts; s->name && !o; s++)
                        if (s->short_name && s->short_name == name[0])
                                o = s;
                if (!o)
                        return unknown(p, arg, name, len);
        }
        if (!o->has_arg) {
                if (eq) {
                        cli_usage_error(p->verb, "option '--%s' takes no value", o->name);
                        return -2;
                }
                return o->id;
        }
        if (eq) {
                *ret_arg = eq + 1;
                return o->id;
        }
        if (p->i >= p->argc) {
                cli_usage_error(p->verb, "option '%s' needs a value", arg);
                return -2;
        }
        *ret_arg = p->argv[p->i++];
        return o->id;
}

int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret) {
        if (!(s[0] >= '0' && s[0] <= '9'))
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

/* One option (or, for o->type T_ARGS, one positional argument). */
static int take(const struct verb *v, const struct cli_opt *o, const char *arg, int argi) {
        if (o->only_for)
                return cli_usage_error(v->name, "option '--%s' is for %s", o->name, o->only_for);
        switch (o->type) {
        case CLI_OPT_T_HELP:
                cli_print_verb_help(v, stdout);
                return 1;
        case CLI_OPT_T_FLAG:
                *(bool *)o->value = true;
                return 0;
        case CLI_OPT_T_STRING:
                *(const char **)o->value = arg;
                return 0;
        case CLI_OPT_T_UINT:
                if (cli_parse_uint(arg, o->min, o->max, o->value) < 0)
                        return cli_usage_error(v->name, "%s, not '%s'", o->expect, arg);
                return 0;
        case CLI_OPT_T_CALLBACK:
        case CLI_OPT_T_ARGS:
                return o->fn(o, v->name, arg, argi) < 0 ? -EINVAL : 0;
        case CLI_OPT_T_END:
                break;
        }
        return cli_usage_error(v->name, "option not supported here");
}

int cli_parse_options(const struct verb *v, const struct cli_opt *opts, int argc, char **argv) {
        /* cli_next's view of the table: ids are indexes into opts, plus 1. */
        size_t n = 0;
        while (opts[n].type != CLI_OPT_T_END)
                n++;
        _cleanup_free_ struct cli_option *names = xcalloc(n + 1, sizeof(*names));
        const struct cli_opt *args = NULL;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (opts[i].type == CLI_OPT_T_ARGS) {
                        args = &opts[i];
                        continue;
                }
                bool has_arg = opts[i].type == CLI_OPT_T_STRING || opts[i].type == CLI_OPT_T_UINT ||
                               (opts[i].type == CLI_OPT_T_CALLBACK && opts[i].has_arg);
                names[k++] = (struct cli_option){opts[i].name, opts[i].short_name, has_arg, (int)i + 1};
        }
        struct cli_parser p = {.opts = names, .argc = argc, .argv = argv, .i = 1, .verb = v->name};
        const char *arg;
        int id, r = 0;
        while (r == 0 && (id = cli_next(&p, &arg)) != -1) {
                if (id == -2)
                        r = -EINVAL;
                else if (id > 0)
                        r = take(v, &opts[id - 1], arg, p.i - 1);
                else if (args)
                        r = take(v, args, arg, p.i - 1);
                else
                        r = cli_usage_error(v->name, "unexpected argument '%s'", arg);
        }
        return r;
}
