/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipeline.h — one build run as an engine, between the engines (provision,
 * image, vm, check, store, publish) and the front ends (cli/, service/):
 * what `kiln build`, a daemon and a cluster worker all call.
 */
#pragma once

#include "provision/build.h"
#include "spec/section.h"
#include "spec/spec.h"

#include <signal.h>
#include <stdint.h>

/* ---- Loading a spec (load.c) ---------------------------------------------
 *
 * pipeline_load is spec_load with every engine's sections registered
 * (spec/section.h): `disk:` and `outputs:` (image), `checks:` and
 * `boot_check:` (check), `publish:` (publish). Each section is validated
 * where the spec layer evaluates it and parsed ONCE, at the end of
 * loading, into the owner's typed struct for every needed build; the
 * engines read those (image_outputs_of, check_list_of, publish_targets_of,
 * ...), never the values again. Diagnostics, their file:line:column and
 * their order are spec_load's. */

/* Every engine's sections, in the order they are parsed;
 * NULL-terminated. */
extern const struct spec_section *const pipeline_sections[];

/* Loads o (its sections field is ignored: pipeline_sections are used).
 * Returns what spec_load returns: 0 and the spec in *ret when no error was
 * reported, -EINVAL (spec errors, in d), or -errno when the spec file
 * could not be read (also in d). */
int pipeline_load(const struct spec_options *o, struct diag_list *d, struct spec **ret);

/* ---- Running a build --------------------------------------------------------
 *
 * pipeline_run runs, for the selected builds of a loaded spec:
 *   trees (provision, parents first, with the step cache) → tree checks
 *   (checks:, in the finished tree) → images (outputs:) → boot checks
 *   (--boot-check or boot_check:) → the local image store → publish:.
 * A build that fails a stage goes no further; the others go on.
 *
 * Progress is a typed event stream (struct pipeline_event) sent to one
 * observer. Events of one run are serialised (never two calls at once) and
 * come in a fixed order per build; events of different builds may
 * interleave while trees are built in parallel.
 *
 * Cancelling: set *opts.cancel non-zero (from a signal handler or another
 * thread). A running boot check stops its VM at once (polled every 100 ms);
 * the provision engine starts no further step (a running step finishes
 * first); image assembly, store and each publish target are checked before
 * they start. Nothing partial is left: outputs are written to a temporary
 * folder renamed into place only when complete, store adds are atomic, and
 * publishers write their completion marker last. A cancelled run reports
 * every build that did not finish as failed ("cancelled").
 *
 * Secrets: the run keeps one secrets set (the values publishers register
 * before use); every message an event carries is masked with it.
 */

enum pipeline_event_type {
        PEV_RUN_STARTED,      /* timestamp, run_uuid, count (selected builds) */
        PEV_STEP_STARTED,     /* step (not yet in the cache: it runs now) */
        PEV_STEP_FINISHED,    /* step: built or failed; elapsed_ms; log path */
        PEV_STEP_CACHED,      /* step: a cache hit, not run */
        PEV_STEP_SKIPPED,     /* step: not run (an earlier step failed) */
        PEV_STEP_OUTPUT,      /* a line of a step's output (with opts.step_output): text, len */
        PEV_CHECKS,           /* report: checks run in the tree (stage "checks") or the booted
                                 guest (stage "boot-check") */
        PEV_TREE_FINISHED,    /* tree: the provision result (ok, failed, skipped); text: the
                                 failed step's last log lines (masked), or NULL */
        PEV_IMAGE_STARTED,    /* path: the output folder */
        PEV_IMAGE_ASSEMBLED,  /* image: up_to_date, assemble_ms; elapsed_ms */
        PEV_IMAGE_WRITTEN,    /* artifact: one file (path, format, size, sha256, elapsed) */
        PEV_BOOT_STARTED,     /* path: the image booted */
        PEV_STORED,           /* entries/nentries, path: the store; bytes */
        PEV_PUBLISHED,        /* outcome: one target (status, bytes, elapsed, location) */
        PEV_ERROR,            /* stage, text: a problem of one build (build set) or of the
                                 run (build NULL), without "kiln: " or the build name; path:
                                 a log to read, or NULL */
        PEV_WARNING,          /* text: the same, for something that did not fail */
        PEV_RUN_FINISHED,     /* result: the outcome; elapsed_ms */
};

/* "run_started", "step_started", ... (the JSON lines' "type"). */
const char *pipeline_event_name(enum pipeline_event_type t);

struct check_report;
struct output_result;
struct artifact_file;
struct store_entry;
struct publish_outcome;
struct pipeline_result;

/* One event. Every pointer is borrowed for the duration of the callback. */
struct pipeline_event {
        enum pipeline_event_type type;
        const struct spec_build *build;      /* NULL for run events */
        const char *stage;                   /* "tree", "checks", "image", "boot-check",
                                                "store", "publish" (ERROR, CHECKS) */
        uint64_t elapsed_ms;                 /* of what finished (0 when not applicable) */
        uint64_t bytes;                      /* written, stored or sent (0 when not applicable) */
        const char *path;
        const char *text;
        size_t len;                          /* STEP_OUTPUT: bytes of text */
        unsigned count;
        const char *timestamp;               /* RUN_STARTED: the run's ${timestamp} */
        const char *run_uuid;                /* RUN_STARTED */
        const struct step_event *step;       /* STEP_* */
        const struct check_report *report;   /* CHECKS */
        const struct build_result *tree;     /* TREE_FINISHED */
        const struct output_result *image;   /* IMAGE_ASSEMBLED */
        const struct artifact_file *artifact; /* IMAGE_WRITTEN */
        const struct store_entry *entries;   /* STORED */
        size_t nentries;
        const struct publish_outcome *outcome; /* PUBLISHED */
        const struct pipeline_result *result;  /* RUN_FINISHED */
};

struct pipeline_observer {
        void *userdata;
        void (*event)(void *userdata, const struct pipeline_event *ev);
};

/* What to do after trees failed under on_error "ask" (pipeline_options.ask). */
enum pipeline_choice {
        PIPELINE_KEEP,        /* go on; keep the failed steps' changes */
        PIPELINE_RETRY,       /* build the trees again */
        PIPELINE_CLEAN_UP,    /* go on; discard the failed steps' changes */
};

struct pipeline_options {
        struct cache *cache;             /* the step cache (open) */
        const char *work_dir;            /* per-build folders (record, logs) */
        const char *output_dir;          /* images; NULL: "output" */
        const char *store_dir;           /* NULL: store_default_dir() */
        enum on_error on_error;
        bool force;                      /* run every step, assemble every image again */
        bool step_output;                /* send the steps' output lines (PEV_STEP_OUTPUT, masked) */
        unsigned parallel;               /* trees at once; 0: 1 */
        bool trees_only;                 /* no images (nor boot checks, store, publish) */
        bool no_checks;                  /* skip checks: (tree and boot) */
        bool boot_check;                 /* boot every selected build's image */
        bool allow_degraded;             /* a degraded boot passes its boot check */
        bool no_store, no_publish;
        const char *accel;               /* for boot checks: "kvm", "tcg", NULL: auto */
        char *const *environ;            /* credentials for publishers; NULL: none */
        const volatile sig_atomic_t *cancel; /* optional (see "Cancelling") */
        /* Optional: asked once after trees failed with on_error ABORT, with
         * the failed steps' changes kept; NULL: PIPELINE_KEEP. */
        enum pipeline_choice (*ask)(void *userdata, const struct build_result *trees, size_t n);
        void *ask_userdata;
};

/* How far one build got. */
enum pipeline_build_status {
        PIPELINE_BUILD_OK,
        PIPELINE_BUILD_SKIPPED,        /* its parent failed */
        PIPELINE_BUILD_TREE_FAILED,    /* a step failed (or the run was cancelled) */
        PIPELINE_BUILD_CHECKS_FAILED,  /* the tree's checks did not pass */
        PIPELINE_BUILD_IMAGE_FAILED,
        PIPELINE_BUILD_BOOT_FAILED,
        PIPELINE_BUILD_STORE_FAILED,
        PIPELINE_BUILD_PUBLISH_FAILED,
};

/* "ok", "skipped", "tree-failed", "checks-failed", ... */
const char *pipeline_build_status_name(enum pipeline_build_status s);

struct pipeline_result {
        struct build_result *trees;      /* one per needed build, spec order (build.h); owned */
        enum pipeline_build_status *status; /* parallel to trees */
        size_t n;
        unsigned ok, failed, skipped;    /* selected builds, by their final status */
        unsigned steps_run, steps_cached;
        char timestamp[32];              /* the run's ${timestamp} (the spec's, fixed at load) */
        char run_uuid[37];
        uint64_t elapsed_ms;
        bool cancelled;
};

/* Runs s (loaded, valid) as described above, sending events to obs (may be
 * NULL). Returns 0 when every selected build got through every stage, 1
 * when a build failed somewhere (see *ret), or -errno when the run could
 * not start (-EINVAL bad options; the engines' errors otherwise), with
 * *ret filled as far as it got. Free *ret with pipeline_result_done. */
int pipeline_run(const struct spec *s, const struct pipeline_options *opts,
                 const struct pipeline_observer *obs, struct pipeline_result *ret);
void pipeline_result_done(struct pipeline_result *r);

/* The last nlines lines of a log file (at most 8 KiB of its end), for
 * showing why a step failed; NULL when it cannot be read. Owned. */
char *pipeline_log_tail(const char *path, unsigned nlines);

/* Writes ev as one JSON object on one line (no newline) to out: "type",
 * "time" (ms since the epoch), "build", then the type's fields (docs/build.md,
 * "Events"). */
struct strbuf;
void pipeline_event_json(const struct pipeline_event *ev, struct strbuf *out);
