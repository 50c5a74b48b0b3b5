/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The views of a `kiln build` run (build_view.h). The text view's layout is
 * what users and the e2e tests read: "NAME  N/M kind label status" per
 * step, "NAME  stage ..." per later stage, problems as "kiln: NAME: ..." on
 * stderr, and one summary line at the end. Everything is printed under one
 * lock, shared with the timer thread that redraws a running step.
 */
#include "cli/build_view.h"

#include "base/strbuf.h"
#include "check/check.h"
#include "image/outputs.h"
#include "publish/publish.h"
#include "store/store.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

/* A step running now, per build (builds run in parallel). */
struct running {
        const struct spec_build *build;
        unsigned position, count;
        char *kind;
        char *line;               /* the step's line as printed, without status */
        char *last_output;        /* its latest output line, or NULL */
        uint64_t start_ms, next_beat_ms;
};

struct build_view {
        struct cli *cli;
        const struct spec_args *a;
        bool explain, tty, debug;
        size_t name_width;
        uint64_t heartbeat_ms;    /* not a terminal: a line per step this often */
        pthread_mutex_t lock;
        pthread_cond_t wake;
        pthread_t timer;
        bool timer_started, stop;
        struct running *run;
        size_t nrun, run_cap;
        bool up_to_date;          /* of the image whose artifacts are being shown */
        char **failures;          /* "BUILD\tFILE:LINE:COL: kind what: why" */
        size_t nfailures, failures_cap;
};

static uint64_t wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fmt_duration(uint64_t ms, char *buf, size_t n) {
        uint64_t s = ms / 1000;
        if (s < 60)
                snprintf(buf, n, "%us", (unsigned)s);
        else
                snprintf(buf, n, "%um%02us", (unsigned)(s / 60), (unsigned)(s % 60));
}

static struct running *running_find(struct build_view *v, const struct spec_build *b) {
        for (size_t i = 0; i < v->nrun; i++)
                if (v->run[i].build == b)
                        return &v->run[i];
        return NULL;
}

static void running_end(struct build_view *v, const struct spec_build *b) {
        struct running *r = running_find(v, b);
        if (!r)
                return;
        free(r->kind);
        free(r->line);
        free(r->last_output);
        *r = v->run[--v->nrun];
}

/* ---- the timer: elapsed time on a terminal, heartbeats elsewhere ------------------------------- */

static void redraw(struct build_view *v, uint64_t now) {
        /* On a terminal the latest running step owns the last line. */
        struct running *r = v->nrun ? &v->run[v->nrun - 1] : NULL;
        if (!r)
                return;
        char d[32];
        fmt_duration(now - r->start_ms, d, sizeof(d));
        printf("\r\033[K%s running %s", r->line, d);
        if (r->last_output)
                printf("  | %.60s", r->last_output);
        fflush(stdout);
}

static void heartbeat(struct build_view *v, uint64_t now) {
        for (size_t i = 0; i < v->nrun; i++) {
                struct running *r = &v->run[i];
                if (now < r->next_beat_ms)
                        continue;
                char d[32];
                fmt_duration(now - r->start_ms, d, sizeof(d));
                printf("%s step %u/%u %s still running (%s)\n", r->build->name, r->position, r->count,
                       r->kind, d);
                r->next_beat_ms = now + v->heartbeat_ms;
        }
        fflush(stdout);
}

static void *timer_main(void *arg) {
        struct build_view *v = arg;
        pthread_mutex_lock(&v->lock);
        while (!v->stop) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&v->wake, &v->lock, &ts);
                if (v->stop)
                        break;
                if (v->tty)
                        redraw(v, wall_ms());
                else
                        heartbeat(v, wall_ms());
        }
        pthread_mutex_unlock(&v->lock);
        return NULL;
}

/* ---- steps ------------------------------------------------------------------------------------ */

static void print_step(struct build_view *v, const struct step_event *ev) {
        const char *status;
        const char *color = "";
        switch (ev->status) {
        case STEP_HIT: status = "cached"; color = "\033[2m"; break;
        case STEP_RUNNING: status = "running"; break;
        case STEP_BUILT: status = "built"; color = "\033[32m"; break;
        case STEP_FAILED: status = "FAILED"; color = "\033[1;31m"; break;
        default: status = "skipped"; color = "\033[2m"; break;
        }
        _cleanup_free_ char *line = xasprintf("%-*s  %2u/%u %-10s %-40.40s", (int)v->name_width,
                                              ev->build->name, ev->position, ev->count, ev->kind,
                                              ev->label ? ev->label : "");
        if (ev->status == STEP_RUNNING) {
                running_end(v, ev->build);
                GROW(v->run, v->nrun, v->run_cap);
                uint64_t now = wall_ms();
                v->run[v->nrun++] = (struct running){.build = ev->build, .position = ev->position,
                                                     .count = ev->count, .kind = xstrdup(ev->kind),
                                                     .line = xstrdup(line),
                                                     .start_ms = now, .next_beat_ms = now + v->heartbeat_ms};
                if (!v->tty && !v->explain)
                        return;
        } else
                running_end(v, ev->build);
        bool c = v->cli->color_out;
        if (v->tty && ev->status != STEP_RUNNING)
                fputs("\r\033[K", stdout);
        printf("%s %s%s%s", line, c ? color : "", status, c ? "\033[0m" : "");
        if (ev->status == STEP_BUILT || ev->status == STEP_FAILED)
                printf(" %.1fs", (double)ev->elapsed_ms / 1000.0);
        if (v->explain && ev->explain && ev->status != STEP_RUNNING && ev->status != STEP_SKIPPED)
                printf("  (%s%s%s)", ev->explain->hit ? "hit" : "",
                       ev->explain->hit && ev->explain->why ? ": " : "",
                       ev->explain->why ? ev->explain->why : ev->explain->hit ? "" : "miss");
        else if (v->explain && ev->status == STEP_RUNNING && ev->explain && ev->explain->why)
                printf("  (miss: %s)", ev->explain->why);
        if (ev->status == STEP_RUNNING && v->tty)
                fflush(stdout); /* stays on the line until the result */
        else
                putchar('\n');
        if (ev->status == STEP_FAILED && ev->log_path)
                printf("%-*s         log: %s\n", (int)v->name_width, "", ev->log_path);
}

static void print_output(struct build_view *v, const struct pipeline_event *ev) {
        size_t len = ev->len;
        while (len && (ev->text[len - 1] == '\n' || ev->text[len - 1] == '\r'))
                len--;
        struct running *r = running_find(v, ev->build);
        if (r && len) {
                free(r->last_output);
                r->last_output = xstrndup(ev->text, len);
                for (char *p = r->last_output; *p; p++)
                        if ((unsigned char)*p < 0x20)
                                *p = ' ';
        }
        if (!v->debug)
                return;
        if (v->tty)
                fputs("\r\033[K", stderr);
        fprintf(stderr, "%s| %.*s\n", ev->build->name, (int)len, ev->text);
}

/* ---- checks ----------------------------------------------------------------------------------- */

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

static void print_checks(struct build_view *v, const struct pipeline_event *ev) {
        const struct check_report *rep = ev->report;
        const char *name = ev->build->name;
        bool c = v->cli->color_out, boot = streq(ev->stage, "boot-check");
        printf("%-*s  %-4s %-10s %u passed, %u failed, %u skipped  %.1fs\n", (int)v->name_width, name, "",
               ev->stage, rep->passed, rep->failed, rep->skipped, (double)rep->elapsed_ms / 1000.0);
        for (size_t i = 0; i < rep->n; i++) {
                if (rep->v[i].status != CHECK_FAILED)
                        continue;
                _cleanup_free_ char *line = failure_line(&rep->v[i]);
                printf("%-*s  %-4s %s%-10s%s %s\n", (int)v->name_width, name, "", c ? "\033[1;31m" : "",
                       "FAILED", c ? "\033[0m" : "", line);
                GROW(v->failures, v->nfailures, v->failures_cap);
                v->failures[v->nfailures++] = xasprintf("%s\t%s", name, line);
        }
        if (!boot || !rep->failed)
                return;
        fflush(stdout);
        fprintf(stderr, "kiln: %s: %u check%s failed in the booted image:\n", name, rep->failed,
                rep->failed == 1 ? "" : "s");
        for (size_t k = 0; k < rep->n; k++)
                if (rep->v[k].status == CHECK_FAILED) {
                        _cleanup_free_ char *line = failure_line(&rep->v[k]);
                        fprintf(stderr, "kiln:   %s\n", line);
                }
}

/* ---- a tree that did not finish ----------------------------------------------------------------- */

/* Appends s as one shell word. */
static void add_word(struct strbuf *sb, const char *s) {
        strbuf_addc(sb, ' ');
        if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+=:,@%") == strlen(s))
                strbuf_adds(sb, s);
        else
                check_sh_quote(sb, s);
}

/* The command that enters b's failed tree: the same work dir, cache and
 * var files as this run; --var values are not repeated (they may be
 * secret): their names are. */
static void suggest_shell(struct build_view *v, const struct spec_build *b) {
        const struct spec_args *a = v->a;
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "kiln shell --failed");
        if (a->work_dir) {
                strbuf_adds(&sb, " --work-dir");
                add_word(&sb, a->work_dir);
        }
        if (a->cache_dir) {
                strbuf_adds(&sb, " --cache-dir");
                add_word(&sb, a->cache_dir);
        }
        for (size_t i = 0; i < a->nvar_files; i++) {
                strbuf_adds(&sb, " --var-file");
                add_word(&sb, a->var_files[i]);
        }
        add_word(&sb, a->path);
        add_word(&sb, b->id ? b->id : b->name);
        fprintf(stderr, "kiln:   the failed step's changes are kept; enter them with:\nkiln:   %s\n",
                strbuf_str(&sb));
        strbuf_free(&sb);
        if (!a->nvars)
                return;
        fputs("kiln:   with the --var options of this run (values not shown):", stderr);
        for (size_t i = 0; i < a->nvars; i++)
                fprintf(stderr, " %.*s", (int)strcspn(a->vars[i], "="), a->vars[i]);
        fputc('\n', stderr);
}

static void print_tree(struct build_view *v, const struct pipeline_event *ev) {
        const struct build_result *t = ev->tree;
        const char *name = t->build->name;
        if (t->ok)
                return;
        fflush(stdout);
        if (t->skipped) {
                fprintf(stderr, "kiln: %s: skipped, its parent %s failed\n", name, t->build->parent->name);
        } else if (t->verify_failed) {
                fprintf(stderr, "kiln: %s: %s; no image is made from it:\n", name,
                        t->failed_step ? t->failed_step : "checks failed");
                size_t bl = strlen(name);
                for (size_t k = 0; k < v->nfailures; k++)
                        if (!strncmp(v->failures[k], name, bl) && v->failures[k][bl] == '\t')
                                fprintf(stderr, "kiln:   %s\n", v->failures[k] + bl + 1);
                if (t->record_path)
                        fprintf(stderr, "kiln:   results: %s\n", t->record_path);
        } else {
                fprintf(stderr, "kiln: %s: failed at step %s\n", name, t->failed_step ? t->failed_step : "?");
                if (ev->text) {
                        fputs("kiln:   the end of its log:\n", stderr);
                        for (const char *p = ev->text; *p;) {
                                size_t n = strcspn(p, "\n");
                                fprintf(stderr, "kiln:   | %.*s\n", (int)n, p);
                                p += n + (p[n] == '\n');
                        }
                }
                if (t->failed_log)
                        fprintf(stderr, "kiln:   log: %s\n", t->failed_log);
                if (t->failed_tree)
                        suggest_shell(v, t->build);
        }
}

/* ---- images, store, publish, problems, the summary ---------------------------------------------- */

static void print_image(struct build_view *v, const struct pipeline_event *ev) {
        const char *name = ev->build->name;
        if (ev->type == PEV_IMAGE_STARTED) {
                printf("%s  image      assembling %s...\n", name, ev->path);
        } else if (ev->type == PEV_IMAGE_ASSEMBLED) {
                v->up_to_date = ev->image->up_to_date;
                if (ev->image->up_to_date)
                        printf("%s  image      up to date (tree and settings unchanged)\n", name);
                else
                        printf("%s  image      disk assembled in %.1fs\n", name,
                               (double)ev->image->assemble_ms / 1000.0);
        } else {
                const struct artifact_file *oa = ev->artifact;
                char h[32];
                format_bytes(oa->size, h, sizeof(h));
                printf("%s  %-10s %s  %s  sha256 %.16s", name, oa->format, oa->path, h, oa->sha256);
                if (!v->up_to_date)
                        printf("  %.1fs", (double)oa->elapsed_ms / 1000.0);
                putchar('\n');
        }
}

static void print_published(const struct pipeline_event *ev) {
        const struct publish_outcome *o = ev->outcome;
        const struct publish_result *pr = &o->result;
        char bytes[32];
        format_bytes(pr->bytes_sent, bytes, sizeof(bytes));
        printf("%s  publish    %s %s -> %s", ev->build->name, publish_status_name(pr->status),
               o->file ? o->file : "-", o->target);
        if (pr->status == PUBLISH_UPLOADED)
                printf(" (%s in %.1fs)", bytes, pr->elapsed_ms / 1000.0);
        if (pr->status == PUBLISH_DISABLED)
                printf(" (enabled: false)");
        if (pr->location)
                printf("  %s", pr->location);
        putchar('\n');
}

static void print_problem(const struct pipeline_event *ev) {
        fflush(stdout);
        if (ev->type == PEV_WARNING)
                fprintf(stderr, "kiln: warning: %s\n", ev->text);
        else if (ev->build)
                fprintf(stderr, "kiln: %s: %s\n", ev->build->name, ev->text);
        else
                fprintf(stderr, "kiln: %s\n", ev->text);
        if (ev->path)
                fprintf(stderr, "kiln:   log: %s\n", ev->path);
}

static void print_summary(const struct pipeline_result *r) {
        printf("%u build%s ok, %u failed, %u skipped; %u step%s run, %u cached\n", r->ok,
               r->ok == 1 ? "" : "s", r->failed, r->skipped, r->steps_run, r->steps_run == 1 ? "" : "s",
               r->steps_cached);
        for (size_t i = 0; i < r->n; i++)
                if (r->status[i] == PIPELINE_BUILD_OK)
                        printf("  %s: %s (%.1fs)\n", r->trees[i].build->name, r->trees[i].record_path,
                               (double)r->trees[i].elapsed_ms / 1000.0);
                else if (r->trees[i].ok) /* the tree was built; a later stage failed */
                        printf("  %s: %s\n", r->trees[i].build->name, pipeline_build_status_name(r->status[i]));
}

void build_view_event(void *userdata, const struct pipeline_event *ev) {
        struct build_view *v = userdata;
        pthread_mutex_lock(&v->lock);
        switch (ev->type) {
        case PEV_STEP_STARTED:
        case PEV_STEP_FINISHED:
        case PEV_STEP_CACHED:
        case PEV_STEP_SKIPPED: print_step(v, ev->step); break;
        case PEV_STEP_OUTPUT: print_output(v, ev); break;
        case PEV_CHECKS: print_checks(v, ev); break;
        case PEV_TREE_FINISHED: print_tree(v, ev); break;
        case PEV_IMAGE_STARTED:
        case PEV_IMAGE_ASSEMBLED:
        case PEV_IMAGE_WRITTEN: print_image(v, ev); break;
        case PEV_BOOT_STARTED:
                printf("%-*s  %-4s %-10s booting %s...\n", (int)v->name_width, ev->build->name, "",
                       "boot-check", ev->path);
                break;
        case PEV_STORED:
                printf("%s  store      %s:%s in %s (%zu file%s)\n", ev->build->name, ev->entries[0].name,
                       ev->entries[0].version, ev->path, ev->nentries, ev->nentries == 1 ? "" : "s");
                break;
        case PEV_PUBLISHED: print_published(ev); break;
        case PEV_ERROR:
        case PEV_WARNING: print_problem(ev); break;
        case PEV_RUN_FINISHED: print_summary(ev->result); break;
        case PEV_RUN_STARTED: break;
        }
        fflush(stdout);
        pthread_mutex_unlock(&v->lock);
}

bool build_view_wants_output(const struct build_view *v) {
        return v->debug || v->tty;
}

struct build_view *build_view_new(struct cli *cli, const struct spec_args *a, const struct spec *s) {
        struct build_view *v = xcalloc(1, sizeof(*v));
        const char *log_env = getenv("KILN_LOG");
        const char *hb = getenv("KILN_HEARTBEAT_S");
        *v = (struct build_view){.cli = cli, .a = a, .explain = a->explain, .tty = isatty(STDOUT_FILENO),
                                 .debug = a->debug || cli->verbose > 0 || (log_env && streq(log_env, "debug")),
                                 .heartbeat_ms = (hb && atoi(hb) > 0 ? (uint64_t)atoi(hb) : 60) * 1000};
        for (size_t i = 0; i < s->nbuilds; i++)
                if (s->builds[i]->needed && strlen(s->builds[i]->name) > v->name_width)
                        v->name_width = strlen(s->builds[i]->name);
        pthread_mutex_init(&v->lock, NULL);
        pthread_cond_init(&v->wake, NULL);
        v->timer_started = pthread_create(&v->timer, NULL, timer_main, v) == 0;
        return v;
}

void build_view_free(struct build_view *v) {
        if (!v)
                return;
        pthread_mutex_lock(&v->lock);
        v->stop = true;
        pthread_cond_signal(&v->wake);
        pthread_mutex_unlock(&v->lock);
        if (v->timer_started)
                pthread_join(v->timer, NULL);
        while (v->nrun)
                running_end(v, v->run[0].build);
        free(v->run);
        for (size_t i = 0; i < v->nfailures; i++)
                free(v->failures[i]);
        free(v->failures);
        pthread_mutex_destroy(&v->lock);
        pthread_cond_destroy(&v->wake);
        free(v);
}

void build_json_view_event(void *userdata, const struct pipeline_event *ev) {
        struct build_json_view *j = userdata;
        if (ev->type == PEV_STEP_OUTPUT && !j->debug)
                return;
        struct strbuf sb = STRBUF_INIT;
        pipeline_event_json(ev, &sb);
        strbuf_addc(&sb, '\n');
        fwrite(sb.buf, 1, sb.len, j->f);
        fflush(j->f);
        strbuf_free(&sb);
}
