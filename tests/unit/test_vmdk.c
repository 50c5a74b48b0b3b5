/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_vmdk.c — the streamOptimized VMDK and OVA writers (image/vmdk.c,
 * ova.c), read back by a parser written here from the format's description:
 * header and footer fields, the descriptor, every grain marker (LBA,
 * inflated bytes against the raw input), every grain table against the
 * grains before it, the directory against the tables, the footer and the
 * end-of-stream marker as the last sectors. qemu-img checks and compares
 * each file too. The OVA: tar headers in order with valid checksums, the
 * .mf against the entries, the .ovf's facts and options. Spec errors for
 * the options and limits.
 */
#include "harness.h"

#include "base/hash.h"
#include "base/strbuf.h"
#include "image/format.h"
#include "image/outputs.h"
#include "pipeline/pipeline.h"

#include <endian.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

#define MiB (1024ull * 1024)
#define GRAIN (64u * 1024)

static char *tmpdir(void) {
        char *d = xstrdup("/var/tmp/kiln-test-vmdk.XXXXXX");
        CHECK(mkdtemp(d) != NULL);
        return d;
}

static void rmdir_all(const char *d) {
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", d);
        CHECK(system(cmd) == 0);
}

static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *cmd = xvasprintf(fmt, ap);
        va_end(ap);
        _cleanup_free_ char *q = xasprintf("( %s ) >/dev/null 2>&1", cmd);
        int st = system(q);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A raw image: text, random bytes, written zeros, holes spanning grain
 * tables (> 32 MiB), an unaligned tail. Size 70 MiB + 1000. */
static char *make_raw(const char *dir, uint64_t *ret_size) {
        char *p = xasprintf("%s/in.raw", dir);
        int fd = open(p, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        uint8_t *b = xmalloc(MiB);
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < MiB; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                b[i] = i < MiB / 2 ? (uint8_t)("kiln vmdk grain "[i % 16]) : (uint8_t)x;
        }
        CHECK(pwrite(fd, b, MiB, 0) == (ssize_t)MiB);
        memset(b, 0, MiB);
        CHECK(pwrite(fd, b, MiB, 2 * MiB) == (ssize_t)MiB); /* allocated zeros */
        CHECK(pwrite(fd, "tail", 4, 40 * MiB + 100) == 4);    /* second grain table */
        CHECK(pwrite(fd, "end!", 4, 70 * MiB + 996) == 4);    /* in the last sector */
        CHECK(ftruncate(fd, 70 * MiB + 1000) == 0);
        free(b);
        close(fd);
        *ret_size = 70 * MiB + 1000;
        return p;
}

static int write_fmt(const char *fmt, const char *in, const char *out, const struct format_options *o,
                     struct format_result *res) {
        int ifd = open(in, O_RDONLY | O_CLOEXEC);
        int ofd = open(out, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
        CHECK(ifd >= 0 && ofd >= 0);
        struct stat st;
        CHECK(fstat(ifd, &st) == 0);
        int r = format_find(fmt)->write(ifd, (uint64_t)st.st_size, ofd, o, res);
        close(ifd);
        close(ofd);
        return r;
}

static uint8_t *slurp(const char *p, size_t *ret_len) {
        char *text = NULL;
        CHECK(read_file(p, 1u << 30, &text, ret_len) == 0);
        return (uint8_t *)text;
}

static uint32_t le32(const uint8_t *p) {
        uint32_t v;
        memcpy(&v, p, 4);
        return le32toh(v);
}

static uint64_t le64(const uint8_t *p) {
        uint64_t v;
        memcpy(&v, p, 8);
        return le64toh(v);
}

/* Parses a streamOptimized file f (n bytes) and checks it against raw
 * (rn bytes). Returns the number of grains found. */
static uint64_t parse_vmdk(const uint8_t *f, size_t n, const uint8_t *raw, size_t rn, const char *file) {
        CHECK(n % 512 == 0 && n >= 128 * 512 + 4 * 512);
        CHECK(memcmp(f, "KDMV", 4) == 0);
        CHECK_INT(le32(f + 4), ==, 3);
        CHECK_INT(le32(f + 8), ==, 0x30001);
        uint64_t cap = le64(f + 12);
        CHECK_INT(cap, ==, (rn + 511) / 512);
        CHECK_INT(le64(f + 20), ==, 128);
        CHECK_INT(le64(f + 28), ==, 1);
        uint64_t dsec = le64(f + 36);
        CHECK(dsec >= 1 && dsec < 128);
        CHECK_INT(le32(f + 44), ==, 512);
        CHECK_INT(le64(f + 48), ==, 0);
        CHECK(le64(f + 56) == UINT64_MAX);
        CHECK_INT(le64(f + 64), ==, 128);
        CHECK(f[73] == '\n' && f[74] == ' ' && f[75] == '\r' && f[76] == '\n');
        CHECK_INT(f[77] | f[78] << 8, ==, 1);

        _cleanup_free_ char *desc = xstrndup((const char *)f + 512, dsec * 512);
        CHECK(strstr(desc, "# Disk DescriptorFile\n") == desc);
        CHECK(strstr(desc, "createType=\"streamOptimized\"\n") != NULL);
        _cleanup_free_ char *ext = xasprintf("RW %llu SPARSE \"%s\"\n", (unsigned long long)cap, file);
        CHECK(strstr(desc, ext) != NULL);
        CHECK(strstr(desc, "ddb.adapterType = \"") != NULL);
        CHECK(strstr(desc, "ddb.geometry.heads = \"255\"") != NULL);
        CHECK(strstr(desc, "ddb.virtualHWVersion = \"4\"") != NULL);

        uint64_t ngrains = (cap + 127) / 128, ngt = (ngrains + 511) / 512;
        uint32_t *seen = xcalloc(ngrains, sizeof(*seen)); /* grain -> sector of its marker */
        uint32_t *gts = xcalloc(ngt, sizeof(*gts));
        uint64_t sec = 128, grains = 0, next_gt = 0, last_lba = 0, gd_at = 0;
        bool first = true, footer = false, eos = false;
        uint8_t *out = xmalloc(GRAIN);
        while (!eos && sec * 512 + 512 <= n) {
                const uint8_t *m = f + sec * 512;
                uint64_t val = le64(m);
                uint32_t size = le32(m + 8);
                if (size) { /* a grain */
                        CHECK(!footer && val % 128 == 0 && val < cap);
                        CHECK(first || val > last_lba);
                        CHECK(val / 128 / 512 == next_gt); /* grains of the GT being filled */
                        first = false;
                        last_lba = val;
                        CHECK(sec * 512 + 12 + size <= n);
                        uLongf ol = GRAIN;
                        CHECK(uncompress(out, &ol, m + 12, size) == Z_OK);
                        CHECK(ol == GRAIN);
                        uint64_t off = val * 512;
                        uint8_t *want = xcalloc(1, GRAIN);
                        memcpy(want, raw + off, off + GRAIN <= rn ? GRAIN : rn - off);
                        CHECK(memcmp(out, want, GRAIN) == 0);
                        CHECK(memcmp(want, (uint8_t[GRAIN]){0}, GRAIN) != 0); /* no zero grains */
                        free(want);
                        seen[val / 128] = (uint32_t)sec;
                        grains++;
                        sec += (12 + size + 511) / 512;
                        continue;
                }
                uint32_t type = le32(m + 12);
                for (unsigned i = 16; i < 512; i++)
                        CHECK(m[i] == 0);
                switch (type) {
                case 1: /* GT: the entries of the grains before it */
                        CHECK_INT(val, ==, 4);
                        CHECK(next_gt < ngt);
                        gts[next_gt] = (uint32_t)(sec + 1);
                        for (unsigned i = 0; i < 512; i++) {
                                uint64_t gi = next_gt * 512 + i;
                                CHECK_INT(le32(m + 512 + 4 * i), ==, gi < ngrains ? seen[gi] : 0);
                        }
                        next_gt++;
                        sec += 1 + 4;
                        break;
                case 2: /* GD */
                        CHECK_INT(next_gt, ==, ngt);
                        CHECK_INT(val, ==, (ngt * 4 + 511) / 512);
                        gd_at = sec + 1;
                        for (uint64_t i = 0; i < ngt; i++)
                                CHECK_INT(le32(m + 512 + 4 * i), ==, gts[i]);
                        sec += 1 + val;
                        break;
                case 3: /* footer: the header with gdOffset */
                        CHECK(gd_at && val == 1);
                        footer = true;
                        CHECK(memcmp(m + 512, f, 56) == 0);
                        CHECK_INT(le64(m + 512 + 56), ==, gd_at);
                        CHECK(memcmp(m + 512 + 64, f + 64, 512 - 64) == 0);
                        sec += 2;
                        break;
                case 0: /* end of stream: the last sector */
                        CHECK(footer && val == 0);
                        eos = true;
                        sec++;
                        break;
                default:
                        CHECK(!"unknown marker");
                        sec = n;
                }
        }
        CHECK(eos);
        CHECK_INT(sec * 512, ==, n);
        free(out);
        free(seen);
        free(gts);
        return grains;
}

static void check_qemu(const char *raw, const char *vmdk) {
        CHECK_INT(sh("qemu-img check -f vmdk '%s'", vmdk), ==, 0);
        CHECK_INT(sh("qemu-img compare -f raw -F vmdk '%s' '%s'", raw, vmdk), ==, 0);
        CHECK_INT(sh("qemu-img info '%s' | grep -q 'create type: streamOptimized'", vmdk), ==, 0);
}

TEST(vmdk_structure_parses_back_and_qemu_agrees) {
        _cleanup_free_ char *d = tmpdir();
        uint64_t rsize;
        _cleanup_free_ char *raw = make_raw(d, &rsize);
        size_t rn;
        _cleanup_free_ uint8_t *rb = slurp(raw, &rn);
        _cleanup_free_ char *first = NULL;
        for (unsigned threads = 1; threads <= 3; threads++) {
                _cleanup_free_ char *out = xasprintf("%s/t%u.vmdk", d, threads);
                struct format_image im = {.name = "img", .file = "img.vmdk"};
                struct format_options o = {.threads = threads, .sha256 = true, .image = &im};
                struct format_result res;
                CHECK_INT(write_fmt("vmdk", raw, out, &o, &res), ==, 0);
                size_t n;
                _cleanup_free_ uint8_t *f = slurp(out, &n);
                CHECK_INT(res.bytes_written, ==, n);
                char hex[SHA256_HEX_LEN + 1];
                CHECK(hash_sha256_hex(f, n, hex) == 0);
                CHECK_STREQ(res.sha256, hex);
                uint64_t grains = parse_vmdk(f, n, rb, rn, "img.vmdk");
                /* 0.5 MiB text + 0.5 MiB random, the 40 MiB and the tail grains */
                CHECK_INT(grains, ==, 16 + 2);
                CHECK_INT(res.data_bytes, ==, grains * GRAIN);
                check_qemu(raw, out);
                /* the same bytes on any number of threads */
                if (!first)
                        first = xstrdup(res.sha256);
                else
                        CHECK_STREQ(res.sha256, first);
        }
        rmdir_all(d);
}

TEST(vmdk_empty_and_tiny_disks) {
        _cleanup_free_ char *d = tmpdir();
        _cleanup_free_ char *raw = xasprintf("%s/e.raw", d), *out = xasprintf("%s/e.vmdk", d);
        int fd = open(raw, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && ftruncate(fd, 5 * MiB) == 0);
        close(fd);
        struct format_options o = {.threads = 2};
        struct format_result res;
        CHECK_INT(write_fmt("vmdk", raw, out, &o, &res), ==, 0);
        size_t n, rn;
        _cleanup_free_ uint8_t *f = slurp(out, &n), *rb = slurp(raw, &rn);
        CHECK_INT(parse_vmdk(f, n, rb, rn, "disk.vmdk"), ==, 0);
        CHECK_INT(res.data_bytes, ==, 0);
        check_qemu(raw, out);
        rmdir_all(d);
}

TEST(vmdk_refuses_what_it_cannot_hold) {
        _cleanup_free_ char *d = tmpdir();
        _cleanup_free_ char *raw = xasprintf("%s/big.raw", d), *out = xasprintf("%s/big.vmdk", d);
        int fd = open(raw, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && ftruncate(fd, (off_t)((2ull << 40) + MiB)) == 0);
        close(fd);
        struct format_options o = {.threads = 1};
        struct format_result res;
        CHECK_INT(write_fmt("vmdk", raw, out, &o, &res), ==, -E2BIG);
        CHECK_INT(write_fmt("ova", raw, out, &o, &res), ==, -E2BIG);
        CHECK(format_find("vmdk")->max_size == 2ull << 40);
        CHECK(strstr(format_find("vmdk")->max_size_why, "2 TiB") != NULL);
        o.file_compression = COMPRESS_ZSTD;
        CHECK_INT(write_fmt("vmdk", raw, out, &o, &res), ==, -EOPNOTSUPP);
        rmdir_all(d);
}

/* ---- OVA ---- */

struct tar_entry {
        char name[101];
        uint64_t size;
        const uint8_t *data;
};

/* The entries of a tar (ustar, base-256 sizes too), checksums checked. */
static size_t parse_tar(const uint8_t *t, size_t n, struct tar_entry *e, size_t max) {
        size_t k = 0, off = 0;
        while (off + 512 <= n && k < max) {
                const uint8_t *h = t + off;
                if (memcmp(h, (uint8_t[512]){0}, 512) == 0)
                        break;
                CHECK(memcmp(h + 257, "ustar", 6) == 0 && h[156] == '0');
                unsigned sum = 0;
                for (unsigned i = 0; i < 512; i++)
                        sum += i >= 148 && i < 156 ? ' ' : h[i];
                CHECK_INT(strtoul((const char *)h + 148, NULL, 8), ==, sum);
                memcpy(e[k].name, h, 100);
                e[k].name[100] = 0;
                e[k].size = strtoull((const char *)h + 124, NULL, 8);
                e[k].data = h + 512;
                off += 512 + (e[k].size + 511) / 512 * 512;
                CHECK(off <= n);
                k++;
        }
        CHECK(off + 1024 == n); /* two zero blocks end it */
        return k;
}

/* The spec's outputs: entry for an OVA with options (a loaded spec). */
static struct spec *load_spec(const char *outputs, const char *disk, struct diag_list *d, int *ret) {
        _cleanup_free_ char *text = xasprintf("builds:\n  b:\n    source: {type: debian, suite: bookworm}\n"
                                              "%s    outputs:\n%s",
                                              disk ? disk : "", outputs);
        struct spec_options o = {.path = "t.yaml", .text = text, .text_len = strlen(text), .now = 1700000000};
        struct spec *s = NULL;
        *ret = pipeline_load(&o, d, &s);
        return s;
}

TEST(ova_tar_order_manifest_and_envelope) {
        _cleanup_free_ char *d = tmpdir();
        uint64_t rsize;
        _cleanup_free_ char *raw = make_raw(d, &rsize);
        struct diag_list dl = {0};
        int lr;
        struct spec *s = load_spec("      - format: ova\n"
                                   "        cpus: 4\n"
                                   "        memory: 8G\n"
                                   "        firmware: bios\n"
                                   "        adapter: pvscsi\n"
                                   "        network: \"lab & <test>\"\n"
                                   "        product:\n"
                                   "          name: node\n"
                                   "          version: \"1.30.1\"\n"
                                   "          vendor: kiln tests\n"
                                   "          properties: {KUBERNETES_SEMVER: v1.30.1, DISTRO: debian}\n",
                                   NULL, &dl, &lr);
        CHECK_INT(lr, ==, 0);
        const struct value *entry = s ? s->builds[0]->outputs->items[0] : NULL;
        uint8_t guid[16] = {1, 2, 3};
        struct format_image im = {.name = "node", .arch = "x86_64", .distribution = "debian",
                                  .release = "bookworm", .disk_guid = guid, .bios = true, .uefi = true,
                                  .mtime = 1700000000, .options = entry};
        struct format_options o = {.threads = 2, .sha256 = true, .image = &im};
        struct format_result res, res2;
        _cleanup_free_ char *out = xasprintf("%s/node.ova", d), *out2 = xasprintf("%s/node2.ova", d);
        CHECK_INT(write_fmt("ova", raw, out, &o, &res), ==, 0);
        CHECK_INT(write_fmt("ova", raw, out2, &o, &res2), ==, 0);
        CHECK_STREQ(res.sha256, res2.sha256); /* deterministic */
        size_t n, rn;
        _cleanup_free_ uint8_t *t = slurp(out, &n), *rb = slurp(raw, &rn);
        CHECK_INT(res.bytes_written, ==, n);
        struct tar_entry e[4];
        CHECK_INT(parse_tar(t, n, e, 4), ==, 3);
        CHECK_STREQ(e[0].name, "node.ovf");
        CHECK_STREQ(e[1].name, "node.mf");
        CHECK_STREQ(e[2].name, "node-disk1.vmdk");
        CHECK_INT(parse_vmdk(e[2].data, e[2].size, rb, rn, "node-disk1.vmdk"), ==, 18);

        char h0[SHA256_HEX_LEN + 1], h2[SHA256_HEX_LEN + 1];
        CHECK(hash_sha256_hex(e[0].data, e[0].size, h0) == 0);
        CHECK(hash_sha256_hex(e[2].data, e[2].size, h2) == 0);
        _cleanup_free_ char *mf = xasprintf("SHA256(node.ovf)= %s\nSHA256(node-disk1.vmdk)= %s\n", h0, h2);
        CHECK(e[1].size == strlen(mf) && memcmp(e[1].data, mf, e[1].size) == 0);

        _cleanup_free_ char *ovf = xstrndup((const char *)e[0].data, e[0].size);
        _cleanup_free_ char *ref = xasprintf("ovf:href=\"node-disk1.vmdk\" ovf:id=\"file1\" ovf:size=\"%llu\"",
                                             (unsigned long long)e[2].size);
        _cleanup_free_ char *cap = xasprintf("ovf:capacity=\"%llu\" ovf:capacityAllocationUnits=\"byte\"",
                                             (unsigned long long)((rsize + 511) / 512 * 512));
        _cleanup_free_ char *pop = xasprintf("ovf:populatedSize=\"%llu\"", 18ull * GRAIN);
        static const char *const want[] = {
                "<rasd:VirtualQuantity>4</rasd:VirtualQuantity>",
                "<rasd:VirtualQuantity>8192</rasd:VirtualQuantity>",
                "vmw:key=\"firmware\" vmw:value=\"bios\"",
                "<rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>",
                "<Network ovf:name=\"lab &amp; &lt;test&gt;\">",
                "vmw:osType=\"debian12_64Guest\"",
                "<Product>node</Product>",
                "<Vendor>kiln tests</Vendor>",
                "<Version>1.30.1</Version>",
                "ovf:key=\"KUBERNETES_SEMVER\" ovf:type=\"string\" ovf:userConfigurable=\"false\" ovf:value=\"v1.30.1\"",
                "vmdk.html#streamOptimized",
                "<vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>",
        };
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                if (!strstr(ovf, want[i]))
                        test_fail(__FILE__, __LINE__, "the OVF lacks %s", want[i]);
        CHECK(strstr(ovf, ref) && strstr(ovf, cap) && strstr(ovf, pop));
        CHECK_INT(res.data_bytes, ==, 18ull * GRAIN);

        /* Without options: efi from the ESP, 2 CPUs, 2 GiB. */
        im.options = NULL;
        CHECK_INT(write_fmt("ova", raw, out2, &o, &res2), ==, 0);
        _cleanup_free_ uint8_t *t2 = slurp(out2, &n);
        CHECK_INT(parse_tar(t2, n, e, 4), ==, 3);
        _cleanup_free_ char *ovf2 = xstrndup((const char *)e[0].data, e[0].size);
        CHECK(strstr(ovf2, "vmw:value=\"efi\"") && strstr(ovf2, "<rasd:VirtualQuantity>2048<") &&
              strstr(ovf2, "<Network ovf:name=\"VM Network\">"));
        CHECK_INT(sh("cd '%s' && tar -xf node.ova && sha256sum -c node.mf && xmllint --noout node.ovf && "
                     "qemu-img check node-disk1.vmdk", d), ==, 0);
        CHECK(format_probe(t, 512) == format_find("ova"));
        spec_free(s);
        diag_list_done(&dl);
        rmdir_all(d);
}

static bool has_error(const struct diag_list *d, const char *needle) {
        for (size_t i = 0; i < d->n; i++)
                if (d->v[i].level == DIAG_ERROR && strstr(d->v[i].msg, needle))
                        return true;
        return false;
}

static bool has_hint(const struct diag_list *d, const char *needle) {
        for (size_t i = 0; i < d->n; i++)
                if (d->v[i].hint && strstr(d->v[i].hint, needle))
                        return true;
        return false;
}

TEST(vmdk_and_ova_options_are_spec_errors) {
        static const struct {
                const char *outputs, *disk, *error, *hint;
                unsigned line;
        } cases[] = {
                {"      - {format: ova, cpu: 2}\n", NULL, "cpu", "cpus", 5},
                {"      - {format: ova, cpus: many}\n", NULL, "cpus", NULL, 5},
                {"      - {format: ova, memory: lots}\n", NULL, "memory", NULL, 5},
                {"      - {format: ova, firmware: uefi}\n", NULL, "firmware", "efi", 5},
                {"      - {format: ova, product: {vendr: x}}\n", NULL, "vendr", "vendor", 5},
                {"      - {format: vmdk, cpus: 2}\n", NULL, "only ova", NULL, 5},
                {"      - {format: raw, adapter: ide}\n", NULL, "only vmdk or ova", NULL, 5},
                {"      - {format: vmdk, adapter: scsi}\n", NULL, "adapter", NULL, 5},
                {"      - vmdk\n", "    disk: {size: 3T}\n", "2 TiB", "smaller", 6},
                {"      - {format: ova}\n", "    disk: {size: 3T}\n", "2 TiB", NULL, 6},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct diag_list dl = {0};
                int r;
                struct spec *s = load_spec(cases[i].outputs, cases[i].disk, &dl, &r);
                CHECK(r < 0);
                if (!has_error(&dl, cases[i].error))
                        test_fail(__FILE__, __LINE__, "case %zu: no error with '%s'", i, cases[i].error);
                if (cases[i].hint && !has_hint(&dl, cases[i].hint) && !has_error(&dl, cases[i].hint))
                        test_fail(__FILE__, __LINE__, "case %zu: no hint '%s'", i, cases[i].hint);
                bool at_line = false;
                for (size_t k = 0; k < dl.n; k++)
                        at_line = at_line || (dl.v[k].mark.line == cases[i].line && dl.v[k].mark.col > 1);
                if (!at_line)
                        test_fail(__FILE__, __LINE__, "case %zu: no error at line %u", i, cases[i].line);
                spec_free(s);
                diag_list_done(&dl);
        }
        /* and a good one */
        struct diag_list dl = {0};
        int r;
        struct spec *s = load_spec("      - {format: vmdk, adapter: ide}\n"
                                   "      - {format: ova, cpus: 8, memory: 16G, hardware_version: 19}\n",
                                   "    disk: {size: 2T}\n", &dl, &r);
        CHECK_INT(r, ==, 0);
        spec_free(s);
        diag_list_done(&dl);
}
