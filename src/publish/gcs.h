/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gcs.h — a small Google Cloud Storage client (JSON API), used by the
 * `gcs` publisher (gcs.c) and meant for the `gce` one (which stages its
 * tar.gz in a bucket). Peers inside publish/ include it; callers outside
 * go through the publisher table (publish.h).
 *
 * A `struct gcs` is one endpoint, one token source (gauth.h), one HTTP
 * client (not thread-safe: one gcs per thread) and the retry policy:
 *   - every request carries "Authorization: Bearer <token>"; a 401 drops
 *     the token and the request is sent once more with a fresh one;
 *   - network errors, 408, 429 and 5xx are retried `retries` times with
 *     exponential backoff (0.5 s, 1 s, 2 s, ... capped at 16 s);
 *   - bodies of answers are capped; error messages quote Google's
 *     error.message (printable, bounded), never a header or a token.
 *
 * Uploads are resumable (gcs_upload): POST ...?uploadType=resumable opens
 * a session whose URI (same origin as the endpoint, else refused: the
 * token is not sent elsewhere) takes the file in chunks of a multiple of
 * GCS_CHUNK_UNIT with Content-Range; 308 + Range says how much is
 * committed. After a cut connection or a 5xx the session is asked
 * (`Content-Range: bytes * /SIZE`, empty body) and the upload goes on from
 * the committed offset, so at most one chunk is sent twice.
 *
 * Byte accounting (gcs_bytes): payload bytes the server committed count in
 * `sent`, once; bytes of attempts it did not keep count in `retried`.
 *
 * Errors: -ENOENT (gcs_object_get / gcs_object_read: not found, no
 * message), -EACCES (401/403: credentials refused or no permission),
 * -EPROTO (an unexpected answer), -EBADMSG (a malformed answer), -ESTALE
 * (the session was lost: 404/410), and the -errno of net/http.h; every
 * error but -ENOENT comes with a message in err.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gauth;
struct publish_ctx;
struct strbuf;
struct value;

#define GCS_CHUNK_UNIT (256u << 10)          /* chunks are multiples of 256 KiB */
#define GCS_DEFAULT_CHUNK (8ull << 20)
#define GCS_MAX_CHUNK (1ull << 30)
#define GCS_MAX_OBJECT_NAME 1024u            /* bytes of UTF-8 */
#define GCS_DEFAULT_ENDPOINT "https://storage.googleapis.com"
#define GCS_DEFAULT_RETRIES 5u
#define GCS_MAX_RETRIES 10u

struct gcs_config {
        const char *endpoint;      /* http(s)://host[:port]; NULL: GCS_DEFAULT_ENDPOINT */
        uint64_t chunk_size;       /* a multiple of GCS_CHUNK_UNIT; 0: GCS_DEFAULT_CHUNK */
        unsigned retries;          /* attempts after the first */
        unsigned timeout_s;        /* stall timeout per request; 0: 60 */
        bool insecure;
        const char *ca_file;
        struct gauth *auth;        /* borrowed; must outlive the client */
        const struct publish_ctx *ctx; /* log, progress; borrowed */
        const char *log_prefix;    /* "gcs" */
};

struct gcs;

/* 0, or -EINVAL (endpoint or chunk size wrong: message in err) / -ENOMEM. */
int gcs_new(const struct gcs_config *cfg, struct gcs **ret, struct strbuf *err);
struct gcs *gcs_free(struct gcs *g);

/* The target settings every Google publisher shares — endpoint, auth,
 * key_file, chunk_size, retries, timeout, tls_verify, ca_file — read into a
 * token source (scope: the API's) and a client. Both owned by the caller
 * (free the client first). */
int gcs_open(const struct value *settings, const struct publish_ctx *ctx, const char *scope,
             struct gauth **ret_auth, struct gcs **ret, struct strbuf *err);

/* What GCS says of an object. */
struct gcs_object {
        uint64_t size;
        char *sha256;      /* metadata.sha256, or NULL; owned */
        char *md5;         /* md5Hash (base64), or NULL; owned */
        char *generation;  /* owned */
};
void gcs_object_done(struct gcs_object *o);

/* GET the object's resource: 0 (filled), -ENOENT (no such object), or an
 * error above. */
int gcs_object_get(struct gcs *g, const char *bucket, const char *name, struct gcs_object *ret,
                   struct strbuf *err);

/* The object's data (alt=media), at most max bytes: 0 with *ret (owned,
 * NUL-terminated) and *ret_len, -ENOENT, or an error above. */
int gcs_object_read(struct gcs *g, const char *bucket, const char *name, size_t max, char **ret,
                    size_t *ret_len, struct strbuf *err);

/* Writes a small object from memory in one request (uploadType=media). Its
 * bytes are not counted in gcs_bytes. */
int gcs_object_put(struct gcs *g, const char *bucket, const char *name, const char *content_type,
                   const void *data, size_t len, struct strbuf *err);

int gcs_object_delete(struct gcs *g, const char *bucket, const char *name, struct strbuf *err);

/* Uploads size bytes of fd (from offset 0; pread, the offset of fd is not
 * used) to bucket/name with the given custom metadata (metadata[2i] =
 * key, metadata[2i+1] = value; nmeta pairs), resumably (above). The final
 * resource goes into *ret (gcs_object_done). */
int gcs_upload(struct gcs *g, const char *bucket, const char *name, int fd, uint64_t size,
               const char *content_type, const char *const *metadata, size_t nmeta,
               struct gcs_object *ret, struct strbuf *err);

/* Payload bytes committed by the server, and sent in attempts it did not keep. */
void gcs_bytes(const struct gcs *g, uint64_t *ret_sent, uint64_t *ret_retried);

/* ---- pieces, exposed for tests ---- */

/* "bytes START-END/TOTAL" for len bytes from start, or "bytes * /TOTAL"
 * (no space) when len is 0 (a status query, or an empty object's one
 * request). */
void gcs_content_range(char *buf, size_t n, uint64_t start, uint64_t len, uint64_t total);

/* The committed length of a 308's Range header ("bytes=0-N": N+1; NULL: 0).
 * -EBADMSG unless it is that form with N < total. */
int gcs_committed(const char *range, uint64_t total, uint64_t *ret);

/* The length of the chunk at offset: chunk, or what is left. */
uint64_t gcs_chunk_len(uint64_t offset, uint64_t size, uint64_t chunk);

/* Whether name can be a GCS object name kiln writes (1 to
 * GCS_MAX_OBJECT_NAME bytes, no CR/LF, not "." or ".."); why in why. */
bool gcs_object_name_ok(const char *name, struct strbuf *why);

/* Whether b is a valid bucket name (3-63 characters, or up to 222 with
 * dots: lowercase letters, digits, '-', '_', '.', starting and ending with
 * a letter or digit). */
bool gcs_bucket_name_ok(const char *b);
