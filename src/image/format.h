/* SPDX-License-Identifier: Apache-2.0 */
/*
 * format.h — output format writers: a raw disk image in, one artifact out.
 *
 * Each format is a `struct format_writer` in one table (raw, qcow2, vmdk,
 * ova; later vhd, gce tar.gz). A writer streams: it reads the raw image (skipping
 * holes via SEEK_DATA/SEEK_HOLE and all-zero clusters) and writes the
 * artifact strictly in file order, once; the artifact's checksums are
 * computed over the bytes as they are written, never by reading the file
 * back. A whole-file compressor (zstd, xz, gzip) can be stacked on any
 * writer's output in the same pass.
 *
 * Writers never create the final file name: they write to the fd they are
 * given (the caller renames a temporary file into place when everything
 * succeeded). Memory use is bounded (see each writer), not proportional to
 * the image size.
 *
 *   raw    a sparse copy: holes and aligned all-zero 64 KiB blocks of the
 *          input become holes in the output (or zeros fed to the file
 *          compressor). Memory: one 1 MiB buffer.
 *   qcow2  qcow2 v3, 64 KiB clusters, 16-bit refcounts, no backing file;
 *          zero clusters are left unallocated; optional per-cluster zstd or
 *          deflate compression on `threads` threads. Memory: 2 bytes per
 *          virtual cluster in 512 MiB ranges that hold data (32 KiB per GiB),
 *          2 bytes per host cluster, 1 MiB of cluster buffers per thread and
 *          the codecs' contexts (under 1 MiB each), and 16 MiB of the input
 *          mapped at a time by the uncompressed scan; compressed clusters
 *          are spooled to an unlinked temporary file (see qcow2.c for why).
 *   vmdk   streamOptimized (vSphere): KDMV v3, 64 KiB grains deflated on
 *          `threads` threads, grain tables and directory after the grains,
 *          footer and end-of-stream marker; written front to back. Memory:
 *          1 MiB of grain buffers per thread, 4 bytes per 32 MiB of disk.
 *   ova    a tar of .ovf, .mf and the vmdk (written first into a spool, as
 *          the tar's headers and the .mf need its size and hash). Memory:
 *          the vmdk's and the envelope's few KiB.
 *
 * The writers that compress in parallel do it on zpipe.h's ordered
 * pipeline.
 *
 * Checksums run on one thread per digest beside the writing (4 MiB of
 * buffers).
 *
 * File compression memory is the codec's (peak RSS of a whole raw write,
 * measured): zstd level 3 15 MiB on one thread, 65 MiB with 2 workers; xz -6
 * 107 MiB on one thread, 283 MiB on two; gzip 12 MiB.
 */
#pragma once

#include "base/hash.h"
#include "spec/schema.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum compress_kind { COMPRESS_NONE, COMPRESS_ZSTD, COMPRESS_XZ, COMPRESS_GZIP };

/* What a writer may know about the image besides its bytes (borrowed; a
 * NULL format_options.image means nothing is known and defaults apply).
 * The VMDK descriptor names its file and takes its identity from here, the
 * OVA envelope everything. */
struct format_image {
        const char *name;            /* the build's name ("minimal") */
        const char *file;            /* the artifact's file name ("minimal.vmdk") */
        const char *arch;            /* base/arch.h name: "x86_64", "aarch64" */
        const char *distribution;    /* the source's type ("debian", "ubuntu"), or NULL */
        const char *release;         /* its suite ("bookworm"), or NULL */
        const uint8_t *disk_guid;    /* 16 bytes, the GPT disk GUID: identity; or NULL */
        bool bios, uefi;             /* the partition layout boots with BIOS / UEFI */
        int64_t mtime;               /* file times inside archives (SOURCE_DATE_EPOCH) */
        const struct value *options; /* the outputs: entry (a map holding this
                                        format's options, checked when the spec
                                        loaded), or NULL */
};

struct format_options {
        /* qcow2: compress clusters (COMPRESS_NONE, COMPRESS_ZLIB-compatible
         * deflate via COMPRESS_GZIP, or COMPRESS_ZSTD) using `threads` threads
         * (0 = number of online CPUs). COMPRESS_XZ is -EOPNOTSUPP there; the
         * raw writer ignores this field. */
        enum compress_kind cluster_compression;
        int level;            /* 0: the codec's default (file: zstd 3, xz 6, gzip 6;
                               * qcow2 clusters: zstd 1 tuned, see qcow2.c, deflate 6);
                               * applies to whichever compression is on */
        unsigned threads;
        /* Whole-file compression of the artifact (".zst", ".xz", ".gz"). */
        enum compress_kind file_compression;
        /* Checksums to compute over the final bytes (after file compression). */
        bool sha256, sha512;
        /* Where the qcow2 writer spools compressed clusters (an unlinked
         * file). NULL: the output file's directory, else $TMPDIR, else
         * /var/tmp. */
        const char *tmp_dir;
        const struct format_image *image; /* NULL: nothing known (see above) */
};

struct format_result {
        uint64_t bytes_written;          /* size of the artifact */
        char sha256[SHA256_HEX_LEN + 1]; /* "" when not requested */
        char sha512[128 + 1];
        uint64_t data_bytes;             /* virtual bytes the artifact stores data for
                                            (vmdk: grains written); 0 when not counted */
};

/* What a format can do; callers ask these bits instead of naming formats. */
enum {
        FORMAT_BOOTABLE = 1 << 0,     /* QEMU boots the file as it is (boot checks) */
        FORMAT_NEEDS_SEEK = 1 << 1,   /* the writer seeks back in its output: no
                                         pipe, no file compressor on top */
        FORMAT_COMPRESSIBLE = 1 << 2, /* whole-file compression (compress:) applies */
};

/* An option an outputs: entry may give for this format beside the common
 * ones (format, compress, checksums): its key, type and allowed values as
 * a spec field (spec/schema.h), and `off`, the value that means "not used"
 * (accepted for every format). */
struct format_option {
        struct field field;
        const char *off;              /* e.g. "none"; NULL: no such value */
        const char *what;             /* "compresses clusters (...)": ends the message
                                         "only qcow2 <what>" for other formats */
};

/* One output format driver: one file (format.c holds raw, qcow2.c qcow2)
 * and one line in format_writers[]. Adding a format needs nothing else:
 * the spec's outputs: schema, the boot-check image choice, QEMU's format
 * probe and the file-name guess all read this table. */
struct format_writer {
        const char *name;        /* "raw", "qcow2" */
        const char *extension;   /* "raw", "qcow2" (before any ".zst") */
        const char *const *aliases; /* other extensions meaning this format ("img"), or NULL */
        unsigned caps;           /* FORMAT_* bits */
        int boot_rank;           /* FORMAT_BOOTABLE: which output a boot check boots
                                    when there are several (highest first) */
        const struct format_option *options; /* terminated by an empty key; NULL: none */
        /* Scores how surely the first bytes of a file (head, len bytes: up to
         * FORMAT_PROBE_BYTES, fewer for a short file) are this format's
         * output: 0 not this format, 100 its magic. A format without magic
         * (raw) answers 1 for anything: it is what is left. */
        int (*probe)(const uint8_t *head, size_t len);
        /* Optional, for a format whose magic is at the end of the file (a
         * fixed VHD is raw sectors and a 512-byte footer): scores its last
         * bytes (tail, len: up to FORMAT_PROBE_BYTES) the same way. The
         * format's score is the higher of the two. NULL: none. */
        int (*probe_tail)(const uint8_t *tail, size_t len);
        /* QEMU's block driver name when it is not `name` ("vpc" for vhd);
         * NULL: the same. */
        const char *qemu_driver;
        /* Writes the artifact for the raw image in raw_fd (size bytes; a
         * regular file) to out_fd (empty, at offset 0). Returns 0 or -errno:
         * -EINVAL bad options, -EOPNOTSUPP an unsupported combination,
         * -E2BIG an image over the format's size limit, -EIO a codec or
         * digest failure, other -errno from the system calls. res is written
         * only on success. */
        int (*write)(int raw_fd, uint64_t size, int out_fd, const struct format_options *o,
                     struct format_result *res);
        /* The largest image the format can hold (bytes; 0: no limit below
         * the disk's), and the limit in words for messages ("2 TiB: 32-bit
         * sector offsets in the grain tables"). A disk: size over it is a
         * spec error; write returns -E2BIG. */
        uint64_t max_size;
        const char *max_size_why;
};

#define FORMAT_PROBE_BYTES 512u

extern const struct format_writer *const format_writers[]; /* NULL-terminated */
const struct format_writer *format_find(const char *name);
/* The driver with the highest probe score for head; NULL only when no
 * driver accepts it (never with raw in the table). */
const struct format_writer *format_probe(const uint8_t *head, size_t len);
/* w's score for a file with these first and last bytes (tail NULL: not
 * known): the higher of probe and probe_tail. */
int format_score(const struct format_writer *w, const uint8_t *head, size_t len,
                 const uint8_t *tail, size_t tail_len);
/* format_probe with the file's last bytes too (for probe_tail). */
const struct format_writer *format_probe_ends(const uint8_t *head, size_t len,
                                              const uint8_t *tail, size_t tail_len);
/* format_probe_ends on the first and last FORMAT_PROBE_BYTES of fd
 * (pread). NULL with errno set when a read fails. */
const struct format_writer *format_probe_fd(int fd);
/* The format a file's name says: a driver's extension (or alias: "img"
 * is raw) that ends the name, "tar.gz" included; else the compression
 * suffix (".zst", ".xz", ".gz"; its kind in *ret_compress when not NULL)
 * comes off and the same is tried again; else the last extension is
 * returned as it is ("vhdx": formats kiln does not write). NULL when the
 * name has no extension. Owned by the caller. */
char *format_name_from_file(const char *file, enum compress_kind *ret_compress);

/* File-compression suffix (".zst", ".xz", ".gz", or ""). */
const char *compress_suffix(enum compress_kind k);
/* Parses "zstd", "xz", "gzip"/"gz", "zlib"/"deflate" (cluster compression),
 * "none". Returns 0, or -EINVAL for anything else (*ret untouched). */
int compress_parse(const char *s, enum compress_kind *ret);

/*
 * For writers only (format.c, qcow2.c): what the writers share. Callers use
 * the table above.
 */

/* The qcow2 and vmdk drivers by name, for their own tests (and the OVA
 * writer, which writes its disk with the vmdk one); everyone else asks the
 * table. */
extern const struct format_writer qcow2_writer, vmdk_writer;
/* The disk controllers the vmdk and ova formats' adapter: option names,
 * and that option, the same in both tables. */
extern const char *const vmdk_adapters[];
#define FORMAT_OPTION_ADAPTER                                                              \
        {{"adapter", FT_STRING, 0, NULL, vmdk_adapters,                                    \
          "the disk's controller: lsilogic (default), pvscsi, buslogic, ide"},             \
         NULL, "takes a disk controller (adapter:)"}

/* An unlinked temporary file for a writer's spool: in o->tmp_dir, else the
 * directory of out_fd's file (same filesystem: copy_file_range can share
 * extents), else $TMPDIR, else /var/tmp. Returns the fd or -errno. */
int format_spool_open(const struct format_options *o, int out_fd);

/* The artifact stream a writer writes through, strictly in order: it feeds
 * the file compressor when one is asked for, hashes the final bytes and
 * writes them to the fd. Logical zeros (format_out_zeros) become holes when
 * the output is a plain regular file, and are hashed without being written.
 * format_out_new returns 0, -ENOMEM/-EIO when a codec or digest cannot be
 * set up; the other calls 0 or -errno. format_out_free(NULL) is a no-op. */
struct format_out;
int format_out_new(int fd, const struct format_options *o, struct format_out **ret);
int format_out_write(struct format_out *out, const void *buf, size_t len);
int format_out_zeros(struct format_out *out, uint64_t len);
/* Copies len bytes of in_fd at offset off; bytes past in_fd's end are zeros.
 * Uses copy_file_range when nothing needs to see the bytes. */
int format_out_copy(struct format_out *out, int in_fd, uint64_t off, uint64_t len);
/* Writes len bytes of the raw image in_fd (in_size bytes) from offset off
 * as the raw writer does: holes and all-zero 64 KiB blocks of the input
 * become zero runs (holes in a plain output file), bytes at or past
 * in_size are zeros. Reads through a 1 MiB buffer kept in out. */
int format_out_raw(struct format_out *out, int in_fd, uint64_t in_size, uint64_t off, uint64_t len);
/* Calls nonzero(ctx, b) for each `block`-aligned block b (its index) of
 * the input (size bytes) that holds a non-zero byte, in increasing order,
 * at least once (more than once for a block larger than 1 MiB or split by
 * the file system's extents). Only data extents are read (SEEK_DATA), through
 * a 1 MiB buffer. 0 or -errno. */
int format_scan(int fd, uint64_t size, uint64_t block, void (*nonzero)(void *ctx, uint64_t b), void *ctx);
/* Bytes written so far, before file compression. */
uint64_t format_out_pos(const struct format_out *out);
/* Ends the compressed stream, sets the file's size, fills res. */
int format_out_finish(struct format_out *out, struct format_result *res);
struct format_out *format_out_free(struct format_out *out);
static inline void format_out_freep(struct format_out **p) { format_out_free(*p); }
#define _cleanup_format_out_ __attribute__((cleanup(format_out_freep)))

/* o->threads, or the number of online CPUs; at most FORMAT_MAX_THREADS. */
#define FORMAT_MAX_THREADS 64u
unsigned format_threads(const struct format_options *o);
/* True when all len bytes are zero. Costs about len / 16 GB/s. */
bool format_is_zero(const void *buf, size_t len);
/* Reads len bytes at off, zeros past the end of the file. 0 or -errno. */
int format_pread(int fd, void *buf, size_t len, uint64_t off);
