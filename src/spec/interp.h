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

#define INTERP_MAX_DEPTH 32        /* nesting of calls/parentheses */
#define INTERP_MAX_RESULT (1u << 24) /* bytes in one interpolated string */
#define INTERP_FILE_MAX (1u << 20) /* bytes file() may read */

struct interp_env {
        const struct value *scope; /* borrowed V_MAP of roots */
        const char *base_dir;      /* file() paths are relative to this */
        /* When not NULL, every path file() reads is appended once (resolved
         * against base_dir; a new xstrdup'd string, the array grown with
         * xreallocarray) — the build cache hashes them later. The caller
         * owns and frees both the strings and the array. */
        char ***files_read;
        size_t *nfiles_read;
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
