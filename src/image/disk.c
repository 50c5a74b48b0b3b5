/* SPDX-License-Identifier: Apache-2.0 */
/*
 * disk.c — a bootable raw disk from a root tree (see disk.h for the layout
 * and the contract).
 *
 * disk_assemble runs in stages; every stage logs what it runs and the
 * tools' output to opts->log_fd, and the first failure ends the assembly
 * with a "kiln: error:" line saying what to do about it:
 *
 *   probe       a bare sandbox (sandbox.h) lists the tree's kernels and
 *               initramfs images and checks for the files the bootloader
 *               entry needs (GRUB) and the growroot unit uses
 *   prep        the generated files (fstab, grub.cfg, the growroot unit and
 *               script) are staged in scratch and installed, by a bare
 *               sandbox, into an extra overlay layer (scratch/disk/prep)
 *               stacked on the cached layers, which stay untouched
 *   bootloader  the arch's entry builds its files with the tree's own tools
 *               in a chroot sandbox whose changes are thrown away (GRUB:
 *               core.img, BOOTX64.EFI, boot.img)
 *   disk        ftruncate (sparse), gpt_write, mkfs.ext4 -d of the merged
 *               tree (layers + prep) at the root partition's offset (a bare
 *               sandbox), mkfs.fat + mtools for the ESP (nothing mounts FAT)
 *   install     the arch's entry writes its files into the disk (ESP files,
 *               MBR boot code, core.img in the BIOS boot partition)
 *
 * Tools get the output file as their stdin and open it as /proc/self/fd/0:
 * disk_assemble is handed an fd, not a path, and the sandbox passes only
 * stdio through. Everything the tools write lands at explicit offsets
 * (mkfs.ext4 -E offset=, mkfs.fat --offset=, mtools' image@@offset).
 *
 * The ext4 root is made with assume_storage_prezeroed: the file is freshly
 * truncated, so inode tables and the journal need not be written and stay
 * holes (the image is as sparse as its contents).
 *
 * Cleanup style: scoped cleanup (_cleanup_*), no gotos.
 */
#include "image/disk.h"

#include "base/arch.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/strbuf.h"
#include "base/strv.h"
#include "base/util.h"
#include "os/fs.h"
#include "os/proc.h"
#include "spec/schema.h"

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>


/* ---- small helpers ------------------------------------------------------ */

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint64_t get_le64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}

/* ---- UUIDs ----------------------------------------------------------- */

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

void uuid_derive(const char *seed, const char *purpose, uint8_t out[16]) {
        struct strbuf in = STRBUF_INIT;
        char hex[SHA256_HEX_LEN + 1];

        strbuf_adds(&in, seed ? seed : "");
        strbuf_addc(&in, 0);
        strbuf_adds(&in, purpose ? purpose : "");
        /* SHA-256 in libcrypto fails only when it cannot allocate its
         * context: out of memory, fatal by kiln's policy (util.h) */
        if (hash_sha256_hex(in.buf, in.len, hex) < 0)
                die_oom();
        strbuf_free(&in);
        for (int i = 0; i < 16; i++)
                out[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
        out[6] = (uint8_t)((out[6] & 0x0f) | 0x40); /* version 4 */
        out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* variant 10xx (RFC 4122) */
}

void uuid_format(const uint8_t u[16], char out[37]) {
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                 u[13], u[14], u[15]);
}

int uuid_parse(const char *s, uint8_t out[16]) {
        uint8_t u[16];
        size_t j = 0;

        if (!s || strlen(s) != 36)
                return -EINVAL;
        for (size_t i = 0; i < 36;) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i++] != '-')
                                return -EINVAL;
                        continue;
                }
                int hi = hexval(s[i]), lo = hexval(s[i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                u[j++] = (uint8_t)(hi << 4 | lo);
                i += 2;
        }
        memcpy(out, u, 16);
        return 0;
}

/* GPT's on-disk GUID: the first three fields (4, 2, 2 bytes) little-endian,
 * the last 8 bytes as they are. */
static void guid_to_disk(const uint8_t u[16], uint8_t d[16]) {
        static const uint8_t order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
        for (int i = 0; i < 16; i++)
                d[i] = u[order[i]];
}

/* ---- the architecture's boot loader ---------------------------------------- */

/* Architecture facts (GPT root type, GRUB targets, EFI file name, console,
 * which loaders kiln installs) come from base/arch.h's table. */

struct ctx;

/* A file the tree must contain for the boot loader, and the package that
 * provides it (for the error message). */
struct tree_need {
        char path[64]; /* relative to the tree root, no symlinks on the way */
        const char *package;
};

#define BOOT_MAX_NEEDS 4

#define TYPE_BIOS_BOOT "21686148-6449-6e6f-744e-656564454649"
#define TYPE_ESP "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"

/* ---- disk_plan ---------------------------------------------------------- */

#define MIB_SECTORS (DISK_ALIGN / DISK_SECTOR)
#define GPT_ARRAY_SECTORS (GPT_ENTRIES * GPT_ENTRY_SIZE / DISK_SECTOR) /* 32 */
#define TYPE_LINUX_DATA "0fc63daf-8483-4772-8e79-3d69d8477de4"

const char *const disk_part_type_names[] = {"bios", "esp", "root", "linux", NULL};

/* The default layout, as a partition list. */
static const struct disk_part_req default_parts[] = {
        {.type = DISK_PT_BIOS, .size = DISK_BIOS_SIZE},
        {.type = DISK_PT_ESP, .size = DISK_ESP_SIZE},
        {.type = DISK_PT_ROOT},
};

size_t disk_label_max(enum disk_part_type type, const char *fs) {
        if (type == DISK_PT_ESP)
                return 11;
        return fs && streq(fs, "xfs") ? 12 : 16;
}

static bool label_ok(const char *label, enum disk_part_type type, const char *fs) {
        size_t n = strlen(label);
        return n > 0 && n <= disk_label_max(type, fs) &&
               strspn(label, DISK_LABEL_CHARS) == n;
}

const char *disk_mount_problem(const char *m) {
        static const char *const reserved[] = {"/etc", "/usr", "/boot", "/bin", "/sbin", "/lib",
                                               "/lib32", "/lib64", "/libx32", "/proc", "/sys",
                                               "/dev", "/run"};
        size_t n = strlen(m);
        if (streq(m, "/"))
                return "'/' is the root partition's";
        if (n >= DISK_MOUNT_MAX)
                return "is too long";
        if (m[n - 1] == '/' || strstr(m, "//") || strstr(m, "/./") || strstr(m, "/../") ||
            endswith(m, "/.") || endswith(m, "/.."))
                return "is not a plain path (no trailing '/', '//', '.' or '..')";
        for (const char *p = m; *p; p++)
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("'\"\\:$", *p))
                        return "may only hold printable ASCII without blanks, quotes, '\\', ':' or '$'";
        for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
                size_t k = strlen(reserved[i]);
                if (strncmp(m, reserved[i], k) == 0 && (m[k] == 0 || m[k] == '/'))
                        return "is part of the system the root filesystem must hold to boot";
        }
        return NULL;
}

static bool mount_ok(const char *m) { return m && m[0] == '/' && !disk_mount_problem(m); }

static uint64_t round_mib(uint64_t v) { return (v + DISK_ALIGN - 1) / DISK_ALIGN * DISK_ALIGN; }

/* The size a partition gets when the request leaves it open: bios and esp
 * have defaults, root and linux take the rest (0). */
static uint64_t req_size(const struct disk_part_req *p) {
        if (p->size)
                return round_mib(p->size);
        return p->type == DISK_PT_BIOS ? DISK_BIOS_SIZE : p->type == DISK_PT_ESP ? DISK_ESP_SIZE : 0;
}

uint64_t disk_part_min_size(enum disk_part_type type, const char *fs) {
        switch (type) {
        case DISK_PT_BIOS: return DISK_ALIGN;
        case DISK_PT_ESP: return DISK_MIN_ESP_SIZE;
        default: return fs && streq(fs, "xfs") ? DISK_MIN_XFS_SIZE : DISK_MIN_ROOT_SIZE;
        }
}

static uint64_t min_size(const struct disk_part_req *p) {
        return disk_part_min_size(p->type, p->filesystem);
}

/* The rules of disk.h (reported to users by the spec checker). */
static int parts_check(const struct disk_part_req *parts, size_t n) {
        unsigned count[DISK_PT_COUNT] = {0}, rest = 0;

        if (n == 0 || n > DISK_MAX_PARTS)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                const struct disk_part_req *p = &parts[i];
                if ((unsigned)p->type >= DISK_PT_COUNT || p->size > DISK_MAX_SIZE)
                        return -EINVAL;
                count[p->type]++;
                bool fs_ok = p->type == DISK_PT_ROOT || p->type == DISK_PT_LINUX
                                     ? !p->filesystem || streq(p->filesystem, "ext4") ||
                                               streq(p->filesystem, "xfs")
                                     : !p->filesystem;
                if (!fs_ok || (p->type == DISK_PT_LINUX) != (p->mount != NULL) ||
                    (p->mount && !mount_ok(p->mount)))
                        return -EINVAL;
                if (p->label && !label_ok(p->label, p->type, p->filesystem))
                        return -EINVAL;
                if (req_size(p) == 0)
                        rest++;
                else if (req_size(p) < min_size(p))
                        return -EINVAL;
                for (size_t j = 0; j < i && p->mount; j++) {
                        const char *o = parts[j].mount;
                        size_t a = strlen(p->mount), b = o ? strlen(o) : 0;
                        /* the same mount point, or one inside another */
                        if (o && (strncmp(p->mount, o, a < b ? a : b) == 0) &&
                            (a == b || (a < b ? o[a] : p->mount[b]) == '/'))
                                return -EINVAL;
                }
        }
        if (count[DISK_PT_ROOT] != 1 || count[DISK_PT_BIOS] > 1 || count[DISK_PT_ESP] > 1 ||
            count[DISK_PT_BIOS] + count[DISK_PT_ESP] == 0 || rest > 1)
                return -EINVAL;
        return 0;
}

static void derive_fs_id(const char *seed, const struct disk_partition *p, char out[37]) {
        uint8_t u[16];
        _cleanup_free_ char *purpose = xasprintf("%s-fs", p->purpose);
        uuid_derive(seed, purpose, u);
        if (p->type == DISK_PT_ESP)
                snprintf(out, 37, "%02X%02X-%02X%02X", u[0], u[1], u[2], u[3]);
        else
                uuid_format(u, out);
}

/* A data partition's default name: the last component of its mount point,
 * cut to what its filesystem's label takes. */
static const char *default_name(const struct disk_part_req *p, char buf[17]) {
        static const char *const names[] = {"bios", "esp", "root"};
        if (p->type != DISK_PT_LINUX)
                return names[p->type];
        size_t max = p->filesystem && streq(p->filesystem, "xfs") ? 12 : 16;
        snprintf(buf, max + 1, "%s", strrchr(p->mount, '/') + 1);
        for (char *c = buf; *c; c++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *c))
                        *c = '_';
        return buf;
}

int disk_plan(const struct disk_options *o, struct disk_layout *ret) {
        struct disk_layout l = {.bios = -1, .esp = -1, .root = -1};
        const struct disk_part_req *parts = o ? o->parts : NULL;
        size_t n = o ? o->nparts : 0;
        struct disk_part_req defaults[ARRAY_SIZE(default_parts)];
        char names[DISK_MAX_PARTS][17]; /* data partitions' default names */

        if (!o || !ret || !o->seed)
                return -EINVAL;
        const struct arch *arch = arch_find(o->arch);
        if (!arch)
                return -EOPNOTSUPP;
        if (o->size < DISK_MIN_SIZE || o->size > DISK_MAX_SIZE)
                return -EINVAL;
        if (o->root_fs && !streq(o->root_fs, "ext4") && !streq(o->root_fs, "xfs"))
                return -EINVAL;
        if (!parts) {
                memcpy(defaults, default_parts, sizeof defaults);
                defaults[DISK_PART_ROOT].filesystem = o->root_fs;
                parts = defaults;
                n = ARRAY_SIZE(defaults);
        }
        if (parts_check(parts, n) < 0)
                return -EINVAL;
        l.size = round_mib(o->size);

        uint64_t sectors = l.size / DISK_SECTOR;
        uint64_t last_usable = sectors - 1 - GPT_ARRAY_SECTORS - 1; /* before the backup array + header */
        /* whole MiB between the first 1 MiB and the last usable sector */
        uint64_t avail = (last_usable + 1) / MIB_SECTORS * MIB_SECTORS - MIB_SECTORS, fixed = 0;
        for (size_t i = 0; i < n; i++)
                fixed += req_size(&parts[i]) / DISK_SECTOR;
        if (fixed > avail)
                return -EINVAL;

        uuid_derive(o->seed, "disk", l.disk_guid);
        uint64_t lba = MIB_SECTORS; /* LBA 2048 */
        for (size_t i = 0; i < n; i++) {
                const struct disk_part_req *q = &parts[i];
                struct disk_partition *p = &l.parts[i];
                uint64_t len = req_size(q) / DISK_SECTOR;
                if (len == 0) {
                        /* the rest: whole MiB in the middle; the last
                         * partition ends at the last usable sector, in
                         * whole 4 KiB filesystem blocks */
                        len = i == n - 1 ? (last_usable + 1 - lba) / 8 * 8 : avail - fixed;
                        if (len * DISK_SECTOR < min_size(q))
                                return -EINVAL;
                }
                p->type = q->type;
                p->name = q->label ? q->label : default_name(q, names[i]);
                p->first_lba = lba;
                p->last_lba = lba + len - 1;
                lba += len;
                switch (q->type) {
                case DISK_PT_BIOS:
                        snprintf(p->purpose, sizeof p->purpose, "bios");
                        (void)uuid_parse(TYPE_BIOS_BOOT, p->type_guid); /* constants: cannot fail */
                        l.bios = (int)i;
                        break;
                case DISK_PT_ESP:
                        snprintf(p->purpose, sizeof p->purpose, "esp");
                        (void)uuid_parse(TYPE_ESP, p->type_guid);
                        p->fs = "vfat";
                        p->mount = "/boot/efi";
                        l.esp = (int)i;
                        break;
                case DISK_PT_ROOT:
                        snprintf(p->purpose, sizeof p->purpose, "root");
                        (void)uuid_parse(arch->gpt_root_type, p->type_guid);
                        p->fs = q->filesystem && streq(q->filesystem, "xfs") ? "xfs" : "ext4";
                        p->mount = "/";
                        l.root = (int)i;
                        break;
                default:
                        snprintf(p->purpose, sizeof p->purpose, "data:%s", q->mount);
                        (void)uuid_parse(TYPE_LINUX_DATA, p->type_guid);
                        p->fs = q->filesystem && streq(q->filesystem, "xfs") ? "xfs" : "ext4";
                        p->mount = q->mount;
                        break;
                }
                _cleanup_free_ char *pp = xasprintf("%s-part", p->purpose);
                uuid_derive(o->seed, pp, p->part_guid);
                if (p->fs)
                        derive_fs_id(o->seed, p, p->fs_uuid);
        }
        if (lba - 1 > last_usable)
                return -EINVAL;
        l.nparts = (unsigned)n;
        snprintf(l.root_fs_uuid, sizeof l.root_fs_uuid, "%s", l.parts[l.root].fs_uuid);
        if (l.esp >= 0)
                snprintf(l.esp_fs_id, sizeof l.esp_fs_id, "%s", l.parts[l.esp].fs_uuid);
        l.root_fs = l.parts[l.root].fs;
        *ret = l;
        /* a data partition's default name is kept in the layout itself */
        for (size_t i = 0; i < n; i++)
                if (ret->parts[i].type == DISK_PT_LINUX && !parts[i].label) {
                        snprintf(ret->parts[i].name_buf, sizeof ret->parts[i].name_buf, "%.16s",
                                 names[i]);
                        ret->parts[i].name = ret->parts[i].name_buf;
                }
        return 0;
}

static const char *spec_str(const struct value *map, const char *key) {
        const struct value *v = value_map_get(map, key);
        return v && (v->kind == V_STRING || v->kind == V_NUMBER) ? v->str : NULL;
}

int disk_options_from_spec(const struct value *disk, struct disk_options *o,
                           struct disk_part_req **ret_parts) {
        _cleanup_free_ struct disk_part_req *parts = NULL;

        if (!o || !ret_parts)
                return -EINVAL;
        o->root_fs = spec_str(disk, "filesystem");
        o->parts = NULL;
        o->nparts = 0;
        const struct value *list = value_map_get(disk, "partitions");
        if (!list) {
                *ret_parts = NULL;
                return 0;
        }
        if (list->kind != V_LIST || list->n == 0 || list->n > DISK_MAX_PARTS)
                return -EINVAL;
        parts = xcalloc(list->n, sizeof *parts);
        for (size_t i = 0; i < list->n; i++) {
                const struct value *m = list->items[i];
                const char *type = spec_str(m, "type"), *size = spec_str(m, "size");
                size_t t = 0;
                while (type && disk_part_type_names[t] && !streq(disk_part_type_names[t], type))
                        t++;
                if (m->kind != V_MAP || !type || !disk_part_type_names[t])
                        return -EINVAL;
                parts[i].type = (enum disk_part_type)t;
                if (size && parse_size(size, &parts[i].size) < 0)
                        return -EINVAL;
                parts[i].filesystem = spec_str(m, "filesystem");
                parts[i].mount = spec_str(m, "mount");
                parts[i].label = spec_str(m, "label");
                /* disk.filesystem is the root's default */
                if (t == DISK_PT_ROOT && !parts[i].filesystem)
                        parts[i].filesystem = o->root_fs;
        }
        o->parts = parts;
        o->nparts = list->n;
        *ret_parts = TAKE_PTR(parts);
        return 0;
}

/* ---- gpt_write ---------------------------------------------------------- */

/* UEFI 2.x, chapter 5 "GUID Partition Table (GPT) Disk Layout". */
#define GPT_HEADER_SIZE 92u
#define GPT_REVISION 0x00010000u
#define GPT_FIRST_USABLE (2 + GPT_ARRAY_SECTORS) /* LBA 34 */
#define MBR_PART_OFFSET 446u  /* first of the four 16-byte MBR partition entries */
#define MBR_BOOT_CODE_SIZE 440u /* boot code; then disk signature (4), 0 (2), entries */

static int gpt_check(const struct disk_layout *l) {
        if (!l || l->size % DISK_SECTOR || l->size < DISK_ALIGN || l->size > DISK_MAX_SIZE ||
            l->nparts > ARRAY_SIZE(l->parts))
                return -EINVAL;
        uint64_t sectors = l->size / DISK_SECTOR;
        uint64_t last_usable = sectors - 2 - GPT_ARRAY_SECTORS;
        for (unsigned i = 0; i < l->nparts; i++) {
                const struct disk_partition *p = &l->parts[i];
                if (!p->name || strlen(p->name) > 36 || p->first_lba < GPT_FIRST_USABLE ||
                    p->first_lba > p->last_lba || p->last_lba > last_usable)
                        return -EINVAL;
                for (const char *c = p->name; *c; c++)
                        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                                return -EINVAL; /* names are written as ASCII -> UTF-16LE */
                for (unsigned j = 0; j < i; j++)
                        if (p->first_lba <= l->parts[j].last_lba &&
                            l->parts[j].first_lba <= p->last_lba)
                                return -EINVAL;
        }
        return 0;
}

/* The 92-byte header (in a zeroed sector) for the copy at `my_lba`. */
static void gpt_header(uint8_t sec[DISK_SECTOR], const struct disk_layout *l, uint64_t my_lba,
                       uint64_t alt_lba, uint64_t entries_lba, uint32_t entries_crc) {
        uint64_t sectors = l->size / DISK_SECTOR;
        memset(sec, 0, DISK_SECTOR);
        memcpy(sec + 0, "EFI PART", 8);
        put_le32(sec + 8, GPT_REVISION);
        put_le32(sec + 12, GPT_HEADER_SIZE);
        /* 16: header CRC32, computed below over the header with this field 0 */
        /* 20: reserved, 0 */
        put_le64(sec + 24, my_lba);
        put_le64(sec + 32, alt_lba);
        put_le64(sec + 40, GPT_FIRST_USABLE);
        put_le64(sec + 48, sectors - 2 - GPT_ARRAY_SECTORS);
        guid_to_disk(l->disk_guid, sec + 56);
        put_le64(sec + 72, entries_lba);
        put_le32(sec + 80, GPT_ENTRIES);
        put_le32(sec + 84, GPT_ENTRY_SIZE);
        put_le32(sec + 88, entries_crc);
        put_le32(sec + 16, (uint32_t)crc32(0, sec, GPT_HEADER_SIZE));
}

int gpt_write(int fd, const struct disk_layout *l) {
        _cleanup_free_ uint8_t *entries = NULL;
        uint8_t sec[DISK_SECTOR];
        int r;

        r = gpt_check(l);
        if (r < 0)
                return r;
        uint64_t sectors = l->size / DISK_SECTOR;

        /* Protective MBR: one partition of type 0xEE from LBA 1 to the end
         * of the disk (capped at 2^32-1 sectors), CHS start 0/0/2, CHS end
         * "beyond CHS" (0xFFFFFF), and the 0x55AA boot signature. Only bytes
         * 440..511 are written: 0..439 belong to boot code (boot.img). */
        uint8_t mbr[DISK_SECTOR - MBR_BOOT_CODE_SIZE] = {0};
        uint8_t *pe = mbr + (MBR_PART_OFFSET - MBR_BOOT_CODE_SIZE);
        pe[0] = 0x00;                             /* not bootable */
        pe[1] = 0x00, pe[2] = 0x02, pe[3] = 0x00; /* CHS of LBA 1 */
        pe[4] = 0xee;                             /* GPT protective */
        pe[5] = 0xff, pe[6] = 0xff, pe[7] = 0xff;
        put_le32(pe + 8, 1);
        put_le32(pe + 12, sectors - 1 > 0xffffffffu ? 0xffffffffu : (uint32_t)(sectors - 1));
        mbr[510 - MBR_BOOT_CODE_SIZE] = 0x55;
        mbr[511 - MBR_BOOT_CODE_SIZE] = 0xaa;
        r = pwrite_all(fd, mbr, sizeof mbr, MBR_BOOT_CODE_SIZE);
        if (r < 0)
                return r;

        /* The entry array, identical in both copies. */
        entries = xcalloc(GPT_ENTRIES, GPT_ENTRY_SIZE);
        for (unsigned i = 0; i < l->nparts; i++) {
                const struct disk_partition *p = &l->parts[i];
                uint8_t *e = entries + (size_t)i * GPT_ENTRY_SIZE;
                guid_to_disk(p->type_guid, e + 0);
                guid_to_disk(p->part_guid, e + 16);
                put_le64(e + 32, p->first_lba);
                put_le64(e + 40, p->last_lba);
                put_le64(e + 48, 0); /* attributes */
                for (size_t k = 0; p->name[k]; k++)
                        put_le16(e + 56 + 2 * k, (uint16_t)(unsigned char)p->name[k]);
        }
        size_t array_size = (size_t)GPT_ENTRIES * GPT_ENTRY_SIZE;
        uint32_t entries_crc = (uint32_t)crc32(0, entries, (uInt)array_size);

        uint64_t backup_header = sectors - 1, backup_entries = sectors - 1 - GPT_ARRAY_SECTORS;
        r = pwrite_all(fd, entries, array_size, 2 * DISK_SECTOR);
        if (r >= 0)
                r = pwrite_all(fd, entries, array_size, backup_entries * DISK_SECTOR);
        if (r < 0)
                return r;
        gpt_header(sec, l, 1, backup_header, 2, entries_crc);
        r = pwrite_all(fd, sec, sizeof sec, 1 * DISK_SECTOR);
        if (r < 0)
                return r;
        gpt_header(sec, l, backup_header, 1, backup_entries, entries_crc);
        return pwrite_all(fd, sec, sizeof sec, backup_header * DISK_SECTOR);
}

/* ---- disk_assemble: context, logging, running tools --------------------- */

#define PROBE_OUTPUT_MAX (1u << 20)
#define STAGE_TIMEOUT_MS (10ull * 60 * 1000)  /* probe, prep, bootloader builds */
#define MKFS_TIMEOUT_MS (60ull * 60 * 1000)   /* mkfs.ext4 -d of a large tree */

struct ctx {
        const struct disk_options *o;
        const struct disk_layout *l;
        const struct arch *arch;
        const char *loader;     /* the boot loader's name, for messages */
        struct tree_need needs[BOOT_MAX_NEEDS]; /* what the loader needs from the tree */
        size_t nneeds;
        int log_fd;
        char *dir;       /* scratch/disk */
        char *mnt;       /* the sandboxes' mountpoint (always empty on the host) */
        char *stage;     /* generated files, before prep installs them */
        char *prep_upper, *prep_work;
        char *boot_out;  /* the bootloader's files */
        unsigned nthrow; /* throwaway upper layers made so far */
        char *kernel;    /* "/boot/vmlinuz-VERSION" */
        char *initrd;    /* "/boot/initrd.img-VERSION" */
        char **present;  /* paths the probe found ("dir X", "file X", "link X" lines) */
        size_t npresent;
        struct strbuf esp_dirs; /* "DIR\n" for each directory made in the ESP */
        struct strv settle;     /* paths in the prep layer whose times are SOURCE_DATE_EPOCH */
        char *owned_args[DISK_MAX_PARTS * DISK_MOUNT_MAX / 2]; /* probe's mount path prefixes */
        size_t nowned;
        bool grow;              /* the root is last: install kiln-growroot */
        char *envp[10];
        char env_sde[48], env_fake[48];
};

static void ctx_free(struct ctx *c) {
        free(c->dir);
        free(c->mnt);
        free(c->stage);
        free(c->prep_upper);
        free(c->prep_work);
        free(c->boot_out);
        free(c->kernel);
        free(c->initrd);
        for (size_t i = 0; i < c->npresent; i++)
                free(c->present[i]);
        free(c->present);
        strbuf_free(&c->esp_dirs);
        strv_free(&c->settle);
        for (size_t i = 0; i < c->nowned; i++)
                free(c->owned_args[i]);
}

static void say(struct ctx *c, const char *fmt, ...) _printf_(2, 3);
static void say(struct ctx *c, const char *fmt, ...) {
        if (c->log_fd < 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *s = xvasprintf(fmt, ap);
        va_end(ap);
        dprintf(c->log_fd, "kiln: %s\n", s);
}

/* Logs "kiln: error: MESSAGE" and returns r (a -errno). */
static int fail(struct ctx *c, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(struct ctx *c, int r, const char *fmt, ...) {
        if (c->log_fd >= 0) {
                va_list ap;
                va_start(ap, fmt);
                _cleanup_free_ char *s = xvasprintf(fmt, ap);
                va_end(ap);
                dprintf(c->log_fd, "kiln: error: %s\n", s);
        }
        return r;
}

/* Logs a command line, quoting what a shell would need quoted. */
static void say_argv(struct ctx *c, const char *where, char *const *argv) {
        struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; argv[i]; i++) {
                const char *a = argv[i];
                bool plain = a[0] != 0;
                for (const char *p = a; *p && plain; p++)
                        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789-_=+,./:@%^", *p) != NULL;
                strbuf_addc(&sb, ' ');
                if (plain) {
                        strbuf_adds(&sb, a);
                        continue;
                }
                strbuf_addc(&sb, '\'');
                for (const char *p = a; *p; p++) {
                        if (*p == '\'')
                                strbuf_adds(&sb, "'\\''");
                        else
                                strbuf_addc(&sb, *p);
                }
                strbuf_addc(&sb, '\'');
        }
        say(c, "%s$%s", where, strbuf_str(&sb));
        strbuf_free(&sb);
}

static int write_text(const char *dir, const char *name, const char *text, mode_t mode) {
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, name);
        return write_file(path, text, strlen(text), mode, 0);
}

/* How a command runs in the tree (see run_in_tree). */
struct tree_run {
        const char *what;        /* for the log: "probe", "mkfs.ext4", ... */
        bool with_prep;          /* stack the prep layer on the cached layers */
        bool bare;               /* sandbox.h: only the overlay, SANDBOX_HOST */
        const char *upper, *work; /* NULL: a throwaway layer, removed afterwards */
        const struct sandbox_bind *binds;
        size_t nbinds;
        int stdin_fd;            /* -1: /dev/null */
        int stdout_fd;           /* -1: the log */
        uint64_t timeout_ms;
};

/* Runs argv in a sandbox on the tree (layers, plus the prep layer when
 * asked); a command that exits non-zero is -EIO. The output goes to the log
 * unless t->stdout_fd says otherwise (stderr always to the log). */
static int run_in_tree(struct ctx *c, const struct tree_run *t, char *const *argv) {
        const char *lower[SANDBOX_MAX_LAYERS];
        _cleanup_free_ char *throw = NULL, *tup = NULL, *twork = NULL;
        size_t n = 0;
        int r;

        if (t->with_prep)
                lower[n++] = c->prep_upper;
        for (size_t i = 0; i < c->o->nlayers; i++)
                lower[n++] = c->o->layers[i];
        if (!t->upper) {
                throw = xasprintf("%s/throwaway-%u", c->dir, c->nthrow++);
                tup = xasprintf("%s/upper", throw);
                twork = xasprintf("%s/work", throw);
                if ((r = mkdir_p(tup, 0755)) < 0 || (r = mkdir_p(twork, 0755)) < 0)
                        return fail(c, r, "%s: cannot create %s: %s", t->what, throw, strerror(-r));
        }
        struct sandbox_opts so = {
                .lower = lower,
                .nlower = n,
                .upper = t->upper ? t->upper : tup,
                .work = t->upper ? t->work : twork,
                .mountpoint = c->mnt,
                .mode = t->bare ? SANDBOX_HOST : SANDBOX_CHROOT,
                .bare = t->bare,
                .network = false,
                .argv = argv,
                .envp = c->envp,
                .cwd = t->bare ? c->mnt : "/",
                .binds = t->binds,
                .nbinds = t->nbinds,
                .stdin_fd = t->stdin_fd,
                .stdout_fd = t->stdout_fd >= 0 ? t->stdout_fd : c->log_fd,
                .stderr_fd = c->log_fd,
                .timeout_ms = t->timeout_ms,
        };
        struct sandbox_result res = {0};

        say_argv(c, t->bare ? "[tree, bare] " : "[tree, chroot] ", argv);
        r = sandbox_run(&so, &res);
        if (throw) {
                int k = rm_rf(throw);
                if (k < 0)
                        say(c, "warning: cannot remove %s: %s", throw, strerror(-k));
        }
        if (r < 0)
                return fail(c, r, "%s: cannot run %s in a sandbox: %s", t->what, argv[0],
                            strerror(-r));
        if (res.timed_out)
                return fail(c, -ETIMEDOUT, "%s: %s timed out after %llu s", t->what, argv[0],
                            (unsigned long long)(t->timeout_ms / 1000));
        if (res.exit_code != 0)
                return fail(c, -EIO, "%s: %s failed (exit status %d, output above)", t->what,
                            argv[0], res.exit_code);
        say(c, "%s: done in %.1f s", t->what, (double)res.elapsed_ms / 1000);
        return 0;
}

/* Runs a host tool (mkfs.fat, mtools) with the image as its stdin (so it
 * can open /proc/self/fd/0) and its output in the log. Non-zero exit: -EIO. */
static int run_host(struct ctx *c, const char *what, char *const *argv, int stdin_fd) {
        say_argv(c, "[host] ", argv);
        struct proc_opts po = {.argv = argv, .envp = c->envp,
                               .stdin_fd = stdin_fd >= 0 ? stdin_fd : PROC_NULL,
                               .stdout_fd = c->log_fd >= 0 ? c->log_fd : PROC_NULL,
                               .stderr_fd = PROC_STDOUT};
        struct proc_status st;
        int r = proc_run(&po, &st);
        if (r == -ENOENT)
                return fail(c, r, "%s: cannot run %s (is it installed on the host?)", what, argv[0]);
        if (r < 0)
                return fail(c, r, "%s: cannot run %s: %s", what, argv[0], strerror(-r));
        if (st.exit_code != 0)
                return fail(c, -EIO, "%s: %s failed (status 0x%x, output above)", what, argv[0],
                            (unsigned)st.wait_status);
        return 0;
}

/* ---- probe: what the tree contains --------------------------------------- */

static bool probe_has(const struct ctx *c, const char *kind, const char *path) {
        size_t kl = strlen(kind);
        for (size_t i = 0; i < c->npresent; i++)
                if (strncmp(c->present[i], kind, kl) == 0 && c->present[i][kl] == ' ' &&
                    streq(c->present[i] + kl + 1, path))
                        return true;
        return false;
}

/* A kernel version is spliced into grub.cfg and the kernel command line:
 * only the characters Debian and Fedora versions use. */
static bool version_ok(const char *v) {
        if (!v[0] || strlen(v) > 128)
                return false;
        for (const char *p = v; *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+~-",
                            *p))
                        return false;
        return true;
}

/* Directories the prep stage writes into: each must be a real directory or
 * missing (then mkdir -p creates it), never a symlink, so the host-side
 * tools of the bare sandbox cannot be led out of the tree. */
static const char *const prep_dirs[] = {
        "etc",        "etc/systemd", "etc/systemd/system", "etc/systemd/system/sysinit.target.wants",
        "boot",       "boot/grub",   "boot/efi",           "usr",
        "usr/lib",    "usr/lib/kiln",
};

/* Mount points a bootable tree needs; a bootstrap into an empty upper
 * layer can end without them (sandbox.c, "Caveats"). */
static const struct {
        const char *name;
        mode_t mode;
} root_dirs[] = {{"proc", 0555}, {"sys", 0555}, {"dev", 0755}, {"run", 0755}, {"tmp", 01777}};

/* Tools the growroot script uses, any one of each group (the resizer of
 * the root's filesystem only). */
static const struct {
        const char *fs; /* NULL: any */
        const char *paths[3];
} grow_tools[] = {
        {NULL, {"usr/bin/findmnt", "bin/findmnt", NULL}},
        {NULL, {"usr/bin/partx", "usr/sbin/partx", "sbin/partx"}},
        {"ext4", {"usr/sbin/resize2fs", "sbin/resize2fs", NULL}},
        {"xfs", {"usr/sbin/xfs_growfs", "sbin/xfs_growfs", NULL}},
        {NULL, {"usr/bin/growpart", "usr/sbin/sfdisk", "sbin/sfdisk"}},
};

static const char probe_script[] =
        /* $@: paths to check; prints "file boot/vmlinuz-..." for kernels
         * and initramfs images, and "dir|file|link PATH" for each path that
         * exists; find -P and test -L never follow the tree's symlinks */
        "find boot -maxdepth 1 -type f \\( -name 'vmlinuz-*' -o -name 'initrd.img-*' \\) "
        "  -printf 'file %p\\n' 2>/dev/null\n"
        "for p in \"$@\"; do\n"
        "  if [ -L \"$p\" ]; then echo \"link $p\"\n"
        "  elif [ -d \"$p\" ]; then echo \"dir $p\"\n"
        "  elif [ -e \"$p\" ]; then echo \"file $p\"; fi\n"
        "done\n";

static int probe(struct ctx *c) {
        _cleanup_free_ char *out_path = xasprintf("%s/probe.out", c->dir);
        _cleanup_free_ char *buf = NULL, *best = NULL;
        _cleanup_strv_ struct strv a = STRV_INIT;
        size_t len;
        int r;

        strv_add(&a, "/bin/sh");
        strv_add(&a, "-c");
        strv_add(&a, probe_script);
        strv_add(&a, "kiln-probe");
        for (size_t i = 0; i < ARRAY_SIZE(prep_dirs); i++)
                strv_add(&a, prep_dirs[i]);
        for (size_t i = 0; i < ARRAY_SIZE(root_dirs); i++)
                strv_add(&a, root_dirs[i].name);
        for (size_t i = 0; i < ARRAY_SIZE(grow_tools); i++)
                for (size_t j = 0; j < 3 && grow_tools[i].paths[j]; j++)
                        strv_add(&a, grow_tools[i].paths[j]);
        /* every directory on the way to a data partition's mount point */
        for (unsigned i = 0; i < c->l->nparts; i++) {
                if (c->l->parts[i].type != DISK_PT_LINUX)
                        continue;
                const char *m = c->l->parts[i].mount + 1;
                for (const char *s = strchr(m, '/');; s = strchr(s + 1, '/')) {
                        c->owned_args[c->nowned++] = xstrndup(m, s ? (size_t)(s - m) : strlen(m));
                        strv_add(&a, c->owned_args[c->nowned - 1]);
                        if (!s)
                                break;
                }
        }
        for (size_t i = 0; i < c->nneeds; i++)
                strv_add(&a, c->needs[i].path);

        _cleanup_close_ int out = open(out_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0)
                return fail(c, -errno, "probe: cannot create %s: %m", out_path);
        struct tree_run t = {.what = "probe", .bare = true, .stdin_fd = -1, .stdout_fd = out,
                             .timeout_ms = STAGE_TIMEOUT_MS};
        r = run_in_tree(c, &t, a.v);
        if (r < 0)
                return r;
        r = read_file(out_path, PROBE_OUTPUT_MAX, &buf, &len);
        if (r < 0)
                return fail(c, r, "probe: cannot read %s: %s", out_path, strerror(-r));

        size_t pcap = 0;
        for (char *line = buf, *next; *line; line = next) {
                next = strchrnul(line, '\n');
                if (*next)
                        *next++ = 0;
                GROW(c->present, c->npresent, pcap);
                c->present[c->npresent++] = xstrdup(line);
                /* the newest kernel by version sort (strverscmp, like sort -V) */
                const char *v = startswith(line, "file boot/vmlinuz-");
                if (v && version_ok(v) && (!best || strverscmp(v, best) > 0)) {
                        free(best);
                        best = xstrdup(v);
                }
        }

        if (!best)
                return fail(c, -ENOENT,
                            "the tree has no kernel (/boot/vmlinuz-VERSION): install one in "
                            "the tree, e.g. %s (Debian) or linux-image-virtual (Ubuntu)",
                            c->arch->kernel_package);
        _cleanup_free_ char *initrd = xasprintf("boot/initrd.img-%s", best);
        if (!probe_has(c, "file", initrd))
                return fail(c, -ENOENT,
                            "the tree has kernel /boot/vmlinuz-%s but no initramfs /%s: install "
                            "initramfs-tools (or dracut) in the tree before the kernel, or run "
                            "update-initramfs -c -k %s in a step",
                            best, initrd, best);
        c->kernel = xasprintf("/boot/vmlinuz-%s", best);
        c->initrd = xasprintf("/%s", initrd);
        say(c, "probe: booting %s with %s", c->kernel, c->initrd);

        _cleanup_strbuf_ struct strbuf missing = STRBUF_INIT;
        for (size_t i = 0; i < c->nneeds; i++) {
                const struct tree_need *need = &c->needs[i];
                if (probe_has(c, "file", need->path))
                        continue;
                say(c, "probe: the tree lacks /%s (package %s)", need->path, need->package);
                if (!strstr(strbuf_str(&missing), need->package))
                        strbuf_addf(&missing, " %s", need->package);
        }
        if (missing.len)
                return fail(c, -ENOENT, "the tree cannot be made bootable with %s: install%s in the tree",
                            c->loader, missing.buf);
        for (size_t i = 0; i < ARRAY_SIZE(prep_dirs); i++)
                if ((probe_has(c, "file", prep_dirs[i]) || probe_has(c, "link", prep_dirs[i])))
                        return fail(c, -EINVAL,
                                    "the tree's /%s is not a directory (a symlink or a file); "
                                    "kiln writes files there and will not follow it",
                                    prep_dirs[i]);
        for (size_t i = 0; i < c->nowned; i++) {
                /* a data partition's mount point and the directories on the
                 * way: kiln empties it in the prep layer, so no symlink */
                if (probe_has(c, "file", c->owned_args[i]) || probe_has(c, "link", c->owned_args[i]))
                        return fail(c, -EINVAL,
                                    "the tree's /%s is not a directory (a symlink or a file); a "
                                    "data partition is mounted at or below it",
                                    c->owned_args[i]);
        }
        if (!c->grow) {
                say(c, "the root is not the last partition: it will not grow with the disk");
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(grow_tools); i++) {
                bool have = false;
                if (grow_tools[i].fs && !streq(grow_tools[i].fs, c->l->root_fs))
                        continue;
                for (size_t j = 0; j < 3 && grow_tools[i].paths[j]; j++)
                        have |= probe_has(c, "file", grow_tools[i].paths[j]) ||
                                probe_has(c, "link", grow_tools[i].paths[j]);
                if (!have)
                        say(c, "warning: the tree has no /%s%s: the root filesystem will not grow "
                               "when the disk is enlarged",
                            grow_tools[i].paths[0], grow_tools[i].paths[1] ? " (or an alternative)" : "");
        }
        return 0;
}

/* ---- prep: generated files in an extra layer ----------------------------- */

static const char growroot_script[] =
        "#!/bin/sh\n"
        "# kiln-growroot: grow the root partition and its ext4 filesystem to the\n"
        "# end of the disk when the disk has been enlarged; a no-op when the\n"
        "# partition already fills it. Run on every boot by kiln-growroot.service.\n"
        "# Needs: findmnt, partx (util-linux), resize2fs (e2fsprogs), and growpart\n"
        "# (cloud-guest-utils) or sfdisk (fdisk).\n"
        "set -u\n"
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
        "say() { echo \"kiln-growroot: $*\"; }\n"
        "dev=$(findmnt -n -o SOURCE /) || { say 'cannot find the root device'; exit 0; }\n"
        "dev=$(readlink -f \"$dev\")\n"
        "name=${dev##*/}\n"
        "sys=/sys/class/block/$name\n"
        "if [ ! -e \"$sys/partition\" ]; then say \"$dev is not a partition: nothing to do\"; exit 0; fi\n"
        "part=$(cat \"$sys/partition\")\n"
        "disk=$(basename \"$(dirname \"$(readlink -f \"$sys\")\")\")\n"
        "start=$(cat \"$sys/start\"); size=$(cat \"$sys/size\"); total=$(cat \"/sys/class/block/$disk/size\")\n"
        "# the backup GPT and alignment leave a little room at the end; grow only\n"
        "# for a gain of more than 1 MiB\n"
        "if [ $((total - start - size)) -le 2048 ]; then\n"
        "  say \"$dev already fills /dev/$disk\"; exit 0\n"
        "fi\n"
        "if command -v growpart >/dev/null 2>&1; then\n"
        "  growpart \"/dev/$disk\" \"$part\" || { say \"growpart failed\"; exit 1; }\n"
        "elif command -v sfdisk >/dev/null 2>&1; then\n"
        "  # sfdisk moves the backup GPT to the new end of the disk; partx tells\n"
        "  # the kernel the new size of the mounted partition (BLKPG)\n"
        "  echo ', +' | sfdisk --no-reread --no-tell-kernel -q -N \"$part\" \"/dev/$disk\" &&\n"
        "    partx -u -n \"$part\" \"/dev/$disk\" || { say \"sfdisk/partx failed\"; exit 1; }\n"
        "else\n"
        "  say \"neither growpart nor sfdisk in the image: $dev not grown\"; exit 0\n"
        "fi\n"
        "resize2fs \"$dev\" || { say \"resize2fs $dev failed\"; exit 1; }\n"
        "say \"grew $dev to $(( $(cat \"$sys/size\") * 512 )) bytes\"\n";

static const char growroot_unit[] =
        "# Installed by kiln: grows the root partition and filesystem to the end\n"
        "# of the disk (a no-op when they fill it already).\n"
        "[Unit]\n"
        "Description=Grow the root partition and filesystem to fill the disk\n"
        "Documentation=file:/usr/lib/kiln/growroot\n"
        "DefaultDependencies=no\n"
        "After=systemd-remount-fs.service\n"
        "Before=sysinit.target shutdown.target\n"
        "Conflicts=shutdown.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "ExecStart=/usr/lib/kiln/growroot\n"
        "StandardOutput=journal+console\n"
        "StandardError=journal+console\n"
        "TimeoutSec=300\n"
        "\n"
        "[Install]\n"
        "WantedBy=sysinit.target\n";

/* Installs the staged files ($1) into the tree (cwd), the growroot unit
 * when $2 is "grow"; empties the $3 data mount points that follow (their
 * contents go to their own partitions: in this layer each becomes an empty
 * directory with the same mode and owner, which hides the lower layers'
 * files from the root filesystem); then sets the times of the paths given
 * after them (what it wrote and every directory on the way) to
 * SOURCE_DATE_EPOCH. The probe made sure no directory on the way is a
 * symlink; files are removed before they are written, so a symlink there
 * is replaced, never followed. */
static const char prep_script[] =
        "set -eu\n"
        "s=$1; g=$2; n=$3; shift 3\n"
        "put() { mkdir -p \"${3%/*}\"; rm -f \"$3\"; cp \"$s/$2\" \"$3\"; chmod \"$1\" \"$3\"; }\n"
        "put 0644 fstab etc/fstab\n"
        "put 0644 grub.cfg boot/grub/grub.cfg\n"
        "if [ \"$g\" = grow ]; then\n"
        "put 0755 growroot usr/lib/kiln/growroot\n"
        "put 0644 kiln-growroot.service etc/systemd/system/kiln-growroot.service\n"
        "mkdir -p etc/systemd/system/sysinit.target.wants\n"
        "w=etc/systemd/system/sysinit.target.wants/kiln-growroot.service\n"
        "rm -f \"$w\"; ln -s /etc/systemd/system/kiln-growroot.service \"$w\"\n"
        "fi\n"
        "mkdir -p boot/efi\n"
        "while [ \"$n\" -gt 0 ]; do\n"
        "  m=$1; shift; n=$((n - 1))\n"
        "  if [ -d \"$m\" ]; then\n"
        "    a=$(stat -c %a \"$m\"); o=$(stat -c %u:%g \"$m\")\n"
        "    rm -rf \"$m\"; mkdir \"$m\"; chmod \"$a\" \"$m\"; chown \"$o\" \"$m\"\n"
        "  else mkdir -p \"$m\"; fi\n"
        "done\n"
        "touch -h -d \"@$SOURCE_DATE_EPOCH\" -- \"$@\"\n";

/* What prep_script creates; with their parent directories, these are the
 * paths whose times it sets (settle_add). The last three only with the
 * growroot unit. */
static const char *const prep_written[] = {
        "etc/fstab",
        "boot/grub/grub.cfg",
        "boot/efi",
        "usr/lib/kiln/growroot",
        "etc/systemd/system/kiln-growroot.service",
        "etc/systemd/system/sysinit.target.wants/kiln-growroot.service",
};
#define PREP_WRITTEN_GROW 3 /* prep_written[3..] belong to the growroot unit */

/* Records path and its ancestors (once each) among the paths whose times
 * are set to SOURCE_DATE_EPOCH: by touch in the layer, and for ctime (which
 * mkfs.ext4 -d copies from the layer, where it is the time of the copy-up)
 * by debugfs in the filesystem (settle_ctimes). */
static void settle_add(struct ctx *c, const char *path) {
        _cleanup_free_ char *p = xstrdup(path);
        for (;;) {
                strv_add_unique(&c->settle, p);
                char *slash = strrchr(p, '/');
                if (!slash)
                        return;
                *slash = 0;
        }
}

/* Appends the extra kernel arguments, each word single-quoted so that
 * GRUB's script parser takes $, ;, {, } and # literally. Quotes and
 * backslashes are refused: GRUB's linux command escapes them with a
 * backslash on the kernel command line (grub_create_loader_cmdline), which
 * the kernel does not undo, so they cannot arrive as written. */
static int add_cmdline_extra(struct strbuf *sb, const char *extra) {
        if (!extra)
                return 0;
        for (const char *p = extra; *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f || strchr("'\"\\", *p))
                        return -EINVAL;
        for (const char *p = extra;;) {
                while (*p == ' ' || *p == '\t')
                        p++;
                if (!*p)
                        return 0;
                size_t n = strcspn(p, " \t");
                strbuf_addf(sb, " '%.*s'", (int)n, p);
                p += n;
        }
}

static int stage_files(struct ctx *c) {
        _cleanup_strbuf_ struct strbuf fstab = STRBUF_INIT, cfg = STRBUF_INIT,
                                       early = STRBUF_INIT;
        const struct disk_layout *l = c->l;
        int r;

        strbuf_adds(&fstab, "# /etc/fstab, written by kiln: filesystems by UUID\n");
        strbuf_addf(&fstab, "UUID=%s / %s %s\n", l->root_fs_uuid, l->root_fs,
                    streq(l->root_fs, "xfs") ? "defaults 0 0" : "errors=remount-ro 0 1");
        if (l->esp >= 0)
                strbuf_addf(&fstab, "UUID=%s /boot/efi vfat umask=0077,nofail 0 2\n", l->esp_fs_id);
        /* data partitions in disk order (the spec checker refuses nested
         * mount points, so the order does not matter to mount); xfs has
         * nothing for fsck to do at boot (fsck.xfs is a no-op) */
        for (unsigned i = 0; i < l->nparts; i++)
                if (l->parts[i].type == DISK_PT_LINUX)
                        strbuf_addf(&fstab, "UUID=%s %s %s defaults 0 %d\n", l->parts[i].fs_uuid,
                                    l->parts[i].mount, l->parts[i].fs,
                                    streq(l->parts[i].fs, "xfs") ? 0 : 2);

        /* The menu: GRUB's own terminal on the serial port and the screen;
         * the kernel's console on both too (the serial port, e.g. ttyS0,
         * last: /dev/console). One entry and no countdown: timeout=1 cost
         * every boot a second (docs/validate.md, "Where the time goes"). */
        strbuf_addf(&cfg,
                    "# /boot/grub/grub.cfg, written by kiln\n"
                    "serial --unit=0 --speed=115200\n"
                    "terminal_input serial console\n"
                    "terminal_output serial console\n"
                    "set default=0\n"
                    "set timeout=0\n"
                    "\n"
                    "menuentry 'Linux %s' {\n"
                    "\tsearch --no-floppy --fs-uuid --set=root %s\n"
                    "\tlinux %s root=UUID=%s ro console=tty0 console=%s",
                    c->kernel + strlen("/boot/vmlinuz-"), l->root_fs_uuid, c->kernel,
                    l->root_fs_uuid, c->arch->console);
        r = add_cmdline_extra(&cfg, c->o->kernel_cmdline_extra);
        if (r < 0)
                return fail(c, r, "the extra kernel arguments contain a quote, a backslash or a "
                                  "control character (GRUB would pass them on escaped): \"%s\"",
                            c->o->kernel_cmdline_extra);
        strbuf_addf(&cfg, "\n\tinitrd %s\n}\n", c->initrd);

        /* xfs grows mounted, by its mount point */
        _cleanup_free_ char *grow = xstrdup(growroot_script);
        if (streq(l->root_fs, "xfs")) {
                const char *from = "resize2fs \"$dev\" || { say \"resize2fs $dev failed\"; exit 1; }\n";
                char *at = strstr(grow, from);
                assert(at);
                char *x = xasprintf("%.*sxfs_growfs / >/dev/null || { say \"xfs_growfs / failed\"; "
                                    "exit 1; }\n%s",
                                    (int)(at - grow), grow, at + strlen(from));
                free(grow);
                grow = x;
        }

        /* Embedded in both GRUB images: find the root filesystem and read
         * its grub.cfg. Runs in GRUB's rescue parser (no if/then there). */
        strbuf_addf(&early,
                    "search --no-floppy --fs-uuid --set=root %s\n"
                    "set prefix=($root)/boot/grub\n"
                    "configfile $prefix/grub.cfg\n",
                    l->root_fs_uuid);

        if ((r = write_text(c->stage, "fstab", fstab.buf, 0644)) < 0 ||
            (r = write_text(c->stage, "grub.cfg", cfg.buf, 0644)) < 0 ||
            (r = write_text(c->stage, "early.cfg", early.buf, 0644)) < 0 ||
            (r = write_text(c->stage, "growroot", grow, 0755)) < 0 ||
            (r = write_text(c->stage, "kiln-growroot.service", growroot_unit, 0644)) < 0)
                return fail(c, r, "cannot write the staged files in %s: %s", c->stage,
                            strerror(-r));
        return 0;
}

static int prep(struct ctx *c) {
        const struct timespec ts[2] = {{.tv_sec = (time_t)c->o->source_date_epoch},
                                       {.tv_sec = (time_t)c->o->source_date_epoch}};
        int r = stage_files(c);
        if (r < 0)
                return r;

        /* Mount points the tree lacks: they are missing from every layer,
         * so a directory in the prep layer adds them without hiding any
         * lower directory's attributes. */
        for (size_t i = 0; i < ARRAY_SIZE(root_dirs); i++) {
                if (probe_has(c, "dir", root_dirs[i].name))
                        continue;
                if (probe_has(c, "file", root_dirs[i].name) ||
                    probe_has(c, "link", root_dirs[i].name)) {
                        say(c, "warning: the tree's /%s is not a directory", root_dirs[i].name);
                        continue;
                }
                _cleanup_free_ char *p = xasprintf("%s/%s", c->prep_upper, root_dirs[i].name);
                if (mkdir(p, 0755) < 0 || chmod(p, root_dirs[i].mode) < 0 ||
                    utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return fail(c, -errno, "prep: cannot create %s: %m", p);
                say(c, "prep: adding the missing /%s", root_dirs[i].name);
                settle_add(c, root_dirs[i].name);
        }

        _cleanup_strv_ struct strv a = STRV_INIT;
        strv_add(&a, "/bin/sh");
        strv_add(&a, "-c");
        strv_add(&a, prep_script);
        strv_add(&a, "kiln-prep");
        strv_add(&a, c->stage);
        strv_add(&a, c->grow ? "grow" : "nogrow");
        unsigned nmounts = 0;
        for (unsigned i = 0; i < c->l->nparts; i++)
                nmounts += c->l->parts[i].type == DISK_PT_LINUX;
        char nm[16];
        snprintf(nm, sizeof nm, "%u", nmounts);
        strv_add(&a, nm);
        for (unsigned i = 0; i < c->l->nparts; i++)
                if (c->l->parts[i].type == DISK_PT_LINUX) {
                        strv_add(&a, c->l->parts[i].mount + 1);
                        settle_add(c, c->l->parts[i].mount + 1);
                }
        for (size_t i = 0; i < (c->grow ? ARRAY_SIZE(prep_written) : PREP_WRITTEN_GROW); i++)
                settle_add(c, prep_written[i]);
        for (size_t i = 0; i < c->settle.n; i++)
                strv_add(&a, c->settle.v[i]);
        struct tree_run t = {.what = "prep", .bare = true, .upper = c->prep_upper,
                             .work = c->prep_work, .stdin_fd = -1, .stdout_fd = -1,
                             .timeout_ms = STAGE_TIMEOUT_MS};
        return run_in_tree(c, &t, a.v);
}

/* ---- the root filesystem and the ESP ------------------------------------- */

static uint64_t part_offset(const struct disk_layout *l, unsigned i) {
        return l->parts[i].first_lba * DISK_SECTOR;
}

static uint64_t part_size(const struct disk_layout *l, unsigned i) {
        return (l->parts[i].last_lba - l->parts[i].first_lba + 1) * DISK_SECTOR;
}

/* An ext4 filesystem in partition i, populated from the tree's directory
 * src ("" for the whole tree) with mkfs.ext4 -d at the partition's offset;
 * the root sees the prep layer, a data partition the cached layers only. */
static int make_ext4(struct ctx *c, int fd, unsigned i, const char *src, bool populate) {
        const struct disk_partition *p = &c->l->parts[i];
        uint8_t u[16];
        char hash_seed[37], ext[200], blocks[24];

        _cleanup_free_ char *purpose = xasprintf("%s-fs-hash-seed", p->purpose);
        uuid_derive(c->o->seed, purpose, u);
        uuid_format(u, hash_seed);
        /* assume_storage_prezeroed: the range is a hole of a fresh file, so
         * inode tables and journal need no zeroing (they stay sparse);
         * nodiscard: nothing to discard */
        snprintf(ext, sizeof ext,
                 "offset=%llu,hash_seed=%s,root_owner=0:0,nodiscard,assume_storage_prezeroed=1",
                 (unsigned long long)part_offset(c->l, i), hash_seed);
        snprintf(blocks, sizeof blocks, "%llu", (unsigned long long)(part_size(c->l, i) / 4096));
        _cleanup_free_ char *dir = xasprintf("%s%s%s", c->mnt, src[0] ? "/" : "", src);
        _cleanup_strv_ struct strv a = STRV_INIT;
        const char *const head[] = {"mkfs.ext4", "-F", "-q", "-b", "4096", "-U", p->fs_uuid,
                                    "-L", p->name, "-E", ext};
        for (size_t k = 0; k < ARRAY_SIZE(head); k++)
                strv_add(&a, head[k]);
        if (populate) {
                strv_add(&a, "-d");
                strv_add(&a, dir);
        }
        strv_add(&a, "/proc/self/fd/0");
        strv_add(&a, blocks);
        struct tree_run t = {.what = "mkfs.ext4", .with_prep = p->type == DISK_PT_ROOT,
                             .bare = true, .stdin_fd = fd, .stdout_fd = -1,
                             .timeout_ms = MKFS_TIMEOUT_MS};
        return run_in_tree(c, &t, a.v);
}

/* ---- xfs: mkfs.xfs -p with a protofile made from the tree ---------------- */

/* Lists the tree's directory $1 (relative to the cwd, the tree) into files
 * in $2: list (type, mode, owner, link count, inode, path, link target;
 * NUL-separated), devs (device numbers) and xattrs (getfattr's dump of
 * every extended attribute, POSIX ACLs and capabilities included). */
static const char xfs_list_script[] =
        "set -eu\n"
        "command -v getfattr >/dev/null || { echo 'kiln: getfattr not found (package attr)' >&2; exit 1; }\n"
        "cd \"$1\"\n"
        "find . -printf '%y %m %U %G %n %i %P\\0%l\\0' > \"$2/list\"\n"
        "find . \\( -type b -o -type c \\) -exec stat --printf '%t %T %n\\0' {} + > \"$2/devs\"\n"
        "getfattr -R -P -h -m - . > \"$2/xattrs\" 2>\"$2/xattrs.err\" || { cat \"$2/xattrs.err\" >&2; exit 1; }\n";

/* The listing of a tree: about 150 bytes a file, so room for millions. */
#define XFS_LIST_MAX (1u << 30)

struct xent {
        char type;              /* find's %y: f d l b c p s */
        unsigned mode, uid, gid;
        unsigned long nlink;
        unsigned long long ino;
        const char *path;       /* relative to the listed directory; "" for itself */
        const char *target;     /* symlinks */
};

/* Path order with '/' before every other byte: a directory's entries
 * follow it directly, as a protofile nests them. */
static int xent_cmp(const void *x, const void *y) {
        const unsigned char *a = (const unsigned char *)((const struct xent *)x)->path;
        const unsigned char *b = (const unsigned char *)((const struct xent *)y)->path;
        for (;; a++, b++) {
                unsigned ca = *a == '/' ? 1 : *a == 0 ? 0 : *a + 1u;
                unsigned cb = *b == '/' ? 1 : *b == 0 ? 0 : *b + 1u;
                if (ca != cb || ca == 0)
                        return ca < cb ? -1 : ca > cb;
        }
}

static int ull_cmp(const void *x, const void *y) {
        unsigned long long a = *(const unsigned long long *)x, b = *(const unsigned long long *)y;
        return a < b ? -1 : a > b;
}

/* ucf's cache of the pristine versions of config files it manages; it
 * names them after their path with ':' for '/', which a protofile cannot
 * name. Without them ucf treats the next upgrade of such a file as one
 * without a known previous version (it keeps the local file and asks, or
 * follows its --keep/--replace settings): nothing is lost that the system
 * needs, so they are left out with a note. */
#define UCF_CACHE "var/lib/ucf/cache/"

/* A token mkfs.xfs's protofile parser reads back as written: no blanks or
 * newlines (they separate tokens), no leading ':' (a comment), not "$". */
static bool proto_token_ok(const char *s) {
        if (!s[0] || s[0] == ':' || streq(s, "$"))
                return false;
        for (const char *p = s; *p; p++)
                if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                        return false;
        return true;
}

/* Builds the protofile for the listing in dir (xfs_list_script's files) of
 * the tree's directory src: sources are named relative to the tree root,
 * mkfs.xfs's cwd. Sticky paths (which a protofile cannot express) go to
 * *sticky, one "/PATH MODE\n" each (the whole mode, octal). Problems are logged; returns 0, -EINVAL
 * (the tree has what xfs cannot take) or -errno. */
static int xfs_proto(struct ctx *c, const char *dir, const char *src, struct strbuf *out,
                     struct strbuf *sticky) {
        _cleanup_free_ char *lpath = xasprintf("%s/list", dir), *dpath = xasprintf("%s/devs", dir),
                            *xpath = xasprintf("%s/xattrs", dir);
        _cleanup_free_ char *list = NULL, *devs = NULL, *xattrs = NULL;
        _cleanup_free_ struct xent *e = NULL;
        _cleanup_free_ unsigned long long *inos = NULL;
        _cleanup_strbuf_ struct strbuf bad = STRBUF_INIT;
        size_t llen, dlen, xlen, n = 0, cap = 0, nbad = 0, ninos = 0, inocap = 0, nsock = 0;
        int r;

        if ((r = read_file(lpath, XFS_LIST_MAX, &list, &llen)) < 0 ||
            (r = read_file(dpath, XFS_LIST_MAX, &devs, &dlen)) < 0 ||
            (r = read_file(xpath, XFS_LIST_MAX, &xattrs, &xlen)) < 0)
                return fail(c, r, "xfs: cannot read the tree's listing in %s: %s", dir, strerror(-r));
        /* getfattr's dump: "# file: PATH" then one attribute name a line,
         * then a blank line. POSIX ACLs are dropped with a note (systemd
         * sets the only ones a Debian tree has, on /var/log/journal, again
         * at boot with tmpfiles); anything else, file capabilities above
         * all, cannot be left out silently. */
        _cleanup_strbuf_ struct strbuf acl = STRBUF_INIT;
        size_t nacl = 0;
        for (char *l = xattrs, *file = NULL, *nl; l && l < xattrs + xlen; l = nl ? nl + 1 : NULL) {
                nl = strchr(l, '\n');
                if (nl)
                        *nl = 0;
                if (startswith(l, "# file: ")) {
                        file = l + 8;
                        continue;
                }
                if (!l[0] || !file)
                        continue;
                bool is_acl = startswith(l, "system.posix_acl_");
                struct strbuf *to = is_acl ? &acl : &bad;
                size_t *count = is_acl ? &nacl : &nbad;
                if ((*count)++ < 5)
                        strbuf_addf(to, "\n  /%s%s%s (%s)", src, src[0] ? "/" : "", file, l);
        }
        if (nbad)
                return fail(c, -EINVAL,
                            "xfs: %zu extended attributes in the tree (file capabilities or others) "
                            "which mkfs.xfs -p cannot copy; use ext4 for this partition, or remove "
                            "them in a step (e.g. setcap -r FILE):%s",
                            nbad, strbuf_str(&bad));
        if (nacl)
                say(c, "xfs: %zu POSIX ACLs left out (mkfs.xfs -p cannot copy them):%s", nacl,
                    strbuf_str(&acl));
        for (size_t off = 0; off < llen;) {
                struct xent x = {0};
                char *rec = list + off;
                size_t rl = strnlen(rec, llen - off);
                if (off + rl >= llen)
                        break;
                char *tgt = rec + rl + 1;
                size_t tl = strnlen(tgt, llen - off - rl - 1);
                off += rl + 1 + tl + 1;
                int used = 0;
                if (sscanf(rec, "%c %o %u %u %lu %llu %n", &x.type, &x.mode, &x.uid, &x.gid,
                           &x.nlink, &x.ino, &used) < 6 || used == 0)
                        return fail(c, -EBADMSG, "xfs: cannot parse the tree's listing: '%s'", rec);
                x.path = rec + used;
                x.target = tgt;
                GROW(e, n, cap);
                e[n++] = x;
        }
        if (n == 0 || e[0].path[0])
                return fail(c, -EBADMSG, "xfs: the tree's listing does not start with its root");
        qsort(e + 1, n - 1, sizeof *e, xent_cmp);

        strbuf_adds(out, "kiln\n0 0\n");
        strbuf_addf(out, "d--%03o %u %u\n", e[0].mode & 0777, e[0].uid, e[0].gid);
        /* open directories, as lengths of their path prefix */
        size_t depth_len[DISK_MOUNT_MAX * 16], depth = 0;
        for (size_t i = 1; i < n; i++) {
                const struct xent *x = &e[i];
                const char *slash = strrchr(x->path, '/');
                const char *name = slash ? slash + 1 : x->path;
                size_t plen = slash ? (size_t)(slash - x->path) : 0;
                bool ok = proto_token_ok(name) && (x->type != 'l' || proto_token_ok(x->target));
                _cleanup_free_ char *full = xasprintf("%s%s%s", src, src[0] ? "/" : "", x->path);
                if (!ok && startswith(full, UCF_CACHE) && !strchr(x->path + plen, '\n')) {
                        /* ucf names its cache ":etc:ssh:sshd_config" */
                        say(c, "xfs: /%s left out (a protofile cannot name it; it is ucf's copy of "
                               "a pristine config file, and ucf does without it)", full);
                        continue;
                }
                if (!ok) {
                        if (nbad++ < 5)
                                strbuf_addf(&bad, "\n  /%s%s%s%s", src, src[0] ? "/" : "", x->path,
                                            x->type == 'l' ? " (or its link target)" : "");
                        continue;
                }
                if (x->type == 's') {
                        nsock++;
                        continue;
                }
                /* sorted order: the parent is among the open directories
                 * (those on the way to the previous entry), by its length */
                while (depth > 0 && depth_len[depth - 1] != plen) {
                        strbuf_adds(out, "$\n");
                        depth--;
                }
                char ty = x->type == 'f' ? '-' : x->type;
                if (!strchr("-dlbcp", ty))
                        return fail(c, -EBADMSG, "xfs: unexpected file type '%c' of %s", x->type,
                                    x->path);
                strbuf_addf(out, "%s %c%c%c%03o %u %u", name, ty, x->mode & 04000 ? 'u' : '-',
                            x->mode & 02000 ? 'g' : '-', x->mode & 0777, x->uid, x->gid);
                if (x->mode & 01000)
                        strbuf_addf(sticky, "/%s 0%o\n", x->path,
                                    (ty == 'd' ? S_IFDIR : ty == '-' ? S_IFREG : ty == 'p' ? S_IFIFO
                                     : ty == 'b' ? S_IFBLK : S_IFCHR) | (x->mode & 07777));
                if (ty == '-') {
                        strbuf_addf(out, " ./%s%s%s", src, src[0] ? "/" : "", x->path);
                        if (x->nlink > 1) {
                                GROW(inos, ninos, inocap);
                                inos[ninos++] = x->ino;
                        }
                } else if (ty == 'l') {
                        strbuf_addf(out, " %s", x->target);
                } else if (ty == 'b' || ty == 'c') {
                        /* stat's "%t %T ./PATH\0" records */
                        unsigned maj = 0, min = 0;
                        bool found = false;
                        for (size_t off = 0; off < dlen && !found;) {
                                char *rec = devs + off;
                                size_t rl = strnlen(rec, dlen - off);
                                int used = 0;
                                if (sscanf(rec, "%x %x ./%n", &maj, &min, &used) >= 2 && used &&
                                    streq(rec + used, x->path))
                                        found = true;
                                off += rl + 1;
                        }
                        if (!found)
                                return fail(c, -EBADMSG, "xfs: no device numbers for /%s", x->path);
                        strbuf_addf(out, " %u %u", maj, min);
                }
                strbuf_addc(out, '\n');
                if (ty == 'd') {
                        if (depth >= ARRAY_SIZE(depth_len))
                                return fail(c, -E2BIG, "xfs: the tree nests too deep at /%s", x->path);
                        depth_len[depth++] = strlen(x->path);
                }
        }
        while (depth-- > 0)
                strbuf_adds(out, "$\n");
        strbuf_adds(out, "$\n");
        if (nbad)
                return fail(c, -EINVAL,
                            "xfs: %zu names or symlink targets in the tree contain blanks or "
                            "newlines, start with ':' or are '$', which a mkfs.xfs protofile "
                            "cannot express; use ext4 for this partition, or rename them:%s",
                            nbad, strbuf_str(&bad));
        if (nsock)
                say(c, "xfs: %zu sockets in the tree left out (a protofile has no sockets)", nsock);
        if (ninos) {
                qsort(inos, ninos, sizeof *inos, ull_cmp);
                size_t copies = 0;
                for (size_t i = 1; i < ninos; i++)
                        copies += inos[i] == inos[i - 1];
                if (copies)
                        say(c, "xfs: %zu hard links become separate copies (a protofile has no "
                               "hard links)", copies);
        }
        return 0;
}

/* Sets the modes a protofile cannot carry (the sticky bit), each line of
 * list "/PATH MODE", with xfs_db in expert mode on the filesystem image. */
static int xfs_set_sticky(struct ctx *c, const char *img, char *list) {
        _cleanup_strv_ struct strv a = STRV_INIT;
        strv_add(&a, "xfs_db");
        strv_add(&a, "-x");
        for (char *l = list, *nl; *l; l = nl + 1) {
                nl = strchr(l, '\n');
                *nl = 0;
                char *sp = strrchr(l, ' ');
                *sp = 0;
                strv_add(&a, "-c");
                strv_addf(&a, "path %s", l);
                strv_add(&a, "-c");
                strv_addf(&a, "write core.mode %s", sp + 1);
        }
        strv_add(&a, img);
        return run_host(c, "xfs_db", a.v, -1);
}

/* An xfs filesystem in partition i from the tree's directory src ("" for
 * the whole tree): list it (a bare sandbox), write the protofile, run
 * mkfs.xfs -p on a scratch file of the partition's size (mkfs.xfs cannot
 * write at an offset), set the sticky bits the protofile cannot carry
 * (xfs_db), copy the result into the disk. */
static int make_xfs(struct ctx *c, int fd, unsigned i, const char *src, bool populate) {
        const struct disk_partition *p = &c->l->parts[i];
        _cleanup_free_ char *dir = xasprintf("%s/xfs-%u", c->dir, i);
        _cleanup_free_ char *proto = xasprintf("%s/proto", dir), *img = xasprintf("%s/fs.img", dir);
        _cleanup_strbuf_ struct strbuf text = STRBUF_INIT, sticky = STRBUF_INIT;
        bool with_prep = p->type == DISK_PT_ROOT;
        int r;

        if ((r = mkdir_p(dir, 0755)) < 0)
                return fail(c, r, "xfs: cannot create %s: %s", dir, strerror(-r));
        if (populate) {
                char *argv[] = {"/bin/sh", "-c", (char *)xfs_list_script, "kiln-xfs-list",
                                (char *)(src[0] ? src : "."), dir, NULL};
                struct tree_run t = {.what = "xfs listing", .with_prep = with_prep, .bare = true,
                                     .stdin_fd = -1, .stdout_fd = -1,
                                     .timeout_ms = MKFS_TIMEOUT_MS};
                if ((r = run_in_tree(c, &t, argv)) < 0)
                        return r;
                if ((r = xfs_proto(c, dir, src, &text, &sticky)) < 0)
                        return r;
        } else
                strbuf_adds(&text, "kiln\n0 0\nd--755 0 0\n$\n");
        if ((r = write_text(dir, "proto", text.buf, 0644)) < 0)
                return fail(c, r, "xfs: cannot write %s: %s", proto, strerror(-r));
        {
                _cleanup_close_ int ifd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (ifd < 0 || ftruncate(ifd, (off_t)part_size(c->l, i)) < 0)
                        return fail(c, -errno, "xfs: cannot create %s: %m", img);
        }
        _cleanup_free_ char *uuid = xasprintf("uuid=%s", p->fs_uuid);
        char *argv[] = {"mkfs.xfs", "-q", "-f", "-m", uuid, "-L", (char *)p->name, "-p", proto,
                        img, NULL};
        struct tree_run t = {.what = "mkfs.xfs", .with_prep = with_prep, .bare = true,
                             .stdin_fd = -1, .stdout_fd = -1, .timeout_ms = MKFS_TIMEOUT_MS};
        if ((r = run_in_tree(c, &t, argv)) < 0)
                return r;
        if (sticky.len && (r = xfs_set_sticky(c, img, sticky.buf)) < 0)
                return r;
        _cleanup_close_ int ifd = open(img, O_RDONLY | O_CLOEXEC);
        if (ifd < 0)
                return fail(c, -errno, "xfs: cannot open %s: %m", img);
        r = fs_copy_sparse(ifd, fd, part_offset(c->l, i));
        if (r < 0)
                return fail(c, r, "xfs: cannot copy %s into the disk: %s", img, strerror(-r));
        (void)unlink(img);
        say(c, "xfs: partition %u (%s) written; file times are those of this run (mkfs.xfs -p "
               "does not take them from the tree)",
            i + 1, p->name);
        return 0;
}

/* mkfs.ext4 -d copies each file's ctime, which for what prep wrote (and
 * the directories overlayfs copied up for it) is the time of this run;
 * debugfs sets those to SOURCE_DATE_EPOCH, so the same layers give the
 * same image byte for byte. (The cached layers' ctimes are those of their
 * extraction: stable for as long as the cache entry lives.) */
static int settle_ctimes(struct ctx *c, int fd) {
        _cleanup_strbuf_ struct strbuf cmds = STRBUF_INIT;
        _cleanup_free_ char *dev = NULL;
        int r;

        for (size_t i = 0; i < c->settle.n; i++)
                strbuf_addf(&cmds, "set_inode_field /%s ctime @%llu\n", c->settle.v[i],
                            (unsigned long long)c->o->source_date_epoch);
        r = write_text(c->dir, "settle.debugfs", cmds.buf ? cmds.buf : "", 0644);
        if (r < 0)
                return fail(c, r, "cannot write %s/settle.debugfs: %s", c->dir, strerror(-r));
        _cleanup_free_ char *file = xasprintf("%s/settle.debugfs", c->dir);
        /* unix_io's "?offset=" names the filesystem inside the image */
        dev = xasprintf("/proc/self/fd/0?offset=%llu",
                        (unsigned long long)part_offset(c->l, (unsigned)c->l->root));
        char *argv[] = {"debugfs", "-w", "-f", file, dev, NULL};
        return run_host(c, "debugfs", argv, fd);
}

/* mtools' image argument: the file at the ESP's byte offset. */
static char *esp_image(const struct ctx *c) {
        return xasprintf("/proc/self/fd/0@@%llu",
                         (unsigned long long)part_offset(c->l, (unsigned)c->l->esp));
}

static int make_esp(struct ctx *c, int fd) {
        char volid[9], offset[32], hidden[24], kib[24];
        const struct disk_partition *p = &c->l->parts[c->l->esp];
        uint64_t size = part_size(c->l, (unsigned)c->l->esp);

        /* "XXXX-XXXX" -> "XXXXXXXX" */
        snprintf(volid, sizeof volid, "%.4s%.4s", c->l->esp_fs_id, c->l->esp_fs_id + 5);
        snprintf(offset, sizeof offset, "--offset=%llu", (unsigned long long)p->first_lba);
        snprintf(hidden, sizeof hidden, "%llu", (unsigned long long)p->first_lba);
        snprintf(kib, sizeof kib, "%llu", (unsigned long long)(size / 1024));
        /* --invariant before -i: it fixes the creation time and would also
         * reset the volume id */
        /* mkfs.fat warns "block count mismatch" (the file is larger than
         * the ESP): expected. -s 1: 512-byte clusters. mkfs.fat picks the cluster size from the
         * size of the whole file, not of the partition, and FAT32 needs at
         * least 65525 clusters (a 64 MiB ESP has 128992 of 512 bytes; the
         * smallest, DISK_MIN_ESP_SIZE, 66524). From 512 MiB on, 4 KiB
         * clusters (at least 131072 of them). The label: "ESP" unless the
         * spec names one. */
        char *argv[] = {"mkfs.fat", "-F", "32", "-s", size >= 512ull << 20 ? "8" : "1",
                        "--invariant", "-i", volid, "-n",
                        streq(p->name, "esp") ? "ESP" : (char *)p->name,
                        "-h", hidden, offset, "/proc/self/fd/0", kib, NULL};
        return run_host(c, "mkfs.fat", argv, fd);
}

/* Copies host file src to dest (an absolute path like /EFI/BOOT/X.EFI) in
 * the ESP, creating its directories (those not made by an earlier call:
 * the ESP is fresh, and mmd fails on an existing directory). */
static int esp_copy(struct ctx *c, int fd, const char *src, const char *dest) {
        _cleanup_free_ char *img = esp_image(c), *dpath = xstrdup(dest), *target = NULL;
        int r;

        for (char *s = dpath + 1; (s = strchr(s, '/')); s++) {
                *s = 0;
                _cleanup_free_ char *d = xasprintf("::%s", dpath), *key = xasprintf("%s\n", dpath);
                *s = '/';
                if (strstr(strbuf_str(&c->esp_dirs), key))
                        continue;
                char *mk[] = {"mmd", "-i", img, d, NULL};
                r = run_host(c, "mmd", mk, fd);
                if (r < 0)
                        return r;
                strbuf_adds(&c->esp_dirs, key);
        }
        target = xasprintf("::%s", dest);
        char *cp[] = {"mcopy", "-D", "o", "-i", img, (char *)src, target, NULL};
        return run_host(c, "mcopy", cp, fd);
}

/* ---- GRUB: BIOS (x86_64: i386-pc) and UEFI (x86_64-efi) --------------------- */

/* Modules built into both images. Nothing can be loaded later: the tree has
 * no /boot/grub/<platform>/ (that is grub-install's job, which kiln does not
 * run), so everything the early config and grub.cfg use is here:
 * part_gpt + ext2 (ext4) + search_fs_uuid find the root; normal + configfile
 * read grub.cfg and show the menu (boot runs the entry); linux loads kernel
 * and initrd; serial + terminal for terminal_input/terminal_output; echo,
 * test and minicmd for debugging at the prompt; gzio for compressed files;
 * part_msdos and fat let the prompt look at other disks. moddep.lst pulls
 * in the dependencies (extcmd, terminfo, relocator, ...). */
#define GRUB_COMMON_MODULES                                                                    \
        "part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid", "normal",         \
                "configfile", "boot", "linux", "serial", "terminal", "echo", "test", "minicmd", \
                "gzio"

/* boot.img (GRUB's MBR code, grub-core/boot/i386/pc/boot.S) field offsets,
 * from include/grub/i386/pc/boot.h: */
#define GRUB_BOOT_MACHINE_KERNEL_SECTOR 0x5c /* u64 LE: LBA of core.img's first sector */
#define GRUB_BOOT_MACHINE_BOOT_DRIVE 0x64    /* u8: 0xff = use the drive the BIOS passed in %dl */
#define GRUB_BOOT_MACHINE_DRIVE_CHECK 0x66   /* 2 bytes: "jmp 3f" over the %dl sanity fix-up */
/* diskboot.img (core.img's first sector, grub-core/boot/i386/pc/diskboot.S)
 * ends with one blocklist entry of GRUB_BOOT_MACHINE_LIST_SIZE (12) bytes:
 * u64 start LBA, u16 sector count, u16 load segment. */
#define GRUB_BOOT_MACHINE_LIST_SIZE 12
#define GRUB_BOOT_I386_PC_KERNEL_SEG 0x800 /* core.img loads at 0x8000; its 2nd sector at 0x8200 */

/* Adds usr/lib/grub/TARGET/FILE (from package) to what the tree must have. */
static void grub_need(struct ctx *c, const char *target, const char *file, const char *package) {
        assert(c->nneeds < BOOT_MAX_NEEDS);
        struct tree_need *n = &c->needs[c->nneeds++];
        snprintf(n->path, sizeof n->path, "usr/lib/grub/%s/%s", target, file);
        n->package = package;
}

/* What GRUB needs from the tree for the arch's loaders, and its name. */
static void grub_needs(struct ctx *c) {
        const struct arch *a = c->arch;
        bool bios = a->boot_loaders & ARCH_LOADER_GRUB_BIOS, efi = a->boot_loaders & ARCH_LOADER_GRUB_EFI;
        c->needs[0] = (struct tree_need){"usr/bin/grub-mkimage", "grub-common"};
        c->nneeds = 1;
        if (bios) {
                grub_need(c, a->grub_bios_target, "boot.img", a->grub_bios_package);
                grub_need(c, a->grub_bios_target, "moddep.lst", a->grub_bios_package);
        }
        if (efi)
                grub_need(c, a->grub_efi_target, "moddep.lst", a->grub_efi_package);
        c->loader = bios && efi ? "GRUB (BIOS and UEFI)" : bios ? "GRUB (BIOS)" : "GRUB (UEFI)";
}

static int grub_build(struct ctx *c) {
        /* the tree sees the staged early config and the output directory
         * (binds live under /run, a tmpfs in the sandbox) */
        const struct sandbox_bind binds[] = {
                {.host_path = c->stage, .tree_path = "/run/kiln/stage", .read_only = true},
                {.host_path = c->boot_out, .tree_path = "/run/kiln/out", .read_only = false},
        };
        struct tree_run t = {.what = "grub-mkimage", .binds = binds, .nbinds = ARRAY_SIZE(binds),
                             .stdin_fd = -1, .stdout_fd = -1, .timeout_ms = STAGE_TIMEOUT_MS};
        int r;

        /* xfs only when the root is xfs: ext4 images stay as they were */
        const char *xfs = streq(c->l->root_fs, "xfs") ? "xfs" : NULL;
        const struct arch *a = c->arch;
        if (a->boot_loaders & ARCH_LOADER_GRUB_BIOS) {
                /* BIOS: the prefix is a fallback for a disk GRUB sees as hd0; the
                 * embedded config searches by UUID, so another disk order works too */
                char prefix[48];
                snprintf(prefix, sizeof prefix, "(hd0,gpt%d)/boot/grub", c->l->root + 1);
                char *bios[] = {"grub-mkimage", "-O", (char *)a->grub_bios_target, "-o",
                                "/run/kiln/out/core.img", "-p", prefix, "-c", "/run/kiln/stage/early.cfg",
                                "biosdisk", GRUB_COMMON_MODULES, (char *)xfs, NULL};
                r = run_in_tree(c, &t, bios);
                if (r < 0)
                        return r;
        }
        if (a->boot_loaders & ARCH_LOADER_GRUB_EFI) {
                _cleanup_free_ char *out = xasprintf("/run/kiln/out/%s", a->efi_boot_file);
                /* the arch's video modules, then the common ones (and xfs) */
                const char *const common[] = {GRUB_COMMON_MODULES, xfs};
                char *efi[32] = {"grub-mkimage", "-O", (char *)a->grub_efi_target, "-o", out,
                                 "-p", "/boot/grub", "-c", "/run/kiln/stage/early.cfg"};
                size_t n = 9;
                static_assert(9 + ARRAY_SIZE(a->grub_efi_modules) + ARRAY_SIZE(common) < ARRAY_SIZE(efi),
                              "room for every module and the NULL");
                for (const char *const *m = a->grub_efi_modules; *m; m++)
                        efi[n++] = (char *)*m;
                for (size_t i = 0; i < ARRAY_SIZE(common) && common[i]; i++)
                        efi[n++] = (char *)common[i];
                r = run_in_tree(c, &t, efi);
                if (r < 0)
                        return r;
        }
        if (!(a->boot_loaders & ARCH_LOADER_GRUB_BIOS))
                return 0;
        t.what = "boot.img";
        _cleanup_free_ char *img = xasprintf("/usr/lib/grub/%s/boot.img", a->grub_bios_target);
        char *cp[] = {"cp", img, "/run/kiln/out/boot.img", NULL};
        return run_in_tree(c, &t, cp);
}

/* Reads a file of at most max bytes from the bootloader's output. */
static int read_boot_file(struct ctx *c, const char *name, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *path = xasprintf("%s/%s", c->boot_out, name);
        int r = read_file(path, max, ret, ret_len);
        if (r < 0)
                return fail(c, r, "cannot read %s: %s", path, strerror(-r));
        return 0;
}

/* What grub-bios-setup does for a GPT disk with a BIOS boot partition
 * (util/setup.c): boot.img in the MBR (keeping the partition table) with
 * the LBA of core.img, core.img in the partition with its first blocklist
 * pointing at its own second sector. The Reed-Solomon redundancy that
 * grub-bios-setup appends in embedding areas is left out (the field stays
 * 0, as grub-mkimage wrote it): it only repairs a damaged core.img, and
 * the BIOS boot in tests/e2e/boot-check.sh works without it. */
static int grub_install_bios(struct ctx *c, int fd) {
        _cleanup_free_ char *boot = NULL, *core = NULL;
        uint8_t mbr[DISK_SECTOR];
        size_t boot_len, core_len;
        int r;

        r = read_boot_file(c, "boot.img", DISK_SECTOR, &boot, &boot_len);
        if (r < 0)
                return r;
        if (boot_len != DISK_SECTOR)
                return fail(c, -EBADMSG, "boot.img is %zu bytes, not %u", boot_len, DISK_SECTOR);
        uint8_t *b = (uint8_t *)boot;
        /* sanity: boot.S's defaults, so we patch what we think we patch */
        if (b[GRUB_BOOT_MACHINE_BOOT_DRIVE] != 0xff || b[GRUB_BOOT_MACHINE_DRIVE_CHECK] != 0xeb)
                return fail(c, -EBADMSG,
                            "boot.img does not look like GRUB 2's (boot drive 0x%02x, drive "
                            "check 0x%02x)",
                            b[GRUB_BOOT_MACHINE_BOOT_DRIVE], b[GRUB_BOOT_MACHINE_DRIVE_CHECK]);

        uint64_t part_bytes = part_size(c->l, (unsigned)c->l->bios);
        r = read_boot_file(c, "core.img", part_bytes, &core, &core_len);
        if (r == -E2BIG)
                return fail(c, r, "core.img does not fit the %llu-byte BIOS boot partition",
                            (unsigned long long)part_bytes);
        if (r < 0)
                return r;
        uint64_t core_sectors = (core_len + DISK_SECTOR - 1) / DISK_SECTOR;
        if (core_sectors < 2 || core_sectors - 1 > UINT16_MAX)
                return fail(c, -EBADMSG, "core.img has a strange size (%zu bytes)", core_len);

        uint64_t core_lba = c->l->parts[c->l->bios].first_lba;
        /* boot.img: kernel sector = core.img's first sector; boot drive 0xff
         * (take %dl from the BIOS), as write_rootdev() sets it; and for a
         * hard disk grub-bios-setup replaces the 2-byte jump at DRIVE_CHECK
         * with two NOPs, which enables the fix-up for BIOSes that pass a
         * bad drive number (%dl without 0x80 becomes 0x80) */
        put_le64(b + GRUB_BOOT_MACHINE_KERNEL_SECTOR, core_lba);
        b[GRUB_BOOT_MACHINE_BOOT_DRIVE] = 0xff;
        b[GRUB_BOOT_MACHINE_DRIVE_CHECK] = 0x90;
        b[GRUB_BOOT_MACHINE_DRIVE_CHECK + 1] = 0x90;

        /* diskboot.img's blocklist: grub-mkimage fills len (sectors after
         * the first) and segment; the start is the disk's business */
        uint8_t *bl = (uint8_t *)core + DISK_SECTOR - GRUB_BOOT_MACHINE_LIST_SIZE;
        uint16_t len = get_le16(bl + 8), seg = get_le16(bl + 10);
        if (len != core_sectors - 1 || seg != GRUB_BOOT_I386_PC_KERNEL_SEG + (DISK_SECTOR >> 4))
                return fail(c, -EBADMSG,
                            "core.img's blocklist is not what grub-mkimage writes (len %u for "
                            "%llu sectors, segment 0x%x)",
                            len, (unsigned long long)core_sectors, seg);
        say(c, "bios: core.img %zu bytes at LBA %llu, blocklist start %llu (was %llu) len %u",
            core_len, (unsigned long long)core_lba, (unsigned long long)core_lba + 1,
            (unsigned long long)get_le64(bl), len);
        put_le64(bl, core_lba + 1);

        r = pwrite_all(fd, core, core_len, core_lba * DISK_SECTOR);
        if (r < 0)
                return fail(c, r, "cannot write core.img: %s", strerror(-r));
        /* the MBR: boot code only, the partition table (440..511) stays */
        r = pread_all(fd, mbr, sizeof mbr, 0);
        if (r >= 0) {
                memcpy(mbr, b, MBR_BOOT_CODE_SIZE);
                r = pwrite_all(fd, mbr, MBR_BOOT_CODE_SIZE, 0);
        }
        if (r < 0)
                return fail(c, r, "cannot write the MBR: %s", strerror(-r));
        return 0;
}

/* UEFI when there is an ESP, legacy BIOS when there is a BIOS boot
 * partition (the layout has at least one of them). */
static int grub_install(struct ctx *c, int fd) {
        const char *name = c->arch->efi_boot_file;
        _cleanup_free_ char *efi = xasprintf("%s/%s", c->boot_out, name);
        _cleanup_free_ char *dest = xasprintf("/EFI/BOOT/%s", name);
        int r;
        if (c->l->esp >= 0 && (r = esp_copy(c, fd, efi, dest)) < 0)
                return r;
        if (c->l->bios < 0) {
                say(c, "no BIOS boot partition: the disk boots with UEFI only");
                return 0;
        }
        return grub_install_bios(c, fd);
}

/* ---- disk_assemble ------------------------------------------------------ */

static bool layout_matches_plan(const struct disk_options *o, const struct disk_layout *l) {
        struct disk_layout p;
        if (disk_plan(o, &p) < 0 || p.size != l->size || p.nparts != l->nparts ||
            p.bios != l->bios || p.esp != l->esp || p.root != l->root)
                return false;
        for (unsigned i = 0; i < p.nparts; i++)
                if (p.parts[i].first_lba != l->parts[i].first_lba ||
                    p.parts[i].last_lba != l->parts[i].last_lba ||
                    p.parts[i].type != l->parts[i].type || !p.parts[i].fs != !l->parts[i].fs ||
                    (p.parts[i].fs && !streq(p.parts[i].fs, l->parts[i].fs)) ||
                    !p.parts[i].mount != !l->parts[i].mount ||
                    (p.parts[i].mount && !streq(p.parts[i].mount, l->parts[i].mount)))
                        return false;
        return true;
}

static int ctx_init(struct ctx *c, const struct disk_options *o, const struct disk_layout *l) {
        int r;

        c->o = o;
        c->l = l;
        c->log_fd = o->log_fd;
        c->dir = xasprintf("%s/disk", o->scratch_dir);
        c->mnt = xasprintf("%s/mnt", c->dir);
        c->stage = xasprintf("%s/stage", c->dir);
        c->prep_upper = xasprintf("%s/prep/upper", c->dir);
        c->prep_work = xasprintf("%s/prep/work", c->dir);
        c->boot_out = xasprintf("%s/boot", c->dir);

        snprintf(c->env_sde, sizeof c->env_sde, "SOURCE_DATE_EPOCH=%llu",
                 (unsigned long long)o->source_date_epoch);
        /* libext2fs (1.47) reads this as "now" for the times it sets itself */
        snprintf(c->env_fake, sizeof c->env_fake, "E2FSPROGS_FAKE_TIME=%llu",
                 (unsigned long long)o->source_date_epoch);
        size_t n = 0;
        c->envp[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        c->envp[n++] = "HOME=/root";
        c->envp[n++] = "LC_ALL=C.UTF-8";
        c->envp[n++] = "TZ=UTC"; /* FAT times are local times */
        c->envp[n++] = "MTOOLS_SKIP_CHECK=1";
        c->envp[n++] = c->env_sde;
        c->envp[n++] = c->env_fake;
        c->envp[n] = NULL;

        r = rm_rf(c->dir);
        if (r < 0)
                return fail(c, r, "cannot remove the old %s: %s", c->dir, strerror(-r));
        const char *const dirs[] = {c->mnt, c->stage, c->prep_upper, c->prep_work, c->boot_out};
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                if ((r = mkdir_p(dirs[i], 0755)) < 0)
                        return fail(c, r, "cannot create %s: %s", dirs[i], strerror(-r));
        return 0;
}

int disk_assemble(const struct disk_options *o, const struct disk_layout *l, int out_fd) {
        _cleanup_(ctx_free) struct ctx c = {.log_fd = o ? o->log_fd : -1};
        struct stat st;
        uint64_t t0 = now_ms(), t;
        int r;

        if (!o || !l || !o->scratch_dir || !o->layers || o->nlayers == 0 ||
            o->nlayers >= SANDBOX_MAX_LAYERS || out_fd < 0)
                return fail(&c, -EINVAL, "disk_assemble: bad arguments");
        c.arch = arch_find(o->arch);
        if (!c.arch)
                return fail(&c, -EOPNOTSUPP, "unknown architecture '%s'", o->arch ? o->arch : "");
        if (!c.arch->boot_loaders)
                return fail(&c, -EOPNOTSUPP,
                            "disk images for %s are not supported yet: no bootloader entry "
                            "for this architecture",
                            c.arch->name);
        grub_needs(&c);
        if (!layout_matches_plan(o, l) || gpt_check(l) < 0)
                return fail(&c, -EINVAL, "the layout is not what disk_plan makes for these options");
        if (fstat(out_fd, &st) < 0 || !S_ISREG(st.st_mode))
                return fail(&c, -EINVAL, "the output is not a regular file");
        r = ctx_init(&c, o, l);
        if (r < 0)
                return r;
        c.grow = l->root == (int)l->nparts - 1;
        say(&c, "assembling a %llu MiB %s disk (root %s, esp %s) from %zu layers",
            (unsigned long long)(l->size >> 20), c.arch->name, l->root_fs_uuid, l->esp_fs_id,
            o->nlayers);

        t = now_ms();
        if ((r = probe(&c)) < 0 || (r = prep(&c)) < 0)
                return r;
        say(&c, "tree prepared in %.1f s", (double)(now_ms() - t) / 1000);
        t = now_ms();
        if ((r = grub_build(&c)) < 0)
                return r;
        say(&c, "bootloader built in %.1f s", (double)(now_ms() - t) / 1000);

        t = now_ms();
        if (ftruncate(out_fd, 0) < 0 || ftruncate(out_fd, (off_t)l->size) < 0)
                return fail(&c, -errno, "cannot size the output to %llu bytes: %m",
                            (unsigned long long)l->size);
        r = gpt_write(out_fd, l);
        if (r < 0)
                return fail(&c, r, "cannot write the partition table: %s", strerror(-r));
        for (unsigned i = 0; i < l->nparts; i++) {
                const struct disk_partition *p = &l->parts[i];
                if (p->type != DISK_PT_ROOT && p->type != DISK_PT_LINUX)
                        continue;
                /* a data partition holds the tree's directory at its mount
                 * point (empty when the tree has none) */
                const char *src = p->type == DISK_PT_ROOT ? "" : p->mount + 1;
                bool populate = p->type == DISK_PT_ROOT || probe_has(&c, "dir", src);
                r = streq(p->fs, "xfs") ? make_xfs(&c, out_fd, i, src, populate)
                                        : make_ext4(&c, out_fd, i, src, populate);
                if (r < 0)
                        return r;
                if (p->type == DISK_PT_ROOT && streq(p->fs, "ext4") &&
                    (r = settle_ctimes(&c, out_fd)) < 0)
                        return r;
        }
        say(&c, "filesystems written in %.1f s", (double)(now_ms() - t) / 1000);
        t = now_ms();
        if ((l->esp >= 0 && (r = make_esp(&c, out_fd)) < 0) ||
            (r = grub_install(&c, out_fd)) < 0)
                return r;
        say(&c, "ESP and boot code written in %.1f s", (double)(now_ms() - t) / 1000);
        say(&c, "disk assembled in %.1f s", (double)(now_ms() - t0) / 1000);
        return 0;
}

int disk_make_filesystem(const struct disk_options *o, const char *fs, const char *label,
                         const char *uuid, const char *dir, uint64_t offset, uint64_t size,
                         int out_fd) {
        _cleanup_(ctx_free) struct ctx c = {.log_fd = o ? o->log_fd : -1};
        struct disk_layout l = {.bios = -1, .esp = -1, .root = -1, .nparts = 1};
        struct disk_partition *p = &l.parts[0];
        uint8_t u[16];
        int r;

        if (!o || !fs || !label || !uuid || !o->seed || !o->scratch_dir || !o->layers ||
            o->nlayers == 0 || o->nlayers >= SANDBOX_MAX_LAYERS || out_fd < 0 ||
            (!streq(fs, "ext4") && !streq(fs, "xfs")) || !label_ok(label, DISK_PT_ROOT, fs) ||
            uuid_parse(uuid, u) < 0 || offset % DISK_SECTOR || size % DISK_ALIGN || size == 0 ||
            size > DISK_MAX_SIZE || offset > DISK_MAX_SIZE ||
            (dir && (dir[0] == '/' || strstr(dir, ".."))))
                return -EINVAL;
        *p = (struct disk_partition){.name = label, .type = DISK_PT_LINUX, .fs = fs,
                                     .first_lba = offset / DISK_SECTOR,
                                     .last_lba = (offset + size) / DISK_SECTOR - 1};
        snprintf(p->fs_uuid, sizeof p->fs_uuid, "%s", uuid);
        snprintf(p->purpose, sizeof p->purpose, "fs:%s", label);
        r = ctx_init(&c, o, &l);
        if (r < 0)
                return r;
        return streq(fs, "xfs") ? make_xfs(&c, out_fd, 0, dir ? dir : "", dir != NULL)
                                : make_ext4(&c, out_fd, 0, dir ? dir : "", dir != NULL);
}
