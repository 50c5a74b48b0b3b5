/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The build engine (see build.h for the model).
 *
 * Threads: with parallel > 1, worker threads take builds whose parent is
 * done; a build whose parent failed is skipped. Two builds that need the
 * same layer (a shared parent step, or identical steps) serialise on the
 * cache's per-key lock and the second one finds it done. Observer calls
 * are serialised by one mutex so the CLI can draw without locking.
 *
 * Cache keys: SHA-256 over a canonical JSON document of the step's inputs
 * (sensitive values in clear — the document is hashed, never stored). The
 * stored metadata keeps the same inputs with secrets redacted plus a hash
 * of the whole parameters, which is what `--explain` compares.
 */
#include "provision/build.h"

#include "base/clock.h"
#include "base/hash.h"
#include "base/json.h"
#include "os/fs.h"
#include "base/secrets.h"
#include "provision/pkgcache.h"
#include "provision/refresh.h"
#include "provision/steps.h"
#include "spec/yaml.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

/* Part of every cache key. Bumped when a step kind does something different
 * with the same parameters (v2: debian sources leave out documentation by
 * default), so no tree made by the old behaviour is reused. */
#define KEY_FORMAT "kiln-layer-v2"
#define INPUT_MAX_ENTRIES 100000
#define LOG_LINE_MAX (64u << 10)

/* ---- hashing host inputs ---------------------------------------------------------------- */

/* Hashes a file or a directory tree: names (sorted), types, permission
 * bits, symlink targets and contents — what a step could observe. */
static int hash_tree_rec(struct digest *h, const char *path, const char *rel, unsigned *count) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return -errno;
        if (++*count > INPUT_MAX_ENTRIES)
                return -E2BIG;
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "\n%o ", (unsigned)(st.st_mode & (S_IFMT | 07777)));
        digest_update(h, hdr, strlen(hdr));
        digest_update(h, rel, strlen(rel) + 1);
        if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t n = readlink(path, target, sizeof(target));
                if (n < 0)
                        return -errno;
                digest_update(h, target, (size_t)n);
        } else if (S_ISREG(st.st_mode)) {
                char hex[SHA256_HEX_LEN + 1];
                int r = hash_sha256_file(path, hex);
                if (r < 0)
                        return r;
                digest_update(h, hex, SHA256_HEX_LEN);
        } else if (S_ISDIR(st.st_mode)) {
                char **names = NULL;
                int r = fs_list(AT_FDCWD, path, &names, NULL);
                if (r < 0)
                        return r;
                for (char **nm = names; r == 0 && *nm; nm++) {
                        _cleanup_free_ char *cp = xasprintf("%s/%s", path, *nm);
                        _cleanup_free_ char *cr = xasprintf("%s/%s", rel, *nm);
                        r = hash_tree_rec(h, cp, cr, count);
                }
                fs_names_free(names);
                return r;
        }
        return 0;
}

static int hash_tree(const char *path, char out[SHA256_HEX_LEN + 1]) {
        struct digest h;
        int r = digest_init(&h, DIGEST_SHA256);
        if (r < 0)
                return r;
        unsigned count = 0;
        r = hash_tree_rec(&h, path, ".", &count);
        if (r < 0) {
                digest_free(&h);
                return r;
        }
        return digest_final(&h, out);
}

/* ---- keys and metadata ------------------------------------------------------------------- */

struct stage {
        unsigned index;              /* 0 = source */
        const char *kind;
        char *label;
        const struct spec_step *step;
        char key[CACHE_KEY_LEN + 1];
        char *meta;                  /* JSON stored with the entry (secrets redacted) */
        char params_hash[SHA256_HEX_LEN + 1];
        struct value *files;         /* V_MAP path -> hash */
        int input_error;             /* hashing an input failed */
        char *input_error_path;
        /* refresh: (refresh.h) of a step that reads package lists */
        bool refreshes;              /* a policy other than never applies */
        enum refresh_policy policy;
        char *refresh;               /* the stamp in the key, e.g. "daily 2026-12-03" */
        char *refresh_note;          /* release fetched offline: the fallback taken */
        char *refresh_error;         /* no stamp could be made: the step fails */
};

static void stage_done(struct stage *st) {
        free(st->label);
        free(st->meta);
        value_free(st->files);
        free(st->input_error_path);
        free(st->refresh);
        free(st->refresh_note);
        free(st->refresh_error);
}

/* Hashes the host files a stage reads. They are recorded by their path
 * relative to the spec's directory, so that a checkout in another place
 * has the same keys. */
static void hash_inputs(struct stage *stg, const struct spec *s, char **paths, size_t n) {
        stg->files = value_new(V_MAP, NULL);
        size_t dl = strlen(s->dir);
        for (size_t i = 0; i < n; i++) {
                char hex[SHA256_HEX_LEN + 1];
                int r = hash_tree(paths[i], hex);
                if (r < 0 && !stg->input_error) {
                        stg->input_error = r;
                        stg->input_error_path = xstrdup(paths[i]);
                }
                const char *name = paths[i];
                if (strncmp(name, s->dir, dl) == 0 && name[dl] == '/')
                        name += dl + 1;
                else if (streq(name, s->dir))
                        name = ".";
                value_map_set(stg->files, name, value_new_string(r < 0 ? "missing" : hex, NULL));
                free(paths[i]);
        }
        free(paths);
}

/* Computes key and metadata for a stage: inputs are the parent key, arch,
 * kind, parameters and host files. The metadata is stored: no secret in it. */
static void stage_key(struct stage *stg, const struct spec_build *b, const char *parent,
                      const struct value *params, struct secrets *secrets) {
        struct strbuf full = STRBUF_INIT, pj = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &pj, false);
        value_write_json(params, &w, false);
        hash_sha256_hex(pj.buf ? pj.buf : "", pj.len, stg->params_hash);

        json_init(&w, &full, false);
        json_begin_object(&w);
        json_key(&w, "format");
        json_string(&w, KEY_FORMAT);
        json_key(&w, "parent");
        json_string(&w, parent);
        json_key(&w, "arch");
        json_string(&w, b->arch);
        json_key(&w, "kind");
        json_string(&w, stg->kind);
        json_key(&w, "params");
        json_raw(&w, pj.buf ? pj.buf : "null");
        json_key(&w, "files");
        value_write_json(stg->files, &w, false);
        if (stg->refresh) { /* absent for never: the keys of before refresh: existed */
                json_key(&w, "refresh");
                json_string(&w, stg->refresh);
        }
        json_end_object(&w);
        hash_sha256_hex(full.buf, full.len, stg->key);
        strbuf_free(&full);
        strbuf_free(&pj);

        struct strbuf meta = STRBUF_INIT;
        json_init(&w, &meta, true);
        json_begin_object(&w);
        _cleanup_free_ char *label_raw = xasprintf("%s %u/%s %s", b->id, stg->index, stg->kind, stg->label);
        _cleanup_free_ char *label = secrets_mask(secrets, label_raw);
        json_key(&w, "label");
        json_string(&w, label);
        json_key(&w, "build");
        _cleanup_free_ char *bname = secrets_mask(secrets, b->name);
        json_string(&w, bname);
        json_key(&w, "step");
        json_int(&w, stg->index);
        json_key(&w, "kind");
        json_string(&w, stg->kind);
        json_key(&w, "parent");
        json_string(&w, parent);
        json_key(&w, "arch");
        json_string(&w, b->arch);
        json_key(&w, "params");
        value_to_json(params, &w);
        json_key(&w, "params_hash");
        json_string(&w, stg->params_hash);
        json_key(&w, "files");
        value_to_json(stg->files, &w);
        if (stg->refresh) {
                json_key(&w, "refresh");
                json_string(&w, stg->refresh);
        }
        json_end_object(&w);
        stg->meta = strbuf_detach(&meta);
}

/* ---- refresh ------------------------------------------------------------------------------- */

static void utc_day(time_t t, char out[16]) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 16, "%Y-%m-%d", &tm);
}

/* ---- explain ------------------------------------------------------------------------------- */

static bool value_equal(const struct value *a, const struct value *b) {
        if (!a || !b)
                return a == b;
        if (value_is_scalar(a) && value_is_scalar(b))
                return a->kind == b->kind && streq_null(a->str, b->str);
        if (a->kind != b->kind || a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++) {
                if (a->keys && !streq(a->keys[i]->str, b->keys[i]->str))
                        return false;
                if (!value_equal(a->items[i], b->items[i]))
                        return false;
        }
        return true;
}

/* The caller's metadata inside what the cache stored (it may wrap it). */
static const struct value *meta_body(const struct value *doc) {
        const struct value *inner = value_map_get(doc, "meta");
        return inner && inner->kind == V_MAP ? inner : doc;
}

static char *explain_miss(struct cache *c, const struct spec_build *b, const struct stage *stg,
                          const char *parent) {
        char prev[CACHE_KEY_LEN + 1];
        if (cache_index_get(c, b->id, stg->index, prev) < 0)
                return xstrdup("not built before");
        if (streq(prev, stg->key))
                return xstrdup("its cached layer was removed (cache prune?)");
        _cleanup_free_ char *json = NULL;
        if (cache_read_meta(c, prev, &json) < 0)
                return xstrdup("the previous layer is no longer cached");
        struct source *src = source_new("meta.json", json, strlen(json));
        struct diag_list d = {0};
        _cleanup_value_ struct value *doc = NULL;
        int r = yaml_load(src, &d, &doc);
        diag_list_done(&d);
        char *why = NULL;
        if (r < 0 || !doc) {
                why = xstrdup("the previous metadata is unreadable");
                goto out;
        }
        const struct value *m = meta_body(doc);
        const struct value *pp = value_map_get(m, "parent");
        if (!streq_null(pp && pp->kind == V_STRING ? pp->str : NULL, parent)) {
                why = xstrdup(stg->index == 0 ? "the source changed" : "the layer below changed");
                goto out;
        }
        const struct value *pk = value_map_get(m, "kind");
        if (!pk || !pk->str || !streq(pk->str, stg->kind)) {
                why = xasprintf("the step kind changed (was %s)", pk && pk->str ? pk->str : "?");
                goto out;
        }
        const struct value *ph = value_map_get(m, "params_hash");
        if (!ph || !ph->str || !streq(ph->str, stg->params_hash)) {
                /* Which parameters? Compare the redacted forms. */
                const struct value *old = value_map_get(m, "params");
                const struct value *cur = stg->step ? stg->step->params : b->source;
                _cleanup_strbuf_ struct strbuf keys = STRBUF_INIT;
                for (size_t i = 0; cur && cur->kind == V_MAP && i < cur->n; i++) {
                        const struct value *o = value_map_get(old, cur->keys[i]->str);
                        if (value_any_sensitive(cur->items[i]))
                                continue;
                        if (!value_equal(o, cur->items[i]))
                                strbuf_addf(&keys, "%s%s", keys.len ? ", " : "", cur->keys[i]->str);
                }
                for (size_t i = 0; old && old->kind == V_MAP && i < old->n; i++)
                        if (!value_map_get(cur, old->keys[i]->str))
                                strbuf_addf(&keys, "%s%s (removed)", keys.len ? ", " : "",
                                            old->keys[i]->str);
                why = keys.len ? xasprintf("parameters changed: %s", keys.buf)
                               : xstrdup("a sensitive value changed");
                goto out;
        }
        const struct value *orf = value_map_get(m, "refresh");
        if (!streq_null(orf && orf->kind == V_STRING ? orf->str : NULL, stg->refresh)) {
                char day[16] = "?";
                time_t created;
                if (cache_entry_created(c, prev, &created) == 0)
                        utc_day(created, day);
                if (!stg->refresh)
                        why = xstrdup("refresh: never, was refreshed before");
                else if (stg->policy == REFRESH_RELEASE)
                        why = xasprintf("refresh: release, the mirror's Release changed since %s, re-running", day);
                else
                        why = xasprintf("refresh: %s, cached %s, re-running", refresh_policy_name(stg->policy), day);
                goto out;
        }
        const struct value *of = value_map_get(m, "files");
        for (size_t i = 0; stg->files && i < stg->files->n; i++) {
                const struct value *o = value_map_get(of, stg->files->keys[i]->str);
                if (!o || !o->str || !streq(o->str, stg->files->items[i]->str)) {
                        why = xasprintf("file changed: %s", stg->files->keys[i]->str);
                        goto out;
                }
        }
        why = xstrdup("the inputs changed");
out:
        source_free(src);
        return why;
}

/* ---- log pump: step output -> log file, secrets masked ------------------------------------------- */

struct engine;

struct pump {
        int rfd, log_fd;
        struct engine *eng;
        const struct spec_build *build;
        pthread_t thread;
};

struct engine {
        const struct spec *spec;
        const struct build_options *o;
        /* The spec's sensitive values, masked in step output and in the
         * names and labels the engine shows and records (a step's name:
         * may interpolate a secret). */
        struct secrets *secrets;
        pthread_mutex_t lock;        /* scheduler state and observer calls */
        pthread_cond_t cond;
        struct build_result *results;
        int *state;                  /* 0 pending, 1 running, 2 ok, 3 failed/skipped */
        size_t n;
        const struct spec_build **builds;
};

/* The log file gets the masked stream as it comes (a secret split across
 * reads, or inside a line of any length, is masked all the same: the
 * masker holds back only a tail that may begin a secret); the observer
 * gets it in lines of at most LOG_LINE_MAX bytes. */
static void pump_emit(struct pump *p, struct strbuf *line, const struct strbuf *masked, bool end) {
        struct engine *e = p->eng;
        if (masked->len && write_all(p->log_fd, masked->buf, masked->len) < 0) {
                /* a full disk shows up when the step result is stored */
        }
        const struct build_observer *obs = e->o->observer;
        if (!e->o->debug || !obs || !obs->output)
                return;
        for (size_t i = 0; i < masked->len; i++) {
                strbuf_addc(line, masked->buf[i]);
                if (masked->buf[i] == '\n' || line->len >= LOG_LINE_MAX) {
                        pthread_mutex_lock(&e->lock);
                        obs->output(obs->userdata, p->build, line->buf, line->len);
                        pthread_mutex_unlock(&e->lock);
                        strbuf_reset(line);
                }
        }
        if (end && line->len) {
                pthread_mutex_lock(&e->lock);
                obs->output(obs->userdata, p->build, line->buf, line->len);
                pthread_mutex_unlock(&e->lock);
                strbuf_reset(line);
        }
}

static void *pump_main(void *arg) {
        struct pump *p = arg;
        struct strbuf line = STRBUF_INIT, masked = STRBUF_INIT;
        struct secrets_stream m;
        secrets_stream_init(&m, p->eng->secrets);
        char buf[8192];
        for (;;) {
                ssize_t n = read(p->rfd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                secrets_stream_feed(&m, &masked, buf, (size_t)n);
                pump_emit(p, &line, &masked, false);
                strbuf_reset(&masked);
        }
        secrets_stream_flush(&m, &masked);
        pump_emit(p, &line, &masked, true);
        explicit_bzero(buf, sizeof(buf));
        secrets_stream_done(&m);
        strbuf_free(&masked);
        strbuf_free(&line);
        close(p->rfd);
        return NULL;
}

/* Starts a pump; returns the fd the step writes to. */
static int pump_start(struct pump *p, struct engine *e, const struct spec_build *b, int log_fd) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        *p = (struct pump){.rfd = fds[0], .log_fd = log_fd, .eng = e, .build = b};
        int r = pthread_create(&p->thread, NULL, pump_main, p);
        if (r != 0) {
                close(fds[0]);
                close(fds[1]);
                return -r;
        }
        return fds[1];
}

static void pump_stop(struct pump *p, int wfd) {
        close(wfd);
        pthread_join(p->thread, NULL);
}

/* ---- one build ----------------------------------------------------------------------------- */

static void emit(struct engine *e, const struct step_event *ev) {
        const struct build_observer *obs = e->o->observer;
        if (!obs || !obs->step)
                return;
        pthread_mutex_lock(&e->lock);
        obs->step(obs->userdata, ev);
        pthread_mutex_unlock(&e->lock);
}

char *build_dir(const struct build_options *o, const struct spec_build *b) {
        return xasprintf("%s/%s", o->work_dir, b->id);
}

static bool exit_ok(const struct spec_step *st, const struct sandbox_result *res) {
        if (res->timed_out || res->signal)
                return false;
        const struct value *codes = st ? value_map_get(st->params, "valid_exit_codes") : NULL;
        if (!codes || codes->kind != V_LIST)
                return res->exit_code == 0;
        for (size_t i = 0; i < codes->n; i++)
                if (codes->items[i]->kind == V_NUMBER && (int)codes->items[i]->num == res->exit_code)
                        return true;
        return false;
}

static unsigned step_retries(const struct spec_step *st) {
        const struct value *r = st ? value_map_get(st->params, "retries") : NULL;
        return r && r->kind == V_NUMBER && r->num > 0 ? (unsigned)r->num : 0;
}

/* Empties a directory without removing it. */
static int clear_dir(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        char **names = NULL;
        int r = fs_list(fd, NULL, &names, NULL);
        for (char **nm = names; names && *nm; nm++) {
                int k = rm_rf_at(fd, *nm);
                if (k < 0 && r == 0)
                        r = k;
        }
        fs_names_free(names);
        return r;
}

static void layer_dirs(struct cache *c, char **keys, size_t nkeys, char ***ret) {
        /* topmost first */
        char **dirs = xcalloc(nkeys + 1, sizeof(char *));
        for (size_t i = 0; i < nkeys; i++)
                dirs[i] = cache_entry_tree(c, keys[nkeys - 1 - i]);
        *ret = dirs;
}

static void free_strv(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* The stamp a release policy used last time for this step (from the
 * index and the entry's metadata), for the offline fallback; owned or NULL. */
static char *previous_release_stamp(struct cache *c, const char *build, unsigned step, time_t *ret_when) {
        char prev[CACHE_KEY_LEN + 1];
        _cleanup_free_ char *json = NULL;
        if (cache_index_get(c, build, step, prev) < 0 || cache_read_meta(c, prev, &json) < 0)
                return NULL;
        if (cache_entry_created(c, prev, ret_when) < 0)
                *ret_when = 0;
        struct source *src = source_new("meta.json", json, strlen(json));
        struct diag_list d = {0};
        struct value *doc = NULL;
        char *stamp = NULL;
        if (yaml_load(src, &d, &doc) == 0 && doc) {
                const struct value *rf = value_map_get(meta_body(doc), "refresh");
                if (rf && rf->kind == V_STRING && startswith(rf->str, "release "))
                        stamp = xstrdup(rf->str);
        }
        value_free(doc);
        diag_list_done(&d);
        source_free(src);
        return stamp;
}

/* Fills stg's refresh fields: the step's policy (update: daily, packages:
 * never, unless refresh: says) and its stamp. A release stamp is fetched
 * from the tree's apt sources (the layers below, keys[0..nkeys)); when
 * that fails, the stamp of the step's previous build is reused with a
 * note (offline builds keep working), or, with none, refresh_error. */
static void stage_refresh(struct engine *e, const struct spec_build *b, struct stage *stg,
                          char **keys, size_t nkeys) {
        const struct spec_step *st = stg->step;
        if (!st || (!streq(st->kind, "update") && !streq(st->kind, "packages")))
                return;
        enum refresh_policy p = streq(st->kind, "update") ? REFRESH_DAILY : REFRESH_NEVER;
        const struct value *v = value_map_get(st->params, "refresh");
        if (v && v->str && refresh_policy_parse(v->str, &p) < 0)
                return; /* the spec layer reported it */
        stg->policy = p;
        if (p == REFRESH_NEVER)
                return;
        stg->refreshes = true;
        if (p != REFRESH_RELEASE) {
                stg->refresh = refresh_period_stamp(p, time(NULL));
                return;
        }
        char **layers = NULL;
        layer_dirs(e->o->cache, keys, nkeys, &layers);
        _cleanup_strv_ struct strv urls = {0};
        int r = refresh_tree_release_urls((const char *const *)layers, nkeys, &urls);
        free_strv(layers, nkeys);
        _cleanup_free_ char *err = NULL;
        if (r < 0)
                err = xasprintf("cannot read the tree's apt sources: %s", strerror(-r));
        else
                r = refresh_release_stamp(&urls, &stg->refresh, &err);
        if (r >= 0)
                return;
        time_t when = 0;
        stg->refresh = previous_release_stamp(e->o->cache, b->id, stg->index, &when);
        if (stg->refresh) {
                char day[16];
                utc_day(when, day);
                stg->refresh_note = xasprintf("refresh: release, cannot fetch %s; reusing the Release of %s",
                                              err, day);
        } else {
                stg->refresh_error = xasprintf("refresh: release: cannot fetch %s (no earlier build of "
                                               "this step to fall back on)", err);
        }
}

/* True when a step other than a package step (which builds the initramfs
 * once itself, steps.c) changed the initramfs configuration —
 * /etc/initramfs-tools or /usr/share/initramfs-tools in its layer — without
 * building the initramfs (no /boot/initrd.img-* in its layer): then the
 * engine runs update-initramfs -u once after it, so the image never boots
 * an initramfs older than its configuration. */
static bool initramfs_config_changed(const struct stage *stg, const char *upper) {
        if (!stg->step || streq(stg->kind, "packages") || streq(stg->kind, "update"))
                return false;
        _cleanup_free_ char *etc = xasprintf("%s/etc/initramfs-tools", upper);
        _cleanup_free_ char *usr = xasprintf("%s/usr/share/initramfs-tools", upper);
        if (access(etc, F_OK) < 0 && access(usr, F_OK) < 0)
                return false;
        _cleanup_free_ char *boot = xasprintf("%s/boot", upper);
        char **names = NULL;
        bool built = false;
        if (fs_list(AT_FDCWD, boot, &names, NULL) == 0) {
                for (char **nm = names; *nm && !built; nm++)
                        built = startswith(*nm, "initrd.img-") != NULL;
                fs_names_free(names);
        }
        return !built;
}

/* Runs one stage (not cached). Returns 0 when stored, -EIO when the step
 * failed (res/exit code set), other -errno on engine errors. */
static int run_stage(struct engine *e, const struct spec_build *b, struct stage *stg,
                     char **keys, size_t nkeys, const char *dir, struct step_event *ev,
                     struct build_result *br) {
        const struct build_options *o = e->o;
        struct cache_txn *txn = NULL;
        int r = cache_begin(o->cache, stg->key, &txn);
        if (r < 0)
                return r;
        if (r == 1)
                return 1; /* another build made it meanwhile */
        _cleanup_free_ char *logs = xasprintf("%s/logs", dir);
        _cleanup_free_ char *log_path = xasprintf("%s/%02u-%s.log", logs, stg->index, stg->kind);
        _cleanup_free_ char *run_dir = xasprintf("%s/run/%02u", dir, stg->index);
        _cleanup_free_ char *mnt = xasprintf("%s/root", dir);
        _cleanup_free_ char *work = xasprintf("%s/work", cache_txn_dir(txn));
        rm_rf(run_dir);
        if ((r = mkdir_p(logs, 0755)) < 0 || (r = mkdir_p(run_dir, 0700)) < 0 ||
            (r = mkdir_p(mnt, 0755)) < 0 || (r = mkdir_p(work, 0700)) < 0) {
                cache_abort(txn);
                return r;
        }
        /* mmdebstrap's apt downloads as _apt, which must reach the tree */
        if (stg->index == 0 && (r = cache_txn_share(txn)) < 0) {
                cache_abort(txn);
                return r;
        }
        /* the package cache; without it (a read-only cache?) apt fetches as before */
        _cleanup_free_ char *pkgdir = cache_packages_dir(o->cache);
        _cleanup_close_ int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log_fd < 0) {
                r = -errno;
                cache_abort(txn);
                return r;
        }
        ev->log_path = xstrdup(log_path); /* freed by build_one after emitting */
        char **lower = NULL;
        layer_dirs(o->cache, keys, nkeys, &lower);
        struct step_ctx ctx = {
                .spec = e->spec,
                .build = b,
                .step = stg->step,
                .lower = (const char *const *)lower,
                .nlower = nkeys,
                .upper = cache_txn_tree(txn),
                .work = work,
                .mountpoint = mnt,
                .run_dir = run_dir,
                .packages_dir = pkgcache_init(pkgdir) == 0 ? pkgdir : NULL,
        };
        const struct step_runner *runner = stg->step ? step_runner_find(stg->kind) : NULL;
        unsigned attempts = 1 + step_retries(stg->step) + (o->on_error == ON_ERROR_RETRY ? 1 : 0);
        struct sandbox_result res = {0};
        bool ok = false;
        for (unsigned a = 0; a < attempts && !ok; a++) {
                if (a > 0) {
                        /* Back off 1s, 2s, 4s, ... (at most 30s), from a clean layer. */
                        unsigned delay = 1u << (a - 1 < 5 ? a - 1 : 5);
                        dprintf(log_fd, "kiln: attempt %u of %u failed; retrying in %us\n", a,
                                attempts, delay > 30 ? 30 : delay);
                        sleep(delay > 30 ? 30 : delay);
                        clear_dir(ctx.upper);
                        clear_dir(work);
                }
                struct pump p;
                int wfd = pump_start(&p, e, b, log_fd);
                if (wfd < 0) {
                        r = wfd;
                        break;
                }
                ctx.log_fd = wfd;
                if (stg->index == 0)
                        r = source_run(&ctx, &res);
                else if (runner)
                        r = runner->run(&ctx, &res);
                else {
                        dprintf(wfd, "kiln: no runner for step kind %s\n", stg->kind);
                        r = -EOPNOTSUPP;
                }
                if (r >= 0 && exit_ok(stg->step, &res) && initramfs_config_changed(stg, ctx.upper)) {
                        /* see initramfs_config_changed */
                        dprintf(wfd, "kiln: the step changed the initramfs configuration: update-initramfs -u\n");
                        struct sandbox_result rr = {0};
                        int k = step_update_initramfs(&ctx, &rr);
                        if (k < 0 || rr.timed_out || rr.signal || rr.exit_code != 0) {
                                dprintf(wfd, "kiln: update-initramfs failed\n");
                                r = k < 0 ? k : -EIO;
                        }
                }
                pump_stop(&p, wfd);
                if (r < 0)
                        break;
                if (res.timed_out)
                        dprintf(log_fd, "kiln: the step timed out after %llu ms\n",
                                (unsigned long long)res.elapsed_ms);
                else if (res.signal)
                        dprintf(log_fd, "kiln: the step was killed by signal %d\n", res.signal);
                else
                        dprintf(log_fd, "kiln: exit status %d\n", res.exit_code);
                ok = exit_ok(stg->step, &res);
        }
        free_strv(lower, nkeys);
        rm_rf(run_dir);
        ev->exit_code = r < 0 ? -1 : res.signal ? 128 + res.signal : res.exit_code;
        if (ok) {
                r = cache_commit(txn, stg->meta);
                if (r < 0)
                        return r;
                cache_index_set(o->cache, b->id, stg->index, stg->key);
                return 0;
        }
        br->failed_log = xstrdup(log_path);
        if (o->on_error == ON_ERROR_ABORT) {
                /* Keep the partial layer where `kiln shell --failed` finds it. */
                _cleanup_free_ char *failed = xasprintf("%s/failed", dir);
                rm_rf(failed);
                if (mkdir_p(failed, 0700) == 0) { /* as the cache's entries/: may hold secrets */
                        _cleanup_free_ char *ftree = xasprintf("%s/tree", failed);
                        _cleanup_free_ char *fkey = xasprintf("%s/parent-layers", failed);
                        if (rename(cache_txn_tree(txn), ftree) == 0) {
                                struct strbuf sb = STRBUF_INIT;
                                for (size_t i = nkeys; i-- > 0;) {
                                        _cleanup_free_ char *t = cache_entry_tree(o->cache, keys[i]);
                                        strbuf_addf(&sb, "%s\n", t);
                                }
                                write_file(fkey, strbuf_str(&sb), sb.len, 0644, WRITE_FILE_ATOMIC);
                                strbuf_free(&sb);
                                br->failed_tree = xstrdup(ftree);
                        }
                }
        }
        cache_abort(txn);
        return r < 0 ? r : -EIO;
}

static char *stage_label_raw(const struct spec_build *b, const struct spec_step *st);

/* What the observer shows and the record keeps for a stage: its name:, or
 * a summary of its parameters, secrets masked. */
static char *stage_label(const struct engine *e, const struct spec_build *b,
                         const struct spec_step *st) {
        _cleanup_free_ char *raw = stage_label_raw(b, st);
        return secrets_mask(e->secrets, raw);
}

static char *stage_label_raw(const struct spec_build *b, const struct spec_step *st) {
        if (!st) {
                if (!b->source)
                        return xstrdup("source");
                const struct value *t = value_map_get(b->source, "type");
                const struct value *suite = value_map_get(b->source, "suite");
                if (suite && suite->str)
                        return xasprintf("%s %s", t && t->str ? t->str : "?", suite->str);
                return xstrdup(t && t->str ? t->str : "source");
        }
        if (st->name)
                return xstrdup(st->name);
        const struct value *p = st->params;
        const char *k = st->kind;
        const struct value *v = NULL;
        if (streq(k, "packages"))
                v = value_map_get(p, "install") ? value_map_get(p, "install") : value_map_get(p, "remove");
        else if (streq(k, "file"))
                v = value_map_get(p, "path");
        else if (streq(k, "ansible"))
                v = value_map_get(p, "playbook");
        else if (streq(k, "shell") || streq(k, "host-shell"))
                v = value_map_get(p, "script") ? value_map_get(p, "script") : value_map_get(p, "inline");
        if (!v)
                return xstrdup("");
        struct strbuf sb = STRBUF_INIT;
        value_format(v, &sb);
        /* one line, at most 60 characters */
        for (size_t i = 0; i < sb.len; i++)
                if (sb.buf[i] == '\n')
                        sb.buf[i] = ' ';
        if (sb.len > 60) {
                sb.len = 57;
                sb.buf[57] = 0;
                strbuf_adds(&sb, "...");
        }
        return strbuf_detach(&sb);
}

/* Installed packages of the finished tree, via dpkg-query in a sandbox
 * whose upper layer is thrown away. Written into the JSON as an array. */
static void record_packages(struct engine *e, const struct spec_build *b, char **keys,
                            size_t nkeys, const char *dir, struct json_writer *w) {
        json_begin_array(w);
        _cleanup_free_ char *scratch = xasprintf("%s/run/packages", dir);
        _cleanup_free_ char *upper = xasprintf("%s/upper", scratch);
        _cleanup_free_ char *work = xasprintf("%s/work", scratch);
        _cleanup_free_ char *out = xasprintf("%s/list", scratch);
        _cleanup_free_ char *mnt = xasprintf("%s/root", dir);
        rm_rf(scratch);
        if (mkdir_p(upper, 0755) < 0 || mkdir_p(work, 0700) < 0) {
                json_end_array(w);
                return;
        }
        char **lower = NULL;
        layer_dirs(e->o->cache, keys, nkeys, &lower);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        char *argv[] = {"dpkg-query", "-W", "-f=${Package}\\t${Version}\\t${Architecture}\\n", NULL};
        struct sandbox_opts so = {
                .lower = (const char *const *)lower, .nlower = nkeys, .upper = upper, .work = work,
                .mountpoint = mnt, .mode = SANDBOX_CHROOT, .network = false, .hostname = b->name,
                .argv = argv, .stdin_fd = -1, .stdout_fd = fd, .stderr_fd = -1,
                .timeout_ms = 120000,
        };
        struct sandbox_result res;
        int r = fd >= 0 ? sandbox_run(&so, &res) : -errno;
        if (fd >= 0)
                close(fd);
        free_strv(lower, nkeys);
        _cleanup_free_ char *text = NULL;
        if (r == 0 && res.exit_code == 0 && read_file(out, 64u << 20, &text, NULL) == 0) {
                for (char *line = text, *next; line && *line; line = next) {
                        next = strchr(line, '\n');
                        if (next)
                                *next++ = 0;
                        char *t1 = strchr(line, '\t');
                        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
                        if (!t2)
                                continue;
                        *t1 = *t2 = 0;
                        json_begin_object(w);
                        json_key(w, "name");
                        json_string(w, line);
                        json_key(w, "version");
                        json_string(w, t1 + 1);
                        json_key(w, "arch");
                        json_string(w, t2 + 1);
                        json_end_object(w);
                }
        }
        rm_rf(scratch);
        json_end_array(w);
}

struct step_record {
        unsigned index;
        const char *kind;
        char *label;
        char key[CACHE_KEY_LEN + 1];
        bool hit;
        uint64_t ms;
};

static int build_one(struct engine *e, size_t bi) {
        const struct spec_build *b = e->builds[bi];
        struct build_result *br = &e->results[bi];
        const struct build_options *o = e->o;
        uint64_t t0 = now_ms();
        _cleanup_free_ char *dir = build_dir(o, b);
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        _cleanup_free_ char *failed = xasprintf("%s/failed", dir);
        rm_rf(failed);

        /* The layers under this build: its parent's, or its source. */
        char **keys = NULL;
        size_t nkeys = 0;
        if (b->parent) {
                const struct build_result *pr = NULL;
                for (size_t i = 0; i < e->n; i++)
                        if (e->builds[i] == b->parent)
                                pr = &e->results[i];
                char **pl = NULL;
                size_t pn = 0;
                r = pr ? build_layers(o, b->parent, &pl, &pn) : -ENOENT;
                if (r < 0)
                        return r;
                keys = xcalloc(pn + b->nsteps + 1, sizeof(char *));
                for (size_t i = 0; i < pn; i++) {
                        /* record lists layer paths topmost first: turn into keys bottom-up */
                        const char *path = pl[pn - 1 - i];
                        const char *k = strstr(path, "/entries/");
                        keys[nkeys++] = xstrndup(k ? k + 9 : path, CACHE_KEY_LEN);
                }
                free_strv(pl, pn);
        } else {
                keys = xcalloc(b->nsteps + 2, sizeof(char *));
        }
        size_t nst = b->nsteps + (b->parent ? 0 : 1);
        struct step_record *recs = xcalloc(nst + 1, sizeof(*recs));
        size_t nrec = 0;
        bool failed_any = false;
        unsigned first = b->parent ? 1 : 0;
        for (unsigned i = first; i <= b->nsteps && !failed_any; i++) {
                if (o->cancel && *o->cancel) {
                        br->failed_step = xstrdup("cancelled");
                        failed_any = true;
                        break;
                }
                const struct spec_step *st = i ? &b->steps[i - 1] : NULL;
                struct stage stg = {
                        .index = i ? st->index : 0,
                        .kind = st ? st->kind : "source",
                        .step = st,
                };
                stg.label = stage_label(e, b, st);
                char **paths = NULL;
                size_t np = 0;
                const struct step_runner *runner = st ? step_runner_find(st->kind) : NULL;
                if (!st)
                        source_inputs(e->spec, b, &paths, &np);
                else if (runner && runner->inputs)
                        runner->inputs(e->spec, st, &paths, &np);
                hash_inputs(&stg, e->spec, paths, np);
                const char *parent = nkeys ? keys[nkeys - 1] : NULL;
                stage_refresh(e, b, &stg, keys, nkeys);
                stage_key(&stg, b, parent, st ? st->params : b->source, e->secrets);

                struct step_explain ex = {0};
                _cleanup_free_ char *why = NULL;
                struct step_event ev = {
                        .build = b, .index = stg.index, .position = i, .count = (unsigned)b->nsteps,
                        .kind = stg.kind, .label = stg.label, .key = stg.key, .explain = &ex,
                        .exit_code = -1,
                };
                bool hit = !o->force && !stg.refresh_error && cache_has(o->cache, stg.key);
                uint64_t s0 = now_ms();
                if (hit) {
                        ex.hit = true;
                        if (stg.refresh_note) {
                                ex.why = stg.refresh_note;
                        } else if (stg.refreshes) {
                                char day[16] = "?";
                                time_t created;
                                if (cache_entry_created(o->cache, stg.key, &created) == 0)
                                        utc_day(created, day);
                                why = stg.policy == REFRESH_RELEASE
                                              ? xasprintf("refresh: release, the mirror's Release unchanged since %s", day)
                                              : xasprintf("refresh: %s, cached %s", refresh_policy_name(stg.policy), day);
                                ex.why = why;
                        }
                        ev.status = STEP_HIT;
                        emit(e, &ev);
                        cache_index_set(o->cache, b->id, stg.index, stg.key);
                } else if (stg.refresh_error) {
                        ex.why = stg.refresh_error;
                        ev.status = STEP_FAILED;
                        emit(e, &ev);
                        br->failed_step = xasprintf("%u (%s): %s", stg.index, stg.kind, stg.refresh_error);
                        failed_any = true;
                } else if (stg.input_error) {
                        why = xasprintf("cannot read %s: %s", stg.input_error_path,
                                        strerror(-stg.input_error));
                        ex.why = why;
                        ev.status = STEP_FAILED;
                        emit(e, &ev);
                        br->failed_step = xasprintf("%u (%s): %s", stg.index, stg.kind, why);
                        failed_any = true;
                } else {
                        why = o->force ? xstrdup("--force") : explain_miss(o->cache, b, &stg, parent);
                        ex.why = why;
                        ev.status = STEP_RUNNING;
                        emit(e, &ev);
                        if (o->force)
                                cache_remove(o->cache, stg.key);
                        r = run_stage(e, b, &stg, keys, nkeys, dir, &ev, br);
                        ev.elapsed_ms = now_ms() - s0;
                        if (r == 1) {
                                ev.status = STEP_HIT;
                                hit = true;
                        } else if (r == 0) {
                                ev.status = STEP_BUILT;
                                br->steps_run++;
                        } else {
                                ev.status = STEP_FAILED;
                                if (!br->failed_step)
                                        br->failed_step = xasprintf("%u (%s)", stg.index, stg.kind);
                                failed_any = true;
                        }
                        emit(e, &ev);
                        free((char *)ev.log_path);
                }
                if (hit)
                        br->steps_cached++;
                if (!failed_any) {
                        keys[nkeys++] = xstrdup(stg.key);
                        recs[nrec] = (struct step_record){
                                .index = stg.index, .kind = stg.kind, .label = xstrdup(stg.label),
                                .hit = hit, .ms = now_ms() - s0,
                        };
                        memcpy(recs[nrec].key, stg.key, sizeof(stg.key));
                        nrec++;
                }
                stage_done(&stg);
        }
        /* Steps after a failure are reported as skipped. */
        if (failed_any && o->observer) {
                for (unsigned i = 0; i < b->nsteps; i++) {
                        const struct spec_step *st = &b->steps[i];
                        bool done = false;
                        for (size_t k = 0; k < nrec; k++)
                                done = done || recs[k].index == st->index;
                        if (done || (br->failed_step && (unsigned)atoi(br->failed_step) >= st->index))
                                continue;
                        _cleanup_free_ char *label = stage_label(e, b, st);
                        struct step_event ev = {.build = b, .index = st->index, .position = i + 1,
                                                .count = (unsigned)b->nsteps,
                                                .kind = st->kind, .label = label,
                                                .status = STEP_SKIPPED, .exit_code = -1};
                        emit(e, &ev);
                }
        }
        if (!failed_any) {
                /* The record and the layer stack. */
                struct strbuf layers = STRBUF_INIT, rec = STRBUF_INIT;
                for (size_t i = nkeys; i-- > 0;) {
                        _cleanup_free_ char *t = cache_entry_tree(o->cache, keys[i]);
                        strbuf_addf(&layers, "%s\n", t);
                }
                _cleanup_free_ char *lpath = xasprintf("%s/layers", dir);
                r = write_file(lpath, strbuf_str(&layers), layers.len, 0644, WRITE_FILE_ATOMIC);
                strbuf_free(&layers);
                struct json_writer w;
                json_init(&w, &rec, true);
                json_begin_object(&w);
                json_key(&w, "schema_version");
                json_int(&w, 1);
                json_key(&w, "name");
                _cleanup_free_ char *bname = secrets_mask(e->secrets, b->name);
                json_string(&w, bname);
                json_key(&w, "id");
                json_string(&w, b->id);
                json_key(&w, "timestamp"); /* the run's ${timestamp}: what name: and steps saw */
                json_string(&w, e->spec->timestamp);
                json_key(&w, "arch");
                json_string(&w, b->arch);
                json_key(&w, "role");
                json_string(&w, b->role);
                json_key(&w, "parent");
                json_string(&w, b->parent ? b->parent->name : NULL);
                json_key(&w, "key");
                json_string(&w, nkeys ? keys[nkeys - 1] : NULL);
                json_key(&w, "layers");
                json_begin_array(&w);
                for (size_t i = 0; i < nkeys; i++)
                        json_string(&w, keys[i]);
                json_end_array(&w);
                json_key(&w, "steps");
                json_begin_array(&w);
                for (size_t i = 0; i < nrec; i++) {
                        json_begin_object(&w);
                        json_key(&w, "index");
                        json_int(&w, recs[i].index);
                        json_key(&w, "kind");
                        json_string(&w, recs[i].kind);
                        json_key(&w, "label");
                        json_string(&w, recs[i].label);
                        json_key(&w, "key");
                        json_string(&w, recs[i].key);
                        json_key(&w, "cached");
                        json_bool(&w, recs[i].hit);
                        json_key(&w, "duration_ms");
                        json_int(&w, (int64_t)recs[i].ms);
                        json_end_object(&w);
                }
                json_end_array(&w);
                json_key(&w, "packages");
                record_packages(e, b, keys, nkeys, dir, &w);
                if (o->verifier && o->verifier->verify && b->checks) {
                        char **ld = NULL;
                        layer_dirs(o->cache, keys, nkeys, &ld);
                        _cleanup_free_ char *why = NULL;
                        json_key(&w, "checks");
                        int k = o->verifier->verify(o->verifier->userdata, b, (const char *const *)ld,
                                                    nkeys, dir, &w, &why);
                        free_strv(ld, nkeys);
                        if (k != 0) {
                                br->verify_failed = true;
                                br->failed_step = xasprintf("checks: %s", why ? why : "failed");
                        }
                }
                json_key(&w, "elapsed_ms");
                json_int(&w, (int64_t)(now_ms() - t0));
                json_end_object(&w);
                strbuf_addc(&rec, '\n');
                _cleanup_free_ char *rpath = xasprintf("%s/record.json", dir);
                if (r == 0)
                        r = write_file(rpath, rec.buf, rec.len, 0644, WRITE_FILE_ATOMIC);
                strbuf_free(&rec);
                br->record_path = xstrdup(rpath);
                br->final_key = nkeys ? xstrdup(keys[nkeys - 1]) : NULL;
        }
        for (size_t i = 0; i < nrec; i++)
                free(recs[i].label);
        free(recs);
        free_strv(keys, nkeys);
        br->elapsed_ms = now_ms() - t0;
        br->ok = !failed_any && r >= 0 && !br->verify_failed;
        return br->ok ? 0 : -EIO;
}

bool build_holds_secrets(const struct spec_build *b) {
        for (; b; b = b->parent) {
                if (value_any_sensitive(b->source))
                        return true;
                for (size_t i = 0; i < b->nsteps; i++) {
                        const struct spec_step *st = &b->steps[i];
                        if (value_any_sensitive(st->params))
                                return true;
                        const struct step_runner *r = step_runner_find(st->kind);
                        if (r && r->writes_private && r->writes_private(st->params))
                                return true;
                }
        }
        return false;
}

int build_layers(const struct build_options *o, const struct spec_build *b, char ***ret_layers,
                 size_t *ret_n) {
        _cleanup_free_ char *dir = build_dir(o, b);
        _cleanup_free_ char *path = xasprintf("%s/layers", dir);
        return read_lines(path, 1u << 20, ret_layers, ret_n);
}

/* ---- scheduling ---------------------------------------------------------------------------- */

static void *worker(void *arg) {
        struct engine *e = arg;
        pthread_mutex_lock(&e->lock);
        for (;;) {
                size_t pick = e->n;
                bool waiting = false;
                for (size_t i = 0; i < e->n; i++) {
                        if (e->state[i] != 0)
                                continue;
                        const struct spec_build *p = e->builds[i]->parent;
                        int ps = 2;
                        for (size_t j = 0; p && j < e->n; j++)
                                if (e->builds[j] == p)
                                        ps = e->state[j];
                        if (ps == 3) {
                                e->state[i] = 3;
                                e->results[i].skipped = true;
                                pthread_cond_broadcast(&e->cond);
                                continue;
                        }
                        if (ps != 2) {
                                waiting = true;
                                continue;
                        }
                        pick = i;
                        break;
                }
                if (pick == e->n) {
                        bool running = false;
                        for (size_t i = 0; i < e->n; i++)
                                running = running || e->state[i] == 1;
                        if (!waiting && !running)
                                break;
                        if (!waiting) {
                                /* nothing left for this worker */
                                bool pending = false;
                                for (size_t i = 0; i < e->n; i++)
                                        pending = pending || e->state[i] == 0;
                                if (!pending)
                                        break;
                        }
                        pthread_cond_wait(&e->cond, &e->lock);
                        continue;
                }
                e->state[pick] = 1;
                pthread_mutex_unlock(&e->lock);
                int r = build_one(e, pick);
                pthread_mutex_lock(&e->lock);
                e->state[pick] = r == 0 ? 2 : 3;
                pthread_cond_broadcast(&e->cond);
        }
        pthread_mutex_unlock(&e->lock);
        return NULL;
}

int build_run(const struct spec *s, const struct build_options *o,
              struct build_result **ret_results, size_t *ret_n) {
        const char *why = NULL;
        int r = sandbox_probe(&why);
        if (r < 0)
                return r;
        r = mkdir_p(o->work_dir, 0755);
        if (r < 0)
                return r;
        struct engine e = {.spec = s, .o = o};
        pthread_mutex_init(&e.lock, NULL);
        pthread_cond_init(&e.cond, NULL);
        e.secrets = secrets_new(1); /* every sensitive value, however short */
        _cleanup_free_ const char **values = spec_secrets(s);
        for (size_t i = 0; values[i]; i++)
                secrets_add(e.secrets, values[i]);
        e.builds = xcalloc(s->nbuilds + 1, sizeof(*e.builds));
        for (size_t i = 0; i < s->nbuilds; i++)
                if (s->builds[i]->needed)
                        e.builds[e.n++] = s->builds[i];
        e.results = xcalloc(e.n + 1, sizeof(*e.results));
        e.state = xcalloc(e.n + 1, sizeof(*e.state));
        for (size_t i = 0; i < e.n; i++)
                e.results[i].build = e.builds[i];
        unsigned nthreads = o->parallel ? o->parallel : 1;
        if (nthreads > e.n)
                nthreads = e.n ? (unsigned)e.n : 1;
        pthread_t *threads = xcalloc(nthreads, sizeof(*threads));
        unsigned started = 0;
        for (unsigned i = 1; i < nthreads; i++)
                if (pthread_create(&threads[i], NULL, worker, &e) == 0)
                        started |= 1u << (i & 31);
        worker(&e);
        for (unsigned i = 1; i < nthreads; i++)
                if (started & (1u << (i & 31)))
                        pthread_join(threads[i], NULL);
        free(threads);
        bool all_ok = true;
        for (size_t i = 0; i < e.n; i++)
                all_ok = all_ok && e.results[i].ok;
        free(e.state);
        free(e.builds);
        secrets_unref(e.secrets);
        pthread_mutex_destroy(&e.lock);
        pthread_cond_destroy(&e.cond);
        *ret_results = e.results;
        *ret_n = e.n;
        return all_ok ? 0 : -EIO;
}

void build_results_free(struct build_result *r, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(r[i].failed_step);
                free(r[i].failed_log);
                free(r[i].failed_tree);
                free(r[i].record_path);
                free(r[i].final_key);
        }
        free(r);
}
