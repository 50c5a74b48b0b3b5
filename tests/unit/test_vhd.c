/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_vhd.c — the VHD writer (image/vhd.c), read back two ways: by this
 * file's own reading of the specification (footer fields and checksum, the
 * dynamic header, the BAT and every block against the raw input), and by
 * QEMU's vpc driver (`qemu-img info -f vpc`, `qemu-img compare` with the
 * raw; `qemu-img check` does not support vpc). Test images are sparse files
 * in a directory per test under /var/tmp.
 */
#include "harness.h"

#include "base/strbuf.h"
#include "image/format.h"
#include "image/outputs.h"
#include "pipeline/pipeline.h"
#include "spec/value.h"

#include <endian.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MiB (1024ull * 1024)
#define GiB (1024 * MiB)

static char *tmpdir(void) {
        char *d = xstrdup("/var/tmp/kiln-test-vhd.XXXXXX");
        CHECK(mkdtemp(d) != NULL);
        return d;
}

static void rmdir_all(const char *d) {
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", d);
        CHECK(system(cmd) == 0);
}


/* A raw image of `size` bytes: a text "boot sector", 3 MiB of patterned
 * data from 1 MiB (crossing a 2 MiB block), 64 KiB of written zeros at
 * 6 MiB (a block with no data: left out of a dynamic disk), a few bytes
 * near the end; holes elsewhere. `seed` changes the first sector. */
static char *make_raw(const char *dir, const char *name, uint64_t size, unsigned seed) {
        char *p = xasprintf("%s/%s", dir, name);
        int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        CHECK(ftruncate(fd, (off_t)size) == 0);
        _cleanup_free_ char *boot = xasprintf("kiln test disk %u", seed);
        CHECK(pwrite(fd, boot, strlen(boot), 0) == (ssize_t)strlen(boot));
        if (size >= 8 * MiB) {
                uint8_t *b = xmalloc(3 * MiB);
                for (size_t i = 0; i < 3 * MiB; i++)
                        b[i] = (uint8_t)(i % 251 + i / 4096);
                CHECK(pwrite(fd, b, 3 * MiB, (off_t)MiB) == (ssize_t)(3 * MiB));
                memset(b, 0, 64 * 1024);
                CHECK(pwrite(fd, b, 64 * 1024, (off_t)(6 * MiB)) == 64 * 1024);
                free(b);
                CHECK(pwrite(fd, "tail", 4, (off_t)(size - 1000)) == 4);
        }
        close(fd);
        return p;
}

/* {vhd: {subformat: SUB}} as an outputs: entry; NULL for the defaults. */
static struct value *entry(const char *sub) {
        if (!sub)
                return NULL;
        struct mark m = {0};
        struct value *e = value_new(V_MAP, &m), *v = value_new(V_MAP, &m);
        value_map_set(v, "subformat", value_new_string(sub, &m));
        value_map_set(e, "vhd", v);
        return e;
}

/* Hashing the zeros of a huge sparse disk takes long: tests of big sizes
 * turn the checksum off. */
static bool with_sha256 = true;

static int write_vhd(const char *raw, const char *out, const char *sub, uint64_t sde,
                     struct format_result *res) {
        _cleanup_value_ struct value *e = entry(sub);
        struct format_image im = {.options = e, .mtime = (int64_t)sde};
        struct format_options o = {.sha256 = with_sha256, .image = &im, .threads = 1};
        int ifd = open(raw, O_RDONLY | O_CLOEXEC);
        int ofd = open(out, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
        CHECK(ifd >= 0 && ofd >= 0);
        struct stat st;
        CHECK(fstat(ifd, &st) == 0);
        int r = format_find("vhd")->write(ifd, (uint64_t)st.st_size, ofd, &o, res);
        close(ifd);
        close(ofd);
        return r;
}

static uint8_t *read_all(const char *path, uint64_t *ret_size) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        CHECK(fd >= 0 && fstat(fd, &st) == 0);
        uint8_t *b = xmalloc((size_t)st.st_size + 1);
        CHECK(format_pread(fd, b, (size_t)st.st_size, 0) == 0);
        close(fd);
        *ret_size = (uint64_t)st.st_size;
        return b;
}

static uint32_t be32(const uint8_t *p) {
        uint32_t v;
        memcpy(&v, p, 4);
        return be32toh(v);
}

static uint64_t be64(const uint8_t *p) {
        uint64_t v;
        memcpy(&v, p, 8);
        return be64toh(v);
}

/* The spec's checksum: one's complement of the byte sum, the field excluded. */
static uint32_t sum_without(const uint8_t *p, size_t n, size_t field) {
        uint32_t s = 0;
        for (size_t i = 0; i < n; i++)
                if (i < field || i >= field + 4)
                        s += p[i];
        return ~s;
}

/* Reads the last 512 bytes of path into f. */
static void read_footer(const char *path, uint8_t f[512]) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= 512);
        CHECK(pread(fd, f, 512, st.st_size - 512) == 512);
        close(fd);
}

/* Every footer field the writer sets. */
static void check_footer(const uint8_t *f, uint64_t vsize, uint32_t type, uint32_t stamp) {
        CHECK(memcmp(f, "conectix", 8) == 0);
        CHECK_INT(be32(f + 8), ==, 2);
        CHECK_INT(be32(f + 12), ==, 0x00010000);
        CHECK(be64(f + 16) == (type == 2 ? UINT64_MAX : 512));
        CHECK_INT(be32(f + 24), ==, stamp);
        CHECK(memcmp(f + 28, "win ", 4) == 0);
        CHECK(memcmp(f + 36, "Wi2k", 4) == 0);
        CHECK_INT(be64(f + 40), ==, vsize);
        CHECK_INT(be64(f + 48), ==, vsize);
        CHECK_INT(be32(f + 60), ==, type);
        CHECK_INT(be32(f + 64), ==, sum_without(f, 512, 64));
        static const uint8_t zero16[16];
        CHECK(memcmp(f + 68, zero16, 16) != 0); /* a unique id */
        for (size_t i = 84; i < 512; i++)
                CHECK(f[i] == 0);
}

/* qemu-img reads it as a vpc image of vsize bytes with the raw's content. */
static void check_qemu(const char *raw, const char *vhd, uint64_t vsize) {
        struct strbuf sb = STRBUF_INIT;
        CHECK_INT(test_sh(&sb, "qemu-img info -f vpc --output=json '%s'", vhd), ==, 0);
        _cleanup_free_ char *want = xasprintf("\"virtual-size\": %llu,", (unsigned long long)vsize);
        CHECK(strstr(strbuf_str(&sb), want) != NULL);
        CHECK(strstr(strbuf_str(&sb), "\"format\": \"vpc\"") != NULL);
        if (!strstr(strbuf_str(&sb), want))
                printf("%s", strbuf_str(&sb));
        strbuf_reset(&sb);
        /* compare: the raw's tail up to the MiB is zeros */
        int st = test_sh(&sb, "qemu-img compare -f raw -F vpc '%s' '%s'", raw, vhd);
        CHECK_INT(st, ==, 0);
        CHECK(strstr(strbuf_str(&sb), "Images are identical") != NULL);
        if (st != 0)
                printf("%s", strbuf_str(&sb));
        strbuf_free(&sb);
}

static void check_sha256(const char *file, const struct format_result *res) {
        struct strbuf sb = STRBUF_INIT;
        CHECK_INT(test_sh(&sb, "sha256sum '%s'", file), ==, 0);
        CHECK(sb.len > 64 && strncmp(sb.buf, res->sha256, 64) == 0);
        strbuf_free(&sb);
        struct stat st;
        CHECK(stat(file, &st) == 0 && (uint64_t)st.st_size == res->bytes_written);
}

TEST(vhd_fixed_footer_and_qemu) {
        _cleanup_free_ char *d = tmpdir();
        uint64_t size = 20 * MiB + 12345; /* not a whole MiB: rounded up */
        _cleanup_free_ char *raw = make_raw(d, "a.raw", size, 1);
        _cleanup_free_ char *vhd = xasprintf("%s/a.vhd", d);
        struct format_result res;
        uint64_t sde = 1700000000;
        CHECK_INT(write_vhd(raw, vhd, NULL, sde, &res), ==, 0);
        check_sha256(vhd, &res);
        CHECK_INT(res.bytes_written, ==, 21 * MiB + 512);
        uint8_t f[512];
        read_footer(vhd, f);
        check_footer(f, 21 * MiB, 2, (uint32_t)(sde - 946684800));
        check_qemu(raw, vhd, 21 * MiB);
        /* the data is the raw's, in place; the holes stayed holes */
        CHECK_INT(test_sh(NULL, "cmp -n %llu '%s' '%s'", (unsigned long long)size, raw, vhd), ==, 0);
        struct stat st;
        CHECK(stat(vhd, &st) == 0 && (uint64_t)st.st_blocks * 512 < 8 * MiB);
        /* the probe finds the footer */
        int fd = open(vhd, O_RDONLY | O_CLOEXEC);
        CHECK(format_probe_fd(fd) == format_find("vhd"));
        close(fd);
        CHECK_STREQ(format_find("vhd")->qemu_driver, "vpc");
        rmdir_all(d);
}

TEST(vhd_is_deterministic_and_its_id_follows_the_disk) {
        _cleanup_free_ char *d = tmpdir();
        _cleanup_free_ char *raw1 = make_raw(d, "1.raw", 16 * MiB, 1);
        _cleanup_free_ char *raw2 = make_raw(d, "2.raw", 16 * MiB, 2); /* another first sector */
        static const char *const subs[] = {"fixed", "dynamic"};
        for (int s = 0; s < 2; s++) {
                struct format_result a, b, c, e;
                _cleanup_free_ char *va = xasprintf("%s/a%d.vhd", d, s), *vb = xasprintf("%s/b%d.vhd", d, s),
                                    *vc = xasprintf("%s/c%d.vhd", d, s), *ve = xasprintf("%s/e%d.vhd", d, s);
                CHECK_INT(write_vhd(raw1, va, subs[s], 1700000000, &a), ==, 0);
                CHECK_INT(write_vhd(raw1, vb, subs[s], 1700000000, &b), ==, 0);
                CHECK_INT(write_vhd(raw2, vc, subs[s], 1700000000, &c), ==, 0);
                CHECK_INT(write_vhd(raw1, ve, subs[s], 1800000000, &e), ==, 0);
                CHECK_STREQ(a.sha256, b.sha256);
                CHECK_INT(test_sh(NULL, "cmp '%s' '%s'", va, vb), ==, 0);
                uint8_t fa[512], fc[512], fe[512];
                read_footer(va, fa);
                read_footer(vc, fc);
                read_footer(ve, fe);
                CHECK(memcmp(fa + 68, fc + 68, 16) != 0);  /* another disk: another id */
                CHECK(memcmp(fa + 68, fe + 68, 16) != 0);  /* another epoch too */
                CHECK_INT(be32(fe + 24), ==, 1800000000 - 946684800);
                /* version 4 / variant bits of a UUID */
                CHECK_INT(fa[68 + 6] >> 4, ==, 4);
                CHECK_INT(fa[68 + 8] >> 6, ==, 2);
        }
        /* before VHD's epoch (2000): time stamp 0 */
        struct format_result r0;
        _cleanup_free_ char *v0 = xasprintf("%s/old.vhd", d);
        CHECK_INT(write_vhd(raw1, v0, NULL, 0, &r0), ==, 0);
        uint8_t f0[512];
        read_footer(v0, f0);
        CHECK_INT(be32(f0 + 24), ==, 0);
        rmdir_all(d);
}

/* The CHS geometry of the spec's algorithm (its appendix), worked out by
 * hand for sizes that take each of its branches: 17 sectors per track with
 * 4 to 16 heads, 31 and 63 with 16 heads, 255 from 65535 x 16 x 63
 * sectors (31.5 GiB) on, and the cap at 65535 x 16 x 255 (~127.5 GiB).
 * Packed as cylinders << 16 | heads << 8 | sectors per track. */
TEST(vhd_geometry_for_many_sizes) {
        _cleanup_free_ char *d = tmpdir();
        static const struct {
                uint64_t mib;
                uint32_t chs;
        } cases[] = {
                {1, 0x001e0411},      {3, 0x005a0411},      {10, 0x012d0411},    {100, 0x03eb0c11},
                {127, 0x03fb0f11},    {128, 0x03c31011},    {135, 0x03f81011},   {136, 0x0231101f},
                {200, 0x0339101f},    {247, 0x03fb101f},    {248, 0x01f7103f},   {500, 0x03f7103f},
                {1024, 0x0820103f},   {2048, 0x1041103f},   {4096, 0x2082103f},  {20480, 0xa28a103f},
                {31744, 0xfbef103f},  {32768, 0x404010ff},  {130048, 0xfefe10ff}, {131072, 0xffff10ff},
                {2088960, 0xffff10ff}, /* 2040 GiB */
        };
        with_sha256 = false;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                uint64_t size = cases[i].mib * MiB;
                _cleanup_free_ char *raw = make_raw(d, "g.raw", size, 0);
                _cleanup_free_ char *vhd = xasprintf("%s/g.vhd", d);
                struct format_result res;
                CHECK_INT(write_vhd(raw, vhd, NULL, 0, &res), ==, 0);
                uint8_t f[512];
                read_footer(vhd, f);
                if (be32(f + 56) != cases[i].chs)
                        printf("%llu MiB: %08x, want %08x\n", (unsigned long long)cases[i].mib, be32(f + 56),
                               cases[i].chs);
                CHECK_INT(be32(f + 56), ==, cases[i].chs);
                check_footer(f, size, 2, 0);
                unlink(vhd);
                unlink(raw);
        }
        with_sha256 = true;
        rmdir_all(d);
}

TEST(vhd_dynamic_header_bat_and_blocks) {
        _cleanup_free_ char *d = tmpdir();
        uint64_t size = 13 * MiB + 4096; /* 14 MiB: 7 blocks, the last holds "tail" */
        _cleanup_free_ char *raw = make_raw(d, "d.raw", size, 3);
        _cleanup_free_ char *vhd = xasprintf("%s/d.vhd", d);
        struct format_result res;
        CHECK_INT(write_vhd(raw, vhd, "dynamic", 1700000000, &res), ==, 0);
        check_sha256(vhd, &res);
        check_qemu(raw, vhd, 14 * MiB);

        uint64_t n, rn;
        _cleanup_free_ uint8_t *v = read_all(vhd, &n);
        _cleanup_free_ uint8_t *r = read_all(raw, &rn);
        CHECK(n > 512 + 1024 && n % 512 == 0);
        /* the footer, twice */
        check_footer(v + n - 512, 14 * MiB, 3, 1700000000 - 946684800);
        CHECK(memcmp(v, v + n - 512, 512) == 0);
        /* the header */
        const uint8_t *h = v + 512;
        CHECK(memcmp(h, "cxsparse", 8) == 0);
        CHECK(be64(h + 8) == UINT64_MAX);
        uint64_t bat = be64(h + 16);
        CHECK_INT(bat, ==, 1536);
        CHECK_INT(be32(h + 24), ==, 0x00010000);
        CHECK_INT(be32(h + 28), ==, 7);
        CHECK_INT(be32(h + 32), ==, 2 * MiB);
        CHECK_INT(be32(h + 36), ==, sum_without(h, 1024, 36));
        for (size_t i = 40; i < 1024; i++)
                CHECK(h[i] == 0);
        /* the BAT: blocks 0, 1 (boot sector, data from 1 to 4 MiB) and the
         * last hold data; block 3 (6-8 MiB: written zeros) and 2, 4, 5
         * (holes) do not */
        static const bool want_used[7] = {true, true, false, false, false, false, true};
        uint64_t prev_end = 0;
        for (unsigned b = 0; b < 7; b++) {
                uint32_t e = be32(v + bat + 4 * b);
                CHECK_INT(e != 0xffffffffu, ==, want_used[b]);
                if (e == 0xffffffffu)
                        continue;
                uint64_t off = (uint64_t)e * 512;
                CHECK(off >= bat + 512 && off + 512 + 2 * MiB <= n - 512);
                CHECK(off >= prev_end); /* in order, never overlapping */
                prev_end = off + 512 + 2 * MiB;
                for (unsigned k = 0; k < 512; k++)
                        CHECK(v[off + k] == 0xff);
                uint64_t from = (uint64_t)b * 2 * MiB, len = rn > from ? rn - from : 0;
                if (len > 2 * MiB)
                        len = 2 * MiB;
                CHECK(memcmp(v + off + 512, r + from, (size_t)len) == 0);
                for (uint64_t k = len; k < 2 * MiB; k++)
                        CHECK(v[off + 512 + k] == 0);
        }
        /* the rest of the BAT's sector: unused */
        for (unsigned b = 7; b < 128; b++)
                CHECK_INT(be32(v + bat + 4 * b), ==, 0xffffffffu);
        CHECK_INT(prev_end, ==, n - 512);
        rmdir_all(d);
}

TEST(vhd_edges_empty_tiny_and_all_holes) {
        _cleanup_free_ char *d = tmpdir();
        static const uint64_t sizes[] = {0, 1, 511, MiB, 64 * MiB};
        for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
                for (int s = 0; s < 2; s++) {
                        _cleanup_free_ char *raw = xasprintf("%s/e.raw", d);
                        int fd = open(raw, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
                        CHECK(fd >= 0 && ftruncate(fd, (off_t)sizes[i]) == 0);
                        close(fd);
                        _cleanup_free_ char *vhd = xasprintf("%s/e.vhd", d);
                        struct format_result res;
                        CHECK_INT(write_vhd(raw, vhd, s ? "dynamic" : "fixed", 0, &res), ==, 0);
                        uint64_t vsize = sizes[i] ? (sizes[i] + MiB - 1) / MiB * MiB : MiB;
                        check_qemu(raw, vhd, vsize);
                        uint8_t f[512];
                        read_footer(vhd, f);
                        check_footer(f, vsize, s ? 3 : 2, 0);
                        if (s) /* nothing allocated: footer, header, BAT, footer */
                                CHECK_INT(res.bytes_written, ==, 512 + 1024 + 512 + 512);
                }
        rmdir_all(d);
}

TEST(vhd_refuses_a_disk_over_2040_gib) {
        _cleanup_free_ char *d = tmpdir();
        _cleanup_free_ char *raw = xasprintf("%s/big.raw", d);
        int fd = open(raw, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && ftruncate(fd, (off_t)(2040 * GiB + 1)) == 0);
        close(fd);
        _cleanup_free_ char *vhd = xasprintf("%s/big.vhd", d);
        struct format_result res;
        CHECK_INT(write_vhd(raw, vhd, NULL, 0, &res), ==, -E2BIG);
        CHECK_INT(write_vhd(raw, vhd, "dynamic", 0, &res), ==, -E2BIG);
        CHECK_INT(format_find("vhd")->max_size, ==, 2040 * GiB);
        rmdir_all(d);
}

TEST(vhd_under_file_compression_and_into_a_pipe) {
        _cleanup_free_ char *d = tmpdir();
        _cleanup_free_ char *raw = make_raw(d, "c.raw", 9 * MiB, 4);
        for (int s = 0; s < 2; s++) {
                _cleanup_value_ struct value *e = entry(s ? "dynamic" : "fixed");
                struct format_image im = {.options = e};
                struct format_options o = {.sha256 = true, .image = &im, .file_compression = COMPRESS_ZSTD};
                _cleanup_free_ char *out = xasprintf("%s/c%d.vhd.zst", d, s), *back = xasprintf("%s/c%d.vhd", d, s),
                                    *plain = xasprintf("%s/p%d.vhd", d, s);
                int ifd = open(raw, O_RDONLY | O_CLOEXEC), ofd = open(out, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
                struct format_result res, pres;
                CHECK_INT(format_find("vhd")->write(ifd, 9 * MiB, ofd, &o, &res), ==, 0);
                close(ofd);
                check_sha256(out, &res);
                CHECK_INT(test_sh(NULL, "zstd -q -d -c '%s' > '%s'", out, back), ==, 0);
                check_qemu(raw, back, 9 * MiB);
                /* the same bytes as without the compressor */
                CHECK_INT(write_vhd(raw, plain, s ? "dynamic" : "fixed", 0, &pres), ==, 0);
                CHECK_INT(test_sh(NULL, "cmp '%s' '%s'", back, plain), ==, 0);
                /* into a pipe: the zeros are written out */
                _cleanup_free_ char *piped = xasprintf("%s/pipe%d.vhd", d, s), *cmd = xasprintf("cat > '%s'", piped);
                FILE *f = popen(cmd, "w");
                CHECK(f != NULL);
                struct format_options po = {.sha256 = true, .image = &im};
                CHECK_INT(format_find("vhd")->write(ifd, 9 * MiB, fileno(f), &po, &res), ==, 0);
                CHECK_INT(pclose(f), ==, 0);
                close(ifd);
                CHECK_INT(test_sh(NULL, "cmp '%s' '%s'", piped, plain), ==, 0);
                check_sha256(piped, &res);
        }
        rmdir_all(d);
}

/* ---- the spec side ---- */

struct loaded {
        struct spec *s;
        struct diag_list d;
        int r;
};

static struct loaded load(const char *disk, const char *outputs) {
        struct loaded l = {0};
        _cleanup_free_ char *text = xasprintf("builds:\n  b:\n    source: {type: debian, suite: bookworm}\n"
                                              "%s    outputs: %s\n",
                                              disk, outputs);
        struct spec_options o = {.path = "t.yaml", .text = text, .text_len = strlen(text), .now = 1700000000};
        l.r = pipeline_load(&o, &l.d, &l.s);
        return l;
}

/* The diagnostic holding needle (in its message or hint), or NULL. */
static const struct diag *find_diag(const struct loaded *l, const char *needle) {
        for (size_t i = 0; i < l->d.n; i++)
                if (strstr(l->d.v[i].msg, needle) || (l->d.v[i].hint && strstr(l->d.v[i].hint, needle)))
                        return &l->d.v[i];
        return NULL;
}

static void unload(struct loaded *l) {
        spec_free(l->s);
        diag_list_done(&l->d);
}

TEST(vhd_spec_options_and_errors) {
        struct loaded l = load("", "[{format: vhd, vhd: {subformat: dynamic}}, vhd2]");
        CHECK(l.r < 0); /* vhd2 is no format */
        unload(&l);
        l = load("", "[{format: vhd, vhd: {subformat: dynamic}}]");
        CHECK_INT(l.r, ==, 0);
        const struct image_outputs *outs = l.s ? image_outputs_of(l.s->builds[0]) : NULL;
        CHECK(outs && outs->n == 1 && outs->v[0].format == format_find("vhd"));
        unload(&l);

        /* a misspelt key: at its line and column, with a did-you-mean */
        l = load("", "[{format: vhd, vhd: {subformt: dynamic}}]");
        CHECK(l.r < 0);
        const struct diag *dg = find_diag(&l, "subformt");
        CHECK(dg && dg->mark.line == 4 && dg->mark.col > 1);
        CHECK(find_diag(&l, "subformat") != NULL);
        unload(&l);
        /* a value it does not take */
        l = load("", "[{format: vhd, vhd: {subformat: sparse}}]");
        CHECK(l.r < 0);
        CHECK(find_diag(&l, "sparse") && find_diag(&l, "dynamic"));
        unload(&l);
        /* the wrong type */
        l = load("", "[{format: vhd, vhd: dynamic}]");
        CHECK(l.r < 0);
        CHECK(find_diag(&l, "vhd") != NULL);
        unload(&l);
        /* another format's settings */
        l = load("", "[{format: qcow2, vhd: {subformat: fixed}}]");
        CHECK(l.r < 0);
        CHECK(find_diag(&l, "only vhd") != NULL);
        unload(&l);
        /* a disk over the limit is refused when the spec loads, naming it */
        l = load("    disk: {size: 3T}\n", "[raw, vhd]");
        CHECK(l.r < 0);
        dg = find_diag(&l, "2040 GiB");
        CHECK(dg && dg->mark.line == 5);
        unload(&l);
        l = load("    disk: {size: 2040G}\n", "[vhd]");
        CHECK_INT(l.r, ==, 0);
        unload(&l);
}
