/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c — libcurl behind http.h.
 *
 * One easy handle per client, reset before each request so no option leaks
 * from one request into the next; connections survive curl_easy_reset. The
 * request body is read through a callback (memory or pread on a file range),
 * the response body and headers through callbacks that enforce the caps.
 * CURLcode is translated to -errno in exactly one place (curl_errno).
 */
#include "net/http.h"

#include "base/strbuf.h"
#include "base/util.h"

#include <curl/curl.h>
#include <pthread.h>
#include <strings.h>
#include <time.h>

struct http_client {
        CURL *curl;
        struct http_options opts;
        char *ca_file;
        char **secrets;
        size_t nsecrets, secrets_cap;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int http_client_new(const struct http_options *opts, struct http_client **ret) {
        pthread_once(&global_once, global_init);
        if (global_rc != CURLE_OK)
                return -EIO;
        struct http_client *c = xcalloc(1, sizeof(*c));
        c->curl = curl_easy_init();
        if (!c->curl) {
                free(c);
                return -ENOMEM;
        }
        if (opts)
                c->opts = *opts;
        c->ca_file = xstrdup_null(c->opts.ca_file);
        c->opts.ca_file = c->ca_file;
        if (!c->opts.connect_timeout_s)
                c->opts.connect_timeout_s = 30;
        if (!c->opts.stall_timeout_s)
                c->opts.stall_timeout_s = 60;
        *ret = c;
        return 0;
}

struct http_client *http_client_free(struct http_client *c) {
        if (!c)
                return NULL;
        curl_easy_cleanup(c->curl);
        for (size_t i = 0; i < c->nsecrets; i++)
                free(c->secrets[i]);
        free(c->secrets);
        free(c->ca_file);
        free(c);
        return NULL;
}

void http_client_add_secret(struct http_client *c, const char *secret) {
        if (!secret || strlen(secret) < 4)
                return;
        for (size_t i = 0; i < c->nsecrets; i++)
                if (streq(c->secrets[i], secret))
                        return;
        GROW(c->secrets, c->nsecrets, c->secrets_cap);
        c->secrets[c->nsecrets++] = xstrdup(secret);
}

/* ---- logging ------------------------------------------------------------ */

static const char *const sensitive_headers[] = {
        "authorization", "proxy-authorization", "x-auth-token", "x-subject-token",
        "x-amz-security-token", "cookie", "set-cookie", "x-storage-token",
};

static bool header_is_sensitive(const char *name, size_t n) {
        for (size_t i = 0; i < ARRAY_SIZE(sensitive_headers); i++)
                if (strlen(sensitive_headers[i]) == n && strncasecmp(name, sensitive_headers[i], n) == 0)
                        return true;
        return false;
}

/* Masks registered secrets in line (in place, in a strbuf) and logs it. */
static void log_line(struct http_client *c, const char *prefix, const char *line, size_t n) {
        if (!c->opts.log)
                return;
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, prefix);
        while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
                n--;
        const char *colon = memchr(line, ':', n);
        if (colon && header_is_sensitive(line, colon - line)) {
                strbuf_add(&sb, line, colon - line + 1);
                strbuf_adds(&sb, " <sensitive>");
        } else
                strbuf_add(&sb, line, n);
        for (size_t i = 0; i < c->nsecrets; i++) {
                const char *s = c->secrets[i];
                size_t sl = strlen(s);
                char *p;
                while ((p = strstr(sb.buf, s))) {
                        _cleanup_strbuf_ struct strbuf o = STRBUF_INIT;
                        strbuf_add(&o, sb.buf, p - sb.buf);
                        strbuf_adds(&o, "<sensitive>");
                        strbuf_adds(&o, p + sl);
                        strbuf_reset(&sb);
                        strbuf_adds(&sb, strbuf_str(&o));
                }
        }
        c->opts.log(c->opts.log_userdata, strbuf_str(&sb));
}

/* CURLOPT_DEBUGFUNCTION: headers both ways and informational text; bodies
 * are never logged (they may hold passwords, e.g. a Keystone auth request). */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *ud) {
        struct http_client *c = ud;
        const char *prefix;
        switch (type) {
        case CURLINFO_TEXT:
                prefix = "* ";
                break;
        case CURLINFO_HEADER_OUT:
                prefix = "> ";
                break;
        case CURLINFO_HEADER_IN:
                prefix = "< ";
                break;
        default:
                return 0;
        }
        /* HEADER_OUT arrives as one block of lines. */
        size_t i = 0;
        while (i < size) {
                size_t j = i;
                while (j < size && data[j] != '\n')
                        j++;
                size_t len = j - i;
                if (len && !(len == 1 && data[i] == '\r'))
                        log_line(c, prefix, data + i, len);
                i = j + 1;
        }
        return 0;
}

/* ---- transfer callbacks ------------------------------------------------- */

struct xfer {
        const struct http_request *req;
        struct http_response *resp;
        size_t max_body;
        struct strbuf body;
        uint64_t body_total; /* bytes received (streamed or collected) */
        uint64_t sent;       /* request body bytes handed to libcurl */
        size_t header_bytes;
        int error;           /* -errno set by a callback that aborted */
};

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *ud) {
        struct xfer *x = ud;
        const struct http_request *r = x->req;
        size_t want = size * nmemb;
        uint64_t total = r->body_fd >= 0 ? r->body_size : r->body_len;
        if (x->sent >= total)
                return 0;
        if (want > total - x->sent)
                want = total - x->sent;
        size_t got;
        if (r->body_fd >= 0) {
                ssize_t k;
                do
                        k = pread(r->body_fd, buf, want, r->body_offset + x->sent);
                while (k < 0 && errno == EINTR);
                if (k <= 0) {
                        x->error = k < 0 ? -errno : -EIO; /* a short file is an I/O error */
                        return CURL_READFUNC_ABORT;
                }
                got = k;
        } else {
                memcpy(buf, (const char *)r->body + x->sent, want);
                got = want;
        }
        x->sent += got;
        if (r->on_sent)
                r->on_sent(r->userdata, got);
        return got;
}

/* Rewinding is needed when libcurl re-sends the body (redirects, auth, a
 * 100-continue that was refused then retried on a reused connection). */
static int seek_cb(void *ud, curl_off_t offset, int origin) {
        struct xfer *x = ud;
        if (origin != SEEK_SET || offset < 0)
                return CURL_SEEKFUNC_CANTSEEK;
        uint64_t total = x->req->body_fd >= 0 ? x->req->body_size : x->req->body_len;
        if ((uint64_t)offset > total)
                return CURL_SEEKFUNC_FAIL;
        x->sent = offset;
        return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud) {
        struct xfer *x = ud;
        size_t n = size * nmemb;
        if (x->body_total + n > x->max_body) {
                x->error = -E2BIG;
                return 0;
        }
        x->body_total += n;
        if (x->req->on_body) {
                int r = x->req->on_body(x->req->userdata, data, n);
                if (r < 0) {
                        x->error = r;
                        return 0;
                }
        } else
                strbuf_add(&x->body, data, n);
        return n;
}

static void headers_clear(struct http_response *r) {
        for (size_t i = 0; i < r->nheaders; i++) {
                free(r->headers[i].name);
                free(r->headers[i].value);
        }
        free(r->headers);
        r->headers = NULL;
        r->nheaders = 0;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ud) {
        struct xfer *x = ud;
        size_t n = size * nmemb;
        x->header_bytes += n;
        if (x->header_bytes > HTTP_MAX_HEADER_BYTES) {
                x->error = -E2BIG;
                return 0;
        }
        /* A status line starts a new response (after 100 Continue or a
         * redirect): keep only the headers of the last one. */
        if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
                headers_clear(x->resp);
                x->header_bytes = n;
                return n;
        }
        const char *colon = memchr(data, ':', n);
        if (!colon)
                return n; /* the blank line ending the headers */
        if (x->resp->nheaders >= HTTP_MAX_HEADERS) {
                x->error = -E2BIG;
                return 0;
        }
        const char *v = colon + 1, *end = data + n;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        x->resp->headers = xreallocarray(x->resp->headers, x->resp->nheaders + 1,
                                         sizeof(struct http_header));
        x->resp->headers[x->resp->nheaders++] = (struct http_header){
                .name = xstrndup(data, colon - data),
                .value = xstrndup(v, end - v),
        };
        return n;
}

static int curl_errno(CURLcode rc) {
        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                return -ECONNRESET;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_HTTP2:
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTO;
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        case CURLE_FILESIZE_EXCEEDED:
                return -E2BIG;
        default:
                return -EIO;
        }
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void curl_slist_freep(struct curl_slist **l) { curl_slist_free_all(*l); }

int http_request(struct http_client *c, const struct http_request *req,
                 struct http_response *ret) {
        http_response_done(ret);
        if (!req->url || !req->method || (req->body_fd >= 0 && req->body)) {
                snprintf(ret->error, sizeof(ret->error), "invalid HTTP request");
                return -EINVAL;
        }
        CURL *h = c->curl;
        curl_easy_reset(h);

        struct xfer x = {
                .req = req,
                .resp = ret,
                .max_body = req->max_body ? req->max_body : HTTP_DEFAULT_MAX_BODY,
        };
        char errbuf[CURL_ERROR_SIZE] = "";
        __attribute__((cleanup(curl_slist_freep))) struct curl_slist *hdrs = NULL;
        for (const char *const *p = req->headers; p && *p; p++) {
                struct curl_slist *n = curl_slist_append(hdrs, *p);
                if (!n)
                        die_oom();
                hdrs = n;
        }

        bool has_body = req->body_fd >= 0 || req->body;
        uint64_t body_size = req->body_fd >= 0 ? req->body_size : req->body_len;
        bool head = streq(req->method, "HEAD");

        curl_easy_setopt(h, CURLOPT_URL, req->url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)c->opts.connect_timeout_s);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)c->opts.stall_timeout_s);
        if (c->opts.total_timeout_s)
                curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->opts.total_timeout_s);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->opts.insecure ? 0L : 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->opts.insecure ? 0L : 2L);
        if (c->ca_file)
                curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
        if (c->opts.log) {
                curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
                curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
                curl_easy_setopt(h, CURLOPT_DEBUGDATA, c);
        }

        if (head)
                curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        else if (streq(req->method, "PUT") || (has_body && !streq(req->method, "POST"))) {
                curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_size);
                if (!streq(req->method, "PUT"))
                        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        } else if (streq(req->method, "POST")) {
                curl_easy_setopt(h, CURLOPT_POST, 1L);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_size);
        } else if (!streq(req->method, "GET"))
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        if (has_body || streq(req->method, "POST") || streq(req->method, "PUT")) {
                curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
                curl_easy_setopt(h, CURLOPT_READDATA, &x);
                curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
                curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);
        }

        if (c->opts.log) {
                char line[64];
                snprintf(line, sizeof(line), "request body: %llu bytes",
                         (unsigned long long)body_size);
                log_line(c, "* ", line, strlen(line));
        }

        uint64_t t0 = now_ms();
        CURLcode rc = curl_easy_perform(h);
        ret->elapsed_ms = now_ms() - t0;
        ret->bytes_sent = x.sent;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret->status);
        if (x.body.len) {
                ret->body_len = x.body.len;
                ret->body = strbuf_detach(&x.body);
        }
        strbuf_free(&x.body);

        if (rc == CURLE_OK)
                return 0;
        int r = x.error < 0 ? x.error : curl_errno(rc);
        if (x.error == -E2BIG)
                snprintf(ret->error, sizeof(ret->error),
                         "response from the server is larger than the limit of %zu bytes",
                         x.max_body);
        else if (x.error < 0)
                snprintf(ret->error, sizeof(ret->error), "%s", strerror(-x.error));
        else
                snprintf(ret->error, sizeof(ret->error), "%s",
                         errbuf[0] ? errbuf : curl_easy_strerror(rc));
        /* errbuf can hold a URL; URLs may carry tokens the caller registered. */
        for (size_t i = 0; i < c->nsecrets; i++) {
                char *p;
                while ((p = strstr(ret->error, c->secrets[i])))
                        memset(p, '*', strlen(c->secrets[i]));
        }
        if (c->opts.log)
                log_line(c, "* error: ", ret->error, strlen(ret->error));
        return r;
}

const char *http_response_header(const struct http_response *r, const char *name) {
        for (size_t i = 0; i < r->nheaders; i++)
                if (strcasecmp(r->headers[i].name, name) == 0)
                        return r->headers[i].value;
        return NULL;
}

void http_response_done(struct http_response *r) {
        headers_clear(r);
        free(r->body);
        *r = (struct http_response){0};
}

void http_uri_encode(struct strbuf *out, const char *s, size_t len, bool keep_slash) {
        static const char hex[] = "0123456789ABCDEF";
        for (size_t i = 0; i < len; i++) {
                unsigned char ch = s[i];
                if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                    ch == '-' || ch == '.' || ch == '_' || ch == '~' || (keep_slash && ch == '/'))
                        strbuf_addc(out, ch);
                else {
                        strbuf_addc(out, '%');
                        strbuf_addc(out, hex[ch >> 4]);
                        strbuf_addc(out, hex[ch & 15]);
                }
        }
}
