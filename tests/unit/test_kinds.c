/* SPDX-License-Identifier: Apache-2.0 */
/* The spec layer's kind tables (spec/kinds.h: what a step or source
 * accepts) and provision's runner tables (provision/steps.h: what it does)
 * pair up one to one, by name. */
#include "harness.h"

#include "provision/steps.h"
#include "spec/kinds.h"

TEST(every_step_kind_has_a_runner) {
        size_t n = 0;
        for (const struct step_kind *const *k = step_kinds; *k; k++, n++) {
                const struct step_runner *r = step_runner_find((*k)->name);
                if (!r)
                        test_fail(__FILE__, __LINE__, "step kind '%s' has no runner", (*k)->name);
                else
                        CHECK(r->run != NULL);
        }
        CHECK_INT(n, >, 0);
}

TEST(every_step_runner_has_a_kind) {
        size_t n = 0;
        for (const struct step_runner *const *r = step_runners; *r; r++, n++) {
                if (!step_kind_find((*r)->kind))
                        test_fail(__FILE__, __LINE__, "step runner '%s' has no spec kind", (*r)->kind);
                for (const struct step_runner *const *o = step_runners; o < r; o++)
                        if (streq((*o)->kind, (*r)->kind))
                                test_fail(__FILE__, __LINE__, "two step runners for '%s'", (*r)->kind);
        }
        CHECK_INT(n, >, 0);
}

TEST(every_source_kind_has_a_runner) {
        size_t n = 0;
        for (const struct source_kind *const *k = source_kinds; *k; k++, n++) {
                const struct source_runner *r = source_runner_find((*k)->name);
                if (!r)
                        test_fail(__FILE__, __LINE__, "source kind '%s' has no runner", (*k)->name);
                else
                        CHECK(r->run != NULL);
        }
        CHECK_INT(n, >, 0);
}

TEST(every_source_runner_has_a_kind) {
        size_t n = 0;
        for (const struct source_runner *const *r = source_runners; *r; r++, n++) {
                if (!source_kind_find((*r)->kind))
                        test_fail(__FILE__, __LINE__, "source runner '%s' has no spec kind", (*r)->kind);
                for (const struct source_runner *const *o = source_runners; o < r; o++)
                        if (streq((*o)->kind, (*r)->kind))
                                test_fail(__FILE__, __LINE__, "two source runners for '%s'", (*r)->kind);
        }
        CHECK_INT(n, >, 0);
        CHECK(source_runner_find("no-such-kind") == NULL);
        CHECK(source_runner_find(NULL) == NULL);
}
