/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Variables: declarations, values and their precedence.
 *
 * Precedence, lowest first: `default:`, each --var-file in order,
 * KILN_VAR_<name> from the environment, each --var in order. A later source
 * replaces the whole value (lists and maps are not merged), as in Packer.
 *
 * Values given as text (environment, --var) are read according to the
 * declared type: numbers and booleans are parsed, lists and maps are read as
 * YAML flow / JSON ("[a, b]", "{k: v}"). Every value keeps the position it
 * was written at, so errors point into the var file or the command line.
 *
 * Sensitive variables are marked on their value tree; every consumer
 * (interpolation, inspect, manifests) shows <sensitive>, and diagnostics
 * about them neither print the value nor quote the line it was written on.
 * Sources that assign values (var files, --var, KILN_VAR_*) are never quoted
 * at all: whether a value there is a secret depends on a declaration that
 * may be missing or misspelt. In the spec, the lines of a sensitive
 * variable's declaration are never quoted (redact_declaration).
 */
#include "spec/spec-internal.h"

#include "base/suggest.h"
#include "spec/schema.h"
#include "spec/yaml.h"

#include <limits.h>
#include <regex.h>

#define VAR_ENV_PREFIX "KILN_VAR_"

static const char *const var_types[] = {"string", "number", "bool", "list", "map", NULL};

static const struct field var_fields[] = {
        {"type", FT_STRING, 0, NULL, var_types, "string, number, bool, list or map"},
        {"default", FT_ANY, 0, NULL, NULL, "value when none is given"},
        {"description", FT_STRING, 0, NULL, NULL, "what the variable is for"},
        {"sensitive", FT_BOOL, 0, NULL, NULL, "never print the value"},
        {"validation", FT_ANY, 0, NULL, NULL, "rules the value must pass"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static const struct field validation_fields[] = {
        {"regex", FT_STRING, 0, NULL, NULL, "POSIX extended regex the value must match"},
        {"allowed", FT_LIST, 0, NULL, NULL, "the only values accepted"},
        {"message", FT_STRING, 0, NULL, NULL, "error message when the rule fails"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

const char *var_type_name(enum var_type t) { return var_types[t]; }

bool spec_ident_valid(const char *name) {
        if (!((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') || *name == '_'))
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return true;
}

static struct spec_var *find_var(struct spec *s, const char *name) {
        for (size_t i = 0; i < s->nvars; i++)
                if (streq(s->vars[i].name, name))
                        return &s->vars[i];
        return NULL;
}

static enum var_type infer_type(const struct value *v) {
        switch (v ? v->kind : V_STRING) {
        case V_BOOL: return VAR_BOOL;
        case V_NUMBER: return VAR_NUMBER;
        case V_LIST: return VAR_LIST;
        case V_MAP: return VAR_MAP;
        default: return VAR_STRING;
        }
}

/* Moves every mark in v to src, shifting columns on line 1 by col_offset. */
static void relocate(struct value *v, const struct source *src, unsigned col_offset) {
        v->mark.src = src;
        if (v->mark.line == 1)
                v->mark.col += col_offset;
        for (size_t i = 0; i < v->n; i++) {
                relocate(v->items[i], src, col_offset);
                if (v->keys)
                        relocate(v->keys[i], src, col_offset);
        }
}

/* Converts v to the declared type, in place where possible. from_text: v is
 * a string given on the command line or in the environment, to be parsed.
 * Returns the converted value (taking ownership of v) or NULL after
 * reporting an error. */
static struct value *coerce(struct value *v, const struct spec_var *var, bool from_text,
                            struct diag_list *d) {
        _cleanup_value_ struct value *own = v;
        const char *shown = var->sensitive ? SENSITIVE_PLACEHOLDER : v->str;
        switch (var->type) {
        case VAR_STRING:
                if (value_is_scalar(v) && v->kind != V_NULL) {
                        v->kind = V_STRING;
                        return TAKE_PTR(own);
                }
                break;
        case VAR_NUMBER:
        case VAR_BOOL:
        case VAR_LIST:
        case VAR_MAP: {
                /* Text from the command line or environment is read as YAML,
                 * with the same rules as a value written in a spec. */
                static const enum value_kind kinds[] = {
                        [VAR_NUMBER] = V_NUMBER, [VAR_BOOL] = V_BOOL,
                        [VAR_LIST] = V_LIST, [VAR_MAP] = V_MAP,
                };
                enum value_kind want = kinds[var->type];
                if (v->kind == want)
                        return TAKE_PTR(own);
                if (v->kind == V_STRING && from_text) {
                        /* Parse the text as YAML flow / JSON, then move the
                         * marks back onto the original source. */
                        struct source *tmp = source_new(v->mark.src->path, v->str, v->len);
                        struct diag_list tmpd = {0};
                        struct value *parsed = NULL;
                        int r = yaml_load(tmp, &tmpd, &parsed);
                        bool ok = r >= 0 && tmpd.nerrors == 0 && parsed->kind == want;
                        diag_list_done(&tmpd);
                        if (ok) {
                                relocate(parsed, v->mark.src, v->mark.col - 1);
                                source_free(tmp);
                                return parsed;
                        }
                        value_free(parsed);
                        source_free(tmp);
                        struct diag *dg = diag_error(
                                d, &v->mark, value_span(v),
                                "variable '%s' is a %s; '%s' does not read as one", var->name,
                                var_type_name(var->type), shown);
                        if (dg)
                                dg->redact = var->sensitive;
                        diag_hint(dg, "%s",
                                  want == V_LIST   ? "write it in YAML flow or JSON form, e.g. [a, b]"
                                  : want == V_MAP  ? "write it in YAML flow or JSON form, e.g. {key: value}"
                                  : want == V_BOOL ? "write true or false"
                                                   : "write a number, e.g. 42 or 1.5");
                        return NULL;
                }
                break;
        }
        }
        struct diag *dg = diag_error(d, &v->mark, value_span(v),
                                     "variable '%s' is declared as a %s, but this value is a %s",
                                     var->name, var_type_name(var->type),
                                     value_kind_name(v->kind));
        if (dg)
                dg->redact = var->sensitive;
        if (var->type == VAR_STRING && v->kind == V_NULL)
                diag_hint(dg, "write \"\" for an empty string");
        return NULL;
}

/* Registers every scalar text in v as a secret for diagnostics. */
static void add_secrets(struct diag_list *d, const struct value *v) {
        if (!v)
                return;
        if (v->str)
                diag_add_secret(d, v->str, v->len);
        for (size_t i = 0; i < v->n; i++)
                add_secrets(d, v->items[i]);
}

static void set_value(struct spec_var *var, struct value *v, const char *origin,
                      char *origin_buf) {
        value_free(var->value);
        var->value = v;
        free(var->origin_buf);
        var->origin_buf = origin_buf;
        var->origin = origin_buf ? origin_buf : origin;
}

static void declare(struct spec *s, const struct value *key, const struct value *decl,
                    struct diag_list *d) {
        if (!spec_ident_valid(key->str)) {
                struct diag *dg = diag_error(d, &key->mark, value_span(key),
                                             "invalid variable name '%s'", key->str);
                diag_hint(dg, "use letters, digits and _, starting with a letter or _ (the name is also used as KILN_VAR_<name>)");
                return;
        }
        GROW(s->vars, s->nvars, s->vars_cap);
        struct spec_var *var = &s->vars[s->nvars++];
        *var = (struct spec_var){.name = xstrdup(key->str), .decl = key->mark};
        const struct value *def = NULL;
        bool has_default = false;
        if (decl->kind != V_MAP) {
                /* Shorthand: `name: value` declares a variable with that default,
                 * `name:` (null) a required string. */
                if (decl->kind != V_NULL) {
                        def = decl;
                        has_default = true;
                }
                var->type = infer_type(def);
        } else {
                _cleanup_free_ char *what = xasprintf("variable '%s'", key->str);
                schema_check(decl, var_fields, what, d);
                const struct value *t = value_map_get(decl, "type");
                def = value_map_get(decl, "default");
                /* `default: null` (or `default:`) means no default: required. */
                has_default = def && def->kind != V_NULL;
                var->type = infer_type(def);
                if (t && t->kind == V_STRING)
                        for (size_t i = 0; var_types[i]; i++)
                                if (streq(var_types[i], t->str))
                                        var->type = (enum var_type)i;
                const struct value *desc = value_map_get(decl, "description");
                if (desc && desc->kind == V_STRING)
                        var->description = xstrdup(desc->str);
                const struct value *sens = value_map_get(decl, "sensitive");
                var->sensitive = sens && sens->kind == V_BOOL && sens->b;
        }
        if (var->sensitive)
                add_secrets(d, def);
        if (has_default) {
                struct value *v = coerce(value_clone(def), var, false, d);
                if (v)
                        set_value(var, v, "default", NULL);
                else
                        var->failed = true;
        }
}

static void assign(struct spec *s, const char *name, const struct mark *name_mark, struct value *v,
                   const char *origin, char *origin_buf, bool from_text, bool warn_only,
                   struct diag_list *d) {
        struct spec_var *var = find_var(s, name);
        if (!var) {
                _cleanup_free_ const char **names = xcalloc(s->nvars + 1, sizeof(char *));
                for (size_t i = 0; i < s->nvars; i++)
                        names[i] = s->vars[i].name;
                const char *sug = suggest_closest(name, names, s->nvars);
                /* Only the name is underlined, and the line is not quoted:
                 * the value may be a secret. */
                unsigned span = (unsigned)strlen(name);
                struct diag *dg = warn_only
                        ? diag_warning(d, name_mark, span, "%s sets undeclared variable '%s' (ignored)", origin, name)
                        : diag_error(d, name_mark, span, "undeclared variable '%s'", name);
                if (dg)
                        dg->redact = true;
                if (sug)
                        diag_hint(dg, "did you mean '%s'?", sug);
                else
                        diag_hint(dg, "declare it under variables: in %s", s->path);
                value_free(v);
                free(origin_buf);
                return;
        }
        if (var->sensitive) {
                value_set_sensitive(v);
                add_secrets(d, v);
        }
        struct value *c = coerce(v, var, from_text, d);
        if (!c) {
                var->failed = true;
                free(origin_buf);
                return;
        }
        set_value(var, c, origin, origin_buf);
}

/* Reads one --var-file. */
static void load_var_file(struct spec *s, const char *path, struct diag_list *d) {
        struct source *raw = NULL;
        int r = yaml_read_source(path, &raw);
        if (r < 0) {
                struct diag *dg = diag_error(d, NULL, 0, "cannot read var file '%s': %s", path,
                                             strerror(-r));
                if (r == -E2BIG)
                        diag_hint(dg, "var files are limited to %u MiB", YAML_MAX_BYTES >> 20);
                return;
        }
        raw->redact = true; /* var files hold secrets */
        const struct source *src = spec_add_source(s, raw);
        _cleanup_value_ struct value *doc = NULL;
        if (yaml_load(src, d, &doc) < 0)
                return;
        if (doc->kind == V_NULL)
                return;
        if (doc->kind != V_MAP) {
                struct diag *dg = diag_error(d, &doc->mark, 1,
                                             "a var file must be a map of variable names to values, not a %s",
                                             value_kind_name(doc->kind));
                diag_hint(dg, "e.g. kubernetes_version: \"1.28.3\"");
                return;
        }
        for (size_t i = 0; i < doc->n; i++)
                assign(s, doc->keys[i]->str, &doc->keys[i]->mark, value_clone(doc->items[i]),
                       "var file", xasprintf("var file %s", path), false, false, d);
}

/* NAME=VALUE from the environment or the command line. */
static void assign_text(struct spec *s, const char *path, const char *text, size_t name_off,
                        const char *origin, bool warn_only, struct diag_list *d) {
        struct source *raw = source_new(path, text, strlen(text));
        raw->redact = true; /* the value may be a secret */
        const struct source *src = spec_add_source(s, raw);
        const char *eq = strchr(text + name_off, '=');
        if (!eq || eq == text + name_off) {
                /* The text is not echoed: it may be a secret. */
                struct diag *dg = diag_error(d, &(struct mark){src, 1, 1}, 1,
                                             "expected NAME=VALUE, but the variable name is missing");
                diag_hint(dg, "e.g. --var kubernetes_version=1.28.3");
                return;
        }
        _cleanup_free_ char *name = xstrndup(text + name_off, (size_t)(eq - text - name_off));
        struct mark m = {src, 1, (unsigned)(eq - text) + 2};
        struct value *v = value_new_string(eq + 1, &m);
        v->style = STYLE_PLAIN;
        assign(s, name, &(struct mark){src, 1, (unsigned)name_off + 1}, v, origin, NULL, true,
               warn_only, d);
}

static bool validate_one(const struct spec_var *var, const struct value *rule,
                         const struct value *v, struct diag_list *d) {
        if (!value_is_scalar(v) || v->kind == V_NULL)
                return true;
        const struct value *re = value_map_get(rule, "regex");
        const struct value *allowed = value_map_get(rule, "allowed");
        const struct value *msg = value_map_get(rule, "message");
        const char *shown = var->sensitive ? SENSITIVE_PLACEHOLDER : v->str;
        _cleanup_free_ char *why = NULL;
        if (re && re->kind == V_STRING) {
                regex_t rx;
                if (regcomp(&rx, re->str, REG_EXTENDED | REG_NOSUB) != 0)
                        return true; /* reported when the declaration was checked */
                bool ok = regexec(&rx, v->str, 0, NULL, 0) == 0;
                regfree(&rx);
                if (!ok)
                        why = xasprintf("'%s' does not match /%s/", shown, re->str);
        }
        if (!why && allowed && allowed->kind == V_LIST) {
                bool ok = false;
                struct strbuf list = STRBUF_INIT;
                for (size_t i = 0; i < allowed->n; i++) {
                        if (allowed->items[i]->str && streq(allowed->items[i]->str, v->str))
                                ok = true;
                        strbuf_addf(&list, "%s%s", i ? ", " : "",
                                    allowed->items[i]->str ? allowed->items[i]->str : "?");
                }
                if (!ok)
                        why = xasprintf("'%s' is not one of: %s", shown, strbuf_str(&list));
                strbuf_free(&list);
        }
        if (!why)
                return true;
        struct diag *dg = diag_error(d, &v->mark, value_span(v),
                                     "invalid value for variable '%s': %s", var->name,
                                     msg && msg->kind == V_STRING ? msg->str : why);
        if (dg) {
                dg->redact = var->sensitive;
                if (msg && msg->kind == V_STRING)
                        diag_hint(dg, "%s", why);
        }
        return false;
}

/* Checks the validation rules of a declaration: shape and regex syntax. */
static void check_rules(const struct spec_var *var, const struct value *rules,
                        struct diag_list *d) {
        const struct value *list[64];
        size_t n = 0;
        if (rules->kind == V_LIST)
                for (size_t i = 0; i < rules->n && n < ARRAY_SIZE(list); i++)
                        list[n++] = rules->items[i];
        else
                list[n++] = rules;
        _cleanup_free_ char *what = xasprintf("validation of variable '%s'", var->name);
        for (size_t i = 0; i < n; i++) {
                if (schema_check(list[i], validation_fields, what, d))
                        continue;
                const struct value *re = value_map_get(list[i], "regex");
                if (!re && !value_map_get(list[i], "allowed")) {
                        struct diag *dg = diag_error(d, &list[i]->mark, 1, "%s: no rule given", what);
                        diag_hint(dg, "give regex: or allowed:");
                }
                if (re && re->kind == V_STRING) {
                        regex_t rx;
                        int rc = regcomp(&rx, re->str, REG_EXTENDED | REG_NOSUB);
                        if (rc != 0) {
                                char buf[128];
                                regerror(rc, &rx, buf, sizeof(buf));
                                diag_error(d, &re->mark, value_span(re),
                                           "%s: invalid regex: %s", what, buf);
                        } else {
                                regfree(&rx);
                        }
                }
        }
}

static void validate_var(const struct spec_var *var, const struct value *decl,
                         struct diag_list *d) {
        const struct value *rules = value_map_get(decl, "validation");
        if (!rules || !var->value)
                return;
        const struct value *list[64];
        size_t n = 0;
        if (rules->kind == V_LIST)
                for (size_t i = 0; i < rules->n && n < ARRAY_SIZE(list); i++)
                        list[n++] = rules->items[i];
        else if (rules->kind == V_MAP)
                list[n++] = rules;
        for (size_t i = 0; i < n; i++) {
                if (list[i]->kind != V_MAP)
                        continue;
                if (var->value->kind == V_LIST) {
                        bool ok = true;
                        for (size_t j = 0; j < var->value->n && ok; j++)
                                ok = validate_one(var, list[i], var->value->items[j], d);
                } else {
                        validate_one(var, list[i], var->value, d);
                }
        }
}

/* Registers the lines of the declaration decls->keys[i] (a sensitive
 * variable) as never quoted: from its key to the line before the next key
 * of the variables map (or, for the last one, of the document after
 * variables:); to the end of the source when nothing follows. When that
 * next key is in flow style ({...}, JSON), its own line may still hold the
 * end of the declaration, and is included. Whole declarations rather than
 * the default's value: a dropped duplicate `default:` must be covered too. */
static void redact_declaration(const struct spec *s, const struct value *decls, size_t i,
                               struct diag_list *d) {
        const struct value *key = decls->keys[i];
        const struct value *next = NULL, *container = decls;
        if (i + 1 < decls->n) {
                next = decls->keys[i + 1];
        } else if (s->doc && s->doc->kind == V_MAP) {
                container = s->doc;
                for (size_t j = 0; j + 1 < s->doc->n; j++)
                        if (s->doc->items[j] == decls)
                                next = s->doc->keys[j + 1];
        }
        unsigned last = UINT_MAX;
        if (next && next->mark.src == key->mark.src && next->mark.line > key->mark.line)
                last = container->style == STYLE_PLAIN ? next->mark.line - 1 : next->mark.line;
        else if (next && next->mark.src == key->mark.src)
                last = key->mark.line;
        diag_redact_lines(d, key->mark.src, key->mark.line, last);
}

void vars_load(struct spec *s, const struct value *decls, const struct spec_options *o,
               struct diag_list *d) {
        if (decls && decls->kind == V_MAP)
                for (size_t i = 0; i < decls->n; i++) {
                        size_t before = s->nvars;
                        declare(s, decls->keys[i], decls->items[i], d);
                        if (s->nvars > before && s->vars[before].sensitive)
                                redact_declaration(s, decls, i, d);
                }
        else if (decls && decls->kind != V_NULL) {
                struct diag *dg = diag_error(d, &decls->mark, 1,
                                             "variables: expected a map of variable names, got a %s",
                                             value_kind_name(decls->kind));
                diag_hint(dg, "e.g. variables: { suite: { default: bookworm } }");
        }
        for (size_t i = 0; i < s->nvars; i++) {
                const struct value *decl = value_map_get(decls, s->vars[i].name);
                const struct value *rules = value_map_get(decl, "validation");
                if (rules)
                        check_rules(&s->vars[i], rules, d);
        }

        for (size_t i = 0; i < o->nvar_files; i++)
                load_var_file(s, o->var_files[i], d);

        if (o->environ)
                for (char *const *e = o->environ; *e; e++)
                        if (startswith(*e, VAR_ENV_PREFIX) && strchr(*e, '='))
                                assign_text(s, "<environment>", *e, strlen(VAR_ENV_PREFIX),
                                            "environment", true, d);

        for (size_t i = 0; i < o->nvars; i++)
                assign_text(s, "--var", o->vars[i], 0, "command line", false, d);

        for (size_t i = 0; i < s->nvars; i++) {
                struct spec_var *var = &s->vars[i];
                if (!var->value && var->failed)
                        continue;
                if (!var->value) {
                        struct diag *dg = diag_error(d, &var->decl, (unsigned)strlen(var->name),
                                                     "variable '%s' has no value", var->name);
                        diag_hint(dg, "set it with --var %s=..., KILN_VAR_%s or a var file, or give it a default",
                                  var->name, var->name);
                        continue;
                }
                if (var->sensitive)
                        value_set_sensitive(var->value);
                validate_var(var, value_map_get(decls, var->name), d);
        }
}

struct value *vars_scope(const struct spec *s) {
        struct value *m = value_new(V_MAP, NULL);
        for (size_t i = 0; i < s->nvars; i++) {
                struct value *v = value_clone(s->vars[i].value);
                if (!v) {
                        /* Unset (already reported): uses of it fail quietly. */
                        v = value_new(V_NULL, &s->vars[i].decl);
                        v->invalid = true;
                }
                value_map_append(m, value_new_string(s->vars[i].name, &s->vars[i].decl), v);
        }
        return m;
}

static void collect_secrets(const struct value *v, const char ***list, size_t *n) {
        if (!v)
                return;
        if (v->str && v->len) {
                *list = xreallocarray(*list, *n + 2, sizeof(char *));
                (*list)[(*n)++] = v->str;
                (*list)[*n] = NULL;
        }
        for (size_t i = 0; i < v->n; i++)
                collect_secrets(v->items[i], list, n);
}

const char **spec_secrets(const struct spec *s) {
        const char **list = xcalloc(1, sizeof(char *));
        size_t n = 0;
        for (size_t i = 0; i < s->nvars; i++)
                if (s->vars[i].sensitive)
                        collect_secrets(s->vars[i].value, &list, &n);
        return list;
}
