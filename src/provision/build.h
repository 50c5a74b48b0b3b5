/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build.h — the build engine: turns the expanded builds of a spec into
 * provisioned root trees, one cached layer per step.
 *
 * For each build (parents first; independent builds in parallel):
 *   1. its base: the source bootstrapped into a layer (mmdebstrap, a
 *      tarball), or the parent build's finished layer stack (`from:`);
 *   2. each step in order, run in a sandbox (sandbox.h) on an overlay of the
 *      layers so far, its changes captured as a new layer in the cache
 *      (cache.h) under the step's key: SHA-256 of the parent key, the arch,
 *      the step's kind and evaluated parameters, and the content of every
 *      host file it reads. A key already in the cache is a hit: the step
 *      does not run. So an unchanged spec runs nothing, and a change at
 *      step N re-runs N and what follows;
 *   3. a build record (record.json): keys, per-step durations and cache
 *      status, installed packages and versions (dpkg), the layer stack,
 *      and the outcome of the checks when a verifier is set (see below).
 *
 * Per build, a folder under the work directory holds the record, one log
 * per step (secrets masked), the mount point, and — after a failure with
 * on_error=abort — the failed step's partial layer.
 *
 * The engine never prints: progress goes to an observer (the CLI draws it).
 */
#pragma once

#include "provision/cache.h"
#include "spec/spec.h"

#include <signal.h>
#include <stdint.h>

enum on_error {
        ON_ERROR_CLEANUP, /* discard the failed step's changes (default) */
        ON_ERROR_ABORT,   /* keep them in <build>/failed/ for `kiln shell --failed` */
        ON_ERROR_RETRY,   /* run the failed step once more before giving up */
};

enum step_status {
        STEP_HIT,      /* found in the cache, not run */
        STEP_RUNNING,
        STEP_BUILT,    /* ran and was stored */
        STEP_FAILED,
        STEP_SKIPPED,  /* not run because an earlier step or the parent failed */
};

/* What --explain reports for one step. */
struct step_explain {
        bool hit;
        const char *why;   /* for a miss: "no earlier build of this step",
                              "the parent layer changed", "parameters changed: inline",
                              "file changed: ansible/site.yml", "--force" (static or
                              owned by the engine until the callback returns) */
};

struct step_event {
        const struct spec_build *build;
        unsigned index;          /* 0 = the source, 1.. = the step's place in the spec
                                    (log names: logs/NN-kind.log) */
        unsigned position;       /* 1.. = the step's place among the steps this build runs
                                    (steps dropped by only:/except: not counted); 0 = source */
        unsigned count;          /* the build's number of steps (the source is 0) */
        const char *kind;        /* "source", "packages", ... */
        const char *label;       /* the step's name:, or a summary */
        enum step_status status;
        const char *key;
        uint64_t elapsed_ms;
        int exit_code;           /* when failed: the command's exit status, or -1 */
        const char *log_path;    /* the step's log file, or NULL for hits */
        const struct step_explain *explain;
};

struct build_observer {
        void *userdata;
        /* Called from the thread running the build; serialised by the engine. */
        void (*step)(void *userdata, const struct step_event *ev);
        /* A line of a step's output (secrets masked), when debug is on. */
        void (*output)(void *userdata, const struct spec_build *b, const char *line, size_t len);
};

struct json_writer;

/* A last look at a finished tree before its record is written — the
 * check engine, wired in by the CLI (the engine does not depend on it).
 * verify is called for each build that has `checks:`, from the thread
 * running the build (not serialised), with the tree's layers (topmost
 * first) and the build's folder. It writes exactly one JSON value to w
 * (record.json's "checks") whatever it returns, and returns 0 when the
 * tree passed, 1 when it failed, -errno when it could not verify; on
 * non-zero, *ret_why says why in one line (owned). A build that does not
 * pass fails: its record is written, its layer stack kept, and no image
 * is made from it. */
struct build_verifier {
        void *userdata;
        int (*verify)(void *userdata, const struct spec_build *b, const char *const *layers,
                      size_t nlayers, const char *dir, struct json_writer *w, char **ret_why);
};

struct build_options {
        struct cache *cache;
        const char *work_dir;      /* per-build folders go here (created) */
        enum on_error on_error;
        bool force;                /* ignore cache hits */
        bool debug;                /* pass step output to observer->output */
        unsigned parallel;         /* builds at once (>= 1) */
        const struct build_observer *observer;
        const struct build_verifier *verifier; /* NULL: none */
        /* Optional: when it becomes non-zero, no further step starts (checked
         * before each step; a running step finishes or fails first). The
         * build then fails with failed_step "cancelled". */
        const volatile sig_atomic_t *cancel;
};

struct build_result {
        const struct spec_build *build;
        bool ok;
        bool skipped;              /* not attempted: its parent failed */
        char *failed_step;         /* "3 (shell)" when a step failed; owned */
        bool verify_failed;        /* the steps succeeded, the verifier did not pass the
                                      tree; failed_step holds its reason */
        char *failed_log;          /* that step's log; owned */
        char *failed_tree;         /* on_error=abort: the kept partial layer; owned */
        char *record_path;         /* record.json; owned */
        char *final_key;           /* key of the top layer; owned */
        uint64_t elapsed_ms;
        unsigned steps_run, steps_cached;
};

/* Builds every build of s that is `needed` (selected or a parent of one).
 * Returns 0 when all succeeded, -EIO when any build failed (see results),
 * or -errno when the engine could not start (the sandbox is unusable, ...).
 * *ret_results has one entry per needed build, in spec order. */
int build_run(const struct spec *s, const struct build_options *o,
              struct build_result **ret_results, size_t *ret_n);
void build_results_free(struct build_result *r, size_t n);

/* True when b's tree may hold a secret file: its source or a step of it
 * or of an ancestor (from:) uses a sensitive value, or a file step gives
 * a mode that others may not read (0400, 0600, 0640: the spec marks the
 * file private). Such a build's images are written owner-only (0600) and
 * its store blobs follow (docs/build.md, "Secrets"). */
bool build_holds_secrets(const struct spec_build *b);

/* The folder of one build under the work dir; owned by the caller. */
char *build_dir(const struct build_options *o, const struct spec_build *b);

/* Reads a finished build's layer stack (topmost first) from its record;
 * the array and strings are owned by the caller. */
int build_layers(const struct build_options *o, const struct spec_build *b, char ***ret_layers,
                 size_t *ret_n);
