/* SPDX-License-Identifier: Apache-2.0 */
/*
 * suggest.h — "did you mean …?" for misspelt keys, variables and verbs.
 */
#pragma once

#include <stddef.h>

/* Optimal-string-alignment edit distance (Levenshtein plus adjacent
 * transpositions), case-sensitive. O(len(a)*len(b)) time; strings longer
 * than 256 bytes are compared only by equality. */
size_t suggest_distance(const char *a, const char *b);

/* Returns the candidate closest to word when it is close enough to be a
 * plausible typo (distance <= max(1, strlen(word)/3), or a case-only
 * difference), or when one is a prefix of the other (3+ characters);
 * else NULL. The result borrows from cands; NULL entries are skipped. */
const char *suggest_closest(const char *word, const char *const *cands, size_t n);
