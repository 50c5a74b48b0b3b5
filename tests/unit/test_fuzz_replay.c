/* SPDX-License-Identifier: Apache-2.0 */
/* Replays every fuzz corpus through its entry point (tests/fuzz/fuzz_*.c,
 * included here with FUZZ_REPLAY so that each keeps only its named
 * fuzz_<name>_one function), under ASan+UBSan in the san build, so that
 * inputs that once crashed stay fixed. The spec fuzzer also gets every
 * spec in the repository. A new entry point adds one #include and one row
 * of fuzzers[]. */
#include "harness.h"

#define FUZZ_REPLAY
#include "../fuzz/fuzz_spec.c"
#include "../fuzz/fuzz_varfile.c"
#include "../fuzz/fuzz_varargs.c"
#include "../fuzz/fuzz_checks.c"
#include "../fuzz/fuzz_publish.c"
#include "../fuzz/fuzz_manifest.c"
#include "../fuzz/fuzz_serve.c"

#include <dirent.h>

static const struct {
        const char *corpus;
        int (*one)(const uint8_t *data, size_t size);
        size_t min_seeds; /* a corpus that shrank by accident fails the test */
} fuzzers[] = {
        {"tests/fuzz/corpus-varfile", fuzz_varfile_one, 8},
        {"tests/fuzz/corpus-varargs", fuzz_varargs_one, 6},
        {"tests/fuzz/corpus-checks", fuzz_checks_one, 6},
        {"tests/fuzz/corpus-publish", fuzz_publish_one, 6},
        {"tests/fuzz/corpus-manifest", fuzz_manifest_one, 6},
        {"tests/fuzz/corpus-serve", fuzz_serve_one, 10},
};

/* Feeds every file of dir to one: in a corpus directory all of them, else
 * (the repository's specs) those named *.yaml, *.yml or *.json. */
static size_t replay_with(int (*one)(const uint8_t *, size_t), const char *dir, bool recurse) {
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *path = xasprintf("%s/%s", dir, de->d_name);
                if (de->d_type == DT_DIR) {
                        if (recurse)
                                n += replay_with(one, path, recurse);
                        continue;
                }
                if (!endswith(de->d_name, ".yaml") && !endswith(de->d_name, ".json") &&
                    !endswith(de->d_name, ".yml") && !strstr(dir, "corpus"))
                        continue;
                _cleanup_free_ char *buf = NULL;
                size_t len = 0;
                if (read_file(path, 1u << 20, &buf, &len) < 0)
                        continue;
                one((const uint8_t *)buf, len);
                n++;
        }
        closedir(d);
        return n;
}

TEST(fuzz_corpus_replays_cleanly) {
        /* Run from the repository root (tests/run-all.sh does). */
        size_t n = replay_with(fuzz_spec_one, "tests/specs", true) +
                   replay_with(fuzz_spec_one, "examples", true) +
                   replay_with(fuzz_spec_one, "tests/fuzz/corpus", false);
        printf("    replayed %zu inputs\n", n);
        CHECK(n >= 40);
}

TEST(fuzz_survives_mutations_of_a_valid_spec) {
        /* A cheap deterministic mutation pass: every truncation and a byte
         * flip at every position of a spec that uses most features. */
        static const char spec[] =
                "variables:\n  v: {type: list, default: [a, b], validation: {regex: '^a'}}\n"
                "  s: {sensitive: true, default: x}\n"
                "builds:\n  b:\n    source: {type: debian, suite: \"${lower(var.v[0])}\"}\n"
                "    matrix: {arch: [x86_64, aarch64]}\n"
                "    steps:\n      - packages: ${var.v}\n      - shell: \"echo $${HOME} ${var.s}\"\n"
                "  c:\n    from: b\n    matrix: {arch: [x86_64, aarch64], role: [r]}\n"
                "    name: \"${build.base}-${formatdate(\\\"YYYY\\\", timestamp)}-${matrix.arch}\"\n";
        size_t len = sizeof(spec) - 1;
        char buf[sizeof(spec)];
        for (size_t cut = 0; cut <= len; cut++)
                fuzz_spec_one((const uint8_t *)spec, cut);
        static const char flips[] = "{}[]:,-$\"'\n \t#&*!|>";
        for (size_t i = 0; i < len; i++)
                for (size_t f = 0; f < sizeof(flips) - 1; f += 3) {
                        memcpy(buf, spec, len);
                        buf[i] = flips[(i + f) % (sizeof(flips) - 1)];
                        fuzz_spec_one((const uint8_t *)buf, len);
                }
        CHECK(len > 100);
}

TEST(fuzz_corpora_of_every_entry_point_replay_cleanly) {
        for (size_t i = 0; i < ARRAY_SIZE(fuzzers); i++) {
                size_t n = replay_with(fuzzers[i].one, fuzzers[i].corpus, false);
                printf("    %s: replayed %zu inputs\n", fuzzers[i].corpus, n);
                CHECK(n >= fuzzers[i].min_seeds);
        }
}

TEST(fuzz_serve_survives_mutations_of_a_range_request) {
        /* Every truncation, and a byte from a small alphabet at every
         * position, of a request that reaches every stage. */
        static const char req[] =
                "GET\n/images/demo/1.0/demo.raw?q\nbytes=0-5, -7,9-\n"
                "\"a3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\n"
                "W/\"x\", *\n1000";
        size_t len = sizeof(req) - 1;
        char buf[sizeof(req)];
        for (size_t cut = 0; cut <= len; cut++)
                fuzz_serve_one((const uint8_t *)req, cut);
        static const char flips[] = "%0-/,=\n\x1b\\?*9\"";
        for (size_t i = 0; i < len; i++)
                for (size_t f = 0; f < sizeof(flips) - 1; f++) {
                        memcpy(buf, req, len);
                        buf[i] = flips[f];
                        fuzz_serve_one((const uint8_t *)buf, len);
                }
        fuzz_serve_one((const uint8_t *)"\0", 1);
        CHECK(len > 100);
}
