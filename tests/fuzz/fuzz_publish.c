/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz entry point for the `publish:` section, given a spec that loads:
 * the input is one build's `publish:` value (a matrix build, so that
 * ${matrix.*} and ${build.*} expand in it; a child build inherits it). As
 * `kiln validate` does after spec_load, every publisher validates its
 * targets (publish_validate_spec); as `kiln build` does before uploading,
 * the targets are listed and each picks an artifact from a fixed set.
 * Nothing is uploaded (no publisher's publish() runs).
 *
 *   make fuzz && ./build-fuzz/fuzz_publish tests/fuzz/corpus-publish
 */
#include "fuzz.h"

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
        if (spec_load(&o, &d, &s) >= 0 && publish_validate_spec(s, &d) >= 0)
                for (size_t i = 0; i < s->nbuilds; i++) {
                        const struct spec_build *b = s->builds[i];
                        struct publish_target *t = NULL;
                        size_t n = 0;
                        if (!b->needed || publish_targets_from_value(b->publish, &t, &n) < 0)
                                continue;
                        for (size_t k = 0; k < n; k++)
                                publish_pick_artifact(&t[k], fuzz_publish_artifacts,
                                                      ARRAY_SIZE(fuzz_publish_artifacts));
                        publish_needs_sha512(b->publish);
                        publish_targets_free(t, n);
                }
        struct strbuf out = STRBUF_INIT;
        fuzz_render(NULL, &d, &out);
        strbuf_free(&out);
        spec_free(s);
        diag_list_done(&d);
        return 0;
}

FUZZ_ENTRY(fuzz_publish_one)
