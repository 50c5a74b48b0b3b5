/* SPDX-License-Identifier: Apache-2.0 */
/*
 * publish.c — the publisher table and what every publisher shares: checking
 * publish: sections, making a build's artifact_set (image/artifact.h: in
 * memory, or read from its folder) publishable (or hashing bare files),
 * choosing the artifact of each target, and publish_artifact_set for the
 * build engine. The publishers themselves (s3.c, glance.c) only see one
 * target and one artifact at a time; run.c plans and runs `kiln publish`.
 */
#include "publish/publish.h"

#include "base/hash.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "image/format.h"
#include "net/http.h"
#include "spec/schema.h"
#include "spec/section.h"
#include "spec/spec.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

extern const struct publisher publisher_s3, publisher_glance, publisher_gcs;

const struct publisher *const publishers[] = {
        &publisher_s3,
        &publisher_glance,
        &publisher_gcs,
        NULL,
};

const char *publish_getenv(char *const *env, const char *name) {
        size_t n = strlen(name);
        for (char *const *e = env; e && *e; e++)
                if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
                        return *e + n + 1;
        return NULL;
}

const struct publisher *publisher_find(const char *type) {
        for (const struct publisher *const *p = publishers; *p; p++)
                if (streq((*p)->type, type))
                        return *p;
        return NULL;
}

int publish_parse_endpoint(const char *ep, char **ret_scheme, char **ret_host) {
        const char *rest;
        const char *scheme;
        if ((rest = startswith(ep, "https://")))
                scheme = "https";
        else if ((rest = startswith(ep, "http://")))
                scheme = "http";
        else
                return -EINVAL;
        size_t n = strcspn(rest, "/?#");
        if (n == 0 || (rest[n] && !(rest[n] == '/' && rest[n + 1] == 0)))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char)rest[i]) || strchr(".-:[]", rest[i])))
                        return -EINVAL;
        *ret_scheme = xstrdup(scheme);
        *ret_host = xstrndup(rest, n);
        return 0;
}

bool publish_retryable(int r, const struct http_response *resp) {
        if (r < 0)
                return r == -ETIMEDOUT || r == -ECONNRESET || r == -ECONNREFUSED || r == -EIO;
        return resp->status >= 500 || resp->status == 408 || resp->status == 429;
}

void publish_backoff(unsigned n) {
        unsigned ms = 500u << (n > 5 ? 5 : n - 1);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

int publish_read_small_file(const char *path, size_t max, const char *what, char **ret,
                            size_t *ret_len, struct strbuf *err) {
        _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
        uint64_t size;
        _cleanup_close_ int fd = publish_open_file(path, PUBLISH_ANY_SIZE, &size, &why);
        if (fd < 0) {
                strbuf_addf(err, "cannot read %s: %s", what, strbuf_str(&why));
                return fd;
        }
        if (size > max) {
                strbuf_addf(err, "%s %s is larger than %zu bytes", what, path, max);
                return -E2BIG;
        }
        char *text = xmalloc(size + 1);
        size_t len = 0;
        while (len < size) {
                ssize_t k = read(fd, text + len, size - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        strbuf_addf(err, "cannot read %s %s: %s", what, path, strerror(-r));
                        explicit_bzero(text, len);
                        free(text);
                        return r;
                }
                if (k == 0)
                        break;
                len += k;
        }
        text[len] = 0;
        *ret = text;
        *ret_len = len;
        return 0;
}

static const char *scalar_setting(const struct value *settings, const char *key) {
        const struct value *v = value_map_get(settings, key);
        return v && value_is_scalar(v) && v->kind != V_NULL ? v->str : NULL;
}

int publish_setting_retries(const struct value *settings, unsigned max, unsigned *ret,
                            struct strbuf *err) {
        const char *v = scalar_setting(settings, "retries");
        if (!v)
                return 0;
        char *end;
        unsigned long n = strtoul(v, &end, 10);
        if (*end || n > max) {
                strbuf_addf(err, "retries: expected 0 to %u", max);
                return -EINVAL;
        }
        *ret = n;
        return 0;
}

int publish_setting_timeout(const struct value *settings, unsigned *ret, struct strbuf *err) {
        const char *v = scalar_setting(settings, "timeout");
        if (!v)
                return 0;
        uint64_t t;
        if (parse_duration(v, &t) < 0 || t == 0 || t > 3600) {
                strbuf_addf(err, "timeout: '%s' is not a duration up to 1h", v);
                return -EINVAL;
        }
        *ret = t;
        return 0;
}

unsigned publish_validate_endpoint_retries(const struct value *settings, const char *what,
                                           const char *example, unsigned max_retries,
                                           struct diag_list *d) {
        unsigned errs = 0;
        const struct value *v;
        if ((v = value_map_get(settings, "endpoint")) && v->kind == V_STRING && !v->invalid) {
                _cleanup_free_ char *sc = NULL, *h = NULL;
                if (publish_parse_endpoint(v->str, &sc, &h) < 0) {
                        struct diag *dg = diag_error(d, &v->mark, value_span(v),
                                                     "%s: endpoint: '%s' is not "
                                                     "http(s)://host[:port]", what, value_shown(v));
                        diag_hint(dg, "e.g. endpoint: %s", example);
                        errs++;
                }
        }
        if ((v = value_map_get(settings, "retries")) && value_is_scalar(v) && !v->invalid &&
            strtoul(v->str, NULL, 10) > max_retries) {
                diag_error(d, &v->mark, value_span(v), "%s: retries: at most %u", what, max_retries);
                errs++;
        }
        return errs;
}

void publish_result_done(struct publish_result *r) {
        free(r->location);
        free(r->error);
        free(r->note);
        *r = (struct publish_result){0};
}

const char *publish_status_name(enum publish_status s) {
        switch (s) {
        case PUBLISH_UPLOADED:
                return "uploaded";
        case PUBLISH_SKIPPED_IDENTICAL:
                return "skipped-identical";
        case PUBLISH_DISABLED:
                return "disabled";
        default:
                return "failed";
        }
}

void publish_uploads_free(struct publish_upload *u, size_t n) {
        for (size_t i = 0; u && i < n; i++) {
                free(u[i].key);
                free(u[i].upload_id);
                free(u[i].initiated);
        }
        free(u);
}

/* ---- validation ------------------------------------------------------------ */

static void type_list(struct strbuf *out) {
        for (const struct publisher *const *p = publishers; *p; p++)
                strbuf_addf(out, "%s%s", p == publishers ? "" : ", ", (*p)->type);
}

static int validate_target(const struct value *t, struct diag_list *d) {
        if (t->invalid)
                return 0;
        if (t->kind != V_MAP) {
                struct diag *dg = diag_error(d, &t->mark, 1, "publish: expected a map, got a %s",
                                             value_kind_name(t->kind));
                diag_hint(dg, "e.g. - {type: s3, bucket: images, key: ci/${build.name}.qcow2}");
                return -EINVAL;
        }
        const struct value *type = value_map_get(t, "type");
        _cleanup_strbuf_ struct strbuf types = STRBUF_INIT;
        type_list(&types);
        if (!type) {
                struct diag *dg = diag_error(d, &t->mark, 1, "publish: missing type:");
                diag_hint(dg, "one of: %s", strbuf_str(&types));
                return -EINVAL;
        }
        if (type->invalid)
                return 0;
        const struct publisher *p = type->kind == V_STRING ? publisher_find(type->str) : NULL;
        if (!p) {
                struct diag *dg = diag_error(d, &type->mark, value_span(type),
                                             "publish: unknown type '%s'",
                                             type->str ? value_shown(type) : "");
                diag_hint(dg, "one of: %s", strbuf_str(&types));
                return -EINVAL;
        }
        return p->validate ? p->validate(t, d) : 0;
}

int publish_validate(const struct value *publish, struct diag_list *d) {
        if (!publish || publish->invalid)
                return 0;
        if (publish->kind == V_MAP)
                return validate_target(publish, d);
        if (publish->kind != V_LIST) {
                diag_error(d, &publish->mark, 1, "publish: expected a list of targets, got a %s",
                           value_kind_name(publish->kind));
                return -EINVAL;
        }
        int ret = 0;
        for (size_t i = 0; i < publish->n; i++)
                if (validate_target(publish->items[i], d) < 0)
                        ret = -EINVAL;
        return ret;
}

int publish_validate_spec(const struct spec *s, struct diag_list *d) {
        int ret = 0;
        for (size_t i = 0; i < s->nbuilds; i++) {
                const struct spec_build *b = s->builds[i];
                /* Inherited sections are the parent's values: checked there. */
                if (!b->needed || !b->publish || b->publish_from)
                        continue;
                if (publish_validate(b->publish, d) < 0)
                        ret = -EINVAL;
        }
        return ret;
}

/* ---- targets ------------------------------------------------------------- */

int publish_targets_from_value(const struct value *publish, struct publish_target **ret,
                               size_t *ret_n) {
        *ret = NULL;
        *ret_n = 0;
        if (!publish)
                return 0;
        const struct value *const *items;
        size_t n;
        const struct value *one[1] = {publish};
        if (publish->kind == V_MAP) {
                items = one;
                n = 1;
        } else if (publish->kind == V_LIST) {
                items = (const struct value *const *)publish->items;
                n = publish->n;
        } else
                return -EINVAL;
        struct publish_target *t = xcalloc(n ? n : 1, sizeof(*t));
        for (size_t i = 0; i < n; i++) {
                const struct value *type = value_map_get(items[i], "type");
                const struct value *name = value_map_get(items[i], "name");
                if (items[i]->kind != V_MAP || !type || type->kind != V_STRING) {
                        publish_targets_free(t, i);
                        return -EINVAL;
                }
                const struct value *en = value_map_get(items[i], "enabled");
                t[i].type = type->str;
                t[i].settings = items[i];
                t[i].disabled = en && en->kind == V_BOOL && !en->b;
                t[i].name = name && name->kind == V_STRING ? xstrdup(name->str)
                                                           : xasprintf("%s #%zu", type->str, i + 1);
        }
        *ret = t;
        *ret_n = n;
        return 0;
}

void publish_targets_free(struct publish_target *t, size_t n) {
        for (size_t i = 0; t && i < n; i++)
                free((char *)t[i].name);
        free(t);
}

const struct publish_artifact *publish_pick_artifact(const struct publish_target *t,
                                                    const struct publish_artifact *v, size_t n) {
        const struct value *f = value_map_get(t->settings, "format");
        if (!f)
                f = value_map_get(t->settings, "disk_format");
        if (f && f->kind == V_STRING) {
                for (size_t i = 0; i < n; i++)
                        if (v[i].format && streq(v[i].format, f->str))
                                return &v[i];
                return NULL;
        }
        return n ? &v[0] : NULL;
}

/* ---- artifacts ------------------------------------------------------------- */

/* Points v at set's files (again: adding a file may move them). */
static void refresh_views(struct publish_artifacts *pa) {
        const struct artifact_set *set = &pa->set;
        pa->v = xreallocarray(pa->v, set->nfiles + 1, sizeof(*pa->v));
        pa->n = set->nfiles;
        for (size_t i = 0; i < set->nfiles; i++) {
                const struct artifact_file *f = &set->files[i];
                pa->v[i] = (struct publish_artifact){
                        .path = f->path,
                        .file_name = f->file,
                        .format = f->format,
                        .size = f->size,
                        .sha256 = f->sha256,
                        .sha512 = f->sha512,
                        .image_name = set->name,
                        .build_id = set->build_id,
                        .arch = set->arch,
                        .role = set->role,
                        .labels = set->nlabels ? set->labels : NULL,
                        .nlabels = set->nlabels,
                };
        }
}

void publish_artifacts_done(struct publish_artifacts *set) {
        free(set->v);
        artifact_set_done(&set->set);
        *set = (struct publish_artifacts){0};
}

int publish_open_file(const char *path, uint64_t expect_size, uint64_t *ret_size,
                      struct strbuf *err) {
        /* stat first, so that a FIFO or device is refused without being
         * opened (opening can block or have effects); then fstat the opened
         * fd, in case path was replaced in between. Every struct stat is read
         * only after its call succeeded. */
        struct stat st;
        if (stat(path, &st) < 0) {
                int r = -errno;
                strbuf_addf(err, "%s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                strbuf_addf(err, "%s: is %s, not a regular file (only files can be published)",
                            path, artifact_file_kind(st.st_mode));
                return -EINVAL;
        }
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                int r = -errno;
                strbuf_addf(err, "%s: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                strbuf_addf(err, "%s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                strbuf_addf(err, "%s: is %s, not a regular file (only files can be published)",
                            path, artifact_file_kind(st.st_mode));
                return -EINVAL;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
                int r = -errno;
                strbuf_addf(err, "%s: %s", path, strerror(-r));
                return r;
        }
        if (expect_size != PUBLISH_ANY_SIZE && (uint64_t)st.st_size != expect_size) {
                strbuf_addf(err, "%s: %llu bytes, but %llu were recorded (changed since the build? "
                            "rebuild it)", path, (unsigned long long)st.st_size,
                            (unsigned long long)expect_size);
                return -ESTALE;
        }
        if (ret_size)
                *ret_size = st.st_size;
        int ret_fd = fd;
        fd = -1; /* handed to the caller */
        return ret_fd;
}

/* SHA-256 and (optionally) SHA-512 of an open file in one pass, reporting
 * progress through set->hash_progress. */
struct hash_progress {
        const struct publish_artifacts *set;
        const char *path;
        uint64_t size;
};

static void hash_progress(void *userdata, uint64_t done) {
        const struct hash_progress *p = userdata;
        p->set->hash_progress(p->set->hash_userdata, p->path, done > p->size ? p->size : done, p->size);
}

static int hash_fd(const struct publish_artifacts *set, int fd, const char *path, uint64_t size,
                   char sha256[65], char *sha512, uint64_t *ret_size) {
        struct digests d;
        int r = digests_init(&d, sha512 != NULL);
        if (r < 0)
                return r;
        struct hash_progress p = {set, path, size};
        r = digests_fd(&d, fd, set->hash_progress ? hash_progress : NULL, &p, ret_size);
        if (r < 0) {
                digests_free(&d);
                return r;
        }
        return digests_final(&d, sha256, sha512);
}

int publish_artifacts_add_file(struct publish_artifacts *set, const char *path, bool need_sha512,
                               struct strbuf *err) {
        uint64_t st_size;
        _cleanup_close_ int fd = publish_open_file(path, PUBLISH_ANY_SIZE, &st_size, err);
        if (fd < 0)
                return fd;
        char sha256[65], sha512[129] = "";
        uint64_t size;
        int r = hash_fd(set, fd, path, st_size, sha256, need_sha512 ? sha512 : NULL, &size);
        if (r < 0) {
                strbuf_addf(err, "hashing %s: %s", path, strerror(-r));
                return r;
        }
        const char *slash = strrchr(path, '/');
        struct artifact_file *f = artifact_set_add(&set->set, slash ? slash + 1 : path);
        free(f->path);
        f->path = xstrdup(path);
        f->format = format_name_from_file(f->file, NULL); /* image/format.h */
        if (!f->format)
                f->format = xstrdup("raw"); /* no extension */
        f->size = size;
        memcpy(f->sha256, sha256, sizeof(sha256));
        memcpy(f->sha512, sha512, sizeof(sha512));
        refresh_views(set);
        return 0;
}

/* Opens f (a regular file of its recorded size) and hashes it when a
 * checksum the publishers need is not known. */
static int complete_file(struct publish_artifacts *pa, struct artifact_file *f, bool need_sha512,
                         struct strbuf *err) {
        /* Opened (not only stat'ed): a FIFO or device named by a set is
         * refused here, not when a publisher reads it. */
        _cleanup_close_ int fd = publish_open_file(f->path, f->size, NULL, err);
        if (fd < 0)
                return fd;
        if (f->sha256[0] && (f->sha512[0] || !need_sha512))
                return 0;
        char s256[65], s512[129] = "";
        uint64_t sz;
        int r = hash_fd(pa, fd, f->path, f->size, s256, need_sha512 ? s512 : NULL, &sz);
        if (r < 0) {
                strbuf_addf(err, "hashing %s: %s", f->path, strerror(-r));
                return r;
        }
        if ((f->sha256[0] && !streq(s256, f->sha256)) || sz != f->size) {
                strbuf_addf(err, "%s does not match its manifest (changed since the build?)", f->path);
                return -ESTALE;
        }
        memcpy(f->sha256, s256, sizeof(s256));
        if (need_sha512)
                memcpy(f->sha512, s512, sizeof(s512));
        return 0;
}

int publish_artifacts_use_set(struct publish_artifacts *ret, const struct artifact_set *set,
                              bool need_sha512, struct strbuf *err) {
        artifact_set_done(&ret->set);
        artifact_set_copy(set, &ret->set);
        for (size_t i = 0; i < ret->set.nfiles; i++) {
                int r = complete_file(ret, &ret->set.files[i], need_sha512, err);
                if (r < 0) {
                        artifact_set_done(&ret->set);
                        refresh_views(ret);
                        return r;
                }
        }
        refresh_views(ret);
        return 0;
}

int publish_artifacts_load(const char *image_dir, bool need_sha512, struct publish_artifacts *ret,
                           struct strbuf *err) {
        struct artifact_set set = {0};
        int r = artifact_set_read(image_dir, &set, err);
        if (r >= 0)
                r = publish_artifacts_use_set(ret, &set, need_sha512, err);
        artifact_set_done(&set);
        return r;
}

/* ---- publishing ------------------------------------------------------------- */

void publish_outcomes_free(struct publish_outcome *o, size_t n) {
        for (size_t i = 0; o && i < n; i++) {
                free(o[i].build);
                free(o[i].target);
                free(o[i].type);
                free(o[i].file);
                publish_result_done(&o[i].result);
        }
        free(o);
}

int publish_one(const struct publish_target *t, const struct publish_artifact *a,
                const struct publish_ctx *ctx, struct publish_outcome *ret) {
        *ret = (struct publish_outcome){
                .target = xstrdup(t->name),
                .type = xstrdup(t->type),
                .file = a ? xstrdup(a->file_name) : NULL,
                .result = {.status = PUBLISH_FAILED},
        };
        if (t->disabled) {
                ret->result.status = PUBLISH_DISABLED; /* an opt-in target not opted in */
                return 0;
        }
        const struct publisher *p = publisher_find(t->type);
        if (!p) {
                ret->result.error = xasprintf("unknown publisher type '%s'", t->type);
                return -EINVAL;
        }
        if (!a) {
                const struct value *f = value_map_get(t->settings, "format");
                if (!f)
                        f = value_map_get(t->settings, "disk_format");
                ret->result.error = xasprintf("no artifact%s%s to publish",
                                              f && f->str ? " of format " : "", f && f->str ? f->str : "");
                return -ENOENT;
        }
        int r = p->publish(t, a, ctx, &ret->result);
        if (r < 0 && ret->result.status != PUBLISH_FAILED)
                ret->result.status = PUBLISH_FAILED;
        if (r < 0 && !ret->result.error)
                ret->result.error = xasprintf("%s", strerror(-r));
        return r;
}

bool publish_targets_need_sha512(const struct publish_target *t, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const struct publisher *p = publisher_find(t[i].type);
                if (!t[i].disabled && p && !p->sha256_only)
                        return true;
        }
        return false;
}

bool publish_needs_sha512(const struct value *publish) {
        struct publish_target *t = NULL;
        size_t n = 0;
        if (!publish || publish_targets_from_value(publish, &t, &n) < 0)
                return false;
        bool need = publish_targets_need_sha512(t, n);
        publish_targets_free(t, n);
        return need;
}

/* Every target of publish gets set's pick; load_err (when set is NULL) is
 * why there is nothing to publish, and fails every enabled target. */
static int publish_to_targets(const struct artifact_set *set, int load_r, const char *load_err,
                              const struct spec_build *b, const struct publish_ctx *ctx,
                              struct publish_outcome **ret, size_t *ret_n) {
        *ret = NULL;
        *ret_n = 0;
        /* Parsed when the spec was loaded (pipeline_load); a spec loaded
         * without the registry has only the value. */
        if (!b || !b->publish)
                return 0;
        const struct publish_targets *pt = publish_targets_of(b);
        struct publish_targets own = {0};
        int r = pt ? 0 : publish_targets_from_value(b->publish, &own.v, &own.n);
        if (r < 0)
                return r;
        const struct publish_target *t = pt ? pt->v : own.v;
        size_t nt = pt ? pt->n : own.n;
        struct publish_artifacts pa = {0};
        _cleanup_strbuf_ struct strbuf err = STRBUF_INIT;
        struct publish_outcome *o = xcalloc(nt ? nt : 1, sizeof(*o));
        r = load_r;
        if (r < 0)
                strbuf_adds(&err, load_err);
        else
                r = publish_artifacts_use_set(&pa, set, publish_targets_need_sha512(t, nt), &err);
        int ret_r = 0;
        for (size_t i = 0; i < nt; i++) {
                if (r < 0 && !t[i].disabled) {
                        o[i] = (struct publish_outcome){
                                .target = xstrdup(t[i].name), .type = xstrdup(t[i].type),
                                .result = {.status = PUBLISH_FAILED, .error = xstrdup(strbuf_str(&err))},
                        };
                        ret_r = r == -ENOENT ? -ENOENT : -EIO;
                        continue;
                }
                const struct publish_artifact *a = publish_pick_artifact(&t[i], pa.v, pa.n);
                if (publish_one(&t[i], a, ctx, &o[i]) < 0 && ret_r == 0)
                        ret_r = -EIO;
        }
        publish_artifacts_done(&pa);
        publish_targets_free(own.v, own.n);
        *ret = o;
        *ret_n = nt;
        return ret_r;
}

/* ---- the publish: section (spec/section.h) ---- */

static void section_validate(struct value *v, const struct spec_section_ctx *ctx, struct diag_list *d) {
        spec_section_expect_collection(v, ctx, false, d);
}

static void section_free(void *p) {
        struct publish_targets *t = p;
        if (t)
                publish_targets_free(t->v, t->n);
        free(t);
}

static int section_parse(const struct value *v, const struct spec_section_ctx *ctx, struct diag_list *d,
                         void **ret) {
        int r = publish_validate(v, d);
        if (r < 0)
                return r;
        struct publish_targets *t = xcalloc(1, sizeof(*t));
        r = publish_targets_from_value(v, &t->v, &t->n);
        *ret = t;
        return r;
}

const struct spec_section publish_section = {
        .key = "publish",
        .validate = section_validate,
        .parse = section_parse,
        .free_parsed = section_free,
};

const struct publish_targets *publish_targets_of(const struct spec_build *b) {
        return spec_build_section(b, &publish_section);
}

int publish_artifact_set(const struct artifact_set *set, const struct spec_build *b,
                         const struct publish_ctx *ctx, struct publish_outcome **ret, size_t *ret_n) {
        int r = publish_to_targets(set, 0, NULL, b, ctx, ret, ret_n);
        return r == -ENOENT ? -EIO : r;
}

int publish_build(const struct spec *s, const struct spec_build *b, const char *output_dir,
                  const struct publish_ctx *ctx, struct publish_outcome **ret, size_t *ret_n) {
        (void)s;
        *ret = NULL;
        *ret_n = 0;
        if (!b->publish)
                return 0;
        _cleanup_free_ char *dir = xasprintf("%s/%s", output_dir, b->name);
        struct artifact_set set = {0};
        _cleanup_strbuf_ struct strbuf err = STRBUF_INIT;
        int r = artifact_set_read(dir, &set, &err);
        r = publish_to_targets(&set, r, strbuf_str(&err), b, ctx, ret, ret_n);
        artifact_set_done(&set);
        return r;
}
