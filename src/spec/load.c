/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spec_load: read the file, check the top level, then hand `variables:` to
 * vars.c and `builds:` to builds.c. Each stage keeps going after errors so
 * that one run reports as much as possible; stages whose input is unusable
 * are skipped rather than fed garbage.
 */
#include "spec/spec-internal.h"

#include "spec/schema.h"
#include "spec/yaml.h"

#include <libgen.h>

static const struct field top_fields[] = {
        {"kiln", FT_INT, 0, NULL, NULL, "spec format version (1)"},
        {"description", FT_STRING, 0, NULL, NULL, "what this spec builds"},
        {"variables", FT_ANY, 0, NULL, NULL, "inputs that can be set from outside"},
        {"builds", FT_ANY, F_REQUIRED, NULL, NULL, "the images, by name"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

time_t spec_now(void) {
        const char *e = getenv("SOURCE_DATE_EPOCH");
        if (e && *e) {
                char *end;
                errno = 0;
                long long v = strtoll(e, &end, 10);
                if (!errno && !*end && v >= 0)
                        return (time_t)v;
        }
        return time(NULL);
}

const struct source *spec_add_source(struct spec *s, struct source *src) {
        GROW(s->sources, s->nsources, s->sources_cap);
        s->sources[s->nsources++] = src;
        return src;
}

const struct spec_build *spec_find_build(const struct spec *s, const char *name) {
        for (size_t i = 0; i < s->nbuilds; i++)
                if (streq(s->builds[i]->name, name))
                        return s->builds[i];
        return NULL;
}

static void build_free(struct spec_build *b) {
        free(b->name);
        free(b->id);
        free(b->base);
        free(b->description);
        free(b->arch);
        free(b->role);
        for (size_t i = 0; i < b->naxes; i++) {
                free(b->axes[i].name);
                free(b->axes[i].value);
        }
        free(b->axes);
        free(b->from);
        value_free(b->source);
        for (size_t i = 0; i < b->nsteps; i++) {
                free(b->steps[i].name);
                value_free(b->steps[i].params);
        }
        free(b->steps);
        value_free(b->disk);
        value_free(b->outputs);
        value_free(b->checks);
        value_free(b->publish);
        value_free(b->boot_check_opts);
        value_free(b->labels);
        for (size_t i = 0; i < b->nfiles_read; i++)
                free(b->files_read[i]);
        free(b->files_read);
        free(b);
}

struct spec *spec_free(struct spec *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->nbuilds; i++)
                build_free(s->builds[i]);
        free(s->builds);
        for (size_t i = 0; i < s->nvars; i++) {
                free(s->vars[i].name);
                free(s->vars[i].description);
                free(s->vars[i].origin_buf);
                value_free(s->vars[i].value);
        }
        free(s->vars);
        value_free(s->doc);
        for (size_t i = 0; i < s->nsources; i++)
                source_free(s->sources[i]);
        free(s->sources);
        free(s->path);
        free(s->dir);
        free(s->description);
        free(s->timestamp);
        free(s);
        return NULL;
}

static int load(struct spec *s, const struct spec_options *o, struct diag_list *d) {
        size_t errors_before = d->nerrors;
        s->path = xstrdup(o->path);
        _cleanup_free_ char *tmp = xstrdup(o->path);
        /* Absolute, so that relative paths in the spec (file sources,
         * playbooks, file()) mean the same from any working directory. */
        char *real = realpath(dirname(tmp), NULL);
        s->dir = real ? real : xstrdup(dirname(tmp));

        struct tm tm;
        time_t now = o->now;
        if (!gmtime_r(&now, &tm))
                return -EINVAL;
        char ts[32];
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        s->timestamp = xstrdup(ts);

        struct source *raw = NULL;
        int r = 0;
        if (o->text) {
                if (o->text_len > YAML_MAX_BYTES)
                        r = -E2BIG;
                else
                        raw = source_new(o->path, o->text, o->text_len);
        } else {
                r = yaml_read_source(o->path, &raw);
        }
        if (r < 0) {
                struct diag *dg =
                        r == -E2BIG ? diag_error(d, NULL, 0,
                                                 "cannot read spec '%s': larger than %u MiB",
                                                 o->path, YAML_MAX_BYTES >> 20)
                                    : diag_error(d, NULL, 0, "cannot read spec '%s': %s",
                                                 o->path, strerror(-r));
                if (r == -E2BIG)
                        diag_hint(dg, "specs are limited to %u MiB", YAML_MAX_BYTES >> 20);
                return r;
        }
        const struct source *src = spec_add_source(s, raw);
        r = yaml_load(src, d, &s->doc);
        if (r < 0)
                return -EINVAL;
        if (s->doc->kind != V_MAP) {
                struct diag *dg =
                        s->doc->kind == V_NULL
                                ? diag_error(d, &s->doc->mark, 1, "the spec is empty")
                                : diag_error(d, &s->doc->mark, 1, "the spec must be a map, not a %s",
                                             value_kind_name(s->doc->kind));
                diag_hint(dg, "a spec has at least `builds:`; see docs/spec.md");
                return -EINVAL;
        }
        schema_check(s->doc, top_fields, "the spec", d);
        const struct value *ver = value_map_get(s->doc, "kiln");
        if (ver && ver->kind == V_NUMBER && ver->num != SPEC_FORMAT_VERSION) {
                struct diag *dg = diag_error(d, &ver->mark, value_span(ver),
                                             "spec format version %s is not supported", ver->str);
                diag_hint(dg, "this kiln reads version %d", SPEC_FORMAT_VERSION);
        }
        const struct value *desc = value_map_get(s->doc, "description");
        if (desc && desc->kind == V_STRING)
                s->description = xstrdup(desc->str);

        vars_load(s, value_map_get(s->doc, "variables"), o, d);
        const struct value *builds = value_map_get(s->doc, "builds");
        if (builds)
                builds_load(s, builds, o, d);
        /* Not after the interpolation budget ran out: the builds are cut
         * short, and the checks would only add noise. */
        if (o->check_sections && !s->budget.exhausted)
                o->check_sections(s, d, o->check_arg);

        return d->nerrors > errors_before ? -EINVAL : 0;
}

int spec_load(const struct spec_options *o, struct diag_list *d, struct spec **ret) {
        struct spec *s = xcalloc(1, sizeof(*s));
        int r = load(s, o, d);
        if (r < 0) {
                /* Diagnostics point into the sources: hand them over. */
                for (size_t i = 0; i < s->nsources; i++)
                        diag_adopt_source(d, s->sources[i]);
                s->nsources = 0;
                spec_free(s);
                return r;
        }
        *ret = s;
        return 0;
}
