/* SPDX-License-Identifier: Apache-2.0 */
#include "image/outputs.h"

#include "base/clock.h"
#include "base/hash.h"
#include "base/json.h"
#include "provision/build.h" /* build_holds_secrets */
#include "os/fs.h"
#include "image/disk.h"
#include "image/format.h"
#include "spec/schema.h"
#include "spec/yaml.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define IMAGE_KEY_FORMAT "kiln-image-v1"

void uuid_random(char out[37]) {
        uint8_t u[16];
        if (getrandom(u, sizeof(u), 0) != sizeof(u)) {
                /* getrandom does not fail for 16 bytes after boot; be safe */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                memcpy(u, &ts, sizeof(ts) < 16 ? sizeof(ts) : 16);
        }
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        uuid_format(u, out);
}

/* One entry of outputs:, normalised. */
struct out_spec {
        const struct format_writer *writer;
        struct format_options fo;
        struct format_image image; /* what the writer knows of the image (fo.image) */
        char *file;   /* file name inside the folder */
};

static void out_specs_free(struct out_spec *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i].file);
        free(v);
}

static char *output_file(const struct spec_build *b, const struct image_output *out) {
        return xasprintf("%s.%s%s", b->name, out->format->extension, compress_suffix(out->compress));
}

int image_boot_output(const struct spec_build *b, char **ret_file) {
        const struct image_outputs *outs = image_outputs_of(b);
        const struct image_output *best = NULL;
        for (size_t i = 0; outs && i < outs->n; i++)
                if ((outs->v[i].format->caps & FORMAT_BOOTABLE) && outs->v[i].compress == COMPRESS_NONE &&
                    (!best || outs->v[i].format->boot_rank > best->format->boot_rank))
                        best = &outs->v[i];
        if (!best)
                return -ENOENT;
        *ret_file = output_file(b, best);
        return 0;
}

char *image_bootable_formats(void) {
        struct strbuf sb = STRBUF_INIT;
        size_t n = 0, k = 0;
        for (size_t i = 0; format_writers[i]; i++)
                n += !!(format_writers[i]->caps & FORMAT_BOOTABLE);
        for (size_t i = 0; format_writers[i]; i++)
                if (format_writers[i]->caps & FORMAT_BOOTABLE)
                        strbuf_addf(&sb, "%s%s", k++ == 0 ? "" : k == n ? " or " : ", ",
                                    format_writers[i]->name);
        return strbuf_detach(&sb);
}

/* What the writers may know about b's image once it is laid out: its
 * source distribution (the nearest ancestor's source:), how it boots, its
 * identity and file times. */
static void image_facts(const struct spec_build *b, const struct disk_layout *L, uint64_t sde,
                        struct format_image *im) {
        const struct spec_build *src = b;
        while (src && !src->source)
                src = src->parent;
        const struct value *type = src ? value_map_get(src->source, "type") : NULL;
        const struct value *suite = src ? value_map_get(src->source, "suite") : NULL;
        im->distribution = type ? type->str : NULL;
        im->release = suite ? suite->str : NULL;
        im->disk_guid = L->disk_guid;
        im->bios = L->bios >= 0;
        im->uefi = L->esp >= 0;
        im->mtime = (int64_t)sde;
}

/* b's outputs: (parsed when the spec was loaded) as writer settings. */
static int parse_outputs(const struct spec_build *b, unsigned threads, bool sha512,
                         struct out_spec **ret, size_t *ret_n, int log_fd) {
        const struct image_outputs *outs = image_outputs_of(b);
        if (!outs) {
                dprintf(log_fd, "kiln: %s: outputs: were not parsed (load the spec with pipeline_load)\n",
                        b->name);
                return -EINVAL;
        }
        size_t n = outs->n;
        struct out_spec *v = xcalloc(n + 1, sizeof(*v));
        for (size_t i = 0; i < n; i++) {
                const struct image_output *o = &outs->v[i];
                v[i].writer = o->format;
                v[i].fo = (struct format_options){
                        .threads = threads,
                        .cluster_compression = o->clusters,
                        .file_compression = o->compress,
                        .sha256 = o->sha256,
                        .sha512 = o->sha512 || sha512,
                };
                v[i].file = output_file(b, o);
                const struct value *entry = b->outputs && b->outputs->kind == V_LIST && i < b->outputs->n
                                                    ? b->outputs->items[i] : NULL;
                v[i].image = (struct format_image){
                        .name = b->name,
                        .file = v[i].file,
                        .arch = b->arch,
                        .options = entry && entry->kind == V_MAP ? entry : NULL,
                };
                for (size_t k = 0; k < i; k++)
                        if (streq(v[k].file, v[i].file)) {
                                dprintf(log_fd, "kiln: two outputs would both be written to %s\n",
                                        v[i].file);
                                out_specs_free(v, i + 1);
                                return -EINVAL;
                        }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static void assembly_key(const struct spec_build *b, const char *tree_key, uint64_t sde,
                         char out[65]) {
        struct strbuf sb = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &sb, false);
        json_begin_object(&w);
        json_key(&w, "format");
        json_string(&w, IMAGE_KEY_FORMAT);
        json_key(&w, "tree");
        json_string(&w, tree_key);
        json_key(&w, "arch");
        json_string(&w, b->arch);
        json_key(&w, "name");
        json_string(&w, b->name);
        json_key(&w, "disk");
        value_write_json(b->disk, &w, false);
        json_key(&w, "outputs");
        value_write_json(b->outputs, &w, false);
        json_key(&w, "source_date_epoch");
        json_int(&w, (int64_t)sde);
        json_end_object(&w);
        hash_sha256_hex(sb.buf, sb.len, out);
        strbuf_free(&sb);
}

/* Reads a JSON file into a value tree (NULL when absent or invalid). The
 * tree's marks point into a source that is freed here: callers read only
 * kinds and strings. */
static struct value *read_json(const char *path) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (read_file(path, 64u << 20, &text, &len) < 0)
                return NULL;
        struct source *src = source_new(path, text, len);
        struct diag_list d = {0};
        struct value *v = NULL;
        if (yaml_load(src, &d, &v) < 0 || d.nerrors) {
                value_free(v);
                v = NULL;
        }
        /* Marks point into src: drop them before freeing it. */
        diag_list_done(&d);
        source_free(src);
        return v;
}

/* The folder's set, read back (artifact_set_read checks every file's size),
 * when it was assembled from the same inputs into as many files. */
static bool up_to_date(const char *dir, const char *key, size_t nouts, struct artifact_set *ret) {
        if (artifact_set_read(dir, ret, NULL) < 0)
                return false;
        if (ret->assembly_key && streq(ret->assembly_key, key) && ret->nfiles == nouts)
                return true;
        artifact_set_done(ret);
        return false;
}

/* Removes leftovers of killed runs: OUTPUT/.<name>.tmp-* */
static void clean_stale(const char *output_dir, const char *name) {
        char **names = NULL;
        if (fs_list(AT_FDCWD, output_dir, &names, NULL) < 0)
                return;
        _cleanup_free_ char *prefix = xasprintf(".%s.tmp-", name);
        for (char **nm = names; *nm; nm++)
                if (startswith(*nm, prefix)) {
                        _cleanup_free_ char *p = xasprintf("%s/%s", output_dir, *nm);
                        rm_rf(p);
                }
        fs_names_free(names);
}

static void guid_text(const uint8_t g[16], struct json_writer *w) {
        char t[37];
        uuid_format(g, t);
        json_string(w, t);
}

/* What artifact_manifest_json asks the image stage for. */
struct manifest_parts {
        const struct spec *s;
        const struct spec_build *b;
        const char *const *layers;
        size_t nlayers;
        const char *record_path;
        const struct disk_layout *L;
        const char *seed;
};

static void manifest_disk(const struct manifest_parts *p, struct json_writer *w) {
        const struct disk_layout *L = p->L;
        json_begin_object(w);
        json_key(w, "size");
        json_int(w, (int64_t)L->size);
        json_key(w, "seed");
        json_string(w, p->seed);
        json_key(w, "guid");
        guid_text(L->disk_guid, w);
        json_key(w, "root_fs");
        json_string(w, L->root_fs);
        json_key(w, "root_fs_uuid");
        json_string(w, L->root_fs_uuid);
        json_key(w, "esp_fs_id");
        json_string(w, L->esp_fs_id);
        json_key(w, "partitions");
        json_begin_array(w);
        for (unsigned i = 0; i < L->nparts; i++) {
                json_begin_object(w);
                json_key(w, "name");
                json_string(w, L->parts[i].name);
                json_key(w, "type_guid");
                guid_text(L->parts[i].type_guid, w);
                json_key(w, "guid");
                guid_text(L->parts[i].part_guid, w);
                json_key(w, "first_lba");
                json_int(w, (int64_t)L->parts[i].first_lba);
                json_key(w, "last_lba");
                json_int(w, (int64_t)L->parts[i].last_lba);
                if (L->parts[i].fs) {
                        json_key(w, "filesystem");
                        json_string(w, L->parts[i].fs);
                        json_key(w, "fs_uuid");
                        json_string(w, L->parts[i].fs_uuid);
                        json_key(w, "mount");
                        json_string(w, L->parts[i].mount);
                }
                json_end_object(w);
        }
        json_end_array(w);
        json_end_object(w);
}

/* What is derived from the inputs, and what still differs between two
 * builds of the same inputs (reproducibility groundwork). */
static void manifest_reproducibility(const struct disk_layout *L, struct json_writer *w) {
        json_begin_object(w);
        json_key(w, "deterministic");
        json_begin_array(w);
        json_string(w, "GPT disk and partition GUIDs (from the seed)");
        json_string(w, "root filesystem UUID and hash seed, ESP volume id (from the seed)");
        json_string(w, "filesystem timestamps (SOURCE_DATE_EPOCH)");
        json_end_array(w);
        json_key(w, "may_differ");
        json_begin_array(w);
        /* Assembling the same tree twice gives bit-identical images (tested);
         * a tree rebuilt from scratch is where differences come from. */
        json_string(w, "the tree itself when it is rebuilt instead of taken from the cache: mmdebstrap "
                       "and package scripts record install times, logs and generated keys");
        json_string(w, "the packages, when the mirror has newer versions than the cached tree had");
        for (unsigned i = 0; i < L->nparts; i++)
                if (L->parts[i].fs && streq(L->parts[i].fs, "xfs")) {
                        json_string(w, "xfs partitions: mkfs.xfs -p gives every inode the time "
                                       "of the assembly");
                        break;
                }
        json_end_array(w);
        json_end_object(w);
}

static void manifest_section(void *userdata, enum artifact_section which, struct json_writer *w) {
        const struct manifest_parts *p = userdata;
        switch (which) {
        case ARTIFACT_SECTION_VARIABLES:
                json_begin_object(w);
                for (size_t i = 0; i < p->s->nvars; i++) {
                        json_key(w, p->s->vars[i].name);
                        if (p->s->vars[i].sensitive)
                                json_string(w, SENSITIVE_PLACEHOLDER);
                        else
                                value_to_json(p->s->vars[i].value, w);
                }
                json_end_object(w);
                break;
        case ARTIFACT_SECTION_LABELS:
                value_to_json(p->b->labels, w);
                break;
        case ARTIFACT_SECTION_LAYERS:
                json_begin_array(w);
                for (size_t i = p->nlayers; i-- > 0;) {
                        const char *l = p->layers[i];
                        const char *e = strstr(l, "/entries/");
                        if (e)
                                json_string_n(w, e + 9, 64);
                        else
                                json_string(w, l);
                }
                json_end_array(w);
                break;
        case ARTIFACT_SECTION_PACKAGES: {
                _cleanup_value_ struct value *rec = p->record_path ? read_json(p->record_path) : NULL;
                value_to_json(value_map_get(rec, "packages"), w);
                break;
        }
        case ARTIFACT_SECTION_DISK:
                manifest_disk(p, w);
                break;
        case ARTIFACT_SECTION_REPRODUCIBILITY:
                manifest_reproducibility(p->L, w);
                break;
        }
}

/* The set's identity: the build's, and its labels as the manifest records
 * them (sensitive ones masked). */
static void set_identity(struct artifact_set *set, const struct spec_build *b, const char *dir,
                         const char *key, const char *tree_key) {
        *set = (struct artifact_set){
                .dir = xstrdup(dir),
                .name = xstrdup(b->name),
                .build_id = xstrdup_null(b->id),
                .arch = xstrdup_null(b->arch),
                .role = xstrdup_null(b->role),
                .assembly_key = xstrdup(key),
                .tree_key = xstrdup_null(tree_key),
        };
        const struct value *lab = b->labels;
        for (size_t k = 0; lab && lab->kind == V_MAP && k < lab->n; k++)
                if (lab->items[k]->kind != V_NULL && value_is_scalar(lab->items[k]) && lab->items[k]->str)
                        artifact_set_label(set, lab->keys[k]->str,
                                           lab->items[k]->sensitive ? SENSITIVE_PLACEHOLDER
                                                                    : lab->items[k]->str);
}

void output_result_done(struct output_result *r) {
        artifact_set_done(&r->set);
        *r = (struct output_result){0};
}

int outputs_build(const struct spec *s, const struct spec_build *b, const char *const *layers,
                  size_t nlayers, const char *tree_key, const char *record_path,
                  const struct output_options *o, struct output_result *ret) {
        uint64_t t0 = now_ms();
        *ret = (struct output_result){0};
        if (!b->outputs || b->outputs->kind != V_LIST || b->outputs->n == 0)
                return 0;
        struct out_spec *outs = NULL;
        size_t nouts = 0;
        int r = parse_outputs(b, o->threads, o->sha512, &outs, &nouts, o->log_fd);
        if (r < 0)
                return r;
        char key[65];
        assembly_key(b, tree_key, o->source_date_epoch, key);
        _cleanup_free_ char *dir = xasprintf("%s/%s", o->output_dir, b->name);
        if (!o->force && up_to_date(dir, key, nouts, &ret->set)) {
                ret->up_to_date = true;
                /* made by a kiln that left them world-readable */
                for (size_t i = 0; build_holds_secrets(b) && i < ret->set.nfiles; i++)
                        (void)chmod(ret->set.files[i].path, 0600);
                ret->elapsed_ms = now_ms() - t0;
                out_specs_free(outs, nouts);
                return 0;
        }
        set_identity(&ret->set, b, dir, key, tree_key);

        /* Disk settings (parsed when the spec was loaded). */
        static const struct image_disk no_disk = {.size = DISK_DEFAULT_SIZE};
        const struct image_disk *disk = image_disk_of(b);
        if (!disk && b->disk) {
                dprintf(o->log_fd, "kiln: %s: disk: was not parsed (load the spec with pipeline_load)\n",
                        b->name);
                out_specs_free(outs, nouts);
                return -EINVAL;
        }
        disk = disk ? disk : &no_disk;
        uint64_t size = disk->size;
        const char *seed = disk->seed ? disk->seed : tree_key;
        struct disk_options dopt = {
                .size = size,
                .arch = b->arch,
                .seed = seed,
                .source_date_epoch = o->source_date_epoch,
                .kernel_cmdline_extra = disk->kernel_cmdline,
                .root_fs = disk->root_fs,
                .parts = disk->parts,
                .nparts = disk->nparts,
                .layers = layers,
                .nlayers = nlayers,
                .scratch_dir = o->scratch_dir,
                .log_fd = o->log_fd,
        };
        struct disk_layout L;
        r = disk_plan(&dopt, &L);
        if (r < 0) {
                dprintf(o->log_fd, "kiln: cannot lay out a %llu-byte disk: %s\n",
                        (unsigned long long)size, strerror(-r));
                out_specs_free(outs, nouts);
                return r;
        }
        if ((r = mkdir_p(o->output_dir, 0755)) < 0 || (r = mkdir_p(o->scratch_dir, 0755)) < 0) {
                out_specs_free(outs, nouts);
                return r;
        }
        clean_stale(o->output_dir, b->name);
        _cleanup_free_ char *tmpl = xasprintf("%s/.%s.tmp-XXXXXX", o->output_dir, b->name);
        if (!mkdtemp(tmpl)) {
                r = -errno;
                out_specs_free(outs, nouts);
                return r;
        }
        _cleanup_free_ char *raw = xasprintf("%s/disk.raw", o->scratch_dir);
        unlink(raw);
        int raw_fd = open(raw, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (raw_fd < 0) {
                r = -errno;
                goto fail;
        }
        uint64_t a0 = now_ms();
        r = disk_assemble(&dopt, &L, raw_fd);
        ret->assemble_ms = now_ms() - a0;
        if (r < 0)
                goto fail;
        /* An image that may hold a secret file is its owner's only (the
         * store keeps its blobs as private); others follow the umask. */
        mode_t image_mode = build_holds_secrets(b) ? 0600 : 0644;
        for (size_t i = 0; i < nouts; i++) {
                image_facts(b, &L, o->source_date_epoch, &outs[i].image);
                outs[i].fo.image = &outs[i].image;
                _cleanup_free_ char *tp = xasprintf("%s/%s", tmpl, outs[i].file);
                _cleanup_close_ int fd = open(tp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, image_mode);
                if (fd < 0) {
                        r = -errno;
                        goto fail;
                }
                struct format_result fr = {0};
                uint64_t w0 = now_ms();
                r = outs[i].writer->write(raw_fd, L.size, fd, &outs[i].fo, &fr);
                if (r < 0) {
                        if (r == -E2BIG && outs[i].writer->max_size_why)
                                dprintf(o->log_fd, "kiln: writing %s: the %llu-byte image is over the %s limit of %s\n",
                                        outs[i].file, (unsigned long long)L.size, outs[i].writer->name,
                                        outs[i].writer->max_size_why);
                        else
                                dprintf(o->log_fd, "kiln: writing %s: %s\n", outs[i].file, strerror(-r));
                        goto fail;
                }
                if (fsync(fd) < 0) {
                        r = -errno;
                        goto fail;
                }
                struct artifact_file *a = artifact_set_add(&ret->set, outs[i].file);
                a->format = xstrdup(outs[i].writer->name);
                a->size = fr.bytes_written;
                memcpy(a->sha256, fr.sha256, sizeof(a->sha256));
                memcpy(a->sha512, fr.sha512, sizeof(a->sha512));
                a->elapsed_ms = now_ms() - w0;
        }
        close(raw_fd);
        raw_fd = -1;
        unlink(raw);
        {
                /* Checksum files, sha256sum -c compatible. */
                struct strbuf s256 = STRBUF_INIT, s512 = STRBUF_INIT;
                for (size_t i = 0; i < ret->set.nfiles; i++) {
                        const struct artifact_file *f = &ret->set.files[i];
                        if (f->sha256[0])
                                strbuf_addf(&s256, "%s  %s\n", f->sha256, f->file);
                        if (f->sha512[0])
                                strbuf_addf(&s512, "%s  %s\n", f->sha512, f->file);
                }
                _cleanup_free_ char *p256 = xasprintf("%s/SHA256SUMS", tmpl);
                _cleanup_free_ char *p512 = xasprintf("%s/SHA512SUMS", tmpl);
                r = write_file(p256, strbuf_str(&s256), s256.len, 0644, WRITE_FILE_SYNC);
                if (r == 0 && s512.len)
                        r = write_file(p512, s512.buf, s512.len, 0644, WRITE_FILE_SYNC);
                strbuf_free(&s256);
                strbuf_free(&s512);
                if (r < 0)
                        goto fail;
                struct manifest_parts parts = {.s = s, .b = b, .layers = layers, .nlayers = nlayers,
                                               .record_path = record_path, .L = &L, .seed = seed};
                struct artifact_manifest_info info = {
                        .spec_path = s->path, .run_uuid = o->run_uuid,
                        .source_date_epoch = o->source_date_epoch,
                        .section = manifest_section, .userdata = &parts,
                };
                _cleanup_free_ char *man = artifact_manifest_json(&ret->set, &info);
                _cleanup_free_ char *pm = xasprintf("%s/" ARTIFACT_MANIFEST_NAME, tmpl);
                r = write_file(pm, man, strlen(man), 0644, WRITE_FILE_SYNC);
                if (r < 0)
                        goto fail;
        }
        /* Into place: the old manifest goes first, the new one comes last. */
        if ((r = mkdir_p(dir, 0755)) < 0)
                goto fail;
        {
                _cleanup_free_ char *old = xasprintf("%s/" ARTIFACT_MANIFEST_NAME, dir);
                if (unlink(old) < 0 && errno != ENOENT) {
                        r = -errno;
                        goto fail;
                }
                const char *order[] = {"SHA256SUMS", "SHA512SUMS", ARTIFACT_MANIFEST_NAME};
                for (size_t i = 0; i < nouts; i++) {
                        _cleanup_free_ char *from = xasprintf("%s/%s", tmpl, outs[i].file);
                        _cleanup_free_ char *to = xasprintf("%s/%s", dir, outs[i].file);
                        if (rename(from, to) < 0) {
                                r = -errno;
                                goto fail;
                        }
                }
                for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
                        _cleanup_free_ char *from = xasprintf("%s/%s", tmpl, order[i]);
                        _cleanup_free_ char *to = xasprintf("%s/%s", dir, order[i]);
                        if (access(from, F_OK) < 0) {
                                if (i == 1)
                                        unlink(to); /* no SHA512SUMS this time */
                                continue;
                        }
                        if (rename(from, to) < 0) {
                                r = -errno;
                                goto fail;
                        }
                }
        }
        rmdir(tmpl);
        out_specs_free(outs, nouts);
        {
                /* created: when the manifest was written, as a reader sees it */
                _cleanup_free_ char *pm = xasprintf("%s/" ARTIFACT_MANIFEST_NAME, dir);
                struct stat st;
                ret->set.created = stat(pm, &st) == 0 ? (int64_t)st.st_mtim.tv_sec : (int64_t)time(NULL);
        }
        ret->elapsed_ms = now_ms() - t0;
        return 0;
fail:
        if (raw_fd >= 0)
                close(raw_fd);
        unlink(raw);
        rm_rf(tmpl);
        out_specs_free(outs, nouts);
        artifact_set_done(&ret->set);
        return r < 0 ? r : -EIO;
}

int packer_manifest_update(const char *output_dir, const char *run_uuid,
                           const struct spec_build *const *builds,
                           const struct output_result *results, size_t n, uint64_t build_time) {
        _cleanup_free_ char *path = xasprintf("%s/packer-manifest.json", output_dir);
        _cleanup_value_ struct value *old = read_json(path);
        struct strbuf sb = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &sb, true);
        json_begin_object(&w);
        json_key(&w, "builds");
        json_begin_array(&w);
        const struct value *ob = value_map_get(old, "builds");
        for (size_t i = 0; ob && ob->kind == V_LIST && i < ob->n; i++)
                value_to_json(ob->items[i], &w);
        for (size_t i = 0; i < n; i++) {
                const struct artifact_set *set = &results[i].set;
                if (!set->nfiles)
                        continue;
                json_begin_object(&w);
                json_key(&w, "name");
                json_string(&w, builds[i]->name);
                json_key(&w, "builder_type");
                json_string(&w, "kiln");
                json_key(&w, "build_time");
                json_int(&w, (int64_t)build_time);
                json_key(&w, "files");
                json_begin_array(&w);
                for (size_t k = 0; k < set->nfiles; k++) {
                        json_begin_object(&w);
                        json_key(&w, "name");
                        json_string(&w, set->files[k].path);
                        json_key(&w, "size");
                        json_int(&w, (int64_t)set->files[k].size);
                        json_end_object(&w);
                }
                json_end_array(&w);
                json_key(&w, "artifact_id");
                json_string(&w, set->files[0].path);
                json_key(&w, "packer_run_uuid");
                json_string(&w, run_uuid);
                json_key(&w, "custom_data");
                json_begin_object(&w);
                const struct value *lab = builds[i]->labels;
                for (size_t k = 0; lab && lab->kind == V_MAP && k < lab->n; k++) {
                        json_key(&w, lab->keys[k]->str);
                        json_string(&w, lab->items[k]->sensitive ? SENSITIVE_PLACEHOLDER
                                                                 : lab->items[k]->str);
                }
                json_key(&w, "kiln_manifest");
                _cleanup_free_ char *km = xasprintf("%s/" ARTIFACT_MANIFEST_NAME, set->dir);
                json_string(&w, km);
                json_end_object(&w);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_key(&w, "last_run_uuid");
        json_string(&w, run_uuid);
        json_end_object(&w);
        strbuf_addc(&sb, '\n');
        _cleanup_free_ char *tmp = xasprintf("%s/.packer-manifest.json.tmp", output_dir);
        int r = write_file(tmp, sb.buf, sb.len, 0644, WRITE_FILE_SYNC);
        strbuf_free(&sb);
        if (r < 0)
                return r;
        return rename(tmp, path) < 0 ? -errno : 0;
}
