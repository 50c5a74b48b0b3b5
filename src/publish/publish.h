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

#include "spec/value.h"

#include <stdbool.h>
#include <stdint.h>

struct diag_list;

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
        const struct value *labels; /* map of string labels, or NULL */
};

/* One destination: the evaluated map of a publish: entry. */
struct publish_target {
        const char *name;          /* shown in result lines: `name:` or "<type> #N" */
        const char *type;          /* "s3", "glance" */
        const struct value *settings; /* the whole map (including type:) */
};

enum publish_status {
        PUBLISH_UPLOADED,
        PUBLISH_SKIPPED_IDENTICAL, /* the same content was already there; 0 bytes sent */
        PUBLISH_FAILED,
};

struct publish_result {
        enum publish_status status;
        char *location;            /* URL / image id of the published artifact; owned */
        char *error;               /* human message when FAILED (no secrets); owned */
        uint64_t bytes_sent;       /* payload bytes sent (0 when skipped) */
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
};

/* The registered publishers, NULL-terminated. */
extern const struct publisher *const publishers[];

/* The publisher for a type name, or NULL. */
const struct publisher *publisher_find(const char *type);
