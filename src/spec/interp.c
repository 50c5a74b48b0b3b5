/* SPDX-License-Identifier: Apache-2.0 */
/*
 * interp.c — evaluation of ${...} in spec strings.
 *
 * This is kiln's own tiny expression language (roots, fields, indexes, a
 * fixed table of functions, literals), so no parser library fits: the
 * grammar is parsed by hand, by recursive descent, one ${...} at a time:
 *
 *   expr    := primary postfix*
 *   primary := IDENT | IDENT '(' [expr (',' expr)*] ')' | STRING | NUMBER
 *            | 'true' | 'false' | 'null' | '(' expr ')'
 *   postfix := '.' IDENT | '[' expr ']'
 *
 * Each ${...} is first parsed into a small tree (struct node), then
 * evaluated. Parsing before evaluating keeps the two kinds of error apart:
 * after a syntax error the end of the expression is unknown, so the rest of
 * the string is given up; after an evaluation error (unknown variable, bad
 * argument) the parser knows where the expression ends and carries on with
 * the next ${...}, so one run reports every mistake in the string.
 *
 * Invariants:
 *  - Every offset (node->off, op->off, ...) is a byte offset into the input
 *    string; errors are located with value_mark_at(in, offset).
 *  - Recursion is bounded: the parser counts nesting of parentheses, calls
 *    and indexes against INTERP_MAX_DEPTH, and chains of .field / [index]
 *    are stored as an array per node and applied in a loop, so evaluation
 *    recursion is bounded by the same count.
 *  - Values looked up in the scope are borrowed until the end (struct ev);
 *    only the final result is cloned, so ${var.x} does not copy all of var.
 *  - "Used" values are checked for sensitivity where they are consumed (a
 *    function argument, an index, a ${...}'s result) — not where a chain
 *    passes through them, so ${var.suite} is not sensitive just because
 *    var also holds a secret. One sensitive use marks the whole result of
 *    the string, so sha256(var.secret) or "pw=${var.secret}" stay secret.
 */
#include "spec/interp.h"

#include "base/hash.h"
#include "base/suggest.h"

#include <stdint.h>

/* How much of an expression's text an error message or hint quotes. */
#define QUOTE_MAX 60

/* ---- expression trees ------------------------------------------------- */

enum node_kind { N_IDENT, N_CALL, N_PAREN, N_STRING, N_NUMBER, N_BOOL, N_NULL };
enum op_kind { OP_FIELD, OP_INDEX };

struct node;

/* One postfix operation: .name or [index]. */
struct op {
        enum op_kind kind;
        size_t off, len;    /* the field name, or the index expression */
        size_t end;         /* offset just past this operation */
        char *name;         /* OP_FIELD; owned */
        struct node *index; /* OP_INDEX; owned */
};

struct node {
        enum node_kind kind;
        size_t off, len;    /* the primary's token: identifier, function name, literal, '(' */
        size_t end;         /* offset just past the primary (past ')' for calls) */
        char *text;         /* identifier, function name, decoded string, number as written */
        size_t text_len;
        struct node **args; /* N_CALL arguments; N_PAREN: the inner expression */
        size_t nargs, args_cap;
        struct op *ops;     /* postfix operations, applied in order */
        size_t nops, ops_cap;
};

static struct node *node_free(struct node *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->nargs; i++)
                node_free(n->args[i]);
        for (size_t i = 0; i < n->nops; i++) {
                free(n->ops[i].name);
                node_free(n->ops[i].index);
        }
        free(n->args);
        free(n->ops);
        free(n->text);
        free(n);
        return NULL;
}
DEFINE_POINTER_CLEANUP(struct node, node_free)
#define _cleanup_node_ _cleanup_(node_freep)

/* Offset just past the whole expression n (its primary and postfixes). */
static size_t node_end(const struct node *n) {
        return n->nops ? n->ops[n->nops - 1].end : n->end;
}

/* Offset just past n's primary and its first i postfixes. */
static size_t node_prefix_end(const struct node *n, size_t i) {
        return i ? n->ops[i - 1].end : n->end;
}

/* ---- context and errors ----------------------------------------------- */

struct ctx {
        const struct value *in; /* the string being evaluated (for marks) */
        const char *s;          /* in->str */
        size_t len;
        const struct interp_env *env;
        struct diag_list *d;
        size_t pos;             /* parser position */
        size_t open, close;     /* current ${...}: offset of '$' and just past '}' */
        unsigned depth;         /* parser nesting */
        bool sensitive;         /* a sensitive value was used */
};

/* Characters (not bytes) in s[0..n), at least 1: a diagnostic's span. */
static unsigned span_chars(const char *s, size_t n) {
        unsigned chars = 0;
        for (size_t i = 0; i < n; i++)
                if (((unsigned char)s[i] & 0xc0) != 0x80)
                        chars++;
        return chars ? chars : 1;
}

/* Reports an error on bytes [off, off+len) of the input string. */
_printf_(4, 5) static struct diag *err_at(struct ctx *c, size_t off, size_t len, const char *fmt,
                                          ...) {
        if (off > c->len)
                off = c->len;
        if (len > c->len - off)
                len = c->len - off;
        struct mark m = value_mark_at(c->in, off);
        va_list ap;
        va_start(ap, fmt);
        struct diag *dg = diag_addv(c->d, DIAG_ERROR, &m, span_chars(c->s + off, len), fmt, ap);
        va_end(ap);
        return dg;
}

/* Length of s[off..end) capped for quoting in a message. */
static int quote_len(size_t off, size_t end) {
        size_t n = end > off ? end - off : 0;
        return (int)(n > QUOTE_MAX ? QUOTE_MAX : n);
}

/* ---- parser ------------------------------------------------------------- */

static bool is_ident_start(char ch) {
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool is_ident_char(char ch) {
        return is_ident_start(ch) || (ch >= '0' && ch <= '9') || ch == '-';
}

static bool is_digit(char ch) {
        return ch >= '0' && ch <= '9';
}

static void skip_ws(struct ctx *c) {
        while (c->pos < c->len && strchr(" \t\r\n", c->s[c->pos]) && c->s[c->pos])
                c->pos++;
}

static int err_unterminated(struct ctx *c) {
        struct diag *dg = err_at(c, c->open, 2, "unterminated ${");
        diag_hint(dg, "close the expression with '}', or write $${ for a literal ${");
        return -EINVAL;
}

/* "unexpected character" at c->pos, or "unterminated ${" at the end. */
static int err_unexpected(struct ctx *c, const char *expected) {
        if (c->pos >= c->len)
                return err_unterminated(c);
        unsigned char ch = (unsigned char)c->s[c->pos];
        struct diag *dg;
        if (ch >= 0x20 && ch < 0x7f)
                dg = err_at(c, c->pos, 1, "unexpected character '%c'", ch);
        else
                dg = err_at(c, c->pos, 1, "unexpected character (byte 0x%02x)", ch);
        if (expected)
                diag_hint(dg, "expected %s here", expected);
        return -EINVAL;
}

static int parse_expr(struct ctx *c, struct node **ret);

static struct node *node_new(enum node_kind kind, size_t off, size_t len) {
        struct node *n = xcalloc(1, sizeof(*n));
        n->kind = kind;
        n->off = off;
        n->len = len;
        n->end = off + len;
        return n;
}

static size_t scan_ident(struct ctx *c) {
        size_t start = c->pos;
        while (c->pos < c->len && is_ident_char(c->s[c->pos]))
                c->pos++;
        return c->pos - start;
}

/* STRING: "..." with the escapes \" \\ \n \t. */
static int parse_string(struct ctx *c, struct node **ret) {
        size_t start = c->pos++;
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        for (;;) {
                if (c->pos >= c->len) {
                        struct diag *dg = err_at(c, start, 1, "unterminated string");
                        diag_hint(dg, "end the string with '\"'");
                        return -EINVAL;
                }
                char ch = c->s[c->pos];
                if (ch == '"')
                        break;
                if (ch == '\\') {
                        char e = c->pos + 1 < c->len ? c->s[c->pos + 1] : 0;
                        switch (e) {
                        case '"': strbuf_addc(&sb, '"'); break;
                        case '\\': strbuf_addc(&sb, '\\'); break;
                        case 'n': strbuf_addc(&sb, '\n'); break;
                        case 't': strbuf_addc(&sb, '\t'); break;
                        default: {
                                struct diag *dg = err_at(c, c->pos, 2, "unknown escape sequence");
                                diag_hint(dg, "strings know \\\" \\\\ \\n and \\t");
                                return -EINVAL;
                        }
                        }
                        c->pos += 2;
                        continue;
                }
                strbuf_addc(&sb, ch);
                c->pos++;
        }
        c->pos++; /* closing quote */
        struct node *n = node_new(N_STRING, start, c->pos - start);
        n->text_len = sb.len;
        n->text = strbuf_detach(&sb);
        *ret = n;
        return 0;
}

/* IDENT '(' [expr (',' expr)*] ')' — c->pos is at '('. */
static int parse_call_args(struct ctx *c, struct node *n) {
        c->pos++;
        skip_ws(c);
        if (c->pos < c->len && c->s[c->pos] == ')') {
                c->pos++;
                return 0;
        }
        for (;;) {
                struct node *arg = NULL;
                int r = parse_expr(c, &arg);
                if (r < 0)
                        return r;
                GROW(n->args, n->nargs, n->args_cap);
                n->args[n->nargs++] = arg;
                skip_ws(c);
                if (c->pos < c->len && c->s[c->pos] == ',') {
                        c->pos++;
                        continue;
                }
                if (c->pos < c->len && c->s[c->pos] == ')') {
                        c->pos++;
                        return 0;
                }
                return err_unexpected(c, "',' or ')'");
        }
}

static int parse_primary(struct ctx *c, struct node **ret) {
        skip_ws(c);
        if (c->pos >= c->len)
                return err_unterminated(c);
        char ch = c->s[c->pos];
        size_t start = c->pos;
        _cleanup_node_ struct node *n = NULL;
        int r;

        if (is_ident_start(ch)) {
                size_t len = scan_ident(c);
                size_t after = c->pos;
                skip_ws(c);
                if (c->pos < c->len && c->s[c->pos] == '(') {
                        n = node_new(N_CALL, start, len);
                        n->text = xstrndup(c->s + start, len);
                        n->text_len = len;
                        r = parse_call_args(c, n);
                        if (r < 0)
                                return r;
                        n->end = c->pos;
                } else {
                        c->pos = after;
                        const char *id = c->s + start;
                        if (len == 4 && memcmp(id, "true", 4) == 0)
                                n = node_new(N_BOOL, start, len);
                        else if (len == 5 && memcmp(id, "false", 5) == 0)
                                n = node_new(N_BOOL, start, len);
                        else if (len == 4 && memcmp(id, "null", 4) == 0)
                                n = node_new(N_NULL, start, len);
                        else
                                n = node_new(N_IDENT, start, len);
                        n->text = xstrndup(id, len);
                        n->text_len = len;
                }
        } else if (ch == '"') {
                r = parse_string(c, &n);
                if (r < 0)
                        return r;
        } else if (is_digit(ch)) {
                while (c->pos < c->len && is_digit(c->s[c->pos]))
                        c->pos++;
                if (c->pos + 1 < c->len && c->s[c->pos] == '.' && is_digit(c->s[c->pos + 1])) {
                        c->pos++;
                        while (c->pos < c->len && is_digit(c->s[c->pos]))
                                c->pos++;
                }
                n = node_new(N_NUMBER, start, c->pos - start);
                n->text = xstrndup(c->s + start, c->pos - start);
                n->text_len = c->pos - start;
        } else if (ch == '(') {
                c->pos++;
                struct node *inner = NULL;
                r = parse_expr(c, &inner);
                if (r < 0)
                        return r;
                n = node_new(N_PAREN, start, 1);
                GROW(n->args, n->nargs, n->args_cap);
                n->args[n->nargs++] = inner;
                skip_ws(c);
                if (c->pos >= c->len || c->s[c->pos] != ')') {
                        if (c->pos >= c->len)
                                return err_unterminated(c);
                        struct diag *dg = err_at(c, c->pos, 1, "expected ')'");
                        diag_hint(dg, "the '(' at column %u is not closed",
                                  value_mark_at(c->in, start).col);
                        return -EINVAL;
                }
                c->pos++;
                n->end = c->pos;
        } else if (ch == '}') {
                struct diag *dg = err_at(c, c->pos, 1, "expected an expression");
                diag_hint(dg, "write ${var.NAME}, ${build.FIELD} or ${function(...)}; "
                              "$${} is a literal ${}");
                return -EINVAL;
        } else {
                return err_unexpected(c, "a name, a string, a number or '('");
        }
        *ret = TAKE_PTR(n);
        return 0;
}

/* expr := primary postfix*. Counts nesting against INTERP_MAX_DEPTH. */
static int parse_expr(struct ctx *c, struct node **ret) {
        if (c->depth >= INTERP_MAX_DEPTH) {
                err_at(c, c->pos, 1, "expression nested more than %d levels deep",
                       INTERP_MAX_DEPTH);
                return -EINVAL;
        }
        c->depth++;
        _cleanup_node_ struct node *n = NULL;
        int r = parse_primary(c, &n);
        if (r < 0)
                goto out;
        for (;;) {
                skip_ws(c);
                if (c->pos >= c->len)
                        break;
                char ch = c->s[c->pos];
                struct op op = {0};
                if (ch == '.') {
                        c->pos++;
                        skip_ws(c);
                        if (c->pos >= c->len || !is_ident_start(c->s[c->pos])) {
                                r = err_unexpected(c, "a field name after '.'");
                                goto out;
                        }
                        op.kind = OP_FIELD;
                        op.off = c->pos;
                        op.len = scan_ident(c);
                        op.name = xstrndup(c->s + op.off, op.len);
                        op.end = c->pos;
                } else if (ch == '[') {
                        c->pos++;
                        r = parse_expr(c, &op.index);
                        if (r < 0)
                                goto out;
                        op.kind = OP_INDEX;
                        op.off = op.index->off;
                        op.len = node_end(op.index) - op.off;
                        skip_ws(c);
                        if (c->pos >= c->len || c->s[c->pos] != ']') {
                                node_free(op.index);
                                r = c->pos >= c->len ? err_unterminated(c)
                                                     : err_unexpected(c, "']'");
                                goto out;
                        }
                        c->pos++;
                        op.end = c->pos;
                } else
                        break;
                GROW(n->ops, n->nops, n->ops_cap);
                n->ops[n->nops++] = op;
        }
        *ret = TAKE_PTR(n);
        r = 0;
out:
        c->depth--;
        return r;
}

/* ---- evaluation ----------------------------------------------------------- */

/* A value during evaluation: v points into the scope (own == NULL, borrowed)
 * or into the tree own, which the ev owns. */
struct ev {
        const struct value *v;
        struct value *own;
};

static void ev_done(struct ev *e) {
        e->own = value_free(e->own);
        e->v = NULL;
}
#define _cleanup_ev_ _cleanup_(ev_done)

static struct ev ev_owned(struct value *v) {
        return (struct ev){v, v};
}

/* Returns e's value as an owned tree and empties e. */
static struct value *ev_take(struct ev *e) {
        struct value *r;
        if (e->own && e->v == e->own)
                r = TAKE_PTR(e->own);
        else
                r = value_clone(e->v);
        ev_done(e);
        return r;
}

static const char *const known_roots[] = {"var", "build", "matrix", "timestamp"};

struct call;
typedef int func_fn(const struct call *k, struct value **ret);

struct func {
        const char *name;
        const char *params; /* for messages: "s, old, new" */
        size_t min_args, max_args;
        func_fn *fn;
};

/* A function call being evaluated. */
struct call {
        struct ctx *c;
        const struct func *f;
        const struct node *node;
        const struct value **argv;
        size_t argc;
};

/* Used by timestamp(), defined with the other lookups below. */
static int lookup_root(struct ctx *c, const char *name, size_t off, size_t len, struct ev *ret);

/* ---- functions ---------------------------------------------------------------- */

static const struct node *arg_node(const struct call *k, size_t i) {
        return k->node->args[i];
}

static struct diag *arg_error(const struct call *k, size_t i, const char *fmt, ...)
        _printf_(3, 4);
static struct diag *arg_error(const struct call *k, size_t i, const char *fmt, ...) {
        const struct node *a = arg_node(k, i);
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        msg = xvasprintf(fmt, ap);
        va_end(ap);
        return err_at(k->c, a->off, node_end(a) - a->off, "%s(): %s", k->f->name, msg);
}

/* Argument i as text: strings, and numbers and booleans by their text. */
static int arg_string(const struct call *k, size_t i, const char **ret_s, size_t *ret_len) {
        const struct value *v = k->argv[i];
        if ((v->kind != V_STRING && v->kind != V_NUMBER && v->kind != V_BOOL) || !v->str) {
                arg_error(k, i, "argument %zu must be a string, not a %s", i + 1,
                          value_kind_name(v->kind));
                return -EINVAL;
        }
        *ret_s = v->str;
        *ret_len = v->len;
        return 0;
}

/* Fails when a function's result grew over INTERP_MAX_RESULT. */
static int check_size(const struct call *k, size_t len) {
        if (len <= INTERP_MAX_RESULT)
                return 0;
        err_at(k->c, k->node->off, k->node->end - k->node->off,
               "the result of %s() is longer than %u bytes", k->f->name, INTERP_MAX_RESULT);
        return -E2BIG;
}

static struct value *new_string(const struct call *k, struct strbuf *sb) {
        struct value *v = value_new(V_STRING, &k->c->in->mark);
        v->len = sb->len;
        v->str = strbuf_detach(sb);
        return v;
}

static int map_bytes(const struct call *k, struct value **ret, int (*f)(int)) {
        const char *s;
        size_t len;
        int r = arg_string(k, 0, &s, &len);
        if (r < 0)
                return r;
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        strbuf_grow(&sb, len);
        /* ASCII only: bytes >= 0x80 (UTF-8) pass unchanged in the C locale. */
        for (size_t i = 0; i < len; i++)
                strbuf_addc(&sb, (char)f((unsigned char)s[i]));
        *ret = new_string(k, &sb);
        return 0;
}

static int ascii_lower(int ch) {
        return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int ascii_upper(int ch) {
        return ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch;
}

static int fn_lower(const struct call *k, struct value **ret) {
        return map_bytes(k, ret, ascii_lower);
}

static int fn_upper(const struct call *k, struct value **ret) {
        return map_bytes(k, ret, ascii_upper);
}

static int fn_trimspace(const struct call *k, struct value **ret) {
        const char *s;
        size_t len;
        int r = arg_string(k, 0, &s, &len);
        if (r < 0)
                return r;
        while (len && strchr(" \t\n\r\v\f", s[0]) && s[0]) {
                s++;
                len--;
        }
        while (len && strchr(" \t\n\r\v\f", s[len - 1]) && s[len - 1])
                len--;
        *ret = value_new_stringn(s, len, &k->c->in->mark);
        return 0;
}

static int fn_replace(const struct call *k, struct value **ret) {
        const char *s, *old, *new;
        size_t len, old_len, new_len;
        int r;
        if ((r = arg_string(k, 0, &s, &len)) < 0 || (r = arg_string(k, 1, &old, &old_len)) < 0 ||
            (r = arg_string(k, 2, &new, &new_len)) < 0)
                return r;
        if (old_len == 0) {
                arg_error(k, 1, "the text to replace must not be empty");
                return -EINVAL;
        }
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        const char *p = s, *end = s + len;
        for (;;) {
                const char *q = memmem(p, (size_t)(end - p), old, old_len);
                if (!q) {
                        strbuf_add(&sb, p, (size_t)(end - p));
                        break;
                }
                strbuf_add(&sb, p, (size_t)(q - p));
                strbuf_add(&sb, new, new_len);
                if ((r = check_size(k, sb.len)) < 0)
                        return r;
                p = q + old_len;
        }
        *ret = new_string(k, &sb);
        return 0;
}

static int fn_join(const struct call *k, struct value **ret) {
        const char *sep;
        size_t sep_len;
        int r = arg_string(k, 0, &sep, &sep_len);
        if (r < 0)
                return r;
        const struct value *list = k->argv[1];
        if (list->kind != V_LIST) {
                arg_error(k, 1, "argument 2 must be a list, not a %s",
                          value_kind_name(list->kind));
                return -EINVAL;
        }
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; i < list->n; i++) {
                const struct value *it = list->items[i];
                if ((it->kind != V_STRING && it->kind != V_NUMBER && it->kind != V_BOOL) ||
                    !it->str) {
                        arg_error(k, 1, "item %zu of the list is a %s; join() needs strings",
                                  i, value_kind_name(it->kind));
                        return -EINVAL;
                }
                if (i)
                        strbuf_add(&sb, sep, sep_len);
                strbuf_add(&sb, it->str, it->len);
                if ((r = check_size(k, sb.len)) < 0)
                        return r;
        }
        *ret = new_string(k, &sb);
        return 0;
}

static int fn_split(const struct call *k, struct value **ret) {
        const char *sep, *s;
        size_t sep_len, len;
        int r;
        if ((r = arg_string(k, 0, &sep, &sep_len)) < 0 || (r = arg_string(k, 1, &s, &len)) < 0)
                return r;
        if (sep_len == 0) {
                arg_error(k, 0, "the separator must not be empty");
                return -EINVAL;
        }
        const struct mark *m = &k->c->in->mark;
        struct value *list = value_new(V_LIST, m);
        const char *p = s, *end = s + len;
        for (;;) {
                const char *q = memmem(p, (size_t)(end - p), sep, sep_len);
                if (!q) {
                        value_list_append(list, value_new_stringn(p, (size_t)(end - p), m));
                        break;
                }
                value_list_append(list, value_new_stringn(p, (size_t)(q - p), m));
                p = q + sep_len;
        }
        *ret = list;
        return 0;
}

static int fn_sha256(const struct call *k, struct value **ret) {
        const char *s;
        size_t len;
        int r = arg_string(k, 0, &s, &len);
        if (r < 0)
                return r;
        char hex[SHA256_HEX_LEN + 1];
        r = hash_sha256_hex(s, len, hex);
        if (r < 0) {
                err_at(k->c, k->node->off, k->node->len, "sha256(): hashing failed: %s",
                       strerror(-r));
                return r;
        }
        *ret = value_new_string(hex, &k->c->in->mark);
        return 0;
}

static void record_file(const struct interp_env *env, const char *path) {
        if (!env->files_read || !env->nfiles_read)
                return;
        for (size_t i = 0; i < *env->nfiles_read; i++)
                if (streq((*env->files_read)[i], path))
                        return;
        /* No capacity is passed in, so grow by one: file() is rare. */
        *env->files_read = xreallocarray(*env->files_read, *env->nfiles_read + 1, sizeof(char *));
        (*env->files_read)[(*env->nfiles_read)++] = xstrdup(path);
}

static int fn_file(const struct call *k, struct value **ret) {
        const char *path;
        size_t len;
        int r = arg_string(k, 0, &path, &len);
        if (r < 0)
                return r;
        if (len == 0 || memchr(path, 0, len)) {
                arg_error(k, 0, "the path must be a non-empty string without NUL bytes");
                return -EINVAL;
        }
        const struct interp_env *env = k->c->env;
        const char *base = env ? env->base_dir : NULL;
        _cleanup_free_ char *resolved = path[0] == '/' || !base || !*base
                                                ? xstrdup(path)
                                                : xasprintf("%s/%s", base, path);
        _cleanup_free_ char *buf = NULL;
        size_t n;
        r = read_file(resolved, INTERP_FILE_MAX, &buf, &n);
        if (r == -E2BIG) {
                arg_error(k, 0, "'%s' is larger than %u bytes", resolved, INTERP_FILE_MAX);
                return r;
        }
        if (r < 0) {
                arg_error(k, 0, "cannot read '%s': %s", resolved, strerror(-r));
                return r;
        }
        if (memchr(buf, 0, n)) {
                struct diag *dg = arg_error(k, 0, "'%s' contains NUL bytes", resolved);
                diag_hint(dg, "file() reads text files");
                return -EINVAL;
        }
        if (env)
                record_file(env, resolved);
        struct value *v = value_new(V_STRING, &k->c->in->mark);
        v->str = TAKE_PTR(buf);
        v->len = n;
        *ret = v;
        return 0;
}

static int fn_coalesce(const struct call *k, struct value **ret) {
        for (size_t i = 0; i < k->argc; i++) {
                const struct value *v = k->argv[i];
                if (v->kind == V_NULL || (v->kind == V_STRING && v->len == 0))
                        continue;
                *ret = value_clone(v);
                return 0;
        }
        err_at(k->c, k->node->off, k->node->end - k->node->off,
               "coalesce(): every argument is null or empty");
        return -EINVAL;
}

static int fn_timestamp(const struct call *k, struct value **ret) {
        struct ev e = {0};
        int r = lookup_root(k->c, "timestamp", k->node->off, k->node->len, &e);
        if (r < 0)
                return r;
        *ret = ev_take(&e);
        return 0;
}

/* ---- formatdate ---------------------------------------------------------------- */

struct tm_utc {
        int year, month, day, hour, min, sec, wday; /* month 1-12, wday 0 = Sunday */
};

static const char *const month_names[] = {"January", "February", "March",     "April",
                                          "May",     "June",     "July",      "August",
                                          "September", "October", "November", "December"};
static const char *const day_names[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};

static bool is_leap(int y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m) {
        static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static long days_from_civil(long y, int m, int d) {
        y -= m <= 2;
        long era = (y >= 0 ? y : y - 399) / 400;
        long yoe = y - era * 400;
        long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static bool digits(const char *s, size_t n, int *ret) {
        int v = 0;
        for (size_t i = 0; i < n; i++) {
                if (!is_digit(s[i]))
                        return false;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return true;
}

/* Parses "YYYY-MM-DDThh:mm:ss[.frac]Z" (RFC 3339, UTC; "+00:00" is UTC too). */
static bool parse_rfc3339(const char *s, size_t len, struct tm_utc *t) {
        if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
            s[13] != ':' || s[16] != ':')
                return false;
        if (!digits(s, 4, &t->year) || !digits(s + 5, 2, &t->month) ||
            !digits(s + 8, 2, &t->day) || !digits(s + 11, 2, &t->hour) ||
            !digits(s + 14, 2, &t->min) || !digits(s + 17, 2, &t->sec))
                return false;
        size_t i = 19;
        if (s[i] == '.') {
                i++;
                size_t start = i;
                while (i < len && is_digit(s[i]))
                        i++;
                if (i == start)
                        return false;
        }
        const char *zone = s + i;
        size_t zlen = len - i;
        if (!((zlen == 1 && (zone[0] == 'Z' || zone[0] == 'z')) ||
              (zlen == 6 && (memcmp(zone, "+00:00", 6) == 0 || memcmp(zone, "-00:00", 6) == 0))))
                return false;
        if (t->month < 1 || t->month > 12 || t->day < 1 ||
            t->day > days_in_month(t->year, t->month) || t->hour > 23 || t->min > 59 ||
            t->sec > 60)
                return false;
        long days = days_from_civil(t->year, t->month, t->day);
        t->wday = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
        return true;
}

/* Appends the expansion of `run` copies of letter ch; false when the
 * sequence is not one formatdate knows. */
static bool format_letter(struct strbuf *sb, char ch, size_t run, const struct tm_utc *t) {
        int h12 = t->hour % 12 ? t->hour % 12 : 12;
        switch (ch) {
        case 'Y':
                if (run == 4)
                        strbuf_addf(sb, "%04d", t->year);
                else if (run == 2)
                        strbuf_addf(sb, "%02d", t->year % 100);
                else
                        return false;
                return true;
        case 'M':
                if (run == 1 || run == 2)
                        strbuf_addf(sb, run == 2 ? "%02d" : "%d", t->month);
                else if (run == 3)
                        strbuf_addf(sb, "%.3s", month_names[t->month - 1]);
                else if (run == 4)
                        strbuf_adds(sb, month_names[t->month - 1]);
                else
                        return false;
                return true;
        case 'E':
                if (run == 3)
                        strbuf_addf(sb, "%.3s", day_names[t->wday]);
                else if (run == 4)
                        strbuf_adds(sb, day_names[t->wday]);
                else
                        return false;
                return true;
        case 'D':
        case 'h':
        case 'H':
        case 'm':
        case 's': {
                int v = ch == 'D' ? t->day : ch == 'h' ? t->hour : ch == 'H' ? h12
                                                 : ch == 'm' ? t->min : t->sec;
                if (run > 2)
                        return false;
                strbuf_addf(sb, run == 2 ? "%02d" : "%d", v);
                return true;
        }
        case 'A':
        case 'a':
                if (run != 2)
                        return false;
                if (t->hour < 12)
                        strbuf_adds(sb, ch == 'A' ? "AM" : "am");
                else
                        strbuf_adds(sb, ch == 'A' ? "PM" : "pm");
                return true;
        case 'Z':
                /* Timestamps are UTC, so every zone form is fixed. */
                if (run == 1)
                        strbuf_adds(sb, "Z");
                else if (run == 3)
                        strbuf_adds(sb, "UTC");
                else if (run == 4)
                        strbuf_adds(sb, "+0000");
                else if (run == 5)
                        strbuf_adds(sb, "+00:00");
                else
                        return false;
                return true;
        }
        return false;
}

/* formatdate(fmt, ts) with Terraform's format letters; 'quoted' text is
 * copied, '' is a quote. */
static int fn_formatdate(const struct call *k, struct value **ret) {
        const char *fmt, *ts;
        size_t flen, tslen;
        int r;
        if ((r = arg_string(k, 0, &fmt, &flen)) < 0 || (r = arg_string(k, 1, &ts, &tslen)) < 0)
                return r;
        /* A sensitive argument is never quoted, not even one character of
         * it: the error says where, not what. c->sensitive covers values
         * derived from a secret inside this string (e.g. upper(var.pw)). */
        bool fmt_secret = value_any_sensitive(k->argv[0]) || k->c->sensitive;
        bool ts_secret = value_any_sensitive(k->argv[1]) || k->c->sensitive;
        struct tm_utc t;
        if (!parse_rfc3339(ts, tslen, &t)) {
                struct diag *dg = ts_secret
                        ? arg_error(k, 1, "the timestamp (sensitive) is not an RFC 3339 UTC timestamp")
                        : arg_error(k, 1, "'%.*s' is not an RFC 3339 UTC timestamp",
                                    (int)(tslen > QUOTE_MAX ? QUOTE_MAX : tslen), ts);
                diag_hint(dg, "write it like 2026-11-21T20:28:48Z, or use ${timestamp}");
                return -EINVAL;
        }
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        for (size_t i = 0; i < flen;) {
                char ch = fmt[i];
                if (ch == '\'') {
                        if (i + 1 < flen && fmt[i + 1] == '\'') {
                                strbuf_addc(&sb, '\'');
                                i += 2;
                                continue;
                        }
                        size_t j = i + 1;
                        for (;;) {
                                if (j >= flen) {
                                        arg_error(k, 0, "unterminated quote in the format");
                                        return -EINVAL;
                                }
                                if (fmt[j] == '\'') {
                                        if (j + 1 < flen && fmt[j + 1] == '\'') {
                                                strbuf_addc(&sb, '\'');
                                                j += 2;
                                                continue;
                                        }
                                        break;
                                }
                                strbuf_addc(&sb, fmt[j++]);
                        }
                        i = j + 1;
                        continue;
                }
                if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'))) {
                        strbuf_addc(&sb, ch);
                        i++;
                        continue;
                }
                size_t run = 1;
                while (i + run < flen && fmt[i + run] == ch)
                        run++;
                if (!format_letter(&sb, ch, run, &t)) {
                        int show = (int)(run > QUOTE_MAX ? QUOTE_MAX : run);
                        struct diag *dg = fmt_secret
                                ? arg_error(k, 0, "unsupported sequence in the format (sensitive, not shown)")
                                : arg_error(k, 0, "unsupported sequence '%.*s' in the format", show,
                                            fmt + i);
                        diag_hint(dg, "use YYYY YY MMMM MMM MM M DD D EEEE EEE hh h HH H AA aa "
                                      "mm m ss s ZZZZZ ZZZZ ZZZ Z; put other letters in quotes, "
                                      "e.g. 'T'");
                        return -EINVAL;
                }
                i += run;
        }
        *ret = new_string(k, &sb);
        return 0;
}

/* The functions. Where a string is expected, numbers and booleans are taken
 * by their text; null, lists and maps are errors.
 *   lower(s), upper(s)   ASCII case mapping; other bytes (UTF-8) unchanged
 *   trimspace(s)         strips ASCII whitespace at both ends
 *   replace(s, old, new) every occurrence of old (non-empty), left to right
 *   join(sep, list)      list items must be strings, numbers or booleans
 *   split(sep, s)        list of strings; sep non-empty; "" gives [""]
 *   sha256(s)            lowercase hex digest of s's bytes
 *   file(path)           text of path (relative to env->base_dir unless
 *                        absolute), at most INTERP_FILE_MAX bytes, no NUL
 *                        bytes; the resolved path is added to files_read
 *   formatdate(fmt, ts)  ts is RFC 3339 UTC; fmt as Terraform's formatdate:
 *                        YYYY YY MMMM MMM MM M DD D EEEE EEE hh h HH H AA aa
 *                        mm m ss s, ZZZZZ (+00:00) ZZZZ (+0000) ZZZ (UTC)
 *                        Z (Z), 'quoted text', '' for a quote; other
 *                        letters are errors
 *   coalesce(a, ...)     the first argument that is neither null nor "";
 *                        an error when there is none
 *   timestamp()          the same as ${timestamp}
 * A function's result is sensitive when an argument was (see c->sensitive). */
static const struct func funcs[] = {
        {"lower", "s", 1, 1, fn_lower},
        {"upper", "s", 1, 1, fn_upper},
        {"trimspace", "s", 1, 1, fn_trimspace},
        {"replace", "s, old, new", 3, 3, fn_replace},
        {"join", "sep, list", 2, 2, fn_join},
        {"split", "sep, s", 2, 2, fn_split},
        {"sha256", "s", 1, 1, fn_sha256},
        {"file", "path", 1, 1, fn_file},
        {"formatdate", "fmt, ts", 2, 2, fn_formatdate},
        {"coalesce", "a, b, ...", 1, SIZE_MAX, fn_coalesce},
        {"timestamp", "", 0, 0, fn_timestamp},
};
static const size_t nfuncs = ARRAY_SIZE(funcs);

/* ---- lookups and evaluation ---------------------------------------------------- */

static const struct func *func_find(const char *name) {
        for (size_t i = 0; i < nfuncs; i++)
                if (streq(funcs[i].name, name))
                        return &funcs[i];
        return NULL;
}

/* Appends "a, b, c" (up to 12 names) to sb. */
static void list_names(struct strbuf *sb, const char *const *names, size_t n) {
        for (size_t i = 0; i < n && i < 12; i++)
                strbuf_addf(sb, "%s%s", i ? ", " : "", names[i]);
        if (n > 12)
                strbuf_adds(sb, ", ...");
}

/* The keys of map v, borrowed; free the array. */
static const char **map_keys(const struct value *v) {
        const char **k = xcalloc(v->n + 1, sizeof(*k));
        for (size_t i = 0; i < v->n; i++)
                k[i] = v->keys[i]->str;
        return k;
}

/* Looks up a root of the scope (var, build, ...); the name is at off/len. */
static int lookup_root(struct ctx *c, const char *name, size_t off, size_t len, struct ev *ret) {
        const struct value *scope = c->env ? c->env->scope : NULL;
        size_t nscope = scope && scope->kind == V_MAP ? scope->n : 0;
        const struct value *v = value_map_get(scope, name);
        if (v) {
                *ret = (struct ev){v, NULL};
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(known_roots); i++) {
                if (!streq(name, known_roots[i]))
                        continue;
                struct diag *dg = err_at(c, off, len, "'%s' is not available here", name);
                if ((streq(name, "build") || streq(name, "matrix")) && value_map_get(scope, "var")) {
                        diag_hint(dg, "build.* and matrix.* are known only once the matrix is expanded: "
                                      "they cannot be used in matrix:, from:, arch: or role:");
                } else if (streq(name, "build") || streq(name, "matrix")) {
                        diag_hint(dg, "build.* and matrix.* can only be used inside builds:");
                } else {
                        _cleanup_free_ const char **k = nscope ? map_keys(scope) : NULL;
                        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
                        list_names(&sb, k, nscope);
                        diag_hint(dg, "what can be used here: %s",
                                  sb.len ? sb.buf : "nothing, only literal text");
                }
                return -EINVAL;
        }
        struct diag *dg = err_at(c, off, len, "unknown reference '%s'", name);
        if (func_find(name)) {
                diag_hint(dg, "'%s' is a function: call it as %s(...)", name, name);
                return -EINVAL;
        }
        /* Candidates: the known roots, whatever else the scope holds, functions. */
        _cleanup_free_ const char **cands =
                xcalloc(ARRAY_SIZE(known_roots) + nscope + nfuncs, sizeof(*cands));
        size_t n = 0;
        for (size_t i = 0; i < ARRAY_SIZE(known_roots); i++)
                cands[n++] = known_roots[i];
        for (size_t i = 0; i < nscope; i++)
                cands[n++] = scope->keys[i]->str;
        for (size_t i = 0; i < nfuncs; i++)
                cands[n++] = funcs[i].name;
        const char *best = suggest_closest(name, cands, n);
        if (best)
                diag_hint(dg, "did you mean '%s'?", best);
        else
                diag_hint(dg, "to pass a literal ${...} through (e.g. to a shell), write $%.*s",
                          quote_len(c->open, c->close), c->s + c->open);
        return -EINVAL;
}

/* Replaces e's value by its field `key` (e is a map). The chain so far is
 * n's primary plus i postfixes; the key's text is at off/len. */
static int get_field(struct ctx *c, const struct node *n, size_t i, const char *key, size_t off,
                     size_t len, struct ev *e) {
        const struct value *child = value_map_get(e->v, key);
        if (child) {
                e->v = child;
                return 0;
        }
        bool is_var = n->kind == N_IDENT && streq(n->text, "var") && i == 0;
        struct diag *dg;
        if (is_var)
                dg = err_at(c, off, len, "undefined variable '%s'", key);
        else
                dg = err_at(c, off, len, "'%.*s' has no field '%s'",
                            quote_len(n->off, node_prefix_end(n, i)), c->s + n->off, key);
        _cleanup_free_ const char **k = map_keys(e->v);
        const char *best = suggest_closest(key, k, e->v->n);
        bool is_build = n->kind == N_IDENT && streq(n->text, "build") && i == 0;
        if (is_build && streq(key, "name") && value_map_get(e->v, "base"))
                diag_hint(dg, "the name: template cannot use the name it is making; use ${build.base}");
        else if (best)
                diag_hint(dg, "did you mean '%s'?", best);
        else if (is_var)
                diag_hint(dg, "declare it under variables:");
        else if (e->v->n == 0 && n->kind == N_IDENT && streq(n->text, "matrix") && i == 0)
                diag_hint(dg, "this build has no matrix:");
        else if (e->v->n == 0)
                diag_hint(dg, "it has no fields");
        else {
                _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
                list_names(&sb, k, e->v->n);
                diag_hint(dg, "its fields are: %s", sb.buf);
        }
        return -EINVAL;
}

static int eval_use(struct ctx *c, const struct node *n, struct ev *ret);

/* Applies postfix i of n to e. */
static int apply_op(struct ctx *c, const struct node *n, size_t i, struct ev *e) {
        const struct op *op = &n->ops[i];
        int base_len = quote_len(n->off, node_prefix_end(n, i));
        const char *base = c->s + n->off;

        if (op->kind == OP_FIELD) {
                if (e->v->kind != V_MAP) {
                        err_at(c, op->off, op->len,
                               "cannot read field '%s' of '%.*s': it is a %s, not a map",
                               op->name, base_len, base, value_kind_name(e->v->kind));
                        return -EINVAL;
                }
                return get_field(c, n, i, op->name, op->off, op->len, e);
        }

        _cleanup_ev_ struct ev idx = {0};
        int r = eval_use(c, op->index, &idx);
        if (r < 0)
                return r;
        const struct value *x = idx.v;
        if (e->v->kind == V_LIST) {
                if (x->kind != V_NUMBER) {
                        err_at(c, op->off, op->len, "a list index must be a number, not a %s",
                               value_kind_name(x->kind));
                        return -EINVAL;
                }
                if (x->num >= 0 && x->num < (double)e->v->n &&
                    x->num != (double)(size_t)x->num) {
                        err_at(c, op->off, op->len, "list index %s is not a whole number",
                               x->str);
                        return -EINVAL;
                }
                if (!(x->num >= 0 && x->num < (double)e->v->n)) {
                        struct diag *dg = err_at(c, op->off, op->len,
                                                 "index %s is out of range for '%.*s'", x->str,
                                                 base_len, base);
                        if (e->v->n)
                                diag_hint(dg, "it has %zu item%s: use 0 to %zu", e->v->n,
                                          e->v->n == 1 ? "" : "s", e->v->n - 1);
                        else
                                diag_hint(dg, "the list is empty");
                        return -EINVAL;
                }
                e->v = e->v->items[(size_t)x->num];
                return 0;
        }
        if (e->v->kind == V_MAP) {
                if (!value_is_scalar(x) || x->kind == V_NULL || !x->str) {
                        err_at(c, op->off, op->len, "a map key must be a string, not a %s",
                               value_kind_name(x->kind));
                        return -EINVAL;
                }
                return get_field(c, n, i, x->str, op->off, op->len, e);
        }
        err_at(c, op->off, op->len, "cannot index '%.*s': it is a %s, not a list or map", base_len,
               base, value_kind_name(e->v->kind));
        return -EINVAL;
}

static int eval_call(struct ctx *c, const struct node *n, struct ev *ret) {
        const struct func *f = func_find(n->text);
        if (!f) {
                struct diag *dg = err_at(c, n->off, n->len, "unknown function '%s'", n->text);
                const char *names[ARRAY_SIZE(funcs)];
                for (size_t i = 0; i < nfuncs; i++)
                        names[i] = funcs[i].name;
                const char *best = suggest_closest(n->text, names, nfuncs);
                if (best)
                        diag_hint(dg, "did you mean '%s'?", best);
                else {
                        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
                        list_names(&sb, names, nfuncs);
                        diag_hint(dg, "the functions are: %s", sb.buf);
                }
                return -EINVAL;
        }
        if (n->nargs < f->min_args || n->nargs > f->max_args) {
                if (f->min_args == f->max_args)
                        err_at(c, n->off, n->end - n->off, "%s(%s) takes %zu argument%s, not %zu",
                               f->name, f->params, f->min_args, f->min_args == 1 ? "" : "s",
                               n->nargs);
                else
                        err_at(c, n->off, n->end - n->off,
                               "%s(%s) takes at least %zu argument%s, not %zu", f->name,
                               f->params, f->min_args, f->min_args == 1 ? "" : "s", n->nargs);
                return -EINVAL;
        }

        struct ev *args = xcalloc(n->nargs + 1, sizeof(*args));
        const struct value **argv = xcalloc(n->nargs + 1, sizeof(*argv));
        int r = 0;
        for (size_t i = 0; i < n->nargs; i++) {
                r = eval_use(c, n->args[i], &args[i]);
                if (r < 0)
                        goto out;
                argv[i] = args[i].v;
        }
        struct call k = {c, f, n, argv, n->nargs};
        struct value *res = NULL;
        r = f->fn(&k, &res);
        if (r < 0)
                goto out;
        /* No need to mark res sensitive: eval_use noted a sensitive argument
         * in c->sensitive, which marks the whole result of the string. */
        *ret = ev_owned(res);
out:
        for (size_t i = 0; i < n->nargs; i++)
                ev_done(&args[i]);
        free(args);
        free(argv);
        return r;
}

static int eval_node(struct ctx *c, const struct node *n, struct ev *ret) {
        _cleanup_ev_ struct ev e = {0};
        const struct mark *m = &c->in->mark;
        int r = 0;
        switch (n->kind) {
        case N_IDENT: r = lookup_root(c, n->text, n->off, n->len, &e); break;
        case N_CALL: r = eval_call(c, n, &e); break;
        case N_PAREN: r = eval_node(c, n->args[0], &e); break;
        case N_STRING: e = ev_owned(value_new_stringn(n->text, n->text_len, m)); break;
        case N_BOOL: e = ev_owned(value_new_bool(n->text[0] == 't', m)); break;
        case N_NULL: {
                struct value *v = value_new(V_NULL, m);
                v->str = xstrdup("null");
                v->len = 4;
                e = ev_owned(v);
                break;
        }
        case N_NUMBER: {
                struct value *v = value_new(V_NUMBER, m);
                v->num = strtod(n->text, NULL);
                v->is_int = !strchr(n->text, '.');
                v->str = xstrdup(n->text);
                v->len = n->text_len;
                e = ev_owned(v);
                break;
        }
        }
        if (r < 0)
                return r;
        for (size_t i = 0; i < n->nops; i++) {
                r = apply_op(c, n, i, &e);
                if (r < 0)
                        return r;
        }
        *ret = e;
        e = (struct ev){0};
        return 0;
}

/* Evaluates n as a value that is consumed (not just passed through on the
 * way to a field), noting when it is sensitive. */
static int eval_use(struct ctx *c, const struct node *n, struct ev *ret) {
        int r = eval_node(c, n, ret);
        /* A value whose own error was already reported (e.g. a variable
         * without a value) fails quietly: one mistake, one message. */
        if (r >= 0 && ret->v && ret->v->invalid)
                return -ECANCELED;
        if (r >= 0 && value_any_sensitive(ret->v))
                c->sensitive = true;
        return r;
}

/* ---- strings and trees ---------------------------------------------------------- */

bool interp_has_expr(const char *s) {
        for (const char *p = s; (p = strchr(p, '$'));) {
                if (p[1] == '$' && p[2] == '{')
                        p += 3;
                else if (p[1] == '{')
                        return true;
                else
                        p++;
        }
        return false;
}

/* Appends the text of a ${...} result to a string being built. */
static int append_value(struct ctx *c, const struct node *n, const struct value *v,
                        struct strbuf *out) {
        if (v->kind == V_LIST || v->kind == V_MAP) {
                struct diag *dg = err_at(c, c->open, c->close - c->open,
                                         "cannot insert a %s into a string",
                                         value_kind_name(v->kind));
                int elen = quote_len(n->off, node_end(n));
                if (v->kind == V_LIST)
                        diag_hint(dg, "use join(\",\", ...) to make text of it, e.g. "
                                      "${join(\",\", %.*s)}",
                                  elen, c->s + n->off);
                else
                        diag_hint(dg, "insert one of its fields instead, e.g. ${%.*s.FIELD}",
                                  elen, c->s + n->off);
                return -EINVAL;
        }
        if (v->kind != V_NULL && v->str)
                strbuf_add(out, v->str, v->len);
        return 0;
}

/* Evaluates the string c->in; *ret is the result, or NULL after errors. */
static int eval_string(struct ctx *c, struct value **ret) {
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        bool failed = false;
        size_t i = 0;
        strbuf_grow(&out, c->len);
        while (i < c->len) {
                const char *dollar = memchr(c->s + i, '$', c->len - i);
                if (!dollar) {
                        strbuf_add(&out, c->s + i, c->len - i);
                        break;
                }
                size_t at = (size_t)(dollar - c->s);
                strbuf_add(&out, c->s + i, at - i);
                i = at;
                if (i + 2 < c->len && c->s[i + 1] == '$' && c->s[i + 2] == '{') {
                        strbuf_adds(&out, "${");
                        i += 3;
                        continue;
                }
                if (!(i + 1 < c->len && c->s[i + 1] == '{')) {
                        strbuf_addc(&out, '$');
                        i++;
                        continue;
                }

                c->open = i;
                c->pos = i + 2;
                c->depth = 0;
                _cleanup_node_ struct node *n = NULL;
                int r = parse_expr(c, &n);
                if (r < 0)
                        return r; /* the end of this ${ is unknown: give up the string */
                skip_ws(c);
                if (c->pos >= c->len)
                        return err_unterminated(c);
                if (c->s[c->pos] != '}')
                        return err_unexpected(c, "'}' to end the expression");
                c->close = c->pos + 1;
                i = c->close;

                _cleanup_ev_ struct ev e = {0};
                r = eval_use(c, n, &e);
                if (r < 0) {
                        failed = true;
                        continue;
                }
                if (c->open == 0 && c->close == c->len) {
                        /* Exactly one ${...}: the result keeps its type. */
                        struct value *v = ev_take(&e);
                        v->mark = c->in->mark;
                        v->style = STYLE_NONE;
                        v->invalid = false;
                        if (c->sensitive || c->in->sensitive)
                                value_set_sensitive(v);
                        *ret = v;
                        return 0;
                }
                if (append_value(c, n, e.v, &out) < 0) {
                        failed = true;
                        continue;
                }
                if (out.len > INTERP_MAX_RESULT) {
                        err_at(c, c->open, c->close - c->open,
                               "the interpolated string is longer than %u bytes",
                               INTERP_MAX_RESULT);
                        return -E2BIG;
                }
        }
        if (failed)
                return -EINVAL;
        struct value *v = value_new(V_STRING, &c->in->mark);
        v->len = out.len;
        v->str = strbuf_detach(&out);
        if (c->sensitive || c->in->sensitive)
                v->sensitive = true;
        *ret = v;
        return 0;
}

int interp_string(const struct value *in, const struct interp_env *env, struct diag_list *d,
                  struct value **ret) {
        if (!in || in->kind != V_STRING || !in->str ||
            !memmem(in->str, in->len, "${", 2)) {
                /* Nothing to do; "$${" alone still needs evaluating, to unescape it. */
                *ret = value_clone(in);
                return 0;
        }
        struct ctx c = {
                .in = in,
                .s = in->str,
                .len = in->len,
                .env = env,
                .d = d,
        };
        struct value *v = NULL;
        int r = eval_string(&c, &v);
        if (r < 0) {
                v = value_clone(in);
                v->invalid = true;
                *ret = v;
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

int interp_value(const struct value *in, const struct interp_env *env, struct diag_list *d,
                 struct value **ret) {
        if (!in || (in->kind != V_LIST && in->kind != V_MAP))
                return interp_string(in, env, d, ret);
        /* A shallow copy keeps the container's mark and flags; the children
         * are evaluated one by one, going on after errors. */
        struct value *out = xmalloc(sizeof(*out));
        *out = *in;
        out->str = xstrdup_null(in->str);
        out->items = NULL;
        out->keys = NULL;
        out->n = 0;
        int r = 0;
        for (size_t i = 0; i < in->n; i++) {
                struct value *item = NULL;
                if (interp_value(in->items[i], env, d, &item) < 0)
                        r = -EINVAL;
                if (in->kind == V_MAP)
                        value_map_append(out, value_clone(in->keys[i]), item);
                else
                        value_list_append(out, item);
        }
        *ret = out;
        return r;
}
