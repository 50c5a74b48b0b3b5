/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h — the one place kiln talks HTTP as a client: a small wrapper over
 * libcurl shared by the publishers (S3, Glance, ...) and anything else that
 * needs it (a daemon, a fetcher). It knows nothing of publishing: retries,
 * signing and service protocols stay with the callers.
 *
 * A `struct http_client` is one libcurl easy handle (connections are kept
 * alive between requests) plus the settings every request through it uses:
 * timeouts, TLS verification, and a verbose log. A client is NOT thread-safe;
 * a publisher uploading parts in parallel creates one client per thread.
 *
 * What the wrapper guarantees:
 *   - every request has a connect timeout and a stall timeout (the transfer
 *     is aborted when nothing moved for `stall_timeout_s`), and an optional
 *     total timeout;
 *   - response bodies and headers are capped (`max_body`, HTTP_MAX_HEADERS,
 *     HTTP_MAX_HEADER_BYTES); going over a cap ends the request with -E2BIG;
 *   - TLS peers are verified unless `insecure` is set;
 *   - the verbose log (`log`) shows method, URL, status and headers, never
 *     bodies, with the values of credential headers (Authorization,
 *     X-Auth-Token, X-Subject-Token, X-Amz-Security-Token, Cookie,
 *     Set-Cookie, Proxy-Authorization) replaced by <sensitive>, and every
 *     string registered with http_client_add_secret masked wherever it
 *     appears (e.g. a token in a URL query);
 *   - libcurl errors are translated once, here, into -errno plus a message
 *     in `http_response.error` (never containing a request header value).
 *
 * Error codes of http_request():
 *   -ETIMEDOUT     connect, stall or total timeout
 *   -ECONNREFUSED  nothing listens there
 *   -EHOSTUNREACH  name resolution or routing failed
 *   -ECONNRESET    the connection broke while sending or receiving
 *   -EPROTO        TLS failure, invalid HTTP from the server
 *   -E2BIG         response body or headers over their cap
 *   -EIO           reading the request body's file failed, anything else
 *   -EINVAL        bad arguments (no URL, body both in memory and a file)
 * An HTTP error status (4xx/5xx) is NOT an error of http_request(): it
 * returns 0 and the caller inspects response.status and the body.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 128            /* response header lines kept */
#define HTTP_MAX_HEADER_BYTES (64 * 1024) /* all response header lines together */
#define HTTP_DEFAULT_MAX_BODY (1024 * 1024) /* response body cap when max_body is 0 */

struct http_options {
        unsigned connect_timeout_s; /* 0: 30 s */
        /* Abort when no byte moved in either direction for this long; 0: 60 s. */
        unsigned stall_timeout_s;
        unsigned total_timeout_s;   /* 0: no total limit (large uploads) */
        bool insecure;              /* do not verify TLS peer/host */
        const char *ca_file;        /* extra CA bundle, or NULL; copied */
        /* Verbose log sink, called with one line at a time (no newline), or
         * NULL. Lines are already redacted (see above). */
        void (*log)(void *userdata, const char *line);
        void *log_userdata;
};

struct http_client;

/* Creates a client (initialising libcurl once per process). opts may be
 * NULL for defaults. Returns 0 or -ENOMEM / -EIO. */
int http_client_new(const struct http_options *opts, struct http_client **ret);
/* Frees c (NULL is fine) and returns NULL. */
struct http_client *http_client_free(struct http_client *c);

/* Registers a string (key, token, password) that is masked in every log
 * line of this client. Copied; strings shorter than 4 bytes are ignored. */
void http_client_add_secret(struct http_client *c, const char *secret);

struct http_request {
        const char *method;          /* "GET", "HEAD", "PUT", "POST", "DELETE", "PATCH" */
        const char *url;             /* already percent-encoded */
        /* Extra header lines "Name: value", NULL-terminated, or NULL. A line
         * "Name:" removes a header libcurl would add (e.g. "Expect:"). */
        const char *const *headers;

        /* The body: either from memory (body, body_len) ... */
        const void *body;
        size_t body_len;
        /* ... or a byte range of an open file (pread, so the fd may be shared
         * between threads): body_fd >= 0 selects it. Use -1 otherwise. */
        int body_fd;
        uint64_t body_offset;
        uint64_t body_size;

        /* Cap for the response body; 0 means HTTP_DEFAULT_MAX_BODY. Set a
         * large cap (or stream via on_body) for downloads. */
        size_t max_body;
        /* When set, response body bytes are passed here instead of being
         * collected in response.body (max_body still applies to the total).
         * Return 0 to continue, -errno to abort the transfer with that
         * error. */
        int (*on_body)(void *userdata, const void *data, size_t n);
        /* Called as request body bytes go out (n = bytes since last call), from
         * the calling thread. May be NULL. */
        void (*on_sent)(void *userdata, uint64_t n);
        void *userdata;
};

/* Convenience for initialising a request: no body, no headers. */
#define HTTP_REQUEST_INIT {.method = "GET", .body_fd = -1}

struct http_header {
        char *name;   /* as sent by the server; owned */
        char *value;  /* trimmed; owned */
};

struct http_response {
        long status;                 /* HTTP status, 0 when none was received */
        struct http_header *headers; /* of the final response (after 100-continue) */
        size_t nheaders;
        char *body;                  /* NUL-terminated, or NULL when empty/streamed */
        size_t body_len;
        uint64_t bytes_sent;         /* request body bytes libcurl sent */
        uint64_t elapsed_ms;
        char error[256];             /* message when http_request failed, else "" */
};

/* Performs one request. Returns 0 when a response was received (any status;
 * *ret filled), or -errno (see the table above) with ret->error set and
 * ret->status holding whatever status arrived (possibly 0). ret must be
 * zeroed or done before the call; the caller frees it with
 * http_response_done. */
int http_request(struct http_client *c, const struct http_request *req,
                 struct http_response *ret);

/* Value of the first response header named name (case-insensitive), or
 * NULL. Borrowed from r. */
const char *http_response_header(const struct http_response *r, const char *name);

/* Frees the response's headers and body and zeroes it. */
void http_response_done(struct http_response *r);

/* Percent-encodes s (RFC 3986): unreserved characters A-Z a-z 0-9 - . _ ~
 * stay, and '/' stays when keep_slash is set; everything else becomes %XX
 * with uppercase hex. Appends to out. */
struct strbuf;
void http_uri_encode(struct strbuf *out, const char *s, size_t len, bool keep_slash);
