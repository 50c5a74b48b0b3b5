/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4.c — AWS Signature Version 4, written from AWS's description of the
 * algorithm ("Create a canonical request", "Create a string to sign",
 * "Calculate the signature"):
 *
 *   canonical request = METHOD \n encoded path \n canonical query \n
 *                       (lowercase-name:trimmed-values \n)* \n
 *                       signed header names joined by ';' \n payload hash
 *   string to sign    = "AWS4-HMAC-SHA256" \n amz-date \n scope \n hex(sha256(canonical request))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service), "aws4_request")
 *   signature         = hex(HMAC(signing key, string to sign))
 */
#include "publish/sigv4.h"

#include "base/hash.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "net/http.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

void sigv4_encode_path(struct strbuf *out, const char *path) {
        http_uri_encode(out, path, strlen(path), true);
}

struct enc_param {
        char *name, *value;
};

static int enc_param_cmp(const void *a, const void *b) {
        const struct enc_param *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        return c ? c : strcmp(x->value, y->value);
}

void sigv4_canonical_query(struct strbuf *out, const struct sigv4_param *q, size_t n) {
        if (!n)
                return;
        struct enc_param *v = xcalloc(n, sizeof(*v));
        for (size_t i = 0; i < n; i++) {
                struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
                http_uri_encode(&a, q[i].name, strlen(q[i].name), false);
                if (q[i].value)
                        http_uri_encode(&b, q[i].value, strlen(q[i].value), false);
                v[i].name = strbuf_detach(&a);
                v[i].value = strbuf_detach(&b);
        }
        /* Byte order of the encoded names: strcmp on the encoded strings is
         * exactly the code-point order AWS asks for. */
        qsort(v, n, sizeof(*v), enc_param_cmp);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        strbuf_addc(out, '&');
                strbuf_addf(out, "%s=%s", v[i].name, v[i].value);
                free(v[i].name);
                free(v[i].value);
        }
        free(v);
}

void sigv4_amz_date(time_t t, char out[17]) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

struct canon_header {
        char *name;   /* lowercase */
        size_t order; /* position in the request, to keep repeated values in order */
        char *value;  /* trimmed, spaces collapsed */
};

static int canon_header_cmp(const void *a, const void *b) {
        const struct canon_header *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        return c ? c : (x->order > y->order) - (x->order < y->order);
}

static char *trim_value(const char *s) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "");
        while (*s == ' ' || *s == '\t')
                s++;
        bool space = false;
        for (; *s; s++) {
                if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
                        space = true;
                        continue;
                }
                if (space && sb.len)
                        strbuf_addc(&sb, ' ');
                space = false;
                strbuf_addc(&sb, *s);
        }
        return strbuf_detach(&sb);
}

static int hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32]) {
        unsigned int len = 0;
        if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &len) ||
            len != 32)
                return -EIO;
        return 0;
}

int sigv4_sign(const struct sigv4_request *req, const struct sigv4_key *key,
               struct sigv4_signature *ret) {
        if (!req->method || !req->path || req->path[0] != '/' || !req->payload_hash ||
            !key->amz_date || strlen(key->amz_date) != 16 || !key->access_key || !key->secret_key ||
            !key->region || !key->service)
                return -EINVAL;

        struct canon_header *h = xcalloc(req->nheaders ? req->nheaders : 1, sizeof(*h));
        bool have_host = false;
        for (size_t i = 0; i < req->nheaders; i++) {
                h[i].name = xstrdup(req->headers[i].name);
                for (char *p = h[i].name; *p; p++)
                        *p = tolower((unsigned char)*p);
                h[i].value = trim_value(req->headers[i].value ? req->headers[i].value : "");
                h[i].order = i;
                if (streq(h[i].name, "host"))
                        have_host = true;
        }
        int r = -EINVAL;
        _cleanup_strbuf_ struct strbuf creq = STRBUF_INIT, signed_headers = STRBUF_INIT,
                                       sts = STRBUF_INIT, auth = STRBUF_INIT;
        _cleanup_free_ char *scope = NULL, *kseed = NULL;
        if (!have_host)
                goto out;
        qsort(h, req->nheaders, sizeof(*h), canon_header_cmp);

        strbuf_addf(&creq, "%s\n", req->method);
        sigv4_encode_path(&creq, req->path);
        strbuf_addc(&creq, '\n');
        sigv4_canonical_query(&creq, req->query, req->nquery);
        strbuf_addc(&creq, '\n');
        for (size_t i = 0; i < req->nheaders; i++) {
                if (i && streq(h[i].name, h[i - 1].name)) {
                        /* repeated header: values joined with ',' */
                        strbuf_addf(&creq, ",%s", h[i].value);
                        continue;
                }
                if (i)
                        strbuf_addc(&creq, '\n');
                strbuf_addf(&creq, "%s:%s", h[i].name, h[i].value);
                if (signed_headers.len)
                        strbuf_addc(&signed_headers, ';');
                strbuf_adds(&signed_headers, h[i].name);
        }
        strbuf_addf(&creq, "\n\n%s\n%s", strbuf_str(&signed_headers), req->payload_hash);

        char creq_hash[SHA256_HEX_LEN + 1];
        r = hash_sha256_hex(creq.buf, creq.len, creq_hash);
        if (r < 0)
                goto out;
        char date[9];
        memcpy(date, key->amz_date, 8);
        date[8] = 0;
        scope = xasprintf("%s/%s/%s/aws4_request", date, key->region, key->service);
        strbuf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", key->amz_date, scope, creq_hash);

        unsigned char k[32];
        kseed = xasprintf("AWS4%s", key->secret_key);
        r = hmac(kseed, strlen(kseed), date, k);
        explicit_bzero(kseed, strlen(kseed));
        if (r >= 0)
                r = hmac(k, 32, key->region, k);
        if (r >= 0)
                r = hmac(k, 32, key->service, k);
        if (r >= 0)
                r = hmac(k, 32, "aws4_request", k);
        unsigned char sig[32];
        if (r >= 0)
                r = hmac(k, 32, strbuf_str(&sts), sig);
        explicit_bzero(k, sizeof(k));
        if (r < 0)
                goto out;

        *ret = (struct sigv4_signature){0};
        hex_encode(sig, 32, ret->signature);
        strbuf_addf(&auth, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                    key->access_key, scope, strbuf_str(&signed_headers), ret->signature);
        ret->canonical_request = strbuf_detach(&creq);
        ret->string_to_sign = strbuf_detach(&sts);
        ret->signed_headers = strbuf_detach(&signed_headers);
        ret->authorization = strbuf_detach(&auth);
        r = 0;
out:
        for (size_t i = 0; i < req->nheaders; i++) {
                free(h[i].name);
                free(h[i].value);
        }
        free(h);
        return r;
}

void sigv4_signature_done(struct sigv4_signature *s) {
        free(s->canonical_request);
        free(s->string_to_sign);
        free(s->signed_headers);
        free(s->authorization);
        *s = (struct sigv4_signature){0};
}
