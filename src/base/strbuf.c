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

void strbuf_add_xml(struct strbuf *out, const char *s) {
        for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
                switch (*p) {
                case '&': strbuf_adds(out, "&amp;"); break;
                case '<': strbuf_adds(out, "&lt;"); break;
                case '>': strbuf_adds(out, "&gt;"); break;
                case '"': strbuf_adds(out, "&quot;"); break;
                case '\'': strbuf_adds(out, "&apos;"); break;
                case '\t': strbuf_adds(out, "&#9;"); break;
                case '\n': strbuf_adds(out, "&#10;"); break;
                case '\r': strbuf_adds(out, "&#13;"); break;
                default:
                        /* XML 1.0 cannot hold other control characters, even escaped. */
                        strbuf_addc(out, *p < 0x20 || *p == 0x7f ? '?' : (char)*p);
                }
        }
}
