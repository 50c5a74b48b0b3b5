/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz entry point for --var-file: the input is one var file (YAML or JSON,
 * one loader), read by spec_load from disk as kiln reads it, for a fixed
 * spec that declares a variable of every type, sensitive ones and
 * validation rules (fuzz_vars_spec, fuzz.h). Diagnostics and the rendered spec are produced, and no
 * sensitive value may show in them (fuzz_check_secrets).
 *
 *   make fuzz && ./build-fuzz/fuzz_varfile tests/fuzz/corpus-varfile
 */
#include "fuzz.h"

#include "spec/render.h"
#include "spec/spec.h"

int fuzz_varfile_one(const uint8_t *data, size_t size);

int fuzz_varfile_one(const uint8_t *data, size_t size) {
        _cleanup_free_ char *path = fuzz_write(fuzz_dir(), "vars.yaml", data, size);
        const char *files[] = {path};
        struct diag_list d = {0};
        struct spec *s = NULL;
        struct spec_options o = {
                .path = "fuzz.yaml",
                .text = fuzz_vars_spec,
                .text_len = sizeof(fuzz_vars_spec) - 1,
                .var_files = files,
                .nvar_files = 1,
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
        return 0;
}

FUZZ_ENTRY(fuzz_varfile_one)
