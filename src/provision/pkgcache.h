/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pkgcache.h — the package cache: the .deb files apt fetched for any build
 * on the machine, kept so that a cold tree needs no network for packages
 * already fetched (docs/build.md, "The package cache").
 *
 * Layout under DIR (the step cache's packages/ folder):
 *
 *   sha256/<hex>     a .deb, named by the SHA-256 of its content (0644);
 *                    written once by a rename, never modified
 *   by-name/<file>   a symlink to ../sha256/<hex>: the file name apt gives
 *                    the package in /var/cache/apt/archives
 *                    (name_version_arch.deb; the newest fetch wins)
 *   tmp/             files being added, and incoming folders (below);
 *                    never read
 *
 * Trust: every file entered was downloaded and checked by apt against the
 * signed index of its repository; the cache checks each file against its
 * name (the SHA-256 of its content) before handing it out, and removes one
 * that does not match. Last use is the mtime of sha256/<hex>, set when the
 * file is handed out; pruning goes with the step cache's (cache_prune).
 *
 * Concurrency: additions are renames of complete files and symlinks, so
 * readers see a file whole or not at all; two builds adding the same file
 * both succeed. No call prints.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PKGCACHE_HEX_LEN 64

/* Creates DIR's folders when missing. 0 or -errno. */
int pkgcache_init(const char *dir);

/* A fresh, empty folder under DIR/tmp/ (on the cache's file system, so a
 * hard link into it is cheap) for a tool to drop fetched .debs into;
 * pkgcache_add_dir enters them. Owned path, or NULL with errno set. */
char *pkgcache_incoming(const char *dir);

/* Enters every regular *.deb file of src (not its subfolders) into the
 * cache under its SHA-256, points by-name/<its name> at it, and removes
 * src with whatever it holds. *ret_added (may be NULL): files new to the
 * cache. 0, or the first -errno (what could be entered is). */
int pkgcache_add_dir(const char *dir, const char *src, size_t *ret_added);

/* Links (or, across file systems, copies) every by-name file whose
 * content matches its SHA-256 into dest under its apt name, and sets its
 * last use; a file that does not match is removed from the cache.
 * *ret_n (may be NULL): files placed. 0 or -errno. */
int pkgcache_seed(const char *dir, const char *dest, size_t *ret_n);

/* Sets the last use of sha256/<hex> (a file handed out another way). */
void pkgcache_touch(const char *dir, const char *hex);

struct pkgcache_file {
        char hex[PKGCACHE_HEX_LEN + 1];
        uint64_t size;    /* bytes on disk */
        time_t last_used;
        struct timespec used; /* full precision, for ordering */
};

/* Every file of the cache (any order); *ret owned (free). 0 or -errno;
 * an absent cache is empty. */
int pkgcache_list(const char *dir, struct pkgcache_file **ret, size_t *ret_n);

/* Removes sha256/<hex> and the by-name links to it. 0 also when absent;
 * -EINVAL for a malformed hex. */
int pkgcache_remove(const char *dir, const char *hex);
