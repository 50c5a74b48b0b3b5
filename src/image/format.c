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

#include "base/util.h"

#include <fcntl.h>
#include <limits.h>
#include <lzma.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

/* Zeros to hash or compress in place of holes. In .bss: never written, so
 * it maps the kernel's shared zero page and costs no memory. */
static uint8_t zero_buf[256 * 1024];

#define CBUF_SIZE (1u << 20)   /* file compressor output per call */
#define IOBUF_SIZE (1u << 20)  /* copy buffer when bytes must be seen */
#define RAW_CHUNK (1u << 20)   /* raw writer read size */
#define ZERO_BLOCK (64u * 1024) /* raw writer: aligned zero blocks become holes */

/* ---- the table ---- */

static int raw_write(int raw_fd, uint64_t size, int out_fd, const struct format_options *o,
                     struct format_result *res);

static const struct format_writer raw_writer = {
        .name = "raw",
        .extension = "raw",
        .write = raw_write,
};

const struct format_writer *const format_writers[] = {&raw_writer, &qcow2_writer, NULL};

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

int format_next_data(int fd, uint64_t off, uint64_t size, uint64_t *ret_start,
                     uint64_t *ret_end) {
        if (off >= size) {
                *ret_start = *ret_end = size;
                return 0;
        }
        off_t ds = lseek(fd, (off_t)off, SEEK_DATA);
        if (ds < 0) {
                if (errno == ENXIO) { /* only a hole (or EOF) from off on */
                        *ret_start = *ret_end = size;
                        return 0;
                }
                if (errno != EINVAL)
                        return -errno;
                /* No SEEK_DATA here: everything is data. */
                *ret_start = off;
                *ret_end = size;
                return 0;
        }
        if ((uint64_t)ds >= size) {
                *ret_start = *ret_end = size;
                return 0;
        }
        off_t de = lseek(fd, ds, SEEK_HOLE);
        if (de < 0)
                return -errno;
        *ret_start = (uint64_t)ds;
        *ret_end = (uint64_t)de < size ? (uint64_t)de : size;
        return 0;
}

/* ---- the artifact stream ---- */

struct format_out {
        int fd;
        bool regular;            /* pwrite at fpos; zero runs become holes */
        enum compress_kind fc;
        uint64_t pos;            /* logical bytes, before file compression */
        uint64_t fpos;           /* bytes of the artifact */
        EVP_MD_CTX *md[2];       /* sha256, sha512 (NULL when not asked for) */
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
        for (size_t i = 0; i < ARRAY_SIZE(out->md); i++)
                EVP_MD_CTX_free(out->md[i]);
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

static int md_new(const EVP_MD *type, EVP_MD_CTX **ret) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        if (!c)
                return -ENOMEM;
        if (!EVP_DigestInit_ex(c, type, NULL)) {
                EVP_MD_CTX_free(c);
                return -EIO;
        }
        *ret = c;
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
        int r = 0;
        if (o->sha256)
                r = md_new(EVP_sha256(), &out->md[0]);
        if (r >= 0 && o->sha512)
                r = md_new(EVP_sha512(), &out->md[1]);
        if (r >= 0)
                r = compressor_init(out, o);
        if (r < 0) {
                format_out_free(out);
                return r;
        }
        *ret = out;
        return 0;
}

uint64_t format_out_pos(const struct format_out *out) { return out->pos; }

static int hash(struct format_out *out, const void *p, size_t n) {
        for (size_t i = 0; i < ARRAY_SIZE(out->md); i++)
                if (out->md[i] && !EVP_DigestUpdate(out->md[i], p, n))
                        return -EIO;
        return 0;
}

/* The final bytes of the artifact: hash them, write them at fpos. */
static int sink(struct format_out *out, const uint8_t *p, size_t n) {
        int r = hash(out, p, n);
        if (r < 0)
                return r;
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
                for (uint64_t left = len; left;) {
                        size_t n = left < sizeof(zero_buf) ? (size_t)left : sizeof(zero_buf);
                        int r = hash(out, zero_buf, n);
                        if (r < 0)
                                return r;
                        left -= n;
                }
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
        if (out->regular && !out->md[0] && !out->md[1]) {
                int64_t n = copy_in_kernel(out, in_fd, off, len);
                if (n < 0)
                        return (int)n;
                off += (uint64_t)n;
                len -= (uint64_t)n;
        }
        if (len && !out->iobuf)
                out->iobuf = xmalloc(IOBUF_SIZE);
        while (len) {
                size_t n = len < IOBUF_SIZE ? (size_t)len : IOBUF_SIZE;
                int r = format_pread(in_fd, out->iobuf, n, off);
                if (r >= 0)
                        r = format_out_write(out, out->iobuf, n);
                if (r < 0)
                        return r;
                off += n;
                len -= n;
        }
        return 0;
}

static void to_hex(const unsigned char *md, unsigned len, char *hex) {
        static const char digits[] = "0123456789abcdef";
        for (unsigned i = 0; i < len; i++) {
                hex[2 * i] = digits[md[i] >> 4];
                hex[2 * i + 1] = digits[md[i] & 15];
        }
        hex[2 * len] = 0;
}

int format_out_finish(struct format_out *out, struct format_result *res) {
        int r;
        if (out->fc != COMPRESS_NONE && (r = compress_feed(out, NULL, 0, true)) < 0)
                return r;
        /* Trailing holes: the size comes from ftruncate. */
        if (out->regular && ftruncate(out->fd, (off_t)out->fpos) < 0)
                return -errno;
        struct format_result fr = {.bytes_written = out->fpos};
        char *hex[2] = {fr.sha256, fr.sha512};
        for (size_t i = 0; i < ARRAY_SIZE(out->md); i++) {
                unsigned char md[EVP_MAX_MD_SIZE];
                unsigned mdlen = 0;
                if (!out->md[i])
                        continue;
                if (!EVP_DigestFinal_ex(out->md[i], md, &mdlen) || mdlen != (i ? 64u : 32u))
                        return -EIO;
                to_hex(md, mdlen, hex[i]);
        }
        *res = fr;
        return 0;
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

static int raw_write(int raw_fd, uint64_t size, int out_fd, const struct format_options *o,
                     struct format_result *res) {
        _cleanup_format_out_ struct format_out *out = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        int r;

        if (raw_fd < 0 || !res)
                return -EINVAL;
        if ((r = format_out_new(out_fd, o, &out)) < 0)
                return r;
        buf = xmalloc(RAW_CHUNK);
        (void)posix_fadvise(raw_fd, 0, 0, POSIX_FADV_SEQUENTIAL);

        for (uint64_t off = 0; off < size;) {
                uint64_t ds, de;
                if ((r = format_next_data(raw_fd, off, size, &ds, &de)) < 0)
                        return r;
                if ((r = format_out_zeros(out, ds - off)) < 0)
                        return r;
                for (off = ds; off < de;) {
                        /* Chunks end on ZERO_BLOCK boundaries (but at the extent's end). */
                        uint64_t end = off + RAW_CHUNK;
                        end = end < de ? end - end % ZERO_BLOCK : de;
                        size_t n = (size_t)(end - off);
                        if ((r = format_pread(raw_fd, buf, n, off)) < 0 ||
                            (r = raw_emit(out, buf, n, off)) < 0)
                                return r;
                        off = end;
                }
        }
        return format_out_finish(out, res);
}
