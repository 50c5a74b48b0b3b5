/* SPDX-License-Identifier: Apache-2.0 */
/* kiln publish: send built images (or bare files) to the targets of their
 * publish: sections or to targets named on the command line. */
#include "cli/cli.h"

#include "base/clock.h"
#include "base/json.h"
#include "base/secrets.h"
#include "publish/publish.h"
#include "spec/schema.h"
#include "spec/yaml.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <pthread.h>
#include <time.h>

static int publish_run(struct cli *cli, int argc, char **argv);

const struct verb verb_publish = {
        .name = "publish",
        .summary = "Upload built images to S3-compatible storage or OpenStack Glance",
        .usage = "kiln publish [options] [SPEC] [ARTIFACT-FILE...]\n"
                 "       kiln publish --list-uploads|--abort-uploads s3://BUCKET[/PREFIX] [options]",
        .help = "Publishes each selected build's artifacts (OUTPUT/<name>/, as recorded in its\n"
                "kiln-manifest.json) to the targets of its publish: section, or bare files to\n"
                "targets given with --to. Before sending, each target is asked whether the\n"
                "same content (by SHA-256 / SHA-512) is already there; then nothing is sent\n"
                "and the result is skipped-identical. One line per target and artifact:\n"
                "  uploaded | skipped-identical | failed  TARGET  FILE  BYTES  TIME\n"
                "\n"
                "SPEC is a file ending in .yaml, .yml or .json (default kiln.yaml when no\n"
                "ARTIFACT-FILE is given); other arguments are files to publish as they are.\n"
                "\n"
                "Options:\n"
                "  --only GLOB[,GLOB]  publish only matching builds\n"
                "  --to TARGET         only the publish: targets with this name: (or\n"
                "                      \"TYPE #N\"); or s3://BUCKET/KEY for a target given here\n"
                "                      (KEY ending in / or empty: the file name is appended).\n"
                "                      Repeatable\n"
                "  --set KEY=VALUE     a setting of the s3:// targets given with --to, e.g.\n"
                "                      --set endpoint=https://storage.googleapis.com,\n"
                "                      --set region=eu-west-1, --set part_size=64MiB\n"
                "  --output-dir DIR    where the builds' images are (default: output)\n"
                "  --parallel N        concurrent part uploads per target (default 4)\n"
                "  --var NAME=VALUE    set a spec variable (repeatable)\n"
                "  --var-file FILE     read spec variables from a YAML or JSON file\n"
                "  --json              print the results as JSON on stdout (also when it fails)\n"
                "  --list-uploads s3://BUCKET[/PREFIX]\n"
                "                      list unfinished multipart uploads of keys starting\n"
                "                      with PREFIX (like aws s3api list-multipart-uploads)\n"
                "  --abort-uploads s3://BUCKET[/PREFIX]\n"
                "                      abort them, discarding their stored parts (like\n"
                "                      aws s3api abort-multipart-upload, mc rm --incomplete)\n"
                "  --older-than DURATION  with the two above: only uploads started longer\n"
                "                      ago than DURATION (e.g. 1d, 12h), so that uploads in\n"
                "                      progress are left alone\n"
                "  -h, --help          this help\n"
                "With -v (before the verb), every HTTP request and response is logged to\n"
                "stderr, credentials masked. Progress of hashing and uploading goes to\n"
                "stderr: redrawn on a terminal, otherwise a line at every 25% of a file of\n"
                "16 MiB or more and at least every 10 s.\n"
                "\n"
                "Credentials: S3 reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY\n"
                "(/ AWS_SESSION_TOKEN), or AWS_PROFILE and ~/.aws/credentials, or the target's\n"
                "credentials_file:; the endpoint also from AWS_ENDPOINT_URL(_S3). Glance reads\n"
                "the OS_* variables of an OpenStack RC file. See docs/publish.md.\n"
                "\n"
                "Exit status: 0 all published or skipped, 1 any failed, 2 usage error or\n"
                "invalid spec.\n",
        .run = publish_run,
};

enum {
        P_HELP = 1,
        P_ONLY,
        P_TO,
        P_SET,
        P_OUTPUT_DIR,
        P_PARALLEL,
        P_VAR,
        P_VAR_FILE,
        P_JSON,
        P_LIST_UPLOADS,
        P_ABORT_UPLOADS,
        P_OLDER_THAN,
};

static const struct cli_option publish_opts[] = {
        {"help", 'h', false, P_HELP},
        {"only", 0, true, P_ONLY},
        {"to", 0, true, P_TO},
        {"set", 0, true, P_SET},
        {"output-dir", 0, true, P_OUTPUT_DIR},
        {"parallel", 0, true, P_PARALLEL},
        {"var", 0, true, P_VAR},
        {"var-file", 0, true, P_VAR_FILE},
        {"json", 0, false, P_JSON},
        {"list-uploads", 0, true, P_LIST_UPLOADS},
        {"abort-uploads", 0, true, P_ABORT_UPLOADS},
        {"older-than", 0, true, P_OLDER_THAN},
        {NULL, 0, false, 0},
};

/* Progress on stderr. A terminal gets one line redrawn at most every
 * PROGRESS_TTY_MS; anything else (CI logs) a line at every PROGRESS_STEP
 * percent and at least every PROGRESS_LINE_MS, for files of at least
 * PROGRESS_MIN_BYTES (smaller ones are done before anyone looks). */
#define PROGRESS_TTY_MS 200
#define PROGRESS_LINE_MS 10000
#define PROGRESS_STEP 25
#define PROGRESS_MIN_BYTES (16ull << 20)

/* Everything the progress and secret callbacks need. */
struct view {
        bool tty;
        const char *what;           /* "hashing", "uploading" */
        const char *label;
        uint64_t start_ms, last_ms;
        unsigned last_step;         /* last PROGRESS_STEP printed (non-terminal) */
        bool shown;                 /* a terminal line is on screen */
        pthread_mutex_t lock;       /* progress output */
        struct secrets *secrets;    /* what publishers registered, masked in messages */
};

static void add_secret(void *userdata, const char *secret) {
        struct view *v = userdata;
        secrets_add(v->secrets, secret);
}

/* Starts showing a new file's progress. */
static void progress_start(struct view *v, const char *what, const char *label) {
        pthread_mutex_lock(&v->lock);
        v->what = what;
        v->label = label;
        v->start_ms = v->last_ms = now_ms();
        v->last_step = 0;
        pthread_mutex_unlock(&v->lock);
}

static void progress_clear(struct view *v) {
        pthread_mutex_lock(&v->lock);
        if (v->tty && v->shown) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
        }
        v->shown = false;
        pthread_mutex_unlock(&v->lock);
}

static void progress_show(struct view *v, uint64_t done, uint64_t total) {
        uint64_t t = now_ms();
        pthread_mutex_lock(&v->lock);
        unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
        bool show;
        if (v->tty)
                show = t - v->last_ms >= PROGRESS_TTY_MS || done == total;
        else
                show = total >= PROGRESS_MIN_BYTES &&
                       (pct / PROGRESS_STEP > v->last_step || t - v->last_ms >= PROGRESS_LINE_MS);
        if (show && v->label) {
                v->last_ms = t;
                v->last_step = pct / PROGRESS_STEP;
                char a[32], b[32], r[32];
                format_bytes(done, a, sizeof(a));
                format_bytes(total, b, sizeof(b));
                uint64_t ms = t - v->start_ms;
                format_bytes(ms ? done * 1000 / ms : 0, r, sizeof(r));
                if (v->tty) {
                        fprintf(stderr, "\r\033[K  %s %s: %s / %s (%u%%, %s/s)", v->what, v->label, a,
                                b, pct, r);
                        v->shown = true;
                } else
                        fprintf(stderr, "kiln publish: %s %s: %u%% (%s of %s, %s/s)\n", v->what,
                                v->label, pct, a, b, r);
                fflush(stderr);
        }
        pthread_mutex_unlock(&v->lock);
}

/* publish_ctx.progress: the upload of the file view->label names. */
static void progress(void *userdata, uint64_t done, uint64_t total) {
        progress_show(userdata, done, total);
}

/* publish_artifacts.hash_progress */
static void hash_progress(void *userdata, const char *path, uint64_t done, uint64_t total) {
        struct view *v = userdata;
        if (done == 0)
                progress_start(v, "hashing", path);
        progress_show(v, done, total);
        if (done == total)
                progress_clear(v);
}

/* One unit of work: a target and the artifacts it gets. */
struct job {
        const char *build;                 /* NULL for bare files */
        struct publish_target target;      /* borrowed */
        const struct publish_artifacts *set;
        bool all;                          /* every artifact (bare files), not a pick */
};

struct out {
        char *build;
        struct publish_outcome o;
};

static void print_line(const struct out *r, struct view *v) {
        const struct publish_result *res = &r->o.result;
        char bytes[32];
        format_bytes(res->bytes_sent, bytes, sizeof(bytes));
        double secs = res->elapsed_ms / 1000.0;
        printf("%-17s %s%s%s  %s", publish_status_name(res->status), r->build ? r->build : "",
               r->build ? " -> " : "", r->o.target, r->o.file ? r->o.file : "-");
        if (res->status == PUBLISH_DISABLED) {
                printf("  (enabled: false)\n");
                return;
        }
        if (res->status == PUBLISH_FAILED) {
                _cleanup_free_ char *e = secrets_mask(v->secrets, res->error ? res->error : "failed");
                printf(": %s\n", e);
                fflush(stdout);
                return;
        }
        printf("  %s  %s sent in %.1fs", res->location ? res->location : "", bytes, secs);
        if (res->status == PUBLISH_UPLOADED && res->elapsed_ms > 0)
                printf(" (%.1f MiB/s)", res->bytes_sent / 1048576.0 / secs);
        if (res->bytes_retried) {
                format_bytes(res->bytes_retried, bytes, sizeof(bytes));
                printf(" (and %s in failed attempts)", bytes);
        }
        printf("\n");
        if (res->note)
                fprintf(stderr, "kiln publish: note: %s\n", res->note);
        fflush(stdout);
}

/* Builds the value of an s3://BUCKET/KEY target with --set settings. */
static int url_target(const char *url, struct value *const *sets, size_t nsets, struct source *src,
                      struct value **ret) {
        const char *rest = startswith(url, "s3://");
        if (!rest)
                return -EINVAL;
        const char *slash = strchr(rest, '/');
        size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
        if (!blen)
                return -EINVAL;
        struct mark m = {.src = src, .line = 0, .col = 0};
        struct value *map = value_new(V_MAP, &m);
        value_map_set(map, "type", value_new_string("s3", &m));
        value_map_set(map, "name", value_new_string(url, &m));
        value_map_set(map, "bucket", value_new_stringn(rest, blen, &m));
        if (slash && slash[1])
                value_map_set(map, "key", value_new_string(slash + 1, &m));
        for (size_t i = 0; i < nsets; i++) {
                /* sets[i] is a one-entry map parsed from KEY: VALUE */
                value_map_set(map, sets[i]->keys[0]->str, value_clone(sets[i]->items[0]));
        }
        *ret = map;
        return 0;
}

/* The one JSON document of a run: every result so far, the run's error
 * (NULL when none) and the spec's diagnostics (when any). Printed on every
 * path out of publish_run, so --json always gives a document. */
static void print_json(const struct out *outs, size_t nouts, size_t failed, const char *error,
                       struct diag_list *d, struct view *v) {
        _cleanup_strbuf_ struct strbuf js = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &js, true);
        json_begin_object(&w);
        json_key(&w, "schema_version");
        json_int(&w, 1);
        json_key(&w, "results");
        json_begin_array(&w);
        for (size_t i = 0; i < nouts; i++) {
                const struct publish_result *res = &outs[i].o.result;
                json_begin_object(&w);
                json_key(&w, "build");
                json_string(&w, outs[i].build);
                json_key(&w, "target");
                json_string(&w, outs[i].o.target);
                json_key(&w, "type");
                json_string(&w, outs[i].o.type);
                json_key(&w, "file");
                json_string(&w, outs[i].o.file);
                json_key(&w, "status");
                json_string(&w, publish_status_name(res->status));
                json_key(&w, "location");
                json_string(&w, res->location);
                json_key(&w, "bytes_sent");
                json_int(&w, (int64_t)res->bytes_sent);
                json_key(&w, "bytes_retried");
                json_int(&w, (int64_t)res->bytes_retried);
                json_key(&w, "elapsed_ms");
                json_int(&w, (int64_t)res->elapsed_ms);
                json_key(&w, "error");
                _cleanup_free_ char *e = res->error ? secrets_mask(v->secrets, res->error) : NULL;
                json_string(&w, e);
                json_key(&w, "note");
                json_string(&w, res->note);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_key(&w, "failed");
        json_int(&w, (int64_t)failed);
        json_key(&w, "error");
        _cleanup_free_ char *e = error ? secrets_mask(v->secrets, error) : NULL;
        json_string(&w, e);
        if (d && d->n) {
                _cleanup_strbuf_ struct strbuf dj = STRBUF_INIT;
                diag_sort(d);
                diag_render_json(d, &dj);
                json_key(&w, "diagnostics");
                json_raw(&w, strbuf_str(&dj));
        }
        json_end_object(&w);
        printf("%s\n", strbuf_str(&js));
        fflush(stdout);
}

/* A failure that ends the run before or instead of results: printed on
 * stderr now (as a usage error when usage is set), kept in *error (the
 * first one) for the JSON document. */
_printf_(3, 4) static void run_error(char **error, bool usage, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0)
                die_oom();
        va_end(ap);
        if (usage)
                cli_usage_error("publish", "%s", msg);
        else
                fprintf(stderr, "kiln publish: %s\n", msg);
        if (!*error)
                *error = TAKE_PTR(msg);
}

/* Prints a string that came from a server (a key, an upload id) with
 * control characters shown as \xNN, so a hostile listing cannot drive the
 * terminal. */
static void print_untrusted(const char *s) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f || *p == '\\')
                        printf("\\x%02x", *p);
                else
                        putchar(*p);
}

/* --list-uploads / --abort-uploads: the unfinished uploads under a
 * target's key prefix, optionally only those older than older_s, listed
 * or aborted. Returns the exit code. */
static int uploads_run(const struct publish_target *t, bool abort_them, int64_t older_s, bool json,
                       const struct publish_ctx *ctx, struct view *v, char **error) {
        const struct publisher *p = publisher_find(t->type);
        if (!p || !p->list_uploads || !p->abort_upload) {
                run_error(error, true, "%s targets have no unfinished uploads", t->type);
                return EXIT_USAGE;
        }
        struct publish_upload *u = NULL;
        size_t n = 0;
        _cleanup_free_ char *lerr = NULL;
        if (p->list_uploads(t, ctx, &u, &n, &lerr) < 0) {
                _cleanup_free_ char *m = secrets_mask(v->secrets, lerr ? lerr : "failed");
                run_error(error, false, "%s: %s", t->name, m);
                return EXIT_FAILED;
        }
        int64_t now = (int64_t)time(NULL);
        size_t aborted = 0, failed = 0, shown = 0;
        _cleanup_strbuf_ struct strbuf js = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &js, true);
        json_begin_object(&w);
        json_key(&w, "schema_version");
        json_int(&w, 1);
        json_key(&w, "uploads");
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++) {
                /* With --older-than, an upload of unknown age is not known
                 * to be old: left alone. */
                if (older_s >= 0 && (u[i].initiated_s < 0 || now - u[i].initiated_s <= older_s))
                        continue;
                shown++;
                const char *status = NULL;
                _cleanup_free_ char *aerr = NULL, *masked = NULL;
                if (abort_them) {
                        if (p->abort_upload(t, &u[i], ctx, &aerr) < 0) {
                                failed++;
                                status = "failed";
                                masked = secrets_mask(v->secrets, aerr ? aerr : "failed");
                        } else {
                                aborted++;
                                status = "aborted";
                        }
                }
                if (json) {
                        json_begin_object(&w);
                        json_key(&w, "key");
                        json_string(&w, u[i].key);
                        json_key(&w, "upload_id");
                        json_string(&w, u[i].upload_id);
                        json_key(&w, "initiated");
                        json_string(&w, u[i].initiated);
                        if (abort_them) {
                                json_key(&w, "status");
                                json_string(&w, status);
                                json_key(&w, "error");
                                json_string(&w, masked);
                        }
                        json_end_object(&w);
                } else {
                        if (abort_them)
                                printf("%-8s ", status);
                        print_untrusted(u[i].key);
                        printf("  ");
                        print_untrusted(u[i].upload_id);
                        printf("  ");
                        print_untrusted(u[i].initiated ? u[i].initiated : "-");
                        if (masked) {
                                printf(": ");
                                print_untrusted(masked);
                        }
                        printf("\n");
                }
        }
        json_end_array(&w);
        if (abort_them) {
                json_key(&w, "aborted");
                json_int(&w, (int64_t)aborted);
        }
        json_key(&w, "failed");
        json_int(&w, (int64_t)failed);
        json_key(&w, "error");
        json_null(&w);
        json_end_object(&w);
        if (json)
                printf("%s\n", strbuf_str(&js));
        else if (abort_them)
                fprintf(stderr, "kiln publish: %zu aborted, %zu failed\n", aborted, failed);
        else
                fprintf(stderr, "kiln publish: %zu unfinished upload%s\n", shown, shown == 1 ? "" : "s");
        fflush(stdout);
        publish_uploads_free(u, n);
        return failed ? EXIT_FAILED : EXIT_OK;
}

static bool is_spec_path(const char *p) {
        return endswith(p, ".yaml") || endswith(p, ".yml") || endswith(p, ".json");
}

static bool glob_any(char *const *globs, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (fnmatch(globs[i], name, 0) == 0)
                        return true;
        return false;
}

static int publish_run(struct cli *cli, int argc, char **argv) {
        struct cli_parser p = {.opts = publish_opts, .argc = argc, .argv = argv, .i = 1,
                               .verb = "publish"};
        struct spec_args a = {0};
        const char **files = NULL, **tos = NULL, **sets = NULL;
        size_t nfiles = 0, ntos = 0, nsets = 0;
        const char *output_dir = "output";
        unsigned parallel = 0;
        int rc = EXIT_USAGE;
        const char *arg;
        int id;
        struct diag_list d = {0};
        struct spec *s = NULL;
        struct source *cmdline = source_new("command line", NULL, 0);
        struct value **set_vals = NULL;
        struct value **url_vals = NULL;
        size_t nurl = 0;
        struct publish_artifacts *sets_art = NULL;
        size_t nsets_art = 0;
        struct job *jobs = NULL;
        size_t njobs = 0;
        struct out *outs = NULL;
        size_t nouts = 0;
        struct view view = {.tty = isatty(STDERR_FILENO), .lock = PTHREAD_MUTEX_INITIALIZER,
                            .secrets = secrets_new(SECRETS_MIN_LEN)};
        bool *to_used = NULL;
        struct publish_target **spec_targets = NULL; /* borrowed from the spec */
        size_t *spec_ntargets = NULL;
        struct strbuf err = STRBUF_INIT;
        char *error = NULL;            /* what ended the run early (for --json) */
        size_t failed = 0;
        const char *uploads_url = NULL;
        bool abort_uploads = false;
        int64_t older_than = -1;
        struct value *uploads_val = NULL;

        /* --json is known before any usage error, so that even those print
         * a JSON document. */
        for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
                if (streq(argv[i], "--json") || streq(argv[i], "-json"))
                        a.json = true;

        while ((id = cli_next(&p, &arg)) != -1) {
                switch (id) {
                case -2:
                        if (!error)
                                error = xstrdup("invalid command line (see kiln help publish)");
                        goto out;
                case 0:
                        if (is_spec_path(arg)) {
                                if (a.path) {
                                        run_error(&error, true, "one spec at a time (got '%s' and '%s')",
                                                  a.path, arg);
                                        goto out;
                                }
                                a.path = arg;
                        } else {
                                files = xreallocarray(files, nfiles + 1, sizeof(*files));
                                files[nfiles++] = arg;
                        }
                        break;
                case P_HELP:
                        cli_print_verb_help(&verb_publish, stdout);
                        rc = EXIT_OK;
                        goto out_printed; /* the help, not a JSON document */
                case P_ONLY: {
                        const char *q = arg;
                        for (;;) {
                                const char *c = strchrnul(q, ',');
                                if (c > q) {
                                        a.only = xreallocarray(a.only, a.nonly + 1, sizeof(char *));
                                        a.only[a.nonly++] = xstrndup(q, c - q);
                                }
                                if (!*c)
                                        break;
                                q = c + 1;
                        }
                        break;
                }
                case P_TO:
                        tos = xreallocarray(tos, ntos + 1, sizeof(*tos));
                        tos[ntos++] = arg;
                        break;
                case P_SET:
                        if (!strchr(arg, '=') || arg[0] == '=') {
                                run_error(&error, true, "--set needs KEY=VALUE, not '%s'", arg);
                                goto out;
                        }
                        sets = xreallocarray(sets, nsets + 1, sizeof(*sets));
                        sets[nsets++] = arg;
                        break;
                case P_OUTPUT_DIR:
                        output_dir = arg;
                        break;
                case P_PARALLEL: {
                        char *end;
                        unsigned long n = strtoul(arg, &end, 10);
                        if (*end || n < 1 || n > 32) {
                                run_error(&error, true, "--parallel needs a number from 1 to 32, not '%s'",
                                          arg);
                                goto out;
                        }
                        parallel = n;
                        break;
                }
                case P_VAR:
                        a.vars = xreallocarray(a.vars, a.nvars + 1, sizeof(char *));
                        a.vars[a.nvars++] = arg;
                        break;
                case P_VAR_FILE:
                        a.var_files = xreallocarray(a.var_files, a.nvar_files + 1, sizeof(char *));
                        a.var_files[a.nvar_files++] = arg;
                        break;
                case P_JSON:
                        a.json = true;
                        break;
                case P_LIST_UPLOADS:
                case P_ABORT_UPLOADS:
                        if (uploads_url) {
                                run_error(&error, true, "one --list-uploads or --abort-uploads at a time");
                                goto out;
                        }
                        uploads_url = arg;
                        abort_uploads = id == P_ABORT_UPLOADS;
                        break;
                case P_OLDER_THAN: {
                        uint64_t secs;
                        if (parse_duration(arg, &secs) < 0 || secs > INT64_MAX / 2) {
                                run_error(&error, true, "--older-than needs a duration such as 12h or 7d, not '%s'",
                                          arg);
                                goto out;
                        }
                        older_than = (int64_t)secs;
                        break;
                }
                default:
                        run_error(&error, true, "option not supported here");
                        goto out;
                }
        }

        /* --set KEY=VALUE: the value typed as YAML would type it. */
        set_vals = xcalloc(nsets + 1, sizeof(*set_vals));
        for (size_t i = 0; i < nsets; i++) {
                const char *eq = strchr(sets[i], '=');
                _cleanup_free_ char *text = xasprintf("%.*s: %s\n", (int)(eq - sets[i]), sets[i], eq + 1);
                struct source *src = source_new("--set", text, strlen(text));
                diag_adopt_source(&d, src);
                if (yaml_load(src, &d, &set_vals[i]) < 0 || !set_vals[i] ||
                    set_vals[i]->kind != V_MAP || set_vals[i]->n != 1) {
                        if (!a.json)
                                cli_print_diags(cli, &d);
                        run_error(&error, true, "--set '%s' is not KEY=VALUE", sets[i]);
                        goto out;
                }
        }
        if (older_than >= 0 && !uploads_url) {
                run_error(&error, true, "--older-than applies to --list-uploads and --abort-uploads");
                goto out;
        }
        if (uploads_url && (ntos || nfiles || a.path || a.nonly)) {
                run_error(&error, true, "--%s-uploads takes no spec, files, --only or --to",
                          abort_uploads ? "abort" : "list");
                goto out;
        }
        if (uploads_url) {
                if (url_target(uploads_url, set_vals, nsets, cmdline, &uploads_val) < 0) {
                        run_error(&error, true, "'%s': expected s3://BUCKET[/PREFIX]", uploads_url);
                        goto out;
                }
                if (publish_validate(uploads_val, &d) < 0) {
                        if (!a.json)
                                cli_print_diags(cli, &d);
                        goto out_diags;
                }
        }
        /* --to: s3:// URLs become targets; anything else names spec targets. */
        url_vals = xcalloc(ntos + 1, sizeof(*url_vals));
        to_used = xcalloc(ntos + 1, sizeof(*to_used));
        size_t nnames = 0;
        for (size_t i = 0; i < ntos; i++) {
                if (strstr(tos[i], "://")) {
                        if (url_target(tos[i], set_vals, nsets, cmdline, &url_vals[nurl]) < 0) {
                                run_error(&error, true, "--to '%s': expected s3://BUCKET/KEY", tos[i]);
                                goto out;
                        }
                        to_used[i] = true;
                        if (publish_validate(url_vals[nurl], &d) < 0) {
                                value_free(url_vals[nurl]);
                                url_vals[nurl] = NULL;
                                if (!a.json)
                                        cli_print_diags(cli, &d);
                                goto out_diags;
                        }
                        nurl++;
                } else
                        nnames++;
        }
        if (nsets && !nurl && !uploads_url) {
                run_error(&error, true, "--set applies to s3:// targets given with --to");
                goto out;
        }
        if (nfiles && a.path) {
                run_error(&error, true, "publish a spec's builds or files, not both");
                goto out;
        }
        if (nfiles && (!nurl || nnames)) {
                run_error(&error, true, "files need their targets as --to s3://BUCKET/KEY");
                goto out;
        }

        struct publish_ctx ctx = {
                .environ = environ,
                .add_secret = add_secret,
                .progress = progress,
                .userdata = &view,
                .parallel = parallel,
                .verbose = cli->verbose > 0,
                .log_fd = cli->verbose > 0 ? STDERR_FILENO : -1,
        };
        if (uploads_url) {
                const struct publish_target t = {.name = uploads_url, .type = "s3",
                                                 .settings = uploads_val};
                rc = uploads_run(&t, abort_uploads, older_than, a.json, &ctx, &view, &error);
                if (rc == EXIT_OK || !error)
                        goto out_printed;
                goto out;
        }
        if (nfiles) {
                bool need512 = false;
                for (size_t i = 0; i < nurl; i++) {
                        const struct publisher *pb = publisher_find(value_map_get(url_vals[i], "type")->str);
                        need512 |= pb && !pb->sha256_only;
                }
                sets_art = xcalloc(1, sizeof(*sets_art));
                nsets_art = 1;
                for (size_t i = 0; i < nfiles; i++) {
                        sets_art->hash_progress = hash_progress;
                        sets_art->hash_userdata = &view;
                        if (publish_artifacts_add_file(sets_art, files[i], need512, &err) < 0) {
                                run_error(&error, false, "%s", strbuf_str(&err));
                                rc = EXIT_FAILED;
                                goto out;
                        }
                }
                jobs = xcalloc(nurl, sizeof(*jobs));
                for (size_t i = 0; i < nurl; i++)
                        jobs[njobs++] = (struct job){
                                .target = {.name = value_map_get(url_vals[i], "name")->str,
                                           .type = "s3", .settings = url_vals[i]},
                                .set = sets_art, .all = true,
                        };
        } else {
                if (!a.path)
                        a.path = "kiln.yaml";
                /* --only selects builds to publish; every build is loaded
                 * (parents must be there for from:). */
                struct spec_args la = a;
                la.only = NULL;
                la.nonly = 0;
                /* publish: sections are validated as the spec loads. */
                if (cli_load_spec(cli, &la, &d, &s) < 0)
                        goto out_diags;
                sets_art = xcalloc(s->nbuilds, sizeof(*sets_art));
                spec_targets = xcalloc(s->nbuilds, sizeof(*spec_targets));
                spec_ntargets = xcalloc(s->nbuilds, sizeof(*spec_ntargets));
                nsets_art = s->nbuilds;
                size_t cap = 0;
                for (size_t i = 0; i < s->nbuilds; i++) {
                        const struct spec_build *b = s->builds[i];
                        if (a.nonly && !glob_any(a.only, a.nonly, b->name) &&
                            !glob_any(a.only, a.nonly, b->id))
                                continue;
                        if (!a.nonly && !b->publish && !nurl)
                                continue;
                        /* parsed when the spec was loaded; borrowed from it */
                        const struct publish_targets *pt = publish_targets_of(b);
                        spec_targets[i] = pt ? pt->v : NULL;
                        spec_ntargets[i] = pt ? pt->n : 0;
                        size_t want = 0;
                        for (size_t k = 0; k < spec_ntargets[i]; k++) {
                                bool sel = !nnames;
                                for (size_t t = 0; t < ntos; t++)
                                        if (!strstr(tos[t], "://") &&
                                            streq(tos[t], spec_targets[i][k].name)) {
                                                sel = true;
                                                to_used[t] = true;
                                        }
                                if (sel && (!nurl || nnames))
                                        want++;
                        }
                        if (!want && !nurl)
                                continue;
                        _cleanup_free_ char *dir = xasprintf("%s/%s", output_dir, b->name);
                        bool need512 = false;
                        for (size_t k = 0; k < spec_ntargets[i]; k++) {
                                const struct publisher *pb = publisher_find(spec_targets[i][k].type);
                                need512 |= pb && !pb->sha256_only;
                        }
                        strbuf_reset(&err);
                        sets_art[i].hash_progress = hash_progress;
                        sets_art[i].hash_userdata = &view;
                        if (publish_artifacts_load(dir, need512, &sets_art[i], &err) < 0) {
                                run_error(&error, false, "%s: %s", b->name, strbuf_str(&err));
                                rc = EXIT_FAILED;
                                goto out;
                        }
                        for (size_t k = 0; k < spec_ntargets[i]; k++) {
                                bool sel = !nnames && !nurl;
                                for (size_t t = 0; t < ntos; t++)
                                        sel |= !strstr(tos[t], "://") && streq(tos[t], spec_targets[i][k].name);
                                if (!sel)
                                        continue;
                                GROW(jobs, njobs, cap);
                                jobs[njobs++] = (struct job){.build = b->name, .target = spec_targets[i][k],
                                                             .set = &sets_art[i]};
                        }
                        for (size_t u = 0; u < nurl; u++) {
                                GROW(jobs, njobs, cap);
                                jobs[njobs++] = (struct job){
                                        .build = b->name,
                                        .target = {.name = value_map_get(url_vals[u], "name")->str,
                                                   .type = "s3", .settings = url_vals[u]},
                                        .set = &sets_art[i],
                                };
                        }
                }
                for (size_t t = 0; t < ntos; t++)
                        if (!to_used[t]) {
                                run_error(&error, true, "--to '%s': no selected build has a publish: "
                                          "target of that name", tos[t]);
                                goto out;
                        }
                if (!njobs) {
                        run_error(&error, false, "nothing to publish: no selected build has a "
                                  "publish: section (or give --to s3://BUCKET/KEY)");
                        rc = EXIT_FAILED;
                        goto out;
                }
        }

        /* Publish, one line per target and artifact. */
        size_t cap_out = 0;
        for (size_t j = 0; j < njobs; j++) {
                const struct job *jb = &jobs[j];
                size_t n = jb->all ? jb->set->n : 1;
                for (size_t k = 0; k < n; k++) {
                        const struct publish_artifact *art =
                                jb->all ? &jb->set->v[k]
                                        : publish_pick_artifact(&jb->target, jb->set->v, jb->set->n);
                        GROW(outs, nouts, cap_out);
                        struct out *o = &outs[nouts++];
                        o->build = xstrdup_null(jb->build);
                        _cleanup_free_ char *label = xasprintf("%s %s", jb->target.name,
                                                               art ? art->file_name : "");
                        progress_start(&view, "uploading", label);
                        if (publish_one(&jb->target, art, &ctx, &o->o) < 0)
                                failed++;
                        progress_clear(&view);
                        progress_start(&view, NULL, NULL);
                        if (!a.json)
                                print_line(o, &view);
                }
        }
        rc = failed ? EXIT_FAILED : EXIT_OK;
        goto out;

out_diags:
        rc = EXIT_USAGE;
        if (!error)
                error = xstrdup("invalid spec or settings (see the diagnostics)");
out:
        if (a.json)
                print_json(outs, nouts, failed, error, &d, &view);
out_printed:
        for (size_t i = 0; i < nouts; i++) {
                free(outs[i].build);
                free(outs[i].o.target);
                free(outs[i].o.type);
                free(outs[i].o.file);
                publish_result_done(&outs[i].o.result);
        }
        free(outs);
        free(jobs);
        for (size_t i = 0; i < nsets_art; i++)
                publish_artifacts_done(&sets_art[i]);
        free(sets_art);
        if (spec_targets) {
                free(spec_targets);
                free(spec_ntargets);
        }
        for (size_t i = 0; set_vals && i < nsets; i++)
                value_free(set_vals[i]);
        free(set_vals);
        for (size_t i = 0; i < nurl; i++)
                value_free(url_vals[i]);
        free(url_vals);
        free(to_used);
        secrets_unref(view.secrets);
        spec_free(s);
        diag_list_done(&d);
        source_free(cmdline);
        free(files);
        free(tos);
        free(sets);
        free(a.vars);
        free(a.var_files);
        for (size_t i = 0; i < a.nonly; i++)
                free(a.only[i]);
        free(a.only);
        strbuf_free(&err);
        free(error);
        value_free(uploads_val);
        return rc;
}
