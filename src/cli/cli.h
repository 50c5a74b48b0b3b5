/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h — the command-line front end: the verb table, option parsing shared
 * by verbs, and output helpers. The CLI is the only layer that prints.
 *
 * Exit codes (every verb): 0 success, 1 a build or check failed,
 * 2 usage error or invalid spec.
 */
#pragma once

#include "base/diag.h"
#include "spec/spec.h"

enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 2,
};

struct cli {
        bool color_out;  /* colour on stdout */
        bool color_err;  /* colour on stderr */
        int verbose;
};

struct verb {
        const char *name;
        const char *summary;  /* one line for `kiln help` */
        const char *usage;    /* "kiln validate [options] SPEC" */
        const char *help;     /* the rest of `kiln help VERB` */
        int (*run)(struct cli *cli, int argc, char **argv);
};

extern const struct verb *const cli_verbs[]; /* NULL-terminated, in help order */
const struct verb *cli_find_verb(const char *name);

/* ---- option parsing -------------------------------------------------------
 * GNU style (--name, --name=VALUE, --name VALUE, -x) plus Packer's single-dash
 * long options (-name, -name=VALUE, -name VALUE). Options and arguments may
 * be mixed; "--" ends options. */

struct cli_option {
        const char *name;   /* long name, without dashes */
        char short_name;    /* 0 for none */
        bool has_arg;
        int id;
};

struct cli_parser {
        const struct cli_option *opts; /* terminated by an entry with name NULL */
        int argc;
        char **argv;
        int i;              /* next argv index */
        bool only_args;     /* after "--" */
        const char *verb;   /* for messages */
};

/* Returns the id of the next option and sets *ret_arg (its value or NULL);
 * returns 0 for a positional argument (in *ret_arg); -1 at the end;
 * -2 after printing a usage error. */
int cli_next(struct cli_parser *p, const char **ret_arg);

_printf_(2, 3) int cli_usage_error(const char *verb, const char *fmt, ...);

/* ---- option tables ----------------------------------------------------------
 * git's parse-options, in kiln's spelling: a verb lists its options in a table
 * beside it, each entry naming where its value goes, and cli_parse_options
 * walks argv (with cli_next above) and fills them in. A verb's help text stays
 * hand-written in its struct verb. */

enum cli_opt_type {
        CLI_OPT_T_END = 0,   /* ends the table */
        CLI_OPT_T_HELP,      /* -h/--help: prints the verb's help */
        CLI_OPT_T_FLAG,      /* bool *value = true */
        CLI_OPT_T_STRING,    /* const char **value = the option's argument */
        CLI_OPT_T_UINT,      /* unsigned *value: decimal digits only, min..max */
        CLI_OPT_T_CALLBACK,  /* fn decides (with an argument when has_arg) */
        CLI_OPT_T_ARGS,      /* positional arguments, each to fn (no such entry:
                                any is "unexpected argument 'ARG'") */
};

struct cli_opt;
/* Takes one option (or positional argument): arg is its value (NULL for an
 * option without one), argi the index in argv of the word that held it.
 * Returns >= 0, or -EINVAL after printing a usage error (cli_usage_error). */
typedef int (*cli_opt_fn)(const struct cli_opt *o, const char *verb, const char *arg, int argi);

struct cli_opt {
        enum cli_opt_type type;
        const char *name;      /* long name without dashes (NULL for T_ARGS) */
        char short_name;       /* 0 for none */
        void *value;           /* where the value goes (see the types); T_CALLBACK: fn's */
        bool has_arg;          /* T_CALLBACK: takes a value */
        unsigned min, max;     /* T_UINT's range */
        const char *expect;    /* T_UINT: the usage error is "EXPECT, not 'ARG'" */
        cli_opt_fn fn;         /* T_CALLBACK, T_ARGS */
        const char *only_for;  /* not NULL: known here but refused as
                                  "option '--NAME' is for ONLY_FOR" (verbs sharing
                                  one table, such as spec_args) */
};

#define CLI_OPT_HELP() {.type = CLI_OPT_T_HELP, .name = "help", .short_name = 'h'}
#define CLI_OPT_FLAG(n, s, v, ...) \
        {.type = CLI_OPT_T_FLAG, .name = (n), .short_name = (s), .value = (v), __VA_ARGS__}
#define CLI_OPT_STRING(n, s, v, ...) \
        {.type = CLI_OPT_T_STRING, .name = (n), .short_name = (s), .value = (v), __VA_ARGS__}
#define CLI_OPT_UINT(n, s, v, lo, hi, exp, ...) \
        {.type = CLI_OPT_T_UINT, .name = (n), .short_name = (s), .value = (v), .min = (lo), \
         .max = (hi), .expect = (exp), __VA_ARGS__}
#define CLI_OPT_CALLBACK(n, s, v, arg, f, ...) \
        {.type = CLI_OPT_T_CALLBACK, .name = (n), .short_name = (s), .value = (v), .has_arg = (arg), \
         .fn = (f), __VA_ARGS__}
#define CLI_OPT_ARGS(v, f) {.type = CLI_OPT_T_ARGS, .value = (v), .fn = (f)}
#define CLI_OPT_END() {.type = CLI_OPT_T_END}

/* Parses argv[1..argc) (argv[0] is the verb) against opts, in order: the
 * first mistake is the one reported. Returns 0 when the verb goes on, 1
 * when --help was printed, or -EINVAL after a usage error was printed;
 * cli_parse_exit(r) is the verb's exit code for the last two. */
int cli_parse_options(const struct verb *v, const struct cli_opt *opts, int argc, char **argv);
static inline int cli_parse_exit(int r) { return r > 0 ? EXIT_OK : EXIT_USAGE; }

/* s as a whole decimal number (digits only, no sign or spaces) from min
 * to max: 0, or -EINVAL. */
int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret);

/* ---- the options of verbs that load a spec --------------------------------- */

struct spec_args {
        const char *path;
        const char **var_files;
        size_t nvar_files;
        const char **vars;
        size_t nvars;
        char **only;          /* split on commas, owned */
        size_t nonly;
        char **except;
        size_t nexcept;
        bool json;
        bool force;
        const char *on_error;
        /* build verbs */
        bool build_opts;        /* set by the verb: accept the options below */
        bool explain;
        bool debug;
        unsigned parallel;
        const char *cache_dir;
        const char *work_dir;
        bool failed;
        const char *output_dir;
        bool trees_only;
        bool no_checks;         /* build: skip the checks */
        bool boot_check;        /* build: boot the image and run the checks in it */
        bool allow_degraded;    /* build, check --image: a boot with failed units passes */
        const char *store_dir;  /* build: --store DIR (default: store_default_dir()) */
        bool no_store;          /* build: do not add images to the store */
        bool no_publish;        /* build: do not publish */
        const char *events;     /* build: --events FILE (the run's events as JSON lines) */
        bool check_opts;        /* set by kiln check: accept the options below */
        const char *checks_file;  /* --checks FILE */
        const char *image;      /* --image IMAGE */
        bool tree;              /* --tree */
        const char *junit;      /* --junit FILE */
        const char *extra_arg;  /* a second positional argument (kiln shell SPEC BUILD) */
        bool want_extra_arg;
};

/* Where builds and the cache live: --work-dir / KILN_WORK_DIR / .kiln/build,
 * --cache-dir / KILN_CACHE_DIR / $XDG_CACHE_HOME/kiln / ~/.cache/kiln.
 * Strings owned by the caller. */
char *cli_work_dir(const struct spec_args *a);
char *cli_cache_dir(const struct spec_args *a);

/* Parses argv for a spec-loading verb. Returns 0, 1 when --help was printed,
 * or -EINVAL after a usage error was printed. */
int spec_args_parse(struct spec_args *a, const struct verb *v, int argc, char **argv);
void spec_args_done(struct spec_args *a);

/* Loads the spec described by a, printing diagnostics (text, or nothing when
 * json is set: then *ret_diags keeps them for the caller). Returns 0 or
 * -errno. The builds' checks: are parsed too (check.h); when only they are
 * wrong, -EINVAL comes with *ret set (the diagnostics point into it): the
 * caller frees it as usual, after the diagnostics. */
int cli_load_spec(struct cli *cli, const struct spec_args *a, struct diag_list *diags,
                  struct spec **ret);

/* Prints the outcome of cli_load_spec (r, its diagnostics, the spec or
 * NULL) as kiln validate --json does, on stdout: one object, on one line
 * unless pretty. (verb_validate.c) */
void cli_print_load_json(const struct spec_args *a, int r, struct diag_list *d, const struct spec *s,
                         bool pretty);

/* Prints diagnostics to stderr, coloured when stderr is a terminal. */
void cli_print_diags(struct cli *cli, struct diag_list *d);

void cli_print_verb_help(const struct verb *v, FILE *f);
