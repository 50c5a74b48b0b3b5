/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_iso9660.c — the ISO 9660 writer read back by an independent little
 * reader written here from ECMA-119: volume descriptors, both-endian fields
 * (every one checked for agreement), path tables, directory records, Rock
 * Ridge (SP, ER, PX, NM) and Joliet names, file contents, reproducibility
 * and every limit. The e2e test (tests/e2e/test_cidata.sh) reads the same
 * images with isoinfo and xorriso.
 */
#include "harness.h"

#include "vm/cidata.h"
#include "vm/iso9660.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define S ISO9660_SECTOR

enum { PRIMARY, JOLIET };

struct img {
        uint8_t *p;
        size_t len;
};

static void img_free(struct img *im) {
        free(im->p);
        *im = (struct img){0};
}

/* Runs the writer into a memfd and reads the image back. */
static int64_t build(const struct iso9660_entry *e, size_t n, const char *vol, time_t ts, struct img *im,
                     size_t *bad) {
        int fd = memfd_create("iso", MFD_CLOEXEC);
        CHECK(fd >= 0);
        struct iso9660_options o = {.volume_id = vol, .timestamp = ts};
        int64_t r = iso9660_write_fd(fd, e, n, &o, bad);
        *im = (struct img){0};
        if (r >= 0) {
                struct stat st;
                CHECK(fstat(fd, &st) == 0);
                CHECK_INT(st.st_size, ==, r);
                im->len = (size_t)st.st_size;
                im->p = xmalloc(im->len);
                CHECK(pread(fd, im->p, im->len, 0) == (ssize_t)im->len);
        }
        close(fd);
        return r;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static uint16_t both16(const uint8_t *p) {
        CHECK_INT(le16(p), ==, be16(p + 2));
        return le16(p);
}
static uint32_t both32(const uint8_t *p) {
        CHECK_INT(le32(p), ==, be32(p + 4));
        return le32(p);
}

static const uint8_t *sector(const struct img *im, uint32_t lba) {
        CHECK((uint64_t)lba * S + S <= im->len);
        return (uint64_t)lba * S + S <= im->len ? im->p + (size_t)lba * S : NULL;
}

/* UCS-2 big-endian (ASCII/Latin-1 subset is enough here) to UTF-8. */
static void ucs2_to_utf8(const uint8_t *p, size_t bytes, char *out, size_t outlen) {
        size_t o = 0;
        for (size_t i = 0; i + 1 < bytes && o + 4 < outlen; i += 2) {
                unsigned c = be16(p + i);
                if (c < 0x80) {
                        out[o++] = (char)c;
                } else if (c < 0x800) {
                        out[o++] = (char)(0xc0 | c >> 6), out[o++] = (char)(0x80 | (c & 0x3f));
                } else {
                        out[o++] = (char)(0xe0 | c >> 12), out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
                        out[o++] = (char)(0x80 | (c & 0x3f));
                }
        }
        out[o] = 0;
}

struct rec {
        uint32_t lba, size;
        bool dir;
        char id[260];   /* primary identifier as recorded, or the Joliet name */
        char nm[260];   /* Rock Ridge NM */
        bool sp, ce, px;
        uint32_t mode, nlink, ce_lba, ce_len;
        uint8_t date[7];
};

/* Parses one directory record of at most avail bytes; checks its framing. */
static size_t parse_rec(const uint8_t *r, size_t avail, int tree, struct rec *out) {
        *out = (struct rec){0};
        size_t len = r[0], lfi = r[32];
        CHECK(len >= 34 && len <= avail && len % 2 == 0);
        CHECK(33 + lfi <= len);
        if (len < 34 || len > avail || 33 + lfi > len)
                return 0;
        CHECK_INT(r[1], ==, 0);
        out->lba = both32(r + 2);
        out->size = both32(r + 10);
        memcpy(out->date, r + 18, 7);
        out->dir = r[25] & 2;
        CHECK_INT(both16(r + 28), ==, 1);
        if (tree == JOLIET && lfi > 1) {
                CHECK(lfi % 2 == 0);
                ucs2_to_utf8(r + 33, lfi, out->id, sizeof(out->id));
        } else {
                memcpy(out->id, r + 33, lfi);
                out->id[lfi] = 0;
        }
        size_t su = 33 + lfi + (lfi % 2 == 0);
        while (su + 4 <= len) {
                const uint8_t *e = r + su;
                size_t el = e[2];
                CHECK(el >= 4 && su + el <= len);
                if (el < 4 || su + el > len)
                        break;
                CHECK_INT(e[3], ==, 1);
                if (!memcmp(e, "SP", 2)) {
                        CHECK(el == 7 && e[4] == 0xbe && e[5] == 0xef);
                        out->sp = true;
                } else if (!memcmp(e, "PX", 2)) {
                        CHECK(el == 36 || el == 44);
                        out->px = true;
                        out->mode = both32(e + 4);
                        out->nlink = both32(e + 12);
                        CHECK_INT(both32(e + 20), ==, 0);
                        CHECK_INT(both32(e + 28), ==, 0);
                } else if (!memcmp(e, "NM", 2)) {
                        CHECK_INT(e[4], ==, 0);
                        memcpy(out->nm, e + 5, el - 5);
                        out->nm[el - 5] = 0;
                } else if (!memcmp(e, "CE", 2)) {
                        CHECK_INT(el, ==, 28);
                        out->ce = true;
                        out->ce_lba = both32(e + 4);
                        CHECK_INT(both32(e + 12), ==, 0);
                        out->ce_len = both32(e + 20);
                } else if (!memcmp(e, "TF", 2)) {
                        CHECK_INT(el, ==, 5 + 3 * 7);
                        for (int i = 0; i < 3; i++)
                                CHECK(memcmp(e + 5 + 7 * i, out->date, 7) == 0);
                } else {
                        test_fail(__FILE__, __LINE__, "unexpected SUSP entry %c%c", e[0], e[1]);
                }
                su += el;
        }
        if (tree == JOLIET)
                CHECK(su == 33 + lfi + (lfi % 2 == 0)); /* no System Use in Joliet */
        return len;
}

/* Reads a directory extent: records never cross a sector; the first two
 * are "." and "..". Returns the number of records (at most max). */
static size_t read_dir(const struct img *im, int tree, uint32_t lba, uint32_t size, struct rec *out, size_t max) {
        size_t n = 0;
        CHECK(size % S == 0 && size > 0);
        for (uint32_t s = 0; s < size / S; s++) {
                const uint8_t *sec = sector(im, lba + s);
                if (!sec)
                        return n;
                for (size_t pos = 0; pos < S && sec[pos];) {
                        CHECK(n < max);
                        if (n >= max)
                                return n;
                        size_t l = parse_rec(sec + pos, S - pos, tree, &out[n]);
                        if (!l)
                                return n;
                        if (n == 0)
                                CHECK(out[0].id[0] == 0 && out[0].lba == lba && out[0].size == size);
                        if (n == 1)
                                CHECK(out[1].id[0] == 1);
                        n++;
                        pos += l;
                }
        }
        return n;
}

static const char *rec_name(const struct rec *r, int tree) { return tree == PRIMARY ? r->nm : r->id; }

static struct rec root_rec(const struct img *im, int tree) {
        struct rec r;
        const uint8_t *vd = sector(im, 16 + (uint32_t)tree);
        CHECK(vd && vd[156] == 34);
        parse_rec(vd + 156, 34, PRIMARY, &r);
        return r;
}

/* Finds path in tree (Rock Ridge names in the primary tree). */
static bool lookup(const struct img *im, int tree, const char *path, struct rec *ret) {
        struct rec cur = root_rec(im, tree);
        _cleanup_free_ struct rec *v = xcalloc(400, sizeof(*v));
        _cleanup_free_ char *copy = xstrdup(path);
        for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (!cur.dir)
                        return false;
                size_t n = read_dir(im, tree, cur.lba, cur.size, v, 400);
                bool found = false;
                for (size_t i = 2; i < n && !found; i++)
                        if (streq(rec_name(&v[i], tree), c)) {
                                cur = v[i];
                                found = true;
                        }
                if (!found)
                        return false;
        }
        *ret = cur;
        return true;
}

/* The contents of the file at path in tree equal want (len bytes). */
static void check_file(const struct img *im, int tree, const char *path, const void *want, size_t len) {
        struct rec r;
        bool found = lookup(im, tree, path, &r);
        if (!found) {
                test_fail(__FILE__, __LINE__, "%s not found in the %s tree", path, tree ? "Joliet" : "primary");
                return;
        }
        CHECK(!r.dir);
        CHECK_INT(r.size, ==, len);
        if (len == 0)
                return;
        CHECK((uint64_t)r.lba * S + len <= im->len);
        if ((uint64_t)r.lba * S + len <= im->len)
                CHECK(memcmp(im->p + (size_t)r.lba * S, want, len) == 0);
}

/* Checks the volume descriptors and both path tables of every tree;
 * returns the number of directories. */
static size_t check_descriptors(const struct img *im, const char *vol) {
        CHECK(im->len % S == 0 && im->len >= 20 * S);
        for (size_t i = 0; i < 16 * S; i++)
                if (im->p[i]) {
                        test_fail(__FILE__, __LINE__, "system area byte %zu not zero", i);
                        break;
                }
        size_t ndirs = 0;
        for (int t = PRIMARY; t <= JOLIET; t++) {
                const uint8_t *vd = sector(im, 16 + (uint32_t)t);
                CHECK_INT(vd[0], ==, t == PRIMARY ? 1 : 2);
                CHECK(memcmp(vd + 1, "CD001", 5) == 0 && vd[6] == 1);
                char v[40];
                if (t == PRIMARY) {
                        memcpy(v, vd + 40, 32);
                        v[32] = 0;
                        for (int i = 31; i >= 0 && v[i] == ' '; i--)
                                v[i] = 0;
                        CHECK(memcmp(vd + 88, "\0\0\0", 3) == 0);
                } else {
                        ucs2_to_utf8(vd + 40, 32, v, sizeof(v));
                        for (int i = (int)strlen(v) - 1; i >= 0 && v[i] == ' '; i--)
                                v[i] = 0;
                        CHECK(memcmp(vd + 88, "%/E", 3) == 0);
                }
                CHECK_STREQ(v, vol);
                CHECK_INT(both32(vd + 80), ==, im->len / S);
                CHECK_INT(both16(vd + 120), ==, 1);
                CHECK_INT(both16(vd + 124), ==, 1);
                CHECK_INT(both16(vd + 128), ==, S);
                CHECK_INT(vd[881], ==, 1);
                /* Path tables: L and M agree; entries ordered by parent
                 * number; each points at a directory whose "." agrees. */
                uint32_t ptsize = both32(vd + 132);
                const uint8_t *l = sector(im, le32(vd + 140)), *m = sector(im, be32(vd + 148));
                CHECK(le32(vd + 144) == 0 && be32(vd + 152) == 0);
                CHECK(ptsize <= S); /* enough for these tests */
                size_t pos = 0, num = 0;
                unsigned last_parent = 1;
                _cleanup_free_ struct rec *recs = xcalloc(400, sizeof(*recs));
                while (pos < ptsize) {
                        size_t ld = l[pos];
                        CHECK(ld > 0 && pos + 8 + ld <= ptsize);
                        CHECK_INT(m[pos], ==, ld);
                        CHECK_INT(le32(l + pos + 2), ==, be32(m + pos + 2));
                        CHECK_INT(le16(l + pos + 6), ==, be16(m + pos + 6));
                        CHECK(memcmp(l + pos + 8, m + pos + 8, ld) == 0);
                        unsigned parent = le16(l + pos + 6);
                        num++;
                        CHECK(parent >= last_parent && parent <= num);
                        last_parent = parent;
                        struct rec self;
                        const uint8_t *first = sector(im, le32(l + pos + 2));
                        parse_rec(first, S, t, &self);
                        size_t n = read_dir(im, t, le32(l + pos + 2), self.size, recs, 400);
                        CHECK(n >= 2);
                        if (num == 1)
                                CHECK(ld == 1 && l[pos + 8] == 0 && parent == 1);
                        pos += 8 + ld + ld % 2;
                }
                CHECK_INT(pos, ==, ptsize);
                if (t == PRIMARY)
                        ndirs = num;
                else
                        CHECK_INT(num, ==, ndirs);
        }
        const uint8_t *term = sector(im, 18);
        CHECK(term[0] == 255 && memcmp(term + 1, "CD001", 5) == 0 && term[6] == 1);
        return ndirs;
}

/* ---- tests ---- */

TEST(cidata_seed_reads_back) {
        const char *ud = "#cloud-config\nusers: [default]\n", *md = "instance-id: x1\nlocal-hostname: h\n";
        const char *nc = "version: 2\nethernets: {}\n";
        char dir[] = "/var/tmp/kiln-test-iso.XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *path = xasprintf("%s/seed.iso", dir);
        struct cidata c = {.user_data = ud, .meta_data = md, .network_config = nc};
        CHECK_INT(cidata_write_at(path, &c, 1700000000), ==, 0);
        struct img im = {0};
        CHECK(read_file(path, 64 << 20, (char **)&im.p, &im.len) == 0);
        struct stat st;
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
        CHECK_INT(check_descriptors(&im, "cidata"), ==, 1);
        for (int t = PRIMARY; t <= JOLIET; t++) {
                check_file(&im, t, "user-data", ud, strlen(ud));
                check_file(&im, t, "meta-data", md, strlen(md));
                check_file(&im, t, "network-config", nc, strlen(nc));
                struct rec r;
                CHECK(!lookup(&im, t, "vendor-data", &r));
        }
        /* Rock Ridge: SP and CE in the root's ".", the CE area holds the ER
         * naming RRIP_1991A; PX gives modes. */
        struct rec root = root_rec(&im, PRIMARY), v[8];
        size_t n = read_dir(&im, PRIMARY, root.lba, root.size, v, 8);
        CHECK_INT(n, ==, 5);
        CHECK(v[0].sp && v[0].ce && v[0].px && !v[1].sp);
        CHECK_INT(v[0].mode, ==, 040755);
        CHECK_INT(v[0].nlink, ==, 2);
        const uint8_t *ce = sector(&im, v[0].ce_lba);
        CHECK(ce && memcmp(ce, "ER", 2) == 0 && ce[2] == v[0].ce_len && ce[4] == 10);
        CHECK(memcmp(ce + 8, "RRIP_1991A", 10) == 0);
        /* sorted primary names, original names in NM */
        CHECK_STREQ(v[2].id, "META_DAT.;1");
        CHECK_STREQ(v[3].id, "NETWORK_.;1");
        CHECK_STREQ(v[4].id, "USER_DAT.;1");
        CHECK_STREQ(v[2].nm, "meta-data");
        CHECK_STREQ(v[4].nm, "user-data");
        CHECK_INT(v[4].mode, ==, 0100644);
        /* the date is the timestamp: 2023-11-14 22:13:20 UTC */
        const uint8_t want[7] = {123, 11, 14, 22, 13, 20, 0};
        CHECK(memcmp(v[4].date, want, 7) == 0);
        CHECK(memcmp(sector(&im, 16) + 813, "2023111422132000", 16) == 0);
        img_free(&im);
        /* a missing required file: -EINVAL and nothing written */
        _cleanup_free_ char *path2 = xasprintf("%s/none.iso", dir);
        struct cidata bad = {.user_data = ud};
        CHECK_INT(cidata_write_at(path2, &bad, 0), ==, -EINVAL);
        CHECK(access(path2, F_OK) < 0);
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
}

TEST(subdirectories_sources_and_empty_files) {
        char dir[] = "/var/tmp/kiln-test-iso.XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *src = xasprintf("%s/big.bin", dir);
        size_t big = 3 * S + 17;
        _cleanup_free_ uint8_t *bigdata = xmalloc(big);
        for (size_t i = 0; i < big; i++)
                bigdata[i] = (uint8_t)(i * 7 + 3);
        CHECK(write_file(src, bigdata, big, 0644, 0) == 0);
        const char *deep = "d1/d2/d3/d4/d5/d6/d7/deep-file.txt"; /* 8 directory levels, root included */
        struct iso9660_entry e[] = {
                {.path = "top.txt", .data = "top\n", .data_len = 4},
                {.path = "scripts/setup.sh", .data = "#!/bin/sh\n", .data_len = 10, .mode = 0755},
                {.path = "scripts/lib/common-functions.sh", .data = "f() { :; }\n", .data_len = 11},
                {.path = "data/big.bin", .source = src},
                {.path = "data/empty"},
                {.path = "empty-dir", .directory = true, .mode = 0700},
                {.path = deep, .data = "deep", .data_len = 4},
                {.path = "Straße.txt", .data = "ß", .data_len = 2},
        };
        struct img im;
        int64_t size = build(e, ARRAY_SIZE(e), "KILN_FILES", 0, &im, NULL);
        CHECK(size > 0);
        if (size <= 0)
                return;
        /* root, scripts, scripts/lib, data, empty-dir, d1..d7 */
        CHECK_INT(check_descriptors(&im, "KILN_FILES"), ==, 12);
        for (int t = PRIMARY; t <= JOLIET; t++) {
                check_file(&im, t, "top.txt", "top\n", 4);
                check_file(&im, t, "scripts/setup.sh", "#!/bin/sh\n", 10);
                check_file(&im, t, "scripts/lib/common-functions.sh", "f() { :; }\n", 11);
                check_file(&im, t, "data/big.bin", bigdata, big);
                check_file(&im, t, "data/empty", "", 0);
                check_file(&im, t, deep, "deep", 4);
                check_file(&im, t, "Straße.txt", "ß", 2);
                struct rec r;
                CHECK(lookup(&im, t, "empty-dir", &r) && r.dir);
        }
        struct rec r;
        CHECK(lookup(&im, PRIMARY, "scripts/setup.sh", &r) && r.mode == 0100755);
        CHECK(lookup(&im, PRIMARY, "empty-dir", &r) && r.mode == 040700);
        CHECK(lookup(&im, PRIMARY, "scripts", &r) && r.nlink == 3); /* ., .., lib */
        CHECK(lookup(&im, PRIMARY, "data/empty", &r) && r.lba == 0);
        CHECK(lookup(&im, PRIMARY, "d1/d2", &r) && streq(r.id, "D2"));
        CHECK(lookup(&im, PRIMARY, "scripts/lib/common-functions.sh", &r) && streq(r.id, "COMMON_F.SH;1"));
        img_free(&im);
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
}

TEST(colliding_primary_names_are_made_unique) {
        /* All of these map to USER_DAT / ABCDEFGH in 8.3 form. */
        const char *names[] = {"user-data", "user_data", "USER-DATA", "user.data.x", "abcdefghij",
                               "abcdefghik", "abcdefgh1", "abcdefgh"};
        struct iso9660_entry e[ARRAY_SIZE(names)];
        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                e[i] = (struct iso9660_entry){.path = names[i], .data = names[i], .data_len = strlen(names[i])};
        struct img im;
        CHECK(build(e, ARRAY_SIZE(e), "x", 0, &im, NULL) > 0);
        check_descriptors(&im, "x");
        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                for (int t = PRIMARY; t <= JOLIET; t++)
                        check_file(&im, t, names[i], names[i], strlen(names[i]));
        struct rec root = root_rec(&im, PRIMARY), v[16];
        size_t n = read_dir(&im, PRIMARY, root.lba, root.size, v, 16);
        CHECK_INT(n, ==, 2 + ARRAY_SIZE(names));
        for (size_t i = 2; i < n; i++) {
                CHECK(strlen(v[i].id) <= 14 && endswith(v[i].id, ";1"));
                for (const char *c = v[i].id; *c != ';'; c++)
                        CHECK((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.');
                for (size_t k = 2; k < i; k++)
                        CHECK(!streq(v[i].id, v[k].id));
        }
        img_free(&im);
}

TEST(large_directory_spans_sectors) {
        enum { N = 300 };
        char names[N][64];
        struct iso9660_entry e[N];
        for (int i = 0; i < N; i++) {
                snprintf(names[i], sizeof(names[i]), "dir/a-rather-long-file-name-number-%04d.yaml", N - i);
                e[i] = (struct iso9660_entry){.path = names[i], .data = names[i], .data_len = strlen(names[i])};
        }
        struct img im;
        CHECK(build(e, N, "x", 0, &im, NULL) > 0);
        check_descriptors(&im, "x");
        struct rec d;
        CHECK(lookup(&im, PRIMARY, "dir", &d) && d.size > 10 * S);
        _cleanup_free_ struct rec *v = xcalloc(N + 2, sizeof(*v));
        for (int t = PRIMARY; t <= JOLIET; t++) {
                CHECK(lookup(&im, t, "dir", &d));
                CHECK_INT(read_dir(&im, t, d.lba, d.size, v, N + 2), ==, N + 2);
                /* sorted by the recorded identifier (all 8.3 names of full
                 * length here, so strcmp is the ECMA-119 order) */
                for (int i = 3; i < N + 2; i++)
                        CHECK(strcmp(v[i - 1].id, v[i].id) < 0);
        }
        for (int i = 0; i < N; i++)
                for (int t = PRIMARY; t <= JOLIET; t++)
                        check_file(&im, t, names[i], names[i], strlen(names[i]));
        img_free(&im);
}

TEST(reproducible) {
        struct iso9660_entry e[] = {
                {.path = "b/x", .data = "1", .data_len = 1},
                {.path = "a", .data = "22", .data_len = 2},
        };
        struct img a, b, c;
        CHECK(build(e, 2, "v", 1234567, &a, NULL) > 0);
        CHECK(build(e, 2, "v", 1234567, &b, NULL) > 0);
        CHECK(build(e, 2, "v", 1234568, &c, NULL) > 0);
        CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
        CHECK(a.len == c.len && memcmp(a.p, c.p, a.len) != 0); /* only dates differ... */
        size_t diff = 0;
        for (size_t i = 0; i < a.len; i++)
                diff += a.p[i] != c.p[i];
        CHECK(diff > 0 && diff < 64); /* ...one byte (the seconds) per date */
        img_free(&a);
        img_free(&b);
        img_free(&c);
}

static int64_t try(const struct iso9660_entry *e, size_t n, const char *vol, time_t ts, size_t *bad) {
        struct img im;
        int64_t r = build(e, n, vol, ts, &im, bad);
        img_free(&im);
        return r;
}

static int64_t try_path(const char *path, size_t *bad) {
        struct iso9660_entry e[] = {{.path = "ok"}, {.path = path}};
        return try(e, 2, "v", 0, bad);
}

TEST(limits_and_bad_input) {
        size_t bad = 99;
        char name65[66], name64[65], longpath[300];
        memset(name65, 'n', 65), name65[65] = 0;
        memset(name64, 'n', 64), name64[64] = 0;
        CHECK(try_path(name64, &bad) > 0 && bad == SIZE_MAX);
        CHECK_INT(try_path(name65, &bad), ==, -E2BIG);
        CHECK_INT(bad, ==, 1);
        /* 256 bytes of path, every component short */
        size_t o = 0;
        while (o < 256)
                o += (size_t)snprintf(longpath + o, sizeof(longpath) - o, "%s", o + 4 < 256 ? "abc/" : "z");
        longpath[256] = 0;
        CHECK_INT(try_path(longpath, NULL), ==, -E2BIG);
        CHECK_INT(try_path("d1/d2/d3/d4/d5/d6/d7/d8/f", NULL), ==, -E2BIG); /* 9 levels */
        CHECK(try_path("d1/d2/d3/d4/d5/d6/d7/f", NULL) > 0);
        const char *invalid[] = {"", "/abs", "dir/", "a//b", ".", "a/../b", "a/./b", "semi;1", "back\\slash",
                                 "colon:", "star*", "q?", "tab\tname", "\xf0\x9f\x98\x80", "\xc3", "\xc0\xaf",
                                 "\xed\xa0\x80"};
        for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
                int64_t r = try_path(invalid[i], &bad);
                if (r != -EINVAL)
                        test_fail(__FILE__, __LINE__, "path '%s': %lld, expected -EINVAL", invalid[i], (long long)r);
                CHECK_INT(bad, ==, 1);
        }
        CHECK_INT(try_path("ok", &bad), ==, -EEXIST);
        CHECK_INT(bad, ==, 1);
        CHECK_INT(try_path("ok/sub", NULL), ==, -EEXIST); /* a file used as a directory */
        struct iso9660_entry dirfile[] = {{.path = "d/f"}, {.path = "d"}};
        CHECK_INT(try(dirfile, 2, "v", 0, NULL), ==, -EEXIST);
        struct iso9660_entry dirtwice[] = {{.path = "d", .directory = true}, {.path = "d", .directory = true}};
        CHECK_INT(try(dirtwice, 2, "v", 0, NULL), ==, -EEXIST);
        struct iso9660_entry implied[] = {{.path = "d/f"}, {.path = "d", .directory = true, .mode = 0700}};
        CHECK(try(implied, 2, "v", 0, NULL) > 0);
        struct iso9660_entry both[] = {{.path = "f", .data = "x", .data_len = 1, .source = "/etc/hostname"}};
        CHECK_INT(try(both, 1, "v", 0, NULL), ==, -EINVAL);
        struct iso9660_entry badmode[] = {{.path = "f", .mode = 010644}};
        CHECK_INT(try(badmode, 1, "v", 0, NULL), ==, -EINVAL);
        /* sources: missing, a directory, not a regular file */
        struct iso9660_entry src[] = {{.path = "ok"}, {.path = "f", .source = "/nonexistent/kiln"}};
        CHECK_INT(try(src, 2, "v", 0, &bad), ==, -ENOENT);
        CHECK_INT(bad, ==, 1);
        src[1].source = "/etc";
        CHECK_INT(try(src, 2, "v", 0, NULL), ==, -EISDIR);
        src[1].source = "/dev/null";
        CHECK_INT(try(src, 2, "v", 0, NULL), ==, -EINVAL);
        /* volume ids and timestamps */
        struct iso9660_entry one[] = {{.path = "f"}};
        CHECK(try(one, 1, "0123456789abcdef", 0, NULL) > 0);
        CHECK_INT(try(one, 1, "0123456789abcdefg", 0, NULL), ==, -E2BIG);
        CHECK_INT(try(one, 1, "", 0, NULL), ==, -EINVAL);
        CHECK_INT(try(one, 1, NULL, 0, NULL), ==, -EINVAL);
        CHECK_INT(try(one, 1, "a/b", 0, NULL), ==, -EINVAL);
        CHECK_INT(try(one, 1, "v", -1, NULL), ==, -EINVAL);
        CHECK_INT(try(one, 1, "v", (time_t)6000000000ll, NULL), ==, -EINVAL); /* year 2160 */
        /* too many entries: refused before anything is read */
        _cleanup_free_ struct iso9660_entry *many = xcalloc(ISO9660_FILES_MAX + 1, sizeof(*many));
        CHECK_INT(try(many, ISO9660_FILES_MAX + 1, "v", 0, NULL), ==, -E2BIG);
        /* an empty image is fine: just the root */
        struct img im;
        CHECK(build(NULL, 0, "empty", 0, &im, NULL) > 0);
        CHECK_INT(check_descriptors(&im, "empty"), ==, 1);
        img_free(&im);
}

TEST(failed_write_leaves_nothing) {
        char dir[] = "/var/tmp/kiln-test-iso.XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *path = xasprintf("%s/out.iso", dir);
        CHECK(write_file(path, "old", 3, 0644, 0) == 0);
        struct iso9660_options o = {.volume_id = "v"};
        struct iso9660_entry e[] = {{.path = "a", .data = "x", .data_len = 1},
                                    {.path = "b", .source = "/nonexistent/kiln"}};
        size_t bad = 0;
        CHECK_INT(iso9660_write(path, e, 2, &o, &bad), ==, -ENOENT);
        CHECK_INT(bad, ==, 1);
        _cleanup_free_ char *old = NULL;
        size_t len = 0;
        CHECK(read_file(path, 100, &old, &len) == 0 && len == 3 && memcmp(old, "old", 3) == 0);
        _cleanup_free_ char *cmd = xasprintf("test \"$(ls -A '%s')\" = out.iso", dir);
        CHECK(system(cmd) == 0); /* no temporary file left */
        /* success replaces it */
        CHECK(iso9660_write(path, e, 1, &o, NULL) > 0);
        CHECK(system(cmd) == 0);
        _cleanup_free_ char *nodir = xasprintf("%s/missing/out.iso", dir);
        CHECK_INT(iso9660_write(nodir, e, 1, &o, NULL), ==, -ENOENT);
        _cleanup_free_ char *rm = xasprintf("rm -rf '%s'", dir);
        CHECK(system(rm) == 0);
}

TEST(cidata_generated_documents) {
        char *s = NULL;
        CHECK_INT(cidata_meta_data_new("iid-1", "node-1.example", &s), ==, 0);
        CHECK_STREQ(s, "instance-id: iid-1\nlocal-hostname: node-1.example\n");
        free(s);
        CHECK_INT(cidata_meta_data_new("iid-1", NULL, &s), ==, 0);
        CHECK_STREQ(s, "instance-id: iid-1\n");
        free(s);
        CHECK_INT(cidata_meta_data_new("iid 1", NULL, &s), ==, -EINVAL);
        CHECK_INT(cidata_meta_data_new("i", "-bad", &s), ==, -EINVAL);
        const char *bad_hosts[] = {"", "a..b", "a.", "-a", "a-", "a_b", "a b", "x\nmalicious: 1"};
        for (size_t i = 0; i < ARRAY_SIZE(bad_hosts); i++)
                CHECK(cidata_check_hostname(bad_hosts[i]) == -EINVAL);
        char label64[65];
        memset(label64, 'a', 64), label64[64] = 0;
        CHECK(cidata_check_hostname(label64) == -EINVAL);
        label64[63] = 0;
        CHECK(cidata_check_hostname(label64) == 0);
        CHECK(cidata_check_user("kiln") == 0 && cidata_check_user("_svc-1") == 0);
        CHECK(cidata_check_user("Root") == -EINVAL && cidata_check_user("1x") == -EINVAL &&
              cidata_check_user("a:b") == -EINVAL && cidata_check_user("") == -EINVAL);
        const char *key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk+/= me@host \"quoted\"";
        CHECK(cidata_check_ssh_key(key) == 0);
        CHECK(cidata_check_ssh_key("-----BEGIN OPENSSH PRIVATE KEY-----") == -EINVAL);
        CHECK(cidata_check_ssh_key("ssh-ed25519 AAAA\nruncmd: [x]") == -EINVAL);
        CHECK(cidata_check_ssh_key("ssh-ed25519") == -EINVAL);
        CHECK(cidata_check_ssh_key("ssh-ed25519 not*base64") == -EINVAL);
        CHECK_INT(cidata_user_data_new("kiln", &key, 1, &s), ==, 0);
        CHECK_STREQ(s, "#cloud-config\n"
                       "users:\n"
                       "  - name: \"kiln\"\n"
                       "    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n"
                       "    shell: /bin/bash\n"
                       "    lock_passwd: true\n"
                       "    ssh_authorized_keys:\n"
                       "      - \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk+/= me@host \\\"quoted\\\"\"\n");
        free(s);
        CHECK_INT(cidata_user_data_new(NULL, &key, 1, &s), ==, 0);
        CHECK(startswith(s, "#cloud-config\nssh_authorized_keys:\n  - \"ssh-ed25519 ") != NULL);
        free(s);
        CHECK_INT(cidata_user_data_new(NULL, NULL, 0, &s), ==, 0);
        CHECK_STREQ(s, "#cloud-config\n");
        free(s);
        CHECK_INT(cidata_user_data_new("Bad", NULL, 0, &s), ==, -EINVAL);
}

TEST(cidata_ssh_keys_parse_lines) {
        char **keys = NULL;
        size_t n = 0, line = 0;
        const char *text = "# keys\r\n\r\n  ssh-ed25519 AAAAC3Nza me@a\r\n\tsk-ssh-ed25519@openssh.com AAAAB b\n";
        CHECK_INT(cidata_ssh_keys_parse(text, &keys, &n, &line), ==, 0);
        CHECK_INT(n, ==, 2);
        CHECK_STREQ(keys[0], "ssh-ed25519 AAAAC3Nza me@a");
        CHECK_STREQ(keys[1], "sk-ssh-ed25519@openssh.com AAAAB b");
        CHECK_INT(cidata_ssh_keys_parse("\n# only a comment\n", &keys, &n, &line), ==, -ENODATA);
        CHECK_INT(cidata_ssh_keys_parse("ssh-rsa AAAA x\n-----BEGIN OPENSSH PRIVATE KEY-----\n", &keys, &n, &line),
                  ==, -EINVAL);
        CHECK_INT(line, ==, 2);
        CHECK_INT(n, ==, 3); /* the key before the bad line stays */
        for (size_t i = 0; i < n; i++)
                free(keys[i]);
        free(keys);
}

TEST(cidata_seed_from_parts) {
        struct cidata_seed seed;
        /* nothing given: both documents generated, the instance id from
         * the SHA-256 of user-data, NUL, host name */
        struct cidata_parts p = {.hostname = "node-1"};
        CHECK_INT(cidata_seed_make(&p, &seed), ==, 0);
        CHECK_STREQ(seed.files.user_data, "#cloud-config\n");
        CHECK_STREQ(seed.files.meta_data, "instance-id: iid-b79c58800aa7ed45\nlocal-hostname: node-1\n");
        CHECK(seed.files.network_config == NULL);
        cidata_seed_done(&seed);
        char iid[CIDATA_INSTANCE_ID_LEN + 1];
        CHECK_INT(cidata_default_instance_id("#cloud-config\n", NULL, iid), ==, 0);
        CHECK_STREQ(iid, "iid-e573d474cba22dd1");
        /* given files pass through as they are */
        p = (struct cidata_parts){.given = {"u", "m", "n", "v"}, .user = "Not-Valid"};
        CHECK_INT(cidata_seed_make(&p, &seed), ==, 0);
        CHECK_STREQ(seed.files.user_data, "u");
        CHECK_STREQ(seed.files.meta_data, "m");
        CHECK_STREQ(seed.files.vendor_data, "v");
        CHECK(seed.user_data == NULL && seed.meta_data == NULL);
        cidata_seed_done(&seed);
        p = (struct cidata_parts){.instance_id = "iid-x", .hostname = "h"};
        CHECK_INT(cidata_seed_make(&p, &seed), ==, 0);
        CHECK_STREQ(seed.files.meta_data, "instance-id: iid-x\nlocal-hostname: h\n");
        cidata_seed_done(&seed);
        p = (struct cidata_parts){.user = "Bad"};
        CHECK_INT(cidata_seed_make(&p, &seed), ==, -EINVAL);
        p = (struct cidata_parts){.hostname = "-bad"};
        CHECK_INT(cidata_seed_make(&p, &seed), ==, -EINVAL);
}

TEST(order_of_entries_does_not_matter_without_data) {
        /* A directory ABC and a file ABC.;1 compare equal under ECMA-119's
         * name/extension rule; the writer still orders them one fixed way. */
        struct iso9660_entry a[] = {{.path = "abc", .directory = true}, {.path = "abc."}, {.path = "b/c"}};
        struct iso9660_entry b[] = {{.path = "b/c"}, {.path = "abc."}, {.path = "abc", .directory = true}};
        struct img x, y;
        CHECK(build(a, 3, "v", 0, &x, NULL) > 0);
        CHECK(build(b, 3, "v", 0, &y, NULL) > 0);
        CHECK(x.len == y.len && memcmp(x.p, y.p, x.len) == 0);
        struct rec r;
        for (int t = PRIMARY; t <= JOLIET; t++) {
                CHECK(lookup(&x, t, "abc", &r) && r.dir);
                CHECK(lookup(&x, t, "abc.", &r) && !r.dir);
        }
        img_free(&x);
        img_free(&y);
}
