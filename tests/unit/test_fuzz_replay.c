/* SPDX-License-Identifier: Apache-2.0 */
/* Replays the fuzz corpus — every spec in the repository plus
 * tests/fuzz/corpus/ — through the fuzz entry point (tests/fuzz/fuzz_spec.c),
 * so that inputs that once crashed stay fixed. */
#include "harness.h"

#include "../fuzz/fuzz_spec.c"

#include <dirent.h>

static size_t replay_dir(const char *dir, bool recurse) {
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
                                n += replay_dir(path, recurse);
                        continue;
                }
                if (!endswith(de->d_name, ".yaml") && !endswith(de->d_name, ".json") &&
                    !endswith(de->d_name, ".yml") && !strstr(dir, "corpus"))
                        continue;
                _cleanup_free_ char *buf = NULL;
                size_t len = 0;
                if (read_file(path, 1u << 20, &buf, &len) < 0)
                        continue;
                LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
                n++;
        }
        closedir(d);
        return n;
}

TEST(fuzz_corpus_replays_cleanly) {
        /* Run from the repository root (tests/run-all.sh does). */
        size_t n = replay_dir("tests/specs", true) + replay_dir("examples", true) +
                   replay_dir("tests/fuzz/corpus", false);
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
                LLVMFuzzerTestOneInput((const uint8_t *)spec, cut);
        static const char flips[] = "{}[]:,-$\"'\n \t#&*!|>";
        for (size_t i = 0; i < len; i++)
                for (size_t f = 0; f < sizeof(flips) - 1; f += 3) {
                        memcpy(buf, spec, len);
                        buf[i] = flips[(i + f) % (sizeof(flips) - 1)];
                        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
                }
        CHECK(len > 100);
}
