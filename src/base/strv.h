/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strv.h — a growable vector of owned strings, NULL-terminated so that v
 * can be handed to execve() as argv or envp.
 *
 * An initialised strv (STRV_INIT or `= {0}`) owns v and every string in
 * it: strv_free releases them, strv_detach hands the array to the caller.
 * v is NULL until the first add; from then on v[n] is NULL. Adding never
 * fails (allocation failure is fatal, see util.h); amortised O(1) per add
 * plus the copy of the string.
 */
#pragma once

#include "base/util.h"

struct strv {
        char **v; /* NULL-terminated once anything was added */
        size_t n;
        size_t cap;
};

#define STRV_INIT {NULL, 0, 0}

/* Appends a copy of x. */
void strv_add(struct strv *s, const char *x);
/* Appends x itself: the strv now owns it. */
void strv_add_take(struct strv *s, char *x);
/* Appends a copy of x unless an equal string is there; true when added.
 * O(n). */
bool strv_add_unique(struct strv *s, const char *x);
/* Whether an element equals x. O(n). */
bool strv_contains(const struct strv *s, const char *x);
/* Appends a formatted string. */
void strv_addf(struct strv *s, const char *fmt, ...) _printf_(2, 3);
/* Removes and frees v[i]; the last element takes its place (order is not
 * kept). */
void strv_remove(struct strv *s, size_t i);
/* Returns the NULL-terminated array (never NULL: an empty one when nothing
 * was added), owned by the caller with its strings (free with
 * strv_free_array); s is left empty. */
char **strv_detach(struct strv *s);
void strv_free(struct strv *s);
/* Frees a NULL-terminated array of owned strings (NULL is fine). */
void strv_free_array(char **v);

#define _cleanup_strv_ _cleanup_(strv_free)
