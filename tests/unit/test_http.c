/* SPDX-License-Identifier: Apache-2.0 */
/* http.c against a real HTTP server (libmicrohttpd on 127.0.0.1): bodies
 * from memory and from a file range, the response cap, the stall timeout,
 * and a verbose log that masks credential headers and registered secrets. */
#include "harness.h"

#include "base/strbuf.h"
#include "net/http.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <time.h>

static atomic_bool stop_stall;

struct upload {
        uint64_t n, sum;
};

static ssize_t stall_cb(void *cls, uint64_t pos, char *buf, size_t max) {
        /* Never sends a byte until the test ends: a stalled server. */
        struct timespec ts = {0, 50 * 1000000L};
        while (!atomic_load(&stop_stall))
                nanosleep(&ts, NULL);
        return MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *data_size, void **con_cls) {
        struct MHD_Response *r = NULL;
        if (streq(method, "PUT")) {
                struct upload *u = *con_cls;
                if (!u) {
                        *con_cls = xcalloc(1, sizeof(*u));
                        return MHD_YES;
                }
                if (*data_size) {
                        for (size_t i = 0; i < *data_size; i++)
                                u->sum += (unsigned char)data[i];
                        u->n += *data_size;
                        *data_size = 0;
                        return MHD_YES;
                }
                char *body = xasprintf("%llu %llu", (unsigned long long)u->n,
                                       (unsigned long long)u->sum);
                free(u);
                *con_cls = NULL;
                r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
                MHD_add_response_header(r, "X-Auth-Token", "tok-secret-1234");
        } else if (streq(url, "/big")) {
                size_t n = 2 << 20;
                char *body = xmalloc(n);
                memset(body, 'x', n);
                r = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
        } else if (streq(url, "/stall")) {
                r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stall_cb, NULL, NULL);
        } else {
                r = MHD_create_response_from_buffer(5, "hello", MHD_RESPMEM_PERSISTENT);
                MHD_add_response_header(r, "Set-Cookie", "session=cookie-secret-99");
        }
        enum MHD_Result ret = MHD_queue_response(c, streq(url, "/missing") ? 404 : 200, r);
        MHD_destroy_response(r);
        return ret;
}

/* Frees an upload's state also when the client broke the request off. */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
        free(*con_cls);
        *con_cls = NULL;
}

static struct MHD_Daemon *start(unsigned *ret_port) {
        struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                                                0, NULL, NULL, handler, NULL,
                                                MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                                                MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
        CHECK(d != NULL);
        const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        *ret_port = i->port;
        return d;
}

static void collect(void *userdata, const char *line) {
        strbuf_addf(userdata, "%s\n", line);
}

TEST(http_get_put_and_log_redaction) {
        unsigned port;
        struct MHD_Daemon *d = start(&port);
        struct strbuf log = STRBUF_INIT;
        struct http_options o = {.log = collect, .log_userdata = &log};
        struct http_client *c = NULL;
        CHECK_INT(http_client_new(&o, &c), ==, 0);
        http_client_add_secret(c, "query-secret-77");

        _cleanup_free_ char *url = xasprintf("http://127.0.0.1:%u/x?token=query-secret-77", port);
        const char *const hdrs[] = {"Authorization: AWS4-HMAC-SHA256 Credential=AK/x, Signature=abcdef",
                                    "X-Auth-Token: header-token-5", NULL};
        struct http_request req = HTTP_REQUEST_INIT;
        req.url = url;
        req.headers = hdrs;
        struct http_response resp = {0};
        CHECK_INT(http_request(c, &req, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 200);
        CHECK_INT(resp.body_len, ==, 5);
        CHECK_STREQ(resp.body, "hello");
        CHECK(http_response_header(&resp, "set-cookie") != NULL);
        http_response_done(&resp);

        /* PUT from memory */
        _cleanup_free_ char *purl = xasprintf("http://127.0.0.1:%u/put", port);
        req = (struct http_request)HTTP_REQUEST_INIT;
        req.method = "PUT";
        req.url = purl;
        req.body = "abc";
        req.body_len = 3;
        CHECK_INT(http_request(c, &req, &resp), ==, 0);
        CHECK_STREQ(resp.body, "3 294");
        CHECK_INT(resp.bytes_sent, ==, 3);
        CHECK_STREQ(http_response_header(&resp, "X-Auth-Token"), "tok-secret-1234");
        http_response_done(&resp);

        /* PUT from a file range: bytes 1000..1000+300000 of a 2 MB file */
        char path[] = "/tmp/kiln-test-http.XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        unsigned char *buf = xmalloc(2000000);
        for (size_t i = 0; i < 2000000; i++)
                buf[i] = (unsigned char)(i * 7 + 3);
        CHECK_INT(write_all(fd, buf, 2000000), ==, 0);
        uint64_t sum = 0;
        for (size_t i = 1000; i < 301000; i++)
                sum += buf[i];
        req.body = NULL;
        req.body_len = 0;
        req.body_fd = fd;
        req.body_offset = 1000;
        req.body_size = 300000;
        CHECK_INT(http_request(c, &req, &resp), ==, 0);
        _cleanup_free_ char *want = xasprintf("300000 %llu", (unsigned long long)sum);
        CHECK_STREQ(resp.body, want);
        http_response_done(&resp);
        /* A range past the end of the file is an I/O error, not a short body. */
        req.body_offset = 1900000;
        req.body_size = 300000;
        CHECK_INT(http_request(c, &req, &resp), ==, -EIO);
        http_response_done(&resp);
        close(fd);
        unlink(path);
        free(buf);

        /* The log has the requests, but no credential. */
        const char *l = strbuf_str(&log);
        CHECK(strstr(l, "> GET /x?token=<sensitive> HTTP/1.1"));
        CHECK(strstr(l, "Authorization: <sensitive>"));
        CHECK(strstr(l, "X-Auth-Token: <sensitive>"));
        CHECK(strstr(l, "Set-Cookie: <sensitive>"));
        CHECK(strstr(l, "< HTTP/1.1 200"));
        CHECK(!strstr(l, "query-secret-77"));
        CHECK(!strstr(l, "abcdef"));
        CHECK(!strstr(l, "header-token-5"));
        CHECK(!strstr(l, "tok-secret-1234"));
        CHECK(!strstr(l, "cookie-secret-99"));
        http_client_free(c);
        strbuf_free(&log);
        MHD_stop_daemon(d);
}

TEST(http_caps_and_timeouts) {
        unsigned port;
        struct MHD_Daemon *d = start(&port);
        struct http_options o = {.stall_timeout_s = 1};
        struct http_client *c = NULL;
        CHECK_INT(http_client_new(&o, &c), ==, 0);
        struct http_response resp = {0};

        /* 2 MiB body over the default 1 MiB cap */
        _cleanup_free_ char *big = xasprintf("http://127.0.0.1:%u/big", port);
        struct http_request req = HTTP_REQUEST_INIT;
        req.url = big;
        CHECK_INT(http_request(c, &req, &resp), ==, -E2BIG);
        CHECK(strstr(resp.error, "larger than the limit"));
        http_response_done(&resp);
        req.max_body = 4 << 20;
        CHECK_INT(http_request(c, &req, &resp), ==, 0);
        CHECK_INT(resp.body_len, ==, 2 << 20);
        http_response_done(&resp);

        /* 404 is a response, not an error */
        _cleanup_free_ char *missing = xasprintf("http://127.0.0.1:%u/missing", port);
        req = (struct http_request)HTTP_REQUEST_INIT;
        req.url = missing;
        CHECK_INT(http_request(c, &req, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 404);
        http_response_done(&resp);

        /* a server that stops sending: the stall timeout ends it */
        _cleanup_free_ char *stall = xasprintf("http://127.0.0.1:%u/stall", port);
        req.url = stall;
        atomic_store(&stop_stall, false);
        CHECK_INT(http_request(c, &req, &resp), ==, -ETIMEDOUT);
        CHECK(resp.elapsed_ms >= 900 && resp.elapsed_ms < 20000);
        http_response_done(&resp);
        atomic_store(&stop_stall, true);

        /* nothing listens: connection refused */
        MHD_stop_daemon(d);
        _cleanup_free_ char *gone = xasprintf("http://127.0.0.1:%u/", port);
        req.url = gone;
        CHECK_INT(http_request(c, &req, &resp), ==, -ECONNREFUSED);
        CHECK(resp.error[0] != 0);
        http_response_done(&resp);

        req.url = NULL;
        CHECK_INT(http_request(c, &req, &resp), ==, -EINVAL);
        http_client_free(c);
}

TEST(http_uri_encoding) {
        struct strbuf sb = STRBUF_INIT;
        http_uri_encode(&sb, "a b/c~d.e_f-g+h\xe1\x88\xb4", 18, true);
        CHECK_STREQ(strbuf_str(&sb), "a%20b/c~d.e_f-g%2Bh%E1%88%B4");
        strbuf_reset(&sb);
        http_uri_encode(&sb, "a/b", 3, false);
        CHECK_STREQ(strbuf_str(&sb), "a%2Fb");
        strbuf_free(&sb);
}
