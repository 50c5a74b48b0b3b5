/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h — the command-line front end: the verb table, option parsing shared
 * by verbs, and output helpers. The CLI is the only layer that prints.
 *
 * Exit codes (every verb): 0 success, 1 a build or check failed,
 * 2 usage error or invalid spec.
 */
#pragma once

#include <pthread.h>

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

/* ---- the options of verbs that load a spec --------------------------------- */

enum {
        OPT_HELP = 1,
        OPT_VAR,
        OPT_VAR_FILE,
        OPT_ONLY,
        OPT_EXCEPT,
        OPT_JSON,
        OPT_ON_ERROR,
        OPT_FORCE,
        /* build verbs only */
        OPT_EXPLAIN,
        OPT_DEBUG,
        OPT_PARALLEL,
        OPT_CACHE_DIR,
        OPT_WORK_DIR,
        OPT_FAILED,
        OPT_OUTPUT_DIR,
        OPT_TREES_ONLY,
        /* checks (kiln check; --no-checks and --boot-check for kiln build) */
        OPT_NO_CHECKS,
        OPT_BOOT_CHECK,
        OPT_ALLOW_DEGRADED,
        OPT_CHECKS,
        OPT_IMAGE,
        OPT_TREE,
        OPT_JUNIT,
        OPT_STORE,
        OPT_NO_STORE,
        OPT_NO_PUBLISH,
        OPT_EVENTS,
        OPT_SPEC_LAST,
};

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

extern const struct cli_option spec_cli_options[];

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

/* Secrets publishers register (publish_ctx.add_secret), to mask them in
 * what the verb prints. Initialise with CLI_SECRETS_INIT; add is thread-safe.
 * (secrets.c) */
struct cli_secrets {
        char **v;
        size_t n, cap;
        pthread_mutex_t lock;
};
#define CLI_SECRETS_INIT {.lock = PTHREAD_MUTEX_INITIALIZER}
/* Keeps a copy of secret (ignored when shorter than 4 bytes). */
void cli_secrets_add(struct cli_secrets *s, const char *secret);
/* text with every kept secret replaced by "<sensitive>"; owned by the caller. */
char *cli_secrets_mask(struct cli_secrets *s, const char *text);
/* Wipes and frees the copies. */
void cli_secrets_done(struct cli_secrets *s);

/* Prints diagnostics to stderr, coloured when stderr is a terminal. */
void cli_print_diags(struct cli *cli, struct diag_list *d);

void cli_print_verb_help(const struct verb *v, FILE *f);
