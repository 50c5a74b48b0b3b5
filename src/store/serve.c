/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.c — the store over HTTP, with libmicrohttpd (routes in store.h).
 *
 * Design: one libmicrohttpd polling thread (epoll/poll, chosen by the
 * library) answers every request, so the store's SQLite connection has one
 * user and needs no locking; file bodies go out with sendfile from an fd the
 * response owns, so a slow client costs a socket, not a thread.
 *
 * Safety: the path of a request never reaches the file system. A request
 * names an image (NAME/VERSION/FILE, each checked by store_name_valid and
 * then looked up in the catalog) or a digest (64 lowercase hex digits); the
 * file opened is always blobs/sha256/xx/<digest from the catalog>.
 * libmicrohttpd decodes %XX before we see the path, so an encoded "../" is
 * a ".." segment here, which no name accepts: 400.
 */
#include "store/store.h"

#include "base/json.h"
#include "base/strbuf.h"
#include "base/util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#define SERVE_CONNECTION_LIMIT 256
#define SERVE_TIMEOUT_S 120
#define SERVE_PATH_MAX 1024

struct store_server {
        struct store *st;
        struct MHD_Daemon *d;
        char url[128];
        void (*log)(void *userdata, const char *line);
        void *userdata;
};

static enum MHD_Result reply(struct store_server *srv, struct MHD_Connection *c, const char *method,
                             const char *url, unsigned status, struct MHD_Response *resp,
                             uint64_t len) {
        if (srv->log) {
                char line[SERVE_PATH_MAX + 128];
                snprintf(line, sizeof(line), "%s %.*s %u %" PRIu64, method, SERVE_PATH_MAX, url,
                         status, len);
                srv->log(srv->userdata, line);
        }
        enum MHD_Result r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result reply_text(struct store_server *srv, struct MHD_Connection *c,
                                  const char *method, const char *url, unsigned status,
                                  const char *text) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                                    MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
        return reply(srv, c, method, url, status, resp, strlen(text));
}

/* Byte range request. Returns 1 with [*first, *last] set, 0 for no range
 * (absent), -1 unsatisfiable or malformed, -2 several ranges (served whole,
 * as RFC 9110 allows). */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last) {
        if (!h)
                return 0;
        const char *p = startswith(h, "bytes=");
        if (!p)
                return -1;
        if (strchr(p, ','))
                return -2;
        char *end;
        if (*p == '-') { /* suffix: the last N bytes */
                if (p[1] < '0' || p[1] > '9')
                        return -1;
                errno = 0;
                unsigned long long n = strtoull(p + 1, &end, 10);
                if (errno || *end || n == 0 || size == 0)
                        return -1;
                *first = n >= size ? 0 : size - n;
                *last = size - 1;
                return 1;
        }
        if (*p < '0' || *p > '9')
                return -1;
        errno = 0;
        unsigned long long a = strtoull(p, &end, 10);
        if (errno || *end != '-')
                return -1;
        unsigned long long b = size ? size - 1 : 0;
        if (end[1]) {
                if (end[1] < '0' || end[1] > '9')
                        return -1;
                char *e2;
                errno = 0;
                b = strtoull(end + 1, &e2, 10);
                if (errno || *e2 || b < a)
                        return -1;
                if (b >= size)
                        b = size - 1;
        }
        if (a >= size)
                return -1;
        *first = a;
        *last = b;
        return 1;
}

/* True when an If-None-Match list holds etag (or "*"). */
static bool etag_listed(const char *list, const char *etag) {
        if (!list)
                return false;
        size_t el = strlen(etag);
        for (const char *p = list; *p;) {
                p += strspn(p, " \t,");
                if (!*p)
                        break;
                size_t n = strcspn(p, ",");
                size_t m = n;
                while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
                        m--;
                const char *t = p;
                if (m >= 2 && startswith(t, "W/"))
                        t += 2, m -= 2;
                if ((m == 1 && *t == '*') || (m == el && memcmp(t, etag, el) == 0))
                        return true;
                p += n;
        }
        return false;
}

static enum MHD_Result send_blob(struct store_server *srv, struct MHD_Connection *c,
                                 const char *method, const char *url, const char *sha256,
                                 const char *filename, bool immutable) {
        uint64_t size = 0;
        int fd = store_open_blob(srv->st, sha256, &size);
        if (fd == -ENOENT)
                return reply_text(srv, c, method, url, MHD_HTTP_NOT_FOUND, "not found\n");
        if (fd < 0)
                return reply_text(srv, c, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  fd == -EUCLEAN ? "blob changed since it was stored\n"
                                                 : "cannot open blob\n");
        char etag[70];
        snprintf(etag, sizeof(etag), "\"%s\"", sha256);
        unsigned char raw[32];
        for (size_t i = 0; i < 32; i++) {
                unsigned v;
                sscanf(sha256 + 2 * i, "%2x", &v);
                raw[i] = (unsigned char)v;
        }
        char b64[64], digest[80];
        EVP_EncodeBlock((unsigned char *)b64, raw, 32);
        snprintf(digest, sizeof(digest), "sha-256=%s", b64);

        struct MHD_Response *resp;
        unsigned status = MHD_HTTP_OK;
        uint64_t first = 0, len = size;
        if (etag_listed(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match"), etag)) {
                close(fd);
                resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
                status = MHD_HTTP_NOT_MODIFIED;
                len = 0;
        } else {
                const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
                const char *if_range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Range");
                if (range && if_range && !streq(if_range, etag))
                        range = NULL; /* the client's copy is another version: send all */
                uint64_t last = 0;
                int k = parse_range(range, size, &first, &last);
                if (k == -1) {
                        close(fd);
                        char cr[64];
                        snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
                        resp = MHD_create_response_from_buffer(strlen("range not satisfiable\n"),
                                                               (void *)"range not satisfiable\n",
                                                               MHD_RESPMEM_PERSISTENT);
                        if (!resp)
                                return MHD_NO;
                        MHD_add_response_header(resp, "Content-Range", cr);
                        return reply(srv, c, method, url, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp, 0);
                }
                if (k == 1) {
                        status = MHD_HTTP_PARTIAL_CONTENT;
                        len = last - first + 1;
                }
                resp = MHD_create_response_from_fd_at_offset64(len, fd, first);
                if (!resp) {
                        close(fd);
                        return MHD_NO;
                }
                if (k == 1) {
                        char cr[96];
                        snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first,
                                 last, size);
                        MHD_add_response_header(resp, "Content-Range", cr);
                }
                MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
                if (filename) {
                        _cleanup_free_ char *cd = xasprintf("attachment; filename=\"%s\"", filename);
                        MHD_add_response_header(resp, "Content-Disposition", cd);
                }
        }
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "ETag", etag);
        MHD_add_response_header(resp, "Accept-Ranges", "bytes");
        MHD_add_response_header(resp, "Digest", digest);
        MHD_add_response_header(resp, "X-Checksum-Sha256", sha256);
        MHD_add_response_header(resp, "Cache-Control",
                                immutable ? "public, max-age=31536000, immutable" : "no-cache");
        return reply(srv, c, method, url, status, resp, len);
}

static enum MHD_Result send_listing(struct store_server *srv, struct MHD_Connection *c,
                                    const char *method, const char *url) {
        struct store_entry *v = NULL;
        size_t n = 0;
        int r = store_list(srv->st, NULL, &v, &n);
        if (r < 0)
                return reply_text(srv, c, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  "catalog error\n");
        struct strbuf sb = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &sb, true);
        json_begin_object(&w);
        json_key(&w, "images");
        store_entries_json(v, n, &w);
        json_end_object(&w);
        strbuf_addc(&sb, '\n');
        store_entries_free(v, n);
        size_t len = sb.len;
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, strbuf_detach(&sb),
                                                                    MHD_RESPMEM_MUST_FREE);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", "application/json");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        return reply(srv, c, method, url, MHD_HTTP_OK, resp, len);
}

/* Splits path (after a prefix) into exactly n '/'-separated segments. */
static bool split(const char *path, char seg[][STORE_NAME_MAX + 1], size_t n) {
        const char *p = path;
        for (size_t i = 0; i < n; i++) {
                size_t l = strcspn(p, "/");
                if (l == 0 || l > STORE_NAME_MAX)
                        return false;
                memcpy(seg[i], p, l);
                seg[i][l] = 0;
                p += l;
                if (i + 1 < n) {
                        if (*p != '/')
                                return false;
                        p++;
                }
        }
        return *p == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
        struct store_server *srv = cls;
        if (!streq(method, "GET") && !streq(method, "HEAD")) {
                struct MHD_Response *resp = MHD_create_response_from_buffer(
                        strlen("method not allowed\n"), (void *)"method not allowed\n",
                        MHD_RESPMEM_PERSISTENT);
                if (!resp)
                        return MHD_NO;
                MHD_add_response_header(resp, "Allow", "GET, HEAD");
                return reply(srv, c, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, resp, 0);
        }
        if (strlen(url) > SERVE_PATH_MAX)
                return reply_text(srv, c, method, url, MHD_HTTP_URI_TOO_LONG, "path too long\n");
        if (streq(url, "/images") || streq(url, "/images/"))
                return send_listing(srv, c, method, url);
        const char *rest;
        if ((rest = startswith(url, "/blobs/sha256/"))) {
                if (strlen(rest) != 64 || strspn(rest, "0123456789abcdef") != 64)
                        return reply_text(srv, c, method, url, MHD_HTTP_BAD_REQUEST,
                                          "expected /blobs/sha256/<64 lowercase hex digits>\n");
                return send_blob(srv, c, method, url, rest, NULL, true);
        }
        if ((rest = startswith(url, "/images/"))) {
                char seg[3][STORE_NAME_MAX + 1];
                if (!split(rest, seg, 3) || !store_name_valid(seg[0]) ||
                    !store_name_valid(seg[1]) || !store_name_valid(seg[2]))
                        return reply_text(srv, c, method, url, MHD_HTTP_BAD_REQUEST,
                                          "expected /images/NAME/VERSION/FILE\n");
                _cleanup_free_ char *ref = xasprintf("%s:%s", seg[0], seg[1]);
                struct store_entry *v = NULL;
                size_t n = 0;
                int r = store_resolve(srv->st, ref, &v, &n);
                if (r < 0 && r != -ENOENT)
                        return reply_text(srv, c, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                          "catalog error\n");
                char sha[65] = "";
                for (size_t i = 0; r >= 0 && i < n; i++)
                        if (streq(v[i].file, seg[2]))
                                memcpy(sha, v[i].sha256, sizeof(sha));
                store_entries_free(v, n);
                if (!sha[0])
                        return reply_text(srv, c, method, url, MHD_HTTP_NOT_FOUND, "not found\n");
                return send_blob(srv, c, method, url, sha, seg[2], !streq(seg[1], "latest"));
        }
        return reply_text(srv, c, method, url, MHD_HTTP_NOT_FOUND,
                          "not found (try /images, /images/NAME/VERSION/FILE, "
                          "/blobs/sha256/HEX)\n");
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

int store_serve_start(struct store *st, const char *listen,
                      void (*log)(void *userdata, const char *line), void *userdata,
                      struct store_server **ret) {
        struct sockaddr_storage sa;
        socklen_t salen = 0;
        int r = parse_listen(listen ? listen : "127.0.0.1:8080", &sa, &salen);
        if (r < 0)
                return r;
        struct store_server *srv = xcalloc(1, sizeof(*srv));
        srv->st = st;
        srv->log = log;
        srv->userdata = userdata;
        unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD;
        if (sa.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        srv->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, srv, MHD_OPTION_SOCK_ADDR,
                                  (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                                  (unsigned)SERVE_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned)SERVE_TIMEOUT_S, MHD_OPTION_END);
        if (!srv->d) {
                int e = errno;
                free(srv);
                return e ? -e : -EADDRINUSE;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
        unsigned port = info ? info->port : 0;
        char host[INET6_ADDRSTRLEN] = "?";
        if (sa.ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host, sizeof(host));
        else
                inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host, sizeof(host));
        snprintf(srv->url, sizeof(srv->url), sa.ss_family == AF_INET6 ? "http://[%s]:%u" : "http://%s:%u",
                 host, port);
        *ret = srv;
        return 0;
}

const char *store_server_url(const struct store_server *srv) { return srv->url; }

void store_serve_stop(struct store_server *srv) {
        if (!srv)
                return;
        MHD_stop_daemon(srv->d);
        free(srv);
}
