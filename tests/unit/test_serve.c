/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve-images' request handling without a socket (src/store/serve.h):
 * path decoding (a decoded NUL or control character, a malformed escape, a
 * raw NUL cutting the path: 400), routing, Range as RFC 9110 §14 says, and
 * the access-log line (no byte can forge or colour a line). A fake catalog
 * knows demo:1.0 demo.raw (1000 bytes). The server itself, its connection
 * limits and idle timeout are tested end to end in tests/e2e/test_store.sh.
 */
#include "harness.h"

#include "store/serve.h"

#include <fcntl.h>

#define DEMO_SHA "a3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static uint64_t blob_size = 1000;
static unsigned lookups;

static int fake_lookup(void *ctx, const char *name, const char *version, const char *file,
                       char ret_sha256[65]) {
        lookups++;
        if (!streq(name, "demo") || !(streq(version, "1.0") || streq(version, "latest")) ||
            !streq(file, "demo.raw"))
                return -ENOENT;
        memcpy(ret_sha256, DEMO_SHA, 65);
        return 0;
}

static int fake_open_blob(void *ctx, const char *sha256, uint64_t *ret_size) {
        if (!streq(sha256, DEMO_SHA))
                return -ENOENT;
        *ret_size = blob_size;
        return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static const struct serve_backend fake = {.lookup = fake_lookup, .open_blob = fake_open_blob};

/* The status of GET path with a Range header (may be NULL). */
static unsigned get(const char *method, const char *path, const char *range,
                    struct serve_response *ret) {
        const struct serve_request rq = {.method = method, .path = path, .range = range};
        struct serve_response r;
        serve_handle(&rq, &fake, &r);
        serve_response_done(&r);
        if (ret)
                *ret = r;
        return r.status;
}

TEST(serve_routes_catalogued_names_and_digests) {
        struct serve_response r;
        CHECK_INT(get("GET", "/images/demo/1.0/demo.raw", NULL, &r), ==, 200);
        CHECK_INT(r.body, ==, SERVE_BODY_FILE);
        CHECK_INT(r.length, ==, 1000);
        CHECK_STREQ(r.filename, "demo.raw");
        CHECK(r.immutable);
        CHECK_INT(get("GET", "/images/demo/latest/demo.raw", NULL, &r), ==, 200);
        CHECK(!r.immutable);
        CHECK_INT(get("HEAD", "/blobs/sha256/" DEMO_SHA, NULL, &r), ==, 200);
        CHECK_STREQ(r.filename, "");
        CHECK_INT(get("GET", "/images", NULL, &r), ==, 200);
        CHECK_INT(r.body, ==, SERVE_BODY_LISTING);
        CHECK_INT(get("GET", "/images/", NULL, NULL), ==, 200);
        /* A query is ignored; plain characters may be escaped. */
        CHECK_INT(get("GET", "/images/%64emo/1.0/demo%2Eraw?x=%00", NULL, NULL), ==, 200);
        CHECK_INT(get("GET", "/images/demo/2.0/demo.raw", NULL, NULL), ==, 404);
        CHECK_INT(get("GET", "/", NULL, NULL), ==, 404);
        CHECK_INT(get("GET", "/catalog.db", NULL, NULL), ==, 404);
        CHECK_INT(get("POST", "/images", NULL, NULL), ==, 405);
        CHECK_INT(get("get", "/images", NULL, NULL), ==, 405);
}

TEST(serve_refuses_paths_that_do_not_decode_to_what_is_checked) {
        lookups = 0;
        static const char *const bad[] = {
                "/images/demo/1.0/demo.raw%00",      /* decoded NUL: was 200 */
                "/images/demo/1.0/demo.raw%00.txt",
                "/blobs/sha256/" DEMO_SHA "%00",
                "/images/demo/1.0/x%0aFORGED",       /* control characters */
                "/images/demo/1.0/x%0D",
                "/images/demo/1.0/x%1b[31m",
                "/images/demo/1.0/x%7f",
                "/images/demo/1.0/x%c3%a9",          /* not ASCII */
                "/images/demo/1.0/demo.raw%",        /* malformed escapes */
                "/images/demo/1.0/demo.raw%4",
                "/images/demo/1.0/demo.raw%zz",
                "/images/demo/1.0/demo\x1b.raw",     /* raw bytes outside RFC 3986 */
                "/images/demo/1.0/demo raw",
                "/images/demo/1.0/\xff",
                "/images/demo%2f1.0/demo.raw",       /* an encoded '/' stays in its segment */
                "/images/demo/1.0/%2e%2e",
                "/images/../catalog.db",
                "/blobs/sha256/%2e%2e%2fcatalog.db",
                "/blobs/sha256/" DEMO_SHA "/x",
                "images/demo/1.0/demo.raw",          /* not origin-form */
                "http://host/images",
                "*",
                "",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                unsigned s = get("GET", bad[i], NULL, NULL);
                if (s != 400)
                        test_fail(__FILE__, __LINE__, "%s: %u, not 400", bad[i], s);
        }
        CHECK_INT(lookups, ==, 0);
        /* A raw NUL in the request line: the transport says the path was cut. */
        const struct serve_request rq = {.method = "GET", .path = "/images/demo/1.0/demo.raw",
                                         .path_cut = true};
        struct serve_response r;
        serve_handle(&rq, &fake, &r);
        CHECK_INT(r.status, ==, 400);
        CHECK_INT(r.fd, ==, -1);
        /* Too long: 414, before anything is decoded. */
        char *lp = xmalloc(SERVE_PATH_MAX + 16);
        memset(lp, 'a', SERVE_PATH_MAX + 15);
        lp[0] = '/';
        lp[SERVE_PATH_MAX + 15] = 0;
        CHECK_INT(get("GET", lp, NULL, NULL), ==, 414);
        lp[SERVE_PATH_MAX] = 0;
        CHECK_INT(get("GET", lp, NULL, NULL), ==, 404);
        free(lp);
}

TEST(serve_range_follows_rfc_9110) {
        const char *f = "/images/demo/1.0/demo.raw";
        struct serve_response r;
        /* Another unit is ignored: the whole file (was 416). */
        CHECK_INT(get("GET", f, "items=0-5", &r), ==, 200);
        CHECK_INT(r.length, ==, 1000);
        CHECK_INT(get("GET", f, "none", NULL), ==, 200);
        CHECK_INT(get("GET", f, "bytes", NULL), ==, 200);
        CHECK_INT(get("GET", f, "bytesx=0-5", NULL), ==, 200);
        /* The unit is case-insensitive. */
        CHECK_INT(get("GET", f, "Bytes=0-5", &r), ==, 206);
        CHECK_INT(r.first, ==, 0);
        CHECK_INT(r.length, ==, 6);
        /* Invalid syntax is ignored (was 416 for 9-3). */
        static const char *const invalid[] = {"bytes=9-3", "bytes=", "bytes=,", "bytes=abc",
                                              "bytes=-", "bytes=1", "bytes=1-2-3", "bytes=+1-2",
                                              "bytes= 1 - 2", "bytes =0-1", "bytes=0-1;x",
                                              "bytes=0-1, x", "bytes=--5", "bytes=0x10-"};
        for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
                unsigned s = get("GET", f, invalid[i], &r);
                if (s != 200 || r.length != 1000)
                        test_fail(__FILE__, __LINE__, "'%s': %u, not 200", invalid[i], s);
        }
        /* One range: 206 with the right slice. */
        CHECK_INT(get("GET", f, "bytes=990-", &r), ==, 206);
        CHECK_INT(r.first, ==, 990);
        CHECK_INT(r.length, ==, 10);
        CHECK_INT(get("GET", f, "bytes=-10", &r), ==, 206);
        CHECK_INT(r.first, ==, 990);
        CHECK_INT(get("GET", f, "bytes=-5000", &r), ==, 206);
        CHECK_INT(r.first, ==, 0);
        CHECK_INT(r.length, ==, 1000);
        CHECK_INT(get("GET", f, "bytes=5-99999999999999999999999", &r), ==, 206);
        CHECK_INT(r.length, ==, 995);
        CHECK_INT(get("GET", f, " ,bytes=1-1", NULL), ==, 200); /* unit first */
        CHECK_INT(get("GET", f, "bytes=, ,1-1 ,", &r), ==, 206); /* empty list elements */
        CHECK_INT(r.length, ==, 1);
        /* Unsatisfiable: 416 with the size for Content-Range: bytes * /1000. */
        CHECK_INT(get("GET", f, "bytes=1000-", &r), ==, 416);
        CHECK_INT(r.size, ==, 1000);
        CHECK_INT(r.body, ==, SERVE_BODY_TEXT);
        CHECK_INT(get("GET", f, "bytes=-0", NULL), ==, 416);
        CHECK_INT(get("GET", f, "bytes=99999999999999999999999-", NULL), ==, 416);
        CHECK_INT(get("GET", f, "bytes=2000-3000, 1500-", NULL), ==, 416);
        /* Several ranges: one satisfiable is sent alone, several whole. */
        CHECK_INT(get("GET", f, "bytes=0-1, 5000-", &r), ==, 206);
        CHECK_INT(r.length, ==, 2);
        CHECK_INT(get("GET", f, "bytes=0-1,5-6", &r), ==, 200);
        CHECK_INT(r.length, ==, 1000);
        /* Range is for GET only; If-Range must match the ETag strongly. */
        CHECK_INT(get("HEAD", f, "bytes=0-5", NULL), ==, 200);
        const struct serve_request m = {.method = "GET", .path = f, .range = "bytes=0-5",
                                        .if_range = "\"" DEMO_SHA "\""};
        serve_handle(&m, &fake, &r);
        serve_response_done(&r);
        CHECK_INT(r.status, ==, 206);
        static const char *const other[] = {"W/\"" DEMO_SHA "\"", "\"x\"",
                                            "Tue, 01 Jan 2030 00:00:00 GMT"};
        for (size_t i = 0; i < ARRAY_SIZE(other); i++) {
                const struct serve_request o = {.method = "GET", .path = f, .range = "bytes=0-5",
                                                .if_range = other[i]};
                serve_handle(&o, &fake, &r);
                serve_response_done(&r);
                CHECK_INT(r.status, ==, 200);
        }
        /* If-None-Match comes first: 304, weak comparison, no body. */
        const struct serve_request n = {.method = "GET", .path = f, .range = "bytes=0-5",
                                        .if_none_match = "\"a\", W/\"" DEMO_SHA "\""};
        serve_handle(&n, &fake, &r);
        CHECK_INT(r.status, ==, 304);
        CHECK_INT(r.body, ==, SERVE_BODY_NONE);
        CHECK_INT(r.fd, ==, -1);
        /* An empty file: no byte range is satisfiable but a suffix. */
        blob_size = 0;
        CHECK_INT(get("GET", f, "bytes=0-", NULL), ==, 416);
        CHECK_INT(get("GET", f, "bytes=-5", &r), ==, 200);
        CHECK_INT(r.length, ==, 0);
        blob_size = 1000;
}

TEST(serve_parse_range_saturates_and_bounds) {
        uint64_t a = 7, b = 7;
        CHECK_INT(serve_parse_range(NULL, 10, &a, &b), ==, SERVE_RANGE_IGNORE);
        CHECK_INT(serve_parse_range("bytes=0-18446744073709551616", UINT64_MAX, &a, &b), ==,
                  SERVE_RANGE_ONE);
        CHECK(a == 0 && b == UINT64_MAX - 1);
        CHECK_INT(serve_parse_range("bytes=18446744073709551615-", UINT64_MAX, &a, &b), ==,
                  SERVE_RANGE_UNSATISFIABLE);
        CHECK_INT(serve_parse_range("BYTES=3-3", 10, &a, &b), ==, SERVE_RANGE_ONE);
        CHECK(a == 3 && b == 3);
}

TEST(serve_log_line_escapes_every_unprintable_byte) {
        char line[SERVE_LOG_LINE_MAX];
        const struct serve_request rq = {
                .method = "GET",
                .path = "/images/x\n2026-01-01T00:00:00Z 10.0.0.1 GET /forged 200 0\x1b[31m\\\x7f\xff?q",
                .client = "127.0.0.1",
        };
        serve_log_line(&rq, 400, 43, line, sizeof(line));
        CHECK_STREQ(line, "127.0.0.1 GET /images/x\\x0a2026-01-01T00:00:00Z\\x2010.0.0.1\\x20GET"
                          "\\x20/forged\\x20200\\x200\\x1b[31m\\x5c\\x7f\\xff 400 43");
        /* Percent-escapes are logged as sent, so %0a stays three characters. */
        const struct serve_request pe = {.method = "G\tT", .path = "/a%0a%00", .client = NULL};
        serve_log_line(&pe, 400, 0, line, sizeof(line));
        CHECK_STREQ(line, "- G\\x09T /a%0a%00 400 0");
        /* Long fields are cut and marked; the line always fits. */
        char *lp = xmalloc(3 * SERVE_PATH_MAX);
        memset(lp, '\x1b', 3 * SERVE_PATH_MAX - 1);
        lp[3 * SERVE_PATH_MAX - 1] = 0;
        char method[SERVE_LOG_METHOD_MAX * 2];
        memset(method, '\n', sizeof(method) - 1);
        method[sizeof(method) - 1] = 0;
        const struct serve_request lr = {.method = method, .path = lp, .client = "::1"};
        serve_log_line(&lr, 414, 14, line, sizeof(line));
        CHECK(strlen(line) < sizeof(line));
        CHECK(endswith(line, "... 414 14"));
        for (const char *p = line; *p; p++)
                CHECK(*p >= 0x20 && *p < 0x7f);
        /* A small buffer is never overrun. */
        char small[12];
        serve_log_line(&lr, 414, 14, small, sizeof(small));
        CHECK_INT(strlen(small), <, sizeof(small));
        free(lp);
}
