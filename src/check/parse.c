/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The checks parser: `checks:` as written in a spec or a checks file, to a
 * check_list. Three spellings of the same thing are accepted:
 *
 *   - file: /etc/ssh/sshd_config           a list item: one kind key whose
 *     mode: "0644"                          value is the target (short form)
 *   - file: {path: /etc/x, mode: "0644"}    ... or the kind's options
 *   file:                                   goss's layout: kind -> target ->
 *     /etc/x: {mode: "0644"}                options (or a list of targets)
 *
 * Every form ends in the same place (finish): the options as one map,
 * checked against the kind's field table, goss spellings renamed, the
 * kind's own validation. Errors go to the diag list with the position of
 * what is wrong; parsing goes on to report them all.
 */
#include "check/check.h"

#include "base/suggest.h"
#include "spec/yaml.h"

static const struct field common_fields[] = {
        {"name", FT_STRING, 0, NULL, NULL, "a label for reports"},
        {"boot_only", FT_BOOL, 0, NULL, NULL, "run only in a booted guest"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

/* goss's spellings of options, renamed to kiln's. */
static const struct {
        const char *kind, *goss, *kiln;
} renames[] = {
        {"file", "filetype", "type"},
        {"command", "exit-status", "exit_status"},
        {"command", "exec", "run"},
        {"mount", "opts", "options"},
};

static bool is_common(const char *key) {
        for (const struct field *f = common_fields; f->key; f++)
                if (streq(f->key, key))
                        return true;
        return false;
}

static void kind_list(struct strbuf *out) {
        for (const struct check_kind *const *k = check_kinds; *k; k++)
                strbuf_addf(out, "%s%s", k == check_kinds ? "" : ", ", (*k)->name);
}

static const char *suggest_kind(const char *word) {
        const char *names[32];
        size_t n = 0;
        for (const struct check_kind *const *k = check_kinds; *k && n < ARRAY_SIZE(names); k++)
                names[n++] = (*k)->name;
        return suggest_closest(word, names, n);
}

static void unknown_kind(const struct value *k, unsigned index, struct diag_list *d) {
        struct diag *dg = diag_error(d, &k->mark, value_span(k), "check %u: unknown check kind '%s'",
                                     index, k->str);
        const char *s = suggest_kind(k->str);
        if (s)
                diag_hint(dg, "did you mean '%s'?", s);
        else {
                _cleanup_strbuf_ struct strbuf kinds = STRBUF_INIT;
                kind_list(&kinds);
                diag_hint(dg, "check kinds: %s", strbuf_str(&kinds));
        }
}

static bool is_stringish(const struct value *v) {
        return v && (v->kind == V_STRING || v->kind == V_NUMBER);
}

/* Adds key -> a copy of val to params; an option given twice is an error. */
static bool add_option(struct value *params, const struct value *key, const struct value *val,
                       const char *what, struct diag_list *d) {
        if (value_map_get(params, key->str)) {
                diag_error(d, &key->mark, value_span(key), "%s: '%s' is given twice", what, key->str);
                return false;
        }
        value_map_append(params, value_clone(key), value_clone(val));
        return true;
}

/* Takes the options map (owned) of one check and appends the check to l
 * when it is valid. kind_key locates "missing key" errors; target, when not
 * NULL, is the short form's value (or goss's map key). */
static void finish(struct check_list *l, unsigned index, const struct check_kind *kind,
                   const struct value *kind_key, const struct value *target, struct value *params,
                   const struct value *name, const struct value *boot_only, struct diag_list *d) {
        _cleanup_free_ char *what = xasprintf("check %u (%s)", index, kind->name);
        _cleanup_value_ struct value *p = params;
        size_t errs = d->nerrors;
        p->mark = kind_key->mark;
        if (target) {
                if (!is_stringish(target)) {
                        struct diag *dg = diag_error(d, &target->mark, value_span(target),
                                                     "%s: expected %s or a map of options, got a %s",
                                                     what, kind->target, value_kind_name(target->kind));
                        diag_hint(dg, "e.g. '- %s: VALUE' or '- %s: {%s: VALUE, ...}'", kind->name,
                                  kind->name, kind->target);
                        return;
                }
                struct value *tk = value_new_string(kind->target, &target->mark);
                if (value_map_get(p, kind->target)) {
                        const struct value *k = value_map_key(p, kind->target);
                        diag_error(d, &k->mark, value_span(k), "%s: '%s' is given twice", what,
                                   kind->target);
                        value_free(tk);
                        return;
                }
                value_map_append(p, tk, value_clone(target));
        }
        /* goss spellings */
        for (size_t i = 0; i < ARRAY_SIZE(renames); i++) {
                if (!streq(renames[i].kind, kind->name))
                        continue;
                for (size_t k = 0; k < p->n; k++) {
                        if (!streq(p->keys[k]->str, renames[i].goss))
                                continue;
                        if (value_map_get(p, renames[i].kiln)) {
                                diag_error(d, &p->keys[k]->mark, value_span(p->keys[k]),
                                           "%s: '%s' and '%s' are the same option; give one",
                                           what, renames[i].goss, renames[i].kiln);
                                return;
                        }
                        free(p->keys[k]->str);
                        p->keys[k]->str = xstrdup(renames[i].kiln);
                        p->keys[k]->len = strlen(renames[i].kiln);
                }
        }
        if (name)
                schema_check_value(name, &common_fields[0], what, d);
        if (boot_only)
                schema_check_value(boot_only, &common_fields[1], what, d);
        if (schema_check(p, kind->fields, what, d) == 0 && kind->validate)
                kind->validate(p, what, d);
        if (d->nerrors > errs)
                return;
        if (l->n >= CHECK_MAX) {
                diag_error(d, &kind_key->mark, 1, "more than %d checks", CHECK_MAX);
                return;
        }
        const struct value *t = value_map_get(p, kind->target);
        l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
        l->v[l->n++] = (struct check){
                .index = index,
                .kind = kind,
                .name = name && name->kind == V_STRING ? xstrdup(name->str) : NULL,
                .target = xstrdup(t && t->str ? t->str : ""),
                .params = TAKE_PTR(p),
                .boot_only = kind->boot_only || (boot_only && boot_only->kind == V_BOOL && boot_only->b),
                .mark = kind_key->mark,
        };
}

/* A list item: {KIND: target-or-options, name:, boot_only:, options...}. */
static bool kind_has_field(const struct check_kind *k, const char *key) {
        for (const struct field *f = k->fields; f->key; f++)
                if (streq(f->key, key))
                        return true;
        return false;
}

static void parse_item(struct check_list *l, unsigned index, const struct value *item,
                       struct diag_list *d) {
        if (item->invalid)
                return;
        if (item->kind != V_MAP) {
                struct diag *dg = diag_error(d, &item->mark, value_span(item),
                                             "check %u: expected a map like '- file: /etc/hostname', got a %s",
                                             index, value_kind_name(item->kind));
                if (item->kind == V_STRING && check_kind_find(item->str))
                        diag_hint(dg, "a %s check needs its target: '- %s: ...'", item->str, item->str);
                else {
                        _cleanup_strbuf_ struct strbuf kinds = STRBUF_INIT;
                        kind_list(&kinds);
                        diag_hint(dg, "check kinds: %s", strbuf_str(&kinds));
                }
                return;
        }
        const struct check_kind *kind = NULL;
        const struct value *kind_key = NULL, *kind_val = NULL;
        for (size_t i = 0; i < item->n; i++) {
                const struct check_kind *k = check_kind_find(item->keys[i]->str);
                if (!k)
                        continue;
                /* The first kind key is the kind; a later key that is also
                 * one of its options (a file's group:) is that option. */
                if (kind && kind_has_field(kind, item->keys[i]->str))
                        continue;
                if (kind) {
                        struct diag *dg = diag_error(d, &item->keys[i]->mark, value_span(item->keys[i]),
                                                     "check %u has two kinds, '%s' and '%s'", index,
                                                     kind->name, k->name);
                        diag_hint(dg, "each list item under checks: is one check; start a new item with '-'");
                        return;
                }
                kind = k;
                kind_key = item->keys[i];
                kind_val = item->items[i];
        }
        if (!kind) {
                /* The first key that looks like a misspelt kind, else the
                 * first key that is not a common one, else "no kind". */
                const struct value *bad = NULL;
                for (size_t i = 0; i < item->n && !bad; i++)
                        if (!is_common(item->keys[i]->str) && suggest_kind(item->keys[i]->str))
                                bad = item->keys[i];
                for (size_t i = 0; i < item->n && !bad; i++)
                        if (!is_common(item->keys[i]->str))
                                bad = item->keys[i];
                if (bad) {
                        unknown_kind(bad, index, d);
                        return;
                }
                struct diag *dg = diag_error(d, &item->mark, 1, "check %u has no kind", index);
                _cleanup_strbuf_ struct strbuf kinds = STRBUF_INIT;
                kind_list(&kinds);
                diag_hint(dg, "check kinds: %s", strbuf_str(&kinds));
                return;
        }
        _cleanup_free_ char *what = xasprintf("check %u (%s)", index, kind->name);
        struct value *params = NULL;
        const struct value *target = NULL;
        if (kind_val->invalid)
                return;
        if (kind_val->kind == V_MAP) {
                params = value_new(V_MAP, &kind_key->mark);
                for (size_t i = 0; i < kind_val->n; i++) {
                        if (is_common(kind_val->keys[i]->str) &&
                            !kind_has_field(kind, kind_val->keys[i]->str)) {
                                struct diag *dg = diag_error(
                                        d, &kind_val->keys[i]->mark, value_span(kind_val->keys[i]),
                                        "%s: '%s' belongs to the check, not to '%s:'", what,
                                        kind_val->keys[i]->str, kind->name);
                                diag_hint(dg, "write it at the level of '%s:'", kind->name);
                                continue;
                        }
                        add_option(params, kind_val->keys[i], kind_val->items[i], what, d);
                }
        } else if (kind_val->kind == V_NULL) {
                params = value_new(V_MAP, &kind_key->mark);
        } else {
                params = value_new(V_MAP, &kind_key->mark);
                target = kind_val;
        }
        /* Options written beside the kind key (after a short form). */
        for (size_t i = 0; i < item->n; i++) {
                const struct value *k = item->keys[i];
                if (k == kind_key || is_common(k->str))
                        continue; /* name: beside the kind key is the check's label */
                add_option(params, k, item->items[i], what, d);
        }
        finish(l, index, kind, kind_key, target, params, value_map_get(item, "name"),
               value_map_get(item, "boot_only"), d);
}

/* goss's layout: {KIND: {TARGET: options-or-null, ...} or [TARGET, ...]}. */
static void parse_goss(struct check_list *l, const struct value *v, struct diag_list *d) {
        unsigned index = 0;
        for (size_t i = 0; i < v->n; i++) {
                const struct value *key = v->keys[i], *val = v->items[i];
                const struct check_kind *kind = check_kind_find(key->str);
                if (!kind) {
                        unknown_kind(key, ++index, d);
                        continue;
                }
                if (val->invalid)
                        continue;
                if (val->kind == V_LIST) {
                        for (size_t k = 0; k < val->n; k++)
                                finish(l, ++index, kind, key, val->items[k], value_new(V_MAP, &key->mark),
                                       NULL, NULL, d);
                        continue;
                }
                if (val->kind != V_MAP) {
                        struct diag *dg = diag_error(d, &val->mark, value_span(val),
                                                     "checks: %s: expected a map of %s to options, or a list, got a %s",
                                                     kind->name, kind->target, value_kind_name(val->kind));
                        diag_hint(dg, "e.g. %s: {VALUE: {...}} or %s: [VALUE, ...]", kind->name, kind->name);
                        continue;
                }
                for (size_t k = 0; k < val->n; k++) {
                        const struct value *t = val->keys[k], *opts = val->items[k];
                        index++;
                        _cleanup_free_ char *what = xasprintf("check %u (%s)", index, kind->name);
                        if (opts->invalid)
                                continue;
                        if (opts->kind != V_MAP && opts->kind != V_NULL) {
                                struct diag *dg = diag_error(d, &opts->mark, value_span(opts),
                                                             "%s: expected a map of options, got a %s",
                                                             what, value_kind_name(opts->kind));
                                diag_hint(dg, "write '%s: {}' for the defaults", t->str);
                                continue;
                        }
                        struct value *params = value_new(V_MAP, &t->mark);
                        for (size_t j = 0; opts->kind == V_MAP && j < opts->n; j++)
                                if (!is_common(opts->keys[j]->str))
                                        add_option(params, opts->keys[j], opts->items[j], what, d);
                        finish(l, index, kind, t, t, params, value_map_get(opts, "name"),
                               value_map_get(opts, "boot_only"), d);
                }
        }
}

static void parse_doc(struct check_list *l, const struct value *v, struct diag_list *d) {
        if (v->kind == V_LIST) {
                for (size_t i = 0; i < v->n; i++)
                        parse_item(l, (unsigned)i + 1, v->items[i], d);
        } else if (v->kind == V_MAP) {
                parse_goss(l, v, d);
        } else if (v->kind != V_NULL && !v->invalid) {
                struct diag *dg = diag_error(d, &v->mark, value_span(v),
                                             "checks: expected a list of checks or a map of kinds, got a %s",
                                             value_kind_name(v->kind));
                diag_hint(dg, "e.g. checks: [{file: /etc/hostname}, {package: openssh-server}]");
        }
}

/* at: the `checks:` value naming the file, or NULL (the command line). */
static int load_file(const char *path, const struct value *at, struct diag_list *d,
                     struct check_list *l) {
        struct source *src = NULL;
        int r = yaml_read_source(path, &src);
        if (r < 0) {
                struct diag *dg = diag_error(d, at ? &at->mark : NULL, at ? value_span(at) : 1,
                                             "checks: cannot read '%s': %s", path, strerror(-r));
                if (at)
                        diag_hint(dg, "a checks file name is relative to the spec's directory");
                return r;
        }
        size_t errs = d->nerrors;
        struct value *doc = NULL;
        r = yaml_load(src, d, &doc);
        if (r >= 0) {
                l->doc = doc;
                if (doc->kind == V_NULL)
                        diag_error(d, &doc->mark, 1, "checks: %s holds no checks", path);
                else
                        parse_doc(l, doc, d);
        }
        if (d->nerrors > errs)
                diag_adopt_source(d, src); /* the diagnostics point into it */
        else
                l->src = src;
        return r < 0 ? r : d->nerrors > errs ? -EINVAL : 0;
}

int check_list_parse(const struct value *v, const char *base_dir, struct diag_list *d,
                     struct check_list *ret) {
        *ret = (struct check_list){0};
        if (!v || v->invalid)
                return 0;
        if (v->kind == V_STRING) {
                _cleanup_free_ char *path = v->str[0] == '/' || !base_dir
                                                    ? xstrdup(v->str)
                                                    : xasprintf("%s/%s", base_dir, v->str);
                return load_file(path, v, d, ret);
        }
        size_t errs = d->nerrors;
        parse_doc(ret, v, d);
        return d->nerrors > errs ? -EINVAL : 0;
}

char *check_base_dir(const struct spec *s) {
        const char *slash = strrchr(s->path, '/');
        if (!slash)
                return NULL;
        return slash == s->path ? xstrdup("/") : xstrndup(s->path, (size_t)(slash - s->path));
}

int check_list_load(const char *path, struct diag_list *d, struct check_list *ret) {
        *ret = (struct check_list){0};
        return load_file(path, NULL, d, ret);
}

void check_list_done(struct check_list *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].name);
                free(l->v[i].target);
                value_free(l->v[i].params);
        }
        free(l->v);
        value_free(l->doc);
        source_free(l->src);
        *l = (struct check_list){0};
}

static char *describe_target(const struct check *c);

char *check_describe(const struct check *c) {
        char *t = describe_target(c);
        /* one line, at most 80 characters (a command may be a script) */
        for (char *p = t; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '\t')
                        *p = ' ';
        if (strlen(t) > 80)
                strcpy(t + 77, "...");
        if (!c->name)
                return t;
        char *r = xasprintf("%s (%s)", t, c->name);
        free(t);
        return r;
}

static char *describe_target(const struct check *c) {
        const struct value *ver = value_map_get(c->params, "version");
        if (streq(c->kind->name, "package") && ver) {
                struct strbuf sb = STRBUF_INIT;
                strbuf_adds(&sb, c->target);
                for (size_t i = 0; i < (ver->kind == V_LIST ? ver->n : 1); i++) {
                        const struct value *x = ver->kind == V_LIST ? ver->items[i] : ver;
                        strbuf_addf(&sb, " %s", x->str ? x->str : "");
                }
                return strbuf_detach(&sb);
        }
        if (streq(c->kind->name, "kernel_param")) {
                const struct value *val = value_map_get(c->params, "value");
                return xasprintf("%s = %s", c->target, val && val->str ? val->str : "?");
        }
        return xstrdup(c->target);
}
