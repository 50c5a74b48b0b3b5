/* SPDX-License-Identifier: Apache-2.0 */
/* kiln build: provision every selected build's root tree, step by step,
 * with the step cache. Draws one line per step. */
#include "cli/cli.h"

#include "base/secrets.h"
#include "provision/build.h"
#include "os/fs.h"
#include "os/sandbox.h"
#include "check/check.h"
#include "image/outputs.h"
#include "publish/publish.h"
#include "store/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include <signal.h>

extern char **environ;
#include <unistd.h>

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

struct view {
        struct cli *cli;
        bool explain;
        bool tty;
        size_t name_width;
};

static void print_step(void *userdata, const struct step_event *ev) {
        struct view *v = userdata;
        const char *status;
        const char *color = "";
        switch (ev->status) {
        case STEP_HIT: status = "cached"; color = "\033[2m"; break;
        case STEP_RUNNING:
                if (!v->tty && !v->explain)
                        return;
                status = "running";
                break;
        case STEP_BUILT: status = "built"; color = "\033[32m"; break;
        case STEP_FAILED: status = "FAILED"; color = "\033[1;31m"; break;
        default: status = "skipped"; color = "\033[2m"; break;
        }
        bool c = v->cli->color_out;
        if (v->tty && ev->status != STEP_RUNNING)
                fputs("\r\033[K", stdout);
        printf("%-*s  %2u/%u %-10s %-40.40s %s%s%s", (int)v->name_width, ev->build->name, ev->index,
               ev->count, ev->kind, ev->label ? ev->label : "", c ? color : "", status,
               c ? "\033[0m" : "");
        if (ev->status == STEP_BUILT || ev->status == STEP_FAILED)
                printf(" %.1fs", (double)ev->elapsed_ms / 1000.0);
        if (v->explain && ev->explain && ev->status != STEP_RUNNING && ev->status != STEP_SKIPPED)
                printf("  (%s)", ev->explain->hit ? "hit" : ev->explain->why ? ev->explain->why : "miss");
        else if (v->explain && ev->status == STEP_RUNNING && ev->explain && ev->explain->why)
                printf("  (miss: %s)", ev->explain->why);
        if (ev->status == STEP_RUNNING && v->tty)
                fflush(stdout); /* stays on the line until the result */
        else
                putchar('\n');
        if (ev->status == STEP_FAILED && ev->log_path)
                printf("%-*s         log: %s\n", (int)v->name_width, "", ev->log_path);
        fflush(stdout);
}

static void print_output(void *userdata, const struct spec_build *b, const char *line, size_t len) {
        struct view *v = userdata;
        if (v->tty)
                fputs("\r\033[K", stderr);
        fprintf(stderr, "%s| %.*s", b->name, (int)len, line);
        if (len && line[len - 1] != '\n')
                fputc('\n', stderr);
}

/* ---- checks: the verifier the engine calls for each finished tree ------------------------------ */

struct checks_view {
        const struct spec *spec;
        struct view *view;
        pthread_mutex_t lock;       /* builds verify in parallel */
        char **failures;            /* "BUILD\tFILE:LINE:COL: kind what: why", for the summary */
        size_t nfailures;
};

/* "FILE:LINE:COL: kind what: why" — the failed check and where it is written. */
static char *failure_line(const struct check_result *cr) {
        const struct check *c = cr->check;
        _cleanup_free_ char *what = check_describe(c);
        struct strbuf sb = STRBUF_INIT;
        if (c->mark.src && c->mark.line)
                strbuf_addf(&sb, "%s:%u:%u: ", c->mark.src->path, c->mark.line, c->mark.col);
        strbuf_addf(&sb, "%s %s: %s", c->kind->name, what, cr->detail ? cr->detail : "failed");
        return strbuf_detach(&sb);
}

/* Prints a report's summary and failures as build lines, and keeps the
 * failures for the final summary. */
static void show_report(struct checks_view *cv, const struct spec_build *b, const char *label,
                        const struct check_report *rep) {
        struct view *v = cv->view;
        bool c = v->cli->color_out;
        pthread_mutex_lock(&cv->lock);
        printf("%-*s  %-4s %-10s %u passed, %u failed, %u skipped  %.1fs\n", (int)v->name_width, b->name,
               "", label, rep->passed, rep->failed, rep->skipped, (double)rep->elapsed_ms / 1000.0);
        for (size_t i = 0; i < rep->n; i++) {
                if (rep->v[i].status != CHECK_FAILED)
                        continue;
                _cleanup_free_ char *line = failure_line(&rep->v[i]);
                printf("%-*s  %-4s %s%-10s%s %s\n", (int)v->name_width, b->name, "", c ? "\033[1;31m" : "",
                       "FAILED", c ? "\033[0m" : "", line);
                cv->failures = xreallocarray(cv->failures, cv->nfailures + 1, sizeof(char *));
                cv->failures[cv->nfailures++] = xasprintf("%s\t%s", b->name, line);
        }
        fflush(stdout);
        pthread_mutex_unlock(&cv->lock);
}

static int verify_tree(void *userdata, const struct spec_build *b, const char *const *layers,
                       size_t nlayers, const char *dir, struct json_writer *w, char **ret_why) {
        struct checks_view *cv = userdata;
        /* Parsed (and reported) when the spec was loaded. */
        const struct check_list *l = check_list_of(b);
        int r;
        if (!l) {
                json_null(w);
                *ret_why = xasprintf("the checks were not parsed: %s", strerror(EINVAL));
                return -EINVAL;
        }
        _cleanup_free_ char *scratch = xasprintf("%s/run", dir);
        struct check_tree tree = {.layers = layers, .nlayers = nlayers, .scratch_dir = scratch};
        struct check_exec x;
        check_exec_tree(&x, &tree);
        struct check_report rep = {0};
        r = check_run(l, &x, b->name, &rep);
        if (r < 0) {
                json_null(w);
                *ret_why = xasprintf("the checks could not run in the tree: %s", strerror(-r));
                return r;
        }
        check_report_json(&rep, w);
        _cleanup_free_ char *junit = xasprintf("%s/checks.xml", dir);
        const struct check_report *one = &rep;
        int k = check_report_write_junit(&one, 1, junit);
        show_report(cv, b, "checks", &rep);
        if (rep.failed)
                *ret_why = xasprintf("%u of %zu checks failed", rep.failed, rep.n);
        else if (k < 0)
                *ret_why = xasprintf("cannot write %s: %s", junit, strerror(-k));
        r = rep.failed ? 1 : k < 0 ? k : 0;
        check_report_done(&rep);
        return r;
}

/* Why a built tree's image is not delivered (stored, published). */
enum held {
        HELD_NOT = 0,
        HELD_IMAGE_FAILED,  /* assembly failed (reported by make_images) */
        HELD_BOOT_FAILED,   /* the boot check failed */
};

/* --boot-check: each image with checks booted in QEMU, the checks run in
 * the guest. Returns the number of builds whose boot check did not pass. */
static unsigned boot_checks(struct checks_view *cv, const struct spec_args *a,
                            const struct build_options *bo, const struct build_result *res, size_t n,
                            enum held *held) {
        static volatile sig_atomic_t never;
        unsigned bad = 0;
        const char *outdir = a->output_dir ? a->output_dir : "output";
        for (size_t i = 0; i < n; i++) {
                const struct spec_build *b = res[i].build;
                /* Every booted image is judged by systemd's verdict, so
                 * a build without checks: is booted too. */
                if (!res[i].ok || !b->selected || !(a->boot_check || b->boot_check))
                        continue;
                /* The first output QEMU boots as it is (the format table's
                 * FORMAT_BOOTABLE). */
                _cleanup_free_ char *file = NULL, *image = NULL;
                if (image_boot_output(b, &file) >= 0)
                        image = xasprintf("%s/%s/%s", outdir, b->name, file);
                if (!image || access(image, R_OK) < 0) {
                        _cleanup_free_ char *names = image_bootable_formats();
                        fprintf(stderr, "kiln: %s: --boot-check needs a%s %s image among its outputs\n",
                                b->name, strchr("aeiou", names[0]) ? "" : "n", names);
                        held[i] = HELD_BOOT_FAILED;
                        bad++;
                        continue;
                }
                /* Parsed (and reported) when the spec was loaded; no checks:
                 * boots with an empty list (systemd's verdict still counts). */
                static const struct check_list no_checks;
                const struct check_list *l = check_list_of(b);
                l = l ? l : &no_checks;
                struct check_boot_policy pol;
                check_boot_policy_of(b, &pol);
                pol.allow_degraded = pol.allow_degraded || a->allow_degraded;
                int r = 0;
                _cleanup_free_ char *dir = build_dir(bo, b);
                _cleanup_free_ char *console = xasprintf("%s/logs/boot-check-console.log", dir);
                struct check_boot_options o = {.image = image, .console_log = console,
                                               .accel = getenv("KILN_ACCEL"), .cancel = &never,
                                               .policy = &pol, .timeout_s = pol.timeout_s};
                struct check_report rep = {0};
                _cleanup_free_ char *why = NULL;
                if (r >= 0) {
                        printf("%-*s  %-4s %-10s booting %s...\n", (int)cv->view->name_width, b->name, "",
                               "boot-check", image);
                        fflush(stdout);
                        r = check_run_booted(l, &o, b->name, &rep, &why);
                }
                if (r < 0) {
                        fprintf(stderr, "kiln: %s: boot check: %s\n", b->name, why ? why : strerror(-r));
                        held[i] = HELD_BOOT_FAILED;
                        bad++;
                } else {
                        show_report(cv, b, "boot-check", &rep);
                        _cleanup_free_ char *junit = xasprintf("%s/boot-checks.xml", dir);
                        const struct check_report *one = &rep;
                        check_report_write_junit(&one, 1, junit);
                        if (rep.failed) {
                                fprintf(stderr, "kiln: %s: %u check%s failed in the booted image:\n", b->name,
                                        rep.failed, rep.failed == 1 ? "" : "s");
                                for (size_t k = 0; k < rep.n; k++)
                                        if (rep.v[k].status == CHECK_FAILED) {
                                                _cleanup_free_ char *line = failure_line(&rep.v[k]);
                                                fprintf(stderr, "kiln:   %s\n", line);
                                        }
                                held[i] = HELD_BOOT_FAILED;
                                bad++;
                        }
                }
                check_report_done(&rep);
        }
        return bad;
}

/* Whether a selected build asks for a boot check in the spec. */
static bool spec_boot_checks(const struct spec *s) {
        for (size_t i = 0; i < s->nbuilds; i++)
                if (s->builds[i]->selected && s->builds[i]->boot_check)
                        return true;
        return false;
}

static bool ask_retry(const struct build_result *r, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!r[i].ok && !r[i].skipped)
                        fprintf(stderr, "kiln: %s failed at step %s\n", r[i].build->name,
                                r[i].failed_step ? r[i].failed_step : "?");
        fprintf(stderr, "kiln: [r]etry, [a]bort and keep the failed tree, or [c]lean up? ");
        char buf[16];
        if (!fgets(buf, sizeof(buf), stdin))
                return false;
        if (buf[0] == 'r' || buf[0] == 'R')
                return true;
        if (buf[0] == 'c' || buf[0] == 'C') {
                for (size_t i = 0; i < n; i++)
                        if (r[i].failed_tree) {
                                _cleanup_free_ char *dir = xstrdup(r[i].failed_tree);
                                char *slash = strrchr(dir, '/');
                                if (slash)
                                        *slash = 0;
                                rm_rf(dir);
                        }
        }
        return false;
}

/* SOURCE_DATE_EPOCH, or when the tree's top layer entered the cache (from
 * the entry's metadata: fixed for as long as the tree is cached, so the
 * same tree always gives the same image and is not re-assembled). */
static uint64_t image_epoch(const struct build_options *bo, const char *key) {
        const char *e = getenv("SOURCE_DATE_EPOCH");
        if (e && *e)
                return strtoull(e, NULL, 10);
        time_t t;
        if (cache_entry_created(bo->cache, key, &t) == 0)
                return (uint64_t)t;
        return (uint64_t)time(NULL);
}

/* The image stage: disk assembly and output formats for each built tree. */
static int make_images(struct cli *cli, const struct spec_args *a, const struct spec *s,
                       const struct build_options *bo, const struct build_result *res, size_t n,
                       enum held *held, struct output_result *outs) {
        _cleanup_free_ char *outdir = xstrdup(a->output_dir ? a->output_dir : "output");
        char run_uuid[37];
        uuid_random(run_uuid);
        const struct spec_build **builds = xcalloc(n + 1, sizeof(*builds));
        int ret = 0;
        bool any = false;
        for (size_t i = 0; i < n; i++) {
                builds[i] = res[i].build;
                const struct spec_build *b = res[i].build;
                if (!res[i].ok || !b->selected || !b->outputs || !b->outputs->n)
                        continue;
                any = true;
                char **layers = NULL;
                size_t nl = 0;
                int r = build_layers(bo, b, &layers, &nl);
                _cleanup_free_ char *dir = build_dir(bo, b);
                _cleanup_free_ char *scratch = xasprintf("%s/image", dir);
                _cleanup_free_ char *logs = xasprintf("%s/logs", dir);
                _cleanup_free_ char *logp = xasprintf("%s/image.log", logs);
                mkdir_p(logs, 0755); /* a fully cached build ran no step that made it */
                _cleanup_close_ int log_fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                struct output_options oo = {
                        .output_dir = outdir,
                        .scratch_dir = scratch,
                        .run_uuid = run_uuid,
                        .source_date_epoch = image_epoch(bo, res[i].final_key),
                        .log_fd = log_fd >= 0 ? log_fd : STDERR_FILENO,
                        .force = a->force,
                        .sha512 = !a->no_publish && publish_needs_sha512(b->publish),
                };
                if (r == 0) {
                        printf("%s  image      assembling %s...\n", b->name, outdir);
                        fflush(stdout);
                        r = outputs_build(s, b, (const char *const *)layers, nl, res[i].final_key,
                                          res[i].record_path, &oo, &outs[i]);
                }
                for (size_t k = 0; k < nl; k++)
                        free(layers[k]);
                free(layers);
                if (r < 0) {
                        fprintf(stderr, "kiln: %s: image assembly failed: %s\n", b->name, strerror(-r));
                        fprintf(stderr, "kiln:   log: %s\n", logp);
                        held[i] = HELD_IMAGE_FAILED;
                        ret = r;
                        continue;
                }
                if (outs[i].up_to_date)
                        printf("%s  image      up to date (tree and settings unchanged)\n", b->name);
                else
                        printf("%s  image      disk assembled in %.1fs\n", b->name,
                               (double)outs[i].assemble_ms / 1000.0);
                for (size_t k = 0; k < outs[i].set.nfiles; k++) {
                        const struct artifact_file *oa = &outs[i].set.files[k];
                        char h[32];
                        format_bytes(oa->size, h, sizeof(h));
                        printf("%s  %-10s %s  %s  sha256 %.16s", b->name, oa->format, oa->path, h,
                               oa->sha256);
                        if (!outs[i].up_to_date)
                                printf("  %.1fs", (double)oa->elapsed_ms / 1000.0);
                        putchar('\n');
                }
        }
        if (any) {
                int r = packer_manifest_update(outdir, run_uuid, builds, outs, n, (uint64_t)time(NULL));
                if (r < 0) {
                        fprintf(stderr, "kiln: cannot write %s/packer-manifest.json: %s\n", outdir,
                                strerror(-r));
                        ret = r;
                }
        }
        free(builds);
        (void)cli;
        return ret;
}

static void add_secret(void *userdata, const char *secret) {
        secrets_add(userdata, secret);
}

/* The delivery stage, for every build whose image was made and passed its
 * checks: its artifacts go into the local image store (unless --no-store)
 * and to the targets of its publish: section (unless --no-publish).
 * Returns 0, or -EIO when anything failed (each failure reported). */
static int deliver(const struct spec_args *a, const struct build_result *res, size_t n,
                   const enum held *held, const struct output_result *outs) {
        struct store *st = NULL;
        _cleanup_free_ char *sdir = NULL;
        int store_r = 0;
        _cleanup_secrets_ struct secrets *sc = secrets_new(SECRETS_MIN_LEN);
        struct publish_ctx ctx = {.environ = environ, .add_secret = add_secret, .userdata = sc,
                                  .log_fd = -1};
        int ret = 0;
        for (size_t i = 0; i < n; i++) {
                const struct spec_build *b = res[i].build;
                if (!res[i].ok || !b->selected || !b->outputs || !b->outputs->n)
                        continue;
                if (held[i] == HELD_BOOT_FAILED)
                        fprintf(stderr, "kiln: %s: not stored%s: the boot check failed\n", b->name,
                                b->publish && !a->no_publish ? " or published" : "");
                if (held[i] != HELD_NOT)
                        continue;
                if (!a->no_store) {
                        int r = 0;
                        if (!sdir) { /* opened once, for the first image */
                                sdir = a->store_dir ? xstrdup(a->store_dir) : store_default_dir();
                                store_r = store_open(sdir, &st);
                        }
                        r = store_r;
                        struct store_entry *v = NULL;
                        size_t nv = 0;
                        if (r >= 0)
                                r = store_add_artifacts(st, &outs[i].set, NULL, &v, &nv);
                        if (r < 0) {
                                fprintf(stderr, "kiln: %s: cannot add to the image store %s: %s\n", b->name,
                                        sdir, st && *store_error(st) ? store_error(st) : strerror(-r));
                                ret = -EIO;
                        } else if (nv)
                                printf("%s  store      %s:%s in %s (%zu file%s)\n", b->name, v[0].name,
                                       v[0].version, sdir, nv, nv == 1 ? "" : "s");
                        store_entries_free(v, nv);
                }
                if (!b->publish || a->no_publish)
                        continue;
                struct publish_outcome *o = NULL;
                size_t no = 0;
                int r = publish_artifact_set(&outs[i].set, b, &ctx, &o, &no);
                for (size_t k = 0; k < no; k++) {
                        const struct publish_result *pr = &o[k].result;
                        char bytes[32];
                        format_bytes(pr->bytes_sent, bytes, sizeof(bytes));
                        printf("%s  publish    %s %s -> %s", b->name, publish_status_name(pr->status),
                               o[k].file ? o[k].file : "-", o[k].target);
                        if (pr->status == PUBLISH_UPLOADED)
                                printf(" (%s in %.1fs)", bytes, pr->elapsed_ms / 1000.0);
                        if (pr->status == PUBLISH_DISABLED)
                                printf(" (enabled: false)");
                        if (pr->location)
                                printf("  %s", pr->location);
                        putchar('\n');
                        if (pr->status == PUBLISH_FAILED) {
                                fflush(stdout);
                                _cleanup_free_ char *line = xasprintf("kiln: %s: publishing to %s failed: %s\n",
                                                                      b->name, o[k].target,
                                                                      pr->error ? pr->error : "?");
                                _cleanup_free_ char *m = secrets_mask(sc, line);
                                fputs(m, stderr);
                        }
                }
                if (r < 0) {
                        if (r != -EIO)
                                fprintf(stderr, "kiln: %s: cannot publish: %s\n", b->name, strerror(-r));
                        ret = -EIO;
                }
                publish_outcomes_free(o, no);
        }
        store_close(st);
        return ret;
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
        if (r < 0)
                goto out;
        const char *why = NULL;
        r = sandbox_probe(&why);
        if (r < 0) {
                fprintf(stderr, "kiln: build: cannot create build sandboxes here: %s\n", why ? why : strerror(-r));
                ret = EXIT_FAILED;
                goto out;
        }
        r = cache_open(cdir, &cache);
        if (r < 0) {
                fprintf(stderr, "kiln: build: cannot open the cache at %s: %s\n", cdir, strerror(-r));
                ret = EXIT_FAILED;
                goto out;
        }
        const char *log_env = getenv("KILN_LOG");
        struct view view = {.cli = cli, .explain = a.explain, .tty = isatty(STDOUT_FILENO)};
        for (size_t i = 0; i < s->nbuilds; i++)
                if (s->builds[i]->needed && strlen(s->builds[i]->name) > view.name_width)
                        view.name_width = strlen(s->builds[i]->name);
        struct build_observer obs = {.userdata = &view, .step = print_step, .output = print_output};
        enum on_error oe = ON_ERROR_CLEANUP;
        bool ask = false;
        if (a.on_error && streq(a.on_error, "abort"))
                oe = ON_ERROR_ABORT;
        else if (a.on_error && streq(a.on_error, "retry"))
                oe = ON_ERROR_RETRY;
        else if (a.on_error && streq(a.on_error, "ask")) {
                ask = isatty(STDIN_FILENO);
                oe = ask ? ON_ERROR_ABORT : ON_ERROR_CLEANUP;
                if (!ask)
                        fprintf(stderr, "kiln: warning: --on-error=ask without a terminal: cleaning up instead\n");
        }
        struct checks_view cv = {.spec = s, .view = &view};
        pthread_mutex_init(&cv.lock, NULL);
        struct build_verifier verifier = {.userdata = &cv, .verify = verify_tree};
        struct build_options bo = {
                .verifier = a.no_checks ? NULL : &verifier,
                .cache = cache,
                .work_dir = work,
                .on_error = oe,
                .force = a.force,
                .debug = a.debug || cli->verbose > 0 || (log_env && streq(log_env, "debug")),
                .parallel = a.parallel ? a.parallel : 1,
                .observer = &obs,
        };
        signal(SIGPIPE, SIG_IGN);
        for (;;) {
                struct build_result *res = NULL;
                size_t n = 0;
                for (size_t i = 0; i < cv.nfailures; i++) /* from an attempt before a retry */
                        free(cv.failures[i]);
                cv.nfailures = 0;
                r = build_run(s, &bo, &res, &n);
                if (r < 0 && r != -EIO) {
                        fprintf(stderr, "kiln: build: %s\n", strerror(-r));
                        ret = EXIT_FAILED;
                        build_results_free(res, n);
                        break;
                }
                if (r == -EIO && ask && ask_retry(res, n)) {
                        build_results_free(res, n);
                        continue;
                }
                size_t ok = 0, failed = 0, skipped = 0;
                unsigned run = 0, cached = 0;
                for (size_t i = 0; i < n; i++) {
                        run += res[i].steps_run;
                        cached += res[i].steps_cached;
                        if (res[i].ok)
                                ok++;
                        else if (res[i].skipped) {
                                skipped++;
                                fprintf(stderr, "kiln: %s: skipped, its parent %s failed\n",
                                        res[i].build->name, res[i].build->parent->name);
                        } else if (res[i].verify_failed) {
                                failed++;
                                fprintf(stderr, "kiln: %s: %s; no image is made from it:\n", res[i].build->name,
                                        res[i].failed_step ? res[i].failed_step : "checks failed");
                                size_t bl = strlen(res[i].build->name);
                                for (size_t k = 0; k < cv.nfailures; k++)
                                        if (!strncmp(cv.failures[k], res[i].build->name, bl) &&
                                            cv.failures[k][bl] == '\t')
                                                fprintf(stderr, "kiln:   %s\n", cv.failures[k] + bl + 1);
                                if (res[i].record_path)
                                        fprintf(stderr, "kiln:   results: %s\n", res[i].record_path);
                        } else {
                                failed++;
                                fprintf(stderr, "kiln: %s: failed at step %s\n", res[i].build->name,
                                        res[i].failed_step ? res[i].failed_step : "?");
                                if (res[i].failed_log)
                                        fprintf(stderr, "kiln:   log: %s\n", res[i].failed_log);
                                if (res[i].failed_tree)
                                        fprintf(stderr, "kiln:   the failed step's changes are kept; enter them with:\n"
                                                        "kiln:   kiln shell --failed %s %s\n",
                                                a.path, res[i].build->name);
                        }
                }
                printf("%zu build%s ok, %zu failed, %zu skipped; %u step%s run, %u cached\n", ok,
                       ok == 1 ? "" : "s", failed, skipped, run, run == 1 ? "" : "s", cached);
                for (size_t i = 0; i < n; i++)
                        if (res[i].ok)
                                printf("  %s: %s (%.1fs)\n", res[i].build->name, res[i].record_path,
                                       (double)res[i].elapsed_ms / 1000.0);
                ret = failed || skipped ? EXIT_FAILED : EXIT_OK;
                _cleanup_free_ enum held *held = xcalloc(n + 1, sizeof(*held));
                struct output_result *outs = xcalloc(n + 1, sizeof(*outs));
                if (!a.trees_only && make_images(cli, &a, s, &bo, res, n, held, outs) < 0)
                        ret = EXIT_FAILED;
                else if (!a.trees_only && (a.boot_check || (!a.no_checks && spec_boot_checks(s))) &&
                         boot_checks(&cv, &a, &bo, res, n, held) > 0)
                        ret = EXIT_FAILED;
                /* Only images that passed every check are kept and published. */
                if (!a.trees_only && deliver(&a, res, n, held, outs) < 0)
                        ret = EXIT_FAILED;
                for (size_t i = 0; i < n; i++)
                        output_result_done(&outs[i]);
                free(outs);
                if (a.boot_check && a.trees_only)
                        fprintf(stderr, "kiln: warning: --boot-check needs images; nothing booted with --trees-only\n");
                build_results_free(res, n);
                break;
        }
        for (size_t i = 0; i < cv.nfailures; i++)
                free(cv.failures[i]);
        free(cv.failures);
        pthread_mutex_destroy(&cv.lock);
out:
        cache_close(cache);
        diag_list_done(&d);
        spec_args_done(&a);
        return ret;
}
