/* SPDX-License-Identifier: Apache-2.0 */
/*
 * refresh.h — when the cached result of a step that reads package lists
 * (`update`, `packages`) goes stale: its `refresh:` policy, turned into a
 * stamp that is part of the step's cache key (docs/spec.md, "refresh").
 *
 *   never    the stamp never changes: reused until the inputs change
 *   daily    "daily 2026-12-03": a new key on each UTC day
 *   weekly   "weekly 2026-W49": a new key each ISO week (UTC)
 *   release  "release <sha256>": a new key when the InRelease (or Release)
 *            file of any apt source of the tree changes; the digest is
 *            over each file's URL and content, fetched with libcurl
 *
 * The stamp is a key input, never a condition on a hit: a refreshed step
 * gets a new key, so the steps after it get new keys too and run on the
 * fresh layer. No call prints.
 */
#pragma once

#include "base/strv.h"

#include <stdbool.h>
#include <time.h>

enum refresh_policy {
        REFRESH_NEVER,
        REFRESH_DAILY,
        REFRESH_WEEKLY,
        REFRESH_RELEASE,
};

/* The policy named s ("never", "daily", "weekly", "release"); -EINVAL for
 * another name (the spec layer reports those with a did-you-mean). */
int refresh_policy_parse(const char *s, enum refresh_policy *ret);
const char *refresh_policy_name(enum refresh_policy p);

/* The stamp of a time-based policy at now (UTC): "never", "daily
 * YYYY-MM-DD", "weekly YYYY-Www" (ISO 8601 week). Owned. NULL for
 * REFRESH_RELEASE (see refresh_release_stamp). */
char *refresh_period_stamp(enum refresh_policy p, time_t now);

/* Adds the URL of the InRelease file of every `deb` source in text, an
 * apt sources file: one-line format (.list; deb822 false) or deb822
 * (.sources). "URI SUITE" gives URI/dists/SUITE/InRelease, a flat
 * repository ("URI ./", a suite ending in '/') URI/SUITE/InRelease.
 * Options ("[trusted=yes]"), comments, deb-src lines and disabled
 * (Enabled: no) stanzas are skipped. Returns the number added. */
size_t refresh_release_urls(const char *text, bool deb822, struct strv *urls);

/* The apt sources of a tree given as overlay layers (topmost first):
 * etc/apt/sources.list and the .list and .sources files of
 * etc/apt/sources.list.d, the
 * topmost layer's version of each file, whiteouts honoured. Adds their
 * InRelease URLs to urls, sorted, without duplicates. 0 or -errno. */
int refresh_tree_release_urls(const char *const *layers, size_t n, struct strv *urls);

/* "release <hex>": SHA-256 over each URL and the SHA-256 of what it
 * serves (InRelease; when that is 404, Release beside it), for urls in
 * order. Every transfer is bounded (16 MiB, 30 s without progress).
 * On failure returns -errno and *ret_error says which URL and why
 * (owned): -EHOSTUNREACH/-ECONNREFUSED/-ETIMEDOUT offline, -ENOENT a
 * file that is not there, -EINVAL no sources. */
int refresh_release_stamp(const struct strv *urls, char **ret_stamp, char **ret_error);
