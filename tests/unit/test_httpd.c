/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net/httpd.c on 127.0.0.1 (port 0), driven by the HTTP client (net/http.h):
 * the handler sees the target as sent and the headers; JSON, error, file
 * range and empty answers; request bodies up to max_body (a larger
 * Content-Length is 413 and never reaches the handler, a chunked body past
 * the cap closes the connection, max_body 0 reads none); the access log;
 * start-up errors. serve-images on top of it: test_serve.c, test_store.sh.
 */
#include "harness.h"

#include "base/util.h"
#include "net/http.h"
#include "net/httpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct seen {
        pthread_mutex_t lock;
        unsigned calls;
        char log[4][HTTPD_LOG_LINE_MAX];
        unsigned nlog;
        int fd; /* the file /file serves (dup'd per request) */
};

static void collect_log(void *userdata, const char *line) {
        struct seen *s = userdata;
        pthread_mutex_lock(&s->lock);
        snprintf(s->log[s->nlog % 4], sizeof(s->log[0]), "%s", line);
        s->nlog++;
        pthread_mutex_unlock(&s->lock);
}

static void handler(void *userdata, const struct httpd_request *rq, struct httpd_response *r) {
        struct seen *s = userdata;
        pthread_mutex_lock(&s->lock);
        s->calls++;
        pthread_mutex_unlock(&s->lock);
        httpd_response_header(r, "X-Path", rq->path);
        httpd_response_header(r, "X-Cut", rq->path_cut ? "yes" : "no");
        const char *q = httpd_request_arg(rq, "q");
        if (q)
                httpd_response_header(r, "X-Q", q);
        if (streq(rq->path, "/json")) {
                char *j = xstrdup("{\"ok\": true}");
                httpd_respond_json(r, 200, j, strlen(j));
        } else if (streq(rq->path, "/echo") && streq(rq->method, "POST")) {
                if (rq->body) {
                        CHECK_INT(strlen(rq->body), ==, rq->body_len); /* NUL-terminated */
                        httpd_respond_json(r, 201, xstrdup(rq->body), rq->body_len);
                } else
                        httpd_respond_text(r, 200, "no body\n");
        } else if (streq(rq->path, "/file")) {
                uint64_t first = 0, last = 0;
                int k = httpd_parse_range(httpd_request_header(rq, "Range"), 10, &first, &last);
                if (k == HTTPD_RANGE_ONE) {
                        char cr[64];
                        snprintf(cr, sizeof(cr), "bytes %llu-%llu/10", (unsigned long long)first,
                                 (unsigned long long)last);
                        httpd_response_header(r, "Content-Range", cr);
                        httpd_respond_fd(r, 206, dup(s->fd), first, last - first + 1);
                } else
                        httpd_respond_fd(r, 200, dup(s->fd), 0, 10);
        } else if (streq(rq->path, "/empty")) {
                httpd_respond_empty(r, 204);
        } else if (streq(rq->path, "/nothing")) {
                /* the handler answers nothing: 500 */
        } else {
                httpd_respond_text(r, 500, "replaced\n"); /* a later respond call wins */
                httpd_respond_error(r, 404, "no route \"here\"");
        }
}

static struct httpd *start(struct seen *s, size_t max_body) {
        const struct httpd_options o = {.max_body = max_body, .log = collect_log, .log_userdata = s};
        struct httpd *d = NULL;
        CHECK_INT(httpd_start("127.0.0.1:0", &o, handler, s, &d), ==, 0);
        return d;
}

static int get(struct http_client *c, const char *method, const char *url,
               const char *const *headers, const char *body, struct http_response *resp) {
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = method;
        req.url = url;
        req.headers = headers;
        req.body = body;
        req.body_len = body ? strlen(body) : 0;
        return http_request(c, &req, resp);
}

static struct seen *seen_new(void) {
        struct seen *s = xcalloc(1, sizeof(*s));
        pthread_mutex_init(&s->lock, NULL);
        char path[] = "/var/tmp/kiln-test-httpd.XXXXXX";
        s->fd = mkstemp(path);
        CHECK(s->fd >= 0);
        unlink(path);
        CHECK(write(s->fd, "abcdefghij", 10) == 10);
        return s;
}

static void seen_free(struct seen *s) {
        close(s->fd);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

TEST(httpd_answers) {
        struct seen *s = seen_new();
        struct httpd *d = start(s, 0);
        struct http_client *c = NULL;
        CHECK_INT(http_client_new(NULL, &c), ==, 0);
        struct http_response resp = {0};
        const char *base = httpd_url(d);
        CHECK(strncmp(base, "http://127.0.0.1:", 17) == 0);

        _cleanup_free_ char *u = xasprintf("%s/json", base);
        CHECK_INT(get(c, "GET", u, NULL, NULL, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 200);
        CHECK_STREQ(resp.body, "{\"ok\": true}");
        CHECK_STREQ(http_response_header(&resp, "Content-Type"), "application/json");
        char want[HTTPD_LOG_LINE_MAX];
        snprintf(want, sizeof(want), "127.0.0.1 GET /json 200 12");
        pthread_mutex_lock(&s->lock);
        CHECK_INT(s->nlog, ==, 1);
        CHECK_STREQ(s->log[0], want);
        pthread_mutex_unlock(&s->lock);

        /* The path and query as sent: escapes not decoded. */
        _cleanup_free_ char *raw = xasprintf("%s/a%%2Fb%%00?q=%%41", base);
        CHECK_INT(get(c, "GET", raw, NULL, NULL, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 404);
        CHECK_STREQ(http_response_header(&resp, "X-Path"), "/a%2Fb%00");
        CHECK_STREQ(http_response_header(&resp, "X-Cut"), "no");
        CHECK_STREQ(http_response_header(&resp, "X-Q"), "%41");
        CHECK_STREQ(resp.body, "{\"error\":\"no route \\\"here\\\"\"}\n");
        CHECK_STREQ(http_response_header(&resp, "Content-Type"), "application/json");

        _cleanup_free_ char *f = xasprintf("%s/file", base);
        const char *const range[] = {"Range: bytes=2-4", NULL};
        CHECK_INT(get(c, "GET", f, range, NULL, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 206);
        CHECK_STREQ(resp.body, "cde");
        CHECK_STREQ(http_response_header(&resp, "Content-Range"), "bytes 2-4/10");
        CHECK_INT(get(c, "GET", f, NULL, NULL, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 200);
        CHECK_STREQ(resp.body, "abcdefghij");

        _cleanup_free_ char *e = xasprintf("%s/empty", base);
        CHECK_INT(get(c, "GET", e, NULL, NULL, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 204);
        CHECK(resp.body == NULL);
        _cleanup_free_ char *n = xasprintf("%s/nothing", base);
        CHECK_INT(get(c, "GET", n, NULL, NULL, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 500);

        /* max_body 0: a body is not read, the handler sees none. */
        _cleanup_free_ char *echo = xasprintf("%s/echo", base);
        CHECK_INT(get(c, "POST", echo, NULL, "{\"a\": 1}", &resp), ==, 0);
        CHECK_INT(resp.status, ==, 200);
        CHECK_STREQ(resp.body, "no body\n");
        http_response_done(&resp);
        http_client_free(c);
        httpd_stop(d);
        seen_free(s);
}

TEST(httpd_post_bodies_are_capped) {
        struct seen *s = seen_new();
        struct httpd *d = start(s, 64);
        struct http_client *c = NULL;
        CHECK_INT(http_client_new(NULL, &c), ==, 0);
        struct http_response resp = {0};
        _cleanup_free_ char *echo = xasprintf("%s/echo", httpd_url(d));
        const char *body = "{\"name\": \"demo\", \"size\": 1000}";
        CHECK_INT(get(c, "POST", echo, NULL, body, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 201);
        CHECK_STREQ(resp.body, body);
        /* The target checks hold on the call after the body, too. */
        CHECK_STREQ(http_response_header(&resp, "X-Cut"), "no");
        /* Chunked, under the cap. */
        const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
        CHECK_INT(get(c, "POST", echo, chunked, body, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 201);
        CHECK_STREQ(resp.body, body);
        /* Exactly the cap. */
        char full[65];
        memset(full, 'x', 64);
        full[64] = 0;
        CHECK_INT(get(c, "POST", echo, NULL, full, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 201);
        CHECK_INT(resp.body_len, ==, 64);
        pthread_mutex_lock(&s->lock);
        unsigned calls = s->calls;
        pthread_mutex_unlock(&s->lock);
        /* One byte over: 413, the handler is not called. */
        char over[66];
        memset(over, 'x', 65);
        over[65] = 0;
        CHECK_INT(get(c, "POST", echo, NULL, over, &resp), ==, 0);
        CHECK_INT(resp.status, ==, 413);
        CHECK_STREQ(resp.body, "request body too large\n");
        /* Chunked past the cap: the connection is closed, no answer. */
        int r = get(c, "POST", echo, chunked, over, &resp);
        CHECK(r < 0 || resp.status != 201);
        pthread_mutex_lock(&s->lock);
        CHECK_INT(s->calls, ==, calls);
        pthread_mutex_unlock(&s->lock);
        /* The server still answers. */
        CHECK_INT(get(c, "POST", echo, NULL, "{}", &resp), ==, 0);
        CHECK_INT(resp.status, ==, 201);
        http_response_done(&resp);
        http_client_free(c);
        httpd_stop(d);
        seen_free(s);
}

/* A request line with a raw NUL byte in the target: the handler is told. */
TEST(httpd_flags_a_target_cut_by_nul) {
        struct seen *s = seen_new();
        struct httpd *d = start(s, 0);
        unsigned port = (unsigned)atoi(strrchr(httpd_url(d), ':') + 1);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(fd >= 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        static const char req[] = "GET /json\0/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        CHECK(write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1);
        char buf[4096];
        size_t n = 0;
        ssize_t k;
        while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t)k;
        buf[n] = 0;
        close(fd);
        CHECK(strstr(buf, "X-Cut: yes") != NULL);
        httpd_stop(d);
        seen_free(s);
}

TEST(httpd_start_errors) {
        struct seen *s = seen_new();
        struct httpd *d = NULL;
        const struct httpd_options bad_limits = {.max_connections = 4, .max_per_client = 5};
        CHECK_INT(httpd_start("127.0.0.1:0", &bad_limits, handler, s, &d), ==, -ERANGE);
        const struct httpd_options big_body = {.max_body = HTTPD_MAX_BODY_LIMIT + 1};
        CHECK_INT(httpd_start("127.0.0.1:0", &big_body, handler, s, &d), ==, -ERANGE);
        CHECK_INT(httpd_start("127.0.0.1:99999", NULL, handler, s, &d), ==, -EINVAL);
        CHECK_INT(httpd_start("[::1", NULL, handler, s, &d), ==, -EINVAL);
        CHECK_INT(httpd_start("127.0.0.1:0", NULL, NULL, s, &d), ==, -EINVAL);
        struct httpd *a = start(s, 0);
        const char *port = strrchr(httpd_url(a), ':') + 1;
        _cleanup_free_ char *same = xasprintf("127.0.0.1:%s", port);
        CHECK(httpd_start(same, NULL, handler, s, &d) < 0);
        httpd_stop(a);
        httpd_stop(NULL);
        seen_free(s);
}

TEST(httpd_log_line_bounds) {
        char line[HTTPD_LOG_LINE_MAX];
        httpd_log_line(NULL, "GET", "/a b\x1b[31m?q\x01", 200, 5, line, sizeof(line));
        CHECK_STREQ(line, "- GET /a\\x20b\\x1b[31m 200 5");
        char small[8];
        httpd_log_line("127.0.0.1", "GET", "/", 200, 5, small, sizeof(small));
        CHECK_STREQ(small, "127.0.0");
}
