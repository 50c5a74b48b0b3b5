/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz entry point for `--var NAME=VALUE` and KILN_VAR_<name>=VALUE: both
 * reach the spec loader as text (the CLI only keeps --var arguments for
 * spec_load; src/spec/vars.c splits, types and validates them). The input
 * is a list of NUL-separated entries; an entry starting with 'E' is the
 * environment string KILN_VAR_<rest>, any other one is --var <rest> (its
 * first byte dropped). The spec is fuzz_vars_spec (fuzz.h); no sensitive
 * value may show in the diagnostics or the rendered spec.
 *
 *   make fuzz && ./build-fuzz/fuzz_varargs tests/fuzz/corpus-varargs
 */
#include "fuzz.h"

#include "spec/render.h"
#include "spec/spec.h"

#define FUZZ_VARARGS_MAX 64 /* entries used per input */

int fuzz_varargs_one(const uint8_t *data, size_t size);

int fuzz_varargs_one(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = xmalloc(size + 1);
        memcpy(text, data, size);
        text[size] = 0;
        char *env[FUZZ_VARARGS_MAX + 1] = {0};
        const char *vars[FUZZ_VARARGS_MAX];
        size_t nenv = 0, nvars = 0;
        for (char *p = text; p < text + size && nenv + nvars < FUZZ_VARARGS_MAX;
             p += strlen(p) + 1) {
                if (*p == 'E')
                        env[nenv++] = xasprintf("KILN_VAR_%s", p + 1);
                else if (*p)
                        vars[nvars++] = p + 1;
        }
        struct diag_list d = {0};
        struct spec *s = NULL;
        struct spec_options o = {
                .path = "fuzz.yaml",
                .text = fuzz_vars_spec,
                .text_len = sizeof(fuzz_vars_spec) - 1,
                .vars = vars,
                .nvars = nvars,
                .environ = env,
                .now = 1700000000,
        };
        struct strbuf out = STRBUF_INIT;
        if (spec_load(&o, &d, &s) >= 0) {
                spec_render_text(s, &out, true);
                spec_render_json(s, &out);
        }
        diag_sort(&d);
        diag_render(&d, &out, true);
        diag_render_json(&d, &out);
        fuzz_show(strbuf_str(&out));
        if (s) {
                _cleanup_free_ const char **secrets = spec_secrets(s);
                fuzz_check_secrets(secrets, strbuf_str(&out), data, size, fuzz_vars_spec);
        }
        strbuf_free(&out);
        spec_free(s);
        diag_list_done(&d);
        for (size_t i = 0; i < nenv; i++)
                free(env[i]);
        return 0;
}

FUZZ_ENTRY(fuzz_varargs_one)
