/* SPDX-License-Identifier: Apache-2.0 */
/*
 * section.c — the image engine's spec sections (spec/section.h): `disk:`
 * and `outputs:`, validated where the spec layer evaluates them and parsed
 * into struct image_disk / struct image_outputs (outputs.h) for the builds
 * that run. Every rule is the image engine's own: the disk limits come from
 * disk.h (the same functions disk_plan's guards use), the output formats,
 * their options and what each can do from the format table (format.h).
 */
#include "image/outputs.h"

#include "image/disk.h"
#include "image/format.h"
#include "spec/schema.h"

#define MIB (1024ull * 1024)
#define DISK_GPT_OVERHEAD (2 * DISK_ALIGN) /* 1 MiB before the first partition, 1 after the last */

/* ---- disk: ---------------------------------------------------------------- */

static const char *const disk_filesystems[] = {"ext4", "xfs", NULL};

static const struct field partition_fields[] = {
        {"type", FT_STRING, F_REQUIRED, NULL, disk_part_type_names, "bios, esp, root or linux (data)"},
        {"size", FT_SIZE, 0, NULL, NULL, "bios 1M, esp 64M by default; root/linux: the rest"},
        {"filesystem", FT_STRING, 0, NULL, disk_filesystems, "root/linux: ext4 (default) or xfs"},
        {"mount", FT_ABS_PATH, 0, NULL, NULL, "linux: where it is mounted, filled from that directory"},
        {"label", FT_STRING, 0, NULL, NULL, "GPT name and filesystem label"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static const struct field disk_fields[] = {
        {"size", FT_SIZE, 0, NULL, NULL, "disk size (default 2G); the root partition fills it"},
        {"filesystem", FT_STRING, 0, NULL, disk_filesystems, "root filesystem (ext4 or xfs)"},
        {"seed", FT_STRING, 0, NULL, NULL, "UUIDs derive from this (default: the tree's cache key)"},
        {"kernel_cmdline", FT_STRING, 0, NULL, NULL, "appended to root=... console=tty0 console=ttyS0"},
        {"partitions", FT_LIST, 0, NULL, NULL, "partition list (default: bios 1M, esp 64M, root)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

/* Rounds up to whole MiB; v <= DISK_MAX_SIZE, so this cannot wrap. */
static uint64_t mib_up(uint64_t v) { return (v + MIB - 1) / MIB * MIB; }

/* Parses a disk or partition size; false (reported, or left to the schema
 * check that reports it) when it is not a size or larger than a disk can
 * be — the arithmetic below then never sees more than DISK_MAX_SIZE. */
static bool disk_size_ok(const struct value *v, const char *what, const char *key,
                         struct diag_list *d, uint64_t *ret) {
        uint64_t n;
        if (parse_size(v->str, &n) < 0)
                return false; /* reported by schema_check */
        if (n > DISK_MAX_SIZE) {
                struct diag *dg = diag_error(d, &v->mark, value_span(v),
                                             "%s: disk: %s: %s is larger than a disk can be "
                                             "(256 TiB, limit SPEC_MAX_DISK_SIZE)", /* the name users know */
                                             what, key, value_shown(v));
                diag_hint(dg, "sizes are bytes with an optional unit: 512M, 4G, 2T");
                return false;
        }
        *ret = n;
        return true;
}

static void disk_err(struct diag_list *d, const struct value *at, const char *hint,
                     const char *what, const char *fmt, ...) _printf_(5, 6);
static void disk_err(struct diag_list *d, const struct value *at, const char *hint,
                     const char *what, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        va_end(ap);
        struct diag *dg = diag_error(d, &at->mark, value_span(at), "%s: disk: %s", what, msg);
        if (hint)
                diag_hint(dg, "%s", hint);
}

/* The semantic rules of disk: (schema_check did keys and types). */
static void check_disk(const struct value *disk, const char *what, struct diag_list *d) {
        if (!disk || disk->invalid || disk->kind != V_MAP)
                return;
        const struct value *list = value_map_get(disk, "partitions");
        const struct value *dsize = value_map_get(disk, "size");
        const struct value *root_fs = value_map_get(disk, "filesystem");
        uint64_t disk_size = DISK_DEFAULT_SIZE;
        if (dsize && dsize->str && !disk_size_ok(dsize, what, "size", d, &disk_size))
                return; /* reported */
        disk_size = mib_up(disk_size);
        if (!list && dsize && dsize->str) {
                /* the default layout: bios 1M, esp 64M, the root */
                bool xfs = root_fs && root_fs->str && streq(root_fs->str, "xfs");
                uint64_t need = DISK_GPT_OVERHEAD + DISK_BIOS_SIZE + DISK_ESP_SIZE +
                                disk_part_min_size(DISK_PT_ROOT, xfs ? "xfs" : NULL);
                if (disk_size < need)
                        disk_err(d, dsize, NULL, what,
                                 "size: %s is too small: the BIOS boot partition, the ESP and %s root need %llu MiB",
                                 dsize->str, xfs ? "an xfs" : "the smallest", (unsigned long long)(need / MIB));
        }
        if (!list || list->invalid || list->kind != V_LIST)
                return;
        const struct value *first[DISK_PT_COUNT] = {NULL}, *rest = NULL, *mounts[DISK_MAX_PARTS] = {NULL},
                           *labels[DISK_MAX_PARTS] = {NULL};
        size_t nmounts = 0, nlabels = 0;
        uint64_t fixed = 0, rest_min = 0;
        bool ok = true;
        _cleanup_free_ char *pw = xasprintf("%s: disk: partitions", what);

        if (list->n == 0 || list->n > DISK_MAX_PARTS) {
                disk_err(d, list, "e.g. partitions: [{type: bios}, {type: esp}, {type: root}]", what,
                         "partitions: %s", list->n ? "more than 16 partitions" : "the list is empty");
                return;
        }
        for (size_t i = 0; i < list->n; i++) {
                const struct value *p = list->items[i];
                if (p->invalid)
                        continue;
                if (p->kind != V_MAP) {
                        disk_err(d, p, "e.g. - {type: linux, mount: /srv, size: 10G}", what,
                                 "partitions: item %zu must be a map, not a %s", i + 1,
                                 value_kind_name(p->kind));
                        ok = false;
                        continue;
                }
                if (schema_check(p, partition_fields, pw, d)) {
                        ok = false;
                        continue;
                }
                const struct value *type = value_map_get(p, "type"), *size = value_map_get(p, "size"),
                                   *fs = value_map_get(p, "filesystem"),
                                   *mount = value_map_get(p, "mount"),
                                   *label = value_map_get(p, "label");
                size_t t = 0;
                while (disk_part_type_names[t] && !streq(disk_part_type_names[t], type->str))
                        t++;
                bool data = t == DISK_PT_LINUX, root = t == DISK_PT_ROOT;
                if (first[t] && !data) {
                        disk_err(d, type, NULL, what, "partitions: a second %s partition (the first is at line %u)",
                                 type->str, first[t]->mark.line);
                        ok = false;
                }
                if (!first[t])
                        first[t] = type;
                if (fs && !root && !data) {
                        disk_err(d, fs, t == DISK_PT_ESP ? "the ESP is always FAT32" : "the BIOS boot partition holds GRUB's core image, no filesystem",
                                 what, "partitions: filesystem: the %s partition has no filesystem to choose",
                                 type->str);
                        ok = false;
                }
                if (mount && !data) {
                        disk_err(d, mount, root ? "the root is mounted at /" : t == DISK_PT_ESP ? "the ESP is mounted at /boot/efi" : NULL,
                                 what, "partitions: mount: only linux (data) partitions take a mount point");
                        ok = false;
                }
                if (data && !mount) {
                        disk_err(d, type, "e.g. {type: linux, mount: /var/lib/containers, size: 10G}",
                                 what, "partitions: a linux partition needs mount: (the directory it holds)");
                        ok = false;
                }
                if (root && fs && root_fs && root_fs->str && !streq(fs->str, root_fs->str)) {
                        disk_err(d, fs, NULL, what,
                                 "partitions: the root's filesystem '%s' contradicts disk.filesystem '%s' (line %u)",
                                 fs->str, root_fs->str, root_fs->mark.line);
                        ok = false;
                }
                const char *fsname = fs ? fs->str : root && root_fs && root_fs->str ? root_fs->str : "ext4";
                bool xfs = (root || data) && streq(fsname, "xfs");
                if (data && mount && mount->str && mount->str[0] == '/') {
                        const char *why = disk_mount_problem(mount->str);
                        if (why) {
                                disk_err(d, mount, NULL, what, "partitions: mount: '%s' %s", mount->str, why);
                                ok = false;
                        }
                        for (size_t k = 0; k < nmounts && !why; k++) {
                                const char *o = mounts[k]->str, *m = mount->str;
                                size_t a = strlen(m), b = strlen(o);
                                if (strncmp(m, o, a < b ? a : b) == 0 &&
                                    (a == b || (a < b ? o[a] : m[b]) == '/')) {
                                        disk_err(d, mount, "give each data partition its own directory, not one inside another",
                                                 what, "partitions: mount: '%s' %s '%s' (line %u)", m,
                                                 a == b ? "is already the mount point of" : "nests with", o,
                                                 mounts[k]->mark.line);
                                        ok = false;
                                        break;
                                }
                        }
                        mounts[nmounts++] = mount;
                }
                if (label && label->str) {
                        size_t max = disk_label_max(t, xfs ? "xfs" : NULL), n = strlen(label->str);
                        bool chars = n > 0 && strspn(label->str, DISK_LABEL_CHARS) == n;
                        if (!chars || n > max) {
                                disk_err(d, label, NULL, what,
                                         "partitions: label: '%s' must be 1 to %zu characters (%s) of letters, digits, '.', '_' and '-'",
                                         label->str, max, t == DISK_PT_ESP ? "FAT" : xfs ? "xfs" : "ext4");
                                ok = false;
                        }
                        for (size_t k = 0; k < nlabels; k++)
                                if (streq(labels[k]->str, label->str)) {
                                        disk_err(d, label, NULL, what, "partitions: label: '%s' is already used (line %u)",
                                                 label->str, labels[k]->mark.line);
                                        ok = false;
                                }
                        labels[nlabels++] = label;
                }
                /* sizes */
                uint64_t min = disk_part_min_size(t, xfs ? "xfs" : NULL);
                uint64_t bytes = 0;
                if (size && size->str && !disk_size_ok(size, what, "partitions: size", d, &bytes)) {
                        ok = false;
                        continue; /* reported */
                }
                if (!size && t <= DISK_PT_ESP)
                        bytes = t == DISK_PT_BIOS ? DISK_BIOS_SIZE : DISK_ESP_SIZE;
                bytes = mib_up(bytes);
                if (!size && !bytes) {
                        if (rest) {
                                disk_err(d, p, "give all but one of them a size:", what,
                                         "partitions: more than one partition takes the rest of the disk (the other is at line %u)",
                                         rest->mark.line);
                                ok = false;
                        }
                        rest = p;
                        rest_min = min;
                        continue;
                }
                if (bytes < min) {
                        const char *hint = t == DISK_PT_ESP ? "an ESP is FAT32 (UEFI expects it on a disk), which needs at least 65525 clusters: 33M or more"
                                           : xfs ? "mkfs.xfs makes no filesystem below 300 MiB" : NULL;
                        disk_err(d, size, hint, what, "partitions: size: %s is too small for %s (at least %llu MiB)",
                                 size->str, t == DISK_PT_ESP ? "an ESP" : t == DISK_PT_BIOS ? "a BIOS boot partition" : xfs ? "xfs" : "ext4",
                                 (unsigned long long)(min / MIB));
                        ok = false;
                }
                /* At most DISK_MAX_PARTS sizes of at most DISK_MAX_SIZE each:
                 * cannot wrap, but size arithmetic is checked on principle. */
                if (__builtin_add_overflow(fixed, bytes, &fixed))
                        fixed = UINT64_MAX;
        }
        if (!ok)
                return;
        if (!first[2])
                disk_err(d, list, "add {type: root} (it takes the rest of the disk without a size:)",
                         what, "partitions: no root partition");
        else if (!first[0] && !first[1])
                disk_err(d, list, "add {type: bios} (legacy BIOS boot) and/or {type: esp} (UEFI boot)",
                         what, "partitions: neither a BIOS boot partition nor an ESP: the disk could not boot");
        const struct value *at = dsize ? dsize : list;
        uint64_t need;
        if (__builtin_add_overflow(fixed, DISK_GPT_OVERHEAD + rest_min, &need))
                need = UINT64_MAX;
        if (need > disk_size)
                disk_err(d, at, "make the disk larger or the partitions smaller", what,
                         "the partitions need %llu MiB%s, plus 2 MiB for the partition tables, but the disk is %llu MiB",
                         (unsigned long long)((fixed + rest_min) / MIB),
                         rest ? " (counting the smallest the one without a size can be)" : "",
                         (unsigned long long)(disk_size / MIB));
}


static void disk_validate(struct value *v, const struct spec_section_ctx *ctx, struct diag_list *d) {
        static const struct field disk_field = {"disk", FT_OBJECT, 0, disk_fields, NULL, NULL};
        schema_check_value(v, &disk_field, ctx->what, d);
        check_disk(v, ctx->what, d);
}

static void image_disk_free(void *p) {
        struct image_disk *disk = p;
        if (disk)
                free(disk->parts);
        free(disk);
}

static const char *str_of(const struct value *map, const char *key) {
        const struct value *v = value_map_get(map, key);
        return v ? v->str : NULL; /* numbers too, as their text */
}

/* Validated already: anything that does not parse here was reported. */
static int disk_parse(const struct value *v, const struct spec_section_ctx *ctx, struct diag_list *d,
                      void **ret) {
        if (v->invalid || v->kind != V_MAP)
                return -EINVAL;
        struct image_disk *disk = xcalloc(1, sizeof(*disk));
        disk->size = DISK_DEFAULT_SIZE;
        const char *size = str_of(v, "size");
        struct disk_options o = {0};
        if ((size && parse_size(size, &disk->size) < 0) ||
            disk_options_from_spec(v, &o, &disk->parts) < 0) {
                image_disk_free(disk);
                return -EINVAL;
        }
        disk->nparts = o.nparts;
        disk->root_fs = o.root_fs;
        disk->seed = str_of(v, "seed");
        disk->kernel_cmdline = str_of(v, "kernel_cmdline");
        *ret = disk;
        return 0;
}

const struct spec_section image_disk_section = {
        .key = "disk",
        .validate = disk_validate,
        .parse = disk_parse,
        .free_parsed = image_disk_free,
};

const struct image_disk *image_disk_of(const struct spec_build *b) {
        return spec_build_section(b, &image_disk_section);
}

/* ---- outputs: --------------------------------------------------------------- */

#define MAX_FIELDS 32

static const char *const file_compressions[] = {"none", "zstd", "xz", "gzip", NULL};
static const char *const checksum_kinds[] = {"sha256", "sha512", NULL};

/* The keys an outputs: map takes: format and compress, every format's own
 * options (each once), checksums. names[] holds the formats' names. */
static void output_fields(struct field *f, const char **names) {
        size_t n = 0, k = 0;
        for (; format_writers[k] && k < MAX_FIELDS - 1; k++)
                names[k] = format_writers[k]->name;
        names[k] = NULL;
        f[n++] = (struct field){"format", FT_STRING, F_REQUIRED, NULL, names, "the format's name"};
        f[n++] = (struct field){"compress", FT_STRING, 0, NULL, file_compressions,
                                "compress the whole file: zstd, xz, gzip"};
        for (size_t i = 0; format_writers[i]; i++)
                for (const struct format_option *o = format_writers[i]->options; o && o->field.key; o++) {
                        bool dup = false;
                        for (size_t j = 0; j < n; j++)
                                dup = dup || streq(f[j].key, o->field.key);
                        if (!dup && n < MAX_FIELDS - 2)
                                f[n++] = o->field;
                }
        f[n++] = (struct field){"checksums", FT_STRING_LIST, 0, NULL, NULL, "sha256 (default), sha512"};
        f[n] = (struct field){NULL, 0, 0, NULL, NULL, NULL};
}

static const struct format_option *format_option_find(const struct format_writer *w, const char *key) {
        for (const struct format_option *o = w ? w->options : NULL; o && o->field.key; o++)
                if (streq(o->field.key, key))
                        return o;
        return NULL;
}

/* A format's own option given to a format that does not take it. */
static void check_foreign_options(const struct value *o, const char *ow, struct diag_list *d) {
        const struct value *f = value_map_get(o, "format");
        const struct format_writer *w = f && f->str ? format_find(f->str) : NULL;
        if (!w)
                return;
        for (size_t i = 0; i < o->n; i++) {
                const char *key = o->keys[i]->str;
                const struct value *v = o->items[i];
                if (format_option_find(w, key))
                        continue;
                /* the formats that take it, for the message */
                struct strbuf who = STRBUF_INIT;
                const struct format_option *opt = NULL;
                for (size_t k = 0; format_writers[k]; k++) {
                        const struct format_option *fo = format_option_find(format_writers[k], key);
                        if (!fo)
                                continue;
                        strbuf_addf(&who, "%s%s", who.len ? " or " : "", format_writers[k]->name);
                        opt = fo;
                }
                if (opt && !(opt->off && v->str && streq(v->str, opt->off)))
                        diag_error(d, &v->mark, value_span(v), "%s: %s: only %s %s", ow, key,
                                   strbuf_str(&who), opt->what);
                strbuf_free(&who);
        }
        const struct value *c = value_map_get(o, "compress");
        if (c && c->str && !streq(c->str, "none") && !(w->caps & FORMAT_COMPRESSIBLE))
                diag_error(d, &c->mark, value_span(c), "%s: compress: %s is not compressed as a whole file",
                           ow, w->name);
}

static void check_outputs(const struct value *v, const char *what, struct diag_list *d) {
        struct field fields[MAX_FIELDS];
        const char *names[MAX_FIELDS];
        output_fields(fields, names);
        if (!v || v->invalid || v->kind != V_LIST)
                return;
        _cleanup_free_ char *ow = xasprintf("%s: outputs", what);
        struct field fmt = {"format", FT_STRING, 0, NULL, names, NULL};
        for (size_t i = 0; i < v->n; i++) {
                const struct value *o = v->items[i];
                if (o->invalid)
                        continue;
                if (o->kind == V_STRING) {
                        schema_check_value(o, &fmt, ow, d);
                        continue;
                }
                if (o->kind == V_MAP) {
                        if (schema_check(o, fields, ow, d) == 0) {
                                check_foreign_options(o, ow, d);
                                const struct value *cs = value_map_get(o, "checksums");
                                struct field ck = {"checksums", FT_STRING, 0, NULL, checksum_kinds, NULL};
                                for (size_t k = 0; cs && cs->kind == V_LIST && k < cs->n; k++)
                                        schema_check_value(cs->items[k], &ck, ow, d);
                        }
                        continue;
                }
                struct diag *dg = diag_error(d, &o->mark, 1,
                                             "%s: outputs: item %zu must be a format name or a map, not a %s",
                                             what, i + 1, value_kind_name(o->kind));
                diag_hint(dg, "e.g. outputs: [raw, { format: qcow2, clusters: zstd }]");
        }
}


/* A format whose limit (format_writer.max_size) the disk's size is over:
 * reported at the format's name, with the limit. */
static void check_size_limits(const struct value *v, const struct spec_section_ctx *ctx,
                              struct diag_list *d) {
        const struct value *disk = ctx->build ? ctx->build->disk : NULL;
        const struct value *ds = disk && disk->kind == V_MAP ? value_map_get(disk, "size") : NULL;
        uint64_t size = DISK_DEFAULT_SIZE;
        if (!v || v->invalid || v->kind != V_LIST || (ds && (!ds->str || parse_size(ds->str, &size) < 0)))
                return;
        size = mib_up(size < DISK_MAX_SIZE ? size : DISK_MAX_SIZE);
        for (size_t i = 0; i < v->n; i++) {
                const struct value *o = v->items[i];
                const struct value *f = o->kind == V_MAP ? value_map_get(o, "format") : o;
                const struct format_writer *w = f && f->str ? format_find(f->str) : NULL;
                if (!w || !w->max_size || size <= w->max_size)
                        continue;
                struct diag *dg = diag_error(d, &f->mark, value_span(f),
                                             "%s: outputs: %s: the disk (%s) is larger than %s can hold: %s",
                                             ctx->what, w->name, ds ? ds->str : "the default size", w->name,
                                             w->max_size_why);
                diag_hint(dg, "make disk: size: smaller, or write another format");
        }
}

static void outputs_validate(struct value *v, const struct spec_section_ctx *ctx, struct diag_list *d) {
        static const struct field outputs_field = {"outputs", FT_LIST, 0, NULL, NULL, NULL};
        schema_check_value(v, &outputs_field, ctx->what, d);
        check_outputs(v, ctx->what, d);
        check_size_limits(v, ctx, d);
}

static void image_outputs_free(void *p) {
        struct image_outputs *outs = p;
        if (outs)
                free(outs->v);
        free(outs);
}

static int outputs_parse(const struct value *v, const struct spec_section_ctx *ctx,
                         struct diag_list *d, void **ret) {
        if (v->invalid || v->kind != V_LIST)
                return -EINVAL;
        struct image_outputs *outs = xcalloc(1, sizeof(*outs));
        outs->v = xcalloc(v->n + 1, sizeof(*outs->v));
        for (size_t i = 0; i < v->n; i++) {
                const struct value *o = v->items[i];
                struct image_output *out = &outs->v[outs->n++];
                const char *fmt = o->kind == V_STRING ? o->str : str_of(o, "format");
                out->format = fmt ? format_find(fmt) : NULL;
                out->sha256 = true;
                const char *c = str_of(o, "compress"), *cl = str_of(o, "clusters");
                if (!out->format || o->invalid || (c && compress_parse(c, &out->compress) < 0) ||
                    (cl && compress_parse(cl, &out->clusters) < 0)) {
                        image_outputs_free(outs);
                        return -EINVAL;
                }
                const struct value *cs = value_map_get(o, "checksums");
                if (cs && cs->kind == V_LIST) {
                        out->sha256 = false;
                        for (size_t k = 0; k < cs->n; k++) {
                                out->sha256 |= cs->items[k]->str && streq(cs->items[k]->str, "sha256");
                                out->sha512 |= cs->items[k]->str && streq(cs->items[k]->str, "sha512");
                        }
                }
        }
        *ret = outs;
        return 0;
}

const struct spec_section image_outputs_section = {
        .key = "outputs",
        .validate = outputs_validate,
        .parse = outputs_parse,
        .free_parsed = image_outputs_free,
};

const struct image_outputs *image_outputs_of(const struct spec_build *b) {
        return spec_build_section(b, &image_outputs_section);
}
