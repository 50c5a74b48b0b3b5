/* SPDX-License-Identifier: Apache-2.0 */
/*
 * refresh.c — refresh policies and their stamps (see refresh.h).
 *
 * The sources parsers read only what names a Release file: the type, the
 * URI and the suite of each entry; anything else (components, options)
 * does not change which Release file apt reads. Cleanup: _cleanup_
 * attributes throughout.
 */
#include "provision/refresh.h"

#include "base/hash.h"
#include "base/strbuf.h"
#include "net/http.h"
#include "os/fs.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#define SOURCES_FILE_MAX (1u << 20)
#define SOURCES_FILES_MAX 256
#define RELEASE_MAX (16u << 20)
#define URLS_MAX 64

static const char *const names[] = {
        [REFRESH_NEVER] = "never",
        [REFRESH_DAILY] = "daily",
        [REFRESH_WEEKLY] = "weekly",
        [REFRESH_RELEASE] = "release",
};

int refresh_policy_parse(const char *s, enum refresh_policy *ret) {
        for (size_t i = 0; s && i < ARRAY_SIZE(names); i++)
                if (streq(s, names[i])) {
                        *ret = (enum refresh_policy)i;
                        return 0;
                }
        return -EINVAL;
}

const char *refresh_policy_name(enum refresh_policy p) {
        return (size_t)p < ARRAY_SIZE(names) ? names[p] : "?";
}

char *refresh_period_stamp(enum refresh_policy p, time_t now) {
        struct tm tm;
        char buf[32];
        gmtime_r(&now, &tm);
        switch (p) {
        case REFRESH_NEVER:
                return xstrdup("never");
        case REFRESH_DAILY:
                strftime(buf, sizeof(buf), "daily %Y-%m-%d", &tm);
                return xstrdup(buf);
        case REFRESH_WEEKLY:
                strftime(buf, sizeof(buf), "weekly %G-W%V", &tm);
                return xstrdup(buf);
        case REFRESH_RELEASE:
                break;
        }
        return NULL;
}

/* URI/dists/SUITE/InRelease, or URI/SUITE/InRelease for a flat repository. */
static void add_url(struct strv *urls, const char *uri, size_t ul, const char *suite, size_t sl) {
        if (!ul || !sl)
                return;
        while (ul > 1 && uri[ul - 1] == '/')
                ul--;
        if (suite[sl - 1] == '/') {
                if (sl == 2 && suite[0] == '.')
                        strv_addf(urls, "%.*s/InRelease", (int)ul, uri);
                else
                        strv_addf(urls, "%.*s/%.*sInRelease", (int)ul, uri, (int)sl, suite);
        } else {
                strv_addf(urls, "%.*s/dists/%.*s/InRelease", (int)ul, uri, (int)sl, suite);
        }
}

/* The next whitespace-separated word of *p (within end); its length. */
static size_t word(const char **p, const char *end) {
        while (*p < end && (**p == ' ' || **p == '\t'))
                (*p)++;
        const char *s = *p;
        while (*p < end && **p != ' ' && **p != '\t')
                (*p)++;
        return (size_t)(*p - s);
}

static size_t parse_list(const char *text, struct strv *urls) {
        size_t n0 = urls->n;
        for (const char *line = text; *line;) {
                const char *nl = strchrnul(line, '\n');
                const char *end = nl, *hash = memchr(line, '#', (size_t)(nl - line));
                if (hash)
                        end = hash;
                const char *p = line;
                size_t tl = word(&p, end);
                if (tl == 3 && strncmp(p - 3, "deb", 3) == 0) {
                        while (p < end && (*p == ' ' || *p == '\t'))
                                p++;
                        if (p < end && *p == '[') { /* options */
                                const char *close = memchr(p, ']', (size_t)(end - p));
                                p = close ? close + 1 : end;
                        }
                        size_t ul = word(&p, end);
                        const char *uri = p - ul;
                        size_t sl = word(&p, end);
                        add_url(urls, uri, ul, p - sl, sl);
                }
                line = *nl ? nl + 1 : nl;
        }
        return urls->n - n0;
}

/* The value of field name in a deb822 stanza [s, e) (one line), or NULL. */
static const char *field(const char *s, const char *e, const char *name, size_t *ret_len) {
        size_t nl = strlen(name);
        for (const char *line = s; line < e;) {
                const char *lend = memchr(line, '\n', (size_t)(e - line));
                if (!lend)
                        lend = e;
                if ((size_t)(lend - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
                        const char *v = line + nl + 1;
                        while (v < lend && (*v == ' ' || *v == '\t'))
                                v++;
                        const char *ve = lend;
                        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                                ve--;
                        *ret_len = (size_t)(ve - v);
                        return v;
                }
                line = lend + 1;
        }
        return NULL;
}

static bool has_word(const char *v, size_t len, const char *w) {
        const char *p = v, *end = v + len;
        for (size_t l; (l = word(&p, end)) > 0;)
                if (l == strlen(w) && strncmp(p - l, w, l) == 0)
                        return true;
        return false;
}

static size_t parse_deb822(const char *text, struct strv *urls) {
        size_t n0 = urls->n;
        /* stanzas are separated by blank lines; comment lines dropped first */
        _cleanup_strbuf_ struct strbuf clean = STRBUF_INIT;
        for (const char *line = text; *line;) {
                const char *nl = strchrnul(line, '\n');
                if (*line != '#')
                        strbuf_addf(&clean, "%.*s\n", (int)(nl - line), line);
                line = *nl ? nl + 1 : nl;
        }
        const char *s = strbuf_str(&clean), *all_end = s + clean.len;
        while (s < all_end) {
                const char *e = strstr(s, "\n\n");
                e = e ? e + 1 : all_end;
                size_t tl = 0, ul = 0, sl = 0, el = 0;
                const char *types = field(s, e, "Types", &tl);
                const char *uris = field(s, e, "URIs", &ul);
                const char *suites = field(s, e, "Suites", &sl);
                const char *enabled = field(s, e, "Enabled", &el);
                bool on = !enabled || !(el == 2 && strncasecmp(enabled, "no", 2) == 0);
                if (on && types && uris && suites && has_word(types, tl, "deb")) {
                        const char *up = uris, *uend = uris + ul;
                        for (size_t u; (u = word(&up, uend)) > 0;) {
                                const char *sp = suites, *send = suites + sl;
                                for (size_t w; (w = word(&sp, send)) > 0;)
                                        add_url(urls, up - u, u, sp - w, w);
                        }
                }
                s = e;
                while (s < all_end && *s == '\n')
                        s++;
        }
        return urls->n - n0;
}

size_t refresh_release_urls(const char *text, bool deb822, struct strv *urls) {
        return deb822 ? parse_deb822(text, urls) : parse_list(text, urls);
}

/* The topmost version of rel (a file) in the layers: 1 found (*ret_path
 * owned), 0 absent or deleted (an overlay whiteout is a 0:0 char device). */
static int find_file(const char *const *layers, size_t n, const char *rel, char **ret_path) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", layers[i], rel);
                struct stat st;
                if (lstat(p, &st) < 0)
                        continue;
                if (S_ISREG(st.st_mode)) {
                        *ret_path = TAKE_PTR(p);
                        return 1;
                }
                return 0; /* a whiteout, or not a plain file: not a source */
        }
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int refresh_tree_release_urls(const char *const *layers, size_t n, struct strv *urls) {
        _cleanup_strv_ struct strv files = {0}, found = {0};
        strv_add(&files, "etc/apt/sources.list");
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *d = xasprintf("%s/etc/apt/sources.list.d", layers[i]);
                char **names_ = NULL;
                if (fs_list(AT_FDCWD, d, &names_, NULL) < 0)
                        continue;
                for (char **nm = names_; *nm && files.n < SOURCES_FILES_MAX; nm++)
                        if (endswith(*nm, ".list") || endswith(*nm, ".sources")) {
                                _cleanup_free_ char *rel = xasprintf("etc/apt/sources.list.d/%s", *nm);
                                strv_add_unique(&files, rel);
                        }
                fs_names_free(names_);
        }
        for (size_t i = 0; i < files.n; i++) {
                _cleanup_free_ char *path = NULL;
                if (find_file(layers, n, files.v[i], &path) <= 0)
                        continue;
                _cleanup_free_ char *text = NULL;
                int r = read_file(path, SOURCES_FILE_MAX, &text, NULL);
                if (r < 0)
                        return r;
                refresh_release_urls(text, endswith(files.v[i], ".sources"), &found);
        }
        if (found.n > URLS_MAX)
                return -E2BIG;
        if (found.n)
                qsort(found.v, found.n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < found.n; i++)
                strv_add_unique(urls, found.v[i]);
        return 0;
}

/* GET url into a SHA-256; 0, or -ENOENT for a 404/410, or -errno. */
static int fetch_digest(struct http_client *c, const char *url, char hex[SHA256_HEX_LEN + 1],
                        char **ret_error) {
        struct http_request req = HTTP_REQUEST_INIT;
        req.url = url;
        req.max_body = RELEASE_MAX;
        struct http_response resp = {0};
        int r = http_request(c, &req, &resp);
        if (r < 0) {
                *ret_error = xasprintf("%s: %s", url, resp.error[0] ? resp.error : strerror(-r));
        } else if (resp.status == 404 || resp.status == 410) {
                r = -ENOENT;
                *ret_error = xasprintf("%s: HTTP %ld", url, resp.status);
        } else if (resp.status != 200) {
                r = -EPROTO;
                *ret_error = xasprintf("%s: HTTP %ld", url, resp.status);
        } else {
                r = hash_sha256_hex(resp.body ? resp.body : "", resp.body_len, hex);
        }
        http_response_done(&resp);
        return r;
}

static struct http_client *client_freep_(struct http_client **c) { return http_client_free(*c); }

int refresh_release_stamp(const struct strv *urls, char **ret_stamp, char **ret_error) {
        *ret_error = NULL;
        if (!urls->n) {
                *ret_error = xstrdup("the tree has no apt sources");
                return -EINVAL;
        }
        struct http_options ho = {.connect_timeout_s = 15, .stall_timeout_s = 30, .total_timeout_s = 120};
        __attribute__((cleanup(client_freep_))) struct http_client *c = NULL;
        int r = http_client_new(&ho, &c);
        if (r < 0) {
                *ret_error = xasprintf("cannot start an HTTP client: %s", strerror(-r));
                return r;
        }
        _cleanup_strbuf_ struct strbuf doc = STRBUF_INIT;
        for (size_t i = 0; i < urls->n; i++) {
                char hex[SHA256_HEX_LEN + 1];
                char *err = NULL;
                const char *url = urls->v[i];
                r = fetch_digest(c, url, hex, &err);
                if (r == -ENOENT && endswith(url, "/InRelease")) {
                        /* no signed inline file: the Release beside it */
                        _cleanup_free_ char *alt = xasprintf("%.*sRelease", (int)(strlen(url) - 9), url);
                        free(err);
                        err = NULL;
                        r = fetch_digest(c, alt, hex, &err);
                }
                if (r < 0) {
                        *ret_error = err;
                        return r;
                }
                strbuf_addf(&doc, "%s %s\n", url, hex);
        }
        char hex[SHA256_HEX_LEN + 1];
        r = hash_sha256_hex(doc.buf, doc.len, hex);
        if (r < 0)
                return r;
        *ret_stamp = xasprintf("release %s", hex);
        return 0;
}
