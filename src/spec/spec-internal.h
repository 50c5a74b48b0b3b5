/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec-internal.h — what the spec module's files share; not for other
 * modules. load.c drives; vars.c resolves variables; builds.c expands and
 * checks builds.
 */
#pragma once

#include "spec/spec.h"

/* Adds a source to the spec (taking ownership) and returns it. */
const struct source *spec_add_source(struct spec *s, struct source *src);

/* Declares variables from the `variables:` map and resolves their values
 * from defaults, var files, environment and command line. Errors go to d. */
void vars_load(struct spec *s, const struct value *decls, const struct spec_options *o,
               struct diag_list *d);

/* The `var` root for interpolation: a new V_MAP of name -> value (sensitive
 * values marked). Variables without a usable value (already reported) are
 * present with ->invalid set, so that their uses fail without a second
 * message. */
struct value *vars_scope(const struct spec *s);

/* Expands, links, selects and evaluates the `builds:` map. */
void builds_load(struct spec *s, const struct value *builds, const struct spec_options *o,
                 struct diag_list *d);

/* True when name is a valid identifier for variables and matrix axes. */
bool spec_ident_valid(const char *name);

/* Gives every needed build the typed struct of each registered section
 * (section.c; section.h says which diagnostics it adds), at the end of
 * loading. sections_free frees b's. */
void sections_parse(struct spec *s, struct diag_list *d);
/* Hands the evaluated section under key of build b (written there, not
 * inherited) to its registered owner's validate hook, if any. */
void sections_validate(const struct spec *s, const struct spec_build *b, const char *key,
                       struct value *v, const char *what, struct diag_list *d);
void sections_free(const struct spec *s, struct spec_build *b);
