/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd.h — the one place kiln serves HTTP: a small wrapper over
 * libmicrohttpd for `kiln serve-images` (store/serve.c) and a future API
 * daemon. It owns the socket, the connection limits, request bodies, turning
 * a handler's answer into a response, and the access log; the handler owns
 * routing and what the answer is.
 *
 * Threads: one libmicrohttpd polling thread (epoll on Linux) calls the
 * handler for every request, one at a time, so the handler's state (an
 * SQLite connection, say) has one user and needs no lock. A file answer
 * goes out with sendfile from an fd the response owns: a slow client costs
 * a socket, not a thread.
 *
 * Limits: connections in total (max_connections) and per client address
 * (max_per_client: one client cannot take every slot); a connection that
 * sends or reads nothing for idle_timeout_s is closed (a slow but moving
 * download is not); a request body is read into memory up to max_body
 * bytes: a larger Content-Length is answered 413 without reading it, a
 * chunked body that grows past the cap closes the connection. With
 * max_body 0 bodies are not read at all (the handler sees none).
 *
 * Paths: the handler gets the request's path exactly as the client sent it
 * (percent-escapes NOT decoded; the query apart, httpd_request_arg), so it
 * checks exactly what it will use; a target that a raw NUL byte cut short (which a C
 * string cannot show) is flagged path_cut, and should be refused.
 *
 * Access log: one line per request, "CLIENT METHOD PATH STATUS BYTES"
 * (httpd_log_line), in which no byte from the request can forge or colour a
 * line.
 *
 * Errors of httpd_start: -EINVAL a listen address that does not parse,
 * -ERANGE a limit over its HTTPD_*_LIMIT, -EADDRINUSE (or the errno of
 * bind) when the socket cannot be had.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPD_MAX_CONNECTIONS 512           /* default of max_connections */
#define HTTPD_MAX_PER_CLIENT 16             /* default of max_per_client */
#define HTTPD_IDLE_TIMEOUT_S 15             /* default of idle_timeout_s */
#define HTTPD_MAX_CONNECTIONS_LIMIT 65536   /* the most max_connections may be */
#define HTTPD_IDLE_TIMEOUT_LIMIT_S 3600     /* the most idle_timeout_s may be */
#define HTTPD_MAX_BODY_LIMIT (64u << 20)    /* the most max_body may be */

#define HTTPD_LOG_PATH_MAX 1024  /* bytes of a path shown in the access log, then "..." */
#define HTTPD_LOG_METHOD_MAX 32  /* bytes of a method shown in the access log */
/* One access-log line, every byte escaped at worst (4 bytes each). */
#define HTTPD_LOG_LINE_MAX (4 * (HTTPD_LOG_PATH_MAX + HTTPD_LOG_METHOD_MAX) + 128)

struct httpd_options {
        unsigned max_connections; /* 0: HTTPD_MAX_CONNECTIONS */
        unsigned max_per_client;  /* 0: HTTPD_MAX_PER_CLIENT; at most max_connections */
        unsigned idle_timeout_s;  /* 0: HTTPD_IDLE_TIMEOUT_S */
        size_t max_body;          /* request body cap; 0: bodies are not read */
        /* Access log (may be NULL): one line per request, no newline. */
        void (*log)(void *userdata, const char *line);
        void *log_userdata;
};

struct MHD_Connection;

/* One request, valid during the handler call. Every pointer is borrowed. */
struct httpd_request {
        const char *method;
        const char *path;      /* the path as sent: not decoded, without the query */
        bool path_cut;         /* a raw NUL cut the target short: refuse it */
        const char *client;    /* the client's address ("-" when unknown) */
        const char *body;      /* NUL-terminated, or NULL when none was read */
        size_t body_len;
        struct MHD_Connection *conn; /* private: for httpd_request_header */
};

/* The value of request header name (case-insensitive), or NULL. */
const char *httpd_request_header(const struct httpd_request *rq, const char *name);
/* The value of query argument key, as sent (not decoded), or NULL. */
const char *httpd_request_arg(const struct httpd_request *rq, const char *key);

/* The answer a handler builds with the calls below; one httpd_respond_*
 * call sets the status and body (a later one replaces an earlier one). A
 * handler that sets nothing answers 500. */
struct httpd_response;

/* A static text (not copied), Content-Type text/plain; charset=utf-8. */
void httpd_respond_text(struct httpd_response *r, unsigned status, const char *text);
/* len bytes of json (owned from now on: freed by the server), Content-Type
 * application/json. */
void httpd_respond_json(struct httpd_response *r, unsigned status, char *json, size_t len);
/* {"error": message}\n as JSON (message copied and escaped). */
void httpd_respond_error(struct httpd_response *r, unsigned status, const char *message);
/* length bytes of fd from offset (fd owned from now on: closed by the
 * server), sent with sendfile. No Content-Type: add one. */
void httpd_respond_fd(struct httpd_response *r, unsigned status, int fd, uint64_t offset,
                      uint64_t length);
/* No body (204, 304, ...). */
void httpd_respond_empty(struct httpd_response *r, unsigned status);
/* Adds a response header (both strings copied), in the order given, after
 * the Content-Type set by the respond call. */
void httpd_response_header(struct httpd_response *r, const char *name, const char *value);

/* Called on the server's thread for each request. */
typedef void (*httpd_handler)(void *userdata, const struct httpd_request *rq,
                              struct httpd_response *ret);

struct httpd;

/* Listens on listen ("HOST:PORT", "PORT", ":PORT", "[V6]:PORT"; NULL or no
 * host: 127.0.0.1; port 0: any free port, see httpd_url) and serves
 * requests with handler(userdata, ...) until httpd_stop. opts may be NULL
 * for defaults. Returns 0 or -errno (above). */
int httpd_start(const char *listen, const struct httpd_options *opts, httpd_handler handler,
                void *userdata, struct httpd **ret);
/* "http://HOST:PORT" with the port actually bound. Borrowed. */
const char *httpd_url(const struct httpd *d);
/* Stops serving (waits for the thread) and frees d; NULL is fine. */
void httpd_stop(struct httpd *d);

enum {
        HTTPD_RANGE_IGNORE = 0,        /* absent, another unit, invalid, or several ranges: 200 */
        HTTPD_RANGE_ONE = 1,           /* one satisfiable range: 206 [*ret_first, *ret_last] */
        HTTPD_RANGE_UNSATISFIABLE = 2, /* valid, but no range is satisfiable: 416 */
};
/* Evaluates a Range header (NULL: absent) for a representation of size
 * bytes (RFC 9110 §14.1.1, §14.2): a unit other than "bytes" (any case) and
 * an invalid ranges-specifier are ignored; several ranges of which one is
 * satisfiable give that one, several satisfiable ones are ignored (the
 * whole file is sent rather than multipart/byteranges). Returns HTTPD_RANGE_*.
 * Pure; linear in the header's length. */
int httpd_parse_range(const char *h, uint64_t size, uint64_t *ret_first, uint64_t *ret_last);

/* Formats the access-log line "CLIENT METHOD PATH STATUS BYTES" into buf
 * (n bytes, HTTPD_LOG_LINE_MAX is always enough). client may be NULL ("-").
 * The path is logged as sent up to its query ('?'), cut at
 * HTTPD_LOG_PATH_MAX bytes ("..." then), the method at HTTPD_LOG_METHOD_MAX;
 * every byte of the client, method and path outside printable ASCII, space
 * and '\' are written as \xHH, so a request cannot forge or colour a line. */
void httpd_log_line(const char *client, const char *method, const char *path, unsigned status,
                    uint64_t bytes, char *buf, size_t n);
