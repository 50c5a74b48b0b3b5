/* SPDX-License-Identifier: Apache-2.0 */
/*
 * format.c — the table of output formats, the artifact stream every writer
 * writes through (file compression + checksums), and the raw writer.
 *
 * The artifact stream (struct format_out) is strictly sequential: a writer
 * hands it bytes in file order, the stream feeds them to the file compressor
 * if there is one, hashes what comes out (the exact bytes of the file) and
 * writes it. Runs of zeros are a separate call so that a plain output file
 * stays sparse: the zeros are hashed from a static zero page-backed buffer
 * and skipped with pwrite offsets, and the file gets its final size from
 * ftruncate at the end. Because nothing ever seeks back, the same writers
 * work unchanged under a compressor and the checksums never need a second
 * read of the artifact.
 */
#include "image/format.h"

#include "base/hash.h"
#include "base/util.h"
#include "os/fs.h"

#include <fcntl.h>
#include <limits.h>
#include <lzma.h>
#include <pthread.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

/* Zeros to hash or compress in place of holes. In .bss: never written, so
 * it maps the kernel's shared zero page and costs no memory. */
static uint8_t zero_buf[256 * 1024];

#define CBUF_SIZE (1u << 20)   /* file compressor output per call */
#define IOBUF_SIZE (1u << 20)  /* copy buffer when bytes must be seen */
#define ZERO_BLOCK (64u * 1024) /* raw writer: aligned zero blocks become holes */

/* ---- the table ---- */

static int raw_write(int raw_fd, uint64_t size, int out_fd, const struct format_options *o,
                     struct format_result *res);

/* No magic: a raw disk is whatever no other format claims (as QEMU's raw
 * driver, the lowest score). */
static int raw_probe(const uint8_t *head, size_t len) { return 1; }

static const char *const raw_aliases[] = {"img", NULL};

static const struct format_writer raw_writer = {
        .name = "raw",
        .extension = "raw",
        .aliases = raw_aliases,
        .caps = FORMAT_BOOTABLE | FORMAT_COMPRESSIBLE,
        .boot_rank = 1,
        .probe = raw_probe,
        .write = raw_write,
};

/* A format is one file defining its driver, declared and listed here. */
extern const struct format_writer qcow2_writer, vmdk_writer, ova_writer, vhd_writer, gce_writer;

const struct format_writer *const format_writers[] = {&raw_writer, &qcow2_writer, &vmdk_writer,
                                                      &ova_writer, &vhd_writer, &gce_writer, NULL};

int format_score(const struct format_writer *w, const uint8_t *head, size_t len,
                 const uint8_t *tail, size_t tail_len) {
        int score = w->probe(head, len);
        if (w->probe_tail && tail) {
                int t = w->probe_tail(tail, tail_len);
                score = t > score ? t : score;
        }
        return score;
}

const struct format_writer *format_probe_ends(const uint8_t *head, size_t len,
                                              const uint8_t *tail, size_t tail_len) {
        const struct format_writer *best = NULL;
        int best_score = 0;
        for (size_t i = 0; format_writers[i]; i++) {
                int score = format_score(format_writers[i], head, len, tail, tail_len);
                if (score > best_score) {
                        best = format_writers[i];
                        best_score = score;
                }
        }
        return best;
}

const struct format_writer *format_probe(const uint8_t *head, size_t len) {
        return format_probe_ends(head, len, NULL, 0);
}

/* Up to FORMAT_PROBE_BYTES at off; the count read, or -1 (errno set). */
static ssize_t probe_read(int fd, uint8_t *buf, off_t off) {
        ssize_t n;
        do
                n = pread(fd, buf, FORMAT_PROBE_BYTES, off);
        while (n < 0 && errno == EINTR);
        return n;
}

const struct format_writer *format_probe_fd(int fd) {
        uint8_t head[FORMAT_PROBE_BYTES], tail[FORMAT_PROBE_BYTES];
        struct stat st;
        ssize_t n = probe_read(fd, head, 0), t = 0;
        if (n < 0)
                return NULL;
        /* The tail: the last bytes of a regular file (a block device's
         * size is not in st_size: no tail there). */
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
                off_t off = st.st_size > (off_t)FORMAT_PROBE_BYTES ? st.st_size - FORMAT_PROBE_BYTES : 0;
                if ((t = probe_read(fd, tail, off)) < 0)
                        return NULL;
        }
        return format_probe_ends(head, (size_t)n, t > 0 ? tail : NULL, (size_t)t);
}

/* True when name is "SOMETHING.ext". */
static bool has_extension(const char *name, const char *ext) {
        size_t n = strlen(name), e = strlen(ext);
        return n > e + 1 && name[n - e - 1] == '.' && streq(name + n - e, ext);
}

/* The driver whose extension or alias ends name, or NULL. */
static const struct format_writer *by_extension(const char *name) {
        for (size_t i = 0; format_writers[i]; i++) {
                const struct format_writer *w = format_writers[i];
                if (has_extension(name, w->extension))
                        return w;
                for (const char *const *a = w->aliases; a && *a; a++)
                        if (has_extension(name, *a))
                                return w;
        }
        return NULL;
}

char *format_name_from_file(const char *file, enum compress_kind *ret_compress) {
        static const enum compress_kind kinds[] = {COMPRESS_ZSTD, COMPRESS_XZ, COMPRESS_GZIP};
        const struct format_writer *w = by_extension(file);
        if (w) {
                /* "x.tar.gz" is gce's, not a compressed "tar" */
                if (ret_compress)
                        *ret_compress = COMPRESS_NONE;
                return xstrdup(w->name);
        }
        _cleanup_free_ char *s = xstrdup(file);
        enum compress_kind c = COMPRESS_NONE;
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
                const char *suf = compress_suffix(kinds[i]);
                if (endswith(s, suf) && strlen(s) > strlen(suf)) {
                        s[strlen(s) - strlen(suf)] = 0;
                        c = kinds[i];
                        break;
                }
        }
        if (ret_compress)
                *ret_compress = c;
        if ((w = by_extension(s)))
                return xstrdup(w->name);
        const char *dot = strrchr(s, '.');
        if (!dot || !dot[1] || dot == s)
                return NULL;
        return xstrdup(dot + 1);
}

const struct format_writer *format_find(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; format_writers[i]; i++)
                if (streq(format_writers[i]->name, name))
                        return format_writers[i];
        return NULL;
}

const char *compress_suffix(enum compress_kind k) {
        switch (k) {
        case COMPRESS_ZSTD:
                return ".zst";
        case COMPRESS_XZ:
                return ".xz";
        case COMPRESS_GZIP:
                return ".gz";
        case COMPRESS_NONE:
                break;
        }
        return "";
}

int compress_parse(const char *s, enum compress_kind *ret) {
        static const struct {
                const char *name;
                enum compress_kind kind;
        } names[] = {
                {"none", COMPRESS_NONE}, {"zstd", COMPRESS_ZSTD},    {"xz", COMPRESS_XZ},
                {"gzip", COMPRESS_GZIP}, {"gz", COMPRESS_GZIP},      {"zlib", COMPRESS_GZIP},
                {"deflate", COMPRESS_GZIP},
        };
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                if (streq(s, names[i].name)) {
                        *ret = names[i].kind;
                        return 0;
                }
        return -EINVAL;
}

/* ---- helpers shared by the writers ---- */

unsigned format_threads(const struct format_options *o) {
        long n = o && o->threads ? (long)o->threads : sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1)
                n = 1;
        return n > (long)FORMAT_MAX_THREADS ? FORMAT_MAX_THREADS : (unsigned)n;
}

bool format_is_zero(const void *buf, size_t len) {
        typedef uint64_t __attribute__((may_alias)) word;
        const uint8_t *p = buf;
        for (; len && ((uintptr_t)p & 7); p++, len--)
                if (*p)
                        return false;
        const word *w = (const word *)p;
        /* 64 bytes per test: the OR chain vectorises and the early exit
         * costs one branch per cache line. */
        for (; len >= 64; w += 8, len -= 64)
                if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
                        return false;
        for (p = (const uint8_t *)w; len; p++, len--)
                if (*p)
                        return false;
        return true;
}

int format_pread(int fd, void *buf, size_t len, uint64_t off) {
        uint8_t *p = buf;
        while (len) {
                ssize_t n = pread(fd, p, len, (off_t)off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0) {
                        memset(p, 0, len);
                        break;
                }
                p += n;
                off += (uint64_t)n;
                len -= (size_t)n;
        }
        return 0;
}

/* ---- checksums, computed beside the writing ----
 *
 * Each digest runs on its own thread over an ordered ring of HQ_SLOTS
 * items (a buffer of up to HQ_BUF bytes, or a run of zeros), so hashing
 * overlaps the reads and writes and SHA-256 and SHA-512 run in parallel.
 * The writer fills the item at `head`; an item is reused once every
 * digest thread has passed it. Memory: HQ_SLOTS x HQ_BUF = 4 MiB.
 */

#define HQ_SLOTS 4u
#define HQ_BUF (1u << 20)
#define MAX_DIGESTS 2

struct hq_item {
        uint8_t *buf;
        size_t len;     /* bytes in buf */
        uint64_t zeros; /* or: this many zero bytes */
};

struct hq {
        pthread_mutex_t mu;
        pthread_cond_t more, room;
        struct hq_item items[HQ_SLOTS];
        uint64_t head;               /* items published */
        uint64_t tail[MAX_DIGESTS];  /* items hashed, per digest */
        bool open;                   /* items[head] is being filled */
        bool done, failed;
        unsigned n;
        struct digest md[MAX_DIGESTS];
        pthread_t tid[MAX_DIGESTS];
        bool started[MAX_DIGESTS];
};

struct hasher_arg {
        struct hq *q;
        unsigned i;
};

static void *hasher_main(void *arg) {
        const struct hasher_arg *a = arg;
        struct hq *q = a->q;
        struct digest *md = &q->md[a->i];
        bool ok = true;
        pthread_mutex_lock(&q->mu);
        for (;;) {
                while (!q->done && q->tail[a->i] == q->head)
                        pthread_cond_wait(&q->more, &q->mu);
                if (q->tail[a->i] == q->head)
                        break;
                const struct hq_item *it = &q->items[q->tail[a->i] % HQ_SLOTS];
                pthread_mutex_unlock(&q->mu);
                if (it->len)
                        ok = ok && digest_update(md, it->buf, it->len) == 0;
                for (uint64_t left = it->zeros; left && ok;) {
                        size_t k = left < sizeof(zero_buf) ? (size_t)left : sizeof(zero_buf);
                        ok = digest_update(md, zero_buf, k) == 0;
                        left -= k;
                }
                pthread_mutex_lock(&q->mu);
                q->tail[a->i]++;
                if (!ok)
                        q->failed = true;
                pthread_cond_signal(&q->room);
        }
        pthread_mutex_unlock(&q->mu);
        return NULL;
}

static uint64_t hq_min_tail(const struct hq *q) {
        uint64_t m = q->tail[0];
        for (unsigned i = 1; i < q->n; i++)
                if (q->tail[i] < m)
                        m = q->tail[i];
        return m;
}

/* Publishes the open item. */
static void hq_publish(struct hq *q) {
        if (!q->open)
                return;
        pthread_mutex_lock(&q->mu);
        q->head++;
        q->open = false;
        pthread_cond_broadcast(&q->more);
        pthread_mutex_unlock(&q->mu);
}

/* Opens a fresh item at head (waiting until every digest is done with it). */
static struct hq_item *hq_open(struct hq *q) {
        hq_publish(q);
        pthread_mutex_lock(&q->mu);
        while (q->head - hq_min_tail(q) >= HQ_SLOTS)
                pthread_cond_wait(&q->room, &q->mu);
        pthread_mutex_unlock(&q->mu);
        struct hq_item *it = &q->items[q->head % HQ_SLOTS];
        if (!it->buf)
                it->buf = xmalloc(HQ_BUF);
        it->len = 0;
        it->zeros = 0;
        q->open = true;
        return it;
}

static void hq_data(struct hq *q, const uint8_t *p, size_t n) {
        while (n) {
                struct hq_item *it = &q->items[q->head % HQ_SLOTS];
                if (!q->open || it->zeros || it->len == HQ_BUF)
                        it = hq_open(q);
                size_t k = HQ_BUF - it->len < n ? HQ_BUF - it->len : n;
                memcpy(it->buf + it->len, p, k);
                it->len += k;
                p += k;
                n -= k;
        }
}

static void hq_zeros(struct hq *q, uint64_t n) {
        struct hq_item *it = &q->items[q->head % HQ_SLOTS];
        if (!q->open || it->len)
                it = hq_open(q);
        it->zeros += n;
}

/* Stops the threads (after the published items). Returns -EIO if a digest
 * failed. */
static int hq_stop(struct hq *q) {
        hq_publish(q);
        pthread_mutex_lock(&q->mu);
        q->done = true;
        pthread_cond_broadcast(&q->more);
        pthread_mutex_unlock(&q->mu);
        for (unsigned i = 0; i < q->n; i++)
                if (q->started[i]) {
                        pthread_join(q->tid[i], NULL);
                        q->started[i] = false;
                }
        return q->failed ? -EIO : 0;
}

/* ---- the artifact stream ---- */

struct format_out {
        int fd;
        bool regular;            /* pwrite at fpos; zero runs become holes */
        enum compress_kind fc;
        uint64_t pos;            /* logical bytes, before file compression */
        uint64_t fpos;           /* bytes of the artifact */
        struct hq *hq;           /* NULL when no checksum was asked for */
        struct hasher_arg args[MAX_DIGESTS];
        ZSTD_CCtx *zstd;
        lzma_stream xz;
        bool xz_on;
        z_stream gz;
        bool gz_on;
        uint8_t *cbuf;           /* compressor output */
        uint8_t *iobuf;          /* copy buffer, allocated on first use */
};

struct format_out *format_out_free(struct format_out *out) {
        if (!out)
                return NULL;
        if (out->hq) {
                struct hq *q = out->hq;
                (void)hq_stop(q);
                for (unsigned i = 0; i < q->n; i++)
                        digest_free(&q->md[i]);
                for (unsigned i = 0; i < HQ_SLOTS; i++)
                        free(q->items[i].buf);
                pthread_cond_destroy(&q->more);
                pthread_cond_destroy(&q->room);
                pthread_mutex_destroy(&q->mu);
                free(q);
        }
        ZSTD_freeCCtx(out->zstd);
        if (out->xz_on)
                lzma_end(&out->xz);
        if (out->gz_on)
                deflateEnd(&out->gz);
        free(out->cbuf);
        free(out->iobuf);
        free(out);
        return NULL;
}

/* Sets up one thread per digest asked for. */
static int hashers_start(struct format_out *out, const struct format_options *o) {
        enum digest_alg types[MAX_DIGESTS];
        unsigned n = 0;
        if (o->sha256)
                types[n++] = DIGEST_SHA256;
        if (o->sha512)
                types[n++] = DIGEST_SHA512;
        if (!n)
                return 0;
        struct hq *q = out->hq = xcalloc(1, sizeof(*q));
        pthread_mutex_init(&q->mu, NULL);
        pthread_cond_init(&q->more, NULL);
        pthread_cond_init(&q->room, NULL);
        for (unsigned i = 0; i < n; i++) {
                int r = digest_init(&q->md[i], types[i]);
                if (r < 0)
                        return r;
                q->n = i + 1;
        }
        for (unsigned i = 0; i < n; i++) {
                out->args[i] = (struct hasher_arg){q, i};
                int r = pthread_create(&q->tid[i], NULL, hasher_main, &out->args[i]);
                if (r)
                        return -r;
                q->started[i] = true;
        }
        return 0;
}

static int compressor_init(struct format_out *out, const struct format_options *o) {
        unsigned threads = format_threads(o);
        switch (o->file_compression) {
        case COMPRESS_NONE:
                return 0;
        case COMPRESS_ZSTD:
                out->zstd = ZSTD_createCCtx();
                if (!out->zstd)
                        return -ENOMEM;
                /* As the zstd CLI: content checksum on. nbWorkers > 0 makes
                 * compression asynchronous on that many threads. */
                if (ZSTD_isError(ZSTD_CCtx_setParameter(out->zstd, ZSTD_c_compressionLevel,
                                                        o->level ? o->level : 3)) ||
                    ZSTD_isError(ZSTD_CCtx_setParameter(out->zstd, ZSTD_c_checksumFlag, 1)))
                        return -EINVAL;
                if (threads > 1)
                        (void)ZSTD_CCtx_setParameter(out->zstd, ZSTD_c_nbWorkers, (int)threads);
                break;
        case COMPRESS_XZ: {
                uint32_t preset = o->level > 0 ? (uint32_t)o->level : LZMA_PRESET_DEFAULT;
                lzma_ret lr;
                out->xz = (lzma_stream)LZMA_STREAM_INIT;
                if (threads > 1) {
                        lzma_mt mt = {
                                .threads = threads,
                                .preset = preset,
                                .check = LZMA_CHECK_CRC64,
                        };
                        lr = lzma_stream_encoder_mt(&out->xz, &mt);
                } else
                        lr = lzma_easy_encoder(&out->xz, preset, LZMA_CHECK_CRC64);
                if (lr != LZMA_OK)
                        return lr == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
                out->xz_on = true;
                break;
        }
        case COMPRESS_GZIP:
                /* windowBits 15 + 16: a gzip header and trailer. */
                if (deflateInit2(&out->gz, o->level ? o->level : Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                                 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                        return -EINVAL;
                out->gz_on = true;
                break;
        default:
                return -EINVAL;
        }
        out->cbuf = xmalloc(CBUF_SIZE);
        return 0;
}

int format_out_new(int fd, const struct format_options *o, struct format_out **ret) {
        struct stat st;
        if (fd < 0 || !o)
                return -EINVAL;
        if (fstat(fd, &st) < 0)
                return -errno;
        struct format_out *out = xcalloc(1, sizeof(*out));
        out->fd = fd;
        out->fc = o->file_compression;
        out->regular = S_ISREG(st.st_mode) && o->file_compression == COMPRESS_NONE;
        int r = compressor_init(out, o);
        if (r >= 0)
                r = hashers_start(out, o);
        if (r < 0) {
                format_out_free(out);
                return r;
        }
        *ret = out;
        return 0;
}

uint64_t format_out_pos(const struct format_out *out) { return out->pos; }

/* Writes final bytes of the artifact at fpos (not hashed here). */
static int put(struct format_out *out, const uint8_t *p, size_t n) {
        while (n) {
                ssize_t w = out->regular ? pwrite(out->fd, p, n, (off_t)out->fpos)
                                         : write(out->fd, p, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                n -= (size_t)w;
                out->fpos += (uint64_t)w;
        }
        return 0;
}

/* The final bytes of the artifact: hash them, write them. */
static int sink(struct format_out *out, const uint8_t *p, size_t n) {
        if (out->hq)
                hq_data(out->hq, p, n);
        return put(out, p, n);
}

/* Feeds n bytes to the file compressor (end: finish the stream) and sinks
 * what comes out. */
static int compress_feed(struct format_out *out, const uint8_t *p, size_t n, bool end) {
        int r;
        switch (out->fc) {
        case COMPRESS_ZSTD: {
                ZSTD_inBuffer in = {p, n, 0};
                for (;;) {
                        ZSTD_outBuffer ob = {out->cbuf, CBUF_SIZE, 0};
                        size_t z = ZSTD_compressStream2(out->zstd, &ob, &in,
                                                        end ? ZSTD_e_end : ZSTD_e_continue);
                        if (ZSTD_isError(z))
                                return -EIO;
                        if ((r = sink(out, out->cbuf, ob.pos)) < 0)
                                return r;
                        if (end ? z == 0 : in.pos == in.size)
                                return 0;
                }
        }
        case COMPRESS_XZ:
                out->xz.next_in = p;
                out->xz.avail_in = n;
                for (;;) {
                        out->xz.next_out = out->cbuf;
                        out->xz.avail_out = CBUF_SIZE;
                        lzma_ret lr = lzma_code(&out->xz, end ? LZMA_FINISH : LZMA_RUN);
                        if (lr != LZMA_OK && lr != LZMA_STREAM_END)
                                return lr == LZMA_MEM_ERROR ? -ENOMEM : -EIO;
                        if ((r = sink(out, out->cbuf, CBUF_SIZE - out->xz.avail_out)) < 0)
                                return r;
                        if (end ? lr == LZMA_STREAM_END : out->xz.avail_in == 0)
                                return 0;
                }
        case COMPRESS_GZIP:
                /* zlib counts in uInt: feed at most 1 GiB per round. */
                do {
                        size_t chunk = n < (1u << 30) ? n : (1u << 30);
                        bool last = end && chunk == n;
                        out->gz.next_in = (Bytef *)p;
                        out->gz.avail_in = (uInt)chunk;
                        for (;;) {
                                out->gz.next_out = out->cbuf;
                                out->gz.avail_out = CBUF_SIZE;
                                int zr = deflate(&out->gz, last ? Z_FINISH : Z_NO_FLUSH);
                                if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
                                        return -EIO;
                                if ((r = sink(out, out->cbuf, CBUF_SIZE - out->gz.avail_out)) < 0)
                                        return r;
                                if (last ? zr == Z_STREAM_END
                                         : out->gz.avail_in == 0 && out->gz.avail_out != 0)
                                        break;
                        }
                        p += chunk;
                        n -= chunk;
                } while (n);
                return 0;
        case COMPRESS_NONE:
                break;
        }
        return -EINVAL;
}

int format_out_write(struct format_out *out, const void *buf, size_t len) {
        out->pos += len;
        if (out->fc == COMPRESS_NONE)
                return sink(out, buf, len);
        return compress_feed(out, buf, len, false);
}

int format_out_zeros(struct format_out *out, uint64_t len) {
        if (out->regular) {
                /* A hole: hash the zeros, write nothing. */
                if (out->hq && len)
                        hq_zeros(out->hq, len);
                out->pos += len;
                out->fpos += len;
                return 0;
        }
        while (len) {
                size_t n = len < sizeof(zero_buf) ? (size_t)len : sizeof(zero_buf);
                int r = format_out_write(out, zero_buf, n);
                if (r < 0)
                        return r;
                len -= n;
        }
        return 0;
}

/* copy_file_range while nothing needs to see the bytes: in-kernel, a reflink
 * where the filesystem shares extents. Returns bytes copied (short at the
 * input's EOF or when the kernel declines), or -errno. */
static int64_t copy_in_kernel(struct format_out *out, int in_fd, uint64_t off, uint64_t len) {
        loff_t ioff = (loff_t)off, ooff = (loff_t)out->fpos;
        uint64_t done = 0;
        while (done < len) {
                uint64_t want = len - done < (1u << 30) ? len - done : (1u << 30);
                ssize_t n = copy_file_range(in_fd, &ioff, out->fd, &ooff, (size_t)want, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                            errno == EOPNOTSUPP || errno == ETXTBSY)
                                break; /* the read/write path does the rest */
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (uint64_t)n;
                out->fpos += (uint64_t)n;
                out->pos += (uint64_t)n;
        }
        return (int64_t)done;
}

int format_out_copy(struct format_out *out, int in_fd, uint64_t off, uint64_t len) {
        int r;
        if (out->regular && !out->hq) {
                int64_t n = copy_in_kernel(out, in_fd, off, len);
                if (n < 0)
                        return (int)n;
                off += (uint64_t)n;
                len -= (uint64_t)n;
        }
        while (len && out->regular && out->hq) {
                /* Read straight into the digests' ring: no extra copy. */
                size_t n = len < HQ_BUF ? (size_t)len : HQ_BUF;
                struct hq_item *it = hq_open(out->hq);
                if ((r = format_pread(in_fd, it->buf, n, off)) < 0)
                        return r;
                it->len = n;
                if ((r = put(out, it->buf, n)) < 0)
                        return r;
                hq_publish(out->hq);
                out->pos += n;
                off += n;
                len -= n;
        }
        if (len && !out->iobuf)
                out->iobuf = xmalloc(IOBUF_SIZE);
        while (len) {
                size_t n = len < IOBUF_SIZE ? (size_t)len : IOBUF_SIZE;
                if ((r = format_pread(in_fd, out->iobuf, n, off)) < 0 ||
                    (r = format_out_write(out, out->iobuf, n)) < 0)
                        return r;
                off += n;
                len -= n;
        }
        return 0;
}

int format_out_finish(struct format_out *out, struct format_result *res) {
        int r;
        if (out->fc != COMPRESS_NONE && (r = compress_feed(out, NULL, 0, true)) < 0)
                return r;
        /* Trailing holes: the size comes from ftruncate. */
        if (out->regular && ftruncate(out->fd, (off_t)out->fpos) < 0)
                return -errno;
        struct format_result fr = {.bytes_written = out->fpos};
        if (out->hq) {
                struct hq *q = out->hq;
                if ((r = hq_stop(q)) < 0)
                        return r;
                for (unsigned i = 0; i < q->n; i++) {
                        struct digest *d = &q->md[i];
                        if ((r = digest_final(d, d->alg == DIGEST_SHA256 ? fr.sha256 : fr.sha512)) < 0)
                                return r;
                }
        }
        *res = fr;
        return 0;
}

/* Same filesystem as the output: same space, and copy_file_range can share
 * extents. */
int format_spool_open(const struct format_options *o, int out_fd) {
        char link[64], path[PATH_MAX];
        const char *dirs[4] = {o->tmp_dir, NULL, getenv("TMPDIR"), "/var/tmp"};
        if (!o->tmp_dir) {
                snprintf(link, sizeof(link), "/proc/self/fd/%d", out_fd);
                ssize_t n = readlink(link, path, sizeof(path) - 1);
                if (n > 0 && path[0] == '/') {
                        path[n] = 0;
                        char *slash = strrchr(path, '/');
                        slash[slash == path] = 0; /* "/x" -> "/" */
                        dirs[1] = path;
                }
        }
        int r = -ENOENT;
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                if (!dirs[i] || !*dirs[i] || (i > 0 && o->tmp_dir))
                        continue;
                int fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
                if (fd >= 0)
                        return fd;
                r = -errno;
                if (errno == EOPNOTSUPP || errno == EISDIR) { /* no O_TMPFILE here */
                        _cleanup_free_ char *t = xasprintf("%s/.kiln-spool-XXXXXX", dirs[i]);
                        fd = mkostemp(t, O_CLOEXEC);
                        if (fd >= 0) {
                                unlink(t);
                                return fd;
                        }
                        r = -errno;
                }
        }
        return r;
}

/* ---- the raw writer ---- */

/* Writes n bytes read from the input at offset off: all-zero pieces (split
 * at ZERO_BLOCK boundaries of the input) become zero runs, the rest is
 * written, each run in one call. */
static int raw_emit(struct format_out *out, const uint8_t *buf, size_t n, uint64_t off) {
        size_t run = 0;
        bool run_zero = false;
        for (size_t i = 0; i < n;) {
                size_t piece = ZERO_BLOCK - (size_t)((off + i) % ZERO_BLOCK);
                if (piece > n - i)
                        piece = n - i;
                bool z = format_is_zero(buf + i, piece);
                if (i > run && z != run_zero) {
                        int r = run_zero ? format_out_zeros(out, i - run)
                                         : format_out_write(out, buf + run, i - run);
                        if (r < 0)
                                return r;
                        run = i;
                }
                run_zero = z;
                i += piece;
        }
        if (run == n)
                return 0;
        return run_zero ? format_out_zeros(out, n - run) : format_out_write(out, buf + run, n - run);
}

int format_scan(int fd, uint64_t size, uint64_t block, void (*nonzero)(void *ctx, uint64_t b), void *ctx) {
        _cleanup_free_ uint8_t *buf = xmalloc(IOBUF_SIZE);
        for (uint64_t off = 0; off < size;) {
                uint64_t ds, de;
                int r = fs_next_data(fd, off, size, &ds, &de);
                if (r < 0)
                        return r;
                for (off = ds; off < de;) {
                        size_t n = de - off < IOBUF_SIZE ? (size_t)(de - off) : IOBUF_SIZE;
                        if ((r = format_pread(fd, buf, n, off)) < 0)
                                return r;
                        for (size_t i = 0; i < n;) {
                                uint64_t b = (off + i) / block;
                                size_t piece = (size_t)((b + 1) * block - (off + i) < n - i ? (b + 1) * block - (off + i)
                                                                                            : n - i);
                                if (!format_is_zero(buf + i, piece))
                                        nonzero(ctx, b);
                                i += piece;
                        }
                        off += n;
                }
        }
        return 0;
}

int format_out_raw(struct format_out *out, int in_fd, uint64_t in_size, uint64_t off, uint64_t len) {
        int r;
        if (off > in_size || len > in_size - off) {
                /* the part past the input's end reads as zeros */
                uint64_t in = off < in_size ? in_size - off : 0;
                if ((r = format_out_raw(out, in_fd, in_size, off, in)) < 0)
                        return r;
                return format_out_zeros(out, len - in);
        }
        if (len && !out->iobuf)
                out->iobuf = xmalloc(IOBUF_SIZE);
        for (uint64_t end = off + len; off < end;) {
                uint64_t ds, de;
                if ((r = fs_next_data(in_fd, off, end, &ds, &de)) < 0)
                        return r;
                if ((r = format_out_zeros(out, ds - off)) < 0)
                        return r;
                for (off = ds; off < de;) {
                        /* Chunks end on ZERO_BLOCK boundaries (but at the extent's end). */
                        uint64_t stop = off + IOBUF_SIZE;
                        stop = stop < de ? stop - stop % ZERO_BLOCK : de;
                        size_t n = (size_t)(stop - off);
                        if ((r = format_pread(in_fd, out->iobuf, n, off)) < 0 ||
                            (r = raw_emit(out, out->iobuf, n, off)) < 0)
                                return r;
                        off = stop;
                }
        }
        return 0;
}

static int raw_write(int raw_fd, uint64_t size, int out_fd, const struct format_options *o,
                     struct format_result *res) {
        _cleanup_format_out_ struct format_out *out = NULL;
        int r;

        if (raw_fd < 0 || !res)
                return -EINVAL;
        if ((r = format_out_new(out_fd, o, &out)) < 0)
                return r;
        (void)posix_fadvise(raw_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        if ((r = format_out_raw(out, raw_fd, size, 0, size)) < 0)
                return r;
        return format_out_finish(out, res);
}
