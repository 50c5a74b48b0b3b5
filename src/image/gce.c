/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gce.c — the gce writer: what Compute Engine imports as an image, a
 * gzip-compressed tar (`<name>.tar.gz`) holding exactly one file,
 * `disk.raw`, whose size is a whole number of GiB. The tar is GNU's
 * "oldgnu" format with the file stored sparse (type 'S'), as
 * `tar --format=oldgnu -Sczf` makes it:
 *
 *   header     name disk.raw, mode 0644, uid/gid 0 (root/root), mtime
 *              SOURCE_DATE_EPOCH, size = the bytes stored, realsize = the
 *              disk's size rounded up to a GiB, and the first 4 entries of
 *              the sparse map (offset, length of each data region; numbers
 *              in octal, base-256 when they do not fit in 11 digits)
 *   extended   21 more entries per 512-byte block while isextended is set
 *   data       the regions' bytes, back to back, padded to 512
 *   end        two zero blocks, then zeros to a 10 KiB record (GNU tar's)
 *
 * A region is a run of aligned 64 KiB blocks of the input that hold a
 * non-zero byte: holes and all-zero blocks are left out, as the raw writer
 * leaves them out (format_out_raw). When the disk ends in a hole the map
 * ends with an empty region at its end, which tells tar the file's size.
 * The map must be in the header, so a first pass finds the regions
 * (reading only the input's data extents). Memory: 16 bytes per region, a
 * region being at least 64 KiB of data followed by 64 KiB of hole: at most
 * 128 KiB per GiB of disk, in practice a few KiB.
 *
 * The gzip stream is made on all cores the way pigz makes it, and every
 * gzip reader takes it: one gzip member (mtime 0, no name) whose deflate
 * data is cut into CHUNK-sized pieces of the tar stream; zpipe's workers
 * each deflate a piece (raw deflate, with the 32 KiB of the tar stream
 * before it as the dictionary, so that the ratio is what one stream would
 * give) ending it with a sync flush — a byte boundary after an empty
 * stored block, so the pieces concatenate into one valid deflate stream —
 * the last one with the final block; each also computes its piece's
 * CRC-32. The main thread hands out pieces, and writes the compressed
 * bytes in order, folding the CRCs together with crc32_combine for the
 * trailer. Workers read the input themselves (pread into their slot),
 * so the copying is spread too. Memory: 2 x threads slots of CHUNK +
 * 32 KiB in and deflateBound(CHUNK) out (under 1 MiB each), a deflate state
 * per worker (~270 KiB at level 6), the region map.
 *
 * Deterministic: the pieces are fixed by the input, not by timing, and
 * each is compressed the same way whichever worker takes it.
 */
#include "image/format.h"

#include "base/util.h"
#include "image/zpipe.h"

#include <assert.h>
#include <fcntl.h>
#include <zlib.h>

#define GIB (1024ull * 1024 * 1024)
#define BLOCK 512u
#define RECORD (20u * BLOCK)         /* GNU tar's default record: 10 KiB */
#define ZERO_BLOCK (64u * 1024)      /* holes: all-zero blocks of this size */
#define CHUNK (256u * 1024)          /* tar stream bytes per deflate piece */
#define DICT (32u * 1024)            /* deflate's window: the dictionary */
#define SPARSE_IN_HEADER 4u
#define SPARSE_IN_EXT 21u

/* ---- the sparse map ---- */

struct region {
        uint64_t off, len; /* in the disk */
};

struct map {
        struct region *v;
        size_t n, cap;
        uint64_t stored; /* sum of the lengths */
};

/* Adds [off, end) to the map, merged with the last region when they
 * touch or overlap (regions come in order). */
static void map_add(struct map *m, uint64_t off, uint64_t end) {
        struct region *last = m->n ? &m->v[m->n - 1] : NULL;
        if (last && last->off + last->len >= off) {
                if (end > last->off + last->len) {
                        m->stored += end - (last->off + last->len);
                        last->len = end - last->off;
                }
                return;
        }
        GROW(m->v, m->n, m->cap);
        m->v[m->n++] = (struct region){off, end - off};
        m->stored += end - off;
}

struct scan {
        struct map *m;
        uint64_t size;
};

static void scan_block(void *ctx, uint64_t b) {
        struct scan *sc = ctx;
        uint64_t end = (b + 1) * ZERO_BLOCK;
        map_add(sc->m, b * ZERO_BLOCK, end < sc->size ? end : sc->size);
}

/* The input's ZERO_BLOCK-aligned blocks that hold a non-zero byte, merged
 * into regions: only data extents are read, and a region never starts or
 * ends inside a block (but at the input's end), so there is at most one
 * region per two blocks whatever the file system's extents look like. */
static int map_scan(int fd, uint64_t size, struct map *m) {
        struct scan sc = {m, size};
        return format_scan(fd, size, ZERO_BLOCK, scan_block, &sc);
}

/* ---- tar headers ---- */

/* A number field of `width` bytes: octal digits and a NUL when it fits,
 * else GNU's base-256 (first byte 0x80, big-endian value). */
static void tar_num(uint8_t *f, size_t width, uint64_t v) {
        if (width - 1 >= 22 || v < 1ull << (3 * (width - 1))) {
                char tmp[24];
                snprintf(tmp, sizeof(tmp), "%0*llo", (int)(width - 1), (unsigned long long)v);
                memcpy(f, tmp, width - 1);
                f[width - 1] = 0;
                return;
        }
        memset(f, 0, width);
        f[0] = 0x80;
        for (size_t i = width - 1; v && i > 0; i--, v >>= 8)
                f[i] = (uint8_t)v;
}

static void put_entry(uint8_t *p, const struct region *r) {
        tar_num(p, 12, r->off);
        tar_num(p + 12, 12, r->len);
}

/* The header blocks for disk.raw (realsize bytes, with map m and the
 * closing empty region if any): *ret (owned), *ret_len bytes. */
static void tar_headers(const struct map *m, uint64_t realsize, uint64_t mtime, uint8_t **ret,
                        size_t *ret_len) {
        size_t n = m->n;
        struct region last = {realsize, 0};
        bool closing = !n || m->v[n - 1].off + m->v[n - 1].len < realsize;
        size_t entries = n + closing;
        size_t ext = entries > SPARSE_IN_HEADER ? (entries - SPARSE_IN_HEADER + SPARSE_IN_EXT - 1) / SPARSE_IN_EXT : 0;
        uint8_t *h = xcalloc(1 + ext, BLOCK);

        memcpy(h, "disk.raw", 8);
        memcpy(h + 100, "0000644", 8);
        memcpy(h + 108, "0000000", 8);
        memcpy(h + 116, "0000000", 8);
        tar_num(h + 124, 12, m->stored);
        tar_num(h + 136, 12, mtime);
        h[156] = 'S';
        memcpy(h + 257, "ustar  ", 8); /* oldgnu magic and version */
        memcpy(h + 265, "root", 4);
        memcpy(h + 297, "root", 4);
        tar_num(h + 483, 12, realsize);
        for (size_t i = 0; i < entries; i++) {
                const struct region *r = i < n ? &m->v[i] : &last;
                uint8_t *at;
                if (i < SPARSE_IN_HEADER)
                        at = h + 386 + 24 * i;
                else {
                        size_t k = i - SPARSE_IN_HEADER;
                        at = h + BLOCK * (1 + k / SPARSE_IN_EXT) + 24 * (k % SPARSE_IN_EXT);
                }
                put_entry(at, r);
        }
        /* isextended: in the header and every extension block but the last */
        if (ext)
                h[482] = 1;
        for (size_t b = 1; b < ext; b++)
                h[BLOCK * b + 504] = 1;
        /* the checksum: the header's bytes with the field as spaces */
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (size_t i = 0; i < BLOCK; i++)
                sum += h[i];
        char ck[8];
        snprintf(ck, sizeof(ck), "%06o", sum);
        memcpy(h + 148, ck, 7); /* six digits, NUL, and the space stays */
        *ret = h;
        *ret_len = (1 + ext) * BLOCK;
}

/* ---- the tar stream as segments ---- */

/* The tar stream in order: the headers (memory), each region (the input),
 * the end (zeros). start[i] is where segment i begins in the stream. */
struct stream {
        int fd;
        const uint8_t *hdr;
        size_t hdr_len;
        const struct map *m;
        uint64_t *start;  /* m->n + 1 entries: region i at start[i], the end at start[n] */
        uint64_t total;   /* the whole tar stream */
};

/* Copies len bytes of the stream from off into buf. */
static int stream_read(const struct stream *s, uint64_t off, uint8_t *buf, size_t len) {
        while (len) {
                size_t n;
                if (off < s->hdr_len) {
                        n = s->hdr_len - off < len ? (size_t)(s->hdr_len - off) : len;
                        memcpy(buf, s->hdr + off, n);
                } else if (off >= s->start[s->m->n]) {
                        n = len; /* padding and the end blocks */
                        memset(buf, 0, n);
                } else {
                        /* the region holding off: the last start <= off */
                        size_t lo = 0, hi = s->m->n; /* start[lo] <= off < start[hi] */
                        while (hi - lo > 1) {
                                size_t mid = lo + (hi - lo) / 2;
                                if (s->start[mid] <= off)
                                        lo = mid;
                                else
                                        hi = mid;
                        }
                        const struct region *r = &s->m->v[lo];
                        uint64_t in = off - s->start[lo];
                        n = r->len - in < len ? (size_t)(r->len - in) : len;
                        int e = format_pread(s->fd, buf, n, r->off + in);
                        if (e < 0)
                                return e;
                }
                buf += n;
                off += n;
                len -= n;
        }
        return 0;
}

/* ---- parallel gzip ---- */

struct slot {
        uint8_t *in;       /* DICT + CHUNK */
        uint8_t *out;
        size_t out_cap;
        uint64_t off;      /* the piece: stream bytes [off, off + len) */
        size_t len;
        bool last;
        size_t out_len;    /* results */
        uint32_t crc;
        int err;
};

struct gz {
        struct stream *s;
        struct slot *slots;
        unsigned nslots;
        int level;
        struct format_out *out;
        uint32_t crc;      /* of the stream retired so far */
        uint64_t done;     /* stream bytes retired */
};

static int gz_codec_new(void *ctx, unsigned worker, void **ret) {
        struct gz *g = ctx;
        z_stream *z = xcalloc(1, sizeof(*z));
        /* raw deflate: the gzip wrapper is written around the pieces */
        if (deflateInit2(z, g->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
                free(z);
                return -ENOMEM;
        }
        *ret = z;
        return 0;
}

static void gz_codec_free(void *ctx, void *codec) {
        if (codec)
                deflateEnd(codec);
        free(codec);
}

static void gz_work(void *ctx, void *codec, unsigned k) {
        struct gz *g = ctx;
        struct slot *sl = &g->slots[k];
        z_stream *z = codec;
        size_t dict = sl->off < DICT ? (size_t)sl->off : DICT;
        sl->err = stream_read(g->s, sl->off - dict, sl->in, dict + sl->len);
        if (sl->err < 0)
                return;
        const uint8_t *piece = sl->in + dict;
        sl->crc = (uint32_t)crc32(0, piece, (uInt)sl->len);
        if (deflateReset(z) != Z_OK || (dict && deflateSetDictionary(z, sl->in, (uInt)dict) != Z_OK)) {
                sl->err = -EIO;
                return;
        }
        z->next_in = (Bytef *)piece;
        z->avail_in = (uInt)sl->len;
        z->next_out = sl->out;
        z->avail_out = (uInt)sl->out_cap;
        int zr = deflate(z, sl->last ? Z_FINISH : Z_SYNC_FLUSH);
        /* out_cap is deflateBound's and more: everything fits at once */
        if ((sl->last ? zr != Z_STREAM_END : zr != Z_OK) || z->avail_in != 0 || z->avail_out == 0)
                sl->err = -EIO;
        sl->out_len = sl->out_cap - z->avail_out;
}

static int gz_retire(void *ctx, unsigned k, uint64_t seq) {
        struct gz *g = ctx;
        struct slot *sl = &g->slots[k];
        if (sl->err < 0)
                return sl->err;
        g->crc = (uint32_t)crc32_combine(g->crc, sl->crc, (z_off_t)sl->len);
        g->done += sl->len;
        return format_out_write(g->out, sl->out, sl->out_len);
}

static const struct zpipe_ops gz_ops = {
        .codec_new = gz_codec_new,
        .codec_free = gz_codec_free,
        .work = gz_work,
        .retire = gz_retire,
};

static void gz_slots_free(struct gz *g) {
        for (unsigned i = 0; g->slots && i < g->nslots; i++) {
                free(g->slots[i].in);
                free(g->slots[i].out);
        }
        free(g->slots);
        g->slots = NULL;
}

/* The gzip member around the pieces of s, into out. */
static int gz_write(struct stream *s, struct format_out *out, const struct format_options *o) {
        unsigned threads = format_threads(o);
        struct gz g = {.s = s, .nslots = 2 * threads, .out = out,
                       .level = o->level ? o->level : Z_DEFAULT_COMPRESSION};
        /* what deflate can make of CHUNK bytes, with the flush's bytes */
        size_t cap = compressBound(CHUNK) + 64;
        g.slots = xcalloc(g.nslots, sizeof(*g.slots));
        for (unsigned i = 0; i < g.nslots; i++) {
                g.slots[i].in = xmalloc(DICT + CHUNK);
                g.slots[i].out = xmalloc(cap);
                g.slots[i].out_cap = cap;
        }
        /* gzip header: deflate, no flags, mtime 0, extra flags (2: best,
         * 4: fastest, as gzip sets them), OS 3 (Unix) */
        int level = g.level == Z_DEFAULT_COMPRESSION ? 6 : g.level;
        const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, level >= 9 ? 2 : level == 1 ? 4 : 0, 3};
        int r = format_out_write(out, head, sizeof(head));
        struct zpipe *zp = NULL;
        if (r >= 0)
                r = zpipe_new(&gz_ops, &g, threads, g.nslots, &zp);
        for (uint64_t off = 0; r >= 0 && off < s->total;) {
                int k = zpipe_get(zp);
                if (k < 0) {
                        r = k;
                        break;
                }
                struct slot *sl = &g.slots[k];
                sl->off = off;
                sl->len = s->total - off < CHUNK ? (size_t)(s->total - off) : CHUNK;
                off += sl->len;
                sl->last = off == s->total;
                sl->err = 0;
                zpipe_submit(zp);
        }
        if (r >= 0)
                r = zpipe_drain(zp);
        zpipe_free(zp);
        gz_slots_free(&g);
        if (r < 0)
                return r;
        assert(g.done == s->total);
        uint8_t trailer[8];
        for (int i = 0; i < 4; i++) {
                trailer[i] = (uint8_t)(g.crc >> (8 * i));
                trailer[4 + i] = (uint8_t)(s->total >> (8 * i)); /* ISIZE: mod 2^32 */
        }
        return format_out_write(out, trailer, sizeof(trailer));
}

/* ---- the driver ---- */

static int gce_write(int raw_fd, uint64_t size, int out_fd, const struct format_options *o,
                     struct format_result *res) {
        _cleanup_format_out_ struct format_out *out = NULL;
        _cleanup_free_ uint8_t *hdr = NULL;
        _cleanup_free_ uint64_t *start = NULL;
        struct map m = {0};
        int r;

        if (raw_fd < 0 || out_fd < 0 || !o || !res)
                return -EINVAL;
        if (o->file_compression != COMPRESS_NONE)
                return -EOPNOTSUPP; /* it is a .tar.gz already */
        uint64_t realsize = (size + GIB - 1) / GIB * GIB;
        if (!realsize)
                realsize = GIB;
        (void)posix_fadvise(raw_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        if ((r = map_scan(raw_fd, size, &m)) < 0)
                goto out;

        const struct format_image *im = o->image;
        size_t hdr_len;
        tar_headers(&m, realsize, im && im->mtime > 0 ? (uint64_t)im->mtime : 0, &hdr, &hdr_len);
        struct stream s = {.fd = raw_fd, .hdr = hdr, .hdr_len = hdr_len, .m = &m};
        start = xcalloc(m.n + 1, sizeof(*start));
        uint64_t at = hdr_len;
        for (size_t i = 0; i < m.n; i++) {
                start[i] = at;
                at += m.v[i].len;
        }
        start[m.n] = at;
        s.start = start;
        /* data padded to a block, two zero blocks, zeros to the record */
        at = (at + BLOCK - 1) / BLOCK * BLOCK + 2 * BLOCK;
        s.total = (at + RECORD - 1) / RECORD * RECORD;

        if ((r = format_out_new(out_fd, o, &out)) < 0 || (r = gz_write(&s, out, o)) < 0)
                goto out;
        r = format_out_finish(out, res);
        if (r >= 0)
                res->data_bytes = m.stored;
out:
        free(m.v);
        return r;
}

/* A gzip member whose tar stream starts with a disk.raw header: the first
 * bytes inflate far enough for that (the header compresses to a few dozen
 * bytes). */
static int gce_probe(const uint8_t *head, size_t len) {
        if (len < 18 || head[0] != 0x1f || head[1] != 0x8b || head[2] != 8)
                return 0;
        uint8_t tar[BLOCK] = {0};
        z_stream z = {0};
        if (inflateInit2(&z, 16 + 15) != Z_OK)
                return 0;
        z.next_in = (Bytef *)head;
        z.avail_in = (uInt)len;
        z.next_out = tar;
        z.avail_out = sizeof(tar);
        int zr = inflate(&z, Z_SYNC_FLUSH);
        size_t got = sizeof(tar) - z.avail_out;
        inflateEnd(&z);
        if ((zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) || got < 265)
                return 0;
        return memcmp(tar, "disk.raw", 9) == 0 && memcmp(tar + 257, "ustar", 5) == 0 ? 100 : 0;
}

const struct format_writer gce_writer = {
        .name = "gce",
        .extension = "tar.gz",
        /* compressed already; QEMU boots the disk.raw inside, not this */
        .caps = 0,
        .probe = gce_probe,
        .write = gce_write,
};
