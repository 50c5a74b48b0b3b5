/* SPDX-License-Identifier: Apache-2.0 */
/*
 * section.c — the check engine's spec sections (spec/section.h): `checks:`
 * (a list, a goss-style map or a checks file's name: struct check_list)
 * and `boot_check:` (true/false or a map of options: struct
 * check_boot_policy). Each is parsed once, when the spec loads, and read
 * back by whoever runs the checks.
 */
#include "check/check.h"

#include "spec/section.h"

static void checks_validate(struct value *v, const struct spec_section_ctx *ctx, struct diag_list *d) {
        spec_section_expect_collection(v, ctx, true, d);
}

static void checks_free(void *p) {
        if (p)
                check_list_done(p);
        free(p);
}

static int checks_parse(const struct value *v, const struct spec_section_ctx *ctx, struct diag_list *d,
                        void **ret) {
        _cleanup_free_ char *base = check_base_dir(ctx->spec);
        struct check_list *l = xcalloc(1, sizeof(*l));
        int r = check_list_parse(v, base, d, l);
        *ret = l;
        return r;
}

/* A checks file is read once, however many builds name it: its
 * diagnostics would otherwise repeat (each read is a new source). */
static bool checks_same_file(const struct spec *s, const struct spec_build *b,
                             const struct spec_build *prev) {
        return b->checks->kind == V_STRING && prev->checks->kind == V_STRING &&
               streq(b->checks->str, prev->checks->str);
}

const struct spec_section check_checks_section = {
        .key = "checks",
        .validate = checks_validate,
        .parse = checks_parse,
        .free_parsed = checks_free,
        .same_as = checks_same_file,
};

const struct check_list *check_list_of(const struct spec_build *b) {
        return spec_build_section(b, &check_checks_section);
}

static void policy_free(void *p) {
        if (p)
                check_boot_policy_done(p);
        free(p);
}

static int policy_parse(const struct value *v, const struct spec_section_ctx *ctx, struct diag_list *d,
                        void **ret) {
        struct check_boot_policy *p = xcalloc(1, sizeof(*p));
        int r = check_boot_policy_parse(v, ctx->what, d, p);
        *ret = p;
        return r;
}

/* Matrix cells share one written boot_check: (the same place). */
static bool policy_same_place(const struct spec *s, const struct spec_build *b,
                              const struct spec_build *prev) {
        const struct mark *m = &b->boot_check_opts->mark, *o = &prev->boot_check_opts->mark;
        return m->src == o->src && m->line == o->line && m->col == o->col;
}

const struct spec_section check_boot_section = {
        .key = "boot_check",
        .parse = policy_parse,
        .free_parsed = policy_free,
        .same_as = policy_same_place,
};

void check_boot_policy_of(const struct spec_build *b, struct check_boot_policy *ret) {
        const struct check_boot_policy *p = spec_build_section(b, &check_boot_section);
        *ret = p ? *p : (struct check_boot_policy){0};
}
