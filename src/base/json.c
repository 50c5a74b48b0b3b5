/* SPDX-License-Identifier: Apache-2.0 */
#include "base/json.h"

#include <inttypes.h>
#include <math.h>

void json_init(struct json_writer *w, struct strbuf *out, bool pretty) {
        *w = (struct json_writer){.out = out, .pretty = pretty};
        w->first[0] = true;
}

static void newline(struct json_writer *w) {
        if (!w->pretty)
                return;
        strbuf_addc(w->out, '\n');
        strbuf_addch_n(w->out, ' ', 2 * (size_t)w->depth);
}

/* Emits the separator before a value (or key) at the current level. */
static void before_value(struct json_writer *w) {
        if (w->after_key) {
                w->after_key = false;
                return;
        }
        if (!w->first[w->depth])
                strbuf_addc(w->out, ',');
        if (w->depth > 0)
                newline(w);
        w->first[w->depth] = false;
}

static void open(struct json_writer *w, char c) {
        before_value(w);
        strbuf_addc(w->out, c);
        if (w->depth + 1 >= JSON_MAX_DEPTH)
                abort();
        w->depth++;
        w->first[w->depth] = true;
}

static void close_(struct json_writer *w, char c) {
        bool empty = w->first[w->depth];
        w->depth--;
        if (!empty)
                newline(w);
        strbuf_addc(w->out, c);
}

void json_begin_object(struct json_writer *w) { open(w, '{'); }
void json_end_object(struct json_writer *w) { close_(w, '}'); }
void json_begin_array(struct json_writer *w) { open(w, '['); }
void json_end_array(struct json_writer *w) { close_(w, ']'); }

void json_escape(struct strbuf *out, const char *s, size_t n) {
        strbuf_addc(out, '"');
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                switch (c) {
                case '"': strbuf_adds(out, "\\\""); break;
                case '\\': strbuf_adds(out, "\\\\"); break;
                case '\n': strbuf_adds(out, "\\n"); break;
                case '\r': strbuf_adds(out, "\\r"); break;
                case '\t': strbuf_adds(out, "\\t"); break;
                default:
                        if (c < 0x20 || c == 0x7f)
                                strbuf_addf(out, "\\u%04x", c);
                        else
                                strbuf_addc(out, (char)c);
                }
        }
        strbuf_addc(out, '"');
}

void json_key(struct json_writer *w, const char *key) {
        before_value(w);
        json_escape(w->out, key, strlen(key));
        strbuf_adds(w->out, w->pretty ? ": " : ":");
        w->after_key = true;
}

void json_string_n(struct json_writer *w, const char *s, size_t n) {
        before_value(w);
        json_escape(w->out, s, n);
}

void json_string(struct json_writer *w, const char *s) {
        if (!s) {
                json_null(w);
                return;
        }
        json_string_n(w, s, strlen(s));
}

void json_int(struct json_writer *w, int64_t v) {
        before_value(w);
        strbuf_addf(w->out, "%" PRId64, v);
}

void json_double(struct json_writer *w, double v) {
        before_value(w);
        if (!isfinite(v))
                strbuf_adds(w->out, "null");
        else if (v == (double)(int64_t)v && fabs(v) < 9007199254740992.0)
                strbuf_addf(w->out, "%" PRId64, (int64_t)v);
        else {
                /* The shortest form that reads back as the same double:
                 * 1.1, not 1.1000000000000001. */
                char buf[32];
                for (int prec = 15; prec <= 17; prec++) {
                        snprintf(buf, sizeof(buf), "%.*g", prec, v);
                        if (strtod(buf, NULL) == v)
                                break;
                }
                strbuf_adds(w->out, buf);
        }
}

void json_bool(struct json_writer *w, bool v) {
        before_value(w);
        strbuf_adds(w->out, v ? "true" : "false");
}

void json_null(struct json_writer *w) {
        before_value(w);
        strbuf_adds(w->out, "null");
}

void json_raw(struct json_writer *w, const char *text) {
        before_value(w);
        strbuf_adds(w->out, text);
}
