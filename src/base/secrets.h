/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secrets.h — the one set of secret values kiln masks in what it shows:
 * step logs, HTTP logs, publishers' messages, CLI output.
 *
 * A struct secrets holds copies of values (sensitive spec variables, keys,
 * tokens, passwords a publisher obtained) and replaces every occurrence of
 * one of them by "<sensitive>". One set is meant to serve a whole run: the
 * engine that knows a secret adds it, every part that prints masks with
 * the same set. Hence:
 *   - it is reference-counted (secrets_new gives one reference; each sharer
 *     takes one with secrets_ref and drops it with secrets_unref; the last
 *     unref wipes the copies and frees them);
 *   - every function is thread-safe (one mutex per set): publishers add
 *     from their upload threads while the CLI masks a message.
 *
 * Masking rule (the same for text and streams): scanning left to right, at
 * each position the first value (in the order added) that matches there is
 * replaced and scanning resumes after it; values shorter than the set's
 * min_len, and empty ones, are not kept. O(text × values) in the worst case.
 *
 * Streams (a step's output read from a pipe in pieces of any size) are
 * masked exactly as the whole text would be: a value split across pieces,
 * or inside a line of any length (there is no line buffer), is still
 * masked; only a tail that may begin a value is held back, at most the
 * longest value's length - 1 bytes, until the next piece or the flush.
 *
 * Nothing here fails: allocation failure is fatal (util.h).
 */
#pragma once

#include "base/strbuf.h"

/* The min_len of sets that mask what other programs print (server
 * messages, HTTP logs): a shorter value would mask unrelated text. */
#define SECRETS_MIN_LEN 4
#define SECRETS_PLACEHOLDER "<sensitive>"

struct secrets;

/* A new, empty set keeping values of at least min_len bytes (0 or 1: every
 * non-empty value). The caller owns one reference. */
struct secrets *secrets_new(size_t min_len);
/* Takes one more reference to s (NULL is fine); returns s. */
struct secrets *secrets_ref(struct secrets *s);
/* Drops a reference (NULL is fine); the last one wipes and frees. NULL. */
struct secrets *secrets_unref(struct secrets *s);
DEFINE_POINTER_CLEANUP(struct secrets, secrets_unref)
#define _cleanup_secrets_ _cleanup_(secrets_unrefp)

/* Keeps a copy of value (NUL-terminated; NULL, too short or already kept:
 * nothing happens). Masking with s after this masks value. */
void secrets_add(struct secrets *s, const char *value);
/* Number of values kept. */
size_t secrets_count(struct secrets *s);

/* Appends text[0..n) to out with every value replaced. */
void secrets_mask_add(struct secrets *s, struct strbuf *out, const char *text, size_t n);
/* text (NULL: "") with every value replaced; owned by the caller. */
char *secrets_mask(struct secrets *s, const char *text);

/* Masks a stream fed in pieces. Holds a reference to the set while alive,
 * so values added meanwhile are masked from the next piece on. */
struct secrets_stream {
        struct secrets *set;
        struct strbuf held; /* undecided tail of what was fed */
};

void secrets_stream_init(struct secrets_stream *m, struct secrets *s);
/* Appends to out the masked text of data[0..n) that is decided. */
void secrets_stream_feed(struct secrets_stream *m, struct strbuf *out, const char *data, size_t n);
/* End of the stream: appends the rest, masked. The stream can be fed again. */
void secrets_stream_flush(struct secrets_stream *m, struct strbuf *out);
/* Wipes the held tail (it may be part of a secret), drops the reference. */
void secrets_stream_done(struct secrets_stream *m);

/* The same rule over a plain array of borrowed values, for callers that
 * hold one (values[0..n); empty ones are skipped). Prefer a struct secrets. */
void strbuf_add_masked(struct strbuf *sb, const char *text, size_t n, const char *const *secrets,
                       size_t nsecrets);

/* A stream masker over a borrowed array that must outlive it (see
 * secrets_stream, which is what new code uses). */
struct strbuf_masker {
        const char *const *secrets;
        size_t nsecrets;
        struct strbuf held;
};

void strbuf_masker_init(struct strbuf_masker *m, const char *const *secrets, size_t nsecrets);
void strbuf_masker_feed(struct strbuf_masker *m, struct strbuf *out, const char *data, size_t n);
void strbuf_masker_flush(struct strbuf_masker *m, struct strbuf *out);
void strbuf_masker_done(struct strbuf_masker *m);
