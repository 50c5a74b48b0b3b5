/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln's entry point: global options, then the verb from the table below.
 * Each verb lives in its own file (verb_*.c) and is registered here.
 */
#include "cli/cli.h"

#include "base/suggest.h"

#include <unistd.h>

extern const struct verb verb_help, verb_version, verb_validate, verb_inspect, verb_build,
        verb_shell, verb_cache, verb_boot, verb_cidata;

extern const struct verb verb_check;
extern const struct verb verb_images, verb_serve_images;
extern const struct verb verb_publish;

const struct verb *const cli_verbs[] = {
        &verb_validate,
        &verb_inspect,
        &verb_build,
        &verb_check,
        &verb_shell,
        &verb_cache,
        &verb_boot,
        &verb_cidata,
        &verb_images,
        &verb_serve_images,
        &verb_publish,
        &verb_help,
        &verb_version,
        NULL,
};

const struct verb *cli_find_verb(const char *name) {
        for (const struct verb *const *v = cli_verbs; *v; v++)
                if (streq((*v)->name, name))
                        return *v;
        return NULL;
}

void cli_print_verb_help(const struct verb *v, FILE *f) {
        fprintf(f, "Usage: %s\n\n%s\n", v->usage, v->summary);
        if (v->help && *v->help)
                fprintf(f, "\n%s", v->help);
}

static const char main_usage[] =
        "Usage: kiln [--color=WHEN] [-v] VERB [options] [args]\n"
        "\n"
        "kiln builds bootable VM images from one declarative spec: every role,\n"
        "every architecture, each step cached.\n"
        "\n"
        "Verbs:\n";

static const char main_footer[] =
        "\n"
        "Global options:\n"
        "  --color=WHEN   colour output: auto (default: on a terminal), always, never\n"
        "                 (NO_COLOR in the environment also turns colour off)\n"
        "  -v, --verbose  more detail (for build: every step's output, like --debug)\n"
        "  --version      print the version and exit\n"
        "  -h, --help     this help\n"
        "\n"
        "Exit codes: 0 success, 1 a build or check failed, 2 usage error or invalid spec.\n"
        "Run 'kiln help VERB' for a verb's options. The spec format: docs/spec.md.\n";

static void print_main_help(FILE *f) {
        fputs(main_usage, f);
        for (const struct verb *const *v = cli_verbs; *v; v++)
                fprintf(f, "  %-13s %s\n", (*v)->name, (*v)->summary);
        fputs(main_footer, f);
}

/* The verb closest to a misspelt name, or NULL. */
static const char *suggest_verb(const char *name) {
        const char *names[32];
        size_t n = 0;
        for (const struct verb *const *p = cli_verbs; *p && n < ARRAY_SIZE(names); p++)
                names[n++] = (*p)->name;
        return suggest_closest(name, names, n);
}

static int help_run(struct cli *cli, int argc, char **argv) {
        if (argc < 2) {
                print_main_help(stdout);
                return EXIT_OK;
        }
        if (argc > 2) {
                cli_usage_error("help", "takes at most one VERB");
                return EXIT_USAGE;
        }
        const struct verb *v = cli_find_verb(argv[1]);
        if (!v) {
                const char *sug = suggest_verb(argv[1]);
                fprintf(stderr, "kiln: help: unknown verb '%s'%s%s%s\n", argv[1],
                        sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
                return EXIT_USAGE;
        }
        cli_print_verb_help(v, stdout);
        return EXIT_OK;
}

const struct verb verb_help = {
        .name = "help",
        .summary = "Show help for kiln or one verb",
        .usage = "kiln help [VERB]",
        .help = "",
        .run = help_run,
};

static int version_run(struct cli *cli, int argc, char **argv) {
        printf("kiln %s\n", KILN_VERSION);
        return EXIT_OK;
}

const struct verb verb_version = {
        .name = "version",
        .summary = "Print kiln's version",
        .usage = "kiln version",
        .help = "Same as kiln --version.\n",
        .run = version_run,
};

static bool want_color(const char *when, int fd) {
        if (streq(when, "always"))
                return true;
        if (streq(when, "never"))
                return false;
        const char *nc = getenv("NO_COLOR");
        if (nc && *nc)
                return false;
        const char *term = getenv("TERM");
        if (term && streq(term, "dumb"))
                return false;
        return isatty(fd);
}

int main(int argc, char **argv) {
        struct cli cli = {0};
        const char *color = "auto";
        int i = 1;
        for (; i < argc && argv[i][0] == '-'; i++) {
                const char *a = argv[i];
                const char *v;
                if (streq(a, "--version") || streq(a, "-version")) {
                        printf("kiln %s\n", KILN_VERSION);
                        return EXIT_OK;
                } else if (streq(a, "-h") || streq(a, "--help") || streq(a, "-help")) {
                        print_main_help(stdout);
                        return EXIT_OK;
                } else if (streq(a, "-v") || streq(a, "--verbose")) {
                        cli.verbose++;
                } else if ((v = startswith(a, "--color=")) || (v = startswith(a, "--colour="))) {
                        if (!streq(v, "auto") && !streq(v, "always") && !streq(v, "never")) {
                                cli_usage_error(NULL, "--color must be auto, always or never, not '%s'", v);
                                return EXIT_USAGE;
                        }
                        color = v;
                } else if (streq(a, "--no-color") || streq(a, "-no-color")) {
                        color = "never";
                } else {
                        cli_usage_error(NULL, "unknown global option '%s' (verb options go after the verb)", a);
                        return EXIT_USAGE;
                }
        }
        if (i >= argc) {
                print_main_help(stderr);
                return EXIT_USAGE;
        }
        cli.color_out = want_color(color, STDOUT_FILENO);
        cli.color_err = want_color(color, STDERR_FILENO);
        const struct verb *v = cli_find_verb(argv[i]);
        if (!v) {
                const char *sug = suggest_verb(argv[i]);
                if (sug)
                        cli_usage_error(NULL, "unknown verb '%s' (did you mean '%s'?)", argv[i], sug);
                else
                        cli_usage_error(NULL, "unknown verb '%s'", argv[i]);
                return EXIT_USAGE;
        }
        return v->run(&cli, argc - i, argv + i);
}
