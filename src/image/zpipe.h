/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zpipe.h — an ordered parallel work pipeline for the format writers:
 * chunks are handed over in order, worked on (compressed) by N worker
 * threads each with its own codec, and handed back strictly in the order
 * they were submitted, with a fixed number of chunks in flight.
 *
 * zpipe knows nothing about buffers or codecs. The caller keeps an array of
 * `nslots` slots of its own (input pointers, output buffers, results) and
 * zpipe hands out slot numbers: the k-th submitted chunk is in slot
 * k % nslots. The main thread is the only one that fills and retires
 * slots; a worker sees a slot only between its submission and its
 * completion, so slots need no locking of their own.
 *
 *     struct zpipe *zp;
 *     r = zpipe_new(&ops, ctx, threads, 2 * threads, &zp);
 *     while (more input) {
 *             int k = zpipe_get(zp);        // retires the oldest when all are busy
 *             if (k < 0) break;             // a retire callback failed
 *             fill(slots[k]);
 *             zpipe_submit(zp);
 *     }
 *     r = zpipe_drain(zp);                  // retires the rest, in order
 *     zpipe_free(zp);                       // joins the workers
 *
 * Memory: what the caller puts in its slots; zpipe itself holds a state
 * byte per slot and the workers' codecs (ops->codec_new). Workers never
 * stop half-way: zpipe_free lets them finish every submitted chunk before
 * joining them, so a caller may unmap what slots point into right after.
 */
#pragma once

#include <stdint.h>

struct zpipe_ops {
        /* Makes worker i's codec (called on the main thread by zpipe_new,
         * before the worker starts). 0 or -errno; NULL: workers have none. */
        int (*codec_new)(void *ctx, unsigned worker, void **ret_codec);
        /* Frees a codec made by codec_new (after its worker is joined).
         * NULL codecs are passed too (a codec_new that failed). */
        void (*codec_free)(void *ctx, void *codec);
        /* Works on slot `slot` on a worker thread, with that worker's codec.
         * Cannot fail as far as zpipe knows: a failure goes into the slot,
         * for retire to report. */
        void (*work)(void *ctx, void *codec, unsigned slot);
        /* Takes slot `slot`, the seq-th chunk submitted (0, 1, ...), back on
         * the main thread, in submission order. 0 or -errno: an error stops
         * the pipeline (zpipe_get and zpipe_drain return it). */
        int (*retire)(void *ctx, unsigned slot, uint64_t seq);
};

struct zpipe;

/* Starts `threads` workers (1..64) over `nslots` slots (threads..4096).
 * ops and ctx are borrowed until zpipe_free. Returns 0, -EINVAL for out of
 * range counts or missing callbacks, or codec_new's / pthread_create's
 * error (everything started is undone). */
int zpipe_new(const struct zpipe_ops *ops, void *ctx, unsigned threads, unsigned nslots,
              struct zpipe **ret);
/* The slot to fill next: waits for and retires the oldest chunk when every
 * slot is in flight. Returns the slot number, or the error of a retire
 * callback (then, and after any earlier error, nothing more is retired). */
int zpipe_get(struct zpipe *zp);
/* Hands the slot returned by the last zpipe_get to the workers. */
void zpipe_submit(struct zpipe *zp);
/* Retires every chunk in flight, in order. 0 or the first retire error. */
int zpipe_drain(struct zpipe *zp);
/* Chunks submitted / retired so far. */
uint64_t zpipe_submitted(const struct zpipe *zp);
uint64_t zpipe_retired(const struct zpipe *zp);
/* Lets the workers finish what was submitted, joins them, frees their
 * codecs and the pipeline. Unretired chunks are dropped. NULL: no-op. */
void zpipe_free(struct zpipe *zp);
