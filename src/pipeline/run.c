/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipeline_run: one build run, stage by stage (pipeline.h). Each stage
 * calls one engine through its public API and turns what it did into
 * events; the state of a build between stages is its status (a build only
 * goes on while it is PIPELINE_BUILD_OK). Events go out under one lock:
 * the provision engine serialises its step callbacks, but tree checks run
 * in the threads building the trees.
 */
#include "pipeline/pipeline.h"

#include "base/clock.h"
#include "base/diag.h"
#include "base/secrets.h"
#include "base/strbuf.h"
#include "check/check.h"
#include "image/outputs.h"
#include "os/fs.h"
#include "provision/cache.h"
#include "publish/publish.h"
#include "store/store.h"

#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

struct run {
        const struct spec *spec;
        const struct pipeline_options *o;
        const struct pipeline_observer *obs;
        struct pipeline_result *res;
        struct build_options bo;
        const char *outdir;
        pthread_mutex_t lock;         /* one event at a time */
        /* The run's secrets set (base/secrets.h): the values publishers
         * register; every message an event carries is masked with it. */
        struct secrets *secrets;
        /* each build's image (stage_images), kept for delivery: the store
         * and publish take the artifact set in memory */
        struct output_result *outs;
        bool failed;                  /* something of the run itself failed (reported) */
};

static void emit(struct run *r, struct pipeline_event *ev) {
        if (!r->obs || !r->obs->event)
                return;
        pthread_mutex_lock(&r->lock);
        r->obs->event(r->obs->userdata, ev);
        pthread_mutex_unlock(&r->lock);
}

static void run_secret_add(void *userdata, const char *secret) {
        struct run *r = userdata;
        if (secret)
                secrets_add(r->secrets, secret);
}

/* text with every secret of the run replaced by <sensitive>; owned. */
static char *run_mask(struct run *r, const char *text) {
        return secrets_mask(r->secrets, text ? text : "");
}

/* An ERROR (or WARNING) event: fmt is the message without "kiln: " or the
 * build's name; masked with the run's secrets. */
_printf_(5, 6) static void problem(struct run *r, enum pipeline_event_type type,
                                   const struct spec_build *b, const char *stage, const char *fmt,
                                   ...);
static void problem(struct run *r, enum pipeline_event_type type, const struct spec_build *b,
                    const char *stage, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        va_end(ap);
        _cleanup_free_ char *masked = run_mask(r, msg);
        struct pipeline_event ev = {.type = type, .build = b, .stage = stage, .text = masked};
        emit(r, &ev);
}

/* ---- trees ------------------------------------------------------------------------------------ */

static void on_step(void *userdata, const struct step_event *se) {
        static const enum pipeline_event_type types[] = {
                [STEP_HIT] = PEV_STEP_CACHED,     [STEP_RUNNING] = PEV_STEP_STARTED,
                [STEP_BUILT] = PEV_STEP_FINISHED, [STEP_FAILED] = PEV_STEP_FINISHED,
                [STEP_SKIPPED] = PEV_STEP_SKIPPED,
        };
        struct pipeline_event ev = {.type = types[se->status], .build = se->build, .step = se,
                                    .elapsed_ms = se->elapsed_ms, .path = se->log_path};
        emit(userdata, &ev);
}

static void on_output(void *userdata, const struct spec_build *b, const char *line, size_t len) {
        struct pipeline_event ev = {.type = PEV_STEP_OUTPUT, .build = b, .text = line, .len = len};
        emit(userdata, &ev);
}

/* The verifier the provision engine calls for each finished tree with
 * checks: (build.h): runs them in the tree, writes DIR/checks.xml. */
static int verify_tree(void *userdata, const struct spec_build *b, const char *const *layers,
                       size_t nlayers, const char *dir, struct json_writer *w, char **ret_why) {
        struct run *run = userdata;
        /* Parsed (and reported) when the spec was loaded. */
        const struct check_list *l = check_list_of(b);
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
        int r = check_run(l, &x, b->name, &rep);
        if (r < 0) {
                json_null(w);
                *ret_why = xasprintf("the checks could not run in the tree: %s", strerror(-r));
                return r;
        }
        check_report_json(&rep, w);
        _cleanup_free_ char *junit = xasprintf("%s/checks.xml", dir);
        const struct check_report *one = &rep;
        int k = check_report_write_junit(&one, 1, junit);
        struct pipeline_event ev = {.type = PEV_CHECKS, .build = b, .stage = "checks", .report = &rep,
                                    .elapsed_ms = rep.elapsed_ms, .path = junit};
        emit(run, &ev);
        if (rep.failed)
                *ret_why = xasprintf("%u of %zu checks failed", rep.failed, rep.n);
        else if (k < 0)
                *ret_why = xasprintf("cannot write %s: %s", junit, strerror(-k));
        r = rep.failed ? 1 : k < 0 ? k : 0;
        check_report_done(&rep);
        return r;
}

/* Removes the failed steps' kept changes (<build>/failed/). */
static void clean_up_failed(struct build_result *t, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (!t[i].failed_tree)
                        continue;
                char *slash = strrchr(t[i].failed_tree, '/');
                if (slash)
                        *slash = 0;
                rm_rf(t[i].failed_tree);
                free(t[i].failed_tree);
                t[i].failed_tree = NULL;
        }
}

/* Builds the trees (again while the caller asks to retry). */
static int stage_trees(struct run *run) {
        struct pipeline_result *res = run->res;
        for (;;) {
                int r = build_run(run->spec, &run->bo, &res->trees, &res->n);
                if (r < 0 && r != -EIO)
                        return r;
                if (r == -EIO && run->o->ask && run->o->on_error == ON_ERROR_ABORT) {
                        enum pipeline_choice c = run->o->ask(run->o->ask_userdata, res->trees, res->n);
                        if (c == PIPELINE_RETRY) {
                                build_results_free(res->trees, res->n);
                                res->trees = NULL;
                                res->n = 0;
                                continue;
                        }
                        if (c == PIPELINE_CLEAN_UP)
                                clean_up_failed(res->trees, res->n);
                }
                return 0;
        }
}

/* Sets each build's status from its tree and sends TREE_FINISHED. */
static void trees_finished(struct run *run) {
        struct pipeline_result *res = run->res;
        res->status = xcalloc(res->n + 1, sizeof(*res->status));
        for (size_t i = 0; i < res->n; i++) {
                const struct build_result *t = &res->trees[i];
                res->steps_run += t->steps_run;
                res->steps_cached += t->steps_cached;
                res->status[i] = t->ok ? PIPELINE_BUILD_OK
                               : t->skipped ? PIPELINE_BUILD_SKIPPED
                               : t->verify_failed ? PIPELINE_BUILD_CHECKS_FAILED
                                                  : PIPELINE_BUILD_TREE_FAILED;
                _cleanup_free_ char *tail = res->status[i] == PIPELINE_BUILD_TREE_FAILED && t->failed_log
                        ? pipeline_log_tail(t->failed_log, 10) : NULL;
                struct pipeline_event ev = {.type = PEV_TREE_FINISHED, .build = t->build, .tree = t,
                                            .elapsed_ms = t->elapsed_ms, .path = t->record_path,
                                            .text = tail};
                emit(run, &ev);
        }
}

static bool cancelled(struct run *run) {
        return run->o->cancel && *run->o->cancel;
}

/* Whether build i goes on to the next stage: it got through the ones
 * before, it is selected and (unless any_outputs) it has outputs: — and,
 * when the run was cancelled, marks it failed at that stage. */
static bool goes_on(struct run *run, size_t i, enum pipeline_build_status fail_as, const char *stage,
                    bool any_outputs) {
        const struct spec_build *b = run->res->trees[i].build;
        if (run->res->status[i] != PIPELINE_BUILD_OK || !b->selected ||
            (!any_outputs && (!b->outputs || !b->outputs->n)))
                return false;
        if (!cancelled(run))
                return true;
        run->res->status[i] = fail_as;
        problem(run, PEV_ERROR, b, stage, "cancelled");
        return false;
}

/* ---- images ----------------------------------------------------------------------------------- */

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

/* One build's image: disk assembly and every outputs: entry. */
static int make_image(struct run *run, const struct build_result *t, struct output_result *out) {
        const struct spec_build *b = t->build;
        char **layers = NULL;
        size_t nl = 0;
        int r = build_layers(&run->bo, b, &layers, &nl);
        _cleanup_free_ char *dir = build_dir(&run->bo, b);
        _cleanup_free_ char *scratch = xasprintf("%s/image", dir);
        _cleanup_free_ char *logs = xasprintf("%s/logs", dir);
        _cleanup_free_ char *logp = xasprintf("%s/image.log", logs);
        mkdir_p(logs, 0755); /* a fully cached build ran no step that made it */
        _cleanup_close_ int log_fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        struct output_options oo = {
                .output_dir = run->outdir,
                .scratch_dir = scratch,
                .run_uuid = run->res->run_uuid,
                .source_date_epoch = image_epoch(&run->bo, t->final_key),
                .log_fd = log_fd >= 0 ? log_fd : STDERR_FILENO,
                .force = run->o->force,
                .sha512 = !run->o->no_publish && publish_needs_sha512(b->publish),
        };
        if (r == 0) {
                struct pipeline_event ev = {.type = PEV_IMAGE_STARTED, .build = b, .path = run->outdir};
                emit(run, &ev);
                r = outputs_build(run->spec, b, (const char *const *)layers, nl, t->final_key,
                                  t->record_path, &oo, out);
        }
        for (size_t k = 0; k < nl; k++)
                free(layers[k]);
        free(layers);
        if (r < 0) {
                struct pipeline_event ev = {.type = PEV_ERROR, .build = b, .stage = "image", .path = logp};
                _cleanup_free_ char *msg = xasprintf("image assembly failed: %s", strerror(-r));
                ev.text = msg;
                emit(run, &ev);
                return r;
        }
        uint64_t bytes = 0;
        for (size_t k = 0; k < out->set.nfiles; k++)
                bytes += out->set.files[k].size;
        struct pipeline_event ev = {.type = PEV_IMAGE_ASSEMBLED, .build = b, .image = out,
                                    .elapsed_ms = out->elapsed_ms, .bytes = bytes, .path = out->set.dir};
        emit(run, &ev);
        for (size_t k = 0; k < out->set.nfiles; k++) {
                const struct artifact_file *oa = &out->set.files[k];
                struct pipeline_event w = {.type = PEV_IMAGE_WRITTEN, .build = b, .artifact = oa,
                                           .path = oa->path, .bytes = oa->size,
                                           .elapsed_ms = out->up_to_date ? 0 : oa->elapsed_ms};
                emit(run, &w);
        }
        return 0;
}

/* The image stage for every build still going, then packer-manifest.json. */
static void stage_images(struct run *run) {
        struct pipeline_result *res = run->res;
        struct output_result *outs = run->outs = xcalloc(res->n + 1, sizeof(*outs));
        const struct spec_build **builds = xcalloc(res->n + 1, sizeof(*builds));
        bool any = false;
        for (size_t i = 0; i < res->n; i++) {
                builds[i] = res->trees[i].build;
                if (!goes_on(run, i, PIPELINE_BUILD_IMAGE_FAILED, "image", false))
                        continue;
                any = true;
                if (make_image(run, &res->trees[i], &outs[i]) < 0)
                        res->status[i] = PIPELINE_BUILD_IMAGE_FAILED;
        }
        if (any) {
                int r = packer_manifest_update(run->outdir, res->run_uuid, builds, outs, res->n,
                                               (uint64_t)time(NULL));
                if (r < 0) {
                        problem(run, PEV_ERROR, NULL, "image", "cannot write %s/packer-manifest.json: %s",
                                run->outdir, strerror(-r));
                        run->failed = true;
                }
        }
        free(builds);
}

/* ---- boot checks ------------------------------------------------------------------------------ */

/* The image a boot check boots: the first output QEMU boots as it is
 * (the format table's FORMAT_BOOTABLE, image_boot_output); owned. */
static char *bootable_image(struct run *run, const struct spec_build *b) {
        _cleanup_free_ char *file = NULL;
        if (image_boot_output(b, &file) < 0)
                return NULL;
        char *p = xasprintf("%s/%s/%s", run->outdir, b->name, file);
        if (access(p, R_OK) == 0)
                return p;
        free(p);
        return NULL;
}

/* Boots b's image and runs its checks in the guest. Returns true when the
 * boot check passed. */
static bool boot_check(struct run *run, const struct spec_build *b) {
        static volatile sig_atomic_t never;
        _cleanup_free_ char *image = bootable_image(run, b);
        if (!image) {
                _cleanup_free_ char *names = image_bootable_formats();
                problem(run, PEV_ERROR, b, "boot-check", "--boot-check needs a%s %s image among its outputs",
                        strchr("aeiou", names[0]) ? "" : "n", names);
                return false;
        }
        /* Parsed (and reported) when the spec was loaded; no checks: boots
         * with an empty list (systemd's verdict still counts). */
        static const struct check_list no_checks;
        const struct check_list *l = check_list_of(b);
        l = l ? l : &no_checks;
        struct check_boot_policy pol;
        check_boot_policy_of(b, &pol);
        pol.allow_degraded = pol.allow_degraded || run->o->allow_degraded;
        int r = 0;
        _cleanup_free_ char *dir = build_dir(&run->bo, b);
        _cleanup_free_ char *console = xasprintf("%s/logs/boot-check-console.log", dir);
        struct check_boot_options o = {.image = image, .console_log = console, .accel = run->o->accel,
                                       .cancel = run->o->cancel ? run->o->cancel : &never,
                                       .policy = &pol, .timeout_s = pol.timeout_s};
        struct check_report rep = {0};
        _cleanup_free_ char *why = NULL;
        if (r >= 0) {
                struct pipeline_event ev = {.type = PEV_BOOT_STARTED, .build = b, .path = image};
                emit(run, &ev);
                r = check_run_booted(l, &o, b->name, &rep, &why);
        }
        bool ok = r >= 0 && !rep.failed;
        if (r < 0) {
                problem(run, PEV_ERROR, b, "boot-check", "boot check: %s", why ? why : strerror(-r));
        } else {
                _cleanup_free_ char *junit = xasprintf("%s/boot-checks.xml", dir);
                const struct check_report *one = &rep;
                check_report_write_junit(&one, 1, junit);
                struct pipeline_event ev = {.type = PEV_CHECKS, .build = b, .stage = "boot-check",
                                            .report = &rep, .elapsed_ms = rep.elapsed_ms, .path = junit};
                emit(run, &ev);
        }
        check_report_done(&rep);
        return ok;
}

/* Whether a selected build asks for a boot check in the spec. */
static bool spec_boot_checks(const struct spec *s) {
        for (size_t i = 0; i < s->nbuilds; i++)
                if (s->builds[i]->selected && s->builds[i]->boot_check)
                        return true;
        return false;
}

static void stage_boot_checks(struct run *run) {
        const struct pipeline_options *o = run->o;
        if (!o->boot_check && (o->no_checks || !spec_boot_checks(run->spec)))
                return;
        for (size_t i = 0; i < run->res->n; i++) {
                const struct spec_build *b = run->res->trees[i].build;
                /* Every booted image is judged by systemd's verdict, so
                 * a build without checks: is booted too. */
                if (!(o->boot_check || b->boot_check) ||
                    !goes_on(run, i, PIPELINE_BUILD_BOOT_FAILED, "boot-check", true))
                        continue;
                if (!boot_check(run, b))
                        run->res->status[i] = PIPELINE_BUILD_BOOT_FAILED;
        }
}

/* ---- delivery: the image store and publish: ---------------------------------------------------- */

struct store_state {
        struct store *st;
        char *dir;
        int r;
        bool opened;
};

static bool store_image(struct run *run, struct store_state *ss, const struct spec_build *b,
                        const struct artifact_set *set) {
        if (!ss->opened) { /* opened once, for the first image */
                ss->dir = run->o->store_dir ? xstrdup(run->o->store_dir) : store_default_dir();
                ss->r = store_open(ss->dir, &ss->st);
                ss->opened = true;
        }
        struct store_entry *v = NULL;
        size_t nv = 0;
        uint64_t t0 = now_ms();
        int r = ss->r >= 0 ? store_add_artifacts(ss->st, set, NULL, &v, &nv) : ss->r;
        if (r < 0)
                problem(run, PEV_ERROR, b, "store", "cannot add to the image store %s: %s", ss->dir,
                        ss->st && *store_error(ss->st) ? store_error(ss->st) : strerror(-r));
        else if (nv) {
                uint64_t bytes = 0;
                for (size_t k = 0; k < nv; k++)
                        bytes += v[k].size;
                struct pipeline_event ev = {.type = PEV_STORED, .build = b, .entries = v, .nentries = nv,
                                            .path = ss->dir, .bytes = bytes, .elapsed_ms = now_ms() - t0};
                emit(run, &ev);
        }
        store_entries_free(v, nv);
        return r >= 0;
}

static bool publish_image(struct run *run, const struct spec_build *b, const struct artifact_set *set) {
        struct publish_ctx ctx = {.environ = run->o->environ, .add_secret = run_secret_add,
                                  .userdata = run, .log_fd = -1};
        struct publish_outcome *o = NULL;
        size_t no = 0;
        int r = publish_artifact_set(set, b, &ctx, &o, &no);
        for (size_t k = 0; k < no; k++) {
                const struct publish_result *pr = &o[k].result;
                struct pipeline_event ev = {.type = PEV_PUBLISHED, .build = b, .outcome = &o[k],
                                            .bytes = pr->bytes_sent, .elapsed_ms = pr->elapsed_ms,
                                            .path = pr->location};
                emit(run, &ev);
                if (pr->status == PUBLISH_FAILED)
                        problem(run, PEV_ERROR, b, "publish", "publishing to %s failed: %s", o[k].target,
                                pr->error ? pr->error : "?");
        }
        if (r < 0 && r != -EIO)
                problem(run, PEV_ERROR, b, "publish", "cannot publish: %s", strerror(-r));
        publish_outcomes_free(o, no);
        return r >= 0;
}

/* Every build whose image was made and passed its checks goes into the
 * local image store and to the targets of its publish: section. */
static void stage_deliver(struct run *run) {
        struct pipeline_result *res = run->res;
        struct store_state ss = {0};
        for (size_t i = 0; i < res->n; i++) {
                const struct spec_build *b = res->trees[i].build;
                if (res->status[i] == PIPELINE_BUILD_BOOT_FAILED && b->outputs && b->outputs->n)
                        problem(run, PEV_ERROR, b, "store", "not stored%s: the boot check failed",
                                b->publish && !run->o->no_publish ? " or published" : "");
                if (!goes_on(run, i, PIPELINE_BUILD_STORE_FAILED, "store", false))
                        continue;
                const struct artifact_set *set = &run->outs[i].set;
                if (!run->o->no_store && !store_image(run, &ss, b, set))
                        res->status[i] = PIPELINE_BUILD_STORE_FAILED;
                if (!b->publish || run->o->no_publish)
                        continue;
                if (cancelled(run)) {
                        problem(run, PEV_ERROR, b, "publish", "cancelled");
                        res->status[i] = PIPELINE_BUILD_PUBLISH_FAILED;
                } else if (!publish_image(run, b, set))
                        res->status[i] = PIPELINE_BUILD_PUBLISH_FAILED;
        }
        store_close(ss.st);
        free(ss.dir);
}

/* ---- the run ----------------------------------------------------------------------------------- */

static void count(struct pipeline_result *res) {
        for (size_t i = 0; i < res->n; i++) {
                if (res->status[i] == PIPELINE_BUILD_OK)
                        res->ok++;
                else if (res->status[i] == PIPELINE_BUILD_SKIPPED)
                        res->skipped++;
                else
                        res->failed++;
        }
}

int pipeline_run(const struct spec *s, const struct pipeline_options *opts,
                 const struct pipeline_observer *obs, struct pipeline_result *ret) {
        *ret = (struct pipeline_result){0};
        if (!s || !opts || !opts->cache || !opts->work_dir)
                return -EINVAL;
        uint64_t t0 = now_ms();
        struct run run = {.spec = s, .o = opts, .obs = obs, .res = ret,
                          .outdir = opts->output_dir ? opts->output_dir : "output"};
        pthread_mutex_init(&run.lock, NULL);
        run.secrets = secrets_new(SECRETS_MIN_LEN);
        snprintf(ret->timestamp, sizeof(ret->timestamp), "%s", s->timestamp ? s->timestamp : "");
        uuid_random(ret->run_uuid);
        struct build_observer bobs = {.userdata = &run, .step = on_step, .output = on_output};
        struct build_verifier verifier = {.userdata = &run, .verify = verify_tree};
        run.bo = (struct build_options){
                .cache = opts->cache, .work_dir = opts->work_dir, .on_error = opts->on_error,
                .force = opts->force, .debug = opts->step_output,
                .parallel = opts->parallel ? opts->parallel : 1, .observer = &bobs,
                .verifier = opts->no_checks ? NULL : &verifier, .cancel = opts->cancel,
        };
        unsigned nsel = 0;
        for (size_t i = 0; i < s->nbuilds; i++)
                nsel += s->builds[i]->selected;
        struct pipeline_event start = {.type = PEV_RUN_STARTED, .timestamp = ret->timestamp,
                                       .run_uuid = ret->run_uuid, .count = nsel};
        emit(&run, &start);
        int r = stage_trees(&run);
        if (r >= 0) {
                trees_finished(&run);
                if (!opts->trees_only) {
                        stage_images(&run);
                        stage_boot_checks(&run);
                        stage_deliver(&run);
                } else if (opts->boot_check)
                        problem(&run, PEV_WARNING, NULL, "boot-check",
                                "--boot-check needs images; nothing booted with --trees-only");
                count(ret);
        }
        ret->cancelled = cancelled(&run);
        ret->elapsed_ms = now_ms() - t0;
        if (r >= 0) {
                struct pipeline_event fin = {.type = PEV_RUN_FINISHED, .result = ret,
                                             .elapsed_ms = ret->elapsed_ms};
                emit(&run, &fin);
        }
        for (size_t i = 0; run.outs && i < ret->n; i++)
                output_result_done(&run.outs[i]);
        free(run.outs);
        secrets_unref(run.secrets);
        pthread_mutex_destroy(&run.lock);
        if (r < 0)
                return r;
        return ret->failed || ret->skipped || run.failed ? 1 : 0;
}

void pipeline_result_done(struct pipeline_result *r) {
        build_results_free(r->trees, r->n);
        free(r->status);
        *r = (struct pipeline_result){0};
}

char *pipeline_log_tail(const char *path, unsigned nlines) {
        enum { TAIL_MAX = 8192 };
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0)
                return NULL;
        off_t from = end > TAIL_MAX ? end - TAIL_MAX : 0;
        char buf[TAIL_MAX + 1];
        ssize_t n = pread(fd, buf, (size_t)(end - from), from);
        if (n < 0)
                return NULL;
        while (n > 0 && buf[n - 1] == '\n')
                n--;
        buf[n] = 0;
        const char *p = buf + n;
        for (unsigned k = 0; p > buf; p--)
                if (p[-1] == '\n' && ++k == nlines)
                        break;
        return *p ? xstrdup(p) : NULL;
}
