/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_gce.c — the gce writer (image/gce.c): its .tar.gz goes through the
 * tools Compute Engine's users have (`gzip -t`, `zcat | tar -t`, GNU tar
 * listing and extracting disk.raw, which must be the raw image with zeros
 * up to the GiB), and its tar headers are read back by this file's own
 * reading of GNU's oldgnu format (fields, checksum, the sparse map and its
 * extension blocks). Test images are sparse files in a directory per test
 * under /var/tmp.
 */
#include "harness.h"

#include "base/strbuf.h"
#include "image/format.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

#define MiB (1024ull * 1024)
#define GiB (1024 * MiB)

static char *tmpdir(void) {
        char *d = xstrdup("/var/tmp/kiln-test-gce.XXXXXX");
        CHECK(mkdtemp(d) != NULL);
        return d;
}

static void rmdir_all(const char *d) {
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", d);
        CHECK(system(cmd) == 0);
}


/* A raw image of `size` bytes with `n` data pieces (off, len) of
 * compressible text and random bytes; holes elsewhere. */
static char *make_raw(const char *dir, uint64_t size, const uint64_t (*parts)[2], size_t n) {
        char *p = xasprintf("%s/in.raw", dir);
        int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && ftruncate(fd, (off_t)size) == 0);
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < n; i++) {
                uint8_t *b = xmalloc(parts[i][1]);
                for (uint64_t k = 0; k < parts[i][1]; k++) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        b[k] = k % 4096 < 1024 ? (uint8_t)x : (uint8_t)("kiln gce disk.raw\n"[k % 18]);
                }
                CHECK(pwrite(fd, b, parts[i][1], (off_t)parts[i][0]) == (ssize_t)parts[i][1]);
                free(b);
        }
        close(fd);
        return p;
}

static int write_gce(const char *raw, const char *out, unsigned threads, int64_t mtime,
                     struct format_result *res) {
        struct format_image im = {.mtime = mtime};
        struct format_options o = {.sha256 = true, .threads = threads, .image = &im};
        int ifd = open(raw, O_RDONLY | O_CLOEXEC);
        int ofd = open(out, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
        CHECK(ifd >= 0 && ofd >= 0);
        struct stat st;
        CHECK(fstat(ifd, &st) == 0);
        int r = format_find("gce")->write(ifd, (uint64_t)st.st_size, ofd, &o, res);
        close(ifd);
        close(ofd);
        return r;
}

/* The decompressed tar (its first max bytes), with zlib's gzip reader. */
static uint8_t *gunzip(const char *path, size_t max, size_t *ret_len) {
        gzFile f = gzopen(path, "rb");
        CHECK(f != NULL);
        uint8_t *b = xcalloc(1, max);
        int n = f ? gzread(f, b, (unsigned)max) : -1;
        CHECK(n > 0);
        if (f)
                gzclose(f);
        *ret_len = n > 0 ? (size_t)n : 0;
        return b;
}

/* A number field: octal, or GNU base-256. */
static uint64_t num(const uint8_t *f, size_t width) {
        uint64_t v = 0;
        if (f[0] & 0x80) {
                for (size_t i = 1; i < width; i++)
                        v = v << 8 | f[i];
                return v;
        }
        for (size_t i = 0; i < width && f[i] >= '0' && f[i] <= '7'; i++)
                v = v * 8 + (uint64_t)(f[i] - '0');
        return v;
}

struct entry {
        uint64_t off, len;
};

/* Parses the header blocks at t: the sparse map into e (up to max), the
 * count; checks the fixed fields and the checksum. */
static size_t parse_header(const uint8_t *t, size_t tlen, uint64_t *ret_realsize, uint64_t *ret_stored,
                           uint64_t *ret_mtime, struct entry *e, size_t max, size_t *ret_blocks) {
        CHECK(tlen >= 512);
        CHECK(memcmp(t, "disk.raw", 9) == 0);
        CHECK(memcmp(t + 100, "0000644", 8) == 0);
        CHECK_INT(num(t + 108, 8), ==, 0);
        CHECK_INT(num(t + 116, 8), ==, 0);
        CHECK(t[156] == 'S');
        CHECK(memcmp(t + 257, "ustar  ", 8) == 0);
        CHECK(memcmp(t + 265, "root", 5) == 0);
        unsigned sum = 0;
        for (size_t i = 0; i < 512; i++)
                sum += i >= 148 && i < 156 ? ' ' : t[i];
        CHECK_INT(num(t + 148, 8), ==, sum);
        *ret_realsize = num(t + 483, 12);
        *ret_stored = num(t + 124, 12);
        *ret_mtime = num(t + 136, 12);
        size_t n = 0;
        for (size_t i = 0; i < 4 && t[386 + 24 * i]; i++, n++)
                if (n < max)
                        e[n] = (struct entry){num(t + 386 + 24 * i, 12), num(t + 398 + 24 * i, 12)};
        bool more = t[482];
        size_t blocks = 1;
        while (more) {
                CHECK(n == 4 + 21 * (blocks - 1)); /* the header's 4 and 21 per extension block were full */
                const uint8_t *x = t + 512 * blocks++;
                CHECK(512 * blocks <= tlen);
                if (512 * blocks > tlen)
                        break;
                for (size_t i = 0; i < 21 && x[24 * i]; i++, n++)
                        if (n < max)
                                e[n] = (struct entry){num(x + 24 * i, 12), num(x + 12 + 24 * i, 12)};
                more = x[504];
        }
        *ret_blocks = blocks;
        return n;
}

/* Everything an independent reader should see in out for raw. A raw of
 * many GiB is compared where it has data (the first and last MiB) only. */
static void check_archive(const char *d, const char *raw, const char *out, uint64_t want_realsize) {
        struct strbuf sb = STRBUF_INIT;
        CHECK_INT(test_sh(&sb, "gzip -t '%s'", out), ==, 0);
        strbuf_reset(&sb);
        CHECK_INT(test_sh(&sb, "zcat '%s' | tar -t", out), ==, 0);
        CHECK_STREQ(strbuf_str(&sb), "disk.raw\n");
        strbuf_reset(&sb);
        CHECK_INT(test_sh(&sb, "tar -tvzf '%s'", out), ==, 0);
        _cleanup_free_ char *sz = xasprintf(" %llu ", (unsigned long long)want_realsize);
        CHECK(strstr(strbuf_str(&sb), sz) != NULL);
        CHECK(strstr(strbuf_str(&sb), "root/root") != NULL);
        if (!strstr(strbuf_str(&sb), sz))
                printf("%s", strbuf_str(&sb));
        strbuf_reset(&sb);
        /* extracted: the raw, then zeros to the GiB */
        _cleanup_free_ char *x = xasprintf("%s/x", d);
        CHECK_INT(test_sh(&sb, "rm -rf '%s' && mkdir '%s' && tar -C '%s' -xzSf '%s'", x, x, x, out), ==, 0);
        _cleanup_free_ char *disk = xasprintf("%s/disk.raw", x);
        struct stat st, rst;
        CHECK(stat(disk, &st) == 0 && stat(raw, &rst) == 0);
        CHECK_INT(st.st_size, ==, want_realsize);
        /* the raw's bytes (where it has data, for a raw of many GiB: its
         * first and last MiB), then nothing but zeros: a hole from the 64 KiB
         * block after the raw's end (tar writes whole regions) */
        uint64_t rs = (uint64_t)rst.st_size, cut = (rs + 65535) / 65536 * 65536;
        if (rs <= 256 * MiB)
                CHECK_INT(test_sh(&sb, "cmp -n %llu '%s' '%s'", (unsigned long long)rs, raw, disk), ==, 0);
        else {
                CHECK_INT(test_sh(&sb, "cmp -n %llu '%s' '%s'", MiB, raw, disk), ==, 0);
                CHECK_INT(test_sh(&sb, "cmp -i %llu -n %llu '%s' '%s'", (unsigned long long)(rs - MiB), MiB, raw, disk),
                          ==, 0);
        }
        if (cut > rs && cut <= want_realsize)
                CHECK_INT(test_sh(&sb, "cmp -i %llu -n %llu '%s' /dev/zero", (unsigned long long)rs,
                             (unsigned long long)(cut - rs), disk),
                          ==, 0);
        int dfd = open(disk, O_RDONLY | O_CLOEXEC);
        CHECK(dfd >= 0);
        CHECK(cut >= want_realsize || (lseek(dfd, (off_t)cut, SEEK_DATA) < 0 && errno == ENXIO));
        close(dfd);
        /* extracted sparse: no more blocks than the data */
        CHECK((uint64_t)st.st_blocks * 512 < want_realsize / 8);
        if (sb.len)
                printf("%s", strbuf_str(&sb));
        strbuf_free(&sb);
}

TEST(gce_archive_is_what_tar_and_gzip_read) {
        _cleanup_free_ char *d = tmpdir();
        /* three regions; written zeros in the middle of one split it */
        static const uint64_t parts[][2] = {{0, 300 * 1024}, {3 * MiB, 2 * MiB}, {100 * MiB - 4096, 4096}};
        _cleanup_free_ char *raw = make_raw(d, 100 * MiB, parts, 3);
        int fd = open(raw, O_WRONLY | O_CLOEXEC);
        static const uint8_t zeros[128 * 1024];
        CHECK(pwrite(fd, zeros, sizeof(zeros), (off_t)(4 * MiB)) == (ssize_t)sizeof(zeros));
        close(fd);
        _cleanup_free_ char *out = xasprintf("%s/img.tar.gz", d);
        struct format_result res;
        CHECK_INT(write_gce(raw, out, 2, 1700000000, &res), ==, 0);
        check_archive(d, raw, out, GiB);
        struct strbuf sb = STRBUF_INIT;
        CHECK_INT(test_sh(&sb, "sha256sum '%s'", out), ==, 0);
        CHECK(strncmp(sb.buf, res.sha256, 64) == 0);
        strbuf_free(&sb);
        struct stat st;
        CHECK(stat(out, &st) == 0 && (uint64_t)st.st_size == res.bytes_written);

        size_t tlen;
        _cleanup_free_ uint8_t *t = gunzip(out, 8192, &tlen);
        uint64_t realsize, stored, mtime;
        struct entry e[8];
        size_t blocks;
        size_t n = parse_header(t, tlen, &realsize, &stored, &mtime, e, 8, &blocks);
        CHECK_INT(realsize, ==, GiB);
        CHECK_INT(mtime, ==, 1700000000);
        CHECK_INT(blocks, ==, 2); /* 5 entries: one extension block */
        /* 0-320K (the blocks holding 300K), 3M-4M, 4M+128K-5M, the last 64K,
         * and the end: the file ends in a hole up to the GiB */
        CHECK_INT(n, ==, 5);
        CHECK_INT(e[0].off, ==, 0);
        CHECK_INT(e[0].len, ==, 320 * 1024);
        CHECK_INT(e[1].off, ==, 3 * MiB);
        CHECK_INT(e[1].len, ==, MiB);
        CHECK_INT(e[2].off, ==, 4 * MiB + 128 * 1024);
        CHECK_INT(e[2].len, ==, MiB - 128 * 1024);
        CHECK_INT(e[3].off, ==, 100 * MiB - 64 * 1024);
        CHECK_INT(e[3].len, ==, 64 * 1024);
        CHECK_INT(e[4].off, ==, GiB);
        CHECK_INT(e[4].len, ==, 0);
        CHECK_INT(stored, ==, 320 * 1024 + 2 * MiB - 128 * 1024 + 64 * 1024);
        /* the probe knows it; the name says it */
        fd = open(out, O_RDONLY | O_CLOEXEC);
        CHECK(format_probe_fd(fd) == format_find("gce"));
        close(fd);
        _cleanup_free_ char *name = format_name_from_file("minimal.tar.gz", NULL);
        CHECK_STREQ(name, "gce");
        rmdir_all(d);
}

TEST(gce_many_regions_take_extension_blocks) {
        _cleanup_free_ char *d = tmpdir();
        /* 50 pieces of 4 KiB every 256 KiB: 50 regions of a 64 KiB block,
         * and the end: the header's 4 and 21 + 21 + 5 */
        uint64_t parts[50][2];
        for (size_t i = 0; i < 50; i++) {
                parts[i][0] = i * 256 * 1024 + (i % 3) * 4096;
                parts[i][1] = 4096;
        }
        _cleanup_free_ char *raw = make_raw(d, 13 * MiB, (const uint64_t(*)[2])parts, 50);
        _cleanup_free_ char *out = xasprintf("%s/many.tar.gz", d);
        struct format_result res;
        CHECK_INT(write_gce(raw, out, 2, 0, &res), ==, 0);
        check_archive(d, raw, out, GiB);
        size_t tlen;
        _cleanup_free_ uint8_t *t = gunzip(out, 16384, &tlen);
        uint64_t realsize, stored, mtime;
        struct entry e[64];
        size_t blocks;
        size_t n = parse_header(t, tlen, &realsize, &stored, &mtime, e, 64, &blocks);
        CHECK_INT(n, ==, 51);
        CHECK_INT(blocks, ==, 4);
        CHECK_INT(mtime, ==, 0);
        for (size_t i = 0; i < 50 && i < n; i++) {
                CHECK_INT(e[i].off, ==, i * 256 * 1024);
                CHECK_INT(e[i].len, ==, 64 * 1024);
        }
        rmdir_all(d);
}

TEST(gce_is_deterministic_whatever_the_threads) {
        _cleanup_free_ char *d = tmpdir();
        /* several MiB of data: many pieces, so that 1, 2 and 3 workers
         * interleave differently */
        static const uint64_t parts[][2] = {{0, 5 * MiB + 777}, {9 * MiB, 3 * MiB}};
        _cleanup_free_ char *raw = make_raw(d, 96 * MiB + 5, parts, 2);
        struct format_result r1, r2, r3;
        _cleanup_free_ char *o1 = xasprintf("%s/1.tar.gz", d), *o2 = xasprintf("%s/2.tar.gz", d),
                            *o3 = xasprintf("%s/3.tar.gz", d);
        CHECK_INT(write_gce(raw, o1, 1, 1700000000, &r1), ==, 0);
        CHECK_INT(write_gce(raw, o2, 2, 1700000000, &r2), ==, 0);
        CHECK_INT(write_gce(raw, o3, 3, 1700000000, &r3), ==, 0);
        CHECK_STREQ(r1.sha256, r2.sha256);
        CHECK_STREQ(r1.sha256, r3.sha256);
        CHECK_INT(test_sh(NULL, "cmp '%s' '%s'", o1, o2), ==, 0);
        check_archive(d, raw, o2, GiB);
        /* compressed about as well as gzip -6 does the same tar */
        struct strbuf sb = STRBUF_INIT;
        CHECK_INT(test_sh(&sb, "zcat '%s' | gzip -6 | wc -c", o2), ==, 0);
        uint64_t gz = strtoull(strbuf_str(&sb), NULL, 10);
        CHECK(gz > 0 && r2.bytes_written < gz + gz / 50);
        strbuf_free(&sb);
        rmdir_all(d);
}

TEST(gce_edges_empty_and_big_offsets) {
        _cleanup_free_ char *d = tmpdir();
        /* no data at all: one empty region at the end */
        _cleanup_free_ char *raw = make_raw(d, 10 * MiB, NULL, 0);
        _cleanup_free_ char *out = xasprintf("%s/e.tar.gz", d);
        struct format_result res;
        CHECK_INT(write_gce(raw, out, 2, 0, &res), ==, 0);
        check_archive(d, raw, out, GiB);
        /* a 0-byte image: a 1 GiB disk of zeros */
        CHECK(truncate(raw, 0) == 0);
        CHECK_INT(write_gce(raw, out, 1, 0, &res), ==, 0);
        check_archive(d, raw, out, GiB);
        /* data past 8 GiB: offsets in base-256 */
        static const uint64_t far[][2] = {{4096, 4096}, {9 * GiB + 65536, 65536}};
        _cleanup_free_ char *big = make_raw(d, 9 * GiB + 3 * MiB, far, 2);
        CHECK_INT(write_gce(big, out, 2, 0, &res), ==, 0);
        check_archive(d, big, out, 10 * GiB);
        size_t tlen;
        _cleanup_free_ uint8_t *t = gunzip(out, 4096, &tlen);
        CHECK(t[386 + 24] == 0x80); /* the second entry's offset */
        CHECK(t[483] == 0x80);      /* realsize, 10 GiB */
        /* not under a file compressor */
        struct format_options o = {.file_compression = COMPRESS_ZSTD};
        int ifd = open(raw, O_RDONLY | O_CLOEXEC), ofd = open(out, O_WRONLY | O_TRUNC | O_CLOEXEC);
        CHECK_INT(format_find("gce")->write(ifd, 0, ofd, &o, &res), ==, -EOPNOTSUPP);
        close(ifd);
        close(ofd);
        rmdir_all(d);
}
