/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outputs.h — the image stage of a build: from a finished root tree to the
 * files users ship, in a stable, documented place:
 *
 *   OUTPUT/<image-name>/<image-name>.<ext>[.zst|.xz|.gz]   one per outputs: entry
 *   OUTPUT/<image-name>/SHA256SUMS (and SHA512SUMS when asked for)
 *   OUTPUT/<image-name>/kiln-manifest.json   what went in, what came out
 *   OUTPUT/packer-manifest.json              Packer's manifest format, one entry
 *                                            per build, last_run_uuid
 *
 * Atomicity: everything is written in OUTPUT/.<image-name>.tmp-XXXXXX/ and
 * renamed into place only when all of it is complete; the old
 * kiln-manifest.json is removed first and the new one renamed last, so its
 * presence means the folder is complete and consistent. A killed build
 * leaves only a dot-named temporary folder, removed by the next run.
 *
 * Caching: the assembly key hashes the tree's cache key, the disk and
 * outputs settings and SOURCE_DATE_EPOCH; when kiln-manifest.json records
 * the same key and every artifact is present with its recorded size,
 * nothing is rebuilt.
 */
#pragma once

#include "image/artifact.h"
#include "image/disk.h"
#include "image/format.h"
#include "spec/section.h"
#include "spec/spec.h"

#include <stdint.h>

/* ---- the image engine's spec sections (section.c) ----
 * disk: and outputs: are the image engine's: it registers them with the
 * spec layer (spec/section.h; the pipeline assembles the table), checks
 * them when a spec loads, and reads them back as these structs. Strings
 * are borrowed from the spec. */

struct image_disk {
        uint64_t size;               /* bytes; DISK_DEFAULT_SIZE when not written */
        const char *seed;            /* UUID seed; NULL: the tree's cache key */
        const char *kernel_cmdline;  /* appended to the kernel's; NULL: nothing */
        const char *root_fs;         /* "ext4", "xfs"; NULL: ext4 */
        struct disk_part_req *parts; /* owned; NULL: the default layout */
        size_t nparts;
};

struct image_output {
        const struct format_writer *format;
        enum compress_kind compress; /* whole file (compress:) */
        enum compress_kind clusters; /* qcow2 clusters (clusters:) */
        bool sha256, sha512;         /* checksums: */
};

struct image_outputs {
        struct image_output *v;
        size_t n;
};

extern const struct spec_section image_disk_section, image_outputs_section;
/* b's parsed sections: NULL when b has none, was not needed, or the spec
 * was loaded without the image sections. */
const struct image_disk *image_disk_of(const struct spec_build *b);
const struct image_outputs *image_outputs_of(const struct spec_build *b);
/* The output of b a boot check boots: QEMU boots it as it is
 * (FORMAT_BOOTABLE, not file-compressed), the highest boot_rank, the
 * first of those. Its file name in *ret_file (owned); -ENOENT when there
 * is none. */
int image_boot_output(const struct spec_build *b, char **ret_file);
/* "raw or qcow2": the formats QEMU boots, for messages. Owned. */
char *image_bootable_formats(void);

struct output_options {
        const char *output_dir;      /* "output" by default */
        const char *scratch_dir;     /* per build, on the same filesystem as the layers */
        const char *run_uuid;        /* this kiln run (Packer's packer_run_uuid) */
        uint64_t source_date_epoch;
        unsigned threads;            /* for compression; 0 = online CPUs */
        int log_fd;                  /* tool output */
        bool force;                  /* rebuild even when up to date */
        bool sha512;                 /* SHA-512 of every artifact too (a publisher needs it) */
};

/* What the image stage made: the set (image/artifact.h: identity, files,
 * sizes, hashes; set.dir is OUTPUT/<name>), which the store and publishing
 * take in memory, and how long it took. */
struct output_result {
        bool up_to_date;             /* nothing was rebuilt */
        struct artifact_set set;     /* set.files[i].elapsed_ms: writing each */
        uint64_t assemble_ms;        /* disk assembly */
        uint64_t elapsed_ms;
};

/* Builds b's outputs from its tree (layers topmost first; tree_key is the
 * top layer's cache key; record_path is the build's record.json, whose
 * packages go into the manifest). Returns 0, or -errno with details in the
 * log. A build without outputs: returns 0 with an empty set. An up-to-date
 * folder's set is read back with artifact_set_read. */
int outputs_build(const struct spec *s, const struct spec_build *b, const char *const *layers,
                  size_t nlayers, const char *tree_key, const char *record_path,
                  const struct output_options *o, struct output_result *ret);
void output_result_done(struct output_result *r);

/* Adds this run's builds to OUTPUT/packer-manifest.json (keeping earlier
 * entries, as Packer does) and sets last_run_uuid. */
int packer_manifest_update(const char *output_dir, const char *run_uuid,
                           const struct spec_build *const *builds,
                           const struct output_result *results, size_t n, uint64_t build_time);

/* A random RFC 4122 v4 UUID in text form. */
void uuid_random(char out[37]);
