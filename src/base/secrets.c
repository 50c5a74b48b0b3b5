/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One masking engine (mask_run) serves whole texts, streams and the
 * array-level API; a set passes its values to it under its lock, so a value
 * added by another thread is never read half-copied.
 */
#include "base/secrets.h"

#include "base/strv.h"

#include <pthread.h>

struct secrets {
        pthread_mutex_t lock;
        unsigned refs;      /* under lock */
        size_t min_len;
        struct strv values; /* owned copies, wiped when freed */
};

/* Masks text[0..n) into out up to the first position whose outcome depends
 * on bytes not seen yet (the rest of text is a proper prefix of a value
 * that the first-match rule would try there); returns that position, or n.
 * With final set, every position is decided. */
static size_t mask_run(const char *const *secrets, size_t ns, struct strbuf *out, const char *text,
                       size_t n, bool final) {
        size_t i = 0;
        while (i < n) {
                size_t hit = 0, rest = n - i;
                bool undecided = false;
                for (size_t k = 0; k < ns && !hit && !undecided; k++) {
                        size_t l = strlen(secrets[k]);
                        if (!l)
                                continue;
                        if (l <= rest) {
                                if (memcmp(text + i, secrets[k], l) == 0)
                                        hit = l;
                        } else if (!final && memcmp(text + i, secrets[k], rest) == 0) {
                                undecided = true;
                        }
                }
                if (undecided)
                        return i;
                if (hit) {
                        strbuf_adds(out, SECRETS_PLACEHOLDER);
                        i += hit;
                } else {
                        /* copy up to the next byte that starts some value */
                        size_t j = i + 1;
                        while (j < n) {
                                bool starts = false;
                                for (size_t k = 0; k < ns && !starts; k++)
                                        starts = secrets[k][0] && secrets[k][0] == text[j];
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

static void held_feed(const char *const *secrets, size_t ns, struct strbuf *held,
                      struct strbuf *out, const char *data, size_t n) {
        if (!n)
                return;
        if (!held->len) {
                size_t done = mask_run(secrets, ns, out, data, n, false);
                strbuf_add(held, data + done, n - done);
                return;
        }
        strbuf_add(held, data, n);
        size_t done = mask_run(secrets, ns, out, held->buf, held->len, false);
        size_t left = held->len - done;
        memmove(held->buf, held->buf + done, left);
        explicit_bzero(held->buf + left, held->len - left);
        held->len = left;
        held->buf[left] = 0;
}

static void held_flush(const char *const *secrets, size_t ns, struct strbuf *held,
                       struct strbuf *out) {
        if (held->len)
                mask_run(secrets, ns, out, held->buf, held->len, true);
        held_wipe(held);
}

/* ---- the set ---- */

struct secrets *secrets_new(size_t min_len) {
        struct secrets *s = xcalloc(1, sizeof(*s));
        pthread_mutex_init(&s->lock, NULL);
        s->refs = 1;
        s->min_len = min_len ? min_len : 1;
        return s;
}

struct secrets *secrets_ref(struct secrets *s) {
        if (s) {
                pthread_mutex_lock(&s->lock);
                s->refs++;
                pthread_mutex_unlock(&s->lock);
        }
        return s;
}

struct secrets *secrets_unref(struct secrets *s) {
        if (!s)
                return NULL;
        pthread_mutex_lock(&s->lock);
        bool last = --s->refs == 0;
        pthread_mutex_unlock(&s->lock);
        if (!last)
                return NULL;
        for (size_t i = 0; i < s->values.n; i++)
                explicit_bzero(s->values.v[i], strlen(s->values.v[i]));
        strv_free(&s->values);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

void secrets_add(struct secrets *s, const char *value) {
        if (!value || strlen(value) < s->min_len)
                return;
        pthread_mutex_lock(&s->lock);
        strv_add_unique(&s->values, value);
        pthread_mutex_unlock(&s->lock);
}

size_t secrets_count(struct secrets *s) {
        pthread_mutex_lock(&s->lock);
        size_t n = s->values.n;
        pthread_mutex_unlock(&s->lock);
        return n;
}

void secrets_mask_add(struct secrets *s, struct strbuf *out, const char *text, size_t n) {
        pthread_mutex_lock(&s->lock);
        mask_run((const char *const *)s->values.v, s->values.n, out, text, n, true);
        pthread_mutex_unlock(&s->lock);
}

char *secrets_mask(struct secrets *s, const char *text) {
        struct strbuf sb = STRBUF_INIT;
        text = text ? text : "";
        secrets_mask_add(s, &sb, text, strlen(text));
        return strbuf_detach(&sb);
}

void secrets_stream_init(struct secrets_stream *m, struct secrets *s) {
        *m = (struct secrets_stream){.set = secrets_ref(s), .held = STRBUF_INIT};
}

void secrets_stream_feed(struct secrets_stream *m, struct strbuf *out, const char *data, size_t n) {
        pthread_mutex_lock(&m->set->lock);
        held_feed((const char *const *)m->set->values.v, m->set->values.n, &m->held, out, data, n);
        pthread_mutex_unlock(&m->set->lock);
}

void secrets_stream_flush(struct secrets_stream *m, struct strbuf *out) {
        pthread_mutex_lock(&m->set->lock);
        held_flush((const char *const *)m->set->values.v, m->set->values.n, &m->held, out);
        pthread_mutex_unlock(&m->set->lock);
}

void secrets_stream_done(struct secrets_stream *m) {
        held_wipe(&m->held);
        strbuf_free(&m->held);
        m->set = secrets_unref(m->set);
}

/* ---- over a borrowed array ---- */

void strbuf_add_masked(struct strbuf *sb, const char *text, size_t n, const char *const *secrets,
                       size_t nsecrets) {
        mask_run(secrets, nsecrets, sb, text, n, true);
}

void strbuf_masker_init(struct strbuf_masker *m, const char *const *secrets, size_t nsecrets) {
        *m = (struct strbuf_masker){.secrets = secrets, .nsecrets = nsecrets, .held = STRBUF_INIT};
}

void strbuf_masker_feed(struct strbuf_masker *m, struct strbuf *out, const char *data, size_t n) {
        held_feed(m->secrets, m->nsecrets, &m->held, out, data, n);
}

void strbuf_masker_flush(struct strbuf_masker *m, struct strbuf *out) {
        held_flush(m->secrets, m->nsecrets, &m->held, out);
}

void strbuf_masker_done(struct strbuf_masker *m) {
        held_wipe(&m->held);
        strbuf_free(&m->held);
}
