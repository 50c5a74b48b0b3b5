/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_zpipe.c — the ordered parallel pipeline (image/zpipe.h): chunks come
 * back in submission order whatever order the workers finish them in, no
 * more than nslots are in flight, each worker uses only its own codec, a
 * retire error stops everything, and a codec that cannot be made undoes
 * the start.
 */
#include "harness.h"

#include "image/zpipe.h"

#include <stdatomic.h>

#define NCODECS 8

struct codec {
        atomic_int busy; /* > 1 would mean two workers share it */
        int id;
};

struct tctx {
        uint64_t slot_in[64], slot_out[64], noise[64];
        unsigned nslots;
        struct codec *codecs[NCODECS];
        atomic_int made, freed, overlaps;
        int fail_codec;     /* codec_new fails for this worker (-1: none) */
        uint64_t fail_at;   /* retire fails at this seq (UINT64_MAX: never) */
        uint64_t next_seq, retired_calls, max_in_flight;
        struct zpipe *zp;
        bool order_ok;
};

static int t_codec_new(void *ctx, unsigned worker, void **ret) {
        struct tctx *t = ctx;
        if ((int)worker == t->fail_codec)
                return -ENOMEM;
        struct codec *c = xcalloc(1, sizeof(*c));
        c->id = (int)worker;
        t->codecs[worker] = c;
        atomic_fetch_add(&t->made, 1);
        *ret = c;
        return 0;
}

static void t_codec_free(void *ctx, void *codec) {
        struct tctx *t = ctx;
        if (codec)
                atomic_fetch_add(&t->freed, 1);
        free(codec);
}

/* Uneven work, so that workers finish out of order. */
static void t_work(void *ctx, void *codec, unsigned slot) {
        struct tctx *t = ctx;
        struct codec *c = codec;
        if (atomic_fetch_add(&c->busy, 1) != 0)
                atomic_fetch_add(&t->overlaps, 1);
        uint64_t x = t->slot_in[slot];
        unsigned rounds = (unsigned)(x % 7) * 20000;
        for (unsigned i = 0; i < rounds; i++)
                x = x * 6364136223846793005ull + 1442695040888963407ull;
        t->noise[slot] = x;
        t->slot_out[slot] = t->slot_in[slot] * 3 + 1;
        atomic_fetch_sub(&c->busy, 1);
}

static int t_retire(void *ctx, unsigned slot, uint64_t seq) {
        struct tctx *t = ctx;
        t->retired_calls++;
        if (seq != t->next_seq || slot != seq % t->nslots || t->slot_out[slot] != seq * 3 + 1)
                t->order_ok = false;
        uint64_t in_flight = zpipe_submitted(t->zp) - seq;
        if (in_flight > t->max_in_flight)
                t->max_in_flight = in_flight;
        t->next_seq++;
        return seq == t->fail_at ? -EIO : 0;
}

static const struct zpipe_ops t_ops = {t_codec_new, t_codec_free, t_work, t_retire};

static void tctx_init(struct tctx *t, unsigned nslots) {
        *t = (struct tctx){.nslots = nslots, .fail_codec = -1, .fail_at = UINT64_MAX, .order_ok = true};
}

/* Submits n chunks (chunk k carries k); the result of the first failing
 * zpipe_get or of zpipe_drain. */
static int run_chunks(struct tctx *t, uint64_t n) {
        int r = 0;
        for (uint64_t k = 0; k < n; k++) {
                if ((r = zpipe_get(t->zp)) < 0)
                        return r;
                CHECK_INT(r, ==, k % t->nslots);
                t->slot_in[r] = k;
                zpipe_submit(t->zp);
        }
        return zpipe_drain(t->zp);
}

TEST(zpipe_retires_in_order_with_bounded_slots) {
        static const unsigned shapes[][2] = {{1, 1}, {1, 3}, {2, 4}, {3, 5}, {4, 8}};
        for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
                struct tctx t;
                tctx_init(&t, shapes[i][1]);
                CHECK_INT(zpipe_new(&t_ops, &t, shapes[i][0], shapes[i][1], &t.zp), ==, 0);
                CHECK_INT(atomic_load(&t.made), ==, shapes[i][0]);
                CHECK_INT(run_chunks(&t, 500), ==, 0);
                CHECK(t.order_ok);
                CHECK_INT(t.retired_calls, ==, 500);
                CHECK_INT(zpipe_retired(t.zp), ==, 500);
                CHECK_INT(t.max_in_flight, <=, shapes[i][1]);
                CHECK_INT(t.max_in_flight, >=, 1);
                CHECK_INT(atomic_load(&t.overlaps), ==, 0);
                zpipe_free(t.zp);
                CHECK_INT(atomic_load(&t.freed), ==, shapes[i][0]);
        }
}

TEST(zpipe_retire_error_stops_the_pipeline) {
        struct tctx t;
        tctx_init(&t, 4);
        t.fail_at = 10;
        CHECK_INT(zpipe_new(&t_ops, &t, 2, 4, &t.zp), ==, 0);
        CHECK_INT(run_chunks(&t, 100), ==, -EIO);
        CHECK_INT(t.retired_calls, ==, 11); /* 0..10, nothing after the error */
        CHECK_INT(zpipe_get(t.zp), ==, -EIO);
        CHECK_INT(zpipe_drain(t.zp), ==, -EIO);
        CHECK_INT(t.retired_calls, ==, 11);
        CHECK(t.order_ok);
        zpipe_free(t.zp); /* unretired chunks are finished by the workers, dropped */
        CHECK_INT(atomic_load(&t.freed), ==, 2);
}

TEST(zpipe_codec_failure_undoes_the_start) {
        struct tctx t;
        tctx_init(&t, 6);
        t.fail_codec = 2;
        struct zpipe *zp = (struct zpipe *)&t; /* must stay untouched */
        CHECK_INT(zpipe_new(&t_ops, &t, 3, 6, &zp), ==, -ENOMEM);
        CHECK(zp == (struct zpipe *)&t);
        CHECK_INT(atomic_load(&t.made), ==, 2);
        CHECK_INT(atomic_load(&t.freed), ==, 2);
}

TEST(zpipe_rejects_bad_arguments) {
        struct tctx t;
        tctx_init(&t, 4);
        struct zpipe *zp = NULL;
        struct zpipe_ops no_work = t_ops;
        no_work.work = NULL;
        CHECK_INT(zpipe_new(&t_ops, &t, 0, 4, &zp), ==, -EINVAL);
        CHECK_INT(zpipe_new(&t_ops, &t, 65, 100, &zp), ==, -EINVAL);
        CHECK_INT(zpipe_new(&t_ops, &t, 4, 3, &zp), ==, -EINVAL); /* fewer slots than workers */
        CHECK_INT(zpipe_new(&no_work, &t, 1, 1, &zp), ==, -EINVAL);
        CHECK(zp == NULL);
        CHECK_INT(atomic_load(&t.made), ==, 0);
        zpipe_free(NULL);
}

TEST(zpipe_empty_run_drains_at_once) {
        struct tctx t;
        tctx_init(&t, 2);
        CHECK_INT(zpipe_new(&t_ops, &t, 2, 2, &t.zp), ==, 0);
        CHECK_INT(zpipe_drain(t.zp), ==, 0);
        CHECK_INT(t.retired_calls, ==, 0);
        zpipe_free(t.zp);
}
