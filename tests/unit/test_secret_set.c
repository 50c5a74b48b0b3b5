/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The secrets set (base/secrets.h): what it keeps, that text and streams
 * are masked alike, that it is shared by reference and safe to add to from
 * one thread while another masks.
 */
#include "harness.h"

#include "base/secrets.h"

#include <pthread.h>

TEST(secrets_keep_copies_above_min_len_once) {
        _cleanup_secrets_ struct secrets *s = secrets_new(SECRETS_MIN_LEN);
        char value[] = "hunter22";
        secrets_add(s, value);
        secrets_add(s, "hunter22"); /* already kept */
        secrets_add(s, "abc");      /* too short for this set */
        secrets_add(s, NULL);
        secrets_add(s, "");
        CHECK_INT(secrets_count(s), ==, 1);
        value[0] = 'X'; /* a copy was kept */
        _cleanup_free_ char *m = secrets_mask(s, "pw=hunter22 abc X");
        CHECK_STREQ(m, "pw=<sensitive> abc X");
        _cleanup_free_ char *empty = secrets_mask(s, NULL);
        CHECK_STREQ(empty, "");

        _cleanup_secrets_ struct secrets *all = secrets_new(1);
        secrets_add(all, "ab");
        _cleanup_free_ char *m2 = secrets_mask(all, "xaby");
        CHECK_STREQ(m2, "x<sensitive>y");
}

TEST(secrets_first_value_added_wins_at_each_position) {
        _cleanup_secrets_ struct secrets *s = secrets_new(1);
        secrets_add(s, "abc");
        secrets_add(s, "abcdef");
        struct strbuf out = STRBUF_INIT;
        strbuf_adds(&out, "> ");
        secrets_mask_add(s, &out, "abcdef!", 7);
        CHECK_STREQ(strbuf_str(&out), "> <sensitive>def!"); /* as strbuf_add_masked */
        strbuf_reset(&out);
        static const char *const arr[] = {"abc", "abcdef"};
        strbuf_add_masked(&out, "abcdef!", 7, arr, 2);
        CHECK_STREQ(strbuf_str(&out), "<sensitive>def!");
        strbuf_free(&out);
}

TEST(secrets_stream_matches_whole_text_and_sees_new_values) {
        _cleanup_secrets_ struct secrets *s = secrets_new(SECRETS_MIN_LEN);
        secrets_add(s, "token-1234567");
        /* a 1 MiB line, the value across every 64 KiB edge and at the end */
        size_t n = 1u << 20;
        char *text = xmalloc(n + 1);
        memset(text, 'y', n);
        for (size_t at = 65536 - 6; at + 13 < n; at += 65536)
                memcpy(text + at, "token-1234567", 13);
        memcpy(text + n - 13, "token-1234567", 13);
        text[n] = 0;
        _cleanup_free_ char *want = secrets_mask(s, text);
        CHECK(strstr(want, "token") == NULL);
        struct secrets_stream m;
        secrets_stream_init(&m, s);
        struct strbuf out = STRBUF_INIT;
        for (size_t i = 0; i < n; i += 4093)
                secrets_stream_feed(&m, &out, text + i, n - i < 4093 ? n - i : 4093);
        secrets_stream_flush(&m, &out);
        CHECK_STREQ(strbuf_str(&out), want);
        strbuf_reset(&out);
        /* a value added while the stream is open is masked from then on */
        secrets_stream_feed(&m, &out, "a: late-secret\n", 15);
        secrets_add(s, "late-secret");
        secrets_stream_feed(&m, &out, "b: late-secret\n", 15);
        secrets_stream_flush(&m, &out);
        CHECK_STREQ(strbuf_str(&out), "a: late-secret\nb: <sensitive>\n");
        secrets_stream_done(&m);
        CHECK(m.set == NULL);
        strbuf_free(&out);
        free(text);
}

TEST(secrets_are_shared_by_reference) {
        struct secrets *s = secrets_new(SECRETS_MIN_LEN);
        struct secrets *t = secrets_ref(s);
        CHECK(t == s);
        CHECK(secrets_unref(s) == NULL); /* one reference left */
        secrets_add(t, "still-here");
        _cleanup_free_ char *m = secrets_mask(t, "still-here");
        CHECK_STREQ(m, "<sensitive>");
        /* a stream keeps the set alive after its owner let go */
        struct secrets_stream st;
        secrets_stream_init(&st, t);
        CHECK(secrets_unref(t) == NULL);
        struct strbuf out = STRBUF_INIT;
        secrets_stream_feed(&st, &out, "x still-here", 12);
        secrets_stream_flush(&st, &out);
        CHECK_STREQ(strbuf_str(&out), "x <sensitive>");
        secrets_stream_done(&st); /* the last reference: freed (ASan checks) */
        strbuf_free(&out);
        CHECK(secrets_ref(NULL) == NULL);
        CHECK(secrets_unref(NULL) == NULL);
}

struct adder {
        struct secrets *s;
        int id;
};

static void *add_many(void *arg) {
        const struct adder *a = arg;
        for (int i = 0; i < 200; i++) {
                char v[32];
                snprintf(v, sizeof v, "secret-%d-%03d", a->id, i);
                secrets_add(a->s, v);
        }
        return NULL;
}

TEST(secrets_add_and_mask_from_several_threads) {
        _cleanup_secrets_ struct secrets *s = secrets_new(SECRETS_MIN_LEN);
        pthread_t th[4];
        struct adder args[4];
        for (int i = 0; i < 4; i++) {
                args[i] = (struct adder){s, i};
                CHECK_INT(pthread_create(&th[i], NULL, add_many, &args[i]), ==, 0);
        }
        for (int k = 0; k < 200; k++) { /* mask while they add */
                _cleanup_free_ char *m = secrets_mask(s, "x secret-1-005 y");
                CHECK(strstr(m, "x ") == m);
        }
        for (int i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        CHECK_INT(secrets_count(s), ==, 800);
        _cleanup_free_ char *m = secrets_mask(s, "x secret-3-199 y");
        CHECK_STREQ(m, "x <sensitive> y");
}
