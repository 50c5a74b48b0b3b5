/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd.c — libmicrohttpd behind httpd.h.
 *
 * Per request: the URI log callback (note_target) runs first, with the
 * target as sent, and allocates the request's state (struct exchange): the
 * target's length up to its first NUL, the body read so far; the completion
 * callback frees it. The access handler is called once with the headers,
 * then, when a body is read, once per piece of it and once more at its end;
 * the handler of the caller runs on the first call when no body is read,
 * else on the last. The response is built from struct httpd_response after
 * the handler returned, so a handler can set headers in any order.
 *
 * libmicrohttpd decodes %XX in the path and query by default; no_unescape
 * leaves both as sent, for the handler to check what it uses.
 * Cleanup style: scoped (_cleanup_free_).
 */
#include "net/httpd.h"

#include "base/json.h"
#include "base/strbuf.h"
#include "base/util.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <strings.h>
#include <sys/socket.h>

struct httpd {
        struct MHD_Daemon *d;
        struct httpd_options opts;
        httpd_handler handler;
        void *userdata;
        char url[128];
};

/* What one request carries between the calls of the access handler. */
struct exchange {
        size_t target_len; /* strlen of the target + 1 (0: unknown) */
        bool started;      /* the headers were seen */
        struct strbuf body;
};

enum body_kind { BODY_NONE, BODY_STATIC, BODY_OWNED, BODY_FD };

struct header {
        char *name, *value;
};

struct httpd_response {
        unsigned status;
        enum body_kind kind;
        const char *data; /* BODY_STATIC, BODY_OWNED */
        char *owned;      /* BODY_OWNED */
        uint64_t len;     /* body bytes */
        int fd;           /* BODY_FD, owned */
        uint64_t offset;
        const char *content_type; /* static */
        struct header *headers;
        size_t nheaders, headers_cap;
};

/* ---- responses -------------------------------------------------------------- */

static void body_release(struct httpd_response *r) {
        free(r->owned);
        r->owned = NULL;
        if (r->fd >= 0)
                close(r->fd);
        r->fd = -1;
        r->data = NULL;
        r->len = 0;
        r->content_type = NULL;
        r->kind = BODY_NONE;
}

static void response_done(struct httpd_response *r) {
        body_release(r);
        for (size_t i = 0; i < r->nheaders; i++) {
                free(r->headers[i].name);
                free(r->headers[i].value);
        }
        free(r->headers);
}

void httpd_respond_text(struct httpd_response *r, unsigned status, const char *text) {
        body_release(r);
        r->status = status;
        r->kind = BODY_STATIC;
        r->data = text;
        r->len = strlen(text);
        r->content_type = "text/plain; charset=utf-8";
}

void httpd_respond_json(struct httpd_response *r, unsigned status, char *json, size_t len) {
        body_release(r);
        r->status = status;
        r->kind = BODY_OWNED;
        r->data = r->owned = json;
        r->len = len;
        r->content_type = "application/json";
}

void httpd_respond_error(struct httpd_response *r, unsigned status, const char *message) {
        struct strbuf sb = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &sb, false);
        json_begin_object(&w);
        json_key(&w, "error");
        json_string(&w, message);
        json_end_object(&w);
        strbuf_addc(&sb, '\n');
        size_t len = sb.len;
        httpd_respond_json(r, status, strbuf_detach(&sb), len);
}

void httpd_respond_fd(struct httpd_response *r, unsigned status, int fd, uint64_t offset,
                      uint64_t length) {
        body_release(r);
        r->status = status;
        r->kind = BODY_FD;
        r->fd = fd;
        r->offset = offset;
        r->len = length;
}

void httpd_respond_empty(struct httpd_response *r, unsigned status) {
        body_release(r);
        r->status = status;
}

void httpd_response_header(struct httpd_response *r, const char *name, const char *value) {
        GROW(r->headers, r->nheaders, r->headers_cap);
        r->headers[r->nheaders++] = (struct header){xstrdup(name), xstrdup(value)};
}

/* The libmicrohttpd response for r, or NULL. A file's fd passes to it. */
static struct MHD_Response *make_response(struct httpd_response *r) {
        struct MHD_Response *resp = NULL;
        switch (r->kind) {
        case BODY_NONE:
                resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
                break;
        case BODY_STATIC:
                resp = MHD_create_response_from_buffer(r->len, (void *)r->data,
                                                       MHD_RESPMEM_PERSISTENT);
                break;
        case BODY_OWNED:
                resp = MHD_create_response_from_buffer(r->len, r->owned, MHD_RESPMEM_MUST_FREE);
                if (resp)
                        r->owned = NULL; /* the response frees it now */
                break;
        case BODY_FD:
                resp = MHD_create_response_from_fd_at_offset64(r->len, r->fd, r->offset);
                if (resp)
                        r->fd = -1; /* the response owns it now */
                break;
        }
        if (!resp)
                return NULL;
        if (r->content_type)
                MHD_add_response_header(resp, "Content-Type", r->content_type);
        for (size_t i = 0; i < r->nheaders; i++)
                MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
        return resp;
}

/* ---- ranges ----------------------------------------------------------------- */

static const char *skip_ows(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

/* 1*DIGIT at *pp, saturating at UINT64_MAX (a position past any file is
 * still a valid, unsatisfiable position). False when there is no digit. */
static bool parse_digits(const char **pp, uint64_t *ret) {
        const char *p = *pp;
        uint64_t v = 0;
        if (*p < '0' || *p > '9')
                return false;
        for (; *p >= '0' && *p <= '9'; p++)
                if (__builtin_mul_overflow(v, 10, &v) ||
                    __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
                        v = UINT64_MAX;
        *pp = p;
        *ret = v;
        return true;
}

int httpd_parse_range(const char *h, uint64_t size, uint64_t *ret_first, uint64_t *ret_last) {
        if (!h)
                return HTTPD_RANGE_IGNORE;
        /* ranges-specifier = range-unit "=" range-set; units are
         * case-insensitive, and one we do not know is ignored (§14.2). */
        const char *eq = strchr(h, '=');
        if (!eq || eq - h != 5 || strncasecmp(h, "bytes", 5) != 0)
                return HTTPD_RANGE_IGNORE;
        size_t specs = 0, satisfiable = 0;
        bool empty_satisfiable = false;
        uint64_t first = 0, last = 0;
        /* range-set = 1#range-spec: OWS around commas, empty elements
         * skipped (RFC 9110 §5.6.1.2). Any invalid range-spec makes the
         * whole header invalid, and an invalid header is ignored. */
        for (const char *p = eq + 1;;) {
                p = skip_ows(p);
                if (*p == ',') {
                        p++;
                        continue;
                }
                if (!*p)
                        break;
                uint64_t a = 0, b = 0;
                bool sat;
                if (*p == '-') { /* suffix-range: the last b bytes */
                        p++;
                        if (!parse_digits(&p, &b))
                                return HTTPD_RANGE_IGNORE;
                        /* satisfiable when b > 0; an empty file has no byte
                         * to send, so that is answered whole (200). */
                        if (b > 0 && size == 0)
                                empty_satisfiable = true;
                        sat = b > 0 && size > 0;
                        if (sat) {
                                a = b >= size ? 0 : size - b;
                                b = size - 1;
                        }
                } else { /* int-range: first-pos "-" [ last-pos ] */
                        if (!parse_digits(&p, &a) || *p != '-')
                                return HTTPD_RANGE_IGNORE;
                        p++;
                        bool has_last = parse_digits(&p, &b);
                        if (has_last && b < a)
                                return HTTPD_RANGE_IGNORE; /* invalid (§14.1.1) */
                        sat = a < size;
                        if (sat && (!has_last || b >= size))
                                b = size - 1;
                }
                p = skip_ows(p);
                if (*p && *p != ',')
                        return HTTPD_RANGE_IGNORE;
                specs++;
                if (sat) {
                        satisfiable++;
                        first = a;
                        last = b;
                }
        }
        if (specs == 0)
                return HTTPD_RANGE_IGNORE;
        if (satisfiable == 0)
                return empty_satisfiable ? HTTPD_RANGE_IGNORE : HTTPD_RANGE_UNSATISFIABLE;
        if (satisfiable > 1)
                return HTTPD_RANGE_IGNORE; /* no multipart/byteranges: the whole file */
        *ret_first = first;
        *ret_last = last;
        return HTTPD_RANGE_ONE;
}


/* ---- the access log ----------------------------------------------------------- */

/* Appends s[0..n) to buf (at *o, capacity cap), escaping every byte outside
 * printable ASCII, and '\', as \xHH. */
static void log_escaped(char *buf, size_t cap, size_t *o, const char *s, size_t n) {
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                bool plain = c > 0x20 && c < 0x7f && c != '\\';
                if (*o + (plain ? 1 : 4) >= cap)
                        return;
                if (plain) {
                        buf[(*o)++] = (char)c;
                } else {
                        buf[(*o)++] = '\\';
                        buf[(*o)++] = 'x';
                        buf[(*o)++] = hex[c >> 4];
                        buf[(*o)++] = hex[c & 15];
                }
        }
}

static void log_plain(char *buf, size_t cap, size_t *o, const char *s) {
        size_t n = strlen(s);
        if (*o + n >= cap)
                n = *o + 1 < cap ? cap - *o - 1 : 0;
        memcpy(buf + *o, s, n);
        *o += n;
}


void httpd_log_line(const char *client, const char *method, const char *path, unsigned status,
                    uint64_t bytes, char *buf, size_t n) {
        if (n == 0)
                return;
        size_t o = 0;
        if (!client)
                client = "-";
        log_escaped(buf, n, &o, client, strnlen(client, INET6_ADDRSTRLEN + 8));
        log_plain(buf, n, &o, " ");
        size_t ml = strnlen(method, HTTPD_LOG_METHOD_MAX + 1);
        log_escaped(buf, n, &o, method, ml > HTTPD_LOG_METHOD_MAX ? HTTPD_LOG_METHOD_MAX : ml);
        if (ml > HTTPD_LOG_METHOD_MAX)
                log_plain(buf, n, &o, "...");
        log_plain(buf, n, &o, " ");
        size_t pl = strcspn(path, "?");
        log_escaped(buf, n, &o, path, pl > HTTPD_LOG_PATH_MAX ? HTTPD_LOG_PATH_MAX : pl);
        if (pl > HTTPD_LOG_PATH_MAX)
                log_plain(buf, n, &o, "...");
        char tail[48];
        snprintf(tail, sizeof(tail), " %u %" PRIu64, status, bytes);
        log_plain(buf, n, &o, tail);
        buf[o] = 0;
}

/* ---- libmicrohttpd ------------------------------------------------------------- */

const char *httpd_request_header(const struct httpd_request *rq, const char *name) {
        return rq->conn ? MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *httpd_request_arg(const struct httpd_request *rq, const char *key) {
        return rq->conn ? MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key) : NULL;
}

static void client_address(struct MHD_Connection *c, char *buf, size_t n) {
        snprintf(buf, n, "-");
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || !ci->client_addr)
                return;
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, n);
        else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, n);
}

/* Turns r into a response, logs it and queues it; frees r. */
static enum MHD_Result send_response(struct httpd *d, struct MHD_Connection *c, const char *client,
                                     const char *method, const char *url,
                                     struct httpd_response *r) {
        struct MHD_Response *resp = make_response(r);
        if (resp && d->opts.log) {
                char line[HTTPD_LOG_LINE_MAX];
                httpd_log_line(client, method, url, r->status, r->len, line, sizeof(line));
                d->opts.log(d->opts.log_userdata, line);
        }
        unsigned status = r->status;
        response_done(r);
        if (!resp)
                return MHD_NO;
        enum MHD_Result ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* Runs the caller's handler and queues its answer. */
static enum MHD_Result answer(struct httpd *d, struct MHD_Connection *c, struct exchange *x,
                              const char *url, const char *method, const char *version) {
        char client[INET6_ADDRSTRLEN] = "-";
        client_address(c, client, sizeof(client));
        /* note_target saw the target up to its first NUL; libmicrohttpd's
         * version string follows the whole target in the request line, so
         * a raw NUL shows as a gap. Anything unexpected is refused. */
        size_t seen = x ? x->target_len : 0;
        bool cut = !seen || !version || (uintptr_t)version <= (uintptr_t)url ||
                   (uintptr_t)version - (uintptr_t)url != seen;
        const struct httpd_request rq = {
                .method = method,
                .path = url,
                .path_cut = cut,
                .client = client,
                .body = x && x->body.len ? strbuf_str(&x->body) : NULL,
                .body_len = x ? x->body.len : 0,
                .conn = c,
        };
        struct httpd_response r = {.status = MHD_HTTP_INTERNAL_SERVER_ERROR, .fd = -1};
        d->handler(d->userdata, &rq, &r);
        return send_response(d, c, client, method, url, &r);
}

/* A request that announces a body: Content-Length other than 0, or any
 * Transfer-Encoding. */
static bool has_body(struct MHD_Connection *c, uint64_t *ret_length, bool *ret_known) {
        const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        *ret_known = false;
        if (te)
                return true;
        if (!cl)
                return false;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || end == cl || *end)
                v = UINT64_MAX; /* libmicrohttpd refuses it before us; be safe */
        *ret_known = true;
        *ret_length = v;
        return v > 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
        struct httpd *d = cls;
        struct exchange *x = *con_cls;
        if (!x || !x->started) {
                if (x)
                        x->started = true;
                uint64_t length = 0;
                bool known = false;
                if (!x || !d->opts.max_body || !has_body(c, &length, &known))
                        return answer(d, c, x, url, method, version);
                if (known && length > d->opts.max_body) {
                        /* Answered before the body is read; libmicrohttpd
                         * then closes the connection. */
                        char client[INET6_ADDRSTRLEN] = "-";
                        client_address(c, client, sizeof(client));
                        struct httpd_response r = {.fd = -1};
                        httpd_respond_text(&r, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
                        return send_response(d, c, client, method, url, &r);
                }
                return MHD_YES; /* the body follows */
        }
        if (*upload_data_size) {
                if (*upload_data_size > d->opts.max_body - x->body.len)
                        return MHD_NO; /* a chunked body past the cap: close */
                strbuf_add(&x->body, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }
        return answer(d, c, x, url, method, version);
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s) { return strlen(s); }

/* Called with the request target (path and query, not decoded) before the
 * handler: its length up to the first NUL, plus one, is kept, so the
 * handler can tell a target cut short by a raw NUL byte (which a C string
 * cannot show) from a whole one. */
static void *note_target(void *cls, const char *uri, struct MHD_Connection *c) {
        struct exchange *x = xcalloc(1, sizeof(*x));
        x->target_len = strlen(uri) + 1;
        return x;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
        struct exchange *x = *con_cls;
        if (!x)
                return;
        strbuf_free(&x->body);
        free(x);
        *con_cls = NULL;
}

/* "HOST:PORT", "PORT", ":PORT", "[V6]:PORT" -> a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ret, socklen_t *ret_len) {
        _cleanup_free_ char *host = NULL;
        const char *port;
        if (listen[0] == '[') {
                const char *close_br = strchr(listen, ']');
                if (!close_br || close_br[1] != ':')
                        return -EINVAL;
                host = xstrndup(listen + 1, close_br - listen - 1);
                port = close_br + 2;
        } else {
                const char *colon = strrchr(listen, ':');
                host = colon ? xstrndup(listen, colon - listen) : xstrdup("127.0.0.1");
                port = colon ? colon + 1 : listen;
        }
        if (!*host) {
                free(host);
                host = xstrdup("127.0.0.1");
        }
        if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
            atoi(port) > 65535)
                return -EINVAL;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
                return -EINVAL;
        memcpy(ret, ai->ai_addr, ai->ai_addrlen);
        *ret_len = ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
}

int httpd_start(const char *listen, const struct httpd_options *opts, httpd_handler handler,
                void *userdata, struct httpd **ret) {
        struct httpd_options o = opts ? *opts : (struct httpd_options){0};
        if (!o.max_connections)
                o.max_connections = HTTPD_MAX_CONNECTIONS;
        if (!o.max_per_client)
                o.max_per_client = HTTPD_MAX_PER_CLIENT;
        if (!o.idle_timeout_s)
                o.idle_timeout_s = HTTPD_IDLE_TIMEOUT_S;
        if (o.max_connections > HTTPD_MAX_CONNECTIONS_LIMIT ||
            o.max_per_client > o.max_connections || o.idle_timeout_s > HTTPD_IDLE_TIMEOUT_LIMIT_S ||
            o.max_body > HTTPD_MAX_BODY_LIMIT)
                return -ERANGE;
        if (!handler)
                return -EINVAL;
        struct sockaddr_storage sa;
        socklen_t salen = 0;
        int r = parse_listen(listen ? listen : "127.0.0.1:8080", &sa, &salen);
        if (r < 0)
                return r;
        struct httpd *d = xcalloc(1, sizeof(*d));
        d->opts = o;
        d->handler = handler;
        d->userdata = userdata;
        unsigned flags = MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
                                 ? MHD_USE_EPOLL_INTERNAL_THREAD
                                 : MHD_USE_AUTO_INTERNAL_THREAD;
        if (sa.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        d->d = MHD_start_daemon(
                flags, 0, NULL, NULL, handle, d, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                MHD_OPTION_CONNECTION_LIMIT, o.max_connections,
                MHD_OPTION_PER_IP_CONNECTION_LIMIT, o.max_per_client,
                MHD_OPTION_CONNECTION_TIMEOUT, o.idle_timeout_s,
                MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
                MHD_OPTION_URI_LOG_CALLBACK, note_target, NULL,
                MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
        if (!d->d) {
                int e = errno;
                free(d);
                return e ? -e : -EADDRINUSE;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->d, MHD_DAEMON_INFO_BIND_PORT);
        unsigned port = info ? info->port : 0;
        char host[INET6_ADDRSTRLEN] = "?";
        if (sa.ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host, sizeof(host));
        else
                inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host, sizeof(host));
        snprintf(d->url, sizeof(d->url), sa.ss_family == AF_INET6 ? "http://[%s]:%u" : "http://%s:%u",
                 host, port);
        *ret = d;
        return 0;
}

const char *httpd_url(const struct httpd *d) { return d->url; }

void httpd_stop(struct httpd *d) {
        if (!d)
                return;
        MHD_stop_daemon(d->d);
        free(d);
}
