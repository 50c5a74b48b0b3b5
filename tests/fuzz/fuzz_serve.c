/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz entry point for serve-images' request handling (src/store/serve.h):
 * path decoding, routing, If-None-Match / If-Range / Range evaluation and the
 * access-log line, without a socket, against a fake catalog.
 *
 * Input: newline-separated fields — method, path, then optionally Range,
 * If-Range, If-None-Match and the blob's size in decimal (default 1000); a
 * missing field is an absent header, a NUL byte ends a field (and in the
 * path stands for a raw NUL in the request line: path_cut). Besides crashes, the entry point aborts
 * when an answer breaks an invariant (a slice outside the file, a control
 * byte in the log line, a lookup with a name the store would refuse).
 *
 * With clang and libFuzzer:  make fuzz && ./build-fuzz/fuzz_serve tests/fuzz/corpus-serve
 * Without: tests/unit/test_fuzz_replay.c replays tests/fuzz/corpus-serve/
 * through this function as part of `make check`.
 */
#include "fuzz.h"

#include "base/util.h"
#include "store/serve.h"

#include <fcntl.h>
#include <stdint.h>

int fuzz_serve_one(const uint8_t *data, size_t size);

#define FUZZ_SHA "a3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define FUZZ_SHA_CHANGED "00000000000000000000000000000000000000000000000000000000000000ff"

static uint64_t fuzz_blob_size;

#define FUZZ_CHECK(cond)                                                                   \
        do {                                                                               \
                if (!(cond)) {                                                             \
                        fprintf(stderr, "fuzz_serve: invariant failed: %s\n", #cond);      \
                        abort();                                                           \
                }                                                                          \
        } while (0)

static int fuzz_lookup(void *ctx, const char *name, const char *version, const char *file,
                       char ret_sha256[65]) {
        FUZZ_CHECK(store_name_valid(name) && store_name_valid(version) && store_name_valid(file));
        if (streq(name, "broken"))
                return -EIO;
        if (streq(name, "garbled")) {
                memcpy(ret_sha256, "not-a-digest", 13);
                return 0;
        }
        if (streq(name, "changed")) {
                memcpy(ret_sha256, FUZZ_SHA_CHANGED, 65);
                return 0;
        }
        if (!streq(name, "demo") || !(streq(version, "1.0") || streq(version, "latest")) ||
            !streq(file, "demo.raw"))
                return -ENOENT;
        memcpy(ret_sha256, FUZZ_SHA, 65);
        return 0;
}

static int fuzz_open_blob(void *ctx, const char *sha256, uint64_t *ret_size) {
        FUZZ_CHECK(strlen(sha256) == 64 && strspn(sha256, "0123456789abcdef") == 64);
        if (streq(sha256, FUZZ_SHA_CHANGED))
                return -EUCLEAN;
        if (!streq(sha256, FUZZ_SHA))
                return -ENOENT;
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_size = fuzz_blob_size;
        return fd;
}

int fuzz_serve_one(const uint8_t *data, size_t size) {
        /* Split into at most six NUL-terminated fields (a NUL inside a field
         * ends it: headers and paths reach us as C strings). */
        char *buf = xmalloc(size + 1);
        memcpy(buf, data, size);
        buf[size] = 0;
        const char *field[6] = {0};
        size_t field_len[6] = {0}, nf = 0;
        for (char *p = buf; nf < 6;) {
                char *nl = memchr(p, '\n', size - (size_t)(p - buf));
                field_len[nf] = nl ? (size_t)(nl - p) : size - (size_t)(p - buf);
                field[nf++] = p;
                if (!nl)
                        break;
                *nl = 0;
                p = nl + 1;
        }
        fuzz_blob_size = 1000;
        if (field[5]) {
                uint64_t v = 0;
                for (const char *p = field[5]; *p >= '0' && *p <= '9'; p++)
                        v = v > UINT64_MAX / 16 ? UINT64_MAX : v * 10 + (uint64_t)(*p - '0');
                fuzz_blob_size = v;
        }
        const struct serve_request rq = {
                .method = field[0],
                .path = field[1] ? field[1] : "",
                /* a NUL inside the path field: what a raw NUL in a request
                 * line looks like to the handler */
                .path_cut = field[1] && strlen(field[1]) < field_len[1],
                .client = "127.0.0.1",
                .range = field[2],
                .if_range = field[3],
                .if_none_match = field[4],
        };
        const struct serve_backend be = {.lookup = fuzz_lookup, .open_blob = fuzz_open_blob};
        struct serve_response r;
        serve_handle(&rq, &be, &r);

        static const unsigned statuses[] = {200, 206, 304, 400, 404, 405, 414, 416, 500};
        bool known = false;
        for (size_t i = 0; i < ARRAY_SIZE(statuses); i++)
                known |= r.status == statuses[i];
        FUZZ_CHECK(known);
        FUZZ_CHECK((r.body == SERVE_BODY_FILE) == (r.fd >= 0));
        if (r.body == SERVE_BODY_TEXT)
                FUZZ_CHECK(r.text && r.text[0]);
        if (r.body == SERVE_BODY_FILE) {
                FUZZ_CHECK(r.status == 200 || r.status == 206);
                FUZZ_CHECK(r.size == fuzz_blob_size);
                FUZZ_CHECK(r.first <= r.size && r.length <= r.size - r.first);
                if (r.status == 200)
                        FUZZ_CHECK(r.first == 0 && r.length == r.size);
                else
                        FUZZ_CHECK(r.length >= 1);
                FUZZ_CHECK(streq(r.sha256, FUZZ_SHA));
        }
        if (rq.path_cut)
                FUZZ_CHECK(r.status == 400 || r.status == 405 || r.status == 414);
        if (r.status == 206 || r.status == 416)
                FUZZ_CHECK(rq.range && streq(rq.method, "GET"));
        serve_response_done(&r);
        FUZZ_CHECK(r.fd == -1);

        uint64_t first = 0, last = 0;
        int k = serve_parse_range(rq.range, fuzz_blob_size, &first, &last);
        FUZZ_CHECK(k == SERVE_RANGE_IGNORE || k == SERVE_RANGE_ONE ||
                   k == SERVE_RANGE_UNSATISFIABLE);
        if (k == SERVE_RANGE_ONE)
                FUZZ_CHECK(first <= last && last < fuzz_blob_size);

        char line[SERVE_LOG_LINE_MAX];
        serve_log_line(&rq, r.status, r.length, line, sizeof(line));
        size_t ll = strlen(line);
        FUZZ_CHECK(ll < sizeof(line));
        for (size_t i = 0; i < ll; i++)
                FUZZ_CHECK(line[i] >= 0x20 && line[i] < 0x7f);
        /* The fields are exactly four spaces apart: nothing can forge one. */
        size_t spaces = 0;
        for (size_t i = 0; i < ll; i++)
                spaces += line[i] == ' ';
        FUZZ_CHECK(spaces == 4);
        free(buf);
        return 0;
}

FUZZ_ENTRY(fuzz_serve_one)
