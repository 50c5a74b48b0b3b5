/* SPDX-License-Identifier: Apache-2.0 */
/*
 * value.h — kiln's document model: a tree of typed values, each remembering
 * where in which source it was written.
 *
 * The YAML/JSON loader (yaml.h) produces value trees; interpolation (interp.h)
 * maps a tree to a new one with ${...} evaluated; the spec layer validates
 * and keeps evaluated trees as build parameters. Every value owns its
 * children; value_free frees the whole subtree.
 *
 * Scalars always keep their text in `str` (a number keeps "0644", not 420),
 * so a schema can read a scalar the way the field needs it. Plain scalars are
 * typed by the YAML 1.2 core schema: null (~, null, empty), bool (true,
 * false), numbers; everything else — including yes/no/on/off — is a string.
 */
#pragma once

#include "base/diag.h"

#include <stdint.h>

enum value_kind { V_NULL, V_BOOL, V_NUMBER, V_STRING, V_LIST, V_MAP };

enum scalar_style {
        STYLE_PLAIN,
        STYLE_SINGLE,  /* 'quoted' */
        STYLE_DOUBLE,  /* "quoted" */
        STYLE_LITERAL, /* | */
        STYLE_FOLDED,  /* > */
        STYLE_NONE,    /* computed, not written in a source */
};

struct value {
        enum value_kind kind;
        struct mark mark;       /* start of the value in its source */
        enum scalar_style style;
        bool sensitive;         /* derived from a sensitive variable */
        bool invalid;           /* evaluation failed and was reported: skip checks */
        char *str;              /* scalars: text; owned */
        size_t len;             /* length of str */
        double num;             /* V_NUMBER */
        bool is_int;            /* V_NUMBER written as an integer */
        bool b;                 /* V_BOOL */
        size_t n;               /* V_LIST / V_MAP: element count */
        struct value **items;   /* elements / map values; owned */
        struct value **keys;    /* V_MAP: keys, string values with marks; owned */
};

struct value *value_new(enum value_kind kind, const struct mark *m);
struct value *value_new_string(const char *s, const struct mark *m);
struct value *value_new_stringn(const char *s, size_t n, const struct mark *m);
struct value *value_new_bool(bool b, const struct mark *m);
struct value *value_new_number(double d, const struct mark *m);
struct value *value_free(struct value *v);
DEFINE_POINTER_CLEANUP(struct value, value_free)
#define _cleanup_value_ _cleanup_(value_freep)

/* Deep copy (marks, flags and all). NULL gives NULL. */
struct value *value_clone(const struct value *v);

/* Appends item (taking ownership) to a list. */
void value_list_append(struct value *list, struct value *item);
/* Appends key -> item (taking ownership of both) to a map; does not check for
 * duplicates. */
void value_map_append(struct value *map, struct value *key, struct value *item);
/* Sets key to item (taking ownership of item), replacing an existing entry. */
void value_map_set(struct value *map, const char *key, struct value *item);

/* Map lookup; NULL when v is not a map or has no such key. Borrowed. */
struct value *value_map_get(const struct value *v, const char *key);
/* The key value for key (for its mark), or NULL. Borrowed. */
const struct value *value_map_key(const struct value *v, const char *key);

/* "null", "boolean", "number", "string", "list", "map". */
const char *value_kind_name(enum value_kind k);
bool value_is_scalar(const struct value *v);

/* Approximate bytes of memory v's tree holds (nodes, text, item and key
 * arrays): what a copy of it costs. Walks the tree; 0 for NULL. */
uint64_t value_footprint(const struct value *v);

/* True when any value in the tree is sensitive. */
bool value_any_sensitive(const struct value *v);
/* Marks the whole tree sensitive. */
void value_set_sensitive(struct value *v);

/* Appends a one-line, YAML-flow-like rendering: strings unquoted at top
 * level when plain, lists as [a, b], maps as {k: v}. Sensitive values (at
 * any depth) render as <sensitive>. */
void value_format(const struct value *v, struct strbuf *out);

struct json_writer;
/* Writes v as JSON; sensitive values become the string "<sensitive>". */
void value_to_json(const struct value *v, struct json_writer *w);
/* Writes v as JSON with sensitive values in clear (redact false) — only for
 * hashing cache keys, never for output. */
void value_write_json(const struct value *v, struct json_writer *w, bool redact);

/* Best-effort location of the character at byte offset `offset` of scalar
 * v's text in its source (for errors inside a string, e.g. in ${...}).
 * Exact for plain and single-line quoted scalars; for block and multi-line
 * scalars it finds the line and searches it for the text. Falls back to
 * v->mark. */
struct mark value_mark_at(const struct value *v, size_t offset);

/* How many characters to underline for v in a diagnostic: its text as
 * written (quotes included) on one line; 1 for collections and multi-line
 * scalars. */
unsigned value_span(const struct value *v);

#define SENSITIVE_PLACEHOLDER "<sensitive>"

/* v's text for a message: SENSITIVE_PLACEHOLDER when v is sensitive. */
static inline const char *value_shown(const struct value *v) {
        return v->sensitive ? SENSITIVE_PLACEHOLDER : v->str;
}
