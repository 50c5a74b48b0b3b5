/* SPDX-License-Identifier: Apache-2.0 */
#include "base/diag.h"

#include "base/json.h"

#include <stdint.h>

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

size_t source_break_len(const char *p, const char *end) {
        if (p >= end)
                return 0;
        const unsigned char *u = (const unsigned char *)p;
        size_t avail = (size_t)(end - p);
        if (u[0] == '\n')
                return 1;
        if (u[0] == '\r')
                return avail >= 2 && u[1] == '\n' ? 2 : 1;
        if (u[0] == 0xc2 && avail >= 2 && u[1] == 0x85)
                return 2;
        if (u[0] == 0xe2 && avail >= 3 && u[1] == 0x80 && (u[2] == 0xa8 || u[2] == 0xa9))
                return 3;
        return 0;
}

/* The first line break in [p, end), or end; *ret_blen gets its length. Cost
 * O(line length): memchr-like scan for the three lead bytes. */
static const char *find_break(const char *p, const char *end, size_t *ret_blen) {
        for (; p < end; p++) {
                unsigned char c = (unsigned char)*p;
                if (c != '\n' && c != '\r' && c != 0xc2 && c != 0xe2)
                        continue;
                size_t b = source_break_len(p, end);
                if (b) {
                        *ret_blen = b;
                        return p;
                }
        }
        *ret_blen = 0;
        return end;
}

const char *source_line(const struct source *s, unsigned line, size_t *ret_len) {
        if (!s || !s->text || line == 0)
                return NULL;
        const char *p = s->text, *end = s->text + s->len;
        size_t blen = 0;
        for (unsigned l = 1; l < line; l++) {
                const char *br = find_break(p, end, &blen);
                if (!blen)
                        return NULL;
                p = br + blen;
        }
        /* The "line" after a final line break does not exist. */
        if (p == end && line > 1)
                return NULL;
        const char *br = find_break(p, end, &blen);
        *ret_len = (size_t)(br - p);
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
        free(d->redacted);
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

void diag_redact_lines(struct diag_list *d, const struct source *src, unsigned first,
                       unsigned last) {
        if (!src || first > last)
                return;
        GROW(d->redacted, d->nredacted, d->redacted_cap);
        d->redacted[d->nredacted++] = (struct diag_lines){src, first, last};
}

/* Whether the line m points at may be quoted. */
static bool may_quote(const struct diag_list *d, const struct diag *dg) {
        const struct mark *m = &dg->mark;
        if (dg->redact || !m->src || m->src->redact)
                return false;
        for (size_t i = 0; i < d->nredacted; i++) {
                const struct diag_lines *r = &d->redacted[i];
                if (r->src == m->src && m->line >= r->first && m->line <= r->last)
                        return false;
        }
        return true;
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

/* ---- safe display ------------------------------------------------------ */

/* Characters shown as \uXXXX: C1 controls, line and paragraph separators,
 * bidirectional marks and overrides, the BOM. */
static bool cp_is_control(uint32_t cp) {
        return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
               cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
               (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

/* Decodes the UTF-8 character at s[0..n) (n >= 1). Returns its length in
 * bytes and the code point, or 0 when the bytes are not valid UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *ret_cp) {
        unsigned char c = s[0];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
                *ret_cp = c;
                return 1;
        } else if (c >= 0xc2 && c <= 0xdf) {
                len = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                len = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                len = 4;
                cp = c & 0x07;
        } else {
                return 0;
        }
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        *ret_cp = cp;
        return len;
}

/* Appends the display form of the character at s[0..n) (n >= 1) to out and
 * returns how many input bytes it covers. Printable characters are copied;
 * control characters and invalid bytes become \t \n \r \xNN or \uXXXX, so
 * nothing reaches a terminal that it would interpret. In a quoted line
 * (in_line) a tab is one space, like the column numbers count it. Every
 * form is one column per byte except a copied multi-byte character, which
 * is one column: *ret_cols gets the width. */
static size_t add_display_char(struct strbuf *out, const char *s, size_t n, bool in_line,
                               size_t *ret_cols) {
        const unsigned char *u = (const unsigned char *)s;
        uint32_t cp;
        size_t len = utf8_decode(u, n, &cp);
        size_t before = out->len;
        if (len == 0) {
                strbuf_addf(out, "\\x%02x", u[0]);
                len = 1;
        } else if (cp == '\t' && in_line) {
                strbuf_addc(out, ' ');
        } else if (cp < 0x20 || cp == 0x7f) {
                if (cp == '\t')
                        strbuf_adds(out, "\\t");
                else if (cp == '\n')
                        strbuf_adds(out, "\\n");
                else if (cp == '\r')
                        strbuf_adds(out, "\\r");
                else
                        strbuf_addf(out, "\\x%02x", (unsigned)cp);
        } else if (cp_is_control(cp)) {
                strbuf_addf(out, "\\u%04x", (unsigned)cp);
        } else {
                strbuf_add(out, s, len);
                *ret_cols = 1;
                return len;
        }
        *ret_cols = out->len - before;
        return len;
}

static size_t longest_secret(const struct diag_list *d) {
        size_t longest = 0;
        for (size_t i = 0; i < d->nsecrets; i++)
                if (strlen(d->secrets[i]) > longest)
                        longest = strlen(d->secrets[i]);
        return longest;
}

/* Appends text[0..n) with secrets masked and control characters escaped,
 * cut at DIAG_MSG_MAX bytes with "...". For paths, messages and hints. */
static void add_clean(const struct diag_list *d, struct strbuf *out, const char *text, size_t n) {
        _cleanup_strbuf_ struct strbuf m = STRBUF_INIT;
        /* Masking looks at no more than the cap can show, plus the longest
         * secret (one cut at the edge is still recognised). */
        size_t look = DIAG_MSG_MAX + longest_secret(d);
        add_masked_track(d, &m, text, n < look ? n : look, NULL);
        size_t start = out->len;
        for (size_t i = 0; i < m.len;) {
                size_t cols;
                size_t at = out->len;
                i += add_display_char(out, m.buf + i, m.len - i, false, &cols);
                if (out->len - start > DIAG_MSG_MAX) {
                        out->len = at;
                        out->buf[at] = 0;
                        strbuf_adds(out, "...");
                        return;
                }
        }
        if (n > look)
                strbuf_adds(out, "...");
}

static char *clean(const struct diag_list *d, const char *s) {
        struct strbuf sb = STRBUF_INIT;
        add_clean(d, &sb, s, strlen(s));
        return strbuf_detach(&sb);
}

/* Appends the quoted line of dg and the caret line under it, at most
 * DIAG_EXCERPT_COLS columns around the caret. Cost: O(line length) to find
 * the line, O(DIAG_EXCERPT_COLS + longest secret) for the rest. */
static void add_excerpt(const struct diag_list *d, const struct diag *dg, struct strbuf *out,
                        bool color) {
        const struct mark *m = &dg->mark;
        size_t len;
        const char *line = may_quote(d, dg) ? source_line(m->src, m->line, &len) : NULL;
        if (!line)
                return;
        size_t cb = col_to_byte(line, len, m->col ? m->col : 1);
        /* A byte window that holds every character that can be shown (4
         * bytes a character at most), widened by the longest secret so that
         * one crossing the window's edge is still masked. */
        size_t margin = 4 * (size_t)DIAG_EXCERPT_COLS + longest_secret(d);
        size_t wb = cb > margin ? cb - margin : 0;
        while (wb > 0 && wb < len && ((unsigned char)line[wb] & 0xc0) == 0x80)
                wb++;
        size_t we = len - cb > 2 * margin ? cb + 2 * margin : len;
        while (we < len && ((unsigned char)line[we] & 0xc0) == 0x80)
                we++;
        _cleanup_strbuf_ struct strbuf mk = STRBUF_INIT;
        size_t at = cb - wb;
        add_masked_track(d, &mk, line + wb, we - wb, &at);

        /* Escape, remembering where each character starts (byte in esc,
         * column). */
        _cleanup_strbuf_ struct strbuf esc = STRBUF_INIT;
        _cleanup_free_ size_t *byte_of = xcalloc(mk.len + 1, sizeof(size_t));
        _cleanup_free_ size_t *col_of = xcalloc(mk.len + 1, sizeof(size_t));
        size_t n = 0, cols = 0, caret_k = SIZE_MAX;
        for (size_t i = 0; i < mk.len; n++) {
                if (caret_k == SIZE_MAX && i >= at)
                        caret_k = n;
                byte_of[n] = esc.len;
                col_of[n] = cols;
                size_t w;
                i += add_display_char(&esc, mk.buf + i, mk.len - i, true, &w);
                cols += w;
        }
        byte_of[n] = esc.len;
        col_of[n] = cols;
        if (caret_k == SIZE_MAX)
                caret_k = n;
        size_t end_k = dg->span < n - caret_k ? caret_k + dg->span : n;
        size_t c0 = col_of[caret_k];
        size_t c1 = end_k > caret_k ? col_of[end_k] : c0 + 1;

        /* The column window: the caret about in the middle when cut. */
        size_t total = cols, half = DIAG_EXCERPT_COLS / 2;
        size_t ws = c0 > half ? c0 - half : 0, wc = ws + DIAG_EXCERPT_COLS;
        if (wc > total) {
                wc = total;
                ws = total > DIAG_EXCERPT_COLS ? total - DIAG_EXCERPT_COLS : 0;
        }
        size_t ks = 0, ke = n;
        while (ks < caret_k && col_of[ks] < ws)
                ks++;
        while (ke > caret_k && col_of[ke] > wc)
                ke--;
        bool pre = wb > 0 || ks > 0, post = we < len || ke < n;
        if (c1 > col_of[ke])
                c1 = col_of[ke] > c0 ? col_of[ke] : c0 + 1;

        char num[16];
        int w = snprintf(num, sizeof(num), "%u", m->line);
        strbuf_addf(out, " %*s | ", w < 4 ? 4 : w, num);
        if (pre)
                strbuf_adds(out, "...");
        strbuf_add(out, esc.buf + byte_of[ks], byte_of[ke] - byte_of[ks]);
        if (post)
                strbuf_adds(out, "...");
        strbuf_addc(out, '\n');
        strbuf_addf(out, " %*s | ", w < 4 ? 4 : w, "");
        strbuf_addch_n(out, ' ', (pre ? 3 : 0) + c0 - col_of[ks]);
        if (color)
                strbuf_adds(out, C_GREEN);
        strbuf_addc(out, '^');
        strbuf_addch_n(out, '~', c1 - c0 - 1);
        if (color)
                strbuf_adds(out, C_RESET);
        strbuf_addc(out, '\n');
}

static void render_one(const struct diag_list *d, const struct diag *dg, struct strbuf *out,
                       bool color) {
        const struct mark *m = &dg->mark;
        const char *lc = dg->level == DIAG_ERROR ? C_RED : dg->level == DIAG_WARNING ? C_YELLOW : C_CYAN;
        if (color)
                strbuf_adds(out, C_BOLD);
        if (m->src) {
                add_clean(d, out, m->src->path, strlen(m->src->path));
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
        add_clean(d, out, dg->msg, strlen(dg->msg));
        if (color)
                strbuf_adds(out, C_RESET);
        strbuf_addc(out, '\n');
        add_excerpt(d, dg, out, color);
        if (dg->hint) {
                if (color)
                        strbuf_adds(out, C_CYAN);
                strbuf_adds(out, "hint:");
                if (color)
                        strbuf_adds(out, C_RESET);
                strbuf_addc(out, ' ');
                add_clean(d, out, dg->hint, strlen(dg->hint));
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
                _cleanup_free_ char *file = dg->mark.src ? clean(d, dg->mark.src->path) : NULL;
                json_string(&w, file);
                json_key(&w, "line");
                json_int(&w, dg->mark.line);
                json_key(&w, "column");
                json_int(&w, dg->mark.col);
                json_key(&w, "severity");
                json_string(&w, level_name(dg->level));
                _cleanup_free_ char *msg = clean(d, dg->msg);
                _cleanup_free_ char *hint = dg->hint ? clean(d, dg->hint) : NULL;
                json_key(&w, "message");
                json_string(&w, msg);
                json_key(&w, "hint");
                json_string(&w, hint);
                json_end_object(&w);
        }
        json_end_array(&w);
        *wp = w;
}
