/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Builds: matrix expansion, `from:` graph, selection and evaluation.
 *
 * Order of work, each stage on what the previous one left usable:
 *   1. per entry under builds: — check its keys, evaluate `matrix:` and
 *      `from:` (only var.* and timestamp are available there);
 *   2. order entries so parents come first; a missing parent or a cycle is
 *      reported (naming the cycle) and the entries involved are dropped;
 *   3. expand each entry into one build per matrix cell, pick the parent
 *      expansion that agrees on shared axes and arch, name it;
 *   4. evaluate and check every other section of every expanded build with
 *      its own build.* and matrix.* values; inherit disk/outputs/checks/
 *      publish/labels from the parent when not written;
 *   5. apply --only/--except and mark the parents of selected builds needed.
 *
 * Errors inside one entry are reported once even though the entry expands
 * into many builds: the same message at the same place is deduplicated by
 * the diag_list.
 */
#include "spec/spec-internal.h"

#include "base/arch.h"
#include "base/suggest.h"
#include "spec/interp.h"
#include "spec/kinds.h"
#include "spec/schema.h"

#include <fnmatch.h>

#define NAME_MAX_LEN 128
#define GLOB_HINT_NAMES 32 /* builds of an entry a glob hint suggests among */

static const struct field build_fields[] = {
        {"description", FT_STRING, 0, NULL, NULL, "what this image is for"},
        {"from", FT_STRING, 0, NULL, NULL, "build this image on top of another build"},
        {"source", FT_ANY, 0, NULL, NULL, "where the root filesystem comes from"},
        {"arch", FT_STRING, 0, NULL, NULL, "x86_64 (default) or aarch64"},
        {"role", FT_STRING, 0, NULL, NULL, "the node role, when there is no role matrix"},
        {"matrix", FT_ANY, 0, NULL, NULL, "axes to expand into several builds"},
        {"name", FT_STRING, 0, NULL, NULL, "naming template for expanded builds"},
        {"labels", FT_SCALAR_MAP, 0, NULL, NULL, "key/value labels recorded with the image"},
        {"steps", FT_LIST, 0, NULL, NULL, "provisioning steps, in order"},
        /* Sections whose content belongs to an engine (section.h): the
         * registered section checks them. */
        {"disk", FT_ANY, 0, NULL, NULL, "disk size, filesystem, UUID seed"},
        {"outputs", FT_ANY, 0, NULL, NULL, "image formats to write"},
        {"checks", FT_ANY, 0, NULL, NULL, "checks the image must pass"},
        {"boot_check", FT_ANY, 0, NULL, NULL,
         "also boot the image and run the checks in it: true, or a map of options"},
        {"publish", FT_ANY, 0, NULL, NULL, "where to publish the image"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

struct entry {
        const struct value *key;     /* the name under builds: */
        const struct value *def;     /* its map */
        struct value *matrix;        /* evaluated, or NULL */
        struct value *from;          /* evaluated, or NULL */
        struct entry *parent;
        int visit;                   /* 0 new, 1 in progress, 2 done */
        bool ok;
        struct spec_build **cells;   /* owned by the spec once added */
        size_t ncells;
};

static bool name_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > NAME_MAX_LEN)
                return false;
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || strchr("._+-", *p)))
                        return false;
        return true;
}

static void unknown_arch(const struct entry *e, const struct value *v, struct diag_list *d) {
        struct diag *dg = diag_error(d, &v->mark, value_span(v),
                                     "build '%s': unknown architecture '%s'", e->key->str,
                                     v->str ? value_shown(v) : "?");
        size_t n = 0;
        while (arch_get(n))
                n++;
        _cleanup_free_ const char **names = xcalloc(n, sizeof(*names));
        _cleanup_strbuf_ struct strbuf list = STRBUF_INIT;
        for (size_t i = 0; i < n; i++) {
                names[i] = arch_get(i)->name;
                strbuf_addf(&list, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : " and ", names[i]);
        }
        const char *sug = v->str && !v->sensitive ? suggest_closest(v->str, names, n) : NULL;
        if (sug)
                diag_hint(dg, "did you mean '%s'?", sug);
        else
                diag_hint(dg, "kiln builds %s", list.buf);
}

static struct value *scope_new(const struct spec *s) {
        struct value *scope = value_new(V_MAP, NULL);
        value_map_set(scope, "var", vars_scope(s));
        value_map_set(scope, "timestamp", value_new_string(s->timestamp, NULL));
        return scope;
}

/* Evaluates in for build b (NULL: before expansion), charging the spec's
 * one interpolation budget. */
static int eval(struct spec *s, const struct value *in, const struct value *scope,
                struct spec_build *b, struct diag_list *d, struct value **ret) {
        struct interp_env env = {
                .scope = scope,
                .base_dir = s->dir,
                .files_read = b ? &b->files_read : NULL,
                .nfiles_read = b ? &b->nfiles_read : NULL,
                .budget = &s->budget,
        };
        return interp_value(in, &env, d, ret);
}

/* Names, roles, architectures, parents and matrix values end up in file
 * names, logs and manifests, where <sensitive> cannot stand in: none may be
 * derived from a sensitive variable. Reports and returns true when v is. */
static bool refuse_sensitive(const struct value *v, const char *build, const char *field,
                             struct diag_list *d) {
        if (!v || v->invalid || !value_any_sensitive(v))
                return false;
        struct diag *dg = diag_error(d, &v->mark, value_span(v),
                                     "build '%s': %s cannot use a sensitive variable", build, field);
        diag_hint(dg, "names, parents, roles, architectures and matrix values appear in file "
                      "names, logs and manifests");
        return true;
}

/* ---- stage 1: entries ---------------------------------------------------- */

static void check_matrix(struct entry *e, struct diag_list *d) {
        struct value *m = e->matrix;
        if (m->invalid)
                goto bad;
        if (m->kind != V_MAP || m->n == 0) {
                struct diag *dg = diag_error(d, &m->mark, 1,
                                             "build '%s': matrix must be a map of axis names to lists",
                                             e->key->str);
                diag_hint(dg, "e.g. matrix: { arch: [x86_64, aarch64], role: [login, compute] }");
                goto bad;
        }
        size_t cells = 1;
        for (size_t i = 0; i < m->n; i++) {
                const struct value *axis = m->keys[i], *vals = m->items[i];
                if (!spec_ident_valid(axis->str)) {
                        diag_error(d, &axis->mark, value_span(axis),
                                   "build '%s': invalid matrix axis name '%s'", e->key->str,
                                   axis->str);
                        goto bad;
                }
                if (vals->invalid)
                        goto bad;
                if (vals->kind != V_LIST || vals->n == 0) {
                        diag_error(d, &vals->mark, 1,
                                   "build '%s': matrix axis '%s' must be a non-empty list",
                                   e->key->str, axis->str);
                        goto bad;
                }
                for (size_t j = 0; j < vals->n; j++) {
                        struct value *v = vals->items[j];
                        if (v->invalid)
                                goto bad; /* already reported */
                        if (!value_is_scalar(v) || v->kind == V_NULL || !name_valid(v->str)) {
                                diag_error(d, &v->mark, value_span(v),
                                           "build '%s': matrix value for '%s' must be a simple name (letters, digits, . _ + -)",
                                           e->key->str, axis->str);
                                goto bad;
                        }
                        if (streq(axis->str, "arch")) {
                                const struct arch *a = arch_lookup(v->str);
                                if (!a) {
                                        unknown_arch(e, v, d);
                                        goto bad;
                                }
                                free(v->str);
                                v->str = xstrdup(a->name);
                                v->len = strlen(a->name);
                                v->kind = V_STRING;
                        }
                        for (size_t k = 0; k < j; k++)
                                if (streq(vals->items[k]->str, v->str)) {
                                        diag_error(d, &v->mark, value_span(v),
                                                   "build '%s': '%s' appears twice in matrix axis '%s'",
                                                   e->key->str, v->str, axis->str);
                                        goto bad;
                                }
                }
                cells *= vals->n;
                if (cells > SPEC_MAX_MATRIX_CELLS) {
                        diag_error(d, &m->mark, 1, "build '%s': matrix expands to more than %d builds",
                                   e->key->str, SPEC_MAX_MATRIX_CELLS);
                        goto bad;
                }
        }
        const struct value *arch = value_map_key(e->def, "arch");
        if (arch && value_map_get(m, "arch")) {
                diag_error(d, &arch->mark, 4, "build '%s': arch is set both here and in matrix:",
                           e->key->str);
                goto bad;
        }
        const struct value *role = value_map_key(e->def, "role");
        if (role && value_map_get(m, "role")) {
                diag_error(d, &role->mark, 4, "build '%s': role is set both here and in matrix:",
                           e->key->str);
                goto bad;
        }
        return;
bad:
        e->ok = false;
}

static void load_entry(struct spec *s, struct entry *e, const struct value *scope,
                       struct diag_list *d) {
        e->ok = true;
        if (!name_valid(e->key->str)) {
                struct diag *dg = diag_error(d, &e->key->mark, value_span(e->key),
                                             "invalid build name '%s'", e->key->str);
                diag_hint(dg, "use letters, digits, '.', '_', '+' and '-' (at most %d)", NAME_MAX_LEN);
                e->ok = false;
        }
        if (e->def->kind != V_MAP) {
                struct strbuf keys = STRBUF_INIT;
                schema_key_list(build_fields, &keys);
                struct diag *dg = diag_error(d, &e->def->mark, 1,
                                             "build '%s' must be a map, not a %s", e->key->str,
                                             value_kind_name(e->def->kind));
                diag_hint(dg, "a build takes: %s", strbuf_str(&keys));
                strbuf_free(&keys);
                e->ok = false;
                return;
        }
        /* Unknown keys, once per entry (types are checked per expansion). */
        _cleanup_free_ char *what = xasprintf("build '%s'", e->key->str);
        for (size_t i = 0; i < e->def->n; i++) {
                const struct value *k = e->def->keys[i];
                bool known = false;
                for (const struct field *f = build_fields; f->key && !known; f++)
                        known = streq(f->key, k->str);
                if (known)
                        continue;
                const char *names[ARRAY_SIZE(build_fields)];
                size_t n = 0;
                for (const struct field *f = build_fields; f->key; f++)
                        names[n++] = f->key;
                struct diag *dg = diag_error(d, &k->mark, value_span(k),
                                             "unknown key '%s' in %s", k->str, what);
                const char *sug = suggest_closest(k->str, names, n);
                if (!sug && step_kind_find(k->str))
                        diag_hint(dg, "'%s' is a step kind: put it in a list under steps:", k->str);
                else if (sug)
                        diag_hint(dg, "did you mean '%s'?", sug);
                else {
                        struct strbuf keys = STRBUF_INIT;
                        schema_key_list(build_fields, &keys);
                        diag_hint(dg, "a build takes: %s", strbuf_str(&keys));
                        strbuf_free(&keys);
                }
        }
        const struct value *m = value_map_get(e->def, "matrix");
        if (m) {
                eval(s, m, scope, NULL, d, &e->matrix);
                if (refuse_sensitive(e->matrix, e->key->str, "matrix:", d))
                        e->matrix->invalid = true;
                check_matrix(e, d);
        }
        const struct value *from = value_map_get(e->def, "from");
        if (from) {
                eval(s, from, scope, NULL, d, &e->from);
                if (refuse_sensitive(e->from, e->key->str, "from:", d))
                        e->from->invalid = true;
                if (e->from->invalid)
                        e->ok = false;
                else if (e->from->kind != V_STRING) {
                        diag_error(d, &e->from->mark, 1,
                                   "build '%s': from: expected the name of another build, got a %s",
                                   e->key->str, value_kind_name(e->from->kind));
                        e->ok = false;
                }
        }
        const struct value *src = value_map_key(e->def, "source");
        if (from && src) {
                struct diag *dg = diag_error(d, &src->mark, 6,
                                             "build '%s' has both source: and from:", e->key->str);
                diag_hint(dg, "a build starts either from a source or from another build's image");
        } else if (!from && !src) {
                struct diag *dg = diag_error(d, &e->key->mark, value_span(e->key),
                                             "build '%s' has neither source: nor from:", e->key->str);
                diag_hint(dg, "e.g. source: { type: debian, suite: bookworm } or from: base");
        }
}

/* ---- stage 2: the from: graph -------------------------------------------- */

static struct entry *find_entry(struct entry *es, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(es[i].key->str, name))
                        return &es[i];
        return NULL;
}

/* Depth-first search from e; appends entries to order[] parents first.
 * stack[] holds the current path for naming cycles. */
static void visit(struct entry *e, struct entry **order, size_t *norder, struct entry **stack,
                  size_t depth, struct diag_list *d) {
        if (e->visit == 2)
                return;
        if (e->visit == 1) {
                /* Cycle: report it once, at the from: that closes it. */
                struct strbuf path = STRBUF_INIT;
                size_t start = 0;
                while (stack[start] != e)
                        start++;
                for (size_t i = start; i < depth; i++) {
                        strbuf_addf(&path, "%s -> ", stack[i]->key->str);
                        stack[i]->ok = false;
                }
                strbuf_adds(&path, e->key->str);
                const struct entry *closer = stack[depth - 1];
                struct diag *dg = diag_error(d, &closer->from->mark, value_span(closer->from),
                                             "builds form a cycle: %s", strbuf_str(&path));
                diag_hint(dg, "from: must form a tree; one of these builds needs a source: instead");
                strbuf_free(&path);
                return;
        }
        e->visit = 1;
        stack[depth] = e;
        if (e->parent)
                visit(e->parent, order, norder, stack, depth + 1, d);
        e->visit = 2;
        order[(*norder)++] = e;
}

/* ---- stage 3/4: expansion and evaluation ---------------------------------- */

static void add_build(struct spec *s, struct spec_build *b) {
        GROW(s->builds, s->nbuilds, s->builds_cap);
        s->builds[s->nbuilds++] = b;
}

static const char *axis_value(const struct spec_build *b, const char *axis) {
        for (size_t i = 0; i < b->naxes; i++)
                if (streq(b->axes[i].name, axis))
                        return b->axes[i].value;
        return NULL;
}

static char *default_name(const struct spec_build *b) {
        /* NAME-ROLE-...-ARCH: role first, other axes in order, arch last. */
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, b->base);
        const char *role = axis_value(b, "role");
        if (role)
                strbuf_addf(&sb, "-%s", role);
        for (size_t i = 0; i < b->naxes; i++)
                if (!streq(b->axes[i].name, "role") && !streq(b->axes[i].name, "arch"))
                        strbuf_addf(&sb, "-%s", b->axes[i].value);
        const char *arch = axis_value(b, "arch");
        if (arch)
                strbuf_addf(&sb, "-%s", arch);
        return strbuf_detach(&sb);
}

/* The build.* root for b (name left out while the name is being made). */
static struct value *build_root(const struct spec_build *b, bool with_name) {
        struct value *m = value_new(V_MAP, NULL);
        if (with_name)
                value_map_set(m, "name", value_new_string(b->name, NULL));
        value_map_set(m, "base", value_new_string(b->base, NULL));
        value_map_set(m, "arch", value_new_string(b->arch, NULL));
        value_map_set(m, "debian_arch", value_new_string(arch_find(b->arch)->debian, NULL));
        value_map_set(m, "role", b->role ? value_new_string(b->role, NULL) : value_new(V_NULL, NULL));
        value_map_set(m, "parent", b->parent ? value_new_string(b->parent->name, NULL)
                                             : value_new(V_NULL, NULL));
        return m;
}

static struct value *matrix_root(const struct spec_build *b) {
        struct value *m = value_new(V_MAP, NULL);
        for (size_t i = 0; i < b->naxes; i++)
                value_map_set(m, b->axes[i].name, value_new_string(b->axes[i].value, NULL));
        return m;
}

/* The scope of expanded build b: the roots of base (borrowed, not copied:
 * variables can be large and there is a scope per build) plus b's own
 * build.* and matrix.*. Free it with cell_scope_free. */
static struct value *cell_scope_new(const struct value *base, const struct spec_build *b,
                                    bool with_name) {
        struct value *scope = value_new(V_MAP, NULL);
        for (size_t i = 0; i < base->n; i++)
                value_map_append(scope, value_new_string(base->keys[i]->str, NULL), base->items[i]);
        value_map_append(scope, value_new_string("build", NULL), build_root(b, with_name));
        value_map_append(scope, value_new_string("matrix", NULL), matrix_root(b));
        return scope;
}

static void cell_scope_free(struct value *scope, const struct value *base) {
        for (size_t i = 0; i < base->n; i++)
                scope->items[i] = NULL; /* borrowed */
        value_free(scope);
}

/* Picks the expansion of the parent entry matching build b. */
static struct spec_build *pick_parent(const struct entry *e, const struct spec_build *b,
                                      bool arch_fixed, struct diag_list *d) {
        const struct entry *p = e->parent;
        struct spec_build *match = NULL;
        size_t nmatch = 0;
        for (size_t i = 0; i < p->ncells; i++) {
                const struct spec_build *c = p->cells[i];
                bool ok = !arch_fixed || streq(c->arch, b->arch);
                for (size_t j = 0; ok && j < c->naxes; j++) {
                        const char *mine = axis_value(b, c->axes[j].name);
                        if (!mine && streq(c->axes[j].name, "role"))
                                mine = b->role; /* a fixed role: counts like an axis */
                        if (mine && !streq(mine, c->axes[j].value))
                                ok = false;
                }
                if (ok) {
                        match = p->cells[i];
                        nmatch++;
                }
        }
        if (nmatch == 1)
                return match;
        struct strbuf names = STRBUF_INIT;
        for (size_t i = 0; i < p->ncells; i++)
                strbuf_addf(&names, "%s%s (%s)", i ? ", " : "", p->cells[i]->name, p->cells[i]->arch);
        if (nmatch == 0) {
                struct diag *dg = diag_error(d, &e->from->mark, value_span(e->from),
                                             "build '%s' (%s) has no matching parent among: %s",
                                             e->key->str, b->arch, strbuf_str(&names));
                diag_hint(dg, "a layered build must have the same arch as its parent; add the arch to the parent's matrix");
        } else {
                struct diag *dg = diag_error(d, &e->from->mark, value_span(e->from),
                                             "build '%s' could layer on several builds: %s",
                                             e->key->str, strbuf_str(&names));
                diag_hint(dg, "give '%s' the same matrix axes as '%s' (or an arch: / role:) to choose one",
                          e->key->str, p->key->str);
        }
        strbuf_free(&names);
        return NULL;
}

static void load_source(struct spec_build *b, const struct value *v, const struct value *key,
                        struct diag_list *d) {
        if (v->invalid)
                return;
        const char *names[16];
        size_t n = 0;
        for (const struct source_kind *const *k = source_kinds; *k; k++)
                names[n++] = (*k)->name;
        struct strbuf list = STRBUF_INIT;
        for (size_t i = 0; i < n; i++)
                strbuf_addf(&list, "%s%s", i ? ", " : "", names[i]);
        if (v->kind != V_MAP) {
                struct diag *dg = diag_error(d, &v->mark, 1, "source: expected a map, got a %s",
                                             value_kind_name(v->kind));
                diag_hint(dg, "e.g. source: { type: debian, suite: bookworm }");
                strbuf_free(&list);
                return;
        }
        const struct value *type = value_map_get(v, "type");
        if (!type) {
                struct diag *dg = diag_error(d, &key->mark, value_span(key),
                                             "source: missing required key 'type'");
                diag_hint(dg, "one of: %s", strbuf_str(&list));
        } else if (!type->invalid) {
                const struct source_kind *k =
                        type->kind == V_STRING ? source_kind_find(type->str) : NULL;
                if (!k) {
                        struct diag *dg = diag_error(d, &type->mark, value_span(type),
                                                     "source: unknown type '%s'",
                                                     type->str ? value_shown(type) : "?");
                        const char *sug = type->str ? suggest_closest(type->str, names, n) : NULL;
                        if (sug)
                                diag_hint(dg, "did you mean '%s'?", sug);
                        else
                                diag_hint(dg, "one of: %s", strbuf_str(&list));
                } else {
                        /* Check everything but `type` against the kind. */
                        _cleanup_value_ struct value *rest = value_new(V_MAP, &key->mark);
                        for (size_t i = 0; i < v->n; i++)
                                if (!streq(v->keys[i]->str, "type"))
                                        value_map_append(rest, value_clone(v->keys[i]),
                                                         value_clone(v->items[i]));
                        _cleanup_free_ char *what = xasprintf("source (%s)", k->name);
                        unsigned errs = schema_check(rest, k->fields, what, d);
                        if (!errs && k->validate)
                                k->validate(rest, what, d);
                }
        }
        strbuf_free(&list);
        b->source = value_clone(v);
}

static bool glob_match_list(const struct value *globs, const char *name) {
        if (globs && globs->kind == V_STRING)
                return fnmatch(globs->str, name, 0) == 0;
        if (!globs || globs->kind != V_LIST)
                return false;
        for (size_t i = 0; i < globs->n; i++)
                if (globs->items[i]->str && fnmatch(globs->items[i]->str, name, 0) == 0)
                        return true;
        return false;
}

/* Warns about step only:/except: globs that match none of the entry's builds
 * (a typo would otherwise drop the step silently). */
/* True when v's tree holds a ${...} anywhere. */
static bool tree_has_expr(const struct value *v) {
        if (!v)
                return false;
        if (v->kind == V_STRING && v->str && interp_has_expr(v->str))
                return true;
        for (size_t i = 0; i < v->n; i++)
                if (tree_has_expr(v->items[i]))
                        return true;
        return false;
}

/* The step's only:/except: as written (before evaluation), or NULL when it
 * cannot be found (e.g. the steps come from a variable). */
static const struct value *raw_step_globs(const struct entry *e, unsigned index, const char *opt) {
        const struct value *steps = value_map_get(e->def, "steps");
        if (!steps || steps->kind != V_LIST || index == 0 || index > steps->n)
                return NULL;
        const struct value *step = steps->items[index - 1];
        return step->kind == V_MAP ? value_map_get(step, opt) : NULL;
}

static void check_step_globs(struct spec *s, const struct spec_build *b, const struct entry *e,
                             const struct value *globs, unsigned index, const char *opt,
                             struct diag_list *d) {
        if (!globs || globs->invalid)
                return;
        /* Globs written without ${...} are the same in every expansion:
         * check them once, in the first, not once per expansion (which
         * costs expansions x expansions matches). */
        const struct value *raw = raw_step_globs(e, index, opt);
        if (raw && !tree_has_expr(raw) && e->ncells && b != e->cells[0])
                return;
        size_t n = globs->kind == V_LIST ? globs->n : 1;
        for (size_t g = 0; g < n; g++) {
                const struct value *glob = globs->kind == V_LIST ? globs->items[g] : globs;
                if (!glob->str || glob->kind == V_LIST || glob->kind == V_MAP)
                        continue;
                /* This runs for each expansion of the entry, against every
                 * expansion: charge it like interpolation work. */
                bool any = false;
                for (size_t c = 0; c < e->ncells && !any; c++) {
                        if (interp_charge(&s->budget, 0, 4 * (glob->len + NAME_MAX_LEN), &glob->mark,
                                          d) < 0)
                                return;
                        any = fnmatch(glob->str, e->cells[c]->name, 0) == 0;
                }
                if (any)
                        continue;
                _cleanup_free_ const char **names = xcalloc(e->ncells + 1, sizeof(char *));
                for (size_t c = 0; c < e->ncells; c++)
                        names[c] = e->cells[c]->name;
                struct diag *dg = diag_warning(d, &glob->mark, value_span(glob),
                                               "step %u: %s: '%s' matches no build of '%s', so the step never runs",
                                               index, opt, value_shown(glob), e->key->str);
                if (!dg)
                        continue; /* a repeat (or over DIAG_MAX): no hint to compute */
                /* Suggestions compare the glob with every name: only for a
                 * few names (the hint would not help among hundreds). */
                const char *sug = !glob->sensitive && e->ncells <= GLOB_HINT_NAMES &&
                                                  glob->len <= NAME_MAX_LEN
                                          ? suggest_closest(glob->str, names, e->ncells)
                                          : NULL;
                if (sug)
                        diag_hint(dg, "did you mean '%s'?", sug);
                else if (e->ncells > GLOB_HINT_NAMES)
                        diag_hint(dg, "see the build names with: kiln inspect");
                else {
                        struct strbuf sb = STRBUF_INIT;
                        for (size_t c = 0; c < e->ncells; c++)
                                strbuf_addf(&sb, "%s%s", c ? ", " : "", names[c]);
                        diag_hint(dg, "the builds are: %s", strbuf_str(&sb));
                        strbuf_free(&sb);
                }
        }
}

static void load_step(struct spec *s, struct spec_build *b, const struct entry *e, const struct value *item,
                      unsigned index, struct diag_list *d) {
        const char *kind_names[16];
        size_t nk = 0;
        for (const struct step_kind *const *k = step_kinds; *k; k++)
                kind_names[nk++] = (*k)->name;
        struct strbuf kinds = STRBUF_INIT;
        for (size_t i = 0; i < nk; i++)
                strbuf_addf(&kinds, "%s%s", i ? ", " : "", kind_names[i]);
        _cleanup_free_ char *what = NULL;
        const struct step_kind *kind = NULL;
        const struct value *params = NULL, *kind_key = NULL;
        _cleanup_value_ struct value *common = value_new(V_MAP, &item->mark);
        _cleanup_value_ struct value *p = NULL;

        if (item->invalid)
                goto out;
        if (item->kind == V_STRING) {
                /* `- update`: a kind without parameters. */
                kind = step_kind_find(item->str);
                kind_key = item;
        } else if (item->kind == V_MAP) {
                for (size_t i = 0; i < item->n; i++) {
                        const struct value *k = item->keys[i];
                        bool is_common = false;
                        for (const struct field *f = step_common_fields; f->key; f++)
                                if (streq(f->key, k->str))
                                        is_common = true;
                        if (is_common) {
                                value_map_append(common, value_clone(k), value_clone(item->items[i]));
                                continue;
                        }
                        const struct step_kind *sk = step_kind_find(k->str);
                        if (!sk) {
                                struct diag *dg = diag_error(d, &k->mark, value_span(k),
                                                             "step %u: unknown step kind '%s'", index, k->str);
                                const char *sug = suggest_closest(k->str, kind_names, nk);
                                const char *csug = NULL;
                                for (const struct field *f = step_common_fields; f->key && !sug && !csug; f++)
                                        if (suggest_distance(k->str, f->key) <= 1)
                                                csug = f->key;
                                if (sug || csug)
                                        diag_hint(dg, "did you mean '%s'?", sug ? sug : csug);
                                else
                                        diag_hint(dg, "step kinds: %s", strbuf_str(&kinds));
                                kind_key = k; /* suppress "no kind" below */
                                continue;
                        }
                        if (kind) {
                                struct diag *dg = diag_error(d, &k->mark, value_span(k),
                                                             "step %u has two kinds, '%s' and '%s'",
                                                             index, kind->name, sk->name);
                                diag_hint(dg, "each list item under steps: is one step; start a new item with '-'");
                                continue;
                        }
                        kind = sk;
                        kind_key = k;
                        params = item->items[i];
                }
        } else {
                struct diag *dg = diag_error(d, &item->mark, 1,
                                             "step %u: expected a map like '- shell: ...', got a %s",
                                             index, value_kind_name(item->kind));
                diag_hint(dg, "step kinds: %s", strbuf_str(&kinds));
                goto out;
        }
        if (!kind) {
                if (!kind_key) {
                        struct diag *dg = diag_error(d, &item->mark, 1, "step %u has no kind", index);
                        diag_hint(dg, "step kinds: %s", strbuf_str(&kinds));
                } else if (item->kind == V_STRING) {
                        struct diag *dg = diag_error(d, &item->mark, value_span(item),
                                                     "step %u: unknown step kind '%s'", index, value_shown(item));
                        const char *sug = item->sensitive ? NULL : suggest_closest(item->str, kind_names, nk);
                        if (sug)
                                diag_hint(dg, "did you mean '%s'?", sug);
                        else
                                diag_hint(dg, "step kinds: %s", strbuf_str(&kinds));
                }
                goto out;
        }
        what = xasprintf("step %u (%s)", index, kind->name);
        for (size_t i = 0; i < common->n; i++)
                for (const struct field *f = step_common_fields; f->key; f++)
                        if (streq(f->key, common->keys[i]->str))
                                schema_check_value(common->items[i], f, what, d);

        if (!params || params->kind == V_NULL) {
                bool has_required = false;
                for (const struct field *f = kind->fields; f->key; f++)
                        if (f->flags & F_REQUIRED)
                                has_required = true;
                if (has_required || kind->validate) {
                        struct diag *dg = diag_error(d, &kind_key->mark, (unsigned)strlen(kind->name),
                                                     "%s: parameters missing", what);
                        struct strbuf keys = STRBUF_INIT;
                        schema_key_list(kind->fields, &keys);
                        diag_hint(dg, "%s takes: %s", kind->name, strbuf_str(&keys));
                        strbuf_free(&keys);
                        goto out;
                }
                p = value_new(V_MAP, &kind_key->mark);
        } else if (params->kind == V_MAP) {
                p = value_clone(params);
                /* "missing key" errors point at the kind, not the first key */
                p->mark = kind_key->mark;
                for (size_t i = 0; i < p->n; i++)
                        for (const struct field *f = step_common_fields; f->key; f++)
                                if (streq(f->key, p->keys[i]->str)) {
                                        bool own = false;
                                        for (const struct field *k = kind->fields; k->key; k++)
                                                own = own || streq(k->key, f->key);
                                        if (own)
                                                continue;
                                        struct diag *dg = diag_error(
                                                d, &p->keys[i]->mark, value_span(p->keys[i]),
                                                "%s: '%s' belongs to the step, not to '%s:'", what,
                                                f->key, kind->name);
                                        diag_hint(dg, "write it at the level of '%s:', e.g. '- %s: {...}' then '  %s: ...' on the next line",
                                                  kind->name, kind->name, f->key);
                                        value_free(p->items[i]);
                                        p->items[i] = value_new(V_NULL, NULL);
                                        p->items[i]->invalid = true;
                                        p->keys[i]->invalid = true;
                                }
                if (schema_check(p, kind->fields, what, d) == 0 && kind->validate)
                        kind->validate(p, what, d);
        } else if (params->invalid) {
                goto out;
        } else if (kind->shorthand_key) {
                struct field f = {kind->shorthand_key, kind->shorthand_type, 0, NULL, NULL, NULL};
                if (schema_check_value(params, &f, what, d) == 0) {
                        p = value_new(V_MAP, &kind_key->mark);
                        value_map_append(p, value_new_string(kind->shorthand_key, &params->mark),
                                         value_clone(params));
                        if (kind->validate)
                                kind->validate(p, what, d);
                } else {
                        goto out;
                }
        } else {
                struct strbuf keys = STRBUF_INIT;
                schema_key_list(kind->fields, &keys);
                struct diag *dg = diag_error(d, &params->mark, 1, "%s: expected a map, got a %s",
                                             what, value_kind_name(params->kind));
                diag_hint(dg, "%s takes: %s", kind->name, strbuf_str(&keys));
                strbuf_free(&keys);
                goto out;
        }

        /* only:/except: select the builds a step runs in. */
        const struct value *only = value_map_get(common, "only");
        const struct value *except = value_map_get(common, "except");
        check_step_globs(s, b, e, only, index, "only", d);
        check_step_globs(s, b, e, except, index, "except", d);
        if ((only && !glob_match_list(only, b->name)) || (except && glob_match_list(except, b->name)))
                goto out;
        if (b->nsteps >= SPEC_MAX_STEPS) {
                diag_error(d, &item->mark, 1, "build '%s' has more than %d steps", b->base,
                           SPEC_MAX_STEPS);
                goto out;
        }
        b->steps = xreallocarray(b->steps, b->nsteps + 1, sizeof(*b->steps));
        const struct value *nm = value_map_get(common, "name");
        const struct value *net = value_map_get(common, "network");
        b->steps[b->nsteps++] = (struct spec_step){
                .index = index,
                .kind = kind->name,
                .name = nm && nm->kind == V_STRING ? xstrdup(value_shown(nm)) : NULL,
                .network = !(net && net->kind == V_BOOL && !net->b),
                .params = TAKE_PTR(p),
                .mark = item->mark,
        };
out:
        strbuf_free(&kinds);
}

/* Charges a copy of v (a parent's section) to the budget, reporting a
 * crossed limit at the from: that asks for it. */
static int charge_copy(struct spec *s, const struct value *v, const struct entry *e,
                       struct diag_list *d) {
        uint64_t n = value_footprint(v);
        return interp_charge(&s->budget, n, n, e->from ? &e->from->mark : &e->key->mark, d);
}

/* Evaluates and checks the sections of one expanded build. */
static void load_sections(struct spec *s, struct spec_build *b, const struct entry *e,
                          const struct value *scope, struct diag_list *d) {
        _cleanup_free_ char *what = xasprintf("build '%s'", e->key->str);
        for (size_t i = 0; i < e->def->n; i++) {
                const char *key = e->def->keys[i]->str;
                if (streq(key, "matrix") || streq(key, "name") || streq(key, "from") ||
                    streq(key, "arch") || streq(key, "role"))
                        continue;
                const struct field *f = NULL;
                for (const struct field *c = build_fields; c->key; c++)
                        if (streq(c->key, key))
                                f = c;
                if (!f)
                        continue; /* reported in load_entry */
                struct value *v = NULL;
                eval(s, e->def->items[i], scope, b, d, &v);
                schema_check_value(v, f, what, d);
                sections_validate(s, b, key, v, what, d); /* an engine's section */
                if (streq(key, "description")) {
                        if (v->kind == V_STRING)
                                b->description = xstrdup(value_shown(v));
                        value_free(v);
                } else if (streq(key, "source")) {
                        if (!e->from)
                                load_source(b, v, e->def->keys[i], d);
                        value_free(v);
                } else if (streq(key, "steps")) {
                        if (v->kind == V_LIST)
                                for (size_t j = 0; j < v->n; j++)
                                        load_step(s, b, e, v->items[j], (unsigned)j + 1, d);
                        value_free(v);
                } else if (streq(key, "disk")) {
                        b->disk = v;
                } else if (streq(key, "outputs")) {
                        b->outputs = v;
                } else if (streq(key, "checks")) {
                        b->checks = v;
                } else if (streq(key, "publish")) {
                        b->publish = v;
                } else if (streq(key, "boot_check")) {
                        /* true/false, or a map of options (checked by the
                         * check engine, which reads it: check_boot_policy_parse) */
                        const struct value *en = v->kind == V_MAP ? value_map_get(v, "enabled") : NULL;
                        b->boot_check = (v->kind == V_BOOL && v->b) ||
                                        (v->kind == V_MAP && !(en && en->kind == V_BOOL && !en->b));
                        b->boot_check_set = true;
                        b->boot_check_opts = v;
                } else if (streq(key, "labels")) {
                        b->labels = v;
                } else {
                        value_free(v);
                }
        }
        /* Layered builds inherit what they do not set. */
        const struct spec_build *p = b->parent;
        if (p) {
                /* The copies count against the interpolation budget: a
                 * chain of from: would otherwise multiply a large section. */
#define INHERIT(field)                                                                   \
        if (!b->field && p->field && charge_copy(s, p->field, e, d) >= 0) {              \
                b->field = value_clone(p->field);                                        \
                b->field##_from = p->field##_from ? p->field##_from : p->name;           \
        }
                INHERIT(disk)
                INHERIT(outputs)
                INHERIT(checks)
                INHERIT(publish)
#undef INHERIT
                if (!b->boot_check_set) {
                        b->boot_check = p->boot_check;
                        if (p->boot_check_opts) {
                                value_free(b->boot_check_opts);
                                b->boot_check_opts = value_clone(p->boot_check_opts);
                        }
                }
                if (p->labels && charge_copy(s, p->labels, e, d) >= 0) {
                        struct value *merged = value_clone(p->labels);
                        for (size_t i = 0; b->labels && i < b->labels->n; i++)
                                value_map_set(merged, b->labels->keys[i]->str,
                                              value_clone(b->labels->items[i]));
                        value_free(b->labels);
                        b->labels = merged;
                }
        }
}

static void expand(struct spec *s, struct entry *e, const struct value *base_scope,
                   struct diag_list *d) {
        size_t ncells = 1, naxes = e->matrix ? e->matrix->n : 0;
        for (size_t i = 0; i < naxes; i++)
                ncells *= e->matrix->items[i]->n;
        e->cells = xcalloc(ncells, sizeof(*e->cells));
        _cleanup_value_ struct value *arch_v = NULL, *role_v = NULL;
        const struct value *raw;
        if ((raw = value_map_get(e->def, "arch")))
                eval(s, raw, base_scope, NULL, d, &arch_v);
        if ((raw = value_map_get(e->def, "role")))
                eval(s, raw, base_scope, NULL, d, &role_v);
        if (refuse_sensitive(arch_v, e->key->str, "arch:", d))
                arch_v->invalid = true;
        if (refuse_sensitive(role_v, e->key->str, "role:", d))
                role_v = value_free(role_v);
        const char *arch_fixed = NULL;
        if (arch_v && !arch_v->invalid) {
                const struct arch *a = arch_v->kind == V_STRING ? arch_lookup(arch_v->str) : NULL;
                if (!a) {
                        unknown_arch(e, arch_v, d);
                        /* Go on as the default so the rest of the build is checked. */
                        a = arch_default();
                }
                arch_fixed = a->name;
        }
        if (role_v && !role_v->invalid && (role_v->kind != V_STRING || !name_valid(role_v->str))) {
                diag_error(d, &role_v->mark, value_span(role_v),
                           "build '%s': role must be a simple name (letters, digits, . _ + -)",
                           e->key->str);
                value_free(role_v);
                role_v = NULL;
        }
        const struct value *name_tpl = value_map_get(e->def, "name");
        for (size_t c = 0; c < ncells && !s->budget.exhausted; c++) {
                struct spec_build *b = xcalloc(1, sizeof(*b));
                b->base = xstrdup(e->key->str);
                b->mark = e->key->mark;
                b->from = e->from ? xstrdup(e->from->str) : NULL;
                b->naxes = naxes;
                b->axes = naxes ? xcalloc(naxes, sizeof(*b->axes)) : NULL;
                size_t rem = c;
                for (size_t i = naxes; i-- > 0;) {
                        const struct value *vals = e->matrix->items[i];
                        b->axes[i].name = xstrdup(e->matrix->keys[i]->str);
                        b->axes[i].value = xstrdup(vals->items[rem % vals->n]->str);
                        rem /= vals->n;
                }
                const char *ax_arch = axis_value(b, "arch");
                bool arch_given = ax_arch || arch_fixed;
                b->arch = xstrdup(ax_arch ? ax_arch : arch_fixed ? arch_fixed : arch_default()->name);
                const char *ax_role = axis_value(b, "role");
                if (ax_role)
                        b->role = xstrdup(ax_role);
                else if (role_v && role_v->kind == V_STRING)
                        b->role = xstrdup(role_v->str);
                if (e->parent) {
                        b->parent = pick_parent(e, b, arch_given, d);
                        if (!b->parent) {
                                free(b->base);
                                free(b->arch);
                                free(b->role);
                                free(b->from);
                                for (size_t i = 0; i < naxes; i++) {
                                        free(b->axes[i].name);
                                        free(b->axes[i].value);
                                }
                                free(b->axes);
                                free(b);
                                continue;
                        }
                        if (!arch_given) {
                                free(b->arch);
                                b->arch = xstrdup(b->parent->arch);
                        }
                }
                /* Name. */
                if (name_tpl) {
                        struct value *scope = cell_scope_new(base_scope, b, false);
                        _cleanup_value_ struct value *nv = NULL;
                        eval(s, name_tpl, scope, NULL, d, &nv);
                        cell_scope_free(scope, base_scope);
                        if (refuse_sensitive(nv, e->key->str, "name:", d)) {
                                /* reported; the default name stands in */
                        } else if (!nv->invalid && nv->kind == V_STRING && name_valid(nv->str)) {
                                b->name = xstrdup(nv->str);
                        } else if (!nv->invalid) {
                                struct diag *dg = diag_error(d, &name_tpl->mark, value_span(name_tpl),
                                                             "build '%s': name '%s' is not a valid build name",
                                                             e->key->str, nv->str ? nv->str : "?");
                                diag_hint(dg, "names use letters, digits, '.', '_', '+' and '-'");
                        }
                }
                b->id = naxes ? default_name(b) : xstrdup(b->base);
                if (!b->name)
                        b->name = xstrdup(b->id);
                const struct spec_build *dup = spec_find_build(s, b->name);
                if (dup) {
                        struct diag *dg = diag_error(d, name_tpl ? &name_tpl->mark : &e->key->mark,
                                                     name_tpl ? value_span(name_tpl) : value_span(e->key),
                                                     "two builds are named '%s'", b->name);
                        if (dup->base && !streq(dup->base, b->base))
                                diag_hint(dg, "'%s' also expands to that name", dup->base);
                        else
                                diag_hint(dg, "the name template must differ per expansion: use every matrix axis (${build.role}, ${build.arch}, ${matrix.AXIS})");
                }
                add_build(s, b);
                e->cells[e->ncells++] = b;
        }
        /* Second pass, once every expansion has its name (step only:/except:
         * globs are checked against all of them). */
        for (size_t c = 0; c < e->ncells && !s->budget.exhausted; c++) {
                struct spec_build *b = e->cells[c];
                struct value *scope = cell_scope_new(base_scope, b, true);
                load_sections(s, b, e, scope, d);
                cell_scope_free(scope, base_scope);
        }
}

/* ---- stage 5: selection --------------------------------------------------- */

static void mark_needed(struct spec_build *b) {
        for (; b && !b->needed; b = b->parent)
                b->needed = true;
}

/* A --only/--except glob names a build by its expanded name, its key
 * under builds: or its stable id (NAME-ROLE-ARCH, the same from run to run
 * when name: carries a ${timestamp}). */
static bool matches(const char *glob, const struct spec_build *b) {
        return fnmatch(glob, b->name, 0) == 0 || fnmatch(glob, b->base, 0) == 0 ||
               (b->id && fnmatch(glob, b->id, 0) == 0);
}

static void check_globs(const struct spec *s, const char *opt, const char *const *globs,
                        size_t n, struct diag_list *d) {
        _cleanup_free_ const char **names = xcalloc(s->nbuilds + 1, sizeof(char *));
        for (size_t i = 0; i < s->nbuilds; i++)
                names[i] = s->builds[i]->name;
        for (size_t g = 0; g < n; g++) {
                bool any = false;
                for (size_t i = 0; i < s->nbuilds && !any; i++)
                        any = matches(globs[g], s->builds[i]);
                if (any)
                        continue;
                struct diag *dg = diag_error(d, NULL, 0, "%s '%s' matches no build", opt, globs[g]);
                const char *sug = suggest_closest(globs[g], names, s->nbuilds);
                if (sug)
                        diag_hint(dg, "did you mean '%s'?", sug);
                else
                        diag_hint(dg, "see the build names with: kiln inspect %s (with the same --var options)", s->path);
        }
}

static void select_builds(struct spec *s, const struct spec_options *o, struct diag_list *d) {
        check_globs(s, "--only", o->only, o->nonly, d);
        check_globs(s, "--except", o->except, o->nexcept, d);
        for (size_t i = 0; i < s->nbuilds; i++) {
                struct spec_build *b = s->builds[i];
                bool sel = o->nonly == 0;
                for (size_t g = 0; g < o->nonly && !sel; g++)
                        sel = matches(o->only[g], b);
                for (size_t g = 0; g < o->nexcept && sel; g++)
                        if (matches(o->except[g], b))
                                sel = false;
                b->selected = sel;
                if (sel)
                        mark_needed(b);
        }
}

void builds_load(struct spec *s, const struct value *builds, const struct spec_options *o,
                 struct diag_list *d) {
        if (builds->kind != V_MAP || builds->n == 0) {
                struct diag *dg = builds->kind == V_MAP || builds->kind == V_NULL
                        ? diag_error(d, &builds->mark, 1, "builds: no builds defined")
                        : diag_error(d, &builds->mark, 1, "builds: expected a map of build names, got a %s",
                                     value_kind_name(builds->kind));
                diag_hint(dg, "e.g. builds: { minimal: { source: { type: debian, suite: bookworm } } }");
                return;
        }
        size_t n = builds->n;
        _cleanup_value_ struct value *scope = scope_new(s);
        _cleanup_free_ struct entry *es = xcalloc(n, sizeof(*es));
        for (size_t i = 0; i < n; i++) {
                es[i].key = builds->keys[i];
                es[i].def = builds->items[i];
                load_entry(s, &es[i], scope, d);
        }
        /* Link parents. */
        _cleanup_free_ const char **names = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                names[i] = es[i].key->str;
        for (size_t i = 0; i < n; i++) {
                struct entry *e = &es[i];
                if (!e->from || e->from->invalid || e->from->kind != V_STRING)
                        continue;
                e->parent = find_entry(es, n, e->from->str);
                if (!e->parent) {
                        struct diag *dg = diag_error(d, &e->from->mark, value_span(e->from),
                                                     "build '%s' layers on '%s', which is not defined",
                                                     e->key->str, value_shown(e->from));
                        const char *sug = suggest_closest(e->from->str, names, n);
                        if (sug)
                                diag_hint(dg, "did you mean '%s'?", sug);
                        e->ok = false;
                }
        }
        _cleanup_free_ struct entry **order = xcalloc(n, sizeof(*order));
        _cleanup_free_ struct entry **stack = xcalloc(n + 1, sizeof(*stack));
        size_t norder = 0;
        for (size_t i = 0; i < n; i++)
                visit(&es[i], order, &norder, stack, 0, d);
        for (size_t i = 0; i < norder; i++) {
                struct entry *e = order[i];
                if (!e->ok || (e->parent && (!e->parent->ok || e->parent->ncells == 0)))
                        continue;
                if (s->budget.exhausted)
                        break; /* reported; the rest would fail the same way */
                /* The limit holds for the total, whatever makes it: many
                 * entries, matrices, layered builds. */
                size_t ncells = 1;
                for (size_t k = 0; e->matrix && k < e->matrix->n; k++)
                        ncells *= e->matrix->items[k]->n; /* <= SPEC_MAX_MATRIX_CELLS */
                if (s->nbuilds + ncells > SPEC_MAX_BUILDS) {
                        struct diag *dg = diag_error(
                                d, &e->key->mark, value_span(e->key),
                                "build '%s' makes the spec expand to more than %d builds "
                                "(limit SPEC_MAX_BUILDS)", e->key->str, SPEC_MAX_BUILDS);
                        diag_hint(dg, "%zu builds come before it, and it expands to %zu",
                                  s->nbuilds, ncells);
                        break;
                }
                expand(s, e, scope, d);
        }
        select_builds(s, o, d);
        for (size_t i = 0; i < n; i++) {
                value_free(es[i].matrix);
                value_free(es[i].from);
                free(es[i].cells);
        }
}

struct value *spec_build_scope(const struct spec *s, const struct spec_build *b) {
        struct value *scope = scope_new(s);
        value_map_set(scope, "build", build_root(b, true));
        value_map_set(scope, "matrix", matrix_root(b));
        return scope;
}
