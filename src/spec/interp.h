/* SPDX-License-Identifier: Apache-2.0 */
/*
 * interp.h — evaluation of ${...} expressions inside spec strings.
 *
 * Syntax (documented for users in docs/spec.md, "Interpolation"):
 *
 *   ${var.NAME}            a variable's value
 *   ${build.name}          build.name, .arch, .role, .base, .debian_arch
 *   ${matrix.AXIS}         a matrix axis value of the expanded build
 *   ${timestamp}           run start time, RFC 3339 UTC (SOURCE_DATE_EPOCH honoured)
 *   ${f(arg, ...)}         one of the fixed functions below
 *   ${var.list[0]}  ${var.map.key}  ${var.map["key"]}   indexing
 *   "literal", 42, true    literals as function arguments
 *   $${                    a literal "${" (for shell scripts: $${HOME})
 *
 * Functions: lower(s) upper(s) trimspace(s) replace(s, old, new)
 * join(sep, list) split(sep, s) sha256(s) file(path) formatdate(fmt, ts)
 * coalesce(a, b, ...) — see interp.c for the exact behaviour of each.
 *
 * A string that is exactly one ${...} takes the type of the result (so
 * `install: ${var.packages}` yields a list); a string mixing text and
 * expressions yields a string, and embedding a list or map in it is an
 * error. Any result that used a sensitive value is marked sensitive.
 *
 * The scope is a V_MAP whose keys are the available roots ("var", "build",
 * "matrix", "timestamp"); looking up a root that is not in the scope is an
 * error that says where it is available.
 */
#pragma once

#include "spec/value.h"

#include <stdint.h>

#define INTERP_MAX_DEPTH 32        /* nesting of calls/parentheses */
#define INTERP_MAX_RESULT (1u << 24) /* bytes in one interpolated string */
#define INTERP_FILE_MAX (1u << 20) /* bytes file() may read */

/* Totals for one spec load (or one build-time evaluation): what a small spec
 * can make by referencing large values many times, nesting replace()/join(),
 * and multiplying that by matrix cells and from: inheritance. */
#define SPEC_MAX_INTERP_BYTES (64ull << 20) /* bytes of values made */
#define SPEC_MAX_INTERP_WORK (1ull << 28)   /* units of work (below) */

/* What evaluating may spend, shared by every evaluation of one spec load.
 * `bytes` counts the memory of every value made (text, value nodes and
 * their arrays — also intermediate results dropped again, and copies the
 * spec layer makes of evaluated sections for inherited builds); `work`
 * counts bytes parsed, scanned, hashed, read or walked, and a fixed cost per
 * expression node and per map entry looked through. Once a limit is crossed
 * it is reported once, `exhausted` is set, and every later evaluation with
 * this budget fails quietly at once (its result is an invalid null). */
struct interp_budget {
        uint64_t bytes, work;
        bool exhausted;
};

struct interp_env {
        const struct value *scope; /* borrowed V_MAP of roots */
        const char *base_dir;      /* file() paths are relative to this */
        /* When not NULL, every path file() reads is appended once (resolved
         * against base_dir; a new xstrdup'd string, the array grown with
         * xreallocarray) — the build cache hashes them later. The caller
         * owns and frees both the strings and the array. */
        char ***files_read;
        size_t *nfiles_read;
        /* Shared totals; NULL: each interp_value/interp_string call gets a
         * fresh budget of its own. */
        struct interp_budget *budget;
};

/* Returns true when s contains an expression to evaluate ("${" not preceded
 * by another "$"). Note that a string with only "$${" escapes still needs
 * interp_string to turn them into "${": callers should not use this to skip
 * evaluation. */
bool interp_has_expr(const char *s);

/* Evaluates every string in the tree `in`, returning a new tree in *ret
 * (always set, also on error). Errors are reported to d, located in the
 * source, and the failing values are kept as written with ->invalid set.
 * Returns 0, or -EINVAL when any error was reported. */
int interp_value(const struct value *in, const struct interp_env *env, struct diag_list *d,
                 struct value **ret);

/* Evaluates one string value (as interp_value does for a scalar). */
int interp_string(const struct value *in, const struct interp_env *env, struct diag_list *d,
                  struct value **ret);

/* Charges bytes and work to b. When that crosses a limit for the first
 * time, reports it at `at` (a located error naming the limit) and sets
 * b->exhausted. Returns 0, or -E2BIG when b is (now or already) exhausted. */
int interp_charge(struct interp_budget *b, uint64_t bytes, uint64_t work, const struct mark *at,
                  struct diag_list *d);
