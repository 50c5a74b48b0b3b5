/* SPDX-License-Identifier: Apache-2.0 */
#include "base/suggest.h"

#include "base/util.h"

#include <strings.h>

#define SUGGEST_MAX_LEN 256

size_t suggest_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
                return streq(a, b) ? 0 : (size_t)-1;
        /* Three rolling rows are enough for the transposition rule. */
        size_t rows[3][SUGGEST_MAX_LEN + 1];
        size_t *pp = rows[0], *p = rows[1], *c = rows[2];
        for (size_t j = 0; j <= lb; j++)
                p[j] = j;
        for (size_t i = 1; i <= la; i++) {
                c[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
                        size_t v = p[j] + 1;
                        if (c[j - 1] + 1 < v)
                                v = c[j - 1] + 1;
                        if (p[j - 1] + cost < v)
                                v = p[j - 1] + cost;
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                            pp[j - 2] + 1 < v)
                                v = pp[j - 2] + 1;
                        c[j] = v;
                }
                size_t *t = pp;
                pp = p;
                p = c;
                c = t;
        }
        return p[lb];
}

const char *suggest_closest(const char *word, const char *const *cands, size_t n) {
        const char *best = NULL;
        size_t best_d = (size_t)-1;
        size_t limit = strlen(word) / 3;
        if (limit < 1)
                limit = 1;
        for (size_t i = 0; i < n; i++) {
                if (!cands[i])
                        continue;
                if (strcasecmp(word, cands[i]) == 0)
                        return cands[i];
                size_t d = suggest_distance(word, cands[i]);
                if (d < best_d) {
                        best_d = d;
                        best = cands[i];
                }
        }
        if (best_d <= limit)
                return best;
        /* "lowercase" for "lower", "pkg" for "pkgs": one is a prefix of the
         * other (at least 3 characters in common). */
        for (size_t i = 0; i < n; i++) {
                if (!cands[i])
                        continue;
                size_t lw = strlen(word), lc = strlen(cands[i]);
                size_t m = lw < lc ? lw : lc;
                if (m >= 3 && strncmp(word, cands[i], m) == 0)
                        return cands[i];
        }
        return NULL;
}
