/* SPDX-License-Identifier: Apache-2.0 */
/* Replays tests/fuzz/corpus-serve/ through serve-images' fuzz entry point
 * (tests/fuzz/fuzz_serve.c), so that inputs that once crashed or broke an
 * invariant stay fixed, plus a small deterministic mutation pass. */
#include "harness.h"

#include "../fuzz/fuzz_serve.c"

#include <dirent.h>

TEST(fuzz_serve_corpus_replays_cleanly) {
        /* Run from the repository root (tests/run-all.sh does). */
        const char *dir = "tests/fuzz/corpus-serve";
        DIR *d = opendir(dir);
        CHECK(d != NULL);
        if (!d)
                return;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *path = xasprintf("%s/%s", dir, de->d_name);
                _cleanup_free_ char *buf = NULL;
                size_t len = 0;
                if (read_file(path, 1u << 20, &buf, &len) < 0)
                        continue;
                LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
                n++;
        }
        closedir(d);
        printf("    replayed %zu inputs\n", n);
        CHECK(n >= 10);
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
                LLVMFuzzerTestOneInput((const uint8_t *)req, cut);
        static const char flips[] = "%0-/,=\n\x1b\\?*9\"";
        for (size_t i = 0; i < len; i++)
                for (size_t f = 0; f < sizeof(flips) - 1; f++) {
                        memcpy(buf, req, len);
                        buf[i] = flips[f];
                        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
                }
        LLVMFuzzerTestOneInput((const uint8_t *)"\0", 1);
        CHECK(len > 100);
}
