/* SPDX-License-Identifier: Apache-2.0 */
/*
 * qcow2.c — the qcow2 writer: qcow2 version 3, 64 KiB clusters, 16-bit
 * refcounts, no backing file, no snapshots (qemu's docs/interop/qcow2.txt).
 *
 * The artifact is written strictly in file order (format.c's stream), so
 * that its checksums are computed as it is written and a file compressor
 * can sit on top. The file is
 *
 *     header | L1 | refcount table | refcount blocks | L2 tables |
 *     uncompressed clusters | compressed clusters (byte-packed) | pad to 512
 *
 * every part but the last cluster-aligned, every part known before it is
 * written. The header comes first and names where L1 and the refcount table
 * are; L1 names the L2 tables, which name every data cluster. So the offset
 * of every compressed cluster, i.e. every compressed size, must be known
 * before byte 0 is written. Hence two phases:
 *
 *  1. Map: walk the input's data extents (SEEK_DATA/SEEK_HOLE; holes are
 *     never read), read each cluster once, and record per virtual cluster
 *     "zero", "stored" or "compressed, N bytes" (2 bytes each, only for
 *     512 MiB ranges that hold data). Without cluster compression this is a
 *     compare-only scan of mapped pages. With it, `threads` workers
 *     (zpipe.h, the ordered pipeline the writers share) zero-check and
 *     compress clusters from a ring of 2 x threads slots of
 *     4 clusters (256 KiB out per slot, plus 256 KiB in for what is read
 *     rather than mapped: 2 MiB for 2 threads); the main thread points free
 *     slots at the clusters in read-only mappings of the input (8 MiB
 *     windows, see windows_get) and retires finished slots in order,
 *     appending compressed bytes to a spool: an unlinked
 *     temporary file, by default in the output's directory. A cluster that
 *     does not shrink below 64 KiB - 1 is marked "stored" and not spooled.
 *     Handing over 4 clusters at a time instead of 1 cut the wall time by
 *     8% (fewer wake-ups); 8 or 16 gained nothing more.
 *  2. Write: the layout follows from the map; header, L1, refcounts and L2
 *     are generated from it cluster by cluster; stored clusters are copied
 *     from the input again, compressed clusters from the spool
 *     (copy_file_range when nothing needs to see the bytes).
 *
 * Why a spool rather than metadata at the end or seeking back: qcow2 has no
 * layout in which the bytes before the data do not depend on the compressed
 * sizes (the header at offset 0 must point at L1 and the refcount table, and
 * those, directly or through L2, at every cluster), and a SHA-256 state
 * cannot be rewound to insert bytes in front. Seeking back to fill in the
 * metadata would mean reading the whole artifact again to hash it and could
 * not stream into a file compressor. The spool costs one extra write and
 * read of the compressed bytes through the page cache — measured below —
 * against the compression itself, and an unlinked file that lives a few
 * seconds is normally never written back to disk. Stored (incompressible)
 * clusters are re-read from the input rather than spooled: they are few,
 * and it keeps them cluster-aligned without padding between compressed
 * ones.
 *
 * Measured with bench/qcow2.sh (2 vCPUs, a bootable 2 GiB Debian image with
 * 510 MiB of data, input in the page cache, medians): the spool's write and
 * copy-back of 200 MB take about 0.05 s of a 0.8 s zstd run. Whole runs:
 *
 *                                       time    size      peak RSS
 *   qemu-img convert -O qcow2           0.22 s  537.1 MB  24 MiB
 *   kiln, uncompressed                  0.21 s  537.1 MB  19 MiB (mapped input)
 *   kiln, uncompressed + sha256         0.42 s
 *   qemu-img -c, zstd, -W -m 16         1.48 s  198.2 MB  24 MiB
 *   kiln, zstd level 3 (qemu's level)   1.00 s  196.9 MB   8 MiB
 *   kiln, zstd default (1, minMatch 5)  0.79 s  200.2 MB   7 MiB
 *   kiln, zstd default + sha256         0.86 s
 *   qemu-img -c (zlib, level 6)        13.8 s   202.2 MB  11 MiB
 *   kiln, deflate level 6               6.7 s   201.3 MB   7 MiB
 *
 * kiln spends 1.5 CPU seconds where qemu-img spends 2.4 for zstd: one
 * compression context per thread instead of one per cluster, four clusters
 * per hand-over, no per-cluster metadata updates.
 *
 * Since then (perf: 62% of the samples in zstd, 10% copying the input into
 * the slots with pread, the rest mostly the spool's copies): workers read
 * the input in place through mappings (windows_get) and the default zstd
 * setting has hashLog 12 and minMatch 6. Measured interleaved with
 * qemu-img on a machine shared with other work (load 6-10 on 2 cores, so
 * wall times mean little): 1.34-1.59 CPU s per run against 1.53-2.2 before,
 * qemu-img 2.4-3.2; the CPU ratio qemu-img/kiln went from 1.5-1.9 to
 * 1.6-2.1, the size from 1.009x to 1.033x qemu-img's. Left alone: the
 * spool's copy back (0.07 s, serial, in phase 2) and writev into it (main
 * thread).
 *
 * Refcounts: metadata and stored clusters have refcount 1 (their L1/L2
 * entries carry QCOW_OFLAG_COPIED); a host cluster in the compressed area
 * has one reference per compressed cluster whose sectors touch it, which is
 * how qemu counts them (at most 65536 / 10 bytes per descriptor, far below
 * the 16-bit limit; checked anyway). `qemu-img check` must find no leaks
 * and no corruptions: tests/unit/test_format.c runs it.
 */
#include "image/format.h"
#include "image/zpipe.h"

#include "base/util.h"
#include "os/fs.h"

#include <assert.h>
#include <endian.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <zlib.h>
#include <zstd.h>

#define CLUSTER_BITS 16
#define CLUSTER_SIZE (1u << CLUSTER_BITS)
#define L2_ENTRIES (CLUSTER_SIZE / 8)  /* one L2 table maps 512 MiB */
#define RB_ENTRIES (CLUSTER_SIZE / 2)  /* one refcount block covers 2 GiB of file */
#define RT_ENTRIES (CLUSTER_SIZE / 8)
#define HEADER_LENGTH 112              /* v3 header up to compression_type, padded */
#define QCOW2_MAX_SIZE (64ull << 40)   /* 64 TiB: an L1 table of 1 MiB */

#define OFLAG_COPIED (1ull << 63)
#define OFLAG_COMPRESSED (1ull << 62)
#define CSIZE_SHIFT (62 - (CLUSTER_BITS - 8)) /* compressed descriptor: sectors field */
#define INCOMPAT_COMPRESSION (1ull << 3)
#define COMPRESSION_TYPE_ZSTD 1

/* Cluster map values: 0 zero (unallocated), MAP_STORED uncompressed, any
 * other value the length of the compressed cluster (1..MAX_COMPRESSED). */
#define MAP_STORED 0xffffu
#define MAX_COMPRESSED (CLUSTER_SIZE - 2)

/* The default zstd setting for independent 64 KiB clusters (level 0 in the
 * options). Measured on a 2 GiB Debian image (8188 non-zero clusters, one
 * thread): level 3 1.66 s / 196.3 MB, level 1 1.18 s / 202.5 MB, level 1
 * with minMatch 5 1.22 s / 199.6 MB, level -1 1.11 s / 223.3 MB. Level 1
 * with minMatch 5 is 26% faster than level 3 for 1.7% more bytes; an
 * explicit level is used as it is. */
#define ZSTD_DEFAULT_LEVEL 1
#define ZSTD_DEFAULT_MINMATCH 6
/* Later, on the first 4000 data clusters of the same image (CPU time, one
 * thread, best of 5, alternating): zstd's own table for level 1 and 64 KiB
 * inputs with minMatch 5 0.60 s / 101.73 MB; hashLog 12 0.57 s / 102.43 MB;
 * hashLog 12 with minMatch 6 0.54 s / 103.78 MB (10% faster than the first
 * for 2% more bytes); hashLog 11 with minMatch 5 0.53 s / 103.71 MB, with
 * targetLength 2 0.52 s / 117.0 MB; qemu's level 3: 0.83 s / 100.34 MB. On
 * the whole image that is 1.03x qemu-img's size, inside the 1.05x budget. */
#define ZSTD_DEFAULT_HASHLOG 12

#define SCAN_WINDOW (16u << 20)        /* uncompressed scan: mapped at a time */
#define SLOT_CLUSTERS 4u               /* clusters per hand-over to a worker */

/* ---- the cluster map ---- */

struct map {
        uint16_t **l2;      /* one array of L2_ENTRIES per L1 entry; NULL: all zero */
        uint64_t l1_size;
        uint64_t nclusters; /* virtual clusters */
};

static void map_done(struct map *m) {
        if (m->l2)
                for (uint64_t i = 0; i < m->l1_size; i++)
                        free(m->l2[i]);
        free(m->l2);
}

static void map_set(struct map *m, uint64_t cluster, uint16_t v) {
        uint16_t **t = &m->l2[cluster / L2_ENTRIES];
        if (!v)
                return;
        if (!*t)
                *t = xcalloc(L2_ENTRIES, sizeof(**t));
        (*t)[cluster % L2_ENTRIES] = v;
}

/* ---- phase 1: the input's clusters ---- */

struct runs {
        int fd;
        uint64_t size; /* input bytes; the rest of the last cluster reads as zeros */
        uint64_t next; /* first cluster not yet returned */
};

/* The next run [*c0, *c1) of clusters touched by a data extent, each
 * cluster returned once. 1, 0 at the end, or -errno. */
static int next_run(struct runs *rs, uint64_t *c0, uint64_t *c1) {
        for (;;) {
                uint64_t off = rs->next << CLUSTER_BITS, ds, de;
                if (off >= rs->size)
                        return 0;
                int r = fs_next_data(rs->fd, off, rs->size, &ds, &de);
                if (r < 0)
                        return r;
                if (ds >= rs->size)
                        return 0;
                /* ds >= off, so the run starts at or after next. */
                uint64_t a = ds >> CLUSTER_BITS, b = (de + CLUSTER_SIZE - 1) >> CLUSTER_BITS;
                rs->next = b;
                if (a < b) {
                        *c0 = a;
                        *c1 = b;
                        return 1;
                }
        }
}

/* Reads n clusters from cluster c; bytes at or past size are zeros. */
static int read_clusters(const struct runs *rs, uint8_t *buf, uint64_t c, size_t n) {
        uint64_t off = c << CLUSTER_BITS, len = (uint64_t)n << CLUSTER_BITS;
        uint64_t avail = off < rs->size ? rs->size - off : 0;
        if (avail < len)
                memset(buf + avail, 0, len - avail);
        return format_pread(rs->fd, buf, avail < len ? avail : len, off);
}

static void mark_nonzero(struct map *m, uint64_t c, const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!format_is_zero(p + (i << CLUSTER_BITS), CLUSTER_SIZE))
                        map_set(m, c + i, MAP_STORED);
}

/* Without cluster compression: which clusters hold data. The input is
 * looked at through read-only mappings of SCAN_WINDOW bytes, unmapped as
 * the scan moves on: page cache pages are compared where they are, 20%
 * faster than reading them (0.18 s against 0.23 s for the whole writer on
 * 510 MB of data), and the mapped set stays small. The input is kiln's own
 * file: nobody truncates it under us (which would be SIGBUS). Where it
 * cannot be mapped, and for the cluster holding its end (whose tail past
 * the end cannot be mapped), it is read. */
static int scan(struct runs *rs, struct map *m) {
        _cleanup_free_ uint8_t *buf = xmalloc(SCAN_WINDOW);
        uint64_t c0, c1, full = rs->size >> CLUSTER_BITS; /* clusters wholly in the file */
        bool use_mmap = true;
        int r;
        while ((r = next_run(rs, &c0, &c1)) > 0)
                for (uint64_t c = c0; c < c1;) {
                        uint64_t left = c1 - c;
                        size_t n = left < SCAN_WINDOW / CLUSTER_SIZE ? (size_t)left
                                                                     : SCAN_WINDOW / CLUSTER_SIZE;
                        if (use_mmap && c + n > full)
                                n = c < full ? (size_t)(full - c) : 0;
                        if (use_mmap && n) {
                                size_t len = n << CLUSTER_BITS;
                                uint8_t *p = mmap(NULL, len, PROT_READ, MAP_SHARED, rs->fd,
                                                  (off_t)(c << CLUSTER_BITS));
                                if (p != MAP_FAILED) {
                                        (void)madvise(p, len, MADV_SEQUENTIAL);
                                        mark_nonzero(m, c, p, n);
                                        munmap(p, len);
                                        c += n;
                                        continue;
                                }
                                use_mmap = false;
                        }
                        if (!n) /* the last cluster */
                                n = 1;
                        if ((r = read_clusters(rs, buf, c, n)) < 0)
                                return r;
                        mark_nonzero(m, c, buf, n);
                        c += n;
                }
        return r;
}

/* One compressor per worker, reused for every cluster. */
struct codec {
        enum compress_kind kind;
        ZSTD_CCtx *zstd;
        z_stream z;
        bool z_on;
};

static void codec_done(struct codec *c) {
        ZSTD_freeCCtx(c->zstd);
        c->zstd = NULL;
        if (c->z_on)
                deflateEnd(&c->z);
        c->z_on = false;
}

static int codec_init(struct codec *c, enum compress_kind kind, int level) {
        c->kind = kind;
        if (kind == COMPRESS_ZSTD) {
                c->zstd = ZSTD_createCCtx();
                if (!c->zstd)
                        return -ENOMEM;
                if (ZSTD_isError(ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_compressionLevel,
                                                        level ? level : ZSTD_DEFAULT_LEVEL)))
                        return -EINVAL;
                if (!level &&
                    (ZSTD_isError(ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_minMatch,
                                                         ZSTD_DEFAULT_MINMATCH)) ||
                     ZSTD_isError(ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_hashLog,
                                                         ZSTD_DEFAULT_HASHLOG))))
                        return -EINVAL;
                /* the cluster size is implied (qemu decompresses a stream
                 * into one cluster): 2 bytes less per cluster */
                if (ZSTD_isError(ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_contentSizeFlag, 0)))
                        return -EINVAL;
                return 0;
        }
        /* What qemu's zlib compression type reads: raw deflate, 4 KiB window. */
        if (deflateInit2(&c->z, level ? level : Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                         Z_DEFAULT_STRATEGY) != Z_OK)
                return -EINVAL;
        c->z_on = true;
        return 0;
}

/* Compresses one cluster into out (MAX_COMPRESSED bytes). Returns the
 * length, or 0 when it does not fit (or the codec failed: the cluster is
 * then stored, which is always correct). */
static size_t codec_compress(struct codec *c, const uint8_t *in, uint8_t *out) {
        if (c->kind == COMPRESS_ZSTD) {
                size_t n = ZSTD_compress2(c->zstd, out, MAX_COMPRESSED, in, CLUSTER_SIZE);
                return ZSTD_isError(n) ? 0 : n;
        }
        if (deflateReset(&c->z) != Z_OK)
                return 0;
        c->z.next_in = (Bytef *)in;
        c->z.avail_in = CLUSTER_SIZE;
        c->z.next_out = out;
        c->z.avail_out = MAX_COMPRESSED;
        return deflate(&c->z, Z_FINISH) == Z_STREAM_END ? c->z.total_out : 0;
}

struct slot {
        uint8_t *in, *out;                /* SLOT_CLUSTERS clusters each */
        const uint8_t *src[SLOT_CLUSTERS]; /* each cluster: in a mapped window, or in `in` */
        uint64_t cluster[SLOT_CLUSTERS];  /* which clusters */
        uint16_t result[SLOT_CLUSTERS];   /* their map values */
        unsigned n;                       /* clusters in the slot */
};

/* What the pipeline's callbacks share (zpipe.h: the main thread fills and
 * retires slots, workers compress them). */
struct compress_ctx {
        const struct format_options *o;
        struct slot *slots;
        unsigned nslots;
        struct map *m;
        struct spool *sp;
        struct windows *ws;
};

static int codec_new(void *ctx, unsigned worker, void **ret_codec) {
        struct compress_ctx *cc = ctx;
        struct codec *c = xcalloc(1, sizeof(*c));
        *ret_codec = c;
        return codec_init(c, cc->o->cluster_compression, cc->o->level);
}

static void codec_free(void *ctx, void *codec) {
        if (codec)
                codec_done(codec);
        free(codec);
}

/* A worker: zero-checks and compresses the clusters of one slot. */
static void compress_slot(void *ctx, void *codec, unsigned slot) {
        struct compress_ctx *cc = ctx;
        struct slot *s = &cc->slots[slot];
        for (unsigned i = 0; i < s->n; i++) {
                const uint8_t *in = s->src[i];
                bool zero = format_is_zero(in, CLUSTER_SIZE);
                size_t n = zero ? 0 : codec_compress(codec, in, s->out + i * MAX_COMPRESSED);
                s->result[i] = zero ? 0 : n ? (uint16_t)n : MAP_STORED;
        }
}

struct spool {
        int fd;
        uint64_t total;
};

/* Appends the iovecs to the spool (one writev per slot: the compressed
 * bytes go from the slot buffers to the page cache without another copy). */
static int spool_writev(struct spool *s, struct iovec *iov, int n) {
        while (n > 0) {
                ssize_t w = writev(s->fd, iov, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                s->total += (uint64_t)w;
                for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
                        w -= (ssize_t)iov->iov_len;
                if (n > 0) {
                        iov->iov_base = (uint8_t *)iov->iov_base + w;
                        iov->iov_len -= (size_t)w;
                }
        }
        return 0;
}

/* The input as the workers see it: read-only mappings of WINDOW_CLUSTERS
 * clusters, made by the main thread as the runs reach them and unmapped
 * once every slot that points into them is retired. Workers compress
 * straight from the page cache: reading each cluster into a slot first
 * (pread) cost a copy of every data byte, 10% of the CPU time of a zstd run
 * by perf, taken from the workers on a machine with as many cores as
 * workers. Only pages with data are touched (holes are never faulted in),
 * and at most a few windows are mapped at a time, so the resident set stays
 * small. The cluster holding the input's end, and everything when mapping
 * fails, is read into the slot as before. */
#define WINDOW_CLUSTERS 128u /* 8 MiB */

struct window {
        uint8_t *addr;
        uint64_t c0, c1;   /* clusters [c0, c1) */
        uint64_t last_seq; /* the last slot (by submission number) pointing into it */
};

struct windows {
        struct window *w;  /* in cluster order, oldest first */
        size_t n, cap;
        uint64_t full;     /* clusters wholly inside the input */
        bool failed;       /* mmap failed once: read from now on */
};

static void windows_unmap(struct window *w) {
        munmap(w->addr, (size_t)(w->c1 - w->c0) << CLUSTER_BITS);
}

/* Unmaps the windows no slot in flight points into (all slots numbered
 * below `retired` are done), keeping the newest, which fill_slot extends. */
static void windows_release(struct windows *ws, uint64_t retired) {
        size_t k = 0;
        while (k + 1 < ws->n && ws->w[k].last_seq < retired)
                windows_unmap(&ws->w[k++]);
        if (k) {
                memmove(ws->w, ws->w + k, (ws->n - k) * sizeof(*ws->w));
                ws->n -= k;
        }
}

static void windows_done(struct windows *ws) {
        for (size_t i = 0; i < ws->n; i++)
                windows_unmap(&ws->w[i]);
        free(ws->w);
}

/* Where cluster c can be read in place for slot number seq, or NULL. */
static const uint8_t *windows_get(struct windows *ws, const struct runs *rs, uint64_t c,
                                  uint64_t seq) {
        if (ws->failed || c >= ws->full)
                return NULL;
        struct window *last = ws->n ? &ws->w[ws->n - 1] : NULL;
        if (!last || c < last->c0 || c >= last->c1) {
                uint64_t c0 = c / WINDOW_CLUSTERS * WINDOW_CLUSTERS;
                uint64_t c1 = c0 + WINDOW_CLUSTERS < ws->full ? c0 + WINDOW_CLUSTERS : ws->full;
                size_t len = (size_t)(c1 - c0) << CLUSTER_BITS;
                uint8_t *p = mmap(NULL, len, PROT_READ, MAP_SHARED, rs->fd, (off_t)(c0 << CLUSTER_BITS));
                if (p == MAP_FAILED) {
                        ws->failed = true;
                        return NULL;
                }
                (void)madvise(p, len, MADV_SEQUENTIAL);
                GROW(ws->w, ws->n, ws->cap);
                last = &ws->w[ws->n++];
                *last = (struct window){.addr = p, .c0 = c0, .c1 = c1};
        }
        last->last_seq = seq;
        return last->addr + ((size_t)(c - last->c0) << CLUSTER_BITS);
}

/* Fills slot s (number seq) with the next clusters that hold data (up to
 * SLOT_CLUSTERS): pointers into the mapped input, or read (consecutive
 * ones with one call). [*c, *c1) is the rest of the run being read.
 * Returns the number of clusters (0 at the end) or -errno. */
static int fill_slot(struct runs *rs, struct windows *ws, uint64_t *c, uint64_t *c1,
                     struct slot *s, uint64_t seq) {
        s->n = 0;
        while (s->n < SLOT_CLUSTERS) {
                if (*c == *c1) {
                        int r = next_run(rs, c, c1);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                break;
                }
                const uint8_t *p = windows_get(ws, rs, *c, seq);
                if (p) {
                        s->src[s->n] = p;
                        s->cluster[s->n++] = (*c)++;
                        continue;
                }
                unsigned k = SLOT_CLUSTERS - s->n;
                if (*c1 - *c < k)
                        k = (unsigned)(*c1 - *c);
                uint8_t *buf = s->in + ((size_t)s->n << CLUSTER_BITS);
                int r = read_clusters(rs, buf, *c, k);
                if (r < 0)
                        return r;
                for (unsigned i = 0; i < k; i++) {
                        s->src[s->n] = buf + ((size_t)i << CLUSTER_BITS);
                        s->cluster[s->n++] = (*c)++;
                }
        }
        return (int)s->n;
}

/* Takes the oldest slot back: records it in the map, spools its bytes,
 * unmaps the windows no slot in flight points into any more. */
static int retire_slot(void *ctx, unsigned slot, uint64_t seq) {
        struct compress_ctx *cc = ctx;
        struct slot *s = &cc->slots[slot];
        struct iovec iov[SLOT_CLUSTERS];
        int n = 0;
        for (unsigned i = 0; i < s->n; i++) {
                uint16_t v = s->result[i];
                map_set(cc->m, s->cluster[i], v);
                if (v && v != MAP_STORED)
                        iov[n++] = (struct iovec){s->out + i * MAX_COMPRESSED, v};
        }
        int r = spool_writev(cc->sp, iov, n);
        windows_release(cc->ws, seq + 1);
        return r;
}

static const struct zpipe_ops compress_ops = {
        .codec_new = codec_new,
        .codec_free = codec_free,
        .work = compress_slot,
        .retire = retire_slot,
};

/* With cluster compression: map and spool every cluster, on `threads`
 * workers over 2 x threads slots. */
static int compress_all(struct runs *rs, struct map *m, const struct format_options *o,
                        struct spool *sp) {
        unsigned threads = format_threads(o);
        struct windows ws = {.full = rs->size >> CLUSTER_BITS};
        struct compress_ctx cc = {.o = o, .nslots = 2 * threads, .m = m, .sp = sp, .ws = &ws};
        struct zpipe *zp = NULL;
        uint64_t c = 0, c1 = 0; /* the rest of the run being read */
        cc.slots = xcalloc(cc.nslots, sizeof(*cc.slots));
        for (unsigned i = 0; i < cc.nslots; i++) {
                cc.slots[i].in = xmalloc((size_t)SLOT_CLUSTERS << CLUSTER_BITS);
                cc.slots[i].out = xmalloc((size_t)SLOT_CLUSTERS * MAX_COMPRESSED);
        }
        int r = zpipe_new(&compress_ops, &cc, threads, cc.nslots, &zp);
        while (r >= 0) {
                if ((r = zpipe_get(zp)) < 0)
                        break;
                if ((r = fill_slot(rs, &ws, &c, &c1, &cc.slots[r], zpipe_submitted(zp))) <= 0)
                        break;
                zpipe_submit(zp);
        }
        if (r >= 0)
                r = zpipe_drain(zp);
        zpipe_free(zp); /* the workers are gone: nothing points into the windows */
        windows_done(&ws);
        for (unsigned i = 0; i < cc.nslots; i++) {
                free(cc.slots[i].in);
                free(cc.slots[i].out);
        }
        free(cc.slots);
        return r;
}

/* ---- phase 2: layout and writing ---- */

struct layout {
        uint64_t vsize, l1_size;
        uint64_t l1c, rtc, rbc, nl2, nstored, comp_bytes; /* clusters, but comp_bytes */
        uint64_t l1_off, rt_off, rb_off, l2_off, stored_off, comp_off, end;
        uint64_t host_clusters, fixed_clusters; /* fixed: refcount 1 (all but compressed) */
};

static uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

static void layout_plan(const struct map *m, uint64_t vsize, struct layout *l) {
        *l = (struct layout){.vsize = vsize, .l1_size = m->l1_size};
        for (uint64_t j = 0; j < m->l1_size; j++) {
                if (!m->l2[j])
                        continue;
                l->nl2++;
                for (unsigned e = 0; e < L2_ENTRIES; e++) {
                        uint16_t v = m->l2[j][e];
                        if (v == MAP_STORED)
                                l->nstored++;
                        else
                                l->comp_bytes += v;
                }
        }
        l->l1c = div_up(l->l1_size * 8, CLUSTER_SIZE);
        /* The refcount blocks must cover every cluster, themselves included:
         * grow them until they do (at most two rounds in practice). */
        uint64_t comp_clusters = div_up(l->comp_bytes, CLUSTER_SIZE);
        l->rbc = l->rtc = 1;
        for (;;) {
                uint64_t meta = 1 + l->l1c + l->rtc + l->rbc + l->nl2;
                l->host_clusters = meta + l->nstored + comp_clusters;
                uint64_t rbc = div_up(l->host_clusters, RB_ENTRIES);
                uint64_t rtc = div_up(rbc, RT_ENTRIES);
                if (rbc <= l->rbc && rtc <= l->rtc)
                        break;
                l->rbc = rbc > l->rbc ? rbc : l->rbc;
                l->rtc = rtc > l->rtc ? rtc : l->rtc;
        }
        l->l1_off = CLUSTER_SIZE;
        l->rt_off = l->l1_off + l->l1c * CLUSTER_SIZE;
        l->rb_off = l->rt_off + l->rtc * CLUSTER_SIZE;
        l->l2_off = l->rb_off + l->rbc * CLUSTER_SIZE;
        l->stored_off = l->l2_off + l->nl2 * CLUSTER_SIZE;
        l->comp_off = l->stored_off + l->nstored * CLUSTER_SIZE;
        l->end = l->comp_off + div_up(l->comp_bytes, 512) * 512;
        l->fixed_clusters = l->comp_off / CLUSTER_SIZE;
}

/* Writes a table of n big-endian u64 entries, entry i being get(ctx, i),
 * zero-padded to `clusters` clusters; buf holds one cluster. */
static int write_table(struct format_out *out, uint8_t *buf, uint64_t n, uint64_t clusters,
                       uint64_t (*get)(void *ctx, uint64_t i), void *ctx) {
        uint64_t i = 0;
        for (uint64_t c = 0; c < clusters; c++) {
                uint64_t *e = (uint64_t *)buf;
                for (unsigned k = 0; k < CLUSTER_SIZE / 8; k++, i++)
                        e[k] = htobe64(i < n ? get(ctx, i) : 0);
                int r = format_out_write(out, buf, CLUSTER_SIZE);
                if (r < 0)
                        return r;
        }
        return 0;
}

struct gen {
        const struct map *m;
        const struct layout *l;
        uint64_t next_l2;    /* L1: offset of the next L2 table */
        uint64_t next_store; /* L2: next stored cluster */
        uint64_t next_comp;  /* L2: next compressed byte */
};

static uint64_t l1_entry(void *ctx, uint64_t i) {
        struct gen *g = ctx;
        if (!g->m->l2[i])
                return 0;
        uint64_t off = g->next_l2;
        g->next_l2 += CLUSTER_SIZE;
        return off | OFLAG_COPIED;
}

static uint64_t rt_entry(void *ctx, uint64_t i) {
        struct gen *g = ctx;
        return g->l->rb_off + i * CLUSTER_SIZE;
}

/* The L2 entry for a map value; advances the data offsets. */
static uint64_t l2_entry(struct gen *g, uint16_t v) {
        if (!v)
                return 0;
        if (v == MAP_STORED) {
                uint64_t off = g->next_store;
                g->next_store += CLUSTER_SIZE;
                return off | OFLAG_COPIED;
        }
        uint64_t off = g->next_comp;
        g->next_comp += v;
        /* Additional 512-byte sectors beyond the one holding the first byte. */
        uint64_t sectors = ((off + v - 1) >> 9) - (off >> 9);
        return OFLAG_COMPRESSED | sectors << CSIZE_SHIFT | off;
}

/* Refcounts of the compressed area: one per descriptor touching a cluster. */
static int count_compressed(const struct map *m, const struct layout *l, uint16_t *crc) {
        uint64_t off = 0;
        for (uint64_t j = 0; j < m->l1_size; j++) {
                if (!m->l2[j])
                        continue;
                for (unsigned e = 0; e < L2_ENTRIES; e++) {
                        uint16_t v = m->l2[j][e];
                        if (!v || v == MAP_STORED)
                                continue;
                        for (uint64_t c = off >> CLUSTER_BITS; c <= (off + v - 1) >> CLUSTER_BITS; c++)
                                if (crc[c]++ == UINT16_MAX)
                                        return -E2BIG; /* cannot happen: >= 10 bytes each */
                        off += v;
                }
        }
        assert(off == l->comp_bytes);
        return 0;
}

static int write_header(struct format_out *out, uint8_t *buf, const struct layout *l,
                        enum compress_kind cc) {
        memset(buf, 0, CLUSTER_SIZE);
        uint32_t u32;
        uint64_t u64;
#define PUT32(at, v) (u32 = htobe32(v), memcpy(buf + (at), &u32, 4))
#define PUT64(at, v) (u64 = htobe64(v), memcpy(buf + (at), &u64, 8))
        PUT32(0, 0x514649fbu); /* "QFI\xfb" */
        PUT32(4, 3);           /* version */
        PUT32(20, CLUSTER_BITS);
        PUT64(24, l->vsize);
        PUT32(36, (uint32_t)l->l1_size);
        PUT64(40, l->l1_off);
        PUT64(48, l->rt_off);
        PUT32(56, (uint32_t)l->rtc);
        PUT64(72, cc == COMPRESS_ZSTD ? INCOMPAT_COMPRESSION : 0);
        PUT32(96, 4);          /* refcount_order: 16-bit refcounts */
        PUT32(100, HEADER_LENGTH);
        buf[104] = cc == COMPRESS_ZSTD ? COMPRESSION_TYPE_ZSTD : 0;
#undef PUT32
#undef PUT64
        /* The header extensions end with a zero type: the rest is zeros. */
        int r = format_out_write(out, buf, HEADER_LENGTH + 8);
        return r < 0 ? r : format_out_zeros(out, CLUSTER_SIZE - HEADER_LENGTH - 8);
}

static int write_refcounts(struct format_out *out, uint8_t *buf, const struct layout *l,
                           const uint16_t *crc) {
        uint64_t i = 0;
        for (uint64_t b = 0; b < l->rbc; b++) {
                uint16_t *e = (uint16_t *)buf;
                for (unsigned k = 0; k < RB_ENTRIES; k++, i++)
                        e[k] = htobe16(i < l->fixed_clusters  ? 1
                                       : i < l->host_clusters ? crc[i - l->fixed_clusters]
                                                              : 0);
                int r = format_out_write(out, buf, CLUSTER_SIZE);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int write_l2(struct format_out *out, uint8_t *buf, struct gen *g) {
        for (uint64_t j = 0; j < g->m->l1_size; j++) {
                if (!g->m->l2[j])
                        continue;
                uint64_t *e = (uint64_t *)buf;
                for (unsigned k = 0; k < L2_ENTRIES; k++)
                        e[k] = htobe64(l2_entry(g, g->m->l2[j][k]));
                int r = format_out_write(out, buf, CLUSTER_SIZE);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Stored clusters, copied from the input in runs of consecutive clusters. */
static int write_stored(struct format_out *out, const struct map *m, int raw_fd, uint64_t size) {
        uint64_t run = 0, len = 0; /* current run: first cluster, clusters */
        for (uint64_t c = 0; c <= m->nclusters; c++) {
                bool stored = c < m->nclusters && m->l2[c / L2_ENTRIES] &&
                              m->l2[c / L2_ENTRIES][c % L2_ENTRIES] == MAP_STORED;
                if (stored && len && run + len == c) {
                        len++;
                        continue;
                }
                if (len) {
                        /* Bytes past the input's size are zeros (the last cluster). */
                        uint64_t off = run << CLUSTER_BITS, n = len << CLUSTER_BITS;
                        uint64_t avail = off < size ? size - off : 0;
                        if (avail > n)
                                avail = n;
                        int r = format_out_copy(out, raw_fd, off, avail);
                        if (r >= 0)
                                r = format_out_zeros(out, n - avail);
                        if (r < 0)
                                return r;
                }
                run = c;
                len = stored ? 1 : 0;
        }
        return 0;
}

static int qcow2_write(int raw_fd, uint64_t size, int out_fd, const struct format_options *o,
                       struct format_result *res) {
        _cleanup_format_out_ struct format_out *out = NULL;
        _cleanup_close_ int spool_fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ uint16_t *crc = NULL;
        _cleanup_(map_done) struct map m = {0};
        struct layout l;
        int r;

        if (raw_fd < 0 || out_fd < 0 || !o || !res)
                return -EINVAL;
        if (o->cluster_compression == COMPRESS_XZ)
                return -EOPNOTSUPP; /* qcow2 knows zlib and zstd only */
        if (o->cluster_compression != COMPRESS_NONE && o->cluster_compression != COMPRESS_ZSTD &&
            o->cluster_compression != COMPRESS_GZIP)
                return -EINVAL;
        if (size > QCOW2_MAX_SIZE)
                return -E2BIG;

        /* qemu requires a multiple of 512: the tail reads as zeros. */
        uint64_t vsize = div_up(size, 512) * 512;
        m.nclusters = div_up(vsize, CLUSTER_SIZE);
        m.l1_size = div_up(m.nclusters, L2_ENTRIES);
        m.l2 = xcalloc(m.l1_size ? m.l1_size : 1, sizeof(*m.l2));
        struct runs rs = {.fd = raw_fd, .size = size};
        (void)posix_fadvise(raw_fd, 0, 0, POSIX_FADV_SEQUENTIAL);

        /* Phase 1: the map (and the spool). */
        struct spool sp = {.fd = -1};
        if (o->cluster_compression == COMPRESS_NONE)
                r = scan(&rs, &m);
        else {
                sp.fd = spool_fd = format_spool_open(o, out_fd);
                if (spool_fd < 0)
                        return spool_fd;
                r = compress_all(&rs, &m, o, &sp);
        }
        if (r < 0)
                return r;

        /* Phase 2: everything in file order. */
        layout_plan(&m, vsize, &l);
        assert(sp.total == l.comp_bytes);
        crc = xcalloc(l.host_clusters - l.fixed_clusters + 1, sizeof(*crc));
        if ((r = count_compressed(&m, &l, crc)) < 0)
                return r;
        if ((r = format_out_new(out_fd, o, &out)) < 0)
                return r;
        buf = xmalloc(CLUSTER_SIZE);
        struct gen g = {.m = &m, .l = &l, .next_l2 = l.l2_off, .next_store = l.stored_off,
                        .next_comp = l.comp_off};

        if ((r = write_header(out, buf, &l, o->cluster_compression)) < 0)
                return r;
        assert(format_out_pos(out) == l.l1_off);
        if ((r = write_table(out, buf, l.l1_size, l.l1c, l1_entry, &g)) < 0)
                return r;
        assert(format_out_pos(out) == l.rt_off);
        if ((r = write_table(out, buf, l.rbc, l.rtc, rt_entry, &g)) < 0)
                return r;
        assert(format_out_pos(out) == l.rb_off);
        if ((r = write_refcounts(out, buf, &l, crc)) < 0)
                return r;
        assert(format_out_pos(out) == l.l2_off);
        if ((r = write_l2(out, buf, &g)) < 0)
                return r;
        assert(format_out_pos(out) == l.stored_off);
        if ((r = write_stored(out, &m, raw_fd, size)) < 0)
                return r;
        assert(format_out_pos(out) == l.comp_off);
        if (l.comp_bytes) {
                if ((r = format_out_copy(out, spool_fd, 0, l.comp_bytes)) < 0 ||
                    (r = format_out_zeros(out, l.end - l.comp_off - l.comp_bytes)) < 0)
                        return r;
        }
        assert(format_out_pos(out) == l.end);
        return format_out_finish(out, res);
}

/* Every qcow2 version starts with the magic "QFI\xfb". */
static int qcow2_probe(const uint8_t *head, size_t len) {
        return len >= 4 && memcmp(head, "QFI\xfb", 4) == 0 ? 100 : 0;
}

static const char *const cluster_compressions[] = {"none", "zstd", "zlib", NULL};

static const struct format_option qcow2_options[] = {
        {{"clusters", FT_STRING, 0, NULL, cluster_compressions, "qcow2 cluster compression: zstd, zlib"},
         "none", "compresses clusters (use compress: for the whole file)"},
        {{NULL, 0, 0, NULL, NULL, NULL}, NULL, NULL},
};

const struct format_writer qcow2_writer = {
        .name = "qcow2",
        .extension = "qcow2",
        /* The writer only appends (format.h), so a compressor can follow. */
        .caps = FORMAT_BOOTABLE | FORMAT_COMPRESSIBLE,
        /* before raw: the holes stay out of the file QEMU reads */
        .boot_rank = 2,
        .options = qcow2_options,
        .probe = qcow2_probe,
        .write = qcow2_write,
};
