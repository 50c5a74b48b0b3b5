/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.h — serve-images' request handling without a socket (serve.c).
 *
 * store_serve_start (store.h) runs libmicrohttpd and, for every request,
 * calls serve_handle with the request's method, its path exactly as the
 * client sent it (percent-escapes not decoded) and the headers that matter;
 * serve_handle decodes and routes the path, resolves names through a
 * backend (the catalog in production, a fake in the tests and the fuzz
 * entry point tests/fuzz/fuzz_serve.c), evaluates If-None-Match, If-Range
 * and Range (RFC 9110 §13, §14), and describes the answer; the caller turns
 * that into an HTTP response and logs serve_log_line.
 *
 * Paths. The path is split at '/' first and each segment is decoded after,
 * so an encoded "%2F" stays inside its segment (which no name accepts). A
 * path that is not made of RFC 3986 path characters, has a malformed
 * %-escape, or decodes to anything but printable ASCII (a NUL, a control
 * character, a byte >= 0x80) is refused with 400: a request is answered for
 * exactly the path that was checked. A query ("?...") is ignored.
 */
#pragma once

#include "net/httpd.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a request's raw path; longer: 414. The access log shows as much. */
#define SERVE_PATH_MAX HTTPD_LOG_PATH_MAX
#define SERVE_LOG_METHOD_MAX HTTPD_LOG_METHOD_MAX /* bytes of the method in the access log */
#define SERVE_LOG_LINE_MAX HTTPD_LOG_LINE_MAX     /* one access-log line, at worst */

/* One request. Every string is borrowed; headers are NULL when absent. */
struct serve_request {
        const char *method;
        const char *path;          /* raw request path as sent; anything from '?' is ignored */
        bool path_cut;             /* the request line held more of the path than path (a raw
                                    * NUL byte): refused with 400 */
        const char *client;        /* the client's address, for the log (may be NULL) */
        const char *range;         /* Range */
        const char *if_range;      /* If-Range */
        const char *if_none_match; /* If-None-Match */
};

/* Where names and blobs come from. */
struct serve_backend {
        /* The SHA-256 (64 lowercase hex digits) of FILE in NAME:VERSION
         * (VERSION may be "latest"); 0, -ENOENT when not catalogued, other
         * -errno on failure. The names are valid (store_name_valid). */
        int (*lookup)(void *ctx, const char *name, const char *version, const char *file,
                      char ret_sha256[65]);
        /* Opens a blob: an fd (>= 0, owned by the caller) and its size;
         * -ENOENT unknown, -EUCLEAN changed since stored, other -errno. */
        int (*open_blob)(void *ctx, const char *sha256, uint64_t *ret_size);
        void *ctx;
};

enum serve_body {
        SERVE_BODY_TEXT,    /* text: a short static message */
        SERVE_BODY_LISTING, /* the catalog as JSON (built by the caller) */
        SERVE_BODY_FILE,    /* length bytes of fd from offset first */
        SERVE_BODY_NONE,    /* 304 */
};

/* The answer. Headers follow from the fields: 206 carries Content-Range
 * "bytes first-last/size", 416 "bytes * /size" (without the space), 405
 * Allow: GET, HEAD; file answers and 304 carry the ETag "sha256". */
struct serve_response {
        unsigned status;
        enum serve_body body;
        const char *text;          /* SERVE_BODY_TEXT: static, never NULL then */
        int fd;                    /* SERVE_BODY_FILE: owned (serve_response_done), else -1 */
        uint64_t first, length;    /* SERVE_BODY_FILE: the slice sent */
        uint64_t size;             /* the file's size (206, 416) */
        char sha256[65];           /* file answers, 304 and 416: the blob's digest */
        char filename[STORE_NAME_MAX + 1]; /* Content-Disposition ("" for /blobs/) */
        bool immutable;            /* Cache-Control: immutable (not for "latest") */
};

/* Decides the answer to rq. Never fails: errors are answers (400, 404, 500,
 * ...). ret->fd, when >= 0, belongs to the caller. Cost: one lookup and one
 * open_blob at most; linear in the path and header lengths. */
void serve_handle(const struct serve_request *rq, const struct serve_backend *be,
                  struct serve_response *ret);
/* Closes ret->fd if it is still owned (and sets it to -1). */
void serve_response_done(struct serve_response *r);

/* Range evaluation is httpd_parse_range (net/httpd.h); serve's names for it. */
enum {
        SERVE_RANGE_IGNORE = HTTPD_RANGE_IGNORE,
        SERVE_RANGE_ONE = HTTPD_RANGE_ONE,
        SERVE_RANGE_UNSATISFIABLE = HTTPD_RANGE_UNSATISFIABLE,
};
static inline int serve_parse_range(const char *h, uint64_t size, uint64_t *ret_first,
                                    uint64_t *ret_last) {
        return httpd_parse_range(h, size, ret_first, ret_last);
}

/* The access-log line of rq: httpd_log_line (net/httpd.h) of its client,
 * method and path. */
void serve_log_line(const struct serve_request *rq, unsigned status, uint64_t bytes, char *buf,
                    size_t n);
