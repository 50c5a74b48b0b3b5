/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.c — the store over HTTP (routes in store.h), served by net/httpd.h.
 *
 * Design: the request handling is serve_handle (serve.h), a function of the
 * request's method, raw path and a few headers plus a backend for names and
 * blobs: it needs no socket, so the unit tests and the fuzz entry point drive
 * it directly. The server side (httpd.h: one polling thread, so the store's
 * SQLite connection has one user and needs no locking; sendfile; connection
 * limits; the access log) only hands the request over and turns the decision
 * into a response.
 *
 * Safety: the path of a request never reaches the file system. libmicrohttpd
 * does not decode %XX (httpd.h), so serve_handle sees the path as
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
#include "net/httpd.h"

#include <inttypes.h>
#include <microhttpd.h> /* MHD_HTTP_* status names */
#include <openssl/evp.h>

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
        int k = httpd_parse_range(range, size, &first, &last);
        if (k == HTTPD_RANGE_UNSATISFIABLE) {
                close(fd);
                return answer_text(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
        }
        r->status = k == HTTPD_RANGE_ONE ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK;
        r->body = SERVE_BODY_FILE;
        r->fd = fd;
        r->first = k == HTTPD_RANGE_ONE ? first : 0;
        r->length = k == HTTPD_RANGE_ONE ? last - first + 1 : size;
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

void serve_log_line(const struct serve_request *rq, unsigned status, uint64_t bytes, char *buf,
                    size_t n) {
        httpd_log_line(rq->client, rq->method, rq->path, status, bytes, buf, n);
}

/* ---- the server (net/httpd.h) --------------------------------------------- */

struct store_server {
        struct store *st;
        struct httpd *d;
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

/* The headers r implies (serve.h) besides Content-Type for text and JSON
 * (httpd.h's). Content-Disposition's filename is a valid store name, which
 * has no quote or backslash to escape (checked again here). */
static void add_headers(struct httpd_response *resp, const struct serve_response *r) {
        char buf[160];
        if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
                httpd_response_header(resp, "Allow", "GET, HEAD");
        if (r->status == MHD_HTTP_RANGE_NOT_SATISFIABLE) {
                snprintf(buf, sizeof(buf), "bytes */%" PRIu64, r->size);
                httpd_response_header(resp, "Content-Range", buf);
        }
        if (r->body == SERVE_BODY_LISTING)
                httpd_response_header(resp, "Cache-Control", "no-cache");
        if (r->body != SERVE_BODY_FILE && r->body != SERVE_BODY_NONE)
                return;
        if (r->status == MHD_HTTP_PARTIAL_CONTENT) {
                snprintf(buf, sizeof(buf), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, r->first,
                         r->first + r->length - 1, r->size);
                httpd_response_header(resp, "Content-Range", buf);
        }
        if (r->body == SERVE_BODY_FILE) {
                httpd_response_header(resp, "Content-Type", "application/octet-stream");
                if (r->filename[0] && store_name_valid(r->filename)) {
                        snprintf(buf, sizeof(buf), "attachment; filename=\"%s\"", r->filename);
                        httpd_response_header(resp, "Content-Disposition", buf);
                }
        }
        unsigned char raw[32];
        for (size_t i = 0; i < 32; i++)
                raw[i] = (unsigned char)(hex_value((unsigned char)r->sha256[2 * i]) * 16 +
                                         hex_value((unsigned char)r->sha256[2 * i + 1]));
        char b64[64];
        EVP_EncodeBlock((unsigned char *)b64, raw, 32);
        snprintf(buf, sizeof(buf), "\"%s\"", r->sha256);
        httpd_response_header(resp, "ETag", buf);
        httpd_response_header(resp, "Accept-Ranges", "bytes");
        snprintf(buf, sizeof(buf), "sha-256=%s", b64);
        httpd_response_header(resp, "Digest", buf);
        httpd_response_header(resp, "X-Checksum-Sha256", r->sha256);
        httpd_response_header(resp, "Cache-Control",
                              r->immutable ? "public, max-age=31536000, immutable" : "no-cache");
}

static void handle(void *userdata, const struct httpd_request *hr, struct httpd_response *ret) {
        struct store_server *srv = userdata;
        const struct serve_request rq = {
                .method = hr->method,
                .path = hr->path,
                .path_cut = hr->path_cut,
                .client = hr->client,
                .range = httpd_request_header(hr, "Range"),
                .if_range = httpd_request_header(hr, "If-Range"),
                .if_none_match = httpd_request_header(hr, "If-None-Match"),
        };
        const struct serve_backend be = {.lookup = store_lookup, .open_blob = store_blob,
                                         .ctx = srv};
        struct serve_response r;
        serve_handle(&rq, &be, &r);
        if (r.body == SERVE_BODY_LISTING) {
                size_t n = 0;
                char *json = listing_json(srv->st, &n);
                if (json)
                        httpd_respond_json(ret, r.status, json, n);
                else
                        answer_text(&r, MHD_HTTP_INTERNAL_SERVER_ERROR, "catalog error\n");
        }
        if (r.body == SERVE_BODY_TEXT)
                httpd_respond_text(ret, r.status, r.text);
        else if (r.body == SERVE_BODY_NONE)
                httpd_respond_empty(ret, r.status);
        else if (r.body == SERVE_BODY_FILE) {
                httpd_respond_fd(ret, r.status, r.fd, r.first, r.length);
                r.fd = -1; /* the response owns it now */
        }
        add_headers(ret, &r);
        serve_response_done(&r);
}

int store_serve_start(struct store *st, const char *listen, const struct store_serve_options *o,
                      void (*log)(void *userdata, const char *line), void *userdata,
                      struct store_server **ret) {
        const struct httpd_options ho = {
                .max_connections = o ? o->max_connections : 0,
                .max_per_client = o ? o->max_per_client : 0,
                .idle_timeout_s = o ? o->idle_timeout_s : 0,
                .log = log,
                .log_userdata = userdata,
        };
        struct store_server *srv = xcalloc(1, sizeof(*srv));
        srv->st = st;
        int r = httpd_start(listen, &ho, handle, srv, &srv->d);
        if (r < 0) {
                free(srv);
                return r;
        }
        *ret = srv;
        return 0;
}

const char *store_server_url(const struct store_server *srv) { return httpd_url(srv->d); }

void store_serve_stop(struct store_server *srv) {
        if (!srv)
                return;
        httpd_stop(srv->d);
        free(srv);
}
