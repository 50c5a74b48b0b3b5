/* SPDX-License-Identifier: Apache-2.0 */
/* The spec layer's kind tables (spec/kinds.h: what a step or source
 * accepts) and provision's runner tables (provision/steps.h: what it does)
 * pair up one to one, by name. */
#include "harness.h"

#include "base/strbuf.h"
#include "provision/steps.h"
#include "spec/kinds.h"

#define MAX_KINDS 64

static bool listed(const char *name, const char *const *names, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], name))
                        return true;
        return false;
}

/* Every kind has exactly one runner and every runner a kind; returns the
 * number of mismatches, each described by a line in *why. */
static unsigned mismatches(const char *what, const char *const *kinds, size_t nk, const char *const *runners,
                           size_t nr, struct strbuf *why) {
        unsigned bad = 0;
        for (size_t i = 0; i < nk; i++)
                if (!listed(kinds[i], runners, nr) && ++bad)
                        strbuf_addf(why, "%s kind '%s' has no runner\n", what, kinds[i]);
        for (size_t i = 0; i < nr; i++) {
                if (!listed(runners[i], kinds, nk) && ++bad)
                        strbuf_addf(why, "%s runner '%s' has no spec kind\n", what, runners[i]);
                if (listed(runners[i], runners, i) && ++bad)
                        strbuf_addf(why, "two %s runners for '%s'\n", what, runners[i]);
        }
        return bad;
}

static void check_pairs(const char *what, const char *const *kinds, size_t nk, const char *const *runners,
                        size_t nr) {
        _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
        CHECK_INT(nk, >, 0);
        CHECK_INT(nr, >, 0);
        if (mismatches(what, kinds, nk, runners, nr, &why))
                test_fail(__FILE__, __LINE__, "%s", why.buf);
}

TEST(step_kinds_and_runners_pair_up) {
        const char *kinds[MAX_KINDS], *runners[MAX_KINDS];
        size_t nk = 0, nr = 0;
        for (const struct step_kind *const *k = step_kinds; *k && nk < MAX_KINDS; k++)
                kinds[nk++] = (*k)->name;
        for (const struct step_runner *const *r = step_runners; *r && nr < MAX_KINDS; r++) {
                CHECK((*r)->run != NULL);
                CHECK(step_runner_find((*r)->kind) == *r);
                runners[nr++] = (*r)->kind;
        }
        check_pairs("step", kinds, nk, runners, nr);
}

TEST(source_kinds_and_runners_pair_up) {
        const char *kinds[MAX_KINDS], *runners[MAX_KINDS];
        size_t nk = 0, nr = 0;
        for (const struct source_kind *const *k = source_kinds; *k && nk < MAX_KINDS; k++)
                kinds[nk++] = (*k)->name;
        for (const struct source_runner *const *r = source_runners; *r && nr < MAX_KINDS; r++) {
                CHECK((*r)->run != NULL);
                CHECK(source_runner_find((*r)->kind) == *r);
                runners[nr++] = (*r)->kind;
        }
        check_pairs("source", kinds, nk, runners, nr);
        CHECK(source_runner_find("no-such-kind") == NULL);
        CHECK(source_runner_find(NULL) == NULL);
}

/* The check itself: a kind without a runner, a runner without a kind and a
 * runner listed twice are each reported. */
TEST(kind_pairing_check_fails_when_it_should) {
        static const char *const kinds[] = {"a", "b"}, *const runners[] = {"a", "c", "c"};
        _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
        CHECK_INT(mismatches("step", kinds, 2, runners, 3, &why), ==, 4);
        CHECK(strstr(strbuf_str(&why), "step kind 'b' has no runner"));
        CHECK(strstr(strbuf_str(&why), "step runner 'c' has no spec kind"));
        CHECK(strstr(strbuf_str(&why), "two step runners for 'c'"));
        CHECK_INT(mismatches("step", kinds, 2, kinds, 2, &why), ==, 0);
}
