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
/* Appends text[0..n) with every occurrence of one of secrets[0..nsecrets)
 * replaced by "<sensitive>" (empty secrets are ignored; at each position the
 * first secret that matches wins). O(n * nsecrets). */
void strbuf_add_masked(struct strbuf *sb, const char *text, size_t n, const char *const *secrets,
                       size_t nsecrets);

/* Masks a stream that arrives in pieces of any size (a step's output read
 * from a pipe) exactly as strbuf_add_masked would mask the whole stream at
 * once: a secret split across two pieces, or inside a line of any length,
 * is still masked. Only a tail that is a proper prefix of some secret is
 * held back (at most the longest secret's length - 1 bytes) until the next
 * piece or the end decides it; everything else is written out at once.
 * secrets must outlive the masker. Costs O(n * total secret length) per
 * piece in the worst case, like strbuf_add_masked; never fails. */
struct strbuf_masker {
        const char *const *secrets;
        size_t nsecrets;
        struct strbuf held; /* undecided tail of what was fed */
};

void strbuf_masker_init(struct strbuf_masker *m, const char *const *secrets, size_t nsecrets);
/* Appends to out the masked text of data[0..n) that is decided. */
void strbuf_masker_feed(struct strbuf_masker *m, struct strbuf *out, const char *data, size_t n);
/* End of the stream: appends the rest, masked. The masker can be fed again. */
void strbuf_masker_flush(struct strbuf_masker *m, struct strbuf *out);
/* Releases the held tail (wiped first: it may be part of a secret). */
void strbuf_masker_done(struct strbuf_masker *m);

static inline void strbuf_freep(struct strbuf *sb) { strbuf_free(sb); }
#define _cleanup_strbuf_ _cleanup_(strbuf_freep)
