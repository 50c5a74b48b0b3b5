/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_format.c — the format writers against the tools users trust: every
 * qcow2 goes through `qemu-img check` (no errors, no leaks) and `qemu-img
 * compare` with its raw input; every checksum is compared with sha256sum /
 * sha512sum of the file; every compressed file is decompressed with the
 * command-line tool and compared with the raw. Test images are sparse files
 * under /var/tmp (a directory per test, removed at the end).
 */
#include "harness.h"

#include "base/strbuf.h"
#include "image/format.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MiB (1024ull * 1024)

/* ---- fixtures ---- */

struct dir {
        char path[64];
};

static void dir_make(struct dir *d) {
        snprintf(d->path, sizeof(d->path), "/var/tmp/kiln-test-format.XXXXXX");
        CHECK(mkdtemp(d->path) != NULL);
}

static void dir_remove(struct dir *d) {
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", d->path);
        CHECK(system(cmd) == 0);
}

static char *dpath(const struct dir *d, const char *name) {
        return xasprintf("%s/%s", d->path, name);
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void) { /* xorshift64: deterministic "random" bytes */
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

enum fill { RANDOM, TEXT, ZEROS, BYTE };

static void fill(uint8_t *p, size_t n, enum fill f) {
        static const char *const words[] = {"kiln ",   "image ", "qcow2 ", "cluster ", "slurm ",
                                            "node\n",  "boot ",  "grub ",  "ext4 ",    "/usr/lib/"};
        size_t i = 0;
        switch (f) {
        case RANDOM:
                for (; i < n; i++)
                        p[i] = (uint8_t)(rng() >> 24);
                break;
        case TEXT:
                while (i < n) {
                        const char *w = words[rng() % ARRAY_SIZE(words)];
                        for (; *w && i < n; w++)
                                p[i++] = (uint8_t)*w;
                }
                break;
        case ZEROS:
                memset(p, 0, n);
                break;
        case BYTE:
                memset(p, 0x5a, n);
                break;
        }
}

/* Writes n bytes of kind f at off into fd. */
static void put(int fd, uint64_t off, size_t n, enum fill f) {
        uint8_t *b = xmalloc(n ? n : 1);
        fill(b, n, f);
        CHECK(pwrite(fd, b, n, (off_t)off) == (ssize_t)n);
        free(b);
}

/* The mixed test image: compressible and incompressible data, written
 * zeros, holes, a partial cluster, and a size that is not a multiple of
 * 512 (6 MiB + 12345). */
static char *make_mixed(const struct dir *d) {
        char *p = dpath(d, "mixed.raw");
        int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        put(fd, 0, 64 * 1024, TEXT);
        put(fd, 64 * 1024, MiB - 64 * 1024, RANDOM);
        put(fd, MiB, MiB, ZEROS);              /* allocated, but zero */
        /* 2..3 MiB: a hole */
        put(fd, 3 * MiB + 100, 4900, TEXT);    /* inside one cluster */
        put(fd, 3 * MiB + 200000, 10, RANDOM); /* a few bytes two clusters on */
        put(fd, 4 * MiB, MiB, TEXT);
        put(fd, 5 * MiB + 512 * 1024, 128 * 1024, BYTE);
        put(fd, 6 * MiB + 12345 - 1000, 1000, RANDOM); /* the unaligned tail */
        CHECK(ftruncate(fd, 6 * MiB + 12345) == 0);
        close(fd);
        return p;
}

/* An image of `size` bytes with data only where given (off, len, fill). */
static char *make_sparse(const struct dir *d, const char *name, uint64_t size,
                         const uint64_t (*parts)[3], size_t nparts) {
        char *p = dpath(d, name);
        int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        for (size_t i = 0; i < nparts; i++)
                put(fd, parts[i][0], (size_t)parts[i][1], (enum fill)parts[i][2]);
        CHECK(ftruncate(fd, (off_t)size) == 0);
        close(fd);
        return p;
}

static uint64_t file_size(const char *p) {
        struct stat st;
        CHECK(stat(p, &st) == 0);
        return (uint64_t)st.st_size;
}

static uint64_t file_blocks(const char *p) {
        struct stat st;
        CHECK(stat(p, &st) == 0);
        return (uint64_t)st.st_blocks * 512;
}

/* Runs the writer `fmt` on in into out. Returns its result code. */
static int write_image(const char *fmt, const char *in, const char *out,
                       const struct format_options *o, struct format_result *res) {
        const struct format_writer *w = format_find(fmt);
        CHECK(w != NULL);
        if (!w)
                return -ENOENT;
        int ifd = open(in, O_RDONLY | O_CLOEXEC);
        int ofd = open(out, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
        CHECK(ifd >= 0 && ofd >= 0);
        struct stat st;
        CHECK(fstat(ifd, &st) == 0);
        int r = w->write(ifd, (uint64_t)st.st_size, ofd, o, res);
        close(ifd);
        close(ofd);
        return r;
}

/* Runs a shell command; returns its exit status and its stdout+stderr. */
/* The first word of `tool file` (sha256sum's digest). */
static char *tool_digest(const char *tool, const char *file) {
        struct strbuf sb = STRBUF_INIT;
        CHECK(test_sh(&sb, "%s '%s'", tool, file) == 0);
        char *sp = strchr(strbuf_str(&sb), ' ');
        char *r = sp ? xstrndup(sb.buf, (size_t)(sp - sb.buf)) : xstrdup("");
        strbuf_free(&sb);
        return r;
}

static void check_digests(const char *file, const struct format_result *res, bool sha512) {
        _cleanup_free_ char *s256 = tool_digest("sha256sum", file);
        CHECK_STREQ(res->sha256, s256);
        if (sha512) {
                _cleanup_free_ char *s512 = tool_digest("sha512sum", file);
                CHECK_STREQ(res->sha512, s512);
        } else
                CHECK_STREQ(res->sha512, "");
        CHECK_INT(res->bytes_written, ==, file_size(file));
}

/* qemu-img check finds nothing, compare finds the raw's bytes. */
static void check_qcow2(const char *raw, const char *qcow2) {
        struct strbuf sb = STRBUF_INIT;
        int st = test_sh(&sb, "qemu-img check -f qcow2 '%s'", qcow2);
        CHECK_INT(st, ==, 0);
        CHECK(strstr(strbuf_str(&sb), "No errors were found on the image.") != NULL);
        CHECK(strstr(strbuf_str(&sb), "leaked") == NULL);
        if (st != 0 || strstr(strbuf_str(&sb), "leaked"))
                printf("%s", strbuf_str(&sb));
        strbuf_reset(&sb);
        st = test_sh(&sb, "qemu-img compare -f raw -F qcow2 '%s' '%s'", raw, qcow2);
        CHECK_INT(st, ==, 0);
        CHECK(strstr(strbuf_str(&sb), "Images are identical.") != NULL);
        if (st != 0)
                printf("%s", strbuf_str(&sb));
        strbuf_free(&sb);
}

static void check_info(const char *qcow2, const char *needle) {
        struct strbuf sb = STRBUF_INIT;
        CHECK_INT(test_sh(&sb, "qemu-img info '%s'", qcow2), ==, 0);
        CHECK(strstr(strbuf_str(&sb), needle) != NULL);
        strbuf_free(&sb);
}

static void check_same_bytes(const char *a, const char *b) {
        CHECK_INT(test_sh(NULL, "cmp '%s' '%s'", a, b), ==, 0);
}

/* Writes qcow2 with options o, checks it against raw. */
static void qcow2_case(const struct dir *d, const char *raw, const char *name,
                       const struct format_options *o, struct format_result *res) {
        _cleanup_free_ char *out = dpath(d, name);
        CHECK_INT(write_image("qcow2", raw, out, o, res), ==, 0);
        check_qcow2(raw, out);
        if (o->sha256)
                check_digests(out, res, o->sha512);
        if (o->cluster_compression == COMPRESS_ZSTD)
                check_info(out, "compression type: zstd");
        else
                check_info(out, "compression type: zlib");
}

/* ---- the table ---- */

TEST(format_table_and_names) {
        CHECK(format_find("raw") != NULL);
        CHECK_STREQ(format_find("qcow2")->extension, "qcow2");
        /* vmdk was the name without a driver here until issue 13 gave it one */
        CHECK_STREQ(format_find("vmdk")->extension, "vmdk");
        CHECK(format_find("vhdx") == NULL);
        CHECK(format_find(NULL) == NULL);
        size_t n = 0;
        while (format_writers[n])
                n++;
        CHECK_INT(n, >=, 4); /* raw, qcow2, vmdk, ova, and more as formats are added */

        enum compress_kind k = COMPRESS_XZ;
        CHECK_INT(compress_parse("zstd", &k), ==, 0);
        CHECK_INT(k, ==, COMPRESS_ZSTD);
        CHECK_INT(compress_parse("gz", &k), ==, 0);
        CHECK_INT(k, ==, COMPRESS_GZIP);
        CHECK_INT(compress_parse("zlib", &k), ==, 0);
        CHECK_INT(k, ==, COMPRESS_GZIP);
        CHECK_INT(compress_parse("none", &k), ==, 0);
        CHECK_INT(k, ==, COMPRESS_NONE);
        CHECK_INT(compress_parse("xz", &k), ==, 0);
        CHECK_INT(k, ==, COMPRESS_XZ);
        CHECK_INT(compress_parse("lz4", &k), ==, -EINVAL);
        CHECK_INT(k, ==, COMPRESS_XZ);
        CHECK_INT(compress_parse(NULL, &k), ==, -EINVAL);
        CHECK_STREQ(compress_suffix(COMPRESS_ZSTD), ".zst");
        CHECK_STREQ(compress_suffix(COMPRESS_XZ), ".xz");
        CHECK_STREQ(compress_suffix(COMPRESS_GZIP), ".gz");
        CHECK_STREQ(compress_suffix(COMPRESS_NONE), "");
}

TEST(format_is_zero_edges) {
        uint8_t b[300] = {0};
        for (size_t off = 0; off < 9; off++)
                for (size_t len = 0; len + off <= sizeof(b); len += 37) {
                        CHECK(format_is_zero(b + off, len));
                        if (len) {
                                b[off + len - 1] = 1;
                                CHECK(!format_is_zero(b + off, len));
                                b[off + len - 1] = 0;
                                b[off] = 1;
                                CHECK(!format_is_zero(b + off, len));
                                b[off] = 0;
                        }
                }
}

/* ---- raw ---- */

TEST(raw_is_a_sparse_copy_with_checksums) {
        struct dir d;
        dir_make(&d);
        _cleanup_free_ char *raw = make_mixed(&d);
        _cleanup_free_ char *out = dpath(&d, "out.raw");
        struct format_options o = {.sha256 = true, .sha512 = true};
        struct format_result res;
        CHECK_INT(write_image("raw", raw, out, &o, &res), ==, 0);
        check_same_bytes(raw, out);
        check_digests(out, &res, true);
        /* The written zeros (1 MiB) became a hole, the holes stayed holes. */
        CHECK(file_blocks(out) + MiB <= file_blocks(raw));
        CHECK(file_blocks(out) < 4 * MiB);

        /* Without checksums the file is the same. */
        struct format_options none = {0};
        _cleanup_free_ char *out2 = dpath(&d, "out2.raw");
        CHECK_INT(write_image("raw", raw, out2, &none, &res), ==, 0);
        CHECK_STREQ(res.sha256, "");
        check_same_bytes(raw, out2);
        dir_remove(&d);
}

TEST(raw_file_compression_round_trips) {
        static const struct {
                enum compress_kind kind;
                const char *decompress;
                unsigned threads;
        } cases[] = {
                {COMPRESS_ZSTD, "zstd -q -d -c", 1}, {COMPRESS_ZSTD, "zstd -q -d -c", 2},
                {COMPRESS_XZ, "xz -d -c", 1},        {COMPRESS_XZ, "xz -d -c", 2},
                {COMPRESS_GZIP, "gzip -d -c", 1},
        };
        struct dir d;
        dir_make(&d);
        _cleanup_free_ char *raw = make_mixed(&d);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *out = xasprintf("%s/out%zu.raw%s", d.path, i,
                                                     compress_suffix(cases[i].kind));
                _cleanup_free_ char *back = xasprintf("%s/back%zu.raw", d.path, i);
                struct format_options o = {.file_compression = cases[i].kind,
                                           .threads = cases[i].threads,
                                           .sha256 = true,
                                           .sha512 = i == 0};
                struct format_result res;
                CHECK_INT(write_image("raw", raw, out, &o, &res), ==, 0);
                check_digests(out, &res, o.sha512);
                CHECK(res.bytes_written < file_size(raw) / 2);
                CHECK_INT(test_sh(NULL, "%s '%s' > '%s'", cases[i].decompress, out, back), ==, 0);
                check_same_bytes(raw, back);
        }
        dir_remove(&d);
}

/* ---- qcow2 ---- */

TEST(qcow2_uncompressed_checks_and_compares) {
        struct dir d;
        dir_make(&d);
        _cleanup_free_ char *raw = make_mixed(&d);
        struct format_options o = {.sha256 = true, .sha512 = true};
        struct format_result res;
        qcow2_case(&d, raw, "plain.qcow2", &o, &res);
        /* Same bytes without checksums (copy_file_range path). */
        struct format_options none = {0};
        struct format_result res2;
        _cleanup_free_ char *out = dpath(&d, "plain.qcow2"), *out2 = dpath(&d, "plain2.qcow2");
        CHECK_INT(write_image("qcow2", raw, out2, &none, &res2), ==, 0);
        check_same_bytes(out, out2);
        dir_remove(&d);
}

TEST(qcow2_zstd_and_deflate_with_1_and_2_threads) {
        struct dir d;
        dir_make(&d);
        _cleanup_free_ char *raw = make_mixed(&d);
        static const enum compress_kind kinds[] = {COMPRESS_ZSTD, COMPRESS_GZIP};
        for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
                char first[SHA256_HEX_LEN + 1] = "";
                for (unsigned threads = 1; threads <= 2; threads++) {
                        struct format_options o = {.cluster_compression = kinds[k],
                                                   .threads = threads,
                                                   .sha256 = true,
                                                   .tmp_dir = threads == 2 ? d.path : NULL};
                        struct format_result res;
                        _cleanup_free_ char *name = xasprintf("c%zu-t%u.qcow2", k, threads);
                        qcow2_case(&d, raw, name, &o, &res);
                        /* Smaller than the uncompressed data, and the same
                         * bytes whatever the number of threads. */
                        CHECK(res.bytes_written < 3 * MiB);
                        if (threads == 1)
                                memcpy(first, res.sha256, sizeof(first));
                        else
                                CHECK_STREQ(res.sha256, first);
                }
        }
        dir_remove(&d);
}

TEST(qcow2_many_compressed_clusters_share_host_clusters) {
        /* 64 MiB of one byte value: ~20 bytes per compressed cluster, so
         * thousands of descriptors per host cluster (refcounts >> 1). */
        struct dir d;
        dir_make(&d);
        static const uint64_t parts[][3] = {{0, 64 * MiB, BYTE}, {70 * MiB, MiB, TEXT}};
        _cleanup_free_ char *raw = make_sparse(&d, "same.raw", 72 * MiB, parts, 2);
        for (int k = 0; k < 2; k++) {
                struct format_options o = {.cluster_compression = k ? COMPRESS_GZIP : COMPRESS_ZSTD,
                                           .threads = 2,
                                           .sha256 = true};
                struct format_result res;
                qcow2_case(&d, raw, k ? "same-z.qcow2" : "same-zstd.qcow2", &o, &res);
                CHECK(res.bytes_written < MiB);
        }
        dir_remove(&d);
}

TEST(qcow2_incompressible_clusters_are_stored) {
        struct dir d;
        dir_make(&d);
        static const uint64_t parts[][3] = {{0, 3 * MiB, RANDOM}, {3 * MiB, 64 * 1024, TEXT}};
        _cleanup_free_ char *raw = make_sparse(&d, "random.raw", 4 * MiB, parts, 2);
        struct format_options o = {.cluster_compression = COMPRESS_ZSTD, .threads = 2, .sha256 = true};
        struct format_result res;
        qcow2_case(&d, raw, "random.qcow2", &o, &res);
        CHECK(res.bytes_written > 3 * MiB);
        dir_remove(&d);
}

TEST(qcow2_sparse_5gib_spans_many_l2_tables) {
        struct dir d;
        dir_make(&d);
        static const uint64_t parts[][3] = {
                {0, 4096, TEXT},
                {512 * MiB - 4096, 8192, TEXT}, /* across an L2 boundary */
                {2048 * MiB + 7, 100, RANDOM},
                {5 * 1024 * MiB - 65536, 65536, TEXT}, /* the last cluster */
        };
        _cleanup_free_ char *raw = make_sparse(&d, "big.raw", 5 * 1024 * MiB, parts, 4);
        struct format_options o = {.sha256 = true};
        struct format_result res;
        qcow2_case(&d, raw, "big.qcow2", &o, &res);
        o.cluster_compression = COMPRESS_ZSTD;
        qcow2_case(&d, raw, "big-zstd.qcow2", &o, &res);
        dir_remove(&d);
}

TEST(empty_and_tiny_images) {
        struct dir d;
        dir_make(&d);
        static const uint64_t one[][3] = {{777777, 1, RANDOM}};
        const struct {
                const char *name;
                uint64_t size;
                size_t nparts;
        } images[] = {
                {"holes.raw", 8 * MiB, 0},  /* all holes */
                {"one.raw", 1 * MiB, 1},    /* a single byte of data */
                {"byte.raw", 1, 0},         /* a 1-byte image (a zero byte) */
                {"empty.raw", 0, 0},        /* nothing at all */
        };
        for (size_t i = 0; i < ARRAY_SIZE(images); i++) {
                _cleanup_free_ char *raw =
                        make_sparse(&d, images[i].name, images[i].size, one, images[i].nparts);
                _cleanup_free_ char *out = xasprintf("%s.out", raw);
                struct format_options o = {.sha256 = true};
                struct format_result res;
                CHECK_INT(write_image("raw", raw, out, &o, &res), ==, 0);
                check_same_bytes(raw, out);
                check_digests(out, &res, false);
                if (images[i].nparts == 0)
                        CHECK_INT(file_blocks(out), ==, 0);
                for (int k = 0; k < 3; k++) {
                        static const enum compress_kind kinds[] = {COMPRESS_NONE, COMPRESS_ZSTD,
                                                                   COMPRESS_GZIP};
                        o.cluster_compression = kinds[k];
                        _cleanup_free_ char *name = xasprintf("%s.%d.qcow2", images[i].name, k);
                        qcow2_case(&d, raw, name, &o, &res);
                }
        }
        dir_remove(&d);
}

TEST(qcow2_under_file_compression) {
        struct dir d;
        dir_make(&d);
        _cleanup_free_ char *raw = make_mixed(&d);
        static const struct {
                enum compress_kind cluster, file;
                const char *decompress;
        } cases[] = {
                {COMPRESS_NONE, COMPRESS_ZSTD, "zstd -q -d -c"},
                {COMPRESS_ZSTD, COMPRESS_GZIP, "gzip -d -c"},
                {COMPRESS_GZIP, COMPRESS_XZ, "xz -d -c"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *out = xasprintf("%s/f%zu.qcow2%s", d.path, i,
                                                     compress_suffix(cases[i].file));
                _cleanup_free_ char *back = xasprintf("%s/f%zu.qcow2", d.path, i);
                struct format_options o = {.cluster_compression = cases[i].cluster,
                                           .file_compression = cases[i].file,
                                           .threads = 2,
                                           .sha256 = true};
                struct format_result res;
                CHECK_INT(write_image("qcow2", raw, out, &o, &res), ==, 0);
                check_digests(out, &res, false);
                CHECK_INT(test_sh(NULL, "%s '%s' > '%s'", cases[i].decompress, out, back), ==, 0);
                check_qcow2(raw, back);
        }
        dir_remove(&d);
}

TEST(bad_arguments) {
        struct dir d;
        dir_make(&d);
        _cleanup_free_ char *raw = make_mixed(&d);
        _cleanup_free_ char *out = dpath(&d, "x.qcow2");
        struct format_options o = {.cluster_compression = COMPRESS_XZ};
        struct format_result res;
        CHECK_INT(write_image("qcow2", raw, out, &o, &res), ==, -EOPNOTSUPP);
        struct format_options ok = {0};
        CHECK_INT(qcow2_writer.write(-1, 0, 1, &ok, &res), ==, -EINVAL);
        int ifd = open(raw, O_RDONLY | O_CLOEXEC);
        CHECK_INT(qcow2_writer.write(ifd, 1ull << 50, 1, &ok, &res), ==, -E2BIG);
        close(ifd);
        dir_remove(&d);
}

TEST(qcow2_into_a_pipe_with_both_digests) {
        /* A non-seekable output: zeros are written, not skipped; two digest
         * threads see the same bytes. */
        struct dir d;
        dir_make(&d);
        _cleanup_free_ char *raw = make_mixed(&d);
        _cleanup_free_ char *out = dpath(&d, "piped.qcow2");
        _cleanup_free_ char *cmd = xasprintf("cat > '%s'", out);
        for (int k = 0; k < 2; k++) {
                FILE *f = popen(cmd, "w");
                CHECK(f != NULL);
                if (!f)
                        break;
                int ifd = open(raw, O_RDONLY | O_CLOEXEC);
                struct format_options o = {.cluster_compression = k ? COMPRESS_ZSTD : COMPRESS_NONE,
                                           .threads = 2,
                                           .sha256 = true,
                                           .sha512 = true};
                struct format_result res;
                CHECK_INT(qcow2_writer.write(ifd, file_size(raw), fileno(f), &o, &res), ==, 0);
                close(ifd);
                CHECK_INT(pclose(f), ==, 0);
                check_qcow2(raw, out);
                check_digests(out, &res, true);
        }
        dir_remove(&d);
}

TEST(spool_dir_errors_are_reported) {
        struct dir d;
        dir_make(&d);
        _cleanup_free_ char *raw = make_mixed(&d);
        _cleanup_free_ char *out = dpath(&d, "x.qcow2");
        struct format_options o = {.cluster_compression = COMPRESS_ZSTD,
                                   .tmp_dir = "/nonexistent/kiln-spool"};
        struct format_result res;
        CHECK_INT(write_image("qcow2", raw, out, &o, &res), ==, -ENOENT);
        dir_remove(&d);
}
