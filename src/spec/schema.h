/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema.h — declarative key/type checking of spec maps.
 *
 * Every map kiln reads (a build, a source, each step kind, a variable
 * declaration) is described by a NULL-terminated table of `struct field`.
 * schema_check walks a value tree against such a table and reports, at the
 * offending position, unknown keys (with "did you mean"), wrong types (with
 * the expected type) and missing required keys. The same tables generate the
 * key lists in hints, so documentation and checking cannot drift apart.
 */
#pragma once

#include "spec/value.h"

#include <stdint.h>

enum field_type {
        FT_ANY,
        FT_STRING,       /* a scalar string (numbers are accepted as their text) */
        FT_BOOL,         /* true / false */
        FT_INT,          /* an integer >= 0 */
        FT_SIZE,         /* bytes: 512, "4G", "100MiB" */
        FT_DURATION,     /* "90s", "10m", "1h30m", or a number of seconds */
        FT_MODE,         /* octal permission string "0644" */
        FT_STRING_LIST,  /* a list of strings */
        FT_STRINGS,      /* a string or a list of strings */
        FT_INT_LIST,     /* a list of integers */
        FT_MAP,          /* any map */
        FT_SCALAR_MAP,   /* a map of scalars (e.g. environment variables) */
        FT_LIST,         /* any list */
        FT_OBJECT,       /* a map checked against `children` */
        FT_ABS_PATH,     /* a string starting with '/' */
};

enum {
        F_REQUIRED = 1 << 0,
};

struct field {
        const char *key;
        enum field_type type;
        unsigned flags;
        const struct field *children;  /* FT_OBJECT */
        const char *const *allowed;    /* FT_STRING: NULL-terminated allowed values */
        const char *doc;               /* one line for docs and hints */
};

/* Human wording of a type, e.g. "a duration (90s, 10m, 1h)". */
const char *field_type_describe(enum field_type t);

/* Checks map v against fields. `what` names the map in messages ("step
 * 'shell'", "source"). Values with ->invalid set are skipped (already
 * reported). Returns the number of errors added. */
unsigned schema_check(const struct value *v, const struct field *fields, const char *what,
                      struct diag_list *d);

/* Checks one value against one field's type; `key` names it in messages. */
unsigned schema_check_value(const struct value *v, const struct field *f, const char *what,
                            struct diag_list *d);

/* Parsers for scalar forms (also used by later engines). Return 0 or
 * -EINVAL; the result is written only on success. */
int parse_size(const char *s, uint64_t *ret_bytes);
int parse_duration(const char *s, uint64_t *ret_seconds);
int parse_mode(const char *s, unsigned *ret_mode);

/* Appends the keys of fields as "a, b, c" (for hints). */
void schema_key_list(const struct field *fields, struct strbuf *out);
