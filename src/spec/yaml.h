/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yaml.h — loads a YAML or JSON document into a value tree (value.h), with
 * a line and column on every value, via libyaml's event parser.
 *
 * JSON is accepted because it is YAML's flow style: one loader, one set of
 * positions, one set of error messages for both.
 *
 * What is rejected, each reported to the diag_list at its position:
 * syntax errors (libyaml's message), duplicate keys, non-scalar keys, more
 * than one document, unsupported tags, merge keys (<<), nesting deeper than
 * YAML_MAX_DEPTH and trees larger than YAML_MAX_NODES after alias expansion
 * (the "billion laughs" guard). Files over YAML_MAX_BYTES are refused.
 */
#pragma once

#include "spec/value.h"

#define YAML_MAX_BYTES (16u << 20)
#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 1000000

/* Parses src's text. Returns 0 and the document in *ret (V_NULL for an empty
 * document) — also after recoverable errors (duplicate keys, merge keys,
 * tags), which are reported and their entries dropped so that validation can
 * go on. On a syntax error or a limit returns -EBADMSG / -E2BIG after adding
 * diagnostics; *ret is then untouched. */
int yaml_load(const struct source *src, struct diag_list *d, struct value **ret);

/* Reads path (up to YAML_MAX_BYTES) into a new source. Returns -errno from
 * the read (-E2BIG when too large). */
int yaml_read_source(const char *path, struct source **ret);
