/* SPDX-License-Identifier: Apache-2.0 */
/* kiln publish: send built images (or bare files) to the targets of their
 * publish: sections or to targets named on the command line. The verb
 * parses flags, asks publish/run.c for a plan and runs it, and prints
 * progress, one line per target and artifact, or one JSON document. */
#include "cli/cli.h"

#include "base/clock.h"
#include "base/json.h"
#include "base/secrets.h"
#include "publish/publish.h"
#include "spec/schema.h"
#include "spec/yaml.h"

#include <stdarg.h>
#include <pthread.h>
#include <time.h>

static int publish_run(struct cli *cli, int argc, char **argv);

const struct verb verb_publish = {
        .name = "publish",
        .summary = "Upload built images to S3-compatible storage, Google Cloud Storage or OpenStack Glance",
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
                "                      \"TYPE #N\"); or s3://BUCKET/KEY (S3) or gs://BUCKET/OBJECT\n"
                "                      (Google Cloud Storage) for a target given here (KEY\n"
                "                      ending in / or empty: the file name is appended).\n"
                "                      Repeatable\n"
                "  --set KEY=VALUE     a setting of the s3:// and gs:// targets given with --to,\n"
                "                      e.g.\n"
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
                "the OS_* variables of an OpenStack RC file. GCS reads the target's key_file:\n"
                "(a service-account key), else GOOGLE_OAUTH_ACCESS_TOKEN, else\n"
                "GOOGLE_APPLICATION_CREDENTIALS; the metadata server only with auth: metadata\n"
                "(at GCE_METADATA_HOST). See docs/publish.md.\n"
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
        char *label_owned;          /* the label of the upload in progress */
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

static void print_line(const struct publish_outcome *o, struct view *v) {
        const struct publish_result *res = &o->result;
        char bytes[32];
        format_bytes(res->bytes_sent, bytes, sizeof(bytes));
        double secs = res->elapsed_ms / 1000.0;
        printf("%-17s %s%s%s  %s", publish_status_name(res->status), o->build ? o->build : "",
               o->build ? " -> " : "", o->target, o->file ? o->file : "-");
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

/* The URL schemes of targets given with --to: the publisher type and the
 * setting the path after the bucket goes to. */
static const struct {
        const char *scheme, *type, *key;
} url_schemes[] = {
        {"s3://", "s3", "key"},
        {"gs://", "gcs", "object"},
};

/* Builds the value of an s3://BUCKET/KEY (or gs://BUCKET/OBJECT) target
 * with --set settings. */
static int url_target(const char *url, struct value *const *sets, size_t nsets, struct source *src,
                      struct value **ret) {
        const char *rest = NULL;
        size_t k = 0;
        for (; k < ARRAY_SIZE(url_schemes) && !rest; k++)
                rest = startswith(url, url_schemes[k].scheme);
        if (!rest)
                return -EINVAL;
        k--;
        const char *slash = strchr(rest, '/');
        size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
        if (!blen)
                return -EINVAL;
        struct mark m = {.src = src, .line = 0, .col = 0};
        struct value *map = value_new(V_MAP, &m);
        value_map_set(map, "type", value_new_string(url_schemes[k].type, &m));
        value_map_set(map, "name", value_new_string(url, &m));
        value_map_set(map, "bucket", value_new_stringn(rest, blen, &m));
        if (slash && slash[1])
                value_map_set(map, url_schemes[k].key, value_new_string(slash + 1, &m));
        for (size_t i = 0; i < nsets; i++) {
                /* sets[i] is a one-entry map parsed from KEY: VALUE */
                value_map_set(map, sets[i]->keys[0]->str, value_clone(sets[i]->items[0]));
        }
        *ret = map;
        return 0;
}

/* Every JSON document this verb prints opens the same way: schema_version
 * and the list (results, uploads) that follows. */
static void json_doc_begin(struct json_writer *w, struct strbuf *sb, const char *list) {
        json_init(w, sb, true);
        json_begin_object(w);
        json_key(w, "schema_version");
        json_int(w, 1);
        json_key(w, list);
        json_begin_array(w);
}

static void json_outcome(struct json_writer *w, const struct publish_outcome *o, struct view *v) {
        const struct publish_result *res = &o->result;
        json_begin_object(w);
        json_key(w, "build");
        json_string(w, o->build);
        json_key(w, "target");
        json_string(w, o->target);
        json_key(w, "type");
        json_string(w, o->type);
        json_key(w, "file");
        json_string(w, o->file);
        json_key(w, "status");
        json_string(w, publish_status_name(res->status));
        json_key(w, "location");
        json_string(w, res->location);
        json_key(w, "bytes_sent");
        json_int(w, (int64_t)res->bytes_sent);
        json_key(w, "bytes_retried");
        json_int(w, (int64_t)res->bytes_retried);
        json_key(w, "elapsed_ms");
        json_int(w, (int64_t)res->elapsed_ms);
        json_key(w, "error");
        _cleanup_free_ char *e = res->error ? secrets_mask(v->secrets, res->error) : NULL;
        json_string(w, e);
        json_key(w, "note");
        json_string(w, res->note);
        json_end_object(w);
}

/* The one JSON document of a run: every result so far, the run's error
 * (NULL when none) and the spec's diagnostics (when any). Printed on every
 * path out of publish_run, so --json always gives a document. */
static void print_json(const struct publish_outcome *outs, size_t nouts, size_t failed,
                       const char *error, struct diag_list *d, struct view *v) {
        _cleanup_strbuf_ struct strbuf js = STRBUF_INIT;
        struct json_writer w;
        json_doc_begin(&w, &js, "results");
        for (size_t i = 0; i < nouts; i++)
                json_outcome(&w, &outs[i], v);
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

/* One upload of --list-uploads / --abort-uploads, as a line or JSON. */
static void print_upload(const struct publish_upload_outcome *x, bool aborting, bool json,
                         struct json_writer *w, struct view *v) {
        const struct publish_upload *u = x->upload;
        const char *status = !aborting ? NULL : x->failed ? "failed" : "aborted";
        _cleanup_free_ char *masked = x->error ? secrets_mask(v->secrets, x->error) : NULL;
        if (json) {
                json_begin_object(w);
                json_key(w, "key");
                json_string(w, u->key);
                json_key(w, "upload_id");
                json_string(w, u->upload_id);
                json_key(w, "initiated");
                json_string(w, u->initiated);
                if (aborting) {
                        json_key(w, "status");
                        json_string(w, status);
                        json_key(w, "error");
                        json_string(w, masked);
                }
                json_end_object(w);
                return;
        }
        if (aborting)
                printf("%-8s ", status);
        print_untrusted(u->key);
        printf("  ");
        print_untrusted(u->upload_id);
        printf("  ");
        print_untrusted(u->initiated ? u->initiated : "-");
        if (masked) {
                printf(": ");
                print_untrusted(masked);
        }
        printf("\n");
}

/* --list-uploads / --abort-uploads: the unfinished uploads under a
 * target's key prefix, optionally only those older than older_s, listed
 * or aborted. Returns the exit code. */
static int uploads_run(const struct publish_target *t, bool abort_them, int64_t older_s, bool json,
                       const struct publish_ctx *ctx, struct view *v, char **error) {
        struct publish_upload *u = NULL;
        struct publish_upload_outcome *o = NULL;
        size_t nu = 0, n = 0;
        _cleanup_free_ char *lerr = NULL;
        int r = publish_uploads_clean(t, abort_them, older_s, (int64_t)time(NULL), ctx, &u, &nu, &o,
                                      &n, &lerr);
        if (r == -EOPNOTSUPP) {
                run_error(error, true, "%s targets have no unfinished uploads", t->type);
                return EXIT_USAGE;
        }
        if (r < 0) {
                _cleanup_free_ char *m = secrets_mask(v->secrets, lerr ? lerr : "failed");
                run_error(error, false, "%s: %s", t->name, m);
                return EXIT_FAILED;
        }
        size_t failed = 0;
        _cleanup_strbuf_ struct strbuf js = STRBUF_INIT;
        struct json_writer w;
        json_doc_begin(&w, &js, "uploads");
        for (size_t i = 0; i < n; i++) {
                failed += o[i].failed;
                print_upload(&o[i], abort_them, json, &w, v);
                free(o[i].error);
        }
        json_end_array(&w);
        if (abort_them) {
                json_key(&w, "aborted");
                json_int(&w, (int64_t)(n - failed));
        }
        json_key(&w, "failed");
        json_int(&w, (int64_t)failed);
        json_key(&w, "error");
        json_null(&w);
        json_end_object(&w);
        if (json)
                printf("%s\n", strbuf_str(&js));
        else if (abort_them)
                fprintf(stderr, "kiln publish: %zu aborted, %zu failed\n", n - failed, failed);
        else
                fprintf(stderr, "kiln publish: %zu unfinished upload%s\n", n, n == 1 ? "" : "s");
        fflush(stdout);
        free(o);
        publish_uploads_free(u, nu);
        return failed ? EXIT_FAILED : EXIT_OK;
}

static bool is_spec_path(const char *p) {
        return endswith(p, ".yaml") || endswith(p, ".yml") || endswith(p, ".json");
}

/* ---- the verb: flags, then the engine (publish/run.c), then printing ---- */

/* How a step of the verb ends the run. */
enum end {
        GO_ON,       /* next step */
        END,         /* done: rc is set; with --json, print the document */
        END_DIAGS,   /* invalid spec or settings: exit 2 with the diagnostics */
        END_PRINTED, /* done, and already printed (help, uploads) */
};

/* One run of the verb: the flags and everything made from them. */
struct run {
        struct cli *cli;
        struct spec_args a;
        const char **files, **tos, **sets, **names;
        size_t nfiles, ntos, nsets, nnames;
        const char *output_dir;
        unsigned parallel;
        const char *uploads_url;
        bool abort_uploads;
        int64_t older_than;
        int rc;
        char *error;            /* what ended the run early (for --json) */
        struct diag_list d;
        struct spec *s;
        struct source *cmdline;
        struct value **set_vals, **url_vals, *uploads_val;
        size_t nurl;
        struct publish_plan plan;
        struct publish_outcome *outs;
        size_t nouts, failed;
        struct view view;
};

static void add_only(struct run *r, const char *arg) {
        for (const char *q = arg;;) {
                const char *c = strchrnul(q, ',');
                if (c > q) {
                        r->a.only = xreallocarray(r->a.only, r->a.nonly + 1, sizeof(char *));
                        r->a.only[r->a.nonly++] = xstrndup(q, c - q);
                }
                if (!*c)
                        break;
                q = c + 1;
        }
}

static void push(const char ***v, size_t *n, const char *arg) {
        *v = xreallocarray(*v, *n + 1, sizeof(**v));
        (*v)[(*n)++] = arg;
}

/* One option with its argument. */
static enum end take_option(struct run *r, int id, const char *arg) {
        switch (id) {
        case P_HELP:
                cli_print_verb_help(&verb_publish, stdout);
                r->rc = EXIT_OK;
                return END_PRINTED; /* the help, not a JSON document */
        case P_ONLY:
                add_only(r, arg);
                break;
        case P_TO:
                push(&r->tos, &r->ntos, arg);
                break;
        case P_SET:
                if (!strchr(arg, '=') || arg[0] == '=') {
                        run_error(&r->error, true, "--set needs KEY=VALUE, not '%s'", arg);
                        return END;
                }
                push(&r->sets, &r->nsets, arg);
                break;
        case P_OUTPUT_DIR:
                r->output_dir = arg;
                break;
        case P_PARALLEL: {
                char *end;
                unsigned long n = strtoul(arg, &end, 10);
                if (*end || n < 1 || n > 32) {
                        run_error(&r->error, true, "--parallel needs a number from 1 to 32, not '%s'", arg);
                        return END;
                }
                r->parallel = n;
                break;
        }
        case P_VAR:
                r->a.vars = xreallocarray(r->a.vars, r->a.nvars + 1, sizeof(char *));
                r->a.vars[r->a.nvars++] = arg;
                break;
        case P_VAR_FILE:
                r->a.var_files = xreallocarray(r->a.var_files, r->a.nvar_files + 1, sizeof(char *));
                r->a.var_files[r->a.nvar_files++] = arg;
                break;
        case P_JSON:
                r->a.json = true;
                break;
        case P_LIST_UPLOADS:
        case P_ABORT_UPLOADS:
                if (r->uploads_url) {
                        run_error(&r->error, true, "one --list-uploads or --abort-uploads at a time");
                        return END;
                }
                r->uploads_url = arg;
                r->abort_uploads = id == P_ABORT_UPLOADS;
                break;
        case P_OLDER_THAN: {
                uint64_t secs;
                if (parse_duration(arg, &secs) < 0 || secs > INT64_MAX / 2) {
                        run_error(&r->error, true, "--older-than needs a duration such as 12h or 7d, not '%s'",
                                  arg);
                        return END;
                }
                r->older_than = (int64_t)secs;
                break;
        }
        default:
                run_error(&r->error, true, "option not supported here");
                return END;
        }
        return GO_ON;
}

static enum end parse_args(struct run *r, int argc, char **argv) {
        struct cli_parser p = {.opts = publish_opts, .argc = argc, .argv = argv, .i = 1,
                               .verb = "publish"};
        /* --json is known before any usage error, so that even those print
         * a JSON document. */
        for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
                if (streq(argv[i], "--json") || streq(argv[i], "-json"))
                        r->a.json = true;
        const char *arg;
        int id;
        while ((id = cli_next(&p, &arg)) != -1) {
                if (id == -2) {
                        if (!r->error)
                                r->error = xstrdup("invalid command line (see kiln help publish)");
                        return END;
                }
                if (id != 0) {
                        enum end e = take_option(r, id, arg);
                        if (e != GO_ON)
                                return e;
                } else if (!is_spec_path(arg)) {
                        push(&r->files, &r->nfiles, arg);
                } else if (r->a.path) {
                        run_error(&r->error, true, "one spec at a time (got '%s' and '%s')", r->a.path, arg);
                        return END;
                } else
                        r->a.path = arg;
        }
        return GO_ON;
}

/* --set KEY=VALUE: the value typed as YAML would type it. */
static enum end parse_sets(struct run *r) {
        r->set_vals = xcalloc(r->nsets + 1, sizeof(*r->set_vals));
        for (size_t i = 0; i < r->nsets; i++) {
                const char *eq = strchr(r->sets[i], '=');
                _cleanup_free_ char *text = xasprintf("%.*s: %s\n", (int)(eq - r->sets[i]), r->sets[i], eq + 1);
                struct source *src = source_new("--set", text, strlen(text));
                diag_adopt_source(&r->d, src);
                if (yaml_load(src, &r->d, &r->set_vals[i]) < 0 || !r->set_vals[i] ||
                    r->set_vals[i]->kind != V_MAP || r->set_vals[i]->n != 1) {
                        if (!r->a.json)
                                cli_print_diags(r->cli, &r->d);
                        run_error(&r->error, true, "--set '%s' is not KEY=VALUE", r->sets[i]);
                        return END;
                }
        }
        return GO_ON;
}

/* A target given on the command line, checked like a spec's. */
static enum end target_value(struct run *r, const char *url, const char *flag, const char *expected,
                             struct value **ret) {
        if (url_target(url, r->set_vals, r->nsets, r->cmdline, ret) < 0) {
                run_error(&r->error, true, "%s'%s': expected %s", flag, url, expected);
                return END;
        }
        if (publish_validate(*ret, &r->d) < 0) {
                if (!r->a.json)
                        cli_print_diags(r->cli, &r->d);
                return END_DIAGS;
        }
        return GO_ON;
}

/* Checks how the flags combine; makes the targets given as URLs. */
static enum end make_targets(struct run *r) {
        enum end e;
        if (r->older_than >= 0 && !r->uploads_url) {
                run_error(&r->error, true, "--older-than applies to --list-uploads and --abort-uploads");
                return END;
        }
        if (r->uploads_url && (r->ntos || r->nfiles || r->a.path || r->a.nonly)) {
                run_error(&r->error, true, "--%s-uploads takes no spec, files, --only or --to",
                          r->abort_uploads ? "abort" : "list");
                return END;
        }
        if (r->uploads_url &&
            (e = target_value(r, r->uploads_url, "", "s3://BUCKET[/PREFIX]", &r->uploads_val)) != GO_ON)
                return e;
        /* --to: s3:// URLs become targets; anything else names spec targets. */
        r->url_vals = xcalloc(r->ntos + 1, sizeof(*r->url_vals));
        for (size_t i = 0; i < r->ntos; i++) {
                if (!strstr(r->tos[i], "://")) {
                        push(&r->names, &r->nnames, r->tos[i]);
                        continue;
                }
                e = target_value(r, r->tos[i], "--to ", "s3://BUCKET/KEY or gs://BUCKET/OBJECT",
                                 &r->url_vals[r->nurl]);
                if (e == END_DIAGS) {
                        value_free(r->url_vals[r->nurl]);
                        r->url_vals[r->nurl] = NULL;
                }
                if (e != GO_ON)
                        return e;
                r->nurl++;
        }
        if (r->nsets && !r->nurl && !r->uploads_url) {
                run_error(&r->error, true, "--set applies to s3:// and gs:// targets given with --to");
                return END;
        }
        if (r->nfiles && r->a.path) {
                run_error(&r->error, true, "publish a spec's builds or files, not both");
                return END;
        }
        if (r->nfiles && (!r->nurl || r->nnames)) {
                run_error(&r->error, true,
                          "files need their targets as --to s3://BUCKET/KEY or gs://BUCKET/OBJECT");
                return END;
        }
        return GO_ON;
}

/* Loads and checks the spec (every build: parents must be there for
 * from:; --only selects what is published, in the plan). */
static enum end load_spec(struct run *r) {
        if (!r->a.path)
                r->a.path = "kiln.yaml";
        struct spec_args la = r->a;
        la.only = NULL;
        la.nonly = 0;
        /* publish: sections are validated and parsed as the spec loads. */
        if (cli_load_spec(r->cli, &la, &r->d, &r->s) < 0)
                return END_DIAGS;
        return GO_ON;
}

/* publish_run_observer: progress while a target gets an artifact, then
 * its line. */
static void job_start(void *userdata, const struct publish_job *j, const struct publish_artifact *a) {
        struct run *r = userdata;
        free(r->view.label_owned);
        r->view.label_owned = xasprintf("%s %s", j->target.name, a ? a->file_name : "");
        progress_start(&r->view, "uploading", r->view.label_owned);
}

static void job_done(void *userdata, const struct publish_job *j, const struct publish_outcome *o) {
        struct run *r = userdata;
        (void)j;
        progress_clear(&r->view);
        progress_start(&r->view, NULL, NULL);
        if (!r->a.json)
                print_line(o, &r->view);
}

/* The plan (publish/run.c), then the run, one line per target and artifact. */
static enum end publish_all(struct run *r, const struct publish_ctx *ctx) {
        if (!r->nfiles && load_spec(r) != GO_ON)
                return END_DIAGS;
        struct publish_request req = {
                .spec = r->nfiles ? NULL : r->s,
                .output_dir = r->output_dir,
                .only = r->a.only, .nonly = r->a.nonly,
                .names = r->names, .nnames = r->nnames,
                .urls = r->url_vals, .nurls = r->nurl,
                .files = r->files, .nfiles = r->nfiles,
                .hash_progress = hash_progress, .hash_userdata = &r->view,
        };
        _cleanup_strbuf_ struct strbuf err = STRBUF_INIT;
        int k = publish_plan_make(&req, &r->plan, &err);
        if (k < 0 && r->plan.unmatched_name) {
                run_error(&r->error, true, "--to '%s': no selected build has a publish: target of that name",
                          r->plan.unmatched_name);
                return END;
        }
        r->rc = EXIT_FAILED;
        if (k == -ENODATA)
                run_error(&r->error, false, "nothing to publish: no selected build has a publish: "
                          "section (or give --to s3://BUCKET/KEY or gs://...)");
        else if (k < 0)
                run_error(&r->error, false, "%s", strbuf_str(&err));
        if (k < 0)
                return END;
        struct publish_run_observer obs = {.start = job_start, .done = job_done, .userdata = r};
        r->failed = publish_plan_run(&r->plan, ctx, &obs, &r->outs, &r->nouts);
        r->rc = r->failed ? EXIT_FAILED : EXIT_OK;
        return END;
}

static enum end run_steps(struct run *r, int argc, char **argv) {
        enum end e;
        if ((e = parse_args(r, argc, argv)) != GO_ON || (e = parse_sets(r)) != GO_ON ||
            (e = make_targets(r)) != GO_ON)
                return e;
        struct publish_ctx ctx = {
                .environ = environ,
                .add_secret = add_secret,
                .progress = progress,
                .userdata = &r->view,
                .parallel = r->parallel,
                .verbose = r->cli->verbose > 0,
                .log_fd = r->cli->verbose > 0 ? STDERR_FILENO : -1,
        };
        if (r->uploads_url) {
                const struct publish_target t = {
                        .name = r->uploads_url,
                        .type = value_map_get(r->uploads_val, "type")->str, /* set by url_target */
                        .settings = r->uploads_val};
                r->rc = uploads_run(&t, r->abort_uploads, r->older_than, r->a.json, &ctx, &r->view,
                                    &r->error);
                return r->rc == EXIT_OK || !r->error ? END_PRINTED : END;
        }
        return publish_all(r, &ctx);
}

static void run_done(struct run *r) {
        publish_outcomes_free(r->outs, r->nouts);
        publish_plan_done(&r->plan);
        for (size_t i = 0; r->set_vals && i < r->nsets; i++)
                value_free(r->set_vals[i]);
        free(r->set_vals);
        for (size_t i = 0; i < r->nurl; i++)
                value_free(r->url_vals[i]);
        free(r->url_vals);
        value_free(r->uploads_val);
        secrets_unref(r->view.secrets);
        free(r->view.label_owned);
        spec_free(r->s);
        diag_list_done(&r->d);
        source_free(r->cmdline);
        free(r->files);
        free(r->tos);
        free(r->sets);
        free(r->names);
        free(r->a.vars);
        free(r->a.var_files);
        for (size_t i = 0; i < r->a.nonly; i++)
                free(r->a.only[i]);
        free(r->a.only);
        free(r->error);
}

static int publish_run(struct cli *cli, int argc, char **argv) {
        struct run r = {
                .cli = cli,
                .output_dir = "output",
                .older_than = -1,
                .rc = EXIT_USAGE,
                .cmdline = source_new("command line", NULL, 0),
                .view = {.tty = isatty(STDERR_FILENO), .lock = PTHREAD_MUTEX_INITIALIZER,
                         .secrets = secrets_new(SECRETS_MIN_LEN)},
        };
        enum end e = run_steps(&r, argc, argv);
        if (e == END_DIAGS) {
                r.rc = EXIT_USAGE;
                if (!r.error)
                        r.error = xstrdup("invalid spec or settings (see the diagnostics)");
        }
        if (e != END_PRINTED && r.a.json)
                print_json(r.outs, r.nouts, r.failed, r.error, &r.d, &r.view);
        int rc = r.rc;
        run_done(&r);
        return rc;
}
