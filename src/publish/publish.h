/* SPDX-License-Identifier: Apache-2.0 */
/*
 * publish.h — sending finished artifacts somewhere users fetch them from:
 * S3-compatible object storage, OpenStack Glance (later GCE and EC2).
 *
 * Every destination type is one `struct publisher` (a table of function
 * pointers) registered in publish.c's list; callers never include a
 * specific publisher's header. A publish `target` is one entry of a build's
 * `publish:` section (or of `kiln publish --to`): a map with `type:` and
 * that type's keys, already evaluated (${...} filled in) by the spec layer.
 *
 * The contract every publisher keeps:
 *   - before sending, it asks the destination whether the same content is
 *     already there (by sha256/sha512) and, if so, sends nothing and
 *     reports PUBLISH_SKIPPED_IDENTICAL;
 *   - a destination never holds something that looks complete unless it is
 *     (S3: the `<object>.sha256` sidecar is written last; Glance: the image
 *     is only reported once `active` with the matching os_hash_value);
 *   - credentials come from the environment or a credentials file, are
 *     registered with publish_ctx.add_secret before first use, and never
 *     appear in result messages;
 *   - library code does not print: progress goes through ctx->progress,
 *     the outcome into struct publish_result.
 */
#pragma once

#include "image/artifact.h"
#include "spec/value.h"

#include <stdbool.h>
#include <stdint.h>

struct diag_list;
struct strbuf;

/* One local file to publish. Borrowed by the publisher for the call. */
struct publish_artifact {
        const char *path;          /* the local file */
        const char *file_name;     /* its base name, e.g. "minimal.qcow2" */
        const char *format;        /* "raw", "qcow2", ... (outputs: entry) */
        uint64_t size;
        const char *sha256;        /* lowercase hex, always set */
        const char *sha512;        /* lowercase hex, always set */
        /* What the artifact is (from the build / kiln-manifest.json); any may
         * be NULL when publishing a bare file. */
        const char *image_name;    /* expanded build name, e.g. "minimal" */
        const char *build_id;      /* stable NAME-ROLE-ARCH */
        const char *arch;          /* x86_64, aarch64 */
        const char *role;
        const struct artifact_label *labels; /* the image's labels, or NULL */
        size_t nlabels;
};

/* An unfinished (multipart) upload at a destination. */
struct publish_upload {
        char *key;                 /* object key; owned */
        char *upload_id;           /* owned */
        char *initiated;           /* start time as the server wrote it (ISO 8601), or NULL; owned */
        int64_t initiated_s;       /* the same in seconds since the epoch, -1 when unknown */
};
void publish_uploads_free(struct publish_upload *u, size_t n);

/* One destination: the evaluated map of a publish: entry. */
struct publish_target {
        const char *name;          /* shown in result lines: `name:` or "<type> #N" */
        const char *type;          /* "s3", "glance" */
        bool disabled;             /* `enabled: false` (every type takes it): publish_one
                                      reports PUBLISH_DISABLED at once. Negated so that a
                                      target built in code ({.type = "s3", ...}) is on. */
        const struct value *settings; /* the whole map (including type:) */
};

enum publish_status {
        PUBLISH_UPLOADED,
        PUBLISH_SKIPPED_IDENTICAL, /* the same content was already there; 0 bytes sent */
        PUBLISH_FAILED,
        PUBLISH_DISABLED,          /* the target says `enabled: false`; nothing was contacted */
};

struct publish_result {
        enum publish_status status;
        char *location;            /* URL / image id of the published artifact; owned */
        char *error;               /* human message when FAILED (no secrets); owned */
        char *note;                /* something the user should know although it
                                    * worked (e.g. no sidecar), or NULL; owned */
        /* Payload bytes of requests that succeeded: what the destination got
         * (0 when skipped). Bytes of attempts that failed (cut connections,
         * 5xx, answered with an error) are counted in bytes_retried only. */
        uint64_t bytes_sent;
        uint64_t bytes_retried;
        uint64_t elapsed_ms;
};

void publish_result_done(struct publish_result *r);

struct publish_ctx {
        /* Environment to read credentials from (NULL-terminated, like
         * environ). Tests pass their own. */
        char *const *environ;
        /* Called with every secret value before it is used, so the caller
         * can mask it in logs (diag_add_secret). May be NULL. */
        void (*add_secret)(void *userdata, const char *secret);
        /* Progress of the transfer; may be NULL. Called from any thread. */
        void (*progress)(void *userdata, uint64_t done, uint64_t total);
        void *userdata;
        unsigned parallel;         /* concurrent part uploads; 0 = default (4) */
        bool verbose;              /* requests and responses (without secrets) to log_fd */
        int log_fd;                /* -1: none */
};

struct publisher {
        const char *type;          /* the `type:` value that selects it */
        const char *summary;       /* one line for --help and docs */
        /* Checks a target's settings (marks point into the spec) and reports
         * every problem to d with file:line:column. Returns 0 or -EINVAL. */
        int (*validate)(const struct value *settings, struct diag_list *d);
        /* Publishes one artifact. Returns 0 when the outcome is in *ret
         * (UPLOADED or SKIPPED_IDENTICAL), or -errno on failure with
         * ret->status = PUBLISH_FAILED and ret->error set. */
        int (*publish)(const struct publish_target *t, const struct publish_artifact *a,
                       const struct publish_ctx *ctx, struct publish_result *ret);
        /* Set when the publisher never reads artifact.sha512: publish.c then
         * does not hash a file whose manifest lacks a sha512 (sha512 is
         * "" for such publishers). */
        bool sha256_only;
        /* Optional (NULL when the destination has no unfinished uploads):
         * the unfinished uploads whose keys start with the target's `key:`
         * (a prefix; may be empty), ordered by key, then by start time.
         * *ret (owned; publish_uploads_free) and *ret_n are set on success;
         * on failure -errno with *ret_error (owned, no secrets). */
        int (*list_uploads)(const struct publish_target *t, const struct publish_ctx *ctx,
                            struct publish_upload **ret, size_t *ret_n, char **ret_error);
        /* Optional: discards one unfinished upload (its stored parts). 0 also
         * when it is already gone; -errno with *ret_error (owned) otherwise. */
        int (*abort_upload)(const struct publish_target *t, const struct publish_upload *u,
                            const struct publish_ctx *ctx, char **ret_error);
};

/* Opens path for publishing: it must be a regular file (directories,
 * FIFOs, sockets and devices are refused without being read, so a FIFO
 * never blocks), and, when expect_size is not PUBLISH_ANY_SIZE, hold
 * exactly that many bytes. Returns the fd (blocking, O_CLOEXEC) and its
 * size in *ret_size, or -errno with a message naming path in err:
 * -ENOENT and the like from open/stat, -EINVAL (not a regular file),
 * -ESTALE (size differs). */
#define PUBLISH_ANY_SIZE UINT64_MAX
int publish_open_file(const char *path, uint64_t expect_size, uint64_t *ret_size,
                      struct strbuf *err);

/* The value of NAME in a NULL-terminated environment array (as
 * publish_ctx.environ), "" when set empty, NULL when unset or env is NULL. */
const char *publish_getenv(char *const *env, const char *name);

/* ---- what publishers share (publish.c) ---- */

/* Checks "http(s)://host[:port]" with nothing after but an optional '/':
 * *ret_scheme ("http" or "https") and *ret_host (host[:port]), both owned.
 * -EINVAL otherwise (nothing set). */
int publish_parse_endpoint(const char *ep, char **ret_scheme, char **ret_host);

/* Whether a request that ended so is worth sending again: a network error
 * (timeout, reset, refused, -EIO) from net/http.h, or HTTP 408, 429, 5xx. */
struct http_response;
bool publish_retryable(int r, const struct http_response *resp);

/* Sleeps before retry n (1-based): 0.5 s, 1 s, 2 s, ..., at most 16 s. */
void publish_backoff(unsigned n);

/* Reads a small file a target names (a credentials or key file), opened as
 * publish_open_file does (a FIFO or device is refused, not read), of at most
 * max bytes. *ret (NUL-terminated, owned: wipe it when it holds secrets) and
 * *ret_len. -E2BIG over max, else -errno, with a message naming `what`
 * ("credentials file") and path in err. */
int publish_read_small_file(const char *path, size_t max, const char *what, char **ret,
                            size_t *ret_len, struct strbuf *err);

/* A target's retries: (0 to max) and timeout: (a duration up to 1 h), the
 * same rules for every publisher. *ret is left as it is when the key is
 * unset. 0, or -EINVAL with a message in err. */
int publish_setting_retries(const struct value *settings, unsigned max, unsigned *ret,
                            struct strbuf *err);
int publish_setting_timeout(const struct value *settings, unsigned *ret, struct strbuf *err);

/* Checks a target's endpoint: (publish_parse_endpoint's form; the hint
 * shows `example`) and retries: (at most max_retries), reporting to d with
 * file:line:column under `what` ("publish target 's3'"). Returns the number
 * of errors. */
unsigned publish_validate_endpoint_retries(const struct value *settings, const char *what,
                                           const char *example, unsigned max_retries,
                                           struct diag_list *d);

/* The registered publishers, NULL-terminated. */
extern const struct publisher *const publishers[];

/* The publisher for a type name, or NULL. */
const struct publisher *publisher_find(const char *type);

/* ---- publishing builds (publish.c) -------------------------------------- */

struct spec;
struct spec_build;

/* Checks a build's publish: section — a map or a list of maps, each with a
 * known `type:` and that publisher's keys — reporting every problem with
 * file:line:column. Returns 0 or -EINVAL. */
int publish_validate(const struct value *publish, struct diag_list *d);
/* publish_validate for every needed build of s that writes its own
 * publish: section (inherited sections are checked once, where written). */
int publish_validate_spec(const struct spec *s, struct diag_list *d);

/* The artifacts of one built image (an artifact_set: from the build in
 * memory or read from OUTPUT/<name>/kiln-manifest.json), or bare files
 * (hashed here), as publishers see them: every sha256 set, and sha512 when
 * asked for. Owns every string its artifacts point to. */
struct publish_artifacts {
        struct publish_artifact *v;
        size_t n;
        /* Set by the caller before loading or adding (may be NULL): called
         * while a file is hashed, after every MiB and at the end, with the
         * bytes hashed so far and the file's size. Library code does not
         * print; the verb shows this. */
        void (*hash_progress)(void *userdata, const char *path, uint64_t done, uint64_t total);
        void *hash_userdata;
        struct artifact_set set;  /* owned: what v points into */
};
/* Takes a copy of set (every file opened: it must be a regular file of its
 * recorded size). need_sha512: hash files that have no sha512; a file
 * without a sha256 is hashed too, and one whose recorded sha256 differs is
 * refused. Returns 0, -ESTALE (a file differs from the set) or -errno
 * (-EINVAL: not a regular file), with a message. */
int publish_artifacts_use_set(struct publish_artifacts *ret, const struct artifact_set *set,
                              bool need_sha512, struct strbuf *err);
/* publish_artifacts_use_set of image_dir, read with artifact_set_read (its
 * errors: -ENOENT no manifest: not built, -EBADMSG malformed, -ESTALE a
 * file's size differs from the manifest, ...), with a message. */
int publish_artifacts_load(const char *image_dir, bool need_sha512, struct publish_artifacts *ret,
                           struct strbuf *err);
/* Adds a bare file (hashed here: sha256, and sha512 when need_sha512).
 * Its format is taken from the extension (qcow2, raw, img, vmdk, vhd, ...). */
int publish_artifacts_add_file(struct publish_artifacts *set, const char *path, bool need_sha512,
                               struct strbuf *err);
/* Frees what set owns and zeroes it (hash_progress too). */
void publish_artifacts_done(struct publish_artifacts *set);

/* The targets of a publish: section (map or list), in order. Names are
 * `name:` or "<type> #N" (1-based). Borrows from publish; free targets[i].name
 * and the array with publish_targets_free. */
int publish_targets_from_value(const struct value *publish, struct publish_target **ret,
                               size_t *ret_n);
void publish_targets_free(struct publish_target *t, size_t n);

/* ---- the publish: section ----
 * Registered with the spec layer (spec/section.h; the pipeline assembles
 * the table): publish_validate, then the targets, once when the spec
 * loads, for every needed build. */
struct publish_targets {
        struct publish_target *v;
        size_t n;
};
struct spec_section;
extern const struct spec_section publish_section;
/* b's parsed targets: NULL when b has no publish: (or was not needed).
 * Borrowed from the spec. */
const struct publish_targets *publish_targets_of(const struct spec_build *b);

/* The artifact a target publishes: the one whose format is the target's
 * `format:` (or, without it, `disk_format:`), else the first. NULL when a
 * format is asked for and no artifact has it. */
const struct publish_artifact *publish_pick_artifact(const struct publish_target *t,
                                                    const struct publish_artifact *v, size_t n);

/* One line of a publish run. */
struct publish_outcome {
        char *build;               /* build name; owned (NULL: bare files, or publish_one) */
        char *target;              /* target name; owned */
        char *type;                /* publisher type; owned */
        char *file;                /* artifact file name; owned (NULL when none matched) */
        struct publish_result result;
};
void publish_outcomes_free(struct publish_outcome *o, size_t n);

/* Publishes one artifact to one target (finding the publisher, filling
 * outcome). Returns 0 when published or skipped, -errno when it failed. */
int publish_one(const struct publish_target *t, const struct publish_artifact *a,
                const struct publish_ctx *ctx, struct publish_outcome *ret);

/* Publishes set (borrowed: what a build produced, in memory) to every
 * target of build b's publish: section (as parsed when the spec was
 * loaded), in order, going on after a failure. *ret (owned; free with publish_outcomes_free) gets one outcome
 * per target. Returns 0 when every target succeeded or was skipped, -EIO
 * when any failed (a set that cannot be published fails every enabled
 * target with its message), 0 with *ret_n = 0 when b is NULL or has no publish: section. */
int publish_artifact_set(const struct artifact_set *set, const struct spec_build *b,
                         const struct publish_ctx *ctx, struct publish_outcome **ret, size_t *ret_n);

/* publish_artifact_set of build b's folder output_dir/<b->name>/, read with
 * artifact_set_read: -ENOENT (every enabled target failed saying so) when
 * the image was not built. */
int publish_build(const struct spec *s, const struct spec_build *b, const char *output_dir,
                  const struct publish_ctx *ctx, struct publish_outcome **ret, size_t *ret_n);

/* Whether any enabled target of t[0..n) has a publisher that reads sha512. */
bool publish_targets_need_sha512(const struct publish_target *t, size_t n);

/* Whether a publish: section has a target whose publisher reads sha512
 * (Glance): the image stage then computes it while writing, instead of
 * publish re-reading the file. */
bool publish_needs_sha512(const struct value *publish);

/* "uploaded", "skipped-identical", "failed". */
const char *publish_status_name(enum publish_status s);

/* ---- publish runs (run.c): what `kiln publish` does, without the terminal -- */

/* One unit of a run: a target and the artifacts it gets. Borrowed from
 * the plan. */
struct publish_job {
        const char *build;                 /* build name; NULL for bare files */
        struct publish_target target;
        const struct publish_artifacts *set;
        bool all;                          /* every artifact (bare files), not a pick */
};

/* What to publish. Borrowed. Either spec (its builds, in order, with their
 * publish: targets) or files (bare files, to the url targets only). */
struct publish_request {
        const struct spec *spec;
        const char *output_dir;            /* where the builds' folders are */
        char *const *only;                 /* globs over build names and ids */
        size_t nonly;
        const char *const *names;          /* only the spec targets of these names */
        size_t nnames;
        struct value *const *urls;         /* targets given in full (type, name, ...) */
        size_t nurls;
        const char *const *files;
        size_t nfiles;
        /* as publish_artifacts.hash_progress */
        void (*hash_progress)(void *userdata, const char *path, uint64_t done, uint64_t total);
        void *hash_userdata;
};

struct publish_plan {
        struct publish_job *jobs;
        size_t njobs;
        /* When making the plan failed because a name of req->names matched
         * no target of a selected build: that name (borrowed). */
        const char *unmatched_name;
        /* owned storage behind jobs; the targets are borrowed from the
         * spec (parsed when it was loaded) or, for a spec loaded without
         * the section registry, parsed here into own */
        struct publish_artifacts *sets;
        size_t nsets;
        struct publish_target **targets;
        size_t *ntargets;
        struct publish_targets *own;
};

/* Selects the builds (only: by name or id; without it, those with a
 * publish: section, or all of them when there are urls), their targets
 * (names: only those; urls: every selected build gets those too) and reads
 * each selected build's folder (artifact_set_read: the sha512 of files is
 * computed when a target needs it), or hashes the bare files. Returns 0,
 * -ENXIO when a name matched nothing (ret->unmatched_name), -ENODATA when
 * nothing is left to publish, or the error of a folder or file that cannot
 * be published, with a message in err ("BUILD: ..."). *ret is always
 * freed with publish_plan_done. */
int publish_plan_make(const struct publish_request *req, struct publish_plan *ret, struct strbuf *err);
void publish_plan_done(struct publish_plan *p);

/* Sees a run: before each (target, artifact) — a is NULL when the target
 * asks for a format the set does not have — and after it, with its
 * outcome. Any may be NULL; called on the caller's thread. */
struct publish_run_observer {
        void (*start)(void *userdata, const struct publish_job *j, const struct publish_artifact *a);
        void (*done)(void *userdata, const struct publish_job *j, const struct publish_outcome *o);
        void *userdata;
};

/* Runs every job of p, in order, going on after failures: one outcome per
 * target and artifact in *ret (owned; publish_outcomes_free). Returns how
 * many failed. */
size_t publish_plan_run(const struct publish_plan *p, const struct publish_ctx *ctx,
                        const struct publish_run_observer *obs, struct publish_outcome **ret,
                        size_t *ret_n);

/* One unfinished upload of publish_uploads_clean, and what became of it. */
struct publish_upload_outcome {
        const struct publish_upload *upload; /* borrowed from the listing */
        bool failed;                          /* aborting it failed */
        char *error;                          /* why; owned (may hold what the server said) */
};

/* The unfinished uploads under t's key prefix, only those started more than
 * older_s seconds before now when older_s >= 0 (an upload of unknown age
 * is not known to be old: left out), aborted when abort_them. *ret_uploads
 * (the whole listing; publish_uploads_free) and *ret / *ret_n (the selected
 * ones, in listing order; free each error and the array) are set on
 * success. Returns 0, -EOPNOTSUPP when t's publisher has no unfinished
 * uploads, or -errno when listing failed (*ret_error, owned). */
int publish_uploads_clean(const struct publish_target *t, bool abort_them, int64_t older_s,
                          int64_t now, const struct publish_ctx *ctx,
                          struct publish_upload **ret_uploads, size_t *ret_nuploads,
                          struct publish_upload_outcome **ret, size_t *ret_n, char **ret_error);
