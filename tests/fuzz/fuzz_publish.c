/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz entry point for the `publish:` section, given a spec that loads:
 * the input is one build's `publish:` value (a matrix build, so that
 * ${matrix.*} and ${build.*} expand in it; a child build inherits it). As
 * `kiln validate` does (pipeline_load), every publisher validates its
 * targets and they are parsed once; as `kiln build` does before uploading,
 * each parsed target picks an artifact from a fixed set.
 * Nothing is uploaded (no publisher's publish() runs).
 *
 *   make fuzz && ./build-fuzz/fuzz_publish tests/fuzz/corpus-publish
 */
#include "fuzz.h"

#include "pipeline/pipeline.h"
#include "publish/publish.h"
#include "spec/spec.h"

static const struct publish_artifact fuzz_publish_artifacts[] = {
        {.path = "out/b/b.qcow2", .file_name = "b.qcow2", .format = "qcow2", .size = 1 << 20,
         .sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         .sha512 = "", .image_name = "b", .build_id = "b-x86_64", .arch = "x86_64"},
        {.path = "out/b/b.raw", .file_name = "b.raw", .format = "raw", .size = 4 << 20,
         .sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         .sha512 = "", .image_name = "b", .build_id = "b-x86_64", .arch = "x86_64"},
};

int fuzz_publish_one(const uint8_t *data, size_t size);

int fuzz_publish_one(const uint8_t *data, size_t size) {
        size_t len;
        _cleanup_free_ char *text = fuzz_embed(
                "variables:\n"
                "  bucket: images\n"
                "  key: {type: string, sensitive: true, default: k3yS3cret}\n"
                "builds:\n"
                "  b:\n"
                "    source: {type: debian, suite: bookworm}\n"
                "    matrix: {arch: [x86_64, aarch64]}\n"
                "    name: b-${matrix.arch}\n"
                "    outputs: [qcow2, raw]\n"
                "    publish:\n",
                data, size, 6,
                "  c:\n"
                "    from: b\n"
                "    matrix: {arch: [x86_64]}\n",
                &len);
        struct diag_list d = {0};
        struct spec *s = NULL;
        struct spec_options o = {.path = "kiln.yaml", .text = text, .text_len = len, .now = 1700000000};
        if (pipeline_load(&o, &d, &s) >= 0)
                for (size_t i = 0; i < s->nbuilds; i++) {
                        const struct spec_build *b = s->builds[i];
                        const struct publish_targets *t = publish_targets_of(b);
                        if (!t)
                                continue;
                        for (size_t k = 0; k < t->n; k++)
                                publish_pick_artifact(&t->v[k], fuzz_publish_artifacts,
                                                      ARRAY_SIZE(fuzz_publish_artifacts));
                        publish_needs_sha512(b->publish);
                }
        struct strbuf out = STRBUF_INIT;
        fuzz_render(NULL, &d, &out);
        strbuf_free(&out);
        spec_free(s);
        diag_list_done(&d);
        return 0;
}

FUZZ_ENTRY(fuzz_publish_one)
