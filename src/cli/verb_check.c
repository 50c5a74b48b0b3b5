/* SPDX-License-Identifier: Apache-2.0 */
/* kiln check: run a spec's checks against a built tree (offline, in a
 * sandbox) or inside a booted image, and report them as a table, JSON or
 * JUnit XML. */
#include "cli/cli.h"

#include "os/sandbox.h"
#include "check/check.h"

#include <signal.h>

static int check_verb_run(struct cli *cli, int argc, char **argv);

const struct verb verb_check = {
        .name = "check",
        .summary = "Run a build's checks against its tree or a booted image",
        .usage = "kiln check [options] SPEC",
        .help = "Runs the checks: of each selected build (or those of --checks FILE)\n"
                "against the build's finished tree from the work dir — chrooted in a\n"
                "sandbox without network, on a throwaway layer, so nothing changes — or,\n"
                "with --image, inside that image booted in QEMU over SSH. Checks that\n"
                "need a running system (service running, port, mount, kernel_param, or\n"
                "boot_only: true) are reported as skipped offline.\n"
                "\n"
                "Options:\n"
                "  --only GLOB[,GLOB]  check only these builds (--except leaves some out)\n"
                "  --checks FILE       run the checks in FILE (YAML: a list of checks or\n"
                "                      a goss-style map) instead of the builds' checks:\n"
                "  --tree              check the built tree (the default; needs root and a\n"
                "                      finished `kiln build`)\n"
                "  --image IMAGE       boot IMAGE (raw or qcow2, never modified) and check\n"
                "                      inside the guest; one build at a time. A boot that\n"
                "                      systemd calls degraded (a unit failed) fails the\n"
                "                      first check, \"system running\", naming the units\n"
                "  --allow-degraded    with --image: a degraded boot passes (the build's\n"
                "                      boot_check: {allow_failed_units: [...]} is narrower)\n"
                "  --json              print the reports as JSON on stdout\n"
                "  --junit FILE        also write the reports as JUnit XML to FILE\n"
                "  --work-dir DIR      where kiln build left the trees (default .kiln/build)\n"
                "                      (also KILN_WORK_DIR)\n"
                "  --var, --var-file, --except   as for kiln validate\n"
                "\n"
                "QEMU uses KVM when a probe shows it works, else TCG; KILN_ACCEL=tcg (or\n"
                "kvm) in the environment decides instead.\n"
                "\n"
                "The check kinds and their options: docs/spec.md (checks) and\n"
                "docs/validate.md.\n"
                "\n"
                "Exit status: 0 every check passed or was skipped, 1 a check failed or\n"
                "the checks could not run, 2 usage or spec error.\n",
        .run = check_verb_run,
};

static volatile sig_atomic_t cancelled;

static void on_signal(int sig) {
        (void)sig;
        cancelled = 1;
}

struct target {
        const struct spec_build *build;
        const struct check_list *list; /* own, or the build's (parsed when loaded) */
        struct check_list own;
        struct check_report report;
        bool ran;
};

/* The checks one build runs: --checks FILE, or its own (parsed when the
 * spec was loaded; none: an empty list). */
static int load_checks(const struct spec_args *a, const struct spec_build *b, struct diag_list *d,
                       struct target *t) {
        t->list = &t->own;
        if (a->checks_file)
                return check_list_load(a->checks_file, d, &t->own);
        if (check_list_of(b))
                t->list = check_list_of(b);
        return 0;
}

static int run_tree(struct target *t, const char *work) {
        _cleanup_free_ char *why = NULL;
        int r = check_run_finished_tree(t->list, work, t->build, &t->report, &why);
        if (r < 0)
                fprintf(stderr, "kiln: check: %s\n", why);
        return r;
}

static int run_image(struct target *t, const char *image, bool allow_degraded) {
        struct check_boot_policy pol;
        check_boot_policy_of(t->build, &pol); /* parsed when the spec was loaded */
        pol.allow_degraded = pol.allow_degraded || allow_degraded;
        struct check_boot_options bo = {.image = image, .accel = getenv("KILN_ACCEL"),
                                        .cancel = &cancelled, .policy = &pol, .timeout_s = pol.timeout_s};
        _cleanup_free_ char *why = NULL;
        fprintf(stderr, "kiln: check: booting %s (this takes a minute or two without KVM)...\n", image);
        int r = check_run_booted(t->list, &bo, t->build->name, &t->report, &why);
        if (r < 0)
                fprintf(stderr, "kiln: check: %s: %s\n", t->build->name, why ? why : strerror(-r));
        return r;
}

/* The selected builds that have checks to run (with --image every selected
 * build: a booted image is always judged by systemd's verdict), with their
 * check lists loaded. Returns 0, or -EINVAL after printing diagnostics. */
static int select_targets(struct cli *cli, const struct spec_args *a, const struct spec *s, struct diag_list *d,
                          struct target **ret, size_t *ret_n) {
        struct target *targets = xcalloc(s->nbuilds + 1, sizeof(*targets));
        *ret = targets;
        for (size_t i = 0; i < s->nbuilds; i++) {
                const struct spec_build *b = s->builds[i];
                if (!b->selected || (!b->checks && !a->checks_file && !a->image))
                        continue;
                struct target *t = &targets[(*ret_n)++];
                t->build = b;
                if (load_checks(a, b, d, t) < 0) {
                        cli_print_diags(cli, d);
                        return -EINVAL;
                }
        }
        return 0;
}

/* Whether the checks can run here: sandboxes for trees; for --image, the
 * handlers that let Ctrl-C stop the VM. */
static int prepare(const struct spec_args *a) {
        if (a->image) {
                struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits see EINTR */
                sigaction(SIGINT, &sa, NULL);
                sigaction(SIGTERM, &sa, NULL);
                return 0;
        }
        const char *why = NULL;
        int r = sandbox_probe(&why);
        if (r < 0)
                fprintf(stderr, "kiln: check: cannot create sandboxes here: %s\n", why ? why : "?");
        return r;
}

/* Runs every target until one is interrupted; true when all of them ran
 * (whatever their checks said). */
static bool run_targets(const struct spec_args *a, const char *work, struct target *targets, size_t nt) {
        bool all_ran = true;
        for (size_t i = 0; i < nt && !cancelled; i++) {
                struct target *t = &targets[i];
                int r = a->image ? run_image(t, a->image, a->allow_degraded) : run_tree(t, work);
                t->ran = r >= 0;
                all_ran = all_ran && t->ran;
        }
        return all_ran;
}

/* Prints the reports of the targets that ran (JSON or tables) and writes
 * --junit; returns the exit code. */
static int report(struct cli *cli, const struct spec_args *a, const struct target *targets, size_t nt,
                  bool all_ran) {
        _cleanup_free_ const struct check_report **reps = xcalloc(nt + 1, sizeof(*reps));
        size_t nr = 0;
        unsigned failed = 0;
        for (size_t i = 0; i < nt; i++)
                if (targets[i].ran) {
                        reps[nr++] = &targets[i].report;
                        failed += targets[i].report.failed;
                }
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        if (a->json)
                check_reports_json(reps, nr, a->path, all_ran, &out);
        for (size_t i = 0; i < nr && !a->json; i++) {
                strbuf_addf(&out, "%s%s (%s):\n", i ? "\n" : "", reps[i]->build, reps[i]->where);
                check_report_table(reps[i], &out, cli->color_out);
        }
        fputs(strbuf_str(&out), stdout);
        if (a->junit) {
                int r = check_report_write_junit(reps, nr, a->junit);
                if (r < 0) {
                        fprintf(stderr, "kiln: check: cannot write %s: %s\n", a->junit, strerror(-r));
                        all_ran = false;
                }
        }
        return all_ran && !failed && !cancelled ? EXIT_OK : EXIT_FAILED;
}

/* The targets of one run; frees their reports and check lists. */
struct targets {
        struct target *v;
        size_t n;
};

static void targets_done(struct targets *t) {
        for (size_t i = 0; i < t->n; i++) {
                check_report_done(&t->v[i].report);
                check_list_done(&t->v[i].own);
        }
        free(t->v);
}

static int check_verb_run(struct cli *cli, int argc, char **argv) {
        _cleanup_(spec_args_done) struct spec_args a = {.check_opts = true};
        int r = spec_args_parse(&a, &verb_check, argc, argv);
        if (r != 0)
                return cli_parse_exit(r);
        if (a.image && a.tree)
                return cli_usage_error("check", "use --image or --tree, not both"), EXIT_USAGE;
        _cleanup_(diag_list_done) struct diag_list d = {0};
        _cleanup_(spec_freep) struct spec *s = NULL;
        _cleanup_free_ char *work = cli_work_dir(&a);
        _cleanup_(targets_done) struct targets t = {0};
        if (cli_load_spec(cli, &a, &d, &s) < 0 || select_targets(cli, &a, s, &d, &t.v, &t.n) < 0)
                return EXIT_USAGE;
        if (t.n == 0) {
                fprintf(stderr, "kiln: check: no checks to run: the selected builds have no checks: "
                                "(give some with --checks FILE)\n");
                return EXIT_OK;
        }
        if (a.image && t.n > 1)
                return cli_usage_error("check", "--image checks one build; choose it with --only (%zu selected)", t.n),
                       EXIT_USAGE;
        if (prepare(&a) < 0)
                return EXIT_FAILED;
        bool all_ran = run_targets(&a, work, t.v, t.n);
        return report(cli, &a, t.v, t.n, all_ran);
}
