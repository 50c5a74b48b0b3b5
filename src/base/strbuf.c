/* SPDX-License-Identifier: Apache-2.0 */
#include "base/strbuf.h"

#include <stdint.h>

void strbuf_free(struct strbuf *sb) {
        free(sb->buf);
        sb->buf = NULL;
        sb->len = sb->cap = 0;
}

const char *strbuf_str(const struct strbuf *sb) { return sb->buf ? sb->buf : ""; }

char *strbuf_detach(struct strbuf *sb) {
        char *r = sb->buf ? sb->buf : xstrdup("");
        sb->buf = NULL;
        sb->len = sb->cap = 0;
        return r;
}

void strbuf_grow(struct strbuf *sb, size_t extra) {
        if (extra > SIZE_MAX - sb->len - 1)
                die_oom();
        size_t need = sb->len + extra + 1;
        if (need <= sb->cap)
                return;
        size_t cap = sb->cap ? sb->cap : 64;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        sb->buf = xreallocarray(sb->buf, cap, 1);
        sb->cap = cap;
}

void strbuf_add(struct strbuf *sb, const void *data, size_t n) {
        strbuf_grow(sb, n);
        if (n)
                memcpy(sb->buf + sb->len, data, n);
        sb->len += n;
        sb->buf[sb->len] = 0;
}

void strbuf_adds(struct strbuf *sb, const char *s) { strbuf_add(sb, s, strlen(s)); }

void strbuf_addc(struct strbuf *sb, char c) { strbuf_add(sb, &c, 1); }

void strbuf_addch_n(struct strbuf *sb, char c, size_t n) {
        strbuf_grow(sb, n);
        memset(sb->buf + sb->len, c, n);
        sb->len += n;
        sb->buf[sb->len] = 0;
}

void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap) {
        va_list cp;
        va_copy(cp, ap);
        int n = vsnprintf(NULL, 0, fmt, cp);
        va_end(cp);
        if (n < 0)
                return;
        strbuf_grow(sb, (size_t)n);
        vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
        sb->len += (size_t)n;
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        strbuf_vaddf(sb, fmt, ap);
        va_end(ap);
}

void strbuf_masker_init(struct strbuf_masker *m, const char *const *secrets, size_t nsecrets) {
        *m = (struct strbuf_masker){.secrets = secrets, .nsecrets = nsecrets, .held = STRBUF_INIT};
}

/* Masks text[0..n) into out up to the first position whose outcome depends
 * on bytes not seen yet (the rest of text is a proper prefix of a secret
 * that the first-match rule would try there); returns that position, or n.
 * With final set, every position is decided (as strbuf_add_masked does). */
static size_t masker_run(const struct strbuf_masker *m, struct strbuf *out, const char *text,
                         size_t n, bool final) {
        size_t i = 0;
        while (i < n) {
                size_t hit = 0, rest = n - i;
                bool undecided = false;
                for (size_t k = 0; k < m->nsecrets && !hit && !undecided; k++) {
                        size_t l = strlen(m->secrets[k]);
                        if (!l)
                                continue;
                        if (l <= rest) {
                                if (memcmp(text + i, m->secrets[k], l) == 0)
                                        hit = l;
                        } else if (!final && memcmp(text + i, m->secrets[k], rest) == 0) {
                                undecided = true;
                        }
                }
                if (undecided)
                        return i;
                if (hit) {
                        strbuf_adds(out, "<sensitive>");
                        i += hit;
                } else {
                        /* copy up to the next byte that starts some secret */
                        size_t j = i + 1;
                        while (j < n) {
                                bool starts = false;
                                for (size_t k = 0; k < m->nsecrets && !starts; k++)
                                        starts = m->secrets[k][0] && m->secrets[k][0] == text[j];
                                if (starts)
                                        break;
                                j++;
                        }
                        strbuf_add(out, text + i, j - i);
                        i = j;
                }
        }
        return n;
}

static void held_wipe(struct strbuf *held) {
        if (held->buf)
                explicit_bzero(held->buf, held->cap);
        strbuf_reset(held);
}

void strbuf_masker_feed(struct strbuf_masker *m, struct strbuf *out, const char *data, size_t n) {
        if (!n)
                return;
        if (!m->held.len) {
                size_t done = masker_run(m, out, data, n, false);
                strbuf_add(&m->held, data + done, n - done);
                return;
        }
        strbuf_add(&m->held, data, n);
        size_t done = masker_run(m, out, m->held.buf, m->held.len, false);
        size_t left = m->held.len - done;
        memmove(m->held.buf, m->held.buf + done, left);
        explicit_bzero(m->held.buf + left, m->held.len - left);
        m->held.len = left;
        m->held.buf[left] = 0;
}

void strbuf_masker_flush(struct strbuf_masker *m, struct strbuf *out) {
        if (m->held.len)
                masker_run(m, out, m->held.buf, m->held.len, true);
        held_wipe(&m->held);
}

void strbuf_masker_done(struct strbuf_masker *m) {
        held_wipe(&m->held);
        strbuf_free(&m->held);
}

void strbuf_add_masked(struct strbuf *sb, const char *text, size_t n, const char *const *secrets,
                       size_t nsecrets) {
        struct strbuf_masker m = {.secrets = secrets, .nsecrets = nsecrets};
        masker_run(&m, sb, text, n, true);
}
