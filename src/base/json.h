/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.h — a streaming JSON writer.
 *
 * kiln's machine-readable output (inspect --json, validate --json, later the
 * service API) needs a stable key order chosen by the caller and no document
 * tree, so this is a ~100-line emitter over a strbuf rather than a DOM
 * library. Reading JSON is done by the YAML loader (JSON is YAML's flow
 * style), which gives every value a line and column for error messages.
 *
 * Nesting deeper than JSON_MAX_DEPTH is a programming error and aborts.
 */
#pragma once

#include "base/strbuf.h"

#include <stdint.h>

#define JSON_MAX_DEPTH 64

struct json_writer {
        struct strbuf *out; /* borrowed */
        bool pretty;
        unsigned depth;
        bool first[JSON_MAX_DEPTH];
        bool after_key;
};

void json_init(struct json_writer *w, struct strbuf *out, bool pretty);
void json_begin_object(struct json_writer *w);
void json_end_object(struct json_writer *w);
void json_begin_array(struct json_writer *w);
void json_end_array(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_string(struct json_writer *w, const char *s); /* NULL writes null */
void json_string_n(struct json_writer *w, const char *s, size_t n);
void json_int(struct json_writer *w, int64_t v);
void json_double(struct json_writer *w, double v);
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);
/* Writes pre-formatted JSON text (must be a complete, valid value). */
void json_raw(struct json_writer *w, const char *text);

/* Appends s as a quoted JSON string with escapes (invalid UTF-8 is passed
 * through byte for byte; control characters become \u00XX). */
void json_escape(struct strbuf *out, const char *s, size_t n);
