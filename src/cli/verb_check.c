/* SPDX-License-Identifier: Apache-2.0 */
/* kiln check: run a spec's checks against a built tree (offline, in a
 * sandbox) or inside a booted image, and report them as a table, JSON or
 * JUnit XML. */
#include "cli/cli.h"

#include "provision/build.h"
#include "os/sandbox.h"
#include "check/check.h"

#include <signal.h>
#include <sys/stat.h>

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
        struct build_options bo = {.work_dir = work};
        char **layers = NULL;
        size_t n = 0;
        int r = build_layers(&bo, t->build, &layers, &n);
        if (r < 0) {
                fprintf(stderr, "kiln: check: %s has no finished tree in %s (run kiln build first)\n",
                        t->build->name, work);
                return r;
        }
        for (size_t i = 0; i < n && r == 0; i++) {
                struct stat st;
                if (stat(layers[i], &st) < 0) {
                        r = -errno;
                        fprintf(stderr, "kiln: check: a layer of %s is no longer in the cache (%s); run kiln build again\n",
                                t->build->name, layers[i]);
                }
        }
        if (r == 0) {
                _cleanup_free_ char *dir = build_dir(&bo, t->build);
                _cleanup_free_ char *scratch = xasprintf("%s/run", dir);
                struct check_tree tree = {.layers = (const char *const *)layers, .nlayers = n,
                                          .scratch_dir = scratch};
                struct check_exec x;
                check_exec_tree(&x, &tree);
                r = check_run(t->list, &x, t->build->name, &t->report);
                if (r < 0)
                        fprintf(stderr, "kiln: check: %s: cannot run the checks in the tree: %s\n",
                                t->build->name, strerror(-r));
        }
        for (size_t i = 0; i < n; i++)
                free(layers[i]);
        free(layers);
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

static int check_verb_run(struct cli *cli, int argc, char **argv) {
        struct spec_args a = {.check_opts = true};
        int r = spec_args_parse(&a, &verb_check, argc, argv);
        if (r != 0) {
                spec_args_done(&a);
                return r > 0 ? EXIT_OK : EXIT_USAGE;
        }
        int ret = EXIT_USAGE;
        struct diag_list d = {0};
        _cleanup_(spec_freep) struct spec *s = NULL;
        _cleanup_free_ char *work = cli_work_dir(&a);
        struct target *targets = NULL;
        size_t nt = 0;
        if (a.image && a.tree) {
                cli_usage_error("check", "use --image or --tree, not both");
                goto out;
        }
        if (cli_load_spec(cli, &a, &d, &s) < 0)
                goto out;
        targets = xcalloc(s->nbuilds + 1, sizeof(*targets));
        for (size_t i = 0; i < s->nbuilds; i++) {
                const struct spec_build *b = s->builds[i];
                /* A booted image is always judged by systemd's verdict,
                 * so --image needs no checks: */
                if (!b->selected || (!b->checks && !a.checks_file && !a.image))
                        continue;
                struct target *t = &targets[nt++];
                t->build = b;
                if (load_checks(&a, b, &d, t) < 0) {
                        cli_print_diags(cli, &d);
                        goto out;
                }
        }
        if (nt == 0) {
                fprintf(stderr, "kiln: check: no checks to run: the selected builds have no checks: "
                                "(give some with --checks FILE)\n");
                ret = EXIT_OK;
                goto out;
        }
        if (a.image && nt > 1) {
                cli_usage_error("check", "--image checks one build; choose it with --only (%zu selected)", nt);
                goto out;
        }
        ret = EXIT_FAILED;
        if (!a.image) {
                const char *why = NULL;
                if (sandbox_probe(&why) < 0) {
                        fprintf(stderr, "kiln: check: cannot create sandboxes here: %s\n", why ? why : "?");
                        goto out;
                }
        } else {
                struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits see EINTR */
                sigaction(SIGINT, &sa, NULL);
                sigaction(SIGTERM, &sa, NULL);
        }
        bool all_ran = true;
        unsigned failed = 0;
        for (size_t i = 0; i < nt; i++) {
                struct target *t = &targets[i];
                r = a.image ? run_image(t, a.image, a.allow_degraded) : run_tree(t, work);
                t->ran = r >= 0;
                all_ran = all_ran && t->ran;
                if (t->ran)
                        failed += t->report.failed;
                if (cancelled)
                        break;
        }
        const struct check_report **reps = xcalloc(nt + 1, sizeof(*reps));
        size_t nr = 0;
        for (size_t i = 0; i < nt; i++)
                if (targets[i].ran)
                        reps[nr++] = &targets[i].report;
        if (a.json) {
                _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
                struct json_writer w;
                json_init(&w, &out, true);
                unsigned p = 0, f = 0, sk = 0;
                for (size_t i = 0; i < nr; i++) {
                        p += reps[i]->passed;
                        f += reps[i]->failed;
                        sk += reps[i]->skipped;
                }
                json_begin_object(&w);
                json_key(&w, "schema_version");
                json_int(&w, 1);
                json_key(&w, "spec");
                json_string(&w, a.path);
                json_key(&w, "ok");
                json_bool(&w, all_ran && f == 0);
                json_key(&w, "passed");
                json_int(&w, p);
                json_key(&w, "failed");
                json_int(&w, f);
                json_key(&w, "skipped");
                json_int(&w, sk);
                json_key(&w, "reports");
                json_begin_array(&w);
                for (size_t i = 0; i < nr; i++)
                        check_report_json(reps[i], &w);
                json_end_array(&w);
                json_end_object(&w);
                strbuf_addc(&out, '\n');
                fputs(strbuf_str(&out), stdout);
        } else {
                for (size_t i = 0; i < nr; i++) {
                        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
                        check_report_table(reps[i], &out, cli->color_out);
                        printf("%s%s (%s):\n%s", i ? "\n" : "", reps[i]->build, reps[i]->where,
                               strbuf_str(&out));
                }
        }
        if (a.junit) {
                r = check_report_write_junit(reps, nr, a.junit);
                if (r < 0) {
                        fprintf(stderr, "kiln: check: cannot write %s: %s\n", a.junit, strerror(-r));
                        all_ran = false;
                }
        }
        free(reps);
        ret = all_ran && !failed && !cancelled ? EXIT_OK : EXIT_FAILED;
out:
        for (size_t i = 0; i < nt; i++) {
                check_report_done(&targets[i].report);
                check_list_done(&targets[i].own);
        }
        free(targets);
        diag_list_done(&d);
        spec_args_done(&a);
        return ret;
}
