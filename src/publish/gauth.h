/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gauth.h — OAuth2 access tokens for Google Cloud APIs, shared by the
 * Google publishers (gcs.c; later gce). It knows nothing of storage or
 * images: it turns a target's credentials into "Authorization: Bearer"
 * tokens and keeps them fresh.
 *
 * Where a token comes from (one source per token source, chosen once):
 *   key file   a service-account key (JSON: client_email, private_key PEM,
 *              token_uri). kiln signs a JWT (RS256, OpenSSL EVP) with
 *              iss = client_email, scope, aud = token_uri, iat = now,
 *              exp = iat + 1 h, and trades it at token_uri for an access
 *              token (grant_type urn:ietf:params:oauth:grant-type:jwt-bearer).
 *              The token is cached in memory and fetched again
 *              GAUTH_REFRESH_MARGIN_S before it expires (or when a server
 *              refused it: gauth_invalidate).
 *   token      an access token from the environment (GOOGLE_OAUTH_ACCESS_TOKEN,
 *              as `gcloud auth print-access-token` prints); never refreshed.
 *   metadata   the metadata server of the machine kiln runs on, ONLY when
 *              asked for (`auth: metadata`), at GCE_METADATA_HOST (host[:port];
 *              required: there is no default address).
 * Without `auth:`, the target's key_file: is used, else
 * GOOGLE_OAUTH_ACCESS_TOKEN, else GOOGLE_APPLICATION_CREDENTIALS (a key
 * file); nothing else is ever tried.
 *
 * Secrets: the private key, every signed assertion and every access token
 * are handed to config.add_secret and to the HTTP client's mask before
 * they are used, are never put in an error message, and are wiped when
 * freed. A token source is thread-safe (one mutex): gauth_token may be
 * called from several upload threads, each with its own HTTP client.
 *
 * Errors: -ENOENT no credentials (or GCE_METADATA_HOST unset for
 * metadata), -EBADMSG a malformed key file or token answer, -EINVAL bad
 * settings, -EACCES the token endpoint refused the credentials, or the
 * -errno of the HTTP layer (net/http.h). Every error comes with a message
 * (no secrets) saying what to fix.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_client;
struct strbuf;

#define GAUTH_SCOPE_STORAGE_RW "https://www.googleapis.com/auth/devstorage.read_write"
#define GAUTH_SCOPE_CLOUD "https://www.googleapis.com/auth/cloud-platform"
#define GAUTH_JWT_LIFETIME_S 3600     /* exp - iat of the assertion (Google's maximum) */
#define GAUTH_REFRESH_MARGIN_S 300    /* a token this close to expiry is fetched anew */
#define GAUTH_KEY_FILE_MAX (64u << 10) /* a service-account key file is ~2.3 KiB */
#define GAUTH_TOKEN_MAX 4096          /* bytes of an access token we accept */

struct gauth_config {
        const char *auth;        /* "key_file", "token", "metadata", or NULL: chosen (above) */
        const char *key_file;    /* the target's key_file:, or NULL */
        const char *scope;       /* OAuth2 scope(s), space-separated */
        char *const *environ;    /* where GOOGLE_* and GCE_METADATA_HOST are read */
        void (*add_secret)(void *userdata, const char *secret); /* may be NULL */
        void *userdata;
};

struct gauth;

/* Reads the credentials (a key file is read and its key parsed here, so a
 * broken file fails before anything is sent). 0, or an error above with a
 * message in err. *ret is owned: gauth_free. */
int gauth_new(const struct gauth_config *cfg, struct gauth **ret, struct strbuf *err);
/* Frees a (NULL is fine), wiping the key and token; returns NULL. */
struct gauth *gauth_free(struct gauth *a);

/* Where the tokens come from, for messages: "service account X (key file
 * PATH)", "the access token in GOOGLE_OAUTH_ACCESS_TOKEN", "the metadata
 * server at HOST". Borrowed from a. */
const char *gauth_describe(const struct gauth *a);

/* A bearer token valid for a while yet, fetched through c (the caller's
 * client: its TLS settings and log) when the cached one is missing or
 * close to expiry. *ret is an owned copy (wipe and free it). Registers
 * every new token with c's mask. */
int gauth_token(struct gauth *a, struct http_client *c, char **ret, struct strbuf *err);

/* A server refused the cached token: drop it so the next gauth_token
 * fetches another. Returns false when no other can be had (a token from
 * the environment), true otherwise. */
bool gauth_invalidate(struct gauth *a);

/* ---- pieces, exposed for tests ---- */

/* RFC 4648 §5 base64url without padding, appended to out. */
void gauth_base64url(struct strbuf *out, const void *data, size_t n);

/* The JWT claim set {"iss","scope","aud","iat","exp"} (exp = iat +
 * GAUTH_JWT_LIFETIME_S), compact JSON, appended to out. */
void gauth_jwt_claims(struct strbuf *out, const char *iss, const char *scope, const char *aud,
                      int64_t iat);

/* The signed assertion header.claims.signature (RS256 with the PEM private
 * key pem). *ret owned. 0, -EBADMSG (not an RSA private key in PEM) or -EIO. */
int gauth_jwt_sign(const char *pem, const char *iss, const char *scope, const char *aud,
                   int64_t iat, char **ret);

/* Whether a token that expires at expires_at (seconds, same clock as now)
 * is still good to use at now: more than the refresh margin left — or,
 * for a token issued with a lifetime shorter than twice the margin, more
 * than a quarter of its lifetime. */
bool gauth_token_fresh(int64_t now, int64_t obtained_at, int64_t expires_at);
