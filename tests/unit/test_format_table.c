/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_format_table.c — the output format table is the one place a format
 * is declared (image/format.h). Every driver in it, whatever it is, must
 * have a name, an extension and a probe that picks out its own output
 * among every driver's output; the spec's outputs: schema, the file-name
 * guess and the boot-check choice must follow the table without naming a
 * format. A new format is checked here by adding its table line.
 */
#include "harness.h"

#include "image/format.h"
#include "image/outputs.h"
#include "pipeline/pipeline.h"

#include <fcntl.h>
#include <sys/stat.h>

#define MiB (1024ull * 1024)

static size_t ndrivers(void) {
        size_t n = 0;
        while (format_writers[n])
                n++;
        return n;
}

/* A small disk image: a boot sector, a run of data, holes between. */
static int make_raw(const char *dir, char **ret_path) {
        char *path = xasprintf("%s/in.raw", dir);
        int fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        uint8_t sector[512] = {0xeb, 0x63, 0x90};
        sector[510] = 0x55;
        sector[511] = 0xaa;
        CHECK(pwrite(fd, sector, sizeof(sector), 0) == (ssize_t)sizeof(sector));
        uint8_t data[65536];
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 7 + 1);
        CHECK(pwrite(fd, data, sizeof(data), (off_t)(3 * MiB)) == (ssize_t)sizeof(data));
        CHECK(ftruncate(fd, (off_t)(8 * MiB)) == 0);
        *ret_path = path;
        return fd;
}

TEST(format_table_every_driver_is_complete_and_probes_its_own_output) {
        size_t n = ndrivers();
        CHECK(n >= 2);
        char dir[] = "/var/tmp/kiln-test-format-table.XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *raw = NULL;
        int raw_fd = make_raw(dir, &raw);
        uint8_t(*heads)[FORMAT_PROBE_BYTES] = xcalloc(n, sizeof(*heads));
        uint8_t(*tails)[FORMAT_PROBE_BYTES] = xcalloc(n, sizeof(*tails));
        size_t *lens = xcalloc(n, sizeof(*lens)), *tlens = xcalloc(n, sizeof(*tlens));

        for (size_t i = 0; i < n; i++) {
                const struct format_writer *w = format_writers[i];
                CHECK(w->name && *w->name);
                CHECK(w->extension && *w->extension);
                CHECK(w->probe != NULL && w->write != NULL);
                CHECK(format_find(w->name) == w);
                /* a writer that seeks back cannot feed a compressor */
                CHECK(!((w->caps & FORMAT_NEEDS_SEEK) && (w->caps & FORMAT_COMPRESSIBLE)));
                for (size_t k = 0; k < i; k++) {
                        CHECK(!streq(format_writers[k]->name, w->name));
                        CHECK(!streq(format_writers[k]->extension, w->extension));
                }
                /* every option a driver declares is a spec field */
                for (const struct format_option *o = w->options; o && o->field.key; o++)
                        CHECK(o->what && *o->what);

                _cleanup_free_ char *out = xasprintf("%s/out.%s", dir, w->extension);
                int fd = open(out, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
                CHECK(fd >= 0);
                struct format_options fo = {.threads = 1};
                struct format_result res;
                CHECK_INT(w->write(raw_fd, 8 * MiB, fd, &fo, &res), ==, 0);
                CHECK(format_probe_fd(fd) == w);
                ssize_t got = pread(fd, heads[i], FORMAT_PROBE_BYTES, 0);
                CHECK(got > 0);
                lens[i] = (size_t)got;
                /* the last bytes too, for a probe_tail (a fixed VHD's footer) */
                struct stat st;
                CHECK(fstat(fd, &st) == 0);
                off_t toff = st.st_size > (off_t)FORMAT_PROBE_BYTES ? st.st_size - FORMAT_PROBE_BYTES : 0;
                got = pread(fd, tails[i], FORMAT_PROBE_BYTES, toff);
                CHECK(got > 0);
                tlens[i] = (size_t)got;
                close(fd);

                /* the name of its file says its format, compressed or not */
                _cleanup_free_ char *file = xasprintf("img.%s", w->extension);
                _cleanup_free_ char *zst = xasprintf("img.%s.zst", w->extension);
                _cleanup_free_ char *f1 = format_name_from_file(file, NULL);
                enum compress_kind c = COMPRESS_NONE;
                _cleanup_free_ char *f2 = format_name_from_file(zst, &c);
                CHECK_STREQ(f1, w->name);
                CHECK_STREQ(f2, w->name);
                CHECK(c == COMPRESS_ZSTD);
        }
        /* Each probe (of the file's first bytes, and its last bytes for a
         * driver with a probe_tail): its own output scores highest; a
         * driver with magic (a score above raw's 1) gives the others'
         * output 0. */
        for (size_t i = 0; i < n; i++) {
                const struct format_writer *w = format_writers[i];
                int own = format_score(w, heads[i], lens[i], tails[i], tlens[i]);
                CHECK(own > 0);
                CHECK(format_probe_ends(heads[i], lens[i], tails[i], tlens[i]) == w);
                if (!w->probe_tail)
                        CHECK(format_probe(heads[i], lens[i]) == w);
                for (size_t k = 0; k < n; k++) {
                        if (k == i)
                                continue;
                        int other = format_score(w, heads[k], lens[k], tails[k], tlens[k]);
                        CHECK(other < format_score(format_writers[k], heads[k], lens[k], tails[k], tlens[k]));
                        if (own > 1)
                                CHECK_INT(other, ==, 0);
                }
        }
        free(heads);
        free(tails);
        free(lens);
        free(tlens);
        close(raw_fd);
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
}

TEST(format_table_names_without_a_driver) {
        _cleanup_free_ char *img = format_name_from_file("disk.img", NULL);
        _cleanup_free_ char *vmdk = format_name_from_file("a.b.vmdk.xz", NULL);
        CHECK_STREQ(img, "raw");
        CHECK_STREQ(vmdk, "vmdk");
        CHECK(format_name_from_file("noext", NULL) == NULL);
        CHECK(format_name_from_file(".zst", NULL) == NULL);
        /* too short for any magic: what is left is raw */
        CHECK(format_probe((const uint8_t *)"QF", 2) == format_find("raw"));
}

struct loaded {
        struct spec *s;
        struct diag_list d;
        int r;
};

static struct loaded load(const char *outputs) {
        struct loaded l = {0};
        _cleanup_free_ char *text = xasprintf("builds:\n  b:\n    source: {type: debian, suite: bookworm}\n"
                                              "    outputs: %s\n",
                                              outputs);
        struct spec_options o = {.path = "t.yaml", .text = text, .text_len = strlen(text), .now = 1700000000};
        l.r = pipeline_load(&o, &l.d, &l.s);
        return l;
}

static bool has_error(const struct loaded *l, const char *needle) {
        for (size_t i = 0; i < l->d.n; i++)
                if (l->d.v[i].level == DIAG_ERROR && strstr(l->d.v[i].msg, needle))
                        return true;
        return false;
}

static void unload(struct loaded *l) {
        spec_free(l->s);
        diag_list_done(&l->d);
}

/* A value of the option's type: its second allowed value, else one per
 * type (options that take numbers, sizes or maps). */
static const char *sample_value(const struct field *f) {
        if (f->allowed)
                return f->allowed[1];
        switch (f->type) {
        case FT_INT:
                return "2";
        case FT_SIZE:
                return "1G";
        case FT_BOOL:
                return "true";
        case FT_OBJECT:
        case FT_MAP:
        case FT_SCALAR_MAP:
                return "{}";
        case FT_LIST:
        case FT_STRING_LIST:
                return "[]";
        default:
                return "x";
        }
}

/* The outputs: schema is the table's: every format by name, every
 * driver's own options for it and for no other format. */
TEST(format_table_drives_the_outputs_section) {
        for (size_t i = 0; format_writers[i]; i++) {
                const struct format_writer *w = format_writers[i];
                _cleanup_free_ char *list = xasprintf("[%s]", w->name);
                struct loaded l = load(list);
                CHECK_INT(l.r, ==, 0);
                const struct image_outputs *outs = l.s ? image_outputs_of(l.s->builds[0]) : NULL;
                CHECK(outs && outs->n == 1 && outs->v[0].format == w);
                if (l.s && (w->caps & FORMAT_BOOTABLE)) {
                        _cleanup_free_ char *file = NULL;
                        _cleanup_free_ char *want = xasprintf("b.%s", w->extension);
                        CHECK_INT(image_boot_output(l.s->builds[0], &file), ==, 0);
                        CHECK_STREQ(file, want);
                }
                unload(&l);
                for (const struct format_option *o = w->options; o && o->field.key; o++) {
                        const char *val = sample_value(&o->field);
                        _cleanup_free_ char *mine = xasprintf("[{format: %s, %s: %s}]", w->name,
                                                              o->field.key, val);
                        l = load(mine);
                        CHECK_INT(l.r, ==, 0);
                        unload(&l);
                        for (size_t k = 0; format_writers[k]; k++) {
                                const struct format_writer *x = format_writers[k];
                                bool takes = false;
                                for (const struct format_option *xo = x->options; xo && xo->field.key; xo++)
                                        takes = takes || streq(xo->field.key, o->field.key);
                                if (takes)
                                        continue;
                                _cleanup_free_ char *other = xasprintf("[{format: %s, %s: %s}]", x->name,
                                                                       o->field.key, val);
                                l = load(other);
                                CHECK(l.r < 0);
                                CHECK(has_error(&l, "only"));
                                unload(&l);
                        }
                }
        }
        struct loaded l = load("[vhdx]");
        CHECK(l.r < 0);
        CHECK(has_error(&l, "vhdx"));
        unload(&l);
}
