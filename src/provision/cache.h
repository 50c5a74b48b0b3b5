/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache.h — the content-addressed step cache.
 *
 * Each entry is the result of one build step (or a source bootstrap): an
 * overlay upper layer (a directory tree) plus metadata, stored under the
 * step's key — the SHA-256 of everything that can change its result: the
 * parent entry's key, the architecture, the step's kind and evaluated
 * parameters, and the contents of every host file the step reads. An
 * unchanged step therefore has an unchanged key and is never run twice.
 *
 * Storage: overlay layers. A step runs on an overlay whose lower layers are
 * its ancestors' entries and whose upper layer becomes its own entry, so
 * storing a result is a rename (no copy, no archive) and a tree of N steps
 * costs the sum of its diffs. Measured against alternatives in
 * bench/cache-storage.sh (see the comment in cache.c for the numbers).
 *
 * Layout under the cache directory (default $XDG_CACHE_HOME/kiln or
 * ~/.cache/kiln, or --cache-dir / KILN_CACHE_DIR):
 *
 *   entries/<key>/tree/        the layer
 *   entries/<key>/meta.json    what made it: parent key, inputs (with
 *                              sensitive values replaced by their hash),
 *                              size, creation and last-use times
 *   tmp/<random>/              entries being written; never read
 *   locks/<key>.lock           flock: one writer per key at a time
 *   index/<build>/<step>       the key last used for this build's step n,
 *                              so `build --explain` can say what changed
 *   packages/                  the package cache (pkgcache.h): .debs shared
 *                              by every build, pruned with the entries
 *
 * Modes: entries/ and every tmp/<random>/ are 0700 — a layer may hold a
 * file whose content is secret, whatever mode the image gives it — except
 * the tmp/ dir of a bootstrap that asked for 0755 (cache_txn_share).
 *
 * Atomicity: an entry is written in tmp/ and renamed into entries/ only once
 * complete (after fsync of its metadata); a crash leaves only a tmp/ dir,
 * which cache_open removes when no one holds its lock. Concurrency: writers
 * take locks/<key>.lock, so two builds that need the same step build it once
 * and the second finds it done.
 */
#pragma once

#include "base/strbuf.h"

#include <stdint.h>
#include <time.h>

#define CACHE_KEY_LEN 64 /* hex SHA-256 */

struct cache;

/* Opens (creating) the cache at dir. Returns 0 or -errno. */
int cache_open(const char *dir, struct cache **ret);
struct cache *cache_close(struct cache *c);
const char *cache_dir(const struct cache *c);

/* Path of an entry's layer directory (whether or not it exists); the string
 * is owned by the caller. */
char *cache_entry_tree(const struct cache *c, const char *key);

/* True when the entry exists (complete). Updates its last-use time. */
bool cache_has(struct cache *c, const char *key);

/* Reads an entry's meta.json text; -ENOENT when absent. */
int cache_read_meta(struct cache *c, const char *key, char **ret_json);

/* A write in progress: take the key's lock (blocking), then, if the entry
 * appeared meanwhile (another build made it), return 1 and no handle;
 * otherwise return 0 and a handle with a fresh tmp directory whose `tree/`
 * subdirectory the caller fills. */
struct cache_txn;
int cache_begin(struct cache *c, const char *key, struct cache_txn **ret);
const char *cache_txn_tree(const struct cache_txn *t);   /* tmp/<x>/tree */
/* Makes tmp/<x> 0755 (it is 0700), for a tool whose unprivileged helpers
 * must reach the tree (mmdebstrap's _apt); entries/ stays 0700. */
int cache_txn_share(struct cache_txn *t);
const char *cache_txn_dir(const struct cache_txn *t);    /* tmp/<x>, for overlay work dirs */
/* Writes meta_json, fsyncs, renames into entries/<key>, releases the lock. */
int cache_commit(struct cache_txn *t, const char *meta_json);
/* Discards the tmp dir and releases the lock (also what a crash amounts to). */
void cache_abort(struct cache_txn *t);

/* Records/reads the key used for step `step` of build `build` (for --explain). */
int cache_index_set(struct cache *c, const char *build, unsigned step, const char *key);
int cache_index_get(struct cache *c, const char *build, unsigned step, char ret_key[CACHE_KEY_LEN + 1]);

struct cache_entry_info {
        char key[CACHE_KEY_LEN + 1];
        uint64_t size;       /* bytes on disk (st_blocks), layer + meta */
        time_t created;
        time_t last_used;
        char *label;         /* from meta.json "label" (e.g. "slurm-base step 3 (shell)"), owned */
};

/* Lists entries, most recently used first. */
int cache_list(struct cache *c, struct cache_entry_info **ret, size_t *ret_n);
/* When the entry for key was made (from its metadata; fixed for its life).
 * Returns 0, or -ENOENT when there is no such entry. */
int cache_entry_created(struct cache *c, const char *key, time_t *ret);
void cache_entry_info_free(struct cache_entry_info *v, size_t n);

/* Removes one entry (for --force rebuilds); 0 also when it did not exist.
 * Waits for the key's lock, so a build writing it is not disturbed. */
int cache_remove(struct cache *c, const char *key);

/* Removes least recently used entries until the total is <= max_bytes.
 * Entries locked by a running build are skipped. Returns the number of
 * bytes freed in *ret_freed. */
int cache_prune(struct cache *c, uint64_t max_bytes, uint64_t *ret_freed, size_t *ret_removed);

/* The package cache (pkgcache.h) that lives beside the entries, in
 * <dir>/packages; owned path. Its files count in the cache's size, and
 * prune removes them with the entries, least recently used first. */
char *cache_packages_dir(const struct cache *c);

struct cache_prune_result {
        uint64_t freed;          /* bytes */
        size_t removed;          /* step entries */
        size_t removed_packages; /* package files */
};
/* cache_prune over entries and package files together. */
int cache_prune_all(struct cache *c, uint64_t max_bytes, struct cache_prune_result *ret);

