/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zpipe.c — the ordered parallel pipeline (zpipe.h).
 *
 * Three counters under one mutex describe the ring: chunks [retired,
 * taken) are with workers or done, [taken, submitted) wait for a worker,
 * and submitted - retired <= nslots. Slot k % nslots carries chunk k. A
 * slot's state moves FILLING (the main thread's) -> READY (submitted) ->
 * DONE (a worker finished it) -> FILLING (retired). Workers take chunks in
 * submission order but may finish them in any order; the main thread
 * waits for the oldest one only, which is what keeps the output ordered
 * and the memory fixed. One condition variable wakes workers (work), one
 * the main thread (done).
 *
 * This was qcow2.c's private pipeline (handing over 4 clusters per slot
 * cut its wall time by 8% against 1); it is shared so that every writer
 * that compresses independent chunks (qcow2 clusters, VMDK grains, gzip
 * blocks) runs the same, tested, code.
 */
#include "image/zpipe.h"

#include "base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

enum { SLOT_FILLING, SLOT_READY, SLOT_DONE };

struct worker {
        struct zpipe *zp;
        void *codec;
        pthread_t tid;
        bool started;
};

struct zpipe {
        const struct zpipe_ops *ops;
        void *ctx;
        pthread_mutex_t mu;
        pthread_cond_t work, done;
        unsigned char *state; /* per slot, under mu */
        unsigned nslots;
        uint64_t submitted, taken, retired;
        bool stop;
        int error; /* the first retire error; sticky */
        struct worker *workers;
        unsigned nworkers;
};

static void *worker_main(void *arg) {
        struct worker *w = arg;
        struct zpipe *zp = w->zp;
        pthread_mutex_lock(&zp->mu);
        for (;;) {
                while (!zp->stop && zp->taken == zp->submitted)
                        pthread_cond_wait(&zp->work, &zp->mu);
                if (zp->taken == zp->submitted)
                        break; /* stopping, nothing left */
                unsigned slot = (unsigned)(zp->taken++ % zp->nslots);
                pthread_mutex_unlock(&zp->mu);

                zp->ops->work(zp->ctx, w->codec, slot);

                pthread_mutex_lock(&zp->mu);
                zp->state[slot] = SLOT_DONE;
                pthread_cond_signal(&zp->done);
        }
        pthread_mutex_unlock(&zp->mu);
        return NULL;
}

void zpipe_free(struct zpipe *zp) {
        if (!zp)
                return;
        pthread_mutex_lock(&zp->mu);
        zp->stop = true;
        pthread_cond_broadcast(&zp->work);
        pthread_mutex_unlock(&zp->mu);
        for (unsigned i = 0; i < zp->nworkers; i++) {
                if (zp->workers[i].started)
                        pthread_join(zp->workers[i].tid, NULL);
                if (zp->ops->codec_free)
                        zp->ops->codec_free(zp->ctx, zp->workers[i].codec);
        }
        free(zp->workers);
        free(zp->state);
        pthread_cond_destroy(&zp->work);
        pthread_cond_destroy(&zp->done);
        pthread_mutex_destroy(&zp->mu);
        free(zp);
}

int zpipe_new(const struct zpipe_ops *ops, void *ctx, unsigned threads, unsigned nslots,
              struct zpipe **ret) {
        if (!ops || !ops->work || !ops->retire || !ret || threads < 1 || threads > 64 ||
            nslots < threads || nslots > 4096)
                return -EINVAL;
        struct zpipe *zp = xcalloc(1, sizeof(*zp));
        zp->ops = ops;
        zp->ctx = ctx;
        zp->nslots = nslots;
        zp->nworkers = threads;
        pthread_mutex_init(&zp->mu, NULL);
        pthread_cond_init(&zp->work, NULL);
        pthread_cond_init(&zp->done, NULL);
        zp->state = xcalloc(nslots, sizeof(*zp->state));
        zp->workers = xcalloc(threads, sizeof(*zp->workers));
        for (unsigned i = 0; i < threads; i++) {
                struct worker *w = &zp->workers[i];
                w->zp = zp;
                int r = ops->codec_new ? ops->codec_new(ctx, i, &w->codec) : 0;
                if (r >= 0)
                        r = -pthread_create(&w->tid, NULL, worker_main, w);
                if (r < 0) {
                        zpipe_free(zp);
                        return r;
                }
                w->started = true;
        }
        *ret = zp;
        return 0;
}

/* Waits for the oldest chunk and hands it to ops->retire. */
static int retire_one(struct zpipe *zp) {
        unsigned slot = (unsigned)(zp->retired % zp->nslots);
        pthread_mutex_lock(&zp->mu);
        while (zp->state[slot] != SLOT_DONE)
                pthread_cond_wait(&zp->done, &zp->mu);
        zp->state[slot] = SLOT_FILLING; /* the main thread's again */
        pthread_mutex_unlock(&zp->mu);
        int r = zp->ops->retire(zp->ctx, slot, zp->retired++);
        if (r < 0)
                zp->error = r;
        return r;
}

int zpipe_get(struct zpipe *zp) {
        if (zp->error < 0)
                return zp->error;
        if (zp->submitted - zp->retired == zp->nslots) {
                int r = retire_one(zp);
                if (r < 0)
                        return r;
        }
        return (int)(zp->submitted % zp->nslots);
}

void zpipe_submit(struct zpipe *zp) {
        pthread_mutex_lock(&zp->mu);
        zp->state[zp->submitted % zp->nslots] = SLOT_READY;
        zp->submitted++;
        pthread_cond_signal(&zp->work);
        pthread_mutex_unlock(&zp->mu);
}

int zpipe_drain(struct zpipe *zp) {
        while (zp->error >= 0 && zp->retired < zp->submitted) {
                int r = retire_one(zp);
                if (r < 0)
                        return r;
        }
        return zp->error;
}

uint64_t zpipe_submitted(const struct zpipe *zp) { return zp->submitted; }
uint64_t zpipe_retired(const struct zpipe *zp) { return zp->retired; }
