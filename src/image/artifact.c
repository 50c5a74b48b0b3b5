/* SPDX-License-Identifier: Apache-2.0 */
/*
 * artifact.c — struct artifact_set and kiln-manifest.json, both ways. The
 * writer keeps the manifest's layout (every key, in order) in one place and
 * asks the image stage only for the values it alone knows; the reader
 * checks every field it models (see artifact.h) and ignores the rest.
 */
#include "image/artifact.h"

#include "base/json.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "spec/value.h"
#include "spec/yaml.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

void artifact_set_done(struct artifact_set *s) {
        for (size_t i = 0; i < s->nfiles; i++) {
                free(s->files[i].path);
                free(s->files[i].file);
                free(s->files[i].format);
        }
        free(s->files);
        for (size_t i = 0; i < s->nlabels; i++) {
                free(s->labels[i].key);
                free(s->labels[i].value);
        }
        free(s->labels);
        free(s->dir);
        free(s->name);
        free(s->build_id);
        free(s->arch);
        free(s->role);
        free(s->assembly_key);
        free(s->tree_key);
        *s = (struct artifact_set){0};
}

struct artifact_file *artifact_set_add(struct artifact_set *s, const char *file) {
        s->files = xreallocarray(s->files, s->nfiles + 1, sizeof(*s->files));
        struct artifact_file *f = &s->files[s->nfiles++];
        *f = (struct artifact_file){
                .file = xstrdup(file),
                .path = s->dir ? xasprintf("%s/%s", s->dir, file) : xstrdup(file),
                .compression = artifact_compression_from_name(file),
        };
        return f;
}

void artifact_set_label(struct artifact_set *s, const char *key, const char *value) {
        for (size_t i = 0; i < s->nlabels; i++)
                if (streq(s->labels[i].key, key)) {
                        free(s->labels[i].value);
                        s->labels[i].value = xstrdup(value);
                        return;
                }
        s->labels = xreallocarray(s->labels, s->nlabels + 1, sizeof(*s->labels));
        s->labels[s->nlabels++] = (struct artifact_label){xstrdup(key), xstrdup(value)};
}

const char *artifact_compression_from_name(const char *file) {
        static const char *const names[] = {"zst", "xz", "gz"};
        const char *dot = strrchr(file, '.');
        for (size_t i = 0; dot && dot != file && i < ARRAY_SIZE(names); i++)
                if (streq(dot + 1, names[i]))
                        return names[i];
        return NULL;
}

bool artifact_file_name_ok(const char *file) {
        return file && file[0] && file[0] != '.' && !strchr(file, '/') &&
               strlen(file) <= ARTIFACT_STRING_MAX;
}

/* ---- writing ------------------------------------------------------------- */

static void section(const struct artifact_manifest_info *info, enum artifact_section which,
                    struct json_writer *w) {
        if (info->section)
                info->section(info->userdata, which, w);
        else
                json_null(w);
}

char *artifact_manifest_json(const struct artifact_set *s, const struct artifact_manifest_info *info) {
        struct strbuf sb = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &sb, true);
        json_begin_object(&w);
        json_key(&w, "schema_version");
        json_int(&w, 1);
        json_key(&w, "name");
        json_string(&w, s->name);
        json_key(&w, "id");
        json_string(&w, s->build_id);
        json_key(&w, "arch");
        json_string(&w, s->arch);
        json_key(&w, "role");
        json_string(&w, s->role);
        json_key(&w, "spec");
        json_string(&w, info->spec_path);
        json_key(&w, "run_uuid");
        json_string(&w, info->run_uuid);
        json_key(&w, "source_date_epoch");
        json_int(&w, (int64_t)info->source_date_epoch);
        json_key(&w, "assembly_key");
        json_string(&w, s->assembly_key);
        json_key(&w, "variables");
        section(info, ARTIFACT_SECTION_VARIABLES, &w);
        json_key(&w, "labels");
        section(info, ARTIFACT_SECTION_LABELS, &w);
        json_key(&w, "tree");
        json_begin_object(&w);
        json_key(&w, "key");
        json_string(&w, s->tree_key);
        json_key(&w, "layers");
        section(info, ARTIFACT_SECTION_LAYERS, &w);
        json_end_object(&w);
        json_key(&w, "packages");
        section(info, ARTIFACT_SECTION_PACKAGES, &w);
        json_key(&w, "disk");
        section(info, ARTIFACT_SECTION_DISK, &w);
        json_key(&w, "artifacts");
        json_begin_array(&w);
        for (size_t i = 0; i < s->nfiles; i++) {
                const struct artifact_file *a = &s->files[i];
                json_begin_object(&w);
                json_key(&w, "file");
                json_string(&w, a->file);
                json_key(&w, "format");
                json_string(&w, a->format);
                json_key(&w, "size");
                json_int(&w, (int64_t)a->size);
                json_key(&w, "sha256");
                json_string(&w, a->sha256[0] ? a->sha256 : NULL);
                json_key(&w, "sha512");
                json_string(&w, a->sha512[0] ? a->sha512 : NULL);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_key(&w, "reproducibility");
        section(info, ARTIFACT_SECTION_REPRODUCIBILITY, &w);
        json_end_object(&w);
        strbuf_addc(&sb, '\n');
        return strbuf_detach(&sb);
}

/* ---- reading ------------------------------------------------------------- */

_printf_(3, 4) static int fail(struct strbuf *err, int r, const char *fmt, ...) {
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                _cleanup_free_ char *m = NULL;
                if (vasprintf(&m, fmt, ap) < 0)
                        die_oom();
                va_end(ap);
                strbuf_adds(err, m);
        }
        return r;
}

static bool lower_hex(const char *s, size_t n) {
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* An optional string field: absent or null gives NULL; a string is copied;
 * anything else, a NUL inside or over ARTIFACT_STRING_MAX is refused. */
static int opt_string(const char *where, const struct value *m, const char *key, char **ret,
                      struct strbuf *err) {
        const struct value *v = value_map_get(m, key);
        *ret = NULL;
        if (!v || v->kind == V_NULL)
                return 0;
        if (v->kind != V_STRING || !v->str)
                return fail(err, -EBADMSG, "%s%s: expected a string, got a %s", where, key,
                            value_kind_name(v->kind));
        if (v->len > ARTIFACT_STRING_MAX || memchr(v->str, 0, v->len))
                return fail(err, -EBADMSG, "%s%s: longer than %d bytes or holds a NUL", where, key,
                            ARTIFACT_STRING_MAX);
        *ret = xstrdup(v->str);
        return 0;
}

static int hash_field(const char *where, const struct value *m, const char *key, char *dst,
                      size_t n, struct strbuf *err) {
        _cleanup_free_ char *s = NULL;
        int r = opt_string(where, m, key, &s, err);
        if (r < 0)
                return r;
        if (s && !lower_hex(s, n))
                return fail(err, -EBADMSG, "%s%s: malformed (%zu lowercase hex digits expected)", where,
                            key, n);
        if (s)
                memcpy(dst, s, n + 1);
        return 0;
}

/* A size: an integer written in digits, 0..INT64_MAX. */
static int size_field(const char *where, const struct value *v, uint64_t *ret, struct strbuf *err) {
        if (!v)
                return fail(err, -EBADMSG, "%ssize: missing", where);
        bool digits = v->kind == V_NUMBER && v->str && v->len > 0 && v->len <= 19;
        for (size_t i = 0; digits && i < v->len; i++)
                digits = v->str[i] >= '0' && v->str[i] <= '9';
        if (!digits)
                return fail(err, -EBADMSG, "%ssize: expected a whole number of bytes, got '%s'", where,
                            v->str && v->len <= 64 ? v->str : value_kind_name(v->kind));
        errno = 0;
        unsigned long long n = strtoull(v->str, NULL, 10);
        if (errno || n > INT64_MAX)
                return fail(err, -EBADMSG, "%ssize: %s is out of range", where, v->str);
        *ret = n;
        return 0;
}

static int read_labels(const struct value *lab, struct artifact_set *s, struct strbuf *err) {
        if (!lab || lab->kind == V_NULL)
                return 0;
        if (lab->kind != V_MAP)
                return fail(err, -EBADMSG, "labels: expected a map, got a %s", value_kind_name(lab->kind));
        if (lab->n > ARTIFACT_MAX_LABELS)
                return fail(err, -E2BIG, "labels: more than %d", ARTIFACT_MAX_LABELS);
        for (size_t i = 0; i < lab->n; i++) {
                const struct value *k = lab->keys[i], *v = lab->items[i];
                if (v->kind == V_NULL)
                        continue; /* a label without a value is no label */
                if (!value_is_scalar(v) || !v->str)
                        return fail(err, -EBADMSG, "labels.%s: expected a string, got a %s",
                                    k->len <= 64 ? k->str : "?", value_kind_name(v->kind));
                if (k->len > ARTIFACT_STRING_MAX || v->len > ARTIFACT_STRING_MAX ||
                    memchr(k->str, 0, k->len) || memchr(v->str, 0, v->len))
                        return fail(err, -EBADMSG, "labels: a key or value longer than %d bytes or "
                                    "holding a NUL", ARTIFACT_STRING_MAX);
                artifact_set_label(s, k->str, v->str);
        }
        return 0;
}

static int read_file_entry(const struct value *a, size_t i, struct artifact_set *s,
                           struct strbuf *err) {
        char where[48];
        snprintf(where, sizeof(where), "artifacts[%zu].", i);
        if (a->kind != V_MAP)
                return fail(err, -EBADMSG, "artifacts[%zu]: expected a map, got a %s", i,
                            value_kind_name(a->kind));
        _cleanup_free_ char *file = NULL, *format = NULL;
        int r = opt_string(where, a, "file", &file, err);
        if (r < 0)
                return r;
        if (!file)
                return fail(err, -EBADMSG, "%sfile: missing", where);
        if (!artifact_file_name_ok(file) || streq(file, ARTIFACT_MANIFEST_NAME))
                return fail(err, -EINVAL, "%sfile: '%s' is not a plain file name in the folder",
                            where, file);
        for (size_t k = 0; k < s->nfiles; k++)
                if (streq(s->files[k].file, file))
                        return fail(err, -EBADMSG, "%sfile: '%s' is listed twice", where, file);
        if ((r = opt_string(where, a, "format", &format, err)) < 0)
                return r;
        if (!format)
                return fail(err, -EBADMSG, "%sformat: missing", where);
        uint64_t size = 0;
        if ((r = size_field(where, value_map_get(a, "size"), &size, err)) < 0)
                return r;
        char sha256[65] = "", sha512[129] = "";
        if ((r = hash_field(where, a, "sha256", sha256, 64, err)) < 0 ||
            (r = hash_field(where, a, "sha512", sha512, 128, err)) < 0)
                return r;
        struct artifact_file *f = artifact_set_add(s, file);
        f->format = TAKE_PTR(format);
        f->size = size;
        memcpy(f->sha256, sha256, sizeof(sha256));
        memcpy(f->sha512, sha512, sizeof(sha512));
        return 0;
}

static int parse_doc(const struct value *doc, struct artifact_set *s, struct strbuf *err) {
        if (!doc || doc->kind != V_MAP)
                return fail(err, -EBADMSG, "not a kiln manifest (a JSON object expected)");
        const struct value *sv = value_map_get(doc, "schema_version");
        if (sv && !(sv->kind == V_NUMBER && sv->str && streq(sv->str, "1")))
                return fail(err, -EBADMSG, "schema_version: %s is not 1 (written by a newer kiln?)",
                            sv->str && sv->len <= 64 ? sv->str : value_kind_name(sv->kind));
        int r;
        if ((r = opt_string("", doc, "name", &s->name, err)) < 0 ||
            (r = opt_string("", doc, "id", &s->build_id, err)) < 0 ||
            (r = opt_string("", doc, "arch", &s->arch, err)) < 0 ||
            (r = opt_string("", doc, "role", &s->role, err)) < 0 ||
            (r = opt_string("", doc, "assembly_key", &s->assembly_key, err)) < 0)
                return r;
        if (!s->name)
                return fail(err, -EBADMSG, "name: missing");
        const struct value *tree = value_map_get(doc, "tree");
        if (tree && tree->kind == V_MAP && (r = opt_string("tree.", tree, "key", &s->tree_key, err)) < 0)
                return r;
        if ((r = read_labels(value_map_get(doc, "labels"), s, err)) < 0)
                return r;
        const struct value *arts = value_map_get(doc, "artifacts");
        if (!arts || arts->kind != V_LIST)
                return fail(err, -EBADMSG, "artifacts: %s", arts ? "expected a list" : "missing");
        if (arts->n > ARTIFACT_MAX_FILES)
                return fail(err, -E2BIG, "artifacts: more than %d", ARTIFACT_MAX_FILES);
        s->files = xcalloc(arts->n + 1, sizeof(*s->files));
        for (size_t i = 0; i < arts->n; i++)
                if ((r = read_file_entry(arts->items[i], i, s, err)) < 0)
                        return r;
        return 0;
}

int artifact_set_parse(const char *dir, const char *text, size_t len, struct artifact_set *ret,
                       struct strbuf *err) {
        *ret = (struct artifact_set){.dir = xstrdup(dir)};
        if (len > ARTIFACT_MANIFEST_MAX) {
                artifact_set_done(ret);
                return fail(err, -E2BIG, "larger than %u bytes", ARTIFACT_MANIFEST_MAX);
        }
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, ARTIFACT_MANIFEST_NAME);
        struct source *src = source_new(path, text, len);
        struct diag_list d = {0};
        struct value *doc = NULL;
        int r = yaml_load(src, &d, &doc);
        bool bad = r < 0 || d.nerrors;
        diag_list_done(&d);
        if (bad)
                r = fail(err, -EBADMSG, "not a kiln manifest (not valid JSON)");
        else
                r = parse_doc(doc, ret, err);
        value_free(doc);
        source_free(src);
        if (r < 0)
                artifact_set_done(ret);
        return r;
}

const char *artifact_file_kind(unsigned m) {
        if (S_ISDIR(m))
                return "a directory";
        if (S_ISFIFO(m))
                return "a FIFO";
        if (S_ISSOCK(m))
                return "a socket";
        if (S_ISCHR(m))
                return "a character device";
        if (S_ISBLK(m))
                return "a block device";
        return "not a regular file";
}

/* Every file of s on disk: a regular file of the recorded size. */
static int check_files(const struct artifact_set *s, struct strbuf *err) {
        for (size_t i = 0; i < s->nfiles; i++) {
                const struct artifact_file *f = &s->files[i];
                struct stat st;
                if (stat(f->path, &st) < 0) {
                        int r = -errno;
                        return fail(err, r, "%s: %s", f->path, strerror(-r));
                }
                if (!S_ISREG(st.st_mode))
                        return fail(err, -EINVAL, "%s: is %s, not a regular file", f->path,
                                    artifact_file_kind(st.st_mode));
                if ((uint64_t)st.st_size != f->size)
                        return fail(err, -ESTALE, "%s: %llu bytes, but %llu were recorded (changed "
                                    "since the build? rebuild it)", f->path,
                                    (unsigned long long)st.st_size, (unsigned long long)f->size);
        }
        return 0;
}

int artifact_set_read(const char *dir, struct artifact_set *ret, struct strbuf *err) {
        *ret = (struct artifact_set){0};
        _cleanup_free_ char *mpath = xasprintf("%s/%s", dir, ARTIFACT_MANIFEST_NAME);
        /* Opened without following a FIFO's block, then checked. */
        _cleanup_close_ int fd = open(mpath, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                int r = -errno;
                if (r == -ENOENT)
                        return fail(err, r, "%s: not found (not a kiln output folder? build the "
                                    "image first: kiln build)", mpath);
                return fail(err, r, "%s: %s", mpath, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return fail(err, -EBADMSG, "%s: is %s, not a manifest", mpath, artifact_file_kind(st.st_mode));
        if ((uint64_t)st.st_size > ARTIFACT_MANIFEST_MAX)
                return fail(err, -E2BIG, "%s: larger than %u bytes", mpath, ARTIFACT_MANIFEST_MAX);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file(mpath, ARTIFACT_MANIFEST_MAX, &text, &len);
        if (r < 0)
                return fail(err, r, "%s: %s", mpath, strerror(-r));
        _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
        r = artifact_set_parse(dir, text, len, ret, &why);
        if (r < 0)
                return fail(err, r, "%s: %s", mpath, strbuf_str(&why));
        r = check_files(ret, err); /* its messages name the file */
        if (r < 0) {
                artifact_set_done(ret);
                return r;
        }
        ret->created = (int64_t)st.st_mtim.tv_sec; /* when the build finished */
        return 0;
}

void artifact_set_copy(const struct artifact_set *src, struct artifact_set *ret) {
        *ret = (struct artifact_set){
                .dir = xstrdup_null(src->dir),
                .name = xstrdup_null(src->name),
                .build_id = xstrdup_null(src->build_id),
                .arch = xstrdup_null(src->arch),
                .role = xstrdup_null(src->role),
                .assembly_key = xstrdup_null(src->assembly_key),
                .tree_key = xstrdup_null(src->tree_key),
                .created = src->created,
        };
        for (size_t i = 0; i < src->nlabels; i++)
                artifact_set_label(ret, src->labels[i].key, src->labels[i].value);
        ret->files = xcalloc(src->nfiles + 1, sizeof(*ret->files));
        for (size_t i = 0; i < src->nfiles; i++) {
                struct artifact_file *f = &ret->files[ret->nfiles++];
                *f = src->files[i];
                f->path = xstrdup(src->files[i].path);
                f->file = xstrdup(src->files[i].file);
                f->format = xstrdup_null(src->files[i].format);
        }
}
