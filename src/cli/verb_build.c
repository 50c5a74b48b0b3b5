/* SPDX-License-Identifier: Apache-2.0 */
/* kiln build: flags, then pipeline_run (pipeline.h) with the views of
 * build_view.h as its observers. */
#include "cli/build_view.h"

#include "os/sandbox.h"

#include <signal.h>
#include <unistd.h>

extern char **environ;

static int build_verb_run(struct cli *cli, int argc, char **argv);

const struct verb verb_build = {
        .name = "build",
        .summary = "Build root trees (cached step by step) and disk images",
        .usage = "kiln build [options] SPEC",
        .help = "Bootstraps each build's source, runs its steps in a sandbox and stores\n"
                "every step's result in the step cache: an unchanged step never runs\n"
                "twice, and a changed step re-runs only itself and what follows.\n"
                "Needs root (namespaces and overlay mounts).\n"
                "\n"
                "Options:\n"
                "  --explain            say for each step why it ran (which input changed)\n"
                "  --on-error=MODE      cleanup (default): discard the failed step's changes;\n"
                "                       abort: keep them for `kiln shell --failed`;\n"
                "                       retry: run the failed step once more;\n"
                "                       ask: on a terminal, ask what to do\n"
                "  --force              ignore the cache: run every step again (and\n"
                "                       assemble the images again)\n"
                "  -o, --output-dir DIR images go to DIR/<image-name>/ (default output)\n"
                "  --trees-only         build the root trees, no disk images\n"
                "  --no-checks          do not run the builds' checks: on their trees\n"
                "  --boot-check         also boot each image in QEMU and run the checks\n"
                "                       inside the guest (boot-only checks included;\n"
                "                       KILN_ACCEL=tcg|kvm overrides the KVM probe);\n"
                "                       boot_check: true in the spec asks per build. A\n"
                "                       boot that systemd calls degraded (a unit failed)\n"
                "                       fails it, naming the failed units\n"
                "  --allow-degraded     let a degraded boot pass the boot check (the\n"
                "                       failed units are still reported)\n"
                "  --store DIR          the local image store finished images are added to\n"
                "                       (default $KILN_STORE_DIR or ~/.local/share/kiln/store)\n"
                "  --no-store           do not add images to the store\n"
                "  --no-publish         do not publish to the builds' publish: targets\n"
                "  -j, --parallel N     build up to N independent builds at once (default 1)\n"
                "  --debug              show every step's output (also KILN_LOG=debug)\n"
                "  --events FILE        also write the run's events to FILE, one JSON object\n"
                "                       a line (docs/build.md, \"Events\")\n"
                "  --json               the events as JSON lines on stdout instead of the\n"
                "                       text view (a bad spec: kiln validate --json's object)\n"
                "  --cache-dir DIR      the step cache (default $KILN_CACHE_DIR or ~/.cache/kiln)\n"
                "  --work-dir DIR       logs, records, mount points (default .kiln/build)\n"
                "  --var, --var-file, --only, --except   as for kiln validate\n"
                "\n"
                "Images: OUTPUT/<name>/<name>.<ext> per outputs: entry, SHA256SUMS,\n"
                "kiln-manifest.json, and OUTPUT/packer-manifest.json (Packer's format).\n"
                "An image whose tree and settings did not change is not assembled again.\n"
                "\n"
                "Checks: a build with checks: has them run on its finished tree (chrooted,\n"
                "no network, nothing written) before its image is made; a failed check\n"
                "fails the build and no image is written. Results go into record.json\n"
                "and DIR/<build>/checks.xml (JUnit). See kiln check.\n"
                "\n"
                "Delivery: an image that passed its checks (and its boot check, with\n"
                "--boot-check) is added to the local image store (kiln images) and sent\n"
                "to each target of its publish: section (kiln publish; an upload is\n"
                "skipped when the same content is already there). A failed publish\n"
                "fails the build (exit 1); the images stay in OUTPUT.\n"
                "\n"
                "Per build, DIR/<build>/ holds record.json (cache keys, durations,\n"
                "installed packages), logs/NN-kind.log (secrets masked) and `layers`\n"
                "(the overlay layer stack of the finished tree, topmost first).\n"
                "Packer spellings work: -var, -var-file, -only, -except, -on-error,\n"
                "-force, -parallel-builds=N.\n"
                "\n"
                "Exit status: 0 all builds succeeded, 1 a build or a check failed, 2 usage\n"
                "or spec error.\n",
        .run = build_verb_run,
};

/* --on-error=ask: the trees failed with their changes kept; ask what now. */
static enum pipeline_choice ask_retry(void *userdata, const struct build_result *r, size_t n) {
        (void)userdata;
        fflush(stdout);
        for (size_t i = 0; i < n; i++)
                if (!r[i].ok && !r[i].skipped)
                        fprintf(stderr, "kiln: %s failed at step %s\n", r[i].build->name,
                                r[i].failed_step ? r[i].failed_step : "?");
        fprintf(stderr, "kiln: [r]etry, [a]bort and keep the failed tree, or [c]lean up? ");
        char buf[16];
        if (!fgets(buf, sizeof(buf), stdin))
                return PIPELINE_KEEP;
        if (buf[0] == 'r' || buf[0] == 'R')
                return PIPELINE_RETRY;
        if (buf[0] == 'c' || buf[0] == 'C')
                return PIPELINE_CLEAN_UP;
        return PIPELINE_KEEP;
}

/* The observers: the text view (or JSON lines on stdout with --json), and
 * JSON lines to --events FILE. */
struct observers {
        struct build_view *text;
        struct build_json_view json, file;
};

static void observe(void *userdata, const struct pipeline_event *ev) {
        struct observers *o = userdata;
        if (o->text)
                build_view_event(o->text, ev);
        if (o->json.f)
                build_json_view_event(&o->json, ev);
        if (o->file.f)
                build_json_view_event(&o->file, ev);
}

static void set_on_error(const struct spec_args *a, struct pipeline_options *po) {
        po->on_error = ON_ERROR_CLEANUP;
        if (a->on_error && streq(a->on_error, "abort"))
                po->on_error = ON_ERROR_ABORT;
        else if (a->on_error && streq(a->on_error, "retry"))
                po->on_error = ON_ERROR_RETRY;
        else if (a->on_error && streq(a->on_error, "ask")) {
                if (isatty(STDIN_FILENO)) {
                        po->on_error = ON_ERROR_ABORT;
                        po->ask = ask_retry;
                } else
                        fprintf(stderr, "kiln: warning: --on-error=ask without a terminal: cleaning up instead\n");
        }
}

/* Runs the pipeline on the loaded spec; returns the exit status. */
static int run_build(struct cli *cli, const struct spec_args *a, const struct spec *s, struct cache *cache,
                     const char *work) {
        const char *log_env = getenv("KILN_LOG");
        bool debug = a->debug || cli->verbose > 0 || (log_env && streq(log_env, "debug"));
        struct observers ob = {.json = {.f = a->json ? stdout : NULL, .debug = debug}};
        if (a->events && !(ob.file.f = fopen(a->events, "we"))) {
                fprintf(stderr, "kiln: build: cannot write %s: %s\n", a->events, strerror(errno));
                return EXIT_USAGE;
        }
        ob.file.debug = debug;
        if (!a->json)
                ob.text = build_view_new(cli, a, s);
        struct pipeline_options po = {
                .cache = cache, .work_dir = work, .output_dir = a->output_dir, .store_dir = a->store_dir,
                .force = a->force, .step_output = debug || (ob.text && build_view_wants_output(ob.text)),
                .parallel = a->parallel, .trees_only = a->trees_only, .no_checks = a->no_checks,
                .boot_check = a->boot_check, .allow_degraded = a->allow_degraded, .no_store = a->no_store,
                .no_publish = a->no_publish, .accel = getenv("KILN_ACCEL"), .environ = environ,
        };
        set_on_error(a, &po);
        struct pipeline_observer obs = {.userdata = &ob, .event = observe};
        struct pipeline_result res;
        signal(SIGPIPE, SIG_IGN);
        int r = pipeline_run(s, &po, &obs, &res);
        build_view_free(ob.text);
        if (ob.file.f)
                fclose(ob.file.f);
        if (r < 0)
                fprintf(stderr, "kiln: build: %s\n", strerror(-r));
        pipeline_result_done(&res);
        return r == 0 ? EXIT_OK : EXIT_FAILED;
}

static int build_verb_run(struct cli *cli, int argc, char **argv) {
        struct spec_args a = {.build_opts = true};
        int r = spec_args_parse(&a, &verb_build, argc, argv);
        if (r != 0) {
                spec_args_done(&a);
                return r > 0 ? EXIT_OK : EXIT_USAGE;
        }
        struct diag_list d = {0};
        _cleanup_(spec_freep) struct spec *s = NULL;
        r = cli_load_spec(cli, &a, &d, &s);
        int ret = EXIT_USAGE;
        _cleanup_free_ char *work = cli_work_dir(&a);
        _cleanup_free_ char *cdir = cli_cache_dir(&a);
        struct cache *cache = NULL;
        const char *why = NULL;
        if (r < 0) {
                if (a.json) /* as kiln validate --json: the diagnostics on stdout */
                        cli_print_load_json(&a, r, &d, NULL, false);
        } else if ((r = sandbox_probe(&why)) < 0) {
                fprintf(stderr, "kiln: build: cannot create build sandboxes here: %s\n", why ? why : strerror(-r));
                ret = EXIT_FAILED;
        } else if ((r = cache_open(cdir, &cache)) < 0) {
                fprintf(stderr, "kiln: build: cannot open the cache at %s: %s\n", cdir, strerror(-r));
                ret = EXIT_FAILED;
        } else
                ret = run_build(cli, &a, s, cache, work);
        cache_close(cache);
        diag_list_done(&d);
        spec_args_done(&a);
        return ret;
}
