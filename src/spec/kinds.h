/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kinds.h — the tables of step kinds and source kinds, as far as the spec
 * layer knows them: each kind's name, parameters (a schema.h field table),
 * shorthand form and cross-field rules.
 *
 * Adding a step kind means one entry here (what it accepts) and, in the
 * build engine, one runner registered under the same name (what it does).
 */
#pragma once

#include "spec/schema.h"

struct step_kind {
        const char *name;
        const char *summary;
        const struct field *fields;
        /* A non-map value written for the kind (`- shell: "make"`) is stored
         * under this key, when it has one of the shorthand types; NULL: no
         * shorthand. A kind whose params are all optional also accepts a
         * bare `- name` or `name: null`. */
        const char *shorthand_key;
        enum field_type shorthand_type;
        /* Extra rules across fields (one-of, path safety); may be NULL.
         * Returns the number of errors added. */
        unsigned (*validate)(const struct value *params, const char *what, struct diag_list *d);
};

struct source_kind {
        const char *name;
        const char *summary;
        const struct field *fields; /* without "type" */
        unsigned (*validate)(const struct value *params, const char *what, struct diag_list *d);
};

extern const struct step_kind *const step_kinds[];   /* NULL-terminated */
extern const struct source_kind *const source_kinds[]; /* NULL-terminated */

/* Keys every step accepts besides its kind key. */
extern const struct field step_common_fields[];

const struct step_kind *step_kind_find(const char *name);
const struct source_kind *source_kind_find(const char *name);

/* True when a path written into the tree (e.g. a file step's destination)
 * stays inside it: absolute, and no ".." component. */
bool tree_path_is_safe(const char *path);
