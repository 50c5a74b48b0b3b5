/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h — the local image store: artifacts kept by content, described by a
 * SQLite catalog, served over HTTP by serve.c (see the end of this file).
 *
 * Layout under the store directory (store_default_dir: $KILN_STORE_DIR,
 * $XDG_DATA_HOME/kiln/store or ~/.local/share/kiln/store):
 *
 *   blobs/sha256/ab/abcdef…   one file per distinct content, named by its
 *                             SHA-256; never modified once in place
 *   catalog.db                SQLite (WAL): which image, version and file
 *                             each blob is (schema in store.c)
 *   tmp/                      blobs being written; never read
 *
 * Entries. One catalog entry is one file of one image version: the minimal
 * example's build gives two entries, minimal:20261121.1 raw and qcow2,
 * sharing a version. A version is chosen when a build is added (default
 * YYYYMMDD.N: the build's UTC date and a counter per name and day, like
 * cloud image serials; or the caller's). Entries own labels (key=value).
 *
 * Storing. An artifact is hashed (SHA-256, and SHA-512 when asked for or
 * when the manifest records one) while it is brought into the store, and
 * refused when a recorded checksum does not match. On the same file system
 * the blob is a reflink when the file system can (copy-on-write: the source
 * stays independent), else a hard link (no copy: the blob *is* the output
 * file, which kiln replaces by rename and never rewrites; a changed blob is
 * detected by its size and mtime before it is served); otherwise, or with
 * STORE_ADD_COPY, a sparse copy. The same content added twice is stored once,
 * and the same build added twice is catalogued once.
 *
 * Concurrency. Any number of kiln processes may use one store: blobs appear
 * by rename (or link) under their final name, catalog changes are SQLite
 * transactions (busy timeout STORE_BUSY_TIMEOUT_MS), and the step that ties
 * a blob to the catalog or removes an unreferenced blob runs inside the
 * catalog's write lock, so a blob is never removed while an add uses it.
 *
 * Errors: -EINVAL bad argument (a name, version, label or id that is not
 * acceptable), -ENOENT no such image/file/entry, -EBADMSG malformed manifest
 * or a checksum mismatch (store_error says which), -EEXIST a name:version:file
 * already catalogued with other content, -EBUSY the catalog stayed locked
 * past the timeout, -EPROTONOSUPPORT a catalog written by a newer kiln, other
 * -errno from the file system. store_error(st) has a one-line explanation of
 * the last failure (SQLite's message, the mismatching file, ...).
 */
#pragma once

#include "net/httpd.h" /* the server limits */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_BUSY_TIMEOUT_MS 30000
#define STORE_NAME_MAX 128     /* image names, versions, file names, formats */
#define STORE_LABEL_KEY_MAX 128
#define STORE_LABEL_VALUE_MAX 1024
#define STORE_MAX_LABELS 64
#define STORE_MAX_ARTIFACTS 64 /* per manifest / per add */

struct store;

/* The default store directory (see above); owned by the caller. */
char *store_default_dir(void);

/* Opens the store at dir, creating it and its catalog when missing and
 * migrating an older catalog. Removes blobs left in tmp/ by dead writers.
 * Returns 0 or -errno. */
int store_open(const char *dir, struct store **ret);
/* Closes st (NULL is a no-op); returns NULL. */
struct store *store_close(struct store *st);
const char *store_dir(const struct store *st);
/* Explanation of the last failed call on st ("" when none); borrowed, valid
 * until the next call. */
const char *store_error(const struct store *st);

struct store_label {
        char *key;
        char *value;
};

struct store_entry {
        int64_t id;          /* stable, never reused */
        char *name;          /* image name, e.g. "minimal" */
        char *version;       /* "20261121.1" */
        char *build_id;      /* the build's id in its spec; may be NULL */
        char *arch;          /* may be NULL */
        char *role;          /* may be NULL */
        char *format;        /* "raw", "qcow2", ... */
        char *file;          /* file name, e.g. "minimal.qcow2" */
        uint64_t size;
        char sha256[65];
        char sha512[129];    /* "" when not known */
        int64_t created;     /* when the build was made (unix seconds) */
        int64_t added;       /* when it entered the store */
        struct store_label *labels; /* sorted by key */
        size_t nlabels;
};
/* Frees the members of e (not e itself). */
void store_entry_done(struct store_entry *e);
/* Frees an array of n entries and the array. NULL is fine. */
void store_entries_free(struct store_entry *v, size_t n);

enum {
        STORE_ADD_COPY = 1 << 0,   /* always copy, never link or reflink */
        STORE_ADD_SHA512 = 1 << 1, /* compute SHA-512 even when not recorded */
};

/* What to add. For store_add_output_dir every field is optional and
 * overrides the manifest (format: every artifact's); for store_add_files name and format are required
 * (format may be left NULL to take the file's extension). Borrowed. */
struct store_add_options {
        const char *name;
        const char *version;   /* NULL: YYYYMMDD.N, see above */
        const char *build_id;
        const char *arch;
        const char *role;
        const char *format;
        const struct store_label *labels; /* added to (and overriding) the manifest's */
        size_t nlabels;
        unsigned flags;        /* STORE_ADD_* */
        /* Called after each artifact is stored (may be NULL). */
        void (*progress)(void *userdata, const struct store_entry *e, bool already_stored,
                         uint64_t elapsed_ms);
        void *userdata;
};

/* Adds a build's output folder (OUTPUT/<image-name>/, as written by
 * outputs_build: its kiln-manifest.json gives name, build id, arch, role,
 * labels, and each artifact's file, format, size and checksums). Every
 * artifact gets the same version. When the store already has this build
 * (same name, and every artifact's format and SHA-256 under one version),
 * nothing is added, the labels (manifest's and o's) are set on that
 * version's entries, and those are returned. On success
 * *ret / *ret_n are the entries (owned by the caller). */
int store_add_output_dir(struct store *st, const char *dir, const struct store_add_options *o,
                         struct store_entry **ret, size_t *ret_n);

/* Adds bare files as one version of image o->name (format: o->format or the
 * file's extension, e.g. ".qcow2" -> qcow2). Created time: the newest file's
 * mtime. Same return as store_add_output_dir. */
int store_add_files(struct store *st, const char *const *paths, size_t n,
                    const struct store_add_options *o, struct store_entry **ret, size_t *ret_n);

/* Selects entries; every set field must match (labels: all of them). */
struct store_filter {
        const char *name;
        const char *version;
        const char *arch;
        const char *role;
        const char *format;
        const struct store_label *labels;
        size_t nlabels;
};

/* Entries matching f (NULL: all), newest first (created, then id). */
int store_list(struct store *st, const struct store_filter *f, struct store_entry **ret,
               size_t *ret_n);

/* One entry by id; -ENOENT when there is none. */
int store_get(struct store *st, int64_t id, struct store_entry *ret);

/* Resolves "NAME" (its newest version), "NAME:VERSION" or "NAME:latest" to
 * that version's entries. -ENOENT when nothing matches. */
int store_resolve(struct store *st, const char *ref, struct store_entry **ret, size_t *ret_n);

/* Removes entries by id (all or nothing: -ENOENT naming the first unknown
 * id), then every blob no entry references any more. *ret_blobs and
 * *ret_freed (either may be NULL) count the blobs removed and their bytes. */
int store_remove(struct store *st, const int64_t *ids, size_t n, size_t *ret_blobs,
                 uint64_t *ret_freed);

/* For each image name matching f (f->version is ignored), keeps the `keep`
 * newest versions and removes the older ones' entries (and unreferenced
 * blobs). With dry_run nothing changes. *ret / *ret_n: the entries removed
 * (or that would be); *ret_freed the bytes of blobs freed (dry run: that
 * would be). */
int store_prune(struct store *st, const struct store_filter *f, unsigned keep, bool dry_run,
                struct store_entry **ret, size_t *ret_n, uint64_t *ret_freed);

/* True when s is acceptable as an image name, version, file name or format:
 * [A-Za-z0-9._+-], not starting with '.' or '-', at most STORE_NAME_MAX. */
bool store_name_valid(const char *s);

struct json_writer;
/* Writes entries as a JSON array of objects (id, name, version, build_id,
 * arch, role, format, file, size, sha256, sha512, created, added, labels) —
 * the format of `kiln images list --json` and GET /images. */
void store_entries_json(const struct store_entry *v, size_t n, struct json_writer *w);

/* Path of the blob with this SHA-256 (lowercase hex, checked: -EINVAL
 * otherwise) in *ret (owned). Does not check that it exists. */
int store_blob_path(const struct store *st, const char *sha256, char **ret);

/* Opens the blob of a catalogued entry or digest for reading: checks that
 * the catalog knows the digest and that the file still has the size and
 * mtime it had when stored (-EUCLEAN when not: it was changed in place).
 * Returns an O_RDONLY fd (>= 0) and the blob's size. */
int store_open_blob(struct store *st, const char *sha256, uint64_t *ret_size);

/* ---- the HTTP server (serve.c) ----------------------------------------------
 *
 *   GET /images                           the catalog as JSON (list --json)
 *   GET /images/NAME/VERSION/FILE         a file (VERSION may be "latest")
 *   GET /blobs/sha256/HEX                 a blob by digest
 *
 * Only names found in the catalog and well-formed digests resolve: no path
 * from a request reaches the file system; a path that does not decode to
 * printable ASCII is refused (400). Files are sent with sendfile, support
 * HEAD, Range as RFC 9110 §14 says (one range: 206; unsatisfiable: 416;
 * another unit, invalid syntax or several ranges: ignored, 200), If-Range,
 * ETag = "sha256" and If-None-Match (304), and carry Content-Length,
 * X-Checksum-Sha256 and Digest: sha-256=BASE64. The request handling itself
 * is in serve.h. */

struct store_server;

/* Connection limits (docs/store.md). One client address may hold at most
 * max_per_client connections, so that it cannot lock the others out; a
 * connection idle (nothing received or sent) for idle_timeout_s is closed. */
#define STORE_SERVE_MAX_CONNECTIONS HTTPD_MAX_CONNECTIONS
#define STORE_SERVE_MAX_PER_CLIENT HTTPD_MAX_PER_CLIENT
#define STORE_SERVE_IDLE_TIMEOUT_S HTTPD_IDLE_TIMEOUT_S
#define STORE_SERVE_MAX_CONNECTIONS_LIMIT HTTPD_MAX_CONNECTIONS_LIMIT /* the most max_connections may be */
#define STORE_SERVE_IDLE_TIMEOUT_LIMIT_S HTTPD_IDLE_TIMEOUT_LIMIT_S   /* the most idle_timeout_s may be */

/* Zero fields take the defaults above. */
struct store_serve_options {
        unsigned max_connections; /* in total */
        unsigned max_per_client;  /* per client IP address (<= max_connections) */
        unsigned idle_timeout_s;
};

/* Starts serving st (borrowed until stop; the server's thread is then its
 * only user) on listen ("HOST:PORT", "PORT", "[V6]:PORT"; port 0 picks a
 * free one) in a background thread, with the limits o (NULL: defaults).
 * log (may be NULL) gets one access-log line per request (serve_log_line:
 * control characters escaped). Returns 0 or -errno (-EINVAL: bad listen
 * address; -ERANGE: a limit above its maximum, or max_per_client above
 * max_connections). */
int store_serve_start(struct store *st, const char *listen, const struct store_serve_options *o,
                      void (*log)(void *userdata, const char *line), void *userdata,
                      struct store_server **ret);
/* "http://127.0.0.1:8080" — the address actually bound. Borrowed. */
const char *store_server_url(const struct store_server *srv);
/* Stops accepting, finishes, frees (NULL is a no-op). */
void store_serve_stop(struct store_server *srv);
