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
        struct spec_options o = {
                .var_files = files,
                .nvar_files = 1,
        };
        fuzz_vars_load(&o, data, size);
        return 0;
}

FUZZ_ENTRY(fuzz_varfile_one)
