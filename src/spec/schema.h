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

/* Every number a spec gives has a range (docs/spec.md, "Numbers and
 * sizes"). An FT_INT or FT_INT_LIST field is 0 to SCHEMA_INT_MAX unless a
 * range flag below narrows or widens it; sizes and durations are bounded
 * by their parsers. */
#define SCHEMA_INT_MAX 2147483647ll          /* FT_INT without a range flag */
#define SCHEMA_SIZE_MAX 9223372036854775807ull /* FT_SIZE: fits off_t */
#define SCHEMA_DURATION_MAX (30ull * 86400)  /* FT_DURATION: 30 days, in seconds */

enum {
        F_REQUIRED = 1 << 0,
        F_RANGE_BYTE = 1 << 1,  /* FT_INT(_LIST): 0-255 (exit codes) */
        F_RANGE_ID = 1 << 2,    /* FT_INT(_LIST): 0-4294967294 (uid, gid) */
        F_RANGE_SMALL = 1 << 3, /* FT_INT(_LIST): 0-100 (retries) */
        F_RANGE_LEVEL = 1 << 4, /* FT_INT(_LIST): 0-4 (verbosity) */
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

/* Parsers for scalar forms (also used by later engines). Return 0, or
 * -EINVAL for text that is not of the form, -ERANGE for a value out of
 * range; the result is written only on success.
 *
 * A size is a whole or decimal number (digits, optionally '.' and digits;
 * no sign, exponent, hex or spaces) with an optional unit: B, K/KiB, M/MiB,
 * G/GiB, T/TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000); the
 * bytes are rounded down and at most SCHEMA_SIZE_MAX. All arithmetic is
 * exact (integers, overflow-checked).
 * A duration is a whole number of seconds, or one or more NUMBER UNIT with
 * the units s, m, h, d ("1h30m"), in total at most SCHEMA_DURATION_MAX. */
int parse_size(const char *s, uint64_t *ret_bytes);
int parse_duration(const char *s, uint64_t *ret_seconds);

/* The range an FT_INT / FT_INT_LIST field accepts (from its flags). */
void schema_int_range(const struct field *f, long long *ret_min, long long *ret_max);
int parse_mode(const char *s, unsigned *ret_mode);

/* Appends the keys of fields as "a, b, c" (for hints). */
void schema_key_list(const struct field *fields, struct strbuf *out);
