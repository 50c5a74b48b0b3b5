/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4.h — AWS Signature Version 4 request signing (header form).
 *
 * kiln signs requests itself instead of using libcurl's CURLOPT_AWS_SIGV4:
 * the libcurl of Debian 12 (7.88) builds the canonical query string wrongly
 * (curl/curl#9717, #10129) and does not send x-amz-content-sha256, which S3
 * requires. The signer takes the request in DECODED form (the path and the
 * query parameters as plain strings) and encodes them itself; the caller
 * builds the URL it sends with sigv4_encode_path / sigv4_canonical_query, so
 * what is signed is byte for byte what goes on the wire.
 *
 * Encoding follows the S3 rules: every byte except A-Z a-z 0-9 - . _ ~ is
 * percent-encoded with uppercase hex, '/' is kept in the path, the path is
 * encoded once and never normalised (S3 object keys may contain "//" or
 * "./"). Header names are lowercased, values trimmed with inner runs of
 * spaces collapsed, repeated headers joined with ',' in order of appearance.
 *
 * Secrets: the secret key is only used inside sigv4_sign; the output holds
 * the signature and the Authorization header value, which is a credential
 * for this one request and must not be logged (http.c redacts it).
 */
#pragma once

#include <stddef.h>

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* The payload hash of an empty body. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_param {
        const char *name;  /* decoded */
        const char *value; /* decoded; NULL or "" for "name=" */
};

struct sigv4_request {
        const char *method;       /* "GET", "PUT", ... */
        const char *path;         /* decoded, starts with '/' */
        const struct sigv4_param *query; /* decoded parameters, any order */
        size_t nquery;
        /* Headers to sign, any order and case; must include host and
         * x-amz-date (and x-amz-content-sha256 for S3, x-amz-security-token
         * with a session token). Name and value as sent. */
        const struct sigv4_param *headers;
        size_t nheaders;
        /* Lowercase hex SHA-256 of the body, or SIGV4_UNSIGNED_PAYLOAD. */
        const char *payload_hash;
};

struct sigv4_key {
        const char *access_key;
        const char *secret_key;
        const char *region;       /* "us-east-1" */
        const char *service;      /* "s3" */
        const char *amz_date;     /* "20150830T123600Z" (UTC); its first 8 bytes are the scope date */
};

struct sigv4_signature {
        char *canonical_request;  /* owned; for tests and --verbose debugging */
        char *string_to_sign;     /* owned */
        char *signed_headers;     /* "host;x-amz-date", owned */
        char signature[65];       /* lowercase hex */
        char *authorization;      /* the Authorization header VALUE; owned; a credential */
};

/* Signs req. Returns 0, -EINVAL for a malformed request (no host header,
 * bad amz_date, path not starting with '/'), or -EIO when libcrypto fails.
 * On success the caller frees *ret with sigv4_signature_done. */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_key *key,
               struct sigv4_signature *ret);
void sigv4_signature_done(struct sigv4_signature *s);

struct strbuf;
/* Appends the encoded form of a decoded path (what goes in the URL and the
 * canonical request). */
void sigv4_encode_path(struct strbuf *out, const char *path);
/* Appends the canonical query string: each name and value encoded, sorted
 * by encoded name then value, "name=value" joined by '&'. The same string
 * is the query to put in the URL. */
void sigv4_canonical_query(struct strbuf *out, const struct sigv4_param *q, size_t n);

/* Writes the x-amz-date form of t (UTC) into out ("YYYYMMDDTHHMMSSZ"). */
#include <time.h>
void sigv4_amz_date(time_t t, char out[17]);
