/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gcs.c — the Google Cloud Storage client (gcs.h) and the `gcs` publisher.
 *
 * One publish is a small state machine; each state is safe to interrupt:
 *
 *   1. SKIP CHECK  GET the object's resource: when its size and its own
 *                  metadata.sha256 (written with every object) are the
 *                  artifact's, nothing is sent; a missing or stale
 *                  <object>.sha256 sidecar is then (re)written. The sidecar
 *                  alone decides nothing (an out-of-band overwrite leaves it
 *                  behind).
 *   2. UPLOAD      a resumable session (gcs_upload): chunks of chunk_size,
 *                  a cut connection or a 5xx resumed from the committed
 *                  offset; the object's metadata.sha256 is set when the
 *                  session opens, so it lands with the last chunk.
 *   3. VERIFY      the final resource: size and metadata.sha256.
 *   4. SIDECAR     <object>.sha256 ("<hex>  <file name>\n") — last, so its
 *                  presence means the object is complete and verified.
 *
 * A resumable session's chunks are sequential by the protocol (each PUT
 * continues where the committed bytes end), so one artifact is one stream.
 *
 * Cleanup style: scoped (_cleanup_*), no gotos.
 */
#include "publish/gcs.h"

#include "base/clock.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/json_read.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "net/http.h"
#include "publish/gauth.h"
#include "publish/publish.h"
#include "spec/schema.h"

#include <ctype.h>
#include <inttypes.h>
#include <strings.h>

#define GCS_ANSWER_MAX (1u << 20)      /* an object resource, an error */
#define GCS_MESSAGE_MAX 300            /* server text quoted in an error */
#define GCS_SIDECAR_SUFFIX ".sha256"
#define GCS_SESSION_URI_MAX 8192

struct gcs {
        char *endpoint;           /* scheme://host[:port], no trailing '/' */
        uint64_t chunk;
        unsigned retries;
        struct gauth *auth;
        const struct publish_ctx *ctx;
        char *log_prefix;
        struct http_client *http;
        uint64_t sent, retried;
        bool token_failed;        /* the last send_authed got no token (message in err) */
};

/* ---- pieces ----------------------------------------------------------------- */

void gcs_content_range(char *buf, size_t n, uint64_t start, uint64_t len, uint64_t total) {
        if (len == 0)
                snprintf(buf, n, "bytes */%" PRIu64, total);
        else
                snprintf(buf, n, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, start + len - 1,
                         total);
}

int gcs_committed(const char *range, uint64_t total, uint64_t *ret) {
        if (!range) {
                *ret = 0;
                return 0;
        }
        const char *p = startswith(range, "bytes=0-");
        if (!p || !isdigit((unsigned char)*p))
                return -EBADMSG;
        char *end;
        errno = 0;
        unsigned long long last = strtoull(p, &end, 10);
        if (errno || *end || last >= total)
                return -EBADMSG;
        *ret = last + 1;
        return 0;
}

uint64_t gcs_chunk_len(uint64_t offset, uint64_t size, uint64_t chunk) {
        if (offset >= size)
                return 0;
        return size - offset < chunk ? size - offset : chunk;
}

bool gcs_object_name_ok(const char *name, struct strbuf *why) {
        size_t n = strlen(name);
        if (n == 0) {
                strbuf_adds(why, "object: empty");
                return false;
        }
        if (n > GCS_MAX_OBJECT_NAME) {
                strbuf_addf(why, "object: %zu bytes, longer than GCS's limit of %u bytes (UTF-8)", n,
                            GCS_MAX_OBJECT_NAME);
                return false;
        }
        if (strpbrk(name, "\r\n") || streq(name, ".") || streq(name, "..")) {
                strbuf_adds(why, "object: GCS refuses names with CR or LF, and '.' or '..'");
                return false;
        }
        return true;
}

bool gcs_bucket_name_ok(const char *b) {
        size_t n = strlen(b);
        bool dots = strchr(b, '.') != NULL;
        if (n < 3 || n > (dots ? 222u : 63u))
                return false;
        for (const char *p = b; *p; p++)
                if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || strchr("-_.", *p)))
                        return false;
        return isalnum((unsigned char)b[0]) && isalnum((unsigned char)b[n - 1]);
}

/* The endpoint as "scheme://host[:port]" (publish_parse_endpoint's rules). */
static int parse_endpoint(const char *ep, char **ret) {
        _cleanup_free_ char *scheme = NULL, *host = NULL;
        int r = publish_parse_endpoint(ep, &scheme, &host);
        if (r < 0)
                return r;
        *ret = xasprintf("%s://%s", scheme, host);
        return 0;
}

/* ---- the client --------------------------------------------------------------- */

static void http_log_cb(void *userdata, const char *line) {
        const struct gcs *g = userdata;
        _cleanup_free_ char *l = xasprintf("%s: %s\n", g->log_prefix, line);
        (void)write_all(g->ctx->log_fd, l, strlen(l));
}

int gcs_new(const struct gcs_config *cfg, struct gcs **ret, struct strbuf *err) {
        _cleanup_free_ char *ep = NULL;
        if (parse_endpoint(cfg->endpoint ? cfg->endpoint : GCS_DEFAULT_ENDPOINT, &ep) < 0) {
                strbuf_addf(err, "endpoint: '%s' is not http(s)://host[:port]", cfg->endpoint);
                return -EINVAL;
        }
        uint64_t chunk = cfg->chunk_size ? cfg->chunk_size : GCS_DEFAULT_CHUNK;
        if (chunk % GCS_CHUNK_UNIT || chunk > GCS_MAX_CHUNK) {
                strbuf_adds(err, "chunk_size: must be a multiple of 256 KiB, at most 1 GiB");
                return -EINVAL;
        }
        struct gcs *g = xcalloc(1, sizeof(*g));
        g->endpoint = TAKE_PTR(ep);
        g->chunk = chunk;
        g->retries = cfg->retries;
        g->auth = cfg->auth;
        g->ctx = cfg->ctx;
        g->log_prefix = xstrdup(cfg->log_prefix ? cfg->log_prefix : "gcs");
        struct http_options o = {
                .stall_timeout_s = cfg->timeout_s,
                .insecure = cfg->insecure,
                .ca_file = cfg->ca_file,
        };
        if (g->ctx && g->ctx->verbose && g->ctx->log_fd >= 0) {
                o.log = http_log_cb;
                o.log_userdata = g;
        }
        int r = http_client_new(&o, &g->http);
        if (r < 0) {
                strbuf_adds(err, "cannot create an HTTP client");
                gcs_free(g);
                return r;
        }
        *ret = g;
        return 0;
}

struct gcs *gcs_free(struct gcs *g) {
        if (!g)
                return NULL;
        http_client_free(g->http);
        free(g->endpoint);
        free(g->log_prefix);
        free(g);
        return NULL;
}

void gcs_bytes(const struct gcs *g, uint64_t *ret_sent, uint64_t *ret_retried) {
        *ret_sent = g->sent;
        *ret_retried = g->retried;
}

void gcs_object_done(struct gcs_object *o) {
        free(o->sha256);
        free(o->md5);
        free(o->generation);
        *o = (struct gcs_object){0};
}

static void json_value_freep(struct json_value **v) { json_value_free(*v); }

static void add_printable(struct strbuf *out, const char *s, size_t max) {
        for (size_t i = 0; s[i] && i < max; i++)
                strbuf_addc(out, (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?');
}

/* Records a failed request of step `what` in err; returns the -errno. */
static int describe_failure(struct gcs *g, const char *what, int r, const struct http_response *resp,
                            struct strbuf *err) {
        strbuf_addf(err, "%s: ", what);
        if (r < 0) {
                strbuf_adds(err, resp->error[0] ? resp->error : strerror(-r));
                if (r == -ECONNREFUSED)
                        strbuf_addf(err, " (is %s right?)", g->endpoint);
                return r;
        }
        strbuf_addf(err, "HTTP %ld", resp->status);
        _cleanup_(json_value_freep) struct json_value *j = NULL;
        if (resp->body && json_parse(resp->body, resp->body_len, NULL, &j, NULL) == 0) {
                const char *m = json_str(json_get(json_get(j, "error"), "message"));
                if (m && *m) {
                        strbuf_adds(err, ": ");
                        add_printable(err, m, GCS_MESSAGE_MAX);
                }
        }
        if (resp->status == 401) {
                strbuf_addf(err, " (the server refused %s: is it current, and for this project?)",
                            gauth_describe(g->auth));
                return -EACCES;
        }
        if (resp->status == 403) {
                strbuf_addf(err, " (%s may not do this: grant it roles/storage.objectAdmin on the "
                            "bucket, or use other credentials)", gauth_describe(g->auth));
                return -EACCES;
        }
        if (resp->status == 404)
                strbuf_adds(err, " (does the bucket exist?)");
        return -EPROTO;
}

/* One request with the bearer token (fetched, or refreshed after a 401,
 * once). req->headers are extra lines (NULL-terminated) or NULL. */
static int send_authed(struct gcs *g, const struct http_request *req, struct http_response *resp,
                       struct strbuf *err) {
        g->token_failed = false;
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_free_ char *tok = NULL;
                int r = gauth_token(g->auth, g->http, &tok, err);
                if (r < 0) {
                        g->token_failed = true;
                        return r;
                }
                const char *hdrs[16];
                size_t n = 0;
                _cleanup_free_ char *authz = xasprintf("Authorization: Bearer %s", tok);
                hdrs[n++] = authz;
                for (const char *const *h = req->headers; h && *h && n < ARRAY_SIZE(hdrs) - 1; h++)
                        hdrs[n++] = *h;
                hdrs[n] = NULL;
                struct http_request q = *req;
                q.headers = hdrs;
                r = http_request(g->http, &q, resp);
                explicit_bzero(authz, strlen(authz));
                explicit_bzero(tok, strlen(tok));
                if (r >= 0 && resp->status == 401 && attempt == 0 && gauth_invalidate(g->auth)) {
                        /* A bearer token may be revoked or expire early:
                         * fetch another and send once more. The refused
                         * attempt's body bytes were not kept. */
                        g->retried += req->body_fd >= 0 ? resp->bytes_sent : 0;
                        http_response_done(resp);
                        continue;
                }
                return r;
        }
}

/* Whether getting a token failed for now only (the token endpoint or the
 * metadata server unreachable or answering 5xx), not for good (refused,
 * no credentials, a malformed key). */
static bool token_failure_transient(int r) {
        return r == -EPROTO || r == -ETIMEDOUT || r == -ECONNRESET || r == -ECONNREFUSED || r == -EIO;
}

/* send_authed with retries on network errors, 408, 429 and 5xx — of the
 * request, or of getting its token. */
static int send_retry(struct gcs *g, const struct http_request *req, struct http_response *resp,
                      struct strbuf *err) {
        size_t before = err->len;
        for (unsigned attempt = 0;; attempt++) {
                int r = send_authed(g, req, resp, err);
                bool again = g->token_failed ? token_failure_transient(r)
                                             : publish_retryable(r, resp);
                if (!again || attempt >= g->retries)
                        return r;
                if (g->token_failed && err->buf) { /* only the last attempt's message */
                        err->len = before;
                        err->buf[before] = 0;
                }
                publish_backoff(attempt + 1);
        }
}

/* "<endpoint>/storage/v1/b/BUCKET/o/NAME" (NAME encoded, '/' too). */
static char *object_url(const struct gcs *g, const char *bucket, const char *name, const char *query) {
        _cleanup_strbuf_ struct strbuf u = STRBUF_INIT;
        strbuf_addf(&u, "%s/storage/v1/b/", g->endpoint);
        http_uri_encode(&u, bucket, strlen(bucket), false);
        strbuf_adds(&u, "/o/");
        http_uri_encode(&u, name, strlen(name), false);
        if (query)
                strbuf_addf(&u, "?%s", query);
        return strbuf_detach(&u);
}

/* Fills o from an object resource. */
static int parse_object(const struct http_response *resp, struct gcs_object *o) {
        _cleanup_(json_value_freep) struct json_value *j = NULL;
        if (!resp->body || json_parse(resp->body, resp->body_len, NULL, &j, NULL) < 0 ||
            j->type != JSON_OBJECT)
                return -EBADMSG;
        /* "size" is a string in the JSON API (int64 as text). */
        const char *size = json_str(json_get(j, "size"));
        char *end = NULL;
        if (!size || !isdigit((unsigned char)*size))
                return -EBADMSG;
        errno = 0;
        unsigned long long n = strtoull(size, &end, 10);
        if (errno || *end)
                return -EBADMSG;
        *o = (struct gcs_object){.size = n};
        const char *sha = json_str(json_get(json_get(j, "metadata"), "sha256"));
        o->sha256 = sha && strlen(sha) <= 128 ? xstrdup(sha) : NULL;
        o->md5 = xstrdup_null(json_str(json_get(j, "md5Hash")));
        o->generation = xstrdup_null(json_str(json_get(j, "generation")));
        return 0;
}

int gcs_object_get(struct gcs *g, const char *bucket, const char *name, struct gcs_object *ret,
                   struct strbuf *err) {
        _cleanup_free_ char *url = object_url(g, bucket, name, NULL);
        struct http_request req = HTTP_REQUEST_INIT;
        req.url = url;
        req.max_body = GCS_ANSWER_MAX;
        struct http_response resp = {0};
        int r = send_retry(g, &req, &resp, err);
        if (r >= 0 && resp.status == 404 && !g->token_failed) {
                /* A missing bucket is a 404 too: tell them apart. */
                bool no_bucket = resp.body && strstr(resp.body, "bucket does not exist");
                http_response_done(&resp);
                if (!no_bucket)
                        return -ENOENT;
                strbuf_addf(err, "checking the object: the bucket '%s' does not exist", bucket);
                return -EPROTO;
        }
        if (g->token_failed || r < 0 || resp.status != 200) {
                if (!g->token_failed)
                        r = describe_failure(g, "checking the object", r, &resp, err);
                http_response_done(&resp);
                return r < 0 ? r : -EIO;
        }
        r = parse_object(&resp, ret);
        if (r < 0)
                strbuf_adds(err, "checking the object: the answer is not an object resource");
        http_response_done(&resp);
        return r;
}

int gcs_object_read(struct gcs *g, const char *bucket, const char *name, size_t max, char **ret,
                    size_t *ret_len, struct strbuf *err) {
        _cleanup_free_ char *url = object_url(g, bucket, name, "alt=media");
        struct http_request req = HTTP_REQUEST_INIT;
        req.url = url;
        req.max_body = max;
        struct http_response resp = {0};
        int r = send_retry(g, &req, &resp, err);
        if (!g->token_failed && r >= 0 && resp.status == 404) {
                http_response_done(&resp);
                return -ENOENT;
        }
        if (g->token_failed || r < 0 || resp.status != 200) {
                if (!g->token_failed)
                        r = describe_failure(g, "reading an object", r, &resp, err);
                http_response_done(&resp);
                return r < 0 ? r : -EIO;
        }
        *ret_len = resp.body_len;
        *ret = resp.body ? TAKE_PTR(resp.body) : xstrdup("");
        http_response_done(&resp);
        return 0;
}

/* "<endpoint>/upload/storage/v1/b/BUCKET/o?uploadType=TYPE&name=NAME". */
static char *upload_url(const struct gcs *g, const char *bucket, const char *name, const char *type) {
        _cleanup_strbuf_ struct strbuf u = STRBUF_INIT;
        strbuf_addf(&u, "%s/upload/storage/v1/b/", g->endpoint);
        http_uri_encode(&u, bucket, strlen(bucket), false);
        strbuf_addf(&u, "/o?uploadType=%s&name=", type);
        http_uri_encode(&u, name, strlen(name), false);
        return strbuf_detach(&u);
}

int gcs_object_put(struct gcs *g, const char *bucket, const char *name, const char *content_type,
                   const void *data, size_t len, struct strbuf *err) {
        _cleanup_free_ char *url = upload_url(g, bucket, name, "media");
        _cleanup_free_ char *ct = xasprintf("Content-Type: %s", content_type);
        const char *hdrs[] = {ct, NULL};
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "POST";
        req.url = url;
        req.headers = hdrs;
        req.body = len ? data : "";
        req.body_len = len;
        req.max_body = GCS_ANSWER_MAX;
        struct http_response resp = {0};
        int r = send_retry(g, &req, &resp, err);
        if (!g->token_failed && r >= 0 && resp.status / 100 == 2)
                r = 0;
        else if (!g->token_failed)
                r = describe_failure(g, "writing a small object", r, &resp, err);
        else if (r >= 0)
                r = -EIO;
        http_response_done(&resp);
        return r;
}

int gcs_object_delete(struct gcs *g, const char *bucket, const char *name, struct strbuf *err) {
        _cleanup_free_ char *url = object_url(g, bucket, name, NULL);
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "DELETE";
        req.url = url;
        struct http_response resp = {0};
        int r = send_retry(g, &req, &resp, err);
        if (!g->token_failed && r >= 0 && (resp.status / 100 == 2 || resp.status == 404))
                r = 0;
        else if (!g->token_failed)
                r = describe_failure(g, "deleting an object", r, &resp, err);
        else if (r >= 0)
                r = -EIO;
        http_response_done(&resp);
        return r;
}

/* ---- resumable uploads ------------------------------------------------------- */

struct upload {
        struct gcs *g;
        char *session;           /* the session URI; owned */
        int fd;
        uint64_t size;
        uint64_t offset;         /* committed so far */
        uint64_t inflight;       /* body bytes of the request in progress */
};

static void on_sent_progress(void *userdata, uint64_t n) {
        struct upload *u = userdata;
        const struct publish_ctx *ctx = u->g->ctx;
        u->inflight += n;
        uint64_t done = u->offset + u->inflight;
        if (ctx && ctx->progress)
                ctx->progress(ctx->userdata, done < u->size ? done : u->size, u->size);
}

static int open_session(struct upload *u, const char *bucket, const char *name,
                        const char *content_type, const char *const *metadata, size_t nmeta,
                        struct strbuf *err) {
        struct gcs *g = u->g;
        _cleanup_free_ char *url = upload_url(g, bucket, name, "resumable");
        _cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &body, false);
        json_begin_object(&w);
        json_key(&w, "name");
        json_string(&w, name);
        json_key(&w, "contentType");
        json_string(&w, content_type);
        json_key(&w, "metadata");
        json_begin_object(&w);
        for (size_t i = 0; i < nmeta; i++) {
                json_key(&w, metadata[2 * i]);
                json_string(&w, metadata[2 * i + 1]);
        }
        json_end_object(&w);
        json_end_object(&w);
        _cleanup_free_ char *xct = xasprintf("X-Upload-Content-Type: %s", content_type);
        _cleanup_free_ char *xlen = xasprintf("X-Upload-Content-Length: %" PRIu64, u->size);
        const char *hdrs[] = {"Content-Type: application/json; charset=UTF-8", xct, xlen, NULL};
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "POST";
        req.url = url;
        req.headers = hdrs;
        req.body = body.buf;
        req.body_len = body.len;
        req.max_body = GCS_ANSWER_MAX;
        struct http_response resp = {0};
        int r = send_retry(g, &req, &resp, err);
        if (g->token_failed || r < 0 || resp.status != 200) {
                if (!g->token_failed)
                        r = describe_failure(g, "starting the upload", r, &resp, err);
                http_response_done(&resp);
                return r < 0 ? r : -EIO;
        }
        const char *loc = http_response_header(&resp, "Location");
        /* The token goes with every chunk: only to the endpoint's origin. */
        const char *rest = loc ? startswith(loc, g->endpoint) : NULL;
        if (!rest || *rest != '/' || strlen(loc) > GCS_SESSION_URI_MAX || strpbrk(loc, " \r\n")) {
                strbuf_addf(err, "starting the upload: the server gave no session URI at %s",
                            g->endpoint);
                http_response_done(&resp);
                return -EPROTO;
        }
        u->session = xstrdup(loc);
        http_response_done(&resp);
        return 0;
}

/* Asks the session how much it holds: 0 with u->offset set (and *ret_done
 * when the object is complete, its resource in *ret), or -errno. */
static int query_session(struct upload *u, bool *ret_done, struct gcs_object *ret,
                         struct strbuf *err) {
        char cr[96], line[128];
        gcs_content_range(cr, sizeof(cr), 0, 0, u->size);
        snprintf(line, sizeof(line), "Content-Range: %s", cr);
        const char *hdrs[] = {line, NULL};
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "PUT";
        req.url = u->session;
        req.headers = hdrs;
        req.body = "";
        req.max_body = GCS_ANSWER_MAX;
        struct http_response resp = {0};
        struct gcs *g = u->g;
        int r = send_retry(g, &req, &resp, err);
        if (!g->token_failed && r >= 0 && resp.status == 308) {
                uint64_t c;
                r = gcs_committed(http_response_header(&resp, "Range"), u->size, &c);
                if (r < 0)
                        strbuf_adds(err, "resuming the upload: the session's Range is malformed");
                else
                        u->offset = c;
        } else if (!g->token_failed && r >= 0 && (resp.status == 200 || resp.status == 201)) {
                r = parse_object(&resp, ret);
                if (r < 0)
                        strbuf_adds(err, "resuming the upload: the answer is not an object resource");
                else
                        *ret_done = true;
        } else if (!g->token_failed && r >= 0 && (resp.status == 404 || resp.status == 410)) {
                strbuf_adds(err, "resuming the upload: the session is gone (expired or "
                                 "cancelled); run again to start a new one");
                r = -ESTALE;
        } else if (!g->token_failed)
                r = describe_failure(u->g, "resuming the upload", r, &resp, err);
        else if (r >= 0)
                r = -EIO;
        http_response_done(&resp);
        return r;
}

int gcs_upload(struct gcs *g, const char *bucket, const char *name, int fd, uint64_t size,
               const char *content_type, const char *const *metadata, size_t nmeta,
               struct gcs_object *ret, struct strbuf *err) {
        struct upload u = {.g = g, .fd = fd, .size = size};
        int r = open_session(&u, bucket, name, content_type, metadata, nmeta, err);
        if (r < 0)
                return r;
        unsigned failures = 0;
        bool done = false;
        while (!done) {
                uint64_t len = gcs_chunk_len(u.offset, size, g->chunk);
                char cr[96], line[128];
                gcs_content_range(cr, sizeof(cr), u.offset, len, size);
                snprintf(line, sizeof(line), "Content-Range: %s", cr);
                const char *hdrs[] = {line, "Content-Type: application/octet-stream", NULL};
                struct http_request req = HTTP_REQUEST_INIT;
                req.method = "PUT";
                req.url = u.session;
                req.headers = hdrs;
                if (len) {
                        req.body_fd = fd;
                        req.body_offset = u.offset;
                        req.body_size = len;
                } else
                        req.body = "";
                req.max_body = GCS_ANSWER_MAX;
                req.on_sent = on_sent_progress;
                req.userdata = &u;
                u.inflight = 0;
                struct http_response resp = {0};
                size_t err_len = err->len;
                r = send_authed(g, &req, &resp, err);
                if (g->token_failed) {
                        http_response_done(&resp);
                        if (!token_failure_transient(r) || failures >= g->retries)
                                break;
                        failures++;
                        err->len = err_len; /* nothing was sent: try again */
                        if (err->buf)
                                err->buf[err_len] = 0;
                        publish_backoff(failures);
                        continue;
                }
                uint64_t sent = resp.bytes_sent;
                if (r >= 0 && resp.status == 308) {
                        uint64_t c;
                        if (gcs_committed(http_response_header(&resp, "Range"), size, &c) < 0 ||
                            c > u.offset + len) {
                                strbuf_adds(err, "uploading: the session's Range is malformed");
                                r = -EBADMSG;
                        } else {
                                uint64_t kept = c > u.offset ? c - u.offset : 0;
                                g->sent += kept;
                                g->retried += sent > kept ? sent - kept : 0;
                                u.offset = c;
                                /* A server that keeps nothing of a chunk
                                 * must not hold kiln in a loop. */
                                if (kept)
                                        failures = 0;
                                else if (++failures > g->retries) {
                                        strbuf_addf(err, "uploading: the server kept none of the "
                                                    "chunk at %" PRIu64 ", %u times", u.offset,
                                                    failures);
                                        r = -EPROTO;
                                }
                        }
                } else if (r >= 0 && (resp.status == 200 || resp.status == 201)) {
                        g->sent += sent;
                        u.offset = size;
                        r = parse_object(&resp, ret);
                        if (r < 0)
                                strbuf_adds(err, "uploading: the final answer is not an object resource");
                        done = r >= 0;
                } else if (publish_retryable(r, &resp) && failures < g->retries) {
                        /* Cut, timed out or refused for now: ask what the
                         * session kept, then go on from there. */
                        failures++;
                        uint64_t before = u.offset;
                        http_response_done(&resp);
                        publish_backoff(failures);
                        r = query_session(&u, &done, ret, err);
                        if (r >= 0) {
                                uint64_t kept = done ? size - before : u.offset - before;
                                kept = kept < sent ? kept : sent;
                                g->sent += kept;
                                g->retried += sent - kept;
                        } else
                                g->retried += sent;
                } else {
                        g->retried += sent;
                        if (resp.status == 404 || resp.status == 410) {
                                strbuf_adds(err, "uploading: the session is gone (expired or "
                                                 "cancelled); run again to start a new one");
                                r = -ESTALE;
                        } else
                                r = describe_failure(g, "uploading", r, &resp, err);
                }
                http_response_done(&resp);
                if (r < 0)
                        break;
        }
        free(u.session);
        if (r < 0 && !err->len)
                strbuf_adds(err, "uploading: failed");
        return r < 0 ? r : 0;
}

/* ---- shared settings ------------------------------------------------------------ */

static const char *setting(const struct value *settings, const char *key) {
        const struct value *v = value_map_get(settings, key);
        return v && value_is_scalar(v) && v->kind != V_NULL ? v->str : NULL;
}

int gcs_open(const struct value *settings, const struct publish_ctx *ctx, const char *scope,
             struct gauth **ret_auth, struct gcs **ret, struct strbuf *err) {
        struct gauth_config ac = {
                .auth = setting(settings, "auth"),
                .key_file = setting(settings, "key_file"),
                .scope = scope,
                .environ = ctx->environ,
                .add_secret = ctx->add_secret,
                .userdata = ctx->userdata,
        };
        struct gcs_config gc = {.endpoint = setting(settings, "endpoint"), .ctx = ctx,
                                .retries = GCS_DEFAULT_RETRIES, .timeout_s = 60};
        const char *v;
        if ((v = setting(settings, "chunk_size")) && parse_size(v, &gc.chunk_size) < 0) {
                strbuf_addf(err, "chunk_size: '%s' is not a size", v);
                return -EINVAL;
        }
        if (publish_setting_retries(settings, GCS_MAX_RETRIES, &gc.retries, err) < 0 ||
            publish_setting_timeout(settings, &gc.timeout_s, err) < 0)
                return -EINVAL;
        const struct value *b = value_map_get(settings, "tls_verify");
        gc.insecure = b && b->kind == V_BOOL && !b->b;
        gc.ca_file = setting(settings, "ca_file");
        struct gauth *a = NULL;
        int r = gauth_new(&ac, &a, err);
        if (r < 0)
                return r;
        gc.auth = a;
        r = gcs_new(&gc, ret, err);
        if (r < 0) {
                gauth_free(a);
                return r;
        }
        *ret_auth = a;
        return 0;
}

/* ---- the publisher ------------------------------------------------------------- */

static const char *const auth_values[] = {"key_file", "token", "metadata", NULL};

static const struct field gcs_fields[] = {
        {"type", FT_STRING, F_REQUIRED, NULL, NULL, "gcs"},
        {"name", FT_STRING, 0, NULL, NULL, "name shown in result lines"},
        {"format", FT_STRING, 0, NULL, NULL, "which artifact (outputs: entry) to publish"},
        {"bucket", FT_STRING, F_REQUIRED, NULL, NULL, "bucket name"},
        {"object", FT_STRING, 0, NULL, NULL,
         "object name; ending in '/' or unset: the artifact's file name is appended"},
        {"endpoint", FT_STRING, 0, NULL, NULL, "http(s)://host[:port] (default " GCS_DEFAULT_ENDPOINT ")"},
        {"auth", FT_STRING, 0, NULL, auth_values,
         "key_file, token or metadata (default: key_file:, else $GOOGLE_OAUTH_ACCESS_TOKEN, "
         "else $GOOGLE_APPLICATION_CREDENTIALS)"},
        {"key_file", FT_STRING, 0, NULL, NULL, "service-account key file (JSON)"},
        {"chunk_size", FT_SIZE, 0, NULL, NULL, "resumable upload chunk (multiple of 256KiB; default 8MiB)"},
        {"content_type", FT_STRING, 0, NULL, NULL, "default application/octet-stream"},
        {"retries", FT_INT, 0, NULL, NULL, "attempts per request after a network error, 429 or 5xx"},
        {"timeout", FT_DURATION, 0, NULL, NULL, "abort a request that moves no data this long"},
        {"tls_verify", FT_BOOL, 0, NULL, NULL, "verify the server's certificate (default true)"},
        {"ca_file", FT_STRING, 0, NULL, NULL, "extra CA bundle"},
        {"enabled", FT_BOOL, 0, NULL, NULL, "false: skip this target (default true)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static int gcs_validate(const struct value *settings, struct diag_list *d) {
        unsigned errs = schema_check(settings, gcs_fields, "publish target 'gcs'", d);
        const struct value *v;
        if ((v = value_map_get(settings, "bucket")) && v->kind == V_STRING && !v->invalid &&
            !gcs_bucket_name_ok(v->str)) {
                diag_error(d, &v->mark, value_span(v),
                           "publish target 'gcs': bucket: '%s' is not a valid bucket name "
                           "(3 to 63 lowercase letters, digits, '-', '_', '.')", value_shown(v));
                errs++;
        }
        errs += publish_validate_endpoint_retries(settings, "publish target 'gcs'",
                                                  GCS_DEFAULT_ENDPOINT, GCS_MAX_RETRIES, d);
        if ((v = value_map_get(settings, "chunk_size")) && value_is_scalar(v) && !v->invalid) {
                uint64_t n;
                if (parse_size(v->str, &n) == 0 &&
                    (n == 0 || n % GCS_CHUNK_UNIT || n > GCS_MAX_CHUNK)) {
                        struct diag *dg = diag_error(d, &v->mark, value_span(v),
                                                     "publish target 'gcs': chunk_size: must be a "
                                                     "multiple of 256KiB, at most 1GiB");
                        diag_hint(dg, "e.g. chunk_size: 8MiB");
                        errs++;
                }
        }
        _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
        if ((v = value_map_get(settings, "object")) && v->kind == V_STRING && !v->invalid && *v->str &&
            !gcs_object_name_ok(v->str, &why)) {
                diag_error(d, &v->mark, value_span(v), "publish target 'gcs': %s", strbuf_str(&why));
                errs++;
        }
        return errs ? -EINVAL : 0;
}

struct publish_run_gcs {
        const struct publish_artifact *a;
        const char *bucket;
        char *object;
        struct gcs *g;
};

/* Step 1. 1: identical (sidecar made right), 0: upload, -errno. */
static int skip_check(struct publish_run_gcs *p, struct strbuf *err) {
        struct gcs_object o = {0};
        int r = gcs_object_get(p->g, p->bucket, p->object, &o, err);
        if (r == -ENOENT && !p->g->token_failed)
                return 0;
        if (r < 0)
                return r;
        bool same = o.size == p->a->size && o.sha256 && strcasecmp(o.sha256, p->a->sha256) == 0;
        gcs_object_done(&o);
        if (!same)
                return 0;
        _cleanup_free_ char *side = xasprintf("%s" GCS_SIDECAR_SUFFIX, p->object);
        if (strlen(side) > GCS_MAX_OBJECT_NAME)
                return 1;
        _cleanup_free_ char *body = NULL;
        size_t len = 0;
        r = gcs_object_read(p->g, p->bucket, side, 4096, &body, &len, err);
        if (r < 0 && (r != -ENOENT || p->g->token_failed))
                return r;
        if (r == 0 && len >= SHA256_HEX_LEN && strncasecmp(body, p->a->sha256, 64) == 0)
                return 1;
        _cleanup_free_ char *text = xasprintf("%s  %s\n", p->a->sha256, p->a->file_name);
        r = gcs_object_put(p->g, p->bucket, side, "text/plain", text, strlen(text), err);
        return r < 0 ? r : 1;
}

static int do_publish(const struct publish_target *t, struct publish_run_gcs *p,
                      struct publish_result *ret, struct strbuf *err) {
        const struct publish_artifact *a = p->a;
        const char *ct = setting(t->settings, "content_type");
        int r = skip_check(p, err);
        if (r < 0)
                return r;
        if (r > 0) {
                ret->status = PUBLISH_SKIPPED_IDENTICAL;
                return 0;
        }
        _cleanup_close_ int fd = publish_open_file(a->path, a->size, NULL, err);
        if (fd < 0)
                return fd;
        const char *meta[] = {"sha256", a->sha256};
        struct gcs_object o = {0};
        r = gcs_upload(p->g, p->bucket, p->object, fd, a->size, ct ? ct : "application/octet-stream",
                       meta, 1, &o, err);
        if (r < 0)
                return r;
        if (o.size != a->size || !o.sha256 || strcasecmp(o.sha256, a->sha256) != 0) {
                strbuf_addf(err, "verifying: the server holds %" PRIu64 " bytes with sha256 %s, "
                            "expected %" PRIu64 " bytes with %s", o.size, o.sha256 ? o.sha256 : "(none)",
                            a->size, a->sha256);
                gcs_object_done(&o);
                return -EIO;
        }
        gcs_object_done(&o);
        _cleanup_free_ char *side = xasprintf("%s" GCS_SIDECAR_SUFFIX, p->object);
        if (strlen(side) <= GCS_MAX_OBJECT_NAME) {
                _cleanup_free_ char *text = xasprintf("%s  %s\n", a->sha256, a->file_name);
                r = gcs_object_put(p->g, p->bucket, side, "text/plain", text, strlen(text), err);
                if (r < 0)
                        return r;
        } else
                ret->note = xasprintf("no %s sidecar: the object name is %zu bytes and its "
                                      "sidecar's would exceed GCS's %u; the object's "
                                      "metadata.sha256 records the hash", GCS_SIDECAR_SUFFIX,
                                      strlen(p->object), GCS_MAX_OBJECT_NAME);
        ret->status = PUBLISH_UPLOADED;
        return 0;
}

static int gcs_publish(const struct publish_target *t, const struct publish_artifact *a,
                       const struct publish_ctx *ctx, struct publish_result *ret) {
        uint64_t t0 = now_ms();
        *ret = (struct publish_result){.status = PUBLISH_FAILED};
        _cleanup_strbuf_ struct strbuf err = STRBUF_INIT;
        struct publish_run_gcs p = {.a = a, .bucket = setting(t->settings, "bucket")};
        struct gauth *auth = NULL;
        const char *obj = setting(t->settings, "object");
        int r = 0;
        if (!p.bucket || !gcs_bucket_name_ok(p.bucket)) {
                strbuf_addf(&err, "bucket: %s", p.bucket ? "not a valid bucket name" : "missing");
                r = -EINVAL;
        } else {
                if (!obj || !*obj)
                        p.object = xstrdup(a->file_name);
                else if (endswith(obj, "/"))
                        p.object = xasprintf("%s%s", obj, a->file_name);
                else
                        p.object = xstrdup(obj);
                if (!gcs_object_name_ok(p.object, &err))
                        r = -EINVAL;
        }
        if (r >= 0) {
                ret->location = xasprintf("gs://%s/%s", p.bucket, p.object);
                r = gcs_open(t->settings, ctx, GAUTH_SCOPE_STORAGE_RW, &auth, &p.g, &err);
        }
        if (r >= 0)
                r = do_publish(t, &p, ret, &err);
        if (p.g)
                gcs_bytes(p.g, &ret->bytes_sent, &ret->bytes_retried);
        ret->elapsed_ms = now_ms() - t0;
        if (r < 0) {
                ret->status = PUBLISH_FAILED;
                ret->error = strbuf_detach(&err);
        }
        gcs_free(p.g);
        gauth_free(auth);
        free(p.object);
        return r;
}

const struct publisher publisher_gcs = {
        .type = "gcs",
        .summary = "Google Cloud Storage (JSON API, resumable uploads)",
        .validate = gcs_validate,
        .publish = gcs_publish,
        .sha256_only = true,
};
