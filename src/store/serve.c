/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.c — the store over HTTP, with libmicrohttpd (routes in store.h).
 *
 * Design: the request handling is serve_handle (serve.h), a function of the
 * request's method, raw path and a few headers plus a backend for names and
 * blobs: it needs no socket, so the unit tests and the fuzz entry point drive
 * it directly. The libmicrohttpd side only gathers the request, turns the
 * decision into a response and logs it.
 *
 * One libmicrohttpd polling thread (epoll on Linux) answers every request, so
 * the store's SQLite connection has one user and needs no locking; file
 * bodies go out with sendfile from an fd the response owns, so a slow client
 * costs a socket, not a thread. Connections are bounded in total
 * (max_connections), per client address (max_per_client: one client cannot
 * take every slot) and in idle time (idle_timeout_s: a connection that sends
 * or reads nothing for that long is closed, a slow but moving download is
 * not).
 *
 * Safety: the path of a request never reaches the file system. libmicrohttpd
 * is told not to decode %XX (no_unescape), so serve_handle sees the path as
 * sent and decodes it itself, segment by segment, refusing anything that
 * does not decode to printable ASCII (400). A request names an image
 * (NAME/VERSION/FILE, each checked by store_name_valid and then looked up in
 * the catalog) or a digest (64 lowercase hex digits); the file opened is
 * always blobs/sha256/xx/<digest from the catalog>.
 */
#include "store/serve.h"
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
#include <strings.h>
#include <sys/socket.h>

/* Segments of a path kept for routing (the longest route has four). */
#define SERVE_SEGMENTS_MAX 4

/* ---- request handling without a socket ------------------------------------ */

void serve_response_done(struct serve_response *r) {
        if (r->fd >= 0)
                close(r->fd);
        r->fd = -1;
}

/* Sets a short text answer; returns its status. */
static unsigned answer_text(struct serve_response *r, unsigned status, const char *text) {
        r->status = status;
        r->body = SERVE_BODY_TEXT;
        r->text = text;
        return status;
}

/* RFC 3986 pchar without the pct-encoded form, plus '/'. */
static bool path_char(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("-._~!$&'()*+,;=:@/", c));
}

static int hex_value(unsigned char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decodes raw[0..n) (one segment, no '/') into out (n + 1 bytes). Returns
 * the decoded length, or -EBADMSG for a byte that is not a path character,
 * a malformed %-escape, or an escape that decodes to anything but printable
 * ASCII (NUL, control characters, DEL, bytes >= 0x80). */
static int decode_segment(const char *raw, size_t n, char *out) {
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)raw[i];
                if (c == '%') {
                        if (n - i < 3)
                                return -EBADMSG;
                        int h = hex_value((unsigned char)raw[i + 1]);
                        int l = hex_value((unsigned char)raw[i + 2]);
                        if (h < 0 || l < 0)
                                return -EBADMSG;
                        c = (unsigned char)(h * 16 + l);
                        if (c < 0x20 || c > 0x7e)
                                return -EBADMSG;
                        i += 2;
                } else if (!path_char(c) || c == '/') {
                        return -EBADMSG;
                }
                out[o++] = (char)c;
        }
        out[o] = 0;
        return (int)o;
}

static bool is_sha256_hex(const char *s) {
        return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* True when an If-None-Match list holds etag (or "*"): weak comparison. */
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
                if (m >= 2 && strncmp(t, "W/", 2) == 0)
                        t += 2, m -= 2;
                if ((m == 1 && *t == '*') || (m == el && memcmp(t, etag, el) == 0))
                        return true;
                p += n;
        }
        return false;
}

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

int serve_parse_range(const char *h, uint64_t size, uint64_t *ret_first, uint64_t *ret_last) {
        if (!h)
                return SERVE_RANGE_IGNORE;
        /* ranges-specifier = range-unit "=" range-set; units are
         * case-insensitive, and one we do not know is ignored (§14.2). */
        const char *eq = strchr(h, '=');
        if (!eq || eq - h != 5 || strncasecmp(h, "bytes", 5) != 0)
                return SERVE_RANGE_IGNORE;
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
                                return SERVE_RANGE_IGNORE;
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
                                return SERVE_RANGE_IGNORE;
                        p++;
                        bool has_last = parse_digits(&p, &b);
                        if (has_last && b < a)
                                return SERVE_RANGE_IGNORE; /* invalid (§14.1.1) */
                        sat = a < size;
                        if (sat && (!has_last || b >= size))
                                b = size - 1;
                }
                p = skip_ows(p);
                if (*p && *p != ',')
                        return SERVE_RANGE_IGNORE;
                specs++;
                if (sat) {
                        satisfiable++;
                        first = a;
                        last = b;
                }
        }
        if (specs == 0)
                return SERVE_RANGE_IGNORE;
        if (satisfiable == 0)
                return empty_satisfiable ? SERVE_RANGE_IGNORE : SERVE_RANGE_UNSATISFIABLE;
        if (satisfiable > 1)
                return SERVE_RANGE_IGNORE; /* no multipart/byteranges: the whole file */
        *ret_first = first;
        *ret_last = last;
        return SERVE_RANGE_ONE;
}

/* Answers with a blob (or 304, 416, an error); returns the status. */
static unsigned answer_blob(const struct serve_request *rq, const struct serve_backend *be,
                            const char *sha256, const char *filename, bool immutable,
                            struct serve_response *r) {
        uint64_t size = 0;
        int fd = be->open_blob(be->ctx, sha256, &size);
        if (fd == -ENOENT)
                return answer_text(r, MHD_HTTP_NOT_FOUND, "not found\n");
        if (fd < 0)
                return answer_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                   fd == -EUCLEAN ? "blob changed since it was stored\n"
                                                  : "cannot open blob\n");
        memcpy(r->sha256, sha256, sizeof(r->sha256));
        snprintf(r->filename, sizeof(r->filename), "%s", filename ? filename : "");
        r->immutable = immutable;
        r->size = size;
        char etag[70];
        snprintf(etag, sizeof(etag), "\"%s\"", sha256);
        /* Preconditions first (RFC 9110 §13.2.2): If-None-Match, then Range. */
        if (etag_listed(rq->if_none_match, etag)) {
                close(fd);
                r->body = SERVE_BODY_NONE;
                return r->status = MHD_HTTP_NOT_MODIFIED;
        }
        /* Range is defined for GET only (§14.2); If-Range compares strongly,
         * and a date never matches (we send no Last-Modified): send all. */
        const char *range = streq(rq->method, "GET") ? rq->range : NULL;
        if (range && rq->if_range && !streq(rq->if_range, etag))
                range = NULL;
        uint64_t first = 0, last = 0;
        int k = serve_parse_range(range, size, &first, &last);
        if (k == SERVE_RANGE_UNSATISFIABLE) {
                close(fd);
                return answer_text(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
        }
        r->status = k == SERVE_RANGE_ONE ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK;
        r->body = SERVE_BODY_FILE;
        r->fd = fd;
        r->first = k == SERVE_RANGE_ONE ? first : 0;
        r->length = k == SERVE_RANGE_ONE ? last - first + 1 : size;
        return r->status;
}

/* serve_handle's decision; returns the status. */
static unsigned decide(const struct serve_request *rq, const struct serve_backend *be,
                       struct serve_response *r) {
        if (!streq(rq->method, "GET") && !streq(rq->method, "HEAD"))
                return answer_text(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        size_t len = strcspn(rq->path, "?");
        if (len > SERVE_PATH_MAX)
                return answer_text(r, MHD_HTTP_URI_TOO_LONG, "path too long\n");
        if (rq->path[0] != '/' || rq->path_cut)
                return answer_text(r, MHD_HTTP_BAD_REQUEST, "malformed path\n");
        /* Split at '/', then decode each segment: every segment is checked,
         * the first SERVE_SEGMENTS_MAX are kept for routing. */
        char seg[SERVE_SEGMENTS_MAX][SERVE_PATH_MAX + 1];
        size_t nseg = 0;
        for (size_t i = 1;;) {
                size_t n = strcspn(rq->path + i, "/?");
                if (n > len - i)
                        n = len - i;
                char scratch[SERVE_PATH_MAX + 1];
                char *out = nseg < SERVE_SEGMENTS_MAX ? seg[nseg] : scratch;
                if (decode_segment(rq->path + i, n, out) < 0)
                        return answer_text(r, MHD_HTTP_BAD_REQUEST,
                                           "malformed path (bad %-escape or character)\n");
                nseg++;
                i += n;
                if (i >= len)
                        break;
                i++; /* the '/' */
        }
        if (streq(seg[0], "images") && (nseg == 1 || (nseg == 2 && !seg[1][0]))) {
                r->body = SERVE_BODY_LISTING;
                return r->status = MHD_HTTP_OK;
        }
        if (streq(seg[0], "images")) {
                if (nseg != 4 || !store_name_valid(seg[1]) || !store_name_valid(seg[2]) ||
                    !store_name_valid(seg[3]))
                        return answer_text(r, MHD_HTTP_BAD_REQUEST,
                                           "expected /images/NAME/VERSION/FILE\n");
                char sha[65] = "";
                int k = be->lookup(be->ctx, seg[1], seg[2], seg[3], sha);
                if (k == -ENOENT)
                        return answer_text(r, MHD_HTTP_NOT_FOUND, "not found\n");
                if (k < 0 || !is_sha256_hex(sha))
                        return answer_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "catalog error\n");
                return answer_blob(rq, be, sha, seg[3], !streq(seg[2], "latest"), r);
        }
        if (nseg >= 2 && streq(seg[0], "blobs") && streq(seg[1], "sha256")) {
                if (nseg != 3 || !is_sha256_hex(seg[2]))
                        return answer_text(r, MHD_HTTP_BAD_REQUEST,
                                           "expected /blobs/sha256/<64 lowercase hex digits>\n");
                return answer_blob(rq, be, seg[2], NULL, true, r);
        }
        return answer_text(r, MHD_HTTP_NOT_FOUND,
                           "not found (try /images, /images/NAME/VERSION/FILE, /blobs/sha256/HEX)\n");
}

void serve_handle(const struct serve_request *rq, const struct serve_backend *be,
                  struct serve_response *ret) {
        *ret = (struct serve_response){.fd = -1};
        decide(rq, be, ret);
}

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

void serve_log_line(const struct serve_request *rq, unsigned status, uint64_t bytes, char *buf,
                    size_t n) {
        if (n == 0)
                return;
        size_t o = 0;
        const char *client = rq->client ? rq->client : "-";
        log_escaped(buf, n, &o, client, strnlen(client, INET6_ADDRSTRLEN + 8));
        log_plain(buf, n, &o, " ");
        size_t ml = strnlen(rq->method, SERVE_LOG_METHOD_MAX + 1);
        log_escaped(buf, n, &o, rq->method, ml > SERVE_LOG_METHOD_MAX ? SERVE_LOG_METHOD_MAX : ml);
        if (ml > SERVE_LOG_METHOD_MAX)
                log_plain(buf, n, &o, "...");
        log_plain(buf, n, &o, " ");
        size_t pl = strcspn(rq->path, "?");
        log_escaped(buf, n, &o, rq->path, pl > SERVE_PATH_MAX ? SERVE_PATH_MAX : pl);
        if (pl > SERVE_PATH_MAX)
                log_plain(buf, n, &o, "...");
        char tail[48];
        snprintf(tail, sizeof(tail), " %u %" PRIu64, status, bytes);
        log_plain(buf, n, &o, tail);
        buf[o] = 0;
}

/* ---- libmicrohttpd ------------------------------------------------------- */

struct store_server {
        struct store *st;
        struct MHD_Daemon *d;
        char url[128];
        void (*log)(void *userdata, const char *line);
        void *userdata;
};

static int store_lookup(void *ctx, const char *name, const char *version, const char *file,
                        char ret_sha256[65]) {
        struct store_server *srv = ctx;
        _cleanup_free_ char *ref = xasprintf("%s:%s", name, version);
        struct store_entry *v = NULL;
        size_t n = 0;
        int r = store_resolve(srv->st, ref, &v, &n);
        if (r < 0)
                return r;
        r = -ENOENT;
        for (size_t i = 0; i < n; i++)
                if (streq(v[i].file, file)) {
                        memcpy(ret_sha256, v[i].sha256, 65);
                        r = 0;
                }
        store_entries_free(v, n);
        return r;
}

static int store_blob(void *ctx, const char *sha256, uint64_t *ret_size) {
        struct store_server *srv = ctx;
        return store_open_blob(srv->st, sha256, ret_size);
}

/* The catalog as JSON, or NULL when it cannot be read. */
static char *listing_json(struct store *st, size_t *ret_len) {
        struct store_entry *v = NULL;
        size_t n = 0;
        if (store_list(st, NULL, &v, &n) < 0)
                return NULL;
        struct strbuf sb = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &sb, true);
        json_begin_object(&w);
        json_key(&w, "images");
        store_entries_json(v, n, &w);
        json_end_object(&w);
        strbuf_addc(&sb, '\n');
        store_entries_free(v, n);
        *ret_len = sb.len;
        return strbuf_detach(&sb);
}

/* The headers r implies (serve.h). Content-Disposition's filename is a
 * valid store name, which has no quote or backslash to escape (checked again
 * here). */
static void add_headers(struct MHD_Response *resp, const struct serve_response *r) {
        char buf[160];
        if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, "Allow", "GET, HEAD");
        if (r->status == MHD_HTTP_RANGE_NOT_SATISFIABLE) {
                snprintf(buf, sizeof(buf), "bytes */%" PRIu64, r->size);
                MHD_add_response_header(resp, "Content-Range", buf);
        }
        if (r->body == SERVE_BODY_TEXT)
                MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
        if (r->body == SERVE_BODY_LISTING) {
                MHD_add_response_header(resp, "Content-Type", "application/json");
                MHD_add_response_header(resp, "Cache-Control", "no-cache");
        }
        if (r->body != SERVE_BODY_FILE && r->body != SERVE_BODY_NONE)
                return;
        if (r->status == MHD_HTTP_PARTIAL_CONTENT) {
                snprintf(buf, sizeof(buf), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, r->first,
                         r->first + r->length - 1, r->size);
                MHD_add_response_header(resp, "Content-Range", buf);
        }
        if (r->body == SERVE_BODY_FILE) {
                MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
                if (r->filename[0] && store_name_valid(r->filename)) {
                        snprintf(buf, sizeof(buf), "attachment; filename=\"%s\"", r->filename);
                        MHD_add_response_header(resp, "Content-Disposition", buf);
                }
        }
        unsigned char raw[32];
        for (size_t i = 0; i < 32; i++)
                raw[i] = (unsigned char)(hex_value((unsigned char)r->sha256[2 * i]) * 16 +
                                         hex_value((unsigned char)r->sha256[2 * i + 1]));
        char b64[64];
        EVP_EncodeBlock((unsigned char *)b64, raw, 32);
        snprintf(buf, sizeof(buf), "\"%s\"", r->sha256);
        MHD_add_response_header(resp, "ETag", buf);
        MHD_add_response_header(resp, "Accept-Ranges", "bytes");
        snprintf(buf, sizeof(buf), "sha-256=%s", b64);
        MHD_add_response_header(resp, "Digest", buf);
        MHD_add_response_header(resp, "X-Checksum-Sha256", r->sha256);
        MHD_add_response_header(resp, "Cache-Control",
                                r->immutable ? "public, max-age=31536000, immutable" : "no-cache");
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

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
        struct store_server *srv = cls;
        char client[INET6_ADDRSTRLEN] = "-";
        if (srv->log)
                client_address(c, client, sizeof(client));
        /* note_target saw the target up to its first NUL; libmicrohttpd's
         * version string follows the whole target in the request line, so
         * a raw NUL shows as a gap. Anything unexpected is refused. */
        uintptr_t seen = (uintptr_t)*con_cls;
        bool cut = !seen || !version || (uintptr_t)version <= (uintptr_t)url ||
                   (uintptr_t)version - (uintptr_t)url != seen;
        const struct serve_request rq = {
                .method = method,
                .path = url,
                .path_cut = cut,
                .client = client,
                .range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range"),
                .if_range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Range"),
                .if_none_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match"),
        };
        const struct serve_backend be = {.lookup = store_lookup, .open_blob = store_blob,
                                         .ctx = srv};
        struct serve_response r;
        serve_handle(&rq, &be, &r);
        struct MHD_Response *resp = NULL;
        uint64_t len = 0;
        if (r.body == SERVE_BODY_LISTING) {
                size_t n = 0;
                char *json = listing_json(srv->st, &n);
                if (json) {
                        resp = MHD_create_response_from_buffer(n, json, MHD_RESPMEM_MUST_FREE);
                        if (!resp)
                                free(json);
                        len = n;
                } else {
                        answer_text(&r, MHD_HTTP_INTERNAL_SERVER_ERROR, "catalog error\n");
                }
        }
        if (r.body == SERVE_BODY_TEXT) {
                len = strlen(r.text);
                resp = MHD_create_response_from_buffer(len, (void *)r.text,
                                                       MHD_RESPMEM_PERSISTENT);
        } else if (r.body == SERVE_BODY_NONE) {
                resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        } else if (r.body == SERVE_BODY_FILE) {
                len = r.length;
                resp = MHD_create_response_from_fd_at_offset64(r.length, r.fd, r.first);
                if (resp)
                        r.fd = -1; /* the response owns it now */
        }
        serve_response_done(&r);
        if (!resp)
                return MHD_NO;
        add_headers(resp, &r);
        if (srv->log) {
                char line[SERVE_LOG_LINE_MAX];
                serve_log_line(&rq, r.status, len, line, sizeof(line));
                srv->log(srv->userdata, line);
        }
        enum MHD_Result ret = MHD_queue_response(c, r.status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* libmicrohttpd decodes %XX in the path before the handler by default; we
 * decode it ourselves (serve_handle), so leave it as sent. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s) { return strlen(s); }

/* Called with the request target (path and query, not decoded) before the
 * handler: its length up to the first NUL, plus one, becomes the request's
 * context (*con_cls), so the handler can tell a target cut short by a raw
 * NUL byte (which a C string cannot show) from a whole one. */
static void *note_target(void *cls, const char *uri, struct MHD_Connection *c) {
        return (void *)(uintptr_t)(strlen(uri) + 1);
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

int store_serve_start(struct store *st, const char *listen, const struct store_serve_options *o,
                      void (*log)(void *userdata, const char *line), void *userdata,
                      struct store_server **ret) {
        struct store_serve_options lim = {
                .max_connections = STORE_SERVE_MAX_CONNECTIONS,
                .max_per_client = STORE_SERVE_MAX_PER_CLIENT,
                .idle_timeout_s = STORE_SERVE_IDLE_TIMEOUT_S,
        };
        if (o && o->max_connections)
                lim.max_connections = o->max_connections;
        if (o && o->max_per_client)
                lim.max_per_client = o->max_per_client;
        if (o && o->idle_timeout_s)
                lim.idle_timeout_s = o->idle_timeout_s;
        if (lim.max_connections > STORE_SERVE_MAX_CONNECTIONS_LIMIT ||
            lim.max_per_client > lim.max_connections ||
            lim.idle_timeout_s > STORE_SERVE_IDLE_TIMEOUT_LIMIT_S)
                return -ERANGE;
        struct sockaddr_storage sa;
        socklen_t salen = 0;
        int r = parse_listen(listen ? listen : "127.0.0.1:8080", &sa, &salen);
        if (r < 0)
                return r;
        struct store_server *srv = xcalloc(1, sizeof(*srv));
        srv->st = st;
        srv->log = log;
        srv->userdata = userdata;
        unsigned flags = MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
                                 ? MHD_USE_EPOLL_INTERNAL_THREAD
                                 : MHD_USE_AUTO_INTERNAL_THREAD;
        if (sa.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        srv->d = MHD_start_daemon(
                flags, 0, NULL, NULL, handle, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                MHD_OPTION_CONNECTION_LIMIT, lim.max_connections,
                MHD_OPTION_PER_IP_CONNECTION_LIMIT, lim.max_per_client,
                MHD_OPTION_CONNECTION_TIMEOUT, lim.idle_timeout_s,
                MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
                MHD_OPTION_URI_LOG_CALLBACK, note_target, NULL, MHD_OPTION_END);
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
