/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image store tests: content addressing (the same content stored once, hard
 * link vs copy), the catalog (versions, filters, labels), rm with blob
 * reference counting, prune --keep, bad inputs, a blob changed in place,
 * concurrent writers (fork), and the schema guard. Every test works in its
 * own directory under /var/tmp and removes it.
 */
#include "harness.h"

#include "base/hash.h"
#include "image/artifact.h"
#include "os/fs.h"
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char *test_dir(void) {
        char *d = xstrdup("/var/tmp/kiln-test-store.XXXXXX");
        if (!mkdtemp(d))
                abort();
        return d;
}

/* Writes n bytes derived from seed (a different seed, different content),
 * with a 1 MiB hole in the middle when sparse. Returns the SHA-256. */
static void put_content(const char *path, const char *seed, size_t n, bool sparse, char sha[65]) {
        unsigned char *buf = xcalloc(1, n + 1);
        for (size_t i = 0; i < n; i++)
                buf[i] = (unsigned char)(seed[i % strlen(seed)] + i / 7);
        if (sparse && n > (3u << 20))
                memset(buf + (1u << 20), 0, 1u << 20);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                abort();
        if (sparse && n > (3u << 20)) {
                if (pwrite(fd, buf, 1u << 20, 0) != (1 << 20) ||
                    pwrite(fd, buf + (2u << 20), n - (2u << 20), 2u << 20) != (ssize_t)(n - (2u << 20)))
                        abort();
        } else if (write(fd, buf, n) != (ssize_t)n) {
                abort();
        }
        close(fd);
        if (hash_sha256_hex(buf, n, sha) < 0)
                abort();
        free(buf);
}

/* A build's output folder dir/name with raw and qcow2 files made from seed
 * and a kiln-manifest.json; returns the folder (owned). extra_json goes
 * into the manifest's top level (e.g. "\"role\": \"login\","). */
static char *make_output(const char *dir, const char *name, const char *seed, const char *arch,
                         const char *extra_json) {
        char *out = xasprintf("%s/out-%s-%s", dir, name, seed);
        mkdir_p(out, 0755);
        char s1[65], s2[65];
        _cleanup_free_ char *raw = xasprintf("%s/%s.raw", out, name);
        _cleanup_free_ char *qc = xasprintf("%s/%s.qcow2", out, name);
        _cleanup_free_ char *seed1 = xasprintf("%s/%s", name, seed);
        _cleanup_free_ char *seed2 = xasprintf("%s/%s-q", name, seed);
        put_content(raw, seed1, 4u << 20, true, s1);
        put_content(qc, seed2, 70000, false, s2);
        _cleanup_free_ char *man = xasprintf(
                "{\"schema_version\": 1, \"name\": \"%s\", \"id\": \"%s\", \"arch\": \"%s\", %s"
                "\"labels\": {\"os\": \"debian\", \"seed\": \"%s\"},"
                "\"artifacts\": ["
                "{\"file\": \"%s.raw\", \"format\": \"raw\", \"size\": %u, \"sha256\": \"%s\", \"sha512\": null},"
                "{\"file\": \"%s.qcow2\", \"format\": \"qcow2\", \"size\": 70000, \"sha256\": \"%s\"}]}\n",
                name, name, arch, extra_json ? extra_json : "", seed, name, 4u << 20, s1, name, s2);
        _cleanup_free_ char *mp = xasprintf("%s/kiln-manifest.json", out);
        if (write_file(mp, man, strlen(man), 0644, 0) < 0)
                abort();
        return out;
}

/* Files under STORE/blobs/sha256 (recursively, two levels). */
static int count_blobs(const char *store) {
        _cleanup_free_ char *top = xasprintf("%s/blobs/sha256", store);
        DIR *d = opendir(top);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *sub = xasprintf("%s/%s", top, de->d_name);
                DIR *s = opendir(sub);
                struct dirent *e;
                while (s && (e = readdir(s)))
                        n += e->d_name[0] != '.';
                if (s)
                        closedir(s);
        }
        closedir(d);
        return n;
}

static size_t count_entries(struct store *st, const struct store_filter *f) {
        struct store_entry *v = NULL;
        size_t n = 0;
        if (store_list(st, f, &v, &n) < 0)
                return (size_t)-1;
        store_entries_free(v, n);
        return n;
}

static bool blob_ok(struct store *st, const char *sha) {
        _cleanup_free_ char *p = NULL;
        char got[65];
        return store_blob_path(st, sha, &p) >= 0 && hash_sha256_file(p, got) >= 0 && streq(got, sha);
}

TEST(store_add_twice_stored_once) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *sdir = xasprintf("%s/store", dir);
        _cleanup_free_ char *out = make_output(dir, "demo", "a", "x86_64", NULL);
        struct store *st = NULL;
        CHECK_INT(store_open(sdir, &st), ==, 0);
        struct store_entry *v = NULL, *w = NULL;
        size_t n = 0, m = 0;
        CHECK_INT(store_add_output_dir(st, out, NULL, &v, &n), ==, 0);
        CHECK_INT(n, ==, 2);
        CHECK_INT(count_blobs(sdir), ==, 2);
        CHECK(blob_ok(st, v[0].sha256) && blob_ok(st, v[1].sha256));
        CHECK_STREQ(v[0].name, "demo");
        CHECK_STREQ(v[0].arch, "x86_64");
        CHECK(v[0].role == NULL);
        CHECK_INT(v[0].nlabels, ==, 2);
        /* Default version: the build's UTC day and a counter. */
        char day[16];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(day, sizeof(day), "%Y%m%d.1", &tm);
        CHECK_STREQ(v[0].version, day);
        CHECK_STREQ(v[0].version, v[1].version);
        /* The same build again: nothing new at all. */
        CHECK_INT(store_add_output_dir(st, out, NULL, &w, &m), ==, 0);
        CHECK_INT(m, ==, 2);
        CHECK_INT(w[0].id, ==, v[0].id);
        CHECK_STREQ(w[0].version, v[0].version);
        CHECK_INT(count_entries(st, NULL), ==, 2);
        CHECK_INT(count_blobs(sdir), ==, 2);
        store_entries_free(w, m);
        /* Again with a label (promotion to a channel): labels change, nothing else. */
        struct store_label rel[] = {{(char *)"channel", (char *)"release"}};
        struct store_add_options ol = {.labels = rel, .nlabels = 1};
        CHECK_INT(store_add_output_dir(st, out, &ol, &w, &m), ==, 0);
        CHECK_INT(m, ==, 2);
        CHECK_INT(w[0].id, ==, v[0].id);
        CHECK_INT(w[0].nlabels, ==, 3);
        store_entries_free(w, m);
        struct store_filter fr = {.labels = rel, .nlabels = 1};
        CHECK_INT(count_entries(st, &fr), ==, 2);
        CHECK_INT(count_entries(st, NULL), ==, 2);
        /* As another version, copied: more entries, still two blobs. */
        struct store_add_options o = {.version = "1.0", .flags = STORE_ADD_COPY};
        CHECK_INT(store_add_output_dir(st, out, &o, &w, &m), ==, 0);
        CHECK_INT(m, ==, 2);
        CHECK_STREQ(w[0].version, "1.0");
        CHECK_INT(count_entries(st, NULL), ==, 4);
        CHECK_INT(count_blobs(sdir), ==, 2);
        store_entries_free(w, m);
        /* The same content under another name: one blob too. */
        _cleanup_free_ char *f = xasprintf("%s/demo.raw", out);
        const char *paths[] = {f};
        struct store_add_options ob = {.name = "other"};
        CHECK_INT(store_add_files(st, paths, 1, &ob, &w, &m), ==, 0);
        CHECK_INT(m, ==, 1);
        CHECK_STREQ(w[0].format, "raw");
        CHECK_STREQ(w[0].sha256, v[0].sha256[0] && streq(v[0].file, "demo.raw") ? v[0].sha256 : v[1].sha256);
        CHECK_INT(count_blobs(sdir), ==, 2);
        store_entries_free(w, m);
        store_entries_free(v, n);
        store_close(st);
        rm_rf(dir);
}

TEST(store_link_or_copy) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *sdir = xasprintf("%s/store", dir);
        _cleanup_free_ char *out = make_output(dir, "demo", "b", "x86_64", NULL);
        struct store *st = NULL;
        CHECK_INT(store_open(sdir, &st), ==, 0);
        _cleanup_free_ char *raw = xasprintf("%s/demo.raw", out);
        const char *paths[] = {raw};
        struct store_entry *v = NULL;
        size_t n = 0;
        /* Default, same file system: shares the inode (or a reflink copy). */
        struct store_add_options o = {.name = "linked"};
        CHECK_INT(store_add_files(st, paths, 1, &o, &v, &n), ==, 0);
        _cleanup_free_ char *blob = NULL;
        CHECK_INT(store_blob_path(st, v[0].sha256, &blob), ==, 0);
        struct stat a, b;
        CHECK(stat(raw, &a) == 0 && stat(blob, &b) == 0);
        CHECK(a.st_ino == b.st_ino || b.st_nlink == 1);
        store_entries_free(v, n);
        uint64_t size = 0;
        int fd = store_open_blob(st, "not-a-digest", &size);
        CHECK_INT(fd, ==, -EINVAL);
        store_close(st);
        /* --copy: a separate, sparse, identical file. */
        _cleanup_free_ char *sdir2 = xasprintf("%s/store2", dir);
        CHECK_INT(store_open(sdir2, &st), ==, 0);
        struct store_add_options oc = {.name = "copied", .flags = STORE_ADD_COPY | STORE_ADD_SHA512};
        CHECK_INT(store_add_files(st, paths, 1, &oc, &v, &n), ==, 0);
        _cleanup_free_ char *blob2 = NULL;
        CHECK_INT(store_blob_path(st, v[0].sha256, &blob2), ==, 0);
        CHECK(stat(blob2, &b) == 0);
        CHECK(a.st_ino != b.st_ino);
        CHECK_INT(b.st_size, ==, a.st_size);
        CHECK((uint64_t)b.st_blocks * 512 < (uint64_t)b.st_size); /* the hole stayed a hole */
        CHECK(blob_ok(st, v[0].sha256));
        CHECK_INT(strlen(v[0].sha512), ==, 128);
        /* Served only while unchanged: a write into the blob is noticed. */
        fd = store_open_blob(st, v[0].sha256, &size);
        CHECK(fd >= 0);
        CHECK_INT(size, ==, 4u << 20);
        if (fd >= 0)
                close(fd);
        struct timespec later[2] = {{0, UTIME_OMIT}, {time(NULL) + 10, 0}};
        CHECK(utimensat(AT_FDCWD, blob2, later, 0) == 0);
        CHECK_INT(store_open_blob(st, v[0].sha256, &size), ==, -EUCLEAN);
        CHECK_INT(store_open_blob(st, "0000000000000000000000000000000000000000000000000000000000000000",
                                  &size), ==, -ENOENT);
        store_entries_free(v, n);
        store_close(st);
        rm_rf(dir);
}

TEST(store_rm_counts_references) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *sdir = xasprintf("%s/store", dir);
        _cleanup_free_ char *out = make_output(dir, "demo", "c", "x86_64", NULL);
        struct store *st = NULL;
        CHECK_INT(store_open(sdir, &st), ==, 0);
        struct store_entry *v1 = NULL, *v2 = NULL;
        size_t n1 = 0, n2 = 0;
        CHECK_INT(store_add_output_dir(st, out, NULL, &v1, &n1), ==, 0);
        struct store_add_options o = {.version = "2"};
        CHECK_INT(store_add_output_dir(st, out, &o, &v2, &n2), ==, 0);
        CHECK_INT(count_blobs(sdir), ==, 2);
        /* Removing one version: both blobs are still used by the other. */
        int64_t ids[] = {v1[0].id, v1[1].id};
        size_t blobs = 99;
        uint64_t freed = 99;
        CHECK_INT(store_remove(st, ids, 2, &blobs, &freed), ==, 0);
        CHECK_INT(blobs, ==, 0);
        CHECK_INT(freed, ==, 0);
        CHECK_INT(count_blobs(sdir), ==, 2);
        /* Unknown ids: nothing removed at all. */
        int64_t bad[] = {v2[0].id, 12345};
        CHECK_INT(store_remove(st, bad, 2, NULL, NULL), ==, -ENOENT);
        CHECK_INT(count_entries(st, NULL), ==, 2);
        /* The last reference: its blob goes, the other stays. */
        int64_t one[] = {v2[0].id};
        CHECK_INT(store_remove(st, one, 1, &blobs, &freed), ==, 0);
        CHECK_INT(blobs, ==, 1);
        CHECK_INT(freed, ==, v2[0].size);
        CHECK_INT(count_blobs(sdir), ==, 1);
        CHECK(blob_ok(st, v2[1].sha256));
        /* The source files are untouched (the blob was a link to one). */
        _cleanup_free_ char *src = xasprintf("%s/%s", out, v2[0].file);
        char h[65];
        CHECK(hash_sha256_file(src, h) == 0 && streq(h, v2[0].sha256));
        /* Version numbers are not handed out again after removal. */
        int64_t all[] = {v2[1].id};
        CHECK_INT(store_remove(st, all, 1, NULL, NULL), ==, 0);
        CHECK_INT(count_blobs(sdir), ==, 0);
        struct store_entry *v3 = NULL;
        size_t n3 = 0;
        CHECK_INT(store_add_output_dir(st, out, NULL, &v3, &n3), ==, 0);
        CHECK(endswith(v3[0].version, ".2"));
        store_entries_free(v1, n1);
        store_entries_free(v2, n2);
        store_entries_free(v3, n3);
        store_close(st);
        rm_rf(dir);
}

TEST(store_prune_keeps_newest) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *sdir = xasprintf("%s/store", dir);
        struct store *st = NULL;
        CHECK_INT(store_open(sdir, &st), ==, 0);
        const char *seeds[] = {"p1", "p2", "p3"};
        char newest_a[64] = "", newest_b[64] = "";
        for (size_t i = 0; i < 3; i++) {
                _cleanup_free_ char *oa = make_output(dir, "alpha", seeds[i], "x86_64", NULL);
                struct store_entry *v = NULL;
                size_t n = 0;
                CHECK_INT(store_add_output_dir(st, oa, NULL, &v, &n), ==, 0);
                if (n)
                        snprintf(newest_a, sizeof(newest_a), "%s", v[0].version);
                store_entries_free(v, n);
                if (i < 2) {
                        _cleanup_free_ char *ob = make_output(dir, "beta", seeds[i], "x86_64", NULL);
                        CHECK_INT(store_add_output_dir(st, ob, NULL, &v, &n), ==, 0);
                        if (n)
                                snprintf(newest_b, sizeof(newest_b), "%s", v[0].version);
                        store_entries_free(v, n);
                }
        }
        CHECK_INT(count_entries(st, NULL), ==, 10);
        CHECK_INT(count_blobs(sdir), ==, 10);
        struct store_entry *gone = NULL;
        size_t ngone = 0;
        uint64_t freed = 0;
        /* Dry run: says 2 + 1 versions (6 entries) and changes nothing. */
        CHECK_INT(store_prune(st, NULL, 1, true, &gone, &ngone, &freed), ==, 0);
        CHECK_INT(ngone, ==, 6);
        CHECK_INT(freed, ==, 3 * ((4u << 20) + 70000));
        for (size_t i = 0; i < ngone; i++)
                CHECK(!streq(gone[i].version, streq(gone[i].name, "alpha") ? newest_a : newest_b));
        store_entries_free(gone, ngone);
        CHECK_INT(count_entries(st, NULL), ==, 10);
        /* A filter limits it to one name. */
        struct store_filter fb = {.name = "beta"};
        CHECK_INT(store_prune(st, &fb, 1, false, &gone, &ngone, &freed), ==, 0);
        CHECK_INT(ngone, ==, 2);
        store_entries_free(gone, ngone);
        CHECK_INT(count_entries(st, NULL), ==, 8);
        /* The real thing: the newest version of each name stays. */
        CHECK_INT(store_prune(st, NULL, 1, false, &gone, &ngone, &freed), ==, 0);
        CHECK_INT(ngone, ==, 4);
        store_entries_free(gone, ngone);
        struct store_entry *v = NULL;
        size_t n = 0;
        CHECK_INT(store_list(st, NULL, &v, &n), ==, 0);
        CHECK_INT(n, ==, 4);
        for (size_t i = 0; i < n; i++)
                CHECK_STREQ(v[i].version, streq(v[i].name, "alpha") ? newest_a : newest_b);
        store_entries_free(v, n);
        CHECK_INT(count_blobs(sdir), ==, 4);
        /* keep 0 empties the store. */
        CHECK_INT(store_prune(st, NULL, 0, false, &gone, &ngone, &freed), ==, 0);
        store_entries_free(gone, ngone);
        CHECK_INT(count_entries(st, NULL), ==, 0);
        CHECK_INT(count_blobs(sdir), ==, 0);
        store_close(st);
        rm_rf(dir);
}

TEST(store_filters_and_labels) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *sdir = xasprintf("%s/store", dir);
        struct store *st = NULL;
        CHECK_INT(store_open(sdir, &st), ==, 0);
        _cleanup_free_ char *o1 = make_output(dir, "node-login", "f1", "x86_64", "\"role\": \"login\",");
        _cleanup_free_ char *o2 = make_output(dir, "node-compute", "f2", "aarch64", "\"role\": \"compute\",");
        struct store_label rel[] = {{(char *)"channel", (char *)"release"},
                                    {(char *)"kubernetes_version", (char *)"1.30.2"}};
        struct store_add_options a1 = {.labels = rel, .nlabels = 2};
        struct store_label ci[] = {{(char *)"channel", (char *)"ci"}};
        struct store_add_options a2 = {.labels = ci, .nlabels = 1};
        struct store_entry *v = NULL;
        size_t n = 0;
        CHECK_INT(store_add_output_dir(st, o1, &a1, &v, &n), ==, 0);
        CHECK_INT(v[0].nlabels, ==, 4); /* os, seed from the manifest + 2 */
        store_entries_free(v, n);
        CHECK_INT(store_add_output_dir(st, o2, &a2, &v, &n), ==, 0);
        store_entries_free(v, n);
        struct store_filter f = {.arch = "aarch64"};
        CHECK_INT(count_entries(st, &f), ==, 2);
        f = (struct store_filter){.role = "login", .format = "qcow2"};
        CHECK_INT(count_entries(st, &f), ==, 1);
        f = (struct store_filter){.labels = rel, .nlabels = 1};
        CHECK_INT(count_entries(st, &f), ==, 2);
        f = (struct store_filter){.labels = rel + 1, .nlabels = 1, .arch = "aarch64"};
        CHECK_INT(count_entries(st, &f), ==, 0);
        f = (struct store_filter){.labels = ci, .nlabels = 1};
        CHECK_INT(store_list(st, &f, &v, &n), ==, 0);
        CHECK_INT(n, ==, 2);
        for (size_t i = 0; i < n; i++)
                CHECK_STREQ(v[i].name, "node-compute");
        store_entries_free(v, n);
        struct store_label seed[] = {{(char *)"seed", (char *)"f1"}};
        f = (struct store_filter){.labels = seed, .nlabels = 1};
        CHECK_INT(count_entries(st, &f), ==, 2);
        f = (struct store_filter){.name = "nothing"};
        CHECK_INT(count_entries(st, &f), ==, 0);
        /* NAME, NAME:latest, NAME:VERSION */
        CHECK_INT(store_resolve(st, "node-login", &v, &n), ==, 0);
        CHECK_INT(n, ==, 2);
        _cleanup_free_ char *ref = xasprintf("node-login:%s", v[0].version);
        store_entries_free(v, n);
        CHECK_INT(store_resolve(st, ref, &v, &n), ==, 0);
        CHECK_INT(n, ==, 2);
        store_entries_free(v, n);
        CHECK_INT(store_resolve(st, "node-login:latest", &v, &n), ==, 0);
        store_entries_free(v, n);
        CHECK_INT(store_resolve(st, "node-login:19990101.1", &v, &n), ==, -ENOENT);
        CHECK_INT(store_resolve(st, "nope", &v, &n), ==, -ENOENT);
        CHECK_INT(store_resolve(st, "../etc", &v, &n), ==, -EINVAL);
        struct store_label badf[] = {{(char *)"bad key", (char *)"x"}};
        f = (struct store_filter){.labels = badf, .nlabels = 1};
        CHECK_INT(store_list(st, &f, &v, &n), ==, -EINVAL);
        store_close(st);
        rm_rf(dir);
}

static void rewrite_manifest(const char *out, const char *from, const char *to) {
        _cleanup_free_ char *mp = xasprintf("%s/kiln-manifest.json", out);
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (read_file(mp, 1 << 20, &text, &len) < 0)
                abort();
        char *p = strstr(text, from);
        if (!p)
                abort();
        _cleanup_free_ char *s = xasprintf("%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
        if (write_file(mp, s, strlen(s), 0644, 0) < 0)
                abort();
}

TEST(store_bad_inputs) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *sdir = xasprintf("%s/store", dir);
        struct store *st = NULL;
        CHECK_INT(store_open(sdir, &st), ==, 0);
        struct store_entry *v = NULL;
        size_t n = 0;
        /* Not an output folder. */
        CHECK_INT(store_add_output_dir(st, dir, NULL, &v, &n), ==, -ENOENT);
        CHECK(strstr(store_error(st), "kiln-manifest.json") != NULL);
        /* A checksum that does not match: refused, nothing stored. */
        _cleanup_free_ char *o1 = make_output(dir, "demo", "x1", "x86_64", NULL);
        rewrite_manifest(o1, "\"sha256\": \"", "\"sha256\": \"0");
        CHECK_INT(store_add_output_dir(st, o1, NULL, &v, &n), ==, -EBADMSG);
        CHECK(strstr(store_error(st), "malformed") != NULL);
        /* 64 hex digits, the wrong ones. */
        _cleanup_free_ char *o2 = make_output(dir, "demo", "x2", "x86_64", NULL);
        rewrite_manifest(o2, "\"sha256\": \"", "\"sha256\": \"00000000");
        {
                /* cut 8 characters after the inserted zeros to keep 64 */
                _cleanup_free_ char *mp = xasprintf("%s/kiln-manifest.json", o2);
                _cleanup_free_ char *t = NULL;
                size_t len;
                CHECK(read_file(mp, 1 << 20, &t, &len) == 0);
                char *p = strstr(t, "\"sha256\": \"00000000") + 19;
                memmove(p, p + 8, strlen(p + 8) + 1);
                CHECK(write_file(mp, t, strlen(t), 0644, 0) == 0);
        }
        CHECK_INT(store_add_output_dir(st, o2, NULL, &v, &n), ==, -EBADMSG);
        CHECK(strstr(store_error(st), "sha256 is") != NULL);
        CHECK_INT(count_entries(st, NULL), ==, 0);
        CHECK_INT(count_blobs(sdir), ==, 0);
        /* A size that does not match. */
        _cleanup_free_ char *o3 = make_output(dir, "demo", "x3", "x86_64", NULL);
        rewrite_manifest(o3, "\"size\": 70000", "\"size\": 70001");
        CHECK_INT(store_add_output_dir(st, o3, NULL, &v, &n), ==, -EBADMSG);
        /* File names that would leave the folder. */
        _cleanup_free_ char *o4 = make_output(dir, "demo", "x4", "x86_64", NULL);
        rewrite_manifest(o4, "\"file\": \"demo.raw\"", "\"file\": \"../demo.raw\"");
        CHECK_INT(store_add_output_dir(st, o4, NULL, &v, &n), ==, -EINVAL);
        /* Not JSON / not a manifest. */
        _cleanup_free_ char *o5 = make_output(dir, "demo", "x5", "x86_64", NULL);
        rewrite_manifest(o5, "{", "[");
        CHECK_INT(store_add_output_dir(st, o5, NULL, &v, &n), ==, -EBADMSG);
        _cleanup_free_ char *o6 = make_output(dir, "demo", "x6", "x86_64", NULL);
        rewrite_manifest(o6, "\"schema_version\": 1", "\"schema_version\": 7");
        CHECK_INT(store_add_output_dir(st, o6, NULL, &v, &n), ==, -EBADMSG);
        /* Bad names, versions, labels. */
        _cleanup_free_ char *o7 = make_output(dir, "demo", "x7", "x86_64", NULL);
        struct store_add_options bad = {.name = "a/b"};
        CHECK_INT(store_add_output_dir(st, o7, &bad, &v, &n), ==, -EINVAL);
        bad = (struct store_add_options){.version = "latest"};
        CHECK_INT(store_add_output_dir(st, o7, &bad, &v, &n), ==, -EINVAL);
        bad = (struct store_add_options){.version = ".hidden"};
        CHECK_INT(store_add_output_dir(st, o7, &bad, &v, &n), ==, -EINVAL);
        struct store_label bl[] = {{(char *)"k", (char *)"line\nbreak"}};
        bad = (struct store_add_options){.labels = bl, .nlabels = 1};
        CHECK_INT(store_add_output_dir(st, o7, &bad, &v, &n), ==, -EINVAL);
        /* Bare files: a name is needed, and a format. */
        _cleanup_free_ char *nofmt = xasprintf("%s/blob", dir);
        char h[65];
        put_content(nofmt, "z", 100, false, h);
        const char *paths[] = {nofmt};
        CHECK_INT(store_add_files(st, paths, 1, NULL, &v, &n), ==, -EINVAL);
        struct store_add_options named = {.name = "bare"};
        CHECK_INT(store_add_files(st, paths, 1, &named, &v, &n), ==, -EINVAL);
        named.format = "raw";
        CHECK_INT(store_add_files(st, paths, 1, &named, &v, &n), ==, 0);
        store_entries_free(v, n);
        const char *missing[] = {"/nonexistent/x.raw"};
        CHECK_INT(store_add_files(st, missing, 1, &named, &v, &n), ==, -ENOENT);
        /* Same name:version:file with other content. */
        _cleanup_free_ char *odir = xasprintf("%s/other", dir);
        _cleanup_free_ char *other = xasprintf("%s/blob", odir);
        CHECK(mkdir_p(odir, 0755) == 0);
        put_content(other, "y", 100, false, h);
        const char *opaths[] = {other};
        named.version = "1";
        CHECK_INT(store_add_files(st, paths, 1, &named, &v, &n), ==, 0);
        store_entries_free(v, n);
        CHECK_INT(store_add_files(st, opaths, 1, &named, &v, &n), ==, -EEXIST);
        CHECK_INT(count_blobs(sdir), ==, 1);
        char *p = NULL;
        CHECK_INT(store_blob_path(st, "ABC", &p), ==, -EINVAL);
        CHECK_INT(store_blob_path(st, "../../../../../../../../../../../../../../../../../../../../etc/x", &p), ==, -EINVAL);
        CHECK(p == NULL);
        CHECK_INT(store_get(st, 999, &(struct store_entry){0}), ==, -ENOENT);
        CHECK_INT(count_blobs(sdir), ==, 1);
        store_close(st);
        rm_rf(dir);
}

/* Two processes adding at once, overlapping content, one store. */
TEST(store_concurrent_writers) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *sdir = xasprintf("%s/store", dir);
        enum { ROUNDS = 6 };
        char *outs[ROUNDS];
        for (int i = 0; i < ROUNDS; i++) {
                _cleanup_free_ char *seed = xasprintf("k%d", i);
                outs[i] = make_output(dir, "conc", seed, "x86_64", NULL);
        }
        pid_t kids[2];
        for (int k = 0; k < 2; k++) {
                kids[k] = fork();
                if (kids[k] == 0) {
                        struct store *st = NULL;
                        if (store_open(sdir, &st) < 0)
                                _exit(2);
                        for (int i = 0; i < ROUNDS; i++) {
                                /* each process: every build, plus its own copy version */
                                struct store_entry *v = NULL;
                                size_t n = 0;
                                char ver[32];
                                snprintf(ver, sizeof(ver), "p%d.%d", k, i);
                                struct store_add_options o = {.version = ver,
                                                              .flags = k ? STORE_ADD_COPY : 0};
                                if (store_add_output_dir(st, outs[i], NULL, &v, &n) < 0)
                                        _exit(3);
                                store_entries_free(v, n);
                                if (store_add_output_dir(st, outs[i], &o, &v, &n) < 0)
                                        _exit(4);
                                store_entries_free(v, n);
                        }
                        store_close(st);
                        _exit(0);
                }
        }
        for (int k = 0; k < 2; k++) {
                int status = 0;
                CHECK(waitpid(kids[k], &status, 0) == kids[k]);
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        struct store *st = NULL;
        CHECK_INT(store_open(sdir, &st), ==, 0);
        /* Per build: one default version (the same build is catalogued
         * once even when both raced) and one per process. */
        CHECK_INT(count_entries(st, NULL), ==, ROUNDS * 2 * 3);
        CHECK_INT(count_blobs(sdir), ==, ROUNDS * 2);
        struct store_entry *v = NULL;
        size_t n = 0;
        CHECK_INT(store_list(st, NULL, &v, &n), ==, 0);
        for (size_t i = 0; i < n; i++)
                CHECK(blob_ok(st, v[i].sha256));
        store_entries_free(v, n);
        _cleanup_free_ char *tmp = xasprintf("%s/tmp", sdir);
        DIR *d = opendir(tmp);
        struct dirent *de;
        int left = 0;
        while (d && (de = readdir(d)))
                left += de->d_name[0] != '.';
        if (d)
                closedir(d);
        CHECK_INT(left, ==, 0);
        store_close(st);
        for (int i = 0; i < ROUNDS; i++)
                free(outs[i]);
        rm_rf(dir);
}

TEST(store_schema_guard) {
        _cleanup_free_ char *dir = test_dir();
        struct store *st = NULL;
        CHECK_INT(store_open(dir, &st), ==, 0);
        store_close(st);
        /* A leftover of a dead writer in tmp/ goes on the next open. */
        _cleanup_free_ char *left = xasprintf("%s/tmp/dead.blob", dir);
        CHECK(write_file(left, "x", 1, 0644, 0) == 0);
        _cleanup_free_ char *db = xasprintf("%s/catalog.db", dir);
        sqlite3 *h = NULL;
        CHECK(sqlite3_open(db, &h) == SQLITE_OK);
        int uv = -1;
        sqlite3_stmt *s = NULL;
        CHECK(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK);
        if (sqlite3_step(s) == SQLITE_ROW)
                uv = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        CHECK_INT(uv, ==, 1);
        CHECK(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &s, NULL) == SQLITE_OK);
        CHECK(sqlite3_step(s) == SQLITE_ROW && streq((const char *)sqlite3_column_text(s, 0), "wal"));
        sqlite3_finalize(s);
        CHECK(sqlite3_exec(h, "PRAGMA user_version=99", NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(h);
        CHECK_INT(store_open(dir, &st), ==, -EPROTONOSUPPORT);
        CHECK_INT(store_open("", &st), ==, -EINVAL);
        rm_rf(dir);
        /* Fresh store: the leftover is swept on open. */
        _cleanup_free_ char *dir2 = test_dir();
        _cleanup_free_ char *tmpd = xasprintf("%s/tmp", dir2);
        CHECK(mkdir_p(tmpd, 0755) == 0);
        _cleanup_free_ char *left2 = xasprintf("%s/dead.blob", tmpd);
        CHECK(write_file(left2, "x", 1, 0644, 0) == 0);
        CHECK_INT(store_open(dir2, &st), ==, 0);
        CHECK(access(left2, F_OK) != 0);
        store_close(st);
        rm_rf(dir2);
}

/* What a build hands over in memory: no manifest is read. */
TEST(store_add_artifacts_in_memory) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *sdir = xasprintf("%s/store", dir);
        _cleanup_free_ char *out = make_output(dir, "mem", "m", "aarch64", NULL);
        _cleanup_free_ char *mp = xasprintf("%s/kiln-manifest.json", out);
        struct artifact_set set = {0};
        CHECK_INT(artifact_set_read(out, &set, NULL), ==, 0);
        CHECK_INT(unlink(mp), ==, 0);
        struct store *st = NULL;
        CHECK_INT(store_open(sdir, &st), ==, 0);
        struct store_entry *v = NULL;
        size_t n = 0;
        CHECK_INT(store_add_artifacts(st, &set, NULL, &v, &n), ==, 0);
        CHECK_INT(n, ==, 2);
        CHECK_STREQ(v[0].name, "mem");
        CHECK_STREQ(v[0].arch, "aarch64");
        CHECK_INT(v[0].created, ==, set.created);
        store_entries_free(v, n);
        /* A size in the set that the file does not have: refused. */
        set.files[1].size++;
        CHECK_INT(store_add_artifacts(st, &set, &(struct store_add_options){.version = "2"}, &v, &n), ==, -EBADMSG);
        CHECK(strstr(store_error(st), "size is") != NULL);
        artifact_set_done(&set);
        store_close(st);
        rm_rf(dir);
}
