/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz entry point for the whole spec front end: YAML/JSON loading,
 * variables, interpolation, matrix expansion, the from: graph, every
 * engine's sections (pipeline_load: disk:, outputs:, checks:, boot_check:,
 * publish:) and rendering.
 *
 * With clang and libFuzzer:  make fuzz && ./build-fuzz/fuzz_spec tests/fuzz/corpus
 * Without: tests/unit/test_fuzz_replay.c replays every spec in the repository
 * through this function under ASan+UBSan as part of `make check`.
 */
#include "fuzz.h"

#include "pipeline/pipeline.h"
#include "spec/render.h"
#include "spec/spec.h"

#include <stdint.h>

int fuzz_spec_one(const uint8_t *data, size_t size);

int fuzz_spec_one(const uint8_t *data, size_t size) {
        struct diag_list d = {0};
        struct spec *s = NULL;
        struct spec_options o = {
                .path = "fuzz.yaml",
                .text = (const char *)data,
                .text_len = size,
                .now = 1700000000,
        };
        struct strbuf out = STRBUF_INIT;
        pipeline_load(&o, &d, &s);
        fuzz_render(s, &d, &out);
        strbuf_free(&out);
        spec_free(s);
        diag_list_done(&d);
        return 0;
}
FUZZ_ENTRY(fuzz_spec_one)
