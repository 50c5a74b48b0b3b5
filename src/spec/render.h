/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render.h — a loaded spec as text for people (`kiln inspect`) and as JSON
 * for programs (`kiln inspect --json`, schema in docs/inspect-json.md).
 *
 * Both show only builds that are selected or needed by a selected build.
 * Sensitive values appear as <sensitive> in both. Output is appended to a
 * strbuf; nothing is printed here.
 */
#pragma once

#include "spec/spec.h"

#define INSPECT_SCHEMA_VERSION 1

void spec_render_text(const struct spec *s, struct strbuf *out, bool color);
void spec_render_json(const struct spec *s, struct strbuf *out);
