/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz entry point for the `checks:` section (src/check/parse.c), given a
 * spec that loads. The input is one checks document, used the three ways
 * kiln reads one: written inline as a build's `checks:` value, as the
 * checks file that another build names (relative to the spec's
 * directory), and as a file named on the command line (kiln check
 * --checks). Each is parsed as the CLI loads it (pipeline_load), every check
 * is described, and the diagnostics are rendered.
 *
 *   make fuzz && ./build-fuzz/fuzz_checks tests/fuzz/corpus-checks
 */
#include "fuzz.h"

#include "check/check.h"
#include "pipeline/pipeline.h"
#include "spec/spec.h"

static void fuzz_checks_describe(const struct check_list *l) {
        for (size_t i = 0; i < l->n; i++)
                free(check_describe(&l->v[i]));
}

int fuzz_checks_one(const uint8_t *data, size_t size);

int fuzz_checks_one(const uint8_t *data, size_t size) {
        const char *dir = fuzz_dir();
        _cleanup_free_ char *file = fuzz_write(dir, "checks.yaml", data, size);
        _cleanup_free_ char *spec_path = xasprintf("%s/kiln.yaml", dir);
        size_t len;
        _cleanup_free_ char *text = fuzz_embed(
                "builds:\n"
                "  inline:\n"
                "    source: {type: debian, suite: bookworm}\n"
                "    checks:\n",
                data, size, 6,
                "  from-file:\n"
                "    source: {type: debian, suite: bookworm}\n"
                "    checks: checks.yaml\n"
                "  again:\n"
                "    from: from-file\n",
                &len);
        struct diag_list d = {0};
        struct spec *s = NULL;
        struct spec_options o = {.path = spec_path, .text = text, .text_len = len, .now = 1700000000};
        if (pipeline_load(&o, &d, &s) >= 0)
                for (size_t i = 0; i < s->nbuilds; i++)
                        if (check_list_of(s->builds[i]))
                                fuzz_checks_describe(check_list_of(s->builds[i]));
        struct check_list l;
        check_list_load(file, &d, &l);
        fuzz_checks_describe(&l);
        check_list_done(&l);

        struct strbuf out = STRBUF_INIT;
        fuzz_render(NULL, &d, &out);
        strbuf_free(&out);
        spec_free(s);
        diag_list_done(&d);
        return 0;
}

FUZZ_ENTRY(fuzz_checks_one)
