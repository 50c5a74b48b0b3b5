/* SPDX-License-Identifier: Apache-2.0 */
#include "base/diag.h"

#include "base/json.h"

static unsigned next_source_id;

struct source *source_new(const char *path, const char *text, size_t len) {
        struct source *s = xcalloc(1, sizeof(*s));
        s->path = xstrdup(path);
        if (text) {
                s->text = xmalloc(len + 1);
                memcpy(s->text, text, len);
                s->text[len] = 0;
                s->len = len;
        }
        s->id = ++next_source_id;
        return s;
}

struct source *source_free(struct source *s) {
        if (s) {
                free(s->path);
                free(s->text);
                free(s);
        }
        return NULL;
}

const char *source_line(const struct source *s, unsigned line, size_t *ret_len) {
        if (!s || !s->text || line == 0)
                return NULL;
        const char *p = s->text, *end = s->text + s->len;
        for (unsigned l = 1; l < line; l++) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                if (!nl)
                        return NULL;
                p = nl + 1;
        }
        if (p > end || (p == end && line > 1 && p[-1] == '\n'))
                return NULL;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n && p[n - 1] == '\r')
                n--;
        *ret_len = n;
        return p;
}

static bool same_mark(const struct mark *a, const struct mark *b) {
        return a->src == b->src && a->line == b->line && a->col == b->col;
}

struct diag *diag_addv(struct diag_list *d, enum diag_level level, const struct mark *m,
                       unsigned span, const char *fmt, va_list ap) {
        struct mark mk = m ? *m : (struct mark){0};
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        for (size_t i = 0; i < d->n; i++)
                if (d->v[i].level == level && same_mark(&d->v[i].mark, &mk) &&
                    streq(d->v[i].msg, msg))
                        return NULL;
        if (level == DIAG_ERROR)
                d->nerrors++;
        else if (level == DIAG_WARNING)
                d->nwarnings++;
        if (d->n >= DIAG_MAX)
                return NULL;
        GROW(d->v, d->n, d->cap);
        struct diag *dg = &d->v[d->n++];
        *dg = (struct diag){.level = level, .mark = mk, .span = span ? span : 1,
                            .msg = TAKE_PTR(msg)};
        return dg;
}

struct diag *diag_error(struct diag_list *d, const struct mark *m, unsigned span,
                        const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        struct diag *r = diag_addv(d, DIAG_ERROR, m, span, fmt, ap);
        va_end(ap);
        return r;
}

struct diag *diag_warning(struct diag_list *d, const struct mark *m, unsigned span,
                          const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        struct diag *r = diag_addv(d, DIAG_WARNING, m, span, fmt, ap);
        va_end(ap);
        return r;
}

void diag_hint(struct diag *dg, const char *fmt, ...) {
        if (!dg)
                return;
        va_list ap;
        va_start(ap, fmt);
        free(dg->hint);
        dg->hint = xvasprintf(fmt, ap);
        va_end(ap);
}

void diag_list_done(struct diag_list *d) {
        for (size_t i = 0; i < d->n; i++) {
                free(d->v[i].msg);
                free(d->v[i].hint);
        }
        free(d->v);
        for (size_t i = 0; i < d->nadopted; i++)
                source_free(d->adopted[i]);
        free(d->adopted);
        for (size_t i = 0; i < d->nsecrets; i++)
                free(d->secrets[i]);
        free(d->secrets);
        *d = (struct diag_list){0};
}

void diag_add_secret(struct diag_list *d, const char *s, size_t n) {
        if (n < DIAG_SECRET_MIN || memchr(s, 0, n))
                return;
        for (size_t i = 0; i < d->nsecrets; i++)
                if (strlen(d->secrets[i]) == n && memcmp(d->secrets[i], s, n) == 0)
                        return;
        GROW(d->secrets, d->nsecrets, d->secrets_cap);
        d->secrets[d->nsecrets++] = xstrndup(s, n);
}

/* Appends text[0..n) to out with every registered secret masked. When
 * track is set, *track (a byte offset in text) is moved to the matching
 * offset in the output. */
static void add_masked_track(const struct diag_list *d, struct strbuf *out, const char *text,
                             size_t n, size_t *track) {
        size_t base = out->len;
        bool moved = false;
        for (size_t i = 0; i < n;) {
                if (track && !moved && i >= *track) {
                        *track = out->len - base;
                        moved = true;
                }
                size_t hit = 0;
                for (size_t k = 0; k < d->nsecrets && !hit; k++) {
                        size_t l = strlen(d->secrets[k]);
                        if (l <= n - i && memcmp(text + i, d->secrets[k], l) == 0)
                                hit = l;
                }
                if (hit) {
                        strbuf_adds(out, "<sensitive>");
                        i += hit;
                } else {
                        strbuf_addc(out, text[i++]);
                }
        }
        if (track && !moved)
                *track = out->len - base;
}

static void add_masked(const struct diag_list *d, struct strbuf *out, const char *text, size_t n) {
        add_masked_track(d, out, text, n, NULL);
}

static char *masked(const struct diag_list *d, const char *s) {
        struct strbuf sb = STRBUF_INIT;
        add_masked(d, &sb, s, strlen(s));
        return strbuf_detach(&sb);
}

void diag_adopt_source(struct diag_list *d, struct source *src) {
        GROW(d->adopted, d->nadopted, d->adopted_cap);
        d->adopted[d->nadopted++] = src;
}

static int cmp_diag(const struct diag *a, const struct diag *b) {
        unsigned ia = a->mark.src ? a->mark.src->id : 0, ib = b->mark.src ? b->mark.src->id : 0;
        if (ia != ib)
                return ia < ib ? -1 : 1;
        if (a->mark.line != b->mark.line)
                return a->mark.line < b->mark.line ? -1 : 1;
        if (a->mark.col != b->mark.col)
                return a->mark.col < b->mark.col ? -1 : 1;
        return 0;
}

void diag_sort(struct diag_list *d) {
        /* Insertion sort: stable, and lists are short (<= DIAG_MAX). */
        for (size_t i = 1; i < d->n; i++) {
                struct diag t = d->v[i];
                size_t j = i;
                while (j > 0 && cmp_diag(&d->v[j - 1], &t) > 0) {
                        d->v[j] = d->v[j - 1];
                        j--;
                }
                d->v[j] = t;
        }
}

static const char *level_name(enum diag_level l) {
        switch (l) {
        case DIAG_ERROR: return "error";
        case DIAG_WARNING: return "warning";
        default: return "note";
        }
}

#define C_BOLD "\033[1m"
#define C_RED "\033[1;31m"
#define C_YELLOW "\033[1;33m"
#define C_CYAN "\033[1;36m"
#define C_GREEN "\033[1;32m"
#define C_RESET "\033[0m"

/* Number of display columns of the first n bytes of a UTF-8 line, counting
 * a tab as one column like the column numbers do. */
static size_t utf8_chars(const char *s, size_t n) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                if (((unsigned char)s[i] & 0xc0) != 0x80)
                        c++;
        return c;
}

/* Byte offset of character column col (1-based) in a line. */
static size_t col_to_byte(const char *s, size_t n, unsigned col) {
        size_t chars = 0;
        for (size_t i = 0; i < n; i++) {
                if (((unsigned char)s[i] & 0xc0) != 0x80) {
                        if (++chars == col)
                                return i;
                }
        }
        return n;
}

static void render_one(const struct diag_list *d, const struct diag *dg, struct strbuf *out,
                       bool color) {
        const struct mark *m = &dg->mark;
        const char *lc = dg->level == DIAG_ERROR ? C_RED : dg->level == DIAG_WARNING ? C_YELLOW : C_CYAN;
        if (color)
                strbuf_adds(out, C_BOLD);
        if (m->src) {
                strbuf_adds(out, m->src->path);
                if (m->line)
                        strbuf_addf(out, ":%u:%u", m->line, m->col ? m->col : 1);
                strbuf_adds(out, ": ");
        } else {
                strbuf_adds(out, "kiln: ");
        }
        if (color)
                strbuf_adds(out, lc);
        strbuf_addf(out, "%s:", level_name(dg->level));
        if (color)
                strbuf_adds(out, C_RESET C_BOLD);
        strbuf_addc(out, ' ');
        add_masked(d, out, dg->msg, strlen(dg->msg));
        if (color)
                strbuf_adds(out, C_RESET);
        strbuf_addc(out, '\n');

        size_t len;
        const char *line = dg->redact ? NULL : source_line(m->src, m->line, &len);
        _cleanup_free_ char *mline = NULL;
        unsigned caret_col = m->col ? m->col : 1;
        if (line && d->nsecrets) {
                /* Mask secrets in the quoted line and move the caret with the
                 * text it points at. */
                struct strbuf sb = STRBUF_INIT;
                size_t at = col_to_byte(line, len, caret_col);
                add_masked_track(d, &sb, line, len, &at);
                if (sb.len != len || memcmp(sb.buf, line, len) != 0) {
                        len = sb.len;
                        mline = strbuf_detach(&sb);
                        line = mline;
                        caret_col = (unsigned)utf8_chars(line, at) + 1;
                } else {
                        strbuf_free(&sb);
                }
        }
        if (line) {
                char num[16];
                int w = snprintf(num, sizeof(num), "%u", m->line);
                strbuf_addf(out, " %*s | ", w < 4 ? 4 : w, num);
                /* Tabs would make the caret line misalign: show them as spaces. */
                for (size_t i = 0; i < len; i++)
                        strbuf_addc(out, line[i] == '\t' ? ' ' : line[i]);
                strbuf_addc(out, '\n');
                strbuf_addf(out, " %*s | ", w < 4 ? 4 : w, "");
                size_t chars = utf8_chars(line, len);
                unsigned col = caret_col;
                strbuf_addch_n(out, ' ', col - 1 <= chars ? col - 1 : chars);
                size_t start = col_to_byte(line, len, col);
                size_t avail = start < len ? utf8_chars(line + start, len - start) : 0;
                size_t span = dg->span;
                if (span > avail)
                        span = avail ? avail : 1;
                if (color)
                        strbuf_adds(out, C_GREEN);
                strbuf_addc(out, '^');
                strbuf_addch_n(out, '~', span - 1);
                if (color)
                        strbuf_adds(out, C_RESET);
                strbuf_addc(out, '\n');
        }
        if (dg->hint) {
                if (color)
                        strbuf_adds(out, C_CYAN);
                strbuf_adds(out, "hint:");
                if (color)
                        strbuf_adds(out, C_RESET);
                strbuf_addc(out, ' ');
                add_masked(d, out, dg->hint, strlen(dg->hint));
                strbuf_addc(out, '\n');
        }
}

void diag_render(const struct diag_list *d, struct strbuf *out, bool color) {
        for (size_t i = 0; i < d->n; i++)
                render_one(d, &d->v[i], out, color);
        size_t total = d->nerrors + d->nwarnings;
        if (total > d->n)
                strbuf_addf(out, "kiln: %zu more diagnostics not shown\n", total - d->n);
}

void diag_render_json(const struct diag_list *d, struct strbuf *out) {
        struct json_writer w;
        json_init(&w, out, true);
        diag_write_json(d, &w);
        strbuf_addc(out, '\n');
}

void diag_write_json(const struct diag_list *d, struct json_writer *wp) {
        struct json_writer w = *wp;
        json_begin_array(&w);
        for (size_t i = 0; i < d->n; i++) {
                const struct diag *dg = &d->v[i];
                json_begin_object(&w);
                json_key(&w, "file");
                json_string(&w, dg->mark.src ? dg->mark.src->path : NULL);
                json_key(&w, "line");
                json_int(&w, dg->mark.line);
                json_key(&w, "column");
                json_int(&w, dg->mark.col);
                json_key(&w, "severity");
                json_string(&w, level_name(dg->level));
                _cleanup_free_ char *msg = masked(d, dg->msg);
                _cleanup_free_ char *hint = dg->hint ? masked(d, dg->hint) : NULL;
                json_key(&w, "message");
                json_string(&w, msg);
                json_key(&w, "hint");
                json_string(&w, hint);
                json_end_object(&w);
        }
        json_end_array(&w);
        *wp = w;
}
