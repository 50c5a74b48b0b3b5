/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3.c — the S3 publisher: one implementation for AWS S3, the GCS XML API,
 * Ceph RGW, OpenStack Swift's s3api and MinIO.
 *
 * One publish is a small state machine, and each state is safe to interrupt:
 *
 *   1. SKIP CHECK   HEAD <key>: only when the object's own x-amz-meta-sha256
 *                   (written with every object) is the artifact's sha256 and
 *                   the size matches is nothing sent; a missing or stale
 *                   <key>.sha256 sidecar is then (re)written (0 payload
 *                   bytes). The sidecar alone decides nothing: an object
 *                   overwritten out of band leaves the old one behind.
 *   2. UPLOAD       small files: one PUT from memory with Content-MD5 and the
 *                   real x-amz-content-sha256, so the server checks both.
 *                   Large files: multipart. An unfinished upload of the same
 *                   key is resumed (ListMultipartUploads, ListParts; a part
 *                   whose ETag is the MD5 of the local part is not sent
 *                   again); otherwise a new one is started. Parts go out in
 *                   parallel, each with Content-MD5, and are retried on
 *                   network errors and 5xx; an interrupted run leaves the
 *                   upload open for the next one to resume.
 *   3. VERIFY       HEAD: the size, the ETag (single PUT: the MD5; multipart:
 *                   MD5 of the parts' binary MD5s, "-N") and x-amz-meta-sha256.
 *   4. SIDECAR      PUT <key>.sha256 ("<hex>  <file name>\n") — last, so its
 *                   presence means the object is complete and verified.
 *                   Keys are 1 to S3_MAX_KEY_BYTES bytes and never start with
 *                   '/'; a key too long for its sidecar's key gets none.
 *
 * Besides publishing, the publisher lists and aborts unfinished multipart
 * uploads under a key prefix (publisher.list_uploads / abort_upload).
 *
 * Byte accounting: the body bytes of a request count in bytes_sent when it
 * succeeded (2xx), in bytes_retried when it did not.
 *
 * Every request is signed with sigv4.c. Credentials come from the
 * environment or an AWS credentials file and are registered with
 * ctx->add_secret and the HTTP client's redaction before first use.
 */
#include "publish/publish.h"

#include "base/clock.h"
#include "base/hash.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "net/http.h"
#include "publish/sigv4.h"
#include "spec/schema.h"

#include <ctype.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define S3_MIN_PART (5ull << 20)            /* S3's minimum part size */
#define S3_MAX_PART (5ull << 30)            /* and maximum */
#define S3_MAX_PARTS 10000u
#define S3_DEFAULT_PART (16ull << 20)
#define S3_DEFAULT_THRESHOLD (64ull << 20)
#define S3_MAX_SINGLE (512ull << 20)        /* a single PUT is read into memory */
#define S3_MAX_PARALLEL 32u
#define S3_DEFAULT_RETRIES 3u
#define S3_MAX_RETRIES 10u
#define S3_LIST_BODY_MAX (8u << 20)         /* ListParts/ListMultipartUploads pages */
#define S3_LIST_PAGES_MAX 100u              /* ListMultipartUploads pages read, at most */
#define S3_LIST_UPLOADS_MAX 10000u          /* unfinished uploads listed, at most */
#define S3_UPLOAD_ID_MAX 1024u              /* bytes of an upload id we accept */
#define S3_MAX_KEY_BYTES 1024u              /* S3's limit on a key, in UTF-8 bytes */
#define S3_SIDECAR_SUFFIX ".sha256"
#define S3_CRED_FILE_MAX (1u << 20)

static const char *const addressing_values[] = {"path", "virtual", NULL};
static const char *const checksum_values[] = {"sha256", NULL};

static const struct field s3_fields[] = {
        {"type", FT_STRING, F_REQUIRED, NULL, NULL, "s3"},
        {"name", FT_STRING, 0, NULL, NULL, "name shown in result lines"},
        {"format", FT_STRING, 0, NULL, NULL, "which artifact (outputs: entry) to publish"},
        {"bucket", FT_STRING, F_REQUIRED, NULL, NULL, "bucket name"},
        {"key", FT_STRING, 0, NULL, NULL, "object key; default: the artifact's file name"},
        {"endpoint", FT_STRING, 0, NULL, NULL, "http(s)://host[:port]; default AWS for the region"},
        {"region", FT_STRING, 0, NULL, NULL, "signing region; default $AWS_REGION or us-east-1"},
        {"addressing", FT_STRING, 0, NULL, addressing_values, "path or virtual (bucket in host name)"},
        {"profile", FT_STRING, 0, NULL, NULL, "profile in the credentials file"},
        {"credentials_file", FT_STRING, 0, NULL, NULL, "AWS credentials file"},
        {"multipart_threshold", FT_SIZE, 0, NULL, NULL, "files larger than this use multipart"},
        {"part_size", FT_SIZE, 0, NULL, NULL, "multipart part size (>= 5 MiB)"},
        {"checksum", FT_STRING, 0, NULL, checksum_values, "sidecar checksum written last"},
        {"unsigned_payload", FT_BOOL, 0, NULL, NULL,
         "sign multipart parts as UNSIGNED-PAYLOAD (default true; Content-MD5 still checks them)"},
        {"tls_verify", FT_BOOL, 0, NULL, NULL, "verify the server's certificate (default true)"},
        {"ca_file", FT_STRING, 0, NULL, NULL, "extra CA bundle"},
        {"enabled", FT_BOOL, 0, NULL, NULL, "false: skip this target (default true)"},
        {"retries", FT_INT, 0, NULL, NULL, "attempts per request after a network error or 5xx"},
        {"timeout", FT_DURATION, 0, NULL, NULL, "abort a request that moves no data this long"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

/* ---- settings ------------------------------------------------------------ */

struct s3 {
        /* settings */
        char *scheme;            /* "http" / "https" */
        char *host;              /* endpoint host[:port] */
        char *bucket;
        char *key;               /* decoded object key */
        char *region;
        bool virtual_host;
        uint64_t threshold, part_size;
        bool unsigned_payload;   /* parts only: a single PUT always signs its hash */
        bool insecure;
        char *ca_file;
        unsigned retries;
        unsigned timeout_s;
        /* credentials */
        char *access_key, *secret_key, *session_token;
        /* run */
        const struct publish_ctx *ctx;
        const struct publish_artifact *a;
        atomic_uint_fast64_t progress_done;
        atomic_uint_fast64_t bytes_sent;    /* payload of requests that succeeded */
        atomic_uint_fast64_t bytes_retried; /* payload of attempts that failed */
};

static const char *setting(const struct value *settings, const char *key) {
        const struct value *v = value_map_get(settings, key);
        return v && value_is_scalar(v) && v->kind != V_NULL ? v->str : NULL;
}

static void s3_free(struct s3 *s) {
        free(s->scheme);
        free(s->host);
        free(s->bucket);
        free(s->key);
        free(s->region);
        free(s->ca_file);
        if (s->secret_key)
                explicit_bzero(s->secret_key, strlen(s->secret_key));
        free(s->access_key);
        free(s->secret_key);
        free(s->session_token);
}

static bool bucket_name_ok(const char *b) {
        size_t n = strlen(b);
        if (n < 3 || n > 63)
                return false;
        for (const char *p = b; *p; p++)
                if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' ||
                      *p == '.' || *p == '_'))
                        return false;
        return true;
}

/* Whether key can be an object key kiln writes; if not, says why in why.
 * A leading '/' is refused rather than kept or dropped: S3 allows it, but
 * many tools drop it or turn it into an empty path segment, so the object
 * would not be where the user looks. */
static bool key_ok(const char *key, struct strbuf *why) {
        size_t n = strlen(key);
        if (n == 0) {
                strbuf_adds(why, "key: empty");
                return false;
        }
        if (key[0] == '/') {
                strbuf_adds(why, "key: starts with '/' (kiln refuses such keys: many S3 tools drop "
                                 "or double the slash); remove the leading '/'");
                return false;
        }
        if (n > S3_MAX_KEY_BYTES) {
                strbuf_addf(why, "key: %zu bytes, longer than S3's limit of %u bytes (UTF-8)", n,
                            S3_MAX_KEY_BYTES);
                return false;
        }
        return true;
}

/* The .sha256 sidecar's key must fit S3's limit too. */
static bool sidecar_fits(const char *key) {
        return strlen(key) + strlen(S3_SIDECAR_SUFFIX) <= S3_MAX_KEY_BYTES;
}

/* Reads the settings; on error writes a message into err. Without an
 * artifact (a == NULL: listing unfinished uploads), key: is a prefix and
 * may be empty. */
static int s3_configure(struct s3 *s, const struct value *settings, const struct publish_artifact *a,
                        char *const *env, struct strbuf *err) {
        const char *v;
        v = setting(settings, "bucket");
        if (!v || !bucket_name_ok(v)) {
                strbuf_addf(err, "bucket: %s", v ? "not a valid bucket name" : "missing");
                return -EINVAL;
        }
        s->bucket = xstrdup(v);
        v = setting(settings, "key");
        if (!a)
                s->key = xstrdup(v ? v : "");
        else if (!v || !*v)
                s->key = xstrdup(a->file_name);
        else if (endswith(v, "/"))
                s->key = xasprintf("%s%s", v, a->file_name);
        else
                s->key = xstrdup(v);
        if (a && !key_ok(s->key, err))
                return -EINVAL;
        v = setting(settings, "region");
        if (!v)
                v = publish_getenv(env, "AWS_REGION");
        if (!v)
                v = publish_getenv(env, "AWS_DEFAULT_REGION");
        s->region = xstrdup(v && *v ? v : "us-east-1");
        v = setting(settings, "endpoint");
        if (!v)
                v = publish_getenv(env, "AWS_ENDPOINT_URL_S3");
        if (!v)
                v = publish_getenv(env, "AWS_ENDPOINT_URL");
        if (v && !*v)
                v = NULL;
        bool custom = v != NULL;
        if (!v) {
                s->scheme = xstrdup("https");
                s->host = xasprintf("s3.%s.amazonaws.com", s->region);
        } else if (publish_parse_endpoint(v, &s->scheme, &s->host) < 0) {
                strbuf_addf(err, "endpoint: '%s' is not http(s)://host[:port]", v);
                return -EINVAL;
        }
        v = setting(settings, "addressing");
        if (v && !streq(v, "path") && !streq(v, "virtual")) {
                strbuf_addf(err, "addressing: '%s' is not path or virtual", v);
                return -EINVAL;
        }
        s->virtual_host = v ? streq(v, "virtual") : !custom;
        if (s->virtual_host && strchr(s->bucket, '.') && streq(s->scheme, "https")) {
                /* a dotted bucket breaks the wildcard certificate */
                s->virtual_host = v != NULL;
        }
        s->threshold = S3_DEFAULT_THRESHOLD;
        s->part_size = S3_DEFAULT_PART;
        if ((v = setting(settings, "multipart_threshold")) && parse_size(v, &s->threshold) < 0) {
                strbuf_addf(err, "multipart_threshold: '%s' is not a size", v);
                return -EINVAL;
        }
        if ((v = setting(settings, "part_size")) && parse_size(v, &s->part_size) < 0) {
                strbuf_addf(err, "part_size: '%s' is not a size", v);
                return -EINVAL;
        }
        if (s->part_size < S3_MIN_PART || s->part_size > S3_MAX_PART) {
                strbuf_adds(err, "part_size: must be between 5 MiB and 5 GiB");
                return -EINVAL;
        }
        if (s->threshold > S3_MAX_SINGLE)
                s->threshold = S3_MAX_SINGLE;
        /* Parts are signed as UNSIGNED-PAYLOAD by default: hashing every
         * part with SHA-256 costs a full pass over the file (3 s per GiB on
         * a slow core) and adds no integrity the signed Content-MD5 header,
         * which the server checks against the bytes it got, does not give. */
        s->unsigned_payload = true;
        const struct value *b;
        if ((b = value_map_get(settings, "unsigned_payload")) && b->kind == V_BOOL)
                s->unsigned_payload = b->b;
        if ((b = value_map_get(settings, "tls_verify")) && b->kind == V_BOOL)
                s->insecure = !b->b;
        v = setting(settings, "ca_file");
        if (!v)
                v = publish_getenv(env, "AWS_CA_BUNDLE"); /* as the AWS CLI and SDKs do */
        s->ca_file = xstrdup_null(v && *v ? v : NULL);
        s->retries = S3_DEFAULT_RETRIES;
        s->timeout_s = 60;
        if (publish_setting_retries(settings, S3_MAX_RETRIES, &s->retries, err) < 0 ||
            publish_setting_timeout(settings, &s->timeout_s, err) < 0)
                return -EINVAL;
        return 0;
}

/* ---- credentials --------------------------------------------------------- */

/* Reads [profile] from an AWS credentials file (INI). */
static int read_credentials_file(struct s3 *s, const char *path, const char *profile,
                                 struct strbuf *err) {
        /* Opened like an artifact: a FIFO or device named as the
         * credentials file is refused, not read (it could block forever). */
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = publish_read_small_file(path, S3_CRED_FILE_MAX, "credentials file", &text, &len, err);
        if (r < 0)
                return r;
        bool in = false, found = false;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                while (*line == ' ' || *line == '\t')
                        line++;
                size_t n = strlen(line);
                while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
                        line[--n] = 0;
                if (!n || line[0] == '#' || line[0] == ';')
                        continue;
                if (line[0] == '[') {
                        char *name = line + 1;
                        char *close = strchr(name, ']');
                        if (close)
                                *close = 0;
                        if (startswith(name, "profile "))
                                name += 8;
                        in = streq(name, profile);
                        found |= in;
                        continue;
                }
                if (!in)
                        continue;
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                char *k = line, *v = eq + 1;
                char *ke = eq;
                while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
                        ke--;
                *ke = 0;
                while (*v == ' ' || *v == '\t')
                        v++;
                if (streq(k, "aws_access_key_id") && !s->access_key)
                        s->access_key = xstrdup(v);
                else if (streq(k, "aws_secret_access_key") && !s->secret_key)
                        s->secret_key = xstrdup(v);
                else if (streq(k, "aws_session_token") && !s->session_token)
                        s->session_token = xstrdup(v);
        }
        explicit_bzero(text, len);
        if (!found) {
                strbuf_addf(err, "credentials file %s has no profile [%s]", path, profile);
                return -ENOENT;
        }
        if (!s->access_key || !s->secret_key) {
                strbuf_addf(err, "profile [%s] in %s lacks aws_access_key_id or aws_secret_access_key",
                            profile, path);
                return -ENOENT;
        }
        return 0;
}

static int s3_credentials(struct s3 *s, const struct value *settings, char *const *env,
                          struct strbuf *err) {
        const char *file = setting(settings, "credentials_file");
        const char *profile = setting(settings, "profile");
        const char *id = publish_getenv(env, "AWS_ACCESS_KEY_ID");
        const char *secret = publish_getenv(env, "AWS_SECRET_ACCESS_KEY");
        int r;
        if (!file && !profile && id && *id && secret && *secret) {
                s->access_key = xstrdup(id);
                s->secret_key = xstrdup(secret);
                const char *tok = publish_getenv(env, "AWS_SESSION_TOKEN");
                if (tok && *tok)
                        s->session_token = xstrdup(tok);
        } else {
                if (!profile)
                        profile = publish_getenv(env, "AWS_PROFILE");
                if (!profile || !*profile)
                        profile = "default";
                _cleanup_free_ char *path = NULL;
                if (!file)
                        file = publish_getenv(env, "AWS_SHARED_CREDENTIALS_FILE");
                if (!file) {
                        const char *home = publish_getenv(env, "HOME");
                        if (!home) {
                                strbuf_adds(err, "no credentials: set AWS_ACCESS_KEY_ID and "
                                                 "AWS_SECRET_ACCESS_KEY, or credentials_file:");
                                return -ENOENT;
                        }
                        path = xasprintf("%s/.aws/credentials", home);
                        if (access(path, R_OK) < 0) {
                                strbuf_adds(err, "no credentials: set AWS_ACCESS_KEY_ID and "
                                                 "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with "
                                                 "~/.aws/credentials, or credentials_file:");
                                return -ENOENT;
                        }
                        file = path;
                }
                r = read_credentials_file(s, file, profile, err);
                if (r < 0)
                        return r;
        }
        if (s->ctx->add_secret) {
                s->ctx->add_secret(s->ctx->userdata, s->secret_key);
                if (s->session_token)
                        s->ctx->add_secret(s->ctx->userdata, s->session_token);
        }
        return 0;
}

/* ---- requests -------------------------------------------------------------- */

static void http_log_cb(void *userdata, const char *line) {
        const struct publish_ctx *ctx = userdata;
        _cleanup_free_ char *l = xasprintf("s3: %s\n", line);
        (void)write_all(ctx->log_fd, l, strlen(l));
}

static int s3_client(struct s3 *s, struct http_client **ret) {
        struct http_options o = {
                .stall_timeout_s = s->timeout_s,
                .insecure = s->insecure,
                .ca_file = s->ca_file,
        };
        if (s->ctx->verbose && s->ctx->log_fd >= 0) {
                o.log = http_log_cb;
                o.log_userdata = (void *)s->ctx;
        }
        int r = http_client_new(&o, ret);
        if (r < 0)
                return r;
        http_client_add_secret(*ret, s->secret_key);
        if (s->session_token)
                http_client_add_secret(*ret, s->session_token);
        return 0;
}

struct s3_req {
        const char *method;
        const char *key;                  /* decoded; NULL: the bucket */
        const struct sigv4_param *query;
        size_t nquery;
        const struct sigv4_param *headers; /* extra headers, signed too */
        size_t nheaders;
        const void *body;
        size_t body_len;
        const char *payload_hash;         /* NULL: sha256 of body computed here */
        size_t max_body;
        void (*on_sent)(void *userdata, uint64_t n);
        void *userdata;
        /* s3_do_retry adds the body bytes of every attempt to s->bytes_sent
         * when it succeeded (2xx), to s->bytes_retried when it did not */
        bool count_sent;
};

static int s3_do(struct s3 *s, struct http_client *c, const struct s3_req *q,
                 struct http_response *resp) {
        _cleanup_strbuf_ struct strbuf path = STRBUF_INIT, url = STRBUF_INIT, qs = STRBUF_INIT;
        _cleanup_free_ char *host = s->virtual_host ? xasprintf("%s.%s", s->bucket, s->host)
                                                    : xstrdup(s->host);
        if (!s->virtual_host)
                strbuf_addf(&path, "/%s", s->bucket);
        strbuf_addc(&path, '/');
        if (q->key)
                strbuf_adds(&path, q->key);

        char hash[SHA256_HEX_LEN + 1];
        const char *payload = q->payload_hash;
        if (!payload) {
                int r = hash_sha256_hex(q->body ? q->body : "", q->body_len, hash);
                if (r < 0)
                        return r;
                payload = hash;
        }
        char date[17];
        sigv4_amz_date(time(NULL), date);

        size_t nh = 0;
        struct sigv4_param h[16];
        h[nh++] = (struct sigv4_param){"host", host};
        h[nh++] = (struct sigv4_param){"x-amz-date", date};
        h[nh++] = (struct sigv4_param){"x-amz-content-sha256", payload};
        if (s->session_token)
                h[nh++] = (struct sigv4_param){"x-amz-security-token", s->session_token};
        for (size_t i = 0; i < q->nheaders && nh < ARRAY_SIZE(h); i++)
                h[nh++] = q->headers[i];

        struct sigv4_request sr = {
                .method = q->method, .path = strbuf_str(&path), .query = q->query,
                .nquery = q->nquery, .headers = h, .nheaders = nh, .payload_hash = payload,
        };
        struct sigv4_key key = {
                .access_key = s->access_key, .secret_key = s->secret_key,
                .region = s->region, .service = "s3", .amz_date = date,
        };
        struct sigv4_signature sig = {0};
        int r = sigv4_sign(&sr, &key, &sig);
        if (r < 0)
                return r;

        strbuf_addf(&url, "%s://%s", s->scheme, host);
        sigv4_encode_path(&url, strbuf_str(&path));
        sigv4_canonical_query(&qs, q->query, q->nquery);
        if (qs.len)
                strbuf_addf(&url, "?%s", strbuf_str(&qs));

        char *lines[20];
        size_t nl = 0;
        for (size_t i = 0; i < nh; i++)
                lines[nl++] = xasprintf("%s: %s", h[i].name, h[i].value);
        lines[nl++] = xasprintf("Authorization: %s", sig.authorization);
        /* Content-Type for everything; "Expect:" is left to libcurl, whose
         * 100-continue lets a server refuse (wrong key) before the body. */
        lines[nl] = NULL;
        sigv4_signature_done(&sig);

        struct http_request req = HTTP_REQUEST_INIT;
        req.method = q->method;
        req.url = strbuf_str(&url);
        req.headers = (const char *const *)lines;
        req.body = q->body;
        req.body_len = q->body_len;
        if (!q->body && (streq(q->method, "PUT") || streq(q->method, "POST")))
                req.body = "";
        req.max_body = q->max_body;
        req.on_sent = q->on_sent;
        req.userdata = q->userdata;
        r = http_request(c, &req, resp);
        for (size_t i = 0; i < nl; i++) {
                explicit_bzero(lines[i], strlen(lines[i]));
                free(lines[i]);
        }
        return r;
}

/* ---- XML (the few elements S3 responses need) --------------------------- */

/* The decoded text of the first <tag>...</tag> in [p, end), or NULL; *ret_next
 * points after the closing tag. */
static char *xml_get(const char *p, const char *end, const char *tag, const char **ret_next) {
        _cleanup_free_ char *open = xasprintf("<%s>", tag), *close = xasprintf("</%s>", tag);
        const char *a = memmem(p, end - p, open, strlen(open));
        if (!a)
                return NULL;
        a += strlen(open);
        const char *b = memmem(a, end - a, close, strlen(close));
        if (!b)
                return NULL;
        if (ret_next)
                *ret_next = b + strlen(close);
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "");
        static const struct { const char *ent; char c; } ents[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''},
                {"&#34;", '"'}, {"&#39;", '\''},
        };
        for (const char *x = a; x < b; x++) {
                bool done = false;
                if (*x == '&')
                        for (size_t i = 0; i < ARRAY_SIZE(ents) && !done; i++) {
                                size_t l = strlen(ents[i].ent);
                                if ((size_t)(b - x) >= l && strncmp(x, ents[i].ent, l) == 0) {
                                        strbuf_addc(&sb, ents[i].c);
                                        x += l - 1;
                                        done = true;
                                }
                        }
                if (!done)
                        strbuf_addc(&sb, *x);
        }
        return strbuf_detach(&sb);
}

static char *xml_body_get(const struct http_response *r, const char *tag) {
        if (!r->body)
                return NULL;
        return xml_get(r->body, r->body + r->body_len, tag, NULL);
}

/* A message for a failed request: the network error, or S3's error code
 * and message translated into what the user should check. Never contains
 * a header value. */
static void describe_failure(struct s3 *s, struct strbuf *out, const char *what, int r,
                             const struct http_response *resp) {
        strbuf_addf(out, "%s: ", what);
        if (r < 0) {
                if (r == -ETIMEDOUT)
                        strbuf_addf(out, "timed out (%s)", resp->error);
                else if (r == -ECONNREFUSED)
                        strbuf_addf(out, "cannot connect to %s://%s (%s)", s->scheme, s->host,
                                    resp->error);
                else
                        strbuf_adds(out, resp->error[0] ? resp->error : strerror(-r));
                return;
        }
        _cleanup_free_ char *code = xml_body_get(resp, "Code");
        _cleanup_free_ char *msg = xml_body_get(resp, "Message");
        const char *hint = NULL;
        if (code) {
                if (streq(code, "SignatureDoesNotMatch"))
                        hint = "the secret key is wrong";
                else if (streq(code, "InvalidAccessKeyId"))
                        hint = "the access key is not known to the server";
                else if (streq(code, "NoSuchBucket"))
                        hint = "the bucket does not exist";
                else if (streq(code, "AccessDenied"))
                        hint = "access denied: the credentials may not write to this bucket";
                else if (streq(code, "BadDigest") || streq(code, "XAmzContentSHA256Mismatch") ||
                         streq(code, "InvalidDigest"))
                        hint = "the data arrived corrupted (its checksum does not match)";
                else if (streq(code, "RequestTimeTooSkewed"))
                        hint = "this machine's clock is too far from the server's";
                else if (streq(code, "AuthorizationHeaderMalformed") ||
                         streq(code, "IllegalLocationConstraintException"))
                        hint = "the region is wrong for this bucket";
                else if (streq(code, "EntityTooSmall"))
                        hint = "a part is smaller than the server's minimum part size";
        } else if (resp->status == 403)
                hint = "access denied (wrong key, or no permission)";
        else if (resp->status == 404)
                hint = "not found (does the bucket exist?)";
        if (hint)
                strbuf_addf(out, "%s (", hint);
        strbuf_addf(out, "HTTP %ld", resp->status);
        if (code)
                strbuf_addf(out, " %s", code);
        if (msg && *msg)
                strbuf_addf(out, ": %s", msg);
        if (hint)
                strbuf_addc(out, ')');
}

/* s3_do with retries on network errors and 5xx. */
static int s3_do_retry(struct s3 *s, struct http_client *c, const struct s3_req *q,
                       struct http_response *resp) {
        int r;
        for (unsigned attempt = 0;; attempt++) {
                r = s3_do(s, c, q, resp);
                if (q->count_sent)
                        atomic_fetch_add(r >= 0 && resp->status / 100 == 2 ? &s->bytes_sent
                                                                           : &s->bytes_retried,
                                         resp->bytes_sent);
                if (!publish_retryable(r, resp) || attempt >= s->retries)
                        return r;
                publish_backoff(attempt + 1);
        }
}

static void strip_quotes(char *etag) {
        size_t n = strlen(etag);
        if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
                memmove(etag, etag + 1, n - 2);
                etag[n - 2] = 0;
        }
}

/* ---- hashing ------------------------------------------------------------- */

static int md5_bin(const void *data, size_t n, unsigned char out[16]) {
        unsigned int len = 0;
        return EVP_Digest(data, n, out, &len, EVP_md5(), NULL) && len == 16 ? 0 : -EIO;
}

static void base64(const unsigned char *in, size_t n, char *out) {
        EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* ---- steps ---------------------------------------------------------------- */

static char *sidecar_key(const struct s3 *s) { return xasprintf("%s" S3_SIDECAR_SUFFIX, s->key); }

/* HEAD the object: size, ETag (unquoted) and x-amz-meta-sha256. Returns 1
 * when it exists, 0 when not, -errno with a message in err otherwise. */
static int head_object(struct s3 *s, struct http_client *c, uint64_t *ret_size, char **ret_etag,
                       char **ret_sha, struct strbuf *err) {
        struct http_response resp = {0};
        struct s3_req q = {.method = "HEAD", .key = s->key};
        int r = s3_do_retry(s, c, &q, &resp);
        if (r >= 0 && resp.status == 404) {
                http_response_done(&resp);
                return 0;
        }
        if (r < 0 || resp.status != 200) {
                describe_failure(s, err, "checking the object", r, &resp);
                http_response_done(&resp);
                return r < 0 ? r : -EIO;
        }
        const char *len = http_response_header(&resp, "Content-Length");
        const char *etag = http_response_header(&resp, "ETag");
        const char *sha = http_response_header(&resp, "x-amz-meta-sha256");
        *ret_size = len ? strtoull(len, NULL, 10) : 0;
        if (ret_etag) {
                *ret_etag = xstrdup(etag ? etag : "");
                strip_quotes(*ret_etag);
        }
        if (ret_sha)
                *ret_sha = xstrdup_null(sha);
        http_response_done(&resp);
        return 1;
}

static int put_sidecar(struct s3 *s, struct http_client *c, struct strbuf *err) {
        _cleanup_free_ char *k = sidecar_key(s);
        _cleanup_free_ char *body = xasprintf("%s  %s\n", s->a->sha256, s->a->file_name);
        const struct sigv4_param h[] = {{"Content-Type", "text/plain"}};
        struct s3_req q = {.method = "PUT", .key = k, .body = body, .body_len = strlen(body),
                           .headers = h, .nheaders = 1};
        struct http_response resp = {0};
        int r = s3_do_retry(s, c, &q, &resp);
        if (r < 0 || resp.status / 100 != 2) {
                describe_failure(s, err, "writing the .sha256 sidecar", r, &resp);
                r = r < 0 ? r : -EIO;
        } else
                r = 0;
        http_response_done(&resp);
        return r;
}

/* Step 1. Returns 1 when the artifact is already there (result filled),
 * 0 to upload, -errno on a hard error (bucket missing, wrong key).
 *
 * The object's own record decides: its size and the x-amz-meta-sha256 kiln
 * writes with it. The sidecar is a separate object that an out-of-band
 * overwrite of the object leaves behind, so a matching sidecar alone proves
 * nothing; an object without a recorded sha256, or with another one, is
 * uploaded again. A missing or stale sidecar of a matching object is
 * (re)written (0 payload bytes). */
static int skip_check(struct s3 *s, struct http_client *c, struct strbuf *err) {
        bool sidecar_match = false;
        if (sidecar_fits(s->key)) {
                _cleanup_free_ char *k = sidecar_key(s);
                struct http_response resp = {0};
                struct s3_req q = {.method = "GET", .key = k, .max_body = 4096};
                int r = s3_do_retry(s, c, &q, &resp);
                if (r >= 0 && resp.status == 200)
                        sidecar_match = resp.body && resp.body_len >= SHA256_HEX_LEN &&
                                        strncasecmp(resp.body, s->a->sha256, SHA256_HEX_LEN) == 0;
                else if (r < 0 || resp.status != 404 ||
                         (resp.body && strstr(resp.body, "<Code>NoSuchBucket</Code>"))) {
                        describe_failure(s, err, "checking for an existing upload", r, &resp);
                        http_response_done(&resp);
                        return r < 0 ? r : -EIO;
                }
                http_response_done(&resp);
        }

        uint64_t size = 0;
        _cleanup_free_ char *sha = NULL;
        int r = head_object(s, c, &size, NULL, &sha, err);
        if (r <= 0)
                return r;
        if (size != s->a->size || !sha || strcasecmp(sha, s->a->sha256) != 0)
                return 0;
        if (sidecar_match || !sidecar_fits(s->key))
                return 1;
        /* complete and recorded, but the sidecar is missing or stale */
        r = put_sidecar(s, c, err);
        return r < 0 ? r : 1;
}

static void on_sent(void *userdata, uint64_t n) {
        struct s3 *s = userdata;
        uint64_t done = atomic_fetch_add(&s->progress_done, n) + n;
        if (s->ctx->progress)
                s->ctx->progress(s->ctx->userdata, done > s->a->size ? s->a->size : done, s->a->size);
}

/* Step 2, small files: one PUT from memory. */
static int put_single(struct s3 *s, struct http_client *c, struct strbuf *err) {
        if (s->a->size > S3_MAX_SINGLE) {
                strbuf_addf(err, "%s: too large for a single PUT", s->a->path);
                return -E2BIG;
        }
        _cleanup_close_ int fd = publish_open_file(s->a->path, s->a->size, NULL, err);
        if (fd < 0)
                return fd;
        _cleanup_free_ char *buf = xmalloc(s->a->size ? s->a->size : 1);
        size_t len = 0;
        int r;
        while (len < s->a->size) {
                ssize_t k = read(fd, buf + len, s->a->size - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        strbuf_addf(err, "reading %s: %s", s->a->path, strerror(-r));
                        return r;
                }
                if (k == 0)
                        break; /* shrank: the sha256 check below says so */
                len += k;
        }
        char sha[SHA256_HEX_LEN + 1];
        unsigned char md5[16];
        if (hash_sha256_hex(buf, len, sha) < 0 || md5_bin(buf, len, md5) < 0) {
                strbuf_adds(err, "hashing failed");
                return -EIO;
        }
        if (len != s->a->size || !streq(sha, s->a->sha256)) {
                strbuf_addf(err, "%s changed since it was hashed (sha256 now %s)", s->a->path, sha);
                return -ESTALE;
        }
        char md5b64[32], md5hex[33];
        base64(md5, 16, md5b64);
        hex_encode(md5, 16, md5hex);
        const struct sigv4_param h[] = {
                {"Content-MD5", md5b64},
                {"Content-Type", "application/octet-stream"},
                {"x-amz-meta-sha256", s->a->sha256},
        };
        struct s3_req q = {.method = "PUT", .key = s->key, .body = buf, .body_len = len,
                           .payload_hash = sha,
                           .headers = h, .nheaders = ARRAY_SIZE(h),
                           .on_sent = on_sent, .userdata = s, .count_sent = true};
        struct http_response resp = {0};
        r = s3_do_retry(s, c, &q, &resp);
        if (r < 0 || resp.status != 200) {
                describe_failure(s, err, "uploading", r, &resp);
                http_response_done(&resp);
                return r < 0 ? r : -EIO;
        }
        _cleanup_free_ char *etag = xstrdup_null(http_response_header(&resp, "ETag"));
        http_response_done(&resp);
        if (etag) {
                strip_quotes(etag);
                if (strcasecmp(etag, md5hex) != 0) {
                        strbuf_addf(err, "the server stored different bytes (ETag %s, local MD5 %s)",
                                    etag, md5hex);
                        return -EIO;
                }
        }
        return 0;
}

/* ---- multipart -------------------------------------------------------------- */

struct part {
        uint64_t offset, size;
        unsigned char md5[16];
        bool done;
        char remote_etag[33];    /* from ListParts when resuming, "" otherwise */
        uint64_t remote_size;
};

struct mp {
        struct s3 *s;
        int fd;
        char *upload_id;
        struct part *parts;
        unsigned nparts;
        uint64_t part_size;
        unsigned resumed;        /* parts found already uploaded */
        pthread_mutex_t lock;
        unsigned next;
        int error;
        struct strbuf err;
};

static int mp_initiate(struct mp *m, struct http_client *c, struct strbuf *err) {
        const struct sigv4_param qp[] = {{"uploads", NULL}};
        const struct sigv4_param h[] = {
                {"Content-Type", "application/octet-stream"},
                {"x-amz-meta-sha256", m->s->a->sha256},
        };
        struct s3_req q = {.method = "POST", .key = m->s->key, .query = qp, .nquery = 1,
                           .headers = h, .nheaders = ARRAY_SIZE(h)};
        struct http_response resp = {0};
        int r = s3_do_retry(m->s, c, &q, &resp);
        if (r >= 0 && resp.status == 200)
                m->upload_id = xml_body_get(&resp, "UploadId");
        if (r < 0 || resp.status != 200 || !m->upload_id || !*m->upload_id) {
                describe_failure(m->s, err, "starting the multipart upload", r, &resp);
                http_response_done(&resp);
                return r < 0 ? r : -EIO;
        }
        http_response_done(&resp);
        return 0;
}

static int mp_abort(struct mp *m, struct http_client *c, const char *upload_id) {
        const struct sigv4_param qp[] = {{"uploadId", upload_id}};
        struct s3_req q = {.method = "DELETE", .key = m->s->key, .query = qp, .nquery = 1};
        struct http_response resp = {0};
        int r = s3_do_retry(m->s, c, &q, &resp);
        http_response_done(&resp);
        return r;
}

/* Seconds since the epoch of an S3 timestamp ("2026-12-03T10:14:22.000Z"),
 * or -1. */
static int64_t parse_s3_time(const char *t) {
        struct tm tm = {0};
        int y, mo, d, h, mi, sec;
        if (!t || sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
                return -1;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        time_t v = timegm(&tm);
        return v == (time_t)-1 ? -1 : (int64_t)v;
}

/* ListMultipartUploads for keys starting with prefix, following the
 * key/upload-id markers over at most S3_LIST_PAGES_MAX pages. *ret (owned)
 * holds them in the server's order (by key, then start time). */
static int list_uploads(struct s3 *s, struct http_client *c, const char *prefix,
                        struct publish_upload **ret, size_t *ret_n, struct strbuf *err) {
        struct publish_upload *v = NULL;
        size_t n = 0, cap = 0;
        _cleanup_free_ char *key_marker = NULL, *id_marker = NULL;
        int r = 0;
        bool truncated = true;
        for (unsigned page = 0; truncated && page < S3_LIST_PAGES_MAX; page++) {
                struct sigv4_param qp[4] = {{"uploads", NULL}, {"prefix", prefix}};
                size_t nq = 2;
                if (key_marker)
                        qp[nq++] = (struct sigv4_param){"key-marker", key_marker};
                if (id_marker)
                        qp[nq++] = (struct sigv4_param){"upload-id-marker", id_marker};
                struct s3_req q = {.method = "GET", .query = qp, .nquery = nq,
                                   .max_body = S3_LIST_BODY_MAX};
                struct http_response resp = {0};
                r = s3_do_retry(s, c, &q, &resp);
                if (r < 0 || resp.status != 200) {
                        describe_failure(s, err, "listing unfinished uploads", r, &resp);
                        http_response_done(&resp);
                        r = r < 0 ? r : -EIO;
                        goto fail;
                }
                const char *p = resp.body ? resp.body : "", *end = p + resp.body_len, *next;
                char *up;
                while ((up = xml_get(p, end, "Upload", &next))) {
                        char *k = xml_get(up, up + strlen(up), "Key", NULL);
                        char *id = xml_get(up, up + strlen(up), "UploadId", NULL);
                        if (k && id && (strlen(k) > S3_MAX_KEY_BYTES || strlen(id) > S3_UPLOAD_ID_MAX)) {
                                free(k);
                                free(id);
                                free(up);
                                http_response_done(&resp);
                                strbuf_addf(err, "listing unfinished uploads: the server listed a key "
                                            "over %u bytes or an upload id over %u", S3_MAX_KEY_BYTES,
                                            S3_UPLOAD_ID_MAX);
                                r = -EBADMSG;
                                goto fail;
                        }
                        if (k && id && *id && n >= S3_LIST_UPLOADS_MAX) {
                                free(k);
                                free(id);
                                free(up);
                                http_response_done(&resp);
                                strbuf_addf(err, "listing unfinished uploads: more than %u under '%s'; "
                                            "use a longer prefix", S3_LIST_UPLOADS_MAX, prefix);
                                r = -E2BIG;
                                goto fail;
                        }
                        if (k && id && *id) {
                                GROW(v, n, cap);
                                v[n] = (struct publish_upload){
                                        .key = k, .upload_id = id,
                                        .initiated = xml_get(up, up + strlen(up), "Initiated", NULL),
                                };
                                v[n].initiated_s = parse_s3_time(v[n].initiated);
                                n++;
                        } else {
                                free(k);
                                free(id);
                        }
                        free(up);
                        p = next;
                }
                _cleanup_free_ char *trunc = xml_body_get(&resp, "IsTruncated");
                _cleanup_free_ char *nk = xml_body_get(&resp, "NextKeyMarker");
                _cleanup_free_ char *ni = xml_body_get(&resp, "NextUploadIdMarker");
                http_response_done(&resp);
                truncated = trunc && streq(trunc, "true");
                if (!truncated)
                        break;
                /* A next page must start after this one, or it never ends. */
                if (!nk || !*nk || (key_marker && streq(nk, key_marker) &&
                                    streq(ni ? ni : "", id_marker ? id_marker : ""))) {
                        strbuf_adds(err, "listing unfinished uploads: the server's listing does not advance");
                        r = -EBADMSG;
                        goto fail;
                }
                free(key_marker);
                free(id_marker);
                key_marker = TAKE_PTR(nk);
                id_marker = ni && *ni ? TAKE_PTR(ni) : NULL;
        }
        if (truncated) {
                strbuf_addf(err, "listing unfinished uploads: more than %u pages under '%s'; "
                            "use a longer prefix", S3_LIST_PAGES_MAX, prefix);
                r = -E2BIG;
                goto fail;
        }
        *ret = v;
        *ret_n = n;
        return 0;
fail:
        publish_uploads_free(v, n);
        return r;
}

/* Finds an unfinished upload of this key (the newest) and the parts it
 * already has. Returns 1 when one is resumed, 0 when there is none, -errno
 * on errors. An upload whose parts do not fit the local layout is aborted. */
static int mp_find(struct mp *m, struct http_client *c, struct strbuf *err) {
        struct s3 *s = m->s;
        struct publish_upload *ups = NULL;
        size_t nups = 0;
        int r = list_uploads(s, c, s->key, &ups, &nups, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *best_id = NULL, *best_time = NULL;
        for (size_t i = 0; i < nups; i++) {
                const char *t = ups[i].initiated ? ups[i].initiated : "";
                if (streq(ups[i].key, s->key) && (!best_id || strcmp(t, best_time) > 0)) {
                        free(best_id);
                        free(best_time);
                        best_id = xstrdup(ups[i].upload_id);
                        best_time = xstrdup(t);
                }
        }
        publish_uploads_free(ups, nups);
        if (!best_id)
                return 0;

        struct http_response resp = {0};
        const char *p, *end, *next;
        /* ListParts, page by page. */
        unsigned marker = 0;
        bool fits = true;
        for (unsigned page = 0; page < 20; page++) {
                char mk[16];
                snprintf(mk, sizeof(mk), "%u", marker);
                const struct sigv4_param lp[] = {{"uploadId", best_id}, {"part-number-marker", mk}};
                struct s3_req lq = {.method = "GET", .key = s->key, .query = lp, .nquery = 2,
                                    .max_body = S3_LIST_BODY_MAX};
                r = s3_do_retry(s, c, &lq, &resp);
                if (r >= 0 && resp.status == 404) {
                        http_response_done(&resp);
                        return 0; /* completed or aborted meanwhile */
                }
                if (r < 0 || resp.status != 200) {
                        describe_failure(s, err, "listing the parts of an unfinished upload", r, &resp);
                        http_response_done(&resp);
                        return r < 0 ? r : -EIO;
                }
                p = resp.body ? resp.body : "";
                end = p + resp.body_len;
                char *pt;
                while ((pt = xml_get(p, end, "Part", &next))) {
                        _cleanup_free_ char *num = xml_get(pt, pt + strlen(pt), "PartNumber", NULL);
                        _cleanup_free_ char *etag = xml_get(pt, pt + strlen(pt), "ETag", NULL);
                        _cleanup_free_ char *size = xml_get(pt, pt + strlen(pt), "Size", NULL);
                        unsigned long n = num ? strtoul(num, NULL, 10) : 0;
                        if (n >= 1 && n <= m->nparts && etag && size) {
                                strip_quotes(etag);
                                struct part *x = &m->parts[n - 1];
                                x->remote_size = strtoull(size, NULL, 10);
                                snprintf(x->remote_etag, sizeof(x->remote_etag), "%s", etag);
                                if (x->remote_size != x->size)
                                        fits = false;
                        } else if (n > m->nparts)
                                fits = false;
                        free(pt);
                        p = next;
                }
                _cleanup_free_ char *trunc = xml_body_get(&resp, "IsTruncated");
                _cleanup_free_ char *nm = xml_body_get(&resp, "NextPartNumberMarker");
                http_response_done(&resp);
                if (!trunc || !streq(trunc, "true") || !nm)
                        break;
                unsigned long nmv = strtoul(nm, NULL, 10);
                if (nmv <= marker)
                        break;
                marker = nmv;
        }
        if (!fits) {
                /* Another part size: nothing reusable. */
                (void)mp_abort(m, c, best_id);
                for (unsigned i = 0; i < m->nparts; i++)
                        m->parts[i].remote_etag[0] = 0;
                return 0;
        }
        m->upload_id = TAKE_PTR(best_id);
        return 1;
}

static void mp_fail(struct mp *m, int r, const char *msg) {
        pthread_mutex_lock(&m->lock);
        if (!m->error) {
                m->error = r;
                strbuf_adds(&m->err, msg);
        }
        pthread_mutex_unlock(&m->lock);
}

static int mp_upload_part(struct mp *m, struct http_client *c, unsigned i, unsigned char *buf) {
        struct s3 *s = m->s;
        struct part *p = &m->parts[i];
        _cleanup_strbuf_ struct strbuf err = STRBUF_INIT;
        size_t got = 0;
        while (got < p->size) {
                ssize_t k = pread(m->fd, buf + got, p->size - got, p->offset + got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        int e = k < 0 ? -errno : -EIO;
                        strbuf_addf(&err, "reading %s: %s", s->a->path,
                                    k < 0 ? strerror(errno) : "file shrank");
                        mp_fail(m, e, strbuf_str(&err));
                        return e;
                }
                got += k;
        }
        if (md5_bin(buf, p->size, p->md5) < 0) {
                mp_fail(m, -EIO, "hashing failed");
                return -EIO;
        }
        char md5hex[33], md5b64[32];
        hex_encode(p->md5, 16, md5hex);
        if (p->remote_etag[0] && p->remote_size == p->size && strcasecmp(p->remote_etag, md5hex) == 0) {
                p->done = true; /* already on the server */
                on_sent(s, p->size);
                return 0;
        }
        char sha[SHA256_HEX_LEN + 1];
        if (!s->unsigned_payload && hash_sha256_hex(buf, p->size, sha) < 0) {
                mp_fail(m, -EIO, "hashing failed");
                return -EIO;
        }
        base64(p->md5, 16, md5b64);
        char num[16];
        snprintf(num, sizeof(num), "%u", i + 1);
        const struct sigv4_param qp[] = {{"partNumber", num}, {"uploadId", m->upload_id}};
        const struct sigv4_param h[] = {{"Content-MD5", md5b64}};
        struct s3_req q = {.method = "PUT", .key = s->key, .query = qp, .nquery = 2,
                           .headers = h, .nheaders = 1, .body = buf, .body_len = p->size,
                           .payload_hash = s->unsigned_payload ? SIGV4_UNSIGNED_PAYLOAD : sha,
                           .on_sent = on_sent, .userdata = s, .count_sent = true};
        struct http_response resp = {0};
        int r = s3_do_retry(s, c, &q, &resp);
        if (r < 0 || resp.status != 200) {
                _cleanup_free_ char *what = xasprintf("uploading part %u of %u", i + 1, m->nparts);
                describe_failure(s, &err, what, r, &resp);
                http_response_done(&resp);
                r = r < 0 ? r : -EIO;
                mp_fail(m, r, strbuf_str(&err));
                return r;
        }
        _cleanup_free_ char *etag = xstrdup_null(http_response_header(&resp, "ETag"));
        http_response_done(&resp);
        if (etag) {
                strip_quotes(etag);
                if (strcasecmp(etag, md5hex) != 0) {
                        strbuf_addf(&err, "part %u: the server stored different bytes (ETag %s, local MD5 %s)",
                                    i + 1, etag, md5hex);
                        mp_fail(m, -EIO, strbuf_str(&err));
                        return -EIO;
                }
        }
        p->done = true;
        return 0;
}

static void *mp_worker(void *arg) {
        struct mp *m = arg;
        struct http_client *c = NULL;
        int r = s3_client(m->s, &c);
        if (r < 0) {
                mp_fail(m, r, "cannot create an HTTP client");
                return NULL;
        }
        unsigned char *buf = xmalloc(m->part_size);
        for (;;) {
                pthread_mutex_lock(&m->lock);
                unsigned i = m->next;
                bool stop = m->error || i >= m->nparts;
                if (!stop)
                        m->next++;
                pthread_mutex_unlock(&m->lock);
                if (stop)
                        break;
                if (mp_upload_part(m, c, i, buf) < 0)
                        break;
        }
        free(buf);
        http_client_free(c);
        return NULL;
}

static int mp_complete(struct mp *m, struct http_client *c, struct strbuf *err) {
        _cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
        strbuf_adds(&body, "<CompleteMultipartUpload>");
        for (unsigned i = 0; i < m->nparts; i++) {
                char hex[33];
                hex_encode(m->parts[i].md5, 16, hex);
                strbuf_addf(&body, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1,
                            hex);
        }
        strbuf_adds(&body, "</CompleteMultipartUpload>");
        const struct sigv4_param qp[] = {{"uploadId", m->upload_id}};
        const struct sigv4_param h[] = {{"Content-Type", "application/xml"}};
        struct s3_req q = {.method = "POST", .key = m->s->key, .query = qp, .nquery = 1,
                           .headers = h, .nheaders = 1, .body = body.buf, .body_len = body.len,
                           .max_body = S3_LIST_BODY_MAX};
        struct http_response resp = {0};
        int r = s3_do_retry(m->s, c, &q, &resp);
        /* S3 may answer 200 and put an <Error> in the body. */
        bool ok = r >= 0 && resp.status == 200 && !(resp.body && strstr(resp.body, "<Error>"));
        if (!ok) {
                describe_failure(m->s, err, "completing the multipart upload", r, &resp);
                http_response_done(&resp);
                return r < 0 ? r : -EIO;
        }
        http_response_done(&resp);
        return 0;
}

/* The ETag S3 gives a multipart object: md5 of the parts' binary md5s, "-N". */
static void mp_etag(const struct mp *m, char out[48]) {
        unsigned char *all = xmalloc(16 * (size_t)m->nparts), md[16];
        for (unsigned i = 0; i < m->nparts; i++)
                memcpy(all + 16 * (size_t)i, m->parts[i].md5, 16);
        char hex[33];
        if (md5_bin(all, 16 * (size_t)m->nparts, md) < 0)
                memset(md, 0, sizeof(md));
        hex_encode(md, 16, hex);
        snprintf(out, 48, "%s-%u", hex, m->nparts);
        free(all);
}

static int put_multipart(struct s3 *s, struct http_client *c, char etag_out[48], bool *ret_resumed,
                         struct strbuf *err) {
        struct mp m = {.s = s, .fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};
        int r;
        /* Part size: the configured one, grown (in MiB steps) to stay within
         * S3's 10 000 parts. */
        uint64_t ps = s->part_size;
        if ((s->a->size + ps - 1) / ps > S3_MAX_PARTS) {
                ps = (s->a->size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
                ps = (ps + (1u << 20) - 1) & ~((uint64_t)(1u << 20) - 1);
        }
        if (ps > S3_MAX_PART) {
                strbuf_adds(err, "the file is larger than S3's maximum object size");
                return -E2BIG;
        }
        m.part_size = ps;
        m.nparts = s->a->size ? (unsigned)((s->a->size + ps - 1) / ps) : 1;
        m.parts = xcalloc(m.nparts, sizeof(*m.parts));
        for (unsigned i = 0; i < m.nparts; i++) {
                m.parts[i].offset = (uint64_t)i * ps;
                m.parts[i].size = i + 1 < m.nparts ? ps : s->a->size - (uint64_t)i * ps;
        }
        m.fd = publish_open_file(s->a->path, s->a->size, NULL, err);
        if (m.fd < 0) {
                r = m.fd;
                goto out;
        }
        r = mp_find(&m, c, err);
        if (r < 0)
                goto out;
        *ret_resumed = r > 0;
        if (r == 0) {
                r = mp_initiate(&m, c, err);
                if (r < 0)
                        goto out;
        }
        for (unsigned i = 0; i < m.nparts; i++)
                if (m.parts[i].remote_etag[0])
                        m.resumed++;

        unsigned n = s->ctx->parallel ? s->ctx->parallel : 4;
        if (n > S3_MAX_PARALLEL)
                n = S3_MAX_PARALLEL;
        if (n > m.nparts)
                n = m.nparts;
        pthread_t th[S3_MAX_PARALLEL];
        unsigned started = 0;
        for (; started < n; started++)
                if (pthread_create(&th[started], NULL, mp_worker, &m) != 0)
                        break;
        if (!started)
                mp_worker(&m);
        for (unsigned i = 0; i < started; i++)
                pthread_join(th[i], NULL);
        if (m.error) {
                /* The upload stays open: the next run resumes it. */
                strbuf_adds(err, strbuf_str(&m.err));
                r = m.error;
                goto out;
        }
        r = mp_complete(&m, c, err);
        if (r < 0)
                goto out;
        mp_etag(&m, etag_out);
        r = 0;
out:
        if (m.fd >= 0)
                close(m.fd);
        free(m.parts);
        free(m.upload_id);
        strbuf_free(&m.err);
        pthread_mutex_destroy(&m.lock);
        return r;
}

/* ---- the publisher ---------------------------------------------------------- */

/* Settings, credentials and an HTTP client: what every operation starts
 * with. a is NULL for operations on a key prefix (listing uploads). */
static int s3_open(struct s3 *s, const struct publish_target *t, const struct publish_artifact *a,
                   struct http_client **ret_c, struct strbuf *err) {
        int r = s3_configure(s, t->settings, a, s->ctx->environ, err);
        if (r < 0)
                return r;
        r = s3_credentials(s, t->settings, s->ctx->environ, err);
        if (r < 0)
                return r;
        r = s3_client(s, ret_c);
        if (r < 0)
                strbuf_adds(err, "cannot create an HTTP client");
        return r;
}

static int s3_publish(const struct publish_target *t, const struct publish_artifact *a,
                      const struct publish_ctx *ctx, struct publish_result *ret) {
        uint64_t t0 = now_ms();
        struct s3 s = {.ctx = ctx, .a = a};
        _cleanup_strbuf_ struct strbuf err = STRBUF_INIT;
        struct http_client *c = NULL;
        _cleanup_free_ char *etag = NULL, *sha = NULL;
        char want_etag[48] = "";
        bool multipart = false, resumed = false;
        uint64_t size = 0;
        int r;
        *ret = (struct publish_result){.status = PUBLISH_FAILED};

        r = s3_open(&s, t, a, &c, &err);
        if (r < 0)
                goto out;
        ret->location = xasprintf("s3://%s/%s", s.bucket, s.key);
        if (!sidecar_fits(s.key))
                ret->note = xasprintf("no %s sidecar: the key is %zu bytes and its sidecar's would "
                                      "exceed S3's %u; the object's x-amz-meta-sha256 records "
                                      "the hash", S3_SIDECAR_SUFFIX, strlen(s.key), S3_MAX_KEY_BYTES);

        r = skip_check(&s, c, &err);
        if (r < 0)
                goto out;
        if (r > 0) {
                ret->status = PUBLISH_SKIPPED_IDENTICAL;
                r = 0;
                goto out;
        }

        multipart = a->size > s.threshold;
        if (multipart)
                r = put_multipart(&s, c, want_etag, &resumed, &err);
        else
                r = put_single(&s, c, &err);
        if (r < 0)
                goto out;

        /* Verify what the server holds before declaring it complete. */
        r = head_object(&s, c, &size, &etag, &sha, &err);
        if (r == 0) {
                strbuf_adds(&err, "verifying: the object is missing after the upload");
                r = -EIO;
        }
        if (r < 0)
                goto out;
        if (size != a->size) {
                strbuf_addf(&err, "verifying: the server holds %llu bytes, expected %llu",
                            (unsigned long long)size, (unsigned long long)a->size);
                r = -EIO;
                goto out;
        }
        if (multipart && etag && *etag && strcasecmp(etag, want_etag) != 0) {
                strbuf_addf(&err, "verifying: the server's ETag %s is not the local %s", etag,
                            want_etag);
                r = -EIO;
                goto out;
        }
        if (sha && strcasecmp(sha, a->sha256) != 0) {
                /* A resumed upload started for other content (same first
                 * parts): its recorded sha256 is stale. Remove the object so
                 * nothing claims to be what it is not; the next run starts
                 * fresh. */
                struct s3_req q = {.method = "DELETE", .key = s.key};
                struct http_response resp = {0};
                (void)s3_do(&s, c, &q, &resp);
                http_response_done(&resp);
                strbuf_adds(&err, "verifying: the resumed upload was started for different "
                                  "content; the object was removed, run again");
                r = -ESTALE;
                goto out;
        }
        if (sidecar_fits(s.key)) {
                r = put_sidecar(&s, c, &err);
                if (r < 0)
                        goto out;
        }
        ret->status = PUBLISH_UPLOADED;
        r = 0;
out:
        ret->bytes_sent = atomic_load(&s.bytes_sent);
        ret->bytes_retried = atomic_load(&s.bytes_retried);
        ret->elapsed_ms = now_ms() - t0;
        if (r < 0) {
                ret->status = PUBLISH_FAILED;
                ret->error = strbuf_detach(&err);
        }
        http_client_free(c);
        s3_free(&s);
        return r;
}

static int s3_validate(const struct value *settings, struct diag_list *d) {
        /* The checks below look at kinds themselves: all run, so that one
         * pass reports every mistake. */
        unsigned errs = schema_check(settings, s3_fields, "publish target 's3'", d);
        const struct value *v;
        if ((v = value_map_get(settings, "bucket")) && v->kind == V_STRING && !v->invalid &&
            !bucket_name_ok(v->str)) {
                diag_error(d, &v->mark, value_span(v),
                           "publish target 's3': bucket: '%s' is not a valid bucket name "
                           "(3 to 63 lowercase letters, digits, '-', '.')", value_shown(v));
                errs++;
        }
        errs += publish_validate_endpoint_retries(settings, "publish target 's3'",
                                                  "https://storage.googleapis.com", S3_MAX_RETRIES, d);
        if ((v = value_map_get(settings, "part_size")) && value_is_scalar(v) && !v->invalid) {
                uint64_t n;
                if (parse_size(v->str, &n) == 0 && (n < S3_MIN_PART || n > S3_MAX_PART)) {
                        diag_error(d, &v->mark, value_span(v),
                                   "publish target 's3': part_size: must be between 5MiB and 5GiB");
                        errs++;
                }
        }
        /* A key ending in '/' gets the file name appended: that can only
         * make it longer, so what is refused here stays refused. */
        _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
        if ((v = value_map_get(settings, "key")) && v->kind == V_STRING && !v->invalid && *v->str &&
            !key_ok(v->str, &why)) {
                diag_error(d, &v->mark, value_span(v), "publish target 's3': %s", strbuf_str(&why));
                errs++;
        }
        return errs ? -EINVAL : 0;
}

static int s3_list_uploads(const struct publish_target *t, const struct publish_ctx *ctx,
                           struct publish_upload **ret, size_t *ret_n, char **ret_error) {
        struct s3 s = {.ctx = ctx};
        _cleanup_strbuf_ struct strbuf err = STRBUF_INIT;
        struct http_client *c = NULL;
        *ret = NULL;
        *ret_n = 0;
        *ret_error = NULL;
        int r = s3_open(&s, t, NULL, &c, &err);
        if (r >= 0)
                r = list_uploads(&s, c, s.key, ret, ret_n, &err);
        if (r < 0)
                *ret_error = strbuf_detach(&err);
        http_client_free(c);
        s3_free(&s);
        return r;
}

static int s3_abort_upload(const struct publish_target *t, const struct publish_upload *u,
                           const struct publish_ctx *ctx, char **ret_error) {
        struct s3 s = {.ctx = ctx};
        _cleanup_strbuf_ struct strbuf err = STRBUF_INIT;
        struct http_client *c = NULL;
        *ret_error = NULL;
        int r = s3_open(&s, t, NULL, &c, &err);
        if (r >= 0) {
                const struct sigv4_param qp[] = {{"uploadId", u->upload_id}};
                struct s3_req q = {.method = "DELETE", .key = u->key, .query = qp, .nquery = 1};
                struct http_response resp = {0};
                r = s3_do_retry(&s, c, &q, &resp);
                /* 404 NoSuchUpload: completed or aborted meanwhile: gone either way. */
                if (r < 0 || (resp.status / 100 != 2 && resp.status != 404)) {
                        describe_failure(&s, &err, "aborting the upload", r, &resp);
                        r = r < 0 ? r : -EIO;
                } else
                        r = 0;
                http_response_done(&resp);
        }
        if (r < 0)
                *ret_error = strbuf_detach(&err);
        http_client_free(c);
        s3_free(&s);
        return r;
}

const struct publisher publisher_s3 = {
        .type = "s3",
        .summary = "S3-compatible object storage (AWS S3, GCS XML API, Ceph, Swift s3api, MinIO)",
        .validate = s3_validate,
        .publish = s3_publish,
        .sha256_only = true,
        .list_uploads = s3_list_uploads,
        .abort_upload = s3_abort_upload,
};
