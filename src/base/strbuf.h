/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strbuf.h — a growable, always NUL-terminated byte buffer.
 *
 * An initialised strbuf (STRBUF_INIT or strbuf_init) owns its storage;
 * strbuf_free releases it, strbuf_detach hands it to the caller ("you now
 * own the storage") and leaves the strbuf empty. Appending never fails
 * (allocation failure is fatal, see util.h); amortised O(1) per byte.
 */
#pragma once

#include "base/util.h"

struct strbuf {
        char *buf; /* always NUL-terminated once anything was added */
        size_t len;
        size_t cap;
};

#define STRBUF_INIT {NULL, 0, 0}

void strbuf_free(struct strbuf *sb);
static inline void strbuf_reset(struct strbuf *sb) {
        sb->len = 0;
        if (sb->buf)
                sb->buf[0] = 0;
}
/* Returns the contents (never NULL: "" when empty); the strbuf stays valid. */
const char *strbuf_str(const struct strbuf *sb);
/* Returns the owned buffer (never NULL) and resets sb to empty. */
char *strbuf_detach(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t n);
void strbuf_adds(struct strbuf *sb, const char *s);
void strbuf_addc(struct strbuf *sb, char c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) _printf_(2, 3);
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap) _printf_(2, 0);
/* Appends c n times. */
void strbuf_addch_n(struct strbuf *sb, char c, size_t n);
/* Appends s (NULL: nothing) escaped for XML text and attribute values:
 * & < > " ' as entities, tab and line ends as character references, other
 * control characters (which XML 1.0 cannot hold) as '?'. */
void strbuf_add_xml(struct strbuf *sb, const char *s);

static inline void strbuf_freep(struct strbuf *sb) { strbuf_free(sb); }
#define _cleanup_strbuf_ _cleanup_(strbuf_freep)

/* Masking secrets in text and streams lives in base/secrets.h (which needs
 * struct strbuf, defined above); included here for the callers of
 * strbuf_add_masked and strbuf_masker that include only this header. */
#include "base/secrets.h"
