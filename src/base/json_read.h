/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json_read.h — a bounded JSON reader (RFC 8259) for documents kiln reads
 * back: its own metadata (the cache's meta.json, kiln-manifest.json), and
 * answers of HTTP APIs.
 *
 * It is a small DOM reader: json_parse turns a whole text into a tree of
 * struct json_value that the caller walks with json_get / json_str /
 * json_u64. A DOM, not a pull parser, because every reader kiln has looks
 * members up by name in any order (a manifest's "files" before or after
 * its "build"), and the limits below keep the tree small. Every value
 * remembers the byte offset where it starts, so a caller can say where a
 * document is wrong ("kiln-manifest.json: byte 312: size is not a number").
 * json_validate checks a text with the same rules and builds nothing.
 *
 * Every input is untrusted. What is checked before anything is used:
 *   - size:     at most max_bytes of text (JSON_READ_MAX_BYTES);
 *   - depth:    arrays and objects nest at most max_depth levels
 *               (JSON_READ_MAX_DEPTH; the parser recurses once per level);
 *   - strings:  at most max_string bytes each, decoded (JSON_READ_MAX_STRING),
 *               keys included;
 *   - elements: at most max_elements values in the whole document
 *               (JSON_READ_MAX_ELEMENTS), object members counting once;
 *   - syntax:   exactly one value, white space around it; no trailing
 *               commas, comments, NaN, leading zeros, single quotes;
 *   - text:     strings hold valid UTF-8 (no overlong forms, no surrogates,
 *               nothing above U+10FFFF) unless raw_bytes is set; control
 *               characters must be escaped; escapes are the JSON ones, and
 *               a \u surrogate must come as a high-low pair.
 * Memory is O(text length): at most a few allocations per element.
 *
 * Decoded strings may contain NUL (from \u0000): json_str returns NULL for
 * such a string, so a C-string reader never sees a cut value; str/len give
 * the bytes. Numbers are kept as their text and converted on demand.
 * Duplicate keys are kept; json_get returns the first.
 *
 * Errors (json_parse, json_validate): -EBADMSG malformed text, -E2BIG over
 * a limit, -EINVAL bad arguments; *ret_offset (may be NULL) gets the byte
 * offset where the problem was found. The caller owns the tree json_parse
 * returns and frees it with json_value_free. No function prints.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_READ_MAX_BYTES (16u << 20)  /* 16 MiB of text */
#define JSON_READ_MAX_DEPTH 64u
#define JSON_READ_MAX_STRING (4u << 20)  /* 4 MiB per string */
#define JSON_READ_MAX_ELEMENTS 1000000u

/* Limits and options; a zero limit means its JSON_READ_MAX_* default.
 * Pass NULL for all defaults. */
struct json_read_opts {
        size_t max_bytes;
        size_t max_depth;
        size_t max_string;
        size_t max_elements;
        bool raw_bytes; /* accept strings that are not UTF-8 (bytes kept as they are) */
};

enum json_type {
        JSON_NULL,
        JSON_FALSE,
        JSON_TRUE,
        JSON_NUMBER,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
};

struct json_value {
        enum json_type type;
        size_t offset;             /* where the value starts in the text */
        char *str;                 /* STRING: decoded; NUMBER: its text; NUL-terminated */
        size_t len;                /* bytes in str */
        size_t n;                  /* ARRAY, OBJECT: elements */
        struct json_value **items; /* ARRAY: elements; OBJECT: member values */
        struct json_value **keys;  /* OBJECT: member names (STRING values) */
};

/* Parses text[0..len) into *ret (owned by the caller). 0 or an error above;
 * nothing is returned on error. */
int json_parse(const char *text, size_t len, const struct json_read_opts *o,
               struct json_value **ret, size_t *ret_offset);

/* Checks that text[0..len) is one JSON value within the limits, building
 * nothing. 0 or an error above. */
int json_validate(const char *text, size_t len, const struct json_read_opts *o,
                  size_t *ret_offset);

/* Frees v and everything below it (NULL is fine); returns NULL. */
struct json_value *json_value_free(struct json_value *v);

/* The value of obj's first member named key, or NULL (obj NULL, not an
 * object, or no such member). O(members). */
const struct json_value *json_get(const struct json_value *obj, const char *key);

/* v's text when v is a string without NUL bytes, else NULL. */
const char *json_str(const struct json_value *v);

/* v as an unsigned integer: -EBADMSG unless v is a number written as a
 * non-negative integer (no fraction, no exponent), -ERANGE above
 * UINT64_MAX. *ret is written only on success. */
int json_u64(const struct json_value *v, uint64_t *ret);

/* v as a signed integer: as json_u64, with a sign; -ERANGE outside int64_t. */
int json_i64(const struct json_value *v, int64_t *ret);
