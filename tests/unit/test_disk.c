/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for image/disk.c: the GPT written by gpt_write (checked byte by byte
 * and by sfdisk), uuid_derive, disk_plan, and the bare sandbox mkfs.ext4 -d
 * relies on.
 *
 * The whole assembly (a real tree, minutes of mkfs and QEMU) is not a unit
 * test; it runs when asked:
 *
 *     KILN_TEST_DISK_LAYERS=WORK/BUILD/layers KILN_TEST_DISK_OUT=/var/tmp/disk.raw \
 *         ./build/tests/unit/test_disk disk_assemble_tree
 *
 * (optional: KILN_TEST_DISK_SIZE, default 2G; KILN_TEST_DISK_CMDLINE, extra
 * kernel arguments; KILN_TEST_DISK_ROOT_FS=xfs; KILN_TEST_DISK_DATA=MOUNT:FS:SIZE,
 * e.g. /var/lib/apt:xfs:400M, adds a data partition after the root), then
 * tests/e2e/boot-check.sh /var/tmp/disk.raw bios|uefi boots it.
 */
#include "harness.h"

#include "base/strbuf.h"
#include "image/disk.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

#define MIB (1024ull * 1024)

static char *test_dir(const char *name) {
        char *d = xasprintf("%s/kiln-test-disk-%s-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                            name);
        if (!mkdtemp(d)) {
                fprintf(stderr, "mkdtemp %s: %m\n", d);
                abort();
        }
        return d;
}

static void rm_dir(const char *dir) {
        char *cmd = xasprintf("rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", dir);
        free(cmd);
}

/* Runs a shell command and returns its standard output (owned). */
static char *capture(const char *fmt, ...) _printf_(1, 2);
static char *capture(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *cmd = xvasprintf(fmt, ap);
        va_end(ap);
        struct strbuf sb = STRBUF_INIT;
        FILE *p = popen(cmd, "r");
        char buf[4096];
        size_t n;
        while (p && (n = fread(buf, 1, sizeof buf, p)) > 0)
                strbuf_add(&sb, buf, n);
        int st = p ? pclose(p) : -1;
        if (st != 0)
                printf("    (command exited with %d: %s)\n", st, cmd);
        free(cmd);
        return strbuf_detach(&sb);
}

/* Removes every space, tab and newline (to match sfdisk's JSON by content). */
static void squeeze(char *s) {
        char *w = s;
        for (char *r = s; *r; r++)
                if (!isspace((unsigned char)*r))
                        *w++ = *r;
        *w = 0;
}

static bool have_tool(const char *name) {
        char *cmd = xasprintf("command -v %s >/dev/null 2>&1", name);
        bool ok = system(cmd) == 0;
        free(cmd);
        return ok;
}

static uint32_t le32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static struct disk_options opts_sized(uint64_t size) {
        return (struct disk_options){.size = size, .arch = "x86_64", .seed = "test-seed"};
}

static void read_at(int fd, void *buf, size_t n, uint64_t off) {
        if (pread(fd, buf, n, (off_t)off) != (ssize_t)n) {
                fprintf(stderr, "pread: %m\n");
                abort();
        }
}

/* ---- UUIDs ---------------------------------------------------------------- */

TEST(uuid_derive_is_deterministic_v4) {
        uint8_t a[16], b[16], c[16];
        char s[37];
        uuid_derive("seed", "root-fs", a);
        uuid_derive("seed", "root-fs", b);
        uuid_derive("seed", "esp-fs", c);
        CHECK(memcmp(a, b, 16) == 0);
        CHECK(memcmp(a, c, 16) != 0);
        /* seed and purpose are separated: "ab"+"c" is not "a"+"bc" */
        uuid_derive("ab", "c", b);
        uuid_derive("a", "bc", c);
        CHECK(memcmp(b, c, 16) != 0);
        for (int i = 0; i < 100; i++) {
                char purpose[16];
                snprintf(purpose, sizeof purpose, "p%d", i);
                uuid_derive("seed", purpose, a);
                CHECK_INT(a[6] >> 4, ==, 4);      /* version */
                CHECK_INT(a[8] & 0xc0, ==, 0x80); /* variant 10xx */
        }
        /* SHA-256("seed\0root-fs") starts with these bytes, with the
         * version and variant bits applied */
        uuid_derive("seed", "root-fs", a);
        uuid_format(a, s);
        CHECK_INT(strlen(s), ==, 36);
        CHECK(s[14] == '4');
        CHECK(strchr("89ab", s[19]) != NULL);
        uint8_t back[16];
        CHECK_INT(uuid_parse(s, back), ==, 0);
        CHECK(memcmp(a, back, 16) == 0);
}

TEST(uuid_format_and_parse) {
        uint8_t u[16];
        char s[37];
        CHECK_INT(uuid_parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", u), ==, 0);
        CHECK_INT(u[0], ==, 0xc1);
        CHECK_INT(u[15], ==, 0x3b);
        uuid_format(u, s);
        CHECK_STREQ(s, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        CHECK_INT(uuid_parse("c12a7328-f81f-11d2-ba4b-00a0c93ec93", u), ==, -EINVAL);
        CHECK_INT(uuid_parse("c12a7328+f81f-11d2-ba4b-00a0c93ec93b", u), ==, -EINVAL);
        CHECK_INT(uuid_parse("g12a7328-f81f-11d2-ba4b-00a0c93ec93b", u), ==, -EINVAL);
        CHECK_INT(uuid_parse(NULL, u), ==, -EINVAL);
}

/* ---- disk_plan ------------------------------------------------------------ */

TEST(disk_plan_places_partitions) {
        struct disk_options o = opts_sized(2048 * MIB - 1); /* rounds up to 2 GiB */
        struct disk_layout l;
        CHECK_INT(disk_plan(&o, &l), ==, 0);
        CHECK_INT(l.size, ==, 2048 * MIB);
        CHECK_INT(l.nparts, ==, 3);
        CHECK_STREQ(l.parts[DISK_PART_BIOS].name, "bios");
        CHECK_STREQ(l.parts[DISK_PART_ESP].name, "esp");
        CHECK_STREQ(l.parts[DISK_PART_ROOT].name, "root");
        CHECK_INT(l.parts[0].first_lba, ==, 2048);
        CHECK_INT(l.parts[0].last_lba, ==, 4095);
        CHECK_INT(l.parts[1].first_lba, ==, 4096);
        CHECK_INT(l.parts[1].last_lba, ==, 4096 + 64 * 2048 - 1);
        CHECK_INT(l.parts[2].first_lba, ==, 4096 + 64 * 2048);
        for (unsigned i = 0; i < l.nparts; i++)
                CHECK_INT(l.parts[i].first_lba % 2048, ==, 0); /* 1 MiB aligned */
        uint64_t sectors = l.size / 512;
        /* root: up to the last usable LBA (before the 33-sector backup),
         * whole 4 KiB blocks */
        CHECK(l.parts[2].last_lba <= sectors - 34);
        CHECK(l.parts[2].last_lba > sectors - 34 - 8);
        CHECK_INT((l.parts[2].last_lba - l.parts[2].first_lba + 1) % 8, ==, 0);
        CHECK_STREQ(l.root_fs, "ext4");
        CHECK_INT(strlen(l.root_fs_uuid), ==, 36);
        CHECK_INT(strlen(l.esp_fs_id), ==, 9);
        CHECK(l.esp_fs_id[4] == '-');

        /* same seed, same identifiers; another seed, others */
        struct disk_layout l2;
        CHECK_INT(disk_plan(&o, &l2), ==, 0);
        CHECK(memcmp(&l, &l2, sizeof l) == 0);
        o.seed = "other";
        CHECK_INT(disk_plan(&o, &l2), ==, 0);
        CHECK(memcmp(l.disk_guid, l2.disk_guid, 16) != 0);
        CHECK(strcmp(l.root_fs_uuid, l2.root_fs_uuid) != 0);
        CHECK(memcmp(l.parts[2].part_guid, l2.parts[2].part_guid, 16) != 0);
        CHECK(memcmp(l.parts[2].part_guid, l.parts[1].part_guid, 16) != 0);
}

TEST(disk_plan_rejects_bad_sizes_and_arches) {
        struct disk_layout l;
        struct disk_options o = opts_sized(DISK_MIN_SIZE - 1);
        CHECK_INT(disk_plan(&o, &l), ==, -EINVAL);
        o.size = 64 * MIB;
        CHECK_INT(disk_plan(&o, &l), ==, -EINVAL);
        o.size = 0;
        CHECK_INT(disk_plan(&o, &l), ==, -EINVAL);
        o.size = DISK_MAX_SIZE + 1;
        CHECK_INT(disk_plan(&o, &l), ==, -EINVAL);
        o.size = UINT64_MAX;
        CHECK_INT(disk_plan(&o, &l), ==, -EINVAL);
        o.size = DISK_MIN_SIZE;
        CHECK_INT(disk_plan(&o, &l), ==, 0);
        CHECK_INT(l.parts[2].last_lba - l.parts[2].first_lba + 1, >=, DISK_MIN_ROOT_SIZE / 512 - 8);
        o.seed = NULL;
        CHECK_INT(disk_plan(&o, &l), ==, -EINVAL);
        o.seed = "s";
        o.arch = "riscv64";
        CHECK_INT(disk_plan(&o, &l), ==, -EOPNOTSUPP);
        o.arch = NULL;
        CHECK_INT(disk_plan(&o, &l), ==, -EOPNOTSUPP);
        /* aarch64 plans (its own root type) but cannot be assembled yet */
        o.arch = "aarch64";
        CHECK_INT(disk_plan(&o, &l), ==, 0);
        char t[37];
        uuid_format(l.parts[2].type_guid, t);
        CHECK_STREQ(t, "b921b045-1df0-41c3-af44-4c6f280d3fae");
        const char *layers[] = {"/nonexistent"};
        o.layers = layers;
        o.nlayers = 1;
        o.scratch_dir = "/nonexistent";
        o.log_fd = -1;
        CHECK_INT(disk_assemble(&o, &l, 1), ==, -EOPNOTSUPP);
        CHECK_INT(disk_plan(NULL, &l), ==, -EINVAL);
}

/* ---- disk_plan with a partition list -------------------------------------- */

static const struct disk_part_req custom_parts[] = {
        {.type = DISK_PT_BIOS, .size = MIB},
        {.type = DISK_PT_ESP, .size = 256 * MIB},
        {.type = DISK_PT_ROOT, .filesystem = "xfs"}, /* the rest, in the middle */
        {.type = DISK_PT_LINUX, .mount = "/var/lib/containers", .size = 1024 * MIB - 1,
         .filesystem = "xfs"},
        {.type = DISK_PT_LINUX, .mount = "/srv/data", .size = 100 * MIB, .label = "data"},
};

TEST(disk_plan_custom_layout) {
        struct disk_options o = opts_sized(4096 * MIB);
        o.parts = custom_parts;
        o.nparts = ARRAY_SIZE(custom_parts);
        struct disk_layout l, d;
        CHECK_INT(disk_plan(&o, &l), ==, 0);
        CHECK_INT(l.nparts, ==, 5);
        CHECK_INT(l.bios, ==, 0);
        CHECK_INT(l.esp, ==, 1);
        CHECK_INT(l.root, ==, 2);
        CHECK_STREQ(l.root_fs, "xfs");
        CHECK_STREQ(l.parts[0].name, "bios");
        CHECK_STREQ(l.parts[1].name, "esp");
        CHECK_STREQ(l.parts[2].name, "root");
        CHECK_STREQ(l.parts[3].name, "containers"); /* the mount's last component */
        CHECK_STREQ(l.parts[4].name, "data");
        CHECK_STREQ(l.parts[3].mount, "/var/lib/containers");
        CHECK_STREQ(l.parts[1].mount, "/boot/efi");
        CHECK_STREQ(l.parts[2].mount, "/");
        CHECK(l.parts[0].fs == NULL && l.parts[0].mount == NULL);
        CHECK_STREQ(l.parts[3].fs, "xfs");
        CHECK_STREQ(l.parts[4].fs, "ext4");
        /* 1 MiB aligned, back to back, sizes rounded up to MiB */
        CHECK_INT(l.parts[0].first_lba, ==, 2048);
        CHECK_INT(l.parts[1].first_lba, ==, 4096);
        CHECK_INT(l.parts[2].first_lba, ==, 4096 + 256 * 2048);
        for (unsigned i = 0; i + 1 < l.nparts; i++)
                CHECK_INT(l.parts[i + 1].first_lba, ==, l.parts[i].last_lba + 1);
        for (unsigned i = 0; i < l.nparts; i++)
                CHECK_INT(l.parts[i].first_lba % 2048, ==, 0);
        CHECK_INT(l.parts[3].last_lba - l.parts[3].first_lba + 1, ==, 1024 * 2048);
        CHECK_INT(l.parts[4].last_lba - l.parts[4].first_lba + 1, ==, 100 * 2048);
        /* the rest: every whole MiB the others leave, ending the disk's last
         * whole MiB before the backup GPT */
        uint64_t sectors = l.size / 512;
        CHECK_INT(l.parts[4].last_lba, ==, (sectors - 34 + 1) / 2048 * 2048 - 1);
        CHECK_INT(l.parts[2].last_lba - l.parts[2].first_lba + 1, ==,
                  (4096 - 1 - 1 - 1 - 256 - 1024 - 100) * 2048);
        /* type GUIDs */
        char t[37];
        uuid_format(l.parts[3].type_guid, t);
        CHECK_STREQ(t, "0fc63daf-8483-4772-8e79-3d69d8477de4");
        uuid_format(l.parts[2].type_guid, t);
        CHECK_STREQ(t, "4f68bce3-e8cd-4db1-96e7-fbcaf984b709");
        /* identifiers follow the role, not the position: the default layout
         * with the same seed has the same root and ESP UUIDs */
        struct disk_options od = opts_sized(4096 * MIB);
        CHECK_INT(disk_plan(&od, &d), ==, 0);
        CHECK_STREQ(d.root_fs_uuid, l.root_fs_uuid);
        CHECK_STREQ(d.esp_fs_id, l.esp_fs_id);
        CHECK(memcmp(d.parts[2].part_guid, l.parts[2].part_guid, 16) == 0);
        CHECK(memcmp(d.disk_guid, l.disk_guid, 16) == 0);
        /* distinct everywhere else */
        for (unsigned i = 0; i < l.nparts; i++)
                for (unsigned j = 0; j < i; j++) {
                        CHECK(memcmp(l.parts[i].part_guid, l.parts[j].part_guid, 16) != 0);
                        CHECK(strcmp(l.parts[i].fs_uuid, l.parts[j].fs_uuid) != 0 ||
                              !l.parts[i].fs_uuid[0]);
                }
        /* a copy keeps a derived name when re-pointed; the same inputs give
         * the same layout */
        struct disk_layout l2;
        CHECK_INT(disk_plan(&o, &l2), ==, 0);
        CHECK_STREQ(l2.parts[3].name, "containers");
        CHECK(l2.parts[3].name == l2.parts[3].name_buf);
        CHECK_STREQ(l2.parts[3].fs_uuid, l.parts[3].fs_uuid);
        /* the default layout with root xfs */
        od.root_fs = "xfs";
        CHECK_INT(disk_plan(&od, &d), ==, 0);
        CHECK_STREQ(d.root_fs, "xfs");
        CHECK_INT(d.nparts, ==, 3);
        od.root_fs = "btrfs";
        CHECK_INT(disk_plan(&od, &d), ==, -EINVAL);
        /* UEFI only: no BIOS boot partition; the root last (it grows) */
        const struct disk_part_req uefi[] = {{.type = DISK_PT_ESP}, {.type = DISK_PT_ROOT}};
        o.parts = uefi;
        o.nparts = 2;
        CHECK_INT(disk_plan(&o, &l), ==, 0);
        CHECK_INT(l.bios, ==, -1);
        CHECK_INT(l.esp, ==, 0);
        CHECK_INT(l.parts[0].last_lba - l.parts[0].first_lba + 1, ==, 64 * 2048); /* default */
        CHECK_INT((l.parts[1].last_lba - l.parts[1].first_lba + 1) % 8, ==, 0);
        CHECK(l.parts[1].last_lba > sectors - 34 - 8 && l.parts[1].last_lba <= sectors - 34);
}

/* Plans a 2 GiB disk from one broken list; returns disk_plan's result. */
static int plan_parts(const struct disk_part_req *p, size_t n) {
        struct disk_options o = opts_sized(2048 * MIB);
        struct disk_layout l;
        o.parts = p;
        o.nparts = n;
        return disk_plan(&o, &l);
}

#define PLAN(...)                                                                               \
        ({                                                                                      \
                const struct disk_part_req _p[] = {__VA_ARGS__};                                \
                plan_parts(_p, ARRAY_SIZE(_p));                                                 \
        })
#define BIOS {.type = DISK_PT_BIOS}
#define ESP {.type = DISK_PT_ESP}
#define ROOT {.type = DISK_PT_ROOT}

TEST(disk_plan_rejects_bad_layouts) {
        CHECK_INT(PLAN(BIOS, ESP, ROOT), ==, 0);
        CHECK_INT(PLAN(BIOS, ESP, ROOT, ROOT), ==, -EINVAL);           /* two roots */
        CHECK_INT(PLAN(BIOS, ESP), ==, -EINVAL);                       /* no root */
        CHECK_INT(PLAN(ROOT), ==, -EINVAL);                            /* cannot boot */
        CHECK_INT(PLAN(BIOS, BIOS, ROOT), ==, -EINVAL);
        CHECK_INT(PLAN(ESP, ESP, ROOT), ==, -EINVAL);
        /* two partitions take the rest */
        CHECK_INT(PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .mount = "/srv"}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .mount = "/srv", .size = 64 * MIB}), ==, 0);
        /* too small: ESP (FAT32), xfs, ext4; the rest too small */
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ESP, .size = 32 * MIB}, ROOT), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ESP, .size = 33 * MIB}, ROOT), ==, 0);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .size = 299 * MIB, .filesystem = "xfs"}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .size = 300 * MIB, .filesystem = "xfs"}), ==, 0);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .size = 31 * MIB}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .mount = "/srv", .size = 2020 * MIB}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .mount = "/srv", .size = 2013 * MIB}), ==, 0);
        /* does not fit */
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .size = 2046 * MIB}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .size = 2045 * MIB}), ==, 0); /* 2048 - 1 - 1 - 1 */
        /* filesystems and mounts by type */
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ESP, .filesystem = "ext4"}, ROOT), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .filesystem = "btrfs"}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .mount = "/x"}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .size = 64 * MIB}), ==, -EINVAL);
        static const char *const bad_mounts[] = {"/", "srv", "/srv/", "/srv//x", "/srv/../etc",
                                                 "/etc", "/usr/local", "/boot/x", "/a b", "/a:b",
                                                 "/lib64", "/run/x", "/srv/."};
        for (size_t i = 0; i < ARRAY_SIZE(bad_mounts); i++) {
                int r = PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .mount = bad_mounts[i], .size = 64 * MIB});
                if (r != -EINVAL)
                        printf("    mount %s accepted\n", bad_mounts[i]);
                CHECK_INT(r, ==, -EINVAL);
        }
        CHECK_INT(PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .mount = "/etcetera", .size = 64 * MIB}), ==, 0);
        /* the same mount twice, nested mounts */
        CHECK_INT(PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .mount = "/srv", .size = 64 * MIB},
                       {.type = DISK_PT_LINUX, .mount = "/srv", .size = 64 * MIB}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .mount = "/srv", .size = 64 * MIB},
                       {.type = DISK_PT_LINUX, .mount = "/srv/a", .size = 64 * MIB}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .mount = "/srv/a", .size = 64 * MIB},
                       {.type = DISK_PT_LINUX, .mount = "/srv", .size = 64 * MIB}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, ROOT, {.type = DISK_PT_LINUX, .mount = "/srv", .size = 64 * MIB},
                       {.type = DISK_PT_LINUX, .mount = "/srv2", .size = 64 * MIB}), ==, 0);
        /* labels: charset and per-filesystem length */
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .label = "sixteen-chars-ok"}), ==, 0);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .label = "seventeen-chars-x"}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .label = "thirteen-char", .filesystem = "xfs"}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ESP, .label = "TWELVE-CHARS"}, ROOT), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .label = "a b"}), ==, -EINVAL);
        CHECK_INT(PLAN(BIOS, {.type = DISK_PT_ROOT, .label = ""}), ==, -EINVAL);
        /* counts */
        struct disk_part_req many[DISK_MAX_PARTS + 1];
        char mounts[DISK_MAX_PARTS + 1][16];
        many[0] = (struct disk_part_req)BIOS;
        many[1] = (struct disk_part_req){.type = DISK_PT_ROOT, .size = 64 * MIB};
        for (unsigned i = 2; i < DISK_MAX_PARTS + 1; i++) {
                snprintf(mounts[i], sizeof mounts[i], "/d%u", i);
                many[i] = (struct disk_part_req){.type = DISK_PT_LINUX, .mount = mounts[i], .size = 32 * MIB};
        }
        CHECK_INT(plan_parts(many, DISK_MAX_PARTS), ==, 0);
        CHECK_INT(plan_parts(many, DISK_MAX_PARTS + 1), ==, -EINVAL);
        CHECK_INT(plan_parts(many, 0), ==, -EINVAL);
        many[0].type = (enum disk_part_type)DISK_PT_COUNT;
        CHECK_INT(plan_parts(many, 2), ==, -EINVAL);
}

/* ---- gpt_write ------------------------------------------------------------ */

static const char *const type_text[] = {"21686148-6449-6e6f-744e-656564454649",
                                        "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
                                        "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"};

/* Reads a GUID from disk (mixed-endian) into its text form. */
static void disk_guid_text(const uint8_t *d, char out[37]) {
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 d[3], d[2], d[1], d[0], d[5], d[4], d[7], d[6], d[8], d[9], d[10], d[11], d[12],
                 d[13], d[14], d[15]);
}

/* Checks one header (at lba) and its entry array against the layout;
 * returns the header sector for comparisons. */
static void check_header(int fd, const struct disk_layout *l, uint64_t lba, uint64_t alt,
                         uint64_t entries_lba, uint8_t hdr[512]) {
        uint64_t sectors = l->size / 512;
        read_at(fd, hdr, 512, lba * 512);
        CHECK(memcmp(hdr, "EFI PART", 8) == 0);
        CHECK_INT(le32(hdr + 8), ==, 0x00010000);
        CHECK_INT(le32(hdr + 12), ==, 92);
        uint8_t copy[92];
        memcpy(copy, hdr, 92);
        memset(copy + 16, 0, 4);
        CHECK_INT(le32(hdr + 16), ==, crc32(0, copy, 92));
        CHECK_INT(le32(hdr + 20), ==, 0);
        CHECK_INT(le64(hdr + 24), ==, lba);
        CHECK_INT(le64(hdr + 32), ==, alt);
        CHECK_INT(le64(hdr + 40), ==, 34);
        CHECK_INT(le64(hdr + 48), ==, sectors - 34);
        char g[37], want[37];
        disk_guid_text(hdr + 56, g);
        uuid_format(l->disk_guid, want);
        CHECK_STREQ(g, want);
        CHECK_INT(le64(hdr + 72), ==, entries_lba);
        CHECK_INT(le32(hdr + 80), ==, 128);
        CHECK_INT(le32(hdr + 84), ==, 128);
        for (int i = 92; i < 512; i++)
                if (hdr[i]) {
                        CHECK(!"header padding is zero");
                        break;
                }

        uint8_t *e = xmalloc(128 * 128);
        read_at(fd, e, 128 * 128, entries_lba * 512);
        CHECK_INT(le32(hdr + 88), ==, crc32(0, e, 128 * 128));
        for (unsigned i = 0; i < 128; i++) {
                const uint8_t *p = e + i * 128;
                if (i >= l->nparts) {
                        bool zero = true;
                        for (int k = 0; k < 128; k++)
                                zero &= p[k] == 0;
                        CHECK(zero);
                        continue;
                }
                disk_guid_text(p, g);
                CHECK_STREQ(g, type_text[i]);
                disk_guid_text(p + 16, g);
                uuid_format(l->parts[i].part_guid, want);
                CHECK_STREQ(g, want);
                CHECK_INT(le64(p + 32), ==, l->parts[i].first_lba);
                CHECK_INT(le64(p + 40), ==, l->parts[i].last_lba);
                CHECK_INT(le64(p + 48), ==, 0);
                char name[37] = {0};
                for (int k = 0; k < 36; k++) {
                        CHECK_INT(p[56 + 2 * k + 1], ==, 0);
                        name[k] = (char)p[56 + 2 * k];
                }
                CHECK_STREQ(name, l->parts[i].name);
        }
        free(e);
}

TEST(gpt_write_structure) {
        struct disk_options o = opts_sized(DISK_MIN_SIZE);
        struct disk_layout l;
        CHECK_INT(disk_plan(&o, &l), ==, 0);
        char *dir = test_dir("gpt");
        char *path = xasprintf("%s/disk.raw", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        CHECK_INT(ftruncate(fd, (off_t)l.size), ==, 0);
        /* boot code written before must survive */
        uint8_t code[440];
        memset(code, 0xcc, sizeof code);
        CHECK_INT(pwrite(fd, code, sizeof code, 0), ==, (ssize_t)sizeof code);
        CHECK_INT(gpt_write(fd, &l), ==, 0);

        uint8_t mbr[512];
        read_at(fd, mbr, 512, 0);
        CHECK(memcmp(mbr, code, 440) == 0);
        CHECK_INT(mbr[510], ==, 0x55);
        CHECK_INT(mbr[511], ==, 0xaa);
        CHECK_INT(mbr[446 + 4], ==, 0xee);
        CHECK_INT(mbr[446 + 0], ==, 0);
        CHECK_INT(le32(mbr + 446 + 8), ==, 1);
        CHECK_INT(le32(mbr + 446 + 12), ==, l.size / 512 - 1);
        for (int i = 446 + 16; i < 510; i++)
                CHECK_INT(mbr[i], ==, 0); /* the other three entries */

        uint64_t last = l.size / 512 - 1;
        uint8_t primary[512], backup[512];
        check_header(fd, &l, 1, last, 2, primary);
        check_header(fd, &l, last, 1, last - 32, backup);
        /* the backup mirrors the primary but for its own/alternate/entries LBAs and CRC */
        CHECK(memcmp(primary + 40, backup + 40, 72 - 40) == 0);
        CHECK(memcmp(primary + 80, backup + 80, 12) == 0);
        struct stat st;
        CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size == l.size);
        CHECK((uint64_t)st.st_blocks * 512 < 1 * MIB); /* sparse */

        /* sfdisk reads it back: types, GUIDs, names, no complaints */
        if (have_tool("sfdisk")) {
                char *json = capture("sfdisk --json '%s'", path);
                squeeze(json);
                char want[256], g[37];
                uuid_format(l.disk_guid, g);
                for (char *p = g; *p; p++)
                        *p = (char)toupper(*p);
                snprintf(want, sizeof want, "\"id\":\"%s\"", g);
                CHECK(strstr(json, "\"label\":\"gpt\"") != NULL);
                CHECK(strstr(json, want) != NULL);
                CHECK(strstr(json, "\"firstlba\":34,") != NULL);
                for (unsigned i = 0; i < l.nparts; i++) {
                        char t[37];
                        snprintf(t, sizeof t, "%s", type_text[i]);
                        for (char *p = t; *p; p++)
                                *p = (char)toupper(*p);
                        uuid_format(l.parts[i].part_guid, g);
                        for (char *p = g; *p; p++)
                                *p = (char)toupper(*p);
                        snprintf(want, sizeof want, "\"start\":%llu,\"size\":%llu,\"type\":\"%s\",\"uuid\":\"%s\"",
                                 (unsigned long long)l.parts[i].first_lba,
                                 (unsigned long long)(l.parts[i].last_lba - l.parts[i].first_lba + 1),
                                 t, g);
                        if (!strstr(json, want))
                                printf("    missing in sfdisk --json: %s\n", want);
                        CHECK(strstr(json, want) != NULL);
                        snprintf(want, sizeof want, "\"name\":\"%s\"", l.parts[i].name);
                        CHECK(strstr(json, want) != NULL);
                }
                free(json);
                char *verify = capture("sfdisk --verify '%s' 2>&1", path);
                CHECK(strstr(verify, "No errors detected") != NULL);
                if (!strstr(verify, "No errors detected"))
                        printf("    sfdisk --verify: %s\n", verify);
                free(verify);
        } else
                printf("    sfdisk not installed (package fdisk): skipping its checks\n");
        close(fd);
        free(path);
        rm_dir(dir);
        free(dir);
}

/* sfdisk reads a custom layout back: every partition's start, size, type
 * GUID, partition GUID and name. */
TEST(gpt_write_custom_layout_parses_with_sfdisk) {
        if (!have_tool("sfdisk")) {
                printf("    skipped: sfdisk not installed (package fdisk)\n");
                return;
        }
        struct disk_options o = opts_sized(4096 * MIB);
        o.parts = custom_parts;
        o.nparts = ARRAY_SIZE(custom_parts);
        struct disk_layout l;
        CHECK_INT(disk_plan(&o, &l), ==, 0);
        char *dir = test_dir("gpt-custom");
        char *path = xasprintf("%s/disk.raw", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        CHECK_INT(ftruncate(fd, (off_t)l.size), ==, 0);
        CHECK_INT(gpt_write(fd, &l), ==, 0);
        close(fd);
        char *json = capture("sfdisk --json '%s'", path);
        squeeze(json);
        unsigned found = 0;
        for (unsigned i = 0; i < l.nparts; i++) {
                char t[37], g[37], want[256];
                uuid_format(l.parts[i].type_guid, t);
                uuid_format(l.parts[i].part_guid, g);
                for (char *p = t; *p; p++)
                        *p = (char)toupper(*p);
                for (char *p = g; *p; p++)
                        *p = (char)toupper(*p);
                snprintf(want, sizeof want,
                         "\"start\":%llu,\"size\":%llu,\"type\":\"%s\",\"uuid\":\"%s\",\"name\":\"%s\"",
                         (unsigned long long)l.parts[i].first_lba,
                         (unsigned long long)(l.parts[i].last_lba - l.parts[i].first_lba + 1), t, g,
                         l.parts[i].name);
                if (strstr(json, want))
                        found++;
                else
                        printf("    missing in sfdisk --json: %s\n", want);
        }
        CHECK_INT(found, ==, 5);
        /* exactly five partitions */
        size_t n = 0;
        for (const char *p = json; (p = strstr(p, "\"node\":")); p++)
                n++;
        CHECK_INT(n, ==, 5);
        free(json);
        char *verify = capture("sfdisk --verify '%s' 2>&1", path);
        CHECK(strstr(verify, "No errors detected") != NULL);
        free(verify);
        free(path);
        rm_dir(dir);
        free(dir);
}

TEST(gpt_write_rejects_bad_layouts) {
        struct disk_options o = opts_sized(DISK_MIN_SIZE);
        struct disk_layout l, bad;
        CHECK_INT(disk_plan(&o, &l), ==, 0);
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        bad = l;
        bad.parts[1].first_lba = bad.parts[0].last_lba; /* overlap */
        CHECK_INT(gpt_write(fd, &bad), ==, -EINVAL);
        bad = l;
        bad.parts[2].last_lba = l.size / 512 - 33; /* into the backup array */
        CHECK_INT(gpt_write(fd, &bad), ==, -EINVAL);
        bad = l;
        bad.parts[0].first_lba = 33; /* into the primary array */
        CHECK_INT(gpt_write(fd, &bad), ==, -EINVAL);
        bad = l;
        bad.size += 1;
        CHECK_INT(gpt_write(fd, &bad), ==, -EINVAL);
        bad = l;
        bad.parts[0].name = "a name that is far too long for a GPT entry";
        CHECK_INT(gpt_write(fd, &bad), ==, -EINVAL);
        bad = l;
        bad.nparts = 5;
        CHECK_INT(gpt_write(fd, &bad), ==, -EINVAL);
        CHECK_INT(gpt_write(fd, NULL), ==, -EINVAL);
        close(fd);
}

/* ---- the bare sandbox (sandbox.h), as mkfs.ext4 -d uses it --------------- */

TEST(sandbox_bare_mounts_only_the_overlay) {
        if (geteuid() != 0) {
                printf("    skipped: not root\n");
                return;
        }
        char *dir = test_dir("bare");
        char *lower = xasprintf("%s/lower", dir), *upper = xasprintf("%s/upper", dir),
             *work = xasprintf("%s/work", dir), *mnt = xasprintf("%s/mnt", dir),
             *out = xasprintf("%s/out", dir);
        char *cmd = xasprintf("mkdir -p %s/etc %s %s %s && echo hi > %s/etc/x", lower, upper,
                              work, mnt, lower);
        CHECK(system(cmd) == 0);
        free(cmd);
        const char *layers[] = {lower};
        int ofd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        /* list the tree as the host sees it: only etc, nothing mounted */
        char *argv[] = {"/bin/sh", "-c",
                        "ls -A \"$0\"; cat \"$0/etc/x\"; grep -c \" $0\" /proc/self/mountinfo", mnt,
                        NULL};
        struct sandbox_opts so = {.lower = layers, .nlower = 1, .upper = upper, .work = work,
                                  .mountpoint = mnt, .mode = SANDBOX_HOST, .bare = true,
                                  .argv = argv, .stdin_fd = -1, .stdout_fd = ofd,
                                  .stderr_fd = -1};
        struct sandbox_result res;
        CHECK_INT(sandbox_run(&so, &res), ==, 0);
        CHECK_INT(res.exit_code, ==, 0);
        char *text = NULL;
        size_t len;
        CHECK_INT(read_file(out, 4096, &text, &len), ==, 0);
        CHECK_STREQ(text, "etc\nhi\n1\n"); /* one mount under mnt: the overlay */
        free(text);
        /* nothing was created in the layer */
        char *ls = capture("ls -A '%s'", upper);
        CHECK_STREQ(ls, "");
        free(ls);
        /* chroot mode and binds do not go with bare */
        so.mode = SANDBOX_CHROOT;
        CHECK_INT(sandbox_run(&so, &res), ==, -EINVAL);
        so.mode = SANDBOX_HOST;
        struct sandbox_bind b = {.host_path = dir, .tree_path = "/run/x"};
        so.binds = &b;
        so.nbinds = 1;
        CHECK_INT(sandbox_run(&so, &res), ==, -EINVAL);
        close(ofd);
        free(lower), free(upper), free(work), free(mnt), free(out);
        rm_dir(dir);
        free(dir);
}

/* ---- disk_assemble's checks of the tree (they fail before any mkfs) ------ */

/* Runs disk_assemble on a single layer made by `setup` (a shell command
 * run with the layer as cwd); returns its result and the log (owned). */
static int assemble_layer(const char *setup, char **ret_log) {
        char *dir = test_dir("tree");
        char *layer = xasprintf("%s/layer", dir), *scratch = xasprintf("%s/scratch", dir),
             *log = xasprintf("%s/log", dir), *out = xasprintf("%s/disk.raw", dir);
        char *cmd = xasprintf("mkdir -p %s %s && cd %s && %s", layer, scratch, layer, setup);
        CHECK(system(cmd) == 0);
        free(cmd);
        const char *layers[] = {layer};
        int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        struct disk_options o = opts_sized(DISK_MIN_SIZE);
        o.layers = layers;
        o.nlayers = 1;
        o.scratch_dir = scratch;
        o.log_fd = log_fd;
        struct disk_layout l;
        CHECK_INT(disk_plan(&o, &l), ==, 0);
        int r = disk_assemble(&o, &l, fd);
        struct stat st;
        CHECK(fstat(fd, &st) == 0 && st.st_size == 0); /* failed before writing */
        close(fd);
        close(log_fd);
        size_t len;
        *ret_log = NULL;
        CHECK_INT(read_file(log, 1 << 20, ret_log, &len), ==, 0);
        /* the layer is untouched: only what setup made */
        char *ls = capture("cd '%s' && find . | sort | tr '\\n' ' '", layer);
        CHECK(strstr(ls, "fstab") == NULL && strstr(ls, "proc") == NULL &&
              strstr(ls, "kiln") == NULL);
        free(ls);
        free(layer), free(scratch), free(log), free(out);
        rm_dir(dir);
        free(dir);
        return r;
}

TEST(disk_assemble_needs_kernel_initramfs_and_grub) {
        if (geteuid() != 0) {
                printf("    skipped: not root\n");
                return;
        }
        char *log = NULL;
        CHECK_INT(assemble_layer("true", &log), ==, -ENOENT);
        CHECK(log && strstr(log, "kiln: error: the tree has no kernel (/boot/vmlinuz-VERSION)"));
        free(log);

        CHECK_INT(assemble_layer("mkdir boot && touch boot/vmlinuz-6.1.0-9-amd64 "
                                 "boot/vmlinuz-6.1.0-10-amd64 boot/initrd.img-6.1.0-9-amd64",
                                 &log),
                  ==, -ENOENT);
        /* the newest by version sort, and its own initramfs */
        CHECK(log && strstr(log, "kernel /boot/vmlinuz-6.1.0-10-amd64 but no initramfs "
                                 "/boot/initrd.img-6.1.0-10-amd64: install initramfs-tools"));
        free(log);

        CHECK_INT(assemble_layer("mkdir -p boot usr/lib/grub/i386-pc && touch "
                                 "boot/vmlinuz-6.1.0-9-amd64 boot/initrd.img-6.1.0-9-amd64 "
                                 "usr/lib/grub/i386-pc/boot.img usr/lib/grub/i386-pc/moddep.lst",
                                 &log),
                  ==, -ENOENT);
        CHECK(log && strstr(log, "booting /boot/vmlinuz-6.1.0-9-amd64 with "
                                 "/boot/initrd.img-6.1.0-9-amd64"));
        CHECK(log && strstr(log, "kiln: error: the tree cannot be made bootable with GRUB (BIOS "
                                 "and UEFI): install grub-common grub-efi-amd64-bin in the tree"));
        free(log);

        /* a symlink where kiln writes is refused, not followed */
        CHECK_INT(assemble_layer("mkdir -p boot usr/bin usr/lib/grub/i386-pc usr/lib/grub/x86_64-efi && "
                                 "touch boot/vmlinuz-1 boot/initrd.img-1 usr/bin/grub-mkimage "
                                 "usr/lib/grub/i386-pc/boot.img usr/lib/grub/i386-pc/moddep.lst "
                                 "usr/lib/grub/x86_64-efi/moddep.lst && ln -s /tmp etc",
                                 &log),
                  ==, -EINVAL);
        CHECK(log && strstr(log, "the tree's /etc is not a directory"));
        free(log);
}

/* The tools disk_assemble runs get the environment it builds (PATH,
 * locale, SOURCE_DATE_EPOCH...), never kiln's: a KILN_VAR_* secret in
 * kiln's environment does not reach them. The tree's grub-mkimage here is
 * a script (run by a static busybox) that prints its environment into the
 * log and fails. */
TEST(disk_tools_do_not_see_kilns_environment) {
        if (geteuid() != 0 || access("/bin/busybox", X_OK) < 0) {
                printf("    skipped: needs root and /bin/busybox (busybox-static)\n");
                return;
        }
        setenv("KILN_VAR_DISK_TEST_SECRET", "disk-s3cr3t", 1);
        setenv("KILN_DISK_TEST_OTHER", "other-value", 1);
        char *log = NULL;
        CHECK_INT(assemble_layer("mkdir -p boot bin usr/bin usr/lib/grub/i386-pc usr/lib/grub/x86_64-efi && "
                                 "touch boot/vmlinuz-1 boot/initrd.img-1 usr/lib/grub/i386-pc/boot.img "
                                 "usr/lib/grub/i386-pc/moddep.lst usr/lib/grub/x86_64-efi/moddep.lst && "
                                 "cp /bin/busybox bin/busybox && ln -s busybox bin/sh && "
                                 "printf '#!/bin/sh\\n/bin/busybox env | /bin/busybox sed s/^/tool-env:/\\n"
                                 "exit 3\\n' > usr/bin/grub-mkimage && chmod 755 usr/bin/grub-mkimage",
                                 &log),
                  ==, -EIO);
        unsetenv("KILN_VAR_DISK_TEST_SECRET");
        unsetenv("KILN_DISK_TEST_OTHER");
        /* the tool ran and printed what it had */
        CHECK(log && strstr(log, "tool-env:SOURCE_DATE_EPOCH="));
        CHECK(log && strstr(log, "tool-env:PATH="));
        CHECK(log && strstr(log, "grub-mkimage failed"));
        /* and nothing of kiln's own environment */
        CHECK(log && !strstr(log, "KILN_VAR_"));
        CHECK(log && !strstr(log, "disk-s3cr3t"));
        CHECK(log && !strstr(log, "other-value"));
        free(log);
}

/* ---- one filesystem from a tree (disk_make_filesystem) -------------------- */

static char *xfs_cat(const char *img, const char *path);

/* A layer with what a root tree holds: files, a symlink, hard links, a
 * FIFO, a device, setuid, a sticky directory, ucf's ':'-named cache. */
static const char fs_tree[] =
        "mkdir -p etc var/lib/ucf/cache tmp srv/data/sub usr/bin && "
        "printf 'hello xfs\\n' > etc/hello && chmod 0640 etc/hello && chown 1000:100 etc/hello && "
        "ln -s /etc/hello etc/link && "
        "printf 'linked\\n' > usr/bin/a && ln usr/bin/a usr/bin/b && "
        "printf 'suid\\n' > usr/bin/su && chmod 4755 usr/bin/su && "
        "chmod 1777 tmp && mkfifo srv/fifo && mknod srv/null c 1 3 && "
        "printf 'pristine\\n' > 'var/lib/ucf/cache/:etc:ssh:sshd_config' && "
        "printf 'data file\\n' > srv/data/sub/f && : > srv/data/empty";

/* Makes fs from dir of a layer made by setup at 1 MiB into a file; returns
 * disk_make_filesystem's result, the file and the log (owned). */
static int make_fs_from(const char *setup, const char *fs, const char *dir, char **ret_img,
                        char **ret_log, char **ret_dir) {
        char *d = test_dir("mkfs");
        char *layer = xasprintf("%s/layer", d), *scratch = xasprintf("%s/scratch", d),
             *log = xasprintf("%s/log", d), *img = xasprintf("%s/disk.img", d);
        char *cmd = xasprintf("mkdir -p %s %s && cd %s && %s", layer, scratch, layer, setup);
        CHECK(system(cmd) == 0);
        free(cmd);
        const char *layers[] = {layer};
        int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        struct disk_options o = opts_sized(DISK_MIN_SIZE);
        o.layers = layers;
        o.nlayers = 1;
        o.scratch_dir = scratch;
        o.log_fd = log_fd;
        o.source_date_epoch = 1700000000;
        int r = disk_make_filesystem(&o, fs, "data", "6b1c1a4e-3f4a-4b8e-9d2a-0c1f2e3d4c5b", dir, MIB,
                                     300 * MIB, fd);
        close(fd);
        close(log_fd);
        size_t len;
        *ret_log = NULL;
        CHECK_INT(read_file(log, 1 << 22, ret_log, &len), ==, 0);
        /* the partition alone, for the checkers */
        cmd = xasprintf("dd if='%s' of='%s.part' bs=1M skip=1 count=300 conv=sparse status=none", img, img);
        CHECK(r < 0 || system(cmd) == 0);
        free(cmd);
        *ret_img = xasprintf("%s.part", img);
        *ret_dir = d;
        free(layer), free(scratch), free(log), free(img);
        return r;
}

static char *xfs_print(const char *img, const char *path, const char *field) {
        return capture("xfs_db -r -c 'path %s' -c 'print %s' '%s' 2>&1", path, field, img);
}

TEST(make_filesystem_xfs_from_a_tree) {
        if (geteuid() != 0 || !have_tool("mkfs.xfs") || !have_tool("getfattr")) {
                printf("    skipped: needs root, mkfs.xfs (xfsprogs) and getfattr (attr)\n");
                return;
        }
        char *img, *log, *dir, *out;
        int r = make_fs_from(fs_tree, "xfs", "", &img, &log, &dir);
        CHECK_INT(r, ==, 0);
        if (r < 0) {
                printf("%s", log);
                goto done;
        }
        out = capture("xfs_repair -n '%s' >/dev/null 2>&1 && echo REPAIR-CLEAN; blkid -o export '%s'", img, img);
        CHECK(strstr(out, "REPAIR-CLEAN") != NULL);
        CHECK(strstr(out, "UUID=6b1c1a4e-3f4a-4b8e-9d2a-0c1f2e3d4c5b\n") != NULL);
        CHECK(strstr(out, "LABEL=data\n") != NULL);
        CHECK(strstr(out, "TYPE=xfs\n") != NULL);
        free(out);
        /* contents, owner and mode */
        out = xfs_cat(img, "/etc/hello");
        CHECK_STREQ(out, "hello xfs\n");
        free(out);
        out = xfs_print(img, "/etc/hello", "core.mode core.uid core.gid");
        CHECK(strstr(out, "core.mode = 0100640") && strstr(out, "core.uid = 1000") &&
              strstr(out, "core.gid = 100"));
        free(out);
        /* the sticky bit (set afterwards with xfs_db), setuid, symlink,
         * FIFO, device (xfs's old encoding: major << 18 | minor) */
        out = xfs_print(img, "/tmp", "core.mode");
        CHECK(strstr(out, "core.mode = 041777") != NULL);
        free(out);
        out = xfs_print(img, "/usr/bin/su", "core.mode");
        CHECK(strstr(out, "core.mode = 0104755") != NULL);
        free(out);
        out = xfs_print(img, "/etc/link", "core.mode u3");
        CHECK(strstr(out, "core.mode = 0120777") && strstr(out, "u3.symlink = \"/etc/hello\""));
        free(out);
        out = xfs_print(img, "/srv/fifo", "core.mode");
        CHECK(strstr(out, "core.mode = 010644") != NULL);
        free(out);
        out = xfs_print(img, "/srv/null", "core.mode u3");
        CHECK(strstr(out, "core.mode = 020644") && strstr(out, "u3.dev = 0x40003"));
        free(out);
        /* hard links: two files with the same content */
        out = xfs_cat(img, "/usr/bin/b");
        CHECK_STREQ(out, "linked\n");
        free(out);
        out = xfs_cat(img, "/srv/data/sub/f");
        CHECK_STREQ(out, "data file\n");
        free(out);
        /* ucf's cache entry is left out, with a note */
        out = capture("xfs_db -r -c 'path /var/lib/ucf/cache' -c 'ls' '%s' 2>&1", img);
        CHECK(strstr(out, "sshd_config") == NULL && strstr(out, " .. ") != NULL);
        free(out);
        CHECK(strstr(log, "left out (a protofile cannot name it") != NULL);
        CHECK(strstr(log, "1 hard links become separate copies") != NULL);
done:
        free(img), free(log);
        rm_dir(dir);
        free(dir);

        /* a data partition: one directory of the tree */
        r = make_fs_from(fs_tree, "xfs", "srv/data", &img, &log, &dir);
        CHECK_INT(r, ==, 0);
        out = capture("xfs_db -r -c 'ls /' '%s' 2>&1", img);
        CHECK(strstr(out, " sub (good)") && strstr(out, " empty (good)") && !strstr(out, " etc "));
        free(out);
        out = xfs_cat(img, "/sub/f");
        CHECK_STREQ(out, "data file\n");
        free(out);
        free(img), free(log);
        rm_dir(dir);
        free(dir);
}

TEST(make_filesystem_xfs_refuses_what_it_cannot_carry) {
        if (geteuid() != 0 || !have_tool("mkfs.xfs") || !have_tool("getfattr")) {
                printf("    skipped: needs root, mkfs.xfs (xfsprogs) and getfattr (attr)\n");
                return;
        }
        char *img, *log, *dir;
        /* an extended attribute (file capabilities are one) */
        int r = make_fs_from("mkdir etc && : > etc/x && : > etc/y && setfattr -n user.kiln -v 1 etc/x",
                             "xfs", "", &img, &log, &dir);
        CHECK_INT(r, ==, -EINVAL);
        CHECK(strstr(log, "kiln: error: xfs: 1 extended attributes in the tree") != NULL);
        CHECK(strstr(log, "/etc/x (user.kiln)") != NULL);
        free(img), free(log);
        rm_dir(dir);
        free(dir);
        /* names a protofile cannot hold */
        r = make_fs_from("mkdir etc && : > 'etc/a b' && ln -s 'x y' etc/l && : > 'etc/:c'", "xfs", "",
                         &img, &log, &dir);
        CHECK_INT(r, ==, -EINVAL);
        CHECK(strstr(log, "kiln: error: xfs: 3 names or symlink targets") != NULL);
        CHECK(strstr(log, "/etc/a b") && strstr(log, "/etc/l (or its link target)") &&
              strstr(log, "/etc/:c"));
        free(img), free(log);
        rm_dir(dir);
        free(dir);
        /* bad arguments */
        struct disk_options o = opts_sized(DISK_MIN_SIZE);
        CHECK_INT(disk_make_filesystem(&o, "xfs", "data", "x", "", 0, MIB, 1), ==, -EINVAL);
        CHECK_INT(disk_make_filesystem(NULL, "xfs", "data", "x", "", 0, MIB, 1), ==, -EINVAL);
}

TEST(make_filesystem_ext4_from_a_directory) {
        if (geteuid() != 0) {
                printf("    skipped: not root\n");
                return;
        }
        char *img, *log, *dir;
        int r = make_fs_from(fs_tree, "ext4", "srv/data", &img, &log, &dir);
        CHECK_INT(r, ==, 0);
        char *out = capture("e2fsck -fn '%s' >/dev/null 2>&1 && echo FSCK-CLEAN; "
                            "debugfs -R 'cat /sub/f' '%s' 2>/dev/null; debugfs -R 'ls /' '%s' 2>/dev/null",
                            img, img, img);
        CHECK(strstr(out, "FSCK-CLEAN\ndata file\n") != NULL);
        CHECK(strstr(out, "empty") && !strstr(out, "etc"));
        free(out);
        free(img), free(log);
        rm_dir(dir);
        free(dir);
}

/* ---- the full assembly, on request ---------------------------------------- */

static uint64_t parse_size(const char *s) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        switch (*end) {
        case 'G': return v << 30;
        case 'M': return v << 20;
        default: return v;
        }
}

/* Reads a small file from an xfs image without mounting it: xfs_db's bmap
 * gives its first extent as (allocation group/block), the superblock the
 * group and block sizes; dd reads the bytes. */
static char *xfs_cat(const char *img, const char *path) {
        char *bmap = capture("xfs_db -r -c 'path %s' -c 'bmap' -c 'sb 0' -c 'print agblocks blocksize' "
                             "'%s' 2>&1", path, img);
        /* "data offset 0 startblock 1234 (0/1234) count 1 flag 0" */
        unsigned long long ag = 0, agbno = 0, count = 0, agblocks = 0, bs = 0;
        char *p = strstr(bmap, "startblock ");
        bool ok = p && sscanf(strchr(p, '('), "(%llu/%llu) count %llu", &ag, &agbno, &count) == 3;
        p = strstr(bmap, "agblocks = ");
        ok = ok && p && sscanf(p, "agblocks = %llu", &agblocks) == 1;
        p = strstr(bmap, "blocksize = ");
        ok = ok && p && sscanf(p, "blocksize = %llu", &bs) == 1;
        free(bmap);
        if (!ok)
                return xstrdup("");
        return capture("dd if='%s' bs=%llu skip=%llu count=%llu status=none | tr -d '\\000'", img, bs,
                       ag * agblocks + agbno, count);
}

/* Checks one filesystem partition: fsck (e2fsck -fn, xfs_repair -n,
 * fsck.fat -n) on a copy, and blkid's UUID and type. Returns the copy's
 * path (owned; the caller unlinks it). */
static char *check_fs(const char *path, const struct disk_partition *p) {
        char *tmp = xasprintf("%s.check-%s", path, p->name);
        unsigned long long first = p->first_lba / 2048, count = (p->last_lba - p->first_lba + 1 + 2047) / 2048;
        const char *fsck = streq(p->fs, "ext4") ? "e2fsck -fn" : streq(p->fs, "xfs") ? "xfs_repair -n" : "fsck.fat -n";
        char *out = capture("dd if='%s' of='%s' bs=1M skip=%llu count=%llu conv=sparse status=none && "
                            "%s '%s' >/dev/null 2>&1 && echo FSCK-CLEAN; blkid -o export '%s'",
                            path, tmp, first, count, fsck, tmp, tmp);
        printf("%s", out);
        CHECK(strstr(out, "FSCK-CLEAN") != NULL);
        char want[80];
        snprintf(want, sizeof want, "UUID=%s\n", p->fs_uuid);
        CHECK(strstr(out, want) != NULL);
        snprintf(want, sizeof want, "TYPE=%s\n", p->fs);
        CHECK(strstr(out, want) != NULL);
        free(out);
        return tmp;
}

/* Checks an assembled image: partition table, filesystems (e2fsck,
 * xfs_repair and fsck.fat on copies of the partitions), fstab, the ESP's
 * files, the boot code. */
static void check_image(const char *path, const struct disk_layout *l) {
        char *out = capture("sfdisk --verify '%s' 2>&1", path);
        CHECK(strstr(out, "No errors detected") != NULL);
        free(out);

        for (unsigned i = 0; i < l->nparts; i++) {
                const struct disk_partition *p = &l->parts[i];
                if (!p->fs)
                        continue;
                char *tmp = check_fs(path, p);
                char want[512];
                if (p->type == DISK_PT_ROOT) {
                        out = streq(p->fs, "ext4")
                                      ? capture("debugfs -R 'cat /etc/fstab' '%s' 2>/dev/null", tmp)
                                      : xfs_cat(tmp, "/etc/fstab");
                        printf("%s", out);
                        /* every mounted partition, by UUID */
                        for (unsigned k = 0; k < l->nparts; k++) {
                                if (!l->parts[k].mount)
                                        continue;
                                snprintf(want, sizeof want, "UUID=%s %s %s ", l->parts[k].fs_uuid,
                                         l->parts[k].mount, l->parts[k].fs);
                                CHECK(strstr(out, want) != NULL);
                        }
                        free(out);
                }
                if (p->type == DISK_PT_ESP) {
                        out = capture("MTOOLS_SKIP_CHECK=1 mdir -b -i '%s' ::/EFI/BOOT", tmp);
                        CHECK(strstr(out, "::/EFI/BOOT/BOOTX64.EFI") != NULL);
                        free(out);
                }
                if (p->type == DISK_PT_LINUX) {
                        /* the data partition holds the tree's directory; the root only
                         * its empty mount point (checked by hand: see docs/image.md) */
                        out = streq(p->fs, "xfs") ? capture("xfs_db -r -c 'ls /' '%s'", tmp)
                                                  : capture("debugfs -R 'ls -l /' '%s' 2>/dev/null", tmp);
                        printf("%s", out);
                        free(out);
                }
                unlink(tmp);
                free(tmp);
        }

        if (l->bios < 0)
                return;
        /* boot.img in the MBR pointing at core.img, partition table kept;
         * core.img's blocklist pointing at its second sector */
        uint64_t bios = l->parts[l->bios].first_lba;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint8_t mbr[512], core[512];
        read_at(fd, mbr, 512, 0);
        read_at(fd, core, 512, bios * 512);
        close(fd);
        CHECK_INT(le64(mbr + 0x5c), ==, bios);
        CHECK_INT(mbr[0x64], ==, 0xff);
        CHECK_INT(mbr[0x66], ==, 0x90);
        CHECK_INT(mbr[446 + 4], ==, 0xee);
        CHECK(mbr[510] == 0x55 && mbr[511] == 0xaa);
        CHECK_INT(le64(core + 500), ==, bios + 1);
        CHECK_INT(core[510] | core[511] << 8, ==, 0x820);
}

TEST(disk_assemble_tree) {
        const char *layers_file = getenv("KILN_TEST_DISK_LAYERS");
        const char *out = getenv("KILN_TEST_DISK_OUT");
        if (!layers_file || !out) {
                printf("    skipped: set KILN_TEST_DISK_LAYERS and KILN_TEST_DISK_OUT\n");
                return;
        }
        char *text = NULL, **layers = NULL;
        size_t len, n = 0, cap = 0;
        CHECK_INT(read_file(layers_file, 1 << 20, &text, &len), ==, 0);
        if (!text)
                return;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                GROW(layers, n, cap);
                layers[n++] = line;
        }
        const char *size = getenv("KILN_TEST_DISK_SIZE");
        char *scratch = xasprintf("%s.scratch", out), *log = xasprintf("%s.log", out);
        CHECK(mkdir(scratch, 0755) == 0 || errno == EEXIST);
        int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        struct disk_options o = {
                .size = parse_size(size ? size : "2G"),
                .arch = "x86_64",
                .seed = "kiln-test-disk",
                .source_date_epoch = 1700000000,
                .kernel_cmdline_extra = getenv("KILN_TEST_DISK_CMDLINE"),
                .layers = (const char *const *)layers,
                .nlayers = n,
                .scratch_dir = scratch,
                .log_fd = log_fd,
        };
        o.root_fs = getenv("KILN_TEST_DISK_ROOT_FS");
        struct disk_part_req parts[4] = {
                {.type = DISK_PT_BIOS}, {.type = DISK_PT_ESP}, {.type = DISK_PT_ROOT, .filesystem = o.root_fs},
                {.type = DISK_PT_LINUX}};
        char *data = getenv("KILN_TEST_DISK_DATA") ? xstrdup(getenv("KILN_TEST_DISK_DATA")) : NULL;
        if (data) {
                /* MOUNT:FS:SIZE */
                char *fs = strchr(data, ':'), *sz = fs ? strchr(fs + 1, ':') : NULL;
                CHECK(fs && sz);
                if (!fs || !sz)
                        return;
                *fs++ = 0;
                *sz++ = 0;
                parts[3].mount = data;
                parts[3].filesystem = fs;
                parts[3].size = parse_size(sz);
                o.parts = parts;
                o.nparts = 4;
        }
        struct disk_layout l;
        CHECK_INT(disk_plan(&o, &l), ==, 0);
        int fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        int r = disk_assemble(&o, &l, fd);
        CHECK_INT(r, ==, 0);
        if (r < 0)
                printf("    disk_assemble: %s; see %s\n", strerror(-r), log);
        close(fd);
        close(log_fd);
        if (r == 0)
                check_image(out, &l);
        free(scratch), free(log), free(layers), free(text), free(data);
}
