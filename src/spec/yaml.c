/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loader walks libyaml's event stream with an explicit recursion over
 * collections. Anchors are remembered by name and aliases are expanded as
 * deep copies, counted against YAML_MAX_NODES.
 */
#include "spec/yaml.h"

#include <ctype.h>
#include <math.h>
#include <yaml.h>

struct anchor {
        char *name;
        struct value *v; /* borrowed from the tree being built */
};

struct loader {
        yaml_parser_t parser;
        const struct source *src;
        struct diag_list *d;
        struct anchor *anchors;
        size_t nanchors, anchors_cap;
        size_t nodes;
        bool failed;
        /* Entries dropped after an error (duplicate key, non-scalar key,
         * merge key): anchors may point into them, so they live until the
         * load ends. */
        struct value *dropped;
};

/* Keeps a dropped map entry alive until yaml_load returns. */
static void drop_entry(struct loader *l, struct value *key, struct value *val) {
        if (!l->dropped)
                l->dropped = value_new(V_LIST, NULL);
        value_list_append(l->dropped, key);
        value_list_append(l->dropped, val);
}

static struct mark mark_of(const struct loader *l, yaml_mark_t m) {
        return (struct mark){l->src, (unsigned)m.line + 1, (unsigned)m.column + 1};
}

static size_t count_nodes(const struct value *v) {
        size_t c = 1;
        for (size_t i = 0; i < v->n; i++)
                c += count_nodes(v->items[i]) + (v->keys ? 1 : 0);
        return c;
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

static int remember_anchor(struct loader *l, const yaml_char_t *anchor, struct value *v) {
        if (!anchor)
                return 0;
        GROW(l->anchors, l->nanchors, l->anchors_cap);
        l->anchors[l->nanchors++] = (struct anchor){xstrdup((const char *)anchor), v};
        return 0;
}

static int parse_node(struct loader *l, yaml_event_t *e, unsigned depth, struct value **ret);

static int next_event(struct loader *l, yaml_event_t *e) {
        if (!yaml_parser_parse(&l->parser, e)) {
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

static int parse_mapping(struct loader *l, yaml_event_t *start, unsigned depth,
                         struct value **ret) {
        struct mark m = mark_of(l, start->start_mark);
        _cleanup_value_ struct value *map = value_new(V_MAP, &m);
        map->style = start->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE ? STYLE_DOUBLE
                                                                                 : STYLE_PLAIN;
        remember_anchor(l, start->data.mapping_start.anchor, map);
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
                if (!value_is_scalar(key)) {
                        diag_error(l->d, &key->mark, 1, "a key must be a scalar, not a %s",
                                   value_kind_name(key->kind));
                        l->failed = true;
                        drop_entry(l, TAKE_PTR(key), TAKE_PTR(val));
                        continue;
                }
                if (key->style == STYLE_PLAIN && streq(key->str, "<<")) {
                        struct diag *dg = diag_error(l->d, &key->mark, 2,
                                                     "YAML merge keys (<<) are not supported");
                        diag_hint(dg, "write the keys out, or use a `from:` build to share settings");
                        l->failed = true;
                        drop_entry(l, TAKE_PTR(key), TAKE_PTR(val));
                        continue;
                }
                const struct value *prev = value_map_key(map, key->str);
                if (prev) {
                        struct diag *dg = diag_error(l->d, &key->mark, value_span(key),
                                                     "duplicate key '%s'", key->str);
                        diag_hint(dg, "first defined at line %u", prev->mark.line);
                        l->failed = true;
                        drop_entry(l, TAKE_PTR(key), TAKE_PTR(val));
                        continue;
                }
                /* Keys are always strings, whatever their plain-scalar type. */
                key->kind = V_STRING;
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
                return 0;
        }
        case YAML_MAPPING_START_EVENT:
                return parse_mapping(l, e, depth, ret);
        case YAML_SEQUENCE_START_EVENT:
                return parse_sequence(l, e, depth, ret);
        case YAML_ALIAS_EVENT: {
                struct mark m = mark_of(l, e->start_mark);
                const char *name = (const char *)e->data.alias.anchor;
                for (size_t i = l->nanchors; i > 0; i--)
                        if (streq(l->anchors[i - 1].name, name)) {
                                const struct value *src = l->anchors[i - 1].v;
                                l->nodes += count_nodes(src);
                                if (l->nodes > YAML_MAX_NODES) {
                                        diag_error(l->d, &m, 1,
                                                   "aliases expand to more than %d values",
                                                   YAML_MAX_NODES);
                                        return -E2BIG;
                                }
                                *ret = value_clone(src);
                                return 0;
                        }
                diag_error(l->d, &m, 1, "unknown alias '*%s'", name);
                return -EBADMSG;
        }
        default: {
                struct mark m = mark_of(l, e->start_mark);
                diag_error(l->d, &m, 1, "unexpected YAML event");
                return -EBADMSG;
        }
        }
}

int yaml_load(const struct source *src, struct diag_list *d, struct value **ret) {
        struct loader l = {.src = src, .d = d};
        if (!yaml_parser_initialize(&l.parser))
                die_oom();
        yaml_parser_set_input_string(&l.parser, (const unsigned char *)src->text, src->len);
        int r = 0;
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
        for (size_t i = 0; i < l.nanchors; i++)
                free(l.anchors[i].name);
        free(l.anchors);
        value_free(l.dropped);
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
