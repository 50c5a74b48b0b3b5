/* SPDX-License-Identifier: Apache-2.0 */
/*
 * section.h — the section registry: the build sections whose content the
 * spec layer does not know (disk:, outputs: by image/; checks:, boot_check:
 * by check/; publish: by publish/). The engine that reads a section owns
 * its rules, and is registered here as a `struct spec_section`; the
 * pipeline (pipeline_load) hands the table to spec_load
 * (spec_options.sections). The spec layer evaluates each section's
 * ${...}, inherits it along from:, and calls the section's hooks; it never
 * looks inside.
 *
 * Two hooks, because what a user sees today depends on when each runs:
 *   validate  where the section is evaluated, for every expanded build that
 *             writes it (not for inherited copies, which were validated in
 *             the parent): rules about the value alone. It may mark parts
 *             of the value ->invalid.
 *   parse     once loading is over (after --only/--except), for every needed
 *             build that has the section (written or inherited): the typed
 *             struct the engine runs from, stored with the build
 *             (spec_build_section). Reports what validate could not know
 *             (a checks file's content). ctx->quiet asks for no diagnostics
 *             (the same content was reported for an earlier build).
 * Sections are parsed once: engines read the stored struct, never the value.
 */
#pragma once

#include "spec/spec.h"

struct spec_section_ctx {
        const struct spec *spec;
        const struct spec_build *build;
        const char *what;        /* "build 'KEY'": starts every message */
        const char *key;         /* the section's key */
        bool quiet;              /* parse: report nothing (reported already) */
};

struct spec_section {
        const char *key;         /* the key under a build: "disk" */
        /* Optional: see above. v is the evaluated section. */
        void (*validate)(struct value *v, const struct spec_section_ctx *ctx, struct diag_list *d);
        /* Optional: the typed struct in *ret (owned by the spec, freed with
         * free_parsed), also on errors when something parsed. Returns 0,
         * -EINVAL after reporting, or -errno. */
        int (*parse)(const struct value *v, const struct spec_section_ctx *ctx, struct diag_list *d,
                     void **ret);
        void (*free_parsed)(void *parsed);
        /* Optional: true when v's parse for build b would only repeat what
         * an earlier build's parse (prev, the same section) reported:
         * then b's parse is quiet. */
        bool (*same_as)(const struct spec *s, const struct spec_build *b,
                        const struct spec_build *prev);
};

/* For validate hooks of sections that are a map or a list (or, with
 * allow_string, a file name): reports anything else as
 * "WHAT: KEY: expected a map or a list..." and marks v invalid. */
void spec_section_expect_collection(struct value *v, const struct spec_section_ctx *ctx,
                                    bool allow_string, struct diag_list *d);

/* The section registered under key in s, or NULL. */
const struct spec_section *spec_section_find(const struct spec *s, const char *key);

/* The parsed struct of section sec for build b: NULL when b does not have
 * the section, is not needed, or sec is not registered. Borrowed from s. */
const void *spec_build_section(const struct spec_build *b, const struct spec_section *sec);
