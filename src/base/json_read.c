/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A recursive-descent reader: one function per JSON production, each
 * checking its limit before it allocates. Validating and building share
 * every line; with building off (json_validate) no node and no decoded
 * string is made, but lengths and counts are still checked. Errors keep the
 * first offset where something was wrong.
 */
#include "base/json_read.h"

#include "base/strbuf.h"
#include "base/util.h"

struct parser {
        const char *start, *p, *end;
        struct json_read_opts o; /* limits resolved (no zeros) */
        size_t elements;
        size_t err_offset;
        bool build;
};

static int fail_at(struct parser *j, int r, const char *at) {
        j->err_offset = (size_t)(at - j->start);
        return r;
}

static void skip_ws(struct parser *j) {
        while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
                j->p++;
}

static bool eat(struct parser *j, char ch) {
        skip_ws(j);
        if (j->p < j->end && *j->p == ch) {
                j->p++;
                return true;
        }
        return false;
}

static int hex4(struct parser *j, unsigned *ret) {
        if (j->end - j->p < 4)
                return fail_at(j, -EBADMSG, j->p);
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
                char ch = j->p[i];
                v <<= 4;
                if (ch >= '0' && ch <= '9')
                        v |= (unsigned)(ch - '0');
                else if (ch >= 'a' && ch <= 'f')
                        v |= (unsigned)(ch - 'a' + 10);
                else if (ch >= 'A' && ch <= 'F')
                        v |= (unsigned)(ch - 'A' + 10);
                else
                        return fail_at(j, -EBADMSG, j->p + i);
        }
        j->p += 4;
        *ret = v;
        return 0;
}

static size_t utf8_put(char out[4], unsigned cp) {
        if (cp < 0x80) {
                out[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char)(0xc0 | cp >> 6);
                out[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char)(0xe0 | cp >> 12);
                out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                out[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (char)(0xf0 | cp >> 18);
        out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_valid(const unsigned char *p, const unsigned char *end) {
        unsigned char c = p[0];
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                if (c == 0xe0)
                        lo = 0xa0; /* overlong */
                else if (c == 0xed)
                        hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                if (c == 0xf0)
                        lo = 0x90; /* overlong */
                else if (c == 0xf4)
                        hi = 0x8f; /* above U+10FFFF */
        } else
                return 0;
        if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
        return n;
}

/* A string at j->p, decoded into out when out is set. */
static int parse_string(struct parser *j, struct strbuf *out) {
        const char *open = j->p;
        if (j->p >= j->end || *j->p != '"')
                return fail_at(j, -EBADMSG, j->p);
        j->p++;
        size_t n = 0; /* decoded bytes */
        while (j->p < j->end) {
                const char *at = j->p;
                unsigned char ch = (unsigned char)*j->p;
                char buf[4];
                size_t k;
                if (ch == '"') {
                        j->p++;
                        return 0;
                }
                if (ch < 0x20)
                        return fail_at(j, -EBADMSG, at);
                if (ch >= 0x80) {
                        k = utf8_valid((const unsigned char *)j->p, (const unsigned char *)j->end);
                        if (!k) {
                                if (!j->o.raw_bytes)
                                        return fail_at(j, -EBADMSG, at);
                                k = 1;
                        }
                        memcpy(buf, j->p, k);
                        j->p += k;
                } else if (ch != '\\') {
                        buf[0] = (char)ch;
                        k = 1;
                        j->p++;
                } else {
                        j->p++;
                        if (j->p >= j->end)
                                return fail_at(j, -EBADMSG, at);
                        char e = *j->p++;
                        unsigned cp, lo;
                        int r;
                        k = 1;
                        switch (e) {
                        case '"': case '\\': case '/': buf[0] = e; break;
                        case 'b': buf[0] = '\b'; break;
                        case 'f': buf[0] = '\f'; break;
                        case 'n': buf[0] = '\n'; break;
                        case 'r': buf[0] = '\r'; break;
                        case 't': buf[0] = '\t'; break;
                        case 'u':
                                if ((r = hex4(j, &cp)) < 0)
                                        return r;
                                if (cp >= 0xdc00 && cp < 0xe000)
                                        return fail_at(j, -EBADMSG, at); /* lone low surrogate */
                                if (cp >= 0xd800 && cp < 0xdc00) {
                                        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                                                return fail_at(j, -EBADMSG, at);
                                        j->p += 2;
                                        if ((r = hex4(j, &lo)) < 0)
                                                return r;
                                        if (lo < 0xdc00 || lo >= 0xe000)
                                                return fail_at(j, -EBADMSG, at);
                                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                }
                                k = utf8_put(buf, cp);
                                break;
                        default:
                                return fail_at(j, -EBADMSG, at);
                        }
                }
                if (k > j->o.max_string - n)
                        return fail_at(j, -E2BIG, open);
                n += k;
                if (out)
                        strbuf_add(out, buf, k);
        }
        return fail_at(j, -EBADMSG, j->p); /* unterminated */
}

static bool digits(struct parser *j) {
        const char *s = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
                j->p++;
        return j->p > s;
}

static int parse_number(struct parser *j) {
        const char *s = j->p;
        if (j->p < j->end && *j->p == '-')
                j->p++;
        if (j->p < j->end && *j->p == '0')
                j->p++; /* no leading zeros: "01" ends here and fails after */
        else if (!digits(j))
                return fail_at(j, -EBADMSG, s);
        if (j->p < j->end && *j->p == '.') {
                j->p++;
                if (!digits(j))
                        return fail_at(j, -EBADMSG, j->p);
        }
        if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
                j->p++;
                if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
                        j->p++;
                if (!digits(j))
                        return fail_at(j, -EBADMSG, j->p);
        }
        if ((size_t)(j->p - s) > j->o.max_string)
                return fail_at(j, -E2BIG, s);
        return 0;
}

static struct json_value *node(struct parser *j, enum json_type t, const char *at) {
        if (!j->build)
                return NULL;
        struct json_value *v = xcalloc(1, sizeof(*v));
        v->type = t;
        v->offset = (size_t)(at - j->start);
        return v;
}

/* A string at j->p; a STRING node in *ret when build is set. */
static int parse_string_value(struct parser *j, bool build, struct json_value **ret) {
        const char *at = j->p;
        struct strbuf s = STRBUF_INIT;
        int r = parse_string(j, build ? &s : NULL);
        if (r >= 0 && build) {
                struct json_value *v = node(j, JSON_STRING, at);
                v->len = s.len;
                v->str = strbuf_detach(&s);
                *ret = v;
        }
        strbuf_free(&s);
        return r;
}

static int parse_value(struct parser *j, size_t depth, struct json_value **ret);

/* An array or an object at j->p (its opening bracket). */
static int parse_container(struct parser *j, size_t depth, struct json_value *v) {
        const char *at = j->p;
        bool object = *j->p == '{';
        char close = object ? '}' : ']';
        if (depth >= j->o.max_depth)
                return fail_at(j, -E2BIG, at);
        j->p++;
        if (eat(j, close))
                return 0;
        size_t cap = 0;
        do {
                struct json_value *k = NULL, *item = NULL;
                int r;
                if (object) {
                        skip_ws(j);
                        if ((r = parse_string_value(j, v != NULL, &k)) < 0)
                                return r;
                        if (!eat(j, ':')) {
                                json_value_free(k);
                                return fail_at(j, -EBADMSG, j->p);
                        }
                }
                if ((r = parse_value(j, depth + 1, v ? &item : NULL)) < 0) {
                        json_value_free(k);
                        return r;
                }
                if (v) {
                        if (v->n >= cap) {
                                cap = cap ? cap * 2 : 8;
                                v->items = xreallocarray(v->items, cap, sizeof(*v->items));
                                if (object)
                                        v->keys = xreallocarray(v->keys, cap, sizeof(*v->keys));
                        }
                        if (object)
                                v->keys[v->n] = k;
                        v->items[v->n++] = item;
                }
        } while (eat(j, ','));
        if (!eat(j, close))
                return fail_at(j, -EBADMSG, j->p);
        return 0;
}

static int parse_value(struct parser *j, size_t depth, struct json_value **ret) {
        skip_ws(j);
        const char *at = j->p;
        if (j->p >= j->end)
                return fail_at(j, -EBADMSG, at);
        if (++j->elements > j->o.max_elements)
                return fail_at(j, -E2BIG, at);
        static const struct {
                const char *text;
                enum json_type type;
        } literals[] = {{"null", JSON_NULL}, {"false", JSON_FALSE}, {"true", JSON_TRUE}};
        int r;
        switch (*j->p) {
        case '"':
                return parse_string_value(j, ret != NULL, ret);
        case '{':
        case '[': {
                struct json_value *v = ret ? node(j, *j->p == '{' ? JSON_OBJECT : JSON_ARRAY, at) : NULL;
                r = parse_container(j, depth, v);
                if (r < 0) {
                        json_value_free(v);
                        return r;
                }
                if (ret)
                        *ret = v;
                return 0;
        }
        case 'n':
        case 'f':
        case 't':
                for (size_t i = 0; i < ARRAY_SIZE(literals); i++) {
                        size_t l = strlen(literals[i].text);
                        if ((size_t)(j->end - j->p) >= l && memcmp(j->p, literals[i].text, l) == 0) {
                                j->p += l;
                                if (ret)
                                        *ret = node(j, literals[i].type, at);
                                return 0;
                        }
                }
                return fail_at(j, -EBADMSG, at);
        default:
                if ((r = parse_number(j)) < 0)
                        return r;
                if (ret) {
                        struct json_value *v = node(j, JSON_NUMBER, at);
                        v->len = (size_t)(j->p - at);
                        v->str = xstrndup(at, v->len);
                        *ret = v;
                }
                return 0;
        }
}

static int run(const char *text, size_t len, const struct json_read_opts *o, bool build,
               struct json_value **ret, size_t *ret_offset) {
        struct parser j = {.start = text, .p = text, .end = text + len, .build = build};
        if (o)
                j.o = *o;
        if (!j.o.max_bytes)
                j.o.max_bytes = JSON_READ_MAX_BYTES;
        if (!j.o.max_depth)
                j.o.max_depth = JSON_READ_MAX_DEPTH;
        if (!j.o.max_string)
                j.o.max_string = JSON_READ_MAX_STRING;
        if (!j.o.max_elements)
                j.o.max_elements = JSON_READ_MAX_ELEMENTS;
        if (ret_offset)
                *ret_offset = 0;
        if (!text && len)
                return -EINVAL;
        if (len > j.o.max_bytes) {
                if (ret_offset)
                        *ret_offset = j.o.max_bytes;
                return -E2BIG;
        }
        struct json_value *v = NULL;
        int r = parse_value(&j, 0, build ? &v : NULL);
        if (r >= 0) {
                skip_ws(&j);
                if (j.p != j.end)
                        r = fail_at(&j, -EBADMSG, j.p); /* something after the value */
        }
        if (r < 0) {
                json_value_free(v);
                if (ret_offset)
                        *ret_offset = j.err_offset;
                return r;
        }
        if (ret)
                *ret = v;
        return 0;
}

int json_parse(const char *text, size_t len, const struct json_read_opts *o,
               struct json_value **ret, size_t *ret_offset) {
        if (!ret)
                return -EINVAL;
        return run(text, len, o, true, ret, ret_offset);
}

int json_validate(const char *text, size_t len, const struct json_read_opts *o,
                  size_t *ret_offset) {
        return run(text, len, o, false, NULL, ret_offset);
}

struct json_value *json_value_free(struct json_value *v) {
        if (!v)
                return NULL;
        for (size_t i = 0; i < v->n; i++) {
                if (v->items)
                        json_value_free(v->items[i]);
                if (v->keys)
                        json_value_free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
        free(v->str);
        free(v);
        return NULL;
}

const struct json_value *json_get(const struct json_value *obj, const char *key) {
        if (!obj || obj->type != JSON_OBJECT || !key)
                return NULL;
        size_t kl = strlen(key);
        for (size_t i = 0; i < obj->n; i++)
                if (obj->keys[i]->len == kl && memcmp(obj->keys[i]->str, key, kl) == 0)
                        return obj->items[i];
        return NULL;
}

const char *json_str(const struct json_value *v) {
        if (!v || v->type != JSON_STRING || memchr(v->str, 0, v->len))
                return NULL;
        return v->str;
}

/* The digits of an integer number v (after an optional '-'), or NULL when
 * v is not a number written as an integer. */
static const char *integer_digits(const struct json_value *v, bool *ret_negative) {
        if (!v || v->type != JSON_NUMBER)
                return NULL;
        const char *d = v->str + (v->str[0] == '-');
        if (strpbrk(d, ".eE"))
                return NULL;
        *ret_negative = v->str[0] == '-';
        return d;
}

static int digits_u64(const char *d, uint64_t *ret) {
        uint64_t x = 0;
        for (; *d; d++) {
                unsigned k = (unsigned)(*d - '0');
                if (x > (UINT64_MAX - k) / 10)
                        return -ERANGE;
                x = x * 10 + k;
        }
        *ret = x;
        return 0;
}

int json_u64(const struct json_value *v, uint64_t *ret) {
        bool neg;
        const char *d = integer_digits(v, &neg);
        uint64_t x;
        if (!d || (neg && !streq(d, "0")))
                return -EBADMSG;
        int r = digits_u64(d, &x);
        if (r < 0)
                return r;
        *ret = x;
        return 0;
}

int json_i64(const struct json_value *v, int64_t *ret) {
        bool neg;
        const char *d = integer_digits(v, &neg);
        uint64_t x;
        if (!d)
                return -EBADMSG;
        int r = digits_u64(d, &x);
        if (r < 0)
                return r;
        if (neg ? x > (uint64_t)INT64_MAX + 1 : x > (uint64_t)INT64_MAX)
                return -ERANGE;
        *ret = neg ? (x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x) : (int64_t)x;
        return 0;
}
