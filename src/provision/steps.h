/* SPDX-License-Identifier: Apache-2.0 */
/*
 * steps.h — what each step kind does at build time: the runner table that
 * pairs with the spec layer's step-kind table (spec/kinds.h), and the
 * source kinds' bootstrappers.
 *
 * A runner turns a step's evaluated parameters into a sandbox run (which
 * program, which files bound in, which mode) and names the host files the
 * step reads, so that their contents become part of the step's cache key.
 * Adding a step kind: one entry in spec/kinds.c, one runner here; the same
 * for a source kind (source_runners). tests/unit/test_kinds.c checks that
 * the tables pair up.
 */
#pragma once

#include "os/sandbox.h"
#include "spec/spec.h"

struct step_ctx {
        const struct spec *spec;
        const struct spec_build *build;
        const struct spec_step *step;      /* NULL for a source */
        const char *const *lower;          /* layer dirs, topmost first */
        size_t nlower;
        const char *upper;                 /* this step's layer (empty at start) */
        const char *work;                  /* overlay work dir */
        const char *mountpoint;
        const char *run_dir;               /* scratch files for this step (host) */
        const char *packages_dir;          /* the package cache (pkgcache.h); NULL: none */
        int log_fd;                        /* the step's output goes here */
};

struct step_runner {
        const char *kind;
        /* Runs the step; returns 0 with *res filled when the program ran
         * (success is decided by the caller from valid_exit_codes), or
         * -errno after writing the reason to ctx->log_fd. */
        int (*run)(const struct step_ctx *ctx, struct sandbox_result *res);
        /* Appends the host paths the step reads (absolute; files or
         * directories) to *paths; may be NULL. */
        void (*inputs)(const struct spec *s, const struct spec_step *st, char ***paths, size_t *n);
        /* True when the step, with these parameters, writes a file the
         * spec marks private (build_holds_secrets); may be NULL: never. */
        bool (*writes_private)(const struct value *params);
};

extern const struct step_runner *const step_runners[]; /* NULL-terminated */
const struct step_runner *step_runner_find(const char *kind);

/* A source kind's bootstrapper, paired by name with the spec layer's
 * source-kind table (spec/kinds.h) as step runners are with step kinds. */
struct source_runner {
        const char *kind;
        /* Bootstraps ctx->build's source into ctx->upper (which must be
         * empty); ctx->step is NULL. Returns as step_runner.run does. */
        int (*run)(const struct step_ctx *ctx, struct sandbox_result *res);
        /* Appends the host paths the source reads (a tarball) to *paths;
         * may be NULL. */
        void (*inputs)(const struct spec *s, const struct spec_build *b, char ***paths, size_t *n);
};

extern const struct source_runner *const source_runners[]; /* NULL-terminated */
const struct source_runner *source_runner_find(const char *kind);

/* Bootstraps b's source through its kind's runner. Returns 0 with *res
 * filled, or -errno (reason written to the log): -EINVAL without a type,
 * -EOPNOTSUPP for a type without a runner. */
int source_run(const struct step_ctx *ctx, struct sandbox_result *res);
/* Host files b's source reads, from its kind's runner (none for a kind
 * without a runner). */
void source_inputs(const struct spec *s, const struct spec_build *b, char ***paths, size_t *n);

/* Runs `update-initramfs -u -k all` in the tree of ctx (no network),
 * when the tree has update-initramfs and an initramfs; output to
 * ctx->log_fd. Returns as step_runner.run does. */
int step_update_initramfs(const struct step_ctx *ctx, struct sandbox_result *res);

/* Resolves a path written in the spec against the spec's directory. */
char *spec_path(const struct spec *s, const char *path);

/* Runs argv with exactly the environment envp on the host in a private
 * mount and PID namespace (so that whatever it mounts, and every process it
 * starts, is gone when it ends), stdin from in_fd (-1: /dev/null), output
 * to out_fd. For tools that need the host's view (mmdebstrap, tar). */
int run_host_isolated(char *const *argv, char *const *envp, const char *cwd, int in_fd, int out_fd,
                      uint64_t timeout_ms, struct sandbox_result *res);
