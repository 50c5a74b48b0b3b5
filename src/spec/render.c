/* SPDX-License-Identifier: Apache-2.0 */
#include "spec/render.h"

#include "base/arch.h"
#include "base/json.h"

#define BOLD(c) ((c) ? "\033[1m" : "")
#define DIM(c) ((c) ? "\033[2m" : "")
#define RESET(c) ((c) ? "\033[0m" : "")

/* Text from the spec (descriptions, parameters, paths) is shown with
 * control characters escaped, as diagnostics show it: a value must not be
 * able to drive the terminal. Names are checked simple names already. */
static void add_text(struct strbuf *out, const char *s) {
        diag_add_display(out, s, strlen(s));
}

/* value_format, escaped for a terminal. */
static void add_value(const struct value *v, struct strbuf *out) {
        _cleanup_strbuf_ struct strbuf tmp = STRBUF_INIT;
        value_format(v, &tmp);
        diag_add_display(out, tmp.buf ? tmp.buf : "", tmp.len);
}

static void add_parent_chain(const struct spec_build *b, struct strbuf *out) {
        if (!b->parent) {
                strbuf_adds(out, "(none)");
                return;
        }
        for (const struct spec_build *p = b->parent; p; p = p->parent)
                strbuf_addf(out, "%s%s", p == b->parent ? "" : " <- ", p->name);
}

/* One parameter per line: "key: value", values in flow form. Multi-line
 * strings are shown with their lines indented below the key. */
static void add_params(const struct value *params, struct strbuf *out, const char *indent) {
        if (!params || params->kind != V_MAP)
                return;
        for (size_t i = 0; i < params->n; i++) {
                const struct value *v = params->items[i];
                strbuf_adds(out, indent);
                add_text(out, params->keys[i]->str);
                strbuf_adds(out, ": ");
                if (!v->sensitive && v->kind == V_STRING && strchr(v->str, '\n')) {
                        strbuf_adds(out, "|\n");
                        const char *p = v->str;
                        while (*p) {
                                const char *nl = strchrnul(p, '\n');
                                strbuf_addf(out, "%s  ", indent);
                                diag_add_display(out, p, (size_t)(nl - p));
                                strbuf_addc(out, '\n');
                                p = *nl ? nl + 1 : nl;
                        }
                        continue;
                }
                add_value(v, out);
                strbuf_addc(out, '\n');
        }
}

static void add_section(const char *key, const struct value *v, const char *from,
                        struct strbuf *out, bool color) {
        if (!v)
                return;
        strbuf_addf(out, "  %-10s ", key);
        add_value(v, out);
        if (from)
                strbuf_addf(out, "  %s(from %s)%s", DIM(color), from, RESET(color));
        strbuf_addc(out, '\n');
}

void spec_render_text(const struct spec *s, struct strbuf *out, bool color) {
        strbuf_addf(out, "%sspec%s        ", BOLD(color), RESET(color));
        add_text(out, s->path);
        strbuf_addc(out, '\n');
        if (s->description) {
                strbuf_addf(out, "%sdescription%s ", BOLD(color), RESET(color));
                add_text(out, s->description);
                strbuf_addc(out, '\n');
        }
        strbuf_addf(out, "%stimestamp%s   %s\n", BOLD(color), RESET(color), s->timestamp);
        if (s->nvars) {
                strbuf_addf(out, "%svariables%s\n", BOLD(color), RESET(color));
                size_t w = 0;
                for (size_t i = 0; i < s->nvars; i++)
                        if (strlen(s->vars[i].name) > w)
                                w = strlen(s->vars[i].name);
                for (size_t i = 0; i < s->nvars; i++) {
                        const struct spec_var *v = &s->vars[i];
                        strbuf_addf(out, "  %-*s = ", (int)w, v->name);
                        if (v->sensitive)
                                strbuf_adds(out, SENSITIVE_PLACEHOLDER);
                        else if (v->value && v->value->kind == V_STRING) {
                                _cleanup_strbuf_ struct strbuf q = STRBUF_INIT;
                                json_escape(&q, v->value->str, v->value->len);
                                diag_add_display(out, q.buf, q.len);
                        } else
                                add_value(v->value, out);
                        strbuf_addf(out, "  %s(%s, ", DIM(color), var_type_name(v->type));
                        add_text(out, v->origin ? v->origin : "unset");
                        strbuf_addf(out, ")%s\n", RESET(color));
                }
        }
        size_t shown = 0;
        for (size_t i = 0; i < s->nbuilds; i++)
                shown += s->builds[i]->needed;
        strbuf_addf(out, "%sbuilds%s      %zu\n", BOLD(color), RESET(color), shown);
        for (size_t i = 0; i < s->nbuilds; i++) {
                const struct spec_build *b = s->builds[i];
                if (!b->needed)
                        continue;
                strbuf_addf(out, "\n%sbuild %s%s", BOLD(color), b->name, RESET(color));
                if (!b->selected)
                        strbuf_addf(out, "  %s(needed as a parent)%s", DIM(color), RESET(color));
                strbuf_addc(out, '\n');
                if (b->description) {
                        strbuf_addf(out, "  %-10s ", "about");
                        add_text(out, b->description);
                        strbuf_addc(out, '\n');
                }
                strbuf_addf(out, "  %-10s %s\n", "arch", b->arch);
                if (b->role)
                        strbuf_addf(out, "  %-10s %s\n", "role", b->role);
                if (b->naxes) {
                        strbuf_addf(out, "  %-10s", "matrix");
                        for (size_t j = 0; j < b->naxes; j++)
                                strbuf_addf(out, " %s=%s", b->axes[j].name, b->axes[j].value);
                        strbuf_addc(out, '\n');
                }
                strbuf_addf(out, "  %-10s ", "parents");
                add_parent_chain(b, out);
                strbuf_addc(out, '\n');
                if (b->source) {
                        strbuf_addf(out, "  %-10s ", "source");
                        add_value(b->source, out);
                        strbuf_addc(out, '\n');
                }
                if (b->nsteps) {
                        strbuf_addf(out, "  steps\n");
                        for (size_t j = 0; j < b->nsteps; j++) {
                                const struct spec_step *st = &b->steps[j];
                                strbuf_addf(out, "    %2u. %s%s%s", st->index, BOLD(color), st->kind,
                                            RESET(color));
                                if (st->name) {
                                        strbuf_adds(out, " \"");
                                        add_text(out, st->name);
                                        strbuf_addc(out, '"');
                                }
                                if (!st->network)
                                        strbuf_adds(out, " (no network)");
                                strbuf_addc(out, '\n');
                                add_params(st->params, out, "        ");
                        }
                }
                add_section("disk", b->disk, b->disk_from, out, color);
                add_section("outputs", b->outputs, b->outputs_from, out, color);
                add_section("checks", b->checks, b->checks_from, out, color);
                add_section("publish", b->publish, b->publish_from, out, color);
                add_section("labels", b->labels, NULL, out, color);
        }
}

static void json_section(struct json_writer *w, const char *key, const struct value *v) {
        json_key(w, key);
        value_to_json(v, w);
}

void spec_render_json(const struct spec *s, struct strbuf *out) {
        struct json_writer w;
        json_init(&w, out, true);
        json_begin_object(&w);
        json_key(&w, "schema_version");
        json_int(&w, INSPECT_SCHEMA_VERSION);
        json_key(&w, "spec");
        json_string(&w, s->path);
        json_key(&w, "description");
        json_string(&w, s->description);
        json_key(&w, "timestamp");
        json_string(&w, s->timestamp);
        json_key(&w, "variables");
        json_begin_array(&w);
        for (size_t i = 0; i < s->nvars; i++) {
                const struct spec_var *v = &s->vars[i];
                json_begin_object(&w);
                json_key(&w, "name");
                json_string(&w, v->name);
                json_key(&w, "type");
                json_string(&w, var_type_name(v->type));
                json_key(&w, "sensitive");
                json_bool(&w, v->sensitive);
                json_key(&w, "value");
                if (v->sensitive)
                        json_string(&w, SENSITIVE_PLACEHOLDER);
                else
                        value_to_json(v->value, &w);
                json_key(&w, "origin");
                json_string(&w, v->origin);
                json_key(&w, "description");
                json_string(&w, v->description);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_key(&w, "builds");
        json_begin_array(&w);
        for (size_t i = 0; i < s->nbuilds; i++) {
                const struct spec_build *b = s->builds[i];
                if (!b->needed)
                        continue;
                json_begin_object(&w);
                json_key(&w, "name");
                json_string(&w, b->name);
                json_key(&w, "base");
                json_string(&w, b->base);
                json_key(&w, "description");
                json_string(&w, b->description);
                json_key(&w, "arch");
                json_string(&w, b->arch);
                json_key(&w, "debian_arch");
                json_string(&w, arch_find(b->arch)->debian);
                json_key(&w, "role");
                json_string(&w, b->role);
                json_key(&w, "matrix");
                json_begin_object(&w);
                for (size_t j = 0; j < b->naxes; j++) {
                        json_key(&w, b->axes[j].name);
                        json_string(&w, b->axes[j].value);
                }
                json_end_object(&w);
                json_key(&w, "selected");
                json_bool(&w, b->selected);
                json_key(&w, "parent");
                json_string(&w, b->parent ? b->parent->name : NULL);
                json_key(&w, "parents");
                json_begin_array(&w);
                for (const struct spec_build *p = b->parent; p; p = p->parent)
                        json_string(&w, p->name);
                json_end_array(&w);
                json_section(&w, "source", b->source);
                json_key(&w, "steps");
                json_begin_array(&w);
                for (size_t j = 0; j < b->nsteps; j++) {
                        const struct spec_step *st = &b->steps[j];
                        json_begin_object(&w);
                        json_key(&w, "index");
                        json_int(&w, st->index);
                        json_key(&w, "kind");
                        json_string(&w, st->kind);
                        json_key(&w, "name");
                        json_string(&w, st->name);
                        json_key(&w, "network");
                        json_bool(&w, st->network);
                        json_section(&w, "params", st->params);
                        json_end_object(&w);
                }
                json_end_array(&w);
                json_section(&w, "disk", b->disk);
                json_section(&w, "outputs", b->outputs);
                json_section(&w, "checks", b->checks);
                json_section(&w, "publish", b->publish);
                json_section(&w, "labels", b->labels);
                json_key(&w, "inherited");
                json_begin_object(&w);
                if (b->disk_from) {
                        json_key(&w, "disk");
                        json_string(&w, b->disk_from);
                }
                if (b->outputs_from) {
                        json_key(&w, "outputs");
                        json_string(&w, b->outputs_from);
                }
                if (b->checks_from) {
                        json_key(&w, "checks");
                        json_string(&w, b->checks_from);
                }
                if (b->publish_from) {
                        json_key(&w, "publish");
                        json_string(&w, b->publish_from);
                }
                json_end_object(&w);
                json_key(&w, "files_read");
                json_begin_array(&w);
                for (size_t j = 0; j < b->nfiles_read; j++)
                        json_string(&w, b->files_read[j]);
                json_end_array(&w);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
        strbuf_addc(out, '\n');
}
