/* SPDX-License-Identifier: Apache-2.0 */
#include "spec/value.h"

#include "base/json.h"

struct value *value_new(enum value_kind kind, const struct mark *m) {
        struct value *v = xcalloc(1, sizeof(*v));
        v->kind = kind;
        v->style = STYLE_NONE;
        if (m)
                v->mark = *m;
        return v;
}

struct value *value_new_stringn(const char *s, size_t n, const struct mark *m) {
        struct value *v = value_new(V_STRING, m);
        v->str = xstrndup(s, n);
        v->len = n;
        return v;
}

struct value *value_new_string(const char *s, const struct mark *m) {
        return value_new_stringn(s, strlen(s), m);
}

struct value *value_new_bool(bool b, const struct mark *m) {
        struct value *v = value_new(V_BOOL, m);
        v->b = b;
        v->str = xstrdup(b ? "true" : "false");
        v->len = strlen(v->str);
        return v;
}

struct value *value_new_number(double d, const struct mark *m) {
        struct value *v = value_new(V_NUMBER, m);
        v->num = d;
        if (d == (double)(long long)d && d > -1e15 && d < 1e15) {
                v->is_int = true;
                v->str = xasprintf("%lld", (long long)d);
        } else {
                v->str = xasprintf("%.17g", d);
        }
        v->len = strlen(v->str);
        return v;
}

struct value *value_free(struct value *v) {
        if (!v)
                return NULL;
        for (size_t i = 0; i < v->n; i++) {
                value_free(v->items[i]);
                if (v->keys)
                        value_free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
        free(v->str);
        free(v);
        return NULL;
}

/* Capacity is not stored: arrays always hold cap_for(n) slots, a power of
 * two >= 4, so growth happens exactly when n reaches such a power. */
static size_t cap_for(size_t n) {
        size_t c = 4;
        while (c < n)
                c *= 2;
        return c;
}

struct value *value_clone(const struct value *v) {
        if (!v)
                return NULL;
        struct value *c = xmalloc(sizeof(*c));
        *c = *v;
        c->str = xstrdup_null(v->str);
        c->items = NULL;
        c->keys = NULL;
        if (v->n) {
                c->items = xcalloc(cap_for(v->n), sizeof(*c->items));
                for (size_t i = 0; i < v->n; i++)
                        c->items[i] = value_clone(v->items[i]);
                if (v->keys) {
                        c->keys = xcalloc(cap_for(v->n), sizeof(*c->keys));
                        for (size_t i = 0; i < v->n; i++)
                                c->keys[i] = value_clone(v->keys[i]);
                }
        }
        return c;
}

static void grow(struct value *v, bool with_keys) {
        size_t n = v->n;
        if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
                size_t cap = n ? n * 2 : 4;
                v->items = xreallocarray(v->items, cap, sizeof(*v->items));
                if (with_keys)
                        v->keys = xreallocarray(v->keys, cap, sizeof(*v->keys));
        }
}

void value_list_append(struct value *list, struct value *item) {
        grow(list, false);
        list->items[list->n++] = item;
}

void value_map_append(struct value *map, struct value *key, struct value *item) {
        grow(map, true);
        map->keys[map->n] = key;
        map->items[map->n] = item;
        map->n++;
}

void value_map_set(struct value *map, const char *key, struct value *item) {
        for (size_t i = 0; i < map->n; i++)
                if (streq(map->keys[i]->str, key)) {
                        value_free(map->items[i]);
                        map->items[i] = item;
                        return;
                }
        value_map_append(map, value_new_string(key, &item->mark), item);
}

struct value *value_map_get(const struct value *v, const char *key) {
        if (!v || v->kind != V_MAP)
                return NULL;
        for (size_t i = 0; i < v->n; i++)
                if (streq(v->keys[i]->str, key))
                        return v->items[i];
        return NULL;
}

const struct value *value_map_key(const struct value *v, const char *key) {
        if (!v || v->kind != V_MAP)
                return NULL;
        for (size_t i = 0; i < v->n; i++)
                if (streq(v->keys[i]->str, key))
                        return v->keys[i];
        return NULL;
}

const char *value_kind_name(enum value_kind k) {
        switch (k) {
        case V_NULL: return "null";
        case V_BOOL: return "boolean";
        case V_NUMBER: return "number";
        case V_STRING: return "string";
        case V_LIST: return "list";
        case V_MAP: return "map";
        }
        return "?";
}

bool value_is_scalar(const struct value *v) {
        return v && v->kind != V_LIST && v->kind != V_MAP;
}

uint64_t value_footprint(const struct value *v) {
        if (!v)
                return 0;
        /* Sizes are bounded by memory, so the sum cannot wrap. */
        uint64_t n = sizeof(*v) + (v->str ? v->len + 1 : 0);
        if (v->n)
                n += (uint64_t)cap_for(v->n) * sizeof(*v->items) * (v->keys ? 2 : 1);
        for (size_t i = 0; i < v->n; i++) {
                n += value_footprint(v->items[i]);
                if (v->keys)
                        n += value_footprint(v->keys[i]);
        }
        return n;
}

bool value_any_sensitive(const struct value *v) {
        if (!v)
                return false;
        if (v->sensitive)
                return true;
        for (size_t i = 0; i < v->n; i++)
                if (value_any_sensitive(v->items[i]))
                        return true;
        return false;
}

void value_set_sensitive(struct value *v) {
        if (!v)
                return;
        v->sensitive = true;
        for (size_t i = 0; i < v->n; i++)
                value_set_sensitive(v->items[i]);
}

/* True when a plain scalar with this text would not be a string. */
static bool looks_typed(const char *s) {
        if (!*s || streq(s, "true") || streq(s, "false") || streq(s, "null") || streq(s, "~"))
                return true;
        char *end;
        strtod(s, &end);
        return end != s && !*end;
}

/* A string needs quotes in flow rendering when it is empty, would read as
 * another type, or contains flow indicators. */
static bool needs_quotes(const char *s) {
        if (!*s)
                return true;
        static const char *const words[] = {"true", "false", "null", "~"};
        for (size_t i = 0; i < ARRAY_SIZE(words); i++)
                if (streq(s, words[i]))
                        return true;
        if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]))
                return true;
        if (looks_typed(s))
                return true;
        for (const char *p = s; *p; p++)
                if (strchr(",[]{}#\n\t\"", *p) || (p[0] == ':' && (p[1] == ' ' || !p[1])) ||
                    (p[0] == ' ' && (!p[1] || p[1] == '#')))
                        return true;
        return false;
}

static void format_rec(const struct value *v, struct strbuf *out, bool top) {
        if (v->sensitive) {
                strbuf_adds(out, SENSITIVE_PLACEHOLDER);
                return;
        }
        switch (v->kind) {
        case V_NULL: strbuf_adds(out, "null"); break;
        case V_BOOL:
        case V_NUMBER: strbuf_adds(out, v->str); break;
        case V_STRING:
                /* At the top level a string is shown bare unless it would
                 * read as another type ("0644", "true", ""). */
                if (top && !strchr(v->str, '\n') && !looks_typed(v->str))
                        strbuf_adds(out, v->str);
                else if (needs_quotes(v->str))
                        json_escape(out, v->str, v->len);
                else
                        strbuf_adds(out, v->str);
                break;
        case V_LIST:
                strbuf_addc(out, '[');
                for (size_t i = 0; i < v->n; i++) {
                        if (i)
                                strbuf_adds(out, ", ");
                        format_rec(v->items[i], out, false);
                }
                strbuf_addc(out, ']');
                break;
        case V_MAP:
                strbuf_addc(out, '{');
                for (size_t i = 0; i < v->n; i++) {
                        if (i)
                                strbuf_adds(out, ", ");
                        strbuf_adds(out, v->keys[i]->str);
                        strbuf_adds(out, ": ");
                        format_rec(v->items[i], out, false);
                }
                strbuf_addc(out, '}');
                break;
        }
}

void value_format(const struct value *v, struct strbuf *out) {
        if (!v) {
                strbuf_adds(out, "null");
                return;
        }
        format_rec(v, out, true);
}

void value_to_json(const struct value *v, struct json_writer *w) { value_write_json(v, w, true); }

void value_write_json(const struct value *v, struct json_writer *w, bool redact) {
        if (!v) {
                json_null(w);
                return;
        }
        if (redact && v->sensitive) {
                json_string(w, SENSITIVE_PLACEHOLDER);
                return;
        }
        switch (v->kind) {
        case V_NULL: json_null(w); break;
        case V_BOOL: json_bool(w, v->b); break;
        case V_NUMBER: json_double(w, v->num); break;
        case V_STRING: json_string_n(w, v->str, v->len); break;
        case V_LIST:
                json_begin_array(w);
                for (size_t i = 0; i < v->n; i++)
                        value_write_json(v->items[i], w, redact);
                json_end_array(w);
                break;
        case V_MAP:
                json_begin_object(w);
                for (size_t i = 0; i < v->n; i++) {
                        json_key(w, v->keys[i]->str);
                        value_write_json(v->items[i], w, redact);
                }
                json_end_object(w);
                break;
        }
}

/* Byte offset in src's text of 1-based (line, col). */
static size_t source_offset(const struct source *src, unsigned line, unsigned col) {
        size_t len;
        const char *l = source_line(src, line, &len);
        if (!l)
                return src->len;
        size_t off = (size_t)(l - src->text), chars = 0;
        for (size_t i = 0; i < len; i++)
                if (((unsigned char)l[i] & 0xc0) != 0x80 && ++chars == col)
                        return off + i;
        return off + len;
}

static struct mark mark_of_offset(const struct source *src, size_t off) {
        struct mark m = {src, 1, 1};
        for (size_t i = 0; i < off && i < src->len; i++) {
                /* Line breaks as libyaml and source_line count them. */
                size_t b = source_break_len(src->text + i, src->text + src->len);
                if (b) {
                        m.line++;
                        m.col = 1;
                        i += b - 1;
                } else if (((unsigned char)src->text[i] & 0xc0) != 0x80) {
                        m.col++;
                }
        }
        return m;
}

/* The value's text and its source text differ by quoting, escapes, line
 * folding and block indentation, so positions cannot be computed from the
 * style alone. Instead: take the text at `offset` (up to a line's end), count
 * how often it occurs in the value before `offset`, and find that same
 * occurrence in the source after the value's start. */
struct mark value_mark_at(const struct value *v, size_t offset) {
        struct mark m = v->mark;
        const struct source *src = m.src;
        if (!v->str || offset > v->len || !src || !src->text || !m.line)
                return m;
        const char *needle = v->str + offset;
        size_t nlen = 0;
        while (nlen < 24 && offset + nlen < v->len && needle[nlen] != '\n')
                nlen++;
        if (nlen == 0)
                return m;
        size_t k = 0;
        for (size_t i = 0; i + nlen <= offset; i++)
                if (memcmp(v->str + i, needle, nlen) == 0)
                        k++;
        size_t start = source_offset(src, m.line, m.col);
        /* Written text is at most a few times longer than the value (escapes,
         * indentation); bound the search. */
        size_t limit = start + 4 * v->len + 4096;
        if (limit > src->len)
                limit = src->len;
        for (size_t i = start; i + nlen <= limit; i++)
                if (memcmp(src->text + i, needle, nlen) == 0 && k-- == 0)
                        return mark_of_offset(src, i);
        return m;
}

unsigned value_span(const struct value *v) {
        /* A secret's length is itself a hint: underline one character. */
        if (!v || !v->str || v->sensitive || v->kind == V_LIST || v->kind == V_MAP || memchr(v->str, '\n', v->len))
                return 1;
        size_t chars = 0;
        for (size_t i = 0; i < v->len; i++)
                if (((unsigned char)v->str[i] & 0xc0) != 0x80)
                        chars++;
        if (v->style == STYLE_SINGLE || v->style == STYLE_DOUBLE)
                chars += 2;
        return chars ? (unsigned)chars : 1;
}
