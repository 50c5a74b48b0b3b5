/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loader walks libyaml's event stream with an explicit recursion over
 * collections. Aliases are expanded as deep copies.
 *
 * Invariants:
 * - No node is freed before yaml_load returns: entries dropped after an
 *   error (duplicate keys, merge keys, non-scalar keys) move to
 *   loader.dropped, so the anchor table (which borrows nodes) never points
 *   at freed memory, however the dropped node was anchored.
 * - Every cost is bounded by a named limit of yaml.h: nodes, nesting and
 *   scalar bytes count what alias expansion produces, not what is written.
 * - Anchor lookup and duplicate-key detection are hash lookups (expected
 *   O(1)), keyed with a per-load random SipHash key so that crafted names
 *   cannot make them quadratic.
 */
#include "spec/yaml.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <yaml.h>

/* ---- a string-keyed hash table (open addressing, linear probing) ---- */

struct strtab_slot {
        const char *key; /* NULL: empty; borrowed unless the table says so */
        size_t len;
        uint64_t hash;
        void *val;
};

struct strtab {
        struct strtab_slot *slots;
        size_t cap, n; /* cap is 0 or a power of two; n <= cap / 2 */
        const uint64_t *seed;
        bool owns_keys;
};

static inline uint64_t rotl64(uint64_t x, unsigned b) {
        return (x << b) | (x >> (64 - b));
}

#define SIPROUND(v0, v1, v2, v3)                                                        \
        do {                                                                            \
                v0 += v1, v1 = rotl64(v1, 13), v1 ^= v0, v0 = rotl64(v0, 32);           \
                v2 += v3, v3 = rotl64(v3, 16), v3 ^= v2;                                \
                v0 += v3, v3 = rotl64(v3, 21), v3 ^= v0;                                \
                v2 += v1, v1 = rotl64(v1, 17), v1 ^= v2, v2 = rotl64(v2, 32);           \
        } while (0)

/* SipHash-1-3 of s with the 128-bit key k: keyed, so that which names
 * collide cannot be known in advance. */
static uint64_t siphash13(const uint64_t k[2], const char *s, size_t len) {
        uint64_t v0 = k[0] ^ 0x736f6d6570736575ull, v1 = k[1] ^ 0x646f72616e646f6dull;
        uint64_t v2 = k[0] ^ 0x6c7967656e657261ull, v3 = k[1] ^ 0x7465646279746573ull;
        const unsigned char *p = (const unsigned char *)s;
        size_t whole = len & ~(size_t)7;
        for (size_t i = 0; i < whole; i += 8) {
                uint64_t m = 0;
                for (unsigned j = 0; j < 8; j++)
                        m |= (uint64_t)p[i + j] << (8 * j);
                v3 ^= m;
                SIPROUND(v0, v1, v2, v3);
                v0 ^= m;
        }
        uint64_t b = (uint64_t)len << 56;
        for (size_t j = 0; j < (len & 7); j++)
                b |= (uint64_t)p[whole + j] << (8 * j);
        v3 ^= b;
        SIPROUND(v0, v1, v2, v3);
        v0 ^= b;
        v2 ^= 0xff;
        for (unsigned i = 0; i < 3; i++)
                SIPROUND(v0, v1, v2, v3);
        return v0 ^ v1 ^ v2 ^ v3;
}

static struct strtab_slot *strtab_find(const struct strtab *t, const char *key, size_t len,
                                       uint64_t h) {
        for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
                struct strtab_slot *s = &t->slots[i];
                if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
                        return s;
        }
}

/* The value stored under key, or NULL. Expected O(1). */
static void *strtab_get(const struct strtab *t, const char *key) {
        if (!t->cap)
                return NULL;
        size_t len = strlen(key);
        return strtab_find(t, key, len, siphash13(t->seed, key, len))->val;
}

/* Sets key to val, replacing an earlier value. key is borrowed, or copied
 * when the table owns its keys. Expected amortised O(1). */
static void strtab_set(struct strtab *t, const char *key, void *val) {
        if ((t->n + 1) * 2 > t->cap) {
                struct strtab old = *t;
                t->cap = old.cap ? old.cap * 2 : 16;
                t->slots = xcalloc(t->cap, sizeof(*t->slots));
                for (size_t i = 0; i < old.cap; i++)
                        if (old.slots[i].key)
                                *strtab_find(t, old.slots[i].key, old.slots[i].len,
                                             old.slots[i].hash) = old.slots[i];
                free(old.slots);
        }
        size_t len = strlen(key);
        uint64_t h = siphash13(t->seed, key, len);
        struct strtab_slot *s = strtab_find(t, key, len, h);
        if (!s->key) {
                *s = (struct strtab_slot){t->owns_keys ? xstrdup(key) : key, len, h, NULL};
                t->n++;
        }
        s->val = val;
}

static void strtab_done(struct strtab *t) {
        if (t->owns_keys)
                for (size_t i = 0; i < t->cap; i++)
                        free((char *)t->slots[i].key);
        free(t->slots);
        *t = (struct strtab){0};
}

/* ---- the loader ---- */

struct loader {
        yaml_parser_t parser;
        const struct source *src;
        struct diag_list *d;
        uint64_t seed[2];
        struct strtab anchors; /* name -> struct value *, borrowed from the tree */
        struct value **dropped; /* entries dropped after an error; owned */
        size_t ndropped, dropped_cap;
        size_t nodes;  /* values so far, aliases expanded */
        size_t bytes;  /* scalar text so far, aliases expanded */
        bool failed;
};

static struct mark mark_of(const struct loader *l, yaml_mark_t m) {
        return (struct mark){l->src, (unsigned)m.line + 1, (unsigned)m.column + 1};
}

/* Keeps v alive until the end of the load: anchors may point into it. */
static void drop(struct loader *l, struct value *v) {
        if (!v)
                return;
        GROW(l->dropped, l->ndropped, l->dropped_cap);
        l->dropped[l->ndropped++] = v;
}

struct tree_size {
        size_t nodes, bytes;
        unsigned height; /* 0 for a scalar */
};

/* What a copy of v costs. O(size of v); v's height is bounded by
 * YAML_MAX_DEPTH, because every tree the loader builds is. */
static void tree_size(const struct value *v, struct tree_size *ret) {
        struct tree_size t = {1, v->str ? v->len : 0, 0};
        for (size_t i = 0; i < v->n; i++) {
                struct tree_size c;
                tree_size(v->items[i], &c);
                t.nodes += c.nodes;
                t.bytes += c.bytes;
                if (c.height + 1 > t.height)
                        t.height = c.height + 1;
                if (v->keys) {
                        t.nodes++;
                        t.bytes += v->keys[i]->len;
                }
        }
        *ret = t;
}
/* Returns true when text (a plain scalar) matches the YAML 1.2 core schema
 * integer or float forms; sets *ret_num. */
static bool parse_number(const char *s, double *ret_num, bool *ret_int) {
        const char *p = s;
        if (*p == '+' || *p == '-')
                p++;
        if (startswith(p, "0x") || startswith(p, "0o")) {
                if (p != s)
                        return false;
                int base = p[1] == 'x' ? 16 : 8;
                const char *q = p + 2;
                if (!*q)
                        return false;
                for (const char *c = q; *c; c++)
                        if (base == 16 ? !isxdigit((unsigned char)*c) : (*c < '0' || *c > '7'))
                                return false;
                *ret_num = (double)strtoull(q, NULL, base);
                *ret_int = true;
                return true;
        }
        if (streq(p, ".inf") || streq(p, ".Inf") || streq(p, ".INF")) {
                *ret_num = s[0] == '-' ? -INFINITY : INFINITY;
                *ret_int = false;
                return true;
        }
        if (streq(s, ".nan") || streq(s, ".NaN") || streq(s, ".NAN")) {
                *ret_num = NAN;
                *ret_int = false;
                return true;
        }
        bool digits = false, dot = false, exp = false;
        for (const char *c = p; *c; c++) {
                if (isdigit((unsigned char)*c))
                        digits = true;
                else if (*c == '.' && !dot && !exp)
                        dot = true;
                else if ((*c == 'e' || *c == 'E') && digits && !exp) {
                        exp = true;
                        if (c[1] == '+' || c[1] == '-')
                                c++;
                        if (!isdigit((unsigned char)c[1]))
                                return false;
                } else
                        return false;
        }
        if (!digits)
                return false;
        *ret_num = strtod(s, NULL);
        *ret_int = !dot && !exp;
        return true;
}

static struct value *make_scalar(struct loader *l, const yaml_event_t *e) {
        struct mark m = mark_of(l, e->start_mark);
        const char *text = (const char *)e->data.scalar.value;
        size_t len = e->data.scalar.length;
        const char *tag = (const char *)e->data.scalar.tag;
        struct value *v;
        enum scalar_style style;
        switch (e->data.scalar.style) {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = STYLE_SINGLE; break;
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = STYLE_DOUBLE; break;
        case YAML_LITERAL_SCALAR_STYLE: style = STYLE_LITERAL; break;
        case YAML_FOLDED_SCALAR_STYLE: style = STYLE_FOLDED; break;
        default: style = STYLE_PLAIN;
        }
        if (tag && !streq(tag, YAML_STR_TAG) && !streq(tag, "!")) {
                const char *shortform = startswith(tag, "tag:yaml.org,2002:");
                struct diag *dg = shortform
                        ? diag_error(l->d, &m, 1, "unsupported YAML tag '!!%s'", shortform)
                        : diag_error(l->d, &m, 1, "unsupported YAML tag '%s'", tag);
                diag_hint(dg, "kiln reads plain YAML values; only !!str is accepted");
                l->failed = true;
        }
        if (memchr(text, 0, len)) {
                /* C strings end at NUL; a value cut short silently would be
                 * worse than refusing it. */
                diag_error(l->d, &m, 1, "strings cannot contain NUL characters (\\0)");
                l->failed = true;
                len = strlen(text);
        }
        bool is_str_tag = tag && streq(tag, YAML_STR_TAG);
        if (style == STYLE_PLAIN && !is_str_tag) {
                double num;
                bool is_int;
                if (len == 0 || streq(text, "~") || streq(text, "null") || streq(text, "Null") ||
                    streq(text, "NULL")) {
                        v = value_new(V_NULL, &m);
                        v->str = xstrndup(text, len);
                        v->len = len;
                } else if (streq(text, "true") || streq(text, "True") || streq(text, "TRUE") ||
                           streq(text, "false") || streq(text, "False") ||
                           streq(text, "FALSE")) {
                        v = value_new(V_BOOL, &m);
                        v->b = text[0] == 't' || text[0] == 'T';
                        v->str = xstrndup(text, len);
                        v->len = len;
                } else if (parse_number(text, &num, &is_int)) {
                        v = value_new(V_NUMBER, &m);
                        v->num = num;
                        v->is_int = is_int;
                        v->str = xstrndup(text, len);
                        v->len = len;
                } else {
                        v = value_new_stringn(text, len, &m);
                }
        } else {
                v = value_new_stringn(text, len, &m);
        }
        v->style = style;
        return v;
}

static void remember_anchor(struct loader *l, const yaml_char_t *anchor, struct value *v) {
        /* A name defined again means the newest node from here on. */
        if (anchor)
                strtab_set(&l->anchors, (const char *)anchor, v);
}

static int parse_node(struct loader *l, yaml_event_t *e, unsigned depth, struct value **ret);

/* The position of byte offset off of the source, counted the way libyaml
 * counts its marks: lines end at LF, CR, CRLF, NEL, LS and PS; columns are
 * characters; a UTF-8 byte order mark takes no column. */
static struct mark mark_at_offset(const struct loader *l, size_t off) {
        const unsigned char *s = (const unsigned char *)l->src->text;
        size_t len = l->src->len, i = 0;
        unsigned line = 1, col = 1;
        if (off > len)
                off = len;
        if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
                i = 3;
        while (i < off) {
                size_t brk = 0;
                if (s[i] == '\r')
                        brk = i + 1 < len && s[i + 1] == '\n' ? 2 : 1;
                else if (s[i] == '\n')
                        brk = 1;
                else if (i + 1 < len && s[i] == 0xc2 && s[i + 1] == 0x85)
                        brk = 2;
                else if (i + 2 < len && s[i] == 0xe2 && s[i + 1] == 0x80 &&
                         (s[i + 2] == 0xa8 || s[i + 2] == 0xa9))
                        brk = 3;
                if (brk) {
                        line++;
                        col = 1;
                        i += brk;
                        continue;
                }
                if ((s[i] & 0xc0) != 0x80)
                        col++;
                i++;
        }
        return (struct mark){l->src, line, col};
}

/* libyaml's reader reports bad bytes by offset only (its marks stay at the
 * start): locate them, and say what the byte is. */
static int reader_error(struct loader *l) {
        struct mark m = mark_at_offset(l, l->parser.problem_offset);
        const char *problem = l->parser.problem ? l->parser.problem : "unreadable input";
        int value = l->parser.problem_value;
        struct diag *dg;
        if (strstr(problem, "control character")) {
                dg = value == 0 ? diag_error(l->d, &m, 1, "NUL byte (\\0) in the text")
                                : diag_error(l->d, &m, 1, "control character U+%04X in the text",
                                             (unsigned)value);
                /* The line would send the character itself to the terminal. */
                if (dg)
                        dg->redact = true;
                diag_hint(dg, "YAML text cannot hold control characters other than tab and "
                              "line breaks; write them as escapes in a \"double-quoted\" string");
        } else if (strstr(problem, "UTF-8") || strstr(problem, "Unicode")) {
                /* libyaml points at the bad continuation byte of a
                 * sequence; the character begins at its lead byte. */
                const unsigned char *t = (const unsigned char *)l->src->text;
                size_t off = l->parser.problem_offset;
                if (off > l->src->len)
                        off = l->src->len;
                if (strstr(problem, "trailing"))
                        for (size_t k = 1; k <= 3 && k <= off; k++)
                                if (t[off - k] >= 0xc0) {
                                        off -= k;
                                        m = mark_at_offset(l, off);
                                        break;
                                }
                unsigned byte = off < l->src->len ? t[off] : 0;
                dg = strstr(problem, "incomplete")
                             ? diag_error(l->d, &m, 1,
                                          "invalid UTF-8: the text ends inside a character "
                                          "(byte 0x%02x)", byte)
                             : diag_error(l->d, &m, 1,
                                          "invalid UTF-8: byte 0x%02x does not begin a valid "
                                          "character", byte);
                diag_hint(dg, "kiln reads UTF-8 text; convert the file (is it Latin-1? "
                              "iconv -f LATIN1 -t UTF-8)");
        } else {
                diag_error(l->d, &m, 1, "%s", problem);
        }
        return -EBADMSG;
}

static int next_event(struct loader *l, yaml_event_t *e) {
        if (!yaml_parser_parse(&l->parser, e)) {
                if (l->parser.error == YAML_MEMORY_ERROR)
                        die_oom();
                if (l->parser.error == YAML_READER_ERROR)
                        return reader_error(l);
                struct mark m = mark_of(l, l->parser.problem_mark);
                /* At the end of the input (an unclosed quote or bracket), the
                 * place the construct started is the useful one. */
                if (l->parser.context && l->parser.problem_mark.index >= l->src->len)
                        m = mark_of(l, l->parser.context_mark);
                const char *problem = l->parser.problem ? l->parser.problem : "syntax error";
                struct diag *dg;
                if (l->parser.context) {
                        struct mark cm = mark_of(l, l->parser.context_mark);
                        dg = diag_error(l->d, &m, 1, "%s %s (started at line %u)", problem,
                                        l->parser.context, cm.line);
                } else {
                        dg = diag_error(l->d, &m, 1, "%s", problem);
                }
                size_t ll;
                const char *pl = source_line(m.src, m.line, &ll);
                if (l->parser.context && strstr(l->parser.context, "flow") && pl &&
                    memmem(pl, ll, "${", 2))
                        diag_hint(dg, "inside [ ] or { }, quote values that contain ${...}: \"${var.x}\"");
                if (strstr(problem, "cannot start any token") && m.src) {
                        size_t len;
                        const char *line = source_line(m.src, m.line, &len);
                        if (line && m.col <= len && line[m.col - 1] == '\t')
                                diag_hint(dg, "YAML does not allow tabs for indentation; use spaces");
                }
                return -EBADMSG;
        }
        return 0;
}

/* Maps up to this many entries find duplicate keys by a scan; larger ones
 * through a hash set, so a map of n keys costs O(n), not O(n^2). */
#define SMALL_MAP 8

static int parse_mapping(struct loader *l, yaml_event_t *start, unsigned depth,
                         struct value **ret) {
        struct mark m = mark_of(l, start->start_mark);
        _cleanup_value_ struct value *map = value_new(V_MAP, &m);
        map->style = start->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE ? STYLE_DOUBLE
                                                                                 : STYLE_PLAIN;
        remember_anchor(l, start->data.mapping_start.anchor, map);
        /* key text -> key value, both borrowed from map; built once the map
         * outgrows SMALL_MAP. */
        _cleanup_(strtab_done) struct strtab keys = {.seed = l->seed};
        for (;;) {
                yaml_event_t ke;
                int r = next_event(l, &ke);
                if (r < 0)
                        return r;
                if (ke.type == YAML_MAPPING_END_EVENT) {
                        yaml_event_delete(&ke);
                        break;
                }
                _cleanup_value_ struct value *key = NULL;
                r = parse_node(l, &ke, depth + 1, &key);
                yaml_event_delete(&ke);
                if (r < 0)
                        return r;
                yaml_event_t ve;
                r = next_event(l, &ve);
                if (r < 0)
                        return r;
                _cleanup_value_ struct value *val = NULL;
                r = parse_node(l, &ve, depth + 1, &val);
                yaml_event_delete(&ve);
                if (r < 0)
                        return r;
                /* Dropped entries are kept until the end of the load (see
                 * drop()): an anchor in them may be aliased later. */
                if (!value_is_scalar(key)) {
                        diag_error(l->d, &key->mark, 1, "a key must be a scalar, not a %s",
                                   value_kind_name(key->kind));
                        l->failed = true;
                        drop(l, TAKE_PTR(key));
                        drop(l, TAKE_PTR(val));
                        continue;
                }
                if (key->style == STYLE_PLAIN && streq(key->str, "<<")) {
                        struct diag *dg = diag_error(l->d, &key->mark, 2,
                                                     "YAML merge keys (<<) are not supported");
                        diag_hint(dg, "write the keys out, or use a `from:` build to share settings");
                        l->failed = true;
                        drop(l, TAKE_PTR(key));
                        drop(l, TAKE_PTR(val));
                        continue;
                }
                if (map->n >= SMALL_MAP && !keys.cap)
                        for (size_t i = 0; i < map->n; i++)
                                strtab_set(&keys, map->keys[i]->str, map->keys[i]);
                const struct value *prev = keys.cap ? strtab_get(&keys, key->str)
                                                    : value_map_key(map, key->str);
                if (prev) {
                        struct diag *dg = diag_error(l->d, &key->mark, value_span(key),
                                                     "duplicate key '%s'", key->str);
                        diag_hint(dg, "first defined at line %u", prev->mark.line);
                        l->failed = true;
                        drop(l, TAKE_PTR(key));
                        drop(l, TAKE_PTR(val));
                        continue;
                }
                /* Keys are always strings, whatever their plain-scalar type;
                 * an anchored key keeps its type for its aliases. */
                if (key->kind != V_STRING) {
                        struct value *k = value_clone(key);
                        k->kind = V_STRING;
                        drop(l, TAKE_PTR(key));
                        key = k;
                }
                if (keys.cap)
                        strtab_set(&keys, key->str, key);
                value_map_append(map, TAKE_PTR(key), TAKE_PTR(val));
        }
        *ret = TAKE_PTR(map);
        return 0;
}

static int parse_sequence(struct loader *l, yaml_event_t *start, unsigned depth,
                          struct value **ret) {
        struct mark m = mark_of(l, start->start_mark);
        _cleanup_value_ struct value *list = value_new(V_LIST, &m);
        list->style = start->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE ? STYLE_DOUBLE
                                                                                   : STYLE_PLAIN;
        remember_anchor(l, start->data.sequence_start.anchor, list);
        for (;;) {
                yaml_event_t ie;
                int r = next_event(l, &ie);
                if (r < 0)
                        return r;
                if (ie.type == YAML_SEQUENCE_END_EVENT) {
                        yaml_event_delete(&ie);
                        break;
                }
                struct value *item = NULL;
                r = parse_node(l, &ie, depth + 1, &item);
                yaml_event_delete(&ie);
                if (r < 0)
                        return r;
                value_list_append(list, item);
        }
        *ret = TAKE_PTR(list);
        return 0;
}

static int expand_alias(struct loader *l, const yaml_event_t *e, unsigned depth,
                        struct value **ret) {
        struct mark m = mark_of(l, e->start_mark);
        const char *name = (const char *)e->data.alias.anchor;
        const struct value *src = strtab_get(&l->anchors, name);
        if (!src) {
                diag_error(l->d, &m, 1, "unknown alias '*%s'", name);
                return -EBADMSG;
        }
        /* The copy counts like the text it stands for. src may still be
         * under construction (an alias inside its own anchor): it is then
         * copied as far as it goes. */
        struct tree_size t;
        tree_size(src, &t);
        if (depth + t.height > YAML_MAX_DEPTH) {
                diag_error(l->d, &m, 1, "alias '*%s' expands to nesting deeper than %d levels",
                           name, YAML_MAX_DEPTH);
                return -E2BIG;
        }
        l->nodes += t.nodes - 1; /* the alias itself was counted */
        if (l->nodes > YAML_MAX_NODES) {
                diag_error(l->d, &m, 1, "aliases expand to more than %d values", YAML_MAX_NODES);
                return -E2BIG;
        }
        l->bytes += t.bytes;
        if (l->bytes > YAML_MAX_EXPANDED_BYTES) {
                struct diag *dg =
                        diag_error(l->d, &m, 1, "aliases expand to more than %u MiB of text",
                                   YAML_MAX_EXPANDED_BYTES >> 20);
                diag_hint(dg, "alias '*%s' copies %zu bytes", name, t.bytes);
                return -E2BIG;
        }
        *ret = value_clone(src);
        return 0;
}

static int parse_node(struct loader *l, yaml_event_t *e, unsigned depth, struct value **ret) {
        if (depth > YAML_MAX_DEPTH) {
                struct mark m = mark_of(l, e->start_mark);
                diag_error(l->d, &m, 1, "nesting deeper than %d levels", YAML_MAX_DEPTH);
                return -E2BIG;
        }
        if (++l->nodes > YAML_MAX_NODES) {
                struct mark m = mark_of(l, e->start_mark);
                diag_error(l->d, &m, 1, "document has more than %d values", YAML_MAX_NODES);
                return -E2BIG;
        }
        switch (e->type) {
        case YAML_SCALAR_EVENT: {
                struct value *v = make_scalar(l, e);
                remember_anchor(l, e->data.scalar.anchor, v);
                *ret = v;
                /* Counted for aliases' sake; the text alone (at most
                 * YAML_MAX_BYTES, a little more with escapes) stays below. */
                l->bytes += v->len;
                return 0;
        }
        case YAML_MAPPING_START_EVENT:
                return parse_mapping(l, e, depth, ret);
        case YAML_SEQUENCE_START_EVENT:
                return parse_sequence(l, e, depth, ret);
        case YAML_ALIAS_EVENT:
                return expand_alias(l, e, depth, ret);
        default: {
                struct mark m = mark_of(l, e->start_mark);
                diag_error(l->d, &m, 1, "unexpected YAML event");
                return -EBADMSG;
        }
        }
}

/* libyaml decodes UTF-16 (with a byte order mark) and misreads UTF-32;
 * either way positions and quoted lines would be wrong. Spot both by their
 * byte order mark or, without one, by the NUL bytes of ASCII text (as YAML
 * 1.2, 5.2 does) and refuse them with a message that says so. */
static int check_encoding(struct loader *l) {
        const unsigned char *s = (const unsigned char *)l->src->text;
        size_t n = l->src->len;
        const char *enc = NULL, *iconv = NULL;
        if (n >= 4 && memcmp(s, "\xff\xfe\0\0", 4) == 0)
                enc = "UTF-32 (little-endian)", iconv = "UTF-32LE";
        else if (n >= 4 && memcmp(s, "\0\0\xfe\xff", 4) == 0)
                enc = "UTF-32 (big-endian)", iconv = "UTF-32BE";
        else if (n >= 2 && memcmp(s, "\xff\xfe", 2) == 0)
                enc = "UTF-16 (little-endian)", iconv = "UTF-16LE";
        else if (n >= 2 && memcmp(s, "\xfe\xff", 2) == 0)
                enc = "UTF-16 (big-endian)", iconv = "UTF-16BE";
        else if (n >= 4 && !s[0] && !s[1] && !s[2] && s[3])
                enc = "UTF-32 (big-endian)", iconv = "UTF-32BE";
        else if (n >= 4 && s[0] && !s[1] && !s[2] && !s[3])
                enc = "UTF-32 (little-endian)", iconv = "UTF-32LE";
        else if (n >= 2 && !s[0] && s[1])
                enc = "UTF-16 (big-endian)", iconv = "UTF-16BE";
        else if (n >= 2 && s[0] && !s[1])
                enc = "UTF-16 (little-endian)", iconv = "UTF-16LE";
        if (!enc)
                return 0;
        struct diag *dg = diag_error(l->d, &(struct mark){l->src, 1, 1}, 1,
                                     "this file is %s text; kiln reads UTF-8 only", enc);
        if (dg) {
                dg->redact = true; /* its lines would print as garbage */
                diag_hint(dg, "convert it: iconv -f %s -t UTF-8 %s", iconv, l->src->path);
        }
        return -EBADMSG;
}

/* True when byte i of s starts a line in libyaml's sense (see
 * mark_at_offset). */
static bool at_line_start(const unsigned char *s, size_t i) {
        if (i == 0 || (i == 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0))
                return true;
        if (s[i - 1] == '\n' || s[i - 1] == '\r')
                return true;
        if (i >= 2 && s[i - 2] == 0xc2 && s[i - 1] == 0x85)
                return true;
        return i >= 3 && s[i - 3] == 0xe2 && s[i - 2] == 0x80 &&
               (s[i - 1] == 0xa8 || s[i - 1] == 0xa9);
}

/* libyaml checks each %TAG directive against all earlier ones: a file of
 * nothing but directives takes quadratic time inside one libyaml call. kiln
 * needs none, so refuse more than a few before libyaml sees them. A '%' at
 * the start of a line elsewhere (in a scalar) counts too; no spec has many. */
static int check_directives(struct loader *l) {
        const unsigned char *s = (const unsigned char *)l->src->text;
        size_t n = l->src->len, count = 0;
        for (const unsigned char *p = s; (p = memchr(p, '%', n - (size_t)(p - s))); p++) {
                if (!at_line_start(s, (size_t)(p - s)) || ++count <= YAML_MAX_DIRECTIVES)
                        continue;
                struct mark m = mark_at_offset(l, (size_t)(p - s));
                struct diag *dg = diag_error(l->d, &m, 1, "more than %d YAML directives",
                                             YAML_MAX_DIRECTIVES);
                diag_hint(dg, "lines that start with %% are directives (%%YAML, %%TAG); "
                              "kiln needs none");
                return -E2BIG;
        }
        return 0;
}

static void seed_hash(struct loader *l) {
        if (getrandom(l->seed, sizeof(l->seed), GRND_NONBLOCK) == (ssize_t)sizeof(l->seed))
                return;
        /* Without the kernel's entropy still differ per process and run. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        l->seed[0] = (uint64_t)(uintptr_t)l ^ (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull;
        l->seed[1] = (uint64_t)getpid() ^ (uint64_t)ts.tv_sec << 20;
}

int yaml_load(const struct source *src, struct diag_list *d, struct value **ret) {
        struct loader l = {.src = src, .d = d};
        seed_hash(&l);
        l.anchors = (struct strtab){.seed = l.seed, .owns_keys = true};
        int r = check_encoding(&l);
        if (r >= 0)
                r = check_directives(&l);
        if (r < 0)
                return r;
        if (!yaml_parser_initialize(&l.parser))
                die_oom();
        yaml_parser_set_input_string(&l.parser, (const unsigned char *)src->text, src->len);
        _cleanup_value_ struct value *doc = NULL;
        unsigned ndocs = 0;
        for (bool done = false; !done && r >= 0;) {
                yaml_event_t e;
                r = next_event(&l, &e);
                if (r < 0)
                        break;
                switch (e.type) {
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;
                case YAML_DOCUMENT_START_EVENT:
                        if (++ndocs > 1) {
                                struct mark m = mark_of(&l, e.start_mark);
                                diag_error(d, &m, 3, "only one YAML document per file is supported");
                                r = -EBADMSG;
                        }
                        break;
                case YAML_STREAM_START_EVENT:
                case YAML_DOCUMENT_END_EVENT:
                        break;
                default:
                        r = parse_node(&l, &e, 0, &doc);
                        break;
                }
                yaml_event_delete(&e);
        }
        yaml_parser_delete(&l.parser);
        strtab_done(&l.anchors);
        for (size_t i = 0; i < l.ndropped; i++)
                value_free(l.dropped[i]);
        free(l.dropped);
        if (r < 0)
                return r;
        /* l.failed: recoverable errors were reported and their entries
         * dropped; the rest of the document is still worth validating. */
        if (!doc)
                doc = value_new(V_NULL, &(struct mark){src, 1, 1});
        *ret = TAKE_PTR(doc);
        return 0;
}

int yaml_read_source(const char *path, struct source **ret) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file(path, YAML_MAX_BYTES, &text, &len);
        if (r < 0)
                return r;
        *ret = source_new(path, text, len);
        return 0;
}
