/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gauth.c — OAuth2 tokens for Google APIs (gauth.h): the JWT bearer grant
 * of a service-account key, a token from the environment, or the metadata
 * server when asked for.
 *
 * State: a token source holds at most one cached token and the monotonic
 * second it expires; gauth_token refreshes it under the mutex, so
 * concurrent callers wait for one fetch instead of each signing their own.
 * Cleanup style: scoped (_cleanup_*), no gotos.
 */
#include "publish/gauth.h"

#include "base/clock.h"
#include "base/json.h"
#include "base/json_read.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "net/http.h"
#include "publish/publish.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <time.h>

#define GAUTH_ANSWER_MAX (64u << 10)   /* a token endpoint's answer */
#define GAUTH_MESSAGE_MAX 200          /* server text quoted in an error */
#define GAUTH_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GAUTH_ENV_TOKEN "GOOGLE_OAUTH_ACCESS_TOKEN"
#define GAUTH_ENV_KEY_FILE "GOOGLE_APPLICATION_CREDENTIALS"
#define GAUTH_ENV_METADATA "GCE_METADATA_HOST"

enum gauth_source { SRC_KEY_FILE, SRC_TOKEN, SRC_METADATA };

struct gauth {
        enum gauth_source src;
        char *describe;
        char *scope;
        /* key file */
        char *client_email, *private_key, *token_uri;
        /* metadata */
        char *metadata_host;
        void (*add_secret)(void *userdata, const char *secret);
        void *userdata;
        pthread_mutex_t lock;
        char *token;          /* cached, or NULL */
        int64_t obtained_s;   /* monotonic seconds */
        int64_t expires_s;    /* monotonic seconds; INT64_MAX: unknown (environment) */
};

static void wipe_free(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

static int64_t mono_s(void) { return (int64_t)(now_ms() / 1000); }

static void add_secret(struct gauth *a, const char *s) {
        if (a->add_secret && s && *s)
                a->add_secret(a->userdata, s);
}

/* ---- pieces ------------------------------------------------------------- */

void gauth_base64url(struct strbuf *out, const void *data, size_t n) {
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const unsigned char *p = data;
        size_t i = 0;
        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
                strbuf_addc(out, tab[v >> 18 & 63]);
                strbuf_addc(out, tab[v >> 12 & 63]);
                strbuf_addc(out, tab[v >> 6 & 63]);
                strbuf_addc(out, tab[v & 63]);
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t)p[i] << 16;
                strbuf_addc(out, tab[v >> 18 & 63]);
                strbuf_addc(out, tab[v >> 12 & 63]);
        } else if (n - i == 2) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
                strbuf_addc(out, tab[v >> 18 & 63]);
                strbuf_addc(out, tab[v >> 12 & 63]);
                strbuf_addc(out, tab[v >> 6 & 63]);
        }
}

void gauth_jwt_claims(struct strbuf *out, const char *iss, const char *scope, const char *aud,
                      int64_t iat) {
        struct json_writer w;
        json_init(&w, out, false);
        json_begin_object(&w);
        json_key(&w, "iss");
        json_string(&w, iss);
        json_key(&w, "scope");
        json_string(&w, scope);
        json_key(&w, "aud");
        json_string(&w, aud);
        json_key(&w, "iat");
        json_int(&w, iat);
        json_key(&w, "exp");
        json_int(&w, iat + GAUTH_JWT_LIFETIME_S);
        json_end_object(&w);
}

static void pkey_freep(EVP_PKEY **k) { EVP_PKEY_free(*k); }
static void bio_freep(BIO **b) { BIO_free(*b); }
static void md_ctx_freep(EVP_MD_CTX **c) { EVP_MD_CTX_free(*c); }

/* The RSA private key of a PEM text (PKCS#8 "PRIVATE KEY" as Google writes
 * it, or "RSA PRIVATE KEY"), or NULL. */
static EVP_PKEY *read_rsa_key(const char *pem) {
        _cleanup_(bio_freep) BIO *b = BIO_new_mem_buf(pem, -1);
        if (!b)
                return NULL;
        EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
        if (k && EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
                EVP_PKEY_free(k);
                return NULL;
        }
        return k;
}

int gauth_jwt_sign(const char *pem, const char *iss, const char *scope, const char *aud,
                   int64_t iat, char **ret) {
        _cleanup_(pkey_freep) EVP_PKEY *k = read_rsa_key(pem);
        if (!k)
                return -EBADMSG;
        _cleanup_strbuf_ struct strbuf claims = STRBUF_INIT, jwt = STRBUF_INIT;
        gauth_jwt_claims(&claims, iss, scope, aud, iat);
        static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
        gauth_base64url(&jwt, header, strlen(header));
        strbuf_addc(&jwt, '.');
        gauth_base64url(&jwt, claims.buf, claims.len);
        _cleanup_(md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t siglen = 0;
        if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) != 1 ||
            EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)jwt.buf, jwt.len) != 1)
                return -EIO;
        _cleanup_free_ unsigned char *sig = xmalloc(siglen);
        if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)jwt.buf, jwt.len) != 1)
                return -EIO;
        strbuf_addc(&jwt, '.');
        gauth_base64url(&jwt, sig, siglen);
        *ret = strbuf_detach(&jwt);
        return 0;
}

bool gauth_token_fresh(int64_t now, int64_t obtained_at, int64_t expires_at) {
        int64_t life = expires_at - obtained_at;
        int64_t margin = GAUTH_REFRESH_MARGIN_S;
        if (life < 2 * margin)
                margin = life / 4;
        return now < expires_at - margin;
}

/* ---- reading credentials -------------------------------------------------- */

static void json_value_freep(struct json_value **v) { json_value_free(*v); }

/* The JSON document at path (publish_read_small_file: a FIFO or a device
 * is refused, not read). The text is wiped before it is freed. */
static int read_json_file(const char *path, struct json_value **ret, struct strbuf *err) {
        char *text = NULL;
        size_t len = 0, off = 0;
        int r = publish_read_small_file(path, GAUTH_KEY_FILE_MAX, "key file", &text, &len, err);
        if (r < 0)
                return r;
        r = json_parse(text, len, NULL, ret, &off);
        explicit_bzero(text, len);
        free(text);
        if (r < 0)
                strbuf_addf(err, "key file %s: not valid JSON (byte %zu): expected a service-account "
                            "key as the Cloud console or `gcloud iam service-accounts keys create` "
                            "writes it", path, off);
        return r;
}

static int read_key_file(struct gauth *a, const char *path, struct strbuf *err) {
        _cleanup_(json_value_freep) struct json_value *j = NULL;
        int r = read_json_file(path, &j, err);
        if (r < 0)
                return r;
        const char *type = json_str(json_get(j, "type"));
        const char *email = json_str(json_get(j, "client_email"));
        const char *key = json_str(json_get(j, "private_key"));
        const char *uri = json_str(json_get(j, "token_uri"));
        if (j->type != JSON_OBJECT || (type && !streq(type, "service_account")) || !email || !key) {
                strbuf_addf(err, "key file %s: not a service-account key (needs type "
                            "service_account, client_email and private_key)%s", path,
                            type && !streq(type, "service_account")
                                    ? "; user credentials (gcloud auth application-default) are "
                                      "not supported: use a service-account key or "
                                      GAUTH_ENV_TOKEN
                                    : "");
                return -EBADMSG;
        }
        a->private_key = xstrdup(key);
        add_secret(a, a->private_key);
        struct json_value *kv = (struct json_value *)json_get(j, "private_key");
        explicit_bzero(kv->str, kv->len); /* the tree's copy: freed with j */
        _cleanup_(pkey_freep) EVP_PKEY *k = read_rsa_key(a->private_key);
        if (!k) {
                strbuf_addf(err, "key file %s: private_key is not an RSA private key in PEM", path);
                return -EBADMSG;
        }
        if (uri && !startswith(uri, "https://") && !startswith(uri, "http://")) {
                strbuf_addf(err, "key file %s: token_uri is not an http(s) URL", path);
                return -EBADMSG;
        }
        a->client_email = xstrdup(email);
        a->token_uri = xstrdup(uri ? uri : GAUTH_DEFAULT_TOKEN_URI);
        a->describe = xasprintf("service account %s (key file %s)", email, path);
        return 0;
}

int gauth_new(const struct gauth_config *cfg, struct gauth **ret, struct strbuf *err) {
        struct gauth *a = xcalloc(1, sizeof(*a));
        pthread_mutex_init(&a->lock, NULL);
        a->add_secret = cfg->add_secret;
        a->userdata = cfg->userdata;
        a->scope = xstrdup(cfg->scope ? cfg->scope : GAUTH_SCOPE_STORAGE_RW);
        const char *env_token = publish_getenv(cfg->environ, GAUTH_ENV_TOKEN);
        const char *env_key = publish_getenv(cfg->environ, GAUTH_ENV_KEY_FILE);
        const char *auth = cfg->auth;
        if (!auth) {
                if (cfg->key_file)
                        auth = "key_file";
                else if (env_token && *env_token)
                        auth = "token";
                else if (env_key && *env_key)
                        auth = "key_file";
        }
        int r = 0;
        if (!auth) {
                strbuf_adds(err, "no Google credentials: set key_file: (a service-account key), "
                                 GAUTH_ENV_TOKEN " or " GAUTH_ENV_KEY_FILE
                                 ", or auth: metadata on a machine with a metadata server");
                r = -ENOENT;
        } else if (streq(auth, "key_file")) {
                const char *path = cfg->key_file ? cfg->key_file : env_key;
                if (!path || !*path) {
                        strbuf_adds(err, "auth: key_file needs key_file: or " GAUTH_ENV_KEY_FILE);
                        r = -ENOENT;
                } else {
                        a->src = SRC_KEY_FILE;
                        r = read_key_file(a, path, err);
                }
        } else if (streq(auth, "token")) {
                if (!env_token || !*env_token) {
                        strbuf_adds(err, "auth: token needs an access token in " GAUTH_ENV_TOKEN
                                         " (e.g. from `gcloud auth print-access-token`)");
                        r = -ENOENT;
                } else if (strlen(env_token) > GAUTH_TOKEN_MAX || strpbrk(env_token, "\r\n ")) {
                        strbuf_adds(err, GAUTH_ENV_TOKEN " does not hold an access token");
                        r = -EINVAL;
                } else {
                        a->src = SRC_TOKEN;
                        a->token = xstrdup(env_token);
                        a->expires_s = INT64_MAX;
                        add_secret(a, a->token);
                        a->describe = xstrdup("the access token in " GAUTH_ENV_TOKEN);
                }
        } else if (streq(auth, "metadata")) {
                const char *host = publish_getenv(cfg->environ, GAUTH_ENV_METADATA);
                if (!host || !*host) {
                        strbuf_adds(err, "auth: metadata needs " GAUTH_ENV_METADATA
                                         " (host[:port] of the metadata server); kiln has no "
                                         "default address for it");
                        r = -ENOENT;
                } else if (strpbrk(host, "/?#@ \r\n")) {
                        strbuf_adds(err, GAUTH_ENV_METADATA " must be host[:port]");
                        r = -EINVAL;
                } else {
                        a->src = SRC_METADATA;
                        a->metadata_host = xstrdup(host);
                        a->describe = xasprintf("the metadata server at %s", host);
                }
        } else {
                strbuf_addf(err, "auth: '%s' is not key_file, token or metadata", auth);
                r = -EINVAL;
        }
        if (r < 0) {
                gauth_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

struct gauth *gauth_free(struct gauth *a) {
        if (!a)
                return NULL;
        pthread_mutex_destroy(&a->lock);
        wipe_free(a->private_key);
        wipe_free(a->token);
        free(a->client_email);
        free(a->token_uri);
        free(a->metadata_host);
        free(a->scope);
        free(a->describe);
        free(a);
        return NULL;
}

const char *gauth_describe(const struct gauth *a) { return a->describe; }

/* ---- fetching tokens -------------------------------------------------------- */

/* Quotes the server's explanation of a refused request: the OAuth2
 * "error" and "error_description", else nothing (a body may echo what was
 * sent). Printable ASCII only, bounded. */
static void server_reason(const struct http_response *resp, struct strbuf *out) {
        _cleanup_(json_value_freep) struct json_value *j = NULL;
        if (!resp->body || json_parse(resp->body, resp->body_len, NULL, &j, NULL) < 0)
                return;
        const struct json_value *e = json_get(j, "error");
        const char *code = json_str(e);
        const char *desc = json_str(json_get(j, "error_description"));
        if (!code && e)
                desc = json_str(json_get(e, "message"));
        size_t start = out->len;
        for (const char *s = code; s && *s && out->len - start < GAUTH_MESSAGE_MAX; s++)
                strbuf_addc(out, *s >= 0x20 && *s < 0x7f ? *s : '?');
        if (desc && *desc) {
                strbuf_adds(out, code ? ": " : "");
                for (const char *s = desc; *s && out->len - start < GAUTH_MESSAGE_MAX; s++)
                        strbuf_addc(out, *s >= 0x20 && *s < 0x7f ? *s : '?');
        }
}

/* Reads {"access_token", "expires_in"} of a token answer into the cache. */
static int take_token(struct gauth *a, struct http_client *c, const struct http_response *resp,
                      const char *from, struct strbuf *err) {
        _cleanup_(json_value_freep) struct json_value *j = NULL;
        uint64_t expires_in = 0;
        const char *tok = NULL;
        if (resp->body && json_parse(resp->body, resp->body_len, NULL, &j, NULL) == 0)
                tok = json_str(json_get(j, "access_token"));
        if (!tok || !*tok || strlen(tok) > GAUTH_TOKEN_MAX || strpbrk(tok, "\r\n ") ||
            json_u64(json_get(j, "expires_in"), &expires_in) < 0 || expires_in == 0 ||
            expires_in > 7 * 86400) {
                strbuf_addf(err, "%s: the answer holds no access token with an expiry", from);
                return -EBADMSG;
        }
        wipe_free(a->token);
        a->token = xstrdup(tok);
        add_secret(a, a->token);
        http_client_add_secret(c, a->token);
        a->obtained_s = mono_s();
        a->expires_s = a->obtained_s + (int64_t)expires_in;
        return 0;
}

static int fetch_key_file(struct gauth *a, struct http_client *c, struct strbuf *err) {
        _cleanup_free_ char *jwt = NULL;
        int r = gauth_jwt_sign(a->private_key, a->client_email, a->scope, a->token_uri,
                               (int64_t)time(NULL), &jwt);
        if (r < 0) {
                strbuf_addf(err, "%s: cannot sign the token request", a->describe);
                return r;
        }
        /* The assertion is itself a credential until it expires. */
        add_secret(a, jwt);
        http_client_add_secret(c, jwt);
        _cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
        strbuf_adds(&body, "grant_type=");
        static const char grant[] = "urn:ietf:params:oauth:grant-type:jwt-bearer";
        http_uri_encode(&body, grant, strlen(grant), false);
        strbuf_adds(&body, "&assertion=");
        strbuf_adds(&body, jwt); /* base64url and dots: nothing to encode */
        const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
                              "Accept: application/json", NULL};
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "POST";
        req.url = a->token_uri;
        req.headers = hdrs;
        req.body = body.buf;
        req.body_len = body.len;
        req.max_body = GAUTH_ANSWER_MAX;
        struct http_response resp = {0};
        r = http_request(c, &req, &resp);
        explicit_bzero(body.buf, body.len);
        explicit_bzero(jwt, strlen(jwt));
        if (r < 0) {
                strbuf_addf(err, "%s: token endpoint %s: %s", a->describe, a->token_uri, resp.error);
        } else if (resp.status != 200) {
                _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
                server_reason(&resp, &why);
                strbuf_addf(err, "%s: the token endpoint refused the signed request (HTTP %ld%s%s)",
                            a->describe, resp.status, why.len ? ": " : "", strbuf_str(&why));
                if (resp.status == 400 || resp.status == 401 || resp.status == 403) {
                        strbuf_adds(err, ": check that the key file is a current key of this "
                                         "service account (deleted or rotated keys are refused) "
                                         "and that this machine's clock is right");
                        r = -EACCES;
                } else
                        r = -EPROTO;
        } else
                r = take_token(a, c, &resp, a->describe, err);
        http_response_done(&resp);
        return r;
}

static int fetch_metadata(struct gauth *a, struct http_client *c, struct strbuf *err) {
        _cleanup_strbuf_ struct strbuf url = STRBUF_INIT;
        strbuf_addf(&url, "http://%s/computeMetadata/v1/instance/service-accounts/default/token?scopes=",
                    a->metadata_host);
        http_uri_encode(&url, a->scope, strlen(a->scope), false);
        const char *hdrs[] = {"Metadata-Flavor: Google", NULL};
        struct http_request req = HTTP_REQUEST_INIT;
        req.url = strbuf_str(&url);
        req.headers = hdrs;
        req.max_body = GAUTH_ANSWER_MAX;
        struct http_response resp = {0};
        int r = http_request(c, &req, &resp);
        if (r < 0)
                strbuf_addf(err, "%s: %s", a->describe, resp.error);
        else if (resp.status != 200) {
                strbuf_addf(err, "%s: HTTP %ld for the service account's token (does this machine "
                            "have a service account with scope %s?)", a->describe, resp.status,
                            a->scope);
                r = resp.status == 403 || resp.status == 404 ? -EACCES : -EPROTO;
        } else
                r = take_token(a, c, &resp, a->describe, err);
        http_response_done(&resp);
        return r;
}

int gauth_token(struct gauth *a, struct http_client *c, char **ret, struct strbuf *err) {
        pthread_mutex_lock(&a->lock);
        int r = 0;
        if (a->src == SRC_TOKEN) {
                if (!a->token) {
                        strbuf_adds(err, "the access token in " GAUTH_ENV_TOKEN " was refused "
                                         "(expired? tokens live an hour): get a fresh one, or use "
                                         "a service-account key_file:");
                        r = -EACCES;
                }
        } else if (!a->token || !gauth_token_fresh(mono_s(), a->obtained_s, a->expires_s))
                r = a->src == SRC_KEY_FILE ? fetch_key_file(a, c, err) : fetch_metadata(a, c, err);
        if (r >= 0) {
                http_client_add_secret(c, a->token);
                *ret = xstrdup(a->token);
        }
        pthread_mutex_unlock(&a->lock);
        return r;
}

bool gauth_invalidate(struct gauth *a) {
        pthread_mutex_lock(&a->lock);
        wipe_free(a->token);
        a->token = NULL;
        pthread_mutex_unlock(&a->lock);
        return a->src != SRC_TOKEN;
}
