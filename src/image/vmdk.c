/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmdk.c — the streamOptimized VMDK writer (VMware's "Virtual Disk Format"
 * technical note, stream-optimized compressed sparse extents): what
 * vSphere imports, alone or inside an OVA (ova.c).
 *
 * The file is written strictly in order, once, never seeking back:
 *
 *     header (sector 0; gdOffset = "at the end")
 *     embedded descriptor (sector 1..; createType "streamOptimized")
 *     zeros up to overHead = one grain (128 sectors), as VMware's tools do
 *     for each grain table GT (512 grains = 32 MiB of the disk), in order:
 *         every grain of GT's range that holds data, in LBA order:
 *             grain marker (LBA u64, compressed size u32) + zlib stream,
 *             padded to a sector
 *         GT marker (sector) + GT (512 sector offsets of the grain markers)
 *     GD marker + GD (sector offsets of the GTs)
 *     footer marker + footer (the header with the real gdOffset)
 *     end-of-stream marker
 *
 * Grains are 64 KiB (128 sectors), deflated (zlib format, one stream per
 * grain; by libdeflate when the system has it, else zlib) in parallel on zpipe.h's pipeline: the main thread reads data
 * extents (holes are never read) into slots of SLOT_GRAINS grains, workers
 * zero-check and compress each grain into a ready-to-write sector-padded
 * buffer that starts with its marker, and the main thread retires slots in
 * order, writing the buffers and filling the current GT with their sector
 * offsets. Every GT is written, also the empty ones (all zeros: holes in
 * a plain file), as VMware's own converters do: a reader that walks the GD
 * finds a table for every range. Memory: 2 x threads slots of 4 grains in
 * and out (1 MiB per thread), one GT (2 KiB) and the GD (4 bytes per
 * 32 MiB of disk: 256 KiB at the 2 TiB limit).
 *
 * Limits: GT and GD entries are 32-bit sector numbers, so the file must stay
 * under 2 TiB; the capacity is limited to the same (an incompressible disk
 * still fits, with its markers, as long as the data does: checked while
 * writing too, -E2BIG).
 *
 * Determinism: the descriptor's CID, ddb.longContentID and ddb.uuid derive
 * from the image's GPT disk GUID (format_image) and its size; zlib's output
 * depends on the level only. Nothing reads the clock.
 */
#include "image/format.h"
#include "image/zpipe.h"

#include "base/hash.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "os/fs.h"

#include <dlfcn.h>
#include <endian.h>
#include <fcntl.h>
#include <pthread.h>
#include <zlib.h>

#define SECTOR 512u
#define GRAIN_SECTORS 128u
#define GRAIN_SIZE (GRAIN_SECTORS * SECTOR) /* 64 KiB */
#define GT_ENTRIES 512u                     /* grains per grain table: 32 MiB */
#define GT_SECTORS (GT_ENTRIES * 4 / SECTOR)
#define VMDK_MAX_BYTES (2ull << 40)          /* 32-bit sector numbers */
#define SLOT_GRAINS 4u
#define MARKER_LEN 12u                      /* grain marker: lba u64 + size u32 */
/* A grain's buffer: marker, zlib's worst case for 64 KiB, sector padding. */
#define GRAIN_BUF (((MARKER_LEN + GRAIN_SIZE + GRAIN_SIZE / 1000 + 64) + SECTOR - 1) / SECTOR * SECTOR)

#define MAGIC 0x564d444bu /* "KDMV" on disk */
#define VERSION 3u
#define FLAG_NEWLINE_TEST (1u << 0)
#define FLAG_COMPRESSED (1u << 16)
#define FLAG_MARKERS (1u << 17)
#define COMPRESS_DEFLATE 1u
#define GD_AT_END UINT64_MAX

enum { MARKER_EOS = 0, MARKER_GT = 1, MARKER_GD = 2, MARKER_FOOTER = 3 };

/* The default deflate level, for libdeflate and zlib alike. Measured on
 * the minimal example's 2 GiB image (7017 data grains; CPU seconds of the
 * compression alone, one thread; qemu-img's streamOptimized is zlib level
 * 6 in 157.7 MB, 24.8 s):
 *
 *                 level 1          3               4               6
 *   zlib          8.3 s 169.8 MB   11.7 s 165.4 MB 12.5 s 161.1 MB 22.3 s 157.5 MB
 *   libdeflate    3.7 s 168.0 MB    6.1 s 160.1 MB  6.4 s 159.2 MB 10.0 s 155.1 MB
 *
 * Level 3 keeps the file within 5% of qemu-img's with either library;
 * with libdeflate it costs a quarter of qemu-img's CPU, so two cores write
 * it over 5x faster (bench/vmdk.sh). */
#define VMDK_DEFAULT_LEVEL 3

/* ---- header, descriptor, markers ---- */

struct vmdk_geom {
        uint64_t capacity;     /* sectors */
        uint64_t desc_sectors;
        uint64_t ngt;          /* grain tables (and GD entries) */
};

static void put32(uint8_t *p, uint32_t v) {
        v = htole32(v);
        memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v) {
        v = htole64(v);
        memcpy(p, &v, 8);
}

/* The SparseExtentHeader, little-endian and packed, in one sector. */
static void make_header(uint8_t *b, const struct vmdk_geom *g, uint64_t gd_offset) {
        memset(b, 0, SECTOR);
        put32(b + 0, MAGIC);
        put32(b + 4, VERSION);
        put32(b + 8, FLAG_NEWLINE_TEST | FLAG_COMPRESSED | FLAG_MARKERS);
        put64(b + 12, g->capacity);
        put64(b + 20, GRAIN_SECTORS);
        put64(b + 28, 1);              /* descriptorOffset */
        put64(b + 36, g->desc_sectors);
        put32(b + 44, GT_ENTRIES);
        put64(b + 48, 0);              /* rgdOffset: no redundant GD in a stream */
        put64(b + 56, gd_offset);
        put64(b + 64, GRAIN_SECTORS);  /* overHead */
        b[72] = 0;                     /* uncleanShutdown */
        b[73] = '\n';                  /* newline detection characters */
        b[74] = ' ';
        b[75] = '\r';
        b[76] = '\n';
        b[77] = COMPRESS_DEFLATE & 0xff;
        b[78] = COMPRESS_DEFLATE >> 8;
}

static void make_marker(uint8_t *b, uint64_t val, uint32_t type) {
        memset(b, 0, SECTOR);
        put64(b, val);
        put32(b + 12, type);
}

const char *const vmdk_adapters[] = {"lsilogic", "pvscsi", "buslogic", "ide", NULL};

/* ddb.adapterType: pvscsi disks say lsilogic (the descriptor has no word
 * for it; the controller is the VM's, in the OVF). */
static const char *ddb_adapter(const char *a) {
        return !a ? "lsilogic" : streq(a, "pvscsi") ? "lsilogic" : a;
}

/* 16 bytes of identity: the disk GUID when known, mixed with the size. */
static void identity(const struct format_options *o, uint64_t capacity, uint8_t out[32]) {
        char hex[SHA256_HEX_LEN + 1];
        struct strbuf sb = STRBUF_INIT;
        const struct format_image *im = o->image;
        strbuf_addf(&sb, "kiln-vmdk-v1 %llu ", (unsigned long long)capacity);
        for (unsigned i = 0; im && im->disk_guid && i < 16; i++)
                strbuf_addf(&sb, "%02x", im->disk_guid[i]);
        strbuf_addf(&sb, " %s", im && im->name ? im->name : "");
        if (hash_sha256_hex(sb.buf, sb.len, hex) < 0)
                memset(hex, '0', SHA256_HEX_LEN);
        strbuf_free(&sb);
        for (unsigned i = 0; i < 32; i++) {
                unsigned v;
                sscanf(hex + 2 * i, "%2x", &v);
                out[i] = (uint8_t)v;
        }
}

/* The option `key` of this output (a string), or NULL. */
static const char *opt_str(const struct format_options *o, const char *key) {
        const struct value *m = o->image ? o->image->options : NULL;
        const struct value *v = m && m->kind == V_MAP ? value_map_get(m, key) : NULL;
        return v ? v->str : NULL;
}

/* The embedded descriptor, NUL-padded to whole sectors. */
static char *make_descriptor(const struct format_options *o, uint64_t capacity, size_t *ret_len) {
        uint8_t id[32];
        identity(o, capacity, id);
        uint32_t cid = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
        if (cid >= 0xfffffffeu) /* reserved: "no parent" and "invalid" */
                cid = 0x0fffffffu;
        const char *file = o->image && o->image->file ? o->image->file : "disk.vmdk";
        uint64_t cyl = capacity / (255 * 63);
        if (cyl > 65535)
                cyl = 65535;
        if (cyl == 0)
                cyl = 1;
        struct strbuf sb = STRBUF_INIT;
        strbuf_addf(&sb,
                    "# Disk DescriptorFile\n"
                    "version=1\n"
                    "encoding=\"UTF-8\"\n"
                    "CID=%08x\n"
                    "parentCID=ffffffff\n"
                    "createType=\"streamOptimized\"\n"
                    "\n"
                    "# Extent description\n"
                    "RW %llu SPARSE \"",
                    cid, (unsigned long long)capacity);
        /* the file name as a quoted string: no quotes or newlines in it */
        for (const char *c = file; *c; c++)
                strbuf_addc(&sb, *c == '"' || *c == '\n' || *c == '\r' ? '_' : *c);
        strbuf_addf(&sb,
                    "\"\n"
                    "\n"
                    "# The Disk Data Base\n"
                    "#DDB\n"
                    "\n"
                    "ddb.adapterType = \"%s\"\n"
                    "ddb.geometry.cylinders = \"%llu\"\n"
                    "ddb.geometry.heads = \"255\"\n"
                    "ddb.geometry.sectors = \"63\"\n"
                    "ddb.longContentID = \"",
                    ddb_adapter(opt_str(o, "adapter")), (unsigned long long)cyl);
        for (unsigned i = 4; i < 16; i++)
                strbuf_addf(&sb, "%02x", id[i]);
        strbuf_addf(&sb, "%08x\"\nddb.uuid = \"", cid);
        for (unsigned i = 16; i < 32; i++)
                strbuf_addf(&sb, "%02x%s", id[i], i == 31 ? "" : i == 23 ? "-" : " ");
        strbuf_addf(&sb,
                    "\"\n"
                    "ddb.virtualHWVersion = \"4\"\n"
                    "ddb.toolsInstallType = \"4\"\n"
                    "ddb.toolsVersion = \"2147483647\"\n");
        size_t len = (sb.len + SECTOR - 1) / SECTOR * SECTOR;
        while (sb.len < len)
                strbuf_addc(&sb, 0);
        *ret_len = len;
        return strbuf_detach(&sb);
}

/* ---- grains on the pipeline ---- */

struct slot {
        uint8_t *in;                      /* SLOT_GRAINS grains read from the input */
        uint8_t *out;                     /* SLOT_GRAINS x GRAIN_BUF */
        uint64_t grain[SLOT_GRAINS];      /* which grains */
        uint32_t len[SLOT_GRAINS];        /* bytes to write (0: all zero) */
        unsigned n;
        bool failed;                      /* a codec error */
};

struct vmdk {
        const struct format_options *o;
        struct format_out *out;
        struct slot *slots;
        unsigned nslots;
        uint32_t *gd;                     /* ngt sector offsets */
        uint32_t gt[GT_ENTRIES];          /* the current GT (host order) */
        uint64_t cur_gt;                  /* the GT being filled */
        uint64_t ngt;
        uint64_t data_grains;
        uint8_t sector[SECTOR];
};

/* libdeflate, when the system has it (Debian's libdeflate0): the same
 * zlib-format streams as zlib's deflate for 40% of the CPU at a smaller
 * size (the table above). Found with dlopen, its three calls declared
 * here from its documented API, because kiln's build dependencies do not
 * include its headers; without it zlib compresses. The bytes differ
 * between the two (both are valid streams every inflater reads), so a
 * machine gives the same file every time, but two machines give the same
 * file only with the same library. */
struct libdeflate {
        void *(*alloc)(int level);
        size_t (*zlib_compress)(void *c, const void *in, size_t in_len, void *out, size_t out_len);
        void (*free)(void *c);
};

static struct libdeflate libdeflate;
static pthread_once_t libdeflate_once = PTHREAD_ONCE_INIT;

static void libdeflate_load(void) {
        void *h = dlopen("libdeflate.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return;
        struct libdeflate l = {
                .alloc = (void *(*)(int))dlsym(h, "libdeflate_alloc_compressor"),
                .zlib_compress = (size_t(*)(void *, const void *, size_t, void *, size_t))dlsym(
                        h, "libdeflate_zlib_compress"),
                .free = (void (*)(void *))dlsym(h, "libdeflate_free_compressor"),
        };
        if (l.alloc && l.zlib_compress && l.free)
                libdeflate = l; /* h stays open: the process uses it until exit */
        else
                dlclose(h);
}

struct codec {
        void *ld;    /* a libdeflate compressor, or NULL: z */
        z_stream z;
        bool z_on;
};

static int codec_new(void *ctx, unsigned worker, void **ret) {
        struct vmdk *v = ctx;
        struct codec *c = xcalloc(1, sizeof(*c));
        *ret = c;
        int level = v->o->level ? v->o->level : VMDK_DEFAULT_LEVEL;
        pthread_once(&libdeflate_once, libdeflate_load);
        if (libdeflate.alloc && (c->ld = libdeflate.alloc(level > 12 ? 12 : level)))
                return 0;
        if (deflateInit(&c->z, level > 9 ? 9 : level) != Z_OK)
                return -ENOMEM;
        c->z_on = true;
        return 0;
}

static void codec_free(void *ctx, void *codec) {
        struct codec *c = codec;
        if (c && c->ld)
                libdeflate.free(c->ld);
        if (c && c->z_on)
                deflateEnd(&c->z);
        free(c);
}

/* One grain into buf: marker + zlib stream + sector padding. Returns the
 * bytes to write, 0 for an all-zero grain, UINT32_MAX on a codec error. */
static uint32_t compress_grain(struct codec *c, const uint8_t *in, uint64_t grain, uint8_t *buf) {
        if (format_is_zero(in, GRAIN_SIZE))
                return 0;
        uint32_t n;
        if (c->ld) {
                size_t k = libdeflate.zlib_compress(c->ld, in, GRAIN_SIZE, buf + MARKER_LEN,
                                                    GRAIN_BUF - MARKER_LEN);
                if (!k)
                        return UINT32_MAX;
                n = (uint32_t)k;
        } else {
                if (deflateReset(&c->z) != Z_OK)
                        return UINT32_MAX;
                c->z.next_in = (Bytef *)in;
                c->z.avail_in = GRAIN_SIZE;
                c->z.next_out = buf + MARKER_LEN;
                c->z.avail_out = GRAIN_BUF - MARKER_LEN;
                if (deflate(&c->z, Z_FINISH) != Z_STREAM_END)
                        return UINT32_MAX;
                n = (uint32_t)c->z.total_out;
        }
        put64(buf, grain * GRAIN_SECTORS);
        put32(buf + 8, n);
        uint32_t all = (MARKER_LEN + n + SECTOR - 1) / SECTOR * SECTOR;
        memset(buf + MARKER_LEN + n, 0, all - MARKER_LEN - n);
        return all;
}

static void work(void *ctx, void *codec, unsigned k) {
        struct vmdk *v = ctx;
        struct slot *s = &v->slots[k];
        s->failed = false;
        for (unsigned i = 0; i < s->n; i++) {
                s->len[i] = compress_grain(codec, s->in + (size_t)i * GRAIN_SIZE, s->grain[i],
                                           s->out + (size_t)i * GRAIN_BUF);
                if (s->len[i] == UINT32_MAX) {
                        s->failed = true;
                        s->len[i] = 0;
                }
        }
}

/* The current sector number, checked to fit a 32-bit table entry. */
static int sector_now(struct vmdk *v, uint32_t *ret) {
        uint64_t pos = format_out_pos(v->out);
        if (pos / SECTOR > UINT32_MAX)
                return -E2BIG;
        *ret = (uint32_t)(pos / SECTOR);
        return 0;
}

/* Writes the GT being filled (marker + table) and moves to the next. */
static int flush_gt(struct vmdk *v) {
        int r;
        uint32_t at;
        make_marker(v->sector, GT_SECTORS, MARKER_GT);
        if ((r = format_out_write(v->out, v->sector, SECTOR)) < 0 || (r = sector_now(v, &at)) < 0)
                return r;
        v->gd[v->cur_gt] = at;
        bool empty = true;
        for (unsigned i = 0; i < GT_ENTRIES && empty; i++)
                empty = v->gt[i] == 0;
        if (empty)
                r = format_out_zeros(v->out, GT_SECTORS * SECTOR);
        else {
                uint32_t le[GT_ENTRIES];
                for (unsigned i = 0; i < GT_ENTRIES; i++)
                        le[i] = htole32(v->gt[i]);
                r = format_out_write(v->out, le, sizeof(le));
        }
        memset(v->gt, 0, sizeof(v->gt));
        v->cur_gt++;
        return r;
}

static int retire(void *ctx, unsigned k, uint64_t seq) {
        struct vmdk *v = ctx;
        struct slot *s = &v->slots[k];
        int r;
        if (s->failed)
                return -EIO;
        for (unsigned i = 0; i < s->n; i++) {
                if (!s->len[i])
                        continue;
                uint64_t gt = s->grain[i] / GT_ENTRIES;
                while (v->cur_gt < gt)
                        if ((r = flush_gt(v)) < 0)
                                return r;
                uint32_t at;
                if ((r = sector_now(v, &at)) < 0)
                        return r;
                v->gt[s->grain[i] % GT_ENTRIES] = at;
                if ((r = format_out_write(v->out, s->out + (size_t)i * GRAIN_BUF, s->len[i])) < 0)
                        return r;
                v->data_grains++;
        }
        return 0;
}

static const struct zpipe_ops vmdk_ops = {
        .codec_new = codec_new,
        .codec_free = codec_free,
        .work = work,
        .retire = retire,
};

/* Fills slot s with the next grains that touch data (up to SLOT_GRAINS,
 * read with one pread per run of consecutive grains). [*g, *g1) is the rest
 * of the current run. Returns the number of grains, 0 at the end. */
static int fill_slot(int fd, uint64_t size, uint64_t *g, uint64_t *g1, uint64_t *next, struct slot *s) {
        s->n = 0;
        while (s->n < SLOT_GRAINS) {
                if (*g == *g1) {
                        /* the next data extent, as grains not yet taken */
                        uint64_t off = *next * GRAIN_SIZE, ds, de;
                        if (off >= size)
                                break;
                        int r = fs_next_data(fd, off, size, &ds, &de);
                        if (r < 0)
                                return r;
                        if (ds >= size)
                                break;
                        *g = ds / GRAIN_SIZE;
                        *g1 = (de + GRAIN_SIZE - 1) / GRAIN_SIZE;
                        *next = *g1;
                        if (*g == *g1)
                                continue;
                }
                unsigned k = SLOT_GRAINS - s->n;
                if (*g1 - *g < k)
                        k = (unsigned)(*g1 - *g);
                uint64_t off = *g * GRAIN_SIZE;
                int r = format_pread(fd, s->in + (size_t)s->n * GRAIN_SIZE, (size_t)k * GRAIN_SIZE, off);
                if (r < 0)
                        return r;
                for (unsigned i = 0; i < k; i++)
                        s->grain[s->n++] = (*g)++;
        }
        return (int)s->n;
}

static int vmdk_write(int raw_fd, uint64_t size, int out_fd, const struct format_options *o,
                      struct format_result *res) {
        _cleanup_format_out_ struct format_out *out = NULL;
        _cleanup_free_ char *desc = NULL;
        _cleanup_free_ uint32_t *gd = NULL;
        struct vmdk v = {.o = o};
        struct zpipe *zp = NULL;
        size_t desc_len;
        int r;

        if (raw_fd < 0 || out_fd < 0 || !o || !res)
                return -EINVAL;
        if (o->cluster_compression != COMPRESS_NONE || o->file_compression != COMPRESS_NONE)
                return -EOPNOTSUPP; /* grains are always deflated; no file compression */
        if (size > VMDK_MAX_BYTES)
                return -E2BIG;

        /* The tail of the last sector reads as zeros (format_pread). */
        struct vmdk_geom g = {.capacity = (size + SECTOR - 1) / SECTOR};
        uint64_t ngrains = (g.capacity + GRAIN_SECTORS - 1) / GRAIN_SECTORS;
        g.ngt = (ngrains + GT_ENTRIES - 1) / GT_ENTRIES;
        desc = make_descriptor(o, g.capacity, &desc_len);
        g.desc_sectors = desc_len / SECTOR;
        if (1 + g.desc_sectors > GRAIN_SECTORS)
                return -E2BIG; /* a file name of tens of KiB */
        v.ngt = g.ngt;
        v.gd = gd = xcalloc(g.ngt ? g.ngt : 1, sizeof(*gd));

        if ((r = format_out_new(out_fd, o, &out)) < 0)
                return r;
        v.out = out;
        make_header(v.sector, &g, GD_AT_END);
        if ((r = format_out_write(out, v.sector, SECTOR)) < 0 ||
            (r = format_out_write(out, desc, desc_len)) < 0 ||
            (r = format_out_zeros(out, (GRAIN_SECTORS - 1 - g.desc_sectors) * SECTOR)) < 0)
                return r;

        unsigned threads = format_threads(o);
        v.nslots = 2 * threads;
        v.slots = xcalloc(v.nslots, sizeof(*v.slots));
        for (unsigned i = 0; i < v.nslots; i++) {
                v.slots[i].in = xmalloc((size_t)SLOT_GRAINS * GRAIN_SIZE);
                v.slots[i].out = xmalloc((size_t)SLOT_GRAINS * GRAIN_BUF);
        }
        (void)posix_fadvise(raw_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        uint64_t cg = 0, cg1 = 0, next = 0;
        r = zpipe_new(&vmdk_ops, &v, threads, v.nslots, &zp);
        while (r >= 0) {
                if ((r = zpipe_get(zp)) < 0)
                        break;
                if ((r = fill_slot(raw_fd, size, &cg, &cg1, &next, &v.slots[r])) <= 0)
                        break;
                zpipe_submit(zp);
        }
        if (r >= 0)
                r = zpipe_drain(zp);
        zpipe_free(zp);
        for (unsigned i = 0; i < v.nslots; i++) {
                free(v.slots[i].in);
                free(v.slots[i].out);
        }
        free(v.slots);
        if (r < 0)
                return r;

        /* The remaining grain tables, the directory, footer, end of stream. */
        while (v.cur_gt < v.ngt)
                if ((r = flush_gt(&v)) < 0)
                        return r;
        uint64_t gd_sectors = (g.ngt * 4 + SECTOR - 1) / SECTOR;
        uint32_t gd_at;
        make_marker(v.sector, gd_sectors, MARKER_GD);
        if ((r = format_out_write(out, v.sector, SECTOR)) < 0 || (r = sector_now(&v, &gd_at)) < 0)
                return r;
        for (uint64_t i = 0; i < g.ngt; i++)
                gd[i] = htole32(gd[i]);
        if ((r = format_out_write(out, gd, g.ngt * 4)) < 0 ||
            (r = format_out_zeros(out, gd_sectors * SECTOR - g.ngt * 4)) < 0)
                return r;
        make_marker(v.sector, 1, MARKER_FOOTER);
        if ((r = format_out_write(out, v.sector, SECTOR)) < 0)
                return r;
        make_header(v.sector, &g, gd_at);
        if ((r = format_out_write(out, v.sector, SECTOR)) < 0)
                return r;
        make_marker(v.sector, 0, MARKER_EOS);
        if ((r = format_out_write(out, v.sector, SECTOR)) < 0)
                return r;
        if (format_out_pos(out) / SECTOR > UINT32_MAX)
                return -E2BIG;
        struct format_result fr;
        if ((r = format_out_finish(out, &fr)) < 0)
                return r;
        fr.data_bytes = v.data_grains * GRAIN_SIZE;
        *res = fr;
        return 0;
}

/* "KDMV" and a sparse-extent version we write. */
static int vmdk_probe(const uint8_t *head, size_t len) {
        if (len < 8 || memcmp(head, "KDMV", 4) != 0)
                return 0;
        return 100;
}

static const struct format_option vmdk_options[] = {
        FORMAT_OPTION_ADAPTER,
        {{NULL, 0, 0, NULL, NULL, NULL}, NULL, NULL},
};

const struct format_writer vmdk_writer = {
        .name = "vmdk",
        .extension = "vmdk",
        /* QEMU boots it (read through its vmdk driver; writes go to the
         * snapshot overlay); after raw and qcow2. */
        .caps = FORMAT_BOOTABLE,
        .boot_rank = 0,
        .options = vmdk_options,
        .probe = vmdk_probe,
        .write = vmdk_write,
        .max_size = VMDK_MAX_BYTES,
        .max_size_why = "2 TiB (32-bit sector numbers in the grain tables)",
};
