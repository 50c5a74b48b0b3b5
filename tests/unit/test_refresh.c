/* SPDX-License-Identifier: Apache-2.0 */
/*
 * refresh: policies (provision/refresh.h) and the package cache
 * (provision/pkgcache.h): the stamps that go into a step's cache key, the
 * apt sources they read, the Release digest fetched from a real HTTP
 * server on 127.0.0.1, and the package cache's add, seed and prune.
 */
#include "harness.h"

#include "base/hash.h"
#include "net/httpd.h"
#include "os/fs.h"
#include "provision/cache.h"
#include "provision/pkgcache.h"
#include "provision/refresh.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static char *test_dir(void) {
        char *d = xstrdup("/var/tmp/kiln-test-refresh.XXXXXX");
        if (!mkdtemp(d))
                abort();
        return d;
}

static void put(const char *path, const char *text) {
        _cleanup_free_ char *dir = xstrdup(path);
        *strrchr(dir, '/') = 0;
        if (mkdir_p(dir, 0755) < 0 || write_file(path, text, strlen(text), 0644, 0) < 0)
                abort();
}

/* 2026-12-03 12:00:00 UTC, a Thursday in ISO week 49 */
#define T_2026_12_03_NOON ((time_t)1796299200)

TEST(refresh_policy_names) {
        enum refresh_policy p;
        const char *names[] = {"never", "daily", "weekly", "release"};
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                CHECK_INT(refresh_policy_parse(names[i], &p), ==, 0);
                CHECK_STREQ(refresh_policy_name(p), names[i]);
        }
        CHECK_INT(refresh_policy_parse("dayly", &p), ==, -EINVAL);
        CHECK_INT(refresh_policy_parse("", &p), ==, -EINVAL);
        CHECK_INT(refresh_policy_parse(NULL, &p), ==, -EINVAL);
}

TEST(refresh_period_stamps) {
        time_t t = T_2026_12_03_NOON;
        _cleanup_free_ char *d = refresh_period_stamp(REFRESH_DAILY, t);
        _cleanup_free_ char *w = refresh_period_stamp(REFRESH_WEEKLY, t);
        _cleanup_free_ char *n = refresh_period_stamp(REFRESH_NEVER, t);
        CHECK_STREQ(d, "daily 2026-12-03");
        CHECK_STREQ(w, "weekly 2026-W49");
        CHECK_STREQ(n, "never");
        CHECK(!refresh_period_stamp(REFRESH_RELEASE, t));
        /* the same UTC day, the same stamp; the next day, another */
        _cleanup_free_ char *d_late = refresh_period_stamp(REFRESH_DAILY, t + 11 * 3600 + 59 * 60);
        _cleanup_free_ char *d_next = refresh_period_stamp(REFRESH_DAILY, t + 12 * 3600);
        CHECK_STREQ(d_late, d);
        CHECK_STREQ(d_next, "daily 2026-12-04");
        /* a week runs Monday to Sunday: Sunday 6th is W49, Monday 7th W50 */
        _cleanup_free_ char *w_sun = refresh_period_stamp(REFRESH_WEEKLY, t + 3 * 86400);
        _cleanup_free_ char *w_mon = refresh_period_stamp(REFRESH_WEEKLY, t + 4 * 86400);
        CHECK_STREQ(w_sun, "weekly 2026-W49");
        CHECK_STREQ(w_mon, "weekly 2026-W50");
        /* ISO years: 2027-01-01 (a Friday) is in 2026's week 53 */
        _cleanup_free_ char *w_ny = refresh_period_stamp(REFRESH_WEEKLY, (time_t)1798804800);
        CHECK_STREQ(w_ny, "weekly 2026-W53");
}

TEST(refresh_sources_one_line) {
        _cleanup_strv_ struct strv u = {0};
        const char *text = "# a comment\n"
                           "deb http://mirror.test/debian bookworm main contrib\n"
                           "deb-src http://mirror.test/debian bookworm main\n"
                           "deb [trusted=yes arch=amd64] http://127.0.0.1:8080/repo/ ./\n"
                           "  deb http://mirror.test/security bookworm-security main # trailing\n"
                           "deb http://mirror.test/flat sub/dir/\n"
                           "#deb http://disabled.test/ bookworm main\n"
                           "deb\n";
        CHECK_INT(refresh_release_urls(text, false, &u), ==, 4);
        CHECK_INT(u.n, ==, 4);
        CHECK_STREQ(u.v[0], "http://mirror.test/debian/dists/bookworm/InRelease");
        CHECK_STREQ(u.v[1], "http://127.0.0.1:8080/repo/InRelease");
        CHECK_STREQ(u.v[2], "http://mirror.test/security/dists/bookworm-security/InRelease");
        CHECK_STREQ(u.v[3], "http://mirror.test/flat/sub/dir/InRelease");
}

TEST(refresh_sources_deb822) {
        _cleanup_strv_ struct strv u = {0};
        const char *text = "Types: deb deb-src\n"
                           "URIs: http://a.test/debian http://b.test/debian\n"
                           "Suites: bookworm bookworm-updates\n"
                           "Components: main\n"
                           "\n"
                           "# comment\n"
                           "Types: deb-src\n"
                           "URIs: http://src.test/debian\n"
                           "Suites: bookworm\n"
                           "\n"
                           "Types: deb\n"
                           "URIs: http://off.test/debian\n"
                           "Suites: bookworm\n"
                           "Enabled: no\n"
                           "\n\n"
                           "types: deb\n"
                           "uris: http://127.0.0.1:1/\n"
                           "suites: ./\n";
        CHECK_INT(refresh_release_urls(text, true, &u), ==, 5);
        CHECK_STREQ(u.v[0], "http://a.test/debian/dists/bookworm/InRelease");
        CHECK_STREQ(u.v[1], "http://a.test/debian/dists/bookworm-updates/InRelease");
        CHECK_STREQ(u.v[2], "http://b.test/debian/dists/bookworm/InRelease");
        CHECK_STREQ(u.v[3], "http://b.test/debian/dists/bookworm-updates/InRelease");
        CHECK_STREQ(u.v[4], "http://127.0.0.1:1/InRelease");
}

TEST(refresh_tree_sources_topmost_layer_wins) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *lo = xasprintf("%s/lower", dir), *up = xasprintf("%s/upper", dir);
        _cleanup_free_ char *f1 = xasprintf("%s/etc/apt/sources.list", lo);
        _cleanup_free_ char *f2 = xasprintf("%s/etc/apt/sources.list.d/debian.sources", lo);
        _cleanup_free_ char *f3 = xasprintf("%s/etc/apt/sources.list", up);
        _cleanup_free_ char *f4 = xasprintf("%s/etc/apt/sources.list.d/extra.list", up);
        _cleanup_free_ char *f5 = xasprintf("%s/etc/apt/sources.list.d/ignored.txt", up);
        put(f1, "deb http://old.test/debian bookworm main\n");
        put(f2, "Types: deb\nURIs: http://z.test/debian\nSuites: bookworm\n");
        put(f3, "deb http://new.test/debian bookworm main\n");
        put(f4, "deb http://new.test/debian bookworm main\ndeb http://extra.test/ trixie main\n");
        put(f5, "deb http://ignored.test/ bookworm main\n");
        const char *layers[] = {up, lo};
        _cleanup_strv_ struct strv u = {0};
        CHECK_INT(refresh_tree_release_urls(layers, 2, &u), ==, 0);
        CHECK_INT(u.n, ==, 3); /* sorted, duplicates once */
        CHECK_STREQ(u.v[0], "http://extra.test/dists/trixie/InRelease");
        CHECK_STREQ(u.v[1], "http://new.test/debian/dists/bookworm/InRelease");
        CHECK_STREQ(u.v[2], "http://z.test/debian/dists/bookworm/InRelease");
        /* a whiteout in the upper layer deletes the lower file */
        if (geteuid() == 0) {
                _cleanup_free_ char *wo = xasprintf("%s/etc/apt/sources.list.d/debian.sources", up);
                CHECK_INT(mknod(wo, S_IFCHR | 0600, makedev(0, 0)), ==, 0);
                strv_free(&u);
                CHECK_INT(refresh_tree_release_urls(layers, 2, &u), ==, 0);
                CHECK_INT(u.n, ==, 2);
        }
        CHECK_INT(rm_rf(dir), ==, 0);
}

/* A mirror on 127.0.0.1: /dists/s/InRelease serves `release`, /flat/
 * has only a Release file. */
struct mirror {
        pthread_mutex_t lock;
        const char *release; /* static text */
        unsigned hits;
};

static void mirror_handler(void *userdata, const struct httpd_request *rq, struct httpd_response *r) {
        struct mirror *m = userdata;
        pthread_mutex_lock(&m->lock);
        m->hits++;
        if (streq(rq->path, "/dists/s/InRelease"))
                httpd_respond_text(r, 200, m->release);
        else if (streq(rq->path, "/flat/Release"))
                httpd_respond_text(r, 200, "Origin: flat\n");
        else
                httpd_respond_error(r, 404, "no such file");
        pthread_mutex_unlock(&m->lock);
}

TEST(refresh_release_stamp_follows_the_mirror) {
        struct mirror m = {.release = "Date: one\n"};
        pthread_mutex_init(&m.lock, NULL);
        struct httpd *d = NULL;
        CHECK_INT(httpd_start("127.0.0.1:0", NULL, mirror_handler, &m, &d), ==, 0);
        _cleanup_strv_ struct strv urls = {0};
        _cleanup_free_ char *src = xasprintf("deb %s s main\ndeb %s/flat ./\n", httpd_url(d), httpd_url(d));
        CHECK_INT(refresh_release_urls(src, false, &urls), ==, 2);
        char *s1 = NULL, *s2 = NULL, *s3 = NULL, *err = NULL;
        CHECK_INT(refresh_release_stamp(&urls, &s1, &err), ==, 0);
        CHECK(!err);
        CHECK(startswith(s1, "release "));
        CHECK_INT(strlen(s1), ==, 8 + 64);
        /* unchanged: the same stamp */
        CHECK_INT(refresh_release_stamp(&urls, &s2, &err), ==, 0);
        CHECK_STREQ(s1, s2);
        /* the Release changes: another */
        pthread_mutex_lock(&m.lock);
        m.release = "Date: two\n";
        pthread_mutex_unlock(&m.lock);
        CHECK_INT(refresh_release_stamp(&urls, &s3, &err), ==, 0);
        CHECK(!streq(s1, s3));
        free(s1), free(s2), free(s3);
        /* a source with neither InRelease nor Release: an error naming it */
        strv_addf(&urls, "%s/missing/InRelease", httpd_url(d));
        char *s4 = NULL;
        CHECK_INT(refresh_release_stamp(&urls, &s4, &err), ==, -ENOENT);
        CHECK(err && strstr(err, "/missing/Release: HTTP 404"));
        free(err);
        err = NULL;
        /* offline: the mirror is gone */
        _cleanup_free_ char *gone = xasprintf("%s/dists/s/InRelease", httpd_url(d));
        httpd_stop(d);
        _cleanup_strv_ struct strv off = {0};
        strv_add(&off, gone);
        int r = refresh_release_stamp(&off, &s4, &err);
        CHECK(r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH);
        CHECK(err && strstr(err, gone));
        free(err);
        _cleanup_strv_ struct strv none = {0};
        CHECK_INT(refresh_release_stamp(&none, &s4, &err), ==, -EINVAL);
        free(err);
        pthread_mutex_destroy(&m.lock);
}

static void deb(const char *dir, const char *name, const char *content) {
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
        put(p, content);
}

static size_t count(const char *dir) {
        char **names = NULL;
        size_t n = 0;
        if (fs_list(AT_FDCWD, dir, &names, &n) < 0)
                return 0;
        fs_names_free(names);
        return n;
}

TEST(pkgcache_add_seed_verify_prune) {
        _cleanup_free_ char *dir = test_dir();
        struct cache *c = NULL;
        CHECK_INT(cache_open(dir, &c), ==, 0);
        _cleanup_free_ char *pk = cache_packages_dir(c);
        CHECK_INT(pkgcache_init(pk), ==, 0);

        /* apt fetched two files, and something that is not a package */
        _cleanup_free_ char *in = pkgcache_incoming(pk);
        CHECK(in != NULL);
        deb(in, "a_1.0_amd64.deb", "package a");
        deb(in, "b_2.0_amd64.deb", "package b");
        deb(in, "lock", "not a deb");
        size_t added = 0;
        CHECK_INT(pkgcache_add_dir(pk, in, &added), ==, 0);
        CHECK_INT(added, ==, 2);
        CHECK(access(in, F_OK) < 0); /* the incoming folder is gone */
        char hex_a[SHA256_HEX_LEN + 1];
        hash_sha256_hex("package a", 9, hex_a);
        _cleanup_free_ char *file_a = xasprintf("%s/sha256/%s", pk, hex_a);
        CHECK(access(file_a, F_OK) == 0);

        /* the same files again: nothing new */
        in = (free(in), pkgcache_incoming(pk));
        deb(in, "a_1.0_amd64.deb", "package a");
        CHECK_INT(pkgcache_add_dir(pk, in, &added), ==, 0);
        CHECK_INT(added, ==, 0);

        /* seeded by name into apt's archives */
        _cleanup_free_ char *arch = xasprintf("%s/archives", dir);
        CHECK_INT(mkdir_p(arch, 0755), ==, 0);
        size_t n = 0;
        CHECK_INT(pkgcache_seed(pk, arch, &n), ==, 0);
        CHECK_INT(n, ==, 2);
        _cleanup_free_ char *got = NULL;
        _cleanup_free_ char *seeded_a = xasprintf("%s/a_1.0_amd64.deb", arch);
        CHECK_INT(read_file(seeded_a, 100, &got, NULL), ==, 0);
        CHECK_STREQ(got, "package a");

        /* a damaged file is never handed out, and leaves the cache */
        CHECK_INT(rm_rf(arch), ==, 0);
        CHECK_INT(mkdir_p(arch, 0755), ==, 0);
        _cleanup_free_ char *fresh = xasprintf("%s/x", dir);
        put(fresh, "package A");
        CHECK_INT(rename(fresh, file_a), ==, 0); /* same size, other content */
        CHECK_INT(pkgcache_seed(pk, arch, &n), ==, 0);
        CHECK_INT(n, ==, 1);
        CHECK(access(seeded_a, F_OK) < 0);
        CHECK(access(file_a, F_OK) < 0);
        /* ... and a fresh download of it is entered again */
        in = (free(in), pkgcache_incoming(pk));
        deb(in, "a_1.0_amd64.deb", "package a");
        CHECK_INT(pkgcache_add_dir(pk, in, &added), ==, 0);
        CHECK_INT(added, ==, 1);

        /* prune counts package files with the step entries */
        struct pkgcache_file *pv = NULL;
        size_t pn = 0;
        CHECK_INT(pkgcache_list(pk, &pv, &pn), ==, 0);
        CHECK_INT(pn, ==, 2);
        free(pv);
        struct cache_prune_result res = {0};
        CHECK_INT(cache_prune_all(c, 0, &res), ==, 0);
        CHECK_INT(res.removed, ==, 0);
        CHECK_INT(res.removed_packages, ==, 2);
        CHECK(res.freed > 0);
        _cleanup_free_ char *sha = xasprintf("%s/sha256", pk);
        _cleanup_free_ char *byname = xasprintf("%s/by-name", pk);
        CHECK_INT(count(sha), ==, 0);
        CHECK_INT(count(byname), ==, 0);
        CHECK_INT(pkgcache_remove(pk, "nothex"), ==, -EINVAL);
        cache_close(c);
        CHECK_INT(rm_rf(dir), ==, 0);
}
