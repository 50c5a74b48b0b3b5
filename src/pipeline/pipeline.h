/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipeline.h — one build run as an engine, between the engines (provision,
 * image, vm, check, store, publish) and the front ends (cli/, service/):
 * what `kiln build`, a daemon and a cluster worker all call.
 */
#pragma once

#include "spec/section.h"
#include "spec/spec.h"

/* ---- Loading a spec (load.c) ---------------------------------------------
 *
 * pipeline_load is spec_load with every engine's sections registered
 * (spec/section.h): `disk:` and `outputs:` (image), `checks:` and
 * `boot_check:` (check), `publish:` (publish). Each section is validated
 * where the spec layer evaluates it and parsed ONCE, at the end of
 * loading, into the owner's typed struct for every needed build; the
 * engines read those (image_outputs_of, check_list_of, publish_targets_of,
 * ...), never the values again. Diagnostics, their file:line:column and
 * their order are spec_load's. */

/* Every engine's sections, in the order they are parsed;
 * NULL-terminated. */
extern const struct spec_section *const pipeline_sections[];

/* Loads o (its sections field is ignored: pipeline_sections are used).
 * Returns what spec_load returns: 0 and the spec in *ret when no error was
 * reported, -EINVAL (spec errors, in d), or -errno when the spec file
 * could not be read (also in d). */
int pipeline_load(const struct spec_options *o, struct diag_list *d, struct spec **ret);
