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
        struct spec_options o = {
                .vars = vars,
                .nvars = nvars,
                .environ = env,
        };
        fuzz_vars_load(&o, data, size);
        for (size_t i = 0; i < nenv; i++)
                free(env[i]);
        return 0;
}

FUZZ_ENTRY(fuzz_varargs_one)
