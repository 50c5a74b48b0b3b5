/* SPDX-License-Identifier: Apache-2.0 */
/*
 * artifact.h — what one build produced, as one value: struct artifact_set
 * (the image's identity and its files, with sizes and hashes), and the only
 * reader and writer of OUTPUT/<name>/kiln-manifest.json.
 *
 * The image stage makes a set (outputs_build) and hands it in memory to the
 * store (store_add_artifacts) and to publishing (publish_build); `kiln
 * images add DIR` and `kiln publish` read a folder into a set with
 * artifact_set_read. Nobody else parses a manifest.
 *
 * Where it lives: image/ writes the folder, and store/ and publish/ are
 * image/'s peers (engines may include each other), so both read the set
 * from here without depending on one another. It needs nothing of image/
 * but its place in the tree; nothing here knows formats or disks.
 *
 * The reader is strict and bounded (the manifest may come from anywhere a
 * user points `kiln images add` or `kiln publish` at):
 *   - the manifest is at most ARTIFACT_MANIFEST_MAX bytes, lists at most
 *     ARTIFACT_MAX_FILES artifacts and ARTIFACT_MAX_LABELS labels, and every
 *     string kept is at most ARTIFACT_STRING_MAX bytes;
 *   - schema_version, when present, is 1 (kiln always writes it; it may be
 *     left out of a hand-written manifest); name is a string; id, arch,
 *     role, assembly_key and tree.key are strings or null; labels is a map
 *     of scalars;
 *   - every artifact has a file that is a plain name inside the folder (no
 *     '/', no NUL, not "." or "..", not starting with '.'), listed once; a
 *     format string; a size that is an integer from 0 to INT64_MAX and
 *     equals the size of that file on disk, which must be a regular file
 *     (a symbolic link to one is followed: it is stat'ed, never opened, so
 *     a FIFO cannot block the reader); sha256 of 64 and sha512 of 128
 *     lowercase hex digits, or null / absent;
 *   - fields the reader does not model (variables, packages, disk,
 *     reproducibility, ...) are provenance for people and other tools, and
 *     are ignored, always; fields it models are checked as above.
 *
 * Ownership: a set owns every string it points to; artifact_set_done frees
 * them. Library code: nothing is printed; errors come with a message.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_writer;
struct strbuf;

#define ARTIFACT_MANIFEST_NAME "kiln-manifest.json"
#define ARTIFACT_MANIFEST_MAX (16u << 20) /* bytes */
#define ARTIFACT_MAX_FILES 64
#define ARTIFACT_MAX_LABELS 1024
#define ARTIFACT_STRING_MAX 4096

struct artifact_label {
        char *key;
        char *value;
};

/* One file of a set. */
struct artifact_file {
        char *path;          /* DIR/<file>: where it is now */
        char *file;          /* its plain name inside DIR, e.g. "minimal.qcow2.zst" */
        char *format;        /* "raw", "qcow2", ... */
        const char *compression; /* "zst", "xz", "gz" (from the name), or NULL; static */
        uint64_t size;
        char sha256[65];     /* lowercase hex, "" when not known */
        char sha512[129];    /* lowercase hex, "" when not known */
        uint64_t elapsed_ms; /* writing it (image stage only; 0 when read) */
};

struct artifact_set {
        char *dir;           /* the folder the files are in */
        /* identity */
        char *name;          /* expanded build name, e.g. "minimal" */
        char *build_id;      /* stable NAME-ROLE-ARCH, or NULL */
        char *arch;          /* or NULL */
        char *role;          /* or NULL */
        char *assembly_key;  /* what the image was assembled from (outputs.h), or NULL */
        char *tree_key;      /* the tree's cache key, or NULL */
        int64_t created;     /* when the manifest was written (its mtime, unix seconds) */
        struct artifact_label *labels;
        size_t nlabels;
        /* files, in manifest order */
        struct artifact_file *files;
        size_t nfiles;
};

/* Frees what s owns and zeroes it. */
void artifact_set_done(struct artifact_set *s);

/* Adds a file to s and returns it (zeroed but for path and file, which
 * are copied: path is dir/file). Borrowed pointer, valid until the next
 * add. */
struct artifact_file *artifact_set_add(struct artifact_set *s, const char *file);

/* Sets (replaces) a label. */
void artifact_set_label(struct artifact_set *s, const char *key, const char *value);

/* "zst", "xz" or "gz" when file ends with that compression's suffix, else
 * NULL. Static strings. */
const char *artifact_compression_from_name(const char *file);

/* What a file of this st_mode is, for messages: "a directory", "a FIFO",
 * "a socket", "a character device", "a block device", "not a regular
 * file". Static strings. */
const char *artifact_file_kind(unsigned mode);

/* True when file is a plain name inside a folder (see above). */
bool artifact_file_name_ok(const char *file);

/* Reads dir/kiln-manifest.json into *ret (owned; artifact_set_done), with
 * every check above. On failure *ret is empty and err (may be NULL) says
 * what and where, naming the field ("artifacts[2].size: ..."):
 *   -ENOENT   no manifest (the image was not built), or a listed file is
 *             missing;
 *   -EBADMSG  not JSON, not a manifest, or a field of the wrong type or
 *             form;
 *   -EINVAL   a file name that is not a plain name inside dir (it would
 *             leave the folder), or a listed file that is not a regular
 *             file ("a FIFO", "a directory", ...);
 *   -ESTALE   a file's size differs from the manifest's (changed since the
 *             build);
 *   -E2BIG    over one of the limits above;
 *   other -errno reading the files. */
int artifact_set_read(const char *dir, struct artifact_set *ret, struct strbuf *err);

/* Parses manifest text (no file-system checks; dir only names the files'
 * paths). Same errors as artifact_set_read but -ENOENT/-ESTALE/-EINVAL for
 * files. For the fuzzer and tests; artifact_set_read is this plus the
 * checks on disk. */
int artifact_set_parse(const char *dir, const char *text, size_t len, struct artifact_set *ret,
                       struct strbuf *err);

/* The parts of a manifest only the image stage knows (variables, layers,
 * packages, disk layout, reproducibility notes). artifact_manifest_json
 * writes the key, then calls section(), which writes exactly one JSON
 * value. */
enum artifact_section {
        ARTIFACT_SECTION_VARIABLES,
        ARTIFACT_SECTION_LABELS,     /* as typed in the spec, sensitive ones masked */
        ARTIFACT_SECTION_LAYERS,     /* inside "tree" */
        ARTIFACT_SECTION_PACKAGES,
        ARTIFACT_SECTION_DISK,
        ARTIFACT_SECTION_REPRODUCIBILITY,
};

struct artifact_manifest_info {
        const char *spec_path;
        const char *run_uuid;
        uint64_t source_date_epoch;
        void (*section)(void *userdata, enum artifact_section which, struct json_writer *w);
        void *userdata;
};

/* The manifest of s as text (owned), pretty-printed, ending in '\n'. */
char *artifact_manifest_json(const struct artifact_set *s, const struct artifact_manifest_info *info);

/* A deep copy of src into *ret (owned). */
void artifact_set_copy(const struct artifact_set *src, struct artifact_set *ret);
