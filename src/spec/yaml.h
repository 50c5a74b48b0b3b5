/* SPDX-License-Identifier: Apache-2.0 */
/*
 * yaml.h — loads a YAML or JSON document into a value tree (value.h), with
 * a line and column on every value, via libyaml's event parser.
 *
 * JSON is accepted because it is YAML's flow style: one loader, one set of
 * positions, one set of error messages for both.
 *
 * What is rejected, each reported to the diag_list at its position:
 * syntax errors (libyaml's message), bytes that are not UTF-8 text (at the
 * line and column of the first bad byte), UTF-16 and UTF-32 files (UTF-8
 * with a byte order mark is fine), duplicate keys, non-scalar keys, more
 * than one document, unsupported tags, merge keys (<<), and documents over
 * a limit below. Nodes, nesting and text are counted after alias expansion
 * (the "billion laughs" guard), and the error is at the alias that crosses
 * the limit. Files over YAML_MAX_BYTES are refused.
 *
 * Cost: time and memory linear in the expanded document (anchors and keys
 * are found through hash tables), so bounded by the limits.
 */
#pragma once

#include "spec/value.h"

/* Size of one file. */
#define YAML_MAX_BYTES (16u << 20)
/* Levels of nesting (the document's top value is level 0). */
#define YAML_MAX_DEPTH 64
/* Values (scalars, lists, maps and keys) after aliases are expanded. */
#define YAML_MAX_NODES 1000000
/* Bytes of scalar text (keys and values) after aliases are expanded. */
#define YAML_MAX_EXPANDED_BYTES (32u << 20)
/* Directives (%YAML, %TAG: lines starting with '%'); kiln needs none, and
 * libyaml's cost grows with the square of their number. */
#define YAML_MAX_DIRECTIVES 64

/* Parses src's text. Returns 0 and the document in *ret (V_NULL for an empty
 * document) — also after recoverable errors (duplicate keys, merge keys,
 * tags), which are reported and their entries dropped so that validation can
 * go on. On a syntax error or a limit returns -EBADMSG / -E2BIG after adding
 * diagnostics; *ret is then untouched. */
int yaml_load(const struct source *src, struct diag_list *d, struct value **ret);

/* Reads path (up to YAML_MAX_BYTES) into a new source. Returns -errno from
 * the read (-E2BIG when too large). */
int yaml_read_source(const char *path, struct source **ret);
