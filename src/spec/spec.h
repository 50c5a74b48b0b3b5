/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec.h — a loaded, validated and expanded kiln spec.
 *
 * spec_load reads one spec file (YAML or JSON), resolves variables from
 * defaults, var files, KILN_VAR_* and --var (in increasing precedence),
 * expands each build's matrix into named builds, links `from:` parents
 * (rejecting cycles and missing parents), applies --only/--except, and
 * evaluates every ${...} of every expanded build. Everything the user wrote
 * wrong is reported to the diag_list with its file:line:column; loading goes
 * on after an error so that one run reports them all.
 *
 * The resulting `struct spec` owns everything reachable from it; the engines
 * (build, image, check, publish) read it and never modify it.
 * Reference for users: docs/spec.md.
 */
#pragma once

#include "spec/interp.h"
#include "spec/value.h"

#include <time.h>

#define SPEC_MAX_BUILDS 1024      /* expanded builds in one spec */
#define SPEC_MAX_MATRIX_CELLS 256 /* expansions of one build */
#define SPEC_MAX_STEPS 1000       /* steps in one build */
#define SPEC_MAX_DISK_SIZE (1ull << 48) /* 256 TiB: a disk or partition (image/disk.h's DISK_MAX_SIZE) */
#define SPEC_FORMAT_VERSION 1

enum var_type { VAR_STRING, VAR_NUMBER, VAR_BOOL, VAR_LIST, VAR_MAP };

struct spec_var {
        char *name;
        enum var_type type;
        char *description;       /* may be NULL */
        bool sensitive;
        struct value *value;     /* resolved; NULL when required and unset (error reported) */
        const char *origin;      /* "default", "var file PATH", "environment", "command line" */
        char *origin_buf;        /* owned storage behind origin when needed */
        struct mark decl;        /* where it was declared */
        bool failed;             /* a value was given but rejected (reported) */
};

struct spec_axis {
        char *name;  /* "arch", "role", ... */
        char *value;
};

struct spec_step {
        unsigned index;          /* 1-based position in the build's steps */
        const char *kind;        /* "packages", "shell", ... (static string) */
        char *name;              /* from `name:`, or NULL */
        bool network;            /* false cuts the network in the sandbox */
        struct value *params;    /* evaluated parameters of the kind (map or NULL) */
        struct mark mark;
};

struct spec_build {
        char *name;              /* expanded name, unique in the spec */
        char *id;                /* stable identity: the key plus matrix values
                                    (NAME-ROLE-...-ARCH), the same from run to run
                                    even when name: uses ${timestamp} */
        char *base;              /* the key under builds: */
        char *description;
        char *arch;              /* normalised: a kiln name in base/arch.h's table */
        char *role;              /* matrix/`role:` value or NULL */
        struct spec_axis *axes;  /* matrix cell (declaration order) */
        size_t naxes;
        char *from;              /* parent as written, or NULL */
        struct spec_build *parent; /* borrowed, resolved */
        bool selected;           /* chosen by --only/--except */
        bool needed;             /* selected, or a parent of a selected build */
        struct value *source;    /* evaluated source map; NULL when from: */
        struct spec_step *steps;
        size_t nsteps;
        /* Evaluated sections; NULL when absent. *_from names the build a
         * section was inherited from (NULL when written here). */
        struct value *disk, *outputs, *checks, *publish, *labels;
        const char *disk_from, *outputs_from, *checks_from, *publish_from;
        bool boot_check;         /* boot_check: true (or inherited): boot the image
                                    and run the checks in the guest */
        bool boot_check_set;     /* written here (not inherited) */
        struct value *boot_check_opts; /* the evaluated boot_check: value (true/false or a
                                          map of options: check_boot_policy_parse), or NULL */
        char **files_read;       /* host files the spec read for this build (file()) */
        size_t nfiles_read;
        struct mark mark;
};

struct spec {
        char *path;
        char *dir;               /* directory of path: relative paths resolve here */
        char *description;
        char *timestamp;         /* RFC 3339 UTC, fixed for the run */
        struct source **sources; /* every input: spec, var files, command line */
        size_t nsources;
        struct value *doc;
        struct spec_var *vars;
        size_t nvars;
        struct spec_build **builds; /* parents before children; declaration order otherwise */
        size_t nbuilds;
        size_t sources_cap, vars_cap, builds_cap; /* private */
        struct interp_budget budget; /* private: what loading may spend on
                                        interpolation and copies (interp.h) */
};

struct spec_options {
        const char *path;
        /* When text is set, it is the spec's content and path only names it
         * (for messages and relative paths) — used by the fuzzer. */
        const char *text;
        size_t text_len;
        const char *const *var_files;  /* --var-file, in order (later wins) */
        size_t nvar_files;
        const char *const *vars;       /* --var NAME=VALUE, in order (later wins) */
        size_t nvars;
        const char *const *only;       /* globs */
        size_t nonly;
        const char *const *except;
        size_t nexcept;
        char *const *environ;          /* for KILN_VAR_*; NULL means none */
        time_t now;                    /* the run's ${timestamp} */
        /* When set, called once at the end of loading, also after errors,
         * with the builds that loaded (failed sections are missing or have
         * ->invalid set): the layers above check what the spec layer keeps
         * opaque (checks:, publish:), so that one run reports every
         * section's errors. What it reports counts as spec errors. */
        void (*check_sections)(const struct spec *s, struct diag_list *d, void *arg);
        void *check_arg;
};

/* Loads, validates and expands a spec. Returns 0 and the spec in *ret when
 * no error was reported (warnings may have been); otherwise -EINVAL (spec
 * errors), or -errno when the spec file itself could not be read (also
 * reported). */
int spec_load(const struct spec_options *o, struct diag_list *d, struct spec **ret);
struct spec *spec_free(struct spec *s);
DEFINE_POINTER_CLEANUP(struct spec, spec_free)

const char *var_type_name(enum var_type t);

/* The interpolation scope of an expanded build ({var, build, matrix,
 * timestamp}), as used at load time — for evaluating templates at build
 * time (file steps with template: true). Owned by the caller. */
struct value *spec_build_scope(const struct spec *s, const struct spec_build *b);

/* Every sensitive value's text (for masking logs); NULL-terminated, owned
 * by the caller (free the array, not the strings: they borrow from s). */
const char **spec_secrets(const struct spec *s);
const struct spec_build *spec_find_build(const struct spec *s, const char *name);

/* The run's timestamp: SOURCE_DATE_EPOCH when set and valid, else now. */
time_t spec_now(void);

