/* SPDX-License-Identifier: Apache-2.0 */
/*
 * section.c — the registry's side in the spec layer (section.h): finding a
 * registered section, and the parse pass at the end of loading that gives
 * every needed build the typed struct of each of its sections.
 *
 * Which diagnostics a parse may add: a section written in this build is
 * parsed aloud; an inherited copy (from:) is parsed quietly, because the
 * parent — needed too, and parsed earlier, parents come first — reported
 * the same content; and so is a section its owner calls the same as an
 * earlier build's (same_as: one checks file named by several builds).
 */
#include "spec/spec-internal.h"

#include "spec/section.h"

const struct spec_section *spec_section_find(const struct spec *s, const char *key) {
        for (size_t i = 0; i < s->nsections; i++)
                if (streq(s->sections[i]->key, key))
                        return s->sections[i];
        return NULL;
}

const void *spec_build_section(const struct spec_build *b, const struct spec_section *sec) {
        for (size_t i = 0; b && b->parsed_by && b->parsed_by[i]; i++)
                if (b->parsed_by[i] == sec)
                        return b->parsed[i];
        return NULL;
}

void spec_section_expect_collection(struct value *v, const struct spec_section_ctx *ctx,
                                    bool allow_string, struct diag_list *d) {
        if (!v || v->invalid)
                return;
        if (v->kind == V_MAP || v->kind == V_LIST || (allow_string && v->kind == V_STRING))
                return;
        diag_error(d, &v->mark, 1, "%s: %s: expected a map or a list%s, got a %s", ctx->what,
                   ctx->key, allow_string ? " (or a file name)" : "", value_kind_name(v->kind));
        v->invalid = true;
}

void sections_validate(const struct spec *s, const struct spec_build *b, const char *key,
                             struct value *v, const char *what, struct diag_list *d) {
        const struct spec_section *sec = spec_section_find(s, key);
        if (!sec || !sec->validate)
                return;
        struct spec_section_ctx ctx = {.spec = s, .build = b, .what = what, .key = key};
        sec->validate(v, &ctx, d);
}

/* Where build b keeps the section under key, and whether b inherited it
 * rather than wrote it. The spec's document model has these sections as
 * values (spec.h) and renders them; what is inside is the owner's. */
static const struct value *section_value(const struct spec_build *b, const char *key,
                                         bool *ret_inherited) {
        static const struct {
                const char *key;
                size_t value, from;
        } slots[] = {
                {"disk", offsetof(struct spec_build, disk), offsetof(struct spec_build, disk_from)},
                {"outputs", offsetof(struct spec_build, outputs), offsetof(struct spec_build, outputs_from)},
                {"checks", offsetof(struct spec_build, checks), offsetof(struct spec_build, checks_from)},
                {"publish", offsetof(struct spec_build, publish), offsetof(struct spec_build, publish_from)},
                {"boot_check", offsetof(struct spec_build, boot_check_opts), 0},
        };
        for (size_t i = 0; i < ARRAY_SIZE(slots); i++) {
                if (!streq(slots[i].key, key))
                        continue;
                const char *base = (const char *)b;
                if (slots[i].from)
                        *ret_inherited = *(const char *const *)(base + slots[i].from) != NULL;
                else
                        *ret_inherited = !b->boot_check_set; /* boot_check: inherits as a whole */
                return *(struct value *const *)(base + slots[i].value);
        }
        *ret_inherited = false;
        return NULL;
}

void sections_parse(struct spec *s, struct diag_list *d) {
        for (size_t i = 0; i < s->nbuilds; i++) {
                struct spec_build *b = s->builds[i];
                b->parsed = xcalloc(s->nsections + 1, sizeof(*b->parsed));
                b->parsed_by = s->sections;
        }
        /* Section by section, builds in order (parents first). */
        for (size_t k = 0; k < s->nsections; k++) {
                const struct spec_section *sec = s->sections[k];
                if (!sec->parse)
                        continue;
                for (size_t i = 0; i < s->nbuilds; i++) {
                        struct spec_build *b = s->builds[i];
                        bool inherited;
                        const struct value *v = section_value(b, sec->key, &inherited);
                        if (!b->needed || !v)
                                continue;
                        bool quiet = inherited;
                        for (size_t j = 0; j < i && !quiet && sec->same_as; j++) {
                                bool prev_inherited;
                                quiet = s->builds[j]->needed &&
                                        section_value(s->builds[j], sec->key, &prev_inherited) &&
                                        sec->same_as(s, b, s->builds[j]);
                        }
                        _cleanup_free_ char *what = xasprintf("build '%s'", b->base ? b->base : b->name);
                        struct spec_section_ctx ctx = {
                                .spec = s, .build = b, .what = what, .key = sec->key, .quiet = quiet};
                        struct diag_list scratch = {0};
                        void *parsed = NULL;
                        int r = sec->parse(v, &ctx, quiet ? &scratch : d, &parsed);
                        if (quiet && r < 0 && parsed) {
                                /* its marks may point into sources scratch adopted */
                                sec->free_parsed(parsed);
                                parsed = NULL;
                        }
                        diag_list_done(&scratch);
                        b->parsed[k] = parsed;
                }
        }
}

void sections_free(const struct spec *s, struct spec_build *b) {
        for (size_t k = 0; b->parsed && k < s->nsections; k++)
                if (b->parsed[k] && s->sections[k]->free_parsed)
                        s->sections[k]->free_parsed(b->parsed[k]);
        free(b->parsed);
}
