/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhd.c — the VHD writer (Microsoft's Virtual Hard Disk Image Format
 * Specification, version 1.0): what Azure takes (a fixed VHD whose virtual
 * size is a whole number of MiB) and, with `vhd: {subformat: dynamic}`, a
 * dynamic VHD that leaves all-zero blocks out.
 *
 *   fixed    the disk's sectors as they are (holes stay holes), then the
 *            512-byte footer. The virtual size is the image's size rounded
 *            up to a whole MiB; the rounding is zeros.
 *   dynamic  a copy of the footer, the 1024-byte dynamic disk header
 *            ("cxsparse"), the block allocation table (one big-endian
 *            sector number per 2 MiB block, 0xffffffff for a block that is
 *            not in the file; padded to a sector), then each allocated
 *            block as a 512-byte sector bitmap
 *            (all ones: every sector is in the block) and its 2 MiB of data,
 *            in block order, and the footer.
 *
 * Everything is written strictly in file order through format.c's stream,
 * so the checksums are computed as the bytes go out and a file compressor
 * can sit on top. A dynamic disk needs its table before its blocks: a first
 * pass marks the blocks that hold a non-zero byte (reading only the input's
 * data extents), the second writes. Memory: the 1 MiB copy buffer of the
 * stream and one bit per 2 MiB block (64 KiB at VHD's 2040 GiB limit).
 *
 * The footer: cookie "conectix", features 2 (the reserved bit the spec
 * says is always set), version 1.0, creator application "win " (Hyper-V's:
 * readers choose by this field whether the disk's size is the current-size
 * field or the CHS geometry, which rounds down by up to 2 MB — QEMU takes
 * the geometry for every creator it does not know, and would cut off the
 * backup GPT of a "kiln" disk; these disks are made for Hyper-V and Azure,
 * which read the current size), creator version 1.0 (this writer's: it
 * changes when its output does), creator host "Wi2k" (Windows; the spec
 * defines only Windows and Macintosh), the
 * CHS geometry computed by the spec's algorithm, the checksum (one's
 * complement of the byte sum without the checksum field). Two runs on the
 * same input give the same bytes: the time stamp is SOURCE_DATE_EPOCH (in
 * seconds since 2000-01-01, VHD's epoch; 0 before it), and the unique id is
 * derived (uuid_derive) from the first 64 KiB of the image, which hold the
 * partition table with the disk's and every partition's GUID, the virtual
 * size, the disk type and the time stamp.
 *
 * VHD holds at most 2040 GiB (the limit Hyper-V and Azure give: the BAT's
 * 32-bit sector offsets end at 2 TiB); a larger image is -E2BIG.
 */
#include "image/format.h"

#include "base/hash.h"
#include "base/util.h"
#include "image/disk.h" /* uuid_derive */

#include <assert.h>
#include <endian.h>
#include <fcntl.h>

#define MIB (1024ull * 1024)
#define SECTOR 512u
#define VHD_MAX_SIZE (2040ull << 30)
#define BLOCK_SIZE (2u * 1024 * 1024)      /* dynamic: bytes per block */
#define BITMAP_SIZE SECTOR                 /* 4096 sectors: 512 bytes of bitmap */
#define HEADER_SIZE 1024u                  /* the dynamic disk header */
#define ID_BYTES (64u * 1024)              /* what the unique id is derived from */
#define VHD_EPOCH 946684800ull             /* 2000-01-01T00:00:00Z */

#define DISK_FIXED 2u
#define DISK_DYNAMIC 3u
#define BAT_UNUSED 0xffffffffu

/* ---- the footer ---- */

/* The spec's CHS for a disk of `sectors` sectors (its appendix: "CHS
 * calculation"), packed as cylinders (16 bits), heads, sectors per track. */
static uint32_t vhd_geometry(uint64_t sectors) {
        uint64_t spt, heads, cth; /* sectors per track, heads, cylinders x heads */
        if (sectors > 65535ull * 16 * 255)
                sectors = 65535ull * 16 * 255;
        if (sectors >= 65535ull * 16 * 63) {
                spt = 255;
                heads = 16;
                cth = sectors / spt;
        } else {
                spt = 17;
                cth = sectors / spt;
                heads = (cth + 1023) / 1024;
                if (heads < 4)
                        heads = 4;
                if (cth >= heads * 1024 || heads > 16) {
                        spt = 31;
                        heads = 16;
                        cth = sectors / spt;
                }
                if (cth >= heads * 1024) {
                        spt = 63;
                        heads = 16;
                        cth = sectors / spt;
                }
        }
        return (uint32_t)(cth / heads) << 16 | (uint32_t)heads << 8 | (uint32_t)spt;
}

/* One's complement of the byte sum of p, the 4 bytes at skip excluded. */
static uint32_t vhd_checksum(const uint8_t *p, size_t n, size_t skip) {
        uint32_t sum = 0;
        for (size_t i = 0; i < n; i++)
                if (i < skip || i >= skip + 4)
                        sum += p[i];
        return ~sum;
}

static void put32(uint8_t *p, uint32_t v) {
        v = htobe32(v);
        memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v) {
        v = htobe64(v);
        memcpy(p, &v, 8);
}

struct vhd {
        uint64_t vsize;     /* virtual size: the input's, up to a whole MiB */
        uint32_t type;      /* DISK_FIXED or DISK_DYNAMIC */
        uint32_t stamp;     /* seconds since VHD_EPOCH */
        uint8_t id[16];
        uint8_t footer[SECTOR];
};

static void vhd_footer(struct vhd *v) {
        uint8_t *f = v->footer;
        memset(f, 0, SECTOR);
        memcpy(f, "conectix", 8);
        put32(f + 8, 2);                  /* features: the reserved bit */
        put32(f + 12, 0x00010000);        /* file format version 1.0 */
        /* data offset: the dynamic header, or none */
        put64(f + 16, v->type == DISK_DYNAMIC ? SECTOR : UINT64_MAX);
        put32(f + 24, v->stamp);
        memcpy(f + 28, "win ", 4);        /* creator application: see the top */
        put32(f + 32, 0x00010000);        /* creator version */
        memcpy(f + 36, "Wi2k", 4);        /* creator host OS */
        put64(f + 40, v->vsize);          /* original size */
        put64(f + 48, v->vsize);          /* current size */
        put32(f + 56, vhd_geometry(v->vsize / SECTOR));
        put32(f + 60, v->type);
        memcpy(f + 68, v->id, 16);
        /* saved state 0, reserved zeros */
        put32(f + 64, vhd_checksum(f, SECTOR, 64));
}

/* The unique id: from what makes this disk this disk (see the top). */
static int vhd_identity(struct vhd *v, int raw_fd, uint64_t size, uint64_t sde) {
        _cleanup_free_ uint8_t *buf = xmalloc(ID_BYTES + 24);
        uint64_t n = size < ID_BYTES ? size : ID_BYTES;
        int r = format_pread(raw_fd, buf, (size_t)n, 0);
        if (r < 0)
                return r;
        memset(buf + n, 0, ID_BYTES - n);
        put64(buf + ID_BYTES, v->vsize);
        put64(buf + ID_BYTES + 8, v->type);
        put64(buf + ID_BYTES + 16, sde);
        char hex[SHA256_HEX_LEN + 1];
        if ((r = hash_sha256_hex(buf, ID_BYTES + 24, hex)) < 0)
                return r;
        uuid_derive(hex, "vhd-unique-id", v->id);
        v->stamp = sde > VHD_EPOCH ? (uint32_t)(sde - VHD_EPOCH < UINT32_MAX ? sde - VHD_EPOCH : UINT32_MAX) : 0;
        return 0;
}

/* ---- dynamic disks ---- */

static uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* format_scan's callback: block b holds data. */
static void mark_used(void *used, uint64_t b) { ((uint8_t *)used)[b / 8] |= (uint8_t)(1u << (b % 8)); }

static int vhd_write_dynamic(struct format_out *out, struct vhd *v, int raw_fd, uint64_t size) {
        uint64_t nblocks = div_up(v->vsize, BLOCK_SIZE);
        _cleanup_free_ uint8_t *used = xcalloc(div_up(nblocks, 8) + 1, 1);
        int r = format_scan(raw_fd, size, BLOCK_SIZE, mark_used, used);
        if (r < 0)
                return r;

        /* The layout: footer copy, header, BAT, blocks. */
        uint64_t bat_off = SECTOR + HEADER_SIZE;
        uint64_t bat_bytes = div_up(nblocks * 4, SECTOR) * SECTOR;

        uint8_t hdr[HEADER_SIZE] = {0};
        memcpy(hdr, "cxsparse", 8);
        put64(hdr + 8, UINT64_MAX);       /* data offset: unused */
        put64(hdr + 16, bat_off);         /* table offset */
        put32(hdr + 24, 0x00010000);      /* header version */
        put32(hdr + 28, (uint32_t)nblocks);
        put32(hdr + 32, BLOCK_SIZE);
        /* no parent: its id, time stamp, name and locators are zeros */
        put32(hdr + 36, vhd_checksum(hdr, sizeof(hdr), 36));
        if ((r = format_out_write(out, v->footer, SECTOR)) < 0 ||
            (r = format_out_write(out, hdr, sizeof(hdr))) < 0)
                return r;

        /* The BAT, a sector at a time; unused entries (and the padding to
         * the sector) are 0xffffffff. */
        uint8_t sec[SECTOR];
        uint64_t next = bat_off + bat_bytes; /* where the next allocated block goes */
        for (uint64_t b = 0; b < bat_bytes / 4;) {
                for (unsigned k = 0; k < SECTOR / 4; k++, b++) {
                        uint32_t e = BAT_UNUSED;
                        if (b < nblocks && (used[b / 8] & (1u << (b % 8)))) {
                                e = (uint32_t)(next / SECTOR);
                                next += BITMAP_SIZE + BLOCK_SIZE;
                        }
                        put32(sec + 4 * k, e);
                }
                if ((r = format_out_write(out, sec, SECTOR)) < 0)
                        return r;
        }

        memset(sec, 0xff, sizeof(sec)); /* every sector of a block is in it */
        for (uint64_t b = 0; b < nblocks; b++) {
                if (!(used[b / 8] & (1u << (b % 8))))
                        continue;
                if ((r = format_out_write(out, sec, BITMAP_SIZE)) < 0 ||
                    (r = format_out_raw(out, raw_fd, size, b * BLOCK_SIZE, BLOCK_SIZE)) < 0)
                        return r;
        }
        assert(format_out_pos(out) == next);
        return format_out_write(out, v->footer, SECTOR);
}

/* ---- the driver ---- */

static int vhd_write(int raw_fd, uint64_t size, int out_fd, const struct format_options *o,
                     struct format_result *res) {
        _cleanup_format_out_ struct format_out *out = NULL;
        int r;

        if (raw_fd < 0 || out_fd < 0 || !o || !res)
                return -EINVAL;
        struct vhd v = {.vsize = div_up(size, MIB) * MIB, .type = DISK_FIXED};
        if (v.vsize > VHD_MAX_SIZE)
                return -E2BIG;
        if (v.vsize == 0)
                v.vsize = MIB; /* VHD has no empty disk */
        const struct format_image *im = o->image;
        const struct value *sub = value_map_get(value_map_get(im ? im->options : NULL, "vhd"), "subformat");
        if (sub && sub->str && streq(sub->str, "dynamic"))
                v.type = DISK_DYNAMIC;
        else if (sub && !(sub->str && streq(sub->str, "fixed")))
                return -EINVAL;
        uint64_t sde = im && im->mtime > 0 ? (uint64_t)im->mtime : 0;
        if ((r = vhd_identity(&v, raw_fd, size, sde)) < 0)
                return r;
        vhd_footer(&v);

        if ((r = format_out_new(out_fd, o, &out)) < 0)
                return r;
        (void)posix_fadvise(raw_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        if (v.type == DISK_DYNAMIC)
                r = vhd_write_dynamic(out, &v, raw_fd, size);
        else if ((r = format_out_raw(out, raw_fd, size, 0, v.vsize)) >= 0)
                r = format_out_write(out, v.footer, SECTOR);
        if (r < 0)
                return r;
        return format_out_finish(out, res);
}

/* A footer: the cookie and a checksum that adds up. */
static int vhd_probe_footer(const uint8_t *p, size_t len) {
        if (len < SECTOR || memcmp(p, "conectix", 8) != 0)
                return 0;
        uint32_t sum;
        memcpy(&sum, p + 64, 4);
        return be32toh(sum) == vhd_checksum(p, SECTOR, 64) ? 100 : 0;
}

/* A dynamic disk starts with a copy of its footer. */
static int vhd_probe(const uint8_t *head, size_t len) { return vhd_probe_footer(head, len); }

/* Every VHD ends with its footer (the last 512 bytes). */
static int vhd_probe_tail(const uint8_t *tail, size_t len) {
        return len >= SECTOR ? vhd_probe_footer(tail + len - SECTOR, SECTOR) : 0;
}

static const char *const vhd_subformats[] = {"fixed", "dynamic", NULL};

static const struct field vhd_fields[] = {
        {"subformat", FT_STRING, 0, NULL, vhd_subformats,
         "fixed (the default; what Azure takes) or dynamic (all-zero 2 MiB blocks left out)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static const struct format_option vhd_options[] = {
        {{"vhd", FT_OBJECT, 0, vhd_fields, NULL, "VHD settings: subformat"}, NULL, "takes vhd: settings"},
        {{NULL, 0, 0, NULL, NULL, NULL}, NULL, NULL},
};

const struct format_writer vhd_writer = {
        .name = "vhd",
        .extension = "vhd",
        .aliases = NULL,
        /* Only appends; QEMU boots it (its "vpc" driver; a fixed VHD also
         * as raw). After qcow2 and raw: those are what boot checks prefer. */
        .caps = FORMAT_BOOTABLE | FORMAT_COMPRESSIBLE,
        .boot_rank = 0,
        .options = vhd_options,
        .probe = vhd_probe,
        .probe_tail = vhd_probe_tail,
        .qemu_driver = "vpc",
        .max_size = VHD_MAX_SIZE,
        .max_size_why = "2040 GiB, the largest VHD Hyper-V and Azure take",
        .write = vhd_write,
};
